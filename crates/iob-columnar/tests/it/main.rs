//! The columnar store driven through the engine's public API: compaction, the tail, consent
//! and identity applied at read time, health readings left out, erasure rewriting files.

use std::sync::Arc;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, TimestampMillisecondType, UInt64Type};
use iob_columnar::{Columnar, DayRows, Options, ScanRequest};
use iob_engine::{Actor, Config, Endpoint, Engine, SourceConfig, Submission};
use iob_types::{FixedClock, Purpose, Timestamp};
use serde_json::{Value, json};

const KEY: &str = "columnar-test-write-key-01";
const DAY: i64 = 86_400_000;
const T0: i64 = 1_795_000_000_000;

fn engine(dir: &std::path::Path) -> Engine {
    let mut cfg = Config {
        data_dir: Some(dir.to_path_buf()),
        sources: vec![SourceConfig {
            name: "web".into(),
            write_key: Some(KEY.into()),
        }],
        ..Config::default()
    };
    cfg.privacy.health_metrics = vec!["heart_rate".into()];
    let clock = Arc::new(FixedClock::new(Timestamp(T0 + 30 * DAY)));
    Engine::open_with_clock(&cfg, clock).unwrap().0
}

fn send(e: &Engine, events: Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = serde_json::to_vec(&json!({ "batch": events })).unwrap();
    let r = rt
        .block_on(e.submit(Submission {
            endpoint: Endpoint::Batch,
            body: &body,
            key: Some(KEY),
            ip: None,
        }))
        .unwrap();
    assert!(r.rejected.is_empty(), "{r:?}");
}

fn ts(ms: i64) -> String {
    Timestamp(ms).to_rfc3339()
}

type Row = (i32, Option<u64>, Option<String>, i64);

/// (day, person, event, ts) of every row a purpose sees, read both ways (text as `Utf8` for
/// SQL, as dictionaries for the analyses), which must agree.
fn rows(c: &Columnar, e: &Engine, purpose: Purpose) -> Vec<Row> {
    rows_in(c, e, purpose, None)
}

fn rows_in(c: &Columnar, e: &Engine, purpose: Purpose, range: Option<(i64, i64)>) -> Vec<Row> {
    let permit = e.permit(Actor::Operator, &purpose).unwrap();
    let dir = e.person_directory(&permit).unwrap();
    let mut both = Vec::new();
    for dictionary_text in [false, true] {
        let req = ScanRequest {
            columns: vec!["person".into(), "event".into(), "ts".into()],
            range,
            directory: &dir,
            keep_unresolved: true,
            dictionary_text,
        };
        let mut out = Vec::new();
        c.scan::<iob_columnar::ColumnarError>(e, &req, |d: DayRows| {
            let p = d.batch.column(0).as_primitive::<UInt64Type>();
            let event = |i: usize| -> Option<String> {
                let col = d.batch.column(1);
                if !col.is_valid(i) {
                    return None;
                }
                Some(if dictionary_text {
                    let dict = col.as_dictionary::<Int32Type>();
                    let values = dict.values().as_string::<i32>();
                    values.value(dict.keys().value(i) as usize).to_string()
                } else {
                    col.as_string::<i32>().value(i).to_string()
                })
            };
            let t = d.batch.column(2).as_primitive::<TimestampMillisecondType>();
            for i in 0..d.batch.num_rows() {
                out.push((
                    d.day,
                    p.is_valid(i).then(|| p.value(i)),
                    event(i),
                    t.value(i),
                ));
            }
            Ok(())
        })
        .unwrap();
        both.push(out);
    }
    let dictionary = both.pop().unwrap();
    let plain = both.pop().unwrap();
    assert_eq!(plain, dictionary, "text as Utf8 and as dictionaries differ");
    plain
}

fn small_options() -> Options {
    Options {
        chunk_rows: 3,
        max_files_per_day: 2,
        ..Options::default()
    }
}

