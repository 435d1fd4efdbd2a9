//! A safety net (issue 15): every update keeps a before-image first, `auth0-bulk undo STATE`
//! puts the tenant back as it was (exactly once, and after kills), and a dry run's plan shows
//! each change old → new in input order, never a password.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use auth0_bulk::sandbox::SandboxOptions;
use serde_json::{Value, json};

use crate::support::child::{binary, run};
use crate::support::exports::User;
use crate::support::imports::{
    DB, assert_adds_up, assert_same_users, beside, comparable, connection_of, count, generated,
    import, import_file, import_progress, ledger_bytes, read_ndjson, read_text, slow_tenant,
    tenant_users, write_ndjson,
};
use crate::support::kill::{kill_until_done, scaled};
use crate::support::live::Live;

/// `auth0-bulk undo STATE --json --quiet` against `live`.
fn undo(live: &Live, state: &Path) -> Command {
    let mut command = undo_loud(live, state);
    command.arg("--quiet");
    command
}

/// `auth0-bulk undo STATE --json` against `live`, its notices on stderr.
fn undo_loud(live: &Live, state: &Path) -> Command {
    let mut command = binary();
    command
        .arg("undo")
        .arg(state)
        .args(["--domain", live.domain(), "--json"])
        .env("AUTH0_CLIENT_ID", live.client_id())
        .env("AUTH0_CLIENT_SECRET", live.client_secret());
    command
}

/// The tenant as `/__sandbox/users` shows it, by user_id, without `updated_at` (which every
/// write moves, a restoring one too), and with an empty metadata object as no object: a user
/// who had none gets `{}` back (a PATCH cannot remove the object itself; facts: "PATCH"), which
/// the importer, as Auth0's merge, takes for the same.
fn snapshot(live: &Live) -> BTreeMap<String, Value> {
    live.block_on(live.tenant.evidence_users(""))
        .into_iter()
        .map(|mut user| {
            let object = user.as_object_mut().expect("a user object");
            object.shift_remove("updated_at");
            for field in ["user_metadata", "app_metadata"] {
                if object.get(field) == Some(&json!({})) {
                    object.shift_remove(field);
                }
            }
            let id = object["user_id"].as_str().expect("a user_id").to_string();
            (id, user)
        })
        .collect()
}

/// Asserts two snapshots are equal, naming the first users that differ.
fn assert_same(got: &BTreeMap<String, Value>, want: &BTreeMap<String, Value>, what: &str) {
    let differ: Vec<String> = want
        .iter()
        .filter(|(id, user)| got.get(*id) != Some(user))
        .take(3)
        .map(|(id, user)| format!("{id}:\n  want {user}\n  got  {:?}", got.get(id)))
        .collect();
    assert!(differ.is_empty(), "{what}: {}", differ.join("\n"));
    assert_eq!(got.len(), want.len(), "{what}: as many users");
}

/// Database users of `users` with an email no other user has, at most `n`.
fn backfill_targets(users: &[User], n: usize) -> Vec<User> {
    let mut seen = HashSet::new();
    let mut repeated = HashSet::new();
    for user in users {
        if let Some(email) = user.get("email").and_then(Value::as_str)
            && !seen.insert(email.to_lowercase())
        {
            repeated.insert(email.to_lowercase());
        }
    }
    users
        .iter()
        .filter(|user| connection_of(user) == Some(DB))
        .filter(|user| {
            user.get("email")
                .and_then(Value::as_str)
                .is_some_and(|e| !repeated.contains(&e.to_lowercase()))
        })
        .take(n)
        .cloned()
        .collect()
}

/// A backfill CSV: by email, `app_metadata.plan` and a nested `app_metadata.billing.cycle`
/// (flattened columns, as `export --csv-metadata flatten` writes them).
fn write_backfill(path: &Path, users: &[User]) {
    let mut csv = String::from("email,app_metadata.plan,app_metadata.billing.cycle\n");
    for (i, user) in users.iter().enumerate() {
        let email = user["email"].as_str().expect("an email");
        let plan = ["pro", "enterprise", "team"][i % 3];
        let cycle = ["monthly", "yearly"][i % 2];
        csv.push_str(&format!("{email},{plan},{cycle}\n"));
    }
    std::fs::write(path, csv).expect("write the CSV");
}

