//! Person routes: the profile (`GET /v1/persons/{id}`), the journey across channels
//! (`GET /v1/persons/{id}/timeline`) and the identity explanation
//! (`GET /v1/persons/{id}/identity`). `{id}` is any identifier of the person (`user:…`,
//! `email:…`, `person:N`, or a bare value).
//!
//! Each read needs a `read:personal` (or admin) key, declares its purpose
//! (`?purpose=personalization`) and runs under a permit for it issued to the key's id. Never
//! logs the identifier.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use iob_engine::{Actor, ApiKey, Engine, EngineError, Need, Permit};
use iob_types::Purpose;
use serde::Deserialize;
use serde_json::Value;

use crate::AppState;
use crate::auth::require;
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

fn permit(st: &AppState, key: ApiKey, q: &ReadQuery) -> Result<Permit, Problem> {
    purpose_permit(st, key, q.purpose.as_deref())
}

/// A permit for the declared `purpose` (required), issued to the key; `operations` only for
/// admin keys.
pub(crate) fn purpose_permit(
    st: &AppState,
    key: ApiKey,
    purpose: Option<&str>,
) -> Result<Permit, Problem> {
    let purpose = purpose.ok_or_else(|| {
        Problem::from(EngineError::Invalid {
            field: "purpose".into(),
            reason: "declare why you read this person's data, e.g. ?purpose=personalization".into(),
        })
    })?;
    let purpose = Purpose::new(purpose).map_err(|e| EngineError::Invalid {
        field: "purpose".into(),
        reason: e.to_string(),
    })?;
    // `operations` is not consent-based and sees raw identifiers: data-subject requests and
    // maintenance, for admin keys only.
    if purpose.is_operations() && key.scope != iob_engine::Scope::Admin {
        return Err(EngineError::Forbidden {
            action: "read under the `operations` purpose (not consent-based, raw identifiers: admin keys only); declare the purpose you read for",
        }
        .into());
    }
    Ok(st.engine.permit(Actor::ApiKey(key.id), &purpose)?)
}

/// One person read: the query checked, the permit issued for the declared purpose, `read`
/// run off the async threads, and an unknown person answered 404.
async fn read_person<T: serde::Serialize + Send + 'static>(
    st: AppState,
    headers: &HeaderMap,
    id: String,
    q: Result<Query<ReadQuery>, QueryRejection>,
    read: impl FnOnce(&Engine, &Permit, &str, ReadQuery) -> Result<Option<T>, EngineError>
    + Send
    + 'static,
) -> Result<Json<Value>, Problem> {
    let key = require(&st, headers, Need::Personal)?;
    let Query(q) =
        q.map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
    let permit = permit(&st, key, &q)?;
    let key = id.clone();
    let found = tokio::task::spawn_blocking(move || read(&st.engine, &permit, &key, q))
        .await
        .map_err(|_| Problem::from(EngineError::ShuttingDown))??;
    match found {
        Some(v) => Ok(Json(serde_json::to_value(v).unwrap_or(Value::Null))),
        None => Err(EngineError::UnknownPerson(id).into()),
    }
}

pub async fn profile(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    read_person(st, &headers, id, q, |engine, permit, id, q| {
        let at =
            match q.at.as_deref() {
                Some(t) => Some(iob_types::Timestamp::parse("at", t).map_err(|e| {
                    EngineError::Invalid {
                        field: "at".into(),
                        reason: e.to_string(),
                    }
                })?),
                None => None,
            };
        engine.profile(permit, id, at)
    })
    .await
}

pub async fn timeline(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    read_person(st, &headers, id, q, |engine, permit, id, q| {
        engine.journey(permit, id, q.before.as_deref(), q.limit.unwrap_or(50))
    })
    .await
}

pub async fn identity(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    read_person(st, &headers, id, q, |engine, permit, id, _| {
        engine.explain_identity(permit, id)
    })
    .await
}

pub async fn consent(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    read_person(st, &headers, id, q, |engine, permit, id, _| {
        engine.consent_state(permit, id)
    })
    .await
}
