//! Read model "campaign_metrics": a manager's figures per campaign, per
//! texter and per UTC hour, kept as counters that each batch adds to, so a
//! query reads a handful of rows however large the campaign.
//!
//! The figures, exactly (all from the event log; "at" is the event's
//! `recorded_at`, the server's time):
//!
//! - **contacts**: the campaign's contacts — the union of its attached
//!   lists, one per phone (opted-out numbers included). Counted from the
//!   `campaign_contacts` table of the campaigns read model when lists are
//!   attached; see [`CampaignMetrics`] for why that read is safe.
//! - **assigned**: contacts assigned to a texter now: phones of
//!   `ContactsAssigned` minus phones of `ContactsReleased` (the campaign
//!   aggregate assigns only unassigned phones and releases only held ones).
//! - **messaged**: contacts that got the campaign's initial message, i.e.
//!   `MessageSendClicked` events of kind `initial` (one per contact and
//!   campaign, which the recipient aggregate enforces). Per texter: the
//!   texter who clicked.
//! - **replies_sent** ("replies handled"): texter replies clicked in the
//!   campaign's conversations (`MessageSendClicked` of kind `reply`).
//!   **sent** = messaged + replies_sent.
//! - **delivered**: initial messages whose final carrier status is
//!   `delivered`. A final status (delivered, failed, undelivered) is the
//!   first final report for the message and never changes: a late `sent`
//!   or a repeated report changes nothing, and non-final reports count for
//!   nothing. Reports that arrive before the submission (naming only the
//!   carrier's id) apply when the submission is recorded, as in the
//!   recipient aggregate.
//! - **failed**: initial messages whose final status is `failed` or
//!   `undelivered` (by the report's error code, `unknown` when it has none),
//!   or, without a final status, whose latest submission the carrier
//!   refused (`MessageSubmitFailed`, by its code) and that no new attempt
//!   (`MessageDispatchStarted` with attempt > 1) has followed.
//! - **replied**: the campaign's conversations with at least one reply from
//!   the voter (`ReplyReceived` naming the conversation; STOP counts too).
//!   **replies_received**: every such reply.
//! - **opted_out**: the campaign's conversations in which an opt-out was
//!   recorded (a STOP reply or a texter marking it; `OptOutRecorded` naming
//!   the conversation), counted once per conversation; a later opt-in does
//!   not undo it. Imported opt-outs name no conversation and do not count.
//! - **delivery_rate**, **reply_rate**, **opt_out_rate**: delivered, replied
//!   and opted_out divided by messaged (none while messaged is 0).
//! - **blocked**: refused send attempts (`SendBlocked`) naming the campaign,
//!   by reason code; per texter: the texter who clicked.
//! - **held_by_reason**: contacts a texter's queue held back instead of
//!   offering them (`ContactHeld`), by reason; once per contact, campaign
//!   and script version. Kept in the blocked table under `held:`-prefixed
//!   reasons and never counted as blocked attempts (nobody clicked).
//! - **survey answers**: per question and answer, the conversations whose
//!   current answer it is (a later answer to the same question replaces the
//!   earlier one).
//! - **median time to first reply**: over the replied conversations, the
//!   first reply's time minus the initial click's time, in milliseconds.
//! - **median display-to-click** (per texter): over the texter's initial
//!   messages, the click's `received_at` minus its `presented_at`, in
//!   milliseconds.
//!   Medians are exact: the middle value, or for an even count the mean of
//!   the two middle values rounded down.
//! - **timeseries** (per UTC hour or day): `messaged`, `replies_sent`,
//!   `blocked` and `replies_received` when they happened; `delivered` and
//!   `failed` when the message reached that outcome; `replied` and
//!   `opted_out` when the conversation's first reply or opt-out came. So
//!   each column of a campaign's buckets adds up to its total.
//!
//! Replies, opt-outs and answers count only in conversations this read
//! model has seen open (every conversation starts with its initial click).

mod fold;
mod query;
mod write;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use textbank_domain::campaign::CampaignStatus;

use async_trait::async_trait;
use textbank_domain::campaign::CampaignEvent;
use textbank_domain::message::MessageKind;
use textbank_domain::recipient::RecipientEvent;
use textbank_store::{RecordedEvent, StoreTx};
use uuid::Uuid;

use crate::batch::{Batch, Tables};
use crate::runner::{ProjectionError, Projector, aggregate_event};

pub use query::{
    Bucket, BucketCounts, CampaignMetricsView, Headline, TexterMetrics, campaign_metrics, overview,
    texter_failed, texters, timeseries,
};

/// The live tables (the `_next` copies add the suffix).
const TABLES: [&str; 10] = [
    "campaign_metrics_campaigns",
    "campaign_metrics_texters",
    "campaign_metrics_hours",
    "campaign_metrics_failures",
    "campaign_metrics_blocked",
    "campaign_metrics_answers",
    "campaign_metrics_conversations",
    "campaign_metrics_display_seconds",
    "campaign_metrics_survey",
    "campaign_metrics_early_reports",
];

