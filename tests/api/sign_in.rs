//! Web sign-in: sessions, CSRF, invites, the login rate limit, page access and the demo.
//!
//! Every server here runs on a fixed clock (see `spawn_send_app`), so session
//! and invite expiry can be reached by moving it, and the demo's queue does
//! not depend on the hour the tests run.

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

use crate::cli::{BIN, org_created_by_cli, scratch_path, serve, stop_cleanly};
use crate::helpers::{
    TestApp, expect_conflict, expect_error, expect_forbidden, expect_invalid_request,
    expect_not_found, expect_unauthenticated, expect_unsupported_media_type, item, json, sent,
};

crate::on_both_backends!(spawn = spawn_send_app;
    a_member_with_a_password_signs_in_and_the_cookie_authenticates_as_them,
    a_wrong_password_and_an_unknown_email_get_the_same_401,
    five_failed_sign_ins_lock_the_account_even_for_the_right_password,
    unknown_emails_lock_like_real_ones_and_an_address_spraying_accounts_locks,
    a_session_change_needs_the_csrf_token_and_api_keys_do_not,
    a_texter_session_sends_and_reads_like_the_texters_key,
    signing_out_ends_the_session_and_clears_the_cookie,
    a_session_expires_twelve_hours_after_sign_in,
    an_invite_link_sets_the_password_once_and_signs_in,
    a_weak_password_is_refused_and_the_invite_still_works,
    an_invite_accepted_twice_at_once_sets_one_password,
    an_invite_expires_after_seventy_two_hours,
    only_those_who_may_grant_a_members_role_may_invite_them,
    a_password_reset_is_for_owners_admins_and_the_member_and_ends_their_sessions,
    an_email_signs_in_to_one_org_only,
    pages_without_a_session_redirect_to_sign_in_and_back,
    the_app_sends_each_role_to_its_start_page,
    a_page_the_role_cannot_use_is_403_html_and_unknown_pages_are_404,
    pages_carry_security_headers_the_csrf_token_and_the_role,
    names_are_html_escaped_in_pages,
    assets_are_served_with_their_type_and_nosniff,
    the_demo_has_four_sign_ins_and_a_launched_campaign_for_its_texter,
    the_demos_texter_has_something_to_send_at_every_hour_some_us_zone_is_open,
    seeding_the_demo_again_renews_the_passwords_and_creates_nothing_new,
    the_demo_never_mixes_with_another_org,
);

/// A password that meets the policy (10+ characters, not the email).
const PASSWORD: &str = "correct horse battery";

/// A browser's view of one session: the cookie to send back and the CSRF
/// token the sign-in answer carried.
struct Session {
    /// `textbank_session=tbs_…`, as a `Cookie` header.
    cookie: String,
    csrf: String,
    body: Value,
}

impl Session {
    /// A POST from this session's pages: its cookie and its CSRF token.
    async fn post(&self, app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
        post_with(app, &self.cookie, Some(&self.csrf), path, body).await
    }
}

/// The `name=value` pair of a response's session `Set-Cookie`, and the whole
/// header.
fn set_cookie(response: &reqwest::Response) -> (String, String) {
    let header = response
        .headers()
        .get(SET_COOKIE)
        .expect("a Set-Cookie header")
        .to_str()
        .unwrap()
        .to_owned();
    let pair = header.split(';').next().unwrap().trim().to_owned();
    assert!(pair.starts_with("textbank_session="), "{header}");
    (pair, header)
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    sent(
        app.client
            .post(app.url("/v1/sessions"))
            .json(&json!({"email": email, "password": password})),
    )
    .await
}

/// Signs in, checking that it worked; the session it opened.
async fn signed_in(app: &TestApp, email: &str, password: &str) -> Session {
    session_of(sign_in(app, email, password).await).await
}

/// The session a 201 sign-in (or accepted invite) answer opened.
async fn session_of(response: reqwest::Response) -> Session {
    assert_eq!(response.status(), 201);
    let (cookie, _) = set_cookie(&response);
    let body = json(response).await;
    Session {
        cookie,
        csrf: body["csrf_token"]
            .as_str()
            .expect("a csrf_token")
            .to_owned(),
        body,
    }
}

/// Adds a member (as `owner`), sets their password and signs them in.
async fn member_signed_in(
    app: &TestApp,
    owner: &str,
    name: &str,
    email: &str,
    role: &str,
) -> (String, Session) {
    let added = app
        .post_as(
            owner,
            "/v1/members",
            &json!({"name": name, "email": email, "role": role}),
        )
        .await;
    assert_eq!(added.status(), 201);
    let member_id = json(added).await["member_id"].as_str().unwrap().to_owned();
    app.app
        .set_password(email, None, PASSWORD)
        .await
        .expect("set password");
    (member_id, signed_in(app, email, PASSWORD).await)
}

/// `method path` as a browser sends it: with `cookie` and, when given, an
/// `X-CSRF-Token`.
fn from_browser(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
) -> RequestBuilder {
    let request = app
        .client
        .request(method, app.url(path))
        .header(COOKIE, cookie);
    match csrf {
        Some(csrf) => request.header("x-csrf-token", csrf),
        None => request,
    }
}

async fn get_with(app: &TestApp, cookie: &str, path: &str) -> reqwest::Response {
    sent(from_browser(app, Method::GET, path, cookie, None)).await
}

/// A POST with the session cookie and, when given, an `X-CSRF-Token`.
async fn post_with(
    app: &TestApp,
    cookie: &str,
    csrf: Option<&str>,
    path: &str,
    body: &Value,
) -> reqwest::Response {
    sent(from_browser(app, Method::POST, path, cookie, csrf).json(body)).await
}

/// A sign-out (`DELETE /v1/sessions/current`) from a browser.
async fn sign_out(app: &TestApp, cookie: &str, csrf: Option<&str>) -> reqwest::Response {
    let path = "/v1/sessions/current";
    sent(from_browser(app, Method::DELETE, path, cookie, csrf)).await
}

async fn member_emails(app: &TestApp, owner: &str) -> Vec<String> {
    let members = app.get_ok(owner, "/v1/members").await;
    let mut emails: Vec<String> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|member| member["email"].as_str().unwrap().to_owned())
        .collect();
    emails.sort();
    emails
}

fn fixed_clock(app: &TestApp) -> &textbank_domain::FixedClock {
    app.clock.as_ref().expect("a server on a fixed clock")
}

