//! The commit log's in-memory bookkeeping: segment metadata, the index files, and the view
//! that the committer publishes to readers after every fsync ("durable up to here").
//!
//! This module must never expose to readers a byte or an index entry that is not durable:
//! [`View`] is only advanced by the committer after `fdatasync` returned.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{IoContext, StoreError};
use crate::format::{FILE_HEADER_LEN, FORMAT_VERSION, FileHeader, LOG_MAGIC, segment_file_name};
use crate::frames::fsync_dir;

/// One segment file of the log.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Global seq of its first record (= file name).
    pub base: u64,
    pub path: PathBuf,
    /// Read+write handle: the committer writes with `pwrite`, readers use `pread`.
    pub file: Arc<File>,
    /// Byte length (committer: written so far; view: durable).
    pub len: u64,
    pub records: u64,
    pub min_et: i64,
    pub max_et: i64,
}

impl Segment {
    /// Creates a new, empty segment file (header only, fsynced, directory fsynced).
    pub fn create(log_dir: &Path, base: u64) -> Result<Segment, StoreError> {
        let path = log_dir.join(segment_file_name(base));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .ctx("create segment", &path)?;
        let h = FileHeader {
            magic: LOG_MAGIC,
            version: FORMAT_VERSION,
            base,
        };
        (&file)
            .write_all(&h.encode())
            .ctx("write segment header", &path)?;
        file.sync_all().ctx("fsync", &path)?;
        fsync_dir(log_dir)?;
        Ok(Segment::new(base, path, file, FILE_HEADER_LEN as u64))
    }

    pub fn open(path: PathBuf, base: u64) -> Result<Segment, StoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .ctx("open segment", &path)?;
        Ok(Segment::new(base, path, file, 0))
    }

    fn new(base: u64, path: PathBuf, file: File, len: u64) -> Segment {
        Segment {
            base,
            path,
            file: Arc::new(file),
            len,
            records: 0,
            min_et: i64::MAX,
            max_et: i64::MIN,
        }
    }

    pub fn note_record(&mut self, event_time_ms: i64) {
        self.records += 1;
        self.min_et = self.min_et.min(event_time_ms);
        self.max_et = self.max_et.max(event_time_ms);
    }

    /// Whether some record may have an event time in `[from, to)`.
    pub fn may_overlap(&self, from: i64, to: i64) -> bool {
        self.records > 0 && self.min_et < to && self.max_et >= from
    }
}

/// Index of the segment holding `seq` among segments sorted by base.
pub fn segment_for_seq(segs: &[Segment], seq: u64) -> Option<usize> {
    let i = segs.partition_point(|s| s.base <= seq);
    i.checked_sub(1)
}

/// A fixed-width index file (`pNNN.idx` or `seq.idx`).
#[derive(Debug)]
pub struct IndexFile {
    pub path: PathBuf,
    pub file: File,
    pub entry_len: usize,
}

impl IndexFile {
    pub fn open(path: PathBuf, entry_len: usize) -> Result<IndexFile, StoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .ctx("open index", &path)?;
        Ok(IndexFile {
            path,
            file,
            entry_len,
        })
    }

    pub fn entries_on_disk(&self) -> Result<u64, StoreError> {
        let len = self.file.metadata().ctx("stat", &self.path)?.len();
        Ok(len / self.entry_len as u64)
    }

    pub fn truncate_entries(&self, n: u64) -> Result<(), StoreError> {
        self.file
            .set_len(n * self.entry_len as u64)
            .ctx("truncate index", &self.path)
    }

    /// Writes encoded entries starting at entry number `first`.
    pub fn write_at(&self, first: u64, bytes: &[u8]) -> Result<(), StoreError> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.file
            .write_all_at(bytes, first * self.entry_len as u64)
            .ctx("write index", &self.path)
    }

    /// Reads entries `[first, first + n)`.
    pub fn read(&self, first: u64, n: usize) -> Result<Vec<u8>, StoreError> {
        let mut b = vec![0u8; n * self.entry_len];
        self.file
            .read_exact_at(&mut b, first * self.entry_len as u64)
            .ctx("read index", &self.path)?;
        Ok(b)
    }

    pub fn sync(&self) -> Result<(), StoreError> {
        self.file.sync_data().ctx("fsync index", &self.path)
    }
}

/// What readers may see: only records whose fsync completed.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub segments: Vec<Segment>,
    pub next_seq: u64,
    pub next_offsets: Vec<u64>,
    pub dedup_entries: usize,
}
