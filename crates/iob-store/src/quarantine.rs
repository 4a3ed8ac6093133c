//! The quarantine: events the collector rejected, kept durably with the structured reason so
//! that an operator can list them, fix the cause, and replay or discard them.
//!
//! One framed file `DIR/quarantine/quarantine.log` (same frame/CRC/torn-tail discipline as the
//! log, via [`crate::frames`]) of two record kinds: an entry, and a resolution marker naming
//! entries as replayed or discarded. Volume is low (rejections), so every call fsyncs alone.
//!
//! This module must never return before what it wrote is fsynced, never drop an entry on the
//! floor (resolution only marks it), and never read without a [`Permit`] (raw payloads are
//! personal data).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use iob_types::{PersonKey, Timestamp};
use parking_lot::Mutex;

use crate::error::{IoContext, StoreError};
use crate::format::{
    FILE_HEADER_LEN, FORMAT_VERSION, FileHeader, Frame, QUARANTINE_MAGIC, decode_frame,
    encode_frame,
};
use crate::frames::{fsync_dir, scan_frames, truncate_durably};
use crate::{Codec, Permit};

const KIND_ENTRY: u8 = 1;
const KIND_RESOLUTION: u8 = 2;

/// What was done with a quarantined event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    Replayed,
    Discarded,
}

impl Resolution {
    fn code(self) -> u8 {
        match self {
            Resolution::Replayed => 1,
            Resolution::Discarded => 2,
        }
    }
    fn from_code(c: u8) -> Option<Resolution> {
        match c {
            1 => Some(Resolution::Replayed),
            2 => Some(Resolution::Discarded),
            _ => None,
        }
    }
}

/// A rejected event to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct NewQuarantined {
    pub received_at: Timestamp,
    /// The configured source whose key sent it, if known.
    pub source: Option<String>,
    /// The person, if the event got far enough to be keyed.
    pub person: Option<PersonKey>,
    /// The structured rejection (field, code, message).
    pub reason: serde_json::Value,
    pub codec: Codec,
    /// The raw bytes as received.
    pub payload: Vec<u8>,
}

/// A kept rejected event.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantineEntry {
    pub id: u64,
    pub received_at: Timestamp,
    pub source: Option<String>,
    pub person: Option<PersonKey>,
    pub reason: serde_json::Value,
    pub codec: Codec,
    pub payload: Vec<u8>,
    /// `None` while open.
    pub resolution: Option<Resolution>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuarantineCounts {
    pub open: u64,
    pub resolved: u64,
}

struct Inner {
    file: File,
    len: u64,
    next_id: u64,
    /// id → (frame position, resolution).
    entries: BTreeMap<u64, (u64, Option<Resolution>)>,
    counts: QuarantineCounts,
}

/// The quarantine of one store.
pub struct Quarantine {
    dir: PathBuf,
    path: PathBuf,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Quarantine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quarantine")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

enum Rec {
    Entry(QuarantineEntry),
    Resolution(Resolution, Vec<u64>),
}

impl Quarantine {
    /// Opens (or creates) the quarantine under `dir`, cutting a torn tail.
    pub(crate) fn open(dir: &Path) -> Result<Quarantine, StoreError> {
        fs::create_dir_all(dir).ctx("create", dir)?;
        let path = dir.join("quarantine.log");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .ctx("open quarantine", &path)?;
        let file_len = file.metadata().ctx("stat", &path)?.len();
        let header = FileHeader {
            magic: QUARANTINE_MAGIC,
            version: FORMAT_VERSION,
            base: 0,
        };
        let mut hb = [0u8; FILE_HEADER_LEN];
        let valid_header = file_len >= FILE_HEADER_LEN as u64
            && file.read_exact_at(&mut hb, 0).is_ok()
            && FileHeader::decode(&hb) == Some(header);
        if !valid_header {
            if file_len > FILE_HEADER_LEN as u64 {
                return Err(StoreError::Corrupt {
                    dir: dir.to_path_buf(),
                    path,
                    pos: 0,
                    reason: "not a version 1 quarantine file".into(),
                });
            }
            // Absent or torn at creation: start it.
            file.set_len(0).ctx("truncate", &path)?;
            file.write_all_at(&header.encode(), 0).ctx("write", &path)?;
            file.sync_all().ctx("fsync", &path)?;
            fsync_dir(dir)?;
        }
        let mut entries = BTreeMap::new();
        let mut counts = QuarantineCounts::default();
        let mut next_id = 1;
        let end = scan_frames(
            &file,
            &path,
            FILE_HEADER_LEN as u64,
            file_len.max(FILE_HEADER_LEN as u64),
            1,
            |pos, body| match decode(body) {
                Some(Rec::Entry(e)) if e.id >= next_id => {
                    next_id = e.id + 1;
                    entries.insert(e.id, (pos, None));
                    counts.open += 1;
                    Ok(None)
                }
                Some(Rec::Resolution(how, ids)) => {
                    for id in ids {
                        if let Some((_, r @ None)) = entries.get_mut(&id) {
                            *r = Some(how);
                            counts.open -= 1;
                            counts.resolved += 1;
                        }
                    }
                    Ok(None)
                }
                _ => Ok(Some("unreadable quarantine record")),
            },
        )?;
        if end.torn.is_some() {
            truncate_durably(&file, &path, end.valid_end)?;
        }
        Ok(Quarantine {
            dir: dir.to_path_buf(),
            path,
            inner: Mutex::new(Inner {
                file,
                len: end.valid_end,
                next_id,
                entries,
                counts,
            }),
        })
    }

