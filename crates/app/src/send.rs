//! Sending: the texter's queue (each contact with its rendered message and a
//! click token) and the click that sends one message. Every check a click
//! faces is made here or in `recipient::decide_click`; every refusal is
//! recorded as an event with its reason.

use chrono::{DateTime, Utc};
use serde::Serialize;
use textbank_domain::StreamId;
use textbank_domain::campaign::{CannedResponse, parse_texting_hours};
use textbank_domain::message::{
    BlockReason, BlockedAttempt, ClickRecord, HoursEvidence, MessageKind, body_hash,
};
use textbank_domain::phone::PhoneNumber;
use textbank_domain::recipient::{
    self, ClickAttempt, ClickDecision, RecipientEvent, RecipientState,
};
use textbank_domain::segments::{self, Encoding};
use textbank_domain::template::Template;
use textbank_domain::texter::{self, TexterEvent};
use textbank_domain::texting_hours::{self, TextingWindow};
use textbank_domain::timezone::ContactZone;
use textbank_domain::{
    CampaignId, ConversationId, EventMetadata, ListId, MemberId, MessageId, Permission,
};
use textbank_projections::conversations::{self, Conversations, SendingCampaign};
use textbank_projections::directory;
use textbank_projections::opt_outs::OptOuts;
use textbank_store::ExpectedVersion;
use uuid::Uuid;

use crate::click_token::{ClickToken, TokenError};
use crate::command::to_new_events;
use crate::recipient_cache::Recipient;
use crate::{App, AppError, Caller};

/// Most contacts one queue request returns.
pub const MAX_QUEUE_LIMIT: u32 = 50;
/// Longest idempotency key accepted.
const MAX_IDEMPOTENCY_KEY: usize = 200;
/// Longest reply a texter may type: ten concatenated segments.
pub const MAX_REPLY_CHARS: usize = 1_600;
/// Contacts looked at per queue request before giving up on finding ones
/// inside their texting hours (a whole time zone may be closed).
const QUEUE_SCAN_LIMIT: u32 = 2_000;
/// Tries before a click gives up on a recipient stream that keeps moving.
const ATTEMPTS: usize = 8;

/// A contact ready to be texted, as the texter's screen shows it.
#[derive(Debug, Clone, Serialize)]
pub struct QueuedMessage {
    pub phone: String,
    pub first_name: String,
    pub last_name: String,
    pub list_id: ListId,
    pub body: String,
    pub segments: u32,
    pub encoding: Encoding,
    pub click_token: String,
    pub presented_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The recipient's wall-clock time, when known.
    pub local_time: Option<chrono::DateTime<chrono::FixedOffset>>,
}

/// Why the queue is empty when contacts remain.
#[derive(Debug, Clone, Serialize)]
pub struct QueueHold {
    pub code: &'static str,
    pub message: String,
    pub next_open: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Queue {
    pub campaign_id: CampaignId,
    pub campaign_status: String,
    pub messages: Vec<QueuedMessage>,
    /// Assigned contacts still waiting for their initial message.
    pub remaining: u64,
    /// Initial messages the caller has sent in this campaign.
    pub sent: u64,
    /// Contacts skipped now because it is outside their texting hours.
    pub held_for_quiet_hours: u64,
    pub hold: Option<QueueHold>,
}

/// A click as the texter's client sends it.
#[derive(Debug, Clone)]
pub struct Click {
    pub click_token: String,
    pub clicked_at: Option<DateTime<Utc>>,
    pub idempotency_key: Option<String>,
}

/// The message a click sent (or had already sent).
#[derive(Debug, Clone, Serialize)]
pub struct Sent {
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    /// A log position at or after the message: pass it as `min_position`.
    pub position: u64,
    /// True when this click had been made before; nothing new was sent.
    pub duplicate: bool,
}

/// What a texter types (or picks) in a conversation.
#[derive(Debug, Clone)]
pub enum ReplyBody {
    Text(String),
    Canned(usize),
}

pub(crate) fn window(campaign: &SendingCampaign) -> Result<TextingWindow, AppError> {
    parse_texting_hours(&campaign.texting_start, &campaign.texting_end)
        .map_err(|err| AppError::Store(textbank_store::StoreError::Corrupt(err.to_string())))
}

fn hours_evidence(check: &texting_hours::HoursCheck, window: &TextingWindow) -> HoursEvidence {
    HoursEvidence {
        allowed: check.allowed,
        local_time: check.local_time,
        zone: check.zone,
        zone_source: check.source,
        window: format!(
            "{}-{}",
            window.start().format("%H:%M"),
            window.end().format("%H:%M")
        ),
    }
}

pub(crate) fn texter_of(caller: &Caller) -> Result<MemberId, AppError> {
    caller.member_id.ok_or_else(|| {
        AppError::Forbidden("sending needs an API key that belongs to a member".into())
    })
}

fn check_idempotency_key(key: &Option<String>) -> Result<(), AppError> {
    match key {
        Some(key)
            if key.is_empty()
                || key.len() > MAX_IDEMPOTENCY_KEY
                || !key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Err(AppError::Invalid {
                field: "Idempotency-Key",
                message: format!(
                    "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
                ),
            })
        }
        _ => Ok(()),
    }
}

