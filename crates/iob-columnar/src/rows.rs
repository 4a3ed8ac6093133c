//! Turning derived records (pseudonymized events with their person) into Arrow rows of the
//! [`EVENTS`](crate::schema::EVENTS) schema.
//!
//! Health readings never become rows: the columnar store serves every purpose's queries and
//! only the `health` purpose may see them (they stay in the sealed log). Records without a
//! resolved person are kept under [`UNRESOLVED`] so nothing acknowledged silently disappears
//! from counts; reads show them only to purposes whose default allows it.

use std::sync::Arc;

use arrow_array::builder::{
    Float64Builder, StringBuilder, TimestampMillisecondBuilder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use iob_engine::DerivedPayload;
use iob_types::EventKind;
use serde_json::Value;

use crate::fields::Fields;
use crate::schema::{EVENTS, TEXT_FIELDS};

/// The person column's value for an event no identifier resolved.
pub const UNRESOLVED: u64 = u64::MAX;

/// Column builders for one batch of rows.
pub struct Rows {
    seq: UInt64Builder,
    ts: TimestampMillisecondBuilder,
    received: TimestampMillisecondBuilder,
    person: UInt64Builder,
    kind: StringBuilder,
    event: StringBuilder,
    text: Vec<StringBuilder>,
    metric: StringBuilder,
    value: Float64Builder,
    properties: StringBuilder,
    len: usize,
}

impl Default for Rows {
    fn default() -> Self {
        Rows {
            seq: UInt64Builder::new(),
            ts: TimestampMillisecondBuilder::new().with_timezone("UTC"),
            received: TimestampMillisecondBuilder::new().with_timezone("UTC"),
            person: UInt64Builder::new(),
            kind: StringBuilder::new(),
            event: StringBuilder::new(),
            text: TEXT_FIELDS.iter().map(|_| StringBuilder::new()).collect(),
            metric: StringBuilder::new(),
            value: Float64Builder::new(),
            properties: StringBuilder::new(),
            len: 0,
        }
    }
}

/// A JSON scalar as text (numbers and booleans too: a campaign named `2024` is still a name).
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Rows {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a record; `false` (and nothing added) for a health reading.
    pub fn push(&mut self, r: &DerivedPayload) -> bool {
        if r.health {
            return false;
        }
        self.seq.append_value(r.seq);
        self.ts.append_value(r.at.0);
        self.received.append_value(r.received_at.0);
        self.person
            .append_value(r.person.map_or(UNRESOLVED, |p| p.0));
        self.kind.append_value(r.kind.as_str());
        match Fields::read(&r.payload) {
            Some(f) => self.push_fields(r.kind, &f),
            None => {
                // Unexpected types somewhere: read it as a tree, skipping what does not fit.
                let v: Value = serde_json::from_slice(&r.payload).unwrap_or(Value::Null);
                self.push_tree(r.kind, &v);
            }
        }
        self.len += 1;
        true
    }

    fn push_fields(&mut self, kind: EventKind, f: &Fields<'_>) {
        let name = match kind {
            EventKind::Track => f.event.as_ref(),
            EventKind::Page | EventKind::Screen => f.name.as_ref(),
            _ => None,
        };
        self.event.append_option(name.map(|t| t.0.as_ref()));
        for (text, b) in f.texts().into_iter().zip(&mut self.text) {
            b.append_option(text);
        }
        self.metric
            .append_option(f.metric.as_ref().map(|t| t.0.as_ref()));
        self.value.append_option(f.value());
        self.properties.append_option(f.properties());
    }

    fn push_tree(&mut self, kind: EventKind, v: &Value) {
        let name = match kind {
            EventKind::Track => text(v.get("event")),
            EventKind::Page | EventKind::Screen => text(v.get("name")),
            _ => None,
        };
        self.event.append_option(name);
        for ((_, ptr), b) in TEXT_FIELDS.iter().zip(&mut self.text) {
            b.append_option(text(v.pointer(ptr)));
        }
        self.metric.append_option(text(v.get("metric")));
        self.value
            .append_option(v.get("value").and_then(Value::as_f64));
        match v.get("properties") {
            Some(p @ Value::Object(m)) if !m.is_empty() => {
                self.properties.append_value(p.to_string())
            }
            _ => self.properties.append_null(),
        }
    }

    /// The rows so far as a batch; the builders start over.
    pub fn finish(&mut self) -> RecordBatch {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.seq.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.received.finish()),
            Arc::new(self.person.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.event.finish()),
        ];
        cols.extend(
            self.text
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        cols.push(Arc::new(self.metric.finish()));
        cols.push(Arc::new(self.value.finish()));
        cols.push(Arc::new(self.properties.finish()));
        self.len = 0;
        RecordBatch::try_new(EVENTS.clone(), cols).expect("builders follow the schema")
    }
}
