//! Unit tests of the CSV importer.

use iob_types::Timestamp;
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::import::{CsvMapping, PropertyMapping};
use crate::{CollectOptions, TrackingPlan, Unplanned};

fn rx() -> Received<'static> {
    Received {
        source: Some("retail"),
        received_at: Timestamp(1_700_000_000_000),
        ip: None,
    }
}

fn retail() -> CsvMapping {
    CsvMapping {
        user_id: Some("CustomerID".into()),
        anonymous_id: Some("InvoiceNo".into()),
        event_name: Some("Order Line".into()),
        timestamp: Some("InvoiceDate".into()),
        time_unit: TimeUnit::Format("%Y-%m-%d %H:%M:%S".into()),
        properties: vec![
            PropertyMapping::new("StockCode", Some("sku"), PropertyType::String),
            PropertyMapping::new("Quantity", Some("quantity"), PropertyType::Integer),
            PropertyMapping::new("UnitPrice", Some("price"), PropertyType::Number),
            PropertyMapping::new("Country", None, PropertyType::Auto),
        ],
        ..Default::default()
    }
}

const RETAIL: &str = "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\r\n\
536365,85123A,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\r\n\
536366,22633,6,2010-12-01 08:28:00,1.85,,\"Hong Kong, China\"\r\n\
,22633,6,2010-12-01 08:28:00,1.85,,France\r\n\
536367,84879,x,2010-12-01 08:34:00,1.69,13047,France\r\n\
536368,84879,1,01/12/2010,1.69,13047,France\r\n";

