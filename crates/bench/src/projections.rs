//! `textbank bench projections`: a realistic campaign's log (contacts
//! imported and assigned over HTTP; then clicks, dispatches, delivery
//! reports, replies, opt-outs, survey answers and blocked attempts appended
//! as the send path records them), every read model rebuilt from position 0
//! beside the baseline of reading the log alone, then the inbox, audit and
//! metrics queries timed over HTTP and the audit export's memory measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use textbank_app::SimSettings;
use textbank_domain::keywords::Keyword;
use textbank_domain::message::{
    AutoReplyKind, BlockReason, BlockedAttempt, ClickEvidence, ClickRecord, DeliveryStatus,
    HoursEvidence, MessageKind, body_hash,
};
use textbank_domain::phone::PhoneNumber;
use textbank_domain::recipient::{ConversationRef, OptOutSource, RecipientEvent, stream_id};
use textbank_domain::timezone::ZoneSource;
use textbank_domain::{
    Actor, ApiKeyId, CampaignId, ConversationId, DomainEvent, EventMetadata, ListId, MemberId,
    MessageId, OrgId,
};

use textbank_projections::{Batch, ProjectionError, Projector, catch_up_together};
use textbank_store::{EventStore, ExpectedVersion, NewEvent, SqlEventStore, StoreTx};
use textbank_testkit::ScratchDb;

use crate::send::{expect_json, fixture, percentiles_ms, server_database, start};
use crate::{BenchResult, ProjectionsArgs, memory_mb, print_figure};
use textbank_api::Running;

/// Contacts per wave: a wave's clicks, the previous wave's delivery reports
/// and an earlier wave's replies are appended together, so the log
/// interleaves them as a running campaign does.
const WAVE: u64 = 500;
/// Concurrent appenders while generating.
const APPENDERS: usize = 64;
/// Timed requests per query.
const SAMPLES: usize = 200;
/// Untimed requests before each timed series.
const WARM_UP: usize = 50;
const READ_BATCH: usize = 1000;

