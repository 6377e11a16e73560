//! The inbox over HTTP: the caller's conversations page by page, marking
//! one read, and a Server-Sent Events stream of the rows as they change.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use serde::Deserialize;
use textbank_app::AppError;
use textbank_app::inbox::{
    InboxChange, InboxPage, InboxRequest, InboxStatus, InboxSubscription, MarkedRead, event_id,
};
use textbank_domain::handling::Holder;
use textbank_domain::{CampaignId, ConversationId, MemberId};
use textbank_projections::inbox::ReviewFilter;
use utoipa::IntoParams;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{Auth, Path, Query, path_id};
use crate::route_table::RouteTable;
use crate::server::AppState;
use crate::v1::ConversationPath;
use crate::v1::live::{self, Source, last_event_id};

pub fn routes() -> RouteTable {
    RouteTable::new()
        .routes(routes!(list))
        .routes(routes!(stream))
        .routes(routes!(read))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this campaign's conversations.
    #[serde(default)]
    #[param(value_type = Option<uuid::Uuid>)]
    campaign_id: Option<String>,
    /// Only this texter's (for roles that see every texter's).
    #[serde(default)]
    #[param(value_type = Option<uuid::Uuid>)]
    texter_id: Option<String>,
    /// `needs_reply` (the default), `unread`, `opted_out` or `all`.
    #[serde(default)]
    status: Option<String>,
    /// Only those held so: `texter` (in a texter's inbox), `pool`
    /// (released) or `escalated` (the staff's escalation queue). Texters
    /// always get the ones they hold.
    #[serde(default)]
    holder: Option<String>,
    /// Only those with this tag.
    #[serde(default)]
    #[param(value_type = Option<uuid::Uuid>)]
    tag_id: Option<String>,
    /// Message review: only those whose number has (`true`) or has not
    /// (`false`) opted out.
    #[serde(default)]
    opted_out: Option<bool>,
    /// Message review: only those whose latest message is older than this
    /// (RFC 3339).
    #[serde(default)]
    last_before: Option<DateTime<Utc>>,
    /// Message review: only those whose latest message contains this text
    /// (1 to 200 characters, any case).
    #[serde(default)]
    text: Option<String>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
    /// Conversations per page.
    #[serde(default)]
    limit: Option<u32>,
    /// A position a write of the caller's returned: the page reflects it.
    #[serde(default)]
    min_position: Option<u64>,
}

/// Message review's filters beyond the inbox's, checked.
pub(crate) fn review_filter(
    opted_out: Option<bool>,
    last_before: Option<DateTime<Utc>>,
    text: Option<String>,
) -> Result<ReviewFilter, ApiError> {
    if text
        .as_ref()
        .is_some_and(|text| text.is_empty() || text.chars().count() > MAX_TEXT)
    {
        return Err(ApiError::invalid_request(format!(
            "text must be 1 to {MAX_TEXT} characters"
        )));
    }
    Ok(ReviewFilter {
        opted_out,
        last_before,
        text,
    })
}

/// The longest text a review searches for.
const MAX_TEXT: usize = 200;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Only this campaign's conversations.
    #[serde(default)]
    #[param(value_type = Option<uuid::Uuid>)]
    campaign_id: Option<String>,
    /// Only this texter's (for roles that see every texter's).
    #[serde(default)]
    #[param(value_type = Option<uuid::Uuid>)]
    texter_id: Option<String>,
}

/// An id given as a query parameter: one that does not parse is the
/// caller's mistake (422), unlike an unknown one (which matches nothing).
fn query_id<T: std::str::FromStr>(
    raw: Option<&str>,
    field: &'static str,
) -> Result<Option<T>, ApiError> {
    raw.map(|raw| {
        raw.parse()
            .map_err(|_| ApiError::invalid_request(format!("{field} is not a valid id")))
    })
    .transpose()
}

/// A `holder` query parameter.
pub(crate) fn parse_holder(raw: &str) -> Result<Holder, ApiError> {
    Holder::parse(raw).ok_or_else(|| {
        ApiError::invalid_request("holder must be texter, pool or escalated".to_owned())
    })
}