fn items(c: &Collector, csv: &str, m: &CsvMapping) -> Vec<ImportItem> {
    c.import_csv(csv.as_bytes(), m, "retail.csv", rx())
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn maps_rows_to_events_and_names_bad_cells() {
    let c = Collector::default();
    let it = items(&c, RETAIL, &retail());
    assert_eq!(it.len(), 5);
    let e = it[0].result.as_ref().unwrap();
    assert_eq!(it[0].line, 2);
    assert_eq!(
        it[0].raw,
        b"536365,85123A,6,2010-12-01 08:26:00,2.55,17850,United Kingdom"
    );
    assert_eq!(e.user_id.as_deref(), Some("17850"));
    assert_eq!(e.anonymous_id, None);
    assert_eq!(e.event.as_deref(), Some("Order Line"));
    assert_eq!(e.timestamp.to_rfc3339(), "2010-12-01T08:26:00.000Z");
    assert_eq!(e.original_timestamp, Some(e.timestamp));
    assert_eq!(e.received_at, Timestamp(1_700_000_000_000));
    assert_eq!(e.source.as_deref(), Some("retail"));
    assert_eq!(
        e.properties.as_ref().unwrap().get(),
        r#"{"sku":"85123A","quantity":6,"price":2.55,"Country":"United Kingdom"}"#
    );
    // no customer: anonymous by invoice, quoted cell with a comma
    let e = it[1].result.as_ref().unwrap();
    assert_eq!(
        (e.user_id.as_deref(), e.anonymous_id.as_deref()),
        (None, Some("536366"))
    );
    assert!(
        e.properties
            .as_ref()
            .unwrap()
            .get()
            .contains(r#""Country":"Hong Kong, China""#)
    );
    // neither id: a rejection naming the mapped columns, not a silent drop
    let r = it[2].result.as_ref().unwrap_err();
    assert_eq!(
        (r.code, r.field.as_str()),
        (RejectCode::MissingField, "CustomerID")
    );
    assert!(
        r.message.contains("line 4") && r.message.contains("InvoiceNo"),
        "{}",
        r.message
    );
    let r = it[3].result.as_ref().unwrap_err();
    assert_eq!(
        (r.code, r.field.as_str()),
        (RejectCode::InvalidValue, "Quantity")
    );
    assert!(
        r.message.contains("line 5") && r.message.contains("integer"),
        "{}",
        r.message
    );
    let r = it[4].result.as_ref().unwrap_err();
    assert_eq!(r.field, "InvoiceDate");
    assert!(
        r.message.contains("format:%Y-%m-%d %H:%M:%S"),
        "{}",
        r.message
    );
}

#[test]
fn message_ids_are_deterministic_per_import_name() {
    let c = Collector::default();
    let ids = |name: &str, at: i64| -> Vec<String> {
        let rx = Received {
            received_at: Timestamp(at),
            ..rx()
        };
        c.import_csv(RETAIL.as_bytes(), &retail(), name, rx)
            .unwrap()
            .filter_map(|i| i.unwrap().result.ok().map(|e| e.message_id))
            .collect()
    };
    assert_eq!(ids("a", 1), ids("a", 2));
    assert_ne!(ids("a", 1), ids("b", 1));
    let a = ids("a", 1);
    assert_ne!(a[0], a[1]);
    // CRLF vs LF does not change the ids
    let lf = RETAIL.replace("\r\n", "\n");
    let lf_ids: Vec<String> = c
        .import_csv(lf.as_bytes(), &retail(), "a", rx())
        .unwrap()
        .filter_map(|i| i.unwrap().result.ok().map(|e| e.message_id))
        .collect();
    assert_eq!(lf_ids, a);
}

#[test]
fn missing_header_column_is_a_mapping_error() {
    let c = Collector::default();
    let mut m = retail();
    m.user_id = Some("Customer ID".into());
    let err = c
        .import_csv(RETAIL.as_bytes(), &m, "x", rx())
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("`user_id`") && msg.contains("Customer ID") && msg.contains("CustomerID"),
        "{msg}"
    );
}

#[test]
fn headerless_tsv_with_seconds_and_latin1() {
    let c = Collector::default();
    let m = CsvMapping::from_toml_str(
        "delimiter = \"\\t\"\nhas_header = false\nencoding = \"latin-1\"\nuser_id = \"0\"\nevent_name = \"Rated\"\ntimestamp = \"3\"\ntime_unit = \"s\"\nproperties = [{column = \"1\", name = \"item\", type = \"string\"}, {column = \"2\", name = \"rating\", type = \"integer\"}, {column = \"4\", name = \"title\"}]",
    )
    .unwrap();
    let data = b"196\t242\t3\t881250949\tCaf\xe9\n186\t302\t3\t1396860669.277\tx\n7\t1\t2\n";
    let it: Vec<ImportItem> = c
        .import_csv(&data[..], &m, "u.data", rx())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(it.len(), 3);
    let e = it[0].result.as_ref().unwrap();
    assert_eq!(e.timestamp.millis(), 881_250_949_000);
    assert_eq!(
        e.properties.as_ref().unwrap().get(),
        r#"{"item":"242","rating":3,"title":"Café"}"#
    );
    assert_eq!(
        it[1].result.as_ref().unwrap().timestamp.millis(),
        1_396_860_669_277
    );
    let r = it[2].result.as_ref().unwrap_err();
    assert_eq!((r.code, r.field.as_str()), (RejectCode::MissingField, "3"));
}

#[test]
fn invalid_utf8_names_the_column() {
    let c = Collector::default();
    let m = CsvMapping {
        user_id: Some("u".into()),
        event: Some("e".into()),
        ..Default::default()
    };
    let it: Vec<ImportItem> = c
        .import_csv(&b"u,e\nx,caf\xe9\n"[..], &m, "f", rx())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let r = it[0].result.as_ref().unwrap_err();
    assert_eq!(r.field, "e");
    assert!(r.message.contains("latin-1"), "{}", r.message);
}

#[test]
fn identify_rows_fill_traits_and_plan_applies() {
    let plan = TrackingPlan::new(
        [(
            "identify".to_string(),
            json!({"properties":{"age":{"type":"integer"}}}),
        )],
        Unplanned::Allow,
    )
    .unwrap();
    let c = Collector::new(CollectOptions {
        plan,
        ..Default::default()
    });
    let m = CsvMapping {
        kind: CsvKind::Identify,
        user_id: Some("id".into()),
        properties: vec![PropertyMapping::new("age", None, PropertyType::Auto)],
        ..Default::default()
    };
    let it: Vec<ImportItem> = c
        .import_csv(&b"id,age\n1,40\n2,old\n"[..], &m, "f", rx())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        it[0]
            .result
            .as_ref()
            .unwrap()
            .traits
            .as_ref()
            .unwrap()
            .get(),
        r#"{"age":40}"#
    );
    let r = it[1].result.as_ref().unwrap_err();
    assert_eq!(
        (r.code, r.field.as_str()),
        (RejectCode::SchemaViolation, "traits.age")
    );
}

