//! Properties: what filters and breakdowns read from a row.
//!
//! A property is a column of the compacted schema (`campaign_source`, `value`, …) or
//! `properties.KEY[.KEY…]`, a dotted path into the event's `properties` JSON object. JSON is
//! parsed only for the rows a kernel asks about (rows already matched by event name), never for
//! the whole batch. Reading a property never fails on data: a missing column value, a missing
//! key or unparsable JSON reads as [`Val::Missing`].

use std::borrow::Cow;

use arrow_array::Array;
use serde::de::{
    Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::value::RawValue;

use crate::columns::{Chunk, StrCol};
use crate::source::{ALL_COLUMNS, STRING_COLUMNS};
use crate::{AnalysisError, DAY_MS};

/// Where a property's value lives.
#[derive(Debug, Clone, PartialEq)]
pub enum Property {
    /// A column of the schema; `numeric` for `value`, `seq`, `person`, `ts`, `received_at`.
    Column { name: String, numeric: bool },
    /// A dotted path into the `properties` JSON object.
    Json { path: Vec<String> },
}

impl Property {
    /// Parses `text` (the request member `field`).
    pub fn parse(field: &str, text: &str) -> Result<Self, AnalysisError> {
        if let Some(rest) = text.strip_prefix("properties.") {
            let path: Vec<String> = rest.split('.').map(str::to_string).collect();
            if path.iter().any(String::is_empty) {
                return Err(AnalysisError::request(
                    field,
                    format!(
                        "`{text}` has an empty key; write `properties.KEY` or `properties.A.B`"
                    ),
                ));
            }
            return Ok(Property::Json { path });
        }
        if !ALL_COLUMNS.contains(&text) {
            return Err(AnalysisError::request(
                field,
                format!(
                    "unknown property `{text}`: use a column ({}) or `properties.KEY`",
                    ALL_COLUMNS.join(", ")
                ),
            ));
        }
        let numeric = !STRING_COLUMNS.contains(&text) && text != "type" && text != "event";
        Ok(Property::Column {
            name: text.to_string(),
            numeric,
        })
    }

    /// The column the source must provide for this property.
    pub fn column(&self) -> &str {
        match self {
            Property::Column { name, .. } => name,
            Property::Json { .. } => "properties",
        }
    }

    /// Binds the property to one batch.
    pub fn bind<'a>(&'a self, chunk: &Chunk<'a>) -> Result<Reader<'a>, AnalysisError> {
        Ok(match self {
            Property::Json { path } => Reader::Json {
                col: chunk.strings("properties")?,
                path,
            },
            Property::Column {
                name,
                numeric: false,
            } => Reader::Str(chunk.strings(name)?),
            Property::Column {
                name,
                numeric: true,
            } => match name.as_str() {
                "person" => Reader::U64(chunk.person),
                "ts" => Reader::I64(chunk.ts),
                "value" => Reader::F64(chunk.floats(name)?),
                other => Reader::Other(crate::columns::column(chunk.batch, other)?.clone()),
            },
        })
    }
}

/// A property's value in one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Missing,
    Str(Cow<'a, str>),
    Num(f64),
    Bool(bool),
    /// A JSON array or object, as JSON text.
    Other(String),
}

impl Val<'_> {
    /// The breakdown label of the value (`None` when missing). Whole numbers print without a
    /// fraction (`3`, not `3.0`) whether they come from a Float64 column or JSON.
    pub fn label(&self) -> Option<String> {
        match self {
            Val::Missing => None,
            Val::Str(s) => Some(s.to_string()),
            Val::Num(x) => Some(format_num(*x)),
            Val::Bool(b) => Some(b.to_string()),
            Val::Other(s) => Some(s.clone()),
        }
    }

    /// The value as a number: numbers, and strings that parse as one.
    pub fn as_num(&self) -> Option<f64> {
        match self {
            Val::Num(x) => Some(*x),
            Val::Str(s) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
            _ => None,
        }
    }
}

/// Formats a number like JSON would, without a trailing `.0` for whole numbers.
pub fn format_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// A property bound to one batch.
pub enum Reader<'a> {
    Str(StrCol<'a>),
    F64(&'a arrow_array::Float64Array),
    U64(&'a [u64]),
    I64(&'a [i64]),
    Other(arrow_array::ArrayRef),
    Json { col: StrCol<'a>, path: &'a [String] },
}

impl<'a> Reader<'a> {
    /// The value of row `i`.
    pub fn get(&self, i: usize) -> Val<'a> {
        match self {
            Reader::Str(c) => c
                .get(i)
                .map_or(Val::Missing, |s| Val::Str(Cow::Borrowed(s))),
            Reader::F64(a) => {
                if a.is_null(i) {
                    Val::Missing
                } else {
                    Val::Num(a.value(i))
                }
            }
            Reader::U64(v) => Val::Num(v[i] as f64),
            Reader::I64(v) => Val::Num(v[i] as f64),
            Reader::Other(a) => other_value(a, i),
            Reader::Json { col, path } => match col.get(i) {
                None => Val::Missing,
                Some(text) => json_path(text, path),
            },
        }
    }
}

fn other_value(a: &arrow_array::ArrayRef, i: usize) -> Val<'static> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{TimestampMillisecondType, UInt64Type};
    if a.is_null(i) {
        return Val::Missing;
    }
    match a.data_type() {
        arrow_schema::DataType::UInt64 => Val::Num(a.as_primitive::<UInt64Type>().value(i) as f64),
        arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, _) => {
            Val::Num(a.as_primitive::<TimestampMillisecondType>().value(i) as f64)
        }
        _ => Val::Missing,
    }
}

