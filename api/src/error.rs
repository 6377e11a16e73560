//! The API's one error type and its JSON shape:
//! `{"error":{"code":"…","message":"…"}}`. HTTP status codes are chosen here
//! and nowhere else; internal failures are logged in full and answered with
//! an opaque message.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use textbank_app::AppError;
use textbank_domain::message::BlockReason;
use textbank_store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, machine-readable: clients branch on it.
    pub code: &'static str,
    /// For people; may change wording.
    pub message: String,
    /// Extra fields for the error object (e.g. when sending reopens).
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not accept that method",
        )
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// A failure that is ours, not the caller's: logged, not explained.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match &err {
            StoreError::Conflict { .. } | StoreError::IdempotencyMismatch { .. } => {
                Self::new(StatusCode::CONFLICT, "conflict", err.to_string())
            }
            StoreError::InvalidInput(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                err.to_string(),
            ),
            _ => Self::internal(&err),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        let message = err.to_string();
        match err {
            AppError::Unauthenticated(_) => {
                Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
            }
            AppError::Forbidden(_) => Self::new(StatusCode::FORBIDDEN, "forbidden", message),
            AppError::ForbiddenBy { code, .. } => Self::new(StatusCode::FORBIDDEN, code, message),
            AppError::SecretRequired { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "secret_required", message)
            }
            AppError::AddressNotAllowed { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "address_not_allowed",
                message,
            ),
            AppError::TooMany { code, .. } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
            }
            AppError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, "not_found", message),
            AppError::Invalid { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
            }
            AppError::Conflict(_) => Self::new(StatusCode::CONFLICT, "conflict", message),
            AppError::TooLarge(_) => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
            }
            AppError::Blocked {
                reason, next_open, ..
            } => {
                let mut error = Self::new(blocked_status(reason), reason.code(), message);
                if let Some(next_open) = next_open {
                    let mut details = serde_json::Map::new();
                    details.insert("next_open".into(), json!(next_open));
                    error.details = Some(details);
                }
                error
            }
            AppError::Unavailable { code, .. } => Self::unavailable(code, message),
            AppError::RateLimited {
                retry_after_secs, ..
            } => {
                let mut error =
                    Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message);
                let mut details = serde_json::Map::new();
                details.insert("retry_after_secs".into(), json!(retry_after_secs));
                error.details = Some(details);
                error
            }
            AppError::BadSignature(_) => {
                Self::new(StatusCode::FORBIDDEN, "invalid_signature", message)
            }
            AppError::Io(err) => Self::internal(&err),
            AppError::Store(err) => err.into(),
            AppError::Projection(err) => Self::internal(&err),
        }
    }
}

/// Refusals of the caller's own making are 4xx, each with its own code: a
/// click that cannot be honoured now (409), one that never will (410 for an
/// expired token), a token that is not theirs (403), a forged one (422), and
/// a click faster than a person (429).
fn blocked_status(reason: BlockReason) -> StatusCode {
    match reason {
        BlockReason::OptedOut
        | BlockReason::QuietHours
        | BlockReason::CampaignNotOpen
        | BlockReason::TokenUsed
        | BlockReason::AlreadyMessaged => StatusCode::CONFLICT,
        BlockReason::TokenExpired => StatusCode::GONE,
        BlockReason::NotYourToken | BlockReason::NotAssigned => StatusCode::FORBIDDEN,
        BlockReason::TokenInvalid => StatusCode::UNPROCESSABLE_ENTITY,
        BlockReason::TooFast => StatusCode::TOO_MANY_REQUESTS,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self
            .details
            .as_ref()
            .and_then(|details| details.get("retry_after_secs"))
            .and_then(|secs| HeaderValue::from_str(&secs.to_string()).ok());
        let mut error = serde_json::Map::new();
        error.insert("code".into(), json!(self.code));
        error.insert("message".into(), json!(self.message));
        error.extend(self.details.unwrap_or_default());
        let body = json!({ "error": error });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(retry_after) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use textbank_domain::StreamId;
    use textbank_store::ExpectedVersion;

    #[test]
    fn conflicts_are_409_with_both_versions_in_the_message() {
        let err = ApiError::from(StoreError::Conflict {
            stream: StreamId::parse("campaign-1").unwrap(),
            expected: ExpectedVersion::Exact(3),
            actual: Some(5),
        });
        assert_eq!(err.status, StatusCode::CONFLICT);
        assert_eq!(err.code, "conflict");
        assert!(err.message.contains("version 3") && err.message.contains("version 5"));
    }

    #[test]
    fn database_failures_do_not_leak_details() {
        let err = ApiError::from(sqlx_error());
        assert_eq!(err.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(err.message, "internal server error");
    }

    fn sqlx_error() -> StoreError {
        StoreError::Corrupt("row 7 secret detail".into())
    }
}
