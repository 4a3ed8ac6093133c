//! Access control end to end: the authorization matrix (every route × every kind of key),
//! forged, expired and malformed keys, a write key that tries to claim another source, key
//! management over HTTP and the CLI, and per-key rate limits.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

fn call(s: &Server, method: &str, path: &str, auth: Option<&str>, body: &[u8]) -> Resp {
    request(&s.addr, method, path, auth, &[], body)
}

/// Admin creates a key over HTTP; returns its plaintext.
fn create_key(s: &Server, body: Value) -> String {
    let r = call(
        s,
        "POST",
        "/v1/keys",
        Some(&bearer(ADMIN_KEY)),
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()["key"].as_str().unwrap().to_string()
}

fn code(r: &Resp) -> String {
    r.json()["code"].as_str().unwrap_or_default().to_string()
}

/// Every route × every kind of key → the expected status. A reader sees the access rules here.
#[test]
fn authorization_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&write_config(dir.path(), ""));
    let expiring = Instant::now();
    let expired = create_key(
        &s,
        json!({"scope": "admin", "id": "old", "expires_in": "1s"}),
    );
    let analytics = create_key(&s, json!({"scope": "read:analytics", "id": "bi"}));
    let personal = create_key(&s, json!({"scope": "read:personal", "id": "crm"}));
    let seed = s.post(
        "/v1/track",
        Some(WRITE_KEY),
        track("seed", "u1").to_string().as_bytes(),
    );
    assert_eq!(seed.status, 200);
    let seed = s.post(
        "/v1/track",
        Some(WRITE_KEY),
        track("seed-2", "u2").to_string().as_bytes(),
    );
    assert_eq!(seed.status, 200);
    std::thread::sleep(Duration::from_millis(1100).saturating_sub(expiring.elapsed()));

    // Columns: the Authorization header sent.
    let keys: [(&str, Option<String>); 8] = [
        ("none", None),
        (
            "forged",
            Some(bearer("iobr_0123456789abcdef0123456789abcdef")),
        ),
        ("expired", Some(bearer(&expired))),
        ("write web", Some(basic(WRITE_KEY))),
        ("write pos", Some(basic(POS_KEY))),
        ("read:analytics", Some(bearer(&analytics))),
        ("read:personal", Some(bearer(&personal))),
        ("admin", Some(bearer(ADMIN_KEY))),
    ];
    let track_body = track("m", "u1").to_string();
    let batch_body = json!({"batch": [track("b", "u1")]}).to_string();
    let observe_body = json!({"deviceId": "d1", "metric": "hr", "value": 70}).to_string();
    let key_body = json!({"scope": "read:analytics"}).to_string();
    let trends_body = json!({"events": [{"event": "Product Viewed"}]}).to_string();
    let query_body =
        json!({"sql": "SELECT count(*) FROM events", "purpose": "analytics"}).to_string();
    #[rustfmt::skip]
    let matrix: &[(&str, &str, &str, [u16; 8])] = &[
        // method  path                                           body           none forged expired web  pos  analyt personal admin
        ("POST",   "/v1/track",                                   &track_body,   [401, 401, 401, 200, 200, 403, 403, 403]),
        ("POST",   "/v1/observe",                                 &observe_body, [401, 401, 401, 200, 200, 403, 403, 403]),
        ("POST",   "/v1/batch",                                   &batch_body,   [401, 401, 401, 200, 200, 403, 403, 403]),
        ("POST",   "/v1/import",                                  &batch_body,   [401, 401, 401, 200, 200, 403, 403, 403]),
        ("GET",    "/v1/persons/u1?purpose=analytics",            "",            [401, 401, 401, 403, 403, 403, 200, 200]),
        // Personalization is opt-in and u1 never granted it: authorized, but refused by consent.
        ("GET",    "/v1/persons/u1?purpose=personalization",      "",            [401, 401, 401, 403, 403, 403, 403, 403]),
        ("GET",    "/v1/persons/u1/timeline?purpose=analytics",   "",            [401, 401, 401, 403, 403, 403, 200, 200]),
        ("GET",    "/v1/persons/u1/identity?purpose=analytics",   "",            [401, 401, 401, 403, 403, 403, 200, 200]),
        // `operations` (no consent check, raw identifiers) is for admin keys only.
        ("GET",    "/v1/persons/u1/identity?purpose=operations",  "",            [401, 401, 401, 403, 403, 403, 403, 200]),
        ("GET",    "/v1/persons/u1/consent?purpose=analytics",    "",            [401, 401, 401, 403, 403, 403, 200, 200]),
        // SQL returns rows of (pseudonymous) persons: personal-data keys only.
        ("POST",   "/v1/query",                                   &query_body,   [401, 401, 401, 403, 403, 403, 200, 200]),
        // Aggregates: small groups suppressed for read:analytics (tested in analytics.rs).
        ("POST",   "/v1/analyses/trends?purpose=analytics",       &trends_body,  [401, 401, 401, 403, 403, 200, 200, 200]),
        ("GET",    "/v1/stats",                                   "",            [401, 401, 401, 403, 403, 200, 200, 200]),
        ("GET",    "/v1/quarantine",                              "",            [401, 401, 401, 403, 403, 403, 403, 200]),
        ("POST",   "/v1/quarantine/replay",                       "",            [401, 401, 401, 403, 403, 403, 403, 200]),
        ("GET",    "/v1/keys",                                    "",            [401, 401, 401, 403, 403, 403, 403, 200]),
        ("POST",   "/v1/keys",                                    &key_body,     [401, 401, 401, 403, 403, 403, 403, 201]),
        // Authorized, but there is no such key: 404 only for admin.
        ("DELETE", "/v1/keys/no-such-key",                        "",            [401, 401, 401, 403, 403, 403, 403, 404]),
        ("GET",    "/v1/persons/u1/export",                       "",            [401, 401, 401, 403, 403, 403, 403, 200]),
        ("GET",    "/v1/audit",                                   "",            [401, 401, 401, 403, 403, 403, 403, 200]),
        ("DELETE", "/v1/persons/u2",                              "",            [401, 401, 401, 403, 403, 403, 403, 200]),
        // Decide: a person read (read:personal); without consent the answer is a fallback (200).
        ("GET",    "/v1/decide?person=u1&n=5",                    "",            [401, 401, 401, 403, 403, 403, 200, 200]),
        ("GET",    "/v1/decide?person=u1&n=many",                 "",            [401, 401, 401, 403, 403, 403, 400, 400]),
        ("GET",    "/v1/decide?person=u1&placement=nope",         "",            [401, 401, 401, 403, 403, 403, 400, 400]),
        ("POST",   "/v1/models/train",                            "",            [401, 401, 401, 403, 403, 403, 403, 200]),
        ("GET",    "/health",                                     "",            [200, 200, 200, 200, 200, 200, 200, 200]),
        ("GET",    "/ready",                                      "",            [200, 200, 200, 200, 200, 200, 200, 200]),
    ];
    let mut wrong = Vec::new();
    for (method, path, body, expected) in matrix {
        for ((who, auth), want) in keys.iter().zip(expected) {
            let r = call(&s, method, path, auth.as_deref(), body.as_bytes());
            if r.status != *want {
                wrong.push(format!(
                    "{method} {path} as {who}: {} (expected {want}) {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                ));
                continue;
            }
            // Refusals say why, with a stable code.
            let expected_code = match (r.status, *who) {
                (401, "none") => "missing_key",
                (401, "forged") => "invalid_key",
                (401, "expired") => "expired_key",
                // Keys that may read persons are refused by the person's consent instead.
                (403, "read:personal" | "admin") if path.contains("personalization") => {
                    "consent_required"
                }
                (403, _) => "forbidden",
                _ => continue,
            };
            if code(&r) != expected_code {
                wrong.push(format!("{method} {path} as {who}: code {}", code(&r)));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn refusals_name_the_scope_needed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&write_config(dir.path(), ""));
    let analytics = create_key(&s, json!({"scope": "read:analytics"}));
    let r = call(
        &s,
        "GET",
        "/v1/persons/u1?purpose=analytics",
        Some(&bearer(&analytics)),
        b"",
    );
    assert_eq!(r.status, 403);
    let j = r.json();
    assert_eq!(
        j["required_scopes"],
        json!(["read:personal", "admin"]),
        "{j}"
    );
    assert_eq!(j["scope"], "read:analytics");
    assert!(
        j["detail"].as_str().unwrap().contains("read personal data"),
        "{j}"
    );

    let r = call(&s, "GET", "/v1/quarantine", None, b"");
    assert_eq!(r.status, 401);
    let j = r.json();
    assert_eq!(j["required_scopes"], json!(["admin"]));
    assert!(j["detail"].as_str().unwrap().contains("Bearer"), "{j}");
    assert!(
        r.headers
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{}",
        r.headers
    );
    assert!(
        r.headers
            .to_ascii_lowercase()
            .contains("application/problem+json")
    );
}

/// Forged keys (near misses of a real one, its hash, absurd lengths) and malformed headers all
/// answer 401 with a problem body that never echoes what was sent.
#[test]
fn forged_expired_and_malformed_keys() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&write_config(dir.path(), ""));
    let short = create_key(&s, json!({"scope": "read:personal", "expires_in": "1s"}));
    let keys_json = std::fs::read_to_string(dir.path().join("data/keys.json")).unwrap();
    let hash = serde_json::from_str::<Value>(&keys_json).unwrap()["keys"][0]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!keys_json.contains(&short), "plaintext never stored");
    let mut near = ADMIN_KEY.to_string();
    near.pop();
    near.push('4');
    let long = "k".repeat(8000);
    let forged = [
        near.clone(),
        ADMIN_KEY.to_uppercase(),
        format!("{ADMIN_KEY} "),
        hash.clone(),
        long,
        "ioba_".to_string(),
    ];
    for f in &forged {
        for path in ["/v1/stats", "/v1/persons/u1?purpose=analytics"] {
            let r = call(&s, "GET", path, Some(&bearer(f)), b"");
            // A trailing space is trimmed: that one is the real key (u1 is unknown: 404).
            if f.trim() == ADMIN_KEY {
                assert!(matches!(r.status, 200 | 404), "{path}: {}", r.status);
                continue;
            }
            assert_eq!(
                (r.status, code(&r).as_str()),
                (401, "invalid_key"),
                "{path}"
            );
            assert!(!String::from_utf8_lossy(&r.body).contains(f.as_str()));
        }
        // The collector says the same.
        let r = s.post(
            "/v1/track",
            Some(f),
            track("f", "u1").to_string().as_bytes(),
        );
        if f.trim() != ADMIN_KEY {
            assert_eq!(r.status, 401, "collector with a forged key");
        }
    }
    for bad in [
        "Token abc",
        "Bearer",
        "Basic %%%",
        "Basic Og==",
        "abc",
        "Bearer\tx y",
    ] {
        let r = call(&s, "GET", "/v1/stats", Some(bad), b"");
        assert_eq!(r.status, 401, "{bad}");
        let c = code(&r);
        assert!(
            c == "malformed_authorization" || c == "invalid_key",
            "{bad}: {c}"
        );
    }
    std::thread::sleep(Duration::from_millis(1100));
    let r = call(
        &s,
        "GET",
        "/v1/persons/u1?purpose=analytics",
        Some(&bearer(&short)),
        b"",
    );
    assert_eq!((r.status, code(&r).as_str()), (401, "expired_key"));
}

