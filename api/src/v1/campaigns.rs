//! Campaigns: create, list, read, revise the script, and the lifecycle
//! (launch, pause, resume, archive).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use textbank_app::{CampaignCopy, CampaignTransitioned, CampaignWritten, NewCampaign};
use textbank_domain::campaign::{BatchRules, CannedResponse, Question, ScriptDraft, Transition};
use textbank_domain::{CampaignId, ListId};
use textbank_projections::campaigns::CampaignView;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{Auth, Body, Path, path_id};
use crate::server::AppState;
use crate::v1::{CampaignPath, csv_attachment};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CannedResponseBody {
    title: String,
    body: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestionBody {
    id: String,
    text: String,
    answers: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
/// Local texting hours of the recipient, `HH:MM` to `HH:MM`.
pub struct TextingHoursBody {
    #[schema(example = "09:00")]
    start: String,
    #[schema(example = "21:00")]
    end: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCampaignBody {
    name: String,
    initial_message: String,
    #[serde(default)]
    canned_responses: Vec<CannedResponseBody>,
    #[serde(default)]
    questions: Vec<QuestionBody>,
    #[serde(default)]
    texting_hours: Option<TextingHoursBody>,
    /// Contacts per texter request; 1–1,000, default 100.
    #[serde(default)]
    assignment_batch_size: Option<u32>,
    /// The most contacts a texter may hold that still wait for their first
    /// message (1–10,000); none by default.
    #[serde(default)]
    max_contacts_held: Option<u32>,
    /// A texter with more than this many of the campaign's conversations
    /// needing a reply gets no new batch until they answer (0–10,000; 0:
    /// every reply first); no such rule by default.
    #[serde(default)]
    max_replies_waiting: Option<u32>,
    /// The contact lists the campaign texts.
    #[serde(default)]
    #[schema(value_type = Vec<uuid::Uuid>)]
    list_ids: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptBody {
    initial_message: String,
    #[serde(default)]
    canned_responses: Vec<CannedResponseBody>,
}

fn canned(responses: Vec<CannedResponseBody>) -> Vec<CannedResponse> {
    responses
        .into_iter()
        .map(|r| CannedResponse {
            title: r.title,
            body: r.body,
        })
        .collect()
}

/// List ids from a body. One that does not parse cannot exist: 404, like
/// an unknown one.
fn list_ids(raw: &[String]) -> Result<Vec<ListId>, ApiError> {
    raw.iter()
        .map(|raw| path_id::<ListId>(raw, "list"))
        .collect()
}

/// Creates a campaign (a draft: launch it to start texting). The answer
/// shows the initial message rendered for the first contact, with its
/// length in segments.
#[utoipa::path(
    post,
    path = "/v1/campaigns",
    tag = "campaigns",
    request_body = NewCampaignBody,
    responses(
        (status = 201, description = "The campaign", body = CampaignWritten),
        (status = 404, description = "`not_found`: a list that does not exist in the caller's organization", body = ApiError),
        (status = 422, description = "`invalid_request`: an empty or too long field, a template naming an unknown column, bad texting hours", body = ApiError),
    ),
)]
pub async fn create_campaign(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(body): Body<NewCampaignBody>,
) -> Result<(StatusCode, Json<CampaignWritten>), ApiError> {
    let list_ids = list_ids(&body.list_ids)?;
    let new = NewCampaign {
        name: body.name,
        initial_message: body.initial_message,
        canned_responses: canned(body.canned_responses),
        questions: body
            .questions
            .into_iter()
            .map(|q| Question {
                id: q.id,
                text: q.text,
                answers: q.answers,
            })
            .collect(),
        texting_hours: body.texting_hours.map(|h| (h.start, h.end)),
        assignment_batch_size: body.assignment_batch_size,
        batch_rules: BatchRules {
            max_contacts_held: body.max_contacts_held,
            max_replies_waiting: body.max_replies_waiting,
        },
        list_ids,
    };
    let written = state.app.create_campaign(&caller, new).await?;
    Ok((StatusCode::CREATED, Json(written)))
}

/// What to copy besides the script and settings; `{}` for the defaults.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyBody {
    /// The copy's name; "Copy of" and the source's name by default.
    #[serde(default)]
    name: Option<String>,
    /// Keep the source's lists attached to the copy (off by default: the
    /// copy texts only the lists given in `list_ids`).
    #[serde(default)]
    keep_lists: bool,
    /// Lists for the copy (after the source's, when kept).
    #[serde(default)]
    #[schema(value_type = Vec<uuid::Uuid>)]
    list_ids: Vec<String>,
}

/// Copies a campaign into a new draft: its script, canned responses,
/// questions, texting hours, batch size and batch rules. Its lists stay
/// attached only with `keep_lists`; nothing of its contacts' state
/// (assignments, messages, holds) is copied. The new campaign's
/// `CampaignCreated` event names the source (`copied_from`).
#[utoipa::path(
    post,
    path = "/v1/campaigns/{campaign_id}/copy",
    tag = "campaigns",
    params(CampaignPath),
    request_body = CopyBody,
    responses(
        (status = 201, description = "The new draft", body = CampaignWritten),
        (status = 404, description = "`not_found`: no such campaign, or a list that does not exist, in the caller's organization", body = ApiError),
        (status = 422, description = "`invalid_request`: an empty or too long name, a script naming a column the copy's lists lack, a list still importing", body = ApiError),
    ),
)]
pub async fn copy_campaign(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
    Body(body): Body<CopyBody>,
) -> Result<(StatusCode, Json<CampaignWritten>), ApiError> {
    let campaign_id: CampaignId = path_id(&campaign_id, "campaign")?;
    let list_ids = list_ids(&body.list_ids)?;
    let copy = CampaignCopy {
        name: body.name,
        keep_lists: body.keep_lists,
        list_ids,
    };
    let written = state.app.copy_campaign(&caller, campaign_id, copy).await?;
    Ok((StatusCode::CREATED, Json(written)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Campaigns {
    campaigns: Vec<CampaignView>,
}

/// The organization's campaigns.
#[utoipa::path(
    get,
    path = "/v1/campaigns",
    tag = "campaigns",
    responses((status = 200, description = "Every campaign", body = Campaigns)),
)]
pub async fn list_campaigns(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Campaigns>, ApiError> {
    let campaigns = state.app.campaigns(&caller).await?;
    Ok(Json(Campaigns { campaigns }))
}

/// One campaign.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{campaign_id}",
    tag = "campaigns",
    params(CampaignPath),
    responses(
        (status = 200, description = "The campaign", body = CampaignView),
    ),
)]
pub async fn get_campaign(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
) -> Result<Json<CampaignView>, ApiError> {
    let campaign_id: CampaignId = path_id(&campaign_id, "campaign")?;
    Ok(Json(state.app.campaign(&caller, campaign_id).await?))
}

