//! A realistic sample event, shared by the collector's tests and `iob bench` so that what is
//! benchmarked is what is tested. Not used by the ingest path itself.

use serde_json::{Value, json};

/// The `i`-th ~490-byte analytics.js-style `track` event (properties, context.page, userAgent,
/// ip), with distinct messageIds and 50k distinct users.
pub fn analytics_js_track(i: usize) -> Value {
    json!({
        "type": "track",
        "messageId": format!("bench-{i:012}"),
        "anonymousId": format!("anon-{:08}", i % 100_000),
        "userId": format!("user-{:07}", i % 50_000),
        "event": "Product Viewed",
        "timestamp": "2026-11-20T10:00:00.000Z",
        "properties": {"item_id": format!("sku-{}", i % 5000), "category": "running", "price": 89.9, "currency": "EUR"},
        "context": {
            "ip": "203.0.113.7",
            "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605.1.15",
            "page": {"path": "/p/trail-shoe", "url": "https://shop.example.com/p/trail-shoe"},
            "locale": "en-US"
        }
    })
}
