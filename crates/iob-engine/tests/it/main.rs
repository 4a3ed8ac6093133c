//! The engine through its library API: the unify follower against a replay of the log.

mod audit;
mod keys;
mod retention;

use std::sync::Arc;

use iob_engine::{Actor, Config, Endpoint, Engine, SourceConfig, Submission};
use iob_types::{FixedClock, Purpose, Timestamp};
use serde_json::json;

const KEY: &str = "engine-test-write-key-01";

fn engine(dir: &std::path::Path) -> Engine {
    let cfg = Config {
        data_dir: Some(dir.to_path_buf()),
        sources: vec![SourceConfig {
            name: "web".into(),
            write_key: Some(KEY.into()),
        }],
        ..Config::default()
    };
    let clock = Arc::new(FixedClock::new(Timestamp(1_796_000_000_000)));
    Engine::open_with_clock(&cfg, clock).unwrap().0
}

pub(crate) async fn send(e: &Engine, events: serde_json::Value) {
    let body = serde_json::to_vec(&json!({ "batch": events })).unwrap();
    let r = e
        .submit(Submission {
            endpoint: Endpoint::Batch,
            body: &body,
            key: Some(KEY),
            ip: None,
        })
        .await
        .unwrap();
    assert!(r.rejected.is_empty(), "{r:?}");
}

/// The online state — built incrementally while events arrive, with reads interleaved at
/// arbitrary points, merges and late events — equals a replay of the log from scratch.
#[test]
fn online_state_equals_a_rebuild_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let permit = e.permit(Actor::Operator, &Purpose::operations()).unwrap();
    for round in 0..20i64 {
        let mut batch = Vec::new();
        for i in 0..25i64 {
            let n = round * 25 + i;
            let person = n % 13;
            // Late by up to ten days; anonymous first, identified later; devices and readings.
            let at = 1_795_000_000_000i64 + ((n * 7_919) % 1_000) * 600_000 - (n % 5) * 86_400_000;
            let ts = Timestamp(at).to_rfc3339();
            batch.push(match n % 6 {
                0 => json!({"type":"track","anonymousId":format!("a{person}-{}", n / 6 % 3),"event":"Product Viewed","properties":{"product_id":format!("p{}", n % 17),"category":"c"},"timestamp":ts}),
                1 => json!({"type":"identify","userId":format!("u{person}"),"anonymousId":format!("a{person}-{}", n / 6 % 3),"traits":{"email":format!("u{person}@x.org"),"n":n},"timestamp":ts}),
                2 => json!({"type":"track","userId":format!("u{person}"),"event":"Order Completed","properties":{"total":n},"context":{"device":{"id":format!("d{person}")}},"timestamp":ts}),
                3 => json!({"type":"observe","deviceId":format!("d{person}"),"metric":"hr","value":60 + n % 30,"timestamp":ts}),
                4 => json!({"type":"alias","userId":format!("u{person}"),"previousId":format!("old-{person}"),"timestamp":ts}),
                _ => json!({"type":"page","anonymousId":format!("old-{person}"),"name":"Home","timestamp":ts}),
            });
        }
        rt.block_on(send(&e, json!(batch)));
        if round % 3 == 0 {
            // A read forces a catch-up in the middle of the stream.
            let _ = e
                .profile(&permit, &format!("u{}", round % 13), None)
                .unwrap();
        }
    }
    let r = e.rebuild(&permit).unwrap();
    assert_eq!(r.events, 500);
    assert!(r.equal_to_online, "{r:?}");
    assert_eq!(
        r.persons, 13,
        "every alias, device and cookie resolved to its user"
    );
    let p = e.profile(&permit, "u3", None).unwrap().unwrap();
    assert!(p.metrics.contains_key("hr"));
    e.close().unwrap();

    // Reopened: restored from the snapshot written at close, it answers the same.
    let snap = dir.path().join("unify/state.snap");
    assert!(snap.exists());
    let e = engine(dir.path());
    assert_eq!(e.unify_stats()["restored_from_snapshot"], true);
    let permit = e.permit(Actor::Operator, &Purpose::operations()).unwrap();
    let again = e.profile(&permit, "u3", None).unwrap().unwrap();
    assert_eq!(
        serde_json::to_value(&again).unwrap(),
        serde_json::to_value(&p).unwrap()
    );
    e.close().unwrap();

    // A damaged snapshot is not trusted: the log is replayed, with the same answer.
    let mut b = std::fs::read(&snap).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    std::fs::write(&snap, b).unwrap();
    let e = engine(dir.path());
    assert_eq!(e.unify_stats()["restored_from_snapshot"], false);
    let permit = e.permit(Actor::Operator, &Purpose::operations()).unwrap();
    let replayed = e.profile(&permit, "u3", None).unwrap().unwrap();
    assert_eq!(
        serde_json::to_value(&replayed).unwrap(),
        serde_json::to_value(&p).unwrap()
    );
}

