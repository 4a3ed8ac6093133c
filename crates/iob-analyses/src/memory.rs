//! An in-memory [`EventSource`] for tests, examples and benchmarks.
//!
//! [`MemorySource::from_rows`] sorts rows by (ts, seq) — input order is arrival order, so a row
//! given later with an earlier time is a *late event* and lands in its time position — groups
//! them by day and builds batches of the compacted schema with the chosen string encoding. Scans
//! project each batch to the requested columns plus `person`, `ts` and `event` (the contract
//! also promises `type`; leaving it out unless asked checks that only paths, which asks, reads
//! it), so a kernel that forgets to ask for a column fails its tests instead of reading it by
//! luck.

use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Float64Array, LargeStringArray, RecordBatch, StringArray,
    StringViewArray, TimestampMillisecondArray, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};

use crate::source::{ALL_COLUMNS, ALWAYS, STRING_COLUMNS};
use crate::{AnalysisError, DayChunk, EventSource, day_of};

/// How string columns are encoded in the built batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StringEncoding {
    #[default]
    Utf8,
    LargeUtf8,
    Utf8View,
    Dictionary,
}

impl StringEncoding {
    pub const ALL: [StringEncoding; 4] = [
        StringEncoding::Utf8,
        StringEncoding::LargeUtf8,
        StringEncoding::Utf8View,
        StringEncoding::Dictionary,
    ];

    pub fn data_type(self) -> DataType {
        match self {
            StringEncoding::Utf8 => DataType::Utf8,
            StringEncoding::LargeUtf8 => DataType::LargeUtf8,
            StringEncoding::Utf8View => DataType::Utf8View,
            StringEncoding::Dictionary => {
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
            }
        }
    }

    /// Builds a string column of this encoding.
    pub fn array<'a>(self, values: impl IntoIterator<Item = Option<&'a str>>) -> ArrayRef {
        let v: Vec<Option<&str>> = values.into_iter().collect();
        match self {
            StringEncoding::Utf8 => Arc::new(StringArray::from(v)),
            StringEncoding::LargeUtf8 => Arc::new(LargeStringArray::from(v)),
            StringEncoding::Utf8View => Arc::new(StringViewArray::from(v)),
            StringEncoding::Dictionary => {
                Arc::new(v.into_iter().collect::<DictionaryArray<Int32Type>>())
            }
        }
    }
}

/// The compacted events schema with string columns in `encoding`.
pub fn schema(encoding: StringEncoding) -> Arc<Schema> {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let fields: Vec<Field> = ALL_COLUMNS
        .iter()
        .map(|&name| match name {
            "seq" | "person" => Field::new(name, DataType::UInt64, false),
            "ts" => Field::new(name, ts.clone(), false),
            "received_at" => Field::new(name, ts.clone(), true),
            "value" => Field::new(name, DataType::Float64, true),
            "type" => Field::new(name, encoding.data_type(), false),
            _ => Field::new(name, encoding.data_type(), true),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// One event for [`MemorySource::from_rows`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// 0: assigned from the row's position in the input (its arrival order).
    pub seq: u64,
    pub ts: i64,
    /// 0: same as `ts`.
    pub received_at: i64,
    pub person: u64,
    pub kind: String,
    pub event: Option<String>,
    /// Other string columns by name (`campaign_source`, …; `properties` via [`Row::props`]).
    pub strings: Vec<(String, String)>,
    pub value: Option<f64>,
}

impl Row {
    /// A `track` event.
    pub fn track(person: u64, ts: i64, event: &str) -> Row {
        Row {
            ts,
            person,
            kind: "track".into(),
            event: Some(event.into()),
            ..Row::default()
        }
    }

    /// A `page` event named `name`.
    pub fn page(person: u64, ts: i64, name: &str) -> Row {
        Row {
            ts,
            person,
            kind: "page".into(),
            event: Some(name.into()),
            ..Row::default()
        }
    }

    /// An event of another type, without a name (`identify`, …).
    pub fn other(person: u64, ts: i64, kind: &str) -> Row {
        Row {
            ts,
            person,
            kind: kind.into(),
            ..Row::default()
        }
    }

    /// Sets the string column `column`.
    pub fn with(mut self, column: &str, value: &str) -> Row {
        assert!(
            STRING_COLUMNS.contains(&column),
            "{column} is not a string column"
        );
        self.strings.retain(|(c, _)| c != column);
        self.strings.push((column.into(), value.into()));
        self
    }

    /// Sets the `properties` JSON.
    pub fn props(self, properties: serde_json::Value) -> Row {
        self.with("properties", &properties.to_string())
    }

    /// Sets the `value` column.
    pub fn value(mut self, v: f64) -> Row {
        self.value = Some(v);
        self
    }

    /// Arrives with sequence number `seq`.
    pub fn seq(mut self, seq: u64) -> Row {
        self.seq = seq;
        self
    }

    fn string(&self, column: &str) -> Option<&str> {
        self.strings
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, v)| v.as_str())
    }
}