fn writes(live: &Live) -> (u64, u64, u64) {
    let writes = live.tenant.sandbox.stats().writes;
    (writes.created, writes.updated, writes.deleted)
}

/// Must-show 1: a backfill of 5,000 users by email, then `undo`: the tenant is as it was
/// before the backfill, and a second undo writes nothing.
#[test]
fn undo_after_a_backfill_by_email_leaves_the_tenant_as_it_was() {
    let users = scaled(5_000, 5_000);
    let live = Live::generated(users * 3 / 2);
    let targets = backfill_targets(&live.tenant.sandbox.users(), users);
    assert_eq!(
        targets.len(),
        users,
        "enough database users with their own email"
    );
    let before = snapshot(&live);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("plans.csv");
    write_backfill(&input, &targets);

    let ran = import_file(&live, &input, &["--mode", "update", "--match", "email"]);
    ran.expect_code(0);
    let summary = ran.summary();
    assert_eq!(count(&summary, "updated"), users as u64, "{summary}");
    assert_ne!(snapshot(&live), before, "the backfill changed the tenant");

    let state = beside(&input, ".state");
    let images = read_ndjson(&state.join("before-images.ndjson"));
    assert_eq!(images.len(), users, "one before-image per update");
    let one = &images[0];
    assert!(one["_before"]["record"].is_u64() && one["user_id"].is_string());
    let keys: Vec<&String> = one["app_metadata"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["plan", "billing"],
        "exactly the keys the backfill set"
    );

    let undone = run(&mut undo(&live, &state));
    undone.expect_code(0);
    let summary = undone.summary();
    assert_eq!(summary["command"], "undo");
    assert_eq!(count(&summary, "updated"), users as u64, "{summary}");
    assert_adds_up(&summary);
    assert_same(&snapshot(&live), &before, "after undo");

    // Exactly once: a second undo finds every user as the first left it.
    let writes_before = writes(&live);
    let again = run(&mut undo(&live, &state));
    again.expect_code(0);
    let summary = again.summary();
    assert_eq!(count(&summary, "updated"), 0, "{summary}");
    assert_eq!(count(&summary, "unchanged"), users as u64, "{summary}");
    assert_eq!(writes(&live), writes_before, "no write request at all");
    assert_same(&snapshot(&live), &before, "after a second undo");
}

/// A user the import changed twice has two before-images; undo restores the earliest, the
/// user's value from before the import.
#[test]
fn undo_restores_a_user_changed_twice_to_its_value_before_the_first_change() {
    let live = Live::generated(200);
    let targets = backfill_targets(&live.tenant.sandbox.users(), 3);
    let before = snapshot(&live);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("twice.ndjson");
    let email = |i: usize| targets[i]["email"].clone();
    let records = [
        json!({"email": email(0), "app_metadata": {"plan": "pro"}, "name": "First"}),
        json!({"email": email(1), "user_metadata": {"theme": "dark"}}),
        json!({"email": email(0), "app_metadata": {"plan": "gold", "seats": 5}}),
        json!({"email": email(2), "app_metadata": {}}),
    ];
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&input, text).unwrap();
    import_file(&live, &input, &["--mode", "update", "--match", "email"]).expect_code(0);
    let state = beside(&input, ".state");
    assert_eq!(read_ndjson(&state.join("before-images.ndjson")).len(), 4);

    run(&mut undo(&live, &state)).expect_code(0);
    assert_same(&snapshot(&live), &before, "after undo");
}

