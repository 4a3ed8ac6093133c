//! Retention: of the persons who started in a period (the cohort), how many came back in each
//! of the following periods.
//!
//! # Semantics
//! * Periods are calendar periods ([`Period`]: UTC days, ISO weeks from Monday, months).
//! * `first_time` (default): a person's cohort is the period of their **first** `start_event`
//!   row in the scanned range (the *cohort event*). `recurring`: the person joins a cohort for
//!   **every** period in which they did a `start_event`; the cohort event is their first start
//!   event of that period.
//! * A cohort member *returns at offset i* (0 ≤ i < `periods`) when they did a `return_event`
//!   row in period cohort + i, **at or after the cohort event** in stream order (this matters
//!   only for offset 0; the cohort event itself counts when it also matches `return_event`, so
//!   with "any event" as return, offset 0 equals the cohort size). Each member counts at most
//!   once per offset.
//! * Offsets past the end of the range (or of the data) read 0.
//! * Breakdown: the property's value on the cohort event; cohorts are (period, value) pairs.
//! * Disclosure: a cohort below k persons is suppressed whole, a returning cell of 1..k−1
//!   persons is suppressed. Sensitivity Δ = 1 + periods for `first_time` (one person is in one
//!   cohort: its size and at most every returning cell), and (number of distinct cohort periods
//!   released) × (1 + periods) for `recurring`.
//!
//! One pass, O(1) work per row (plus a bit walk over at most `periods` bits for recurring).
//! Must never: count a person twice in a cell, or count a return before the cohort event.

use foldhash::HashMap;
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

/// First occurrence only, or every period with a start event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RetentionMode {
    #[default]
    FirstTime,
    Recurring,
}

/// A retention request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRequest {
    /// The cohort-defining event (default: any event).
    #[serde(default)]
    pub start_event: EventMatch,
    /// The returning event (default: any event).
    #[serde(default)]
    pub return_event: EventMatch,
    #[serde(default)]
    pub period: Period,
    /// Number of offsets, 1..=64 (offset 0 is the cohort's own period).
    pub periods: u32,
    #[serde(default)]
    pub mode: RetentionMode,
    /// Filters on every row.
    #[serde(default)]
    pub filters: Vec<crate::Filter>,
    #[serde(default)]
    pub breakdown: Option<String>,
    #[serde(default)]
    pub range: Option<TimeRange>,
}

/// One cohort row of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cohort {
    /// Label of the cohort's period.
    pub cohort: String,
    /// Breakdown value (`null` without breakdown or when not set).
    pub value: Option<String>,
    pub size: Option<u64>,
    pub suppressed: bool,
    /// Returning persons per offset 0..periods (`null`: suppressed).
    pub returning: Vec<Option<u64>>,
}

/// A retention table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionResult {
    pub period: Period,
    pub periods: u32,
    pub mode: RetentionMode,
    pub breakdown: Option<String>,
    /// By cohort period, then value.
    pub cohorts: Vec<Cohort>,
    pub disclosure: DisclosureReport,
}

const NONE: i64 = i64::MIN;

#[derive(Clone, Copy)]
struct Person {
    /// first_time: cohort period; recurring: last period seen.
    period: i64,
    /// first_time: offsets returned; recurring: cohorts started (bit j = period − j).
    bits: u64,
    /// recurring: cohorts already counted as returning in the current period.
    counted: u64,
    /// first_time: group of the cohort event.
    group: u32,
}

const EMPTY: Person = Person {
    period: NONE,
    bits: 0,
    counted: 0,
    group: 0,
};

#[derive(Default, Clone)]
struct Cell {
    size: u64,
    returning: Vec<u64>,
}

struct State {
    n: usize,
    start: Matcher,
    ret: Matcher,
    filters: Filters,
    breakdown: Option<Property>,
    mode: RetentionMode,
    bucketer: Bucketer,
    order: OrderCheck,
    groups: Groups,
    /// Per person, one record (one cache miss per row).
    people: Vec<Person>,
    /// recurring with breakdown: group of each cohort event, per person × n (ring by period).
    ring: Vec<u32>,
    /// recurring: (group, cohort) → counts.
    table: HashMap<(u32, i64), Cell>,
}

