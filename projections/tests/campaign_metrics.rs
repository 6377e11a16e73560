//! The recount test (issue 5): a generated organization's events — lists,
//! campaigns, assignments released and reassigned, clicks, refusals,
//! dispatch outcomes (refused, retried, unknown, cancelled), delivery
//! reports twice, out of order and before their submission, replies, STOPs,
//! texter opt-outs, survey answers that change — appended to a scratch
//! store and projected; then every figure of every query is compared with
//! an independent count computed directly from the stored events.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use textbank_domain::campaign::{self, CampaignEvent};
use textbank_domain::keywords::Keyword;
use textbank_domain::list::{self, ListEvent};
use textbank_domain::message::{
    AutoReplyKind, BlockReason, BlockedAttempt, ClickEvidence, ClickRecord, DeliveryStatus,
    HoursEvidence, MessageKind,
};
use textbank_domain::phone::PhoneNumber;
use textbank_domain::recipient::{self, ConversationRef, OptOutSource, RecipientEvent};
use textbank_domain::texting_hours::TextingWindow;
use textbank_domain::timezone::ZoneSource;
use textbank_domain::{
    Actor, ApiKeyId, CampaignId, ConversationId, DomainEvent, EventMetadata, ListId, MemberId,
    MessageId, OrgId, StreamId,
};
use textbank_projections::campaign_metrics::{
    self as metrics, Bucket, BucketCounts, CampaignMetrics, CampaignMetricsView, Headline,
    TexterMetrics,
};
use textbank_projections::campaigns::Campaigns;
use textbank_projections::lists::Lists;
use textbank_projections::{ProjectionError, catch_up};
use textbank_store::{EventStore, ExpectedVersion, NewEvent, RecordedEvent, SqlEventStore};
use textbank_testkit::ScratchDb;

use common::{created, phone};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_figure_equals_a_recount_of_the_log_on_sqlite() {
    let db = ScratchDb::sqlite().await;
    every_figure_equals_a_recount_of_the_log(&db).await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_figure_equals_a_recount_of_the_log_on_postgres() {
    let Some(db) =
        ScratchDb::postgres("every_figure_equals_a_recount_of_the_log_on_postgres").await
    else {
        return;
    };
    every_figure_equals_a_recount_of_the_log(&db).await;
    db.cleanup().await;
}

// ---------------------------------------------------------------------------
// Generation

/// SplitMix64: a small seeded generator, so every run builds the same log.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn base_time() -> DateTime<Utc> {
    "2026-11-25T19:00:00Z".parse().unwrap()
}

/// Events to append to one stream, in order.
struct Script {
    stream: StreamId,
    org: OrgId,
    events: Vec<(String, serde_json::Value)>,
}

impl Script {
    fn new(stream: StreamId, org: OrgId) -> Self {
        Self {
            stream,
            org,
            events: Vec::new(),
        }
    }

    fn push<E: DomainEvent>(&mut self, event: E) {
        self.events.push(event.to_parts().unwrap());
    }
}

fn list_script(org: OrgId, list: ListId, phones: &[usize]) -> Script {
    let mut script = Script::new(list::stream_id(list), org);
    for event in common::list_events(list, org, phones.iter().copied(), 50) {
        script.push(event);
    }
    script
}

fn hours() -> HoursEvidence {
    HoursEvidence {
        allowed: true,
        local_time: None,
        zone: None,
        zone_source: ZoneSource::Unknown,
        window: "09:00-21:00".into(),
    }
}

#[allow(clippy::too_many_arguments)]
fn click(
    kind: MessageKind,
    message: MessageId,
    conversation: ConversationId,
    campaign: CampaignId,
    texter: MemberId,
    phone: &PhoneNumber,
    presented_at: Option<DateTime<Utc>>,
    received_at: DateTime<Utc>,
) -> RecipientEvent {
    RecipientEvent::MessageSendClicked(Box::new(ClickRecord {
        message_id: message,
        conversation_id: conversation,
        campaign_id: campaign,
        list_id: None,
        phone: phone.clone(),
        body: "Hi".into(),
        body_sha256: textbank_domain::message::body_hash("Hi"),
        segments: 1,
        encoding: "gsm7".into(),
        script_version: Some(1),
        checked_recipient_version: None,
        hours: hours(),
        evidence: ClickEvidence {
            kind,
            texter_id: texter,
            key_id: ApiKeyId::from_uuid(Uuid::nil()),
            token_id: None,
            idempotency_key: None,
            presented_at,
            clicked_at: None,
            received_at,
            ip: None,
            user_agent: None,
        },
    }))
}

fn blocked(
    reason: BlockReason,
    campaign: Option<CampaignId>,
    texter: MemberId,
    phone: &PhoneNumber,
) -> RecipientEvent {
    RecipientEvent::SendBlocked(Box::new(BlockedAttempt {
        attempt_id: Uuid::now_v7(),
        reason,
        detail: "generated".into(),
        campaign_id: campaign,
        conversation_id: None,
        phone: Some(phone.clone()),
        hours: None,
        evidence: ClickEvidence {
            kind: MessageKind::Initial,
            texter_id: texter,
            key_id: ApiKeyId::from_uuid(Uuid::nil()),
            token_id: None,
            idempotency_key: None,
            presented_at: None,
            clicked_at: None,
            received_at: base_time(),
            ip: None,
            user_agent: None,
        },
    }))
}

fn started(message: MessageId, attempt: u32) -> RecipientEvent {
    RecipientEvent::MessageDispatchStarted {
        message_id: message,
        attempt,
        carrier: "sim".into(),
        from: None,
        leader_term: None,
        started_at: None,
    }
}

