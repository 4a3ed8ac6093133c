//! Server-side enrichment of a parsed event: Segment's clock-skew correction, the derived
//! `messageId`, batch-level `context`/`integrations` merged into the event's own, and the
//! client ip added to `context`. Pure functions of their inputs: this module must never read
//! the clock or parse more of a nested object than its top-level keys.

use std::borrow::Cow;

use iob_types::Timestamp;
use serde_json::value::RawValue;
use xxhash_rust::xxh3::Xxh3;

use crate::collector::Received;
use crate::derive::member_of;
use crate::fields::split_object;
use crate::json_scan::Member;
use crate::reject::Rejection;

/// What a derived `messageId` is a hash of, besides the event's bytes.
#[derive(Clone, Copy)]
pub(crate) enum IdSeed<'s> {
    /// Live traffic: the source and the server receive time.
    Received,
    /// Bulk import: the import's name and the line number, so re-importing the same file
    /// yields the same ids while identical lines within a file (real data has them: 5,268 in
    /// UCI Online Retail) stay distinct events.
    Import { name: &'s str, line: u64 },
    /// Bulk import keyed by columns (`message_id_key`): the import's name only; the caller
    /// passes the key cells as the bytes, so the same key in two files of the same name (or
    /// twice in one file) is one event.
    Key { name: &'s str },
}

/// Segment's clock-skew correction: `timestamp = receivedAt − (sentAt − original)` when the
/// client sent both, else `original`, else `receivedAt`.
pub(crate) fn corrected_timestamp(
    original: Option<Timestamp>,
    sent_at: Option<Timestamp>,
    received_at: Timestamp,
) -> Result<Timestamp, Rejection> {
    match (original, sent_at) {
        (Some(o), Some(s)) => {
            let ms = received_at
                .millis()
                .saturating_sub(s.millis().saturating_sub(o.millis()));
            Timestamp::checked("timestamp", ms).map_err(|_| {
                Rejection::invalid(
                    "sentAt",
                    format!(
                        "`sentAt` ({s}) is so far from the event's time ({o}) that the clock-skew corrected time falls outside 1970..2200"
                    ),
                )
            })
        }
        (Some(o), None) => Ok(o),
        (None, _) => Ok(received_at),
    }
}

/// `"iob-"` + hex of xxh3-128 over the seed and the event's bytes: the same input always
/// yields the same id, so retries and re-imports deduplicate.
pub(crate) fn derive_message_id(seed: IdSeed, rx: &Received, raw: &[u8]) -> String {
    let mut h = Xxh3::new();
    match seed {
        IdSeed::Received => {
            h.update(b"rx\0");
            match rx.source {
                Some(s) => {
                    h.update(&[1]);
                    h.update(&(s.len() as u64).to_le_bytes());
                    h.update(s.as_bytes());
                }
                None => h.update(&[0]),
            }
            h.update(&rx.received_at.millis().to_le_bytes());
        }
        IdSeed::Import { name, line } => {
            h.update(b"import\0");
            h.update(&(name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update(&line.to_le_bytes());
        }
        IdSeed::Key { name } => {
            h.update(b"key\0");
            h.update(&(name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
        }
    }
    h.update(raw);
    format!("iob-{:032x}", h.digest128())
}

/// Shallow merge of a batch-level object into the event's own: the event's keys win.
pub(crate) fn merge<'a>(
    own: Option<&'a RawValue>,
    defaults: Option<&[(Cow<str>, &RawValue)]>,
    field: &str,
) -> Result<Option<Cow<'a, RawValue>>, Rejection> {
    let defaults = match defaults {
        Some(d) if !d.is_empty() => d,
        _ => return Ok(own.map(Cow::Borrowed)),
    };
    let own_fields = match own {
        Some(o) => split_object(o.get())
            .map_err(|e| Rejection::invalid(field, format!("`{field}`: {e}")))?,
        None => Vec::new(),
    };
    let mut out = String::with_capacity(own.map_or(0, |o| o.get().len()) + 256);
    out.push('{');
    let mut first = true;
    let mut push = |out: &mut String, k: &str, v: &RawValue| {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&serde_json::to_string(k).expect("string serializes"));
        out.push(':');
        out.push_str(v.get());
    };
    for (k, v) in &own_fields {
        push(&mut out, k, v);
    }
    for (k, v) in defaults {
        if !own_fields.iter().any(|(o, _)| o == k) {
            push(&mut out, k, v);
        }
    }
    out.push('}');
    RawValue::from_string(out)
        .map(|r| Some(Cow::Owned(r)))
        .map_err(|e| Rejection::invalid(field, format!("`{field}` could not be merged: {e}")))
}

/// Adds `ip` to the context unless the client set one (Segment does the same). `noted`: what
/// the batch reader saw of `context.ip` while splitting the event ([`Member::Unknown`]: look).
pub(crate) fn with_ip<'a>(
    context: Option<Cow<'a, RawValue>>,
    ip: std::net::IpAddr,
    noted: Member<'_>,
) -> Result<Cow<'a, RawValue>, Rejection> {
    let Some(ctx) = context else {
        return Ok(Cow::Owned(
            RawValue::from_string(format!("{{\"ip\":\"{ip}\"}}")).expect("valid JSON"),
        ));
    };
    let text = ctx.get();
    if member_of(text, "ip", noted).is_some() {
        return Ok(ctx);
    }
    let body = text.trim_end();
    let body = body.strip_suffix('}').unwrap_or(body).trim_end();
    let sep = if body.ends_with('{') { "" } else { "," };
    let ip = ip.to_string();
    let mut out = String::with_capacity(body.len() + sep.len() + ip.len() + 8);
    out.push_str(body);
    out.push_str(sep);
    out.push_str("\"ip\":\"");
    out.push_str(&ip);
    out.push_str("\"}");
    RawValue::from_string(out).map(Cow::Owned).map_err(|e| {
        Rejection::invalid(
            "context",
            format!("`context` could not take the client ip: {e}"),
        )
    })
}
