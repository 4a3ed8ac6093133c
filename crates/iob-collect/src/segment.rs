//! The Segment Spec parser: one JSON object → one validated, enriched [`Event`].
//!
//! It splits the object into top-level `(key, raw value)` pairs (a `&str` variant of
//! [`iob_types::split_top_level`]), decodes only the scalars it validates, and keeps nested
//! objects (`properties`, `traits`, `context`, `integrations`, `tags`) and unknown fields as raw
//! JSON, byte for byte. Rules (required fields per type, id forms, clock-skew correction,
//! derived `messageId`) follow Segment's HTTP Tracking API. This module must never build a
//! `serde_json::Value` for a nested object unless a tracking-plan schema applies to it, and
//! never keep the `writeKey` in the event.

use std::borrow::Cow;
use std::collections::HashSet;

use iob_types::{ConsentChange, Event, EventKind, Purpose, Timestamp};
use serde_json::value::RawValue;

use crate::batch_body::Noted;
use crate::collector::{Collector, Received};
use crate::derive::user_agent_of;
pub(crate) use crate::enrich::{IdSeed, derive_message_id};
use crate::enrich::{corrected_timestamp, merge, with_ip};
use crate::fields::{
    Fields, MAX_MESSAGE_ID_CHARS, non_null, opt_id, opt_object, opt_string, opt_timestamp,
    split_object_into, str_text,
};
use crate::json_scan::Member;
use crate::parts::{Parts, ReadingParts};
use crate::reject::{JsonType, RejectCode, Rejection};

/// Longest accepted `metric` name of an `observe` event.
pub const MAX_METRIC_CHARS: usize = 100;

/// Values a `/v1/batch` body applies to each of its events.
#[derive(Default)]
pub(crate) struct Defaults<'b> {
    pub context: Option<Vec<(Cow<'b, str>, &'b RawValue)>>,
    pub integrations: Option<Vec<(Cow<'b, str>, &'b RawValue)>>,
    pub sent_at: Option<Timestamp>,
}

pub(crate) struct Ctx<'b, 's> {
    pub expected: Option<EventKind>,
    pub defaults: Option<&'b Defaults<'b>>,
    pub seed: IdSeed<'s>,
}

/// Top-level fields the parser interprets.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum F {
    Type,
    MessageId,
    UserId,
    AnonymousId,
    PreviousId,
    GroupId,
    Event,
    Name,
    Category,
    Timestamp,
    OriginalTimestamp,
    SentAt,
    Properties,
    Traits,
    Context,
    Integrations,
    WriteKey,
    // observe only
    DeviceId,
    Metric,
    Value,
    Unit,
    Tags,
    // consent only
    Granted,
    Denied,
    PolicyVersion,
    Source,
}
const N_FIELDS: usize = 26;

enum Key {
    Field(F),
    /// Server-owned fields a client cannot set (`receivedAt`, `iobSource`, `iobEnrichment`):
    /// dropped.
    Ignored,
    Unknown,
}

fn classify(k: &str) -> Key {
    use F::*;
    Key::Field(match k {
        "type" => Type,
        "messageId" => MessageId,
        "userId" => UserId,
        "anonymousId" => AnonymousId,
        "previousId" => PreviousId,
        "groupId" => GroupId,
        "event" => Event,
        "name" => Name,
        "category" => Category,
        "timestamp" => Timestamp,
        "originalTimestamp" => OriginalTimestamp,
        "sentAt" => SentAt,
        "properties" => Properties,
        "traits" => Traits,
        "context" => Context,
        "integrations" => Integrations,
        "writeKey" => WriteKey,
        "deviceId" => DeviceId,
        "metric" => Metric,
        "value" => Value,
        "unit" => Unit,
        "tags" => Tags,
        "granted" => Granted,
        "denied" => Denied,
        "policyVersion" => PolicyVersion,
        "source" => Source,
        "receivedAt" | "iobSource" | "iobEnrichment" => return Key::Ignored,
        _ => return Key::Unknown,
    })
}

