//! One batch folded in memory, event by event in log order: the
//! conversations it touches (loaded beforehand, or opened by it) and the
//! counter deltas it adds up to. No I/O; `write` stores the result.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use textbank_domain::message::{
    BlockReason, BlockedAttempt, ClickRecord, DeliveryStatus, MessageKind,
};
use textbank_domain::recipient::RecipientEvent;
use uuid::Uuid;

/// How a hold's reason is kept among the refused attempts' reasons.
pub(crate) const HELD_PREFIX: &str = "held:";

/// The error code of a failure report that carried none.
pub(super) const UNKNOWN_CODE: &str = "unknown";

/// The counters kept per campaign, per texter and per hour (see the
/// module's definitions; `timed_clicks` is what the median of
/// display-to-click times is found from).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Counts {
    pub assigned: i64,
    pub messaged: i64,
    pub replies_sent: i64,
    pub delivered: i64,
    pub failed: i64,
    pub replied: i64,
    pub replies_received: i64,
    pub opted_out: i64,
    pub blocked: i64,
    pub timed_clicks: i64,
}

/// The counter columns, in the order of [`Counts::values`].
pub(super) const COUNTERS: [&str; 10] = [
    "assigned",
    "messaged",
    "replies_sent",
    "delivered",
    "failed",
    "replied",
    "replies_received",
    "opted_out",
    "blocked",
    "timed_clicks",
];

impl Counts {
    pub(super) fn values(&self) -> [i64; 10] {
        [
            self.assigned,
            self.messaged,
            self.replies_sent,
            self.delivered,
            self.failed,
            self.replied,
            self.replies_received,
            self.opted_out,
            self.blocked,
            self.timed_clicks,
        ]
    }

    pub(super) fn is_zero(&self) -> bool {
        self.values().iter().all(|&value| value == 0)
    }

    pub(super) fn add(&mut self, other: &Counts) {
        self.assigned += other.assigned;
        self.messaged += other.messaged;
        self.replies_sent += other.replies_sent;
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.replied += other.replied;
        self.replies_received += other.replies_received;
        self.opted_out += other.opted_out;
        self.blocked += other.blocked;
        self.timed_clicks += other.timed_clicks;
    }
}

/// The start of the UTC hour holding `at`, in seconds since the epoch.
pub(super) fn hour_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(3_600) * 3_600
}

/// A conversation as this read model keeps it (one row per initial message).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(super) struct Conversation {
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub campaign_id: Uuid,
    pub texter_id: Uuid,
    pub started_us: i64,
    pub display_ms: Option<i64>,
    pub final_status: Option<String>,
    pub error_code: Option<String>,
    pub submit_failure: Option<String>,
    pub outcome_hour: Option<i64>,
    pub first_reply_ms: Option<i64>,
    pub opted_out: bool,
}

/// Where an initial message ended up, as far as the figures go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Delivered,
    Failed(String),
}

impl Conversation {
    fn outcome(&self) -> Option<Outcome> {
        match self.final_status.as_deref() {
            Some("delivered") => Some(Outcome::Delivered),
            Some(_) => Some(Outcome::Failed(
                self.error_code
                    .clone()
                    .unwrap_or_else(|| UNKNOWN_CODE.to_owned()),
            )),
            None => self.submit_failure.clone().map(Outcome::Failed),
        }
    }
}

/// A final delivery report that came before its message's submission.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(super) struct EarlyReport {
    pub carrier_message_id: String,
    pub org_id: Uuid,
    pub status: String,
    pub error_code: Option<String>,
    pub recorded_hour: i64,
}

/// Whether an early report is in the table, and what this batch did to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EarlyState {
    Stored,
    New,
    /// Applied to its message: deleted if stored, never written if new.
    Applied {
        stored: bool,
    },
}

/// The counters of a campaign, with what its row needs if this batch
/// creates it.
#[derive(Debug, Clone, Copy)]
pub(super) struct CampaignDelta {
    pub org: Uuid,
    pub first_at: DateTime<Utc>,
    pub counts: Counts,
}

