//! `export --engine job` end to end: the real binary against an in-process sandbox whose
//! bulk-export jobs run at a pace the tests set. The output must hold the same users as an API
//! export of the same tenant (compared user by user, in every format), the users changed while
//! the job ran with their new values, every user once after any number of kills, and a link
//! that expired must be refreshed. The flags the job cannot honour are refused before any
//! request.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use auth0_bulk::sandbox::SandboxOptions;
use serde_json::{Value, json};

use crate::support::child::{Running, run, wait_until};
use crate::support::exports::{
    assert_consistent, checkpoint, clean_export, export, gunzip, read, state_of,
};
use crate::support::kill::{kill_until_done, scaled};
use crate::support::live::{Gate, Live};
use crate::support::tenant::encode;

/// A tenant of `users` generated users whose export jobs read `job_rate` users a second.
fn tenant(users: usize, job_rate: f64) -> Live {
    Live::start(SandboxOptions {
        generate: users,
        job_rate,
        ..Default::default()
    })
}

/// The users an export holds, by user_id: each NDJSON line parsed, or each CSV row as its
/// cells by column; a `.gz` is gunzipped first. A user_id seen twice fails the test.
fn users_of(path: &Path) -> BTreeMap<String, Value> {
    let name = path.to_string_lossy().to_string();
    let mut bytes = read(path);
    if name.ends_with(".gz") {
        bytes = gunzip(&bytes);
    }
    let base = name.trim_end_matches(".gz");
    let mut users = BTreeMap::new();
    let mut keep = |id: String, user: Value| {
        if let Some(before) = users.insert(id.clone(), user) {
            panic!("{name}: user {id} is in the output twice (first: {before})");
        }
    };
    if base.ends_with(".csv") {
        let mut reader = csv::Reader::from_reader(&bytes[..]);
        let header: Vec<String> = reader
            .headers()
            .expect("a CSV header")
            .iter()
            .map(str::to_string)
            .collect();
        for row in reader.records() {
            let row = row.expect("a CSV row");
            let cells: serde_json::Map<String, Value> = header
                .iter()
                .zip(row.iter())
                .map(|(column, cell)| (column.clone(), Value::String(cell.to_string())))
                .collect();
            let id = cells["user_id"]
                .as_str()
                .expect("a user_id cell")
                .to_string();
            keep(id, Value::Object(cells));
        }
    } else {
        for line in String::from_utf8(bytes).expect("UTF-8").lines() {
            let user: Value = serde_json::from_str(line).expect("a JSON user");
            let id = user["user_id"].as_str().expect("a user_id").to_string();
            keep(id, user);
        }
    }
    users
}

/// Asserts two exports hold the same users with the same values, naming the first that
/// differs.
fn assert_same_users(what: &str, job: &BTreeMap<String, Value>, api: &BTreeMap<String, Value>) {
    let missing: Vec<&String> = api.keys().filter(|id| !job.contains_key(*id)).collect();
    let extra: Vec<&String> = job.keys().filter(|id| !api.contains_key(*id)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} users missing from the job export (first {:?}), {} not in the API export \
         (first {:?})",
        missing.len(),
        missing.first(),
        extra.len(),
        extra.first()
    );
    for (id, user) in api {
        assert_eq!(&job[id], user, "{what}: user {id} differs");
    }
}

/// `export --engine job --output OUTPUT ARGS --json`, to run.
fn job_command(live: &Live, output: &Path, args: &[&str]) -> Command {
    let mut command = export(live);
    command
        .args(["--engine", "job", "--output"])
        .arg(output)
        .args(args)
        .arg("--json");
    command
}

/// [`job_command`] into `DIR/NAME`, run to its end with exit 0: its summary.
fn job_export(live: &Live, dir: &Path, name: &str, args: &[&str]) -> Value {
    let ran = run(&mut job_command(live, &dir.join(name), args));
    ran.expect_code(0);
    ran.summary()
}

/// The requests of `route` (`POST /api/v2/jobs/users-exports`, ...) the tenant answered.
fn requests(live: &Live, method: &str, prefix: &str) -> Vec<u16> {
    live.tenant
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method == method && r.path.starts_with(prefix))
        .map(|r| r.status)
        .collect()
}

