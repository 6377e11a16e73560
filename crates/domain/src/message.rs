//! The vocabulary of the send path: what a click records, why a send attempt
//! was blocked, how far a message got with its carrier, and the automated
//! texts textbank may send on its own (opt-out confirmations and HELP).

use std::fmt;

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{ApiKeyId, CampaignId, ConversationId, ListId, MemberId, MessageId};
use crate::phone::PhoneNumber;
use crate::timezone::ZoneSource;

/// Which message of a conversation a click sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// The campaign's first text to a contact, from the queue.
    Initial,
    /// A texter's answer in a conversation.
    Reply,
}

/// Why a send attempt was refused. Every refusal is recorded; the codes are
/// part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    OptedOut,
    QuietHours,
    CampaignNotOpen,
    TokenExpired,
    TokenUsed,
    TokenInvalid,
    NotYourToken,
    AlreadyMessaged,
    TooFast,
    NotAssigned,
    /// An idempotency key already used for another click.
    IdempotencyKeyReused,
    /// The rendered message is longer than the server allows.
    MessageTooLong,
    /// The organization has no carrier to hand the message to.
    NoCarrier,
}

impl BlockReason {
    pub fn code(self) -> &'static str {
        match self {
            Self::OptedOut => "opted_out",
            Self::QuietHours => "quiet_hours",
            Self::CampaignNotOpen => "campaign_not_open",
            Self::TokenExpired => "token_expired",
            Self::TokenUsed => "token_used",
            Self::TokenInvalid => "token_invalid",
            Self::NotYourToken => "not_your_token",
            Self::AlreadyMessaged => "already_messaged",
            Self::TooFast => "too_fast",
            Self::NotAssigned => "not_assigned",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::MessageTooLong => "message_too_long",
            Self::NoCarrier => "no_carrier",
        }
    }
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The texting-hours check made when a message was clicked, kept as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HoursEvidence {
    pub allowed: bool,
    /// The recipient's wall-clock time, when their zone is known.
    pub local_time: Option<DateTime<FixedOffset>>,
    #[schema(value_type = Option<String>)]
    pub zone: Option<Tz>,
    pub zone_source: ZoneSource,
    /// The campaign's window, "HH:MM-HH:MM" in the recipient's time.
    pub window: String,
}

/// What a click (or a refused attempt at one) leaves as evidence of the
/// human action: who, with which credentials, what they were shown and
/// when, and from where. A sent message's [`ClickRecord`] and a refused
/// [`BlockedAttempt`] both carry it, flattened into their JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClickEvidence {
    pub kind: MessageKind,
    pub texter_id: MemberId,
    /// The API key or session that made the request.
    pub key_id: ApiKeyId,
    /// The click token that presented the body (initial messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<uuid::Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// When the server showed the message to the texter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presented_at: Option<DateTime<Utc>>,
    /// When the texter's client says the click happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clicked_at: Option<DateTime<Utc>>,
    /// When the server received the click.
    pub received_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

impl ClickEvidence {
    /// Milliseconds between presentation and the server receiving the click.
    pub fn display_to_click_ms(&self) -> Option<i64> {
        self.presented_at
            .map(|presented| (self.received_at - presented).num_milliseconds())
    }
}

/// Everything known about the human action that sent one message: the
/// click's evidence, what was sent to whom, and the checks made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClickRecord {
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    pub campaign_id: CampaignId,
    /// The list the contact came from (initial messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_id: Option<ListId>,
    pub phone: PhoneNumber,
    pub body: String,
    pub body_sha256: String,
    pub segments: u32,
    pub encoding: String,
    /// The script version the body was rendered from (free-text replies
    /// have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_version: Option<u32>,
    /// The version of the recipient stream whose opt-out state was checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_recipient_version: Option<u64>,
    pub hours: HoursEvidence,
    #[serde(flatten)]
    pub evidence: ClickEvidence,
}

/// A refused send attempt, as evidence of what the platform prevented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BlockedAttempt {
    pub attempt_id: uuid::Uuid,
    pub reason: BlockReason,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<CampaignId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<ConversationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<PhoneNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<HoursEvidence>,
    #[serde(flatten)]
    pub evidence: ClickEvidence,
}

impl BlockedAttempt {
    /// The refusal of the attempt `record` describes.
    pub fn of_click(record: &ClickRecord, reason: BlockReason, detail: String) -> Self {
        Self {
            attempt_id: uuid::Uuid::now_v7(),
            reason,
            detail,
            campaign_id: Some(record.campaign_id),
            conversation_id: (record.evidence.kind == MessageKind::Reply)
                .then_some(record.conversation_id),
            phone: Some(record.phone.clone()),
            hours: Some(record.hours.clone()),
            evidence: record.evidence.clone(),
        }
    }
}

/// A carrier's view of a message, as its delivery reports say.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Queued,
    Sending,
    Sent,
    Delivered,
    Undelivered,
    Failed,
}

impl DeliveryStatus {
    /// Delivered, undelivered and failed never change again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Undelivered | Self::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
        }
    }

    /// Whether a report of `next` may follow `self`: reports arrive twice and
    /// out of order, and a final status never moves back.
    pub fn may_become(self, next: DeliveryStatus) -> bool {
        !self.is_final() && next > self
    }
}

/// Texts textbank sends by itself, each answering the voter's own message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AutoReplyKind {
    OptOutConfirmation,
    OptInConfirmation,
    Help,
}

/// The hex SHA-256 of a message body, as recorded and as click tokens carry.
pub fn body_hash(body: &str) -> String {
    hex::encode(Sha256::digest(body.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_hashes_are_sha256() {
        assert_eq!(
            body_hash(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            body_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn only_delivered_undelivered_and_failed_are_final() {
        use DeliveryStatus::*;
        let finals: Vec<_> = [Queued, Sending, Sent, Delivered, Undelivered, Failed]
            .into_iter()
            .filter(|s| s.is_final())
            .collect();
        assert_eq!(finals, vec![Delivered, Undelivered, Failed]);
    }

    #[test]
    fn delivery_statuses_serialize_as_their_snake_case_names() {
        use DeliveryStatus::*;
        let json = serde_json::to_string(&Undelivered).unwrap_or_default();
        assert_eq!(json, "\"undelivered\"");
        for s in [Queued, Sending, Sent, Delivered, Undelivered, Failed] {
            assert_eq!(serde_json::to_value(s).ok(), Some(s.as_str().into()));
        }
    }

    #[test]
    fn final_statuses_never_move_back() {
        use DeliveryStatus::*;
        assert!(Queued.may_become(Sent));
        assert!(Sent.may_become(Delivered));
        assert!(!Delivered.may_become(Sent));
        assert!(!Delivered.may_become(Failed));
        assert!(!Failed.may_become(Delivered));
        assert!(!Sent.may_become(Sent));
        assert!(!Sent.may_become(Queued));
    }
}
