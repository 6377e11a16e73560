//! Twilio: the Programmable Messaging client, `X-Twilio-Signature` signing
//! and verification, and parsers for the status and inbound webhooks.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::hmac;
use serde::Deserialize;

use crate::http::{CarrierError, classify};
use crate::{
    Carrier, DeliveryReport, DeliveryStatus, InboundMessage, OutboundMessage, SmsError,
    SubmitOutcome, WebhookEvent,
};

/// The header Twilio puts its webhook signature in.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";

/// Twilio account settings.
#[derive(Clone, PartialEq, Eq)]
pub struct TwilioConfig {
    pub account_sid: String,
    /// Signs API calls and webhooks: never printed.
    pub auth_token: String,
    /// When set, Twilio picks the sending number from the service's pool and
    /// `OutboundMessage::from` is ignored.
    pub messaging_service_sid: Option<String>,
    /// Overridable so tests can point the client at a local server.
    pub api_base: String,
}

impl TwilioConfig {
    /// A config for the real API, sending `From` the message's own number.
    pub fn new(account_sid: impl Into<String>, auth_token: impl Into<String>) -> Self {
        Self {
            account_sid: account_sid.into(),
            auth_token: auth_token.into(),
            ..Self::default()
        }
    }
}

impl Default for TwilioConfig {
    fn default() -> Self {
        Self {
            account_sid: String::new(),
            auth_token: String::new(),
            messaging_service_sid: None,
            api_base: DEFAULT_API_BASE.to_owned(),
        }
    }
}

impl fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"[redacted]")
            .field("messaging_service_sid", &self.messaging_service_sid)
            .field("api_base", &self.api_base)
            .finish()
    }
}

/// Sends texts through Twilio's Messages API.
pub struct TwilioCarrier {
    config: TwilioConfig,
    http: reqwest::Client,
    status_callback_url: Option<String>,
}

impl TwilioCarrier {
    /// `status_callback_url` is our public status webhook; without it Twilio
    /// only reports delivery if the messaging service has a callback set.
    pub fn new(
        config: TwilioConfig,
        http: reqwest::Client,
        status_callback_url: Option<String>,
    ) -> Self {
        Self {
            config,
            http,
            status_callback_url,
        }
    }

    fn messages_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.config.api_base.trim_end_matches('/'),
            self.config.account_sid
        )
    }
}

impl fmt::Debug for TwilioCarrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioCarrier")
            .field("config", &self.config)
            .field("status_callback_url", &self.status_callback_url)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Carrier for TwilioCarrier {
    fn name(&self) -> &'static str {
        "twilio"
    }

    async fn submit(&self, message: &OutboundMessage) -> SubmitOutcome {
        let mut form: Vec<(&str, &str)> = vec![("To", &message.to), ("Body", &message.body)];
        match &self.config.messaging_service_sid {
            Some(service) => form.push(("MessagingServiceSid", service)),
            None => form.push(("From", &message.from)),
        }
        if let Some(callback) = &self.status_callback_url {
            form.push(("StatusCallback", callback));
        }
        let sent = self
            .http
            .post(self.messages_url())
            .basic_auth(&self.config.account_sid, Some(&self.config.auth_token))
            .form(&form)
            .send()
            .await;
        let outcome = classify("twilio", sent, parse_created, parse_error).await;
        tracing::debug!(message_id = %message.message_id, ?outcome, "twilio submit");
        outcome
    }
}

#[derive(Deserialize)]
struct Created {
    sid: String,
    #[serde(default)]
    from: Option<String>,
}

fn parse_created(body: &[u8]) -> Option<(String, Option<String>)> {
    let created: Created = serde_json::from_slice(body).ok()?;
    if created.sid.is_empty() {
        return None;
    }
    // With a messaging service Twilio may not have picked a number yet and
    // sends `"from": null` (or ""); report "unknown" rather than "".
    let from = created.from.filter(|f| !f.is_empty());
    Some((created.sid, from))
}

