//! Privacy end to end through the real binary: consent withdrawal takes effect on the next
//! read, health readings need health consent, everything personal is sealed at rest, erasure
//! leaves no raw value anywhere under the data directory (nor its hex or base64), export lists
//! every item with its purpose, master key rotation keeps the data readable, and debug logs
//! hold no personal value.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::*;

const USER: &str = "zq-user-5521";
const EMAIL: &str = "zelda.q.5521@example.org";
const REVIEW: &str = "zqxv wonderful distinctive shoes";
const IP: &str = "203.0.113.77";

fn admin_get(s: &Server, path: &str) -> Resp {
    let h = format!("Bearer {ADMIN_KEY}");
    request(&s.addr, "GET", path, Some(&h), &[], b"")
}

fn admin_delete(s: &Server, path: &str) -> Resp {
    let h = format!("Bearer {ADMIN_KEY}");
    request(&s.addr, "DELETE", path, Some(&h), &[], b"")
}

fn batch(s: &Server, events: Vec<Value>) -> Resp {
    s.post(
        "/v1/batch",
        Some(WRITE_KEY),
        serde_json::to_vec(&json!({ "batch": events }))
            .unwrap()
            .as_slice(),
    )
}

fn personal_history() -> Vec<Value> {
    vec![
        json!({"type":"identify","userId":USER,"anonymousId":"anon-zq","traits":{"email":EMAIL,"name":"Zelda Q"},
               "context":{"ip":IP,"device":{"id":"band-zq","type":"wearable"}},"messageId":"p1"}),
        json!({"type":"track","userId":USER,"event":"Review Posted","properties":{"review":REVIEW,"product_id":"shoe-1"},"messageId":"p2"}),
        json!({"type":"track","userId":"other-user","event":"Product Viewed","properties":{"product_id":"shoe-1"},"messageId":"p3"}),
    ]
}

/// Every file under `dir` that contains `needle`.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        if bytes.windows(needle.len()).any(|w| w == needle) {
            hits.push(entry.display().to_string());
        }
    }
    hits
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

/// The raw value and its hex and base64 forms (at every alignment of the value in a stream).
fn forms(v: &str) -> Vec<Vec<u8>> {
    let hex: String = v.bytes().map(|b| format!("{b:02x}")).collect();
    let mut out = vec![v.as_bytes().to_vec(), hex.into_bytes()];
    for shift in 0..3 {
        let padded = format!("{}{v}", "\0".repeat(shift));
        let b64 = base64::engine::general_purpose::STANDARD.encode(padded.as_bytes());
        // Drop the characters that depend on the neighbours.
        let inner = &b64[(shift * 4).div_ceil(3) + 1..b64.len().saturating_sub(4)];
        out.push(inner.as_bytes().to_vec());
    }
    out
}

fn assert_absent(dir: &std::path::Path, values: &[&str]) {
    for v in values {
        for f in forms(v) {
            let hits = files_containing(dir, &f);
            assert!(
                hits.is_empty(),
                "`{}` found in {hits:?}",
                String::from_utf8_lossy(&f)
            );
        }
    }
}

