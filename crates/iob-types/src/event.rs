//! The canonical behavioral event.
//!
//! One type for every channel: the Segment Spec calls (`track`, `identify`, `page`, `screen`,
//! `group`, `alias`) plus `observe` (a device or wearable reading) and `consent` (purposes
//! granted or denied). Nested objects (`properties`, `traits`, `context`, `integrations`,
//! `tags`) are kept as raw JSON: ingestion never builds a tree it does not need, and fields
//! iob does not know are preserved byte for byte. Stages that need a nested value parse it on
//! demand ([`Event::properties_map`] and friends).
//!
//! The canonical JSON (this type's `Serialize`/[`Event::from_json`]) is Segment-shaped, so an
//! export can be replayed into any Segment-compatible tool. It is the payload of a stored record;
//! the record framing and its version live in `iob-store`.

use std::borrow::Cow;
use std::fmt;

use serde::de;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::{Enrichment, Purpose, Timestamp, TypesError, split_top_level};

/// The kind of call an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EventKind {
    Track = 1,
    Identify = 2,
    Page = 3,
    Screen = 4,
    Group = 5,
    Alias = 6,
    Observe = 7,
    Consent = 8,
}

impl EventKind {
    pub const ALL: [EventKind; 8] = [
        EventKind::Track,
        EventKind::Identify,
        EventKind::Page,
        EventKind::Screen,
        EventKind::Group,
        EventKind::Alias,
        EventKind::Observe,
        EventKind::Consent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Track => "track",
            EventKind::Identify => "identify",
            EventKind::Page => "page",
            EventKind::Screen => "screen",
            EventKind::Group => "group",
            EventKind::Alias => "alias",
            EventKind::Observe => "observe",
            EventKind::Consent => "consent",
        }
    }

    pub fn parse(s: &str) -> Result<Self, TypesError> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| TypesError::EventKind {
                value: s.chars().take(40).collect(),
            })
    }

    /// The stable one-byte code used in record headers.
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        EventKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

impl PartialEq for Reading {
    fn eq(&self, o: &Self) -> bool {
        self.device_id == o.device_id
            && self.metric == o.metric
            && self.value.to_bits() == o.value.to_bits()
            && self.unit == o.unit
            && self.tags.as_ref().map(|t| t.get()) == o.tags.as_ref().map(|t| t.get())
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A device or wearable reading (`observe`).
#[derive(Debug, Clone)]
pub struct Reading {
    pub device_id: String,
    pub metric: String,
    pub value: f64,
    pub unit: Option<String>,
    pub tags: Option<Box<RawValue>>,
}

/// A change of consent (`consent`): purposes granted and denied under a policy version.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConsentChange {
    pub granted: Vec<Purpose>,
    pub denied: Vec<Purpose>,
    pub policy_version: Option<String>,
    /// Where the consent was collected (cookie banner, app settings, call center...).
    pub source: Option<String>,
}

/// A validated, enriched behavioral event.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    pub message_id: String,
    /// The configured source whose write key sent the event (`iobSource` in JSON).
    pub source: Option<String>,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    /// `alias`: the identifier being merged into `user_id`.
    pub previous_id: Option<String>,
    /// `group`: the account or organization.
    pub group_id: Option<String>,
    /// `track`: the event name.
    pub event: Option<String>,
    /// `page` / `screen`: the page or screen name.
    pub name: Option<String>,
    /// `page`: the page category.
    pub category: Option<String>,
    /// When it happened, corrected for client clock skew.
    pub timestamp: Timestamp,
    pub original_timestamp: Option<Timestamp>,
    pub sent_at: Option<Timestamp>,
    /// When iob received it (server clock).
    pub received_at: Timestamp,
    pub properties: Option<Box<RawValue>>,
    pub traits: Option<Box<RawValue>>,
    pub context: Option<Box<RawValue>>,
    pub integrations: Option<Box<RawValue>>,
    /// `observe` only.
    pub reading: Option<Reading>,
    /// `consent` only.
    pub consent: Option<ConsentChange>,
    /// What the collector derived (`iobEnrichment` in JSON: parsed user agent, sentiment of
    /// free-text properties); server-owned, never taken from a client. `None` in events stored
    /// before enrichment existed, and when nothing was derived.
    pub enrichment: Option<Enrichment>,
    /// Top-level fields iob does not interpret, preserved in arrival order.
    pub extra: Vec<(String, Box<RawValue>)>,
}

impl Event {
    /// A minimal event of `kind` at `at`; the builder starting point for tests and generators.
    pub fn new(kind: EventKind, message_id: impl Into<String>, at: Timestamp) -> Self {
        Event {
            kind,
            message_id: message_id.into(),
            source: None,
            user_id: None,
            anonymous_id: None,
            previous_id: None,
            group_id: None,
            event: None,
            name: None,
            category: None,
            timestamp: at,
            original_timestamp: None,
            sent_at: None,
            received_at: at,
            properties: None,
            traits: None,
            context: None,
            integrations: None,
            reading: None,
            consent: None,
            enrichment: None,
            extra: Vec::new(),
        }
    }

