//! `/v1/batch`: Segment's batch body `{"batch":[...], "context"?, "integrations"?, "sentAt"?,
//! "writeKey"?}` → one outcome per element.
//!
//! Top-level `context` and `integrations` are shallow-merged into each event's own (the
//! event's keys win) and top-level `sentAt` applies to events without one. A body that is not
//! an object or lacks a `batch` array rejects the whole request; a bad element rejects only
//! itself, with `index` set and its field prefixed `batch[i].`. This module must never drop an
//! element silently: every element yields exactly one [`BatchItem`].

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::collector::{BatchItem, Collector, ParsedBatch, Received};
use crate::fields::{non_null, opt_object, opt_string, opt_timestamp, split_object};
use crate::parts::Parts;
use crate::reject::{JsonType, RejectCode, Rejection};
use crate::segment::{Ctx, Defaults, IdSeed, body_error, body_text};

impl Collector {
    /// Parses a `/v1/batch` body. `Err` only when the body as a whole is unusable.
    pub fn parse_batch<'a>(
        &self,
        bytes: &'a [u8],
        rx: &Received,
    ) -> Result<ParsedBatch<'a>, Rejection> {
        self.parse_batch_with(bytes, rx, |parts| parts.into_event(rx.source))
    }

    /// Parses a `/v1/batch` body, finishing each accepted element with `finish` (into an
    /// [`iob_types::Event`], or into canonical JSON for the engine's hot path).
    pub(crate) fn parse_batch_with<'a, T>(
        &self,
        bytes: &'a [u8],
        rx: &Received,
        mut finish: impl FnMut(Parts<'_>) -> T,
    ) -> Result<ParsedBatch<'a, T>, Rejection> {
        let limit = self.opts.max_batch_bytes;
        if bytes.len() > limit {
            return Err(Rejection::new(
                RejectCode::TooLarge,
                "",
                format!(
                    "the batch body is {} bytes; the limit is {limit} bytes (max_batch_bytes): split it into smaller batches",
                    bytes.len()
                ),
            ));
        }
        let text = body_text(bytes)?;
        let Body {
            elements,
            context,
            integrations,
            sent_at,
            write_key,
        } = match Body::fast(text) {
            Some(body) => body,
            None => Body::checked(text)?,
        };

        let split = |field: &str, raw: Option<&'a RawValue>| -> Result<_, Rejection> {
            match opt_object(field, raw)? {
                Some(o) => split_object(o.get())
                    .map(Some)
                    .map_err(|e| Rejection::invalid(field, format!("`{field}`: {e}"))),
                None => Ok(None),
            }
        };
        let defaults = Defaults {
            context: split("context", context)?,
            integrations: split("integrations", integrations)?,
            sent_at: opt_timestamp("sentAt", sent_at)?,
        };
        let batch_key = opt_string("writeKey", write_key)?.map(Cow::into_owned);
        let ctx = Ctx {
            expected: None,
            defaults: Some(&defaults),
            seed: IdSeed::Received,
        };

        let mut keys: Vec<Option<Cow<'a, str>>> = Vec::with_capacity(elements.len());
        let mut fields = Vec::with_capacity(16);
        let mut items: Vec<BatchItem<'a, T>> = Vec::with_capacity(elements.len());
        for (i, raw) in elements.into_iter().enumerate() {
            let result = if JsonType::of(raw) != JsonType::Object {
                Err(Rejection::new(
                    RejectCode::NotAnObject,
                    "",
                    format!(
                        "each batch element must be an event object, got {}",
                        JsonType::of(raw).described()
                    ),
                ))
            } else {
                self.event_size(raw.get())
                    .and_then(|text| self.parse_parts(text, &ctx, rx, &mut fields))
                    .map(|(parts, key)| {
                        keys.push(key);
                        finish(parts)
                    })
            };
            if result.is_err() {
                keys.push(None);
            }
            items.push(BatchItem {
                raw,
                result: result.map_err(|r| r.in_batch(i)),
            });
        }

        // One request, one write key: the body's, else the first element's. An element that
        // names another key is refused rather than attributed to the wrong source.
        let write_key = batch_key.or_else(|| keys.iter().flatten().next().map(|k| k.to_string()));
        for (i, (item, key)) in items.iter_mut().zip(keys).enumerate() {
            if let (Some(k), Some(chosen)) = (key, write_key.as_deref())
                && k != chosen
                && item.result.is_ok()
            {
                item.result = Err(Rejection::invalid(
                    "writeKey",
                    "this event names a different `writeKey` than its batch; send events of different sources in separate requests",
                )
                .in_batch(i));
            }
        }
        Ok(ParsedBatch { items, write_key })
    }
}

/// The top-level fields of a batch body that the collector reads.
struct Body<'a> {
    elements: Vec<&'a RawValue>,
    context: Option<&'a RawValue>,
    integrations: Option<&'a RawValue>,
    sent_at: Option<&'a RawValue>,
    write_key: Option<&'a RawValue>,
}

impl<'a> Body<'a> {
    /// One pass for a well-formed body: `batch` is read as its array of elements directly,
    /// instead of skipped as a raw value and parsed again. `None` for anything unusual (not
    /// an object, `batch` not an array, malformed JSON): [`Body::checked`] then produces the
    /// exact rejection. It accepts exactly what `checked` accepts: both are serde_json's
    /// validating readers over the same grammar.
    fn fast(text: &'a str) -> Option<Body<'a>> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Body<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a batch body")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Body<'de>, A::Error> {
                let mut body = Body {
                    elements: Vec::new(),
                    context: None,
                    integrations: None,
                    sent_at: None,
                    write_key: None,
                };
                let mut has_batch = false;
                while let Some(k) = m.next_key::<Cow<'de, str>>()? {
                    let slot = match k.as_ref() {
                        "batch" => {
                            body.elements = m.next_value()?;
                            has_batch = true;
                            continue;
                        }
                        "context" => &mut body.context,
                        "integrations" => &mut body.integrations,
                        "sentAt" => &mut body.sent_at,
                        "writeKey" => &mut body.write_key,
                        _ => {
                            m.next_value::<&RawValue>()?;
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
        struct B<'a>(Body<'a>);
        impl<'de> Deserialize<'de> for B<'de> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_map(V).map(B)
            }
        }
        if !text.trim_start().starts_with('{') {
            return None;
        }
        serde_json::from_str::<B>(text).ok().map(|b| b.0)
    }

    /// Field by field, naming what is wrong with the body.
    fn checked(text: &'a str) -> Result<Body<'a>, Rejection> {
        let bytes = text.as_bytes();
        let fields = split_object(text).map_err(|e| body_error(bytes, e))?;
        let (mut batch, mut context, mut integrations, mut sent_at, mut write_key) =
            (None, None, None, None, None);
        for (k, v) in fields {
            let slot = match k.as_ref() {
                "batch" => &mut batch,
                "context" => &mut context,
                "integrations" => &mut integrations,
                "sentAt" => &mut sent_at,
                "writeKey" => &mut write_key,
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
        Ok(Body {
            elements,
            context,
            integrations,
            sent_at,
            write_key,
        })
    }
}
