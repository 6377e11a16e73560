//! The OpenAPI 3.1 document: its frame (info, tags, security schemes, the
//! error shape), the error answers every operation shares, and
//! `GET /openapi.json`. Operations come from the handlers' `#[utoipa::path]`
//! annotations as the routes are registered (see `route_table`).
//!
//! Error answers are written in the annotations as
//! `(status = 404, description = "`not_found`: …", body = ApiError)`: the
//! codes in backticks are the `error.code` values that status can carry.
//! [`describe_errors`] adds the answers an operation shares with every other
//! of its kind (authentication, path, query and body parsing, storage) and
//! turns each code list into the response schema's `code` enum, so a client
//! (and the contract test) sees exactly which codes each answer can carry.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{AllOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder};
use utoipa::openapi::security::{SecurityRequirement, SecurityScheme};
use utoipa::openapi::{OpenApi, RefOr, Response as ResponseDoc, Schema};
use utoipa::{Modify, PartialSchema, ToSchema};

use crate::error::ApiError;
use crate::extract::SESSION_COOKIE;

/// The document's frame; paths are added by the route table.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "textbank API",
        description = "A peer-to-peer texting backend: organizations, members and API keys, \
contact lists, campaigns, assignments, the one-click send path, the inbox, opt-outs, metrics, \
the compliance audit, and the event feed and outbound webhooks for API clients.\n\n\
Every `/v1` operation authenticates with `Authorization: Bearer <API key>` (or the web app's \
session cookie, whose state-changing requests also carry `X-CSRF-Token`); the organization \
always comes from the credential.\n\n\
Every error answer is JSON: `{\"error\":{\"code\":\"…\",\"message\":\"…\"}}`. Clients branch on \
`code` (stable); `message` is for people. Some errors add fields: `retry_after_secs` (with a \
`Retry-After` header), `limit`, `next_open`. Any request may also be answered 414 \
`uri_too_long` (URL over 8 KiB) or 431 `headers_too_large` (headers over 64 KiB).\n\n\
Lists page with `cursor` and `limit`: pass the `next_cursor` of one page as the `cursor` of \
the next; the last page has none. A write answers with the log `position` it reached; pass it \
as `min_position` to a read to see that write (the read waits briefly for its read model and \
answers 503 `projection_lagging` if it is still behind; a position past the end of the log is \
422 `invalid_request`).",
        license(name = "AGPL-3.0-or-later"),
    ),
    modifiers(&Security),
    // The public event types: an event's `type` and `data` in the feed and
    // in webhook deliveries are one of these enums' variants (less the
    // fields the feed leaves out: hashes, and for roles without the audit,
    // network fields).
    components(schemas(
        textbank_domain::recipient::RecipientEvent,
        textbank_domain::org::OrgEvent,
        textbank_domain::campaign::CampaignEvent,
        textbank_domain::list::ListEvent,
        textbank_domain::texter::TexterEvent,
    )),
    tags(
        (name = "members", description = "The caller, members, API keys"),
        (name = "sessions", description = "Web sign-in and invite links"),
        (name = "lists", description = "Contact lists"),
        (name = "campaigns", description = "Campaigns and their lifecycle"),
        (name = "assignments", description = "Contacts assigned to texters"),
        (name = "send", description = "The texter's queue, the one-click send, conversations"),
        (name = "inbox", description = "The caller's conversations"),
        (name = "conversations", description = "Handling conversations: tags, escalations, reassignment and release"),
        (name = "events", description = "The organization's event feed, for API clients"),
        (name = "opt-outs", description = "The organization's opt-out list"),
        (name = "carrier", description = "The organization's carrier settings"),
        (name = "metrics", description = "Campaign metrics"),
        (name = "audit", description = "The compliance audit"),
        (name = "outbound-webhooks", description = "The organization's outbound webhooks: subscriptions to its events, delivered after the Standard Webhooks specification"),
        (name = "webhooks", description = "Carrier webhooks, signed by the carrier"),
        (name = "ops", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// The security schemes, and the default requirement: an API key, or a
/// session cookie with its CSRF token. Public operations say `security(())`.
struct Security;

/// Names of the security schemes.
const BEARER: &str = "api_key";
const SESSION: &str = "session";
const CSRF: &str = "csrf_token";

impl Modify for Security {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_default();
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`Authorization: Bearer <key>`); its role decides what it \
                         may do.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The web app's session (set by `POST /v1/sessions`); HttpOnly.",
            ))),
        );
        components.add_security_scheme(
            CSRF,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "The session's CSRF token (from sign-in): required with the session cookie on \
                 every request that changes something.",
            ))),
        );
        openapi.security = Some(vec![
            SecurityRequirement::new(BEARER, Vec::<String>::new()),
            SecurityRequirement::new(SESSION, Vec::<String>::new()).add(CSRF, Vec::<String>::new()),
        ]);
    }
}