/// The campaign's results, the file a CRM loads back: one row per
/// contact with its list columns, texter, initial message, final delivery
/// status, reply, opt-out and latest survey answers, streamed.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{campaign_id}/export.csv",
    operation_id = "campaign_results_export",
    tag = "campaigns",
    params(CampaignPath),
    responses(
        (status = 200, description = "One row per contact, as CSV", content_type = "text/csv", body = String),
    ),
)]
pub async fn export_results(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let campaign_id: CampaignId = path_id(&campaign_id, "campaign")?;
    // Refusals (403, 404, 503) are answered before the body starts.
    let chunks = state.app.campaign_export(&caller, campaign_id).await?;
    Ok(csv_attachment(
        chunks,
        &format!("campaign-{campaign_id}-results.csv"),
    ))
}

/// Replaces the script (initial message and canned responses) of a
/// campaign that is not archived; the script's version goes up.
#[utoipa::path(
    put,
    path = "/v1/campaigns/{campaign_id}/script",
    tag = "campaigns",
    params(CampaignPath),
    request_body = ScriptBody,
    responses(
        (status = 200, description = "The campaign with its new script", body = CampaignWritten),
        (status = 409, description = "`conflict`: the campaign's state does not allow it, or it moved", body = ApiError),
        (status = 422, description = "`invalid_request`: an empty or too long field, a template naming an unknown column", body = ApiError),
    ),
)]
pub async fn revise_script(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
    Body(body): Body<ScriptBody>,
) -> Result<Json<CampaignWritten>, ApiError> {
    let campaign_id: CampaignId = path_id(&campaign_id, "campaign")?;
    let script = ScriptDraft {
        initial_message: body.initial_message,
        canned_responses: canned(body.canned_responses),
    };
    Ok(Json(
        state
            .app
            .revise_script(&caller, campaign_id, script)
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
/// Settings to change; fields left out stay as they are.
pub struct SettingsBody {
    name: Option<String>,
    texting_hours: Option<TextingHoursBody>,
    assignment_batch_size: Option<u32>,
    /// The most contacts a texter may hold that still wait for their first
    /// message (1–10,000); `null` removes the limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, nullable)]
    max_contacts_held: Option<Option<u32>>,
    /// A texter with more than this many conversations needing a reply gets
    /// no new batch until they answer (0–10,000); `null` removes the rule.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, nullable)]
    max_replies_waiting: Option<Option<u32>>,
}

/// A field given (`null` included) as opposed to left out: `null` is
/// `Some(None)`, a number `Some(Some(n))`, and a field left out `None`.
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(deserializer).map(Some)
}

/// Changes a campaign's name, texting hours, assignment batch size or batch
/// rules.
#[utoipa::path(
    patch,
    path = "/v1/campaigns/{campaign_id}",
    tag = "campaigns",
    params(CampaignPath),
    request_body = SettingsBody,
    responses(
        (status = 200, description = "The campaign", body = CampaignView),
        (status = 409, description = "`conflict`: the campaign is archived, or it moved", body = ApiError),
        (status = 422, description = "`invalid_request`: an empty or too long name, bad texting hours, a batch size or batch rule out of range", body = ApiError),
    ),
)]
pub async fn change_settings(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
    Body(body): Body<SettingsBody>,
) -> Result<Json<CampaignView>, ApiError> {
    let campaign_id: CampaignId = path_id(&campaign_id, "campaign")?;
    let changes = textbank_app::SettingsChange {
        name: body.name,
        texting_hours: body.texting_hours.map(|h| (h.start, h.end)),
        assignment_batch_size: body.assignment_batch_size,
        max_contacts_held: body.max_contacts_held,
        max_replies_waiting: body.max_replies_waiting,
    };
    Ok(Json(
        state
            .app
            .change_campaign_settings(&caller, campaign_id, changes)
            .await?,
    ))
}

