//! The data directory itself: the `FORMAT` file (what this directory is, which version, how
//! many partitions) and the `LOCK` file that keeps a second process out.
//!
//! This module must never open a directory it does not recognise as a store (a non-empty
//! directory without `FORMAT`), and never let two processes own one directory.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use fs2::FileExt;
use serde::{Deserialize, Serialize};

use crate::error::{IoContext, StoreError};
use crate::format::FORMAT_VERSION;
use crate::frames::{read_optional, write_atomic};

const FORMAT_NAME: &str = "iob-store";

/// Contents of `DIR/FORMAT`.
#[derive(Debug, Serialize, Deserialize)]
struct FormatFile {
    format: String,
    version: u64,
    #[serde(default)]
    partitions: Option<u32>,
}

/// An exclusively locked data directory; the lock is released when this is dropped.
#[derive(Debug)]
pub struct DirLock {
    file: File,
}

impl DirLock {
    /// Takes the exclusive lock on `DIR/LOCK` and writes our pid into it.
    pub fn acquire(dir: &Path) -> Result<DirLock, StoreError> {
        let path = dir.join("LOCK");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .ctx("open lock file", &path)?;
        if file.try_lock_exclusive().is_err() {
            let mut s = String::new();
            let _ = file.read_to_string(&mut s);
            return Err(StoreError::Locked {
                dir: dir.to_path_buf(),
                pid: s.trim().parse().ok(),
            });
        }
        file.set_len(0).ctx("write lock file", &path)?;
        file.seek(SeekFrom::Start(0))
            .ctx("write lock file", &path)?;
        write!(file, "{}", std::process::id()).ctx("write lock file", &path)?;
        Ok(DirLock { file })
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.file);
    }
}

/// Checks (or, for a new directory, writes) `DIR/FORMAT`. Returns whether the store is new.
pub fn check_format(dir: &Path, partitions: u32) -> Result<bool, StoreError> {
    let path = dir.join("FORMAT");
    let Some(bytes) = read_optional(&path)? else {
        let foreign: Vec<PathBuf> = fs::read_dir(dir)
            .ctx("list", dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n != "LOCK"))
            .collect();
        if !foreign.is_empty() {
            return Err(StoreError::NotAStore {
                dir: dir.to_path_buf(),
                reason: "it has files but no FORMAT file".into(),
            });
        }
        let f = FormatFile {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION as u64,
            partitions: Some(partitions),
        };
        let json = serde_json::to_vec_pretty(&f).expect("serializable");
        write_atomic(&path, &json)?;
        return Ok(true);
    };
    let f: FormatFile = serde_json::from_slice(&bytes).map_err(|e| StoreError::NotAStore {
        dir: dir.to_path_buf(),
        reason: format!("FORMAT is not valid JSON: {e}"),
    })?;
    if f.format != FORMAT_NAME {
        return Err(StoreError::NotAStore {
            dir: dir.to_path_buf(),
            reason: format!("FORMAT says `{}`, expected `{FORMAT_NAME}`", f.format),
        });
    }
    if f.version != FORMAT_VERSION as u64 {
        return Err(StoreError::FormatVersion {
            dir: dir.to_path_buf(),
            found: f.version,
            supported: FORMAT_VERSION,
        });
    }
    match f.partitions {
        Some(on_disk) if on_disk != partitions => Err(StoreError::PartitionCount {
            dir: dir.to_path_buf(),
            on_disk,
            requested: partitions,
        }),
        Some(_) => Ok(false),
        None => Err(StoreError::NotAStore {
            dir: dir.to_path_buf(),
            reason: "FORMAT does not record the partition count".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_is_created_then_checked() {
        let d = tempfile::tempdir().unwrap();
        assert!(check_format(d.path(), 8).unwrap());
        assert!(!check_format(d.path(), 8).unwrap());
        let e = check_format(d.path(), 4).unwrap_err();
        assert!(matches!(
            e,
            StoreError::PartitionCount {
                on_disk: 8,
                requested: 4,
                ..
            }
        ));
        fs::write(
            d.path().join("FORMAT"),
            r#"{"format":"iob-store","version":9}"#,
        )
        .unwrap();
        let e = check_format(d.path(), 8).unwrap_err();
        assert!(e.to_string().contains("version 9"), "{e}");
    }

    #[test]
    fn foreign_directory_is_refused() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("notes.txt"), "hi").unwrap();
        assert!(matches!(
            check_format(d.path(), 8),
            Err(StoreError::NotAStore { .. })
        ));
    }

    #[test]
    fn lock_is_exclusive_and_names_the_pid() {
        let d = tempfile::tempdir().unwrap();
        let l = DirLock::acquire(d.path()).unwrap();
        let e = DirLock::acquire(d.path()).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        drop(l);
        DirLock::acquire(d.path()).unwrap();
    }
}
