//! The profile as users see it (`GET /v1/persons/{id}`, `iob profile`): symbols resolved,
//! rolling windows and decayed affinities evaluated at a given time, JSON-serializable.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::identity::PersonId;
use crate::profile::{Profile, ProfileConfig};
use crate::symbols::Symbols;

#[derive(Debug, Clone, Serialize)]
pub struct ProfileView {
    pub person: PersonId,
    pub first_seen: i64,
    pub last_seen: i64,
    pub events: u64,
    /// The time the windows, recency and affinities below are evaluated at.
    pub as_of: i64,
    pub days_since_last_seen: f64,
    pub traits: BTreeMap<String, Box<RawValue>>,
    /// Per event name: all-time and per configured window (`"7d"`: the 7 UTC calendar days
    /// ending with the day of `as_of`, that day included).
    pub counts: BTreeMap<String, BTreeMap<String, u64>>,
    pub rfm: Rfm,
    pub sessions: BTreeMap<String, SessionStats>,
    pub active_hours_utc: [u32; 24],
    /// Monday first.
    pub active_weekdays: [u32; 7],
    pub channels: BTreeMap<String, u64>,
    pub devices: BTreeMap<String, u64>,
    /// Strongest first.
    pub top_items: Vec<(String, f64)>,
    pub top_categories: Vec<(String, f64)>,
    pub metrics: BTreeMap<String, MetricView>,
    /// Mean sentiment per property.
    pub sentiment: BTreeMap<String, f64>,
}

/// Recency, frequency, monetary value of purchases.
#[derive(Debug, Clone, Serialize)]
pub struct Rfm {
    /// Days since the last purchase; `None` without one.
    pub recency_days: Option<f64>,
    /// Distinct orders (lines of one order count once; returns do not count).
    pub frequency: u64,
    /// Sum of amounts, returns and cancellations subtracted.
    pub monetary: f64,
    pub last_order: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionStats {
    pub sessions: usize,
    pub events: u64,
    pub total_minutes: f64,
    pub avg_minutes: f64,
    pub last_start: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricView {
    pub n: u64,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
    pub last: f64,
    pub last_at: i64,
    /// Per window (`"7d"`): `{n, mean, std, min, max}`.
    pub windows: BTreeMap<String, BTreeMap<&'static str, f64>>,
}

const TOP: usize = 10;

impl ProfileView {
    pub fn new(
        person: PersonId,
        p: &Profile,
        sym: &Symbols,
        cfg: &ProfileConfig,
        now: i64,
    ) -> ProfileView {
        let name = |s: u32| sym.name(s).to_string();
        let hl = cfg.half_life_ms();
        let top = |list: &[(u32, crate::features::Decayed)]| {
            let mut v: Vec<(String, f64)> = list
                .iter()
                .map(|(k, d)| (name(*k), d.at(now, hl)))
                .collect();
            v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            v.truncate(TOP);
            v
        };
        ProfileView {
            person,
            first_seen: p.first_seen,
            last_seen: p.last_seen,
            events: p.events,
            as_of: now,
            traits: p
                .traits
                .iter()
                .filter_map(|(k, _, v)| Some((name(*k), RawValue::from_string(v.clone()).ok()?)))
                .collect(),
            counts: p
                .names
                .iter()
                .map(|(n, total, days)| {
                    let mut m = BTreeMap::from([("all".to_string(), *total)]);
                    for w in &cfg.windows_days {
                        m.insert(format!("{w}d"), days.in_window(now, *w as i32));
                    }
                    (name(*n), m)
                })
                .collect(),
            days_since_last_seen: (now - p.last_seen).max(0) as f64
                / crate::features::DAY_MS as f64,
            rfm: Rfm {
                recency_days: p
                    .last_order
                    .map(|t| (now - t).max(0) as f64 / crate::features::DAY_MS as f64),
                frequency: p.orders + p.order_ids.len() as u64,
                monetary: (p.revenue * 100.0).round() / 100.0,
                last_order: p.last_order,
            },
            sessions: p
                .sessions
                .iter()
                .map(|(ch, s)| {
                    let total = s.total_ms() as f64 / 60_000.0;
                    (
                        name(*ch),
                        SessionStats {
                            sessions: s.count(),
                            events: s.events(),
                            total_minutes: total,
                            avg_minutes: total / s.count().max(1) as f64,
                            last_start: s.last().map(|l| l.0),
                        },
                    )
                })
                .collect(),
            active_hours_utc: p.hours,
            active_weekdays: p.weekdays,
            channels: p.channels.iter().map(|(k, n)| (name(*k), *n)).collect(),
            devices: p.devices.iter().map(|(k, n)| (name(*k), *n)).collect(),
            top_items: top(&p.items),
            top_categories: top(&p.categories),
            metrics: p
                .metrics
                .iter()
                .map(|(m, s)| {
                    let windows = cfg
                        .windows_days
                        .iter()
                        .filter_map(|w| {
                            let (n, mean, std, min, max) = s.window(now, *w as i32)?;
                            Some((
                                format!("{w}d"),
                                BTreeMap::from([
                                    ("n", n as f64),
                                    ("mean", mean),
                                    ("std", std),
                                    ("min", min),
                                    ("max", max),
                                ]),
                            ))
                        })
                        .collect();
                    (
                        name(*m),
                        MetricView {
                            n: s.n,
                            mean: s.mean,
                            std: s.std(),
                            min: s.min,
                            max: s.max,
                            last: s.last.1,
                            last_at: s.last.0,
                            windows,
                        },
                    )
                })
                .collect(),
            sentiment: p
                .sentiment
                .iter()
                .map(|(k, (n, sum))| (name(*k), sum / (*n).max(1) as f64))
                .collect(),
        }
    }
}
