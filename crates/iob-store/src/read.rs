//! Reads: by partition offset (O(1) through the partition index), by global sequence (through
//! `seq.idx`, then one sequential `pread` per segment run), and by event-time range (segments
//! whose min/max event time cannot overlap are skipped; the others are streamed).
//!
//! Readers work from a snapshot of the published view taken under a short read lock, use
//! positional reads (no shared file cursor), and verify every frame's checksum and header.
//! They must never return a record the committer has not published (not yet fsynced).

use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use iob_types::{EventKind, Partition, PersonKey, Timestamp};

use crate::error::{IoContext, StoreError};
use crate::format::{
    FRAME_PREFIX, Frame, IndexEntry, MAX_BODY, RECORD_HEADER_LEN, RecordHeaderV1, decode_frame,
};
use crate::log::{Segment, segment_for_seq};
use crate::store::Shared;
use crate::{Codec, RecordPos, StoredRecord};

impl Shared {
    fn corrupt(&self, path: &std::path::Path, pos: u64, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            dir: self.dir.clone(),
            path: path.to_path_buf(),
            pos,
            reason: reason.into(),
        }
    }

    pub(crate) fn read_partition(
        &self,
        partition: Partition,
        from: u64,
        max: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let count = self.opts.partitions;
        if partition.0 >= count {
            return Err(StoreError::NoSuchPartition {
                partition: partition.0,
                count,
            });
        }
        let p = partition.0 as usize;
        let end = self.view.read().next_offsets[p];
        let n = end.saturating_sub(from).min(max as u64) as usize;
        if n == 0 {
            return Ok(Vec::new());
        }
        let idx = &self.index[p];
        let raw = idx.read(from, n)?;
        let entries: Vec<IndexEntry> = raw
            .chunks_exact(idx.entry_len)
            .map(IndexEntry::decode)
            .collect();
        let located: Vec<Option<(Arc<File>, PathBuf, u64)>> = {
            let v = self.view.read();
            entries
                .iter()
                .map(|e| {
                    let i = v
                        .segments
                        .binary_search_by_key(&e.segment, |s| s.base)
                        .ok()?;
                    let s = &v.segments[i];
                    Some((Arc::clone(&s.file), s.path.clone(), s.len))
                })
                .collect()
        };
        let mut out = Vec::with_capacity(n);
        for (k, (e, loc)) in entries.iter().zip(located).enumerate() {
            let Some((file, path, len)) = loc else {
                return Err(self.corrupt(
                    &idx.path,
                    (from + k as u64) * idx.entry_len as u64,
                    "entry names a missing segment",
                ));
            };
            let rec = self.read_frame_at(&file, &path, e.pos, len)?;
            if rec.pos.partition != partition || rec.pos.offset != from + k as u64 {
                return Err(self.corrupt(
                    &idx.path,
                    (from + k as u64) * idx.entry_len as u64,
                    "entry points at another record",
                ));
            }
            out.push(rec);
        }
        Ok(out)
    }

    fn read_frame_at(
        &self,
        file: &File,
        path: &std::path::Path,
        pos: u64,
        limit: u64,
    ) -> Result<StoredRecord, StoreError> {
        let guess = (FRAME_PREFIX + RECORD_HEADER_LEN + 1024) as u64;
        let first = guess.min(limit.saturating_sub(pos));
        if first < (FRAME_PREFIX + RECORD_HEADER_LEN) as u64 {
            return Err(self.corrupt(path, pos, "frame position past the end of the segment"));
        }
        let mut b = vec![0u8; first as usize];
        file.read_exact_at(&mut b, pos)
            .ctx("read log segment", path)?;
        let len = u32::from_le_bytes(b[..4].try_into().expect("4")) as usize;
        let total = FRAME_PREFIX + len;
        if len > MAX_BODY || pos + total as u64 > limit {
            return Err(self.corrupt(path, pos, "frame length out of range"));
        }
        if total > b.len() {
            let have = b.len();
            b.resize(total, 0);
            file.read_exact_at(&mut b[have..], pos + have as u64)
                .ctx("read log segment", path)?;
        }
        self.decode_record(&b[..total], path, pos)
    }

    fn decode_record(
        &self,
        frame: &[u8],
        path: &std::path::Path,
        pos: u64,
    ) -> Result<StoredRecord, StoreError> {
        match decode_frame(frame, RECORD_HEADER_LEN) {
            Frame::Ok { body, .. } => to_record(body).map_err(|r| self.corrupt(path, pos, r)),
            Frame::Bad(r) => Err(self.corrupt(path, pos, r)),
            Frame::Incomplete { .. } => Err(self.corrupt(path, pos, "truncated frame")),
        }
    }

    pub(crate) fn read_log(
        &self,
        from_seq: u64,
        max: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let (next_seq, n, segs) = {
            let v = self.view.read();
            let n = v.next_seq.saturating_sub(from_seq).min(max as u64) as usize;
            if n == 0 {
                return Ok(Vec::new());
            }
            // Only the segments holding [from_seq, from_seq + n).
            let a = segment_for_seq(&v.segments, from_seq).unwrap_or(0);
            let b = segment_for_seq(&v.segments, from_seq + n as u64 - 1).unwrap_or(0);
            (v.next_seq, n, v.segments[a..=b.max(a)].to_vec())
        };
        // One extra entry, when it exists, marks where the last wanted frame ends.
        let have_next = from_seq + (n as u64) < next_seq;
        let raw = self.seq_index.read(from_seq, n + have_next as usize)?;
        let pos: Vec<u64> = raw
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
            .collect();
        let mut out = Vec::with_capacity(n);
        let mut k = 0usize;
        while k < n {
            let seq = from_seq + k as u64;
            let si = segment_for_seq(&segs, seq).ok_or_else(|| {
                self.corrupt(
                    &self.seq_index.path,
                    seq * 8,
                    "seq before the first segment",
                )
            })?;
            let seg = &segs[si];
            let seg_end_seq = seg.base + seg.records;
            let run_end = (seg_end_seq.min(from_seq + n as u64) - from_seq) as usize; // exclusive k
            let start = pos[k];
            let end = if run_end < pos.len() && from_seq + (run_end as u64) < seg_end_seq {
                pos[run_end]
            } else {
                seg.len
            };
            if end < start || end > seg.len {
                return Err(self.corrupt(&self.seq_index.path, seq * 8, "entry out of range"));
            }
            let mut b = vec![0u8; (end - start) as usize];
            seg.file
                .read_exact_at(&mut b, start)
                .ctx("read log segment", &seg.path)?;
            let mut off = 0usize;
            for j in k..run_end {
                let at = start + off as u64;
                let rec = self.decode_record(&b[off..], &seg.path, at)?;
                if rec.pos.seq != from_seq + j as u64 {
                    return Err(self.corrupt(&seg.path, at, "record out of sequence"));
                }
                off += FRAME_PREFIX + RECORD_HEADER_LEN + rec.payload.len();
                out.push(rec);
            }
            k = run_end;
        }
        Ok(out)
    }

    pub(crate) fn scan_time(&self, from: Timestamp, to: Timestamp) -> TimeScan {
        let segs: Vec<Segment> = self
            .view
            .read()
            .segments
            .iter()
            .filter(|s| s.may_overlap(from.0, to.0))
            .cloned()
            .collect();
        TimeScan {
            dir: self.dir.clone(),
            segs: segs.into_iter(),
            cur: None,
            from: from.0,
            to: to.0,
            buf: Vec::new(),
        }
    }
}

