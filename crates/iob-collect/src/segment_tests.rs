//! Unit tests of the Segment parser and the batch endpoint (rules of `segment.rs`, `batch.rs`).

use std::net::{IpAddr, Ipv4Addr};

use iob_types::{Event, EventKind, Purpose, Timestamp};
use serde_json::json;

use crate::{CollectOptions, Collector, Received, RejectCode, Rejection, TrackingPlan, Unplanned};

const RX_MS: i64 = 1_714_565_400_000; // 2024-05-01T12:10:00.000Z

fn rx() -> Received<'static> {
    Received {
        source: Some("web"),
        received_at: Timestamp(RX_MS),
        ip: None,
    }
}

fn parse(v: serde_json::Value) -> Result<Event, Rejection> {
    Collector::default()
        .parse_event(v.to_string().as_bytes(), None, &rx())
        .map(|p| p.event)
}

fn reject(v: serde_json::Value) -> Rejection {
    parse(v).expect_err("should be rejected")
}

fn assert_rej(v: serde_json::Value, code: RejectCode, field: &str) -> Rejection {
    let r = reject(v);
    assert_eq!((r.code, r.field.as_str()), (code, field), "{r:?}");
    r
}

#[test]
fn minimal_track_is_accepted_and_enriched() {
    let e = parse(json!({"type":"track","event":"Signed Up","userId":"u1"})).unwrap();
    assert_eq!(e.kind, EventKind::Track);
    assert_eq!(e.event.as_deref(), Some("Signed Up"));
    assert_eq!(e.received_at, Timestamp(RX_MS));
    assert_eq!(
        e.timestamp,
        Timestamp(RX_MS),
        "no client time: timestamp = receivedAt"
    );
    assert_eq!(e.source.as_deref(), Some("web"));
    assert!(
        e.message_id.starts_with("iob-") && e.message_id.len() == 36,
        "{}",
        e.message_id
    );
}

#[test]
fn required_fields_per_type() {
    use RejectCode::MissingField as M;
    assert_rej(json!({"type":"track","userId":"u"}), M, "event");
    assert_rej(json!({"type":"track","event":"","userId":"u"}), M, "event");
    assert_rej(json!({"type":"track","event":"E"}), M, "userId");
    for t in ["identify", "page", "screen"] {
        let r = assert_rej(json!({"type":t}), M, "userId");
        assert!(r.message.contains("`anonymousId`"), "{}", r.message);
        assert!(parse(json!({"type":t,"anonymousId":"a"})).is_ok());
    }
    assert_rej(json!({"type":"group","userId":"u"}), M, "groupId");
    assert_rej(json!({"type":"group","groupId":"g"}), M, "userId");
    assert!(parse(json!({"type":"group","groupId":"g","anonymousId":"a"})).is_ok());
    assert_rej(json!({"type":"alias","previousId":"p"}), M, "userId");
    assert_rej(json!({"type":"alias","userId":"u"}), M, "previousId");
    assert_rej(
        json!({"type":"alias","anonymousId":"a","previousId":"p"}),
        M,
        "userId",
    );
    assert!(parse(json!({"type":"alias","userId":"u","previousId":"p"})).is_ok());
    assert_rej(
        json!({"type":"observe","metric":"steps","value":1}),
        M,
        "deviceId",
    );
    assert_rej(
        json!({"type":"observe","deviceId":"d","value":1}),
        M,
        "metric",
    );
    assert_rej(
        json!({"type":"observe","deviceId":"d","metric":"steps"}),
        M,
        "value",
    );
    assert_rej(json!({"type":"consent","userId":"u"}), M, "granted");
    assert_rej(
        json!({"type":"consent","granted":["analytics"]}),
        M,
        "userId",
    );
    assert_rej(json!({"event":"E","userId":"u"}), M, "type");
}

#[test]
fn empty_string_ids_are_missing_and_numbers_become_strings() {
    assert_rej(
        json!({"type":"identify","userId":"","anonymousId":""}),
        RejectCode::MissingField,
        "userId",
    );
    let e = parse(json!({"type":"identify","userId":12345,"anonymousId":null})).unwrap();
    assert_eq!(e.user_id.as_deref(), Some("12345"));
    assert_eq!(e.anonymous_id, None);
    let long = "x".repeat(513);
    assert_rej(
        json!({"type":"identify","userId":long}),
        RejectCode::InvalidValue,
        "userId",
    );
}

#[test]
fn wrong_types_name_the_field() {
    use RejectCode::WrongType as W;
    let r = assert_rej(json!({"type":"identify","userId":["u"]}), W, "userId");
    assert_eq!(
        r.message,
        "`userId` must be a string or number, got an array"
    );
    assert_rej(
        json!({"type":"identify","anonymousId":true}),
        W,
        "anonymousId",
    );
    assert_rej(json!({"type":"track","event":5,"userId":"u"}), W, "event");
    assert_rej(
        json!({"type":"track","event":"E","userId":"u","properties":[1]}),
        W,
        "properties",
    );
    assert_rej(
        json!({"type":"identify","userId":"u","traits":"x"}),
        W,
        "traits",
    );
    assert_rej(
        json!({"type":"identify","userId":"u","context":1}),
        W,
        "context",
    );
    assert_rej(
        json!({"type":"identify","userId":"u","integrations":false}),
        W,
        "integrations",
    );
    assert_rej(
        json!({"type":"identify","userId":"u","messageId":1}),
        W,
        "messageId",
    );
    assert_rej(
        json!({"type":"identify","userId":"u","timestamp":{}}),
        W,
        "timestamp",
    );
    assert_rej(json!({"type":"page","userId":"u","name":{}}), W, "name");
    assert_rej(json!({"type":7,"userId":"u"}), W, "type");
    assert_rej(
        json!({"type":"identify","userId":"u","writeKey":1}),
        W,
        "writeKey",
    );
    assert_rej(
        json!({"type":"observe","deviceId":"d","metric":"m","value":"3"}),
        W,
        "value",
    );
    assert_rej(
        json!({"type":"observe","deviceId":"d","metric":"m","value":1,"tags":[]}),
        W,
        "tags",
    );
    // null means absent for nested objects
    let e = parse(json!({"type":"identify","userId":"u","traits":null})).unwrap();
    assert!(e.traits.is_none());
}

