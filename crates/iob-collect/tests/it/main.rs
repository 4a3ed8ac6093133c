//! Integration tests of iob-collect: the shipped CSV mappings against the real public datasets.
//!
//! The datasets live outside the repository (`../shared/data` beside the workspace, or
//! `$IOB_DATA_DIR`). When they are absent each test says so on stderr (uncaptured, so it shows
//! in `cargo test` output) and still checks that its mapping loads; it never passes silently.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::PathBuf;

use iob_collect::import::{CsvMapping, ImportItem, maybe_gunzip};
use iob_collect::{Collector, Received};
use iob_types::{Event, Timestamp};

fn mapping(file: &str) -> CsvMapping {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("mappings")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let m = CsvMapping::from_toml_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    m.check().unwrap_or_else(|e| panic!("{file}: {e}"));
    m
}

fn data_dir() -> PathBuf {
    std::env::var_os("IOB_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

/// The dataset file, or `None` after announcing on the real stderr that it is absent.
fn dataset(rel: &str, test: &str) -> Option<PathBuf> {
    let p = data_dir().join(rel);
    if p.is_file() {
        return Some(p);
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n*** {test}: DATASET ABSENT: {} not found (set IOB_DATA_DIR). Only the mapping was checked; the import was NOT tested. ***",
        p.display()
    );
    None
}

fn rx() -> Received<'static> {
    Received {
        source: Some("import"),
        received_at: Timestamp(1_800_000_000_000),
        ip: None,
    }
}

fn import(rel_path: &PathBuf, m: &CsvMapping, name: &str, limit: usize) -> Vec<ImportItem> {
    let c = Collector::default();
    let reader = maybe_gunzip(BufReader::new(File::open(rel_path).unwrap())).unwrap();
    c.import_csv(reader, m, name, rx())
        .unwrap()
        .take(limit)
        .map(|i| i.unwrap())
        .collect()
}

fn ok(items: &[ImportItem]) -> Vec<&Event> {
    for i in items {
        if let Err(r) = &i.result {
            panic!(
                "line {} rejected: {r}\nraw: {}",
                i.line,
                String::from_utf8_lossy(&i.raw)
            );
        }
    }
    items.iter().map(|i| i.result.as_ref().unwrap()).collect()
}

fn prop(e: &Event, k: &str) -> serde_json::Value {
    e.properties_map().get(k).cloned().unwrap_or_default()
}

#[test]
fn uci_online_retail_maps() {
    let m = mapping("uci-online-retail.toml");
    let Some(path) = dataset(
        "uci-online-retail/online_retail.csv.gz",
        "uci_online_retail_maps",
    ) else {
        return;
    };
    let items = import(&path, &m, "online_retail.csv.gz", 50_000);
    assert_eq!(items.len(), 50_000);
    let events = ok(&items);
    let e = events[0];
    assert_eq!(items[0].line, 2);
    assert_eq!(e.user_id.as_deref(), Some("17850"));
    assert_eq!(e.event.as_deref(), Some("Order Line"));
    assert_eq!(e.timestamp.to_rfc3339(), "2010-12-01T08:26:00.000Z");
    assert_eq!(prop(e, "sku"), "85123A");
    assert_eq!(prop(e, "price"), 2.55);
    assert_eq!(prop(e, "quantity"), 6);
    assert_eq!(prop(e, "invoice"), "536365");
    assert_eq!(prop(e, "country"), "United Kingdom");
    // rows without a customer are anonymous (by invoice), not lost
    let anon: Vec<&&Event> = events.iter().filter(|e| e.user_id.is_none()).collect();
    assert!(anon.len() > 1_000, "{}", anon.len());
    assert!(
        anon.iter()
            .all(|e| e.anonymous_id.as_deref() == prop(e, "invoice").as_str())
    );
    assert!(
        events
            .iter()
            .any(|e| prop(e, "quantity").as_i64() < Some(0)),
        "cancellations keep negative quantities"
    );
}

#[test]
fn uci_online_retail_ii_maps() {
    let m = mapping("uci-online-retail-ii.toml");
    let Some(path) = dataset(
        "uci-online-retail/online_retail_II_2009-2010.csv.gz",
        "uci_online_retail_ii_maps",
    ) else {
        return;
    };
    let items = import(&path, &m, "online_retail_II_2009-2010.csv.gz", 30_000);
    assert_eq!(items.len(), 30_000);
    let events = ok(&items);
    let e = events[0];
    assert_eq!(e.user_id.as_deref(), Some("13085"));
    assert_eq!(e.timestamp.to_rfc3339(), "2009-12-01T07:45:00.000Z");
    assert_eq!(prop(e, "sku"), "85048");
    assert_eq!(prop(e, "price"), 6.95);
    assert_eq!(prop(e, "quantity"), 12);
    assert!(
        events
            .iter()
            .any(|e| e.user_id.is_none() && e.anonymous_id.is_some())
    );
}

#[test]
fn yoochoose_maps() {
    let m = mapping("yoochoose.toml");
    let Some(path) = dataset(
        "yoochoose-rsc15-100k/yoochoose-clicks-100k_test.txt",
        "yoochoose_maps",
    ) else {
        return;
    };
    let items = import(&path, &m, "yoochoose-clicks-100k_test.txt", usize::MAX);
    assert_eq!(items.len(), 13_568, "README: 13,568 rows");
    let events = ok(&items);
    let e = events[0];
    assert_eq!(e.user_id, None);
    assert_eq!(e.anonymous_id.as_deref(), Some("1"));
    assert_eq!(prop(e, "product_id"), "214536502");
    assert_eq!(e.timestamp.millis(), 1_396_860_669_277);
    let sessions: std::collections::HashSet<&str> = events
        .iter()
        .filter_map(|e| e.anonymous_id.as_deref())
        .collect();
    assert_eq!(sessions.len(), 3_416, "README: 3,416 sessions");
    let ids: std::collections::HashSet<&str> =
        events.iter().map(|e| e.message_id.as_str()).collect();
    assert!(
        ids.len() > 13_000,
        "derived ids are distinct per distinct line"
    );
}

#[test]
fn movielens_100k_maps() {
    let m = mapping("movielens-100k.toml");
    let Some(path) = dataset("movielens-100k/u.data", "movielens_100k_maps") else {
        return;
    };
    let items = import(&path, &m, "u.data", usize::MAX);
    assert_eq!(items.len(), 100_000, "README: 100,000 ratings");
    let events = ok(&items);
    let e = events[0];
    assert_eq!(items[0].line, 1);
    assert_eq!(e.user_id.as_deref(), Some("196"));
    assert_eq!(prop(e, "movie_id"), "242");
    assert_eq!(prop(e, "rating"), 3);
    assert_eq!(e.timestamp.millis(), 881_250_949_000);
    let users: std::collections::HashSet<&str> =
        events.iter().filter_map(|e| e.user_id.as_deref()).collect();
    assert_eq!(users.len(), 943, "README: 943 users");
    let (min, max) = events.iter().fold((i64::MAX, 0), |(lo, hi), e| {
        (lo.min(e.timestamp.millis()), hi.max(e.timestamp.millis()))
    });
    assert_eq!(Timestamp(min).to_rfc3339(), "1997-09-20T03:05:10.000Z");
    assert_eq!(Timestamp(max).to_rfc3339(), "1998-04-22T23:10:38.000Z");
}

#[test]
fn fitbit_files_map_every_row() {
    const APR: &str = "fitbit-fitness-tracker/period-2016-04-12_2016-05-12";
    const MAR: &str = "fitbit-fitness-tracker/period-2016-03-12_2016-04-11";
    // (preset, file, rows and people per the dataset README, metric, first reading)
    let cases: [(&str, String, usize, usize, &str, f64, &str); 10] = [
        (
            "fitbit-hourly-steps",
            format!("{APR}/hourlySteps_merged.csv"),
            22_099,
            33,
            "steps",
            373.0,
            "2016-04-12T00:00:00.000Z",
        ),
        (
            "fitbit-hourly-calories",
            format!("{APR}/hourlyCalories_merged.csv"),
            22_099,
            33,
            "calories",
            81.0,
            "2016-04-12T00:00:00.000Z",
        ),
        (
            "fitbit-hourly-intensity",
            format!("{APR}/hourlyIntensities_merged.csv"),
            22_099,
            33,
            "intensity",
            20.0,
            "2016-04-12T00:00:00.000Z",
        ),
        (
            "fitbit-daily-sleep",
            format!("{APR}/sleepDay_merged.csv"),
            413,
            24,
            "sleep_minutes",
            327.0,
            "2016-04-12T00:00:00.000Z",
        ),
        (
            "fitbit-weight",
            format!("{APR}/weightLogInfo_merged.csv"),
            67,
            8,
            "weight_kg",
            52.5999984741211,
            "2016-05-02T23:59:59.000Z",
        ),
        (
            "fitbit-daily-activity",
            format!("{APR}/dailyActivity_merged.csv"),
            940,
            33,
            "daily_steps",
            13162.0,
            "2016-04-12T00:00:00.000Z",
        ),
        (
            "fitbit-hourly-steps",
            format!("{MAR}/hourlySteps_merged.csv"),
            24_084,
            34,
            "steps",
            0.0,
            "2016-03-12T00:00:00.000Z",
        ),
        (
            "fitbit-hourly-calories",
            format!("{MAR}/hourlyCalories_merged.csv"),
            24_084,
            34,
            "calories",
            48.0,
            "2016-03-12T00:00:00.000Z",
        ),
        (
            "fitbit-hourly-intensity",
            format!("{MAR}/hourlyIntensities_merged.csv"),
            24_084,
            34,
            "intensity",
            0.0,
            "2016-03-12T00:00:00.000Z",
        ),
        (
            "fitbit-weight",
            format!("{MAR}/weightLogInfo_merged.csv"),
            33,
            11,
            "weight_kg",
            53.2999992370605,
            "2016-04-05T23:59:59.000Z",
        ),
    ];
    for (preset, file, rows, people, metric, first, at) in cases {
        let m = CsvMapping::from_toml_str(iob_collect::import::preset(preset).unwrap()).unwrap();
        let Some(path) = dataset(&file, "fitbit_files_map_every_row") else {
            continue;
        };
        let items = import(&path, &m, &file, usize::MAX);
        assert_eq!(items.len(), rows, "{file}: rows per README");
        let events = ok(&items);
        let ids: std::collections::HashSet<&str> =
            events.iter().filter_map(|e| e.user_id.as_deref()).collect();
        assert_eq!(ids.len(), people, "{file}: people per README");
        let e = events[0];
        let r = e.reading.as_ref().unwrap();
        assert_eq!((r.metric.as_str(), r.value), (metric, first), "{file}");
        assert_eq!(
            r.device_id,
            format!("fitbit-{}", e.user_id.as_deref().unwrap())
        );
        assert_eq!(e.timestamp.to_rfc3339(), at, "{file}");
    }
}