fn parse_error(body: &[u8]) -> CarrierError {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return CarrierError::default();
    };
    // Twilio's code is a JSON number; accept a string too in case a proxy or
    // a future API version sends one.
    let code = match value.get("code") {
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let message = value
        .get("message")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    CarrierError { code, message }
}

/// The string Twilio signs: the full URL, then each parameter's name and
/// value, sorted by name (then value, for repeated names).
fn signed_data(url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.as_bytes().to_vec();
    for (key, value) in sorted {
        data.extend_from_slice(key.as_bytes());
        data.extend_from_slice(value.as_bytes());
    }
    data
}

fn signing_key(auth_token: &str) -> hmac::Key {
    // Twilio's webhook signatures are HMAC-SHA1 by definition; ring keeps
    // SHA-1 behind this name to discourage new protocols from choosing it.
    hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes())
}

/// The `X-Twilio-Signature` value for a POST of `params` to `url`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let tag = hmac::sign(&signing_key(auth_token), &signed_data(url, params));
    BASE64.encode(tag.as_ref())
}

/// Checks an `X-Twilio-Signature` header. `url` must be exactly the URL
/// Twilio posted to (scheme, host, port, path and query as configured in
/// Twilio), which behind a proxy is not necessarily the one we received.
/// The comparison is constant-time.
pub fn verify_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header_value: &str,
) -> bool {
    let Ok(tag) = BASE64.decode(header_value.trim()) else {
        return false;
    };
    hmac::verify(&signing_key(auth_token), &signed_data(url, params), &tag).is_ok()
}

/// Decodes a form-encoded webhook body into its parameters, in order.
pub fn form_params(body: &[u8]) -> Result<Vec<(String, String)>, SmsError> {
    Ok(serde_urlencoded::from_bytes(body)?)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .filter(|value| !value.is_empty())
}

fn required<'a>(params: &'a [(String, String)], name: &'static str) -> Result<&'a str, SmsError> {
    param(params, name).ok_or(SmsError::MissingField(name))
}

/// Maps Twilio's `MessageStatus` values onto ours; `None` for statuses that
/// don't describe delivery progress (e.g. "receiving", "received").
fn delivery_status(status: &str) -> Option<DeliveryStatus> {
    Some(match status {
        "queued" | "accepted" | "scheduled" => DeliveryStatus::Queued,
        "sending" => DeliveryStatus::Sending,
        "sent" => DeliveryStatus::Sent,
        // "read" only exists for channels with read receipts; it implies
        // delivery.
        "delivered" | "read" => DeliveryStatus::Delivered,
        "undelivered" => DeliveryStatus::Undelivered,
        "failed" | "canceled" => DeliveryStatus::Failed,
        _ => return None,
    })
}

/// Parses a status callback (the `StatusCallback` webhook).
pub fn parse_status_callback(params: &[(String, String)]) -> Result<WebhookEvent, SmsError> {
    // SmsSid/SmsStatus are the deprecated names Twilio still sends; older
    // accounts' callbacks may carry only those.
    let sid = param(params, "MessageSid")
        .or_else(|| param(params, "SmsSid"))
        .ok_or(SmsError::MissingField("MessageSid"))?;
    let raw_status = param(params, "MessageStatus")
        .or_else(|| param(params, "SmsStatus"))
        .ok_or(SmsError::MissingField("MessageStatus"))?;
    let Some(status) = delivery_status(raw_status) else {
        return Ok(WebhookEvent::Ignored(format!(
            "twilio message status {raw_status:?}"
        )));
    };
    Ok(WebhookEvent::Delivery(DeliveryReport {
        carrier_message_id: sid.to_owned(),
        status,
        error_code: param(params, "ErrorCode").map(str::to_owned),
        to: param(params, "To").map(str::to_owned),
        from: param(params, "From").map(str::to_owned),
    }))
}

