//! Where the carrier secret may go: carrier API bases only from the
//! operator's allowlist, never an internal address unless the operator says
//! so, and never a stored secret to a new address; every change recorded
//! with who made it and without the secret.

use serde_json::{Value, json};
use textbank_domain::DomainEvent;
use textbank_domain::org::OrgEvent;

use crate::helpers::{
    TEST_LOOPBACK_API, TEST_PROXY_API, TestApp, expect_error, success_json as json,
};

crate::on_both_backends!(spawn = spawn_carrier_app;
    an_admin_cannot_point_the_carrier_at_a_private_address,
    changing_the_carrier_api_base_needs_the_secret_again,
);

/// On a server with the default configuration.
mod defaults {
    use super::by_default_only_the_carriers_own_apis_are_allowed;

    crate::on_both_backends!(by_default_only_the_carriers_own_apis_are_allowed);
}

const TOKEN: &str = "owner-secret-token";

fn twilio(extra: Value) -> Value {
    let mut body = json!({
        "carrier": "twilio",
        "account_sid": "AC123",
        "sending_numbers": ["+12025550199"],
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

/// An org whose owner configured Twilio with [`TOKEN`]; (owner, admin) keys.
async fn configured(app: &TestApp) -> (String, String) {
    let owner = app.create_org("Carrier Org").await;
    json(
        app.put_as(&owner, "/v1/carrier", &twilio(json!({"auth_token": TOKEN})))
            .await,
    )
    .await;
    let admin = app.key_of_a(&owner, "admin").await;
    (owner, admin)
}

/// The org's carrier as the server would call it: the stored settings and
/// the secret its adapter holds.
async fn stored(app: &TestApp, owner: &str) -> (Value, String) {
    let view = app.get_ok(owner, "/v1/carrier").await;
    let org = app.get_ok(owner, "/v1/me").await["org_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let carrier = app.app.carrier_for(org).await.unwrap().unwrap();
    (view, carrier.webhook_secret().to_owned())
}

/// PUTs a carrier setting that must be refused with 422 `code`; returns the error message.
async fn rejected_put(app: &TestApp, key: &str, body: &Value, code: &str) -> String {
    expect_error(app.put_as(key, "/v1/carrier", body).await, 422, code).await
}

/// The carrier set up by `configured` is still the one stored: default address, same secret.
async fn assert_original_carrier_kept(app: &TestApp, owner: &str) {
    let (view, secret) = stored(app, owner).await;
    assert_eq!(view["api_base"], Value::Null);
    assert_eq!(secret, TOKEN);
}

async fn an_admin_cannot_point_the_carrier_at_a_private_address(app: TestApp) -> TestApp {
    let (owner, admin) = configured(&app).await;
    for api_base in [
        // Listed by the operator, but loopback: still refused.
        TEST_LOOPBACK_API,
        "http://[::ffff:127.0.0.1]:18940",
        "http://localhost:18940",
        // Not listed at all.
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:18940",
        "http://10.0.0.5",
        "https://attacker.example.net",
    ] {
        for body in [
            twilio(json!({"api_base": api_base})),
            twilio(json!({"api_base": api_base, "auth_token": "new-token"})),
        ] {
            let message = rejected_put(&app, &admin, &body, "address_not_allowed").await;
            assert!(message.contains("api_base"), "{message}");
        }
    }
    assert_original_carrier_kept(&app, &owner).await;
    app
}

async fn changing_the_carrier_api_base_needs_the_secret_again(app: TestApp) -> TestApp {
    let (owner, admin) = configured(&app).await;
    let head = app.app.events().head_position().await.unwrap();

    // The stored token must not follow a new address it was never given to.
    let body = twilio(json!({"api_base": TEST_PROXY_API}));
    let message = rejected_put(&app, &admin, &body, "secret_required").await;
    assert!(message.contains("auth_token"), "{message}");
    assert_original_carrier_kept(&app, &owner).await;
    assert_eq!(app.app.events().head_position().await.unwrap(), head);

    // With the secret given again, the new address is taken.
    let admin_key = app.get_ok(&admin, "/v1/me").await["key_id"].clone();
    let changed = json(
        app.put_as(
            &admin,
            "/v1/carrier",
            &twilio(json!({"api_base": format!("{TEST_PROXY_API}/"), "auth_token": "proxy-token"})),
        )
        .await,
    )
    .await;
    assert_eq!(changed["api_base"], TEST_PROXY_API);
    // Same address, no secret: the stored one is kept.
    json(
        app.put_as(
            &admin,
            "/v1/carrier",
            &twilio(json!({"api_base": TEST_PROXY_API, "help_text": "Reply STOP to stop."})),
        )
        .await,
    )
    .await;
    assert_eq!(stored(&app, &owner).await.1, "proxy-token");

    // Each change is on the org's log, by whom, naming the replaced secret
    // and never its value.
    let changes: Vec<(OrgEvent, Value)> = app
        .events_after(head)
        .await
        .into_iter()
        .filter_map(|event| {
            let parsed = OrgEvent::from_parts(&event.event_type, &event.data).ok()??;
            for secret in [TOKEN, "proxy-token"] {
                assert!(!event.data.to_string().contains(secret), "{}", event.data);
            }
            Some((parsed, serde_json::to_value(&event.metadata).unwrap()))
        })
        .filter(|(event, _)| matches!(event, OrgEvent::CarrierSettingsChanged { .. }))
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    let replaced: Vec<Vec<String>> = changes
        .iter()
        .map(|(event, metadata)| {
            let OrgEvent::CarrierSettingsChanged {
                carrier,
                api_base,
                secrets_replaced,
                ..
            } = event
            else {
                unreachable!()
            };
            assert_eq!(carrier, "twilio");
            assert_eq!(api_base.as_deref(), Some(TEST_PROXY_API));
            assert!(metadata.to_string().contains(admin_key.as_str().unwrap()));
            secrets_replaced.clone()
        })
        .collect();
    assert_eq!(replaced, vec![vec!["auth_token".to_owned()], vec![]]);
    app
}

async fn by_default_only_the_carriers_own_apis_are_allowed(app: TestApp) -> TestApp {
    let owner = app.create_org("Carrier Org").await;
    let proxied = twilio(json!({"api_base": TEST_PROXY_API, "auth_token": TOKEN}));
    rejected_put(&app, &owner, &proxied, "address_not_allowed").await;
    let twilio_itself = app
        .put_as(
            &owner,
            "/v1/carrier",
            &twilio(json!({"api_base": "https://api.twilio.com", "auth_token": TOKEN})),
        )
        .await;
    assert_eq!(
        json(twilio_itself).await["api_base"],
        "https://api.twilio.com"
    );
    app
}