/// Runs a retention analysis over `source`.
pub fn retention(
    source: &dyn EventSource,
    req: &RetentionRequest,
    disclosure: &Disclosure,
) -> Result<RetentionResult, AnalysisError> {
    disclosure.validate("disclosure")?;
    if req.periods == 0 || req.periods > 64 {
        return Err(AnalysisError::request(
            "periods",
            format!("must be 1..=64, got {}", req.periods),
        ));
    }
    TimeRange::validate(&req.range, "range")?;
    let mut st = State {
        n: req.periods as usize,
        start: req.start_event.compile("start_event")?,
        ret: req.return_event.compile("return_event")?,
        filters: Filters::compile("filters", &req.filters)?,
        breakdown: req
            .breakdown
            .as_deref()
            .map(|b| Property::parse("breakdown", b))
            .transpose()?,
        mode: req.mode,
        bucketer: Bucketer::new(req.period),
        order: OrderCheck::default(),
        groups: Groups::new(),
        people: Vec::new(),
        ring: Vec::new(),
        table: HashMap::default(),
    };
    let mut cols: Vec<&str> = st.filters.columns().collect();
    cols.extend(st.start.filters.columns());
    cols.extend(st.ret.filters.columns());
    cols.extend(st.breakdown.as_ref().map(|b| b.column()));
    let cols: Vec<String> = cols.into_iter().map(str::to_string).collect();
    let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
    source.scan(&cols, TimeRange::pair(&req.range), &mut |c| st.chunk(&c))?;
    Ok(st.finish(req, disclosure))
}

impl State {
    fn chunk(&mut self, day: &DayChunk) -> Result<(), AnalysisError> {
        let chunk = Chunk::new(&day.batch)?;
        self.order.check(day.day, chunk.ts)?;
        // Owned copies (small) so the bound filters do not borrow `self`.
        let (filters, start, ret) = (self.filters.clone(), self.start.clone(), self.ret.clone());
        let breakdown = self.breakdown.clone();
        let global = filters.bind(&chunk)?;
        let start_f = start.filters.bind(&chunk)?;
        let ret_f = ret.filters.bind(&chunk)?;
        let bd = breakdown.as_ref().map(|b| b.bind(&chunk)).transpose()?;
        // Name tests per distinct event value: bit 0 start, bit 1 return.
        let mut codes = Vec::new();
        chunk.event.codes(&mut codes, &mut |s| {
            start.name_matches(s) as u32 | (ret.name_matches(s) as u32) << 1
        });
        let rows: Vec<u32> = (0..codes.len() as u32)
            .filter(|&i| codes[i as usize] != 0)
            .collect();
        if let Some(max) = max_person(chunk.person)? {
            grow(&mut self.people, max, EMPTY);
        }
        for (j, &row) in rows.iter().enumerate() {
            if let Some(&ahead) = rows.get(j + PREFETCH_AHEAD) {
                prefetch(&self.people, chunk.person[ahead as usize] as usize);
            }
            let (i, code) = (row as usize, codes[row as usize]);
            if !filters.is_empty() && !global.matches(i) {
                continue;
            }
            let is_start = code & 1 != 0 && (start.filters.is_empty() || start_f.matches(i));
            let is_ret = code & 2 != 0 && (ret.filters.is_empty() || ret_f.matches(i));
            if !is_start && !is_ret {
                continue;
            }
            let p = chunk.person[i] as usize;
            let period = self.bucketer.period_of(chunk.ts[i]);
            match self.mode {
                RetentionMode::FirstTime => {
                    if is_start && self.people[p].period == NONE {
                        let g = self.groups.of(bd.as_ref(), i);
                        self.people[p].period = period;
                        self.people[p].group = g;
                    }
                    let c = self.people[p].period;
                    if is_ret && c != NONE {
                        let off = (period - c) as u64;
                        if off < self.n as u64 {
                            self.people[p].bits |= 1 << off;
                        }
                    }
                }
                RetentionMode::Recurring => {
                    let g = if is_start {
                        self.groups.of(bd.as_ref(), i)
                    } else {
                        0
                    };
                    self.recurring(p, period, is_start, is_ret, g);
                }
            }
        }
        Ok(())
    }