/// Killed during the backfill and resumed until done: no record has two before-images (the
/// second would hold the new values), and undo is still exact.
#[test]
fn a_backfill_killed_and_resumed_keeps_one_before_image_per_record_and_undo_is_exact() {
    let users = scaled(1_200, 5_000);
    let live = slow_tenant(2, &generated(users * 3 / 2, 7));
    let targets = backfill_targets(&live.tenant.sandbox.users(), users);
    let before = snapshot(&live);

    let clean_dir = tempfile::tempdir().unwrap();
    let clean_input = clean_dir.path().join("plans.csv");
    write_backfill(&clean_input, &targets);
    let args = ["--mode", "update", "--match", "email"];
    // A clean run (then undone) measures the run and the ledger's size.
    let clean = import_file(&live, &clean_input, &args);
    clean.expect_code(0);
    let clean_ledger = ledger_bytes(&beside(&clean_input, ".state"));
    run(&mut undo(&live, &beside(&clean_input, ".state"))).expect_code(0);
    assert_same(&snapshot(&live), &before, "after the clean run's undo");

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("plans.csv");
    write_backfill(&input, &targets);
    let state = beside(&input, ".state");
    let images = state.join("before-images.ndjson");
    let one_each = || {
        let Ok(text) = std::fs::read_to_string(&images) else {
            return;
        };
        let mut records = HashSet::new();
        // A torn last line is the importer's to drop.
        for line in text.lines().filter(|l| l.ends_with('}')) {
            let image: Value = serde_json::from_str(line).expect("an image");
            let record = image["_before"]["record"].as_u64().expect("a record");
            assert!(
                records.insert(record),
                "record {record} has two before-images"
            );
        }
    };
    let killed = kill_until_done(
        0x5eed_0015,
        scaled(4, 30),
        clean.elapsed,
        || {
            let mut command = import(&live);
            command.arg("--input").arg(&input).args(args).arg("--quiet");
            command
        },
        || import_progress(&state, clean_ledger),
        |_| one_each(),
    );
    eprintln!("backfill: {users} users: {}", killed.describe());
    one_each();
    assert_eq!(
        read_ndjson(&images).len(),
        users,
        "one image per updated user"
    );

    run(&mut undo(&live, &state)).expect_code(0);
    assert_same(
        &snapshot(&live),
        &before,
        "after undo of the killed backfill",
    );
}

/// A dry run's plan, on stderr and in `--plan`, follows the input's order whatever order
/// records finish in, shows each change old → new (a deletion as a deletion), a create's email
/// and connection, a rejection's code, and never a password.
#[test]
fn a_dry_run_plan_shows_old_to_new_in_input_order_and_never_a_password() {
    const PASSWORD: &str = "Corr3ct-Horse-Battery!";
    let live = Live::start(SandboxOptions {
        generate: 300,
        latency: Duration::from_millis(3),
        latency_spike_rate: 0.3,
        latency_spike: Duration::from_millis(40),
        ..Default::default()
    });
    let targets = backfill_targets(&live.tenant.sandbox.users(), 60);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mixed.ndjson");
    let mut records = Vec::new();
    for (i, user) in targets.iter().enumerate() {
        let record = match i % 4 {
            0 => json!({"email": user["email"], "app_metadata": {"plan": "pro"},
                        "user_metadata": {"theme": null, "lang": "fr"}, "password": PASSWORD}),
            1 => json!({"email": user["email"], "name": "Renamed"}),
            // Unchanged: its own name.
            2 => json!({"email": user["email"], "name": user["name"]}),
            _ => json!({"email": format!("new{i}@example.com"), "connection": DB,
                        "user_id": format!("new{i}"), "password": PASSWORD}),
        };
        records.push(record);
    }
    // One rejection keeps its code.
    records.push(json!({"email": "x@example.com", "app_metadata": {"a.b": 1}}));
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&input, text).unwrap();
    let plan = dir.path().join("plan.ndjson");
    let ran = run(import(&live)
        .arg("--input")
        .arg(&input)
        .args(["--mode", "upsert", "--match", "email", "--connection", DB])
        .args([
            "--password-field",
            "password",
            "--dry-run",
            "--concurrency",
            "8",
        ])
        .arg("--plan")
        .arg(&plan)
        .arg("--json"));
    // Exit 3: a record was rejected.
    ran.expect_code(3);
    assert_eq!(writes(&live), (0, 0, 0), "a dry run writes nothing");

    let lines = read_ndjson(&plan);
    assert_eq!(lines.len(), records.len());
    let numbers: Vec<u64> = lines.iter().map(|l| l["line"].as_u64().unwrap()).collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "input order: {numbers:?}"
    );
    let stderr_lines: Vec<u64> = ran
        .stderr
        .lines()
        .filter_map(|l| l.split("Line ").nth(1)?.split(':').next()?.parse().ok())
        .collect();
    assert_eq!(stderr_lines, numbers, "stderr in input order too");

    let first = &lines[0];
    assert_eq!(first["action"], "would_update", "{first:?}");
    let user = &targets[0];
    let old_plan = user["app_metadata"].get("plan").cloned();
    let changes = first["changes"].as_array().unwrap();
    let plan_change = changes
        .iter()
        .find(|c| c["path"] == "app_metadata.plan")
        .expect("the plan changes");
    assert_eq!(plan_change["new"], "pro");
    assert_eq!(plan_change.get("old").cloned(), old_plan);
    if let Some(theme) = user["user_metadata"].get("theme") {
        let deleted = changes
            .iter()
            .find(|c| c["path"] == "user_metadata.theme")
            .expect("the theme is deleted");
        assert_eq!(
            (&deleted["old"], &deleted["deleted"]),
            (theme, &json!(true))
        );
    }
    assert_eq!(lines[1]["changes"][0]["path"], "name");
    assert_eq!(lines[1]["changes"][0]["new"], "Renamed");
    assert_eq!(lines[2]["action"], "unchanged");
    assert_eq!(lines[3]["action"], "would_create");
    assert_eq!(lines[3]["user_id"], "auth0|new3");
    assert_eq!(lines[3]["email"], "new3@example.com");
    assert_eq!(lines[3]["connection"], DB);
    let last = lines.last().unwrap();
    assert_eq!(last["reason"]["code"], "invalid_metadata_key");
    let line_one = ran
        .stderr
        .lines()
        .find(|l| l.contains("Line 1:"))
        .expect("line 1 on stderr");
    assert!(
        line_one.contains(r#"app_metadata.plan"#) && line_one.contains(r#"→ "pro""#),
        "{line_one}"
    );

    for (what, text) in [("stderr", ran.stderr.clone()), ("plan", read_text(&plan))] {
        assert!(!text.contains(PASSWORD), "{what} shows a password");
    }
}

