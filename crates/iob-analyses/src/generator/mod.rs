//! A deterministic, seeded generator of e-commerce journeys (Segment `track`/`page` events) for
//! the funnel/retention/trends benchmark: view → add-to-cart → purchase with drop-off, repeat
//! visitors over ~90 days, purchases outside the 7-day window, and late-arriving events.
//!
//! The model, per person (ids 0..persons, in that order):
//! * a device (desktop/mobile/tablet user agent), an `anonymousId`, and a `userId` unless the
//!   person is one of the `anonymous_share` visitors without one;
//! * a first visit on a uniform day of `days`; after each session the person comes back with
//!   probability 0.55, after an exponential gap (mean 9 days), while within `days`;
//! * a session: a landing page view, 1–5 `Product Viewed` (each with a product page view half
//!   the time); each view leads to `Product Added` with p = [`P_ADD`]; a session with an add
//!   ends with `Order Completed` with p = [`P_BUY`], or (p = [`P_BUY_LATER`]) the purchase comes
//!   1–14 days later (so some conversions fall outside a 7-day window). Per person that is
//!   roughly 30 % view → cart and 45 % cart → purchase;
//! * `late_share` of events are *late*: received hours after their time and emitted after the
//!   person's later events (so ingest order ≠ time order); with `sent_at`, such events carry a
//!   `sentAt` of their delivery time (note: with clock-skew correction at ingest, `sentAt` makes
//!   the corrected time relative to the ingest clock, so it is off by default).
//!
//! About 13 events per person. JSON is written by hand (`write!` into a reused buffer), never
//! through `serde_json::Value`. Same seed and config, same bytes: the generator has its own
//! RNG (SplitMix64, `src/rng.rs`) so dependency upgrades do not change the data.

use std::io::Write;

use crate::DAY_MS;
use crate::rng::Rng;

/// Probability that a product view leads to an add-to-cart.
pub const P_ADD: f64 = 0.06;
/// Probability that a session with an add ends in a purchase.
pub const P_BUY: f64 = 0.35;
/// Probability that a session with an add and no purchase is followed by one 1–14 days later.
pub const P_BUY_LATER: f64 = 0.25;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyConfig {
    pub seed: u64,
    pub persons: u64,
    pub days: u32,
    /// Time of day 0 (ms); default 2024-01-01T00:00:00Z (a Monday).
    pub start_ms: i64,
    /// Share of persons with only an `anonymousId`.
    pub anonymous_share: f64,
    /// Share of late-arriving events.
    pub late_share: f64,
    /// Write `sentAt` (see the module docs).
    pub sent_at: bool,
    /// Round event times down to a multiple of this many ms (0: exact), to make many ties.
    pub round_ms: i64,
}

impl JourneyConfig {
    pub fn new(seed: u64, persons: u64, days: u32) -> Self {
        JourneyConfig {
            seed,
            persons,
            days,
            start_ms: 1_704_067_200_000,
            anonymous_share: 0.3,
            late_share: 0.02,
            sent_at: false,
            round_ms: 0,
        }
    }
}

/// The kind of a generated event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A page view; the page is [`PAGES`]`[n]`.
    Page(u8),
    ProductViewed,
    ProductAdded,
    OrderCompleted,
}

/// Page names (and paths) of page views.
pub const PAGES: [(&str, &str); 4] = [
    ("Home", "/"),
    ("Category", "/c/"),
    ("Product", "/p/"),
    ("Cart", "/cart"),
];
/// Product categories.
pub const CATEGORIES: [&str; 8] = [
    "Shoes", "Shirts", "Bags", "Watches", "Books", "Toys", "Garden", "Kitchen",
];
/// (source, medium, name) of campaigns; index 0 is direct traffic.
pub const CAMPAIGNS: [Option<(&str, &str, &str)>; 4] = [
    None,
    Some(("google", "cpc", "spring_sale")),
    Some(("newsletter", "email", "weekly")),
    Some(("facebook", "social", "retarget")),
];
/// (device type, os, browser, user agent).
pub const DEVICES: [(&str, &str, &str, &str); 3] = [
    (
        "desktop",
        "Windows 10",
        "Chrome",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    ),
    (
        "smartphone",
        "iOS",
        "Safari",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    ),
    (
        "smartphone",
        "Android",
        "Chrome",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    ),
];

/// One generated event.
#[derive(Debug, Clone, PartialEq)]
pub struct GenEvent {
    /// Emission order (0, 1, …): the order an ingest would receive them in.
    pub n: u64,
    pub person: u64,
    pub anonymous: bool,
    pub ts: i64,
    pub received_at: i64,
    pub kind: Kind,
    pub product: u32,
    pub category: u8,
    pub price_cents: u32,
    pub quantity: u32,
    pub campaign: u8,
    pub device: u8,
}

