//! The web app: server-rendered page shells (navigation, the signed-in
//! member, the CSRF token) whose scripts work through the same `/v1` API as
//! every client. Pages need a session; without one they redirect to sign-in.

mod assets;
mod reference;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use textbank_app::sign_in::SessionMember;
use textbank_domain::{Permission, Role, allows};

use crate::extract::{Path, client, session_cookie};
use crate::route_table::RouteTable;
use crate::server::AppState;

pub fn routes() -> RouteTable {
    RouteTable::new()
        .get("/", || async { Redirect::to("/app") })
        .get("/login", login_page)
        .get("/invite/{token}", invite_page)
        .get("/app", home)
        .get("/app/{page}", app_page)
        .get("/app/campaigns/{campaign_id}", campaign_page)
        .get("/assets/{name}", assets::asset)
        .get("/docs", reference::page)
}

/// One page of the app: its script, stylesheet and who may open it.
struct Page {
    name: &'static str,
    title: &'static str,
    stylesheet: &'static str,
    /// Scripts the page script builds on, loaded before it.
    needs: &'static [&'static str],
    /// Shown in the navigation (the campaign page is reached from the list).
    in_nav: bool,
    allowed: fn(Role) -> bool,
}

const PAGES: &[Page] = &[
    Page {
        name: "send",
        title: "Send",
        stylesheet: "texter",
        needs: &[],
        in_nav: true,
        allowed: |role| allows(role, Permission::Send),
    },
    Page {
        name: "inbox",
        title: "Inbox",
        stylesheet: "texter",
        needs: &[],
        in_nav: true,
        // Texters read their own conversations; every other role the org's.
        allowed: |_| true,
    },
    Page {
        name: "campaigns",
        title: "Campaigns",
        stylesheet: "manager",
        needs: &["script-editor"],
        in_nav: true,
        allowed: |role| {
            allows(role, Permission::ManageCampaigns) || allows(role, Permission::ReadMetrics)
        },
    },
    Page {
        name: "campaign",
        title: "Campaign",
        stylesheet: "manager",
        needs: &["script-editor"],
        in_nav: false,
        allowed: |role| {
            allows(role, Permission::ManageCampaigns) || allows(role, Permission::ReadMetrics)
        },
    },
    Page {
        name: "lists",
        title: "Lists",
        stylesheet: "manager",
        needs: &[],
        in_nav: true,
        allowed: |role| allows(role, Permission::ReadLists),
    },
    Page {
        name: "compliance",
        title: "Compliance",
        stylesheet: "compliance",
        needs: &[],
        in_nav: true,
        allowed: |role| allows(role, Permission::ReadAudit),
    },
    Page {
        name: "admin",
        title: "Admin",
        stylesheet: "compliance",
        needs: &[],
        in_nav: true,
        allowed: |role| {
            allows(role, Permission::ManageMembers)
                || allows(role, Permission::ConfigureCarrier)
                || allows(role, Permission::ManageOptOuts)
                || allows(role, Permission::ManageWebhooks)
        },
    },
];

/// Where a role starts: the texter's send screen, the manager's campaigns,
/// the compliance officer's audit.
fn home_of(role: Role) -> &'static str {
    if allows(role, Permission::Send) {
        "/app/send"
    } else if allows(role, Permission::ManageCampaigns) {
        "/app/campaigns"
    } else if allows(role, Permission::ReadAudit) {
        "/app/compliance"
    } else {
        "/app/inbox"
    }
}

async fn home(State(state): State<AppState>, request: Request) -> Response {
    match signed_in(&state, request).await {
        Ok(member) => Redirect::to(home_of(member.caller.role)).into_response(),
        Err(redirect) => redirect,
    }
}

async fn app_page(
    State(state): State<AppState>,
    Path(page): Path<String>,
    request: Request,
) -> Response {
    let Some(page) = PAGES
        .iter()
        .find(|candidate| candidate.name == page && candidate.in_nav)
    else {
        return not_found_page();
    };
    render_page(&state, page, None, request).await
}

async fn campaign_page(
    State(state): State<AppState>,
    Path(campaign_id): Path<String>,
    request: Request,
) -> Response {
    // Only the id's shape is checked here; the page's API calls answer 404
    // for an unknown or another org's campaign, exactly as for any client.
    if uuid::Uuid::parse_str(&campaign_id).is_err() {
        return not_found_page();
    }
    let page = PAGES
        .iter()
        .find(|page| page.name == "campaign")
        .unwrap_or(&PAGES[0]);
    render_page(&state, page, Some(&campaign_id), request).await
}

