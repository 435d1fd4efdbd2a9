//! The sandbox's roles, permissions, resource servers and organizations (issue 14) behave as
//! AUTH0-FACTS.md ("Roles, permissions, organizations") and the spec say Auth0's do, and every
//! answer matches the spec's schema.

use auth0_bulk::sandbox::{SandboxOptions, User};
use serde_json::{Value, json};

use crate::support::oas;
use crate::support::tenant::{Reply, Tenant, encode};

const UPA: &str = "Username-Password-Authentication";
const API: &str = "https://api.test/";

/// A quiet tenant with `n` plain users `auth0|u000`.. (no generated roles).
async fn tenant_with_users(n: usize) -> Tenant {
    let tenant = Tenant::start(SandboxOptions::default()).await;
    tenant.sandbox.insert_users((0..n).map(user));
    tenant
}

fn user(i: usize) -> User {
    let value = json!({
        "user_id": format!("auth0|u{i:03}"),
        "email": format!("u{i:03}@example.com"),
        "name": format!("User {i}"),
        "picture": "https://example.com/p.png",
        "identities": [{"connection": UPA, "user_id": format!("u{i:03}"), "provider": "auth0", "isSocial": false}],
        "created_at": "2024-01-01T00:00:00.000Z",
        "updated_at": "2024-01-01T00:00:00.000Z",
    });
    value.as_object().cloned().unwrap()
}

fn uid(i: usize) -> String {
    encode(&format!("auth0|u{i:03}"))
}

/// Asserts the status and, for a JSON answer, the spec's schema of `template`.
fn ok(reply: &Reply, method: &str, template: &str, status: u16) {
    assert_eq!(
        reply.status, status,
        "{method} {template}: {:?}",
        reply.body
    );
    if !reply.body.is_null() {
        oas::assert_response_matches(method, template, status, &reply.body);
    }
}

/// A checkpoint page: the last one (without `next`) fits both of the spec's paged shapes,
/// which its `oneOf` cannot tell apart, so it is checked against the checkpoint shape itself.
fn checkpoint_ok(reply: &Reply, template: &str, schema: &str) {
    if reply.body.get("next").is_some() {
        return ok(reply, "GET", template, 200);
    }
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let violations = oas::schema_violations(schema, &reply.body);
    assert!(violations.is_empty(), "{violations:?}");
}

fn refused(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    oas::assert_error_body(&reply.body, status, code);
}

async fn create_role(tenant: &Tenant, name: &str) -> String {
    let reply = tenant.post("/roles", &json!({"name": name})).await;
    ok(&reply, "POST", "/roles", 200);
    reply.body["id"].as_str().unwrap().to_string()
}

async fn create_api(tenant: &Tenant, identifier: &str, scopes: &[&str]) {
    let scopes: Vec<Value> = scopes.iter().map(|s| json!({"value": s})).collect();
    let reply = tenant
        .post(
            "/resource-servers",
            &json!({"identifier": identifier, "name": "Test API", "scopes": scopes}),
        )
        .await;
    ok(&reply, "POST", "/resource-servers", 201);
}

async fn create_org(tenant: &Tenant, name: &str) -> String {
    let reply = tenant
        .post(
            "/organizations",
            &json!({"name": name, "display_name": "Org"}),
        )
        .await;
    ok(&reply, "POST", "/organizations", 201);
    reply.body["id"].as_str().unwrap().to_string()
}

fn perm(name: &str) -> Value {
    json!({"resource_server_identifier": API, "permission_name": name})
}

/// `GET /__sandbox/users[?with=authz]` as parsed lines.
async fn evidence(tenant: &Tenant, query: &str) -> Vec<Value> {
    tenant.evidence_users(query).await
}

// ---- roles --------------------------------------------------------------------------------

