//! A fixed-capacity map from 64-bit fingerprints to receive times: one generation of the
//! messageId dedup table ([`crate::dedup`]).
//!
//! Why not a `HashMap`: at hundreds of thousands of keys a second, each lookup is a cache miss
//! (the keys are random by construction), and on one core those misses were 9% of ingest. Here
//! a key's slot is a function of the key alone, so the committer can prefetch a key's slot a
//! few records before it looks the key up, and a slot holds key and value in 16 bytes
//! (one miss, not a control byte and then a bucket).
//!
//! Open addressing with linear probing over a power-of-two array, at most half full; removal
//! shifts the following entries back (no tombstones). The array doubles as keys arrive, up to
//! the generation's bound, so scans (checkpoint snapshots, pruning) cost what the map holds.
//! Key 0 marks an empty slot: a key that is 0 is stored as [`ZERO_KEY`] (the two alias, like
//! any two keys sharing a 64-bit fingerprint: ~2⁻⁶⁴).
//!
//! This module must never hash its keys again (they are uniform hashes already) and never grow
//! past its bound (the dedup table rotates generations instead).

/// Stands for key 0, which marks empty slots.
const ZERO_KEY: u64 = 0x9e37_79b9_7f4a_7c15;

/// Fingerprint → receive time (ms), for at most `bound` keys.
#[derive(Debug, Clone)]
pub struct FingerprintMap {
    /// `[key, value as u64]` per slot, interleaved: a slot is 16 bytes in one cache line.
    slots: Vec<u64>,
    mask: usize,
    len: usize,
    bound: usize,
}

/// Slots a new map starts with (it doubles from there).
const FIRST_SLOTS: usize = 1 << 12;

impl FingerprintMap {
    /// A map for up to `bound` keys (at most twice as many slots, a power of two).
    pub fn with_bound(bound: usize) -> Self {
        let n = (bound.max(1) * 2).next_power_of_two().min(FIRST_SLOTS);
        FingerprintMap {
            slots: vec![0u64; 2 * n],
            mask: n - 1,
            len: 0,
            bound: bound.max(1),
        }
    }