/// `--engine job --mode upsert` patches the users it finds one at a time: each patch keeps its
/// before-image first, as on the per-user path, and undo restores them.
#[test]
fn job_engine_upsert_patches_keep_before_images_and_undo_restores_them() {
    let live = Live::generated(200);
    let targets = backfill_targets(&live.tenant.sandbox.users(), 12);
    let before = snapshot(&live);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("upsert.ndjson");
    let text: String = targets
        .iter()
        .map(|user| {
            let record = json!({"email": user["email"], "app_metadata": {"plan": "job"}});
            format!("{record}\n")
        })
        .collect();
    std::fs::write(&input, text).unwrap();
    let args = ["--engine", "job", "--mode", "upsert", "--match", "email"];
    let ran = import_file(&live, &input, &[&args[..], &["--connection", DB]].concat());
    ran.expect_code(0);
    assert_eq!(count(&ran.summary(), "updated"), 12);
    let state = beside(&input, ".state");
    assert_eq!(read_ndjson(&state.join("before-images.ndjson")).len(), 12);

    run(&mut undo(&live, &state)).expect_code(0);
    assert_same(&snapshot(&live), &before, "after undo");
}

/// The ids of the users an import created, from the `created` entries of its ledger.
fn created_ids(state: &Path) -> HashSet<String> {
    read_ndjson(&state.join("ledger.ndjson"))
        .into_iter()
        .filter(|entry| entry.get("outcome") == Some(&json!("created")))
        .map(|entry| entry["user_id"].as_str().expect("a user_id").to_string())
        .collect()
}

/// The ids in a deletion's before-images (whole lines), asserting each user has one image.
fn imaged_once(images: &Path) -> HashSet<String> {
    let text = std::fs::read_to_string(images).unwrap_or_default();
    let mut ids = HashSet::new();
    // A torn last line is the engine's to drop.
    for line in text.lines().filter(|l| l.ends_with('}')) {
        let image: Value = serde_json::from_str(line).expect("an image");
        let id = image["user_id"].as_str().expect("a user_id").to_string();
        assert!(ids.insert(id.clone()), "{id} has two before-images");
    }
    ids
}

