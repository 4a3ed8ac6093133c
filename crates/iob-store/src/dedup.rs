//! The messageId dedup table: which dedup keys (hashes of source + messageId, computed by the
//! caller) were stored, and when they were received, so that a retried event within the
//! window has exactly one effect. Owned by the committer thread (the single point of truth);
//! persisted as a checksummed snapshot at checkpoints and completed from the log on recovery.
//!
//! Memory is bounded: keys live in two generations of at most `max_entries / 2` each; when the
//! current one fills, it becomes the previous one and the older previous is dropped. So a key
//! is remembered for the whole window unless more than `max_entries / 2` newer keys arrived
//! since (then for at least that many). Keys are 64-bit fingerprints of the caller's 128-bit
//! hash (a false duplicate needs a 64-bit collision among the keys held: ~3e-6 for 10M keys).
//!
//! This module must never hold anything but fingerprints and receive times (no identifiers),
//! and never consult the wall clock: expiry is relative to the latest receive time seen, so
//! replaying the same log gives the same answers.

use std::path::Path;

use crate::error::StoreError;
use crate::fingerprints::FingerprintMap;
use crate::frames::{read_optional, write_atomic_with};

const SNAP_MAGIC: &[u8; 6] = b"IOBDDP";
/// v1 held 128-bit keys; a v1 snapshot reads as "missing" and the table is rebuilt from the log.
const SNAP_VERSION: u16 = 2;
const SNAP_HEADER: usize = 6 + 2 + 8 + 8;
const SNAP_ENTRY: usize = 16;

/// Keys are already uniform hashes: they are their own slot (see [`FingerprintMap`]).
type Generation = FingerprintMap;

/// Recently stored dedup keys with their receive time (ms).
#[derive(Debug)]
pub struct DedupTable {
    current: Generation,
    previous: Generation,
    window_ms: i64,
    max_entries: usize,
    max_received: i64,
}

impl DedupTable {
    pub fn new(window_ms: i64, max_entries: usize) -> Self {
        let max_entries = max_entries.max(2);
        DedupTable {
            current: Generation::with_bound(max_entries / 2),
            previous: Generation::with_bound(max_entries / 2),
            window_ms,
            max_entries,
            max_received: i64::MIN,
        }
    }

    /// The fingerprint of a caller's 16-byte dedup key: its low 64 bits (the key is already a
    /// uniform hash; folding the halves together would collapse structured keys).
    pub fn key(k: &[u8; 16]) -> u64 {
        u64::from_le_bytes(k[..8].try_into().expect("8 bytes"))
    }

    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    fn get(&self, key: u64) -> Option<i64> {
        self.current.get(key).or_else(|| self.previous.get(key))
    }

    /// Hints the CPU to fetch `key`'s slots: the committer calls it a few records before it
    /// admits the key, so the cache miss overlaps the work on the records in between.
    pub fn prefetch(&self, key: u64) {
        self.current.prefetch(key);
        if !self.previous.is_empty() {
            self.previous.prefetch(key);
        }
    }

    /// Whether a record with `key` received at `received_ms` repeats one stored within the
    /// window before it (or one stored "later", when clocks or replays go backwards).
    #[cfg(test)]
    pub fn is_duplicate(&self, key: u64, received_ms: i64) -> bool {
        self.get(key)
            .is_some_and(|r0| received_ms.saturating_sub(r0) < self.window_ms)
    }

    /// Records that `key` was stored at `received_ms`; returns the previous value (for undo).
    pub fn insert(&mut self, key: u64, received_ms: i64) -> Option<i64> {
        let prev = self.get(key);
        self.insert_after(key, received_ms, prev)
    }

    /// The committer's step: `None` if `key` is a duplicate at `received_ms`, else records it
    /// and returns the previous value (for undo). One lookup fewer than `is_duplicate` +
    /// `insert`, which matters at hundreds of thousands of keys a second.
    pub fn admit(&mut self, key: u64, received_ms: i64) -> Option<Option<i64>> {
        let prev = self.get(key);
        if prev.is_some_and(|r0| received_ms.saturating_sub(r0) < self.window_ms) {
            return None;
        }
        Some(self.insert_after(key, received_ms, prev))
    }

    fn insert_after(&mut self, key: u64, received_ms: i64, prev: Option<i64>) -> Option<i64> {
        self.max_received = self.max_received.max(received_ms);
        let in_current = prev.is_some() && self.current.contains_key(key);
        if self.current.len() >= self.max_entries / 2 && !in_current {
            // Rotate: the previous generation is dropped, and its slots become the new current.
            self.previous.clear();
            std::mem::swap(&mut self.previous, &mut self.current);
        }
        let v = prev.map_or(received_ms, |p| p.max(received_ms));
        self.current.insert(key, v);
        prev
    }

