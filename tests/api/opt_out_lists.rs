//! An organization's own opt-out list: importing one (CSV or JSON) records
//! every number on its recipient stream, all or nothing; exporting lists
//! exactly the org's opted-out numbers, however they opted out.

use serde_json::json;

use crate::helpers::{
    TestApp, assert_csv, expect_forbidden, expect_invalid_request, expect_payload_too_large,
    expect_unsupported_media_type, json, sent,
};

// The send app: a quiet simulator (no random replies) for the STOP test.
crate::on_both_backends!(
    spawn = spawn_send_app;
    csv_and_json_imports_record_each_number_once_and_reimporting_changes_nothing,
    the_export_lists_exactly_the_orgs_opt_outs_including_stop_replies,
    a_bad_number_anywhere_rejects_the_whole_import_and_stores_nothing,
    unusable_uploads_are_refused_and_store_nothing,
    imports_over_the_limits_are_413_and_nothing_is_stored,
    only_owners_and_admins_may_import_or_export_opt_outs,
    imported_numbers_are_rejected_by_later_list_uploads,
);

const LIST_QUERY: &str = "name=Precinct%2012&source=voter%20file&consent_basis=opted%20in";

async fn post_body(
    app: &TestApp,
    key: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    sent(
        app.client
            .post(app.url("/v1/opt-outs"))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body),
    )
    .await
}

async fn import_csv(app: &TestApp, key: &str, csv: impl Into<reqwest::Body>) -> reqwest::Response {
    post_body(app, key, "text/csv", csv).await
}

async fn summary(response: reqwest::Response) -> (u64, u64, u64) {
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    (
        body["imported"].as_u64().expect("imported"),
        body["already_opted_out"]
            .as_u64()
            .expect("already_opted_out"),
        body["total"].as_u64().expect("total"),
    )
}

/// The exported CSV's data rows as (phone, source), after checking the
/// headers and the header row.
async fn exported(app: &TestApp, key: &str) -> Vec<(String, String)> {
    let response = app.get_as(key, "/v1/opt-outs").await;
    assert_csv(&response);
    let headers = response.headers().clone();
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"opt-outs.csv\""
    );
    let text = response.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("phone,source,opted_out_at"));
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 3, "{line}");
            assert!(
                fields[2].parse::<chrono::DateTime<chrono::Utc>>().is_ok(),
                "{line}"
            );
            (fields[0].to_owned(), fields[1].to_owned())
        })
        .collect()
}

fn phones(rows: &[(String, String)]) -> Vec<&str> {
    rows.iter().map(|(phone, _)| phone.as_str()).collect()
}

async fn csv_and_json_imports_record_each_number_once_and_reimporting_changes_nothing(
    app: TestApp,
) -> TestApp {
    let owner = app.create_org("Rivera").await;
    // A BOM, a spreadsheet's column name, messy formats and a repeat.
    let csv = "\u{feff}Name,Cell Phone\r\nAna,(555) 201-0001\r\nBen,555.201.0002\r\n\
               \"Lee, Cy\",+1 555 201 0003\r\nAna again,5552010001\r\n";
    assert_eq!(
        summary(import_csv(&app, &owner, csv).await).await,
        (3, 0, 3)
    );

    let body = json!({"phones": ["+15552010003", "555-201-0004", "(555) 201-0004"]});
    assert_eq!(
        summary(app.post_as(&owner, "/v1/opt-outs", &body).await).await,
        (1, 1, 2)
    );

    // The same list again writes nothing at all.
    let head = app.app.store().head_position().await.unwrap();
    assert_eq!(
        summary(import_csv(&app, &owner, csv).await).await,
        (0, 3, 3)
    );
    assert_eq!(app.app.store().head_position().await.unwrap(), head);

    let rows = exported(&app, &owner).await;
    assert_eq!(
        phones(&rows),
        [
            "+15552010001",
            "+15552010002",
            "+15552010003",
            "+15552010004"
        ]
    );
    assert!(
        rows.iter().all(|(_, source)| source == "import"),
        "{rows:?}"
    );

    let listed = app.get_ok(&owner, "/v1/opt-outs?format=json").await;
    let listed = listed["opt_outs"].as_array().expect("opt_outs");
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[0]["phone"], "+15552010001");
    assert_eq!(listed[0]["source"], "import");
    assert!(listed[0]["opted_out_at"].is_string());
    app
}