#[tokio::test]
async fn roles_are_created_once_by_name_listed_filtered_and_found_by_id() {
    let tenant = tenant_with_users(0).await;
    let admin = create_role(&tenant, "Admin").await;
    create_role(&tenant, "Viewer").await;
    refused(
        &tenant.post("/roles", &json!({"name": "Admin"})).await,
        409,
        "conflict",
    );
    refused(
        &tenant.post("/roles", &json!({})).await,
        400,
        "invalid_body",
    );
    refused(
        &tenant
            .post("/roles", &json!({"name": "x", "colour": "red"}))
            .await,
        400,
        "invalid_body",
    );
    let all = tenant.get("/roles?include_totals=true").await;
    ok(&all, "GET", "/roles", 200);
    assert_eq!(all.body["total"], 2);
    let filtered = tenant.get("/roles?name_filter=adm").await;
    ok(&filtered, "GET", "/roles", 200);
    assert_eq!(filtered.body, json!([{"id": admin, "name": "Admin"}]));
    let one = tenant.get(&format!("/roles/{admin}")).await;
    ok(&one, "GET", "/roles/{id}", 200);
    assert_eq!(one.body["name"], "Admin");
    refused(&tenant.get("/roles/rol_nope").await, 404, "inexistent_role");
    refused(
        &tenant.get("/roles?per_page=101").await,
        400,
        "invalid_query_string",
    );
}

#[tokio::test]
async fn a_roles_users_page_by_checkpoint_to_the_end_and_by_offset_up_to_1000() {
    let tenant = tenant_with_users(120).await;
    let role = create_role(&tenant, "Reader").await;
    let ids: Vec<String> = (0..120).map(|i| format!("auth0|u{i:03}")).collect();
    let assigned = tenant
        .post(&format!("/roles/{role}/users"), &json!({"users": ids}))
        .await;
    assert_eq!(assigned.status, 200, "{:?}", assigned.body);
    // Assigning again is fine (idempotent).
    let again = tenant
        .post(&format!("/roles/{role}/users"), &json!({"users": [ids[0]]}))
        .await;
    assert_eq!(again.status, 200);

    let mut seen = Vec::new();
    let mut path = format!("/roles/{role}/users?take=50");
    let mut pages = 0;
    loop {
        let page = tenant.get(&path).await;
        checkpoint_ok(
            &page,
            "/roles/{id}/users",
            "ListRoleUsersPaginatedResponseContent",
        );
        pages += 1;
        for user in page.body["users"].as_array().unwrap() {
            seen.push(user["user_id"].as_str().unwrap().to_string());
        }
        match page.body.get("next").and_then(Value::as_str) {
            Some(next) => path = format!("/roles/{role}/users?take=50&from={next}"),
            None => break,
        }
    }
    assert_eq!((pages, seen.clone()), (3, ids.clone()));

    let offset = tenant
        .get(&format!(
            "/roles/{role}/users?page=1&per_page=100&include_totals=true"
        ))
        .await;
    ok(&offset, "GET", "/roles/{id}/users", 200);
    assert_eq!(offset.body["total"], 120);
    assert_eq!(offset.body["start"], 100);
    assert_eq!(offset.body["users"].as_array().unwrap().len(), 20);
    assert_eq!(offset.body["users"][0]["email"], "u100@example.com");

    refused(
        &tenant.get(&format!("/roles/{role}/users?take=101")).await,
        400,
        "invalid_query_string",
    );
    refused(
        &tenant
            .get(&format!("/roles/{role}/users?page=10&per_page=100"))
            .await,
        400,
        "invalid_paging",
    );
    refused(
        &tenant
            .get(&format!("/roles/{role}/users?take=5&page=1"))
            .await,
        400,
        "invalid_query_string",
    );
    refused(
        &tenant
            .get(&format!("/roles/{role}/users?from=%21%21"))
            .await,
        400,
        "invalid_query_string",
    );
    refused(
        &tenant.get("/roles/rol_nope/users").await,
        404,
        "inexistent_role",
    );
    refused(
        &tenant
            .post(
                &format!("/roles/{role}/users"),
                &json!({"users": ["auth0|ghost"]}),
            )
            .await,
        404,
        "inexistent_user",
    );
}

