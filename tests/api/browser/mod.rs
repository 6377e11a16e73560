//! The web app in a real headless Chromium against a server on 127.0.0.1:0:
//! a manager uploads a list, creates, launches and assigns a campaign; a
//! texter sends by click and by Enter (a held key sends once), sees replies
//! arrive live, and an opted-out contact is skipped; the manager's dashboard
//! counts right; the compliance officer finds the click trail. Screenshots
//! of each page go to `artifacts/screenshots/` (not committed). Without
//! Chromium and chromedriver the test says it was skipped; with `CI` set,
//! their absence fails it.

mod webdriver;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use textbank_domain::FixedClock;
use webdriver::{Browser, find_browser};

use crate::helpers::{On, TestApp, spawn_app_with, test_send_settings, weekday_afternoon};

const ENTER: &str = "\u{E007}";
const PASSWORD: &str = "browser-test-password";
const MANAGER: &str = "manager@browser.example.org";
const TEXTER: &str = "texter@browser.example.org";
const COMPLIANCE: &str = "compliance@browser.example.org";
const ADMIN: &str = "admin@browser.example.org";

struct Org {
    org_id: String,
    owner: String,
    texter_id: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_from_upload_to_audit_in_the_browser() {
    let Some((chromium, chromedriver)) = find_browser() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the browser tests: install chromium and chromium-driver"
        );
        eprintln!("skipped: Chromium or chromedriver is not installed");
        return;
    };
    the_whole_flow(chromium, chromedriver).await;
}

async fn the_whole_flow(chromium: PathBuf, chromedriver: PathBuf) {
    // Every delivered message gets a (non-STOP) simulator reply through the
    // signed webhooks; STOPs are texted by the test itself, the same way.
    let mut send = test_send_settings();
    send.sim.reply_rate = 1.0;
    send.sim.opt_out_rate = 0.0;
    let app = spawn_app_with(
        On::Sqlite,
        "browser",
        Some(FixedClock::at(weekday_afternoon())),
        send,
    )
    .await
    .expect("sqlite always runs");
    let org = set_up_org(&app).await;
    let screenshots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("artifacts/screenshots");
    let browser = Browser::start(&chromium, &chromedriver, &screenshots).await;

    let campaign_id = manager_builds_a_campaign(&app, &browser, &org).await;
    let sent = texter_sends_and_answers(&app, &browser, &org, &campaign_id).await;
    manager_reads_the_dashboard(&app, &browser, &org, &campaign_id, &sent).await;
    compliance_finds_the_click_trail(&app, &browser, &sent).await;
    admin_adds_a_webhook(&app, &browser).await;

    let errors: Vec<String> = browser
        .severe_console_errors()
        .await
        .into_iter()
        .filter(|error| error.contains("Uncaught"))
        .collect();
    assert!(errors.is_empty(), "script errors: {errors:?}");
    browser.close().await;
    app.stop().await;
}

/// An org with a simulated carrier and three people who sign in with a
/// password; the list, campaign and assignment are made in the browser.
async fn set_up_org(app: &TestApp) -> Org {
    let created = app.app.create_org("Browser Test Org").await.expect("org");
    let owner = created.owner_key;
    let carrier = app
        .put_as(&owner, "/v1/carrier", &json!({"carrier": "sim"}))
        .await;
    assert_eq!(carrier.status(), 200);
    let mut texter_id = String::new();
    for (name, email, role) in [
        ("Mo Manager", MANAGER, "manager"),
        ("Tess Texter", TEXTER, "texter"),
        ("Cy Compliance", COMPLIANCE, "compliance"),
        ("Ada Admin", ADMIN, "admin"),
    ] {
        let member = app
            .post_as(
                &owner,
                "/v1/members",
                &json!({"name": name, "email": email, "role": role}),
            )
            .await;
        assert_eq!(member.status(), 201);
        let member: Value = member.json().await.unwrap();
        if role == "texter" {
            texter_id = member["member_id"].as_str().unwrap().to_owned();
        }
        app.app
            .set_password(email, None, PASSWORD)
            .await
            .expect("password");
    }
    Org {
        org_id: created.org_id.to_string(),
        owner,
        texter_id,
    }
}

