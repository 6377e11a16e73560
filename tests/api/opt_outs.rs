//! Numbers that opted out of an organization are never imported, never counted
//! as a campaign's contacts and never assigned — and an opt-in brings them
//! back. Opt-outs are recorded on the recipient stream (the send path will
//! record them from STOP replies; here the test records them directly).

use serde_json::json;
use textbank_domain::phone::{PhoneNumber, Region};
use textbank_domain::recipient::{self, OptOutSource, RecipientEvent};
use textbank_domain::{Actor, DomainEvent, EventMetadata, OrgId};
use textbank_projections::catch_up;
use textbank_projections::opt_outs::OptOuts;
use textbank_store::{ExpectedVersion, NewEvent};

use crate::helpers::{TestApp, json};

crate::on_both_backends!(
    opted_out_numbers_are_rejected_on_import_left_out_of_campaigns_and_never_assigned
);

const QUERY: &str = "name=Precinct%2012&source=voter%20file&consent_basis=opted%20in";

async fn record(app: &TestApp, org: OrgId, event: RecipientEvent) {
    let phone = match &event {
        RecipientEvent::OptOutRecorded { phone, .. }
        | RecipientEvent::OptInRecorded { phone, .. } => phone.clone(),
        other => panic!("not an opt-out or opt-in: {other:?}"),
    };
    let (event_type, data) = event.to_parts().unwrap();
    let metadata = EventMetadata::new(
        Some(org),
        Actor::Carrier {
            carrier: "sim".into(),
        },
    );
    app.app
        .events()
        .append(
            &recipient::stream_id(org, &phone),
            ExpectedVersion::Any,
            vec![NewEvent::new(event_type, data, metadata)],
        )
        .await
        .unwrap();
    catch_up(app.app.events(), &OptOuts).await.unwrap();
}

fn phone(text: &str) -> PhoneNumber {
    PhoneNumber::parse(text, Region::US).unwrap()
}

async fn opted_out_numbers_are_rejected_on_import_left_out_of_campaigns_and_never_assigned(
    app: TestApp,
) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let org: OrgId = app.get_ok(&owner, "/v1/me").await["org_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let csv = "cell,first_name\n5552010001,Ana\n5552010002,Ben\n5552010003,Cy\n";

    // A list uploaded before the opt-out holds all three numbers.
    let early = json(app.upload(&owner, QUERY, csv).await).await;
    assert_eq!(early["imported"], 3);
    let early_list = early["list_id"].as_str().unwrap().to_owned();

    let stop = RecipientEvent::OptOutRecorded {
        phone: phone("5552010002"),
        source: OptOutSource::KeywordReply,
        keyword: Some("STOP".into()),
        conversation: None,
    };
    record(&app, org, stop).await;

    // An upload after it rejects the number, with the reason.
    let later = json(app.upload(&owner, QUERY, csv).await).await;
    assert_eq!(later["imported"], 2);
    assert_eq!(later["rejected"]["opted_out"], 1);
    let list_id = later["list_id"].as_str().unwrap();
    let rejections = app.rejections(&owner, list_id).await;
    assert!(
        rejections.contains("3,opted_out,5552010002,"),
        "{rejections}"
    );

    // A campaign over the early list leaves the number out of its contacts…
    let campaign = app
        .post_as(
            &owner,
            "/v1/campaigns",
            &json!({"name": "GOTV", "initial_message": "Hi {first_name}! Reply STOP to opt out.", "list_ids": [early_list]}),
        )
        .await;
    assert_eq!(campaign.status(), 201);
    let campaign_id = json(campaign).await["campaign_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = app
        .get_ok(&owner, &format!("/v1/campaigns/{campaign_id}"))
        .await;
    assert_eq!(shown["contacts"], 2, "{shown}");

    // …and never assigns it.
    let (texter_id, _) = app.member_with_key(&owner, "t@example.org", "texter").await;
    let assigned = app
        .post_as(
            &owner,
            &format!("/v1/campaigns/{campaign_id}/assignments"),
            &json!({"texter_id": texter_id, "count": 10}),
        )
        .await;
    assert_eq!(
        assigned.status(),
        200,
        "{}",
        assigned.text().await.unwrap_or_default()
    );
    let assignments = app
        .get_ok(&owner, &format!("/v1/campaigns/{campaign_id}/assignments"))
        .await;
    assert_eq!(assignments["texters"][0]["assigned"], 2, "{assignments}");
    assert_eq!(assignments["unassigned"], 0, "{assignments}");

    // Opting back in makes the number reachable again.
    let start = RecipientEvent::OptInRecorded {
        phone: phone("5552010002"),
        source: OptOutSource::KeywordReply,
    };
    record(&app, org, start).await;
    let shown = app
        .get_ok(&owner, &format!("/v1/campaigns/{campaign_id}"))
        .await;
    assert_eq!(shown["contacts"], 3, "{shown}");
    app
}
