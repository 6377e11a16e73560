//! Read model "audit" (scaffold: being written).

use async_trait::async_trait;
use textbank_store::StoreTx;

use crate::batch::{Batch, Tables};
use crate::runner::{ProjectionError, Projector};

pub struct Audit {
    tables: Tables,
}

impl Audit {
    pub fn live() -> Self {
        Self {
            tables: Tables::Live,
        }
    }
}

#[async_trait]
impl Projector for Audit {
    fn name(&self) -> &'static str {
        match self.tables {
            Tables::Live => "audit",
            Tables::Next => "audit_next",
        }
    }

    async fn apply(&self, _tx: &mut StoreTx, _batch: Batch<'_>) -> Result<(), ProjectionError> {
        Ok(())
    }
}
