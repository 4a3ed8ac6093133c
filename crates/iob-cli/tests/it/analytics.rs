//! Analytics end to end: SQL over HTTP and from the CLI, freshness (an event acknowledged a
//! moment ago is in the next query), consent withdrawal, bad input, compaction, erasure.

use serde_json::{Value, json};

use crate::common::*;

fn query(s: &Server, auth: &str, body: Value) -> Resp {
    request(
        &s.addr,
        "POST",
        "/v1/query",
        Some(auth),
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    )
}

fn admin() -> String {
    format!("Bearer {ADMIN_KEY}")
}

#[test]
fn sql_over_http_sees_fresh_events_and_follows_consent() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&write_config(dir.path(), ""));
    for (m, u) in [("q1", "u1"), ("q2", "u2"), ("q3", "u2")] {
        assert_eq!(
            s.post(
                "/v1/track",
                Some(WRITE_KEY),
                track(m, u).to_string().as_bytes()
            )
            .status,
            200
        );
    }
    // Acknowledged a moment ago: visible now, without waiting for compaction.
    let r = query(
        &s,
        &admin(),
        json!({"sql": "SELECT count(*) AS n, count(DISTINCT person) AS p FROM events", "purpose": "analytics"}),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["rows"], json!([{"n": 3, "p": 2}]));
    assert_eq!(v["columns"][0]["name"], "n");
    assert_eq!(v["truncated"], false);

    // Properties are queryable; CSV comes back as CSV.
    let r = query(
        &s,
        &admin(),
        json!({"sql": "SELECT properties->>'item_id' AS item, count(*) AS n FROM events GROUP BY 1", "purpose": "analytics", "format": "csv"}),
    );
    assert_eq!(r.status, 200);
    assert!(
        r.headers.to_lowercase().contains("content-type: text/csv"),
        "{}",
        r.headers
    );
    assert_eq!(String::from_utf8_lossy(&r.body), "item,n\nsku-1,3\n");

    // u2 withdraws analytics consent: their rows vanish from the next query.
    let consent = json!({"userId": "u2", "denied": ["analytics"]});
    assert_eq!(
        s.post(
            "/v1/consent",
            Some(WRITE_KEY),
            consent.to_string().as_bytes()
        )
        .status,
        200
    );
    let r = query(
        &s,
        &admin(),
        json!({"sql": "SELECT count(DISTINCT person) AS p FROM events WHERE type = 'track'", "purpose": "analytics"}),
    );
    assert_eq!(r.json()["rows"], json!([{"p": 1}]));
}

