//! API keys and their scopes.
//!
//! A source's write key may only send events (for that source); an admin key manages the
//! system. Keys are stored as SHA-256 hashes (they are 192-bit random strings, so a plain hash
//! is not guessable) and compared in constant time. This module must never keep or print a
//! plaintext key except the one time [`KeyRing::generate`] returns it to be shown to the operator.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a key may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "scope")]
pub enum Scope {
    /// Send events, attributed to this source.
    Write { source: String },
    /// Everything, including quarantine replay, erasure and key management.
    Admin,
}

/// One key as stored: a non-secret id, its scope, and the hash of the secret.
/// (No `deny_unknown_fields`: serde cannot combine it with the flattened scope.)
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredKey {
    pub id: String,
    #[serde(flatten)]
    pub scope: Scope,
    /// Lower-case hex SHA-256 of the key.
    pub sha256: String,
}

/// The keys the server accepts.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: Vec<([u8; 32], StoredKey)>,
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, c) in s.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok()?;
    }
    Some(out)
}

impl KeyRing {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Adds a key whose plaintext is known (from the config file or the environment).
    pub fn add_plain(&mut self, id: &str, scope: Scope, secret: &str) {
        let h = digest(secret);
        self.keys.push((
            h,
            StoredKey {
                id: id.to_string(),
                scope,
                sha256: hex(&h),
            },
        ));
    }

    /// Adds a key known only by its hash (from the data directory's key file).
    pub fn add_stored(&mut self, key: StoredKey) -> Result<(), String> {
        let h = unhex(&key.sha256)
            .ok_or_else(|| format!("key `{}`: sha256 must be 64 hex digits", key.id))?;
        self.keys.push((h, key));
        Ok(())
    }

    /// Creates a new random key with `scope`, returns its plaintext (show it once) and the
    /// stored form (persist it).
    pub fn generate(&mut self, id: &str, scope: Scope) -> (String, StoredKey) {
        let mut raw = [0u8; 24];
        rand::rng().fill_bytes(&mut raw);
        let prefix = match scope {
            Scope::Write { .. } => "iobw_",
            Scope::Admin => "ioba_",
        };
        let secret = format!("{prefix}{}", hex(&raw));
        self.add_plain(id, scope, &secret);
        let stored = self.keys.last().expect("just pushed").1.clone();
        (secret, stored)
    }

    /// The key matching `secret`, compared in constant time against every key.
    pub fn authenticate(&self, secret: &str) -> Option<&StoredKey> {
        let h = digest(secret);
        let mut found = None;
        for (kh, k) in &self.keys {
            if bool::from(kh.ct_eq(&h)) {
                found = Some(k);
            }
        }
        found
    }

    pub fn stored(&self) -> impl Iterator<Item = &StoredKey> {
        self.keys.iter().map(|(_, k)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_authenticate_and_reload_by_hash() {
        let mut ring = KeyRing::default();
        let (secret, stored) = ring.generate(
            "web",
            Scope::Write {
                source: "web".into(),
            },
        );
        assert!(secret.starts_with("iobw_") && secret.len() == 5 + 48);
        assert_eq!(ring.authenticate(&secret).unwrap().id, "web");
        assert!(ring.authenticate("iobw_forged").is_none());
        assert!(!stored.sha256.contains(&secret[5..]));

        let mut reloaded = KeyRing::default();
        reloaded.add_stored(stored).unwrap();
        assert_eq!(
            reloaded.authenticate(&secret).unwrap().scope,
            Scope::Write {
                source: "web".into()
            }
        );
        let bad = StoredKey {
            id: "x".into(),
            scope: Scope::Admin,
            sha256: "zz".into(),
        };
        assert!(reloaded.add_stored(bad).unwrap_err().contains("`x`"));
    }

    #[test]
    fn stored_key_json_shape() {
        let k = StoredKey {
            id: "a".into(),
            scope: Scope::Admin,
            sha256: "0".repeat(64),
        };
        let j = serde_json::to_string(&k).unwrap();
        assert!(j.contains("\"scope\":\"admin\""), "{j}");
    }
}
