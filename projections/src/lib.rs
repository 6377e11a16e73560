//! Read models built from the event log, and the runner that keeps each one
//! up to date: a projector applies a batch of events and saves its rows and
//! its checkpoint in one transaction, so every event takes effect exactly
//! once, across crashes.
#![forbid(unsafe_code)]
// No unwrap or expect on input, I/O or the database outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod audit;
mod batch;
pub mod campaign_export;
pub mod campaign_metrics;
pub mod campaigns;
pub mod contact_copies;
pub mod conversations;
pub mod directory;
pub mod inbox;
pub mod lists;
pub mod opt_outs;
pub mod rebuild;
mod runner;

use std::sync::Arc;

pub use batch::{Batch, OwnedBatch, Tables};
pub use runner::{
    Followed, LINGER, ProjectionError, Projector, aggregate_event, catch_up, catch_up_together,
    follow, follow_together,
};

/// Every projector the server keeps up to date.
pub fn all() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(directory::Directory),
        Arc::new(lists::Lists),
        Arc::new(opt_outs::OptOuts),
        Arc::new(campaigns::Campaigns),
        Arc::new(conversations::Conversations),
        Arc::new(inbox::Inbox::live()),
        Arc::new(audit::Audit::live()),
        Arc::new(campaign_metrics::CampaignMetrics::live()),
    ]
}
