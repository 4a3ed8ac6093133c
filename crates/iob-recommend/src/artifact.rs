//! Model artifacts on disk: `DATA_DIR/models/recommend/model-NNNNNN.bin`, one file per
//! training (the highest number is loaded at start; older ones are deleted once a newer one is
//! durable, so an erased person's factors survive in no file).
//!
//! Format (little-endian): `"IOBREC\0\0"` | format version `u32` | body length `u64` |
//! CRC-32C of the body `u32` | body. The body holds, in order: training sequence and time; the
//! catalog (ids and properties); popularity; EASE (flag, n, λ, weights); ALS (flag, factors,
//! λ, α, persons with their item counts, person factors, item factors, `YᵀY`); item-kNN (flag,
//! CSR). Written atomically (temp file, fsync, rename, directory fsync; mode 0600 since ALS
//! person factors are personal data). A truncated, flipped or foreign file is an error naming
//! the file and what is wrong, never a panic.

use std::path::{Path, PathBuf};

use crate::als::Als;
use crate::catalog::Catalog;
use crate::ease::Ease;
use crate::error::{RecommendError, Result};
use crate::knn::Knn;
use crate::matrix::Csr;
use crate::model::{AlsState, ModelSet};
use crate::popularity::Popularity;

const MAGIC: &[u8; 8] = b"IOBREC\0\0";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
const HEADER: usize = 8 + 4 + 8 + 4;

/// The directory artifacts live in.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("models").join("recommend")
}

fn file_name(seq: u64) -> String {
    format!("model-{seq:06}.bin")
}

