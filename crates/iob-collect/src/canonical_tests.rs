//! The canonical path must equal the `Event` path: same outcomes, and each payload byte for
//! byte `Event::to_json` of the event `parse_batch` returns.

use std::net::{IpAddr, Ipv4Addr};

use iob_types::{EventKind, Timestamp};
use serde_json::json;

use super::{CanonicalEvents, SourceField};
use crate::{Collector, Received};

const SOURCES: [Option<&str>; 3] = [None, Some("web"), Some("we\"b\u{1}é")];

/// Asserts that `parse_batch_canonical` agrees with `parse_batch` on `body`.
pub(crate) fn assert_same_outcomes(c: &Collector, body: &[u8], rx: &Received) {
    let mut out = CanonicalEvents::new();
    let by_event = c.parse_batch(body, rx);
    let by_canon = c.parse_batch_canonical(body, rx, &mut out);
    match (by_event, by_canon) {
        (Err(a), Err(b)) => assert_eq!(a, b),
        (Ok(a), Ok(b)) => {
            assert_eq!(a.write_key, b.write_key);
            assert_eq!(a.items.len(), b.items.len());
            for (x, y) in a.items.into_iter().zip(b.items) {
                assert_eq!(x.raw, y.raw);
                match (x.result, y.result) {
                    (Err(a), Err(b)) => assert_eq!(a, b),
                    (Ok(e), Ok(i)) => assert_same_event(e, out.get(i)),
                    (a, b) => panic!("outcomes differ: {a:?} vs {b:?}"),
                }
            }
        }
        (a, b) => panic!("outcomes differ: {a:?} vs {b:?}"),
    }
}

/// Asserts that `parse_event_canonical` agrees with `parse_event` on `body`.
pub(crate) fn assert_same_single(
    c: &Collector,
    body: &[u8],
    expected: Option<EventKind>,
    rx: &Received,
) {
    let mut out = CanonicalEvents::new();
    match (
        c.parse_event(body, expected, rx),
        c.parse_event_canonical(body, expected, rx, &mut out),
    ) {
        (Err(a), Err(b)) => assert_eq!(a, b),
        (Ok(p), Ok(q)) => {
            assert_eq!(p.write_key, q.write_key);
            assert_same_event(p.event, out.get(q.event));
        }
        (a, b) => panic!("outcomes differ: {a:?} vs {b:?}"),
    }
}

fn assert_same_event(mut e: iob_types::Event, c: super::CanonicalEvent<'_>) {
    assert_eq!(
        (e.kind, e.timestamp, e.received_at),
        (c.kind, c.timestamp, c.received_at)
    );
    assert_eq!(e.message_id, c.message_id);
    assert_eq!(e.routing_id(), c.routing_id);
    for source in SOURCES {
        e.source = source.map(str::to_owned);
        let payload = c.to_json(&SourceField::new(source));
        assert_eq!(
            String::from_utf8_lossy(&payload),
            String::from_utf8_lossy(&e.to_json())
        );
    }
}

#[test]
fn bench_batches_are_identical_on_both_paths() {
    let c = Collector::default();
    let events: Vec<_> = (0..200).map(crate::sample::analytics_js_track).collect();
    let body = json!({"batch": events, "sentAt": "2026-11-20T10:00:01.000Z"}).to_string();
    for ip in [None, Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)))] {
        let rx = Received {
            source: None,
            received_at: Timestamp(1_795_000_000_000),
            ip,
        };
        assert_same_outcomes(&c, body.as_bytes(), &rx);
        let mut out = CanonicalEvents::new();
        let parsed = c
            .parse_batch_canonical(body.as_bytes(), &rx, &mut out)
            .unwrap();
        assert_eq!(parsed.accepted().count(), 200);
    }
}

#[test]
fn rejections_and_write_keys_match_on_both_paths() {
    let c = Collector::default();
    let rx = Received::new(Timestamp(1_795_000_000_000));
    let bodies = [
        json!({"batch": [{"type":"track","userId":"u","event":"e","writeKey":"a"}, {"type":"track","userId":"u","event":"e","writeKey":"b"}, 7, {"type":"track"}]}),
        json!({"batch": [{"type":"identify","userId":"u","traits":{"x":1}}], "context": {"locale":"fr"}, "integrations": {"All": false}}),
        json!({"batch": [{"type":"observe","deviceId":"d","metric":"heart_rate","value":true,"tags":{"a":"b"}}]}),
        json!({"batch": [{"type":"consent","anonymousId":7,"granted":["analytics"],"source":"banner"}]}),
        json!({"batch": [{"type":"track","userId":"u","event":"Product Reviewed","iobEnrichment":{"x":1},"properties":{"review":"Lovely \"fit\"","comment":3}}], "context": {"userAgent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Version/17.4 Mobile/15E148 Safari/604.1"}}),
        json!({"batch": "nope"}),
        json!([1]),
    ];
    for b in bodies {
        assert_same_outcomes(&c, b.to_string().as_bytes(), &rx);
    }
    assert_same_outcomes(&c, b"{\"batch\":[", &rx);
    assert_same_single(
        &c,
        b"{\"userId\":\"u\",\"event\":\"e\\n\"}",
        Some(EventKind::Track),
        &rx,
    );
    assert_same_single(&c, b"{\"userId\":\"u\"}", Some(EventKind::Track), &rx);
}
