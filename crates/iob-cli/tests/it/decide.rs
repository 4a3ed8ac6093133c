//! `GET /v1/decide` end to end against `iob serve`: personalized answers with explanations after
//! `POST /v1/models/train`, a new event changing the answer without retraining, consent
//! withdrawn → a non-personalized answer that says why, and bad parameters naming the field.

use serde_json::{Value, json};

use crate::common::*;

fn decide(s: &Server, query: &str) -> Resp {
    request(
        &s.addr,
        "GET",
        &format!("/v1/decide?{query}"),
        Some(&format!("Bearer {ADMIN_KEY}")),
        &[],
        b"",
    )
}

fn batch(s: &Server, events: Vec<Value>) {
    let r = s.post(
        "/v1/batch",
        Some(WRITE_KEY),
        json!({ "batch": events }).to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

fn view(user: &str, item: &str) -> Value {
    json!({"type":"track","userId":user,"event":"Product Viewed","properties":{"item_id":item}})
}

fn consent(user: &str, granted: bool) -> Value {
    let (g, d) = if granted {
        (vec!["personalization"], vec![])
    } else {
        (vec![], vec!["personalization"])
    };
    json!({"type":"consent","userId":user,"granted":g,"denied":d})
}

fn items(r: &Resp) -> Vec<String> {
    r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn decide_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&write_config(
        dir.path(),
        "[recommend.ease]\nlambda = 1.0\n[placements.home]\nn = 2\n",
    ));
    let mut events = Vec::new();
    for (k, group) in [["a1", "a2", "a3"], ["b1", "b2", "b3"]].iter().enumerate() {
        for j in 0..3 {
            let user = format!("g{k}u{j}");
            events.push(consent(&user, true));
            for (i, item) in group.iter().enumerate() {
                if i != j {
                    events.push(view(&user, item));
                }
            }
        }
    }
    events.extend([consent("ada", true), view("ada", "a1"), view("ada", "a2")]);
    batch(&s, events);
    let r = request(
        &s.addr,
        "POST",
        "/v1/models/train",
        Some(&format!("Bearer {ADMIN_KEY}")),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["persons"], 7);

    let r = decide(&s, "person=ada&placement=home");
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["personalized"], true, "{v}");
    assert_eq!(v["items"][0]["item"], "a3");
    let because: Vec<&str> = v["items"][0]["because"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["item"].as_str().unwrap())
        .collect();
    assert!(because.contains(&"a1") && because.contains(&"a2"), "{v}");

    // A new event changes the answer at once (no retraining).
    batch(
        &s,
        vec![view("ada", "a3"), view("ada", "b1"), view("ada", "b2")],
    );
    let r = decide(&s, "person=ada&placement=home&n=1");
    assert_eq!(items(&r), vec!["b3".to_string()], "{}", r.json());

    // Consent withdrawn: not personalized, and the answer says why.
    batch(&s, vec![consent("ada", false)]);
    let v = decide(&s, "person=ada&placement=home").json();
    assert_eq!(v["personalized"], false);
    assert_eq!(v["fallback"]["reason"], "no_consent");
    assert_eq!(v["fallback"]["basis"], "withdrawn");
    let v = decide(&s, "person=stranger").json();
    assert_eq!(v["fallback"]["reason"], "unknown_person");

    for (q, field) in [
        ("person=ada&n=0", "n"),
        ("person=ada&n=x", "n"),
        ("person=ada&placement=zzz", "placement"),
        ("n=3", "person"),
    ] {
        let r = decide(&s, q);
        assert_eq!(r.status, 400, "{q}");
        assert_eq!(r.json()["field"], field, "{q}: {}", r.json());
    }
    assert_eq!(decide(&s, "person=ada&purpose=marketing").status, 400);
}
