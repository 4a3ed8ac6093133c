//! Data derived from the event log outside the engine: the columnar analytics store, the
//! recommendation models. They live in their own crates (which depend on this one), so the
//! engine knows them only through this module:
//!
//! * [`DerivedData`]: what every derived store must do when a person is erased. The engine
//!   calls each registered store from [`Engine::erase_person`] before it answers, so an erasure
//!   reaches compacted files and model state, not only the log.
//! * [`Engine::derived_page`]: the records a derived store is built from, in log order, with
//!   identifiers already pseudonymized, health readings marked, and the person each record
//!   belongs to at this moment. Consent is *not* applied here: derived stores keep every
//!   person and apply consent at read time through a [`PersonDirectory`], so a withdrawal
//!   takes effect on the next query without rebuilding anything.
//! * [`Engine::person_directory`]: for one purpose, the live person every person id ever
//!   handed out now is, or nothing when that person was erased or does not consent.
//!
//! This module must never hand out raw identifiers (payloads are pseudonymized for a
//! non-operations purpose) nor health readings without marking them.

use std::sync::Arc;

use iob_govern::Permit;
use iob_types::{EventKind, PersonKey, Purpose, Timestamp};
use iob_unify::PersonId;
use serde_json::Value;

use crate::{Engine, EngineError};

/// A store derived from events that must forget erased persons.
pub trait DerivedData: Send + Sync {
    /// Short name for reports and logs (`analytics`, `recommendations`).
    fn name(&self) -> &'static str;
    /// Removes everything held about `person`, durably, before returning; returns how many
    /// items (rows, interactions) went.
    fn erase(&self, person: &ErasedPerson) -> Result<u64, EngineError>;
}

/// An erased person as derived stores knew them.
#[derive(Debug, Clone)]
pub struct ErasedPerson {
    /// The live person id at the time of erasure. Ids merged into it earlier resolve to no
    /// one from now on ([`PersonDirectory::current`] gives `None` for all of them).
    pub person: PersonId,
    /// The routing keys their events were stored under.
    pub keys: Vec<PersonKey>,
    /// Log positions of their events.
    pub seqs: Vec<u64>,
    /// Event times of those events (millisecond Unix time), to find the partitions holding them.
    pub times: Vec<i64>,
    /// The erasure epoch after this erasure ([`Engine::erasure_epoch`]): a derived store that
    /// records it knows, at its next open, whether it missed an erasure.
    pub epoch: u64,
}

/// One stored event as a derived store sees it.
#[derive(Debug, Clone)]
pub struct DerivedRecord {
    pub seq: u64,
    /// Corrected event time.
    pub at: Timestamp,
    pub received_at: Timestamp,
    pub kind: EventKind,
    /// The routing key the record is stored under.
    pub key: PersonKey,
    /// The person the record belongs to now (`None`: not resolved, e.g. no identifier).
    pub person: Option<PersonId>,
    /// A reading of a configured health metric: only the `health` purpose may see it.
    pub health: bool,
    /// The event with identifiers replaced by their pseudonyms.
    pub event: Value,
}

/// One stored event as sealed: the canonical JSON with its identifiers *raw*. Only for
/// stores that copy out non-identifying fields (the columnar store: its schema has no
/// identifier column); a store that keeps identifiers must use [`Engine::derived_page`].
#[derive(Debug, Clone)]
pub struct DerivedPayload {
    pub seq: u64,
    pub at: Timestamp,
    pub received_at: Timestamp,
    pub kind: EventKind,
    pub key: PersonKey,
    pub person: Option<PersonId>,
    pub health: bool,
    pub payload: Vec<u8>,
}

/// A page of [`DerivedPayload`]s and where the next page starts.
#[derive(Debug, Default)]
pub struct PayloadPage {
    pub records: Vec<DerivedPayload>,
    pub next_seq: u64,
    pub unreadable: u64,
}

/// A page of [`DerivedRecord`]s and where the next page starts.
#[derive(Debug, Default)]
pub struct DerivedPage {
    pub records: Vec<DerivedRecord>,
    /// Sequence number to ask for next; equal to `from_seq` when the log has nothing newer.
    pub next_seq: u64,
    /// Records skipped because their person was erased or their retention day expired.
    pub unreadable: u64,
}

/// Who every person id is for one purpose, at one moment.
#[derive(Debug, Clone)]
pub struct PersonDirectory {
    purpose: Purpose,
    /// Index: a person id ever handed out; value: the live person it now is, `NONE` if erased
    /// or (for a consent-based purpose) not consenting now.
    current: Vec<u32>,
    /// What a record without a resolved person gets: the purpose's default.
    unresolved_allowed: bool,
}

