//! The columnar store's directory, its manifest in memory, and the rules for changing it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use crate::manifest::{FileEntry, Manifest};
use crate::tail::Tail;
use crate::{ColumnarError, parquet_io};

/// Tuning of the columnar store (`[analytics]` in the configuration).
#[derive(Debug, Clone)]
pub struct Options {
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Rows one compaction step holds in memory before writing its files.
    pub chunk_rows: usize,
    /// A day with more files than this is merged into one file.
    pub max_files_per_day: usize,
    /// A read whose un-compacted tail is longer than this compacts first (bounds memory).
    pub max_tail_rows: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            row_group_rows: 256 * 1024,
            chunk_rows: 4_000_000,
            max_files_per_day: 8,
            max_tail_rows: 1_000_000,
        }
    }
}

/// What the store holds.
#[derive(Debug, Clone, Serialize)]
pub struct StoreInfo {
    pub files: usize,
    pub days: usize,
    pub rows: u64,
    pub bytes: u64,
    /// First log sequence number not compacted yet.
    pub compacted_through: u64,
    /// Rows read from the log but not compacted yet (as of the last read).
    pub tail_rows: usize,
}

/// The columnar store under `DATA_DIR/analytics`.
pub struct Columnar {
    pub(crate) dir: PathBuf,
    pub(crate) options: Options,
    /// The committed manifest; readers clone the `Arc` and read the files it names.
    pub(crate) manifest: RwLock<Arc<Manifest>>,
    /// Held by every writer (compaction, merge, erasure rewrite): one at a time.
    pub(crate) writer: Mutex<()>,
    /// Held for reading while files are read; deleting replaced files takes it for writing,
    /// so no reader loses a file under its feet.
    pub(crate) files_gate: RwLock<()>,
    pub(crate) tail: Mutex<Tail>,
}

impl Columnar {
    /// Opens (or creates) the store in `data_dir/analytics`. Files the manifest does not name
    /// (left by a crash between writing a file and committing the manifest) are removed.
    pub fn open(data_dir: &Path, options: Options) -> Result<Columnar, ColumnarError> {
        let dir = data_dir.join("analytics");
        std::fs::create_dir_all(dir.join("events"))
            .map_err(|e| ColumnarError::io(format!("creating {}", dir.display()), e))?;
        let manifest = Manifest::load(&dir)?;
        remove_orphans(&dir, &manifest)?;
        let tail = Tail::new(manifest.next_seq);
        Ok(Columnar {
            dir,
            options,
            manifest: RwLock::new(Arc::new(manifest)),
            writer: Mutex::new(()),
            files_gate: RwLock::new(()),
            tail: Mutex::new(tail),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The committed manifest.
    pub fn manifest(&self) -> Arc<Manifest> {
        Arc::clone(&self.manifest.read())
    }

    pub fn info(&self) -> StoreInfo {
        let m = self.manifest();
        StoreInfo {
            files: m.files.len(),
            days: m.days().len(),
            rows: m.rows(),
            bytes: m.files.iter().map(|f| f.bytes).sum(),
            compacted_through: m.next_seq,
            tail_rows: self.tail.lock().rows(),
        }
    }

    /// Absolute paths of the committed files (for other engines reading the same data).
    pub fn file_paths(&self) -> Vec<(i32, PathBuf)> {
        self.manifest()
            .files
            .iter()
            .map(|f| (f.day, self.dir.join(f.relative_path())))
            .collect()
    }

    /// Writes `batches` as a new file of `day`, not yet committed; returns its entry.
    pub(crate) fn write_file(
        &self,
        next_id: &mut u64,
        day: i32,
        batches: &[RecordBatch],
    ) -> Result<Option<FileEntry>, ColumnarError> {
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        if rows == 0 {
            return Ok(None);
        }
        let (min_seq, max_seq, min_ts, max_ts) = bounds(batches);
        let mut entry = FileEntry {
            day,
            id: *next_id,
            rows: rows as u64,
            bytes: 0,
            min_seq,
            max_seq,
            min_ts,
            max_ts,
        };
        *next_id += 1;
        entry.bytes = parquet_io::write(
            &self.dir.join(entry.relative_path()),
            batches,
            self.options.row_group_rows,
        )?;
        Ok(Some(entry))
    }

    /// Commits `next` as the manifest, then deletes the files it no longer names.
    pub(crate) fn commit(&self, next: Manifest) -> Result<(), ColumnarError> {
        next.store(&self.dir)?;
        let old = std::mem::replace(&mut *self.manifest.write(), Arc::new(next));
        let now = self.manifest();
        let gone: Vec<&FileEntry> = old
            .files
            .iter()
            .filter(|f| !now.files.iter().any(|n| n.id == f.id))
            .collect();
        if !gone.is_empty() {
            let _gate = self.files_gate.write();
            for f in gone {
                let path = self.dir.join(f.relative_path());
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove a replaced columnar file");
                }
            }
        }
        Ok(())
    }
}

fn bounds(batches: &[RecordBatch]) -> (u64, u64, i64, i64) {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{TimestampMillisecondType, UInt64Type};
    let (mut s0, mut s1, mut t0, mut t1) = (u64::MAX, 0, i64::MAX, i64::MIN);
    for b in batches {
        for &s in b
            .column(crate::schema::SEQ)
            .as_primitive::<UInt64Type>()
            .values()
        {
            s0 = s0.min(s);
            s1 = s1.max(s);
        }
        for &t in b
            .column(crate::schema::TS)
            .as_primitive::<TimestampMillisecondType>()
            .values()
        {
            t0 = t0.min(t);
            t1 = t1.max(t);
        }
    }
    (s0, s1, t0, t1)
}

/// Removes Parquet and temporary files under `events/` that `m` does not name.
fn remove_orphans(dir: &Path, m: &Manifest) -> Result<(), ColumnarError> {
    let named: std::collections::HashSet<PathBuf> = m
        .files
        .iter()
        .map(|f| dir.join(f.relative_path()))
        .collect();
    let events = dir.join("events");
    let days = std::fs::read_dir(&events)
        .map_err(|e| ColumnarError::io(format!("listing {}", events.display()), e))?;
    for day in days.flatten() {
        let Ok(files) = std::fs::read_dir(day.path()) else {
            continue;
        };
        let mut left = 0;
        for f in files.flatten() {
            let p = f.path();
            if named.contains(&p) {
                left += 1;
            } else {
                tracing::info!(path = %p.display(), "removing a columnar file no manifest names (an interrupted compaction)");
                std::fs::remove_file(&p)
                    .map_err(|e| ColumnarError::io(format!("removing {}", p.display()), e))?;
            }
        }
        if left == 0 {
            let _ = std::fs::remove_dir(day.path());
        }
    }
    Ok(())
}
