//! Handling conversations end to end: the org's tags applied in the inbox,
//! the thread and the audit; reassignment and release (the old texter
//! loses the conversation at once, the voter's replies follow the new
//! one); escalation to staff, who reply themselves or send it back; and
//! the races: two staff reassigning one conversation, a reassignment and a
//! reply, never leave it with two texters or none.

use std::time::Duration;

use serde_json::{Value, json};
use textbank_domain::OrgId;
use textbank_domain::message::MessageKind;
use textbank_domain::phone::{PhoneNumber, Region};
use textbank_domain::recipient::{self, RecipientEvent};

use crate::helpers::{
    SendFixture, TestApp, expect_error, expect_forbidden, expect_not_found, item,
    success_json as json,
};
use crate::inbox::Events;

crate::on_both_backends!(spawn = spawn_send_app;
    tags_are_defined_by_staff_and_applied_in_the_inbox_thread_and_audit,
    a_reassigned_conversation_follows_its_new_texter_and_leaves_the_old_one_at_once,
    released_conversations_go_to_the_pool_and_a_texter_releases_their_own,
    an_escalated_conversation_goes_to_staff_who_reply_and_send_it_back,
    an_escalating_tag_escalates_and_other_orgs_see_nothing,
    two_staff_reassigning_one_conversation_leave_it_with_one_texter,
    a_reassignment_racing_a_reply_never_lets_the_old_texter_send_after_it,
    message_review_filters_and_reassigns_in_bulk_reporting_each_failure,
);

/// A fixture with one conversation, a second texter and a manager bound
/// to a member.
struct World {
    fixture: SendFixture,
    conversation: String,
    phone: String,
    ann_id: String,
    ann: String,
    manager_id: String,
    manager: String,
}

async fn world(app: &TestApp, contacts: usize) -> World {
    let fixture = app.send_fixture(contacts).await;
    let conversation = app.send_first(&fixture).await;
    let (ann_id, ann) = app
        .member_with_key(&fixture.owner, "ann@example.org", "texter")
        .await;
    let (manager_id, manager) = app
        .member_with_key(&fixture.owner, "manager@example.org", "manager")
        .await;
    let thread = app
        .get_ok(
            &fixture.texter,
            &format!("/v1/conversations/{conversation}"),
        )
        .await;
    let phone = thread["phone"].as_str().unwrap().to_owned();
    World {
        fixture,
        conversation,
        phone,
        ann_id,
        ann,
        manager_id,
        manager,
    }
}

async fn head(app: &TestApp) -> u64 {
    app.app.events().head_position().await.unwrap()
}

/// The inbox as `key` sees it with `query`, with the log applied up to now.
async fn inbox(app: &TestApp, key: &str, query: &str) -> Value {
    let position = head(app).await;
    let status = if query.contains("status=") {
        ""
    } else {
        "status=all&"
    };
    app.get_ok(
        key,
        &format!("/v1/conversations?{status}{query}&min_position={position}"),
    )
    .await
}

