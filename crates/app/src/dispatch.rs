//! The dispatcher: a reactor that follows the log and hands each clicked
//! message (and each automated reply) to its organization's carrier, at most
//! once. Before calling the carrier it records `MessageDispatchStarted` under
//! the recipient stream's exact version — so an opt-out that lands first
//! cancels the send — and a start found without an outcome (a crash mid-call)
//! becomes `MessageSubmitUnknown`, never a second send.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream;
use textbank_domain::recipient::{self, DispatchDecision, Dispatcher, RecipientEvent};
use textbank_domain::{Actor, DomainEvent, EventMetadata, MessageId, OrgId, StreamId};
use textbank_sms::{OutboundMessage, SendRateLimiter, SubmitOutcome};
use textbank_store::{Leader, RecordedEvent, StoreError, try_lead, wait_beyond};
use tokio::sync::watch;

use crate::command::Loaded;
use crate::command::StreamView;
use crate::{App, AppError};

/// The dispatcher's checkpoint name.
pub const CHECKPOINT: &str = "dispatch";
const BATCH: usize = 500;
/// Messages in flight at once (each mostly waits on its carrier).
const CONCURRENCY: usize = 64;
const POLL: Duration = Duration::from_secs(1);
const ATTEMPTS: usize = 8;
/// How often a process that does not lead the dispatch asks again.
const LEADER_RETRY: Duration = Duration::from_secs(5);
/// The longest a carrier call can last: the carrier client's timeout, with
/// a margin for the outcome's append. A former leader's start younger than
/// this may still be in flight.
const LONGEST_CALL: Duration = Duration::from_secs(crate::carrier::CARRIER_TIMEOUT_SECS + 5);
/// How often a start that may still be in flight at a former leader is
/// looked at again.
const IN_FLIGHT_RECHECK: Duration = Duration::from_millis(250);

/// One message to hand over.
#[derive(Debug, Clone)]
struct Job {
    org: OrgId,
    stream: StreamId,
    message_id: MessageId,
    phone: String,
}

fn job(event: &RecordedEvent) -> Result<Option<Job>, AppError> {
    if !matches!(
        event.event_type.as_str(),
        "MessageSendClicked" | "AutoReplyQueued"
    ) || !event.stream_id.as_str().starts_with("recipient-")
    {
        return Ok(None);
    }
    let Some(org) = event.metadata.org_id else {
        return Ok(None);
    };
    let parsed = RecipientEvent::from_parts(&event.event_type, &event.data)
        .map_err(|err| AppError::Inconsistent(format!("position {}: {err}", event.position)))?;
    let (message_id, phone) = match parsed {
        Some(RecipientEvent::MessageSendClicked(click)) => (click.message_id, click.phone),
        Some(RecipientEvent::AutoReplyQueued {
            message_id, phone, ..
        }) => (message_id, phone),
        _ => return Ok(None),
    };
    Ok(Some(Job {
        org,
        stream: event.stream_id.clone(),
        message_id,
        phone: phone.as_str().to_owned(),
    }))
}

