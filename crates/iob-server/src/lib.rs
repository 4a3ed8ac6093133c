//! iob's HTTP layer over [`iob_engine::Engine`].
//!
//! * Collector routes at Segment's paths (`/v1/track`, `/v1/batch`, ...) with Segment's write-key
//!   auth, so existing analytics SDKs work by changing only their host; plus `/v1/observe` and
//!   `/v1/consent`.
//! * Person routes (`/v1/persons/{id}`, `/timeline`, `/identity`): profile, journey and identity
//!   explanation, each read under a declared purpose.
//! * Operator routes: `/v1/stats` (aggregates), `/v1/quarantine`, `/v1/quarantine/replay`, `/v1/audit` and
//!   key management (`/v1/keys`, admin only) for when a running server holds the data directory.
//! * `auth::require`: every non-collector route states the [`iob_engine::Need`] it has in one
//!   line; the scope table itself lives in `iob-govern`.
//! * HTTPS with rustls ([`serve_tls`]) when a certificate and key are configured.
//! * Data-subject routes (`DELETE /v1/persons/{id}`, `/v1/persons/{id}/export`): erasure and
//!   export, admin key only.
//! * `GET /v1/decide` (`decide.rs`): recommendations for a person at a placement, under the
//!   `personalization` purpose, with explanations and the reason for any fallback;
//!   `POST /v1/models/train` (admin) retrains the models of a running server.
//! * Analytics routes: `POST /v1/query` (SQL under a declared purpose, `read:personal`) and
//!   `POST /v1/analyses/{kind}` (funnels, retention, paths, trends; small groups suppressed
//!   for keys without `read:personal`).
//! * One table ([`problem`]) maps every engine error to an HTTP status and a stable code.
//! * [`mqtt`]: the MQTT source (readings from a broker subscription, acknowledged once stored).
//!
//! This crate must stay thin: no validation, storage or privacy logic lives here; it never logs
//! request bodies, keys or identifiers.

mod admin;
mod analytics;
mod audit;
mod auth;
mod collect;
mod decide;
mod keys;
pub mod mqtt;
mod persons;
mod privacy;
pub mod problem;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::routing::{delete, get, post};
use iob_engine::{Engine, ServerConfig};
use iob_query::Analytics;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::decompression::RequestDecompressionLayer;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    /// SQL and analyses; `None` in routers built without them (analytics routes answer 503).
    pub analytics: Option<Arc<Analytics>>,
    /// Recommendations (`GET /v1/decide`); `None`: the route answers 503.
    pub recommend: Option<Arc<iob_recommend::Recommender>>,
}

impl AppState {
    /// State with only the engine (collector, persons, privacy, keys): analytics and
    /// recommendation routes answer 503.
    pub fn engine_only(engine: Arc<Engine>) -> Self {
        AppState {
            engine,
            analytics: None,
            recommend: None,
        }
    }

    pub(crate) fn analytics(&self) -> Result<&Arc<Analytics>, problem::Problem> {
        self.analytics.as_ref().ok_or_else(|| {
            problem::Problem::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "analytics_unavailable",
                "this server was started without the analytics service",
            )
        })
    }
}

/// The full router for `engine` configured by `cfg`, without analytics or recommendations.
pub fn router(engine: Arc<Engine>, cfg: &ServerConfig) -> Router {
    router_with(AppState::engine_only(engine), cfg)
}

/// The full router over `state`.
pub fn router_with(state: AppState, cfg: &ServerConfig) -> Router {
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
        .route(
            "/v1/persons/{id}",
            get(persons::profile).delete(privacy::erase),
        )
        .route("/v1/persons/{id}/export", get(privacy::export))
        .route("/v1/persons/{id}/timeline", get(persons::timeline))
        .route("/v1/persons/{id}/identity", get(persons::identity))
        .route("/v1/persons/{id}/consent", get(persons::consent))
        .route("/v1/keys", get(keys::list).post(keys::create))
        .route("/v1/keys/{id}", delete(keys::revoke))
        .route("/v1/decide", get(decide::decide))
        .route("/v1/models/train", post(decide::train))
        .route("/v1/query", post(analytics::query))
        .route("/v1/analyses/{kind}", post(analytics::analysis))
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
        .with_state(state)
}

/// A loaded TLS certificate and key for [`serve_tls`].
pub type TlsConfig = axum_server::tls_rustls::RustlsConfig;

/// Reads a PEM certificate chain and private key for HTTPS (rustls with the ring provider).
pub async fn load_tls(cert: &std::path::Path, key: &std::path::Path) -> std::io::Result<TlsConfig> {
    // One crypto provider for the process, whatever features other crates turn on; an error
    // means one is already installed, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    TlsConfig::from_pem_file(cert, key).await
}

/// [`serve`] over HTTPS: TLS is terminated here with `tls`; everything else is the same.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: TlsConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(None);
    });
    axum_server::from_tcp_rustls(listener.into_std()?, tls)?
        .handle(handle)
        .serve(router.into_make_service_with_connect_info::<SocketAddr>())
        .await
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
