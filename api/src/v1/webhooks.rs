//! Outbound webhook subscriptions over HTTP (owners and admins): create,
//! read, change, delete, rotate the signing secret, list deliveries, send
//! one again, send a test ping. The secret is in the answer to creating
//! and rotating only.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use textbank_app::{
    CreatedWebhook, DeliveryPage, DeliveryView, NewWebhook, RotatedSecret, WebhookChange,
    WebhookView,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{Auth, Body, Path, Query, path_id};
use crate::route_table::RouteTable;
use crate::server::AppState;

pub fn routes() -> RouteTable {
    RouteTable::new()
        .routes(routes!(create, list))
        .routes(routes!(get_one, change, delete))
        .routes(routes!(rotate_secret))
        .routes(routes!(deliveries))
        .routes(routes!(retry))
        .routes(routes!(ping))
}

fn webhook_id(raw: &str) -> Result<Uuid, ApiError> {
    path_id(raw, "webhook")
}

/// Subscribes a receiver to the organization's events from now on. The
/// answer carries the signing secret, shown this once.
#[utoipa::path(
    post,
    path = "/v1/webhooks",
    operation_id = "create_webhook",
    tag = "outbound-webhooks",
    request_body = NewWebhook,
    responses(
        (status = 201, description = "The subscription, with its signing secret", body = CreatedWebhook),
        (status = 422, description = "`invalid_request`: a malformed URL, event type or description; `address_not_allowed`: the URL is plain http or names a loopback, private, link-local or otherwise internal address", body = ApiError),
        (status = 429, description = "`too_many_webhooks`: the organization has the most subscriptions it may have", body = ApiError),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(body): Body<NewWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let created = state.app.create_webhook(&caller, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Webhooks {
    webhooks: Vec<WebhookView>,
}

/// The organization's subscriptions, oldest first (never their secrets).
#[utoipa::path(
    get,
    path = "/v1/webhooks",
    operation_id = "list_webhooks",
    tag = "outbound-webhooks",
    responses((status = 200, description = "Every subscription", body = Webhooks)),
)]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Webhooks>, ApiError> {
    let webhooks = state.app.webhooks(&caller).await?;
    Ok(Json(Webhooks { webhooks }))
}

/// One subscription: its settings, whether it is active, disabled or
/// failing, and how far it has delivered.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{webhook_id}",
    operation_id = "get_webhook",
    tag = "outbound-webhooks",
    params(("webhook_id" = Uuid, Path, description = "The subscription's id")),
    responses((status = 200, description = "The subscription", body = WebhookView)),
)]
pub async fn get_one(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(raw): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(state.app.webhook(&caller, webhook_id(&raw)?).await?))
}

/// Changes the fields given. `enabled: true` also clears a failing state:
/// delivery resumes with the event that failed.
#[utoipa::path(
    patch,
    path = "/v1/webhooks/{webhook_id}",
    operation_id = "change_webhook",
    tag = "outbound-webhooks",
    params(("webhook_id" = Uuid, Path, description = "The subscription's id")),
    request_body = WebhookChange,
    responses(
        (status = 200, description = "The subscription as changed", body = WebhookView),
        (status = 422, description = "`invalid_request`: a malformed URL, event type or description; `address_not_allowed`: the URL is plain http or names an internal address", body = ApiError),
    ),
)]
pub async fn change(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(raw): Path<String>,
    Body(body): Body<WebhookChange>,
) -> Result<Json<WebhookView>, ApiError> {
    let id = webhook_id(&raw)?;
    Ok(Json(state.app.change_webhook(&caller, id, body).await?))
}

/// Deletes the subscription and its delivery record; nothing more is sent.
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{webhook_id}",
    operation_id = "delete_webhook",
    tag = "outbound-webhooks",
    params(("webhook_id" = Uuid, Path, description = "The subscription's id")),
    responses((status = 204, description = "Deleted (again, if it already was)")),
)]
pub async fn delete(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.app.delete_webhook(&caller, webhook_id(&raw)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the signing secret; the answer carries the new one, shown this
/// once. Deliveries from now on are signed with it.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{webhook_id}/rotate-secret",
    operation_id = "rotate_webhook_secret",
    tag = "outbound-webhooks",
    params(("webhook_id" = Uuid, Path, description = "The subscription's id")),
    responses((status = 200, description = "The new secret", body = RotatedSecret)),
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(raw): Path<String>,
) -> Result<Json<RotatedSecret>, ApiError> {
    let id = webhook_id(&raw)?;
    Ok(Json(state.app.rotate_webhook_secret(&caller, id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
    /// At most this many deliveries (1–200, default 50).
    #[serde(default)]
    limit: Option<u32>,
}

/// The subscription's deliveries, newest first, each with its attempts
/// (time, status code, latency, error, a short excerpt of the answer).
#[utoipa::path(
    get,
    path = "/v1/webhooks/{webhook_id}/deliveries",
    operation_id = "list_webhook_deliveries",
    tag = "outbound-webhooks",
    params(("webhook_id" = Uuid, Path, description = "The subscription's id"), DeliveryParams),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 422, description = "`invalid_request`: a bad `cursor` or `limit`", body = ApiError),
    ),
)]
pub async fn deliveries(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(raw): Path<String>,
    Query(params): Query<DeliveryParams>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let id = webhook_id(&raw)?;
    let page = state
        .app
        .webhook_deliveries(&caller, id, params.cursor.as_deref(), params.limit)
        .await?;
    Ok(Json(page))
}

/// Sends a delivery that failed (or succeeded and is wanted again) once
/// more, now, with the same `webhook-id`; answers with the attempt added.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
    operation_id = "retry_webhook_delivery",
    tag = "outbound-webhooks",
    params(
        ("webhook_id" = Uuid, Path, description = "The subscription's id"),
        ("delivery_id" = Uuid, Path, description = "The delivery's id"),
    ),
    responses(
        (status = 200, description = "The delivery with the new attempt (its status says whether the receiver took it)", body = DeliveryView),
        (status = 409, description = "`conflict`: the server is still retrying this delivery", body = ApiError),
    ),
)]
pub async fn retry(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path((raw_webhook, raw_delivery)): Path<(String, String)>,
) -> Result<Json<DeliveryView>, ApiError> {
    let id = webhook_id(&raw_webhook)?;
    let delivery_id: Uuid = path_id(&raw_delivery, "delivery")?;
    let retried = state
        .app
        .retry_webhook_delivery(&caller, id, delivery_id)
        .await?;
    Ok(Json(retried))
}

/// Sends a test ping (type `WebhookPing`, signed like every delivery) now,
/// whether the subscription is enabled or not; answers with the attempt.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{webhook_id}/ping",
    operation_id = "ping_webhook",
    tag = "outbound-webhooks",
    params(("webhook_id" = Uuid, Path, description = "The subscription's id")),
    responses((status = 200, description = "The ping's delivery (its status says whether the receiver took it)", body = DeliveryView)),
)]
pub async fn ping(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(raw): Path<String>,
) -> Result<Json<DeliveryView>, ApiError> {
    Ok(Json(
        state.app.ping_webhook(&caller, webhook_id(&raw)?).await?,
    ))
}
