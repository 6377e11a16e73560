//! Read model "inbox" (scaffold: being written).

use async_trait::async_trait;
use textbank_store::StoreTx;

use crate::batch::{Batch, Tables};
use crate::runner::{ProjectionError, Projector};

pub struct Inbox {
    tables: Tables,
}

impl Inbox {
    pub fn live() -> Self {
        Self {
            tables: Tables::Live,
        }
    }
}

#[async_trait]
impl Projector for Inbox {
    fn name(&self) -> &'static str {
        match self.tables {
            Tables::Live => "inbox",
            Tables::Next => "inbox_next",
        }
    }

    async fn apply(&self, _tx: &mut StoreTx, _batch: Batch<'_>) -> Result<(), ProjectionError> {
        Ok(())
    }
}
