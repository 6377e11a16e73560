//! One batch of events folded into the rows it writes: one entry per message
//! touched (created here or by an earlier batch), one per unmatched delivery
//! report, one per refused attempt. Fields borrow from the batch's events.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use textbank_domain::DomainEvent;
use textbank_domain::message::{
    AutoReplyKind, BlockedAttempt, DeliveryStatus, HoursEvidence, MessageKind, body_hash,
};
use textbank_domain::recipient::{ConversationRef, RecipientEvent};
use textbank_domain::texter::TexterEvent;
use textbank_domain::timezone::ZoneSource;
use textbank_store::RecordedEvent;
use uuid::Uuid;

use crate::batch::Batch;
use crate::runner::ProjectionError;

/// The recipient-stream events this read model reads; the rest are skipped
/// before anything is decoded.
const RECIPIENT_TYPES: [&str; 10] = [
    "MessageSendClicked",
    "AutoReplyQueued",
    "MessageDispatchStarted",
    "MessageSubmitted",
    "MessageSubmitFailed",
    "MessageSubmitUnknown",
    "MessageCancelled",
    "DeliveryReported",
    "ReplyReceived",
    "SendBlocked",
];

/// A delivery status as an ordered number: the order of `DeliveryStatus`,
/// whose last three (delivered, undelivered, failed) are final.
pub fn delivery_rank(status: DeliveryStatus) -> i64 {
    match status {
        DeliveryStatus::Queued => 0,
        DeliveryStatus::Sending => 1,
        DeliveryStatus::Sent => 2,
        DeliveryStatus::Delivered => 3,
        DeliveryStatus::Undelivered => 4,
        DeliveryStatus::Failed => 5,
    }
}

/// The status a rank stands for.
pub fn delivery_status(rank: i64) -> Option<DeliveryStatus> {
    Some(match rank {
        0 => DeliveryStatus::Queued,
        1 => DeliveryStatus::Sending,
        2 => DeliveryStatus::Sent,
        3 => DeliveryStatus::Delivered,
        4 => DeliveryStatus::Undelivered,
        5 => DeliveryStatus::Failed,
        _ => return None,
    })
}

/// Folds a report into a status so far, as the recipient stream does: a
/// final status never changes, otherwise only a later status replaces it.
fn fold_report<'a>(current: &mut Option<(i64, Option<&'a str>)>, rank: i64, code: Option<&'a str>) {
    match current {
        Some((now, _)) if *now >= 3 || rank <= *now => {}
        _ => *current = Some((rank, code)),
    }
}

pub fn kind_code(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Initial => "initial",
        MessageKind::Reply => "reply",
    }
}

fn auto_reply_code(kind: AutoReplyKind) -> &'static str {
    match kind {
        AutoReplyKind::OptOutConfirmation => "opt_out_confirmation",
        AutoReplyKind::OptInConfirmation => "opt_in_confirmation",
        AutoReplyKind::Help => "help",
    }
}

pub fn zone_source_code(source: ZoneSource) -> &'static str {
    match source {
        ZoneSource::Zip => "zip",
        ZoneSource::AreaCode => "area_code",
        ZoneSource::Unknown => "unknown",
    }
}

/// The texting-hours check as stored.
pub struct Hours<'a> {
    pub allowed: bool,
    pub local_time: Option<String>,
    pub time_zone: Option<&'static str>,
    pub zone_source: &'static str,
    pub window: &'a str,
}

impl<'a> Hours<'a> {
    pub fn of(evidence: &'a HoursEvidence) -> Self {
        Self {
            allowed: evidence.allowed,
            local_time: evidence
                .local_time
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, false)),
            time_zone: evidence.zone.map(|zone| zone.name()),
            zone_source: zone_source_code(evidence.zone_source),
            window: &evidence.window,
        }
    }
}

/// What the event that created a message says about it.
pub struct Origin<'a> {
    pub direction: &'static str,
    pub kind: &'static str,
    pub automated: Option<bool>,
    pub texter: Option<Uuid>,
    pub campaign: Option<Uuid>,
    pub conversation: Option<Uuid>,
    pub list: Option<Uuid>,
    pub key: Option<Uuid>,
    pub body_sha256: String,
    pub segments: Option<i64>,
    pub script_version: Option<i64>,
    pub token: Option<Uuid>,
    pub presented_at: Option<DateTime<Utc>>,
    pub clicked_at: Option<DateTime<Utc>>,
    pub received_at: Option<DateTime<Utc>>,
    pub display_to_click_ms: Option<i64>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub checked_events: Option<i64>,
    pub opted_out: Option<bool>,
    pub hours: Option<Hours<'a>>,
    pub keyword: Option<&'static str>,
    pub in_reply_to: Option<&'a str>,
}