#[derive(Debug, Default)]
pub(super) struct Fold {
    conversations: HashMap<Uuid, Conversation>,
    /// Conversation id → its initial message id.
    by_conversation: HashMap<Uuid, Uuid>,
    /// Rows to write (new or changed), by message id.
    pub changed: HashSet<Uuid>,
    pub campaigns: HashMap<Uuid, CampaignDelta>,
    pub texters: HashMap<(Uuid, Uuid), Counts>,
    pub hours: HashMap<(Uuid, i64), Counts>,
    pub failures: HashMap<(Uuid, String), i64>,
    /// Refused attempts by reason code, and contacts the queue held back by
    /// [`HELD_PREFIX`] and reason code (one table serves both).
    pub blocked: HashMap<(Uuid, String), i64>,
    pub answers: HashMap<(Uuid, String, String), i64>,
    /// Initial messages per (campaign, texter, whole second of display-to-click).
    pub display_seconds: HashMap<(Uuid, Uuid, i64), i64>,
    /// Current answers: (conversation, question) → (campaign, answer).
    survey: HashMap<(Uuid, String), (Uuid, String)>,
    pub survey_changed: HashSet<(Uuid, String)>,
    pub early: HashMap<String, (EarlyReport, EarlyState)>,
}

impl Fold {
    pub fn load_conversation(&mut self, row: Conversation) {
        self.by_conversation
            .insert(row.conversation_id, row.message_id);
        self.conversations.insert(row.message_id, row);
    }

    pub fn load_answer(&mut self, (conversation, question, campaign, answer): SurveyRow) {
        self.survey
            .insert((conversation, question), (campaign, answer));
    }

    pub fn load_early(&mut self, report: EarlyReport) {
        self.early.insert(
            report.carrier_message_id.clone(),
            (report, EarlyState::Stored),
        );
    }

    pub fn conversation(&self, message_id: &Uuid) -> Option<&Conversation> {
        self.conversations.get(message_id)
    }

    pub fn answer(&self, key: &(Uuid, String)) -> Option<&(Uuid, String)> {
        self.survey.get(key)
    }

    /// Adds to the counters of a campaign, of one of its texters and (when
    /// given) of an hour.
    fn bump(
        &mut self,
        org: Uuid,
        at: DateTime<Utc>,
        (campaign, texter): (Uuid, Uuid),
        hour: Option<i64>,
        change: impl Fn(&mut Counts),
    ) {
        let delta = self.campaigns.entry(campaign).or_insert(CampaignDelta {
            org,
            first_at: at,
            counts: Counts::default(),
        });
        delta.first_at = delta.first_at.min(at);
        change(&mut delta.counts);
        change(self.texters.entry((campaign, texter)).or_default());
        if let Some(hour) = hour {
            change(self.hours.entry((campaign, hour)).or_default());
        }
    }

    /// Phones assigned to (positive) or released from (negative) a texter.
    pub fn assignment(
        &mut self,
        org: Uuid,
        at: DateTime<Utc>,
        campaign: Uuid,
        texter: Uuid,
        phones: i64,
    ) {
        self.bump(org, at, (campaign, texter), None, |c| c.assigned += phones);
    }

    pub fn apply(&mut self, org: Uuid, at: DateTime<Utc>, event: &RecipientEvent) {
        match event {
            RecipientEvent::MessageSendClicked(click) => self.click(org, at, click),
            RecipientEvent::SendBlocked(attempt) => self.blocked_attempt(org, at, attempt),
            RecipientEvent::ContactHeld {
                campaign_id,
                reason,
                ..
            } => self.held((*campaign_id).into(), *reason),
            RecipientEvent::MessageDispatchStarted {
                message_id,
                attempt,
                ..
            } if *attempt > 1 => {
                // A new attempt: an earlier refusal is no longer the outcome.
                self.settle(org, at, hour_of(at), (*message_id).into(), |row| {
                    row.submit_failure = None
                });
            }
            RecipientEvent::MessageSubmitFailed {
                message_id, code, ..
            } => {
                self.settle(org, at, hour_of(at), (*message_id).into(), |row| {
                    row.submit_failure = Some(code.clone())
                });
            }
            RecipientEvent::MessageSubmitted {
                message_id,
                carrier_message_id,
                ..
            } => self.submitted(org, at, (*message_id).into(), carrier_message_id),
            RecipientEvent::DeliveryReported {
                carrier_message_id,
                message_id,
                status,
                error_code,
                ..
            } if status.is_final() => match message_id {
                Some(message) => {
                    self.settle(org, at, hour_of(at), (*message).into(), |row| {
                        finish(row, *status, error_code.as_deref())
                    });
                }
                None => {
                    // The first final report stands, as for a known message.
                    self.early
                        .entry(carrier_message_id.clone())
                        .or_insert_with(|| {
                            (
                                EarlyReport {
                                    carrier_message_id: carrier_message_id.clone(),
                                    org_id: org,
                                    status: status.as_str().to_owned(),
                                    error_code: error_code.clone(),
                                    recorded_hour: hour_of(at),
                                },
                                EarlyState::New,
                            )
                        });
                }
            },
            RecipientEvent::ReplyReceived {
                conversation: Some(conversation),
                ..
            } => self.reply(org, at, conversation.conversation_id.into()),
            RecipientEvent::OptOutRecorded {
                conversation: Some(conversation),
                ..
            } => self.opt_out(org, at, conversation.conversation_id.into()),
            RecipientEvent::SurveyAnswerRecorded {
                conversation,
                question_id,
                answer,
                ..
            } => self.survey_answer(conversation.conversation_id.into(), question_id, answer),
            _ => {}
        }
    }