fn submitted(message: MessageId, attempt: u32, sid: &str) -> RecipientEvent {
    RecipientEvent::MessageSubmitted {
        message_id: message,
        attempt,
        carrier: "sim".into(),
        carrier_message_id: sid.into(),
        from: None,
    }
}

fn refused(message: MessageId, attempt: u32, code: &str, retryable: bool) -> RecipientEvent {
    RecipientEvent::MessageSubmitFailed {
        message_id: message,
        attempt,
        carrier: "sim".into(),
        code: code.into(),
        error: "refused".into(),
        retryable,
    }
}

fn report(
    message: Option<MessageId>,
    sid: &str,
    status: DeliveryStatus,
    code: Option<&str>,
) -> RecipientEvent {
    RecipientEvent::DeliveryReported {
        carrier: "sim".into(),
        carrier_message_id: sid.into(),
        message_id: message,
        status,
        error_code: code.map(str::to_owned),
    }
}

fn reply(phone: &PhoneNumber, conversation: Option<ConversationRef>, body: &str) -> RecipientEvent {
    RecipientEvent::ReplyReceived {
        message_id: MessageId::new(),
        carrier: "sim".into(),
        carrier_message_id: format!("SM{}", Uuid::now_v7().simple()),
        phone: phone.clone(),
        to: "+12025550100".into(),
        body: body.into(),
        conversation,
        keyword: (body == "STOP").then_some(Keyword::OptOut),
    }
}

fn opt_out(
    phone: &PhoneNumber,
    source: OptOutSource,
    conversation: Option<ConversationRef>,
) -> RecipientEvent {
    RecipientEvent::OptOutRecorded {
        phone: phone.clone(),
        source,
        keyword: None,
        conversation,
    }
}

fn sid() -> String {
    format!("SM{}", Uuid::now_v7().simple())
}

/// Delivery reports for one submitted message: a final status (or none),
/// sometimes with `queued`/`sent` before it, a late `sent` after it, the
/// final report twice, or a contradicting second final report.
fn reports(rng: &mut Rng, message: MessageId, sid: &str, out: &mut Vec<RecipientEvent>) {
    const CODES: [Option<&str>; 5] = [
        Some("30003"),
        Some("30005"),
        Some("30006"),
        Some("30007"),
        None,
    ];
    if rng.chance(50) {
        out.push(report(Some(message), sid, DeliveryStatus::Queued, None));
    }
    if rng.chance(70) {
        out.push(report(Some(message), sid, DeliveryStatus::Sent, None));
    }
    if rng.chance(8) {
        return;
    }
    let (status, code) = match rng.below(10) {
        0 => (DeliveryStatus::Failed, *rng.pick(&CODES)),
        1 => (DeliveryStatus::Undelivered, *rng.pick(&CODES)),
        _ => (DeliveryStatus::Delivered, None),
    };
    out.push(report(Some(message), sid, status, code));
    if rng.chance(25) {
        out.push(report(Some(message), sid, status, code));
    }
    if rng.chance(20) {
        out.push(report(Some(message), sid, DeliveryStatus::Sent, None));
    }
    if rng.chance(10) {
        let other = if status == DeliveryStatus::Delivered {
            DeliveryStatus::Failed
        } else {
            DeliveryStatus::Delivered
        };
        out.push(report(Some(message), sid, other, Some("30008")));
    }
}

