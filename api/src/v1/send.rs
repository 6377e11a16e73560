//! The send path over HTTP: a texter's queue, the click that sends one
//! message, and a conversation's thread, replies, opt-out and answers.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use textbank_app::{Click, Queue, ReplyBody, Sent, Thread};
use textbank_domain::{CampaignId, ConversationId};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{Auth, Body, Path, Query, path_id};
use crate::server::AppState;
use crate::v1::ConversationPath;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// The campaign whose queue to show.
    #[param(value_type = uuid::Uuid)]
    campaign_id: String,
    /// How many messages to present (default 10).
    #[serde(default)]
    limit: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClickBody {
    click_token: String,
    /// When the texter's client registered the click (its own clock).
    #[serde(default)]
    clicked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
/// Exactly one of `body` and `canned_response_id`.
pub struct ReplyRequest {
    /// The reply's text.
    #[serde(default)]
    body: Option<String>,
    /// The index of one of the script's canned responses.
    #[serde(default)]
    canned_response_id: Option<usize>,
    #[serde(default)]
    clicked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptOutRequest {
    /// Send the organization's opt-out confirmation text (default: yes).
    #[serde(default)]
    send_confirmation: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
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

/// The caller's next messages in a campaign, each rendered and with the
/// single-use click token that sends it.
#[utoipa::path(
    get,
    path = "/v1/texter/queue",
    tag = "send",
    params(QueueQuery),
    responses(
        (status = 200, description = "The queue", body = Queue),
        (status = 404, description = "`not_found`: no such campaign in the caller's organization", body = ApiError),
        (status = 422, description = "`invalid_request`: a limit out of range", body = ApiError),
    ),
)]
pub async fn queue(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(query): Query<QueueQuery>,
) -> Result<Json<Queue>, ApiError> {
    let campaign_id: CampaignId = path_id(&query.campaign_id, "campaign")?;
    let queue = state
        .app
        .texter_queue(&caller, campaign_id, query.limit.unwrap_or(10))
        .await?;
    Ok(Json(queue))
}

/// Sends one initial message: the texter's click on a message of their
/// queue, named by its click token. One click, one message. A repeated
/// click (same token, or same `Idempotency-Key`) answers the first one's
/// result with `duplicate: true`.
#[utoipa::path(
    post,
    path = "/v1/messages",
    tag = "send",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried click safe: the same key answers the same result")),
    request_body = ClickBody,
    responses(
        (status = 202, description = "Accepted: the message is on its way to the carrier", body = Sent),
        (status = 403, description = "`not_your_token`: another texter's token; `not_assigned`: the contact is no longer assigned to the caller", body = ApiError),
        (status = 409, description = "`opted_out`: the number opted out; `quiet_hours`: outside the recipient's texting hours (`next_open`); `campaign_not_open`: the campaign is not live; `token_used`: this token was clicked before with another key; `already_messaged`: the contact was messaged already; `no_carrier`: the organization has no carrier configured; `conflict`: the conversation moved, try again", body = ApiError),
        (status = 410, description = "`token_expired`: the message was shown too long ago; fetch the queue again", body = ApiError),
        (status = 422, description = "`token_invalid`: not a token this server made; `idempotency_key_reused`: the key was used for another click; `message_too_long`: the rendered message is over the length limit; `invalid_request`: a bad Idempotency-Key", body = ApiError),
        (status = 429, description = "`too_fast`: faster than a person clicks", body = ApiError),
    ),
)]
pub async fn send(
    State(state): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Body(body): Body<ClickBody>,
) -> Result<(StatusCode, Json<Sent>), ApiError> {
    let click = Click {
        click_token: body.click_token,
        clicked_at: body.clicked_at,
        idempotency_key: idempotency_key(&headers)?,
    };
    let sent = state.app.click_send(&caller, click).await?;
    Ok((StatusCode::ACCEPTED, Json(sent)))
}

