//! A recording HTTP server on 127.0.0.1:0 and shared fixtures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use textbank_sms::{Carrier, OutboundMessage, SubmitOutcome};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What to answer to the n-th request (0-based).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap(),
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Replier = dyn Fn(usize) -> Reply + Send + Sync;

struct Shared {
    requests: Mutex<Vec<Recorded>>,
    reply: Box<Replier>,
}

pub struct MockServer {
    pub base: String,
    shared: Arc<Shared>,
}

impl MockServer {
    /// Answers every request with `reply`.
    pub async fn start(reply: Reply) -> Self {
        Self::start_with(move |_| reply.clone()).await
    }

    /// Answers the n-th request with `reply(n)`.
    pub async fn start_with(reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Self {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            reply: Box::new(reply),
        });
        let app = Router::new()
            .fallback(record)
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            shared,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Waits (up to 5 s) until at least `n` requests have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let requests = self.requests();
            if requests.len() >= n {
                return requests;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} requests, got {}: {requests:?}",
                requests.len()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn record(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let index = {
        let mut requests = shared.requests.lock().unwrap();
        requests.push(Recorded {
            method,
            path: uri.path().to_owned(),
            headers,
            body,
        });
        requests.len() - 1
    };
    let reply = (shared.reply)(index);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    (
        reply.status,
        [(header::CONTENT_TYPE, "application/json")],
        reply.body,
    )
        .into_response()
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub async fn closed_port_base() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

pub fn client() -> reqwest::Client {
    textbank_sms::http_client(Duration::from_secs(5)).unwrap()
}

pub fn message(from: &str) -> OutboundMessage {
    OutboundMessage {
        message_id: uuid::Uuid::now_v7(),
        from: from.to_owned(),
        to: "+15558675309".to_owned(),
        // Characters that need escaping in both form and JSON bodies.
        body: "Hi Jo! Polls close at 8pm & you're at #12 Elm St. \"Vote\" 100% 🗳️".to_owned(),
        automated: false,
    }
}

pub fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The sender of the messages the contract tests submit.
pub const SENDER: &str = "+12025550100";

/// What `carrier` answers when handed a message from [`SENDER`].
pub async fn submit(carrier: impl Carrier) -> SubmitOutcome {
    carrier.submit(&message(SENDER)).await
}

/// The outcome of a message the carrier refused.
pub fn rejected(code: &str, message: &str, retryable: bool) -> SubmitOutcome {
    SubmitOutcome::Rejected {
        code: code.to_owned(),
        message: message.to_owned(),
        retryable,
    }
}

/// What a carrier client must do alike whatever its API, as tests in the
/// module that invokes it (the carrier's own tests cover its request and
/// error formats):
/// - `connect`: `|base, http| client`, the client for an API at `base`;
/// - `created`: the `(status, body)` the API answers a new message with;
/// - `throttled`: `(status, body, code, message)` of a too-many-requests
///   answer, and the code and message the client must report;
/// - `server_error`: the `(status, body)` of a server error.
#[macro_export]
macro_rules! carrier_contract {
    (
        connect: $connect:expr,
        created: $created:expr,
        throttled: $throttled:expr,
        server_error: $server_error:expr $(,)?
    ) => {
        mod contract {
            use std::time::Duration;

            use textbank_sms::SubmitOutcome;

            use super::*;
            use $crate::helpers::{MockServer, Reply, client, closed_port_base, rejected, submit};

            #[tokio::test]
            async fn too_many_requests_is_rejected_as_retryable() {
                let (status, body, code, message) = $throttled;
                let server = MockServer::start(Reply::json(status, body)).await;
                let outcome = submit($connect(&server.base, client())).await;
                assert_eq!(outcome, rejected(code, message, true));
            }

            #[tokio::test]
            async fn server_error_is_unknown_because_the_carrier_may_have_queued_it() {
                let (status, body) = $server_error;
                let server = MockServer::start(Reply::json(status, body)).await;
                let outcome = submit($connect(&server.base, client())).await;
                assert!(matches!(outcome, SubmitOutcome::Unknown { .. }), "{outcome:?}");
            }

            #[tokio::test]
            async fn refused_connection_is_rejected_as_retryable() {
                let outcome = submit($connect(&closed_port_base().await, client())).await;
                assert!(
                    matches!(&outcome, SubmitOutcome::Rejected { code, retryable: true, .. } if code == "connect_failed"),
                    "{outcome:?}"
                );
            }

            #[tokio::test]
            async fn timeout_after_sending_is_unknown() {
                let (status, body) = $created;
                let reply = Reply::json(status, body).after(Duration::from_secs(3));
                let server = MockServer::start(reply).await;
                let http = textbank_sms::http_client(Duration::from_millis(300)).unwrap();
                let outcome = submit($connect(&server.base, http)).await;
                assert!(matches!(outcome, SubmitOutcome::Unknown { .. }), "{outcome:?}");
                // The request did reach the server: exactly why this can't be retried.
                assert_eq!(server.requests().len(), 1);
            }
        }
    };
}
