//! The CSV column mapping: which columns hold the ids, the event name, the time and the
//! properties, and how to read them. Loads from an `[import.csv]` TOML table (unknown keys are
//! errors) or is built in code. This module only describes and checks a mapping; it must never
//! read data rows.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::error::CollectError;

/// Text encoding of the CSV bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum CsvEncoding {
    #[default]
    #[serde(rename = "utf-8", alias = "utf8", alias = "UTF-8")]
    Utf8,
    /// ISO-8859-1: every byte is the code point of the same value.
    #[serde(
        rename = "latin-1",
        alias = "latin1",
        alias = "iso-8859-1",
        alias = "ISO-8859-1"
    )]
    Latin1,
}

/// The event type every row becomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CsvKind {
    /// `event`/`event_name` is the event name; properties go to `properties`.
    #[default]
    Track,
    /// Properties go to `traits`.
    Identify,
    /// `event`/`event_name` is the page name.
    Page,
    /// `event`/`event_name` is the screen name.
    Screen,
    /// A device or wearable reading: `device_id` (with an optional `device_id_prefix`),
    /// `metric`/`metric_name`, a numeric `value` and an optional `unit`; properties go to the
    /// reading's `tags`. `user_id` links the reading to its person.
    Observe,
}

/// How the `timestamp` column is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TimeUnit {
    /// ISO-8601 / RFC 3339 (`2024-05-01T12:00:00Z`, `2024-05-01 12:00:00`).
    #[default]
    Iso,
    /// Unix seconds, decimals allowed (`1396860669.277`).
    Seconds,
    /// Unix milliseconds.
    Millis,
    /// Unix microseconds.
    Micros,
    /// A strftime-like pattern (`%Y-%m-%d %H:%M:%S`), taken as UTC. `-` drops the padding and
    /// `%I`/`%p` read a 12-hour clock: `%-m/%-d/%Y %-I:%M:%S %p` reads `4/12/2016 1:00:00 PM`.
    Format(String),
}

impl FromStr for TimeUnit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "iso" => Ok(TimeUnit::Iso),
            "s" => Ok(TimeUnit::Seconds),
            "ms" => Ok(TimeUnit::Millis),
            "us" => Ok(TimeUnit::Micros),
            _ => match s.strip_prefix("format:") {
                Some(f) if !f.is_empty() => Ok(TimeUnit::Format(f.to_string())),
                _ => Err(format!(
                    "`{s}` is not a time unit; use \"iso\", \"s\", \"ms\", \"us\" or \"format:<pattern>\" like \"format:%Y-%m-%d %H:%M:%S\""
                )),
            },
        }
    }
}

impl<'de> Deserialize<'de> for TimeUnit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// How a property cell is typed in the event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PropertyType {
    String,
    Number,
    Integer,
    #[serde(alias = "boolean")]
    Bool,
    /// A number if the cell is one (without leading zeros), else a string.
    #[default]
    Auto,
}

/// One column copied into the event's properties (or traits).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyMapping {
    pub column: String,
    /// The property name (default: the column name).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "type")]
    pub ty: PropertyType,
}

impl PropertyMapping {
    pub fn new(column: &str, name: Option<&str>, ty: PropertyType) -> Self {
        PropertyMapping {
            column: column.to_string(),
            name: name.map(str::to_string),
            ty,
        }
    }
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.column)
    }
}

/// A property may be written as a bare column name or as a table.
fn properties<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PropertyMapping>, D::Error> {
    struct One(PropertyMapping);
    impl<'de> Deserialize<'de> for One {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = One;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a column name or a table {column, name, type}")
                }
                fn visit_str<E: de::Error>(self, s: &str) -> Result<One, E> {
                    Ok(One(PropertyMapping::new(s, None, PropertyType::Auto)))
                }
                fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<One, A::Error> {
                    PropertyMapping::deserialize(de::value::MapAccessDeserializer::new(m)).map(One)
                }
            }
            d.deserialize_any(V)
        }
    }
    Ok(Vec::<One>::deserialize(d)?
        .into_iter()
        .map(|o| o.0)
        .collect())
}

fn comma() -> char {
    ','
}
fn yes() -> bool {
    true
}