pub async fn run(scratch: &ScratchDb, args: &ProjectionsArgs) -> BenchResult {
    let http = textbank_sms::http_client(Duration::from_secs(120))?;
    let database = server_database(scratch, 16).await?;
    let quiet = SimSettings::quiet(SimSettings::default().delivery_delay_ms);
    let server = start(&database, quiet.clone()).await?;
    let texters = args.texters.max(1);
    let per_texter = u32::try_from(args.contacts.div_ceil(u64::from(texters)))?;
    let fixture = fixture(&server, &http, texters, per_texter).await?;
    server.shutdown().await?;

    // Stopping the server closed its pool.
    let database = server_database(scratch, 16).await?;
    let store = Arc::new(SqlEventStore::on_database(database.clone()).await?);
    let started = Instant::now();
    let campaign = Generated::new(
        &fixture,
        u64::from(per_texter) * u64::from(texters),
        args.seed,
    )?;
    let appended = campaign.append_all(store.clone()).await?;
    let events = store.head_position().await?;
    // The generated log records every message's dispatch, as a server that
    // sent them would have: its dispatcher is at the head. (Left at 0, the
    // server timed below would spend the query phase re-checking 200,000
    // recipient streams for messages to send.)
    let mut tx = store.begin().await?;
    tx.save_checkpoint(textbank_app::DISPATCH_CHECKPOINT, events)
        .await?;
    tx.commit().await?;
    eprintln!(
        "generated {appended} send-path events ({events} in the log) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let backend = store.backend();
    let read_rate = read_log(store.as_ref(), events).await?;
    let mut all = textbank_projections::all();
    // First, so the time spent decoding recipient events (once, shared by
    // the read models) is counted apart from theirs.
    all.insert(0, Arc::new(Decode));
    let timed: Vec<Arc<Timed>> = all
        .into_iter()
        .map(|inner| {
            Arc::new(Timed {
                inner,
                nanos: AtomicU64::new(0),
            })
        })
        .collect();
    let projectors: Vec<Arc<dyn Projector>> = timed
        .iter()
        .map(|one| one.clone() as Arc<dyn Projector>)
        .collect();
    textbank_projections::rebuild::reset(store.as_ref(), &projectors).await?;
    let started = Instant::now();
    let reached = catch_up_together(store.as_ref(), &projectors).await?;
    let seconds = started.elapsed().as_secs_f64();
    let apply_seconds: serde_json::Map<String, serde_json::Value> = timed
        .iter()
        .map(|one| {
            let seconds = one.nanos.load(Ordering::Relaxed) as f64 / 1e9;
            (
                one.inner.name().to_owned(),
                json!((seconds * 1000.0).round() / 1000.0),
            )
        })
        .collect();
    print_figure(
        "projections_rebuild",
        backend,
        reached as f64 / seconds,
        "events/s",
        read_rate,
        json!({"events": reached, "seconds": seconds, "apply_seconds": apply_seconds}),
    );

    database.close().await;
    let database = server_database(scratch, 16).await?;
    let server = start(&database, quiet).await?;
    let outcome = time_queries(&server, &http, &fixture, &campaign, backend).await;
    let feed = read_feed(&server, &http, &fixture.owner_key, read_rate, backend).await;
    let export = measure_export(&server, &http, &fixture.owner_key, backend).await;
    server.shutdown().await?;
    outcome?;
    feed?;
    export
}

/// Reads the organization's whole log through the event feed
/// (`GET /v1/events`, full pages) as an integration catching up would, and
/// prints its rate beside reading the log alone in the store.
async fn read_feed(
    server: &Running,
    http: &reqwest::Client,
    owner: &str,
    read_rate: f64,
    backend: textbank_store::Backend,
) -> BenchResult {
    let limit = textbank_app::feed::MAX_LIMIT;
    let started = Instant::now();
    let (mut after, mut events, mut pages) = (0_u64, 0_u64, 0_u64);
    loop {
        let page = expect_json(
            http.get(server.url(&format!("/v1/events?after={after}&limit={limit}")))
                .bearer_auth(owner),
            200,
            "GET /v1/events",
        )
        .await?;
        let read = page["events"].as_array().map_or(0, Vec::len) as u64;
        if read == 0 {
            break;
        }
        events += read;
        pages += 1;
        after = page["next_after"]
            .as_u64()
            .ok_or("a feed page without next_after")?;
    }
    let seconds = started.elapsed().as_secs_f64();
    print_figure(
        "event_feed",
        backend,
        events as f64 / seconds,
        "events/s",
        read_rate,
        json!({
            "value_is": "the org's events read through GET /v1/events, 1,000 a page",
            "baseline_is": "reading the log alone in the store",
            "events": events,
            "pages": pages,
            "seconds": seconds,
        }),
    );
    Ok(())
}

/// Decodes every recipient event of a batch, and writes nothing.
struct Decode;

#[async_trait::async_trait]
impl Projector for Decode {
    fn name(&self) -> &'static str {
        "bench_decode"
    }

    async fn apply(&self, _tx: &mut StoreTx, batch: Batch<'_>) -> Result<(), ProjectionError> {
        for decoded in batch.recipient_events("bench_decode") {
            decoded?;
        }
        Ok(())
    }
}

/// A read model whose time spent applying batches is added up.
struct Timed {
    inner: Arc<dyn Projector>,
    nanos: AtomicU64,
}

#[async_trait::async_trait]
impl Projector for Timed {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn apply(&self, tx: &mut StoreTx, batch: Batch<'_>) -> Result<(), ProjectionError> {
        let started = Instant::now();
        let applied = self.inner.apply(tx, batch).await;
        self.nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        applied
    }

    fn tables(&self) -> &'static [&'static str] {
        self.inner.tables()
    }
}

/// Events per second of reading the whole log in the runner's batches.
async fn read_log(store: &dyn EventStore, events: u64) -> BenchResult<f64> {
    let started = Instant::now();
    let mut position = 0;
    loop {
        let batch = store.read_all(position + 1, READ_BATCH).await?;
        let Some(last) = batch.last() else { break };
        position = last.position;
    }
    if position != events {
        return Err(format!("read {position} of {events} events").into());
    }
    Ok(events as f64 / started.elapsed().as_secs_f64())
}

