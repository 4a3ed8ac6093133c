//! Reading the store for one purpose: day by day, compacted files plus tail rows, each person
//! mapped through the purpose's [`PersonDirectory`] (merged ids become the current person;
//! erased or non-consenting persons' rows are dropped) and rows sorted by (ts, seq).
//!
//! Days are decoded on two threads while the caller works through earlier ones, in order.
//! This module must never hand a row to the caller before its person was mapped.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, TimestampMillisecondType, UInt64Type};
use arrow_array::{ArrayRef, BooleanArray, DictionaryArray, RecordBatch, UInt64Array};
use arrow_buffer::{BooleanBufferBuilder, NullBuffer};
use arrow_schema::{DataType, Field, Schema};
use iob_engine::{Engine, PersonDirectory};

use crate::manifest::day_of;
use crate::rows::UNRESOLVED;
use crate::{Columnar, ColumnarError, parquet_io, schema};

/// What to read.
#[derive(Debug, Clone)]
pub struct ScanRequest<'a> {
    /// Columns wanted, by name, in the order wanted.
    pub columns: Vec<String>,
    /// Event time in `[from, to)` (milliseconds), or everything.
    pub range: Option<(i64, i64)>,
    pub directory: &'a PersonDirectory,
    /// Keep rows no identifier resolved (their person is null) if the purpose's default
    /// allows it; else drop them (analyses that count persons).
    pub keep_unresolved: bool,
    /// Text columns as `Dictionary(Int32, Utf8)` ([`schema::EVENTS_DICTIONARY`]): the files'
    /// dictionaries as they are, for the analyses kernels; SQL reads plain `Utf8`.
    pub dictionary_text: bool,
}

/// One day's rows.
#[derive(Debug, Clone)]
pub struct DayRows {
    pub day: i32,
    pub batch: RecordBatch,
}

/// Threads decoding days while the caller works through earlier ones.
const DECODERS: usize = 2;

impl Columnar {
    /// Brings the tail up to the end of the log (compacting first if it grew too long).
    pub fn refresh(&self, engine: &Engine) -> Result<(), ColumnarError> {
        loop {
            let done = self
                .tail
                .lock()
                .refresh(engine, self.options.max_tail_rows)?;
            if done {
                return Ok(());
            }
            self.compact(engine)?;
        }
    }

    /// The output schema of a scan of `columns`.
    pub fn scan_schema(
        columns: &[String],
        dictionary_text: bool,
    ) -> Result<Arc<Schema>, ColumnarError> {
        let all = if dictionary_text {
            &schema::EVENTS_DICTIONARY
        } else {
            &schema::EVENTS
        };
        let fields: Vec<Field> = columns
            .iter()
            .map(|c| {
                let i = schema::column(c).ok_or_else(|| ColumnarError::UnknownColumn(c.clone()))?;
                let f = all.field(i).clone();
                Ok(if i == schema::PERSON {
                    f.with_nullable(true)
                } else {
                    f
                })
            })
            .collect::<Result<_, ColumnarError>>()?;
        Ok(Arc::new(Schema::new(fields)))
    }

