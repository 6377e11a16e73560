//! Operational endpoints: liveness, readiness and metrics. They sit outside
//! `/v1` and need no authentication (they reveal nothing about tenants).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::metrics::Gauges;
use crate::server::AppState;

/// The process is up and serving.
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

/// The process can do its job: the database answers.
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.app.ready().await {
        Ok(()) => Ok(Json(json!({
            "status": "ready",
            "database": state.app.events().backend().name(),
        }))),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            Err(
                ApiError::unavailable("database_unavailable", "the database is not reachable")
                    .retry_after_storage(),
            )
        }
    }
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // Read the head before awaiting: a watch borrow must not cross an await.
    let event_log_head = *state.app.events().subscribe().borrow();
    let database_up = state.app.ready().await.is_ok();
    let projections = if database_up {
        state.app.projection_positions().await.unwrap_or_default()
    } else {
        Vec::new()
    };
    let gauges = Gauges {
        event_log_head,
        database_up,
        projections,
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
