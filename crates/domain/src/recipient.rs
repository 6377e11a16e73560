//! The recipient aggregate (`recipient-{org}-{e164}` stream): everything an
//! organization does with one phone number — clicks, blocked attempts,
//! carrier submissions, delivery reports, replies, opt-outs and opt-ins,
//! survey answers — and the decisions that must read all of it at once: may
//! this click send, what to do with a reply, what the dispatcher does next.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::DomainEvent;
use crate::handling::{self, Handling};
use crate::ids::{CampaignId, ConversationId, MemberId, MessageId, OrgId};
use crate::keywords::{self, Keyword};
use crate::message::{
    AutoReplyKind, BlockReason, BlockedAttempt, ClickRecord, DeliveryStatus, MessageKind,
};
use crate::phone::PhoneNumber;
use crate::stream::StreamId;

/// The dispatch failure code of a message that never reached any carrier:
/// the organization had none when the dispatcher came to it.
pub const NO_CARRIER: &str = "no_carrier";

pub fn stream_id(org: OrgId, phone: &PhoneNumber) -> StreamId {
    StreamId::of("recipient", &[&org, phone])
}

/// How an opt-out (or opt-in) reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OptOutSource {
    /// The voter replied with a keyword (STOP, START, …).
    KeywordReply,
    /// A texter marked the conversation.
    Texter,
    /// An imported opt-out list.
    Import,
}

/// The conversation a message or reply belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConversationRef {
    pub conversation_id: ConversationId,
    pub campaign_id: CampaignId,
    pub texter_id: MemberId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", content = "data")]
pub enum RecipientEvent {
    /// From now on nothing may be sent to this number by this organization.
    OptOutRecorded {
        phone: PhoneNumber,
        source: OptOutSource,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keyword: Option<String>,
        /// The conversation it happened in, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conversation: Option<ConversationRef>,
    },
    /// The voter asked to hear from the organization again.
    OptInRecorded {
        phone: PhoneNumber,
        source: OptOutSource,
    },
    /// A texter's click: one message, to be handed to the carrier.
    MessageSendClicked(Box<ClickRecord>),
    /// A send attempt that was refused, and why.
    SendBlocked(Box<BlockedAttempt>),
    /// An automated text answering the voter (opt-out confirmation, HELP).
    AutoReplyQueued {
        message_id: MessageId,
        kind: AutoReplyKind,
        phone: PhoneNumber,
        body: String,
        /// The carrier id of the voter's message this answers (none when a
        /// texter recorded the opt-out).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_reply_to: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conversation: Option<ConversationRef>,
    },
    /// The dispatcher is about to hand the message to the carrier. Written
    /// before the call: found without an outcome after a crash, it means
    /// "maybe sent", and the message is never submitted again.
    MessageDispatchStarted {
        message_id: MessageId,
        attempt: u32,
        carrier: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// The dispatcher's leadership term, and when it started the call:
        /// a start of another term may still be in flight at a former
        /// leader. Absent on starts recorded before terms existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        leader_term: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started_at: Option<DateTime<Utc>>,
    },
    MessageSubmitted {
        message_id: MessageId,
        attempt: u32,
        carrier: String,
        carrier_message_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
    },
    /// The carrier refused the message; `retryable` when it said nothing was
    /// sent and trying later may work.
    MessageSubmitFailed {
        message_id: MessageId,
        attempt: u32,
        carrier: String,
        code: String,
        error: String,
        retryable: bool,
    },
    /// Whether the carrier took the message cannot be known (a timeout, a
    /// crash mid-call): left for reconciliation, never resent.
    MessageSubmitUnknown {
        message_id: MessageId,
        attempt: u32,
        reason: String,
    },
    /// Not handed to the carrier after all (the number opted out between
    /// the click and the dispatch).
    MessageCancelled {
        message_id: MessageId,
        reason: String,
    },
    DeliveryReported {
        carrier: String,
        carrier_message_id: String,
        /// `None` for a report about a message this stream does not know.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<MessageId>,
        status: DeliveryStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_code: Option<String>,
    },
    /// A text from the voter.
    ReplyReceived {
        message_id: MessageId,
        carrier: String,
        carrier_message_id: String,
        phone: PhoneNumber,
        /// Our number it was sent to.
        to: String,
        body: String,
        /// The latest conversation with this phone, if there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conversation: Option<ConversationRef>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keyword: Option<Keyword>,
    },
    SurveyAnswerRecorded {
        conversation: ConversationRef,
        question_id: String,
        answer: String,
        /// Who recorded it (the conversation's texter or a manager).
        recorded_by: MemberId,
    },
    /// The texter's queue held the contact back instead of offering it:
    /// `message_too_long` when its message, rendered under `script_version`,
    /// is over the server's cap; `no_carrier` when the organization has no
    /// carrier to send it with. Recorded once per campaign, reason and
    /// script version, so the campaign's managers see how many contacts wait
    /// for a shorter script or a carrier.
    ContactHeld {
        campaign_id: CampaignId,
        texter_id: MemberId,
        reason: BlockReason,
        script_version: u32,
        chars: u32,
        segments: u32,
    },
    /// A tag was applied to a conversation (`name`: the tag's name then).
    TagApplied {
        conversation: ConversationRef,
        tag_id: Uuid,
        name: String,
        /// The member who applied it (absent for a key bound to none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<MemberId>,
    },
    /// A tag was taken off a conversation.
    TagRemoved {
        conversation: ConversationRef,
        tag_id: Uuid,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<MemberId>,
    },
    /// The conversation went to the staff's escalation queue, out of its
    /// texter's inbox (`conversation.texter_id`: who held it), with a
    /// reason, or because an escalating tag (`tag_id`) was applied.
    ConversationEscalated {
        conversation: ConversationRef,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag_id: Option<Uuid>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<MemberId>,
    },
    /// Staff resolved the escalation: the conversation went to
    /// `returned_to`, or to the campaign's pool when absent.
    EscalationResolved {
        conversation: ConversationRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        returned_to: Option<MemberId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<MemberId>,
    },
    /// The conversation now belongs to `conversation.texter_id`: the voter's
    /// replies go to them, and `from` (absent: the pool) loses it.
    ConversationReassigned {
        conversation: ConversationRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<MemberId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<MemberId>,
    },
    /// The conversation left its texter (`conversation.texter_id`) for the
    /// campaign's pool.
    ConversationReleased {
        conversation: ConversationRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<MemberId>,
    },
}