    /// Undoes an [`insert`](Self::insert) (a failed group commit).
    pub fn undo(&mut self, key: u64, prev: Option<i64>) {
        self.current.remove(key);
        if let Some(p) = prev
            && !self.previous.contains_key(key)
        {
            self.current.insert(key, p);
        }
    }

    /// Drops entries that can no longer match anything newer than the latest record.
    pub fn prune(&mut self) {
        let horizon = self.max_received.saturating_sub(self.window_ms);
        self.previous.retain(|_, r| r >= horizon);
        self.current.retain(|_, r| r >= horizon);
    }

    /// Writes the snapshot for checkpoint generation `gen` atomically (previous generation
    /// first, so loading it rebuilds the same generations).
    /// Streamed in 64 KiB pieces: at the default bound the table holds millions of keys, and a
    /// whole-file buffer cost a fresh allocation (and its page faults) every checkpoint.
    pub fn write_snapshot(&self, path: &Path, generation: u64) -> Result<(), StoreError> {
        const PIECE: usize = 1 << 16;
        write_atomic_with(path, |w| {
            let mut b = Vec::with_capacity(PIECE + SNAP_ENTRY);
            b.extend_from_slice(SNAP_MAGIC);
            b.extend_from_slice(&SNAP_VERSION.to_le_bytes());
            b.extend_from_slice(&generation.to_le_bytes());
            b.extend_from_slice(&(self.len() as u64).to_le_bytes());
            let mut crc = 0;
            for (k, r) in self.previous.iter().chain(self.current.iter()) {
                b.extend_from_slice(&k.to_le_bytes());
                b.extend_from_slice(&r.to_le_bytes());
                if b.len() >= PIECE {
                    crc = crc32c::crc32c_append(crc, &b);
                    w.write_all(&b)?;
                    b.clear();
                }
            }
            crc = crc32c::crc32c_append(crc, &b);
            b.extend_from_slice(&crc.to_le_bytes());
            w.write_all(&b)
        })
    }

