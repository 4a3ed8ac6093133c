//! Privacy at the engine's seams: sealing payloads before they are stored, opening them on the
//! way out, the health-data gate, and the master key's life cycle.
//!
//! * Every record is sealed under its person key's data key from the [`Vault`] on the store's
//!   committer thread ([`iob_store::Sealer`], so sealing overlaps with parsing the next
//!   requests), before it is framed; keys for new person keys are made durable first. Every
//!   quarantined body that names a person is sealed the same way before it is kept.
//! * Reads open payloads here; a payload whose key was destroyed (an erased person) opens to
//!   `None`, and every consumer skips it: erased persons are not counted anywhere.
//! * `observe` readings of configured health metrics are only accepted from persons with
//!   health consent (decided by the unify state after applying the durable log).
//!
//! This module must never hand out plaintext of a record whose key is gone, and never log a
//! payload or a key.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use iob_govern::{MasterKey, PersonCipher, Pseudonymizer, SEAL_OVERHEAD, sealed_generation};
use iob_store::{Codec, NewQuarantined, NewRecord, Payload, RecordBatch};
use iob_types::{EventKind, PersonKey};

use crate::retention::Retention;
use crate::vault::Vault;
use crate::{Config, EngineError};

pub(crate) struct Privacy {
    pub(crate) vault: Vault,
    pub(crate) retention: Retention,
    encrypt: bool,
    health: HashSet<String>,
    truncate_ip: bool,
    /// Where the generated master key lives (`None`: the operator supplies it).
    generated_key: Option<PathBuf>,
}

fn default_key_path(dir: &Path) -> PathBuf {
    dir.join("secrets").join("master.key")
}

fn read_key_file(path: &Path) -> Result<MasterKey, EngineError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| EngineError::io(format!("reading the master key {}", path.display()), e))?;
    MasterKey::from_text(&text).map_err(|e| EngineError::Config {
        key: path.display().to_string(),
        reason: e.to_string(),
    })
}

impl Privacy {
    pub(crate) fn load(dir: &Path, config: &Config) -> Result<Privacy, EngineError> {
        let p = &config.privacy;
        let (master, generated_key) = if let Some(f) = &p.master_key_file {
            (read_key_file(f)?, None)
        } else if let Some(text) = &p.master_key {
            let key = MasterKey::from_text(text).map_err(|e| EngineError::Config {
                key: "privacy.master_key (IOB_MASTER_KEY)".into(),
                reason: e.to_string(),
            })?;
            (key, None)
        } else {
            let path = default_key_path(dir);
            let next = path.with_extension("key.next");
            if next.exists() {
                // A rotation stopped between re-wrapping the vault and replacing the key file:
                // the vault says which key it is wrapped under; keep that one.
                let candidate = read_key_file(&next)?;
                if Vault::wrapped_under(dir, &candidate)? {
                    std::fs::rename(&next, &path)
                        .map_err(|e| EngineError::io("finishing a master key rotation", e))?;
                } else {
                    let _ = std::fs::remove_file(&next);
                }
            }
            if !path.exists() && dir.join("vault").join("keys.v1").exists() {
                // Generating a new key here would make every sealed event unreadable.
                return Err(EngineError::Config {
                    key: path.display().to_string(),
                    reason: "the master key is missing but the vault holds keys wrapped under one: restore the key file (or set privacy.master_key_file / IOB_MASTER_KEY to it)".into(),
                });
            }
            if !path.exists() {
                std::fs::create_dir_all(path.parent().expect("secrets/"))
                    .map_err(|e| EngineError::io("creating the secrets directory", e))?;
                let text = iob_govern::generate_master_key_text();
                crate::keys::write_private(&path, text.as_bytes())?;
            }
            (read_key_file(&path)?, Some(path))
        };
        Ok(Privacy {
            vault: Vault::open(dir, master, p.key_cache)?,
            retention: Retention::load(dir, p.retention_days.clone())?,
            encrypt: p.encrypt,
            health: p.health_metrics.iter().cloned().collect(),
            truncate_ip: p.truncate_ip,
            generated_key,
        })
    }

