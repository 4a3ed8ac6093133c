//! Reading a `/v1/batch` body into its elements and top-level fields.
//!
//! The hot path ([`Body::fast`]) reads the body once with iob's validating scanner
//! ([`crate::json_scan`]): every element is split into its top-level fields as it is met.
//! Anything unusual — malformed JSON, an element that is not an object, an empty object, a key
//! with escapes, deep nesting — makes it give up, and [`Body::checked`] reads the body again
//! with serde_json, field by field, producing the exact rejection. The scanner accepts a subset
//! of serde_json's grammar, so the choice never changes an outcome; this module must never
//! accept a body that `checked` would reject.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::fields::{Fields, non_null, split_object};
use crate::json_scan::{Member, Scanner};
use crate::reject::{JsonType, RejectCode, Rejection};
use crate::segment::body_error;

/// The top-level fields of a batch body that the collector reads.
pub(crate) struct Body<'a> {
    /// Each element's text.
    pub elements: Vec<&'a str>,
    /// From the fast path: every element's top-level fields, in order, how many each has, and
    /// what was noted of it for enrichment.
    pub split: Option<Split<'a>>,
    pub context: Option<&'a RawValue>,
    pub integrations: Option<&'a RawValue>,
    pub sent_at: Option<&'a RawValue>,
    pub write_key: Option<&'a RawValue>,
}

impl<'a> Body<'a> {
    fn empty() -> Body<'a> {
        Body {
            elements: Vec::new(),
            split: None,
            context: None,
            integrations: None,
            sent_at: None,
            write_key: None,
        }
    }

    /// One pass for a well-formed body of non-empty objects; `None` for anything else.
    /// `text_properties`: the configured free-text property names (see [`Noted`]).
    pub fn fast(text: &'a str, text_properties: &[String]) -> Option<Body<'a>> {
        let mut s = Scanner::new(text);
        s.eat(b'{')?;
        let mut body = Body::empty();
        let mut has_batch = false;
        loop {
            let key = s.plain_key()?;
            let slot = match key {
                "batch" if !has_batch => {
                    body.split = Some(elements(&mut s, &mut body.elements, text_properties)?);
                    has_batch = true;
                    None
                }
                // Including a second `batch`: `checked` then decides, as for any oddity.
                "batch" => return None,
                "context" => Some(&mut body.context),
                "integrations" => Some(&mut body.integrations),
                "sentAt" => Some(&mut body.sent_at),
                "writeKey" => Some(&mut body.write_key),
                _ => {
                    s.value()?;
                    None
                }
            };
            if let Some(slot) = slot {
                *slot = Some(s.value()?);
            }
            if !s.more(b'}')? {
                break;
            }
        }
        s.ws();
        (has_batch && s.at_end()).then_some(body)
    }

    /// Field by field, naming what is wrong with the body.
    pub fn checked(text: &'a str) -> Result<Body<'a>, Rejection> {
        let bytes = text.as_bytes();
        let fields = split_object(text).map_err(|e| body_error(bytes, e))?;
        let mut body = Body::empty();
        let mut batch = None;
        for (k, v) in fields {
            let slot = match k.as_ref() {
                "batch" => &mut batch,
                "context" => &mut body.context,
                "integrations" => &mut body.integrations,
                "sentAt" => &mut body.sent_at,
                "writeKey" => &mut body.write_key,
                _ => continue,
            };
            *slot = Some(v);
        }
        let batch = batch.and_then(non_null).ok_or_else(|| {
            Rejection::missing(
                "batch",
                "a batch body needs `batch`: an array of event objects",
            )
        })?;
        if JsonType::of(batch) != JsonType::Array {
            return Err(Rejection::wrong_type(
                "batch",
                "an array of event objects",
                batch,
            ));
        }
        let elements: Vec<&'a RawValue> = serde_json::from_str(batch.get()).map_err(|e| {
            Rejection::new(RejectCode::MalformedJson, "batch", format!("`batch`: {e}"))
        })?;
        body.elements = elements.into_iter().map(RawValue::get).collect();
        Ok(body)
    }
}

/// The elements' top-level fields, in order, with each element's count of them and what was
/// noted of it.
pub(crate) struct Split<'a> {
    pub fields: Fields<'a>,
    pub counts: Vec<usize>,
    pub noted: Vec<Noted<'a>>,
}

/// What the batch reader saw of one element's nested objects, for enrichment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Noted<'a> {
    /// `context.userAgent` ([`Member::Unknown`] when the element has no `context`).
    pub user_agent: Member<'a>,
    /// `context.ip`, the same way (the server adds the client's address unless it is there).
    pub ip: Member<'a>,
    /// False only when `properties` is an object none of whose keys is a configured free-text
    /// property: sentiment has nothing to read.
    pub text_properties: bool,
}