/// Must-show 1, creates: a create import, then `undo`: the users it created are deleted and
/// the tenant is as it was before the import; a dry run only lists them, and a second undo
/// deletes nobody (they are not found: counted as skipped).
#[test]
fn undo_after_a_create_import_deletes_the_users_it_created_exactly_once() {
    let n = scaled(2_000, 5_000);
    let live = Live::generated(300);
    let before = snapshot(&live);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("new.ndjson");
    write_ndjson(&input, &generated(n, 15));
    let ran = import_file(
        &live,
        &input,
        &["--mode", "create", "--passwords", "random"],
    );
    ran.expect_code(0);
    assert_eq!(count(&ran.summary(), "created"), n as u64);
    let state = beside(&input, ".state");
    let created = created_ids(&state);
    assert_eq!(created.len(), n);

    // The dry run names who would be deleted, in the log and in its plan, and writes nothing.
    let writes_before = writes(&live);
    let plan = dir.path().join("undo-plan.ndjson");
    let dry = run(undo_loud(&live, &state)
        .arg("--dry-run")
        .arg("--plan")
        .arg(&plan));
    dry.expect_code(0);
    let planned: HashSet<String> = read_ndjson(&plan)
        .iter()
        .map(|line| {
            assert_eq!(line["action"], "would_delete", "{line:?}");
            line["user_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(planned, created, "the plan names each created user once");
    assert_eq!(read_ndjson(&plan).len(), n);
    let summary = dry.summary();
    assert_eq!(summary["undoes"], "import");
    assert_eq!(summary["creates"]["deleted"], n as u64, "{summary}");
    let first = created.iter().next().unwrap();
    assert!(
        dry.stderr.contains(&format!("would delete {first}")),
        "{}",
        dry.stderr
    );
    assert_eq!(writes(&live), writes_before, "a dry run writes nothing");
    assert!(!state.join("undo/creates").exists(), "nor keeps a state");

    let undone = run(&mut undo(&live, &state));
    undone.expect_code(0);
    let summary = undone.summary();
    assert_adds_up(&summary);
    let creates = &summary["creates"];
    assert_eq!(
        (creates["read"].as_u64(), creates["deleted"].as_u64()),
        (Some(n as u64), Some(n as u64)),
        "{summary}"
    );
    assert_same(&snapshot(&live), &before, "after undo");
    let images = state.join("undo/creates/deleted.ndjson");
    assert_eq!(
        imaged_once(&images),
        created,
        "an image of each deleted user"
    );

    // Exactly once: nobody is deleted or written a second time.
    let writes_before = writes(&live);
    let again = run(&mut undo(&live, &state));
    again.expect_code(0);
    assert_eq!(again.stderr, "", "--quiet: nothing but errors");
    let creates = &again.summary()["creates"];
    assert_eq!(
        (creates["deleted"].as_u64(), creates["not_found"].as_u64()),
        (Some(0), Some(n as u64)),
        "{creates}"
    );
    assert_eq!(writes(&live), writes_before, "no write request at all");
    assert_eq!(imaged_once(&images), created, "no second image");
    assert_same(&snapshot(&live), &before, "after a second undo");
}

/// Must-show 1, delete: `delete --users ... --yes`, then `undo` of its state: the users are
/// back with their user_ids (and all they had but what re-creation must change); a second
/// undo creates nobody.
#[test]
fn undo_of_a_delete_brings_the_users_back_with_their_ids_exactly_once() {
    let n = scaled(1_000, 3_000);
    let live = Live::generated(n * 3);
    let before = tenant_users(&live);
    // Only database users can be created through the API (a social user signs in again).
    let doomed: Vec<String> = before
        .iter()
        .filter(|(_, user)| connection_of(user) == Some(DB))
        .map(|(id, _)| id.clone())
        .take(n)
        .collect();
    assert_eq!(doomed.len(), n, "enough database users");
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("leavers.txt");
    std::fs::write(&list, doomed.join("\n") + "\n").unwrap();
    run(binary()
        .arg("delete")
        .args(["--domain", live.domain(), "--yes", "--quiet"])
        .arg("--users")
        .arg(&list)
        .env("AUTH0_CLIENT_ID", live.client_id())
        .env("AUTH0_CLIENT_SECRET", live.client_secret()))
    .expect_code(0);
    assert_eq!(tenant_users(&live).len(), before.len() - n);

    let state = beside(&list, ".state");
    let tickets = dir.path().join("tickets.ndjson");
    let undone = run(undo_loud(&live, &state).arg("--tickets").arg(&tickets));
    undone.expect_code(0);
    let summary = undone.summary();
    assert_eq!(summary["undoes"], "delete");
    assert_eq!(count(&summary, "created"), n as u64, "{summary}");
    assert_adds_up(&summary);
    assert!(
        undone.stderr.contains("random passwords"),
        "the summary says passwords do not come back: {}",
        undone.stderr
    );
    let ticketed: HashSet<String> = read_ndjson(&tickets)
        .iter()
        .map(|line| line["user_id"].as_str().expect("a user_id").to_string())
        .collect();
    assert_eq!(ticketed, doomed.iter().cloned().collect(), "a ticket each");
    assert_same_users(
        &comparable(tenant_users(&live)),
        &comparable(before.clone()),
        "the tenant after the undo",
    );

    let writes_before = writes(&live);
    let again = run(&mut undo(&live, &state));
    again.expect_code(0);
    let summary = again.summary();
    assert_eq!(count(&summary, "created"), 0, "{summary}");
    assert_eq!(count(&summary, "skipped"), n as u64, "{summary}");
    assert_eq!(writes(&live).0, writes_before.0, "nobody created twice");
    assert_same_users(
        &comparable(tenant_users(&live)),
        &comparable(before),
        "the tenant after a second undo",
    );
}

/// An undo killed while it deletes the users an import created, and run again until done:
/// each user is imaged once and deleted once, and the tenant is as it was before the import.
#[test]
fn an_undo_of_creates_killed_and_resumed_deletes_each_user_once() {
    let n = scaled(600, 3_000);
    let live = slow_tenant(2, &generated(200, 3));
    let before = snapshot(&live);
    let dir = tempfile::tempdir().unwrap();
    let args = ["--mode", "create", "--passwords", "random"];
    // A clean import and undo measure how long an undo takes.
    let clean_input = dir.path().join("clean.ndjson");
    write_ndjson(&clean_input, &generated(n, 16));
    import_file(&live, &clean_input, &args).expect_code(0);
    let clean = run(&mut undo(&live, &beside(&clean_input, ".state")));
    clean.expect_code(0);
    assert_same(&snapshot(&live), &before, "after the clean undo");

    let input = dir.path().join("new.ndjson");
    write_ndjson(&input, &generated(n, 16));
    import_file(&live, &input, &args).expect_code(0);
    let state = beside(&input, ".state");
    let created = created_ids(&state);
    let creates = state.join("undo/creates");
    let images = creates.join("deleted.ndjson");
    let progress = || {
        let completed = std::fs::read_to_string(creates.join("delete.json"))
            .is_ok_and(|text| text.contains("\"completed\":true"));
        if completed {
            return 1.0;
        }
        let users = live.tenant.sandbox.users();
        let left = users
            .iter()
            .filter(|user| created.contains(user["user_id"].as_str().unwrap_or_default()))
            .count();
        ((n - left) as f64 / n as f64).min(0.999)
    };
    let killed = kill_until_done(
        0x5eed_0016,
        scaled(4, 30),
        clean.elapsed,
        || undo(&live, &state),
        progress,
        |_| {
            imaged_once(&images);
        },
    );
    eprintln!("undo of creates: {n} users: {}", killed.describe());
    assert_eq!(imaged_once(&images), created, "one image per deleted user");
    assert_same(&snapshot(&live), &before, "after the killed undo");
}

/// A token that may not delete users is told before the undo of an import that created users
/// restores or deletes anything (exit 2).
#[test]
fn an_undo_that_must_delete_users_checks_the_scopes_first() {
    let live = Live::start(SandboxOptions {
        scopes: Some(vec![
            "read:users".into(),
            "create:users".into(),
            "update:users".into(),
        ]),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("new.ndjson");
    write_ndjson(&input, &generated(5, 17));
    import_file(
        &live,
        &input,
        &["--mode", "create", "--passwords", "random"],
    )
    .expect_code(0);
    let writes_before = writes(&live);
    let ran = run(&mut undo(&live, &beside(&input, ".state")));
    ran.expect_code(2);
    assert!(ran.stderr.contains("delete:users"), "{}", ran.stderr);
    assert_eq!(writes(&live), writes_before, "nothing written");
    // A dry run needs read:users only.
    run(undo(&live, &beside(&input, ".state")).arg("--dry-run")).expect_code(0);
    // --tickets is for a delete's undo: an import's creates nobody.
    let tickets = dir.path().join("tickets.ndjson");
    let ran = run(undo(&live, &beside(&input, ".state"))
        .arg("--tickets")
        .arg(&tickets));
    ran.expect_code(2);
    assert!(ran.stderr.contains("--tickets"), "{}", ran.stderr);
    assert_eq!(writes(&live), writes_before, "nothing written");
}