impl DomainEvent for RecipientEvent {}

/// Records that the queue held the contact for `campaign_id` under
/// `script_version` for `reason`, unless that was recorded already.
pub fn decide_hold(state: &RecipientState, held: RecipientEvent) -> Vec<RecipientEvent> {
    let RecipientEvent::ContactHeld {
        campaign_id,
        script_version,
        reason,
        ..
    } = &held
    else {
        return Vec::new();
    };
    if state.held.get(&(*campaign_id, *reason)) == Some(script_version) {
        return Vec::new();
    }
    vec![held]
}

/// How far one outbound message got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// Clicked (or queued), not yet handed to the carrier.
    Pending,
    /// Handed over in this attempt; no outcome recorded.
    Started {
        attempt: u32,
        leader_term: Option<u64>,
        started_at: Option<DateTime<Utc>>,
    },
    Submitted,
    /// Refused; a retryable refusal may be tried again.
    Failed {
        attempt: u32,
        retryable: bool,
    },
    Unknown,
    Cancelled,
}

/// An outbound message as the recipient stream knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    pub message_id: MessageId,
    pub body: String,
    /// Automated replies go even to an opted-out number (they answer it).
    pub automated: bool,
    pub conversation: Option<ConversationRef>,
    pub dispatch: Dispatch,
    pub carrier_message_id: Option<String>,
    pub delivery: Option<DeliveryStatus>,
}

