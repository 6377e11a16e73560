//! `textbank bench webhooks-out`: outbound webhook deliveries per second
//! from the in-process server to a local receiver that answers after a
//! millisecond, beside a plain loop posting the same body to the same
//! receiver (one loop per subscription, as each subscription delivers on
//! its own); then how long a voter's STOP, posted as a signed carrier
//! webhook, takes to reach a subscribed receiver as an `OptOutRecorded`
//! event (p50/p99), beside how long the carrier's post itself took.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};
use textbank_api::Running;
use textbank_app::SimSettings;
use textbank_domain::{Actor, EventMetadata, OrgId, StreamId};
use textbank_store::{ExpectedVersion, NewEvent};
use textbank_testkit::ScratchDb;

use crate::send::{expect_json, server_database, start};
use crate::{BenchResult, WebhooksOutArgs, print_figure};

/// The event type the deliveries figure appends (and subscribes to).
const BENCH_TYPE: &str = "BenchEventRecorded";
const APPEND_BATCH: usize = 500;
const WAIT: Duration = Duration::from_secs(300);

/// What the receiver counts and remembers.
#[derive(Default)]
struct Received {
    count: AtomicU64,
    /// A body as delivered, for the baseline to post.
    sample: Mutex<Option<Bytes>>,
    /// When each opted-out phone's `OptOutRecorded` arrived.
    opt_outs: Mutex<HashMap<String, Instant>>,
}

struct Receiver {
    url: String,
    received: Arc<Received>,
}

async fn receiver(answer_after: Duration) -> BenchResult<Receiver> {
    let received = Arc::new(Received::default());
    let take = async |State((received, delay)): State<(Arc<Received>, Duration)>, body: Bytes| {
        tokio::time::sleep(delay).await;
        if body.windows(14).any(|window| window == b"OptOutRecorded")
            && let Ok(event) = serde_json::from_slice::<Value>(&body)
            && let Some(phone) = event["subject"]["phone"].as_str()
        {
            let mut opt_outs = received
                .opt_outs
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            opt_outs
                .entry(phone.to_owned())
                .or_insert_with(Instant::now);
        }
        received.count.fetch_add(1, Ordering::Relaxed);
        let mut sample = received
            .sample
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if sample.is_none() {
            *sample = Some(body);
        }
        "taken"
    };
    let router = Router::new()
        .route("/hook", post(take))
        .with_state((received.clone(), answer_after));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(Receiver { url, received })
}

pub async fn run(scratch: &ScratchDb, args: &WebhooksOutArgs) -> BenchResult {
    let database = server_database(scratch, args.db_max_connections).await?;
    let server = start(&database, SimSettings::quiet((5, 20))).await?;
    let outcome = measure(&server, args).await;
    let stopped = server.shutdown().await;
    outcome?;
    Ok(stopped?)
}

async fn measure(server: &Running, args: &WebhooksOutArgs) -> BenchResult {
    let http = textbank_sms::http_client(Duration::from_secs(30))?;
    let receiver = receiver(Duration::from_micros(args.receiver_micros)).await?;
    let created = server.app().create_org("Bench Webhooks").await?;
    let setup = Setup {
        server,
        http: &http,
        receiver: &receiver,
        org: created.org_id,
        owner: &created.owner_key,
        args,
    };
    deliveries(&setup).await?;
    stop_latency(&setup).await
}

/// What both figures run on.
#[derive(Clone, Copy)]
struct Setup<'a> {
    server: &'a Running,
    http: &'a reqwest::Client,
    receiver: &'a Receiver,
    org: OrgId,
    owner: &'a str,
    args: &'a WebhooksOutArgs,
}