async fn the_export_lists_exactly_the_orgs_opt_outs_including_stop_replies(
    app: TestApp,
) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let org_id = app.get_ok(&owner, "/v1/me").await["org_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.put_as(&owner, "/v1/carrier", &json!({"carrier": "sim"}))
            .await
            .status(),
        200
    );
    // A voter's STOP, recorded by the inbound webhook rather than an import.
    assert_eq!(
        app.voter_texts(&org_id, "+15552019999", "STOP")
            .await
            .status(),
        200
    );
    assert_eq!(
        summary(import_csv(&app, &owner, "phone\n5552010001\n").await).await,
        (1, 0, 1)
    );
    let rows = exported(&app, &owner).await;
    assert_eq!(
        rows,
        [
            ("+15552010001".to_owned(), "import".to_owned()),
            ("+15552019999".to_owned(), "keyword_reply".to_owned()),
        ]
    );

    // Another org sees none of it, and its own list stays its own.
    let other = app.create_org("Other").await;
    assert!(exported(&app, &other).await.is_empty());
    let empty = app.get_ok(&other, "/v1/opt-outs?format=json").await;
    assert_eq!(empty, json!({"opt_outs": []}));
    assert_eq!(
        summary(import_csv(&app, &other, "phone\n5552017777\n").await).await,
        (1, 0, 1)
    );
    assert_eq!(phones(&exported(&app, &other).await), ["+15552017777"]);
    assert_eq!(exported(&app, &owner).await, rows);

    expect_invalid_request(app.get_as(&owner, "/v1/opt-outs?format=xml").await).await;
    app
}

async fn a_bad_number_anywhere_rejects_the_whole_import_and_stores_nothing(
    app: TestApp,
) -> TestApp {
    let owner = app.create_org("Rivera").await;
    assert_eq!(
        summary(import_csv(&app, &owner, "phone\n5552010001\n").await).await,
        (1, 0, 1)
    );
    let before = exported(&app, &owner).await;
    let head = app.app.store().head_position().await.unwrap();

    // One bad number at the very end, after good ones.
    let numbers: String = (2..50).map(|i| format!("555201{i:04}\n")).collect();
    let csv = format!("phone\n{numbers}call me maybe\n");
    let message = expect_invalid_request(import_csv(&app, &owner, csv).await).await;
    for part in ["line 50", "call me maybe", "nothing was stored"] {
        assert!(message.contains(part), "{part}: {message}");
    }

    // Many bad rows: the first ten are named, the rest counted.
    let bad: String = (0..12).map(|i| format!("12{i},Bad\n")).collect();
    let csv = format!("phone,name\n5552010002,Ana\n{bad},No number\n");
    let message = expect_invalid_request(import_csv(&app, &owner, csv).await).await;
    assert!(message.starts_with("13 entries"), "{message}");
    assert!(message.contains("line 3: \"120\""), "{message}");
    assert!(message.contains("line 12: \"129\""), "{message}");
    assert!(!message.contains("\"1210\""), "{message}");
    assert!(message.contains("(and 3 more)"), "{message}");

    let body = json!({"phones": ["5552010003", "not a phone"]});
    let message = expect_invalid_request(app.post_as(&owner, "/v1/opt-outs", &body).await).await;
    assert!(message.contains("phones[1]"), "{message}");

    assert_eq!(app.app.store().head_position().await.unwrap(), head);
    assert_eq!(exported(&app, &owner).await, before);
    app
}