/// One contact's conversation in a campaign, from the initial click on.
fn conversation(
    rng: &mut Rng,
    campaign: CampaignId,
    texter: MemberId,
    others: &[MemberId],
    phone: &PhoneNumber,
    out: &mut Vec<RecipientEvent>,
) {
    let message = MessageId::new();
    let conversation = ConversationId::from_uuid(*message.as_uuid());
    let r = ConversationRef {
        conversation_id: conversation,
        campaign_id: campaign,
        texter_id: texter,
    };
    if rng.chance(10) {
        out.push(blocked(BlockReason::TooFast, Some(campaign), texter, phone));
    }
    let presented = base_time() + chrono::Duration::seconds(rng.below(600) as i64);
    let received = presented + chrono::Duration::milliseconds(250 + rng.below(20_000) as i64);
    let presented = (!rng.chance(5)).then_some(presented);
    out.push(click(
        MessageKind::Initial,
        message,
        conversation,
        campaign,
        texter,
        phone,
        presented,
        received,
    ));
    if rng.chance(5) {
        out.push(blocked(
            BlockReason::AlreadyMessaged,
            Some(campaign),
            texter,
            phone,
        ));
    }
    let carrier_id = sid();
    let mut delivered_for_sure = false;
    match rng.below(20) {
        0 => {
            out.push(started(message, 1));
            out.push(refused(message, 1, "21610", false));
        }
        1 => {
            out.push(started(message, 1));
            out.push(refused(message, 1, "30001", true));
            out.push(started(message, 2));
            out.push(refused(message, 2, "30001", true));
        }
        2 => {
            out.push(started(message, 1));
            out.push(RecipientEvent::MessageSubmitUnknown {
                message_id: message,
                attempt: 1,
                reason: "crash".into(),
            });
        }
        3 => out.push(RecipientEvent::MessageCancelled {
            message_id: message,
            reason: "opted out".into(),
        }),
        4 => {
            out.push(started(message, 1));
            out.push(refused(message, 1, "20429", true));
            out.push(started(message, 2));
            out.push(submitted(message, 2, &carrier_id));
            reports(rng, message, &carrier_id, out);
        }
        5 | 6 => {
            // A quick carrier: reports before the submission is recorded.
            out.push(started(message, 1));
            if rng.chance(50) {
                out.push(report(None, &carrier_id, DeliveryStatus::Sent, None));
            }
            let early = if rng.chance(75) {
                delivered_for_sure = true;
                report(None, &carrier_id, DeliveryStatus::Delivered, None)
            } else {
                report(
                    None,
                    &carrier_id,
                    DeliveryStatus::Undelivered,
                    Some("30005"),
                )
            };
            out.push(early);
            if rng.chance(30) {
                out.push(report(None, &carrier_id, DeliveryStatus::Failed, None));
            }
            out.push(submitted(message, 1, &carrier_id));
            if rng.chance(50) {
                out.push(report(
                    Some(message),
                    &carrier_id,
                    DeliveryStatus::Sent,
                    None,
                ));
            }
        }
        _ => {
            out.push(started(message, 1));
            out.push(submitted(message, 1, &carrier_id));
            reports(rng, message, &carrier_id, out);
        }
    }
    if rng.chance(45) || delivered_for_sure && rng.chance(30) {
        for _ in 0..=rng.below(3) {
            out.push(reply(phone, Some(r), "Who is this?"));
        }
        if rng.chance(60) {
            // The texter (now and then a colleague) answers.
            let by = if rng.chance(10) {
                *rng.pick(others)
            } else {
                texter
            };
            let answer = MessageId::new();
            out.push(click(
                MessageKind::Reply,
                answer,
                conversation,
                campaign,
                by,
                phone,
                None,
                base_time(),
            ));
            out.push(started(answer, 1));
            let answer_sid = sid();
            out.push(submitted(answer, 1, &answer_sid));
            out.push(report(
                Some(answer),
                &answer_sid,
                DeliveryStatus::Delivered,
                None,
            ));
        }
        if rng.chance(25) {
            out.push(reply(phone, Some(r), "STOP"));
            out.push(opt_out(phone, OptOutSource::KeywordReply, Some(r)));
            let confirmation = MessageId::new();
            out.push(RecipientEvent::AutoReplyQueued {
                message_id: confirmation,
                kind: AutoReplyKind::OptOutConfirmation,
                phone: phone.clone(),
                body: "Unsubscribed".into(),
                in_reply_to: None,
                conversation: Some(r),
            });
            out.push(started(confirmation, 1));
            let confirmation_sid = sid();
            out.push(submitted(confirmation, 1, &confirmation_sid));
            out.push(report(
                Some(confirmation),
                &confirmation_sid,
                DeliveryStatus::Delivered,
                None,
            ));
            if rng.chance(30) {
                out.push(RecipientEvent::OptInRecorded {
                    phone: phone.clone(),
                    source: OptOutSource::KeywordReply,
                });
                out.push(reply(phone, Some(r), "STOP"));
                out.push(opt_out(phone, OptOutSource::KeywordReply, Some(r)));
            }
        }
    } else if rng.chance(6) {
        out.push(opt_out(phone, OptOutSource::Texter, Some(r)));
    }
    if rng.chance(30) {
        let survey = |answer: &str| RecipientEvent::SurveyAnswerRecorded {
            conversation: r,
            question_id: "support".into(),
            answer: answer.into(),
            recorded_by: texter,
        };
        const SUPPORT: [&str; 3] = ["yes", "no", "maybe"];
        let first = SUPPORT[rng.below(3) as usize];
        out.push(survey(first));
        if rng.chance(35) {
            let second = SUPPORT[rng.below(3) as usize];
            out.push(survey(second));
        }
        if rng.chance(20) {
            out.push(RecipientEvent::SurveyAnswerRecorded {
                conversation: r,
                question_id: "volunteer".into(),
                answer: rng.pick(&["Saturday", "Sunday"]).to_string(),
                recorded_by: texter,
            });
        }
    }
}

/// A contact that is never messaged: refusals, a stray text, an imported
/// opt-out — none of which belongs to a conversation.
fn unmessaged(
    rng: &mut Rng,
    campaign: CampaignId,
    texter: MemberId,
    phone: &PhoneNumber,
    out: &mut Vec<RecipientEvent>,
) {
    if rng.chance(20) {
        let reason = *rng.pick(&[
            BlockReason::QuietHours,
            BlockReason::OptedOut,
            BlockReason::NotAssigned,
            BlockReason::TokenExpired,
        ]);
        out.push(blocked(reason, Some(campaign), texter, phone));
    }
    if rng.chance(5) {
        out.push(blocked(BlockReason::TokenInvalid, None, texter, phone));
    }
    if rng.chance(5) {
        out.push(reply(phone, None, "hello?"));
    }
    if rng.chance(5) {
        out.push(opt_out(phone, OptOutSource::Import, None));
    }
}

struct Generated {
    org: OrgId,
    other_org: OrgId,
    campaigns: Vec<CampaignId>,
    other_campaign: CampaignId,
    /// Appended first, one after the other: lists, then campaigns.
    setup: Vec<Script>,
    /// Appended in rounds, interleaved.
    recipients: Vec<Script>,
    /// Appended in the middle of the rounds.
    later: Vec<Script>,
}

