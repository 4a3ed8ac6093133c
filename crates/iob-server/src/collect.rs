//! Collector routes: Segment's `/v1/{type}` and `/v1/batch`, plus iob's `observe` and `consent`.
//! Bodies are taken as bytes whatever their content type (analytics.js sends `text/plain` to
//! avoid CORS preflights). A 200 is sent only after the engine reports the events durable.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use iob_engine::{Endpoint, Receipt, Submission};
use iob_types::EventKind;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::presented_key;
use crate::problem::{self, Problem};

pub async fn single(
    State(st): State<AppState>,
    Path(kind): Path<String>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Problem> {
    let kind = EventKind::parse(&kind).map_err(|_| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no collector endpoint /v1/{kind}; use track, identify, page, screen, group, alias, observe, consent or batch"),
        )
    })?;
    let body = body.map_err(problem::body_error)?;
    let key = presented_key(&headers);
    let receipt = st
        .engine
        .submit(Submission {
            endpoint: Endpoint::Single(kind),
            body: &body,
            key: key.as_deref(),
            ip: Some(addr.ip()),
        })
        .await?;
    Ok(Json(answer(&receipt)))
}

pub async fn batch(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Problem> {
    let body = body.map_err(problem::body_error)?;
    let key = presented_key(&headers);
    let receipt = st
        .engine
        .submit(Submission {
            endpoint: Endpoint::Batch,
            body: &body,
            key: key.as_deref(),
            ip: Some(addr.ip()),
        })
        .await?;
    if receipt.accepted == 0 && receipt.duplicates == 0 && !receipt.rejected.is_empty() {
        return Err(problem::all_rejected(&receipt.rejected));
    }
    Ok(Json(answer(&receipt)))
}

fn answer(r: &Receipt) -> Value {
    json!({
        "success": true,
        "accepted": r.accepted,
        "duplicates": r.duplicates,
        "rejected": r.rejected,
    })
}
