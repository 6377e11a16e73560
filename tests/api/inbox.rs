//! The texters' inbox end to end: conversations newest activity first and
//! page by page, needs-reply, unread counts and marking read, the opt-out
//! flag, who sees what, read-your-writes with `min_position`, and the live
//! stream (Server-Sent Events) — including a server stopping while one is
//! open.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    On, SendFixture, TestApp, expect_error, expect_forbidden, expect_invalid_request,
    expect_not_found, expect_unauthenticated, item, sent, spawn_send_app, success_json as json,
};

crate::on_both_backends!(spawn = spawn_send_app;
    the_inbox_lists_conversations_newest_activity_first_page_by_page,
    needs_reply_and_unread_follow_the_voter_and_the_texter,
    an_opt_out_is_flagged_and_needs_no_reply,
    texters_see_only_their_own_conversations_and_staff_see_all,
    malformed_requests_are_refused_and_min_position_waits,
    the_stream_pushes_a_voter_reply_to_its_texter_only,
    one_texter_cannot_hold_all_of_an_orgs_live_streams,
);

fn phone(i: usize) -> String {
    format!("+1555201{i:04}")
}

/// Clicks Send on the texter's next `n` queued messages; returns the
/// conversation ids in click order and the last click's position.
/// A second texter and what each texter sent.
struct Ben {
    ben_id: String,
    /// Ben's key.
    ben: String,
    /// The fixture texter's two conversations.
    ours: Vec<String>,
    /// Ben's one.
    bens: Vec<String>,
    /// The log position after the sends.
    position: u64,
}

/// A second texter, Ben, is given one of the fixture's three contacts; the
/// fixture's texter then sends to the other two, and Ben to his.
async fn ben_takes_one(app: &TestApp, fixture: &SendFixture) -> Ben {
    let (ben_id, ben) = app
        .member_with_key(&fixture.owner, "ben@example.org", "texter")
        .await;
    let reassign = format!("/v1/campaigns/{}/assignments/reassign", fixture.campaign_id);
    let body = json!({"from_texter_id": fixture.texter_id, "to_texter_id": ben_id, "count": 1});
    let moved = app.post_as(&fixture.owner, &reassign, &body).await;
    assert_eq!(json(moved).await["reassigned"], 1);
    let (ours, _) = send_first_messages(app, fixture, &fixture.texter, 2).await;
    let (bens, position) = send_first_messages(app, fixture, &ben, 1).await;
    Ben {
        ben_id,
        ben,
        ours,
        bens,
        position,
    }
}

async fn send_first_messages(
    app: &TestApp,
    fixture: &SendFixture,
    key: &str,
    n: usize,
) -> (Vec<String>, u64) {
    let queue = app
        .get_as(
            key,
            &format!(
                "/v1/texter/queue?campaign_id={}&limit={n}",
                fixture.campaign_id
            ),
        )
        .await;
    let queue = json(queue).await;
    let messages = queue["messages"].as_array().unwrap().clone();
    assert_eq!(messages.len(), n, "{queue}");
    let mut conversations = Vec::new();
    let mut position = 0;
    for (i, message) in messages.iter().enumerate() {
        let sent = app
            .click(
                key,
                message["click_token"].as_str().unwrap(),
                &format!("{key}-{i}"),
            )
            .await;
        assert_eq!(sent.status(), 202);
        let sent = json(sent).await;
        conversations.push(sent["conversation_id"].as_str().unwrap().to_owned());
        position = sent["position"].as_u64().unwrap();
    }
    (conversations, position)
}

/// The log's head: after a webhook has answered, its events are in it.
async fn head(app: &TestApp) -> u64 {
    app.app.events().head_position().await.unwrap()
}

/// The inbox as `key` sees it with `query`, once it has applied the log
/// up to `position`.
async fn inbox(app: &TestApp, key: &str, query: &str, position: u64) -> Value {
    let separator = if query.is_empty() { "" } else { "&" };
    app.get_ok(
        key,
        &format!("/v1/conversations?{query}{separator}min_position={position}"),
    )
    .await
}

fn ids(page: &Value) -> Vec<String> {
    page["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["conversation_id"].as_str().unwrap().to_owned())
        .collect()
}

fn row<'a>(page: &'a Value, conversation: &str) -> &'a Value {
    item(&page["conversations"], "conversation_id", conversation)
}

async fn voter_texts(app: &TestApp, fixture: &SendFixture, i: usize, body: &str) -> u64 {
    let response = app.voter_texts(&fixture.org_id, &phone(i), body).await;
    assert_eq!(response.status(), 200);
    head(app).await
}