async fn sign_in(app: &TestApp, browser: &Browser, email: &str, lands_on: &str) {
    browser.goto(&app.url("/login")).await;
    browser.fill("#email", email).await;
    browser.fill("#password", PASSWORD).await;
    browser.click_css("#sign-in").await;
    browser
        .wait_until(
            &format!("signed in as {email}, on {lands_on}"),
            &format!("return location.pathname === {lands_on:?};"),
        )
        .await;
}

async fn sign_out(browser: &Browser) {
    browser.click_css("#sign-out").await;
    browser
        .wait_until("signed out", "return location.pathname === '/login';")
        .await;
}

async fn manager_builds_a_campaign(app: &TestApp, browser: &Browser, org: &Org) -> String {
    sign_in(app, browser, MANAGER, "/app/campaigns").await;

    // Upload a list through the file input.
    let folder = tempfile::tempdir().expect("temp dir");
    let csv = folder.path().join("ward3.csv");
    let mut rows = String::from("first_name,last_name,cell,zip\n");
    for i in 0..6 {
        rows.push_str(&format!("Voter{i},Lee,555-201-{i:04},10001\n"));
    }
    rows.push_str("Broken,Row,not-a-phone,10001\n");
    std::fs::write(&csv, rows).unwrap();
    browser.goto(&app.url("/app/lists")).await;
    let file = browser.wait_for("#list-file").await;
    browser
        .type_into(&file, csv.to_str().expect("utf-8 path"))
        .await;
    browser.fill("#list-name", "Ward 3 signups").await;
    browser
        .fill("#list-source", "volunteer signup sheets")
        .await;
    browser.fill("#list-consent", "opted in at events").await;
    browser.click_css("#upload").await;
    let result = browser
        .wait_until(
            "the upload's summary",
            "const r = document.querySelector('#upload-result'); return r && /6/.test(r.textContent) && r.textContent;",
        )
        .await;
    assert!(
        result.as_str().unwrap_or_default().contains('1'),
        "the rejected row is reported: {result}"
    );
    snapshot(browser, "manager-lists").await;

    // Create the campaign with the list, then launch and assign it.
    browser.goto(&app.url("/app/campaigns")).await;
    browser.fill("#campaign-name", "Early vote (browser)").await;
    // The only list comes pre-selected; make sure it is, without toggling.
    browser
        .wait_until(
            "the list is selected",
            "const c = document.querySelector(\"input[name='list_id']\"); \
             if (!c || c.disabled) return false; if (!c.checked) c.click(); return c.checked;",
        )
        .await;
    browser
        .fill(
            "#initial-message",
            "Hi {first_name}, it's {texter_name}. Will you vote early? Reply STOP to opt out",
        )
        .await;
    snapshot(browser, "manager-new-campaign").await;
    browser.click_css("#create-campaign").await;
    let campaign_id = browser
        .wait_until(
            "the new campaign's page",
            "const m = location.pathname.match(/^\\/app\\/campaigns\\/([0-9a-f-]{36})$/); return m && m[1];",
        )
        .await
        .as_str()
        .unwrap()
        .to_owned();
    browser.click_css("#launch").await;
    browser
        .wait_until(
            "the campaign is active",
            "const s = document.querySelector('#campaign-status'); return s && /active/i.test(s.textContent);",
        )
        .await;
    browser.wait_for("#assign-texter").await;
    browser
        .wait_until(
            "the texter can be picked",
            &format!(
                "const s = document.querySelector('#assign-texter'); \
                 if (!s || ![...s.options].some(o => o.value === {id:?})) return false; \
                 s.value = {id:?}; s.dispatchEvent(new Event('change', {{bubbles: true}})); return true;",
                id = org.texter_id
            ),
        )
        .await;
    browser.fill("#assign-count", "6").await;
    browser.click_css("#assign").await;
    let assignments = format!("/v1/campaigns/{campaign_id}/assignments");
    app.eventually(&org.owner, &assignments, |view| {
        view["unassigned"].as_u64() == Some(0)
    })
    .await;
    // Renamed while active.
    browser.click_css("#settings summary").await;
    snapshot(browser, "manager-campaign-settings").await;
    browser
        .fill("#settings-name", "Early vote (browser), final days")
        .await;
    browser.click_css("#save-settings").await;
    browser
        .wait_until(
            "the new name in the heading",
            "return document.querySelector('#campaign-name').textContent === 'Early vote (browser), final days';",
        )
        .await;
    snapshot(browser, "manager-campaign").await;
    // A manager's admin page: texters only.
    browser.goto(&app.url("/app/admin")).await;
    browser.wait_for("table#members tr[data-member-id]").await;
    snapshot(browser, "manager-admin").await;
    sign_out(browser).await;
    campaign_id
}

