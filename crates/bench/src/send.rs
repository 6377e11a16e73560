//! `textbank bench send` and `textbank bench webhooks`: the real server,
//! in-process on 127.0.0.1:0 over a scratch database with its projectors,
//! dispatcher and simulated carrier running, driven over HTTP by concurrent
//! clients — texters fetching their queue and clicking Send, or a carrier
//! posting signed delivery reports. Each figure is printed beside an axum
//! endpoint doing one plain INSERT per request, driven by as many concurrent
//! clients with the same request bodies.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::baseline::BaselineTable;
use crate::import::LAST;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use chrono::{DateTime, Timelike, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};
use textbank_api::Running;
use textbank_app::stage_times::StageTotal;
use textbank_app::{
    App, Config, MAX_QUEUE_LIMIT, SecretKeySource, SendSettings, SimSettings, WebhookSettings,
};
use textbank_domain::recipient::RecipientEvent;
use textbank_domain::timezone::zip_zone;
use textbank_domain::{Actor, DomainEvent, EventMetadata, MessageId, OrgId, StreamId};
use textbank_store::{ConnectOptions, Database, EventStore, NewEvent};
use textbank_testkit::ScratchDb;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{BenchResult, SendArgs, WebhooksArgs, print_figure};

/// How long the dispatcher gets, after the clicks, to hand every clicked
/// message to the simulator.
const DISPATCH_WAIT: Duration = Duration::from_secs(30);

/// The statuses posted for each sent message, in the order Twilio reports
/// them. All distinct: a repeated (sid, status) is acknowledged without being
/// recorded, and would flatter the figure.
const STATUSES: [&str; 4] = ["queued", "sending", "sent", "delivered"];

/// Contacts are numbered 555-200-0000 onwards, and 555-2xx holds a million.
const MAX_CONTACTS: u64 = 1_000_000;

/// ZIP codes in states without texting hours of their own (docs/adr/0011),
/// one per contiguous US zone: New York, Chicago, Denver, San Francisco.
const ZIPS: [&str; 4] = ["10001", "60601", "80202", "94103"];

pub async fn send(scratch: &ScratchDb, args: &SendArgs) -> BenchResult {
    let http = textbank_sms::http_client(Duration::from_secs(30))?;
    let database = server_database(scratch, args.db_max_connections).await?;
    // A quick simulator that neither fails nor draws replies: every click
    // is one message and two status callbacks, posted back to this server
    // while the texters click, as they would be in production.
    let server = start(&database, SimSettings::quiet((5, 20))).await?;
    let outcome = measure_send(&database, &server, &http, args).await;
    let stopped = server.shutdown().await;
    outcome?;
    Ok(stopped?)
}