impl<'a> Origin<'a> {
    fn bare(direction: &'static str, kind: &'static str, body_sha256: String) -> Self {
        Self {
            direction,
            kind,
            automated: None,
            texter: None,
            campaign: None,
            conversation: None,
            list: None,
            key: None,
            body_sha256,
            segments: None,
            script_version: None,
            token: None,
            presented_at: None,
            clicked_at: None,
            received_at: None,
            display_to_click_ms: None,
            ip: None,
            user_agent: None,
            checked_events: None,
            opted_out: None,
            hours: None,
            keyword: None,
            in_reply_to: None,
        }
    }

    fn in_conversation(mut self, conversation: Option<&ConversationRef>) -> Self {
        if let Some(conversation) = conversation {
            self.campaign = Some(conversation.campaign_id.into());
            self.conversation = Some(conversation.conversation_id.into());
        }
        self
    }
}

/// One message's row as this batch changes it.
pub struct MessageUpsert<'a> {
    pub message_id: Uuid,
    pub org: Uuid,
    pub phone: &'a str,
    /// The first event of the message in this batch (kept only on insert).
    pub position: i64,
    pub occurred_at: DateTime<Utc>,
    pub positions: String,
    /// Set when the creating event is in this batch.
    pub origin: Option<Origin<'a>>,
    pub carrier: Option<&'a str>,
    pub carrier_message_id: Option<&'a str>,
    pub our_number: Option<&'a str>,
    pub dispatch_status: Option<&'static str>,
    pub attempts: Option<i64>,
    pub submit_error_code: Option<&'a str>,
    pub submit_error: Option<&'a str>,
    pub delivery: Option<(i64, Option<&'a str>)>,
}

/// A delivery report for a carrier id the stream did not know yet.
pub struct UnmatchedUpsert<'a> {
    pub org: Uuid,
    pub carrier_message_id: &'a str,
    pub phone: &'a str,
    pub carrier: &'a str,
    pub rank: i64,
    pub error_code: Option<&'a str>,
    pub positions: String,
}

pub struct BlockedInsert<'a> {
    pub org: Uuid,
    pub position: i64,
    pub occurred_at: DateTime<Utc>,
    /// Borrowed from the batch's shared decode (recipient streams) or
    /// decoded here (texter streams).
    pub attempt: Cow<'a, BlockedAttempt>,
}

#[derive(Default)]
pub struct Fold<'a> {
    pub messages: HashMap<Uuid, MessageUpsert<'a>>,
    pub unmatched: HashMap<(Uuid, &'a str, &'a str), UnmatchedUpsert<'a>>,
    pub blocked: Vec<BlockedInsert<'a>>,
}

fn position(event: &RecordedEvent) -> i64 {
    i64::try_from(event.position).unwrap_or(i64::MAX)
}

fn push_position(positions: &mut String, event: &RecordedEvent) {
    if !positions.is_empty() {
        positions.push(',');
    }
    positions.push_str(&event.position.to_string());
}

/// The phone of a `recipient-{org}-{e164}` stream.
fn stream_phone(event: &RecordedEvent) -> &str {
    let stream = event.stream_id.as_str();
    // "recipient-" + a 36-character uuid + "-".
    stream.get("recipient-".len() + 37..).unwrap_or_default()
}

impl<'a> Fold<'a> {
    pub fn of_batch(projector: &'static str, batch: Batch<'a>) -> Result<Self, ProjectionError> {
        let mut fold = Fold::default();
        let wanted = batch.events().iter().any(|event| {
            RECIPIENT_TYPES.contains(&event.event_type.as_str())
                && event.stream_id.as_str().starts_with("recipient-")
        });
        if wanted {
            for item in batch.recipient_events(projector) {
                let (event, parsed) = item?;
                let Some(org) = event.metadata.org_id else {
                    continue;
                };
                fold.recipient(event, Uuid::from(org), parsed);
            }
        }
        for event in batch.events() {
            if event.event_type != "SendBlocked" || !event.stream_id.as_str().starts_with("texter-")
            {
                continue;
            }
            let Some(org) = event.metadata.org_id else {
                continue;
            };
            let parsed =
                TexterEvent::from_parts(&event.event_type, &event.data).map_err(|err| {
                    ProjectionError::Apply {
                        projector,
                        position: event.position,
                        reason: err.to_string(),
                    }
                })?;
            if let Some(TexterEvent::SendBlocked(attempt)) = parsed {
                fold.blocked(event, Uuid::from(org), Cow::Owned(*attempt));
            }
        }
        Ok(fold)
    }

