//! The tenancy walk: every route the router serves (its route table, not a
//! list kept here) is called with another organization's keys of every role
//! on this organization's ids, and with this organization's keys of every
//! role, and the answers are held against the permission table below. A new
//! route, or a new path parameter, fails the walk by name until the table
//! says who may call it and the walk knows what to put in it.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION};
use serde_json::{Value, json};
use textbank_domain::Role;

use crate::helpers::{TestApp, success_json};
use crate::on_both_backends;

use Role::{Admin, Compliance, Integration, Manager, Owner, Texter};

const EVERYONE: &[Role] = &Role::ALL;
/// Every role a person holds (an integration's key reads the event feed
/// instead of conversations).
const PEOPLE: &[Role] = &Role::PEOPLE;
/// Who reads the event feed.
const FEED: &[Role] = &[Owner, Admin, Integration];
/// Owners and admins: carrier, opt-out list, keys that act as a member.
const ADMINS: &[Role] = &[Owner, Admin];
/// Who manages members, lists, campaigns and assignments.
const MANAGERS: &[Role] = &[Owner, Admin, Manager];
/// Who reads lists, metrics and the texters' names.
const READERS: &[Role] = &[Owner, Admin, Manager, Compliance, Integration];
/// Who reads the compliance audit.
const AUDITORS: &[Role] = &[Owner, Admin, Compliance];
/// Who works in conversations and assignments: staff who run campaigns, and
/// the texter (in their own).
const WORKERS: &[Role] = &[Owner, Admin, Manager, Texter];
const TEXTERS: &[Role] = &[Texter];