    /// Calls `each` for every day with rows, ascending, after refreshing the tail. Days are
    /// decoded on [`DECODERS`] threads and handed over in order.
    pub fn scan<E: From<ColumnarError> + Send>(
        &self,
        engine: &Engine,
        req: &ScanRequest<'_>,
        mut each: impl FnMut(DayRows) -> Result<(), E>,
    ) -> Result<(), E> {
        self.refresh(engine)?;
        let out_schema = Self::scan_schema(&req.columns, req.dictionary_text)?;
        let wanted: Vec<usize> = req
            .columns
            .iter()
            .map(|c| schema::column(c).expect("checked by scan_schema"))
            .collect();
        // Read what is wanted plus what mapping and ordering need.
        let mut read: Vec<usize> = wanted.clone();
        read.extend([schema::SEQ, schema::TS, schema::PERSON]);
        read.sort_unstable();
        read.dedup();
        let manifest = self.manifest();
        let mut tail = self.tail.lock().batches();
        if req.dictionary_text {
            tail = tail.iter().map(as_dictionary_text).collect();
        }
        let mut days = manifest.days();
        for b in &tail {
            let ts = b
                .column(schema::TS)
                .as_primitive::<TimestampMillisecondType>();
            days.extend(ts.values().iter().map(|&t| day_of(t)));
        }
        days.sort_unstable();
        days.dedup();
        if let Some((from, to)) = req.range {
            days.retain(|&d| d >= day_of(from) && d <= day_of(to.saturating_sub(1)));
        }
        let _gate = self.files_gate.read();
        let day = Day {
            manifest: &manifest,
            tail: &tail,
            read: &read,
            wanted: &wanted,
            out_schema: &out_schema,
            req,
        };
        iob_analyses::ordered_parallel(
            &days,
            DECODERS,
            |&d| self.load_day(&day, d).map_err(E::from),
            |rows| match rows {
                Some(rows) => each(rows),
                None => Ok(()),
            },
        )
    }

    fn load_day(&self, ctx: &Day<'_>, day: i32) -> Result<Option<DayRows>, ColumnarError> {
        let (read, req) = (ctx.read, ctx.req);
        let mut parts: Vec<Vec<ArrayRef>> = Vec::new();
        let mut sources = 0;
        for f in ctx.manifest.files_of(day) {
            sources += 1;
            let path = self.dir.join(f.relative_path());
            for b in parquet_io::read(&path, read, req.dictionary_text)? {
                parts.push(b.columns().to_vec());
            }
        }
        let (lo, hi) = (day as i64 * 86_400_000, (day as i64 + 1) * 86_400_000);
        let mut from_tail = false;
        for b in ctx.tail {
            let ts = b
                .column(schema::TS)
                .as_primitive::<TimestampMillisecondType>();
            if !ts.values().iter().any(|&t| t >= lo && t < hi) {
                continue;
            }
            let mask: BooleanArray = ts
                .values()
                .iter()
                .map(|&t| Some(t >= lo && t < hi))
                .collect();
            let b = arrow_select::filter::filter_record_batch(b, &mask).expect("mask fits");
            parts.push(read.iter().map(|&i| b.column(i).clone()).collect());
            from_tail = true;
        }
        if from_tail {
            sources += 1;
        }
        let pos = |col: usize| read.iter().position(|&i| i == col).expect("always read");
        let (p_seq, p_ts, p_person) = (pos(schema::SEQ), pos(schema::TS), pos(schema::PERSON));
        let all = if req.dictionary_text {
            &schema::EVENTS_DICTIONARY
        } else {
            &schema::EVENTS
        };
        let fields: Vec<Field> = read
            .iter()
            .map(|&i| {
                let f = all.field(i).clone();
                if i == schema::PERSON {
                    f.with_nullable(true)
                } else {
                    f
                }
            })
            .collect();
        let read_schema = Arc::new(Schema::new(fields));
        // Only rows of the day inside the range need a time test.
        let range = req.range.filter(|&(from, to)| from > lo || to < hi);
        let mut kept: Vec<RecordBatch> = Vec::new();
        for mut cols in parts {
            let ts = cols[p_ts]
                .as_primitive::<TimestampMillisecondType>()
                .clone();
            let (mapped, keep) = map_persons(
                cols[p_person].as_primitive::<UInt64Type>(),
                ts.values(),
                range,
                req,
            );
            cols[p_person] = Arc::new(mapped);
            let b = RecordBatch::try_new(read_schema.clone(), cols).map_err(|e| {
                ColumnarError::Corrupt {
                    what: format!("day {}", crate::day_name(day)),
                    reason: e.to_string(),
                }
            })?;
            let b = match keep {
                None => b,
                Some(mask) => {
                    arrow_select::filter::filter_record_batch(&b, &mask).expect("mask fits")
                }
            };
            if b.num_rows() > 0 {
                kept.push(b);
            }
        }
        let mut batch = match kept.len() {
            0 => return Ok(None),
            1 => kept.pop().expect("one"),
            _ => arrow_select::concat::concat_batches(&read_schema, &kept).map_err(|e| {
                ColumnarError::Corrupt {
                    what: format!("day {}", crate::day_name(day)),
                    reason: e.to_string(),
                }
            })?,
        };
        // Each file is sorted; tail rows are in arrival order.
        if sources > 1 || from_tail {
            use arrow_ord::sort::{SortColumn, lexsort_to_indices};
            let idx = lexsort_to_indices(
                &[
                    SortColumn {
                        values: batch.column(p_ts).clone(),
                        options: None,
                    },
                    SortColumn {
                        values: batch.column(p_seq).clone(),
                        options: None,
                    },
                ],
                None,
            )
            .expect("sortable");
            batch = arrow_select::take::take_record_batch(&batch, &idx).expect("in range");
        }
        let cols: Vec<ArrayRef> = ctx
            .wanted
            .iter()
            .map(|&w| batch.column(pos(w)).clone())
            .collect();
        let batch = RecordBatch::try_new(ctx.out_schema.clone(), cols).expect("projected schema");
        Ok(Some(DayRows { day, batch }))
    }
}

