//! One entry point for callers that receive analyses as JSON (CLI, HTTP): an [`Analysis`] names
//! its kind by its single key (`{"funnel": {…}}`, `{"retention": {…}}`, `{"paths": {…}}`,
//! `{"trends": {…}}`), [`run`] applies the caller's [`Disclosure`] and returns the matching
//! [`AnalysisResult`]. Unknown keys anywhere are rejected with the key's name.

use serde::{Deserialize, Serialize};

use crate::{
    AnalysisError, Disclosure, EventSource, FunnelRequest, FunnelResult, PathsRequest, PathsResult,
    RetentionRequest, RetentionResult, TrendsRequest, TrendsResult,
};

/// An analysis request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Analysis {
    Funnel(FunnelRequest),
    Retention(RetentionRequest),
    Paths(PathsRequest),
    Trends(TrendsRequest),
}

/// An analysis result, tagged like its request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisResult {
    Funnel(FunnelResult),
    Retention(RetentionResult),
    Paths(PathsResult),
    Trends(TrendsResult),
}

/// Runs `analysis` over `source`, protected by `disclosure`.
pub fn run(
    source: &dyn EventSource,
    analysis: &Analysis,
    disclosure: &Disclosure,
) -> Result<AnalysisResult, AnalysisError> {
    Ok(match analysis {
        Analysis::Funnel(r) => AnalysisResult::Funnel(crate::funnel(source, r, disclosure)?),
        Analysis::Retention(r) => {
            AnalysisResult::Retention(crate::retention(source, r, disclosure)?)
        }
        Analysis::Paths(r) => AnalysisResult::Paths(crate::paths(source, r, disclosure)?),
        Analysis::Trends(r) => AnalysisResult::Trends(crate::trends(source, r, disclosure)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemorySource, Row, StringEncoding};

    #[test]
    fn json_requests_run_and_unknown_keys_are_named() {
        let rows = vec![
            Row::track(0, 0, "A"),
            Row::track(0, 1, "B"),
            Row::track(1, 2, "A"),
        ];
        let source = MemorySource::from_rows(rows, StringEncoding::Utf8, 10);
        let a: Analysis = serde_json::from_str(
            r#"{"funnel": {"steps": [{"event": "A"}, {"event": "B"}], "mode": "strict"}}"#,
        )
        .unwrap();
        let AnalysisResult::Funnel(f) = run(&source, &a, &Disclosure::none()).unwrap() else {
            panic!("funnel result expected")
        };
        assert_eq!(f.groups[0].steps[1].persons, Some(1));
        let e = serde_json::from_str::<Analysis>(r#"{"funnel": {"steps": [], "windows": 1}}"#);
        assert!(e.unwrap_err().to_string().contains("windows"));
        let e = serde_json::from_str::<Analysis>(r#"{"cohorts": {}}"#);
        assert!(e.unwrap_err().to_string().contains("cohorts"));
    }
}
