//! `auth0-bulk delete` end to end against in-process sandboxes: by query past the 1,000 cap
//! with 429s and faults, by a list of ids and emails, dry runs, kills and resumes, scopes, and
//! the before-images imported back with the users' ids.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use auth0_bulk::sandbox::SandboxOptions;
use serde_json::Value;

use crate::support::child::{self, run};
use crate::support::exports::User;
use crate::support::imports::{
    DB, assert_same_users, comparable, connection_of, import_file, tenant_users,
};
use crate::support::kill::{kill_until_done, scaled};
use crate::support::live::{Live, user_id};

/// `auth0-bulk delete --domain <the sandbox>` with its credentials in the environment.
fn delete(live: &Live) -> Command {
    let mut command = child::binary();
    command
        .arg("delete")
        .args(["--domain", live.domain()])
        .env("AUTH0_CLIENT_ID", live.client_id())
        .env("AUTH0_CLIENT_SECRET", live.client_secret());
    command
}

/// The before-images a deletion left in `state`, in the file's order.
fn before_images(state: &Path) -> Vec<User> {
    match std::fs::read_to_string(state.join("deleted.ndjson")) {
        Ok(text) => text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a before-image is a user"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Asserts that the images hold each user at most once and are exactly `want`.
fn assert_images_are(state: &Path, want: &BTreeMap<String, User>, what: &str) {
    let images = before_images(state);
    let mut seen = BTreeSet::new();
    for image in &images {
        assert!(
            seen.insert(user_id(image).to_string()),
            "{what}: {} has two before-images",
            user_id(image)
        );
    }
    let got: BTreeMap<String, User> = images
        .into_iter()
        .map(|u| (user_id(&u).to_string(), u))
        .collect();
    assert_same_users(&got, want, what);
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").expect("the list writes");
}

fn is_matched(user: &User) -> bool {
    let plan = user.get("app_metadata").and_then(|m| m.get("plan"));
    matches!(plan.and_then(Value::as_str), Some("free" | "pro"))
}

#[test]
fn a_query_deletes_exactly_its_matches_past_the_cap_each_with_one_before_image() {
    // About 5,000 of 6,800 generated users are on the free or pro plan.
    let live = Live::start(SandboxOptions {
        generate: 6_800,
        rate: Some(400.0),
        fault_rate: 0.02,
        ..Default::default()
    });
    let before = tenant_users(&live);
    let (doomed, kept): (BTreeMap<_, _>, BTreeMap<_, _>) =
        before.into_iter().partition(|(_, u)| is_matched(u));
    assert!(doomed.len() > 4_900, "{} matches", doomed.len());
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("purge");
    let ran = run(delete(&live)
        .args([
            "--query",
            r#"app_metadata.plan:"free" OR app_metadata.plan:"pro""#,
        ])
        .arg("--state")
        .arg(&state)
        .args(["--yes", "--json", "--quiet"]));
    ran.expect_code(0);
    let summary = ran.summary();
    assert_eq!(summary["deleted"], doomed.len() as u64, "{summary}");
    assert_eq!(summary["read"], doomed.len() as u64);
    assert_eq!(summary["rejected"], 0);
    assert_same_users(&tenant_users(&live), &kept, "the tenant after the deletion");
    assert_images_are(&state, &doomed, "the before-images");
    let faults = live
        .api_requests()
        .iter()
        .filter(|r| r.fault.is_some())
        .count();
    assert!(faults > 0, "the run met faults");
}

#[test]
fn a_killed_deletion_resumes_without_a_duplicate_or_missing_before_image() {
    let n = scaled(600, 3_000);
    let live = Live::start(SandboxOptions {
        generate: n,
        latency: Duration::from_millis(2),
        ..Default::default()
    });
    let before = tenant_users(&live);
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("leavers.txt");
    let ids: Vec<String> = before.keys().cloned().collect();
    write_lines(&list, &ids);
    let state = dir.path().join("leavers.txt.state");
    let command = || {
        let mut command = delete(&live);
        command.arg("--users").arg(&list).args(["--yes", "--quiet"]);
        command
    };
    // Progress: the ledger's records done, once the checkpoint says the run completed 1.
    let progress = || {
        let completed = std::fs::read_to_string(state.join("delete.json"))
            .is_ok_and(|t| t.contains("\"completed\": true"));
        if completed {
            return 1.0;
        }
        let done: u64 = std::fs::read_to_string(state.join("ledger.ndjson"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|e| {
                ["deleted", "not_found", "duplicates", "rejected"]
                    .iter()
                    .map(|k| e[*k].as_u64().unwrap_or(0))
                    .sum::<u64>()
            })
            .sum();
        (done as f64 / n as f64).min(0.999)
    };
    let after_kill = |_| {
        // Whoever is gone has exactly one image; an image may precede its delete.
        let left = tenant_users(&live);
        let images = before_images(&state);
        let imaged: BTreeSet<&str> = images.iter().map(user_id).collect();
        assert_eq!(imaged.len(), images.len(), "a before-image written twice");
        for id in before.keys().filter(|id| !left.contains_key(*id)) {
            assert!(
                imaged.contains(id.as_str()),
                "{id} deleted without an image"
            );
        }
    };
    let killed = kill_until_done(
        7,
        scaled(3, 12),
        Duration::from_secs(8),
        command,
        progress,
        after_kill,
    );
    eprintln!("{}", killed.describe());
    assert!(
        killed.mid_progress > 0,
        "a kill landed mid-run: {}",
        killed.describe()
    );
    assert!(live.tenant.sandbox.users().is_empty(), "every user is gone");
    assert_images_are(&state, &before, "the before-images after the kills");
}

#[test]
fn listed_ids_and_emails_are_deleted_and_an_unknown_one_is_skipped() {
    let live = Live::generated(12);
    let before = tenant_users(&live);
    let users: Vec<&User> = before.values().collect();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("leavers.txt");
    let email = users[1]["email"].as_str().unwrap().to_string();
    write_lines(
        &list,
        &[
            "# leavers, March".into(),
            user_id(users[0]).into(),
            email,
            String::new(),
            "auth0|no-such-user".into(),
            "nobody@example.com".into(),
            user_id(users[2]).into(),
        ],
    );
    // A dry run first: it names who would go, and deletes and writes nothing but its plan.
    let plan = dir.path().join("plan.ndjson");
    let dry = run(delete(&live)
        .arg("--users")
        .arg(&list)
        .args(["--dry-run", "--json", "--plan"])
        .arg(&plan));
    dry.expect_code(0);
    let planned: Vec<Value> = std::fs::read_to_string(&plan)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<(u64, &str, &str)> = planned
        .iter()
        .map(|p| {
            let field = |k: &str| p[k].as_str().unwrap();
            (
                p["line"].as_u64().unwrap(),
                field("action"),
                field("user_id"),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            (2, "would_delete", user_id(users[0])),
            (3, "would_delete", user_id(users[1])),
            (5, "skipped", "auth0|no-such-user"),
            (6, "skipped", "nobody@example.com"),
            (7, "would_delete", user_id(users[2])),
        ],
        "the plan, in list order"
    );
    assert_eq!(planned[0]["email"], users[0]["email"]);
    assert_eq!(planned[0]["connection"].as_str(), connection_of(users[0]));
    assert_eq!(planned[2]["reason"]["code"], "not_found");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&plan).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let summary = dry.summary();
    assert_eq!(
        (summary["deleted"].as_u64(), summary["not_found"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(summary["dry_run"], true);
    assert!(
        dry.stderr
            .contains(&format!("would delete {}", user_id(users[0]))),
        "{}",
        dry.stderr
    );
    assert_eq!(tenant_users(&live), before, "a dry run deletes nothing");
    assert!(
        !dir.path().join("leavers.txt.state").exists(),
        "nor writes a state"
    );
    let deletes = |live: &Live| {
        live.api_requests()
            .iter()
            .filter(|r| r.method == "DELETE")
            .count()
    };
    assert_eq!(deletes(&live), 0);

    // A plan that would overwrite the list is refused before any request.
    let listed = std::fs::read_to_string(&list).unwrap();
    run(delete(&live)
        .arg("--users")
        .arg(&list)
        .args(["--dry-run", "--plan"])
        .arg(dir.path().join(".").join("leavers.txt")))
    .expect_code(2);
    assert_eq!(std::fs::read_to_string(&list).unwrap(), listed);

    // Without --yes, nothing either.
    run(delete(&live).arg("--users").arg(&list)).expect_code(2);

    let ran = run(delete(&live)
        .arg("--users")
        .arg(&list)
        .args(["--yes", "--json"]));
    ran.expect_code(0);
    let summary = ran.summary();
    assert_eq!(summary["read"], 5, "{summary}");
    assert_eq!(
        (summary["deleted"].as_u64(), summary["skipped"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(summary["not_found"], 2);
    assert!(
        ran.stderr.contains("auth0|no-such-user (not_found)"),
        "{}",
        ran.stderr
    );
    let by_id = |users: &[&User]| -> BTreeMap<String, User> {
        users
            .iter()
            .map(|u| (user_id(u).to_string(), (*u).clone()))
            .collect()
    };
    let (gone, kept) = (by_id(&users[..3]), by_id(&users[3..]));
    assert_same_users(&tenant_users(&live), &kept, "the tenant");
    let state = dir.path().join("leavers.txt.state");
    assert_images_are(&state, &gone, "the before-images");
    #[cfg(unix)]
    for name in ["deleted.ndjson", "ledger.ndjson", "delete.json"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
}

#[test]
fn deleted_users_come_back_with_their_ids_by_importing_the_before_images() {
    let live = Live::generated(60);
    let before = tenant_users(&live);
    // Only database users can be created through the API (a social user signs in again).
    let doomed: Vec<&String> = before
        .iter()
        .filter(|(_, u)| connection_of(u) == Some(DB))
        .map(|(id, _)| id)
        .take(25)
        .collect();
    assert_eq!(doomed.len(), 25);
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("leavers.txt");
    write_lines(
        &list,
        &doomed.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    );
    run(delete(&live)
        .arg("--users")
        .arg(&list)
        .args(["--yes", "--quiet"]))
    .expect_code(0);
    assert_eq!(tenant_users(&live).len(), before.len() - 25);

    let images = dir.path().join("leavers.txt.state/deleted.ndjson");
    let ran = import_file(
        &live,
        &images,
        &["--mode", "create", "--passwords", "random"],
    );
    ran.expect_code(0);
    assert_eq!(ran.summary()["created"], 25, "{}", ran.stderr);
    assert_same_users(
        &comparable(tenant_users(&live)),
        &comparable(before),
        "the tenant after the re-import",
    );
}

#[test]
fn a_token_without_delete_users_is_refused_before_anything_is_deleted() {
    let live = Live::start(SandboxOptions {
        generate: 5,
        scopes: Some(vec!["read:users".into()]),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("leavers.txt");
    write_lines(
        &list,
        &[user_id(&live.tenant.sandbox.users()[0]).to_string()],
    );
    let ran = run(delete(&live).arg("--users").arg(&list).arg("--yes"));
    ran.expect_code(2);
    assert!(ran.stderr.contains("delete:users"), "{}", ran.stderr);
    assert_eq!(live.tenant.sandbox.users().len(), 5);
    assert!(live.api_requests().iter().all(|r| r.method != "DELETE"));
    // A dry run needs read:users only.
    run(delete(&live).arg("--users").arg(&list).arg("--dry-run")).expect_code(0);
}

#[test]
fn a_query_without_a_state_is_refused_before_any_request() {
    let live = Live::generated(3);
    let ran = run(delete(&live).args(["--query", "email:x@y.z", "--yes"]));
    ran.expect_code(2);
    assert!(
        ran.stderr.contains("--query needs --state"),
        "{}",
        ran.stderr
    );
    let ran = run(delete(&live).args(["--yes"]));
    ran.expect_code(2);
    assert!(live.api_requests().is_empty());
}

#[test]
fn the_sandbox_answers_delete_as_the_spec_documents_it() {
    let live = Live::generated(2);
    let id = user_id(&live.tenant.sandbox.users()[0]).to_string();
    let path = format!("/users/{}", auth0_bulk::api::encode_segment(&id));
    let reply = live.block_on(live.tenant.delete(&path));
    // The spec documents 204 with no content (and no schema: there is no body to check).
    let spec: Value = serde_json::from_str(include_str!("oas/users-subset.json")).unwrap();
    let documented = &spec["paths"]["/users/{id}"]["delete"]["responses"];
    assert!(documented["204"].is_object() && documented["204"].get("content").is_none());
    assert_eq!((reply.status, &reply.body), (204, &Value::Null));
    let gone = live.block_on(live.tenant.get(&path));
    assert_eq!(gone.status, 404);
    assert_eq!(gone.body["errorCode"], "inexistent_user");
}

/// A rejected line (an email two users share) ends in the state's rejects file after a `#`
/// line saying why, which `delete --users` reads back once fixed; the summary counts rejects
/// by code; and thousands of unknown users log five lines, not thousands.
#[test]
fn rejected_lines_go_to_a_rejects_file_delete_reads_back_and_repeated_skips_are_logged_five_times()
{
    let dir = tempfile::tempdir().unwrap();
    let twin = |id: &str, connection: &str| {
        serde_json::json!({
            "user_id": format!("auth0|{id}"),
            "email": "twin@example.com",
            "identities": [{"connection": connection, "user_id": id, "provider": "auth0", "isSocial": false}],
        })
        .to_string()
    };
    let seed = dir.path().join("twins.ndjson");
    write_lines(&seed, &[twin("twin-a", DB), twin("twin-b", "legacy-db")]);
    let live = Live::start(SandboxOptions {
        seed: vec![seed],
        generate: 5,
        ..SandboxOptions::default()
    });
    let before = tenant_users(&live);
    let other = before
        .keys()
        .find(|id| !id.contains("twin"))
        .unwrap()
        .clone();
    let mut lines: Vec<String> = (1..=2_000).map(|n| format!("auth0|nobody-{n}")).collect();
    lines.insert(10, "twin@example.com".into());
    lines.push(other.clone());
    let list = dir.path().join("leavers.txt");
    write_lines(&list, &lines);

    let ran = run(delete(&live)
        .arg("--users")
        .arg(&list)
        .args(["--yes", "--json"]));
    ran.expect_code(3);
    let summary = ran.summary();
    assert_eq!(
        (
            summary["read"].as_u64(),
            summary["deleted"].as_u64(),
            summary["not_found"].as_u64(),
            summary["rejected"].as_u64()
        ),
        (Some(2_002), Some(1), Some(2_000), Some(1)),
        "{summary}"
    );
    let ambiguous = &summary["rejects_by_code"]["ambiguous_email"];
    assert_eq!(ambiguous["count"], 1, "{summary}");
    assert_eq!(ambiguous["example"]["line"], 11, "{summary}");
    let skip_lines = ran
        .stderr
        .lines()
        .filter(|l| l.contains("(not_found)"))
        .count();
    assert_eq!(skip_lines, 5, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("not_found: … and 1,995 more like this"),
        "{}",
        ran.stderr
    );

    // The rejects file: the key after why, private, named by the summary.
    let rejects = dir.path().join("leavers.txt.state").join("rejects.txt");
    assert_eq!(summary["rejects"], rejects.display().to_string());
    let text = std::fs::read_to_string(&rejects).unwrap();
    assert!(
        text.starts_with("# line 11: ambiguous_email: twin@example.com is the email of 2 users"),
        "{text}"
    );
    assert_eq!(text.lines().last(), Some("twin@example.com"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&rejects).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let mut kept = before.clone();
    kept.remove(&other);
    assert_same_users(&tenant_users(&live), &kept, "one user deleted");

    // Fixed by hand (the email becomes one of its user_ids), the file is a list again.
    let fixed = dir.path().join("fixed.txt");
    std::fs::write(&fixed, text.replace("twin@example.com\n", "auth0|twin-a\n")).unwrap();
    let again = run(delete(&live)
        .arg("--users")
        .arg(&fixed)
        .args(["--yes", "--json"]));
    again.expect_code(0);
    assert_eq!(
        (
            again.summary()["read"].as_u64(),
            again.summary()["deleted"].as_u64()
        ),
        (Some(1), Some(1))
    );
    kept.remove("auth0|twin-a");
    assert_same_users(&tenant_users(&live), &kept, "the twin listed by id deleted");
}
