//! The person key and the partition derived from it.
//!
//! A [`PersonKey`] is a 128-bit pseudonym (a keyed HMAC of the routing identifier, computed by
//! `iob-govern`); it never contains a raw identifier, so it can appear in file names, logs,
//! headers and stream subjects. Every piece of per-person state is keyed by it, and its
//! [`Partition`] decides which worker (embedded) or consumer (distributed) owns that state.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A pseudonymous 128-bit key for one person (or, before identity resolution, for one
/// identifier of a person).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct PersonKey(pub [u8; 16]);

impl PersonKey {
    pub const fn from_bytes(b: [u8; 16]) -> Self {
        PersonKey(b)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The partition this person belongs to among `count` partitions. The key is already
    /// uniformly distributed (it is an HMAC output), so a modulus is unbiased enough.
    pub fn partition(&self, count: u32) -> Partition {
        let hi = u64::from_le_bytes(self.0[..8].try_into().expect("8 bytes"));
        Partition((hi % count.max(1) as u64) as u32)
    }

    /// Lower-case hex, 32 characters: the printable form of the key.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(32);
        for b in self.0 {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(chunk).ok()?;
            out[i] = u8::from_str_radix(hex, 16).ok()?;
        }
        Some(PersonKey(out))
    }
}

impl fmt::Debug for PersonKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonKey({})", self.to_hex())
    }
}

impl fmt::Display for PersonKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A hasher for keys that are already uniform hashes (HMAC pseudonyms, fingerprints): it uses
/// their own first 64 bits instead of hashing them again. Only for keys an attacker cannot
/// choose (they would otherwise pick colliding keys).
#[derive(Default)]
pub struct UniformHasher(u64);

impl std::hash::Hasher for UniformHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut b = [0u8; 8];
        let n = bytes.len().min(8);
        b[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(b);
    }
    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
    // A slice's length prefix carries no information here.
    fn write_usize(&mut self, _: usize) {}
}

/// `HashMap` state for keys hashed by [`UniformHasher`].
pub type UniformState = std::hash::BuildHasherDefault<UniformHasher>;

/// A partition number in `0..count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Partition(pub u32);

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{:03}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip_and_partition_range() {
        let k = PersonKey([7u8; 16]);
        assert_eq!(PersonKey::from_hex(&k.to_hex()), Some(k));
        assert!(PersonKey::from_hex("zz").is_none());
        for n in 1..20 {
            assert!(k.partition(n).0 < n);
        }
        assert_eq!(k.partition(0), Partition(0));
    }
}
