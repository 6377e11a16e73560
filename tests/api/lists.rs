//! Contact-list upload over HTTP: formats, normalization, provenance,
//! rejections, limits, bad files, permissions and tenancy.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{
    TestApp, assert_csv, expect_forbidden, expect_invalid_request, expect_not_found,
    expect_payload_too_large, expect_unsupported_media_type, json, sent,
};

crate::on_both_backends!(
    a_spoke_format_list_imports_with_normalized_phones_zones_and_fields,
    rejected_rows_stream_as_csv_with_line_and_reason,
    files_that_are_not_usable_csv_are_refused_and_nothing_is_stored,
    uploads_over_the_limits_are_413_and_nothing_is_stored,
    provenance_is_required_and_the_body_must_be_csv,
    texters_cannot_upload_and_compliance_reads_but_cannot_upload,
    another_orgs_list_answers_404,
    lists_past_the_column_header_or_field_limits_are_422_naming_the_limit_and_nothing_is_stored,
    a_header_past_its_limits_is_refused_before_the_upload_ends,
    a_header_without_contacts_is_refused_and_leaves_no_list,
    a_quote_never_closed_is_rejected_as_a_malformed_row,
);

const QUERY: &str =
    "name=Precinct%2012&source=voter%20file%202026-10&consent_basis=opted%20in%20at%20events";

/// BOM, CRLF, quoted commas and newlines, messy phones, a duplicate, an
/// invalid and a missing number.
fn messy_csv() -> String {
    [
        "\u{feff}firstName,lastName,cell,zip,external_id,Polling Place",
        "Ana,Ruiz,(555) 201-0001,10001,V1,\"Main St Library, Room 2\"",
        "Ben,\"O'Neil\",555.201.0002,94103,V2,\"Line one\nline two\"",
        "Cy,Lee,+1 555 201 0001,60601,V3,Gym",
        "Di,Kay,12345,30301,V4,Gym",
        "Ed,Moe,,30301,V5,Gym",
        "Flo,Ng,1-555-201-0003,,V6,",
    ]
    .join("\r\n")
        + "\r\n"
}

async fn a_spoke_format_list_imports_with_normalized_phones_zones_and_fields(
    app: TestApp,
) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let csv = messy_csv();
    let response = app.upload(&owner, QUERY, csv.clone()).await;
    assert_eq!(response.status(), 201);
    let summary = json(response).await;
    assert_eq!(summary["rows"], 6);
    assert_eq!(summary["imported"], 3);
    assert_eq!(
        summary["rejected"],
        json!({"duplicate": 1, "invalid_phone": 1, "malformed": 0, "missing_phone": 1, "opted_out": 0})
    );
    let list_id = summary["list_id"].as_str().unwrap();

    let list = app.get_ok(&owner, &format!("/v1/lists/{list_id}")).await;
    assert_eq!(list["status"], "complete");
    assert_eq!(list["name"], "Precinct 12");
    assert_eq!(list["source"], "voter file 2026-10");
    assert_eq!(list["consent_basis"], "opted in at events");
    assert_eq!(
        list["file_sha256"],
        hex::encode(Sha256::digest(csv.as_bytes()))
    );
    assert_eq!(list["file_bytes"], csv.len());
    assert_eq!(list["phone_column"], "cell");
    assert_eq!(list["custom_fields"], json!(["polling_place"]));
    assert_eq!(list["uploaded_by"]["kind"], "api_key");
    assert_eq!(list["imported"], 3);

    let contacts = app.app.database();
    let rows: Vec<(String, String, Option<String>, String, String)> =
        textbank_store::on_reader!(contacts, |pool| {
            sqlx::query_as(
                "SELECT phone, first_name, time_zone, zone, fields FROM contacts ORDER BY line",
            )
            .fetch_all(pool)
            .await
            .unwrap()
        });
    let phones: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(phones, ["+15552010001", "+15552010002", "+15552010003"]);
    assert_eq!(rows[0].1, "Ana");
    // New York by ZIP 10001; San Francisco by ZIP 94103.
    assert_eq!(rows[0].2.as_deref(), Some("America/New_York"));
    assert!(rows[0].3.contains("\"zip\""), "{}", rows[0].3);
    assert_eq!(rows[1].2.as_deref(), Some("America/Los_Angeles"));
    let fields: Value = serde_json::from_str(&rows[1].4).unwrap();
    assert_eq!(fields["polling_place"], "Line one\nline two");
    let fields: Value = serde_json::from_str(&rows[0].4).unwrap();
    assert_eq!(fields["polling_place"], "Main St Library, Room 2");

    let lists = app.get_ok(&owner, "/v1/lists").await;
    assert_eq!(lists["lists"].as_array().unwrap().len(), 1);
    app
}

