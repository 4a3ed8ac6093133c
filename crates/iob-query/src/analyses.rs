//! The behavioral analyses (funnels, retention, paths, trends) over the columnar store, under
//! a purpose and a disclosure rule. The kernels and the request/result types live in
//! `iob-analyses` ([`iob_analyses::Analysis`], [`iob_analyses::run`]); this binds them to the
//! store, the purpose's directory and the audit log.

use iob_analyses::{Analysis, AnalysisError, AnalysisResult, Disclosure};
use iob_columnar::ColumnarSource;
use iob_engine::Permit;
use serde_json::Value;

use crate::{Analytics, QueryError};

/// The analysis kinds, as named in paths and on the command line.
pub const KINDS: [&str; 4] = ["funnel", "retention", "paths", "trends"];

/// Parses the request of analysis `kind` (its body, without the kind's key) from JSON;
/// unknown kinds and unknown fields are refused by name.
pub fn parse_analysis(kind: &str, json: &[u8]) -> Result<Analysis, QueryError> {
    if !KINDS.contains(&kind) {
        return Err(QueryError::Analysis(AnalysisError::request(
            "analysis",
            format!("unknown `{kind}`: one of {}", KINDS.join(", ")),
        )));
    }
    let bad = |e: serde_json::Error| {
        QueryError::Analysis(AnalysisError::request("request", e.to_string()))
    };
    let body: Value = serde_json::from_slice(json).map_err(bad)?;
    serde_json::from_value(serde_json::json!({ kind: body })).map_err(bad)
}

fn kind_of(a: &Analysis) -> &'static str {
    match a {
        Analysis::Funnel(_) => "funnel",
        Analysis::Retention(_) => "retention",
        Analysis::Paths(_) => "paths",
        Analysis::Trends(_) => "trends",
    }
}

impl Analytics {
    /// Runs `analysis` over the events `permit`'s purpose may see, releasing its counts
    /// through `disclosure` (blocking: call it off async threads). Returns the result itself
    /// (not tagged with its kind).
    pub fn analyze(
        &self,
        permit: &Permit,
        analysis: &Analysis,
        disclosure: &Disclosure,
    ) -> Result<Value, QueryError> {
        disclosure
            .validate("disclosure")
            .map_err(QueryError::Analysis)?;
        let request = serde_json::to_string(analysis).unwrap_or_default();
        self.engine()
            .audit_query(permit, kind_of(analysis), &request)?;
        let directory = self.engine().person_directory(permit)?;
        let source = ColumnarSource {
            columnar: self.columnar(),
            engine: self.engine(),
            directory: &directory,
        };
        let value = match iob_analyses::run(&source, analysis, disclosure)? {
            AnalysisResult::Funnel(r) => serde_json::to_value(r),
            AnalysisResult::Retention(r) => serde_json::to_value(r),
            AnalysisResult::Paths(r) => serde_json::to_value(r),
            AnalysisResult::Trends(r) => serde_json::to_value(r),
        };
        Ok(value.unwrap_or(Value::Null))
    }
}
