//! The bulk-import job engine (`import --engine job`) in create mode and password-change
//! tickets (`--tickets`) end to end: the binary, run as a child process, against sandbox
//! tenants served in-process (helpers in `support/jobs.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use auth0_bulk::sandbox::{SandboxOptions, connection_id};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use crate::support::child::{Ran, Running, run, wait_until};
use crate::support::files_under;
use crate::support::imports::{
    DB, LedgerView, assert_adds_up, assert_same_users, beside, count, import, read_ndjson,
    read_text, tenant_users,
};
use crate::support::jobs::*;
use crate::support::kill::scaled;
use crate::support::live::Live;

// ---- a create import through jobs --------------------------------------------------------------

/// A clean `--engine job` import into a fresh tenant: its summary and the tenant's users.
fn clean_job_import(records: &[Value], args: &[&str]) -> (Live, Ran, tempfile::TempDir) {
    let live = tenant(2_000.0);
    let (dir, path) = input(records);
    let ran = run(&mut job_import(&live, live.domain(), &path, args));
    (live, ran, dir)
}

#[test]
fn a_job_import_creates_every_good_record_once_with_derived_ids_and_rejects_the_rest_by_line() {
    let n = 300;
    let records = records(n, "create");
    let (live, ran, dir) = clean_job_import(&records, &["--quiet"]);
    ran.expect_code(3);
    let summary = ran.summary();
    assert_adds_up(&summary);
    let (good, bad) = (good(n), n as u64 - good(n));
    assert_eq!(
        (
            count(&summary, "read"),
            count(&summary, "created"),
            count(&summary, "skipped"),
            count(&summary, "rejected"),
        ),
        (n as u64, good, 0, bad),
        "{summary}"
    );

    // Every good record is one user, in its connection, with its fields and the id expected.
    assert_same_users(
        &tenant_as_expected(&live),
        &expected_users(&records),
        "the tenant against the good records",
    );
    assert_eq!(
        live.tenant.sandbox.stats().writes.created,
        good,
        "each user was written once"
    );
    let derived: Vec<String> = records
        .iter()
        .enumerate()
        .filter(|(i, r)| !is_bad(*i) && r.get("user_id").is_none())
        .map(|(_, r)| expected_id(r))
        .collect();
    assert!(derived.len() as u64 > good / 2);
    for id in &derived {
        let local = id.strip_prefix("auth0|").unwrap();
        assert!(
            local.len() == 24 && local.bytes().all(|b| b.is_ascii_hexdigit()),
            "a derived id has the shape of Auth0's own: {id}"
        );
    }
    // The bad records, and only they, are in the rejects file with their line and reason.
    let rejects = rejects_by_line(&beside(&dir.path().join("users.ndjson"), ".rejects.ndjson"));
    let bad_lines: Vec<u64> = (0..n)
        .filter(|i| is_bad(*i))
        .map(|i| i as u64 + 1)
        .collect();
    assert_eq!(rejects.keys().copied().collect::<Vec<_>>(), bad_lines);
    for (line, (code, message, field)) in &rejects {
        assert_eq!(code, "invalid_field", "line {line}");
        assert_eq!(field.as_deref(), Some("email"), "line {line}");
        assert!(
            message.contains("not an email address"),
            "line {line}: {message}"
        );
    }
    let entries = read_ndjson(&beside(&dir.path().join("users.ndjson"), ".rejects.ndjson"));
    for entry in &entries {
        let line = entry["_error"]["line"].as_u64().unwrap() as usize;
        let mut record = entry.clone();
        record.shift_remove("_error");
        assert_eq!(
            Value::Object(record),
            records[line - 1],
            "the entry is the record as read"
        );
    }

    // The same input into another fresh tenant: the same users, ids included.
    let (again, ran, _dir) = clean_job_import(&records, &["--quiet"]);
    ran.expect_code(3);
    assert_same_users(
        &tenant_as_expected(&again),
        &tenant_as_expected(&live),
        "a second clean run's tenant against the first's",
    );
}

// ---- many chunks, two jobs at a time -----------------------------------------------------------