    /// Truncates `context.ip` in canonical payloads when configured (IPv4 to /24, IPv6 to
    /// /48), before anything is stored.
    pub(crate) fn truncate_ips(&self, batch: &mut RecordBatch) {
        if !self.truncate_ip {
            return;
        }
        for i in 0..batch.len() {
            // Only payloads that may carry an address are re-encoded.
            let payload = batch.payload(i);
            if !payload.windows(5).any(|w| w == b"\"ip\":") {
                continue;
            }
            let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(payload) else {
                continue;
            };
            let Some(ip) = v["context"]["ip"].as_str() else {
                continue;
            };
            let truncated = match ip.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(a)) => {
                    let o = a.octets();
                    std::net::Ipv4Addr::new(o[0], o[1], o[2], 0).to_string()
                }
                Ok(std::net::IpAddr::V6(a)) => {
                    let s = a.segments();
                    std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0).to_string()
                }
                // Not an address: not kept either.
                Err(_) => String::new(),
            };
            v["context"]["ip"] = serde_json::Value::String(truncated);
            if let Ok(b) = serde_json::to_vec(&v) {
                batch.set_payload(i, b);
            }
        }
    }

    pub(crate) fn is_health(&self, metric: &str) -> bool {
        self.health.contains(metric)
    }

    /// Whether a stored event is a health reading: an `observe` of a configured health metric.
    pub(crate) fn is_health_reading(&self, kind: EventKind, metric: Option<&str>) -> bool {
        kind == EventKind::Observe && metric.is_some_and(|m| self.is_health(m))
    }

    /// [`Privacy::is_health_reading`] of an event's JSON.
    pub(crate) fn is_health_json(&self, v: &serde_json::Value) -> bool {
        v["type"] == "observe" && self.is_health_reading(EventKind::Observe, v["metric"].as_str())
    }

    /// Readies a batch for sealing: truncates addresses, finds (or durably issues) every
    /// record's data key, and the day key of those a retention rule covers. The store then
    /// seals each record it keeps with the returned plan, in its group buffer. With encryption
    /// off the plan stores payloads as they are.
    pub(crate) fn prepare_seal(&self, batch: &mut RecordBatch) -> Result<SealPlan, EngineError> {
        self.truncate_ips(batch);
        if !self.encrypt || batch.is_empty() {
            return Ok(SealPlan::default());
        }
        let persons = || batch.records().iter().map(|r| &r.person);
        let found = self.vault.ciphers(persons());
        // First sight of these person keys: their data keys are made durable first, in one
        // write, and only they are looked up again.
        let missing: Vec<PersonKey> = persons()
            .zip(&found)
            .filter(|(_, c)| c.is_none())
            .map(|(p, _)| *p)
            .collect();
        if !missing.is_empty() {
            self.vault.issue(&missing)?;
        }
        let ciphers = found
            .into_iter()
            .zip(persons())
            .map(|(c, p)| c.map_or_else(|| self.vault.cipher(p), Ok))
            .collect::<Result<Vec<_>, _>>()?;
        // Sealed again under the day's retention key: `outer seal | day key`.
        let mut expiring = Vec::new();
        if !self.retention.is_empty() {
            for (i, r) in batch.records().iter().enumerate() {
                let day = match self.retention.rule_for(r.kind, batch.payload(i)) {
                    Some(rule) => {
                        let day = self.retention.key_for(&self.vault, rule, r.event_time.0)?;
                        Some((day, self.vault.cipher(&day)?))
                    }
                    None => None,
                };
                expiring.push(day);
            }
        }
        Ok(SealPlan { ciphers, expiring })
    }

    /// Seals a quarantined body that names a person (so erasing them shreds it too).
    pub(crate) fn seal_quarantined(&self, q: &mut NewQuarantined) -> Result<(), EngineError> {
        let Some(person) = q.person.filter(|_| self.encrypt) else {
            return Ok(());
        };
        let cipher = self.vault.cipher(&person)?;
        q.payload = cipher.seal(&person, &q.payload);
        q.codec = Codec::Sealed;
        Ok(())
    }

    /// The plaintext of a stored payload; `None` if its key was destroyed (erased person).
    pub(crate) fn open<'a>(
        &self,
        seq: u64,
        person: &PersonKey,
        codec: Codec,
        payload: &'a [u8],
    ) -> Result<Option<Cow<'a, [u8]>>, EngineError> {
        match codec {
            Codec::Json => Ok(Some(Cow::Borrowed(payload))),
            Codec::SealedExpiring => {
                let corrupt = |reason: String| EngineError::Corrupt { seq, reason };
                if payload.len() < 16 {
                    return Err(corrupt("sealed payload too short".into()));
                }
                let (outer, day) = payload.split_at(payload.len() - 16);
                let day = PersonKey(day.try_into().expect("16"));
                let generation = sealed_generation(outer)
                    .ok_or_else(|| corrupt("sealed payload too short".into()))?;
                // The day's key destroyed: expired under its retention rule.
                let Some(cipher) = self.vault.opener(&day, generation) else {
                    return Ok(None);
                };
                let inner = cipher
                    .open(&day, outer)
                    .map_err(|e| corrupt(e.to_string()))?;
                Ok(self
                    .open(seq, person, Codec::Sealed, &inner)?
                    .map(|p| Cow::Owned(p.into_owned())))
            }
            Codec::Sealed => {
                let generation = sealed_generation(payload).ok_or(EngineError::Corrupt {
                    seq,
                    reason: "sealed payload too short".into(),
                })?;
                let Some(cipher) = self.vault.opener(person, generation) else {
                    return Ok(None);
                };
                cipher
                    .open(person, payload)
                    .map(|p| Some(Cow::Owned(p)))
                    .map_err(|e| EngineError::Corrupt {
                        seq,
                        reason: e.to_string(),
                    })
            }
        }
    }

    /// Re-wraps every data key under `new` (or a generated key when the master key is the
    /// generated file), without rewriting any event. Returns the new key's id and how many
    /// data keys were re-wrapped.
    pub(crate) fn rotate(&self, new: Option<MasterKey>) -> Result<(String, usize), EngineError> {
        match (&self.generated_key, new) {
            (Some(path), None) => {
                // Key file first (as `.next`), then the vault, then the rename: a crash at any
                // point leaves a key that opens the vault (see `open`).
                let next = path.with_extension("key.next");
                let text = iob_govern::generate_master_key_text();
                crate::keys::write_private(&next, text.as_bytes())?;
                let key = read_key_file(&next)?;
                let id = key.id().to_string();
                let n = self.vault.rotate(key)?;
                std::fs::rename(&next, path)
                    .map_err(|e| EngineError::io("replacing the master key file", e))?;
                iob_govern::sync_dir(path.parent().expect("secrets/"))
                    .map_err(|e| EngineError::io("syncing the secrets directory", e))?;
                Ok((id, n))
            }
            (_, Some(key)) => {
                let id = key.id().to_string();
                let n = self.vault.rotate(key)?;
                Ok((id, n))
            }
            (None, None) => Err(EngineError::Invalid {
                field: "new master key".into(),
                reason: "the master key is supplied by privacy.master_key_file or IOB_MASTER_KEY: pass the new one with --new-key-file, then point the configuration at it".into(),
            }),
        }
    }
}

