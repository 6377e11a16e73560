//! Assignment over HTTP: managers assign, release and reassign contacts;
//! texters request their campaign's batch; counts per texter; archived
//! campaigns refuse changes; permissions and tenancy; every bad input is
//! refused and changes nothing; and concurrent requests never hand out the
//! same contact twice.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, expect_conflict, expect_error, expect_forbidden, expect_invalid_request,
    expect_not_found, expect_unauthenticated, json, sent,
};

crate::on_both_backends!(
    a_manager_assigns_unassigned_contacts_in_phone_order_and_reads_the_counts,
    a_texter_requests_its_batch_only_while_the_campaign_is_active,
    release_and_reassignment_move_a_texters_contacts,
    archived_campaigns_refuse_every_assignment_change,
    bad_assignment_input_is_rejected_and_changes_nothing,
    a_bad_batch_size_is_rejected_and_stores_no_campaign,
    only_the_right_roles_and_member_bound_keys_may_assign_or_request,
    another_orgs_campaigns_and_texters_answer_404,
    concurrent_requests_never_hand_out_a_contact_twice,
);

const QUERY: &str = "name=Precinct%2012&source=voter%20file&consent_basis=opted%20in";

/// A list of `n` contacts: +1555201xxxx, x counting from 0.
fn list_csv(n: usize) -> String {
    let mut csv = String::from("first_name,cell\r\n");
    for i in 0..n {
        csv.push_str(&format!("Voter{i},555-201-{i:04}\r\n"));
    }
    csv
}

fn phone(i: usize) -> String {
    format!("+1555201{i:04}")
}

/// The org's owner key, and a campaign over `contacts` contacts with the
/// given batch size (default when `None`), launched if asked.
async fn campaign(
    app: &TestApp,
    owner: &str,
    contacts: usize,
    batch: Option<u32>,
    launch: bool,
) -> String {
    let list = app.upload(owner, QUERY, list_csv(contacts)).await;
    assert_eq!(list.status(), 201);
    let list = json(list).await["list_id"].as_str().unwrap().to_owned();
    let mut body = json!({
        "name": "GOTV",
        "initial_message": "Hi {first_name}, it's {texter_name}. Reply STOP to opt out",
        "list_ids": [list],
    });
    if let Some(batch) = batch {
        body["assignment_batch_size"] = json!(batch);
    }
    let created = app.post_as(owner, "/v1/campaigns", &body).await;
    assert_eq!(created.status(), 201);
    let created = json(created).await;
    assert_eq!(created["contacts"], contacts);
    assert_eq!(
        created["assignment_batch_size"],
        batch.unwrap_or(100),
        "{created}"
    );
    let id = created["campaign_id"].as_str().unwrap().to_owned();
    if launch {
        app.use_simulator(owner).await;
        let launched = app
            .post_as(owner, &format!("/v1/campaigns/{id}/launch"), &json!({}))
            .await;
        assert_eq!(launched.status(), 200);
    }
    id
}

fn path(campaign: &str, rest: &str) -> String {
    format!("/v1/campaigns/{campaign}/assignments{rest}")
}

/// Assignment events in the whole log: a refused request must add none.
async fn assignment_events(app: &TestApp) -> usize {
    app.events_after(0)
        .await
        .iter()
        .filter(|e| e.event_type == "ContactsAssigned" || e.event_type == "ContactsReleased")
        .count()
}

/// phone → texter, from the read model.
async fn holders(app: &TestApp, campaign: &str) -> BTreeMap<String, Option<String>> {
    let db = app.app.database();
    let rows: Vec<(String, Option<uuid::Uuid>)> = textbank_store::on_reader!(db, |pool| {
        sqlx::query_as("SELECT phone, texter_id FROM campaign_contacts WHERE campaign_id = $1")
            .bind(campaign.parse::<uuid::Uuid>().unwrap())
            .fetch_all(pool)
            .await
            .unwrap()
    });
    rows.into_iter()
        .map(|(phone, texter)| (phone, texter.map(|t| t.to_string())))
        .collect()
}

fn held_by(holders: &BTreeMap<String, Option<String>>, texter: &str) -> Vec<String> {
    holders
        .iter()
        .filter(|(_, t)| t.as_deref() == Some(texter))
        .map(|(phone, _)| phone.clone())
        .collect()
}