async fn the_inbox_lists_conversations_newest_activity_first_page_by_page(app: TestApp) -> TestApp {
    let fixture = app.send_fixture(3).await;
    let (sent, position) = send_first_messages(&app, &fixture, &fixture.texter, 3).await;
    let page = inbox(&app, &fixture.texter, "", position).await;
    let newest_first: Vec<String> = sent.iter().rev().cloned().collect();
    assert_eq!(ids(&page), newest_first);
    assert_eq!(page["next_cursor"], Value::Null);
    assert!(page["position"].as_u64().unwrap() >= position);
    let first = row(&page, &sent[0]);
    assert_eq!(first["phone"], phone(0));
    assert_eq!(first["first_name"], "Voter0");
    assert_eq!(first["last_name"], "Lee");
    assert_eq!(first["campaign_id"], fixture.campaign_id.as_str());
    assert_eq!(first["campaign_name"], "GOTV");
    assert_eq!(first["texter_id"], fixture.texter_id.as_str());
    assert_eq!(first["last_message"]["direction"], "outbound");
    assert_eq!(
        first["last_message"]["body"],
        "Hi Voter0, it's Test Member. Will you vote? Reply STOP to opt out"
    );
    assert_eq!(first["needs_reply"], false);
    assert_eq!(first["unread_count"], 0);
    assert_eq!(first["opted_out"], false);

    // Two pages of two: the cursor carries on where the first stopped.
    let one = inbox(&app, &fixture.texter, "limit=2", position).await;
    assert_eq!(ids(&one), newest_first[..2]);
    let cursor = one["next_cursor"].as_str().expect("a next cursor");
    let two = inbox(
        &app,
        &fixture.texter,
        &format!("limit=2&cursor={cursor}"),
        0,
    )
    .await;
    assert_eq!(ids(&two), newest_first[2..]);
    assert_eq!(two["next_cursor"], Value::Null);

    // A reply is activity: the oldest conversation comes first now.
    let position = voter_texts(&app, &fixture, 0, "Who is this?").await;
    let page = inbox(&app, &fixture.texter, "", position).await;
    assert_eq!(
        ids(&page),
        [sent[0].clone(), sent[2].clone(), sent[1].clone()]
    );
    assert_eq!(row(&page, &sent[0])["last_message"]["body"], "Who is this?");
    // The campaign filter.
    let page = inbox(
        &app,
        &fixture.owner,
        &format!("campaign_id={}", fixture.campaign_id),
        0,
    )
    .await;
    assert_eq!(ids(&page).len(), 3);
    let other_campaign = textbank_domain::CampaignId::new();
    let page = inbox(
        &app,
        &fixture.owner,
        &format!("campaign_id={other_campaign}"),
        0,
    )
    .await;
    assert_eq!(page["conversations"], json!([]));
    app
}