async fn measure_send(
    database: &Database,
    server: &Running,
    http: &reqwest::Client,
    args: &SendArgs,
) -> BenchResult {
    let fixture = fixture(server, http, args.texters, args.clicks_per_texter).await?;
    let from = server.app().events().head_position().await?;
    let stages_before = server.app().stage_times().totals();
    let cpu_before = cpu_seconds();
    let clicks_started = Utc::now();
    let (elapsed, runs) = click(&server.url(""), http, &fixture, args.clicks_per_texter).await?;
    let clicks_ended = Utc::now();
    let cpu = cpu_share(cpu_before, cpu_seconds(), elapsed);
    let stages = stage_means_ms(&stages_before, &server.app().stage_times().totals());

    let mut clicks = Tally::default();
    let mut queue = Vec::new();
    let mut lagging = 0;
    let mut bodies = Vec::new();
    for run in runs {
        clicks.merge(run.clicks);
        queue.extend(run.queue);
        lagging += run.lagging;
        bodies.push(run.bodies);
    }
    let accepted = clicks.statuses.get(&202).copied().unwrap_or(0);
    let dispatched = await_dispatch(server.app().events(), from, accepted).await?;

    // The dispatcher is done (or out of time) before the baseline runs, so
    // the two runs do not share the machine.
    let baseline = baseline(database, bodies, 200, {
        let http = http.clone();
        move |url: &str, body: &String| {
            http.post(url)
                .header("content-type", "application/json")
                .body(body.clone())
        }
    })
    .await?;

    let backend = server.app().events().backend();
    let (p50, p99) = clicks.percentiles_ms();
    let (baseline_p50, baseline_p99) = baseline.tally.percentiles_ms();
    let queue_fetches = queue.len();
    let (queue_p50, queue_p99) = percentiles_ms(queue);
    print_figure(
        "send",
        backend,
        clicks.latencies.len() as f64 / elapsed.as_secs_f64(),
        "clicks/s",
        baseline.rate(),
        json!({
            "texters": args.texters,
            "clicks": clicks.latencies.len(),
            "statuses": clicks.statuses,
            "p50_ms": p50,
            "p99_ms": p99,
            "baseline_p50_ms": baseline_p50,
            "baseline_p99_ms": baseline_p99,
            "queue_fetches": queue_fetches,
            "queue_lagging_503": lagging,
            "queue_p50_ms": queue_p50,
            "queue_p99_ms": queue_p99,
            "first_error": clicks.first_error,
            // The whole process: the server and the texters driving it.
            "cpu_share_of_cores": cpu,
            // Mean time per click in each stage (auth: per request).
            "click_stages_ms": stages,
        }),
    );

    // Dispatch runs alongside the clicks, so its rate is over the time from
    // the first click to the last hand-over; it has no baseline.
    let handed = dispatched.submitted.len();
    let last = dispatched.last_submitted_at.unwrap_or(clicks_started);
    let seconds = |since: DateTime<Utc>| (last - since).num_milliseconds() as f64 / 1000.0;
    println!(
        "{}",
        json!({
            "bench": "send_dispatch",
            "backend": backend.name(),
            "value": (handed as f64 / seconds(clicks_started).max(f64::EPSILON)).round(),
            "unit": "messages/s",
            "handed_to_carrier": handed,
            "clicked": accepted,
            "not_handed": dispatched.not_submitted,
            "done_s_after_last_click": seconds(clicks_ended),
            "complete": handed as u64 + dispatched.not_submitted >= accepted,
        })
    );
    Ok(())
}

/// This process's user and system CPU time so far, in seconds, from
/// /proc/self/stat (`None` where there is none).
fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name (which may hold spaces) in
    // parentheses; utime and stime are the 14th and 15th of the line.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Clock ticks; Linux reports them at USER_HZ, 100 per second.
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok().map(|t| t / 100.0);
    Some((ticks(11)?, ticks(12)?))
}

