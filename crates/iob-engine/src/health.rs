//! The health-data gate: `observe` readings of configured health metrics are stored only for
//! persons who have given health consent (decided by the unify state after applying the durable
//! log); the others are quarantined, sealed, with reason `consent_required`.
//!
//! Must never store a health reading without consent, nor keep a refused one in plaintext.

use iob_collect::Rejection;
use iob_store::NewRecord;
use iob_types::{EventKind, Purpose};

use crate::{Engine, EngineError};

/// The identifiers and metric of a stored `observe` payload, for the health gate.
#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadingIds {
    metric: Option<String>,
    user_id: Option<String>,
    anonymous_id: Option<String>,
    device_id: Option<String>,
}

/// The rejection of a health reading without health consent.
pub(crate) fn consent_rejection(index: Option<usize>) -> Rejection {
    Rejection {
        code: iob_collect::RejectCode::ConsentRequired,
        field: "metric".into(),
        message: "is a health metric, and the person has not given health consent: the reading is kept sealed in the quarantine (replay it after a `consent` event grants `health`)".into(),
        index,
    }
}

impl Engine {
    /// Takes out of `records` the `observe` readings of health metrics whose person has not
    /// given health consent (after applying the durable log), each with its rejection; `at`
    /// maps a record to its item index in the request. Health readings are never stored
    /// without consent, and never kept in plaintext when refused (the quarantine seals them).
    pub(crate) fn gate_health(
        &self,
        records: &mut Vec<NewRecord>,
    ) -> Result<Vec<(usize, NewRecord)>, EngineError> {
        let health = |r: &NewRecord| {
            r.kind == EventKind::Observe && {
                let v: ReadingIds = serde_json::from_slice(&r.payload).unwrap_or_default();
                v.metric.is_some_and(|m| self.privacy.is_health(&m))
            }
        };
        if !records.iter().any(health) {
            return Ok(Vec::new());
        }
        self.unify.catch_up()?;
        let u = self.unify.unifier.lock();
        let purpose = Purpose::new(Purpose::HEALTH).expect("valid");
        let mut refused = Vec::new();
        let mut kept = Vec::with_capacity(records.len());
        for (i, r) in std::mem::take(records).into_iter().enumerate() {
            if !health(&r) {
                kept.push(r);
                continue;
            }
            let v: ReadingIds = serde_json::from_slice(&r.payload).unwrap_or_default();
            let person = [
                ("user", v.user_id),
                ("anon", v.anonymous_id),
                ("device", v.device_id),
            ]
            .into_iter()
            .find_map(|(kind, id)| u.lookup(&format!("{kind}:{}", id?)));
            let allowed = person.is_some_and(|p| u.decide(p, &purpose).allowed());
            if allowed {
                kept.push(r);
            } else {
                refused.push((i, r));
            }
        }
        *records = kept;
        Ok(refused)
    }
}