/// What the recipient stream says, folded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientState {
    pub opted_out: bool,
    /// Click tokens used, with the message each sent.
    pub tokens: HashMap<Uuid, MessageId>,
    /// Idempotency keys of clicks, with the message each sent.
    pub idempotency_keys: HashMap<String, MessageId>,
    /// The script version under which each campaign's queue last held the
    /// contact back for each reason ([`RecipientEvent::ContactHeld`]).
    pub held: HashMap<(CampaignId, BlockReason), u32>,
    /// The conversation each campaign opened with this phone.
    pub conversations: HashMap<CampaignId, ConversationRef>,
    /// The conversation of the latest outbound click.
    pub latest_conversation: Option<ConversationRef>,
    pub outbound: HashMap<MessageId, Outbound>,
    pub by_carrier_id: HashMap<String, MessageId>,
    /// (carrier message id, status) pairs already reported.
    pub reports: HashSet<(String, DeliveryStatus)>,
    /// Carrier ids of replies already recorded.
    pub inbound: HashSet<String>,
    /// The latest status reported for carrier ids not (yet) known here: a
    /// quick carrier can report before its submission is recorded.
    pub unmatched_reports: HashMap<String, DeliveryStatus>,
    /// The sending number this phone last got a text from (sticky sender).
    pub sender: Option<String>,
    /// Each conversation's holder, tags and escalation.
    pub handling: HashMap<ConversationId, Handling>,
}

impl RecipientState {
    /// The conversation with this id, if this phone has it.
    pub fn conversation(&self, id: ConversationId) -> Option<ConversationRef> {
        self.conversations
            .values()
            .find(|conversation| conversation.conversation_id == id)
            .copied()
    }
}

pub fn evolve(mut state: RecipientState, event: &RecipientEvent) -> RecipientState {
    match event {
        RecipientEvent::OptOutRecorded { .. } => state.opted_out = true,
        RecipientEvent::OptInRecorded { .. } => state.opted_out = false,
        RecipientEvent::MessageSendClicked(click) => {
            let conversation = ConversationRef {
                conversation_id: click.conversation_id,
                campaign_id: click.campaign_id,
                texter_id: click.evidence.texter_id,
            };
            if let Some(token) = click.evidence.token_id {
                state.tokens.insert(token, click.message_id);
            }
            if let Some(key) = &click.evidence.idempotency_key {
                state.idempotency_keys.insert(key.clone(), click.message_id);
            }
            if click.evidence.kind == MessageKind::Initial {
                state
                    .handling
                    .entry(click.conversation_id)
                    .or_insert_with(|| Handling::opened(conversation));
            }
            // A reply (a staff member's, too) belongs to the conversation's
            // current texter.
            let conversation = state
                .handling
                .get(&click.conversation_id)
                .map_or(conversation, |handling| handling.reference);
            state
                .conversations
                .entry(click.campaign_id)
                .or_insert(conversation);
            state.latest_conversation = Some(conversation);
            state.outbound.insert(
                click.message_id,
                Outbound {
                    message_id: click.message_id,
                    body: click.body.clone(),
                    automated: false,
                    conversation: Some(conversation),
                    dispatch: Dispatch::Pending,
                    carrier_message_id: None,
                    delivery: None,
                },
            );
        }
        RecipientEvent::ContactHeld {
            campaign_id,
            script_version,
            reason,
            ..
        } => {
            state.held.insert((*campaign_id, *reason), *script_version);
        }
        RecipientEvent::SendBlocked(_) | RecipientEvent::SurveyAnswerRecorded { .. } => {}
        RecipientEvent::AutoReplyQueued {
            message_id,
            body,
            conversation,
            ..
        } => {
            state.outbound.insert(
                *message_id,
                Outbound {
                    message_id: *message_id,
                    body: body.clone(),
                    automated: true,
                    conversation: *conversation,
                    dispatch: Dispatch::Pending,
                    carrier_message_id: None,
                    delivery: None,
                },
            );
        }
        RecipientEvent::MessageDispatchStarted {
            message_id,
            attempt,
            leader_term,
            started_at,
            ..
        } => set_dispatch(
            &mut state,
            *message_id,
            Dispatch::Started {
                attempt: *attempt,
                leader_term: *leader_term,
                started_at: *started_at,
            },
        ),
        RecipientEvent::MessageSubmitted {
            message_id,
            carrier_message_id,
            from,
            ..
        } => {
            set_dispatch(&mut state, *message_id, Dispatch::Submitted);
            let early = state.unmatched_reports.remove(carrier_message_id);
            if let Some(message) = state.outbound.get_mut(message_id) {
                message.carrier_message_id = Some(carrier_message_id.clone());
                message.delivery = early;
            }
            state
                .by_carrier_id
                .insert(carrier_message_id.clone(), *message_id);
            if from.is_some() {
                state.sender.clone_from(from);
            }
        }
        RecipientEvent::MessageSubmitFailed {
            message_id,
            attempt,
            retryable,
            code,
            ..
        } => {
            set_dispatch(
                &mut state,
                *message_id,
                Dispatch::Failed {
                    attempt: *attempt,
                    retryable: *retryable,
                },
            );
            if code == NO_CARRIER {
                forget_unsent_conversation(&mut state, *message_id);
            }
        }
        RecipientEvent::MessageSubmitUnknown { message_id, .. } => {
            set_dispatch(&mut state, *message_id, Dispatch::Unknown)
        }
        RecipientEvent::MessageCancelled { message_id, .. } => {
            set_dispatch(&mut state, *message_id, Dispatch::Cancelled)
        }
        RecipientEvent::DeliveryReported {
            carrier_message_id,
            message_id,
            status,
            ..
        } => {
            state.reports.insert((carrier_message_id.clone(), *status));
            let known = message_id.or_else(|| state.by_carrier_id.get(carrier_message_id).copied());
            let current = match known.and_then(|id| state.outbound.get_mut(&id)) {
                Some(message) => &mut message.delivery,
                None => {
                    let early = state
                        .unmatched_reports
                        .entry(carrier_message_id.clone())
                        .or_insert(*status);
                    if early.may_become(*status) {
                        *early = *status;
                    }
                    return state;
                }
            };
            match current {
                Some(now) if !now.may_become(*status) => {}
                _ => *current = Some(*status),
            }
        }
        RecipientEvent::ReplyReceived {
            carrier_message_id, ..
        } => {
            state.inbound.insert(carrier_message_id.clone());
        }
        RecipientEvent::TagApplied { .. }
        | RecipientEvent::TagRemoved { .. }
        | RecipientEvent::ConversationEscalated { .. }
        | RecipientEvent::EscalationResolved { .. }
        | RecipientEvent::ConversationReassigned { .. }
        | RecipientEvent::ConversationReleased { .. } => handling::evolve(&mut state, event),
    }
    state
}