    fn recurring(&mut self, p: usize, period: i64, is_start: bool, is_ret: bool, g: u32) {
        let n = self.n;
        grow(&mut self.people, p, EMPTY);
        if self.breakdown.is_some() && self.ring.len() < self.people.len() * n {
            self.ring.resize(self.people.len() * n, 0);
        }
        let me = &mut self.people[p];
        let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
        let last = me.period;
        if last != period {
            let shift = if last == NONE { 64 } else { period - last };
            me.bits = if shift >= 64 {
                0
            } else {
                (me.bits << shift) & mask
            };
            me.counted = 0;
            me.period = period;
        }
        if is_start && me.bits & 1 == 0 {
            me.bits |= 1;
            if self.breakdown.is_some() {
                self.ring[p * n + period.rem_euclid(n as i64) as usize] = g;
            }
            self.table
                .entry((g, period))
                .or_insert_with(|| Cell {
                    size: 0,
                    returning: vec![0; n],
                })
                .size += 1;
        }
        if is_ret {
            let mut todo = me.bits & !me.counted;
            me.counted |= todo;
            while todo != 0 {
                let j = todo.trailing_zeros() as usize;
                todo &= todo - 1;
                let cohort = period - j as i64;
                let cg = if self.breakdown.is_some() {
                    self.ring[p * n + cohort.rem_euclid(n as i64) as usize]
                } else {
                    0
                };
                self.table
                    .entry((cg, cohort))
                    .or_insert_with(|| Cell {
                        size: 0,
                        returning: vec![0; n],
                    })
                    .returning[j] += 1;
            }
        }
    }

    fn finish(mut self, req: &RetentionRequest, disclosure: &Disclosure) -> RetentionResult {
        let n = self.n;
        if self.mode == RetentionMode::FirstTime {
            for me in &self.people {
                let c = me.period;
                if c == NONE {
                    continue;
                }
                let cell = self.table.entry((me.group, c)).or_insert_with(|| Cell {
                    size: 0,
                    returning: vec![0; n],
                });
                cell.size += 1;
                let mut b = me.bits;
                while b != 0 {
                    cell.returning[b.trailing_zeros() as usize] += 1;
                    b &= b - 1;
                }
            }
        }
        let mut keys: Vec<(u32, i64)> = self.table.keys().copied().collect();
        let values: Vec<Option<String>> = (0..self.groups.len())
            .map(|g| self.groups.value(g as u32))
            .collect();
        keys.sort_by(|a, b| {
            a.1.cmp(&b.1)
                .then_with(|| values[a.0 as usize].cmp(&values[b.0 as usize]))
        });
        let sensitivity = match self.mode {
            RetentionMode::FirstTime => 1.0 + n as f64,
            RetentionMode::Recurring => {
                let mut periods: Vec<i64> = keys.iter().map(|k| k.1).collect();
                periods.dedup();
                periods.len().max(1) as f64 * (1.0 + n as f64)
            }
        };
        let mut rel = disclosure.releaser(sensitivity);
        let cohorts = keys
            .iter()
            .map(|key| {
                let cell = &self.table[key];
                let visible = rel.visible(cell.size);
                let (size, returning) = if visible {
                    let size = rel.cell(cell.size, cell.size);
                    (
                        size,
                        cell.returning.iter().map(|&r| rel.cell(r, r)).collect(),
                    )
                } else {
                    rel.suppressed();
                    (None, vec![None; n])
                };
                Cohort {
                    cohort: req.period.label(key.1),
                    value: values[key.0 as usize].clone(),
                    size,
                    suppressed: !visible,
                    returning,
                }
            })
            .collect();
        RetentionResult {
            period: req.period,
            periods: req.periods,
            mode: req.mode,
            breakdown: req.breakdown.clone(),
            cohorts,
            disclosure: rel.finish(),
        }
    }
}
