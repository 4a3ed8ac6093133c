//! Encryption at rest: per-person data keys, sealed payloads, and the master key that wraps them.
//!
//! Every stored event payload is sealed with AES-256-GCM (ring) under the **data key** of the
//! person key it is stored under; data keys are random and kept only *wrapped* (AES-256-GCM
//! again) under the **master key**, which lives outside the data (a file or the environment).
//! Destroying a person's wrapped data key makes every payload sealed under it unreadable:
//! erasure by crypto-shredding, with no rewrite of the append-only log. Rotating the master key
//! re-wraps the data keys and leaves the events untouched.
//!
//! Layouts (the associated data binds each ciphertext to the person key and key generation, so
//! a sealed payload moved to another person's record, or under a re-issued key, fails to open):
//!
//! * sealed payload: `ciphertext | tag 16 | nonce 12 | generation u32 LE` (a trailer, so a
//!   payload is sealed in place, without a copy)
//! * wrapped data key: `nonce 12 | encrypted key 32 | tag 16`
//!
//! This module must never print key material (the `Debug` impls redact it), never reuse a
//! nonce on purpose (nonces are 96 random bits; a data key seals one person's events, far
//! below the 2^32 messages per key that random nonces allow), and never do I/O.

use std::fmt;

use iob_types::PersonKey;
use rand::RngCore;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::GovernError;

/// Bytes a sealed payload adds to its plaintext.
pub const SEAL_OVERHEAD: usize = 16 + 12 + 4;
/// Length of a wrapped data key.
pub const WRAPPED_LEN: usize = 12 + 32 + 16;

fn nonce() -> [u8; 12] {
    let mut n = [0u8; 12];
    rand::rng().fill_bytes(&mut n);
    n
}

fn aad(person: &PersonKey, generation: u32, domain: u8) -> [u8; 21] {
    let mut a = [0u8; 21];
    a[0] = domain;
    a[1..17].copy_from_slice(&person.0);
    a[17..].copy_from_slice(&generation.to_le_bytes());
    a
}

const DOMAIN_PAYLOAD: u8 = 1;
const DOMAIN_WRAP: u8 = 2;

fn aes(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("32-byte AES-256 key"))
}

/// A person's data key (256 bits). Zeroed when dropped; `Debug` never prints it.
#[derive(Clone)]
pub struct DataKey {
    bytes: Zeroizing<[u8; 32]>,
    generation: u32,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey(gen {}, <redacted>)", self.generation)
    }
}

impl DataKey {
    /// A fresh random key of `generation` (a person key's first key is generation 0; a key
    /// issued after an erasure gets the next generation, so old payloads never open under it).
    pub fn generate(generation: u32) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(&mut *bytes);
        DataKey { bytes, generation }
    }

    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// The expanded key for sealing or opening many payloads (the AES key schedule is the
    /// costly part, so callers cache it for people seen often).
    pub fn cipher(&self) -> PersonCipher {
        PersonCipher {
            aes: aes(&self.bytes),
            generation: self.generation,
        }
    }
}

/// An expanded data key.
pub struct PersonCipher {
    aes: LessSafeKey,
    generation: u32,
}

impl fmt::Debug for PersonCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonCipher(gen {})", self.generation)
    }
}

impl PersonCipher {
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Hints the CPU to fetch this cipher (its reference count's line too, when it sits in an
    /// `Arc`: it comes first) and its expanded key: round keys and GHASH table, ~9 cache lines.
    pub fn prefetch(self: &std::sync::Arc<Self>) {
        // The `Arc`'s counts sit just before the value: start one line early.
        let start = std::sync::Arc::as_ptr(self).cast::<u8>().wrapping_sub(64);
        iob_types::prefetch(start, std::mem::size_of::<Self>() + 64);
    }

    /// Seals `payload` for `person` in place: the plaintext becomes the ciphertext, followed
    /// by the tag, nonce and key generation.
    pub fn seal_in_place(&self, person: &PersonKey, payload: &mut Vec<u8>) {
        self.seal_tail(person, payload, 0);
    }

    /// [`PersonCipher::seal_in_place`] of `buf[at..]`: what precedes it is left alone (the
    /// store seals each payload in its group buffer, after the frame header). `buf` grows by
    /// exactly [`SEAL_OVERHEAD`].
    pub fn seal_tail(&self, person: &PersonKey, buf: &mut Vec<u8>, at: usize) {
        let n = nonce();
        buf.reserve(SEAL_OVERHEAD);
        let tag = self
            .aes
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(n),
                Aad::from(aad(person, self.generation, DOMAIN_PAYLOAD)),
                &mut buf[at..],
            )
            .expect("payloads are far below the AES-GCM length limit");
        buf.extend_from_slice(tag.as_ref());
        buf.extend_from_slice(&n);
        buf.extend_from_slice(&self.generation.to_le_bytes());
    }