    /// Keeps `items` durably; returns their ids, in order.
    pub fn append(&self, items: Vec<NewQuarantined>) -> Result<Vec<u64>, StoreError> {
        let mut g = self.inner.lock();
        let mut buf = Vec::new();
        let mut placed = Vec::with_capacity(items.len());
        let mut id = g.next_id;
        for it in items {
            let pos = g.len + buf.len() as u64;
            let mut body = Vec::with_capacity(64 + it.payload.len());
            body.push(KIND_ENTRY);
            body.extend_from_slice(&id.to_le_bytes());
            body.extend_from_slice(&it.received_at.0.to_le_bytes());
            body.push(it.codec.code());
            body.push(it.person.is_some() as u8);
            body.extend_from_slice(&it.person.unwrap_or_default().0);
            let source = it.source.as_deref().unwrap_or("").as_bytes();
            let source = &source[..source.len().min(u16::MAX as usize)];
            body.push(it.source.is_some() as u8);
            body.extend_from_slice(&(source.len() as u16).to_le_bytes());
            body.extend_from_slice(source);
            let reason = serde_json::to_vec(&it.reason).expect("a Value serializes");
            body.extend_from_slice(&(reason.len() as u32).to_le_bytes());
            body.extend_from_slice(&reason);
            body.extend_from_slice(&it.payload);
            if body.len() > crate::format::MAX_BODY {
                return Err(StoreError::RecordTooLarge {
                    size: it.payload.len(),
                    max: crate::MAX_PAYLOAD,
                });
            }
            encode_frame(&mut buf, &body);
            placed.push((id, pos));
            id += 1;
        }
        self.write_durably(&mut g, &buf)?;
        g.next_id = id;
        for (id, pos) in &placed {
            g.entries.insert(*id, (*pos, None));
        }
        g.counts.open += placed.len() as u64;
        Ok(placed.into_iter().map(|(id, _)| id).collect())
    }

    /// Marks open entries as resolved; returns how many changed (unknown or already resolved
    /// ids are ignored).
    pub fn resolve(&self, ids: &[u64], how: Resolution) -> Result<usize, StoreError> {
        let mut g = self.inner.lock();
        let mut open: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|id| matches!(g.entries.get(id), Some((_, None))))
            .collect();
        open.sort_unstable();
        open.dedup();
        if open.is_empty() {
            return Ok(0);
        }
        let mut body = Vec::with_capacity(6 + open.len() * 8);
        body.push(KIND_RESOLUTION);
        body.push(how.code());
        body.extend_from_slice(&(open.len() as u32).to_le_bytes());
        for id in &open {
            body.extend_from_slice(&id.to_le_bytes());
        }
        let mut buf = Vec::new();
        encode_frame(&mut buf, &body);
        self.write_durably(&mut g, &buf)?;
        for id in &open {
            if let Some((_, r)) = g.entries.get_mut(id) {
                *r = Some(how);
            }
        }
        g.counts.open -= open.len() as u64;
        g.counts.resolved += open.len() as u64;
        Ok(open.len())
    }

