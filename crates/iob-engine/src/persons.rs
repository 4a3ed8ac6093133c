//! Data-subject operations on one person: erasure (crypto-shredding plus removal from every
//! derived state) and export (everything held about them, each item with its purpose), and the
//! master key rotation that keeps both possible.
//!
//! Both are administrative: they take a permit for the `operations` purpose (which only an
//! admin key or the operator gets), are not consent-based, and are audited by the caller's
//! permit like every read. Must never leave an erased person readable anywhere the engine
//! reads from: the log (keys destroyed), the unify state and its snapshot (removed and
//! rewritten at once), the quarantine (sealed under the same keys).

use std::collections::BTreeSet;

use iob_govern::{MasterKey, Permit};
use iob_store::Codec;
use iob_types::{PersonKey, Timestamp};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{Engine, EngineError};

/// What an erasure removed.
#[derive(Debug, Clone, Serialize)]
pub struct ErasureReport {
    /// The person id the erased person had (it is not reused).
    pub person: u64,
    /// Identifiers removed from the identity graph.
    pub identifiers: usize,
    /// Stored events of the person, now unreadable.
    pub events: usize,
    /// Data keys destroyed.
    pub keys_destroyed: usize,
    /// Quarantined entries of the person (sealed under the destroyed keys).
    pub quarantined: usize,
    /// Events stored without encryption (`privacy.encrypt = false`): their bytes remain in
    /// the log (an append-only file); reads skip them from now on.
    pub plaintext_events: usize,
    /// Items removed from each derived store (compacted analytics rows, model state).
    pub derived: Vec<(String, u64)>,
}

/// Everything held about a person.
#[derive(Debug, Clone, Serialize)]
pub struct PersonExport {
    pub person: u64,
    pub exported_at: String,
    /// Each item: `{purpose, kind, data}`.
    pub items: Vec<Value>,
}

fn require_operations(permit: &Permit, what: &'static str) -> Result<(), EngineError> {
    if permit.purpose().is_operations() {
        Ok(())
    } else {
        Err(EngineError::Invalid {
            field: "purpose".into(),
            reason: format!(
                "{what} is a data-subject request handled under the `operations` purpose (admin key), not `{}`",
                permit.purpose()
            ),
        })
    }
}

impl Engine {
    /// Erases the person behind `id` everywhere: their data keys (crypto-shredding the log and
    /// quarantine entries sealed under them), identity links, profile, journey and consent
    /// history, and the unify snapshot is rewritten without them before this returns.
    pub fn erase_person(&self, permit: &Permit, id: &str) -> Result<ErasureReport, EngineError> {
        require_operations(permit, "erasure")?;
        let shared = &self.unify;
        shared.catch_up()?;
        let person = shared
            .unifier
            .lock()
            .lookup(id)
            .ok_or_else(|| EngineError::UnknownPerson(id.to_string()))?;
        // Recorded first, while the person still has the identifiers the record names.
        self.audit_person(permit, iob_govern::Access::Erase, person, 0)?;
        let mut unifier = shared.unifier.lock();
        let erased = unifier
            .erase(permit, person)
            .map_err(|_| EngineError::UnknownPerson(id.to_string()))?;
        // The keys their events are stored under (routing keys), and their identifiers'.
        let mut keys: BTreeSet<PersonKey> = erased.identifiers.iter().map(|i| i.key).collect();
        let mut plaintext_events = 0;
        let mut times = Vec::with_capacity(erased.events.len());
        for &seq in &erased.events {
            for r in self.store.read_log(permit, seq, 1)? {
                keys.insert(r.person);
                times.push(r.event_time.0);
                if r.codec == Codec::Json {
                    plaintext_events += 1;
                }
            }
        }
        let keys: Vec<PersonKey> = keys.into_iter().collect();
        let keys_destroyed = self.privacy.vault.erase(&keys)?;
        let quarantined = self
            .store
            .quarantine()
            .list(permit, true, usize::MAX)?
            .iter()
            .filter(|q| q.person.is_some_and(|p| keys.binary_search(&p).is_ok()))
            .count();
        drop(unifier);
        shared.force_snapshot()?;
        // Derived stores last: the person is already unreadable through the log, so a crash
        // here leaves rows no directory maps to anyone (hidden), to be removed on the retry.
        let derived = self.erase_derived(&crate::ErasedPerson {
            person: erased.person,
            keys: keys.clone(),
            seqs: erased.events.clone(),
            times,
            epoch: self.privacy.vault.epoch(),
        })?;
        tracing::info!(
            person = person.0,
            identifiers = erased.identifiers.len(),
            events = erased.events.len(),
            keys_destroyed,
            "erased a person"
        );
        Ok(ErasureReport {
            person: person.0,
            identifiers: erased.identifiers.len(),
            events: erased.events.len(),
            keys_destroyed,
            quarantined,
            plaintext_events,
            derived,
        })
    }

