//! Handling conversations over HTTP: the organization's tags, tagging a
//! conversation, escalating it and resolving the escalation, reassigning
//! and releasing it, a texter's "release my replies", and the staff's
//! escalation queue.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use textbank_app::inbox::{InboxPage, InboxRequest, InboxStatus};
use textbank_app::{BulkOutcome, Caller, Handled, ReleasedMine, Selection};
use textbank_domain::handling::Holder;
use textbank_domain::org::Tag;
use textbank_domain::{CampaignId, ConversationId, MemberId, Permission};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{Auth, Body, Path, Query, path_id};
use crate::route_table::RouteTable;
use crate::server::AppState;
use crate::v1::inbox::{parse_holder, review_filter};
use crate::v1::{ConversationPath, optional_body};

pub fn routes() -> RouteTable {
    RouteTable::new()
        .routes(routes!(list_tags, define_tag))
        .routes(routes!(change_tag, delete_tag))
        .routes(routes!(apply_tag, remove_tag))
        .routes(routes!(escalate))
        .routes(routes!(resolve))
        .routes(routes!(reassign))
        .routes(routes!(release))
        .routes(routes!(release_mine))
        .routes(routes!(escalations))
        .routes(routes!(bulk_reassign))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
/// Which conversations match: the filters of `GET /v1/conversations`.
pub struct ReviewFilterBody {
    #[serde(default)]
    #[schema(value_type = Option<Uuid>)]
    campaign_id: Option<CampaignId>,
    #[serde(default)]
    #[schema(value_type = Option<Uuid>)]
    texter_id: Option<MemberId>,
    /// `needs_reply` or `all` (the default).
    #[serde(default)]
    status: Option<String>,
    /// `texter`, `pool` or `escalated`.
    #[serde(default)]
    holder: Option<String>,
    #[serde(default)]
    tag_id: Option<Uuid>,
    #[serde(default)]
    opted_out: Option<bool>,
    /// Latest message older than this.
    #[serde(default)]
    last_before: Option<chrono::DateTime<chrono::Utc>>,
    /// The latest message contains this text (any case).
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
/// Exactly one of `conversation_ids` and `filter`.
pub struct BulkReassignRequest {
    /// The selected conversations (at most 10,000).
    #[serde(default)]
    #[schema(value_type = Option<Vec<Uuid>>)]
    conversation_ids: Option<Vec<ConversationId>>,
    /// Every conversation matching (at most 10,000 per request; `more`
    /// says when more matched).
    #[serde(default)]
    filter: Option<ReviewFilterBody>,
    /// The texter who gets them; absent or null: released to their
    /// campaigns' pools.
    #[serde(default)]
    #[schema(value_type = Option<Uuid>)]
    texter_id: Option<MemberId>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagList {
    tags: Vec<Tag>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagRequest {
    /// 1 to 50 characters, unique in the organization (whatever the case).
    name: String,
    /// Up to 500 characters.
    #[serde(default)]
    description: String,
    /// Applying the tag escalates the conversation to staff.
    #[serde(default)]
    escalates: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagWritten {
    #[serde(flatten)]
    tag: Tag,
    /// The log position of the change; none when nothing changed.
    position: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagDeleted {
    tag_id: Uuid,
    /// The log position of the deletion; none when it was deleted already.
    position: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalateRequest {
    /// Why staff should take it (1 to 500 characters).
    reason: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// The texter to send it to; absent: back to the texter who escalated
    /// it (or to the campaign's pool if none did).
    #[serde(default)]
    #[schema(value_type = Option<Uuid>)]
    texter_id: Option<MemberId>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignRequest {
    /// The texter who gets the conversation (and the voter's replies).
    #[schema(value_type = Uuid)]
    texter_id: MemberId,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseMineRequest {
    /// Only this campaign's conversations (default: all of the caller's).
    #[serde(default)]
    #[schema(value_type = Option<Uuid>)]
    campaign_id: Option<CampaignId>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EscalationsQuery {
    /// Only this campaign's.
    #[serde(default)]
    #[param(value_type = Option<Uuid>)]
    campaign_id: Option<String>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    /// A position a write of the caller's returned: the page reflects it.
    #[serde(default)]
    min_position: Option<u64>,
}

fn conversation_id(raw: &str) -> Result<ConversationId, ApiError> {
    path_id(raw, "conversation")
}

/// The organization's conversation tags.
#[utoipa::path(
    get,
    path = "/v1/tags",
    operation_id = "list_tags",
    tag = "conversations",
    responses((status = 200, description = "The tags", body = TagList)),
)]
pub async fn list_tags(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<TagList>, ApiError> {
    let tags = state.app.tags(&caller).await?;
    Ok(Json(TagList { tags }))
}

/// Defines a conversation tag (owners, admins, managers).
#[utoipa::path(
    post,
    path = "/v1/tags",
    operation_id = "define_tag",
    tag = "conversations",
    request_body = TagRequest,
    responses(
        (status = 201, description = "Defined", body = TagWritten),
        (status = 409, description = "`conflict`: a tag of that name exists", body = ApiError),
    ),
)]
pub async fn define_tag(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(body): Body<TagRequest>,
) -> Result<(StatusCode, Json<TagWritten>), ApiError> {
    let (tag, position) = state
        .app
        .write_tag(&caller, None, &body.name, &body.description, body.escalates)
        .await?;
    Ok((StatusCode::CREATED, Json(TagWritten { tag, position })))
}

/// Changes a tag's name, description or whether it escalates. Conversations
/// keep the name a tag had when applied.
#[utoipa::path(
    put,
    path = "/v1/tags/{tag_id}",
    operation_id = "change_tag",
    tag = "conversations",
    params(("tag_id" = Uuid, Path, description = "The tag's id")),
    request_body = TagRequest,
    responses(
        (status = 200, description = "Changed (or already so)", body = TagWritten),
        (status = 409, description = "`conflict`: another tag has that name", body = ApiError),
    ),
)]
pub async fn change_tag(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(raw): Path<String>,
    Body(body): Body<TagRequest>,
) -> Result<Json<TagWritten>, ApiError> {
    let tag_id: Uuid = path_id(&raw, "tag")?;
    let (tag, position) = state
        .app
        .write_tag(
            &caller,
            Some(tag_id),
            &body.name,
            &body.description,
            body.escalates,
        )
        .await?;
    Ok(Json(TagWritten { tag, position }))
}

/// Deletes a tag: it can no longer be applied (conversations keep it in
/// their history, and it may still be taken off).
#[utoipa::path(
    delete,
    path = "/v1/tags/{tag_id}",
    operation_id = "delete_tag",
    tag = "conversations",
    params(("tag_id" = Uuid, Path, description = "The tag's id")),
    responses((status = 200, description = "Deleted (or it was already)", body = TagDeleted)),
)]
pub async fn delete_tag(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(raw): Path<String>,
) -> Result<Json<TagDeleted>, ApiError> {
    let tag_id: Uuid = path_id(&raw, "tag")?;
    let position = state.app.delete_tag(&caller, tag_id).await?;
    Ok(Json(TagDeleted { tag_id, position }))
}

/// Applies a tag to a conversation (its texter, or staff); an escalating
/// tag escalates the conversation. Applying it again changes nothing.
#[utoipa::path(
    put,
    path = "/v1/conversations/{conversation_id}/tags/{tag_id}",
    operation_id = "apply_conversation_tag",
    tag = "conversations",
    params(ConversationPath, ("tag_id" = Uuid, Path, description = "The tag's id")),
    responses(
        (status = 200, description = "Applied", body = Handled),
        (status = 403, description = "`not_assigned`: the conversation is no longer the caller's", body = ApiError),
    ),
)]
pub async fn apply_tag(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path((raw, raw_tag)): Path<(String, String)>,
) -> Result<Json<Handled>, ApiError> {
    tag_conversation(&state, &caller, &raw, &raw_tag, true).await
}

/// Applies (`apply`) or removes the tag the path names.
async fn tag_conversation(
    state: &AppState,
    caller: &Caller,
    raw: &str,
    raw_tag: &str,
    apply: bool,
) -> Result<Json<Handled>, ApiError> {
    let id = conversation_id(raw)?;
    let tag_id: Uuid = path_id(raw_tag, "tag")?;
    Ok(Json(
        state
            .app
            .tag_conversation(caller, id, tag_id, apply)
            .await?,
    ))
}

/// Takes a tag off a conversation.
#[utoipa::path(
    delete,
    path = "/v1/conversations/{conversation_id}/tags/{tag_id}",
    operation_id = "remove_conversation_tag",
    tag = "conversations",
    params(ConversationPath, ("tag_id" = Uuid, Path, description = "The tag's id")),
    responses(
        (status = 200, description = "Removed (or it was not there)", body = Handled),
        (status = 403, description = "`not_assigned`: the conversation is no longer the caller's", body = ApiError),
    ),
)]
pub async fn remove_tag(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path((raw, raw_tag)): Path<(String, String)>,
) -> Result<Json<Handled>, ApiError> {
    tag_conversation(&state, &caller, &raw, &raw_tag, false).await
}