/// The send path's events for one campaign, drawn from a seed.
struct Generated {
    org: OrgId,
    campaign: CampaignId,
    list: ListId,
    texters: Vec<MemberId>,
    keys: Vec<ApiKeyId>,
    contacts: u64,
    seed: u64,
    start: DateTime<Utc>,
}

impl Generated {
    fn new(fixture: &crate::send::Fixture, contacts: u64, seed: u64) -> BenchResult<Self> {
        let texters = fixture
            .texter_ids
            .iter()
            .map(|id| Ok(MemberId::from_uuid(id.parse()?)))
            .collect::<BenchResult<Vec<_>>>()?;
        Ok(Self {
            org: fixture.org,
            campaign: CampaignId::from_uuid(fixture.campaign_id.parse()?),
            list: ListId::from_uuid(fixture.list_id.parse()?),
            keys: texters.iter().map(|_| ApiKeyId::new()).collect(),
            texters,
            contacts,
            seed,
            // Clicks a tenth of a second apart, ending now: spread over hours.
            start: Utc::now() - chrono::Duration::milliseconds(contacts as i64 * 100),
        })
    }

    fn phone(&self, n: u64) -> BenchResult<PhoneNumber> {
        Ok(PhoneNumber::from_e164(&format!(
            "+1555{}{:04}",
            200 + n / 10_000,
            n % 10_000
        ))?)
    }

    fn texter(&self, n: u64) -> usize {
        let per = self.contacts.div_ceil(self.texters.len() as u64);
        (n / per) as usize
    }

    fn conversation(&self, n: u64, message: MessageId) -> ConversationRef {
        ConversationRef {
            conversation_id: ConversationId::from_uuid(*message.as_uuid()),
            campaign_id: self.campaign,
            texter_id: self.texters[self.texter(n)],
        }
    }

    /// Appends every wave; returns how many events were appended.
    async fn append_all(&self, store: Arc<SqlEventStore>) -> BenchResult<u64> {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let waves = self.contacts.div_ceil(WAVE);
        let mut messages: Vec<Option<MessageId>> = vec![None; self.contacts as usize];
        let mut appended = 0;
        // Replies come four waves after their click, reports one wave after.
        for wave in 0..waves + 4 {
            let mut appends: Vec<(textbank_domain::StreamId, Vec<NewEvent>)> = Vec::new();
            for n in wave_range(wave, self.contacts) {
                let (id, events) = self.click(n, &mut rng)?;
                messages[n as usize] = Some(id);
                appends.push((stream_id(self.org, &self.phone(n)?), events));
            }
            if wave >= 1 {
                for n in wave_range(wave - 1, self.contacts) {
                    if let Some(id) = messages[n as usize] {
                        let events = self.reports(id, &mut rng)?;
                        appends.push((stream_id(self.org, &self.phone(n)?), events));
                    }
                }
            }
            if wave >= 4 {
                for n in wave_range(wave - 4, self.contacts) {
                    if let Some(id) = messages[n as usize] {
                        let events = self.conversation_events(n, id, &mut rng)?;
                        if !events.is_empty() {
                            appends.push((stream_id(self.org, &self.phone(n)?), events));
                        }
                    }
                }
            }
            appended += appends
                .iter()
                .map(|(_, events)| events.len() as u64)
                .sum::<u64>();
            let mut results =
                futures_util::stream::iter(appends.into_iter().map(|(stream, events)| {
                    let store = store.clone();
                    async move {
                        store
                            .append(&stream, ExpectedVersion::Any, events)
                            .await
                            .map(|_| ())
                    }
                }))
                .buffer_unordered(APPENDERS);
            while let Some(result) = results.next().await {
                result?;
            }
        }
        Ok(appended)
    }

    fn at(&self, n: u64) -> DateTime<Utc> {
        self.start + chrono::Duration::milliseconds(n as i64 * 100)
    }