async fn rejected_rows_stream_as_csv_with_line_and_reason(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let summary = json(app.upload(&owner, QUERY, messy_csv()).await).await;
    let list_id = summary["list_id"].as_str().unwrap();
    let response = app
        .get_as(&owner, &format!("/v1/lists/{list_id}/rejections"))
        .await;
    assert_csv(&response);
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "line,reason,phone,detail");
    // Rows are numbered as a spreadsheet shows them: Ben's quoted newline
    // does not make Cy row 5.
    assert!(
        lines[1].starts_with("4,duplicate,+1 555 201 0001,"),
        "{text}"
    );
    assert!(lines[2].starts_with("5,invalid_phone,12345,"), "{text}");
    assert!(lines[3].starts_with("6,missing_phone,,"), "{text}");
    assert_eq!(lines.len(), 4);
    app
}

async fn files_that_are_not_usable_csv_are_refused_and_nothing_is_stored(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"name,email\nAna,ana@example.org\n".to_vec(),
            "no phone column",
        ),
        (b"".to_vec(), "empty"),
        (
            b"cell,name\n5552010001,Ana\n5552010002,Ben,extra,fields\n".to_vec(),
            "line 3 has 4 fields",
        ),
        (
            b"cell,name\n5552010001,Jos\xe9\n".to_vec(),
            "line 2 is not UTF-8",
        ),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0".to_vec(), "not"),
        (
            b"cell,Ward,ward\n5552010001,1,2\n".to_vec(),
            "two columns named",
        ),
    ];
    for (body, expected) in cases {
        let message = expect_invalid_request(app.upload(&owner, QUERY, body).await).await;
        assert!(
            message.contains(expected),
            "{message:?} should say {expected:?}"
        );
    }
    let lists = app.get_ok(&owner, "/v1/lists").await;
    assert!(lists["lists"].as_array().unwrap().is_empty());
    assert_eq!(
        app.app.store().head_position().await.unwrap(),
        2,
        "only the org's own events"
    );
    app
}

async fn uploads_over_the_limits_are_413_and_nothing_is_stored(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let head = app.app.store().head_position().await.unwrap();
    // The test server allows 500 rows and 64 KiB.
    let many_rows = std::iter::once("cell".to_owned())
        .chain((0..501).map(|i| format!("555201{i:04}")))
        .collect::<Vec<_>>()
        .join("\n");
    expect_payload_too_large(app.upload(&owner, QUERY, many_rows).await).await;
    let big = std::iter::once("cell,notes".to_owned())
        .chain((0..400).map(|i| format!("555201{i:04},{}", "x".repeat(200))))
        .collect::<Vec<_>>()
        .join("\n");
    let message = expect_payload_too_large(app.upload(&owner, QUERY, big).await).await;
    assert!(message.contains("nothing was stored"));
    assert_eq!(app.app.store().head_position().await.unwrap(), head);
    // Exactly at the row limit is fine.
    let at_limit = std::iter::once("cell".to_owned())
        .chain((0..500).map(|i| format!("555201{i:04}")))
        .collect::<Vec<_>>()
        .join("\n");
    let summary = json(app.upload(&owner, QUERY, at_limit).await).await;
    assert_eq!(summary["imported"], 500);
    app
}

