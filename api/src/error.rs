//! The API's one error type and its JSON shape:
//! `{"error":{"code":"…","message":"…"}}`. HTTP status codes are chosen here
//! and nowhere else; internal failures are logged in full and answered with
//! an opaque message.

use axum::Json;
use axum::extract::path::ErrorKind as PathErrorKind;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use textbank_app::AppError;
use textbank_domain::message::BlockReason;
use textbank_store::StoreError;

/// How long a client waits before asking again while storage is down.
const STORAGE_RETRY_AFTER_SECS: u64 = 2;

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

    /// A 422 `invalid_request`: a parameter the handler could not read.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
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

    /// An error answer that a handler did not write (axum's or a layer's
    /// plain-text or empty one), given a stable code by its status.
    pub fn from_status(status: StatusCode, message: impl Into<String>) -> Self {
        let code = match status {
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::REQUEST_TIMEOUT => "request_timeout",
            StatusCode::LENGTH_REQUIRED => "length_required",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::URI_TOO_LONG => "uri_too_long",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid_request",
            StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            status if status.is_server_error() => "internal",
            _ => "bad_request",
        };
        Self::new(status, code, message)
    }

    /// Hyper's answer to a request it could not parse, with the reason.
    pub fn unparsable_request(status: StatusCode) -> Self {
        let message = match status {
            StatusCode::URI_TOO_LONG => "the URL is too long",
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
                "the request's headers are too large or too many"
            }
            _ => {
                "the request is not valid HTTP: its method, path or a header holds \
                 characters HTTP does not allow (control characters, or non-ASCII bytes in the path)"
            }
        };
        Self::from_status(status, message)
    }

    /// A URL longer than the server reads.
    pub fn uri_too_long(limit: usize) -> Self {
        Self::from_status(
            StatusCode::URI_TOO_LONG,
            format!("the URL is longer than {limit} bytes"),
        )
    }

    /// Request headers larger than the server reads.
    pub fn headers_too_large(limit: usize) -> Self {
        Self::from_status(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request's headers are larger than {limit} bytes"),
        )
    }

    /// The response body: `{"error":{"code","message",…details}}`.
    pub fn json_body(&self) -> String {
        self.body().to_string()
    }

    fn body(&self) -> serde_json::Value {
        let mut error = serde_json::Map::new();
        error.insert("code".into(), json!(self.code));
        error.insert("message".into(), json!(self.message));
        error.extend(self.details.clone().unwrap_or_default());
        json!({ "error": error })
    }

    /// The database is unreachable or overloaded: 503 with `Retry-After`,
    /// so clients and load balancers wait and ask again. Logged, since an
    /// operator has to see it; the detail is not the caller's business.
    pub fn storage_unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "storage unavailable");
        Self::unavailable(
            "storage_unavailable",
            "the database is not available just now; try again shortly",
        )
        .retry_after_storage()
    }

    /// Adds the wait before asking again while storage is down (a
    /// `Retry-After` header and `retry_after_secs`).
    pub fn retry_after_storage(mut self) -> Self {
        self.details
            .get_or_insert_default()
            .insert("retry_after_secs".into(), json!(STORAGE_RETRY_AFTER_SECS));
        self
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

/// A JSON body that does not parse, has the wrong shape or type, or is too
/// large.
impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(err) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                err.body_text(),
            ),
            JsonRejection::JsonSyntaxError(err) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_json", err.body_text())
            }
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON with Content-Type: application/json",
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                other.body_text(),
            ),
            other => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                other.body_text(),
            ),
        }
    }
}

/// A query string with an unknown parameter or a value of the wrong type:
/// 422, like a body with the same problem.
impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            rejection.body_text(),
        )
    }
}

/// A path segment that is not UTF-8 (once percent-decoded) is the caller's
/// (400); a route whose handler wants parameters it does not have is ours.
impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        match &rejection {
            PathRejection::FailedToDeserializePathParams(err)
                if !matches!(err.kind(), PathErrorKind::WrongNumberOfParameters { .. }) =>
            {
                Self::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_path",
                    rejection.body_text(),
                )
            }
            _ => Self::internal(&rejection.body_text()),
        }
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
            _ if err.is_unavailable() => Self::storage_unavailable(&err),
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
            AppError::ConflictBy { code, .. } => Self::new(StatusCode::CONFLICT, code, message),
            AppError::TooLarge(_) => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
            }
            AppError::OverLimit { code, limit, .. } => {
                let mut error = Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message);
                let mut details = serde_json::Map::new();
                details.insert("limit".into(), json!(limit));
                error.details = Some(details);
                error
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
            AppError::Inconsistent(detail) => Self::internal(&detail),
            AppError::Store(err) => err.into(),
            AppError::Projection(textbank_projections::ProjectionError::Store(err)) => err.into(),
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
        | BlockReason::AlreadyMessaged
        | BlockReason::NoCarrier => StatusCode::CONFLICT,
        BlockReason::TokenExpired => StatusCode::GONE,
        BlockReason::NotYourToken | BlockReason::NotAssigned => StatusCode::FORBIDDEN,
        BlockReason::TokenInvalid
        | BlockReason::IdempotencyKeyReused
        | BlockReason::MessageTooLong => StatusCode::UNPROCESSABLE_ENTITY,
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
        let mut response = (self.status, Json(self.body())).into_response();
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

    #[test]
    fn an_unreachable_database_is_503_with_retry_after_and_no_details() {
        let refused = || {
            StoreError::Database(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "connect to 10.0.0.7:5432 refused",
            )))
        };
        for err in [
            ApiError::from(refused()),
            ApiError::from(AppError::Store(refused())),
            ApiError::from(AppError::Projection(refused().into())),
        ] {
            assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(err.code, "storage_unavailable");
            assert!(!err.message.contains("10.0.0.7"));
            let response = err.into_response();
            assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        }
        // A genuinely unexpected failure stays an opaque 500.
        let corrupt = ApiError::from(StoreError::Corrupt("bad row".into()));
        assert_eq!(corrupt.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(corrupt.code, "internal");
    }

    fn sqlx_error() -> StoreError {
        StoreError::Corrupt("row 7 secret detail".into())
    }
}