/// The phones the texter messaged, in order.
struct Sent {
    phones: Vec<String>,
    opted_out_unsent: String,
}

async fn texter_sends_and_answers(
    app: &TestApp,
    browser: &Browser,
    org: &Org,
    campaign_id: &str,
) -> Sent {
    sign_in(app, browser, TEXTER, "/app/send").await;
    let metrics = format!("/v1/campaigns/{campaign_id}/metrics");
    let mut phones = Vec::new();

    // One click, one message.
    phones.push(ready_contact(browser, None).await);
    send_screen_fits_a_phone(browser).await;
    snapshot(browser, "texter-send").await;
    browser.click_css("#send-button").await;
    let next = ready_contact(browser, phones.last()).await;
    messaged_becomes(app, org, &metrics, 1).await;

    // One Enter press, one message.
    phones.push(next);
    browser.keys(&[(true, ENTER), (false, ENTER)], 30).await;
    let next = ready_contact(browser, phones.last()).await;
    messaged_becomes(app, org, &metrics, 2).await;

    // A held-down Enter (auto-repeated key-downs, one key-up) sends once.
    phones.push(next);
    browser
        .keys(
            &[
                (true, ENTER),
                (true, ENTER),
                (true, ENTER),
                (true, ENTER),
                (true, ENTER),
                (false, ENTER),
            ],
            80,
        )
        .await;
    let next = ready_contact(browser, phones.last()).await;
    messaged_becomes(app, org, &metrics, 3).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let figures = app
        .get_as(&org.owner, &metrics)
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(figures["messaged"], 3, "a held key sent more than once");
    assert_eq!(figures["blocked"], 0, "{figures}");
    browser
        .wait_until(
            "the progress line counts three sent",
            "return document.querySelector('#progress').textContent.startsWith('3 sent');",
        )
        .await;

    // The contact on screen texts STOP before the texter clicks: the click
    // is refused, nothing is sent, and the screen moves past them.
    let opted_out_unsent = next;
    let stop = app
        .voter_texts(&org.org_id, &opted_out_unsent, "STOP")
        .await;
    assert_eq!(stop.status(), 200);
    browser.click_css("#send-button").await;
    let after = ready_contact_or_empty(browser, &opted_out_unsent).await;
    // Read at the head of the log: a lagging read model must not hide a
    // text that was sent.
    let head = app.app.events().head_position().await.unwrap();
    let audit = app
        .get_as(
            &org.owner,
            &format!(
                "/v1/audit/messages?phone={}&min_position={head}",
                urlencode(&opted_out_unsent)
            ),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    let clicked_to_them = audit["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|row| row["origin"] == "texter_click")
        .count();
    assert_eq!(
        clicked_to_them, 0,
        "a text went to an opted-out number: {audit}"
    );
    let messaged = app
        .get_as(&org.owner, &format!("{metrics}?min_position={head}"))
        .await
        .json::<Value>()
        .await
        .unwrap()["messaged"]
        .clone();
    if messaged != 3 {
        let all = app
            .get_as(
                &org.owner,
                &format!(
                    "/v1/audit/messages?campaign_id={campaign_id}&limit=100&min_position={head}"
                ),
            )
            .await
            .json::<Value>()
            .await
            .unwrap();
        let clicks: Vec<String> = all["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|row| row["origin"] == "texter_click")
            .map(|row| {
                format!(
                    "{} at {} via {}",
                    row["phone"], row["received_at"], row["user_agent"]
                )
            })
            .collect();
        panic!(
            "messaged {messaged} after the refused click (opted out: {opted_out_unsent}, sent before: {phones:?}); clicks: {clicks:#?}; status: {}",
            browser
                .run(
                    "return document.querySelector('#send-status').textContent;",
                    json!([])
                )
                .await
        );
    }
    assert!(after.as_deref() != Some(opted_out_unsent.as_str()));

    // The inbox: the simulator's replies are there; a new reply and a STOP
    // from a messaged voter appear without reloading the page.
    browser.goto(&app.url("/app/inbox?status=all")).await;
    browser
        .wait_until(
            "the simulator's replies in the inbox",
            "return document.querySelectorAll('#conversation-list li.conversation').length >= 3;",
        )
        .await;
    browser
        .run("window.__noReload = true; return true;", json!([]))
        .await;
    snapshot(browser, "texter-inbox").await;
    let reply = app
        .voter_texts(
            &org.org_id,
            &phones[1],
            "Yes, I will vote early on Saturday",
        )
        .await;
    assert_eq!(reply.status(), 200);
    browser
        .wait_until(
            "the new reply in the list",
            "return window.__noReload && [...document.querySelectorAll('#conversation-list li.conversation')]\
               .some(li => li.textContent.includes('vote early on Saturday'));",
        )
        .await;
    let stop = app.voter_texts(&org.org_id, &phones[0], "stop").await;
    assert_eq!(stop.status(), 200);
    browser
        .wait_until(
            "the opted-out conversation marked",
            "return window.__noReload && document.querySelectorAll('#conversation-list li.conversation.opted-out').length >= 1;",
        )
        .await;
    // Both voters who texted STOP stay opted out: nothing (no simulated
    // answer to a confirmation text) opted them back in. The phone history
    // is read from the recipient's stream, so it is never behind.
    for voter in [&phones[0], &opted_out_unsent] {
        let history = app
            .get_as(
                &org.owner,
                &format!("/v1/audit/phones/{}", urlencode(voter)),
            )
            .await
            .json::<Value>()
            .await
            .unwrap();
        let changes: Vec<&Value> = history["opt_outs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|change| &change["change"])
            .collect();
        assert_eq!(changes, [&json!("opted_out")], "{voter}: {history}");
    }
    browser
        .click_css("#conversation-list li.conversation.opted-out")
        .await;
    browser
        .wait_until(
            "the opted-out thread, without a reply box",
            "const t = document.querySelector('#thread'); \
             return t && t.querySelectorAll('.message').length >= 2 \
               && !(document.querySelector('#reply-send') && document.querySelector('#reply-send').offsetParent);",
        )
        .await;
    snapshot(browser, "texter-thread").await;

    // The texter escalates the early-voting conversation to staff: it
    // leaves the inbox for the staff's escalation queue.
    browser
        .run(
            "[...document.querySelectorAll('#conversation-list li.conversation')]\
               .find(li => li.textContent.includes('vote early on Saturday'))\
               .querySelector('.conversation-open').click(); return true;",
            json!([]),
        )
        .await;
    browser.wait_for("#escalate-reason").await;
    browser
        .fill("#escalate-reason", "asks where to vote early")
        .await;
    browser.click_css("#escalate-button").await;
    browser
        .wait_until(
            "the escalated conversation gone from the inbox",
            "return ![...document.querySelectorAll('#conversation-list li.conversation')]\
               .some(li => li.textContent.includes('vote early on Saturday'));",
        )
        .await;
    let queue = app
        .eventually(&org.owner, "/v1/escalations", |queue| {
            queue["conversations"]
                .as_array()
                .is_some_and(|rows| !rows.is_empty())
        })
        .await;
    assert_eq!(queue["conversations"][0]["phone"], phones[1].as_str());
    assert_eq!(
        queue["conversations"][0]["escalation_reason"],
        "asks where to vote early"
    );
    sign_out(browser).await;
    Sent {
        phones,
        opted_out_unsent,
    }
}

async fn manager_reads_the_dashboard(
    app: &TestApp,
    browser: &Browser,
    org: &Org,
    campaign_id: &str,
    sent: &Sent,
) {
    let metrics = format!("/v1/campaigns/{campaign_id}/metrics");
    let figures = app
        .eventually(&org.owner, &metrics, |figures| {
            figures["opted_out"] == 1 && figures["replied"] == 3
        })
        .await;
    assert_eq!(figures["messaged"], sent.phones.len());
    sign_in(app, browser, MANAGER, "/app/campaigns").await;
    browser
        .goto(&app.url(&format!("/app/campaigns/{campaign_id}")))
        .await;
    for (metric, expected) in [("messaged", "3"), ("replied", "3"), ("opted_out", "1")] {
        browser
            .wait_until(
                &format!("the dashboard shows {metric} = {expected}"),
                &format!(
                    "const m = document.querySelector('[data-metric=\"{metric}\"]'); \
                     return m && m.textContent.trim().replace(/[^0-9]/g, '') === '{expected}';"
                ),
            )
            .await;
    }
    snapshot(browser, "manager-dashboard").await;
    // Archiving cannot be undone: the page asks again, and Cancel keeps it.
    browser.click_css("#archive").await;
    browser.click_css("#cancel-archive").await;
    assert_eq!(
        browser
            .run(
                "return document.querySelector('#campaign-status').textContent;",
                json!([])
            )
            .await,
        "active"
    );
    browser.click_css("#archive").await;
    browser.click_css("#confirm-archive").await;
    browser
        .wait_until(
            "the campaign is archived",
            "const s = document.querySelector('#campaign-status'); return s && s.textContent === 'archived';",
        )
        .await;
    sign_out(browser).await;
}

async fn compliance_finds_the_click_trail(app: &TestApp, browser: &Browser, sent: &Sent) {
    sign_in(app, browser, COMPLIANCE, "/app/compliance").await;
    browser.fill("#filter-phone", &sent.phones[2]).await;
    browser.click_css("#search").await;
    // The page lists every message when it opens; wait for the search's
    // own rows, so the row clicked is that phone's.
    browser
        .wait_until(
            "only the searched phone's messages listed",
            &format!(
                "const rows = [...document.querySelectorAll('#results tr[data-message-id]')]; \
                 return rows.length > 0 && rows.every(r => r.cells[2].textContent === {phone:?});",
                phone = sent.phones[2]
            ),
        )
        .await;
    browser.click_css("#results tr[data-message-id]").await;
    let trail = browser
        .wait_until(
            "the click trail",
            "const t = document.querySelector('#trail'); \
             return t && t.querySelectorAll('.trail-event').length >= 2 && t.textContent;",
        )
        .await;
    let trail = trail.as_str().unwrap_or_default();
    assert!(trail.contains("MessageSendClicked"), "{trail}");
    assert!(
        !trail.contains(&sent.opted_out_unsent),
        "another number's trail"
    );
    snapshot(browser, "compliance-trail").await;
    sign_out(browser).await;
}

/// Waits until the send screen shows a contact other than `previous`, ready
/// to send; its phone.
/// An admin subscribes a receiver, sees its secret once, reads the
/// deliveries and sends one again.
async fn admin_adds_a_webhook(app: &TestApp, browser: &Browser) {
    let router = axum::Router::new().route("/hook", axum::routing::post(|| async { "taken" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    sign_in(app, browser, ADMIN, "/app/campaigns").await;
    browser.goto(&app.url("/app/admin")).await;
    browser.wait_for("#add-webhook").await;
    browser.fill("#webhook-url", &receiver).await;
    browser
        .fill("#webhook-types", "OptOutRecorded, WebhookSubscribed")
        .await;
    browser.click_css("#add-webhook button[type=submit]").await;
    let secret = browser
        .wait_until(
            "the secret, shown once",
            "const v = document.querySelector('#webhook-secret-value'); return v && v.value.startsWith('whsec_') ? v.value : null;",
        )
        .await;
    assert!(secret.as_str().unwrap().starts_with("whsec_"));
    browser.wait_for("table#webhooks tr[data-webhook-id]").await;
    snapshot(browser, "admin-webhooks").await;
    browser
        .click_css("button[aria-label^='Show deliveries of']")
        .await;
    // The subscription's own record arrives first.
    browser
        .wait_until(
            "a delivery",
            "return document.querySelector('table#deliveries tr[data-delivery-id]') !== null || (document.querySelector(\"button[aria-label^='Show deliveries of']\").click(), false);",
        )
        .await;
    browser
        .click_css("table#deliveries button[aria-label^='Send delivery']")
        .await;
    browser
        .wait_until(
            "sent again",
            "return (document.getElementById('flash') || {}).textContent.includes('Delivered');",
        )
        .await;
    snapshot(browser, "admin-webhook-deliveries").await;
    sign_out(browser).await;
}

async fn ready_contact(browser: &Browser, previous: Option<&String>) -> String {
    let previous = previous.cloned().unwrap_or_default();
    browser
        .wait_until(
            "the next contact, ready to send",
            &format!(
                "const card = document.querySelector('#contact-card'); \
                 const button = document.querySelector('#send-button'); \
                 if (!card || !button || button.disabled || card.dataset.state !== 'ready') return false; \
                 return card.dataset.contactPhone !== {previous:?} && card.dataset.contactPhone;"
            ),
        )
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

/// Like [`ready_contact`], but an emptied queue is an answer too (`None`).
async fn ready_contact_or_empty(browser: &Browser, previous: &str) -> Option<String> {
    let answer = browser
        .wait_until(
            "the screen moved past the opted-out contact",
            &format!(
                "const card = document.querySelector('#contact-card'); \
                 if (!card) return false; \
                 if (card.dataset.state === 'empty') return 'empty'; \
                 const button = document.querySelector('#send-button'); \
                 if (card.dataset.state !== 'ready' || !button || button.disabled) return false; \
                 return card.dataset.contactPhone !== {previous:?} && card.dataset.contactPhone;"
            ),
        )
        .await;
    answer
        .as_str()
        .filter(|phone| *phone != "empty")
        .map(str::to_owned)
}

async fn messaged_becomes(app: &TestApp, org: &Org, metrics: &str, count: u64) {
    app.eventually(&org.owner, metrics, |figures| {
        figures["messaged"].as_u64() == Some(count)
    })
    .await;
}

fn urlencode(phone: &str) -> String {
    phone.replace('+', "%2B")
}

/// A screenshot of the page, after checking that every visible control has
/// an accessible name (a label, `aria-label`/`aria-labelledby`, or text).
async fn snapshot(browser: &Browser, name: &str) {
    let unnamed = browser
        .run(
            "return [...document.querySelectorAll('input, select, textarea, button')]\
               .filter(e => e.type !== 'hidden' && e.offsetParent !== null)\
               .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')\
                 && !e.getAttribute('aria-labelledby') && !(e.tagName === 'BUTTON' && e.textContent.trim()))\
               .map(e => e.outerHTML.slice(0, 120));",
            json!([]),
        )
        .await;
    assert_eq!(
        unnamed,
        json!([]),
        "controls without an accessible name on {name}"
    );
    let leaked = browser
        .run(
            "return (document.body.innerText.match(/null|undefined|NaN|\\[object Object\\]/) || [''])[0];",
            json!([]),
        )
        .await;
    assert_eq!(
        leaked,
        json!(""),
        "a script printed a missing value on {name}"
    );
    browser.screenshot(name).await;
}

/// The send screen at a phone's width: the contact and the Send button fit
/// without sideways scrolling.
async fn send_screen_fits_a_phone(browser: &Browser) {
    browser.resize(375, 740).await;
    browser
        .wait_until(
            "the send screen fits 375 px",
            "const b = document.querySelector('#send-button'); \
             return b && b.getBoundingClientRect().right <= window.innerWidth \
               && document.documentElement.scrollWidth <= window.innerWidth;",
        )
        .await;
    snapshot(browser, "texter-send-phone").await;
    browser.resize(1280, 900).await;
}
