//! `spawn_app`: a real server on a free port over a throwaway database,
//! started and stopped by the composition root as `textbank serve` is, and a
//! client pointed at it. Logs stay silent unless `TEST_LOG` is set.

use std::sync::{Arc, Once};

use chrono::{DateTime, Utc};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use textbank_api::Running;
use textbank_app::{
    App, CarrierApiPolicy, Config, DEFAULT_CARRIER_APIS, DatabaseSource, ImportLimits,
    SecretKeySource, SendSettings, ServerKey, SimSettings, WebhookSettings,
};
use textbank_domain::{Clock, FixedClock, SystemClock};
use textbank_testkit::ScratchDb;

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
    /// Set when the app runs on a fixed clock (send-path tests).
    pub clock: Option<FixedClock>,
    db: ScratchDb,
    running: Running,
    config: Config,
}

/// A Wednesday, 14:00 in New York and 11:00 in Los Angeles: inside texting
/// hours in every contiguous US zone, so send tests do not depend on when
/// they run.
pub fn weekday_afternoon() -> DateTime<Utc> {
    "2026-11-25T19:00:00Z".parse().unwrap()
}

/// Send settings for tests: no human minimum (the fixed clock does not
/// move between showing and clicking), a quick and quiet simulator.
pub fn test_send_settings() -> SendSettings {
    SendSettings {
        min_click_interval: chrono::Duration::zero(),
        // The app's clock is fixed on a day in the past, while a browser
        // sends clicked_at on the real clock (the HTTP Date header's): allow
        // a year of difference.
        max_client_clock_skew: chrono::Duration::days(365),
        sim: SimSettings::quiet((5, 20)),
        ..SendSettings::default()
    }
}

#[derive(Debug, Clone, Copy)]
pub enum On {
    Sqlite,
    Postgres,
}

/// A server on its own database; `None` when the backend's tests are skipped.
pub async fn spawn_app(on: On, test: &str) -> Option<TestApp> {
    spawn_app_with(on, test, None, SendSettings::default()).await
}

/// A server on a fixed clock (see [`weekday_afternoon`]) with test send
/// settings, for the send path.
pub async fn spawn_send_app(on: On, test: &str) -> Option<TestApp> {
    spawn_app_with(
        on,
        test,
        Some(FixedClock::at(weekday_afternoon())),
        test_send_settings(),
    )
    .await
}

/// 07:50 UTC on the same Wednesday: night in the 50 states (02:50 in New
/// York, 21:50 in Honolulu), evening in Guam (17:50), where texting is open.
pub fn early_morning_utc() -> DateTime<Utc> {
    "2026-11-25T07:50:00Z".parse().unwrap()
}

/// Like [`spawn_send_app`], at [`early_morning_utc`].
pub async fn spawn_early_morning_app(on: On, test: &str) -> Option<TestApp> {
    spawn_app_with(
        on,
        test,
        Some(FixedClock::at(early_morning_utc())),
        test_send_settings(),
    )
    .await
}

/// Like [`spawn_send_app`], with a simulator that answers every delivered
/// message with a STOP-like reply, through the signed webhooks.
pub async fn spawn_stop_sim_app(on: On, test: &str) -> Option<TestApp> {
    let mut send = test_send_settings();
    send.sim.reply_rate = 1.0;
    send.sim.opt_out_rate = 1.0;
    spawn_app_with(on, test, Some(FixedClock::at(weekday_afternoon())), send).await
}

/// A carrier API base the carrier tests' servers allow by name (nothing
/// calls it: configuring a carrier sends nothing).
pub const TEST_PROXY_API: &str = "https://proxy.example.org";
/// A loopback base the carrier tests' servers list but, like a real
/// operator's default, do not allow private addresses for.
pub const TEST_LOOPBACK_API: &str = "http://127.0.0.1:18940";

/// A server whose operator allows the carriers' APIs, [`TEST_PROXY_API`],
/// and loopback bases that are still refused as private.
pub async fn spawn_carrier_app(on: On, test: &str) -> Option<TestApp> {
    let mut allowed: Vec<String> = DEFAULT_CARRIER_APIS.map(str::to_owned).to_vec();
    allowed.extend(
        [
            TEST_PROXY_API,
            TEST_LOOPBACK_API,
            "http://[::ffff:127.0.0.1]:18940",
            "http://localhost:18940",
        ]
        .map(str::to_owned),
    );
    spawn_configured(
        on,
        test,
        None,
        SendSettings::default(),
        CarrierApiPolicy {
            allowed,
            allow_private: false,
        },
        test_webhook_settings(),
    )
    .await
}