/// A campaign's first message that never reached any carrier did not
/// message the contact: the conversation it opened is forgotten, so a new
/// click (never an automatic resend) may send the campaign's first message.
fn forget_unsent_conversation(state: &mut RecipientState, message_id: MessageId) {
    let opened = |conversation: &ConversationRef| {
        conversation.conversation_id.as_uuid() == message_id.as_uuid()
    };
    let Some(conversation) = state
        .outbound
        .get(&message_id)
        .and_then(|message| message.conversation)
        .filter(opened)
    else {
        return;
    };
    if state.conversations.get(&conversation.campaign_id) == Some(&conversation) {
        state.conversations.remove(&conversation.campaign_id);
    }
    state.handling.remove(&conversation.conversation_id);
}

fn set_dispatch(state: &mut RecipientState, message_id: MessageId, dispatch: Dispatch) {
    if let Some(message) = state.outbound.get_mut(&message_id) {
        message.dispatch = dispatch;
    }
}

/// What the dispatcher should do with one outbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchDecision {
    /// Append `MessageDispatchStarted` for this attempt, then call the carrier.
    Start { attempt: u32 },
    /// The number opted out after the click: do not send.
    Cancel,
    /// An attempt was started and never finished (a crash): mark it unknown.
    MarkUnknown { attempt: u32 },
    /// A former leader started an attempt that may still be in flight:
    /// decide again at `until`, when its carrier call has surely ended and
    /// its outcome, if any, has been recorded.
    WaitForFormerLeader { attempt: u32, until: DateTime<Utc> },
    /// Nothing to do: already settled, or a retryable failure past the limit.
    Done,
}

/// The dispatcher deciding: its leadership term, its clock, and how long a
/// carrier call can last at most (its timeout, with a margin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dispatcher {
    pub max_attempts: u32,
    pub leader_term: u64,
    pub now: DateTime<Utc>,
    pub longest_call: chrono::Duration,
}