    /// The message's entry, created on its first event in this batch.
    fn message(
        &mut self,
        event: &'a RecordedEvent,
        org: Uuid,
        message_id: Uuid,
    ) -> &mut MessageUpsert<'a> {
        let entry = self
            .messages
            .entry(message_id)
            .or_insert_with(|| MessageUpsert {
                message_id,
                org,
                phone: stream_phone(event),
                position: position(event),
                occurred_at: event.recorded_at,
                positions: String::new(),
                origin: None,
                carrier: None,
                carrier_message_id: None,
                our_number: None,
                dispatch_status: None,
                attempts: None,
                submit_error_code: None,
                submit_error: None,
                delivery: None,
            });
        push_position(&mut entry.positions, event);
        entry
    }

    fn recipient(&mut self, event: &'a RecordedEvent, org: Uuid, parsed: &'a RecipientEvent) {
        match parsed {
            RecipientEvent::MessageSendClicked(click) => {
                let row = self.message(event, org, click.message_id.into());
                row.origin = Some(Origin {
                    automated: Some(false),
                    texter: Some(click.evidence.texter_id.into()),
                    campaign: Some(click.campaign_id.into()),
                    conversation: Some(click.conversation_id.into()),
                    list: click.list_id.map(Uuid::from),
                    key: Some(click.evidence.key_id.into()),
                    segments: Some(i64::from(click.segments)),
                    script_version: click.script_version.map(i64::from),
                    token: click.evidence.token_id,
                    presented_at: click.evidence.presented_at,
                    clicked_at: click.evidence.clicked_at,
                    received_at: Some(click.evidence.received_at),
                    display_to_click_ms: click.evidence.display_to_click_ms(),
                    ip: click.evidence.ip.as_deref(),
                    user_agent: click.evidence.user_agent.as_deref(),
                    // The click was decided on the recipient stream (at
                    // `checked_recipient_version`, none for a new stream)
                    // and appended right after what it read, and the
                    // decision refuses any click to an opted-out number:
                    // its very existence says "not opted out" after that
                    // many events.
                    checked_events: Some(
                        click
                            .checked_recipient_version
                            .map_or(0, |v| i64::try_from(v).unwrap_or(i64::MAX - 1) + 1),
                    ),
                    opted_out: Some(false),
                    hours: Some(Hours::of(&click.hours)),
                    ..Origin::bare(
                        "outbound",
                        kind_code(click.evidence.kind),
                        click.body_sha256.clone(),
                    )
                });
            }
            RecipientEvent::AutoReplyQueued {
                message_id,
                kind,
                body,
                in_reply_to,
                conversation,
                ..
            } => {
                let row = self.message(event, org, (*message_id).into());
                row.origin = Some(Origin {
                    automated: Some(true),
                    // A confirmation goes to a number that just opted out
                    // (or back in); HELP answers whoever asks.
                    opted_out: match kind {
                        AutoReplyKind::OptOutConfirmation => Some(true),
                        AutoReplyKind::OptInConfirmation => Some(false),
                        AutoReplyKind::Help => None,
                    },
                    in_reply_to: in_reply_to.as_deref(),
                    ..Origin::bare("outbound", auto_reply_code(*kind), body_hash(body))
                        .in_conversation(conversation.as_ref())
                });
            }
            RecipientEvent::ReplyReceived {
                message_id,
                carrier,
                carrier_message_id,
                to,
                body,
                conversation,
                keyword,
                ..
            } => {
                let row = self.message(event, org, (*message_id).into());
                row.carrier = Some(carrier);
                row.carrier_message_id = Some(carrier_message_id);
                row.our_number = Some(to);
                row.origin = Some(Origin {
                    texter: conversation.map(|c| c.texter_id.into()),
                    received_at: Some(event.recorded_at),
                    keyword: keyword.map(|k| k.as_str()),
                    ..Origin::bare("inbound", "inbound", body_hash(body))
                        .in_conversation(conversation.as_ref())
                });
            }
            RecipientEvent::MessageDispatchStarted {
                message_id,
                attempt,
                carrier,
                from,
                ..
            } => {
                let row = self.message(event, org, (*message_id).into());
                row.dispatch_status = Some("started");
                row.attempts = Some(i64::from(*attempt));
                row.carrier = Some(carrier);
                if let Some(from) = from {
                    row.our_number = Some(from);
                }
            }
            RecipientEvent::MessageSubmitted {
                message_id,
                attempt,
                carrier,
                carrier_message_id,
                from,
            } => {
                let row = self.message(event, org, (*message_id).into());
                row.dispatch_status = Some("submitted");
                row.attempts = Some(i64::from(*attempt));
                row.carrier = Some(carrier);
                row.carrier_message_id = Some(carrier_message_id);
                if let Some(from) = from {
                    row.our_number = Some(from);
                }
            }
            RecipientEvent::MessageSubmitFailed {
                message_id,
                attempt,
                carrier,
                code,
                error,
                ..
            } => {
                let row = self.message(event, org, (*message_id).into());
                row.dispatch_status = Some("failed");
                row.attempts = Some(i64::from(*attempt));
                row.carrier = Some(carrier);
                row.submit_error_code = Some(code);
                row.submit_error = Some(error);
            }
            RecipientEvent::MessageSubmitUnknown {
                message_id,
                attempt,
                reason,
            } => {
                let row = self.message(event, org, (*message_id).into());
                row.dispatch_status = Some("unknown");
                row.attempts = Some(i64::from(*attempt));
                row.submit_error = Some(reason);
            }
            RecipientEvent::MessageCancelled { message_id, reason } => {
                let row = self.message(event, org, (*message_id).into());
                row.dispatch_status = Some("cancelled");
                row.submit_error = Some(reason);
            }
            RecipientEvent::DeliveryReported {
                carrier,
                carrier_message_id,
                message_id,
                status,
                error_code,
            } => {
                let rank = delivery_rank(*status);
                let code = error_code.as_deref();
                match message_id {
                    Some(message_id) => {
                        let row = self.message(event, org, (*message_id).into());
                        fold_report(&mut row.delivery, rank, code);
                    }
                    None => {
                        let phone = stream_phone(event);
                        let entry = self
                            .unmatched
                            .entry((org, carrier_message_id.as_str(), phone))
                            .or_insert_with(|| UnmatchedUpsert {
                                org,
                                carrier_message_id,
                                phone,
                                carrier,
                                rank,
                                error_code: code,
                                positions: String::new(),
                            });
                        push_position(&mut entry.positions, event);
                        let mut folded = Some((entry.rank, entry.error_code));
                        fold_report(&mut folded, rank, code);
                        if let Some((rank, code)) = folded {
                            entry.rank = rank;
                            entry.error_code = code;
                        }
                    }
                }
            }
            RecipientEvent::SendBlocked(attempt) => {
                self.blocked(event, org, Cow::Borrowed(attempt));
            }
            RecipientEvent::OptOutRecorded { .. }
            | RecipientEvent::OptInRecorded { .. }
            | RecipientEvent::SurveyAnswerRecorded { .. }
            | RecipientEvent::ContactHeld { .. }
            | RecipientEvent::TagApplied { .. }
            | RecipientEvent::TagRemoved { .. }
            | RecipientEvent::ConversationEscalated { .. }
            | RecipientEvent::EscalationResolved { .. }
            | RecipientEvent::ConversationReassigned { .. }
            | RecipientEvent::ConversationReleased { .. } => {}
        }
    }

    fn blocked(&mut self, event: &RecordedEvent, org: Uuid, attempt: Cow<'a, BlockedAttempt>) {
        self.blocked.push(BlockedInsert {
            org,
            position: position(event),
            occurred_at: event.recorded_at,
            attempt,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_follow_the_delivery_status_order() {
        let all = [
            DeliveryStatus::Queued,
            DeliveryStatus::Sending,
            DeliveryStatus::Sent,
            DeliveryStatus::Delivered,
            DeliveryStatus::Undelivered,
            DeliveryStatus::Failed,
        ];
        for pair in all.windows(2) {
            assert!(delivery_rank(pair[0]) < delivery_rank(pair[1]));
        }
        for status in all {
            assert_eq!(delivery_status(delivery_rank(status)), Some(status));
            // Ranks 3 and up are exactly the final statuses (the SQL relies on it).
            assert_eq!(delivery_rank(status) >= 3, status.is_final());
        }
    }

    #[test]
    fn folded_reports_behave_like_the_recipient_stream() {
        use DeliveryStatus::*;
        let cases: [(&[DeliveryStatus], DeliveryStatus); 4] = [
            (&[Queued, Sent, Delivered], Delivered),
            (&[Delivered, Sent], Delivered),
            (&[Sent, Queued], Sent),
            (&[Delivered, Failed], Delivered),
        ];
        for (reports, expected) in cases {
            let mut folded = None;
            let mut stream: Option<DeliveryStatus> = None;
            for report in reports {
                fold_report(&mut folded, delivery_rank(*report), None);
                match stream {
                    Some(now) if !now.may_become(*report) => {}
                    _ => stream = Some(*report),
                }
            }
            assert_eq!(folded.map(|(rank, _)| rank), Some(delivery_rank(expected)));
            assert_eq!(stream, Some(expected));
        }
    }
}
