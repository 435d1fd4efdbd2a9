//! Crashes: the real binary killed with SIGKILL at many seeded points (see `support::kill`), run
//! again until it completes, for the export (NDJSON, gzip, CSV) and each import mode; the
//! result must be a clean run's. And two runs of one job at once: the second is refused.
//!
//! CI runs a few kill points per job; `AUTH0_BULK_LONG=1` runs hundreds over bigger data:
//! `AUTH0_BULK_LONG=1 cargo test --release --locked --test integration -- faults crash`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use auth0_bulk::sandbox::SandboxOptions;
use serde_json::{Value, json};

use crate::support::child::{Ran, Running, run, wait_until};
use crate::support::exports::{
    User, assert_consistent, checkpoint, clean_export, expected_export, export, gunzip, read,
    state_of,
};
use crate::support::imports::{
    LedgerView, as_records, assert_adds_up, assert_same_users, changed, connection_of, count,
    generated, import, import_progress, ledger_bytes, read_text, settable, settable_by_id,
    slow_tenant, tenant_users, without_times, write_ndjson,
};
use crate::support::kill::{kill_until_done, scaled};
use crate::support::live::{Live, user_id};

// ---- export -----------------------------------------------------------------------------------

/// Exports `users` generated users to `name` with `args`, killing the export at `kills` seeded
/// points and running it again each time, until it completes. After every kill the checkpoint
/// must vouch only for bytes a clean run writes; at the end the file must be a clean run's,
/// byte for byte (and an NDJSON export the sandbox's dump). Returns the file.
fn export_survives_kills(
    name: &str,
    args: &[&str],
    users: usize,
    kills: usize,
    seed: u64,
) -> Vec<u8> {
    let live = Live::start(SandboxOptions {
        generate: users,
        latency: Duration::from_millis(10),
        ..Default::default()
    });
    let clean_dir = tempfile::tempdir().unwrap();
    let (clean, clean_run) = clean_export(&live, clean_dir.path(), name, args);

    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join(name);
    let partial = dir.path().join(format!("{name}.partial"));
    let state = state_of(&output);
    // Every user written is not yet complete: the rename and the last checkpoint are left.
    let progress = || match checkpoint(&state) {
        Some(c) if c["completed"] == true => 1.0,
        Some(c) => (c["users"].as_u64().unwrap_or(0) as f64 / users as f64).min(0.999),
        None => 0.0,
    };
    let after_kill = |_| {
        assert_consistent(&output, &clean);
    };
    let killed = kill_until_done(
        seed,
        kills,
        clean_run.elapsed,
        || {
            let mut command = export(&live);
            command
                .arg("--output")
                .arg(&output)
                .args(args)
                .arg("--json");
            command
        },
        progress,
        after_kill,
    );
    eprintln!(
        "{name}: {users} users, clean run {:.2}s, seed {seed:#x}: {}; last run {}",
        clean_run.elapsed.as_secs_f64(),
        killed.describe(),
        killed
            .last
            .as_ref()
            .map_or("killed after it completed".into(), |r| r
                .summary()
                .to_string())
    );
    assert!(
        killed.mid_run * 2 >= killed.points.len(),
        "{name}: most kills landed in a running export"
    );
    assert!(
        killed.mid_progress >= 1,
        "{name}: some kill came after part of the users were saved"
    );
    if let Some(last) = &killed.last {
        assert_eq!(last.summary()["users"], users);
    }
    assert!(
        read(&output) == clean,
        "{name}: after the kills the file differs from a clean run's"
    );
    assert!(!partial.exists());
    // NDJSON is the sandbox's own records byte for byte, in export order: every user once.
    let ndjson = if name.ends_with(".ndjson.gz") {
        Some(gunzip(&clean))
    } else if name.ends_with(".ndjson") {
        Some(clean.clone())
    } else {
        None
    };
    if let Some(ndjson) = ndjson {
        assert!(
            String::from_utf8(ndjson).unwrap() == expected_export(&live, |_| true),
            "{name}: the export is not the sandbox's dump"
        );
    }
    clean
}

