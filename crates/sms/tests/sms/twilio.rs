//! The Twilio client against a stand-in for api.twilio.com.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use textbank_sms::twilio::form_params;
use textbank_sms::{Carrier, SubmitOutcome, TwilioCarrier, TwilioConfig};

use crate::helpers::{MockServer, Recorded, Reply, client, message, pairs, rejected, submit};

const SID: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
const TOKEN: &str = "twilio-token-123";

fn carrier(api_base: &str, service: Option<&str>, http: reqwest::Client) -> TwilioCarrier {
    let config = TwilioConfig {
        messaging_service_sid: service.map(str::to_owned),
        api_base: api_base.to_owned(),
        ..TwilioConfig::new(SID, TOKEN)
    };
    TwilioCarrier::new(
        config,
        http,
        Some("https://textbank.example/webhooks/twilio/status".to_owned()),
    )
}

const CREATED: &str = r#"{"account_sid":"ACdeadbeefdeadbeefdeadbeefdeadbeef","api_version":"2010-04-01",
  "body":"Hi","date_created":"Thu, 24 Aug 2023 05:01:45 +0000","date_sent":null,"date_updated":null,
  "direction":"outbound-api","error_code":null,"error_message":null,"from":"+12025550100",
  "messaging_service_sid":null,"num_media":"0","num_segments":"1","price":null,"price_unit":"USD",
  "sid":"SM1f0e8ae6ade43cb3c0ce4525424e404f","status":"queued",
  "subresource_uris":{"media":"/2010-04-01/Accounts/ACdeadbeefdeadbeefdeadbeefdeadbeef/Messages/SM1f0e8ae6ade43cb3c0ce4525424e404f/Media.json"},
  "to":"+15558675309","uri":"/2010-04-01/Accounts/ACdeadbeefdeadbeefdeadbeefdeadbeef/Messages/SM1f0e8ae6ade43cb3c0ce4525424e404f.json"}"#;

fn assert_is_messages_create(request: &Recorded) {
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.path,
        format!("/2010-04-01/Accounts/{SID}/Messages.json")
    );
    let expected_auth = format!("Basic {}", BASE64.encode(format!("{SID}:{TOKEN}")));
    assert_eq!(
        request.header("authorization"),
        Some(expected_auth.as_str())
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

crate::carrier_contract! {
    connect: |base: &str, http| carrier(base, None, http),
    created: (201, CREATED),
    throttled: (
        429,
        r#"{"code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429}"#,
        "20429",
        "Too Many Requests",
    ),
    server_error: (
        500,
        r#"{"code": 20500, "message": "Internal Server Error", "status": 500}"#,
    ),
}

#[tokio::test]
async fn created_message_is_accepted_with_sid_and_sender() {
    let server = MockServer::start(Reply::json(201, CREATED)).await;
    let message = message("+12025550100");
    let outcome = carrier(&server.base, None, client()).submit(&message).await;

    assert_eq!(
        outcome,
        SubmitOutcome::Accepted {
            carrier_message_id: "SM1f0e8ae6ade43cb3c0ce4525424e404f".to_owned(),
            from: Some("+12025550100".to_owned()),
        }
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_is_messages_create(&requests[0]);
    let mut form = form_params(&requests[0].body).unwrap();
    form.sort();
    assert_eq!(
        form,
        pairs(&[
            ("Body", message.body.as_str()),
            ("From", "+12025550100"),
            (
                "StatusCallback",
                "https://textbank.example/webhooks/twilio/status"
            ),
            ("To", "+15558675309"),
        ])
    );
}

#[tokio::test]
async fn messaging_service_replaces_from_and_a_null_sender_is_none() {
    let body = CREATED
        .replace(r#""from":"+12025550100""#, r#""from":null"#)
        .replace(
            r#""messaging_service_sid":null"#,
            r#""messaging_service_sid":"MG9752274e9e519418a7406176694466fa""#,
        );
    let server = MockServer::start(Reply::json(201, &body)).await;
    let outcome = carrier(
        &server.base,
        Some("MG9752274e9e519418a7406176694466fa"),
        client(),
    )
    .submit(&message(""))
    .await;

    assert_eq!(
        outcome,
        SubmitOutcome::Accepted {
            carrier_message_id: "SM1f0e8ae6ade43cb3c0ce4525424e404f".to_owned(),
            from: None,
        }
    );
    let request = &server.requests()[0];
    assert_is_messages_create(request);
    let form = form_params(&request.body).unwrap();
    let names: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    assert!(!names.contains(&"From"), "{names:?}");
    assert!(form.contains(&(
        "MessagingServiceSid".to_owned(),
        "MG9752274e9e519418a7406176694466fa".to_owned()
    )));
}

#[tokio::test]
async fn invalid_number_is_rejected_for_good_with_twilios_code() {
    let server = MockServer::start(Reply::json(
        400,
        r#"{"code": 21211, "message": "Invalid 'To' Phone Number: +1555867530", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#,
    ))
    .await;
    let outcome = submit(carrier(&server.base, None, client())).await;
    assert_eq!(
        outcome,
        rejected("21211", "Invalid 'To' Phone Number: +1555867530", false)
    );
}

#[tokio::test]
async fn client_error_without_a_json_body_falls_back_to_the_http_status() {
    let server = MockServer::start(Reply::json(403, "<html>Forbidden</html>")).await;
    let outcome = submit(carrier(&server.base, None, client())).await;
    assert!(
        matches!(&outcome, SubmitOutcome::Rejected { code, retryable: false, .. } if code == "http_403"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn success_with_an_unreadable_body_is_unknown() {
    let server = MockServer::start(Reply::json(201, "{not json")).await;
    let outcome = submit(carrier(&server.base, None, client())).await;
    assert!(
        matches!(outcome, SubmitOutcome::Unknown { .. }),
        "{outcome:?}"
    );
}