#[test]
fn cell_typing() {
    let mut s = String::new();
    for (ty, cell, want) in [
        (PropertyType::Auto, "007", "\"007\""),
        (PropertyType::Auto, "-1.5e3", "-1.5e3"),
        (PropertyType::Auto, "NaN", "\"NaN\""),
        (PropertyType::Auto, "1e999", "\"1e999\""),
        (PropertyType::Number, ".5", "0.5"),
        (PropertyType::Bool, "TRUE", "true"),
        (PropertyType::Bool, "no", "false"),
        (PropertyType::String, "a\"b\n", "\"a\\\"b\\n\""),
    ] {
        s.clear();
        write_value(&mut s, ty, cell).unwrap();
        assert_eq!(s, want, "{ty:?} {cell}");
    }
    assert!(write_value(&mut s, PropertyType::Number, "inf").is_err());
    assert!(write_value(&mut s, PropertyType::Bool, "maybe").is_err());
    assert!(write_value(&mut s, PropertyType::Integer, "1.0").is_err());
}

#[test]
fn time_units() {
    assert_eq!(scaled("1396860669.277", 3), Some(1_396_860_669_277));
    assert_eq!(scaled("1396860669.2", 3), Some(1_396_860_669_200));
    assert_eq!(scaled("1700000000123", 0), Some(1_700_000_000_123));
    assert_eq!(scaled("1700000000123999", -3), Some(1_700_000_000_123));
    assert_eq!(scaled("12a", 3), None);
    assert_eq!(scaled("", 3), None);
    let f = time::format_description::parse_strftime_owned("%Y-%m-%d").unwrap();
    let t = parse_time(&TimeUnit::Format("%Y-%m-%d".into()), Some(&f), "2011-12-09").unwrap();
    assert_eq!(t.to_rfc3339(), "2011-12-09T00:00:00.000Z");
    assert!(parse_time(&TimeUnit::Seconds, None, "-5").is_err());
    assert_eq!(
        parse_time(&TimeUnit::Iso, None, "2011-12-09 12:50")
            .unwrap()
            .to_rfc3339(),
        "2011-12-09T12:50:00.000Z"
    );
}

#[test]
fn raw_bytes_survive_buffer_release() {
    // more than the 256 KiB release threshold, with quoted multi-line cells
    let c = Collector::default();
    let m = CsvMapping {
        user_id: Some("u".into()),
        event: Some("e".into()),
        properties: vec![PropertyMapping::new("p", None, PropertyType::String)],
        ..Default::default()
    };
    let mut data = String::from("u,e,p\n");
    for i in 0..20_000 {
        data.push_str(&format!("user{i},\"ev\n{i}\",{}\n", "z".repeat(i % 40)));
    }
    let it: Vec<ImportItem> = c
        .import_csv(data.as_bytes(), &m, "f", rx())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(it.len(), 20_000);
    for (i, item) in it.iter().enumerate() {
        assert_eq!(
            item.raw,
            format!("user{i},\"ev\n{i}\",{}", "z".repeat(i % 40)).as_bytes()
        );
        assert_eq!(item.line, 2 + 2 * i as u64);
        assert_eq!(
            item.result.as_ref().unwrap().event.as_deref(),
            Some(format!("ev\n{i}").as_str())
        );
    }
}

