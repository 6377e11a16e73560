//! Campaigns over HTTP: creation with template checks, the rendered sample
//! and warnings, texting hours, contacts as the deduplicated union of lists,
//! versioned scripts, the lifecycle, permissions and tenancy. Every bad input
//! is refused and leaves no campaign behind.

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, expect_conflict, expect_forbidden, expect_invalid_request, expect_not_found, json,
};

crate::on_both_backends!(
    a_manager_creates_a_campaign_with_a_rendered_sample_and_an_opt_out_warning,
    contacts_are_the_union_of_the_lists_deduplicated_by_phone_first_list_wins,
    bad_templates_are_422_naming_the_problem_and_store_nothing,
    bad_texting_hours_and_bad_fields_are_422_and_store_nothing,
    unknown_malformed_and_other_orgs_lists_are_404_and_store_nothing,
    custom_texting_hours_are_kept_and_shown,
    script_revisions_are_versioned_and_validated,
    the_lifecycle_allows_only_its_transitions_and_answers_409_otherwise,
    launching_without_a_list_is_a_conflict,
    texters_and_compliance_read_but_cannot_manage_campaigns,
    another_orgs_campaign_answers_404,
    settings_change_until_the_campaign_is_archived,
    a_copy_is_a_new_draft_with_the_script_and_settings_and_lists_only_if_kept,
    copying_checks_who_asks_the_name_and_the_lists,
    a_campaign_over_a_large_list_answers_at_once_and_launches_once_its_contacts_are_in,
);

const QUERY: &str =
    "name=Precinct%2012&source=voter%20file%202026-10&consent_basis=opted%20in%20at%20events";

const FIRST_LIST: &str = "firstName,lastName,cell,zip,Polling Place\r\n\
    Ana,Ruiz,(555) 201-0001,10001,Main St Library\r\n\
    Ben,Ode,555.201.0002,94103,Gym\r\n\
    Cy,Lee,555 201 0003,60601,Gym\r\n";

/// Shares Ben's number with the first list, and has a different custom column.
const SECOND_LIST: &str = "first_name,cell,ward\r\n\
    Benjamin,+1 555 201 0002,4\r\n\
    Dee,555-201-0004,5\r\n";

async fn upload(app: &TestApp, key: &str, csv: &str) -> String {
    let response = app.upload(key, QUERY, csv.to_owned()).await;
    assert_eq!(response.status(), 201);
    json(response).await["list_id"]
        .as_str()
        .expect("list id")
        .to_owned()
}

/// The campaign is still a draft with its first script: refused requests
/// changed nothing.
async fn assert_untouched_draft(app: &TestApp, key: &str, id: &str) {
    let fetched = app.get_ok(key, &format!("/v1/campaigns/{id}")).await;
    assert_eq!(fetched["status"], "draft");
    assert_eq!(fetched["script"]["version"], 1);
}

fn campaign_body(list_ids: &[&str]) -> Value {
    json!({
        "name": "GOTV weekend",
        "initial_message": "Hi {first_name}, it's {texter_name} with Rivera. Your polling place is {polling_place}.",
        "canned_responses": [{"title": "Hours", "body": "Polls are open 7-8, {first_name}."}],
        "questions": [{"id": "support", "text": "Will you vote for Rivera?", "answers": ["yes", "no", "maybe"]}],
        "list_ids": list_ids,
    })
}

/// Campaign events in the whole log: a refused request must add none.
async fn campaign_events(app: &TestApp) -> usize {
    app.events_after(0)
        .await
        .iter()
        .filter(|event| event.stream_id.as_str().starts_with("campaign-"))
        .count()
}

async fn assert_no_campaigns(app: &TestApp, key: &str) {
    let campaigns = app.get_ok(key, "/v1/campaigns").await;
    assert_eq!(campaigns["campaigns"], json!([]), "{campaigns}");
    assert_eq!(campaign_events(app).await, 0);
}

async fn create(app: &TestApp, key: &str, body: &Value) -> Value {
    let response = app.post_as(key, "/v1/campaigns", body).await;
    assert_eq!(response.status(), 201);
    json(response).await
}