/// Escalates a conversation to staff with a reason: it leaves the texter's
/// inbox for the escalation queue (`GET /v1/escalations`).
#[utoipa::path(
    post,
    path = "/v1/conversations/{conversation_id}/escalate",
    operation_id = "escalate_conversation",
    tag = "conversations",
    params(ConversationPath),
    request_body = EscalateRequest,
    responses(
        (status = 200, description = "Escalated", body = Handled),
        (status = 403, description = "`not_assigned`: the conversation is no longer the caller's", body = ApiError),
        (status = 409, description = "`already_escalated`: it is escalated already", body = ApiError),
    ),
)]
pub async fn escalate(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(raw): Path<String>,
    Body(body): Body<EscalateRequest>,
) -> Result<Json<Handled>, ApiError> {
    let id = conversation_id(&raw)?;
    Ok(Json(state.app.escalate(&caller, id, &body.reason).await?))
}

/// Resolves an escalation (staff): the conversation goes to the texter
/// named, or back to the one who escalated it. Staff may reply first with
/// `POST /v1/conversations/{conversation_id}/messages`.
#[utoipa::path(
    post,
    path = "/v1/conversations/{conversation_id}/resolve",
    operation_id = "resolve_escalation",
    tag = "conversations",
    params(ConversationPath),
    request_body = Option<ResolveRequest>,
    responses(
        (status = 200, description = "Resolved", body = Handled),
        (status = 409, description = "`not_escalated`: it is not escalated", body = ApiError),
        (status = 422, description = "`invalid_request`: `texter_id` is no texter of the organization", body = ApiError),
    ),
)]
pub async fn resolve(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(raw): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Handled>, ApiError> {
    let id = conversation_id(&raw)?;
    // The body is optional: none sends it back to the texter who escalated.
    let request: ResolveRequest = optional_body(&body)?;
    Ok(Json(
        state
            .app
            .resolve_escalation(&caller, id, request.texter_id)
            .await?,
    ))
}

/// Hands a conversation to another texter (staff): the voter's replies go
/// to them, and the former texter loses it at once. An escalated
/// conversation is resolved to them.
#[utoipa::path(
    post,
    path = "/v1/conversations/{conversation_id}/reassign",
    operation_id = "reassign_conversation",
    tag = "conversations",
    params(ConversationPath),
    request_body = ReassignRequest,
    responses(
        (status = 200, description = "Reassigned (or already theirs)", body = Handled),
        (status = 422, description = "`invalid_request`: `texter_id` is no texter of the organization", body = ApiError),
    ),
)]
pub async fn reassign(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(raw): Path<String>,
    Body(body): Body<ReassignRequest>,
) -> Result<Json<Handled>, ApiError> {
    let id = conversation_id(&raw)?;
    Ok(Json(
        state
            .app
            .reassign_conversation(&caller, id, Some(body.texter_id))
            .await?,
    ))
}