    fn click(&mut self, org: Uuid, at: DateTime<Utc>, click: &ClickRecord) {
        let (campaign, texter) = (click.campaign_id.into(), click.evidence.texter_id.into());
        let hour = Some(hour_of(at));
        match click.evidence.kind {
            MessageKind::Reply => {
                self.bump(org, at, (campaign, texter), hour, |c| c.replies_sent += 1)
            }
            MessageKind::Initial => {
                let message_id: Uuid = click.message_id.into();
                let conversation_id: Uuid = click.conversation_id.into();
                // Each click is applied once; a second initial click for one
                // conversation cannot be recorded (the aggregate refuses it).
                if self.conversations.contains_key(&message_id)
                    || self.by_conversation.contains_key(&conversation_id)
                {
                    return;
                }
                let display_ms = click.evidence.display_to_click_ms();
                self.load_conversation(Conversation {
                    message_id,
                    conversation_id,
                    campaign_id: campaign,
                    texter_id: texter,
                    started_us: at.timestamp_micros(),
                    display_ms,
                    final_status: None,
                    error_code: None,
                    submit_failure: None,
                    outcome_hour: None,
                    first_reply_ms: None,
                    opted_out: false,
                });
                self.changed.insert(message_id);
                if let Some(ms) = display_ms {
                    *self
                        .display_seconds
                        .entry((campaign, texter, ms.div_euclid(1_000)))
                        .or_default() += 1;
                }
                let timed = i64::from(display_ms.is_some());
                self.bump(org, at, (campaign, texter), hour, |c| {
                    c.messaged += 1;
                    c.timed_clicks += timed;
                });
            }
        }
    }

    fn blocked_attempt(&mut self, org: Uuid, at: DateTime<Utc>, attempt: &BlockedAttempt) {
        let Some(campaign) = attempt.campaign_id.map(Uuid::from) else {
            return;
        };
        let texter = attempt.evidence.texter_id.into();
        self.bump(org, at, (campaign, texter), Some(hour_of(at)), |c| {
            c.blocked += 1
        });
        *self
            .blocked
            .entry((campaign, attempt.reason.code().to_owned()))
            .or_default() += 1;
    }

    /// A contact the queue held back: counted by reason, apart from the
    /// refused attempts (nobody clicked).
    fn held(&mut self, campaign: Uuid, reason: BlockReason) {
        *self
            .blocked
            .entry((campaign, format!("{HELD_PREFIX}{}", reason.code())))
            .or_default() += 1;
    }

    /// A submission: a final report that came before it applies now, at the
    /// hour it was recorded.
    fn submitted(&mut self, org: Uuid, at: DateTime<Utc>, message_id: Uuid, carrier: &str) {
        let Some((report, state)) = self.early.get(carrier).cloned() else {
            return;
        };
        if report.org_id != org || !self.conversations.contains_key(&message_id) {
            return;
        }
        let stored = match state {
            EarlyState::Stored => true,
            EarlyState::New => false,
            EarlyState::Applied { .. } => return,
        };
        if let Some(entry) = self.early.get_mut(carrier) {
            entry.1 = EarlyState::Applied { stored };
        }
        let status = match report.status.as_str() {
            "delivered" => DeliveryStatus::Delivered,
            "undelivered" => DeliveryStatus::Undelivered,
            _ => DeliveryStatus::Failed,
        };
        self.settle(org, at, report.recorded_hour, message_id, |row| {
            finish(row, status, report.error_code.as_deref())
        });
    }