async fn a_manager_creates_a_campaign_with_a_rendered_sample_and_an_opt_out_warning(
    app: TestApp,
) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let manager = app.key_of_a(&owner, "manager").await;
    let list = upload(&app, &owner, FIRST_LIST).await;
    let created = create(&app, &manager, &campaign_body(&[&list])).await;
    assert_eq!(created["name"], "GOTV weekend");
    assert_eq!(created["status"], "draft");
    assert_eq!(created["script"]["version"], 1);
    assert_eq!(
        created["texting_hours"],
        json!({"start": "09:00", "end": "20:00"})
    );
    assert_eq!(created["list_ids"], json!([list]));
    assert_eq!(created["contacts"], 3);
    assert_eq!(
        created["questions"][0]["answers"],
        json!(["yes", "no", "maybe"])
    );
    assert_eq!(
        created["sample"]["text"],
        "Hi Ana, it's Sam with Rivera. Your polling place is Main St Library."
    );
    assert_eq!(created["sample"]["rendered_with"], "first_contact");
    assert_eq!(created["sample"]["encoding"], "gsm7");
    assert_eq!(created["sample"]["segments"], 1);
    let warnings = created["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("opt-out")),
        "{warnings:?}"
    );

    let id = created["campaign_id"].as_str().unwrap();
    let fetched = app.get_ok(&manager, &format!("/v1/campaigns/{id}")).await;
    assert_eq!(fetched["script"], created["script"]);
    assert_eq!(fetched["contacts"], 3);
    let all = app.get_ok(&manager, "/v1/campaigns").await;
    assert_eq!(all["campaigns"].as_array().unwrap().len(), 1);
    assert_eq!(all["campaigns"][0]["campaign_id"], id);

    // Opt-out language and an emoji: no opt-out warning, but UCS-2 now.
    let mut body = campaign_body(&[]);
    body["initial_message"] = json!("Hi {first_name} 🗳️ Reply STOP to opt out");
    let created = create(&app, &manager, &body).await;
    assert_eq!(created["sample"]["rendered_with"], "placeholder");
    assert_eq!(
        created["sample"]["text"],
        "Hi Alex 🗳️ Reply STOP to opt out"
    );
    assert_eq!(created["sample"]["encoding"], "ucs2");
    assert!(
        !created["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("opt-out")),
        "{}",
        created["warnings"]
    );
    app
}

async fn contacts_are_the_union_of_the_lists_deduplicated_by_phone_first_list_wins(
    app: TestApp,
) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let first = upload(&app, &owner, FIRST_LIST).await;
    let second = upload(&app, &owner, SECOND_LIST).await;
    let mut body = campaign_body(&[&first, &second, &first]);
    // Fields of either list may be used.
    body["initial_message"] =
        json!("Hi {first_name} of ward {ward} at {polling_place}. STOP to end");
    let created = create(&app, &owner, &body).await;
    assert_eq!(created["list_ids"], json!([first, second]));
    // 3 + 2 contacts, Ben's number on both lists.
    assert_eq!(created["contacts"], 4);
    // The first list's fields render; its contact has no ward.
    assert_eq!(
        created["sample"]["text"],
        "Hi Ana of ward  at Main St Library. STOP to end"
    );

    let id = created["campaign_id"].as_str().unwrap().to_owned();
    let db = app.app.database();
    let rows: Vec<(String, uuid::Uuid)> = textbank_store::on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT phone, list_id FROM campaign_contacts WHERE campaign_id = $1 ORDER BY phone",
        )
        .bind(id.parse::<uuid::Uuid>().unwrap())
        .fetch_all(pool)
        .await
        .unwrap()
    });
    let phones: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        phones,
        [
            "+15552010001",
            "+15552010002",
            "+15552010003",
            "+15552010004"
        ]
    );
    assert_eq!(rows[1].1.to_string(), first, "the first list wins");
    assert_eq!(rows[3].1.to_string(), second);
    app
}