/// Parses an incoming-message webhook.
pub fn parse_inbound(params: &[(String, String)]) -> Result<WebhookEvent, SmsError> {
    let sid = param(params, "MessageSid")
        .or_else(|| param(params, "SmsSid"))
        .ok_or(SmsError::MissingField("MessageSid"))?;
    Ok(WebhookEvent::Inbound(InboundMessage {
        carrier_message_id: sid.to_owned(),
        from: required(params, "From")?.to_owned(),
        to: required(params, "To")?.to_owned(),
        // An empty body is a real message (e.g. MMS with only a picture), so
        // a missing Body is read as "".
        body: params
            .iter()
            .find(|(key, _)| key == "Body")
            .map(|(_, value)| value.clone())
            .unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const DOC_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    /// The signature Twilio's documentation gives for its example.
    const DOC_SIGNATURE: &str = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";

    fn doc_params() -> Vec<(String, String)> {
        // Deliberately not in sorted order: signing must sort them.
        p(&[
            ("To", "+18005551212"),
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("Caller", "+12349013030"),
            ("From", "+12349013030"),
        ])
    }

    #[test]
    fn signature_matches_twilio_documentation_example() {
        assert_eq!(signature("12345", DOC_URL, &doc_params()), DOC_SIGNATURE);
        assert!(verify_signature(
            "12345",
            DOC_URL,
            &doc_params(),
            DOC_SIGNATURE
        ));
    }

    #[test]
    fn tampered_param_fails_verification() {
        let mut params = doc_params();
        params[2].1 = "1235".to_owned();
        assert!(!verify_signature("12345", DOC_URL, &params, DOC_SIGNATURE));
    }

    #[test]
    fn added_param_fails_verification() {
        let mut params = doc_params();
        params.push(("Body".to_owned(), "hi".to_owned()));
        assert!(!verify_signature("12345", DOC_URL, &params, DOC_SIGNATURE));
    }

    #[test]
    fn different_url_fails_verification() {
        assert!(!verify_signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &doc_params(),
            DOC_SIGNATURE
        ));
    }

    #[test]
    fn wrong_token_fails_verification() {
        assert!(!verify_signature(
            "54321",
            DOC_URL,
            &doc_params(),
            DOC_SIGNATURE
        ));
    }

    #[test]
    fn non_base64_header_fails_verification() {
        assert!(!verify_signature(
            "12345",
            DOC_URL,
            &doc_params(),
            "not base64!"
        ));
        assert!(!verify_signature("12345", DOC_URL, &doc_params(), ""));
    }

    #[test]
    fn repeated_names_are_sorted_by_value() {
        let a = p(&[("MediaUrl", "b"), ("MediaUrl", "a")]);
        let b = p(&[("MediaUrl", "a"), ("MediaUrl", "b")]);
        assert_eq!(signature("t", "u", &a), signature("t", "u", &b));
    }

    #[test]
    fn form_params_decodes_percent_and_plus_encoding() {
        let params = form_params(b"Body=Yes%21+see+you&From=%2B15551234567").unwrap();
        assert_eq!(
            params,
            p(&[("Body", "Yes! see you"), ("From", "+15551234567")])
        );
    }

    #[test]
    fn form_params_of_an_empty_body_is_empty() {
        assert_eq!(form_params(b"").unwrap(), Vec::new());
    }

    #[test]
    fn status_callback_maps_delivered_with_numbers() {
        let event = parse_status_callback(&p(&[
            ("MessageSid", "SM123"),
            ("MessageStatus", "delivered"),
            ("To", "+15551230000"),
            ("From", "+15559870000"),
            ("ErrorCode", ""),
        ]))
        .unwrap();
        assert_eq!(
            event,
            WebhookEvent::Delivery(DeliveryReport {
                carrier_message_id: "SM123".to_owned(),
                status: DeliveryStatus::Delivered,
                error_code: None,
                to: Some("+15551230000".to_owned()),
                from: Some("+15559870000".to_owned()),
            })
        );
    }

    #[test]
    fn status_callback_maps_every_twilio_status() {
        let cases = [
            ("queued", DeliveryStatus::Queued),
            ("accepted", DeliveryStatus::Queued),
            ("scheduled", DeliveryStatus::Queued),
            ("sending", DeliveryStatus::Sending),
            ("sent", DeliveryStatus::Sent),
            ("delivered", DeliveryStatus::Delivered),
            ("read", DeliveryStatus::Delivered),
            ("undelivered", DeliveryStatus::Undelivered),
            ("failed", DeliveryStatus::Failed),
            ("canceled", DeliveryStatus::Failed),
        ];
        for (raw, expected) in cases {
            let event = parse_status_callback(&p(&[("MessageSid", "SM1"), ("MessageStatus", raw)]))
                .unwrap();
            match event {
                WebhookEvent::Delivery(report) => assert_eq!(report.status, expected, "{raw}"),
                other => panic!("{raw}: {other:?}"),
            }
        }
    }

    #[test]
    fn status_callback_falls_back_to_legacy_sms_fields_and_keeps_error_code() {
        let event = parse_status_callback(&p(&[
            ("SmsSid", "SM9"),
            ("SmsStatus", "undelivered"),
            ("ErrorCode", "30003"),
        ]))
        .unwrap();
        let WebhookEvent::Delivery(report) = event else {
            panic!("not a delivery: {event:?}");
        };
        assert_eq!(report.carrier_message_id, "SM9");
        assert_eq!(report.status, DeliveryStatus::Undelivered);
        assert_eq!(report.error_code.as_deref(), Some("30003"));
        assert_eq!(report.to, None);
    }

    #[test]
    fn status_callback_ignores_unknown_statuses() {
        let event =
            parse_status_callback(&p(&[("MessageSid", "SM1"), ("MessageStatus", "received")]))
                .unwrap();
        assert!(matches!(event, WebhookEvent::Ignored(_)));
    }

    #[test]
    fn status_callback_without_sid_or_status_is_rejected() {
        assert!(matches!(
            parse_status_callback(&p(&[("MessageStatus", "sent")])),
            Err(SmsError::MissingField("MessageSid"))
        ));
        assert!(matches!(
            parse_status_callback(&p(&[("MessageSid", "SM1")])),
            Err(SmsError::MissingField("MessageStatus"))
        ));
    }

    #[test]
    fn inbound_is_parsed() {
        let event = parse_inbound(&p(&[
            ("MessageSid", "SM5"),
            ("From", "+15551230000"),
            ("To", "+15559870000"),
            ("Body", "STOP"),
            ("NumMedia", "0"),
        ]))
        .unwrap();
        assert_eq!(
            event,
            WebhookEvent::Inbound(InboundMessage {
                carrier_message_id: "SM5".to_owned(),
                from: "+15551230000".to_owned(),
                to: "+15559870000".to_owned(),
                body: "STOP".to_owned(),
            })
        );
    }

    #[test]
    fn inbound_without_from_is_rejected() {
        assert!(matches!(
            parse_inbound(&p(&[("MessageSid", "SM5"), ("To", "+1"), ("Body", "x")])),
            Err(SmsError::MissingField("From"))
        ));
    }

    #[test]
    fn debug_output_redacts_the_auth_token() {
        let config = TwilioConfig::new("AC123", "super-secret-token");
        let printed = format!("{config:?}");
        assert!(!printed.contains("super-secret-token"), "{printed}");
        assert!(printed.contains("AC123"));
        let http = crate::http_client(std::time::Duration::from_secs(1)).unwrap();
        let carrier = TwilioCarrier::new(config, http, None);
        assert!(!format!("{carrier:?}").contains("super-secret-token"));
    }
}