#[test]
fn an_ndjson_export_killed_at_seeded_points_ends_as_the_sandbox_dump() {
    let users = scaled(4_000, 60_000);
    let out = export_survives_kills("users.ndjson", &[], users, scaled(5, 80), 0x5eed_0001);
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), users);
}

#[test]
fn a_gzipped_export_killed_at_seeded_points_ends_byte_identical_to_a_clean_run() {
    let users = scaled(4_000, 60_000);
    let gz = export_survives_kills("users.ndjson.gz", &[], users, scaled(5, 80), 0x5eed_0002);
    let text = String::from_utf8(gunzip(&gz)).unwrap();
    assert_eq!(text.lines().count(), users);
}

#[test]
fn a_csv_export_killed_at_seeded_points_ends_byte_identical_to_a_clean_run() {
    let users = scaled(4_000, 60_000);
    let csv = export_survives_kills(
        "users.csv",
        &["--csv-escape-formulas"],
        users,
        scaled(5, 80),
        0x5eed_0003,
    );
    let rows = String::from_utf8(csv).unwrap().lines().count();
    assert!(
        rows > users,
        "a header and a row per user (rows may hold newlines)"
    );
}

/// `n` users a few minutes apart (no instant holds two): every window of the walk is read page
/// by page, so what a resume asks again for is only what was in flight.
fn spread_tenant(n: usize) -> Live {
    let live = Live::start(SandboxOptions {
        latency: Duration::from_millis(10),
        ..Default::default()
    });
    let start = chrono::DateTime::parse_from_rfc3339("2020-01-01T00:00:00.000Z").unwrap();
    let users = (0..n).map(|i| {
        let created = start + chrono::Duration::seconds(i as i64 * 437 + (i as i64 % 7) * 13);
        let created = created.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        database_user(&created, &format!("spread{i}"), i * 7919 + 13)
    });
    live.tenant.sandbox.insert_users(users);
    live
}

/// A user of the `legacy-db` connection created at `created`, its local id made from `n`.
fn database_user(created: &str, name: &str, n: usize) -> User {
    let local = format!("{n:024x}");
    json!({
        "created_at": created,
        "email": format!("{name}@example.com"),
        "identities": [{"connection": "legacy-db", "user_id": local, "provider": "auth0", "isSocial": false}],
        "updated_at": created,
        "user_id": format!("auth0|{local}"),
    })
    .as_object()
    .cloned()
    .expect("an object")
}

/// The walk keeps each page in the run state as it arrives and the plan in the checkpoint, so
/// an export killed with many windows in flight and run again asks again only for the requests
/// that were in flight: at most one per window, and no more windows are in flight than the
/// workers (`--concurrency`). The file is still a clean run's.
#[test]
fn a_killed_export_asks_again_only_for_the_pages_in_flight_at_each_kill() {
    const WORKERS: usize = 8;
    let users = scaled(6_000, 40_000);
    let live = spread_tenant(users);
    let workers = WORKERS.to_string();
    let args = ["--concurrency", workers.as_str()];
    let clean_dir = tempfile::tempdir().unwrap();
    let before = live.api_requests().len();
    let (clean, clean_run) = clean_export(&live, clean_dir.path(), "users.ndjson", &args);
    let clean_requests = live.api_requests().len() - before;

    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson");
    let state = state_of(&output);
    let progress = || match checkpoint(&state) {
        Some(c) if c["completed"] == true => 1.0,
        Some(c) => (c["users"].as_u64().unwrap_or(0) as f64 / users as f64).min(0.999),
        None => 0.0,
    };
    let before = live.api_requests().len();
    let killed = kill_until_done(
        0x5eed_0004,
        scaled(4, 40),
        clean_run.elapsed,
        || {
            let mut command = export(&live);
            command
                .arg("--output")
                .arg(&output)
                .args(args)
                .arg("--json");
            command
        },
        progress,
        |_| {
            assert_consistent(&output, &clean);
        },
    );
    let sent = live.api_requests().len() - before;
    let repeated = sent.saturating_sub(clean_requests);
    eprintln!(
        "{users} users, {WORKERS} workers: clean run {clean_requests} requests, killed runs \
         {sent} in all, {repeated} repeated; {}",
        killed.describe()
    );
    assert!(read(&output) == clean, "after the kills the file differs");
    assert!(
        killed.mid_progress >= 1,
        "some kill came after part of the users were saved"
    );
    assert!(
        repeated <= killed.mid_run * WORKERS,
        "{repeated} requests repeated over {} kills with at most {WORKERS} in flight each",
        killed.mid_run
    );
}

