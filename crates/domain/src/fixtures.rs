//! Events and clicks the domain's tests share.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::click::{ClickAttempt, ClickDecision, decide_click};
use crate::ids::{ApiKeyId, CampaignId, ConversationId, MemberId, MessageId};
use crate::message::{ClickEvidence, ClickRecord, HoursEvidence, MessageKind, body_hash};
use crate::phone::{PhoneNumber, Region};
use crate::recipient::{OptOutSource, RecipientEvent, RecipientState};
use crate::timezone::ZoneSource;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

pub(crate) fn phone() -> PhoneNumber {
    PhoneNumber::parse("5552010001", Region::US).unwrap()
}

pub(crate) fn click(kind: MessageKind, token: Option<Uuid>, key: Option<&str>) -> ClickAttempt {
    let message_id = MessageId::new();
    ClickAttempt {
        record: ClickRecord {
            message_id,
            conversation_id: ConversationId::from_uuid(*message_id.as_uuid()),
            campaign_id: CampaignId::from_uuid(Uuid::nil()),
            list_id: None,
            phone: phone(),
            body: "Hi".into(),
            body_sha256: body_hash("Hi"),
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
                texter_id: MemberId::from_uuid(Uuid::nil()),
                key_id: ApiKeyId::from_uuid(Uuid::nil()),
                token_id: token,
                idempotency_key: key.map(str::to_owned),
                presented_at: None,
                clicked_at: None,
                received_at: at("2026-11-25T19:00:05Z"),
                ip: None,
                user_agent: None,
            },
        },
        campaign_open: true,
    }
}

pub(crate) fn sent(attempt: &ClickAttempt) -> RecipientEvent {
    match decide_click(&RecipientState::default(), attempt) {
        ClickDecision::Send(event) => event,
        other => panic!("{other:?}"),
    }
}

pub(crate) fn opt_out() -> RecipientEvent {
    RecipientEvent::OptOutRecorded {
        phone: phone(),
        source: OptOutSource::KeywordReply,
        keyword: Some("STOP".into()),
        conversation: None,
    }
}
