//! Data-subject routes (admin key, `operations` purpose): `DELETE /v1/persons/{id}` erases a
//! person everywhere, `GET /v1/persons/{id}/export` returns everything held about them with
//! the purpose of each item. Never logs the identifier.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use iob_engine::{ErasureReport, PersonExport};

use crate::AppState;
use crate::admin::admin;
use crate::problem::Problem;

pub async fn erase(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ErasureReport>, Problem> {
    let permit = admin(&st, &headers)?;
    let engine = st.engine.clone();
    let report = tokio::task::spawn_blocking(move || engine.erase_person(&permit, &id))
        .await
        .map_err(|_| iob_engine::EngineError::ShuttingDown)??;
    Ok(Json(report))
}

pub async fn export(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<PersonExport>, Problem> {
    let permit = admin(&st, &headers)?;
    let engine = st.engine.clone();
    let export = tokio::task::spawn_blocking(move || engine.export_person(&permit, &id))
        .await
        .map_err(|_| iob_engine::EngineError::ShuttingDown)??;
    Ok(Json(export))
}