/// The share of all cores the process used between two readings.
fn cpu_share(before: Option<(f64, f64)>, after: Option<(f64, f64)>, elapsed: Duration) -> Value {
    let (Some(before), Some(after)) = (before, after) else {
        return Value::Null;
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let capacity = elapsed.as_secs_f64() * cores;
    let share = |seconds: f64| (seconds / capacity * 1000.0).round() / 1000.0;
    json!({
        "cores": cores,
        "user": share(after.0 - before.0),
        "system": share(after.1 - before.1),
        "total": share(after.0 - before.0 + after.1 - before.1),
    })
}

/// Each stage's mean milliseconds between two readings of the server's
/// stage totals.
fn stage_means_ms(before: &[StageTotal], after: &[StageTotal]) -> Value {
    let mut means = serde_json::Map::new();
    for (old, new) in before.iter().zip(after) {
        let count = new.count - old.count;
        let mean = (count > 0).then(|| {
            ((new.seconds - old.seconds) / count as f64 * 1000.0 * 1000.0).round() / 1000.0
        });
        means.insert(new.stage.name().to_owned(), json!(mean));
    }
    Value::Object(means)
}

pub async fn webhooks(scratch: &ScratchDb, args: &WebhooksArgs) -> BenchResult {
    let http = textbank_sms::http_client(Duration::from_secs(30))?;
    let database = server_database(scratch, args.db_max_connections).await?;
    // The simulator's own callbacks are put off past the end of the run, so
    // the endpoint sees only the reports the benchmark posts and counts.
    let hour = 3_600_000;
    let server = start(&database, SimSettings::quiet((hour, hour))).await?;
    let outcome = measure_webhooks(&database, &server, &http, args).await;
    let stopped = server.shutdown().await;
    outcome?;
    Ok(stopped?)
}

/// One signed status callback, signed before the clock starts (a carrier
/// signs on its own machine).
struct Signed {
    params: Vec<(String, String)>,
    signature: String,
}

async fn measure_webhooks(
    database: &Database,
    server: &Running,
    http: &reqwest::Client,
    args: &WebhooksArgs,
) -> BenchResult {
    let concurrency = args.concurrency.max(1) as usize;
    let reports = args.reports.max(1) as usize;
    // Sent messages to report on: clicked through the API like real ones.
    let messages = reports.div_ceil(STATUSES.len());
    let texters = concurrency.min(messages);
    let per_texter = messages.div_ceil(texters);
    let fixture = fixture(server, http, texters as u32, per_texter as u32).await?;
    let from = server.app().events().head_position().await?;
    let (_, runs) = click(&server.url(""), http, &fixture, per_texter as u32).await?;
    let mut clicks = Tally::default();
    for run in runs {
        clicks.merge(run.clicks);
    }
    if let Some(error) = clicks.first_error {
        return Err(format!("clicking the messages to report on failed: {error}").into());
    }
    let dispatched =
        await_dispatch(server.app().events(), from, clicks.latencies.len() as u64).await?;
    if dispatched.submitted.len() < messages {
        return Err(format!(
            "only {} of {messages} messages reached the simulator in {DISPATCH_WAIT:?}",
            dispatched.submitted.len()
        )
        .into());
    }

    let carrier = server
        .app()
        .carrier_for(fixture.org)
        .await?
        .ok_or("the benchmark org has no carrier")?;
    let our_number = carrier
        .sending_numbers
        .first()
        .ok_or("the simulated carrier has no sending number")?;
    let account_sid = textbank_sms::SimConfig::default().account_sid;
    let url = server.url("/webhooks/twilio/status");
    let mut work: Vec<Vec<Signed>> = (0..concurrency).map(|_| Vec::new()).collect();
    let mut planned = 0;
    // Each caller reports on its own messages, each message's statuses in
    // order, as one carrier connection would.
    for (index, sent) in dispatched.submitted.iter().take(messages).enumerate() {
        let voter = dispatched
            .phones
            .get(&sent.message_id)
            .ok_or("a message was handed to the carrier without a click")?;
        for status in STATUSES.into_iter().take(reports - planned) {
            let params: Vec<(String, String)> = [
                ("MessageSid", sent.sid.as_str()),
                ("MessageStatus", status),
                ("From", sent.from.as_deref().unwrap_or(our_number)),
                ("To", voter),
                ("AccountSid", &account_sid),
            ]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
            let signature =
                textbank_sms::twilio::signature(carrier.webhook_secret(), &url, &params);
            work[index % concurrency].push(Signed { params, signature });
            planned += 1;
        }
    }
    let shares: Vec<Vec<Arc<Signed>>> = work
        .into_iter()
        .map(|share| share.into_iter().map(Arc::new).collect())
        .collect();

    let before = server.app().events().head_position().await?;
    let callbacks = drive(shares.clone(), 200, {
        let http = http.clone();
        move |signed: &Arc<Signed>| {
            http.post(&url)
                .header("x-twilio-signature", &signed.signature)
                .form(&signed.params)
        }
    })
    .await?;
    // A 200 is also what a duplicate or an ignored report gets: count what
    // was written, and matched to its message.
    let recorded = recorded_reports(server.app(), before).await?;
    let baseline = baseline(database, shares, 200, {
        let http = http.clone();
        move |url: &str, signed: &Arc<Signed>| {
            http.post(url)
                .header("x-twilio-signature", &signed.signature)
                .form(&signed.params)
        }
    })
    .await?;

    let (p50, p99) = callbacks.tally.percentiles_ms();
    let (baseline_p50, baseline_p99) = baseline.tally.percentiles_ms();
    print_figure(
        "webhooks",
        server.app().events().backend(),
        callbacks.rate(),
        "callbacks/s",
        baseline.rate(),
        json!({
            "reports": planned,
            "messages": messages,
            "concurrency": concurrency,
            "statuses": callbacks.tally.statuses,
            "recorded": recorded,
            "p50_ms": p50,
            "p99_ms": p99,
            "baseline_p50_ms": baseline_p50,
            "baseline_p99_ms": baseline_p99,
            "first_error": callbacks.tally.first_error,
        }),
    );
    Ok(())
}

/// The scratch database again, with the pool `textbank serve` would have
/// (the scratch pool is sized for tests), for the server and the baseline
/// alike.
pub(crate) async fn server_database(
    scratch: &ScratchDb,
    max_connections: u32,
) -> BenchResult<Database> {
    let options = ConnectOptions {
        max_connections,
        migrate: false,
        ..ConnectOptions::default()
    };
    Ok(Database::connect(scratch.url(), &options).await?)
}

/// The server as `textbank serve` builds it, on a free port of 127.0.0.1
/// over `database`; shutting it down closes `database`.
pub(crate) async fn start(database: &Database, sim: SimSettings) -> BenchResult<Running> {
    let config = Config {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        secret_key: SecretKeySource::Generated,
        send: SendSettings {
            // The benchmark clicks as soon as a message is shown; a person
            // cannot, and the server would rightly refuse it as too fast.
            min_click_interval: chrono::Duration::zero(),
            // The simulator has no carrier throughput limit; at the default
            // pace (10 messages/s per number) the dispatch figure would only
            // measure the pacing.
            sender_rate_per_second: 1_000_000.0,
            sim,
            ..SendSettings::default()
        },
        // The benchmarks' webhook receivers listen on 127.0.0.1.
        webhooks: WebhookSettings {
            allow_private: true,
            ..WebhookSettings::default()
        },
        ..Config::with_open_database(database.clone())
    };
    Ok(textbank_api::start(config).await?)
}

/// Sends `request`; its JSON answer, or an error naming `what` when the
/// status is not `expected`.
pub(crate) async fn expect_json(
    request: reqwest::RequestBuilder,
    expected: u16,
    what: &str,
) -> BenchResult<Value> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body = response.text().await?;
    if status != expected {
        return Err(format!("{what}: expected {expected}, got {status}: {body}").into());
    }
    Ok(serde_json::from_str(&body)?)
}

