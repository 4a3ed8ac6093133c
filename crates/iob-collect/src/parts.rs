//! [`Parts`]: one validated, enriched event as pieces borrowed from its request body — the
//! parser's output before it is finished either into an owned [`Event`] (the library API) or
//! straight into canonical JSON bytes (the engine's hot path, [`crate::CanonicalEvents`]).
//!
//! Both finishers read the same validated fields, so they cannot disagree: the canonical bytes
//! written here are exactly `Parts::into_event(..).to_json()` (tested in `canonical.rs`). This
//! module must never validate anything itself; that is `segment.rs`'s job.

use std::borrow::Cow;
use std::sync::Arc;

use iob_types::{
    ConsentChange, Enrichment, EnrichmentRef, Event, EventKind, EventRef, Reading, ReadingRef,
    TimeCache, Timestamp, UserAgent,
};
use serde_json::value::RawValue;

/// A validated `observe` reading, borrowed.
pub(crate) struct ReadingParts<'a> {
    pub device_id: Cow<'a, str>,
    pub metric: Cow<'a, str>,
    pub value: f64,
    pub unit: Option<Cow<'a, str>>,
    pub tags: Option<&'a RawValue>,
}

/// A validated, enriched event whose strings and nested objects still point into the body
/// where they could (`context` is owned when enrichment rewrote it).
pub(crate) struct Parts<'a> {
    pub kind: EventKind,
    pub message_id: Cow<'a, str>,
    pub user_id: Option<Cow<'a, str>>,
    pub anonymous_id: Option<Cow<'a, str>>,
    pub previous_id: Option<Cow<'a, str>>,
    pub group_id: Option<Cow<'a, str>>,
    pub event: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
    pub category: Option<Cow<'a, str>>,
    pub timestamp: Timestamp,
    pub original_timestamp: Option<Timestamp>,
    pub sent_at: Option<Timestamp>,
    pub received_at: Timestamp,
    pub properties: Option<&'a RawValue>,
    pub traits: Option<&'a RawValue>,
    pub context: Option<Cow<'a, RawValue>>,
    pub integrations: Option<Cow<'a, RawValue>>,
    pub reading: Option<ReadingParts<'a>>,
    pub consent: Option<ConsentChange>,
    /// `iobEnrichment.userAgent`, shared with every event of the same user agent.
    pub user_agent: Option<Arc<UserAgent>>,
    /// `iobEnrichment.sentiment`.
    pub sentiment: Vec<(String, f64)>,
    pub extra: Vec<(Cow<'a, str>, &'a RawValue)>,
}

fn own(s: &Option<Cow<'_, str>>) -> Option<String> {
    s.as_deref().map(str::to_owned)
}

fn own_raw(r: &Option<Cow<'_, RawValue>>) -> Option<Box<RawValue>> {
    r.as_deref().map(ToOwned::to_owned)
}

impl<'a> Parts<'a> {
    /// The owned event, stamped with `source`.
    pub fn to_event(&self, source: Option<&str>) -> Event {
        Event {
            kind: self.kind,
            message_id: self.message_id.to_string(),
            source: source.map(str::to_owned),
            user_id: own(&self.user_id),
            anonymous_id: own(&self.anonymous_id),
            previous_id: own(&self.previous_id),
            group_id: own(&self.group_id),
            event: own(&self.event),
            name: own(&self.name),
            category: own(&self.category),
            timestamp: self.timestamp,
            original_timestamp: self.original_timestamp,
            sent_at: self.sent_at,
            received_at: self.received_at,
            properties: self.properties.map(ToOwned::to_owned),
            traits: self.traits.map(ToOwned::to_owned),
            context: own_raw(&self.context),
            integrations: own_raw(&self.integrations),
            reading: self.reading.as_ref().map(|r| Reading {
                device_id: r.device_id.to_string(),
                metric: r.metric.to_string(),
                value: r.value,
                unit: own(&r.unit),
                tags: r.tags.map(ToOwned::to_owned),
            }),
            consent: self.consent.clone(),
            enrichment: (self.user_agent.is_some() || !self.sentiment.is_empty()).then(|| {
                Enrichment {
                    user_agent: self.user_agent.as_deref().cloned(),
                    sentiment: self.sentiment.clone(),
                }
            }),
            extra: self
                .extra
                .iter()
                .map(|(k, v)| (k.to_string(), (*v).to_owned()))
                .collect(),
        }
    }

    /// The routing identifier, as [`Event::routing_id`] would return it.
    pub fn routing_id(&self) -> Option<(&'static str, &str)> {
        iob_types::routing_id(
            self.user_id.as_deref(),
            self.anonymous_id.as_deref(),
            self.reading.as_ref().map(|r| &*r.device_id),
        )
    }

    /// Appends the canonical JSON, with `source` as its `iobSource` (`None`: without one);
    /// returns where `iobSource` is (or splices in).
    pub fn write_canonical(
        &self,
        out: &mut Vec<u8>,
        cache: &mut TimeCache,
        source: Option<&str>,
    ) -> usize {
        let view = EventRef {
            kind: self.kind,
            message_id: &self.message_id,
            source,
            user_id: self.user_id.as_deref(),
            anonymous_id: self.anonymous_id.as_deref(),
            previous_id: self.previous_id.as_deref(),
            group_id: self.group_id.as_deref(),
            event: self.event.as_deref(),
            name: self.name.as_deref(),
            category: self.category.as_deref(),
            timestamp: self.timestamp,
            original_timestamp: self.original_timestamp,
            sent_at: self.sent_at,
            received_at: self.received_at,
            properties: self.properties.map(RawValue::get),
            traits: self.traits.map(RawValue::get),
            context: self.context.as_deref().map(RawValue::get),
            integrations: self.integrations.as_deref().map(RawValue::get),
            reading: self.reading.as_ref().map(|r| ReadingRef {
                device_id: &r.device_id,
                metric: &r.metric,
                value: r.value,
                unit: r.unit.as_deref(),
                tags: r.tags.map(RawValue::get),
            }),
            consent: self.consent.as_ref(),
            enrichment: (self.user_agent.is_some() || !self.sentiment.is_empty()).then(|| {
                EnrichmentRef {
                    user_agent: self.user_agent.as_deref(),
                    sentiment: &self.sentiment,
                }
            }),
        };
        view.write_json_cached(out, self.extra.iter().map(|(k, v)| (&**k, v.get())), cache)
    }
}