/// texter id → assigned, and the unassigned count, as a manager sees them.
async fn counts(app: &TestApp, key: &str, campaign: &str) -> (BTreeMap<String, u64>, Value) {
    let response = app.get_as(key, &path(campaign, "")).await;
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    let texters = body["texters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["texter_id"].as_str().unwrap().to_owned(),
                t["assigned"].as_u64().unwrap(),
            )
        })
        .collect();
    (texters, body["unassigned"].clone())
}

async fn a_manager_assigns_unassigned_contacts_in_phone_order_and_reads_the_counts(
    app: TestApp,
) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let manager = app.key_of_a(&owner, "manager").await;
    let (ana, _) = app
        .member_with_key(&owner, "ana@example.org", "texter")
        .await;
    let (ben, _) = app
        .member_with_key(&owner, "ben@example.org", "texter")
        .await;
    // Draft: managers may assign before launch.
    let id = campaign(&app, &owner, 12, None, false).await;

    let first = app
        .post_as(
            &manager,
            &path(&id, ""),
            &json!({"texter_id": ana, "count": 5}),
        )
        .await;
    assert_eq!(first.status(), 200);
    let first = json(first).await;
    assert_eq!(first["assigned"], 5);
    assert_eq!(first["texter_id"], ana.as_str());
    assert!(first["position"].as_u64().unwrap() > 0);

    // Only 7 are left.
    let second = app
        .post_ok(
            &manager,
            &path(&id, ""),
            &json!({"texter_id": ben, "count": 10}),
        )
        .await;
    assert_eq!(second["assigned"], 7);
    assert!(second["position"].as_u64() > first["position"].as_u64());
    let none = app
        .post_as(
            &manager,
            &path(&id, ""),
            &json!({"texter_id": ana, "count": 3}),
        )
        .await;
    assert_eq!(none.status(), 200);
    assert_eq!(json(none).await["assigned"], 0);

    let held = holders(&app, &id).await;
    assert_eq!(held_by(&held, &ana), (0..5).map(phone).collect::<Vec<_>>());
    assert_eq!(held_by(&held, &ben), (5..12).map(phone).collect::<Vec<_>>());

    let (texters, unassigned) = counts(&app, &manager, &id).await;
    assert_eq!(
        texters,
        BTreeMap::from([(ana.clone(), 5), (ben.clone(), 7)])
    );
    assert_eq!(unassigned, 0);
    let body = app.get_ok(&manager, &path(&id, "")).await;
    assert_eq!(body["campaign_id"], id.as_str());
    assert!(
        body["texters"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["name"] == "Test Member"),
        "{body}"
    );
    app
}

async fn a_texter_requests_its_batch_only_while_the_campaign_is_active(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let (ana, ana_key) = app
        .member_with_key(&owner, "ana@example.org", "texter")
        .await;
    let (ben, ben_key) = app
        .member_with_key(&owner, "ben@example.org", "texter")
        .await;
    let id = campaign(&app, &owner, 10, Some(4), false).await;
    let request = path(&id, "/request");

    let error = expect_conflict(app.post_as(&ana_key, &request, &json!({})).await).await;
    assert_eq!(
        error,
        "contacts can be requested only while the campaign is active; it is draft"
    );
    assert_eq!(assignment_events(&app).await, 0);

    app.use_simulator(&owner).await;
    app.post_as(&owner, &format!("/v1/campaigns/{id}/launch"), &json!({}))
        .await;
    let mut got = Vec::new();
    for key in [&ana_key, &ben_key, &ana_key, &ben_key] {
        let response = app.post_as(key, &request, &json!({})).await;
        assert_eq!(response.status(), 200);
        got.push(json(response).await);
    }
    let assigned: Vec<u64> = got
        .iter()
        .map(|r| r["assigned"].as_u64().unwrap())
        .collect();
    assert_eq!(assigned, [4, 4, 2, 0], "the last texter finds none left");
    assert_eq!(got[0]["texter_id"], ana.as_str());
    assert_eq!(got[1]["texter_id"], ben.as_str());

    // An empty body is as good as {}.
    let empty = sent(app.client.post(app.url(&request)).bearer_auth(&ana_key)).await;
    assert_eq!(empty.status(), 200);
    assert_eq!(json(empty).await["assigned"], 0);

    // A texter sees its own count only.
    let own = app.get_ok(&ana_key, &path(&id, "")).await;
    assert_eq!(
        own,
        json!({"campaign_id": id, "texters": [{"texter_id": ana, "name": "Test Member", "assigned": 6}]})
    );
    let own = app.get_ok(&ben_key, &path(&id, "")).await;
    assert_eq!(own["texters"][0]["assigned"], 4);
    assert!(own.get("unassigned").is_none());

    app.post_as(&owner, &format!("/v1/campaigns/{id}/pause"), &json!({}))
        .await;
    let error = expect_conflict(app.post_as(&ana_key, &request, &json!({})).await).await;
    assert!(error.ends_with("it is paused"), "{error}");
    app
}

