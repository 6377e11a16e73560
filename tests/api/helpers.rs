//! `spawn_app`: a real server on a free port over a throwaway database, and a
//! client pointed at it. Logs stay silent unless `TEST_LOG` is set.

use std::sync::{Arc, Once};

use textbank_api::Server;
use textbank_app::App;
use textbank_domain::SystemClock;
use textbank_store::SqlEventStore;
use textbank_store::scratch::ScratchDb;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

static TRACING: Once = Once::new();

fn init_tracing() {
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .init();
        }
    });
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub app: App,
    db: ScratchDb,
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
}

#[derive(Debug, Clone, Copy)]
pub enum On {
    Sqlite,
    Postgres,
}

/// A server on its own database; `None` when the backend's tests are skipped.
pub async fn spawn_app(on: On, test: &str) -> Option<TestApp> {
    init_tracing();
    let db = match on {
        On::Sqlite => ScratchDb::sqlite().await,
        On::Postgres => ScratchDb::postgres(test).await?,
    };
    let store = SqlEventStore::on_database(db.database.clone())
        .await
        .expect("open store");
    let app = App::new(Arc::new(store), Arc::new(SystemClock));
    let server = Server::bind(app.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind");
    let address = format!("http://{}", server.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    Some(TestApp {
        address,
        client: reqwest::Client::new(),
        app,
        db,
        stop,
        server,
    })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Stops the server (letting requests finish) and drops the database.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
        self.app.close().await;
        self.db.cleanup().await;
    }
}

/// Runs each listed test once per backend, like the store's contract suite.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::helpers::spawn_app($crate::helpers::On::Sqlite, stringify!($name))
                        .await
                        .expect("sqlite always runs");
                    let app = super::$name(app).await;
                    app.stop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $crate::helpers::spawn_app($crate::helpers::On::Postgres, stringify!($name)).await
                    else { return };
                    let app = super::$name(app).await;
                    app.stop().await;
                }
            )*
        }
    };
}