/// Webhook settings for tests: receivers are local (`127.0.0.1:0`), so
/// internal addresses and plain http are allowed; a two-minute retry
/// window makes the first retries come after milliseconds, not seconds.
pub fn test_webhook_settings() -> WebhookSettings {
    WebhookSettings {
        allow_private: true,
        retry_window: std::time::Duration::from_secs(120),
        ..WebhookSettings::default()
    }
}

/// A server that refuses internal webhook receivers (the default).
pub async fn spawn_strict(on: On, test: &str) -> Option<TestApp> {
    spawn_webhook_app(on, test, WebhookSettings::default()).await
}

/// A server whose webhook deliveries are retried for a second and a half.
pub async fn spawn_short_window(on: On, test: &str) -> Option<TestApp> {
    let settings = WebhookSettings {
        allow_private: true,
        retry_window: std::time::Duration::from_millis(1_500),
        ..WebhookSettings::default()
    };
    spawn_webhook_app(on, test, settings).await
}

/// A server with these outbound webhook settings.
pub async fn spawn_webhook_app(on: On, test: &str, webhooks: WebhookSettings) -> Option<TestApp> {
    spawn_configured(
        on,
        test,
        None,
        SendSettings::default(),
        CarrierApiPolicy::default(),
        webhooks,
    )
    .await
}

/// Like [`spawn_send_app`], with a simulator that never reports on its own
/// (its reports would come ten minutes later): the test posts every
/// delivery report itself.
pub async fn spawn_quiet_sim_app(on: On, test: &str) -> Option<TestApp> {
    let mut send = test_send_settings();
    send.sim.delivery_delay_ms = (600_000, 600_000);
    spawn_app_with(on, test, Some(FixedClock::at(weekday_afternoon())), send).await
}

/// Like [`spawn_send_app`], with a 40-character limit on a message, so the
/// fixture's script renders too long for every contact.
pub async fn spawn_short_message_app(on: On, test: &str) -> Option<TestApp> {
    let mut send = test_send_settings();
    send.message_limits = textbank_domain::click::MessageLimits {
        max_chars: 40,
        max_segments: 10,
    };
    spawn_app_with(on, test, Some(FixedClock::at(weekday_afternoon())), send).await
}

/// Like [`spawn_send_app`], with a simulator whose every message fails.
pub async fn spawn_failing_sim_app(on: On, test: &str) -> Option<TestApp> {
    let mut send = test_send_settings();
    send.sim.failure_rate = 1.0;
    spawn_app_with(on, test, Some(FixedClock::at(weekday_afternoon())), send).await
}

pub async fn spawn_app_with(
    on: On,
    test: &str,
    clock: Option<FixedClock>,
    send: SendSettings,
) -> Option<TestApp> {
    spawn_configured(
        on,
        test,
        clock,
        send,
        CarrierApiPolicy::default(),
        test_webhook_settings(),
    )
    .await
}