impl App {
    /// The texter's next contacts in `campaign`, each with its rendered
    /// message and a click token. Waits until the conversations read model
    /// has every click made before this request, so nothing already sent is
    /// offered again.
    pub async fn texter_queue(
        &self,
        caller: &Caller,
        campaign_id: CampaignId,
        limit: u32,
    ) -> Result<Queue, AppError> {
        caller.require(Permission::Send)?;
        let texter = texter_of(caller)?;
        if !(1..=MAX_QUEUE_LIMIT).contains(&limit) {
            return Err(AppError::Invalid {
                field: "limit",
                message: format!("limit must be between 1 and {MAX_QUEUE_LIMIT}"),
            });
        }
        let campaign =
            conversations::sending_campaign(self.database(), caller.org_id, campaign_id, None)
                .await?
                .ok_or(AppError::NotFound("campaign"))?;
        // Everything clicked or opted out before this request is left out.
        let head = self.events().head_position().await?;
        self.wait_for_projection(&Conversations, head).await?;
        self.wait_for_projection(&OptOuts, head).await?;
        let remaining =
            conversations::queue_remaining(self.database(), campaign_id, texter).await?;
        let sent =
            conversations::texter_sent(self.database(), caller.org_id, campaign_id, texter).await?;
        let mut queue = Queue {
            campaign_id,
            campaign_status: campaign.status.clone(),
            messages: Vec::new(),
            remaining,
            sent,
            held_for_quiet_hours: 0,
            hold: None,
        };
        if campaign.status != "active" {
            queue.hold = Some(QueueHold {
                code: BlockReason::CampaignNotOpen.code(),
                message: format!("the campaign is {}; sending is closed", campaign.status),
                next_open: None,
            });
            return Ok(queue);
        }
        let window = window(&campaign)?;
        let template = Template::parse_unchecked(&campaign.initial_message);
        let texter_name = directory::member(self.database(), caller.org_id, texter)
            .await?
            .map(|member| member.name)
            .unwrap_or_default();
        let now = self.clock().now();
        let expires_at = now + self.send_settings().click_token_ttl;
        let key = self.server_key().click_token_key();
        let mut next_open: Option<DateTime<Utc>> = None;
        let mut after = String::new();
        let mut scanned = 0;
        while queue.messages.len() < limit as usize && scanned < QUEUE_SCAN_LIMIT {
            let page =
                conversations::queue_candidates(self.database(), campaign_id, texter, &after, 200)
                    .await?;
            let Some(last) = page.last() else { break };
            after = last.phone.clone();
            scanned += page.len() as u32;
            for contact in page {
                let check = texting_hours::check(now, &contact.zone, &window);
                if !check.allowed {
                    queue.held_for_quiet_hours += 1;
                    next_open = match (next_open, check.next_open) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    continue;
                }
                if queue.messages.len() == limit as usize {
                    continue;
                }
                let phone = PhoneNumber::from_e164(&contact.phone).map_err(|err| {
                    AppError::Store(textbank_store::StoreError::Corrupt(err.to_string()))
                })?;
                let body = template.render(|field| match field {
                    "first_name" => Some(contact.first_name.as_str()),
                    "last_name" => Some(contact.last_name.as_str()),
                    "texter_name" => Some(texter_name.as_str()),
                    other => contact.fields.get(other).map(String::as_str),
                });
                let info = segments::analyze(&body);
                let token = ClickToken {
                    token_id: Uuid::now_v7(),
                    org_id: caller.org_id,
                    campaign_id,
                    texter_id: texter,
                    phone,
                    list_id: Some(contact.list_id),
                    body_sha256: body_hash(&body),
                    body: body.clone(),
                    script_version: campaign.script_version,
                    zone: contact.zone,
                    presented_at: now,
                    expires_at,
                };
                queue.messages.push(QueuedMessage {
                    phone: contact.phone,
                    first_name: contact.first_name,
                    last_name: contact.last_name,
                    list_id: contact.list_id,
                    body,
                    segments: info.segments,
                    encoding: info.encoding,
                    click_token: token.sign(&key),
                    presented_at: now,
                    expires_at,
                    local_time: check.local_time,
                });
            }
        }
        if queue.messages.is_empty() && queue.held_for_quiet_hours > 0 {
            queue.hold = Some(QueueHold {
                code: BlockReason::QuietHours.code(),
                message: "it is outside texting hours for the contacts left".into(),
                next_open,
            });
        }
        Ok(queue)
    }

