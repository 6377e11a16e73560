//! The send path end to end on the simulated carrier: queue → click →
//! dispatch → signed delivery reports → replies; one click sends one
//! message; each refusal has its code and is recorded; STOP stops at once
//! and for good, even racing a click.

use std::collections::HashSet;

use serde_json::{Value, json};
use textbank_domain::phone::{PhoneNumber, Region};
use textbank_domain::recipient::{self, RecipientEvent};
use textbank_domain::{DomainEvent, OrgId};

use crate::helpers::{
    SendFixture, TestApp, click_tokens, expect_conflict, expect_error, expect_forbidden,
    expect_invalid_request, expect_not_found, expect_payload_too_large, json, sent, texts,
};

crate::on_both_backends!(spawn = spawn_send_app;
    a_texter_clicks_through_the_queue_and_each_message_is_delivered,
    the_same_click_again_returns_the_same_message_and_sends_nothing_new,
    an_idempotency_key_reused_for_another_phone_sends_nothing_there,
    each_refusal_has_its_own_code_and_is_recorded,
    a_stop_reply_opts_out_with_one_confirmation_and_blocks_later_sends,
    an_opt_out_racing_a_click_never_ends_in_a_text_after_it,
    webhooks_without_a_valid_signature_are_refused_and_record_nothing,
    delivery_reports_are_deduplicated_and_a_final_status_stays,
    replies_answers_and_a_texters_opt_out_in_a_conversation,
    carrier_settings_never_show_or_record_the_secret,
    telnyx_webhooks_are_verified_with_the_orgs_ed25519_key,
);

// A message longer than the server allows, on a server that allows 40
// characters.
crate::on_both_backends!(mod too_long, spawn = spawn_short_message_app;
    a_message_that_renders_too_long_is_held_with_its_own_reason,
);

// A simulator that answers every delivered message with a STOP variant.
crate::on_both_backends!(mod simulated_replies, spawn = spawn_stop_sim_app;
    the_simulators_stop_reply_arrives_through_the_signed_webhook,
);

fn phone(i: usize) -> String {
    format!("+1555201{i:04}")
}

/// The recipient stream's events, decoded.
async fn recipient_events(
    app: &TestApp,
    fixture: &SendFixture,
    phone: &str,
) -> Vec<RecipientEvent> {
    let org: OrgId = fixture.org_id.parse().unwrap();
    let phone = PhoneNumber::parse(phone, Region::US).unwrap();
    let stream = recipient::stream_id(org, &phone);
    app.app
        .events()
        .read_stream(&stream, 0, 10_000)
        .await
        .unwrap()
        .iter()
        .filter_map(|event| RecipientEvent::from_parts(&event.event_type, &event.data).unwrap())
        .collect()
}

fn count(events: &[RecipientEvent], kind: &str) -> usize {
    events
        .iter()
        .filter(|event| event.to_parts().unwrap().0 == kind)
        .count()
}

async fn a_texter_clicks_through_the_queue_and_each_message_is_delivered(app: TestApp) -> TestApp {
    let fixture = app.send_fixture(3).await;
    let queue = app.queue(&fixture, 10).await;
    let messages = queue["messages"].as_array().unwrap().clone();
    assert_eq!(messages.len(), 3, "{queue}");
    assert_eq!(queue["remaining"], 3);
    assert_eq!(queue["sent"], 0);
    assert_eq!(
        messages[0]["body"],
        "Hi Voter0, it's Test Member. Will you vote? Reply STOP to opt out"
    );
    assert_eq!(messages[0]["segments"], 1);
    let mut conversations = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let sent = app
            .click(
                &fixture.texter,
                message["click_token"].as_str().unwrap(),
                &format!("click-{i}"),
            )
            .await;
        assert_eq!(sent.status(), 202);
        let sent = json(sent).await;
        assert_eq!(sent["duplicate"], false);
        assert!(sent["position"].as_u64().unwrap() > 0);
        conversations.push(sent["conversation_id"].as_str().unwrap().to_owned());
    }
    // Nothing already sent is offered again.
    let after = app.queue(&fixture, 10).await;
    assert_eq!(after["messages"], json!([]));
    assert_eq!(after["remaining"], 0);
    assert_eq!(after["sent"], 3);
    // The simulator reports delivery through the signed webhook.
    for id in &conversations {
        let thread = app
            .eventually(
                &fixture.texter,
                &format!("/v1/conversations/{id}"),
                |thread| thread["messages"][0]["status"] == "delivered",
            )
            .await;
        assert_eq!(thread["messages"].as_array().unwrap().len(), 1);
        assert_eq!(thread["messages"][0]["direction"], "outbound");
    }
    let events = recipient_events(&app, &fixture, &phone(0)).await;
    assert_eq!(count(&events, "MessageSendClicked"), 1);
    assert_eq!(count(&events, "MessageDispatchStarted"), 1);
    assert_eq!(count(&events, "MessageSubmitted"), 1);
    let RecipientEvent::MessageSendClicked(click) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(click.evidence.texter_id.to_string(), fixture.texter_id);
    assert_eq!(click.evidence.idempotency_key.as_deref(), Some("click-0"));
    assert!(click.evidence.token_id.is_some() && click.evidence.presented_at.is_some());
    assert!(click.hours.allowed);
    app
}

