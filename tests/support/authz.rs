//! What the access tests share (issue 14: `roles`, `organizations`, `permissions`): the
//! sandbox's ground truth of every user's access, by email, in the export's shape; a target
//! given a source's APIs; the tenant's roles and organizations by name.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::exports::User;
use super::imports::assert_same_users;
use super::live::Live;

/// The three keys an export with `--include roles,organizations,permissions` writes.
pub const KEYS: [&str; 3] = ["roles", "organizations", "permissions"];

/// `--include` for all three.
pub const INCLUDE_ALL: &str = "roles,organizations,permissions";

/// The keys of `KEYS` that `user` holds, as one object (the others left out).
pub fn access_of(user: &Map<String, Value>) -> Value {
    let access: Map<String, Value> = KEYS
        .iter()
        .filter_map(|key| Some((key.to_string(), user.get(*key)?.clone())))
        .collect();
    Value::Object(access)
}

/// `GET /__sandbox/users?with=authz`: every user's email → its access (all three keys).
pub fn evidence(live: &Live) -> BTreeMap<String, Value> {
    let tenant = &live.tenant;
    let text = live.block_on(async {
        let response = tenant
            .http
            .get(tenant.url("/__sandbox/users?with=authz"))
            .send()
            .await
            .expect("the evidence answers");
        assert_eq!(response.status(), 200);
        response.text().await.expect("the evidence reads")
    });
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let user: Map<String, Value> = serde_json::from_str(line).expect("a user");
        let email = user["email"].as_str().expect("every user has an email");
        let twice = out.insert(email.to_string(), access_of(&user));
        assert!(twice.is_none(), "{email} is in the tenant twice");
    }
    out
}

/// Asserts two tenants' access by email are the same, naming the first users that differ.
pub fn assert_same_access(
    got: &BTreeMap<String, Value>,
    want: &BTreeMap<String, Value>,
    what: &str,
) {
    let as_users = |access: &BTreeMap<String, Value>| -> BTreeMap<String, User> {
        access
            .iter()
            .map(|(email, a)| (email.clone(), a.as_object().expect("an object").clone()))
            .collect()
    };
    assert_same_users(&as_users(got), &as_users(want), what);
}

/// Gives `target` the resource servers (APIs, with their scopes) of `source`, through the
/// Management API as an administrator would: APIs are configuration, not users, so an import
/// needs them there already for its direct permissions.
pub fn copy_apis(source: &Live, target: &Live) {
    let listed = source.block_on(source.tenant.get("/resource-servers?per_page=100"));
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let servers = listed.body.as_array().expect("a list of resource servers");
    assert!(!servers.is_empty(), "the source has APIs");
    for server in servers {
        let body = json!({
            "identifier": server["identifier"],
            "name": server["name"],
            "scopes": server["scopes"],
        });
        let made = target.block_on(target.tenant.post("/resource-servers", &body));
        assert_eq!(made.status, 201, "{:?}", made.body);
    }
}

/// The names of a listing (`/roles`, `/organizations`) in one page of 100, in tenant order.
fn names(live: &Live, path: &str, key: &str) -> Vec<String> {
    let reply = live.block_on(live.tenant.get(&format!("{path}?per_page=100")));
    assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
    let list = reply.body.get(key).unwrap_or(&reply.body);
    let list = list.as_array().expect("a list");
    assert!(list.len() < 100, "{path}: more than one page");
    list.iter()
        .map(|item| item["name"].as_str().expect("a name").to_string())
        .collect()
}

/// The tenant's role names, as listed (a name twice means a duplicate).
pub fn role_names(live: &Live) -> Vec<String> {
    names(live, "/roles", "roles")
}

/// The tenant's organization names, as listed.
pub fn organization_names(live: &Live) -> Vec<String> {
    names(live, "/organizations", "organizations")
}

/// The API requests the tenant answered that are not reads: `METHOD path`.
pub fn writes_sent(live: &Live) -> Vec<String> {
    live.api_requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}