async fn bad_templates_are_422_naming_the_problem_and_store_nothing(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let list = upload(&app, &owner, FIRST_LIST).await;
    let cases = [
        ("Hi {frist_name}", "", "unknown field {frist_name}"),
        ("Hi {First_Name}", "", "did you mean {first_name}"),
        ("Hi {ward}", "", "unknown field {ward}"),
        ("Hi {first_name", "", "unclosed '{'"),
        ("Hi first_name}", "", "unmatched '}'"),
        ("   ", "", "initial_message: the message is empty"),
        ("", "", "initial_message: the message is empty"),
        (
            "Hi",
            "See you {soon}",
            "canned_responses[0].body: unknown field {soon}",
        ),
        ("Hi", "", "canned_responses[0].body: the message is empty"),
    ];
    for (message, canned, expected) in cases {
        let mut body = campaign_body(&[&list]);
        body["initial_message"] = json!(message);
        if !canned.is_empty() || expected.contains("canned") {
            body["canned_responses"] = json!([{"title": "Later", "body": canned}]);
        }
        let error = expect_invalid_request(app.post_as(&owner, "/v1/campaigns", &body).await).await;
        assert!(error.contains(expected), "{message:?}: {error}");
    }
    assert_no_campaigns(&app, &owner).await;
    app
}

async fn bad_texting_hours_and_bad_fields_are_422_and_store_nothing(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let list = upload(&app, &owner, FIRST_LIST).await;
    let hours = [
        (
            json!({"start": "9:00", "end": "20:00"}),
            "texting_hours.start",
        ),
        (
            json!({"start": "09:00", "end": "24:00"}),
            "texting_hours.end",
        ),
        (json!({"start": "09:00", "end": "8pm"}), "HH:MM"),
        (
            json!({"start": "20:00", "end": "09:00"}),
            "must start before they end",
        ),
        (
            json!({"start": "09:00", "end": "09:00"}),
            "must start before they end",
        ),
    ];
    for (texting_hours, expected) in hours {
        let mut body = campaign_body(&[&list]);
        body["texting_hours"] = texting_hours.clone();
        let error = expect_invalid_request(app.post_as(&owner, "/v1/campaigns", &body).await).await;
        assert!(error.contains(expected), "{texting_hours}: {error}");
    }
    let mut missing_end = campaign_body(&[&list]);
    missing_end["texting_hours"] = json!({"start": "09:00"});
    expect_invalid_request(app.post_as(&owner, "/v1/campaigns", &missing_end).await).await;

    let mut blank_name = campaign_body(&[&list]);
    blank_name["name"] = json!("  ");
    let error =
        expect_invalid_request(app.post_as(&owner, "/v1/campaigns", &blank_name).await).await;
    assert!(error.contains("name must not be empty"), "{error}");

    let mut bad_question = campaign_body(&[&list]);
    bad_question["questions"] = json!([{"id": "q1", "text": "Vote?", "answers": []}]);
    let error =
        expect_invalid_request(app.post_as(&owner, "/v1/campaigns", &bad_question).await).await;
    assert!(error.contains("questions[0].answers"), "{error}");

    let mut unknown = campaign_body(&[&list]);
    unknown["org_id"] = json!("0190b3c4-7a1e-7000-8000-000000000000");
    let error = expect_invalid_request(app.post_as(&owner, "/v1/campaigns", &unknown).await).await;
    assert!(error.contains("org_id"), "{error}");
    assert_no_campaigns(&app, &owner).await;
    app
}

async fn unknown_malformed_and_other_orgs_lists_are_404_and_store_nothing(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let other = app.create_org("Someone else").await;
    let mine = upload(&app, &owner, FIRST_LIST).await;
    let theirs = upload(&app, &other, FIRST_LIST).await;
    for list in [
        theirs.as_str(),
        "0190b3c4-7a1e-7000-8000-000000000000",
        "not-a-uuid",
    ] {
        let error = expect_not_found(
            app.post_as(&owner, "/v1/campaigns", &campaign_body(&[&mine, list]))
                .await,
        )
        .await;
        assert_eq!(error, "list not found");
    }
    assert_no_campaigns(&app, &owner).await;
    app
}

async fn custom_texting_hours_are_kept_and_shown(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let mut body = campaign_body(&[]);
    body["initial_message"] = json!("Hi {first_name}! Reply STOP to opt out");
    body["texting_hours"] = json!({"start": "08:30", "end": "21:00"});
    let created = create(&app, &owner, &body).await;
    let id = created["campaign_id"].as_str().unwrap();
    let fetched = app.get_ok(&owner, &format!("/v1/campaigns/{id}")).await;
    assert_eq!(
        fetched["texting_hours"],
        json!({"start": "08:30", "end": "21:00"})
    );
    app
}

