//! Carrier webhooks (`/webhooks/...`): no API key, the carrier's signature
//! instead. A missing or bad signature is a 403 and nothing is recorded;
//! anything verified is answered 200 (carriers retry anything else), even a
//! duplicate or an event we ignore.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use textbank_app::{TwilioHook, WebhookOutcome};

use crate::error::ApiError;
use crate::server::AppState;

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn outcome_json(outcome: &WebhookOutcome) -> serde_json::Value {
    match outcome {
        WebhookOutcome::Recorded(position) => json!({"recorded": true, "position": position}),
        WebhookOutcome::Duplicate => json!({"recorded": false, "duplicate": true}),
        WebhookOutcome::Ignored(why) => json!({"recorded": false, "ignored": why}),
    }
}

/// The raw body, or a JSON 413/400 when it is too large or unreadable.
fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let code = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "invalid_request"
        };
        ApiError::new(rejection.status(), code, rejection.body_text())
    })
}

async fn twilio(
    state: AppState,
    hook: TwilioHook,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let path_and_query = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    state
        .app
        .twilio_webhook(
            hook,
            &path_and_query,
            header(&headers, "x-twilio-signature"),
            &body,
        )
        .await?;
    // Twilio reads the answer as TwiML: an empty response sends nothing.
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml")],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>",
    )
        .into_response())
}

pub async fn twilio_status(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    twilio(state, TwilioHook::Status, uri, headers, body(raw)?).await
}

pub async fn twilio_inbound(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    twilio(state, TwilioHook::Inbound, uri, headers, body(raw)?).await
}

pub async fn telnyx(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body(raw)?;
    let outcome = state
        .app
        .telnyx_webhook(
            header(&headers, "telnyx-signature-ed25519"),
            header(&headers, "telnyx-timestamp"),
            &body,
        )
        .await?;
    Ok((StatusCode::OK, axum::Json(outcome_json(&outcome))).into_response())
}