#[test]
fn bad_queries_get_a_problem_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&write_config(dir.path(), ""));
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{not json".to_vec(), 400, "invalid_body"),
        (
            json!({"sql": 5, "purpose": "analytics"})
                .to_string()
                .into_bytes(),
            400,
            "invalid_body",
        ),
        (
            json!({"sql": "SELECT 1", "purpose": "analytics", "limit": 3})
                .to_string()
                .into_bytes(),
            400,
            "invalid_body",
        ),
        (
            json!({"sql": "SELECT 1"}).to_string().into_bytes(),
            400,
            "invalid_value",
        ),
        (
            json!({"sql": "SELECT 1", "purpose": "gossip"})
                .to_string()
                .into_bytes(),
            400,
            "invalid_purpose",
        ),
        (
            json!({"sql": "SELEKT 1", "purpose": "analytics"})
                .to_string()
                .into_bytes(),
            400,
            "invalid_sql",
        ),
        (
            json!({"sql": "SELECT * FROM vault", "purpose": "analytics"})
                .to_string()
                .into_bytes(),
            400,
            "unknown_table",
        ),
        (
            json!({"sql": "DROP TABLE events", "purpose": "analytics"})
                .to_string()
                .into_bytes(),
            400,
            "invalid_sql",
        ),
        (
            json!({"sql": "SELECT 1", "purpose": "analytics", "format": "xml"})
                .to_string()
                .into_bytes(),
            400,
            "invalid_value",
        ),
    ];
    for (body, status, code) in cases {
        let r = request(
            &s.addr,
            "POST",
            "/v1/query",
            Some(&admin()),
            &[("content-type", "application/json")],
            &body,
        );
        assert_eq!(
            r.status,
            status,
            "{}: {}",
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(
            r.json()["code"],
            code,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let r = query(
        &s,
        &admin(),
        json!({"sql": "SELEKT 1", "purpose": "analytics"}),
    );
    assert_eq!(r.json()["field"], "sql");
}

#[test]
fn cli_compacts_queries_and_erasure_reaches_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let file = dir.path().join("events.jsonl");
    std::fs::write(
        &file,
        [
            json!({"type":"track","userId":"ada","event":"Order Completed","properties":{"sku":"ADA-ONLY-SKU-55"},"timestamp":"2026-01-05T10:00:00Z"}),
            json!({"type":"track","userId":"bob","event":"Order Completed","properties":{"sku":"BOB-SKU-66"},"timestamp":"2026-01-06T10:00:00Z"}),
        ]
        .iter()
        .map(|v| v.to_string() + "\n")
        .collect::<String>(),
    )
    .unwrap();
    let (ok, _, err) = run(&config, &["import", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&config, &["compact"]);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["compaction"]["rows"], 2, "{out}");
    assert_eq!(report["store"]["days"], 2, "{out}");
    let (ok, out, err) = run(
        &config,
        &[
            "query",
            "SELECT properties->>'sku' AS sku FROM events ORDER BY ts",
            "--format",
            "csv",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "sku\nADA-ONLY-SKU-55\nBOB-SKU-66\n");
    let analytics = dir.path().join("data").join("analytics");
    let files = |needle: &[u8]| -> bool {
        walk(&analytics)
            .iter()
            .any(|p| std::fs::read(p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)))
    };
    assert!(files(b"ADA-ONLY-SKU-55"));
    let (ok, _, err) = run(&config, &["privacy", "erase", "ada"]);
    assert!(ok, "{err}");
    assert!(
        !files(b"ADA-ONLY-SKU-55"),
        "the compacted files no longer hold the erased person's rows"
    );
    assert!(files(b"BOB-SKU-66"));
    let (ok, out, _) = run(
        &config,
        &[
            "query",
            "SELECT count(*) AS n FROM events",
            "--format",
            "csv",
        ],
    );
    assert!(ok);
    assert_eq!(out, "n\n1\n");
    // A query that is not one fails with a message, and a nonzero status.
    let (ok, _, err) = run(&config, &["query", "DELETE FROM events"]);
    assert!(!ok);
    assert!(err.contains("sql"), "{err}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn analysis(s: &Server, auth: &str, path: &str, body: Value) -> Resp {
    request(
        &s.addr,
        "POST",
        path,
        Some(auth),
        &[],
        body.to_string().as_bytes(),
    )
}

/// Six persons view a product on one day, two of them buy: the buyers' group is below k=5.
#[test]
fn analyses_suppress_small_groups_for_aggregate_keys_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&write_config(dir.path(), ""));
    let mut batch = Vec::new();
    for i in 0..6 {
        batch.push(json!({"type":"track","userId":format!("p{i}"),"event":"Product Viewed","timestamp":"2026-03-02T10:00:00Z"}));
        if i < 2 {
            batch.push(json!({"type":"track","userId":format!("p{i}"),"event":"Order Completed","timestamp":"2026-03-02T11:00:00Z"}));
        }
    }
    assert_eq!(
        s.post(
            "/v1/batch",
            Some(WRITE_KEY),
            json!({"batch": batch}).to_string().as_bytes()
        )
        .status,
        200
    );
    let r = request(
        &s.addr,
        "POST",
        "/v1/keys",
        Some(&admin()),
        &[],
        json!({"scope": "read:analytics", "id": "bi"})
            .to_string()
            .as_bytes(),
    );
    let bi = format!("Bearer {}", r.json()["key"].as_str().unwrap());
    let trends = json!({"events": [{"event": "Product Viewed"}, {"event": "Order Completed"}], "interval": "day"});

    let r = analysis(
        &s,
        &bi,
        "/v1/analyses/trends?purpose=analytics",
        trends.clone(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["series"][0]["points"][0]["persons"], 6, "{v}");
    assert_eq!(
        v["series"][1]["points"][0]["persons"],
        Value::Null,
        "2 buyers < k: suppressed: {v}"
    );
    assert_eq!(v["series"][1]["points"][0]["suppressed"], true);
    assert_eq!(v["disclosure"]["k"], 5);

    // A personal-data key sees exact small groups.
    let r = analysis(
        &s,
        &admin(),
        "/v1/analyses/trends?purpose=analytics",
        trends.clone(),
    );
    let v = r.json();
    assert_eq!(v["series"][1]["points"][0]["persons"], 2, "{v}");

    // A funnel: 6 viewed, 2 bought (the view->purchase funnel, 1-day window).
    let funnel = json!({"steps": [{"event": "Product Viewed"}, {"event": "Order Completed"}], "window_ms": 86_400_000});
    let v = analysis(
        &s,
        &admin(),
        "/v1/analyses/funnel?purpose=analytics",
        funnel,
    )
    .json();
    assert_eq!(v["groups"][0]["steps"][0]["persons"], 6, "{v}");
    assert_eq!(v["groups"][0]["steps"][1]["persons"], 2, "{v}");

    // Bad input names the field; the write key and unknown kinds are refused.
    let r = analysis(
        &s,
        &bi,
        "/v1/analyses/trends?purpose=analytics",
        json!({"events": [], "interval": "fortnight"}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["code"],
        "invalid_analysis",
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let r = analysis(
        &s,
        &bi,
        "/v1/analyses/trends?purpose=analytics",
        json!({"events": [{"event": "x"}], "colour": 1}),
    );
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("colour"));
    let r = analysis(&s, &bi, "/v1/analyses/cohorts?purpose=analytics", json!({}));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "analysis");
    let r = analysis(&s, &bi, "/v1/analyses/trends", trends.clone());
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("invalid_value"))
    );
    let r = analysis(
        &s,
        &basic(WRITE_KEY),
        "/v1/analyses/trends?purpose=analytics",
        trends.clone(),
    );
    assert_eq!(r.status, 403);
    // Epsilon must be positive.
    let r = analysis(
        &s,
        &bi,
        "/v1/analyses/trends?purpose=analytics&epsilon=-1",
        trends,
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
}