/// The person key a raw (possibly invalid) body names, if it names one as the collector
/// would route it: a quarantined body is sealed under it so erasure reaches it.
pub(crate) fn raw_person(p: &Pseudonymizer, raw: &[u8]) -> Option<PersonKey> {
    let fields = iob_types::split_top_level(raw).ok()?;
    let text = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| serde_json::from_str::<String>(v.get()).ok())
            .filter(|s| !s.is_empty())
    };
    let (user, anon, device) = (text("userId"), text("anonymousId"), text("deviceId"));
    let (kind, id) = iob_types::routing_id(user.as_deref(), anon.as_deref(), device.as_deref())?;
    Some(p.person_key(kind, id))
}

/// How one batch is sealed ([`Privacy::prepare_seal`]): each record's cipher, and the day key
/// of those that expire. No ciphers: stored as they are (encryption off).
#[derive(Default)]
pub(crate) struct SealPlan {
    ciphers: Vec<Arc<PersonCipher>>,
    /// Empty when no retention rule is configured.
    expiring: Vec<Option<(PersonKey, Arc<PersonCipher>)>>,
}

impl iob_store::BatchSeal for SealPlan {
    fn overhead(&self, i: usize) -> usize {
        match (self.ciphers.is_empty(), self.expiring.get(i)) {
            (true, _) => 0,
            // Sealed again under the day key, which follows: `outer seal | day key`.
            (false, Some(Some((day, _)))) => 2 * SEAL_OVERHEAD + day.0.len(),
            (false, _) => SEAL_OVERHEAD,
        }
    }

    fn prefetch(&self, i: usize) {
        if let Some(c) = self.ciphers.get(i) {
            c.prefetch();
        }
    }

    fn seal(
        &mut self,
        i: usize,
        record: &NewRecord<Payload>,
        buf: &mut Vec<u8>,
        at: usize,
    ) -> Codec {
        let Some(cipher) = self.ciphers.get(i) else {
            return record.codec;
        };
        cipher.seal_tail(&record.person, buf, at);
        match self.expiring.get(i) {
            Some(Some((day, day_cipher))) => {
                day_cipher.seal_tail(day, buf, at);
                buf.extend_from_slice(&day.0);
                Codec::SealedExpiring
            }
            _ => Codec::Sealed,
        }
    }
}

/// The store's hook into sealing: [`Privacy::prepare_seal`] on the committer thread.
pub(crate) struct StoreSealer(pub(crate) Arc<Privacy>);

impl iob_store::Sealer for StoreSealer {
    fn prepare<'s>(
        &'s self,
        batch: &mut RecordBatch,
    ) -> Result<Box<dyn iob_store::BatchSeal + 's>, String> {
        match self.0.prepare_seal(batch) {
            Ok(plan) => Ok(Box::new(plan)),
            Err(e) => Err(e.to_string()),
        }
    }
}