/// The projector.
///
/// One read crosses into another read model: when lists are attached, the
/// campaign's contact count is taken from `campaign_contacts`: counting
/// list contents here would mean copying every contact again, and counting
/// them per query costs about 10 ms for 200,000 contacts on SQLite. It is taken
/// only once the campaigns read model has applied that very event (its
/// `stream_version`), else the batch fails and is retried, as the campaigns
/// projector does with lists. The server applies `campaigns` before this
/// read model in each shared batch, and a rebuild of this one runs against
/// the live, caught-up campaigns tables; lists are only ever added, so a
/// count taken later than its event is the current one.
pub struct CampaignMetrics {
    tables: Tables,
}

impl CampaignMetrics {
    pub fn live() -> Self {
        Self {
            tables: Tables::Live,
        }
    }
}

const NAME: &str = "campaign_metrics";

#[async_trait]
impl Projector for CampaignMetrics {
    fn name(&self) -> &'static str {
        match self.tables {
            Tables::Live => NAME,
            Tables::Next => "campaign_metrics_next",
        }
    }

    fn tables(&self) -> &'static [&'static str] {
        &TABLES
    }

    fn next(&self) -> Option<Arc<dyn Projector>> {
        Some(Arc::new(Self {
            tables: Tables::Next,
        }))
    }

    async fn apply(&self, tx: &mut StoreTx, batch: Batch<'_>) -> Result<(), ProjectionError> {
        let tables = self.tables;
        let mut fold = fold::Fold::default();
        for event in batch.events() {
            self.campaign_event(tx, &mut fold, event).await?;
        }
        let wanted = Wanted::of(batch)?;
        self.load(tx, &mut fold, &wanted).await?;
        for item in batch.recipient_events(NAME) {
            let (event, parsed) = item?;
            let Some(org) = event.metadata.org_id.map(Uuid::from) else {
                continue;
            };
            fold.apply(org, event.recorded_at, parsed);
        }
        write::store(tx, tables, fold).await?;
        Ok(())
    }
}

impl CampaignMetrics {
    /// Applies a campaign-stream event: its lifecycle facts are written at
    /// once (they are few); assignment counts join the batch's counters.
    async fn campaign_event(
        &self,
        tx: &mut StoreTx,
        fold: &mut fold::Fold,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        // Script revisions are the only other campaign events; skip them
        // (and every other stream) before decoding anything.
        if !matches!(
            event.event_type.as_str(),
            "CampaignCreated"
                | "SettingsChanged"
                | "ListsAttached"
                | "CampaignLaunched"
                | "CampaignPaused"
                | "CampaignResumed"
                | "CampaignArchived"
                | "ContactsAssigned"
                | "ContactsReleased"
        ) {
            return Ok(());
        }
        let Some((campaign, Some(parsed))) =
            aggregate_event::<CampaignEvent>(NAME, "campaign-", event)?
        else {
            return Ok(());
        };
        let org = event.metadata.org_id.map(Uuid::from);
        let at = event.recorded_at;
        match parsed {
            CampaignEvent::CampaignCreated { org_id, name, .. } => {
                write::campaign_created(tx, self.tables, campaign, org_id.into(), &name, at).await?
            }
            CampaignEvent::SettingsChanged { name, .. } => {
                write::campaign_renamed(tx, self.tables, campaign, &name).await?
            }
            CampaignEvent::CampaignLaunched {} | CampaignEvent::CampaignResumed {} => {
                write::campaign_status(tx, self.tables, campaign, CampaignStatus::Active).await?
            }
            CampaignEvent::CampaignPaused {} => {
                write::campaign_status(tx, self.tables, campaign, CampaignStatus::Paused).await?
            }
            CampaignEvent::CampaignArchived {} => {
                write::campaign_status(tx, self.tables, campaign, CampaignStatus::Archived).await?
            }
            CampaignEvent::ListsAttached { .. } => {
                let Some(org) = org else { return Ok(()) };
                let contacts = write::attached_contacts(tx, campaign, event.version)
                    .await?
                    .ok_or_else(|| ProjectionError::Apply {
                        projector: NAME,
                        position: event.position,
                        reason: format!(
                            "the campaigns read model has not applied version {} of campaign \
                             {campaign} yet; retried once it has",
                            event.version
                        ),
                    })?;
                write::campaign_contacts(tx, self.tables, campaign, org, contacts, at).await?
            }
            CampaignEvent::ContactsAssigned { texter_id, phones } => {
                if let Some(org) = org {
                    fold.assignment(org, at, campaign, texter_id.into(), len(&phones));
                }
            }
            CampaignEvent::ContactsReleased { texter_id, phones } => {
                if let Some(org) = org {
                    fold.assignment(org, at, campaign, texter_id.into(), -len(&phones));
                }
            }
            CampaignEvent::ScriptRevised { .. } => {}
        }
        Ok(())
    }

