//! Server-Sent Events streams that never end by themselves (the inbox's and
//! the event feed's): one loop for both that encodes each batch, keeps idle
//! connections open, and ends on shutdown, when its source ends or fails
//! (the client reconnects with `Last-Event-ID`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Serialize;
use textbank_app::AppError;
use tokio::sync::watch;

use crate::error::ApiError;

/// How often an idle stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What a live stream sends: batches of encoded events, until `None`.
pub(crate) trait Source: Send + 'static {
    fn next_batch(&mut self) -> impl Future<Output = Option<Result<Vec<Event>, AppError>>> + Send;
}

/// The response that streams `source` until the server closes.
pub(crate) fn respond<S: Source>(
    source: S,
    closing: watch::Receiver<bool>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = futures_util::stream::unfold(
        Live {
            source,
            closing,
            pending: VecDeque::new(),
        },
        Live::next,
    );
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// One event named `name` with `id` and `data` as JSON; `None` (logged)
/// if it cannot be encoded.
pub(crate) fn encode(name: &str, id: String, data: &impl Serialize) -> Option<Event> {
    match Event::default().event(name).id(id).json_data(data) {
        Ok(event) => Some(event),
        Err(err) => {
            tracing::error!(error = %err, name, "stream event not encoded");
            None
        }
    }
}

/// The `Last-Event-ID` a reconnecting client sends, if any.
pub(crate) fn last_event_id(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    headers
        .get("last-event-id")
        .map(|value| {
            value
                .to_str()
                .map_err(|_| ApiError::invalid_request("Last-Event-ID must be visible ASCII"))
        })
        .transpose()
}

/// A stream's state between events.
struct Live<S> {
    source: S,
    closing: watch::Receiver<bool>,
    pending: VecDeque<Event>,
}

impl<S: Source> Live<S> {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            let batch = tokio::select! {
                () = closed(&mut self.closing) => return None,
                batch = self.source.next_batch() => batch?,
            };
            match batch {
                Ok(events) => self.pending.extend(events),
                Err(err) => {
                    tracing::warn!(error = %err, "live stream ended");
                    return None;
                }
            }
        }
    }
}

/// Resolves once the server is closing; never when nothing can close it.
async fn closed(closing: &mut watch::Receiver<bool>) {
    loop {
        if *closing.borrow_and_update() {
            return;
        }
        if closing.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