/// The caller's conversations (a texter's own; every texter's for roles
/// that manage them), newest activity first, page by page.
#[utoipa::path(
    get,
    path = "/v1/conversations",
    operation_id = "list_conversations",
    tag = "inbox",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of conversations", body = InboxPage),
        (status = 403, description = "`forbidden`: a texter asked for another texter's conversations or for ones no texter holds", body = ApiError),
        (status = 422, description = "`invalid_request`: an unknown status or holder, a malformed id or cursor, a limit out of range", body = ApiError),
        (status = 503, description = "`projection_lagging`: the inbox has not reached `min_position` yet; try again", body = ApiError),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(params): Query<ListQuery>,
) -> Result<Json<InboxPage>, ApiError> {
    let request = InboxRequest {
        status: params
            .status
            .as_deref()
            .map(str::parse::<InboxStatus>)
            .transpose()?
            .unwrap_or_default(),
        campaign_id: query_id::<CampaignId>(params.campaign_id.as_deref(), "campaign_id")?,
        texter_id: query_id::<MemberId>(params.texter_id.as_deref(), "texter_id")?,
        holder: params.holder.as_deref().map(parse_holder).transpose()?,
        tag_id: query_id::<uuid::Uuid>(params.tag_id.as_deref(), "tag_id")?,
        review: review_filter(params.opted_out, params.last_before, params.text)?,
        cursor: params.cursor,
        limit: params.limit,
        min_position: params.min_position,
    };
    Ok(Json(state.app.inbox(&caller, request).await?))
}

/// Marks a conversation read: its unread count drops to 0.
#[utoipa::path(
    post,
    path = "/v1/conversations/{conversation_id}/read",
    operation_id = "mark_conversation_read",
    tag = "inbox",
    params(ConversationPath),
    responses(
        (status = 200, description = "Marked read", body = MarkedRead),
    ),
)]
pub async fn read(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<MarkedRead>, ApiError> {
    let id: ConversationId = path_id(&id, "conversation")?;
    Ok(Json(state.app.mark_read(&caller, id).await?))
}

/// The caller's conversations as they change, as Server-Sent Events:
/// `event: conversation` with a list item (as in `GET /v1/conversations`)
/// for every change, each with an id to resume from (`Last-Event-ID`). A
/// texter is sent `event: conversation_removed` (`{"conversation_id"}`)
/// when one of theirs is reassigned, released or escalated.
#[utoipa::path(
    get,
    path = "/v1/conversations/stream",
    operation_id = "stream_conversations",
    tag = "inbox",
    params(StreamQuery, ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received: the stream resumes after it")),
    responses(
        (status = 200, description = "The event stream; it does not end by itself", content_type = "text/event-stream", body = String),
        (status = 422, description = "`invalid_request`: a malformed id or Last-Event-ID", body = ApiError),
        (status = 429, description = "`too_many_member_streams`: the member has too many streams open", body = ApiError),
        (status = 503, description = "`too_many_streams`: the server has too many streams open", body = ApiError),
    ),
)]
pub async fn stream(
    State(state): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Query(params): Query<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let resume = last_event_id(&headers)?;
    let subscription = state
        .app
        .inbox_stream(
            &caller,
            &state.inbox_streams,
            query_id::<MemberId>(params.texter_id.as_deref(), "texter_id")?,
            query_id::<CampaignId>(params.campaign_id.as_deref(), "campaign_id")?,
            resume,
        )
        .await?;
    Ok(live::respond(Rows(subscription), state.closing.clone()))
}

/// The inbox's changed rows, each as `event: conversation`, and the ones
/// that left a texter as `event: conversation_removed`.
struct Rows(InboxSubscription);

/// What a `conversation_removed` event carries.
#[derive(serde::Serialize)]
struct Removed {
    conversation_id: ConversationId,
}

impl Source for Rows {
    async fn next_batch(&mut self) -> Option<Result<Vec<Event>, AppError>> {
        Some(self.0.next().await?.map(|changes| {
            changes
                .iter()
                .filter_map(|change| {
                    let row = change.row();
                    match change {
                        InboxChange::Changed(_) => live::encode("conversation", event_id(row), row),
                        InboxChange::Lost(_) => live::encode(
                            "conversation_removed",
                            event_id(row),
                            &Removed {
                                conversation_id: row.conversation_id,
                            },
                        ),
                    }
                })
                .collect()
        }))
    }
}
