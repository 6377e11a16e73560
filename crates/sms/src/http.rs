//! Turning a carrier API's HTTP answer (or transport failure) into a
//! `SubmitOutcome`. Twilio and Telnyx share these rules and differ only in
//! the JSON they send back, which the callers parse.

use reqwest::StatusCode;

use crate::SubmitOutcome;

/// A carrier's own error code and text, as far as its error body said.
#[derive(Debug, Default)]
pub(crate) struct CarrierError {
    pub code: Option<String>,
    pub message: Option<String>,
}

/// Classifies one API call.
///
/// `accepted` reads a success body into (carrier message id, sending number);
/// `refused` reads an error body. Both get the raw bytes because carriers
/// sometimes answer errors with HTML from a proxy, and that must not turn a
/// clear 4xx into a parse failure.
pub(crate) async fn classify(
    carrier: &'static str,
    sent: Result<reqwest::Response, reqwest::Error>,
    accepted: impl FnOnce(&[u8]) -> Option<(String, Option<String>)>,
    refused: impl FnOnce(&[u8]) -> CarrierError,
) -> SubmitOutcome {
    let response = match sent {
        Ok(response) => response,
        Err(error) => return transport_failure(carrier, &error),
    };
    let status = response.status();
    let body = response.bytes().await;

    if status.is_success() {
        let parsed = body.ok().and_then(|body| accepted(&body));
        return match parsed {
            Some((carrier_message_id, from)) => SubmitOutcome::Accepted {
                carrier_message_id,
                from,
            },
            // The carrier said yes but we can't tell which message id it
            // gave: it may well send, so this must not be retried.
            None => SubmitOutcome::Unknown {
                reason: format!("{carrier} answered HTTP {status} with an unreadable body"),
            },
        };
    }

    if status.is_server_error() {
        // A 5xx can come after the carrier queued the message (Twilio says
        // so for its 500s), so resending could double-text a voter.
        tracing::debug!(carrier, %status, "carrier answered with a server error");
        return SubmitOutcome::Unknown {
            reason: format!("{carrier} answered HTTP {status}"),
        };
    }

    let error = body.map(|body| refused(&body)).unwrap_or_default();
    let code = error
        .code
        .unwrap_or_else(|| format!("http_{}", status.as_u16()));
    let message = error.message.unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("unexpected response")
            .to_owned()
    });
    // 4xx means the carrier read the request and refused it; only "too many
    // requests" gets better by waiting. Redirects (not followed, see
    // `http_client`) mean a misconfigured api_base: nothing was sent.
    let retryable = status == StatusCode::TOO_MANY_REQUESTS;
    tracing::debug!(carrier, %status, %code, retryable, "carrier refused the message");
    SubmitOutcome::Rejected {
        code,
        message,
        retryable,
    }
}

fn transport_failure(carrier: &'static str, error: &reqwest::Error) -> SubmitOutcome {
    let detail = error_chain(error);
    if error.is_connect() {
        // No connection means no request bytes reached the carrier (this
        // includes a connect timeout), so a later retry cannot duplicate.
        tracing::debug!(carrier, %detail, "could not connect to the carrier");
        return SubmitOutcome::Rejected {
            code: "connect_failed".to_owned(),
            message: detail,
            retryable: true,
        };
    }
    if error.is_builder() {
        // The request was never built (e.g. a malformed api_base).
        return SubmitOutcome::Rejected {
            code: "invalid_request".to_owned(),
            message: detail,
            retryable: false,
        };
    }
    tracing::debug!(carrier, %detail, "carrier request failed after connecting");
    let reason = if error.is_timeout() {
        format!("{carrier} did not answer in time: {detail}")
    } else {
        format!("{carrier} request failed after connecting: {detail}")
    };
    SubmitOutcome::Unknown { reason }
}

/// reqwest's top-level message is generic ("error sending request"); the
/// useful part (refused, reset, timed out) is further down the chain.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
