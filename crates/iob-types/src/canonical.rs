//! The canonical JSON writer: byte for byte what `serde_json` makes of [`Event`]'s `Serialize`
//! impl, written by hand because it is the hottest step of ingestion after parsing (every
//! stored record's payload goes through it).
//!
//! [`EventRef`] is a borrowed view of an event, so the collector can write the canonical bytes
//! straight from the request body without first building an owned [`Event`]; [`Event::to_json`]
//! writes through the same view. Rare pieces (strings that need escaping, a reading's `f64`,
//! consent purposes) are delegated to `serde_json` itself, so they cannot drift from it. The
//! equality with the serde output is property-tested in `canonical_tests.rs`.

use crate::{ConsentChange, Enrichment, Event, EventKind, Timestamp, UserAgent};

/// A borrowed event, field for field the canonical JSON of [`Event`]. Nested values
/// (`properties`, `traits`, `context`, `integrations`, `tags`) and `extra` values are raw JSON
/// text, written verbatim.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    pub kind: EventKind,
    pub message_id: &'a str,
    pub source: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub anonymous_id: Option<&'a str>,
    pub previous_id: Option<&'a str>,
    pub group_id: Option<&'a str>,
    pub event: Option<&'a str>,
    pub name: Option<&'a str>,
    pub category: Option<&'a str>,
    pub timestamp: Timestamp,
    pub original_timestamp: Option<Timestamp>,
    pub sent_at: Option<Timestamp>,
    pub received_at: Timestamp,
    pub properties: Option<&'a str>,
    pub traits: Option<&'a str>,
    pub context: Option<&'a str>,
    pub integrations: Option<&'a str>,
    pub reading: Option<ReadingRef<'a>>,
    pub consent: Option<&'a ConsentChange>,
    pub enrichment: Option<EnrichmentRef<'a>>,
}

/// A borrowed [`Enrichment`]: the collector shares one parsed [`UserAgent`] between all the
/// events that carry the same user-agent string.
#[derive(Debug, Clone, Copy)]
pub struct EnrichmentRef<'a> {
    pub user_agent: Option<&'a UserAgent>,
    pub sentiment: &'a [(String, f64)],
}

impl<'a> EnrichmentRef<'a> {
    pub fn of(e: &'a Enrichment) -> Self {
        EnrichmentRef {
            user_agent: e.user_agent.as_ref(),
            sentiment: &e.sentiment,
        }
    }

    /// Appends the JSON object, as `serde_json` writes [`Enrichment`].
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        if let Some(ua) = self.user_agent {
            out.extend_from_slice(b"\"userAgent\":{");
            let mut sep = "";
            let mut field = |out: &mut Vec<u8>, key: &str, v: Option<&str>| {
                if let Some(v) = v {
                    out.extend_from_slice(sep.as_bytes());
                    out.extend_from_slice(key.as_bytes());
                    write_str(out, v);
                    sep = ",";
                }
            };
            field(out, "\"browser\":", ua.browser.as_deref());
            field(out, "\"browserVersion\":", ua.browser_version.as_deref());
            field(out, "\"os\":", ua.os.as_deref());
            field(out, "\"osVersion\":", ua.os_version.as_deref());
            field(out, "\"device\":", Some(ua.device.as_str()));
            out.push(b'}');
        }
        if !self.sentiment.is_empty() {
            if self.user_agent.is_some() {
                out.push(b',');
            }
            out.extend_from_slice(b"\"sentiment\":{");
            for (i, (k, v)) in self.sentiment.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                serde_json::to_writer(&mut *out, v).expect("an f64 always serializes");
            }
            out.push(b'}');
        }
        out.push(b'}');
    }
}

/// A borrowed [`crate::Reading`].
#[derive(Debug, Clone, Copy)]
pub struct ReadingRef<'a> {
    pub device_id: &'a str,
    pub metric: &'a str,
    pub value: f64,
    pub unit: Option<&'a str>,
    pub tags: Option<&'a str>,
}

impl<'a> EventRef<'a> {
    /// The view of an owned event.
    pub fn of(e: &'a Event) -> Self {
        EventRef {
            kind: e.kind,
            message_id: &e.message_id,
            source: e.source.as_deref(),
            user_id: e.user_id.as_deref(),
            anonymous_id: e.anonymous_id.as_deref(),
            previous_id: e.previous_id.as_deref(),
            group_id: e.group_id.as_deref(),
            event: e.event.as_deref(),
            name: e.name.as_deref(),
            category: e.category.as_deref(),
            timestamp: e.timestamp,
            original_timestamp: e.original_timestamp,
            sent_at: e.sent_at,
            received_at: e.received_at,
            properties: e.properties.as_deref().map(|r| r.get()),
            traits: e.traits.as_deref().map(|r| r.get()),
            context: e.context.as_deref().map(|r| r.get()),
            integrations: e.integrations.as_deref().map(|r| r.get()),
            reading: e.reading.as_ref().map(|r| ReadingRef {
                device_id: &r.device_id,
                metric: &r.metric,
                value: r.value,
                unit: r.unit.as_deref(),
                tags: r.tags.as_deref().map(|t| t.get()),
            }),
            consent: e.consent.as_ref(),
            enrichment: e.enrichment.as_ref().map(EnrichmentRef::of),
        }
    }