async fn the_same_click_again_returns_the_same_message_and_sends_nothing_new(
    app: TestApp,
) -> TestApp {
    let fixture = app.send_fixture(1).await;
    let queue = app.queue(&fixture, 1).await;
    let token = queue["messages"][0]["click_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The same contact presented again (a second tab): another token.
    let second_presentation = app.queue(&fixture, 1).await["messages"][0]["click_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(second_presentation, token);
    // A client clock far from the server's is refused before anything else.
    let far_future = sent(
        app.client
            .post(app.url("/v1/messages"))
            .bearer_auth(&fixture.texter)
            .header("idempotency-key", "key-2099")
            .json(&json!({"click_token": token, "clicked_at": "2099-01-01T00:00:00Z"})),
    )
    .await;
    expect_invalid_request(far_future).await;
    let first = json(app.click(&fixture.texter, &token, "key-1").await).await;
    // The key of that click with the other token is another request, not a
    // retry: refused, not answered as the first message.
    expect_error(
        app.click(&fixture.texter, &second_presentation, "key-1")
            .await,
        422,
        "idempotency_key_reused",
    )
    .await;
    let again = app.click(&fixture.texter, &token, "key-1").await;
    assert_eq!(again.status(), 202);
    let again = json(again).await;
    assert_eq!(again["message_id"], first["message_id"]);
    assert_eq!(again["duplicate"], true);
    // The same token under a new key is a second click on one presentation.
    expect_error(
        app.click(&fixture.texter, &token, "key-2").await,
        409,
        "token_used",
    )
    .await;
    assert_clicked_and_blocked(&app, &fixture, 0, (1, 2)).await;
    app
}

/// The recipient stream of the fixture's `i`th phone holds this many sent
/// clicks and refused ones.
async fn assert_clicked_and_blocked(
    app: &TestApp,
    fixture: &SendFixture,
    i: usize,
    (clicked, blocked): (usize, usize),
) {
    let events = recipient_events(app, fixture, &phone(i)).await;
    assert_eq!(count(&events, "MessageSendClicked"), clicked);
    assert_eq!(count(&events, "SendBlocked"), blocked);
}

async fn an_idempotency_key_reused_for_another_phone_sends_nothing_there(app: TestApp) -> TestApp {
    let fixture = app.send_fixture(2).await;
    let tokens = click_tokens(&app.queue(&fixture, 2).await);
    let first = json(app.click(&fixture.texter, &tokens[0], "retry-me").await).await;
    // A client that retries "the last click" with the next contact's token.
    expect_error(
        app.click(&fixture.texter, &tokens[1], "retry-me").await,
        422,
        "idempotency_key_reused",
    )
    .await;
    assert_clicked_and_blocked(&app, &fixture, 1, (0, 1)).await;
    // The first phone's retry is still a retry, and a new key still sends.
    let again = json(app.click(&fixture.texter, &tokens[0], "retry-me").await).await;
    assert_eq!(again["message_id"], first["message_id"]);
    assert_eq!(again["duplicate"], true);
    let sent = app.click(&fixture.texter, &tokens[1], "fresh-key").await;
    assert_eq!(sent.status(), 202);
    app
}

async fn each_refusal_has_its_own_code_and_is_recorded(app: TestApp) -> TestApp {
    let fixture = app.send_fixture(4).await;
    let tokens = click_tokens(&app.queue(&fixture, 4).await);
    let token = |i: usize| tokens[i].clone();

    // A forged or garbled token.
    expect_error(
        app.click(&fixture.texter, "garbage", "k0").await,
        422,
        "token_invalid",
    )
    .await;
    let mut forged = token(0);
    forged.insert(5, 'x');
    expect_error(
        app.click(&fixture.texter, &forged, "k1").await,
        422,
        "token_invalid",
    )
    .await;

    // Another texter's token.
    let other = app
        .member_key(&fixture.owner, "other@example.org", "texter")
        .await;
    expect_error(
        app.click(&other, &token(0), "k2").await,
        403,
        "not_your_token",
    )
    .await;

    // A contact that got the message through an earlier presentation.
    let again = app.queue(&fixture, 1).await;
    let earlier = again["messages"][0]["click_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.click(&fixture.texter, &token(0), "k3").await.status(),
        202
    );
    expect_error(
        app.click(&fixture.texter, &earlier, "k4").await,
        409,
        "already_messaged",
    )
    .await;

    // The voter said STOP before the click.
    assert_eq!(
        app.voter_texts(&fixture.org_id, &phone(1), "STOP")
            .await
            .status(),
        200
    );
    expect_error(
        app.click(&fixture.texter, &token(1), "k5").await,
        409,
        "opted_out",
    )
    .await;

    // Outside the recipient's texting hours (3 a.m. in the east): a reply
    // in an open conversation is refused, with when the window reopens.
    let opened = json(app.click(&fixture.texter, &token(2), "k6").await).await;
    let conversation = opened["conversation_id"].as_str().unwrap().to_owned();
    let clock = app.clock.clone().unwrap();
    clock.advance(chrono::Duration::hours(13));
    let closed = app
        .reply_in(
            &fixture.texter,
            &conversation,
            &json!({"body": "Still there?"}),
        )
        .await;
    assert_eq!(closed.status(), 409);
    let body = closed.json::<Value>().await.unwrap();
    assert_eq!(body["error"]["code"], "quiet_hours", "{body}");
    assert!(body["error"]["next_open"].is_string(), "{body}");
    let held = app.queue(&fixture, 4).await;
    assert_eq!(held["messages"], json!([]));
    assert_eq!(held["hold"]["code"], "quiet_hours");

    // An expired token (15 minutes by default), back inside the hours.
    clock.advance(chrono::Duration::hours(11));
    expect_error(
        app.click(&fixture.texter, &token(3), "k7").await,
        410,
        "token_expired",
    )
    .await;

    // A paused campaign.
    let fresh = app.queue(&fixture, 1).await;
    let fresh = fresh["messages"][0]["click_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let paused = app
        .post_as(
            &fixture.owner,
            &format!("/v1/campaigns/{}/pause", fixture.campaign_id),
            &json!({}),
        )
        .await;
    assert_eq!(paused.status(), 200);
    expect_error(
        app.click(&fixture.texter, &fresh, "k8").await,
        409,
        "campaign_not_open",
    )
    .await;

    // Every refusal with a trusted phone is on its recipient stream, the
    // rest on the texter's.
    let mut blocked: HashSet<String> = HashSet::new();
    for i in 0..4 {
        for event in recipient_events(&app, &fixture, &phone(i)).await {
            if let RecipientEvent::SendBlocked(attempt) = event {
                blocked.insert(attempt.reason.code().to_owned());
            }
        }
    }
    for code in [
        "not_your_token",
        "already_messaged",
        "opted_out",
        "quiet_hours",
        "token_expired",
        "campaign_not_open",
    ] {
        assert!(blocked.contains(code), "{code} missing from {blocked:?}");
    }
    let org: OrgId = fixture.org_id.parse().unwrap();
    let texter_stream = textbank_domain::texter::stream_id(org, fixture.texter_id.parse().unwrap());
    let texter_events = app
        .app
        .events()
        .read_stream(&texter_stream, 0, 100)
        .await
        .unwrap();
    assert_eq!(texter_events.len(), 2, "the two invalid tokens");
    app
}

async fn a_stop_reply_opts_out_with_one_confirmation_and_blocks_later_sends(
    app: TestApp,
) -> TestApp {
    let fixture = app.send_fixture(1).await;
    let conversation = app.send_first(&fixture).await;
    let path = format!("/v1/conversations/{conversation}");
    app.eventually(&fixture.texter, &path, |t| {
        t["messages"][0]["status"] == "delivered"
    })
    .await;

    assert_eq!(
        app.voter_texts(&fixture.org_id, &phone(0), " Stop. ")
            .await
            .status(),
        200
    );
    let thread = app
        .eventually(&fixture.texter, &path, |t| {
            t["opted_out"] == true && t["messages"].as_array().unwrap().len() == 3
        })
        .await;
    assert_eq!(thread["messages"][1]["direction"], "inbound");
    assert_eq!(thread["messages"][1]["keyword"], "opt_out");
    assert_eq!(thread["messages"][2]["kind"], "opt_out_confirmation");
    app.eventually(&fixture.texter, &path, |t| {
        t["messages"][2]["status"] == "delivered"
    })
    .await;

    // STOP again: recorded, but no second confirmation.
    assert_eq!(
        app.voter_texts(&fixture.org_id, &phone(0), "STOP")
            .await
            .status(),
        200
    );
    let events = recipient_events(&app, &fixture, &phone(0)).await;
    assert_eq!(count(&events, "OptOutRecorded"), 1);
    assert_eq!(count(&events, "AutoReplyQueued"), 1);
    assert_eq!(count(&events, "ReplyReceived"), 2);

    // A reply from the texter is refused now.
    let reply = app
        .reply_in(&fixture.texter, &conversation, &json!({"body": "Sorry!"}))
        .await;
    expect_error(reply, 409, "opted_out").await;
    app
}

async fn an_opt_out_racing_a_click_never_ends_in_a_text_after_it(app: TestApp) -> TestApp {
    const ROUNDS: usize = 25;
    let fixture = app.send_fixture(ROUNDS).await;
    let queue = app.queue(&fixture, ROUNDS as u32).await;
    let messages = queue["messages"].as_array().unwrap().clone();
    assert_eq!(messages.len(), ROUNDS);
    let mut sent_then_stopped = 0;
    for (i, message) in messages.iter().enumerate() {
        let to = message["phone"].as_str().unwrap().to_owned();
        let token = message["click_token"].as_str().unwrap().to_owned();
        let key = format!("race-{i}");
        let (click, stop) = tokio::join!(
            app.click(&fixture.texter, &token, &key),
            app.voter_texts(&fixture.org_id, &to, "STOP"),
        );
        assert_eq!(stop.status(), 200);
        let status = click.status().as_u16();
        assert!(status == 202 || status == 409, "{status}");
        // Let the dispatcher settle the click, then read the stream in order.
        let mut waited = 0;
        let events = loop {
            waited += 1;
            assert!(waited < 1_000, "the dispatcher never settled {to}");
            let events = recipient_events(&app, &fixture, &to).await;
            // Every clicked message has an outcome (the confirmation of the
            // STOP is dispatched too, and is not a click).
            let settled = events.iter().all(|event| match event {
                RecipientEvent::MessageSendClicked(click) => events.iter().any(|e| {
                    matches!(e,
                        RecipientEvent::MessageSubmitted { message_id, .. }
                        | RecipientEvent::MessageCancelled { message_id, .. }
                            if *message_id == click.message_id)
                }),
                _ => true,
            });
            if settled {
                break events;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        let opted_out_at = events
            .iter()
            .position(|event| matches!(event, RecipientEvent::OptOutRecorded { .. }))
            .expect("the STOP is recorded");
        for (at, event) in events.iter().enumerate() {
            if let RecipientEvent::MessageDispatchStarted { message_id, .. } = event {
                let automated = events.iter().any(|e| {
                    matches!(e, RecipientEvent::AutoReplyQueued { message_id: m, .. } if m == message_id)
                });
                assert!(
                    automated || at < opted_out_at,
                    "a click was dispatched after the opt-out: {events:?}"
                );
                if !automated {
                    sent_then_stopped += 1;
                }
            }
        }
    }
    // Both orders happen; neither ever sends after the STOP.
    assert!(sent_then_stopped <= ROUNDS);
    app
}

async fn webhooks_without_a_valid_signature_are_refused_and_record_nothing(
    app: TestApp,
) -> TestApp {
    let fixture = app.send_fixture(1).await;
    let org: OrgId = fixture.org_id.parse().unwrap();
    let carrier = app.app.carrier_for(org).await.unwrap().unwrap();
    let head = app.app.events().head_position().await.unwrap();
    let params = vec![
        ("MessageSid".to_owned(), "SM1".to_owned()),
        ("From".to_owned(), phone(0)),
        ("To".to_owned(), carrier.sending_numbers[0].clone()),
        ("Body".to_owned(), "STOP".to_owned()),
    ];
    // No signature.
    let unsigned = sent(
        app.client
            .post(app.url("/webhooks/twilio/inbound"))
            .form(&params),
    )
    .await;
    expect_error(unsigned, 403, "invalid_signature").await;
    // Signed with the wrong token.
    let wrong = app
        .signed_twilio_post("/webhooks/twilio/inbound", "not-the-token", &params)
        .await;
    expect_error(wrong, 403, "invalid_signature").await;
    // Signed, then tampered with.
    let url = app.url("/webhooks/twilio/inbound");
    let signature = textbank_sms::twilio::signature(carrier.webhook_secret(), &url, &params);
    let mut tampered = params.clone();
    tampered[3].1 = "Yes".into();
    let response = sent(
        app.client
            .post(&url)
            .header("x-twilio-signature", signature)
            .form(&tampered),
    )
    .await;
    expect_error(response, 403, "invalid_signature").await;
    // Telnyx without its headers.
    let telnyx = sent(app.client.post(app.url("/webhooks/telnyx")).body("{}")).await;
    expect_error(telnyx, 403, "invalid_signature").await;
    // A body over the limit.
    let huge = sent(
        app.client
            .post(app.url("/webhooks/twilio/status"))
            .body(vec![b'a'; 100 * 1024]),
    )
    .await;
    expect_payload_too_large(huge).await;
    assert_eq!(app.app.events().head_position().await.unwrap(), head);
    app
}

async fn delivery_reports_are_deduplicated_and_a_final_status_stays(app: TestApp) -> TestApp {
    let fixture = app.send_fixture(1).await;
    let conversation = app.send_first(&fixture).await;
    let path = format!("/v1/conversations/{conversation}");
    app.eventually(&fixture.texter, &path, |t| {
        t["messages"][0]["status"] == "delivered"
    })
    .await;
    let events = recipient_events(&app, &fixture, &phone(0)).await;
    let sid = events
        .iter()
        .find_map(|event| match event {
            RecipientEvent::MessageSubmitted {
                carrier_message_id, ..
            } => Some(carrier_message_id.clone()),
            _ => None,
        })
        .unwrap();
    let reports_before = count(&events, "DeliveryReported");
    let org: OrgId = fixture.org_id.parse().unwrap();
    let carrier = app.app.carrier_for(org).await.unwrap().unwrap();
    let report = |status: &str| {
        vec![
            ("MessageSid".to_owned(), sid.clone()),
            ("MessageStatus".to_owned(), status.to_owned()),
            ("From".to_owned(), carrier.sending_numbers[0].clone()),
            ("To".to_owned(), phone(0)),
        ]
    };
    // The same final report again, then a late "sent".
    for status in ["delivered", "delivered", "sent"] {
        let response = app
            .signed_twilio_post(
                "/webhooks/twilio/status",
                carrier.webhook_secret(),
                &report(status),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    let events = recipient_events(&app, &fixture, &phone(0)).await;
    assert_eq!(count(&events, "DeliveryReported"), reports_before);
    let thread = app.get_ok(&fixture.texter, &path).await;
    assert_eq!(thread["messages"][0]["status"], "delivered");

    // A report about a message we never sent is kept, unattached.
    let orphan = vec![
        ("MessageSid".to_owned(), "SMunknown".to_owned()),
        ("MessageStatus".to_owned(), "failed".to_owned()),
        ("ErrorCode".to_owned(), "30007".to_owned()),
        ("From".to_owned(), carrier.sending_numbers[0].clone()),
        ("To".to_owned(), phone(0)),
    ];
    let response = app
        .signed_twilio_post("/webhooks/twilio/status", carrier.webhook_secret(), &orphan)
        .await;
    assert_eq!(response.status(), 200);
    let events = recipient_events(&app, &fixture, &phone(0)).await;
    assert!(events.iter().any(|event| matches!(
        event,
        RecipientEvent::DeliveryReported { message_id: None, carrier_message_id, .. } if carrier_message_id == "SMunknown"
    )));
    app
}

async fn replies_answers_and_a_texters_opt_out_in_a_conversation(app: TestApp) -> TestApp {
    let fixture = app.send_fixture(1).await;
    let conversation = app.send_first(&fixture).await;
    let path = format!("/v1/conversations/{conversation}");

    assert_eq!(
        app.voter_texts(&fixture.org_id, &phone(0), "Yes! Who is this?")
            .await
            .status(),
        200
    );
    let canned = app
        .reply_in(
            &fixture.texter,
            &conversation,
            &json!({"canned_response_id": 0}),
        )
        .await;
    assert_eq!(canned.status(), 202);
    let typed = app
        .reply_in(
            &fixture.texter,
            &conversation,
            &json!({"body": "See you at the polls"}),
        )
        .await;
    assert_eq!(typed.status(), 202);
    // Bad replies.
    for body in [
        json!({}),
        json!({"body": "x", "canned_response_id": 0}),
        json!({"body": "  "}),
        json!({"canned_response_id": 7}),
    ] {
        let response = app.reply_in(&fixture.texter, &conversation, &body).await;
        expect_invalid_request(response).await;
    }
    let answer = app
        .post_as(
            &fixture.texter,
            &format!("{path}/answers"),
            &json!({"question_id": "support", "answer": "yes"}),
        )
        .await;
    assert_eq!(answer.status(), 201);
    let bad = app
        .post_as(
            &fixture.texter,
            &format!("{path}/answers"),
            &json!({"question_id": "support", "answer": "maybe"}),
        )
        .await;
    expect_invalid_request(bad).await;

    let thread = app
        .eventually(&fixture.texter, &path, |t| {
            t["messages"].as_array().unwrap().len() == 4
        })
        .await;
    let bodies = texts(&thread["messages"], "body");
    assert_eq!(bodies[1], "Yes! Who is this?");
    assert_eq!(bodies[2], "Thanks Voter0!");
    assert_eq!(bodies[3], "See you at the polls");
    assert_eq!(thread["answers"][0]["answer"], "yes");

    // Another texter cannot see or act in it.
    let other = app
        .member_key(&fixture.owner, "o@example.org", "texter")
        .await;
    expect_not_found(app.get_as(&other, &path).await).await;
    expect_not_found(
        app.reply_in(&other, &conversation, &json!({"body": "hi"}))
            .await,
    )
    .await;

    // The texter marks the opt-out; a confirmation goes out once.
    let marked = app
        .post_as(&fixture.texter, &format!("{path}/opt-out"), &json!({}))
        .await;
    assert_eq!(marked.status(), 200);
    let again = app
        .post_ok(&fixture.texter, &format!("{path}/opt-out"), &json!({}))
        .await;
    assert_eq!(again["already_opted_out"], true);
    let events = recipient_events(&app, &fixture, &phone(0)).await;
    assert_eq!(count(&events, "OptOutRecorded"), 1);
    assert_eq!(count(&events, "AutoReplyQueued"), 1);
    app
}

async fn carrier_settings_never_show_or_record_the_secret(app: TestApp) -> TestApp {
    let owner = app.create_org("Carrier Org").await;
    let body = json!({
        "carrier": "twilio",
        "account_sid": "AC123",
        "auth_token": "super-secret-token",
        "sending_numbers": ["(202) 555-0199"],
    });
    let put = app.put_as(&owner, "/v1/carrier", &body).await;
    assert_eq!(put.status(), 200);
    let view = json(put).await;
    assert_eq!(view["sending_numbers"], json!(["+12025550199"]));
    assert_eq!(view["secret_set"], true);
    assert!(!view.to_string().contains("super-secret-token"));
    let got = app.get_ok(&owner, "/v1/carrier").await;
    assert!(!got.to_string().contains("super-secret-token"));
    // Not in the log either.
    let events = app.events_after(0).await;
    for event in &events {
        assert!(!event.data.to_string().contains("super-secret-token"));
        assert!(
            !serde_json::to_string(&event.metadata)
                .unwrap()
                .contains("super-secret-token")
        );
    }
    // Bad settings change nothing.
    for bad in [
        json!({"carrier": "carrier-pigeon"}),
        json!({"carrier": "twilio", "auth_token": "t", "sending_numbers": ["2025550100"]}),
        json!({"carrier": "telnyx", "api_key": "k", "public_key": "not-base64!", "sending_numbers": ["2025550100"]}),
        // Switching carriers needs the new carrier's secret.
        json!({"carrier": "telnyx", "public_key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "sending_numbers": ["2025550100"]}),
        json!({"carrier": "sim", "sending_numbers": ["not a number"]}),
    ] {
        let response = app.put_as(&owner, "/v1/carrier", &bad).await;
        expect_invalid_request(response).await;
    }
    assert_eq!(app.get_ok(&owner, "/v1/carrier").await["carrier"], "twilio");
    // Changing a setting without the secret keeps the stored secret.
    let org_id = app.get_ok(&owner, "/v1/me").await["org_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let kept = app
        .put_as(
            &owner,
            "/v1/carrier",
            &json!({"carrier": "twilio", "account_sid": "AC123", "sending_numbers": ["(202) 555-0199"],
                    "help_text": "Rivera for Council. Reply STOP to opt out."}),
        )
        .await;
    assert_eq!(kept.status(), 200);
    let carrier = app.app.carrier_for(org_id).await.unwrap().unwrap();
    assert_eq!(carrier.webhook_secret(), "super-secret-token");
    // A number another org sends from is refused.
    let other = app.create_org("Other Org").await;
    let taken = app.put_as(&other, "/v1/carrier", &body).await;
    expect_conflict(taken).await;
    // Managers and texters may not touch it.
    let manager = app.member_key(&owner, "m@example.org", "manager").await;
    expect_forbidden(app.get_as(&manager, "/v1/carrier").await).await;
    app
}

async fn telnyx_webhooks_are_verified_with_the_orgs_ed25519_key(app: TestApp) -> TestApp {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let owner = app.create_org("Telnyx Org").await;
    let settings = json!({
        "carrier": "telnyx",
        "api_key": "KEY-secret",
        "public_key": STANDARD.encode(pair.public_key().as_ref()),
        "sending_numbers": ["+13125550001"],
    });
    assert_eq!(
        app.put_as(&owner, "/v1/carrier", &settings).await.status(),
        200
    );
    let body = br#"{"data":{"event_type":"message.received","id":"evt-1",
        "payload":{"id":"msg-1","direction":"inbound","text":"STOP",
            "from":{"phone_number":"+13125550002"},
            "to":[{"phone_number":"+13125550001","status":"webhook_delivered"}]}}}"#;
    let post = |timestamp: String, signature: String, body: Vec<u8>| {
        app.client
            .post(app.url("/webhooks/telnyx"))
            .header("telnyx-timestamp", timestamp)
            .header("telnyx-signature-ed25519", signature)
            .body(body)
            .send()
    };
    let sign = |timestamp: &str, body: &[u8]| {
        let mut message = format!("{timestamp}|").into_bytes();
        message.extend_from_slice(body);
        STANDARD.encode(pair.sign(&message).as_ref())
    };
    // The app runs on a fixed clock; webhooks are checked against it.
    let now = crate::helpers::weekday_afternoon().timestamp().to_string();
    let head = app.app.events().head_position().await.unwrap();
    // Tampered, stale, and signed by someone else: refused, nothing recorded.
    let mut tampered = body.to_vec();
    tampered.extend_from_slice(b" ");
    expect_error(
        post(now.clone(), sign(&now, body), tampered).await.unwrap(),
        403,
        "invalid_signature",
    )
    .await;
    let stale = (crate::helpers::weekday_afternoon().timestamp() - 600).to_string();
    expect_error(
        post(stale.clone(), sign(&stale, body), body.to_vec())
            .await
            .unwrap(),
        403,
        "invalid_signature",
    )
    .await;
    let other =
        Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref()).unwrap();
    let mut message = format!("{now}|").into_bytes();
    message.extend_from_slice(body);
    let forged = STANDARD.encode(other.sign(&message).as_ref());
    expect_error(
        post(now.clone(), forged, body.to_vec()).await.unwrap(),
        403,
        "invalid_signature",
    )
    .await;
    assert_eq!(app.app.events().head_position().await.unwrap(), head);
    // Genuine: the STOP is recorded, once.
    let ok = post(now.clone(), sign(&now, body), body.to_vec())
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(json(ok).await["recorded"], true);
    let again = post(now.clone(), sign(&now, body), body.to_vec())
        .await
        .unwrap();
    assert_eq!(json(again).await["duplicate"], true);
    let export = app.get_as(&owner, "/v1/opt-outs?format=json").await;
    let export = json(export).await;
    assert_eq!(export["opt_outs"][0]["phone"], "+13125550002", "{export}");
    app
}

/// A simulator that answers every delivered message with a STOP variant.
async fn the_simulators_stop_reply_arrives_through_the_signed_webhook(app: TestApp) -> TestApp {
    let fixture = app.send_fixture(1).await;
    let conversation = app.send_first(&fixture).await;
    let path = format!("/v1/conversations/{conversation}");
    // Delivered and answered with a STOP variant — all through the
    // simulator's signed webhooks, none of it injected by the test. The
    // simulator picks the variant at random: a keyword ("STOP",
    // "unsubscribe") opts out with one confirmation; a phrase ("Stop
    // texting me") is flagged for the texter instead.
    let thread = app
        .eventually(&fixture.texter, &path, |t| {
            let keyword = &t["messages"][1]["keyword"];
            (keyword == "opt_out"
                && t["opted_out"] == true
                && t["messages"].as_array().unwrap().len() >= 3
                && t["messages"][2]["status"] == "delivered")
                || (keyword == "likely_opt_out" && t["needs_opt_out_review"] == true)
        })
        .await;
    assert_eq!(thread["messages"][0]["status"], "delivered");
    if thread["messages"][1]["keyword"] == "opt_out" {
        assert_eq!(thread["messages"][2]["kind"], "opt_out_confirmation");
    } else {
        assert_eq!(thread["opted_out"], false);
    }
    app
}

/// A message longer than the server allows, on a server that allows 40
/// characters.
async fn a_message_that_renders_too_long_is_held_with_its_own_reason(app: TestApp) -> TestApp {
    let fixture = app.send_fixture(2).await;
    let queue = app.queue(&fixture, 2).await;
    assert_eq!(queue["messages"], json!([]), "{queue}");
    assert_eq!(queue["held_for_length"], 2, "{queue}");
    assert_eq!(queue["hold"]["code"], "message_too_long", "{queue}");
    assert!(
        queue["hold"]["message"]
            .as_str()
            .unwrap()
            .contains("40 characters"),
        "{queue}"
    );
    // The campaign's managers see the holds, once per contact however
    // often the queue is asked, and apart from refused clicks.
    assert_eq!(app.queue(&fixture, 2).await["held_for_length"], 2);
    let path = format!("/v1/campaigns/{}/metrics", fixture.campaign_id);
    let metrics = app
        .eventually(&fixture.owner, &path, |m| {
            m["held_by_reason"]["message_too_long"] == 2
        })
        .await;
    assert_eq!(metrics["blocked"], 0, "{metrics}");
    assert_eq!(metrics["blocked_by_reason"], json!({}), "{metrics}");
    app
}
