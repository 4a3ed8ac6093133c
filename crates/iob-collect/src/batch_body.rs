//! Reading a `/v1/batch` body into its elements and top-level fields.
//!
//! The hot path ([`Body::fast`]) reads the body once: every element is split into its
//! top-level fields while the body is parsed, and the element's own text is recovered from
//! where its first key and last value lie in the body (JSON allows only whitespace between
//! them and the braces). Anything unusual — malformed JSON, an element that is not an object,
//! an empty object, an escaped first key — makes it give up, and [`Body::checked`] reads the
//! body again field by field, producing the exact rejection. Both accept the same grammar
//! (serde_json's validating reader), so the choice never changes an outcome; this module must
//! never accept a body that `checked` would reject.

use std::borrow::Cow;
use std::fmt;

use iob_types::AppendFields;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::fields::{Fields, Key, non_null, split_object};
use crate::reject::{JsonType, RejectCode, Rejection};
use crate::segment::body_error;

/// The top-level fields of a batch body that the collector reads.
pub(crate) struct Body<'a> {
    /// Each element's text.
    pub elements: Vec<&'a str>,
    /// From the fast path: every element's top-level fields, in order, and how many each has.
    pub split: Option<(Fields<'a>, Vec<usize>)>,
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
    pub fn fast(text: &'a str) -> Option<Body<'a>> {
        if !text.trim_start().starts_with('{') {
            return None;
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let body = de.deserialize_map(BodyVisitor { text }).ok()?;
        de.end().ok()?;
        Some(body)
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

struct BodyVisitor<'a> {
    text: &'a str,
}

impl<'de> Visitor<'de> for BodyVisitor<'de> {
    type Value = Body<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a batch body")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Body<'de>, A::Error> {
        let mut body = Body::empty();
        let mut has_batch = false;
        while let Some(Key(k)) = m.next_key::<Key<'de>>()? {
            let slot = match k.as_ref() {
                "batch" if !has_batch => {
                    // Sized from the body (SDK events run ~50 bytes a top-level field and a
                    // few hundred an event), so a large batch does not regrow these buffers.
                    let n = self.text.len();
                    let mut split = (Vec::with_capacity(n / 48), Vec::with_capacity(n / 256));
                    body.elements.reserve(n / 256);
                    m.next_value_seed(Elements {
                        text: self.text,
                        elements: &mut body.elements,
                        split: &mut split,
                    })?;
                    body.split = Some(split);
                    has_batch = true;
                    continue;
                }
                "context" => &mut body.context,
                "integrations" => &mut body.integrations,
                "sentAt" => &mut body.sent_at,
                "writeKey" => &mut body.write_key,
                // Including a second `batch`: `checked` then decides, as for any oddity.
                _ => {
                    m.next_value::<&RawValue>()?;
                    if k == "batch" {
                        return Err(de::Error::custom("two batches"));
                    }
                    continue;
                }
            };
            *slot = Some(m.next_value()?);
        }
        if !has_batch {
            return Err(de::Error::custom("no batch"));
        }
        Ok(body)
    }
}

/// The `batch` array, each element split as it is read.
struct Elements<'v, 'a> {
    text: &'a str,
    elements: &'v mut Vec<&'a str>,
    split: &'v mut (Fields<'a>, Vec<usize>),
}

impl<'de> DeserializeSeed<'de> for Elements<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Elements<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of event objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (fields, counts) = self.split;
        loop {
            let first = fields.len();
            if seq.next_element_seed(AppendFields(fields))?.is_none() {
                return Ok(());
            }
            let own = &fields[first..];
            let span = match (own.first(), own.last()) {
                (Some((Cow::Borrowed(k), _)), Some((_, v))) => element_span(self.text, k, v),
                _ => None,
            };
            let Some(span) = span else {
                return Err(de::Error::custom("element needs the checked path"));
            };
            self.elements.push(span);
            counts.push(own.len());
        }
    }
}

/// The text of the object whose first key is `first_key` and last value `last_value`, both
/// borrowed from `text`: from the `{` before the key's opening quote to the `}` after the
/// value. `None` if they do not lie in `text` as expected.
fn element_span<'a>(
    text: &'a str,
    first_key: &'a str,
    last_value: &'a RawValue,
) -> Option<&'a str> {
    let base = text.as_ptr() as usize;
    let key_at = (first_key.as_ptr() as usize).checked_sub(base)?;
    let value = last_value.get();
    let value_end = (value.as_ptr() as usize).checked_sub(base)? + value.len();
    let b = text.as_bytes();
    if value_end > b.len() || key_at == 0 || b[key_at - 1] != b'"' {
        return None;
    }
    let is_ws = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r');
    let mut start = key_at - 1;
    while start > 0 && is_ws(b[start - 1]) {
        start -= 1;
    }
    let open = start.checked_sub(1).filter(|&i| b[i] == b'{')?;
    let mut end = value_end;
    while end < b.len() && is_ws(b[end]) {
        end += 1;
    }
    if b.get(end) != Some(&b'}') {
        return None;
    }
    text.get(open..end + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(text: &str) -> (Option<Vec<String>>, Result<Vec<String>, String>) {
        let fast = Body::fast(text).map(|b| b.elements.iter().map(|e| e.to_string()).collect());
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
        let b = Body::fast(text).unwrap();
        assert_eq!(b.split.unwrap().1, vec![1, 2, 1]);
        assert_eq!(b.write_key.unwrap().get(), r#""k""#);
    }

    #[test]
    fn sdk_batches_take_the_fast_path() {
        let events: Vec<String> = (0..3).map(crate::sample::analytics_js_track_json).collect();
        let text = format!(
            r#"{{"batch":[{}],"sentAt":"2026-11-20T10:00:01.000Z"}}"#,
            events.join(",")
        );
        let b = Body::fast(&text).expect("fast path");
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
            assert!(Body::fast(text).is_none(), "{text}");
        }
        // The checked path still reads the well-formed ones.
        let (_, checked) = both(r#"{"batch":[{}, 5, {"\u0061":1}]}"#);
        assert_eq!(checked.unwrap(), vec!["{}", "5", r#"{"\u0061":1}"#]);
    }
}
