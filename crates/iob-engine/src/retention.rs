//! Retention per event type, enforced by crypto-shredding: an event covered by a retention rule
//! (`[privacy] retention_days`, by event name or type, e.g. `"Location Updated" = 30`) is sealed
//! twice, under its person's data key and then under a key of its rule and event day. When a
//! day falls out of the window, that day's key is destroyed and every event of the day becomes
//! unreadable at once, in an append-only log, without rewriting a segment.
//!
//! The day keys live in the vault like person keys (under a pseudonymous key derived from rule
//! and day); `vault/retention.json` lists which (rule, day) keys exist, so enforcement knows
//! what to destroy. A background thread enforces every `retention_check_secs`; `iob privacy
//! retention` does it on demand. Profiles keep what they aggregated from expired events (counts,
//! windows): retention removes the raw events, not the statistics derived from them.
//!
//! This module must never seal an event under a day key that is not durable in the vault.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use iob_types::{EventKind, PersonKey};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::EngineError;
use crate::vault::Vault;

const DAY_MS: i64 = 86_400_000;

pub(crate) struct Retention {
    rules: BTreeMap<String, u32>,
    path: PathBuf,
    /// (rule, day since the epoch) of every day key that exists.
    live: Mutex<BTreeSet<(String, i64)>>,
}

#[derive(serde::Deserialize)]
struct Named<'a> {
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
}

/// The vault key of rule `rule`'s day `day`.
pub(crate) fn day_key(rule: &str, day: i64) -> PersonKey {
    let mut h = Sha256::new();
    h.update(b"iob retention day key v1\0");
    h.update(rule.as_bytes());
    h.update(b"\0");
    h.update(day.to_le_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&h.finalize()[..16]);
    PersonKey(k)
}

impl Retention {
    pub(crate) fn load(dir: &Path, rules: BTreeMap<String, u32>) -> Result<Self, EngineError> {
        let path = dir.join("vault").join("retention.json");
        let live: BTreeSet<(String, i64)> = match iob_store::read_optional(&path)? {
            Some(b) => serde_json::from_slice(&b).map_err(|e| EngineError::Config {
                key: path.display().to_string(),
                reason: format!("not a retention key list: {e}"),
            })?,
            None => BTreeSet::new(),
        };
        for (name, days) in &rules {
            if *days == 0 {
                return Err(EngineError::Config {
                    key: format!("privacy.retention_days.{name}"),
                    reason: "must be at least 1 day".into(),
                });
            }
        }
        Ok(Retention {
            rules,
            path,
            live: Mutex::new(live),
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule covering an event: by its name (`track`), else by its type.
    pub(crate) fn rule_for(&self, kind: EventKind, payload: &[u8]) -> Option<&str> {
        if self.rules.is_empty() {
            return None;
        }
        if kind == EventKind::Track
            && let Ok(Named { event: Some(name) }) = serde_json::from_slice::<Named>(payload)
            && let Some((rule, _)) = self.rules.get_key_value(name.as_ref())
        {
            return Some(rule);
        }
        self.rules
            .get_key_value(kind.as_str())
            .map(|(rule, _)| rule.as_str())
    }

    /// The day key for `rule` on the day of `event_time`, issued durably if new.
    pub(crate) fn key_for(
        &self,
        vault: &Vault,
        rule: &str,
        event_time: i64,
    ) -> Result<PersonKey, EngineError> {
        let day = event_time.div_euclid(DAY_MS);
        let key = day_key(rule, day);
        let entry = (rule.to_string(), day);
        let mut live = self.live.lock();
        if !live.contains(&entry) {
            // Key first, then the list: a key the list misses is only enforced late (the list
            // is rewritten with it on the next issue), a listed key that is missing is harmless.
            vault.issue(&[key])?;
            live.insert(entry);
            let bytes = serde_json::to_vec(&*live).expect("serializable");
            crate::keys::write_private(&self.path, &bytes)?;
        }
        Ok(key)
    }

    /// Destroys the day keys whose day is entirely older than their rule's window at `now_ms`;
    /// returns how many.
    pub(crate) fn enforce(&self, vault: &Vault, now_ms: i64) -> Result<usize, EngineError> {
        let mut live = self.live.lock();
        let expired: Vec<(String, i64)> = live
            .iter()
            .filter(|(rule, day)| {
                self.rules
                    .get(rule)
                    .is_none_or(|d| (day + 1) * DAY_MS + i64::from(*d) * DAY_MS <= now_ms)
            })
            .cloned()
            .collect();
        if expired.is_empty() {
            return Ok(0);
        }
        let keys: Vec<PersonKey> = expired.iter().map(|(r, d)| day_key(r, *d)).collect();
        vault.erase(&keys)?;
        for e in &expired {
            live.remove(e);
        }
        let bytes = serde_json::to_vec(&*live).expect("serializable");
        crate::keys::write_private(&self.path, &bytes)?;
        tracing::info!(
            day_keys = keys.len(),
            "retention: destroyed expired day keys"
        );
        Ok(keys.len())
    }
}

/// The background job: enforces retention every `every` until dropped.
pub(crate) struct RetentionWorker {
    stop: std::sync::Arc<(Mutex<bool>, parking_lot::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RetentionWorker {
    pub(crate) fn start(
        privacy: std::sync::Arc<crate::privacy::Privacy>,
        clock: std::sync::Arc<dyn iob_types::Clock>,
        every: std::time::Duration,
    ) -> Result<Option<RetentionWorker>, EngineError> {
        if privacy.retention.is_empty() {
            return Ok(None);
        }
        // What expired while the engine was down goes now, before anything is read or written
        // (and deterministically: not whenever the thread gets to it).
        privacy.retention.enforce(&privacy.vault, clock.now().0)?;
        let stop = std::sync::Arc::new((Mutex::new(false), parking_lot::Condvar::new()));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("iob-retention".into())
            .spawn(move || {
                loop {
                    let mut stopped = s.0.lock();
                    if !*stopped {
                        s.1.wait_for(&mut stopped, every.max(std::time::Duration::from_millis(100)));
                    }
                    if *stopped {
                        return;
                    }
                    drop(stopped);
                    if let Err(e) = privacy
                        .retention
                        .enforce(&privacy.vault, clock.now().0)
                    {
                        tracing::error!(error = %e, "retention: could not destroy expired keys; retrying");
                    }
                }
            })
            .map_err(|e| EngineError::io("starting the retention thread", e))?;
        Ok(Some(RetentionWorker {
            stop,
            thread: Some(thread),
        }))
    }
}

impl Drop for RetentionWorker {
    fn drop(&mut self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