async fn transition(
    state: AppState,
    caller: textbank_app::Caller,
    campaign_id: &str,
    step: Transition,
) -> Result<Json<CampaignTransitioned>, ApiError> {
    let campaign_id: CampaignId = path_id(campaign_id, "campaign")?;
    Ok(Json(
        state
            .app
            .transition_campaign(&caller, campaign_id, step)
            .await?,
    ))
}

/// A lifecycle step's handler: `POST /v1/campaigns/{campaign_id}/<step>`.
/// (A macro, since `#[utoipa::path]` needs the path as a literal.)
macro_rules! transition_handler {
    ($(#[doc = $doc:literal])* $name:ident, $path:literal, $step:expr) => {
        $(#[doc = $doc])*
        #[utoipa::path(
            post,
            path = $path,
            tag = "campaigns",
            params(CampaignPath),
            responses(
                (status = 200, description = "The campaign in its new state", body = CampaignTransitioned),
                (status = 409, description = "`conflict`: the campaign's state does not allow it (or it has no list), or it moved; `no_carrier`: launching or resuming while the organization has no carrier configured", body = ApiError),
            ),
        )]
        pub async fn $name(
            State(state): State<AppState>,
            Auth(caller): Auth,
            Path(campaign_id): Path<String>,
        ) -> Result<Json<CampaignTransitioned>, ApiError> {
            transition(state, caller, &campaign_id, $step).await
        }
    };
}

transition_handler!(
    /// Launches a draft campaign: texters can request contacts and send.
    /// It needs at least one list and the organization's carrier.
    launch,
    "/v1/campaigns/{campaign_id}/launch",
    Transition::Launch
);
transition_handler!(
    /// Pauses a live campaign: no initial message can be sent until it
    /// resumes; replies still can.
    pause,
    "/v1/campaigns/{campaign_id}/pause",
    Transition::Pause
);
transition_handler!(
    /// Resumes a paused campaign (it needs the organization's carrier).
    resume,
    "/v1/campaigns/{campaign_id}/resume",
    Transition::Resume
);
transition_handler!(
    /// Archives a campaign: nothing more can be sent in it.
    archive,
    "/v1/campaigns/{campaign_id}/archive",
    Transition::Archive
);