proptest! {
    #[test]
    fn csv_import_never_panics_on_arbitrary_cells(rows in prop::collection::vec(prop::collection::vec("\\PC{0,8}|[0-9.eE+-]{0,6}|", 0..6), 0..8), tu in 0usize..5) {
        let mut w = ::csv::Writer::from_writer(Vec::new());
        w.write_record(["a", "b", "c", "d", "e"]).unwrap();
        for r in &rows {
            let _ = w.write_record(r);
        }
        let data = w.into_inner().unwrap();
        let unit = [TimeUnit::Iso, TimeUnit::Seconds, TimeUnit::Millis, TimeUnit::Micros, TimeUnit::Format("%Y-%m-%d %H:%M:%S".into())][tu].clone();
        let m = CsvMapping {
            user_id: Some("a".into()),
            anonymous_id: Some("b".into()),
            event: Some("c".into()),
            timestamp: Some("d".into()),
            time_unit: unit,
            properties: [PropertyType::Auto, PropertyType::Number, PropertyType::Integer, PropertyType::Bool, PropertyType::String]
                .into_iter()
                .map(|t| PropertyMapping::new("e", Some(&format!("{t:?}")), t))
                .collect(),
            ..Default::default()
        };
        let c = Collector::default();
        for item in c.import_csv(&data[..], &m, "p", rx()).unwrap().flatten() {
            if let Ok(e) = item.result {
                prop_assert!(iob_types::Event::from_json(&e.to_json()).is_ok());
            }
        }
    }

    #[test]
    fn csv_import_never_panics_on_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let m = CsvMapping { user_id: Some("0".into()), event: Some("1".into()), has_header: false, properties: vec![PropertyMapping::new("2", None, PropertyType::Auto)], ..Default::default() };
        let c = Collector::default();
        for item in c.import_csv(&data[..], &m, "p", rx()).unwrap() {
            let _ = item;
        }
    }
}

/// The items of `csv` imported through preset `name`.
fn preset_items(name: &str, csv: &str) -> Vec<ImportItem> {
    let m = CsvMapping::from_toml_str(crate::import::preset(name).unwrap()).unwrap();
    items(&Collector::default(), csv, &m)
}

/// Asserts `it` is a reading of `metric` = `value` at `at` by device `fitbit-<id>` of person `id`.
fn assert_reading(
    it: &ImportItem,
    id: &str,
    metric: &str,
    value: f64,
    unit: Option<&str>,
    at: &str,
) {
    let e = it
        .result
        .as_ref()
        .unwrap_or_else(|r| panic!("line {}: {r}", it.line));
    assert_eq!(e.kind, EventKind::Observe);
    assert_eq!(e.user_id.as_deref(), Some(id));
    assert_eq!(e.anonymous_id, None);
    assert_eq!(e.timestamp.to_rfc3339(), at);
    let r = e.reading.as_ref().unwrap();
    assert_eq!(r.device_id, format!("fitbit-{id}"));
    assert_eq!(r.metric, metric);
    assert_eq!(r.value, value);
    assert_eq!(r.unit.as_deref(), unit);
    assert!(e.properties.is_none() && e.event.is_none());
}

/// Asserts `it` was quarantined for column `col` of line `line`.
fn assert_rejected(it: &ImportItem, code: RejectCode, col: &str, line: u64) {
    let r = it.result.as_ref().unwrap_err();
    assert_eq!((r.code, r.field.as_str()), (code, col), "{}", r.message);
    assert_eq!(it.line, line);
    assert!(
        r.message.contains(&format!("line {line}")) && r.message.contains(col),
        "{}",
        r.message
    );
}

