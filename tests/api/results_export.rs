//! The campaign results export: one row per contact with its texter, the
//! initial message, replies, opt-outs and survey answers, as a CRM loads it
//! back; another organization's campaign is 404 and a texter may not read
//! it.

use crate::helpers::{
    TestApp, click_tokens, csv_download, expect_forbidden, expect_not_found, json,
};

crate::on_both_backends!(mod sending, spawn = spawn_send_app;
    the_results_export_has_a_row_per_contact_with_what_became_of_it,
);

async fn the_results_export_has_a_row_per_contact_with_what_became_of_it(app: TestApp) -> TestApp {
    let fixture = app.send_fixture(3).await;
    let tokens = click_tokens(&app.queue(&fixture, 2).await);
    let first = json(app.click(&fixture.texter, &tokens[0], "r-0").await).await;
    assert_eq!(
        app.click(&fixture.texter, &tokens[1], "r-1").await.status(),
        202
    );
    let answered = app
        .post_as(
            &fixture.texter,
            &format!(
                "/v1/conversations/{}/answers",
                first["conversation_id"].as_str().unwrap()
            ),
            &serde_json::json!({"question_id": "support", "answer": "yes"}),
        )
        .await;
    assert_eq!(answered.status(), 201);
    let stop = app
        .voter_texts(&fixture.org_id, "+15552010001", "STOP")
        .await;
    assert!(stop.status().is_success());

    let path = format!("/v1/campaigns/{}/export.csv", fixture.campaign_id);
    let (header, rows) = csv_download(app.get_as(&fixture.owner, &path).await).await;
    assert_eq!(
        header,
        [
            "phone",
            "first_name",
            "last_name",
            "zip",
            "external_id",
            "list_id",
            "texter_id",
            "texter_name",
            "conversation_id",
            "initial_clicked_at",
            "delivery_status",
            "error_code",
            "replied",
            "opted_out",
            "opted_out_at",
            "support",
        ]
    );
    let column = |row: usize, name: &str| {
        let at = header.iter().position(|column| column == name).unwrap();
        rows[row][at].to_owned()
    };
    assert_eq!(rows.len(), 3);
    assert_eq!(
        (0..3).map(|row| column(row, "phone")).collect::<Vec<_>>(),
        ["+15552010000", "+15552010001", "+15552010002"]
    );
    assert_eq!(column(0, "first_name"), "Voter0");
    assert_eq!(column(0, "texter_id"), fixture.texter_id);
    assert_eq!(
        column(0, "conversation_id"),
        first["conversation_id"].as_str().unwrap()
    );
    assert!(!column(0, "initial_clicked_at").is_empty());
    assert_eq!(column(0, "support"), "yes");
    assert_eq!(column(0, "opted_out"), "false");
    assert_eq!(column(1, "replied"), "true");
    assert_eq!(column(1, "opted_out"), "true");
    assert!(!column(1, "opted_out_at").is_empty());
    // Assigned but never texted.
    assert_eq!(column(2, "conversation_id"), "");
    assert_eq!(column(2, "replied"), "false");

    expect_forbidden(app.get_as(&fixture.texter, &path).await).await;
    let stranger = app.create_org("Stranger").await;
    expect_not_found(app.get_as(&stranger, &path).await).await;
    app
}