async fn render_page(
    state: &AppState,
    page: &Page,
    campaign_id: Option<&str>,
    request: Request,
) -> Response {
    let member = match signed_in(state, request).await {
        Ok(member) => member,
        Err(redirect) => return redirect,
    };
    let role = member.caller.role;
    if !(page.allowed)(role) {
        let body = format!(
            "<h1>Not available</h1><p>The {role} role cannot use the {} page.</p><p><a href=\"{}\">Go to your start page</a></p>",
            escape(page.title),
            home_of(role)
        );
        return page_response(
            StatusCode::FORBIDDEN,
            shell(&member, page, campaign_id, &body, false),
        );
    }
    let body = format!(
        "<h1>{}</h1><noscript><p>This page needs JavaScript.</p></noscript>",
        escape(page.title)
    );
    page_response(
        StatusCode::OK,
        shell(&member, page, campaign_id, &body, true),
    )
}

/// The session's member, or the redirect to sign in (back to this page).
async fn signed_in(state: &AppState, request: Request) -> Result<SessionMember, Response> {
    let (parts, _) = request.into_parts();
    let back = parts.uri.path().to_owned();
    let to_login = || Redirect::to(&format!("/login?next={}", encode_path(&back))).into_response();
    let Some(secret) = session_cookie(&parts).map(str::to_owned) else {
        return Err(to_login());
    };
    let (ip, user_agent) = client(&parts, state);
    state
        .app
        .session_member(&secret, ip, user_agent)
        .await
        .map_err(|_| to_login())
}

fn shell(
    member: &SessionMember,
    page: &Page,
    campaign_id: Option<&str>,
    body: &str,
    with_scripts: bool,
) -> String {
    let role = member.caller.role;
    let permissions: Vec<String> = Permission::ALL
        .into_iter()
        .filter(|permission| allows(role, *permission))
        .map(permission_name)
        .collect();
    let nav: String = PAGES
        .iter()
        .filter(|candidate| candidate.in_nav && (candidate.allowed)(role))
        .map(|candidate| {
            let current = candidate.name == page.name
                || (page.name == "campaign" && candidate.name == "campaigns");
            format!(
                "<a href=\"/app/{}\"{}>{}</a>",
                candidate.name,
                if current {
                    " aria-current=\"page\""
                } else {
                    ""
                },
                candidate.title
            )
        })
        .collect();
    let scripts: String = if with_scripts {
        page.needs
            .iter()
            .chain(std::iter::once(&page.name))
            .map(|script| format!("<script src=\"/assets/{script}.js\"></script>"))
            .collect()
    } else {
        String::new()
    };
    let campaign = campaign_id
        .map(|id| format!(" data-campaign-id=\"{}\"", escape(id)))
        .unwrap_or_default();
    let member_id = member
        .caller
        .member_id
        .map(|id| id.to_string())
        .unwrap_or_default();
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{csrf}">
<title>{title} · textbank</title>
<link rel="stylesheet" href="/assets/app.css">
<link rel="stylesheet" href="/assets/{stylesheet}.css">
</head>
<body data-page="{page}" data-role="{role}" data-member-id="{member_id}" data-member-name="{name}" data-org-name="{org}" data-permissions="{permissions}"{campaign}>
<a class="skip-link" href="#main">Skip to content</a>
<nav class="site-nav" aria-label="Main">
<a class="brand" href="/app">textbank</a>
{nav}
<span class="who">{name} · {role} · {org}</span>
<button id="sign-out" type="button">Sign out</button>
</nav>
<div id="flash" class="flash" role="alert" aria-live="assertive"></div>
<main id="main" tabindex="-1">
{body}
</main>
<script src="/assets/app.js"></script>
{scripts}
</body>
</html>
"##,
        csrf = member.csrf_token,
        title = escape(page.title),
        stylesheet = page.stylesheet,
        page = page.name,
        name = escape(&member.name),
        org = escape(&member.org_name),
        permissions = permissions.join(" "),
    )
}

