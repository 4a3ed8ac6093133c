//! [`Store`]: opening a data directory (lock, format check, recovery), the committer thread's
//! lifecycle, and the public API that forwards to the committer and the readers.
//!
//! This module must never let a write bypass the committer, and never release the directory
//! lock while the committer thread may still write.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use iob_types::{Partition, Timestamp};
use parking_lot::{Mutex, RwLock};

use crate::committer::{Committer, Msg};
use crate::dir::{DirLock, check_format};
use crate::error::{IoContext, StoreError};
use crate::log::{IndexFile, View};
use crate::quarantine::Quarantine;
use crate::read::TimeScan;
use crate::recovery::{RecoveryReport, recover};
use crate::{
    AppendDone, AppendOutcome, NewRecord, Permit, RecordBatch, StoreOptions, StoreStats,
    StoredRecord,
};

/// State shared by the committer and the readers.
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub opts: StoreOptions,
    pub view: RwLock<View>,
    pub index: Vec<IndexFile>,
    pub seq_index: IndexFile,
    /// Fault injection for tests: the next group's fsync fails.
    pub fail_next_sync: AtomicBool,
    /// Set once, before the first append (see [`Store::set_sealer`]).
    pub sealer: std::sync::OnceLock<Arc<dyn crate::Sealer>>,
}