// ---- permissions --------------------------------------------------------------------------

#[tokio::test]
async fn permissions_must_name_a_scope_of_an_existing_api_and_say_where_they_come_from() {
    let tenant = tenant_with_users(1).await;
    create_api(&tenant, API, &["read:a", "write:a"]).await;
    refused(
        &tenant
            .post("/resource-servers", &json!({"identifier": API}))
            .await,
        409,
        "conflict",
    );
    let apis = tenant.get("/resource-servers?include_totals=true").await;
    ok(&apis, "GET", "/resource-servers", 200);
    assert_eq!(
        apis.body["resource_servers"][0]["scopes"][1]["value"],
        "write:a"
    );

    let role = create_role(&tenant, "Writer").await;
    let path = format!("/roles/{role}/permissions");
    let added = tenant
        .post(&path, &json!({"permissions": [perm("write:a")]}))
        .await;
    assert_eq!(added.status, 201, "{:?}", added.body);
    ok(
        &tenant.get(&path).await,
        "GET",
        "/roles/{id}/permissions",
        200,
    );
    for bad in [
        json!({"permissions": [perm("nope:a")]}),
        json!({"permissions": [{"resource_server_identifier": "https://nope/", "permission_name": "read:a"}]}),
        json!({"permissions": []}),
        json!({"permissions": [{"permission_name": "read:a"}]}),
    ] {
        refused(&tenant.post(&path, &bad).await, 400, "invalid_body");
    }

    let user = format!("/users/{}", uid(0));
    let roles = tenant
        .post(&format!("{user}/roles"), &json!({"roles": [role]}))
        .await;
    assert_eq!(roles.status, 204, "{:?}", roles.body);
    let direct = tenant
        .post(
            &format!("{user}/permissions"),
            &json!({"permissions": [perm("read:a"), perm("write:a")]}),
        )
        .await;
    assert_eq!(direct.status, 201, "{:?}", direct.body);
    let listed = tenant.get(&format!("{user}/permissions")).await;
    ok(&listed, "GET", "/users/{id}/permissions", 200);
    let sources: Vec<(String, Vec<String>)> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let types = p["sources"].as_array().unwrap().iter();
            (
                p["permission_name"].as_str().unwrap().to_string(),
                types
                    .map(|s| s["source_type"].as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        sources,
        vec![
            ("read:a".to_string(), vec!["DIRECT".to_string()]),
            ("write:a".to_string(), vec!["DIRECT".into(), "ROLE".into()]),
        ]
    );
    let user_roles = tenant
        .get(&format!("{user}/roles?include_totals=true"))
        .await;
    ok(&user_roles, "GET", "/users/{id}/roles", 200);
    assert_eq!(user_roles.body["roles"][0]["id"], role.as_str());

    let revoked = tenant
        .delete_json(
            &format!("{user}/permissions"),
            &json!({"permissions": [perm("write:a")]}),
        )
        .await;
    assert_eq!(revoked.status, 204);
    let unassigned = tenant
        .delete_json(&format!("{user}/roles"), &json!({"roles": [role]}))
        .await;
    assert_eq!(unassigned.status, 204);
    let left = tenant.get(&format!("{user}/permissions")).await;
    assert_eq!(left.body.as_array().unwrap().len(), 1);
    assert_eq!(tenant.get(&format!("{user}/roles")).await.body, json!([]));

    refused(
        &tenant.get("/users/auth0%7Cghost/permissions").await,
        404,
        "inexistent_user",
    );
    refused(
        &tenant
            .post("/users/auth0%7Cghost/roles", &json!({"roles": [role]}))
            .await,
        404,
        "inexistent_user",
    );
    refused(
        &tenant
            .post(&format!("{user}/roles"), &json!({"roles": ["rol_nope"]}))
            .await,
        404,
        "inexistent_role",
    );
}

// ---- limits -------------------------------------------------------------------------------

#[tokio::test]
async fn the_entity_limits_are_enforced_and_reassigning_is_not_counted_twice() {
    let tenant = tenant_with_users(1).await;
    let user = format!("/users/{}", uid(0));
    let mut roles = Vec::new();
    for i in 0..1000 {
        roles.push(create_role(&tenant, &format!("role-{i:04}")).await);
    }
    refused(
        &tenant
            .post("/roles", &json!({"name": "one-too-many"}))
            .await,
        400,
        "too_many_entities",
    );
    let fifty = tenant
        .post(&format!("{user}/roles"), &json!({"roles": roles[..50]}))
        .await;
    assert_eq!(fifty.status, 204, "{:?}", fifty.body);
    let again = tenant
        .post(&format!("{user}/roles"), &json!({"roles": roles[..10]}))
        .await;
    assert_eq!(again.status, 204, "assigning held roles again is fine");
    refused(
        &tenant
            .post(&format!("{user}/roles"), &json!({"roles": [roles[50]]}))
            .await,
        400,
        "too_many_entities",
    );

    let scopes: Vec<String> = (0..1001).map(|i| format!("s:{i}")).collect();
    let refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
    create_api(&tenant, API, &refs).await;
    let grant = |range: std::ops::Range<usize>| json!({"permissions": scopes[range].iter().map(|s| perm(s)).collect::<Vec<_>>()});
    let full = tenant
        .post(&format!("{user}/permissions"), &grant(0..1000))
        .await;
    assert_eq!(full.status, 201, "{:?}", full.body);
    refused(
        &tenant
            .post(&format!("{user}/permissions"), &grant(1000..1001))
            .await,
        400,
        "too_many_entities",
    );

    // Spec: 409 past 50 roles of an organization member.
    let org = create_org(&tenant, "limits").await;
    let members = format!("/organizations/{org}/members");
    let added = tenant
        .post(&members, &json!({"members": ["auth0|u000"]}))
        .await;
    assert_eq!(added.status, 204);
    let member_roles = format!("{members}/{}/roles", uid(0));
    assert_eq!(
        tenant
            .post(&member_roles, &json!({"roles": roles[..50]}))
            .await
            .status,
        204
    );
    refused(
        &tenant
            .post(&member_roles, &json!({"roles": [roles[60]]}))
            .await,
        409,
        "too_many_entities",
    );
}

// ---- organizations ------------------------------------------------------------------------

#[tokio::test]
async fn organizations_take_lowercase_unique_names_and_page_both_ways() {
    let tenant = tenant_with_users(0).await;
    for name in ["Upper", "has space", "", "x.y"] {
        refused(
            &tenant.post("/organizations", &json!({"name": name})).await,
            400,
            "invalid_body",
        );
    }
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(create_org(&tenant, &format!("org-{i}")).await);
    }
    refused(
        &tenant
            .post("/organizations", &json!({"name": "org-0"}))
            .await,
        409,
        "conflict",
    );
    let by_name = tenant.get("/organizations/name/org-3").await;
    ok(&by_name, "GET", "/organizations/name/{name}", 200);
    assert_eq!(by_name.body["id"], ids[3].as_str());
    let by_id = tenant.get(&format!("/organizations/{}", ids[3])).await;
    ok(&by_id, "GET", "/organizations/{id}", 200);
    refused(
        &tenant.get("/organizations/name/nope").await,
        404,
        "inexistent_organization",
    );
    refused(
        &tenant.get("/organizations/org_nope").await,
        404,
        "inexistent_organization",
    );

    let mut names = Vec::new();
    let mut path = "/organizations?take=3".to_string();
    loop {
        let page = tenant.get(&path).await;
        checkpoint_ok(
            &page,
            "/organizations",
            "ListOrganizationsPaginatedResponseContent",
        );
        for org in page.body["organizations"].as_array().unwrap() {
            names.push(org["name"].as_str().unwrap().to_string());
        }
        match page.body.get("next").and_then(Value::as_str) {
            Some(next) => path = format!("/organizations?take=3&from={next}"),
            None => break,
        }
    }
    assert_eq!(
        names,
        (0..7).map(|i| format!("org-{i}")).collect::<Vec<_>>()
    );
    let offset = tenant
        .get("/organizations?page=1&per_page=5&include_totals=true")
        .await;
    ok(&offset, "GET", "/organizations", 200);
    assert_eq!(
        (
            offset.body["total"].clone(),
            offset.body["organizations"].as_array().unwrap().len()
        ),
        (json!(7), 2)
    );
    refused(
        &tenant.get("/organizations?take=101").await,
        400,
        "invalid_query_string",
    );
}

