//! The `persons` and `consents` tables: profiles and consent decisions of the persons the
//! query's purpose may see, built for each query that names them (one audited bulk read).

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, StringBuilder, TimestampMillisecondBuilder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::datasource::MemTable;
use iob_engine::{ConsentRow, Engine, Permit, ProfileView};

use crate::QueryError;

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

pub(crate) fn persons_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("person", DataType::UInt64, false),
        Field::new("first_seen", ts(), false),
        Field::new("last_seen", ts(), false),
        Field::new("events", DataType::UInt64, false),
        Field::new("days_since_last_seen", DataType::Float64, false),
        Field::new("orders", DataType::UInt64, false),
        Field::new("monetary", DataType::Float64, false),
        Field::new("recency_days", DataType::Float64, true),
        Field::new("traits", DataType::Utf8, false),
        Field::new("counts", DataType::Utf8, false),
        Field::new("channels", DataType::Utf8, false),
        Field::new("devices", DataType::Utf8, false),
        Field::new("top_items", DataType::Utf8, false),
        Field::new("top_categories", DataType::Utf8, false),
    ]))
}

fn json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

pub(crate) fn persons(engine: &Engine, permit: &Permit) -> Result<MemTable, QueryError> {
    let views: Vec<ProfileView> = engine.profiles_for(permit, None)?;
    let mut person = UInt64Builder::new();
    let mut first = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let mut last = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let mut events = UInt64Builder::new();
    let mut since = Float64Builder::new();
    let mut orders = UInt64Builder::new();
    let mut monetary = Float64Builder::new();
    let mut recency = Float64Builder::new();
    let mut text: Vec<StringBuilder> = (0..6).map(|_| StringBuilder::new()).collect();
    for v in &views {
        person.append_value(v.person.0);
        first.append_value(v.first_seen);
        last.append_value(v.last_seen);
        events.append_value(v.events);
        since.append_value(v.days_since_last_seen);
        orders.append_value(v.rfm.frequency);
        monetary.append_value(v.rfm.monetary);
        recency.append_option(v.rfm.recency_days);
        let cols = [
            json(&v.traits),
            json(&v.counts),
            json(&v.channels),
            json(&v.devices),
            json(&v.top_items),
            json(&v.top_categories),
        ];
        for (b, c) in text.iter_mut().zip(cols) {
            b.append_value(c);
        }
    }
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(person.finish()),
        Arc::new(first.finish()),
        Arc::new(last.finish()),
        Arc::new(events.finish()),
        Arc::new(since.finish()),
        Arc::new(orders.finish()),
        Arc::new(monetary.finish()),
        Arc::new(recency.finish()),
    ];
    cols.extend(text.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    let schema = persons_schema();
    let batch = RecordBatch::try_new(schema.clone(), cols).expect("builders follow the schema");
    Ok(MemTable::try_new(schema, vec![vec![batch]])?)
}

pub(crate) fn consents_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("person", DataType::UInt64, false),
        Field::new("purpose", DataType::Utf8, false),
        Field::new("allowed", DataType::Boolean, false),
        Field::new("basis", DataType::Utf8, false),
        Field::new("since", ts(), true),
    ]))
}

pub(crate) fn consents(engine: &Engine, permit: &Permit) -> Result<MemTable, QueryError> {
    let rows: Vec<ConsentRow> = engine.consent_rows(permit)?;
    let mut person = UInt64Builder::new();
    let mut purpose = StringBuilder::new();
    let mut allowed = BooleanBuilder::new();
    let mut basis = StringBuilder::new();
    let mut since = TimestampMillisecondBuilder::new().with_timezone("UTC");
    for r in &rows {
        person.append_value(r.person);
        purpose.append_value(&r.purpose);
        allowed.append_value(r.allowed);
        basis.append_value(&r.basis);
        since.append_option(r.since);
    }
    let schema = consents_schema();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(person.finish()),
        Arc::new(purpose.finish()),
        Arc::new(allowed.finish()),
        Arc::new(basis.finish()),
        Arc::new(since.finish()),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols).expect("builders follow the schema");
    Ok(MemTable::try_new(schema, vec![vec![batch]])?)
}