    fn metadata(&self, n: u64) -> EventMetadata {
        let texter = self.texter(n);
        EventMetadata::new(
            Some(self.org),
            Actor::ApiKey {
                key_id: self.keys[texter],
                member_id: Some(self.texters[texter]),
            },
        )
    }

    fn system(&self) -> EventMetadata {
        EventMetadata::new(Some(self.org), Actor::System)
    }

    /// A texter's click on the initial message (or, one time in two
    /// hundred, a click refused as too fast), then its dispatch.
    fn click(&self, n: u64, rng: &mut StdRng) -> BenchResult<(MessageId, Vec<NewEvent>)> {
        let texter = self.texter(n);
        let received_at = self.at(n);
        let presented_at =
            received_at - chrono::Duration::milliseconds(rng.random_range(700..6_000));
        let phone = self.phone(n)?;
        let mut events = Vec::with_capacity(4);
        if rng.random_range(0..200) == 0 {
            let blocked = BlockedAttempt {
                attempt_id: uuid::Uuid::now_v7(),
                reason: BlockReason::TooFast,
                detail: "clicked 120 ms after the message was shown".into(),
                campaign_id: Some(self.campaign),
                conversation_id: None,
                phone: Some(phone.clone()),
                hours: None,
                evidence: ClickEvidence {
                    kind: MessageKind::Initial,
                    texter_id: self.texters[texter],
                    key_id: self.keys[texter],
                    token_id: Some(uuid::Uuid::now_v7()),
                    idempotency_key: None,
                    presented_at: Some(presented_at),
                    clicked_at: Some(presented_at + chrono::Duration::milliseconds(120)),
                    received_at: presented_at + chrono::Duration::milliseconds(130),
                    ip: Some("203.0.113.7".into()),
                    user_agent: Some("Mozilla/5.0 (bench)".into()),
                },
            };
            events.push(event(
                RecipientEvent::SendBlocked(Box::new(blocked)),
                self.metadata(n),
            )?);
        }
        let id = MessageId::new();
        let body = format!(
            "Hi Voter{n}, it's Texter {texter} with Rivera for Council. Early voting starts \
             Saturday. Can we count on you? Reply STOP to opt out"
        );
        let mut click = self.click_record(
            n,
            (id, ConversationId::from_uuid(*id.as_uuid())),
            MessageKind::Initial,
            phone,
            body,
            received_at,
        );
        click.list_id = Some(self.list);
        click.script_version = Some(1);
        click.evidence = ClickEvidence {
            token_id: Some(uuid::Uuid::now_v7()),
            idempotency_key: Some(format!("bench-{n}")),
            presented_at: Some(presented_at),
            clicked_at: Some(received_at - chrono::Duration::milliseconds(40)),
            ..click.evidence
        };
        events.push(event(
            RecipientEvent::MessageSendClicked(Box::new(click)),
            self.metadata(n),
        )?);
        events.extend(self.dispatch(id)?);
        Ok((id, events))
    }

    /// A texter's click on a message with no token, presentation or script
    /// (a free-text reply); initial messages fill those in.
    fn click_record(
        &self,
        n: u64,
        (message_id, conversation_id): (MessageId, ConversationId),
        kind: MessageKind,
        phone: PhoneNumber,
        body: String,
        received_at: DateTime<Utc>,
    ) -> ClickRecord {
        let texter = self.texter(n);
        ClickRecord {
            message_id,
            conversation_id,
            campaign_id: self.campaign,
            list_id: None,
            phone,
            body_sha256: body_hash(&body),
            body,
            segments: 1,
            encoding: "GSM-7".into(),
            script_version: None,
            checked_recipient_version: None,
            hours: HoursEvidence {
                allowed: true,
                local_time: Some(received_at.fixed_offset()),
                zone: Some(chrono_tz::America::Chicago),
                zone_source: ZoneSource::Zip,
                window: "09:00-21:00".into(),
            },
            evidence: ClickEvidence {
                kind,
                texter_id: self.texters[texter],
                key_id: self.keys[texter],
                token_id: None,
                idempotency_key: None,
                presented_at: None,
                clicked_at: Some(received_at),
                received_at,
                ip: Some("203.0.113.7".into()),
                user_agent: Some("Mozilla/5.0 (bench)".into()),
            },
        }
    }

