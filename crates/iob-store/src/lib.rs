//! The durable embedded event store of iob (everything under `--data-dir`).
//!
//! * An append-only, checksummed, **group-committed** commit log shared by all partitions
//!   (one fsync per group, whatever the partition count), readable by partition offset
//!   ([`Store::read_partition`]), by global sequence ([`Store::read_log`]) and by event-time
//!   range ([`Store::scan_time`]).
//! * Survives `kill -9` at any moment: nothing is acknowledged before its `fdatasync`, and
//!   recovery cuts the torn tail ([`recovery`](crate::Store::recovery_report)).
//! * The messageId dedup table (exactly-once effect within a window).
//! * The [`Quarantine`] of rejected events.
//!
//! Layout of `DIR`: `FORMAT`, `LOCK`, `CHECKPOINT`, `dedup.snap`, `log/*.seg`,
//! `index/pNNN.idx`, `index/seq.idx`, `quarantine/`. Byte layouts are in [`format`].
//!
//! This crate must never acknowledge a write before it is durable, never hand out a read of
//! personal data without a [`Permit`], and never interpret payloads (they are opaque bytes,
//! possibly sealed per person).

mod batch;
pub mod bench_support;
mod checkpoint;
mod committer;
mod dedup;
mod dir;
mod direct;
mod error;
mod fingerprints;
pub mod format;
mod frames;
mod log;
mod quarantine;
mod read;
mod recovery;
mod store;

pub use batch::{Payload, RecordBatch};
pub use error::StoreError;
/// Small durable files beside the log (checkpoints, snapshots): written atomically.
pub use frames::{read_optional, write_atomic};
pub use quarantine::{NewQuarantined, Quarantine, QuarantineCounts, QuarantineEntry, Resolution};
pub use read::TimeScan;
pub use recovery::{RecoveryReport, TornTail};
pub use store::Store;

use std::time::Duration;

use iob_types::{EventKind, Partition, PersonKey, Timestamp};

pub use iob_govern::Permit;

/// Tuning of a [`Store`]. `partitions` is fixed when the directory is created.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub partitions: u32,
    /// A segment is rolled once it would grow past this many bytes.
    pub segment_bytes: u64,
    /// A dedup key stored less than this long (by receive time) before a record makes that
    /// record a [`AppendOutcome::Duplicate`].
    pub dedup_window_ms: i64,
    /// At most this many dedup keys are held in memory (~25-40 bytes each); a key is
    /// remembered for the window unless more than half this many newer keys arrived since.
    pub dedup_max_entries: usize,
    /// How often the committer checkpoints (index fsync, dedup snapshot, `CHECKPOINT`).
    pub checkpoint_interval: Duration,
    /// Upper bound on records per group commit (a single larger batch still goes in one group).
    pub max_group_records: usize,
    /// Write the log with direct I/O (`O_DIRECT`) where the file system supports it; falls back
    /// to buffered writes otherwise. Saves the page-cache copy (a quarter of ingest CPU here).
    pub direct_io: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            partitions: 8,
            segment_bytes: 128 * 1024 * 1024,
            dedup_window_ms: 24 * 60 * 60 * 1000,
            dedup_max_entries: 4_000_000,
            checkpoint_interval: Duration::from_secs(10),
            max_group_records: 64 * 1024,
            direct_io: true,
        }
    }
}

/// Largest payload accepted by [`Store::append`].
pub const MAX_PAYLOAD: usize = format::MAX_BODY - format::RECORD_HEADER_LEN;

/// How a payload is encoded. The store never looks inside; the code must round-trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Codec {
    /// Plain canonical JSON of an `iob_types::Event`.
    Json = 0,
    /// Sealed with the person's data key (AEAD): erasing the person destroys the key.
    Sealed = 1,
    /// Sealed with the person's data key, then with a retention key of the event's day: the
    /// payload is unreadable once either key is destroyed (erasure or retention).
    SealedExpiring = 2,
}

impl Codec {
    pub fn code(self) -> u8 {
        self as u8
    }
    pub fn from_code(c: u8) -> Option<Codec> {
        match c {
            0 => Some(Codec::Json),
            1 => Some(Codec::Sealed),
            2 => Some(Codec::SealedExpiring),
            _ => None,
        }
    }
}

/// A record to append. `P` is where its payload is: its own bytes, or (in a [`RecordBatch`])
/// a [`Payload`] that may point into the batch's shared buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord<P = Vec<u8>> {
    pub person: PersonKey,
    pub kind: EventKind,
    pub event_time: Timestamp,
    pub received_at: Timestamp,
    /// Hash of source + messageId (all-zero is treated as none).
    pub dedup_key: Option<[u8; 16]>,
    pub codec: Codec,
    pub payload: P,
}

/// Turns records into their stored form on the committer thread, after the batch is handed
/// to the store: encryption at rest (`iob-engine`'s privacy module). The store stays blind to
/// what payloads mean; it only calls this and writes what it returns. Work done here runs in
/// parallel with the threads that parse the next requests.
///
/// Sealing is two steps so that it can happen in the group buffer, without a copy of its own:
/// [`Sealer::prepare`] looks at the whole batch first (fetching or durably issuing keys, and
/// rewriting payloads that must change before they are sealed); the committer then copies
/// each record it keeps (duplicates are not sealed) into the group buffer and asks the
/// returned [`BatchSeal`] to seal it there.
pub trait Sealer: Send + Sync {
    /// Readies `batch` for sealing. An error fails the whole batch, before anything of it is
    /// written.
    fn prepare<'s>(&'s self, batch: &mut RecordBatch) -> Result<Box<dyn BatchSeal + 's>, String>;
}

/// The sealing of one prepared [`RecordBatch`]; `i` is a record's index in it.
pub trait BatchSeal {
    /// How many bytes sealing record `i` adds to its payload (its frame is sized with it).
    fn overhead(&self, i: usize) -> usize;

    /// A hint that record `i` is sealed next: its key material may be fetched into the cache.
    fn prefetch(&self, i: usize) {
        let _ = i;
    }

    /// Seals record `i`, whose plaintext is `buf[at..]`, in place: afterwards `buf[at..]` is
    /// its stored form, exactly [`BatchSeal::overhead`] bytes longer. Returns the stored codec.
    fn seal(
        &mut self,
        i: usize,
        record: &NewRecord<Payload>,
        buf: &mut Vec<u8>,
        at: usize,
    ) -> Codec;
}

/// Where a record lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordPos {
    pub partition: Partition,
    /// Dense per partition, from 0.
    pub offset: u64,
    /// Dense over the whole log, from 0.
    pub seq: u64,
}

/// The result of appending one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    Stored(RecordPos),
    /// Its dedup key was stored within the window: not stored again.
    Duplicate,
}

/// A durable record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub pos: RecordPos,
    pub person: PersonKey,
    pub kind: EventKind,
    pub event_time: Timestamp,
    pub received_at: Timestamp,
    pub codec: Codec,
    pub payload: Vec<u8>,
}

/// A snapshot of the store's counters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoreStats {
    pub events: u64,
    pub log_bytes: u64,
    pub segments: usize,
    pub next_seq: u64,
    pub partition_offsets: Vec<u64>,
    pub dedup_entries: usize,
    pub quarantine_open: u64,
    pub quarantine_resolved: u64,
}

/// Completion callback of [`Store::append_with`].
pub type AppendDone = Box<dyn FnOnce(Result<Vec<AppendOutcome>, StoreError>) + Send>;
