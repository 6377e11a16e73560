//! The OpenAPI document against the router: every `/v1`, webhook and
//! operational route is described and every described operation is served,
//! the document is served at `/openapi.json`, and `/docs` renders it.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{On, TestApp, click_tokens, spawn_app};

/// Routes that are API, not the web app's pages and assets.
fn is_api(path: &str) -> bool {
    path.starts_with("/v1/")
        || path.starts_with("/webhooks/")
        || ["/health", "/ready", "/metrics", "/openapi.json"].contains(&path)
}

/// (method, path) of every operation in the served document.
fn documented(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("a path item")
                .keys()
                .filter(|key| ["get", "post", "put", "patch", "delete"].contains(&key.as_str()))
                .map(|method| (method.to_uppercase(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn served_document(app: &TestApp) -> Value {
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.expect("the document is JSON")
}

#[tokio::test]
async fn every_api_route_is_documented_and_every_documented_operation_is_a_route() {
    let app = spawn_app(On::Sqlite, "openapi_coverage")
        .await
        .expect("sqlite always runs");
    let document = served_document(&app).await;
    let described = documented(&document);
    let routes: BTreeSet<(String, String)> = textbank_api::routes()
        .iter()
        .map(|route| (route.method.to_string(), route.path.clone()))
        .collect();
    let undocumented: Vec<String> = textbank_api::routes()
        .iter()
        .filter(|route| is_api(&route.path))
        .filter(|route| {
            !route.documented
                || !described.contains(&(route.method.to_string(), route.path.clone()))
        })
        .map(|route| format!("{} {}", route.method, route.path))
        .collect();
    assert!(
        undocumented.is_empty(),
        "API routes the OpenAPI document does not describe (register them with routes! \
         and a #[utoipa::path]): {undocumented:?}"
    );
    let unrouted: Vec<String> = described
        .iter()
        .filter(|operation| !routes.contains(operation))
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    assert!(
        unrouted.is_empty(),
        "operations the document describes but the router does not serve: {unrouted:?}"
    );
    // The router itself answers every documented operation (not its
    // fallback), whatever the route table says.
    for (method, path) in &described {
        let target = path.replace(['{', '}'], "");
        let response = app
            .client
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                app.url(&target),
            )
            .send()
            .await
            .expect("request");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let fallback = (status == StatusCode::NOT_FOUND && text.contains("no such route"))
            || status == StatusCode::METHOD_NOT_ALLOWED;
        assert!(!fallback, "{method} {path} is not routed: {status} {text}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_security_schemes_and_error_codes_per_operation() {
    let app = spawn_app(On::Sqlite, "openapi_document")
        .await
        .expect("sqlite always runs");
    let document = served_document(&app).await;
    assert_eq!(document["openapi"], "3.1.0");
    let schemes = document["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    assert_eq!(schemes["api_key"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["csrf_token"]["name"], "X-CSRF-Token");
    let mut operation_ids = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let name = format!("{method} {path}");
            let id = operation["operationId"].as_str().expect("an operationId");
            assert!(operation_ids.insert(id.to_owned()), "{name}: {id} twice");
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|status| status.starts_with('2')),
                "{name} documents no success"
            );
            for (status, response) in responses {
                if status.as_str() < "400" {
                    continue;
                }
                let codes = response["x-error-codes"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{name} {status}: no error codes"));
                assert!(!codes.is_empty(), "{name} {status}: no error codes");
                let schema = &response["content"]["application/json"]["schema"];
                assert_eq!(
                    schema["allOf"][0]["$ref"], "#/components/schemas/Error",
                    "{name} {status}: not the error shape"
                );
            }
            if operation.get("security").is_none() {
                for status in ["401", "403"] {
                    assert!(
                        responses.contains_key(status),
                        "{name} authenticates but documents no {status}"
                    );
                }
            }
        }
    }
    let page = &document["paths"]["/v1/conversations"]["get"]["parameters"];
    let names: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|parameter| parameter["name"].as_str())
        .collect();
    for name in ["cursor", "limit", "min_position"] {
        assert!(names.contains(&name), "the inbox documents no {name}");
    }
    app.stop().await;
}

#[tokio::test]
async fn docs_render_every_operation_from_the_document_with_nothing_from_other_sites() {
    let app = spawn_app(On::Sqlite, "openapi_docs")
        .await
        .expect("sqlite always runs");
    let document = served_document(&app).await;
    let response = app.get("/docs").await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    let page = response.text().await.unwrap();
    for (method, path) in documented(&document) {
        let heading = format!(
            "<code class=\"method {}\">{method}</code> <code>{path}</code>",
            method.to_lowercase()
        );
        assert!(page.contains(&heading), "/docs lacks {method} {path}");
    }
    for code in [
        "projection_lagging",
        "opted_out",
        "csrf_failed",
        "min_position",
    ] {
        assert!(page.contains(code), "/docs never mentions {code}");
    }
    for outside in [
        "http://",
        "https://",
        "src=\"//",
        "href=\"//",
        "<script",
        "@import",
    ] {
        assert!(!page.contains(outside), "/docs refers elsewhere: {outside}");
    }
    app.stop().await;
}

/// The names in every `type` enum of a schema: the variants of a tagged
/// event enum.
fn event_type_names(schema: &Value, names: &mut BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Array(variants)) = map
                .get("properties")
                .and_then(|properties| properties.get("type"))
                .and_then(|tag| tag.get("enum"))
            {
                names.extend(variants.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            map.values()
                .for_each(|inner| event_type_names(inner, names));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|inner| event_type_names(inner, names)),
        _ => {}
    }
}

#[tokio::test]
async fn every_event_type_the_feed_serves_has_its_schema_in_the_document() {
    let app = spawn_app(On::Sqlite, "openapi_event_types")
        .await
        .expect("sqlite always runs");
    let document = served_document(&app).await;
    let schemas = &document["components"]["schemas"];
    let mut described = BTreeSet::new();
    for family in [
        "RecipientEvent",
        "OrgEvent",
        "CampaignEvent",
        "ListEvent",
        "TexterEvent",
    ] {
        assert!(schemas[family].is_object(), "no schema for {family}");
        event_type_names(&schemas[family], &mut described);
    }
    assert!(described.contains("MessageSendClicked"), "{described:?}");

    // An org that uploads, launches, assigns and sends: the feed's types.
    let fixture = app.send_fixture(1).await;
    let tokens = click_tokens(&app.queue(&fixture, 1).await);
    // Sent, or refused and recorded as such: either way an event.
    app.click(&fixture.texter, &tokens[0], "k").await;
    let page = app.get_ok(&fixture.owner, "/v1/events?limit=1000").await;
    let served: BTreeSet<String> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|event| event["type"].as_str().map(str::to_owned))
        .collect();
    assert!(served.len() > 5, "{served:?}");
    let undescribed: Vec<&String> = served.difference(&described).collect();
    assert!(
        undescribed.is_empty(),
        "event types without a schema: {undescribed:?}"
    );
    app.stop().await;
}
