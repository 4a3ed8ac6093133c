//! [`CanonicalEvents`]: accepted events written straight to their canonical JSON while the
//! request is parsed, for the engine's hot path.
//!
//! Building an owned [`iob_types::Event`] and serializing it again costs a dozen allocations and
//! a second pass over every byte; this writes the bytes [`iob_types::Event::to_json`] would
//! produce directly from the validated [`Parts`], into one buffer per request. Only what the
//! store needs besides the payload (kind, times, `messageId`, routing identifier) is kept.
//!
//! The source (`iobSource`) is often only known after parsing (a body `writeKey`), so the JSON
//! is stored without it plus a splice point; [`CanonicalEvent::to_json`] inserts it while
//! copying the payload out, which the caller does anyway. This module must never validate:
//! everything in it has passed `segment.rs`.

use std::ops::Range;

use iob_types::{EventKind, TimeCache, Timestamp};

use crate::collector::{Collector, Parsed, ParsedBatch, Received};
use crate::parts::Parts;
use crate::reject::Rejection;
use crate::segment::{Ctx, IdSeed};

/// Accepted events of one or more requests, in canonical form. Reuse it (after
/// [`CanonicalEvents::clear`]) to keep its buffers.
#[derive(Debug, Default)]
pub struct CanonicalEvents {
    json: Vec<u8>,
    text: String,
    entries: Vec<Entry>,
    times: TimeCache,
}

#[derive(Debug, Clone)]
struct Entry {
    kind: EventKind,
    timestamp: Timestamp,
    received_at: Timestamp,
    json: Range<usize>,
    /// Absolute offset in `json` where `,"iobSource":...` belongs.
    source_at: usize,
    message_id: Range<usize>,
    routing: Option<(&'static str, Range<usize>)>,
}

/// Spare capacity left after a payload for encryption at rest to seal it in place.
pub const SEAL_SLACK: usize = 48;

/// One accepted event: its canonical JSON (without `iobSource`) and what the store needs.
#[derive(Debug, Clone, Copy)]
pub struct CanonicalEvent<'s> {
    pub kind: EventKind,
    pub timestamp: Timestamp,
    pub received_at: Timestamp,
    pub message_id: &'s str,
    /// As [`iob_types::Event::routing_id`]: `("user" | "anon" | "device", id)`.
    pub routing_id: Option<(&'static str, &'s str)>,
    head: &'s [u8],
    tail: &'s [u8],
}

/// The `,"iobSource":"..."` fragment, encoded once per request.
#[derive(Debug, Clone, Default)]
pub struct SourceField(Vec<u8>);

impl SourceField {
    pub fn new(source: Option<&str>) -> Self {
        let mut v = Vec::new();
        if let Some(s) = source {
            v.extend_from_slice(b",\"iobSource\":");
            iob_types::write_json_str(&mut v, s);
        }
        SourceField(v)
    }
}

impl CanonicalEvent<'_> {
    /// The canonical JSON, byte for byte [`iob_types::Event::to_json`] of the same event with
    /// `source` as its `iobSource`.
    pub fn to_json(&self, source: &SourceField) -> Vec<u8> {
        // Slack for the seal trailer (tag, nonce, generation) the engine appends in place.
        let mut out =
            Vec::with_capacity(self.head.len() + source.0.len() + self.tail.len() + SEAL_SLACK);
        out.extend_from_slice(self.head);
        out.extend_from_slice(&source.0);
        out.extend_from_slice(self.tail);
        out
    }

    /// Length of [`CanonicalEvent::to_json`] without a source.
    pub fn json_len(&self) -> usize {
        self.head.len() + self.tail.len()
    }
}

impl CanonicalEvents {
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for about `body_bytes` of input without regrowing. Canonical JSON adds the
    /// server-set fields and the enrichment (parsed user agent, sentiment): ~1.5× the input
    /// for analytics.js-style events, so 1.75× leaves room. Regrowing copies everything
    /// written so far (3.5% of one-core ingest when this was 1.25×).
    pub fn for_body(body_bytes: usize) -> Self {
        CanonicalEvents {
            json: Vec::with_capacity(body_bytes + body_bytes * 3 / 4 + 256),
            text: String::with_capacity(body_bytes / 8),
            ..Self::default()
        }
    }

    pub fn clear(&mut self) {
        self.json.clear();
        self.text.clear();
        self.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `i`-th event pushed (the index a `_canonical` parse returned).
    pub fn get(&self, i: usize) -> CanonicalEvent<'_> {
        let e = &self.entries[i];
        CanonicalEvent {
            kind: e.kind,
            timestamp: e.timestamp,
            received_at: e.received_at,
            message_id: &self.text[e.message_id.clone()],
            routing_id: e.routing.as_ref().map(|(k, r)| (*k, &self.text[r.clone()])),
            head: &self.json[e.json.start..e.source_at],
            tail: &self.json[e.source_at..e.json.end],
        }
    }

    fn push_text(&mut self, s: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(s);
        start..self.text.len()
    }

    pub(crate) fn push(&mut self, parts: &Parts<'_>) -> usize {
        let start = self.json.len();
        let source_at = parts.write_canonical(&mut self.json, &mut self.times);
        let message_id = self.push_text(&parts.message_id);
        let routing = parts.routing_id().map(|(k, id)| (k, self.push_text(id)));
        self.entries.push(Entry {
            kind: parts.kind,
            timestamp: parts.timestamp,
            received_at: parts.received_at,
            json: start..self.json.len(),
            source_at,
            message_id,
            routing,
        });
        self.entries.len() - 1
    }
}

impl Collector {
    /// [`Collector::parse_batch`], with accepted events written to `out` in canonical form
    /// (without `iobSource`: see [`CanonicalEvent::to_json`]); each accepted item is its index
    /// in `out`. Validation, rejections and write-key rules are exactly `parse_batch`'s.
    pub fn parse_batch_canonical<'a>(
        &self,
        bytes: &'a [u8],
        rx: &Received,
        out: &mut CanonicalEvents,
    ) -> Result<ParsedBatch<'a, usize>, Rejection> {
        self.parse_batch_with(bytes, rx, |parts| out.push(&parts))
    }

    /// [`Collector::parse_event`], with the accepted event written to `out` in canonical form.
    /// One event object under `ctx` (imports: derived `messageId`s), written to `out`.
    pub(crate) fn parse_one_canonical(
        &self,
        bytes: &[u8],
        ctx: &Ctx,
        rx: &Received,
        out: &mut CanonicalEvents,
    ) -> Result<usize, Rejection> {
        let text = self.event_text(bytes)?;
        let (parts, _write_key) = self.parse_parts(text, ctx, rx, &mut Vec::new())?;
        Ok(out.push(&parts))
    }

    pub fn parse_event_canonical(
        &self,
        bytes: &[u8],
        expected: Option<EventKind>,
        rx: &Received,
        out: &mut CanonicalEvents,
    ) -> Result<Parsed<usize>, Rejection> {
        let ctx = Ctx {
            expected,
            defaults: None,
            seed: IdSeed::Received,
        };
        let text = self.event_text(bytes)?;
        let (parts, key) = self.parse_parts(text, &ctx, rx, &mut Vec::new())?;
        Ok(Parsed {
            event: out.push(&parts),
            write_key: key.map(|k| k.into_owned()),
        })
    }
}

#[cfg(test)]
#[path = "canonical_tests.rs"]
pub(crate) mod tests;