/// The error body: `{"error":{"code","message",…}}`.
impl PartialSchema for ApiError {
    fn schema() -> RefOr<Schema> {
        let string = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
        };
        let integer = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .description(Some(description))
        };
        let detail = ObjectBuilder::new()
            .property(
                "code",
                string("Stable and machine-readable: clients branch on it."),
            )
            .required("code")
            .property("message", string("For people; the wording may change."))
            .required("message")
            .property(
                "retry_after_secs",
                integer("Seconds to wait before asking again (also in `Retry-After`)."),
            )
            .property("limit", integer("The limit the request went over."))
            .property(
                "next_open",
                string("When the recipient's texting hours open next.")
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            );
        ObjectBuilder::new()
            .property("error", detail)
            .required("error")
            .description(Some("An error answer."))
            .into()
    }
}

impl ToSchema for ApiError {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Error")
    }
}

/// The finished document: the frame, every documented route, the shared
/// error answers.
pub fn document() -> &'static OpenApi {
    static DOCUMENT: OnceLock<OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let (_, mut document, _) = crate::server::route_table().into_parts();
        describe_errors(&mut document);
        document
    })
}

/// `GET /openapi.json`
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    security(()),
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object)),
)]
pub async fn openapi_json() -> Response {
    static JSON: OnceLock<String> = OnceLock::new();
    let body = JSON.get_or_init(|| {
        document()
            .to_pretty_json()
            .unwrap_or_else(|err| json!({"error": err.to_string()}).to_string())
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.as_str(),
    )
        .into_response()
}

/// What makes an operation give one of the shared error answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trait {
    /// Every operation.
    Any,
    /// Needs an API key or a session (has no `security` of its own).
    Authenticated,
    /// Authenticated and changes something.
    Write,
    /// Has path parameters: ids parsed by the handler.
    Path,
    /// Has query parameters.
    Query,
    /// Takes `min_position`, so waits for a read model.
    MinPosition,
    /// Takes a JSON body.
    JsonBody,
}

/// (trait, status, code, description) of the answers an operation gives
/// for what it is, whatever it does.
#[rustfmt::skip]
const SHARED_ERRORS: &[(Trait, u16, &str, &str)] = &[
    (Trait::Any, 500, "internal", "a failure of ours; logged, not explained"),
    (Trait::Any, 503, "storage_unavailable", "the database is unavailable; ask again after `retry_after_secs`"),
    (Trait::Authenticated, 401, "unauthenticated", "no valid API key or session"),
    (Trait::Authenticated, 403, "forbidden", "the caller's role may not do this"),
    (Trait::Write, 403, "csrf_failed", "a session request without its X-CSRF-Token"),
    (Trait::Write, 409, "conflict", "a concurrent change moved what this writes; try again"),
    (Trait::Path, 400, "invalid_path", "a path segment is not UTF-8 once decoded"),
    (Trait::Path, 404, "not_found", "what the path names does not exist in the caller's organization"),
    (Trait::Query, 422, "invalid_request", "a query parameter is unknown or malformed"),
    (Trait::MinPosition, 503, "projection_lagging", "the read model has not reached `min_position` yet; try again"),
    (Trait::MinPosition, 422, "invalid_request", "`min_position` is past the end of the log"),
    (Trait::JsonBody, 400, "invalid_json", "the body is not JSON"),
    (Trait::JsonBody, 413, "payload_too_large", "the body is larger than the server reads"),
    (Trait::JsonBody, 415, "unsupported_media_type", "the body is not `Content-Type: application/json`"),
    (Trait::JsonBody, 422, "invalid_request", "the body has the wrong shape, an unknown field or a bad value"),
];