async fn a_member_with_a_password_signs_in_and_the_cookie_authenticates_as_them(
    app: TestApp,
) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    let added = app
        .post_ok(
            &owner,
            "/v1/members",
            &json!({"name": "Ana Ruiz", "email": "ana@example.org", "role": "manager"}),
        )
        .await;
    app.app
        .set_password("ana@example.org", None, PASSWORD)
        .await
        .unwrap();

    // The email is matched without regard to case or surrounding spaces.
    let response = sign_in(&app, " Ana@Example.ORG ", PASSWORD).await;
    assert_eq!(response.status(), 201);
    let (cookie, header) = set_cookie(&response);
    let secret = cookie.strip_prefix("textbank_session=").unwrap().to_owned();
    assert!(secret.starts_with("tbs_") && secret.len() > 40, "{secret}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(
            header.split(';').any(|part| part.trim() == attribute),
            "{attribute} missing from {header}"
        );
    }
    // No public URL is configured, so the server is not behind HTTPS.
    assert!(!header.contains("Secure"), "{header}");
    let text = response.text().await.unwrap();
    assert!(
        !text.contains(&secret),
        "the body never carries the cookie: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["role"], "manager");
    assert_eq!(body["member_id"], added["member_id"]);
    assert_eq!(body["email"], "ana@example.org");
    assert_eq!(body["org_name"], "Rivera for Council");
    assert!(body["org_id"].is_string());
    assert!(body["expires_at"].is_string());
    let csrf = body["csrf_token"].as_str().unwrap();
    assert_eq!(csrf.len(), 32, "{csrf}");

    let me = get_with(&app, &cookie, "/v1/me").await;
    assert_eq!(me.status(), 200);
    let me = json(me).await;
    assert_eq!(me["role"], "manager");
    assert_eq!(me["org_id"], body["org_id"]);
    assert_eq!(me["org_name"], "Rivera for Council");
    assert_eq!(me["member"]["member_id"], added["member_id"]);
    assert_eq!(me["member"]["email"], "ana@example.org");
    // The session acts with the member's role: a manager may not read the
    // audit (ReadAudit), exactly as with a key bound to them.
    expect_forbidden(get_with(&app, &cookie, "/v1/audit/messages").await).await;

    // A second sign-in is a second session with its own cookie and token.
    let other = signed_in(&app, "ana@example.org", PASSWORD).await;
    assert_ne!(other.cookie, cookie);
    assert_ne!(other.csrf, csrf);
    // A made-up or malformed cookie authenticates nobody.
    for bogus in [
        format!("textbank_session=tbs_{}", "0".repeat(48)),
        "textbank_session=nonsense".to_owned(),
    ] {
        expect_unauthenticated(get_with(&app, &bogus, "/v1/me").await).await;
    }
    app
}

async fn a_wrong_password_and_an_unknown_email_get_the_same_401(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    app.member_with_key(&owner, "ana@example.org", "texter")
        .await;
    app.member_with_key(&owner, "ben@example.org", "texter")
        .await;
    app.app
        .set_password("ana@example.org", None, PASSWORD)
        .await
        .unwrap();

    let wrong = sign_in(&app, "ana@example.org", "correct horse batterY").await;
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    let wrong = expect_unauthenticated(wrong).await;
    let unknown = sign_in(&app, "nobody@example.org", PASSWORD).await;
    assert!(unknown.headers().get(SET_COOKIE).is_none());
    let unknown = expect_unauthenticated(unknown).await;
    // A member who never set a password looks like anyone else.
    let no_password =
        expect_unauthenticated(sign_in(&app, "ben@example.org", PASSWORD).await).await;
    assert_eq!(wrong, unknown);
    assert_eq!(wrong, no_password);
    assert!(!wrong.contains("ana@"), "{wrong}");

    // Malformed bodies are refused before any password is checked.
    let missing = sent(
        app.client
            .post(app.url("/v1/sessions"))
            .json(&json!({"email": "ana@example.org"})),
    )
    .await;
    expect_invalid_request(missing).await;
    let extra = sent(
        app.client
            .post(app.url("/v1/sessions"))
            .json(&json!({"email": "ana@example.org", "password": PASSWORD, "role": "owner"})),
    )
    .await;
    expect_invalid_request(extra).await;
    // Another site's plain form cannot sign a browser in (login CSRF): only
    // JSON is accepted, which a cross-site form cannot send.
    let form = sent(
        app.client
            .post(app.url("/v1/sessions"))
            .form(&[("email", "ana@example.org"), ("password", PASSWORD)]),
    )
    .await;
    assert!(form.headers().get(SET_COOKIE).is_none());
    expect_unsupported_media_type(form).await;
    // The right password still works after those failures.
    signed_in(&app, "ana@example.org", PASSWORD).await;
    app
}

async fn five_failed_sign_ins_lock_the_account_even_for_the_right_password(
    app: TestApp,
) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    for email in ["ana@example.org", "ben@example.org"] {
        app.member_with_key(&owner, email, "texter").await;
        app.app.set_password(email, None, PASSWORD).await.unwrap();
    }
    for _ in 0..5 {
        expect_unauthenticated(sign_in(&app, "ana@example.org", "not the password").await).await;
    }
    for password in ["not the password", PASSWORD] {
        // Counted per account, whatever case the email is typed in.
        let locked = sign_in(&app, "ANA@example.org", password).await;
        let retry_after: u64 = locked
            .headers()
            .get("retry-after")
            .expect("a Retry-After header")
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (1..=15 * 60).contains(&retry_after),
            "retry after {retry_after}"
        );
        assert!(locked.headers().get(SET_COOKIE).is_none());
        let status = locked.status();
        let body = json(locked).await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(body["error"]["code"], "too_many_attempts", "{body}");
        assert_eq!(body["error"]["retry_after_secs"], retry_after);
    }
    // Another account from the same address is not locked by ana's failures.
    signed_in(&app, "ben@example.org", PASSWORD).await;
    app
}

async fn unknown_emails_lock_like_real_ones_and_an_address_spraying_accounts_locks(
    app: TestApp,
) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    app.member_with_key(&owner, "ana@example.org", "texter")
        .await;
    app.app
        .set_password("ana@example.org", None, PASSWORD)
        .await
        .unwrap();
    // Locking out an unknown email too, so a 429 does not reveal who has
    // an account.
    for _ in 0..5 {
        expect_unauthenticated(sign_in(&app, "nobody@example.org", PASSWORD).await).await;
    }
    expect_error(
        sign_in(&app, "nobody@example.org", PASSWORD).await,
        429,
        "too_many_attempts",
    )
    .await;
    // Twenty failures from one address over many accounts lock the address
    // out, even for an account of its own with the right password. (Five
    // were made above; checks of locked accounts are not failures.)
    for n in 0..15 {
        expect_unauthenticated(sign_in(&app, &format!("guess{n}@example.org"), PASSWORD).await)
            .await;
    }
    let locked = sign_in(&app, "ana@example.org", PASSWORD).await;
    assert!(locked.headers().contains_key("retry-after"));
    expect_error(locked, 429, "too_many_attempts").await;
    app
}

