//! Events and clicks the domain's tests share.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::click::{ClickAttempt, ClickDecision, decide_click};
use crate::ids::{CampaignId, MemberId};
use crate::message::MessageKind;
use crate::phone::{PhoneNumber, Region};
use crate::recipient::{OptOutSource, RecipientEvent, RecipientState};
use crate::testing::click_record;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

pub(crate) fn phone() -> PhoneNumber {
    PhoneNumber::parse("5552010001", Region::US).unwrap()
}

pub(crate) fn click(kind: MessageKind, token: Option<Uuid>, key: Option<&str>) -> ClickAttempt {
    let mut record = click_record(
        MemberId::from_uuid(Uuid::nil()),
        &phone(),
        kind,
        "Hi",
        at("2026-11-25T19:00:05Z"),
    );
    record.campaign_id = CampaignId::from_uuid(Uuid::nil());
    record.evidence.token_id = token;
    record.evidence.idempotency_key = key.map(str::to_owned);
    ClickAttempt {
        record,
        campaign_open: true,
        carrier_ready: true,
        staff: false,
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
