//! A person's profile: traits (latest by event time) and computed behavioral features, updated
//! per event and merged when two persons become one.
//!
//! Every feature is order-independent (see `features.rs`), so a late or out-of-order event gives
//! the profile it would have had in order. Which features exist is configuration
//! ([`ProfileConfig`]), not code. This module must never read a clock (reads take `now`) and
//! never hold an identifier (traits that are identifiers are hashed into the graph, and the
//! ones kept here are what the config keeps).

use serde::{Deserialize, Serialize};

use crate::features::{DAY_MS, DayCounts, Decayed, MetricStats, Sessions, day_of};
use crate::symbols::Sym;

/// `[profiles]` in the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileConfig {
    /// Keep profiles current as events arrive (a follower thread). When false, profiles are
    /// brought up to date at the next read instead (benchmarks of raw ingestion use this).
    pub live: bool,
    /// Computed features to keep: any of `counts`, `rfm`, `sessions`, `activity`, `mix`,
    /// `affinity`, `metrics`, `sentiment`, `traits`.
    pub features: Vec<Feature>,
    /// Rolling windows, in days, for counts and metrics.
    pub windows_days: Vec<u32>,
    /// Inactivity that ends a session.
    pub session_gap_minutes: u32,
    /// Half-life of item and category affinities.
    pub affinity_half_life_days: f64,
    /// Properties naming the order an event belongs to (lines of one order are one order).
    pub order_properties: Vec<String>,
    /// Properties naming the item of an event (the first present wins).
    pub item_properties: Vec<String>,
    /// Properties naming its category.
    pub category_properties: Vec<String>,
    /// Affinity weight per event name (others weigh 1).
    pub event_weights: std::collections::BTreeMap<String, f64>,
    /// At most this many items (and categories) per profile: the weakest are dropped.
    pub max_affinities: usize,
    /// Save the unify state this often (seconds; 0: only at shutdown) so a restart replays
    /// only the log written since.
    pub snapshot_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Feature {
    Counts,
    Rfm,
    Sessions,
    Activity,
    Mix,
    Affinity,
    Metrics,
    Sentiment,
    Traits,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        use Feature::*;
        ProfileConfig {
            live: true,
            features: vec![
                Counts, Rfm, Sessions, Activity, Mix, Affinity, Metrics, Sentiment, Traits,
            ],
            windows_days: vec![1, 7, 30],
            session_gap_minutes: 30,
            affinity_half_life_days: 14.0,
            item_properties: [
                "product_id",
                "productId",
                "item_id",
                "itemId",
                "sku",
                "movie_id",
            ]
            .map(String::from)
            .to_vec(),
            category_properties: ["category", "genre"].map(String::from).to_vec(),
            order_properties: [
                "order_id",
                "orderId",
                "invoice",
                "invoice_id",
                "checkout_id",
            ]
            .map(String::from)
            .to_vec(),
            event_weights: [
                ("Product Viewed", 1.0),
                ("Product Added", 3.0),
                ("Order Completed", 5.0),
                ("Product Reviewed", 2.0),
                ("Rated", 2.0),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            max_affinities: 100,
            snapshot_secs: 60,
        }
    }
}

impl ProfileConfig {
    pub fn has(&self, f: Feature) -> bool {
        self.features.contains(&f)
    }

    pub fn keep_days(&self) -> i32 {
        self.windows_days.iter().copied().max().unwrap_or(0) as i32 + 1
    }

    pub fn gap_ms(&self) -> i64 {
        self.session_gap_minutes as i64 * 60_000
    }

    pub fn half_life_ms(&self) -> f64 {
        self.affinity_half_life_days * DAY_MS as f64
    }
}

