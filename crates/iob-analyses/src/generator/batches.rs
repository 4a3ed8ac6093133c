//! Generated journeys as Arrow batches of the compacted schema, for kernel benchmarks and the
//! Parquet answer check: what compaction would produce (sorted by (ts, seq) within each day,
//! `seq` = emission order + 1, person = generator person id).

use std::sync::Arc;

use arrow_array::builder::{StringBuilder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, Float64Array, RecordBatch, TimestampMillisecondArray, UInt64Array};

use super::{CAMPAIGNS, DEVICES, GenEvent, JourneyConfig, Kind, for_each_event};
use crate::memory::{StringEncoding, schema};
use crate::{DayChunk, MemorySource, day_of};

/// All events of `cfg` sorted by (ts, seq), as day chunks of at most `max_rows` rows. String
/// columns are dictionaries except `page_path`, `page_referrer` and `properties`, which are
/// plain Utf8 (`properties` null unless `with_properties`).
pub fn journey_batches(
    cfg: &JourneyConfig,
    with_properties: bool,
    max_rows: usize,
) -> Vec<DayChunk> {
    let mut chunks = Vec::new();
    journey_days(cfg, with_properties, max_rows, |c| chunks.push(c));
    chunks
}

/// Like [`journey_batches`], handing each chunk to `f` as soon as it is built (memory: the
/// compact events of the whole set, ~56 bytes each, plus one chunk).
pub fn journey_days(
    cfg: &JourneyConfig,
    with_properties: bool,
    max_rows: usize,
    mut f: impl FnMut(DayChunk),
) {
    let mut events: Vec<GenEvent> = Vec::new();
    for_each_event(cfg, |e| events.push(e.clone()));
    events.sort_unstable_by_key(|e| (e.ts, e.n));
    let mut start = 0;
    while start < events.len() {
        let day = day_of(events[start].ts);
        let mut end = start;
        while end < events.len() && end - start < max_rows.max(1) && day_of(events[end].ts) == day {
            end += 1;
        }
        f(DayChunk {
            day,
            batch: batch(&events[start..end], with_properties),
        });
        start = end;
    }
}

/// [`journey_batches`] as a [`MemorySource`].
pub fn journey_source(cfg: &JourneyConfig, with_properties: bool, max_rows: usize) -> MemorySource {
    MemorySource::new(journey_batches(cfg, with_properties, max_rows))
}

type Dict = StringDictionaryBuilder<Int32Type>;

fn dict<'a>(it: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    let mut b = Dict::new();
    for v in it {
        b.append_option(v);
    }
    Arc::new(b.finish())
}

fn batch(ev: &[GenEvent], with_properties: bool) -> RecordBatch {
    let base = schema(StringEncoding::Dictionary);
    let mut path = StringBuilder::new();
    let mut referrer = StringBuilder::new();
    let mut props = StringBuilder::new();
    let mut s = String::new();
    let mut buf = Vec::new();
    for e in ev {
        e.path(&mut s);
        path.append_value(&s);
        referrer.append_option((e.campaign != 0).then_some("https://www.google.com/"));
        if with_properties {
            buf.clear();
            e.properties(&mut buf);
            props.append_value(std::str::from_utf8(&buf).expect("ascii"));
        } else {
            props.append_null();
        }
    }
    let campaign =
        |i: usize| move |e: &GenEvent| CAMPAIGNS[e.campaign as usize].map(|c| [c.0, c.1, c.2][i]);
    let mut fields: Vec<arrow_schema::FieldRef> = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for field in base.fields() {
        let col: ArrayRef = match field.name().as_str() {
            "seq" => Arc::new(UInt64Array::from_iter_values(ev.iter().map(|e| e.n + 1))),
            "person" => Arc::new(UInt64Array::from_iter_values(ev.iter().map(|e| e.person))),
            "ts" => Arc::new(
                TimestampMillisecondArray::from_iter_values(ev.iter().map(|e| e.ts))
                    .with_timezone("UTC"),
            ),
            "received_at" => Arc::new(
                TimestampMillisecondArray::from_iter_values(ev.iter().map(|e| e.received_at))
                    .with_timezone("UTC"),
            ),
            "type" => dict(ev.iter().map(|e| Some(e.kind_str()))),
            "event" => dict(ev.iter().map(|e| Some(e.name()))),
            "source" => dict(ev.iter().map(|_| Some("web"))),
            "page_path" => Arc::new(path.finish()),
            "page_title" => dict(ev.iter().map(|e| Some(e.name()))),
            "page_referrer" => Arc::new(referrer.finish()),
            "campaign_source" => dict(ev.iter().map(campaign(0))),
            "campaign_medium" => dict(ev.iter().map(campaign(1))),
            "campaign_name" => dict(ev.iter().map(campaign(2))),
            "device_type" => dict(ev.iter().map(|e| Some(DEVICES[e.device as usize].0))),
            "os_name" => dict(ev.iter().map(|e| Some(DEVICES[e.device as usize].1))),
            "browser" => dict(ev.iter().map(|e| Some(DEVICES[e.device as usize].2))),
            "locale" => dict(ev.iter().map(|_| Some("en-GB"))),
            "app_name" | "metric" | "unit" => dict(ev.iter().map(|_| None)),
            "value" => Arc::new(Float64Array::from_iter(ev.iter().map(|e| match e.kind {
                Kind::OrderCompleted => {
                    Some((e.price_cents as u64 * e.quantity as u64) as f64 / 100.0)
                }
                _ => None,
            }))),
            "properties" => {
                let a: ArrayRef = Arc::new(props.finish());
                fields.push(Arc::new(arrow_schema::Field::new(
                    "properties",
                    arrow_schema::DataType::Utf8,
                    true,
                )));
                cols.push(a);
                continue;
            }
            other => unreachable!("column {other}"),
        };
        fields.push(Arc::new(arrow_schema::Field::new(
            field.name(),
            col.data_type().clone(),
            field.is_nullable(),
        )));
        cols.push(col);
    }
    RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), cols).expect("columns match")
}
