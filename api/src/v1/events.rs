//! The event feed over HTTP: a page of the organization's events after a
//! position (`GET /v1/events`), and the same as Server-Sent Events
//! (`GET /v1/events/stream`), resumable with `Last-Event-ID`.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use futures_util::Stream;
use serde::Deserialize;
use textbank_app::AppError;
use textbank_app::feed::{FeedPage, FeedQuery, FeedSubscription};
use utoipa::IntoParams;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{Auth, Query};
use crate::route_table::RouteTable;
use crate::server::AppState;
use crate::v1::live::{self, Source, last_event_id};

pub fn routes() -> RouteTable {
    RouteTable::new()
        .routes(routes!(list))
        .routes(routes!(stream))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    /// Events after this position (default 0: from the start).
    #[serde(default)]
    after: Option<u64>,
    /// Comma-separated event type names, e.g. `MessageSendClicked,OptOutRecorded`.
    #[serde(default)]
    types: Option<String>,
    /// At most this many events (1–1000, default 100).
    #[serde(default)]
    limit: Option<u32>,
}

impl FeedParams {
    fn query(self) -> Result<FeedQuery, ApiError> {
        Ok(FeedQuery {
            after: self.after.unwrap_or(0),
            types: FeedQuery::parse_types(self.types.as_deref())?,
            limit: self.limit,
        })
    }
}

/// The organization's events after a position, in log order, in their
/// public representation (`textbank.event.v1`).
#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "list_events",
    tag = "events",
    params(FeedParams),
    responses(
        (status = 200, description = "A page of events", body = FeedPage),
        (status = 422, description = "`invalid_request`: a bad `after`, `limit` or `types`", body = ApiError),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(params): Query<FeedParams>,
) -> Result<Json<FeedPage>, ApiError> {
    Ok(Json(state.app.event_feed(&caller, &params.query()?).await?))
}

/// The same events live, as Server-Sent Events: each as `event: <type>`
/// with its position as the id.
#[utoipa::path(
    get,
    path = "/v1/events/stream",
    operation_id = "stream_events",
    tag = "events",
    params(FeedParams, ("Last-Event-ID" = Option<String>, Header, description = "The position of the last event received: the stream resumes after it")),
    responses(
        (status = 200, description = "The event stream; it does not end by itself", content_type = "text/event-stream", body = String),
        (status = 422, description = "`invalid_request`: a bad `after`, `types` or Last-Event-ID", body = ApiError),
        (status = 429, description = "`too_many_member_streams`: the caller has too many streams open", body = ApiError),
        (status = 503, description = "`too_many_streams`: the server has too many streams open", body = ApiError),
    ),
)]
pub async fn stream(
    State(state): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Query(params): Query<FeedParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let resume = last_event_id(&headers)?;
    let subscription =
        state
            .app
            .event_stream(&caller, &state.inbox_streams, params.query()?, resume)?;
    Ok(live::respond(Feed(subscription), state.closing.clone()))
}

/// The feed's events, each as `event: <type>` with its position as the id.
struct Feed(FeedSubscription);

impl Source for Feed {
    async fn next_batch(&mut self) -> Option<Result<Vec<Event>, AppError>> {
        Some(self.0.next().await.map(|events| {
            events
                .iter()
                .filter_map(|event| {
                    live::encode(&event.event_type, event.position.to_string(), event)
                })
                .collect()
        }))
    }
}
