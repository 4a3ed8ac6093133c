//! `/v1/batch`: Segment's batch body `{"batch":[...], "context"?, "integrations"?, "sentAt"?,
//! "writeKey"?}` → one outcome per element.
//!
//! Top-level `context` and `integrations` are shallow-merged into each event's own (the
//! event's keys win) and top-level `sentAt` applies to events without one. A body that is not
//! an object or lacks a `batch` array rejects the whole request; a bad element rejects only
//! itself, with `index` set and its field prefixed `batch[i].`. This module must never drop an
//! element silently: every element yields exactly one [`BatchItem`].

use serde_json::value::RawValue;

use crate::collector::{BatchItem, Collector, ParsedBatch, Received};
use crate::fields::{non_null, opt_object, opt_string, opt_timestamp, split_object};
use crate::reject::{JsonType, RejectCode, Rejection};
use crate::segment::{Ctx, Defaults, IdSeed, body_error, body_text};

impl Collector {
    /// Parses a `/v1/batch` body. `Err` only when the body as a whole is unusable.
    pub fn parse_batch<'a>(
        &self,
        bytes: &'a [u8],
        rx: &Received,
    ) -> Result<ParsedBatch<'a>, Rejection> {
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
        let fields = split_object(body_text(bytes)?).map_err(|e| body_error(bytes, e))?;
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
        let batch_key = opt_string("writeKey", write_key)?;
        let ctx = Ctx {
            expected: None,
            defaults: Some(&defaults),
            seed: IdSeed::Received,
        };

        let mut keys: Vec<Option<String>> = Vec::with_capacity(elements.len());
        let mut items: Vec<BatchItem<'a>> = Vec::with_capacity(elements.len());
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
                self.parse_one(raw.get().as_bytes(), &ctx, rx)
                    .map(|(event, key)| {
                        keys.push(key);
                        event
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
        let write_key = batch_key.or_else(|| keys.iter().flatten().next().cloned());
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
