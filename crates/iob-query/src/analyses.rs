//! The behavioral analyses (funnels, retention, paths, trends) over the columnar store, under
//! a purpose and a disclosure rule. The kernels live in `iob-analyses`; this binds them to the
//! store, the purpose's directory and the audit log.

use iob_analyses::{Disclosure, FunnelRequest, PathsRequest, RetentionRequest, TrendsRequest};
use iob_columnar::ColumnarSource;
use iob_engine::Permit;
use serde_json::Value;

use crate::{Analytics, QueryError};

/// One analysis request.
#[derive(Debug, Clone)]
pub enum Analysis {
    Funnel(FunnelRequest),
    Retention(RetentionRequest),
    Paths(PathsRequest),
    Trends(TrendsRequest),
}

/// The analysis kinds, as named in paths and on the command line.
pub const KINDS: [&str; 4] = ["funnel", "retention", "paths", "trends"];

impl Analysis {
    /// Parses the request of analysis `kind` from JSON (unknown fields refused by name).
    pub fn parse(kind: &str, json: &[u8]) -> Result<Analysis, QueryError> {
        fn de<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T, QueryError> {
            serde_json::from_slice(json).map_err(|e| {
                QueryError::Analysis(iob_analyses::AnalysisError::request(
                    "request",
                    e.to_string(),
                ))
            })
        }
        Ok(match kind {
            "funnel" => Analysis::Funnel(de(json)?),
            "retention" => Analysis::Retention(de(json)?),
            "paths" => Analysis::Paths(de(json)?),
            "trends" => Analysis::Trends(de(json)?),
            other => {
                return Err(QueryError::Analysis(iob_analyses::AnalysisError::request(
                    "analysis",
                    format!("unknown `{other}`: one of {}", KINDS.join(", ")),
                )));
            }
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Analysis::Funnel(_) => "funnel",
            Analysis::Retention(_) => "retention",
            Analysis::Paths(_) => "paths",
            Analysis::Trends(_) => "trends",
        }
    }

    fn request_json(&self) -> String {
        match self {
            Analysis::Funnel(r) => serde_json::to_string(r),
            Analysis::Retention(r) => serde_json::to_string(r),
            Analysis::Paths(r) => serde_json::to_string(r),
            Analysis::Trends(r) => serde_json::to_string(r),
        }
        .unwrap_or_default()
    }
}

impl Analytics {
    /// Runs `analysis` over the events `permit`'s purpose may see, releasing its counts
    /// through `disclosure` (blocking: call it off async threads).
    pub fn analyze(
        &self,
        permit: &Permit,
        analysis: &Analysis,
        disclosure: &Disclosure,
    ) -> Result<Value, QueryError> {
        disclosure
            .validate("disclosure")
            .map_err(QueryError::Analysis)?;
        self.engine()
            .audit_query(permit, analysis.kind(), &analysis.request_json())?;
        let directory = self.engine().person_directory(permit)?;
        let source = ColumnarSource {
            columnar: self.columnar(),
            engine: self.engine(),
            directory: &directory,
        };
        let value = match analysis {
            Analysis::Funnel(r) => {
                serde_json::to_value(iob_analyses::funnel(&source, r, disclosure)?)
            }
            Analysis::Retention(r) => {
                serde_json::to_value(iob_analyses::retention(&source, r, disclosure)?)
            }
            Analysis::Paths(r) => {
                serde_json::to_value(iob_analyses::paths(&source, r, disclosure)?)
            }
            Analysis::Trends(r) => {
                serde_json::to_value(iob_analyses::trends(&source, r, disclosure)?)
            }
        };
        Ok(value.unwrap_or(Value::Null))
    }
}