/// Follows the log until `stop` turns true, while this process leads the
/// dispatch (one dispatcher per database: two would mistake each other's
/// in-flight submissions for crashed ones).
pub(crate) async fn run(app: App, mut stop: watch::Receiver<bool>) {
    let limiter = SendRateLimiter::new(app.send_settings().sender_rate_per_second, 1);
    let mut leader: Option<Leader> = None;
    while !*stop.borrow() {
        if leader.as_ref().is_some_and(|lead| !lead.still_leads()) {
            // The lock went with its connection: another process may lead
            // now, so nothing more is dispatched until the lock is ours again.
            tracing::error!("dispatch leadership lost (its database connection ended)");
            leader = None;
        }
        let lead = match leader.take() {
            Some(lead) => lead,
            None => match try_lead(app.database(), CHECKPOINT).await {
                Ok(Some(lead)) => {
                    tracing::info!(term = lead.fence().term, "leading the dispatch");
                    lead
                }
                Ok(None) => {
                    tokio::select! {
                        _ = tokio::time::sleep(LEADER_RETRY) => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
                Err(err) => {
                    tracing::error!(error = %err, "dispatch leadership check failed");
                    pause(&mut stop).await;
                    continue;
                }
            },
        };
        match step(&app, &limiter, &lead).await {
            Ok(Some(_)) => {
                leader = Some(lead);
                continue;
            }
            Ok(None) => {}
            Err(AppError::Store(StoreError::Fenced { term, current, .. })) => {
                // Another process took the lead (and a new term) before this
                // one noticed: its start was refused, nothing was sent.
                tracing::error!(term, current, "dispatch leadership lost to a newer term");
                continue;
            }
            Err(err) => {
                tracing::error!(error = %err, "dispatch failed; retrying");
                leader = Some(lead);
                pause(&mut stop).await;
                continue;
            }
        }
        leader = Some(lead);
        let position = match checkpoint(&app).await {
            Ok(position) => position,
            Err(err) => {
                // Waiting from 0 would wake at once and spin; wait a poll.
                tracing::error!(error = %err, "dispatch checkpoint read failed; retrying");
                pause(&mut stop).await;
                continue;
            }
        };
        tokio::select! {
            _ = async {
                wait_beyond(app.events(), position, POLL).await;
                tokio::time::sleep(textbank_projections::LINGER).await;
            } => {}
            _ = stop.changed() => {}
        }
    }
}

/// Waits a poll, or less if told to stop.
async fn pause(stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(POLL) => {}
        _ = stop.changed() => {}
    }
}

async fn checkpoint(app: &App) -> Result<u64, AppError> {
    Ok(app.events().checkpoint(CHECKPOINT).await?.unwrap_or(0))
}

/// Dispatches the messages of the next batch of events; `None` when the log
/// has nothing new.
pub(crate) async fn step(
    app: &App,
    limiter: &SendRateLimiter,
    leader: &Leader,
) -> Result<Option<u64>, AppError> {
    let from = checkpoint(app).await?;
    let events = app.events().read_all(from + 1, BATCH).await?;
    let Some(last) = events.last().map(|event| event.position) else {
        return Ok(None);
    };
    let jobs = events
        .iter()
        .filter_map(|event| job(event).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    let results: Vec<Result<(), AppError>> = stream::iter(jobs)
        .map(|job| dispatch_one(app, limiter, leader, job))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect::<Result<(), _>>()?;
    let mut tx = app.events().begin().await?;
    tx.save_checkpoint(CHECKPOINT, last).await?;
    tx.commit().await?;
    Ok(Some(last))
}

fn metadata(org: OrgId) -> EventMetadata {
    EventMetadata::new(Some(org), Actor::System)
}

async fn dispatch_one(
    app: &App,
    limiter: &SendRateLimiter,
    leader: &Leader,
    job: Job,
) -> Result<(), AppError> {
    let max_attempts = app.send_settings().max_submit_attempts.max(1);
    let metadata = metadata(job.org);
    let mut recipient = StreamView::<RecipientEvent>::new(app, job.stream.clone());
    let mut tries = 0;
    let mut waiting_since: Option<Instant> = None;
    while tries < ATTEMPTS * max_attempts as usize {
        tries += 1;
        let loaded = recipient.load().await?;
        let dispatcher = Dispatcher {
            max_attempts,
            leader_term: leader.fence().term,
            now: app.clock().now(),
            longest_call: chrono::Duration::from_std(LONGEST_CALL).unwrap_or(chrono::Duration::MAX),
        };
        let decision = match recipient::decide_dispatch(&loaded.state, job.message_id, &dispatcher)
        {
            DispatchDecision::WaitForFormerLeader { attempt, .. }
                if waiting_since.get_or_insert_with(Instant::now).elapsed() >= LONGEST_CALL =>
            {
                // This process's own clock says the call has surely ended,
                // whatever the timestamps say (a server's clock may run
                // ahead, or stand still in tests).
                DispatchDecision::MarkUnknown { attempt }
            }
            decision => decision,
        };
        let attempt = match decision {
            DispatchDecision::WaitForFormerLeader { until, .. } => {
                // Its outcome will come from the former leader, or the wait
                // ends and the start is "maybe sent". Not a try of ours.
                tries -= 1;
                let left = (until - dispatcher.now).to_std().unwrap_or_default();
                tokio::time::sleep(left.min(IN_FLIGHT_RECHECK)).await;
                recipient.reload();
                continue;
            }
            // Only the store itself may say there is nothing to do.
            DispatchDecision::Done if recipient.was_cached() => {
                recipient.reload();
                continue;
            }
            DispatchDecision::Done => return Ok(()),
            DispatchDecision::Cancel => {
                let event = RecipientEvent::MessageCancelled {
                    message_id: job.message_id,
                    reason: "the number opted out before the message was handed to the carrier"
                        .into(),
                };
                if recipient
                    .append_at(&loaded, &[event], &metadata)
                    .await?
                    .is_some()
                {
                    return Ok(());
                }
                continue;
            }
            DispatchDecision::MarkUnknown { attempt } => {
                let event = RecipientEvent::MessageSubmitUnknown {
                    message_id: job.message_id,
                    attempt,
                    reason: "the dispatch started but its outcome was never recorded (a restart \
                             mid-call); not resent"
                        .into(),
                };
                if recipient
                    .append_at(&loaded, &[event], &metadata)
                    .await?
                    .is_some()
                {
                    tracing::warn!(message_id = %job.message_id, "submission outcome unknown");
                    return Ok(());
                }
                continue;
            }
            DispatchDecision::Start { attempt } => attempt,
        };
        let Some(carrier) = app.carrier_for(job.org).await? else {
            let event = RecipientEvent::MessageSubmitFailed {
                message_id: job.message_id,
                attempt,
                carrier: "none".into(),
                code: recipient::NO_CARRIER.into(),
                error: "the organization has no carrier configured (PUT /v1/carrier)".into(),
                retryable: false,
            };
            if recipient
                .append_at(&loaded, &[event], &metadata)
                .await?
                .is_some()
            {
                return Ok(());
            }
            continue;
        };
        let from = if carrier.carrier_picks_number {
            None
        } else {
            carrier.sender_for(&job.phone, loaded.state.sender.as_deref())
        };
        let (body, automated) = loaded
            .state
            .outbound
            .get(&job.message_id)
            .map(|message| (message.body.clone(), message.automated))
            .unwrap_or_default();
        limiter
            .acquire(from.as_deref().unwrap_or(&carrier.org_id.to_string()))
            .await;
        let started = RecipientEvent::MessageDispatchStarted {
            message_id: job.message_id,
            attempt,
            carrier: carrier.kind.clone(),
            from: from.clone(),
            leader_term: Some(leader.fence().term),
            started_at: Some(app.clock().now()),
        };
        // Fenced: if another process has taken the lead since, the start is
        // refused and the carrier is not called.
        let Some(start) = recipient
            .append_at_fenced(
                &loaded,
                std::slice::from_ref(&started),
                &metadata,
                Some(leader.fence()),
            )
            .await?
        else {
            // The stream moved (a reply, an opt-out): decide again.
            continue;
        };
        let outcome = carrier
            .adapter
            .submit(&OutboundMessage {
                message_id: *job.message_id.as_uuid(),
                from: from.clone().unwrap_or_default(),
                to: job.phone.clone(),
                body,
                automated,
            })
            .await;
        let retry = matches!(
            outcome,
            SubmitOutcome::Rejected {
                retryable: true,
                ..
            }
        ) && attempt < max_attempts;
        let event = match outcome {
            SubmitOutcome::Accepted {
                carrier_message_id,
                from: used,
            } => RecipientEvent::MessageSubmitted {
                message_id: job.message_id,
                attempt,
                carrier: carrier.kind.clone(),
                carrier_message_id,
                from: used.or(from),
            },
            SubmitOutcome::Rejected {
                code,
                message,
                retryable,
            } => RecipientEvent::MessageSubmitFailed {
                message_id: job.message_id,
                attempt,
                carrier: carrier.kind.clone(),
                code,
                error: message,
                retryable,
            },
            SubmitOutcome::Unknown { reason } => RecipientEvent::MessageSubmitUnknown {
                message_id: job.message_id,
                attempt,
                reason,
            },
        };
        // The outcome belongs to the start just written, whatever else
        // happened on the stream since.
        let after_start = Loaded {
            state: recipient::evolve(loaded.state, &started),
            version: Some(start.last_version),
        };
        recipient
            .append_any(&after_start, &[event], &metadata)
            .await?;
        if !retry {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
    }
    Err(AppError::Conflict(format!(
        "{}: dispatch of {} kept conflicting",
        job.stream, job.message_id
    )))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::post;
    use textbank_domain::message::MessageKind;
    use textbank_domain::phone::{PhoneNumber, Region};

    use textbank_domain::{MemberId, SystemClock};
    use textbank_store::SqlEventStore;
    use textbank_testkit::ScratchDb;

    use super::*;
    use crate::CarrierSettings;

    /// A stand-in for Twilio's Messages API answering from a script of
    /// status codes (201 once the script runs out), counting calls.
    async fn fake_twilio(script: Vec<u16>) -> (String, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let counter = calls.clone();
        let router = Router::new().route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            post(move || {
                let counter = counter.clone();
                let script = script.clone();
                async move {
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    let status = script.lock().unwrap().pop_front().unwrap_or(201);
                    let body = if status == 201 {
                        format!(r#"{{"sid":"SM{n:032}","from":"+12025550100","status":"queued"}}"#)
                    } else {
                        r#"{"code":20429,"message":"Too Many Requests","status":429}"#.to_owned()
                    };
                    (StatusCode::from_u16(status).unwrap(), body)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        (url, calls)
    }

    async fn app_with_twilio(script: Vec<u16>) -> (App, OrgId, Arc<AtomicUsize>, ScratchDb) {
        let db = ScratchDb::sqlite().await;
        let store = SqlEventStore::on_database(db.database.clone())
            .await
            .unwrap();
        let (url, calls) = fake_twilio(script).await;
        // The stand-in listens on loopback, which only an operator allows.
        let app = App::new(Arc::new(store), Arc::new(SystemClock)).with_carrier_api_policy(
            crate::CarrierApiPolicy {
                allowed: vec![url.clone()],
                allow_private: true,
            },
        );
        let org = app.create_org("Dispatch Org").await.unwrap();
        let owner = app.authenticate(&org.owner_key, None, None).await.unwrap();
        let settings: CarrierSettings = serde_json::from_value(serde_json::json!({
            "carrier": "twilio",
            "account_sid": "AC1",
            "auth_token": "token",
            "sending_numbers": ["+12025550100"],
            "api_base": url,
        }))
        .unwrap();
        app.configure_carrier(&owner, settings).await.unwrap();
        (app, org.org_id, calls, db)
    }

    fn click(phone: &PhoneNumber) -> (MessageId, RecipientEvent) {
        let record = textbank_domain::testing::click_record(
            MemberId::new(),
            phone,
            MessageKind::Initial,
            "Hi",
            chrono::Utc::now(),
        );
        (
            record.message_id,
            RecipientEvent::MessageSendClicked(Box::new(record)),
        )
    }

    async fn append(app: &App, org: OrgId, phone: &PhoneNumber, events: &[RecipientEvent]) {
        let stream = recipient::stream_id(org, phone);
        app.append_any(&stream, events, &metadata(org))
            .await
            .unwrap();
    }

    async fn types(app: &App, org: OrgId, phone: &PhoneNumber) -> Vec<String> {
        let stream = recipient::stream_id(org, phone);
        app.events()
            .read_stream(&stream, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|event| event.event_type)
            .collect()
    }

    /// The stream holds the click, one start and then `outcome`.
    async fn assert_dispatched_once(app: &App, org: OrgId, phone: &PhoneNumber, outcome: &str) {
        assert_eq!(
            types(app, org, phone).await,
            ["MessageSendClicked", "MessageDispatchStarted", outcome]
        );
    }

    fn limiter() -> SendRateLimiter {
        SendRateLimiter::new(100.0, 10)
    }

    /// Runs the dispatcher until nothing in the log is left to send.
    async fn dispatch_all(app: &App) {
        let leader = lead(app).await;
        while step(app, &limiter(), &leader).await.unwrap().is_some() {}
    }

    async fn lead(app: &App) -> Leader {
        try_lead(app.database(), CHECKPOINT)
            .await
            .unwrap()
            .expect("SQLite: this process leads")
    }

    /// Appends a click to `phone` and dispatches everything.
    async fn click_and_dispatch(app: &App, org: OrgId, phone: &PhoneNumber) {
        let (_, clicked) = click(phone);
        append(app, org, phone, &[clicked]).await;
        dispatch_all(app).await;
    }

    /// The voter's STOP.
    fn stop(phone: &PhoneNumber) -> RecipientEvent {
        RecipientEvent::OptOutRecorded {
            phone: phone.clone(),
            source: recipient::OptOutSource::KeywordReply,
            keyword: Some("STOP".into()),
            conversation: None,
        }
    }

    #[tokio::test]
    async fn a_dispatch_cut_short_by_a_crash_is_marked_unknown_and_never_resent() {
        let (app, org, calls, db) = app_with_twilio(vec![]).await;
        let phone = PhoneNumber::parse("5552010001", Region::US).unwrap();
        let (message_id, clicked) = click(&phone);
        let started = RecipientEvent::MessageDispatchStarted {
            message_id,
            attempt: 1,
            carrier: "twilio".into(),
            from: Some("+12025550100".into()),
            leader_term: None,
            started_at: None,
        };
        append(&app, org, &phone, &[clicked, started]).await;
        dispatch_all(&app).await;
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_dispatched_once(&app, org, &phone, "MessageSubmitUnknown").await;
        db.cleanup().await;
    }

    #[tokio::test]
    async fn each_click_is_submitted_once_even_when_the_log_is_read_again() {
        let (app, org, calls, db) = app_with_twilio(vec![]).await;
        let phone = PhoneNumber::parse("5552010002", Region::US).unwrap();
        click_and_dispatch(&app, org, &phone).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // As if the checkpoint had been lost: the same events again.
        let mut tx = app.events().begin().await.unwrap();
        tx.save_checkpoint(CHECKPOINT, 0).await.unwrap();
        tx.commit().await.unwrap();
        dispatch_all(&app).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_dispatched_once(&app, org, &phone, "MessageSubmitted").await;
        db.cleanup().await;
    }

    #[tokio::test]
    async fn only_a_refusal_that_sent_nothing_is_retried() {
        let (app, org, calls, db) = app_with_twilio(vec![429]).await;
        let phone = PhoneNumber::parse("5552010003", Region::US).unwrap();
        click_and_dispatch(&app, org, &phone).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(
            types(&app, org, &phone).await,
            [
                "MessageSendClicked",
                "MessageDispatchStarted",
                "MessageSubmitFailed",
                "MessageDispatchStarted",
                "MessageSubmitted"
            ]
        );
        db.cleanup().await;
    }

    #[tokio::test]
    async fn the_cached_recipient_state_is_what_a_fresh_read_folds() {
        // A refused then accepted submission: the dispatcher's own appends
        // (start, failure, start, submission) all go through the cache.
        let (app, org, calls, db) = app_with_twilio(vec![429]).await;
        let phone = PhoneNumber::parse("5552010005", Region::US).unwrap();
        let stream = recipient::stream_id(org, &phone);
        click_and_dispatch(&app, org, &phone).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let cached = app.recipients().get(&stream).expect("cached");
        let fresh = crate::command::load::<RecipientEvent>(app.events(), &stream)
            .await
            .unwrap();
        assert_eq!(cached.version, Some(4));
        assert_eq!(cached.version, fresh.version);
        assert_eq!(cached.state, fresh.state);
        db.cleanup().await;
    }

    #[tokio::test]
    async fn an_opt_out_the_cache_never_saw_still_cancels_the_send() {
        let (app, org, calls, db) = app_with_twilio(vec![]).await;
        let phone = PhoneNumber::parse("5552010006", Region::US).unwrap();
        click_and_dispatch(&app, org, &phone).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // The cache now holds the stream; a second click and a STOP are
        // appended around it, as another server would.
        let (_, second) = click(&phone);
        append(&app, org, &phone, &[second, stop(&phone)]).await;
        dispatch_all(&app).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "sent after the STOP");
        assert_eq!(
            types(&app, org, &phone).await.last().map(String::as_str),
            Some("MessageCancelled")
        );
        db.cleanup().await;
    }

    #[tokio::test]
    async fn an_opt_out_after_the_click_cancels_the_send() {
        let (app, org, calls, db) = app_with_twilio(vec![]).await;
        let phone = PhoneNumber::parse("5552010004", Region::US).unwrap();
        let (_, clicked) = click(&phone);
        append(&app, org, &phone, &[clicked, stop(&phone)]).await;
        dispatch_all(&app).await;
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(
            types(&app, org, &phone).await,
            ["MessageSendClicked", "OptOutRecorded", "MessageCancelled"]
        );
        db.cleanup().await;
    }

    #[tokio::test]
    async fn a_former_leaders_call_in_flight_is_awaited_not_marked_unknown() {
        let (app, org, calls, db) = app_with_twilio(vec![]).await;
        let phone = PhoneNumber::parse("5552010007", Region::US).unwrap();
        let (message_id, clicked) = click(&phone);
        let former = lead(&app).await;
        let started = RecipientEvent::MessageDispatchStarted {
            message_id,
            attempt: 1,
            carrier: "twilio".into(),
            from: Some("+12025550100".into()),
            leader_term: Some(former.fence().term),
            started_at: Some(chrono::Utc::now()),
        };
        append(&app, org, &phone, &[clicked, started]).await;
        // The former leader's carrier call answers while the new leader
        // is already following the log.
        let outcome = RecipientEvent::MessageSubmitted {
            message_id,
            attempt: 1,
            carrier: "twilio".into(),
            carrier_message_id: "SM-late".into(),
            from: None,
        };
        let late = {
            let app = app.clone();
            let phone = phone.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(600)).await;
                append(&app, org, &phone, &[outcome]).await;
            })
        };
        let (new, old_term) = (lead(&app).await, former.fence().term);
        assert!(new.fence().term > old_term);
        while step(&app, &limiter(), &new).await.unwrap().is_some() {}
        late.await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_dispatched_once(&app, org, &phone, "MessageSubmitted").await;
        db.cleanup().await;
    }

    #[tokio::test]
    async fn a_former_leader_cannot_start_a_send_once_another_term_began() {
        let (app, org, calls, db) = app_with_twilio(vec![]).await;
        let phone = PhoneNumber::parse("5552010008", Region::US).unwrap();
        let former = lead(&app).await;
        let _current = lead(&app).await;
        let (_, clicked) = click(&phone);
        append(&app, org, &phone, &[clicked]).await;
        let refused = step(&app, &limiter(), &former).await;
        assert!(
            matches!(refused, Err(AppError::Store(StoreError::Fenced { .. }))),
            "{refused:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(types(&app, org, &phone).await, ["MessageSendClicked"]);
        db.cleanup().await;
    }
}