/// A source's write key sends only for its source: neither a body `writeKey` of another source
/// nor a client-sent `iobSource` changes where its events are attributed.
#[test]
fn a_write_key_cannot_claim_another_source() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&write_config(dir.path(), ""));
    let mut claim = track("claim-1", "u1");
    claim["writeKey"] = json!(POS_KEY);
    claim["iobSource"] = json!("pos");
    let r = s.post("/v1/track", Some(WRITE_KEY), claim.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let batch = json!({"writeKey": POS_KEY, "batch": [track("claim-2", "u1")]});
    let r = s.post("/v1/batch", Some(WRITE_KEY), batch.to_string().as_bytes());
    assert_eq!(r.status, 200);
    // The same messageId from the real pos source is a different event (dedup is per source).
    let r = s.post(
        "/v1/track",
        Some(POS_KEY),
        track("claim-1", "u1").to_string().as_bytes(),
    );
    assert_eq!(counts(&r), (Some(1), Some(0)));
    let config = s.config.clone();
    s.stop();
    let (ok, out, err) = run(&config, &["events", "export"]);
    assert!(ok, "{err}");
    let sources: Vec<(String, String)> = out
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["messageId"].as_str().unwrap().into(),
                v["iobSource"].as_str().unwrap().into(),
            )
        })
        .collect();
    let pairs = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        sources,
        [
            pairs("claim-1", "web"),
            pairs("claim-2", "web"),
            pairs("claim-1", "pos")
        ]
    );
}