async fn a_session_change_needs_the_csrf_token_and_api_keys_do_not(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    let (_, admin) = member_signed_in(&app, &owner, "Ada Admin", "ada@example.org", "admin").await;
    let before = member_emails(&app, &owner).await;
    let new_member = |email: &str| json!({"name": "Cal", "email": email, "role": "texter"});

    // Reading needs no token.
    assert_eq!(
        get_with(&app, &admin.cookie, "/v1/members").await.status(),
        200
    );
    let missing = post_with(
        &app,
        &admin.cookie,
        None,
        "/v1/members",
        &new_member("cal@example.org"),
    )
    .await;
    let message = expect_error(missing, 403, "csrf_failed").await;
    assert!(message.contains("X-CSRF-Token"), "{message}");
    let other_session = signed_in(&app, "ada@example.org", PASSWORD).await;
    for wrong in [
        "",
        "0123456789abcdef0123456789abcdef",
        &admin.csrf[..31],
        // A token is bound to its session: another session's does not do.
        other_session.csrf.as_str(),
    ] {
        let refused = post_with(
            &app,
            &admin.cookie,
            Some(wrong),
            "/v1/members",
            &new_member("cal@example.org"),
        )
        .await;
        expect_error(refused, 403, "csrf_failed").await;
    }
    assert_eq!(
        member_emails(&app, &owner).await,
        before,
        "nothing was added"
    );

    let accepted = admin
        .post(&app, "/v1/members", &new_member("cal@example.org"))
        .await;
    assert_eq!(accepted.status(), 201);
    // Other unsafe methods are checked too.
    let path = "/v1/api-keys/00000000-0000-0000-0000-000000000000";
    let delete = sent(from_browser(
        &app,
        Method::DELETE,
        path,
        &admin.cookie,
        None,
    ))
    .await;
    expect_error(delete, 403, "csrf_failed").await;

    // A bearer key is not sent by browsers on their own: no token needed.
    let by_key = app
        .post_as(&owner, "/v1/members", &new_member("dee@example.org"))
        .await;
    assert_eq!(by_key.status(), 201);
    let mut expected = before.clone();
    expected.extend(["cal@example.org".to_owned(), "dee@example.org".to_owned()]);
    expected.sort();
    assert_eq!(member_emails(&app, &owner).await, expected);
    app
}

/// A click sent with a session cookie, and the CSRF token when given.
async fn click_with(
    app: &TestApp,
    session: &Session,
    csrf: Option<&str>,
    token: &str,
) -> reqwest::Response {
    let body = json!({"click_token": token, "clicked_at": crate::helpers::weekday_afternoon()});
    let request = from_browser(app, Method::POST, "/v1/messages", &session.cookie, csrf);
    sent(
        request
            .header("idempotency-key", "session-click-1")
            .json(&body),
    )
    .await
}

async fn a_texter_session_sends_and_reads_like_the_texters_key(app: TestApp) -> TestApp {
    let fixture = app.send_fixture(2).await;
    app.app
        .set_password("texter@example.org", None, PASSWORD)
        .await
        .unwrap();
    let texter = signed_in(&app, "texter@example.org", PASSWORD).await;
    assert_eq!(texter.body["member_id"], fixture.texter_id);
    let queue_path = format!(
        "/v1/texter/queue?campaign_id={}&limit=1",
        fixture.campaign_id
    );
    let queue = json(get_with(&app, &texter.cookie, &queue_path).await).await;
    assert_eq!(queue["remaining"], 2, "{queue}");
    let token = queue["messages"][0]["click_token"].as_str().unwrap();

    expect_error(
        click_with(&app, &texter, None, token).await,
        403,
        "csrf_failed",
    )
    .await;
    let queue = json(get_with(&app, &texter.cookie, &queue_path).await).await;
    assert_eq!(queue["remaining"], 2, "nothing was sent: {queue}");

    let sent = click_with(&app, &texter, Some(&texter.csrf), token).await;
    assert_eq!(sent.status(), 202);
    let sent = json(sent).await;
    let conversation_id = sent["conversation_id"].as_str().unwrap();
    let queue = json(get_with(&app, &texter.cookie, &queue_path).await).await;
    assert_eq!(queue["remaining"], 1, "{queue}");
    // The message is the texter's: their key sees it in their inbox.
    let inbox = app
        .eventually(&fixture.texter, "/v1/conversations", |inbox| {
            inbox["conversations"]
                .as_array()
                .is_some_and(|list| list.len() == 1)
        })
        .await;
    assert_eq!(
        inbox["conversations"][0]["conversation_id"],
        conversation_id
    );

    let read_path = format!("/v1/conversations/{conversation_id}/read");
    expect_error(
        post_with(&app, &texter.cookie, None, &read_path, &json!({})).await,
        403,
        "csrf_failed",
    )
    .await;
    let read = texter.post(&app, &read_path, &json!({})).await;
    assert_eq!(read.status(), 200);
    app
}

async fn signing_out_ends_the_session_and_clears_the_cookie(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    let (_, session) =
        member_signed_in(&app, &owner, "Tess Texter", "tess@example.org", "texter").await;
    let other = signed_in(&app, "tess@example.org", PASSWORD).await;
    assert_eq!(
        get_with(&app, &session.cookie, "/v1/me").await.status(),
        200
    );

    // Like any change made with the cookie, it needs the CSRF token: another
    // site must not sign people out.
    let forged = sign_out(&app, &session.cookie, None).await;
    expect_error(forged, 403, "csrf_failed").await;
    assert_eq!(
        get_with(&app, &session.cookie, "/v1/me").await.status(),
        200
    );
    let out = sign_out(&app, &session.cookie, Some(&session.csrf)).await;
    assert_eq!(out.status(), 204);
    let (cleared, header) = set_cookie(&out);
    assert_eq!(cleared, "textbank_session=");
    assert!(
        header.split(';').any(|part| part.trim() == "Max-Age=0"),
        "{header}"
    );
    assert!(header.contains("HttpOnly") && header.contains("Path=/"));

    expect_unauthenticated(get_with(&app, &session.cookie, "/v1/me").await).await;
    let page = get_with(&app, &session.cookie, "/app/send").await;
    assert_eq!(page.status(), 303);
    // Only that session ended: the member's other browser stays signed in.
    assert_eq!(get_with(&app, &other.cookie, "/v1/me").await.status(), 200);
    // Signing out again, or without a session, is harmless.
    for cookie in [session.cookie.as_str(), ""] {
        let again = sign_out(&app, cookie, Some(&session.csrf)).await;
        assert_eq!(again.status(), 204);
    }
    app
}

