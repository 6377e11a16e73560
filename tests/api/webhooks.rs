//! Outbound webhooks end to end: a real receiver on `127.0.0.1:0` that
//! verifies every delivery's signature with the `standardwebhooks` crate
//! and can fail its first attempts; subscriptions, the secret shown once,
//! retries, pings, the retry window, refused internal addresses, other
//! organizations' ids, and the real binary killed with SIGKILL mid-delivery.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use rand::Rng;
use serde_json::{Value, json};
use textbank_testkit::ScratchDb;

use crate::cli::json_lines;
use crate::crash::Launch;
use crate::helpers::{TestApp, expect_error, success_json, within_time_limit};
use crate::on_both_backends;

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    /// Deliveries it took: (webhook-id, body), in arrival order.
    taken: Vec<(String, Value)>,
    /// Requests answered with a failure on purpose.
    failed: usize,
    /// Requests whose signature did not verify.
    forged: usize,
}

/// A webhook receiver: checks each request's signature with the
/// subscription's secret (answering 503 until it knows it), fails the first
/// `fail_first` signed requests with a 500, and takes the rest.
#[derive(Clone)]
struct Receiver {
    url: String,
    secret: Arc<Mutex<Option<String>>>,
    fail_first: Arc<AtomicUsize>,
    seen: Arc<Mutex<Seen>>,
}

impl Receiver {
    async fn start(fail_first: usize) -> Receiver {
        let receiver = Receiver {
            url: String::new(),
            secret: Arc::default(),
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
            seen: Arc::default(),
        };
        let state = receiver.clone();
        let take = move |headers: HeaderMap, body: axum::body::Bytes| {
            let state = state.clone();
            async move { state.take(&headers, &body) }
        };
        let router = axum::Router::new().route("/hook", axum::routing::post(take));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Receiver { url, ..receiver }
    }

    fn take(&self, headers: &HeaderMap, body: &[u8]) -> (StatusCode, &'static str) {
        let Some(secret) = self.secret.lock().unwrap().clone() else {
            return (StatusCode::SERVICE_UNAVAILABLE, "not ready");
        };
        let verified = standardwebhooks::Webhook::new(&secret)
            .unwrap()
            .verify(body, headers);
        let mut seen = self.seen.lock().unwrap();
        if verified.is_err() {
            seen.forged += 1;
            return (StatusCode::BAD_REQUEST, "bad signature");
        }
        let failing = self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            seen.failed += 1;
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "receiver down for a moment",
            );
        }
        let id = headers["webhook-id"].to_str().unwrap().to_owned();
        seen.taken
            .push((id, serde_json::from_slice(body).expect("a JSON body")));
        (StatusCode::OK, "taken")
    }

    fn trust(&self, secret: &str) {
        *self.secret.lock().unwrap() = Some(secret.to_owned());
    }

    /// The distinct ids taken, in the order first taken.
    fn first_seen(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        let mut ids: Vec<String> = Vec::new();
        for (id, _) in &seen.taken {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        ids
    }
}

/// Subscribes `receiver` (trusting the secret) and returns the answer.
async fn subscribe(app: &TestApp, key: &str, receiver: &Receiver, types: Value) -> Value {
    let body = json!({"url": receiver.url, "event_types": types, "description": "CRM"});
    let response = app.post_as(key, "/v1/webhooks", &body).await;
    assert_eq!(response.status(), 201);
    let created = success_json(response).await;
    receiver.trust(created["secret"].as_str().unwrap());
    created
}

