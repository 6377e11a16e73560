//! Telnyx: the v2 Messages API client, Ed25519 webhook verification and the
//! messaging webhook parser.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use ring::signature::{ED25519, UnparsedPublicKey};
use serde::Deserialize;

use crate::http::{CarrierError, classify};
use crate::{
    Carrier, DeliveryReport, DeliveryStatus, InboundMessage, OutboundMessage, SignatureError,
    SmsError, SubmitOutcome, WebhookEvent,
};

/// Header carrying the base64 Ed25519 signature.
pub const SIGNATURE_HEADER: &str = "telnyx-signature-ed25519";
/// Header carrying the Unix-seconds timestamp that is signed with the body.
pub const TIMESTAMP_HEADER: &str = "telnyx-timestamp";

pub const DEFAULT_API_BASE: &str = "https://api.telnyx.com";

/// How far a webhook's timestamp may be from our clock. Telnyx's SDKs use
/// five minutes; it bounds how long a captured webhook can be replayed.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;

/// Telnyx account settings.
#[derive(Clone, PartialEq, Eq)]
pub struct TelnyxConfig {
    /// Authorizes API calls: never printed.
    pub api_key: String,
    /// Base64 Ed25519 public key from the Telnyx portal, for webhooks.
    pub public_key: String,
    /// When set, Telnyx may pick the sending number from the profile.
    pub messaging_profile_id: Option<String>,
    /// Overridable so tests can point the client at a local server.
    pub api_base: String,
}

impl TelnyxConfig {
    pub fn new(api_key: impl Into<String>, public_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            public_key: public_key.into(),
            ..Self::default()
        }
    }
}

impl Default for TelnyxConfig {
    fn default() -> Self {
        Self {
            api_key: String::new(),
            public_key: String::new(),
            messaging_profile_id: None,
            api_base: DEFAULT_API_BASE.to_owned(),
        }
    }
}

impl fmt::Debug for TelnyxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The public key is not secret, but it is long and useless in logs.
        f.debug_struct("TelnyxConfig")
            .field("api_key", &"[redacted]")
            .field("public_key_set", &!self.public_key.is_empty())
            .field("messaging_profile_id", &self.messaging_profile_id)
            .field("api_base", &self.api_base)
            .finish()
    }
}

/// Sends texts through Telnyx's v2 Messages API.
pub struct TelnyxCarrier {
    config: TelnyxConfig,
    http: reqwest::Client,
    webhook_url: Option<String>,
}

impl TelnyxCarrier {
    /// `webhook_url` overrides the messaging profile's webhook for the
    /// delivery reports of messages sent through this carrier.
    pub fn new(config: TelnyxConfig, http: reqwest::Client, webhook_url: Option<String>) -> Self {
        Self {
            config,
            http,
            webhook_url,
        }
    }

    fn request_body(&self, message: &OutboundMessage) -> serde_json::Value {
        let mut body = serde_json::Map::new();
        // With a profile and no number, Telnyx picks one from the profile's
        // pool; an empty "from" would instead be refused as invalid.
        if !(message.from.is_empty() && self.config.messaging_profile_id.is_some()) {
            body.insert("from".to_owned(), message.from.clone().into());
        }
        body.insert("to".to_owned(), message.to.clone().into());
        body.insert("text".to_owned(), message.body.clone().into());
        if let Some(profile) = &self.config.messaging_profile_id {
            body.insert("messaging_profile_id".to_owned(), profile.clone().into());
        }
        if let Some(url) = &self.webhook_url {
            body.insert("webhook_url".to_owned(), url.clone().into());
        }
        serde_json::Value::Object(body)
    }
}

