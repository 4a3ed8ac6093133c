//! API keys, their scopes, and the one table of what each scope may do.
//!
//! * `write` (per source): send events attributed to that source, nothing else.
//! * `read:analytics`: aggregates only (statistics), never a person.
//! * `read:personal`: person profiles, timelines and identity explanations (under a purpose).
//! * `admin`: everything, including key management, the quarantine and erasure.
//!
//! Keys are stored as SHA-256 hashes (they are 192-bit random strings, so a plain hash is not
//! guessable), compared in constant time against every key, and may expire. This module must
//! never keep or print a plaintext key except the one time [`KeyRing::generate`] returns it to
//! be shown to the operator.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use iob_types::Timestamp;

use crate::GovernError;

/// What a key may do. The serialized names (`write`, `read:analytics`, `read:personal`,
/// `admin`) are stored in `keys.json` and typed on the command line: never rename them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope")]
pub enum Scope {
    /// Send events, attributed to this source.
    #[serde(rename = "write")]
    Write { source: String },
    /// Aggregate statistics only.
    #[serde(rename = "read:analytics")]
    ReadAnalytics,
    /// Personal data: profiles, timelines, identity (each read under a declared purpose).
    #[serde(rename = "read:personal")]
    ReadPersonal,
    /// Everything, including quarantine replay, erasure and key management.
    #[serde(rename = "admin")]
    Admin,
}

/// Every scope name, as typed on the command line and stored in `keys.json`.
pub const SCOPE_NAMES: [&str; 4] = ["write", "read:analytics", "read:personal", "admin"];

impl Scope {
    /// The stable name of the scope (without the source of a write key).
    pub fn name(&self) -> &'static str {
        match self {
            Scope::Write { .. } => "write",
            Scope::ReadAnalytics => "read:analytics",
            Scope::ReadPersonal => "read:personal",
            Scope::Admin => "admin",
        }
    }

    /// The scope called `name`; `write` needs `source`, the others refuse one.
    pub fn parse(name: &str, source: Option<&str>) -> Result<Scope, GovernError> {
        let bad = |reason: String| GovernError::BadScope(reason);
        let scope = match name {
            "write" => {
                let s = source.ok_or_else(|| {
                    bad("a `write` key belongs to one source: name it (--source NAME)".into())
                })?;
                if !valid_name(s) {
                    return Err(bad(format!(
                        "source `{s}` must be 1-64 of a-z, A-Z, 0-9, '-', '_'"
                    )));
                }
                return Ok(Scope::Write { source: s.into() });
            }
            "read:analytics" => Scope::ReadAnalytics,
            "read:personal" => Scope::ReadPersonal,
            "admin" => Scope::Admin,
            other => {
                return Err(bad(format!(
                    "unknown scope `{other}`; scopes: {}",
                    SCOPE_NAMES.join(", ")
                )));
            }
        };
        match source {
            Some(_) => Err(bad(format!(
                "only `write` keys have a source; `{name}` does not take one"
            ))),
            None => Ok(scope),
        }
    }

    /// Whether this scope grants `need` (see [`Need::scopes`], the table).
    pub fn allows(&self, need: Need) -> bool {
        need.scopes().contains(&self.name())
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Write { source } => write!(f, "write (source {source})"),
            other => f.write_str(other.name()),
        }
    }
}

/// What a request needs from its key, beyond sending events (which only a source's own write
/// key may do; the engine checks that when it attributes events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Aggregate statistics: no person is identifiable.
    Aggregates,
    /// A person's data: profiles, timelines, identity.
    Personal,
    /// Managing the system: keys, quarantine, erasure.
    Admin,
}

impl Need {
    /// The access table: the scopes that grant each need. The only place this is decided.
    pub fn scopes(self) -> &'static [&'static str] {
        match self {
            Need::Aggregates => &["read:analytics", "read:personal", "admin"],
            Need::Personal => &["read:personal", "admin"],
            Need::Admin => &["admin"],
        }
    }

    /// What the need is for, in words, for error messages.
    pub fn action(self) -> &'static str {
        match self {
            Need::Aggregates => "read aggregate statistics",
            Need::Personal => "read personal data",
            Need::Admin => "manage keys, the quarantine and erasure",
        }
    }
}