/// Decides the next dispatch step of `message_id`; `max_attempts` bounds the
/// retries of failures the carrier said sent nothing.
///
/// A start without an outcome is "maybe sent" and never started again. If
/// this leader's term recorded it, its call has ended (each batch waits for
/// its calls), so it was cut off by a crash: mark it unknown. If another
/// term recorded it, the former leader may still be waiting on the carrier:
/// wait until that call has surely ended before calling it unknown, or a
/// late outcome would stand beside a false "maybe sent".
pub fn decide_dispatch(
    state: &RecipientState,
    message_id: MessageId,
    dispatcher: &Dispatcher,
) -> DispatchDecision {
    let max_attempts = dispatcher.max_attempts;
    let Some(message) = state.outbound.get(&message_id) else {
        return DispatchDecision::Done;
    };
    let next_attempt = match message.dispatch {
        Dispatch::Pending => 1,
        Dispatch::Started {
            attempt,
            leader_term: Some(term),
            started_at: Some(started_at),
        } if term != dispatcher.leader_term
            && dispatcher.now < started_at + dispatcher.longest_call =>
        {
            return DispatchDecision::WaitForFormerLeader {
                attempt,
                until: started_at + dispatcher.longest_call,
            };
        }
        Dispatch::Started { attempt, .. } => return DispatchDecision::MarkUnknown { attempt },
        Dispatch::Failed {
            attempt,
            retryable: true,
        } if attempt < max_attempts => attempt + 1,
        Dispatch::Failed { .. } | Dispatch::Submitted | Dispatch::Unknown | Dispatch::Cancelled => {
            return DispatchDecision::Done;
        }
    };
    if state.opted_out && !message.automated {
        return DispatchDecision::Cancel;
    }
    DispatchDecision::Start {
        attempt: next_attempt,
    }
}

/// Records an opt-out made by a person (a texter, or an imported list); an
/// already opted-out number changes nothing. `confirmation` is the org's
/// confirmation text when one should go out (texters may send it; imports
/// never text anyone).
pub fn decide_manual_opt_out(
    state: &RecipientState,
    phone: &PhoneNumber,
    source: OptOutSource,
    conversation: Option<ConversationRef>,
    confirmation: Option<(MessageId, &str)>,
) -> Vec<RecipientEvent> {
    if state.opted_out {
        return Vec::new();
    }
    let mut events = vec![RecipientEvent::OptOutRecorded {
        phone: phone.clone(),
        source,
        keyword: None,
        conversation,
    }];
    if let Some((message_id, body)) = confirmation {
        events.push(RecipientEvent::AutoReplyQueued {
            message_id,
            kind: AutoReplyKind::OptOutConfirmation,
            phone: phone.clone(),
            body: body.to_owned(),
            in_reply_to: None,
            conversation,
        });
    }
    events
}

/// A delivery report as a carrier webhook gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub carrier: String,
    pub carrier_message_id: String,
    pub status: DeliveryStatus,
    pub error_code: Option<String>,
}

/// Records a report once per (carrier id, status); reports for messages
/// this stream does not know are kept too, unattached.
pub fn decide_report(state: &RecipientState, report: &Report) -> Vec<RecipientEvent> {
    let key = (report.carrier_message_id.clone(), report.status);
    if state.reports.contains(&key) {
        return Vec::new();
    }
    vec![RecipientEvent::DeliveryReported {
        carrier: report.carrier.clone(),
        carrier_message_id: report.carrier_message_id.clone(),
        message_id: state.by_carrier_id.get(&report.carrier_message_id).copied(),
        status: report.status,
        error_code: report.error_code.clone(),
    }]
}

/// A voter's text as a carrier webhook gave it, with the organization's
/// automated answers ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub message_id: MessageId,
    pub carrier: String,
    pub carrier_message_id: String,
    pub phone: PhoneNumber,
    pub to: String,
    pub body: String,
    pub texts: AutoReplyTexts,
}

/// The organization's automated texts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoReplyTexts {
    pub opt_out_confirmation: String,
    pub opt_in_confirmation: String,
    pub help: String,
}

impl AutoReplyTexts {
    /// Defaults naming the organization, as the carriers' guidelines ask.
    pub fn defaults(org_name: &str) -> Self {
        Self {
            opt_out_confirmation: format!(
                "{org_name}: You are unsubscribed and will get no more messages. Reply START to resubscribe."
            ),
            opt_in_confirmation: format!(
                "{org_name}: You are resubscribed. Reply STOP to opt out, HELP for help."
            ),
            help: format!("{org_name}: Reply STOP to opt out of these messages."),
        }
    }
}