    /// The identifier that routes the event before identity resolution: the user id when
    /// known, else the anonymous id, else the device id. `None` only for events that
    /// validation rejects.
    pub fn routing_id(&self) -> Option<(&'static str, &str)> {
        routing_id(
            self.user_id.as_deref(),
            self.anonymous_id.as_deref(),
            self.reading.as_ref().map(|r| r.device_id.as_str()),
        )
    }

    pub fn properties_map(&self) -> Map<String, Value> {
        parse_object(self.properties.as_deref())
    }
    pub fn traits_map(&self) -> Map<String, Value> {
        parse_object(self.traits.as_deref())
    }
    pub fn context_map(&self) -> Map<String, Value> {
        parse_object(self.context.as_deref())
    }

    /// Canonical JSON bytes: what the `Serialize` impl below produces through `serde_json`,
    /// written by the hand-rolled [`crate::EventRef`] writer (the ingest hot path).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        self.write_json(&mut out);
        out
    }

    /// Parses canonical JSON (as written by [`Event::to_json`]).
    pub fn from_json(bytes: &[u8]) -> Result<Event, TypesError> {
        let fields = split_top_level(bytes).map_err(|e| TypesError::Canonical(e.to_string()))?;
        from_fields(fields).map_err(TypesError::Canonical)
    }
}

/// The routing rule, in one place: the user id when known, else the anonymous id, else the
/// device id, with the identifier type that keys its pseudonym.
pub fn routing_id<'a>(
    user_id: Option<&'a str>,
    anonymous_id: Option<&'a str>,
    device_id: Option<&'a str>,
) -> Option<(&'static str, &'a str)> {
    user_id
        .map(|u| ("user", u))
        .or_else(|| anonymous_id.map(|a| ("anon", a)))
        .or_else(|| device_id.map(|d| ("device", d)))
}

fn parse_object(raw: Option<&RawValue>) -> Map<String, Value> {
    raw.and_then(|r| serde_json::from_str::<Map<String, Value>>(r.get()).ok())
        .unwrap_or_default()
}