/// `iob compact` killed at random moments, then run to the end: every event is in the
/// columnar store exactly once (a step cut short leaves only orphan files, removed at open).
#[test]
fn kill_dash_nine_during_compaction_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[analytics]\ncompact_chunk_rows = 7000\n");
    let file = dir.path().join("events.jsonl");
    let n = 60_000;
    let mut lines = String::new();
    for i in 0..n {
        lines.push_str(
            &json!({"type":"track","messageId":format!("m{i}"),"userId":format!("u{}", i % 997),"event":"Product Viewed",
                "timestamp": format!("2026-02-{:02}T10:00:00Z", 1 + i % 28)})
            .to_string(),
        );
        lines.push('\n');
    }
    std::fs::write(&file, lines).unwrap();
    let (ok, _, err) = run(&config, &["import", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    let mut killed = 0;
    for delay_ms in [150u64, 400, 900] {
        let mut child = iob()
            .arg("--config")
            .arg(&config)
            .arg("compact")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
    }
    let (ok, out, err) = run(&config, &["compact"]);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["store"]["rows"], n, "{out}");
    let (ok, out, err) = run(
        &config,
        &[
            "query",
            "SELECT count(*) AS n, count(DISTINCT seq) AS seqs FROM events",
            "--format",
            "csv",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out, format!("n,seqs\n{n},{n}\n"), "killed {killed} time(s)");
}