async fn spawn_configured(
    on: On,
    test: &str,
    clock: Option<FixedClock>,
    send: SendSettings,
    carrier_api: CarrierApiPolicy,
    webhooks: WebhookSettings,
) -> Option<TestApp> {
    init_tracing();
    let db = match on {
        On::Sqlite => ScratchDb::sqlite().await,
        On::Postgres => ScratchDb::postgres(test).await?,
    };
    let config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        // One key for the test's servers, so a restart still opens what
        // the first one sealed.
        secret_key: SecretKeySource::Hex(ServerKey::generate().to_hex()),
        // Small upload limits, so the limit tests need no 200 MB body.
        import_limits: ImportLimits {
            max_bytes: 64 * 1024,
            max_rows: 500,
            ..ImportLimits::default()
        },
        send,
        clock: match &clock {
            Some(clock) => Arc::new(clock.clone()),
            None => Arc::new(SystemClock),
        },
        carrier_api,
        webhooks,
        ..Config::with_open_database(db.database.clone())
    };
    let running = textbank_api::start(config.clone())
        .await
        .expect("start the server");
    Some(TestApp {
        address: format!("http://{}", running.address()),
        client: textbank_sms::http_client(std::time::Duration::from_secs(60)).expect("client"),
        app: running.app().clone(),
        clock,
        db,
        running,
        config,
    })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> Response {
        sent(self.client.get(self.url(path))).await
    }

    /// `method path`, authorized by `key`, to be completed and sent.
    pub fn request_as(&self, method: Method, key: &str, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(key)
    }

    /// A new organization; returns its owner key.
    pub async fn create_org(&self, name: &str) -> String {
        self.app
            .create_org(name)
            .await
            .expect("create org")
            .owner_key
    }

    /// Gives the org the built-in simulator as its carrier: launching a
    /// campaign needs one. Configuring it again keeps its numbers.
    pub async fn use_simulator(&self, owner: &str) {
        let response = self
            .put_as(owner, "/v1/carrier", &serde_json::json!({"carrier": "sim"}))
            .await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }

    pub async fn get_as(&self, key: &str, path: &str) -> Response {
        sent(self.request_as(Method::GET, key, path)).await
    }

    pub async fn post_as(&self, key: &str, path: &str, body: &Value) -> Response {
        sent(self.request_as(Method::POST, key, path).json(body)).await
    }

    pub async fn put_as(&self, key: &str, path: &str, body: &Value) -> Response {
        sent(self.request_as(Method::PUT, key, path).json(body)).await
    }

    pub async fn patch_as(&self, key: &str, path: &str, body: &Value) -> Response {
        sent(self.request_as(Method::PATCH, key, path).json(body)).await
    }

    /// The JSON answer to a GET that must succeed.
    pub async fn get_ok(&self, key: &str, path: &str) -> Value {
        success_json(self.get_as(key, path).await).await
    }

    /// The JSON answer to a POST that must succeed.
    pub async fn post_ok(&self, key: &str, path: &str, body: &Value) -> Value {
        success_json(self.post_as(key, path, body).await).await
    }

    /// The events appended after position `head`.
    /// How many events of `event_type` the whole log holds.
    pub async fn count_events(&self, event_type: &str) -> usize {
        self.events_after(0)
            .await
            .iter()
            .filter(|event| event.event_type == event_type)
            .count()
    }

    pub async fn events_after(&self, head: u64) -> Vec<textbank_store::RecordedEvent> {
        let limit = textbank_store::MAX_READ_BATCH;
        self.app
            .events()
            .read_all(head + 1, limit)
            .await
            .expect("read the log")
    }

    /// A texter's reply in a conversation: `body` has the text or the
    /// canned response.
    pub async fn reply_in(&self, key: &str, conversation: &str, body: &Value) -> Response {
        let path = format!("/v1/conversations/{conversation}/messages");
        self.post_as(key, &path, body).await
    }

    pub async fn delete_as(&self, key: &str, path: &str) -> Response {
        sent(self.request_as(Method::DELETE, key, path)).await
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
        let member: Value = member.json().await.unwrap();
        let member_id = member["member_id"].as_str().unwrap().to_owned();
        let body = serde_json::json!({"role": role, "member_id": member_id, "label": "test"});
        let key = self.post_as(owner_key, "/v1/api-keys", &body).await;
        assert_eq!(key.status(), 201);
        let key: Value = key.json().await.unwrap();
        (member_id, key["key"].as_str().unwrap().to_owned())
    }

    /// The key of a new member with `role`, when the member id is not needed.
    pub async fn member_key(&self, owner_key: &str, email: &str, role: &str) -> String {
        self.member_with_key(owner_key, email, role).await.1
    }

    /// The key of a new member with `role`, at `{role}@example.org`.
    pub async fn key_of_a(&self, owner_key: &str, role: &str) -> String {
        self.member_key(owner_key, &format!("{role}@example.org"), role)
            .await
    }

    /// Uploads a CSV list with the given query string.
    pub async fn upload(&self, key: &str, query: &str, csv: impl Into<reqwest::Body>) -> Response {
        let path = format!("/v1/lists?{query}");
        let request = self.request_as(Method::POST, key, &path);
        sent(request.header("content-type", "text/csv").body(csv)).await
    }

    /// Shuts the server down and starts it again on the same database,
    /// opened from its URL as `textbank serve` opens it.
    pub async fn restart(self) -> TestApp {
        let url = self.db.url().to_owned();
        self.restart_on(url).await
    }

    /// Like [`TestApp::restart`], on PostgreSQL with `application_name`
    /// set, so a test can find and end the server's connections.
    pub async fn restart_named(self, application_name: &str) -> TestApp {
        let url = format!("{}&application_name={application_name}", self.db.url());
        self.restart_on(url).await
    }

    async fn restart_on(self, url: String) -> TestApp {
        self.running
            .shutdown()
            .await
            .expect("the server stops cleanly");
        let config = Config {
            database: DatabaseSource::Url(url),
            max_connections: 4,
            ..self.config
        };
        let running = textbank_api::start(config.clone())
            .await
            .expect("restart the server");
        TestApp {
            address: format!("http://{}", running.address()),
            app: running.app().clone(),
            running,
            config,
            ..self
        }
    }

    /// Raw SQL on the server's database, for tests that play the broken
    /// disk.
    pub async fn execute(&self, sql: &str) {
        self.db.execute(sql).await;
    }

    /// Another server on this one's database (PostgreSQL), opened from its
    /// URL with `application_name` set, so a test can find and end its
    /// connections; it shares the first server's settings and clock.
    pub async fn another_server(&self, application_name: &str) -> Running {
        let config = Config {
            database: DatabaseSource::Url(format!(
                "{}&application_name={application_name}",
                self.db.url()
            )),
            max_connections: 4,
            ..self.config.clone()
        };
        textbank_api::start(config)
            .await
            .expect("start another server")
    }

    /// Shuts the server down (letting requests finish) and drops the
    /// database.
    pub async fn stop(self) {
        self.stop_keeping_database().await.cleanup().await;
    }

    /// Stops the server and hands back its database, which another server
    /// may still use (clean it up after).
    pub async fn stop_keeping_database(self) -> ScratchDb {
        self.running
            .shutdown()
            .await
            .expect("the server stops cleanly");
        self.db
    }
}

