//! Assignment of campaign contacts to texters: assign, a texter's own
//! request, release, reassignment, and who holds how many.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use textbank_app::{Assigned, Assignments, Reassigned, Released};
use textbank_domain::{CampaignId, MemberId};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{Auth, Body, Path, path_id};
use crate::server::AppState;
use crate::v1::CampaignPath;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    #[schema(value_type = uuid::Uuid)]
    texter_id: String,
    count: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    #[schema(value_type = uuid::Uuid)]
    texter_id: String,
    /// How many to release; all of the texter's unsent ones by default.
    #[serde(default)]
    count: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignBody {
    #[schema(value_type = uuid::Uuid)]
    from_texter_id: String,
    #[schema(value_type = uuid::Uuid)]
    to_texter_id: String,
    /// How many to move; all of the texter's unsent ones by default.
    #[serde(default)]
    count: Option<u64>,
}

/// The request takes no parameters; an empty body or `{}` both do.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestBody {}

/// A member id that does not parse cannot exist: 404, like an unknown one.
fn texter_id(raw: &str) -> Result<MemberId, ApiError> {
    path_id(raw, "texter")
}

/// Assigns `count` of the campaign's unassigned contacts to a texter: those
/// inside their texting hours now first, then those whose hours open
/// soonest; capped by the campaign's `max_contacts_held`, refused while the
/// texter has more than `max_replies_waiting` conversations needing a reply.
#[utoipa::path(
    post,
    path = "/v1/campaigns/{campaign_id}/assignments",
    tag = "assignments",
    params(CampaignPath),
    request_body = AssignBody,
    responses(
        (status = 200, description = "How many were assigned", body = Assigned),
        (status = 404, description = "`not_found`: no such campaign or texter in the caller's organization", body = ApiError),
        (status = 409, description = "`conflict`: the campaign is not open for it, or the assignments moved; try again; `contact_limit_reached`: the texter already holds the campaign's most contacts waiting for a first message; `replies_waiting`: the texter has more conversations needing a reply than the campaign allows before a new batch", body = ApiError),
        (status = 422, description = "`invalid_request`: a count of 0 or too many", body = ApiError),
    ),
)]
pub async fn assign(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
    Body(body): Body<AssignBody>,
) -> Result<Json<Assigned>, ApiError> {
    let campaign_id: CampaignId = path_id(&campaign_id, "campaign")?;
    let texter = texter_id(&body.texter_id)?;
    Ok(Json(
        state
            .app
            .assign_contacts(&caller, campaign_id, texter, body.count)
            .await?,
    ))
}

/// A texter asks for a batch of the campaign's contacts (the campaign's batch size, capped by
/// its `max_contacts_held`; refused while the texter has more than `max_replies_waiting`
/// conversations needing a reply): those inside their texting hours now first, then those
/// whose hours open soonest. The body is empty or `{}`.
#[utoipa::path(
    post,
    path = "/v1/campaigns/{campaign_id}/assignments/request",
    tag = "assignments",
    params(CampaignPath),
    request_body = Option<RequestBody>,
    responses(
        (status = 200, description = "How many were assigned (0 when none are left)", body = Assigned),
        (status = 404, description = "`not_found`: no such campaign or texter in the caller's organization", body = ApiError),
        (status = 409, description = "`conflict`: the campaign is not open for it, or the assignments moved; try again; `contact_limit_reached`: the texter already holds the campaign's most contacts waiting for a first message; `replies_waiting`: the texter has more conversations needing a reply than the campaign allows before a new batch", body = ApiError),
        (status = 422, description = "`invalid_request`: a body that says something", body = ApiError),
    ),
)]
pub async fn request(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Assigned>, ApiError> {
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
    Ok(Json(
        state.app.request_contacts(&caller, campaign_id).await?,
    ))
}

/// Releases a texter's unsent contacts back to the campaign's pool.
#[utoipa::path(
    post,
    path = "/v1/campaigns/{campaign_id}/assignments/release",
    tag = "assignments",
    params(CampaignPath),
    request_body = ReleaseBody,
    responses(
        (status = 200, description = "How many were released", body = Released),
        (status = 404, description = "`not_found`: no such campaign or texter in the caller's organization", body = ApiError),
        (status = 409, description = "`conflict`: the campaign is not open for it, or the assignments moved; try again", body = ApiError),
        (status = 422, description = "`invalid_request`: a count of 0", body = ApiError),
    ),
)]
pub async fn release(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
    Body(body): Body<ReleaseBody>,
) -> Result<Json<Released>, ApiError> {
    let campaign_id: CampaignId = path_id(&campaign_id, "campaign")?;
    let texter = texter_id(&body.texter_id)?;
    Ok(Json(
        state
            .app
            .release_contacts(&caller, campaign_id, texter, body.count)
            .await?,
    ))
}

/// Moves a texter's unsent contacts to another texter.
#[utoipa::path(
    post,
    path = "/v1/campaigns/{campaign_id}/assignments/reassign",
    tag = "assignments",
    params(CampaignPath),
    request_body = ReassignBody,
    responses(
        (status = 200, description = "How many were moved", body = Reassigned),
        (status = 404, description = "`not_found`: no such campaign or texter in the caller's organization", body = ApiError),
        (status = 409, description = "`conflict`: the campaign is not open for it, or the assignments moved; try again", body = ApiError),
        (status = 422, description = "`invalid_request`: a count of 0, or the same texter twice", body = ApiError),
    ),
)]
pub async fn reassign(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
    Body(body): Body<ReassignBody>,
) -> Result<Json<Reassigned>, ApiError> {
    let campaign_id: CampaignId = path_id(&campaign_id, "campaign")?;
    let from = texter_id(&body.from_texter_id)?;
    let to = texter_id(&body.to_texter_id)?;
    Ok(Json(
        state
            .app
            .reassign_contacts(&caller, campaign_id, from, to, body.count)
            .await?,
    ))
}

/// Who holds how many of the campaign's contacts.
#[utoipa::path(
    operation_id = "list_assignments",
    get,
    path = "/v1/campaigns/{campaign_id}/assignments",
    tag = "assignments",
    params(CampaignPath),
    responses(
        (status = 200, description = "The assignments", body = Assignments),
        (status = 404, description = "`not_found`: no such campaign or texter in the caller's organization", body = ApiError),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
) -> Result<Json<Assignments>, ApiError> {
    let campaign_id: CampaignId = path_id(&campaign_id, "campaign")?;
    Ok(Json(state.app.assignments(&caller, campaign_id).await?))
}