async fn release_and_reassignment_move_a_texters_contacts(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let (ana, _) = app
        .member_with_key(&owner, "ana@example.org", "texter")
        .await;
    let (ben, _) = app
        .member_with_key(&owner, "ben@example.org", "texter")
        .await;
    let id = campaign(&app, &owner, 8, None, true).await;
    app.post_as(
        &owner,
        &path(&id, ""),
        &json!({"texter_id": ana, "count": 6}),
    )
    .await;

    let released = app
        .post_as(
            &owner,
            &path(&id, "/release"),
            &json!({"texter_id": ana, "count": 2}),
        )
        .await;
    assert_eq!(released.status(), 200);
    let released = json(released).await;
    assert_eq!(released["released"], 2);
    assert_eq!(released["texter_id"], ana.as_str());
    let held = holders(&app, &id).await;
    assert_eq!(held_by(&held, &ana), (2..6).map(phone).collect::<Vec<_>>());

    let moved = app
        .post_as(
            &owner,
            &path(&id, "/reassign"),
            &json!({"from_texter_id": ana, "to_texter_id": ben, "count": 3}),
        )
        .await;
    assert_eq!(moved.status(), 200);
    let moved = json(moved).await;
    assert_eq!(moved["reassigned"], 3);
    assert_eq!(moved["from_texter_id"], ana.as_str());
    assert_eq!(moved["to_texter_id"], ben.as_str());
    let held = holders(&app, &id).await;
    assert_eq!(held_by(&held, &ana), [phone(5)]);
    assert_eq!(held_by(&held, &ben), (2..5).map(phone).collect::<Vec<_>>());
    // The released phones are the first up for grabs again.
    let (texters, unassigned) = counts(&app, &owner, &id).await;
    assert_eq!(
        texters,
        BTreeMap::from([(ana.clone(), 1), (ben.clone(), 3)])
    );
    assert_eq!(unassigned, 4);

    // Without a count: everything.
    let moved = app
        .post_ok(
            &owner,
            &path(&id, "/reassign"),
            &json!({"from_texter_id": ana, "to_texter_id": ben}),
        )
        .await;
    assert_eq!(moved["reassigned"], 1);
    let released = app
        .post_ok(&owner, &path(&id, "/release"), &json!({"texter_id": ben}))
        .await;
    assert_eq!(released["released"], 4);
    let (texters, unassigned) = counts(&app, &owner, &id).await;
    assert_eq!(texters, BTreeMap::new());
    assert_eq!(unassigned, 8);
    // Nothing left to release: 200, zero, no event.
    let before = assignment_events(&app).await;
    let released = app
        .post_ok(&owner, &path(&id, "/release"), &json!({"texter_id": ben}))
        .await;
    assert_eq!(released["released"], 0);
    assert_eq!(assignment_events(&app).await, before);

    // A reassignment is one append: its release and its assignment sit at
    // consecutive positions of the campaign stream.
    app.post_as(
        &owner,
        &path(&id, ""),
        &json!({"texter_id": ana, "count": 2}),
    )
    .await;
    app.post_as(
        &owner,
        &path(&id, "/reassign"),
        &json!({"from_texter_id": ana, "to_texter_id": ben}),
    )
    .await;
    let log = app.events_after(0).await;
    let tail: Vec<&str> = log
        .iter()
        .rev()
        .take(2)
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(tail, ["ContactsAssigned", "ContactsReleased"]);
    app
}

