use serde_json::{Value, json};

use super::*;

fn pattern() -> TopicPattern {
    TopicPattern::parse("devices/{deviceId}/{metric}").unwrap()
}

fn ok(topic: &str, payload: &[u8]) -> Value {
    let body = decode(topic, payload, Some(&pattern()), 32 * 1024, "fresh").unwrap();
    serde_json::from_slice(&body).unwrap()
}

fn rejected(topic: &str, payload: &[u8]) -> Rejection {
    decode(topic, payload, Some(&pattern()), 32 * 1024, "fresh").unwrap_err()
}

#[test]
fn patterns_parse_match_and_give_their_filter() {
    let p = pattern();
    assert_eq!(p.filter(), "devices/+/+");
    let n = p.matches("devices/band-7/heart_rate").unwrap();
    assert_eq!(n.get(Field::DeviceId), Some("band-7"));
    assert_eq!(n.get(Field::Metric), Some("heart_rate"));
    assert_eq!(n.get(Field::UserId), None);
    assert!(p.matches("devices/band-7").is_none());
    assert!(p.matches("devices/band-7/heart_rate/extra").is_none());
    assert!(p.matches("other/band-7/heart_rate").is_none());
    assert!(p.matches("devices//heart_rate").is_none());
    assert!(p.matches("").is_none());

    let p = TopicPattern::parse("home/+/{userId}/{deviceId}/{metric}/#").unwrap();
    assert_eq!(p.filter(), "home/+/+/+/+/#");
    let n = p.matches("home/kitchen/u-1/scale/weight").unwrap();
    assert_eq!(n.get(Field::UserId), Some("u-1"));
    assert!(p.matches("home/kitchen/u-1/scale/weight/a/b").is_some());
    assert!(p.matches("home/kitchen/u-1/scale").is_none());

    for bad in ["", "a/#/b", "a/{device}/x", "a/{metric}/{metric}", "a/b+c"] {
        assert!(TopicPattern::parse(bad).is_err(), "{bad:?} should fail");
    }
}

#[test]
fn bare_numbers_and_booleans_become_observe_events() {
    assert_eq!(
        ok("devices/band-7/heart_rate", b"72"),
        json!({"type": "observe", "deviceId": "band-7", "metric": "heart_rate", "value": 72, "messageId": "fresh"})
    );
    assert_eq!(ok("devices/d/t", b" -1.5e3\n")["value"], json!(-1500.0));
    assert_eq!(
        ok("devices/pillbox/medication.taken", b"true")["value"],
        json!(true)
    );
    // Untrusted topic levels are JSON-escaped, never pasted.
    let v = ok("devices/a\"b\\c/m", b"1");
    assert_eq!(v["deviceId"], "a\"b\\c");
    let p = TopicPattern::parse("u/{userId}/{deviceId}/{metric}").unwrap();
    let v: Value = serde_json::from_slice(
        &decode("u/u-1/scale/weight", b"70.2", Some(&p), 1024, "fresh").unwrap(),
    )
    .unwrap();
    assert_eq!(v["userId"], "u-1");
}

#[test]
fn bad_bare_payloads_are_rejected_naming_the_field() {
    for payload in [
        &b"abc"[..],
        b"NaN",
        b"inf",
        b"-Infinity",
        b"0x10",
        b"1e999",
        b"72 bpm",
    ] {
        let r = rejected("devices/d/m", payload);
        assert_eq!(
            (r.code, r.field.as_str()),
            (RejectCode::InvalidValue, "value"),
            "{payload:?}: {r}"
        );
    }
    let r = rejected("devices/d/m", b"");
    assert_eq!(
        (r.code, r.field.as_str()),
        (RejectCode::MissingField, "value")
    );
    let r = rejected("devices/d/m", b"  \n");
    assert_eq!(
        (r.code, r.field.as_str()),
        (RejectCode::MissingField, "value")
    );
    let r = rejected("devices/d/m", b"\xff\xfe7");
    assert_eq!(
        (r.code, r.field.as_str()),
        (RejectCode::InvalidValue, "value")
    );
    assert!(r.message.contains("UTF-8"), "{r}");
    for payload in [&b"\"72\""[..], b"[72]", b"null"] {
        let r = rejected("devices/d/m", payload);
        assert_eq!(
            (r.code, r.field.as_str()),
            (RejectCode::WrongType, "value"),
            "{payload:?}"
        );
    }
}