    /// Appends the canonical JSON to `out`; `extra` are the unknown top-level fields as
    /// `(name, raw JSON value)`, in order. Returns the offset in `out` right after the
    /// `messageId` value: where `,"iobSource":...` is (or would be spliced in when `source` is
    /// `None` and only known later).
    pub fn write_json<'x>(
        &self,
        out: &mut Vec<u8>,
        extra: impl IntoIterator<Item = (&'x str, &'x str)>,
    ) -> usize {
        self.write_json_cached(out, extra, &mut TimeCache::default())
    }

    /// [`EventRef::write_json`] reusing formatted timestamps from `cache`: the events of one
    /// request share `receivedAt`, usually `sentAt`, and often their times.
    pub fn write_json_cached<'x>(
        &self,
        out: &mut Vec<u8>,
        extra: impl IntoIterator<Item = (&'x str, &'x str)>,
        cache: &mut TimeCache,
    ) -> usize {
        out.push(b'{');
        out.extend_from_slice(b"\"type\":\"");
        out.extend_from_slice(self.kind.as_str().as_bytes());
        out.extend_from_slice(b"\",\"messageId\":");
        write_str(out, self.message_id);
        let source_at = out.len();
        let s = |out: &mut Vec<u8>, key: &[u8], v: Option<&str>| {
            if let Some(v) = v {
                out.extend_from_slice(key);
                write_str(out, v);
            }
        };
        let raw = |out: &mut Vec<u8>, key: &[u8], v: Option<&str>| {
            if let Some(v) = v {
                out.extend_from_slice(key);
                out.extend_from_slice(v.as_bytes());
            }
        };
        let mut ts = |out: &mut Vec<u8>, key: &[u8], v: Option<Timestamp>| {
            if let Some(v) = v {
                out.extend_from_slice(key);
                out.push(b'"');
                out.extend_from_slice(cache.get(v));
                out.push(b'"');
            }
        };
        s(out, b",\"iobSource\":", self.source);
        s(out, b",\"userId\":", self.user_id);
        s(out, b",\"anonymousId\":", self.anonymous_id);
        s(out, b",\"previousId\":", self.previous_id);
        s(out, b",\"groupId\":", self.group_id);
        s(out, b",\"event\":", self.event);
        s(out, b",\"name\":", self.name);
        s(out, b",\"category\":", self.category);
        ts(out, b",\"timestamp\":", Some(self.timestamp));
        ts(out, b",\"originalTimestamp\":", self.original_timestamp);
        ts(out, b",\"sentAt\":", self.sent_at);
        ts(out, b",\"receivedAt\":", Some(self.received_at));
        raw(out, b",\"properties\":", self.properties);
        raw(out, b",\"traits\":", self.traits);
        raw(out, b",\"context\":", self.context);
        raw(out, b",\"integrations\":", self.integrations);
        if let Some(r) = &self.reading {
            s(out, b",\"deviceId\":", Some(r.device_id));
            s(out, b",\"metric\":", Some(r.metric));
            out.extend_from_slice(b",\"value\":");
            serde_json::to_writer(&mut *out, &r.value).expect("an f64 always serializes");
            s(out, b",\"unit\":", r.unit);
            raw(out, b",\"tags\":", r.tags);
        }
        if let Some(c) = self.consent {
            out.extend_from_slice(b",\"granted\":");
            serde_json::to_writer(&mut *out, &c.granted).expect("purposes serialize");
            out.extend_from_slice(b",\"denied\":");
            serde_json::to_writer(&mut *out, &c.denied).expect("purposes serialize");
            s(out, b",\"policyVersion\":", c.policy_version.as_deref());
            s(out, b",\"source\":", c.source.as_deref());
        }
        if let Some(en) = &self.enrichment {
            out.extend_from_slice(b",\"iobEnrichment\":");
            en.write_json(out);
        }
        for (k, v) in extra {
            out.push(b',');
            write_str(out, k);
            out.push(b':');
            out.extend_from_slice(v.as_bytes());
        }
        out.push(b'}');
        source_at
    }
}

/// The last few timestamps formatted, keyed by their milliseconds.
#[derive(Debug, Default)]
pub struct TimeCache {
    slots: [(i64, Vec<u8>); 4],
    next: usize,
}

impl TimeCache {
    fn get(&mut self, t: Timestamp) -> &[u8] {
        let hit = self
            .slots
            .iter()
            .position(|(ms, text)| *ms == t.0 && !text.is_empty());
        let i = hit.unwrap_or_else(|| {
            let i = self.next;
            self.next = (i + 1) % self.slots.len();
            let (ms, text) = &mut self.slots[i];
            *ms = t.0;
            text.clear();
            t.write_rfc3339_bytes(text);
            i
        });
        &self.slots[i].1
    }
}

/// Appends `s` as a JSON string, escaped exactly as `serde_json` does.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    // serde_json escapes only `"`, `\` and control characters; everything else is verbatim.
    if crate::json_text::string_stop::<true>(s.as_bytes(), 0) < s.len() {
        serde_json::to_writer(&mut *out, s).expect("a str always serializes");
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

impl Event {
    /// Appends the canonical JSON to `out` (see [`Event::to_json`]).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        EventRef::of(self).write_json(out, self.extra.iter().map(|(k, v)| (k.as_str(), v.get())));
    }
}

#[cfg(test)]
#[path = "canonical_tests.rs"]
mod tests;
