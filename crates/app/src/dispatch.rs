//! The dispatcher: a reactor that follows the log and hands each clicked
//! message (and each automated reply) to its organization's carrier, at most
//! once. Before calling the carrier it records `MessageDispatchStarted` under
//! the recipient stream's exact version — so an opt-out that lands first
//! cancels the send — and a start found without an outcome (a crash mid-call)
//! becomes `MessageSubmitUnknown`, never a second send.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream;
use textbank_domain::recipient::{self, DispatchDecision, RecipientEvent};
use textbank_domain::{Actor, DomainEvent, EventMetadata, MessageId, OrgId, StreamId};
use textbank_sms::{OutboundMessage, SendRateLimiter, SubmitOutcome};
use textbank_store::{ExpectedVersion, RecordedEvent, wait_beyond};
use tokio::sync::watch;

use crate::command::{load, to_new_events};
use crate::{App, AppError};

/// The dispatcher's checkpoint name.
pub const CHECKPOINT: &str = "dispatch";
const BATCH: usize = 500;
/// Messages in flight at once (each mostly waits on its carrier).
const CONCURRENCY: usize = 64;
const POLL: Duration = Duration::from_secs(1);
const ATTEMPTS: usize = 8;

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
    let parsed = RecipientEvent::from_parts(&event.event_type, &event.data).map_err(|err| {
        textbank_store::StoreError::Corrupt(format!("position {}: {err}", event.position))
    })?;
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

/// Follows the log until `stop` turns true.
pub(crate) async fn run(app: App, mut stop: watch::Receiver<bool>) {
    let limiter = SendRateLimiter::new(app.send_settings().sender_rate_per_second, 1);
    while !*stop.borrow() {
        match step(&app, &limiter).await {
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(err) => {
                tracing::error!(error = %err, "dispatch failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
        }
        let position = checkpoint(&app).await.unwrap_or(0);
        tokio::select! {
            _ = wait_beyond(app.events(), position, POLL) => {}
            _ = stop.changed() => {}
        }
    }
}

async fn checkpoint(app: &App) -> Result<u64, AppError> {
    let mut tx = app.events().begin().await?;
    let position = tx.load_checkpoint(CHECKPOINT).await?.unwrap_or(0);
    tx.rollback().await?;
    Ok(position)
}

/// Dispatches the messages of the next batch of events; `None` when the log
/// has nothing new.
pub(crate) async fn step(app: &App, limiter: &SendRateLimiter) -> Result<Option<u64>, AppError> {
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
        .map(|job| dispatch_one(app, limiter, job))
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

/// Appends `event` if the stream is still at `version`; false on a conflict.
async fn append_at(
    app: &App,
    job: &Job,
    version: Option<u64>,
    event: RecipientEvent,
) -> Result<bool, AppError> {
    let events = to_new_events(&[event], &metadata(job.org))?;
    match app
        .events()
        .append(&job.stream, ExpectedVersion::after(version), events)
        .await
    {
        Ok(_) => Ok(true),
        Err(err) if err.is_conflict() => Ok(false),
        Err(err) => Err(err.into()),
    }
}

async fn dispatch_one(app: &App, limiter: &SendRateLimiter, job: Job) -> Result<(), AppError> {
    let max_attempts = app.send_settings().max_submit_attempts.max(1);
    for _ in 0..ATTEMPTS * max_attempts as usize {
        let loaded = load(app.events(), &job.stream, recipient::evolve).await?;
        let attempt = match recipient::decide_dispatch(&loaded.state, job.message_id, max_attempts)
        {
            DispatchDecision::Done => return Ok(()),
            DispatchDecision::Cancel => {
                let event = RecipientEvent::MessageCancelled {
                    message_id: job.message_id,
                    reason: "the number opted out before the message was handed to the carrier"
                        .into(),
                };
                if append_at(app, &job, loaded.version, event).await? {
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
                if append_at(app, &job, loaded.version, event).await? {
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
                code: "no_carrier".into(),
                error: "the organization has no carrier configured (PUT /v1/carrier)".into(),
                retryable: false,
            };
            if append_at(app, &job, loaded.version, event).await? {
                return Ok(());
            }
            continue;
        };
        let from = if carrier.carrier_picks_number {
            None
        } else {
            carrier.sender_for(&job.phone, loaded.state.sender.as_deref())
        };
        let body = loaded
            .state
            .outbound
            .get(&job.message_id)
            .map(|message| message.body.clone())
            .unwrap_or_default();
        limiter
            .acquire(from.as_deref().unwrap_or(&carrier.org_id.to_string()))
            .await;
        let started = RecipientEvent::MessageDispatchStarted {
            message_id: job.message_id,
            attempt,
            carrier: carrier.kind.clone(),
            from: from.clone(),
        };
        if !append_at(app, &job, loaded.version, started).await? {
            // The stream moved (a reply, an opt-out): decide again.
            continue;
        }
        let outcome = carrier
            .adapter
            .submit(&OutboundMessage {
                message_id: *job.message_id.as_uuid(),
                from: from.clone().unwrap_or_default(),
                to: job.phone.clone(),
                body,
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
        let events = to_new_events(&[event], &metadata(job.org))?;
        app.events()
            .append(&job.stream, ExpectedVersion::Any, events)
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