async fn a_session_expires_twelve_hours_after_sign_in(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    let (_, session) =
        member_signed_in(&app, &owner, "Tess Texter", "tess@example.org", "texter").await;
    let expires_at: chrono::DateTime<chrono::Utc> = session.body["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        expires_at,
        crate::helpers::weekday_afternoon() + chrono::Duration::hours(12)
    );

    let clock = fixed_clock(&app);
    clock.advance(chrono::Duration::hours(11) + chrono::Duration::minutes(59));
    assert_eq!(
        get_with(&app, &session.cookie, "/v1/me").await.status(),
        200
    );
    assert_eq!(
        get_with(&app, &session.cookie, "/app/send").await.status(),
        200
    );
    clock.advance(chrono::Duration::minutes(2));
    let message = expect_unauthenticated(get_with(&app, &session.cookie, "/v1/me").await).await;
    assert!(message.contains("expired"), "{message}");
    let page = get_with(&app, &session.cookie, "/app/send").await;
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()[LOCATION], "/login?next=/app/send");
    // Signing in again opens a fresh session.
    let fresh = signed_in(&app, "tess@example.org", PASSWORD).await;
    assert_eq!(get_with(&app, &fresh.cookie, "/v1/me").await.status(), 200);
    app
}

/// Creates an invite for `member_id` with `key`; the answer's JSON.
async fn invite(app: &TestApp, key: &str, member_id: &str) -> Value {
    let invite = app
        .post_as(key, &format!("/v1/members/{member_id}/invites"), &json!({}))
        .await;
    assert_eq!(invite.status(), 201);
    json(invite).await
}

async fn accept(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    sent(
        app.client
            .post(app.url(&format!("/v1/invites/{token}")))
            .json(&json!({"password": password})),
    )
    .await
}

async fn an_invite_link_sets_the_password_once_and_signs_in(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    let admin = app.member_key(&owner, "ada@example.org", "admin").await;
    let added = app
        .post_ok(
            &admin,
            "/v1/members",
            &json!({"name": "Tess Texter", "email": "tess@example.org", "role": "texter"}),
        )
        .await;
    let member_id = added["member_id"].as_str().unwrap();

    let created = invite(&app, &admin, member_id).await;
    let token = created["invite_token"].as_str().unwrap();
    assert!(token.starts_with("tbi_"), "{token}");
    // A link to this server's invite page (its public URL is its address).
    assert_eq!(created["invite_url"], app.url(&format!("/invite/{token}")));
    assert_eq!(created["member_id"], member_id);
    let expires_at: chrono::DateTime<chrono::Utc> =
        created["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        expires_at,
        crate::helpers::weekday_afternoon() + chrono::Duration::hours(72)
    );

    let shown = app.get(&format!("/v1/invites/{token}")).await;
    assert_eq!(shown.status(), 200);
    let shown = json(shown).await;
    assert_eq!(shown["name"], "Tess Texter");
    assert_eq!(shown["email"], "tess@example.org");
    assert_eq!(shown["org_name"], "Rivera for Council");
    assert_eq!(shown["role"], "texter");
    assert!(shown.get("invite_token").is_none(), "{shown}");
    // The invite page only echoes the token for its script.
    let page = app.get(&format!("/invite/{token}")).await;
    assert_eq!(page.status(), 200);
    assert!(page.headers().contains_key("content-security-policy"));
    assert!(page.text().await.unwrap().contains(token));

    let accepted = accept(&app, token, PASSWORD).await;
    let session = session_of(accepted).await;
    assert_eq!(session.body["role"], "texter");
    assert_eq!(session.body["member_id"], member_id);
    let me = json(get_with(&app, &session.cookie, "/v1/me").await).await;
    assert_eq!(me["role"], "texter");
    assert_eq!(me["member"]["member_id"], member_id);
    // The password it set signs in from now on.
    signed_in(&app, "tess@example.org", PASSWORD).await;

    // Used once: the same link is no longer an invite.
    expect_not_found(accept(&app, token, "another good password").await).await;
    expect_not_found(app.get(&format!("/v1/invites/{token}")).await).await;
    expect_unauthenticated(sign_in(&app, "tess@example.org", "another good password").await).await;
    // Made-up and malformed tokens answer like used ones.
    for unknown in [format!("tbi_{}", "0".repeat(48)), "nonsense".to_owned()] {
        expect_not_found(app.get(&format!("/v1/invites/{unknown}")).await).await;
    }
    app
}

async fn a_weak_password_is_refused_and_the_invite_still_works(app: TestApp) -> TestApp {
    let (_, _, token) = invited_texter(&app).await;
    for weak in ["short", "TESS@example.org", &"x".repeat(300)] {
        let refused = accept(&app, &token, weak).await;
        assert!(refused.headers().get(SET_COOKIE).is_none());
        let message = expect_invalid_request(refused).await;
        assert!(message.contains("password"), "{message}");
    }
    expect_unauthenticated(sign_in(&app, "tess@example.org", "short").await).await;
    assert_eq!(app.get(&format!("/v1/invites/{token}")).await.status(), 200);
    let session = session_of(accept(&app, &token, PASSWORD).await).await;
    assert_eq!(session.body["email"], "tess@example.org");
    app
}

async fn an_invite_accepted_twice_at_once_sets_one_password(app: TestApp) -> TestApp {
    let (_, _, token) = invited_texter(&app).await;
    let passwords = ["first good password", "second good password"];
    let (a, b) = tokio::join!(
        accept(&app, &token, passwords[0]),
        accept(&app, &token, passwords[1])
    );
    let statuses = [a.status().as_u16(), b.status().as_u16()];
    let body_a = a.text().await.unwrap();
    let body_b = b.text().await.unwrap();
    let winner = match statuses {
        [201, 404] => 0,
        [404, 201] => 1,
        other => panic!("expected one 201 and one 404, got {other:?}: {body_a} / {body_b}"),
    };
    signed_in(&app, "tess@example.org", passwords[winner]).await;
    expect_unauthenticated(sign_in(&app, "tess@example.org", passwords[1 - winner]).await).await;
    app
}

async fn an_invite_expires_after_seventy_two_hours(app: TestApp) -> TestApp {
    let (owner, member_id, token) = invited_texter(&app).await;
    let clock = fixed_clock(&app);
    clock.advance(chrono::Duration::hours(71));
    assert_eq!(app.get(&format!("/v1/invites/{token}")).await.status(), 200);
    clock.advance(chrono::Duration::hours(2));
    expect_not_found(app.get(&format!("/v1/invites/{token}")).await).await;
    expect_not_found(accept(&app, &token, PASSWORD).await).await;
    expect_unauthenticated(sign_in(&app, "tess@example.org", PASSWORD).await).await;
    // A fresh invite works again.
    let token = invite(&app, &owner, &member_id).await["invite_token"]
        .as_str()
        .unwrap()
        .to_owned();
    session_of(accept(&app, &token, PASSWORD).await).await;
    app
}

