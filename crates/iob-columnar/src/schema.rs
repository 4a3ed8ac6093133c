//! The columns of the compacted `events` table and the on-disk format version.
//!
//! Typed columns for the Segment common fields analyses group and filter by; everything else
//! an event carries stays queryable in `properties` (the properties object as JSON text).
//! Identifiers never appear: the person is the engine's person id at compaction time (mapped
//! to the current, consenting person at read time), and pseudonymized payloads are the source.
//! Columns are only ever added at the end; removing or retyping one is a new format version.

use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Version of the columnar layout (manifest and files); a manifest of another version is
/// refused by name and the store is rebuilt from the log.
pub const FORMAT_VERSION: u32 = 1;

/// Text columns taken from the event (name, JSON pointer).
pub const TEXT_FIELDS: [(&str, &str); 13] = [
    ("source", "/iobSource"),
    ("page_path", "/context/page/path"),
    ("page_title", "/context/page/title"),
    ("page_referrer", "/context/page/referrer"),
    ("campaign_source", "/context/campaign/source"),
    ("campaign_medium", "/context/campaign/medium"),
    ("campaign_name", "/context/campaign/name"),
    ("device_type", "/iobEnrichment/userAgent/device"),
    ("os_name", "/iobEnrichment/userAgent/os"),
    ("browser", "/iobEnrichment/userAgent/browser"),
    ("app_name", "/context/app/name"),
    ("locale", "/context/locale"),
    ("unit", "/unit"),
];

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// The schema of every compacted file and of the in-memory tail.
pub static EVENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        Field::new("seq", DataType::UInt64, false),
        Field::new("ts", ts(), false),
        Field::new("received_at", ts(), false),
        Field::new("person", DataType::UInt64, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("event", DataType::Utf8, true),
    ];
    fields.extend(
        TEXT_FIELDS
            .iter()
            .map(|(name, _)| Field::new(*name, DataType::Utf8, true)),
    );
    fields.push(Field::new("metric", DataType::Utf8, true));
    fields.push(Field::new("value", DataType::Float64, true));
    fields.push(Field::new("properties", DataType::Utf8, true));
    Arc::new(Schema::new(fields))
});

/// [`EVENTS`] with every text column but `properties` as `Dictionary(Int32, Utf8)`: how
/// analyses read the files (the Parquet dictionaries as they are, no string decoded per row).
/// `properties` stays `Utf8`: nearly every value is distinct.
pub static EVENTS_DICTIONARY: LazyLock<SchemaRef> = LazyLock::new(|| {
    let fields: Vec<Field> = EVENTS
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 if f.name() != "properties" => f.as_ref().clone().with_data_type(
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            ),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
});

/// Index of a column in [`EVENTS`].
pub fn column(name: &str) -> Option<usize> {
    EVENTS.index_of(name).ok()
}

pub const SEQ: usize = 0;
pub const TS: usize = 1;
pub const PERSON: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_positions_match_the_names() {
        assert_eq!(column("seq"), Some(SEQ));
        assert_eq!(column("ts"), Some(TS));
        assert_eq!(column("person"), Some(PERSON));
        assert_eq!(column("properties"), Some(EVENTS.fields().len() - 1));
        assert_eq!(column("nope"), None);
    }

    #[test]
    fn the_analyses_contract_names_these_columns_in_this_order() {
        let names: Vec<&str> = EVENTS.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, iob_analyses::ALL_COLUMNS);
    }
}