    /// One click, one message: verifies the click token, then decides on the
    /// recipient stream and appends `MessageSendClicked` — or records why
    /// not, and says so.
    pub async fn click_send(&self, caller: &Caller, click: Click) -> Result<Sent, AppError> {
        caller.require(Permission::Send)?;
        let texter = texter_of(caller)?;
        check_idempotency_key(&click.idempotency_key)?;
        let received_at = self.clock().now();
        let blocked = |reason: BlockReason, detail: String| BlockedAttempt {
            attempt_id: Uuid::now_v7(),
            reason,
            detail,
            kind: MessageKind::Initial,
            texter_id: texter,
            key_id: caller.key_id,
            campaign_id: None,
            conversation_id: None,
            phone: None,
            token_id: None,
            idempotency_key: click.idempotency_key.clone(),
            presented_at: None,
            clicked_at: click.clicked_at,
            received_at,
            ip: caller.ip.clone(),
            user_agent: caller.user_agent.clone(),
            hours: None,
        };
        let token =
            match ClickToken::verify(&click.click_token, &self.server_key().click_token_key()) {
                Ok(token) if token.org_id == caller.org_id => token,
                Ok(_) | Err(TokenError::BadSignature) => {
                    let attempt = blocked(
                        BlockReason::TokenInvalid,
                        "the click token was not issued by this server for this organization"
                            .into(),
                    );
                    return Err(self.record_texter_block(caller, attempt).await);
                }
                Err(err) => {
                    let attempt = blocked(BlockReason::TokenInvalid, err.to_string());
                    return Err(self.record_texter_block(caller, attempt).await);
                }
            };
        // From here the token is genuine: its phone can be trusted, and the
        // refusal is recorded on the recipient's own stream.
        let stream = recipient::stream_id(caller.org_id, &token.phone);
        let with_token = |reason: BlockReason, detail: String| BlockedAttempt {
            campaign_id: Some(token.campaign_id),
            phone: Some(token.phone.clone()),
            token_id: Some(token.token_id),
            presented_at: Some(token.presented_at),
            ..blocked(reason, detail)
        };
        if token.texter_id != texter {
            let attempt = with_token(
                BlockReason::NotYourToken,
                "this click token was issued to another texter".into(),
            );
            return Err(self.record_block(caller, &stream, attempt, None).await);
        }
        if received_at >= token.expires_at {
            let attempt = with_token(
                BlockReason::TokenExpired,
                format!(
                    "the click token expired at {}; fetch the queue again",
                    token.expires_at
                ),
            );
            return Err(self.record_block(caller, &stream, attempt, None).await);
        }
        let shown_for = received_at - token.presented_at;
        let min_click = self.send_settings().min_click_interval;
        if shown_for < min_click {
            let attempt = with_token(
                BlockReason::TooFast,
                format!(
                    "clicked {} ms after the message was shown; a person needs at least {} ms",
                    shown_for.num_milliseconds(),
                    min_click.num_milliseconds()
                ),
            );
            return Err(self.record_block(caller, &stream, attempt, None).await);
        }
        let campaign = conversations::sending_campaign(
            self.database(),
            caller.org_id,
            token.campaign_id,
            Some(token.phone.as_str()),
        )
        .await?
        .ok_or(AppError::NotFound("campaign"))?;
        if campaign.assigned_to != Some(texter) {
            let attempt = with_token(
                BlockReason::NotAssigned,
                "this contact is no longer assigned to you".into(),
            );
            return Err(self.record_block(caller, &stream, attempt, None).await);
        }
        let window = window(&campaign)?;
        let check = texting_hours::check(received_at, &token.zone, &window);
        let info = segments::analyze(&token.body);
        let message_id = MessageId::new();
        let record = ClickRecord {
            message_id,
            conversation_id: ConversationId::from_uuid(*message_id.as_uuid()),
            kind: MessageKind::Initial,
            campaign_id: token.campaign_id,
            list_id: token.list_id,
            texter_id: texter,
            key_id: caller.key_id,
            phone: token.phone.clone(),
            segments: info.segments,
            encoding: encoding_name(info.encoding),
            body_sha256: token.body_sha256.clone(),
            body: token.body.clone(),
            script_version: Some(token.script_version),
            token_id: Some(token.token_id),
            idempotency_key: click.idempotency_key.clone(),
            presented_at: Some(token.presented_at),
            clicked_at: click.clicked_at,
            received_at,
            ip: caller.ip.clone(),
            user_agent: caller.user_agent.clone(),
            checked_recipient_version: None,
            hours: hours_evidence(&check, &window),
        };
        let attempt = ClickAttempt {
            record,
            campaign_open: campaign.status == "active",
        };
        self.decide_and_append(caller, &stream, attempt, check.next_open)
            .await
    }

