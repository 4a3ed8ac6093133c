//! The three questions of the analytics benchmark (issue 5), answered by the kernels here and by
//! the DuckDB peer (`bench/analytics/duckdb_peer.py`) on the same Parquet files. Their answers
//! must be byte-identical JSON, so the answer shapes and the definitions live in one place:
//!
//! 1. `funnel`: `Product Viewed` → `Product Added` → `Order Completed`, ordered, 7-day window
//!    (edge inclusive), persons reaching each step:
//!    `{"steps":[…names…],"persons":[a,b,c]}`.
//! 2. `retention`: first-time cohorts by the ISO week (Monday) of the person's first
//!    `Order Completed`; a person returns in week offset i (0..7) with any event in week
//!    cohort + i at or after the cohort event:
//!    `{"cohorts":[{"cohort":"YYYY-MM-DD","size":n,"returning":[n0,…,n7]}]}`, by cohort week.
//! 3. `trends`: per UTC day with at least one `Product Viewed`, its count and distinct persons:
//!    `{"days":[{"day":"YYYY-MM-DD","events":n,"persons":m}]}`, by day.
//!
//! Answers are exact (no disclosure): the benchmark compares engines, not releases.

use serde_json::{Value, json};

use crate::common::EventMatch;
use crate::funnel::{FunnelRequest, FunnelResult};
use crate::retention::{RetentionMode, RetentionRequest, RetentionResult};
use crate::trends::{TrendsRequest, TrendsResult};
use crate::{AnalysisError, Disclosure, EventSource, Period};

/// The funnel steps of question 1.
pub const FUNNEL_STEPS: [&str; 3] = ["Product Viewed", "Product Added", "Order Completed"];

pub fn funnel_request() -> FunnelRequest {
    FunnelRequest::new(&FUNNEL_STEPS)
}

pub fn retention_request() -> RetentionRequest {
    RetentionRequest {
        start_event: EventMatch::named("Order Completed"),
        return_event: EventMatch::any(),
        period: Period::Week,
        periods: 8,
        mode: RetentionMode::FirstTime,
        filters: vec![],
        breakdown: None,
        range: None,
    }
}

pub fn trends_request() -> TrendsRequest {
    TrendsRequest {
        events: vec![EventMatch::named("Product Viewed")],
        interval: Period::Day,
        filters: vec![],
        breakdown: None,
        range: None,
    }
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

/// Answers question `name` (`funnel`, `retention` or `trends`) over `source`.
pub fn answer(source: &dyn EventSource, name: &str) -> Result<Value, AnalysisError> {
    let none = Disclosure::none();
    match name {
        "funnel" => Ok(funnel_answer(&crate::funnel(
            source,
            &funnel_request(),
            &none,
        )?)),
        "retention" => Ok(retention_answer(&crate::retention(
            source,
            &retention_request(),
            &none,
        )?)),
        "trends" => Ok(trends_answer(&crate::trends(
            source,
            &trends_request(),
            &none,
        )?)),
        other => Err(AnalysisError::request(
            "question",
            format!("unknown `{other}`: funnel, retention or trends"),
        )),
    }
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