/// Who may call a route.
#[derive(Debug, Clone, Copy)]
enum Access {
    /// Anyone, without credentials: health, sign-in, invite links (the
    /// token is the credential), the login page, assets.
    Public,
    /// A carrier, by its signature over the request; never a key.
    Signed,
    /// A page: a signed-in session of these roles (others get a 403 page);
    /// a key alone is sent to sign in. Cookie-only, so walked with sessions.
    Page(&'static [Role]),
    /// A bearer key of these roles; any other role gets 403.
    Key(&'static [Role]),
}

/// A request body, with `{name}`s filled from the org's values.
#[derive(Debug, Clone, Copy)]
enum Body {
    None,
    Json(&'static str),
    Csv(&'static str),
}

/// When a route is walked: some calls end what others need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Turn {
    /// In the router's order.
    InOrder,
    /// After those: it ends what they need (a revoked key, released
    /// contacts, an opted-out voter).
    Late,
    /// Last of all: the archived campaign ends what every other call needs.
    Last,
}

/// One row of the permission table, with how the walk calls the route.
#[derive(Debug, Clone, Copy)]
struct Rule {
    method: &'static str,
    path: &'static str,
    access: Access,
    query: &'static str,
    body: Body,
    /// When the walk calls it, among the others.
    turn: Turn,
    /// What the org's owner calls after each of the org's own calls, to
    /// put back what the call changed for the calls after it (method,
    /// path, JSON body).
    undo: Option<(&'static str, &'static str, &'static str)>,
}

const fn rule(method: &'static str, path: &'static str, access: Access) -> Rule {
    Rule {
        method,
        path,
        access,
        query: "",
        body: Body::None,
        turn: Turn::InOrder,
        undo: None,
    }
}

impl Rule {
    const fn query(self, query: &'static str) -> Self {
        Self { query, ..self }
    }
    const fn json(self, json: &'static str) -> Self {
        Self {
            body: Body::Json(json),
            ..self
        }
    }
    const fn csv(self, csv: &'static str) -> Self {
        Self {
            body: Body::Csv(csv),
            ..self
        }
    }
    const fn late(self) -> Self {
        Self {
            turn: Turn::Late,
            ..self
        }
    }
    const fn last(self) -> Self {
        Self {
            turn: Turn::Last,
            ..self
        }
    }
    const fn undo(self, method: &'static str, path: &'static str, json: &'static str) -> Self {
        Self {
            undo: Some((method, path, json)),
            ..self
        }
    }

    /// The body's template ("" for none).
    fn body(&self) -> &'static str {
        match self.body {
            Body::None => "",
            Body::Json(text) | Body::Csv(text) => text,
        }
    }
}

const fn key(method: &'static str, path: &'static str, roles: &'static [Role]) -> Rule {
    rule(method, path, Access::Key(roles))
}

/// The permission table: today's behaviour, route by route. Bodies are
/// valid for the organization whose ids fill them, so that another org's
/// 404 is tenancy, not validation.
const PERMISSIONS: &[Rule] = &[
    // The compliance audit.
    key("GET", "/v1/audit/messages", AUDITORS)
        .query("campaign_id={campaign_id}&texter_id={texter_id}"),
    key("GET", "/v1/audit/messages/{message_id}", AUDITORS),
    key("GET", "/v1/audit/phones/{phone}", AUDITORS),
    key("GET", "/v1/audit/blocked", AUDITORS)
        .query("campaign_id={campaign_id}&texter_id={texter_id}"),
    key("GET", "/v1/audit/export.csv", AUDITORS).query("campaign_id={campaign_id}"),
    key("GET", "/v1/audit/verify", AUDITORS),
    key("GET", "/v1/audit/texters/{texter_id}/cadence", AUDITORS),
    // The event feed.
    key("GET", "/v1/events", FEED).query("after=0&types=MessageSendClicked"),
    key("GET", "/v1/events/stream", FEED).query("after=0"),
    // Metrics.
    key("GET", "/v1/campaigns/{campaign_id}/metrics", READERS),
    key("GET", "/v1/campaigns/{campaign_id}/metrics/texters", READERS),
    key("GET", "/v1/campaigns/{campaign_id}/metrics/timeseries", READERS),
    key("GET", "/v1/metrics/overview", READERS),
    // The inbox: texters see their own conversations, every other role the
    // org's.
    key("GET", "/v1/conversations", PEOPLE)
        .query("campaign_id={campaign_id}&texter_id={texter_id}"),
    key("GET", "/v1/conversations/stream", PEOPLE)
        .query("campaign_id={campaign_id}&texter_id={texter_id}"),
    key("POST", "/v1/conversations/{conversation_id}/read", WORKERS),
    // Handling conversations: staff define tags and hand conversations
    // out; texters tag, escalate and release the ones they hold. Each
    // change that takes the conversation from the texter is put back.
    key("GET", "/v1/tags", PEOPLE),
    key("POST", "/v1/tags", MANAGERS).json(r#"{"name": "Walk {unique}"}"#),
    key("PUT", "/v1/tags/{tag_id}", MANAGERS).json(r#"{"name": "Walked"}"#),
    key("DELETE", "/v1/tags/{tag_id}", MANAGERS).last(),
    key("PUT", "/v1/conversations/{conversation_id}/tags/{tag_id}", WORKERS),
    key("DELETE", "/v1/conversations/{conversation_id}/tags/{tag_id}", WORKERS),
    key("POST", "/v1/conversations/{conversation_id}/escalate", WORKERS)
        .json(r#"{"reason": "walk"}"#)
        .undo("POST", "/v1/conversations/{conversation_id}/resolve", "{}"),
    key("POST", "/v1/conversations/{conversation_id}/resolve", MANAGERS).json("{}"),
    key("POST", "/v1/conversations/{conversation_id}/reassign", MANAGERS)
        .json(r#"{"texter_id": "{texter_id}"}"#),
    key("POST", "/v1/conversations/{conversation_id}/release", MANAGERS).undo(
        "POST",
        "/v1/conversations/{conversation_id}/reassign",
        r#"{"texter_id": "{texter_id}"}"#,
    ),
    key("POST", "/v1/texter/release-conversations", TEXTERS)
        .json(r#"{"campaign_id": "{campaign_id}"}"#)
        .undo(
            "POST",
            "/v1/conversations/{conversation_id}/reassign",
            r#"{"texter_id": "{texter_id}"}"#,
        ),
    key("GET", "/v1/escalations", MANAGERS).query("campaign_id={campaign_id}"),
    key("POST", "/v1/conversations/bulk-reassign", MANAGERS)
        .json(r#"{"conversation_ids": ["{conversation_id}"], "texter_id": "{texter_id}"}"#),
    // Members, keys, sessions and invites.
    key("GET", "/v1/me", EVERYONE),
    key("GET", "/v1/texters", READERS),
    rule("POST", "/v1/sessions", Access::Public)
        .json(r#"{"email": "{email}", "password": "{password}"}"#),
    rule("DELETE", "/v1/sessions/current", Access::Public),
    rule("GET", "/v1/invites/{token}", Access::Public),
    rule("POST", "/v1/invites/{token}", Access::Public).json(r#"{"password": "{password}"}"#),
    // A first invite for a texter: managers may send one too.
    key("POST", "/v1/members/{member_id}/invites", MANAGERS).json("{}"),
    key("POST", "/v1/members", MANAGERS).json(
        r#"{"name": "Walker {unique}", "email": "walker{unique}@example.org", "role": "texter"}"#,
    ),
    key("GET", "/v1/members", MANAGERS),
    // A key that acts as another member: owners and admins only.
    key("POST", "/v1/api-keys", ADMINS)
        .json(r#"{"role": "texter", "member_id": "{member_id}", "label": "walk"}"#),
    key("GET", "/v1/api-keys", MANAGERS),
    key("DELETE", "/v1/api-keys/{key_id}", MANAGERS).late(),
    // Lists.
    key("POST", "/v1/lists", MANAGERS)
        .query("name=Walk&source=walk&consent_basis=opted%20in")
        .csv("first_name,cell\r\nWalker,555-401-0001\r\n"),
    key("GET", "/v1/lists", READERS),
    key("GET", "/v1/lists/{list_id}", READERS),
    key("GET", "/v1/lists/{list_id}/rejections", READERS),
    // Campaigns.
    key("POST", "/v1/campaigns", MANAGERS).json(
        r#"{"name": "Walk", "initial_message": "Hello from the walk. Reply STOP to opt out", "list_ids": ["{list_id}"]}"#,
    ),
    key("GET", "/v1/campaigns", EVERYONE),
    key("GET", "/v1/campaigns/{campaign_id}", EVERYONE),
    key("GET", "/v1/campaigns/{campaign_id}/export.csv", READERS),
    key("PATCH", "/v1/campaigns/{campaign_id}", MANAGERS).json(r#"{"assignment_batch_size": 50}"#),
    key("PUT", "/v1/campaigns/{campaign_id}/script", MANAGERS).json(
        r#"{"initial_message": "Hello again from the walk. Reply STOP to opt out"}"#,
    ),
    key("POST", "/v1/campaigns/{campaign_id}/copy", MANAGERS).json(r#"{"keep_lists": true}"#),
    key("POST", "/v1/campaigns/{campaign_id}/launch", MANAGERS),
    key("POST", "/v1/campaigns/{campaign_id}/pause", MANAGERS),
    key("POST", "/v1/campaigns/{campaign_id}/resume", MANAGERS),
    key("POST", "/v1/campaigns/{campaign_id}/archive", MANAGERS).last(),
    // Removing the carrier ends every send: last of all, after the archive.
    key("DELETE", "/v1/carrier", ADMINS).last(),
    // Assignments: staff assign; a texter asks for work and sees its own.
    key("POST", "/v1/campaigns/{campaign_id}/assignments", MANAGERS)
        .json(r#"{"texter_id": "{texter_id}", "count": 1}"#),
    key("GET", "/v1/campaigns/{campaign_id}/assignments", WORKERS),
    key("POST", "/v1/campaigns/{campaign_id}/assignments/request", TEXTERS).json("{}"),
    key("POST", "/v1/campaigns/{campaign_id}/assignments/release", MANAGERS)
        .json(r#"{"texter_id": "{texter_id}", "count": 1}"#)
        .late(),
    key("POST", "/v1/campaigns/{campaign_id}/assignments/reassign", MANAGERS)
        .json(r#"{"from_texter_id": "{texter_id}", "to_texter_id": "{member_id}", "count": 1}"#)
        .late(),
    // The carrier and the opt-out list.
    key("PUT", "/v1/carrier", ADMINS).json(r#"{"carrier": "sim"}"#),
    key("GET", "/v1/carrier", ADMINS),
    key("POST", "/v1/opt-outs", ADMINS).csv("phone\r\n+15554010009\r\n"),
    key("GET", "/v1/opt-outs", ADMINS),
    // Outbound webhooks: owners and admins.
    key("POST", "/v1/webhooks", ADMINS)
        .json(r#"{"url": "http://127.0.0.1:9/walk", "enabled": false}"#),
    key("GET", "/v1/webhooks", ADMINS),
    key("GET", "/v1/webhooks/{webhook_id}", ADMINS),
    key("PATCH", "/v1/webhooks/{webhook_id}", ADMINS).json(r#"{"description": "walked"}"#),
    key("POST", "/v1/webhooks/{webhook_id}/rotate-secret", ADMINS),
    key("GET", "/v1/webhooks/{webhook_id}/deliveries", ADMINS),
    key(
        "POST",
        "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
        ADMINS,
    ),
    key("POST", "/v1/webhooks/{webhook_id}/ping", ADMINS),
    key("DELETE", "/v1/webhooks/{webhook_id}", ADMINS).last(),
    // Sending: texters click; staff act in conversations too, and reply
    // in them (an escalated one) with a click of their own.
    key("GET", "/v1/texter/queue", TEXTERS).query("campaign_id={campaign_id}"),
    key("POST", "/v1/messages", TEXTERS)
        .json(r#"{"click_token": "{click_token}", "clicked_at": "{now}"}"#),
    key("GET", "/v1/conversations/{conversation_id}", PEOPLE),
    key("POST", "/v1/conversations/{conversation_id}/messages", WORKERS)
        .json(r#"{"body": "Thanks for your time", "clicked_at": "{now}"}"#),
    key("POST", "/v1/conversations/{conversation_id}/opt-out", WORKERS)
        .json(r#"{"send_confirmation": false}"#)
        .late(),
    key("POST", "/v1/conversations/{conversation_id}/answers", WORKERS)
        .json(r#"{"question_id": "support", "answer": "yes"}"#),
    // Web pages: shells whose data come through the API above.
    rule("GET", "/", Access::Public),
    rule("GET", "/login", Access::Public),
    rule("GET", "/invite/{token}", Access::Public),
    rule("GET", "/app", Access::Page(EVERYONE)),
    rule("GET", "/app/{page}", Access::Page(READERS)),
    rule("GET", "/app/campaigns/{campaign_id}", Access::Page(READERS)),
    rule("GET", "/assets/{name}", Access::Public),
    rule("GET", "/docs", Access::Public),
    // Carrier webhooks and operations.
    rule("POST", "/webhooks/twilio/status", Access::Signed),
    rule("POST", "/webhooks/twilio/inbound", Access::Signed),
    rule("POST", "/webhooks/telnyx", Access::Signed),
    rule("GET", "/health", Access::Public),
    rule("GET", "/ready", Access::Public),
    rule("GET", "/metrics", Access::Public),
    rule("GET", "/openapi.json", Access::Public),
];

const PASSWORD: &str = "correct horse battery";

/// Path parameters and body values that are ids of the org's resources:
/// another org's request carrying one must not reach it.
const ID_PARAMETERS: &[&str] = &[
    "campaign_id",
    "click_token",
    "conversation_id",
    "delivery_id",
    "key_id",
    "list_id",
    "member_id",
    "message_id",
    "phone",
    "tag_id",
    "texter_id",
    "token",
    "webhook_id",
];

/// An organization with a member, key and session of every role and one of
/// each resource, every name in it carrying its own `tag`.
struct Org {
    tag: &'static str,
    exchange: u16,
    org_id: String,
    keys: BTreeMap<Role, String>,
    sessions: BTreeMap<Role, String>,
    /// What fills `{name}` in paths, queries and bodies.
    values: BTreeMap<&'static str, String>,
}

impl Org {
    /// Sets up `tag`'s org; its voters' numbers are +1555`exchange`xxxx.
    async fn new(app: &TestApp, tag: &'static str, exchange: u16) -> Org {
        let created = app.app.create_org(&format!("{tag} Org")).await.unwrap();
        let founder = created.owner_key;
        let lower = tag.to_lowercase();
        success_json(
            app.put_as(&founder, "/v1/carrier", &json!({"carrier": "sim"}))
                .await,
        )
        .await;
        let mut keys = BTreeMap::new();
        let mut sessions = BTreeMap::new();
        let mut member_ids = BTreeMap::new();
        for role in Role::PEOPLE {
            let email = format!("{role}@{lower}.example.org");
            let (member_id, key) = app.member_with_key(&founder, &email, role.as_str()).await;
            app.app.set_password(&email, None, PASSWORD).await.unwrap();
            keys.insert(role, key);
            sessions.insert(role, sign_in(app, &email).await);
            member_ids.insert(role, member_id);
        }
        // An integration's key is bound to no member and signs in nowhere.
        let integration = post_ok(
            app,
            &founder,
            "/v1/api-keys",
            json!({"role": "integration", "label": format!("{tag} CRM")}),
        )
        .await;
        keys.insert(Integration, integration["key"].as_str().unwrap().to_owned());
        // A texter with no password yet, for invites and keys that act as
        // them; another whose invite link the walk follows.
        let spare = add_texter(app, &founder, &format!("spare@{lower}.example.org")).await;
        let invitee = add_texter(app, &founder, &format!("invitee@{lower}.example.org")).await;
        let invite = post_ok(
            app,
            &founder,
            &format!(
                "/v1/members/{}/invites",
                invitee["member_id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
        let spare_key = post_ok(
            app,
            &founder,
            "/v1/api-keys",
            json!({"role": "texter", "label": format!("{tag} spare")}),
        )
        .await;
        // Five voters; three assigned to the texter, two left to assign.
        let voters = (0..5).map(|i| format!("{tag}Voter{i},Lee,555-{exchange}-{i:04}\r\n"));
        let csv: String = std::iter::once("first_name,last_name,cell\r\n".to_owned())
            .chain(voters)
            .collect();
        let query = format!("name={tag}%20Precinct&source=voter%20file&consent_basis=opted%20in");
        let list = app.upload(&founder, &query, csv).await;
        let list = success_json(list).await;
        let list_id = list["list_id"].as_str().unwrap().to_owned();
        let campaign = post_ok(
            app,
            &founder,
            "/v1/campaigns",
            json!({
                "name": format!("{tag} GOTV"),
                "initial_message": format!("Hi {{first_name}}, {tag} here. Reply STOP to opt out"),
                "list_ids": [list_id],
                "questions": [{"id": "support", "text": "Supports?", "answers": ["yes", "no"]}],
            }),
        )
        .await;
        let campaign_id = campaign["campaign_id"].as_str().unwrap().to_owned();
        post_ok(
            app,
            &founder,
            &format!("/v1/campaigns/{campaign_id}/launch"),
            json!({}),
        )
        .await;
        let texter_id = member_ids[&Texter].clone();
        post_ok(
            app,
            &founder,
            &format!("/v1/campaigns/{campaign_id}/assignments"),
            json!({"texter_id": texter_id, "count": 3}),
        )
        .await;
        // One message sent makes the conversation; the next contact's click
        // token is left for the walk.
        let queue = success_json(
            app.get_as(
                &keys[&Texter],
                &format!("/v1/texter/queue?campaign_id={campaign_id}&limit=2"),
            )
            .await,
        )
        .await;
        let token = |i: usize| {
            queue["messages"][i]["click_token"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let sent = success_json(
            app.click(&keys[&Texter], &token(0), &format!("{tag}-setup"))
                .await,
        )
        .await;
        // A webhook (disabled: only the walk's calls send) and one delivery.
        let webhook = post_ok(
            app,
            &founder,
            "/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/walk", "enabled": false}),
        )
        .await;
        let webhook_id = webhook["webhook_id"].as_str().unwrap().to_owned();
        let ping = post_ok(
            app,
            &founder,
            &format!("/v1/webhooks/{webhook_id}/ping"),
            json!({}),
        )
        .await;
        let phone = format!("+1555{exchange}0000");
        let callback = post_ok(
            app,
            &founder,
            "/v1/tags",
            json!({"name": format!("{tag} Callback")}),
        )
        .await;
        let values = BTreeMap::from([
            ("campaign_id", campaign_id),
            ("click_token", token(1)),
            (
                "conversation_id",
                sent["conversation_id"].as_str().unwrap().to_owned(),
            ),
            (
                "delivery_id",
                ping["delivery_id"].as_str().unwrap().to_owned(),
            ),
            ("email", format!("compliance@{lower}.example.org")),
            ("key_id", spare_key["key_id"].as_str().unwrap().to_owned()),
            ("list_id", list_id),
            ("member_id", spare["member_id"].as_str().unwrap().to_owned()),
            (
                "message_id",
                sent["message_id"].as_str().unwrap().to_owned(),
            ),
            ("name", "app.js".to_owned()),
            ("page", "campaigns".to_owned()),
            ("password", PASSWORD.to_owned()),
            ("phone", phone),
            ("tag_id", callback["tag_id"].as_str().unwrap().to_owned()),
            ("texter_id", texter_id),
            ("token", invite["invite_token"].as_str().unwrap().to_owned()),
            ("webhook_id", webhook_id),
        ]);
        Org {
            tag,
            exchange,
            org_id: created.org_id.to_string(),
            keys,
            sessions,
            values,
        }
    }

    /// Strings only this org's data contain, in lower case as answers are
    /// compared: its ids, its tag, its voters' numbers.
    fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![
            self.org_id.clone(),
            self.tag.to_lowercase(),
            format!("555{}", self.exchange),
        ];
        secrets.extend(
            ID_PARAMETERS
                .iter()
                .filter_map(|name| self.values.get(name).map(|id| id.to_lowercase())),
        );
        secrets
    }
}

/// The JSON answer of a POST that must succeed.
async fn post_ok(app: &TestApp, key: &str, path: &str, body: Value) -> Value {
    success_json(app.post_as(key, path, &body).await).await
}

/// Adds a texter (with no password or key); the answer's JSON.
async fn add_texter(app: &TestApp, key: &str, email: &str) -> Value {
    let body = json!({"name": "Spare Texter", "email": email, "role": "texter"});
    post_ok(app, key, "/v1/members", body).await
}

/// A session cookie (`name=value`) for `email`.
async fn sign_in(app: &TestApp, email: &str) -> String {
    let response = app
        .client
        .post(app.url("/v1/sessions"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "sign in as {email}");
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// One request of the walk, its `{name}`s filled.
struct Request {
    method: Method,
    /// Path and query.
    target: String,
    body: Option<(&'static str, String)>,
}

impl Request {
    /// `rule`'s request, its path filled from `paths` and its query and
    /// body from `values` (and `unique`, `now`); a `{name}` the walk has no
    /// value for fails the test, naming it and the route.
    fn of(
        rule: &Rule,
        paths: &BTreeMap<&'static str, String>,
        values: &BTreeMap<&'static str, String>,
        unique: usize,
        now: &str,
    ) -> Self {
        let fill = |template: &str, values| fill(template, values, unique, now, rule);
        let mut target = fill(rule.path, paths);
        if !rule.query.is_empty() {
            target = format!("{target}?{}", fill(rule.query, values));
        }
        let body = match rule.body {
            Body::None => None,
            Body::Json(json) => Some(("application/json", fill(json, values))),
            Body::Csv(csv) => Some(("text/csv", fill(csv, values))),
        };
        Request {
            method: rule.method.parse().unwrap(),
            target,
            body,
        }
    }

    /// Does the request mention `text` (an id of the org it is aimed at)?
    fn mentions(&self, text: &str) -> bool {
        let text = text.to_lowercase();
        self.target.to_lowercase().contains(&text)
            || self
                .body
                .as_ref()
                .is_some_and(|(_, body)| body.to_lowercase().contains(&text))
    }

    async fn send(&self, app: &TestApp, credential: Credential<'_>, unique: usize) -> Answer {
        let mut request = app
            .client
            .request(self.method.clone(), app.url(&self.target))
            .header("idempotency-key", format!("walk-{unique}"));
        request = match credential {
            Credential::None => request,
            Credential::Key(key) => request.bearer_auth(key),
            Credential::Session(cookie) => request.header(COOKIE, cookie),
        };
        if let Some((content_type, body)) = &self.body {
            request = request
                .header(CONTENT_TYPE, *content_type)
                .body(body.clone());
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(LOCATION)
            .map(|value| value.to_str().unwrap().to_owned());
        let streams = response
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|value| value.to_str().unwrap().starts_with("text/event-stream"));
        // An event stream never ends: its status is the answer.
        let body = if streams {
            String::new()
        } else {
            response.text().await.unwrap_or_default()
        };
        Answer {
            status,
            location,
            body,
        }
    }
}

#[derive(Clone, Copy)]
enum Credential<'a> {
    None,
    Key(&'a str),
    Session(&'a str),
}

struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

/// `template` with each `{name}` (a lower-case identifier: JSON's own
/// braces stay) replaced by its value.
fn fill(
    template: &str,
    values: &BTreeMap<&'static str, String>,
    unique: usize,
    now: &str,
    rule: &Rule,
) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        rest = &rest[start + 1..];
        let Some(end) = rest.find('}').filter(|&end| {
            end > 0
                && rest[..end]
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
        }) else {
            out.push('{');
            continue;
        };
        let name = &rest[..end];
        match name {
            "unique" => out.push_str(&unique.to_string()),
            "now" => out.push_str(now),
            _ => out.push_str(values.get(name).unwrap_or_else(|| {
                panic!(
                    "{} {}: the walk has no value for {{{name}}}; add one to Org::new",
                    rule.method, rule.path
                )
            })),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The permission table's row for every endpoint of the router, in the
/// walk's order (see [`Turn`]); a route without a row, or a
/// row without a route, fails here by name.
fn rules() -> Vec<&'static Rule> {
    let endpoints = textbank_api::endpoints();
    let served: BTreeSet<(String, &str)> = endpoints
        .iter()
        .map(|endpoint| (endpoint.method.to_string(), endpoint.path))
        .collect();
    let missing: Vec<String> = served
        .iter()
        .filter(|(method, path)| {
            !PERMISSIONS
                .iter()
                .any(|rule| rule.method == method && rule.path == *path)
        })
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from the permission table: {missing:?}"
    );
    let stale: Vec<String> = PERMISSIONS
        .iter()
        .filter(|rule| !served.contains(&(rule.method.to_owned(), rule.path)))
        .map(|rule| format!("{} {}", rule.method, rule.path))
        .collect();
    assert!(
        stale.is_empty(),
        "the permission table names routes the router does not serve: {stale:?}"
    );
    let mut rules: Vec<&Rule> = endpoints
        .iter()
        .filter_map(|endpoint| {
            PERMISSIONS
                .iter()
                .find(|rule| rule.method == endpoint.method.as_str() && rule.path == endpoint.path)
        })
        .collect();
    rules.sort_by_key(|rule| rule.turn);
    rules
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// The walk's state: the server, the running count that makes each
/// request's `{unique}` and idempotency key, and what it found.
struct Walk<'a> {
    app: &'a TestApp,
    now: String,
    unique: usize,
    findings: Vec<String>,
}

impl Walk<'_> {
    fn request(
        &mut self,
        rule: &Rule,
        paths: &BTreeMap<&'static str, String>,
        values: &BTreeMap<&'static str, String>,
    ) -> Request {
        self.unique += 1;
        Request::of(rule, paths, values, self.unique, &self.now)
    }

    async fn send(&self, request: &Request, credential: Credential<'_>) -> Answer {
        request.send(self.app, credential, self.unique).await
    }

    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.findings.push(what());
        }
    }

    /// `other`'s keys and sessions of every role on `org`'s ids: in the
    /// path (`paths` is `org`), or only in the query and body (`paths` is
    /// `other`: `other`'s own resource pointed at `org`'s).
    async fn cross(&mut self, rules: &[&Rule], org: &Org, other: &Org, paths: &Org) {
        let secrets = org.secrets();
        let own_paths = std::ptr::eq(paths, org);
        let unknown = unknown_values();
        let malformed: BTreeMap<&'static str, String> = ID_PARAMETERS
            .iter()
            .map(|&name| (name, "not-an-id%00..%2F%C3%28".to_owned()))
            .collect();
        for rule in rules {
            let path_ids = has_id(rule.path);
            if !own_paths && !(path_ids && (has_id(rule.query) || has_id(rule.body()))) {
                // Nothing of `org`'s would be in the request, or the first
                // pass sent the same one.
                continue;
            }
            for role in Role::ALL {
                let credential = match rule.access {
                    // Nothing of `other`'s to use: no caller.
                    Access::Public | Access::Signed => continue,
                    Access::Page(_) => match other.sessions.get(&role) {
                        Some(session) => Credential::Session(session),
                        None => continue,
                    },
                    Access::Key(_) => Credential::Key(&other.keys[&role]),
                };
                let request = self.request(rule, &paths.values, &org.values);
                let route = format!(
                    "{} {} as {}'s {role}",
                    rule.method, request.target, other.tag
                );
                let answer = self.send(&request, credential).await;
                let status = answer.status;
                self.check(status < 500, || format!("{route}: {status}"));
                let body = answer.body.to_lowercase();
                let leaked: Vec<&String> = secrets
                    .iter()
                    .filter(|secret| !request.mentions(secret) && body.contains(*secret))
                    .collect();
                self.check(leaked.is_empty(), || {
                    format!("{route}: {status} shows {}'s {leaked:?}: {body}", org.tag)
                });
                let mentions_org = ID_PARAMETERS
                    .iter()
                    .filter_map(|name| org.values.get(name))
                    .any(|id| request.mentions(id));
                let fits = match rule.access {
                    // A page checks only the id's shape; what it shows of
                    // the campaign comes through the API, walked here.
                    Access::Page(roles) => page_answer_fits(&answer, roles.contains(&role)),
                    Access::Key(_) if own_paths && path_ids => status == 404 || status == 403,
                    // A write naming another org's resource must not reach
                    // it. A click token is checked as a signature: another
                    // org's is as invalid as a forged one (422).
                    Access::Key(_) if mentions_org && rule.method != "GET" => {
                        matches!(status, 403 | 404 | 422)
                    }
                    // A filter on another org's id only narrows the
                    // caller's own data (nothing of `org`'s shown, above).
                    Access::Key(roles) => {
                        (mentions_org && (status == 404 || status == 403))
                            || key_answer_fits(status, roles.contains(&role))
                    }
                    Access::Public | Access::Signed => true,
                };
                self.check(fits, || format!("{route}: {status}: {body}"));
                if own_paths && path_ids && matches!(rule.access, Access::Key(_)) {
                    // Another org's id answers exactly as one that exists
                    // nowhere: no status, code or message tells them apart.
                    let request = self.request(rule, &unknown, &org.values);
                    let nowhere = self.send(&request, credential).await;
                    self.check(
                        nowhere.status == status && nowhere.body.to_lowercase() == body,
                        || {
                            format!(
                                "{route}: {status} {body}, but an id that exists nowhere gets {} {}",
                                nowhere.status, nowhere.body
                            )
                        },
                    );
                    // Nor does an id that is no id at all break anything.
                    let request = self.request(rule, &malformed, &org.values);
                    let broken = self.send(&request, credential).await;
                    self.check((400..500).contains(&broken.status), || {
                        format!(
                            "{} {} as {}'s {role}: {} {}",
                            rule.method, request.target, other.tag, broken.status, broken.body
                        )
                    });
                }
            }
        }
    }

    /// `org`'s own callers of every role on its own ids: the permission
    /// table.
    async fn own(&mut self, rules: &[&Rule], org: &Org) {
        for rule in rules {
            match rule.access {
                Access::Public | Access::Signed => {
                    let request = self.request(rule, &org.values, &org.values);
                    let answer = self.send(&request, Credential::None).await;
                    let status = answer.status;
                    let fits = match rule.access {
                        Access::Public => (200..400).contains(&status),
                        _ => status == 401 || status == 403,
                    };
                    self.check(fits, || {
                        format!(
                            "{} {} with no caller: {status}: {}",
                            rule.method, request.target, answer.body
                        )
                    });
                }
                Access::Page(roles) | Access::Key(roles) => {
                    for role in Role::ALL {
                        let allowed = roles.contains(&role);
                        let request = self.request(rule, &org.values, &org.values);
                        let (credential, page) = match rule.access {
                            Access::Page(_) => match org.sessions.get(&role) {
                                Some(session) => (Credential::Session(session), true),
                                None => continue,
                            },
                            _ => (Credential::Key(&org.keys[&role]), false),
                        };
                        let answer = self.send(&request, credential).await;
                        if let Some((method, path, body)) = rule.undo {
                            let undo = Rule {
                                body: Body::Json(body),
                                query: "",
                                undo: None,
                                ..key(method, path, MANAGERS)
                            };
                            let request = self.request(&undo, &org.values, &org.values);
                            self.send(&request, Credential::Key(&org.keys[&Owner]))
                                .await;
                        }
                        let fits = if page {
                            page_answer_fits(&answer, allowed)
                        } else {
                            key_answer_fits(answer.status, allowed)
                        };
                        self.check(fits, || {
                            format!(
                                "{} {} as {}'s {role}: {} {:?}: {}",
                                rule.method,
                                request.target,
                                org.tag,
                                answer.status,
                                answer.location,
                                answer.body
                            )
                        });
                    }
                    if matches!(rule.access, Access::Page(_)) {
                        // Pages take sessions only: a key is sent to sign in.
                        let request = self.request(rule, &org.values, &org.values);
                        let answer = self
                            .send(&request, Credential::Key(&org.keys[&Owner]))
                            .await;
                        let to_login = answer
                            .location
                            .as_deref()
                            .is_some_and(|to| to.starts_with("/login"));
                        self.check(to_login, || {
                            format!(
                                "{} {} with a key: {}",
                                rule.method, request.target, answer.status
                            )
                        });
                    }
                }
            }
        }
    }
}

/// Well-formed ids of nothing in any org.
fn unknown_values() -> BTreeMap<&'static str, String> {
    ID_PARAMETERS
        .iter()
        .map(|&name| {
            let value = match name {
                "phone" => "+15559990000".to_owned(),
                _ => uuid::Uuid::now_v7().to_string(),
            };
            (name, value)
        })
        .collect()
}

/// Does a path, query or body template name one of an org's ids?
fn has_id(template: &str) -> bool {
    ID_PARAMETERS
        .iter()
        .any(|name| template.contains(&format!("{{{name}}}")))
}

async fn every_route_keeps_each_organization_to_its_own_data(app: TestApp) -> TestApp {
    let started = std::time::Instant::now();
    let rules = rules();
    let alpha = Org::new(&app, "Alpha", 201).await;
    let bravo = Org::new(&app, "Bravo", 301).await;
    let mut walk = Walk {
        app: &app,
        now: app.now().to_rfc3339(),
        unique: 0,
        findings: Vec::new(),
    };
    // Bravo first, while every resource of Alpha's is still there to reach;
    // then Alpha on its own, which ends some of them (see [`Turn`]).
    walk.cross(&rules, &alpha, &bravo, &alpha).await;
    walk.cross(&rules, &alpha, &bravo, &bravo).await;
    walk.own(&rules, &alpha).await;
    println!(
        "tenancy walk: {} routes, {} requests, {:?}",
        rules.len(),
        walk.unique,
        started.elapsed()
    );
    assert!(
        walk.findings.is_empty(),
        "{} findings:\n{}",
        walk.findings.len(),
        walk.findings.join("\n")
    );
    app
}

/// An allowed role gets its answer (a 409 when an earlier call of the walk
/// already changed the state, e.g. launched the campaign); any other role
/// gets 403.
fn key_answer_fits(status: u16, allowed: bool) -> bool {
    if allowed {
        is_success(status) || status == 409
    } else {
        status == 403
    }
}

/// An allowed role gets the page (or, for `/app`, a redirect to its own
/// start page); any other role a 403 page.
fn page_answer_fits(answer: &Answer, allowed: bool) -> bool {
    if allowed {
        is_success(answer.status)
            || (answer.status == 303
                && answer
                    .location
                    .as_deref()
                    .is_some_and(|to| to.starts_with("/app/")))
    } else {
        answer.status == 403
    }
}

on_both_backends!(spawn = spawn_send_app; every_route_keeps_each_organization_to_its_own_data);