/// Artifacts in `dir`, oldest first, with their sequence numbers.
pub fn list(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let seq = name
                .strip_prefix("model-")?
                .strip_suffix(".bin")?
                .parse()
                .ok()?;
            Some((seq, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// Writes `m` durably as the newest artifact and removes older ones.
pub fn save(dir: &Path, m: &ModelSet) -> Result<PathBuf> {
    let path = dir.join(file_name(m.seq));
    iob_govern::write_private(&path, &encode(m))
        .map_err(|e| RecommendError::io(format!("writing {}", path.display()), e))?;
    for (seq, old) in list(dir) {
        if seq != m.seq {
            std::fs::remove_file(&old)
                .map_err(|e| RecommendError::io(format!("removing {}", old.display()), e))?;
        }
    }
    Ok(path)
}

/// Loads the newest artifact in `dir`, if any.
pub fn load_latest(dir: &Path) -> Result<Option<ModelSet>> {
    match list(dir).pop() {
        None => Ok(None),
        Some((_, path)) => load(&path).map(Some),
    }
}

pub fn load(path: &Path) -> Result<ModelSet> {
    let bytes = std::fs::read(path)
        .map_err(|e| RecommendError::io(format!("reading {}", path.display()), e))?;
    decode(&bytes).map_err(|reason| RecommendError::Artifact {
        path: path.display().to_string(),
        reason,
    })
}

// ---- encoding -------------------------------------------------------------------------------

struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f32(&mut self, v: f32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn f32s(&mut self, v: &[f32]) {
        self.u64(v.len() as u64);
        for x in v {
            self.f32(*x);
        }
    }
}

pub fn encode(m: &ModelSet) -> Vec<u8> {
    let mut w = W(Vec::new());
    w.u64(m.seq);
    w.u64(m.trained_at as u64);
    w.u32(m.catalog.len() as u32);
    for i in 0..m.catalog.len() as u32 {
        w.str(m.catalog.id(i));
        let props = m.catalog.props(i);
        w.u32(props.len() as u32);
        for (k, v) in props {
            w.str(k);
            w.str(v);
        }
    }
    w.f32s(&m.popularity.scores);
    match &m.ease {
        None => w.u8(0),
        Some(e) => {
            w.u8(1);
            w.u32(e.n_items as u32);
            w.f32(e.lambda);
            w.f32s(&e.b);
        }
    }
    match &m.als {
        None => w.u8(0),
        Some(a) => {
            w.u8(1);
            w.u32(a.model.factors as u32);
            w.f32(a.model.regularization);
            w.f32(a.model.alpha);
            w.u64(a.persons.len() as u64);
            for (p, c) in a.persons.iter().zip(&a.counts) {
                w.u64(*p);
                w.u32(*c);
            }
            w.f32s(&a.model.user);
            w.f32s(&a.model.item);
            w.u64(a.model.yty.len() as u64);
            for v in &a.model.yty {
                w.0.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    match &m.knn {
        None => w.u8(0),
        Some(k) => {
            let n = &k.neighbours;
            w.u8(1);
            w.u32(n.rows as u32);
            w.u32(n.cols as u32);
            w.u64(n.indices.len() as u64);
            for p in &n.indptr {
                w.u64(*p as u64);
            }
            for i in &n.indices {
                w.u32(*i);
            }
            for d in &n.data {
                w.f32(*d);
            }
        }
    }
    let body = w.0;
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

// ---- decoding -------------------------------------------------------------------------------

struct R<'a> {
    b: &'a [u8],
    at: usize,
}

type D<T> = std::result::Result<T, String>;

impl<'a> R<'a> {
    fn take(&mut self, n: usize) -> D<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| format!("ends early at byte {} (wanted {n} more)", self.at))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> D<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> D<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> D<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn f32(&mut self) -> D<f32> {
        Ok(f32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn len(&mut self, each: usize) -> D<usize> {
        let n = self.u64()? as usize;
        // A length that cannot fit in what is left is corruption, not an allocation request.
        if n.saturating_mul(each) > self.b.len() - self.at {
            return Err(format!(
                "length {n} at byte {} exceeds the file",
                self.at - 8
            ));
        }
        Ok(n)
    }
    fn str(&mut self) -> D<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "a name is not UTF-8".into())
    }
    fn f32s(&mut self) -> D<Vec<f32>> {
        let n = self.len(4)?;
        let raw = self.take(n * 4)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect())
    }
}

pub fn decode(bytes: &[u8]) -> D<ModelSet> {
    if bytes.len() < HEADER {
        return Err(format!("{} bytes is shorter than the header", bytes.len()));
    }
    if &bytes[..8] != MAGIC {
        return Err("not a recommendation model (bad magic)".into());
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(format!(
            "format version {version}; this build reads version {VERSION}: retrain (`iob train`)"
        ));
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes"));
    let body = &bytes[HEADER..];
    if body.len() != len {
        return Err(format!(
            "body is {} bytes, header says {len} (truncated?)",
            body.len()
        ));
    }
    if crc32c::crc32c(body) != crc {
        return Err("checksum mismatch (corrupted)".into());
    }
    let mut r = R { b: body, at: 0 };
    let seq = r.u64()?;
    let trained_at = r.u64()? as i64;
    let n = r.u32()? as usize;
    let mut catalog = Catalog::default();
    for i in 0..n {
        let id = r.str()?;
        if catalog.intern(&id) as usize != i {
            return Err(format!("item `{id}` appears twice"));
        }
        for _ in 0..r.u32()? {
            let (k, v) = (r.str()?, r.str()?);
            catalog.set_prop(i as u32, &k, &v);
        }
    }
    let scores = r.f32s()?;
    if scores.len() != n {
        return Err("popularity does not match the catalog".into());
    }
    let popularity = Popularity::from_scores(scores);
    let ease = match r.u8()? {
        0 => None,
        _ => {
            let n_items = r.u32()? as usize;
            let lambda = r.f32()?;
            let b = r.f32s()?;
            if b.len() != n_items * n_items || n_items != n {
                return Err("EASE weights do not match the catalog".into());
            }
            Some(Ease { n_items, lambda, b })
        }
    };
    let als = match r.u8()? {
        0 => None,
        _ => {
            let factors = r.u32()? as usize;
            let regularization = r.f32()?;
            let alpha = r.f32()?;
            let np = r.len(12)?;
            let mut persons = Vec::with_capacity(np);
            let mut counts = Vec::with_capacity(np);
            for _ in 0..np {
                persons.push(r.u64()?);
                counts.push(r.u32()?);
            }
            let user = r.f32s()?;
            let item = r.f32s()?;
            let ny = r.len(8)?;
            let yty: Vec<f64> = r
                .take(ny * 8)?
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect();
            if factors == 0
                || user.len() != np * factors
                || item.len() != n * factors
                || yty.len() != factors * factors
            {
                return Err("ALS factors do not match the catalog".into());
            }
            Some(AlsState {
                model: Als {
                    factors,
                    regularization,
                    alpha,
                    user,
                    item,
                    yty,
                },
                persons,
                counts,
            })
        }
    };
    let knn = match r.u8()? {
        0 => None,
        _ => {
            let rows = r.u32()? as usize;
            let cols = r.u32()? as usize;
            let nnz = r.len(8)?;
            let mut indptr = Vec::with_capacity(rows + 1);
            for _ in 0..=rows {
                indptr.push(r.u64()? as usize);
            }
            let mut indices = Vec::with_capacity(nnz);
            for _ in 0..nnz {
                indices.push(r.u32()?);
            }
            let mut data = Vec::with_capacity(nnz);
            for _ in 0..nnz {
                data.push(r.f32()?);
            }
            let ok = rows == n
                && cols == n
                && indptr.first() == Some(&0)
                && indptr.last() == Some(&nnz)
                && indptr.windows(2).all(|w| w[0] <= w[1])
                && indices.iter().all(|&i| (i as usize) < n);
            if !ok {
                return Err("item-kNN neighbours do not match the catalog".into());
            }
            Some(Knn {
                neighbours: Csr {
                    rows,
                    cols,
                    indptr,
                    indices,
                    data,
                },
            })
        }
    };
    if r.at != body.len() {
        return Err(format!("{} unexpected bytes at the end", body.len() - r.at));
    }
    Ok(ModelSet {
        seq,
        trained_at,
        catalog,
        popularity,
        ease,
        als,
        knn,
    })
}