    /// Changes a message's row and moves its outcome's counts: out of the
    /// hour it was counted in, into `hour`.
    fn settle(
        &mut self,
        org: Uuid,
        at: DateTime<Utc>,
        hour: i64,
        message_id: Uuid,
        change: impl FnOnce(&mut Conversation),
    ) {
        let Some(row) = self.conversations.get_mut(&message_id) else {
            return;
        };
        let before = row.outcome();
        let old_hour = row.outcome_hour;
        change(row);
        let after = row.outcome();
        if before != after {
            row.outcome_hour = after.as_ref().map(|_| hour);
        }
        let key = (row.campaign_id, row.texter_id);
        self.changed.insert(message_id);
        if before == after {
            return;
        }
        if let Some(outcome) = before {
            self.count_outcome(org, at, key, old_hour, &outcome, -1);
        }
        if let Some(outcome) = after {
            self.count_outcome(org, at, key, Some(hour), &outcome, 1);
        }
    }

    fn count_outcome(
        &mut self,
        org: Uuid,
        at: DateTime<Utc>,
        key: (Uuid, Uuid),
        hour: Option<i64>,
        outcome: &Outcome,
        by: i64,
    ) {
        match outcome {
            Outcome::Delivered => self.bump(org, at, key, hour, |c| c.delivered += by),
            Outcome::Failed(code) => {
                self.bump(org, at, key, hour, |c| c.failed += by);
                *self.failures.entry((key.0, code.clone())).or_default() += by;
            }
        }
    }

    fn reply(&mut self, org: Uuid, at: DateTime<Utc>, conversation: Uuid) {
        let Some(row) = self.row_of(conversation) else {
            return;
        };
        let (key, message_id) = ((row.campaign_id, row.texter_id), row.message_id);
        let first = row.first_reply_ms.is_none();
        if first {
            row.first_reply_ms = Some((at.timestamp_micros() - row.started_us) / 1_000);
            self.changed.insert(message_id);
        }
        self.bump(org, at, key, Some(hour_of(at)), |c| {
            c.replies_received += 1;
            c.replied += i64::from(first);
        });
    }

    fn opt_out(&mut self, org: Uuid, at: DateTime<Utc>, conversation: Uuid) {
        let Some(row) = self.row_of(conversation) else {
            return;
        };
        if row.opted_out {
            return;
        }
        row.opted_out = true;
        let (key, message_id) = ((row.campaign_id, row.texter_id), row.message_id);
        self.changed.insert(message_id);
        self.bump(org, at, key, Some(hour_of(at)), |c| c.opted_out += 1);
    }

    fn survey_answer(&mut self, conversation: Uuid, question: &str, answer: &str) {
        let Some(campaign) = self.row_of(conversation).map(|row| row.campaign_id) else {
            return;
        };
        let key = (conversation, question.to_owned());
        let previous = self.survey.get(&key).map(|(_, previous)| previous.clone());
        if previous.as_deref() == Some(answer) {
            return;
        }
        if let Some(previous) = previous {
            *self
                .answers
                .entry((campaign, question.to_owned(), previous))
                .or_default() -= 1;
        }
        *self
            .answers
            .entry((campaign, question.to_owned(), answer.to_owned()))
            .or_default() += 1;
        self.survey
            .insert(key.clone(), (campaign, answer.to_owned()));
        self.survey_changed.insert(key);
    }

    fn row_of(&mut self, conversation: Uuid) -> Option<&mut Conversation> {
        let message_id = self.by_conversation.get(&conversation)?;
        self.conversations.get_mut(message_id)
    }
}

/// (conversation, question, campaign, answer)
pub(super) type SurveyRow = (Uuid, String, Uuid, String);

/// Records a final status unless the message already has one: a final
/// status never changes.
fn finish(row: &mut Conversation, status: DeliveryStatus, error_code: Option<&str>) {
    if row.final_status.is_none() {
        row.final_status = Some(status.as_str().to_owned());
        row.error_code = error_code.map(str::to_owned);
    }
}
