//! A simulated population for `iob demo` and for tests: people who browse the web shop
//! anonymously, sign up, use the app, buy in physical stores and wear a fitness tracker, with
//! planted truths that later stages must find (churners, a fraud ring, health deviations).
//!
//! Output is Segment-format JSON, grouped per source, exactly what SDKs would send; the demo
//! posts it over HTTP so it takes the real path. Deterministic for a given seed and end time.
//! Must never read the clock or the environment: `end` and `seed` are inputs.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};

use iob_types::Timestamp;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Population {
    pub persons: usize,
    pub days: i64,
    pub seed: u64,
    /// The simulation ends here (the demo passes "now").
    pub end: Timestamp,
}

/// The planted truths, to be checked against what iob finds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Truths {
    /// User ids of customers who stopped all activity in the last 30 days.
    pub churners: Vec<String>,
    /// User ids with card transactions unlike their own pattern (foreign, large, at night).
    pub fraud_victims: Vec<String>,
    /// User ids whose resting heart rate rises by 20+ bpm in the last week.
    pub health_deviations: Vec<String>,
    /// User ids who only ever buy discounted items.
    pub bargain_hunters: Vec<String>,
}

/// One source's events, in send order.
#[derive(Debug, Clone)]
pub struct SourceEvents {
    pub source: &'static str,
    pub events: Vec<Value>,
}

pub const SOURCES: [&str; 4] = ["web", "ios", "pos", "wearables"];

const CATEGORIES: [(&str, &[&str]); 5] = [
    (
        "running",
        &["trail-shoe", "road-shoe", "running-socks", "hydration-vest"],
    ),
    (
        "outdoor",
        &["tent-2p", "sleeping-bag", "headlamp", "camp-stove"],
    ),
    (
        "fitness",
        &[
            "yoga-mat",
            "kettlebell-12kg",
            "resistance-bands",
            "foam-roller",
        ],
    ),
    (
        "cycling",
        &["helmet", "bike-lights", "cycling-jersey", "bottle-cage"],
    ),
    (
        "wearables",
        &["fitness-band", "smartwatch", "chest-strap", "smart-scale"],
    ),
];

const CITIES: [&str; 4] = ["Lisbon", "Berlin", "Austin", "Osaka"];

const UAS: [&str; 3] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36",
];

struct Gen {
    rng: StdRng,
    seq: u64,
    end: i64,
    out: [Vec<Value>; 4],
}

impl Gen {
    fn id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!(
            "{prefix}-{:08x}-{:04x}",
            self.rng.random::<u32>(),
            self.seq & 0xffff
        )
    }

    fn push(&mut self, source: usize, mut ev: Value, at: i64) {
        // Nothing happens after the end of the simulation ("now").
        if at > self.end {
            return;
        }
        ev["messageId"] = json!(self.id("msg"));
        ev["timestamp"] = json!(Timestamp(at).to_rfc3339());
        self.out[source].push(ev);
    }
}