/// What one event contributes to a profile (symbols already interned).
#[derive(Debug, Clone, Default)]
pub struct Contribution {
    pub at: i64,
    /// Event name (`track`), `page`/`screen` name, or the type for other kinds.
    pub name: Option<Sym>,
    pub channel: Option<Sym>,
    pub device: Option<Sym>,
    /// `(trait, JSON value)`.
    pub traits: Vec<(Sym, String)>,
    pub monetary: Option<f64>,
    /// Fingerprint of the order this event belongs to, if it names one.
    pub order: Option<u64>,
    pub item: Option<Sym>,
    pub category: Option<Sym>,
    pub weight: f64,
    pub reading: Option<(Sym, f64)>,
    pub sentiment: Vec<(Sym, f64)>,
    /// Whether the event is something the person did (it feeds sessions and active hours);
    /// a device reading is not.
    pub activity: bool,
}

/// A person's profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub first_seen: i64,
    pub last_seen: i64,
    pub events: u64,
    /// `(trait, event time, JSON)`, sorted by trait.
    pub traits: Vec<(Sym, i64, String)>,
    /// `(name, all-time count, per-day counts)`, sorted by name.
    pub names: Vec<(Sym, u64, DayCounts)>,
    /// Purchases without an order id, each one order.
    pub orders: u64,
    /// Fingerprints of distinct orders (with a positive amount), sorted.
    pub order_ids: Vec<u64>,
    /// Sum of amounts, returns and cancellations included (they are negative).
    pub revenue: f64,
    pub last_order: Option<i64>,
    pub sessions: Vec<(Sym, Sessions)>,
    pub hours: [u32; 24],
    pub weekdays: [u32; 7],
    pub channels: Vec<(Sym, u64)>,
    pub devices: Vec<(Sym, u64)>,
    pub items: Vec<(Sym, Decayed)>,
    pub categories: Vec<(Sym, Decayed)>,
    pub metrics: Vec<(Sym, MetricStats)>,
    /// `(property, (n, sum of scores))`.
    pub sentiment: Vec<(Sym, (u64, f64))>,
}

/// UTC hour of day and weekday (0 = Monday) of an event time.
fn hour_and_weekday(at: i64) -> (usize, usize) {
    let secs = at.div_euclid(1000);
    // 1970-01-01 was a Thursday.
    (
        (secs.rem_euclid(86_400) / 3600) as usize,
        ((day_of(at) as i64 + 3).rem_euclid(7)) as usize,
    )
}

/// Keeps the `max` strongest affinities, judged at `at`.
fn prune(list: &mut Vec<(Sym, Decayed)>, max: usize, at: i64, half_life_ms: f64) {
    if list.len() <= max {
        return;
    }
    let mut scored: Vec<(f64, Sym)> = list
        .iter()
        .map(|(k, d)| (d.at(at, half_life_ms), *k))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let keep: std::collections::HashSet<Sym> = scored.iter().take(max).map(|s| s.1).collect();
    list.retain(|(k, _)| keep.contains(k));
}

/// The entry for `key` in a small vector sorted by key, inserted with `new` when missing.
fn slot<T>(v: &mut Vec<(Sym, T)>, key: Sym, new: impl FnOnce() -> T) -> &mut T {
    let i = match v.binary_search_by_key(&key, |e| e.0) {
        Ok(i) => i,
        Err(i) => {
            v.insert(i, (key, new()));
            i
        }
    };
    &mut v[i].1
}

