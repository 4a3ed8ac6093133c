//! What the unify stage reads from a stored event: its identifiers and the inputs of profile
//! features, borrowed from the canonical JSON in one pass.
//!
//! The stored JSON has already passed the collector, so a field of an unexpected shape is
//! ignored here rather than rejected (the event is durable; unify must not fail on it). This
//! module must never keep a raw identifier beyond the call that hashes it.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::UnifyError;

/// The fields of a canonical event that unify reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView<'a> {
    // Raw values, read leniently: a field that another event type would interpret is kept as
    // an unknown field by the collector, with whatever shape the client gave it.
    #[serde(borrow, default)]
    pub user_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub anonymous_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub previous_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub device_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub event: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub iob_source: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub metric: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub value: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub properties: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub traits: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub context: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub iob_enrichment: Option<&'a RawValue>,
    /// `consent` events: purposes granted and denied, policy version, where it was collected.
    #[serde(borrow, default)]
    pub granted: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub denied: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub policy_version: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "source")]
    pub consent_source: Option<&'a RawValue>,
}

/// The parts of `context` unify reads.
#[derive(Debug, Default, Deserialize)]
pub struct ContextView<'a> {
    #[serde(borrow, default)]
    pub channel: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub device: Option<DeviceView<'a>>,
    #[serde(borrow, default)]
    pub traits: Option<&'a RawValue>,
    /// Segment's consent object (`categoryPreferences`).
    #[serde(borrow, default)]
    pub consent: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeviceView<'a> {
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "type")]
    pub kind: Option<Cow<'a, str>>,
}

/// Enrichment written by the collector (`iobEnrichment`): the user agent's device class and
/// sentiment scores of free-text properties.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrichmentView<'a> {
    #[serde(borrow, default)]
    pub user_agent: Option<UserAgentView<'a>>,
    #[serde(borrow, default)]
    pub sentiment: Option<std::collections::BTreeMap<Cow<'a, str>, f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAgentView<'a> {
    #[serde(borrow, default)]
    pub device: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub browser: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub os: Option<Cow<'a, str>>,
}

impl<'a> EventView<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, UnifyError> {
        serde_json::from_slice(payload).map_err(|e| UnifyError::Payload(e.to_string()))
    }

    /// `context`, leniently: a context of an unexpected shape reads as empty.
    pub fn context(&self) -> ContextView<'a> {
        self.context
            .and_then(|c| serde_json::from_str(c.get()).ok())
            .unwrap_or_default()
    }

    /// The text of a string (or number) field.
    pub fn text(field: Option<&'a RawValue>) -> Option<Cow<'a, str>> {
        field.and_then(scalar_text)
    }

    pub fn enrichment(&self) -> EnrichmentView<'a> {
        self.iob_enrichment
            .and_then(|c| serde_json::from_str(c.get()).ok())
            .unwrap_or_default()
    }
}

/// The top-level `(key, raw value)` pairs of an object, leniently (not an object: none).
pub fn object_fields(raw: Option<&RawValue>) -> Vec<(Cow<'_, str>, &RawValue)> {
    raw.filter(|r| r.get().starts_with('{'))
        .and_then(|r| iob_types::split_object(r.get()).ok())
        .unwrap_or_default()
}

/// The text of a JSON string value, or the text of a number (ids are sometimes numbers).
pub fn scalar_text(raw: &RawValue) -> Option<Cow<'_, str>> {
    let s = raw.get();
    match s.as_bytes().first()? {
        b'"' => serde_json::from_str::<Cow<str>>(s).ok(),
        b'-' | b'0'..=b'9' => Some(Cow::Borrowed(s)),
        _ => None,
    }
}

/// A JSON number, or a string holding one (`"89.90"` is common in real data).
pub fn number(raw: &RawValue) -> Option<f64> {
    let s = raw.get();
    let v = if s.starts_with('"') {
        serde_json::from_str::<Cow<str>>(s)
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()?
    } else {
        s.parse::<f64>().ok()?
    };
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_unify_needs_and_tolerates_odd_shapes() {
        let p = br#"{"type":"track","userId":"u1","anonymousId":"a\u0031","event":"Order Completed",
            "properties":{"total":"19.90","items":3},"context":{"channel":"web","device":{"id":"d1","type":"ios"},"traits":{"email":"x@y.z"}},
            "iobEnrichment":{"userAgent":{"device":"mobile"},"sentiment":{"review":0.5}},"extra":[1,2]}"#;
        let v = EventView::parse(p).unwrap();
        assert_eq!(EventView::text(v.user_id).as_deref(), Some("u1"));
        assert_eq!(EventView::text(v.anonymous_id).as_deref(), Some("a1"));
        let c = v.context();
        assert_eq!(c.channel.as_deref(), Some("web"));
        assert_eq!(c.device.unwrap().id.as_deref(), Some("d1"));
        let e = v.enrichment();
        assert_eq!(e.user_agent.unwrap().device.as_deref(), Some("mobile"));
        let props = object_fields(v.properties);
        assert_eq!(number(props[0].1), Some(19.9));
        // A context that is not an object reads as empty rather than failing the event.
        let v = EventView::parse(br#"{"context":"odd","properties":[1],"value":"x","metric":{}}"#)
            .unwrap();
        assert_eq!(v.value.and_then(number), None);
        assert_eq!(EventView::text(v.metric), None);
        assert!(v.context().channel.is_none());
        assert!(object_fields(v.properties).is_empty());
        assert!(EventView::parse(b"{").is_err());
    }
}
