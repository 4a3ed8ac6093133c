//! Purpose-bound reads of stored events and quarantine entries.
//!
//! Every function here takes a [`Permit`]: reading personal data without naming a purpose does
//! not compile. Events come back only from persons who consent to the purpose at the moment of
//! the read, health readings only to `health`, identifiers pseudonymized for every purpose but
//! `operations` (see `minimize.rs`); an erased person's events are gone.

use iob_store::{QuarantineEntry, RecordPos, StoredRecord};
use iob_types::{Event, PersonKey, Timestamp};

use crate::minimize::ConsentFilter;
use crate::{Engine, EngineError, Permit};

/// A stored event with its position in the log.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub pos: RecordPos,
    pub person: PersonKey,
    pub event: Event,
}

impl Engine {
    /// A stored record as the event this read may see: `None` if its person was erased (its
    /// key is destroyed), expired, or withheld from this purpose by consent.
    fn decode(
        &self,
        r: StoredRecord,
        permit: &Permit,
        filter: &mut ConsentFilter<'_>,
    ) -> Result<Option<EventRecord>, EngineError> {
        let Some(payload) = self
            .privacy
            .open(r.pos.seq, &r.person, r.codec, &r.payload)?
        else {
            return Ok(None);
        };
        let seq = r.pos.seq;
        let corrupt = |e: &dyn std::fmt::Display| EngineError::Corrupt {
            seq,
            reason: e.to_string(),
        };
        let event = if permit.purpose().is_operations() {
            Event::from_json(&payload).map_err(|e| corrupt(&e))?
        } else {
            // Read once as JSON: filtered by consent, identifiers replaced, then typed.
            let mut v: serde_json::Value =
                serde_json::from_slice(&payload).map_err(|e| corrupt(&e))?;
            if !filter.allows(&r.person, r.kind, v["metric"].as_str()) {
                return Ok(None);
            }
            self.pseudonymize_event(permit, &mut v);
            Event::from_json(&serde_json::to_vec(&v).map_err(|e| corrupt(&e))?)
                .map_err(|e| corrupt(&e))?
        };
        Ok(Some(EventRecord {
            pos: r.pos,
            person: r.person,
            event,
        }))
    }

    /// Events in log (arrival) order from global sequence `from_seq`.
    pub fn read_log(
        &self,
        permit: &Permit,
        from_seq: u64,
        max: usize,
    ) -> Result<Vec<EventRecord>, EngineError> {
        self.audit_bulk(
            permit,
            crate::Access::LogRead,
            format!("from_seq={from_seq} max={max}"),
        )?;
        let mut filter = ConsentFilter::new(self, permit)?;
        let mut out = Vec::new();
        for r in self.store.read_log(permit, from_seq, max)? {
            out.extend(self.decode(r, permit, &mut filter)?);
        }
        Ok(out)
    }

    /// The last `n` events in arrival order.
    pub fn tail(&self, permit: &Permit, n: usize) -> Result<Vec<EventRecord>, EngineError> {
        let next = self.store.stats().next_seq;
        self.read_log(permit, next.saturating_sub(n as u64), n)
    }

    /// Events whose (corrected) event time is in `[from, to)`, in log order.
    pub fn scan_time(
        &self,
        permit: &Permit,
        from: Timestamp,
        to: Timestamp,
        mut each: impl FnMut(EventRecord) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        self.audit_bulk(
            permit,
            crate::Access::LogScan,
            format!("from={from} to={to}"),
        )?;
        let mut filter = ConsentFilter::new(self, permit)?;
        for r in self.store.scan_time(permit, from, to)? {
            if let Some(e) = self.decode(r?, permit, &mut filter)? {
                each(e)?;
            }
        }
        Ok(())
    }

    /// Visits every stored event in log order, in pages (export).
    pub fn for_each_event(
        &self,
        permit: &Permit,
        mut each: impl FnMut(EventRecord) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        self.audit_bulk(permit, crate::Access::LogExport, "every event".into())?;
        let mut filter = ConsentFilter::new(self, permit)?;
        let mut seq = 0;
        loop {
            let page = self.store.read_log(permit, seq, 4096)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            seq = last.pos.seq + 1;
            for r in page {
                if let Some(e) = self.decode(r, permit, &mut filter)? {
                    each(e)?;
                }
            }
        }
    }

    /// Quarantined events; open ones only unless `include_resolved`.
    pub fn quarantine_list(
        &self,
        permit: &Permit,
        include_resolved: bool,
        limit: usize,
    ) -> Result<Vec<QuarantineEntry>, EngineError> {
        self.audit_bulk(
            permit,
            crate::Access::QuarantineRead,
            format!("limit={limit}"),
        )?;
        let mut entries = self
            .store
            .quarantine()
            .list(permit, include_resolved, limit)?;
        for q in &mut entries {
            if let Some(person) = q.person {
                // Sealed bodies are opened; an erased person's are gone (empty).
                q.payload = match self.privacy.open(0, &person, q.codec, &q.payload)? {
                    Some(body) => body.into_owned(),
                    None => Vec::new(),
                };
                q.codec = iob_store::Codec::Json;
            }
        }
        Ok(entries)
    }
}
