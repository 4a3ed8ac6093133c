//! The audit log's files: `audit-NNNN.log` segments (JSON Lines, in chain order) and `HEAD`
//! (the last acknowledged record's sequence number and hash, MACed; created atomically,
//! then overwritten in place within one sector).
//!
//! Reads and writes files only; it must never decide whether a chain is valid (that is
//! `verify.rs` and `log.rs`) and never hold the key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::chain::{AuditKey, same_mac};
use crate::GovernError;

pub const HEAD_FILE: &str = "HEAD";

/// The segment file with index `n`.
pub fn segment_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("audit-{n:04}.log"))
}

/// The segment files in `dir`, in order: (index, path).
pub fn segments(dir: &Path) -> Result<Vec<(u32, PathBuf)>, GovernError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(GovernError::audit_io(
                format!("listing {}", dir.display()),
                e,
            ));
        }
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry =
            entry.map_err(|e| GovernError::audit_io(format!("listing {}", dir.display()), e))?;
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_prefix("audit-")?.strip_suffix(".log"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        out.push((n, entry.path()));
    }
    out.sort();
    Ok(out)
}

/// A segment's complete lines (with their 1-based line numbers) and the bytes of an
/// incomplete last line, if any.
pub struct Lines {
    pub complete: Vec<(u64, String)>,
    /// An incomplete last line (no newline): an interrupted append, or a truncation.
    pub torn: Option<usize>,
    /// Length of the file up to the end of its last complete line.
    pub whole_len: u64,
}

/// Reads a segment. The zero bytes at its end are preallocated space (see
/// [`PREALLOCATE`]), not content: a record line never holds a zero byte.
pub fn read_lines(path: &Path) -> Result<Lines, GovernError> {
    let bytes = std::fs::read(path)
        .map_err(|e| GovernError::audit_io(format!("reading {}", path.display()), e))?;
    let used = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let bytes = &bytes[..used];
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let complete = match whole {
        0 => Vec::new(),
        _ => bytes[..whole - 1]
            .split(|&b| b == b'\n')
            .enumerate()
            .map(|(i, l)| (i as u64 + 1, String::from_utf8_lossy(l).into_owned()))
            .collect(),
    };
    Ok(Lines {
        complete,
        torn: (whole < bytes.len()).then(|| bytes.len() - whole),
        whole_len: whole as u64,
    })
}

/// Segments grow by this many zero bytes at a time, written and synced ahead of the records
/// that will overwrite them. An append inside written space changes no file size and
/// allocates no block, so its `fdatasync` flushes the data alone, without an ext4 journal
/// commit (what PostgreSQL gets by recycling WAL segments).
pub const PREALLOCATE: u64 = 1 << 20;

/// The head as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// The last acknowledged record.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
    /// HMAC of (seq, hash) under the audit key.
    pub mac: String,
}

/// What `HEAD` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadState {
    Absent,
    Valid(Head),
    /// Present but unreadable or its MAC does not verify.
    Invalid(String),
}

pub fn read_head(dir: &Path, key: &AuditKey) -> Result<HeadState, GovernError> {
    let path = dir.join(HEAD_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HeadState::Absent),
        Err(e) => {
            return Err(GovernError::audit_io(
                format!("reading {}", path.display()),
                e,
            ));
        }
    };
    let head: Head = match serde_json::from_slice(&bytes) {
        Ok(h) => h,
        Err(e) => {
            return Ok(HeadState::Invalid(format!(
                "HEAD is not a head record: {e}"
            )));
        }
    };
    if !same_mac(&key.head_mac(head.seq, &head.hash), &head.mac) {
        return Ok(HeadState::Invalid(
            "HEAD's MAC does not verify: it was changed, or written without the audit key".into(),
        ));
    }
    Ok(HeadState::Valid(head))
}

/// `HEAD`'s size on disk: the head record padded with spaces to a fixed length. Under one
/// 512-byte sector, so overwriting it in place is atomic on the device (the assumption
/// PostgreSQL makes for `pg_control`), and the file's size never changes, so its `fdatasync`
/// flushes one block without an ext4 journal commit: a third of what the temp file, rename
/// and directory sync cost.
pub const HEAD_BYTES: usize = 256;

fn head_body(key: &AuditKey, seq: u64, hash: &str) -> Vec<u8> {
    let head = Head {
        seq,
        hash: hash.to_string(),
        mac: key.head_mac(seq, hash),
    };
    let mut body = serde_json::to_vec(&head).expect("serializable");
    debug_assert!(body.len() < HEAD_BYTES);
    body.resize(HEAD_BYTES - 1, b' ');
    body.push(b'\n');
    body
}

/// Replaces `HEAD` atomically (temp file, fsync, rename, directory fsync): for a new chain and
/// for repairs at open.
pub fn write_head(dir: &Path, key: &AuditKey, seq: u64, hash: &str) -> Result<(), GovernError> {
    let path = dir.join(HEAD_FILE);
    crate::private_file::write_private(&path, &head_body(key, seq, hash))
        .map_err(|e| GovernError::audit_io(format!("writing {}", path.display()), e))
}

/// Points `HEAD` at record `seq` after an append: overwritten in place and `fdatasync`ed
/// (see [`HEAD_BYTES`]); created atomically when there is none yet. The file is opened per
/// update, so a `HEAD` moved or replaced behind the writer's back makes the update fail
/// rather than go to a file nobody reads.
pub fn update_head(dir: &Path, key: &AuditKey, seq: u64, hash: &str) -> Result<(), GovernError> {
    let path = dir.join(HEAD_FILE);
    let file = match std::fs::OpenOptions::new().write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return write_head(dir, key, seq, hash);
        }
        Err(e) => {
            return Err(GovernError::audit_io(
                format!("opening {}", path.display()),
                e,
            ));
        }
    };
    let body = head_body(key, seq, hash);
    #[cfg(unix)]
    let written = {
        use std::os::unix::fs::FileExt;
        file.write_all_at(&body, 0)
    };
    #[cfg(not(unix))]
    let written = {
        use std::io::{Seek, Write};
        let mut file = &file;
        file.seek(std::io::SeekFrom::Start(0))
            .and_then(|_| file.write_all(&body))
    };
    written
        .and_then(|_| file.sync_data())
        .map_err(|e| GovernError::audit_io(format!("writing {}", path.display()), e))
}
