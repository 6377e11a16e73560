//! The compliance audit end to end: a message's row shows the human click
//! that sent it (who, which key, when shown, clicked and received, from
//! where, the hours check and the list's provenance) and what the carrier
//! said; its trail is every event with positions and hashes; a phone's
//! history, refused attempts, the CSV export, chain verification and a
//! texter's cadence; roles, other orgs and bad parameters.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use textbank_app::App;
use textbank_domain::message::{DeliveryStatus, MessageKind, body_hash};
use textbank_domain::phone::PhoneNumber;
use textbank_domain::recipient::{self, RecipientEvent};
use textbank_domain::{Actor, CampaignId, DomainEvent, EventMetadata, MemberId, MessageId, OrgId};
use textbank_store::{ExpectedVersion, NewEvent};

use crate::helpers::{
    TestApp, csv_download, expect_error, expect_forbidden, expect_invalid_request,
    expect_not_found, sent, success_json as json, weekday_afternoon,
};

crate::on_both_backends!(spawn = spawn_send_app;
    a_sent_message_shows_the_human_click_its_evidence_and_its_delivery,
    a_message_trail_lists_every_event_with_positions_and_hashes,
    a_phone_history_shows_the_list_upload_messages_both_ways_and_the_stop,
    refused_attempts_are_counted_by_reason_and_paged,
    the_csv_export_has_the_same_rows_as_the_search,
    verification_finds_a_clean_chain_and_then_a_tampered_event,
    a_too_fast_and_regular_texter_is_flagged_and_a_human_one_is_not,
    only_owners_admins_and_compliance_read_the_audit,
    another_orgs_ids_are_not_found,
    bad_parameters_are_refused_with_a_clear_error,
    rebuilding_the_audit_beside_itself_gives_the_same_rows,
    a_report_before_its_submission_still_counts_for_the_message,
    a_click_shows_who_minted_the_key_behind_it,
);

fn phone(i: usize) -> String {
    format!("+1555201{i:04}")
}

/// A phone as a query parameter (`+` would read as a space).
fn query_phone(i: usize) -> String {
    phone(i).replace('+', "%2B")
}

/// An org ready to text: a simulated carrier, a texter, a compliance
/// officer, a list with New York ZIP codes and a launched campaign over it.
struct Fixture {
    org_id: String,
    owner: String,
    texter_id: String,
    texter: String,
    compliance: String,
    list_id: String,
    campaign_id: String,
}

async fn fixture(app: &TestApp, contacts: usize) -> Fixture {
    let created = app.app.create_org("Audit Org").await.expect("org");
    let owner = created.owner_key;
    let carrier = app
        .put_as(&owner, "/v1/carrier", &json!({"carrier": "sim"}))
        .await;
    assert_eq!(carrier.status(), 200);
    let (texter_id, texter) = app
        .member_with_key(&owner, "texter@example.org", "texter")
        .await;
    let compliance = app.key_of_a(&owner, "compliance").await;
    let mut csv = String::from("first_name,last_name,cell,zip\r\n");
    for i in 0..contacts {
        csv.push_str(&format!("Voter{i},Lee,555-201-{i:04},10001\r\n"));
    }
    let list = json(
        app.upload(
            &owner,
            "name=Precinct%207&source=voter%20file%202026&consent_basis=opted%20in%20online",
            csv,
        )
        .await,
    )
    .await;
    let list_id = list["list_id"].as_str().unwrap().to_owned();
    let campaign = app
        .post_ok(
            &owner,
            "/v1/campaigns",
            &json!({
                "name": "GOTV",
                "initial_message": "Hi {first_name}, will you vote? Reply STOP to opt out",
                "list_ids": [list_id],
            }),
        )
        .await;
    let campaign_id = campaign["campaign_id"].as_str().unwrap().to_owned();
    app.post_ok(
        &owner,
        &format!("/v1/campaigns/{campaign_id}/launch"),
        &json!({}),
    )
    .await;
    app.post_ok(
        &owner,
        &format!("/v1/campaigns/{campaign_id}/assignments"),
        &json!({"texter_id": texter_id, "count": contacts}),
    )
    .await;
    Fixture {
        org_id: created.org_id.to_string(),
        owner,
        texter_id,
        texter,
        compliance,
        list_id,
        campaign_id,
    }
}

/// The texter's queue, as presented now.
async fn queue(app: &TestApp, fx: &Fixture) -> Vec<Value> {
    let queue = app
        .get_ok(
            &fx.texter,
            &format!("/v1/texter/queue?campaign_id={}&limit=10", fx.campaign_id),
        )
        .await;
    queue["messages"].as_array().unwrap().clone()
}

/// Clicks Send on a queued message with a given user agent.
async fn click(
    app: &TestApp,
    fx: &Fixture,
    token: &str,
    key: &str,
    agent: &str,
) -> reqwest::Response {
    sent(
        app.client
            .post(app.url("/v1/messages"))
            .bearer_auth(&fx.texter)
            .header("idempotency-key", key)
            .header("user-agent", agent)
            .json(&json!({"click_token": token, "clicked_at": weekday_afternoon()})),
    )
    .await
}

/// Sends the first queued message 1.8 s after it was shown; returns the
/// queued message and the click's answer.
async fn send_first(app: &TestApp, fx: &Fixture, agent: &str) -> (Value, Value) {
    let queued = queue(app, fx).await.remove(0);
    app.clock
        .as_ref()
        .unwrap()
        .advance(chrono::Duration::milliseconds(1_800));
    let sent = click(
        app,
        fx,
        queued["click_token"].as_str().unwrap(),
        &format!("k-{}", queued["phone"]),
        agent,
    )
    .await;
    assert_eq!(sent.status(), 202);
    (queued, json(sent).await)
}

