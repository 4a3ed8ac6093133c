//! Typed, zero-copy views of the columns of one batch.
//!
//! String columns arrive as `Utf8`, `LargeUtf8`, `Utf8View` or `Dictionary(Int32, _)`; [`StrCol`]
//! reads all of them without copying, and [`StrCol::codes`] maps a whole column to small
//! integers with one lookup per *distinct* value for dictionaries (the fast path for `event`).
//! Nothing here allocates per row.

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{
    Array, ArrayRef, Float64Array, LargeStringArray, RecordBatch, StringArray, StringViewArray,
};
use arrow_schema::{DataType, TimeUnit};

use crate::AnalysisError;

/// A string column of any supported encoding.
pub enum StrCol<'a> {
    Utf8(&'a StringArray),
    Large(&'a LargeStringArray),
    View(&'a StringViewArray),
    Dict {
        array: &'a dyn Array,
        keys: &'a [i32],
        values: Box<StrCol<'a>>,
    },
}

impl<'a> StrCol<'a> {
    /// Views `array` (the column `name`) as strings.
    pub fn new(name: &str, array: &'a ArrayRef) -> Result<Self, AnalysisError> {
        Self::of(name, array.as_ref())
    }

    fn of(name: &str, array: &'a dyn Array) -> Result<Self, AnalysisError> {
        Ok(match array.data_type() {
            DataType::Utf8 => StrCol::Utf8(array.as_string::<i32>()),
            DataType::LargeUtf8 => StrCol::Large(array.as_string::<i64>()),
            DataType::Utf8View => StrCol::View(array.as_string_view()),
            DataType::Dictionary(k, _) if **k == DataType::Int32 => {
                let dict = array.as_dictionary::<Int32Type>();
                let values = Box::new(Self::of(name, dict.values().as_ref())?);
                StrCol::Dict {
                    array,
                    keys: dict.keys().values(),
                    values,
                }
            }
            other => {
                return Err(AnalysisError::ColumnType {
                    column: name.to_string(),
                    found: other.to_string(),
                    expected: "Utf8, LargeUtf8, Utf8View or Dictionary(Int32, Utf8)".into(),
                });
            }
        })
    }

    fn is_null(&self, i: usize) -> bool {
        match self {
            StrCol::Utf8(a) => a.is_null(i),
            StrCol::Large(a) => a.is_null(i),
            StrCol::View(a) => a.is_null(i),
            StrCol::Dict { array, .. } => array.is_null(i),
        }
    }

    /// The value of row `i`, `None` when null.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&'a str> {
        if self.is_null(i) {
            return None;
        }
        Some(match self {
            StrCol::Utf8(a) => a.value(i),
            StrCol::Large(a) => a.value(i),
            StrCol::View(a) => a.value(i),
            StrCol::Dict { keys, values, .. } => return values.get(keys[i] as usize),
        })
    }

    /// Fills `out` with `code(value)` per row (`code(None)` for nulls). For dictionaries `code`
    /// runs once per dictionary value, not per row.
    pub fn codes(&self, out: &mut Vec<u32>, code: &mut dyn FnMut(Option<&str>) -> u32) {
        out.clear();
        match self {
            StrCol::Dict {
                array,
                keys,
                values,
            } => {
                let n = values.len();
                let mut per_value = Vec::with_capacity(n);
                for v in 0..n {
                    per_value.push(code(values.get(v)));
                }
                let null_code = code(None);
                match array.logical_nulls() {
                    Some(nulls) => out.extend(keys.iter().enumerate().map(|(i, &k)| {
                        if nulls.is_null(i) {
                            null_code
                        } else {
                            per_value[k as usize]
                        }
                    })),
                    None => out.extend(keys.iter().map(|&k| per_value[k as usize])),
                }
            }
            _ => {
                for i in 0..self.len() {
                    out.push(code(self.get(i)));
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        match self {
            StrCol::Utf8(a) => a.len(),
            StrCol::Large(a) => a.len(),
            StrCol::View(a) => a.len(),
            StrCol::Dict { keys, .. } => keys.len(),
        }
    }
}

/// The columns every kernel reads, plus access to the others by name.
pub struct Chunk<'a> {
    pub batch: &'a RecordBatch,
    pub person: &'a [u64],
    pub ts: &'a [i64],
    /// `type`, when the batch has it (only paths read it, and ask for it).
    pub kind: Option<StrCol<'a>>,
    pub event: StrCol<'a>,
}

/// A named column of a batch.
pub fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, AnalysisError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| AnalysisError::MissingColumn {
            column: name.into(),
        })
}

fn type_error(name: &str, found: &DataType, expected: &str) -> AnalysisError {
    AnalysisError::ColumnType {
        column: name.into(),
        found: found.to_string(),
        expected: expected.into(),
    }
}

impl<'a> Chunk<'a> {
    pub fn new(batch: &'a RecordBatch) -> Result<Self, AnalysisError> {
        let person = column(batch, "person")?;
        if person.null_count() > 0 {
            return Err(AnalysisError::Source("column `person` has nulls".into()));
        }
        let person = match person.data_type() {
            DataType::UInt64 => person
                .as_primitive::<arrow_array::types::UInt64Type>()
                .values(),
            t => return Err(type_error("person", t, "UInt64")),
        };
        let ts = column(batch, "ts")?;
        if ts.null_count() > 0 {
            return Err(AnalysisError::Source("column `ts` has nulls".into()));
        }
        let ts: &[i64] = match ts.data_type() {
            DataType::Timestamp(TimeUnit::Millisecond, _) => ts
                .as_primitive::<arrow_array::types::TimestampMillisecondType>()
                .values(),
            DataType::Int64 => ts.as_primitive::<arrow_array::types::Int64Type>().values(),
            t => return Err(type_error("ts", t, "Timestamp(Millisecond, \"UTC\")")),
        };
        Ok(Chunk {
            batch,
            person,
            ts,
            kind: batch
                .column_by_name("type")
                .map(|c| StrCol::new("type", c))
                .transpose()?,
            event: StrCol::new("event", column(batch, "event")?)?,
        })
    }

    /// The string column `name`.
    pub fn strings(&self, name: &str) -> Result<StrCol<'a>, AnalysisError> {
        StrCol::new(name, column(self.batch, name)?)
    }

    /// The Float64 column `name`.
    pub fn floats(&self, name: &str) -> Result<&'a Float64Array, AnalysisError> {
        let c = column(self.batch, name)?;
        match c.data_type() {
            DataType::Float64 => Ok(c.as_primitive::<arrow_array::types::Float64Type>()),
            t => Err(type_error(name, t, "Float64")),
        }
    }

    /// The path label of row `i`: the event name, or the type when the row has none.
    pub fn label(&self, i: usize) -> &'a str {
        self.event
            .get(i)
            .or_else(|| self.kind.as_ref().and_then(|k| k.get(i)))
            .unwrap_or("")
    }
}

/// Checks the stream's time order across rows and chunks.
#[derive(Default)]
pub struct OrderCheck {
    last_day: Option<i32>,
    last_ts: i64,
}

impl OrderCheck {
    pub fn check(&mut self, day: i32, ts: &[i64]) -> Result<(), AnalysisError> {
        if let Some(d) = self.last_day
            && day < d
        {
            return Err(AnalysisError::Order(format!("day {day} after day {d}")));
        }
        if self.last_day.is_none() {
            self.last_ts = i64::MIN;
        }
        self.last_day = Some(day);
        let mut prev = self.last_ts;
        for &t in ts {
            if t < prev {
                return Err(AnalysisError::Order(format!(
                    "event time {t} after {prev} within day {day} (rows must be sorted by (ts, seq))"
                )));
            }
            prev = t;
        }
        self.last_ts = prev;
        Ok(())
    }
}
