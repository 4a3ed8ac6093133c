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
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer};
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
        let fields: Vec<Field> = columns
            .iter()
            .map(|c| {
                let i = schema::column(c).ok_or_else(|| ColumnarError::UnknownColumn(c.clone()))?;
                Ok(scan_field(i, dictionary_text))
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
        let tail = self.tail.lock().batches();
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
        let req = ctx.req;
        let (lo, hi) = (day as i64 * 86_400_000, (day as i64 + 1) * 86_400_000);
        let tail_rows: Vec<RecordBatch> = ctx
            .tail
            .iter()
            .filter_map(|b| {
                let ts = b
                    .column(schema::TS)
                    .as_primitive::<TimestampMillisecondType>();
                if !ts.values().iter().any(|&t| t >= lo && t < hi) {
                    return None;
                }
                let mask: BooleanArray = ts
                    .values()
                    .iter()
                    .map(|&t| Some(t >= lo && t < hi))
                    .collect();
                let rows = arrow_select::filter::filter_record_batch(b, &mask).expect("mask fits");
                // Dictionaries for the day's rows only, on the decoding thread.
                Some(match req.dictionary_text {
                    true => as_dictionary_text(&rows),
                    false => rows,
                })
            })
            .collect();
        let files: Vec<_> = ctx.manifest.files_of(day).collect();
        let from_tail = !tail_rows.is_empty();
        // Each file is sorted; tail rows are in arrival order. A day of one file needs no
        // sort, so no `seq` either (an incompressible column: an eighth of the bytes read).
        let sort = files.len() > 1 || from_tail;
        let read: Vec<usize> = if sort || ctx.wanted.contains(&schema::SEQ) {
            ctx.read.to_vec()
        } else {
            ctx.read
                .iter()
                .copied()
                .filter(|&i| i != schema::SEQ)
                .collect()
        };
        let read = &read[..];
        let mut parts: Vec<Vec<ArrayRef>> = Vec::new();
        for f in &files {
            let path = self.dir.join(f.relative_path());
            for b in parquet_io::read(&path, read, req.dictionary_text)? {
                parts.push(b.columns().to_vec());
            }
        }
        for b in &tail_rows {
            parts.push(read.iter().map(|&i| b.column(i).clone()).collect());
        }
        let pos = |col: usize| read.iter().position(|&i| i == col);
        let must = |col: usize| pos(col).expect("always read");
        let (p_ts, p_person) = (must(schema::TS), must(schema::PERSON));
        let fields: Vec<Field> = read
            .iter()
            .map(|&i| scan_field(i, req.dictionary_text))
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
                cols[p_person].as_primitive::<UInt64Type>().values(),
                ts.values(),
                range,
                req.directory.as_slice(),
                req.keep_unresolved && req.directory.unresolved_allowed(),
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
        if let Some(p_seq) = pos(schema::SEQ).filter(|_| sort) {
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
            .map(|&w| batch.column(must(w)).clone())
            .collect();
        let batch = RecordBatch::try_new(ctx.out_schema.clone(), cols).expect("projected schema");
        Ok(Some(DayRows { day, batch }))
    }
}

/// Column `i` of the events schema as a scan returns it: text as dictionaries when asked, and
/// `person` nullable (unresolved rows, when kept, have none).
fn scan_field(i: usize, dictionary_text: bool) -> Field {
    let all = if dictionary_text {
        &schema::EVENTS_DICTIONARY
    } else {
        &schema::EVENTS
    };
    let f = all.field(i).clone();
    if i == schema::PERSON {
        f.with_nullable(true)
    } else {
        f
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
/// rows outside `range`. Bitmaps are built a 64-bit word at a time.
/// `dir` is the purpose's directory; `unresolved` whether unresolved rows stay.
fn map_persons(
    persons: &[u64],
    ts: &[i64],
    range: Option<(i64, i64)>,
    dir: &[u32],
    unresolved: bool,
) -> (UInt64Array, Option<BooleanArray>) {
    let n = persons.len();
    let mut values: Vec<u64> = vec![0; n];
    let mut valid_words: Vec<u64> = Vec::with_capacity(n.div_ceil(64));
    let mut keep_words: Vec<u64> = Vec::with_capacity(n.div_ceil(64));
    let (mut all_valid, mut all_kept) = (true, true);
    for (w, (chunk, out)) in persons.chunks(64).zip(values.chunks_mut(64)).enumerate() {
        let (mut valid, mut keep) = (0u64, 0u64);
        for (b, (&p, o)) in chunk.iter().zip(out.iter_mut()).enumerate() {
            let (is_valid, kept) = if p == UNRESOLVED {
                (false, unresolved)
            } else {
                match dir.get(p as usize) {
                    Some(&c) if c != u32::MAX => {
                        *o = c as u64;
                        (true, true)
                    }
                    _ => (false, false),
                }
            };
            let kept = kept
                && range.is_none_or(|(from, to)| {
                    let t = ts[w * 64 + b];
                    t >= from && t < to
                });
            valid |= (is_valid as u64) << b;
            keep |= (kept as u64) << b;
        }
        let full = if chunk.len() == 64 {
            u64::MAX
        } else {
            (1u64 << chunk.len()) - 1
        };
        all_valid &= valid == full;
        all_kept &= keep == full;
        valid_words.push(valid);
        keep_words.push(keep);
    }
    let bits = |words: Vec<u64>| BooleanBuffer::new(Buffer::from_vec(words), 0, n);
    let nulls = (!all_valid).then(|| NullBuffer::new(bits(valid_words)));
    let mapped = UInt64Array::new(values.into(), nulls);
    let keep = (!all_kept).then(|| BooleanArray::new(bits(keep_words), None));
    (mapped, keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use proptest::prelude::*;

    proptest! {
        /// The word-at-a-time mapping agrees with the rule applied row by row.
        #[test]
        fn map_persons_matches_the_row_by_row_rule(
            rows in proptest::collection::vec((0u64..12, 0i64..100), 0..300),
            dir in proptest::collection::vec(prop_oneof![Just(u32::MAX), 0u32..10], 10),
            unresolved in any::<bool>(),
            range in proptest::option::of((0i64..50, 50i64..100)),
        ) {
            // Person 11 is unresolved; 10 is past the directory's end.
            let persons: Vec<u64> = rows.iter().map(|r| if r.0 == 11 { UNRESOLVED } else { r.0 }).collect();
            let ts: Vec<i64> = rows.iter().map(|r| r.1).collect();
            let (mapped, keep) = map_persons(&persons, &ts, range, &dir, unresolved);
            prop_assert_eq!(mapped.len(), rows.len());
            for (i, (&p, &t)) in persons.iter().zip(&ts).enumerate() {
                let person = match p {
                    UNRESOLVED => None,
                    p => dir.get(p as usize).filter(|&&c| c != u32::MAX).map(|&c| c as u64),
                };
                let in_range = range.is_none_or(|(f, to)| t >= f && t < to);
                let kept = in_range && (person.is_some() || (p == UNRESOLVED && unresolved));
                prop_assert_eq!(mapped.is_valid(i).then(|| mapped.value(i)), person);
                prop_assert_eq!(keep.as_ref().is_none_or(|k| k.value(i)), kept);
            }
        }
    }
}