    fn dispatch(&self, id: MessageId) -> BenchResult<Vec<NewEvent>> {
        let from = Some("+15550100001".to_owned());
        Ok(vec![
            event(
                RecipientEvent::MessageDispatchStarted {
                    message_id: id,
                    attempt: 1,
                    carrier: "sim".into(),
                    from: from.clone(),
                    leader_term: None,
                    started_at: None,
                },
                self.system(),
            )?,
            event(
                RecipientEvent::MessageSubmitted {
                    message_id: id,
                    attempt: 1,
                    carrier: "sim".into(),
                    carrier_message_id: format!("SM{}", id.as_uuid().simple()),
                    from,
                },
                self.system(),
            )?,
        ])
    }

    /// Three reports per message: sent, then delivered (or, 3%, failed
    /// with a carrier error code), then the final one again, as carriers
    /// repeat themselves.
    fn reports(&self, id: MessageId, rng: &mut StdRng) -> BenchResult<Vec<NewEvent>> {
        let (last, code) = if rng.random_range(0..100) < 3 {
            let codes = ["30003", "30005", "30006", "30007"];
            (
                DeliveryStatus::Failed,
                Some(codes[rng.random_range(0..codes.len())].to_owned()),
            )
        } else {
            (DeliveryStatus::Delivered, None)
        };
        [
            (DeliveryStatus::Sent, None),
            (last, code.clone()),
            (last, code),
        ]
        .into_iter()
        .map(|(status, error_code)| {
            event(
                RecipientEvent::DeliveryReported {
                    carrier: "sim".into(),
                    carrier_message_id: format!("SM{}", id.as_uuid().simple()),
                    message_id: Some(id),
                    status,
                    error_code,
                },
                self.system(),
            )
        })
        .collect()
    }

    /// One contact in five replies; one reply in ten is STOP (opt-out and
    /// its confirmation); a third of the others get a texter's answer and a
    /// survey answer.
    fn conversation_events(
        &self,
        n: u64,
        id: MessageId,
        rng: &mut StdRng,
    ) -> BenchResult<Vec<NewEvent>> {
        if rng.random_range(0..5) != 0 {
            return Ok(Vec::new());
        }
        let conversation = self.conversation(n, id);
        let phone = self.phone(n)?;
        let stop = rng.random_range(0..10) == 0;
        let body = if stop { "STOP" } else { "Yes, I'll vote early" };
        let carrier_id = format!("SMin{}", uuid::Uuid::now_v7().simple());
        let mut events = vec![event(
            RecipientEvent::ReplyReceived {
                message_id: MessageId::new(),
                carrier: "sim".into(),
                carrier_message_id: carrier_id.clone(),
                phone: phone.clone(),
                to: "+15550100001".into(),
                body: body.into(),
                conversation: Some(conversation),
                keyword: stop.then_some(Keyword::OptOut),
            },
            self.system(),
        )?];
        if stop {
            let confirmation = MessageId::new();
            events.push(event(
                RecipientEvent::OptOutRecorded {
                    phone: phone.clone(),
                    source: OptOutSource::KeywordReply,
                    keyword: Some("STOP".into()),
                    conversation: Some(conversation),
                },
                self.system(),
            )?);
            events.push(event(
                RecipientEvent::AutoReplyQueued {
                    message_id: confirmation,
                    kind: AutoReplyKind::OptOutConfirmation,
                    phone,
                    body: "You're unsubscribed and will get no more messages. Reply START to resubscribe.".into(),
                    in_reply_to: Some(carrier_id),
                    conversation: Some(conversation),
                },
                self.system(),
            )?);
            events.extend(self.dispatch(confirmation)?);
            return Ok(events);
        }
        if rng.random_range(0..3) == 0 {
            let reply = MessageId::new();
            let texter = self.texter(n);
            let received_at = self.at(n) + chrono::Duration::minutes(3);
            let body = "Thank you! Polls are open 7am-8pm.".to_owned();
            let click = self.click_record(
                n,
                (reply, conversation.conversation_id),
                MessageKind::Reply,
                phone.clone(),
                body,
                received_at,
            );
            events.push(event(
                RecipientEvent::MessageSendClicked(Box::new(click)),
                self.metadata(n),
            )?);
            events.extend(self.dispatch(reply)?);
            events.push(event(
                RecipientEvent::SurveyAnswerRecorded {
                    conversation,
                    question_id: "support".into(),
                    answer: "yes".into(),
                    recorded_by: self.texters[texter],
                },
                self.metadata(n),
            )?);
        }
        Ok(events)
    }
}

