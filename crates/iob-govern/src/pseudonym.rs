//! Pseudonyms: keyed HMAC-SHA256 of raw identifiers.
//!
//! The same identifier always maps to the same [`PersonKey`] under one key, and nothing short
//! of the key links a key back to the identifier. The identifier type is part of the MAC input
//! so that a user id "42" and an anonymous id "42" are different people until identity
//! resolution says otherwise.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use iob_types::PersonKey;
use rand::RngCore;
use sha2::Sha256;

use crate::GovernError;

/// 32 bytes of key material. Its `Debug` never prints the bytes.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        SecretKey(k)
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, GovernError> {
        let arr: [u8; 32] = b.try_into().map_err(|_| GovernError::KeyLength(b.len()))?;
        Ok(SecretKey(arr))
    }

    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Computes pseudonymous person keys. Cheap to clone; the HMAC key schedule is computed once.
#[derive(Clone)]
pub struct Pseudonymizer {
    mac: Hmac<Sha256>,
}

impl fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pseudonymizer(<keyed>)")
    }
}

impl Pseudonymizer {
    pub fn new(key: &SecretKey) -> Self {
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose()).expect("any key length");
        Pseudonymizer { mac }
    }

    /// The person key of identifier `id` of type `kind` (`user`, `anon`, `device`, `email`...).
    pub fn person_key(&self, kind: &str, id: &str) -> PersonKey {
        let mut mac = self.mac.clone();
        mac.update(kind.as_bytes());
        mac.update(b"\0");
        mac.update(id.as_bytes());
        let out = mac.finalize().into_bytes();
        let mut k = [0u8; 16];
        k.copy_from_slice(&out[..16]);
        PersonKey(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_keyed_and_typed() {
        let k1 = SecretKey::from_bytes(&[1u8; 32]).unwrap();
        let k2 = SecretKey::from_bytes(&[2u8; 32]).unwrap();
        let p1 = Pseudonymizer::new(&k1);
        assert_eq!(p1.person_key("user", "42"), p1.person_key("user", "42"));
        assert_ne!(p1.person_key("user", "42"), p1.person_key("anon", "42"));
        assert_ne!(
            p1.person_key("user", "42"),
            Pseudonymizer::new(&k2).person_key("user", "42")
        );
        // The NUL separator keeps ("us", "er42") and ("user", "42") apart.
        assert_ne!(p1.person_key("us", "er42"), p1.person_key("user", "42"));
    }

    #[test]
    fn debug_never_shows_key_material() {
        let k = SecretKey::from_bytes(&[0xAB; 32]).unwrap();
        assert!(!format!("{k:?}").contains("171"));
        assert!(!format!("{k:?}").to_lowercase().contains("ab"));
        assert!(SecretKey::from_bytes(&[0; 31]).is_err());
    }
}
