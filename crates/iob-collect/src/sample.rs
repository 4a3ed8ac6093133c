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

/// [`analytics_js_track`] already serialized, byte for byte what `serde_json::to_vec` gives
/// for it, but built by formatting: benchmarks generate millions of these and must not spend
/// their setup in a `Value` tree.
pub fn analytics_js_track_json(i: usize) -> String {
    // serde_json's `Value` keeps object keys sorted, so this is the order it writes them in.
    format!(
        concat!(
            r#"{{"anonymousId":"anon-{anon:08}","context":{{"ip":"203.0.113.7","locale":"en-US","#,
            r#""page":{{"path":"/p/trail-shoe","url":"https://shop.example.com/p/trail-shoe"}},"#,
            r#""userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605.1.15"}},"#,
            r#""event":"Product Viewed","messageId":"bench-{i:012}","#,
            r#""properties":{{"category":"running","currency":"EUR","item_id":"sku-{sku}","price":89.9}},"#,
            r#""timestamp":"2026-11-20T10:00:00.000Z","type":"track","userId":"user-{user:07}"}}"#
        ),
        anon = i % 100_000,
        i = i,
        sku = i % 5000,
        user = i % 50_000,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_sample_is_the_serialized_value() {
        for i in [0, 1, 4_999, 50_001, 123_456_789] {
            assert_eq!(
                analytics_js_track_json(i),
                serde_json::to_string(&analytics_js_track(i)).unwrap()
            );
        }
    }
}