/// Whether `operation` (answering `method`) has `quality`.
fn has(operation: &Operation, write: bool, quality: Trait) -> bool {
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let parameter =
        |test: &dyn Fn(&utoipa::openapi::path::Parameter) -> bool| parameters.iter().any(test);
    // No `security` of its own: the document's (a key or a session).
    let authenticated = operation.security.is_none();
    match quality {
        Trait::Any => true,
        Trait::Authenticated => authenticated,
        Trait::Write => authenticated && write,
        Trait::Path => parameter(&|p| p.parameter_in == ParameterIn::Path),
        Trait::Query => parameter(&|p| p.parameter_in == ParameterIn::Query),
        Trait::MinPosition => parameter(&|p| p.name == "min_position"),
        Trait::JsonBody => operation
            .request_body
            .as_ref()
            .is_some_and(|body| body.content.contains_key("application/json")),
    }
}

/// Adds each operation's shared error answers and makes every error
/// answer's schema the error shape with its codes as an enum.
pub fn describe_errors(document: &mut OpenApi) {
    document
        .components
        .get_or_insert_default()
        .schemas
        .insert(ApiError::name().into_owned(), ApiError::schema());
    for item in document.paths.paths.values_mut() {
        if let Some(operation) = &mut item.get {
            describe_operation_errors(operation, false);
        }
        for operation in [
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            describe_operation_errors(operation, true);
        }
    }
}

fn describe_operation_errors(operation: &mut Operation, write: bool) {
    // status → (codes, description lines)
    let mut errors: BTreeMap<u16, (BTreeSet<String>, Vec<String>)> = BTreeMap::new();
    for (status, response) in &operation.responses.responses {
        let Ok(status) = status.parse::<u16>() else {
            continue;
        };
        if status < 400 {
            continue;
        }
        if let RefOr::T(response) = response {
            let entry = errors.entry(status).or_default();
            entry.0.extend(codes_in(&response.description));
            entry.1.push(response.description.clone());
        }
    }
    for &(quality, status, code, description) in SHARED_ERRORS {
        if !has(operation, write, quality) {
            continue;
        }
        let entry = errors.entry(status).or_default();
        if entry.0.insert(code.to_owned()) {
            entry.1.push(format!("`{code}`: {description}"));
        }
    }
    for (status, (codes, lines)) in errors {
        operation
            .responses
            .responses
            .insert(status.to_string(), RefOr::T(error_response(&codes, &lines)));
    }
}

/// The codes in an error answer's description: each in backticks followed
/// by a colon (other backticked words, like field names, are not codes).
fn codes_in(description: &str) -> Vec<String> {
    let parts: Vec<&str> = description.split('`').collect();
    (1..parts.len())
        .step_by(2)
        .filter(|&index| {
            let code = parts[index];
            let after = parts.get(index + 1).copied().unwrap_or_default();
            after.starts_with(':')
                && !code.is_empty()
                && code
                    .bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte == b'_')
        })
        .map(|index| parts[index].to_owned())
        .collect()
}

/// An error answer that carries one of `codes`.
fn error_response(codes: &BTreeSet<String>, lines: &[String]) -> ResponseDoc {
    let code_enum = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(codes.iter().cloned()));
    let narrowed =
        ObjectBuilder::new().property("error", ObjectBuilder::new().property("code", code_enum));
    let schema = AllOfBuilder::new()
        .item(RefOr::<Schema>::Ref(
            utoipa::openapi::Ref::from_schema_name(ApiError::name()),
        ))
        .item(narrowed);
    let extensions = ExtensionsBuilder::new()
        .add("x-error-codes", json!(codes.iter().collect::<Vec<_>>()))
        .build();
    ResponseBuilder::new()
        .description(lines.join("; "))
        .content(
            "application/json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(schema))
                .build(),
        )
        .extensions(Some(extensions))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_from_backticks_in_descriptions() {
        let codes = codes_in(
            "`not_found`: no such campaign; `conflict`: it moved (`next_open`); `Not A`: x",
        );
        assert_eq!(codes, ["not_found", "conflict"]);
    }
}
