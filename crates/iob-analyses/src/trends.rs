//! Trends: events and unique persons per interval, for one or more events (series).
//!
//! # Semantics
//! * A row belongs to series s when it matches the series' [`EventMatch`] (name and filters)
//!   and the request filters; a row may belong to several series.
//! * Per (series, breakdown value, interval): `events` = matching rows, `persons` = distinct
//!   persons among them. Intervals are calendar [`Period`]s (UTC; ISO weeks from Monday).
//! * Only intervals with at least one event are listed (no zero filling), in time order.
//! * Breakdown: the property's value on each row (a person may count in several values).
//! * Disclosure: a point backed by fewer than k persons is suppressed. Under ε both counts are
//!   noised with scale Δ/ε where Δ = the number of released points (a person adds at most 1 to
//!   each `persons` count). Event counts have no bound per person, so ε protects the `persons`
//!   counts; event counts get the same noise but no formal guarantee (documented in the result
//!   by the reported Δ).
//!
//! One pass, O(series matched) per row, no hashing per row unless a breakdown has more than
//! [`DENSE_GROUPS`] values.

use foldhash::HashSet;
use serde::{Deserialize, Serialize};

use crate::columns::{Chunk, OrderCheck};
use crate::common::{
    EventMatch, Groups, Matcher, PREFETCH_AHEAD, TimeRange, grow, max_person, prefetch,
};
use crate::disclosure::{Disclosure, DisclosureReport};
use crate::filter::Filters;
use crate::period::{Bucketer, Period};
use crate::property::Property;
use crate::{AnalysisError, DayChunk, EventSource};

/// A trends request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendsRequest {
    /// One series per entry (1..=32).
    pub events: Vec<EventMatch>,
    #[serde(default)]
    pub interval: Period,
    #[serde(default)]
    pub filters: Vec<crate::Filter>,
    #[serde(default)]
    pub breakdown: Option<String>,
    #[serde(default)]
    pub range: Option<TimeRange>,
}

/// Counts of one interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub interval: String,
    pub events: Option<u64>,
    pub persons: Option<u64>,
    pub suppressed: bool,
}

/// One series (× breakdown value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub event: Option<String>,
    pub value: Option<String>,
    pub points: Vec<Point>,
}

/// A trends result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendsResult {
    pub interval: Period,
    pub breakdown: Option<String>,
    /// By request order of the events, then breakdown value.
    pub series: Vec<Series>,
    pub disclosure: DisclosureReport,
}

/// Breakdown groups whose person dedupe uses dense per-person arrays (4 bytes × persons ×
/// series each); further groups (high-cardinality breakdowns) use a hash set per interval.
const DENSE_GROUPS: usize = 8;

struct State {
    series: Vec<Matcher>,
    filters: Filters,
    breakdown: Option<Property>,
    bucketer: Bucketer,
    order: OrderCheck,
    groups: Groups,
    base: Option<i64>,
    /// [series × group][interval − base] = (events, persons).
    cells: Vec<Vec<(u64, u64)>>,
    /// Per breakdown group below [`DENSE_GROUPS`] (group 0 without breakdown): the last
    /// interval each (person, series) was counted in, as offset from `base` (+1; 0 = never).
    last: Vec<Vec<u32>>,
    /// Groups from [`DENSE_GROUPS`] on: (person, series, group) counted in `seen_interval`.
    seen: HashSet<(u32, u32, u32)>,
    seen_interval: i64,
}

