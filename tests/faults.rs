//! Faults: the real binary against a tenant that fails in every way the sandbox can (5xx and
//! dropped or truncated answers in bursts, latency spikes, 429 storms, tokens that live two
//! seconds, a lagging search index), a tenant that stays down past the retry budget, a full
//! disk, an output that cannot be written, and a damaged or foreign run state. Each ends with
//! the exact result, or with a clear error and a state from which the same command finishes.
//!
//! `AUTH0_BULK_LONG=1` runs the mixed-fault jobs over more users and records.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use auth0_bulk::sandbox::SandboxOptions;
use serde_json::{Value, json};

use crate::support::child::{self, Ran, Running, run, wait_until};
use crate::support::exports::{
    User, assert_consistent, checkpoint, clean_export, expected_export, export, gunzip, read,
    state_of,
};
use crate::support::imports::{
    LedgerView, assert_adds_up, assert_same_users, beside, changed, connection_of, count,
    generated, import, settable_by_id, slow_tenant, tenant_users, without_times, write_ndjson,
};
use crate::support::kill::scaled;
use crate::support::live::{Gate, Live, user_id};

// ---- helpers ----------------------------------------------------------------------------------

/// A tenant that fails in every way at once, replayable from `seed`: Auth0's rate-limit
/// headers on every answer (a bucket of 100 at 500/s) and a 429 storm every 1 s for 0.4 s
/// (often enough that a run of a few seconds meets one even while its workers back off); 3%
/// of requests start a burst of 3 failures (500, 502, 503, dropped, or truncated after being
/// applied); 3% held 1.8 s longer, mostly more than the rest of a 2-second token's life;
/// writes reach search 0.8 s late.
fn faulty(seed: u64) -> SandboxOptions {
    SandboxOptions {
        rate: Some(500.0),
        burst: Some(100),
        storm_every: Duration::from_millis(1_000),
        storm_for: Duration::from_millis(400),
        fault_rate: 0.03,
        fault_burst: 3,
        fault_seed: seed,
        latency: Duration::from_millis(3),
        latency_spike_rate: 0.03,
        latency_spike: Duration::from_millis(1_800),
        token_ttl: Duration::from_secs(2),
        search_lag: Duration::from_millis(800),
        ..Default::default()
    }
}

/// What the faulty tenant did to a run, for the log and for asserting that it did something.
#[derive(Debug, Default)]
struct Suffered {
    faults: usize,
    storm_429s: usize,
    expired_tokens: usize,
    spikes: u64,
    tokens: usize,
}

fn suffered(live: &Live) -> Suffered {
    let log = live.tenant.sandbox.requests();
    Suffered {
        faults: log
            .iter()
            .filter(|r| r.fault.is_some_and(|f| f != "storm"))
            .count(),
        storm_429s: log.iter().filter(|r| r.fault == Some("storm")).count(),
        expired_tokens: log.iter().filter(|r| r.status == 401).count(),
        spikes: live.tenant.sandbox.stats().latency_spikes,
        tokens: log.iter().filter(|r| r.path == "/oauth/token").count(),
    }
}

