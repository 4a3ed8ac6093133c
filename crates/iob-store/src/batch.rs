//! [`RecordBatch`]: the records of one append, with their payloads either owned one by one or
//! laid out in one shared buffer.
//!
//! The collector writes a request's accepted events into one buffer as it parses them; handing
//! that buffer over whole (records then point into it) spares a copy, an allocation and a
//! cross-thread free per record on the ingest path. The committer copies each payload once,
//! into its group buffer, where the [`crate::Sealer`] seals it in place.
//!
//! A span is only meaningful within its own batch: records never leave a batch with one.

use std::ops::Range;

use crate::NewRecord;

/// Where a batched record's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Its own buffer.
    Owned(Vec<u8>),
    /// `start..end` of the batch's shared buffer ([`RecordBatch::new`]).
    Shared(Range<usize>),
}

/// The records of one append, in order; outcomes are reported in the same order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordBatch {
    records: Vec<NewRecord<Payload>>,
    shared: Vec<u8>,
}

impl RecordBatch {
    /// A batch of `records` whose [`Payload::Shared`] spans point into `shared`.
    ///
    /// # Panics
    /// If a span is not within `shared` (a caller bug: the batch would be unreadable).
    pub fn new(shared: Vec<u8>, records: Vec<NewRecord<Payload>>) -> Self {
        for r in &records {
            if let Payload::Shared(span) = &r.payload {
                assert!(
                    span.start <= span.end && span.end <= shared.len(),
                    "payload span {span:?} outside the batch's {} shared bytes",
                    shared.len()
                );
            }
        }
        RecordBatch { records, shared }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records, in order (their payloads through [`RecordBatch::payload`]).
    pub fn records(&self) -> &[NewRecord<Payload>] {
        &self.records
    }

    /// The payload bytes of record `i`.
    pub fn payload(&self, i: usize) -> &[u8] {
        match &self.records[i].payload {
            Payload::Owned(v) => v,
            Payload::Shared(r) => &self.shared[r.clone()],
        }
    }

    /// Replaces record `i`'s payload with `bytes` (its codec is unchanged).
    pub fn set_payload(&mut self, i: usize, bytes: Vec<u8>) {
        self.records[i].payload = Payload::Owned(bytes);
    }

    /// The records with their payloads as owned bytes.
    pub fn into_owned(mut self) -> Vec<NewRecord> {
        self.take_where(|_| true)
            .into_iter()
            .map(|(_, r)| r)
            .collect()
    }

    /// Takes out the records for which `out` says so, in order, each with its former index and
    /// its payload as owned bytes; the others keep their order.
    pub fn take_where(&mut self, mut out: impl FnMut(usize) -> bool) -> Vec<(usize, NewRecord)> {
        let mut taken = Vec::new();
        let mut kept = Vec::with_capacity(self.records.len());
        for (i, r) in std::mem::take(&mut self.records).into_iter().enumerate() {
            if !out(i) {
                kept.push(r);
                continue;
            }
            let shared = &self.shared;
            taken.push((
                i,
                r.map_payload(|p| match p {
                    Payload::Owned(v) => v,
                    Payload::Shared(s) => shared[s].to_vec(),
                }),
            ));
        }
        self.records = kept;
        taken
    }
}

impl From<Vec<NewRecord>> for RecordBatch {
    fn from(records: Vec<NewRecord>) -> Self {
        let records = records
            .into_iter()
            .map(|r| r.map_payload(Payload::Owned))
            .collect();
        RecordBatch::new(Vec::new(), records)
    }
}

impl<P> NewRecord<P> {
    /// The same record with another payload.
    pub fn with_payload<Q>(self, payload: Q) -> NewRecord<Q> {
        self.map_payload(|_| payload)
    }

    /// The same record with its payload turned into another.
    pub fn map_payload<Q>(self, f: impl FnOnce(P) -> Q) -> NewRecord<Q> {
        NewRecord {
            person: self.person,
            kind: self.kind,
            event_time: self.event_time,
            received_at: self.received_at,
            dedup_key: self.dedup_key,
            codec: self.codec,
            payload: f(self.payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Codec;
    use iob_types::{EventKind, PersonKey, Timestamp};

    fn rec(n: u8) -> NewRecord<()> {
        NewRecord {
            person: PersonKey([n; 16]),
            kind: EventKind::Track,
            event_time: Timestamp(n as i64),
            received_at: Timestamp(0),
            dedup_key: None,
            codec: Codec::Json,
            payload: (),
        }
    }

    #[test]
    fn shared_and_owned_payloads_read_back_and_are_taken_out_in_order() {
        let mut b = RecordBatch::new(
            b"aaabbbcc".to_vec(),
            vec![
                rec(0).with_payload(Payload::Shared(0..3)),
                rec(1).with_payload(Payload::Owned(b"own".to_vec())),
                rec(2).with_payload(Payload::Shared(3..6)),
                rec(3).with_payload(Payload::Shared(6..8)),
            ],
        );
        assert_eq!(b.payload(0), b"aaa");
        assert_eq!(b.payload(1), b"own");
        assert_eq!(b.payload(2), b"bbb");
        b.set_payload(3, b"new".to_vec());
        assert_eq!(b.payload(3), b"new");
        let taken = b.take_where(|i| i == 1 || i == 2);
        assert_eq!(taken.len(), 2);
        assert_eq!(
            (taken[0].0, taken[0].1.payload.as_slice()),
            (1, &b"own"[..])
        );
        assert_eq!(
            (taken[1].0, taken[1].1.payload.as_slice()),
            (2, &b"bbb"[..])
        );
        assert_eq!(b.len(), 2);
        assert_eq!((b.payload(0), b.payload(1)), (&b"aaa"[..], &b"new"[..]));
        let owned = b.into_owned();
        assert_eq!(owned[0].payload, b"aaa");
        assert_eq!(
            (owned[1].payload.as_slice(), owned[1].person),
            (&b"new"[..], PersonKey([3; 16]))
        );
    }

    #[test]
    #[should_panic(expected = "outside the batch")]
    fn a_span_past_the_shared_buffer_is_refused() {
        RecordBatch::new(
            b"ab".to_vec(),
            vec![rec(0).with_payload(Payload::Shared(1..3))],
        );
    }
}
