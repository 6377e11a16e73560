//! Assignment of campaign contacts to texters: assign, a texter's own
//! request, release, reassignment, and who holds how many.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;
use textbank_domain::{CampaignId, MemberId};

use crate::error::ApiError;
use crate::extract::{Auth, Body, Path, path_id};
use crate::server::AppState;
use crate::v1::to_json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    texter_id: String,
    count: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    texter_id: String,
    #[serde(default)]
    count: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReassignBody {
    from_texter_id: String,
    to_texter_id: String,
    #[serde(default)]
    count: Option<u64>,
}

/// The request takes no parameters; an empty body or `{}` both do.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestBody {}

/// A member id that does not parse cannot exist: 404, like an unknown one.
fn texter_id(raw: &str) -> Result<MemberId, ApiError> {
    path_id(raw, "texter")
}

pub async fn assign(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
    Body(body): Body<AssignBody>,
) -> Result<Json<Value>, ApiError> {
    let campaign_id: CampaignId = path_id(&campaign_id, "campaign")?;
    let texter = texter_id(&body.texter_id)?;
    to_json(
        state
            .app
            .assign_contacts(&caller, campaign_id, texter, body.count)
            .await?,
    )
}

pub async fn request(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let campaign_id: CampaignId = path_id(&campaign_id, "campaign")?;
    // Nothing to read, but a body that says something is a mistake worth
    // telling the client about rather than ignoring.
    if !body.iter().all(u8::is_ascii_whitespace) {
        serde_json::from_slice::<RequestBody>(&body).map_err(|err| {
            ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!("this request takes no parameters; send an empty body or {{}}: {err}"),
            )
        })?;
    }
    to_json(state.app.request_contacts(&caller, campaign_id).await?)
}

pub async fn release(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
    Body(body): Body<ReleaseBody>,
) -> Result<Json<Value>, ApiError> {
    let campaign_id: CampaignId = path_id(&campaign_id, "campaign")?;
    let texter = texter_id(&body.texter_id)?;
    to_json(
        state
            .app
            .release_contacts(&caller, campaign_id, texter, body.count)
            .await?,
    )
}

pub async fn reassign(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
    Body(body): Body<ReassignBody>,
) -> Result<Json<Value>, ApiError> {
    let campaign_id: CampaignId = path_id(&campaign_id, "campaign")?;
    let from = texter_id(&body.from_texter_id)?;
    let to = texter_id(&body.to_texter_id)?;
    to_json(
        state
            .app
            .reassign_contacts(&caller, campaign_id, from, to, body.count)
            .await?,
    )
}

pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let campaign_id: CampaignId = path_id(&campaign_id, "campaign")?;
    to_json(state.app.assignments(&caller, campaign_id).await?)
}