/// A child that may write files of at most `bytes` bytes (RLIMIT_FSIZE), with SIGXFSZ ignored
/// so that a write past the limit fails with EFBIG, as a write to a full disk fails.
fn with_file_limit(command: &mut Command, bytes: u64) -> &mut Command {
    // SAFETY: between fork and exec the closure only calls async-signal-safe functions
    // (signal, setrlimit) and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: bytes as libc::rlim_t,
                rlim_max: bytes as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Every request the tenant answered, the token endpoint included.
fn all_requests(live: &Live) -> usize {
    live.tenant.sandbox.requests().len()
}

/// Runs `command`, which must be refused up front: exit 2, `says` on stderr, not called
/// resumable, and not a request sent.
fn refused_up_front(live: &Live, command: &mut Command, says: &str) -> Ran {
    let before = all_requests(live);
    let ran = run(command);
    ran.expect_code(2);
    assert!(ran.stderr.contains(says), "{says:?}:\n{}", ran.stderr);
    assert!(
        !ran.stderr.contains("run the same command again"),
        "not called resumable:\n{}",
        ran.stderr
    );
    assert_eq!(all_requests(live), before, "nothing was sent");
    ran
}

// ---- 1. mixed faults: export ------------------------------------------------------------------

#[test]
fn an_export_through_every_fault_at_once_is_the_sandbox_dump_byte_for_byte() {
    let users = scaled(3_000, 20_000);
    // An export sends about one request per 100 users: more of them fail.
    let live = Live::start(SandboxOptions {
        generate: users,
        gen_seed: 7,
        fault_rate: 0.05,
        ..faulty(0xfa17_0001)
    });
    // Gzip here; the list export below is plain NDJSON.
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson.gz");
    let ran = run(export(&live).arg("--output").arg(&output).args([
        "--concurrency",
        "8",
        "--json",
        "--quiet",
    ]));
    ran.expect_code(0);
    let seen = suffered(&live);
    eprintln!(
        "{users} users through faults: {seen:?}; {}, {:.1}s",
        ran.summary(),
        ran.elapsed.as_secs_f64()
    );
    assert!(
        String::from_utf8(gunzip(&read(&output))).unwrap() == expected_export(&live, |_| true),
        "the export through faults is not the sandbox's dump"
    );
    assert!(seen.faults > 0, "the tenant failed some requests: {seen:?}");
    assert!(seen.storm_429s > 0, "a storm hit the export: {seen:?}");
    assert!(seen.spikes > 0, "some requests were held longer: {seen:?}");
    assert!(
        seen.tokens > 2,
        "the tokens expired and were renewed: {seen:?}"
    );
}

#[test]
fn a_user_list_exported_through_faults_right_after_writes_is_the_tenant_as_it_is_now() {
    // Search lags writes by 0.8 s; reads by id do not (facts: "GET /users/{id}"). An export of
    // a list, started right after users changed and appeared, must see every change.
    let live = Live::start(SandboxOptions {
        generate: scaled(500, 5_000),
        gen_seed: 8,
        fault_rate: 0.05,
        ..faulty(0xfa17_0002)
    });
    let mut users = live.tenant.sandbox.users();
    users.sort_by(|a, b| user_id(a).cmp(user_id(b)));
    let mut ids: Vec<String> = Vec::new();
    let mut writes = Vec::new();
    for (index, user) in users.iter().enumerate().step_by(scaled(10, 7)) {
        let mut user = user.clone();
        user.entry("app_metadata").or_insert_with(|| json!({}))["plan"] =
            json!(format!("changed-{index}"));
        ids.push(user_id(&user).to_string());
        writes.push(user);
    }
    // New users, copies of existing ones under new ids and emails.
    for (n, user) in users.iter().take(scaled(20, 200)).enumerate() {
        let mut user = user.clone();
        let id = format!("auth0|{:024x}", 0xfeed_0000_u64 + n as u64);
        user.insert("user_id".into(), json!(id));
        user.insert("email".into(), json!(format!("new-{n}@example.com")));
        user["identities"][0]["user_id"] = json!(id.trim_start_matches("auth0|"));
        ids.push(id);
        writes.push(user);
    }
    live.tenant.sandbox.insert_users(writes);
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("ids.txt");
    std::fs::write(&list, ids.join("\n") + "\n").unwrap();
    let output = dir.path().join("listed.ndjson");
    let ran = run(export(&live)
        .arg("--output")
        .arg(&output)
        .arg("--users")
        .arg(&list)
        .args(["--concurrency", "8", "--json", "--quiet"]));
    ran.expect_code(0);
    let dump = live.dump_lines();
    let expected: String = ids.iter().map(|id| dump[id].clone()).collect();
    assert!(
        String::from_utf8(read(&output)).unwrap() == expected,
        "the list's export is not the tenant as it is"
    );
    let seen = suffered(&live);
    eprintln!(
        "{} listed users through faults: {seen:?}; {}, {:.1}s",
        ids.len(),
        ran.summary(),
        ran.elapsed.as_secs_f64()
    );
    assert!(seen.faults > 0 && seen.spikes > 0, "{seen:?}");
}

// ---- 2. mixed faults: import ------------------------------------------------------------------

/// Imports `records` into a tenant holding `before`, once through every fault and once into a
/// healthy twin; the two tenants must end the same (times aside), with the same summary.
fn import_through_faults(
    name: &str,
    before: &[User],
    records: &[Value],
    args: &[&str],
    options: SandboxOptions,
) -> Suffered {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join(format!("{name}.ndjson"));
    write_ndjson(&input, records);
    let command = |live: &Live, tag: &str| {
        let mut command = import(live);
        command
            .arg("--input")
            .arg(&input)
            .arg("--state")
            .arg(dir.path().join(format!("{tag}.state")))
            .arg("--rejects")
            .arg(dir.path().join(format!("{tag}.rejects.ndjson")))
            .args(args)
            .args(["--concurrency", "8", "--quiet", "--json"]);
        command
    };
    let healthy = Live::start(SandboxOptions::default());
    healthy.tenant.sandbox.insert_users(before.iter().cloned());
    let clean = run(&mut command(&healthy, "clean"));
    clean.expect_code(0);

    let live = Live::start(options);
    live.tenant.sandbox.insert_users(before.iter().cloned());
    let ran = run(&mut command(&live, "faulty"));
    let seen = suffered(&live);
    eprintln!(
        "{name}: {} records through faults: {seen:?}; {}, {:.1}s",
        records.len(),
        ran.stdout_text().trim(),
        ran.elapsed.as_secs_f64()
    );
    ran.expect_code(0);
    let (clean, summary) = (clean.summary(), ran.summary());
    assert_adds_up(&summary);
    for key in [
        "read",
        "created",
        "updated",
        "unchanged",
        "skipped",
        "rejected",
    ] {
        assert_eq!(
            count(&summary, key),
            count(&clean, key),
            "{name}: {key} as in a clean run: {summary} against {clean}"
        );
    }
    let strip = |live: &Live| -> BTreeMap<String, User> {
        tenant_users(live)
            .into_iter()
            .map(|(id, user)| (id, without_times(&user)))
            .collect()
    };
    assert_same_users(
        &strip(&live),
        &strip(&healthy),
        &format!("{name}: the faulty tenant against a clean import's"),
    );
    assert!(seen.faults > 0, "{name}: faults happened: {seen:?}");
    assert!(seen.storm_429s > 0, "{name}: a storm hit: {seen:?}");
    assert!(seen.tokens > 2, "{name}: tokens were renewed: {seen:?}");
    assert!(count(&summary, "retries") > 0 && count(&summary, "throttled") > 0);
    seen
}

#[test]
fn a_create_import_through_every_fault_at_once_ends_as_a_clean_one() {
    let users = generated(scaled(200, 2_000), 40);
    let records: Vec<Value> = users.iter().cloned().map(Value::Object).collect();
    import_through_faults(
        "create",
        &[],
        &records,
        &["--mode", "create", "--passwords", "random"],
        faulty(0xfa17_0003),
    );
}

#[test]
fn an_update_import_by_email_through_every_fault_at_once_ends_as_a_clean_one() {
    let users = generated(scaled(150, 2_000), 41);
    let records: Vec<Value> = users
        .iter()
        .map(|user| {
            json!({
                "email": user["email"],
                "connection": connection_of(user),
                "given_name": "Faulty",
                "app_metadata": {"plan": "enterprise", "migrated": true},
            })
        })
        .collect();
    // Some spikes outlast the token a request was sent with (a 401): the request goes on
    // with a new one.
    let seen = import_through_faults(
        "update",
        &users,
        &records,
        &["--mode", "update", "--match", "email"],
        faulty(0xfa17_0004),
    );
    assert!(
        seen.expired_tokens > 0,
        "a token expired under a request: {seen:?}"
    );
}

#[test]
fn an_upsert_import_through_every_fault_at_once_ends_as_a_clean_one() {
    // Half the users exist. Some users come twice: the second record finds the user the
    // first one created at once, though search has not seen it yet.
    let users = generated(scaled(150, 2_000), 42);
    let before: Vec<User> = users.iter().step_by(2).cloned().collect();
    let mut records: Vec<Value> = users
        .iter()
        .map(|user| changed(user, json!({"app_metadata": {"migrated": true}})))
        .collect();
    for user in users.iter().take(20) {
        records.push(changed(user, json!({"user_metadata": {"second": true}})));
    }
    import_through_faults(
        "upsert",
        &before,
        &records,
        &["--mode", "upsert", "--passwords", "random"],
        faulty(0xfa17_0005),
    );
}

// ---- 3. a tenant down past the retry budget ---------------------------------------------------

#[test]
fn an_export_whose_tenant_stays_down_ends_with_exit_1_and_resumes_exactly_when_it_is_back() {
    let live = Live::start(SandboxOptions {
        generate: 2_500,
        latency: Duration::from_millis(25),
        ..Default::default()
    });
    let clean_dir = tempfile::tempdir().unwrap();
    let (clean, _) = clean_export(&live, clean_dir.path(), "users.ndjson", &[]);

    // The tenant answers until the export has saved some users, then goes down for good:
    // every request 503. (A sandbox with fault_rate 1.0 fails too, but its faults carry no
    // Retry-After, so the backoff, 1 s doubling to 60 s over 8 attempts, would make the run
    // last about a minute; the gate answers `Retry-After: 0`.)
    let gate = Gate::start(&live);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson");
    let state = state_of(&output);
    let through_gate = || {
        let mut command = child::export(gate.domain(), live.client_id(), live.client_secret());
        command.arg("--output").arg(&output);
        command
    };
    let running = Running::spawn(&mut through_gate());
    wait_until(Duration::from_secs(60), "the first saved users", || {
        checkpoint(&state).is_some_and(|c| c["users"].as_u64() > Some(0))
    });
    gate.go_down();
    let down = running.wait();
    down.expect_code(1);
    assert_names_the_failure(&down, "GET /users");
    assert!(
        gate.refused() >= 8,
        "the request was retried before giving up"
    );
    let saved = checkpoint(&state).expect("a checkpoint");
    assert_eq!(saved["completed"], false);
    assert!(
        assert_consistent(&output, &clean) > 0,
        "part of it is saved"
    );

    gate.heal();
    let back = run(through_gate().arg("--json"));
    back.expect_code(0);
    assert_eq!(back.summary()["resumed"], true);
    assert!(
        read(&output) == clean,
        "the resumed export equals a clean run's"
    );
}

/// The message of a run that gave up on the tenant: what failed, how often, the last answer,
/// and that the same command resumes.
fn assert_names_the_failure(ran: &Ran, request: &str) {
    for part in [
        request,
        "failed 8 times in a row",
        "answered 503",
        "run the same command again to resume",
    ] {
        assert!(
            ran.stderr.contains(part),
            "{part:?} is missing:\n{}",
            ran.stderr
        );
    }
}

#[test]
fn an_import_whose_tenant_stays_down_ends_with_exit_1_and_resumes_exactly_when_it_is_back() {
    let users = generated(400, 43);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("users.ndjson");
    write_ndjson(&input, &users);
    let state = beside(&input, ".state");
    let live = slow_tenant(10, &[]);
    let gate = Gate::start(&live);
    let through_gate = || {
        let mut command = child::import(gate.domain(), live.client_id(), live.client_secret());
        command
            .arg("--input")
            .arg(&input)
            .args(["--passwords", "random", "--quiet", "--json"]);
        command
    };
    let running = Running::spawn(&mut through_gate());
    wait_until(Duration::from_secs(60), "the first outcomes", || {
        LedgerView::read(&state).done() >= 40
    });
    gate.go_down();
    let down = running.wait();
    down.expect_code(1);
    assert_names_the_failure(&down, "POST /users");
    // The ledger is consistent: one outcome at most per record, every created user there once.
    let ledger = LedgerView::read(&state);
    assert!(ledger.outcomes.values().all(|o| o.len() == 1));
    let done = ledger.done();
    assert!(
        (40..400).contains(&done),
        "{done} records done before the outage"
    );
    let tenant = tenant_users(&live);
    assert!(tenant.len() as u64 >= done && tenant.len() < 400);

    gate.heal();
    let back = run(&mut through_gate());
    back.expect_code(0);
    let summary = back.summary();
    assert_eq!(summary["resumed"], true);
    assert_eq!(
        (count(&summary, "read"), count(&summary, "created")),
        (400, 400)
    );
    assert_adds_up(&summary);
    assert_eq!(
        live.tenant.sandbox.stats().writes.created,
        400,
        "each user once"
    );
    assert_same_users(
        &settable_by_id(live.tenant.sandbox.users().iter()),
        &settable_by_id(&users),
        "the tenant against the input",
    );
}

// ---- 4. a full disk ---------------------------------------------------------------------------

#[test]
fn an_export_onto_a_full_disk_stops_with_a_clear_error_and_resumes_byte_identical() {
    // Enough users that the output is many batches (half of 3,000 share one millisecond).
    let live = Live::generated(6_000);
    let clean_dir = tempfile::tempdir().unwrap();
    let (clean, _) = clean_export(&live, clean_dir.path(), "users.ndjson", &[]);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson");
    let limit = clean.len() as u64 / 2;
    let full = run(with_file_limit(
        export(&live).arg("--output").arg(&output),
        limit,
    ));
    full.expect_code(1);
    for part in [
        format!("cannot write {}.partial", output.display()),
        "File too large".to_string(),
        "run the same command again to resume".to_string(),
    ] {
        assert!(full.stderr.contains(&part), "{part:?}:\n{}", full.stderr);
    }
    let vouched = assert_consistent(&output, &clean);
    assert!(
        vouched > 0 && vouched <= limit,
        "the checkpoint vouches for {vouched} of {limit} bytes"
    );

    let room = run(export(&live).arg("--output").arg(&output).arg("--json"));
    room.expect_code(0);
    assert_eq!(room.summary()["resumed"], true);
    assert!(read(&output) == clean, "the resumed file differs");
}

#[test]
fn an_import_whose_ledger_cannot_be_written_stops_before_sending_and_resumes_exactly() {
    let users = generated(300, 44);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("users.ndjson");
    write_ndjson(&input, &users);
    let state = beside(&input, ".state");
    let live = slow_tenant(5, &[]);
    let args = ["--passwords", "random", "--quiet", "--json"];
    // Room for the checkpoint and some 60 ledger entries.
    let full = run(with_file_limit(
        import(&live).arg("--input").arg(&input).args(args),
        4_096,
    ));
    full.expect_code(1);
    for part in [
        format!(
            "cannot write the import ledger {}",
            state.join("ledger.ndjson").display()
        ),
        "File too large".to_string(),
        "run the same command again to resume".to_string(),
    ] {
        assert!(full.stderr.contains(&part), "{part:?}:\n{}", full.stderr);
    }
    let ledger = LedgerView::read(&state);
    assert!(ledger.done() > 0 && ledger.done() < 300);
    // No create left without its mark: the tenant holds only users the ledger knows of.
    let marked = ledger.started.len();
    assert!(
        tenant_users(&live).len() <= marked,
        "a create was sent without its mark"
    );

    let room = run(import(&live).arg("--input").arg(&input).args(args));
    room.expect_code(0);
    let summary = room.summary();
    assert_eq!(summary["resumed"], true);
    assert_eq!(count(&summary, "created"), 300);
    assert_eq!(
        live.tenant.sandbox.stats().writes.created,
        300,
        "each user once"
    );
    assert_same_users(
        &settable_by_id(live.tenant.sandbox.users().iter()),
        &settable_by_id(&users),
        "the tenant against the input",
    );
}

// ---- 5. an output that cannot be written ------------------------------------------------------

#[test]
fn an_output_that_cannot_be_written_is_refused_before_any_request() {
    // Tests run as root, for whom permissions do not stop a write: a file where a folder
    // should be, and a folder where the file should be, stop everyone.
    let live = Live::generated(100);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let folder = dir.path().join("a-folder");
    std::fs::create_dir(&folder).unwrap();

    let under_a_file = file.join("users.ndjson");
    refused_up_front(
        &live,
        export(&live).arg("--output").arg(&under_a_file),
        &format!("{} is a file", file.display()),
    );
    refused_up_front(
        &live,
        export(&live).arg("--output").arg(&folder),
        "that is a directory",
    );
    refused_up_front(
        &live,
        export(&live)
            .arg("--output")
            .arg(dir.path().join("users.ndjson"))
            .arg("--state")
            .arg(&file),
        "that is a file, not a directory",
    );

    let input = dir.path().join("users.ndjson");
    write_ndjson(&input, &generated(3, 45));
    refused_up_front(
        &live,
        import(&live)
            .arg("--input")
            .arg(&input)
            .arg("--rejects")
            .arg(file.join("rejects.ndjson")),
        &format!("{} is a file", file.display()),
    );
    refused_up_front(
        &live,
        import(&live)
            .arg("--input")
            .arg(&input)
            .arg("--rejects")
            .arg(&folder),
        "that is a directory",
    );
    refused_up_front(
        &live,
        import(&live)
            .arg("--input")
            .arg(&input)
            .arg("--state")
            .arg(&file),
        "that is a file, not a directory",
    );
    assert!(!dir.path().join("users.ndjson.partial").exists());
}

// ---- 6. a damaged or foreign run state --------------------------------------------------------

/// State files as a crash cannot leave them, but a disk, an editor or another build can, for a
/// state file whose format version is `current` (the export's checkpoint is at 2 since it keeps
/// the walk's plan; the import's state at 1).
fn damaged_states(current: u32) -> [(&'static str, String, String); 4] {
    let newer = current + 1;
    [
        ("garbage", "not json at all".into(), "unreadable".into()),
        (
            "truncated",
            format!("{{\"version\": \"{current}\", \"fingerpr"),
            "unreadable".into(),
        ),
        (
            "newer",
            format!("{{\"version\": \"{newer}\", \"fingerprint\": \"x\", \"chunks\": []}}"),
            format!(
                "format version {newer}, but this auth0-bulk reads version {current}: it was \
                 written by a newer"
            ),
        ),
        (
            "older",
            "{\"fingerprint\": \"x\", \"completed\": false}".into(),
            "format version none".into(),
        ),
    ]
}

#[test]
fn a_damaged_or_foreign_export_state_is_refused_with_exit_2_and_fresh_recovers() {
    let live = Live::generated(500);
    // Format 3: a job export's (`--engine job`); an API export's is still written as 2.
    for (what, text, says) in damaged_states(3) {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("users.ndjson");
        let state = state_of(&output);
        std::fs::create_dir(&state).unwrap();
        std::fs::write(state.join("export.json"), &text).unwrap();
        let ran = refused_up_front(&live, export(&live).arg("--output").arg(&output), &says);
        let named = state.join("export.json").display().to_string();
        assert!(ran.stderr.contains(&named), "{what}: {}", ran.stderr);
        assert!(ran.stderr.contains("--fresh"), "{what}: {}", ran.stderr);

        let fresh = run(export(&live).arg("--output").arg(&output).arg("--fresh"));
        fresh.expect_code(0);
        assert!(
            String::from_utf8(read(&output)).unwrap() == expected_export(&live, |_| true),
            "{what}: --fresh exports every user"
        );
        live.tenant.sandbox.reset_stats();
    }
}

#[test]
fn a_damaged_or_foreign_import_state_is_refused_with_exit_2_and_fresh_recovers() {
    let users = generated(200, 46);
    let live = Live::start(SandboxOptions::default());
    for (what, text, says) in damaged_states(1) {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("users.ndjson");
        write_ndjson(&input, &users);
        let state = beside(&input, ".state");
        std::fs::create_dir(&state).unwrap();
        std::fs::write(state.join("import.json"), text).unwrap();
        let args = ["--passwords", "random", "--quiet", "--json"];
        let ran = refused_up_front(
            &live,
            import(&live).arg("--input").arg(&input).args(args),
            &says,
        );
        let named = state.join("import.json").display().to_string();
        assert!(ran.stderr.contains(&named), "{what}: {}", ran.stderr);
        assert!(ran.stderr.contains("--fresh"), "{what}: {}", ran.stderr);

        let fresh = run(import(&live)
            .arg("--input")
            .arg(&input)
            .args(args)
            .arg("--fresh"));
        fresh.expect_code(0);
        assert_eq!(count(&fresh.summary(), "read"), 200, "{what}");
        assert_same_users(
            &settable_by_id(live.tenant.sandbox.users().iter()),
            &settable_by_id(&users),
            &format!("{what}: the tenant after --fresh"),
        );
        live.tenant.sandbox.reset_stats();
    }
}

#[test]
fn a_ledger_damaged_before_its_end_is_refused_not_skipped_and_fresh_recovers() {
    let users = generated(300, 47);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("users.ndjson");
    write_ndjson(&input, &users);
    let state = beside(&input, ".state");
    let live = slow_tenant(10, &[]);
    let args = ["--passwords", "random", "--quiet", "--json"];
    let running = Running::spawn(import(&live).arg("--input").arg(&input).args(args));
    wait_until(Duration::from_secs(60), "some outcomes", || {
        LedgerView::read(&state).done() >= 30
    });
    running.kill();
    // A line in the middle is damaged; what follows it is not a torn tail to drop.
    let ledger = state.join("ledger.ndjson");
    let text = std::fs::read_to_string(&ledger).unwrap();
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    lines[5] = "{\"record\": 6, \"outc#\u{0}\n";
    std::fs::write(&ledger, lines.concat()).unwrap();
    // Requests in flight at the kill (up to the workers' goal) reach the tenant's log after
    // their 10 ms of latency: let them land before counting from zero.
    std::thread::sleep(Duration::from_millis(300));
    live.tenant.sandbox.reset_stats();

    let ran = refused_up_front(
        &live,
        import(&live).arg("--input").arg(&input).args(args),
        "line 6 is not a ledger entry",
    );
    assert!(
        ran.stderr.contains(&ledger.display().to_string()) && ran.stderr.contains("--fresh"),
        "{}",
        ran.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&ledger).unwrap(),
        lines.concat(),
        "the damaged ledger is left as it was"
    );

    let fresh = run(import(&live)
        .arg("--input")
        .arg(&input)
        .args(args)
        .arg("--fresh"));
    fresh.expect_code(0);
    let summary = fresh.summary();
    // Started over: the users the first run made are there already, and left alone.
    assert_eq!(
        count(&summary, "created") + count(&summary, "skipped"),
        300,
        "{summary}"
    );
    assert_eq!(
        live.tenant.sandbox.stats().writes.created,
        count(&summary, "created"),
        "only the missing users were created"
    );
    assert_same_users(
        &settable_by_id(live.tenant.sandbox.users().iter()),
        &settable_by_id(&users),
        "the tenant after --fresh",
    );
}

// ---- 7. a tenant that cannot be reached -------------------------------------------------------

/// Domains no connection can be made to, each with what the error must name: a name that does
/// not resolve (`.invalid` never does, RFC 6761, and fails at once offline) and a loopback
/// port nothing listens on (bound, noted and closed again: the connection is refused).
fn unreachable_domains() -> Vec<(String, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    vec![
        (
            "acme.eu.auth0.invalid".to_string(),
            "cannot reach https://acme.eu.auth0.invalid: ".to_string(),
        ),
        (
            format!("http://127.0.0.1:{port}"),
            format!("cannot reach http://127.0.0.1:{port}: "),
        ),
    ]
}

/// A run against an unreachable tenant: exit 2 within 10 s, `says` on stderr, and neither
/// called resumable nor retried.
fn refused_as_unreachable(ran: &Ran, says: &str) {
    ran.expect_code(2);
    assert!(ran.stderr.contains(says), "{says:?}:\n{}", ran.stderr);
    assert!(ran.stderr.contains("check --domain"), "{}", ran.stderr);
    assert!(
        !ran.stderr.contains("run the same command again"),
        "not called resumable:\n{}",
        ran.stderr
    );
    assert!(
        ran.elapsed < Duration::from_secs(10),
        "ended at once, not after retries: {:?}",
        ran.elapsed
    );
}

/// Issue 10, item 6: a `--domain` that does not resolve, or refuses the connection, is a
/// configuration error found before anything is written: exit 2 at once, no `.partial`, no
/// run state, so the corrected command runs as if the wrong one never had (no `--fresh`).
#[test]
fn an_export_to_a_tenant_that_cannot_be_reached_ends_at_once_with_exit_2_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson");
    for (domain, says) in unreachable_domains() {
        let ran = run(child::export(&domain, "client-id", "client-secret")
            .arg("--output")
            .arg(&output));
        refused_as_unreachable(&ran, &says);
        let token = run(child::binary()
            .args(["export", "--domain", &domain, "--token", "a-ready-token"])
            .arg("--output")
            .arg(&output));
        refused_as_unreachable(&token, &says);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{domain}: nothing written, found {left:?}");
    }

    // The corrected command starts clean.
    let live = Live::generated(50);
    let ran = run(export(&live).arg("--output").arg(&output).arg("--json"));
    ran.expect_code(0);
    assert_eq!(ran.summary()["resumed"], false);
    assert_eq!(ran.summary()["users"], 50);
}