async fn archived_campaigns_refuse_every_assignment_change(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let (ana, ana_key) = app
        .member_with_key(&owner, "ana@example.org", "texter")
        .await;
    let (ben, _) = app
        .member_with_key(&owner, "ben@example.org", "texter")
        .await;
    let id = campaign(&app, &owner, 5, None, true).await;
    app.post_as(
        &owner,
        &path(&id, ""),
        &json!({"texter_id": ana, "count": 2}),
    )
    .await;
    app.post_as(&owner, &format!("/v1/campaigns/{id}/archive"), &json!({}))
        .await;
    let before = assignment_events(&app).await;
    for (key, rest, body) in [
        (&owner, "", json!({"texter_id": ben, "count": 1})),
        (&owner, "/release", json!({"texter_id": ana})),
        (
            &owner,
            "/reassign",
            json!({"from_texter_id": ana, "to_texter_id": ben}),
        ),
    ] {
        let error = expect_conflict(app.post_as(key, &path(&id, rest), &body).await).await;
        assert_eq!(
            error, "assignments of a campaign that is archived cannot change",
            "{rest}"
        );
    }
    let error = expect_conflict(
        app.post_as(&ana_key, &path(&id, "/request"), &json!({}))
            .await,
    )
    .await;
    assert!(error.ends_with("it is archived"), "{error}");
    assert_eq!(assignment_events(&app).await, before);
    let (texters, unassigned) = counts(&app, &owner, &id).await;
    assert_eq!(texters, BTreeMap::from([(ana, 2)]));
    assert_eq!(unassigned, 3);
    app
}

async fn bad_assignment_input_is_rejected_and_changes_nothing(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let (ana, ana_key) = app
        .member_with_key(&owner, "ana@example.org", "texter")
        .await;
    let (manager, _) = app
        .member_with_key(&owner, "manager@example.org", "manager")
        .await;
    let id = campaign(&app, &owner, 5, None, true).await;

    let unprocessable = [
        (
            "",
            json!({"texter_id": ana, "count": 0}),
            "count must be between 1 and 10000, got 0",
        ),
        (
            "",
            json!({"texter_id": ana, "count": 10_001}),
            "count must be between 1 and 10000, got 10001",
        ),
        ("", json!({"texter_id": ana, "count": -1}), "count"),
        ("", json!({"texter_id": ana, "count": "five"}), "count"),
        ("", json!({"texter_id": ana}), "missing field `count`"),
        ("", json!({"count": 1}), "missing field `texter_id`"),
        (
            "",
            json!({"texter_id": ana, "count": 1, "org_id": "x"}),
            "org_id",
        ),
        (
            "",
            json!({"texter_id": manager, "count": 1}),
            "texter_id: member",
        ),
        (
            "/release",
            json!({"texter_id": ana, "count": 0}),
            "count must be between 1",
        ),
        (
            "/release",
            json!({"texter_id": manager}),
            "contacts can be assigned only to texters",
        ),
        (
            "/reassign",
            json!({"from_texter_id": ana, "to_texter_id": ana}),
            "to_texter_id must differ from from_texter_id",
        ),
        (
            "/reassign",
            json!({"from_texter_id": ana, "to_texter_id": manager}),
            "to_texter_id: member",
        ),
        (
            "/reassign",
            json!({"from_texter_id": ana, "to_texter_id": ana, "count": 20_000}),
            "count must be between 1",
        ),
    ];
    for (rest, body, expected) in unprocessable {
        let error =
            expect_invalid_request(app.post_as(&owner, &path(&id, rest), &body).await).await;
        assert!(error.contains(expected), "{rest} {body}: {error}");
    }
    for texter in [
        "0190b3c4-7a1e-7000-8000-000000000000".to_owned(),
        "not-a-uuid".to_owned(),
    ] {
        let error = expect_not_found(
            app.post_as(
                &owner,
                &path(&id, ""),
                &json!({"texter_id": texter, "count": 1}),
            )
            .await,
        )
        .await;
        assert_eq!(error, "texter not found");
    }
    let malformed = sent(
        app.client
            .post(app.url(&path(&id, "")))
            .bearer_auth(&owner)
            .header("content-type", "application/json")
            .body("{\"texter_id\": "),
    )
    .await;
    expect_error(malformed, 400, "invalid_json").await;
    let error = expect_invalid_request(
        app.post_as(&ana_key, &path(&id, "/request"), &json!({"count": 500}))
            .await,
    )
    .await;
    assert!(error.contains("takes no parameters"), "{error}");

    assert_eq!(assignment_events(&app).await, 0);
    let (texters, unassigned) = counts(&app, &owner, &id).await;
    assert!(texters.is_empty());
    assert_eq!(unassigned, 5);
    app
}