async fn script_revisions_are_versioned_and_validated(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let list = upload(&app, &owner, FIRST_LIST).await;
    let created = create(&app, &owner, &campaign_body(&[&list])).await;
    let id = created["campaign_id"].as_str().unwrap();
    let path = format!("/v1/campaigns/{id}/script");

    for (message, expected) in [
        ("Hi {nickname}", "unknown field {nickname}"),
        ("Hi {first_name", "unclosed"),
        ("", "the message is empty"),
    ] {
        let error = expect_invalid_request(
            app.put_as(&owner, &path, &json!({"initial_message": message}))
                .await,
        )
        .await;
        assert!(error.contains(expected), "{message:?}: {error}");
    }
    let fetched = app.get_ok(&owner, &format!("/v1/campaigns/{id}")).await;
    assert_eq!(fetched["script"], created["script"], "nothing half-written");

    let revised = app.put_as(&owner, &path, &json!({
            "initial_message": "Hey {first_name}, vote at {polling_place}! Reply STOP to opt out",
            "canned_responses": [{"title": "Thanks", "body": "Thank you, {first_name}!"}],
        }))
    .await;
    assert_eq!(revised.status(), 200);
    let revised = json(revised).await;
    assert_eq!(revised["script"]["version"], 2);
    assert_eq!(
        revised["script"]["canned_responses"],
        json!([{"title": "Thanks", "body": "Thank you, {first_name}!"}])
    );
    assert_eq!(
        revised["sample"]["text"],
        "Hey Ana, vote at Main St Library! Reply STOP to opt out"
    );
    assert_eq!(revised["warnings"], json!([]));
    let fetched = app.get_ok(&owner, &format!("/v1/campaigns/{id}")).await;
    assert_eq!(fetched["script"]["version"], 2);
    assert_eq!(
        fetched["script"]["initial_message"],
        "Hey {first_name}, vote at {polling_place}! Reply STOP to opt out"
    );

    // Every version is kept: messages will name the one they came from.
    let db = app.app.database();
    let versions: Vec<i64> = textbank_store::on_reader!(db, |pool| {
        sqlx::query_scalar(
            "SELECT version FROM campaign_scripts WHERE campaign_id = $1 ORDER BY version",
        )
        .bind(id.parse::<uuid::Uuid>().unwrap())
        .fetch_all(pool)
        .await
        .unwrap()
    });
    assert_eq!(versions, [1, 2]);

    let error = expect_invalid_request(
        app.put_as(&owner, &path, &json!({"initial_message": "Hi", "extra": 1}))
            .await,
    )
    .await;
    assert!(error.contains("extra"), "{error}");
    app
}