/// An instant (one millisecond) of 1,500 users is read in pages from both ends of the user_id
/// order, and each page is kept as it arrives: a run killed halfway through the instant asks
/// again only for the page in flight (one worker here), not for the instant's pages it had.
#[test]
fn a_run_killed_in_the_middle_of_a_large_instant_reads_again_only_the_page_in_flight() {
    let live = Live::start(SandboxOptions {
        latency: Duration::from_millis(40),
        ..Default::default()
    });
    let instant = "2021-06-01T12:00:00.000Z";
    let users = (0..1_500).map(|i| database_user(instant, &format!("instant{i}"), i * 104_729 + 7));
    live.tenant.sandbox.insert_users(users);
    let args = ["--concurrency", "1"];
    let instant_pages = |live: &Live| {
        live.api_requests()
            .iter()
            .filter(|r| {
                r.query
                    .as_deref()
                    .is_some_and(|q| q.contains("sort=user_id"))
            })
            .count()
    };
    let clean_dir = tempfile::tempdir().unwrap();
    let (clean, _) = clean_export(&live, clean_dir.path(), "users.ndjson", &args);
    let clean_pages = instant_pages(&live);
    assert!(clean_pages >= 15, "1,500 users are 15 pages: {clean_pages}");

    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson");
    let before = instant_pages(&live);
    let running = Running::spawn(export(&live).arg("--output").arg(&output).args(args));
    wait_until(Duration::from_secs(60), "half the instant's pages", || {
        instant_pages(&live) - before >= clean_pages / 2
    });
    running.kill();
    run(export(&live).arg("--output").arg(&output).args(args)).expect_code(0);
    let repeated = (instant_pages(&live) - before).saturating_sub(clean_pages);
    assert_eq!(read(&output), clean, "the resumed file is a clean run's");
    assert!(
        repeated <= 1,
        "{repeated} of the instant's pages asked for again, with one in flight at the kill"
    );
}

// ---- import -----------------------------------------------------------------------------------

/// A crash test: the tenant's users before the import, the input records and the flags.
struct CrashJob {
    name: &'static str,
    before: Vec<User>,
    records: Vec<Value>,
    args: Vec<&'static str>,
    kills: usize,
    seed: u64,
    /// The records carry no user_id (matched by email): the tenant picks the ids, so tenants
    /// are compared by email, without ids.
    random_ids: bool,
}

/// What a crash test saw.
struct Crashed {
    clean: Value,
    /// The summary of the run that completed (`None` when the last kill came after the import
    /// had completed, just before the process ended).
    last: Option<Value>,
    in_flight_at_kills: usize,
    tenant: Live,
}

/// Latency of the crash tests' tenants: an import of 1,000 records lasts a few seconds.
const CRASH_LATENCY_MS: u64 = 8;

