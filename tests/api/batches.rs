//! Batches a texter can send now: the queue offers the texter's contacts
//! inside their texting hours however many closed ones come first in phone
//! order; assignments hand out contacts open now first, then the soonest to
//! open; and a campaign's batch rules cap what a texter holds and make them
//! answer replies before a new batch.

use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_error, expect_invalid_request, json, success_json};

crate::on_both_backends!(spawn = spawn_early_morning_app;
    the_queue_offers_open_contacts_behind_thousands_held_for_quiet_hours,
    assignments_hand_out_contacts_open_now_then_the_soonest_to_open,
    a_texter_holds_at_most_the_campaigns_limit,
    a_texter_with_too_many_replies_waiting_gets_no_new_batch_until_they_answer,
);

/// A place's area code and ZIP: New York (opens 13:00 UTC), Honolulu
/// (18:00), Anchorage (17:00), Guam (open at 07:50 UTC).
const NEW_YORK: (&str, &str) = ("212", "10001");
const HONOLULU: (&str, &str) = ("808", "96813");
const ANCHORAGE: (&str, &str) = ("907", "99501");
const GUAM: (&str, &str) = ("671", "96910");

/// List CSVs with `count` contacts in each place, in files of at most 450
/// rows (the test server takes 500).
fn places_csvs(places: &[((&str, &str), usize)]) -> Vec<String> {
    let rows: Vec<String> = places
        .iter()
        .flat_map(|((area, zip), count)| {
            (0..*count).map(move |i| format!("V,{area}555{:04},{zip}\r\n", 100 + i))
        })
        .collect();
    rows.chunks(450)
        .map(|chunk| format!("first_name,cell,zip\r\n{}", chunk.concat()))
        .collect()
}

/// An org with a simulator, a texter and a launched campaign over
/// `places`; `extra` adds fields to the campaign's body.
async fn campaign(
    app: &TestApp,
    places: &[((&str, &str), usize)],
    extra: Value,
) -> (String, String, String, String) {
    let owner = app.create_org("Batches").await;
    app.use_simulator(&owner).await;
    let (texter_id, texter) = app.member_with_key(&owner, "t@example.org", "texter").await;
    let mut lists = Vec::new();
    for csv in places_csvs(places) {
        let list = app
            .upload(&owner, "name=P&source=file&consent_basis=opted%20in", csv)
            .await;
        let list = json(list).await;
        let id = list["list_id"].as_str().unwrap_or_else(|| panic!("{list}"));
        lists.push(id.to_owned());
    }
    let mut body = json!({
        "name": "GOTV",
        "initial_message": "Hi {first_name}. Reply STOP to opt out",
        "list_ids": lists,
        "texting_hours": {"start": "08:00", "end": "21:00"},
    });
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    let created = app.post_ok(&owner, "/v1/campaigns", &body).await;
    let id = created["campaign_id"].as_str().unwrap().to_owned();
    app.post_ok(&owner, &format!("/v1/campaigns/{id}/launch"), &json!({}))
        .await;
    (owner, texter_id, texter, id)
}

/// The texter's queue in the campaign (up to `limit` messages).
async fn texter_queue(app: &TestApp, texter: &str, campaign: &str, limit: u32) -> Value {
    let path = format!("/v1/texter/queue?campaign_id={campaign}&limit={limit}");
    success_json(app.get_as(texter, &path).await).await
}

fn area_codes(queue: &Value) -> Vec<String> {
    queue["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["phone"].as_str().unwrap()[2..5].to_owned())
        .collect()
}

/// The area codes of the texter's contacts, as the read model has them.
async fn held_area_codes(app: &TestApp, campaign: &str, texter: &str) -> Vec<String> {
    let db = app.app.database();
    let rows: Vec<String> = textbank_store::on_reader!(db, |pool| {
        sqlx::query_scalar(
            "SELECT phone FROM campaign_contacts WHERE campaign_id = $1 AND texter_id = $2
              ORDER BY phone",
        )
        .bind(campaign.parse::<uuid::Uuid>().unwrap())
        .bind(texter.parse::<uuid::Uuid>().unwrap())
        .fetch_all(pool)
        .await
        .unwrap()
    });
    rows.iter().map(|phone| phone[2..5].to_owned()).collect()
}

async fn the_queue_offers_open_contacts_behind_thousands_held_for_quiet_hours(
    app: TestApp,
) -> TestApp {
    // More New York contacts (closed at 07:50 UTC, first in phone order)
    // than a queue once looked at, then a few in Guam (open).
    let (owner, texter_id, texter, id) =
        campaign(&app, &[(NEW_YORK, 2_100), (GUAM, 12)], json!({})).await;
    // The texter holds them all: New York's come first in phone order.
    let assigned = app
        .post_ok(
            &owner,
            &format!("/v1/campaigns/{id}/assignments"),
            &json!({"texter_id": texter_id, "count": 2_112}),
        )
        .await;
    assert_eq!(assigned["assigned"], 2_112);
    let queue = texter_queue(&app, &texter, &id, 10).await;
    assert_eq!(area_codes(&queue), vec!["671"; 10], "{queue}");
    assert_eq!(queue["remaining"], 2_112, "{queue}");
    assert_eq!(queue["held_for_quiet_hours"], 2_100, "{queue}");
    assert_eq!(queue["hold"], Value::Null, "{queue}");
    // Sent through Guam, the queue holds with when New York opens.
    let queue = texter_queue(&app, &texter, &id, 50).await;
    for message in queue["messages"].as_array().unwrap() {
        let sent = app
            .click(
                &texter,
                message["click_token"].as_str().unwrap(),
                message["phone"].as_str().unwrap(),
            )
            .await;
        success_json(sent).await;
    }
    let queue = texter_queue(&app, &texter, &id, 10).await;
    assert_eq!(queue["messages"], json!([]), "{queue}");
    assert_eq!(queue["hold"]["code"], "quiet_hours", "{queue}");
    assert_eq!(
        queue["hold"]["next_open"], "2026-11-25T13:00:00Z",
        "{queue}"
    );
    assert_eq!(queue["remaining"], 2_100, "{queue}");
    app
}

async fn assignments_hand_out_contacts_open_now_then_the_soonest_to_open(app: TestApp) -> TestApp {
    let places = [(NEW_YORK, 4), (HONOLULU, 4), (ANCHORAGE, 4), (GUAM, 4)];
    let (_, texter_id, texter, id) =
        campaign(&app, &places, json!({"assignment_batch_size": 4})).await;
    let request = format!("/v1/campaigns/{id}/assignments/request");
    let mut order = Vec::new();
    for _ in 0..4 {
        let got = app.post_ok(&texter, &request, &json!({})).await;
        assert_eq!(got["assigned"], 4, "{got}");
        let held = held_area_codes(&app, &id, &texter_id).await;
        let new: Vec<String> = held
            .iter()
            .filter(|code| !order.contains(*code))
            .cloned()
            .collect();
        let mut distinct = new.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), 1, "one place per batch: {new:?}");
        order.push(distinct[0].clone());
    }
    // Guam is open; New York opens at 13:00 UTC, Anchorage at 17:00 and
    // Honolulu at 18:00 (phone order would have put Honolulu before
    // Anchorage).
    assert_eq!(order, ["671", "212", "907", "808"]);
    app
}