    /// Doubles the slots (rehashing every key into the larger array).
    fn grow(&mut self) {
        let n = self.mask + 1;
        let old = std::mem::replace(&mut self.slots, vec![0u64; 4 * n]);
        self.mask = 2 * n - 1;
        for s in old.chunks_exact(2).filter(|s| s[0] != 0) {
            let i = self.find(s[0]).expect_err("keys are distinct");
            self.slots[2 * i] = s[0];
            self.slots[2 * i + 1] = s[1];
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn stored(key: u64) -> u64 {
        if key == 0 { ZERO_KEY } else { key }
    }

    fn home(&self, stored: u64) -> usize {
        stored as usize & self.mask
    }

    /// Asks the CPU to bring `key`'s home slot into cache (a hint; no effect on results).
    #[inline]
    pub fn prefetch(&self, key: u64) {
        let i = self.home(Self::stored(key));
        iob_types::prefetch(self.slots[2 * i..].as_ptr().cast(), 16);
    }

    /// `Ok(slot)` holding `key`, or `Err(slot)`: the empty slot where it would go.
    fn find(&self, stored: u64) -> Result<usize, usize> {
        let mut i = self.home(stored);
        loop {
            match self.slots[2 * i] {
                0 => return Err(i),
                k if k == stored => return Ok(i),
                _ => i = (i + 1) & self.mask,
            }
        }
    }

    pub fn get(&self, key: u64) -> Option<i64> {
        self.find(Self::stored(key))
            .ok()
            .map(|i| self.slots[2 * i + 1] as i64)
    }

    pub fn contains_key(&self, key: u64) -> bool {
        self.get(key).is_some()
    }

    /// Whether one more key fits under the bound the map was made for.
    pub fn has_room(&self) -> bool {
        self.len < self.bound
    }

    /// Sets `key` to `value`; returns the value it replaced.
    ///
    /// # Panics
    /// When a new key does not fit ([`FingerprintMap::has_room`] is false): the caller rotates
    /// generations before that.
    pub fn insert(&mut self, key: u64, value: i64) -> Option<i64> {
        let stored = Self::stored(key);
        match self.find(stored) {
            Ok(i) => Some(std::mem::replace(&mut self.slots[2 * i + 1], value as u64) as i64),
            Err(mut slot) => {
                assert!(self.has_room(), "fingerprint map over its bound");
                // At most half full: a new key that would pass that doubles the slots first.
                if (self.len + 1) * 2 > self.mask + 1 {
                    self.grow();
                    slot = self.find(stored).expect_err("absent");
                }
                self.slots[2 * slot] = stored;
                self.slots[2 * slot + 1] = value as u64;
                self.len += 1;
                None
            }
        }
    }

    pub fn remove(&mut self, key: u64) -> Option<i64> {
        let mut i = self.find(Self::stored(key)).ok()?;
        let value = self.slots[2 * i + 1] as i64;
        // Backward shift: pull later entries of the probe run into the hole when their home
        // does not lie cyclically in (hole, entry].
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let k = self.slots[2 * j];
            if k == 0 {
                break;
            }
            let home = self.home(k);
            let stays = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !stays {
                self.slots[2 * i] = k;
                self.slots[2 * i + 1] = self.slots[2 * j + 1];
                i = j;
            }
        }
        self.slots[2 * i] = 0;
        self.slots[2 * i + 1] = 0;
        self.len -= 1;
        Some(value)
    }

    /// Keeps the entries for which `keep(key, value)` holds. The keys to drop are listed
    /// first and removed after (removal shifts entries, so it cannot run during the scan);
    /// a checkpoint prunes a table of millions where few or none expire, so nothing the size
    /// of the table is allocated.
    pub fn retain(&mut self, mut keep: impl FnMut(u64, i64) -> bool) {
        let drop: Vec<u64> = self
            .iter()
            .filter(|&(k, v)| !keep(k, v))
            .map(|(k, _)| k)
            .collect();
        for k in drop {
            self.remove(k);
        }
    }

    pub fn clear(&mut self) {
        if self.len > 0 {
            self.slots.fill(0);
            self.len = 0;
        }
    }

    /// Every `(key, value)`, in slot order. A key stored as [`ZERO_KEY`] reads back as that.
    pub fn iter(&self) -> impl Iterator<Item = (u64, i64)> + '_ {
        self.slots
            .chunks_exact(2)
            .filter(|s| s[0] != 0)
            .map(|s| (s[0], s[1] as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn collisions_wraparound_and_key_zero() {
        let mut m = FingerprintMap::with_bound(8); // 16 slots
        // Same home slot (15), so the run wraps around to slots 0, 1, ...
        let keys = [15u64, 31, 47, 63, 0];
        for (n, &k) in keys.iter().enumerate() {
            assert_eq!(m.insert(k, n as i64), None);
        }
        assert_eq!(m.len(), 5);
        for (n, &k) in keys.iter().enumerate() {
            assert_eq!(m.get(k), Some(n as i64), "key {k}");
        }
        // Removing from the middle of a wrapped run keeps the rest findable.
        assert_eq!(m.remove(31), Some(1));
        assert_eq!(m.get(31), None);
        for &k in &[15u64, 47, 63, 0] {
            assert!(m.contains_key(k), "key {k}");
        }
        assert_eq!(m.insert(0, 9), Some(4));
        assert_eq!(m.get(0), Some(9));
        m.retain(|k, _| k != 47);
        assert_eq!((m.len(), m.get(47)), (3, None));
        m.clear();
        assert!(m.is_empty() && m.get(15).is_none());
    }

    #[test]
    fn grows_up_to_its_bound_and_keeps_every_key() {
        let bound = 20_000;
        let mut m = FingerprintMap::with_bound(bound);
        assert_eq!(m.slots.len(), 2 * FIRST_SLOTS, "starts small");
        // Keys sharing low bits crowd the small table's slots before it doubles.
        let key = |n: u64| n.wrapping_mul(1 << 12) ^ (n >> 3);
        for n in 0..bound as u64 {
            assert_eq!(m.insert(key(n), n as i64), None);
            if n % 2 == 0 {
                assert_eq!(m.get(key(n)), Some(n as i64));
            }
        }
        assert!(!m.has_room());
        assert_eq!(
            m.slots.len(),
            2 * (2 * bound).next_power_of_two(),
            "at most half full"
        );
        for n in 0..bound as u64 {
            assert_eq!(m.get(key(n)), Some(n as i64), "{n}");
        }
        for n in (0..bound as u64).step_by(3) {
            assert_eq!(m.remove(key(n)), Some(n as i64));
        }
        for n in 0..bound as u64 {
            assert_eq!(m.contains_key(key(n)), n % 3 != 0, "{n}");
        }
    }

    #[test]
    #[should_panic(expected = "over its bound")]
    fn refuses_keys_past_its_bound() {
        let mut m = FingerprintMap::with_bound(3);
        for k in 1..=4 {
            m.insert(k, 0);
        }
    }

    proptest::proptest! {
        /// Any sequence of inserts, removals, updates and retains answers like a `HashMap`,
        /// with keys crowded onto few home slots so that runs collide and wrap.
        #[test]
        fn behaves_like_a_hash_map(
            ops in proptest::collection::vec((0u8..4, 0u64..40, -5i64..5), 1..300),
        ) {
            let mut m = FingerprintMap::with_bound(32); // 64 slots
            let mut r: HashMap<u64, i64> = HashMap::new();
            // Multiples of 64 plus a little: many keys share a home slot.
            let crowd = |k: u64| (k % 8) + 64 * (k / 8) + if k == 0 { 0 } else { 60 };
            for (op, k, v) in ops {
                let key = crowd(k);
                match op {
                    0 if m.has_room() || r.contains_key(&key) => {
                        proptest::prop_assert_eq!(m.insert(key, v), r.insert(key, v));
                    }
                    1 => proptest::prop_assert_eq!(m.remove(key), r.remove(&key)),
                    2 => {
                        m.retain(|_, x| x != v);
                        r.retain(|_, x| *x != v);
                    }
                    _ => proptest::prop_assert_eq!(m.get(key), r.get(&key).copied()),
                }
                proptest::prop_assert_eq!(m.len(), r.len());
                for q in (0..40u64).map(crowd) {
                    proptest::prop_assert_eq!(m.get(q), r.get(&q).copied(), "key {}", q);
                }
            }
        }
    }
}
