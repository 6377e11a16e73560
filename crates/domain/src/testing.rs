//! Ready-made values for tests of the crates built on the domain (the
//! `testing` feature, enabled only by dev-dependencies): a click record a
//! test adjusts field by field instead of spelling out all of it.

use chrono::{DateTime, Utc};

use crate::ids::{ApiKeyId, CampaignId, ConversationId, MemberId, MessageId};
use crate::message::{ClickEvidence, ClickRecord, HoursEvidence, MessageKind, body_hash};
use crate::phone::PhoneNumber;
use crate::timezone::ZoneSource;

/// `texter`'s click that sends `body` to `phone`, received at
/// `received_at`, inside texting hours, in a new conversation of a new
/// campaign, with no token, key or presentation time.
pub fn click_record(
    texter: MemberId,
    phone: &PhoneNumber,
    kind: MessageKind,
    body: &str,
    received_at: DateTime<Utc>,
) -> ClickRecord {
    let message_id = MessageId::new();
    ClickRecord {
        message_id,
        conversation_id: ConversationId::from_uuid(*message_id.as_uuid()),
        campaign_id: CampaignId::new(),
        list_id: None,
        phone: phone.clone(),
        body: body.into(),
        body_sha256: body_hash(body),
        segments: 1,
        encoding: "gsm7".into(),
        script_version: Some(1),
        checked_recipient_version: None,
        hours: HoursEvidence {
            allowed: true,
            local_time: None,
            zone: None,
            zone_source: ZoneSource::Unknown,
            window: "09:00-21:00".into(),
        },
        evidence: ClickEvidence {
            kind,
            texter_id: texter,
            key_id: ApiKeyId::new(),
            token_id: None,
            idempotency_key: None,
            presented_at: None,
            clicked_at: None,
            received_at,
            ip: None,
            user_agent: None,
        },
    }
}