#[test]
fn a_job_export_holds_the_same_users_as_an_api_export_in_every_format() {
    let users = 2_500;
    let live = tenant(users, 1_000_000.0);
    let formats: [(&str, &[&str]); 5] = [
        ("users.ndjson", &[]),
        ("users.ndjson.gz", &[]),
        ("users.csv", &[]),
        ("users.csv", &["--csv-metadata", "flatten"]),
        ("users.csv.gz", &["--csv-metadata", "flatten"]),
    ];
    for (name, args) in formats {
        let what = format!("{name} {}", args.join(" "));
        let api_dir = tempfile::tempdir().unwrap();
        clean_export(&live, api_dir.path(), name, args);
        let job_dir = tempfile::tempdir().unwrap();
        let summary = job_export(&live, job_dir.path(), name, args);
        assert_eq!(summary["users"], users, "{what}: {summary}");
        assert!(summary["job"]["id"].is_string(), "{what}: {summary}");
        let api = users_of(&api_dir.path().join(name));
        let job = users_of(&job_dir.path().join(name));
        assert_eq!(api.len(), users, "{what}");
        assert_same_users(&what, &job, &api);
        let state = state_of(&job_dir.path().join(name));
        assert!(
            !state.join("caught-up.ndjson").exists(),
            "{what}: the catch-up's ids are removed once the export is complete"
        );
    }
    assert_eq!(
        requests(&live, "POST", "/api/v2/jobs/users-exports").len(),
        formats.len(),
        "one job per export"
    );
}

#[test]
fn a_job_export_of_one_connection_names_it_by_id_and_holds_its_users_only() {
    let live = tenant(1_500, 1_000_000.0);
    let args = ["--connection", "legacy-db"];
    let api_dir = tempfile::tempdir().unwrap();
    clean_export(&live, api_dir.path(), "legacy.ndjson", &args);
    let job_dir = tempfile::tempdir().unwrap();
    job_export(&live, job_dir.path(), "legacy.ndjson", &args);
    let api = users_of(&api_dir.path().join("legacy.ndjson"));
    assert!(!api.is_empty() && api.len() < 1_500);
    assert_same_users(
        "--connection legacy-db",
        &users_of(&job_dir.path().join("legacy.ndjson")),
        &api,
    );
    let created = live
        .tenant
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v2/jobs/users-exports")
        .count();
    assert_eq!(created, 1);
}