async fn only_those_who_may_grant_a_members_role_may_invite_them(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    let manager = app.member_key(&owner, "mo@example.org", "manager").await;
    let (texter_id, texter) = app
        .member_with_key(&owner, "tess@example.org", "texter")
        .await;
    let (admin_id, _) = app
        .member_with_key(&owner, "ada@example.org", "admin")
        .await;

    // Managers onboard texters, and nobody else.
    invite(&app, &manager, &texter_id).await;
    let message = expect_forbidden(
        app.post_as(
            &manager,
            &format!("/v1/members/{admin_id}/invites"),
            &json!({}),
        )
        .await,
    )
    .await;
    assert!(message.contains("admin"), "{message}");
    expect_forbidden(
        app.post_as(
            &texter,
            &format!("/v1/members/{texter_id}/invites"),
            &json!({}),
        )
        .await,
    )
    .await;

    // Another org's member, an unknown id and a malformed one all look alike.
    let other_owner = app.create_org("Another Campaign").await;
    let (other_id, _) = app
        .member_with_key(&other_owner, "zed@example.org", "texter")
        .await;
    for member in [
        other_id.as_str(),
        "00000000-0000-0000-0000-000000000000",
        "not-a-uuid",
    ] {
        expect_not_found(
            app.post_as(&owner, &format!("/v1/members/{member}/invites"), &json!({}))
                .await,
        )
        .await;
    }
    // An invite needs a key or a session.
    let anonymous = sent(
        app.client
            .post(app.url(&format!("/v1/members/{texter_id}/invites")))
            .json(&json!({})),
    )
    .await;
    expect_unauthenticated(anonymous).await;
    app
}

async fn a_password_reset_is_for_owners_admins_and_the_member_and_ends_their_sessions(
    app: TestApp,
) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    let manager = app.member_key(&owner, "mo@example.org", "manager").await;
    let admin = app.member_key(&owner, "ada@example.org", "admin").await;
    let (texter_id, session) =
        member_signed_in(&app, &owner, "Tess Texter", "tess@example.org", "texter").await;
    let reset_path = format!("/v1/members/{texter_id}/invites");

    // The texter has a password: a new link would take their account over.
    let message = expect_error(
        app.post_as(&manager, &reset_path, &json!({})).await,
        403,
        "password_reset_forbidden",
    )
    .await;
    assert!(message.contains("owner or admin"), "{message}");

    // The member may reset their own, from their session.
    let own = session.post(&app, &reset_path, &json!({})).await;
    assert_eq!(own.status(), 201);
    assert_eq!(json(own).await["password_reset"], true);

    // An admin may; the link says what it is, and the log who made it.
    let head = app.app.events().head_position().await.unwrap();
    let reset = invite(&app, &admin, &texter_id).await;
    assert_eq!(reset["password_reset"], true);
    let token = reset["invite_token"].as_str().unwrap();
    let view = json(app.get(&format!("/v1/invites/{token}")).await).await;
    assert_eq!(view["password_reset"], true);
    let admin_key = app.get_ok(&admin, "/v1/me").await["key_id"].clone();
    let recorded: Vec<_> = app
        .events_after(head)
        .await
        .into_iter()
        .filter(|event| event.event_type == "PasswordResetIssued")
        .collect();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].data["member_id"], texter_id.as_str());
    assert!(
        serde_json::to_string(&recorded[0].metadata)
            .unwrap()
            .contains(admin_key.as_str().unwrap())
    );
    assert!(!recorded[0].data.to_string().contains(token));
    let members = app.get_ok(&owner, "/v1/members").await;
    let listed = item(&members["members"], "member_id", &texter_id);
    assert!(listed["password_reset_at"].is_string(), "{listed}");

    // Setting the new password ends every session opened with the old one.
    let other = signed_in(&app, "tess@example.org", PASSWORD).await;
    assert_eq!(
        get_with(&app, &session.cookie, "/v1/me").await.status(),
        200
    );
    let fresh = session_of(accept(&app, token, "a brand new password").await).await;
    for old in [&session, &other] {
        expect_unauthenticated(get_with(&app, &old.cookie, "/v1/me").await).await;
    }
    assert_eq!(get_with(&app, &fresh.cookie, "/v1/me").await.status(), 200);
    // A first invite is not a reset.
    let (newcomer, _) = app
        .member_with_key(&owner, "new@example.org", "texter")
        .await;
    assert_eq!(
        invite(&app, &manager, &newcomer).await["password_reset"],
        false
    );
    app
}

