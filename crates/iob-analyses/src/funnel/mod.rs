//! Funnels: how many persons go through ordered steps within a conversion window.
//!
//! # Semantics (like ClickHouse `windowFunnel` and PostHog funnels)
//!
//! A row *matches step k* when its `event` equals the step's event (a step without `event`
//! matches every row), it passes the request's `filters` and the step's own `filters`. Rows that
//! fail the request filters do not exist for the funnel. The stream order is (ts, seq): a late
//! event (received after later events) counts at its event time.
//!
//! A person's **level** is the largest k such that the person completed steps 1..k in one
//! *attempt*; a person counts once, at their level (the step counts are the persons with
//! level ≥ k). An attempt starts at a step-1 event at time t₀ and all its steps happen within
//! [t₀, t₀ + window] — **the edge is inclusive**: a step exactly `window_ms` after t₀ counts, one
//! ms later does not.
//!
//! * `ordered` (default): steps happen in order; other events may come between. Step k+1's
//!   event must come after step k's in stream order, so **equal timestamps count** when the
//!   later step also has the later `seq`. One event advances an attempt by at most one step
//!   (an event matching steps 1 and 2 cannot complete both).
//! * `strict`: as `ordered`, and the steps are *consecutive* rows of the person: any other row
//!   of the person (that passes the request filters) between two steps breaks the attempt.
//! * `any`: the steps may happen in any order; level k means events of steps 1..k all happened
//!   within one window (some [t, t + window]). One event may satisfy several steps if it
//!   matches them.
//!
//! `range` restricts the scan: events outside it do not exist for the funnel (an attempt that
//! starts before `from_ms` is not seen; steps after `to_ms` do not count).
//!
//! Every attempt is considered (not only the first): the kernel keeps, per step, the latest
//! start among attempts that reached it, which maximizes the remaining window, so the level is
//! exact (a property test compares it to a brute-force search over all attempts).
//!
//! **Time to convert** (per step k ≥ 2, per person, measured when the person first reaches step
//! k): `time_from_first` = step k's time − t₀ of that attempt (the latest step-1 event that can
//! start it); `time_from_previous` = step k's time − step k−1's time in that attempt (not
//! defined, so absent, in `any` mode, where `time_from_first` spans the earliest to the latest of
//! the window's events). Reported as nearest-rank median, p90 and a histogram with the fixed
//! buckets of [`HISTOGRAM_UPPER_MS`].
//!
//! **Breakdown**: a person is attributed to the value of the property on their *first* step-1
//! event in the range (PostHog's first-touch attribution), so groups partition the persons and
//! sum to the total. A missing value is the group `null`.
//!
//! **Disclosure**: a group whose step-1 count is below k is suppressed whole; a step below k
//! persons is suppressed. Sensitivity Δ = number of steps (one person adds at most 1 to each
//! step count of one group). Time distributions are withheld under ε.
//!
//! Must never: count a person twice in a step, or read columns other than the ones the request
//! names.

mod kernel;

use serde::{Deserialize, Serialize};

use crate::common::TimeRange;
use crate::disclosure::{Disclosure, DisclosureReport};
use crate::filter::{Filter, Filters};
use crate::property::Property;
pub use crate::stats::{HISTOGRAM_UPPER_MS, TimeStats};
use crate::{AnalysisError, EventSource};

/// Default conversion window: 7 days.
pub const DEFAULT_WINDOW_MS: i64 = 7 * crate::DAY_MS;

/// How steps must be ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FunnelMode {
    Strict,
    #[default]
    Ordered,
    Any,
}

/// One step of a funnel request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunnelStep {
    /// Event name (`event` column); absent: any event.
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub filters: Vec<Filter>,
}

impl FunnelStep {
    pub fn event(name: &str) -> Self {
        FunnelStep {
            event: Some(name.into()),
            filters: vec![],
        }
    }
}

/// A funnel request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunnelRequest {
    pub steps: Vec<FunnelStep>,
    #[serde(default = "default_window")]
    pub window_ms: i64,
    #[serde(default)]
    pub mode: FunnelMode,
    /// Filters on every row.
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Property to break down by (value on the person's first step-1 event).
    #[serde(default)]
    pub breakdown: Option<String>,
    #[serde(default)]
    pub range: Option<TimeRange>,
}

fn default_window() -> i64 {
    DEFAULT_WINDOW_MS
}

impl FunnelRequest {
    /// An ordered funnel over `events` with the default window.
    pub fn new(events: &[&str]) -> Self {
        FunnelRequest {
            steps: events.iter().map(|e| FunnelStep::event(e)).collect(),
            window_ms: DEFAULT_WINDOW_MS,
            mode: FunnelMode::Ordered,
            filters: vec![],
            breakdown: None,
            range: None,
        }
    }
}

/// The result for one step of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub event: Option<String>,
    /// Persons who reached this step (`null` when suppressed).
    pub persons: Option<u64>,
    pub suppressed: bool,
    pub conversion_from_previous: Option<f64>,
    pub conversion_from_first: Option<f64>,
    pub time_from_previous: Option<TimeStats>,
    pub time_from_first: Option<TimeStats>,
}

