//! Campaigns: create, list, read, revise the script, and the lifecycle
//! (launch, pause, resume, archive).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use textbank_app::NewCampaign;
use textbank_domain::campaign::{CannedResponse, Question, ScriptDraft, Transition};
use textbank_domain::{CampaignId, ListId};

use crate::error::ApiError;
use crate::extract::{Auth, Body, Path, path_id};
use crate::server::AppState;
use crate::v1::{csv_attachment, to_json};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CannedResponseBody {
    title: String,
    body: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuestionBody {
    id: String,
    text: String,
    answers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextingHoursBody {
    start: String,
    end: String,
}

#[derive(Debug, Deserialize)]
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
    #[serde(default)]
    list_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
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

pub async fn create_campaign(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(body): Body<NewCampaignBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // A list id that does not parse cannot exist: 404, like an unknown one.
    let list_ids = body
        .list_ids
        .iter()
        .map(|raw| path_id::<ListId>(raw, "list"))
        .collect::<Result<Vec<_>, _>>()?;
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
        list_ids,
    };
    let written = state.app.create_campaign(&caller, new).await?;
    Ok((StatusCode::CREATED, to_json(written)?))
}

pub async fn list_campaigns(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "campaigns": state.app.campaigns(&caller).await? }),
    ))
}

pub async fn get_campaign(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let campaign_id: CampaignId = path_id(&campaign_id, "campaign")?;
    to_json(state.app.campaign(&caller, campaign_id).await?)
}

/// `GET /v1/campaigns/{id}/export.csv`: the campaign's results, one row
/// per contact, streamed.
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

pub async fn revise_script(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
    Body(body): Body<ScriptBody>,
) -> Result<Json<Value>, ApiError> {
    let campaign_id: CampaignId = path_id(&campaign_id, "campaign")?;
    let script = ScriptDraft {
        initial_message: body.initial_message,
        canned_responses: canned(body.canned_responses),
    };
    to_json(
        state
            .app
            .revise_script(&caller, campaign_id, script)
            .await?,
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    name: Option<String>,
    texting_hours: Option<TextingHoursBody>,
    assignment_batch_size: Option<u32>,
}

pub async fn change_settings(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
    Body(body): Body<SettingsBody>,
) -> Result<Json<Value>, ApiError> {
    let campaign_id: CampaignId = path_id(&campaign_id, "campaign")?;
    let changes = textbank_app::SettingsChange {
        name: body.name,
        texting_hours: body.texting_hours.map(|h| (h.start, h.end)),
        assignment_batch_size: body.assignment_batch_size,
    };
    to_json(
        state
            .app
            .change_campaign_settings(&caller, campaign_id, changes)
            .await?,
    )
}

async fn transition(
    state: AppState,
    caller: textbank_app::Caller,
    campaign_id: &str,
    step: Transition,
) -> Result<Json<Value>, ApiError> {
    let campaign_id: CampaignId = path_id(campaign_id, "campaign")?;
    to_json(
        state
            .app
            .transition_campaign(&caller, campaign_id, step)
            .await?,
    )
}

pub async fn launch(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    transition(state, caller, &campaign_id, Transition::Launch).await
}

pub async fn pause(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    transition(state, caller, &campaign_id, Transition::Pause).await
}

pub async fn resume(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    transition(state, caller, &campaign_id, Transition::Resume).await
}

pub async fn archive(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(campaign_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    transition(state, caller, &campaign_id, Transition::Archive).await
}