/// JSON Lines imported through the canonical path store the same events, in the same order,
/// with the same rejections, as through the `Event` path.
#[test]
fn json_lines_import_paths_store_the_same_events() {
    let lines = [
        r#"{"type":"track","event":"A","userId":"u1","properties":{"price":"12.5"},"context":{"userAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0"}}"#,
        r#"{"type":"identify","anonymousId":7,"traits":{"email":"A@B.org"},"timestamp":"2026-01-02T03:04:05Z"}"#,
        r#"{"type":"observe","deviceId":"band","metric":"steps","value":12}"#,
        r#"{"type":"bogus"}"#,
        r#"{"type":"track","event":"A","userId":"u1","messageId":"dup"}"#,
        r#"{"type":"track","event":"A","userId":"u1","messageId":"dup"}"#,
    ]
    .join("\n");
    let stored = |canonical: bool| {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path());
        let rx = iob_collect::Received {
            source: Some("files"),
            received_at: Timestamp(1_796_000_000_000),
            ip: None,
        };
        let mut lines = e
            .collector()
            .import_json_lines(lines.as_bytes(), "same.jsonl", rx);
        let summary = if canonical {
            e.import_json_lines(lines, "files", |_| {}).unwrap()
        } else {
            let parser = lines.parser();
            e.import(
                std::iter::from_fn(|| lines.next_raw()),
                |l| parser.parse(l),
                "files",
                |_| {},
            )
            .unwrap()
        };
        let permit = e.permit(Actor::Operator, &Purpose::operations()).unwrap();
        let mut events = Vec::new();
        e.for_each_event(&permit, |r| {
            events.push(String::from_utf8(r.event.to_json()).unwrap());
            Ok(())
        })
        .unwrap();
        let reasons: Vec<String> = e
            .quarantine_list(&permit, false, 10)
            .unwrap()
            .iter()
            .map(|q| q.reason.to_string())
            .collect();
        (summary, events, reasons)
    };
    let (a, b) = (stored(false), stored(true));
    assert_eq!(a.0.imported, 4);
    assert_eq!((a.0.duplicates, a.0.quarantined), (1, 1));
    assert_eq!(a, b);
}

