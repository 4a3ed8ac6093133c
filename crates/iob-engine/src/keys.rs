//! Key material under the data directory: the API keys (hashed) and the pseudonym secret, and
//! the engine's key management (create, list, revoke) and per-key rate limits.
//!
//! `DIR/keys.json` holds the hashes of generated API keys; `DIR/secrets/pseudonym.key` the
//! 32-byte HMAC key for person keys (mode 0600). Plaintext API keys are returned exactly once,
//! when they are generated, for the operator to copy; they are never written anywhere, and
//! this module must never log one (ids only).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use iob_govern::{GovernError, KeyOrigin, KeyRing, Limit, Scope, SecretKey, StoredKey};
use iob_store::read_optional;
use iob_types::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{Config, Engine, EngineError, ServerConfig};

/// A key just generated: its plaintext is shown once.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: String,
    pub scope: Scope,
    pub secret: String,
    pub expires_at: Option<Timestamp>,
}

/// A key as listed: never its hash or secret.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub id: String,
    #[serde(flatten)]
    pub scope: Scope,
    /// `config` (plaintext in the config or environment; revoke it there) or `file` (keys.json).
    pub origin: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    pub expired: bool,
}

/// What to create: a scope, optionally an id (else one is made up) and a lifetime.
#[derive(Debug, Clone)]
pub struct KeyRequest {
    pub scope: Scope,
    pub id: Option<String>,
    pub expires_in: Option<Duration>,
}

/// A key that authenticated: its id (the actor of permits) and scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub scope: Scope,
}

/// `[server]` rate limits resolved per scope.
#[derive(Debug, Clone, Default)]
pub(crate) struct Limits {
    default: Option<Limit>,
    by_scope: HashMap<String, Limit>,
}

impl Limits {
    pub(crate) fn from_config(cfg: &ServerConfig) -> Limits {
        let limit = |per_sec: f64, burst: f64| Limit {
            per_sec,
            burst: if burst > 0.0 { burst } else { per_sec.max(1.0) },
        };
        Limits {
            default: Some(limit(cfg.rate_limit_per_sec, cfg.rate_limit_burst)),
            by_scope: cfg
                .rate_limit_scopes
                .iter()
                .map(|(scope, l)| (scope.clone(), limit(l.per_sec, l.burst)))
                .collect(),
        }
    }

