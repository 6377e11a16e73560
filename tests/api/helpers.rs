//! `spawn_app`: a real server on a free port over a throwaway database, and a
//! client pointed at it. Logs stay silent unless `TEST_LOG` is set.

use std::sync::{Arc, Once};

use textbank_api::Server;
use textbank_app::{App, ImportLimits};
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
    // Small upload limits, so the limit tests need no 200 MB body.
    let app = App::new(Arc::new(store), Arc::new(SystemClock)).with_import_limits(ImportLimits {
        max_bytes: 64 * 1024,
        max_rows: 500,
    });
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

    /// A new organization; returns its owner key.
    pub async fn create_org(&self, name: &str) -> String {
        self.app
            .create_org(name)
            .await
            .expect("create org")
            .owner_key
    }

    pub async fn get_as(&self, key: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_as(
        &self,
        key: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn delete_as(&self, key: &str, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request")
    }

    /// Adds a member and issues a key bound to it; returns (member id, key).
    pub async fn member_with_key(
        &self,
        owner_key: &str,
        email: &str,
        role: &str,
    ) -> (String, String) {
        let body = serde_json::json!({"name": "Test Member", "email": email, "role": role});
        let member = self.post_as(owner_key, "/v1/members", &body).await;
        assert_eq!(member.status(), 201);
        let member: serde_json::Value = member.json().await.unwrap();
        let member_id = member["member_id"].as_str().unwrap().to_owned();
        let body = serde_json::json!({"role": role, "member_id": member_id, "label": "test"});
        let key = self.post_as(owner_key, "/v1/api-keys", &body).await;
        assert_eq!(key.status(), 201);
        let key: serde_json::Value = key.json().await.unwrap();
        (member_id, key["key"].as_str().unwrap().to_owned())
    }

    /// Uploads a CSV list with the given query string.
    pub async fn upload(
        &self,
        key: &str,
        query: &str,
        csv: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/v1/lists?{query}")))
            .bearer_auth(key)
            .header("content-type", "text/csv")
            .body(csv)
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

/// The message of a JSON error response, after checking status and code.
pub async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(
        response.status().as_u16(),
        status,
        "expected {status} {code}"
    );
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["error"]["code"], code, "{body}");
    body["error"]["message"]
        .as_str()
        .expect("a message")
        .to_owned()
}
