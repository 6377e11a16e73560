//! The Telnyx client against a stand-in for api.telnyx.com.

use serde_json::{Value, json};
use textbank_sms::{Carrier, SubmitOutcome, TelnyxCarrier, TelnyxConfig};

use crate::helpers::{MockServer, Recorded, Reply, client, message, rejected, submit};

const KEY: &str = "KEY0123456789ABCDEF_secret";
const PROFILE: &str = "4001767e-ce0f-4cae-9d5f-0d5e636e7809";
const HOOK: &str = "https://textbank.example/webhooks/telnyx";

fn carrier(api_base: &str, profile: Option<&str>, http: reqwest::Client) -> TelnyxCarrier {
    let config = TelnyxConfig {
        messaging_profile_id: profile.map(str::to_owned),
        api_base: api_base.to_owned(),
        ..TelnyxConfig::new(KEY, "")
    };
    TelnyxCarrier::new(config, http, Some(HOOK.to_owned()))
}

const CREATED: &str = r#"{"data":{"record_type":"message","direction":"outbound",
  "id":"40385f64-5717-4562-b3fc-2c963f66afa6","type":"SMS",
  "messaging_profile_id":"4001767e-ce0f-4cae-9d5f-0d5e636e7809",
  "from":{"phone_number":"+12025550100","carrier":"TELNYX LLC","line_type":"VoIP"},
  "to":[{"phone_number":"+15558675309","status":"queued","carrier":"T-MOBILE USA, INC.","line_type":"Wireless"}],
  "text":"Hi","media":[],"webhook_url":"https://textbank.example/webhooks/telnyx","webhook_failover_url":"",
  "encoding":"GSM-7","parts":1,"tags":[],"cost":null,"received_at":"2024-01-01T00:00:00.000+00:00",
  "sent_at":null,"completed_at":null,"valid_until":null,"errors":[]}}"#;

fn assert_is_messages_create(request: &Recorded) -> Value {
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v2/messages");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    serde_json::from_slice(&request.body).unwrap()
}

crate::carrier_contract! {
    connect: |base: &str, http| carrier(base, None, http),
    created: (200, CREATED),
    throttled: (
        429,
        r#"{"errors":[{"code":"10011","title":"Too many requests"}]}"#,
        "10011",
        "Too many requests",
    ),
    server_error: (503, r#"{"errors":[{"code":"10007","title":"Unexpected error"}]}"#),
}

/// Submits a message from `from` through a client with `profile` to an
/// API that creates it: the outcome, the message's text, and the JSON body
/// the client sent.
async fn submitted(from: &str, profile: Option<&str>) -> (SubmitOutcome, String, Value) {
    let server = MockServer::start(Reply::json(200, CREATED)).await;
    let message = message(from);
    let outcome = carrier(&server.base, profile, client())
        .submit(&message)
        .await;
    (
        outcome,
        message.body,
        assert_is_messages_create(&server.requests()[0]),
    )
}

#[tokio::test]
async fn created_message_is_accepted_with_id_and_sender() {
    let (outcome, text, body) = submitted("+12025550100", Some(PROFILE)).await;
    assert_eq!(
        outcome,
        SubmitOutcome::Accepted {
            carrier_message_id: "40385f64-5717-4562-b3fc-2c963f66afa6".to_owned(),
            from: Some("+12025550100".to_owned()),
        }
    );
    let expected = json!({
        "from": "+12025550100",
        "to": "+15558675309",
        "text": text,
        "messaging_profile_id": PROFILE,
        "webhook_url": HOOK,
    });
    assert_eq!(body, expected);
}

#[tokio::test]
async fn empty_sender_with_a_profile_leaves_from_out() {
    let (_, text, body) = submitted("", Some(PROFILE)).await;
    let expected = json!({
        "to": "+15558675309",
        "text": text,
        "messaging_profile_id": PROFILE,
        "webhook_url": HOOK,
    });
    assert_eq!(body, expected);
}

#[tokio::test]
async fn without_a_profile_the_request_has_no_profile_field() {
    let (_, text, body) = submitted("+12025550100", None).await;
    let expected = json!({
        "from": "+12025550100",
        "to": "+15558675309",
        "text": text,
        "webhook_url": HOOK,
    });
    assert_eq!(body, expected);
}

#[tokio::test]
async fn refused_message_is_rejected_for_good_with_telnyx_code() {
    let server = MockServer::start(Reply::json(
        400,
        r#"{"errors":[{"code":"40310","title":"Invalid 'to' address","detail":"The 'to' address should be in E.164 format.","source":{"pointer":"/to"},"meta":{"url":"https://developers.telnyx.com/docs/overview/errors/40310"}}]}"#,
    ))
    .await;
    let outcome = submit(carrier(&server.base, None, client())).await;
    assert_eq!(
        outcome,
        rejected(
            "40310",
            "The 'to' address should be in E.164 format.",
            false
        )
    );
}
