//! Organizations, members, API keys, roles and tenancy over HTTP.

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, expect_conflict, expect_error, expect_forbidden, expect_invalid_request,
    expect_not_found, expect_unauthenticated, expect_unsupported_media_type, item, json, sent,
};

crate::on_both_backends!(
    requests_without_a_valid_key_are_401_json,
    a_revoked_key_stops_working_at_once,
    me_describes_the_key_its_org_member_and_permissions,
    owners_add_members_and_list_them,
    bad_member_input_is_rejected_with_the_problem_named_and_nothing_stored,
    keys_bound_to_members_carry_their_role,
    roles_without_the_permission_get_403,
    managers_onboard_texters_and_nobody_else,
    nobody_grants_a_role_above_their_own,
    another_orgs_members_and_keys_are_invisible_and_answer_404,
    texters_are_listed_by_name_for_those_who_read_about_them,
    a_manager_cannot_mint_a_key_that_acts_as_a_texter,
);

const KEYS: &str = "/v1/api-keys";
const MEMBERS: &str = "/v1/members";

async fn requests_without_a_valid_key_are_401_json(app: TestApp) -> TestApp {
    let missing = app.get("/v1/me").await;
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    expect_unauthenticated(missing).await;
    let basic = sent(
        app.client
            .get(app.url("/v1/me"))
            .header("authorization", "Basic abc"),
    )
    .await;
    expect_unauthenticated(basic).await;
    let malformed = app.get_as("not-a-key", "/v1/me").await;
    expect_unauthenticated(malformed).await;
    let unknown = app
        .get_as(&format!("tbk_{}", "0".repeat(48)), "/v1/me")
        .await;
    let message = expect_unauthenticated(unknown).await;
    assert!(message.contains("invalid or revoked"));
    app
}

async fn a_revoked_key_stops_working_at_once(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    let issued = app
        .post_ok(&owner, KEYS, &json!({"role": "manager", "label": "laptop"}))
        .await;
    let key = issued["key"].as_str().unwrap();
    let key_id = issued["key_id"].as_str().unwrap();
    assert_eq!(app.get_as(key, "/v1/me").await.status(), 200);

    let revoked = app
        .delete_as(&owner, &format!("/v1/api-keys/{key_id}"))
        .await;
    assert_eq!(revoked.status(), 200);
    expect_unauthenticated(app.get_as(key, "/v1/me").await).await;
    // Revoking again is harmless; the listing shows when it happened.
    assert_eq!(
        app.delete_as(&owner, &format!("/v1/api-keys/{key_id}"))
            .await
            .status(),
        200
    );
    let keys = app.get_ok(&owner, KEYS).await;
    let listed = item(&keys["api_keys"], "key_id", key_id);
    assert!(listed["revoked_at"].is_string());
    assert!(
        listed.get("key").is_none() && listed.get("key_hash").is_none(),
        "secrets never listed"
    );
    app
}

async fn me_describes_the_key_its_org_member_and_permissions(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    let me = app.get_ok(&owner, "/v1/me").await;
    assert_eq!(me["org_name"], "Rivera for Council");
    assert_eq!(me["role"], "owner");
    assert!(me["member"].is_null());
    let (member_id, texter) = app
        .member_with_key(&owner, "ana@example.org", "texter")
        .await;
    let me = app.get_ok(&texter, "/v1/me").await;
    assert_eq!(me["role"], "texter");
    assert_eq!(me["member"]["member_id"], member_id.as_str());
    assert_eq!(me["member"]["email"], "ana@example.org");
    let permissions: Vec<&str> = me["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(permissions.contains(&"Send") && !permissions.contains(&"ManageMembers"));
    app
}

async fn owners_add_members_and_list_them(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    let added = app
        .post_as(
            &owner,
            MEMBERS,
            &json!({"name": "Ana Ruiz", "email": "Ana@Example.org", "role": "manager"}),
        )
        .await;
    assert_eq!(added.status(), 201);
    let added = json(added).await;
    assert_eq!(added["email"], "ana@example.org");
    assert!(added["position"].as_u64().unwrap() > 0);
    let members = app.get_ok(&owner, MEMBERS).await;
    let members = members["members"].as_array().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["name"], "Ana Ruiz");
    assert_eq!(members[0]["role"], "manager");
    app
}

