//! Purpose-bound reads of stored events and quarantine entries.
//!
//! Every function here takes a [`Permit`]: reading personal data without naming a purpose does
//! not compile. Consent filtering at the moment of the read attaches here (issue: govern).

use iob_store::{QuarantineEntry, RecordPos, StoredRecord};
use iob_types::{Event, PersonKey, Timestamp};

use crate::{Engine, EngineError, Permit};

/// A stored event with its position in the log.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub pos: RecordPos,
    pub person: PersonKey,
    pub event: Event,
}

impl Engine {
    /// A stored record as an event; `None` if its person was erased (its key is destroyed).
    fn decode(&self, r: StoredRecord) -> Result<Option<EventRecord>, EngineError> {
        let Some(payload) = self
            .privacy
            .open(r.pos.seq, &r.person, r.codec, &r.payload)?
        else {
            return Ok(None);
        };
        let event = Event::from_json(&payload).map_err(|e| EngineError::Corrupt {
            seq: r.pos.seq,
            reason: e.to_string(),
        })?;
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
        let mut out = Vec::new();
        for r in self.store.read_log(permit, from_seq, max)? {
            out.extend(self.decode(r)?);
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
        for r in self.store.scan_time(permit, from, to)? {
            if let Some(e) = self.decode(r?)? {
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
        let mut seq = 0;
        loop {
            let page = self.store.read_log(permit, seq, 4096)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            seq = last.pos.seq + 1;
            for r in page {
                if let Some(e) = self.decode(r)? {
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