fn generate(seed: u64) -> Generated {
    let mut rng = Rng(seed);
    let org = OrgId::new();
    let other_org = OrgId::new();
    let texters: Vec<MemberId> = (0..4).map(|_| MemberId::new()).collect();
    let (first, second) = (ListId::new(), ListId::new());
    let first_phones: Vec<usize> = (0..140).collect();
    // Overlaps the first list by 20 phones.
    let second_phones: Vec<usize> = (120..190).collect();
    let (main, small) = (CampaignId::new(), CampaignId::new());
    let other_campaign = CampaignId::new();

    let mut setup = vec![
        list_script(org, first, &first_phones),
        list_script(org, second, &second_phones),
    ];

    // The main campaign texts the first list; the second is attached later.
    let mut main_script = Script::new(campaign::stream_id(main), org);
    for event in created(main, org, "GOTV") {
        main_script.push(event);
    }
    main_script.push(CampaignEvent::ListsAttached {
        list_ids: vec![first],
    });
    main_script.push(CampaignEvent::CampaignLaunched {});
    let mut holder: HashMap<(CampaignId, usize), MemberId> = HashMap::new();
    for (t, chunk) in first_phones[..130].chunks(33).enumerate() {
        let texter = texters[t % 3];
        main_script.push(CampaignEvent::ContactsAssigned {
            texter_id: texter,
            phones: chunk.iter().map(|i| phone(*i)).collect(),
        });
        for i in chunk {
            holder.insert((main, *i), texter);
        }
    }
    setup.push(main_script);

    let mut small_script = Script::new(campaign::stream_id(small), org);
    for event in created(small, org, "Persuasion") {
        small_script.push(event);
    }
    small_script.push(CampaignEvent::ListsAttached {
        list_ids: vec![second],
    });
    small_script.push(CampaignEvent::CampaignLaunched {});
    // Renamed while active: the metrics follow the new name.
    small_script.push(CampaignEvent::SettingsChanged {
        name: "Persuasion, round two".into(),
        texting_hours: TextingWindow::default(),
        assignment_batch_size: 50,
        batch_rules: Default::default(),
    });
    small_script.push(CampaignEvent::ContactsAssigned {
        texter_id: texters[3],
        phones: second_phones.iter().map(|i| phone(*i)).collect(),
    });
    for i in &second_phones {
        holder.insert((small, *i), texters[3]);
    }
    setup.push(small_script);

    // Another organization texting the same numbers: none of it may show.
    let mut other_script = Script::new(campaign::stream_id(other_campaign), other_org);
    for event in created(other_campaign, other_org, "Elsewhere") {
        other_script.push(event);
    }
    other_script.push(CampaignEvent::CampaignLaunched {});
    setup.push(other_script);

    let mut recipients = Vec::new();
    for i in 0..190 {
        let mut events = Vec::new();
        for campaign in [main, small] {
            let Some(texter) = holder.get(&(campaign, i)).copied() else {
                continue;
            };
            let others: Vec<MemberId> = texters.iter().copied().filter(|t| *t != texter).collect();
            if rng.chance(85) {
                conversation(&mut rng, campaign, texter, &others, &phone(i), &mut events);
            } else {
                unmessaged(&mut rng, campaign, texter, &phone(i), &mut events);
            }
        }
        if !events.is_empty() {
            let mut script = Script::new(recipient::stream_id(org, &phone(i)), org);
            for event in events {
                script.push(event);
            }
            recipients.push(script);
        }
        if i < 15 {
            let mut events = Vec::new();
            conversation(
                &mut rng,
                other_campaign,
                texters[0],
                &texters[1..],
                &phone(i),
                &mut events,
            );
            let mut script = Script::new(recipient::stream_id(other_org, &phone(i)), other_org);
            for event in events {
                script.push(event);
            }
            recipients.push(script);
        }
    }

    // Mid-way: the second list joins the main campaign, contacts are
    // released and reassigned, the small campaign pauses.
    let mut main_later = Script::new(campaign::stream_id(main), org);
    main_later.push(CampaignEvent::ListsAttached {
        list_ids: vec![second],
    });
    main_later.push(CampaignEvent::ContactsReleased {
        texter_id: texters[0],
        phones: (0..10).map(phone).collect(),
    });
    main_later.push(CampaignEvent::ContactsReleased {
        texter_id: texters[1],
        phones: (33..38).map(phone).collect(),
    });
    main_later.push(CampaignEvent::ContactsAssigned {
        texter_id: texters[3],
        phones: (33..38).map(phone).collect(),
    });
    main_later.push(CampaignEvent::ContactsAssigned {
        texter_id: texters[2],
        phones: (140..150).map(phone).collect(),
    });
    let mut small_later = Script::new(campaign::stream_id(small), org);
    small_later.push(CampaignEvent::CampaignPaused {});

    Generated {
        org,
        other_org,
        campaigns: vec![main, small],
        other_campaign,
        setup,
        recipients,
        later: vec![main_later, small_later],
    }
}

// ---------------------------------------------------------------------------
// Appending and projecting

async fn append(
    store: &Arc<SqlEventStore>,
    stream: &StreamId,
    org: OrgId,
    events: &[(String, serde_json::Value)],
) {
    let metadata = EventMetadata::new(Some(org), Actor::System);
    let events = events
        .iter()
        .map(|(event_type, data)| NewEvent::new(event_type.clone(), data.clone(), metadata.clone()))
        .collect();
    store
        .append(stream, ExpectedVersion::Any, events)
        .await
        .unwrap();
}

async fn project(store: &SqlEventStore) {
    catch_up(store, &Lists).await.unwrap();
    catch_up(store, &Campaigns).await.unwrap();
    catch_up(store, &CampaignMetrics::live()).await.unwrap();
}

