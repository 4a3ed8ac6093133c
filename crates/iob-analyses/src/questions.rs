//! The three questions of the analytics benchmark (issue 5), answered by the kernels here and by
//! the DuckDB peer (`bench/analytics/duckdb_peer.py`) on the same Parquet files. Their answers
//! must be byte-identical JSON, so the answer shapes and the definitions live in one place:
//!
//! 1. `funnel`: `Product Viewed` → `Product Added` → `Order Completed`, ordered, 7-day window
//!    (edge inclusive), persons reaching each step:
//!    `{"steps":[…names…],"persons":[a,b,c]}`.
//! 2. `retention`: first-time cohorts by the ISO week (Monday) of the person's first
//!    `Order Completed` (or the chosen start event, or any event); a person returns in week offset i (0..7) with any event in week
//!    cohort + i at or after the cohort event:
//!    `{"cohorts":[{"cohort":"YYYY-MM-DD","size":n,"returning":[n0,…,n7]}]}`, by cohort week.
//! 3. `trends`: per UTC day with at least one `Product Viewed`, its count and distinct persons:
//!    `{"days":[{"day":"YYYY-MM-DD","events":n,"persons":m}]}`, by day.
//!
//! The event names are parameters ([`Questions`]). Answers are exact (no disclosure): the benchmark compares engines, not releases.

use serde_json::{Value, json};

use crate::common::EventMatch;
use crate::funnel::{FunnelRequest, FunnelResult};
use crate::retention::{RetentionMode, RetentionRequest, RetentionResult};
use crate::trends::{TrendsRequest, TrendsResult};
use crate::{AnalysisError, Disclosure, EventSource, Period};

/// The funnel steps of question 1 on the generated journeys.
pub const FUNNEL_STEPS: [&str; 3] = ["Product Viewed", "Product Added", "Order Completed"];

/// The event names the questions use (`None`: any event). The default fits the generated
/// journeys; real data sets (UCI Online Retail, YOOCHOOSE) name their own. The DuckDB peer takes
/// the same as `--step` (repeated), `--retention-start` and `--trends-event` (empty: any).
#[derive(Debug, Clone, PartialEq)]
pub struct Questions {
    pub funnel_steps: Vec<String>,
    pub retention_start: Option<String>,
    pub trends_event: Option<String>,
}

impl Default for Questions {
    fn default() -> Self {
        Questions {
            funnel_steps: FUNNEL_STEPS.iter().map(|s| s.to_string()).collect(),
            retention_start: Some("Order Completed".into()),
            trends_event: Some("Product Viewed".into()),
        }
    }
}

fn matcher(name: &Option<String>) -> EventMatch {
    name.as_deref()
        .map_or_else(EventMatch::any, EventMatch::named)
}

impl Questions {
    pub fn funnel_request(&self) -> FunnelRequest {
        let steps: Vec<&str> = self.funnel_steps.iter().map(String::as_str).collect();
        FunnelRequest::new(&steps)
    }

    pub fn retention_request(&self) -> RetentionRequest {
        RetentionRequest {
            start_event: matcher(&self.retention_start),
            return_event: EventMatch::any(),
            period: Period::Week,
            periods: 8,
            mode: RetentionMode::FirstTime,
            filters: vec![],
            breakdown: None,
            range: None,
        }
    }

    pub fn trends_request(&self) -> TrendsRequest {
        TrendsRequest {
            events: vec![matcher(&self.trends_event)],
            interval: Period::Day,
            filters: vec![],
            breakdown: None,
            range: None,
        }
    }

    /// Answers question `name` (`funnel`, `retention` or `trends`) over `source`.
    pub fn answer(&self, source: &dyn EventSource, name: &str) -> Result<Value, AnalysisError> {
        let none = Disclosure::none();
        match name {
            "funnel" => Ok(funnel_answer(&crate::funnel(
                source,
                &self.funnel_request(),
                &none,
            )?)),
            "retention" => Ok(retention_answer(&crate::retention(
                source,
                &self.retention_request(),
                &none,
            )?)),
            "trends" => Ok(trends_answer(&crate::trends(
                source,
                &self.trends_request(),
                &none,
            )?)),
            other => Err(AnalysisError::request(
                "question",
                format!("unknown `{other}`: funnel, retention or trends"),
            )),
        }
    }
}

pub fn funnel_request() -> FunnelRequest {
    Questions::default().funnel_request()
}

pub fn retention_request() -> RetentionRequest {
    Questions::default().retention_request()
}

pub fn trends_request() -> TrendsRequest {
    Questions::default().trends_request()
}

pub fn funnel_answer(r: &FunnelResult) -> Value {
    let g = &r.groups[0];
    json!({
        "steps": g.steps.iter().map(|s| s.event.clone()).collect::<Vec<_>>(),
        "persons": g.steps.iter().map(|s| s.persons.unwrap_or(0)).collect::<Vec<_>>(),
    })
}

pub fn retention_answer(r: &RetentionResult) -> Value {
    let cohorts: Vec<Value> = r
        .cohorts
        .iter()
        .map(|c| {
            json!({
                "cohort": c.cohort,
                "size": c.size.unwrap_or(0),
                "returning": c.returning.iter().map(|x| x.unwrap_or(0)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "cohorts": cohorts })
}

pub fn trends_answer(r: &TrendsResult) -> Value {
    let days: Vec<Value> = r
        .series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| json!({"day": p.interval, "events": p.events.unwrap_or(0), "persons": p.persons.unwrap_or(0)}))
        .collect();
    json!({ "days": days })
}

/// Answers question `name` with the default event names.
pub fn answer(source: &dyn EventSource, name: &str) -> Result<Value, AnalysisError> {
    Questions::default().answer(source, name)
}

/// The benchmark question names, in order.
pub const QUESTIONS: [&str; 3] = ["funnel", "retention", "trends"];

/// `value` as compact JSON with object keys sorted at every level, independent of serde_json's
/// `preserve_order` feature (which another crate in a build may turn on); Python's
/// `json.dumps(v, sort_keys=True, separators=(",", ":"))` writes the same bytes for these answers.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}