/// A crash after an erasure destroyed the keys but before the snapshot was rewritten leaves an
/// old snapshot that still holds the person: it must not be used.
#[test]
fn a_snapshot_older_than_an_erasure_is_not_restored() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let e = engine(dir.path());
    rt.block_on(send(
        &e,
        json!([
            {"type":"identify","userId":"gone","traits":{"email":"gone@example.org"}},
            {"type":"track","userId":"stays","event":"Viewed"},
        ]),
    ));
    e.update_profiles().unwrap();
    e.close().unwrap();
    let snap = dir.path().join("unify/state.snap");
    let before = std::fs::read(&snap).unwrap();

    let e = engine(dir.path());
    assert_eq!(e.unify_stats()["restored_from_snapshot"], true);
    let ops = e.permit(Actor::Operator, &Purpose::operations()).unwrap();
    e.erase_person(&ops, "gone").unwrap();
    e.close().unwrap();
    // The crash: the pre-erasure snapshot is what is on disk.
    std::fs::write(&snap, &before).unwrap();

    let e = engine(dir.path());
    assert_eq!(e.unify_stats()["restored_from_snapshot"], false);
    let ops = e.permit(Actor::Operator, &Purpose::operations()).unwrap();
    assert!(e.profile(&ops, "gone", None).unwrap().is_none());
    assert!(e.profile(&ops, "stays", None).unwrap().is_some());
    e.close().unwrap();
}

/// A batch whose source is known before parsing (Basic auth: written into each event as it is
/// parsed, the request's buffer handed to the store whole) and the same batch authenticated by
/// its body's `writeKey` (the source spliced into copies) store the same events, with the same
/// duplicates, rejections, refused health readings, truncated addresses and expiring seals.
#[test]
fn basic_auth_and_body_write_key_store_the_same_events() {
    let events = json!([
        {"type":"track","userId":"u1","event":"A","messageId":"m1","context":{"ip":"198.51.100.77"}},
        {"type":"observe","deviceId":"band-1","metric":"heart_rate","value":61,"messageId":"m2"},
        {"type":"page","anonymousId":"a1","name":"Home","messageId":"m3"},
        {"type":"track","userId":"u1","event":"A","messageId":"m1"},
        {"type":"track","event":"no identifier","messageId":"m4"},
        {"type":"identify","userId":"u2","traits":{"name":"Zoë \u{1F600}"},"messageId":"m5"},
    ]);
    let stored = |basic: bool| {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config {
            data_dir: Some(dir.path().to_path_buf()),
            sources: vec![SourceConfig {
                name: "web".into(),
                write_key: Some(KEY.into()),
            }],
            ..Config::default()
        };
        cfg.privacy.truncate_ip = true;
        cfg.privacy.retention_days.insert("page".into(), 90);
        let clock = Arc::new(FixedClock::new(Timestamp(1_796_000_000_000)));
        let e = Engine::open_with_clock(&cfg, clock).unwrap().0;
        let mut body = json!({ "batch": events.clone() });
        if !basic {
            body["writeKey"] = json!(KEY);
        }
        let body = serde_json::to_vec(&body).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let receipt = rt
            .block_on(e.submit(Submission {
                endpoint: Endpoint::Batch,
                body: &body,
                key: basic.then_some(KEY),
                ip: None,
            }))
            .unwrap();
        let permit = e.permit(Actor::Operator, &Purpose::operations()).unwrap();
        let mut stored = Vec::new();
        e.for_each_event(&permit, |r| {
            stored.push(String::from_utf8(r.event.to_json()).unwrap());
            Ok(())
        })
        .unwrap();
        let quarantined: Vec<String> = e
            .quarantine_list(&permit, false, 10)
            .unwrap()
            .iter()
            .map(|q| q.reason.to_string())
            .collect();
        let receipt = (receipt.accepted, receipt.duplicates, receipt.rejected.len());
        (receipt, stored, quarantined)
    };
    let (basic, body_key) = (stored(true), stored(false));
    assert_eq!(basic.0, (3, 1, 2), "{basic:?}");
    assert_eq!(basic.1.len(), 3);
    assert!(basic.1.iter().all(|j| j.contains(r#""iobSource":"web""#)));
    assert!(
        basic.1[0].contains(r#""ip":"198.51.100.0""#),
        "{}",
        basic.1[0]
    );
    assert!(basic.1[2].contains("Zoë"), "{}", basic.1[2]);
    assert!(
        basic.2.iter().any(|r| r.contains("consent_required")),
        "{:?}",
        basic.2
    );
    assert_eq!(basic, body_key);
}
