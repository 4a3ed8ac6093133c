//! Recovery on open: from `CHECKPOINT` (or from nothing), bring the indexes and the dedup
//! table in line with the log, and cut the torn tail a crash may have left.
//!
//! The log is the only source of truth. A checkpoint that does not match the files (missing,
//! unreadable, index files shorter than it says, a dedup snapshot that is missing or older)
//! is not trusted: everything is rebuilt from the start of the log instead.
//!
//! Recovery must be idempotent (running it twice gives the same state), and must never cut a
//! frame that is valid and in sequence: only the first invalid frame and what follows it
//! (which can never have been acknowledged) are removed.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iob_types::EventKind;

use crate::checkpoint::Checkpoint;
use crate::dedup::DedupTable;
use crate::direct::{ALIGN, is_padding};
use crate::error::{IoContext, StoreError};
use crate::format::{
    FILE_HEADER_LEN, FORMAT_VERSION, FileHeader, Frame, INDEX_ENTRY_LEN, IndexEntry, LOG_MAGIC,
    RECORD_HEADER_LEN, RecordHeaderV1, SEQ_ENTRY_LEN, decode_frame, index_file_name,
    parse_segment_file_name,
};
use crate::frames::{fsync_dir, scan_frames, truncate_durably};
use crate::log::{IndexFile, Segment};
use crate::{Codec, StoreOptions};

/// What recovery found and did; the engine logs it at startup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Why the checkpoint could not be used and the whole log was rescanned (`None`: the
    /// checkpoint was used, or the store is new).
    pub full_rebuild: Option<String>,
    /// Records re-indexed from the log (those after the checkpoint).
    pub scanned_records: u64,
    /// The torn tail that was cut, if any.
    pub torn_tail: Option<TornTail>,
    /// Segment files deleted because they followed the torn tail.
    pub removed_segments: Vec<PathBuf>,
}

/// Where the log was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub segment: PathBuf,
    pub pos: u64,
    pub bytes_cut: u64,
    pub reason: String,
}

/// The state recovery hands to the committer.
pub(crate) struct Recovered {
    pub segs: Vec<Segment>,
    pub next_seq: u64,
    pub next_offsets: Vec<u64>,
    pub dedup: DedupTable,
    pub generation: u64,
    pub index: Vec<IndexFile>,
    pub seq_index: IndexFile,
    pub report: RecoveryReport,
}

/// Re-index buffers, flushed to the index files in large writes.
struct Reindex {
    bufs: Vec<Vec<u8>>,
    first: Vec<u64>,
    seq_buf: Vec<u8>,
    seq_first: u64,
}

const FLUSH_AT: usize = 1 << 20;

impl Reindex {
    fn flush(
        &mut self,
        index: &[IndexFile],
        seq_index: &IndexFile,
        all: bool,
    ) -> Result<(), StoreError> {
        for (p, b) in self.bufs.iter_mut().enumerate() {
            if all || b.len() >= FLUSH_AT {
                index[p].write_at(self.first[p], b)?;
                self.first[p] += (b.len() / INDEX_ENTRY_LEN) as u64;
                b.clear();
            }
        }
        if all || self.seq_buf.len() >= FLUSH_AT {
            seq_index.write_at(self.seq_first, &self.seq_buf)?;
            self.seq_first += (self.seq_buf.len() / SEQ_ENTRY_LEN) as u64;
            self.seq_buf.clear();
        }
        Ok(())
    }
}