#[test]
fn consent_health_sealing_export_and_erasure() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let data = dir.path().join("data");
    let s = Server::start(&cfg);
    let r = batch(&s, personal_history());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    // Analytics is opt-out: readable. Personalization is opt-in: refused, naming the purpose.
    let p = admin_get(&s, &format!("/v1/persons/{USER}?purpose=analytics"));
    assert_eq!(p.status, 200, "{}", String::from_utf8_lossy(&p.body));
    let r = admin_get(&s, &format!("/v1/persons/{USER}?purpose=personalization"));
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], "consent_required");
    assert_eq!(r.json()["purpose"], "personalization");

    // Health readings without health consent: quarantined (sealed), never stored.
    let reading = json!({"deviceId":"band-zq","metric":"heart_rate","value":61,"messageId":"h1"});
    let r = s.post(
        "/v1/observe",
        Some(WRITE_KEY),
        reading.to_string().as_bytes(),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "consent_required");
    assert_eq!(r.json()["field"], "metric");
    // Granted: accepted, and visible to health reads only.
    let consent = json!({"userId":USER,"granted":["health","personalization"],"policyVersion":"v3","source":"app"});
    assert_eq!(
        s.post(
            "/v1/consent",
            Some(WRITE_KEY),
            consent.to_string().as_bytes()
        )
        .status,
        200
    );
    let reading = json!({"deviceId":"band-zq","metric":"heart_rate","value":62,"messageId":"h2"});
    let r = s.post(
        "/v1/observe",
        Some(WRITE_KEY),
        reading.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let health = admin_get(&s, &format!("/v1/persons/{USER}?purpose=health")).json();
    assert_eq!(health["metrics"]["heart_rate"]["n"], 1, "{health}");
    let pers = admin_get(&s, &format!("/v1/persons/{USER}?purpose=personalization")).json();
    assert!(pers["metrics"].get("heart_rate").is_none(), "{pers}");
    let tl = admin_get(
        &s,
        &format!("/v1/persons/{USER}/timeline?purpose=personalization"),
    )
    .json();
    assert!(
        tl["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["type"] != "observe"),
        "{tl}"
    );

    // Withdrawal takes effect on the next read, for profile, timeline and identity.
    let withdraw = json!({"userId":USER,"denied":["personalization"],"source":"app"});
    assert_eq!(
        s.post(
            "/v1/consent",
            Some(WRITE_KEY),
            withdraw.to_string().as_bytes()
        )
        .status,
        200
    );
    for route in ["", "/timeline", "/identity"] {
        let r = admin_get(
            &s,
            &format!("/v1/persons/{USER}{route}?purpose=personalization"),
        );
        assert_eq!(
            r.status,
            403,
            "{route}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }

    // At rest, nothing personal is readable, even before erasure.
    assert_absent(&data, &[USER, EMAIL, REVIEW, IP]);

    // Export: every item with its purpose; the raw values are there (decrypted for the subject).
    let ex = admin_get(&s, &format!("/v1/persons/{USER}/export"));
    assert_eq!(ex.status, 200, "{}", String::from_utf8_lossy(&ex.body));
    let ex = ex.json();
    let items = ex["items"].as_array().unwrap();
    assert!(items.iter().all(|i| !i["purpose"].is_null()), "{ex}");
    let kinds: Vec<&str> = items.iter().filter_map(|i| i["kind"].as_str()).collect();
    for k in ["identifier", "consent", "profile", "event", "quarantined"] {
        assert!(kinds.contains(&k), "{k} missing: {kinds:?}");
    }
    let text = ex.to_string();
    assert!(text.contains(EMAIL) && text.contains(REVIEW), "{text}");

    // Erase, over HTTP. Aggregates stop counting the person.
    let persons_before = s.stats()["unify"]["persons"].as_u64().unwrap();
    let r = admin_delete(&s, &format!("/v1/persons/{USER}"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let report = r.json();
    assert!(report["keys_destroyed"].as_u64().unwrap() >= 2, "{report}");
    assert_eq!(report["quarantined"], 1, "{report}");
    assert_eq!(
        s.stats()["unify"]["persons"].as_u64().unwrap(),
        persons_before - 1
    );
    for id in [USER, "anon-zq", "band-zq", &format!("email:{EMAIL}")] {
        let r = admin_get(&s, &format!("/v1/persons/{id}?purpose=operations"));
        assert_eq!(r.status, 404, "{id}");
    }
    let other = admin_get(&s, "/v1/persons/other-user?purpose=analytics");
    assert_eq!(other.status, 200);
    s.stop();

    // Nothing readable after a restart either (replay skips the shredded events), and the
    // offline export of every stored event does not list them.
    assert_absent(&data, &[USER, EMAIL, REVIEW, IP, "Zelda Q"]);
    let (ok, out, err) = run(&cfg, &["events", "export"]);
    assert!(ok, "{err}");
    assert!(
        !out.contains("Review Posted") && out.contains("Product Viewed"),
        "{out}"
    );
    let (ok, out, _) = run(&cfg, &["rebuild"]);
    assert!(ok && out.contains("true"), "{out}");
    let (ok, _, err) = run(&cfg, &["profile", USER, "--purpose", "analytics"]);
    assert!(!ok && err.contains("no person"), "{err}");
}

#[test]
fn master_key_rotation_keeps_data_readable_and_old_key_stops_working() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let s = Server::start(&cfg);
    assert_eq!(batch(&s, personal_history()).status, 200);
    s.stop();
    let key_path = dir.path().join("data/secrets/master.key");
    let old = std::fs::read_to_string(&key_path).unwrap();
    let (ok, out, err) = run(&cfg, &["keys", "rotate"]);
    assert!(ok && out.contains("re-wrapped"), "{out} {err}");
    let new = std::fs::read_to_string(&key_path).unwrap();
    assert_ne!(old, new);
    let (ok, out, err) = run(&cfg, &["profile", USER, "--purpose", "analytics"]);
    assert!(ok, "{err}");
    assert!(out.contains("\"events\": 2"), "{out}");
    // The old key no longer opens the vault: a clear error, not garbage.
    std::fs::write(dir.path().join("old.key"), old).unwrap();
    let cfg_old = write_config(
        dir.path(),
        &format!(
            "[privacy]\nmaster_key_file = {:?}\n",
            dir.path().join("old.key")
        ),
    );
    let (ok, _, err) = run(&cfg_old, &["profile", USER, "--purpose", "analytics"]);
    assert!(!ok && err.contains("master key"), "{err}");
    // A lost key file is not silently replaced by a new key (that would shred everything).
    std::fs::remove_file(&key_path).unwrap();
    let cfg = write_config(dir.path(), ""); // back to the generated key's location
    let (ok, _, err) = run(&cfg, &["profile", USER, "--purpose", "analytics"]);
    assert!(!ok && err.contains("master key is missing"), "{err}");
    assert!(!key_path.exists());
}

#[test]
fn debug_logs_hold_no_personal_value() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let mut child = iob()
        .args(["--log", "trace", "--config"])
        .arg(&cfg)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .to_string();
    let post =
        |path: &str, body: &[u8]| request(&addr, "POST", path, Some(&basic(WRITE_KEY)), &[], body);
    let events = json!({ "batch": personal_history() }).to_string();
    assert_eq!(post("/v1/batch", events.as_bytes()).status, 200);
    // Bad input too: rejections must not echo the values either.
    let bad = json!({"userId": USER, "event": 5, "properties": {"review": REVIEW}});
    assert_eq!(post("/v1/track", bad.to_string().as_bytes()).status, 400);
    let h = format!("Bearer {ADMIN_KEY}");
    let path = format!("/v1/persons/{USER}?purpose=analytics");
    assert_eq!(request(&addr, "GET", &path, Some(&h), &[], b"").status, 200);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    child.wait().unwrap();
    assert!(logs.len() > 100, "trace logging produced output: {logs}");
    for v in [USER, EMAIL, REVIEW, IP, WRITE_KEY, ADMIN_KEY] {
        assert!(!logs.contains(v), "`{v}` in the logs");
    }
}

#[test]
fn bulk_reads_filter_by_consent_and_pseudonymize_identifiers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let s = Server::start(&cfg);
    let r = batch(
        &s,
        vec![
            json!({"type":"identify","userId":"ada-77","traits":{"email":"ada77@example.org"},"messageId":"b1"}),
            json!({"type":"track","userId":"ada-77","event":"Viewed","messageId":"b2"}),
            json!({"type":"consent","userId":"ada-77","denied":["analytics"],"messageId":"b3"}),
            json!({"type":"identify","userId":"bob-88","traits":{"email":"bob88@example.org"},
                   "context":{"ip":"198.51.100.9","device":{"id":"band-88"}},"messageId":"b4"}),
            json!({"type":"consent","userId":"bob-88","granted":["health"],"messageId":"b5"}),
        ],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let reading = json!({"deviceId":"band-88","metric":"heart_rate","value":58,"messageId":"b6"});
    assert_eq!(
        s.post(
            "/v1/observe",
            Some(WRITE_KEY),
            reading.to_string().as_bytes()
        )
        .status,
        200
    );
    s.stop();

    let export = |purpose: &str| {
        let (ok, out, err) = run(&cfg, &["events", "export", "--purpose", purpose]);
        assert!(ok, "{err}");
        out.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    // Operations: everything, raw.
    let all = export("operations");
    assert_eq!(all.len(), 6);
    assert!(all.iter().any(|e| e["userId"] == "ada-77"));
    // Analytics: ada withdrew it; bob's events with pseudonyms; no health reading.
    let analytics = export("analytics");
    let text = serde_json::to_string(&analytics).unwrap();
    assert_eq!(analytics.len(), 2, "{text}");
    for raw in [
        "ada-77",
        "bob-88",
        "bob88@example.org",
        "198.51.100.9",
        "band-88",
    ] {
        assert!(!text.contains(raw), "`{raw}` visible to analytics: {text}");
    }
    assert!(analytics.iter().all(|e| e["type"] != "observe"), "{text}");
    let pseudonym = analytics[0]["userId"].as_str().unwrap();
    assert!(pseudonym.len() == 32 && pseudonym.bytes().all(|b| b.is_ascii_hexdigit()));
    // Health: bob granted it (his reading and events); ada never did.
    let health = export("health");
    assert!(
        health.iter().any(|e| e["metric"] == "heart_rate"),
        "{health:?}"
    );
    assert!(health.iter().all(|e| e["userId"] != all[0]["userId"]));
    assert_eq!(health.len(), 3, "{health:?}");
    // A profile for analytics shows the e-mail trait as its pseudonym.
    let (ok, out, err) = run(&cfg, &["profile", "bob-88", "--purpose", "analytics"]);
    assert!(ok, "{err}");
    assert!(!out.contains("bob88@example.org"), "{out}");
    let p: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(p["traits"]["email"].as_str().unwrap().len(), 32, "{p}");
}

#[test]
fn consent_bad_input_is_named_and_unknown_persons_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let s = Server::start(&cfg);
    for (body, field, code) in [
        (
            json!({"userId":"u","granted":["astrology"]}),
            "granted[0]",
            "invalid_value",
        ),
        (
            json!({"userId":"u","granted":"health"}),
            "granted",
            "wrong_type",
        ),
        (
            json!({"userId":"u","denied":[5]}),
            "denied[0]",
            "wrong_type",
        ),
        (json!({"userId":"u"}), "granted", "missing_field"),
    ] {
        let r = s.post("/v1/consent", Some(WRITE_KEY), body.to_string().as_bytes());
        assert_eq!(r.status, 400, "{body}");
        let p = r.json();
        assert_eq!(
            (p["field"].as_str(), p["code"].as_str()),
            (Some(field), Some(code)),
            "{p}"
        );
    }
    // A purpose in the read that is not a purpose at all.
    let r = admin_get(&s, "/v1/persons/u?purpose=Not%20A%20Purpose");
    assert_eq!(r.status, 400);
    // Consent from a person never seen before: recorded, and it governs their first reads.
    let c = json!({"userId":"newcomer","granted":["personalization"],"policyVersion":"v9"});
    assert_eq!(
        s.post("/v1/consent", Some(WRITE_KEY), c.to_string().as_bytes())
            .status,
        200
    );
    let r = admin_get(&s, "/v1/persons/newcomer?purpose=personalization");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = admin_get(&s, "/v1/persons/newcomer?purpose=marketing");
    assert_eq!(r.status, 403);
    let ex = admin_get(&s, "/v1/persons/newcomer/export").json();
    let consent = ex["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "consent")
        .unwrap();
    assert_eq!(consent["data"]["policyVersion"], "v9", "{consent}");
    assert_eq!(consent["data"]["granted"], true);
    // The consent state, as a banner or a CMP would read it back.
    let r = admin_get(&s, "/v1/persons/newcomer/consent?purpose=analytics");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let c = r.json();
    let p = &c["purposes"];
    assert_eq!(
        (
            p["personalization"]["allowed"].as_bool(),
            p["personalization"]["basis"].as_str()
        ),
        (Some(true), Some("granted")),
        "{c}"
    );
    assert_eq!(
        (
            p["marketing"]["allowed"].as_bool(),
            p["marketing"]["basis"].as_str()
        ),
        (Some(false), Some("default")),
        "{c}"
    );
    assert_eq!(
        (
            p["analytics"]["allowed"].as_bool(),
            p["analytics"]["default"].as_str()
        ),
        (Some(true), Some("opt-out")),
        "{c}"
    );
    assert_eq!(p["health"]["allowed"], false);
    assert_eq!(c["history"].as_array().unwrap().len(), 1);
    assert!(p["personalization"]["since"].as_str().is_some());
    assert_eq!(
        admin_get(&s, "/v1/persons/nobody/consent?purpose=analytics").status,
        404
    );
}

#[test]
fn ip_truncation_stores_only_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "[privacy]\ntruncate_ip = true\n");
    let s = Server::start(&cfg);
    let events = vec![
        json!({"type":"track","userId":"t1","event":"A","context":{"ip":"203.0.113.77"},"messageId":"i1"}),
        json!({"type":"track","userId":"t1","event":"B","context":{"ip":"2001:db8:85a3:1234:5678:8a2e:370:7334"},"messageId":"i2"}),
        json!({"type":"track","userId":"t1","event":"C","context":{"ip":"not an address"},"messageId":"i3"}),
    ];
    assert_eq!(batch(&s, events).status, 200);
    s.stop();
    let (ok, out, err) = run(&cfg, &["events", "export"]);
    assert!(ok, "{err}");
    let ips: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["context"]["ip"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ips, ["203.0.113.0", "2001:db8:85a3::", ""]);
}
