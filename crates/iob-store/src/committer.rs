//! The committer thread: the single writer of the log, the indexes and the dedup table.
//!
//! It drains every pending append (up to `max_group_records`), has the [`crate::Sealer`]
//! prepare each batch, assigns seqs and partition offsets, filters duplicates, frames each kept
//! record in the group buffer and seals it there, writes the group's frames with one `pwrite`
//! per segment, calls `fdatasync` once, then advances the index, publishes the new durable view
//! to readers and answers every caller. Between groups it checkpoints.
//!
//! It must never answer `Ok` before the fsync returned, and never leave the log, the view or
//! the dedup table half-advanced when a write or fsync fails: the file is cut back to its
//! pre-group length and the in-memory state restored.

use std::fs;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::checkpoint::{CHECKPOINT_VERSION, Checkpoint, SegmentStat};
use crate::dedup::DedupTable;
use crate::direct::{DirectAppender, GroupBuf};
use crate::error::{IoContext, StoreError};
use crate::format::{
    FILE_HEADER_LEN, FRAME_PREFIX, IndexEntry, RECORD_HEADER_LEN, RecordHeaderV1,
    encode_record_frame_with,
};
use crate::frames::fsync_dir;
use crate::log::Segment;
use crate::store::Shared;
use crate::{
    AppendDone, AppendOutcome, BatchSeal, MAX_PAYLOAD, RecordBatch, RecordPos, StoreError as E,
};
use iob_types::Partition;

/// Requests to the committer.
pub enum Msg {
    Append {
        batch: RecordBatch,
        done: AppendDone,
    },
    Checkpoint(Sender<Result<(), StoreError>>),
    /// Stop; with `checkpoint: false` this simulates a crash right after the last fsync.
    Shutdown {
        checkpoint: bool,
        reply: Sender<Result<(), StoreError>>,
    },
}

/// The committer's authoritative state (readers see the published [`crate::log::View`]).
pub struct Committer {
    pub shared: Arc<Shared>,
    pub dedup: DedupTable,
    pub segs: Vec<Segment>,
    pub next_seq: u64,
    pub next_offsets: Vec<u64>,
    pub generation: u64,
    pub dirty: bool,
    pub failed: Option<String>,
    /// The group's frames, laid out for the direct writer.
    buf: GroupBuf,
    index_bufs: Vec<Vec<u8>>,
    seq_buf: Vec<u8>,
    /// Direct-I/O writer of the active segment; `None` on file systems without it.
    direct: Option<DirectAppender>,
    /// Cleared for good at the first `EINVAL` from a direct write.
    direct_enabled: bool,
}

type Group = Vec<(RecordBatch, AppendDone)>;

/// How many records ahead the committer requests a dedup slot (a memory miss of ~100 ns
/// against ~2 µs of work per record).
const DEDUP_AHEAD: usize = 4;

impl Committer {
    pub fn new(
        shared: Arc<Shared>,
        dedup: DedupTable,
        segs: Vec<Segment>,
        next_seq: u64,
        next_offsets: Vec<u64>,
        generation: u64,
    ) -> Committer {
        let n = next_offsets.len();
        let direct_enabled = shared.opts.direct_io;
        let mut c = Committer {
            shared,
            dedup,
            segs,
            next_seq,
            next_offsets,
            generation,
            dirty: false,
            failed: None,
            buf: GroupBuf::default(),
            index_bufs: vec![Vec::new(); n],
            seq_buf: Vec::new(),
            direct: None,
            direct_enabled,
        };
        c.direct = c.open_direct();
        c
    }

    /// A direct writer for the active segment, if direct I/O is on and the file system has it.
    fn open_direct(&self) -> Option<DirectAppender> {
        if !self.direct_enabled {
            return None;
        }
        let s = self.segs.last().expect("a segment");
        DirectAppender::open(&s.path, &s.file, s.len)
    }

    /// Cuts the direct writer's zero padding off the active segment (on roll and close).
    fn cut_padding(&self) -> Result<(), StoreError> {
        let s = self.segs.last().expect("a segment");
        if self.direct.is_some() {
            s.file.set_len(s.len).ctx("cut segment padding", &s.path)?;
        }
        Ok(())
    }

