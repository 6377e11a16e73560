//! The `texter-{org}-{member}` stream: send attempts refused before any
//! phone number could be trusted (a forged, garbled or foreign click token),
//! kept as evidence of what the platform prevented.

use serde::{Deserialize, Serialize};

use crate::event::DomainEvent;
use crate::ids::{MemberId, OrgId};
use crate::message::BlockedAttempt;
use crate::stream::StreamId;

pub fn stream_id(org: OrgId, texter: MemberId) -> StreamId {
    StreamId::parse(format!("texter-{org}-{texter}"))
        .unwrap_or_else(|_| unreachable!("two uuids make a valid stream id"))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum TexterEvent {
    SendBlocked(Box<BlockedAttempt>),
}

impl DomainEvent for TexterEvent {}
