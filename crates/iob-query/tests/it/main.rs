//! SQL through the library: tables, purpose-bound rows, refusals, formats.

use std::sync::Arc;

use iob_columnar::{Columnar, Options};
use iob_engine::{Actor, Config, Endpoint, Engine, SourceConfig, Submission};
use iob_query::{Format, QueryError, Sql, SqlOptions, render};
use iob_types::{FixedClock, Purpose, Timestamp};
use serde_json::{Value, json};

const KEY: &str = "query-test-write-key-0001";
const T0: i64 = 1_795_000_000_000;
const DAY: i64 = 86_400_000;

struct Fixture {
    _dir: tempfile::TempDir,
    engine: Arc<Engine>,
    columnar: Arc<Columnar>,
    sql: Sql,
    rt: tokio::runtime::Runtime,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        data_dir: Some(dir.path().to_path_buf()),
        sources: vec![SourceConfig {
            name: "web".into(),
            write_key: Some(KEY.into()),
        }],
        ..Config::default()
    };
    let clock = Arc::new(FixedClock::new(Timestamp(T0 + 30 * DAY)));
    let engine = Arc::new(Engine::open_with_clock(&cfg, clock).unwrap().0);
    let columnar = Arc::new(Columnar::open(dir.path(), Options::default()).unwrap());
    let sql = Sql::new(
        engine.clone(),
        columnar.clone(),
        SqlOptions {
            max_rows: 1000,
            ..SqlOptions::default()
        },
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    Fixture {
        _dir: dir,
        engine,
        columnar,
        sql,
        rt,
    }
}

impl Fixture {
    fn send(&self, events: Value) {
        let body = serde_json::to_vec(&json!({ "batch": events })).unwrap();
        let r = self
            .rt
            .block_on(self.engine.submit(Submission {
                endpoint: Endpoint::Batch,
                body: &body,
                key: Some(KEY),
                ip: None,
            }))
            .unwrap();
        assert!(r.rejected.is_empty(), "{r:?}");
    }

    fn query(&self, purpose: &str, sql: &str) -> Result<Vec<Value>, QueryError> {
        let permit = self
            .engine
            .permit(Actor::Operator, &Purpose::new(purpose).unwrap())
            .unwrap();
        let r = self.rt.block_on(self.sql.query(&permit, sql))?;
        let bytes = render(&r.schema, &r.batches, Format::Json)?;
        Ok(serde_json::from_slice(&bytes).unwrap())
    }
}

fn ts(ms: i64) -> String {
    Timestamp(ms).to_rfc3339()
}

fn seed(f: &Fixture) {
    f.send(json!([
        {"type":"track","userId":"u1","event":"Product Viewed","properties":{"sku":"A","price":10.5},"timestamp":ts(T0)},
        {"type":"track","userId":"u1","event":"Order Completed","properties":{"revenue":10.5},"timestamp":ts(T0 + DAY)},
        {"type":"track","userId":"u2","event":"Product Viewed","properties":{"sku":"B","price":3},"timestamp":ts(T0 + 5)},
        {"type":"page","anonymousId":"a3","name":"Home","context":{"page":{"path":"/"}},"timestamp":ts(T0 + 7)},
        {"type":"consent","userId":"u2","granted":["marketing"],"timestamp":ts(T0 + 9)},
    ]));
}

#[test]
fn events_persons_and_consents_follow_the_purpose() {
    let f = fixture();
    seed(&f);
    // Acknowledged a moment ago, not compacted: visible.
    let n = f
        .query("analytics", "SELECT count(*) AS n FROM events")
        .unwrap();
    assert_eq!(n, vec![json!({"n": 5})]);
    f.columnar.compact(&f.engine).unwrap();
    let n = f
        .query(
            "analytics",
            "SELECT count(*) AS n, count(DISTINCT person) AS p FROM events",
        )
        .unwrap();
    assert_eq!(n, vec![json!({"n": 5, "p": 3})]);

    // Marketing is opt-in: only u2 granted it.
    let m = f
        .query("marketing", "SELECT event FROM events WHERE type = 'track'")
        .unwrap();
    assert_eq!(m, vec![json!({"event": "Product Viewed"})]);
    let p = f
        .query("marketing", "SELECT count(*) AS n FROM persons")
        .unwrap();
    assert_eq!(p, vec![json!({"n": 1})]);

    // u1 withdraws analytics: gone from the next query, in every table.
    f.send(json!([{"type":"consent","userId":"u1","denied":["analytics"],"timestamp":ts(T0 + 2 * DAY)}]));
    let n = f
        .query(
            "analytics",
            "SELECT count(DISTINCT person) AS p FROM events",
        )
        .unwrap();
    assert_eq!(n, vec![json!({"p": 2})]);
    let c = f
        .query("analytics", "SELECT purpose, allowed, basis FROM consents WHERE purpose = 'marketing' ORDER BY allowed")
        .unwrap();
    assert_eq!(
        c.len(),
        2,
        "u1 is not in the consents table of an analytics query: {c:?}"
    );
    assert_eq!(
        c[1],
        json!({"purpose": "marketing", "allowed": true, "basis": "granted"})
    );
}

