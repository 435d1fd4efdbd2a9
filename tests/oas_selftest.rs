//! Tests of the OpenAPI checker in `support::oas`: realistic Auth0 users pass, broken ones
//! fail with a message that says where and why, and big numbers survive `arbitrary_precision`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::{Value, json};

use crate::support::oas;

/// Parses JSON text, as a response body would be, so numbers keep their exact text.
fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("test JSON parses")
}

/// A database user as Auth0 returns it: millisecond timestamps, unicode and big numbers in
/// metadata, one `auth0` identity.
fn database_user() -> Value {
    parse(
        r#"{
          "user_id": "auth0|65f1c0ffee0123456789abcd",
          "email": "zoe.martin@example.com",
          "email_verified": true,
          "username": "zoe",
          "name": "Zoë Martin",
          "given_name": "Zoë",
          "family_name": "Martin",
          "nickname": "zoe.martin",
          "picture": "https://s.gravatar.com/avatar/0f1e2d3c4b5a69788796a5b4c3d2e1f0?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2Fzm.png",
          "created_at": "2025-04-17T02:44:22.723Z",
          "updated_at": "2025-04-18T09:10:11.012Z",
          "last_login": "2025-04-18T09:10:10.999Z",
          "last_ip": "203.0.113.7",
          "logins_count": 5,
          "blocked": false,
          "multifactor": ["guardian"],
          "identities": [
            {
              "connection": "Username-Password-Authentication",
              "user_id": "65f1c0ffee0123456789abcd",
              "provider": "auth0",
              "isSocial": false
            }
          ],
          "user_metadata": {
            "preferences": {"theme": "dark", "languages": ["fr", "日本語"]},
            "名前": "Zoë 🚀",
            "addresses": [{"city": "Paris", "lines": ["1 rue de Rivoli", null]}],
            "big": 9007199254740993,
            "tiny": 1e-7,
            "max_u64": 18446744073709551615,
            "empty": {},
            "nothing": null
          },
          "app_metadata": {
            "plan": "full",
            "roles": ["admin", "billing"],
            "counters": {"huge": 123456789012345678901234567890, "negative": -42, "ratio": 0.25}
          }
        }"#,
    )
}

/// A Google user linked with a Twitter account: a numeric identity `user_id`, `profileData`
/// on the secondary identity, no password-related fields.
fn social_user() -> Value {
    parse(
        r#"{
          "user_id": "google-oauth2|104729468312563790427",
          "email": "sam.lee@gmail.com",
          "email_verified": true,
          "name": "Sam Lee",
          "given_name": "Sam",
          "family_name": "Lee",
          "nickname": "sam.lee",
          "picture": "https://lh3.googleusercontent.com/a/ACg8ocK-sam=s96-c",
          "locale": "en",
          "created_at": "2023-11-02T18:05:47.010Z",
          "updated_at": "2025-01-09T07:30:00.000Z",
          "last_login": "2025-01-09T07:30:00.000Z",
          "last_ip": "2001:db8::1",
          "logins_count": 142,
          "identities": [
            {
              "provider": "google-oauth2",
              "user_id": "104729468312563790427",
              "connection": "google-oauth2",
              "isSocial": true
            },
            {
              "provider": "twitter",
              "user_id": 783214,
              "connection": "twitter",
              "isSocial": true,
              "profileData": {"name": "Sam Lee", "screen_name": "samlee", "followers_count": 12}
            }
          ],
          "user_metadata": {},
          "app_metadata": {"plan": "free"}
        }"#,
    )
}

/// Runs `f`, which must panic, and returns its panic message.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        panic!("panic payload is not a string")
    }
}

/// Asserts that some violation mentions every one of `needles`.
fn assert_violation(violations: &[String], needles: &[&str]) {
    assert!(
        violations
            .iter()
            .any(|v| needles.iter().all(|n| v.contains(n))),
        "no violation mentions all of {needles:?}; violations: {violations:#?}"
    );
}

#[test]
fn realistic_users_match_get_users_as_a_bare_array() {
    let body = Value::Array(vec![database_user(), social_user()]);
    oas::assert_response_matches("GET", "/users", 200, &body);
    oas::assert_response_matches("GET", "/users", 200, &json!([]));
}

#[test]
fn realistic_users_match_get_users_with_totals() {
    let body = json!({
        "start": 50,
        "limit": 50,
        "length": 2,
        "total": 52,
        "users": [database_user(), social_user()],
    });
    oas::assert_response_matches("GET", "/users", 200, &body);
    let empty = json!({"start": 0, "limit": 50, "length": 0, "total": 0, "users": []});
    oas::assert_response_matches("get", "/users?include_totals=true", 200, &empty);
}

