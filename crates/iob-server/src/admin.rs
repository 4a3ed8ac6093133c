//! Operator routes (admin key): store statistics, the quarantine and its replay, health.
//! These read personal data only through a permit for the `operations` purpose issued to the
//! calling key.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use iob_engine::{Actor, EngineError, Scope};
use iob_types::Purpose;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::presented_key;
use crate::problem::Problem;

pub(crate) fn admin(st: &AppState, headers: &HeaderMap) -> Result<iob_engine::Permit, Problem> {
    let key = presented_key(headers).ok_or(EngineError::MissingKey)?;
    match st.engine.authenticate(&key)? {
        Scope::Admin => Ok(st
            .engine
            .permit(Actor::ApiKey("admin".into()), &Purpose::operations())?),
        Scope::Write { .. } => Err(EngineError::Forbidden {
            action: "use admin endpoints (use the admin key)",
        }
        .into()),
    }
}

pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn ready(State(st): State<AppState>) -> Json<Value> {
    let s = st.engine.stats();
    Json(json!({ "status": "ready", "events": s.events }))
}

pub async fn stats(State(st): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, Problem> {
    admin(&st, &headers)?;
    let mut v = serde_json::to_value(st.engine.stats()).unwrap_or(Value::Null);
    v["unify"] = st.engine.unify_stats();
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    all: bool,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

pub async fn quarantine_list(
    State(st): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let permit = admin(&st, &headers)?;
    let Query(q) = query.map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("{}; allowed: all=true|false, limit=N", e.body_text()),
        )
    })?;
    let entries = st
        .engine
        .quarantine_list(&permit, q.all, q.limit.min(10_000))?;
    let items: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "received_at": e.received_at.to_rfc3339(),
                "source": e.source,
                "reason": e.reason,
                "payload": String::from_utf8_lossy(&e.payload),
            })
        })
        .collect();
    Ok(Json(json!({ "entries": items })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    ids: Option<Vec<u64>>,
}

pub async fn quarantine_replay(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    let permit = admin(&st, &headers)?;
    let req: ReplayBody = if body.is_empty() {
        ReplayBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("replay body: {e}; expected {{\"ids\": [1, 2]}} or an empty body for all"),
            )
        })?
    };
    let summary = st
        .engine
        .replay_quarantine(&permit, req.ids.as_deref())
        .await?;
    Ok(Json(serde_json::to_value(summary).unwrap_or(Value::Null)))
}