/// Imports `records` through a [`Watch`] with `args`; checks every users file the tenant
/// accepted is a JSON array of at most `limit` bytes whose users are the good records of one
/// connection, each sent once; returns the watch and the summary.
fn chunked_import(records: &[Value], limit: usize, args: &[&str]) -> (Live, Watch, Value) {
    let live = tenant(400.0);
    let watch = Watch::start(&live);
    let (_dir, path) = input(records);
    let bytes = limit.to_string();
    let mut all = vec!["--quiet", "--job-file-bytes", &bytes];
    all.extend_from_slice(args);
    let ran = run(&mut job_import(&live, watch.domain(), &path, &all));
    ran.expect_code(3);
    let summary = ran.summary();
    assert_adds_up(&summary);
    assert_eq!(count(&summary, "created"), good(records.len()), "{summary}");
    assert_eq!(
        count(&summary, "throttled"),
        0,
        "no 429 reached the client: {summary}"
    );

    let connection_of_email: BTreeMap<&str, &str> = records
        .iter()
        .map(|r| {
            (
                r["email"].as_str().unwrap(),
                r["connection"].as_str().unwrap(),
            )
        })
        .collect();
    let mut sent = Vec::new();
    for (connection, file) in watch.accepted_files() {
        assert!(
            file.len() <= limit,
            "a users file of {} bytes, over the {limit} asked for",
            file.len()
        );
        let users: Vec<Map<String, Value>> =
            serde_json::from_slice(&file).expect("a users file is a JSON array of users");
        assert!(!users.is_empty());
        for user in &users {
            let email = user["email"].as_str().unwrap();
            assert_eq!(
                connection_id(connection_of_email[email]),
                connection,
                "{email} went to its own connection's job"
            );
            assert!(
                user.contains_key("user_id"),
                "every user is sent with an id"
            );
            assert!(
                !user.contains_key("password"),
                "a job takes no clear-text password"
            );
            sent.push(email.to_string());
        }
    }
    let unique: BTreeSet<&String> = sent.iter().collect();
    assert_eq!(unique.len(), sent.len(), "no user sent twice");
    assert_eq!(
        sent.len() as u64,
        good(records.len()),
        "every good record sent"
    );
    assert_same_users(
        &tenant_as_expected(&live),
        &expected_users(records),
        "the tenant against the good records",
    );
    (live, watch, summary)
}

#[test]
fn small_job_files_make_many_chunks_each_under_the_limit_with_at_most_two_jobs_at_once() {
    let records = records(480, "chunks");
    let (live, watch, _) = chunked_import(&records, 20_000, &[]);
    let files = watch.accepted_files().len();
    assert!(files >= 8, "{files} chunks");
    let most = watch.most_jobs_at_once();
    eprintln!("{files} chunks of at most 20000 bytes, at most {most} jobs at once");
    assert_eq!(most, 2, "two jobs went at once, never more");
    // The client never asked for a third job (the tenant would have answered 429).
    let posts = &routes(&live)[JOBS_POST];
    assert_eq!(posts.get(&429), None, "{posts:?}");
    assert_eq!(posts.get(&202).copied(), Some(files as u64));

    // `--jobs 1`: one at a time.
    let (_, watch, _) = chunked_import(&records[..120], 8_000, &["--jobs", "1"]);
    assert!(watch.accepted_files().len() >= 3);
    assert_eq!(
        watch.most_jobs_at_once(),
        1,
        "--jobs 1 runs one job at a time"
    );
}

// ---- exactly once across crashes ---------------------------------------------------------------

