//! The one table from errors to HTTP answers.
//!
//! Every error leaves as `application/problem+json` (RFC 9457) with a stable `code` that clients
//! can match on, the `field` at fault when there is one, and a `detail` that says what to do.
//! Codes are part of the API: add new ones, never rename.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use iob_engine::{EngineError, GovernError, Need, RejectedItem};
use serde_json::{Value, json};

/// An HTTP error answer.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub extra: Value,
    /// Seconds for the `Retry-After` header (429 answers).
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            code,
            detail: detail.into(),
            extra: json!({}),
            retry_after: None,
        }
    }

    fn with(mut self, key: &str, v: Value) -> Self {
        self.extra[key] = v;
        self
    }
}

/// Status and stable code of each engine error.
pub fn classify(e: &EngineError) -> (StatusCode, &'static str) {
    use iob_engine::EngineError as E;
    match e {
        E::MissingKey => (StatusCode::UNAUTHORIZED, "missing_key"),
        E::InvalidKey => (StatusCode::UNAUTHORIZED, "invalid_key"),
        E::ExpiredKey => (StatusCode::UNAUTHORIZED, "expired_key"),
        E::Forbidden { .. } | E::NeedsScope { .. } => (StatusCode::FORBIDDEN, "forbidden"),
        E::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        E::Rejected(_) => (StatusCode::BAD_REQUEST, "rejected"),
        E::Govern(g) => match g {
            GovernError::UnknownPurpose { .. } => (StatusCode::BAD_REQUEST, "invalid_purpose"),
            GovernError::InvalidKey => (StatusCode::UNAUTHORIZED, "invalid_key"),
            GovernError::ExpiredKey => (StatusCode::UNAUTHORIZED, "expired_key"),
            GovernError::BadScope(_) | GovernError::BadKeyId(_) => {
                (StatusCode::BAD_REQUEST, "invalid_value")
            }
            GovernError::DuplicateKey(_) => (StatusCode::CONFLICT, "key_exists"),
            GovernError::UnknownKey(_) => (StatusCode::NOT_FOUND, "unknown_key"),
            GovernError::ConfiguredKey(_) => (StatusCode::CONFLICT, "configured_key"),
            GovernError::KeyLength(_) | GovernError::Policy(_) | GovernError::MasterKeyFormat => {
                (StatusCode::INTERNAL_SERVER_ERROR, "config_error")
            }
            GovernError::Sealed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "corrupt_record"),
            GovernError::ReservedActor => (StatusCode::FORBIDDEN, "forbidden"),
            GovernError::AuditIo { .. } | GovernError::AuditBroken(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "audit_failed")
            }
        },
        E::Audit(_) => (StatusCode::INTERNAL_SERVER_ERROR, "audit_failed"),
        E::Config { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "config_error"),
        E::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
        E::Io { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "io_error"),
        E::Corrupt { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "corrupt_record"),
        E::Import { .. } => (StatusCode::BAD_REQUEST, "import_failed"),
        E::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid_value"),
        E::UnknownPerson(_) => (StatusCode::NOT_FOUND, "unknown_person"),
        E::ConsentRequired { .. } => (StatusCode::FORBIDDEN, "consent_required"),
        E::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
        E::Derived { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "derived_store_failed"),
    }
}

/// Query and analysis errors: the same table, for `iob-query`'s error type.
pub fn classify_query(e: &iob_query::QueryError) -> (StatusCode, &'static str) {
    use iob_query::QueryError as Q;
    match e {
        Q::Engine(e) => classify(e),
        Q::Sql(_) => (StatusCode::BAD_REQUEST, "invalid_sql"),
        Q::UnknownTable(_) => (StatusCode::BAD_REQUEST, "unknown_table"),
        Q::Format(_) => (StatusCode::BAD_REQUEST, "invalid_value"),
        Q::Execution(_) => (StatusCode::UNPROCESSABLE_ENTITY, "query_failed"),
        Q::Columnar(_) => (StatusCode::INTERNAL_SERVER_ERROR, "columnar_store_failed"),
        Q::Analysis(iob_query::AnalysisError::Source(_)) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "columnar_store_failed")
        }
        Q::Analysis(_) => (StatusCode::BAD_REQUEST, "invalid_analysis"),
    }
}

impl From<iob_query::QueryError> for Problem {
    fn from(e: iob_query::QueryError) -> Self {
        if let iob_query::QueryError::Engine(inner) = e {
            return inner.into();
        }
        let (status, code) = classify_query(&e);
        let field = match &e {
            iob_query::QueryError::Sql(_) | iob_query::QueryError::UnknownTable(_) => Some("sql"),
            iob_query::QueryError::Format(_) => Some("format"),
            iob_query::QueryError::Analysis(iob_query::AnalysisError::Request {
                field, ..
            }) => Some(field.as_str()),
            iob_query::QueryError::Analysis(iob_query::AnalysisError::MissingColumn { column }) => {
                Some(column.as_str())
            }
            _ => None,
        };
        let p = Problem::new(status, code, e.to_string());
        match field {
            Some(f) => p.with("field", json!(f)),
            None => p,
        }
    }
}