pub(crate) fn text<'v>(value: &'v Value, field: &str) -> BenchResult<&'v str> {
    value[field]
        .as_str()
        .ok_or_else(|| format!("no {field:?} in {value}").into())
}

/// The API as an org's owner, over HTTP at `base` (`http://host:port`):
/// JSON in, JSON out, the status checked.
struct AsOwner<'a> {
    base: &'a str,
    http: &'a reqwest::Client,
    key: &'a str,
}

impl AsOwner<'_> {
    /// A request to `path` with the owner's key, to add a body to.
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}{path}", self.base);
        self.http.request(method, url).bearer_auth(self.key)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        expected: u16,
    ) -> BenchResult<Value> {
        let what = format!("{method} {path}");
        expect_json(self.request(method, path).json(body), expected, &what).await
    }
}

/// An org ready to text, set up through the API as an organizer would.
pub(crate) struct Fixture {
    pub(crate) org: OrgId,
    pub(crate) owner_key: String,
    pub(crate) campaign_id: String,
    /// The campaign's first list.
    pub(crate) list_id: String,
    pub(crate) texter_ids: Vec<String>,
    pub(crate) texter_keys: Vec<String>,
}

/// The simulated carrier, `texters` texters with keys of their own, one list
/// of `texters × per_texter` contacts, a launched campaign, and each
/// texter's share of it assigned.
pub(crate) async fn fixture(
    server: &Running,
    http: &reqwest::Client,
    texters: u32,
    per_texter: u32,
) -> BenchResult<Fixture> {
    let contacts = u64::from(texters) * u64::from(per_texter);
    let created = server.app().create_org("Benchmark").await?;
    let base = server.url("");
    let team = Team::enlist(&base, http, created.org_id, created.owner_key, texters).await?;
    let list_id = team.upload_contacts(0, contacts, 0).await?;
    team.launch(vec![list_id], per_texter).await
}

/// An org on the simulated carrier with its texters, before any list, and
/// the server at `base` it is set up on.
pub(crate) struct Team {
    base: String,
    http: reqwest::Client,
    org: OrgId,
    owner_key: String,
    texter_ids: Vec<String>,
    texter_keys: Vec<String>,
}