#[test]
fn unknown_type_and_endpoint_mismatch() {
    assert_rej(
        json!({"type":"Track","userId":"u"}),
        RejectCode::UnknownType,
        "type",
    );
    let c = Collector::default();
    let body = br#"{"type":"identify","userId":"u"}"#;
    let r = c
        .parse_event(body, Some(EventKind::Track), &rx())
        .unwrap_err();
    assert_eq!(
        (r.code, r.field.as_str()),
        (RejectCode::InvalidValue, "type")
    );
    assert!(r.message.contains("`track`"), "{}", r.message);
    let e = c
        .parse_event(
            br#"{"event":"E","userId":"u"}"#,
            Some(EventKind::Track),
            &rx(),
        )
        .unwrap()
        .event;
    assert_eq!(e.kind, EventKind::Track);
}

#[test]
fn malformed_and_non_object_bodies() {
    let c = Collector::default();
    for (body, code) in [
        (&b"{"[..], RejectCode::MalformedJson),
        (b"", RejectCode::MalformedJson),
        (b"{\"a\":1}x", RejectCode::MalformedJson),
        (b"[1,2]", RejectCode::NotAnObject),
        (b" \"str\"", RejectCode::NotAnObject),
        (b"null", RejectCode::NotAnObject),
    ] {
        let r = c.parse_event(body, None, &rx()).unwrap_err();
        assert_eq!((r.code, r.field.as_str()), (code, ""), "{body:?}: {r:?}");
    }
}

#[test]
fn too_large_names_size_and_limit() {
    let c = Collector::new(CollectOptions {
        max_event_bytes: 100,
        ..Default::default()
    });
    let body = json!({"type":"track","event":"x".repeat(200),"userId":"u"}).to_string();
    let r = c.parse_event(body.as_bytes(), None, &rx()).unwrap_err();
    assert_eq!(r.code, RejectCode::TooLarge);
    assert!(
        r.message.contains(&body.len().to_string()) && r.message.contains("100"),
        "{}",
        r.message
    );
}

#[test]
fn clock_skew_correction_hand_computed() {
    // The client clock is 10 minutes slow: it says the event happened at 12:00:00 and was sent
    // at 12:00:05; the server received it at 12:10:00. Corrected: 12:10:00 - 5 s = 12:09:55.
    let e = parse(json!({"type":"track","event":"E","userId":"u",
        "timestamp":"2024-05-01T12:00:00.000Z","sentAt":"2024-05-01T12:00:05.000Z"}))
    .unwrap();
    assert_eq!(e.timestamp.to_rfc3339(), "2024-05-01T12:09:55.000Z");
    assert_eq!(
        e.original_timestamp.unwrap().to_rfc3339(),
        "2024-05-01T12:00:00.000Z"
    );
    assert_eq!(e.sent_at.unwrap().to_rfc3339(), "2024-05-01T12:00:05.000Z");
    assert_eq!(e.received_at.to_rfc3339(), "2024-05-01T12:10:00.000Z");

    // originalTimestamp wins over timestamp; epoch millis accepted.
    let e = parse(json!({"type":"track","event":"E","userId":"u",
        "originalTimestamp": 1_714_564_800_000i64, "timestamp":"2000-01-01T00:00:00Z",
        "sentAt":"2024-05-01T12:00:01.500Z"}))
    .unwrap();
    assert_eq!(e.timestamp.millis(), RX_MS - 1_500);

    // Without sentAt the client's time is kept as is.
    let e = parse(
        json!({"type":"track","event":"E","userId":"u","timestamp":"2024-05-01T14:00:00+02:00"}),
    )
    .unwrap();
    assert_eq!(e.timestamp.to_rfc3339(), "2024-05-01T12:00:00.000Z");
    assert_eq!(e.sent_at, None);

    // sentAt alone changes nothing: timestamp = receivedAt.
    let e = parse(json!({"type":"track","event":"E","userId":"u","sentAt":"2024-05-01T12:00:00Z"}))
        .unwrap();
    assert_eq!(e.timestamp.millis(), RX_MS);

    assert_rej(
        json!({"type":"track","event":"E","userId":"u","timestamp":"soon"}),
        RejectCode::InvalidValue,
        "timestamp",
    );
    assert_rej(
        json!({"type":"track","event":"E","userId":"u","sentAt":1.5}),
        RejectCode::InvalidValue,
        "sentAt",
    );
    assert_rej(
        json!({"type":"track","event":"E","userId":"u","timestamp":"1970-01-01T00:00:00Z","sentAt":"2100-01-01T00:00:00Z"}),
        RejectCode::InvalidValue,
        "sentAt",
    );
}