/// How CSV rows become events.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvMapping {
    /// Field separator, one ASCII character (`"\t"` for TSV). Default `,`.
    #[serde(default = "comma")]
    pub delimiter: char,
    /// Whether the first row names the columns (default true). Without a header, columns are
    /// named by their 0-based index: `"0"`, `"1"`, ...
    #[serde(default = "yes")]
    pub has_header: bool,
    #[serde(default)]
    pub encoding: CsvEncoding,
    #[serde(default)]
    pub kind: CsvKind,
    /// Column of the user id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Column of the anonymous id, used when the user column is empty.
    #[serde(default)]
    pub anonymous_id: Option<String>,
    /// Column holding the event (or page/screen) name.
    #[serde(default)]
    pub event: Option<String>,
    /// A constant event name, when no column holds it.
    #[serde(default)]
    pub event_name: Option<String>,
    /// Column of the event time (default: the import's receive time).
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub time_unit: TimeUnit,
    /// Column of a unique message id (default: derived from the import name and the row).
    #[serde(default)]
    pub message_id: Option<String>,
    /// Columns that identify a row (e.g. `["Id", "ActivityHour"]`): derived message ids then
    /// come from the import name and these cells instead of the line, so rows with the same key
    /// (the overlap of two exports imported under the same name) are stored once.
    #[serde(default)]
    pub message_id_key: Vec<String>,
    #[serde(default, deserialize_with = "properties")]
    pub properties: Vec<PropertyMapping>,
    /// `observe`: column of the device id.
    #[serde(default)]
    pub device_id: Option<String>,
    /// `observe`: a constant put before the `device_id` cell (`"fitbit-"` makes `fitbit-<Id>`).
    #[serde(default)]
    pub device_id_prefix: Option<String>,
    /// `observe`: column holding the metric name.
    #[serde(default)]
    pub metric: Option<String>,
    /// `observe`: a constant metric name, when no column holds it (e.g. `"steps"`).
    #[serde(default)]
    pub metric_name: Option<String>,
    /// `observe`: column of the reading's value (a number; anything else is rejected).
    #[serde(default)]
    pub value: Option<String>,
    /// `observe`: the constant unit of the values (e.g. `"kg"`).
    #[serde(default)]
    pub unit: Option<String>,
}

impl Default for CsvMapping {
    fn default() -> Self {
        CsvMapping {
            delimiter: ',',
            has_header: true,
            encoding: CsvEncoding::Utf8,
            kind: CsvKind::Track,
            user_id: None,
            anonymous_id: None,
            event: None,
            event_name: None,
            timestamp: None,
            time_unit: TimeUnit::Iso,
            message_id: None,
            message_id_key: Vec::new(),
            properties: Vec::new(),
            device_id: None,
            device_id_prefix: None,
            metric: None,
            metric_name: None,
            value: None,
            unit: None,
        }
    }
}

impl CsvMapping {
    /// Loads a mapping from TOML: either a document with an `[import.csv]` table, or the
    /// table's keys at top level.
    pub fn from_toml_str(s: &str) -> Result<Self, CollectError> {
        let table: toml::Table =
            toml::from_str(s).map_err(|e| CollectError::MappingToml(e.to_string()))?;
        let inner = match table.get("import") {
            Some(toml::Value::Table(import)) => match import.get("csv") {
                Some(toml::Value::Table(csv)) => csv.clone(),
                _ => {
                    return Err(CollectError::MappingToml(
                        "the document has an `[import]` table but no `[import.csv]` table".into(),
                    ));
                }
            },
            _ => table,
        };
        inner
            .try_into()
            .map_err(|e: toml::de::Error| CollectError::MappingToml(e.to_string()))
    }