async fn every_figure_equals_a_recount_of_the_log(db: &ScratchDb) {
    let store = Arc::new(
        SqlEventStore::on_database(db.database.clone())
            .await
            .unwrap(),
    );
    let generated = generate(0x5EED_CAFE);
    for script in &generated.setup {
        append(&store, &script.stream, script.org, &script.events).await;
    }
    project(&store).await;

    // Rounds: every stream appends its next few events at once, so streams
    // interleave in the log; a pause between rounds spreads the times.
    let mut rng = Rng(7);
    let mut next: Vec<usize> = vec![0; generated.recipients.len()];
    let mut round = 0;
    while next
        .iter()
        .zip(&generated.recipients)
        .any(|(at, script)| *at < script.events.len())
    {
        let mut tasks = tokio::task::JoinSet::new();
        for (at, script) in next.iter_mut().zip(&generated.recipients) {
            if *at >= script.events.len() {
                continue;
            }
            let take = (1 + rng.below(4) as usize).min(script.events.len() - *at);
            let events = script.events[*at..*at + take].to_vec();
            *at += take;
            let (store, stream, org) = (store.clone(), script.stream.clone(), script.org);
            tasks.spawn(async move { append(&store, &stream, org, &events).await });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        round += 1;
        if round == 2 {
            for script in &generated.later {
                append(&store, &script.stream, script.org, &script.events).await;
            }
            // The contact count is read from the campaigns read model only
            // once it has applied the attachment: before that the batch fails.
            let err = catch_up(store.as_ref(), &CampaignMetrics::live())
                .await
                .unwrap_err();
            assert!(
                matches!(&err, ProjectionError::Apply { reason, .. } if reason.contains("campaigns read model")),
                "{err}"
            );
        }
        if round % 3 == 0 {
            project(&store).await;
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    project(&store).await;

    let events = read_all(&store).await;
    let recount = Recount::of(&events);
    let db = &db.database;
    for campaign in &generated.campaigns {
        let expected = recount.campaign(*campaign);
        let actual = metrics::campaign_metrics(db, generated.org, *campaign)
            .await
            .unwrap()
            .expect("the campaign's metrics");
        assert_eq!(actual, expected, "campaign {campaign}");
        assert!(actual.headline.messaged > 0 && actual.headline.failed > 0);

        let texters = metrics::texters(db, generated.org, *campaign)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(texters, recount.texters(*campaign), "texters of {campaign}");

        for bucket in [Bucket::Hour, Bucket::Day] {
            let series = metrics::timeseries(db, generated.org, *campaign, bucket, None, None)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(series, recount.timeseries(*campaign, bucket), "{bucket}");
            let total: i64 = series.iter().map(|b| b.delivered).sum();
            assert_eq!(total, expected.headline.delivered);
        }
        // A window after everything holds nothing.
        let later = Utc::now() + chrono::Duration::hours(2);
        let empty = metrics::timeseries(
            db,
            generated.org,
            *campaign,
            Bucket::Hour,
            Some(later),
            Some(later + chrono::Duration::hours(1)),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(empty, []);
        // Another organization sees none of it.
        assert_eq!(
            metrics::campaign_metrics(db, generated.other_org, *campaign)
                .await
                .unwrap(),
            None
        );
    }
    let main = recount.campaign(generated.campaigns[0]).headline;
    assert_eq!(main.contacts, 190, "both lists, the overlap once");
    assert!(main.replied > 0 && main.opted_out > 0 && main.blocked > 0);

    let mut expected: Vec<Headline> = generated
        .campaigns
        .iter()
        .map(|campaign| recount.campaign(*campaign).headline)
        .collect();
    expected.sort_by(|a, b| {
        (b.created_at, b.campaign_id.as_uuid()).cmp(&(a.created_at, a.campaign_id.as_uuid()))
    });
    assert_eq!(
        metrics::overview(db, generated.org).await.unwrap(),
        expected
    );
    // Rebuilt from position 0 into fresh tables and swapped in: the same.
    let rebuilt =
        textbank_projections::rebuild::rebuild(store.as_ref(), db, &CampaignMetrics::live())
            .await
            .unwrap();
    assert_eq!(rebuilt.method, "swapped");
    for campaign in &generated.campaigns {
        let again = metrics::campaign_metrics(db, generated.org, *campaign)
            .await
            .unwrap();
        assert_eq!(again, Some(recount.campaign(*campaign)));
        let texters = metrics::texters(db, generated.org, *campaign)
            .await
            .unwrap();
        assert_eq!(texters, Some(recount.texters(*campaign)));
    }
    let other = metrics::overview(db, generated.other_org).await.unwrap();
    assert_eq!(
        other,
        vec![recount.campaign(generated.other_campaign).headline]
    );
}

async fn read_all(store: &SqlEventStore) -> Vec<RecordedEvent> {
    let mut events = Vec::new();
    loop {
        let page = store
            .read_all(events.len() as u64 + 1, 1_000)
            .await
            .unwrap();
        if page.is_empty() {
            return events;
        }
        events.extend(page);
    }
}

// ---------------------------------------------------------------------------
// The independent recount: straight from the stored events, by the
// definitions, without the projector's incremental bookkeeping.

fn hour(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(3_600) * 3_600
}

/// A delivery report: (position, status, error code, recorded at).
type Report = (u64, DeliveryStatus, Option<String>, DateTime<Utc>);

/// An initial message and what happened to it.
struct Initial {
    campaign: CampaignId,
    texter: MemberId,
    org: OrgId,
    at: DateTime<Utc>,
    display_ms: Option<i64>,
    /// The attempt of each dispatch start; (attempt, code, at) of each
    /// refusal.
    starts: Vec<u32>,
    refusals: Vec<(u32, String, DateTime<Utc>)>,
    /// The carrier id and the position of the submission.
    submission: Option<(String, u64)>,
    /// Reports naming the message.
    reports: Vec<Report>,
}

#[derive(Default)]
struct Recount {
    names: HashMap<CampaignId, (OrgId, String, DateTime<Utc>)>,
    status: HashMap<CampaignId, &'static str>,
    attached: HashMap<CampaignId, Vec<ListId>>,
    lists: HashMap<ListId, Vec<String>>,
    holders: HashMap<(CampaignId, String), MemberId>,
    initials: HashMap<MessageId, Initial>,
    conversation_message: HashMap<ConversationId, MessageId>,
    /// (org, carrier id) → (position, status, code, at) of reports that
    /// named no message.
    unmatched: HashMap<(OrgId, String), Vec<Report>>,
    reply_clicks: Vec<(CampaignId, MemberId, DateTime<Utc>)>,
    replies: Vec<(ConversationId, DateTime<Utc>)>,
    opt_outs: Vec<(ConversationId, DateTime<Utc>)>,
    answers: Vec<(ConversationId, String, String)>,
    blocked: Vec<(CampaignId, MemberId, BlockReason, DateTime<Utc>)>,
}

/// Every figure of one campaign, gathered per texter and per hour.
#[derive(Default, Clone, Copy)]
struct Tally {
    assigned: i64,
    messaged: i64,
    replies_sent: i64,
    delivered: i64,
    failed: i64,
    replied: i64,
    replies_received: i64,
    opted_out: i64,
    blocked: i64,
}

enum Outcome {
    Delivered(DateTime<Utc>),
    Failed(String, DateTime<Utc>),
}

impl Recount {
    fn of(events: &[RecordedEvent]) -> Self {
        let mut recount = Self::default();
        for event in events {
            let stream = event.stream_id.as_str();
            if let Some(list) = stream.strip_prefix("list-") {
                let list = ListId::from_uuid(list.parse().unwrap());
                if let Some(ListEvent::ContactsImported { contacts }) =
                    ListEvent::from_parts(&event.event_type, &event.data).unwrap()
                {
                    recount
                        .lists
                        .entry(list)
                        .or_default()
                        .extend(contacts.into_iter().map(|c| c.phone));
                }
            } else if let Some(campaign) = stream.strip_prefix("campaign-") {
                let campaign = CampaignId::from_uuid(campaign.parse().unwrap());
                let parsed = CampaignEvent::from_parts(&event.event_type, &event.data)
                    .unwrap()
                    .unwrap();
                recount.campaign_event(campaign, parsed, event.recorded_at);
            } else if stream.starts_with("recipient-") {
                let parsed = RecipientEvent::from_parts(&event.event_type, &event.data)
                    .unwrap()
                    .unwrap();
                let org = event.metadata.org_id.unwrap();
                recount.recipient_event(org, event.position, event.recorded_at, parsed);
            }
        }
        recount
    }

    fn campaign_event(&mut self, campaign: CampaignId, event: CampaignEvent, at: DateTime<Utc>) {
        match event {
            CampaignEvent::CampaignCreated { org_id, name, .. } => {
                self.names.insert(campaign, (org_id, name, at));
                self.status.insert(campaign, "draft");
            }
            CampaignEvent::SettingsChanged { name, .. } => {
                if let Some(entry) = self.names.get_mut(&campaign) {
                    entry.1 = name;
                }
            }
            CampaignEvent::ListsAttached { list_ids } => {
                self.attached.entry(campaign).or_default().extend(list_ids)
            }
            CampaignEvent::CampaignLaunched {} | CampaignEvent::CampaignResumed {} => {
                self.status.insert(campaign, "active");
            }
            CampaignEvent::CampaignPaused {} => {
                self.status.insert(campaign, "paused");
            }
            CampaignEvent::CampaignArchived {} => {
                self.status.insert(campaign, "archived");
            }
            CampaignEvent::ContactsAssigned { texter_id, phones } => {
                for phone in phones {
                    self.holders
                        .entry((campaign, phone.as_str().to_owned()))
                        .or_insert(texter_id);
                }
            }
            CampaignEvent::ContactsReleased { texter_id, phones } => {
                for phone in phones {
                    let key = (campaign, phone.as_str().to_owned());
                    if self.holders.get(&key) == Some(&texter_id) {
                        self.holders.remove(&key);
                    }
                }
            }
            CampaignEvent::ScriptRevised { .. } => {}
        }
    }

    fn recipient_event(
        &mut self,
        org: OrgId,
        position: u64,
        at: DateTime<Utc>,
        event: RecipientEvent,
    ) {
        match event {
            RecipientEvent::MessageSendClicked(click) => match click.evidence.kind {
                MessageKind::Initial => {
                    self.conversation_message
                        .insert(click.conversation_id, click.message_id);
                    self.initials.insert(
                        click.message_id,
                        Initial {
                            campaign: click.campaign_id,
                            texter: click.evidence.texter_id,
                            org,
                            at,
                            display_ms: click
                                .evidence
                                .presented_at
                                .map(|p| (click.evidence.received_at - p).num_milliseconds()),
                            starts: Vec::new(),
                            refusals: Vec::new(),
                            submission: None,
                            reports: Vec::new(),
                        },
                    );
                }
                MessageKind::Reply => {
                    self.reply_clicks
                        .push((click.campaign_id, click.evidence.texter_id, at))
                }
            },
            RecipientEvent::SendBlocked(attempt) => {
                if let Some(campaign) = attempt.campaign_id {
                    self.blocked
                        .push((campaign, attempt.evidence.texter_id, attempt.reason, at));
                }
            }
            RecipientEvent::MessageDispatchStarted {
                message_id,
                attempt,
                ..
            } => {
                if let Some(initial) = self.initials.get_mut(&message_id) {
                    initial.starts.push(attempt);
                }
            }
            RecipientEvent::MessageSubmitFailed {
                message_id,
                attempt,
                code,
                ..
            } => {
                if let Some(initial) = self.initials.get_mut(&message_id) {
                    initial.refusals.push((attempt, code, at));
                }
            }
            RecipientEvent::MessageSubmitted {
                message_id,
                carrier_message_id,
                ..
            } => {
                if let Some(initial) = self.initials.get_mut(&message_id) {
                    initial.submission = Some((carrier_message_id, position));
                }
            }
            RecipientEvent::DeliveryReported {
                carrier_message_id,
                message_id,
                status,
                error_code,
                ..
            } => match message_id.and_then(|id| self.initials.get_mut(&id)) {
                Some(initial) => initial.reports.push((position, status, error_code, at)),
                None if message_id.is_none() => self
                    .unmatched
                    .entry((org, carrier_message_id))
                    .or_default()
                    .push((position, status, error_code, at)),
                None => {}
            },
            RecipientEvent::ReplyReceived {
                conversation: Some(conversation),
                ..
            } => self.replies.push((conversation.conversation_id, at)),
            RecipientEvent::OptOutRecorded {
                conversation: Some(conversation),
                ..
            } => self.opt_outs.push((conversation.conversation_id, at)),
            RecipientEvent::SurveyAnswerRecorded {
                conversation,
                question_id,
                answer,
                ..
            } => self
                .answers
                .push((conversation.conversation_id, question_id, answer)),
            _ => {}
        }
    }

    /// Where an initial message ended: its first final report (reports
    /// that came before the submission, naming only the carrier's id,
    /// included), else a refusal of its last dispatch attempt.
    fn outcome(&self, initial: &Initial) -> Option<Outcome> {
        let mut reports = initial.reports.clone();
        if let Some((carrier, submitted_at)) = &initial.submission
            && let Some(early) = self.unmatched.get(&(initial.org, carrier.clone()))
        {
            reports.extend(early.iter().filter(|r| r.0 < *submitted_at).cloned());
        }
        reports.sort_by_key(|r| r.0);
        if let Some((_, status, code, at)) = reports.iter().find(|r| r.1.is_final()) {
            return Some(if *status == DeliveryStatus::Delivered {
                Outcome::Delivered(*at)
            } else {
                Outcome::Failed(code.clone().unwrap_or_else(|| "unknown".into()), *at)
            });
        }
        let last_attempt = initial.starts.iter().max()?;
        initial
            .refusals
            .iter()
            .rev()
            .find(|(attempt, _, _)| attempt == last_attempt)
            .map(|(_, code, at)| Outcome::Failed(code.clone(), *at))
    }

    /// Per texter and per hour, every counted thing of the campaign.
    #[allow(clippy::type_complexity)]
    fn tallies(
        &self,
        campaign: CampaignId,
    ) -> (
        BTreeMap<Uuid, Tally>,
        BTreeMap<i64, Tally>,
        BTreeMap<String, i64>,
        BTreeMap<String, i64>,
    ) {
        let mut texters: BTreeMap<Uuid, Tally> = BTreeMap::new();
        let mut hours: BTreeMap<i64, Tally> = BTreeMap::new();
        let mut by_code: BTreeMap<String, i64> = BTreeMap::new();
        let mut by_reason: BTreeMap<String, i64> = BTreeMap::new();
        let mut count = |texter: MemberId, at: Option<DateTime<Utc>>, add: &dyn Fn(&mut Tally)| {
            add(texters.entry(*texter.as_uuid()).or_default());
            if let Some(at) = at {
                add(hours.entry(hour(at)).or_default());
            }
        };
        for ((c, _), texter) in &self.holders {
            if *c == campaign {
                count(*texter, None, &|t: &mut Tally| t.assigned += 1);
            }
        }
        let mut first_reply: HashMap<ConversationId, DateTime<Utc>> = HashMap::new();
        for (conversation, at) in &self.replies {
            first_reply.entry(*conversation).or_insert(*at);
        }
        let mut first_opt_out: HashMap<ConversationId, DateTime<Utc>> = HashMap::new();
        for (conversation, at) in &self.opt_outs {
            first_opt_out.entry(*conversation).or_insert(*at);
        }
        for (conversation, message) in &self.conversation_message {
            let initial = &self.initials[message];
            if initial.campaign != campaign {
                continue;
            }
            let texter = initial.texter;
            count(texter, Some(initial.at), &|t: &mut Tally| t.messaged += 1);
            match self.outcome(initial) {
                Some(Outcome::Delivered(at)) => {
                    count(texter, Some(at), &|t: &mut Tally| t.delivered += 1)
                }
                Some(Outcome::Failed(code, at)) => {
                    count(texter, Some(at), &|t: &mut Tally| t.failed += 1);
                    *by_code.entry(code).or_default() += 1;
                }
                None => {}
            }
            if let Some(at) = first_reply.get(conversation) {
                count(texter, Some(*at), &|t: &mut Tally| t.replied += 1);
            }
            for (_, at) in self.replies.iter().filter(|(c, _)| c == conversation) {
                count(texter, Some(*at), &|t: &mut Tally| t.replies_received += 1);
            }
            if let Some(at) = first_opt_out.get(conversation) {
                count(texter, Some(*at), &|t: &mut Tally| t.opted_out += 1);
            }
        }
        for (c, texter, at) in &self.reply_clicks {
            if *c == campaign {
                count(*texter, Some(*at), &|t: &mut Tally| t.replies_sent += 1);
            }
        }
        for (c, texter, reason, at) in &self.blocked {
            if *c == campaign {
                count(*texter, Some(*at), &|t: &mut Tally| t.blocked += 1);
                *by_reason.entry(reason.code().to_owned()).or_default() += 1;
            }
        }
        (texters, hours, by_code, by_reason)
    }

    fn campaign(&self, campaign: CampaignId) -> CampaignMetricsView {
        let (texters, _, failed_by_code, blocked_by_reason) = self.tallies(campaign);
        let mut total = Tally::default();
        for t in texters.values() {
            total.assigned += t.assigned;
            total.messaged += t.messaged;
            total.replies_sent += t.replies_sent;
            total.delivered += t.delivered;
            total.failed += t.failed;
            total.replied += t.replied;
            total.replies_received += t.replies_received;
            total.opted_out += t.opted_out;
            total.blocked += t.blocked;
        }
        let contacts: HashSet<&String> = self
            .attached
            .get(&campaign)
            .into_iter()
            .flatten()
            .flat_map(|list| self.lists.get(list).into_iter().flatten())
            .collect();
        let rate = |part: i64| (total.messaged > 0).then(|| part as f64 / total.messaged as f64);
        let (_, name, created_at) = self.names[&campaign].clone();

        // Survey: each conversation's last answer per question.
        let mut current: BTreeMap<(ConversationId, String), String> = BTreeMap::new();
        for (conversation, question, answer) in &self.answers {
            let in_campaign = self
                .conversation_message
                .get(conversation)
                .is_some_and(|m| self.initials[m].campaign == campaign);
            if in_campaign {
                current.insert((*conversation, question.clone()), answer.clone());
            }
        }
        let mut survey_answers: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for ((_, question), answer) in current {
            *survey_answers
                .entry(question)
                .or_default()
                .entry(answer)
                .or_default() += 1;
        }

        // Time to first reply, per replied conversation.
        let mut delays = Vec::new();
        let mut seen = HashSet::new();
        for (conversation, at) in &self.replies {
            let Some(message) = self.conversation_message.get(conversation) else {
                continue;
            };
            let initial = &self.initials[message];
            if initial.campaign == campaign && seen.insert(*conversation) {
                delays.push((at.timestamp_micros() - initial.at.timestamp_micros()) / 1_000);
            }
        }

        CampaignMetricsView {
            headline: Headline {
                campaign_id: campaign,
                name,
                status: self.status[&campaign].to_owned(),
                created_at,
                contacts: contacts.len() as i64,
                assigned: total.assigned,
                messaged: total.messaged,
                replies_sent: total.replies_sent,
                delivered: total.delivered,
                delivery_rate: rate(total.delivered),
                failed: total.failed,
                replied: total.replied,
                reply_rate: rate(total.replied),
                replies_received: total.replies_received,
                opted_out: total.opted_out,
                opt_out_rate: rate(total.opted_out),
                blocked: total.blocked,
            },
            failed_by_code,
            blocked_by_reason,
            // The generated histories hold no contact back (the queue's
            // holds are tested end to end).
            held_by_reason: Default::default(),
            survey_answers,
            median_time_to_first_reply_ms: median(delays),
            // Read from the inbox, which these tests do not project.
            conversations_by_holder: Default::default(),
        }
    }

    fn texters(&self, campaign: CampaignId) -> Vec<TexterMetrics> {
        let (texters, ..) = self.tallies(campaign);
        texters
            .into_iter()
            .filter(|(_, t)| {
                [
                    t.assigned,
                    t.messaged,
                    t.replies_sent,
                    t.delivered,
                    t.failed,
                    t.replied,
                    t.replies_received,
                    t.opted_out,
                    t.blocked,
                ]
                .iter()
                .any(|n| *n != 0)
            })
            .map(|(texter, t)| {
                let times: Vec<i64> = self
                    .initials
                    .values()
                    .filter(|i| i.campaign == campaign && *i.texter.as_uuid() == texter)
                    .filter_map(|i| i.display_ms)
                    .collect();
                TexterMetrics {
                    texter_id: MemberId::from_uuid(texter),
                    name: None,
                    assigned: t.assigned,
                    messaged: t.messaged,
                    replies_sent: t.replies_sent,
                    sent: t.messaged + t.replies_sent,
                    delivered: t.delivered,
                    failed: t.failed,
                    replied: t.replied,
                    replies_received: t.replies_received,
                    opted_out: t.opted_out,
                    blocked: t.blocked,
                    median_display_to_click_ms: median(times),
                }
            })
            .collect()
    }

    fn timeseries(&self, campaign: CampaignId, bucket: Bucket) -> Vec<BucketCounts> {
        let (_, hours, ..) = self.tallies(campaign);
        let width = match bucket {
            Bucket::Hour => 3_600,
            Bucket::Day => 86_400,
        };
        let mut buckets: BTreeMap<i64, Tally> = BTreeMap::new();
        for (hour, t) in hours {
            let b = buckets.entry(hour.div_euclid(width) * width).or_default();
            b.messaged += t.messaged;
            b.replies_sent += t.replies_sent;
            b.delivered += t.delivered;
            b.failed += t.failed;
            b.replied += t.replied;
            b.replies_received += t.replies_received;
            b.opted_out += t.opted_out;
            b.blocked += t.blocked;
        }
        buckets
            .into_iter()
            .map(|(start, t)| BucketCounts {
                start: DateTime::from_timestamp(start, 0).unwrap(),
                messaged: t.messaged,
                replies_sent: t.replies_sent,
                sent: t.messaged + t.replies_sent,
                delivered: t.delivered,
                failed: t.failed,
                replied: t.replied,
                replies_received: t.replies_received,
                opted_out: t.opted_out,
                blocked: t.blocked,
            })
            .collect()
    }
}

/// The middle value, or the mean of the two middle values rounded down.
fn median(mut values: Vec<i64>) -> Option<i64> {
    values.sort_unstable();
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]).div_euclid(2)),
    }
}