async fn the_lifecycle_allows_only_its_transitions_and_answers_409_otherwise(
    app: TestApp,
) -> TestApp {
    let owner = app.create_org("Rivera").await;
    app.use_simulator(&owner).await;
    let manager = app.key_of_a(&owner, "manager").await;
    let list = upload(&app, &owner, FIRST_LIST).await;
    let created = create(&app, &manager, &campaign_body(&[&list])).await;
    let id = created["campaign_id"].as_str().unwrap();
    let step = |action: &str| format!("/v1/campaigns/{id}/{action}");
    let script = format!("/v1/campaigns/{id}/script");
    let new_script = json!({"initial_message": "Hi {first_name}, STOP to opt out"});

    let expect_status = |response: Value, status: &str| {
        assert_eq!(response["status"], status, "{response}");
    };
    let error = expect_conflict(app.post_as(&manager, &step("pause"), &json!({})).await).await;
    assert_eq!(
        error,
        "cannot pause a campaign that is draft; pause needs a campaign that is active"
    );
    expect_conflict(app.post_as(&manager, &step("resume"), &json!({})).await).await;

    let launched = app.post_as(&manager, &step("launch"), &json!({})).await;
    assert_eq!(launched.status(), 200);
    expect_status(json(launched).await, "active");
    let error = expect_conflict(app.post_as(&manager, &step("launch"), &json!({})).await).await;
    assert!(error.contains("that is active"), "{error}");
    let error = expect_conflict(app.put_as(&manager, &script, &new_script).await).await;
    assert!(error.contains("draft or paused"), "{error}");

    expect_status(
        app.post_ok(&manager, &step("pause"), &json!({})).await,
        "paused",
    );
    let revised = app.put_as(&manager, &script, &new_script).await;
    assert_eq!(revised.status(), 200);
    assert_eq!(json(revised).await["script"]["version"], 2);
    expect_conflict(app.post_as(&manager, &step("launch"), &json!({})).await).await;
    expect_status(
        app.post_ok(&manager, &step("resume"), &json!({})).await,
        "active",
    );
    expect_status(
        app.post_ok(&manager, &step("archive"), &json!({})).await,
        "archived",
    );
    for action in ["launch", "pause", "resume", "archive"] {
        let error = expect_conflict(app.post_as(&manager, &step(action), &json!({})).await).await;
        assert!(error.contains("that is archived"), "{action}: {error}");
    }
    expect_conflict(app.put_as(&manager, &script, &new_script).await).await;
    let fetched = app.get_ok(&manager, &format!("/v1/campaigns/{id}")).await;
    assert_eq!(fetched["status"], "archived");
    assert_eq!(fetched["script"]["version"], 2);

    // Archiving works from draft too.
    let draft = create(&app, &manager, &campaign_body(&[&list])).await;
    let draft_id = draft["campaign_id"].as_str().unwrap();
    expect_status(
        app.post_ok(
            &manager,
            &format!("/v1/campaigns/{draft_id}/archive"),
            &json!({}),
        )
        .await,
        "archived",
    );
    app
}

async fn launching_without_a_list_is_a_conflict(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let mut body = campaign_body(&[]);
    body["initial_message"] = json!("Hi {first_name}, reply STOP to opt out");
    let created = create(&app, &owner, &body).await;
    assert_eq!(created["contacts"], 0);
    let id = created["campaign_id"].as_str().unwrap();
    let error = expect_conflict(
        app.post_as(&owner, &format!("/v1/campaigns/{id}/launch"), &json!({}))
            .await,
    )
    .await;
    assert!(error.contains("without a contact list"), "{error}");
    let fetched = app.get_ok(&owner, &format!("/v1/campaigns/{id}")).await;
    assert_eq!(fetched["status"], "draft");
    app
}

async fn texters_and_compliance_read_but_cannot_manage_campaigns(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let texter = app.key_of_a(&owner, "texter").await;
    let compliance = app.key_of_a(&owner, "compliance").await;
    let list = upload(&app, &owner, FIRST_LIST).await;
    for key in [&texter, &compliance] {
        expect_forbidden(
            app.post_as(key, "/v1/campaigns", &campaign_body(&[&list]))
                .await,
        )
        .await;
    }
    assert_no_campaigns(&app, &owner).await;

    let created = create(&app, &owner, &campaign_body(&[&list])).await;
    let id = created["campaign_id"].as_str().unwrap();
    for key in [&texter, &compliance] {
        let all = app.get_ok(key, "/v1/campaigns").await;
        assert_eq!(all["campaigns"].as_array().unwrap().len(), 1);
        let one = app.get_as(key, &format!("/v1/campaigns/{id}")).await;
        assert_eq!(one.status(), 200);
        for action in ["launch", "archive"] {
            expect_forbidden(
                app.post_as(key, &format!("/v1/campaigns/{id}/{action}"), &json!({}))
                    .await,
            )
            .await;
        }
        expect_forbidden(
            app.put_as(
                key,
                &format!("/v1/campaigns/{id}/script"),
                &json!({"initial_message": "Hi"}),
            )
            .await,
        )
        .await;
    }
    assert_untouched_draft(&app, &owner, id).await;
    let unauthenticated = app.get("/v1/campaigns").await;
    assert_eq!(unauthenticated.status(), 401);
    app
}