fn wave_range(wave: u64, contacts: u64) -> std::ops::Range<u64> {
    (wave * WAVE).min(contacts)..((wave + 1) * WAVE).min(contacts)
}

fn event(payload: RecipientEvent, metadata: EventMetadata) -> BenchResult<NewEvent> {
    let (event_type, data) = payload.to_parts()?;
    Ok(NewEvent::new(event_type, data, metadata))
}

/// Latency of `GET path` as `key`, `SAMPLES` times: (p50, p99) in ms,
/// after [`WARM_UP`] untimed requests over the same paths — a server that
/// has been up a while has prepared its statements on each pooled
/// connection and has the read models in the page cache.
async fn time_get(
    server: &Running,
    http: &reqwest::Client,
    key: &str,
    paths: &[String],
) -> BenchResult<(f64, f64)> {
    for i in 0..WARM_UP {
        let path = &paths[i % paths.len()];
        http.get(server.url(path))
            .bearer_auth(key)
            .send()
            .await?
            .bytes()
            .await?;
    }
    let mut latencies = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let path = &paths[i % paths.len()];
        let started = Instant::now();
        let response = http.get(server.url(path)).bearer_auth(key).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        latencies.push(started.elapsed());
        if status != reqwest::StatusCode::OK {
            return Err(format!(
                "GET {path} answered {status}: {}",
                String::from_utf8_lossy(&body)
            )
            .into());
        }
    }
    Ok(percentiles_ms(latencies))
}

/// Times queries against one server and prints each figure beside the
/// same server's `GET /health`.
struct QueryTimer<'a> {
    server: &'a Running,
    http: &'a reqwest::Client,
    backend: textbank_store::Backend,
    baseline: (f64, f64),
}

impl QueryTimer<'_> {
    async fn time(&self, query: &str, key: &str, paths: &[String], target_p99: f64) -> BenchResult {
        let figure = time_get(self.server, self.http, key, paths).await?;
        print_latency(query, self.backend, figure, self.baseline, target_p99);
        Ok(())
    }

    /// Times `paths` together as `family`, then each of `queries` alone:
    /// the i-th query is every `queries.len()`-th path from the i-th on.
    async fn time_family(
        &self,
        family: &str,
        queries: &[&str],
        key: &str,
        paths: &[String],
        target_p99: f64,
    ) -> BenchResult {
        self.time(family, key, paths, target_p99).await?;
        for (i, query) in queries.iter().enumerate() {
            let paths: Vec<String> = paths
                .iter()
                .skip(i)
                .step_by(queries.len())
                .cloned()
                .collect();
            self.time(query, key, &paths, target_p99).await?;
        }
        Ok(())
    }
}

fn print_latency(
    query: &str,
    backend: textbank_store::Backend,
    (p50, p99): (f64, f64),
    baseline: (f64, f64),
    target_p99: f64,
) {
    println!(
        "{}",
        json!({
            "bench": "projections_query",
            "backend": backend.name(),
            "query": query,
            "p50_ms": p50,
            "p99_ms": p99,
            "target_p99_ms": target_p99,
            "warm_up_requests": WARM_UP,
            "baseline": "GET /health",
            "baseline_p50_ms": baseline.0,
            "baseline_p99_ms": baseline.1,
        })
    );
}