async fn needs_reply_and_unread_follow_the_voter_and_the_texter(app: TestApp) -> TestApp {
    let fixture = app.send_fixture(2).await;
    let (sent, position) = send_first_messages(&app, &fixture, &fixture.texter, 2).await;
    let waiting = inbox(&app, &fixture.texter, "status=needs_reply", position).await;
    assert_eq!(waiting["conversations"], json!([]));

    voter_texts(&app, &fixture, 0, "Yes! Who is this?").await;
    let position = voter_texts(&app, &fixture, 0, "Hello?").await;
    let waiting = inbox(&app, &fixture.texter, "status=needs_reply", position).await;
    assert_eq!(ids(&waiting), [sent[0].clone()]);
    let conversation = row(&waiting, &sent[0]);
    assert_eq!(conversation["needs_reply"], true);
    assert_eq!(conversation["unread_count"], 2);
    assert_eq!(conversation["last_message"]["direction"], "inbound");
    assert_eq!(conversation["last_message"]["body"], "Hello?");

    // The texter answers: nothing waits any more, yet nothing was read.
    let path = format!("/v1/conversations/{}", sent[0]);
    let reply = app
        .reply_in(
            &fixture.texter,
            &sent[0],
            &json!({"body": "It's Test Member, with GOTV"}),
        )
        .await;
    assert_eq!(reply.status(), 202);
    let position = json(reply).await["position"].as_u64().unwrap();
    let waiting = inbox(&app, &fixture.texter, "status=needs_reply", position).await;
    assert_eq!(waiting["conversations"], json!([]));
    let all = inbox(&app, &fixture.texter, "status=all", position).await;
    let conversation = row(&all, &sent[0]);
    assert_eq!(conversation["needs_reply"], false);
    assert_eq!(conversation["unread_count"], 2);
    assert_eq!(conversation["last_message"]["direction"], "outbound");

    // Reading resets the count; its position shows it at once.
    let read = app
        .post_as(&fixture.texter, &format!("{path}/read"), &json!({}))
        .await;
    let read = json(read).await;
    assert_eq!(read["conversation_id"], sent[0].as_str());
    let position = read["position"].as_u64().unwrap();
    let all = inbox(&app, &fixture.texter, "", position).await;
    assert_eq!(row(&all, &sent[0])["unread_count"], 0);
    // Only what comes after the read counts.
    let position = voter_texts(&app, &fixture, 0, "Great, see you there").await;
    let all = inbox(&app, &fixture.texter, "", position).await;
    assert_eq!(row(&all, &sent[0])["unread_count"], 1);
    assert_eq!(row(&all, &sent[0])["needs_reply"], true);
    assert_eq!(row(&all, &sent[1])["unread_count"], 0);

    // The read is an event: a rebuilt inbox has the same counts.
    let manager = app.key_of_a(&fixture.owner, "manager").await;
    let staff_read = app
        .post_as(&manager, &format!("{path}/read"), &json!({}))
        .await;
    let position = json(staff_read).await["position"].as_u64().unwrap();
    let all = inbox(&app, &fixture.texter, "", position).await;
    assert_eq!(row(&all, &sent[0])["unread_count"], 0);
    // Compliance reads conversations but changes nothing; other texters
    // do not see this one.
    let compliance = app.key_of_a(&fixture.owner, "compliance").await;
    expect_forbidden(
        app.post_as(&compliance, &format!("{path}/read"), &json!({}))
            .await,
    )
    .await;
    let other = app
        .member_key(&fixture.owner, "other@example.org", "texter")
        .await;
    expect_not_found(
        app.post_as(&other, &format!("{path}/read"), &json!({}))
            .await,
    )
    .await;
    expect_not_found(
        app.post_as(
            &fixture.texter,
            "/v1/conversations/not-an-id/read",
            &json!({}),
        )
        .await,
    )
    .await;
    app
}

async fn an_opt_out_is_flagged_and_needs_no_reply(app: TestApp) -> TestApp {
    let fixture = app.send_fixture(2).await;
    let (sent, _) = send_first_messages(&app, &fixture, &fixture.texter, 2).await;
    let position = voter_texts(&app, &fixture, 0, "STOP").await;
    let page = inbox(&app, &fixture.texter, "", position).await;
    let stopped = row(&page, &sent[0]);
    assert_eq!(stopped["opted_out"], true);
    assert_eq!(stopped["needs_reply"], false);
    // The confirmation is the latest message; STOP still counts as unread.
    assert_eq!(stopped["last_message"]["direction"], "outbound");
    assert_eq!(stopped["unread_count"], 1);
    assert_eq!(row(&page, &sent[1])["opted_out"], false);

    // Words that probably mean stop are the texter's call: they wait.
    let position = voter_texts(&app, &fixture, 1, "wrong number").await;
    let waiting = inbox(&app, &fixture.texter, "status=needs_reply", position).await;
    assert_eq!(ids(&waiting), [sent[1].clone()]);

    // The texter marks it: flagged, and no longer waiting.
    let path = format!("/v1/conversations/{}/opt-out", sent[1]);
    let marked = app
        .post_as(&fixture.texter, &path, &json!({"send_confirmation": false}))
        .await;
    let position = json(marked).await["position"].as_u64().unwrap();
    let page = inbox(&app, &fixture.texter, "", position).await;
    assert_eq!(row(&page, &sent[1])["opted_out"], true);
    assert_eq!(row(&page, &sent[1])["needs_reply"], false);
    assert_eq!(row(&page, &sent[1])["last_message"]["body"], "wrong number");
    let waiting = inbox(&app, &fixture.texter, "status=needs_reply", position).await;
    assert_eq!(waiting["conversations"], json!([]));

    // Opting back in clears the flag.
    let position = voter_texts(&app, &fixture, 0, "START").await;
    let page = inbox(&app, &fixture.texter, "", position).await;
    assert_eq!(row(&page, &sent[0])["opted_out"], false);
    app
}

