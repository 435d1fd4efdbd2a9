//! The sandbox tenant behaves as AUTH0-FACTS.md says Auth0 does, and its responses match the
//! OpenAPI schemas.

use std::time::Duration;

use auth0_bulk::sandbox::{GroupLimit, SandboxOptions};
use serde_json::{Value, json};

use crate::support::oas;
use crate::support::tenant::{Reply, Tenant, encode, reply};

fn user_ids(users: &Value) -> Vec<String> {
    users
        .as_array()
        .expect("array of users")
        .iter()
        .map(|u| u["user_id"].as_str().expect("user_id").to_string())
        .collect()
}

fn new_user(email: &str) -> Value {
    json!({
        "connection": "Username-Password-Authentication",
        "email": email,
        "password": "Correct-Horse-9",
        "user_metadata": {"theme": "dark", "address": {"city": "Paris", "zip": "75001"}},
        "app_metadata": {"plan": "pro", "roles": ["admin"]},
    })
}

// ---- token ------------------------------------------------------------------------------------

#[tokio::test]
async fn token_endpoint_takes_json_and_form_and_refuses_a_wrong_secret() {
    let tenant = Tenant::generated(0).await;
    let json_reply = tenant.token_request(&tenant.credentials()).await;
    assert_eq!(json_reply.status, 200);
    assert_eq!(json_reply.body["token_type"], "Bearer");
    assert_eq!(json_reply.body["expires_in"], 86400);

    let creds = tenant.credentials();
    let form: Vec<(String, String)> = creds
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let form_reply = reply(
        tenant
            .http
            .post(tenant.url("/oauth/token"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(form_reply.status, 200, "{:?}", form_reply.body);

    let mut wrong = tenant.credentials();
    wrong["client_secret"] = "not-the-secret".into();
    let denied = tenant.token_request(&wrong).await;
    assert_eq!(denied.status, 401);
    assert_eq!(
        denied.body,
        json!({"error": "access_denied", "error_description": "Unauthorized"})
    );
}

/// Issue 10, item 12: Auth0's API identifier is `https://{domain}/api/v2/` (facts, "Token"),
/// and that is what the official SDKs send as the audience, also for a loopback domain. The
/// sandbox takes it, the `http://` form of its own address too, and nothing else.
#[tokio::test]
async fn token_endpoint_takes_the_https_api_identifier_the_official_sdks_send() {
    let tenant = Tenant::generated(0).await;
    let host = tenant
        .sandbox
        .domain()
        .trim_start_matches("http://")
        .to_string();
    let with_audience = |audience: String| {
        let mut body = tenant.credentials();
        body["audience"] = audience.into();
        body
    };
    for audience in [
        format!("https://{host}/api/v2/"),
        format!("http://{host}/api/v2/"),
    ] {
        let granted = tenant.token_request(&with_audience(audience.clone())).await;
        assert_eq!(granted.status, 200, "{audience}: {:?}", granted.body);
        let token = granted.body["access_token"].as_str().expect("a token");
        let listed = tenant
            .http
            .get(tenant.url("/api/v2/users"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(listed.status(), 200, "{audience}: the token works");
    }
    for audience in [
        format!("https://{host}/api/v2"),
        format!("https://{host}/"),
        "https://acme.eu.auth0.com/api/v2/".to_string(),
        format!("ftp://{host}/api/v2/"),
    ] {
        let refused = tenant.token_request(&with_audience(audience.clone())).await;
        assert_eq!(refused.status, 403, "{audience}: {:?}", refused.body);
        assert_eq!(refused.body["error"], "access_denied", "{audience}");
    }
}

#[tokio::test]
async fn api_calls_need_a_valid_unexpired_token() {
    let tenant = Tenant::start(SandboxOptions {
        token_ttl: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let anonymous = reply(
        tenant
            .http
            .get(tenant.url("/api/v2/users"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(anonymous.status, 401);
    oas::assert_error_body(&anonymous.body, 401, "invalid_token");

    let bogus = tenant
        .http
        .get(tenant.url("/api/v2/users"))
        .bearer_auth("nope");
    let bogus = reply(bogus.send().await.unwrap()).await;
    assert_eq!(bogus.status, 401);
    assert_eq!(bogus.body["message"], "Invalid token");

    assert_eq!(tenant.get("/users").await.status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = tenant.get("/users").await;
    assert_eq!(expired.status, 401, "a token past its ttl is refused");
}

// ---- list and search --------------------------------------------------------------------------

#[tokio::test]
async fn list_reports_totals_and_keeps_the_bare_array_by_default() {
    let tenant = Tenant::generated(3000).await;
    let totals = tenant
        .get("/users?page=0&per_page=100&include_totals=true&search_engine=v3")
        .await;
    assert_eq!(totals.status, 200);
    oas::assert_response_matches("GET", "/users", 200, &totals.body);
    assert_eq!(totals.body["total"], 3000);
    assert_eq!(totals.body["start"], 0);
    assert_eq!(totals.body["limit"], 100);
    assert_eq!(totals.body["length"], 100);
    let keys: Vec<&String> = totals.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["start", "limit", "length", "total", "users"]);

    let page3 = tenant
        .get("/users?page=3&per_page=20&include_totals=true")
        .await;
    assert_eq!(page3.body["start"], 60, "start = page * limit");

    let bare = tenant.get("/users?page=0&per_page=10").await;
    assert!(bare.body.is_array());
    assert_eq!(bare.body.as_array().unwrap().len(), 10);
    oas::assert_response_matches("GET", "/users", 200, &bare.body);

    // Facts: without `page`, at most 50 users come back.
    let no_page = tenant.get("/users?per_page=100").await;
    assert_eq!(no_page.body.as_array().unwrap().len(), 50);
    let default = tenant.get("/users").await;
    assert_eq!(default.body.as_array().unwrap().len(), 50);
}

#[tokio::test]
async fn paging_past_the_first_thousand_results_is_refused_with_the_exact_body() {
    let tenant = Tenant::generated(3000).await;
    let capped = tenant.get("/users?page=10&per_page=100").await;
    assert_eq!(capped.status, 400);
    assert_eq!(
        capped.body,
        json!({
            "statusCode": 400,
            "error": "Bad Request",
            "message": "You can only page through the first 1000 records. See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation",
            "errorCode": "invalid_paging",
        })
    );
    // The cap counts (page + 1) * per_page, whatever the matches.
    assert_eq!(tenant.get("/users?page=9&per_page=100").await.status, 200);
    assert_eq!(tenant.get("/users?page=20&per_page=50").await.status, 400);
    assert_eq!(tenant.get("/users?page=999&per_page=1").await.status, 200);
    assert_eq!(tenant.get("/users?page=1000&per_page=1").await.status, 400);
}

#[tokio::test]
async fn bad_paging_parameters_are_query_errors() {
    let tenant = Tenant::generated(10).await;
    for query in [
        "per_page=101",
        "per_page=-1",
        "page=-1",
        "page=abc",
        "include_totals=yes",
    ] {
        let r = tenant.get(&format!("/users?{query}")).await;
        assert_eq!(r.status, 400, "{query}");
        oas::assert_error_body(&r.body, 400, "invalid_query_string");
    }
    let zero = tenant
        .get("/users?page=0&per_page=0&include_totals=true")
        .await;
    assert_eq!(zero.status, 200);
    assert_eq!(zero.body["total"], 10);
    assert_eq!(zero.body["length"], 0);
    let unknown = tenant.get("/users?colour=blue").await;
    assert_eq!(unknown.status, 400);
    let v1_connection = tenant.get("/users?connection=legacy-db").await;
    assert_eq!(
        v1_connection.status, 400,
        "connection applies to search engine v1 only"
    );
}

#[tokio::test]
async fn a_created_at_range_returns_exactly_the_users_inside_it() {
    let tenant = Tenant::generated(3000).await;
    let mut created: Vec<(String, String)> = tenant
        .sandbox
        .users()
        .iter()
        .map(|u| {
            (
                u["created_at"].as_str().unwrap().to_string(),
                u["user_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    created.sort();
    let lower = created[500].0.clone();
    let upper = created[800].0.clone();
    let expected: Vec<String> = created
        .iter()
        .filter(|(c, _)| *c >= lower && *c < upper)
        .map(|(_, id)| id.clone())
        .collect();
    let q = encode(&format!("created_at:[{lower} TO {upper}}}"));
    let mut found = Vec::new();
    for page in 0.. {
        let r = tenant
            .get(&format!(
                "/users?q={q}&sort=created_at:1&page={page}&per_page=100&include_totals=true&search_engine=v3"
            ))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["total"].as_u64().unwrap() as usize, expected.len());
        let ids = user_ids(&r.body["users"]);
        if ids.is_empty() {
            break;
        }
        found.extend(ids);
    }
    assert_eq!(
        found, expected,
        "sorted by created_at, then user_id, inclusive below, exclusive above"
    );
}

#[tokio::test]
async fn sort_orders_by_the_key_then_user_id_and_refuses_metadata() {
    let tenant = Tenant::generated(300).await;
    let r = tenant
        .get("/users?sort=created_at:-1&page=0&per_page=100")
        .await;
    let users = r.body.as_array().unwrap();
    for pair in users.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (ca, cb) = (
            a["created_at"].as_str().unwrap(),
            b["created_at"].as_str().unwrap(),
        );
        assert!(ca > cb || (ca == cb && a["user_id"].as_str() < b["user_id"].as_str()));
    }
    let default = tenant.get("/users?page=0&per_page=100").await;
    let ids = user_ids(&default.body);
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "without sort the order is user_id");
    // Facts: sorting by metadata is not supported.
    assert_eq!(
        tenant.get("/users?sort=app_metadata.plan:1").await.status,
        400
    );
    assert_eq!(tenant.get("/users?sort=created_at").await.status, 400);
}

#[tokio::test]
async fn fields_include_or_exclude_properties() {
    let tenant = Tenant::generated(20).await;
    let only = tenant
        .get("/users?fields=user_id,email&include_fields=true&page=0&per_page=5")
        .await;
    for user in only.body.as_array().unwrap() {
        let keys: Vec<&String> = user.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["email", "user_id"]);
    }
    let without = tenant
        .get("/users?fields=identities,email&include_fields=false")
        .await;
    for user in without.body.as_array().unwrap() {
        assert!(user.get("identities").is_none() && user.get("email").is_none());
        assert!(user.get("user_id").is_some());
    }
}

#[tokio::test]
async fn malformed_queries_are_refused() {
    let tenant = Tenant::generated(10).await;
    let r = tenant
        .get(&format!("/users?q={}", encode("email:(broken")))
        .await;
    assert_eq!(r.status, 400);
    oas::assert_error_body(&r.body, 400, "invalid_query_string");
}

#[tokio::test]
async fn users_by_email_finds_a_user_immediately() {
    let tenant = Tenant::generated(100).await;
    let someone = tenant.sandbox.users()[42].clone();
    let email = someone["email"].as_str().unwrap();
    let r = tenant
        .get(&format!("/users-by-email?email={}", encode(email)))
        .await;
    assert_eq!(r.status, 200);
    oas::assert_response_matches("GET", "/users-by-email", 200, &r.body);
    assert_eq!(user_ids(&r.body), [someone["user_id"].as_str().unwrap()]);
    let none = tenant
        .get("/users-by-email?email=nobody%40example.com")
        .await;
    assert_eq!(none.body, json!([]));
    assert_eq!(tenant.get("/users-by-email").await.status, 400);
}

// ---- one user ---------------------------------------------------------------------------------

#[tokio::test]
async fn get_by_url_encoded_id_and_404_for_an_unknown_one() {
    let tenant = Tenant::generated(5).await;
    let id = tenant.sandbox.users()[0]["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = tenant.get(&format!("/users/{}", encode(&id))).await;
    assert_eq!(r.status, 200);
    oas::assert_response_matches("GET", "/users/{id}", 200, &r.body);
    assert_eq!(r.body["user_id"], id.as_str());
    let missing = tenant
        .get(&format!("/users/{}", encode("auth0|nope")))
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.body,
        json!({"statusCode": 404, "error": "Not Found", "message": "The user does not exist.", "errorCode": "inexistent_user"})
    );
}

#[tokio::test]
async fn delete_answers_204_even_for_an_unknown_id() {
    let tenant = Tenant::generated(5).await;
    let id = tenant.sandbox.users()[0]["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        tenant
            .delete(&format!("/users/{}", encode(&id)))
            .await
            .status,
        204
    );
    assert_eq!(
        tenant
            .delete(&format!("/users/{}", encode(&id)))
            .await
            .status,
        204
    );
    assert_eq!(
        tenant.get(&format!("/users/{}", encode(&id))).await.status,
        404
    );
    assert_eq!(tenant.sandbox.users().len(), 4);
}

// ---- create -----------------------------------------------------------------------------------

#[tokio::test]
async fn create_returns_the_whole_user_with_generated_fields() {
    let tenant = Tenant::generated(0).await;
    let r = tenant
        .post("/users", &new_user("Ada.Lovelace@Example.com"))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    oas::assert_response_matches("POST", "/users", 201, &r.body);
    let user = &r.body;
    let id = user["user_id"].as_str().unwrap();
    let local = id
        .strip_prefix("auth0|")
        .expect("database ids start with auth0|");
    assert!(local.len() == 24 && local.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(
        user["email"], "ada.lovelace@example.com",
        "database connections lower-case emails"
    );
    assert_eq!(user["nickname"], "ada.lovelace");
    assert_eq!(user["name"], "ada.lovelace@example.com");
    assert!(
        user["picture"]
            .as_str()
            .unwrap()
            .starts_with("https://s.gravatar.com/avatar/")
    );
    assert_eq!(
        user["identities"],
        json!([{"connection": "Username-Password-Authentication", "user_id": local, "provider": "auth0", "isSocial": false}])
    );
    let created = user["created_at"].as_str().unwrap();
    assert_eq!(created.len(), 24, "millisecond UTC timestamp: {created}");
    assert!(created.ends_with('Z'));
    assert_eq!(user["updated_at"], user["created_at"]);
    assert!(user.get("password").is_none());
    assert_eq!(user["app_metadata"]["plan"], "pro");
}

#[tokio::test]
async fn a_given_user_id_is_prefixed_with_auth0_again() {
    let tenant = Tenant::generated(0).await;
    let mut body = new_user("trap@example.com");
    body["user_id"] = "auth0|abc123".into();
    let r = tenant.post("/users", &body).await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.body["user_id"], "auth0|auth0|abc123",
        "the known auth0|auth0| trap"
    );
    assert_eq!(r.body["identities"][0]["user_id"], "auth0|abc123");
}

#[tokio::test]
async fn creating_an_existing_user_again_is_a_409() {
    let tenant = Tenant::generated(50).await;
    let existing = tenant.sandbox.users()[7].clone();
    let connection = existing["identities"][0]["connection"].as_str().unwrap();
    let mut body = new_user(existing["email"].as_str().unwrap());
    body["connection"] = connection.into();
    let r = tenant.post("/users", &body).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!({"statusCode": 409, "error": "Conflict", "message": "The user already exists.", "errorCode": "auth0_idp_error"})
    );
    // The same email in the other database connection is another user.
    let other = if connection == "legacy-db" {
        "Username-Password-Authentication"
    } else {
        "legacy-db"
    };
    body["connection"] = other.into();
    assert_eq!(tenant.post("/users", &body).await.status, 201);
    // The same user_id twice.
    let mut first = new_user("one@example.com");
    first["user_id"] = "fixed-id".into();
    assert_eq!(tenant.post("/users", &first).await.status, 201);
    let mut second = new_user("two@example.com");
    second["user_id"] = "fixed-id".into();
    assert_eq!(tenant.post("/users", &second).await.status, 409);
}

#[tokio::test]
async fn create_validates_the_payload() {
    let tenant = Tenant::generated(0).await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"email": "a@example.com", "password": "Correct-Horse-9"}),
            "Missing required property: connection",
        ),
        (
            json!({"connection": "nope", "email": "a@example.com", "password": "Correct-Horse-9"}),
            "The connection does not exist.",
        ),
        (
            json!({"connection": "Username-Password-Authentication", "email": "a@example.com"}),
            "Missing required property: password",
        ),
        (
            json!({"connection": "Username-Password-Authentication", "email": "a@example.com", "password": "short"}),
            "PasswordStrengthError: Password is too weak",
        ),
        (
            json!({"connection": "Username-Password-Authentication", "email": "a@example.com", "password": "Correct-Horse-9", "logins_count": 4}),
            "Additional properties not allowed: logins_count",
        ),
        (
            json!({"connection": "Username-Password-Authentication", "email": "a@example.com", "password": "Correct-Horse-9", "identities": []}),
            "Additional properties not allowed: identities",
        ),
        (
            json!({"connection": "Username-Password-Authentication", "email": "not-an-email", "password": "Correct-Horse-9"}),
            "format email",
        ),
        (
            json!({"connection": "Username-Password-Authentication", "email": "a@example.com", "password": "Correct-Horse-9", "phone_number": "12345"}),
            "pattern",
        ),
        (
            json!({"connection": "Username-Password-Authentication", "email": "a@example.com", "password": "Correct-Horse-9", "user_metadata": {"a.b": 1}}),
            "a.b",
        ),
        (
            json!({"connection": "Username-Password-Authentication", "email": "a@example.com", "password": "Correct-Horse-9", "app_metadata": {"clientID": 1}}),
            "reserved",
        ),
        (
            json!({"connection": "google-oauth2", "email": "a@example.com", "password": "Correct-Horse-9"}),
            "only database connections",
        ),
    ];
    for (body, expected) in cases {
        let r = tenant.post("/users", &body).await;
        assert_eq!(r.status, 400, "{body}");
        let message = r.body["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body}: {message}");
        assert!(r.body["errorCode"].is_string());
    }
    assert!(tenant.sandbox.users().is_empty());
}

#[tokio::test]
async fn bodies_over_one_megabyte_get_413() {
    let tenant = Tenant::generated(0).await;
    let mut body = new_user("big@example.com");
    body["user_metadata"]["blob"] = "x".repeat(1024 * 1024).into();
    let r = tenant.post("/users", &body).await;
    assert_eq!(r.status, 413);
    oas::assert_error_body(&r.body, 413, "payload_too_large");
}

// ---- update -----------------------------------------------------------------------------------

#[tokio::test]
async fn patch_merges_metadata_one_level_deep_and_null_deletes() {
    let tenant = Tenant::generated(0).await;
    let created = tenant
        .post("/users", &new_user("merge@example.com"))
        .await
        .body;
    let path = format!("/users/{}", encode(created["user_id"].as_str().unwrap()));
    let r = tenant
        .patch(&path, &json!({"user_metadata": {"address": {"street": "1 Rue"}, "lang": "fr", "theme": null}}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    oas::assert_response_matches("PATCH", "/users/{id}", 200, &r.body);
    // Top-level keys merged, the nested object replaced whole, null deleted.
    assert_eq!(
        r.body["user_metadata"],
        json!({"address": {"street": "1 Rue"}, "lang": "fr"})
    );
    assert_eq!(
        r.body["app_metadata"],
        json!({"plan": "pro", "roles": ["admin"]})
    );
    assert!(r.body["updated_at"].as_str().unwrap() > created["updated_at"].as_str().unwrap());

    let cleared = tenant.patch(&path, &json!({"app_metadata": {}})).await;
    assert_eq!(cleared.body["app_metadata"], json!({}));
    let fetched = tenant.get(&path).await;
    assert_eq!(fetched.body, cleared.body);
}

#[tokio::test]
async fn patch_refuses_read_only_fields_and_documented_combinations() {
    let tenant = Tenant::generated(0).await;
    let created = tenant
        .post("/users", &new_user("combo@example.com"))
        .await
        .body;
    let path = format!("/users/{}", encode(created["user_id"].as_str().unwrap()));
    for body in [
        json!({"created_at": "2020-01-01T00:00:00.000Z"}),
        json!({"logins_count": 3}),
        json!({"password": "Correct-Horse-10", "email": "x@example.com"}),
        json!({"password": "Correct-Horse-10", "email_verified": true}),
        json!({"username": "someone", "email": "x@example.com"}),
        json!({"username": "someone", "email_verified": true}),
        json!({"username": "someone", "password": "Correct-Horse-10"}),
        json!({"app_metadata": {"email": "reserved@example.com"}}),
        json!({}),
    ] {
        let r = tenant.patch(&path, &body).await;
        assert_eq!(r.status, 400, "{body} -> {:?}", r.body);
    }
    let missing = tenant
        .patch(
            &format!("/users/{}", encode("auth0|missing")),
            &json!({"name": "x"}),
        )
        .await;
    assert_eq!(missing.status, 404);
}

// ---- rate limit -------------------------------------------------------------------------------

#[tokio::test]
async fn a_burst_past_the_bucket_gets_429s_with_the_exact_body_and_headers() {
    let tenant = Tenant::start(SandboxOptions {
        generate: 10,
        rate: Some(5.0),
        burst: Some(5),
        ..Default::default()
    })
    .await;
    let replies =
        futures::future::join_all((0..20).map(|_| tenant.get("/users?per_page=1&page=0"))).await;
    let throttled: Vec<_> = replies.iter().filter(|r| r.status == 429).collect();
    assert!(
        throttled.len() >= 10,
        "only {} of 20 throttled",
        throttled.len()
    );
    assert!(replies.iter().filter(|r| r.status == 200).count() >= 5);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for r in &replies {
        assert_eq!(r.header("x-ratelimit-limit"), Some("5"));
        assert!(r.header("x-ratelimit-remaining").is_some());
        assert!(
            r.header("retry-after").is_none(),
            "Auth0 does not send Retry-After"
        );
    }
    let last = throttled.last().unwrap();
    assert_eq!(
        last.body,
        json!({"statusCode": 429, "error": "Too Many Requests", "message": "Global limit has been reached", "errorCode": "too_many_requests"})
    );
    assert_eq!(last.header("x-ratelimit-remaining"), Some("0"));
    let reset: u64 = last.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert!(
        reset >= now && reset <= now + 3,
        "reset {reset} is an epoch second, now {now}"
    );
    // At the reset second, requests succeed again.
    let wait = std::time::UNIX_EPOCH + Duration::from_secs(reset);
    if let Ok(d) = wait.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(d).await;
    }
    assert_eq!(tenant.get("/users?per_page=1&page=0").await.status, 200);
}

#[tokio::test]
async fn retry_after_is_sent_only_when_asked() {
    let tenant = Tenant::start(SandboxOptions {
        rate: Some(1.0),
        burst: Some(1),
        retry_after: true,
        ..Default::default()
    })
    .await;
    let _ = tenant.get("/users").await;
    let r = tenant.get("/users").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
}

/// A bucket that does not refill within a test: its `remaining` counts requests exactly.
fn frozen(spec: &str) -> GroupLimit {
    spec.parse().expect("a group limit")
}

#[tokio::test]
async fn each_group_with_its_own_bucket_sends_its_own_headers_and_429() {
    let tenant = Tenant::start(SandboxOptions {
        rate_groups: vec![frozen("users-read=0.001/5"), frozen("users-write=0.001/3")],
        ..Default::default()
    })
    .await;
    let numbers = |r: &Reply| {
        let n = |name| r.header(name).unwrap_or_else(|| panic!("{name}"));
        (
            n("x-ratelimit-limit").to_string(),
            n("x-ratelimit-remaining").to_string(),
        )
    };
    let read = tenant.get("/users?per_page=1&page=0").await;
    assert_eq!(read.status, 200);
    assert_eq!(numbers(&read), ("5".into(), "4".into()));
    let created = tenant.post("/users", &new_user("ada@example.com")).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(
        numbers(&created),
        ("3".into(), "2".into()),
        "writes: own bucket"
    );
    let id = encode(created.body["user_id"].as_str().unwrap());
    let read = tenant.get(&format!("/users/{id}")).await;
    assert_eq!(
        numbers(&read),
        ("5".into(), "3".into()),
        "a write took no read token"
    );
    // Everything else still uses the shared bucket (here the default one nobody meets).
    let other = tenant.get("/clients").await;
    assert_eq!(other.status, 404);
    assert_eq!(other.header("x-ratelimit-limit"), Some("10000"));

    // Writes run out; reads go on.
    let patched = tenant
        .patch(&format!("/users/{id}"), &json!({"name": "Ada"}))
        .await;
    assert_eq!(numbers(&patched), ("3".into(), "1".into()));
    assert_eq!(tenant.delete(&format!("/users/{id}")).await.status, 204);
    let refused = tenant.post("/users", &new_user("bob@example.com")).await;
    assert_eq!(refused.status, 429);
    oas::assert_error_body(&refused.body, 429, "too_many_requests");
    assert_eq!(
        refused.body,
        json!({"statusCode": 429, "error": "Too Many Requests", "message": "Global per second users_write group limit has been reached", "errorCode": "too_many_requests"})
    );
    assert_eq!(numbers(&refused), ("3".into(), "0".into()));
    let read = tenant.get("/users?per_page=1&page=0").await;
    assert_eq!(read.status, 200, "exhausted writes do not throttle reads");
    oas::assert_response_matches("GET", "/users", 200, &read.body);
    assert_eq!(numbers(&read), ("5".into(), "2".into()));
    let by_email = tenant.get("/users-by-email?email=x%40example.com").await;
    assert_eq!(numbers(&by_email), ("5".into(), "1".into()));
    let _ = tenant.get("/users").await;
    let refused = tenant.get("/users").await;
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.body["message"],
        "Global per second users_read group limit has been reached"
    );

    // The evidence counts requests and 429s per group.
    let stats: Value = tenant
        .http
        .get(tenant.url("/__sandbox/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats["groups"],
        json!({
            "users-read": {"requests": 6, "throttled": 1},
            "users-write": {"requests": 4, "throttled": 1},
            "other": {"requests": 1, "throttled": 0},
        })
    );
    assert_eq!(stats["throttled"], 2, "the existing counters are unchanged");
}

#[tokio::test]
async fn without_rate_groups_reads_and_writes_share_one_bucket() {
    let tenant = Tenant::start(SandboxOptions {
        rate: Some(0.001),
        burst: Some(3),
        ..Default::default()
    })
    .await;
    let read = tenant.get("/users").await;
    assert_eq!(read.header("x-ratelimit-remaining"), Some("2"));
    let created = tenant.post("/users", &new_user("ada@example.com")).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.header("x-ratelimit-remaining"), Some("1"));
    let other = tenant.get("/clients").await;
    assert_eq!(other.header("x-ratelimit-remaining"), Some("0"));
    let refused = tenant.post("/users", &new_user("bob@example.com")).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.body["message"], "Global limit has been reached");
    assert_eq!(tenant.get("/users").await.status, 429, "one bucket for all");
    // A group given its own bucket leaves the shared one to the others.
    let tenant = Tenant::start(SandboxOptions {
        rate: Some(0.001),
        burst: Some(3),
        rate_groups: vec![frozen("users-write=0.001/1")],
        ..Default::default()
    })
    .await;
    assert_eq!(
        tenant
            .post("/users", &new_user("c@example.com"))
            .await
            .status,
        201
    );
    assert_eq!(
        tenant
            .post("/users", &new_user("d@example.com"))
            .await
            .status,
        429
    );
    let read = tenant.get("/users").await;
    assert_eq!(read.status, 200);
    assert_eq!(read.header("x-ratelimit-limit"), Some("3"));
    assert_eq!(read.header("x-ratelimit-remaining"), Some("2"));
}

#[tokio::test]
async fn a_storm_drains_the_bucket_each_request_would_use() {
    let before = tokio::time::Instant::now();
    let tenant = Tenant::start(SandboxOptions {
        rate_groups: vec![frozen("users-read=50/10")],
        storm_every: Duration::from_secs(2),
        storm_for: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    assert_eq!(tenant.get("/users").await.status, 200, "calm before");
    tokio::time::sleep_until(before + Duration::from_millis(2_400)).await;
    let read = tenant.get("/users").await;
    assert_eq!(read.status, 429);
    assert_eq!(
        read.body["message"],
        "Global per second users_read group limit has been reached"
    );
    assert_eq!(read.header("x-ratelimit-limit"), Some("10"));
    assert_eq!(read.header("x-ratelimit-remaining"), Some("0"));
    let write = tenant.post("/users", &new_user("ada@example.com")).await;
    assert_eq!(write.status, 429);
    assert_eq!(write.body["message"], "Global limit has been reached");
    assert_eq!(write.header("x-ratelimit-limit"), Some("10000"));
}

#[tokio::test]
async fn a_bad_rate_group_is_a_usage_error_that_names_the_groups() {
    let run = |args: &[&str]| {
        std::process::Command::new(crate::support::child::path())
            .arg("sandbox")
            .args(args)
            .arg("--self-check")
            .output()
            .expect("runs")
    };
    for (args, says) in [
        (
            &["--rate-group", "users_read=8/40"][..],
            "the groups are users-read, users-write, other",
        ),
        (&["--rate-group", "users-read=8/0"][..], "the burst must be"),
        (&["--rate-group", "users-read=fast"][..], "the rate must be"),
        (
            &[
                "--rate-group",
                "users-read=8/40",
                "--rate-group",
                "users-read=1/2",
            ][..],
            "names users-read twice",
        ),
        (&["--storm-every", "5"][..], "--rate"),
    ] {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

// ---- faults, lag, evidence --------------------------------------------------------------------

#[tokio::test]
async fn faults_fail_requests_in_every_documented_way() {
    let tenant = Tenant::start(SandboxOptions {
        generate: 5,
        fault_rate: 1.0,
        ..Default::default()
    })
    .await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let sent = tenant
            .http
            .get(tenant.url("/api/v2/users"))
            .bearer_auth(&tenant.token)
            .send()
            .await;
        match sent {
            Err(_) => {
                seen.insert("connection");
            }
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Err(_) => {
                        seen.insert("truncated");
                    }
                    Ok(bytes) => {
                        let body: Value =
                            serde_json::from_slice(&bytes).expect("5xx bodies are JSON");
                        assert!([500, 502, 503].contains(&status), "{status}");
                        oas::assert_error_body(&body, status, body["errorCode"].as_str().unwrap());
                        seen.insert("5xx");
                    }
                }
            }
        }
    }
    assert_eq!(seen.len(), 3, "saw {seen:?}");
    let log = tenant.sandbox.requests();
    assert!(
        log.iter()
            .filter(|r| r.path == "/api/v2/users")
            .all(|r| r.fault.is_some())
    );
    assert!(log.iter().any(|r| r.fault == Some("drop") && r.status == 0));
}

/// Sends `n` list requests one after another (answers, failed or not, are not looked at).
async fn send_in_turn(tenant: &Tenant, n: usize) {
    for _ in 0..n {
        let sent = tenant
            .http
            .get(tenant.url("/api/v2/users?per_page=1&page=0"))
            .bearer_auth(&tenant.token)
            .send()
            .await;
        if let Ok(response) = sent {
            let _ = response.bytes().await;
        }
    }
}

#[tokio::test]
async fn faults_come_in_bursts_of_one_kind_replayed_by_the_seed() {
    let faults = || async {
        let tenant = Tenant::start(SandboxOptions {
            generate: 3,
            fault_rate: 0.15,
            fault_burst: 3,
            fault_seed: 9,
            ..Default::default()
        })
        .await;
        send_in_turn(&tenant, 120).await;
        let log = tenant.sandbox.requests();
        log.iter()
            .filter(|r| r.path.starts_with("/api/v2/"))
            .map(|r| r.fault)
            .collect::<Vec<_>>()
    };
    let first = faults().await;
    assert_eq!(first, faults().await, "the seed replays the faults");
    let mut runs = Vec::new();
    let mut rest = &first[..];
    while let Some(fault) = rest.first().copied() {
        let length = rest.iter().take_while(|f| **f == fault).count();
        if fault.is_some() {
            runs.push(length);
        }
        rest = &rest[length..];
    }
    assert!(runs.len() >= 3, "bursts: {runs:?}");
    assert!(runs.iter().all(|n| n % 3 == 0), "bursts of three: {runs:?}");
}

#[tokio::test]
async fn latency_spikes_hold_a_share_of_requests_longer() {
    let tenant = Tenant::start(SandboxOptions {
        generate: 3,
        latency_spike_rate: 0.4,
        // Long enough that a request that did not spike never takes as long, even on a
        // machine busy with other work (250 ms was seen there).
        latency_spike: Duration::from_millis(600),
        ..Default::default()
    })
    .await;
    let mut slow = 0;
    for _ in 0..30 {
        let started = std::time::Instant::now();
        assert_eq!(tenant.get("/users?per_page=1&page=0").await.status, 200);
        slow += usize::from(started.elapsed() >= Duration::from_millis(600));
    }
    let spikes = tenant.sandbox.stats().latency_spikes;
    assert_eq!(slow as u64, spikes, "every spike, and only those, was slow");
    assert!((4..=26).contains(&slow), "{slow} of 30 spiked at 0.4");
}

#[tokio::test]
async fn a_storm_answers_every_request_429_with_the_exact_body_and_headers() {
    let before = tokio::time::Instant::now();
    let tenant = Tenant::start(SandboxOptions {
        generate: 3,
        rate: Some(50.0),
        burst: Some(10),
        storm_every: Duration::from_secs(2),
        storm_for: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    assert_eq!(tenant.get("/users").await.status, 200, "calm before");
    tokio::time::sleep_until(before + Duration::from_millis(2_400)).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for _ in 0..3 {
        let r = tenant.get("/users").await;
        assert_eq!(r.status, 429);
        assert_eq!(
            r.body,
            json!({"statusCode": 429, "error": "Too Many Requests", "message": "Global limit has been reached", "errorCode": "too_many_requests"})
        );
        assert_eq!(r.header("x-ratelimit-limit"), Some("10"));
        assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
        let reset: u64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
        assert!(
            reset >= now && reset <= now + 2,
            "reset {reset} is an epoch second, now {now}"
        );
        assert!(r.header("retry-after").is_none());
    }
    tokio::time::sleep_until(before + Duration::from_millis(3_500)).await;
    assert_eq!(tenant.get("/users").await.status, 200, "calm after");
    let log = tenant.sandbox.requests();
    assert_eq!(
        log.iter().filter(|r| r.fault == Some("storm")).count(),
        3,
        "{log:?}"
    );
    // A storm drains the rate-limit bucket, so it needs one.
    let refused = auth0_bulk::sandbox::Sandbox::start(SandboxOptions {
        storm_every: Duration::from_secs(2),
        storm_for: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn writes_reach_search_only_after_the_lag_but_reads_by_id_and_email_at_once() {
    let tenant = Tenant::start(SandboxOptions {
        search_lag: Duration::from_millis(600),
        ..Default::default()
    })
    .await;
    let created = tenant
        .post("/users", &new_user("lag@example.com"))
        .await
        .body;
    let id = created["user_id"].as_str().unwrap();
    assert_eq!(
        tenant.get(&format!("/users/{}", encode(id))).await.status,
        200
    );
    let by_email = tenant.get("/users-by-email?email=lag%40example.com").await;
    assert_eq!(by_email.body.as_array().unwrap().len(), 1);
    let listed = tenant
        .get("/users?include_totals=true&page=0&per_page=10")
        .await;
    assert_eq!(listed.body["total"], 0, "not yet indexed");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let listed = tenant
        .get("/users?include_totals=true&page=0&per_page=10")
        .await;
    assert_eq!(listed.body["total"], 1);
}

/// Issue 10, item 13: Auth0 sends `x-ratelimit-limit`, `-remaining` and `-reset` (epoch
/// seconds) on every API response (facts, "Rate limits"), so a sandbox started without a rate
/// sends them too, from a bucket so generous that no client meets it.
#[tokio::test]
async fn every_api_response_carries_rate_limit_headers_even_without_a_rate() {
    let tenant = Tenant::generated(5).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let email = "headers@example.com";
    let created = tenant.post("/users", &new_user(email)).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["user_id"].as_str().unwrap().to_string();
    let answers = [
        ("list", tenant.get("/users?page=0&per_page=5").await),
        ("create", created),
        ("get", tenant.get(&format!("/users/{}", encode(&id))).await),
        (
            "update",
            tenant
                .patch(
                    &format!("/users/{}", encode(&id)),
                    &json!({"user_metadata": {"x": 1}}),
                )
                .await,
        ),
        (
            "by email",
            tenant
                .get("/users-by-email?email=headers%40example.com")
                .await,
        ),
        ("404", tenant.get("/users/auth0%7Cnobody").await),
        ("400", tenant.get("/users?per_page=101").await),
    ];
    for (what, reply) in &answers {
        let number = |name: &str| -> u64 {
            reply
                .header(name)
                .unwrap_or_else(|| panic!("{what} ({}): no {name}", reply.status))
                .parse()
                .unwrap_or_else(|e| panic!("{what}: {name} is not a number: {e}"))
        };
        let (limit, remaining, reset) = (
            number("x-ratelimit-limit"),
            number("x-ratelimit-remaining"),
            number("x-ratelimit-reset"),
        );
        assert!(limit >= 1_000, "{what}: a generous bucket, not {limit}");
        assert!(
            remaining < limit && remaining >= limit - 20,
            "{what}: {remaining} of {limit} left"
        );
        assert!(
            (now..=now + 60).contains(&reset),
            "{what}: reset {reset} is an epoch second soon after {now}"
        );
    }
    // The token endpoint has limits of its own; its answers carry none of these.
    let token = tenant.token_request(&tenant.credentials()).await;
    assert_eq!(token.header("x-ratelimit-limit"), None);
    assert_eq!(tenant.sandbox.stats().throttled, 0);
}

#[tokio::test]
async fn evidence_routes_serve_the_ground_truth_without_a_token() {
    let tenant = Tenant::start(SandboxOptions {
        generate: 30,
        rate: Some(1.0),
        burst: Some(1),
        ..Default::default()
    })
    .await;
    let _ = tenant.get("/users").await;
    let _ = tenant.get("/users").await; // throttled
    for _ in 0..3 {
        let r = tenant
            .http
            .get(tenant.url("/__sandbox/users"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "never rate-limited");
        let text = r.text().await.unwrap();
        let ids: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["user_id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(ids.len(), 30);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "sorted by user_id");
    }
    let stats: Value = tenant
        .http
        .get(tenant.url("/__sandbox/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["throttled"], 1);
    assert_eq!(stats["requests"]["GET /api/v2/users"]["200"], 1);
    assert_eq!(stats["requests"]["GET /api/v2/users"]["429"], 1);
    assert_eq!(stats["users"], 30);
    let reset = tenant
        .http
        .post(tenant.url("/__sandbox/stats/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 204);
    let stats: Value = tenant
        .http
        .get(tenant.url("/__sandbox/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["total_requests"], 0);
    assert!(tenant.sandbox.requests().is_empty());
}

#[tokio::test]
async fn the_request_log_counts_what_a_client_did() {
    let tenant = Tenant::generated(3).await;
    let _ = tenant.get("/users").await;
    let _ = tenant.post("/users", &new_user("log@example.com")).await;
    let log = tenant.sandbox.requests();
    let summary: Vec<(String, String, u16)> = log
        .iter()
        .map(|r| (r.method.clone(), r.path.clone(), r.status))
        .collect();
    assert_eq!(
        summary,
        [
            ("POST".to_string(), "/oauth/token".to_string(), 200),
            ("GET".to_string(), "/api/v2/users".to_string(), 200),
            ("POST".to_string(), "/api/v2/users".to_string(), 201),
        ]
    );
    assert_eq!(tenant.sandbox.stats().writes.created, 1);
}

#[tokio::test]
async fn seeded_users_come_back_byte_for_byte() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/users.ndjson");
    let tenant = Tenant::start(SandboxOptions {
        seed: vec![sample.into()],
        ..Default::default()
    })
    .await;
    let mut expected: Vec<(String, String)> = std::fs::read_to_string(sample)
        .unwrap()
        .lines()
        .map(|line| {
            let user: Value = serde_json::from_str(line).unwrap();
            (
                user["user_id"].as_str().unwrap().to_string(),
                line.to_string(),
            )
        })
        .collect();
    expected.sort();
    let mut truth = Vec::new();
    tenant.sandbox.write_users(&mut truth).unwrap();
    let truth = String::from_utf8(truth).unwrap();
    let lines: Vec<&str> = truth.lines().collect();
    assert_eq!(lines.len(), 500);
    for (line, (_, original)) in lines.iter().zip(&expected) {
        assert_eq!(line, original);
    }
    // And every sample user passes the response schema as the API serves it.
    for page in 0..5 {
        let r = tenant
            .get(&format!("/users?page={page}&per_page=100"))
            .await;
        oas::assert_response_matches("GET", "/users", 200, &r.body);
    }
}
