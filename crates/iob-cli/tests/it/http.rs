//! The collector over real HTTP: every endpoint, auth, gzip, limits, CORS, batches, dedup,
//! tracking plan and quarantine — and bad input on each path.

use serde_json::json;

use crate::common::*;

const PLAN: &str = r#"
[tracking_plan.events."Order Completed"]
type = "object"
required = ["revenue"]
[tracking_plan.events."Order Completed".properties.revenue]
type = "number"
"#;

fn server() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), PLAN);
    let s = Server::start(&cfg);
    (dir, s)
}

#[test]
fn every_segment_endpoint_accepts_its_type() {
    let (_d, s) = server();
    let bodies = [
        ("track", json!({"userId": "u1", "event": "Signed Up"})),
        (
            "identify",
            json!({"anonymousId": "a1", "userId": "u1", "traits": {"plan": "plus"}}),
        ),
        (
            "page",
            json!({"anonymousId": "a1", "name": "Home", "properties": {"url": "https://x.example/"}}),
        ),
        ("screen", json!({"userId": "u1", "name": "Cart"})),
        (
            "group",
            json!({"userId": "u1", "groupId": "acme", "traits": {"employees": 50}}),
        ),
        ("alias", json!({"userId": "u1", "previousId": "a1"})),
        (
            "observe",
            json!({"userId": "u1", "deviceId": "band-1", "metric": "steps", "value": 64, "unit": "count"}),
        ),
        (
            "consent",
            json!({"userId": "u1", "granted": ["analytics"], "denied": ["marketing"], "policyVersion": "v1", "source": "banner"}),
        ),
    ];
    for (path, body) in &bodies {
        let r = s.post(
            &format!("/v1/{path}"),
            Some(WRITE_KEY),
            body.to_string().as_bytes(),
        );
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["success"], true);
        assert_eq!(r.json()["accepted"], 1, "{path}");
    }
    let stats = request(
        &s.addr,
        "GET",
        "/v1/stats",
        Some(&format!("Bearer {ADMIN_KEY}")),
        &[],
        b"",
    );
    assert_eq!(stats.status, 200);
    assert_eq!(stats.json()["events"], bodies.len());
    // The stored events keep their types, the source, and never the write key.
    let config = s.config.clone();
    s.stop();
    let (ok, out, err) = run(&config, &["events", "export"]);
    assert!(ok, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "track", "identify", "page", "screen", "group", "alias", "observe", "consent"
        ]
    );
    assert!(lines.iter().all(|l| l["iobSource"] == "web"));
    assert!(
        lines
            .iter()
            .all(|l| l["receivedAt"].is_string() && l["messageId"].is_string())
    );
    assert!(!out.contains(WRITE_KEY));
}