impl fmt::Debug for TelnyxCarrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelnyxCarrier")
            .field("config", &self.config)
            .field("webhook_url", &self.webhook_url)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Carrier for TelnyxCarrier {
    fn name(&self) -> &'static str {
        "telnyx"
    }

    async fn submit(&self, message: &OutboundMessage) -> SubmitOutcome {
        let url = format!("{}/v2/messages", self.config.api_base.trim_end_matches('/'));
        let sent = self
            .http
            .post(url)
            .bearer_auth(&self.config.api_key)
            .json(&self.request_body(message))
            .send()
            .await;
        let outcome = classify("telnyx", sent, parse_created, parse_error).await;
        tracing::debug!(message_id = %message.message_id, ?outcome, "telnyx submit");
        outcome
    }
}

#[derive(Deserialize)]
struct Created {
    data: CreatedData,
}

#[derive(Deserialize)]
struct CreatedData {
    id: String,
    #[serde(default)]
    from: Option<Party>,
}

#[derive(Deserialize)]
struct Party {
    #[serde(default)]
    phone_number: Option<String>,
}

fn parse_created(body: &[u8]) -> Option<(String, Option<String>)> {
    let created: Created = serde_json::from_slice(body).ok()?;
    if created.data.id.is_empty() {
        return None;
    }
    let from = created
        .data
        .from
        .and_then(|party| party.phone_number)
        .filter(|number| !number.is_empty());
    Some((created.data.id, from))
}

fn parse_error(body: &[u8]) -> CarrierError {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return CarrierError::default();
    };
    let Some(first) = value
        .get("errors")
        .and_then(serde_json::Value::as_array)
        .and_then(|errors| errors.first())
    else {
        return CarrierError::default();
    };
    let text = |field: &str| {
        first
            .get(field)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    CarrierError {
        code: first.get("code").and_then(code_string),
        message: text("detail").or_else(|| text("title")),
    }
}

