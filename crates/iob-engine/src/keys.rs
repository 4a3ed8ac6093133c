//! Key material under the data directory: the API keys (hashed) and the pseudonym secret.
//!
//! `DIR/keys.json` holds the hashes of generated API keys; `DIR/secrets/pseudonym.key` the
//! 32-byte HMAC key for person keys (mode 0600). Plaintext API keys are returned exactly once,
//! when they are generated, for the operator to copy; they are never written anywhere.

use std::io::Write;
use std::path::Path;

use iob_govern::{KeyRing, Scope, SecretKey, StoredKey};
use serde::{Deserialize, Serialize};

use crate::{Config, EngineError};

/// A key generated on first start: shown once to the operator.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: String,
    pub scope: Scope,
    pub secret: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    version: u32,
    keys: Vec<StoredKey>,
}

/// Builds the key ring from the config (plaintext keys) and `DIR/keys.json` (hashes). When no
/// write key and no admin key exist anywhere, generates one write key per source (or a
/// `default` source) and an admin key, persists their hashes and returns the plaintexts.
pub fn load_key_ring(dir: &Path, config: &Config) -> Result<(KeyRing, Vec<NewKey>), EngineError> {
    let mut ring = KeyRing::default();
    for s in &config.sources {
        if let Some(k) = &s.write_key {
            ring.add_plain(
                &s.name,
                Scope::Write {
                    source: s.name.clone(),
                },
                k,
            );
        }
    }
    if let Some(k) = &config.admin.key {
        ring.add_plain("admin", Scope::Admin, k);
    }
    let path = dir.join("keys.json");
    let mut stored = match std::fs::read(&path) {
        Ok(bytes) => {
            let f: KeyFile = serde_json::from_slice(&bytes).map_err(|e| EngineError::Config {
                key: path.display().to_string(),
                reason: format!("not a valid key file: {e}"),
            })?;
            f.keys
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(EngineError::io(format!("reading {}", path.display()), e)),
    };
    for k in &stored {
        ring.add_stored(k.clone())
            .map_err(|reason| EngineError::Config {
                key: path.display().to_string(),
                reason,
            })?;
    }
    let mut fresh = Vec::new();
    if ring.is_empty() {
        let mut sources: Vec<String> = config.sources.iter().map(|s| s.name.clone()).collect();
        if sources.is_empty() {
            sources.push("default".into());
        }
        for s in sources {
            let scope = Scope::Write { source: s.clone() };
            let (secret, k) = ring.generate(&s, scope.clone());
            stored.push(k);
            fresh.push(NewKey {
                id: s,
                scope,
                secret,
            });
        }
        let (secret, k) = ring.generate("admin", Scope::Admin);
        stored.push(k);
        fresh.push(NewKey {
            id: "admin".into(),
            scope: Scope::Admin,
            secret,
        });
        let body = serde_json::to_vec_pretty(&KeyFile {
            version: 1,
            keys: stored,
        })
        .expect("serializable");
        write_private(&path, &body)?;
    }
    Ok((ring, fresh))
}

/// The pseudonym HMAC key, created on first use.
pub fn load_pseudonym_key(dir: &Path) -> Result<SecretKey, EngineError> {
    let path = dir.join("secrets").join("pseudonym.key");
    match std::fs::read(&path) {
        Ok(bytes) => SecretKey::from_bytes(&bytes).map_err(|e| EngineError::Config {
            key: path.display().to_string(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            std::fs::create_dir_all(path.parent().expect("has parent"))
                .map_err(|e| EngineError::io("creating the secrets directory", e))?;
            write_private(&path, key.expose())?;
            Ok(key)
        }
        Err(e) => Err(EngineError::io(format!("reading {}", path.display()), e)),
    }
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename), readable by the owner only.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    let tmp = path.with_extension("tmp");
    let io = |e| EngineError::io(format!("writing {}", path.display()), e);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(parent) = path.parent()
        && let Ok(d) = std::fs::File::open(parent)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_generates_once_then_reloads_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::default();
        let (ring, fresh) = load_key_ring(dir.path(), &cfg).unwrap();
        assert_eq!(fresh.len(), 2);
        let write = &fresh[0];
        assert!(ring.authenticate(&write.secret).is_some());
        let file = std::fs::read_to_string(dir.path().join("keys.json")).unwrap();
        assert!(
            !file.contains(&write.secret),
            "plaintext key must not be stored"
        );

        let (ring2, fresh2) = load_key_ring(dir.path(), &cfg).unwrap();
        assert!(fresh2.is_empty(), "keys are generated only once");
        assert_eq!(ring2.authenticate(&write.secret).unwrap().id, "default");
    }

    #[test]
    fn configured_keys_suppress_generation() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.admin.key = Some("admin-key-0123456789".into());
        let (ring, fresh) = load_key_ring(dir.path(), &cfg).unwrap();
        assert!(fresh.is_empty());
        assert_eq!(
            ring.authenticate("admin-key-0123456789").unwrap().scope,
            Scope::Admin
        );
    }

    #[test]
    fn pseudonym_key_is_stable_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_pseudonym_key(dir.path()).unwrap();
        let b = load_pseudonym_key(dir.path()).unwrap();
        assert_eq!(a.expose(), b.expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(dir.path().join("secrets/pseudonym.key")).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o600);
        }
    }
}