async fn an_email_signs_in_to_one_org_only(app: TestApp) -> TestApp {
    let first = app.create_org("Rivera for Council").await;
    let second = app.create_org("Another Campaign").await;
    let (first_id, _) = app
        .member_with_key(&first, "ana@example.org", "texter")
        .await;
    let (second_id, _) = app
        .member_with_key(&second, "ana@example.org", "texter")
        .await;
    // Without the org, the email is ambiguous.
    let err = app
        .app
        .set_password("ana@example.org", None, PASSWORD)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("name the organization"), "{err}");
    let first_org = app.get_ok(&first, "/v1/me").await["org_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let set = app
        .app
        .set_password("ana@example.org", Some(first_org), PASSWORD)
        .await
        .unwrap();
    assert_eq!(set.to_string(), first_id);

    // The other org's invite cannot take the email over, and is not used up.
    // The refusal does not say the email signs in elsewhere: whoever added
    // a member with someone's email must not learn where they have an account.
    let token = invite(&app, &second, &second_id).await["invite_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let message = expect_conflict(accept(&app, &token, "a different password").await).await;
    for telling in ["organization", "another", "elsewhere", "already", "ana@"] {
        assert!(!message.contains(telling), "{message}");
    }
    assert_eq!(app.get(&format!("/v1/invites/{token}")).await.status(), 200);
    let session = signed_in(&app, "ana@example.org", PASSWORD).await;
    assert_eq!(session.body["member_id"], first_id);
    expect_unauthenticated(sign_in(&app, "ana@example.org", "a different password").await).await;
    app
}

async fn pages_without_a_session_redirect_to_sign_in_and_back(app: TestApp) -> TestApp {
    for (path, next) in [
        ("/app/send", "/login?next=/app/send"),
        ("/app", "/login?next=/app"),
        (
            "/app/campaigns/0190aaaa-0000-7000-8000-000000000000",
            "/login?next=/app/campaigns/0190aaaa-0000-7000-8000-000000000000",
        ),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(response.headers()[LOCATION], next, "{path}");
    }
    let bogus = get_with(
        &app,
        &format!("textbank_session=tbs_{}", "0".repeat(48)),
        "/app/send",
    )
    .await;
    assert_eq!(bogus.status(), 303);
    assert_eq!(bogus.headers()[LOCATION], "/login?next=/app/send");
    let root = app.get("/").await;
    assert_eq!(root.status(), 303);
    assert_eq!(root.headers()[LOCATION], "/app");

    let login = app.get("/login").await;
    assert_eq!(login.status(), 200);
    assert!(
        login.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(login.headers()["x-frame-options"], "DENY");
    let html = login.text().await.unwrap();
    assert!(html.contains("id=\"login-form\""));
    assert!(html.contains("<script src=\"/assets/login.js\"></script>"));
    app
}

async fn the_app_sends_each_role_to_its_start_page(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    for (role, start) in [
        ("texter", "/app/send"),
        ("manager", "/app/campaigns"),
        ("compliance", "/app/compliance"),
        ("admin", "/app/campaigns"),
    ] {
        let email = format!("{role}@example.org");
        let (_, session) = member_signed_in(&app, &owner, "Someone", &email, role).await;
        let home = get_with(&app, &session.cookie, "/app").await;
        assert_eq!(home.status(), 303, "{role}");
        assert_eq!(home.headers()[LOCATION], start, "{role}");
        let page = get_with(&app, &session.cookie, start).await;
        assert_eq!(page.status(), 200, "{role} opens {start}");
    }
    app
}

async fn a_page_the_role_cannot_use_is_403_html_and_unknown_pages_are_404(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    let (_, texter) =
        member_signed_in(&app, &owner, "Tess Texter", "tess@example.org", "texter").await;
    for path in ["/app/compliance", "/app/admin", "/app/lists"] {
        let refused = get_with(&app, &texter.cookie, path).await;
        assert_eq!(refused.status(), 403, "{path}");
        assert!(
            refused.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        let html = refused.text().await.unwrap();
        assert!(html.contains("Not available"), "{html}");
        assert!(html.contains("The texter role cannot use"), "{html}");
        // A refused page loads no page script.
        assert!(!html.contains("/assets/compliance.js"), "{html}");
    }
    for path in [
        "/app/campaigns/not-a-uuid",
        "/app/nope",
        "/app/campaign",
        "/app/send/extra",
    ] {
        let missing = get_with(&app, &texter.cookie, path).await;
        assert_eq!(missing.status(), 404, "{path}");
    }
    // The texter's own pages open.
    for path in ["/app/send", "/app/inbox"] {
        assert_eq!(
            get_with(&app, &texter.cookie, path).await.status(),
            200,
            "{path}"
        );
    }
    app
}

async fn pages_carry_security_headers_the_csrf_token_and_the_role(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    let (member_id, manager) =
        member_signed_in(&app, &owner, "Mo Manager", "mo@example.org", "manager").await;
    let campaign_id = "0190aaaa-0000-7000-8000-000000000000";
    for path in ["/app/campaigns", &format!("/app/campaigns/{campaign_id}")] {
        let page = get_with(&app, &manager.cookie, path).await;
        assert_eq!(page.status(), 200, "{path}");
        let headers = page.headers().clone();
        let csp = headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{directive} missing from {csp}");
        }
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["cache-control"], "no-store");
        let html = page.text().await.unwrap();
        assert!(
            html.contains(&format!(
                "<meta name=\"csrf-token\" content=\"{}\">",
                manager.csrf
            )),
            "{html}"
        );
        assert!(html.contains("data-role=\"manager\""), "{html}");
        assert!(html.contains(&format!("data-member-id=\"{member_id}\"")));
        assert!(html.contains("<script src=\"/assets/app.js\"></script>"));
        // Managers see their pages in the navigation, not compliance's.
        assert!(html.contains("href=\"/app/campaigns\""));
        assert!(!html.contains("href=\"/app/compliance\""), "{html}");
        assert!(
            !html.contains(manager.cookie.trim_start_matches("textbank_session=")),
            "the page never carries the session secret"
        );
        if path.ends_with(campaign_id) {
            assert!(html.contains(&format!("data-campaign-id=\"{campaign_id}\"")));
            assert!(html.contains("<script src=\"/assets/campaign.js\"></script>"));
        }
    }
    app
}

async fn names_are_html_escaped_in_pages(app: TestApp) -> TestApp {
    let owner = app
        .create_org("Rivera & \"Friends\" <b>for</b> Council")
        .await;
    let (_, session) = member_signed_in(
        &app,
        &owner,
        "<script>alert(1)</script>",
        "mallory@example.org",
        "texter",
    )
    .await;
    assert_eq!(session.body["name"], "<script>alert(1)</script>");
    let page = get_with(&app, &session.cookie, "/app/send").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>alert(1)</script>"), "{html}");
    assert!(!html.contains("<b>for</b>"), "{html}");
    assert!(
        html.contains("data-member-name=\"&lt;script&gt;alert(1)&lt;/script&gt;\""),
        "{html}"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; · texter"));
    assert!(
        html.contains(
            "data-org-name=\"Rivera &amp; &quot;Friends&quot; &lt;b&gt;for&lt;/b&gt; Council\""
        ),
        "{html}"
    );
    // A token in an invite link is escaped too.
    let invite = app.get("/invite/%22%3E%3Cscript%3Ex%3C%2Fscript%3E").await;
    assert_eq!(invite.status(), 200);
    let html = invite.text().await.unwrap();
    assert!(!html.contains("<script>x</script>"), "{html}");
    assert!(html.contains("data-token=\"&quot;&gt;&lt;script&gt;x&lt;/script&gt;\""));
    app
}

async fn assets_are_served_with_their_type_and_nosniff(app: TestApp) -> TestApp {
    for (name, content_type) in [
        ("app.js", "text/javascript"),
        ("login.js", "text/javascript"),
        ("app.css", "text/css"),
    ] {
        let asset = app.get(&format!("/assets/{name}")).await;
        assert_eq!(asset.status(), 200, "{name}");
        assert!(
            asset.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(content_type),
            "{name}"
        );
        assert_eq!(asset.headers()["x-content-type-options"], "nosniff");
        assert!(!asset.text().await.unwrap().trim().is_empty(), "{name}");
    }
    for name in ["nope.js", "..%2FCargo.toml", "app.js.map"] {
        let missing = app.get(&format!("/assets/{name}")).await;
        assert!(
            missing.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{name}"
        );
        expect_not_found(missing).await;
    }
    app
}

/// The demo's password for `role`.
/// The demo, seeded on the test's empty database.
async fn new_demo(app: &TestApp) -> textbank_app::demo::Demo {
    app.app
        .seed_demo()
        .await
        .unwrap()
        .expect("an empty database")
}

fn demo_password(demo: &textbank_app::demo::Demo, role: &str) -> (String, String) {
    let sign_in = demo
        .sign_ins
        .iter()
        .find(|sign_in| sign_in.role.as_str() == role)
        .unwrap_or_else(|| panic!("a {role} sign-in"));
    (sign_in.email.clone(), sign_in.password.clone())
}

async fn the_demo_has_four_sign_ins_and_a_launched_campaign_for_its_texter(
    app: TestApp,
) -> TestApp {
    let demo = new_demo(&app).await;
    assert!(demo.created);
    let mut roles: Vec<&str> = demo.sign_ins.iter().map(|s| s.role.as_str()).collect();
    roles.sort_unstable();
    assert_eq!(roles, ["admin", "compliance", "manager", "texter"]);
    for sign_in in &demo.sign_ins {
        assert!(sign_in.password.len() >= 10, "{sign_in:?}");
        let session = signed_in(&app, &sign_in.email, &sign_in.password).await;
        assert_eq!(session.body["role"], sign_in.role.as_str());
        assert_eq!(session.body["member_id"], sign_in.member_id.to_string());
        assert_eq!(session.body["org_name"], textbank_app::demo::DEMO_ORG_NAME);
    }

    let (email, password) = demo_password(&demo, "manager");
    let manager = signed_in(&app, &email, &password).await;
    let campaigns = json(get_with(&app, &manager.cookie, "/v1/campaigns").await).await;
    let campaigns = campaigns["campaigns"].as_array().unwrap();
    assert_eq!(campaigns.len(), 1, "{campaigns:?}");
    assert_eq!(campaigns[0]["status"], "active");
    let campaign_id = campaigns[0]["campaign_id"].as_str().unwrap();

    let (email, password) = demo_password(&demo, "texter");
    let texter = signed_in(&app, &email, &password).await;
    let queue = get_with(
        &app,
        &texter.cookie,
        &format!("/v1/texter/queue?campaign_id={campaign_id}&limit=5"),
    )
    .await;
    assert_eq!(queue.status(), 200);
    let queue = json(queue).await;
    assert_eq!(queue["campaign_status"], "active");
    assert_eq!(queue["remaining"], 120, "{queue}");
    // At the fixed clock's hour most demo places are inside texting hours,
    // so the queue has messages (at another hour it may be a quiet-hours
    // hold, which the demo's spread of zones keeps rare).
    let messages = queue["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 5, "{queue}");
    assert!(
        messages[0]["body"]
            .as_str()
            .unwrap()
            .contains("Taylor Texter"),
        "{queue}"
    );
    assert!(messages[0]["phone"].as_str().unwrap().contains("555"));
    app
}

async fn seeding_the_demo_again_renews_the_passwords_and_creates_nothing_new(
    app: TestApp,
) -> TestApp {
    let first = app.app.seed_demo().await.unwrap().unwrap();
    let (admin_email, admin_password) = demo_password(&first, "admin");
    let admin = signed_in(&app, &admin_email, &admin_password).await;
    let members_before = json(get_with(&app, &admin.cookie, "/v1/members").await).await;
    let campaigns_before = json(get_with(&app, &admin.cookie, "/v1/campaigns").await).await;
    let lists_before = json(get_with(&app, &admin.cookie, "/v1/lists").await).await;

    let second = app.app.seed_demo().await.unwrap().unwrap();
    assert!(!second.created);
    assert_eq!(second.org_id, first.org_id);
    assert_eq!(second.sign_ins.len(), 4);
    for old in &first.sign_ins {
        let new = second
            .sign_ins
            .iter()
            .find(|new| new.email == old.email)
            .unwrap();
        assert_eq!(new.member_id, old.member_id);
        assert_ne!(new.password, old.password);
        expect_unauthenticated(sign_in(&app, &old.email, &old.password).await).await;
        signed_in(&app, &new.email, &new.password).await;
    }
    // New passwords end the sessions opened with the old ones.
    expect_unauthenticated(get_with(&app, &admin.cookie, "/v1/members").await).await;
    let (_, admin_password) = demo_password(&second, "admin");
    let admin = signed_in(&app, &admin_email, &admin_password).await;
    assert_eq!(
        json(get_with(&app, &admin.cookie, "/v1/members").await).await,
        members_before
    );
    assert_eq!(
        json(get_with(&app, &admin.cookie, "/v1/campaigns").await).await,
        campaigns_before
    );
    assert_eq!(
        json(get_with(&app, &admin.cookie, "/v1/lists").await).await,
        lists_before
    );
    assert_eq!(members_before["members"].as_array().unwrap().len(), 4);
    app
}

async fn the_demo_never_mixes_with_another_org(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    assert!(app.app.seed_demo().await.unwrap().is_none());
    // Nothing was added to the database.
    let members = app.get_ok(&owner, "/v1/members").await;
    assert_eq!(members["members"], json!([]));
    expect_unauthenticated(sign_in(&app, "manager@demo.example.org", PASSWORD).await).await;
    assert!(app.app.seed_demo().await.unwrap().is_none());
    app
}

/// `admin set-password --password-stdin` sets a password the running server
/// then signs in with.
#[tokio::test]
async fn admin_set_password_from_stdin_lets_the_member_sign_in() {
    let db = scratch_path("set-password");
    let url = format!("sqlite://{}", db.display());
    let owner = org_created_by_cli(&url, "Rivera for Council");
    let (child, address) = serve(&db);
    let client = textbank_sms::http_client(Duration::from_secs(30)).unwrap();
    let added = sent(
        client
            .post(format!("{address}/v1/members"))
            .bearer_auth(&owner)
            .json(&json!({"name": "Ana Ruiz", "email": "ana@example.org", "role": "manager"})),
    )
    .await;
    assert_eq!(added.status(), 201);
    let added: Value = added.json().await.unwrap();

    let mut command = Command::new(BIN)
        .args([
            "admin",
            "set-password",
            "--email",
            "Ana@Example.org",
            "--password-stdin",
            "--database-url",
            &url,
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    command
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    let output = command.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        !stdout.contains(PASSWORD),
        "a password from stdin is not echoed: {stdout}"
    );
    let answer: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(answer["member_id"], added["member_id"]);
    assert!(answer.get("password").is_none());

    let signed_in = sent(
        client
            .post(format!("{address}/v1/sessions"))
            .json(&json!({"email": "ana@example.org", "password": PASSWORD})),
    )
    .await;
    assert_eq!(signed_in.status(), 201);
    let body: Value = signed_in.json().await.unwrap();
    assert_eq!(body["role"], "manager");
    assert_eq!(body["member_id"], added["member_id"]);

    // An unknown email fails with a message and sets nothing.
    let unknown = Command::new(BIN)
        .args([
            "admin",
            "set-password",
            "--email",
            "nobody@example.org",
            "--database-url",
            &url,
        ])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
    stop_cleanly(child, "TERM", &db);
}

/// `textbank serve --demo` on a fresh SQLite file, with extra environment;
/// the child, its address, and the printed sign-ins as (role, email,
/// password), after checking the lines' shape.
fn serve_demo(
    db: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Child, String, Vec<(String, String, String)>) {
    let mut child = Command::new(BIN)
        .args(["serve", "--demo", "--bind", "127.0.0.1:0"])
        .env(
            "TEXTBANK_DATABASE_URL",
            format!("sqlite://{}", db.display()),
        )
        // A key in the environment, so no key file is written where the
        // tests run.
        .env("TEXTBANK_SECRET_KEY", "ab".repeat(32))
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start textbank serve --demo");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut read_line = || {
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read a line");
        line.trim_end().to_owned()
    };
    let listening = read_line();
    let address = listening
        .strip_prefix("textbank listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {listening:?}"))
        .to_owned();
    let header = read_line();
    assert_eq!(
        header,
        format!("textbank demo created: open {address}/login and sign in as")
    );
    let mut sign_ins = Vec::new();
    for _ in 0..4 {
        let line = read_line();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [role, email, "password", password] => {
                sign_ins.push((role.to_string(), email.to_string(), password.to_string()));
            }
            _ => panic!("unexpected sign-in line {line:?}"),
        }
    }
    (child, address, sign_ins)
}

/// `serve --demo` prints one line per demo sign-in after the listening
/// line; each signs in to the server it started.
#[tokio::test]
async fn serve_demo_prints_sign_ins_that_work() {
    let db = scratch_path("demo");
    let (child, address, sign_ins) = serve_demo(&db, &[]);
    let mut roles: Vec<&str> = sign_ins.iter().map(|(role, _, _)| role.as_str()).collect();
    roles.sort_unstable();
    assert_eq!(roles, ["admin", "compliance", "manager", "texter"]);

    let client = textbank_sms::http_client(Duration::from_secs(30)).unwrap();
    for (role, email, password) in &sign_ins {
        let response = sent(
            client
                .post(format!("{address}/v1/sessions"))
                .json(&json!({"email": email, "password": password})),
        )
        .await;
        assert_eq!(response.status(), 201, "{email}");
        let (_, header) = set_cookie(&response);
        assert!(!header.contains("Secure"), "plain HTTP: {header}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["role"], role.as_str());
        assert_eq!(body["org_name"], "Demo: Rivera for Council");
    }
    stop_cleanly(child, "TERM", &db);
}

/// Behind an HTTPS public URL the session cookie is `Secure`, and invite
/// links point at the public URL. (The in-process test servers always have
/// their own http:// address as public URL, so this runs the binary.)
#[tokio::test]
async fn behind_an_https_public_url_the_cookie_is_secure_and_invite_links_use_it() {
    let db = scratch_path("demo-https");
    let (child, address, sign_ins) = serve_demo(
        &db,
        &[("TEXTBANK_PUBLIC_URL", "https://texts.example.org/")],
    );
    let (_, email, password) = sign_ins
        .iter()
        .find(|(role, _, _)| role == "admin")
        .unwrap();
    let client = textbank_sms::http_client(Duration::from_secs(30)).unwrap();
    let response = sent(
        client
            .post(format!("{address}/v1/sessions"))
            .json(&json!({"email": email, "password": password})),
    )
    .await;
    assert_eq!(response.status(), 201);
    let (cookie, header) = set_cookie(&response);
    assert!(
        header.split(';').any(|part| part.trim() == "Secure"),
        "{header}"
    );
    let csrf = json(response).await["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The admin's browser session invites the demo texter.
    let members: Value = sent(
        client
            .get(format!("{address}/v1/members"))
            .header(COOKIE, &cookie),
    )
    .await
    .json()
    .await
    .unwrap();
    let texter = item(&members["members"], "role", "texter");
    let invite = sent(
        client
            .post(format!(
                "{address}/v1/members/{}/invites",
                texter["member_id"].as_str().unwrap()
            ))
            .header(COOKIE, &cookie)
            .header("x-csrf-token", &csrf)
            .json(&json!({})),
    )
    .await;
    assert_eq!(invite.status(), 201);
    let invite = json(invite).await;
    let token = invite["invite_token"].as_str().unwrap();
    assert_eq!(
        invite["invite_url"],
        format!("https://texts.example.org/invite/{token}")
    );

    let out = sent(
        client
            .delete(format!("{address}/v1/sessions/current"))
            .header(COOKIE, &cookie)
            .header("x-csrf-token", &csrf),
    )
    .await;
    assert_eq!(out.status(), 204);
    let (_, header) = set_cookie(&out);
    assert!(
        header.contains("Max-Age=0") && header.contains("Secure"),
        "{header}"
    );
    stop_cleanly(child, "TERM", &db);
}

/// An org with a texter (tess@example.org) and an invite for her: (owner
/// key, member id, invite token).
async fn invited_texter(app: &TestApp) -> (String, String, String) {
    let owner = app.create_org("Rivera for Council").await;
    let (member_id, _) = app
        .member_with_key(&owner, "tess@example.org", "texter")
        .await;
    let token = invite(app, &owner, &member_id).await["invite_token"]
        .as_str()
        .unwrap()
        .to_owned();
    (owner, member_id, token)
}

/// The demo's texter holds contacts from Guam to Puerto Rico: at each of the
/// 24 UTC hours but 11:00–12:00 (when every US zone is outside 08:00–21:00)
/// the queue offers some; in that hour it says when sending reopens.
async fn the_demos_texter_has_something_to_send_at_every_hour_some_us_zone_is_open(
    app: TestApp,
) -> TestApp {
    let demo = new_demo(&app).await;
    let clock = app.clock.clone().expect("a fixed clock");
    let (email, password) = demo_password(&demo, "texter");
    let texter = signed_in(&app, &email, &password).await;
    let campaigns = json(get_with(&app, &texter.cookie, "/v1/campaigns").await).await;
    let campaign_id = campaigns["campaigns"][0]["campaign_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let queue_path = format!("/v1/texter/queue?campaign_id={campaign_id}&limit=5");
    // From the fixed clock's hour on, through a whole day.
    let start = app.now();
    assert_eq!(start.format("%M:%S").to_string(), "00:00");
    let mut hours_checked = Vec::new();
    for step in 0..24 {
        let now = app.now();
        let hour = now.format("%H").to_string();
        let texter = signed_in(&app, &email, &password).await;
        let queue = json(get_with(&app, &texter.cookie, &queue_path).await).await;
        let messages = queue["messages"].as_array().unwrap();
        if hour == "11" {
            assert!(messages.is_empty(), "{hour}:00 {queue}");
            assert_eq!(queue["hold"]["code"], "quiet_hours", "{queue}");
            let reopens: chrono::DateTime<chrono::Utc> = queue["hold"]["next_open"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(reopens, now + chrono::Duration::hours(1), "{queue}");
        } else {
            assert_eq!(messages.len(), 5, "{hour}:00 {queue}");
            assert_eq!(queue["hold"], Value::Null, "{hour}:00 {queue}");
        }
        hours_checked.push(hour);
        if step < 23 {
            clock.advance(chrono::Duration::hours(1));
        }
    }
    hours_checked.sort();
    hours_checked.dedup();
    assert_eq!(hours_checked.len(), 24);
    app
}