#[test]
fn fitbit_hourly_steps_reads_us_12_hour_times_with_crlf_and_lf() {
    let rows = "Id,ActivityHour,StepTotal\n\
1503960366,4/12/2016 12:00:00 AM,373\n\
1503960366,4/12/2016 1:00:00 AM,160\n\
1503960366,4/12/2016 12:00:00 PM,253\n\
1503960366,12/31/2016 11:00:00 PM,0\n\
1503960366,4/12/2016 2:00:00 PM,lots\n\
1503960366,4/12/2016 3:00:00 PM,\n\
,4/12/2016 4:00:00 PM,5\n\
1503960366,2016-04-12 17:00:00,5\n";
    for csv in [rows.to_string(), rows.replace('\n', "\r\n")] {
        let it = preset_items("fitbit-hourly-steps", &csv);
        assert_eq!(it.len(), 8);
        let (id, m, u) = ("1503960366", "steps", Some("steps"));
        assert_reading(&it[0], id, m, 373.0, u, "2016-04-12T00:00:00.000Z");
        assert_reading(&it[1], id, m, 160.0, u, "2016-04-12T01:00:00.000Z");
        assert_reading(&it[2], id, m, 253.0, u, "2016-04-12T12:00:00.000Z");
        assert_reading(&it[3], id, m, 0.0, u, "2016-12-31T23:00:00.000Z");
        assert_rejected(&it[4], RejectCode::InvalidValue, "StepTotal", 6);
        assert!(
            it[4]
                .result
                .as_ref()
                .unwrap_err()
                .message
                .contains("`lots` is not a finite number")
        );
        assert_rejected(&it[5], RejectCode::MissingField, "StepTotal", 7);
        // no person and no device: the device column is named
        assert_rejected(&it[6], RejectCode::MissingField, "Id", 8);
        assert_rejected(&it[7], RejectCode::InvalidValue, "ActivityHour", 9);
        assert_eq!(it[0].raw, b"1503960366,4/12/2016 12:00:00 AM,373");
    }
}

#[test]
fn fitbit_hourly_calories_and_intensity() {
    let it = preset_items(
        "fitbit-hourly-calories",
        "Id,ActivityHour,Calories\r\n\
2022484408,4/12/2016 9:00:00 AM,81\r\n\
2022484408,4/12/2016 10:00:00 AM,NaN\r\n\
2022484408,4/12/2016 11:00:00 AM,61.5\r\n",
    );
    assert_reading(
        &it[0],
        "2022484408",
        "calories",
        81.0,
        Some("kcal"),
        "2016-04-12T09:00:00.000Z",
    );
    assert_rejected(&it[1], RejectCode::InvalidValue, "Calories", 3);
    assert_reading(
        &it[2],
        "2022484408",
        "calories",
        61.5,
        Some("kcal"),
        "2016-04-12T11:00:00.000Z",
    );

    let it = preset_items(
        "fitbit-hourly-intensity",
        "Id,ActivityHour,TotalIntensity,AverageIntensity\r\n\
2022484408,5/1/2016 6:00:00 PM,20,0.333333\r\n\
2022484408,5/1/2016 7:00:00 PM,x,0\r\n\
2022484408,5/1/2016 8:00:00 PM,0,0\r\n",
    );
    assert_reading(
        &it[0],
        "2022484408",
        "intensity",
        20.0,
        None,
        "2016-05-01T18:00:00.000Z",
    );
    let e = it[0].result.as_ref().unwrap();
    assert_eq!(
        e.reading.as_ref().unwrap().tags.as_ref().unwrap().get(),
        r#"{"average_intensity":0.333333}"#
    );
    assert_rejected(&it[1], RejectCode::InvalidValue, "TotalIntensity", 3);
    assert_reading(
        &it[2],
        "2022484408",
        "intensity",
        0.0,
        None,
        "2016-05-01T20:00:00.000Z",
    );
}