pub(crate) fn recover(dir: &Path, opts: &StoreOptions) -> Result<Recovered, StoreError> {
    let n = opts.partitions as usize;
    let log_dir = dir.join("log");
    let index_dir = dir.join("index");
    fs::create_dir_all(&log_dir).ctx("create", &log_dir)?;
    fs::create_dir_all(&index_dir).ctx("create", &index_dir)?;
    let mut files: Vec<(u64, PathBuf)> = Vec::new();
    for e in fs::read_dir(&log_dir).ctx("list", &log_dir)? {
        let e = e.ctx("list", &log_dir)?;
        if let Some(base) = e.file_name().to_str().and_then(parse_segment_file_name) {
            files.push((base, e.path()));
        }
    }
    files.sort();
    let index = (0..opts.partitions)
        .map(|p| IndexFile::open(index_dir.join(index_file_name(p)), INDEX_ENTRY_LEN))
        .collect::<Result<Vec<_>, _>>()?;
    let seq_index = IndexFile::open(index_dir.join("seq.idx"), SEQ_ENTRY_LEN)?;

    let mut report = RecoveryReport::default();
    let ckpt = match Checkpoint::read(&dir.join("CHECKPOINT"))? {
        None => {
            if !files.is_empty() {
                report.full_rebuild = Some("no CHECKPOINT file".into());
            }
            None
        }
        Some(Err(reason)) => {
            report.full_rebuild = Some(reason);
            None
        }
        Some(Ok(c)) => match validate(&c, &files, &index, &seq_index, dir, opts)? {
            Ok(dedup) => Some((c, dedup)),
            Err(reason) => {
                report.full_rebuild = Some(reason);
                None
            }
        },
    };

    let mut segs: Vec<Segment> = Vec::new();
    let (mut next_seq, mut next_offsets, mut dedup, generation, mut pos) = match ckpt {
        Some((c, dedup)) => {
            for (st, (_, path)) in c.segments.iter().zip(&files) {
                let mut s = Segment::open(path.clone(), st.base)?;
                s.len = st.bytes;
                s.records = st.records;
                s.min_et = st.min_et;
                s.max_et = st.max_et;
                segs.push(s);
            }
            let pos = c.segments.last().expect("validated").bytes;
            (c.next_seq, c.partitions, dedup, c.generation, pos)
        }
        None => {
            let first = files.first().map_or(0, |f| f.0);
            (
                first,
                vec![0; n],
                DedupTable::new(opts.dedup_window_ms, opts.dedup_max_entries),
                0,
                FILE_HEADER_LEN as u64,
            )
        }
    };
    for (p, idx) in index.iter().enumerate() {
        idx.truncate_entries(next_offsets[p])?;
    }
    seq_index.truncate_entries(next_seq)?;
    let mut re = Reindex {
        bufs: vec![Vec::new(); n],
        first: next_offsets.clone(),
        seq_buf: Vec::new(),
        seq_first: next_seq,
    };

    let mut i = segs.len().saturating_sub(1);
    while i < files.len() {
        let (base, path) = &files[i];
        if i >= segs.len() {
            let s = Segment::open(path.clone(), *base)?;
            let mut hb = [0u8; FILE_HEADER_LEN];
            let ok = s.file.read_exact_at(&mut hb, 0).is_ok()
                && FileHeader::decode(&hb).is_some_and(|h| {
                    h.magic == LOG_MAGIC && h.version == FORMAT_VERSION && h.base == *base
                })
                && *base == next_seq;
            if !ok {
                remove_from(&files[i..], &log_dir, &mut report)?;
                break;
            }
            segs.push(s);
            pos = FILE_HEADER_LEN as u64;
        }
        let seg = segs.last_mut().expect("pushed");
        let file = Arc::clone(&seg.file);
        let file_len = file.metadata().ctx("stat", path)?.len();
        let mut scanned = 0u64;
        let end = scan_frames(
            &file,
            path,
            pos,
            file_len,
            RECORD_HEADER_LEN,
            |fpos, body| {
                let Ok((h, _)) = RecordHeaderV1::decode(body) else {
                    return Ok(Some("unreadable record header"));
                };
                let p = h.partition as usize;
                if h.seq != next_seq {
                    return Ok(Some("sequence number out of order"));
                }
                if p >= n || h.offset != next_offsets[p] {
                    return Ok(Some("partition or partition offset out of order"));
                }
                if EventKind::from_code(h.kind).is_none() || Codec::from_code(h.codec).is_none() {
                    return Ok(Some("unknown event kind or codec"));
                }
                IndexEntry {
                    segment: seg.base,
                    pos: fpos,
                    event_time_ms: h.event_time_ms,
                }
                .encode_into(&mut re.bufs[p]);
                re.seq_buf.extend_from_slice(&fpos.to_le_bytes());
                if h.dedup_key != [0; 16] {
                    dedup.insert(DedupTable::key(&h.dedup_key), h.received_ms);
                }
                seg.note_record(h.event_time_ms);
                next_offsets[p] += 1;
                next_seq += 1;
                scanned += 1;
                re.flush(&index, &seq_index, false)?;
                Ok(None)
            },
        )?;
        report.scanned_records += scanned;
        seg.len = end.valid_end;
        if let Some(reason) = end.torn {
            let cut = file_len - end.valid_end;
            let mut rest = vec![0u8; cut.min(ALIGN) as usize];
            let padding = cut < ALIGN
                && file.read_exact_at(&mut rest, end.valid_end).is_ok()
                && is_padding(&rest, file_len);
            truncate_durably(&file, path, end.valid_end)?;
            if padding {
                // The zero padding of a direct write, not a tear: keep going.
                i += 1;
                continue;
            }
            report.torn_tail = Some(TornTail {
                segment: path.clone(),
                pos: end.valid_end,
                bytes_cut: file_len - end.valid_end,
                reason,
            });
            remove_from(&files[i + 1..], &log_dir, &mut report)?;
            break;
        }
        i += 1;
    }
    re.flush(&index, &seq_index, true)?;
    if segs.is_empty() {
        segs.push(Segment::create(&log_dir, next_seq)?);
    }
    Ok(Recovered {
        segs,
        next_seq,
        next_offsets,
        dedup,
        generation,
        index,
        seq_index,
        report,
    })
}