    /// A texter's reply in a conversation: one click, one message, with the
    /// same checks as the first message (but it may follow it).
    pub async fn reply(
        &self,
        caller: &Caller,
        conversation_id: ConversationId,
        body: ReplyBody,
        clicked_at: Option<DateTime<Utc>>,
        idempotency_key: Option<String>,
    ) -> Result<Sent, AppError> {
        caller.require(Permission::Send)?;
        let texter = texter_of(caller)?;
        check_idempotency_key(&idempotency_key)?;
        let received_at = self.clock().now();
        let conversation = self.conversation_for(caller, conversation_id).await?;
        if conversation.texter_id != texter {
            return Err(AppError::NotFound("conversation"));
        }
        let phone = PhoneNumber::from_e164(&conversation.phone)
            .map_err(|err| AppError::Store(textbank_store::StoreError::Corrupt(err.to_string())))?;
        let campaign = conversations::sending_campaign(
            self.database(),
            caller.org_id,
            conversation.campaign_id,
            None,
        )
        .await?
        .ok_or(AppError::NotFound("campaign"))?;
        let contact = conversations::conversation_contact(
            self.database(),
            caller.org_id,
            conversation.campaign_id,
            &conversation.phone,
        )
        .await?;
        let (body, script_version) = match body {
            ReplyBody::Text(text) => {
                let text = text.trim().to_owned();
                if text.is_empty() || text.chars().count() > MAX_REPLY_CHARS {
                    return Err(AppError::Invalid {
                        field: "body",
                        message: format!("body must be 1 to {MAX_REPLY_CHARS} characters"),
                    });
                }
                (text, None)
            }
            ReplyBody::Canned(index) => {
                let canned: Vec<CannedResponse> = serde_json::from_str(&campaign.canned_responses)
                    .map_err(|err| {
                        AppError::Store(textbank_store::StoreError::Corrupt(err.to_string()))
                    })?;
                let response = canned.get(index).ok_or_else(|| AppError::Invalid {
                    field: "canned_response_id",
                    message: format!("the campaign has {} canned responses", canned.len()),
                })?;
                let texter_name = directory::member(self.database(), caller.org_id, texter)
                    .await?
                    .map(|member| member.name)
                    .unwrap_or_default();
                let body = Template::parse_unchecked(&response.body).render(|field| {
                    let contact = contact.as_ref()?;
                    match field {
                        "texter_name" => Some(texter_name.as_str()),
                        "first_name" => Some(contact.first_name.as_str()),
                        "last_name" => Some(contact.last_name.as_str()),
                        other => contact.fields.get(other).map(String::as_str),
                    }
                });
                (body, Some(campaign.script_version))
            }
        };
        let window = window(&campaign)?;
        let zone = contact.map_or(ContactZone::UNKNOWN, |contact| contact.zone);
        let check = texting_hours::check(received_at, &zone, &window);
        let stream = recipient::stream_id(caller.org_id, &phone);
        let message_id = MessageId::new();
        let info = segments::analyze(&body);
        let record = ClickRecord {
            message_id,
            conversation_id,
            kind: MessageKind::Reply,
            campaign_id: conversation.campaign_id,
            list_id: None,
            texter_id: texter,
            key_id: caller.key_id,
            phone,
            segments: info.segments,
            encoding: encoding_name(info.encoding),
            body_sha256: body_hash(&body),
            body,
            script_version,
            token_id: None,
            idempotency_key,
            presented_at: None,
            clicked_at,
            received_at,
            ip: caller.ip.clone(),
            user_agent: caller.user_agent.clone(),
            checked_recipient_version: None,
            hours: hours_evidence(&check, &window),
        };
        let attempt = ClickAttempt {
            record,
            campaign_open: campaign.status == "active",
        };
        self.decide_and_append(caller, &stream, attempt, check.next_open)
            .await
    }

