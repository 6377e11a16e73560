//! textbank's SMS carrier adapters: the `Carrier` trait the send path calls,
//! the Twilio and Telnyx HTTP clients, their webhook signature checks and
//! parsers, a Twilio-compatible simulator for demos and load tests, and a
//! per-number send rate limiter.
#![forbid(unsafe_code)]
// No unwrap or expect on input, I/O or the database outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod error;
mod http;
pub mod rate_limit;
pub mod sim;
pub mod telnyx;
pub mod twilio;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use error::{SignatureError, SmsError};
pub use rate_limit::SendRateLimiter;
pub use sim::{SimCarrier, SimConfig};
pub use telnyx::{TelnyxCarrier, TelnyxConfig};
pub use twilio::{TwilioCarrier, TwilioConfig};

/// One text to hand to a carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// Our id for the message; carriers never see it, but logs tie to it.
    pub message_id: uuid::Uuid,
    /// E.164 sending number, or empty when a messaging service / profile
    /// picks the number.
    pub from: String,
    /// E.164 recipient.
    pub to: String,
    pub body: String,
    /// The platform's own text (an opt-out or opt-in confirmation, the help
    /// text) rather than one a texter clicked. Carriers send it the same;
    /// the simulator never answers it, as voters seldom do — and a drawn
    /// "Yes!" to a STOP confirmation would opt the voter back in.
    pub automated: bool,
}

/// What a carrier said about one submission.
///
/// The three arms keep "refused" and "don't know" apart because only the
/// first is safe to retry: resending after `Unknown` can text a voter twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SubmitOutcome {
    /// The carrier took the message.
    Accepted {
        carrier_message_id: String,
        /// The number the carrier will send from, when it told us.
        from: Option<String>,
    },
    /// The carrier refused it and said so; nothing was sent. `retryable` =
    /// trying again later may work (429, connection refused).
    Rejected {
        code: String,
        message: String,
        retryable: bool,
    },
    /// We cannot know whether the carrier took it (timeout after the request
    /// was written, 5xx after sending, unreadable response): never retry
    /// automatically.
    Unknown { reason: String },
}

/// A carrier that can take outbound texts.
#[async_trait::async_trait]
pub trait Carrier: Send + Sync + 'static {
    /// "sim" | "twilio" | "telnyx".
    fn name(&self) -> &'static str;

    /// Hands one message to the carrier. Never fails outright: every failure
    /// is classified into a `SubmitOutcome` so the caller can decide about
    /// retries without inspecting transport errors.
    async fn submit(&self, message: &OutboundMessage) -> SubmitOutcome;
}

/// Where a sent message stands according to the carrier: the domain's own
/// type, so a report needs no translating.
pub use textbank_domain::message::DeliveryStatus;

/// A status callback for a message we sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReport {
    pub carrier_message_id: String,
    pub status: DeliveryStatus,
    /// The carrier's error code (e.g. Twilio's "30007"), when it gave one.
    pub error_code: Option<String>,
    pub to: Option<String>,
    pub from: Option<String>,
}

/// A text a voter sent to one of our numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMessage {
    pub carrier_message_id: String,
    /// The voter's number.
    pub from: String,
    /// Our number.
    pub to: String,
    pub body: String,
}

/// What a carrier webhook told us.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "event", rename_all = "snake_case")]
pub enum WebhookEvent {
    Delivery(DeliveryReport),
    Inbound(InboundMessage),
    /// A well-formed event we have no use for; the string says which, so the
    /// handler can acknowledge it (carriers retry on non-2xx) and log it.
    Ignored(String),
}

/// Builds the HTTP client the carriers share.
///
/// reqwest is compiled without a rustls crypto provider (the tree already has
/// ring via sqlx; aws-lc-rs would add a C build), so the ring provider is
/// installed process-wide first. `install_default` fails only when a provider
/// is already installed, which is just as good, hence the ignored result.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, SmsError> {
    Ok(http_client_builder(timeout).build()?)
}

/// The settings of [`http_client`], for a caller that adds its own (the
/// webhook sender's address-checking resolver).
pub fn http_client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A connect that takes longer than this is a dead route; failing it early
    // still leaves the message safely retryable (nothing was sent).
    let connect_timeout = timeout.min(Duration::from_secs(5));
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        // Following a redirect would replay a POST as a GET (or repost it
        // elsewhere); neither carrier redirects API calls.
        .redirect(reqwest::redirect::Policy::none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_client_builds_with_the_ring_provider() {
        assert!(http_client(Duration::from_secs(3)).is_ok());
    }
}