/// A conversation: its messages both ways, survey answers, opt-out state.
#[utoipa::path(
    get,
    path = "/v1/conversations/{conversation_id}",
    tag = "send",
    params(ConversationPath),
    responses(
        (status = 200, description = "The conversation", body = Thread),
    ),
)]
pub async fn thread(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<Thread>, ApiError> {
    let thread = state.app.thread(&caller, conversation_id(&id)?).await?;
    Ok(Json(thread))
}

/// Replies in a conversation: a text or one of the script's canned
/// responses. Like the initial message, one click, one message.
#[utoipa::path(
    post,
    path = "/v1/conversations/{conversation_id}/messages",
    tag = "send",
    params(ConversationPath, ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried click safe: the same key answers the same result")),
    request_body = ReplyRequest,
    responses(
        (status = 202, description = "Accepted: the reply is on its way to the carrier", body = Sent),
        (status = 403, description = "`not_assigned`: the conversation is not the caller's", body = ApiError),
        (status = 404, description = "`not_found`: no such conversation, or no such canned response", body = ApiError),
        (status = 409, description = "`opted_out`: the number opted out; `quiet_hours`: outside the recipient's texting hours (`next_open`); `campaign_not_open`: the campaign is archived; `no_carrier`: the organization has no carrier configured; `conflict`: the conversation moved, try again", body = ApiError),
        (status = 422, description = "`invalid_request`: neither or both of body and canned_response_id, an empty or too long text, a bad Idempotency-Key; `idempotency_key_reused`: the key was used for another reply; `message_too_long`: the message is over the length limit", body = ApiError),
        (status = 429, description = "`too_fast`: faster than a person clicks", body = ApiError),
    ),
)]
pub async fn reply(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<ReplyRequest>,
) -> Result<(StatusCode, Json<Sent>), ApiError> {
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
    Ok((StatusCode::ACCEPTED, Json(sent)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OptedOut {
    opted_out: bool,
    /// The number had opted out already; nothing was recorded.
    already_opted_out: bool,
    /// The log position of the opt-out; none when nothing was recorded.
    position: Option<u64>,
}

/// The texter marks the voter as opted out (they asked in words a keyword
/// would not catch). The body is optional.
#[utoipa::path(
    post,
    path = "/v1/conversations/{conversation_id}/opt-out",
    tag = "send",
    params(ConversationPath),
    request_body = Option<OptOutRequest>,
    responses(
        (status = 200, description = "The number is opted out", body = OptedOut),
        (status = 403, description = "`not_assigned`: the conversation is not the caller's", body = ApiError),
        (status = 409, description = "`conflict`: no carrier is configured to send the confirmation, or the number's stream moved", body = ApiError),
    ),
)]
pub async fn opt_out(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<OptedOut>, ApiError> {
    // The body is optional: none means the defaults.
    let request: OptOutRequest = crate::v1::optional_body(&body)?;
    let position = state
        .app
        .mark_opt_out(
            &caller,
            conversation_id(&id)?,
            request.send_confirmation.unwrap_or(true),
        )
        .await?;
    Ok(Json(OptedOut {
        opted_out: true,
        already_opted_out: position.is_none(),
        position,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnswerRecorded {
    position: u64,
}

/// Records the voter's answer to one of the campaign's survey questions.
#[utoipa::path(
    post,
    path = "/v1/conversations/{conversation_id}/answers",
    tag = "send",
    params(ConversationPath),
    request_body = AnswerRequest,
    responses(
        (status = 201, description = "Recorded", body = AnswerRecorded),
        (status = 403, description = "`not_assigned`: the conversation is not the caller's", body = ApiError),
        (status = 422, description = "`invalid_request`: no such question, or an answer it does not offer", body = ApiError),
    ),
)]
pub async fn answer(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(body): Body<AnswerRequest>,
) -> Result<(StatusCode, Json<AnswerRecorded>), ApiError> {
    let position = state
        .app
        .record_answer(
            &caller,
            conversation_id(&id)?,
            &body.question_id,
            &body.answer,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(AnswerRecorded { position })))
}