    /// The sealed form of `plaintext` for `person`.
    pub fn seal(&self, person: &PersonKey, plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
        out.extend_from_slice(plaintext);
        self.seal_in_place(person, &mut out);
        out
    }

    /// Opens a payload sealed for `person`; fails if it was sealed under another key, another
    /// person or generation, or was altered.
    pub fn open(&self, person: &PersonKey, sealed: &[u8]) -> Result<Vec<u8>, GovernError> {
        let generation = sealed_generation(sealed).ok_or(GovernError::Sealed("too short"))?;
        if generation != self.generation {
            return Err(GovernError::Sealed("sealed under another key generation"));
        }
        let body = sealed.len() - 16;
        let n: [u8; 12] = sealed[body..body + 12].try_into().expect("12 bytes");
        let mut buf = sealed[..body].to_vec();
        let len = self
            .aes
            .open_in_place(
                Nonce::assume_unique_for_key(n),
                Aad::from(aad(person, generation, DOMAIN_PAYLOAD)),
                &mut buf,
            )
            .map_err(|_| GovernError::Sealed("authentication failed"))?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// The key generation a sealed payload names, `None` if it is too short to be one.
pub fn sealed_generation(sealed: &[u8]) -> Option<u32> {
    (sealed.len() >= SEAL_OVERHEAD)
        .then(|| u32::from_le_bytes(sealed[sealed.len() - 4..].try_into().unwrap()))
}

/// The master key: wraps data keys. Identified by a fingerprint that reveals nothing about it.
pub struct MasterKey {
    aes: LessSafeKey,
    id: String,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    pub fn from_bytes(b: &[u8]) -> Result<Self, GovernError> {
        let arr: Zeroizing<[u8; 32]> =
            Zeroizing::new(b.try_into().map_err(|_| GovernError::KeyLength(b.len()))?);
        let mut h = Sha256::new();
        h.update(b"iob master key id v1\0");
        h.update(*arr);
        let id = h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(MasterKey { aes: aes(&arr), id })
    }

    /// A master key given as text: 64 hex digits or base64 of 32 bytes (surrounding
    /// whitespace ignored), as kept in a file or an environment variable.
    pub fn from_text(text: &str) -> Result<Self, GovernError> {
        let t = text.trim();
        if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            let bytes: Vec<u8> = (0..32)
                .map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16).expect("hex"))
                .collect();
            let bytes = Zeroizing::new(bytes);
            return Self::from_bytes(&bytes);
        }
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(t)
            .map(Zeroizing::new)
            .map_err(|_| GovernError::MasterKeyFormat)?;
        Self::from_bytes(&bytes)
    }

    /// A non-secret fingerprint (16 hex digits) naming this key in files and messages.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn wrap(&self, person: &PersonKey, key: &DataKey) -> [u8; WRAPPED_LEN] {
        let n = nonce();
        let mut out = [0u8; WRAPPED_LEN];
        out[..12].copy_from_slice(&n);
        out[12..44].copy_from_slice(&*key.bytes);
        let tag = self
            .aes
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(n),
                Aad::from(aad(person, key.generation, DOMAIN_WRAP)),
                &mut out[12..44],
            )
            .expect("32 bytes");
        out[44..].copy_from_slice(tag.as_ref());
        out
    }

    pub fn unwrap(
        &self,
        person: &PersonKey,
        generation: u32,
        wrapped: &[u8],
    ) -> Result<DataKey, GovernError> {
        if wrapped.len() != WRAPPED_LEN {
            return Err(GovernError::Sealed("wrapped key has the wrong length"));
        }
        let n: [u8; 12] = wrapped[..12].try_into().expect("12");
        let mut buf = Zeroizing::new([0u8; 48]);
        buf.copy_from_slice(&wrapped[12..]);
        self.aes
            .open_in_place(
                Nonce::assume_unique_for_key(n),
                Aad::from(aad(person, generation, DOMAIN_WRAP)),
                &mut buf[..],
            )
            .map_err(|_| GovernError::Sealed("data key does not open under this master key"))?;
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(&buf[..32]);
        Ok(DataKey { bytes, generation })
    }
}