impl GenEvent {
    /// Segment type: `page` or `track`.
    pub fn kind_str(&self) -> &'static str {
        if matches!(self.kind, Kind::Page(_)) {
            "page"
        } else {
            "track"
        }
    }

    /// Event name (track) or page name.
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Page(p) => PAGES[p as usize].0,
            Kind::ProductViewed => "Product Viewed",
            Kind::ProductAdded => "Product Added",
            Kind::OrderCompleted => "Order Completed",
        }
    }

    /// The page path of the event's context.
    pub fn path(&self, buf: &mut String) {
        buf.clear();
        use std::fmt::Write;
        match self.kind {
            Kind::Page(0) => buf.push('/'),
            Kind::Page(1) => {
                let _ = write!(
                    buf,
                    "/c/{}",
                    CATEGORIES[self.category as usize].to_ascii_lowercase()
                );
            }
            Kind::Page(3) | Kind::OrderCompleted => buf.push_str("/cart"),
            _ => {
                let _ = write!(buf, "/p/{}", self.product);
            }
        }
    }

    /// The properties object as JSON.
    pub fn properties(&self, buf: &mut Vec<u8>) {
        let cat = CATEGORIES[self.category as usize];
        let (p, c) = (self.price_cents / 100, self.price_cents % 100);
        let _ = match self.kind {
            Kind::Page(_) => write!(buf, "{{\"category\":\"{cat}\"}}"),
            Kind::ProductViewed => write!(
                buf,
                "{{\"product_id\":\"p{}\",\"category\":\"{cat}\",\"price\":{p}.{c:02}}}",
                self.product
            ),
            Kind::ProductAdded => write!(
                buf,
                "{{\"product_id\":\"p{}\",\"category\":\"{cat}\",\"price\":{p}.{c:02},\"quantity\":{}}}",
                self.product, self.quantity
            ),
            Kind::OrderCompleted => {
                let r = self.price_cents as u64 * self.quantity as u64;
                write!(
                    buf,
                    "{{\"order_id\":\"o{}\",\"revenue\":{}.{:02},\"currency\":\"EUR\",\"products\":[{{\"product_id\":\"p{}\",\"quantity\":{}}}]}}",
                    self.n,
                    r / 100,
                    r % 100,
                    self.product,
                    self.quantity
                )
            }
        };
    }
}

fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

fn push_digits(buf: &mut Vec<u8>, n: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut v = n;
    for slot in tmp[20 - width..].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    buf.extend_from_slice(&tmp[20 - width..]);
}

/// Writes `ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn iso(buf: &mut Vec<u8>, ms: i64) {
    let day = ms.div_euclid(DAY_MS);
    let rem = ms.rem_euclid(DAY_MS) as u64;
    let date = time::Date::from_julian_day((day + 2_440_588) as i32).expect("date in range");
    push_digits(buf, date.year() as u64, 4);
    buf.push(b'-');
    push_digits(buf, u8::from(date.month()) as u64, 2);
    buf.push(b'-');
    push_digits(buf, date.day() as u64, 2);
    buf.push(b'T');
    push_digits(buf, rem / 3_600_000, 2);
    buf.push(b':');
    push_digits(buf, rem / 60_000 % 60, 2);
    buf.push(b':');
    push_digits(buf, rem / 1000 % 60, 2);
    buf.push(b'.');
    push_digits(buf, rem % 1000, 3);
    buf.push(b'Z');
}

