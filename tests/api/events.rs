//! The event feed for API clients: an integration's key follows its
//! organization's events in log order, page by page and live, and sees
//! nothing of another organization, no hash of a secret and no request's
//! address; it reads but changes nothing.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, click_tokens, expect_error, expect_forbidden};

crate::on_both_backends!(mod sending, spawn = spawn_send_app;
    an_integration_follows_its_orgs_events_in_order_and_nothing_else,
    the_live_feed_sends_new_events_and_resumes_after_the_last_one_received,
);

crate::on_both_backends!(
    an_integration_reads_but_changes_nothing_and_is_never_a_member,
    bad_feed_requests_are_refused_with_the_problem_named,
);

/// An integration's key, minted by the org's owner.
async fn integration_key(app: &TestApp, owner: &str) -> String {
    let issued = app
        .post_ok(
            owner,
            "/v1/api-keys",
            &json!({"role": "integration", "label": "CRM sync"}),
        )
        .await;
    issued["key"].as_str().expect("a key").to_owned()
}

fn types(events: &Value) -> Vec<&str> {
    events
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event["type"].as_str().expect("a type"))
        .collect()
}

async fn an_integration_follows_its_orgs_events_in_order_and_nothing_else(app: TestApp) -> TestApp {
    let fixture = app.send_fixture(2).await;
    let other = app.send_fixture(1).await;
    let tokens = click_tokens(&app.queue(&fixture, 2).await);
    let sent = app.click(&fixture.texter, &tokens[0], "feed-1").await;
    assert_eq!(sent.status(), 202);
    app.click(
        &other.texter,
        &click_tokens(&app.queue(&other, 1).await)[0],
        "x",
    )
    .await;
    let crm = integration_key(&app, &fixture.owner).await;

    let page = app.get_ok(&crm, "/v1/events?limit=1000").await;
    let events = page["events"].as_array().expect("events");
    let positions: Vec<u64> = events
        .iter()
        .map(|event| event["position"].as_u64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|pair| pair[0] < pair[1]));
    assert_eq!(page["next_after"], *positions.last().unwrap());
    // Nothing of the other organization: its org, its texter, its voter.
    let text = page.to_string();
    assert!(!text.contains(&other.org_id) && !text.contains(&other.texter_id));
    assert!(types(&page["events"]).contains(&"OrgCreated"));
    // A hash of a key never leaves; where a click came from is for the
    // audit's readers only.
    assert!(!text.contains("key_hash"), "{text}");
    let clicks = app
        .get_ok(&crm, "/v1/events?types=MessageSendClicked")
        .await;
    assert_eq!(types(&clicks["events"]), ["MessageSendClicked"]);
    let click = &clicks["events"][0];
    assert_eq!(click["format"], "textbank.event.v1");
    assert_eq!(
        click["subject"]["campaign_id"],
        fixture.campaign_id.as_str()
    );
    assert_eq!(click["subject"]["texter_id"], fixture.texter_id.as_str());
    assert_eq!(click["subject"]["phone"], "+15552010000");
    assert!(click["data"].get("ip").is_none() && click.get("ip").is_none());
    let owner_view = app
        .get_ok(&fixture.owner, "/v1/events?types=MessageSendClicked")
        .await;
    let clicked = &owner_view["events"][0];
    assert_eq!(clicked["data"]["ip"], "127.0.0.1", "{clicked}");
    assert_eq!(clicked["ip"], "127.0.0.1", "{clicked}");
    // Paging: one at a time, each after the last, reaches the same events.
    let mut after = 0;
    let mut paged = Vec::new();
    loop {
        let page = app
            .get_ok(&crm, &format!("/v1/events?after={after}&limit=1"))
            .await;
        let Some(event) = page["events"].as_array().unwrap().first() else {
            break;
        };
        paged.push(event["position"].as_u64().unwrap());
        after = page["next_after"].as_u64().unwrap();
    }
    // (The dispatcher and the simulator may have added some since.)
    assert_eq!(paged[..positions.len()], positions);
    app
}