#[test]
fn topics_that_name_no_device_are_rejected() {
    let r = rejected("devices/only-one", b"5");
    assert_eq!(
        (r.code, r.field.as_str()),
        (RejectCode::InvalidValue, "topic")
    );
    assert!(r.message.contains("devices/{deviceId}/{metric}"), "{r}");
    let r = decode("devices/d/m", b"5", None, 1024, "fresh").unwrap_err();
    assert_eq!(r.field, "topic");
    assert!(r.message.contains("mqtt.topic_pattern"), "{r}");
    // A pattern without {metric} cannot name a bare value's metric.
    let p = TopicPattern::parse("devices/{deviceId}/+").unwrap();
    assert_eq!(
        decode("devices/d/m", b"5", Some(&p), 1024, "fresh")
            .unwrap_err()
            .field,
        "topic"
    );
}

#[test]
fn oversized_payloads_are_rejected_before_parsing() {
    let big = vec![b'1'; 40_000];
    let r = rejected("devices/d/m", &big);
    assert_eq!((r.code, r.field.as_str()), (RejectCode::TooLarge, ""));
    assert!(r.message.contains("40000"), "{r}");
    let mut json = br#"{"deviceId":"d","metric":"m","value":1,"tags":{"x":""#.to_vec();
    json.extend(std::iter::repeat_n(b'a', 40_000));
    json.extend_from_slice(br#""}}"#);
    assert_eq!(rejected("x", &json).code, RejectCode::TooLarge);
}

#[test]
fn json_objects_pass_through_or_take_missing_fields_from_the_topic() {
    let raw =
        br#"{"deviceId":"band-2","metric":"steps","value":12,"unit":"count","messageId":"m"}"#;
    assert_eq!(
        decode("other/topic", raw, Some(&pattern()), 1024, "fresh").unwrap(),
        raw
    );
    // Fields named by the topic fill the missing ones; the payload's own win.
    let v = ok(
        "devices/band-9/heart_rate",
        br#"{"value":61,"deviceId":"own"}"#,
    );
    assert_eq!(
        (v["deviceId"].as_str(), v["metric"].as_str()),
        (Some("own"), Some("heart_rate"))
    );
    // Malformed JSON and JSON of the wrong type go to the collector unchanged, which names
    // the problem (malformed_json, type mismatch).
    for raw in [
        &br#"{"deviceId":"#[..],
        br#"{"type":"track","event":"x","messageId":"m"}"#,
    ] {
        assert_eq!(
            decode("x", raw, Some(&pattern()), 1024, "fresh").unwrap(),
            raw
        );
    }
}

#[test]
fn timestamped_json_readings_get_a_stable_message_id() {
    let raw = br#"{"deviceId":"d","metric":"m","value":1,"timestamp":"2026-11-20T10:00:00Z"}"#;
    let a = ok("t/1", raw);
    let b = ok("t/1", raw);
    let id = a["messageId"].as_str().unwrap();
    assert!(id.starts_with("mqtt-"), "{id}");
    assert_eq!(a["messageId"], b["messageId"]);
    assert_ne!(ok("t/2", raw)["messageId"], a["messageId"]);
    // A reading without a timestamp is a new reading each time it is sent: a fresh id.
    let v = ok("t/1", br#"{"deviceId":"d","metric":"m","value":1}"#);
    assert_eq!(v["messageId"], "fresh");
    // The payload's own messageId is kept.
    let own = ok("t/1", br#"{"deviceId":"d","metric":"m","value":1,"timestamp":"2026-11-20T10:00:00Z","messageId":"m-1"}"#);
    assert_eq!(own["messageId"], "m-1");
}
