//! `GET /v1/audit` (admin key): the newest audit records, filtered by subject pseudonym,
//! actor or action. The records hold pseudonyms, key ids and purposes only; verifying the
//! chain is `iob audit verify`'s job, not this route's.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use iob_engine::ListFilter;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::admin::admin;
use crate::problem::Problem;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    subject: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    limit: Option<usize>,
}

pub async fn list(
    State(st): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    admin(&st, &headers)?;
    let Query(q) = query.map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!(
                "{}; allowed: subject=HEX, actor=KEY_ID|operator, action=profile.read|..., limit=N",
                e.body_text()
            ),
        )
    })?;
    let filter = ListFilter {
        subject: q.subject,
        actor: q.actor,
        action: q.action,
        limit: q.limit.unwrap_or(100).min(10_000),
    };
    let engine = st.engine.clone();
    let records = tokio::task::spawn_blocking(move || engine.audit_records(&filter))
        .await
        .map_err(|_| Problem::from(iob_engine::EngineError::ShuttingDown))??;
    Ok(Json(json!({ "records": records })))
}
