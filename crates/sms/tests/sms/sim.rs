//! The simulator against a stand-in for our own Twilio webhook endpoints:
//! what it posts must pass the same checks our server applies to Twilio.

use std::time::Duration;

use textbank_sms::twilio::{self, form_params, verify_signature};
use textbank_sms::{
    Carrier, DeliveryStatus, SimCarrier, SimConfig, SmsError, SubmitOutcome, WebhookEvent,
};

use crate::helpers::{MockServer, Recorded, Reply, client, message};

const TOKEN: &str = "sim-token-for-tests";
const ACCOUNT: &str = "AC11111111111111111111111111111111";

fn sim(webhook_base: &str, tweak: impl FnOnce(&mut SimConfig)) -> SimCarrier {
    let mut config = SimConfig {
        account_sid: ACCOUNT.to_owned(),
        auth_token: TOKEN.to_owned(),
        webhook_base: webhook_base.to_owned(),
        delivery_delay_ms: (1, 5),
        failure_rate: 0.0,
        reply_rate: 0.0,
        reply_delay_ms: (1, 5),
        seed: Some(42),
        ..SimConfig::default()
    };
    tweak(&mut config);
    SimCarrier::new(config, client())
}

/// Checks the signature against the exact URL posted to, as our webhook
/// handler will, and returns the decoded form.
fn signed_params(server: &MockServer, request: &Recorded) -> Vec<(String, String)> {
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let params = form_params(&request.body).unwrap();
    let url = format!("{}{}", server.base, request.path);
    let signature = request.header("x-twilio-signature").unwrap_or_default();
    assert!(
        verify_signature(TOKEN, &url, &params, signature),
        "bad signature for {url}"
    );
    assert!(!verify_signature("another-token", &url, &params, signature));
    params
}

/// The parameters' names in order, space-separated.
fn names(params: &[(String, String)]) -> String {
    let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    names.join(" ")
}

fn value<'a>(params: &'a [(String, String)], name: &str) -> &'a str {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {params:?}"))
}

