//! `GET /v1/decide?person=ID&placement=NAME&n=K`: what to show a person at a placement
//! (items, scores, explanations; whether the answer is personalized and, if not, why).
//!
//! A decide call reads the person's behavior, so it needs a `read:personal` (or admin) key, like
//! the other person reads; it always runs under the `personalization` purpose (there is no
//! `purpose` parameter): a person without that consent, or unknown, gets a non-personalized
//! answer that says why, never an error. Bad `n` or an unknown placement: 400 naming the
//! field. Never logs the identifier.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use iob_engine::{Actor, EngineError, Need};
use iob_types::Purpose;
use serde::Deserialize;
use serde_json::Value;

use crate::AppState;
use crate::auth::require;
use crate::problem::Problem;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecideQuery {
    person: Option<String>,
    placement: Option<String>,
    /// Read as text so a bad value is answered naming `n`.
    n: Option<String>,
}

fn invalid(field: &str, reason: &str) -> Problem {
    EngineError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
    .into()
}

pub async fn decide(
    State(st): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<DecideQuery>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let key = require(&st, &headers, Need::Personal)?;
    let Query(q) =
        q.map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
    let Some(rec) = st.recommend.clone() else {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "recommendations_off",
            "this server runs without recommendations (start it with `iob serve`)",
        ));
    };
    let person = q
        .person
        .filter(|p| !p.is_empty())
        .ok_or_else(|| invalid("person", "name the person: ?person=ID (any identifier)"))?;
    let n = match q.n.as_deref() {
        None => None,
        Some(t) => Some(
            t.parse::<usize>()
                .map_err(|_| invalid("n", "must be a whole number of items, e.g. n=10"))?,
        ),
    };
    let purpose = Purpose::new(Purpose::PERSONALIZATION).expect("a valid purpose name");
    let permit = st.engine.permit(Actor::ApiKey(key.id), &purpose)?;
    let answer = tokio::task::spawn_blocking(move || {
        rec.decide(&permit, &person, q.placement.as_deref(), n)
    })
    .await
    .map_err(|_| Problem::from(EngineError::ShuttingDown))??;
    Ok(Json(serde_json::to_value(answer).unwrap_or(Value::Null)))
}

/// `POST /v1/models/train` (admin): retrains the recommendation models from persons who consent
/// to personalization now and switches to them; answers what was trained.
pub async fn train(State(st): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, Problem> {
    require(&st, &headers, Need::Admin)?;
    let Some(rec) = st.recommend.clone() else {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "recommendations_off",
            "this server runs without recommendations",
        ));
    };
    let report = tokio::task::spawn_blocking(move || rec.train().map(|r| (r, rec.models().seq)))
        .await
        .map_err(|_| Problem::from(EngineError::ShuttingDown))??;
    let mut v = serde_json::to_value(report.0).unwrap_or(Value::Null);
    v["model_version"] = report.1.into();
    Ok(Json(v))
}