impl Team {
    /// Sets the org `owner_key` owns on the simulated carrier and adds
    /// `texters` texters with keys of their own, over HTTP at `base`.
    pub(crate) async fn enlist(
        base: &str,
        http: &reqwest::Client,
        org: OrgId,
        owner_key: String,
        texters: u32,
    ) -> BenchResult<Self> {
        let owner = AsOwner {
            base,
            http,
            key: &owner_key,
        };
        let carrier = json!({"carrier": "sim"});
        owner
            .call(Method::PUT, "/v1/carrier", &carrier, 200)
            .await?;

        let mut texter_ids = Vec::new();
        let mut texter_keys = Vec::new();
        for texter in 0..texters {
            let member = json!({
                "name": format!("Texter {texter}"),
                "email": format!("texter{texter}@bench.example.org"),
                "role": "texter",
            });
            let member = owner
                .call(Method::POST, "/v1/members", &member, 201)
                .await?;
            let member_id = text(&member, "member_id")?.to_owned();
            let key = json!({"role": "texter", "member_id": member_id, "label": "bench"});
            let key = owner.call(Method::POST, "/v1/api-keys", &key, 201).await?;
            texter_keys.push(text(&key, "key")?.to_owned());
            texter_ids.push(member_id);
        }
        Ok(Self {
            base: base.to_owned(),
            http: http.clone(),
            org,
            owner_key,
            texter_ids,
            texter_keys,
        })
    }

