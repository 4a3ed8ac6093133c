//! Data-subject routes (admin key, `operations` purpose): `DELETE /v1/persons/{id}` erases a
//! person everywhere, `GET /v1/persons/{id}/export` returns everything held about them with
//! the purpose of each item. Never logs the identifier.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use iob_engine::{Engine, EngineError, ErasureReport, Permit, PersonExport};

use crate::AppState;
use crate::admin::admin;
use crate::problem::Problem;

/// Runs `request` for person `id` under the admin key's `operations` permit, off the async
/// threads (erasure rewrites files; export reads the person's whole history).
async fn subject_request<T: Send + 'static>(
    st: AppState,
    headers: &HeaderMap,
    id: String,
    request: impl FnOnce(&Engine, &Permit, &str) -> Result<T, EngineError> + Send + 'static,
) -> Result<Json<T>, Problem> {
    let permit = admin(&st, headers)?;
    let engine = st.engine.clone();
    let out = tokio::task::spawn_blocking(move || request(&engine, &permit, &id))
        .await
        .map_err(|_| EngineError::ShuttingDown)??;
    Ok(Json(out))
}

pub async fn erase(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ErasureReport>, Problem> {
    subject_request(st, &headers, id, Engine::erase_person).await
}

pub async fn export(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<PersonExport>, Problem> {
    subject_request(st, &headers, id, Engine::export_person).await
}