/// Releases a conversation to the campaign's pool (staff): no texter holds
/// it until staff hand it out.
#[utoipa::path(
    post,
    path = "/v1/conversations/{conversation_id}/release",
    operation_id = "release_conversation",
    tag = "conversations",
    params(ConversationPath),
    responses((status = 200, description = "Released (or already in the pool)", body = Handled)),
)]
pub async fn release(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(raw): Path<String>,
) -> Result<Json<Handled>, ApiError> {
    let id = conversation_id(&raw)?;
    Ok(Json(
        state.app.reassign_conversation(&caller, id, None).await?,
    ))
}

/// "Release my replies": the calling texter gives back every conversation
/// they hold (or those of one campaign), to the campaigns' pools.
#[utoipa::path(
    post,
    path = "/v1/texter/release-conversations",
    operation_id = "release_my_conversations",
    tag = "conversations",
    request_body = Option<ReleaseMineRequest>,
    responses((status = 200, description = "Released", body = ReleasedMine)),
)]
pub async fn release_mine(
    State(state): State<AppState>,
    Auth(caller): Auth,
    body: axum::body::Bytes,
) -> Result<Json<ReleasedMine>, ApiError> {
    let request: ReleaseMineRequest = optional_body(&body)?;
    Ok(Json(
        state.app.release_mine(&caller, request.campaign_id).await?,
    ))
}