    /// Decides the click on the recipient stream and appends under the
    /// version it read; a concurrent change (an opt-out) means deciding again.
    async fn decide_and_append(
        &self,
        caller: &Caller,
        stream: &StreamId,
        mut attempt: ClickAttempt,
        next_open: Option<DateTime<Utc>>,
    ) -> Result<Sent, AppError> {
        let metadata = caller.metadata();
        let mut recipient = Recipient::new(self, stream.clone());
        for _ in 0..ATTEMPTS {
            let loaded = recipient.load().await?;
            attempt.record.checked_recipient_version = loaded.version;
            let decision = recipient::decide_click(&loaded.state, &attempt);
            if recipient.was_cached() && !matches!(decision, ClickDecision::Send(_)) {
                // A refusal or a duplicate is answered from the store itself.
                recipient.reload();
                continue;
            }
            match decision {
                ClickDecision::Send(event) => {
                    // On a conflict (an opt-out came in): decide again.
                    if let Some(result) = recipient.append_at(&loaded, &[event], &metadata).await? {
                        return Ok(Sent {
                            message_id: attempt.record.message_id,
                            conversation_id: attempt.record.conversation_id,
                            position: result.last_position,
                            duplicate: false,
                        });
                    }
                }
                ClickDecision::Duplicate(message_id) => {
                    let conversation_id = conversation_of(&loaded.state, message_id)
                        .unwrap_or(attempt.record.conversation_id);
                    return Ok(Sent {
                        message_id,
                        conversation_id,
                        position: self.events().head_position().await?,
                        duplicate: true,
                    });
                }
                ClickDecision::Blocked(reason, detail) => {
                    let record = &attempt.record;
                    let blocked = BlockedAttempt {
                        attempt_id: Uuid::now_v7(),
                        reason,
                        detail,
                        kind: record.kind,
                        texter_id: record.texter_id,
                        key_id: record.key_id,
                        campaign_id: Some(record.campaign_id),
                        conversation_id: (record.kind == MessageKind::Reply)
                            .then_some(record.conversation_id),
                        phone: Some(record.phone.clone()),
                        token_id: record.token_id,
                        idempotency_key: record.idempotency_key.clone(),
                        presented_at: record.presented_at,
                        clicked_at: record.clicked_at,
                        received_at: record.received_at,
                        ip: record.ip.clone(),
                        user_agent: record.user_agent.clone(),
                        hours: Some(record.hours.clone()),
                    };
                    let next_open = (reason == BlockReason::QuietHours)
                        .then_some(next_open)
                        .flatten();
                    return Err(self.record_block(caller, stream, blocked, next_open).await);
                }
            }
        }
        Err(AppError::Conflict(format!(
            "{stream} kept changing; try again"
        )))
    }

