//! Carrier webhooks (`/webhooks/...`): no API key, the carrier's signature
//! instead. A missing or bad signature is a 403 and nothing is recorded;
//! anything verified is answered 200 (carriers retry anything else), even a
//! duplicate or an event we ignore.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use textbank_app::{TwilioHook, WebhookOutcome};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::server::AppState;

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// What became of a verified webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct Outcome {
    /// Whether an event was recorded.
    recorded: bool,
    /// The recorded event's log position.
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<u64>,
    /// The carrier sent this one before; nothing new was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate: Option<bool>,
    /// Why nothing was recorded (an event type textbank does not use).
    #[serde(skip_serializing_if = "Option::is_none")]
    ignored: Option<String>,
}

impl From<&WebhookOutcome> for Outcome {
    fn from(outcome: &WebhookOutcome) -> Self {
        let nothing = Self {
            recorded: false,
            position: None,
            duplicate: None,
            ignored: None,
        };
        match outcome {
            WebhookOutcome::Recorded(position) => Self {
                recorded: true,
                position: Some(*position),
                ..nothing
            },
            WebhookOutcome::Duplicate => Self {
                duplicate: Some(true),
                ..nothing
            },
            WebhookOutcome::Ignored(why) => Self {
                ignored: Some(why.to_string()),
                ..nothing
            },
        }
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

/// A Twilio webhook's handler. (A macro, since `#[utoipa::path]` needs the
/// path as a literal.)
macro_rules! twilio_handler {
    ($(#[doc = $doc:literal])* $name:ident, $path:literal, $hook:expr) => {
        $(#[doc = $doc])*
        #[utoipa::path(
            post,
            path = $path,
            tag = "webhooks",
            security(()),
            request_body(content = HashMap<String, String>, description = "Twilio's form fields", content_type = "application/x-www-form-urlencoded"),
            params(("X-Twilio-Signature" = String, Header, description = "Twilio's signature of the URL and form")),
            responses(
                (status = 200, description = "Verified (recorded, a duplicate, or ignored): an empty TwiML answer", content_type = "text/xml", body = String),
                (status = 400, description = "`invalid_request`: the body could not be read", body = ApiError),
                (status = 403, description = "`invalid_signature`: a missing or bad signature, or a number that is not ours; nothing was recorded", body = ApiError),
                (status = 413, description = "`payload_too_large`: larger than a webhook can be", body = ApiError),
                (status = 422, description = "`invalid_request`: a verified form without the fields Twilio sends", body = ApiError),
            ),
        )]
        pub async fn $name(
            State(state): State<AppState>,
            uri: Uri,
            headers: HeaderMap,
            raw: Result<Bytes, BytesRejection>,
        ) -> Result<Response, ApiError> {
            twilio(state, $hook, uri, headers, body(raw)?).await
        }
    };
}

twilio_handler!(
    /// Twilio's delivery status callbacks.
    twilio_status,
    "/webhooks/twilio/status",
    TwilioHook::Status
);
twilio_handler!(
    /// Twilio's inbound messages (a voter's reply).
    twilio_inbound,
    "/webhooks/twilio/inbound",
    TwilioHook::Inbound
);

/// Telnyx's webhooks: inbound messages and delivery status.
#[utoipa::path(
    post,
    path = "/webhooks/telnyx",
    tag = "webhooks",
    security(()),
    request_body(content = Object, description = "Telnyx's event", content_type = "application/json"),
    params(
        ("telnyx-signature-ed25519" = String, Header, description = "Telnyx's Ed25519 signature"),
        ("telnyx-timestamp" = String, Header, description = "When Telnyx signed it"),
    ),
    responses(
        (status = 200, description = "Verified: what became of it", body = Outcome),
        (status = 400, description = "`invalid_request`: the body could not be read", body = ApiError),
        (status = 403, description = "`invalid_signature`: a missing, bad or stale signature, or a number that is not ours; nothing was recorded", body = ApiError),
        (status = 413, description = "`payload_too_large`: larger than a webhook can be", body = ApiError),
        (status = 422, description = "`invalid_request`: a verified event without the fields Telnyx sends", body = ApiError),
    ),
)]
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
    Ok((StatusCode::OK, axum::Json(Outcome::from(&outcome))).into_response())
}