/// What every day's decoding shares.
struct Day<'a> {
    manifest: &'a crate::Manifest,
    tail: &'a [RecordBatch],
    read: &'a [usize],
    wanted: &'a [usize],
    out_schema: &'a Arc<Schema>,
    req: &'a ScanRequest<'a>,
}

/// A tail batch (plain `Utf8`) with its text columns as dictionaries, like the files read
/// for analyses.
fn as_dictionary_text(b: &RecordBatch) -> RecordBatch {
    let cols: Vec<ArrayRef> = b
        .columns()
        .iter()
        .zip(schema::EVENTS_DICTIONARY.fields())
        .map(|(c, f)| match f.data_type() {
            DataType::Dictionary(..) => {
                let d: DictionaryArray<Int32Type> = c.as_string::<i32>().iter().collect();
                Arc::new(d) as ArrayRef
            }
            _ => c.clone(),
        })
        .collect();
    RecordBatch::try_new(schema::EVENTS_DICTIONARY.clone(), cols).expect("same columns")
}

/// The person column mapped through the directory, and which rows stay (`None`: all of them,
/// no filtering needed): rows of persons the directory drops, unresolved rows unless kept, and
/// rows outside `range`.
fn map_persons(
    persons: &arrow_array::PrimitiveArray<UInt64Type>,
    ts: &[i64],
    range: Option<(i64, i64)>,
    req: &ScanRequest<'_>,
) -> (UInt64Array, Option<BooleanArray>) {
    let dir = req.directory.as_slice();
    let unresolved = req.keep_unresolved && req.directory.unresolved_allowed();
    let n = persons.len();
    let mut values: Vec<u64> = Vec::with_capacity(n);
    let mut keep = BooleanBufferBuilder::new(n);
    let mut valid = BooleanBufferBuilder::new(n);
    let (mut dropped, mut nulls) = (0usize, 0usize);
    for (i, &p) in persons.values().iter().enumerate() {
        let (value, is_valid, kept) = if p == UNRESOLVED {
            (0, false, unresolved)
        } else {
            match dir.get(p as usize) {
                Some(&c) if c != u32::MAX => (c as u64, true, true),
                _ => (0, false, false),
            }
        };
        let kept = kept && range.is_none_or(|(from, to)| ts[i] >= from && ts[i] < to);
        values.push(value);
        valid.append(is_valid);
        keep.append(kept);
        dropped += usize::from(!kept);
        nulls += usize::from(!is_valid);
    }
    let nulls = (nulls > 0).then(|| NullBuffer::new(valid.finish()));
    let mapped = UInt64Array::new(values.into(), nulls);
    let keep = (dropped > 0).then(|| BooleanArray::new(keep.finish(), None));
    (mapped, keep)
}
