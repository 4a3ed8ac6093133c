//! Appending to the active log segment with direct I/O (`O_DIRECT`), bypassing the page cache.
//!
//! Why: a buffered `pwrite` makes the kernel allocate, zero and fill page-cache pages for every
//! byte of the log on the committer's core, and measured here that was a quarter of all ingest
//! CPU. Direct writes hand aligned user memory to the device instead.
//!
//! Direct I/O wants the file offset, the length and the memory address aligned to the block
//! size. The log is not block-structured, so each group is written from the start of the block
//! that holds the current end of the log: the already-durable bytes of that partial block (kept
//! here as `tail`) are written again, unchanged, followed by the group's frames and zero padding
//! up to the next block boundary. Rewriting identical bytes cannot corrupt them even if the
//! write is torn, and recovery treats zeros after the last frame, inside the last block, as
//! this padding rather than as a torn tail. The segment is cut back to its logical length when
//! it is rolled or the store closes.
//!
//! This module must never be the only way to write: file systems without `O_DIRECT` (tmpfs)
//! fall back to buffered writes, decided once when the segment is opened or at the first
//! `EINVAL`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// Alignment for offsets, lengths and buffers: 4 KiB covers 512-byte and 4K-sector devices.
pub const ALIGN: u64 = 4096;

/// The direct-I/O handle of the active segment and the bytes of its last, partial block.
#[derive(Debug)]
pub struct DirectAppender {
    file: File,
    tail: Vec<u8>,
    buf: Vec<u8>,
    /// Groups written through the copy into `buf` rather than from their own memory.
    copies: usize,
}

impl DirectAppender {
    /// Opens `path` for direct writes, with `len` its current logical length.
    /// `None` when the file system refuses direct I/O or the tail cannot be read.
    pub fn open(path: &Path, buffered: &File, len: u64) -> Option<DirectAppender> {
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok()?;
        let start = len - len % ALIGN;
        let mut tail = vec![0u8; (len - start) as usize];
        buffered.read_exact_at(&mut tail, start).ok()?;
        Some(DirectAppender {
            file,
            tail,
            buf: Vec::new(),
            copies: 0,
        })
    }

    /// The already-durable bytes of the last, partial block (rewritten before the next frames).
    pub fn tail(&self) -> &[u8] {
        &self.tail
    }

    /// Writes the frames of `group` at logical position `at` (the current logical end), from
    /// the group's own memory when [`GroupBuf::reset`] could place this appender's tail on an
    /// aligned address (the steady state), else through [`DirectAppender::write`]'s copy.
    /// On `Err`, nothing changed in memory; the caller cuts the file back.
    pub fn write_group(&mut self, group: &mut GroupBuf, at: u64) -> std::io::Result<()> {
        let head = self.tail.len();
        let Some(base) = group.start.checked_sub(head) else {
            return self.write(group.frames(), at);
        };
        let end = group.mem.len();
        let total = end - base;
        let padded = total.next_multiple_of(ALIGN as usize);
        // Room for the padding first: growing after the alignment check could move the memory.
        group.mem.reserve(padded - total);
        let aligned = (group.mem.as_ptr() as usize + base).is_multiple_of(ALIGN as usize);
        if !aligned || group.mem[base..group.start] != self.tail[..] {
            return self.write(group.frames(), at);
        }
        group.mem.resize(base + padded, 0);
        let r = self.write_window(&group.mem[base..], total, at);
        group.mem.truncate(end);
        r
    }

    /// Writes `window` (aligned, padded: the tail, then frames up to `total`, then zeros) at
    /// the block holding logical position `at`, and keeps its new partial last block as tail.
    fn write_window(&mut self, window: &[u8], total: usize, at: u64) -> std::io::Result<()> {
        let start = at - at % ALIGN;
        debug_assert_eq!((at - start) as usize, self.tail.len());
        self.file.write_all_at(window, start)?;
        let last_block = total - total % ALIGN as usize;
        self.tail.clear();
        self.tail.extend_from_slice(&window[last_block..total]);
        Ok(())
    }

    /// Writes `frames` at logical position `at` (which must be the current logical end).
    /// On `Err`, nothing changed in memory; the caller cuts the file back.
    pub fn write(&mut self, frames: &[u8], at: u64) -> std::io::Result<()> {
        let head = self.tail.len();
        let total = head + frames.len();
        let padded = total.next_multiple_of(ALIGN as usize);
        // An over-allocated Vec whose aligned window is used: no unsafe allocation needed.
        if self.buf.len() < padded + ALIGN as usize {
            self.buf = vec![0u8; (padded + ALIGN as usize).next_power_of_two()];
        }
        self.copies += 1;
        let mut buf = std::mem::take(&mut self.buf);
        let off = buf.as_ptr().align_offset(ALIGN as usize);
        let window = &mut buf[off..off + padded];
        window[..head].copy_from_slice(&self.tail);
        window[head..total].copy_from_slice(frames);
        window[total..].fill(0);
        let r = self.write_window(window, total, at);
        self.buf = buf;
        r
    }
}