    /// Appends a refused attempt to the recipient stream and returns the
    /// error to answer with (or the failure to record it).
    async fn record_block(
        &self,
        caller: &Caller,
        stream: &StreamId,
        attempt: BlockedAttempt,
        next_open: Option<DateTime<Utc>>,
    ) -> AppError {
        let reason = attempt.reason;
        let message = attempt.detail.clone();
        let event = RecipientEvent::SendBlocked(Box::new(attempt));
        if let Err(err) = self.append_any(stream, &[event], &caller.metadata()).await {
            return err;
        }
        AppError::Blocked {
            reason,
            message,
            next_open,
        }
    }

    /// A refusal whose phone cannot be trusted goes to the texter's stream.
    async fn record_texter_block(&self, caller: &Caller, attempt: BlockedAttempt) -> AppError {
        let stream = texter::stream_id(caller.org_id, attempt.texter_id);
        let reason = attempt.reason;
        let message = attempt.detail.clone();
        let event = TexterEvent::SendBlocked(Box::new(attempt));
        if let Err(err) = self.append_any(&stream, &[event], &caller.metadata()).await {
            return err;
        }
        AppError::blocked(reason, message)
    }

    pub(crate) async fn append_any<E: textbank_domain::DomainEvent>(
        &self,
        stream: &StreamId,
        events: &[E],
        metadata: &EventMetadata,
    ) -> Result<u64, AppError> {
        let events = to_new_events(events, metadata)?;
        Ok(self
            .events()
            .append(stream, ExpectedVersion::Any, events)
            .await?
            .last_position)
    }

    /// The conversation, if it is the caller's org's and the caller may see it.
    pub(crate) async fn conversation_for(
        &self,
        caller: &Caller,
        id: ConversationId,
    ) -> Result<conversations::ConversationRow, AppError> {
        let found = conversations::conversation(self.database(), caller.org_id, id).await?;
        let found = match found {
            Some(found) => Some(found),
            None => {
                // A conversation opened a moment ago may not be projected yet.
                let head = self.events().head_position().await?;
                self.wait_for_projection(&Conversations, head).await?;
                conversations::conversation(self.database(), caller.org_id, id).await?
            }
        };
        found.ok_or(AppError::NotFound("conversation"))
    }
}

fn conversation_of(state: &RecipientState, message: MessageId) -> Option<ConversationId> {
    state
        .outbound
        .get(&message)
        .and_then(|outbound| outbound.conversation)
        .map(|conversation| conversation.conversation_id)
}

fn encoding_name(encoding: Encoding) -> String {
    match encoding {
        Encoding::Gsm7 => "gsm7".into(),
        Encoding::Ucs2 => "ucs2".into(),
    }
}