#[tokio::test]
async fn members_page_by_checkpoint_and_show_roles_only_when_asked() {
    let tenant = tenant_with_users(60).await;
    let org = create_org(&tenant, "acme").await;
    let role = create_role(&tenant, "Member Admin").await;
    let members = format!("/organizations/{org}/members");
    let ids: Vec<String> = (0..60).map(|i| format!("auth0|u{i:03}")).collect();
    assert_eq!(
        tenant.post(&members, &json!({"members": ids})).await.status,
        204
    );
    assert_eq!(
        tenant
            .post(&members, &json!({"members": [ids[0]]}))
            .await
            .status,
        204,
        "adding a member again is fine"
    );
    refused(
        &tenant
            .post(&members, &json!({"members": ["auth0|ghost"]}))
            .await,
        404,
        "inexistent_user",
    );
    let member_roles = format!("{members}/{}/roles", uid(1));
    assert_eq!(
        tenant
            .post(&member_roles, &json!({"roles": [role]}))
            .await
            .status,
        204
    );
    let listed = tenant.get(&member_roles).await;
    ok(
        &listed,
        "GET",
        "/organizations/{id}/members/{user_id}/roles",
        200,
    );
    assert_eq!(listed.body[0]["name"], "Member Admin");

    let first = tenant
        .get(&format!("{members}?take=50&fields=user_id,roles"))
        .await;
    ok(&first, "GET", "/organizations/{id}/members", 200);
    assert_eq!(
        first.body["members"][1],
        json!({"user_id": "auth0|u001", "roles": [{"id": role, "name": "Member Admin"}]})
    );
    let next = first.body["next"].as_str().unwrap();
    let last = tenant.get(&format!("{members}?take=50&from={next}")).await;
    checkpoint_ok(
        &last,
        "/organizations/{id}/members",
        "ListOrganizationMembersPaginatedResponseContent",
    );
    assert_eq!(last.body["members"].as_array().unwrap().len(), 10);
    assert!(last.body.get("next").is_none());
    assert!(
        last.body["members"][0].get("roles").is_none(),
        "roles only when asked"
    );
    assert_eq!(last.body["members"][0]["email"], "u050@example.com");

    let of_user = tenant
        .get(&format!("/users/{}/organizations", uid(1)))
        .await;
    ok(&of_user, "GET", "/users/{id}/organizations", 200);
    assert_eq!(of_user.body[0]["name"], "acme");

    let removed = tenant
        .delete_json(&member_roles, &json!({"roles": [role]}))
        .await;
    assert_eq!(removed.status, 204);
    let gone = tenant
        .delete_json(&members, &json!({"members": [ids[1]]}))
        .await;
    assert_eq!(gone.status, 204);
    refused(&tenant.get(&member_roles).await, 404, "inexistent_user");
    assert_eq!(
        tenant
            .get(&format!("/users/{}/organizations", uid(1)))
            .await
            .body,
        json!([])
    );
}