async fn the_live_feed_sends_new_events_and_resumes_after_the_last_one_received(
    app: TestApp,
) -> TestApp {
    let fixture = app.send_fixture(2).await;
    let crm = integration_key(&app, &fixture.owner).await;
    let head = app.get_ok(&crm, "/v1/events?limit=1000").await["next_after"]
        .as_u64()
        .unwrap();
    let open = |resume: Option<u64>| {
        let mut request = app
            .client
            .get(app.url(&format!(
                "/v1/events/stream?after={head}&types=MessageSendClicked"
            )))
            .bearer_auth(&crm);
        if let Some(position) = resume {
            request = request.header("last-event-id", position.to_string());
        }
        request.send()
    };
    let mut live = open(None).await.unwrap();
    assert_eq!(live.status(), 200);
    let tokens = click_tokens(&app.queue(&fixture, 2).await);
    for (n, token) in tokens.iter().enumerate() {
        let sent = app
            .click(&fixture.texter, token, &format!("live-{n}"))
            .await;
        assert_eq!(sent.status(), 202);
    }
    let received = read_events(&mut live, 2).await;
    assert_eq!(received.len(), 2);
    assert!(
        received
            .iter()
            .all(|(_, event)| event["type"] == "MessageSendClicked")
    );
    drop(live);
    // A client that got only the first reconnects with its id: the second
    // comes, and nothing before it.
    let mut resumed = open(Some(received[0].0)).await.unwrap();
    let again = read_events(&mut resumed, 1).await;
    assert_eq!(again[0].0, received[1].0);
    app
}

/// The first `n` events of a Server-Sent Events body: (id, data).
async fn read_events(body: &mut reqwest::Response, n: usize) -> Vec<(u64, Value)> {
    let mut text = String::new();
    let mut events = Vec::new();
    while events.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.chunk())
            .await
            .expect("an event within 10 s")
            .expect("a chunk")
            .expect("the stream is open");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|line| line.strip_prefix(name).map(str::to_owned))
            };
            if let (Some(id), Some(data)) = (field("id: "), field("data: ")) {
                events.push((id.parse().unwrap(), serde_json::from_str(&data).unwrap()));
            }
        }
    }
    events
}

async fn an_integration_reads_but_changes_nothing_and_is_never_a_member(app: TestApp) -> TestApp {
    let owner = app.create_org("Integrated").await;
    let crm = integration_key(&app, &owner).await;
    for path in [
        "/v1/lists",
        "/v1/campaigns",
        "/v1/metrics/overview",
        "/v1/events",
    ] {
        assert_eq!(app.get_as(&crm, path).await.status(), 200, "{path}");
    }
    let campaign =
        json!({"name": "No", "initial_message": "Hi. Reply STOP to opt out", "list_ids": []});
    expect_forbidden(app.post_as(&crm, "/v1/campaigns", &campaign).await).await;
    expect_forbidden(app.get_as(&crm, "/v1/conversations").await).await;
    expect_forbidden(app.get_as(&crm, "/v1/audit/messages").await).await;
    // People are never integrations, and only owners and admins read the
    // feed besides them.
    let member = app
        .post_as(
            &owner,
            "/v1/members",
            &json!({"name": "Bot", "email": "bot@example.org", "role": "integration"}),
        )
        .await;
    expect_error(member, 422, "invalid_request").await;
    let (_, manager) = app
        .member_with_key(&owner, "manager@example.org", "manager")
        .await;
    expect_forbidden(app.get_as(&manager, "/v1/events").await).await;
    app
}

async fn bad_feed_requests_are_refused_with_the_problem_named(app: TestApp) -> TestApp {
    let owner = app.create_org("Careless Client").await;
    for query in [
        "after=-1",
        "after=9223372036854775808",
        "limit=0",
        "limit=1001",
        "types=Opt-Out",
        "surprise=1",
    ] {
        let response = app.get_as(&owner, &format!("/v1/events?{query}")).await;
        assert_eq!(response.status(), 422, "{query}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["code"].is_string(), "{query}: {body}");
    }
    let bad_resume = app
        .client
        .get(app.url("/v1/events/stream"))
        .bearer_auth(&owner)
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_resume.status(), 422);
    app
}