async fn until(what: &str, mut done: impl FnMut() -> bool) -> BenchResult {
    let deadline = Instant::now() + WAIT;
    while !done() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

async fn subscribe(
    server: &Running,
    http: &reqwest::Client,
    owner: &str,
    url: &str,
    types: &[&str],
) -> BenchResult<Value> {
    let request = http
        .post(server.url("/v1/webhooks"))
        .bearer_auth(owner)
        .json(&json!({"url": url, "event_types": types}));
    expect_json(request, 201, "subscribing the receiver").await
}

async fn deliveries(setup: &Setup<'_>) -> BenchResult {
    let subscriptions = setup.args.subscriptions.max(1);
    let events = setup.args.events.max(1);
    for _ in 0..subscriptions {
        subscribe(
            setup.server,
            setup.http,
            setup.owner,
            &setup.receiver.url,
            &[BENCH_TYPE],
        )
        .await?;
    }
    let expected = u64::from(subscriptions) * events;
    let stream = StreamId::parse(format!("bench-hooks-{}", setup.org))?;
    let metadata = EventMetadata::new(Some(setup.org), Actor::System);
    let started = Instant::now();
    let mut appended = 0u64;
    while appended < events {
        let batch = (events - appended).min(APPEND_BATCH as u64);
        let new_events = (0..batch)
            .map(|n| {
                let data = json!({"n": appended + n, "note": "a delivery of the outbound webhook benchmark"});
                NewEvent::new(BENCH_TYPE, data, metadata.clone())
            })
            .collect();
        setup
            .server
            .app()
            .events()
            .append(&stream, ExpectedVersion::Any, new_events)
            .await?;
        appended += batch;
    }
    let count = &setup.receiver.received.count;
    until("every delivery", || {
        count.load(Ordering::Relaxed) >= expected
    })
    .await?;
    let elapsed = started.elapsed();
    let rate = expected as f64 / elapsed.as_secs_f64();

    let body = setup
        .receiver
        .received
        .sample
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
        .ok_or("the receiver kept no body")?;
    let baseline_started = Instant::now();
    let loops = (0..subscriptions).map(|_| {
        let http = setup.http.clone();
        let url = setup.receiver.url.clone();
        let body = body.clone();
        tokio::spawn(async move {
            for _ in 0..events {
                let answer = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                answer.bytes().await?;
            }
            Ok::<_, reqwest::Error>(())
        })
    });
    for finished in futures_util::future::join_all(loops).await {
        finished??;
    }
    let baseline = expected as f64 / baseline_started.elapsed().as_secs_f64();
    print_figure(
        "webhooks-out",
        setup.server.app().events().backend(),
        rate,
        "deliveries/s",
        baseline,
        json!({
            "subscriptions": subscriptions,
            "events": events,
            "deliveries": expected,
            "receiver_micros": setup.args.receiver_micros,
            "body_bytes": body.len(),
            "target": 2000,
        }),
    );
    Ok(())
}

async fn stop_latency(setup: &Setup<'_>) -> BenchResult {
    let request = setup
        .http
        .put(setup.server.url("/v1/carrier"))
        .bearer_auth(setup.owner)
        .json(&json!({"carrier": "sim"}));
    let carrier_view = expect_json(request, 200, "configuring the simulator").await?;
    let our_number = carrier_view["sending_numbers"][0]
        .as_str()
        .ok_or("the simulator has no sending number")?
        .to_owned();
    let carrier = setup
        .server
        .app()
        .carrier_for(setup.org)
        .await?
        .ok_or("the benchmark org has no carrier")?;
    subscribe(
        setup.server,
        setup.http,
        setup.owner,
        &setup.receiver.url,
        &["OptOutRecorded"],
    )
    .await?;
    let url = setup.server.url("/webhooks/twilio/inbound");
    let account_sid = textbank_sms::SimConfig::default().account_sid;
    let stops = setup.args.stops.max(1);
    let mut sent: Vec<(String, Instant)> = Vec::new();
    let mut posts: Vec<f64> = Vec::new();
    for i in 0..stops {
        let phone = format!("+1555301{i:04}");
        let params: Vec<(String, String)> = [
            ("MessageSid", format!("SMbench{i:06}")),
            ("From", phone.clone()),
            ("To", our_number.clone()),
            ("Body", "STOP".to_owned()),
            ("AccountSid", account_sid.clone()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        let signature = textbank_sms::twilio::signature(carrier.webhook_secret(), &url, &params);
        let posted = Instant::now();
        let answer = setup
            .http
            .post(&url)
            .header("x-twilio-signature", signature)
            .form(&params)
            .send()
            .await?;
        if !answer.status().is_success() {
            return Err(format!("the STOP webhook answered {}", answer.status()).into());
        }
        posts.push(posted.elapsed().as_secs_f64() * 1000.0);
        sent.push((phone, posted));
        // Voters reply one by one, not in a burst.
        tokio::time::sleep(Duration::from_millis(setup.args.stop_pause_ms)).await;
    }
    let opt_outs = &setup.receiver.received.opt_outs;
    until("every opt-out at the receiver", || {
        opt_outs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
            >= stops as usize
    })
    .await?;
    let arrived = opt_outs
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let mut latencies: Vec<f64> = sent
        .iter()
        .filter_map(|(phone, posted)| {
            let at = arrived.get(phone)?;
            Some(at.saturating_duration_since(*posted).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    posts.sort_by(f64::total_cmp);
    let p99 = percentile(&latencies, 0.99);
    print_figure(
        "webhooks-out-stop-latency",
        setup.server.app().events().backend(),
        p99,
        "ms p99",
        percentile(&posts, 0.99),
        json!({
            "stops": stops,
            "p50_ms": percentile(&latencies, 0.5),
            "max_ms": percentile(&latencies, 1.0),
            "baseline_is": "p99 of the carrier's STOP post itself (answered before delivery)",
            "target_ms": 1000,
        }),
    );
    Ok(())
}

fn percentile(sorted: &[f64], share: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 * share).ceil() as usize).clamp(1, sorted.len()) - 1;
    (sorted[index] * 10.0).round() / 10.0
}