/// The audit's rows for one phone, once `done` holds for them.
async fn rows_for(
    app: &TestApp,
    fx: &Fixture,
    i: usize,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let page = app
        .eventually(
            &fx.compliance,
            &format!("/v1/audit/messages?phone={}", query_phone(i)),
            |page| page["messages"].as_array().is_some_and(|rows| done(rows)),
        )
        .await;
    page["messages"].as_array().unwrap().clone()
}

fn delivered(rows: &[Value]) -> bool {
    rows.first()
        .is_some_and(|row| row["delivery_status"] == "delivered")
}

async fn a_sent_message_shows_the_human_click_its_evidence_and_its_delivery(
    app: TestApp,
) -> TestApp {
    let fx = fixture(&app, 2).await;
    let (queued, sent) = send_first(&app, &fx, "AuditTest/1.0 (volunteer laptop)").await;
    let me = app.get_ok(&fx.texter, "/v1/me").await;

    // Read your own write: the click is there at once with min_position.
    let page = app
        .get_ok(
            &fx.compliance,
            &format!(
                "/v1/audit/messages?phone={}&min_position={}",
                query_phone(0),
                sent["position"]
            ),
        )
        .await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 1, "{page}");

    let rows = rows_for(&app, &fx, 0, delivered).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["message_id"], sent["message_id"]);
    assert_eq!(row["conversation_id"], sent["conversation_id"]);
    assert_eq!(row["direction"], "outbound");
    assert_eq!(row["kind"], "initial");
    assert_eq!(row["origin"], "texter_click");
    assert_eq!(row["note"], Value::Null);
    assert_eq!(row["phone"], phone(0));
    assert_eq!(row["to_number"], phone(0));
    assert_eq!(row["texter_id"], fx.texter_id.as_str());
    assert_eq!(row["texter_name"], "Test Member");
    assert_eq!(row["campaign_id"], fx.campaign_id.as_str());
    assert_eq!(row["campaign_name"], "GOTV");
    assert_eq!(row["key_id"], me["key_id"]);
    assert!(row["click_token_id"].is_string());
    assert_eq!(row["ip"], "127.0.0.1");
    assert_eq!(row["user_agent"], "AuditTest/1.0 (volunteer laptop)");
    let body = queued["body"].as_str().unwrap();
    assert_eq!(
        row["body_sha256"],
        hex::encode(Sha256::digest(body.as_bytes()))
    );
    assert_eq!(row["presented_at"], queued["presented_at"]);
    assert_eq!(row["clicked_at"], json!(weekday_afternoon()));
    let presented: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(queued["presented_at"].clone()).unwrap();
    let received: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(row["received_at"].clone()).unwrap();
    assert_eq!((received - presented).num_milliseconds(), 1_800);
    assert_eq!(row["display_to_click_ms"], 1_800);
    // Provenance: the list, as uploaded.
    assert_eq!(row["list_id"], fx.list_id.as_str());
    assert_eq!(row["list_name"], "Precinct 7");
    assert_eq!(row["list_source"], "voter file 2026");
    assert_eq!(row["list_consent_basis"], "opted in online");
    // The checks made at the click.
    assert_eq!(row["opted_out_at_send"], false);
    assert_eq!(
        row["opt_out_checked_events"], 0,
        "a number never texted before"
    );
    assert_eq!(row["hours_allowed"], true);
    assert_eq!(row["recipient_time_zone"], "America/New_York");
    assert_eq!(row["time_zone_source"], "zip");
    assert_eq!(row["recipient_local_time"], "2026-11-25T14:00:01-05:00");
    assert!(row["texting_window"].as_str().unwrap().contains('-'));
    // The carrier's side.
    let org: OrgId = fx.org_id.parse().unwrap();
    let carrier = app.app.carrier_for(org).await.unwrap().unwrap();
    assert_eq!(row["carrier"], "sim");
    assert!(
        row["carrier_message_id"]
            .as_str()
            .unwrap()
            .starts_with("SM")
    );
    let from = row["from_number"].as_str().unwrap().to_owned();
    assert!(carrier.sending_numbers.contains(&from), "{from}");
    assert_eq!(row["dispatch_status"], "submitted");
    assert_eq!(row["status"], "delivered");
    assert_eq!(row["error_code"], Value::Null);

    // The texter's filter and the campaign's find the same row; another
    // campaign's finds none.
    for filter in [
        format!("texter_id={}", fx.texter_id),
        format!("campaign_id={}", fx.campaign_id),
    ] {
        let page = app
            .get_ok(&fx.compliance, &format!("/v1/audit/messages?{filter}"))
            .await;
        assert_eq!(
            page["messages"][0]["message_id"], sent["message_id"],
            "{filter}"
        );
    }
    let none = app
        .get_ok(
            &fx.compliance,
            &format!("/v1/audit/messages?campaign_id={}", CampaignId::new()),
        )
        .await;
    assert_eq!(none["messages"], json!([]));
    // A time range that ends before the message leaves it out.
    let before = app
        .get_ok(&fx.compliance, "/v1/audit/messages?to=2000-01-01")
        .await;
    assert_eq!(before["messages"], json!([]));
    app
}