    /// The thread body.
    pub fn run(mut self, rx: Receiver<Msg>) {
        let interval = self.shared.opts.checkpoint_interval;
        let max = self.shared.opts.max_group_records.max(1);
        let mut next_ckpt = Instant::now() + interval;
        let mut control = Vec::new();
        loop {
            let wait = next_ckpt.saturating_duration_since(Instant::now());
            let first = match rx.recv_timeout(wait) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.checkpoint();
                    return;
                }
            };
            let mut group: Group = Vec::new();
            let mut records = 0usize;
            let mut next = first;
            while let Some(m) = next.take() {
                match m {
                    Msg::Append { batch, done } => {
                        records += batch.len();
                        group.push((batch, done));
                    }
                    other => control.push(other),
                }
                if records < max && control.is_empty() {
                    next = rx.try_recv().ok();
                }
            }
            if !group.is_empty() {
                self.commit_group(group);
            }
            for m in control.drain(..) {
                match m {
                    Msg::Checkpoint(reply) => {
                        let _ = reply.send(self.checkpoint());
                    }
                    Msg::Shutdown { checkpoint, reply } => {
                        let r = if checkpoint {
                            self.cut_padding().and_then(|()| self.checkpoint())
                        } else {
                            Ok(())
                        };
                        let _ = reply.send(r);
                        return;
                    }
                    Msg::Append { .. } => unreachable!("appends go to the group"),
                }
            }
            if Instant::now() >= next_ckpt {
                if self.dirty {
                    // A failed periodic checkpoint loses nothing (the log is durable); the next
                    // one retries, and recovery rescans further.
                    let _ = self.checkpoint();
                }
                next_ckpt = Instant::now() + interval;
            }
        }
    }

    /// Writes, fsyncs, publishes and answers one group.
    pub fn commit_group(&mut self, mut group: Group) {
        if let Some(reason) = &self.failed {
            let e = E::Failed {
                reason: reason.clone(),
            };
            for (_, done) in group {
                done(Err(e.clone()));
            }
            return;
        }
        let seg_count0 = self.segs.len();
        let last0 = self.segs.last().expect("a segment").clone();
        let seq0 = self.next_seq;
        let offsets0 = self.next_offsets.clone();
        let mut undo: Vec<(u64, Option<i64>)> = Vec::new();
        let mut results: Vec<Result<Vec<AppendOutcome>, StoreError>> =
            Vec::with_capacity(group.len());
        self.restart_buf();
        self.seq_buf.clear();
        for b in &mut self.index_bufs {
            b.clear();
        }
        let mut buf_start = last0.len;
        let mut io: Result<(), StoreError> = Ok(());
        let partitions = self.shared.opts.partitions;
        let segment_bytes = self.shared.opts.segment_bytes;

        let sealer = self.shared.sealer.get().cloned();
        'batches: for (batch, _) in &mut group {
            let mut seal = match sealer.as_deref().map(|s| s.prepare(batch)).transpose() {
                Ok(seal) => seal,
                Err(reason) => {
                    results.push(Err(E::Seal(reason)));
                    continue;
                }
            };
            let stored_len = |seal: &Option<Box<dyn BatchSeal + '_>>, i: usize| {
                batch.payload(i).len() + seal.as_ref().map_or(0, |s| s.overhead(i))
            };
            if let Some(size) = (0..batch.len())
                .map(|i| stored_len(&seal, i))
                .find(|n| *n > MAX_PAYLOAD)
            {
                results.push(Err(E::RecordTooLarge {
                    size,
                    max: MAX_PAYLOAD,
                }));
                continue;
            }
            // Each record's dedup slot is requested a few records ahead, so its cache miss
            // overlaps the work on the records before it. (Requesting the whole batch's slots
            // up front lost many to eviction: the loop streams ~1.5 MB per thousand records
            // through the cache.)
            let dedup_ahead = |dedup: &DedupTable, i: usize| {
                if let Some(k) = batch.records().get(i).and_then(|r| r.dedup_key) {
                    dedup.prefetch(DedupTable::key(&k));
                }
            };
            for i in 0..DEDUP_AHEAD {
                dedup_ahead(&self.dedup, i);
            }
            let mut outs = Vec::with_capacity(batch.len());
            for (i, rec) in batch.records().iter().enumerate() {
                dedup_ahead(&self.dedup, i + DEDUP_AHEAD);
                // The next payload (and its key) is asked for while this one is copied and
                // sealed: it was written by another thread a while ago, and is no longer in this
                // core's cache.
                if i + 1 < batch.len() {
                    let next = batch.payload(i + 1);
                    iob_types::prefetch(next.as_ptr(), next.len());
                    if let Some(s) = &seal {
                        s.prefetch(i + 1);
                    }
                }
                let key = rec
                    .dedup_key
                    .filter(|k| k != &[0u8; 16])
                    .map(|k| DedupTable::key(&k));
                if let Some(k) = key {
                    match self.dedup.admit(k, rec.received_at.0) {
                        None => {
                            outs.push(AppendOutcome::Duplicate);
                            continue;
                        }
                        // Taken now; a failed write or fsync below gives it back.
                        Some(prev) => undo.push((k, prev)),
                    }
                }
                let frame_len = (FRAME_PREFIX + RECORD_HEADER_LEN + stored_len(&seal, i)) as u64;
                let cur = buf_start + self.buf.len() as u64;
                if cur > FILE_HEADER_LEN as u64
                    && cur + frame_len > segment_bytes
                    && let Err(e) = self.roll(&mut buf_start)
                {
                    io = Err(e);
                    break 'batches;
                }
                let p = rec.person.partition(partitions).0;
                let offset = self.next_offsets[p as usize];
                let seq = self.next_seq;
                let pos = buf_start + self.buf.len() as u64;
                let active = self.segs.last_mut().expect("a segment");
                let h = RecordHeaderV1 {
                    codec: rec.codec.code(),
                    kind: rec.kind.code(),
                    flags: 0,
                    partition: p,
                    offset,
                    seq,
                    event_time_ms: rec.event_time.0,
                    received_ms: rec.received_at.0,
                    person: rec.person.0,
                    dedup_key: rec.dedup_key.unwrap_or([0; 16]),
                };
                // Sealed in the group buffer, right after its plaintext is copied there.
                let plain = batch.payload(i);
                encode_record_frame_with(self.buf.append(), &h, plain, |buf, at| {
                    let codec = seal
                        .as_mut()
                        .map_or(h.codec, |s| s.seal(i, rec, buf, at).code());
                    // The frame was sized (segment roll, size limit) with this length.
                    debug_assert_eq!(buf.len() - at, stored_len(&seal, i), "sealer overhead");
                    codec
                });
                IndexEntry {
                    segment: active.base,
                    pos,
                    event_time_ms: rec.event_time.0,
                }
                .encode_into(&mut self.index_bufs[p as usize]);
                self.seq_buf.extend_from_slice(&pos.to_le_bytes());
                active.note_record(rec.event_time.0);
                self.next_offsets[p as usize] += 1;
                self.next_seq += 1;
                outs.push(AppendOutcome::Stored(RecordPos {
                    partition: Partition(p),
                    offset,
                    seq,
                }));
            }
            results.push(Ok(outs));
        }

        if io.is_ok() {
            io = self
                .flush_buf(buf_start)
                .and_then(|()| self.sync_from(seg_count0 - 1));
        }
        if let Err(e) = io {
            self.rollback(seg_count0, &last0, seq0, offsets0, undo);
            for (_, done) in group {
                done(Err(e.clone()));
            }
            return;
        }

        // Durable. Advance the index (not fsynced here: rebuilt from the log on recovery).
        let mut index_res = self.shared.seq_index.write_at(seq0, &self.seq_buf);
        for (p, b) in self.index_bufs.iter().enumerate() {
            index_res = index_res.and_then(|()| self.shared.index[p].write_at(offsets0[p], b));
        }
        match index_res {
            Ok(()) => self.publish(seg_count0 - 1),
            // The records are durable and will be re-indexed on restart; stop taking writes
            // rather than publish an index that may be wrong.
            Err(e) => self.failed = Some(e.to_string()),
        }
        self.dirty = true;
        for ((_, done), r) in group.into_iter().zip(results) {
            done(r);
        }
    }

    /// Writes the pending buffer into the active segment and rolls to a new one.
    fn roll(&mut self, buf_start: &mut u64) -> Result<(), StoreError> {
        self.flush_buf(*buf_start)?;
        // Sealed segments have exactly their logical length (recovery checks it).
        self.cut_padding()?;
        let log_dir = self.shared.dir.join("log");
        let seg = Segment::create(&log_dir, self.next_seq)?;
        self.segs.push(seg);
        self.direct = self.open_direct();
        self.restart_buf();
        *buf_start = FILE_HEADER_LEN as u64;
        Ok(())
    }

    fn flush_buf(&mut self, buf_start: u64) -> Result<(), StoreError> {
        use std::os::unix::fs::FileExt;
        let active = self.segs.last_mut().expect("a segment");
        let direct = match self
            .direct
            .as_mut()
            .map(|d| d.write_group(&mut self.buf, buf_start))
        {
            Some(Ok(())) => true,
            Some(Err(e)) if e.raw_os_error() == Some(libc::EINVAL) => {
                // The file system took the open but not the write: buffered from now on.
                self.direct = None;
                self.direct_enabled = false;
                false
            }
            Some(Err(e)) => return Err(StoreError::io("write log segment", &active.path, e)),
            None => false,
        };
        if !direct {
            active
                .file
                .write_all_at(self.buf.frames(), buf_start)
                .ctx("write log segment", &active.path)?;
        }
        active.len = buf_start + self.buf.len() as u64;
        self.restart_buf();
        Ok(())
    }

    /// Empties the group buffer for frames after the active segment's current end.
    fn restart_buf(&mut self) {
        let tail = self.direct.as_ref().map_or(&[][..], |d| d.tail());
        self.buf.reset(tail);
    }

    fn sync_from(&self, first: usize) -> Result<(), StoreError> {
        if self.shared.fail_next_sync.swap(false, Ordering::SeqCst) {
            let s = self.segs.last().expect("a segment");
            return Err(StoreError::io(
                "fsync",
                &s.path,
                std::io::Error::other("injected fault"),
            ));
        }
        for s in &self.segs[first..] {
            s.file.sync_data().ctx("fsync log segment", &s.path)?;
        }
        Ok(())
    }

    /// Restores the pre-group state after a failed write or fsync.
    fn rollback(
        &mut self,
        seg_count0: usize,
        last0: &Segment,
        seq0: u64,
        offsets0: Vec<u64>,
        undo: Vec<(u64, Option<i64>)>,
    ) {
        let mut problem: Option<String> = None;
        if self.segs.len() > seg_count0 {
            for s in self.segs.drain(seg_count0..) {
                if let Err(e) = fs::remove_file(&s.path) {
                    problem.get_or_insert(format!("cannot remove {}: {e}", s.path.display()));
                }
            }
            if let Err(e) = fsync_dir(&self.shared.dir.join("log")) {
                problem.get_or_insert(e.to_string());
            }
        }
        let last = self.segs.last_mut().expect("a segment");
        *last = last0.clone();
        if let Err(e) = last
            .file
            .set_len(last0.len)
            .and_then(|()| last.file.sync_all())
        {
            problem.get_or_insert(format!("cannot cut {} back: {e}", last.path.display()));
        }
        // The cut-back file no longer matches the writer's copy of its last block.
        self.direct = self.open_direct();
        self.next_seq = seq0;
        self.next_offsets = offsets0;
        for (k, prev) in undo.into_iter().rev() {
            self.dedup.undo(k, prev);
        }
        if problem.is_some() {
            self.failed = problem;
        }
    }

    fn publish(&self, first_touched: usize) {
        let mut v = self.shared.view.write();
        for i in first_touched..self.segs.len() {
            if i < v.segments.len() {
                v.segments[i] = self.segs[i].clone();
            } else {
                v.segments.push(self.segs[i].clone());
            }
        }
        v.next_seq = self.next_seq;
        v.next_offsets.clone_from(&self.next_offsets);
        v.dedup_entries = self.dedup.len();
    }

    /// Fsyncs the indexes, writes the dedup snapshot, then `CHECKPOINT`.
    pub fn checkpoint(&mut self) -> Result<(), StoreError> {
        if let Some(reason) = &self.failed {
            return Err(E::Failed {
                reason: reason.clone(),
            });
        }
        for idx in &self.shared.index {
            idx.sync()?;
        }
        self.shared.seq_index.sync()?;
        self.dedup.prune();
        let generation = self.generation + 1;
        self.dedup
            .write_snapshot(&self.shared.dir.join("dedup.snap"), generation)?;
        let ckpt = Checkpoint {
            version: CHECKPOINT_VERSION,
            generation,
            next_seq: self.next_seq,
            partitions: self.next_offsets.clone(),
            segments: self
                .segs
                .iter()
                .map(|s| SegmentStat {
                    base: s.base,
                    bytes: s.len,
                    records: s.records,
                    min_et: s.min_et,
                    max_et: s.max_et,
                })
                .collect(),
        };
        ckpt.write(&self.shared.dir.join("CHECKPOINT"))?;
        self.generation = generation;
        self.dirty = false;
        self.shared.view.write().dedup_entries = self.dedup.len();
        Ok(())
    }
}
