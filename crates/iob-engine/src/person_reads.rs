//! Reads of one person through the engine: the profile, the journey across channels (paged),
//! and the identity explanation. Each applies the durable log first (an acknowledged event is
//! always visible), asks the unify state under the caller's permit (consent is decided there),
//! opens the stored payloads (an erased or expired event is skipped), hides health readings
//! from non-health purposes and identifiers from every purpose but `operations`, and records
//! its audit entry before it returns.

use iob_govern::Permit;
use iob_store::StoredRecord;
use iob_types::Timestamp;
use iob_unify::{Explanation, PersonId, ProfileView, ReadRefused};
use serde::Serialize;

use crate::{Engine, EngineError};

/// One page of a person's journey.
#[derive(Debug, Clone, Serialize)]
pub struct JourneyPage {
    pub person: PersonId,
    pub events: Vec<serde_json::Value>,
    /// Pass as `before` for the next (older) page; `None` at the start of the journey.
    pub next: Option<String>,
}

/// An identity explanation with the linking events' own description.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityReport {
    #[serde(flatten)]
    pub explanation: Explanation,
    /// For each log sequence number named above: type, event name, source, event time.
    pub events: Vec<serde_json::Value>,
}

/// A person's consent: the decision per purpose now, and every choice recorded.
#[derive(Debug, Clone, Serialize)]
pub struct ConsentReport {
    pub person: PersonId,
    /// Per configured purpose: `allowed`, and why (`granted`, `withdrawn`, `default`).
    pub purposes: std::collections::BTreeMap<String, serde_json::Value>,
    pub history: Vec<iob_unify::ConsentChoice>,
}

impl Engine {
    /// The consent state of the person behind `id`: what each purpose may do now and the
    /// history it follows from. Readable under any configured purpose (it is what every other
    /// read is judged by, and what a consent banner shows back); audited like every read.
    pub fn consent_state(
        &self,
        permit: &Permit,
        id: &str,
    ) -> Result<Option<ConsentReport>, EngineError> {
        let Some(p) = self.person(id)? else {
            return Ok(None);
        };
        let report = {
            let u = self.unify().unifier.lock();
            let Some(person) = u.graph().current(p) else {
                return Ok(None);
            };
            if u.profile(person).is_none() {
                return Ok(None);
            }
            let purposes = u
                .consent_rules()
                .policy
                .purposes()
                .map(|(purpose, default)| {
                    let (allowed, basis) = match u.decide(person, purpose) {
                        iob_govern::Decision::Allowed(b) => (true, Some(b)),
                        iob_govern::Decision::Denied(b) => (false, Some(b)),
                        iob_govern::Decision::Exempt => (true, None),
                    };
                    let since = u
                        .consents(person)
                        .and_then(|h| h.latest(purpose.as_str()))
                        .map(|c| Timestamp(c.at).to_rfc3339());
                    (
                        purpose.to_string(),
                        serde_json::json!({"allowed": allowed, "basis": basis, "default": default, "since": since}),
                    )
                })
                .collect();
            ConsentReport {
                person,
                purposes,
                history: u
                    .consents(person)
                    .map(|h| h.choices().to_vec())
                    .unwrap_or_default(),
            }
        };
        self.audit_person(
            permit,
            iob_govern::Access::ConsentRead,
            report.person,
            report.history.len(),
        )?;
        Ok(Some(report))
    }

    /// The person behind `id` (see [`Unifier::lookup`]), after applying the durable log.
    fn person(&self, id: &str) -> Result<Option<PersonId>, EngineError> {
        self.unify().catch_up()?;
        Ok(self.unify().unifier.lock().lookup(id))
    }

    /// The profile of the person behind any of their identifiers, with rolling windows,
    /// recency and decayed affinities evaluated at `at` (default: now; history imported from
    /// years ago reads best "as of" its own time).
    pub fn profile(
        &self,
        permit: &Permit,
        id: &str,
        at: Option<Timestamp>,
    ) -> Result<Option<ProfileView>, EngineError> {
        let Some(p) = self.person(id)? else {
            return Ok(None);
        };
        let now = at.unwrap_or_else(|| self.clock.now()).0;
        let mut view = refused(self.unify().unifier.lock().view(permit, p, now))?;
        if let Some(v) = &mut view
            && !permit.purpose().is_health()
        {
            // Health readings are shown only to reads for the health purpose.
            v.metrics.retain(|m, _| !self.privacy.is_health(m));
        }
        if let Some(v) = &mut view {
            self.pseudonymize_traits(permit, &mut v.traits);
        }
        if let (Some(at), Some(v)) = (at, &view)
            && at.0 < v.last_seen
        {
            // Profiles are kept current, not versioned: an earlier "as of" would silently mix
            // later events into it.
            return Err(EngineError::Invalid {
                field: "at".into(),
                reason: format!(
                    "is before this person's latest event ({}); a profile holds everything up to now, so evaluate it at or after that time",
                    Timestamp(v.last_seen).to_rfc3339()
                ),
            });
        }
        self.audit_person(permit, iob_govern::Access::ProfileRead, p, 1)?;
        Ok(view)
    }