async fn a_message_trail_lists_every_event_with_positions_and_hashes(app: TestApp) -> TestApp {
    let fx = fixture(&app, 1).await;
    let (_, sent) = send_first(&app, &fx, "AuditTest/1.0").await;
    rows_for(&app, &fx, 0, delivered).await;
    let id = sent["message_id"].as_str().unwrap();
    let trail = app
        .get_ok(&fx.compliance, &format!("/v1/audit/messages/{id}"))
        .await;
    assert_eq!(trail["message"]["message_id"], id);
    let events = trail["events"].as_array().unwrap();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        &types[..3],
        [
            "MessageSendClicked",
            "MessageDispatchStarted",
            "MessageSubmitted"
        ],
        "{types:?}"
    );
    assert!(
        types[3..].iter().all(|t| *t == "DeliveryReported"),
        "{types:?}"
    );
    assert!(types.len() >= 4);

    // Exactly the events of the stream that name this message, in order,
    // with their stored hashes.
    let org: OrgId = fx.org_id.parse().unwrap();
    let stream = recipient::stream_id(org, &PhoneNumber::from_e164(&phone(0)).unwrap());
    let logged: Vec<_> = app
        .app
        .events()
        .read_stream(&stream, 0, 1_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|event| event.data.to_string().contains(id))
        .collect();
    assert_eq!(events.len(), logged.len());
    for (shown, stored) in events.iter().zip(&logged) {
        assert_eq!(shown["position"], stored.position);
        assert_eq!(shown["version"], stored.version);
        assert_eq!(shown["stream_id"], stream.as_str());
        assert_eq!(shown["hash"], hex::encode(stored.hash));
        assert_eq!(shown["prev_hash"], hex::encode(stored.prev_hash));
        assert_eq!(shown["data"], stored.data);
    }
    // Consecutive versions chain: each prev_hash is the previous hash.
    for pair in events.windows(2) {
        if pair[1]["version"].as_u64() == pair[0]["version"].as_u64().map(|v| v + 1) {
            assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
        }
    }
    assert_eq!(events[0]["version"], 0);
    assert_eq!(events[0]["prev_hash"], "0".repeat(64));
    assert_eq!(trail["chain"]["first_broken"], Value::Null);
    assert!(trail["chain"]["events_checked"].as_u64().unwrap() >= events.len() as u64);
    app
}

async fn a_phone_history_shows_the_list_upload_messages_both_ways_and_the_stop(
    app: TestApp,
) -> TestApp {
    let fx = fixture(&app, 2).await;
    let (_, sent) = send_first(&app, &fx, "AuditTest/1.0").await;
    rows_for(&app, &fx, 0, delivered).await;
    assert_eq!(
        app.voter_texts(&fx.org_id, &phone(0), "Who is this?")
            .await
            .status(),
        200
    );
    assert_eq!(
        app.voter_texts(&fx.org_id, &phone(0), "STOP")
            .await
            .status(),
        200
    );
    // The texter answers anyway: refused and recorded.
    let conversation = sent["conversation_id"].as_str().unwrap();
    expect_error(
        app.reply_in(
            &fx.texter,
            conversation,
            &json!({"body": "Sorry to bother you"}),
        )
        .await,
        409,
        "opted_out",
    )
    .await;

    let history = app
        .get_ok(&fx.compliance, &format!("/v1/audit/phones/{}", phone(0)))
        .await;
    assert_eq!(history["phone"], phone(0));
    assert_eq!(history["opted_out"], true);
    let lists = history["lists"].as_array().unwrap();
    assert_eq!(lists.len(), 1, "{history}");
    assert_eq!(lists[0]["list_id"], fx.list_id.as_str());
    assert_eq!(lists[0]["source"], "voter file 2026");
    assert_eq!(lists[0]["consent_basis"], "opted in online");
    assert_eq!(lists[0]["line"], 2);
    assert_eq!(lists[0]["first_name"], "Voter0");
    assert_eq!(
        history["campaigns"][0]["campaign_id"],
        fx.campaign_id.as_str()
    );
    assert_eq!(
        history["campaigns"][0]["assigned_texter_id"],
        fx.texter_id.as_str()
    );

    let messages = history["messages"].as_array().unwrap();
    let shape: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| {
            (
                m["direction"].as_str().unwrap(),
                m["origin"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("outbound", "texter_click"),
            ("inbound", "voter"),
            ("inbound", "voter"),
            ("outbound", "automated_reply"),
        ],
        "{history}"
    );
    assert_eq!(messages[0]["message_id"], sent["message_id"]);
    assert_eq!(messages[1]["body_sha256"], body_hash("Who is this?"));
    assert_eq!(messages[1]["from_number"], phone(0));
    assert_eq!(messages[2]["keyword"], "opt_out");
    // The confirmation is no one's click, and says so.
    let confirmation = &messages[3];
    assert_eq!(confirmation["kind"], "opt_out_confirmation");
    assert_eq!(confirmation["texter_id"], Value::Null);
    assert!(
        confirmation["note"]
            .as_str()
            .unwrap()
            .contains("no person clicked")
    );
    assert_eq!(confirmation["opted_out_at_send"], true);
    assert_eq!(
        confirmation["in_reply_to"],
        messages[2]["carrier_message_id"]
    );
    // Replies and confirmations carry their conversation's list.
    assert_eq!(confirmation["list_id"], fx.list_id.as_str());
    assert_eq!(messages[1]["campaign_id"], fx.campaign_id.as_str());

    let opt_outs = history["opt_outs"].as_array().unwrap();
    assert_eq!(opt_outs.len(), 1);
    assert_eq!(opt_outs[0]["change"], "opted_out");
    assert_eq!(opt_outs[0]["source"], "keyword_reply");
    assert_eq!(opt_outs[0]["keyword"], "STOP");
    let blocked = history["blocked"].as_array().unwrap();
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0]["reason"], "opted_out");
    assert_eq!(blocked[0]["kind"], "reply");

    // A number the org never had: 404, like another org's.
    expect_not_found(
        app.get_as(&fx.compliance, "/v1/audit/phones/+15559990000")
            .await,
    )
    .await;
    // The other contact: in the list, never texted.
    let untouched = app
        .get_ok(&fx.compliance, &format!("/v1/audit/phones/{}", phone(1)))
        .await;
    assert_eq!(untouched["lists"][0]["line"], 3);
    assert_eq!(untouched["messages"], json!([]));
    assert_eq!(untouched["events"], 0);
    app
}