// ---- scopes -------------------------------------------------------------------------------

#[tokio::test]
async fn each_endpoint_wants_its_scopes_and_says_which() {
    let tenant = Tenant::start(SandboxOptions {
        scopes: Some(vec![
            "read:users".into(),
            "read:organization_members".into(),
        ]),
        ..Default::default()
    })
    .await;
    tenant.sandbox.insert_users([user(0)]);
    let expect = |r: &Reply, message: &str| {
        refused(r, 403, "insufficient_scope");
        assert_eq!(r.body["message"], message);
    };
    expect(
        &tenant.get("/roles").await,
        "Insufficient scope, expected any of: read:roles",
    );
    expect(
        &tenant.post("/roles", &json!({"name": "x"})).await,
        "Insufficient scope, expected any of: create:roles",
    );
    expect(
        &tenant.get("/roles/rol_x/users").await,
        "Insufficient scope, expected all of: read:users,read:roles or read:role_members",
    );
    expect(
        &tenant.get(&format!("/users/{}/roles", uid(0))).await,
        "Insufficient scope, expected all of: read:users,read:roles or read:role_members",
    );
    expect(
        &tenant
            .post(
                &format!("/users/{}/roles", uid(0)),
                &json!({"roles": ["r"]}),
            )
            .await,
        "Insufficient scope, expected any of: update:users,create:role_members",
    );
    expect(
        &tenant.get("/resource-servers").await,
        "Insufficient scope, expected any of: read:resource_servers",
    );
    expect(
        &tenant.get("/organizations").await,
        "Insufficient scope, expected any of: read:organizations,read:organizations_summary",
    );
    expect(
        &tenant
            .post("/organizations/org_x/members", &json!({"members": ["a"]}))
            .await,
        "Insufficient scope, expected any of: create:organization_members",
    );
    expect(
        &tenant
            .get("/organizations/org_x/members?fields=user_id,roles")
            .await,
        "Insufficient scope, expected any of: read:organization_member_roles",
    );
    // read:users is enough for a user's permissions; members without roles need no more.
    assert_eq!(
        tenant
            .get(&format!("/users/{}/permissions", uid(0)))
            .await
            .status,
        200
    );
    refused(
        &tenant.get("/organizations/org_x/members").await,
        404,
        "inexistent_organization",
    );
}

