//! `/v1/batch`: Segment's batch body `{"batch":[...], "context"?, "integrations"?, "sentAt"?,
//! "writeKey"?}` → one outcome per element.
//!
//! Top-level `context` and `integrations` are shallow-merged into each event's own (the
//! event's keys win) and top-level `sentAt` applies to events without one. A body that is not
//! an object or lacks a `batch` array rejects the whole request; a bad element rejects only
//! itself, with `index` set and its field prefixed `batch[i].`. This module must never drop an
//! element silently: every element yields exactly one [`BatchItem`].

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::batch_body::Body;
use crate::collector::{BatchItem, Collector, ParsedBatch, Received};
use crate::fields::{opt_object, opt_string, opt_timestamp, split_object};
use crate::parts::Parts;
use crate::reject::{JsonType, RejectCode, Rejection};
use crate::segment::{Ctx, Defaults, IdSeed, body_text};

impl Collector {
    /// Parses a `/v1/batch` body. `Err` only when the body as a whole is unusable.
    pub fn parse_batch<'a>(
        &self,
        bytes: &'a [u8],
        rx: &Received,
    ) -> Result<ParsedBatch<'a>, Rejection> {
        self.parse_batch_with(bytes, rx, |parts| parts.to_event(rx.source))
    }

    /// Parses a `/v1/batch` body, finishing each accepted element with `finish` (into an
    /// [`iob_types::Event`], or into canonical JSON for the engine's hot path).
    pub(crate) fn parse_batch_with<'a, T>(
        &self,
        bytes: &'a [u8],
        rx: &Received,
        mut finish: impl FnMut(&Parts<'_>) -> T,
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
            split: pre_split,
            context,
            integrations,
            sent_at,
            write_key,
        } = match Body::fast(text, &self.opts.sentiment_properties) {
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
        let (mut pre_split, counts, noted) = match pre_split {
            Some(s) => (Some(s.fields.into_iter()), s.counts, s.noted),
            None => (None, Vec::new(), Vec::new()),
        };
        for (i, raw) in elements.into_iter().enumerate() {
            let kind = JsonType::of_text(raw);
            let result = if kind != JsonType::Object {
                Err(Rejection::new(
                    RejectCode::NotAnObject,
                    "",
                    format!(
                        "each batch element must be an event object, got {}",
                        kind.described()
                    ),
                ))
            } else {
                // `Parts` is large (~600 bytes): it is built in place and lent to `finish`,
                // never moved through combinators (each move was a copy: 1% of ingest).
                let parsed = match (self.event_size(raw), pre_split.as_mut()) {
                    (Err(r), _) => Err(r),
                    // Split while the body was read: take exactly this element's fields.
                    (Ok(text), Some(all)) => {
                        fields.clear();
                        fields.extend(all.by_ref().take(counts[i]));
                        self.parse_split(text, &ctx, rx, &mut fields, noted[i])
                    }
                    (Ok(text), None) => self.parse_parts(text, &ctx, rx, &mut fields),
                };
                match parsed {
                    Ok((ref parts, key)) => {
                        keys.push(key);
                        Ok(finish(parts))
                    }
                    Err(r) => Err(r),
                }
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
