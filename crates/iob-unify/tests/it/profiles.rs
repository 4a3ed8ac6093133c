use iob_types::EventKind;
use proptest::prelude::*;
use serde_json::json;

use crate::util::*;

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;

fn history() -> Vec<Ev> {
    let mut v = vec![Ev(
        EventKind::Identify,
        T0,
        json!({"type":"identify","userId":"u1","anonymousId":"a1","traits":{"plan":"free"}}),
    )];
    for i in 0..40i64 {
        let at = T0 + (i % 7) * DAY + (i * 7 % 50) * MIN;
        let name = ["Product Viewed", "Product Added", "Order Completed"][(i % 3) as usize];
        let category = ["shoes", "bags"][(i % 2) as usize];
        let props = json!({"product_id": format!("p{}", i % 5), "category": category, "price": 10.0 + i as f64, "quantity": 2});
        let (user, anon) = if i % 4 == 0 {
            (None, Some("a1"))
        } else {
            (Some("u1"), None)
        };
        let mut e = track(user, anon, name, at, props);
        if i % 5 == 0 {
            e.2["context"] = json!({"channel": "ios", "device": {"type": "phone"}});
        }
        v.push(e);
    }
    v.push(Ev(
        EventKind::Identify,
        T0 + 3 * DAY,
        json!({"type":"identify","userId":"u1","traits":{"plan":"pro"}}),
    ));
    for i in 0..6i64 {
        v.push(Ev(
            EventKind::Observe,
            T0 + i * 5 * MIN,
            json!({"type":"observe","deviceId":"w1","metric":"steps","value": 100 * i, "context": {"device": {"id": "w1"}}, "userId": "u1"}),
        ));
    }
    v
}

fn profile_json(evs: &[Ev]) -> serde_json::Value {
    let mut u = unifier();
    apply_all(&mut u, evs);
    assert_eq!(u.persons(), 1);
    let p = u.lookup("u1").unwrap();
    let mut v = serde_json::to_value(u.view(&ops(), p, T0 + 8 * DAY).unwrap()).unwrap();
    v["person"] = json!(0);
    v
}

