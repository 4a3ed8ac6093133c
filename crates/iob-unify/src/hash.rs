//! Hashing for the unify stage's in-memory maps: the std SipHash was a tenth of profile-update
//! time. Pseudonyms are already uniform (HMAC outputs an attacker cannot steer without the key),
//! so they hash by their own bits; everything else uses foldhash, which is fast and randomly
//! seeded per map.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by client-influenced values (symbols, person ids).
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A map keyed by pseudonyms.
pub type PseudonymMap<V> = HashMap<crate::identity::IdKey, V, BuildHasherDefault<PseudonymHasher>>;

/// Uses the first 8 bytes of a pseudonym as its hash.
#[derive(Default)]
pub struct PseudonymHasher(u64);

impl Hasher for PseudonymHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8).take(1) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(b);
        }
    }
    // The slice length prefix carries no information.
    fn write_usize(&mut self, _: usize) {}
}