async fn wait_for_finals(server: &MockServer, count: usize) -> Vec<Recorded> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let requests = server.requests();
        let finals = requests
            .iter()
            .filter(|r| {
                let params = form_params(&r.body).unwrap();
                ["failed", "undelivered"].contains(&value(&params, "MessageStatus"))
            })
            .count();
        if finals >= count {
            return requests;
        }
        assert!(tokio::time::Instant::now() < deadline, "{requests:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn submit(carrier: &SimCarrier, from: &str) -> (String, String) {
    match carrier.submit(&message(from)).await {
        SubmitOutcome::Accepted {
            carrier_message_id,
            from: Some(from),
        } => (carrier_message_id, from),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn accepted_message_gets_signed_sent_then_delivered_callbacks() {
    let server = MockServer::start(Reply::json(200, "")).await;
    let carrier = sim(&server.base, |_| {});
    let (sid, from) = submit(&carrier, "+12025550199").await;
    assert_eq!(from, "+12025550199");

    let requests = server.wait_for(2).await;
    let mut statuses = Vec::new();
    for request in &requests {
        assert_eq!(request.path, "/webhooks/twilio/status");
        let params = signed_params(&server, request);
        assert_eq!(
            names(&params),
            "MessageSid SmsSid AccountSid From To MessageStatus SmsStatus ApiVersion"
        );
        assert_eq!(value(&params, "SmsSid"), sid);
        assert_eq!(value(&params, "AccountSid"), ACCOUNT);
        assert_eq!(value(&params, "ApiVersion"), "2010-04-01");
        match twilio::parse_status_callback(&params).unwrap() {
            WebhookEvent::Delivery(report) => {
                assert_eq!(report.carrier_message_id, sid);
                assert_eq!(report.from.as_deref(), Some("+12025550199"));
                assert_eq!(report.to.as_deref(), Some("+15558675309"));
                assert_eq!(report.error_code, None);
                statuses.push(report.status);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(statuses, [DeliveryStatus::Sent, DeliveryStatus::Delivered]);
    // No reply was configured, so nothing else arrives.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn failed_messages_end_failed_or_undelivered_with_an_error_code() {
    let server = MockServer::start(Reply::json(200, "")).await;
    let carrier = sim(&server.base, |c| c.failure_rate = 1.0);
    let mut sids = Vec::new();
    for _ in 0..6 {
        sids.push(submit(&carrier, "").await.0);
    }
    // Each message ends with exactly one failed/undelivered callback.
    let requests = wait_for_finals(&server, sids.len()).await;
    for sid in sids {
        let statuses: Vec<Vec<(String, String)>> = requests
            .iter()
            .map(|r| signed_params(&server, r))
            .filter(|p| value(p, "MessageSid") == sid)
            .collect();
        let last = statuses.last().unwrap();
        let code = value(last, "ErrorCode");
        assert!(
            ["30003", "30005", "30006", "30007"].contains(&code),
            "{code}"
        );
        match value(last, "MessageStatus") {
            // Never reached the network: no "sent" first.
            "failed" => assert_eq!(statuses.len(), 1),
            "undelivered" => {
                assert_eq!(statuses.len(), 2);
                assert_eq!(value(&statuses[0], "MessageStatus"), "sent");
                assert!(!statuses[0].iter().any(|(name, _)| name == "ErrorCode"));
            }
            other => panic!("unexpected final status {other}"),
        }
    }
}

#[tokio::test]
async fn delivered_message_can_draw_a_signed_opt_out_reply() {
    let server = MockServer::start(Reply::json(200, "")).await;
    let carrier = sim(&server.base, |c| {
        c.reply_rate = 1.0;
        c.opt_out_rate = 1.0;
        c.sending_numbers = vec!["+12025550142".to_owned()];
    });
    let (sid, from) = submit(&carrier, "").await;
    assert_eq!(from, "+12025550142");

    let requests = server.wait_for(3).await;
    let inbound = &requests[2];
    assert_eq!(inbound.path, "/webhooks/twilio/inbound");
    let params = signed_params(&server, inbound);
    assert_ne!(value(&params, "MessageSid"), sid);
    let WebhookEvent::Inbound(reply) = twilio::parse_inbound(&params).unwrap() else {
        panic!("not inbound: {params:?}");
    };
    assert_eq!(reply.from, "+15558675309");
    assert_eq!(reply.to, "+12025550142");
    let word = reply.body.to_lowercase();
    assert!(
        ["stop", "unsubscribe", "cancel", "end", "quit"]
            .iter()
            .any(|w| word.contains(w)),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn automated_texts_are_never_answered() {
    // A drawn "Yes!" to a STOP confirmation would opt the voter back in;
    // real voters seldom answer the platform's own texts, so the simulator
    // never does.
    let server = MockServer::start(Reply::json(200, "")).await;
    let carrier = sim(&server.base, |c| {
        c.reply_rate = 1.0;
        c.sending_numbers = vec!["+12025550142".to_owned()];
    });
    for _ in 0..5 {
        let outcome = carrier
            .submit(&textbank_sms::OutboundMessage {
                automated: true,
                ..message("")
            })
            .await;
        assert!(
            matches!(outcome, SubmitOutcome::Accepted { .. }),
            "{outcome:?}"
        );
    }
    // Each gets its two status callbacks and nothing more.
    server.wait_for(10).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let requests = server.requests();
    assert_eq!(requests.len(), 10);
    assert!(
        requests
            .iter()
            .all(|request| request.path == "/webhooks/twilio/status"),
        "{:?}",
        requests.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn send_inbound_posts_a_signed_twilio_inbound_body() {
    let server = MockServer::start(Reply::json(200, "")).await;
    let carrier = sim(&server.base, |_| {});
    let sid = carrier
        .send_inbound("+15558675309", "+12025550100", "Who is this? ¿Quién es?")
        .await
        .unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/webhooks/twilio/inbound");
    let params = signed_params(&server, &requests[0]);
    assert_eq!(
        names(&params),
        "MessageSid SmsSid AccountSid From To Body NumMedia ApiVersion"
    );
    assert_eq!(value(&params, "NumMedia"), "0");
    assert_eq!(
        twilio::parse_inbound(&params).unwrap(),
        WebhookEvent::Inbound(textbank_sms::InboundMessage {
            carrier_message_id: sid,
            from: "+15558675309".to_owned(),
            to: "+12025550100".to_owned(),
            body: "Who is this? ¿Quién es?".to_owned(),
        })
    );
}

#[tokio::test]
async fn webhook_posts_are_retried_after_a_server_error() {
    let server = MockServer::start_with(|n| {
        if n == 0 {
            Reply::json(503, "")
        } else {
            Reply::json(200, "")
        }
    })
    .await;
    let carrier = sim(&server.base, |_| {});
    carrier
        .send_inbound("+15558675309", "+12025550100", "Yes!")
        .await
        .unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    // The retry is the same signed request.
    assert_eq!(requests[0].body, requests[1].body);
    assert_eq!(
        requests[0].header("x-twilio-signature"),
        requests[1].header("x-twilio-signature")
    );
}

#[tokio::test]
async fn a_refused_webhook_is_not_retried_and_reports_why() {
    let server = MockServer::start(Reply::json(403, "")).await;
    let carrier = sim(&server.base, |_| {});
    let result = carrier
        .send_inbound("+15558675309", "+12025550100", "Yes!")
        .await;
    assert!(
        matches!(&result, Err(SmsError::WebhookDelivery { reason, .. }) if reason.contains("403")),
        "{result:?}"
    );
    assert_eq!(server.requests().len(), 1);
}