    /// Loads a snapshot; `Ok(None)` if it is missing, invalid or of another version (the
    /// caller rebuilds from the log instead). Returns the table and the snapshot's checkpoint
    /// generation.
    pub fn load_snapshot(
        path: &Path,
        window_ms: i64,
        max_entries: usize,
    ) -> Result<Option<(DedupTable, u64)>, StoreError> {
        let Some(b) = read_optional(path)? else {
            return Ok(None);
        };
        if b.len() < SNAP_HEADER + 4 || &b[..6] != SNAP_MAGIC {
            return Ok(None);
        }
        let (body, crc) = b.split_at(b.len() - 4);
        if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().expect("4")) {
            return Ok(None);
        }
        if u16::from_le_bytes(body[6..8].try_into().expect("2")) != SNAP_VERSION {
            return Ok(None);
        }
        let generation = u64::from_le_bytes(body[8..16].try_into().expect("8"));
        let count = u64::from_le_bytes(body[16..24].try_into().expect("8")) as usize;
        if body.len() != SNAP_HEADER + count * SNAP_ENTRY {
            return Ok(None);
        }
        let mut t = DedupTable::new(window_ms, max_entries);
        for e in body[SNAP_HEADER..].chunks_exact(SNAP_ENTRY) {
            let k = u64::from_le_bytes(e[..8].try_into().expect("8"));
            let r = i64::from_le_bytes(e[8..].try_into().expect("8"));
            t.insert(k, r);
        }
        Ok(Some((t, generation)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_expiry_and_prune() {
        let mut t = DedupTable::new(100, 1000);
        assert!(!t.is_duplicate(1, 0));
        t.insert(1, 0);
        assert!(t.is_duplicate(1, 99));
        assert!(!t.is_duplicate(1, 100));
        t.insert(2, 150);
        t.prune();
        assert_eq!(t.len(), 1);
        let prev = t.insert(3, 160);
        t.undo(3, prev);
        assert!(!t.is_duplicate(3, 160));
    }

    #[test]
    fn admit_is_is_duplicate_then_insert() {
        let mut a = DedupTable::new(100, 10);
        let mut b = DedupTable::new(100, 10);
        for (i, k) in [1u64, 2, 1, 3, 4, 5, 6, 2, 7, 1, 1].into_iter().enumerate() {
            let at = i as i64 * 30;
            let want = (!b.is_duplicate(k, at)).then(|| b.insert(k, at));
            assert_eq!(a.admit(k, at), want, "key {k} at {at}");
            assert_eq!(a.len(), b.len());
        }
    }

    /// The module's rule restated over `std` maps: two generations of at most `half` keys, the
    /// current one consulted first; a new key into a full current generation rotates them.
    struct Reference {
        current: std::collections::HashMap<u64, i64>,
        previous: std::collections::HashMap<u64, i64>,
        half: usize,
        window: i64,
    }

    impl Reference {
        fn get(&self, k: u64) -> Option<i64> {
            self.current.get(&k).or(self.previous.get(&k)).copied()
        }
        fn admit(&mut self, k: u64, at: i64) -> Option<Option<i64>> {
            let prev = self.get(k);
            if prev.is_some_and(|r0| at.saturating_sub(r0) < self.window) {
                return None;
            }
            if self.current.len() >= self.half && !self.current.contains_key(&k) {
                self.previous = std::mem::take(&mut self.current);
            }
            self.current.insert(k, prev.map_or(at, |p| p.max(at)));
            Some(prev)
        }
        fn undo(&mut self, k: u64, prev: Option<i64>) {
            self.current.remove(&k);
            if let Some(p) = prev
                && !self.previous.contains_key(&k)
            {
                self.current.insert(k, p);
            }
        }
    }

    proptest::proptest! {
        /// `admit` and `undo` (while the current generation has room, and when it rotates)
        /// answer and remember what the rule restated over `std` maps does, across
        /// generations and clocks that go backwards.
        #[test]
        fn admit_matches_the_rule(
            ops in proptest::collection::vec((0u64..24, 0i64..400, proptest::bool::ANY), 1..200),
            max in 2usize..16,
        ) {
            let mut a = DedupTable::new(100, max);
            let mut b = Reference {
                current: Default::default(),
                previous: Default::default(),
                half: max / 2,
                window: 100,
            };
            for (k, at, undo) in ops {
                let want = b.admit(k, at);
                let got = a.admit(k, at);
                proptest::prop_assert_eq!(got, want, "key {} at {}", k, at);
                if let (true, Some(prev)) = (undo, got) {
                    a.undo(k, prev);
                    b.undo(k, prev);
                }
                proptest::prop_assert_eq!(a.len(), b.current.len() + b.previous.len());
                for q in 0..24u64 {
                    proptest::prop_assert_eq!(a.get(q), b.get(q), "key {}", q);
                }
            }
        }
    }

    #[test]
    fn snapshot_roundtrip_and_corruption() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("dedup.snap");
        // 20,000 keys: 320 KB, streamed in several pieces.
        let mut t = DedupTable::new(1000, 100_000);
        for k in 0..20_000u64 {
            t.insert(k << 40 | k, k as i64 % 500);
        }
        t.write_snapshot(&p, 7).unwrap();
        let (u, generation) = DedupTable::load_snapshot(&p, 1000, 100_000)
            .unwrap()
            .unwrap();
        assert_eq!(generation, 7);
        assert_eq!(u.len(), 20_000);
        for k in [0, 5, 4_095, 4_096, 19_999u64] {
            assert!(u.is_duplicate(k << 40 | k, 10), "{k}");
        }
        assert!(!u.is_duplicate(20_000 << 40 | 20_000, 10));
        for at in [40, 200_000] {
            let mut b = std::fs::read(&p).unwrap();
            b[at] ^= 1;
            std::fs::write(p.with_extension("bad"), &b).unwrap();
            let bad = DedupTable::load_snapshot(&p.with_extension("bad"), 1000, 100_000);
            assert!(bad.unwrap().is_none(), "a flipped bit at {at} is caught");
        }
    }

    #[test]
    fn memory_is_bounded_and_recent_keys_are_kept() {
        let mut t = DedupTable::new(i64::MAX, 1000);
        for k in 0..10_000u64 {
            assert!(!t.is_duplicate(k, k as i64));
            t.insert(k, k as i64);
            assert!(t.len() <= 1000, "at most max_entries keys are held");
        }
        // The newest max_entries / 2 keys are always remembered.
        for k in 9_500..10_000u64 {
            assert!(t.is_duplicate(k, 10_000), "{k}");
        }
        assert!(!t.is_duplicate(0, 10_000), "the oldest were forgotten");
        // Undo across a rotation restores the old answer.
        let prev = t.insert(42, 20_000);
        t.undo(42, prev);
        assert!(!t.is_duplicate(42, 20_000));
    }
}
