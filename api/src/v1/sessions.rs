//! Signing in and out of the web app, and invite links. Sign-in answers with
//! the session in an HttpOnly cookie; the body carries the CSRF token the
//! page sends back on every change.

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use textbank_app::sign_in::{Invite, InviteView, SESSION_TTL_HOURS, SignedIn};
use utoipa::ToSchema;

use super::to_json;
use crate::error::ApiError;
use crate::extract::{
    Auth, Body, Path, SESSION_COOKIE, check_csrf, client, path_id, session_cookie,
};
use crate::server::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    email: String,
    password: String,
}

/// Signs a member in to the web app: the session comes back as an HttpOnly
/// cookie, the CSRF token in the body.
#[utoipa::path(
    post,
    path = "/v1/sessions",
    tag = "sessions",
    security(()),
    request_body = SignInRequest,
    responses(
        (status = 201, description = "Signed in; `Set-Cookie` carries the session", body = SignedIn,
            headers(("Set-Cookie" = String, description = "The session cookie"))),
        (status = 401, description = "`unauthenticated`: wrong email or password", body = ApiError),
        (status = 429, description = "`too_many_attempts`: too many failed sign-ins; wait `retry_after_secs`", body = ApiError),
    ),
)]
pub async fn sign_in(
    State(state): State<AppState>,
    parts: Parts,
    Body(request): Body<SignInRequest>,
) -> Result<Response, ApiError> {
    let (ip, user_agent) = client(&parts, &state);
    let signed_in = state
        .app
        .sign_in(&request.email, &request.password, ip, user_agent)
        .await?;
    with_session(&state, signed_in)
}

/// Ends the caller's session (if any) and clears the cookie; 204, so
/// signing out twice is harmless. Like every change made with the cookie it
/// needs the CSRF token: another site must not sign people out.
#[utoipa::path(
    delete,
    path = "/v1/sessions/current",
    tag = "sessions",
    security((), ("session" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "Signed out; the cookie is cleared",
            headers(("Set-Cookie" = String, description = "The cleared session cookie"))),
        (status = 403, description = "`csrf_failed`: a session cookie without its X-CSRF-Token", body = ApiError),
    ),
)]
pub async fn sign_out(State(state): State<AppState>, parts: Parts) -> Result<Response, ApiError> {
    if let Some(secret) = session_cookie(&parts) {
        check_csrf(&parts, &state, secret)?;
        state.app.sign_out(secret).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&state, "", 0)?);
    Ok(response)
}

/// Makes an invite link for a member: they set their password with it. For
/// a member who has one, the link is a password reset.
#[utoipa::path(
    post,
    path = "/v1/members/{member_id}/invites",
    tag = "sessions",
    params(("member_id" = Uuid, Path, description = "The member to invite")),
    responses(
        (status = 201, description = "The invite", body = Invite),
        (status = 403, description = "`password_reset_forbidden`: the caller may not reset this member's password", body = ApiError),
        (status = 404, description = "`not_found`: no such member", body = ApiError),
        (status = 409, description = "`conflict`: the member's account moved; try again", body = ApiError),
    ),
)]
pub async fn create_invite(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(member_id): Path<String>,
) -> Result<Response, ApiError> {
    let member_id = path_id(&member_id, "member")?;
    let invite = state.app.create_invite(&caller, member_id).await?;
    Ok((StatusCode::CREATED, to_json(invite)?).into_response())
}

/// Reads an invite link: whom it is for (the page shows it).
#[utoipa::path(
    get,
    path = "/v1/invites/{token}",
    tag = "sessions",
    security(()),
    params(("token" = String, Path, description = "The invite token from the link")),
    responses(
        (status = 200, description = "The invite", body = InviteView),
        (status = 404, description = "`not_found`: no such invite, or it was used or expired", body = ApiError),
    ),
)]
pub async fn get_invite(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    Ok(to_json(state.app.invite(&token).await?)?.into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvite {
    password: String,
}

/// Sets the member's password with an invite link and signs them in.
#[utoipa::path(
    post,
    path = "/v1/invites/{token}",
    tag = "sessions",
    security(()),
    params(("token" = String, Path, description = "The invite token from the link")),
    request_body = AcceptInvite,
    responses(
        (status = 201, description = "Signed in; `Set-Cookie` carries the session", body = SignedIn,
            headers(("Set-Cookie" = String, description = "The session cookie"))),
        (status = 404, description = "`not_found`: no such invite, or it was used or expired", body = ApiError),
        (status = 409, description = "`conflict`: the invite was used meanwhile", body = ApiError),
        (status = 422, description = "`invalid_request`: the password is too short or too long", body = ApiError),
        (status = 429, description = "`too_many_attempts`: too many tries; wait `retry_after_secs`", body = ApiError),
    ),
)]
pub async fn accept_invite(
    State(state): State<AppState>,
    Path(token): Path<String>,
    parts: Parts,
    Body(request): Body<AcceptInvite>,
) -> Result<Response, ApiError> {
    let (ip, user_agent) = client(&parts, &state);
    let signed_in = state
        .app
        .accept_invite(&token, &request.password, ip, user_agent)
        .await?;
    with_session(&state, signed_in)
}

fn with_session(state: &AppState, signed_in: SignedIn) -> Result<Response, ApiError> {
    let cookie = cookie(state, &signed_in.session_secret, SESSION_TTL_HOURS * 3600)?;
    let mut response = (StatusCode::CREATED, to_json(&signed_in)?).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

/// The session cookie: HttpOnly (scripts cannot read it), SameSite=Lax
/// (other sites' forms and scripts do not send it), Secure behind HTTPS.
fn cookie(state: &AppState, value: &str, max_age_secs: i64) -> Result<HeaderValue, ApiError> {
    let secure = state
        .app
        .public_url()
        .is_some_and(|url| url.starts_with("https://"));
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    ))
    .map_err(|err| ApiError::internal(&err))
}
