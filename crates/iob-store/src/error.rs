//! The one error type of the store. Every variant says what happened, where, and what the
//! operator can do about it. Errors are `Clone` because one failed group commit answers many
//! callers with the same error.
//!
//! This module must never put personal data (payloads, raw identifiers) in a message.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

#[derive(Debug, Error, Clone)]
pub enum StoreError {
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },

    #[error("data directory {} is in use by another iob process ({}): stop `iob serve` first or use the HTTP API", dir.display(), match pid { Some(p) => format!("pid {p}"), None => "pid unknown".to_string() })]
    Locked { dir: PathBuf, pid: Option<u32> },

    #[error("data directory {} holds store format version {found}, but this iob reads version {supported}: use an iob release that supports it", dir.display())]
    FormatVersion {
        dir: PathBuf,
        found: u64,
        supported: u16,
    },

    #[error("{} is not an iob store data directory ({reason}): point --data-dir at an iob data directory or an empty one", dir.display())]
    NotAStore { dir: PathBuf, reason: String },

    #[error("data directory {} was created with {on_disk} partitions but {requested} were requested: the partition count is fixed at creation, set it back to {on_disk}", dir.display())]
    PartitionCount {
        dir: PathBuf,
        on_disk: u32,
        requested: u32,
    },

    #[error("store file {} is corrupt at byte {pos}: {reason}; if this is an index file, stop iob and delete {}/index to rebuild it from the log", path.display(), dir.display())]
    Corrupt {
        dir: PathBuf,
        path: PathBuf,
        pos: u64,
        reason: String,
    },

    #[error(
        "record payload of {size} bytes exceeds the limit of {max} bytes: split the event or raise the collector's size limit below it"
    )]
    RecordTooLarge { size: usize, max: usize },
    /// The sealer (encryption at rest) could not turn a batch into its stored form; nothing
    /// of the batch was written.
    #[error("sealing the records failed: {0}")]
    Seal(String),

    #[error("partition {partition} does not exist: this store has partitions 0..{count}")]
    NoSuchPartition { partition: u32, count: u32 },

    #[error("invalid store option: {0}")]
    InvalidOption(String),

    #[error("the store is closed")]
    Closed,

    #[error(
        "the store stopped accepting writes after a failure ({reason}): restart iob to recover from the log"
    )]
    Failed { reason: String },
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: &Path, e: io::Error) -> StoreError {
        StoreError::Io {
            op,
            path: path.to_path_buf(),
            source: Arc::new(e),
        }
    }
}

/// `result.ctx("open", &path)?`: attach what was attempted and where to an I/O error.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T, StoreError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::io(op, path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_actionable() {
        let e = StoreError::Locked {
            dir: "/x".into(),
            pid: Some(123),
        };
        assert_eq!(
            e.to_string(),
            "data directory /x is in use by another iob process (pid 123): stop `iob serve` first or use the HTTP API"
        );
        let e = StoreError::PartitionCount {
            dir: "/d".into(),
            on_disk: 8,
            requested: 16,
        };
        assert!(e.to_string().contains("8 partitions but 16"), "{e}");
    }
}