impl PersonDirectory {
    const NONE: u32 = u32::MAX;

    pub fn purpose(&self) -> &Purpose {
        &self.purpose
    }

    /// The live person `p` is now, if the purpose may read them.
    #[inline]
    pub fn current(&self, p: u64) -> Option<u64> {
        match self.current.get(p as usize) {
            Some(&c) if c != Self::NONE => Some(c as u64),
            _ => None,
        }
    }

    /// Whether events with no resolved person are visible to the purpose (its default).
    pub fn unresolved_allowed(&self) -> bool {
        self.unresolved_allowed
    }

    /// Number of person ids (live or not) the directory covers.
    pub fn len(&self) -> usize {
        self.current.len()
    }

    pub fn is_empty(&self) -> bool {
        self.current.is_empty()
    }

    /// Live persons visible to the purpose.
    pub fn visible(&self) -> impl Iterator<Item = u64> + '_ {
        self.current
            .iter()
            .enumerate()
            .filter(|(i, c)| **c as usize == *i)
            .map(|(i, _)| i as u64)
    }

    /// The raw mapping (index: person id ever assigned; `u32::MAX`: hidden), for kernels that
    /// remap a column at once.
    pub fn as_slice(&self) -> &[u32] {
        &self.current
    }

    /// A directory from explicit parts (tests and tools in other crates).
    pub fn from_parts(purpose: Purpose, current: Vec<Option<u32>>, unresolved: bool) -> Self {
        PersonDirectory {
            purpose,
            current: current
                .into_iter()
                .map(|c| c.unwrap_or(Self::NONE))
                .collect(),
            unresolved_allowed: unresolved,
        }
    }
}

impl Engine {
    /// A counter raised by every erasure (durable, in the key vault). A derived store that
    /// was not open during an erasure sees a higher epoch than the one it recorded, and must
    /// remove every row whose person no longer resolves (see [`PersonDirectory`]).
    pub fn erasure_epoch(&self) -> u64 {
        self.privacy.vault.epoch()
    }

    /// Registers a derived store; [`Engine::erase_person`] erases the person from it too.
    pub fn register_derived(&self, store: Arc<dyn DerivedData>) {
        self.derived.write().push(store);
    }

    /// Erases a person from every registered derived store; returns `(name, items)` each.
    pub(crate) fn erase_derived(
        &self,
        person: &ErasedPerson,
    ) -> Result<Vec<(String, u64)>, EngineError> {
        let stores: Vec<Arc<dyn DerivedData>> = self.derived.read().clone();
        let mut out = Vec::with_capacity(stores.len());
        for s in stores {
            out.push((s.name().to_string(), s.erase(person)?));
        }
        Ok(out)
    }

    /// Up to `max` records from log position `from_seq`, for derived stores (see the module
    /// docs: pseudonymized, health marked, person resolved, consent not applied).
    pub fn derived_page(&self, from_seq: u64, max: usize) -> Result<DerivedPage, EngineError> {
        let raw = self.derived_payloads(from_seq, max)?;
        let mut page = DerivedPage {
            records: Vec::with_capacity(raw.records.len()),
            next_seq: raw.next_seq,
            unreadable: raw.unreadable,
        };
        for r in raw.records {
            let mut event: Value =
                serde_json::from_slice(&r.payload).map_err(|e| EngineError::Corrupt {
                    seq: r.seq,
                    reason: e.to_string(),
                })?;
            self.pseudonymize_json(&mut event);
            page.records.push(DerivedRecord {
                seq: r.seq,
                at: r.at,
                received_at: r.received_at,
                kind: r.kind,
                key: r.key,
                person: r.person,
                health: r.health,
                event,
            });
        }
        Ok(page)
    }