#[test]
fn realistic_user_matches_get_user_by_id() {
    oas::assert_response_matches("GET", "/users/{id}", 200, &database_user());
    oas::assert_response_matches("GET", "/users/{id}", 200, &social_user());
    // A concrete request path finds its template.
    let concrete = "/users/auth0%7C65f1c0ffee0123456789abcd";
    oas::assert_response_matches("GET", concrete, 200, &database_user());
}

#[test]
fn created_user_matches_post_users_201() {
    let created = parse(
        r#"{
          "user_id": "auth0|66aa00bb11cc22dd33ee44ff",
          "email": "new.user@example.com",
          "email_verified": false,
          "name": "new.user@example.com",
          "nickname": "new.user",
          "picture": "https://s.gravatar.com/avatar/1234?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2Fne.png",
          "created_at": "2025-04-17T02:44:22.723Z",
          "updated_at": "2025-04-17T02:44:22.723Z",
          "identities": [{"connection": "Username-Password-Authentication",
                          "user_id": "66aa00bb11cc22dd33ee44ff", "provider": "auth0", "isSocial": false}],
          "user_metadata": {"source": "import", "batch": 7},
          "app_metadata": {}
        }"#,
    );
    oas::assert_response_matches("POST", "/users", 201, &created);
}

#[test]
fn updated_user_matches_patch_users_200() {
    let mut updated = database_user();
    updated["user_metadata"] =
        json!({"profileCode": 1479, "addresses": {"work_address": "100 Industrial Way"}});
    updated["updated_at"] = json!("2025-04-19T00:00:00.000Z");
    oas::assert_response_matches("PATCH", "/users/{id}", 200, &updated);
}

#[test]
fn users_by_email_matches_for_none_one_and_several() {
    oas::assert_response_matches("GET", "/users-by-email", 200, &json!([]));
    oas::assert_response_matches("GET", "/users-by-email", 200, &json!([database_user()]));
    let mut other_connection = database_user();
    other_connection["user_id"] = json!("email|65f1c0ffee0123456789abce");
    other_connection["identities"] = json!([{
        "connection": "email", "user_id": "65f1c0ffee0123456789abce",
        "provider": "email", "isSocial": false
    }]);
    let several = json!([database_user(), other_connection]);
    oas::assert_response_matches(
        "GET",
        "/users-by-email?email=zoe.martin%40example.com",
        200,
        &several,
    );
}

