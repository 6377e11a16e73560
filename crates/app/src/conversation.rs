//! One conversation as its texter (or a manager) sees it, read straight from
//! the recipient stream: every message both ways with its delivery status,
//! survey answers and the opt-out state. Also the texter's actions in it
//! that send nothing themselves: marking an opt-out, recording an answer.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use textbank_domain::handling::Holder;
use textbank_domain::keywords::Keyword;
use textbank_domain::message::{AutoReplyKind, DeliveryStatus};
use textbank_domain::phone::PhoneNumber;
use textbank_domain::recipient::{
    self, ConversationRef, OptOutSource, RecipientEvent, RecipientState,
};
use textbank_domain::{CampaignId, ConversationId, DomainEvent, MemberId, MessageId, Permission};
use textbank_projections::inbox::AppliedTag;

use crate::command::execute;
use crate::send::texter_of;
use crate::{App, AppError, Caller};

const PAGE: usize = 1_000;
const MAX_ANSWER: usize = 200;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ThreadEntry {
    pub message_id: MessageId,
    /// "outbound" or "inbound".
    pub direction: &'static str,
    /// "initial", "reply", an automated kind, or "inbound".
    pub kind: String,
    pub body: String,
    pub at: DateTime<Utc>,
    /// Outbound: pending, submitted, failed, unknown, cancelled, or the
    /// carrier's latest delivery status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Inbound: the keyword it matched (opt_out, likely_opt_out, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword: Option<Keyword>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub texter_id: Option<MemberId>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Answer {
    pub question_id: String,
    pub answer: String,
    pub recorded_by: MemberId,
    pub recorded_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Thread {
    pub conversation_id: ConversationId,
    pub campaign_id: CampaignId,
    pub phone: String,
    pub texter_id: MemberId,
    pub opted_out: bool,
    /// A reply likely meant "stop" but was no keyword: the texter decides.
    pub needs_opt_out_review: bool,
    pub messages: Vec<ThreadEntry>,
    pub answers: Vec<Answer>,
    /// Where it is: with its texter (`texter_id`), in the campaign's pool,
    /// or escalated to staff.
    pub holder: Holder,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation_reason: Option<String>,
    pub tags: Vec<AppliedTag>,
    /// The log position this view reflects.
    pub position: u64,
}

/// Why an integration's key is refused the conversation routes.
pub(crate) const INTEGRATIONS_READ_THE_FEED: &str =
    "the integration role reads conversations through the event feed (GET /v1/events)";

fn corrupt(err: impl std::fmt::Display) -> AppError {
    AppError::Inconsistent(err.to_string())
}

impl App {
    /// Every message of the conversation with its status, from the log.
    pub async fn thread(&self, caller: &Caller, id: ConversationId) -> Result<Thread, AppError> {
        let conversation = self.conversation_in_reach(caller, id, false).await?;
        let phone = PhoneNumber::from_e164(&conversation.phone).map_err(corrupt)?;
        let stream = recipient::stream_id(caller.org_id, &phone);
        let mut thread = Thread {
            conversation_id: id,
            campaign_id: conversation.campaign_id,
            phone: conversation.phone.clone(),
            texter_id: conversation.texter_id,
            opted_out: false,
            needs_opt_out_review: false,
            messages: Vec::new(),
            answers: Vec::new(),
            holder: Holder::Texter,
            escalation_reason: None,
            tags: Vec::new(),
            position: 0,
        };
        let mut state = RecipientState::default();
        let ours = |reference: &Option<ConversationRef>| {
            reference.is_some_and(|reference| reference.conversation_id == id)
        };
        let mut index: HashMap<MessageId, usize> = HashMap::new();
        let mut by_carrier: HashMap<String, usize> = HashMap::new();
        let mut delivery: HashMap<usize, DeliveryStatus> = HashMap::new();
        // Applied after the whole stream is read: a quick carrier can report
        // before the submission that names its id is recorded.
        let mut reports: Vec<(String, DeliveryStatus, Option<String>)> = Vec::new();
        let mut from = 0;
        loop {
            let page = self.events().read_stream(&stream, from, PAGE).await?;
            for recorded in &page {
                thread.position = thread.position.max(recorded.position);
                let Some(event) = RecipientEvent::from_parts(&recorded.event_type, &recorded.data)
                    .map_err(corrupt)?
                else {
                    continue;
                };
                state = recipient::evolve(state, &event);
                let at = recorded.recorded_at;
                let outbound = |message_id, kind: String, body: String, texter_id| ThreadEntry {
                    message_id,
                    direction: "outbound",
                    kind,
                    body,
                    at,
                    status: Some("pending".into()),
                    error_code: None,
                    keyword: None,
                    texter_id,
                };
                let mut set_status =
                    |message_id: &MessageId, status: &str, code: Option<String>| {
                        if let Some(&i) = index.get(message_id) {
                            thread.messages[i].status = Some(status.to_owned());
                            thread.messages[i].error_code = code;
                        }
                    };
                match event {
                    RecipientEvent::OptOutRecorded { .. } => thread.opted_out = true,
                    RecipientEvent::OptInRecorded { .. } => thread.opted_out = false,
                    RecipientEvent::MessageSendClicked(click) if click.conversation_id == id => {
                        index.insert(click.message_id, thread.messages.len());
                        let kind = serde_json::to_value(click.evidence.kind)
                            .ok()
                            .and_then(|kind| kind.as_str().map(str::to_owned))
                            .unwrap_or_default();
                        thread.messages.push(outbound(
                            click.message_id,
                            kind,
                            click.body,
                            Some(click.evidence.texter_id),
                        ));
                    }
                    RecipientEvent::AutoReplyQueued {
                        message_id,
                        kind,
                        body,
                        conversation,
                        ..
                    } if ours(&conversation) => {
                        index.insert(message_id, thread.messages.len());
                        let kind = match kind {
                            AutoReplyKind::OptOutConfirmation => "opt_out_confirmation",
                            AutoReplyKind::OptInConfirmation => "opt_in_confirmation",
                            AutoReplyKind::Help => "help",
                        };
                        thread
                            .messages
                            .push(outbound(message_id, kind.into(), body, None));
                    }
                    RecipientEvent::MessageSubmitted {
                        message_id,
                        carrier_message_id,
                        ..
                    } => {
                        if let Some(&i) = index.get(&message_id) {
                            by_carrier.insert(carrier_message_id, i);
                            thread.messages[i].status = Some("submitted".into());
                        }
                    }
                    RecipientEvent::MessageSubmitFailed {
                        message_id,
                        code,
                        retryable,
                        ..
                    } => {
                        let status = if retryable { "retrying" } else { "failed" };
                        set_status(&message_id, status, Some(code));
                    }
                    RecipientEvent::MessageSubmitUnknown { message_id, .. } => {
                        set_status(&message_id, "unknown", None);
                    }
                    RecipientEvent::MessageCancelled { message_id, .. } => {
                        set_status(&message_id, "cancelled", None);
                    }
                    RecipientEvent::DeliveryReported {
                        carrier_message_id,
                        status,
                        error_code,
                        ..
                    } => reports.push((carrier_message_id, status, error_code)),
                    RecipientEvent::ReplyReceived {
                        message_id,
                        body,
                        conversation,
                        keyword,
                        ..
                    } if ours(&conversation) => {
                        thread.needs_opt_out_review = keyword == Some(Keyword::LikelyOptOut);
                        thread.messages.push(ThreadEntry {
                            message_id,
                            direction: "inbound",
                            kind: "inbound".into(),
                            body,
                            at,
                            status: None,
                            error_code: None,
                            keyword,
                            texter_id: None,
                        });
                    }
                    RecipientEvent::SurveyAnswerRecorded {
                        conversation,
                        question_id,
                        answer,
                        recorded_by,
                    } if conversation.conversation_id == id => {
                        thread
                            .answers
                            .retain(|existing| existing.question_id != question_id);
                        thread.answers.push(Answer {
                            question_id,
                            answer,
                            recorded_by,
                            recorded_at: at,
                        });
                    }
                    _ => {}
                }
            }
            if page.len() < PAGE {
                break;
            }
            from += PAGE as u64;
        }
        for (carrier_message_id, status, error_code) in reports {
            if let Some(&i) = by_carrier.get(&carrier_message_id) {
                let moves = delivery
                    .get(&i)
                    .is_none_or(|current| current.may_become(status));
                if moves {
                    delivery.insert(i, status);
                    thread.messages[i].status = Some(status.as_str().into());
                    thread.messages[i].error_code = error_code;
                }
            }
        }
        if thread.opted_out {
            thread.needs_opt_out_review = false;
        }
        if let Some(handling) = state.handling.get(&id) {
            thread.holder = handling.holder();
            thread.texter_id = handling.reference.texter_id;
            thread.escalation_reason.clone_from(&handling.escalation);
            thread.tags = handling
                .tags
                .iter()
                .map(|(tag_id, name)| AppliedTag {
                    tag_id: *tag_id,
                    name: name.clone(),
                })
                .collect();
        }
        Ok(thread)
    }

    /// The texter records that the voter wants no more texts; optionally
    /// the organization's confirmation goes out (the one automated text).
    pub async fn mark_opt_out(
        &self,
        caller: &Caller,
        id: ConversationId,
        send_confirmation: bool,
    ) -> Result<Option<u64>, AppError> {
        caller
            .require(Permission::Send)
            .or_else(|_| caller.require(Permission::AssignContacts))?;
        let conversation = self.conversation_in_reach(caller, id, true).await?;
        let phone = PhoneNumber::from_e164(&conversation.phone).map_err(corrupt)?;
        let reference = ConversationRef {
            conversation_id: id,
            campaign_id: conversation.campaign_id,
            texter_id: conversation.texter_id,
        };
        let confirmation = if send_confirmation {
            let carrier = self.carrier_for(caller.org_id).await?.ok_or_else(|| {
                AppError::Conflict("no carrier is configured to send the confirmation".into())
            })?;
            Some(carrier.texts.opt_out_confirmation.clone())
        } else {
            None
        };
        let stream = recipient::stream_id(caller.org_id, &phone);
        execute(self, &stream, &caller.metadata(), |state| {
            Ok(recipient::decide_manual_opt_out(
                state,
                &phone,
                OptOutSource::Texter,
                Some(reference),
                confirmation.as_deref().map(|body| (MessageId::new(), body)),
            ))
        })
        .await
    }

    /// Records the voter's answer to one of the campaign's survey questions
    /// (a later answer to the same question replaces it).
    pub async fn record_answer(
        &self,
        caller: &Caller,
        id: ConversationId,
        question_id: &str,
        answer: &str,
    ) -> Result<u64, AppError> {
        caller
            .require(Permission::Send)
            .or_else(|_| caller.require(Permission::AssignContacts))?;
        let conversation = self.conversation_in_reach(caller, id, true).await?;
        let campaign = self
            .sending_campaign(caller, conversation.campaign_id, None)
            .await?;
        let question = campaign
            .questions
            .iter()
            .find(|question| question.id == question_id)
            .ok_or_else(|| AppError::Invalid {
                field: "question_id",
                message: format!("the campaign has no question {question_id:?}"),
            })?;
        let answer = answer.trim();
        let valid = if question.answers.is_empty() {
            !answer.is_empty() && answer.chars().count() <= MAX_ANSWER
        } else {
            question.answers.iter().any(|choice| choice == answer)
        };
        if !valid {
            return Err(AppError::Invalid {
                field: "answer",
                message: if question.answers.is_empty() {
                    format!("answer must be 1 to {MAX_ANSWER} characters")
                } else {
                    format!("answer must be one of: {}", question.answers.join(", "))
                },
            });
        }
        let recorded_by = match caller.member_id {
            Some(member) => member,
            None => texter_of(caller)?,
        };
        let phone = PhoneNumber::from_e164(&conversation.phone).map_err(corrupt)?;
        let event = RecipientEvent::SurveyAnswerRecorded {
            conversation: ConversationRef {
                conversation_id: id,
                campaign_id: conversation.campaign_id,
                texter_id: conversation.texter_id,
            },
            question_id: question.id.clone(),
            answer: answer.to_owned(),
            recorded_by,
        };
        self.append_any(
            &recipient::stream_id(caller.org_id, &phone),
            &[event],
            &caller.metadata(),
        )
        .await
    }
}