#[test]
fn tail_then_compacted_rows_are_the_same_and_time_ordered_per_day() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let c = Columnar::open(dir.path(), small_options()).unwrap();
    // Arrival order differs from event time order; one event is ten days late.
    send(
        &e,
        json!([
            {"type":"track","userId":"u1","event":"B","timestamp":ts(T0 + 2_000)},
            {"type":"track","userId":"u1","event":"A","timestamp":ts(T0 + 1_000)},
            {"type":"track","userId":"u2","event":"C","timestamp":ts(T0 + DAY)},
            {"type":"page","userId":"u2","name":"Home","timestamp":ts(T0 + DAY + 5)},
        ]),
    );
    let before = rows(&c, &e, Purpose::analytics());
    assert_eq!(before.len(), 4, "{before:?}");
    assert_eq!(
        c.info().files,
        0,
        "nothing compacted yet: all from the tail"
    );
    let names: Vec<_> = before.iter().map(|r| r.2.clone().unwrap()).collect();
    assert_eq!(names, ["A", "B", "C", "Home"]);

    let report = c.compact(&e).unwrap();
    assert_eq!(report.rows, 4);
    // Steps of 3 rows: day 0 was written by two steps and merged into one sorted file.
    assert_eq!(
        c.info().files,
        2,
        "one file per day after a bulk compaction: {:?}",
        c.manifest()
    );
    assert_eq!(report.days_merged, 1);
    assert_eq!(rows(&c, &e, Purpose::analytics()), before);

    // A late event lands in its own (earlier) day, in time order, from the tail.
    send(
        &e,
        json!([{"type":"track","userId":"u1","event":"Late","timestamp":ts(T0 + 1_500)}]),
    );
    let after = rows(&c, &e, Purpose::analytics());
    let day0: Vec<_> = after
        .iter()
        .filter(|r| r.0 == before[0].0)
        .map(|r| r.2.clone().unwrap())
        .collect();
    assert_eq!(day0, ["A", "Late", "B"]);
    // A range that cuts into days, over compacted rows and tail rows alike.
    let cut = rows_in(
        &c,
        &e,
        Purpose::analytics(),
        Some((T0 + 1_500, T0 + DAY + 1)),
    );
    let names: Vec<_> = cut.iter().map(|r| r.2.clone().unwrap()).collect();
    assert_eq!(names, ["Late", "B", "C"]);

    // Many small compactions of one day are merged into one file.
    for i in 0..6 {
        send(
            &e,
            json!([{"type":"track","userId":"u3","event":"X","timestamp":ts(T0 + 10 + i)}]),
        );
        c.compact(&e).unwrap();
    }
    let m = c.manifest();
    let day = iob_columnar::day_of(T0);
    assert!(m.files_of(day).count() <= 2, "{m:?}");
    assert_eq!(rows(&c, &e, Purpose::analytics()).len(), 11);

    // Reopening finds the same committed state.
    drop(c);
    let c = Columnar::open(dir.path(), small_options()).unwrap();
    assert_eq!(rows(&c, &e, Purpose::analytics()).len(), 11);
}

#[test]
fn identity_merges_consent_and_health_apply_at_read_time() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let c = Columnar::open(dir.path(), Options::default()).unwrap();
    send(
        &e,
        json!([{"type":"consent","userId":"u8","granted":["health"],"timestamp":ts(T0 + 21)}]),
    );
    send(
        &e,
        json!([
            {"type":"track","anonymousId":"anon-9","event":"Product Viewed","timestamp":ts(T0)},
            {"type":"track","userId":"u9","event":"Order Completed","timestamp":ts(T0 + 10)},
            {"type":"track","userId":"u8","event":"Product Viewed","timestamp":ts(T0 + 20)},
            {"type":"observe","userId":"u8","deviceId":"watch-8","metric":"heart_rate","value":71,"timestamp":ts(T0 + 22)},
            {"type":"observe","userId":"u8","deviceId":"thermo-8","metric":"temperature","value":21.5,"timestamp":ts(T0 + 23)},
        ]),
    );
    c.compact(&e).unwrap();
    let seen = rows(&c, &e, Purpose::analytics());
    // The health reading is not in the columnar store at all; the room temperature and the
    // consent event are.
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert!(
        !seen.iter().any(|r| r.3 == T0 + 22),
        "no heart rate row: {seen:?}"
    );
    let persons: std::collections::BTreeSet<_> = seen.iter().map(|r| r.1).collect();
    assert_eq!(persons.len(), 3, "anon-9 and u9 are two persons so far");

    // identify links anon-9 to u9 after compaction: read time shows one person.
    send(
        &e,
        json!([{"type":"identify","userId":"u9","anonymousId":"anon-9","timestamp":ts(T0 + 30)}]),
    );
    let seen = rows(&c, &e, Purpose::analytics());
    let u9: Vec<_> = seen
        .iter()
        .filter(|r| r.2.as_deref() != Some("Product Viewed") || r.3 == T0)
        .collect();
    assert_eq!(
        u9[0].1,
        seen.iter()
            .find(|r| r.2.as_deref() == Some("Order Completed"))
            .unwrap()
            .1
    );

    // u8 withdraws analytics consent: their rows disappear from the next read, no rewrite.
    send(
        &e,
        json!([{"type":"consent","userId":"u8","denied":["analytics"],"timestamp":ts(T0 + 40)}]),
    );
    let seen = rows(&c, &e, Purpose::analytics());
    assert_eq!(seen.len(), 3, "only u9 (merged) is left: {seen:?}");
    assert!(seen.iter().all(|r| r.1 == seen[0].1), "{seen:?}");
    // Marketing is opt-in and nobody granted it: nothing at all.
    assert!(rows(&c, &e, Purpose::new("marketing").unwrap()).is_empty());
}

