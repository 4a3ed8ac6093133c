//! The `CHECKPOINT` file: how far the index files and the dedup snapshot are known to be
//! durable and consistent with the log, so that recovery only rescans the log after it.
//!
//! A checkpoint is a promise about fsynced state; this module must never write one before the
//! index files and the dedup snapshot it describes are fsynced, and never replace it other
//! than atomically (tmp + fsync + rename + directory fsync).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::frames::{read_optional, write_atomic};

pub const CHECKPOINT_VERSION: u32 = 1;

/// Per-segment statistics as of the checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SegmentStat {
    pub base: u64,
    pub bytes: u64,
    pub records: u64,
    pub min_et: i64,
    pub max_et: i64,
}

/// Contents of `DIR/CHECKPOINT` (JSON: small, and readable by an operator).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Checkpoint {
    pub version: u32,
    /// Increases by one per checkpoint; the dedup snapshot carries the one it belongs to.
    pub generation: u64,
    pub next_seq: u64,
    /// Index length (= next offset) of each partition.
    pub partitions: Vec<u64>,
    /// Every segment up to the one the log position is in; the last entry's `bytes` is the
    /// covered log position.
    pub segments: Vec<SegmentStat>,
}

impl Checkpoint {
    pub fn write(&self, path: &Path) -> Result<(), StoreError> {
        let json = serde_json::to_vec(self).expect("serializable");
        write_atomic(path, &json)
    }

    /// Reads the checkpoint. `Ok(None)`: absent. `Err(reason)` inside `Ok`: present but
    /// unusable (the caller falls back to a full rebuild and says why).
    pub fn read(path: &Path) -> Result<Option<Result<Checkpoint, String>>, StoreError> {
        let Some(bytes) = read_optional(path)? else {
            return Ok(None);
        };
        let parsed = serde_json::from_slice::<Checkpoint>(&bytes)
            .map_err(|e| format!("CHECKPOINT is unreadable ({e})"))
            .and_then(|c| {
                if c.version != CHECKPOINT_VERSION {
                    Err(format!("CHECKPOINT has unknown version {}", c.version))
                } else if c.segments.is_empty() {
                    Err("CHECKPOINT lists no segment".to_string())
                } else {
                    Ok(c)
                }
            });
        Ok(Some(parsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_garbage() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("CHECKPOINT");
        assert!(Checkpoint::read(&p).unwrap().is_none());
        let c = Checkpoint {
            version: 1,
            generation: 3,
            next_seq: 10,
            partitions: vec![4, 6],
            segments: vec![SegmentStat {
                base: 0,
                bytes: 999,
                records: 10,
                min_et: 1,
                max_et: 9,
            }],
        };
        c.write(&p).unwrap();
        assert_eq!(Checkpoint::read(&p).unwrap().unwrap().unwrap(), c);
        std::fs::write(&p, b"{\"vers").unwrap();
        assert!(Checkpoint::read(&p).unwrap().unwrap().is_err());
    }
}
