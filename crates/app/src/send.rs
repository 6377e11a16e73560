//! Sending: the texter's queue (each contact with its rendered message and a
//! click token) and the click that sends one message. This layer gathers
//! the facts (the time, the verified token, the campaign, the recipient's
//! stream); the rules themselves are `textbank_domain::click`. Every refusal
//! is recorded as an event with its reason.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use textbank_domain::StreamId;
use textbank_domain::campaign::CampaignStatus;
use textbank_domain::click::{self, ClickAttempt, ClickDecision, Refusal, TokenClaims};
use textbank_domain::message::{
    BlockReason, BlockedAttempt, ClickEvidence, ClickRecord, HoursEvidence, MessageKind, body_hash,
};
use textbank_domain::phone::PhoneNumber;
use textbank_domain::recipient::{self, RecipientEvent, RecipientState};
use textbank_domain::segments::{self, Encoding};
use textbank_domain::template::Template;
use textbank_domain::texter::{self, TexterEvent};
use textbank_domain::texting_hours::{self, TextingWindow};
use textbank_domain::timezone::ContactZone;
use textbank_domain::{
    CampaignId, ConversationId, EventMetadata, ListId, MemberId, MessageId, Permission,
};
use textbank_projections::campaign_metrics;
use textbank_projections::conversations::{self, Conversations, SendingCampaign};
use textbank_projections::directory;
use textbank_projections::opt_outs::OptOuts;
use textbank_store::{ExpectedVersion, idempotency_keys};
use uuid::Uuid;

use crate::click_token::{ClickToken, TokenError};
use crate::command::{self, Decision, to_new_events};
use crate::stage_times::Stage;
use crate::{App, AppError, Caller};

/// Most contacts one queue request returns.
pub const MAX_QUEUE_LIMIT: u32 = 50;
/// Longest idempotency key accepted.
const MAX_IDEMPOTENCY_KEY: usize = 200;
/// Longest reply a texter may type: ten concatenated segments.
pub const MAX_REPLY_CHARS: usize = 1_600;
/// Contacts of open zones looked at per queue request before giving up on
/// finding ones whose message can be sent (all may be held for length).
const QUEUE_SCAN_LIMIT: u32 = 2_000;
/// Contacts read per query while filling a queue.
const QUEUE_PAGE: u32 = 200;