/// `field` of each object in the JSON array `list`, as text.
pub fn texts<'a>(list: &'a serde_json::Value, field: &str) -> Vec<&'a str> {
    list.as_array()
        .expect("an array")
        .iter()
        .map(|item| item[field].as_str().expect("a string"))
        .collect()
}

/// The click tokens of a queue answer, in its order.
pub fn click_tokens(queue: &serde_json::Value) -> Vec<String> {
    texts(&queue["messages"], "click_token")
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// One HTTP answer read off a raw connection.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The value of a response header (names compared case-blind).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }
}

impl TestApp {
    /// Writes `request` as is on a new connection and reads one response:
    /// for requests reqwest will not send (bytes that are not HTTP), and for
    /// bodies that never end (the server must answer before they do).
    pub async fn raw(&self, request: &[u8]) -> RawResponse {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = self.address.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        stream.write_all(request).await.expect("write the request");
        let read = async {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    let mut response = RawResponse {
                        status: head[9..12].parse().expect("a status code"),
                        head,
                        body: Vec::new(),
                    };
                    let length: usize = response
                        .header("content-length")
                        .and_then(|value| value.parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + length {
                        let read = stream.read(&mut chunk).await.expect("read the body");
                        if read == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..read]);
                    }
                    response.body = buf[end + 4..].to_vec();
                    return response;
                }
                let read = stream.read(&mut chunk).await.expect("read the head");
                assert!(read > 0, "closed without an answer: {buf:?}");
                buf.extend_from_slice(&chunk[..read]);
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), read)
            .await
            .expect("an answer within 10 s")
    }
}

/// Runs each listed test once per backend, like the store's contract suite:
/// the one way a test file declares its SQLite and PostgreSQL pairs.
/// `on_both_backends!(spawn = spawn_send_app; tests…)` picks the server from
/// this module's spawners (`spawn_app` by default; `spawn_send_app`,
/// `spawn_stop_sim_app`, `spawn_quiet_sim_app`, `spawn_failing_sim_app`).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends!(spawn = spawn_app; $($name),*);
    };
    // Tests of a differently spawned server, in a module of their own so
    // their names stay apart from the file's other tests.
    (mod $module:ident, spawn = $spawn:ident; $($name:ident),* $(,)?) => {
        mod $module {
            use super::*;

            $crate::on_both_backends!(spawn = $spawn; $($name),*);
        }
    };
    (spawn = $spawn:ident; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::helpers::$spawn($crate::helpers::On::Sqlite, stringify!($name))
                        .await
                        .expect("sqlite always runs");
                    let app = $crate::helpers::within_time_limit(super::$name(app)).await;
                    app.stop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $crate::helpers::$spawn($crate::helpers::On::Postgres, stringify!($name)).await
                    else { return };
                    let app = $crate::helpers::within_time_limit(super::$name(app)).await;
                    app.stop().await;
                }
            )*
        }
    };
}

