//! Campaign metrics end to end: messages clicked through the queue, signed
//! delivery webhooks (a failure with its error code, a late `sent` after
//! `delivered`, a repeated report), a voter's reply and a STOP, a texter's
//! reply, survey answers (one changed), a refused click — then every
//! figure of the four metrics endpoints, who may read them, and bad
//! parameters.

use std::time::Duration;

use serde_json::{Value, json};
use textbank_domain::phone::{PhoneNumber, Region};
use textbank_domain::recipient::{self, RecipientEvent};
use textbank_domain::{DomainEvent, OrgId};

use crate::helpers::{
    SendFixture, TestApp, expect_error, expect_forbidden, expect_invalid_request, expect_not_found,
    expect_unauthenticated,
};

crate::on_both_backends!(spawn = spawn_quiet_sim_app;
    every_figure_follows_clicks_reports_replies_and_answers,
    metrics_are_for_staff_of_the_campaigns_org_only,
    bad_parameters_are_refused_with_422,
);

async fn json(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON")
}

/// The carrier's id for the message sent to `phone`, once the dispatcher
/// has handed it over.
async fn carrier_id(app: &TestApp, fixture: &SendFixture, phone: &str) -> String {
    let org: OrgId = fixture.org_id.parse().unwrap();
    let stream = recipient::stream_id(org, &PhoneNumber::parse(phone, Region::US).unwrap());
    for _ in 0..250 {
        let events = app
            .app
            .events()
            .read_stream(&stream, 0, 1_000)
            .await
            .unwrap();
        let sid = events.iter().find_map(|event| {
            match RecipientEvent::from_parts(&event.event_type, &event.data).unwrap() {
                Some(RecipientEvent::MessageSubmitted {
                    carrier_message_id, ..
                }) => Some(carrier_message_id),
                _ => None,
            }
        });
        if let Some(sid) = sid {
            return sid;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the message to {phone} was never submitted");
}

/// Posts a signed Twilio status callback.
async fn status(
    app: &TestApp,
    fixture: &SendFixture,
    sid: &str,
    phone: &str,
    status: &str,
    error: Option<&str>,
) {
    let org: OrgId = fixture.org_id.parse().unwrap();
    let carrier = app.app.carrier_for(org).await.unwrap().unwrap();
    let mut params = vec![
        ("MessageSid".to_owned(), sid.to_owned()),
        ("MessageStatus".to_owned(), status.to_owned()),
        ("From".to_owned(), carrier.sending_numbers[0].clone()),
        ("To".to_owned(), phone.to_owned()),
    ];
    if let Some(code) = error {
        params.push(("ErrorCode".to_owned(), code.to_owned()));
    }
    let response = app
        .signed_twilio_post("/webhooks/twilio/status", carrier.webhook_secret(), &params)
        .await;
    assert_eq!(response.status(), 200);
}

/// Clicks the first `n` queued messages; returns (phone, conversation id).
async fn click_first(app: &TestApp, fixture: &SendFixture, n: usize) -> Vec<(String, String)> {
    let queue = app.queue(fixture, 10).await;
    let messages = queue["messages"].as_array().unwrap().clone();
    let mut sent = Vec::new();
    for (i, message) in messages.iter().take(n).enumerate() {
        let response = app
            .click(
                &fixture.texter,
                message["click_token"].as_str().unwrap(),
                &format!("click-{i}"),
            )
            .await;
        assert_eq!(response.status(), 202);
        let body: Value = response.json().await.unwrap();
        sent.push((
            message["phone"].as_str().unwrap().to_owned(),
            body["conversation_id"].as_str().unwrap().to_owned(),
        ));
    }
    // The same token clicked again under a new key: refused, and recorded.
    let again = app
        .click(
            &fixture.texter,
            messages[0]["click_token"].as_str().unwrap(),
            "click-again",
        )
        .await;
    expect_error(again, 409, "token_used").await;
    sent
}

async fn answer(app: &TestApp, fixture: &SendFixture, conversation: &str, answer: &str) {
    let response = app
        .post_as(
            &fixture.texter,
            &format!("/v1/conversations/{conversation}/answers"),
            &json!({"question_id": "support", "answer": answer}),
        )
        .await;
    assert_eq!(response.status(), 201);
}

/// What the log holds now: queries given it as `min_position` read every
/// write made so far.
async fn head(app: &TestApp) -> u64 {
    app.app.events().head_position().await.unwrap()
}

async fn every_figure_follows_clicks_reports_replies_and_answers(app: TestApp) -> TestApp {
    let fixture = app.send_fixture(4).await;
    let sent = click_first(&app, &fixture, 3).await;
    let [(phone0, conv0), (phone1, conv1), (phone2, conv2)] = &sent[..] else {
        panic!("{sent:?}")
    };

    // Delivered, then a late "sent" that must change nothing.
    let sid0 = carrier_id(&app, &fixture, phone0).await;
    status(&app, &fixture, &sid0, phone0, "delivered", None).await;
    status(&app, &fixture, &sid0, phone0, "sent", None).await;
    // Failed with an error code; a contradicting "delivered" after it stays
    // without effect.
    let sid1 = carrier_id(&app, &fixture, phone1).await;
    status(&app, &fixture, &sid1, phone1, "sent", None).await;
    status(&app, &fixture, &sid1, phone1, "failed", Some("30007")).await;
    status(&app, &fixture, &sid1, phone1, "delivered", None).await;
    // Delivered, reported twice.
    let sid2 = carrier_id(&app, &fixture, phone2).await;
    status(&app, &fixture, &sid2, phone2, "sent", None).await;
    status(&app, &fixture, &sid2, phone2, "delivered", None).await;
    status(&app, &fixture, &sid2, phone2, "delivered", None).await;

    // The first voter answers and gets a reply; the third says STOP.
    assert_eq!(
        app.voter_texts(&fixture.org_id, phone0, "Yes! Who is this?")
            .await
            .status(),
        200
    );
    assert_eq!(
        app.voter_texts(&fixture.org_id, phone0, "I'll be there")
            .await
            .status(),
        200
    );
    let reply = app
        .reply_in(&fixture.texter, conv0, &json!({"body": "Thank you!"}))
        .await;
    assert_eq!(reply.status(), 202);
    assert_eq!(
        app.voter_texts(&fixture.org_id, phone2, "STOP")
            .await
            .status(),
        200
    );
    // Survey: the second conversation's answer changes from no to yes.
    answer(&app, &fixture, conv0, "yes").await;
    answer(&app, &fixture, conv1, "no").await;
    answer(&app, &fixture, conv1, "yes").await;
    let _ = conv2;

    let position = head(&app).await;
    let campaign = &fixture.campaign_id;
    let metrics = json(
        app.get_as(
            &fixture.owner,
            &format!("/v1/campaigns/{campaign}/metrics?min_position={position}"),
        )
        .await,
    )
    .await;
    let third = 1.0 / 3.0;
    assert_eq!(metrics["campaign_id"], *campaign);
    assert_eq!(metrics["name"], "GOTV");
    assert_eq!(metrics["status"], "active");
    assert_eq!(metrics["contacts"], 4, "{metrics}");
    assert_eq!(metrics["assigned"], 4);
    assert_eq!(metrics["messaged"], 3);
    assert_eq!(metrics["replies_sent"], 1);
    assert_eq!(metrics["delivered"], 2);
    assert_eq!(metrics["delivery_rate"], json!(2.0 * third));
    assert_eq!(metrics["failed"], 1);
    assert_eq!(metrics["failed_by_code"], json!({"30007": 1}));
    assert_eq!(metrics["replied"], 2);
    assert_eq!(metrics["reply_rate"], json!(2.0 / 3.0));
    assert_eq!(metrics["replies_received"], 3);
    assert_eq!(metrics["opted_out"], 1);
    assert_eq!(metrics["opt_out_rate"], json!(third));
    assert_eq!(metrics["blocked"], 1);
    assert_eq!(metrics["blocked_by_reason"], json!({"token_used": 1}));
    assert_eq!(metrics["survey_answers"], json!({"support": {"yes": 2}}));
    // Two replied conversations, each first replied after its click.
    assert!(metrics["median_time_to_first_reply_ms"].as_i64().unwrap() >= 0);

    let texters = json(
        app.get_as(
            &fixture.owner,
            &format!("/v1/campaigns/{campaign}/metrics/texters?min_position={position}"),
        )
        .await,
    )
    .await;
    assert_eq!(
        texters,
        json!({
            "campaign_id": campaign,
            "texters": [{
                "texter_id": fixture.texter_id,
                "name": "Test Member",
                "assigned": 4,
                "messaged": 3,
                "replies_sent": 1,
                "sent": 4,
                "delivered": 2,
                "failed": 1,
                "replied": 2,
                "replies_received": 3,
                "opted_out": 1,
                "blocked": 1,
                // The test clock stands still between showing and clicking.
                "median_display_to_click_ms": 0,
            }],
        })
    );

    for bucket in ["hour", "day"] {
        let series = json(
            app.get_as(
                &fixture.owner,
                &format!("/v1/campaigns/{campaign}/metrics/timeseries?bucket={bucket}"),
            )
            .await,
        )
        .await;
        assert_eq!(series["bucket"], bucket);
        let buckets = series["buckets"].as_array().unwrap();
        assert!(!buckets.is_empty(), "{series}");
        let width = if bucket == "hour" { 3_600 } else { 86_400 };
        let sum = |field: &str| -> i64 { buckets.iter().map(|b| b[field].as_i64().unwrap()).sum() };
        for b in buckets {
            let start: chrono::DateTime<chrono::Utc> =
                b["start"].as_str().unwrap().parse().unwrap();
            assert_eq!(start.timestamp() % width, 0, "{b}");
        }
        assert_eq!(
            [
                sum("messaged"),
                sum("replies_sent"),
                sum("sent"),
                sum("delivered"),
                sum("failed"),
                sum("replied"),
                sum("replies_received"),
                sum("opted_out"),
                sum("blocked"),
            ],
            [3, 1, 4, 2, 1, 2, 3, 1, 1],
            "{series}"
        );
    }
    // A window in the future holds nothing.
    let at = |days| {
        (chrono::Utc::now() + chrono::Duration::days(days))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let empty = json(
        app.get_as(
            &fixture.owner,
            &format!(
                "/v1/campaigns/{campaign}/metrics/timeseries?from={}&to={}",
                at(1),
                at(2)
            ),
        )
        .await,
    )
    .await;
    assert_eq!(empty["buckets"], json!([]));

    let overview = json(app.get_as(&fixture.owner, "/v1/metrics/overview").await).await;
    let campaigns = overview["campaigns"].as_array().unwrap();
    assert_eq!(campaigns.len(), 1);
    for field in [
        "campaign_id",
        "name",
        "contacts",
        "messaged",
        "delivered",
        "failed",
        "replied",
        "opted_out",
        "reply_rate",
    ] {
        assert_eq!(campaigns[0][field], metrics[field], "{field}");
    }
    app
}

async fn metrics_are_for_staff_of_the_campaigns_org_only(app: TestApp) -> TestApp {
    let fixture = app.send_fixture(1).await;
    let campaign = &fixture.campaign_id;
    let paths = [
        format!("/v1/campaigns/{campaign}/metrics"),
        format!("/v1/campaigns/{campaign}/metrics/texters"),
        format!("/v1/campaigns/{campaign}/metrics/timeseries"),
        "/v1/metrics/overview".to_owned(),
    ];
    // Texters send; they do not read metrics.
    for path in &paths {
        expect_forbidden(app.get_as(&fixture.texter, path).await).await;
    }
    // Managers and compliance do.
    let manager = app.key_of_a(&fixture.owner, "manager").await;
    let compliance = app.key_of_a(&fixture.owner, "compliance").await;
    let position = head(&app).await;
    for key in [&manager, &compliance] {
        for path in &paths {
            let separator = if path.contains('?') { '&' } else { '?' };
            let response = app
                .get_as(key, &format!("{path}{separator}min_position={position}"))
                .await;
            assert_eq!(response.status(), 200, "{path}");
        }
    }
    let metrics = json(
        app.get_as(&manager, &format!("/v1/campaigns/{campaign}/metrics"))
            .await,
    )
    .await;
    assert_eq!(metrics["contacts"], 1);
    assert_eq!(metrics["messaged"], 0);
    assert_eq!(metrics["delivery_rate"], Value::Null);

    // Another org's campaign is a 404, like one that does not exist.
    let stranger = app.create_org("Another Org").await;
    for path in &paths[..3] {
        expect_not_found(app.get_as(&stranger, path).await).await;
    }
    let missing = uuid::Uuid::now_v7();
    for path in [
        format!("/v1/campaigns/{missing}/metrics"),
        format!("/v1/campaigns/{missing}/metrics/texters"),
        format!("/v1/campaigns/{missing}/metrics/timeseries"),
        "/v1/campaigns/not-a-campaign/metrics".to_owned(),
    ] {
        expect_not_found(app.get_as(&fixture.owner, &path).await).await;
    }
    let theirs = json(app.get_as(&stranger, "/v1/metrics/overview").await).await;
    assert_eq!(theirs["campaigns"], json!([]));
    expect_unauthenticated(app.get(&format!("/v1/campaigns/{campaign}/metrics")).await).await;
    app
}

async fn bad_parameters_are_refused_with_422(app: TestApp) -> TestApp {
    let fixture = app.send_fixture(1).await;
    let campaign = &fixture.campaign_id;
    let timeseries = format!("/v1/campaigns/{campaign}/metrics/timeseries");
    for query in [
        "bucket=week",
        "bucket=",
        "from=yesterday",
        "to=2026-13-01T00:00:00Z",
        "from=2026-11-26T00:00:00Z&to=2026-11-25T00:00:00Z",
        "from=2026-11-25T00:00:00Z&to=2026-11-25T00:00:00Z",
        "min_position=-1",
        "min_position=soon",
        "granularity=hour",
    ] {
        let message = expect_invalid_request(
            app.get_as(&fixture.owner, &format!("{timeseries}?{query}"))
                .await,
        )
        .await;
        assert!(!message.is_empty(), "{query}");
    }
    for path in [
        format!("/v1/campaigns/{campaign}/metrics?min_position=x"),
        format!("/v1/campaigns/{campaign}/metrics/texters?min_position=1.5"),
        "/v1/metrics/overview?min_position=-3".to_owned(),
        "/v1/metrics/overview?page=2".to_owned(),
    ] {
        expect_invalid_request(app.get_as(&fixture.owner, &path).await).await;
    }
    // A position past the end of the log is none a write returned: refused
    // at once, not waited for.
    let ahead = head(&app).await + 1_000;
    let message = expect_invalid_request(
        app.get_as(
            &fixture.owner,
            &format!("/v1/campaigns/{campaign}/metrics?min_position={ahead}"),
        )
        .await,
    )
    .await;
    assert!(message.contains("past the end of the log"), "{message}");
    app
}
