//! No sending without a carrier: launching and resuming are refused with
//! 409 `no_carrier` while the organization has none; once it is removed,
//! queues hold with that reason and clicks are refused; a first message that
//! never reached any carrier leaves its contact to be sent with a new click.

use serde_json::{Value, json};
use textbank_domain::message::MessageKind;
use textbank_domain::phone::PhoneNumber;
use textbank_domain::recipient::{self, NO_CARRIER, RecipientEvent};
use textbank_domain::{Actor, CampaignId, DomainEvent, EventMetadata, MemberId, OrgId};
use textbank_store::{ExpectedVersion, NewEvent};

use crate::helpers::{TestApp, expect_error, json, success_json};

crate::on_both_backends!(spawn = spawn_send_app;
    launching_and_resuming_without_a_carrier_are_409_no_carrier,
    a_removed_carrier_holds_the_queue_and_refuses_clicks_until_it_is_back,
    a_first_message_that_never_reached_a_carrier_can_be_sent_again_with_a_new_click,
);

async fn launching_and_resuming_without_a_carrier_are_409_no_carrier(app: TestApp) -> TestApp {
    let owner = app.create_org("Carrierless").await;
    let list = app
        .upload(
            &owner,
            "name=P&source=file&consent_basis=opted%20in",
            "first_name,cell\r\nAna,555-201-0001\r\n".to_owned(),
        )
        .await;
    let list = json(list).await["list_id"].as_str().unwrap().to_owned();
    let campaign = app
        .post_ok(
            &owner,
            "/v1/campaigns",
            &json!({"name": "GOTV", "initial_message": "Hi {first_name}. Reply STOP to opt out", "list_ids": [list]}),
        )
        .await;
    let id = campaign["campaign_id"].as_str().unwrap().to_owned();
    let step = |action: &str| format!("/v1/campaigns/{id}/{action}");

    let error = expect_error(
        app.post_as(&owner, &step("launch"), &json!({})).await,
        409,
        "no_carrier",
    )
    .await;
    assert!(error.contains("no carrier configured"), "{error}");
    let fetched = app.get_ok(&owner, &format!("/v1/campaigns/{id}")).await;
    assert_eq!(fetched["status"], "draft");
    let launches = app.count_events("CampaignLaunched").await;
    assert_eq!(launches, 0);

    // The simulator counts once the organization configures it.
    app.use_simulator(&owner).await;
    assert_eq!(
        app.post_ok(&owner, &step("launch"), &json!({})).await["status"],
        "active"
    );
    assert_eq!(
        app.post_ok(&owner, &step("pause"), &json!({})).await["status"],
        "paused"
    );

    // Removed while paused: resuming is refused, archiving is not.
    let removed = app.delete_as(&owner, "/v1/carrier").await;
    let removed = success_json(removed).await;
    assert_eq!(removed["removed"], true, "{removed}");
    let again = success_json(app.delete_as(&owner, "/v1/carrier").await).await;
    assert_eq!(again["removed"], false, "{again}");
    let removals = app.count_events("CarrierRemoved").await;
    assert_eq!(removals, 1);
    expect_error(
        app.post_as(&owner, &step("resume"), &json!({})).await,
        409,
        "no_carrier",
    )
    .await;
    app.use_simulator(&owner).await;
    assert_eq!(
        app.post_ok(&owner, &step("resume"), &json!({})).await["status"],
        "active"
    );
    app
}