async fn another_orgs_campaign_answers_404(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let other = app.create_org("Someone else").await;
    let list = upload(&app, &owner, FIRST_LIST).await;
    let created = create(&app, &owner, &campaign_body(&[&list])).await;
    let id = created["campaign_id"].as_str().unwrap();
    let all = app.get_ok(&other, "/v1/campaigns").await;
    assert_eq!(all["campaigns"], json!([]));
    for path in [format!("/v1/campaigns/{id}"), "/v1/campaigns/nope".into()] {
        let error = expect_not_found(app.get_as(&other, &path).await).await;
        assert_eq!(error, "campaign not found");
    }
    for action in ["launch", "pause", "resume", "archive"] {
        expect_not_found(
            app.post_as(&other, &format!("/v1/campaigns/{id}/{action}"), &json!({}))
                .await,
        )
        .await;
    }
    expect_not_found(
        app.put_as(
            &other,
            &format!("/v1/campaigns/{id}/script"),
            &json!({"initial_message": "Hi"}),
        )
        .await,
    )
    .await;
    assert_untouched_draft(&app, &owner, id).await;
    app
}

async fn settings_change_until_the_campaign_is_archived(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    app.use_simulator(&owner).await;
    let list = upload(&app, &owner, FIRST_LIST).await;
    let created = create(&app, &owner, &campaign_body(&[&list])).await;
    let id = created["campaign_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/campaigns/{id}");
    let launched = app
        .post_as(&owner, &format!("{path}/launch"), &json!({}))
        .await;
    assert_eq!(launched.status(), 200);

    // While active: a new name and hours; the batch size is kept.
    let changed = app.patch_as(&owner, &path, &json!({"name": "  GOTV: final weekend ", "texting_hours": {"start": "10:00", "end": "19:30"}}))
    .await;
    assert_eq!(changed.status(), 200);
    let fetched = app.get_ok(&owner, &path).await;
    assert_eq!(fetched["name"], "GOTV: final weekend");
    assert_eq!(
        fetched["texting_hours"],
        json!({"start": "10:00", "end": "19:30"})
    );
    assert_eq!(
        fetched["assignment_batch_size"],
        created["assignment_batch_size"]
    );
    assert_eq!(fetched["status"], "active");
    // The dashboard's overview follows the new name.
    app.eventually(&owner, "/v1/metrics/overview", |overview| {
        overview["campaigns"][0]["name"] == "GOTV: final weekend"
    })
    .await;

    // Bad values change nothing.
    let before = campaign_events(&app).await;
    for bad in [
        json!({"name": "   "}),
        json!({"texting_hours": {"start": "20:00", "end": "09:00"}}),
        json!({"assignment_batch_size": 0}),
        json!({"status": "draft"}),
    ] {
        let response = app.patch_as(&owner, &path, &bad).await;
        expect_invalid_request(response).await;
    }
    assert_eq!(campaign_events(&app).await, before);

    // Who may: managers of this org only.
    let texter = app.member_key(&owner, "t@example.org", "texter").await;
    expect_forbidden(app.patch_as(&texter, &path, &json!({"name": "x"})).await).await;
    let other = app.create_org("Other").await;
    expect_not_found(app.patch_as(&other, &path, &json!({"name": "x"})).await).await;

    // Archived: settled for good.
    let archived = app
        .post_as(&owner, &format!("{path}/archive"), &json!({}))
        .await;
    assert_eq!(archived.status(), 200);
    expect_conflict(
        app.patch_as(&owner, &path, &json!({"assignment_batch_size": 25}))
            .await,
    )
    .await;
    app
}

/// The parts of a campaign a copy takes.
fn copied_parts(campaign: &Value) -> Value {
    json!({
        "initial_message": campaign["script"]["initial_message"],
        "canned_responses": campaign["script"]["canned_responses"],
        "questions": campaign["questions"],
        "texting_hours": campaign["texting_hours"],
        "assignment_batch_size": campaign["assignment_batch_size"],
        "max_contacts_held": campaign["max_contacts_held"],
        "max_replies_waiting": campaign["max_replies_waiting"],
    })
}

