//! The compliance audit over HTTP: message search and its CSV export, one
//! message's trail, one phone's history, refused attempts, hash-chain
//! verification and a texter's click cadence. Parameters are parsed by the
//! app layer, so every bad one answers 422 `invalid_request` naming it.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use textbank_app::audit::{
    BlockedPage, BlockedParams, MessagePage, MessageParams, MessageSearch, MessageTrail,
    PhoneHistory, RangeParams, VerifyReport,
};
use textbank_domain::{MemberId, MessageId};
use textbank_projections::audit::Cadence;
use utoipa::IntoParams;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{Auth, Path, Query, path_id};
use crate::route_table::RouteTable;
use crate::server::AppState;
use crate::v1::csv_attachment;

pub fn routes() -> RouteTable {
    RouteTable::new()
        .routes(routes!(messages))
        .routes(routes!(message))
        .routes(routes!(phone))
        .routes(routes!(blocked))
        .routes(routes!(export))
        .routes(routes!(verify))
        .routes(routes!(cadence))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TrailQuery {
    /// A log position the answer must reflect.
    #[serde(default)]
    #[param(value_type = Option<u64>)]
    min_position: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// One stream to check (e.g. `recipient-…`); the whole organization's
    /// by default.
    #[serde(default)]
    stream: Option<String>,
}

/// Searches the organization's messages (both ways), newest first, page by
/// page: who clicked, when the message was shown and clicked, what was
/// checked, what the carrier said.
#[utoipa::path(
    get,
    path = "/v1/audit/messages",
    tag = "audit",
    params(MessageParams),
    responses(
        (status = 200, description = "A page of messages", body = MessagePage),
        (status = 422, description = "`invalid_request`: a parameter that does not parse (named in the message)", body = ApiError),
    ),
)]
pub async fn messages(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(params): Query<MessageParams>,
) -> Result<Json<MessagePage>, ApiError> {
    let search = MessageSearch::parse(&params, state.app.default_region())?;
    Ok(Json(state.app.audit_messages(&caller, &search).await?))
}

/// One message's trail: its row, every event of it in order, and its
/// recipient stream's hash chain recomputed now.
#[utoipa::path(
    get,
    path = "/v1/audit/messages/{message_id}",
    operation_id = "audit_message",
    tag = "audit",
    params(("message_id" = uuid::Uuid, Path, description = "The message's id"), TrailQuery),
    responses(
        (status = 200, description = "The trail", body = MessageTrail),
    ),
)]
pub async fn message(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(message_id): Path<String>,
    Query(params): Query<TrailQuery>,
) -> Result<Json<MessageTrail>, ApiError> {
    let message_id: MessageId = path_id(&message_id, "message")?;
    let min_position = textbank_app::parse_min_position(params.min_position.as_deref())?;
    Ok(Json(
        state
            .app
            .audit_message(&caller, message_id, min_position)
            .await?,
    ))
}

/// Everything about one phone number: the lists and campaigns it is in,
/// every message, opt-outs and opt-ins, refused attempts, survey answers.
#[utoipa::path(
    get,
    path = "/v1/audit/phones/{phone}",
    operation_id = "audit_phone",
    tag = "audit",
    params(("phone" = String, Path, description = "The number (E.164, or national in the server's default region)")),
    responses(
        (status = 200, description = "The number's history", body = PhoneHistory),
        (status = 422, description = "`invalid_request`: not a phone number", body = ApiError),
    ),
)]
pub async fn phone(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(phone): Path<String>,
) -> Result<Json<PhoneHistory>, ApiError> {
    Ok(Json(state.app.audit_phone(&caller, &phone).await?))
}

/// Send attempts that were refused (opted out, quiet hours, …), newest
/// first, page by page, with counts by reason.
#[utoipa::path(
    get,
    path = "/v1/audit/blocked",
    operation_id = "audit_blocked",
    tag = "audit",
    params(BlockedParams),
    responses(
        (status = 200, description = "A page of refused attempts", body = BlockedPage),
        (status = 422, description = "`invalid_request`: a parameter that does not parse (named in the message)", body = ApiError),
    ),
)]
pub async fn blocked(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(params): Query<BlockedParams>,
) -> Result<Json<BlockedPage>, ApiError> {
    Ok(Json(state.app.audit_blocked(&caller, &params).await?))
}

/// The same rows as `/v1/audit/messages`, every one, as CSV streamed off
/// one database cursor.
#[utoipa::path(
    get,
    path = "/v1/audit/export.csv",
    operation_id = "audit_export",
    tag = "audit",
    params(MessageParams),
    responses(
        (status = 200, description = "The messages as CSV", content_type = "text/csv", body = String),
        (status = 422, description = "`invalid_request`: a parameter that does not parse (named in the message)", body = ApiError),
    ),
)]
pub async fn export(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(params): Query<MessageParams>,
) -> Result<Response, ApiError> {
    let search = MessageSearch::parse(&params, state.app.default_region())?;
    // Refusals (403, 422, 503) are answered before the body starts.
    let chunks = state.app.audit_export(&caller, &search).await?;
    Ok(csv_attachment(chunks, "audit-messages.csv"))
}

/// Recomputes the hash chains of the organization's streams (or one
/// stream's) and says whether any event was altered.
#[utoipa::path(
    get,
    path = "/v1/audit/verify",
    operation_id = "audit_verify",
    tag = "audit",
    params(VerifyQuery),
    responses(
        (status = 200, description = "The verification", body = VerifyReport),
        (status = 404, description = "`not_found`: no such stream in the caller's organization", body = ApiError),
    ),
)]
pub async fn verify(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(params): Query<VerifyQuery>,
) -> Result<Json<VerifyReport>, ApiError> {
    Ok(Json(
        state
            .app
            .audit_verify(&caller, params.stream.as_deref())
            .await?,
    ))
}

/// A texter's click cadence: time from display to click, clicks per
/// minute, regularity, and whether it looks automated.
#[utoipa::path(
    get,
    path = "/v1/audit/texters/{texter_id}/cadence",
    operation_id = "audit_cadence",
    tag = "audit",
    params(("texter_id" = uuid::Uuid, Path, description = "The texter's member id"), RangeParams),
    responses(
        (status = 200, description = "The cadence", body = Cadence),
        (status = 422, description = "`invalid_request`: a parameter that does not parse (named in the message)", body = ApiError),
    ),
)]
pub async fn cadence(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(texter_id): Path<String>,
    Query(params): Query<RangeParams>,
) -> Result<Json<Cadence>, ApiError> {
    let texter_id: MemberId = path_id(&texter_id, "texter")?;
    Ok(Json(
        state
            .app
            .texter_cadence(&caller, texter_id, &params)
            .await?,
    ))
}