impl F {
    /// The kind this field belongs to; `None` for fields every kind reads.
    fn only_for(self) -> Option<EventKind> {
        match self as u8 {
            x if x >= F::Granted as u8 => Some(EventKind::Consent),
            x if x >= F::DeviceId as u8 => Some(EventKind::Observe),
            _ => None,
        }
    }
}

/// Maps a serde_json error on a body to `malformed_json` or `not_an_object`.
pub(crate) fn body_error(bytes: &[u8], err: serde_json::Error) -> Rejection {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first != Some(b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
        return Rejection::new(
            RejectCode::NotAnObject,
            "",
            "the body must be a JSON object (`{...}`), got another JSON value",
        );
    }
    Rejection::new(
        RejectCode::MalformedJson,
        "",
        format!("the body is not valid JSON: {err}"),
    )
}

/// The body as text; JSON must be UTF-8.
pub(crate) fn body_text(bytes: &[u8]) -> Result<&str, Rejection> {
    // simdutf8 checks a whole batch body several times faster than std; on invalid input std
    // runs again to say where.
    simdutf8::basic::from_utf8(bytes)
        .or_else(|_| std::str::from_utf8(bytes))
        .map_err(|e| {
            Rejection::new(
                RejectCode::MalformedJson,
                "",
                format!(
                    "the body is not valid UTF-8 (at byte {}); JSON must be UTF-8",
                    e.valid_up_to()
                ),
            )
        })
}

fn dup(field: &str) -> Rejection {
    Rejection::invalid(
        field,
        format!("`{field}` appears more than once in the object; send each field once"),
    )
}

impl Collector {
    /// Parses and validates one event object. Returns the event and the body's write key.
    pub(crate) fn parse_one(
        &self,
        bytes: &[u8],
        ctx: &Ctx,
        rx: &Received,
    ) -> Result<(Event, Option<String>), Rejection> {
        let text = self.event_text(bytes)?;
        let (parts, key) = self.parse_parts(text, ctx, rx, &mut Vec::new())?;
        Ok((parts.to_event(rx.source), key.map(Cow::into_owned)))
    }

