//! Campaign metrics over HTTP: one campaign's figures, its texters', its
//! timeseries, and the org's overview. Every query takes `min_position` (a
//! position the caller's own command returned) to read its own writes.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use textbank_app::campaign_metrics::{Bucket, TimeseriesQuery};
use textbank_domain::CampaignId;

use crate::error::ApiError;
use crate::extract::{Auth, Path, Query, path_id};
use crate::route_table::RouteTable;
use crate::server::AppState;
use crate::v1::to_json;

pub fn routes() -> RouteTable {
    RouteTable::new()
        .get("/v1/campaigns/{campaign_id}/metrics", campaign)
        .get("/v1/campaigns/{campaign_id}/metrics/texters", texters)
        .get("/v1/campaigns/{campaign_id}/metrics/timeseries", timeseries)
        .get("/v1/metrics/overview", overview)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadParams {
    #[serde(default)]
    min_position: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeseriesParams {
    #[serde(default)]
    bucket: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    min_position: Option<String>,
}

fn min_position(raw: Option<&str>) -> Result<Option<u64>, ApiError> {
    Ok(textbank_app::parse_min_position(raw)?)
}

fn instant(name: &str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|raw| {
        DateTime::parse_from_rfc3339(raw)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::invalid_request(format!(
                    "{name} must be an RFC 3339 time such as 2026-11-25T19:00:00Z, not {raw:?}"
                ))
            })
    })
    .transpose()
}

fn campaign_id(raw: &str) -> Result<CampaignId, ApiError> {
    path_id(raw, "campaign")
}

/// `GET /v1/campaigns/{id}/metrics`
pub async fn campaign(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(query): Query<ReadParams>,
) -> Result<Json<Value>, ApiError> {
    let metrics = state
        .app
        .campaign_metrics(
            &caller,
            campaign_id(&id)?,
            min_position(query.min_position.as_deref())?,
        )
        .await?;
    to_json(metrics)
}

/// `GET /v1/campaigns/{id}/metrics/texters`
pub async fn texters(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(query): Query<ReadParams>,
) -> Result<Json<Value>, ApiError> {
    let texters = state
        .app
        .campaign_texter_metrics(
            &caller,
            campaign_id(&id)?,
            min_position(query.min_position.as_deref())?,
        )
        .await?;
    to_json(texters)
}

/// `GET /v1/campaigns/{id}/metrics/timeseries?bucket=hour|day&from=&to=`
pub async fn timeseries(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(query): Query<TimeseriesParams>,
) -> Result<Json<Value>, ApiError> {
    let bucket = match query.bucket.as_deref() {
        None => Bucket::Hour,
        Some(raw) => raw.parse().map_err(ApiError::invalid_request)?,
    };
    let request = TimeseriesQuery {
        bucket,
        from: instant("from", query.from.as_deref())?,
        to: instant("to", query.to.as_deref())?,
    };
    let series = state
        .app
        .campaign_timeseries(
            &caller,
            campaign_id(&id)?,
            request,
            min_position(query.min_position.as_deref())?,
        )
        .await?;
    to_json(series)
}

/// `GET /v1/metrics/overview`
pub async fn overview(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(query): Query<ReadParams>,
) -> Result<Json<Value>, ApiError> {
    let overview = state
        .app
        .metrics_overview(&caller, min_position(query.min_position.as_deref())?)
        .await?;
    to_json(overview)
}
