//! The manifest: which Parquet files make up the compacted store, and how far into the log
//! compaction has come. It is the commit point of every change: a file exists for readers only
//! once the manifest naming it is durable, so a crash mid-compaction or mid-rewrite leaves the
//! old, complete state (and orphan files, removed at the next open).
//!
//! The manifest never holds event data, only file names, counts and sequence/time bounds.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ColumnarError;
use crate::schema::FORMAT_VERSION;

/// One compacted file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Days since 1970-01-01 (UTC) of every row's event time.
    pub day: i32,
    /// Unique, never reused.
    pub id: u64,
    pub rows: u64,
    pub bytes: u64,
    pub min_seq: u64,
    pub max_seq: u64,
    pub min_ts: i64,
    pub max_ts: i64,
}

/// The durable state of the columnar store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    /// The first log sequence number not compacted yet.
    pub next_seq: u64,
    /// The next file id.
    pub next_id: u64,
    /// The engine's erasure epoch these files reflect (see `Columnar::reconcile`).
    #[serde(default)]
    pub erasure_epoch: u64,
    pub files: Vec<FileEntry>,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            version: FORMAT_VERSION,
            next_seq: 0,
            next_id: 0,
            erasure_epoch: 0,
            files: Vec::new(),
        }
    }
}

/// `YYYY-MM-DD` of a day number.
pub fn day_name(day: i32) -> String {
    let d = time::Date::from_julian_day(2_440_588 + day).unwrap_or(time::Date::MIN);
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

/// The day number of a millisecond Unix time (the analyses' rule: one day numbering).
pub use iob_analyses::day_of;

impl FileEntry {
    /// Path relative to the store's directory, hive-partitioned (`events/day=2024-03-01/…`),
    /// so other tools (DuckDB, Spark) read the same files with the day as a column.
    pub fn relative_path(&self) -> PathBuf {
        PathBuf::from(format!(
            "events/day={}/part-{:010}.parquet",
            day_name(self.day),
            self.id
        ))
    }
}

impl Manifest {
    const FILE: &'static str = "manifest.json";

    /// Reads the manifest in `dir` (none yet: an empty store).
    pub fn load(dir: &Path) -> Result<Manifest, ColumnarError> {
        let path = dir.join(Self::FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Manifest::default()),
            Err(e) => return Err(ColumnarError::io(format!("reading {}", path.display()), e)),
        };
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let v: Versioned = serde_json::from_slice(&bytes).map_err(|e| ColumnarError::Corrupt {
            what: path.display().to_string(),
            reason: e.to_string(),
        })?;
        if v.version != FORMAT_VERSION {
            return Err(ColumnarError::Version {
                found: v.version,
                expected: FORMAT_VERSION,
            });
        }
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| ColumnarError::Corrupt {
            what: path.display().to_string(),
            reason: e.to_string(),
        })?;
        m.check().map_err(|reason| ColumnarError::Corrupt {
            what: path.display().to_string(),
            reason,
        })?;
        Ok(m)
    }

    fn check(&self) -> Result<(), String> {
        let mut ids = BTreeSet::new();
        for f in &self.files {
            if f.id >= self.next_id || !ids.insert(f.id) {
                return Err(format!("file id {} repeated or not below next_id", f.id));
            }
            if f.min_seq > f.max_seq || f.min_ts > f.max_ts {
                return Err(format!("file id {} has inverted bounds", f.id));
            }
            if f.max_seq >= self.next_seq {
                return Err(format!(
                    "file id {} holds seq {} not compacted yet",
                    f.id, f.max_seq
                ));
            }
        }
        Ok(())
    }

    /// Writes the manifest atomically (temporary file, fsync, rename, directory fsync).
    pub fn store(&self, dir: &Path) -> Result<(), ColumnarError> {
        let bytes = serde_json::to_vec_pretty(self).expect("manifest serializes");
        iob_govern::write_private(&dir.join(Self::FILE), &bytes)
            .map_err(|e| ColumnarError::io("writing the columnar manifest", e))
    }

    /// Files of `day`, oldest first.
    pub fn files_of(&self, day: i32) -> impl Iterator<Item = &FileEntry> {
        self.files.iter().filter(move |f| f.day == day)
    }

    /// Days that have files, ascending.
    pub fn days(&self) -> Vec<i32> {
        let days: BTreeSet<i32> = self.files.iter().map(|f| f.day).collect();
        days.into_iter().collect()
    }

    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_names_and_numbers() {
        assert_eq!(day_name(0), "1970-01-01");
        assert_eq!(day_name(19_783), "2024-03-01");
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(86_400_000 * 19_783 + 5), 19_783);
        assert_eq!(day_of(i64::MAX), i32::MAX);
        assert_eq!(day_of(i64::MIN), i32::MIN);
    }

    #[test]
    fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Manifest::default());
        let m = Manifest {
            version: FORMAT_VERSION,
            next_seq: 10,
            next_id: 2,
            erasure_epoch: 0,
            files: vec![FileEntry {
                day: 1,
                id: 1,
                rows: 3,
                bytes: 100,
                min_seq: 0,
                max_seq: 9,
                min_ts: 86_400_000,
                max_ts: 86_400_001,
            }],
        };
        m.store(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), m);
        assert_eq!(
            m.files[0].relative_path(),
            PathBuf::from("events/day=1970-01-02/part-0000000001.parquet")
        );

        // Another version is refused by name.
        let other = serde_json::to_vec(&serde_json::json!({"version": 99})).unwrap();
        std::fs::write(dir.path().join("manifest.json"), other).unwrap();
        let err = Manifest::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("version 99"), "{err}");

        // Garbage and inconsistent bounds are corrupt, not panics.
        std::fs::write(dir.path().join("manifest.json"), b"{\"version\":1,").unwrap();
        assert!(matches!(
            Manifest::load(dir.path()),
            Err(ColumnarError::Corrupt { .. })
        ));
        let mut bad = m.clone();
        bad.next_seq = 5;
        std::fs::write(
            dir.path().join("manifest.json"),
            serde_json::to_vec(&bad).unwrap(),
        )
        .unwrap();
        assert!(matches!(
            Manifest::load(dir.path()),
            Err(ColumnarError::Corrupt { .. })
        ));
    }
}
