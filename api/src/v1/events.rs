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
use serde_json::Value;
use textbank_app::AppError;
use textbank_app::feed::{FeedQuery, FeedSubscription};

use crate::error::ApiError;
use crate::extract::{Auth, Query};
use crate::route_table::RouteTable;
use crate::server::AppState;
use crate::v1::live::{self, Source, last_event_id};
use crate::v1::to_json;

pub fn routes() -> RouteTable {
    RouteTable::new()
        .get("/v1/events", list)
        .get("/v1/events/stream", stream)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedParams {
    #[serde(default)]
    after: Option<u64>,
    #[serde(default)]
    types: Option<String>,
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

/// `GET /v1/events?after=&types=&limit=`
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(params): Query<FeedParams>,
) -> Result<Json<Value>, ApiError> {
    to_json(state.app.event_feed(&caller, &params.query()?).await?)
}

/// `GET /v1/events/stream?after=&types=`: each event as `event: <type>`
/// with its position as the id.
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