/// The committer's buffer of one group's frames, laid out so that a direct write needs no copy:
/// the appender's tail sits at an aligned address right before the frames, and the padding is
/// added in place. The memory is kept from group to group, so after the first groups it no
/// longer moves; should it move to an address that breaks the alignment (it grew), or hold
/// another tail, the write falls back to a copy, never to a misaligned direct write.
#[derive(Debug, Default)]
pub struct GroupBuf {
    mem: Vec<u8>,
    /// Where the frames begin in `mem`.
    start: usize,
}

impl GroupBuf {
    /// Empties the buffer for frames that follow `tail` (the direct appender's partial last
    /// block; empty for buffered writes).
    pub fn reset(&mut self, tail: &[u8]) {
        self.mem.clear();
        let room = ALIGN as usize + tail.len();
        if self.mem.capacity() < room {
            self.mem.reserve(room + (1 << 20));
        }
        let off = if tail.is_empty() {
            0
        } else {
            self.mem.as_ptr().align_offset(ALIGN as usize)
        };
        self.mem.resize(off, 0);
        self.mem.extend_from_slice(tail);
        self.start = self.mem.len();
    }

    /// The frames written since the last reset.
    pub fn frames(&self) -> &[u8] {
        &self.mem[self.start..]
    }

    /// Length of [`GroupBuf::frames`].
    pub fn len(&self) -> usize {
        self.mem.len() - self.start
    }

    /// Appends frames (only appends: what precedes them is the tail).
    pub fn append(&mut self) -> &mut Vec<u8> {
        &mut self.mem
    }
}

/// Whether `bytes`, found after the last valid frame of a segment whose file is `file_len`
/// long, are the zero padding of a direct write rather than a torn tail.
pub fn is_padding(bytes: &[u8], file_len: u64) -> bool {
    file_len.is_multiple_of(ALIGN) && (bytes.len() as u64) < ALIGN && bytes.iter().all(|b| *b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_land_contiguously_with_padding_after_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        std::fs::write(&path, b"HEADER").unwrap();
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let Some(mut d) = DirectAppender::open(&path, &f, 6) else {
            eprintln!("file system without O_DIRECT: nothing to test here");
            return;
        };
        let a = vec![7u8; 5000];
        let b = vec![9u8; 3];
        d.write(&a, 6).unwrap();
        d.write(&b, 5006).unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(on_disk.len(), 8192);
        assert_eq!(&on_disk[..6], b"HEADER");
        assert_eq!(&on_disk[6..5006], &a[..]);
        assert_eq!(&on_disk[5006..5009], &b[..]);
        assert!(is_padding(&on_disk[5009..], on_disk.len() as u64));
    }

    #[test]
    fn group_buffers_write_the_same_bytes_as_copies() {
        // Frames through GroupBuf (no copy once the memory stays put; a copy when it moved)
        // and through `write` land as the same file, group after group.
        let dir = tempfile::tempdir().unwrap();
        let (pa, pb) = (dir.path().join("a"), dir.path().join("b"));
        let open = |p: &Path| {
            std::fs::write(p, b"HEADER").unwrap();
            let f = OpenOptions::new().read(true).write(true).open(p).unwrap();
            (DirectAppender::open(p, &f, 6), f)
        };
        let ((Some(mut a), _fa), (Some(mut b), _fb)) = (open(&pa), open(&pb)) else {
            eprintln!("file system without O_DIRECT: nothing to test here");
            return;
        };
        let mut g = GroupBuf::default();
        let mut at = 6u64;
        // 3 MiB outgrows the buffer's first reservation (its memory moves mid-group); one
        // group is laid out without the tail in front, so it must take the copying path.
        let sizes = [5000usize, 3, 4093, 1, 20000, 4096, 0, 3 << 20, 777, 12345];
        let without_tail = 8;
        for (i, n) in sizes.into_iter().enumerate() {
            let frames: Vec<u8> = (0..n).map(|j| (i * 31 + j) as u8 | 1).collect();
            g.reset(if i == without_tail { &[] } else { a.tail() });
            g.append().extend_from_slice(&frames);
            assert_eq!(g.frames(), &frames[..]);
            a.write_group(&mut g, at).unwrap();
            assert_eq!(g.frames(), &frames[..], "padding is taken back off");
            b.write(&frames, at).unwrap();
            at += n as u64;
            assert_eq!(a.tail(), b.tail());
        }
        assert_eq!(std::fs::read(&pa).unwrap(), std::fs::read(&pb).unwrap());
        assert_eq!(
            a.copies, 1,
            "only the group laid out without its tail was copied"
        );
        assert_eq!(b.copies, sizes.len());
    }

    #[test]
    fn padding_is_only_zeros_inside_the_last_block() {
        assert!(is_padding(&[0; 10], 8192));
        assert!(!is_padding(&[0; 10], 8190));
        assert!(!is_padding(&[0, 1, 0], 8192));
        assert!(!is_padding(&vec![0; 4096], 8192));
    }
}
