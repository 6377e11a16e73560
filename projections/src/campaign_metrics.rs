//! Read model "campaign_metrics" (scaffold: being written).

use async_trait::async_trait;
use textbank_store::StoreTx;

use crate::batch::{Batch, Tables};
use crate::runner::{ProjectionError, Projector};

pub struct CampaignMetrics {
    tables: Tables,
}

impl CampaignMetrics {
    pub fn live() -> Self {
        Self {
            tables: Tables::Live,
        }
    }
}

#[async_trait]
impl Projector for CampaignMetrics {
    fn name(&self) -> &'static str {
        match self.tables {
            Tables::Live => "campaign_metrics",
            Tables::Next => "campaign_metrics_next",
        }
    }

    async fn apply(&self, _tx: &mut StoreTx, _batch: Batch<'_>) -> Result<(), ProjectionError> {
        Ok(())
    }
}
