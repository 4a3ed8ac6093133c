//! Analytics routes: `POST /v1/query` (SQL over `events`, `persons`, `consents`) and
//! `POST /v1/analyses/{funnel|retention|paths|trends}?purpose=P[&epsilon=E]` (the request as
//! the body).
//!
//! Analyses need a `read:analytics` key or better. For keys without `read:personal`, groups
//! backed by fewer than `analytics.min_group_persons` persons are suppressed; `epsilon` adds
//! Laplace noise (seeded by the server, never by the caller).
//!
//! SQL returns rows of (pseudonymous) persons, so it needs a `read:personal` or admin key and
//! a declared purpose; persons without consent for it are invisible to the query. Keys with
//! only `read:analytics` use the behavioral analyses, whose small groups are suppressed.
//! Never logs the SQL text (it may hold literal values).

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use iob_engine::{EngineError, Need};
use iob_query::{Format, render};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::require;
use crate::persons::purpose_permit;
use crate::problem::Problem;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    sql: String,
    purpose: Option<String>,
    /// `json` (default: `{columns, rows, truncated, seconds}`), `csv`, `jsonl`, `table`, `parquet`.
    format: Option<String>,
}

/// A JSON request body (any content type: `curl -d` sends a form type), or a problem that
/// says where it is wrong.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("the request body is not the expected JSON: {e}"),
        )
    })
}

pub async fn query(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let key = require(&st, &headers, Need::Personal)?;
    let body: QueryBody = json_body(&body)?;
    let analytics = st.analytics()?;
    let permit = purpose_permit(&st, key, body.purpose.as_deref())?;
    let format: Format = match body.format.as_deref() {
        None => Format::Json,
        Some(f) => f.parse().map_err(|e: iob_query::QueryError| {
            Problem::from(EngineError::Invalid {
                field: "format".into(),
                reason: e.to_string(),
            })
        })?,
    };
    let result = analytics.sql(&permit, &body.sql).await?;
    if format == Format::Json {
        let rows = render(&result.schema, &result.batches, Format::Json)?;
        let rows: serde_json::Value = serde_json::from_slice(&rows).unwrap_or_default();
        let columns: Vec<_> = result
            .schema
            .fields()
            .iter()
            .map(|f| json!({"name": f.name(), "type": f.data_type().to_string()}))
            .collect();
        return Ok(Json(json!({
            "columns": columns,
            "rows": rows,
            "row_count": result.rows,
            "truncated": result.truncated,
            "seconds": result.seconds,
        }))
        .into_response());
    }
    let bytes = render(&result.schema, &result.batches, format)?;
    let mut resp = Response::new(Body::from(bytes));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if result.truncated {
        resp.headers_mut()
            .insert("x-iob-truncated", HeaderValue::from_static("true"));
    }
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisParams {
    purpose: Option<String>,
    /// Privacy budget for Laplace noise on the released counts.
    epsilon: Option<f64>,
}

pub async fn analysis(
    State(st): State<AppState>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    params: Result<Query<AnalysisParams>, QueryRejection>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, Problem> {
    let key = require(&st, &headers, Need::Aggregates)?;
    let Query(params) = params
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
    let analytics = st.analytics()?.clone();
    let personal = key.scope.allows(Need::Personal);
    let permit = purpose_permit(&st, key, params.purpose.as_deref())?;
    let request = iob_query::parse_analysis(&kind, &body)?;
    let disclosure = iob_query::Disclosure {
        k: (!personal).then_some(analytics.config().min_group_persons),
        epsilon: params.epsilon,
        seed: rand::random(),
    };
    let value =
        tokio::task::spawn_blocking(move || analytics.analyze(&permit, &request, &disclosure))
            .await
            .map_err(|_| Problem::from(EngineError::ShuttingDown))??;
    Ok(Json(value))
}