fn ids(page: &Value) -> Vec<&str> {
    page["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["conversation_id"].as_str().unwrap())
        .collect()
}

async fn recipient_events(app: &TestApp, world: &World) -> Vec<RecipientEvent> {
    let org: OrgId = world.fixture.org_id.parse().unwrap();
    let phone = PhoneNumber::parse(&world.phone, Region::US).unwrap();
    app.app
        .events()
        .read_stream(&recipient::stream_id(org, &phone), 0, 10_000)
        .await
        .unwrap()
        .iter()
        .filter_map(|recorded| {
            use textbank_domain::DomainEvent;
            RecipientEvent::from_parts(&recorded.event_type, &recorded.data).unwrap()
        })
        .collect()
}

fn path(world: &World, tail: &str) -> String {
    format!("/v1/conversations/{}{tail}", world.conversation)
}

/// Applies a tag to the world's conversation as `key`.
async fn apply_tag(app: &TestApp, key: &str, world: &World, tag: &str) -> reqwest::Response {
    app.request_as(
        reqwest::Method::PUT,
        key,
        &path(world, &format!("/tags/{tag}")),
    )
    .send()
    .await
    .unwrap()
}

async fn define_tag(app: &TestApp, key: &str, name: &str, escalates: bool) -> String {
    let tag = app
        .post_as(
            key,
            "/v1/tags",
            &json!({"name": name, "description": "d", "escalates": escalates}),
        )
        .await;
    assert_eq!(tag.status(), 201);
    json(tag).await["tag_id"].as_str().unwrap().to_owned()
}

async fn tags_are_defined_by_staff_and_applied_in_the_inbox_thread_and_audit(
    app: TestApp,
) -> TestApp {
    let world = world(&app, 2).await;
    let owner = &world.fixture.owner;
    let texter = &world.fixture.texter;
    // Texters apply tags; they do not define them.
    expect_forbidden(
        app.post_as(texter, "/v1/tags", &json!({"name": "Mine"}))
            .await,
    )
    .await;
    let tag = define_tag(&app, &world.manager, "Wrong number", false).await;
    let clash = app
        .post_as(owner, "/v1/tags", &json!({"name": "wrong NUMBER"}))
        .await;
    expect_error(clash, 409, "conflict").await;
    let listed = app.get_ok(texter, "/v1/tags").await;
    assert_eq!(listed["tags"][0]["name"], "Wrong number");

    let applied = apply_tag(&app, texter, &world, &tag).await;
    let applied = json(applied).await;
    assert_eq!(applied["holder"], "texter");
    assert!(applied["position"].as_u64().is_some());
    let thread = app.get_ok(texter, &path(&world, "")).await;
    assert_eq!(thread["tags"][0]["name"], "Wrong number");
    let page = inbox(&app, texter, &format!("tag_id={tag}")).await;
    assert_eq!(ids(&page), [world.conversation.as_str()]);
    assert_eq!(page["conversations"][0]["tags"][0]["tag_id"], tag.as_str());
    let other = define_tag(&app, owner, "Press", false).await;
    let page = inbox(&app, owner, &format!("tag_id={other}")).await;
    assert!(ids(&page).is_empty());
    // Renaming the tag keeps the name it was applied under.
    let renamed = app
        .put_as(
            owner,
            &format!("/v1/tags/{tag}"),
            &json!({"name": "Wrong #"}),
        )
        .await;
    assert_eq!(json(renamed).await["name"], "Wrong #");

    let history = app
        .get_ok(owner, &format!("/v1/audit/phones/{}", world.phone))
        .await;
    let change = &history["conversation_changes"][0];
    assert_eq!(change["change"], "TagApplied");
    assert_eq!(change["data"]["name"], "Wrong number");
    assert_eq!(change["conversation_id"], world.conversation.as_str());

    let removed = app
        .delete_as(texter, &path(&world, &format!("/tags/{tag}")))
        .await;
    assert_eq!(json(removed).await["holder"], "texter");
    let page = inbox(&app, texter, &format!("tag_id={tag}")).await;
    assert!(ids(&page).is_empty());
    // A deleted tag can no longer be applied; deleting it again is fine.
    assert_eq!(
        app.delete_as(owner, &format!("/v1/tags/{tag}"))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.delete_as(owner, &format!("/v1/tags/{tag}"))
            .await
            .status(),
        200
    );
    let gone = apply_tag(&app, texter, &world, &tag).await;
    expect_not_found(gone).await;
    app
}

async fn a_reassigned_conversation_follows_its_new_texter_and_leaves_the_old_one_at_once(
    app: TestApp,
) -> TestApp {
    let world = world(&app, 2).await;
    let texter = &world.fixture.texter;
    // The texter's live stream, opened before the reassignment.
    inbox(&app, texter, "").await;
    let mut stream = Events::open(&app, texter, None).await;

    let moved = app
        .post_as(
            &world.manager,
            &path(&world, "/reassign"),
            &json!({"texter_id": world.ann_id}),
        )
        .await;
    let moved = json(moved).await;
    assert_eq!(moved["texter_id"], world.ann_id.as_str());
    // The old texter loses it at once: the thread, a reply, a tag.
    expect_error(
        app.get_as(texter, &path(&world, "")).await,
        403,
        "not_assigned",
    )
    .await;
    let reply = app
        .reply_in(
            texter,
            &world.conversation,
            &json!({"body": "Still there?"}),
        )
        .await;
    expect_error(reply, 403, "not_assigned").await;
    let removed = stream
        .next(Duration::from_secs(5))
        .await
        .expect("the old texter's stream says it is gone");
    assert_eq!(removed.event, "conversation_removed");
    assert_eq!(removed.data["conversation_id"], world.conversation.as_str());
    assert!(ids(&inbox(&app, texter, "").await).is_empty());

    // The voter's reply goes to the new texter, who answers.
    let answered = app
        .voter_texts(&world.fixture.org_id, &world.phone, "Who is this?")
        .await;
    assert_eq!(answered.status(), 200);
    let page = inbox(&app, &world.ann, "status=needs_reply").await;
    assert_eq!(ids(&page), [world.conversation.as_str()]);
    assert_eq!(page["conversations"][0]["texter_id"], world.ann_id.as_str());
    let reply = app
        .reply_in(
            &world.ann,
            &world.conversation,
            &json!({"body": "Ann, hi!"}),
        )
        .await;
    assert_eq!(reply.status(), 202);
    let thread = app.get_ok(&world.ann, &path(&world, "")).await;
    assert_eq!(thread["texter_id"], world.ann_id.as_str());
    // A texter who never held it: a 404, as for one that does not exist.
    let (_, stranger) = app
        .member_with_key(&world.fixture.owner, "stranger@example.org", "texter")
        .await;
    expect_not_found(app.get_as(&stranger, &path(&world, "")).await).await;
    // Texters may not reassign; a non-texter is no target.
    expect_forbidden(
        app.post_as(
            &world.ann,
            &path(&world, "/reassign"),
            &json!({"texter_id": world.fixture.texter_id}),
        )
        .await,
    )
    .await;
    let to_manager = app
        .post_as(
            &world.manager,
            &path(&world, "/reassign"),
            &json!({"texter_id": world.manager_id}),
        )
        .await;
    expect_error(to_manager, 422, "invalid_request").await;

    let history = app
        .get_ok(
            &world.fixture.owner,
            &format!("/v1/audit/phones/{}", world.phone),
        )
        .await;
    let change = item(
        &history["conversation_changes"],
        "change",
        "ConversationReassigned",
    );
    assert_eq!(change["data"]["from"], world.fixture.texter_id.as_str());
    assert_eq!(change["data"]["by"], world.manager_id.as_str());
    app
}

async fn released_conversations_go_to_the_pool_and_a_texter_releases_their_own(
    app: TestApp,
) -> TestApp {
    let world = world(&app, 3).await;
    let owner = &world.fixture.owner;
    let texter = &world.fixture.texter;
    let queue = app.queue(&world.fixture, 1).await;
    let token = queue["messages"][0]["click_token"].as_str().unwrap();
    let second = json(app.click(texter, token, "second").await).await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let released = json(
        app.post_as(owner, &path(&world, "/release"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(released["holder"], "pool");
    assert!(released["texter_id"].is_null());
    let pool = inbox(&app, owner, "holder=pool").await;
    assert_eq!(ids(&pool), [world.conversation.as_str()]);
    assert_eq!(ids(&inbox(&app, texter, "").await), [second.as_str()]);
    expect_forbidden(app.get_as(texter, "/v1/conversations?holder=pool").await).await;

    // "Release my replies": the texter gives back what they hold.
    let mine = app
        .post_as(texter, "/v1/texter/release-conversations", &json!({}))
        .await;
    let mine = json(mine).await;
    assert_eq!(mine["released"], 1);
    assert!(ids(&inbox(&app, texter, "").await).is_empty());
    let pool = inbox(&app, owner, "holder=pool").await;
    assert_eq!(ids(&pool).len(), 2);
    let metrics = app
        .get_ok(
            owner,
            &format!(
                "/v1/campaigns/{}/metrics?min_position={}",
                world.fixture.campaign_id,
                head(&app).await
            ),
        )
        .await;
    assert_eq!(metrics["conversations_by_holder"]["pool"], 2);
    // Staff hand one out again.
    let back = app
        .post_as(
            owner,
            &path(&world, "/reassign"),
            &json!({"texter_id": world.ann_id}),
        )
        .await;
    assert_eq!(json(back).await["holder"], "texter");
    assert_eq!(
        ids(&inbox(&app, &world.ann, "").await),
        [world.conversation.as_str()]
    );
    app
}

async fn an_escalated_conversation_goes_to_staff_who_reply_and_send_it_back(
    app: TestApp,
) -> TestApp {
    let world = world(&app, 2).await;
    let texter = &world.fixture.texter;
    let empty = app
        .post_as(texter, &path(&world, "/escalate"), &json!({"reason": " "}))
        .await;
    expect_error(empty, 422, "invalid_request").await;
    let escalated = app
        .post_as(
            texter,
            &path(&world, "/escalate"),
            &json!({"reason": "says they are a reporter"}),
        )
        .await;
    assert_eq!(json(escalated).await["holder"], "escalated");
    assert!(ids(&inbox(&app, texter, "").await).is_empty());
    let queue = app
        .get_ok(
            &world.manager,
            &format!("/v1/escalations?min_position={}", head(&app).await),
        )
        .await;
    assert_eq!(ids(&queue), [world.conversation.as_str()]);
    assert_eq!(
        queue["conversations"][0]["escalation_reason"],
        "says they are a reporter"
    );
    expect_forbidden(app.get_as(texter, "/v1/escalations").await).await;
    expect_error(
        app.reply_in(texter, &world.conversation, &json!({"body": "hm"}))
            .await,
        403,
        "not_assigned",
    )
    .await;

    // Staff answer themselves: one click, recorded with who clicked.
    let reply = app
        .reply_in(
            &world.manager,
            &world.conversation,
            &json!({"body": "Our press office will call you."}),
        )
        .await;
    assert_eq!(reply.status(), 202);
    let events = recipient_events(&app, &world).await;
    let click = events
        .iter()
        .rev()
        .find_map(|event| match event {
            RecipientEvent::MessageSendClicked(click) => Some(click),
            _ => None,
        })
        .unwrap();
    assert_eq!(click.evidence.kind, MessageKind::Reply);
    assert_eq!(click.evidence.texter_id.to_string(), world.manager_id);
    // The owner's key is bound to no member: it cannot click.
    expect_forbidden(
        app.reply_in(
            &world.fixture.owner,
            &world.conversation,
            &json!({"body": "x"}),
        )
        .await,
    )
    .await;

    // Resolved: back to the texter who escalated it.
    let resolved = app
        .post_as(&world.manager, &path(&world, "/resolve"), &json!({}))
        .await;
    let resolved = json(resolved).await;
    assert_eq!(resolved["holder"], "texter");
    assert_eq!(resolved["texter_id"], world.fixture.texter_id.as_str());
    let again = app
        .post_as(&world.manager, &path(&world, "/resolve"), &json!({}))
        .await;
    expect_error(again, 409, "not_escalated").await;
    assert_eq!(
        ids(&inbox(&app, texter, "").await),
        [world.conversation.as_str()]
    );
    let history = app
        .get_ok(
            &world.fixture.owner,
            &format!("/v1/audit/phones/{}", world.phone),
        )
        .await;
    let changes: Vec<&str> = history["conversation_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["ConversationEscalated", "EscalationResolved"]);
    app
}

async fn an_escalating_tag_escalates_and_other_orgs_see_nothing(app: TestApp) -> TestApp {
    let world = world(&app, 2).await;
    let texter = &world.fixture.texter;
    let tag = define_tag(&app, &world.fixture.owner, "Legal threat", true).await;
    let tagged = apply_tag(&app, texter, &world, &tag).await;
    assert_eq!(json(tagged).await["holder"], "escalated");
    let queue = app
        .get_ok(
            &world.fixture.owner,
            &format!("/v1/escalations?min_position={}", head(&app).await),
        )
        .await;
    assert_eq!(
        queue["conversations"][0]["escalation_reason"],
        "tagged Legal threat"
    );
    let metrics = app
        .get_ok(
            &world.fixture.owner,
            &format!(
                "/v1/campaigns/{}/metrics?min_position={}",
                world.fixture.campaign_id,
                head(&app).await
            ),
        )
        .await;
    assert_eq!(metrics["conversations_by_holder"]["escalated"], 1);

    // Another organization's staff: every conversation route is a 404.
    let other = app.app.create_org("Other Org").await.unwrap().owner_key;
    for (method, tail, body) in [
        ("POST", "/reassign", json!({"texter_id": world.ann_id})),
        ("POST", "/release", json!({})),
        ("POST", "/resolve", json!({})),
        ("POST", "/escalate", json!({"reason": "x"})),
        ("PUT", &format!("/tags/{tag}") as &str, json!({})),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let answer = app
            .request_as(method, &other, &path(&world, tail))
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_not_found(answer).await;
    }
    expect_not_found(
        app.put_as(&other, &format!("/v1/tags/{tag}"), &json!({"name": "Mine"}))
            .await,
    )
    .await;
    app
}

/// Who holds the conversation, folding its stream: every change must
/// start from the holder before it, and a reply click must come from the
/// holder (or staff) at its place in the stream.
fn check_one_holder(events: &[RecipientEvent], staff: &str) -> Option<String> {
    let mut holder: Option<String> = None;
    for event in events {
        match event {
            RecipientEvent::MessageSendClicked(click) => {
                let clicker = click.evidence.texter_id.to_string();
                match click.evidence.kind {
                    MessageKind::Initial => holder = Some(clicker),
                    MessageKind::Reply => assert!(
                        holder.as_deref() == Some(&clicker) || clicker == staff,
                        "a reply by {clicker} while {holder:?} held it: {events:?}"
                    ),
                }
            }
            RecipientEvent::ConversationReassigned {
                conversation, from, ..
            } => {
                assert_eq!(
                    from.map(|from| from.to_string()),
                    holder,
                    "a reassignment from someone who did not hold it: {events:?}"
                );
                holder = Some(conversation.texter_id.to_string());
            }
            RecipientEvent::ConversationReleased { .. } => holder = None,
            _ => {}
        }
    }
    holder
}

async fn two_staff_reassigning_one_conversation_leave_it_with_one_texter(app: TestApp) -> TestApp {
    const ROUNDS: usize = 12;
    let world = world(&app, 2).await;
    let (bob_id, _) = app
        .member_with_key(&world.fixture.owner, "bob@example.org", "texter")
        .await;
    let (_, admin) = app
        .member_with_key(&world.fixture.owner, "admin@example.org", "admin")
        .await;
    let reassign = path(&world, "/reassign");
    for round in 0..ROUNDS {
        let (first, second) = if round % 2 == 0 {
            (&world.ann_id, &bob_id)
        } else {
            (&bob_id, &world.ann_id)
        };
        let (to_first, to_second) = (json!({"texter_id": first}), json!({"texter_id": second}));
        let (a, b) = tokio::join!(
            app.post_as(&world.manager, &reassign, &to_first),
            app.post_as(&admin, &reassign, &to_second),
        );
        assert_eq!(a.status(), 200);
        assert_eq!(b.status(), 200);
        let events = recipient_events(&app, &world).await;
        let holder = check_one_holder(&events, &world.manager_id).expect("a texter holds it");
        // The inbox agrees: exactly one texter lists it.
        let page = inbox(&app, &world.fixture.owner, "").await;
        let row = item(
            &page["conversations"],
            "conversation_id",
            &world.conversation,
        );
        assert_eq!(row["texter_id"], holder.as_str());
        assert_eq!(row["holder"], "texter");
        for (key, id) in [
            (&world.ann, &world.ann_id),
            (&world.fixture.texter, &world.fixture.texter_id),
        ] {
            let listed = ids(&inbox(&app, key, "").await).contains(&world.conversation.as_str());
            assert_eq!(listed, *id == holder, "{id} vs {holder}");
        }
    }
    app
}

async fn a_reassignment_racing_a_reply_never_lets_the_old_texter_send_after_it(
    app: TestApp,
) -> TestApp {
    const ROUNDS: usize = 12;
    let world = world(&app, 2).await;
    let keys = [
        (
            world.fixture.texter.clone(),
            world.fixture.texter_id.clone(),
        ),
        (world.ann.clone(), world.ann_id.clone()),
    ];
    let reassign = path(&world, "/reassign");
    let (mut sent, mut refused) = (0, 0);
    for round in 0..ROUNDS {
        // The holder replies while staff hand it to the other texter.
        let (holder_key, _) = &keys[round % 2];
        let (_, next_id) = &keys[(round + 1) % 2];
        let (body, to_next) = (
            json!({"body": format!("round {round}")}),
            json!({"texter_id": next_id}),
        );
        let (reply, moved) = tokio::join!(
            app.reply_in(holder_key, &world.conversation, &body),
            app.post_as(&world.manager, &reassign, &to_next),
        );
        assert_eq!(moved.status(), 200);
        match reply.status().as_u16() {
            202 => sent += 1,
            403 => refused += 1,
            other => panic!("round {round}: {other} {:?}", reply.text().await),
        }
        let events = recipient_events(&app, &world).await;
        assert_eq!(
            check_one_holder(&events, &world.manager_id).as_deref(),
            Some(next_id.as_str())
        );
    }
    assert_eq!(sent + refused, ROUNDS);
    app
}

async fn message_review_filters_and_reassigns_in_bulk_reporting_each_failure(
    app: TestApp,
) -> TestApp {
    let world = world(&app, 3).await;
    let texter = &world.fixture.texter;
    let queue = app.queue(&world.fixture, 1).await;
    let token = queue["messages"][0]["click_token"].as_str().unwrap();
    let other = json(app.click(texter, token, "other").await).await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let answered = app
        .voter_texts(&world.fixture.org_id, &world.phone, "Please CALL me back")
        .await;
    assert_eq!(answered.status(), 200);
    let manager = &world.manager;
    let found = inbox(&app, manager, "text=call%20me").await;
    assert_eq!(ids(&found), [world.conversation.as_str()]);
    assert_eq!(ids(&inbox(&app, manager, "text=50%25").await).len(), 0);
    assert_eq!(ids(&inbox(&app, manager, "opted_out=false").await).len(), 2);
    assert_eq!(ids(&inbox(&app, manager, "opted_out=true").await).len(), 0);
    let long_ago = "2001-01-01T00:00:00Z";
    assert!(ids(&inbox(&app, manager, &format!("last_before={long_ago}")).await).is_empty());

    // Every match, to Ann.
    let bulk = app
        .post_as(
            manager,
            "/v1/conversations/bulk-reassign",
            &json!({"filter": {"text": "call me"}, "texter_id": world.ann_id}),
        )
        .await;
    let bulk = json(bulk).await;
    assert_eq!(bulk["selected"], 1);
    assert_eq!(bulk["changed"], 1);
    assert_eq!(
        ids(&inbox(&app, &world.ann, "").await),
        [world.conversation.as_str()]
    );
    // Some by id, released; one that is not there fails alone.
    let missing = uuid::Uuid::now_v7().to_string();
    let bulk = app
        .post_as(
            manager,
            "/v1/conversations/bulk-reassign",
            &json!({"conversation_ids": [other, missing]}),
        )
        .await;
    let bulk = json(bulk).await;
    assert_eq!(bulk["changed"], 1);
    assert_eq!(bulk["failures"][0]["conversation_id"], missing.as_str());
    assert_eq!(bulk["failures"][0]["code"], "not_found");
    assert_eq!(
        ids(&inbox(&app, manager, "holder=pool").await),
        [other.as_str()]
    );
    expect_forbidden(
        app.post_as(
            texter,
            "/v1/conversations/bulk-reassign",
            &json!({"conversation_ids": [world.conversation]}),
        )
        .await,
    )
    .await;
    let neither = app
        .post_as(manager, "/v1/conversations/bulk-reassign", &json!({}))
        .await;
    expect_error(neither, 422, "invalid_request").await;
    app
}