async fn time_queries(
    server: &Running,
    http: &reqwest::Client,
    fixture: &crate::send::Fixture,
    campaign: &Generated,
    backend: textbank_store::Backend,
) -> BenchResult {
    // The read models catch up from where the rebuild left them.
    let head = server.app().events().head_position().await?;
    let owner = fixture.owner_key.as_str();
    let wait = format!("/v1/metrics/overview?min_position={head}");
    expect_json(
        http.get(server.url(&wait)).bearer_auth(owner),
        200,
        "GET /v1/metrics/overview",
    )
    .await?;
    let timer = QueryTimer {
        server,
        http,
        backend,
        baseline: time_get(server, http, owner, &["/health".to_owned()]).await?,
    };

    let mut rng = StdRng::seed_from_u64(campaign.seed ^ 0x5eed);
    let texter_key = &fixture.texter_keys[0];
    let inbox = [
        "/v1/conversations?limit=50".to_owned(),
        "/v1/conversations?status=needs_reply&limit=50".to_owned(),
    ];
    timer.time("inbox", texter_key, &inbox, 20.0).await?;

    let campaign_id = &fixture.campaign_id;
    let metrics = [
        format!("/v1/campaigns/{campaign_id}/metrics"),
        format!("/v1/campaigns/{campaign_id}/metrics/texters"),
        format!("/v1/campaigns/{campaign_id}/metrics/timeseries?bucket=hour"),
        "/v1/metrics/overview".to_owned(),
    ];
    let queries = [
        "metrics_campaign",
        "metrics_texters",
        "metrics_timeseries",
        "metrics_overview",
    ];
    timer
        .time_family("metrics", &queries, owner, &metrics, 20.0)
        .await?;

    let mut audit = Vec::new();
    for _ in 0..SAMPLES / 4 {
        let n = rng.random_range(0..campaign.contacts);
        let phone = campaign.phone(n)?;
        audit.push(format!(
            "/v1/audit/messages?phone={}",
            phone.as_str().replace('+', "%2B")
        ));
        let texter = &fixture.texter_ids[campaign.texter(n)];
        audit.push(format!("/v1/audit/messages?texter_id={texter}&limit=50"));
        let from = campaign.at(n);
        let to = from + chrono::Duration::minutes(10);
        audit.push(format!(
            "/v1/audit/messages?campaign_id={campaign_id}&from={}&to={}&limit=50",
            from.format("%Y-%m-%dT%H:%M:%SZ"),
            to.format("%Y-%m-%dT%H:%M:%SZ")
        ));
        audit.push(format!(
            "/v1/audit/messages?campaign_id={campaign_id}&limit=50"
        ));
    }
    let queries = [
        "audit_by_phone",
        "audit_by_texter",
        "audit_by_campaign_and_time",
        "audit_by_campaign",
    ];
    timer
        .time_family("audit_search", &queries, owner, &audit, 100.0)
        .await
}

/// Streams the whole audit export, sampling this process's resident memory
/// as rows arrive: a streamed export holds it flat however many rows.
async fn measure_export(
    server: &Running,
    http: &reqwest::Client,
    owner: &str,
    backend: textbank_store::Backend,
) -> BenchResult {
    let before = memory_mb("self", "VmRSS");
    // Reset the high-water mark, so the peak is the export's own.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let started = Instant::now();
    let response = http
        .get(server.url("/v1/audit/export.csv"))
        .bearer_auth(owner)
        .send()
        .await?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(format!("GET /v1/audit/export.csv answered {}", response.status()).into());
    }
    let mut response = response;
    let (mut rows, mut bytes) = (0u64, 0u64);
    let mut samples = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        bytes += chunk.len() as u64;
        let before_rows = rows;
        rows += chunk.iter().filter(|&&byte| byte == b'\n').count() as u64;
        if before_rows / 50_000 != rows / 50_000 {
            samples.push(json!({"rows": rows, "rss_mb": memory_mb("self", "VmRSS")}));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "bench": "audit_export",
            "backend": backend.name(),
            "rows": rows.saturating_sub(1),
            "megabytes": bytes as f64 / 1e6,
            "seconds": seconds,
            "rows_per_s": (rows as f64 / seconds).round(),
            "rss_before_mb": before,
            "peak_rss_mb": memory_mb("self", "VmHWM"),
            "rss_during": samples,
        })
    );
    Ok(())
}
