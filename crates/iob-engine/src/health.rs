//! The health-data gate: `observe` readings of configured health metrics are stored only for
//! persons who have given health consent (decided by the unify state after applying the durable
//! log); the others are quarantined, sealed, with reason `consent_required`.
//!
//! Must never store a health reading without consent, nor keep a refused one in plaintext.

use iob_collect::Rejection;
use iob_store::{NewRecord, RecordBatch};
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
    /// given health consent (after applying the durable log), each with its position in
    /// `records`. Health readings are never stored without consent, and never kept in
    /// plaintext when refused (the quarantine seals them). Each payload is read at most once.
    pub(crate) fn gate_health(
        &self,
        records: &mut RecordBatch,
    ) -> Result<Vec<(usize, NewRecord)>, EngineError> {
        // The identifiers of each health reading; `None` for every other record.
        let readings: Vec<Option<ReadingIds>> = records
            .records()
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if r.kind != EventKind::Observe {
                    return None;
                }
                let v: ReadingIds = serde_json::from_slice(records.payload(i)).unwrap_or_default();
                v.metric
                    .as_deref()
                    .is_some_and(|m| self.privacy.is_health(m))
                    .then_some(v)
            })
            .collect();
        if readings.iter().all(Option::is_none) {
            return Ok(Vec::new());
        }
        self.unify.catch_up()?;
        let u = self.unify.unifier.lock();
        let purpose = Purpose::health();
        let refused: Vec<bool> = readings
            .into_iter()
            .map(|reading| {
                let Some(v) = reading else {
                    return false;
                };
                let person = [
                    ("user", v.user_id),
                    ("anon", v.anonymous_id),
                    ("device", v.device_id),
                ]
                .into_iter()
                .find_map(|(kind, id)| u.lookup(&format!("{kind}:{}", id?)));
                !person.is_some_and(|p| u.decide(p, &purpose).allowed())
            })
            .collect();
        Ok(records.take_where(|i| refused[i]))
    }
}
