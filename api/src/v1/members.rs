//! Members, API keys and `/v1/me`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use textbank_app::{IssuedKey, TexterName};
use textbank_domain::{ApiKeyId, MemberId, OrgId, Permission, Role, allows};
use textbank_projections::directory::{KeyView, MemberView};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{Auth, Body, Path, path_id};
use crate::server::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    name: String,
    email: String,
    role: Role,
}

/// A member just added, and the log position of the addition.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberAdded {
    member_id: MemberId,
    name: String,
    email: String,
    role: Role,
    added_at: DateTime<Utc>,
    position: u64,
}

/// Adds a member to the caller's organization (no password yet: send them
/// an invite).
#[utoipa::path(
    post,
    path = "/v1/members",
    tag = "members",
    request_body = NewMember,
    responses(
        (status = 201, description = "The member", body = MemberAdded),
        (status = 403, description = "`forbidden`: the caller may not manage members or grant that role", body = ApiError),
        (status = 409, description = "`conflict`: a member with that email exists, or the directory moved", body = ApiError),
        (status = 422, description = "`invalid_request`: a name or email that is empty or too long", body = ApiError),
    ),
)]
pub async fn add_member(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(body): Body<NewMember>,
) -> Result<(StatusCode, Json<MemberAdded>), ApiError> {
    let added = state
        .app
        .add_member(&caller, &body.name, &body.email, body.role)
        .await?;
    let member = state
        .app
        .member(&caller, added.member_id)
        .await?
        .ok_or_else(|| ApiError::internal(&"a member just added is missing from the directory"))?;
    Ok((
        StatusCode::CREATED,
        Json(MemberAdded {
            member_id: member.member_id,
            name: member.name,
            email: member.email,
            role: member.role,
            added_at: member.added_at,
            position: added.position,
        }),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Members {
    members: Vec<MemberView>,
}

/// The organization's members.
#[utoipa::path(
    get,
    path = "/v1/members",
    tag = "members",
    responses((status = 200, description = "Every member", body = Members)),
)]
pub async fn list_members(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Members>, ApiError> {
    let members = state.app.members(&caller).await?;
    Ok(Json(Members { members }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Texters {
    texters: Vec<TexterName>,
}

/// The organization's texters, by name (for assigning contacts).
#[utoipa::path(
    get,
    path = "/v1/texters",
    tag = "members",
    responses((status = 200, description = "Every texter", body = Texters)),
)]
pub async fn list_texters(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Texters>, ApiError> {
    let texters = state.app.texters(&caller).await?;
    Ok(Json(Texters { texters }))
}

/// A new API key: its role, the member it acts for (required for texter
/// keys), a label.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    role: Role,
    #[serde(default)]
    member_id: Option<MemberId>,
    #[serde(default)]
    label: String,
}

/// Issues an API key; the secret is in the answer and never shown again.
#[utoipa::path(
    post,
    path = "/v1/api-keys",
    tag = "members",
    request_body = NewKey,
    responses(
        (status = 201, description = "The key, with its secret", body = IssuedKey),
        (status = 403, description = "`forbidden`: the caller may not manage keys or grant that role; `member_key_not_yours`: a key for another member's account", body = ApiError),
        (status = 404, description = "`not_found`: no such member", body = ApiError),
        (status = 422, description = "`invalid_request`: the role differs from the member's, or a texter key without a member", body = ApiError),
    ),
)]
pub async fn issue_key(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(body): Body<NewKey>,
) -> Result<(StatusCode, Json<IssuedKey>), ApiError> {
    let issued = state
        .app
        .issue_key(&caller, body.role, body.member_id, &body.label)
        .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeys {
    api_keys: Vec<KeyView>,
}

/// The organization's API keys (never their secrets).
#[utoipa::path(
    get,
    path = "/v1/api-keys",
    tag = "members",
    responses((status = 200, description = "Every key, revoked ones too", body = ApiKeys)),
)]
pub async fn list_keys(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<ApiKeys>, ApiError> {
    let api_keys = state.app.keys(&caller).await?;
    Ok(Json(ApiKeys { api_keys }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyRevoked {
    key_id: ApiKeyId,
    revoked: bool,
    position: u64,
}

/// Revokes an API key at once.
#[utoipa::path(
    delete,
    path = "/v1/api-keys/{key_id}",
    tag = "members",
    params(("key_id" = Uuid, Path, description = "The key's id")),
    responses(
        (status = 200, description = "Revoked (again, if it already was)", body = KeyRevoked),
    ),
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(key_id): Path<String>,
) -> Result<Json<KeyRevoked>, ApiError> {
    let key_id: ApiKeyId = path_id(&key_id, "API key")?;
    let position = state.app.revoke_key(&caller, key_id).await?;
    Ok(Json(KeyRevoked {
        key_id,
        revoked: true,
        position,
    }))
}

/// The caller: organization, key, role, member and permissions.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    org_id: OrgId,
    org_name: Option<String>,
    key_id: ApiKeyId,
    role: Role,
    /// The member the key or session acts for; none for an organization key.
    member: Option<MemberView>,
    /// What the role may do (`Send`, `ReadAudit`, …).
    permissions: Vec<String>,
}

/// Who the caller is.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "members",
    responses((status = 200, description = "The caller", body = Me)),
)]
pub async fn me(State(state): State<AppState>, Auth(caller): Auth) -> Result<Json<Me>, ApiError> {
    let org_name = state.app.org_name(&caller).await?;
    let member = match caller.member_id {
        Some(member_id) => state.app.member(&caller, member_id).await?,
        None => None,
    };
    let permissions: Vec<String> = Permission::ALL
        .into_iter()
        .filter(|permission| allows(caller.role, *permission))
        .map(|permission| format!("{permission:?}"))
        .collect();
    Ok(Json(Me {
        org_id: caller.org_id,
        org_name,
        key_id: caller.key_id,
        role: caller.role,
        member,
        permissions,
    }))
}