async fn refused_attempts_are_counted_by_reason_and_paged(app: TestApp) -> TestApp {
    let fx = fixture(&app, 3).await;
    let queued = queue(&app, &fx).await;
    let token = |i: usize| queued[i]["click_token"].as_str().unwrap().to_owned();
    expect_error(
        click(&app, &fx, "garbage", "b1", "t").await,
        422,
        "token_invalid",
    )
    .await;
    expect_error(
        click(&app, &fx, "still garbage", "b2", "t").await,
        422,
        "token_invalid",
    )
    .await;
    assert_eq!(click(&app, &fx, &token(0), "b3", "t").await.status(), 202);
    expect_error(
        click(&app, &fx, &token(0), "b4", "t").await,
        409,
        "token_used",
    )
    .await;
    assert_eq!(
        app.voter_texts(&fx.org_id, &phone(1), "STOP")
            .await
            .status(),
        200
    );
    expect_error(
        click(&app, &fx, &token(1), "b5", "t").await,
        409,
        "opted_out",
    )
    .await;

    let all = app
        .eventually(&fx.compliance, "/v1/audit/blocked", |page| {
            page["total"] == 4
        })
        .await;
    assert_eq!(
        all["by_reason"],
        json!({"opted_out": 1, "token_invalid": 2, "token_used": 1})
    );
    let attempts = all["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 4);
    assert_eq!(attempts[0]["reason"], "token_invalid");
    assert_eq!(
        attempts[0]["phone"],
        Value::Null,
        "an untrusted token names no phone"
    );
    assert_eq!(attempts[3]["reason"], "opted_out");
    assert_eq!(attempts[3]["phone"], phone(1));
    assert_eq!(attempts[3]["campaign_id"], fx.campaign_id.as_str());
    assert_eq!(attempts[3]["texter_id"], fx.texter_id.as_str());
    assert_eq!(attempts[3]["user_agent"], "t");

    // Two pages of two.
    let first = app
        .get_ok(&fx.compliance, "/v1/audit/blocked?limit=2")
        .await;
    assert_eq!(first["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(first["total"], 4, "counts cover every page");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get_ok(
            &fx.compliance,
            &format!("/v1/audit/blocked?limit=2&cursor={cursor}"),
        )
        .await;
    assert_eq!(second["attempts"][0], attempts[2]);
    assert_eq!(second["attempts"][1], attempts[3]);
    assert_eq!(second["next_cursor"], Value::Null);

    // Filters.
    let reason = app
        .get_ok(&fx.compliance, "/v1/audit/blocked?reason=token_invalid")
        .await;
    assert_eq!(reason["total"], 2);
    assert_eq!(reason["by_reason"], json!({"token_invalid": 2}));
    let campaign = app
        .get_ok(
            &fx.compliance,
            &format!("/v1/audit/blocked?campaign_id={}", fx.campaign_id),
        )
        .await;
    assert_eq!(campaign["total"], 2, "untrusted tokens name no campaign");
    let texter = app
        .get_ok(
            &fx.compliance,
            &format!("/v1/audit/blocked?texter_id={}", fx.texter_id),
        )
        .await;
    assert_eq!(texter["total"], 4);
    let later = app
        .get_ok(&fx.compliance, "/v1/audit/blocked?from=2999-01-01")
        .await;
    assert_eq!(later["total"], 0);
    app
}

async fn the_csv_export_has_the_same_rows_as_the_search(app: TestApp) -> TestApp {
    let fx = fixture(&app, 2).await;
    // A user agent a spreadsheet would run as a formula.
    send_first(&app, &fx, "=HYPERLINK(\"http://evil\",\"x\")").await;
    send_first(&app, &fx, "Plain/1.0, with a comma").await;
    rows_for(&app, &fx, 0, delivered).await;
    rows_for(&app, &fx, 1, delivered).await;
    let search = app
        .get_ok(
            &fx.compliance,
            &format!("/v1/audit/messages?campaign_id={}", fx.campaign_id),
        )
        .await;
    let rows = search["messages"].as_array().unwrap();
    assert_eq!(rows.len(), 2);

    let response = app
        .get_as(
            &fx.compliance,
            &format!("/v1/audit/export.csv?campaign_id={}", fx.campaign_id),
        )
        .await;
    let (header, records) = csv_download(response).await;
    assert_eq!(header.join(","), textbank_app::audit::EXPORT_COLUMNS);
    assert_eq!(records.len(), rows.len());
    let cell = |record: &csv::StringRecord, name: &str| {
        let index = header.iter().position(|h| h == name).unwrap();
        record[index].to_owned()
    };
    for (record, row) in records.iter().zip(rows) {
        for name in [
            "message_id",
            "phone",
            "texter_id",
            "campaign_id",
            "body_sha256",
            "key_id",
            "list_source",
            "list_consent_basis",
            "carrier_message_id",
            "delivery_status",
            "status",
            "time_zone_source",
        ] {
            assert_eq!(cell(record, name), row[name].as_str().unwrap(), "{name}");
        }
        assert_eq!(cell(record, "display_to_click_ms"), "1800");
        assert_eq!(cell(record, "hours_allowed"), "true");
    }
    assert_eq!(
        cell(&records[0], "user_agent"),
        "'=HYPERLINK(\"http://evil\",\"x\")",
        "a formula is defused"
    );
    assert_eq!(cell(&records[1], "user_agent"), "Plain/1.0, with a comma");

    // Filters apply as in the search: none of this phone's rows are the other's.
    let one = app
        .get_as(
            &fx.compliance,
            &format!("/v1/audit/export.csv?phone={}", query_phone(1)),
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(one.lines().count(), 2);
    assert!(one.contains(rows[1]["message_id"].as_str().unwrap()));
    app
}

/// Edits a stored event's timestamp behind the store's back, as someone
/// with database access could.
async fn tamper_with_recorded_at(app: &TestApp, position: u64, at: chrono::DateTime<chrono::Utc>) {
    let sql = "UPDATE events SET recorded_at = $1 WHERE position = $2";
    let position = i64::try_from(position).unwrap();
    let updated = match app.app.database() {
        textbank_store::Database::Sqlite { write, .. } => sqlx::query(sql)
            .bind(at)
            .bind(position)
            .execute(write)
            .await
            .unwrap()
            .rows_affected(),
        textbank_store::Database::Postgres(pool) => sqlx::query(sql)
            .bind(at)
            .bind(position)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected(),
    };
    assert_eq!(updated, 1);
}

async fn drop_append_only_guards(app: &TestApp) {
    match app.app.database() {
        textbank_store::Database::Sqlite { write, .. } => {
            for trigger in [
                "events_are_append_only_update",
                "events_are_append_only_delete",
            ] {
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER {trigger}")))
                    .execute(write)
                    .await
                    .unwrap();
            }
        }
        textbank_store::Database::Postgres(pool) => {
            sqlx::query("DROP TRIGGER events_are_append_only ON events")
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

async fn verification_finds_a_clean_chain_and_then_a_tampered_event(app: TestApp) -> TestApp {
    let fx = fixture(&app, 1).await;
    let (_, sent) = send_first(&app, &fx, "AuditTest/1.0").await;
    rows_for(&app, &fx, 0, delivered).await;
    let stream = format!("recipient-{}-{}", fx.org_id, phone(0));

    let all = app.get_ok(&fx.compliance, "/v1/audit/verify").await;
    assert_eq!(all["scope"], "organization");
    assert_eq!(all["intact"], true, "{all}");
    assert_eq!(all["first_broken"], Value::Null);
    // The org's stream, the list's, the campaign's and the recipient's.
    assert!(all["streams_checked"].as_u64().unwrap() >= 4, "{all}");
    let one = app
        .get_ok(
            &fx.compliance,
            &format!("/v1/audit/verify?stream={}", stream.replace('+', "%2B")),
        )
        .await;
    assert_eq!(one["scope"], "stream");
    assert_eq!(one["streams_checked"], 1);
    assert_eq!(one["intact"], true);
    assert!(one["events_checked"].as_u64().unwrap() >= 4);
    let list = app
        .get_ok(
            &fx.compliance,
            &format!("/v1/audit/verify?stream=list-{}", fx.list_id),
        )
        .await;
    assert_eq!(list["intact"], true);

    // Someone edits the click's timestamp in the database.
    let trail = app
        .get_ok(
            &fx.compliance,
            &format!(
                "/v1/audit/messages/{}",
                sent["message_id"].as_str().unwrap()
            ),
        )
        .await;
    let click_position = trail["events"][0]["position"].as_u64().unwrap();
    drop_append_only_guards(&app).await;
    tamper_with_recorded_at(
        &app,
        click_position,
        weekday_afternoon() - chrono::Duration::hours(30),
    )
    .await;
    let one = app
        .get_ok(
            &fx.compliance,
            &format!("/v1/audit/verify?stream={}", stream.replace('+', "%2B")),
        )
        .await;
    assert_eq!(one["intact"], false, "{one}");
    assert_eq!(one["first_broken"]["stream_id"], stream.as_str());
    assert_eq!(one["first_broken"]["version"], 0);
    assert_eq!(one["first_broken"]["position"], click_position);
    assert_eq!(one["first_broken"]["reason"], "hash_mismatch");
    let all = app.get_ok(&fx.compliance, "/v1/audit/verify").await;
    assert_eq!(all["intact"], false);
    assert_eq!(all["broken_streams"], 1);
    assert_eq!(all["first_broken"]["stream_id"], stream.as_str());
    app
}

/// Appends a texter's click on its own recipient stream, as the send path
/// would have, `display_ms` after the message was shown.
/// A texter's click as the send path records it, `display_ms` after the
/// message was shown.
fn click_event(
    org: OrgId,
    texter: MemberId,
    phone: &PhoneNumber,
    received_at: chrono::DateTime<chrono::Utc>,
    display_ms: i64,
) -> (MessageId, NewEvent) {
    let mut click = textbank_domain::testing::click_record(
        texter,
        phone,
        MessageKind::Initial,
        "Hi",
        received_at,
    );
    click.evidence.presented_at = Some(received_at - chrono::Duration::milliseconds(display_ms));
    let message_id = click.message_id;
    let event = recipient_event(org, RecipientEvent::MessageSendClicked(Box::new(click)));
    (message_id, event)
}

fn recipient_event(org: OrgId, event: RecipientEvent) -> NewEvent {
    let (event_type, data) = event.to_parts().unwrap();
    NewEvent::new(
        event_type,
        data,
        EventMetadata::new(Some(org), Actor::System),
    )
}

/// Appends a texter's click on its own recipient stream, as the send path
/// would have; returns its position.
async fn synthetic_click(
    app: &App,
    org: OrgId,
    texter: MemberId,
    i: usize,
    received_at: chrono::DateTime<chrono::Utc>,
    display_ms: i64,
) -> u64 {
    let phone = PhoneNumber::from_e164(&format!("+1555300{i:04}")).unwrap();
    let (_, event) = click_event(org, texter, &phone, received_at, display_ms);
    app.events()
        .append(
            &recipient::stream_id(org, &phone),
            ExpectedVersion::Any,
            vec![event],
        )
        .await
        .unwrap()
        .last_position
}

/// A quick carrier can report before the submission naming its id is
/// recorded: the stream keeps the report unattached and gives it to the
/// message when the submission comes; so does the audit.
async fn a_report_before_its_submission_still_counts_for_the_message(app: TestApp) -> TestApp {
    let created = app.app.create_org("Early Org").await.unwrap();
    let (texter, _) = app
        .member_with_key(&created.owner_key, "t@example.org", "texter")
        .await;
    let compliance = app
        .member_key(&created.owner_key, "c@example.org", "compliance")
        .await;
    let org = created.org_id;
    let phone = PhoneNumber::from_e164("+15553000001").unwrap();
    let (message_id, click) = click_event(
        org,
        texter.parse().unwrap(),
        &phone,
        weekday_afternoon(),
        2_000,
    );
    let report = |status, error_code: Option<&str>| {
        recipient_event(
            org,
            RecipientEvent::DeliveryReported {
                carrier: "sim".into(),
                carrier_message_id: "SMearly".into(),
                message_id: None,
                status,
                error_code: error_code.map(str::to_owned),
            },
        )
    };
    let submitted = recipient_event(
        org,
        RecipientEvent::MessageSubmitted {
            message_id,
            attempt: 1,
            carrier: "sim".into(),
            carrier_message_id: "SMearly".into(),
            from: Some("+15550100001".into()),
        },
    );
    // One append: the dispatcher finds the message submitted already.
    let appended = app
        .app
        .events()
        .append(
            &recipient::stream_id(org, &phone),
            ExpectedVersion::NoStream,
            vec![
                click,
                report(DeliveryStatus::Sent, None),
                report(DeliveryStatus::Undelivered, Some("30005")),
                submitted,
            ],
        )
        .await
        .unwrap();
    let page = app
        .get_ok(
            &compliance,
            &format!(
                "/v1/audit/messages?phone=%2B15553000001&min_position={}",
                appended.last_position
            ),
        )
        .await;
    let row = &page["messages"][0];
    assert_eq!(row["message_id"], message_id.to_string());
    assert_eq!(row["delivery_status"], "undelivered", "{row}");
    assert_eq!(row["error_code"], "30005");
    assert_eq!(row["carrier_message_id"], "SMearly");
    let trail = app
        .get_ok(&compliance, &format!("/v1/audit/messages/{message_id}"))
        .await;
    let positions: Vec<u64> = trail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    let first = appended.first_position;
    assert_eq!(positions, [first, first + 1, first + 2, first + 3]);
    app
}

async fn a_too_fast_and_regular_texter_is_flagged_and_a_human_one_is_not(app: TestApp) -> TestApp {
    // An org without a carrier: the dispatcher records each synthetic
    // click as failed to submit, and nothing is texted.
    let created = app.app.create_org("Cadence Org").await.unwrap();
    let owner = created.owner_key;
    let (bot, _) = app
        .member_with_key(&owner, "bot@example.org", "texter")
        .await;
    let (human, _) = app
        .member_with_key(&owner, "human@example.org", "texter")
        .await;
    let compliance = app.key_of_a(&owner, "compliance").await;
    let start = weekday_afternoon();
    let mut last = 0;
    // A script: a click every 2 s on the dot, 120 ms after each message shows.
    for i in 0..30 {
        let at = start + chrono::Duration::seconds(2 * i as i64);
        last = synthetic_click(&app.app, created.org_id, bot.parse().unwrap(), i, at, 120).await;
    }
    // A person: irregular gaps, seconds of reading.
    let gaps = [9, 14, 6, 22, 11, 8, 31, 12, 7, 18, 10, 25];
    let reads = [
        3_100, 2_400, 5_800, 1_900, 4_200, 2_700, 8_300, 3_600, 2_200, 6_100, 3_000, 4_700,
    ];
    let mut at = start;
    for (i, (gap, read)) in gaps.iter().zip(reads).enumerate() {
        at += chrono::Duration::seconds(*gap);
        last = synthetic_click(
            &app.app,
            created.org_id,
            human.parse().unwrap(),
            100 + i,
            at,
            read,
        )
        .await;
    }

    let bot_cadence = app
        .get_ok(
            &compliance,
            &format!("/v1/audit/texters/{bot}/cadence?min_position={last}"),
        )
        .await;
    assert_eq!(bot_cadence["clicks"], 30);
    assert_eq!(bot_cadence["looks_automated"], true, "{bot_cadence}");
    let reasons = bot_cadence["reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().unwrap().contains("less than 500 ms")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().unwrap().contains("between clicks")),
        "{reasons:?}"
    );
    assert_eq!(bot_cadence["display_to_click"]["min_ms"], 120);
    assert_eq!(bot_cadence["display_to_click"]["p50_ms"], 120);
    assert_eq!(bot_cadence["display_to_click"]["below_floor"], 30);
    assert_eq!(bot_cadence["clicks_per_minute"]["max"], 30);
    assert_eq!(bot_cadence["intervals"]["p50_ms"], 2_000);
    assert_eq!(bot_cadence["thresholds"]["fast_click_ms"], 500);

    let human_cadence = app
        .get_ok(&compliance, &format!("/v1/audit/texters/{human}/cadence"))
        .await;
    assert_eq!(human_cadence["clicks"], 12);
    assert_eq!(human_cadence["looks_automated"], false, "{human_cadence}");
    assert_eq!(human_cadence["reasons"], json!([]));
    assert_eq!(human_cadence["display_to_click"]["min_ms"], 1_900);
    assert_eq!(human_cadence["display_to_click"]["p50_ms"], 3_100);
    assert_eq!(human_cadence["display_to_click"]["p90_ms"], 6_100);
    let buckets = human_cadence["display_to_click"]["buckets"]
        .as_array()
        .unwrap();
    let counted: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, 12);

    // A time range narrows it.
    let early = app
        .get_ok(
            &compliance,
            &format!(
                "/v1/audit/texters/{bot}/cadence?to={}",
                (start + chrono::Duration::seconds(10))
                    .to_rfc3339()
                    .replace('+', "%2B")
            ),
        )
        .await;
    assert!(early["clicks"].as_u64().unwrap() < 30);
    app
}

async fn only_owners_admins_and_compliance_read_the_audit(app: TestApp) -> TestApp {
    let fx = fixture(&app, 1).await;
    let (_, sent) = send_first(&app, &fx, "AuditTest/1.0").await;
    let manager = app.key_of_a(&fx.owner, "manager").await;
    let admin = app.key_of_a(&fx.owner, "admin").await;
    let paths = [
        "/v1/audit/messages".to_owned(),
        format!(
            "/v1/audit/messages/{}",
            sent["message_id"].as_str().unwrap()
        ),
        format!("/v1/audit/phones/{}", phone(0)),
        "/v1/audit/blocked".to_owned(),
        "/v1/audit/export.csv".to_owned(),
        "/v1/audit/verify".to_owned(),
        format!("/v1/audit/texters/{}/cadence", fx.texter_id),
    ];
    let position = sent["position"].as_u64().unwrap();
    for path in &paths {
        for key in [&fx.texter, &manager] {
            expect_forbidden(app.get_as(key, path).await).await;
        }
        for key in [&fx.owner, &admin, &fx.compliance] {
            // Wait for the click to be projected before asking for it.
            let separator = if path.contains('?') { '&' } else { '?' };
            let path = if path.contains("verify") || path.contains("phones") {
                path.clone()
            } else {
                format!("{path}{separator}min_position={position}")
            };
            let response = app.get_as(key, &path).await;
            assert_eq!(
                response.status(),
                200,
                "{path}: {:?}",
                response.text().await
            );
        }
    }
    app
}

async fn another_orgs_ids_are_not_found(app: TestApp) -> TestApp {
    let fx = fixture(&app, 1).await;
    let (_, sent) = send_first(&app, &fx, "AuditTest/1.0").await;
    rows_for(&app, &fx, 0, delivered).await;
    let other = app.app.create_org("Other Org").await.unwrap();
    let spy = app
        .member_key(&other.owner_key, "spy@example.org", "compliance")
        .await;
    let message = sent["message_id"].as_str().unwrap();
    for path in [
        format!("/v1/audit/messages/{message}"),
        format!("/v1/audit/messages/{}", MessageId::new()),
        "/v1/audit/messages/not-an-id".to_owned(),
        format!("/v1/audit/phones/{}", phone(0)),
        format!("/v1/audit/texters/{}/cadence", fx.texter_id),
        format!("/v1/audit/verify?stream=org-{}", fx.org_id),
        format!("/v1/audit/verify?stream=list-{}", fx.list_id),
        format!("/v1/audit/verify?stream=campaign-{}", fx.campaign_id),
        format!(
            "/v1/audit/verify?stream=recipient-{}-{}",
            fx.org_id,
            query_phone(0)
        ),
    ] {
        expect_not_found(app.get_as(&spy, &path).await).await;
    }
    // Searches find nothing of the other org's.
    let search = app
        .get_ok(
            &spy,
            &format!("/v1/audit/messages?phone={}", query_phone(0)),
        )
        .await;
    assert_eq!(search["messages"], json!([]));
    let export = app
        .get_as(&spy, "/v1/audit/export.csv")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(export.lines().count(), 1, "the header only");
    let verify = app.get_ok(&spy, "/v1/audit/verify").await;
    assert_eq!(verify["intact"], true);
    // Its own org stream only: no list, campaign or recipient of the other.
    assert_eq!(verify["streams_checked"], 1, "{verify}");
    app
}

async fn bad_parameters_are_refused_with_a_clear_error(app: TestApp) -> TestApp {
    let fx = fixture(&app, 1).await;
    let key = &fx.compliance;
    for (path, names) in [
        ("/v1/audit/messages?limit=0", "limit"),
        ("/v1/audit/messages?limit=5000", "limit"),
        ("/v1/audit/messages?limit=ten", "limit"),
        ("/v1/audit/messages?from=yesterday", "from"),
        ("/v1/audit/messages?from=2026-11-26&to=2026-11-25", "to"),
        ("/v1/audit/messages?texter_id=bob", "texter_id"),
        ("/v1/audit/messages?campaign_id=42", "campaign_id"),
        ("/v1/audit/messages?phone=not-a-number", "phone"),
        ("/v1/audit/messages?cursor=garbage", "cursor"),
        ("/v1/audit/messages?min_position=-1", "min_position"),
        ("/v1/audit/messages?texter=bob", "texter"),
        ("/v1/audit/export.csv?cursor=abc", "cursor"),
        ("/v1/audit/export.csv?to=soon", "to"),
        ("/v1/audit/blocked?reason=rude", "reason"),
        ("/v1/audit/blocked?limit=-3", "limit"),
        ("/v1/audit/verify?stream=no%20spaces", "stream"),
        ("/v1/audit/verify?streams=org-1", "streams"),
        ("/v1/audit/phones/12", "phone"),
    ] {
        let message = expect_invalid_request(app.get_as(key, path).await).await;
        assert!(message.contains(names), "{path}: {message}");
    }
    let cadence = format!("/v1/audit/texters/{}/cadence?from=noon", fx.texter_id);
    expect_invalid_request(app.get_as(key, &cadence).await).await;
    app
}

async fn rebuilding_the_audit_beside_itself_gives_the_same_rows(app: TestApp) -> TestApp {
    let fx = fixture(&app, 2).await;
    send_first(&app, &fx, "AuditTest/1.0").await;
    send_first(&app, &fx, "AuditTest/1.0").await;
    rows_for(&app, &fx, 0, delivered).await;
    rows_for(&app, &fx, 1, delivered).await;
    assert_eq!(
        app.voter_texts(&fx.org_id, &phone(1), "STOP")
            .await
            .status(),
        200
    );
    expect_error(
        click(&app, &fx, "garbage", "r1", "t").await,
        422,
        "token_invalid",
    )
    .await;
    // Settled: the confirmation delivered too, so nothing changes below.
    rows_for(&app, &fx, 1, |rows| {
        rows.len() == 3 && rows[2]["delivery_status"] == "delivered"
    })
    .await;
    let blocked = app
        .eventually(&fx.compliance, "/v1/audit/blocked", |page| {
            page["total"] == 1
        })
        .await;
    let before = app.get_ok(&fx.compliance, "/v1/audit/messages").await;
    assert_eq!(before["messages"].as_array().unwrap().len(), 4, "{before}");

    let rebuilt = textbank_projections::rebuild::rebuild(
        app.app.events(),
        app.app.database(),
        &textbank_projections::audit::Audit::live(),
    )
    .await
    .unwrap();
    assert_eq!(rebuilt.method, "swapped");
    let after = app.get_ok(&fx.compliance, "/v1/audit/messages").await;
    assert_eq!(after, before);
    let blocked_after = app.get_ok(&fx.compliance, "/v1/audit/blocked").await;
    assert_eq!(blocked_after, blocked);
    // And again: the copies' index names alternate, so a second rebuild works.
    textbank_projections::rebuild::rebuild(
        app.app.events(),
        app.app.database(),
        &textbank_projections::audit::Audit::live(),
    )
    .await
    .unwrap();
    let again = app.get_ok(&fx.compliance, "/v1/audit/messages").await;
    assert_eq!(again, before);
    app
}

/// A simulator whose every message fails at the carrier.
/// A message the carrier could not deliver shows the carrier's final
/// status and error code, reported through the signed status webhook.
async fn a_failed_message_shows_the_carriers_status_and_error_code(app: TestApp) -> TestApp {
    let fx = fixture(&app, 1).await;
    send_first(&app, &fx, "AuditTest/1.0").await;
    let rows = rows_for(&app, &fx, 0, |rows| {
        rows.first().is_some_and(|row| {
            matches!(
                row["delivery_status"].as_str(),
                Some("failed" | "undelivered")
            )
        })
    })
    .await;
    let row = &rows[0];
    assert_eq!(row["status"], row["delivery_status"]);
    assert!(
        ["30003", "30005", "30006", "30007"].contains(&row["error_code"].as_str().unwrap()),
        "{row}"
    );
    assert_eq!(row["dispatch_status"], "submitted");
    app
}

/// A simulator whose every message fails.
mod failing_carrier {
    use super::*;

    crate::on_both_backends!(spawn = spawn_failing_sim_app;
        a_failed_message_shows_the_carriers_status_and_error_code,
    );
}

/// A key that acts as a texter may have been minted by someone else: the
/// audit row of each click made with it names who.
async fn a_click_shows_who_minted_the_key_behind_it(app: TestApp) -> TestApp {
    let fx = fixture(&app, 1).await;
    let admin = app
        .post_ok(
            &fx.owner,
            "/v1/members",
            &json!({"name": "Ada Admin", "email": "ada@example.org", "role": "admin"}),
        )
        .await;
    let admin_id = admin["member_id"].as_str().unwrap();
    let admin_key = app
        .post_ok(
            &fx.owner,
            "/v1/api-keys",
            &json!({"role": "admin", "member_id": admin_id}),
        )
        .await;
    let texter_key = app
        .post_ok(
            admin_key["key"].as_str().unwrap(),
            "/v1/api-keys",
            &json!({"role": "texter", "member_id": fx.texter_id, "label": "phone"}),
        )
        .await;
    let fx = Fixture {
        texter: texter_key["key"].as_str().unwrap().to_owned(),
        ..fx
    };
    let (_, sent) = send_first(&app, &fx, "AuditTest/1.0").await;
    let rows = rows_for(&app, &fx, 0, |rows| !rows.is_empty()).await;
    let row = &rows[0];
    assert_eq!(row["message_id"], sent["message_id"]);
    assert_eq!(row["texter_id"], fx.texter_id.as_str());
    assert_eq!(row["key_id"], texter_key["key_id"]);
    assert_eq!(row["key_issued_by_key_id"], admin_key["key_id"]);
    assert_eq!(row["key_issued_by_member_id"], admin_id);
    assert_eq!(row["key_issued_by_name"], "Ada Admin");
    // The export says it too.
    let csv = app
        .get_as(&fx.compliance, "/v1/audit/export.csv")
        .await
        .text()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let record = reader.records().next().unwrap().unwrap();
    let cell = |name: &str| &record[header.iter().position(|h| h == name).unwrap()];
    assert_eq!(cell("key_issued_by_member_id"), admin_id);
    assert_eq!(cell("key_issued_by_name"), "Ada Admin");
    app
}