/// The staff's escalation queue: escalated conversations, newest activity
/// first (as `GET /v1/conversations?holder=escalated`).
#[utoipa::path(
    get,
    path = "/v1/escalations",
    operation_id = "list_escalations",
    tag = "conversations",
    params(EscalationsQuery),
    responses(
        (status = 200, description = "A page of escalated conversations", body = InboxPage),
        (status = 503, description = "`projection_lagging`: the inbox has not reached `min_position` yet; try again", body = ApiError),
    ),
)]
pub async fn escalations(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(params): Query<EscalationsQuery>,
) -> Result<Json<InboxPage>, ApiError> {
    caller.require(Permission::ManageConversations)?;
    let campaign_id = params
        .campaign_id
        .as_deref()
        .map(|raw| {
            raw.parse::<CampaignId>()
                .map_err(|_| ApiError::invalid_request("campaign_id is not a valid id"))
        })
        .transpose()?;
    let request = InboxRequest {
        status: InboxStatus::All,
        campaign_id,
        texter_id: None,
        holder: Some(Holder::Escalated),
        tag_id: None,
        review: Default::default(),
        cursor: params.cursor,
        limit: params.limit,
        min_position: params.min_position,
    };
    Ok(Json(state.app.inbox(&caller, request).await?))
}

/// Message review's bulk action (owners, admins, managers): hands the
/// selected conversations (by id, or every one matching a filter) to a
/// texter, or releases them to their campaigns' pools. Each conversation is
/// its own command: a failure on one is reported in `failures` and undoes
/// none of the others.
#[utoipa::path(
    post,
    path = "/v1/conversations/bulk-reassign",
    operation_id = "bulk_reassign_conversations",
    tag = "conversations",
    request_body = BulkReassignRequest,
    responses(
        (status = 200, description = "Done, conversation by conversation", body = BulkOutcome),
        (status = 422, description = "`invalid_request`: neither or both of `conversation_ids` and `filter`, too many ids, a bad filter, or `texter_id` no texter of the organization", body = ApiError),
    ),
)]
pub async fn bulk_reassign(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(body): Body<BulkReassignRequest>,
) -> Result<Json<BulkOutcome>, ApiError> {
    let selection = match (body.conversation_ids, body.filter) {
        (Some(ids), None) => Selection::Ids(ids),
        (None, Some(filter)) => Selection::Matching(InboxRequest {
            status: filter
                .status
                .as_deref()
                .map(str::parse::<InboxStatus>)
                .transpose()?
                .unwrap_or(InboxStatus::All),
            campaign_id: filter.campaign_id,
            texter_id: filter.texter_id,
            holder: filter.holder.as_deref().map(parse_holder).transpose()?,
            tag_id: filter.tag_id,
            review: review_filter(filter.opted_out, filter.last_before, filter.text)?,
            ..InboxRequest::default()
        }),
        _ => {
            return Err(ApiError::invalid_request(
                "give exactly one of conversation_ids and filter",
            ));
        }
    };
    Ok(Json(
        state
            .app
            .bulk_reassign(&caller, selection, body.texter_id)
            .await?,
    ))
}