impl Profile {
    /// Adds one event, in place. Equal to merging the event's one-event profile
    /// ([`Profile::single`]; a property test holds them together), without building it.
    pub fn apply(&mut self, c: &Contribution, cfg: &ProfileConfig) {
        if self.events == 0 {
            self.first_seen = c.at;
            self.last_seen = c.at;
        } else {
            self.first_seen = self.first_seen.min(c.at);
            self.last_seen = self.last_seen.max(c.at);
        }
        self.events += 1;
        if cfg.has(Feature::Traits) {
            for (k, v) in &c.traits {
                self.merge_trait(*k, c.at, v);
            }
        }
        if cfg.has(Feature::Counts)
            && let Some(n) = c.name
        {
            let i = match self.names.binary_search_by_key(&n, |e| e.0) {
                Ok(i) => i,
                Err(i) => {
                    self.names.insert(i, (n, 0, DayCounts::default()));
                    i
                }
            };
            self.names[i].1 += 1;
            self.names[i].2.add(day_of(c.at), 1, cfg.keep_days());
        }
        if cfg.has(Feature::Rfm)
            && let Some(m) = c.monetary
        {
            self.revenue += m;
            if m > 0.0 {
                match c.order {
                    Some(o) => {
                        if let Err(i) = self.order_ids.binary_search(&o) {
                            self.order_ids.insert(i, o);
                        }
                    }
                    None => self.orders += 1,
                }
                self.last_order = self.last_order.max(Some(c.at));
            }
        }
        if cfg.has(Feature::Sessions)
            && c.activity
            && let Some(ch) = c.channel
        {
            slot(&mut self.sessions, ch, Sessions::default).add(c.at, cfg.gap_ms());
        }
        if cfg.has(Feature::Activity) && c.activity {
            let (h, d) = hour_and_weekday(c.at);
            self.hours[h] += 1;
            self.weekdays[d] += 1;
        }
        if cfg.has(Feature::Mix) {
            if let Some(ch) = c.channel {
                *slot(&mut self.channels, ch, || 0) += 1;
            }
            if let Some(d) = c.device {
                *slot(&mut self.devices, d, || 0) += 1;
            }
        }
        if cfg.has(Feature::Affinity) && c.weight > 0.0 {
            let hl = cfg.half_life_ms();
            let last = self.last_seen;
            for (list, key) in [
                (&mut self.items, c.item),
                (&mut self.categories, c.category),
            ] {
                if let Some(k) = key {
                    let d = Decayed::new(c.weight, c.at);
                    match list.binary_search_by_key(&k, |e| e.0) {
                        Ok(i) => list[i].1.add(d, hl),
                        Err(i) => list.insert(i, (k, d)),
                    }
                    prune(list, cfg.max_affinities, last, hl);
                }
            }
        }
        if cfg.has(Feature::Metrics)
            && let Some((m, v)) = c.reading
        {
            match self.metrics.binary_search_by_key(&m, |e| e.0) {
                Ok(i) => self.metrics[i].1.add(c.at, v, cfg.keep_days()),
                Err(i) => self.metrics.insert(i, (m, MetricStats::new(c.at, v))),
            }
        }
        if cfg.has(Feature::Sentiment) {
            for &(k, s) in &c.sentiment {
                let e = slot(&mut self.sentiment, k, || (0, 0.0));
                e.0 += 1;
                e.1 += s;
            }
        }
    }

    /// The profile of a single event.
    #[cfg(test)]
    pub(crate) fn single(c: &Contribution, cfg: &ProfileConfig) -> Profile {
        let mut p = Profile {
            first_seen: c.at,
            last_seen: c.at,
            events: 1,
            ..Profile::default()
        };
        if cfg.has(Feature::Traits) {
            for (k, v) in &c.traits {
                p.merge_trait(*k, c.at, v);
            }
        }
        if cfg.has(Feature::Counts)
            && let Some(n) = c.name
        {
            let mut d = DayCounts::default();
            d.add(day_of(c.at), 1, cfg.keep_days());
            p.names.push((n, 1, d));
        }
        if cfg.has(Feature::Rfm)
            && let Some(m) = c.monetary
        {
            p.revenue = m;
            if m > 0.0 {
                match c.order {
                    Some(o) => p.order_ids.push(o),
                    None => p.orders = 1,
                }
                p.last_order = Some(c.at);
            }
        }
        let channel = c.channel;
        if cfg.has(Feature::Sessions)
            && c.activity
            && let Some(ch) = channel
        {
            let mut s = Sessions::default();
            s.add(c.at, cfg.gap_ms());
            p.sessions.push((ch, s));
        }
        if cfg.has(Feature::Activity) && c.activity {
            let (h, d) = hour_and_weekday(c.at);
            p.hours[h] = 1;
            p.weekdays[d] = 1;
        }
        if cfg.has(Feature::Mix) {
            if let Some(ch) = channel {
                p.channels.push((ch, 1));
            }
            if let Some(d) = c.device {
                p.devices.push((d, 1));
            }
        }
        if cfg.has(Feature::Affinity) && c.weight > 0.0 {
            if let Some(i) = c.item {
                p.items.push((i, Decayed::new(c.weight, c.at)));
            }
            if let Some(k) = c.category {
                p.categories.push((k, Decayed::new(c.weight, c.at)));
            }
        }
        if cfg.has(Feature::Metrics)
            && let Some((m, v)) = c.reading
        {
            p.metrics.push((m, MetricStats::new(c.at, v)));
        }
        if cfg.has(Feature::Sentiment) {
            for &(k, s) in &c.sentiment {
                *slot(&mut p.sentiment, k, || (0, 0.0)) = (1, s);
            }
        }
        p
    }