    /// Entries in id order (oldest first), open ones only unless `include_resolved`.
    pub fn list(
        &self,
        permit: &Permit,
        include_resolved: bool,
        limit: usize,
    ) -> Result<Vec<QuarantineEntry>, StoreError> {
        let _ = permit; // reading raw payloads is a read of personal data
        let g = self.inner.lock();
        let mut out = Vec::new();
        for (&id, &(pos, res)) in &g.entries {
            if out.len() >= limit {
                break;
            }
            if res.is_some() && !include_resolved {
                continue;
            }
            let mut e = self.read_entry(&g, id, pos)?;
            e.resolution = res;
            out.push(e);
        }
        Ok(out)
    }

    /// One entry by id.
    pub fn get(&self, permit: &Permit, id: u64) -> Result<Option<QuarantineEntry>, StoreError> {
        let _ = permit;
        let g = self.inner.lock();
        let Some(&(pos, res)) = g.entries.get(&id) else {
            return Ok(None);
        };
        let mut e = self.read_entry(&g, id, pos)?;
        e.resolution = res;
        Ok(Some(e))
    }

    pub fn counts(&self) -> QuarantineCounts {
        self.inner.lock().counts
    }

    fn read_entry(&self, g: &Inner, id: u64, pos: u64) -> Result<QuarantineEntry, StoreError> {
        let corrupt = |reason: &str| StoreError::Corrupt {
            dir: self.dir.clone(),
            path: self.path.clone(),
            pos,
            reason: reason.into(),
        };
        let mut prefix = [0u8; 8];
        g.file
            .read_exact_at(&mut prefix, pos)
            .ctx("read quarantine", &self.path)?;
        let len = u32::from_le_bytes(prefix[..4].try_into().expect("4")) as u64;
        if pos + 8 + len > g.len {
            return Err(corrupt("frame past the end of the file"));
        }
        let mut b = vec![0u8; 8 + len as usize];
        g.file
            .read_exact_at(&mut b, pos)
            .ctx("read quarantine", &self.path)?;
        match decode_frame(&b, 1) {
            Frame::Ok { body, .. } => match decode(body) {
                Some(Rec::Entry(e)) if e.id == id => Ok(e),
                _ => Err(corrupt("not the expected entry")),
            },
            _ => Err(corrupt("bad frame")),
        }
    }

    fn write_durably(&self, g: &mut Inner, buf: &[u8]) -> Result<(), StoreError> {
        let res = g
            .file
            .write_all_at(buf, g.len)
            .and_then(|()| g.file.sync_data())
            .ctx("write quarantine", &self.path);
        if res.is_err() {
            // Leave no half-written frame behind (a later append would land after it).
            let _ = g.file.set_len(g.len);
        } else {
            g.len += buf.len() as u64;
        }
        res
    }
}

fn decode(b: &[u8]) -> Option<Rec> {
    let mut r = Reader(b);
    match r.u8()? {
        KIND_ENTRY => {
            let id = r.u64()?;
            let received = r.u64()? as i64;
            let codec = Codec::from_code(r.u8()?)?;
            let has_person = r.u8()? == 1;
            let person = PersonKey(r.take(16)?.try_into().ok()?);
            let has_source = r.u8()? == 1;
            let slen = u16::from_le_bytes(r.take(2)?.try_into().ok()?) as usize;
            let source = String::from_utf8(r.take(slen)?.to_vec()).ok()?;
            let rlen = r.u32()? as usize;
            let reason = serde_json::from_slice(r.take(rlen)?).ok()?;
            Some(Rec::Entry(QuarantineEntry {
                id,
                received_at: Timestamp(received),
                source: has_source.then_some(source),
                person: has_person.then_some(person),
                reason,
                codec,
                payload: r.0.to_vec(),
                resolution: None,
            }))
        }
        KIND_RESOLUTION => {
            let how = Resolution::from_code(r.u8()?)?;
            let n = r.u32()? as usize;
            let ids = (0..n).map(|_| r.u64()).collect::<Option<Vec<_>>>()?;
            r.0.is_empty().then_some(Rec::Resolution(how, ids))
        }
        _ => None,
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8")))
    }
}
