//! Health, readiness, metrics and the JSON shape of errors.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{RawResponse, TestApp, sent};

crate::on_both_backends!(
    health_answers_while_the_process_is_up,
    ready_names_the_database_when_it_is_reachable,
    ready_is_503_with_a_json_error_when_the_database_is_gone,
    metrics_expose_request_counts_and_the_log_head_as_prometheus_text,
    an_unknown_route_is_a_json_404,
    a_wrong_method_is_a_json_405,
    every_bad_request_is_answered_in_json_with_a_code,
    json_and_csv_answers_tell_browsers_not_to_sniff,
    a_request_while_the_database_is_gone_is_503_with_retry_after,
    ready_says_so_while_the_database_refuses_writes_and_recovers_with_it,
    a_shutdown_stops_listening_and_closes_the_database_and_a_restart_serves_the_same_data,
);

async fn error_of(response: reqwest::Response) -> (String, String) {
    let body: Value = response.json().await.expect("a JSON error body");
    let error = &body["error"];
    (
        error["code"].as_str().expect("error.code").to_owned(),
        error["message"].as_str().expect("error.message").to_owned(),
    )
}

async fn health_answers_while_the_process_is_up(app: TestApp) -> TestApp {
    let response = app.get("/health").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    app
}

async fn ready_names_the_database_when_it_is_reachable(app: TestApp) -> TestApp {
    let response = app.get("/ready").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    let backend = body["database"].as_str().unwrap();
    assert!(backend == "sqlite" || backend == "postgres", "{backend}");
    // Without --event-store-url the log is in the database.
    assert_eq!(body["event_log"], backend);
    app
}

async fn ready_is_503_with_a_json_error_when_the_database_is_gone(app: TestApp) -> TestApp {
    app.app.close().await;
    let response = app.get("/ready").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "2");
    let (code, message) = error_of(response).await;
    assert_eq!(code, "database_unavailable");
    assert!(message.contains("database"));
    // Liveness is not readiness: the process still answers.
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);
    app
}

async fn metrics_expose_request_counts_and_the_log_head_as_prometheus_text(
    app: TestApp,
) -> TestApp {
    app.get("/health").await;
    app.get("/health").await;
    app.get("/no/such/thing/42").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains(
            r#"textbank_http_requests_total{method="GET",route="/health",status="200"} 2"#
        ),
        "{text}"
    );
    // Unmatched paths are pooled, so ids in URLs cannot explode cardinality.
    assert!(
        text.contains(r#"route="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(!text.contains("/no/such/thing"));
    assert!(text.contains("textbank_event_log_head_position 0"));
    assert!(text.contains("textbank_database_up 1"));
    app
}

async fn an_unknown_route_is_a_json_404(app: TestApp) -> TestApp {
    let response = app.get("/v1/nothing-here").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["content-type"], "application/json");
    let (code, _) = error_of(response).await;
    assert_eq!(code, "not_found");
    app
}

async fn a_wrong_method_is_a_json_405(app: TestApp) -> TestApp {
    let response = sent(app.client.delete(app.url("/health"))).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let (code, _) = error_of(response).await;
    assert_eq!(code, "method_not_allowed");
    app
}

/// A request reqwest would refuse to send, written byte for byte.
fn raw_get(target: &[u8], headers: &[u8]) -> Vec<u8> {
    [
        &b"GET "[..],
        target,
        b" HTTP/1.1\r\nhost: test\r\n",
        headers,
        b"\r\n",
    ]
    .concat()
}

fn assert_json_error(response: &RawResponse, status: u16, code: &str, what: &str) {
    assert_eq!(response.status, status, "{what}: {response:?}");
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{what}: {response:?}"
    );
    let body: Value = serde_json::from_slice(&response.body)
        .unwrap_or_else(|err| panic!("{what}: not JSON ({err}): {response:?}"));
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert!(
        !body["error"]["message"].as_str().unwrap().is_empty(),
        "{what}: {body}"
    );
}