    fn merge_trait(&mut self, key: Sym, at: i64, json: &str) {
        match self.traits.binary_search_by_key(&key, |t| t.0) {
            // Latest by event time; equal times: the larger value, so order never matters.
            Ok(i) => {
                let t = &mut self.traits[i];
                if (at, json) > (t.1, t.2.as_str()) {
                    t.1 = at;
                    t.2 = json.to_string();
                }
            }
            Err(i) => self.traits.insert(i, (key, at, json.to_string())),
        }
    }

    /// Folds `o` into `self` (an event, or a person merged into this one).
    pub fn merge(&mut self, o: &Profile, cfg: &ProfileConfig) {
        if o.events == 0 {
            return;
        }
        if self.events == 0 {
            *self = o.clone();
            return;
        }
        self.first_seen = self.first_seen.min(o.first_seen);
        self.last_seen = self.last_seen.max(o.last_seen);
        self.events += o.events;
        for (k, at, v) in &o.traits {
            self.merge_trait(*k, *at, v);
        }
        let keep = cfg.keep_days();
        for (n, total, days) in &o.names {
            match self.names.binary_search_by_key(n, |e| e.0) {
                Ok(i) => {
                    self.names[i].1 += total;
                    self.names[i].2.merge(days, keep);
                }
                Err(i) => self.names.insert(i, (*n, *total, days.clone())),
            }
        }
        self.orders += o.orders;
        for id in &o.order_ids {
            if let Err(i) = self.order_ids.binary_search(id) {
                self.order_ids.insert(i, *id);
            }
        }
        self.revenue += o.revenue;
        self.last_order = self.last_order.max(o.last_order);
        for (ch, s) in &o.sessions {
            slot(&mut self.sessions, *ch, Sessions::default).merge(s, cfg.gap_ms());
        }
        for h in 0..24 {
            self.hours[h] += o.hours[h];
        }
        for d in 0..7 {
            self.weekdays[d] += o.weekdays[d];
        }
        for (k, n) in &o.channels {
            *slot(&mut self.channels, *k, || 0) += n;
        }
        for (k, n) in &o.devices {
            *slot(&mut self.devices, *k, || 0) += n;
        }
        let hl = cfg.half_life_ms();
        for (list, other) in [
            (&mut self.items, &o.items),
            (&mut self.categories, &o.categories),
        ] {
            for (k, d) in other {
                match list.binary_search_by_key(k, |e| e.0) {
                    Ok(i) => list[i].1.add(*d, hl),
                    Err(i) => list.insert(i, (*k, *d)),
                }
            }
            prune(list, cfg.max_affinities, self.last_seen, hl);
        }
        for (m, s) in &o.metrics {
            match self.metrics.binary_search_by_key(m, |e| e.0) {
                Ok(i) => self.metrics[i].1.merge(s, keep),
                Err(i) => self.metrics.insert(i, (*m, s.clone())),
            }
        }
        for (k, (n, sum)) in &o.sentiment {
            let e = slot(&mut self.sentiment, *k, || (0, 0.0));
            e.0 += n;
            e.1 += sum;
        }
    }

