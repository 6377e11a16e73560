//! The send path over HTTP: a texter's queue, the click that sends one
//! message, and a conversation's thread, replies, opt-out and answers.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use textbank_app::{Click, ReplyBody};
use textbank_domain::{CampaignId, ConversationId};

use crate::error::ApiError;
use crate::extract::{Auth, Body, Path, Query, path_id};
use crate::server::AppState;
use crate::v1::to_json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    campaign_id: String,
    #[serde(default)]
    limit: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickBody {
    click_token: String,
    /// When the texter's client registered the click (its own clock).
    #[serde(default)]
    clicked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyRequest {
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    canned_response_id: Option<usize>,
    #[serde(default)]
    clicked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptOutRequest {
    /// Send the organization's opt-out confirmation text (default: yes).
    #[serde(default)]
    send_confirmation: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    question_id: String,
    answer: String,
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    headers
        .get("idempotency-key")
        .map(|value| {
            value.to_str().map(str::to_owned).map_err(|_| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_request",
                    "Idempotency-Key must be visible ASCII",
                )
            })
        })
        .transpose()
}

fn conversation_id(raw: &str) -> Result<ConversationId, ApiError> {
    path_id(raw, "conversation")
}

pub async fn queue(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(query): Query<QueueQuery>,
) -> Result<Json<Value>, ApiError> {
    let campaign_id: CampaignId = path_id(&query.campaign_id, "campaign")?;
    let queue = state
        .app
        .texter_queue(&caller, campaign_id, query.limit.unwrap_or(10))
        .await?;
    to_json(queue)
}

pub async fn send(
    State(state): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Body(body): Body<ClickBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let click = Click {
        click_token: body.click_token,
        clicked_at: body.clicked_at,
        idempotency_key: idempotency_key(&headers)?,
    };
    let sent = state.app.click_send(&caller, click).await?;
    Ok((StatusCode::ACCEPTED, to_json(sent)?))
}

pub async fn thread(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let thread = state.app.thread(&caller, conversation_id(&id)?).await?;
    to_json(thread)
}

pub async fn reply(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<ReplyRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let reply = match (body.body, body.canned_response_id) {
        (Some(text), None) => ReplyBody::Text(text),
        (None, Some(index)) => ReplyBody::Canned(index),
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "give exactly one of body and canned_response_id",
            ));
        }
    };
    let sent = state
        .app
        .reply(
            &caller,
            conversation_id(&id)?,
            reply,
            body.clicked_at,
            idempotency_key(&headers)?,
        )
        .await?;
    Ok((StatusCode::ACCEPTED, to_json(sent)?))
}

pub async fn opt_out(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    // The body is optional: none means the defaults.
    let request: OptOutRequest = if body.iter().all(u8::is_ascii_whitespace) {
        OptOutRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|err| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                err.to_string(),
            )
        })?
    };
    let position = state
        .app
        .mark_opt_out(
            &caller,
            conversation_id(&id)?,
            request.send_confirmation.unwrap_or(true),
        )
        .await?;
    Ok(Json(json!({
        "opted_out": true,
        "already_opted_out": position.is_none(),
        "position": position,
    })))
}

pub async fn answer(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(body): Body<AnswerRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let position = state
        .app
        .record_answer(
            &caller,
            conversation_id(&id)?,
            &body.question_id,
            &body.answer,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "position": position }))))
}
