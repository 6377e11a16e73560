//! Typed identifiers. Each is a UUIDv7 (time-ordered, so index inserts stay
//! append-mostly) wrapped in its own type so an org id can never be passed
//! where a campaign id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl crate::stream::sealed::Sealed for $name {}
        impl crate::stream::StreamPart for $name {}

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

typed_id!(
    /// An organization (a campaign committee, an advocacy group): the tenant.
    OrgId
);
typed_id!(
    /// A person in an organization.
    MemberId
);
typed_id!(
    /// An API key; the secret itself is never part of the id.
    ApiKeyId
);
typed_id!(
    /// A campaign: a script, texting hours and the lists it texts.
    CampaignId
);
typed_id!(
    /// An uploaded contact list.
    ListId
);
typed_id!(
    /// One text message, either way: a texter's click, an automated reply.
    MessageId
);
typed_id!(
    /// A campaign's exchange with one phone: the id of the message that
    /// opened it.
    ConversationId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_v7_and_round_trip_through_text() {
        let id = OrgId::new();
        assert_eq!(id.as_uuid().get_version_num(), 7);
        let parsed: OrgId = id.to_string().parse().unwrap();
        assert_eq!(parsed, id);
    }

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        let first = CampaignId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = CampaignId::new();
        assert!(first < second);
    }

    #[test]
    fn garbage_is_not_an_id() {
        assert!("not-a-uuid".parse::<ListId>().is_err());
    }
}