    /// Whether every symbol the profile names is below `n` (a snapshot check).
    pub fn symbols_below(&self, n: Sym) -> bool {
        self.traits.iter().all(|t| t.0 < n)
            && self.names.iter().all(|t| t.0 < n)
            && self.sessions.iter().all(|t| t.0 < n)
            && self.channels.iter().all(|t| t.0 < n)
            && self.devices.iter().all(|t| t.0 < n)
            && self.items.iter().all(|t| t.0 < n)
            && self.categories.iter().all(|t| t.0 < n)
            && self.metrics.iter().all(|t| t.0 < n)
            && self.sentiment.iter().all(|t| t.0 < n)
    }

    /// Approximate bytes held by this profile (struct and heap).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Profile>()
            + self
                .traits
                .iter()
                .map(|t| 40 + t.2.capacity())
                .sum::<usize>()
            + self
                .names
                .iter()
                .map(|n| 40 + n.2.heap_bytes())
                .sum::<usize>()
            + self
                .sessions
                .iter()
                .map(|s| 32 + s.1.heap_bytes())
                .sum::<usize>()
            + (self.channels.capacity() + self.devices.capacity()) * 16
            + (self.items.capacity() + self.categories.capacity()) * 24
            + self
                .metrics
                .iter()
                .map(|m| 100 + m.1.heap_bytes())
                .sum::<usize>()
            + self.sentiment.capacity() * 24
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn contribution() -> impl Strategy<Value = Contribution> {
        (
            (
                0i64..40 * DAY_MS,
                proptest::option::of(0u32..4),
                proptest::option::of(4u32..6),
            ),
            (
                proptest::option::of(6u32..8),
                proptest::option::of(8u32..20),
                proptest::option::of(20u32..23),
            ),
            (
                proptest::option::of(0.0f64..500.0),
                proptest::option::of((23u32..25, -5.0f64..200.0)),
            ),
            (
                proptest::collection::vec((25u32..28, -1.0f64..1.0), 0..2),
                proptest::collection::vec((28u32..30, "[a-c]{1,3}"), 0..2),
            ),
            0.5f64..5.0,
        )
            .prop_map(
                |(
                    (at, name, channel),
                    (device, item, category),
                    (monetary, reading),
                    (sentiment, traits),
                    weight,
                )| Contribution {
                    at,
                    name,
                    channel,
                    device,
                    traits: traits
                        .into_iter()
                        .map(|(k, v)| (k, format!("\"{v}\"")))
                        .collect(),
                    monetary,
                    item,
                    category,
                    weight,
                    reading,
                    sentiment,
                    order: monetary.map(|m| (m as u64) % 5),
                    activity: at % 3 != 0,
                },
            )
    }

    fn close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
        use serde_json::Value::*;
        match (a, b) {
            (Number(x), Number(y)) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
            }
            (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| close(a, b)),
            (Object(x), Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
            }
            _ => a == b,
        }
    }

    proptest! {
        /// In-place `apply` is exactly merging one-event profiles (the definition).
        #[test]
        fn apply_equals_merging_single_event_profiles(cs in proptest::collection::vec(contribution(), 1..40)) {
            let cfg = ProfileConfig { max_affinities: 6, ..ProfileConfig::default() };
            let (mut a, mut b) = (Profile::default(), Profile::default());
            for c in &cs {
                a.apply(c, &cfg);
                b.merge(&Profile::single(c, &cfg), &cfg);
            }
            let (ja, jb) = (serde_json::to_value(&a).unwrap(), serde_json::to_value(&b).unwrap());
            prop_assert!(close(&ja, &jb), "{ja}\n{jb}");
        }
    }
}