/// The ids of the org's events after `after` (of `types`, if any), from
/// the feed.
async fn feed_ids(app: &TestApp, key: &str, after: u64, types: &str) -> Vec<String> {
    let page = app
        .get_ok(
            key,
            &format!("/v1/events?after={after}&types={types}&limit=1000"),
        )
        .await;
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until `done` holds, polling.
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ten members added: ten `MemberAdded` events.
async fn add_members(app: &TestApp, key: &str, tag: &str) {
    for i in 0..10 {
        let body = json!({"name": format!("Texter {i}"), "email": format!("{tag}{i}@example.org"), "role": "texter"});
        success_json(app.post_as(key, "/v1/members", &body).await).await;
    }
}

async fn every_event_arrives_once_in_order_after_failed_attempts(app: TestApp) -> TestApp {
    let owner = app.create_org("Hooked").await;
    let receiver = Receiver::start(3).await;
    let created = subscribe(&app, &owner, &receiver, json!([])).await;
    let from = created["delivered_through"].as_u64().unwrap();
    let webhook = created["webhook_id"].as_str().unwrap().to_owned();
    add_members(&app, &owner, "hooked").await;
    let expected = feed_ids(&app, &owner, from, "").await;
    assert_eq!(
        expected.len(),
        11,
        "the subscription's record and ten members"
    );
    eventually("every event", async || {
        receiver.first_seen().len() == expected.len()
    })
    .await;
    let positions = {
        let seen = receiver.seen.lock().unwrap();
        assert_eq!(seen.forged, 0);
        assert_eq!(seen.failed, 3);
        // Once each, in log order, as the feed has them.
        let taken: Vec<&String> = seen.taken.iter().map(|(id, _)| id).collect();
        assert_eq!(taken, expected.iter().collect::<Vec<_>>());
        let positions: Vec<u64> = seen
            .taken
            .iter()
            .map(|(_, body)| body["position"].as_u64().unwrap())
            .collect();
        assert!(positions.windows(2).all(|pair| pair[0] < pair[1]));
        for (id, body) in &seen.taken {
            assert_eq!(body["id"], *id, "webhook-id is the event id");
            assert_eq!(body["format"], "textbank.event.v1");
            assert!(body.get("ip").is_none() && body.get("user_agent").is_none());
        }
        assert_eq!(seen.taken[0].1["type"], "WebhookSubscribed");
        positions
    };
    // Every attempt of the first delivery is recorded.
    let path = format!("/v1/webhooks/{webhook}/deliveries?limit=200");
    let deliveries = app.get_ok(&owner, &path).await;
    let deliveries = deliveries["deliveries"].as_array().unwrap();
    let first = deliveries.last().unwrap();
    assert_eq!(first["status"], "succeeded");
    // Three failures (after any 503 sent before the receiver knew the
    // secret), then the 200.
    let attempts = first["attempts"].as_array().unwrap();
    assert_eq!(
        first["attempt_count"].as_u64().unwrap() as usize,
        attempts.len()
    );
    let failures: Vec<&Value> = attempts
        .iter()
        .filter(|a| a["status_code"] == 500)
        .collect();
    assert_eq!(failures.len(), 3, "{first}");
    assert_eq!(
        failures[0]["response_excerpt"],
        "receiver down for a moment"
    );
    assert!(failures[0]["error"].as_str().unwrap().contains("500"));
    let last = attempts.last().unwrap();
    assert_eq!(last["status_code"], 200);
    assert!(last["latency_ms"].is_u64() && last["error"].is_null());
    eventually("the checkpoint", async || {
        let view = app.get_ok(&owner, &format!("/v1/webhooks/{webhook}")).await;
        view["delivered_through"].as_u64().unwrap() >= *positions.last().unwrap()
    })
    .await;
    app
}

async fn only_the_event_types_asked_for_are_delivered(app: TestApp) -> TestApp {
    let owner = app.create_org("Choosy").await;
    let receiver = Receiver::start(0).await;
    let created = subscribe(&app, &owner, &receiver, json!(["ApiKeyIssued"])).await;
    let from = created["delivered_through"].as_u64().unwrap();
    add_members(&app, &owner, "choosy").await;
    for label in ["one", "two"] {
        let body = json!({"role": "integration", "label": label});
        success_json(app.post_as(&owner, "/v1/api-keys", &body).await).await;
    }
    let expected = feed_ids(&app, &owner, from, "ApiKeyIssued").await;
    assert_eq!(expected.len(), 2);
    eventually("the keys", async || receiver.first_seen().len() == 2).await;
    // Nothing else follows.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.first_seen(), expected);
    app
}

async fn the_secret_is_shown_once_and_rotates(app: TestApp) -> TestApp {
    let owner = app.create_org("Secretive").await;
    let receiver = Receiver::start(0).await;
    let created = subscribe(&app, &owner, &receiver, json!([])).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let webhook = created["webhook_id"].as_str().unwrap().to_owned();
    let listed = app
        .get_as(&owner, "/v1/webhooks")
        .await
        .text()
        .await
        .unwrap();
    let one = app
        .get_as(&owner, &format!("/v1/webhooks/{webhook}"))
        .await
        .text()
        .await
        .unwrap();
    for shown in [&listed, &one] {
        assert!(
            !shown.contains("whsec_") && !shown.contains("secret\""),
            "{shown}"
        );
    }
    let rotated = app
        .post_ok(
            &owner,
            &format!("/v1/webhooks/{webhook}/rotate-secret"),
            &json!({}),
        )
        .await;
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    // Deliveries are signed with the new secret only.
    receiver.trust(&new_secret);
    let ping = app
        .post_ok(&owner, &format!("/v1/webhooks/{webhook}/ping"), &json!({}))
        .await;
    assert_eq!(ping["status"], "succeeded", "{ping}");
    // Neither secret is in the log the feed and the audit show.
    let events = app
        .get_as(&owner, "/v1/events?limit=1000")
        .await
        .text()
        .await
        .unwrap();
    assert!(events.contains("WebhookSecretRotated"));
    assert!(events.contains("WebhookSubscribed"));
    assert!(!events.contains(&secret[6..]) && !events.contains(&new_secret[6..]));
    assert!(
        !events.contains("/hook"),
        "the recorded URL is its origin only"
    );
    app
}

async fn a_failed_delivery_is_sent_again_and_a_ping_on_request(app: TestApp) -> TestApp {
    let owner = app.create_org("Retried").await;
    let receiver = Receiver::start(usize::MAX).await;
    // Disabled, so only the pings below are sent.
    let body = json!({"url": receiver.url, "enabled": false});
    let created = app.post_ok(&owner, "/v1/webhooks", &body).await;
    receiver.trust(created["secret"].as_str().unwrap());
    assert_eq!(created["status"], "disabled");
    let webhook = created["webhook_id"].as_str().unwrap().to_owned();
    let ping = app
        .post_ok(&owner, &format!("/v1/webhooks/{webhook}/ping"), &json!({}))
        .await;
    assert_eq!(ping["status"], "failed");
    assert_eq!(ping["kind"], "ping");
    assert_eq!(ping["event_type"], "WebhookPing");
    assert_eq!(ping["attempts"][0]["status_code"], 500);
    receiver.fail_first.store(0, Ordering::SeqCst);
    let delivery = ping["delivery_id"].as_str().unwrap();
    let retried = app
        .post_ok(
            &owner,
            &format!("/v1/webhooks/{webhook}/deliveries/{delivery}/retry"),
            &json!({}),
        )
        .await;
    assert_eq!(retried["status"], "succeeded");
    assert_eq!(retried["attempt_count"], 2);
    assert_eq!(
        retried["message_id"], ping["message_id"],
        "the same webhook-id"
    );
    assert_eq!(
        receiver.first_seen(),
        [ping["message_id"].as_str().unwrap()]
    );
    // Pages of deliveries.
    app.post_ok(&owner, &format!("/v1/webhooks/{webhook}/ping"), &json!({}))
        .await;
    let first = app
        .get_ok(
            &owner,
            &format!("/v1/webhooks/{webhook}/deliveries?limit=1"),
        )
        .await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get_ok(
            &owner,
            &format!("/v1/webhooks/{webhook}/deliveries?limit=1&cursor={cursor}"),
        )
        .await;
    assert_eq!(second["deliveries"][0]["delivery_id"], delivery);
    assert!(second["next_cursor"].is_null());
    let unknown = uuid::Uuid::now_v7();
    let path = format!("/v1/webhooks/{webhook}/deliveries/{unknown}/retry");
    expect_error(
        app.post_as(&owner, &path, &json!({})).await,
        404,
        "not_found",
    )
    .await;
    let path = format!("/v1/webhooks/{webhook}/deliveries?limit=0");
    expect_error(app.get_as(&owner, &path).await, 422, "invalid_request").await;
    let path = format!("/v1/webhooks/{webhook}/deliveries?cursor=nope");
    expect_error(app.get_as(&owner, &path).await, 422, "invalid_request").await;
    app
}

async fn another_organizations_webhooks_are_not_found(app: TestApp) -> TestApp {
    let owner = app.create_org("Ours").await;
    let other = app.create_org("Theirs").await;
    let receiver = Receiver::start(0).await;
    let created = subscribe(&app, &owner, &receiver, json!([])).await;
    let webhook = created["webhook_id"].as_str().unwrap().to_owned();
    let ping = app
        .post_ok(&owner, &format!("/v1/webhooks/{webhook}/ping"), &json!({}))
        .await;
    let delivery = ping["delivery_id"].as_str().unwrap();
    let base = format!("/v1/webhooks/{webhook}");
    for response in [
        app.get_as(&other, &base).await,
        app.patch_as(&other, &base, &json!({"enabled": false}))
            .await,
        app.post_as(&other, &format!("{base}/rotate-secret"), &json!({}))
            .await,
        app.post_as(&other, &format!("{base}/ping"), &json!({}))
            .await,
        app.get_as(&other, &format!("{base}/deliveries")).await,
        app.post_as(
            &other,
            &format!("{base}/deliveries/{delivery}/retry"),
            &json!({}),
        )
        .await,
        app.delete_as(&other, &base).await,
    ] {
        expect_error(response, 404, "not_found").await;
    }
    let theirs = app.get_ok(&other, "/v1/webhooks").await;
    assert_eq!(theirs["webhooks"], json!([]));
    // Still ours, unchanged; a manager may not see it.
    let ours = app.get_ok(&owner, &base).await;
    assert_eq!(ours["status"], "active");
    let manager = app.key_of_a(&owner, "manager").await;
    expect_error(app.get_as(&manager, &base).await, 403, "forbidden").await;
    let deleted = app.delete_as(&owner, &base).await;
    assert_eq!(deleted.status(), 204);
    expect_error(app.get_as(&owner, &base).await, 404, "not_found").await;
    // A retried delete succeeds again; another org's still does not.
    assert_eq!(app.delete_as(&owner, &base).await.status(), 204);
    expect_error(app.delete_as(&other, &base).await, 404, "not_found").await;
    app
}

async fn a_receiver_failing_past_the_retry_window_disables_the_subscription(
    app: TestApp,
) -> TestApp {
    let owner = app.create_org("Flaky").await;
    let receiver = Receiver::start(usize::MAX).await;
    let created = subscribe(&app, &owner, &receiver, json!([])).await;
    let webhook = created["webhook_id"].as_str().unwrap().to_owned();
    let base = format!("/v1/webhooks/{webhook}");
    eventually("the failing state", async || {
        app.get_ok(&owner, &base).await["status"] == "failing"
    })
    .await;
    let view = app.get_ok(&owner, &base).await;
    assert_eq!(view["enabled"], false);
    assert!(view["failing_since"].is_string());
    let deliveries = app.get_ok(&owner, &format!("{base}/deliveries")).await;
    let failed = &deliveries["deliveries"][0];
    assert_eq!(failed["status"], "failed");
    assert!(failed["attempt_count"].as_u64().unwrap() >= 3, "{failed}");
    let events = app.get_ok(&owner, "/v1/events?types=WebhookChanged").await;
    let change = &events["events"][0];
    assert_eq!(change["data"]["failing"], true);
    assert_eq!(change["actor"]["kind"], "system", "{change}");
    // Re-enabled, it resumes with the event that failed: nothing skipped.
    receiver.fail_first.store(0, Ordering::SeqCst);
    let enabled = app.patch_as(&owner, &base, &json!({"enabled": true})).await;
    assert_eq!(success_json(enabled).await["status"], "active");
    let first = failed["message_id"].as_str().unwrap().to_owned();
    eventually("the failed event", async || {
        receiver.first_seen().first() == Some(&first)
    })
    .await;
    app
}

async fn internal_receivers_are_refused_when_not_allowed(app: TestApp) -> TestApp {
    let owner = app.create_org("Careful").await;
    for url in [
        "https://127.0.0.1/hook",
        "https://localhost:8443/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:192.168.0.1]/hook",
        "http://hooks.example.org/hook",
    ] {
        let response = app
            .post_as(&owner, "/v1/webhooks", &json!({"url": url}))
            .await;
        let message = expect_error(response, 422, "address_not_allowed").await;
        assert!(
            message.contains("--webhooks-allow-private"),
            "{url}: {message}"
        );
    }
    for (body, field) in [
        (json!({"url": "not a url"}), "url"),
        (
            json!({"url": "https://hooks.example.org", "event_types": ["Opt-Out"]}),
            "event_types",
        ),
        (
            json!({"url": "https://hooks.example.org", "description": "x".repeat(501)}),
            "description",
        ),
        (
            json!({"url": "https://hooks.example.org", "secret": "mine"}),
            "secret",
        ),
    ] {
        let response = app.post_as(&owner, "/v1/webhooks", &body).await;
        let message = expect_error(response, 422, "invalid_request").await;
        assert!(message.contains(field), "{body}: {message}");
    }
    // A name that resolves nowhere yet is accepted; each delivery checks it.
    let created = app
        .post_ok(
            &owner,
            "/v1/webhooks",
            &json!({"url": "https://hooks.invalid/in", "enabled": false}),
        )
        .await;
    let webhook = created["webhook_id"].as_str().unwrap();
    let base = format!("/v1/webhooks/{webhook}");
    let response = app
        .patch_as(&owner, &base, &json!({"url": "https://192.168.1.1/in"}))
        .await;
    expect_error(response, 422, "address_not_allowed").await;
    // The address is checked again at every attempt: a stored URL that
    // names an internal address (as if its name had been moved there) is
    // refused without a request.
    let receiver = Receiver::start(0).await;
    let internal = receiver.url.replace("http://", "https://");
    app.execute(&format!(
        "UPDATE webhook_subscriptions SET url = '{internal}'"
    ))
    .await;
    let ping = app
        .post_ok(&owner, &format!("{base}/ping"), &json!({}))
        .await;
    assert_eq!(ping["status"], "failed");
    let attempt = &ping["attempts"][0];
    assert!(attempt["status_code"].is_null());
    assert!(
        attempt["error"].as_str().unwrap().contains("internal"),
        "{attempt}"
    );
    assert!(receiver.seen.lock().unwrap().taken.is_empty());
    app
}

on_both_backends!(
    every_event_arrives_once_in_order_after_failed_attempts,
    only_the_event_types_asked_for_are_delivered,
    the_secret_is_shown_once_and_rotates,
    a_failed_delivery_is_sent_again_and_a_ping_on_request,
    another_organizations_webhooks_are_not_found,
);
on_both_backends!(mod strict, spawn = spawn_strict; internal_receivers_are_refused_when_not_allowed);
on_both_backends!(mod short_window, spawn = spawn_short_window; a_receiver_failing_past_the_retry_window_disables_the_subscription);

/// The real binary, killed with SIGKILL while it delivers and while events
/// keep coming: after each restart delivery resumes from the checkpoint,
/// and the receiver has seen every event, in order, nothing skipped.
async fn killed_mid_delivery(run: &str, db: ScratchDb) {
    let launch = Launch {
        database_url: db.url().to_owned(),
        secret_key: hex::encode(rand::random::<[u8; 32]>()),
        carrier_base: "http://127.0.0.1:9".into(),
        log: std::env::temp_dir().join(format!(
            "textbank-webhook-crash-{run}-{}.log",
            uuid::Uuid::now_v7()
        )),
        extra_args: vec!["--webhooks-allow-private".into()],
    };
    let client = reqwest::Client::new();
    let mut server = launch.start().await;
    let owner = json_lines(&[
        "admin",
        "create-org",
        "--name",
        "Crash Hooks",
        "--database-url",
        db.url(),
    ])[0]["owner_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let receiver = Receiver::start(0).await;
    let created = success_json(
        client
            .post(format!("{}/v1/webhooks", server.address))
            .bearer_auth(&owner)
            .json(&json!({"url": receiver.url}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    receiver.trust(created["secret"].as_str().unwrap());
    let from = created["delivered_through"].as_u64().unwrap();
    let mut added = 0;
    let mut tried = 0;
    for cycle in 0..4 {
        let kill_at = Instant::now() + Duration::from_millis(rand::rng().random_range(50..400));
        while Instant::now() < kill_at {
            tried += 1;
            let body = json!({"name": "Member", "email": format!("m{tried}@example.org"), "role": "texter"});
            let sent = client
                .post(format!("{}/v1/members", server.address))
                .bearer_auth(&owner)
                .json(&body)
                .send()
                .await;
            if sent.is_ok_and(|answer| answer.status().is_success()) {
                added += 1;
            }
        }
        server.kill();
        eprintln!("webhook crash {run}: cycle {cycle}, {added} members so far");
        server = launch.start().await;
    }
    let feed = |after: u64| {
        client
            .get(format!(
                "{}/v1/events?after={after}&limit=1000",
                server.address
            ))
            .bearer_auth(&owner)
            .send()
    };
    let page = success_json(feed(from).await.unwrap()).await;
    let expected: Vec<String> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        expected.len() > added,
        "{} events for {added} members",
        expected.len()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while receiver.first_seen().len() < expected.len() {
        assert!(Instant::now() < deadline, "not every event arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        receiver.first_seen(),
        expected,
        "every event, in order, once first"
    );
    assert_eq!(receiver.seen.lock().unwrap().forged, 0);
    server.stop();
    let _ = std::fs::remove_file(&launch.log);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_server_killed_mid_delivery_resumes_from_the_checkpoint() {
    let db = ScratchDb::sqlite().await;
    within_time_limit(killed_mid_delivery("sqlite", db)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_server_killed_mid_delivery_resumes_from_the_checkpoint() {
    let Some(db) = ScratchDb::postgres("webhook_crash_postgres").await else {
        return;
    };
    within_time_limit(killed_mid_delivery("postgres", db)).await;
}

/// Two servers on one PostgreSQL database: one leads the deliveries, so
/// the receiver takes every event once; when the leader stops, the other
/// takes over from the checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_postgresql_database_deliver_each_event_once() {
    let Some(first) =
        crate::helpers::spawn_app(crate::helpers::On::Postgres, "webhook_two_servers").await
    else {
        return;
    };
    within_time_limit(async {
        let first = first.restart_named("tb_hooks_a").await;
        let second = first.another_server("tb_hooks_b").await;
        let second_url = format!("http://{}", second.address());
        let owner = first.create_org("Twice").await;
        let receiver = Receiver::start(0).await;
        let created = subscribe(&first, &owner, &receiver, json!([])).await;
        let from = created["delivered_through"].as_u64().unwrap();
        add_members(&first, &owner, "first").await;
        for i in 0..10 {
            let body = json!({"name": "Second", "email": format!("second{i}@example.org"), "role": "texter"});
            let answer = first
                .client
                .post(format!("{second_url}/v1/members"))
                .bearer_auth(&owner)
                .json(&body)
                .send()
                .await
                .unwrap();
            success_json(answer).await;
        }
        let expected = feed_ids(&first, &owner, from, "").await;
        assert_eq!(expected.len(), 21);
        eventually("every event", async || {
            receiver.first_seen().len() == expected.len()
        })
        .await;
        // The first server leads (it started first); it stops, the second
        // takes the lead and goes on from the checkpoint.
        let client = first.client.clone();
        let db = first.stop_keeping_database().await;
        let more = json!({"name": "Later", "email": "later@example.org", "role": "texter"});
        let answer = client
            .post(format!("{second_url}/v1/members"))
            .bearer_auth(&owner)
            .json(&more)
            .send()
            .await
            .unwrap();
        success_json(answer).await;
        eventually("the event after the handover", async || {
            receiver.first_seen().len() == expected.len() + 1
        })
        .await;
        let taken: Vec<String> = {
            let seen = receiver.seen.lock().unwrap();
            seen.taken.iter().map(|(id, _)| id.clone()).collect()
        };
        assert_eq!(taken.len(), expected.len() + 1, "each event once");
        assert_eq!(taken[..expected.len()], expected[..]);
        second.shutdown().await.expect("the second server stops");
        db.cleanup().await;
    })
    .await;
}
