//! Identity and profiles end to end: events over HTTP, then the person routes, the CLI's
//! `profile`, `timeline`, `identity explain` and `rebuild` — with merges, a refused merge, late
//! events, and bad input on every route.

use serde_json::json;

use crate::common::*;

fn get(s: &Server, path: &str, auth: bool) -> Resp {
    let h = format!("Bearer {ADMIN_KEY}");
    request(&s.addr, "GET", path, auth.then_some(h.as_str()), &[], b"")
}

fn send(s: &Server, events: Vec<serde_json::Value>) {
    let r = s.post(
        "/v1/batch",
        Some(WRITE_KEY),
        serde_json::to_vec(&json!({ "batch": events }))
            .unwrap()
            .as_slice(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

fn history() -> Vec<serde_json::Value> {
    vec![
        json!({"type":"page","anonymousId":"cookie-1","name":"Home","timestamp":"2026-11-01T10:00:00Z","messageId":"e1"}),
        json!({"type":"track","anonymousId":"cookie-1","event":"Product Viewed","properties":{"product_id":"shoe-9","category":"running","price":89.9},"timestamp":"2026-11-01T10:05:00Z","messageId":"e2"}),
        json!({"type":"identify","anonymousId":"cookie-1","userId":"ada","traits":{"email":"Ada@Example.com","plan":"pro"},"timestamp":"2026-11-01T10:06:00Z","messageId":"e3"}),
        json!({"type":"track","userId":"ada","event":"Order Completed","properties":{"total":120.5,"product_id":"shoe-9"},"context":{"channel":"pos"},"timestamp":"2026-11-02T15:00:00Z","messageId":"e4"}),
        // A second user on the same cookie never merges with ada.
        json!({"type":"track","userId":"bob","anonymousId":"cookie-1","event":"Login","timestamp":"2026-11-03T09:00:00Z","messageId":"e5"}),
        // Late: arrives last, happened first; its trait must not override the newer one.
        json!({"type":"identify","userId":"ada","traits":{"plan":"free"},"timestamp":"2026-10-01T08:00:00Z","messageId":"e6"}),
    ]
}

#[test]
fn profiles_timelines_and_explanations_over_http_and_cli() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let s = Server::start(&cfg);
    send(&s, history());

    // Any identifier finds ada; the profile is current right after the 200.
    for id in [
        "ada",
        "cookie-1",
        "email:ada@example.com",
        "Ada@Example.com",
    ] {
        let r = get(
            &s,
            &format!("/v1/persons/{id}?purpose=analytics&at=2026-11-03T00:00:00Z"),
            true,
        );
        assert_eq!(r.status, 200, "{id}: {}", String::from_utf8_lossy(&r.body));
        let p = r.json();
        assert_eq!(p["events"], 5, "{p}");
        assert_eq!(
            p["traits"]["plan"], "pro",
            "latest by event time, not arrival"
        );
        assert_eq!(p["rfm"]["monetary"], 120.5);
        assert_eq!(p["channels"]["pos"], 1);
        assert_eq!(p["counts"]["Product Viewed"]["7d"], 1);
        assert_eq!(p["top_items"][0][0], "shoe-9");
    }
    let bob = get(&s, "/v1/persons/bob?purpose=analytics", true).json();
    assert_eq!(bob["events"], 1);

    // Timeline: newest first, paginated with a cursor.
    let r = get(
        &s,
        "/v1/persons/ada/timeline?purpose=analytics&limit=2",
        true,
    );
    assert_eq!(r.status, 200);
    let page = r.json();
    let ids: Vec<_> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["messageId"].clone())
        .collect();
    assert_eq!(ids, vec![json!("e4"), json!("e3")]);
    let next = page["next"].as_str().unwrap().to_string();
    let page2 = get(
        &s,
        &format!("/v1/persons/ada/timeline?purpose=analytics&limit=10&before={next}"),
        true,
    )
    .json();
    let ids2: Vec<_> = page2["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["messageId"].clone())
        .collect();
    assert_eq!(ids2, vec![json!("e2"), json!("e1"), json!("e6")]);
    assert!(page2["next"].is_null());

    // Identity explanation names the linking events and the refused merge.
    let ex = get(&s, "/v1/persons/ada/identity?purpose=operations", true).json();
    let kinds: Vec<_> = ex["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, vec!["anon", "user", "email"]);
    assert!(
        ex["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["messageId"] == "e3")
    );
    let bob_ex = get(&s, "/v1/persons/bob/identity?purpose=operations", true).json();
    assert_eq!(bob_ex["refusals"].as_array().unwrap().len(), 1, "{bob_ex}");

    // Bad input on every route: named errors, never a 500.
    for (path, auth, status, code) in [
        ("/v1/persons/ada", true, 400, "invalid_value"),
        (
            "/v1/persons/ada?purpose=spying",
            true,
            400,
            "invalid_purpose",
        ),
        (
            "/v1/persons/ada?purpose=analytics&at=yesterday",
            true,
            400,
            "invalid_value",
        ),
        // Before ada's latest event: a profile is current, not versioned.
        (
            "/v1/persons/ada?purpose=analytics&at=2026-10-15T00:00:00Z",
            true,
            400,
            "invalid_value",
        ),
        (
            "/v1/persons/ada?purpose=analytics&bogus=1",
            true,
            400,
            "invalid_query",
        ),
        (
            "/v1/persons/nobody?purpose=analytics",
            true,
            404,
            "unknown_person",
        ),
        (
            "/v1/persons/ada?purpose=analytics",
            false,
            401,
            "missing_key",
        ),
        (
            "/v1/persons/ada/timeline?purpose=analytics&before=zz",
            true,
            400,
            "invalid_value",
        ),
        (
            "/v1/persons/nobody/identity?purpose=operations",
            true,
            404,
            "unknown_person",
        ),
    ] {
        let r = get(&s, path, auth);
        assert_eq!(
            r.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["code"], code, "{path}");
        assert!(
            !String::from_utf8_lossy(&r.body).contains("nobody"),
            "identifiers are not echoed"
        );
    }
    let r = request(
        &s.addr,
        "GET",
        "/v1/persons/ada?purpose=analytics",
        Some(&basic(WRITE_KEY)),
        &[],
        b"",
    );
    assert_eq!(r.status, 403, "a write key cannot read persons");
    s.stop();

    // The CLI, offline, sees the same (state rebuilt from the log on open).
    let (ok, out, err) = run(
        &cfg,
        &[
            "profile",
            "email:ada@example.com",
            "--at",
            "2026-11-03T00:00:00Z",
        ],
    );
    assert!(ok, "{err}");
    let p: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(p["events"], 5);
    let (ok, out, _) = run(&cfg, &["timeline", "ada", "-n", "1"]);
    assert!(ok);
    assert!(out.contains("\"e4\""), "{out}");
    let (ok, out, _) = run(
        &cfg,
        &["identity", "explain", "ada", "--purpose", "operations"],
    );
    assert!(ok && out.contains("\"email\""), "{out}");
    let (ok, out, err) = run(&cfg, &["rebuild"]);
    assert!(ok, "{out} {err}");
    assert!(out.contains("equal to the online state: true"), "{out}");
    let (ok, _, err) = run(&cfg, &["profile", "nobody"]);
    assert!(!ok && err.contains("no person"), "{err}");
}