fn from_fields(fields: Vec<(Cow<'_, str>, &RawValue)>) -> Result<Event, String> {
    fn s(name: &str, r: &RawValue) -> Result<String, String> {
        serde_json::from_str::<String>(r.get()).map_err(|e| format!("`{name}`: {e}"))
    }
    fn os(name: &str, r: &RawValue) -> Result<Option<String>, String> {
        serde_json::from_str::<Option<String>>(r.get()).map_err(|e| format!("`{name}`: {e}"))
    }
    fn ts(name: &str, r: &RawValue) -> Result<Timestamp, String> {
        let v = s(name, r)?;
        Timestamp::parse(name, &v).map_err(|e| e.to_string())
    }
    fn raw(r: &RawValue) -> Option<Box<RawValue>> {
        if r.get() == "null" {
            None
        } else {
            Some(r.to_owned())
        }
    }
    // The type decides which names are fields and which are unknown (kept in `extra`): a
    // `metric` on a track event is the sender's own property, not a reading.
    let kind = match fields.iter().find(|(k, _)| k == "type") {
        Some((_, v)) => EventKind::parse(&s("type", v)?).map_err(|e| e.to_string())?,
        None => return Err("`type` is missing".into()),
    };
    let observe = kind == EventKind::Observe;
    let consenting = kind == EventKind::Consent;
    let mut e = Event::new(kind, String::new(), Timestamp(0));
    let mut received = None;
    let mut timestamp = None;
    let (mut device_id, mut metric, mut value, mut unit, mut tags) = (None, None, None, None, None);
    let mut consent = ConsentChange::default();
    for (k, v) in fields {
        match k.as_ref() {
            "type" => {}
            "messageId" => e.message_id = s("messageId", v)?,
            "iobSource" => e.source = os("iobSource", v)?,
            "userId" => e.user_id = os("userId", v)?,
            "anonymousId" => e.anonymous_id = os("anonymousId", v)?,
            "previousId" => e.previous_id = os("previousId", v)?,
            "groupId" => e.group_id = os("groupId", v)?,
            "event" => e.event = os("event", v)?,
            "name" => e.name = os("name", v)?,
            "category" => e.category = os("category", v)?,
            "timestamp" => timestamp = Some(ts("timestamp", v)?),
            "originalTimestamp" => e.original_timestamp = Some(ts("originalTimestamp", v)?),
            "sentAt" => e.sent_at = Some(ts("sentAt", v)?),
            "receivedAt" => received = Some(ts("receivedAt", v)?),
            "properties" => e.properties = raw(v),
            "traits" => e.traits = raw(v),
            "context" => e.context = raw(v),
            "integrations" => e.integrations = raw(v),
            "deviceId" if observe => device_id = os("deviceId", v)?,
            "metric" if observe => metric = os("metric", v)?,
            "value" if observe => {
                value = Some(
                    serde_json::from_str::<f64>(v.get()).map_err(|e| format!("`value`: {e}"))?,
                )
            }
            "unit" if observe => unit = os("unit", v)?,
            "tags" if observe => tags = raw(v),
            "granted" | "denied" if consenting => {
                let list: Vec<Purpose> =
                    serde_json::from_str(v.get()).map_err(|e| format!("`{k}`: {e}"))?;
                if k == "granted" {
                    consent.granted = list
                } else {
                    consent.denied = list
                }
            }
            "policyVersion" if consenting => consent.policy_version = os("policyVersion", v)?,
            "source" if consenting => consent.source = os("source", v)?,
            // Before the collector owned this name, a client could send it and it was kept as
            // an unknown field: such a value stays one (and round-trips byte for byte).
            "iobEnrichment" if e.enrichment.is_none() => {
                match serde_json::from_str::<Option<Enrichment>>(v.get()) {
                    Ok(en) if en.as_ref().is_some_and(|en| !en.is_empty()) => e.enrichment = en,
                    _ => e.extra.push((k.into_owned(), v.to_owned())),
                }
            }
            _ => e.extra.push((k.into_owned(), v.to_owned())),
        }
    }
    e.timestamp = timestamp.ok_or("`timestamp` is missing")?;
    e.received_at = received.ok_or("`receivedAt` is missing")?;
    if observe {
        e.reading = Some(Reading {
            device_id: device_id.ok_or("`deviceId` is missing")?,
            metric: metric.ok_or("`metric` is missing")?,
            value: value.ok_or("`value` is missing")?,
            unit,
            tags,
        });
    }
    if consenting {
        e.consent = Some(consent);
    }
    Ok(e)
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", self.kind.as_str())?;
        m.serialize_entry("messageId", &self.message_id)?;
        macro_rules! opt {
            ($k:literal, $v:expr) => {
                if let Some(v) = &$v {
                    m.serialize_entry($k, v)?;
                }
            };
        }
        opt!("iobSource", self.source);
        opt!("userId", self.user_id);
        opt!("anonymousId", self.anonymous_id);
        opt!("previousId", self.previous_id);
        opt!("groupId", self.group_id);
        opt!("event", self.event);
        opt!("name", self.name);
        opt!("category", self.category);
        m.serialize_entry("timestamp", &self.timestamp)?;
        opt!("originalTimestamp", self.original_timestamp);
        opt!("sentAt", self.sent_at);
        m.serialize_entry("receivedAt", &self.received_at)?;
        opt!("properties", self.properties);
        opt!("traits", self.traits);
        opt!("context", self.context);
        opt!("integrations", self.integrations);
        if let Some(r) = &self.reading {
            m.serialize_entry("deviceId", &r.device_id)?;
            m.serialize_entry("metric", &r.metric)?;
            m.serialize_entry("value", &r.value)?;
            opt!("unit", r.unit);
            opt!("tags", r.tags);
        }
        if let Some(c) = &self.consent {
            m.serialize_entry("granted", &c.granted)?;
            m.serialize_entry("denied", &c.denied)?;
            opt!("policyVersion", c.policy_version);
            opt!("source", c.source);
        }
        opt!("iobEnrichment", self.enrichment);
        for (k, v) in &self.extra {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        Event::from_json(raw.get().as_bytes()).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        let mut e = Event::new(EventKind::Track, "m-1", Timestamp(1_700_000_000_123));
        e.user_id = Some("u\"1".into());
        e.event = Some("Order Completed".into());
        e.properties =
            Some(RawValue::from_string(r#"{"revenue":12.5,"items":[1,2]}"#.into()).unwrap());
        e.extra.push((
            "custom".into(),
            RawValue::from_string("{\"a\":1}".into()).unwrap(),
        ));
        e.received_at = Timestamp(1_700_000_000_500);
        e
    }

    #[test]
    fn canonical_roundtrip_preserves_unknown_fields() {
        let e = sample();
        let bytes = e.to_json();
        let back = Event::from_json(&bytes).unwrap();
        assert_eq!(back.to_json(), bytes);
        assert_eq!(back.extra[0].0, "custom");
        assert_eq!(back.properties_map()["revenue"], 12.5);
        assert_eq!(back.routing_id(), Some(("user", "u\"1")));
    }

    #[test]
    fn observe_and_consent_roundtrip() {
        let mut o = Event::new(EventKind::Observe, "m-2", Timestamp(5));
        o.reading = Some(Reading {
            device_id: "watch-1".into(),
            metric: "heart_rate".into(),
            value: 71.5,
            unit: Some("bpm".into()),
            tags: None,
        });
        let back = Event::from_json(&o.to_json()).unwrap();
        assert_eq!(back.reading, o.reading);
        assert_eq!(back.routing_id(), Some(("device", "watch-1")));

        let mut c = Event::new(EventKind::Consent, "m-3", Timestamp(5));
        c.anonymous_id = Some("a-1".into());
        c.consent = Some(ConsentChange {
            granted: vec![Purpose::analytics()],
            denied: vec![Purpose::new("marketing").unwrap()],
            policy_version: Some("v2".into()),
            source: Some("banner".into()),
        });
        let back = Event::from_json(&c.to_json()).unwrap();
        assert_eq!(back.consent, c.consent);
    }

    #[test]
    fn source_on_a_track_event_is_kept_as_unknown_field() {
        let json = br#"{"type":"track","messageId":"x","timestamp":"2020-01-01T00:00:00.000Z","receivedAt":"2020-01-01T00:00:00.000Z","source":"legacy"}"#;
        let e = Event::from_json(json).unwrap();
        assert!(e.consent.is_none());
        assert_eq!(e.extra[0].0, "source");
    }

    #[test]
    fn type_specific_names_on_other_types_stay_unknown_fields_in_order() {
        let json = br#"{"type":"track","messageId":"x","event":"e","timestamp":"2020-01-01T00:00:00.000Z","receivedAt":"2020-01-01T00:00:00.000Z","metric":"m","granted":["analytics"],"value":3,"source":"s","policyVersion":"p"}"#;
        let e = Event::from_json(json).unwrap();
        assert!(e.reading.is_none() && e.consent.is_none());
        let names: Vec<&str> = e.extra.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["metric", "granted", "value", "source", "policyVersion"]
        );
        assert_eq!(
            Event::from_json(&e.to_json()).unwrap().to_json(),
            e.to_json()
        );
    }

    #[test]
    fn events_stored_before_enrichment_still_read() {
        // A payload as written before `iobEnrichment` existed.
        let old = br#"{"type":"track","messageId":"m","iobSource":"web","userId":"u","event":"Viewed","timestamp":"2026-11-20T10:00:00.000Z","receivedAt":"2026-11-20T10:00:01.000Z","context":{"userAgent":"Mozilla/5.0"}}"#;
        let e = Event::from_json(old).unwrap();
        assert!(e.enrichment.is_none());
        assert_eq!(e.to_json(), old);
        // Back then a client could send the name; a value that is no enrichment stays an
        // unknown field, byte for byte.
        let old = br#"{"type":"track","messageId":"m","event":"e","timestamp":"2026-11-20T10:00:00.000Z","receivedAt":"2026-11-20T10:00:00.000Z","iobEnrichment":{"mine":true},"z":1}"#;
        let e = Event::from_json(old).unwrap();
        assert!(e.enrichment.is_none());
        assert_eq!(e.extra[0].0, "iobEnrichment");
        assert_eq!(e.to_json(), old);
    }

    #[test]
    fn enrichment_roundtrips_with_documented_names() {
        use crate::{Device, Enrichment, UserAgent};
        let mut e = sample();
        e.enrichment = Some(Enrichment {
            user_agent: Some(UserAgent {
                browser: Some("Safari".into()),
                browser_version: Some("17.4".into()),
                os: Some("Mac OSX".into()),
                os_version: None,
                device: Device::Desktop,
            }),
            sentiment: vec![("review".into(), 0.6369), ("comment".into(), -0.5)],
        });
        let json = String::from_utf8(e.to_json()).unwrap();
        assert!(json.ends_with(
            r#","iobEnrichment":{"userAgent":{"browser":"Safari","browserVersion":"17.4","os":"Mac OSX","device":"desktop"},"sentiment":{"review":0.6369,"comment":-0.5}},"custom":{"a":1}}"#
        ), "{json}");
        let back = Event::from_json(json.as_bytes()).unwrap();
        assert_eq!(back.enrichment, e.enrichment);
        assert_eq!(back.enrichment.unwrap().sentiment_of("comment"), Some(-0.5));
    }

    #[test]
    fn kinds_have_stable_codes() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_code(k.code()), Some(k));
            assert_eq!(EventKind::parse(k.as_str()).unwrap(), k);
        }
        assert!(EventKind::parse("Track").is_err());
    }

    #[test]
    fn corrupt_canonical_json_is_an_error() {
        assert!(Event::from_json(b"{").is_err());
        assert!(Event::from_json(b"[]").is_err());
        assert!(Event::from_json(br#"{"type":"nope"}"#).is_err());
    }
}
