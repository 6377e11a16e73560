//! Request extractors whose failures answer in the API's JSON error shape:
//! the authenticated caller, JSON bodies, query strings and path segments.
//! Handlers use these, never axum's own, whose rejections are plain text.

use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, COOKIE, USER_AGENT};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use textbank_app::{AppError, Caller};

use crate::connection::PeerAddr;
use crate::error::ApiError;
use crate::server::AppState;

/// The caller, authenticated by `Authorization: Bearer <key>`, or by the
/// web app's session cookie. A cookie-authenticated request that changes
/// anything must also carry the session's `X-CSRF-Token`: another site can
/// make a browser send the cookie, but cannot read the token.
pub struct Auth(pub Caller);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (ip, user_agent) = client(parts, state);
        if let Some(header) = parts.headers.get(AUTHORIZATION) {
            let key = header
                .to_str()
                .ok()
                .and_then(|value| value.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or(AppError::Unauthenticated(
                    "the Authorization header must be \"Bearer <API key>\"",
                ))?;
            return Ok(Self(state.app.authenticate(key, ip, user_agent).await?));
        }
        let session = session_cookie(parts).ok_or(AppError::Unauthenticated(
            "an Authorization: Bearer <API key> header (or a signed-in session) is required",
        ))?;
        check_csrf(parts, state, session)?;
        Ok(Self(
            state
                .app
                .authenticate_session(session, ip, user_agent)
                .await?,
        ))
    }
}

/// Refuses a state-changing request on `session` without the session's
/// `X-CSRF-Token` (safe methods pass).
pub fn check_csrf(parts: &Parts, state: &AppState, session: &str) -> Result<(), ApiError> {
    if parts.method.is_safe() {
        return Ok(());
    }
    let presented = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if state.app.csrf_matches(session, presented) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "this request needs the page's X-CSRF-Token header; reload the page",
        ))
    }
}

/// The header a session's state-changing requests carry.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The cookie holding a browser session's secret.
pub const SESSION_COOKIE: &str = "textbank_session";

/// The session secret from the `Cookie` header, if any.
pub fn session_cookie(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
}

/// Where a request came from: its client address (see
/// `App::client_address` for proxies) and user agent (bounded).
pub fn client(parts: &Parts, state: &AppState) -> (Option<String>, Option<String>) {
    let forwarded_for = parts
        .headers
        .get("x-forwarded-for")
        .and_then(|value| value.to_str().ok());
    let ip = parts
        .extensions
        .get::<ConnectInfo<PeerAddr>>()
        .map(|ConnectInfo(PeerAddr(addr))| {
            state
                .app
                .client_address(addr.ip(), forwarded_for)
                .to_string()
        });
    let user_agent = parts
        .headers
        .get(USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(|agent| agent.chars().take(512).collect());
    (ip, user_agent)
}

/// A JSON body; malformed ones get a JSON error naming the problem.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(request, state).await?;
        Ok(Self(value))
    }
}

/// The query string; a malformed one (an unknown parameter, `limit=-1`) is
/// a JSON 422 naming the problem.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// Path segments; one that is not UTF-8 once percent-decoded is a JSON 400.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// Parses an id from a path segment. An id that does not parse cannot exist:
/// 404, the same answer as an unknown or another org's id.
pub fn path_id<T: FromStr>(raw: &str, what: &'static str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| AppError::NotFound(what).into())
}
