//! Key management routes (admin only): `POST /v1/keys` creates a key and shows its plaintext
//! once, `GET /v1/keys` lists ids, scopes and expiry, `DELETE /v1/keys/{id}` revokes. The
//! engine persists every change before answering, and a running server accepts a new key at
//! once. Never logs or lists a secret or hash; the one plaintext is in the creation answer.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use iob_engine::{EngineError, KeyRequest, Need, Scope, parse_lifetime};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::require;
use crate::problem::Problem;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    scope: String,
    source: Option<String>,
    id: Option<String>,
    /// `90s`, `15m`, `12h`, `30d`.
    expires_in: Option<String>,
}

/// Runs blocking key-file work off the async threads.
async fn blocking<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&iob_engine::Engine) -> Result<T, EngineError> + Send + 'static,
) -> Result<T, Problem> {
    let engine = st.engine.clone();
    Ok(tokio::task::spawn_blocking(move || f(&engine))
        .await
        .map_err(|_| Problem::from(EngineError::ShuttingDown))??)
}

pub async fn create(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), Problem> {
    require(&st, &headers, Need::Admin)?;
    let b: CreateBody = serde_json::from_slice(&body).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("key body: {e}; expected {{\"scope\": \"read:personal\", \"id\": \"crm\", \"expires_in\": \"30d\"}} (and \"source\" for a write key)"),
        )
    })?;
    let scope = Scope::parse(&b.scope, b.source.as_deref()).map_err(EngineError::from)?;
    let expires_in = b.expires_in.as_deref().map(parse_lifetime).transpose()?;
    let req = KeyRequest {
        scope,
        id: b.id,
        expires_in,
    };
    let k = blocking(&st, move |e| e.create_key(req)).await?;
    let mut v = json!({
        "id": k.id,
        "key": k.secret,
        "expires_at": k.expires_at,
        "note": "the key is shown only now: store it safely",
    });
    let scope = serde_json::to_value(&k.scope).unwrap_or(Value::Null);
    if let Value::Object(m) = scope {
        for (name, val) in m {
            v[name] = val;
        }
    }
    Ok((StatusCode::CREATED, Json(v)))
}

pub async fn list(State(st): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, Problem> {
    require(&st, &headers, Need::Admin)?;
    Ok(Json(json!({ "keys": st.engine.list_keys() })))
}

pub async fn revoke(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    require(&st, &headers, Need::Admin)?;
    let revoked = id.clone();
    blocking(&st, move |e| e.revoke_key(&id)).await?;
    Ok(Json(json!({ "revoked": revoked })))
}