async fn a_bad_batch_size_is_rejected_and_stores_no_campaign(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    for (size, expected) in [
        (json!(0), "assignment_batch_size must be 1–1000, got 0"),
        (
            json!(1_001),
            "assignment_batch_size must be 1–1000, got 1001",
        ),
        (json!(-5), "assignment_batch_size"),
        (json!("ten"), "assignment_batch_size"),
    ] {
        let body = json!({
            "name": "GOTV",
            "initial_message": "Hi, reply STOP to opt out",
            "assignment_batch_size": size,
        });
        let error = expect_invalid_request(app.post_as(&owner, "/v1/campaigns", &body).await).await;
        assert!(error.contains(expected), "{size}: {error}");
    }
    let campaigns = app.get_ok(&owner, "/v1/campaigns").await;
    assert_eq!(campaigns["campaigns"], json!([]));
    app
}

async fn only_the_right_roles_and_member_bound_keys_may_assign_or_request(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let (ana, ana_key) = app
        .member_with_key(&owner, "ana@example.org", "texter")
        .await;
    let manager = app.key_of_a(&owner, "manager").await;
    let compliance = app.key_of_a(&owner, "compliance").await;
    let unbound = app
        .post_as(
            &owner,
            "/v1/api-keys",
            &json!({"role": "texter", "label": "kiosk"}),
        )
        .await;
    assert_eq!(unbound.status(), 201);
    let unbound = json(unbound).await["key"].as_str().unwrap().to_owned();
    let id = campaign(&app, &owner, 5, None, true).await;

    for key in [&ana_key, &compliance] {
        for (rest, body) in [
            ("", json!({"texter_id": ana, "count": 1})),
            ("/release", json!({"texter_id": ana})),
            (
                "/reassign",
                json!({"from_texter_id": ana, "to_texter_id": ana}),
            ),
        ] {
            let error = expect_forbidden(app.post_as(key, &path(&id, rest), &body).await).await;
            assert!(error.ends_with("may not assign contacts"), "{error}");
        }
    }
    for key in [&manager, &owner, &compliance] {
        let error =
            expect_forbidden(app.post_as(key, &path(&id, "/request"), &json!({})).await).await;
        assert!(error.ends_with("may not request assignments"), "{error}");
    }
    expect_forbidden(app.get_as(&compliance, &path(&id, "")).await).await;
    for request in [
        app.post_as(&unbound, &path(&id, "/request"), &json!({}))
            .await,
        app.get_as(&unbound, &path(&id, "")).await,
    ] {
        let error = expect_forbidden(request).await;
        assert!(
            error.contains("not bound to a member") && error.contains("member_id"),
            "{error}"
        );
    }
    let unauthenticated = sent(app.client.post(app.url(&path(&id, "/request")))).await;
    expect_unauthenticated(unauthenticated).await;
    assert_eq!(assignment_events(&app).await, 0);
    app
}