/// Floats from sums in another order differ in the last bits: compare to 1e-9 relative.
fn assert_close(a: &serde_json::Value, b: &serde_json::Value, path: &str) {
    match (a, b) {
        (serde_json::Value::Number(x), serde_json::Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                "{path}: {x} vs {y}"
            );
        }
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{path}"
            );
            for (k, v) in x {
                assert_close(v, &y[k], &format!("{path}.{k}"));
            }
        }
        (serde_json::Value::Array(x), serde_json::Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}");
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                assert_close(v, w, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

#[test]
fn features_of_a_known_history() {
    let v = profile_json(&history());
    assert_eq!(v["events"], 48);
    assert_eq!(v["traits"]["plan"], "pro", "latest by event time");
    assert_eq!(v["counts"]["Order Completed"]["all"], 13);
    assert_eq!(
        v["rfm"]["frequency"], 13,
        "orders are the events with a purchase"
    );
    assert_eq!(v["channels"]["ios"], 8);
    assert_eq!(v["devices"]["phone"], 8);
    assert_eq!(v["metrics"]["steps"]["max"], 500.0);
    assert_eq!(v["metrics"]["steps"]["last"], 500.0);
    // 30-minute sessions per channel: each day's web events fall in one or two sessions.
    assert!(v["sessions"]["web"]["sessions"].as_u64().unwrap() >= 7);
    let weekdays: u64 = v["active_weekdays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .sum();
    assert_eq!(weekdays, 42, "device readings are not activity");
    assert_eq!(v["top_items"].as_array().unwrap().len(), 5);
    // Rolling windows at T0 + 8 days: nothing today, some in 7 days, all in 30.
    assert_eq!(v["counts"]["Product Viewed"]["1d"], 0);
    assert_eq!(
        v["counts"]["Product Viewed"]["30d"],
        v["counts"]["Product Viewed"]["all"]
    );
}

#[test]
fn a_late_trait_does_not_override_a_newer_one() {
    let mut evs = history();
    evs.push(Ev(
        EventKind::Identify,
        T0 + DAY,
        json!({"type":"identify","userId":"u1","traits":{"plan":"trial"}}),
    ));
    assert_eq!(profile_json(&evs)["traits"]["plan"], "pro");
}

#[test]
fn replay_in_the_same_order_gives_identical_state() {
    let evs = history();
    let (mut a, mut b) = (unifier(), unifier());
    apply_all(&mut a, &evs);
    apply_all(&mut b, &evs);
    let pa: Vec<_> = a.profiles().map(|(p, x)| (p, x.clone())).collect();
    let pb: Vec<_> = b.profiles().map(|(p, x)| (p, x.clone())).collect();
    assert_eq!(pa, pb);
}

#[test]
fn an_event_applied_twice_counts_once() {
    let mut u = unifier();
    let e = serde_json::to_vec(&history()[1].2).unwrap();
    for _ in 0..2 {
        u.apply(iob_unify::StoredEvent {
            seq: 5,
            kind: EventKind::Track,
            at: T0,
            payload: &e,
        })
        .unwrap();
    }
    assert_eq!(u.profiles().next().unwrap().1.events, 1);
    assert!(
        u.apply(iob_unify::StoredEvent {
            seq: 6,
            kind: EventKind::Track,
            at: T0,
            payload: b"{oops"
        })
        .is_err()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Late and out-of-order arrival gives the in-order profile.
    #[test]
    fn any_arrival_order_gives_the_same_profile(seed in any::<u64>()) {
        use rand::{SeedableRng, seq::SliceRandom};
        let mut evs = history();
        let in_order = profile_json(&evs);
        evs.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
        // The identify that links a1 to u1 must not come after the anonymous events it links
        // for the person count to be 1 at the end either way; identity is order-free here.
        assert_close(&profile_json(&evs), &in_order, "profile");
    }
}

#[test]
fn a_snapshot_restores_the_state_and_refuses_what_it_cannot_trust() {
    let evs = history();
    let (first, rest) = evs.split_at(20);
    let mut a = unifier();
    apply_all(&mut a, first);
    let snap = a.snapshot();
    let mut b = unifier();
    b.restore(&snap).unwrap();
    assert_eq!(b.applied(), a.applied());
    assert_eq!(b.lookup("u1"), a.lookup("u1"));
    // Continuing from the snapshot gives what continuing online gives.
    apply_all(&mut a, rest);
    apply_all(&mut b, rest);
    let p = a.lookup("u1").unwrap();
    assert_eq!(
        serde_json::to_value(a.view(&ops(), p, T0).ok()).unwrap(),
        serde_json::to_value(b.view(&ops(), p, T0).ok()).unwrap()
    );
    // Corrupt, truncated, or taken under other settings: refused, state untouched.
    let mut c = unifier();
    for bad in [&snap[..snap.len() / 2], b"\x07garbage".as_slice()] {
        assert!(c.restore(bad).is_err());
    }
    let mut flipped = snap.clone();
    flipped[0] ^= 0x01; // the version
    assert!(
        c.restore(&flipped)
            .unwrap_err()
            .to_string()
            .contains("version")
    );
    let other = iob_unify::Unifier::new(
        iob_govern::Pseudonymizer::new(&iob_govern::SecretKey::from_bytes(&[7u8; 32]).unwrap()),
        &iob_unify::IdentityConfig::default(),
        iob_unify::ProfileConfig {
            session_gap_minutes: 10,
            ..iob_unify::ProfileConfig::default()
        },
    );
    assert!(
        other
            .unwrap()
            .restore(&snap)
            .unwrap_err()
            .to_string()
            .contains("settings")
    );
    assert_eq!(c.persons(), 0);
}

#[test]
fn orders_returns_and_readings_count_as_what_they_are() {
    let line = |invoice: &str, sku: &str, qty: i64, at: i64| {
        track(
            Some("c1"),
            None,
            "Order Line",
            at,
            json!({"invoice": invoice, "sku": sku, "quantity": qty, "price": 2.5}),
        )
    };
    let evs = vec![
        line("A1", "mug", 4, T0),
        line("A1", "plate", 1, T0 + MIN),
        line("A2", "mug", 2, T0 + DAY),
        // A cancellation of two mugs: money back, not an order, no affinity.
        line("CA2", "mug", -2, T0 + DAY + MIN),
        Ev(
            EventKind::Observe,
            T0 + 2 * DAY,
            json!({"type":"observe","userId":"c1","deviceId":"scale","metric":"weight_kg","value":70}),
        ),
    ];
    let mut u = unifier();
    apply_all(&mut u, &evs);
    let p = u.lookup("c1").unwrap();
    let v = serde_json::to_value(u.view(&ops(), p, T0 + 3 * DAY).unwrap()).unwrap();
    assert_eq!(
        v["rfm"]["frequency"], 2,
        "lines of one invoice are one order; returns are none"
    );
    assert_eq!(
        v["rfm"]["monetary"], 12.5,
        "4+1+2 units bought, 2 returned, at 2.5"
    );
    assert!(
        (v["rfm"]["recency_days"].as_f64().unwrap() - 2.0).abs() < 1e-9,
        "since the last purchase, not the last reading"
    );
    assert!((v["days_since_last_seen"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    // Affinity grows with units bought: 4 + 2 mugs beat 1 plate; the return adds nothing.
    assert_eq!(v["top_items"][0][0], "mug");
    let hours: u64 = v["active_hours_utc"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .sum();
    assert_eq!(hours, 4, "the scale reading is not activity");
    assert_eq!(v["sessions"]["web"]["events"], 4);
}

/// Snapshot formats frozen in fixtures. v2 (with consent histories) must restore; v1 (before
/// them) must be refused by name so the engine replays the log. A layout change must either
/// still read v2 or bump `snapshot::VERSION` and add a fixture. Regenerate only for a new
/// version: `IOB_WRITE_FIXTURES=1 cargo test -p iob-unify --test it snapshot_fixture`.
#[test]
fn snapshot_fixtures_v2_restores_v1_is_refused() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let path = dir.join("unify-snapshot-v2.bin");
    let evs = history();
    let mut live = unifier();
    apply_all(&mut live, &evs[..20]);
    if std::env::var_os("IOB_WRITE_FIXTURES").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, live.snapshot()).unwrap();
    }
    assert_eq!(iob_unify::snapshot::VERSION, 2);
    let bytes = std::fs::read(&path).expect("fixture");
    let mut restored = unifier();
    restored.restore(&bytes).expect("a v2 snapshot restores");
    assert_eq!(restored.applied(), Some(19));
    let p = restored.lookup("u1").unwrap();
    assert_eq!(
        serde_json::to_value(restored.view(&ops(), p, T0).ok()).unwrap(),
        serde_json::to_value(live.view(&ops(), live.lookup("u1").unwrap(), T0).ok()).unwrap()
    );
    let v1 = std::fs::read(dir.join("unify-snapshot-v1.bin")).expect("v1 fixture");
    let err = unifier().restore(&v1).unwrap_err();
    assert!(err.to_string().contains("version 1"), "{err}");
}
