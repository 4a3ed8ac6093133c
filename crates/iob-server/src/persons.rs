//! Person routes: the profile (`GET /v1/persons/{id}`), the journey across channels
//! (`GET /v1/persons/{id}/timeline`) and the identity explanation
//! (`GET /v1/persons/{id}/identity`). `{id}` is any identifier of the person (`user:…`,
//! `email:…`, `person:N`, or a bare value).
//!
//! Each read declares its purpose (`?purpose=personalization`) and runs under a permit for it;
//! until scoped read keys exist these routes take the admin key. Never logs the identifier.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use iob_engine::{Actor, EngineError, Permit, Scope};
use iob_types::Purpose;
use serde::Deserialize;
use serde_json::Value;

use crate::AppState;
use crate::auth::presented_key;
use crate::problem::Problem;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    purpose: Option<String>,
    before: Option<String>,
    limit: Option<usize>,
    /// Evaluate rolling windows "as of" this time (ISO-8601); default now.
    at: Option<String>,
}

fn permit(st: &AppState, headers: &HeaderMap, q: &ReadQuery) -> Result<Permit, Problem> {
    let key = presented_key(headers).ok_or(EngineError::MissingKey)?;
    if !matches!(st.engine.authenticate(&key)?, Scope::Admin) {
        return Err(EngineError::Forbidden {
            action: "read persons (use the admin key)",
        }
        .into());
    }
    let purpose = q.purpose.as_deref().ok_or_else(|| {
        Problem::from(EngineError::Invalid {
            field: "purpose".into(),
            reason: "declare why you read this person's data, e.g. ?purpose=personalization".into(),
        })
    })?;
    let purpose = Purpose::new(purpose).map_err(|e| EngineError::Invalid {
        field: "purpose".into(),
        reason: e.to_string(),
    })?;
    Ok(st.engine.permit(Actor::ApiKey("admin".into()), &purpose)?)
}

fn query(q: Result<Query<ReadQuery>, QueryRejection>) -> Result<ReadQuery, Problem> {
    q.map(|Query(q)| q)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Problem::from(EngineError::ShuttingDown))?
        .map_err(Problem::from)
}

fn found<T: serde::Serialize>(id: &str, v: Option<T>) -> Result<Json<Value>, Problem> {
    match v {
        Some(v) => Ok(Json(serde_json::to_value(v).unwrap_or(Value::Null))),
        None => Err(EngineError::UnknownPerson(id.to_string()).into()),
    }
}

pub async fn profile(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let q = query(q)?;
    let permit = permit(&st, &headers, &q)?;
    let at = match q.at.as_deref() {
        Some(t) => {
            Some(
                iob_types::Timestamp::parse("at", t).map_err(|e| EngineError::Invalid {
                    field: "at".into(),
                    reason: e.to_string(),
                })?,
            )
        }
        None => None,
    };
    let (engine, key) = (st.engine.clone(), id.clone());
    found(
        &id,
        blocking(move || engine.profile(&permit, &key, at)).await?,
    )
}

pub async fn timeline(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let q = query(q)?;
    let permit = permit(&st, &headers, &q)?;
    let (engine, key) = (st.engine.clone(), id.clone());
    let (before, limit) = (q.before.clone(), q.limit.unwrap_or(50));
    found(
        &id,
        blocking(move || engine.journey(&permit, &key, before.as_deref(), limit)).await?,
    )
}

pub async fn identity(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let q = query(q)?;
    let permit = permit(&st, &headers, &q)?;
    let (engine, key) = (st.engine.clone(), id.clone());
    found(
        &id,
        blocking(move || engine.explain_identity(&permit, &key)).await?,
    )
}
