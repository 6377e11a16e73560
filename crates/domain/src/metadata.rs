//! Who did what, on whose behalf, because of what: the metadata every event
//! carries. It is part of the hash chain, so it is evidence, not decoration.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{ApiKeyId, MemberId, OrgId};

/// The party that caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// textbank itself (reactors, projections, start-up).
    System,
    /// An operator at the command line (`textbank admin …`).
    Cli,
    /// A request authenticated by an API key, on behalf of a member if the
    /// key is bound to one.
    ApiKey {
        key_id: ApiKeyId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        member_id: Option<MemberId>,
    },
    /// A member signed in to the web app.
    Member { member_id: MemberId },
    /// An SMS carrier's webhook (twilio, telnyx, sim).
    Carrier { carrier: String },
}

/// Metadata stored beside each event's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// The tenant; `None` only for events that belong to no organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<OrgId>,
    pub actor: Actor,
    /// Shared by every event caused by one request or job.
    pub correlation_id: Uuid,
    /// The event (or request) that directly caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

impl EventMetadata {
    /// Metadata for an event caused by `actor` in `org`, starting a new
    /// correlation.
    pub fn new(org_id: Option<OrgId>, actor: Actor) -> Self {
        Self {
            org_id,
            actor,
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            ip: None,
            user_agent: None,
        }
    }

    /// Metadata for an event caused by another one: same correlation, the
    /// cause's id as causation.
    pub fn caused_by(&self, cause: Uuid, actor: Actor) -> Self {
        Self {
            org_id: self.org_id,
            actor,
            correlation_id: self.correlation_id,
            causation_id: Some(cause),
            ip: None,
            user_agent: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_through_json() {
        let meta = EventMetadata {
            ip: Some("203.0.113.7".into()),
            ..EventMetadata::new(
                Some(OrgId::new()),
                Actor::ApiKey {
                    key_id: ApiKeyId::new(),
                    member_id: Some(MemberId::new()),
                },
            )
        };
        let json = serde_json::to_value(&meta).unwrap();
        assert_eq!(json["actor"]["kind"], "api_key");
        let back: EventMetadata = serde_json::from_value(json).unwrap();
        assert_eq!(back, meta);
    }

    #[test]
    fn caused_events_keep_the_correlation() {
        let first = EventMetadata::new(Some(OrgId::new()), Actor::Cli);
        let cause = Uuid::now_v7();
        let next = first.caused_by(cause, Actor::System);
        assert_eq!(next.correlation_id, first.correlation_id);
        assert_eq!(next.causation_id, Some(cause));
        assert_eq!(next.org_id, first.org_id);
    }
}