    /// The size limit and UTF-8 check of one event's bytes.
    pub(crate) fn event_text<'a>(&self, bytes: &'a [u8]) -> Result<&'a str, Rejection> {
        self.check_size(bytes)?;
        body_text(bytes)
    }

    /// The size limit of one event already known to be text (a batch element).
    pub(crate) fn event_size<'a>(&self, text: &'a str) -> Result<&'a str, Rejection> {
        self.check_size(text.as_bytes())?;
        Ok(text)
    }

    fn check_size(&self, bytes: &[u8]) -> Result<(), Rejection> {
        let limit = self.opts.max_event_bytes;
        if bytes.len() > limit {
            return Err(Rejection::new(
                RejectCode::TooLarge,
                "",
                format!(
                    "the event is {} bytes; the limit is {limit} bytes (max_event_bytes)",
                    bytes.len()
                ),
            ));
        }
        Ok(())
    }

    /// Validates and enriches one event object (already size-checked UTF-8, see
    /// [`Collector::event_text`]). Returns its parts and the body's write key.
    pub(crate) fn parse_parts<'a>(
        &self,
        text: &'a str,
        ctx: &Ctx,
        rx: &Received,
        fields: &mut Fields<'a>,
    ) -> Result<(Parts<'a>, Option<Cow<'a, str>>), Rejection> {
        split_object_into(text, fields).map_err(|e| body_error(text.as_bytes(), e))?;
        self.parse_split(text, ctx, rx, fields, Noted::UNKNOWN)
    }

    /// [`Collector::parse_parts`] of an object already split into its top-level `fields`
    /// (which it drains), with what the splitter noted of its nested objects.
    pub(crate) fn parse_split<'a>(
        &self,
        text: &'a str,
        ctx: &Ctx,
        rx: &Received,
        fields: &mut Fields<'a>,
        noted: Noted<'a>,
    ) -> Result<(Parts<'a>, Option<Cow<'a, str>>), Rejection> {
        let bytes = text.as_bytes();

        let mut slots: [Option<&RawValue>; N_FIELDS] = [None; N_FIELDS];
        let mut others: Vec<(Cow<str>, &RawValue, Option<F>)> = Vec::new();
        for (k, v) in fields.drain(..) {
            match classify(&k) {
                Key::Field(f) if f.only_for().is_none() => {
                    if slots[f as usize].replace(v).is_some() {
                        return Err(dup(&k));
                    }
                }
                Key::Field(f) => others.push((k, v, Some(f))),
                Key::Ignored => {}
                Key::Unknown => others.push((k, v, None)),
            }
        }
        let slot = |f: F| slots[f as usize];

        // type
        let kind = match (slot(F::Type).and_then(non_null), ctx.expected) {
            (Some(t), expected) => {
                let s = str_text(t).ok_or_else(|| Rejection::wrong_type("type", "a string", t))?;
                let kind = EventKind::parse(&s)
                    .map_err(|e| Rejection::new(RejectCode::UnknownType, "type", e.to_string()))?;
                if let Some(exp) = expected.filter(|&e| e != kind) {
                    return Err(Rejection::invalid(
                        "type",
                        format!(
                            "`type` is `{kind}` but this endpoint accepts only `{exp}` calls; send it to /v1/{kind} or /v1/batch"
                        ),
                    ));
                }
                kind
            }
            (None, Some(exp)) => exp,
            (None, None) => {
                return Err(Rejection::missing(
                    "type",
                    "`type` is required: one of track, identify, page, screen, group, alias, observe, consent",
                ));
            }
        };

        // Kind-specific fields go to their slot for that kind, to `extra` otherwise.
        let mut extra: Vec<(Cow<'a, str>, &'a RawValue)> = Vec::new();
        let mut seen: Option<HashSet<String>> = None;
        for (k, v, f) in others {
            if let Some(f) = f.filter(|f| f.only_for() == Some(kind)) {
                if slots[f as usize].replace(v).is_some() {
                    return Err(dup(&k));
                }
                continue;
            }
            let is_dup = if extra.len() < 16 {
                extra.iter().any(|(e, _)| *e == *k)
            } else {
                let set =
                    seen.get_or_insert_with(|| extra.iter().map(|(e, _)| e.to_string()).collect());
                !set.insert(k.to_string())
            };
            if is_dup {
                return Err(dup(&k));
            }
            extra.push((k, v));
        }
        let slot = |f: F| slots[f as usize];

        let write_key = opt_string("writeKey", slot(F::WriteKey))?;

        // identities
        let user_id = opt_id("userId", slot(F::UserId))?;
        let anonymous_id = opt_id("anonymousId", slot(F::AnonymousId))?;
        let previous_id = opt_id("previousId", slot(F::PreviousId))?;
        let group_id = opt_id("groupId", slot(F::GroupId))?;
        let need_id = || {
            if user_id.is_none() && anonymous_id.is_none() {
                Err(Rejection::missing(
                    "userId",
                    format!("`userId` or `anonymousId` is required for {kind} calls"),
                ))
            } else {
                Ok(())
            }
        };
        match kind {
            EventKind::Track
            | EventKind::Identify
            | EventKind::Page
            | EventKind::Screen
            | EventKind::Consent => need_id()?,
            EventKind::Group => {
                if group_id.is_none() {
                    return Err(Rejection::missing(
                        "groupId",
                        "`groupId` (the account or organization) is required for group calls",
                    ));
                }
                need_id()?
            }
            EventKind::Alias => {
                if user_id.is_none() {
                    return Err(Rejection::missing(
                        "userId",
                        "`userId` (the identity to keep) is required for alias calls",
                    ));
                }
                if previous_id.is_none() {
                    return Err(Rejection::missing(
                        "previousId",
                        "`previousId` (the identity being merged) is required for alias calls",
                    ));
                }
            }
            EventKind::Observe => {}
        }

        let event_name = opt_string("event", slot(F::Event))?;
        if kind == EventKind::Track && event_name.as_deref().is_none_or(str::is_empty) {
            return Err(Rejection::missing(
                "event",
                "`event` is required for track calls: a non-empty name such as \"Order Completed\"",
            ));
        }
        let name = opt_string("name", slot(F::Name))?;
        let category = opt_string("category", slot(F::Category))?;

        let properties = opt_object("properties", slot(F::Properties))?;
        let traits = opt_object("traits", slot(F::Traits))?;
        let context = opt_object("context", slot(F::Context))?;
        let integrations = opt_object("integrations", slot(F::Integrations))?;

        // time, corrected for client clock skew as Segment does
        let timestamp = opt_timestamp("timestamp", slot(F::Timestamp))?;
        let original =
            opt_timestamp("originalTimestamp", slot(F::OriginalTimestamp))?.or(timestamp);
        let sent_at = match opt_timestamp("sentAt", slot(F::SentAt))? {
            Some(s) => Some(s),
            None => ctx.defaults.and_then(|d| d.sent_at),
        };
        let timestamp = corrected_timestamp(original, sent_at, rx.received_at)?;

        let message_id = match opt_string("messageId", slot(F::MessageId))? {
            // A character is at least a byte: only long ids need counting.
            Some(m)
                if m.len() > MAX_MESSAGE_ID_CHARS && m.chars().count() > MAX_MESSAGE_ID_CHARS =>
            {
                return Err(Rejection::invalid(
                    "messageId",
                    format!(
                        "`messageId` is {} characters; the limit is {MAX_MESSAGE_ID_CHARS}",
                        m.chars().count()
                    ),
                ));
            }
            Some(m) if !m.is_empty() => m,
            _ => Cow::Owned(derive_message_id(ctx.seed, rx, bytes)),
        };

        let reading = if kind == EventKind::Observe {
            Some(parse_reading(&slots)?)
        } else {
            None
        };
        let consent = if kind == EventKind::Consent {
            Some(self.parse_consent(&slots)?)
        } else {
            None
        };

        // enrichment of context and integrations
        let defaults = ctx.defaults;
        // What the splitter noted is the event's own context; batch defaults may add to it.
        let (noted_user_agent, noted_ip) = match defaults.and_then(|d| d.context.as_deref()) {
            Some(d) if !d.is_empty() => (Member::Unknown, Member::Unknown),
            _ => (noted.user_agent, noted.ip),
        };
        let mut context: Option<Cow<'a, RawValue>> = merge(
            context,
            defaults.and_then(|d| d.context.as_deref()),
            "context",
        )?;
        if let Some(ip) = rx.ip {
            context = Some(with_ip(context, ip, noted_ip)?);
        }
        let integrations = merge(
            integrations,
            defaults.and_then(|d| d.integrations.as_deref()),
            "integrations",
        )?;

        // tracking plan
        let plan = &self.opts.plan;
        match kind {
            EventKind::Track => {
                plan.check_track(event_name.as_deref().unwrap_or(""), properties)?
            }
            EventKind::Identify => plan.check_identify(traits)?,
            _ => {}
        }

        // derived enrichment (after every check: a rejected event is not worth it)
        let user_agent = match &context {
            Some(c) if self.opts.parse_user_agent => {
                user_agent_of(c, noted_user_agent).map(|ua| self.user_agents.get(&ua))
            }
            _ => None,
        };
        let sentiment = match properties {
            Some(p) if !self.opts.sentiment_properties.is_empty() && noted.text_properties => {
                self.text_properties.sentiments(p)
            }
            _ => Vec::new(),
        };

        let parts = Parts {
            kind,
            message_id,
            user_id,
            anonymous_id,
            previous_id,
            group_id,
            event: event_name,
            name,
            category,
            timestamp,
            original_timestamp: original,
            sent_at,
            received_at: rx.received_at,
            properties,
            traits,
            context,
            integrations,
            reading,
            consent,
            user_agent,
            sentiment,
            extra,
        };
        Ok((parts, write_key))
    }

    fn parse_consent(
        &self,
        slots: &[Option<&RawValue>; N_FIELDS],
    ) -> Result<ConsentChange, Rejection> {
        let granted_raw = slots[F::Granted as usize].and_then(non_null);
        let denied_raw = slots[F::Denied as usize].and_then(non_null);
        if granted_raw.is_none() && denied_raw.is_none() {
            return Err(Rejection::missing(
                "granted",
                "a consent call needs `granted` and/or `denied`: arrays of purpose names",
            ));
        }
        let granted = self.purposes("granted", granted_raw)?;
        let denied = self.purposes("denied", denied_raw)?;
        if let Some((j, p)) = denied.iter().enumerate().find(|(_, p)| granted.contains(p)) {
            return Err(Rejection::invalid(
                &format!("denied[{j}]"),
                format!("purpose `{p}` is both granted and denied; send it in one list only"),
            ));
        }
        Ok(ConsentChange {
            granted,
            denied,
            policy_version: opt_string("policyVersion", slots[F::PolicyVersion as usize])?
                .map(Cow::into_owned),
            source: opt_string("source", slots[F::Source as usize])?.map(Cow::into_owned),
        })
    }

    fn purposes(&self, field: &str, raw: Option<&RawValue>) -> Result<Vec<Purpose>, Rejection> {
        let Some(raw) = raw else {
            return Ok(Vec::new());
        };
        if JsonType::of(raw) != JsonType::Array {
            return Err(Rejection::wrong_type(
                field,
                "an array of purpose names",
                raw,
            ));
        }
        let items: Vec<&RawValue> = serde_json::from_str(raw.get())
            .map_err(|e| Rejection::invalid(field, format!("`{field}`: {e}")))?;
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("{field}[{i}]");
            let s = str_text(item)
                .ok_or_else(|| Rejection::wrong_type(&path, "a purpose name (string)", item))?;
            let known = self.opts.purposes.iter().find(|p| p.as_str() == s);
            match known {
                Some(p) => {
                    if !out.contains(p) {
                        out.push(p.clone());
                    }
                }
                None => {
                    let names: Vec<&str> = self.opts.purposes.iter().map(Purpose::as_str).collect();
                    let shown: String = s.chars().take(60).collect();
                    return Err(Rejection::invalid(
                        &path,
                        format!(
                            "`{shown}` is not a configured purpose; expected one of: {}",
                            names.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// Whether `metric` is a valid metric name: 1-[`MAX_METRIC_CHARS`] characters of a-z, 0-9,
/// `_`, `.` or `-`.
pub(crate) fn metric_ok(metric: &str) -> bool {
    !metric.is_empty()
        && metric.len() <= MAX_METRIC_CHARS
        && metric.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

/// Why `metric` is not a valid metric name.
pub(crate) fn metric_rule(metric: &str) -> String {
    let shown: String = metric.chars().take(60).collect();
    format!(
        "`metric` is `{shown}`; use 1-{MAX_METRIC_CHARS} characters of a-z, 0-9, '_', '.' or '-' (e.g. heart_rate)"
    )
}

fn parse_reading<'a>(
    slots: &[Option<&'a RawValue>; N_FIELDS],
) -> Result<ReadingParts<'a>, Rejection> {
    let slot = |f: F| slots[f as usize];
    let device_id = opt_id("deviceId", slot(F::DeviceId))?.ok_or_else(|| {
        Rejection::missing("deviceId", "`deviceId` (the device or wearable that took the reading) is required for observe calls")
    })?;
    let metric = opt_string("metric", slot(F::Metric))?.ok_or_else(|| {
        Rejection::missing(
            "metric",
            "`metric` (e.g. \"heart_rate\") is required for observe calls",
        )
    })?;
    if !metric_ok(&metric) {
        return Err(Rejection::invalid("metric", metric_rule(&metric)));
    }
    let raw = slot(F::Value).and_then(non_null).ok_or_else(|| {
        Rejection::missing(
            "value",
            "`value` (a number, or true/false for signals) is required for observe calls",
        )
    })?;
    let value = match JsonType::of(raw) {
        JsonType::Number => match raw.get().parse::<f64>() {
            Ok(v) if v.is_finite() => v,
            _ => {
                return Err(Rejection::invalid(
                    "value",
                    format!("`value` {} is not a finite 64-bit number", raw.get()),
                ));
            }
        },
        JsonType::Bool => {
            if raw.get() == "true" {
                1.0
            } else {
                0.0
            }
        }
        _ => return Err(Rejection::wrong_type("value", "a number or a boolean", raw)),
    };
    Ok(ReadingParts {
        device_id,
        metric,
        value,
        unit: opt_string("unit", slot(F::Unit))?,
        tags: opt_object("tags", slot(F::Tags))?,
    })
}