/// Calls `f` for every event, person by person (late events after the person's others).
pub fn for_each_event(cfg: &JourneyConfig, mut f: impl FnMut(&GenEvent)) {
    let mut rng = Rng::new(cfg.seed);
    let mut n = 0u64;
    let mut person_events: Vec<GenEvent> = Vec::new();
    let mut late: Vec<GenEvent> = Vec::new();
    let end = cfg.start_ms + cfg.days as i64 * DAY_MS;
    for person in 0..cfg.persons {
        person_events.clear();
        let anonymous = rng.chance(cfg.anonymous_share);
        let device = rng.below(3) as u8;
        let mut day = rng.below(cfg.days.max(1) as u64) as f64;
        let mut deferred: Vec<GenEvent> = Vec::new();
        loop {
            let hour = 8.0 + rng.below(15) as f64 + rng.unit();
            let mut t = cfg.start_ms + (day * DAY_MS as f64) as i64 + (hour * 3_600_000.0) as i64;
            if t >= end {
                break;
            }
            let campaign = if rng.chance(0.6) {
                0
            } else {
                1 + rng.below(3) as u8
            };
            let category = rng.below(8) as u8;
            let ev = |kind: Kind, t: i64, product: u32, price: u32, quantity: u32| GenEvent {
                n: 0,
                person,
                anonymous,
                ts: t,
                received_at: t,
                kind,
                product,
                category,
                price_cents: price,
                quantity,
                campaign,
                device,
            };
            person_events.push(ev(
                Kind::Page(if rng.chance(0.5) { 0 } else { 1 }),
                t,
                0,
                0,
                0,
            ));
            let views = 1 + rng.below(5);
            let mut added: Option<(u32, u32)> = None;
            for _ in 0..views {
                t += 5_000 + rng.exp(45_000.0) as i64;
                let product = category as u32 * 1000 + rng.below(500) as u32;
                let price = 499 + rng.below(20_000) as u32;
                if rng.chance(0.5) {
                    person_events.push(ev(Kind::Page(2), t, product, price, 0));
                    t += 300 + rng.below(2000) as i64;
                }
                person_events.push(ev(Kind::ProductViewed, t, product, price, 0));
                if rng.chance(P_ADD) {
                    t += 2_000 + rng.exp(30_000.0) as i64;
                    let q = 1 + rng.below(3) as u32;
                    person_events.push(ev(Kind::ProductAdded, t, product, price, q));
                    added = Some((product, price));
                }
            }
            if let Some((product, price)) = added {
                if rng.chance(P_BUY) {
                    t += 10_000 + rng.exp(120_000.0) as i64;
                    person_events.push(ev(Kind::Page(3), t, product, price, 1));
                    t += 1_000 + rng.below(20_000) as i64;
                    person_events.push(ev(Kind::OrderCompleted, t, product, price, 1));
                } else if rng.chance(P_BUY_LATER) {
                    let later =
                        t + DAY_MS * (1 + rng.below(14) as i64) + rng.below(DAY_MS as u64) as i64;
                    deferred.push(ev(Kind::Page(3), later, product, price, 1));
                    deferred.push(ev(Kind::OrderCompleted, later + 30_000, product, price, 1));
                }
            }
            if !rng.chance(0.55) {
                break;
            }
            day = ((t - cfg.start_ms) / DAY_MS) as f64 + 0.5 + rng.exp(9.0);
        }
        person_events.extend(deferred.into_iter().filter(|e| e.ts < end));
        person_events.sort_by_key(|e| e.ts);
        late.clear();
        if cfg.round_ms > 0 {
            for e in person_events.iter_mut() {
                e.ts -= e.ts.rem_euclid(cfg.round_ms);
            }
        }
        for mut e in person_events.drain(..) {
            if rng.chance(cfg.late_share) {
                e.received_at = e.ts + 3_600_000 + rng.exp(6.0 * 3_600_000.0) as i64;
                late.push(e);
                continue;
            }
            e.received_at = e.ts + 50 + rng.below(2_000) as i64;
            e.n = n;
            n += 1;
            f(&e);
        }
        for e in late.iter_mut() {
            e.n = n;
            n += 1;
            f(e);
        }
    }
}

/// Writes `e` as one Segment JSON object (no newline) into `buf`.
pub fn write_json(cfg: &JourneyConfig, e: &GenEvent, buf: &mut Vec<u8>, path: &mut String) {
    let put = |buf: &mut Vec<u8>, s: &str| buf.extend_from_slice(s.as_bytes());
    put(buf, "{\"type\":\"");
    put(buf, e.kind_str());
    put(
        buf,
        if matches!(e.kind, Kind::Page(_)) {
            "\",\"name\":\""
        } else {
            "\",\"event\":\""
        },
    );
    put(buf, e.name());
    put(buf, "\",");
    if !e.anonymous {
        put(buf, "\"userId\":\"user-");
        push_u64(buf, e.person);
        put(buf, "\",");
    }
    let _ = write!(
        buf,
        "\"anonymousId\":\"anon-{:016x}\"",
        e.person.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ cfg.seed
    );
    put(buf, ",\"messageId\":\"m-");
    push_u64(buf, cfg.seed);
    buf.push(b'-');
    push_u64(buf, e.n);
    put(buf, "\",\"timestamp\":\"");
    iso(buf, e.ts);
    buf.push(b'"');
    if cfg.sent_at {
        put(buf, ",\"sentAt\":\"");
        iso(buf, e.received_at);
        buf.push(b'"');
    }
    put(buf, ",\"properties\":");
    e.properties(buf);
    e.path(path);
    put(buf, ",\"context\":{\"page\":{\"path\":\"");
    put(buf, path);
    put(buf, "\",\"title\":\"");
    put(buf, e.name());
    put(buf, "\",\"referrer\":\"");
    put(
        buf,
        if e.campaign == 0 {
            ""
        } else {
            "https://www.google.com/"
        },
    );
    put(buf, "\"},\"userAgent\":\"");
    put(buf, DEVICES[e.device as usize].3);
    put(buf, "\",\"locale\":\"en-GB\"");
    if let Some((s, m, name)) = CAMPAIGNS[e.campaign as usize] {
        put(buf, ",\"campaign\":{\"source\":\"");
        put(buf, s);
        put(buf, "\",\"medium\":\"");
        put(buf, m);
        put(buf, "\",\"name\":\"");
        put(buf, name);
        put(buf, "\"}");
    }
    put(buf, "}}");
}

/// Calls `f` with each event as one JSON line (ending in `\n`), in emission order.
pub fn journeys(cfg: &JourneyConfig, mut f: impl FnMut(&[u8])) {
    let mut buf = Vec::with_capacity(1024);
    let mut path = String::new();
    for_each_event(cfg, |e| {
        buf.clear();
        write_json(cfg, e, &mut buf, &mut path);
        buf.push(b'\n');
        f(&buf);
    });
}

mod batches;
pub use batches::{journey_batches, journey_days, journey_source};