async fn bad_member_input_is_rejected_with_the_problem_named_and_nothing_stored(
    app: TestApp,
) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    let cases = [
        (
            json!({"name": "A", "email": "not-an-email", "role": "texter"}),
            422,
            "invalid_request",
            "email",
        ),
        (
            json!({"name": "  ", "email": "a@b.org", "role": "texter"}),
            422,
            "invalid_request",
            "name",
        ),
        (
            json!({"name": "A", "email": "a@b.org", "role": "root"}),
            422,
            "invalid_request",
            "role",
        ),
        (
            json!({"name": "A", "email": "a@b.org"}),
            422,
            "invalid_request",
            "role",
        ),
        (
            json!({"name": "A", "email": "a@b.org", "role": "texter", "org_id": "x"}),
            422,
            "invalid_request",
            "org_id",
        ),
        (
            json!({"name": "x".repeat(201), "email": "a@b.org", "role": "texter"}),
            422,
            "invalid_request",
            "name",
        ),
    ];
    for (body, status, code, named) in cases {
        let message = expect_error(app.post_as(&owner, MEMBERS, &body).await, status, code).await;
        assert!(message.contains(named), "{message:?} should name {named}");
    }
    let broken = sent(
        app.client
            .post(app.url(MEMBERS))
            .bearer_auth(&owner)
            .header("content-type", "application/json")
            .body("{\"name\": "),
    )
    .await;
    expect_error(broken, 400, "invalid_json").await;
    let not_json = sent(
        app.client
            .post(app.url(MEMBERS))
            .bearer_auth(&owner)
            .body("name=A"),
    )
    .await;
    expect_unsupported_media_type(not_json).await;

    app.member_with_key(&owner, "dup@example.org", "texter")
        .await;
    let duplicate = app
        .post_as(
            &owner,
            MEMBERS,
            &json!({"name": "B", "email": "DUP@example.org", "role": "manager"}),
        )
        .await;
    expect_conflict(duplicate).await;
    let members = app.get_ok(&owner, MEMBERS).await;
    assert_eq!(
        members["members"].as_array().unwrap().len(),
        1,
        "nothing half-written"
    );
    app
}

async fn keys_bound_to_members_carry_their_role(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    let (member_id, _) = app
        .member_with_key(&owner, "sam@example.org", "texter")
        .await;
    let mismatch = app
        .post_as(
            &owner,
            KEYS,
            &json!({"role": "manager", "member_id": member_id}),
        )
        .await;
    let message = expect_invalid_request(mismatch).await;
    assert!(message.contains("texter"));
    let ghost = app
        .post_as(
            &owner,
            KEYS,
            &json!({"role": "texter", "member_id": uuid::Uuid::now_v7()}),
        )
        .await;
    expect_not_found(ghost).await;
    app
}

async fn roles_without_the_permission_get_403(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    // (Managers may add texters: see managers_onboard_texters_and_nobody_else.)
    for (role, email) in [("texter", "t@example.org"), ("compliance", "c@example.org")] {
        let key = app.member_key(&owner, email, role).await;
        let add = app
            .post_as(
                &key,
                MEMBERS,
                &json!({"name": "X", "email": "x@example.org", "role": "texter"}),
            )
            .await;
        let message = expect_forbidden(add).await;
        assert!(message.contains(role), "{message}");
        expect_forbidden(app.get_as(&key, MEMBERS).await).await;
        expect_forbidden(app.post_as(&key, KEYS, &json!({"role": "texter"})).await).await;
    }
    let admin = app.member_key(&owner, "a@example.org", "admin").await;
    assert_eq!(app.get_as(&admin, MEMBERS).await.status(), 200);
    app
}

async fn managers_onboard_texters_and_nobody_else(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    let manager = app.member_key(&owner, "m@example.org", "manager").await;
    // The manager adds the texter; the key that acts as them comes from an
    // owner (see a_manager_cannot_mint_a_key_that_acts_as_a_texter).
    let added = app
        .post_ok(
            &manager,
            MEMBERS,
            &json!({"name": "Tess", "email": "t@example.org", "role": "texter"}),
        )
        .await;
    let texter_id = added["member_id"].as_str().unwrap().to_owned();
    let texter_key = app
        .post_ok(
            &owner,
            KEYS,
            &json!({"role": "texter", "member_id": texter_id}),
        )
        .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.get_as(&texter_key, "/v1/me").await.status(), 200);
    for role in ["manager", "admin", "compliance"] {
        let add = app
            .post_as(
                &manager,
                MEMBERS,
                &json!({"name": "X", "email": format!("{role}@example.org"), "role": role}),
            )
            .await;
        let message = expect_forbidden(add).await;
        assert!(message.contains(role), "{message}");
    }
    let admin_key = app.post_ok(&owner, KEYS, &json!({"role": "admin"})).await;
    let revoke_admin = app
        .delete_as(
            &manager,
            &format!("/v1/api-keys/{}", admin_key["key_id"].as_str().unwrap()),
        )
        .await;
    expect_forbidden(revoke_admin).await;
    let texter_keys = app.get_ok(&manager, KEYS).await;
    let texter_key_id = item(&texter_keys["api_keys"], "member_id", &texter_id)["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.delete_as(&manager, &format!("/v1/api-keys/{texter_key_id}"))
            .await
            .status(),
        200
    );
    expect_unauthenticated(app.get_as(&texter_key, "/v1/me").await).await;
    app
}

async fn nobody_grants_a_role_above_their_own(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    let admin = app.member_key(&owner, "a@example.org", "admin").await;
    let owner_member = app
        .post_as(
            &admin,
            MEMBERS,
            &json!({"name": "X", "email": "x@example.org", "role": "owner"}),
        )
        .await;
    expect_forbidden(owner_member).await;
    expect_forbidden(app.post_as(&admin, KEYS, &json!({"role": "owner"})).await).await;
    assert_eq!(
        app.post_as(&owner, KEYS, &json!({"role": "owner"}))
            .await
            .status(),
        201
    );
    app
}

