//! textbank's pure domain model: identifiers, stream names, event metadata and
//! the clock. No I/O lives here; the store, the app layer and the API build on it.
#![forbid(unsafe_code)]
// No unwrap or expect on input, I/O or the database outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod campaign;
pub mod click;
pub mod clock;
pub mod event;
#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
pub(crate) mod given_when_then;
pub mod handling;
pub mod ids;
pub mod keywords;
pub mod list;
pub mod message;
pub mod metadata;
pub mod org;
pub mod phone;
pub mod recipient;
pub mod role;
pub mod segments;
pub mod stream;
pub mod template;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod texter;
pub mod texting_hours;
pub mod timezone;

pub use clock::{Clock, FixedClock, SystemClock};
pub use event::DomainEvent;
pub use ids::{ApiKeyId, CampaignId, ConversationId, ListId, MemberId, MessageId, OrgId};
pub use metadata::{Actor, EventMetadata};
pub use role::{Permission, Role, allows};
pub use stream::{STREAM_CATEGORIES, StreamId, StreamIdError};