/// A contact ready to be texted, as the texter's screen shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QueueHold {
    pub code: &'static str,
    pub message: String,
    pub next_open: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Queue {
    pub campaign_id: CampaignId,
    pub campaign_status: CampaignStatus,
    pub messages: Vec<QueuedMessage>,
    /// Assigned contacts still waiting for their initial message.
    pub remaining: u64,
    /// Initial messages the caller has sent in this campaign.
    pub sent: u64,
    /// Contacts skipped now because it is outside their texting hours.
    pub held_for_quiet_hours: u64,
    /// Contacts skipped because their rendered message is over the length
    /// limits (a field far too long): they need the data or script fixed.
    pub held_for_length: u64,
    /// Contacts that would be offered now, held because the organization
    /// has no carrier to send with.
    pub held_for_carrier: u64,
    /// The caller's initial messages in this campaign that failed (the
    /// carrier refused them, or there was no carrier): shown to the texter,
    /// who may need to tell staff. A message that never reached a carrier
    /// leaves its contact in the queue, to be sent with a new click.
    pub failed: u64,
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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
        let campaign = self.sending_campaign(caller, campaign_id, None).await?;
        // Everything clicked or opted out before this request is left out.
        let head = self.events().head_position().await?;
        self.wait_for_projection(&Conversations, head).await?;
        self.wait_for_projection(&OptOuts, head).await?;
        // Texting hours are checked once per zone: the contacts of the zones
        // open now are offered however many of closed zones come first.
        let zones = conversations::queue_zones(self.database(), campaign_id, texter).await?;
        let remaining = zones.iter().map(|(_, waiting)| waiting).sum();
        let sent =
            conversations::texter_sent(self.database(), caller.org_id, campaign_id, texter).await?;
        let failed = campaign_metrics::texter_failed(self.database(), campaign_id, texter).await?;
        let mut queue = Queue {
            campaign_id,
            campaign_status: campaign.status,
            messages: Vec::new(),
            remaining,
            sent,
            held_for_quiet_hours: 0,
            held_for_length: 0,
            held_for_carrier: 0,
            failed,
            hold: None,
        };
        if !campaign.status.is_open() {
            queue.hold = Some(QueueHold {
                code: BlockReason::CampaignNotOpen.code(),
                message: format!("the campaign is {}; sending is closed", campaign.status),
                next_open: None,
            });
            return Ok(queue);
        }
        let carrier_ready = self.carrier_ready(caller.org_id).await?;
        let window = &campaign.window;
        let template = Template::parse_unchecked(&campaign.initial_message);
        let texter_name = directory::member(self.database(), caller.org_id, texter)
            .await?
            .map(|member| member.name)
            .unwrap_or_default();
        let now = self.clock().now();
        let expires_at = now + self.send_settings().click_token_ttl;
        let key = self.server_key().click_token_key();
        let mut next_open: Option<DateTime<Utc>> = None;
        let mut open_zones = Vec::new();
        for (zone, waiting) in zones {
            let contact_zone: ContactZone = serde_json::from_str(&zone).map_err(inconsistent)?;
            let check = texting_hours::check(now, &contact_zone, window);
            if check.allowed {
                open_zones.push((zone, check));
            } else {
                queue.held_for_quiet_hours += waiting;
                next_open = match (next_open, check.next_open) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        open_zones.sort_by(|(a, _), (b, _)| a.cmp(b));
        let mut scanned = 0;
        let offered = |queue: &Queue| queue.messages.len() + queue.held_for_carrier as usize;
        for (zone, check) in &open_zones {
            let mut after = String::new();
            while offered(&queue) < limit as usize && scanned < QUEUE_SCAN_LIMIT {
                let page = conversations::queue_candidates(
                    self.database(),
                    campaign_id,
                    texter,
                    zone,
                    &after,
                    QUEUE_PAGE,
                )
                .await?;
                let Some(last) = page.last() else { break };
                after = last.phone.clone();
                scanned += page.len() as u32;
                for contact in page {
                    if offered(&queue) == limit as usize {
                        break;
                    }
                    let phone = PhoneNumber::from_e164(&contact.phone).map_err(inconsistent)?;
                    let body = template.render(|field| match field {
                        "first_name" => Some(contact.first_name.as_str()),
                        "last_name" => Some(contact.last_name.as_str()),
                        "texter_name" => Some(texter_name.as_str()),
                        other => contact.fields.get(other).map(String::as_str),
                    });
                    let info = segments::analyze(&body);
                    let limits = self.send_settings().message_limits;
                    let too_long =
                        click::check_message_length(&body, info.segments, limits).is_err();
                    let held_for = if too_long {
                        queue.held_for_length += 1;
                        Some(BlockReason::MessageTooLong)
                    } else if !carrier_ready {
                        queue.held_for_carrier += 1;
                        Some(BlockReason::NoCarrier)
                    } else {
                        None
                    };
                    if let Some(reason) = held_for {
                        let held = RecipientEvent::ContactHeld {
                            campaign_id,
                            texter_id: texter,
                            reason,
                            script_version: campaign.script_version,
                            chars: u32::try_from(body.chars().count()).unwrap_or(u32::MAX),
                            segments: info.segments,
                        };
                        self.record_hold(caller, &phone, held).await?;
                        continue;
                    }
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
        }
        if !carrier_ready && queue.remaining > 0 {
            queue.hold = Some(QueueHold {
                code: BlockReason::NoCarrier.code(),
                message: "the organization has no carrier configured, so nothing can be sent; an \
                          owner or admin must set one up"
                    .into(),
                next_open: None,
            });
        } else if queue.messages.is_empty() && queue.held_for_quiet_hours > 0 {
            queue.hold = Some(QueueHold {
                code: BlockReason::QuietHours.code(),
                message: "it is outside texting hours for the contacts left".into(),
                next_open,
            });
        } else if queue.messages.is_empty() && queue.held_for_length > 0 {
            let limits = self.send_settings().message_limits;
            queue.hold = Some(QueueHold {
                code: BlockReason::MessageTooLong.code(),
                message: format!(
                    "the message for the contacts left renders longer than {} characters or {} \
                     segments; a manager needs to fix the script or the contact data",
                    limits.max_chars, limits.max_segments
                ),
                next_open: None,
            });
        }
        Ok(queue)
    }

    /// One click, one message: verifies the click token, checks the click
    /// rules that need no stream, then decides on the recipient stream and
    /// appends `MessageSendClicked` — or records why not, and says so.
    pub async fn click_send(&self, caller: &Caller, click: Click) -> Result<Sent, AppError> {
        caller.require(Permission::Send)?;
        let texter = texter_of(caller)?;
        let started = Instant::now();
        let received_at = self.clock().now();
        self.check_click_request(&click.idempotency_key, click.clicked_at, received_at)?;
        let evidence = ClickEvidence {
            kind: MessageKind::Initial,
            texter_id: texter,
            key_id: caller.key_id,
            token_id: None,
            idempotency_key: click.idempotency_key.clone(),
            presented_at: None,
            clicked_at: click.clicked_at,
            received_at,
            ip: caller.ip.clone(),
            user_agent: caller.user_agent.clone(),
        };
        let untrusted = |refusal: Refusal, evidence: &ClickEvidence| BlockedAttempt {
            attempt_id: Uuid::now_v7(),
            reason: refusal.reason,
            detail: refusal.detail,
            campaign_id: None,
            conversation_id: None,
            phone: None,
            hours: None,
            evidence: evidence.clone(),
        };
        let token =
            match ClickToken::verify(&click.click_token, &self.server_key().click_token_key()) {
                Ok(token) => token,
                Err(err) => {
                    let detail = match err {
                        TokenError::BadSignature => {
                            "the click token was not issued by this server for this organization"
                                .to_owned()
                        }
                        other => other.to_string(),
                    };
                    let attempt =
                        untrusted(Refusal::new(BlockReason::TokenInvalid, detail), &evidence);
                    return Err(self.record_texter_block(caller, attempt).await);
                }
            };
        let claims = TokenClaims {
            org_id: token.org_id,
            texter_id: token.texter_id,
            presented_at: token.presented_at,
            expires_at: token.expires_at,
        };
        let evidence = ClickEvidence {
            token_id: Some(token.token_id),
            presented_at: Some(token.presented_at),
            ..evidence
        };
        let stream = recipient::stream_id(caller.org_id, &token.phone);
        let info = segments::analyze(&token.body);
        let refuse_on_stream = |refusal: Refusal| BlockedAttempt {
            attempt_id: Uuid::now_v7(),
            reason: refusal.reason,
            detail: refusal.detail,
            campaign_id: Some(token.campaign_id),
            conversation_id: None,
            phone: Some(token.phone.clone()),
            hours: None,
            evidence: evidence.clone(),
        };
        let stateless = click::check_token_claims(&claims, caller.org_id, texter, received_at)
            .and_then(|()| {
                click::check_human_pace(
                    token.presented_at,
                    received_at,
                    self.send_settings().min_click_interval,
                )
            })
            .and_then(|()| {
                click::check_message_length(
                    &token.body,
                    info.segments,
                    self.send_settings().message_limits,
                )
            });
        match stateless {
            Ok(()) => {}
            // Another organization's token: its phone is not this org's, so
            // the refusal goes to the texter's stream.
            Err(refusal) if refusal.reason == BlockReason::TokenInvalid => {
                let attempt = untrusted(refusal, &evidence);
                return Err(self.record_texter_block(caller, attempt).await);
            }
            // A genuine token of this org: its phone can be trusted, and the
            // refusal is recorded on the recipient's own stream.
            Err(refusal) => {
                return Err(self
                    .record_block(caller, &stream, refuse_on_stream(refusal))
                    .await);
            }
        }
        self.stage_times().record(Stage::Checks, started.elapsed());
        let started = Instant::now();
        let campaign = self
            .sending_campaign(caller, token.campaign_id, Some(&token.phone))
            .await?;
        if let Err(refusal) = click::check_assignment(campaign.assigned_to, texter) {
            return Err(self
                .record_block(caller, &stream, refuse_on_stream(refusal))
                .await);
        }
        let check = texting_hours::check(received_at, &token.zone, &campaign.window);
        let message_id = MessageId::new();
        let record = ClickRecord {
            message_id,
            conversation_id: ConversationId::from_uuid(*message_id.as_uuid()),
            campaign_id: token.campaign_id,
            list_id: token.list_id,
            phone: token.phone.clone(),
            segments: info.segments,
            encoding: encoding_name(info.encoding),
            body_sha256: token.body_sha256.clone(),
            body: token.body.clone(),
            script_version: Some(token.script_version),
            checked_recipient_version: None,
            hours: hours_evidence(&check, &campaign.window),
            evidence,
        };
        let attempt = ClickAttempt {
            record,
            campaign_open: campaign.status.is_open(),
            carrier_ready: self.carrier_ready(caller.org_id).await?,
            staff: false,
        };
        self.stage_times()
            .record(Stage::Campaign, started.elapsed());
        self.send_click(caller, &stream, attempt, check.next_open)
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
        // Staff may answer in any conversation (an escalated one); each
        // reply is still one click, recorded with who clicked.
        let staff = caller.require(Permission::Send).is_err();
        if staff {
            caller.require(Permission::ManageConversations)?;
        }
        let texter = texter_of(caller)?;
        let received_at = self.clock().now();
        self.check_click_request(&idempotency_key, clicked_at, received_at)?;
        // Who holds it is decided again on the stream the reply appends to.
        let conversation = self
            .conversation_in_reach(caller, conversation_id, true)
            .await?;
        let phone = PhoneNumber::from_e164(&conversation.phone).map_err(inconsistent)?;
        let campaign = self
            .sending_campaign(caller, conversation.campaign_id, None)
            .await?;
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
                let response =
                    campaign
                        .canned_responses
                        .get(index)
                        .ok_or_else(|| AppError::Invalid {
                            field: "canned_response_id",
                            message: format!(
                                "the campaign has {} canned responses",
                                campaign.canned_responses.len()
                            ),
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
        let zone = contact.map_or(ContactZone::UNKNOWN, |contact| contact.zone);
        let check = texting_hours::check(received_at, &zone, &campaign.window);
        let stream = recipient::stream_id(caller.org_id, &phone);
        let info = segments::analyze(&body);
        let record = ClickRecord {
            message_id: MessageId::new(),
            conversation_id,
            campaign_id: conversation.campaign_id,
            list_id: None,
            phone,
            segments: info.segments,
            encoding: encoding_name(info.encoding),
            body_sha256: body_hash(&body),
            body,
            script_version,
            checked_recipient_version: None,
            hours: hours_evidence(&check, &campaign.window),
            evidence: ClickEvidence {
                kind: MessageKind::Reply,
                texter_id: texter,
                key_id: caller.key_id,
                token_id: None,
                idempotency_key,
                presented_at: None,
                clicked_at,
                received_at,
                ip: caller.ip.clone(),
                user_agent: caller.user_agent.clone(),
            },
        };
        let limits = self.send_settings().message_limits;
        if let Err(refusal) = click::check_message_length(&record.body, record.segments, limits) {
            let attempt = BlockedAttempt::of_click(&record, refusal.reason, refusal.detail);
            return Err(self.record_block(caller, &stream, attempt).await);
        }
        let attempt = ClickAttempt {
            record,
            campaign_open: campaign.status.is_open(),
            carrier_ready: self.carrier_ready(caller.org_id).await?,
            staff,
        };
        self.send_click(caller, &stream, attempt, check.next_open)
            .await
    }

    /// The checks on the request itself, before anything is looked up: a
    /// malformed idempotency key or a client clock far from the server's is
    /// bad input, not a refused click.
    fn check_click_request(
        &self,
        idempotency_key: &Option<String>,
        clicked_at: Option<DateTime<Utc>>,
        received_at: DateTime<Utc>,
    ) -> Result<(), AppError> {
        check_idempotency_key(idempotency_key)?;
        click::check_client_clock(
            clicked_at,
            received_at,
            self.send_settings().max_client_clock_skew,
        )
        .map_err(|message| AppError::Invalid {
            field: "clicked_at",
            message,
        })
    }

    /// Decides the click on the recipient stream through the command loop:
    /// a send is appended under the version decided on (a concurrent
    /// opt-out means deciding again), a refusal is recorded as evidence.
    async fn send_click(
        &self,
        caller: &Caller,
        stream: &StreamId,
        mut attempt: ClickAttempt,
        next_open: Option<DateTime<Utc>>,
    ) -> Result<Sent, AppError> {
        if let Some(key) = attempt.record.evidence.idempotency_key.clone() {
            let started = Instant::now();
            let mut tx = self.events().begin().await?;
            let holder = idempotency_keys::claim(
                &mut tx,
                caller.org_id,
                attempt.record.evidence.texter_id,
                &key,
                stream,
                attempt.record.evidence.received_at,
            )
            .await?;
            tx.commit().await?;
            self.stage_times()
                .record(Stage::IdempotencyKey, started.elapsed());
            if holder != stream.as_str() {
                // The key's own stream decides retries; here it would pass
                // as new, and a second message would go to another phone.
                let blocked = BlockedAttempt::of_click(
                    &attempt.record,
                    BlockReason::IdempotencyKeyReused,
                    "this Idempotency-Key was used for a click to another phone; use a new key \
                     for each click"
                        .into(),
                );
                return Err(self.record_block(caller, stream, blocked).await);
            }
        }
        let executed = command::run(self, stream, &caller.metadata(), |loaded| {
            attempt.record.checked_recipient_version = loaded.version;
            Ok(match click::decide_click(&loaded.state, &attempt) {
                ClickDecision::Send(event) => Decision::Change(vec![event], Clicked::Sent),
                ClickDecision::Duplicate(message_id) => {
                    let conversation_id = conversation_of(&loaded.state, message_id)
                        .unwrap_or(attempt.record.conversation_id);
                    Decision::Settle(vec![], Clicked::Duplicate(message_id, conversation_id))
                }
                ClickDecision::Blocked(refusal) => {
                    let blocked = BlockedAttempt::of_click(
                        &attempt.record,
                        refusal.reason,
                        refusal.detail.clone(),
                    );
                    let event = RecipientEvent::SendBlocked(Box::new(blocked));
                    Decision::Settle(vec![event], Clicked::Blocked(refusal))
                }
            })
        })
        .await?;
        let stages = self.stage_times();
        stages.record(Stage::StreamRead, executed.timings.read);
        stages.record(Stage::Append, executed.timings.append);
        match (executed.outcome, executed.written) {
            (Clicked::Sent, Some(written)) => Ok(Sent {
                message_id: attempt.record.message_id,
                conversation_id: attempt.record.conversation_id,
                position: written.last_position,
                duplicate: false,
            }),
            (Clicked::Sent, None) => Err(AppError::Inconsistent(
                "a click decided to send but nothing was appended".into(),
            )),
            (Clicked::Duplicate(message_id, conversation_id), _) => Ok(Sent {
                message_id,
                conversation_id,
                position: self.events().head_position().await?,
                duplicate: true,
            }),
            (Clicked::Blocked(refusal), _) => Err(AppError::Blocked {
                reason: refusal.reason,
                next_open: (refusal.reason == BlockReason::QuietHours)
                    .then_some(next_open)
                    .flatten(),
                message: refusal.detail,
            }),
        }
    }

    /// Records that the queue held a contact back, once per campaign and
    /// script version. A hold found in the cached stream is trusted: a
    /// stream only grows, so a cached hold is a stored one.
    async fn record_hold(
        &self,
        caller: &Caller,
        phone: &PhoneNumber,
        held: RecipientEvent,
    ) -> Result<(), AppError> {
        let stream = recipient::stream_id(caller.org_id, phone);
        let mut view = command::StreamView::<RecipientEvent>::new(self, stream);
        for _ in 0..command::ATTEMPTS {
            let loaded = view.load().await?;
            let events = recipient::decide_hold(&loaded.state, held.clone());
            if events.is_empty()
                || view
                    .append_at(&loaded, &events, &caller.metadata())
                    .await?
                    .is_some()
            {
                return Ok(());
            }
        }
        Err(AppError::Conflict(
            "the contact's history kept changing while its hold was recorded".into(),
        ))
    }

    /// Appends a refused attempt to the recipient stream and returns the
    /// error to answer with (or the failure to record it).
    async fn record_block(
        &self,
        caller: &Caller,
        stream: &StreamId,
        attempt: BlockedAttempt,
    ) -> AppError {
        let reason = attempt.reason;
        let message = attempt.detail.clone();
        let event = RecipientEvent::SendBlocked(Box::new(attempt));
        if let Err(err) = self.append_any(stream, &[event], &caller.metadata()).await {
            return err;
        }
        AppError::blocked(reason, message)
    }

    /// A refusal whose phone cannot be trusted goes to the texter's stream.
    async fn record_texter_block(&self, caller: &Caller, attempt: BlockedAttempt) -> AppError {
        let stream = texter::stream_id(caller.org_id, attempt.evidence.texter_id);
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

    /// The caller's org's campaign as the send path decides on it, with who
    /// `phone` is assigned to when one is given.
    pub(crate) async fn sending_campaign(
        &self,
        caller: &Caller,
        campaign_id: CampaignId,
        phone: Option<&PhoneNumber>,
    ) -> Result<SendingCampaign, AppError> {
        conversations::sending_campaign(
            self.database(),
            caller.org_id,
            campaign_id,
            phone.map(PhoneNumber::as_str),
        )
        .await?
        .ok_or(AppError::NotFound("campaign"))
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

/// What a click came to on the recipient stream.
enum Clicked {
    Sent,
    Duplicate(MessageId, ConversationId),
    Blocked(Refusal),
}

fn inconsistent(err: impl std::fmt::Display) -> AppError {
    AppError::Inconsistent(err.to_string())
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
