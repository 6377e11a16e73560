//! The composition root: the one place a running textbank is built from its
//! configuration (database, event store, application, background tasks,
//! router, listener) and taken down again. `textbank serve`, the end-to-end
//! tests and the benchmarks all start their server here (docs/adr/0020).

use std::future::Future;
use std::net::SocketAddr;

use textbank_app::{App, Background, Config};
use textbank_store::StoreError;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::server::Server;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Open(#[from] StoreError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
}

/// A started server: listening, its read models followed and its clicks
/// dispatched. Stop it with [`Running::shutdown`].
pub struct Running {
    app: App,
    address: SocketAddr,
    stop_serving: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
    background: Background,
}

/// Builds and starts textbank: opens the configured database (or takes the
/// open one), builds the app, binds the listener (port 0 picks a free one;
/// see [`Running::address`]), starts serving and then the background tasks.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let app = App::open(&config).await?;
    let listen = |source| StartError::Listen {
        address: config.bind,
        source,
    };
    let server = match Server::bind(app.clone(), config.bind).await {
        Ok(server) => server,
        Err(source) => {
            app.close().await;
            return Err(listen(source));
        }
    };
    let address = server.local_addr().map_err(listen)?;
    let (stop_serving, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let background = Background::start(&app);
    Ok(Running {
        app,
        address,
        stop_serving,
        server,
        background,
    })
}

impl Running {
    /// The address the listener is bound to.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://{address}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    /// Serves until `signal` resolves (or the listener fails), then shuts
    /// down.
    pub async fn serve_until(
        mut self,
        signal: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        tokio::select! {
            () = signal => self.shutdown().await,
            served = &mut self.server => {
                // The listener ended by itself: stop the rest and say why.
                self.app.stop_simulators();
                self.background.stop().await;
                self.app.close().await;
                joined(served)
            }
        }
    }

    /// Stops in dependency order: first the dispatcher (nothing more goes to
    /// a carrier) and the simulated carriers' callbacks still to come, then
    /// the listener (in-flight requests finish, live
    /// streams end), then the read models' follower, and last the database.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let Self {
            app,
            stop_serving,
            server,
            mut background,
            ..
        } = self;
        background.stop_dispatching().await;
        app.stop_simulators();
        let _ = stop_serving.send(());
        let served = joined(server.await);
        background.stop().await;
        app.close().await;
        served
    }
}

fn joined(outcome: Result<std::io::Result<()>, tokio::task::JoinError>) -> std::io::Result<()> {
    outcome.unwrap_or_else(|err| Err(std::io::Error::other(err)))
}
