//! The recipient aggregate (`recipient-{org}-{e164}` stream): everything an
//! organization does with one phone number. For now its opt-outs and opt-ins;
//! clicks, carrier submissions, delivery reports and replies join it with the
//! send path, so that the opt-out check and the send share one stream.

use serde::{Deserialize, Serialize};

use crate::event::DomainEvent;
use crate::ids::OrgId;
use crate::phone::PhoneNumber;
use crate::stream::StreamId;

pub fn stream_id(org: OrgId, phone: &PhoneNumber) -> StreamId {
    StreamId::parse(format!("recipient-{org}-{phone}"))
        .unwrap_or_else(|_| unreachable!("a uuid and an E.164 number make a valid stream id"))
}

/// How an opt-out (or opt-in) reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptOutSource {
    /// The voter replied with a keyword (STOP, START, …).
    KeywordReply,
    /// A texter marked the conversation.
    Texter,
    /// An imported opt-out list.
    Import,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum RecipientEvent {
    /// From now on nothing may be sent to this number by this organization.
    OptOutRecorded {
        phone: PhoneNumber,
        source: OptOutSource,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keyword: Option<String>,
    },
    /// The voter asked to hear from the organization again.
    OptInRecorded {
        phone: PhoneNumber,
        source: OptOutSource,
    },
}

impl DomainEvent for RecipientEvent {}

#[cfg(test)]
mod tests {
    use super::*;
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
        };
        let (event_type, data) = event.to_parts().unwrap();
        assert_eq!(event_type, "OptOutRecorded");
        assert_eq!(
            RecipientEvent::from_parts(&event_type, &data).unwrap(),
            Some(event)
        );
    }
}