#[test]
fn a_job_import_killed_at_seeded_points_creates_each_user_once_and_ends_as_a_clean_run() {
    let seed = 0x10b5_0003_u64;
    let n = scaled(400, 2_000);
    let kills = scaled(7, 40);
    // A legacy store's migration: every other record brings its password as a salted SHA-256.
    let records: Vec<Value> = records(n, "crash")
        .into_iter()
        .enumerate()
        .map(|(i, mut record)| {
            if has_hash(i) {
                record["custom_password_hash"] = sha256_hash(&legacy_password(i), i);
            }
            record
        })
        .collect();
    let args = |dir: &Path| -> Vec<String> {
        let tickets = dir.join("tickets.ndjson").display().to_string();
        ["--quiet", "--job-file-bytes", "8000", "--tickets", &tickets]
            .map(String::from)
            .to_vec()
    };

    let clean_live = tenant(CRASH_JOB_RATE);
    let (clean_dir, clean_input) = input(&records);
    let clean_args = args(clean_dir.path());
    let clean = run(&mut job_import(
        &clean_live,
        clean_live.domain(),
        &clean_input,
        &clean_args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    clean.expect_code(3);
    let clean_summary = clean.summary();

    let live = tenant(CRASH_JOB_RATE);
    let watch = Watch::start(&live);
    let (dir, path) = input(&records);
    let state = beside(&path, ".state");
    let crash_args = args(dir.path());
    let crash_args: Vec<&str> = crash_args.iter().map(String::as_str).collect();
    let command = || job_import(&live, watch.domain(), &path, &crash_args);

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Every third kill comes while a job's creation is answered, the others are drawn. The
    // last ones may find the run finished: at least five must land.
    let plan = kill_plan(
        kills,
        &[Kill::Polling, Kill::Progress, Kill::Time],
        &mut rng,
    );
    let killer = Killer {
        watch: &watch,
        state: &state,
        records: n,
        lasts: clean.elapsed,
        code: 3,
        patches: &|| 0,
    };
    let Killings {
        landed, finished, ..
    } = killer.kill_at(&plan, &mut rng, command);
    let last = finished.unwrap_or_else(|| run(&mut command()));
    last.expect_code(3);
    eprintln!(
        "seed {seed:#x}: kills {landed:?}; {} jobs accepted (clean run: {}); last run {}",
        watch.accepted_files().len(),
        requests_of(&clean_live, JOBS_POST),
        last.stdout_text().trim()
    );
    assert!(
        landed.len() >= 5,
        "at least five kills hit a running import: {landed:?}"
    );
    assert!(
        landed.contains(&Kill::Accepting),
        "a kill came between a job's creation and its id in the journal"
    );

    // The held jobs' users were sent again, in another job.
    assert!(
        !watch.sent_twice().is_empty(),
        "the chunk whose job's answer was lost was sent again"
    );

    // Exactly once: every record has one outcome, the same as in the clean run.
    let summary = last.summary();
    assert_ends_as_clean(
        &Ended::of(&live, &path, &summary),
        &Ended::of(&clean_live, &clean_input, &clean_summary),
        n,
        &[&["read"], &["created"], &["skipped"], &["rejected"]],
    );
    assert_eq!(
        count(&summary, "skipped"),
        0,
        "no user of ours came back as skipped"
    );
    assert_eq!(
        live.tenant.sandbox.stats().writes.created,
        good(n),
        "each user was created once"
    );
    // Every user who brought a hash signs in with their old password, whichever run made them.
    let login = |record: &Value, password: &str| signs_in(&live, record, password);
    let hashed: Vec<(usize, &Value)> = records
        .iter()
        .enumerate()
        .filter(|(i, _)| has_hash(*i) && !is_bad(*i))
        .collect();
    assert!(!hashed.is_empty());
    for (i, record) in &hashed {
        assert!(
            login(record, &legacy_password(*i)),
            "record {i} signs in with its old password"
        );
    }
    assert!(
        !login(hashed[0].1, "not-the-password"),
        "a wrong password is refused"
    );
    let hashed_ids: BTreeSet<String> = hashed.iter().map(|(_, r)| expected_id(r)).collect();

    // Tickets: a line for each created user without a hash, once, whichever run made the user.
    let lines = ticket_lines(&dir.path().join("tickets.ndjson"));
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["user_id"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "no user has two ticket lines");
    let users = tenant_users(&live);
    let without_hash: BTreeSet<&str> = users
        .keys()
        .map(String::as_str)
        .filter(|id| !hashed_ids.contains(*id))
        .collect();
    assert_eq!(
        unique, without_hash,
        "every created user without a hash has a ticket line, and no other"
    );
    assert!(lines.iter().all(|l| l["ticket"].is_string()));
    let counts = live.tenant.sandbox.ticket_counts();
    assert_eq!(
        counts.len(),
        without_hash.len(),
        "a ticket for every user without a hash"
    );
    // A kill between the tenant's answer and the line costs that user a second ticket.
    let asked: usize = counts.values().sum();
    assert!(
        asked - without_hash.len() <= auth0_bulk::import::tickets::IN_FLIGHT * landed.len(),
        "{asked} tickets for {} users",
        without_hash.len()
    );
    drop(clean_dir);
    drop(dir);
}

// ---- a completed import run again --------------------------------------------------------------

#[test]
fn a_completed_job_import_run_again_skips_every_user_as_already_there_without_lookups() {
    let n = 120;
    let records = records(n, "rerun");
    let live = tenant(2_000.0);
    let (_dir, path) = input(&records);
    let first = run(&mut job_import(&live, live.domain(), &path, &[]));
    first.expect_code(3);
    assert_eq!(count(&first.summary(), "created"), good(n));
    let users = tenant_users(&live);
    live.tenant.sandbox.reset_stats();

    // The same command: the state says the import completed, so this is a new import.
    let again = run(&mut job_import(&live, live.domain(), &path, &[]));
    again.expect_code(3);
    let summary = again.summary();
    assert_adds_up(&summary);
    assert_eq!(summary["resumed"], false, "{summary}");
    assert_eq!(
        (
            count(&summary, "created"),
            count(&summary, "skipped"),
            count(&summary, "rejected"),
        ),
        (0, good(n), n as u64 - good(n)),
        "{summary}"
    );
    // Each good record is skipped as already_exists: the first few are logged, the rest
    // counted in one closing line.
    let logged = again
        .stderr
        .lines()
        .filter(|l| l.contains("skipped") && l.contains("(already_exists)"))
        .count() as u64;
    assert_eq!(logged, good(n).min(5), "{}", again.stderr);
    assert!(
        again.stderr.contains(&format!(
            "already_exists: … and {} more like this",
            good(n) - 5
        )),
        "{}",
        again.stderr
    );

    assert_eq!(
        tenant_users(&live),
        users,
        "the tenant is as the first run left it"
    );
    assert_eq!(live.tenant.sandbox.stats().writes.created, 0);
    let routes = routes(&live);
    for route in [
        "GET /api/v2/users/{id}",
        "GET /api/v2/users-by-email",
        "GET /api/v2/users",
        "POST /api/v2/users",
    ] {
        assert!(
            !routes.contains_key(route),
            "no per-user request ({route}) on a rerun: {routes:?}"
        );
    }
    assert!(routes.contains_key(JOBS_POST), "{routes:?}");
}

// ---- password-change tickets -------------------------------------------------------------------

/// The lines of a tickets file.
fn ticket_lines(path: &Path) -> Vec<Value> {
    read_text(path)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a tickets line is JSON"))
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// Imports records with `engine` and `--tickets FILE`, kills the run once the tickets stage
/// has written a third of its lines, runs it again to its end, and checks the file: a line for
/// each created user, once, `0600`, and no ticket URL in any output.
fn tickets_survive_a_kill(engine: &[&str], tag: &str, n: usize) {
    let records = records(n, tag);
    let created = good(n);
    // Each ticket request takes a while, so the stage lasts long enough to be killed in.
    let live = Live::start(SandboxOptions {
        job_rate: 2_000.0,
        latency: Duration::from_millis(25),
        ..Default::default()
    });
    let (dir, path) = input(&records);
    let tickets = dir.path().join("tickets.ndjson");
    let command = || {
        let mut command = import(&live);
        command
            .arg("--input")
            .arg(&path)
            .args(engine)
            .args(["--passwords", "random", "--json", "--tickets"])
            .arg(&tickets);
        command
    };
    let lines = || std::fs::read(&tickets).map_or(0, |b| b.iter().filter(|c| **c == b'\n').count());
    // An empty file the user made, readable by all: the tool makes it private before a
    // ticket goes in.
    std::fs::write(&tickets, "").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tickets, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    let mut running = Running::spawn(&mut command());
    let third = created as usize / 3;
    let start = Instant::now();
    while running.is_running() && lines() < third {
        assert!(start.elapsed() < Duration::from_secs(120), "no tickets");
        std::thread::sleep(Duration::from_millis(1));
    }
    if !running.is_running() {
        let ran = running.wait();
        panic!(
            "the run ended before a third of the tickets was written ({} lines): exit {:?}\n{}",
            lines(),
            ran.code(),
            ran.stderr
        );
    }
    let killed = running.kill();
    let at_kill = lines();
    assert!(
        at_kill >= third && (at_kill as u64) < created,
        "{at_kill} lines at the kill"
    );
    let asked_at_kill: usize = live.tenant.sandbox.ticket_counts().values().sum();

    let last = run(&mut command());
    last.expect_code(3);
    let summary = last.summary();
    assert_eq!(summary["resumed"], true);
    assert_eq!(count(&summary, "created"), created);
    assert_eq!(
        summary["tickets"],
        json!({"written": created - at_kill as u64, "total": created, "failed": 0}),
        "{summary}"
    );

    // One line per created user, each once, with the user's email and a ticket.
    let users = tenant_users(&live);
    assert_eq!(users.len() as u64, created);
    let file = ticket_lines(&tickets);
    let ids: Vec<&str> = file
        .iter()
        .map(|l| l["user_id"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no user has two lines");
    assert_eq!(
        unique,
        users.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        "every created user has a line"
    );
    for line in &file {
        let user = &users[line["user_id"].as_str().unwrap()];
        assert_eq!(line["email"], user["email"], "{line}");
        assert!(
            line["ticket"]
                .as_str()
                .is_some_and(|t| t.starts_with("https://")),
            "{line}"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&tickets).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the tickets file is private");
    }
    // A ticket URL is a secret: it is in the file and nowhere else the tool writes.
    for line in &file {
        let url = line["ticket"].as_str().unwrap();
        for (what, ran) in [("killed run", &killed), ("last run", &last)] {
            assert!(
                !contains(&ran.stdout, url) && !ran.stderr.contains(url),
                "a ticket URL in the {what}'s output"
            );
        }
        for file in files_under(dir.path()) {
            if file != tickets {
                assert!(
                    !contains(&std::fs::read(&file).unwrap(), url),
                    "a ticket URL in {}",
                    file.display()
                );
            }
        }
    }
    // The tenant made a ticket for every created user. A kill between the tenant's answer and
    // the line costs that user a second ticket (src/import/tickets.rs: at most IN_FLIGHT
    // users), the first of which expires unused.
    let counts = live.tenant.sandbox.ticket_counts();
    assert_eq!(
        counts.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        unique,
        "tickets only for the users created"
    );
    let asked: usize = counts.values().sum();
    let twice = asked - created as usize;
    assert!(
        twice <= auth0_bulk::import::tickets::IN_FLIGHT,
        "{twice} users got a second ticket ({asked_at_kill} asked before the kill, {at_kill} lines)"
    );
}

#[test]
fn tickets_through_the_job_engine_are_one_line_per_created_user_across_a_kill() {
    // The issue's own figure: a thousand created users, a thousand tickets.
    tickets_survive_a_kill(&["--engine", "job"], "tjob", 1_000);
}

#[test]
fn tickets_with_random_passwords_per_user_are_one_line_per_created_user_across_a_kill() {
    tickets_survive_a_kill(&["--engine", "api"], "tapi", 90);
}

// ---- dry run -----------------------------------------------------------------------------------

#[test]
fn a_job_dry_run_sends_no_job_and_shows_the_chunks_it_would_send() {
    let n = 150;
    let records = records(n, "dry");
    let live = tenant(2_000.0);
    let (dir, path) = input(&records);
    let before = files_under(dir.path());
    let ran = run(&mut job_import(
        &live,
        live.domain(),
        &path,
        &["--dry-run", "--job-file-bytes", "6000"],
    ));
    ran.expect_code(3);
    let summary = ran.summary();
    assert_eq!(summary["dry_run"], true);
    assert_adds_up(&summary);
    assert_eq!(count(&summary, "created"), good(n), "{summary}");

    // "Would send chunk 3: 17 users, 5873 bytes, to connection legacy-db."
    let shown: Vec<(u64, u64, String)> = ran
        .stderr
        .lines()
        .filter_map(|line| {
            let rest = line.split("Would send chunk ").nth(1)?;
            let words: Vec<&str> = rest.split_whitespace().collect();
            Some((
                words[1].parse().unwrap(),
                words[3].parse().unwrap(),
                words[7].trim_end_matches('.').to_string(),
            ))
        })
        .collect();
    assert!(shown.len() >= 4, "the chunks are shown:\n{}", ran.stderr);
    assert!(
        shown.iter().all(|(_, bytes, _)| *bytes <= 6000),
        "{shown:?}"
    );
    assert_eq!(
        shown.iter().map(|(users, _, _)| users).sum::<u64>(),
        good(n)
    );
    let connections: BTreeSet<&str> = shown.iter().map(|(_, _, c)| c.as_str()).collect();
    assert_eq!(connections, BTreeSet::from([DB, LEGACY]));

    let routes = routes(&live);
    assert!(!routes.contains_key(JOBS_POST), "no job sent: {routes:?}");
    assert!(!routes.contains_key("POST /api/v2/users"), "{routes:?}");
    assert_eq!(live.tenant.sandbox.user_count(), 0, "nothing created");
    assert_eq!(files_under(dir.path()), before, "a dry run writes no file");
}

// ---- configuration errors ----------------------------------------------------------------------

#[test]
fn job_engine_configuration_errors_exit_2_before_any_write() {
    let live = tenant(2_000.0);
    let (dir, _path) = input(&records(5, "config"));
    let cases: &[(&[&str], &str)] = &[
        (
            &["--engine", "job", "--password-field", "pw"],
            "--password-field with --engine job",
        ),
        (
            &[
                "--engine",
                "job",
                "--passwords",
                "random",
                "--connection",
                "nope",
            ],
            "--connection nope: the tenant has no connection of that name",
        ),
        (
            &[
                "--engine",
                "job",
                "--passwords",
                "random",
                "--connection",
                "google-oauth2",
            ],
            "database connections only",
        ),
        (
            &[
                "--engine",
                "job",
                "--passwords",
                "random",
                "--job-file-bytes",
                "10",
            ],
            "--job-file-bytes",
        ),
        (
            &["--engine", "job", "--passwords", "random", "--jobs", "3"],
            "--jobs",
        ),
        (
            &[
                "--engine",
                "job",
                "--passwords",
                "random",
                "--ticket-ttl",
                "60",
            ],
            "--tickets",
        ),
    ];
    for (args, says) in cases {
        assert_refused(&live, dir.path(), args, says);
    }

    // A tickets file an earlier import left, on a new import: its lines would be taken as
    // this import's.
    let tickets = dir.path().join("tickets.ndjson");
    std::fs::write(&tickets, "{\"user_id\":\"auth0|earlier\"}\n").unwrap();
    for engine in ["job", "api"] {
        assert_refused(
            &live,
            dir.path(),
            &[
                "--engine",
                engine,
                "--passwords",
                "random",
                "--tickets",
                tickets.to_str().unwrap(),
            ],
            "holds tickets of an earlier import",
        );
    }
    assert_eq!(live.tenant.sandbox.user_count(), 0);
}

#[test]
fn a_token_without_a_scope_the_run_needs_exits_2_naming_it_before_any_write() {
    let (dir, _path) = input(&records(5, "scopes"));
    let tickets = dir.path().join("tickets.ndjson");
    let tickets = tickets.to_str().unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("create:users", &["--engine", "job"]),
        ("read:connections", &["--engine", "job"]),
        ("read:users", &["--engine", "job"]),
        (
            "create:user_tickets",
            &["--engine", "job", "--tickets", tickets],
        ),
        (
            "create:user_tickets",
            &["--engine", "api", "--tickets", tickets],
        ),
    ];
    for (missing, args) in cases {
        let live = tenant_without(missing);
        let mut all = args.to_vec();
        all.extend(["--passwords", "random"]);
        assert_refused(&live, dir.path(), &all, &format!("lacks {missing}"));
        assert!(
            !routes(&live).contains_key(JOBS_POST),
            "{missing}: no job sent"
        );
        assert_eq!(live.tenant.sandbox.user_count(), 0, "{missing}");
    }
}

// ---- a job purged before the resumed run polls it ----------------------------------------------

#[test]
fn a_job_purged_before_the_resumed_run_polls_it_is_sent_again_and_its_users_count_as_created() {
    let n = 40;
    let records = records(n, "purged");
    // Jobs start held, and are forgotten a few seconds after they are made.
    let live = Live::start(SandboxOptions {
        job_rate: 2_000.0,
        hold_jobs: true,
        job_purge_after: Duration::from_secs(3),
        ..Default::default()
    });
    let (_dir, path) = input(&records);
    let state = beside(&path, ".state");
    let command = || job_import(&live, live.domain(), &path, &["--quiet"]);

    // The first run sends its chunks and learns their jobs, which wait: killed while polling.
    let running = Running::spawn(&mut command());
    wait_until(Duration::from_secs(60), "two jobs in the journal", || {
        open_chunks(&state)
            .values()
            .filter(|c| c.job.is_some())
            .count()
            == 2
    });
    running.kill();
    let jobs: Vec<String> = open_chunks(&state)
        .into_values()
        .filter_map(|c| c.job)
        .collect();

    // The jobs run, then the tenant forgets them.
    live.tenant.sandbox.release_jobs();
    wait_until(
        Duration::from_secs(30),
        "the jobs created the users",
        || live.tenant.sandbox.user_count() as u64 == good(n),
    );
    for job in &jobs {
        wait_until(Duration::from_secs(30), "the job purged", || {
            live.block_on(live.tenant.get(&format!("/jobs/{job}")))
                .status
                == 404
        });
    }
    let users = tenant_users(&live);
    live.tenant.sandbox.reset_stats();

    let last = run(&mut command());
    last.expect_code(3);
    let summary = last.summary();
    assert_adds_up(&summary);
    assert_eq!(summary["resumed"], true);
    assert_eq!(
        (count(&summary, "created"), count(&summary, "skipped")),
        (good(n), 0),
        "the purged jobs' users are ours: {summary}"
    );
    assert_eq!(
        tenant_users(&live),
        users,
        "no user created or changed again"
    );
    assert_eq!(live.tenant.sandbox.stats().writes.created, 0);
    let routes = routes(&live);
    assert_eq!(
        routes["GET /api/v2/jobs/{id}"].get(&404).copied(),
        Some(jobs.len() as u64),
        "each purged job was polled once: {routes:?}"
    );
    assert_eq!(
        routes[JOBS_POST].get(&202).copied(),
        Some(jobs.len() as u64),
        "each chunk was sent again: {routes:?}"
    );
    // Telling ours from somebody else's took one lookup per user, by id.
    assert_eq!(
        requests_of(&live, "GET /api/v2/users/{id}"),
        good(n),
        "{routes:?}"
    );
    let ledger = LedgerView::read(&state);
    assert!(ledger.outcomes.values().all(|o| o.len() == 1));
}

// ---- records the job refuses -------------------------------------------------------------------

#[test]
fn a_record_the_job_refuses_is_rejected_with_the_jobs_code_and_message() {
    let records = vec![
        json!({"email": "fine.1@example.com", "connection": DB}),
        // The import schema takes `username` only where the connection requires one.
        json!({"email": "named@example.com", "connection": DB, "username": "named"}),
        json!({"user_id": "twin-a", "email": "twin@example.com", "connection": DB}),
        // The same email as the line before, under another id, in the same users file.
        json!({"user_id": "twin-b", "email": "Twin@Example.com", "connection": DB}),
        json!({"email": "fine.2@example.com", "connection": LEGACY}),
    ];
    let live = tenant(2_000.0);
    let (dir, path) = input(&records);
    let ran = run(&mut job_import(&live, live.domain(), &path, &["--quiet"]));
    ran.expect_code(3);
    let summary = ran.summary();
    assert_adds_up(&summary);
    assert_eq!(
        (
            count(&summary, "created"),
            count(&summary, "skipped"),
            count(&summary, "rejected"),
        ),
        (3, 0, 2),
        "{summary}"
    );
    let rejects = rejects_by_line(&beside(&path, ".rejects.ndjson"));
    assert_eq!(
        rejects[&2],
        (
            "NOT_PASSED".to_string(),
            "Cannot set username for connection without requires_username".to_string(),
            Some("username".to_string())
        )
    );
    let (code, message, _) = &rejects[&4];
    assert_eq!(code, "DUPLICATED_USER");
    assert!(
        message.contains("A user with this email was already provided"),
        "{message}"
    );
    assert_eq!(rejects.len(), 2);
    let ids: BTreeSet<String> = tenant_users(&live).into_keys().collect();
    assert!(
        ids.contains("auth0|twin-a") && !ids.contains("auth0|twin-b"),
        "{ids:?}"
    );
    drop(dir);
}

/// Facts: Auth0 prefixes every id in a users file with `auth0|`, so a user exported as
/// `auth0|auth0|x` (made through the `auth0|auth0|` trap) is sent as `auth0|x` and comes back
/// as `auth0|auth0|x`: the ledger, the lookups and the tickets must use that id.
#[test]
fn a_user_id_with_the_prefix_twice_is_known_by_the_id_the_job_gives_it() {
    let records = vec![
        json!({"user_id": "auth0|auth0|trap1", "email": "trap@example.com", "connection": DB}),
    ];
    let live = tenant(2_000.0);
    let (dir, path) = input(&records);
    let tickets = dir.path().join("tickets.ndjson");
    let tickets_arg = tickets.to_str().unwrap();
    let ran = run(&mut job_import(
        &live,
        live.domain(),
        &path,
        &["--quiet", "--tickets", tickets_arg],
    ));
    ran.expect_code(0);
    assert!(tenant_users(&live).contains_key("auth0|auth0|trap1"));
    let lines = ticket_lines(&tickets);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["user_id"], "auth0|auth0|trap1", "{}", lines[0]);
    assert!(lines[0]["ticket"].is_string(), "{}", lines[0]);
    assert_eq!(ran.summary()["tickets"]["failed"], 0);
}

// ---- the job limit, failed and lost jobs, resuming with other tickets --------------------------

/// Sends a job of `users` to the default database connection as another client would.
fn job_from_elsewhere(live: &Live, users: &Value) -> String {
    live.block_on(async {
        let file = reqwest::multipart::Part::bytes(serde_json::to_vec(users).unwrap())
            .file_name("users.json")
            .mime_str("application/json")
            .unwrap();
        let form = reqwest::multipart::Form::new()
            .text("connection_id", connection_id(DB))
            .text("send_completion_email", "false")
            .part("users", file);
        let reply = live
            .tenant
            .http
            .post(live.tenant.url("/api/v2/jobs/users-imports"))
            .bearer_auth(&live.tenant.token)
            .multipart(form)
            .send()
            .await
            .expect("the job request is answered");
        assert_eq!(reply.status(), 202);
        let job: Value = reply.json().await.expect("a job");
        job["id"].as_str().expect("a job id").to_string()
    })
}

#[test]
fn a_third_job_refused_while_another_client_runs_two_is_waited_for_not_failed() {
    let live = Live::start(SandboxOptions {
        job_rate: 2_000.0,
        hold_jobs: true,
        ..Default::default()
    });
    for i in 0..2 {
        job_from_elsewhere(
            &live,
            &json!([{"email": format!("elsewhere{i}@example.com")}]),
        );
    }
    let records: Vec<Value> = records(40, "third")
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !is_bad(*i))
        .map(|(_, r)| r)
        .collect();
    let (_dir, path) = input(&records);
    let running = Running::spawn(&mut job_import(&live, live.domain(), &path, &[]));
    wait_until(
        Duration::from_secs(60),
        "the tenant refused a third job",
        || {
            routes(&live)
                .get(JOBS_POST)
                .is_some_and(|by| by.contains_key(&429))
        },
    );
    live.tenant.sandbox.release_jobs();
    let ran = running.wait();
    ran.expect_code(0);
    let summary = ran.summary();
    assert_eq!(
        count(&summary, "created"),
        records.len() as u64,
        "{summary}"
    );
    assert_eq!(count(&summary, "rejected"), 0, "{summary}");
    assert!(
        ran.stderr.contains("runs two import jobs already; waiting"),
        "{}",
        ran.stderr
    );
    assert_eq!(
        read_text(&beside(&path, ".rejects.ndjson")),
        "",
        "no record paid for the limit"
    );
    assert_eq!(live.tenant.sandbox.user_count(), records.len() + 2);
}

#[test]
fn a_job_that_fails_part_way_counts_the_users_it_made_and_rejects_the_rest_to_import_again() {
    // 40 users at 10 a second take 4 s; the tenant stops a job after 1 s.
    let live = Live::start(SandboxOptions {
        job_rate: 10.0,
        job_timeout: Duration::from_secs(1),
        ..Default::default()
    });
    let records: Vec<Value> = (0..40)
        .map(|i| json!({"email": format!("slow{i}@example.com"), "connection": DB}))
        .collect();
    let (_dir, path) = input(&records);
    let ran = run(&mut job_import(&live, live.domain(), &path, &["--quiet"]));
    ran.expect_code(3);
    let summary = ran.summary();
    assert_adds_up(&summary);
    let (created, rejected) = (count(&summary, "created"), count(&summary, "rejected"));
    assert!(created >= 1 && rejected >= 1, "{summary}");
    assert_eq!(created + rejected, 40, "{summary}");

    // The users the job made are the records counted created; the others are in the rejects
    // file, to import again.
    let tenant: BTreeSet<String> = tenant_users(&live)
        .values()
        .map(|u| u["email"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tenant.len() as u64, created);
    let rejects = read_ndjson(&beside(&path, ".rejects.ndjson"));
    assert_eq!(rejects.len() as u64, rejected);
    for entry in &rejects {
        assert_eq!(entry["_error"]["code"], "job_failed", "{entry:?}");
        assert!(
            entry["_error"]["message"]
                .as_str()
                .unwrap()
                .contains("import it again"),
            "{entry:?}"
        );
        let email = entry["email"].as_str().unwrap();
        assert!(!tenant.contains(email), "{email} was rejected yet created");
    }
    let ledger = LedgerView::read(&beside(&path, ".state"));
    assert_eq!(ledger.tally().get("created").copied(), Some(created));
}

/// The tickets file is the tickets stage's cursor and the ledger says who gets one: an import
/// started without `--tickets` cannot give tickets to the users its earlier runs made, nor
/// the reverse, so an unfinished import is resumed only with the `--tickets` it began with.
#[test]
fn an_unfinished_import_resumed_with_other_tickets_is_refused_naming_the_flag() {
    let records = records(120, "resume-tickets");
    let (dir, path) = input(&records);
    let state = beside(&path, ".state");
    let tickets = dir.path().join("tickets.ndjson");
    let tickets = tickets.to_str().unwrap();
    let with = ["--quiet", "--job-file-bytes", "4000", "--tickets", tickets];
    let without = ["--quiet", "--job-file-bytes", "4000"];
    for (first, then) in [(&without[..], &with[..]), (&with[..], &without[..])] {
        // A run killed once some users are created, not all.
        let live = tenant(200.0);
        let mut running = Running::spawn(&mut job_import(&live, live.domain(), &path, first));
        let created = || LedgerView::read(&state).tally().get("created").copied();
        wait_until(Duration::from_secs(60), "some users created", || {
            created().unwrap_or(0) >= 20 || !running.is_running()
        });
        assert!(running.is_running(), "the run was killed before it ended");
        running.kill();
        let ran = run(&mut job_import(&live, live.domain(), &path, then));
        let lines = std::fs::read_to_string(tickets).map_or(0, |t| t.lines().count());
        assert_eq!(
            ran.code(),
            Some(2),
            "{first:?} then {then:?}: {} users created by the first run; {lines} ticket lines \
             for the {} created: {}",
            created().unwrap_or(0),
            good(records.len()),
            ran.stderr
        );
        assert!(
            ran.stderr.contains("`--tickets` changed from"),
            "{first:?} then {then:?}: {}",
            ran.stderr
        );
        // The import is finished as it was begun.
        run(&mut job_import(&live, live.domain(), &path, first)).expect_code(3);
        let _ = std::fs::remove_file(tickets);
        std::fs::remove_dir_all(&state).unwrap();
    }
}

/// A job request whose answer is lost in transit (the tenant made the job, then a 502 came
/// back) is sent again by the client's retries: two jobs of one chunk. The users the first
/// made meet the second as conflicts, and are ours.
#[test]
fn a_job_whose_answer_is_lost_in_transit_is_sent_again_and_creates_each_user_once() {
    let n = 200;
    let records = records(n, "lost");
    let live = tenant(1_000.0);
    let watch = Watch::start(&live);
    watch.lose(3);
    let (_dir, path) = input(&records);
    let ran = run(&mut job_import(
        &live,
        watch.domain(),
        &path,
        &["--quiet", "--job-file-bytes", "6000"],
    ));
    ran.expect_code(3);
    let summary = ran.summary();
    assert_adds_up(&summary);
    assert_eq!(
        (
            count(&summary, "created"),
            count(&summary, "skipped"),
            count(&summary, "rejected")
        ),
        (good(n), 0, n as u64 - good(n)),
        "the lost jobs' users are ours: {summary}"
    );
    assert!(count(&summary, "retries") >= 3, "{summary}");
    // Three chunks were each made into two jobs.
    let files = watch.accepted_files();
    let distinct: BTreeSet<&Vec<u8>> = files.iter().map(|(_, f)| f).collect();
    assert_eq!(files.len(), distinct.len() + 3, "three files sent twice");
    assert_same_users(
        &tenant_as_expected(&live),
        &expected_users(&records),
        "the tenant against the good records",
    );
    assert_eq!(live.tenant.sandbox.stats().writes.created, good(n));
}