async fn another_orgs_members_and_keys_are_invisible_and_answer_404(app: TestApp) -> TestApp {
    let alpha = app.create_org("Alpha").await;
    let beta = app.create_org("Beta").await;
    let (beta_member, _) = app.member_with_key(&beta, "b@example.org", "texter").await;
    let beta_key = app.post_ok(&beta, KEYS, &json!({"role": "manager"})).await;
    let beta_key_id = beta_key["key_id"].as_str().unwrap();

    let members = app.get_ok(&alpha, MEMBERS).await;
    assert!(members["members"].as_array().unwrap().is_empty());
    let keys = app.get_ok(&alpha, KEYS).await;
    assert!(
        keys["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["key_id"] != beta_key_id)
    );

    // Another org's key id, a random id and garbage all answer the same 404.
    let cross = expect_not_found(
        app.delete_as(&alpha, &format!("/v1/api-keys/{beta_key_id}"))
            .await,
    )
    .await;
    let random = expect_not_found(
        app.delete_as(&alpha, &format!("/v1/api-keys/{}", uuid::Uuid::now_v7()))
            .await,
    )
    .await;
    let garbage = expect_not_found(app.delete_as(&alpha, "/v1/api-keys/not-an-id").await).await;
    assert_eq!(cross, random);
    assert_eq!(cross, garbage);
    assert_eq!(
        app.get_as(beta_key["key"].as_str().unwrap(), "/v1/me")
            .await
            .status(),
        200
    );

    let bind = app
        .post_as(
            &alpha,
            KEYS,
            &json!({"role": "texter", "member_id": beta_member}),
        )
        .await;
    expect_not_found(bind).await;
    app
}

async fn texters_are_listed_by_name_for_those_who_read_about_them(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    let (texter_id, texter) = app
        .member_with_key(&owner, "tess@example.org", "texter")
        .await;
    let compliance = app.member_key(&owner, "cy@example.org", "compliance").await;
    app.member_with_key(&owner, "mo@example.org", "manager")
        .await;
    let other = app.create_org("Another campaign").await;
    app.member_with_key(&other, "other@example.org", "texter")
        .await;

    let listed = app.get_as(&compliance, "/v1/texters").await;
    assert_eq!(listed.status(), 200);
    let listed = json(listed).await;
    assert_eq!(
        listed,
        json!({"texters": [{"member_id": texter_id, "name": "Test Member"}]}),
        "only this org's texters, by id and name, no emails"
    );
    expect_forbidden(app.get_as(&texter, "/v1/texters").await).await;
    app
}

async fn a_manager_cannot_mint_a_key_that_acts_as_a_texter(app: TestApp) -> TestApp {
    let owner = app.create_org("Rivera for Council").await;
    let (manager_id, manager) = app
        .member_with_key(&owner, "m@example.org", "manager")
        .await;
    let (admin_id, admin) = app.member_with_key(&owner, "a@example.org", "admin").await;
    let (texter_id, _) = app.member_with_key(&owner, "t@example.org", "texter").await;
    let keys_before = app.get_ok(&owner, KEYS).await;

    // With such a key the manager's clicks would read as the texter's.
    let message = expect_error(
        app.post_as(
            &manager,
            KEYS,
            &json!({"role": "texter", "member_id": texter_id}),
        )
        .await,
        403,
        "member_key_not_yours",
    )
    .await;
    assert!(message.contains("manager"), "{message}");
    assert_eq!(app.get_ok(&owner, KEYS).await, keys_before);
    // An unbound texter key (a kiosk) acts as nobody: still theirs to issue.
    let kiosk = app
        .post_ok(&manager, KEYS, &json!({"role": "texter", "label": "kiosk"}))
        .await;
    // An admin may mint one for the texter; every key says who minted it.
    let bound = app
        .post_ok(
            &admin,
            KEYS,
            &json!({"role": "texter", "member_id": texter_id}),
        )
        .await;
    let manager_key_id = app.get_ok(&manager, "/v1/me").await["key_id"].clone();
    let admin_key_id = app.get_ok(&admin, "/v1/me").await["key_id"].clone();
    let keys = app.get_ok(&owner, KEYS).await;
    let listed =
        |key_id: &Value| item(&keys["api_keys"], "key_id", key_id.as_str().unwrap()).clone();
    let kiosk = listed(&kiosk["key_id"]);
    assert_eq!(kiosk["issued_by_key_id"], manager_key_id);
    assert_eq!(kiosk["issued_by_member_id"], manager_id.as_str());
    let bound = listed(&bound["key_id"]);
    assert_eq!(bound["member_id"], texter_id.as_str());
    assert_eq!(bound["issued_by_key_id"], admin_key_id);
    assert_eq!(bound["issued_by_member_id"], admin_id.as_str());
    // The owner key made at the command line was issued by nobody here.
    assert_eq!(keys["api_keys"][0]["issued_by_key_id"], Value::Null);
    app
}