/// The event store of one data directory. `Send + Sync`; share it as `Arc<Store>`.
pub struct Store {
    shared: Arc<Shared>,
    tx: Option<Sender<Msg>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    quarantine: Quarantine,
    report: RecoveryReport,
    // Dropped last: the lock outlives the committer.
    _lock: DirLock,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.shared.dir)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Makes the committer pass every batch through `sealer` before framing it. Call it once,
    /// right after opening and before any append; later calls are ignored (returns false).
    pub fn set_sealer(&self, sealer: Arc<dyn crate::Sealer>) -> bool {
        self.shared.sealer.set(sealer).is_ok()
    }

    /// Opens (creating if empty) the store in `dir`, recovering from a crash if needed.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        validate(&opts)?;
        std::fs::create_dir_all(dir).ctx("create data directory", dir)?;
        let lock = DirLock::acquire(dir)?;
        check_format(dir, opts.partitions)?;
        let r = recover(dir, &opts)?;
        let quarantine = Quarantine::open(&dir.join("quarantine"))?;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            opts,
            view: RwLock::new(View {
                segments: r.segs.clone(),
                next_seq: r.next_seq,
                next_offsets: r.next_offsets.clone(),
                dedup_entries: r.dedup.len(),
            }),
            index: r.index,
            seq_index: r.seq_index,
            fail_next_sync: AtomicBool::new(false),
            sealer: std::sync::OnceLock::new(),
        });
        let mut committer = Committer::new(
            Arc::clone(&shared),
            r.dedup,
            r.segs,
            r.next_seq,
            r.next_offsets,
            r.generation,
        );
        // Make recovery's work durable before taking writes, so the next open starts here.
        committer.checkpoint()?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("iob-store-commit".into())
            .spawn(move || committer.run(rx))
            .ctx("spawn committer thread", dir)?;
        Ok(Store {
            shared,
            tx: Some(tx),
            thread: Mutex::new(Some(thread)),
            quarantine,
            report: r.report,
            _lock: lock,
        })
    }

    /// Appends a batch and blocks until it is durable. Outcomes are in batch order.
    pub fn append(&self, batch: Vec<NewRecord>) -> Result<Vec<AppendOutcome>, StoreError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.append_with(
            batch,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().unwrap_or(Err(StoreError::Closed))
    }

    /// Appends without blocking; `done` runs on the committer thread after the fsync (keep it
    /// short: send on a channel).
    pub fn append_with(&self, batch: Vec<NewRecord>, done: AppendDone) {
        self.append_batch_with(batch.into(), done);
    }

    /// [`Store::append_with`] of a [`RecordBatch`] (payloads may share one buffer).
    pub fn append_batch_with(&self, batch: RecordBatch, done: AppendDone) {
        let Some(tx) = &self.tx else {
            return done(Err(StoreError::Closed));
        };
        if let Err(e) = tx.send(Msg::Append { batch, done })
            && let Msg::Append { done, .. } = e.into_inner()
        {
            done(Err(StoreError::Closed));
        }
    }

    /// Up to `max` records of `partition` from offset `from_offset`.
    pub fn read_partition(
        &self,
        permit: &Permit,
        partition: Partition,
        from_offset: u64,
        max: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let _ = permit;
        self.shared.read_partition(partition, from_offset, max)
    }

    /// Up to `max` records in global log order from `from_seq` (export, tail, replay).
    pub fn read_log(
        &self,
        permit: &Permit,
        from_seq: u64,
        max: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let _ = permit;
        self.shared.read_log(from_seq, max)
    }

    /// Records with event time in `[from, to)`, in log order (not time order: events arrive
    /// late). Segments that cannot hold such events are skipped.
    pub fn scan_time(
        &self,
        permit: &Permit,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<impl Iterator<Item = Result<StoredRecord, StoreError>> + '_, StoreError> {
        let _ = permit;
        let scan: TimeScan = self.shared.scan_time(from, to);
        Ok(scan)
    }

    pub fn stats(&self) -> StoreStats {
        let q = self.quarantine.counts();
        let v = self.shared.view.read();
        StoreStats {
            events: v.next_seq - v.segments.first().map_or(0, |s| s.base),
            log_bytes: v.segments.iter().map(|s| s.len).sum(),
            segments: v.segments.len(),
            next_seq: v.next_seq,
            partition_offsets: v.next_offsets.clone(),
            dedup_entries: v.dedup_entries,
            quarantine_open: q.open,
            quarantine_resolved: q.resolved,
        }
    }

    pub fn partitions(&self) -> u32 {
        self.shared.opts.partitions
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    pub fn quarantine(&self) -> &Quarantine {
        &self.quarantine
    }

    /// What recovery did when this store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Checkpoints now (index fsync, dedup snapshot, `CHECKPOINT`).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let tx = self.tx.as_ref().ok_or(StoreError::Closed)?;
        let (rtx, rrx) = crossbeam_channel::bounded(1);
        tx.send(Msg::Checkpoint(rtx))
            .map_err(|_| StoreError::Closed)?;
        rrx.recv().unwrap_or(Err(StoreError::Closed))
    }

    /// Final checkpoint, stops the committer, releases the lock.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.shutdown(true)
    }

    /// Stops the committer **without** a final checkpoint, as if the process died right after
    /// its last fsync. For crash-recovery tests.
    #[doc(hidden)]
    pub fn crash_for_test(mut self) {
        let _ = self.shutdown(false);
    }

    /// Makes the next group commit's fsync fail. For failure tests.
    #[doc(hidden)]
    pub fn fail_next_fsync_for_test(&self) {
        self.shared
            .fail_next_sync
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn shutdown(&mut self, checkpoint: bool) -> Result<(), StoreError> {
        let Some(tx) = self.tx.take() else {
            return Ok(());
        };
        let (rtx, rrx) = crossbeam_channel::bounded(1);
        let sent = tx
            .send(Msg::Shutdown {
                checkpoint,
                reply: rtx,
            })
            .is_ok();
        let r = if sent {
            rrx.recv().unwrap_or(Err(StoreError::Closed))
        } else {
            Ok(())
        };
        drop(tx);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
        r
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.shutdown(true);
    }
}

fn validate(o: &StoreOptions) -> Result<(), StoreError> {
    let bad = |m: String| Err(StoreError::InvalidOption(m));
    if o.partitions == 0 || o.partitions > 4096 {
        return bad(format!("partitions must be 1..=4096, got {}", o.partitions));
    }
    if o.segment_bytes < 256 {
        return bad(format!(
            "segment_bytes must be at least 256, got {}",
            o.segment_bytes
        ));
    }
    if o.dedup_max_entries < 2 {
        return bad(format!(
            "dedup_max_entries must be at least 2, got {}",
            o.dedup_max_entries
        ));
    }
    if o.dedup_window_ms < 0 {
        return bad(format!(
            "dedup_window_ms must not be negative, got {}",
            o.dedup_window_ms
        ));
    }
    if o.checkpoint_interval.is_zero() {
        return bad("checkpoint_interval must be positive".into());
    }
    Ok(())
}
