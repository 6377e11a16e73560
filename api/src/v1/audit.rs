//! The compliance audit over HTTP: message search and its CSV export, one
//! message's trail, one phone's history, refused attempts, hash-chain
//! verification and a texter's click cadence. Parameters are parsed by the
//! app layer, so every bad one answers 422 `invalid_request` naming it.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use textbank_app::audit::{BlockedParams, MessageParams, MessageSearch, RangeParams};
use textbank_domain::{MemberId, MessageId};

use crate::error::ApiError;
use crate::extract::{Auth, Path, Query, path_id};
use crate::route_table::RouteTable;
use crate::server::AppState;
use crate::v1::{csv_attachment, to_json};

pub fn routes() -> RouteTable {
    RouteTable::new()
        .get("/v1/audit/messages", messages)
        .get("/v1/audit/messages/{message_id}", message)
        .get("/v1/audit/phones/{phone}", phone)
        .get("/v1/audit/blocked", blocked)
        .get("/v1/audit/export.csv", export)
        .get("/v1/audit/verify", verify)
        .get("/v1/audit/texters/{texter_id}/cadence", cadence)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrailQuery {
    #[serde(default)]
    min_position: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyQuery {
    #[serde(default)]
    stream: Option<String>,
}

pub async fn messages(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(params): Query<MessageParams>,
) -> Result<Json<Value>, ApiError> {
    let search = MessageSearch::parse(&params, state.app.default_region())?;
    to_json(state.app.audit_messages(&caller, &search).await?)
}

pub async fn message(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(message_id): Path<String>,
    Query(params): Query<TrailQuery>,
) -> Result<Json<Value>, ApiError> {
    let message_id: MessageId = path_id(&message_id, "message")?;
    let min_position = textbank_app::parse_min_position(params.min_position.as_deref())?;
    to_json(
        state
            .app
            .audit_message(&caller, message_id, min_position)
            .await?,
    )
}

pub async fn phone(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(phone): Path<String>,
) -> Result<Json<Value>, ApiError> {
    to_json(state.app.audit_phone(&caller, &phone).await?)
}

pub async fn blocked(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(params): Query<BlockedParams>,
) -> Result<Json<Value>, ApiError> {
    to_json(state.app.audit_blocked(&caller, &params).await?)
}

/// The same rows as `/v1/audit/messages`, every one, as CSV streamed off
/// one database cursor.
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

pub async fn verify(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(params): Query<VerifyQuery>,
) -> Result<Json<Value>, ApiError> {
    to_json(
        state
            .app
            .audit_verify(&caller, params.stream.as_deref())
            .await?,
    )
}

pub async fn cadence(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(texter_id): Path<String>,
    Query(params): Query<RangeParams>,
) -> Result<Json<Value>, ApiError> {
    let texter_id: MemberId = path_id(&texter_id, "texter")?;
    to_json(
        state
            .app
            .texter_cadence(&caller, texter_id, &params)
            .await?,
    )
}