/// Issue 10, item 6: the same for an import: exit 2 at once, and no run state or rejects file
/// beside the input.
#[test]
fn an_import_to_a_tenant_that_cannot_be_reached_ends_at_once_with_exit_2_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("users.ndjson");
    write_ndjson(&input, &generated(20, 48));
    let only_the_input = || {
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    for (domain, says) in unreachable_domains() {
        let ran = run(child::import(&domain, "client-id", "client-secret")
            .arg("--input")
            .arg(&input)
            .args(["--passwords", "random"]));
        refused_as_unreachable(&ran, &says);
        let token = run(child::binary()
            .args(["import", "--domain", &domain, "--token", "a-ready-token"])
            .arg("--input")
            .arg(&input)
            .args(["--passwords", "random"]));
        refused_as_unreachable(&token, &says);
        assert_eq!(
            only_the_input(),
            ["users.ndjson"],
            "{domain}: nothing written"
        );
    }

    let live = Live::start(SandboxOptions::default());
    let ran = run(import(&live).arg("--input").arg(&input).args([
        "--passwords",
        "random",
        "--quiet",
        "--json",
    ]));
    ran.expect_code(0);
    assert_eq!(ran.summary()["resumed"], false);
    assert_eq!(count(&ran.summary(), "created"), 20);
}