/// Records a reply once (carriers retry webhooks) and acts on its keyword:
/// an opt-out is recorded with exactly one confirmation (a repeated STOP
/// gets none), START after an opt-out opts back in, HELP gets the help text.
pub fn decide_inbound(
    state: &RecipientState,
    inbound: &Inbound,
    reply_ids: impl FnMut() -> MessageId,
) -> Vec<RecipientEvent> {
    if state.inbound.contains(&inbound.carrier_message_id) {
        return Vec::new();
    }
    let mut reply_ids = reply_ids;
    let keyword = keywords::classify(&inbound.body);
    let conversation = state.latest_conversation;
    let mut events = vec![RecipientEvent::ReplyReceived {
        message_id: inbound.message_id,
        carrier: inbound.carrier.clone(),
        carrier_message_id: inbound.carrier_message_id.clone(),
        phone: inbound.phone.clone(),
        to: inbound.to.clone(),
        body: inbound.body.clone(),
        conversation,
        keyword,
    }];
    let mut auto_reply = |kind: AutoReplyKind, body: &str| RecipientEvent::AutoReplyQueued {
        message_id: reply_ids(),
        kind,
        phone: inbound.phone.clone(),
        body: body.to_owned(),
        in_reply_to: Some(inbound.carrier_message_id.clone()),
        conversation,
    };
    match keyword {
        Some(Keyword::OptOut) if !state.opted_out => {
            events.push(RecipientEvent::OptOutRecorded {
                phone: inbound.phone.clone(),
                source: OptOutSource::KeywordReply,
                keyword: Some(keywords::normalize(&inbound.body)),
                conversation,
            });
            events.push(auto_reply(
                AutoReplyKind::OptOutConfirmation,
                &inbound.texts.opt_out_confirmation,
            ));
        }
        Some(Keyword::OptIn) if state.opted_out => {
            events.push(RecipientEvent::OptInRecorded {
                phone: inbound.phone.clone(),
                source: OptOutSource::KeywordReply,
            });
            events.push(auto_reply(
                AutoReplyKind::OptInConfirmation,
                &inbound.texts.opt_in_confirmation,
            ));
        }
        Some(Keyword::Help) => {
            events.push(auto_reply(AutoReplyKind::Help, &inbound.texts.help));
        }
        _ => {}
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{click, opt_out, phone, sent};
    use crate::message::MessageKind;
    use crate::phone::Region;

    #[test]
    fn recipient_streams_are_per_org_and_number() {
        let org = OrgId::new();
        let phone = PhoneNumber::parse("(555) 201-0001", Region::US).unwrap();
        assert_eq!(
            stream_id(org, &phone).as_str(),
            format!("recipient-{org}-+15552010001")
        );
    }

    #[test]
    fn opt_outs_round_trip_through_stored_parts() {
        let event = RecipientEvent::OptOutRecorded {
            phone: PhoneNumber::parse("5552010001", Region::US).unwrap(),
            source: OptOutSource::KeywordReply,
            keyword: Some("STOP".into()),
            conversation: None,
        };
        let (event_type, data) = event.to_parts().unwrap();
        assert_eq!(event_type, "OptOutRecorded");
        assert_eq!(
            RecipientEvent::from_parts(&event_type, &data).unwrap(),
            Some(event)
        );
    }

    fn given(events: &[RecipientEvent]) -> RecipientState {
        events.iter().fold(RecipientState::default(), evolve)
    }

    fn dispatcher(max_attempts: u32) -> Dispatcher {
        Dispatcher {
            max_attempts,
            leader_term: 7,
            now: "2026-11-25T19:00:00Z".parse().unwrap(),
            longest_call: chrono::Duration::seconds(20),
        }
    }

    fn started(id: MessageId, leader_term: Option<u64>, seconds_ago: i64) -> RecipientEvent {
        RecipientEvent::MessageDispatchStarted {
            message_id: id,
            attempt: 1,
            carrier: "sim".into(),
            from: None,
            leader_term,
            started_at: Some(dispatcher(3).now - chrono::Duration::seconds(seconds_ago)),
        }
    }

    #[test]
    fn dispatch_is_at_most_once() {
        let attempt = click(MessageKind::Initial, None, None);
        let id = attempt.record.message_id;
        let clicked = given(&[sent(&attempt)]);
        assert_eq!(
            decide_dispatch(&clicked, id, &dispatcher(3)),
            DispatchDecision::Start { attempt: 1 }
        );
        let started = started(id, Some(7), 0);
        let crashed = given(&[sent(&attempt), started.clone()]);
        assert_eq!(
            decide_dispatch(&crashed, id, &dispatcher(3)),
            DispatchDecision::MarkUnknown { attempt: 1 }
        );
        let refused = RecipientEvent::MessageSubmitFailed {
            message_id: id,
            attempt: 1,
            carrier: "sim".into(),
            code: "429".into(),
            error: "slow down".into(),
            retryable: true,
        };
        let retry = given(&[sent(&attempt), started.clone(), refused.clone()]);
        assert_eq!(
            decide_dispatch(&retry, id, &dispatcher(3)),
            DispatchDecision::Start { attempt: 2 }
        );
        assert_eq!(
            decide_dispatch(&retry, id, &dispatcher(1)),
            DispatchDecision::Done
        );
        let stopped = given(&[sent(&attempt), opt_out()]);
        assert_eq!(
            decide_dispatch(&stopped, id, &dispatcher(3)),
            DispatchDecision::Cancel
        );
    }

    #[test]
    fn a_hold_is_recorded_once_per_campaign_and_script_version() {
        let (campaign, texter) = (CampaignId::new(), MemberId::new());
        let held = |script_version| RecipientEvent::ContactHeld {
            campaign_id: campaign,
            texter_id: texter,
            reason: BlockReason::MessageTooLong,
            script_version,
            chars: 2000,
            segments: 14,
        };
        let fresh = given(&[]);
        assert_eq!(decide_hold(&fresh, held(1)), [held(1)]);
        let once = given(&[held(1)]);
        assert_eq!(decide_hold(&once, held(1)), []);
        // A revised script that still renders too long is held again.
        assert_eq!(decide_hold(&once, held(2)), [held(2)]);
        // Another reason under the same script is recorded on its own.
        let no_carrier = RecipientEvent::ContactHeld {
            campaign_id: campaign,
            texter_id: texter,
            reason: BlockReason::NoCarrier,
            script_version: 1,
            chars: 40,
            segments: 1,
        };
        assert_eq!(
            decide_hold(&once, no_carrier.clone()),
            std::slice::from_ref(&no_carrier)
        );
        let both = given(&[held(1), no_carrier.clone()]);
        assert_eq!(decide_hold(&both, no_carrier), []);
    }

    #[test]
    fn a_former_leaders_start_is_waited_for_until_its_call_has_surely_ended() {
        let attempt = click(MessageKind::Initial, None, None);
        let id = attempt.record.message_id;
        let me = dispatcher(3);
        let in_flight = given(&[sent(&attempt), started(id, Some(6), 5)]);
        assert_eq!(
            decide_dispatch(&in_flight, id, &me),
            DispatchDecision::WaitForFormerLeader {
                attempt: 1,
                until: me.now + chrono::Duration::seconds(15)
            }
        );
        let long_gone = given(&[sent(&attempt), started(id, Some(6), 21)]);
        assert_eq!(
            decide_dispatch(&long_gone, id, &me),
            DispatchDecision::MarkUnknown { attempt: 1 }
        );
        // Starts recorded before terms existed are judged as before.
        let untermed = given(&[sent(&attempt), started(id, None, 1)]);
        assert_eq!(
            decide_dispatch(&untermed, id, &me),
            DispatchDecision::MarkUnknown { attempt: 1 }
        );
    }

    #[test]
    fn reports_are_deduplicated_and_final_statuses_stay() {
        let attempt = click(MessageKind::Initial, None, None);
        let id = attempt.record.message_id;
        let submitted = RecipientEvent::MessageSubmitted {
            message_id: id,
            attempt: 1,
            carrier: "sim".into(),
            carrier_message_id: "SM1".into(),
            from: Some("+15550000001".into()),
        };
        let report = |status| Report {
            carrier: "sim".into(),
            carrier_message_id: "SM1".into(),
            status,
            error_code: None,
        };
        let mut state = given(&[sent(&attempt), submitted]);
        for event in decide_report(&state, &report(DeliveryStatus::Delivered)) {
            state = evolve(state, &event);
        }
        assert!(decide_report(&state, &report(DeliveryStatus::Delivered)).is_empty());
        for event in decide_report(&state, &report(DeliveryStatus::Sent)) {
            state = evolve(state, &event);
        }
        assert_eq!(
            state.outbound[&id].delivery,
            Some(DeliveryStatus::Delivered)
        );
        assert_eq!(state.sender.as_deref(), Some("+15550000001"));
    }

    fn inbound(body: &str, carrier_id: &str) -> Inbound {
        Inbound {
            message_id: MessageId::new(),
            carrier: "sim".into(),
            carrier_message_id: carrier_id.into(),
            phone: phone(),
            to: "+15550000001".into(),
            body: body.into(),
            texts: AutoReplyTexts::defaults("Org"),
        }
    }

    fn auto_replies(events: &[RecipientEvent]) -> Vec<AutoReplyKind> {
        events
            .iter()
            .filter_map(|event| match event {
                RecipientEvent::AutoReplyQueued { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn stop_opts_out_with_exactly_one_confirmation() {
        let events = decide_inbound(
            &RecipientState::default(),
            &inbound("Stop.", "SM1"),
            MessageId::new,
        );
        assert!(matches!(events[1], RecipientEvent::OptOutRecorded { .. }));
        assert_eq!(auto_replies(&events), [AutoReplyKind::OptOutConfirmation]);
        let state = given(&events);
        assert!(state.opted_out);
        // The webhook again: nothing new.
        assert!(decide_inbound(&state, &inbound("Stop.", "SM1"), MessageId::new).is_empty());
        // STOP again: recorded, but no second confirmation.
        let again = decide_inbound(&state, &inbound("STOP", "SM2"), MessageId::new);
        assert_eq!(again.len(), 1);
        // START opts back in.
        let start = decide_inbound(&state, &inbound("start", "SM3"), MessageId::new);
        assert_eq!(auto_replies(&start), [AutoReplyKind::OptInConfirmation]);
        assert!(!given(&[events, start].concat()).opted_out);
    }

    #[test]
    fn stop2quit_opts_out_with_one_confirmation_like_stop() {
        for (i, body) in ["STOP2QUIT", "Stop 2 Quit"].into_iter().enumerate() {
            let carrier_id = format!("SM{i}");
            let events = crate::given_when_then::given(&[], evolve)
                .when(|state| decide_inbound(state, &inbound(body, &carrier_id), MessageId::new));
            let events = events.into_inner();
            assert!(
                matches!(events[1], RecipientEvent::OptOutRecorded { .. }),
                "{body}: {events:?}"
            );
            assert_eq!(auto_replies(&events), [AutoReplyKind::OptOutConfirmation]);
            assert!(given(&events).opted_out, "{body}");
        }
    }

    #[test]
    fn help_gets_the_help_text_and_yes_without_an_opt_out_is_just_a_reply() {
        let help = decide_inbound(
            &RecipientState::default(),
            &inbound("HELP", "SM1"),
            MessageId::new,
        );
        assert_eq!(auto_replies(&help), [AutoReplyKind::Help]);
        let yes = decide_inbound(
            &RecipientState::default(),
            &inbound("yes", "SM2"),
            MessageId::new,
        );
        assert_eq!(yes.len(), 1);
    }

    #[test]
    fn a_manual_opt_out_is_recorded_once_with_at_most_one_confirmation() {
        let events = decide_manual_opt_out(
            &RecipientState::default(),
            &phone(),
            OptOutSource::Texter,
            None,
            Some((MessageId::new(), "Unsubscribed.")),
        );
        assert_eq!(auto_replies(&events), [AutoReplyKind::OptOutConfirmation]);
        let state = given(&events);
        assert!(state.opted_out);
        assert!(
            decide_manual_opt_out(&state, &phone(), OptOutSource::Import, None, None).is_empty()
        );
        let imported = decide_manual_opt_out(
            &RecipientState::default(),
            &phone(),
            OptOutSource::Import,
            None,
            None,
        );
        assert_eq!(imported.len(), 1);
        assert!(auto_replies(&imported).is_empty());
    }
}