/// Keys created over HTTP work at once and persist; listing never shows secrets or hashes;
/// revoking works at once; the CLI manages keys when no server holds the directory and says
/// so when one does.
#[test]
fn keys_over_http_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let s = Server::start(&cfg);
    let admin = bearer(ADMIN_KEY);
    let r = call(
        &s,
        "POST",
        "/v1/keys",
        Some(&admin),
        json!({"scope": "write", "source": "kiosk", "id": "kiosk-1"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 201);
    let j = r.json();
    assert_eq!(
        (j["id"].as_str(), j["scope"].as_str(), j["source"].as_str()),
        (Some("kiosk-1"), Some("write"), Some("kiosk"))
    );
    let kiosk = j["key"].as_str().unwrap().to_string();
    let r = s.post(
        "/v1/track",
        Some(&kiosk),
        track("k1", "u1").to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "a new key works without a restart");

    let r = call(
        &s,
        "POST",
        "/v1/keys",
        Some(&admin),
        br#"{"scope":"write","source":"x","id":"kiosk-1"}"#,
    );
    assert_eq!((r.status, code(&r).as_str()), (409, "key_exists"));
    let r = call(
        &s,
        "POST",
        "/v1/keys",
        Some(&admin),
        br#"{"scope":"reader"}"#,
    );
    assert_eq!((r.status, code(&r).as_str()), (400, "invalid_value"));
    let r = call(
        &s,
        "POST",
        "/v1/keys",
        Some(&admin),
        br#"{"scope":"admin","expires_in":"soon"}"#,
    );
    assert_eq!((r.status, code(&r).as_str()), (400, "invalid_value"));
    let r = call(&s, "DELETE", "/v1/keys/admin", Some(&admin), b"");
    assert_eq!((r.status, code(&r).as_str()), (409, "configured_key"));

    let r = call(&s, "GET", "/v1/keys", Some(&admin), b"");
    let listed = String::from_utf8_lossy(&r.body).to_string();
    assert!(
        listed.contains("\"kiosk-1\"") && listed.contains("\"origin\":\"config\""),
        "{listed}"
    );
    assert!(!listed.contains(&kiosk) && !listed.contains("sha256") && !listed.contains(ADMIN_KEY));

    let r = call(&s, "DELETE", "/v1/keys/kiosk-1", Some(&admin), b"");
    assert_eq!(r.status, 200);
    let r = s.post(
        "/v1/track",
        Some(&kiosk),
        track("k2", "u1").to_string().as_bytes(),
    );
    assert_eq!(
        (r.status, code(&r).as_str()),
        (401, "invalid_key"),
        "revoked at once"
    );

    // The CLI refuses while the server holds the directory, and says what to do.
    let (ok, _, err) = run(&cfg, &["keys", "create", "--scope", "read:analytics"]);
    assert!(
        !ok && err.contains("in use") && err.contains("/v1/keys"),
        "{err}"
    );
    s.stop();

    let (ok, out, err) = run(
        &cfg,
        &[
            "keys",
            "create",
            "--scope",
            "read:personal",
            "--id",
            "crm",
            "--expires-in",
            "30d",
        ],
    );
    assert!(ok, "{err}");
    let crm = out.trim().to_string();
    assert!(
        crm.starts_with("iobr_") && err.contains("shown only now"),
        "{out} {err}"
    );
    let (ok, out, _) = run(&cfg, &["keys", "list"]);
    assert!(
        ok && out.contains("crm") && out.contains("read:personal"),
        "{out}"
    );
    assert!(!out.contains(&crm) && !out.contains("kiosk-1"), "{out}");
    let (ok, _, err) = run(&cfg, &["keys", "create", "--scope", "write"]);
    assert!(!ok && err.contains("--source"), "{err}");

    let s = Server::start(&cfg);
    let r = call(
        &s,
        "GET",
        "/v1/persons/u1?purpose=analytics",
        Some(&bearer(&crm)),
        b"",
    );
    assert_eq!(r.status, 200, "a CLI-made key works after restart");
    s.stop();
    let (ok, _, err) = run(&cfg, &["keys", "revoke", "crm"]);
    assert!(ok, "{err}");
    let (_, out, _) = run(&cfg, &["keys", "list", "--json"]);
    assert!(!out.contains("\"crm\""), "{out}");
}

#[test]
fn rate_limits_answer_429_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let s = Server::start_env(
        &cfg,
        &[],
        &[
            ("IOB_SERVER__RATE_LIMIT_PER_SEC", "0.5"),
            ("IOB_SERVER__RATE_LIMIT_BURST", "3"),
        ],
    );
    let admin = bearer(ADMIN_KEY);
    for _ in 0..3 {
        assert_eq!(call(&s, "GET", "/v1/stats", Some(&admin), b"").status, 200);
    }
    let r = call(&s, "GET", "/v1/stats", Some(&admin), b"");
    assert_eq!((r.status, code(&r).as_str()), (429, "rate_limited"));
    let retry: u64 = r
        .headers
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("Retry-After header");
    assert!((1..=2).contains(&retry), "{retry}");
    // Another key has its own bucket; the collector is limited the same way.
    for i in 0..3 {
        let r = s.post(
            "/v1/track",
            Some(WRITE_KEY),
            track(&format!("r{i}"), "u1").to_string().as_bytes(),
        );
        assert_eq!(r.status, 200);
    }
    let r = s.post(
        "/v1/track",
        Some(WRITE_KEY),
        track("r9", "u1").to_string().as_bytes(),
    );
    assert_eq!((r.status, code(&r).as_str()), (429, "rate_limited"));
    // Unauthenticated routes are not limited.
    assert_eq!(call(&s, "GET", "/health", None, b"").status, 200);
}