    /// Like [`Engine::derived_page`] but the payloads are the stored JSON bytes, identifiers
    /// raw and not parsed (see [`DerivedPayload`] for who may use this).
    pub fn derived_payloads(&self, from_seq: u64, max: usize) -> Result<PayloadPage, EngineError> {
        // Persons must be resolved for everything in the page.
        self.unify.catch_up()?;
        let permit = self.governor.system("derive");
        let records = self.store.read_log(&permit, from_seq, max)?;
        let mut page = PayloadPage {
            records: Vec::with_capacity(records.len()),
            next_seq: records.last().map_or(from_seq, |r| r.pos.seq + 1),
            unreadable: 0,
        };
        for r in records {
            let Some(payload) = self
                .privacy
                .open(r.pos.seq, &r.person, r.codec, &r.payload)?
            else {
                page.unreadable += 1;
                continue;
            };
            let health = r.kind == EventKind::Observe && {
                #[derive(serde::Deserialize)]
                struct Reading<'a> {
                    #[serde(borrow)]
                    metric: Option<std::borrow::Cow<'a, str>>,
                }
                let m: Reading<'_> =
                    serde_json::from_slice(&payload).map_err(|e| EngineError::Corrupt {
                        seq: r.pos.seq,
                        reason: e.to_string(),
                    })?;
                self.privacy.is_health_reading(r.kind, m.metric.as_deref())
            };
            page.records.push(DerivedPayload {
                seq: r.pos.seq,
                at: r.event_time,
                received_at: r.received_at,
                kind: r.kind,
                key: r.person,
                person: None,
                health,
                payload: payload.into_owned(),
            });
        }
        let u = self.unify.unifier.lock();
        for r in &mut page.records {
            r.person = u.graph().person_of(&r.key);
        }
        Ok(page)
    }

    /// For `permit`'s purpose, the live person behind every person id, as of the durable log
    /// now (a withdrawal acknowledged before this call is in force).
    pub fn person_directory(&self, permit: &Permit) -> Result<PersonDirectory, EngineError> {
        self.unify.catch_up()?;
        let u = self.unify.unifier.lock();
        let purpose = permit.purpose().clone();
        let current = u.directory(&purpose);
        let unresolved_allowed =
            purpose.is_operations() || u.consent_rules().policy.decide(&purpose, None).allowed();
        Ok(PersonDirectory {
            purpose,
            current,
            unresolved_allowed,
        })
    }
}

/// One person's consent to one purpose, as the `consents` table shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConsentRow {
    pub person: u64,
    pub purpose: String,
    pub allowed: bool,
    /// `granted`, `withdrawn`, `default`, `exempt`, ...
    pub basis: String,
    /// When the person last said something about this purpose (milliseconds), if ever.
    pub since: Option<i64>,
}

impl Engine {
    /// The profiles of every person `permit`'s purpose may read now, evaluated at `at`
    /// (default now): the `persons` table. Health metrics only for `health`, identifier
    /// traits pseudonymized; one audit record for the whole read.
    pub fn profiles_for(
        &self,
        permit: &Permit,
        at: Option<Timestamp>,
    ) -> Result<Vec<iob_unify::ProfileView>, EngineError> {
        let directory = self.person_directory(permit)?;
        self.audit_bulk(
            permit,
            iob_govern::Access::QueryRows,
            "persons table".into(),
        )?;
        let now = at.unwrap_or_else(|| self.clock.now()).0;
        let mut out = Vec::new();
        let u = self.unify.unifier.lock();
        for p in directory.visible() {
            let Ok(mut v) = u.view(permit, PersonId(p), now) else {
                continue;
            };
            if !permit.purpose().is_health() {
                v.metrics.retain(|m, _| !self.privacy.is_health(m));
            }
            out.push(v);
        }
        drop(u);
        for v in &mut out {
            self.pseudonymize_traits(permit, &mut v.traits);
        }
        Ok(out)
    }

    /// Every visible person's consent to every configured purpose: the `consents` table.
    pub fn consent_rows(&self, permit: &Permit) -> Result<Vec<ConsentRow>, EngineError> {
        let directory = self.person_directory(permit)?;
        self.audit_bulk(
            permit,
            iob_govern::Access::QueryRows,
            "consents table".into(),
        )?;
        let u = self.unify.unifier.lock();
        let purposes: Vec<Purpose> = u
            .consent_rules()
            .policy
            .purposes()
            .map(|(p, _)| p.clone())
            .collect();
        let mut out = Vec::new();
        for p in directory.visible() {
            let person = PersonId(p);
            for purpose in &purposes {
                let name = |b: iob_govern::Basis| {
                    serde_json::to_value(b)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                };
                let (allowed, basis) = match u.decide(person, purpose) {
                    iob_govern::Decision::Allowed(b) => (true, name(b)),
                    iob_govern::Decision::Denied(b) => (false, name(b)),
                    iob_govern::Decision::Exempt => (true, "exempt".into()),
                };
                out.push(ConsentRow {
                    person: p,
                    purpose: purpose.to_string(),
                    allowed,
                    basis,
                    since: u
                        .consents(person)
                        .and_then(|h| h.latest(purpose.as_str()))
                        .map(|c| c.at),
                });
            }
        }
        Ok(out)
    }
}

impl Engine {
    /// Records a query (SQL or an analysis) over many persons' data in the audit log before
    /// it runs. The text is kept as its SHA-256 (it may hold literal values), with its kind.
    pub fn audit_query(&self, permit: &Permit, kind: &str, text: &str) -> Result<(), EngineError> {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(text.as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        self.audit_bulk(
            permit,
            iob_govern::Access::QueryRows,
            format!("{kind} sha256:{hex}"),
        )
    }
}
