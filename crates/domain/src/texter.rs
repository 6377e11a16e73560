//! The `texter-{org}-{member}` stream: send attempts refused before any
//! phone number could be trusted (a forged, garbled or foreign click token),
//! kept as evidence of what the platform prevented, and the conversations
//! the texter has read (their inbox's unread counts are rebuilt from them).

use serde::{Deserialize, Serialize};

use crate::event::DomainEvent;
use crate::ids::{MemberId, OrgId};
use crate::message::BlockedAttempt;
use crate::phone::PhoneNumber;
use crate::recipient::ConversationRef;
use crate::stream::StreamId;

pub fn stream_id(org: OrgId, texter: MemberId) -> StreamId {
    StreamId::of("texter", &[&org, &texter])
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", content = "data")]
pub enum TexterEvent {
    SendBlocked(Box<BlockedAttempt>),
    /// The texter (or staff, for them) read the conversation: its unread
    /// count starts again from zero. Who did it is in the metadata.
    ConversationRead {
        conversation: ConversationRef,
        /// The voter's number, so a read model needs no lookup to place it.
        phone: PhoneNumber,
    },
}

impl DomainEvent for TexterEvent {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CampaignId, ConversationId};

    #[test]
    fn a_read_is_stored_as_conversation_read_and_read_back() {
        let event = TexterEvent::ConversationRead {
            conversation: ConversationRef {
                conversation_id: ConversationId::new(),
                campaign_id: CampaignId::new(),
                texter_id: MemberId::new(),
            },
            phone: PhoneNumber::from_e164("+15552010001").unwrap(),
        };
        let (event_type, data) = event.to_parts().unwrap();
        assert_eq!(event_type, "ConversationRead");
        assert_eq!(
            TexterEvent::from_parts(&event_type, &data).unwrap(),
            Some(event)
        );
    }
}