    /// Checks what can be checked without the data: an id column, an event name, a valid
    /// delimiter and time format.
    pub fn check(&self) -> Result<(), CollectError> {
        let bad = |field: &str, reason: &str| {
            Err(CollectError::InvalidMapping {
                field: field.to_string(),
                reason: reason.to_string(),
            })
        };
        if !self.delimiter.is_ascii() || self.delimiter == '"' || self.delimiter == '\n' {
            return bad(
                "delimiter",
                "must be one ASCII character other than '\"' and newline (e.g. \",\" or \"\\t\")",
            );
        }
        if self.kind == CsvKind::Observe {
            self.check_observe()?;
        } else {
            let observe_only = [
                ("device_id", self.device_id.is_some()),
                ("device_id_prefix", self.device_id_prefix.is_some()),
                ("metric", self.metric.is_some()),
                ("metric_name", self.metric_name.is_some()),
                ("value", self.value.is_some()),
                ("unit", self.unit.is_some()),
            ];
            if let Some((field, _)) = observe_only.iter().find(|(_, set)| *set) {
                return bad(
                    field,
                    "is only used by device readings: set kind = \"observe\" or remove it",
                );
            }
            if self.user_id.is_none() && self.anonymous_id.is_none() {
                return bad(
                    "user_id",
                    "is not set: map `user_id` and/or `anonymous_id` to a column, every event needs an identity",
                );
            }
        }
        match (&self.event, &self.event_name) {
            (Some(_), Some(_)) => {
                return bad(
                    "event_name",
                    "is set together with `event`: use a column or a constant, not both",
                );
            }
            (None, None) if self.kind == CsvKind::Track => {
                return bad(
                    "event",
                    "is not set: track events need a name, map `event` to a column or set `event_name`",
                );
            }
            (None, Some(n)) if n.is_empty() => return bad("event_name", "is empty"),
            _ => {}
        }
        if self.message_id.is_some() && !self.message_id_key.is_empty() {
            return bad(
                "message_id_key",
                "is set together with `message_id`: ids come from a column or are derived from key columns, not both",
            );
        }
        if let TimeUnit::Format(f) = &self.time_unit {
            time::format_description::parse_strftime_owned(f).map_err(|e| {
                CollectError::InvalidMapping {
                    field: "time_unit".into(),
                    reason: format!("has an invalid format `{f}`: {e}"),
                }
            })?;
        }
        if !self.has_header {
            for (field, col) in self.columns() {
                if col.parse::<usize>().is_err() {
                    return bad(
                        field,
                        &format!(
                            "is `{col}`, but without a header columns are named by their 0-based index (\"0\", \"1\", ...)"
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// Every `(mapping field, column)` the mapping reads.
    pub(crate) fn columns(&self) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        let singles: [(&'static str, &Option<String>); 8] = [
            ("user_id", &self.user_id),
            ("anonymous_id", &self.anonymous_id),
            ("event", &self.event),
            ("timestamp", &self.timestamp),
            ("message_id", &self.message_id),
            ("device_id", &self.device_id),
            ("metric", &self.metric),
            ("value", &self.value),
        ];
        for (field, col) in singles {
            if let Some(c) = col {
                out.push((field, c.as_str()));
            }
        }
        for p in &self.properties {
            out.push(("properties", p.column.as_str()));
        }
        for k in &self.message_id_key {
            out.push(("message_id_key", k.as_str()));
        }
        out
    }

    /// The `kind = "observe"` rules: a device, a metric and a value; no event name.
    fn check_observe(&self) -> Result<(), CollectError> {
        let bad = |field: &str, reason: String| {
            Err(CollectError::InvalidMapping {
                field: field.to_string(),
                reason,
            })
        };
        if self.device_id.is_none() {
            return bad(
                "device_id",
                "is not set: observe rows need a device, map `device_id` to a column (with `device_id_prefix` for a constant prefix such as \"fitbit-\")".into(),
            );
        }
        if self.device_id_prefix.as_deref() == Some("") {
            return bad("device_id_prefix", "is empty".into());
        }
        match (&self.metric, &self.metric_name) {
            (Some(_), Some(_)) => {
                return bad(
                    "metric_name",
                    "is set together with `metric`: use a column or a constant, not both".into(),
                );
            }
            (None, None) => {
                return bad(
                    "metric",
                    "is not set: observe rows need a metric, map `metric` to a column or set `metric_name` (e.g. \"steps\")".into(),
                );
            }
            (None, Some(n)) if !crate::segment::metric_ok(n) => {
                return bad("metric_name", crate::segment::metric_rule(n));
            }
            _ => {}
        }
        if self.value.is_none() {
            return bad(
                "value",
                "is not set: observe rows need a value, map `value` to the column holding the number".into(),
            );
        }
        if self.unit.as_deref() == Some("") {
            return bad(
                "unit",
                "is empty: remove it or name the unit (e.g. \"kg\")".into(),
            );
        }
        for (field, set) in [("event", &self.event), ("event_name", &self.event_name)] {
            if set.is_some() {
                return bad(
                    field,
                    "is set, but readings have no event name: use `metric`/`metric_name` with kind = \"observe\"".into(),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_import_csv_table_with_all_forms() {
        let m = CsvMapping::from_toml_str(
            r#"
            [import.csv]
            delimiter = "\t"
            has_header = false
            encoding = "latin-1"
            user_id = "0"
            event_name = "Rated"
            timestamp = "3"
            time_unit = "s"
            properties = ["1", { column = "2", name = "rating", type = "integer" }]
            "#,
        )
        .unwrap();
        assert_eq!(m.delimiter, '\t');
        assert!(!m.has_header);
        assert_eq!(m.encoding, CsvEncoding::Latin1);
        assert_eq!(m.time_unit, TimeUnit::Seconds);
        assert_eq!(
            m.properties[0],
            PropertyMapping::new("1", None, PropertyType::Auto)
        );
        assert_eq!(m.properties[1].name(), "rating");
        assert_eq!(m.properties[1].ty, PropertyType::Integer);
        m.check().unwrap();
    }

    #[test]
    fn top_level_keys_also_load() {
        let m = CsvMapping::from_toml_str(
            "user_id = \"u\"\nevent = \"e\"\ntime_unit = \"format:%Y-%m-%d\"",
        )
        .unwrap();
        assert_eq!(m.time_unit, TimeUnit::Format("%Y-%m-%d".into()));
        assert!(m.has_header);
        m.check().unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let e = CsvMapping::from_toml_str("user_id = \"u\"\nevent = \"e\"\nuserid = \"x\"")
            .unwrap_err();
        assert!(e.to_string().contains("userid"), "{e}");
        let e = CsvMapping::from_toml_str("user_id = \"u\"\ntime_unit = \"hours\"").unwrap_err();
        assert!(e.to_string().contains("format:"), "{e}");
        let e = CsvMapping::from_toml_str("properties = [{ column = \"a\", kind = \"x\" }]")
            .unwrap_err();
        assert!(e.to_string().contains("kind"), "{e}");
        let e = CsvMapping::from_toml_str("[import]\nx = 1").unwrap_err();
        assert!(e.to_string().contains("[import.csv]"), "{e}");
    }

    #[test]
    fn check_explains_what_is_missing() {
        let m = CsvMapping {
            event_name: Some("E".into()),
            ..Default::default()
        };
        assert!(m.check().unwrap_err().to_string().contains("anonymous_id"));
        let m = CsvMapping {
            user_id: Some("u".into()),
            ..Default::default()
        };
        assert!(m.check().unwrap_err().to_string().contains("event_name"));
        let m = CsvMapping {
            user_id: Some("u".into()),
            event_name: Some("E".into()),
            has_header: false,
            ..Default::default()
        };
        assert!(m.check().unwrap_err().to_string().contains("0-based index"));
        let m = CsvMapping {
            user_id: Some("0".into()),
            event_name: Some("E".into()),
            time_unit: TimeUnit::Format("%Q%".into()),
            ..Default::default()
        };
        assert!(m.check().unwrap_err().to_string().contains("time_unit"));
    }

    #[test]
    fn observe_mappings_are_checked_field_by_field() {
        let ok = "kind = \"observe\"\nuser_id = \"Id\"\ndevice_id = \"Id\"\ndevice_id_prefix = \"fitbit-\"\nmetric_name = \"steps\"\nvalue = \"StepTotal\"\nunit = \"steps\"";
        let m = CsvMapping::from_toml_str(ok).unwrap();
        assert_eq!(m.kind, CsvKind::Observe);
        m.check().unwrap();
        // no person column is fine: the device is the identity
        let m = CsvMapping { user_id: None, ..m };
        m.check().unwrap();
        let err = |toml: &str| -> String {
            match CsvMapping::from_toml_str(toml) {
                Err(e) => e.to_string(),
                Ok(m) => m.check().unwrap_err().to_string(),
            }
        };
        let without = |key: &str| -> String {
            ok.lines()
                .filter(|l| !l.starts_with(&format!("{key} =")))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let e = err(&without("device_id"));
        assert!(e.contains("`device_id`") && e.contains("not set"), "{e}");
        let e = err(&without("metric_name"));
        assert!(e.contains("`metric`") && e.contains("metric_name"), "{e}");
        let e = err(&without("value"));
        assert!(e.contains("`value`") && e.contains("not set"), "{e}");
        let e = err(&format!("{ok}\nmetric = \"m\""));
        assert!(e.contains("`metric_name`") && e.contains("not both"), "{e}");
        let e = err(&ok.replace("\"steps\"\nvalue", "\"Steps Total\"\nvalue"));
        assert!(e.contains("`metric_name`") && e.contains("a-z"), "{e}");
        let e = err(&format!("{ok}\nevent_name = \"Steps\""));
        assert!(
            e.contains("`event_name`") && e.contains("no event name"),
            "{e}"
        );
        let e = err(&ok.replace("unit = \"steps\"", "unit = \"\""));
        assert!(e.contains("`unit`") && e.contains("empty"), "{e}");
        let e = err(&format!("{ok}\ndevice = \"x\""));
        assert!(e.contains("device"), "{e}");
        // reading fields on another kind
        let e = err("user_id = \"u\"\nevent_name = \"E\"\nvalue = \"v\"");
        assert!(
            e.contains("`value`") && e.contains("kind = \"observe\""),
            "{e}"
        );
        // without a header, reading columns are indices too
        let e = err(&format!("{ok}\nhas_header = false").replace("\"Id\"", "\"0\""));
        assert!(e.contains("`value`") && e.contains("0-based"), "{e}");
    }
}