async fn unusable_uploads_are_refused_and_store_nothing(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let head = app.app.store().head_position().await.unwrap();
    for (body, why) in [
        ("", "empty"),
        ("phone\n", "no numbers"),
        ("name,email\nAna,ana@example.org\n", "phone column"),
    ] {
        let message = expect_invalid_request(import_csv(&app, &owner, body).await).await;
        assert!(message.contains(why), "{why}: {message}");
    }
    expect_invalid_request(import_csv(&app, &owner, b"phone\n\xff\xfe5552010001\n".to_vec()).await)
        .await;
    for body in [
        json!({"phones": []}),
        json!({"phone": ["5552010001"]}),
        json!({"phones": [5552010001u64]}),
    ] {
        expect_invalid_request(app.post_as(&owner, "/v1/opt-outs", &body).await).await;
    }
    expect_invalid_request(post_body(&app, &owner, "application/json", "{\"phones\": [").await)
        .await;
    for content_type in ["application/xml", "multipart/form-data"] {
        expect_unsupported_media_type(
            post_body(&app, &owner, content_type, "phone\n5552010001\n").await,
        )
        .await;
    }
    let no_type = sent(
        app.client
            .post(app.url("/v1/opt-outs"))
            .bearer_auth(&owner)
            .body("phone\n5552010001\n"),
    )
    .await;
    expect_unsupported_media_type(no_type).await;
    assert_eq!(app.app.store().head_position().await.unwrap(), head);
    app
}

async fn imports_over_the_limits_are_413_and_nothing_is_stored(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let head = app.app.store().head_position().await.unwrap();
    let max = textbank_app::MAX_OPT_OUT_NUMBERS;

    let rows = |count: usize| {
        std::iter::once("phone".to_owned())
            .chain((0..count).map(|i| format!("555{:07}", 2_000_000 + i)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let message = expect_payload_too_large(import_csv(&app, &owner, rows(max + 1)).await).await;
    assert!(message.contains("nothing was stored"), "{message}");

    let phones: Vec<String> = (0..=max)
        .map(|i| format!("555{:07}", 2_000_000 + i))
        .collect();
    expect_payload_too_large(
        app.post_as(&owner, "/v1/opt-outs", &json!({"phones": phones}))
            .await,
    )
    .await;

    // Just over 10 MB, in few rows, so the byte limit is what trips.
    let limit = usize::try_from(textbank_app::MAX_OPT_OUT_BYTES).unwrap();
    let big = format!("phone,notes\n5552010001,{}\n", "x".repeat(limit));
    let message = expect_payload_too_large(import_csv(&app, &owner, big).await).await;
    assert!(message.contains("nothing was stored"), "{message}");

    assert_eq!(app.app.store().head_position().await.unwrap(), head);
    assert!(exported(&app, &owner).await.is_empty());
    app
}

async fn only_owners_and_admins_may_import_or_export_opt_outs(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let csv = "phone\n5552010001\n";
    for (role, email) in [
        ("texter", "t@example.org"),
        ("manager", "m@example.org"),
        ("compliance", "c@example.org"),
    ] {
        let key = app.member_key(&owner, email, role).await;
        expect_forbidden(import_csv(&app, &key, csv).await).await;
        expect_forbidden(app.get_as(&key, "/v1/opt-outs").await).await;
    }
    assert!(exported(&app, &owner).await.is_empty());

    let admin = app.member_key(&owner, "a@example.org", "admin").await;
    assert_eq!(
        summary(import_csv(&app, &admin, csv).await).await,
        (1, 0, 1)
    );
    assert_eq!(phones(&exported(&app, &admin).await), ["+15552010001"]);

    let unauthenticated = app.get("/v1/opt-outs").await;
    assert_eq!(unauthenticated.status(), 401);
    app
}

async fn imported_numbers_are_rejected_by_later_list_uploads(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    assert_eq!(
        summary(import_csv(&app, &owner, "mobile\n5552010002\n").await).await,
        (1, 0, 1)
    );
    let csv = "cell,first_name\n5552010001,Ana\n5552010002,Ben\n5552010003,Cy\n";
    let list = app.upload(&owner, LIST_QUERY, csv).await;
    assert_eq!(list.status(), 201);
    let list = json(list).await;
    assert_eq!(list["imported"], 2, "{list}");
    assert_eq!(list["rejected"]["opted_out"], 1, "{list}");
    app
}
