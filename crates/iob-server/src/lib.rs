//! iob's HTTP layer over [`iob_engine::Engine`].
//!
//! * Collector routes at Segment's paths (`/v1/track`, `/v1/batch`, ...) with Segment's write-key
//!   auth, so existing analytics SDKs work by changing only their host; plus `/v1/observe` and
//!   `/v1/consent`.
//! * Person routes (`/v1/persons/{id}`, `/timeline`, `/identity`): profile, journey and identity
//!   explanation, each read under a declared purpose.
//! * Admin routes (`/v1/stats`, `/v1/quarantine`, `/v1/quarantine/replay`, `/v1/audit`) for
//!   the operator when a running server holds the data directory.
//! * One table ([`problem`]) maps every engine error to an HTTP status and a stable code.
//! * [`mqtt`]: the MQTT source (readings from a broker subscription, acknowledged once stored).
//!
//! This crate must stay thin: no validation, storage or privacy logic lives here; it never logs
//! request bodies, keys or identifiers.

mod admin;
mod audit;
mod auth;
mod collect;
pub mod mqtt;
mod persons;
pub mod problem;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::routing::{get, post};
use iob_engine::{Engine, ServerConfig};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::decompression::RequestDecompressionLayer;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
}

/// The full router for `engine` configured by `cfg`.
pub fn router(engine: Arc<Engine>, cfg: &ServerConfig) -> Router {
    let cors = if cfg.cors_origins.iter().any(|o| o == "*") {
        CorsLayer::new().allow_origin(Any)
    } else {
        let origins: Vec<HeaderValue> = cfg
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        CorsLayer::new().allow_origin(AllowOrigin::list(origins))
    }
    .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
    .allow_headers([
        HeaderName::from_static("authorization"),
        HeaderName::from_static("content-type"),
        HeaderName::from_static("content-encoding"),
    ])
    .max_age(std::time::Duration::from_secs(3600));

    Router::new()
        .route("/v1/batch", post(collect::batch))
        .route("/v1/import", post(collect::batch))
        .route("/v1/{kind}", post(collect::single))
        .route("/v1/persons/{id}", get(persons::profile))
        .route("/v1/persons/{id}/timeline", get(persons::timeline))
        .route("/v1/persons/{id}/identity", get(persons::identity))
        .route("/v1/stats", get(admin::stats))
        .route("/v1/audit", get(audit::list))
        .route("/v1/quarantine", get(admin::quarantine_list))
        .route("/v1/quarantine/replay", post(admin::quarantine_replay))
        .route("/health", get(admin::health))
        .route("/ready", get(admin::ready))
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(DefaultBodyLimit::max(cfg.max_body_bytes))
        .layer(RequestDecompressionLayer::new())
        .layer(cors)
        .with_state(AppState { engine })
}

/// Serves `router` on `listener` until `shutdown` resolves, then waits for in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