async fn provenance_is_required_and_the_body_must_be_csv(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    for (query, field) in [
        ("source=a&consent_basis=b", "name"),
        ("name=a&consent_basis=b", "source"),
        ("name=a&source=b", "consent_basis"),
        ("name=a&source=%20&consent_basis=b", "source"),
    ] {
        let message = expect_invalid_request(app.upload(&owner, query, messy_csv()).await).await;
        assert!(message.contains(field), "{message:?} should name {field}");
    }
    let as_json = sent(
        app.client
            .post(app.url(&format!("/v1/lists?{QUERY}")))
            .bearer_auth(&owner)
            .json(&json!({"cell": "5552010001"})),
    )
    .await;
    expect_unsupported_media_type(as_json).await;
    assert!(
        app.get_ok(&owner, "/v1/lists").await["lists"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    app
}

async fn texters_cannot_upload_and_compliance_reads_but_cannot_upload(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let texter = app.member_key(&owner, "t@example.org", "texter").await;
    let compliance = app.member_key(&owner, "c@example.org", "compliance").await;
    let manager = app.member_key(&owner, "m@example.org", "manager").await;
    expect_forbidden(app.upload(&texter, QUERY, messy_csv()).await).await;
    expect_forbidden(app.upload(&compliance, QUERY, messy_csv()).await).await;
    assert_eq!(app.upload(&manager, QUERY, messy_csv()).await.status(), 201);
    assert_eq!(app.get_as(&compliance, "/v1/lists").await.status(), 200);
    expect_forbidden(app.get_as(&texter, "/v1/lists").await).await;
    app
}

async fn another_orgs_list_answers_404(app: TestApp) -> TestApp {
    let alpha = app.create_org("Alpha").await;
    let beta = app.create_org("Beta").await;
    let summary = json(app.upload(&beta, QUERY, messy_csv()).await).await;
    let list_id = summary["list_id"].as_str().unwrap();
    let cross = expect_not_found(app.get_as(&alpha, &format!("/v1/lists/{list_id}")).await).await;
    let missing = expect_not_found(
        app.get_as(&alpha, &format!("/v1/lists/{}", uuid::Uuid::now_v7()))
            .await,
    )
    .await;
    assert_eq!(cross, missing);
    expect_not_found(
        app.get_as(&alpha, &format!("/v1/lists/{list_id}/rejections"))
            .await,
    )
    .await;
    expect_not_found(app.get_as(&alpha, "/v1/lists/not-a-list").await).await;
    assert!(
        app.get_ok(&alpha, "/v1/lists").await["lists"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    app
}

async fn lists_past_the_column_header_or_field_limits_are_422_naming_the_limit_and_nothing_is_stored(
    app: TestApp,
) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let head = app.app.store().head_position().await.unwrap();
    // The defaults: 200 columns, a 16 KiB header, 1 KiB per field.
    let wide_header = (0..201).map(|i| format!("c{i}")).collect::<Vec<_>>();
    let wide_row = std::iter::repeat_n("x", 201).collect::<Vec<_>>();
    let cases = [
        (
            format!("cell,{}\n5552010001\n", wide_header[1..].join(",")),
            "too_many_columns",
            200,
        ),
        (
            format!("cell,name\n5552010001,{}\n", wide_row.join(",")),
            "too_many_columns",
            200,
        ),
        (
            format!("cell,{}\n5552010001\n", long_names(150)),
            "header_too_long",
            16 * 1024,
        ),
        (
            format!("cell,notes\n5552010001,\"{}\"\n", "x".repeat(1025)),
            "field_too_long",
            1024,
        ),
    ];
    for (csv, code, limit) in cases {
        let response = app.upload(&owner, QUERY, csv).await;
        assert_eq!(response.status(), 422, "{code}");
        let body = json(response).await;
        assert_eq!(body["error"]["code"], code, "{body}");
        assert_eq!(body["error"]["limit"], limit, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(&limit.to_string()), "{message}");
    }
    // A field of exactly 1 KiB is fine.
    let at_limit = format!("cell,notes\n5552010001,{}\n", "x".repeat(1024));
    assert_eq!(app.upload(&owner, QUERY, at_limit).await.status(), 201);
    let lists = app.get_ok(&owner, "/v1/lists").await;
    assert_eq!(lists["lists"].as_array().unwrap().len(), 1, "{lists}");
    let events = app.app.store().head_position().await.unwrap() - head;
    assert!(events <= 4, "only the accepted list's events: {events}");
    app
}

/// `count` column names of 120 bytes each (under the field limit).
fn long_names(count: usize) -> String {
    (0..count)
        .map(|i| format!("{i:0>120}"))
        .collect::<Vec<_>>()
        .join(",")
}

async fn a_header_past_its_limits_is_refused_before_the_upload_ends(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let long_header = format!("cell,{}", long_names(170));
    let wide_header = format!(
        "cell,{}\r\n",
        (0..300)
            .map(|i| format!("c{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    for (start, code) in [
        (long_header, "header_too_long"),
        (wide_header, "too_many_columns"),
    ] {
        // The request promises 10 MB and sends only the start: the answer
        // must come without the rest.
        let request = format!(
            "POST /v1/lists?{QUERY} HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {owner}\r\n\
             content-type: text/csv\r\ncontent-length: 10000000\r\n\r\n{start}"
        );
        let response = app.raw(request.as_bytes()).await;
        assert_eq!(response.status, 422, "{response:?}");
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
    }
    let lists = app.get_ok(&owner, "/v1/lists").await;
    assert!(lists["lists"].as_array().unwrap().is_empty());
    app
}

async fn a_header_without_contacts_is_refused_and_leaves_no_list(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let head = app.app.store().head_position().await.unwrap();
    for csv in ["first_name,phone\n", "first_name,phone\r\n\r\n\n", "cell"] {
        let message = expect_invalid_request(app.upload(&owner, QUERY, csv).await).await;
        assert!(message.contains("no contacts"), "{message}");
    }
    let lists = app.get_ok(&owner, "/v1/lists").await;
    assert!(lists["lists"].as_array().unwrap().is_empty());
    assert_eq!(app.app.store().head_position().await.unwrap(), head);
    app
}

async fn a_quote_never_closed_is_rejected_as_a_malformed_row(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let csv = "cell,name\n5552010001,Ana\n5552010002,\"Ben\n5552010003,Cy\n";
    let response = app.upload(&owner, QUERY, csv).await;
    assert_eq!(response.status(), 201);
    let summary = json(response).await;
    assert_eq!(summary["rows"], 2);
    assert_eq!(summary["imported"], 1);
    assert_eq!(summary["rejected"]["malformed"], 1, "{summary}");
    assert_eq!(summary["rejected"]["missing_phone"], 0, "{summary}");
    let list_id = summary["list_id"].as_str().unwrap();
    let rejections = app.rejections(&owner, list_id).await;
    assert!(
        rejections
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("3,malformed,5552010002,"),
        "{rejections}"
    );
    // A header that never closes its quote is no header at all.
    let message = expect_invalid_request(
        app.upload(&owner, QUERY, "cell,\"name\n5552010001,Ana\n")
            .await,
    )
    .await;
    assert!(message.contains("never closed"), "{message}");
    app
}
