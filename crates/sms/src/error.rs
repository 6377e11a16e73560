//! The crate's error types: `SmsError` for everything, and `SignatureError`
//! for the ways a webhook signature check can fail (kept separate so the API
//! can log *why* a webhook was refused while answering every case the same).

/// Errors from building clients, parsing webhooks and posting simulator
/// webhooks. Carrier submissions never return this: they classify failures
/// into `SubmitOutcome` instead.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("could not build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("malformed form body: {0}")]
    Form(#[from] serde_urlencoded::de::Error),
    #[error("malformed JSON body: {0}")]
    Json(#[from] serde_json::Error),
    #[error("webhook is missing the field `{0}`")]
    MissingField(&'static str),
    #[error("webhook signature rejected: {0}")]
    Signature(#[from] SignatureError),
    #[error("posting the webhook to {url} failed: {reason}")]
    WebhookDelivery { url: String, reason: String },
}

/// Why a webhook signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A signature or timestamp header was absent or empty.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A header or the configured key could not be decoded.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The signed timestamp is outside the replay window.
    #[error("timestamp outside the allowed window")]
    Expired,
    /// Well-formed, but not signed by the key we hold.
    #[error("signature does not match")]
    Mismatch,
}