/// Day chunks held in memory.
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    chunks: Vec<DayChunk>,
}

impl MemorySource {
    /// Wraps chunks already in the contract's order.
    pub fn new(chunks: Vec<DayChunk>) -> Self {
        MemorySource { chunks }
    }

    /// Sorts `rows` by (ts, seq) and builds one batch per day, at most `max_rows` rows per batch.
    pub fn from_rows(rows: Vec<Row>, encoding: StringEncoding, max_rows: usize) -> Self {
        let mut rows: Vec<Row> = rows
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                if r.seq == 0 {
                    r.seq = i as u64 + 1;
                }
                if r.received_at == 0 {
                    r.received_at = r.ts;
                }
                r
            })
            .collect();
        rows.sort_by_key(|r| (r.ts, r.seq));
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < rows.len() {
            let day = day_of(rows[start].ts);
            let mut end = start;
            while end < rows.len() && day_of(rows[end].ts) == day && end - start < max_rows.max(1) {
                end += 1;
            }
            chunks.push(DayChunk {
                day,
                batch: batch(&rows[start..end], encoding),
            });
            start = end;
        }
        MemorySource { chunks }
    }

    pub fn chunks(&self) -> &[DayChunk] {
        &self.chunks
    }

    /// Number of rows held.
    pub fn rows(&self) -> usize {
        self.chunks.iter().map(|c| c.batch.num_rows()).sum()
    }
}

fn batch(rows: &[Row], enc: StringEncoding) -> RecordBatch {
    let schema = schema(enc);
    let columns: Vec<ArrayRef> = ALL_COLUMNS
        .iter()
        .map(|&name| -> ArrayRef {
            match name {
                "seq" => Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.seq))),
                "person" => Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.person))),
                "ts" => Arc::new(
                    TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.ts))
                        .with_timezone("UTC"),
                ),
                "received_at" => Arc::new(
                    TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.received_at))
                        .with_timezone("UTC"),
                ),
                "value" => Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.value))),
                "type" => enc.array(rows.iter().map(|r| Some(r.kind.as_str()))),
                "event" => enc.array(rows.iter().map(|r| r.event.as_deref())),
                other => enc.array(rows.iter().map(|r| r.string(other))),
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns).expect("schema and columns agree")
}

impl EventSource for MemorySource {
    fn scan(
        &self,
        columns: &[&str],
        range: Option<(i64, i64)>,
        f: &mut dyn FnMut(DayChunk) -> Result<(), AnalysisError>,
    ) -> Result<(), AnalysisError> {
        for chunk in &self.chunks {
            let schema = chunk.batch.schema();
            let mut idx = Vec::new();
            for (i, field) in schema.fields().iter().enumerate() {
                let n = field.name().as_str();
                if ALWAYS.contains(&n) || columns.contains(&n) {
                    idx.push(i);
                }
            }
            let mut batch = chunk
                .batch
                .project(&idx)
                .map_err(|e| AnalysisError::Source(e.to_string()))?;
            if let Some((from, to)) = range {
                let ts = crate::columns::Chunk::new(&batch)?.ts.to_vec();
                let lo = ts.partition_point(|&t| t < from);
                let hi = ts.partition_point(|&t| t < to);
                if lo >= hi {
                    continue;
                }
                batch = batch.slice(lo, hi - lo);
            }
            f(DayChunk {
                day: chunk.day,
                batch,
            })?;
        }
        Ok(())
    }
}
