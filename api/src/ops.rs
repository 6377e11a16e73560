//! Operational endpoints: liveness, readiness and metrics. They sit outside
//! `/v1` and need no authentication (they reveal nothing about tenants).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::metrics::Gauges;
use crate::server::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`
    status: &'static str,
    /// The server's version.
    version: &'static str,
}

/// The process is up and serving.
#[utoipa::path(
    get,
    path = "/health",
    tag = "ops",
    security(()),
    responses((status = 200, description = "Up", body = Health)),
)]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready`
    status: &'static str,
    /// The storage backend (`sqlite`, `postgres`, …).
    database: &'static str,
    /// Where the event log is: the database's engine, or `kurrentdb`
    /// (ADR 0030); either way it answered.
    event_log: &'static str,
    /// `ok`: a test write succeeded.
    writes: &'static str,
}

/// The process can do its job: the database answers and takes writes.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "ops",
    security(()),
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "`database_unavailable`: the database does not answer; `event_log_unavailable`: the event log (KurrentDB) does not; `storage_unavailable`: the database refuses writes", body = ApiError),
    ),
)]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    if let Err(err) = state.app.ready().await {
        tracing::warn!(error = %err, "readiness check failed");
        return Err(
            ApiError::unavailable("database_unavailable", "the database is not reachable")
                .retry_after_storage(),
        );
    }
    if let Err(err) = state.app.event_log_ready().await {
        tracing::warn!(error = %err, "readiness check failed: the event log does not answer");
        return Err(ApiError::unavailable(
            "event_log_unavailable",
            "the event log is not reachable",
        )
        .retry_after_storage());
    }
    if let Err(err) = state.app.writable().await {
        tracing::warn!(error = %err, "readiness check failed: the database refuses writes");
        return Err(ApiError::unavailable(
            "storage_unavailable",
            "the database answers but refuses writes (a full disk or a read-only volume?)",
        )
        .retry_after_storage());
    }
    Ok(Json(Ready {
        status: "ready",
        database: state.app.events().backend().name(),
        event_log: state.app.events().log_name(),
        writes: "ok",
    }))
}

/// Prometheus metrics: requests by route and status, latencies, the log's
/// head, each projection's position.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    security(()),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)),
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // Read the head before awaiting: a watch borrow must not cross an await.
    let event_log_head = *state.app.events().subscribe().borrow();
    let database_up = state.app.ready().await.is_ok();
    let event_log = state.app.events().log_name();
    let event_log_up = state.app.event_log_ready().await.is_ok();
    let projections = if database_up {
        state.app.projection_positions().await.unwrap_or_default()
    } else {
        Vec::new()
    };
    let gauges = Gauges {
        event_log_head,
        event_log,
        event_log_up,
        database_up,
        projections,
        stages: state.app.stage_times().totals(),
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&gauges),
    )
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
