//! Framed-file I/O shared by the commit log and the quarantine: scanning a file of frames up
//! to its first invalid one (the torn tail), cutting it there, and small durable-file helpers
//! (atomic replace, directory fsync).
//!
//! This module must never accept a frame it could not fully validate, and never report a
//! position past the last valid frame as valid.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{IoContext, StoreError};
use crate::format::{Frame, decode_frame};

/// Bytes read per `pread` while scanning.
const SCAN_CHUNK: usize = 1 << 20;

/// Where a scan stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanEnd {
    /// End of the last valid frame: the file's valid length.
    pub valid_end: u64,
    /// Why the scan stopped before `end`, if it did.
    pub torn: Option<String>,
}

/// Visits every valid frame of `file` in `[start, end)` in order, with its position and body.
/// The visitor may reject a checksum-valid frame (`Ok(Some(reason))`, e.g. wrong sequence
/// number), which ends the scan there like a bad checksum does.
pub fn scan_frames(
    file: &File,
    path: &Path,
    start: u64,
    end: u64,
    min_body: usize,
    mut visit: impl FnMut(u64, &[u8]) -> Result<Option<&'static str>, StoreError>,
) -> Result<ScanEnd, StoreError> {
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_pos = start; // file position of buf[0]
    let mut cur = start; // file position of the next frame
    loop {
        if cur >= end {
            return Ok(ScanEnd {
                valid_end: cur,
                torn: None,
            });
        }
        let off = (cur - buf_pos) as usize;
        match decode_frame(&buf[off..], min_body) {
            Frame::Ok { body, total } => {
                if let Some(reason) = visit(cur, body)? {
                    return Ok(ScanEnd {
                        valid_end: cur,
                        torn: Some(reason.to_string()),
                    });
                }
                cur += total as u64;
            }
            Frame::Bad(reason) => {
                return Ok(ScanEnd {
                    valid_end: cur,
                    torn: Some(reason.to_string()),
                });
            }
            Frame::Incomplete { need } => {
                let avail = end - cur;
                if (need as u64) > avail {
                    let reason = if avail < 8 {
                        "truncated frame prefix"
                    } else {
                        "truncated frame"
                    };
                    return Ok(ScanEnd {
                        valid_end: cur,
                        torn: Some(reason.to_string()),
                    });
                }
                let want = need.max(SCAN_CHUNK).min(avail as usize);
                buf.clear();
                buf.resize(want, 0);
                file.read_exact_at(&mut buf, cur).ctx("read", path)?;
                buf_pos = cur;
            }
        }
    }
}

/// Cuts `file` at `len` and makes the cut durable.
pub fn truncate_durably(file: &File, path: &Path, len: u64) -> Result<(), StoreError> {
    file.set_len(len).ctx("truncate", path)?;
    file.sync_all().ctx("fsync", path)
}

/// Fsyncs a directory so that file creations, renames and deletions in it are durable.
pub fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx("fsync directory", dir)
}

/// Replaces `path` with `bytes` atomically and durably (write tmp, fsync, rename, fsync dir).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// [`write_atomic`] of what `fill` writes: a large file (the dedup snapshot) is streamed
/// rather than built in memory first.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .ctx("create", &tmp)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
    fill(&mut w).and_then(|()| w.flush()).ctx("write", &tmp)?;
    let f = w
        .into_inner()
        .map_err(|e| e.into_error())
        .ctx("write", &tmp)?;
    f.sync_all().ctx("fsync", &tmp)?;
    drop(f);
    fs::rename(&tmp, path).ctx("rename into place", path)?;
    fsync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Reads a whole small file, `None` if it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io("read", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::encode_frame;

    #[test]
    fn scan_stops_at_torn_tail_and_rejected_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut bytes = Vec::new();
        for i in 0..5u8 {
            encode_frame(&mut bytes, &[i; 10]);
        }
        let whole = bytes.len() as u64;
        bytes.extend_from_slice(&[7, 0, 0]);
        fs::write(&path, &bytes).unwrap();
        let f = File::open(&path).unwrap();
        let mut seen = Vec::new();
        let end = scan_frames(&f, &path, 0, bytes.len() as u64, 1, |pos, body| {
            seen.push((pos, body[0]));
            Ok(None)
        })
        .unwrap();
        assert_eq!(end.valid_end, whole);
        assert_eq!(seen.len(), 5);
        assert!(end.torn.is_some());

        let end = scan_frames(&f, &path, 0, whole, 1, |_, body| {
            Ok((body[0] == 3).then_some("rejected"))
        })
        .unwrap();
        assert_eq!(end.valid_end, 3 * 18);
        assert_eq!(end.torn.as_deref(), Some("rejected"));
    }

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("CHECKPOINT");
        assert_eq!(read_optional(&p).unwrap(), None);
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(read_optional(&p).unwrap().unwrap(), b"two");
    }
}