/// Parses a record body into the API type.
fn to_record(body: &[u8]) -> Result<StoredRecord, &'static str> {
    let (h, payload) = RecordHeaderV1::decode(body)?;
    Ok(StoredRecord {
        pos: RecordPos {
            partition: Partition(h.partition),
            offset: h.offset,
            seq: h.seq,
        },
        person: PersonKey(h.person),
        kind: EventKind::from_code(h.kind).ok_or("unknown event kind")?,
        event_time: Timestamp(h.event_time_ms),
        received_at: Timestamp(h.received_ms),
        codec: Codec::from_code(h.codec).ok_or("unknown codec")?,
        payload: payload.to_vec(),
    })
}

/// Streaming iterator of [`Store::scan_time`](crate::Store::scan_time): records with event
/// time in `[from, to)`, in log order, segment by segment.
pub struct TimeScan {
    dir: PathBuf,
    segs: std::vec::IntoIter<Segment>,
    cur: Option<(BufReader<File>, PathBuf, u64, u64)>, // reader, path, position, end
    from: i64,
    to: i64,
    buf: Vec<u8>,
}

impl TimeScan {
    fn corrupt(&self, path: &std::path::Path, pos: u64, reason: &str) -> StoreError {
        StoreError::Corrupt {
            dir: self.dir.clone(),
            path: path.to_path_buf(),
            pos,
            reason: reason.into(),
        }
    }

    fn next_frame(&mut self) -> Result<Option<StoredRecord>, StoreError> {
        loop {
            if self.cur.is_none() {
                let Some(seg) = self.segs.next() else {
                    return Ok(None);
                };
                // Our own handle: a sequential buffered stream, independent of other readers.
                let mut f = File::open(&seg.path).ctx("open log segment", &seg.path)?;
                let start = crate::format::FILE_HEADER_LEN as u64;
                std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(start))
                    .ctx("seek", &seg.path)?;
                self.cur = Some((
                    BufReader::with_capacity(1 << 20, f),
                    seg.path.clone(),
                    start,
                    seg.len,
                ));
            }
            let (reader, path, pos, end) = self.cur.as_mut().expect("set above");
            if *pos >= *end {
                self.cur = None;
                continue;
            }
            let at = *pos;
            self.buf.resize(FRAME_PREFIX, 0);
            reader
                .read_exact(&mut self.buf)
                .ctx("read log segment", path)?;
            let len = u32::from_le_bytes(self.buf[..4].try_into().expect("4")) as usize;
            if len > MAX_BODY || at + (FRAME_PREFIX + len) as u64 > *end {
                let p = path.clone();
                return Err(self.corrupt(&p, at, "frame length out of range"));
            }
            self.buf.resize(FRAME_PREFIX + len, 0);
            reader
                .read_exact(&mut self.buf[FRAME_PREFIX..])
                .ctx("read log segment", path)?;
            *pos += (FRAME_PREFIX + len) as u64;
            // Cheap filter on the header before the checksum and the payload copy.
            if len >= RECORD_HEADER_LEN {
                let et = i64::from_le_bytes(
                    self.buf[FRAME_PREFIX + 24..FRAME_PREFIX + 32]
                        .try_into()
                        .expect("8"),
                );
                if et < self.from || et >= self.to {
                    continue;
                }
            }
            let path = path.clone();
            return match decode_frame(&self.buf, RECORD_HEADER_LEN) {
                Frame::Ok { body, .. } => to_record(body)
                    .map(Some)
                    .map_err(|r| self.corrupt(&path, at, r)),
                Frame::Bad(r) => Err(self.corrupt(&path, at, r)),
                Frame::Incomplete { .. } => Err(self.corrupt(&path, at, "truncated frame")),
            };
        }
    }
}

impl Iterator for TimeScan {
    type Item = Result<StoredRecord, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_frame() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => None,
            Err(e) => {
                // Stop after reporting an error once.
                self.cur = None;
                self.segs = Vec::new().into_iter();
                Some(Err(e))
            }
        }
    }
}