#[test]
fn fitbit_daily_sleep() {
    let it = preset_items(
        "fitbit-daily-sleep",
        "Id,SleepDay,TotalSleepRecords,TotalMinutesAsleep,TotalTimeInBed\r\n\
1503960366,4/12/2016 12:00:00 AM,1,327,346\r\n\
1503960366,4/13/2016 12:00:00 AM,2,-,407\r\n",
    );
    assert_reading(
        &it[0],
        "1503960366",
        "sleep_minutes",
        327.0,
        Some("min"),
        "2016-04-12T00:00:00.000Z",
    );
    let e = it[0].result.as_ref().unwrap();
    assert_eq!(
        e.reading.as_ref().unwrap().tags.as_ref().unwrap().get(),
        r#"{"sleep_records":1,"time_in_bed_min":346}"#
    );
    assert_rejected(&it[1], RejectCode::InvalidValue, "TotalMinutesAsleep", 3);
}

#[test]
fn fitbit_weight_keeps_tags_and_skips_empty_fat() {
    let it = preset_items(
        "fitbit-weight",
        "Id,Date,WeightKg,WeightPounds,Fat,BMI,IsManualReport,LogId\r\n\
1503960366,5/2/2016 11:59:59 PM,52.5999984741211,115.963146545323,22,22.6499996185303,True,1462233599000\r\n\
1927972279,4/10/2016 6:33:26 PM,129.600006103516,285.719105247709,,46.1699981689453,False,1460313206000\r\n\
1927972279,4/11/2016 6:33:26 PM,,285.7,,46.1,False,1460399606000\r\n",
    );
    assert_reading(
        &it[0],
        "1503960366",
        "weight_kg",
        52.5999984741211,
        Some("kg"),
        "2016-05-02T23:59:59.000Z",
    );
    let tags = |i: usize| {
        it[i]
            .result
            .as_ref()
            .unwrap()
            .reading
            .as_ref()
            .unwrap()
            .tags
            .as_ref()
            .unwrap()
            .get()
            .to_string()
    };
    assert_eq!(
        tags(0),
        r#"{"bmi":22.6499996185303,"fat_pct":22,"manual":true,"log_id":"1462233599000"}"#
    );
    assert_reading(
        &it[1],
        "1927972279",
        "weight_kg",
        129.600006103516,
        Some("kg"),
        "2016-04-10T18:33:26.000Z",
    );
    assert_eq!(
        tags(1),
        r#"{"bmi":46.1699981689453,"manual":false,"log_id":"1460313206000"}"#
    );
    assert_rejected(&it[2], RejectCode::MissingField, "WeightKg", 4);
}

#[test]
fn fitbit_daily_activity_reads_date_only_times() {
    let it = preset_items(
        "fitbit-daily-activity",
        "Id,ActivityDate,TotalSteps,TotalDistance,TrackerDistance,LoggedActivitiesDistance,VeryActiveDistance,ModeratelyActiveDistance,LightActiveDistance,SedentaryActiveDistance,VeryActiveMinutes,FairlyActiveMinutes,LightlyActiveMinutes,SedentaryMinutes,Calories\n\
1503960366,4/12/2016,13162,8.5,8.5,0,1.87999999523163,0.550000011920929,6.05999994277954,0,25,13,328,728,1985\n\
1503960366,4/13/2016,1e400,6.96,6.96,0,1.57,0.68,4.71,0,21,19,217,776,1797\n",
    );
    assert_reading(
        &it[0],
        "1503960366",
        "daily_steps",
        13162.0,
        Some("steps"),
        "2016-04-12T00:00:00.000Z",
    );
    assert_rejected(&it[1], RejectCode::InvalidValue, "TotalSteps", 3);
}