/// Reads `path` from the JSON object `text`, without building a tree: other members are
/// skipped by the parser, the value found is borrowed from `text` when it has no escapes.
pub fn json_path<'a>(text: &'a str, path: &[String]) -> Val<'a> {
    let mut de = serde_json::Deserializer::from_str(text);
    Seek(path).deserialize(&mut de).unwrap_or(Val::Missing)
}

struct Seek<'p>(&'p [String]);

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = Val<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Val<'de>, D::Error> {
        if self.0.is_empty() {
            let raw: &'de RawValue = Deserialize::deserialize(d)?;
            return Ok(leaf(raw.get()));
        }
        d.deserialize_any(self)
    }
}

fn leaf(raw: &str) -> Val<'_> {
    match raw.as_bytes().first() {
        None | Some(b'n') => Val::Missing,
        Some(b't') => Val::Bool(true),
        Some(b'f') => Val::Bool(false),
        Some(b'{') | Some(b'[') => Val::Other(raw.to_string()),
        Some(b'"') => {
            let inner = &raw[1..raw.len() - 1];
            if inner.contains('\\') {
                serde_json::from_str::<String>(raw)
                    .map_or(Val::Missing, |s| Val::Str(Cow::Owned(s)))
            } else {
                Val::Str(Cow::Borrowed(inner))
            }
        }
        Some(_) => raw.parse::<f64>().map_or(Val::Missing, Val::Num),
    }
}

/// Compares a map key with the wanted one without allocating.
struct KeyIs<'p>(&'p str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = Val<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val<'de>, A::Error> {
        let mut found = Val::Missing;
        let mut done = false;
        while let Some(hit) = map.next_key_seed(KeyIs(&self.0[0]))? {
            if hit && !done {
                found = map.next_value_seed(Seek(&self.0[1..]))?;
                done = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Val::Missing)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Val<'de>, E> {
        Ok(Val::Missing)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Val<'de>, E> {
        Ok(Val::Missing)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Val<'de>, E> {
        Ok(Val::Missing)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Val<'de>, E> {
        Ok(Val::Missing)
    }
    fn visit_str<E>(self, _: &str) -> Result<Val<'de>, E> {
        Ok(Val::Missing)
    }
    fn visit_unit<E>(self) -> Result<Val<'de>, E> {
        Ok(Val::Missing)
    }
}

/// The UTC calendar date `YYYY-MM-DD` of a day number.
pub fn date_label(day: i64) -> String {
    let date = time::Date::from_julian_day((day + 2_440_588) as i32).expect("day in range");
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// `YYYY-MM-DDTHH:00:00Z` of an hour number (hours since the epoch).
pub fn hour_label(hour: i64) -> String {
    let day = (hour * 3_600_000).div_euclid(DAY_MS);
    format!("{}T{:02}:00:00Z", date_label(day), hour.rem_euclid(24))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(str::to_string).collect()
    }

    #[test]
    fn json_paths_read_typed_values() {
        let t = r#"{"a":1.5,"b":"x\"y","c":{"d":[1,2],"e":"plain"},"f":null,"g":true,"a":9}"#;
        assert_eq!(
            json_path(t, &path("a")),
            Val::Num(1.5),
            "first duplicate wins"
        );
        assert_eq!(
            json_path(t, &path("b")),
            Val::Str(Cow::Owned("x\"y".into()))
        );
        assert_eq!(json_path(t, &path("c.e")), Val::Str(Cow::Borrowed("plain")));
        assert_eq!(json_path(t, &path("c.d")), Val::Other("[1,2]".into()));
        assert_eq!(json_path(t, &path("f")), Val::Missing);
        assert_eq!(json_path(t, &path("g")), Val::Bool(true));
        assert_eq!(json_path(t, &path("a.b")), Val::Missing);
        assert_eq!(json_path(t, &path("zz")), Val::Missing);
        assert_eq!(json_path("not json", &path("a")), Val::Missing);
        assert_eq!(json_path("[1]", &path("a")), Val::Missing);
    }
}