    fn for_scope(&self, scope: &Scope) -> Limit {
        self.by_scope
            .get(scope.name())
            .copied()
            .or(self.default)
            .unwrap_or(Limit::OFF)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    version: u32,
    keys: Vec<StoredKey>,
}

/// Parses a lifetime: a whole number and a unit, `s`, `m`, `h` or `d` (`90s`, `12h`, `30d`).
pub fn parse_lifetime(text: &str) -> Result<Duration, EngineError> {
    let bad = || EngineError::Invalid {
        field: "expires_in".into(),
        reason: format!("`{text}` is not a lifetime like 90s, 15m, 12h or 30d"),
    };
    let t = text.trim();
    let unit = t.chars().last().ok_or_else(bad)?;
    let n: u64 = t[..t.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let secs = match unit {
        's' => n,
        'm' => n.checked_mul(60).ok_or_else(bad)?,
        'h' => n.checked_mul(3600).ok_or_else(bad)?,
        'd' => n.checked_mul(86_400).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if secs == 0 || secs > 100 * 365 * 86_400 {
        return Err(bad());
    }
    Ok(Duration::from_secs(secs))
}

/// Builds the key ring from the config (plaintext keys) and `DIR/keys.json` (hashes).
pub(crate) fn load_key_ring(dir: &Path, config: &Config) -> Result<KeyRing, EngineError> {
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
    let path = key_file(dir);
    if let Some(bytes) = read_optional(&path)? {
        let f: KeyFile = serde_json::from_slice(&bytes).map_err(|e| EngineError::Config {
            key: path.display().to_string(),
            reason: format!("not a valid key file: {e}"),
        })?;
        for k in f.keys {
            ring.add_stored(k).map_err(|reason| EngineError::Config {
                key: path.display().to_string(),
                reason,
            })?;
        }
    }
    Ok(ring)
}

/// When no write key and no admin key exist anywhere, generates one write key per source (or a
/// `default` source) and an admin key, persists their hashes and returns the plaintexts.
pub(crate) fn bootstrap(
    dir: &Path,
    ring: &mut KeyRing,
    config: &Config,
    now: Timestamp,
) -> Result<Vec<NewKey>, EngineError> {
    if ring
        .keys()
        .any(|(k, _)| matches!(k.scope, Scope::Write { .. } | Scope::Admin))
    {
        return Ok(Vec::new());
    }
    let mut sources: Vec<String> = config.sources.iter().map(|s| s.name.clone()).collect();
    if sources.is_empty() {
        sources.push("default".into());
    }
    let mut scopes: Vec<(String, Scope)> = sources
        .into_iter()
        .map(|s| (s.clone(), Scope::Write { source: s }))
        .collect();
    scopes.push(("admin".into(), Scope::Admin));
    let mut fresh = Vec::new();
    for (id, scope) in scopes {
        let (secret, _) = ring.generate(&id, scope.clone(), Some(now), None)?;
        fresh.push(NewKey {
            id,
            scope,
            secret,
            expires_at: None,
        });
    }
    persist(dir, ring)?;
    Ok(fresh)
}

fn key_file(dir: &Path) -> PathBuf {
    dir.join("keys.json")
}

fn persist(dir: &Path, ring: &KeyRing) -> Result<(), EngineError> {
    let body = serde_json::to_vec_pretty(&KeyFile {
        version: 1,
        keys: ring.stored().cloned().collect(),
    })
    .expect("serializable");
    write_private(&key_file(dir), &body)
}

impl Engine {
    /// Authenticates an API key, then takes a token from its rate limit. Expired keys answer
    /// `ExpiredKey`, unknown ones `InvalidKey`, keys over their rate `RateLimited`.
    pub fn api_key(&self, secret: &str) -> Result<ApiKey, EngineError> {
        let key = {
            let ring = self.keys.read();
            let k = ring
                .authenticate(secret, self.clock.now())
                .map_err(|e| match e {
                    GovernError::ExpiredKey => EngineError::ExpiredKey,
                    _ => EngineError::InvalidKey,
                })?;
            ApiKey {
                id: k.id.clone(),
                scope: k.scope.clone(),
            }
        };
        self.limiter
            .check(&key.id, self.limits.for_scope(&key.scope), Instant::now())
            .map_err(|retry_after| EngineError::RateLimited { retry_after })?;
        Ok(key)
    }

    /// [`Engine::api_key`]'s scope (the write path attributes events by it).
    pub fn authenticate(&self, secret: &str) -> Result<Scope, EngineError> {
        self.api_key(secret).map(|k| k.scope)
    }

    /// Creates a key, persists its hash in `DIR/keys.json` (atomically) and returns the
    /// plaintext, to be shown once. Requests authenticate with it immediately.
    pub fn create_key(&self, req: KeyRequest) -> Result<NewKey, EngineError> {
        let now = self.clock.now();
        let expires_at = req
            .expires_in
            .map(|d| now.saturating_add_ms(d.as_millis().min(i64::MAX as u128) as i64));
        let mut ring = self.keys.write();
        let id = match req.id {
            Some(id) => id,
            None => unused_id(&ring, &req.scope),
        };
        let (secret, _) = ring.generate(&id, req.scope.clone(), Some(now), expires_at)?;
        if let Err(e) = persist(&self.data_dir, &ring) {
            ring.revoke(&id).expect("just added");
            return Err(e);
        }
        tracing::info!(key_id = %id, scope = req.scope.name(), "API key created");
        Ok(NewKey {
            id,
            scope: req.scope,
            secret,
            expires_at,
        })
    }

    /// Every key the engine accepts (or accepted, if expired): ids, scopes, times; no secrets.
    pub fn list_keys(&self) -> Vec<KeyInfo> {
        let now = self.clock.now();
        self.keys
            .read()
            .keys()
            .map(|(k, origin)| KeyInfo {
                id: k.id.clone(),
                scope: k.scope.clone(),
                origin: match origin {
                    KeyOrigin::Config => "config",
                    KeyOrigin::File => "file",
                },
                created_at: k.created_at,
                expires_at: k.expires_at,
                expired: k.expires_at.is_some_and(|t| now >= t),
            })
            .collect()
    }

    /// Revokes the key file's key `id`: from this call on it no longer authenticates.
    pub fn revoke_key(&self, id: &str) -> Result<(), EngineError> {
        let mut ring = self.keys.write();
        let before = ring.clone();
        ring.revoke(id)?;
        if let Err(e) = persist(&self.data_dir, &ring) {
            *ring = before;
            return Err(e);
        }
        self.limiter.forget(id);
        tracing::info!(key_id = %id, "API key revoked");
        Ok(())
    }
}

/// `read-personal-1a2b3c`: the scope and a random suffix not yet taken.
fn unused_id(ring: &KeyRing, scope: &Scope) -> String {
    let base = match scope {
        Scope::Write { source } => format!("write-{source}"),
        other => other.name().replace(':', "-"),
    };
    let base = &base[..base.len().min(56)];
    loop {
        let id = format!("{base}-{:06x}", rand::random::<u32>() & 0xff_ffff);
        if !ring.keys().any(|(k, _)| k.id == id) {
            return id;
        }
    }
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

/// [`iob_govern::write_private`] (atomic, mode 0600), as an engine error.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    iob_govern::write_private(path, bytes)
        .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    fn open(dir: &Path, cfg: &Config) -> (KeyRing, Vec<NewKey>) {
        let mut ring = load_key_ring(dir, cfg).unwrap();
        let fresh = bootstrap(dir, &mut ring, cfg, NOW).unwrap();
        (ring, fresh)
    }

    #[test]
    fn first_start_generates_once_then_reloads_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::default();
        let (ring, fresh) = open(dir.path(), &cfg);
        assert_eq!(fresh.len(), 2);
        let write = &fresh[0];
        assert!(ring.authenticate(&write.secret, NOW).is_ok());
        let file = std::fs::read_to_string(dir.path().join("keys.json")).unwrap();
        assert!(
            !file.contains(&write.secret),
            "plaintext key must not be stored"
        );

        let (ring2, fresh2) = open(dir.path(), &cfg);
        assert!(fresh2.is_empty(), "keys are generated only once");
        assert_eq!(
            ring2.authenticate(&write.secret, NOW).unwrap().id,
            "default"
        );
    }

    #[test]
    fn configured_keys_suppress_generation() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.admin.key = Some("admin-key-0123456789".into());
        let (ring, fresh) = open(dir.path(), &cfg);
        assert!(fresh.is_empty());
        assert_eq!(
            ring.authenticate("admin-key-0123456789", NOW)
                .unwrap()
                .scope,
            Scope::Admin
        );
    }

    /// A key file written before read scopes and expiry existed still loads, unchanged.
    #[test]
    fn old_key_file_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("keys.json"),
            include_str!("../tests/fixtures/keys-v1-write-admin.json"),
        )
        .unwrap();
        let (ring, fresh) = open(dir.path(), &Config::default());
        assert!(fresh.is_empty(), "its write and admin keys count");
        let keys: Vec<_> = ring
            .keys()
            .map(|(k, _)| (k.id.clone(), k.scope.clone()))
            .collect();
        assert_eq!(
            keys,
            [
                (
                    "default".to_string(),
                    Scope::Write {
                        source: "default".into()
                    }
                ),
                ("admin".to_string(), Scope::Admin),
            ]
        );
        // The fixture's secrets are `iobw_fixture` and `ioba_fixture`.
        assert_eq!(ring.authenticate("ioba_fixture", NOW).unwrap().id, "admin");
        assert!(ring.keys().all(|(k, _)| k.expires_at.is_none()));
    }

    #[test]
    fn lifetimes_parse() {
        assert_eq!(parse_lifetime("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_lifetime("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(
            parse_lifetime("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        for bad in ["", "d", "0d", "5w", "-1h", "1.5h", "99999999999d"] {
            let e = parse_lifetime(bad).unwrap_err().to_string();
            assert!(e.contains("expires_in"), "{bad}: {e}");
        }
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
