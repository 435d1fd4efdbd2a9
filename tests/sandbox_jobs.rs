//! The sandbox's bulk-import jobs, connections, scopes, sign-in and password-change tickets
//! (issue 13) behave as AUTH0-FACTS.md says Auth0's do, and their responses match the spec.

use std::time::Duration;

use auth0_bulk::sandbox::{SandboxOptions, connection_id};
use serde_json::{Value, json};

use crate::support::oas;
use crate::support::tenant::{Reply, Tenant, encode, reply};

const UPA: &str = "Username-Password-Authentication";

/// One part of a multipart form.
enum Part<'a> {
    Text(&'a str),
    File(&'a [u8]),
}

/// The parts of one form, in order.
type Form<'a> = Vec<(&'a str, Part<'a>)>;

/// A multipart/form-data body, built by hand as any HTTP client would send it.
fn multipart(parts: &[(&str, Part<'_>)]) -> (String, Vec<u8>) {
    let boundary = "sandbox-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, part) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match part {
            Part::Text(value) => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                );
                body.extend_from_slice(value.as_bytes());
            }
            Part::File(bytes) => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"users.json\"\r\n\
                         Content-Type: application/json\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(bytes);
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_form(tenant: &Tenant, parts: &[(&str, Part<'_>)]) -> Reply {
    let (content_type, body) = multipart(parts);
    let request = tenant
        .http
        .post(tenant.url("/api/v2/jobs/users-imports"))
        .header("content-type", content_type)
        .body(body)
        .bearer_auth(&tenant.token);
    reply(request.send().await.expect("send")).await
}

/// Starts an import of `users` into the default database connection.
async fn import(tenant: &Tenant, users: &Value, upsert: bool) -> Reply {
    let file = users.to_string();
    let id = connection_id(UPA);
    let upsert = if upsert { "true" } else { "false" };
    post_form(
        tenant,
        &[
            ("users", Part::File(file.as_bytes())),
            ("connection_id", Part::Text(&id)),
            ("upsert", Part::Text(upsert)),
            ("send_completion_email", Part::Text("false")),
        ],
    )
    .await
}

/// Polls the job until `done` says so (or 30 s pass, which fails the test).
async fn wait_for(tenant: &Tenant, id: &str, done: impl Fn(&Reply) -> bool) -> Reply {
    for _ in 0..3_000 {
        let r = tenant.get(&format!("/jobs/{id}")).await;
        if done(&r) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} never reached the expected state");
}

async fn finished(tenant: &Tenant, id: &str) -> Value {
    let r = wait_for(tenant, id, |r| {
        matches!(r.body["status"].as_str(), Some("completed" | "failed"))
    })
    .await;
    oas::assert_response_matches("GET", &format!("/jobs/{id}"), 200, &r.body);
    r.body
}

fn fast() -> SandboxOptions {
    SandboxOptions {
        job_rate: 1_000_000.0,
        ..Default::default()
    }
}

fn job_id(r: &Reply) -> String {
    assert_eq!(r.status, 202, "{:?}", r.body);
    r.body["id"].as_str().expect("job id").to_string()
}

// ---- connections ------------------------------------------------------------------------------

#[tokio::test]
async fn connections_have_stable_ids_and_filter_by_name_and_strategy() {
    let tenant = Tenant::start(SandboxOptions::default()).await;
    let all = tenant.get("/connections").await;
    assert_eq!(all.status, 200, "{:?}", all.body);
    oas::assert_response_matches("GET", "/connections", 200, &all.body);
    let list = all.body.as_array().expect("a bare array");
    assert_eq!(list.len(), 4);
    let pattern = regex::Regex::new("^con_[A-Za-z0-9]{16}$").unwrap();
    for c in list {
        let id = c["id"].as_str().unwrap();
        assert!(pattern.is_match(id), "{id}");
        assert_eq!(id, connection_id(c["name"].as_str().unwrap()));
    }
    // The same id on every sandbox.
    assert_eq!(connection_id(UPA), connection_id(UPA));
    assert_ne!(connection_id(UPA), connection_id("legacy-db"));

    let by_name = tenant.get(&format!("/connections?name={UPA}")).await;
    assert_eq!(by_name.body.as_array().unwrap().len(), 1);
    assert_eq!(by_name.body[0]["strategy"], "auth0");
    assert_eq!(by_name.body[0]["id"], connection_id(UPA).as_str());

    let databases = tenant.get("/connections?strategy=auth0").await;
    let names: Vec<&str> = databases
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [UPA, "legacy-db"]);
    let two = tenant
        .get("/connections?strategy=auth0&strategy=samlp")
        .await;
    assert_eq!(two.body.as_array().unwrap().len(), 3);
    let bad = tenant.get("/connections?strategy=nope").await;
    assert_eq!(bad.status, 400);
    oas::assert_error_body(&bad.body, 400, "invalid_query_string");
    let repeated = tenant.get("/connections?name=a&name=b").await;
    assert_eq!(repeated.status, 400);

    let totals = tenant
        .get("/connections?include_totals=true&per_page=3&page=1")
        .await;
    oas::assert_response_matches("GET", "/connections", 200, &totals.body);
    assert_eq!(totals.body["total"], 4);
    assert_eq!(totals.body["start"], 3);
    assert_eq!(totals.body["connections"].as_array().unwrap().len(), 1);

    let first = tenant.get("/connections?take=3").await;
    oas::assert_response_matches("GET", "/connections", 200, &first.body);
    assert_eq!(first.body["connections"].as_array().unwrap().len(), 3);
    let next = first.body["next"].as_str().expect("a next checkpoint");
    let rest = tenant
        .get(&format!("/connections?take=3&from={next}"))
        .await;
    // The last checkpoint page (`{connections}` alone) fits both of the spec's paged shapes,
    // which its `oneOf` cannot tell apart; it is checked against the checkpoint shape itself.
    let violations = oas::schema_violations(
        "ListConnectionsCheckpointPaginatedResponseContent",
        &rest.body,
    );
    assert!(violations.is_empty(), "{violations:?}");
    assert_eq!(rest.body["connections"].as_array().unwrap().len(), 1);
    assert!(rest.body.get("next").is_none(), "{:?}", rest.body);

    let fields = tenant.get("/connections?fields=id,name").await;
    let keys: Vec<&String> = fields.body[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "name"]);
}

// ---- import jobs: the request -----------------------------------------------------------------

#[tokio::test]
async fn an_import_request_is_refused_with_auth0s_statuses_and_texts() {
    let tenant = Tenant::start(fast()).await;
    let id = connection_id(UPA);
    let file = br#"[{"email":"a@example.com"}]"#;

    // Facts: a file over 512,000 bytes is 413 with the exact text.
    let big = vec![b' '; 512_001];
    let r = post_form(
        &tenant,
        &[
            ("users", Part::File(&big)),
            ("connection_id", Part::Text(&id)),
        ],
    )
    .await;
    assert_eq!(r.status, 413);
    oas::assert_error_body(&r.body, 413, "payload_too_large");
    assert_eq!(
        r.body["message"],
        "Payload content length greater than maximum allowed: 512000."
    );
    // Exactly 512,000 bytes is still taken (a file of blanks then fails to parse).
    let limit = vec![b' '; 512_000];
    let r = post_form(
        &tenant,
        &[
            ("users", Part::File(&limit)),
            ("connection_id", Part::Text(&id)),
        ],
    )
    .await;
    assert_eq!(r.status, 202, "{:?}", r.body);

    let google = connection_id("google-oauth2");
    let cases: Vec<(Form<'_>, &str, &str)> = vec![
        (
            vec![("connection_id", Part::Text(&id))],
            "invalid_body",
            "Must provide 'users' file as multipart part.",
        ),
        (
            vec![
                ("users", Part::File(b"")),
                ("connection_id", Part::Text(&id)),
            ],
            "invalid_body",
            "Users file must not be empty.",
        ),
        (
            vec![("users", Part::File(file))],
            "invalid_body",
            "Must provide 'connection_id' as multipart part.",
        ),
        (
            vec![
                ("users", Part::File(file)),
                ("connection_id", Part::Text(UPA)),
            ],
            "invalid_body",
            "Payload validation error: 'String does not match pattern ^con_[A-Za-z0-9]{16}$' on property connection_id.",
        ),
        (
            vec![
                ("users", Part::File(file)),
                ("connection_id", Part::Text("con_0000000000000001")),
            ],
            "inexistent_connection",
            "The connection does not exist.",
        ),
        (
            vec![
                ("users", Part::File(file)),
                ("connection_id", Part::Text(&google)),
            ],
            "operation_not_supported",
            "Connection must be a database connection.",
        ),
        (
            vec![
                ("users", Part::File(file)),
                ("connection_id", Part::Text(&id)),
                ("upsert", Part::Text("yes")),
            ],
            "invalid_body",
            "Payload validation error: 'Expected type boolean but found type string' on property upsert.",
        ),
    ];
    for (parts, code, message) in cases {
        let r = post_form(&tenant, &parts).await;
        assert_eq!(r.status, 400, "{message}: {:?}", r.body);
        oas::assert_error_body(&r.body, 400, code);
        assert_eq!(r.body["message"], message);
    }
    // Not a multipart body at all.
    let r = tenant
        .post("/jobs/users-imports", &json!({"users": []}))
        .await;
    assert_eq!(r.status, 400);
    oas::assert_error_body(&r.body, 400, "invalid_body");
}

#[tokio::test]
async fn at_most_two_import_jobs_are_active_and_a_third_gets_the_exact_429() {
    let tenant = Tenant::start(SandboxOptions {
        hold_jobs: true,
        ..fast()
    })
    .await;
    let users = json!([{"email": "one@example.com"}]);
    let first = import(&tenant, &users, false).await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    oas::assert_response_matches("POST", "/jobs/users-imports", 202, &first.body);
    assert_eq!(first.body["status"], "pending");
    assert_eq!(first.body["type"], "users_import");
    assert_eq!(first.body["connection_id"], connection_id(UPA).as_str());
    assert_eq!(first.body["connection"], UPA);
    assert!(
        regex::Regex::new("^job_[A-Za-z0-9]{16}$")
            .unwrap()
            .is_match(first.body["id"].as_str().unwrap())
    );
    let second = import(&tenant, &json!([{"email": "two@example.com"}]), false).await;
    assert_eq!(second.status, 202);
    // Held: both stay pending.
    let pending = tenant.get(&format!("/jobs/{}", job_id(&first))).await;
    oas::assert_response_matches("GET", "/jobs/{id}", 200, &pending.body);
    assert_eq!(pending.body["status"], "pending");

    let third = import(&tenant, &json!([{"email": "three@example.com"}]), false).await;
    assert_eq!(third.status, 429);
    oas::assert_error_body(&third.body, 429, "too_many_requests");
    assert_eq!(
        third.body["message"],
        "There are 2 active import users jobs, please wait until some of them are finished and try again"
    );
    assert!(third.headers.contains_key("x-ratelimit-limit"));
    // The job endpoints count against the tenant's rate limits, in the `other` group.
    let groups = tenant.sandbox.stats().groups;
    assert_eq!(groups.other.requests, 4);
    assert_eq!(groups.users_write.requests, 0);

    tenant.sandbox.release_jobs();
    for job in [&first, &second] {
        let done = finished(&tenant, &job_id(job)).await;
        assert_eq!(done["status"], "completed");
    }
    let again = import(&tenant, &json!([{"email": "three@example.com"}]), false).await;
    assert_eq!(again.status, 202, "{:?}", again.body);
}

// ---- import jobs: the work --------------------------------------------------------------------

#[tokio::test]
async fn an_import_job_creates_users_as_post_users_does_and_reports_bad_records() {
    let tenant = Tenant::start(fast()).await;
    let users = json!([
        {"email": "Ada@Example.com", "user_id": "ada", "given_name": "Ada",
         "email_verified": true, "user_metadata": {"theme": "dark"}, "app_metadata": {"plan": "pro"},
         "password_hash": "$2b$10$C9Oh5xQ4QbUqL2/mbH3bSOp2Cm7p1Hf0rIKrT5ANxA3WbYdNuqgWu"},
        {"email": "bob@example.com"},
        {"given_name": "No Email", "password_hash": "$2b$10$secretsecretsecretsecretsecrets"},
        {"email": "carol@example.com", "blocked": "no",
         "custom_password_hash": {"algorithm": "md5", "hash": {"value": "c2VjcmV0aGFzaA==", "encoding": "base64"}}},
    ]);
    let created = import(&tenant, &users, false).await;
    let id = job_id(&created);
    let done = finished(&tenant, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["summary"],
        json!({"failed": 2, "updated": 0, "inserted": 2, "total": 4})
    );

    // The created users answer like any other: by id, by email, in search.
    let ada = tenant.get(&format!("/users/{}", encode("auth0|ada"))).await;
    assert_eq!(ada.status, 200);
    oas::assert_response_matches("GET", "/users/{id}", 200, &ada.body);
    assert_eq!(ada.body["email"], "ada@example.com");
    assert_eq!(ada.body["email_verified"], true);
    assert_eq!(ada.body["user_metadata"], json!({"theme": "dark"}));
    assert_eq!(
        ada.body["identities"],
        json!([{"connection": UPA, "user_id": "ada", "provider": "auth0", "isSocial": false}])
    );
    assert!(ada.body.get("password_hash").is_none());
    let bob = tenant.get("/users-by-email?email=bob@example.com").await;
    let bob = &bob.body[0];
    assert!(bob["user_id"].as_str().unwrap().starts_with("auth0|"));
    assert_eq!(bob["email_verified"], false);
    // The same keys a user created by POST /users has.
    let posted = tenant
        .post(
            "/users",
            &json!({"connection": UPA, "email": "dan@example.com", "password": "Correct-Horse-9"}),
        )
        .await;
    let keys = |u: &Value| {
        let mut k: Vec<String> = u.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(bob), keys(&posted.body));
    let listed = tenant
        .get("/users?q=email%3A%22bob%40example.com%22&search_engine=v3")
        .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    // No hash anywhere the tenant shows users.
    let evidence = tenant
        .http
        .get(tenant.url("/__sandbox/users"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!evidence.contains("$2b$"), "a hash in /__sandbox/users");

    // The refused records, as sent but with every hash value masked.
    let errors = tenant.get(&format!("/jobs/{id}/errors")).await;
    assert_eq!(errors.status, 200);
    oas::assert_response_matches("GET", "/jobs/{id}/errors", 200, &errors.body);
    let text = errors.body.to_string();
    assert!(!text.contains("secretsecret") && !text.contains("c2VjcmV0aGFzaA"));
    let entries = errors.body.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["user"]["given_name"], "No Email");
    assert_eq!(entries[0]["user"]["password_hash"], "*****");
    assert_eq!(
        entries[0]["errors"],
        json!([{"code": "OBJECT_REQUIRED", "message": "Missing required property: email", "path": "email"}])
    );
    assert_eq!(
        entries[1]["user"]["custom_password_hash"],
        json!({"algorithm": "md5", "hash": {"value": "*****", "encoding": "base64"}})
    );
    assert_eq!(entries[1]["errors"][0]["code"], "INVALID_TYPE");
    assert_eq!(entries[1]["errors"][0]["path"], "blocked");
    assert_eq!(tenant.sandbox.stats().writes.created, 3);
}

#[tokio::test]
async fn a_user_already_there_or_twice_in_the_file_is_a_duplicated_user() {
    let tenant = Tenant::start(fast()).await;
    let existing = tenant
        .post(
            "/users",
            &json!({"connection": UPA, "email": "eve@example.com", "password": "Correct-Horse-9"}),
        )
        .await;
    assert_eq!(existing.status, 201);
    let users = json!([
        {"email": "eve@example.com"},
        {"email": "frank@example.com", "user_id": "f1"},
        {"email": "FRANK@example.com"},
        {"email": "grace@example.com", "user_id": "f1"},
    ]);
    let id = job_id(&import(&tenant, &users, false).await);
    let done = finished(&tenant, &id).await;
    assert_eq!(
        done["summary"],
        json!({"failed": 3, "updated": 0, "inserted": 1, "total": 4})
    );
    let errors = tenant.get(&format!("/jobs/{id}/errors")).await;
    oas::assert_response_matches("GET", "/jobs/{id}/errors", 200, &errors.body);
    let errors: Vec<&Value> = errors
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["errors"][0])
        .collect();
    assert_eq!(
        errors,
        [
            &json!({"code": "DUPLICATED_USER", "message": "The user already exist and upsert parameter is false"}),
            &json!({"code": "DUPLICATED_USER", "message": "A user with this email was already provided."}),
            &json!({"code": "DUPLICATED_USER", "message": "A user with this user_id was already provided."}),
        ]
    );
}

#[tokio::test]
async fn upsert_replaces_metadata_wholesale_and_unverifies_the_email_unless_the_file_says() {
    let tenant = Tenant::start(fast()).await;
    let before = tenant
        .post(
            "/users",
            &json!({
                "connection": UPA, "email": "heidi@example.com", "password": "Correct-Horse-9",
                "email_verified": true, "given_name": "Heidi",
                "user_metadata": {"theme": "dark", "address": {"city": "Paris"}},
                "app_metadata": {"plan": "pro"},
            }),
        )
        .await;
    assert_eq!(before.status, 201);
    let user_id = before.body["user_id"].as_str().unwrap().to_string();
    let users = json!([
        {"email": "heidi@example.com", "user_metadata": {"lang": "fr"}, "family_name": "Klum",
         "password_hash": "$2b$10$C9Oh5xQ4QbUqL2/mbH3bSOp2Cm7p1Hf0rIKrT5ANxA3WbYdNuqgWu"},
        {"email": "ivan@example.com", "email_verified": true},
    ]);
    let id = job_id(&import(&tenant, &users, true).await);
    let done = finished(&tenant, &id).await;
    assert_eq!(
        done["summary"],
        json!({"failed": 0, "updated": 1, "inserted": 1, "total": 2})
    );
    let after = tenant.get(&format!("/users/{}", encode(&user_id))).await;
    oas::assert_response_matches("GET", "/users/{id}", 200, &after.body);
    // Replaced whole, not merged; what the file leaves out stays.
    assert_eq!(after.body["user_metadata"], json!({"lang": "fr"}));
    assert_eq!(after.body["app_metadata"], json!({"plan": "pro"}));
    assert_eq!(after.body["given_name"], "Heidi");
    assert_eq!(after.body["family_name"], "Klum");
    assert_eq!(after.body["email_verified"], false);
    assert!(after.body["updated_at"].as_str() > before.body["updated_at"].as_str());
    assert_eq!(after.body["created_at"], before.body["created_at"]);
    // A hash is taken only when the job creates the user: the password still signs in.
    assert!(login(&tenant, "heidi@example.com", UPA, "Correct-Horse-9").await);
    let ivan = tenant.get("/users-by-email?email=ivan@example.com").await;
    assert_eq!(ivan.body[0]["email_verified"], true);
    let errors = tenant.get(&format!("/jobs/{id}/errors")).await;
    assert_eq!(errors.status, 204);
}

#[tokio::test]
async fn a_job_shows_its_progress_while_processing() {
    // Two users a second: the job is processing for about two seconds.
    let tenant = Tenant::start(SandboxOptions {
        job_rate: 2.0,
        ..Default::default()
    })
    .await;
    let users: Vec<Value> = (0..5)
        .map(|i| json!({"email": format!("p{i}@example.com")}))
        .collect();
    let id = job_id(&import(&tenant, &Value::Array(users), false).await);
    let processing = wait_for(&tenant, &id, |r| r.body["status"] == "processing").await;
    oas::assert_response_matches("GET", "/jobs/{id}", 200, &processing.body);
    let percentage = processing.body["percentage_done"]
        .as_u64()
        .expect("percentage_done");
    assert!(percentage < 100, "{percentage}");
    assert!(
        processing.body["time_left_seconds"]
            .as_u64()
            .expect("time_left")
            >= 1
    );
    assert!(processing.body.get("summary").is_none());
    let done = finished(&tenant, &id).await;
    assert_eq!(done["summary"]["inserted"], 5);
    assert!(done.get("percentage_done").is_none());
}

#[tokio::test]
async fn a_file_that_cannot_be_parsed_is_accepted_and_its_job_fails_without_a_summary() {
    let tenant = Tenant::start(fast()).await;
    let id = connection_id(UPA);
    for file in [
        &b"{not json"[..],
        br#"{"email": "a@example.com"}"#,
        b"[1, 2]",
    ] {
        let r = post_form(
            &tenant,
            &[
                ("users", Part::File(file)),
                ("connection_id", Part::Text(&id)),
            ],
        )
        .await;
        let job = job_id(&r);
        let done = finished(&tenant, &job).await;
        assert_eq!(done["status"], "failed");
        assert!(done.get("summary").is_none(), "{done}");
        let errors = tenant.get(&format!("/jobs/{job}/errors")).await;
        assert_eq!(errors.status, 204);
        assert_eq!(errors.body, Value::Null);
    }
    assert_eq!(tenant.sandbox.user_count(), 0);
}

#[tokio::test]
async fn a_job_running_past_its_timeout_fails_with_what_it_did() {
    let tenant = Tenant::start(SandboxOptions {
        job_rate: 1.0,
        job_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let users: Vec<Value> = (0..10)
        .map(|i| json!({"email": format!("t{i}@example.com")}))
        .collect();
    let id = job_id(&import(&tenant, &Value::Array(users), false).await);
    let done = finished(&tenant, &id).await;
    assert_eq!(done["status"], "failed");
    assert!(done["status_details"].as_str().is_some());
    let inserted = done["summary"]["inserted"].as_u64().unwrap();
    assert!((1..10).contains(&inserted), "{done}");
    assert_eq!(done["summary"]["total"], 10);
}

#[tokio::test]
async fn a_purged_job_answers_404_in_auth0s_error_shape() {
    let tenant = Tenant::start(SandboxOptions {
        job_purge_after: Duration::from_millis(300),
        ..fast()
    })
    .await;
    let id = job_id(&import(&tenant, &json!([{"email": "old@example.com"}]), false).await);
    let gone = wait_for(&tenant, &id, |r| r.status == 404).await;
    oas::assert_error_body(&gone.body, 404, "inexistent_job");
    let errors = tenant.get(&format!("/jobs/{id}/errors")).await;
    assert_eq!(errors.status, 404);
    oas::assert_error_body(&errors.body, 404, "inexistent_job");
    let unknown = tenant.get("/jobs/job_0000000000000000").await;
    assert_eq!(unknown.status, 404);
    // The job's users stay.
    assert_eq!(tenant.sandbox.user_count(), 1);
}

// ---- scopes -----------------------------------------------------------------------------------

#[tokio::test]
async fn a_token_without_an_endpoints_scope_gets_403_insufficient_scope() {
    let tenant = Tenant::start(SandboxOptions {
        scopes: Some(vec!["read:users".into()]),
        ..fast()
    })
    .await;
    let token = tenant.token_request(&tenant.credentials()).await;
    assert_eq!(token.body["scope"], "read:users");
    let expect = |r: &Reply, scope: &str| {
        assert_eq!(r.status, 403, "{:?}", r.body);
        oas::assert_error_body(&r.body, 403, "insufficient_scope");
        assert_eq!(
            r.body["message"],
            format!("Insufficient scope, expected any of: {scope}")
        );
    };
    expect(&import(&tenant, &json!([]), false).await, "create:users");
    expect(&tenant.get("/connections").await, "read:connections");
    expect(
        &tenant
            .post("/tickets/password-change", &json!({"user_id": "auth0|x"}))
            .await,
        "create:user_tickets",
    );
    expect(
        &tenant
            .post(
                "/users",
                &json!({"connection": UPA, "email": "a@example.com"}),
            )
            .await,
        "create:users",
    );
    expect(&tenant.delete("/users/auth0%7Cx").await, "delete:users");
    // read:users is enough to poll a job.
    assert_eq!(tenant.get("/jobs/job_0000000000000000").await.status, 404);
    assert_eq!(tenant.get("/users").await.status, 200);
}

#[tokio::test]
async fn an_unknown_scope_is_a_usage_error() {
    let started = auth0_bulk::sandbox::Sandbox::start(SandboxOptions {
        scopes: Some(vec!["read:everything".into()]),
        ..Default::default()
    })
    .await;
    let message = started.err().expect("refused").to_string();
    assert!(message.contains("read:everything"), "{message}");
}

// ---- sign-in ----------------------------------------------------------------------------------

async fn login(tenant: &Tenant, email: &str, connection: &str, password: &str) -> bool {
    let r = reply(
        tenant
            .http
            .post(tenant.url("/__sandbox/login"))
            .json(&json!({"email": email, "connection": connection, "password": password}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["ok"].as_bool().expect("ok")
}

#[tokio::test]
async fn a_password_set_through_the_api_signs_in_and_is_never_shown() {
    let tenant = Tenant::start(SandboxOptions::default()).await;
    let created = tenant
        .post(
            "/users",
            &json!({"connection": UPA, "email": "judy@example.com", "password": "Correct-Horse-9"}),
        )
        .await;
    assert_eq!(created.status, 201);
    assert!(login(&tenant, "judy@example.com", UPA, "Correct-Horse-9").await);
    assert!(login(&tenant, "JUDY@example.com", UPA, "Correct-Horse-9").await);
    assert!(!login(&tenant, "judy@example.com", UPA, "correct-horse-9").await);
    assert!(!login(&tenant, "judy@example.com", "legacy-db", "Correct-Horse-9").await);
    assert!(!login(&tenant, "nobody@example.com", UPA, "Correct-Horse-9").await);

    let id = encode(created.body["user_id"].as_str().unwrap());
    let changed = tenant
        .patch(
            &format!("/users/{id}"),
            &json!({"password": "Battery-Staple-7"}),
        )
        .await;
    assert_eq!(changed.status, 200);
    assert!(!login(&tenant, "judy@example.com", UPA, "Correct-Horse-9").await);
    assert!(login(&tenant, "judy@example.com", UPA, "Battery-Staple-7").await);
    let blocked = tenant
        .patch(&format!("/users/{id}"), &json!({"blocked": true}))
        .await;
    assert_eq!(blocked.status, 200);
    assert!(!login(&tenant, "judy@example.com", UPA, "Battery-Staple-7").await);

    let mut shown = tenant.get(&format!("/users/{id}")).await.body.to_string();
    shown += &tenant
        .http
        .get(tenant.url("/__sandbox/users"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!shown.contains("Battery") && !shown.contains("Correct-Horse"));

    let bad = tenant
        .http
        .post(tenant.url("/__sandbox/login"))
        .json(&json!({"email": "judy@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

/// The hash path is plumbed (the job's hash is kept and handed to `crate::hashes::verify`);
/// whether it verifies is `src/hashes.rs`'s to say, tested there.
#[tokio::test]
async fn a_user_a_job_created_without_a_hash_cannot_sign_in() {
    let tenant = Tenant::start(fast()).await;
    let id = job_id(&import(&tenant, &json!([{"email": "kim@example.com"}]), false).await);
    assert_eq!(finished(&tenant, &id).await["status"], "completed");
    assert!(!login(&tenant, "kim@example.com", UPA, "").await);
    assert!(!login(&tenant, "kim@example.com", UPA, "anything").await);
}

// ---- password-change tickets ------------------------------------------------------------------

#[tokio::test]
async fn password_change_tickets_are_counted_per_user_and_never_shown_again() {
    let tenant = Tenant::start(SandboxOptions {
        seed: vec![],
        ..Default::default()
    })
    .await;
    let created = tenant
        .post(
            "/users",
            &json!({"connection": UPA, "email": "leo@example.com", "password": "Correct-Horse-9"}),
        )
        .await;
    let user_id = created.body["user_id"].as_str().unwrap().to_string();
    let r = tenant
        .post(
            "/tickets/password-change",
            &json!({"user_id": user_id, "ttl_sec": 0, "mark_email_as_verified": true,
                    "result_url": "https://app.example.com/welcome"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    oas::assert_response_matches("POST", "/tickets/password-change", 201, &r.body);
    let ticket = r.body["ticket"].as_str().unwrap().to_string();
    let host = tenant.sandbox.domain().trim_start_matches("http://");
    let pattern = format!(
        "^https://{}/lo/reset\\?ticket=[A-Za-z0-9]{{32}}#$",
        regex::escape(host)
    );
    assert!(
        regex::Regex::new(&pattern).unwrap().is_match(&ticket),
        "{ticket}"
    );
    let by_email = tenant
        .post(
            "/tickets/password-change",
            &json!({"connection_id": connection_id(UPA), "email": "leo@example.com"}),
        )
        .await;
    assert_eq!(by_email.status, 201, "{:?}", by_email.body);
    assert_ne!(by_email.body["ticket"], ticket.as_str());

    let counts = reply(
        tenant
            .http
            .get(tenant.url("/__sandbox/tickets"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(counts.body, json!({ &user_id: 2 }));
    assert!(!counts.body.to_string().contains("lo/reset"));
    assert_eq!(tenant.sandbox.ticket_counts().get(&user_id), Some(&2));

    let unknown = tenant
        .post(
            "/tickets/password-change",
            &json!({"user_id": "auth0|nobody"}),
        )
        .await;
    assert_eq!(unknown.status, 404);
    oas::assert_error_body(&unknown.body, 404, "inexistent_user");
    for body in [
        json!({"user_id": user_id, "shoe_size": 9}),
        json!({"user_id": user_id, "ttl_sec": -1}),
        json!({}),
        json!({"user_id": user_id, "email": "leo@example.com"}),
    ] {
        let r = tenant.post("/tickets/password-change", &body).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        oas::assert_error_body(&r.body, 400, "invalid_body");
    }
}

// ---- export jobs ------------------------------------------------------------------------------

/// Downloads a link without the token, as a browser or curl would: status, body text.
async fn download(tenant: &Tenant, location: &str) -> (u16, String) {
    let response = tenant.http.get(location).send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    if status != 200 {
        return (status, String::from_utf8_lossy(&bytes).into_owned());
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
        .expect("a gzipped text file");
    (status, text)
}

async fn export(tenant: &Tenant, body: &Value) -> (String, Value) {
    let r = tenant.post("/jobs/users-exports", body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["type"], "users_export");
    let id = r.body["id"].as_str().unwrap().to_string();
    let done = finished(tenant, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    (id, r.body)
}

async fn seed_two(tenant: &Tenant) {
    for (email, name, country) in [
        ("mia@example.com", "=HYPERLINK(\"http://evil\")", "FR"),
        ("ned@example.com", "Ned", "DE"),
    ] {
        let r = tenant
            .post(
                "/users",
                &json!({"connection": UPA, "email": email, "password": "Correct-Horse-9",
                        "name": name, "user_metadata": {"country": country}}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
}

#[tokio::test]
async fn a_csv_export_guards_strings_blanks_objects_and_serves_a_fresh_link_each_time() {
    let tenant = Tenant::start(fast()).await;
    seed_two(&tenant).await;
    let (id, created) = export(
        &tenant,
        &json!({
            "connection_id": connection_id(UPA),
            "format": "csv",
            "fields": [
                {"name": "email"},
                {"name": "name"},
                {"name": "user_metadata.country", "export_as": "country"},
                {"name": "identities[0].connection", "export_as": "provider"},
                {"name": "created_at"},
                {"name": "email_verified"},
                {"name": "app_metadata"},
            ],
        }),
    )
    .await;
    oas::assert_response_matches("POST", "/jobs/users-exports", 200, &created);
    assert_eq!(created["connection"], UPA);
    assert_eq!(created["format"], "csv");

    let first = tenant.get(&format!("/jobs/{id}")).await;
    oas::assert_response_matches("GET", "/jobs/{id}", 200, &first.body);
    let second = tenant.get(&format!("/jobs/{id}")).await;
    let (a, b) = (
        first.body["location"].as_str().expect("location"),
        second.body["location"].as_str().expect("location"),
    );
    assert_ne!(a, b, "each fetch gives a fresh link");
    let (status, csv) = download(&tenant, a).await;
    assert_eq!(status, 200);
    assert_eq!(download(&tenant, b).await.1, csv);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        r#""email","name","country","provider","created_at","email_verified","app_metadata""#
    );
    assert_eq!(lines.len(), 3, "{csv}");
    // Users come in user_id order (random ids here): find Mia's line.
    let mia = lines
        .iter()
        .find(|l| l.contains("mia@"))
        .expect("Mia is exported");
    assert!(
        mia.starts_with(r#""'mia@example.com","'=HYPERLINK(""http://evil"")","'FR","'Username-Password-Authentication","#),
        "{mia}"
    );
    // Auth0's own dates unguarded, booleans bare, objects blank.
    assert!(
        regex::Regex::new(r",\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z,false,$")
            .unwrap()
            .is_match(mia),
        "{mia}"
    );
}

#[tokio::test]
async fn a_json_export_of_every_user_is_ndjson_up_to_its_limit() {
    let tenant = Tenant::start(SandboxOptions {
        generate: 5,
        ..fast()
    })
    .await;
    seed_two(&tenant).await;
    let (id, created) = export(&tenant, &json!({"format": "json"})).await;
    // Without a connection there is no `connection` to name; the spec's schema requires one,
    // which is the only thing it finds missing.
    let violations = oas::response_violations("POST", "/jobs/users-exports", 200, &created);
    assert!(
        violations.iter().all(|v| v.contains("connection")),
        "{violations:?}"
    );
    let job = tenant.get(&format!("/jobs/{id}")).await;
    let (_, ndjson) = download(&tenant, job.body["location"].as_str().unwrap()).await;
    let users: Vec<Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(users.len(), 7);
    let truth: Vec<Value> = tenant
        .sandbox
        .users()
        .into_iter()
        .map(Value::Object)
        .collect();
    assert_eq!(users, truth);

    let (id, _) = export(
        &tenant,
        &json!({"format": "json", "limit": 2, "fields": [{"name": "user_id"}, {"name": "email", "export_as": "mail"}]}),
    )
    .await;
    let job = tenant.get(&format!("/jobs/{id}")).await;
    let (_, ndjson) = download(&tenant, job.body["location"].as_str().unwrap()).await;
    let lines: Vec<Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let keys: Vec<&String> = lines[0].as_object().unwrap().keys().collect();
    assert!(
        keys.iter().all(|k| *k == "user_id" || *k == "mail"),
        "{keys:?}"
    );
}

#[tokio::test]
async fn an_export_link_expires_like_a_presigned_s3_url() {
    let tenant = Tenant::start(SandboxOptions {
        export_link_ttl: Duration::from_millis(200),
        ..fast()
    })
    .await;
    seed_two(&tenant).await;
    let (id, _) = export(&tenant, &json!({"format": "json"})).await;
    let job = tenant.get(&format!("/jobs/{id}")).await;
    let location = job.body["location"].as_str().unwrap().to_string();
    let forged = location.replace("X-Amz-Signature=", "X-Amz-Signature=x");
    let (status, body) = download(&tenant, &forged).await;
    assert_eq!(status, 403);
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    // Poll until the link has lived its time: then S3's 403.
    let mut expired = None;
    for _ in 0..500 {
        let (status, body) = download(&tenant, &location).await;
        if status == 403 {
            expired = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let body = expired.expect("the link expires");
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    // The job still gives a fresh, working link.
    let again = tenant.get(&format!("/jobs/{id}")).await;
    let (status, _) = download(&tenant, again.body["location"].as_str().unwrap()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_export_request_is_checked_strictly() {
    let tenant = Tenant::start(fast()).await;
    let many: Vec<Value> = (0..31).map(|i| json!({"name": format!("f{i}")})).collect();
    for body in [
        json!({"format": "json", "query": "email:*"}),
        json!({"format": "xml"}),
        json!({"format": "json", "limit": 0}),
        json!({"format": "json", "fields": [{"name": "email", "as": "mail"}]}),
        json!({"format": "csv", "fields": many}),
        json!({"format": "json", "connection_id": "Username-Password-Authentication"}),
        json!({"format": "json", "connection_id": "con_0000000000000001"}),
    ] {
        let r = tenant.post("/jobs/users-exports", &body).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        let code = r.body["errorCode"].as_str().unwrap().to_string();
        oas::assert_error_body(&r.body, 400, &code);
    }
    let read_only_create = Tenant::start(SandboxOptions {
        scopes: Some(vec!["create:users".into()]),
        ..fast()
    })
    .await;
    let r = read_only_create
        .post("/jobs/users-exports", &json!({"format": "json"}))
        .await;
    assert_eq!(r.status, 403);
    oas::assert_error_body(&r.body, 403, "insufficient_scope");
}