async fn another_orgs_campaigns_and_texters_answer_404(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let other = app.create_org("Someone else").await;
    let (ana, _) = app
        .member_with_key(&owner, "ana@example.org", "texter")
        .await;
    let (stranger, stranger_key) = app
        .member_with_key(&other, "stranger@example.org", "texter")
        .await;
    let id = campaign(&app, &owner, 5, None, true).await;
    let theirs = campaign(&app, &other, 3, None, true).await;

    // Their keys on my campaign.
    for (key, rest, body) in [
        (&other, "", json!({"texter_id": stranger, "count": 1})),
        (&other, "/release", json!({"texter_id": stranger})),
        (
            &other,
            "/reassign",
            json!({"from_texter_id": stranger, "to_texter_id": stranger}),
        ),
        (&stranger_key, "/request", json!({})),
    ] {
        let error = expect_not_found(app.post_as(key, &path(&id, rest), &body).await).await;
        assert!(error.ends_with("not found"), "{rest}: {error}");
    }
    for key in [&other, &stranger_key] {
        let error = expect_not_found(app.get_as(key, &path(&id, "")).await).await;
        assert_eq!(error, "campaign not found");
    }
    // Their texter on my campaign, my texter on theirs.
    for (campaign, texter) in [(&id, &stranger), (&theirs, &ana)] {
        let error = expect_not_found(
            app.post_as(
                &owner,
                &path(campaign, ""),
                &json!({"texter_id": texter, "count": 1}),
            )
            .await,
        )
        .await;
        assert!(error.ends_with("not found"), "{error}");
    }
    let error = expect_not_found(
        app.post_as(
            &owner,
            &path(&id, "/reassign"),
            &json!({"from_texter_id": ana, "to_texter_id": stranger}),
        )
        .await,
    )
    .await;
    assert_eq!(error, "texter not found");
    for missing in ["nope", "0190b3c4-7a1e-7000-8000-000000000000"] {
        let error = expect_not_found(
            app.post_as(
                &owner,
                &path(missing, ""),
                &json!({"texter_id": ana, "count": 1}),
            )
            .await,
        )
        .await;
        assert_eq!(error, "campaign not found");
    }
    assert_eq!(assignment_events(&app).await, 0);
    app
}

async fn concurrent_requests_never_hand_out_a_contact_twice(app: TestApp) -> TestApp {
    const CONTACTS: usize = 30;
    const BATCH: u32 = 4;
    const TEXTERS: usize = 4;
    const REQUESTS_EACH: usize = 5;
    let owner = app.create_org("Rivera").await;
    let mut texters = Vec::new();
    for i in 0..TEXTERS {
        texters.push(
            app.member_with_key(&owner, &format!("texter{i}@example.org"), "texter")
                .await,
        );
    }
    let id = campaign(&app, &owner, CONTACTS, Some(BATCH), true).await;

    // 20 requests for 80 contacts at once, over 30 contacts.
    let url = app.url(&path(&id, "/request"));
    let mut tasks = tokio::task::JoinSet::new();
    for round in 0..REQUESTS_EACH {
        for (texter, key) in &texters {
            let (client, url, key, texter) =
                (app.client.clone(), url.clone(), key.clone(), texter.clone());
            tasks.spawn(async move {
                let response = sent(client.post(url).bearer_auth(key).json(&json!({}))).await;
                let status = response.status().as_u16();
                let body: Value = response.json().await.expect("JSON");
                (round, texter, status, body)
            });
        }
    }
    let mut per_texter: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0;
    while let Some(result) = tasks.join_next().await {
        let (_, texter, status, body) = result.unwrap();
        assert_eq!(status, 200, "{body}");
        let assigned = body["assigned"].as_u64().unwrap();
        assert!(assigned <= u64::from(BATCH), "{body}");
        *per_texter.entry(texter).or_default() += assigned;
        total += assigned;
    }
    assert_eq!(total, CONTACTS as u64, "every contact handed out, once");

    // The log: no phone in two assignments, every phone assigned.
    let log = app.events_after(0).await;
    let mut seen = BTreeSet::new();
    for event in log.iter().filter(|e| e.event_type == "ContactsAssigned") {
        for phone in event.data["phones"].as_array().unwrap() {
            let phone = phone.as_str().unwrap().to_owned();
            assert!(seen.insert(phone.clone()), "{phone} assigned twice");
        }
    }
    assert_eq!(seen, (0..CONTACTS).map(phone).collect::<BTreeSet<_>>());

    // The read model agrees with the responses, texter by texter.
    let held = holders(&app, &id).await;
    assert!(held.values().all(Option::is_some));
    for (texter, _) in &texters {
        let expected = per_texter.get(texter).copied().unwrap_or(0);
        assert_eq!(held_by(&held, texter).len() as u64, expected, "{texter}");
    }
    let (counts, unassigned) = counts(&app, &owner, &id).await;
    assert_eq!(counts.values().sum::<u64>(), CONTACTS as u64);
    assert_eq!(unassigned, 0);
    app
}