#[test]
fn users_changed_while_the_job_runs_are_exported_with_their_new_values() {
    // 500 users a second: the job reads for a few seconds after it took its snapshot.
    let live = Live::start(SandboxOptions {
        generate: 2_000,
        job_rate: 500.0,
        hold_jobs: true,
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson");
    let state = state_of(&output);
    let running = Running::spawn(&mut job_command(&live, &output, &[]));
    wait_until(Duration::from_secs(60), "the job in the checkpoint", || {
        checkpoint(&state).is_some_and(|c| c["job"]["id"].is_string())
    });
    let id = checkpoint(&state).unwrap()["job"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    live.tenant.sandbox.release_jobs();
    // Once processing, the job has taken its users as they are now.
    wait_until(Duration::from_secs(60), "the job to process", || {
        live.block_on(live.tenant.get(&format!("/jobs/{id}"))).body["status"] == "processing"
    });
    let changed = live.tenant.sandbox.users()[7]["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    let patched = live.block_on(live.tenant.patch(
        &format!("/users/{}", encode(&changed)),
        &json!({"given_name": "Caught", "user_metadata": {"theme": "changed-while-the-job-ran"}}),
    ));
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    let created = live.block_on(live.tenant.post(
        "/users",
        &json!({"connection": "Username-Password-Authentication", "email": "new.while.job@example.org", "password": "Str0ng-enough!"}),
    ));
    assert_eq!(created.status, 201, "{:?}", created.body);
    let status = live.block_on(live.tenant.get(&format!("/jobs/{id}"))).body["status"].clone();
    assert_eq!(
        status, "processing",
        "the changes came after the job's snapshot"
    );

    let ran = running.wait();
    ran.expect_code(0);
    let summary = ran.summary();
    assert_eq!(summary["users"], 2_001, "{summary}");
    assert_eq!(summary["job"]["caught_up"], 2, "{summary}");
    assert_eq!(
        summary["job"]["replaced"], 1,
        "the patched user's old copy: {summary}"
    );
    let job = users_of(&output);
    let user = &job[&changed];
    assert_eq!(user["given_name"], "Caught");
    assert_eq!(user["user_metadata"]["theme"], "changed-while-the-job-ran");
    assert_eq!(
        user,
        &Value::Object(patched.body.as_object().unwrap().clone())
    );
    let new_id = created.body["user_id"].as_str().unwrap();
    assert!(
        job.contains_key(new_id),
        "the user created while the job ran"
    );
    // And so the output is what an API export of the tenant holds now.
    let api_dir = tempfile::tempdir().unwrap();
    clean_export(&live, api_dir.path(), "users.ndjson", &[]);
    assert_same_users(
        "after the catch-up",
        &job,
        &users_of(&api_dir.path().join("users.ndjson")),
    );
    assert_eq!(
        requests(&live, "POST", "/api/v2/jobs/users-exports").len(),
        1
    );
}

#[test]
fn a_job_export_killed_while_its_job_runs_polls_that_job_when_run_again() {
    let live = Live::start(SandboxOptions {
        generate: 1_500,
        job_rate: 1_000_000.0,
        hold_jobs: true,
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson.gz");
    let state = state_of(&output);
    let command = || job_command(&live, &output, &[]);
    // Twice killed while the job is held, between two polls.
    for _ in 0..2 {
        let running = Running::spawn(&mut command());
        wait_until(Duration::from_secs(60), "the job in the checkpoint", || {
            checkpoint(&state).is_some_and(|c| c["job"]["stage"] == "running")
        });
        std::thread::sleep(Duration::from_millis(300));
        running.kill();
    }
    live.tenant.sandbox.release_jobs();
    let ran = run(&mut command());
    ran.expect_code(0);
    assert_eq!(ran.summary()["resumed"], true);
    assert_eq!(
        requests(&live, "POST", "/api/v2/jobs/users-exports").len(),
        1,
        "one job, polled by every run"
    );
    let api_dir = tempfile::tempdir().unwrap();
    clean_export(&live, api_dir.path(), "users.ndjson.gz", &[]);
    assert_same_users(
        "killed while the job ran",
        &users_of(&output),
        &users_of(&api_dir.path().join("users.ndjson.gz")),
    );
}

#[test]
fn a_job_export_killed_at_seeded_points_ends_as_a_clean_run_with_every_user_once() {
    let users = scaled(4_000, 30_000);
    // The job takes about a second; the file is read in batches of 500 users, each a gzip
    // member at the slowest level and a checkpoint, so kills land in every stage.
    let live = tenant(users, 4_000.0);
    let name = "users.csv.gz";
    let args = ["--gzip-level", "9"];
    let clean_dir = tempfile::tempdir().unwrap();
    let (clean, clean_run) = clean_export(
        &live,
        clean_dir.path(),
        name,
        &["--engine", "job", "--gzip-level", "9"],
    );

    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join(name);
    let state = state_of(&output);
    let stage = || checkpoint(&state).map(|c| (c["job"]["stage"].clone(), c));
    let progress = || match stage() {
        None => 0.0,
        Some((_, c)) if c["completed"] == true => 1.0,
        Some((stage, c)) => match stage.as_str() {
            Some("running") => 0.02,
            Some("catching_up") => 0.05,
            Some("reading") => {
                let lines = c["job"]["lines"].as_u64().unwrap_or(0) as f64;
                0.1 + 0.85 * lines / users as f64
            }
            Some("read") => 0.99,
            _ => 0.01,
        },
    };
    let mut stages = Vec::new();
    let jobs_before = requests(&live, "POST", "/api/v2/jobs/users-exports").len();
    let mut no_job_yet = 0;
    let killed = kill_until_done(
        0x10b_0001,
        scaled(6, 40),
        clean_run.elapsed,
        || job_command(&live, &output, &args),
        progress,
        |_| {
            assert_consistent(&output, &clean);
            let now = stage();
            no_job_yet += usize::from(now.as_ref().is_none_or(|(s, _)| s.is_null()));
            stages.push(now.map_or("none".into(), |(s, c)| {
                format!("{s} (lines {})", c["job"]["lines"])
            }));
        },
    );
    eprintln!(
        "{name}: {users} users, clean run {:.2}s: {}; stages at the kills: {stages:?}",
        clean_run.elapsed.as_secs_f64(),
        killed.describe()
    );
    assert!(killed.mid_run >= 2, "kills landed in running exports");
    assert!(
        stages.iter().any(|s| s.starts_with("\"reading\"")),
        "a kill landed while the file was read: {stages:?}"
    );
    assert!(
        read(&output) == clean,
        "after the kills the file differs from a clean run's"
    );
    assert_eq!(users_of(&output).len(), users, "every user once");
    // A run makes a job only when the checkpoint holds none: killed before it saved one, a job
    // may have been made for nothing; after, it is polled, never made again.
    let jobs = requests(&live, "POST", "/api/v2/jobs/users-exports").len() - jobs_before;
    assert!(
        jobs <= 1 + no_job_yet,
        "{jobs} jobs made; {no_job_yet} kills came before a job was saved"
    );
}

#[test]
fn a_job_export_killed_in_a_long_catch_up_ends_as_a_clean_run_with_every_user_once() {
    let users = scaled(4_000, 20_000);
    let live = tenant(users, 1_000_000.0);
    // Every other user changed "lately" (a stamp ahead of the clock, so it stays past the
    // catch-up's mark however long the test runs): the catch-up writes half the tenant, and
    // the job's copies of those users are left out.
    let lately = chrono::Utc::now() + chrono::Duration::minutes(30);
    let lately = lately.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let changed: Vec<_> = live
        .tenant
        .sandbox
        .users()
        .into_iter()
        .step_by(2)
        .map(|mut user| {
            user.insert("updated_at".into(), Value::String(lately.clone()));
            user
        })
        .collect();
    live.tenant.sandbox.insert_users(changed);
    let name = "users.ndjson";
    let clean_dir = tempfile::tempdir().unwrap();
    let (clean, clean_run) = clean_export(&live, clean_dir.path(), name, &["--engine", "job"]);
    let says = format!("{} users changed while it ran", users / 2);
    assert!(clean_run.stderr.contains(&says), "{}", clean_run.stderr);

    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join(name);
    let state = state_of(&output);
    let command = || job_command(&live, &output, &[]);
    let stage = || checkpoint(&state).map(|c| (c["job"]["stage"].clone(), c["users"].clone()));
    let jobs_before = requests(&live, "POST", "/api/v2/jobs/users-exports").len();
    // Killed while the catch-up reads its first pages, then once it has written some of them.
    let running = Running::spawn(&mut command());
    wait_until(Duration::from_secs(120), "the catch-up", || {
        stage().is_some_and(|(s, _)| s == "catching_up")
    });
    std::thread::sleep(Duration::from_millis(100));
    running.kill();
    assert_consistent(&output, &clean);
    let running = Running::spawn(&mut command());
    wait_until(
        Duration::from_secs(120),
        "a part of the catch-up written",
        || stage().is_some_and(|(s, users)| s != "catching_up" || users.as_u64() > Some(0)),
    );
    let (at, written) = stage().unwrap();
    running.kill();
    assert_consistent(&output, &clean);
    eprintln!("second kill: stage {at}, {written} users written");
    let ran = run(&mut command());
    ran.expect_code(0);
    assert_eq!(ran.summary()["job"]["caught_up"], users / 2);
    assert_eq!(ran.summary()["job"]["replaced"], users / 2);
    assert_eq!(
        requests(&live, "POST", "/api/v2/jobs/users-exports").len(),
        jobs_before + 1,
        "the resumed runs polled the first run's job"
    );
    assert!(
        read(&output) == clean,
        "after the kills the file differs from a clean run's"
    );
    let api_dir = tempfile::tempdir().unwrap();
    clean_export(&live, api_dir.path(), name, &[]);
    assert_same_users(
        "killed in the catch-up",
        &users_of(&output),
        &users_of(&api_dir.path().join(name)),
    );
}

#[test]
fn an_expired_link_is_refreshed_not_fatal() {
    // Each API request takes 60 ms, and a link lives 50 ms: the link of the poll that saw the
    // job complete has expired by the time the catch-up pass is done with the API.
    let live = Live::start(SandboxOptions {
        generate: 1_000,
        job_rate: 1_000_000.0,
        latency: Duration::from_millis(60),
        export_link_ttl: Duration::from_millis(50),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let summary = job_export(&live, dir.path(), "users.ndjson", &[]);
    assert_eq!(summary["users"], 1_000);
    let downloads = requests(&live, "GET", "/user-exports/");
    assert_eq!(downloads.first(), Some(&403), "{downloads:?}");
    assert_eq!(downloads.last(), Some(&200), "{downloads:?}");
    let api_dir = tempfile::tempdir().unwrap();
    clean_export(&live, api_dir.path(), "users.ndjson", &[]);
    assert_same_users(
        "after a refreshed link",
        &users_of(&dir.path().join("users.ndjson")),
        &users_of(&api_dir.path().join("users.ndjson")),
    );
}

#[test]
fn a_file_that_breaks_off_is_fetched_again_and_the_users_written_are_passed_over() {
    let live = tenant(3_000, 1_000_000.0);
    let gate = Gate::start(&live);
    gate.cut_next_file();
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson");
    let ran =
        run(
            crate::support::child::export(gate.domain(), live.client_id(), live.client_secret())
                .args(["--engine", "job", "--output"])
                .arg(&output)
                .arg("--json"),
        );
    ran.expect_code(0);
    let done: u64 = regex::Regex::new(r"trying again in \S+ with a fresh link \((\d+) lines")
        .unwrap()
        .captures(&ran.stderr)
        .unwrap_or_else(|| panic!("no second try: {}", ran.stderr))[1]
        .parse()
        .unwrap();
    assert!(
        done > 0 && done < 3_000,
        "the first try wrote part of the file: {}",
        ran.stderr
    );
    assert_eq!(ran.summary()["users"], 3_000);
    // The first half of the file made whole batches before it broke off; the second try
    // passed over them.
    assert_eq!(requests(&live, "GET", "/user-exports/"), [200, 200]);
    let api_dir = tempfile::tempdir().unwrap();
    clean_export(&live, api_dir.path(), "users.ndjson", &[]);
    assert_same_users(
        "after a transfer broke off",
        &users_of(&output),
        &users_of(&api_dir.path().join("users.ndjson")),
    );
}

#[test]
fn a_connection_the_job_cannot_name_is_refused_before_any_file_is_written() {
    let without_scope = Live::start(SandboxOptions {
        generate: 10,
        scopes: Some(vec!["read:users".into()]),
        ..Default::default()
    });
    let live = tenant(10, 1_000_000.0);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson");
    for (tenant, connection, says) in [
        (
            &without_scope,
            "legacy-db",
            "needs the read:connections scope",
        ),
        (
            &live,
            "no-such-db",
            "the tenant has no connection of that name",
        ),
    ] {
        let ran = run(export(tenant)
            .args(["--engine", "job", "--connection", connection, "--output"])
            .arg(&output));
        ran.expect_code(2);
        assert!(ran.stderr.contains(says), "{}", ran.stderr);
        assert!(!output.exists() && !state_of(&output).exists());
        assert_eq!(
            requests(tenant, "POST", "/api/v2/jobs/users-exports").len(),
            0
        );
    }
}

#[test]
fn query_since_and_users_are_refused_with_the_job_engine_before_any_request() {
    let live = tenant(10, 1_000_000.0);
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("ids.txt");
    std::fs::write(&list, "auth0|1\n").unwrap();
    let cases: [(&[&str], &str); 3] = [
        (
            &["--query", "email:*@example.org"],
            "--query with --engine job",
        ),
        (&["--since", "2024-01-01"], "--since with --engine job"),
        (
            &["--users", list.to_str().unwrap()],
            "--users with --engine job",
        ),
    ];
    for (args, says) in cases {
        let output = dir.path().join("users.ndjson");
        let ran = run(export(&live)
            .args(["--engine", "job", "--output"])
            .arg(&output)
            .args(args));
        ran.expect_code(2);
        assert!(ran.stderr.contains(says), "{args:?}: {}", ran.stderr);
        assert!(
            ran.stderr.contains("no query and no updated_at filter"),
            "{args:?} says why: {}",
            ran.stderr
        );
        assert!(!output.exists() && !state_of(&output).exists());
    }
    assert!(live.api_requests().is_empty(), "nothing was sent");
}
