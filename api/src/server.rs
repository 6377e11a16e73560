//! Building the router and running the server until a shutdown signal, letting
//! in-flight requests finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use textbank_app::App;
use textbank_app::inbox::InboxStreams;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::UtoipaMethodRouterExt;
use utoipa_axum::routes;

use crate::connection::{JsonListener, PeerAddr};
use crate::metrics::Metrics;
use crate::openapi::{self, ApiDoc};
use crate::route_table::RouteTable;
use crate::{ops, responses, webhooks};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub metrics: Arc<Metrics>,
    /// Turns true when the server starts shutting down: responses that
    /// never end by themselves (event streams) end, so shutdown can finish.
    pub closing: watch::Receiver<bool>,
    /// The live inbox streams: their limits and their shared feed.
    pub inbox_streams: Arc<InboxStreams>,
}

/// The whole HTTP surface.
pub fn router(app: App, metrics: Arc<Metrics>) -> Router {
    // Nothing signals this router's shutdown: its streams end with their
    // clients.
    let (_, closing) = watch::channel(false);
    router_closing(app, metrics, closing)
}

/// The HTTP surface, with long-lived responses ending when `closing`
/// turns true.
fn router_closing(app: App, metrics: Arc<Metrics>, closing: watch::Receiver<bool>) -> Router {
    let state = AppState {
        app,
        metrics,
        closing,
        inbox_streams: Arc::default(),
    };
    let (routes, _, _) = route_table().into_parts();
    routes
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .layer(middleware::from_fn(responses::json_errors))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Every route the server serves; [`router_closing`] adds what applies to
/// all of them (fallbacks, metrics, error shape, tracing, state).
pub(crate) fn route_table() -> RouteTable {
    // Webhook bodies are small forms or JSON: refuse big ones early.
    let webhook_limit = DefaultBodyLimit::max(textbank_app::MAX_WEBHOOK_BYTES);
    RouteTable::with_openapi(ApiDoc::openapi())
        .merge(crate::v1::routes())
        .merge(crate::web::routes())
        .routes(routes!(webhooks::twilio_status).layer(webhook_limit))
        .routes(routes!(webhooks::twilio_inbound).layer(webhook_limit))
        .routes(routes!(webhooks::telnyx).layer(webhook_limit))
        .routes(routes!(ops::health))
        .routes(routes!(ops::ready))
        .routes(routes!(ops::metrics))
        .routes(routes!(openapi::openapi_json))
}

async fn record_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    state.metrics.record_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// A bound, not yet running server.
pub struct Server {
    listener: JsonListener,
    router: Router,
    closing: watch::Sender<bool>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port; see [`Server::local_addr`]).
    pub async fn bind(app: App, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = JsonListener(TcpListener::bind(addr).await?);
        // Carriers (the simulator too) post webhooks here unless a public
        // URL was configured.
        app.set_public_url(&format!("http://{}", listener.0.local_addr()?));
        let (closing, closing_rx) = watch::channel(false);
        Ok(Self {
            listener,
            router: router_closing(app, Arc::new(Metrics::default()), closing_rx),
            closing,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.0.local_addr()
    }

    /// Serves until `shutdown` resolves, then stops accepting and waits for
    /// in-flight requests to finish.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let service = self
            .router
            .into_make_service_with_connect_info::<PeerAddr>();
        let closing = self.closing;
        axum::serve(self.listener, service)
            .with_graceful_shutdown(async move {
                shutdown.await;
                closing.send_replace(true);
            })
            .await
    }
}