async fn a_removed_carrier_holds_the_queue_and_refuses_clicks_until_it_is_back(
    app: TestApp,
) -> TestApp {
    let fixture = app.send_fixture(3).await;
    let before = app.queue(&fixture, 3).await;
    let token = before["messages"][0]["click_token"]
        .as_str()
        .unwrap()
        .to_owned();
    success_json(app.delete_as(&fixture.owner, "/v1/carrier").await).await;

    let queue = app.queue(&fixture, 3).await;
    assert_eq!(queue["messages"], json!([]), "{queue}");
    assert_eq!(queue["hold"]["code"], "no_carrier", "{queue}");
    assert_eq!(queue["held_for_carrier"], 3, "{queue}");
    assert_eq!(queue["remaining"], 3, "{queue}");
    // A token shown before the removal sends nothing.
    let refused = app.click(&fixture.texter, &token, "k-none").await;
    let message = expect_error(refused, 409, "no_carrier").await;
    assert!(message.contains("no carrier"), "{message}");
    let clicks = app.count_events("MessageSendClicked").await;
    assert_eq!(clicks, 0);
    // Managers see the holds once per contact, however often the queue is
    // asked, apart from the refused click.
    app.queue(&fixture, 3).await;
    let path = format!("/v1/campaigns/{}/metrics", fixture.campaign_id);
    let metrics = app
        .eventually(&fixture.owner, &path, |m| {
            m["held_by_reason"]["no_carrier"] == 3 && m["blocked_by_reason"]["no_carrier"] == 1
        })
        .await;
    assert_eq!(metrics["messaged"], 0, "{metrics}");

    // Back again: the queue offers the contacts and a click sends.
    app.use_simulator(&fixture.owner).await;
    let queue = app.queue(&fixture, 3).await;
    assert_eq!(queue["hold"], Value::Null, "{queue}");
    assert_eq!(queue["messages"].as_array().unwrap().len(), 3, "{queue}");
    app.send_first(&fixture).await;
    app
}

async fn a_first_message_that_never_reached_a_carrier_can_be_sent_again_with_a_new_click(
    app: TestApp,
) -> TestApp {
    let fixture = app.send_fixture(2).await;
    let org: OrgId = fixture.org_id.parse().unwrap();
    let queue = app.queue(&fixture, 2).await;
    let phone = queue["messages"][0]["phone"].as_str().unwrap().to_owned();
    // A click from before launches needed a carrier, which the dispatcher
    // found no carrier for.
    let parsed = PhoneNumber::from_e164(&phone).unwrap();
    let texter = MemberId::from_uuid(fixture.texter_id.parse().unwrap());
    let mut click = textbank_domain::testing::click_record(
        texter,
        &parsed,
        MessageKind::Initial,
        "Hi",
        app.now(),
    );
    click.campaign_id = CampaignId::from_uuid(fixture.campaign_id.parse().unwrap());
    let message_id = click.message_id;
    let events = [
        RecipientEvent::MessageSendClicked(Box::new(click)),
        RecipientEvent::MessageSubmitFailed {
            message_id,
            attempt: 1,
            carrier: "none".into(),
            code: NO_CARRIER.into(),
            error: "the organization has no carrier configured".into(),
            retryable: false,
        },
    ];
    let events = events
        .into_iter()
        .map(|event| {
            let (event_type, data) = event.to_parts().unwrap();
            NewEvent::new(
                event_type,
                data,
                EventMetadata::new(Some(org), Actor::System),
            )
        })
        .collect();
    app.app
        .events()
        .append(
            &recipient::stream_id(org, &parsed),
            ExpectedVersion::Any,
            events,
        )
        .await
        .unwrap();

    // Still waiting for its first message, offered again (with a new
    // token: the old one is never replayed by itself).
    let queue = app.queue(&fixture, 2).await;
    assert_eq!(queue["remaining"], 2, "{queue}");
    let offered: Vec<&str> = queue["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["phone"].as_str().unwrap())
        .collect();
    assert!(offered.contains(&phone.as_str()), "{queue}");
    let token = queue["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|message| message["phone"] == phone.as_str())
        .unwrap()["click_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let sent = success_json(app.click(&fixture.texter, &token, "k-again").await).await;
    assert_eq!(sent["duplicate"], false, "{sent}");
    let queue = app.queue(&fixture, 2).await;
    assert_eq!(queue["remaining"], 1, "{queue}");
    // The send screen hears of the failure.
    let queue = app
        .eventually(
            &fixture.texter,
            &format!(
                "/v1/texter/queue?campaign_id={}&limit=2",
                fixture.campaign_id
            ),
            |queue| queue["failed"] == 1,
        )
        .await;
    assert_eq!(queue["failed"], 1, "{queue}");
    app
}