async fn a_copy_is_a_new_draft_with_the_script_and_settings_and_lists_only_if_kept(
    app: TestApp,
) -> TestApp {
    let owner = app.create_org("Rivera").await;
    app.use_simulator(&owner).await;
    let (texter_id, _) = app.member_with_key(&owner, "t@example.org", "texter").await;
    let list = upload(&app, &owner, FIRST_LIST).await;
    let mut body = campaign_body(&[&list]);
    body["texting_hours"] = json!({"start": "10:00", "end": "19:30"});
    body["assignment_batch_size"] = json!(25);
    body["max_contacts_held"] = json!(40);
    body["max_replies_waiting"] = json!(2);
    let source = create(&app, &owner, &body).await;
    let id = source["campaign_id"].as_str().unwrap().to_owned();
    let revised = app
        .put_as(
            &owner,
            &format!("/v1/campaigns/{id}/script"),
            &json!({"initial_message": "Hello {first_name}, vote at {polling_place}! STOP to opt out",
                    "canned_responses": [{"title": "Where", "body": "{polling_place}"}]}),
        )
        .await;
    assert_eq!(revised.status(), 200);
    app.post_ok(&owner, &format!("/v1/campaigns/{id}/launch"), &json!({}))
        .await;
    app.post_ok(
        &owner,
        &format!("/v1/campaigns/{id}/assignments"),
        &json!({"texter_id": texter_id, "count": 2}),
    )
    .await;
    let source = app.get_ok(&owner, &format!("/v1/campaigns/{id}")).await;

    // Without its lists.
    let response = app
        .post_as(&owner, &format!("/v1/campaigns/{id}/copy"), &json!({}))
        .await;
    assert_eq!(response.status(), 201);
    let copy = json(response).await;
    let copy_id = copy["campaign_id"].as_str().unwrap().to_owned();
    assert_ne!(copy_id, id);
    assert_eq!(copy["name"], "Copy of GOTV weekend");
    assert_eq!(copy["status"], "draft");
    assert_eq!(copy["script"]["version"], 1);
    assert_eq!(copied_parts(&copy), copied_parts(&source), "{copy}");
    assert_eq!(copy["list_ids"], json!([]));
    assert_eq!(copy["contacts"], 0);
    let created = app
        .events_after(0)
        .await
        .into_iter()
        .rfind(|event| event.event_type == "CampaignCreated")
        .unwrap();
    assert_eq!(
        created.data["copied_from"],
        id.as_str(),
        "{:?}",
        created.data
    );

    // With its lists: the contacts, none of their state.
    let kept = app
        .post_ok(
            &owner,
            &format!("/v1/campaigns/{id}/copy"),
            &json!({"name": "GOTV, round 2", "keep_lists": true}),
        )
        .await;
    let kept_id = kept["campaign_id"].as_str().unwrap();
    assert_eq!(kept["name"], "GOTV, round 2");
    assert_eq!(kept["list_ids"], json!([list]));
    assert_eq!(kept["contacts"], source["contacts"]);
    let assignments = app
        .get_ok(&owner, &format!("/v1/campaigns/{kept_id}/assignments"))
        .await;
    assert_eq!(assignments["texters"], json!([]), "{assignments}");
    assert_eq!(
        assignments["unassigned"], source["contacts"],
        "{assignments}"
    );
    // The source is as it was.
    let after = app.get_ok(&owner, &format!("/v1/campaigns/{id}")).await;
    assert_eq!(after["status"], "active");
    assert_eq!(after["name"], "GOTV weekend");
    app
}

async fn copying_checks_who_asks_the_name_and_the_lists(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let list = upload(&app, &owner, FIRST_LIST).await;
    let source = create(&app, &owner, &campaign_body(&[&list])).await;
    let path = format!(
        "/v1/campaigns/{}/copy",
        source["campaign_id"].as_str().unwrap()
    );
    let before = campaign_events(&app).await;
    let texter = app.member_key(&owner, "t@example.org", "texter").await;
    expect_forbidden(app.post_as(&texter, &path, &json!({})).await).await;
    let other = app.create_org("Someone else").await;
    expect_not_found(app.post_as(&other, &path, &json!({})).await).await;
    expect_not_found(
        app.post_as(&owner, "/v1/campaigns/not-a-campaign/copy", &json!({}))
            .await,
    )
    .await;
    let theirs = upload(&app, &other, FIRST_LIST).await;
    expect_not_found(
        app.post_as(&owner, &path, &json!({"list_ids": [theirs]}))
            .await,
    )
    .await;
    expect_invalid_request(app.post_as(&owner, &path, &json!({"name": " "})).await).await;
    expect_invalid_request(app.post_as(&owner, &path, &json!({"lists": true})).await).await;
    // A list without the script's column cannot take the copy.
    let second = upload(&app, &owner, SECOND_LIST).await;
    let error = expect_invalid_request(
        app.post_as(&owner, &path, &json!({"list_ids": [second]}))
            .await,
    )
    .await;
    assert!(error.contains("polling_place"), "{error}");
    assert_eq!(campaign_events(&app).await, before);
    app
}