#[test]
fn write_key_is_returned_never_kept() {
    let c = Collector::default();
    let body = br#"{"type":"track","event":"E","userId":"u","writeKey":"sk_secret"}"#;
    let p = c.parse_event(body, None, &rx()).unwrap();
    assert_eq!(p.write_key.as_deref(), Some("sk_secret"));
    let json = String::from_utf8(p.event.to_json()).unwrap();
    assert!(
        !json.contains("sk_secret") && !json.contains("writeKey"),
        "{json}"
    );
}

#[test]
fn unknown_fields_are_preserved_byte_for_byte() {
    let body = br#"{"type":"track","custom":{"b": 1,  "a":[1.50, "x"]},"event":"E","userId":"u","version":2,"receivedAt":"1999-01-01T00:00:00Z"}"#;
    let e = Collector::default()
        .parse_event(body, None, &rx())
        .unwrap()
        .event;
    let extra: Vec<(&str, &str)> = e.extra.iter().map(|(k, v)| (k.as_str(), v.get())).collect();
    assert_eq!(
        extra,
        vec![
            ("custom", r#"{"b": 1,  "a":[1.50, "x"]}"#),
            ("version", "2")
        ]
    );
    assert_eq!(
        e.received_at,
        Timestamp(RX_MS),
        "a client receivedAt is ignored"
    );
    // observe fields on a track event are ordinary unknown fields
    let e = parse(json!({"type":"track","event":"E","userId":"u","metric":"m"})).unwrap();
    assert_eq!(e.extra[0].0, "metric");
    assert!(e.reading.is_none());
}

#[test]
fn duplicate_fields_are_rejected() {
    let c = Collector::default();
    for body in [
        &br#"{"type":"track","event":"E","userId":"u","userId":"v"}"#[..],
        br#"{"type":"track","event":"E","userId":"u","x":1,"x":2}"#,
        br#"{"type":"observe","deviceId":"d","metric":"m","value":1,"value":2}"#,
    ] {
        let r = c.parse_event(body, None, &rx()).unwrap_err();
        assert_eq!(r.code, RejectCode::InvalidValue);
        assert!(r.message.contains("more than once"), "{}", r.message);
    }
}

#[test]
fn message_id_rules() {
    let c = Collector::default();
    let body = br#"{"type":"track","event":"E","userId":"u"}"#;
    let id = |rx: &Received| c.parse_event(body, None, rx).unwrap().event.message_id;
    assert_eq!(id(&rx()), id(&rx()), "derivation is deterministic");
    assert_ne!(
        id(&rx()),
        id(&Received {
            source: Some("app"),
            ..rx()
        })
    );
    assert_ne!(
        id(&rx()),
        id(&Received {
            received_at: Timestamp(RX_MS + 1),
            ..rx()
        })
    );
    assert_ne!(
        id(&rx()),
        id(&Received {
            source: None,
            ..rx()
        })
    );
    let e = parse(json!({"type":"track","event":"E","userId":"u","messageId":"m-1"})).unwrap();
    assert_eq!(e.message_id, "m-1");
    let r = assert_rej(
        json!({"type":"track","event":"E","userId":"u","messageId":"m".repeat(201)}),
        RejectCode::InvalidValue,
        "messageId",
    );
    assert!(r.message.contains("200"));
    // The limit counts characters, not bytes: 200 two-byte characters pass, 201 do not.
    let e = parse(json!({"type":"track","event":"E","userId":"u","messageId":"é".repeat(200)}));
    assert_eq!(e.unwrap().message_id.chars().count(), 200);
    assert_rej(
        json!({"type":"track","event":"E","userId":"u","messageId":"é".repeat(201)}),
        RejectCode::InvalidValue,
        "messageId",
    );
}

#[test]
fn client_ip_is_added_unless_present() {
    let c = Collector::default();
    let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    let rx = Received {
        ip: Some(ip),
        ..rx()
    };
    // Single events, and the same event in a batch (where the reader notes `context.ip` as it
    // passes), give the same context.
    let ctx = |body: &str| {
        let e = c.parse_event(body.as_bytes(), None, &rx).unwrap().event;
        let single = e.context.map(|c| c.get().to_string());
        let batch = format!(r#"{{"batch":[{body}]}}"#);
        let b = c.parse_batch(batch.as_bytes(), &rx).unwrap();
        let in_batch = b
            .accepted()
            .next()
            .unwrap()
            .context
            .as_ref()
            .map(|c| c.get().to_string());
        assert_eq!(single, in_batch, "{body}");
        single
    };
    let escaped = r#"{"\u0069p":"10.0.0.2"}"#;
    assert_eq!(
        ctx(&format!(
            r#"{{"type":"identify","userId":"u","context":{escaped}}}"#
        ))
        .unwrap(),
        escaped,
        "an escaped `ip` key is an `ip` key"
    );
    assert_eq!(
        ctx(r#"{"type":"identify","userId":"u"}"#).unwrap(),
        r#"{"ip":"203.0.113.7"}"#
    );
    assert_eq!(
        ctx(r#"{"type":"identify","userId":"u","context":{ }}"#).unwrap(),
        r#"{"ip":"203.0.113.7"}"#
    );
    assert_eq!(
        ctx(r#"{"type":"identify","userId":"u","context":{"locale":"fr"}}"#).unwrap(),
        r#"{"locale":"fr","ip":"203.0.113.7"}"#
    );
    let kept = r#"{"ip":"10.0.0.1","page":{"ip":"x"}}"#;
    assert_eq!(
        ctx(&format!(
            r#"{{"type":"identify","userId":"u","context":{kept}}}"#
        ))
        .unwrap(),
        kept
    );
    let nested_only =
        ctx(r#"{"type":"identify","userId":"u","context":{"page":{"ip":"x"}}}"#).unwrap();
    assert_eq!(nested_only, r#"{"page":{"ip":"x"},"ip":"203.0.113.7"}"#);
}

#[test]
fn observe_readings() {
    let e = parse(json!({"type":"observe","deviceId":"watch-1","metric":"heart_rate","value":71.5,"unit":"bpm","tags":{"arm":"left"}})).unwrap();
    let r = e.reading.as_ref().unwrap();
    assert_eq!(
        (r.device_id.as_str(), r.metric.as_str(), r.value),
        ("watch-1", "heart_rate", 71.5)
    );
    assert_eq!(r.unit.as_deref(), Some("bpm"));
    assert_eq!(r.tags.as_ref().unwrap().get(), r#"{"arm":"left"}"#);
    assert_eq!(e.routing_id(), Some(("device", "watch-1")));
    let e = parse(
        json!({"type":"observe","deviceId":"pillbox","metric":"medication.taken","value":true}),
    )
    .unwrap();
    assert_eq!(e.reading.unwrap().value, 1.0);
    let e = parse(
        json!({"type":"observe","deviceId":"pillbox","metric":"medication.taken","value":false}),
    )
    .unwrap();
    assert_eq!(e.reading.unwrap().value, 0.0);
    assert_rej(
        json!({"type":"observe","deviceId":"d","metric":"Heart Rate","value":1}),
        RejectCode::InvalidValue,
        "metric",
    );
    let body = br#"{"type":"observe","deviceId":"d","metric":"m","value":1e999}"#;
    let r = Collector::default()
        .parse_event(body, None, &rx())
        .unwrap_err();
    assert_eq!(
        (r.code, r.field.as_str()),
        (RejectCode::InvalidValue, "value")
    );
}

#[test]
fn consent_purposes_must_be_configured() {
    let e = parse(json!({"type":"consent","userId":"u","granted":["analytics","health"],"denied":["marketing"],
        "policyVersion":"2024-05","source":"cookie-banner"}))
    .unwrap();
    let c = e.consent.unwrap();
    assert_eq!(
        c.granted,
        vec![Purpose::analytics(), Purpose::new("health").unwrap()]
    );
    assert_eq!(c.denied, vec![Purpose::new("marketing").unwrap()]);
    assert_eq!(c.policy_version.as_deref(), Some("2024-05"));
    assert_eq!(c.source.as_deref(), Some("cookie-banner"));
    let r = assert_rej(
        json!({"type":"consent","userId":"u","granted":["analytics","telepathy"]}),
        RejectCode::InvalidValue,
        "granted[1]",
    );
    assert!(
        r.message.contains("telepathy") && r.message.contains("analytics"),
        "{}",
        r.message
    );
    assert_rej(
        json!({"type":"consent","userId":"u","denied":"analytics"}),
        RejectCode::WrongType,
        "denied",
    );
    assert_rej(
        json!({"type":"consent","userId":"u","granted":[1]}),
        RejectCode::WrongType,
        "granted[0]",
    );
    assert_rej(
        json!({"type":"consent","userId":"u","granted":["health"],"denied":["analytics","health"]}),
        RejectCode::InvalidValue,
        "denied[1]",
    );
    // configured purposes, not the defaults
    let c = Collector::new(CollectOptions {
        purposes: vec![Purpose::new("research").unwrap()],
        ..Default::default()
    });
    assert!(
        c.parse_event(
            br#"{"type":"consent","userId":"u","granted":["research"]}"#,
            None,
            &rx()
        )
        .is_ok()
    );
    assert!(
        c.parse_event(
            br#"{"type":"consent","userId":"u","granted":["analytics"]}"#,
            None,
            &rx()
        )
        .is_err()
    );
}

fn planned(unplanned: Unplanned) -> Collector {
    let plan = TrackingPlan::new(
        [
            ("Order Completed".to_string(), json!({"type":"object","properties":{"price":{"type":"number"}},"required":["price"]})),
            ("identify".to_string(), json!({"type":"object","properties":{"email":{"type":"string","format":"email"}}})),
        ],
        unplanned,
    )
    .unwrap();
    Collector::new(CollectOptions {
        plan,
        ..Default::default()
    })
}

#[test]
fn tracking_plan_violations_name_the_property() {
    let c = planned(Unplanned::Allow);
    let body = br#"{"type":"track","event":"Order Completed","userId":"u","properties":{"price":"12.50"}}"#;
    let r = c.parse_event(body, None, &rx()).unwrap_err();
    assert_eq!(
        (r.code, r.field.as_str()),
        (RejectCode::SchemaViolation, "properties.price")
    );
    let ok =
        br#"{"type":"track","event":"Order Completed","userId":"u","properties":{"price":12.5}}"#;
    assert!(c.parse_event(ok, None, &rx()).is_ok());
    let r = c
        .parse_event(
            br#"{"type":"identify","userId":"u","traits":{"email":3}}"#,
            None,
            &rx(),
        )
        .unwrap_err();
    assert_eq!(r.field, "traits.email");
    assert!(
        c.parse_event(
            br#"{"type":"track","event":"Other","userId":"u"}"#,
            None,
            &rx()
        )
        .is_ok()
    );
}

#[test]
fn unplanned_events_are_rejected_when_the_plan_says_so() {
    let c = planned(Unplanned::Reject);
    let r = c
        .parse_event(
            br#"{"type":"track","event":"Other","userId":"u"}"#,
            None,
            &rx(),
        )
        .unwrap_err();
    assert_eq!(
        (r.code, r.field.as_str()),
        (RejectCode::UnplannedEvent, "event")
    );
    assert!(r.message.contains("`Other`"));
    assert!(
        c.parse_event(br#"{"type":"page","userId":"u"}"#, None, &rx())
            .is_ok(),
        "only track calls are planned"
    );
}

#[test]
fn batch_merges_context_and_integrations_event_keys_win() {
    let c = Collector::default();
    let body = json!({
        "batch": [
            {"type":"track","event":"A","userId":"u","context":{"locale":"fr","page":{"path":"/a"}}},
            {"type":"identify","userId":"u","integrations":{"All":false}},
            {"type":"track","event":"B","userId":"u","sentAt":"2024-05-01T12:00:02Z","timestamp":"2024-05-01T12:00:00Z"}
        ],
        "context": {"locale":"en","library":{"name":"analytics-node"}},
        "integrations": {"All":true,"Mixpanel":false},
        "sentAt": "2024-05-01T12:00:10Z",
        "writeKey": "wk"
    })
    .to_string();
    let b = c.parse_batch(body.as_bytes(), &rx()).unwrap();
    assert_eq!(b.write_key.as_deref(), Some("wk"));
    let e: Vec<&Event> = b.accepted().collect();
    assert_eq!(e.len(), 3);
    assert_eq!(
        e[0].context.as_ref().unwrap().get(),
        r#"{"locale":"fr","page":{"path":"/a"},"library":{"name":"analytics-node"}}"#
    );
    assert_eq!(
        e[0].integrations.as_ref().unwrap().get(),
        r#"{"All":true,"Mixpanel":false}"#
    );
    assert_eq!(
        e[1].integrations.as_ref().unwrap().get(),
        r#"{"All":false,"Mixpanel":false}"#
    );
    // (json! sorts keys, so the body's context reads library, locale)
    assert_eq!(
        e[1].context.as_ref().unwrap().get(),
        r#"{"library":{"name":"analytics-node"},"locale":"en"}"#
    );
    // batch sentAt applies only to events without one
    assert_eq!(
        e[0].sent_at.unwrap().to_rfc3339(),
        "2024-05-01T12:00:10.000Z"
    );
    assert_eq!(
        e[2].sent_at.unwrap().to_rfc3339(),
        "2024-05-01T12:00:02.000Z"
    );
    assert_eq!(e[2].timestamp.millis(), RX_MS - 2_000);
    assert_eq!(e[0].timestamp.millis(), RX_MS, "no client time: receivedAt");
}

#[test]
fn batch_rejections_are_indexed_and_prefixed() {
    let c = Collector::default();
    let body = br#"{"batch":[{"type":"track","event":"A","userId":"u"}, 5, {"type":"track","userId":"u"}, {"type":"identify","userId":"u","timestamp":"x"}]}"#;
    let b = c.parse_batch(body, &rx()).unwrap();
    assert_eq!(b.items.len(), 4);
    assert!(b.items[0].result.is_ok());
    let r: Vec<&Rejection> = b
        .items
        .iter()
        .filter_map(|i| i.result.as_ref().err())
        .collect();
    assert_eq!(
        (r[0].code, r[0].field.as_str(), r[0].index),
        (RejectCode::NotAnObject, "batch[1]", Some(1))
    );
    assert_eq!(
        (r[1].code, r[1].field.as_str(), r[1].index),
        (RejectCode::MissingField, "batch[2].event", Some(2))
    );
    assert_eq!(r[2].field, "batch[3].timestamp");
    assert_eq!(b.items[1].raw, "5");
    assert_eq!(b.items[2].raw, r#"{"type":"track","userId":"u"}"#);
    assert_eq!(b.rejected().count(), 3);
}

#[test]
fn batch_whole_body_rejections() {
    let c = Collector::default();
    for (body, code, field) in [
        (&b"[]"[..], RejectCode::NotAnObject, ""),
        (b"{\"batch\":", RejectCode::MalformedJson, ""),
        (b"{}", RejectCode::MissingField, "batch"),
        (b"{\"batch\":{}}", RejectCode::WrongType, "batch"),
        (
            b"{\"batch\":[],\"context\":[]}",
            RejectCode::WrongType,
            "context",
        ),
        (
            b"{\"batch\":[],\"sentAt\":\"x\"}",
            RejectCode::InvalidValue,
            "sentAt",
        ),
    ] {
        let r = c.parse_batch(body, &rx()).unwrap_err();
        assert_eq!((r.code, r.field.as_str()), (code, field), "{r:?}");
    }
    let small = Collector::new(CollectOptions {
        max_batch_bytes: 10,
        ..Default::default()
    });
    assert_eq!(
        small
            .parse_batch(b"{\"batch\":[   ]}", &rx())
            .unwrap_err()
            .code,
        RejectCode::TooLarge
    );
}

#[test]
fn batch_write_keys_must_agree() {
    let c = Collector::default();
    let body = br#"{"batch":[{"type":"identify","userId":"u","writeKey":"a"},{"type":"identify","userId":"v","writeKey":"b"},{"type":"identify","userId":"w"}]}"#;
    let b = c.parse_batch(body, &rx()).unwrap();
    assert_eq!(b.write_key.as_deref(), Some("a"));
    assert!(b.items[0].result.is_ok() && b.items[2].result.is_ok());
    let r = b.items[1].result.as_ref().unwrap_err();
    assert_eq!(r.field, "batch[1].writeKey");
    for e in b.accepted() {
        assert!(!String::from_utf8(e.to_json()).unwrap().contains("writeKey"));
    }
}

#[test]
fn canonical_roundtrip_of_a_parsed_event() {
    let body = br#"{"type":"page","name":"Home","category":"Docs","anonymousId":"a","properties":{"url":"https://x"},"custom":[1],"timestamp":"2024-05-01T12:00:00Z"}"#;
    let e = Collector::default()
        .parse_event(body, None, &rx())
        .unwrap()
        .event;
    let json = e.to_json();
    let back = Event::from_json(&json).unwrap();
    assert_eq!(back.to_json(), json);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            "\\PC{0,12}".prop_map(serde_json::Value::from),
            prop::sample::select(vec![
                "track",
                "identify",
                "observe",
                "consent",
                "analytics",
                "u1",
                "2024-05-01T12:00:00Z"
            ])
            .prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            let key = prop::sample::select(vec![
                "type",
                "event",
                "userId",
                "anonymousId",
                "groupId",
                "previousId",
                "messageId",
                "timestamp",
                "sentAt",
                "originalTimestamp",
                "properties",
                "traits",
                "context",
                "integrations",
                "deviceId",
                "metric",
                "value",
                "unit",
                "tags",
                "granted",
                "denied",
                "writeKey",
                "x",
                "ip",
            ]);
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::vec((key, inner), 0..8).prop_map(|kv| serde_json::Value::Object(
                    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    fn arb_valid() -> impl Strategy<Value = serde_json::Value> {
        let id = prop_oneof![
            "[a-zA-Z0-9_@.\"\\\\é-]{1,20}".prop_map(serde_json::Value::from),
            (0u32..1_000_000).prop_map(serde_json::Value::from)
        ];
        (
            prop::sample::select(vec!["track", "identify", "page", "screen", "group", "alias", "observe", "consent"]),
            id.clone(),
            id,
            "[A-Za-z ]{1,20}",
            0i64..4_000_000_000_000,
            prop::option::of(0i64..100_000),
            prop::collection::btree_map("[a-z]{1,6}", any::<i32>(), 0..4),
            prop::option::of("[a-z]{1,8}"),
        )
            .prop_map(|(t, uid, other, name, ts, skew, props, extra)| {
                let mut v = json!({"type": t, "userId": uid, "anonymousId": other.clone(), "event": name,
                    "timestamp": Timestamp(ts).to_rfc3339(), "properties": props, "context": {"locale": "fr"}});
                if let Some(s) = skew {
                    v["sentAt"] = json!(ts + s);
                }
                if let Some(x) = extra {
                    v[format!("x_{x}")] = json!({"k": [1, 2.5, "s"]});
                }
                match t {
                    "group" => v["groupId"] = other,
                    "alias" => v["previousId"] = other,
                    "observe" => {
                        v["deviceId"] = json!("dev");
                        v["metric"] = json!("heart_rate");
                        v["value"] = json!(60.5);
                        v["unit"] = json!("bpm");
                    }
                    "consent" => {
                        v["granted"] = json!(["analytics"]);
                        v["denied"] = json!(["marketing"]);
                        v["policyVersion"] = json!("v1");
                    }
                    _ => {}
                }
                v
            })
    }

    proptest! {
        /// The one-pass batch reader finds exactly the elements (and their fields) that the
        /// field-by-field reader finds, whatever the elements and the whitespace.
        #[test]
        fn fast_batch_reader_agrees_with_checked(
            elems in prop::collection::vec(arb_json(), 0..5),
            pretty in any::<bool>(),
        ) {
            let body = json!({"sentAt": "2024-05-01T12:00:00Z", "batch": elems});
            let text = if pretty {
                serde_json::to_string_pretty(&body).unwrap()
            } else {
                serde_json::to_string(&body).unwrap()
            };
            let checked = crate::batch_body::Body::checked(&text).unwrap();
            if let Some(fast) = crate::batch_body::Body::fast(&text, &[]) {
                prop_assert_eq!(&fast.elements, &checked.elements);
                let split = fast.split.unwrap();
                let (fields, counts) = (split.fields, split.counts);
                let mut at = 0;
                for (e, n) in fast.elements.iter().zip(counts) {
                    let want: Vec<_> = crate::fields::split_object(e)
                        .unwrap()
                        .into_iter()
                        .map(|(k, v)| (k.into_owned(), v.get()))
                        .collect();
                    let got: Vec<_> = fields[at..at + n]
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.get()))
                        .collect();
                    prop_assert_eq!(got, want);
                    at += n;
                }
            } else {
                // Only bodies with an element that is not a non-empty object leave the fast path.
                let unusual = checked.elements.iter().any(|e| {
                    !matches!(
                        serde_json::from_str::<serde_json::Value>(e).unwrap(),
                        serde_json::Value::Object(m) if !m.is_empty()
                    )
                });
                prop_assert!(unusual, "fast path refused {}", text);
            }
        }

        /// The scanner never accepts what serde_json refuses: bodies of events with a few
        /// characters replaced, inserted or deleted (JSON's own alphabet, so that most edits
        /// land on a grammar edge) either stay valid for serde_json too, or leave the fast path.
        #[test]
        fn fast_batch_reader_never_accepts_invalid_json(
            n in 1usize..4,
            elems in prop::collection::vec(arb_json(), 0..3),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<bool>(), 0u8..3, prop::sample::select(
                vec!['{', '}', '[', ']', ',', ':', '"', '\\', ' ', '0', '1', '-', '+', '.', 'e', 'E',
                     't', 'n', 'u', 'l', 'a', '\u{1}', '\n', 'é']
            )), 1..4),
        ) {
            let events: Vec<String> = (0..n)
                .map(crate::sample::analytics_js_track_json)
                .chain(elems.iter().map(|e| e.to_string()))
                .collect();
            let body = format!(r#"{{"batch":[{}],"sentAt":"2026-11-20T10:00:01.000Z"}}"#, events.join(","));
            let mut chars: Vec<char> = body.chars().collect();
            for (at, on_structure, op, c) in edits {
                // Half the edits hit a bracket, comma, colon or quote: the grammar's edges.
                let structural: Vec<usize> = (0..chars.len())
                    .filter(|&i| on_structure && "{}[],:\"".contains(chars[i]))
                    .collect();
                let i = if structural.is_empty() {
                    at.index(chars.len())
                } else {
                    structural[at.index(structural.len())]
                };
                match op {
                    0 => chars[i] = c,
                    1 => chars.insert(i, c),
                    _ => { chars.remove(i); }
                }
            }
            let text: String = chars.into_iter().collect();
            if let Some(fast) = crate::batch_body::Body::fast(&text, &[]) {
                prop_assert!(
                    serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok(),
                    "fast path took invalid JSON {}", text
                );
                let checked = crate::batch_body::Body::checked(&text).unwrap();
                prop_assert_eq!(&fast.elements, &checked.elements);
            }
        }

        #[test]
        fn parse_event_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let c = Collector::default();
            let _ = c.parse_event(&bytes, None, &rx());
            let _ = c.parse_event(&bytes, Some(EventKind::Track), &rx());
            let _ = c.parse_batch(&bytes, &rx());
        }

        #[test]
        fn parse_event_never_panics_on_json(v in arb_json()) {
            let c = Collector::default();
            let s = v.to_string();
            let rx = Received { ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), ..rx() };
            if let Ok(p) = c.parse_event(s.as_bytes(), None, &rx) {
                // whatever is accepted serializes to canonical JSON that reads back
                prop_assert!(Event::from_json(&p.event.to_json()).is_ok());
            }
            let _ = c.parse_event(s.as_bytes(), Some(EventKind::Observe), &rx);
            let batch = json!({"batch": [v.clone(), v], "context": {"a": 1}}).to_string();
            let _ = c.parse_batch(batch.as_bytes(), &rx);
        }

        #[test]
        fn canonical_path_equals_event_path_on_any_json(v in arb_json(), valid in arb_valid()) {
            let c = Collector::default();
            let rx = Received { ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), ..rx() };
            for body in [
                json!({"batch": [v.clone(), valid.clone(), v.clone()], "context": {"a": 1}, "sentAt": 1_714_565_000_000i64}),
                json!({"batch": [valid.clone(), v.clone()], "integrations": {"x": true}, "writeKey": "k"}),
            ] {
                let body = body.to_string();
                crate::canonical::tests::assert_same_outcomes(&c, body.as_bytes(), &rx);
            }
            let s = v.to_string();
            crate::canonical::tests::assert_same_single(&c, s.as_bytes(), None, &rx);
            crate::canonical::tests::assert_same_single(&c, valid.to_string().as_bytes(), None, &rx);
        }

        #[test]
        fn valid_events_roundtrip_through_canonical_json(v in arb_valid()) {
            let c = Collector::default();
            let s = v.to_string();
            let e = c.parse_event(s.as_bytes(), None, &rx()).map_err(|r| TestCaseError::fail(format!("{r:?} for {s}")))?.event;
            let json = e.to_json();
            let back = Event::from_json(&json).map_err(|err| TestCaseError::fail(format!("{err} for {}", String::from_utf8_lossy(&json))))?;
            prop_assert_eq!(back.to_json(), json);
            prop_assert_eq!(back.kind, e.kind);
            prop_assert_eq!(back.timestamp, e.timestamp);
            prop_assert_eq!(&back.user_id, &e.user_id);
            prop_assert_eq!(back.reading, e.reading);
            prop_assert_eq!(back.consent, e.consent);
        }
    }
}

const SAFARI_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605.1.15";

#[test]
fn user_agent_and_sentiment_land_on_the_event() {
    let e = parse(json!({
        "type":"track","event":"Product Reviewed","userId":"u",
        "properties":{"review_body":"Absolutely love it, great shoes!","rating":5,"comment":"It broke, terrible."},
        "context":{"userAgent": SAFARI_MAC}
    }))
    .unwrap();
    let en = e.enrichment.expect("enriched");
    let ua = en.user_agent.as_ref().expect("user agent parsed");
    assert_eq!(ua.browser.as_deref(), Some("Safari"));
    assert_eq!(ua.browser_version.as_deref(), Some("17.4"));
    assert_eq!(ua.os.as_deref(), Some("Mac OSX"));
    assert_eq!(ua.device, iob_types::Device::Desktop);
    // configuration order: review_body, review, comment, feedback
    let names: Vec<&str> = en.sentiment.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["review_body", "comment"]);
    assert!(en.sentiment_of("review_body").unwrap() > 0.5);
    assert!(en.sentiment_of("comment").unwrap() < -0.3);
}

#[test]
fn batch_context_user_agent_is_parsed() {
    // The second element's own context has no userAgent: the batch's, merged in, counts.
    let body = json!({"batch":[{"type":"page","userId":"u"},
        {"type":"page","userId":"u","context":{"locale":"fr"}}],
        "context":{"userAgent":"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}});
    let body = body.to_string();
    let b = Collector::default()
        .parse_batch(body.as_bytes(), &rx())
        .unwrap();
    assert_eq!(b.accepted().count(), 2);
    for e in b.accepted() {
        let ua = e.enrichment.as_ref().unwrap().user_agent.as_ref().unwrap();
        assert_eq!(ua.device, iob_types::Device::Bot);
    }
}

/// The batch reader notes which `properties` may hold free text; its answer must be the one
/// the single-event path finds by reading `properties` itself, escaped keys included.
#[test]
fn batch_sentiment_agrees_with_single_events() {
    let elements = [
        json!({"type":"track","event":"E","userId":"u","properties":{"price":1,"review":"I love these, great!"}}),
        json!({"type":"track","event":"E","userId":"u","properties":{"price":1,"reviewer":"x"}}),
        json!({"type":"track","event":"E","userId":"u","properties":"not an object"}),
    ];
    let mut texts: Vec<String> = elements.iter().map(|e| e.to_string()).collect();
    texts.push(r#"{"type":"track","event":"E","userId":"u","properties":{"r\u0065view":"Awful, broke in a week."}}"#.into());
    let body = format!(r#"{{"batch":[{}]}}"#, texts.join(","));
    let c = Collector::default();
    let batch = c.parse_batch(body.as_bytes(), &rx()).unwrap();
    let mut found = Vec::new();
    for (item, text) in batch.items.iter().zip(&texts) {
        let single = c.parse_event(text.as_bytes(), None, &rx());
        let sentiment = |e: &Event| {
            e.enrichment
                .as_ref()
                .and_then(|en| en.sentiment_of("review"))
        };
        match (&item.result, single) {
            (Ok(b), Ok(s)) => {
                assert_eq!(sentiment(b), sentiment(&s.event), "{text}");
                found.push(sentiment(b).map(|v| v > 0.0));
            }
            (Err(b), Err(s)) => assert_eq!(b.code, s.code, "{text}"),
            (b, s) => panic!("batch {b:?} but single {s:?} for {text}"),
        }
    }
    assert_eq!(found, [Some(true), None, Some(false)]);
}

#[test]
fn no_user_agent_and_no_text_means_no_enrichment() {
    let e = parse(json!({"type":"track","event":"E","userId":"u","properties":{"price":3},"context":{"locale":"fr"}})).unwrap();
    assert!(e.enrichment.is_none());
    assert!(
        !String::from_utf8(e.to_json())
            .unwrap()
            .contains("iobEnrichment")
    );
}

#[test]
fn non_string_text_properties_are_ignored_not_rejected() {
    let e = parse(json!({"type":"track","event":"E","userId":"u",
        "properties":{"review":{"stars":5},"comment":42,"feedback":null},
        "context":{"userAgent":7}}))
    .unwrap();
    assert!(e.enrichment.is_none(), "{:?}", e.enrichment);
}

#[test]
fn client_sent_enrichment_is_dropped() {
    let forged = json!({"userAgent":{"device":"bot"},"sentiment":{"review":1.0}});
    let e =
        parse(json!({"type":"track","event":"E","userId":"u","iobEnrichment": forged})).unwrap();
    assert!(e.enrichment.is_none());
    assert!(e.extra.is_empty());
    let e = parse(
        json!({"type":"track","event":"E","userId":"u","iobEnrichment": forged,
        "properties":{"review":"bad"},"context":{"userAgent": SAFARI_MAC}}),
    )
    .unwrap();
    let en = e.enrichment.unwrap();
    assert_eq!(
        en.user_agent.as_ref().unwrap().device,
        iob_types::Device::Desktop
    );
    assert!(en.sentiment_of("review").unwrap() < 0.0);
}

#[test]
fn enrichment_can_be_switched_off() {
    let c = Collector::new(CollectOptions {
        parse_user_agent: false,
        sentiment_properties: Vec::new(),
        ..CollectOptions::default()
    });
    let body = json!({"type":"track","event":"E","userId":"u","properties":{"review":"great"},"context":{"userAgent": SAFARI_MAC}});
    let e = c
        .parse_event(body.to_string().as_bytes(), None, &rx())
        .unwrap()
        .event;
    assert!(e.enrichment.is_none());
    let c = Collector::new(CollectOptions {
        sentiment_properties: vec!["post".into()],
        ..CollectOptions::default()
    });
    let body = json!({"type":"track","event":"E","userId":"u","properties":{"review":"great","post":"sad day"}});
    let e = c
        .parse_event(body.to_string().as_bytes(), None, &rx())
        .unwrap()
        .event;
    let en = e.enrichment.unwrap();
    assert!(en.user_agent.is_none());
    assert_eq!(en.sentiment.len(), 1);
    assert!(en.sentiment_of("post").unwrap() < 0.0);
}