#[test]
fn properties_are_queryable_and_time_bounds_prune_correctly() {
    let f = fixture();
    seed(&f);
    f.columnar.compact(&f.engine).unwrap();
    let r = f
        .query(
            "analytics",
            "SELECT json_get_str(properties, 'sku') AS sku, sum(json_get_float(properties, 'price')) AS price \
             FROM events WHERE event = 'Product Viewed' GROUP BY 1 ORDER BY 1",
        )
        .unwrap();
    assert_eq!(
        r,
        vec![
            json!({"sku": "A", "price": 10.5}),
            json!({"sku": "B", "price": 3.0})
        ]
    );
    let day2 = Timestamp(T0 + DAY).to_rfc3339();
    let r = f
        .query(
            "analytics",
            &format!("SELECT event FROM events WHERE ts >= TIMESTAMP '{day2}'"),
        )
        .unwrap();
    let plan = f
        .query(
            "analytics",
            &format!("EXPLAIN SELECT event FROM events WHERE ts >= TIMESTAMP '{day2}'"),
        )
        .unwrap();
    assert!(
        json!(plan)
            .to_string()
            .contains("partial_filters=[events.ts >="),
        "the bound is pushed down: {plan:?}"
    );
    assert_eq!(r, vec![json!({"event": "Order Completed"})]);
    let r = f
        .query(
            "analytics",
            &format!(
                "SELECT count(*) AS n FROM events WHERE ts < TIMESTAMP '{day2}' AND page_path = '/'"
            ),
        )
        .unwrap();
    assert_eq!(r, vec![json!({"n": 1})]);
}

#[test]
fn only_queries_over_the_three_tables_run() {
    let f = fixture();
    seed(&f);
    for (sql, want) in [
        ("SELECT * FROM secrets", "unknown table"),
        (
            "SELECT * FROM events e JOIN other.events o ON e.seq = o.seq",
            "unknown table",
        ),
        (
            "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
            "table",
        ),
        ("COPY (SELECT 1) TO '/tmp/iob-copy-test.csv'", "sql"),
        ("SET datafusion.execution.batch_size = 1", "sql"),
        ("SELEC 1", "sql"),
        ("SELECT nope FROM events", "nope"),
    ] {
        let err = f.query("analytics", sql).unwrap_err().to_string();
        assert!(err.to_lowercase().contains(want), "{sql}: {err}");
    }
    assert!(!std::path::Path::new("/tmp/iob-copy-test.csv").exists());
}

#[test]
fn every_output_format_renders() {
    let f = fixture();
    seed(&f);
    let permit = f
        .engine
        .permit(Actor::Operator, &Purpose::analytics())
        .unwrap();
    let r =
        f.rt.block_on(f.sql.query(
            &permit,
            "SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY type",
        ))
        .unwrap();
    let table = String::from_utf8(render(&r.schema, &r.batches, Format::Table).unwrap()).unwrap();
    assert!(table.contains("| track"), "{table}");
    let csv = String::from_utf8(render(&r.schema, &r.batches, Format::Csv).unwrap()).unwrap();
    assert_eq!(csv, "type,n\nconsent,1\npage,1\ntrack,3\n");
    let jsonl =
        String::from_utf8(render(&r.schema, &r.batches, Format::JsonLines).unwrap()).unwrap();
    assert_eq!(jsonl.lines().count(), 3);
    let pq = render(&r.schema, &r.batches, Format::Parquet).unwrap();
    assert_eq!(&pq[..4], b"PAR1");
    assert!("xml".parse::<Format>().is_err());
    // More rows than allowed: cut, and said so.
    let small = Sql::new(
        f.engine.clone(),
        f.columnar.clone(),
        SqlOptions {
            max_rows: 2,
            ..SqlOptions::default()
        },
    );
    let r =
        f.rt.block_on(small.query(&permit, "SELECT seq FROM events"))
            .unwrap();
    assert!(r.truncated);
    assert_eq!(r.rows, 2);
}
