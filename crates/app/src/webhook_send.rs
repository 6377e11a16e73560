//! One outbound webhook attempt: the body signed after the Standard Webhooks
//! specification (`webhook-id`, `webhook-timestamp`, `webhook-signature`,
//! with the `standardwebhooks` crate), posted through the address-checking
//! client, and what came of it as an [`Attempt`]: time, status, latency,
//! error, and a short excerpt of the answer, never more.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use standardwebhooks::Webhook;
use uuid::Uuid;

use crate::AppError;
use crate::webhook_url::{CheckingResolver, check_url};

/// The most bytes of a receiver's answer kept with an attempt.
const EXCERPT_BYTES: usize = 256;
/// The longest error text kept with an attempt.
const MAX_ERROR_CHARS: usize = 300;
/// The prefix of a Standard Webhooks signing secret.
const SECRET_PREFIX: &str = "whsec_";

/// A new signing secret: `whsec_` and 32 random bytes in base64.
pub(crate) fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .unwrap_or_else(|_| panic!("the system random number generator failed"));
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The signer for a stored secret.
pub(crate) fn signer(secret: &str) -> Result<Webhook, AppError> {
    Webhook::new(secret)
        .map_err(|_| AppError::Inconsistent("a webhook signing secret does not decode".into()))
}

/// One attempt to deliver, as recorded and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    pub attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status; absent when none came (refused address,
    /// connection failure, timeout).
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// Why the attempt failed, when it did.
    pub error: Option<String>,
    /// The first bytes of the receiver's answer (at most 256).
    pub response_excerpt: Option<String>,
}

impl Attempt {
    /// A 2xx answer: the receiver has the message.
    pub fn succeeded(&self) -> bool {
        self.status_code
            .is_some_and(|code| (200..300).contains(&code))
    }
}

/// The HTTP client outbound webhooks go through.
#[derive(Clone)]
pub(crate) struct WebhookSender {
    client: reqwest::Client,
    allow_private: bool,
}

impl WebhookSender {
    pub(crate) fn new(allow_private: bool, timeout: Duration) -> Result<Self, AppError> {
        let client = textbank_sms::http_client_builder(timeout)
            .dns_resolver(std::sync::Arc::new(CheckingResolver { allow_private }))
            // A proxy would resolve the name itself, past the check.
            .no_proxy()
            .build()
            .map_err(|err| AppError::Inconsistent(format!("webhook HTTP client: {err}")))?;
        Ok(Self {
            client,
            allow_private,
        })
    }

    /// Posts `body` to `url`, signed with `signer` under `message_id` and
    /// the time `now`.
    pub(crate) async fn attempt(
        &self,
        url: &str,
        message_id: Uuid,
        body: &[u8],
        signer: &Webhook,
        now: DateTime<Utc>,
    ) -> Attempt {
        let started = Instant::now();
        let outcome = self
            .post(url, &message_id.to_string(), body, signer, now.timestamp())
            .await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status_code, error, response_excerpt) = match outcome {
            Ok((status, excerpt)) => {
                let error = (!(200..300).contains(&status))
                    .then(|| format!("the receiver answered HTTP {status}"));
                (Some(status), error, excerpt)
            }
            Err(error) => (None, Some(error), None),
        };
        Attempt {
            attempted_at: now,
            status_code,
            latency_ms,
            error,
            response_excerpt,
        }
    }

    /// The receiver's status and the first bytes of its answer.
    async fn post(
        &self,
        url: &str,
        id: &str,
        body: &[u8],
        signer: &Webhook,
        timestamp: i64,
    ) -> Result<(u16, Option<String>), String> {
        // A literal address never reaches the resolver: it is checked here,
        // at every attempt (the operator's leave may have been withdrawn).
        let url = check_url(url, self.allow_private).map_err(|err| bounded(&err.to_string()))?;
        let signature = signer
            .sign(id, timestamp, body)
            .map_err(|err| format!("signing failed: {err}"))?;
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", "textbank-webhooks/1")
            .header(standardwebhooks::HEADER_WEBHOOK_ID, id)
            .header(standardwebhooks::HEADER_WEBHOOK_TIMESTAMP, timestamp)
            .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
            .body(body.to_vec())
            .send()
            .await;
        let mut response = sent.map_err(|err| bounded(&error_chain(&err)))?;
        let status = response.status().as_u16();
        let mut excerpt: Vec<u8> = Vec::new();
        // Only the first bytes are read; the rest of a large answer is
        // dropped with the connection.
        while excerpt.len() < EXCERPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        excerpt.truncate(EXCERPT_BYTES);
        let excerpt = (!excerpt.is_empty()).then(|| String::from_utf8_lossy(&excerpt).into_owned());
        Ok((status, excerpt))
    }
}

/// An error and its causes, one after another: reqwest's own text hides
/// whether the connect was refused, timed out or hit an internal address.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn bounded(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_standard_webhooks_secrets_and_differ() {
        let first = new_secret();
        assert!(first.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&first[6..]).unwrap().len(), 32);
        assert_ne!(first, new_secret());
        assert!(signer(&first).is_ok());
    }

    #[tokio::test]
    async fn an_internal_receiver_is_refused_without_a_request() {
        let sender = WebhookSender::new(false, Duration::from_secs(2)).unwrap();
        let signer = signer(&new_secret()).unwrap();
        for url in ["https://127.0.0.1:9/hook", "https://localhost:9/hook"] {
            let attempt = sender
                .attempt(url, Uuid::now_v7(), b"{}", &signer, Utc::now())
                .await;
            assert_eq!(attempt.status_code, None);
            assert!(!attempt.succeeded());
            let error = attempt.error.unwrap();
            assert!(error.contains("internal"), "{url}: {error}");
        }
    }
}