async fn every_bad_request_is_answered_in_json_with_a_code(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    let auth = format!("authorization: Bearer {owner}\r\n");
    let auth = auth.as_bytes();
    let long_path = format!("/v1/lists?name={}", "a".repeat(70_000));
    let longish_path = format!("/v1/lists?name={}", "a".repeat(10_000));
    let big_header = format!("x-filler: {}\r\n", "a".repeat(500_000));
    let largish_header = format!("x-filler: {}\r\n", "a".repeat(70_000));
    let many_headers: String = (0..150).map(|i| format!("x-h{i}: 1\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "a negative queue limit",
            raw_get(b"/v1/texter/queue?campaign_id=x&limit=-1", auth),
            422,
            "invalid_request",
        ),
        (
            "an unknown query parameter",
            raw_get(b"/v1/conversations?limt=5", auth),
            422,
            "invalid_request",
        ),
        (
            "raw non-UTF-8 bytes in the path",
            raw_get(b"/v1/lists/\xff\xfe", auth),
            400,
            "bad_request",
        ),
        (
            "percent-encoded non-UTF-8 in a path segment",
            raw_get(b"/v1/lists/%FF%FE", auth),
            400,
            "invalid_path",
        ),
        (
            "a 10 KB URL",
            raw_get(longish_path.as_bytes(), auth),
            414,
            "uri_too_long",
        ),
        (
            "a 70 KB URL",
            raw_get(long_path.as_bytes(), auth),
            414,
            "uri_too_long",
        ),
        (
            "a 500 KB header",
            raw_get(b"/health", big_header.as_bytes()),
            431,
            "headers_too_large",
        ),
        (
            "a 70 KB header",
            raw_get(b"/health", largish_header.as_bytes()),
            431,
            "headers_too_large",
        ),
        (
            "150 headers",
            raw_get(b"/health", many_headers.as_bytes()),
            431,
            "headers_too_large",
        ),
        (
            "a control character in Idempotency-Key",
            [
                &b"POST /v1/messages HTTP/1.1\r\nhost: test\r\n"[..],
                auth,
                b"idempotency-key: a\x01b\r\ncontent-type: application/json\r\n\
                  content-length: 2\r\n\r\n{}",
            ]
            .concat(),
            400,
            "bad_request",
        ),
        (
            "a request line that is not HTTP",
            b"HELLO THERE\r\n\r\n".to_vec(),
            400,
            "bad_request",
        ),
        (
            "an opt-out body that is not JSON",
            [
                &b"POST /v1/conversations/x/opt-out HTTP/1.1\r\nhost: test\r\n"[..],
                auth,
                b"content-length: 3\r\n\r\n{x}",
            ]
            .concat(),
            422,
            "invalid_request",
        ),
        (
            "an unknown route",
            raw_get(b"/nowhere", b""),
            404,
            "not_found",
        ),
        (
            "a wrong method",
            b"PUT /health HTTP/1.1\r\nhost: test\r\ncontent-length: 0\r\n\r\n".to_vec(),
            405,
            "method_not_allowed",
        ),
    ];
    for (what, request, status, code) in cases {
        let response = app.raw(&request).await;
        assert_json_error(&response, status, code, what);
    }
    app
}

async fn json_and_csv_answers_tell_browsers_not_to_sniff(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    for path in ["/v1/me", "/v1/opt-outs", "/v1/nothing-here"] {
        let response = app.get_as(&owner, path).await;
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
    }
    assert_eq!(
        app.get("/health").await.headers()["x-content-type-options"],
        "nosniff"
    );
    app
}

async fn a_request_while_the_database_is_gone_is_503_with_retry_after(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera").await;
    app.app.close().await;
    let response = app.get_as(&owner, "/v1/lists").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "2");
    let (code, _) = error_of(response).await;
    assert_eq!(code, "storage_unavailable");
    app
}

async fn ready_says_so_while_the_database_refuses_writes_and_recovers_with_it(
    app: TestApp,
) -> TestApp {
    // A failing statement stands in for a full disk: reads still work,
    // writes fail.
    let (refuse, allow) = match app.app.database() {
        textbank_store::Database::Sqlite { .. } => (
            "CREATE TRIGGER disk_full BEFORE UPDATE ON write_probe
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
            "DROP TRIGGER disk_full",
        ),
        textbank_store::Database::Postgres(_) => (
            "CREATE RULE disk_full AS ON UPDATE TO write_probe
             DO INSTEAD SELECT 1 / 0",
            "DROP RULE disk_full ON write_probe",
        ),
    };
    app.execute(refuse).await;
    let response = app.get("/ready").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "2");
    let (code, message) = error_of(response).await;
    assert_eq!(code, "storage_unavailable");
    assert!(message.contains("refuses writes"), "{message}");
    app.execute(allow).await;
    let response = app.get("/ready").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["writes"], "ok");
    app
}

async fn a_shutdown_stops_listening_and_closes_the_database_and_a_restart_serves_the_same_data(
    app: TestApp,
) -> TestApp {
    let owner = app.create_org("Restarted Org").await;
    let (old_address, old_app) = (app.address.clone(), app.app.clone());
    let app = app.restart().await;
    assert_ne!(app.address, old_address);
    let refused = app.client.get(format!("{old_address}/health")).send().await;
    assert!(
        refused.as_ref().is_err_and(reqwest::Error::is_connect),
        "the old listener still answers: {refused:?}"
    );
    assert!(
        old_app.ready().await.is_err(),
        "the old server's database pool is still open"
    );
    // The new server, on the same database opened from its URL, knows
    // the key the old one issued.
    let me = app.get_as(&owner, "/v1/me").await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(app.get("/ready").await.status(), StatusCode::OK);
    app
}