    /// Loads what the batch's events need from earlier batches: their
    /// conversations, current survey answers and early delivery reports,
    /// one query per kind.
    async fn load(
        &self,
        tx: &mut StoreTx,
        fold: &mut fold::Fold,
        wanted: &Wanted,
    ) -> Result<(), ProjectionError> {
        let tables = self.tables;
        let mut messages: Vec<Uuid> = wanted
            .messages
            .iter()
            .filter(|id| !wanted.opened_messages.contains(id))
            .copied()
            .collect();
        if !wanted.submitted.is_empty() {
            let mut early: HashSet<&str> = wanted.early.iter().map(String::as_str).collect();
            let carriers: Vec<String> = wanted.submitted.keys().cloned().collect();
            let stored = write::load_early_reports(tx, tables, &carriers).await?;
            for report in &stored {
                early.insert(&report.carrier_message_id);
            }
            // A submission matters only when a report came before it.
            for (carrier, message) in &wanted.submitted {
                if early.contains(carrier.as_str()) && !wanted.opened_messages.contains(message) {
                    messages.push(*message);
                }
            }
            for report in stored {
                fold.load_early(report);
            }
        }
        messages.sort_unstable();
        messages.dedup();
        let conversations: Vec<Uuid> = wanted
            .conversations
            .iter()
            .filter(|id| !wanted.opened_conversations.contains(id))
            .copied()
            .collect();
        for row in write::load_conversations(tx, tables, "message_id", &messages).await? {
            fold.load_conversation(row);
        }
        for row in write::load_conversations(tx, tables, "conversation_id", &conversations).await? {
            fold.load_conversation(row);
        }
        let answered: Vec<Uuid> = wanted.answered.iter().copied().collect();
        for answer in write::load_answers(tx, tables, &answered).await? {
            fold.load_answer(answer);
        }
        Ok(())
    }
}

fn len(phones: &[textbank_domain::phone::PhoneNumber]) -> i64 {
    i64::try_from(phones.len()).unwrap_or(i64::MAX)
}

/// What a batch's recipient events refer to that earlier batches wrote.
#[derive(Default)]
struct Wanted {
    /// Initial messages (and their conversations) the batch itself opens.
    opened_messages: HashSet<Uuid>,
    opened_conversations: HashSet<Uuid>,
    /// Messages whose outcome the batch may change.
    messages: HashSet<Uuid>,
    /// Conversations the batch replies, opts out or answers in.
    conversations: HashSet<Uuid>,
    /// Conversations the batch records answers in.
    answered: HashSet<Uuid>,
    /// Submissions: carrier message id → message.
    submitted: HashMap<String, Uuid>,
    /// Carrier ids of final reports that came before their submission.
    early: HashSet<String>,
}

impl Wanted {
    fn of(batch: Batch<'_>) -> Result<Self, ProjectionError> {
        let mut wanted = Self::default();
        for item in batch.recipient_events(NAME) {
            let (_, parsed) = item?;
            match parsed {
                RecipientEvent::MessageSendClicked(click)
                    if click.evidence.kind == MessageKind::Initial =>
                {
                    wanted.opened_messages.insert(click.message_id.into());
                    wanted
                        .opened_conversations
                        .insert(click.conversation_id.into());
                }
                RecipientEvent::MessageDispatchStarted {
                    message_id,
                    attempt,
                    ..
                } if *attempt > 1 => {
                    wanted.messages.insert((*message_id).into());
                }
                RecipientEvent::MessageSubmitFailed { message_id, .. } => {
                    wanted.messages.insert((*message_id).into());
                }
                RecipientEvent::MessageSubmitted {
                    message_id,
                    carrier_message_id,
                    ..
                } => {
                    wanted
                        .submitted
                        .insert(carrier_message_id.clone(), (*message_id).into());
                }
                RecipientEvent::DeliveryReported {
                    message_id,
                    carrier_message_id,
                    status,
                    ..
                } if status.is_final() => match message_id {
                    Some(message) => {
                        wanted.messages.insert((*message).into());
                    }
                    None => {
                        wanted.early.insert(carrier_message_id.clone());
                    }
                },
                RecipientEvent::ReplyReceived {
                    conversation: Some(conversation),
                    ..
                }
                | RecipientEvent::OptOutRecorded {
                    conversation: Some(conversation),
                    ..
                } => {
                    wanted
                        .conversations
                        .insert(conversation.conversation_id.into());
                }
                RecipientEvent::SurveyAnswerRecorded { conversation, .. } => {
                    let id = conversation.conversation_id.into();
                    wanted.conversations.insert(id);
                    wanted.answered.insert(id);
                }
                _ => {}
            }
        }
        Ok(wanted)
    }
}