fn rejection_json(r: &RejectedItem) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

impl From<EngineError> for Problem {
    fn from(e: EngineError) -> Self {
        let (status, code) = classify(&e);
        match e {
            EngineError::Rejected(item) => {
                // The rejection's own code (malformed_json, missing_field, ...) is the answer's code.
                Problem::new(
                    status,
                    item.rejection.code.as_str(),
                    item.rejection.message.clone(),
                )
                .with("field", json!(item.rejection.field))
                .with("quarantine_id", json!(item.quarantine_id))
            }
            EngineError::Invalid { field, reason } => {
                Problem::new(status, code, format!("`{field}`: {reason}"))
                    .with("field", json!(field))
            }
            EngineError::RateLimited { retry_after } => {
                let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
                let detail = EngineError::RateLimited { retry_after }.to_string();
                let mut p = Problem::new(status, code, detail)
                    .with("retry_after_ms", json!(retry_after.as_millis() as u64));
                p.retry_after = Some(secs);
                p
            }
            // The identifier is personal data: not echoed back.
            EngineError::UnknownPerson(_) => {
                Problem::new(status, code, "no person is known by this identifier")
            }
            EngineError::ConsentRequired { ref purpose, .. } => {
                let purpose = purpose.clone();
                Problem::new(status, code, e.to_string()).with("purpose", json!(purpose))
            }
            other => {
                if status.is_server_error() {
                    tracing::error!(error = %other, code, "request failed");
                }
                Problem::new(status, code, other.to_string())
            }
        }
    }
}

impl From<iob_recommend::RecommendError> for Problem {
    fn from(e: iob_recommend::RecommendError) -> Self {
        use iob_recommend::RecommendError as R;
        match e {
            R::Engine(e) => e.into(),
            R::Invalid { field, reason } => EngineError::Invalid { field, reason }.into(),
            R::Artifact { .. } => Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "model_unreadable",
                e.to_string(),
            ),
            R::Training { .. } => Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "training_failed",
                e.to_string(),
            ),
            R::Io { .. } => {
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "io_error", e.to_string())
            }
            R::Dataset { .. } => {
                Problem::new(StatusCode::BAD_REQUEST, "invalid_value", e.to_string())
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": format!("urn:iob:error:{}", self.code),
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        if let Value::Object(extra) = self.extra {
            for (k, v) in extra {
                body[k] = v;
            }
        }
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"iob\""),
            );
        }
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        resp
    }
}

/// A request refused for its key on a route that needs `need`: 401 (missing, invalid or expired
/// key), 403 (the key's scope does not grant it) or 429 (over the key's rate). Every answer
/// names the scopes that would do.
pub fn denied(e: EngineError, need: Need) -> Problem {
    let p = match e {
        EngineError::MissingKey => {
            let (status, code) = classify(&e);
            Problem::new(
                status,
                code,
                format!(
                    "this endpoint needs an API key with scope {}: send `Authorization: Bearer KEY`",
                    need.scopes().join(" or ")
                ),
            )
        }
        EngineError::NeedsScope { have, .. } => Problem::from(e).with("scope", json!(have)),
        other => Problem::from(other),
    };
    p.with("required_scopes", json!(need.scopes()))
}

/// An `Authorization` header that is neither `Bearer KEY` nor `Basic base64(KEY:)`.
pub fn malformed_authorization(need: Need) -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "malformed_authorization",
        "the Authorization header must be `Bearer KEY` or `Basic base64(KEY:)`",
    )
    .with("required_scopes", json!(need.scopes()))
}

/// A batch where every item was rejected: 400 with each item's reason.
pub fn all_rejected(items: &[RejectedItem]) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "rejected",
        format!(
            "all {} events of the batch were rejected; see `errors`",
            items.len()
        ),
    )
    .with(
        "errors",
        Value::Array(items.iter().map(rejection_json).collect()),
    )
}

/// The body could not be read: too large (after decompression), bad gzip, or a broken stream.
pub fn body_error(e: axum::extract::rejection::BytesRejection) -> Problem {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(
            status,
            "too_large",
            "the request body is larger than server.max_body_bytes (after decompression); split the batch",
        )
    } else {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "unreadable_body",
            format!("the request body could not be read: {e} (is Content-Encoding correct?)"),
        )
    }
}

pub async fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see the README for the API",
    )
}

pub async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method (collector endpoints take POST)",
    )
}