#[test]
fn write_key_in_body_works_and_is_not_stored() {
    let (_d, s) = server();
    let body = json!({"userId": "u9", "event": "Opened", "writeKey": POS_KEY, "messageId": "wk-1"});
    let r = s.post("/v1/track", None, body.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let config = s.config.clone();
    s.stop();
    let (_, out, _) = run(&config, &["events", "export"]);
    assert!(out.contains("\"iobSource\":\"pos\""), "{out}");
    assert!(!out.contains(POS_KEY) && !out.contains("writeKey"), "{out}");
}

#[test]
fn auth_errors_are_401_and_403_with_problem_bodies() {
    let (_d, s) = server();
    let body = br#"{"userId":"u1","event":"x"}"#;
    let r = s.post("/v1/track", None, body);
    assert_eq!(
        (r.status, r.json()["code"].as_str().unwrap()),
        (401, "missing_key")
    );
    assert!(
        r.headers
            .to_ascii_lowercase()
            .contains("application/problem+json")
    );
    let r = s.post("/v1/track", Some("forged-key-123456789"), body);
    assert_eq!(
        (r.status, r.json()["code"].as_str().unwrap()),
        (401, "invalid_key")
    );
    let r = s.post("/v1/track", Some(ADMIN_KEY), body);
    assert_eq!(
        (r.status, r.json()["code"].as_str().unwrap()),
        (403, "forbidden")
    );
    let r = request(
        &s.addr,
        "GET",
        "/v1/quarantine",
        Some(&basic(WRITE_KEY)),
        &[],
        b"",
    );
    assert_eq!(r.status, 403);
    let r = request(&s.addr, "GET", "/v1/stats", None, &[], b"");
    assert_eq!(r.status, 401);
    // Unauthenticated junk is refused, not quarantined.
    let r = s.post("/v1/track", None, b"{not json");
    assert_eq!(r.status, 401);
    let q = request(
        &s.addr,
        "GET",
        "/v1/quarantine",
        Some(&format!("Bearer {ADMIN_KEY}")),
        &[],
        b"",
    );
    assert_eq!(q.json()["entries"].as_array().unwrap().len(), 0);
}

#[test]
fn bad_input_names_the_field_and_lands_in_quarantine() {
    let (_d, s) = server();
    let cases: &[(&str, &[u8], &str, &str)] = &[
        (
            "/v1/track",
            b"{\"userId\": \"u1\", \"event\": ",
            "malformed_json",
            "",
        ),
        ("/v1/track", b"[1,2]", "not_an_object", ""),
        ("/v1/track", br#"{"userId":"u1"}"#, "missing_field", "event"),
        ("/v1/track", br#"{"event":"x"}"#, "missing_field", "userId"),
        (
            "/v1/track",
            br#"{"userId":["u1"],"event":"x"}"#,
            "wrong_type",
            "userId",
        ),
        (
            "/v1/track",
            br#"{"userId":"u1","event":"x","properties":[1]}"#,
            "wrong_type",
            "properties",
        ),
        (
            "/v1/track",
            br#"{"userId":"u1","event":"x","timestamp":"yesterday"}"#,
            "invalid_value",
            "timestamp",
        ),
        (
            "/v1/identify",
            br#"{"userId":"u1","type":"track","event":"x"}"#,
            "invalid_value",
            "type",
        ),
        (
            "/v1/alias",
            br#"{"userId":"u1"}"#,
            "missing_field",
            "previousId",
        ),
        (
            "/v1/group",
            br#"{"userId":"u1"}"#,
            "missing_field",
            "groupId",
        ),
        (
            "/v1/observe",
            br#"{"userId":"u1","deviceId":"d","metric":"heart_rate","value":"fast"}"#,
            "wrong_type",
            "value",
        ),
        (
            "/v1/observe",
            br#"{"userId":"u1","metric":"heart_rate","value":60}"#,
            "missing_field",
            "deviceId",
        ),
        (
            "/v1/consent",
            br#"{"userId":"u1","granted":["astrology"]}"#,
            "invalid_value",
            "granted[0]",
        ),
        (
            "/v1/track",
            br#"{"userId":"u1","event":"Order Completed","properties":{"revenue":"12,50"}}"#,
            "schema_violation",
            "properties.revenue",
        ),
    ];
    for (path, body, code, field) in cases {
        let r = s.post(path, Some(WRITE_KEY), body);
        let j = r.json();
        assert_eq!(
            r.status,
            400,
            "{path} {}: {j}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(
            j["code"],
            *code,
            "{path} {}: {j}",
            String::from_utf8_lossy(body)
        );
        assert!(
            j["field"].as_str().unwrap().starts_with(field),
            "{path}: field {j}"
        );
        assert!(j["quarantine_id"].is_u64(), "{j}");
        assert!(!j["detail"].as_str().unwrap().is_empty());
    }
    let q = request(
        &s.addr,
        "GET",
        "/v1/quarantine",
        Some(&format!("Bearer {ADMIN_KEY}")),
        &[],
        b"",
    );
    let entries = q.json()["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), cases.len(), "every rejected event is kept");
    assert_eq!(entries[0]["reason"]["rejection"]["code"], "malformed_json");
}

#[test]
fn batch_accepts_valid_items_and_reports_each_rejected_one() {
    let (_d, s) = server();
    let body = json!({"batch": [
        track("b-1", "u1"),
        {"type": "track", "messageId": "b-2", "userId": "u1"},
        {"type": "identify", "messageId": "b-3", "userId": "u1", "traits": {"plan": "basic"}},
        {"type": "bogus", "userId": "u1"},
    ], "context": {"library": {"name": "analytics-node", "version": "6.0.0"}}, "sentAt": "2026-11-20T10:00:00.000Z"});
    let r = s.post("/v1/batch", Some(WRITE_KEY), body.to_string().as_bytes());
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["accepted"], 2);
    let rejected = j["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0]["index"], 1);
    assert_eq!(rejected[0]["field"], "batch[1].event");
    assert_eq!(rejected[1]["index"], 3);
    assert_eq!(rejected[1]["code"], "unknown_type");

    // All rejected: 400 with every reason.
    let r = s.post(
        "/v1/batch",
        Some(WRITE_KEY),
        json!({"batch": [{"type": "track"}]}).to_string().as_bytes(),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errors"].as_array().unwrap().len(), 1);
    // Not a batch at all.
    let r = s.post("/v1/batch", Some(WRITE_KEY), br#"{"events": []}"#);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "batch");
    // The batch-level context was merged into each event.
    let config = s.config.clone();
    s.stop();
    let (_, out, _) = run(&config, &["events", "export"]);
    assert_eq!(out.matches("analytics-node").count(), 2, "{out}");
}

#[test]
fn duplicates_are_acknowledged_not_stored() {
    let (_d, s) = server();
    let body = json!({"batch": [track("d-1", "u1"), track("d-2", "u1"), track("d-1", "u1")]});
    let r = s.post("/v1/batch", Some(WRITE_KEY), body.to_string().as_bytes());
    assert_eq!(counts(&r), (Some(2), Some(1)));
    let r = s.post(
        "/v1/track",
        Some(WRITE_KEY),
        track("d-2", "u1").to_string().as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(counts(&r), (Some(0), Some(1)));
    // The same messageId from another source is a different event.
    let r = s.post(
        "/v1/track",
        Some(POS_KEY),
        track("d-2", "u1").to_string().as_bytes(),
    );
    assert_eq!(r.json()["accepted"], 1);
    let config = s.config.clone();
    s.stop();
    let mut ids = exported_message_ids(&config);
    ids.sort();
    assert_eq!(ids, ["d-1", "d-2", "d-2"]);
}

#[test]
fn gzip_limits_cors_and_unknown_paths() {
    let (_d, s) = server();
    let body =
        json!({"batch": (0..50).map(|i| track(&format!("g-{i}"), "u1")).collect::<Vec<_>>()})
            .to_string();
    let r = request(
        &s.addr,
        "POST",
        "/v1/batch",
        Some(&basic(WRITE_KEY)),
        &[("Content-Encoding", "gzip")],
        &gzip(body.as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["accepted"], 50);
    // Text/plain bodies (analytics.js avoids preflights that way).
    let r = request(
        &s.addr,
        "POST",
        "/v1/track",
        Some(&basic(WRITE_KEY)),
        &[("Content-Type", "text/plain")],
        track("t-1", "u1").to_string().as_bytes(),
    );
    assert_eq!(r.status, 200);
    // Over the body limit (256 KiB in the test config), plain and as a gzip bomb.
    let big = vec![b' '; 300 * 1024];
    let r = s.post("/v1/batch", Some(WRITE_KEY), &big);
    assert_eq!(
        (r.status, r.json()["code"].as_str().unwrap()),
        (413, "too_large")
    );
    let bomb = gzip(&vec![b' '; 8 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024);
    let r = request(
        &s.addr,
        "POST",
        "/v1/batch",
        Some(&basic(WRITE_KEY)),
        &[("Content-Encoding", "gzip")],
        &bomb,
    );
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    // Broken gzip.
    let r = request(
        &s.addr,
        "POST",
        "/v1/track",
        Some(&basic(WRITE_KEY)),
        &[("Content-Encoding", "gzip")],
        b"not gzip at all",
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    // A single event over 32 KiB.
    let huge = json!({"userId": "u1", "event": "x", "properties": {"blob": "x".repeat(40_000)}});
    let r = s.post("/v1/track", Some(WRITE_KEY), huge.to_string().as_bytes());
    assert_eq!(
        (r.status, r.json()["code"].as_str().unwrap()),
        (400, "too_large")
    );
    // CORS preflight from a browser SDK.
    let r = request(
        &s.addr,
        "OPTIONS",
        "/v1/track",
        None,
        &[
            ("Origin", "https://shop.example.com"),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "content-type,authorization",
            ),
        ],
        b"",
    );
    assert!(r.status == 200 || r.status == 204, "{}", r.status);
    assert!(
        r.headers
            .to_ascii_lowercase()
            .contains("access-control-allow-origin: *"),
        "{}",
        r.headers
    );
    let r = s.post("/v1/nothing", Some(WRITE_KEY), b"{}");
    assert_eq!(
        (r.status, r.json()["code"].as_str().unwrap()),
        (404, "not_found")
    );
    let r = request(&s.addr, "GET", "/health", None, &[], b"");
    assert_eq!(r.status, 200);
}

#[test]
fn clock_skew_is_corrected_like_segment() {
    let (_d, s) = server();
    // The device clock is one hour fast: sentAt and timestamp both carry the skew.
    let body = json!({"batch": [{"type": "track", "messageId": "skew-1", "userId": "u1", "event": "x",
        "timestamp": "2030-01-01T11:00:00.000Z"}], "sentAt": "2030-01-01T11:00:10.000Z"});
    let r = s.post("/v1/batch", Some(WRITE_KEY), body.to_string().as_bytes());
    assert_eq!(r.status, 200);
    let config = s.config.clone();
    s.stop();
    let (_, out, _) = run(&config, &["events", "export"]);
    let e: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let received = iob_types_ts(e["receivedAt"].as_str().unwrap());
    let ts = iob_types_ts(e["timestamp"].as_str().unwrap());
    assert_eq!(
        received - ts,
        10_000,
        "timestamp = receivedAt - (sentAt - originalTimestamp): {e}"
    );
    assert_eq!(e["originalTimestamp"], "2030-01-01T11:00:00.000Z");
}

fn iob_types_ts(s: &str) -> i64 {
    iob_types::Timestamp::parse("test", s).unwrap().millis()
}

#[test]
fn admin_endpoints_reject_bad_input_with_problems() {
    let (_d, s) = server();
    let admin = format!("Bearer {ADMIN_KEY}");
    let r = request(
        &s.addr,
        "GET",
        "/v1/quarantine?limit=lots",
        Some(&admin),
        &[],
        b"",
    );
    assert_eq!(
        (r.status, r.json()["code"].as_str().unwrap()),
        (400, "invalid_query")
    );
    assert!(
        r.json()["detail"].as_str().unwrap().contains("limit"),
        "{}",
        r.json()
    );
    let r = request(
        &s.addr,
        "GET",
        "/v1/quarantine?bogus=1",
        Some(&admin),
        &[],
        b"",
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()["detail"].as_str().unwrap().contains("bogus"),
        "{}",
        r.json()
    );
    let r = request(
        &s.addr,
        "POST",
        "/v1/quarantine/replay",
        Some(&admin),
        &[],
        b"{\"ids\": \"all\"}",
    );
    assert_eq!(
        (r.status, r.json()["code"].as_str().unwrap()),
        (400, "malformed_json")
    );
    let r = request(
        &s.addr,
        "POST",
        "/v1/quarantine/replay",
        Some(&admin),
        &[],
        b"{\"idz\": [1]}",
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["detail"].as_str().unwrap().contains("idz"));
    let r = request(
        &s.addr,
        "POST",
        "/v1/quarantine/replay",
        Some(&admin),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "an empty body replays every open entry");
    assert_eq!(r.json()["replayed"], 0);
    let r = request(
        &s.addr,
        "GET",
        "/v1/track",
        Some(&basic(WRITE_KEY)),
        &[],
        b"",
    );
    assert_eq!(
        (r.status, r.json()["code"].as_str().unwrap()),
        (405, "method_not_allowed")
    );
    let r = request(
        &s.addr,
        "GET",
        "/v1/quarantine?limit=5&all=true",
        Some(&admin),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
}
