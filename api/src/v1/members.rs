//! Members, API keys and `/v1/me`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use textbank_domain::{ApiKeyId, MemberId, Permission, Role, allows};

use crate::error::ApiError;
use crate::extract::{Auth, Body, Path, path_id};
use crate::server::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    name: String,
    email: String,
    role: Role,
}

pub async fn add_member(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(body): Body<NewMember>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
        Json(json!({
            "member_id": member.member_id,
            "name": member.name,
            "email": member.email,
            "role": member.role,
            "added_at": member.added_at,
            "position": added.position,
        })),
    ))
}

pub async fn list_members(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Value>, ApiError> {
    let members = state.app.members(&caller).await?;
    Ok(Json(json!({ "members": members })))
}

pub async fn list_texters(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Value>, ApiError> {
    let texters = state.app.texters(&caller).await?;
    Ok(Json(json!({ "texters": texters })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    role: Role,
    #[serde(default)]
    member_id: Option<MemberId>,
    #[serde(default)]
    label: String,
}

pub async fn issue_key(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(body): Body<NewKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let issued = state
        .app
        .issue_key(&caller, body.role, body.member_id, &body.label)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::to_value(issued).map_err(|err| ApiError::internal(&err))?),
    ))
}

pub async fn list_keys(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Value>, ApiError> {
    let keys = state.app.keys(&caller).await?;
    Ok(Json(json!({ "api_keys": keys })))
}

pub async fn revoke_key(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(key_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key_id: ApiKeyId = path_id(&key_id, "API key")?;
    let position = state.app.revoke_key(&caller, key_id).await?;
    Ok(Json(
        json!({ "key_id": key_id, "revoked": true, "position": position }),
    ))
}

pub async fn me(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({
        "org_id": caller.org_id,
        "org_name": org_name,
        "key_id": caller.key_id,
        "role": caller.role,
        "member": member,
        "permissions": permissions,
    })))
}