/// Generates the population's events and the truths planted in them.
pub fn generate(p: &Population) -> (Vec<SourceEvents>, Truths) {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(p.seed),
        seq: 0,
        end: p.end.millis(),
        out: Default::default(),
    };
    let mut truths = Truths::default();
    let day = 86_400_000i64;
    let start = p.end.millis() - p.days * day;
    for i in 0..p.persons {
        let user = format!("user-{i:05}");
        let anon = g.id("anon");
        let favorite = g.rng.random_range(0..CATEGORIES.len());
        let ua = UAS[g.rng.random_range(0..UAS.len())];
        let churner = i % 10 == 3;
        let fraud = i % 37 == 5;
        let health = i % 29 == 7;
        let bargain = i % 11 == 2;
        let has_app = g.rng.random_bool(0.5);
        let has_wearable = i % 3 == 0;
        let active_end = if churner {
            p.end.millis() - 35 * day
        } else {
            p.end.millis()
        };
        if churner {
            truths.churners.push(user.clone());
        }
        if fraud {
            truths.fraud_victims.push(user.clone());
        }
        if bargain {
            truths.bargain_hunters.push(user.clone());
        }
        if health && has_wearable {
            truths.health_deviations.push(user.clone());
        }
        // Consent first: most grant analytics and personalization; a third deny marketing.
        let signup = start + g.rng.random_range(0..(5 * day));
        let denied: Vec<&str> = if i % 3 == 0 {
            vec!["marketing"]
        } else {
            vec![]
        };
        let mut granted = vec!["analytics", "personalization"];
        if denied.is_empty() {
            granted.push("marketing");
        }
        if has_wearable {
            granted.push("health");
        }
        g.push(
            0,
            json!({"type": "consent", "anonymousId": anon, "granted": granted, "denied": denied,
            "policyVersion": "2026-01", "source": "cookie-banner"}),
            signup - 60_000,
        );
        g.push(0, json!({"type": "identify", "anonymousId": anon, "userId": user,
            "traits": {"email": format!("{user}@example.com"), "plan": if i % 4 == 0 {"plus"} else {"basic"},
                       "city": CITIES[i % 4]},
            "context": {"userAgent": ua, "ip": format!("203.0.113.{}", i % 250)}}), signup);
        // Sessions over the period.
        let mut t = signup + g.rng.random_range(0..day);
        while t < active_end {
            let in_app = has_app && g.rng.random_bool(0.4);
            let (cat, items) = if g.rng.random_bool(0.7) {
                CATEGORIES[favorite]
            } else {
                CATEGORIES[g.rng.random_range(0..CATEGORIES.len())]
            };
            let views = g.rng.random_range(1..6);
            let mut s = t;
            for _ in 0..views {
                let item = items[g.rng.random_range(0..items.len())];
                let price = 20.0 + (item.len() as f64 * 7.5);
                if in_app {
                    g.push(1, json!({"type": "screen", "userId": user, "name": "Product",
                        "properties": {"item_id": item, "category": cat},
                        "context": {"device": {"type": "ios", "model": "iPhone15,2"}, "os": {"name": "iOS", "version": "17.4"},
                                    "app": {"name": "Trailhead", "version": "3.2.0"}}}), s);
                } else {
                    g.push(0, json!({"type": "page", "anonymousId": anon, "userId": user, "name": "Product", "category": cat,
                        "properties": {"url": format!("https://shop.example.com/p/{item}"), "path": format!("/p/{item}")},
                        "context": {"userAgent": ua, "page": {"url": format!("https://shop.example.com/p/{item}")}}}), s);
                }
                g.push(
                    usize::from(in_app),
                    json!({"type": "track", "userId": user, "event": "Product Viewed",
                    "properties": {"item_id": item, "category": cat, "price": price}}),
                    s + 2_000,
                );
                s += g.rng.random_range(20_000..180_000);
            }
            if g.rng.random_bool(0.25) {
                let item = items[g.rng.random_range(0..items.len())];
                let discount = bargain || g.rng.random_bool(0.2);
                let price = (20.0 + item.len() as f64 * 7.5) * if discount { 0.7 } else { 1.0 };
                g.push(usize::from(in_app), json!({"type": "track", "userId": user, "event": "Product Added",
                    "properties": {"item_id": item, "category": cat, "price": price, "quantity": 1}}), s);
                if g.rng.random_bool(0.6) {
                    let order = g.id("ord");
                    g.push(usize::from(in_app), json!({"type": "track", "userId": user, "event": "Order Completed",
                        "properties": {"order_id": order, "revenue": price, "currency": "EUR", "discounted": discount,
                                       "products": [{"item_id": item, "category": cat, "price": price, "quantity": 1}]}}), s + 60_000);
                }
            }
            // In-store purchase with the loyalty card now and then.
            if g.rng.random_bool(0.08) {
                let item = items[g.rng.random_range(0..items.len())];
                let order = g.id("pos");
                g.push(2, json!({"type": "track", "userId": user, "event": "Order Completed",
                    "properties": {"order_id": order, "revenue": 35.0 + item.len() as f64 * 6.0, "currency": "EUR",
                                   "store_id": format!("store-{}", i % 7), "payment": "card", "country": "PT",
                                   "products": [{"item_id": item, "category": cat, "quantity": 1}]}}), s + 3_600_000);
            }
            t += g.rng.random_range((day / 2)..(4 * day));
        }
        if fraud {
            let at = p.end.millis() - g.rng.random_range(0..(3 * day)) - (p.end.millis() % day)
                + 3 * 3_600_000;
            for k in 0..3 {
                let order = g.id("pos");
                g.push(2, json!({"type": "track", "userId": user, "event": "Order Completed",
                    "properties": {"order_id": order, "revenue": 1_450.0 + k as f64 * 310.0, "currency": "USD",
                                   "store_id": "store-remote-991", "payment": "card", "country": "BR"}}), at + k * 240_000);
            }
        }
        if has_wearable {
            let device = format!("band-{i:05}");
            g.push(
                3,
                json!({"type": "identify", "userId": user, "traits": {"wearable": device},
                "context": {"device": {"id": device, "type": "wearable"}}}),
                signup + day,
            );
            let mut d = signup + day;
            while d < active_end {
                let late = health && d > p.end.millis() - 7 * day;
                let resting = 58.0 + (i % 9) as f64 + if late { 22.0 } else { 0.0 };
                for h in [7i64, 13, 19, 23] {
                    let hr =
                        resting + g.rng.random_range(-3.0..3.0) + if h == 13 { 12.0 } else { 0.0 };
                    g.push(3, json!({"type": "observe", "userId": user, "deviceId": device, "metric": "heart_rate",
                        "value": (hr * 10.0).round() / 10.0, "unit": "bpm"}), d + h * 3_600_000);
                }
                let (steps, sleep) = (
                    g.rng.random_range(2_000..14_000),
                    g.rng.random_range(300..520),
                );
                g.push(
                    3,
                    json!({"type": "observe", "userId": user, "deviceId": device, "metric": "steps",
                    "value": steps, "unit": "count"}),
                    d + 23 * 3_600_000 + 1_000,
                );
                g.push(3, json!({"type": "observe", "userId": user, "deviceId": device, "metric": "sleep_minutes",
                    "value": sleep, "unit": "min"}), d + 7 * 3_600_000 + 2_000);
                d += day;
            }
        }
    }
    let events = SOURCES
        .iter()
        .zip(g.out)
        .map(|(source, events)| SourceEvents { source, events })
        .collect();
    (events, truths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_multi_channel() {
        let p = Population {
            persons: 40,
            days: 60,
            seed: 7,
            end: Timestamp(1_780_000_000_000),
        };
        let (a, truths) = generate(&p);
        let (b, _) = generate(&p);
        assert_eq!(
            serde_json::to_string(&a[0].events).unwrap(),
            serde_json::to_string(&b[0].events).unwrap()
        );
        for s in &a {
            assert!(!s.events.is_empty(), "source {} produced nothing", s.source);
        }
        assert!(!truths.churners.is_empty() && !truths.fraud_victims.is_empty());
        let last_churner_event = a
            .iter()
            .flat_map(|s| &s.events)
            .filter(|e| e["userId"] == truths.churners[0].as_str())
            .map(|e| Timestamp::parse("t", e["timestamp"].as_str().unwrap()).unwrap())
            .max()
            .unwrap();
        assert!(last_churner_event.millis() < p.end.millis() - 30 * 86_400_000);
        let latest = a
            .iter()
            .flat_map(|s| &s.events)
            .map(|e| Timestamp::parse("t", e["timestamp"].as_str().unwrap()).unwrap())
            .max()
            .unwrap();
        assert!(latest <= p.end, "no event after the end of the simulation");
    }
}