    /// The API as this team's owner.
    fn owner(&self) -> AsOwner<'_> {
        AsOwner {
            base: &self.base,
            http: &self.http,
            key: &self.owner_key,
        }
    }

    /// Uploads a list of `count` contacts, the `first`th onwards (numbered
    /// 555-200-0000 on, so lists of distinct ranges share no phone), with
    /// last names and precincts drawn from a generator seeded with `seed`;
    /// its id.
    pub(crate) async fn upload_contacts(
        &self,
        first: u64,
        count: u64,
        seed: u64,
    ) -> BenchResult<String> {
        let end = first + count;
        if count == 0 || end > MAX_CONTACTS {
            return Err(format!(
                "a list takes 1 to {MAX_CONTACTS} contacts in all, got {first}..{end}"
            )
            .into());
        }
        let zip = contact_zip(Utc::now())?;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut csv = String::with_capacity(count as usize * 50);
        csv.push_str("first_name,last_name,cell,zip,precinct\r\n");
        for n in first..end {
            write!(
                csv,
                "Voter{n},{},555-{}-{:04},{zip},{}\r\n",
                LAST[rng.random_range(0..LAST.len())],
                200 + n / 10_000,
                n % 10_000,
                rng.random_range(1..=40),
            )?;
        }
        let path = "/v1/lists?name=Benchmark&source=generated&consent_basis=benchmark";
        let list = expect_json(
            self.owner()
                .request(Method::POST, path)
                .header("content-type", "text/csv")
                .body(csv),
            201,
            "POST /v1/lists",
        )
        .await?;
        if list["imported"].as_u64() != Some(count) {
            return Err(format!("the list did not import all {count} contacts: {list}").into());
        }
        Ok(text(&list, "list_id")?.to_owned())
    }

    /// A draft campaign over `list_ids`; its id and the create request's
    /// time.
    pub(crate) async fn create_campaign(
        &self,
        list_ids: &[String],
    ) -> BenchResult<(String, Duration)> {
        let campaign = json!({
            "name": "Benchmark GOTV",
            "initial_message": "Hi {first_name}, it's {texter_name} with Rivera for Council. \
                Early voting starts Saturday. Can we count on you? Reply STOP to opt out",
            "list_ids": list_ids,
            // The widest window the API takes; see `contact_zip` for why the
            // contacts are inside it whenever the benchmark runs.
            "texting_hours": {"start": "00:00", "end": "23:59"},
        });
        let started = Instant::now();
        let campaign = self
            .owner()
            .call(Method::POST, "/v1/campaigns", &campaign, 201)
            .await?;
        let took = started.elapsed();
        Ok((text(&campaign, "campaign_id")?.to_owned(), took))
    }

    /// Waits until every contact of the campaign's lists is in the campaign
    /// (large lists are copied in the background); how long that took.
    pub(crate) async fn await_contacts(&self, campaign_id: &str) -> BenchResult<Duration> {
        let started = Instant::now();
        let path = format!("/v1/campaigns/{campaign_id}");
        loop {
            let request = self.owner().request(Method::GET, &path);
            let campaign = expect_json(request, 200, "GET /v1/campaigns/{id}").await?;
            if campaign["contacts_copying"].is_null() {
                return Ok(started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(600) {
                return Err(format!(
                    "the campaign's contacts were not copied in 10 min: {campaign}"
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A launched campaign over `list_ids`, each texter assigned
    /// `per_texter` of its contacts.
    pub(crate) async fn launch(
        self,
        list_ids: Vec<String>,
        per_texter: u32,
    ) -> BenchResult<Fixture> {
        let (campaign_id, _) = self.create_campaign(&list_ids).await?;
        self.await_contacts(&campaign_id).await?;
        self.launch_created(campaign_id, list_ids, per_texter).await
    }

    /// Launches the campaign created over `list_ids`, each texter assigned
    /// `per_texter` of its contacts.
    pub(crate) async fn launch_created(
        self,
        campaign_id: String,
        list_ids: Vec<String>,
        per_texter: u32,
    ) -> BenchResult<Fixture> {
        let owner = self.owner();
        let launch = format!("/v1/campaigns/{campaign_id}/launch");
        owner.call(Method::POST, &launch, &json!({}), 200).await?;
        let assignments = format!("/v1/campaigns/{campaign_id}/assignments");
        for texter_id in &self.texter_ids {
            let share = json!({"texter_id": texter_id, "count": per_texter});
            let assigned = owner.call(Method::POST, &assignments, &share, 200).await?;
            if assigned["assigned"].as_u64() != Some(u64::from(per_texter)) {
                return Err(
                    format!("a texter got fewer than {per_texter} contacts: {assigned}").into(),
                );
            }
        }
        Ok(Fixture {
            org: self.org,
            owner_key: self.owner_key,
            campaign_id,
            list_id: list_ids.into_iter().next().unwrap_or_default(),
            texter_ids: self.texter_ids,
            texter_keys: self.texter_keys,
        })
    }
}

/// The contacts' ZIP: of `ZIPS`, the one whose local time is nearest noon.
/// 555 is no real area code, so a contact without a ZIP may be texted only
/// while the window is open in every contiguous zone, which a 00:00–23:59
/// window is not for a few minutes a day; a zone near its noon is inside
/// the window for hours either side, whenever the benchmark runs.
fn contact_zip(now: DateTime<Utc>) -> BenchResult<&'static str> {
    ZIPS.into_iter()
        .filter_map(|zip| {
            let (_, zone) = zip_zone(zip)?;
            let minute = now.with_timezone(zone).time().num_seconds_from_midnight() / 60;
            Some((minute.abs_diff(12 * 60), zip))
        })
        .min()
        .map(|(_, zip)| zip)
        .ok_or_else(|| "none of the benchmark's ZIP codes has a known time zone".into())
}

/// What one texter did.
#[derive(Default)]
pub(crate) struct TexterRun {
    pub(crate) clicks: Tally,
    /// How long each queue fetch took.
    queue: Vec<Duration>,
    /// Queue fetches answered 503 `projection_lagging` (then retried).
    lagging: u64,
    /// The click bodies it posted, replayed against the baseline.
    bodies: Vec<String>,
}

/// Every texter at once, each fetching its queue and clicking Send on each
/// message until it has sent `per_texter`; the wall time and each texter's
/// run.
pub(crate) async fn click(
    base: &str,
    http: &reqwest::Client,
    fixture: &Fixture,
    per_texter: u32,
) -> BenchResult<(Duration, Vec<TexterRun>)> {
    let queue_url = format!(
        "{base}/v1/texter/queue?campaign_id={}&limit={MAX_QUEUE_LIMIT}",
        fixture.campaign_id
    );
    let send_url = format!("{base}/v1/messages");
    let started = Instant::now();
    let tasks: Vec<JoinHandle<BenchResult<TexterRun>>> = fixture
        .texter_keys
        .iter()
        .map(|key| {
            let (http, key) = (http.clone(), key.clone());
            let (queue_url, send_url) = (queue_url.clone(), send_url.clone());
            tokio::spawn(async move {
                let mut run = TexterRun::default();
                while run.bodies.len() < per_texter as usize {
                    let queue = fetch_queue(&http, &queue_url, &key, &mut run).await?;
                    let messages = queue["messages"].as_array().map_or(&[][..], Vec::as_slice);
                    if messages.is_empty() {
                        return Err(format!(
                            "a texter's queue is empty after {} of {per_texter} clicks \
                             (remaining {}, held for quiet hours {}): {}",
                            run.bodies.len(),
                            queue["remaining"],
                            queue["held_for_quiet_hours"],
                            queue["hold"],
                        )
                        .into());
                    }
                    for message in messages.iter().take(per_texter as usize - run.bodies.len()) {
                        let body = json!({
                            "click_token": text(message, "click_token")?,
                            "clicked_at": Utc::now(),
                        })
                        .to_string();
                        let call = Instant::now();
                        let response = http
                            .post(&send_url)
                            .bearer_auth(&key)
                            .header("idempotency-key", uuid::Uuid::now_v7().to_string())
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .await?;
                        let status = response.status().as_u16();
                        let answer = response.text().await?;
                        run.clicks.record(call.elapsed(), status, 202, answer);
                        run.bodies.push(body);
                    }
                }
                Ok(run)
            })
        })
        .collect();
    let mut runs = Vec::with_capacity(tasks.len());
    for task in tasks {
        runs.push(task.await??);
    }
    Ok((started.elapsed(), runs))
}

/// Tries a queue fetch may take while the read models lag (each waits up
/// to the server's two seconds).
const QUEUE_TRIES: u32 = 15;

/// A texter's next messages. A 503 `projection_lagging` (the read models
/// are behind the log) is retried, as its message asks, and counted; the
/// fetch's time is what the texter waited, retries included.
async fn fetch_queue(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    run: &mut TexterRun,
) -> BenchResult<Value> {
    let started = Instant::now();
    for _ in 0..QUEUE_TRIES {
        let response = http.get(url).bearer_auth(key).send().await?;
        let status = response.status().as_u16();
        let body: Value = serde_json::from_str(&response.text().await?)?;
        match status {
            200 => {
                run.queue.push(started.elapsed());
                return Ok(body);
            }
            503 if body["error"]["code"] == "projection_lagging" => run.lagging += 1,
            _ => return Err(format!("GET /v1/texter/queue: {status}: {body}").into()),
        }
    }
    Err(format!("GET /v1/texter/queue: the read models lagged {QUEUE_TRIES} times running").into())
}

/// One message the simulator accepted.
pub(crate) struct Submitted {
    message_id: MessageId,
    sid: String,
    from: Option<String>,
}

/// What the dispatcher did with the clicked messages, as the log tells it.
#[derive(Default)]
pub(crate) struct Dispatched {
    /// Each clicked message's voter.
    phones: HashMap<MessageId, String>,
    pub(crate) submitted: Vec<Submitted>,
    /// Messages that ended otherwise: refused, cancelled, outcome unknown.
    pub(crate) not_submitted: u64,
    last_submitted_at: Option<DateTime<Utc>>,
}

/// Follows the log after `after` until `clicked` messages have an outcome,
/// or `DISPATCH_WAIT` has passed.
pub(crate) async fn await_dispatch(
    events: &dyn EventStore,
    after: u64,
    clicked: u64,
) -> BenchResult<Dispatched> {
    let deadline = Instant::now() + DISPATCH_WAIT;
    let mut next = after + 1;
    let mut seen = Dispatched::default();
    while (seen.submitted.len() as u64 + seen.not_submitted) < clicked && Instant::now() < deadline
    {
        let events = events.read_all(next, 1_000).await?;
        let Some(last) = events.last() else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        next = last.position + 1;
        // Other aggregates may reuse an event name with another shape.
        let recipient = events
            .iter()
            .filter(|event| event.stream_id.as_str().starts_with("recipient-"));
        for event in recipient {
            match RecipientEvent::from_parts(&event.event_type, &event.data)? {
                Some(RecipientEvent::MessageSendClicked(click)) => {
                    seen.phones
                        .insert(click.message_id, click.phone.as_str().to_owned());
                }
                Some(RecipientEvent::MessageSubmitted {
                    message_id,
                    carrier_message_id,
                    from,
                    ..
                }) => {
                    seen.submitted.push(Submitted {
                        message_id,
                        sid: carrier_message_id,
                        from,
                    });
                    seen.last_submitted_at = Some(event.recorded_at);
                }
                Some(
                    RecipientEvent::MessageSubmitFailed {
                        retryable: false, ..
                    }
                    | RecipientEvent::MessageSubmitUnknown { .. }
                    | RecipientEvent::MessageCancelled { .. },
                ) => seen.not_submitted += 1,
                _ => {}
            }
        }
    }
    Ok(seen)
}

/// Delivery reports written after `after` that found their message.
async fn recorded_reports(app: &App, after: u64) -> BenchResult<u64> {
    let mut next = after + 1;
    let mut recorded = 0;
    loop {
        let events = app.events().read_all(next, 1_000).await?;
        let Some(last) = events.last() else {
            return Ok(recorded);
        };
        next = last.position + 1;
        for event in &events {
            if event.stream_id.as_str().starts_with("recipient-")
                && let Some(RecipientEvent::DeliveryReported {
                    message_id: Some(_),
                    ..
                }) = RecipientEvent::from_parts(&event.event_type, &event.data)?
            {
                recorded += 1;
            }
        }
    }
}

/// Each request's latency and answer.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) latencies: Vec<Duration>,
    pub(crate) statuses: BTreeMap<u16, u64>,
    /// The first answer that was not the expected status, to say why.
    pub(crate) first_error: Option<String>,
}

impl Tally {
    fn record(&mut self, latency: Duration, status: u16, expected: u16, answer: String) {
        self.latencies.push(latency);
        *self.statuses.entry(status).or_default() += 1;
        if status != expected && self.first_error.is_none() {
            self.first_error = Some(format!("{status}: {answer}"));
        }
    }

    pub(crate) fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.first_error = self.first_error.take().or(other.first_error);
    }

    fn percentiles_ms(&self) -> (f64, f64) {
        percentiles_ms(self.latencies.clone())
    }
}

/// The median and 99th percentile, in milliseconds to a microsecond.
pub(crate) fn percentiles_ms(mut latencies: Vec<Duration>) -> (f64, f64) {
    if latencies.is_empty() {
        return (0.0, 0.0);
    }
    latencies.sort_unstable();
    let at = |q: f64| {
        let latency = latencies[((latencies.len() - 1) as f64 * q) as usize];
        (latency.as_secs_f64() * 1_000_000.0).round() / 1000.0
    };
    (at(0.50), at(0.99))
}

/// Concurrent clients' requests, timed.
struct Load {
    elapsed: Duration,
    tally: Tally,
}

impl Load {
    fn rate(&self) -> f64 {
        self.tally.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// One client per share of `work`, all at once, each sending its requests
/// one after another (`request` builds each) and expecting `expected`.
async fn drive<T, F>(work: Vec<Vec<T>>, expected: u16, request: F) -> BenchResult<Load>
where
    T: Send + Sync + 'static,
    F: Fn(&T) -> reqwest::RequestBuilder + Clone + Send + 'static,
{
    let started = Instant::now();
    let tasks: Vec<JoinHandle<BenchResult<Tally>>> = work
        .into_iter()
        .map(|share| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                for item in &share {
                    let call = Instant::now();
                    let response = request(item).send().await?;
                    let status = response.status().as_u16();
                    let answer = response.text().await?;
                    tally.record(call.elapsed(), status, expected, answer);
                }
                Ok(tally)
            })
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        tally.merge(task.await??);
    }
    Ok(Load {
        elapsed: started.elapsed(),
        tally,
    })
}

/// The baseline endpoint: one plain INSERT of the request into a bare table.
struct PlainInsert {
    table: BaselineTable,
    stream: StreamId,
    next_version: AtomicU64,
}

async fn plain_insert(State(state): State<Arc<PlainInsert>>, body: Bytes) -> StatusCode {
    let data = json!({"request": String::from_utf8_lossy(&body)});
    let event = NewEvent::new(
        "BaselineRequest",
        data,
        EventMetadata::new(None, Actor::System),
    );
    let version = state.next_version.fetch_add(1, Ordering::Relaxed);
    match state
        .table
        .insert(&state.stream, version, vec![event])
        .await
    {
        Ok(()) => StatusCode::OK,
        Err(err) => {
            tracing::error!(error = %err, "baseline insert failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// `work` driven against the baseline endpoint, served by axum on a free
/// port; `request` builds each request for the endpoint's URL.
async fn baseline<T, F>(
    database: &Database,
    work: Vec<Vec<T>>,
    expected: u16,
    request: F,
) -> BenchResult<Load>
where
    T: Send + Sync + 'static,
    F: Fn(&str, &T) -> reqwest::RequestBuilder + Clone + Send + 'static,
{
    let state = Arc::new(PlainInsert {
        table: BaselineTable::create(database).await?,
        stream: StreamId::parse("bench-baseline-requests")?,
        next_version: AtomicU64::new(0),
    });
    let router = Router::new()
        .route("/insert", post(plain_insert))
        .with_state(state);
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{}/insert", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    let load = drive(work, expected, move |item: &T| request(&url, item)).await;
    let _ = stop.send(());
    served.await??;
    load
}