/// A list over the inline copy limit: creating the campaign does not wait
/// for its contacts, which the server copies in the background while the
/// campaign shows how far it has got. Launching and assigning wait for the
/// copy (409 `contacts_copying`); once it is done every contact is there,
/// in the campaign and in its metrics, and the campaign launches.
async fn a_campaign_over_a_large_list_answers_at_once_and_launches_once_its_contacts_are_in(
    app: TestApp,
) -> TestApp {
    use std::fmt::Write as _;
    use textbank_projections::contact_copies::INLINE_COPY_LINES;

    let owner = app.create_org("Rivera").await;
    app.use_simulator(&owner).await;
    // The test server takes lists of 500 rows: twelve of them, 6,012 lines.
    let (lists, per_list) = (12, 500);
    let rows = lists * per_list;
    let lines = lists * (per_list + 1);
    assert!(lines as i64 > INLINE_COPY_LINES);
    let mut list_ids = Vec::new();
    for list in 0..lists {
        let mut csv = String::from("first_name,cell\r\n");
        for i in list * per_list..(list + 1) * per_list {
            write!(
                csv,
                "Voter{i},+1555{:03}{:04}\r\n",
                200 + i / 10_000,
                i % 10_000
            )
            .unwrap();
        }
        list_ids.push(upload(&app, &owner, &csv).await);
    }
    let body = json!({
        "name": "Big",
        "initial_message": "Hi {first_name}, reply STOP to opt out",
        "list_ids": list_ids,
    });
    let created = create(&app, &owner, &body).await;
    let id = created["campaign_id"].as_str().unwrap().to_owned();
    let launch = format!("/v1/campaigns/{id}/launch");
    let copying = &created["contacts_copying"];
    let mut launched_early = false;
    if !copying.is_null() {
        // Every list's lines, its header's included.
        assert_eq!(copying["lines_total"], lines, "{created}");
        assert!(
            created["contacts"].as_u64().unwrap() < rows as u64,
            "{created}"
        );
        let response = app.post_as(&owner, &launch, &json!({})).await;
        // The copier may have finished in between.
        if response.status() == 409 {
            let message = crate::helpers::expect_error(response, 409, "contacts_copying").await;
            assert!(message.contains("still being copied"), "{message}");
            assert_untouched_draft(&app, &owner, &id).await;
        } else {
            assert_eq!(response.status(), 200);
            launched_early = true;
        }
    }
    let mut campaign = created.clone();
    for _ in 0..600 {
        campaign = app.get_ok(&owner, &format!("/v1/campaigns/{id}")).await;
        if campaign["contacts_copying"].is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        campaign["contacts_copying"].is_null(),
        "the copy ended: {campaign}"
    );
    assert_eq!(campaign["contacts"], rows, "{campaign}");
    // Launched now, unless the early launch above found the copy done.
    if !launched_early {
        app.post_ok(&owner, &launch, &json!({})).await;
    }
    let (texter, _) = app
        .member_with_key(&owner, "big@example.org", "texter")
        .await;
    let assigned = app
        .post_ok(
            &owner,
            &format!("/v1/campaigns/{id}/assignments"),
            &json!({"texter_id": texter, "count": 10}),
        )
        .await;
    assert_eq!(assigned["assigned"], 10, "{assigned}");
    let position = assigned["position"].as_u64().unwrap();
    let metrics = app
        .get_ok(
            &owner,
            &format!("/v1/campaigns/{id}/metrics?min_position={position}"),
        )
        .await;
    assert_eq!(metrics["contacts"], rows, "{metrics}");
    app
}