async fn a_texter_holds_at_most_the_campaigns_limit(app: TestApp) -> TestApp {
    let (owner, texter_id, texter, id) = campaign(
        &app,
        &[(GUAM, 20)],
        json!({"assignment_batch_size": 5, "max_contacts_held": 8}),
    )
    .await;
    let path = format!("/v1/campaigns/{id}");
    let shown = app.get_ok(&owner, &path).await;
    assert_eq!(shown["max_contacts_held"], 8, "{shown}");
    assert_eq!(shown["max_replies_waiting"], Value::Null, "{shown}");
    let request = format!("{path}/assignments/request");
    assert_eq!(
        app.post_ok(&texter, &request, &json!({})).await["assigned"],
        5
    );
    assert_eq!(
        app.post_ok(&texter, &request, &json!({})).await["assigned"],
        3
    );
    let refused = expect_error(
        app.post_as(&texter, &request, &json!({})).await,
        409,
        "contact_limit_reached",
    )
    .await;
    assert!(refused.contains("8"), "{refused}");
    // A manager's assignment is held to it too.
    let assign = format!("{path}/assignments");
    expect_error(
        app.post_as(
            &owner,
            &assign,
            &json!({"texter_id": texter_id, "count": 3}),
        )
        .await,
        409,
        "contact_limit_reached",
    )
    .await;
    // Once some are texted, there is room again.
    let queue = texter_queue(&app, &texter, &id, 2).await;
    for (i, message) in queue["messages"].as_array().unwrap().iter().enumerate() {
        let token = message["click_token"].as_str().unwrap();
        success_json(app.click(&texter, token, &format!("k{i}")).await).await;
    }
    assert_eq!(
        app.post_ok(&texter, &request, &json!({})).await["assigned"],
        2
    );
    // Out of range is refused; null lifts the limit.
    expect_invalid_request(
        app.patch_as(&owner, &path, &json!({"max_contacts_held": 0}))
            .await,
    )
    .await;
    let lifted = app
        .patch_as(&owner, &path, &json!({"max_contacts_held": null}))
        .await;
    assert_eq!(success_json(lifted).await["max_contacts_held"], Value::Null);
    assert_eq!(
        app.post_ok(&texter, &request, &json!({})).await["assigned"],
        5
    );
    app
}

async fn a_texter_with_too_many_replies_waiting_gets_no_new_batch_until_they_answer(
    app: TestApp,
) -> TestApp {
    let (owner, _, texter, id) = campaign(
        &app,
        &[(GUAM, 10)],
        json!({"assignment_batch_size": 2, "max_replies_waiting": 0}),
    )
    .await;
    let org = app.get_ok(&owner, "/v1/me").await["org_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let request = format!("/v1/campaigns/{id}/assignments/request");
    assert_eq!(
        app.post_ok(&texter, &request, &json!({})).await["assigned"],
        2
    );
    let queue = texter_queue(&app, &texter, &id, 1).await;
    let message = &queue["messages"][0];
    let sent = success_json(
        app.click(&texter, message["click_token"].as_str().unwrap(), "k1")
            .await,
    )
    .await;
    let conversation = sent["conversation_id"].as_str().unwrap().to_owned();
    let voter = app
        .voter_texts(&org, message["phone"].as_str().unwrap(), "Who is this?")
        .await;
    assert!(voter.status().is_success());
    let refused = expect_error(
        app.post_as(&texter, &request, &json!({})).await,
        409,
        "replies_waiting",
    )
    .await;
    assert!(refused.contains("1 conversations waiting"), "{refused}");
    // Answering the reply opens the way again.
    success_json(
        app.reply_in(
            &texter,
            &conversation,
            &json!({"body": "It's the campaign!"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        app.post_ok(&texter, &request, &json!({})).await["assigned"],
        2
    );
    app
}