impl Noted<'_> {
    /// Nothing noted: enrichment reads the objects itself.
    pub const UNKNOWN: Noted<'static> = Noted {
        user_agent: Member::Unknown,
        ip: Member::Unknown,
        text_properties: true,
    };
}

/// The `batch` array at the cursor: each element's text into `texts`, and the [`Split`] of
/// them all. `None` unless every element is a non-empty object whose keys have no escapes.
fn elements<'a>(
    s: &mut Scanner<'a>,
    texts: &mut Vec<&'a str>,
    text_properties: &[String],
) -> Option<Split<'a>> {
    // Sized from the body (SDK events run ~50 bytes a top-level field and a few hundred an
    // event), so a large batch does not regrow these buffers.
    let n = s.remaining();
    let mut split = Split {
        fields: Vec::with_capacity(n / 48),
        counts: Vec::with_capacity(n / 256),
        noted: Vec::with_capacity(n / 256),
    };
    texts.reserve(n / 256);
    s.eat(b'[')?;
    if s.eat(b']').is_some() {
        return Some(split);
    }
    let fields = &mut split.fields;
    loop {
        s.ws();
        let start = s.pos();
        s.eat(b'{')?;
        let first = fields.len();
        let mut noted = Noted::UNKNOWN;
        loop {
            let key = s.plain_key()?;
            let value = match key {
                "context" => {
                    let (value, [user_agent, ip]) = s.object_noting(["userAgent", "ip"])?;
                    (noted.user_agent, noted.ip) = (user_agent, ip);
                    value
                }
                "properties" if !text_properties.is_empty() => {
                    let mut maybe = false;
                    let (value, is_object) = s.members(|k, _| {
                        maybe |= k.is_none_or(|k| text_properties.iter().any(|n| n == k));
                    })?;
                    noted.text_properties = maybe || !is_object;
                    value
                }
                _ => s.value()?,
            };
            fields.push((Cow::Borrowed(key), value));
            if !s.more(b'}')? {
                break;
            }
        }
        texts.push(s.text(start));
        split.counts.push(fields.len() - first);
        split.noted.push(noted);
        if !s.more(b']')? {
            break;
        }
    }
    Some(split)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(text: &str) -> (Option<Vec<String>>, Result<Vec<String>, String>) {
        let fast =
            Body::fast(text, &[]).map(|b| b.elements.iter().map(|e| e.to_string()).collect());
        let checked = Body::checked(text)
            .map(|b| b.elements.iter().map(|e| e.to_string()).collect())
            .map_err(|r| r.to_string());
        (fast, checked)
    }

    #[test]
    fn fast_path_recovers_each_element_exactly() {
        let text = r#" { "sentAt":"x", "batch" : [ {"a":1} ,{ "b" : {"c":[1,2]} , "d":"}" }
            ,	{"e":null}] , "writeKey":"k"} "#;
        let (fast, checked) = both(text);
        assert_eq!(fast.unwrap(), checked.unwrap());
        let b = Body::fast(text, &[]).unwrap();
        let split = b.split.unwrap();
        assert_eq!(split.counts, vec![1, 2, 1]);
        assert_eq!(
            split.noted,
            vec![Noted::UNKNOWN; 3],
            "no element has an object"
        );
        assert_eq!(b.write_key.unwrap().get(), r#""k""#);
    }

    #[test]
    fn sdk_batches_take_the_fast_path() {
        let events: Vec<String> = (0..3).map(crate::sample::analytics_js_track_json).collect();
        let text = format!(
            r#"{{"batch":[{}],"sentAt":"2026-11-20T10:00:01.000Z"}}"#,
            events.join(",")
        );
        let b = Body::fast(&text, &[]).expect("fast path");
        assert_eq!(b.elements, events);
    }

    #[test]
    fn unusual_bodies_take_the_checked_path() {
        for text in [
            r#"{"batch":[{}]}"#,
            r#"{"batch":[5, {"a":1}]}"#,
            r#"{"batch":[{"\u0061":1}]}"#,
            r#"{"batch":[{"a":1}],"batch":[]}"#,
            r#"{"batch":{"a":1}}"#,
            r#"{"batch":[{"a":1}]"#,
            r#"[{"a":1}]"#,
            r#"{"sentAt":1}"#,
        ] {
            assert!(Body::fast(text, &[]).is_none(), "{text}");
        }
        // The checked path still reads the well-formed ones.
        let (_, checked) = both(r#"{"batch":[{}, 5, {"\u0061":1}]}"#);
        assert_eq!(checked.unwrap(), vec!["{}", "5", r#"{"\u0061":1}"#]);
    }
}
