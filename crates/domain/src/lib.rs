//! textbank's pure domain model: identifiers, stream names, event metadata and
//! the clock. No I/O lives here; the store, the app layer and the API build on it.
#![forbid(unsafe_code)]

pub mod clock;
pub mod ids;
pub mod metadata;
pub mod stream;

pub use clock::{Clock, FixedClock, SystemClock};
pub use ids::{ApiKeyId, CampaignId, ListId, MemberId, OrgId};
pub use metadata::{Actor, EventMetadata};
pub use stream::{StreamId, StreamIdError};
