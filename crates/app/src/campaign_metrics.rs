//! Campaign metrics for the people who run campaigns (owner, admin, manager)
//! and compliance: the permission check, read-your-writes, then the
//! `campaign_metrics` read model's queries (its module defines every
//! figure). The read model's query functions are re-exported for callers
//! that need no permission check, such as the projection benchmark.

use chrono::{DateTime, Utc};
use serde::Serialize;
use textbank_domain::{CampaignId, Permission};
use textbank_projections::campaign_metrics::{self as read_model, CampaignMetrics};

use crate::{App, AppError, Caller};

pub use read_model::{
    Bucket, BucketCounts, CampaignMetricsView, Headline, TexterMetrics, campaign_metrics, overview,
    texters, timeseries,
};

/// Which buckets of a campaign's activity to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeseriesQuery {
    pub bucket: Bucket,
    /// Buckets overlapping `[from, to)`; open-ended when `None`.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// A campaign's activity per UTC hour or day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Timeseries {
    pub campaign_id: CampaignId,
    pub bucket: Bucket,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Oldest first; buckets without activity are left out.
    pub buckets: Vec<BucketCounts>,
}

/// A campaign's figures per texter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TexterBreakdown {
    pub campaign_id: CampaignId,
    pub texters: Vec<TexterMetrics>,
}

/// Every campaign of the org with its headline figures.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Overview {
    pub campaigns: Vec<Headline>,
}

impl App {
    /// Checks the permission and, given a position the caller wrote,
    /// waits (bounded) until the read model has applied it.
    async fn metrics_ready(
        &self,
        caller: &Caller,
        min_position: Option<u64>,
    ) -> Result<(), AppError> {
        caller.require(Permission::ReadMetrics)?;
        if let Some(position) = min_position {
            self.wait_for_projection(&CampaignMetrics::live(), position)
                .await?;
        }
        Ok(())
    }

    /// `GET /v1/campaigns/{id}/metrics`.
    pub async fn campaign_metrics(
        &self,
        caller: &Caller,
        campaign: CampaignId,
        min_position: Option<u64>,
    ) -> Result<CampaignMetricsView, AppError> {
        self.metrics_ready(caller, min_position).await?;
        campaign_metrics(self.database(), caller.org_id, campaign)
            .await?
            .ok_or(AppError::NotFound("campaign"))
    }

    /// `GET /v1/campaigns/{id}/metrics/texters`.
    pub async fn campaign_texter_metrics(
        &self,
        caller: &Caller,
        campaign: CampaignId,
        min_position: Option<u64>,
    ) -> Result<TexterBreakdown, AppError> {
        self.metrics_ready(caller, min_position).await?;
        let texters = texters(self.database(), caller.org_id, campaign)
            .await?
            .ok_or(AppError::NotFound("campaign"))?;
        Ok(TexterBreakdown {
            campaign_id: campaign,
            texters,
        })
    }

    /// `GET /v1/campaigns/{id}/metrics/timeseries`.
    pub async fn campaign_timeseries(
        &self,
        caller: &Caller,
        campaign: CampaignId,
        query: TimeseriesQuery,
        min_position: Option<u64>,
    ) -> Result<Timeseries, AppError> {
        self.metrics_ready(caller, min_position).await?;
        if let (Some(from), Some(to)) = (query.from, query.to)
            && from >= to
        {
            return Err(AppError::Invalid {
                field: "from",
                message: format!("from ({from}) must be before to ({to})"),
            });
        }
        let buckets = timeseries(
            self.database(),
            caller.org_id,
            campaign,
            query.bucket,
            query.from,
            query.to,
        )
        .await?
        .ok_or(AppError::NotFound("campaign"))?;
        Ok(Timeseries {
            campaign_id: campaign,
            bucket: query.bucket,
            from: query.from,
            to: query.to,
            buckets,
        })
    }

    /// `GET /v1/metrics/overview`.
    pub async fn metrics_overview(
        &self,
        caller: &Caller,
        min_position: Option<u64>,
    ) -> Result<Overview, AppError> {
        self.metrics_ready(caller, min_position).await?;
        Ok(Overview {
            campaigns: overview(self.database(), caller.org_id).await?,
        })
    }
}