/// Every byte of every file under `dir`.
fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in walk(dir) {
        out.extend(std::fs::read(entry).unwrap_or_default());
    }
    out
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn erasure_rewrites_the_days_that_held_the_person() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let c = Arc::new(Columnar::open(dir.path(), Options::default()).unwrap());
    e.register_derived(c.clone());
    send(
        &e,
        json!([
            {"type":"track","userId":"ada","event":"Product Viewed","properties":{"sku":"SKU-ADA-ONLY-7731"},"timestamp":ts(T0)},
            {"type":"track","userId":"ada","event":"Order Completed","properties":{"sku":"SKU-ADA-ONLY-7731"},"timestamp":ts(T0 + 3 * DAY)},
            {"type":"track","userId":"bob","event":"Product Viewed","properties":{"sku":"SKU-BOB-9912"},"timestamp":ts(T0)},
        ]),
    );
    c.compact(&e).unwrap();
    // Pseudonymized at compaction: the raw user id is not in any file; the property is.
    let files = all_bytes(&c.dir().join("events"));
    assert!(
        !contains(&files, b"ada"),
        "raw identifiers never reach the columnar files"
    );
    assert!(contains(&files, b"SKU-ADA-ONLY-7731"));
    // One more row of ada's still in the tail.
    send(
        &e,
        json!([{"type":"track","userId":"ada","event":"Product Viewed","timestamp":ts(T0 + 5)}]),
    );
    assert_eq!(rows(&c, &e, Purpose::analytics()).len(), 4);

    let ops = e.permit(Actor::Operator, &Purpose::operations()).unwrap();
    let report = e.erase_person(&ops, "ada").unwrap();
    assert_eq!(report.derived, vec![("analytics".to_string(), 3)]);
    let left = rows(&c, &e, Purpose::analytics());
    assert_eq!(left.len(), 1, "{left:?}");
    let files = all_bytes(&c.dir().join("events"));
    assert!(
        !contains(&files, b"SKU-ADA-ONLY-7731"),
        "erased rows are gone from the files"
    );
    assert!(contains(&files, b"SKU-BOB-9912"));
    // And stay gone after compaction and reopening.
    c.compact(&e).unwrap();
    drop(c);
    let c = Columnar::open(dir.path(), Options::default()).unwrap();
    assert_eq!(rows(&c, &e, Purpose::analytics()).len(), 1);
}

#[test]
fn interrupted_writes_and_other_versions_are_handled_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let c = Columnar::open(dir.path(), Options::default()).unwrap();
    send(
        &e,
        json!([{"type":"track","userId":"u1","event":"A","timestamp":ts(T0)}]),
    );
    c.compact(&e).unwrap();
    let adir = c.dir().to_path_buf();
    drop(c);
    // A file written but never committed (a crash before the manifest) and a temp file.
    let day = adir.join("events/day=2026-11-19");
    std::fs::create_dir_all(&day).unwrap();
    std::fs::write(day.join("part-0000000099.parquet"), b"PAR1 half").unwrap();
    std::fs::write(day.join("part-0000000100.tmp"), b"x").unwrap();
    let c = Columnar::open(dir.path(), Options::default()).unwrap();
    assert!(!day.exists(), "orphans removed");
    assert_eq!(rows(&c, &e, Purpose::analytics()).len(), 1);
    drop(c);
    // A manifest of a future version is refused by name.
    let m = std::fs::read_to_string(adir.join("manifest.json")).unwrap();
    std::fs::write(
        adir.join("manifest.json"),
        m.replace("\"version\": 1", "\"version\": 2"),
    )
    .unwrap();
    let err = Columnar::open(dir.path(), Options::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("version 2"), "{err}");
}

#[test]
fn an_erasure_made_while_the_store_was_closed_is_applied_at_reconcile() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let c = Columnar::open(dir.path(), Options::default()).unwrap();
    send(
        &e,
        json!([
            {"type":"track","userId":"ada","event":"A","properties":{"sku":"SKU-ADA-CLOSED-1"},"timestamp":ts(T0)},
            {"type":"track","userId":"bob","event":"B","timestamp":ts(T0 + DAY)},
        ]),
    );
    c.compact(&e).unwrap();
    drop(c);
    // Erased with the columnar store not registered (e.g. an offline tool that never opened it).
    let ops = e.permit(Actor::Operator, &Purpose::operations()).unwrap();
    let report = e.erase_person(&ops, "ada").unwrap();
    assert!(report.derived.is_empty());
    let c = Columnar::open(dir.path(), Options::default()).unwrap();
    assert!(contains(
        &all_bytes(&c.dir().join("events")),
        b"SKU-ADA-CLOSED-1"
    ));
    // Hidden from reads already (the directory maps ada to no one)...
    assert_eq!(rows(&c, &e, Purpose::analytics()).len(), 1);
    // ...and removed from the files by the reconciliation at open.
    assert_eq!(c.reconcile(&e).unwrap(), 1);
    assert!(!contains(
        &all_bytes(&c.dir().join("events")),
        b"SKU-ADA-CLOSED-1"
    ));
    assert_eq!(
        c.reconcile(&e).unwrap(),
        0,
        "nothing left to do at the same epoch"
    );
}