#[test]
fn metadata_numbers_keep_their_text_and_validate() {
    let user = database_user();
    // `arbitrary_precision` is on: numbers keep their exact source text ...
    assert_eq!(user["user_metadata"]["big"].to_string(), "9007199254740993");
    assert_eq!(user["user_metadata"]["tiny"].to_string(), "1e-7");
    assert_eq!(
        user["user_metadata"]["max_u64"].to_string(),
        "18446744073709551615"
    );
    assert_eq!(
        user["app_metadata"]["counters"]["huge"].to_string(),
        "123456789012345678901234567890"
    );
    // ... and even a number no f64 can hold parses (it is "out of range" without the feature).
    // serde_json only normalises the exponent's spelling: `1e400` is kept as `1e+400`.
    let beyond_f64 = parse(r#"{"user_metadata": {"a": 1e400, "b": -1E400, "c": 1.5e-400}}"#);
    assert_eq!(beyond_f64["user_metadata"]["a"].to_string(), "1e+400");
    assert_eq!(beyond_f64["user_metadata"]["b"].to_string(), "-1e+400");
    oas::assert_response_matches("GET", "/users/{id}", 200, &user);
    oas::assert_response_matches("GET", "/users/{id}", 200, &beyond_f64);
    assert!(oas::schema_violations("UserMetadata", &beyond_f64["user_metadata"]).is_empty());
}

#[test]
fn logins_count_is_an_integer_under_arbitrary_precision() {
    for ok in [
        "0",
        "5",
        "5.0",
        "18446744073709551615",
        "18446744073709551616",
        "1e400",
    ] {
        let body = parse(&format!(
            r#"{{"user_id": "auth0|1", "logins_count": {ok}}}"#
        ));
        let violations = oas::response_violations("GET", "/users/{id}", 200, &body);
        assert!(violations.is_empty(), "logins_count {ok}: {violations:#?}");
    }
    for bad in ["5.5", "1e-7", "-0.5"] {
        let body = parse(&format!(
            r#"{{"user_id": "auth0|1", "logins_count": {bad}}}"#
        ));
        let violations = oas::response_violations("GET", "/users/{id}", 200, &body);
        assert_violation(&violations, &["/logins_count", bad, "integer"]);
    }
}

#[test]
fn created_at_that_is_not_a_date_time_is_refused() {
    for bad in [
        "2025-04-17 02:44:22",
        "yesterday",
        "2025-02-30T00:00:00.000Z",
        "1713321862723",
    ] {
        let mut user = database_user();
        user["created_at"] = json!(bad);
        let violations = oas::response_violations("GET", "/users/{id}", 200, &user);
        assert_violation(&violations, &["/created_at", "date-time", bad]);
        // Inside a list the path says which user; the `oneOf` says which shape failed how.
        let list = json!([social_user(), user]);
        let violations = oas::response_violations("GET", "/users", 200, &list);
        assert_eq!(violations.len(), 1, "{violations:#?}");
        assert_violation(&violations, &["oneOf", "/1/created_at", "date-time"]);
    }
}

#[test]
fn identity_with_an_unknown_key_is_refused() {
    let mut user = database_user();
    user["identities"][0]["last_login"] = json!("2025-04-18T09:10:10.999Z");
    let violations = oas::response_violations("GET", "/users/{id}", 200, &user);
    assert_violation(
        &violations,
        &["/identities/0", "'last_login' was unexpected"],
    );
    let violations = oas::response_violations("GET", "/users-by-email", 200, &json!([user]));
    assert_violation(&violations, &["/0/identities/0", "last_login"]);
}

#[test]
fn identity_with_an_unknown_provider_is_refused() {
    let mut user = database_user();
    user["identities"][0]["provider"] = json!("my-own-idp");
    let violations = oas::response_violations("GET", "/users/{id}", 200, &user);
    assert_violation(&violations, &["/identities/0/provider", "my-own-idp"]);
}

#[test]
fn totals_object_with_an_extra_key_is_refused() {
    let body = json!({
        "start": 0, "limit": 50, "length": 1, "total": 1,
        "users": [database_user()],
        "next": "page=1",
    });
    let violations = oas::response_violations("GET", "/users", 200, &body);
    assert_violation(&violations, &["(root)", "oneOf", "'next' was unexpected"]);
}

#[test]
fn logins_count_as_a_string_is_refused() {
    let mut user = database_user();
    user["logins_count"] = json!("5");
    for (method, path, status, body) in [
        ("GET", "/users/{id}", 200, user.clone()),
        ("POST", "/users", 201, user.clone()),
        ("PATCH", "/users/{id}", 200, user.clone()),
        ("GET", "/users-by-email", 200, json!([user.clone()])),
    ] {
        let violations = oas::response_violations(method, path, status, &body);
        assert_violation(
            &violations,
            &["/logins_count", r#""5" is not of type "integer""#],
        );
    }
}

#[test]
fn assert_response_matches_names_the_endpoint_every_violation_and_the_body() {
    let mut user = database_user();
    user["logins_count"] = json!("5");
    user["created_at"] = json!("yesterday");
    user["email"] = json!("not-an-email");
    let message = panic_message(|| oas::assert_response_matches("GET", "/users/{id}", 200, &user));
    for needle in [
        "GET /users/{id} 200",
        "3 violation(s)",
        "/logins_count: \"5\" is not of type \"integer\"",
        "/created_at: \"yesterday\" is not a \"date-time\"",
        "/email: \"not-an-email\" is not a \"email\"",
        "[#/components/schemas/GetUserResponseContent/properties/created_at/format]",
        "body:\n{",
        "\"zoe\"",
    ] {
        assert!(
            message.contains(needle),
            "missing {needle:?} in:\n{message}"
        );
    }
}

#[test]
fn a_response_without_a_json_schema_is_a_usage_error() {
    let message =
        panic_message(|| oas::assert_response_matches("DELETE", "/users/{id}", 204, &json!(null)));
    assert!(
        message.contains("no JSON schema for DELETE /users/{id} 204"),
        "{message}"
    );
    let message = panic_message(|| {
        oas::response_violations("GET", "/users", 400, &json!({}));
    });
    assert!(
        message.contains("GET /users 400 (statuses with one: 200)"),
        "{message}"
    );
    let message = panic_message(|| {
        oas::response_violations("GET", "/clients", 200, &json!([]));
    });
    assert!(
        message.contains("no path matching \"/clients\""),
        "{message}"
    );
    let message = panic_message(|| {
        oas::schema_violations("User", &json!({}));
    });
    assert!(
        message.contains("no component schema \"User\""),
        "{message}"
    );
}

#[test]
fn create_request_schema_refuses_read_only_fields_and_needs_a_connection() {
    let good = json!({
        "connection": "Username-Password-Authentication",
        "email": "new.user@example.com",
        "password": "correct horse battery staple",
        "given_name": "Zoë",
        "user_metadata": {"languages": ["fr"]},
        "app_metadata": {"plan": "full"},
        // `strict-uri` is not a format jsonschema knows: ignored, not an error.
        "picture": "not a uri at all",
    });
    assert_eq!(
        oas::schema_violations("CreateUserRequestContent", &good),
        Vec::<String>::new()
    );

    let mut read_only = good.clone();
    read_only["logins_count"] = json!(3);
    let violations = oas::schema_violations("CreateUserRequestContent", &read_only);
    assert_violation(&violations, &["(root)", "'logins_count' was unexpected"]);

    let mut no_connection = good.clone();
    no_connection.as_object_mut().unwrap().remove("connection");
    let violations = oas::schema_violations("CreateUserRequestContent", &no_connection);
    assert_violation(&violations, &["\"connection\" is a required property"]);

    let mut bad_fields = good;
    bad_fields["phone_number"] = json!("+33 6 12 34 56 78");
    bad_fields["email"] = json!("new.user");
    bad_fields["user_id"] = json!("has space");
    let violations = oas::schema_violations("CreateUserRequestContent", &bad_fields);
    assert_violation(&violations, &["/phone_number"]);
    assert_violation(&violations, &["/email", "email"]);
    assert_violation(&violations, &["/user_id"]);
}

#[test]
fn update_request_schema_accepts_nulls_and_refuses_empty_names() {
    let patch = json!({"name": null, "user_metadata": {"addresses": null}, "blocked": true});
    assert!(oas::schema_violations("UpdateUserRequestContent", &patch).is_empty());
    let violations = oas::schema_violations("UpdateUserRequestContent", &json!({"name": ""}));
    assert_violation(&violations, &["/name"]);
}

#[test]
fn auth0_error_bodies_are_checked() {
    oas::assert_error_body(
        &json!({"statusCode": 404, "error": "Not Found",
                "message": "The user does not exist.", "errorCode": "inexistent_user"}),
        404,
        "inexistent_user",
    );
    oas::assert_error_body(
        &parse(
            r#"{"statusCode":429,"error":"Too Many Requests",
                "message":"Global limit has been reached","errorCode":"too_many_requests"}"#,
        ),
        429,
        "too_many_requests",
    );
    let good = json!({"statusCode": 400, "error": "Bad Request",
                      "message": "You can only page through the first 1000 records.",
                      "errorCode": "invalid_paging"});
    oas::assert_error_body(&good, 400, "invalid_paging");

    let cases: [(&str, Value, &str); 6] = [
        (
            "error",
            json!({"error": "Bad request"}),
            r#"error: expected "Bad Request""#,
        ),
        (
            "errorCode",
            json!({"errorCode": "invalid_body"}),
            "errorCode: expected \"invalid_paging\"",
        ),
        (
            "message",
            json!({"message": ""}),
            "message: expected a non-empty string",
        ),
        (
            "statusCode",
            json!({"statusCode": "400"}),
            "statusCode: expected 400",
        ),
        (
            "extra",
            json!({"error_description": "x"}),
            "unexpected keys: error_description",
        ),
        (
            "statusCode",
            json!({"statusCode": 404}),
            "statusCode: expected 400",
        ),
    ];
    for (key, patch, needle) in cases {
        let mut body = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let message = panic_message(|| oas::assert_error_body(&body, 400, "invalid_paging"));
        assert!(
            message.contains(needle),
            "{key}: missing {needle:?} in:\n{message}"
        );
    }
    let message = panic_message(|| oas::assert_error_body(&json!([]), 400, "invalid_paging"));
    assert!(message.contains("not a JSON object"), "{message}");
}

#[test]
fn subset_holds_the_paths_the_sandbox_serves_and_every_schema_they_reference() {
    let spec: Value = parse(include_str!("oas/users-subset.json"));
    assert_eq!(spec["openapi"], "3.1.0");
    let paths: Vec<&String> = spec["paths"].as_object().unwrap().keys().collect();
    assert_eq!(
        paths,
        [
            "/connections",
            "/jobs/users-exports",
            "/jobs/users-imports",
            "/jobs/{id}",
            "/jobs/{id}/errors",
            "/organizations",
            "/organizations/name/{name}",
            "/organizations/{id}",
            "/organizations/{id}/members",
            "/organizations/{id}/members/{user_id}/roles",
            "/resource-servers",
            "/roles",
            "/roles/{id}",
            "/roles/{id}/permissions",
            "/roles/{id}/users",
            "/tickets/password-change",
            "/users",
            "/users-by-email",
            "/users/{id}",
            "/users/{id}/organizations",
            "/users/{id}/permissions",
            "/users/{id}/roles"
        ]
    );
    let mut refs = Vec::new();
    collect_refs(&spec, &mut refs);
    assert!(refs.len() > 10, "{refs:?}");
    for r in refs {
        let pointer = r.strip_prefix('#').expect("only local $refs");
        assert!(spec.pointer(pointer).is_some(), "dangling $ref {r}");
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(s)) => out.push(s.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[test]
fn validation_is_safe_from_many_threads() {
    let user = database_user();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..25 {
                    oas::assert_response_matches("GET", "/users/{id}", 200, &user);
                    oas::assert_response_matches("GET", "/users", 200, &json!([user]));
                }
            });
        }
    });
}