/// Telnyx documents error codes as strings but has sent numbers.
fn code_string(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Checks a Telnyx webhook: `signature_b64` must be the Ed25519 signature of
/// `"{timestamp}|{body}"` under `public_key_b64`, and `timestamp` (Unix
/// seconds) must be within five minutes of `now` either way.
///
/// The signature is checked before the timestamp so that `Expired` means
/// "genuine but stale" (a replay or a slow retry), not "anything old".
pub fn verify_webhook(
    public_key_b64: &str,
    signature_b64: &str,
    timestamp: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let signature_b64 = signature_b64.trim();
    let timestamp = timestamp.trim();
    if signature_b64.is_empty() {
        return Err(SignatureError::Missing("signature"));
    }
    if timestamp.is_empty() {
        return Err(SignatureError::Missing("timestamp"));
    }
    let signed_at: i64 = timestamp
        .parse()
        .map_err(|_| SignatureError::Malformed("timestamp"))?;
    let public_key = BASE64
        .decode(public_key_b64.trim())
        .map_err(|_| SignatureError::Malformed("public key"))?;
    if public_key.len() != 32 {
        return Err(SignatureError::Malformed("public key"));
    }
    let signature = BASE64
        .decode(signature_b64)
        .map_err(|_| SignatureError::Malformed("signature"))?;
    if signature.len() != 64 {
        return Err(SignatureError::Malformed("signature"));
    }

    let mut message = Vec::with_capacity(timestamp.len() + 1 + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b'|');
    message.extend_from_slice(body);
    UnparsedPublicKey::new(&ED25519, &public_key)
        .verify(&message, &signature)
        .map_err(|_| SignatureError::Mismatch)?;

    let skew = now.timestamp().saturating_sub(signed_at).saturating_abs();
    if skew > TIMESTAMP_TOLERANCE_SECS {
        return Err(SignatureError::Expired);
    }
    Ok(())
}

#[derive(Deserialize)]
struct Envelope {
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    event_type: String,
    #[serde(default)]
    payload: Option<Payload>,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    to: Option<Vec<Recipient>>,
    #[serde(default)]
    from: Option<Party>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    errors: Option<Vec<PayloadError>>,
}

#[derive(Deserialize)]
struct Recipient {
    #[serde(default)]
    phone_number: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
struct PayloadError {
    #[serde(default)]
    code: Option<serde_json::Value>,
}

/// Maps a recipient's `status` onto ours; `None` for statuses we don't know.
fn delivery_status(status: &str) -> Option<DeliveryStatus> {
    Some(match status {
        "queued" => DeliveryStatus::Queued,
        "sending" => DeliveryStatus::Sending,
        // "delivery_unconfirmed" is final at Telnyx (the destination carrier
        // sent no receipt), but the message did leave: report it as sent so
        // it is neither counted delivered nor failed.
        "sent" | "delivery_unconfirmed" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "sending_failed" | "delivery_failed" => DeliveryStatus::Failed,
        _ => return None,
    })
}

/// Parses a Telnyx v2 messaging webhook body (verify it first).
pub fn parse_webhook(body: &[u8]) -> Result<WebhookEvent, SmsError> {
    let envelope: Envelope = serde_json::from_slice(body)?;
    let event_type = envelope.data.event_type;
    let is_delivery = matches!(event_type.as_str(), "message.sent" | "message.finalized");
    if !is_delivery && event_type != "message.received" {
        return Ok(WebhookEvent::Ignored(format!(
            "telnyx event {event_type:?}"
        )));
    }
    let payload = envelope
        .data
        .payload
        .ok_or(SmsError::MissingField("data.payload"))?;
    let id = payload
        .id
        .filter(|id| !id.is_empty())
        .ok_or(SmsError::MissingField("data.payload.id"))?;
    let first_to = payload.to.and_then(|to| to.into_iter().next());
    let from = payload
        .from
        .and_then(|party| party.phone_number)
        .filter(|number| !number.is_empty());

    if is_delivery {
        let (to, raw_status) = match first_to {
            Some(recipient) => (recipient.phone_number, recipient.status),
            None => (None, None),
        };
        let raw_status = raw_status.ok_or(SmsError::MissingField("data.payload.to[0].status"))?;
        let Some(status) = delivery_status(&raw_status) else {
            return Ok(WebhookEvent::Ignored(format!(
                "telnyx message status {raw_status:?}"
            )));
        };
        let error_code = payload
            .errors
            .and_then(|errors| errors.into_iter().next())
            .and_then(|error| error.code)
            .and_then(|code| code_string(&code));
        return Ok(WebhookEvent::Delivery(DeliveryReport {
            carrier_message_id: id,
            status,
            error_code,
            to: to.filter(|number| !number.is_empty()),
            from,
        }));
    }

    let to = first_to
        .and_then(|recipient| recipient.phone_number)
        .filter(|number| !number.is_empty())
        .ok_or(SmsError::MissingField("data.payload.to[0].phone_number"))?;
    Ok(WebhookEvent::Inbound(InboundMessage {
        carrier_message_id: id,
        from: from.ok_or(SmsError::MissingField("data.payload.from.phone_number"))?,
        to,
        body: payload.text.unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    struct Signer {
        pair: Ed25519KeyPair,
    }

    impl Signer {
        fn new() -> Self {
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
            Self {
                pair: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(),
            }
        }

        fn public_b64(&self) -> String {
            BASE64.encode(self.pair.public_key().as_ref())
        }

        fn sign(&self, timestamp: &str, body: &[u8]) -> String {
            let mut message = format!("{timestamp}|").into_bytes();
            message.extend_from_slice(body);
            BASE64.encode(self.pair.sign(&message).as_ref())
        }
    }

    const BODY: &[u8] = br#"{"data":{"event_type":"message.finalized"}}"#;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).single().unwrap()
    }

    #[test]
    fn a_fresh_correctly_signed_webhook_verifies() {
        let signer = Signer::new();
        let sig = signer.sign("1700000000", BODY);
        assert_eq!(
            verify_webhook(
                &signer.public_b64(),
                &sig,
                "1700000000",
                BODY,
                at(1_700_000_010)
            ),
            Ok(())
        );
    }

    #[test]
    fn a_tampered_body_is_a_mismatch() {
        let signer = Signer::new();
        let sig = signer.sign("1700000000", BODY);
        let tampered = br#"{"data":{"event_type":"message.received"}}"#;
        assert_eq!(
            verify_webhook(
                &signer.public_b64(),
                &sig,
                "1700000000",
                tampered,
                at(1_700_000_000)
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_changed_timestamp_is_a_mismatch() {
        let signer = Signer::new();
        let sig = signer.sign("1700000000", BODY);
        assert_eq!(
            verify_webhook(
                &signer.public_b64(),
                &sig,
                "1700000001",
                BODY,
                at(1_700_000_000)
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn another_key_is_a_mismatch() {
        let signer = Signer::new();
        let other = Signer::new();
        let sig = signer.sign("1700000000", BODY);
        assert_eq!(
            verify_webhook(
                &other.public_b64(),
                &sig,
                "1700000000",
                BODY,
                at(1_700_000_000)
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_timestamp_over_five_minutes_old_is_expired() {
        let signer = Signer::new();
        let sig = signer.sign("1700000000", BODY);
        let key = signer.public_b64();
        assert_eq!(
            verify_webhook(&key, &sig, "1700000000", BODY, at(1_700_000_300)),
            Ok(())
        );
        assert_eq!(
            verify_webhook(&key, &sig, "1700000000", BODY, at(1_700_000_301)),
            Err(SignatureError::Expired)
        );
    }

    #[test]
    fn a_timestamp_over_five_minutes_ahead_is_expired() {
        let signer = Signer::new();
        let sig = signer.sign("1700000400", BODY);
        assert_eq!(
            verify_webhook(
                &signer.public_b64(),
                &sig,
                "1700000400",
                BODY,
                at(1_700_000_000)
            ),
            Err(SignatureError::Expired)
        );
    }

    #[test]
    fn missing_headers_are_reported_as_missing() {
        let signer = Signer::new();
        let key = signer.public_b64();
        assert_eq!(
            verify_webhook(&key, "", "1700000000", BODY, at(1_700_000_000)),
            Err(SignatureError::Missing("signature"))
        );
        let sig = signer.sign("1700000000", BODY);
        assert_eq!(
            verify_webhook(&key, &sig, " ", BODY, at(1_700_000_000)),
            Err(SignatureError::Missing("timestamp"))
        );
    }

    #[test]
    fn undecodable_inputs_are_malformed() {
        let signer = Signer::new();
        let key = signer.public_b64();
        let sig = signer.sign("1700000000", BODY);
        let now = at(1_700_000_000);
        assert_eq!(
            verify_webhook(&key, "***", "1700000000", BODY, now),
            Err(SignatureError::Malformed("signature"))
        );
        assert_eq!(
            verify_webhook(&key, &BASE64.encode([0u8; 63]), "1700000000", BODY, now),
            Err(SignatureError::Malformed("signature"))
        );
        assert_eq!(
            verify_webhook(&key, &sig, "yesterday", BODY, now),
            Err(SignatureError::Malformed("timestamp"))
        );
        assert_eq!(
            verify_webhook("%%%", &sig, "1700000000", BODY, now),
            Err(SignatureError::Malformed("public key"))
        );
        assert_eq!(
            verify_webhook(&BASE64.encode([7u8; 31]), &sig, "1700000000", BODY, now),
            Err(SignatureError::Malformed("public key"))
        );
    }

    #[test]
    fn finalized_delivery_failure_carries_the_error_code() {
        let body = br#"{"data":{"event_type":"message.finalized","id":"evt-1","occurred_at":"2019-12-09T21:32:14.148+00:00","record_type":"event",
            "payload":{"id":"msg-1","direction":"outbound","type":"SMS","text":"Hi",
                "from":{"phone_number":"+13125550001","carrier":"Telnyx","line_type":"Wireless"},
                "to":[{"phone_number":"+13125550002","status":"delivery_failed","carrier":"T-Mobile USA","line_type":"Wireless"}],
                "errors":[{"code":"40300","title":"Blocked as spam","detail":"..."}]}},
            "meta":{"attempt":1,"delivered_to":"https://example.com/hooks"}}"#;
        assert_eq!(
            parse_webhook(body).unwrap(),
            WebhookEvent::Delivery(DeliveryReport {
                carrier_message_id: "msg-1".to_owned(),
                status: DeliveryStatus::Failed,
                error_code: Some("40300".to_owned()),
                to: Some("+13125550002".to_owned()),
                from: Some("+13125550001".to_owned()),
            })
        );
    }

    #[test]
    fn delivery_statuses_map_as_documented() {
        let cases = [
            ("queued", DeliveryStatus::Queued),
            ("sending", DeliveryStatus::Sending),
            ("sent", DeliveryStatus::Sent),
            ("delivered", DeliveryStatus::Delivered),
            ("sending_failed", DeliveryStatus::Failed),
            ("delivery_failed", DeliveryStatus::Failed),
            ("delivery_unconfirmed", DeliveryStatus::Sent),
        ];
        for (raw, expected) in cases {
            let body = format!(
                r#"{{"data":{{"event_type":"message.sent","payload":{{"id":"m","to":[{{"phone_number":"+1","status":"{raw}"}}],"errors":[]}}}}}}"#
            );
            match parse_webhook(body.as_bytes()).unwrap() {
                WebhookEvent::Delivery(report) => {
                    assert_eq!(report.status, expected, "{raw}");
                    assert_eq!(report.error_code, None);
                }
                other => panic!("{raw}: {other:?}"),
            }
        }
    }

    #[test]
    fn received_message_is_inbound() {
        let body = br#"{"data":{"event_type":"message.received","id":"evt-2",
            "payload":{"id":"msg-2","direction":"inbound","text":"STOP",
                "from":{"phone_number":"+13125550002","carrier":"T-Mobile USA"},
                "to":[{"phone_number":"+13125550001","status":"webhook_delivered"}]}}}"#;
        assert_eq!(
            parse_webhook(body).unwrap(),
            WebhookEvent::Inbound(InboundMessage {
                carrier_message_id: "msg-2".to_owned(),
                from: "+13125550002".to_owned(),
                to: "+13125550001".to_owned(),
                body: "STOP".to_owned(),
            })
        );
    }

    #[test]
    fn other_event_types_are_ignored() {
        let body = br#"{"data":{"event_type":"number_order.complete","payload":{}}}"#;
        assert!(matches!(
            parse_webhook(body).unwrap(),
            WebhookEvent::Ignored(_)
        ));
    }

    #[test]
    fn malformed_webhooks_are_rejected() {
        assert!(matches!(parse_webhook(b"not json"), Err(SmsError::Json(_))));
        assert!(matches!(
            parse_webhook(br#"{"data":{"event_type":"message.sent"}}"#),
            Err(SmsError::MissingField("data.payload"))
        ));
        assert!(matches!(
            parse_webhook(
                br#"{"data":{"event_type":"message.sent","payload":{"id":"m","to":[]}}}"#
            ),
            Err(SmsError::MissingField("data.payload.to[0].status"))
        ));
        assert!(matches!(
            parse_webhook(br#"{"data":{"event_type":"message.received","payload":{"id":"m","to":[{"phone_number":"+1"}]}}}"#),
            Err(SmsError::MissingField("data.payload.from.phone_number"))
        ));
    }

    #[test]
    fn debug_output_redacts_the_api_key() {
        let config = TelnyxConfig::new("KEY-very-secret", "cHVibGlj");
        let printed = format!("{config:?}");
        assert!(!printed.contains("KEY-very-secret"), "{printed}");
    }
}
