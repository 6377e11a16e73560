//! One layer over every response: error answers a handler did not write
//! (axum's plain-text rejections, empty bodies) take the API's JSON error
//! shape, a URL or headers past their limits are a JSON 414 or 431 (hyper
//! refuses larger ones itself, but only when they arrive over several
//! reads, see `connection`), and every response carries
//! `X-Content-Type-Options: nosniff`, so no browser runs JSON or CSV as a
//! page or script.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The longest URL (path and query) served. Hyper itself refuses 64 KB.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header bytes (names and values) a request may carry.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The most of a plain-text error body kept as the JSON message.
const MAX_PLAIN_ERROR: usize = 4 * 1024;

pub async fn json_errors(request: Request, next: Next) -> Response {
    let uri_bytes = request
        .uri()
        .path_and_query()
        .map_or(0, |path| path.as_str().len());
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    let mut response = if uri_bytes > MAX_URI_BYTES {
        ApiError::uri_too_long(MAX_URI_BYTES).into_response()
    } else if header_bytes > MAX_HEADER_BYTES {
        ApiError::headers_too_large(MAX_HEADER_BYTES).into_response()
    } else {
        let response = next.run(request).await;
        if is_bare_error(&response) {
            to_json(response).await
        } else {
            response
        }
    };
    response
        .headers_mut()
        .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// An error answer without a body or with a plain-text one. (HTML error
/// pages are the web app's, for people.)
fn is_bare_error(response: &Response) -> bool {
    let status = response.status();
    (status.is_client_error() || status.is_server_error())
        && response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_none_or(|value| value.starts_with("text/plain"))
}

async fn to_json(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_PLAIN_ERROR)
        .await
        .ok()
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty());
    let message = match text {
        // A server error's text may say more than callers should see.
        Some(text) if !parts.status.is_server_error() => text,
        _ => parts
            .status
            .canonical_reason()
            .unwrap_or("error")
            .to_lowercase(),
    };
    let mut json = ApiError::from_status(parts.status, message).into_response();
    for (name, value) in &parts.headers {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            json.headers_mut().append(name, value.clone());
        }
    }
    json
}