/// Imports `job` once into a clean tenant, and into a second tenant killing the import with
/// SIGKILL at `job.kills` seeded points and running it again each time until it completes.
/// After every kill no record may have two outcomes and no user may be there twice; at the end
/// the second tenant must equal the first, without a duplicate or a rejection, and the last
/// run's summary must account, with the ledger, for every record.
fn survives_kills(job: CrashJob) -> Crashed {
    let n = job.records.len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join(format!("{}.ndjson", job.name));
    write_ndjson(&input, &job.records);
    let command = |live: &Live, tag: &str| {
        let mut command = import(live);
        command
            .arg("--input")
            .arg(&input)
            .arg("--state")
            .arg(dir.path().join(format!("{tag}.state")))
            .arg("--rejects")
            .arg(dir.path().join(format!("{tag}.rejects.ndjson")))
            .args(&job.args)
            .args(["--quiet", "--json"]);
        command
    };

    let clean_tenant = slow_tenant(CRASH_LATENCY_MS, &job.before);
    let clean = run(&mut command(&clean_tenant, "clean"));
    clean.expect_code(0);
    let clean_ledger = ledger_bytes(&dir.path().join("clean.state"));

    let tenant = slow_tenant(CRASH_LATENCY_MS, &job.before);
    let state = dir.path().join("crashed.state");
    let progress = || import_progress(&state, clean_ledger);
    let mut in_flight_at_kills = 0;
    let after_kill = |_| {
        let ledger = LedgerView::read(&state);
        in_flight_at_kills += ledger.in_flight();
        let twice = ledger.outcomes.values().filter(|o| o.len() > 1).count();
        assert_eq!(
            twice, 0,
            "{}: records with two outcomes after a kill",
            job.name
        );
        let users = tenant.tenant.sandbox.users();
        let emails: BTreeSet<&str> = users
            .iter()
            .map(|u| u["email"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(emails.len(), users.len(), "{}: an email twice", job.name);
    };
    let killed = kill_until_done(
        job.seed,
        job.kills,
        clean.elapsed,
        || command(&tenant, "crashed"),
        progress,
        after_kill,
    );
    let clean = clean.summary();
    let last = killed.last.as_ref().map(|r| r.summary());
    eprintln!(
        "{}: {n} records, clean run {clean}; seed {:#x}: {}, {in_flight_at_kills} creates in \
         flight at the kills; last run {}",
        job.name,
        job.seed,
        killed.describe(),
        last.as_ref()
            .map_or("killed after it completed".into(), Value::to_string)
    );
    assert!(
        killed.mid_run * 2 >= killed.points.len(),
        "{}: most kills landed in a running import",
        job.name
    );
    assert!(
        killed.mid_progress >= 1,
        "{}: some kill came after part of the records were done",
        job.name
    );

    // The ledger has exactly one outcome for every record; the final run's summary, which
    // counts the earlier runs' outcomes too, is the ledger's.
    let ledger = LedgerView::read(&state);
    let twice: Vec<(&u64, &Vec<String>)> = ledger
        .outcomes
        .iter()
        .filter(|(_, outcomes)| outcomes.len() != 1)
        .take(3)
        .collect();
    assert!(
        twice.is_empty(),
        "{}: records with several outcomes: {twice:?}",
        job.name
    );
    assert_eq!(
        ledger.outcomes.keys().copied().collect::<Vec<u64>>(),
        (1..=n).collect::<Vec<u64>>(),
        "{}: the ledger has an outcome for every record",
        job.name
    );
    assert_eq!(
        ledger.tally().get("rejected"),
        None,
        "{}: no record is rejected because of an earlier attempt",
        job.name
    );
    if let Some(last) = &last {
        assert_eq!(count(last, "read"), n, "{}", job.name);
        assert_eq!(last["completed"], true);
        assert_eq!(last["resumed"], true, "{}: the last run resumed", job.name);
        assert_adds_up(last);
        for (outcome, records) in ledger.tally() {
            assert_eq!(
                count(last, &outcome),
                records,
                "{}: the summary's {outcome} is the ledger's",
                job.name
            );
        }
    }
    assert_eq!(
        read_text(&dir.path().join("crashed.rejects.ndjson")),
        "",
        "{}: nothing in the rejects file",
        job.name
    );

    // The tenant is what a clean run makes of it: no duplicate, nothing missing.
    let strip = |live: &Live| -> BTreeMap<String, User> {
        tenant_users(live)
            .into_iter()
            .map(|(id, user)| {
                let mut user = without_times(&user);
                if !job.random_ids {
                    return (id, user);
                }
                user.shift_remove("user_id");
                if let Some(identity) = user["identities"][0].as_object_mut() {
                    identity.shift_remove("user_id");
                }
                let email = user["email"].as_str().expect("an email").to_string();
                (email, user)
            })
            .collect()
    };
    assert_same_users(
        &strip(&tenant),
        &strip(&clean_tenant),
        &format!(
            "{}: the killed import's tenant against a clean run's",
            job.name
        ),
    );
    let (writes, clean_writes) = (
        tenant.tenant.sandbox.stats().writes,
        clean_tenant.tenant.sandbox.stats().writes,
    );
    assert_eq!(
        (writes.created, writes.updated),
        (clean_writes.created, clean_writes.updated),
        "{}: each user was written as often as in a clean run",
        job.name
    );
    Crashed {
        clean,
        last,
        in_flight_at_kills,
        tenant,
    }
}

/// Outcome counts of the last run, or of the ledger when the last kill came after completion.
fn outcomes(crashed: &Crashed, keys: &[&str]) -> u64 {
    match &crashed.last {
        Some(last) => keys.iter().map(|k| count(last, k)).sum(),
        None => keys.iter().map(|k| count(&crashed.clean, k)).sum(),
    }
}

#[test]
fn a_create_import_killed_at_seeded_points_creates_each_user_once_without_false_rejections() {
    let n = scaled(600, 3_000);
    let users = generated(n, 21);
    let crashed = survives_kills(CrashJob {
        name: "create",
        before: Vec::new(),
        records: as_records(&users),
        args: vec!["--mode", "create", "--passwords", "random"],
        kills: scaled(5, 60),
        seed: 0x1e55_0001,
        random_ids: false,
    });
    assert!(
        crashed.in_flight_at_kills >= 1,
        "some kill left a create in flight"
    );
    assert_eq!(count(&crashed.clean, "created"), n as u64);
    assert_eq!(outcomes(&crashed, &["created"]), n as u64);
    assert_same_users(
        &settable_by_id(crashed.tenant.tenant.sandbox.users().iter()),
        &settable_by_id(&users),
        "the tenant against the input",
    );
}

#[test]
fn a_create_import_by_email_killed_at_seeded_points_creates_each_user_once() {
    let n = scaled(400, 1_500);
    let users = generated(n, 20);
    let records: Vec<Value> = users
        .iter()
        .map(|user| {
            let mut record = user.clone();
            record.shift_remove("user_id");
            record.shift_remove("identities");
            record.insert("connection".into(), json!(connection_of(user)));
            Value::Object(record)
        })
        .collect();
    let crashed = survives_kills(CrashJob {
        name: "create-by-email",
        before: Vec::new(),
        records,
        args: vec![
            "--mode",
            "create",
            "--match",
            "email",
            "--passwords",
            "random",
        ],
        kills: scaled(3, 30),
        seed: 0x1e55_0004,
        random_ids: true,
    });
    assert!(
        crashed.in_flight_at_kills >= 1,
        "some kill left a create in flight"
    );
    assert_eq!(outcomes(&crashed, &["created"]), n as u64);
    let by_email = |users: Vec<User>| -> BTreeMap<String, User> {
        users
            .iter()
            .map(|user| {
                let mut user = settable(user);
                user.shift_remove("user_id");
                (user["email"].as_str().unwrap().to_string(), user)
            })
            .collect()
    };
    assert_same_users(
        &by_email(crashed.tenant.tenant.sandbox.users()),
        &by_email(users),
        "the tenant against the input, by email",
    );
}

#[test]
fn an_update_import_killed_at_seeded_points_ends_as_a_clean_run() {
    let n = scaled(400, 2_000);
    let users = generated(n, 22);
    let records: Vec<Value> = users
        .iter()
        .map(|user| {
            json!({
                "user_id": user_id(user),
                "given_name": "Imported",
                "app_metadata": {"plan": "enterprise", "migrated": true},
                "user_metadata": {"theme": "sepia"},
            })
        })
        .collect();
    let crashed = survives_kills(CrashJob {
        name: "update",
        before: users,
        records,
        args: vec!["--mode", "update"],
        kills: scaled(4, 50),
        seed: 0x1e55_0002,
        random_ids: false,
    });
    assert_eq!(count(&crashed.clean, "updated"), n as u64);
    // A patch whose outcome the kill lost finds the user already patched: unchanged.
    assert_eq!(outcomes(&crashed, &["updated", "unchanged"]), n as u64);
}

#[test]
fn an_upsert_import_killed_at_seeded_points_ends_as_a_clean_run() {
    let n = scaled(400, 2_000);
    let users = generated(n, 23);
    let before: Vec<User> = users.iter().step_by(2).cloned().collect();
    let records: Vec<Value> = users
        .iter()
        .map(|user| changed(user, json!({"app_metadata": {"migrated": true}})))
        .collect();
    let crashed = survives_kills(CrashJob {
        name: "upsert",
        before,
        records,
        args: vec!["--mode", "upsert", "--passwords", "random"],
        kills: scaled(4, 50),
        seed: 0x1e55_0003,
        random_ids: false,
    });
    assert_eq!(count(&crashed.clean, "created"), n as u64 / 2);
    assert_eq!(count(&crashed.clean, "updated"), n as u64 / 2);
    assert_eq!(
        outcomes(&crashed, &["created", "updated", "unchanged"]),
        n as u64
    );
}

// ---- two runs of one job at once --------------------------------------------------------------

/// Token requests the tenant answered: a run that sends anything asks for a token first.
fn token_requests(live: &Live) -> usize {
    live.tenant
        .sandbox
        .requests()
        .iter()
        .filter(|r| r.path == "/oauth/token")
        .count()
}

#[test]
fn a_second_export_on_the_same_state_is_refused_at_once_while_the_first_runs_unharmed() {
    let live = Live::start(SandboxOptions {
        generate: 4_000,
        latency: Duration::from_millis(50),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson");
    let state = state_of(&output);
    let mut first = Running::spawn(export(&live).arg("--output").arg(&output));
    wait_until(
        Duration::from_secs(60),
        "the first run's saved users",
        || checkpoint(&state).is_some_and(|c| c["users"].as_u64() > Some(0)),
    );
    let tokens = token_requests(&live);
    let second = run(export(&live).arg("--output").arg(&output));
    let first_still_running = first.is_running();
    assert_refused_at_once(&second, first_still_running, &state, &live, tokens);
    let first = first.wait();
    first.expect_code(0);
    assert!(
        String::from_utf8(read(&output)).unwrap() == expected_export(&live, |_| true),
        "the first run's export is whole"
    );
}

/// The second run of a job was refused by the lock, at once and before any request.
fn assert_refused_at_once(
    second: &Ran,
    first_still_running: bool,
    state: &Path,
    live: &Live,
    tokens: usize,
) {
    second.expect_code(1);
    assert!(
        second
            .stderr
            .contains("another run holds the state directory"),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains(&state.display().to_string()),
        "{}",
        second.stderr
    );
    assert!(
        first_still_running,
        "the refusal did not wait for the first run"
    );
    assert_eq!(token_requests(live), tokens, "the second run sent nothing");
}

#[test]
fn a_second_import_on_the_same_state_is_refused_at_once_while_the_first_runs_unharmed() {
    let users = generated(400, 30);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("users.ndjson");
    write_ndjson(&input, &users);
    let state = crate::support::imports::beside(&input, ".state");
    let live = slow_tenant(15, &[]);
    let args = ["--passwords", "random", "--quiet", "--json"];
    let mut first = Running::spawn(import(&live).arg("--input").arg(&input).args(args));
    wait_until(Duration::from_secs(60), "the first run's ledger", || {
        LedgerView::read(&state).done() > 0
    });
    let tokens = token_requests(&live);
    let second = run(import(&live).arg("--input").arg(&input).args(args));
    let first_still_running = first.is_running();
    assert_refused_at_once(&second, first_still_running, &state, &live, tokens);
    let first = first.wait();
    first.expect_code(0);
    let summary = first.summary();
    assert_eq!(count(&summary, "created"), 400);
    assert_eq!(live.tenant.sandbox.stats().writes.created, 400);
    assert_eq!(LedgerView::read(&state).done(), 400);
    assert_same_users(
        &settable_by_id(live.tenant.sandbox.users().iter()),
        &settable_by_id(&users),
        "the first run's tenant against the input",
    );
}