/// Deletes segment files that follow a torn tail (they can only hold unacknowledged bytes).
fn remove_from(
    files: &[(u64, PathBuf)],
    log_dir: &Path,
    report: &mut RecoveryReport,
) -> Result<(), StoreError> {
    for (_, path) in files {
        fs::remove_file(path).ctx("remove segment after torn tail", path)?;
        report.removed_segments.push(path.clone());
    }
    if !files.is_empty() {
        fsync_dir(log_dir)?;
    }
    Ok(())
}

/// Checks that a checkpoint matches the files; returns the dedup table it refers to, or the
/// reason it cannot be trusted.
fn validate(
    c: &Checkpoint,
    files: &[(u64, PathBuf)],
    index: &[IndexFile],
    seq_index: &IndexFile,
    dir: &Path,
    opts: &StoreOptions,
) -> Result<Result<DedupTable, String>, StoreError> {
    if c.partitions.len() != index.len() {
        return Ok(Err("CHECKPOINT has a different partition count".into()));
    }
    if c.segments.len() > files.len() || c.segments.iter().zip(files).any(|(s, f)| s.base != f.0) {
        return Ok(Err("CHECKPOINT lists segment files that are missing".into()));
    }
    let last = c.segments.len() - 1;
    for (i, (s, (_, path))) in c.segments.iter().zip(files).enumerate() {
        let len = fs::metadata(path).ctx("stat", path)?.len();
        if len < s.bytes || (i < last && len != s.bytes) {
            return Ok(Err(format!(
                "segment {} does not match CHECKPOINT",
                path.display()
            )));
        }
    }
    let first = c.segments[0].base;
    let records: u64 = c.segments.iter().map(|s| s.records).sum();
    let offsets: u64 = c.partitions.iter().sum();
    if first + records != c.next_seq || first + offsets != c.next_seq {
        return Ok(Err("CHECKPOINT counts are inconsistent".into()));
    }
    for (p, idx) in index.iter().enumerate() {
        if idx.entries_on_disk()? < c.partitions[p] {
            return Ok(Err(format!(
                "index {} is shorter than CHECKPOINT",
                idx.path.display()
            )));
        }
    }
    if seq_index.entries_on_disk()? < c.next_seq {
        return Ok(Err("index/seq.idx is shorter than CHECKPOINT".into()));
    }
    // Spot check: the last checkpointed entry of every index points at the right record.
    let seg_file = |base: u64| {
        c.segments
            .iter()
            .zip(files)
            .find(|(s, _)| s.base == base)
            .map(|(s, f)| (s.bytes, &f.1))
    };
    for (p, idx) in index.iter().enumerate() {
        let Some(o) = c.partitions[p].checked_sub(1) else {
            continue;
        };
        let e = IndexEntry::decode(&idx.read(o, 1)?);
        let ok = seg_file(e.segment).is_some_and(|(bytes, path)| {
            header_at(path, e.pos, bytes)
                .is_some_and(|h| h.partition as usize == p && h.offset == o)
        });
        if !ok {
            return Ok(Err(format!(
                "index {} does not match the log",
                idx.path.display()
            )));
        }
    }
    if let Some(s) = c.next_seq.checked_sub(1).filter(|s| *s >= first) {
        let pos = u64::from_le_bytes(seq_index.read(s, 1)?.try_into().expect("8"));
        let seg = c
            .segments
            .iter()
            .rposition(|x| x.base <= s)
            .expect("first <= s");
        let (bytes, path) = (c.segments[seg].bytes, &files[seg].1);
        if header_at(path, pos, bytes).is_none_or(|h| h.seq != s) {
            return Ok(Err("index/seq.idx does not match the log".into()));
        }
    }
    match DedupTable::load_snapshot(
        &dir.join("dedup.snap"),
        opts.dedup_window_ms,
        opts.dedup_max_entries,
    )? {
        Some((t, g)) if g >= c.generation => Ok(Ok(t)),
        Some(_) => Ok(Err("dedup.snap is older than CHECKPOINT".into())),
        None => Ok(Err("dedup.snap is missing or corrupt".into())),
    }
}

/// The record header of the valid frame at `pos` (within the first `limit` bytes), if any.
fn header_at(path: &Path, pos: u64, limit: u64) -> Option<RecordHeaderV1> {
    let f = fs::File::open(path).ok()?;
    let mut prefix = [0u8; 8];
    f.read_exact_at(&mut prefix, pos).ok()?;
    let len = u32::from_le_bytes(prefix[..4].try_into().ok()?) as u64;
    if pos + 8 + len > limit || len > crate::format::MAX_BODY as u64 {
        return None;
    }
    let mut b = vec![0u8; 8 + len as usize];
    f.read_exact_at(&mut b, pos).ok()?;
    match decode_frame(&b, RECORD_HEADER_LEN) {
        Frame::Ok { body, .. } => RecordHeaderV1::decode(body).ok().map(|(h, _)| h),
        _ => None,
    }
}