    /// Everything held about the person behind `id`, machine-readable, each item with the
    /// purpose it is held for: identifiers, consent history, profile, every event, and
    /// quarantined events.
    pub fn export_person(&self, permit: &Permit, id: &str) -> Result<PersonExport, EngineError> {
        require_operations(permit, "export")?;
        self.unify.catch_up()?;
        let now = self.clock.now();
        let u = self.unify.unifier.lock();
        let person = u
            .lookup(id)
            .ok_or_else(|| EngineError::UnknownPerson(id.to_string()))?;
        let mut items = Vec::new();
        // Purposes the person's data currently serves (operations aside).
        let allowed: Vec<String> = u
            .consent_rules()
            .policy
            .purposes()
            .filter(|(p, _)| u.decide(person, p).allowed())
            .map(|(p, _)| p.to_string())
            .collect();
        let explanation = u.explain(permit, person).ok();
        let mut keys: BTreeSet<PersonKey> = BTreeSet::new();
        if let Some(ex) = &explanation {
            for i in &ex.identifiers {
                keys.insert(i.key);
                items.push(json!({
                    "purpose": "operations",
                    "why": "identity resolution: links this identifier to the person",
                    "kind": "identifier",
                    "data": i,
                }));
            }
        }
        if let Some(h) = u.consents(person) {
            for c in h.choices() {
                items.push(json!({
                    "purpose": "operations",
                    "why": "proof of consent",
                    "kind": "consent",
                    "data": c,
                }));
            }
        }
        if let Ok(view) = u.view(permit, person, now.0) {
            items.push(json!({
                "purpose": allowed,
                "kind": "profile",
                "data": view,
            }));
        }
        let seqs: Vec<u64> = u
            .journey(permit, person, None, usize::MAX)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, seq)| seq)
            .rev()
            .collect();
        drop(u);
        for seq in seqs {
            for r in self.store.read_log(permit, seq, 1)? {
                keys.insert(r.person);
                let Some(v) = self.open_json(&r)? else {
                    continue;
                };
                let health = self.privacy.is_health_json(&v);
                let purpose = if health {
                    json!(["health"])
                } else {
                    json!(allowed)
                };
                items.push(json!({ "purpose": purpose, "kind": "event", "seq": seq, "data": v }));
            }
        }
        for q in self.store.quarantine().list(permit, true, usize::MAX)? {
            let Some(p) = q.person.filter(|p| keys.contains(p)) else {
                continue;
            };
            let Some(body) = self.privacy.open(0, &p, q.codec, &q.payload)? else {
                continue;
            };
            items.push(json!({
                "purpose": "operations",
                "why": "rejected event kept for correction and replay",
                "kind": "quarantined",
                "id": q.id,
                "reason": q.reason,
                "data": String::from_utf8_lossy(&body),
            }));
        }
        self.audit_person(permit, iob_govern::Access::Export, person, items.len())?;
        Ok(PersonExport {
            person: person.0,
            exported_at: Timestamp(now.0).to_rfc3339(),
            items,
        })
    }

    /// Re-wraps every data key under a new master key (`new`, or a freshly generated one when
    /// the master key is the generated `secrets/master.key`); events are not rewritten.
    /// Returns the new key's fingerprint and the number of data keys re-wrapped.
    pub fn rotate_master_key(
        &self,
        permit: &Permit,
        new: Option<MasterKey>,
    ) -> Result<(String, usize), EngineError> {
        require_operations(permit, "key rotation")?;
        self.privacy.rotate(new)
    }

    /// Destroys the retention keys of days past their rule's window now (the background job
    /// does it every `privacy.retention_check_secs`); returns how many day keys it destroyed.
    pub fn enforce_retention(&self) -> Result<usize, EngineError> {
        self.privacy
            .retention
            .enforce(&self.privacy.vault, self.clock.now().0)
    }

    /// The master key's fingerprint (never the key).
    pub fn master_key_id(&self) -> String {
        self.privacy.vault.master_id()
    }
}