async fn texters_see_only_their_own_conversations_and_staff_see_all(app: TestApp) -> TestApp {
    let fixture = app.send_fixture(3).await;
    let Ben {
        ben_id,
        ben,
        ours,
        bens,
        position,
    } = ben_takes_one(&app, &fixture).await;

    let mine = inbox(&app, &fixture.texter, "", position).await;
    assert_eq!(ids(&mine), [ours[1].clone(), ours[0].clone()]);
    let his = inbox(&app, &ben, "", position).await;
    assert_eq!(ids(&his), [bens[0].clone()]);
    assert_eq!(his["conversations"][0]["texter_id"], ben_id.as_str());
    // A texter asking for another's inbox is refused; the thread is
    // not theirs to see.
    expect_forbidden(
        app.get_as(
            &fixture.texter,
            &format!("/v1/conversations?texter_id={ben_id}"),
        )
        .await,
    )
    .await;
    let his_thread = format!("/v1/conversations/{}", bens[0]);
    expect_not_found(app.get_as(&fixture.texter, &his_thread).await).await;

    // Staff see the org's inbox, or one texter's.
    let manager = app.key_of_a(&fixture.owner, "manager").await;
    for key in [&fixture.owner, &manager] {
        let all = inbox(&app, key, "", position).await;
        assert_eq!(
            ids(&all),
            [bens[0].clone(), ours[1].clone(), ours[0].clone()]
        );
        let one = inbox(&app, key, &format!("texter_id={ben_id}"), position).await;
        assert_eq!(ids(&one), [bens[0].clone()]);
    }
    // A manager reads any thread of the org: each message with its
    // delivery status (the simulator reports delivery) and the answers.
    let answer = app
        .post_as(
            &ben,
            &format!("{his_thread}/answers"),
            &json!({"question_id": "support", "answer": "yes"}),
        )
        .await;
    assert_eq!(answer.status(), 201);
    let thread = app
        .eventually(&manager, &his_thread, |thread| {
            thread["messages"][0]["status"] == "delivered"
        })
        .await;
    assert_eq!(thread["texter_id"], ben_id.as_str());
    assert_eq!(thread["answers"][0]["question_id"], "support");
    assert_eq!(thread["answers"][0]["answer"], "yes");

    // Another org sees none of it.
    let stranger = app.create_org("Elsewhere").await;
    let theirs = inbox(&app, &stranger, "", position).await;
    assert_eq!(theirs["conversations"], json!([]));
    expect_not_found(app.get_as(&stranger, &his_thread).await).await;
    app
}

async fn malformed_requests_are_refused_and_min_position_waits(app: TestApp) -> TestApp {
    let fixture = app.send_fixture(1).await;
    for query in [
        "cursor=bm9wZQ",
        "cursor=%%%",
        "status=unread",
        "limit=0",
        "limit=101",
        "limit=many",
        "campaign_id=nope",
        "texter_id=nope",
        "min_position=-1",
        "colour=blue",
    ] {
        expect_invalid_request(
            app.get_as(&fixture.texter, &format!("/v1/conversations?{query}"))
                .await,
        )
        .await;
    }
    // A position the log has not reached is none a write returned: 422 at
    // once rather than a wait and a 503.
    let ahead = head(&app).await + 1_000;
    expect_invalid_request(
        app.get_as(
            &fixture.texter,
            &format!("/v1/conversations?min_position={ahead}"),
        )
        .await,
    )
    .await;
    // Without a key, nothing.
    expect_unauthenticated(app.get("/v1/conversations").await).await;
    // A click's position, passed on, shows its conversation at once.
    let (sent, position) = send_first_messages(&app, &fixture, &fixture.texter, 1).await;
    let page = inbox(&app, &fixture.texter, "", position).await;
    assert_eq!(ids(&page), sent);
    app
}

/// Server-Sent Events read from a streaming response.
pub(crate) struct Events {
    response: reqwest::Response,
    buffer: String,
}

/// One event: its name, id and JSON data.
#[derive(Debug)]
pub(crate) struct Sse {
    pub(crate) event: String,
    pub(crate) id: String,
    pub(crate) data: Value,
}

impl Events {
    pub(crate) async fn open(app: &TestApp, key: &str, last_event_id: Option<&str>) -> Self {
        let mut request = app
            .client
            .get(app.url("/v1/conversations/stream"))
            .bearer_auth(key);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "an event stream"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event that has data, waiting at most `wait`.
    pub(crate) async fn next(&mut self, wait: Duration) -> Option<Sse> {
        tokio::time::timeout(wait, async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let mut event = Sse {
                        event: String::new(),
                        id: String::new(),
                        data: Value::Null,
                    };
                    for line in block.lines() {
                        if let Some(name) = line.strip_prefix("event: ") {
                            event.event = name.to_owned();
                        } else if let Some(id) = line.strip_prefix("id: ") {
                            event.id = id.to_owned();
                        } else if let Some(data) = line.strip_prefix("data: ") {
                            event.data = serde_json::from_str(data).expect("JSON data");
                        }
                    }
                    // Keep-alives are comments: no event, no data.
                    if !event.event.is_empty() {
                        return Some(event);
                    }
                    continue;
                }
                match self.response.chunk().await {
                    Ok(Some(chunk)) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                    _ => return None,
                }
            }
        })
        .await
        .ok()
        .flatten()
    }
}

