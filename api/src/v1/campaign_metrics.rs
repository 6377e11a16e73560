//! Campaign metrics over HTTP: one campaign's figures, its texters', its
//! timeseries, and the org's overview. Every query takes `min_position` (a
//! position the caller's own command returned) to read its own writes.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use textbank_app::campaign_metrics::{
    Bucket, Overview, TexterBreakdown, Timeseries, TimeseriesQuery,
};
use textbank_domain::CampaignId;
use textbank_projections::campaign_metrics::CampaignMetricsView;
use utoipa::IntoParams;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{Auth, Path, Query, path_id};
use crate::route_table::RouteTable;
use crate::server::AppState;
use crate::v1::CampaignPath;

pub fn routes() -> RouteTable {
    RouteTable::new()
        .routes(routes!(campaign))
        .routes(routes!(texters))
        .routes(routes!(timeseries))
        .routes(routes!(overview))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// A position a write of the caller's returned: the figures include it.
    #[serde(default)]
    #[param(value_type = Option<u64>)]
    min_position: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TimeseriesParams {
    /// `hour` (the default) or `day`.
    #[serde(default)]
    #[param(pattern = "^(hour|day)$")]
    bucket: Option<String>,
    /// From this time on (RFC 3339).
    #[serde(default)]
    #[param(value_type = Option<DateTime<Utc>>)]
    from: Option<String>,
    /// Before this time (RFC 3339).
    #[serde(default)]
    #[param(value_type = Option<DateTime<Utc>>)]
    to: Option<String>,
    /// A position a write of the caller's returned: the figures include it.
    #[serde(default)]
    #[param(value_type = Option<u64>)]
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

/// One campaign's figures: contacts, messages, deliveries, replies,
/// opt-outs, refusals, survey answers.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{campaign_id}/metrics",
    operation_id = "campaign_metrics",
    tag = "metrics",
    params(CampaignPath, ReadParams),
    responses(
        (status = 200, description = "The figures", body = CampaignMetricsView),
    ),
)]
pub async fn campaign(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(query): Query<ReadParams>,
) -> Result<Json<CampaignMetricsView>, ApiError> {
    let metrics = state
        .app
        .campaign_metrics(
            &caller,
            campaign_id(&id)?,
            min_position(query.min_position.as_deref())?,
        )
        .await?;
    Ok(Json(metrics))
}

/// One campaign's figures per texter.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{campaign_id}/metrics/texters",
    operation_id = "campaign_texter_metrics",
    tag = "metrics",
    params(CampaignPath, ReadParams),
    responses(
        (status = 200, description = "The figures per texter", body = TexterBreakdown),
    ),
)]
pub async fn texters(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(query): Query<ReadParams>,
) -> Result<Json<TexterBreakdown>, ApiError> {
    let texters = state
        .app
        .campaign_texter_metrics(
            &caller,
            campaign_id(&id)?,
            min_position(query.min_position.as_deref())?,
        )
        .await?;
    Ok(Json(texters))
}

/// One campaign's figures per hour or day.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{campaign_id}/metrics/timeseries",
    operation_id = "campaign_timeseries",
    tag = "metrics",
    params(CampaignPath, TimeseriesParams),
    responses(
        (status = 200, description = "The figures per bucket, oldest first", body = Timeseries),
        (status = 422, description = "`invalid_request`: a bucket, time or min_position that does not parse", body = ApiError),
    ),
)]
pub async fn timeseries(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(query): Query<TimeseriesParams>,
) -> Result<Json<Timeseries>, ApiError> {
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
    Ok(Json(series))
}

/// Every campaign's headline figures.
#[utoipa::path(
    get,
    path = "/v1/metrics/overview",
    operation_id = "metrics_overview",
    tag = "metrics",
    params(ReadParams),
    responses(
        (status = 200, description = "The headline figures", body = Overview),
    ),
)]
pub async fn overview(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(query): Query<ReadParams>,
) -> Result<Json<Overview>, ApiError> {
    let overview = state
        .app
        .metrics_overview(&caller, min_position(query.min_position.as_deref())?)
        .await?;
    Ok(Json(overview))
}
