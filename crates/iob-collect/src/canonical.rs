//! [`CanonicalEvents`]: accepted events written straight to their canonical JSON while the
//! request is parsed, for the engine's hot path.
//!
//! Building an owned [`iob_types::Event`] and serializing it again costs a dozen allocations and
//! a second pass over every byte; this writes the bytes [`iob_types::Event::to_json`] would
//! produce directly from the validated [`Parts`], into one buffer per request. Only what the
//! store needs besides the payload (kind, times, `messageId`, routing identifier) is kept.
//!
//! The source (`iobSource`) is usually known before parsing (Basic auth, a trusted
//! connection): [`CanonicalEvents::for_source`] writes it in place, and each event's JSON is
//! complete in the buffer ([`CanonicalEvent::span`]), which the engine hands to the store
//! whole. (JSON Lines imports still copy each payload out: their records are built on two
//! parsing threads and merged.) When only the body says (its `writeKey`), the JSON is stored
//! without it plus a splice point; [`CanonicalEvent::to_json`] inserts it while copying the
//! payload out. This module must never validate: everything in it has passed `segment.rs`.

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
    /// The `iobSource` written in place, if known before parsing.
    source: Option<String>,
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

/// One accepted event: its canonical JSON (without `iobSource`) and what the store needs.
#[derive(Debug, Clone)]
pub struct CanonicalEvent<'s> {
    pub kind: EventKind,
    pub timestamp: Timestamp,
    pub received_at: Timestamp,
    pub message_id: &'s str,
    /// As [`iob_types::Event::routing_id`]: `("user" | "anon" | "device", id)`.
    pub routing_id: Option<(&'static str, &'s str)>,
    /// Where its complete JSON (source included) is in [`CanonicalEvents::into_json`]'s
    /// buffer, when the source was written in place.
    pub span: Option<Range<usize>>,
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
    /// `source` as its `iobSource` (ignored when the source was written in place: `source`
    /// must then be the same).
    pub fn to_json(&self, source: &SourceField) -> Vec<u8> {
        let source: &[u8] = if self.span.is_some() { &[] } else { &source.0 };
        let mut out = Vec::with_capacity(self.head.len() + source.len() + self.tail.len());
        out.extend_from_slice(self.head);
        out.extend_from_slice(source);
        out.extend_from_slice(self.tail);
        out
    }

    /// Length of [`CanonicalEvent::to_json`] without a source (with it, if written in place).
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

    /// [`CanonicalEvents::for_body`] for events whose source is known before parsing: it is
    /// written in place, so [`CanonicalEvents::into_json`] holds every event's complete JSON.
    pub fn for_source(body_bytes: usize, source: &str) -> Self {
        CanonicalEvents {
            source: Some(source.to_string()),
            ..Self::for_body(body_bytes)
        }
    }

    /// The buffer every [`CanonicalEvent::span`] points into.
    pub fn into_json(self) -> Vec<u8> {
        self.json
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
            span: self.source.is_some().then(|| e.json.clone()),
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
        let at = parts.write_canonical(&mut self.json, &mut self.times, self.source.as_deref());
        // With the source written in place there is nothing to splice in: the head is all.
        let source_at = if self.source.is_some() {
            self.json.len()
        } else {
            at
        };
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
        self.parse_batch_with(bytes, rx, |parts| out.push(parts))
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