async fn the_stream_pushes_a_voter_reply_to_its_texter_only(app: TestApp) -> TestApp {
    let fixture = app.send_fixture(3).await;
    let Ben {
        ben,
        ours,
        position,
        ..
    } = ben_takes_one(&app, &fixture).await;
    // Streams start from the inbox as it is: let it take the clicks first.
    inbox(&app, &fixture.texter, "", position).await;

    let mut mine = Events::open(&app, &fixture.texter, None).await;
    let mut his = Events::open(&app, &ben, None).await;
    let mut staff = Events::open(&app, &fixture.owner, None).await;
    let phone_of_ours = app
        .get_ok(&fixture.texter, &format!("/v1/conversations/{}", ours[0]))
        .await["phone"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = app
        .voter_texts(&fixture.org_id, &phone_of_ours, "Is this about voting?")
        .await;
    assert_eq!(reply.status(), 200);

    let event = mine
        .next(Duration::from_secs(5))
        .await
        .expect("the texter's stream tells of the reply");
    assert_eq!(event.event, "conversation");
    assert_eq!(event.data["conversation_id"], ours[0].as_str());
    assert_eq!(event.data["needs_reply"], true);
    assert_eq!(event.data["unread_count"], 1);
    assert_eq!(event.data["last_message"]["body"], "Is this about voting?");
    assert!(
        event.data["first_name"]
            .as_str()
            .is_some_and(|name| name.starts_with("Voter")),
        "{:?}",
        event.data
    );
    let seen = staff
        .next(Duration::from_secs(5))
        .await
        .expect("staff see the org's changes");
    assert_eq!(seen.data["conversation_id"], ours[0].as_str());
    // The same change reached every stream at once; Ben's left it out.
    assert!(
        his.next(Duration::from_millis(300)).await.is_none(),
        "another texter's change"
    );

    // Resuming from before it replays it; an id not from the stream is
    // refused.
    let start = "0.00000000-0000-0000-0000-000000000000";
    let mut resumed = Events::open(&app, &fixture.texter, Some(start)).await;
    let mut replayed = Vec::new();
    let mut last_id = String::new();
    while replayed.len() < 2 {
        let event = resumed
            .next(Duration::from_secs(5))
            .await
            .expect("the texter's rows since the start");
        replayed.push(event.data["conversation_id"].as_str().unwrap().to_owned());
        last_id = event.id;
    }
    replayed.sort();
    let mut expected = ours.clone();
    expected.sort();
    assert_eq!(replayed, expected);
    // From the last of them: nothing new.
    let mut after = Events::open(&app, &fixture.texter, Some(&last_id)).await;
    assert!(after.next(Duration::from_millis(300)).await.is_none());
    let bad = sent(
        app.client
            .get(app.url("/v1/conversations/stream"))
            .bearer_auth(&fixture.texter)
            .header("last-event-id", "yesterday"),
    )
    .await;
    expect_invalid_request(bad).await;
    expect_forbidden(
        app.get_as(
            &ben,
            &format!("/v1/conversations/stream?texter_id={}", fixture.texter_id),
        )
        .await,
    )
    .await;
    app
}

async fn one_texter_cannot_hold_all_of_an_orgs_live_streams(app: TestApp) -> TestApp {
    let fixture = app.send_fixture(1).await;
    let mut held = Vec::new();
    for _ in 0..textbank_app::inbox::MAX_STREAMS_PER_MEMBER {
        held.push(Events::open(&app, &fixture.texter, None).await);
    }
    let refused = app
        .get_as(&fixture.texter, "/v1/conversations/stream")
        .await;
    let message = expect_error(refused, 429, "too_many_member_streams").await;
    assert!(message.contains("close one"), "{message}");
    // The org's staff still get theirs.
    let _staff = Events::open(&app, &fixture.owner, None).await;
    drop(held);
    app
}

/// Graceful shutdown waits for responses to finish, and a live stream
/// never finishes by itself: the server must end it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_an_open_stream_still_stops() {
    let app = spawn_send_app(On::Sqlite, "a_server_with_an_open_stream_still_stops")
        .await
        .expect("sqlite always runs");
    let fixture = app.send_fixture(1).await;
    let mut events = Events::open(&app, &fixture.texter, None).await;
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("the server stopped with a stream open");
    assert!(
        events.next(Duration::from_secs(5)).await.is_none(),
        "the stream ended"
    );
}
