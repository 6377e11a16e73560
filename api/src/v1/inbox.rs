//! The inbox over HTTP: the caller's conversations page by page, marking
//! one read, and a Server-Sent Events stream of the rows as they change.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::Value;
use textbank_app::AppError;
use textbank_app::inbox::{InboxRequest, InboxStatus, InboxSubscription, event_id};
use textbank_domain::{CampaignId, ConversationId, MemberId};

use crate::error::ApiError;
use crate::extract::{Auth, Path, Query, path_id};
use crate::route_table::RouteTable;
use crate::server::AppState;
use crate::v1::live::{self, Source, last_event_id};
use crate::v1::to_json;

pub fn routes() -> RouteTable {
    RouteTable::new()
        .get("/v1/conversations", list)
        .get("/v1/conversations/stream", stream)
        .post("/v1/conversations/{conversation_id}/read", read)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    campaign_id: Option<String>,
    #[serde(default)]
    texter_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    min_position: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    #[serde(default)]
    campaign_id: Option<String>,
    #[serde(default)]
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

/// `GET /v1/conversations`
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(params): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let request = InboxRequest {
        status: params
            .status
            .as_deref()
            .map(str::parse::<InboxStatus>)
            .transpose()?
            .unwrap_or_default(),
        campaign_id: query_id::<CampaignId>(params.campaign_id.as_deref(), "campaign_id")?,
        texter_id: query_id::<MemberId>(params.texter_id.as_deref(), "texter_id")?,
        cursor: params.cursor,
        limit: params.limit,
        min_position: params.min_position,
    };
    to_json(state.app.inbox(&caller, request).await?)
}

/// `POST /v1/conversations/{id}/read`
pub async fn read(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: ConversationId = path_id(&id, "conversation")?;
    to_json(state.app.mark_read(&caller, id).await?)
}

/// `GET /v1/conversations/stream`: `event: conversation` with a list item
/// for every change to the caller's conversations, each with an id to
/// resume from (`Last-Event-ID`).
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

/// The inbox's changed rows, each as `event: conversation`.
struct Rows(InboxSubscription);

impl Source for Rows {
    async fn next_batch(&mut self) -> Option<Result<Vec<Event>, AppError>> {
        Some(self.0.next().await?.map(|rows| {
            rows.iter()
                .filter_map(|row| live::encode("conversation", event_id(row), row))
                .collect()
        }))
    }
}