/// Generates master key text (64 hex digits) for a new key file.
pub fn generate_master_key_text() -> Zeroizing<String> {
    let mut b = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(&mut *b);
    Zeroizing::new(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pk(b: u8) -> PersonKey {
        PersonKey([b; 16])
    }

    #[test]
    fn seal_open_roundtrip_and_binding() {
        let k = DataKey::generate(0);
        let c = k.cipher();
        let sealed = c.seal(&pk(1), b"{\"userId\":\"ada\"}");
        assert_eq!(sealed.len(), SEAL_OVERHEAD + 16);
        assert!(!sealed.windows(3).any(|w| w == b"ada"));
        assert_eq!(c.open(&pk(1), &sealed).unwrap(), b"{\"userId\":\"ada\"}");
        // Another person, another key, a flipped bit, a truncation: all refused.
        assert!(c.open(&pk(2), &sealed).is_err());
        assert!(DataKey::generate(0).cipher().open(&pk(1), &sealed).is_err());
        let mut bad = sealed.clone();
        bad[3] ^= 1;
        assert!(c.open(&pk(1), &bad).is_err());
        assert!(c.open(&pk(1), &sealed[..10]).is_err());
        // A key of the next generation never opens a payload of the previous one.
        let next = DataKey::generate(1).cipher();
        assert!(
            next.open(&pk(1), &sealed)
                .unwrap_err()
                .to_string()
                .contains("generation")
        );
    }

    #[test]
    fn sealing_a_tail_leaves_what_precedes_it_and_opens_like_a_whole_seal() {
        let c = DataKey::generate(2).cipher();
        let mut buf = b"HEADER".to_vec();
        buf.extend_from_slice(b"{\"userId\":\"ada\"}");
        let before = buf.len();
        c.seal_tail(&pk(1), &mut buf, 6);
        assert_eq!(buf.len(), before + SEAL_OVERHEAD);
        assert_eq!(&buf[..6], b"HEADER");
        assert_eq!(c.open(&pk(1), &buf[6..]).unwrap(), b"{\"userId\":\"ada\"}");
        assert!(c.open(&pk(2), &buf[6..]).is_err());
        // An empty tail seals too (and opens to nothing).
        let mut empty = b"H".to_vec();
        c.seal_tail(&pk(1), &mut empty, 1);
        assert_eq!(c.open(&pk(1), &empty[1..]).unwrap(), b"");
    }

    #[test]
    fn wrap_unwrap_and_wrong_master() {
        let m = MasterKey::from_text(&generate_master_key_text()).unwrap();
        let k = DataKey::generate(3);
        let w = m.wrap(&pk(9), &k);
        let back = m.unwrap(&pk(9), 3, &w).unwrap();
        let sealed = k.cipher().seal(&pk(9), b"x");
        assert_eq!(back.cipher().open(&pk(9), &sealed).unwrap(), b"x");
        assert!(m.unwrap(&pk(8), 3, &w).is_err());
        assert!(m.unwrap(&pk(9), 2, &w).is_err());
        let other = MasterKey::from_text(&generate_master_key_text()).unwrap();
        assert!(other.unwrap(&pk(9), 3, &w).is_err());
        assert_ne!(m.id(), other.id());
        assert!(!format!("{m:?} {k:?}").contains(&format!("{:02x}", k.bytes[0]).repeat(2)));
    }

    #[test]
    fn master_key_text_forms() {
        let hex = "00".repeat(32);
        let a = MasterKey::from_text(&format!("  {hex}\n")).unwrap();
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
        let b = MasterKey::from_text(&b64).unwrap();
        assert_eq!(a.id(), b.id());
        assert!(MasterKey::from_text("short").is_err());
        assert!(MasterKey::from_text(&"00".repeat(31)).is_err());
    }
}