/// Runs a test body, failing it (instead of hanging CI) past two minutes.
pub async fn within_time_limit<T>(test: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(120), test)
        .await
        .expect("the test ran past its two-minute limit")
}

/// The message of a JSON error response, after checking status and code.
pub async fn expect_error(response: Response, status: u16, code: &str) -> String {
    assert_eq!(
        response.status().as_u16(),
        status,
        "expected {status} {code}"
    );
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["error"]["code"], code, "{body}");
    body["error"]["message"]
        .as_str()
        .expect("a message")
        .to_owned()
}

/// The item of the JSON array `list` whose `field` is `value` (the first).
pub fn item<'v>(list: &'v Value, field: &str, value: &str) -> &'v Value {
    list.as_array()
        .expect("a JSON array")
        .iter()
        .find(|item| item[field] == value)
        .unwrap_or_else(|| panic!("no {field} {value} in {list}"))
}

/// Sends a request the test built; the server must answer.
pub async fn sent(request: RequestBuilder) -> Response {
    request.send().await.expect("request")
}

/// The JSON body of a response, whatever its status.
pub async fn json(response: Response) -> Value {
    response.json().await.expect("a JSON body")
}

/// The JSON body of a response that must have succeeded; the failure shows the body.
pub async fn success_json(response: Response) -> Value {
    let status = response.status();
    let body = response.text().await.expect("a body");
    assert!(status.is_success(), "{status}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

/// `name => status "code"`: an `async fn name(response) -> String` that is
/// [`expect_error`] for that status and code.
macro_rules! expect_errors {
    ($($name:ident => $status:literal $code:literal;)*) => {$(
        #[doc = concat!("The message of a ", $status, " `", $code, "` error response.")]
        pub async fn $name(response: Response) -> String {
            expect_error(response, $status, $code).await
        }
    )*};
}

expect_errors! {
    expect_not_found => 404 "not_found";
    expect_invalid_request => 422 "invalid_request";
    expect_forbidden => 403 "forbidden";
    expect_unauthenticated => 401 "unauthenticated";
    expect_conflict => 409 "conflict";
    expect_payload_too_large => 413 "payload_too_large";
    expect_unsupported_media_type => 415 "unsupported_media_type";
}

/// Checks that a response is a 200 CSV download.
pub fn assert_csv(response: &Response) {
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
}

/// A 200 CSV download read whole: its header and its records.
pub async fn csv_download(response: Response) -> (Vec<String>, Vec<csv::StringRecord>) {
    assert_csv(&response);
    let text = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    (header, reader.records().map(Result::unwrap).collect())
}

/// An org ready to text: a simulated carrier, a launched campaign over
/// `contacts` contacts (+1555201xxxx), all assigned to one texter.
pub struct SendFixture {
    pub org_id: String,
    pub owner: String,
    pub texter_id: String,
    pub texter: String,
    pub campaign_id: String,
}

impl TestApp {
    pub async fn send_fixture(&self, contacts: usize) -> SendFixture {
        let created = self.app.create_org("Send Test Org").await.expect("org");
        let owner = created.owner_key;
        let carrier = self
            .put_as(
                &owner,
                "/v1/carrier",
                &serde_json::json!({"carrier": "sim"}),
            )
            .await;
        assert_eq!(carrier.status(), 200);
        let (texter_id, texter) = self
            .member_with_key(&owner, "texter@example.org", "texter")
            .await;
        let mut csv = String::from("first_name,last_name,cell\r\n");
        for i in 0..contacts {
            csv.push_str(&format!("Voter{i},Lee,555-201-{i:04}\r\n"));
        }
        let list = self
            .upload(
                &owner,
                "name=Precinct&source=voter%20file&consent_basis=opted%20in",
                csv,
            )
            .await;
        assert_eq!(list.status(), 201);
        let list: Value = list.json().await.unwrap();
        let list_id = list["list_id"].as_str().unwrap().to_owned();
        let body = serde_json::json!({
            "name": "GOTV",
            "initial_message": "Hi {first_name}, it's {texter_name}. Will you vote? Reply STOP to opt out",
            "list_ids": [list_id],
            "questions": [{"id": "support", "text": "Supports?", "answers": ["yes", "no"]}],
            "canned_responses": [{"title": "Thanks", "body": "Thanks {first_name}!"}],
        });
        let campaign = self.post_as(&owner, "/v1/campaigns", &body).await;
        assert_eq!(campaign.status(), 201, "{:?}", campaign.text().await);
        let campaign: Value = campaign.json().await.unwrap();
        let campaign_id = campaign["campaign_id"].as_str().unwrap().to_owned();
        let launched = self
            .post_as(
                &owner,
                &format!("/v1/campaigns/{campaign_id}/launch"),
                &serde_json::json!({}),
            )
            .await;
        assert_eq!(launched.status(), 200);
        let assigned = self
            .post_as(
                &owner,
                &format!("/v1/campaigns/{campaign_id}/assignments"),
                &serde_json::json!({"texter_id": texter_id, "count": contacts}),
            )
            .await;
        assert_eq!(assigned.status(), 200, "{:?}", assigned.text().await);
        SendFixture {
            org_id: created.org_id.to_string(),
            owner,
            texter_id,
            texter,
            campaign_id,
        }
    }

    /// The rejections CSV of an uploaded list, as text.
    pub async fn rejections(&self, key: &str, list_id: &str) -> String {
        self.get_as(key, &format!("/v1/lists/{list_id}/rejections"))
            .await
            .text()
            .await
            .unwrap()
    }

    /// The texter's queue (up to `limit` messages).
    pub async fn queue(&self, fixture: &SendFixture, limit: u32) -> Value {
        let response = self
            .get_as(
                &fixture.texter,
                &format!(
                    "/v1/texter/queue?campaign_id={}&limit={limit}",
                    fixture.campaign_id
                ),
            )
            .await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Clicks Send on the first message of the fixture texter's queue (the
    /// click must succeed); the conversation it opened.
    pub async fn send_first(&self, fixture: &SendFixture) -> String {
        let queue = self.queue(fixture, 1).await;
        let token = queue["messages"][0]["click_token"]
            .as_str()
            .expect("a queued message");
        let sent = success_json(self.click(&fixture.texter, token, "k").await).await;
        sent["conversation_id"]
            .as_str()
            .expect("a conversation")
            .to_owned()
    }

    /// Clicks Send on one queued message.
    /// The server's time: its fixed clock's, or the system's.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock
            .as_ref()
            .map_or_else(Utc::now, |clock| clock.now())
    }

    pub async fn click(&self, key: &str, token: &str, idempotency_key: &str) -> Response {
        let body = serde_json::json!({"click_token": token, "clicked_at": self.now()});
        let request = self.request_as(Method::POST, key, "/v1/messages");
        sent(
            request
                .header("idempotency-key", idempotency_key)
                .json(&body),
        )
        .await
    }

    /// Posts a voter's text to the Twilio inbound webhook, signed with the
    /// org's simulator credentials, as the simulator itself would.
    pub async fn voter_texts(&self, org_id: &str, from: &str, body: &str) -> Response {
        let org: textbank_domain::OrgId = org_id.parse().unwrap();
        let carrier = self.app.carrier_for(org).await.unwrap().expect("a carrier");
        let params = vec![
            (
                "MessageSid".to_owned(),
                format!("SM{}", uuid::Uuid::now_v7().simple()),
            ),
            ("AccountSid".to_owned(), "AC0".to_owned()),
            ("From".to_owned(), from.to_owned()),
            ("To".to_owned(), carrier.sending_numbers[0].clone()),
            ("Body".to_owned(), body.to_owned()),
        ];
        self.signed_twilio_post(
            "/webhooks/twilio/inbound",
            carrier.webhook_secret(),
            &params,
        )
        .await
    }

    pub async fn signed_twilio_post(
        &self,
        path: &str,
        auth_token: &str,
        params: &[(String, String)],
    ) -> Response {
        let url = self.url(path);
        let signature = textbank_sms::twilio::signature(auth_token, &url, params);
        sent(
            self.client
                .post(&url)
                .header("x-twilio-signature", signature)
                .form(params),
        )
        .await
    }

    /// Polls `path` until `done` holds for its JSON (5 s at most).
    pub async fn eventually(&self, key: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..250 {
            let response = self.get_as(key, path).await;
            last = response.json().await.unwrap_or_default();
            if done(&last) {
                return last;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("{path} never got there: {last}");
    }
}