#[test]
fn observe_with_metric_column_and_device_only_identity() {
    let m = CsvMapping::from_toml_str(
        "kind = \"observe\"\ndevice_id = \"sensor\"\nmetric = \"m\"\nvalue = \"v\"\nproperties = [\"room\"]",
    )
    .unwrap();
    let it = items(
        &Collector::default(),
        "sensor,m,v,room\ns-1,temp_c,21.5,hall\ns-1,Temp C,1,hall\ns-1,,1,hall\n,temp_c,1,hall\n",
        &m,
    );
    let e = it[0].result.as_ref().unwrap();
    assert_eq!(
        (e.user_id.as_deref(), e.routing_id()),
        (None, Some(("device", "s-1")))
    );
    let r = e.reading.as_ref().unwrap();
    assert_eq!(
        (r.device_id.as_str(), r.metric.as_str(), r.value),
        ("s-1", "temp_c", 21.5)
    );
    assert_eq!(r.tags.as_ref().unwrap().get(), r#"{"room":"hall"}"#);
    assert_eq!(
        e.received_at, e.timestamp,
        "no time column: the receive time"
    );
    assert_rejected(&it[1], RejectCode::InvalidValue, "m", 3);
    assert_rejected(&it[2], RejectCode::MissingField, "m", 4);
    assert_rejected(&it[3], RejectCode::MissingField, "sensor", 5);
    // the canonical JSON carries the reading, and parses back to the same event
    let json = serde_json::to_string(e).unwrap();
    assert!(
        json.contains(r#""deviceId":"s-1""#) && json.contains(r#""metric":"temp_c""#),
        "{json}"
    );
    assert_eq!(
        Event::from_json(json.as_bytes()).unwrap().reading,
        e.reading
    );
}

#[test]
fn message_id_key_dedups_overlapping_files_of_the_same_name() {
    let m =
        CsvMapping::from_toml_str(crate::import::preset("fitbit-hourly-steps").unwrap()).unwrap();
    let c = Collector::default();
    let ids = |csv: &str, name: &str| -> Vec<String> {
        c.import_csv(csv.as_bytes(), &m, name, rx())
            .unwrap()
            .map(|i| i.unwrap().result.unwrap().message_id)
            .collect()
    };
    // the March export ends with the hours the April export starts with, at other lines
    let march = "Id,ActivityHour,StepTotal\n1,4/11/2016 11:00:00 PM,5\n1,4/12/2016 12:00:00 AM,7\n";
    let april =
        "Id,ActivityHour,StepTotal\r\n1,4/12/2016 12:00:00 AM,7\r\n1,4/12/2016 1:00:00 AM,0\r\n";
    let (a, b) = (
        ids(march, "hourlySteps_merged.csv"),
        ids(april, "hourlySteps_merged.csv"),
    );
    assert_eq!(a[1], b[0], "same key, same name: one event");
    assert_ne!(a[0], a[1]);
    assert_ne!(b[0], b[1]);
    // another file name (another metric's file with the same key columns) stays distinct
    assert_ne!(ids(april, "hourlyCalories_merged.csv")[0], b[0]);
    // key cells are length-prefixed: ("1", "23") and ("12", "3") differ
    let mut k = CsvMapping {
        user_id: Some("a".into()),
        event_name: Some("E".into()),
        message_id_key: vec!["a".into(), "b".into()],
        ..Default::default()
    };
    let it = items(&c, "a,b\n1,23\n12,3\n", &k);
    let (x, y) = (
        it[0].result.as_ref().unwrap(),
        it[1].result.as_ref().unwrap(),
    );
    assert_ne!(x.message_id, y.message_id);
    // a key column must exist, and cannot be combined with a message id column
    k.message_id_key = vec!["nope".into()];
    let e = c
        .import_csv(&b"a,b\n"[..], &k, "f", rx())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("`message_id_key`") && e.contains("nope"), "{e}");
    k.message_id = Some("a".into());
    let e = k.check().unwrap_err().to_string();
    assert!(
        e.contains("`message_id_key`") && e.contains("not both"),
        "{e}"
    );
}