/// Key ids and source names: 1-64 of a-z, A-Z, 0-9, '-', '_'.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One key as stored: a non-secret id, its scope, the hash of the secret, and optionally when
/// it was created and when it stops working. Files written before `created_at` and
/// `expires_at` existed read with both unset (never expires).
/// (No `deny_unknown_fields`: serde cannot combine it with the flattened scope.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredKey {
    pub id: String,
    #[serde(flatten)]
    pub scope: Scope,
    /// Lower-case hex SHA-256 of the key.
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// Where a key comes from: its plaintext in the config (or environment), or its hash in the
/// data directory's key file. Only the latter can be revoked through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    Config,
    File,
}

#[derive(Debug, Clone)]
struct Entry {
    hash: [u8; 32],
    key: StoredKey,
    origin: KeyOrigin,
}

/// The keys the server accepts.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: Vec<Entry>,
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
        let hash = digest(secret);
        self.keys.push(Entry {
            hash,
            key: StoredKey {
                id: id.to_string(),
                scope,
                sha256: hex(&hash),
                created_at: None,
                expires_at: None,
            },
            origin: KeyOrigin::Config,
        });
    }

    /// Adds a key known only by its hash (from the data directory's key file).
    pub fn add_stored(&mut self, key: StoredKey) -> Result<(), String> {
        let hash = unhex(&key.sha256)
            .ok_or_else(|| format!("key `{}`: sha256 must be 64 hex digits", key.id))?;
        self.keys.push(Entry {
            hash,
            key,
            origin: KeyOrigin::File,
        });
        Ok(())
    }

    /// Creates a new random key `id` with `scope`, returns its plaintext (show it once) and the
    /// stored form (persist it). Refuses an id that is already taken.
    pub fn generate(
        &mut self,
        id: &str,
        scope: Scope,
        created_at: Option<Timestamp>,
        expires_at: Option<Timestamp>,
    ) -> Result<(String, StoredKey), GovernError> {
        if !valid_name(id) {
            return Err(GovernError::BadKeyId(id.to_string()));
        }
        if self.keys.iter().any(|e| e.key.id == id) {
            return Err(GovernError::DuplicateKey(id.to_string()));
        }
        let mut raw = [0u8; 24];
        rand::rng().fill_bytes(&mut raw);
        let prefix = match scope {
            Scope::Write { .. } => "iobw_",
            Scope::ReadAnalytics | Scope::ReadPersonal => "iobr_",
            Scope::Admin => "ioba_",
        };
        let secret = format!("{prefix}{}", hex(&raw));
        let hash = digest(&secret);
        let key = StoredKey {
            id: id.to_string(),
            scope,
            sha256: hex(&hash),
            created_at,
            expires_at,
        };
        self.keys.push(Entry {
            hash,
            key: key.clone(),
            origin: KeyOrigin::File,
        });
        Ok((secret, key))
    }

    /// Removes the key file's keys called `id`. Keys from the config cannot be revoked here
    /// (they come back on the next start): remove them from the config.
    pub fn revoke(&mut self, id: &str) -> Result<(), GovernError> {
        let before = self.keys.len();
        let configured = self
            .keys
            .iter()
            .any(|e| e.key.id == id && e.origin == KeyOrigin::Config);
        self.keys
            .retain(|e| !(e.key.id == id && e.origin == KeyOrigin::File));
        if self.keys.len() < before {
            Ok(())
        } else if configured {
            Err(GovernError::ConfiguredKey(id.to_string()))
        } else {
            Err(GovernError::UnknownKey(id.to_string()))
        }
    }

    /// The key matching `secret`, compared in constant time against every key, if it has not
    /// expired at `now`.
    pub fn authenticate(&self, secret: &str, now: Timestamp) -> Result<&StoredKey, GovernError> {
        let h = digest(secret);
        let mut found = None;
        for e in &self.keys {
            if bool::from(e.hash.ct_eq(&h)) {
                found = Some(&e.key);
            }
        }
        let key = found.ok_or(GovernError::InvalidKey)?;
        match key.expires_at {
            Some(t) if now >= t => Err(GovernError::ExpiredKey),
            _ => Ok(key),
        }
    }

    /// Every key with where it comes from (for listing; hashes stay inside `StoredKey`).
    pub fn keys(&self) -> impl Iterator<Item = (&StoredKey, KeyOrigin)> {
        self.keys.iter().map(|e| (&e.key, e.origin))
    }

    /// The keys that belong in the key file.
    pub fn stored(&self) -> impl Iterator<Item = &StoredKey> {
        self.keys
            .iter()
            .filter(|e| e.origin == KeyOrigin::File)
            .map(|e| &e.key)
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