/// The funnel of one breakdown group (the only group, `value: null`, without breakdown).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelGroup {
    pub value: Option<String>,
    pub suppressed: bool,
    pub steps: Vec<StepResult>,
}

/// A funnel result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelResult {
    pub mode: FunnelMode,
    pub window_ms: i64,
    pub breakdown: Option<String>,
    /// Upper bounds of the time histogram buckets (the last bucket is open).
    pub histogram_upper_ms: Vec<i64>,
    /// Groups by persons at step 1, descending, then by value.
    pub groups: Vec<FunnelGroup>,
    pub disclosure: DisclosureReport,
}

/// A request checked and compiled.
pub(crate) struct Plan {
    pub names: Vec<Option<String>>,
    pub step_filters: Vec<Filters>,
    pub filters: Filters,
    pub breakdown: Option<Property>,
    pub window: i64,
    pub mode: FunnelMode,
}

impl Plan {
    fn new(req: &FunnelRequest) -> Result<Self, AnalysisError> {
        if req.steps.is_empty() || req.steps.len() > 32 {
            return Err(AnalysisError::request("steps", "give 1 to 32 steps"));
        }
        if req.window_ms <= 0 {
            return Err(AnalysisError::request("window_ms", "must be positive"));
        }
        TimeRange::validate(&req.range, "range")?;
        let step_filters = req
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| Filters::compile(&format!("steps[{i}].filters"), &s.filters))
            .collect::<Result<_, _>>()?;
        Ok(Plan {
            names: req.steps.iter().map(|s| s.event.clone()).collect(),
            step_filters,
            filters: Filters::compile("filters", &req.filters)?,
            breakdown: req
                .breakdown
                .as_deref()
                .map(|b| Property::parse("breakdown", b))
                .transpose()?,
            window: req.window_ms,
            mode: req.mode,
        })
    }

    fn columns(&self) -> Vec<&str> {
        let mut c: Vec<&str> = self.filters.columns().collect();
        c.extend(self.step_filters.iter().flat_map(|f| f.columns()));
        c.extend(self.breakdown.as_ref().map(|b| b.column()));
        c.sort_unstable();
        c.dedup();
        c
    }
}

/// Runs a funnel over `source`.
pub fn funnel(
    source: &dyn EventSource,
    req: &FunnelRequest,
    disclosure: &Disclosure,
) -> Result<FunnelResult, AnalysisError> {
    disclosure.validate("disclosure")?;
    let plan = Plan::new(req)?;
    let mut state = kernel::State::new(&plan);
    source.scan(&plan.columns(), TimeRange::pair(&req.range), &mut |chunk| {
        state.chunk(&plan, &chunk)
    })?;
    let counts = state.finish();
    Ok(assemble(req, &plan, counts, disclosure))
}

fn ratio(a: Option<u64>, b: Option<u64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0 => Some(a as f64 / b as f64),
        _ => None,
    }
}

fn assemble(
    req: &FunnelRequest,
    plan: &Plan,
    mut out: kernel::Output,
    disclosure: &Disclosure,
) -> FunnelResult {
    let n = plan.names.len();
    let mut rel = disclosure.releaser(n as f64);
    out.groups.sort_by(|a, b| {
        b.persons[0]
            .cmp(&a.persons[0])
            .then_with(|| a.value.cmp(&b.value))
    });
    let mut groups = Vec::new();
    for g in &mut out.groups {
        if g.persons[0] == 0 && plan.breakdown.is_some() {
            continue;
        }
        let group_visible = rel.visible(g.persons[0]);
        if !group_visible {
            rel.suppressed();
        }
        let mut steps: Vec<StepResult> = Vec::with_capacity(n);
        let mut first = None;
        for k in 0..n {
            let true_n = g.persons[k];
            let persons = if group_visible {
                rel.cell(true_n, true_n)
            } else {
                None
            };
            if k == 0 {
                first = persons;
            }
            let prev = if k == 0 { None } else { steps[k - 1].persons };
            let show_times = persons.is_some() && !rel.noisy() && k > 0;
            steps.push(StepResult {
                event: plan.names[k].clone(),
                persons,
                suppressed: persons.is_none(),
                conversion_from_previous: if k == 0 { None } else { ratio(persons, prev) },
                conversion_from_first: ratio(persons, first),
                time_from_previous: if show_times {
                    TimeStats::of(&mut g.from_previous[k])
                } else {
                    None
                },
                time_from_first: if show_times {
                    TimeStats::of(&mut g.from_first[k])
                } else {
                    None
                },
            });
        }
        groups.push(FunnelGroup {
            value: g.value.clone(),
            suppressed: !group_visible,
            steps,
        });
    }
    FunnelResult {
        mode: req.mode,
        window_ms: req.window_ms,
        breakdown: req.breakdown.clone(),
        histogram_upper_ms: HISTOGRAM_UPPER_MS.to_vec(),
        groups,
        disclosure: rel.finish(),
    }
}
