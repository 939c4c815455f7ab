//! The probes (`/healthz`, `/readyz`) and the metrics (`/metrics`, and the middleware that counts
//! every request by its route).

use std::time::Duration;

use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};

use super::error::ApiError;
use crate::server::state::AppState;

/// The routes, merged into the application router.
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// How long `/readyz` waits for the database before it says not ready.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The OpenAPI operations of the probes and the metrics.
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, readyz, metrics))]
pub struct Doc;

/// The process is alive.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct Health {
    /// Always `ok`.
    status: String,
    version: String,
    /// This process (a row of the `instances` table).
    instance_id: String,
}

/// The process is up and serving. Never touches the database.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "server",
    responses((status = 200, description = "Alive", body = Health)),
)]
async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        instance_id: state.instance.id.to_string(),
    })
}

/// The process can do its work.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct Ready {
    /// Always `ready`.
    status: String,
    database: crate::server::store::Backend,
}

/// The process can do its work: its database answers within 2 s and it is not stopping. 503 says
/// which (`shutting_down`, `database_unavailable`).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "server",
    responses((status = 200, description = "Ready", body = Ready)),
)]
async fn readyz(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::Unavailable {
            code: "shutting_down",
            message: "this Baton process is shutting down; send requests to another one".into(),
        });
    }
    let unavailable = || ApiError::Unavailable {
        code: "database_unavailable",
        message: "the database does not answer; check BATON_DATABASE_URL and that the database \
                  server is running"
            .into(),
    };
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(Json(Ready {
            status: "ready".into(),
            database: state.store.backend(),
        })),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness check: database error");
            Err(unavailable())
        }
        Err(_) => {
            tracing::warn!(timeout = ?READY_TIMEOUT, "readiness check: database timed out");
            Err(unavailable())
        }
    }
}

/// Every metric in the OpenMetrics text format, for Prometheus; the database is asked two cheap
/// questions (the waiting and running jobs, the open order forms).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "server",
    responses((status = 200, description = "The metrics", content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String)),
)]
async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    use crate::server::metrics::{Live, CONTENT_TYPE};
    let work = state.store.live_work().await?;
    let smart = state.engine.smart_live().await?;
    let (pools, max_connections) = state.store.pool_use();
    let now = chrono::Utc::now();
    let live = Live {
        jobs: work.counts,
        mutex: work
            .mutex
            .map(|(ty, since)| (ty, (now - since).to_std().unwrap_or_default())),
        smart_leases: smart as i64,
        sse_clients: state
            .config
            .sse_clients()
            .saturating_sub(state.sse_slots.available_permits()) as i64,
        pools,
        max_connections,
    };
    let body = state.engine.metrics().render(&live);
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response())
}

/// Counts every request that reached a route (or the fallback) by its route template, method
/// and status, with the time to its response's head.
pub(super) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "(unmatched)".to_string(), |m| m.as_str().to_string());
    let method = request.method().clone();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    state.engine.metrics().request(
        &route,
        method.as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
