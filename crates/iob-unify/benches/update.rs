//! Profile update throughput and lookup latency on a realistic mix (the issue's figures):
//! `cargo bench -p iob-unify --bench update` (prints events/s, p50/p99 lookup, bytes/profile).
//! Pin to one core with `taskset -c 0` for the one-core figure. `IOB_BENCH_PERSONS` sets the
//! population (default 1M for the lookup figure).

use std::time::Instant;

// The allocator of the `iob` binary, so the figure is the one users get.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use iob_govern::{Pseudonymizer, SecretKey};
use iob_types::EventKind;
use iob_unify::{IdentityConfig, ProfileConfig, StoredEvent, Unifier};

const T0: i64 = 1_763_600_000_000;

/// The i-th event of a web/app/store/wearable mix: 60% track with product properties, 15%
/// page, 10% identify, 10% observe, 5% order.
fn event(i: u64, persons: u64) -> (EventKind, i64, Vec<u8>) {
    let p = (i.wrapping_mul(2_654_435_761)) % persons;
    let at = T0 + (i as i64 % 2_000_000) * 1_300;
    let r = i % 20;
    let (kind, json) = match r {
        0..=11 => (
            EventKind::Track,
            format!(
                r#"{{"type":"track","messageId":"m{i}","iobSource":"web","userId":"user-{p}","event":"Product Viewed","timestamp":"2025-11-20T10:00:00.000Z","properties":{{"product_id":"sku-{}","category":"cat-{}","price":19.9}},"context":{{"ip":"203.0.113.7","page":{{"path":"/p"}}}}}}"#,
                i % 5000,
                i % 40
            ),
        ),
        12..=14 => (
            EventKind::Page,
            format!(
                r#"{{"type":"page","messageId":"m{i}","iobSource":"web","anonymousId":"anon-{p}","name":"Home","properties":{{"path":"/"}}}}"#
            ),
        ),
        15 | 16 => (
            EventKind::Identify,
            format!(
                r#"{{"type":"identify","messageId":"m{i}","iobSource":"ios","userId":"user-{p}","anonymousId":"anon-{p}","traits":{{"plan":"pro","email":"u{p}@example.com"}},"context":{{"channel":"mobile","device":{{"id":"dev-{p}","type":"ios"}}}}}}"#
            ),
        ),
        17 | 18 => (
            EventKind::Observe,
            format!(
                r#"{{"type":"observe","messageId":"m{i}","iobSource":"wearables","deviceId":"dev-{p}","metric":"heart_rate","value":{}}}"#,
                55 + i % 40
            ),
        ),
        _ => (
            EventKind::Track,
            format!(
                r#"{{"type":"track","messageId":"m{i}","iobSource":"pos","userId":"user-{p}","event":"Order Completed","properties":{{"total":{}.5,"product_id":"sku-{}"}}}}"#,
                i % 300,
                i % 5000
            ),
        ),
    };
    (kind, at, json.into_bytes())
}

fn main() {
    let persons: u64 = std::env::var("IOB_BENCH_PERSONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let n = persons * 3;
    let key = SecretKey::from_bytes(&[3u8; 32]).unwrap();
    let mut u = Unifier::new(
        Pseudonymizer::new(&key),
        &IdentityConfig::default(),
        ProfileConfig::default(),
    )
    .unwrap();
    let events: Vec<_> = (0..n).map(|i| event(i, persons)).collect();
    let started = Instant::now();
    for (seq, (kind, at, payload)) in events.iter().enumerate() {
        let _ = u.apply(StoredEvent {
            seq: seq as u64,
            kind: *kind,
            at: *at,
            payload,
        });
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "unify update: {n} events, {} persons, {:.2}s: {:.0} events/s",
        u.persons(),
        secs,
        n as f64 / secs
    );
    println!(
        "  profile memory   {:.0} bytes/profile (computed features and traits)",
        u.profile_bytes() as f64 / u.persons() as f64
    );
    // Lookup: identifier → person → profile view (JSON-ready), at random.
    let mut lat = Vec::with_capacity(100_000);
    // A read for analytics (opt-out by default): the consent check is part of every measured lookup.
    let permit = iob_govern::Governor::default()
        .permit(
            iob_govern::Actor::Operator,
            &iob_types::Purpose::new("analytics").unwrap(),
        )
        .unwrap();
    for i in 0..100_000u64 {
        let p = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % persons;
        let id = format!("user-{p}");
        let t = Instant::now();
        let person = u.lookup(&id);
        let view = person.and_then(|p| u.view(&permit, p, T0 + 40 * 86_400_000).ok());
        lat.push(t.elapsed().as_nanos() as u64);
        std::hint::black_box(view);
    }
    lat.sort_unstable();
    let q = |f: f64| lat[((lat.len() as f64 * f) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    println!(
        "  lookup+view      p50 {:.1} µs  p99 {:.1} µs  max {:.1} µs  ({} lookups, {} persons loaded)",
        q(0.5),
        q(0.99),
        q(1.0),
        lat.len(),
        u.persons()
    );
}
