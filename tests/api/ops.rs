//! Health, readiness, metrics and the JSON shape of errors.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

crate::on_both_backends!(
    health_answers_while_the_process_is_up,
    ready_names_the_database_when_it_is_reachable,
    ready_is_503_with_a_json_error_when_the_database_is_gone,
    metrics_expose_request_counts_and_the_log_head_as_prometheus_text,
    an_unknown_route_is_a_json_404,
    a_wrong_method_is_a_json_405,
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
    app
}

async fn ready_is_503_with_a_json_error_when_the_database_is_gone(app: TestApp) -> TestApp {
    app.app.close().await;
    let response = app.get("/ready").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
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
    let response = app.client.delete(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let (code, _) = error_of(response).await;
    assert_eq!(code, "method_not_allowed");
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