    /// The person's journey across channels, newest first, `limit` events per page.
    pub fn journey(
        &self,
        permit: &Permit,
        id: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Option<JourneyPage>, EngineError> {
        let before = match before {
            None => None,
            Some(c) => Some(parse_cursor(c).ok_or_else(|| EngineError::Invalid {
                field: "before".into(),
                reason: format!(
                    "`{c}` is not a journey cursor (pass the `next` of the previous page)"
                ),
            })?),
        };
        let Some(person) = self.person(id)? else {
            return Ok(None);
        };
        let limit = limit.clamp(1, 1000);
        let Some(entries) = refused(self.unify().unifier.lock().journey(
            permit,
            person,
            before,
            limit + 1,
        ))?
        else {
            return Ok(None);
        };
        let more = entries.len() > limit;
        let mut events = Vec::with_capacity(limit);
        for &(_, seq) in entries.iter().take(limit) {
            for r in self.store.read_log(permit, seq, 1)? {
                let Some(mut v) = self.open_json(&r)? else {
                    continue;
                };
                // Health readings are part of the journey only for the health purpose.
                if permit.purpose().is_health() || !self.privacy.is_health_json(&v) {
                    self.pseudonymize_event(permit, &mut v);
                    events.push(v);
                }
            }
        }
        let next = more
            .then(|| entries.get(limit - 1))
            .flatten()
            .map(|(at, seq)| format!("{at}.{seq}"));
        self.audit_person(
            permit,
            iob_govern::Access::TimelineRead,
            person,
            events.len(),
        )?;
        Ok(Some(JourneyPage {
            person,
            events,
            next,
        }))
    }

    /// Why the person behind `id` is who they are: identifiers with the events that linked them,
    /// merges, refusals.
    pub fn explain_identity(
        &self,
        permit: &Permit,
        id: &str,
    ) -> Result<Option<IdentityReport>, EngineError> {
        let Some(p) = self.person(id)? else {
            return Ok(None);
        };
        let Some(explanation) = refused(self.unify().unifier.lock().explain(permit, p))? else {
            return Ok(None);
        };
        let mut seqs: Vec<u64> = explanation
            .identifiers
            .iter()
            .map(|i| i.linked_by.seq)
            .chain(explanation.merges.iter().map(|m| m.by.seq))
            .chain(explanation.refusals.iter().map(|r| r.by.seq))
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        let mut events = Vec::new();
        for seq in seqs {
            for r in self.store.read_log(permit, seq, 1)? {
                let v = self.open_json(&r)?.unwrap_or(serde_json::Value::Null);
                let at = Timestamp(r.event_time.0).to_rfc3339();
                events.push(serde_json::json!({
                    "seq": seq, "type": v["type"], "event": v["event"], "messageId": v["messageId"],
                    "source": v["iobSource"], "timestamp": at,
                }));
            }
        }
        self.audit_person(permit, iob_govern::Access::IdentityRead, p, events.len())?;
        Ok(Some(IdentityReport {
            explanation,
            events,
        }))
    }
}

/// A unify read refusal as the engine's error (`Ok(None)`: no such person).
fn refused<T>(r: Result<T, ReadRefused>) -> Result<Option<T>, EngineError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(ReadRefused::UnknownPerson) => Ok(None),
        Err(ReadRefused::Consent { purpose, basis }) => Err(EngineError::ConsentRequired {
            purpose: purpose.to_string(),
            basis: format!("{basis:?}").to_lowercase(),
        }),
    }
}

impl Engine {
    /// A stored record's payload as JSON; `None` if its person was erased.
    pub(crate) fn open_json(
        &self,
        r: &StoredRecord,
    ) -> Result<Option<serde_json::Value>, EngineError> {
        let Some(payload) = self
            .privacy
            .open(r.pos.seq, &r.person, r.codec, &r.payload)?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&payload)
            .map(Some)
            .map_err(|e| EngineError::Corrupt {
                seq: r.pos.seq,
                reason: e.to_string(),
            })
    }
}

fn parse_cursor(c: &str) -> Option<(i64, u64)> {
    let (at, seq) = c.split_once('.')?;
    Some((at.parse().ok()?, seq.parse().ok()?))
}