async fn login_page() -> Response {
    page_response(
        StatusCode::OK,
        public_page(
            "login",
            "Sign in",
            r#"<form id="login-form" class="card" novalidate>
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<p id="login-error" class="field-error" role="alert" aria-live="assertive"></p>
<button id="sign-in" type="submit">Sign in</button>
</form>
<p class="muted">No password yet? Ask your campaign's admin for an invite link.</p>"#,
        ),
    )
}

async fn invite_page(Path(token): Path<String>) -> Response {
    // The token is only echoed into a data attribute; the page's script asks
    // the API whether it is valid.
    let body = format!(
        r#"<div id="invite" data-token="{}">
<p id="invite-who" aria-live="polite">Checking your invite…</p>
<form id="invite-form" class="card" novalidate hidden>
<label for="new-password">New password</label>
<input id="new-password" type="password" autocomplete="new-password" minlength="10" required aria-describedby="password-hint">
<p id="password-hint" class="field-hint">At least 10 characters.</p>
<label for="confirm-password">Repeat the password</label>
<input id="confirm-password" type="password" autocomplete="new-password" required>
<p id="login-error" class="field-error" role="alert" aria-live="assertive"></p>
<button id="set-password" type="submit">Set password and sign in</button>
</form>
</div>"#,
        escape(&token)
    );
    page_response(
        StatusCode::OK,
        public_page("invite", "Set your password", &body),
    )
}

/// A page for people who are not signed in (sign-in, invites).
fn public_page(page: &str, title: &str, body: &str) -> String {
    let body = format!("<h1>{}</h1>\n{body}", escape(title));
    plain_page(page, title, None, "auth-box", &body, &["app", "login"])
}

/// A page without the signed-in navigation: the app's stylesheet (and
/// `stylesheet`, if any), then `scripts` from `/assets`.
fn plain_page(
    page: &str,
    title: &str,
    stylesheet: Option<&str>,
    main_class: &str,
    body: &str,
    scripts: &[&str],
) -> String {
    let stylesheet = stylesheet
        .map(|name| format!("\n<link rel=\"stylesheet\" href=\"/assets/{name}.css\">"))
        .unwrap_or_default();
    let scripts: String = scripts
        .iter()
        .map(|name| format!("<script src=\"/assets/{name}.js\"></script>\n"))
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · textbank</title>
<link rel="stylesheet" href="/assets/app.css">{stylesheet}
</head>
<body data-page="{page}">
<main id="main" class="{main_class}" tabindex="-1">
{body}
</main>
{scripts}</body>
</html>
"#,
        title = escape(title),
    )
}

fn not_found_page() -> Response {
    page_response(
        StatusCode::NOT_FOUND,
        public_page(
            "not-found",
            "Page not found",
            "<p><a href=\"/app\">Go to your start page</a></p>",
        ),
    )
}

/// HTML with the headers every page gets: scripts only from this server, no
/// framing, no referrer (invite links carry a token).
fn page_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    let headers: &mut HeaderMap = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
             base-uri 'none'; form-action 'self'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `ManageMembers` → `manage_members`, as the pages name permissions.
fn permission_name(permission: Permission) -> String {
    let mut name = String::new();
    for (i, c) in format!("{permission:?}").chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                name.push('_');
            }
            name.push(c.to_ascii_lowercase());
        } else {
            name.push(c);
        }
    }
    name
}

/// HTML-escapes text for element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A path for `?next=`: unreserved characters and `/` kept, the rest
/// percent-encoded.
fn encode_path(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(
            escape(r#"<script>"x" & 'y'</script>"#),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn permissions_are_named_in_snake_case() {
        assert_eq!(permission_name(Permission::ManageMembers), "manage_members");
        assert_eq!(permission_name(Permission::Send), "send");
        assert_eq!(permission_name(Permission::ReadAudit), "read_audit");
    }

    #[test]
    fn each_role_starts_on_its_own_page() {
        assert_eq!(home_of(Role::Texter), "/app/send");
        assert_eq!(home_of(Role::Manager), "/app/campaigns");
        assert_eq!(home_of(Role::Compliance), "/app/compliance");
    }

    #[test]
    fn next_paths_are_percent_encoded() {
        assert_eq!(encode_path("/app/send"), "/app/send");
        assert_eq!(encode_path("/app/x?y=1&z"), "/app/x%3Fy%3D1%26z");
    }
}
