//! The audit log end to end: a profile read over HTTP and one with the CLI leave records that
//! name the key, the purpose and the person's pseudonym (never the raw identifier);
//! `GET /v1/audit` and `iob audit list` show them; `iob audit verify` passes, then fails naming
//! the record after the file is tampered with.

use serde_json::json;

use crate::common::*;

const RAW: &str = "raw-ada-id-4417";

#[test]
fn profile_reads_are_audited_and_tampering_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let s = Server::start(&cfg);
    let body = json!({"batch": [
        {"type":"identify","userId":RAW,"traits":{"plan":"pro"},"messageId":"a1"},
        {"type":"track","userId":RAW,"event":"Viewed","messageId":"a2"},
        {"type":"consent","userId":RAW,"granted":["personalization"],"messageId":"a3"},
    ]});
    let r = s.post("/v1/batch", Some(WRITE_KEY), body.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let admin = format!("Bearer {ADMIN_KEY}");
    let path = format!("/v1/persons/{RAW}?purpose=personalization");
    let r = request(&s.addr, "GET", &path, Some(&admin), &[], b"");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    let r = request(&s.addr, "GET", "/v1/audit?limit=10", Some(&admin), &[], b"");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let recs = r.json()["records"].clone();
    assert_eq!(recs.as_array().unwrap().len(), 1, "{recs}");
    let http = &recs[0];
    assert_eq!(http["action"], "profile.read");
    assert_eq!(http["actor"], "api_key");
    assert_eq!(http["key"], "admin");
    assert_eq!(http["purpose"], "personalization");
    assert_eq!(http["items"], 1);
    let subject = http["subject"].as_str().unwrap().to_string();
    assert_eq!(subject.len(), 32);
    assert!(subject.bytes().all(|b| b.is_ascii_hexdigit()));
    let r = request(
        &s.addr,
        "GET",
        "/v1/audit",
        Some(&basic(WRITE_KEY)),
        &[],
        b"",
    );
    assert_eq!(r.status, 403, "a write key may not read the audit log");
    let r = request(&s.addr, "GET", "/v1/audit?bogus=1", Some(&admin), &[], b"");
    assert_eq!(r.status, 400);
    s.stop();

    let (ok, _, err) = run(&cfg, &["profile", RAW, "--purpose", "analytics"]);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&cfg, &["audit", "list", "--subject", &subject]);
    assert!(ok, "{err}");
    let listed: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "{out}");
    assert_eq!(listed[0]["actor"], "operator");
    assert_eq!(listed[0]["purpose"], "analytics");
    assert_eq!(listed[1]["key"], "admin");
    let (ok, out, _) = run(&cfg, &["audit", "list", "--actor", "admin"]);
    assert!(ok);
    assert_eq!(out.lines().count(), 1, "{out}");

    let (ok, out, err) = run(&cfg, &["audit", "verify"]);
    assert!(ok, "{err}");
    assert!(out.contains("audit log OK: 2 records"), "{out}");
    let head = listed[0]["hash"].as_str().unwrap();
    assert!(out.contains(head), "verify prints the head hash: {out}");

    // Not the raw identifier anywhere in the audit directory.
    let audit = dir.path().join("data/audit");
    let log = audit.join("audit-0000.log");
    for f in std::fs::read_dir(&audit).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(RAW));
    }

    // Tampering: the purpose of the second record changed.
    let original = std::fs::read_to_string(&log).unwrap();
    std::fs::write(
        &log,
        original.replace("\"purpose\":\"analytics\"", "\"purpose\":\"security\""),
    )
    .unwrap();
    let (ok, _, err) = run(&cfg, &["audit", "verify"]);
    assert!(!ok, "a changed record must fail verification");
    assert!(
        err.contains("audit-0000.log line 2 (record 1): changed"),
        "{err}"
    );
    // The last record removed.
    let first_line = original.lines().next().unwrap().to_string() + "\n";
    std::fs::write(&log, first_line).unwrap();
    let (ok, _, err) = run(&cfg, &["audit", "verify"]);
    assert!(!ok);
    assert!(
        err.contains("truncated") && err.contains("HEAD names record 1"),
        "{err}"
    );
    // And no read of personal data proceeds on such a chain.
    let (ok, _, err) = run(&cfg, &["profile", RAW]);
    assert!(!ok);
    assert!(err.contains("audit log"), "{err}");
}