// ---- seeds, evidence, deletion ------------------------------------------------------------

#[tokio::test]
async fn seeded_grants_reach_the_evidence_in_the_export_shape_and_go_with_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.ndjson");
    let mut a = user(0);
    a.insert("roles".into(), json!(["Viewer", "Admin"]));
    a.insert(
        "organizations".into(),
        json!([{"name": "zeta", "roles": ["Viewer"]}, {"name": "acme", "roles": ["Admin", "Billing"]}]),
    );
    a.insert(
        "permissions".into(),
        json!([
            {"resource_server_identifier": "https://b.test/", "permission_name": "read:x"},
            {"resource_server_identifier": "https://a.test/", "permission_name": "write:y"},
            {"resource_server_identifier": "https://a.test/", "permission_name": "read:y"},
        ]),
    );
    let b = user(1);
    let lines = [Value::Object(a.clone()), Value::Object(b.clone())]
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&seed, lines).unwrap();
    let tenant = Tenant::start(SandboxOptions {
        seed: vec![seed],
        ..Default::default()
    })
    .await;

    let plain = evidence(&tenant, "").await;
    assert_eq!(
        plain[0],
        Value::Object(user(0)),
        "grants are not profile fields"
    );
    let with = evidence(&tenant, "?with=authz").await;
    let mut want = user(0);
    want.insert("roles".into(), json!(["Admin", "Viewer"]));
    want.insert(
        "organizations".into(),
        json!([{"name": "acme", "roles": ["Admin", "Billing"]}, {"name": "zeta", "roles": ["Viewer"]}]),
    );
    want.insert(
        "permissions".into(),
        json!([
            {"resource_server_identifier": "https://a.test/", "permission_name": "read:y"},
            {"resource_server_identifier": "https://a.test/", "permission_name": "write:y"},
            {"resource_server_identifier": "https://b.test/", "permission_name": "read:x"},
        ]),
    );
    assert_eq!(with[0], Value::Object(want));
    let mut bare = user(1);
    bare.insert("roles".into(), json!([]));
    bare.insert("organizations".into(), json!([]));
    bare.insert("permissions".into(), json!([]));
    assert_eq!(with[1], Value::Object(bare));

    // The roles, organizations and APIs the seed named exist through the API.
    let roles = tenant.get("/roles").await;
    let names: Vec<&str> = roles
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Admin", "Billing", "Viewer"]);
    let admin = roles.body[0]["id"].as_str().unwrap().to_string();
    let acme = tenant.get("/organizations/name/acme").await.body["id"]
        .as_str()
        .unwrap()
        .to_string();

    assert_eq!(
        tenant.delete(&format!("/users/{}", uid(0))).await.status,
        204
    );
    let users = tenant
        .get(&format!("/roles/{admin}/users?include_totals=true"))
        .await;
    assert_eq!(users.body["total"], 0);
    let members = tenant
        .get(&format!(
            "/organizations/{acme}/members?include_totals=true"
        ))
        .await;
    assert_eq!(members.body["total"], 0);
    // A user created again with the same id starts with nothing.
    tenant.sandbox.insert_users([user(0)]);
    let again = evidence(&tenant, "?with=authz").await;
    assert_eq!(again[0]["roles"], json!([]));
    assert_eq!(again[0]["organizations"], json!([]));
    assert_eq!(again[0]["permissions"], json!([]));
}