/// Runs a trends analysis over `source`.
pub fn trends(
    source: &dyn EventSource,
    req: &TrendsRequest,
    disclosure: &Disclosure,
) -> Result<TrendsResult, AnalysisError> {
    disclosure.validate("disclosure")?;
    if req.events.is_empty() || req.events.len() > 32 {
        return Err(AnalysisError::request("events", "give 1 to 32 events"));
    }
    TimeRange::validate(&req.range, "range")?;
    let series = req
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| e.compile(&format!("events[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut st = State {
        series,
        filters: Filters::compile("filters", &req.filters)?,
        breakdown: req
            .breakdown
            .as_deref()
            .map(|b| Property::parse("breakdown", b))
            .transpose()?,
        bucketer: Bucketer::new(req.interval),
        order: OrderCheck::default(),
        groups: Groups::new(),
        base: None,
        cells: Vec::new(),
        last: vec![Vec::new()],
        seen: HashSet::default(),
        seen_interval: i64::MIN,
    };
    let mut cols: Vec<String> = st.filters.columns().map(str::to_string).collect();
    for s in &st.series {
        cols.extend(s.filters.columns().map(str::to_string));
    }
    cols.extend(st.breakdown.as_ref().map(|b| b.column().to_string()));
    let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
    source.scan(&cols, TimeRange::pair(&req.range), &mut |c| st.chunk(&c))?;
    Ok(st.finish(req, disclosure))
}

impl State {
    fn chunk(&mut self, day: &DayChunk) -> Result<(), AnalysisError> {
        let chunk = Chunk::new(&day.batch)?;
        self.order.check(day.day, chunk.ts)?;
        let global = self.filters.bind(&chunk)?;
        let filters = self
            .series
            .iter()
            .map(|s| s.filters.bind(&chunk))
            .collect::<Result<Vec<_>, _>>()?;
        let bd = self
            .breakdown
            .as_ref()
            .map(|b| b.bind(&chunk))
            .transpose()?;
        let mut codes = Vec::new();
        let series = &self.series;
        chunk.event.codes(&mut codes, &mut |s| {
            series
                .iter()
                .enumerate()
                .fold(0u32, |m, (k, x)| m | (x.name_matches(s) as u32) << k)
        });
        let ns = self.series.len();
        let mut gcodes = Vec::new();
        let batch_groups = self.groups.codes(bd.as_ref(), codes.len(), &mut gcodes);
        let rows: Vec<u32> = (0..codes.len() as u32)
            .filter(|&i| codes[i as usize] != 0)
            .collect();
        if let Some(max) = max_person(chunk.person)? {
            grow(&mut self.last[0], (max + 1) * ns - 1, 0);
        }
        for (j, &row) in rows.iter().enumerate() {
            if let Some(&ahead) = rows.get(j + PREFETCH_AHEAD) {
                prefetch(&self.last[0], chunk.person[ahead as usize] as usize * ns);
            }
            let (i, code) = (row as usize, codes[row as usize]);
            if !self.filters.is_empty() && !global.matches(i) {
                continue;
            }
            let p = chunk.person[i] as usize;
            let interval = self.bucketer.period_of(chunk.ts[i]);
            let base = *self.base.get_or_insert(interval);
            let slot = (interval - base) as usize;
            let g = if batch_groups {
                gcodes[i]
            } else {
                self.groups.of(bd.as_ref(), i)
            } as usize;
            if bd.is_some() && interval != self.seen_interval {
                self.seen.clear();
                self.seen_interval = interval;
            }
            let mut m = code;
            while m != 0 {
                let s = m.trailing_zeros() as usize;
                m &= m - 1;
                if !self.series[s].filters.is_empty() && !filters[s].matches(i) {
                    continue;
                }
                let new_person = if g >= DENSE_GROUPS {
                    self.seen.insert((p as u32, s as u32, g as u32))
                } else {
                    if g >= self.last.len() {
                        self.last.resize_with(g + 1, Vec::new);
                    }
                    let last = &mut self.last[g];
                    let idx = p * ns + s;
                    if idx >= last.len() {
                        grow(last, idx, 0);
                    }
                    let mark = slot as u32 + 1;
                    let fresh = last[idx] != mark;
                    last[idx] = mark;
                    fresh
                };
                let key = g * ns + s;
                if key >= self.cells.len() {
                    self.cells.resize_with(key + 1, Vec::new);
                }
                let row = &mut self.cells[key];
                if slot >= row.len() {
                    row.resize(slot + 1, (0, 0));
                }
                row[slot].0 += 1;
                row[slot].1 += new_person as u64;
            }
        }
        Ok(())
    }

    fn finish(self, req: &TrendsRequest, disclosure: &Disclosure) -> TrendsResult {
        let ns = self.series.len();
        let base = self.base.unwrap_or(0);
        let points: usize = self
            .cells
            .iter()
            .map(|r| r.iter().filter(|c| c.0 > 0).count())
            .sum();
        let mut rel = disclosure.releaser(points.max(1) as f64);
        let mut order: Vec<usize> = (0..self.groups.len()).collect();
        order.sort_by_key(|&g| self.groups.value(g as u32));
        let mut series = Vec::new();
        for s in 0..ns {
            for &g in &order {
                let Some(row) = self.cells.get(g * ns + s) else {
                    continue;
                };
                if row.iter().all(|c| c.0 == 0) {
                    continue;
                }
                let points = row
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.0 > 0)
                    .map(|(slot, &(events, persons))| {
                        let visible = rel.visible(persons);
                        if !visible {
                            rel.suppressed();
                        }
                        Point {
                            interval: req.interval.label(base + slot as i64),
                            events: visible.then(|| rel.count(events)),
                            persons: visible.then(|| rel.count(persons)),
                            suppressed: !visible,
                        }
                    })
                    .collect();
                series.push(Series {
                    event: req.events[s].event.clone(),
                    value: self.groups.value(g as u32),
                    points,
                });
            }
        }
        TrendsResult {
            interval: req.interval,
            breakdown: req.breakdown.clone(),
            series,
            disclosure: rel.finish(),
        }
    }
}