#[tokio::test]
async fn a_seed_with_a_malformed_grant_is_refused_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.ndjson");
    let mut a = user(0);
    a.insert("organizations".into(), json!([{"name": "Not Lowercase"}]));
    std::fs::write(&seed, Value::Object(a).to_string()).unwrap();
    let started = auth0_bulk::sandbox::Sandbox::start(SandboxOptions {
        seed: vec![seed],
        ..Default::default()
    })
    .await;
    let error = started.err().expect("refused").to_string();
    assert!(
        error.contains("line 1") && error.contains("organization-name"),
        "{error}"
    );
}

#[tokio::test]
async fn a_generated_tenant_has_the_same_grants_for_the_same_seed_and_unchanged_users() {
    let options = || SandboxOptions {
        generate: 300,
        gen_seed: 7,
        ..Default::default()
    };
    let one = Tenant::start(options()).await;
    let two = Tenant::start(options()).await;
    let a = evidence(&one, "?with=authz").await;
    assert_eq!(a, evidence(&two, "?with=authz").await);
    // The users themselves are exactly what the generator gives, as before.
    let mut generated: Vec<Value> = auth0_bulk::sandbox::generate::generate(300, 7)
        .map(Value::Object)
        .collect();
    generated.sort_by(|x, y| x["user_id"].as_str().cmp(&y["user_id"].as_str()));
    assert_eq!(evidence(&one, "").await, generated);

    let count = |key: &str| {
        a.iter()
            .filter(|u| !u[key].as_array().unwrap().is_empty())
            .count()
    };
    let (roles, orgs, perms) = (count("roles"), count("organizations"), count("permissions"));
    assert!((200..=280).contains(&roles), "users with roles: {roles}");
    assert!((10..=50).contains(&orgs), "members: {orgs}");
    assert!((5..=40).contains(&perms), "direct permissions: {perms}");
    let listed = one.get("/roles?include_totals=true").await;
    assert_eq!(listed.body["total"], 36);
    let orgs = one.get("/organizations?include_totals=true").await;
    assert_eq!(orgs.body["total"], 5);
    let apis = one.get("/resource-servers").await;
    ok(&apis, "GET", "/resource-servers", 200);
    assert_eq!(apis.body.as_array().unwrap().len(), 4);
}
