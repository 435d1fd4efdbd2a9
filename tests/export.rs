//! `auth0-bulk export` end to end: the binary, run as a child process, against a sandbox tenant
//! served in-process. Each test names the behaviour it protects; the numbers that matter
//! (requests, 429s) are printed for `--nocapture` runs.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use auth0_bulk::sandbox::SandboxOptions;
use serde_json::{Value, json};

use crate::support::child::{self, Ran, Running, run, wait_until};
use crate::support::exports::{
    self, User, checkpoint, clean_export, decode_csv, expected_export, export, ndjson_users, parse,
    read, read_text, slow_tenant, state_of,
};
use crate::support::files_under;
use crate::support::live::{Gate, Live, line_key, user_id};
use crate::support::tenant::encode;

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/users.ndjson");

// ---- helpers ----------------------------------------------------------------------------------

fn has_connection(user: &User, connection: &str) -> bool {
    user.get("identities")
        .and_then(Value::as_array)
        .is_some_and(|ids| ids.iter().any(|i| i["connection"] == connection))
}

fn plan_is(user: &User, plan: &str) -> bool {
    user.get("app_metadata")
        .is_some_and(|am| am.get("plan") == Some(&Value::from(plan)))
}

/// The request budget for `users`: 1.15 x ceil(users / 100), and the latest-user probe the
/// walk sends beside its first page (wasted when the tenant is small).
fn budget(users: u64) -> u64 {
    users.div_ceil(100) * 115 / 100 + 1
}

// ---- 1. complete past the cap -----------------------------------------------------------------

#[test]
fn every_user_of_a_tenant_past_the_cap_is_exported_once_as_the_api_returns_it() {
    let live = Live::generated(25_000);
    let truth = live.dump_lines();
    assert_eq!(truth.len(), 25_000);
    // The tenant holds what makes the walk hard: 1,500 users in one millisecond, and
    // same-second bursts larger than the 1,000 cap.
    let mut per_ms: HashMap<String, usize> = HashMap::new();
    let mut per_second: HashMap<String, usize> = HashMap::new();
    for line in truth.values() {
        let created = line_key(line).0;
        *per_second.entry(created[..19].to_string()).or_default() += 1;
        *per_ms.entry(created).or_default() += 1;
    }
    assert_eq!(per_ms.values().max(), Some(&1500));
    assert!(per_second.values().filter(|&&n| n > 1000).count() >= 3);

    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson");
    let ran = run(export(&live)
        .arg("--output")
        .arg(&output)
        .args(["--json", "--quiet"]));
    ran.expect_code(0);
    let text = read_text(&output);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    assert_eq!(lines.len(), 25_000, "one line per user");

    let mut seen = HashSet::new();
    let mut keys = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        let key = line_key(line);
        let id = key.1.clone();
        let expected = truth
            .get(&id)
            .unwrap_or_else(|| panic!("line {}: {id} is not in the tenant", index + 1));
        assert_eq!(
            line,
            expected,
            "line {}: {id} differs from the sandbox's record",
            index + 1
        );
        assert!(seen.insert(id.clone()), "line {}: {id} again", index + 1);
        keys.push(key);
    }
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "lines are sorted by (created_at, user_id)"
    );

    let summary = ran.summary();
    assert_eq!(summary["users"], 25_000);
    assert_eq!(summary["completed"], true);
    let sent = live.api_requests().len() as u64;
    let budget = budget(25_000);
    eprintln!(
        "25,000 users: {sent} API requests (budget {budget}), summary {summary}, {:.1}s",
        ran.elapsed.as_secs_f64()
    );
    assert_eq!(
        summary["requests"], sent,
        "the summary counts every request"
    );
    assert!(
        sent <= budget,
        "{sent} requests for 25,000 users, more than 1.15 x 250"
    );
}

// ---- 2. crash safety --------------------------------------------------------------------------
// SIGKILL at many seeded points, and two runs at once: `crash.rs`.

#[test]
fn an_interrupted_export_says_how_to_resume_and_the_rerun_completes_identically() {
    let live = slow_tenant();
    let clean_dir = tempfile::tempdir().unwrap();
    let (clean, _) = clean_export(&live, clean_dir.path(), "users.ndjson", &[]);

    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson");
    let state = state_of(&output);
    let running = Running::spawn(export(&live).arg("--output").arg(&output));
    wait_until(Duration::from_secs(60), "the first saved users", || {
        checkpoint(&state).is_some_and(|c| c["users"].as_u64() > Some(0))
    });
    running.interrupt();
    let interrupted = running.wait();
    interrupted.expect_code(130);
    assert!(
        interrupted
            .stderr
            .contains("Run the same command again to resume"),
        "{}",
        interrupted.stderr
    );
    assert!(
        !output.exists(),
        "an interrupted export is not in place yet"
    );
    let saved = checkpoint(&state).expect("the checkpoint is saved");
    assert_eq!(saved["completed"], false);

    let rerun = run(export(&live).arg("--output").arg(&output).arg("--json"));
    rerun.expect_code(0);
    assert_eq!(rerun.summary()["resumed"], true);
    assert!(
        read(&output) == clean,
        "the resumed file equals a clean run's"
    );
}

/// `--gzip-level` changes the gzip bytes, never what they hold; a run interrupted and resumed
/// at one level ends byte-identical to a clean run at that level (one level per file), and
/// a resume at another level is refused.
#[test]
fn a_gzip_level_changes_the_bytes_not_the_users_and_a_resume_keeps_its_bytes() {
    let live = slow_tenant();
    let clean_dir = tempfile::tempdir().unwrap();
    let (fast, _) = clean_export(&live, clean_dir.path(), "fast.csv.gz", &[]);
    let level = ["--gzip-level", "6"];
    let (small, _) = clean_export(&live, clean_dir.path(), "small.csv.gz", &level);
    assert_ne!(fast, small, "another level, other bytes");
    assert!(
        small.len() < fast.len(),
        "level 6 is smaller than the default 1"
    );
    assert_eq!(exports::gunzip(&fast), exports::gunzip(&small));

    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.csv.gz");
    let state = state_of(&output);
    let running = Running::spawn(export(&live).arg("--output").arg(&output).args(level));
    wait_until(Duration::from_secs(60), "the first saved users", || {
        checkpoint(&state).is_some_and(|c| c["users"].as_u64() > Some(0))
    });
    running.interrupt();
    running.wait().expect_code(130);
    // Another level would end as a file of two levels, a clean run's at neither: refused.
    let other = run(export(&live)
        .arg("--output")
        .arg(&output)
        .args(["--gzip-level", "9"]));
    other.expect_code(2);
    assert!(
        other
            .stderr
            .contains("`--gzip-level` changed from `6` to `9`"),
        "{}",
        other.stderr
    );
    let rerun = run(export(&live)
        .arg("--output")
        .arg(&output)
        .args(level)
        .arg("--json"));
    rerun.expect_code(0);
    assert_eq!(rerun.summary()["resumed"], true);
    assert!(
        read(&output) == small,
        "the resumed file equals a clean run's at its level"
    );
    if let Ok(status) = std::process::Command::new("gzip")
        .arg("-t")
        .arg(&output)
        .status()
    {
        assert!(status.success(), "gzip -t accepts the resumed file");
    }
}

/// A gzip level out of 1-9, not a number, misspelt, or for an output that is not gzipped is
/// refused with exit 2 before any request.
#[test]
fn a_bad_gzip_level_is_refused_before_any_request() {
    let live = Live::generated(10);
    let dir = tempfile::tempdir().unwrap();
    for (name, args, says) in [
        (
            "u.ndjson.gz",
            &["--gzip-level", "0"][..],
            "0 is not in 1..=9",
        ),
        ("u.ndjson.gz", &["--gzip-level", "10"], "10 is not in 1..=9"),
        ("u.ndjson.gz", &["--gzip-level", "fast"], "invalid digit"),
        (
            "u.ndjson.gz",
            &["--gzip-levle", "3"],
            "a similar argument exists: '--gzip-level'",
        ),
        (
            "u.ndjson",
            &["--gzip-level", "3"],
            "--gzip-level applies to a gzipped output",
        ),
    ] {
        let ran = run(export(&live)
            .arg("--output")
            .arg(dir.path().join(name))
            .args(args));
        ran.expect_code(2);
        assert!(ran.stderr.contains(says), "{args:?}: {}", ran.stderr);
    }
    assert!(live.api_requests().is_empty());
}

#[test]
fn a_flattened_csv_export_killed_in_its_second_pass_resumes() {
    let live = Live::generated(4_000);
    let clean_dir = tempfile::tempdir().unwrap();
    let flatten = ["--csv-metadata", "flatten"];
    let (clean, _) = clean_export(&live, clean_dir.path(), "users.csv", &flatten);

    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.csv");
    // The output's .partial file appears only when the second pass starts.
    let partial = dir.path().join("users.csv.partial");
    let mut running = Running::spawn(export(&live).arg("--output").arg(&output).args(flatten));
    wait_until(Duration::from_secs(60), "the second pass", || {
        partial.exists() || !running.is_running()
    });
    let killed = running.kill();
    assert_eq!(
        killed.code(),
        None,
        "killed in the second pass, not finished"
    );
    let rerun = run(export(&live).arg("--output").arg(&output).args(flatten));
    rerun.expect_code(0);
    assert!(
        read(&output) == clean,
        "the resumed CSV equals a clean run's"
    );
}

#[test]
fn an_export_that_crashed_between_the_rename_and_the_last_checkpoint_resumes() {
    let live = Live::generated(1_500);
    let dir = tempfile::tempdir().unwrap();
    let (clean, _) = clean_export(&live, dir.path(), "users.ndjson", &[]);
    // The crash is simulated by putting back the checkpoint that was on disk at that moment:
    // the one saved after the last batch (cursor done, not completed, no earlier run).
    let state = state_of(&dir.path().join("users.ndjson"));
    let mut saved = checkpoint(&state).expect("a checkpoint");
    assert_eq!(saved["cursor"], Value::Null);
    saved["completed"] = false.into();
    saved["last_completed_upper"] = Value::Null;
    std::fs::write(state.join("export.json"), saved.to_string()).unwrap();

    let rerun = run(export(&live)
        .arg("--output")
        .arg(dir.path().join("users.ndjson")));
    rerun.expect_code(0);
    assert!(read(&dir.path().join("users.ndjson")) == clean);
}

// ---- 3. faults --------------------------------------------------------------------------------
// Every fault at once, a tenant down past the retry budget, full disks, damaged state: `faults.rs`.

#[test]
fn an_export_through_a_faulty_tenant_completes_with_the_bytes_of_a_healthy_one() {
    let tenant = |fault_rate| {
        Live::start(SandboxOptions {
            generate: 3_000,
            gen_seed: 7,
            fault_rate,
            fault_seed: 11,
            ..Default::default()
        })
    };
    let healthy = tenant(0.0);
    let faulty = tenant(0.1);
    let dir = tempfile::tempdir().unwrap();
    let (expected, _) = clean_export(&healthy, dir.path(), "healthy.ndjson", &[]);
    let (got, ran) = clean_export(&faulty, dir.path(), "faulty.ndjson", &["--json"]);
    let faults = faulty.tenant.sandbox.stats().faults;
    eprintln!("fault rate 0.1: {faults} faults, summary {}", ran.summary());
    assert!(faults > 0, "the tenant did fail some requests");
    assert!(ran.summary()["retries"].as_u64() >= Some(faults));
    assert!(got == expected, "the faulty tenant's export differs");
}

// ---- 4. the tenant's rate limit and the cost of planning --------------------------------------

/// With the default `--rate auto` the export learns the tenant's limit from its headers and
/// keeps under it. (No timing assertion: elapsed time belongs to the benchmarks.)
#[test]
fn a_rate_limited_tenant_is_read_at_its_pace_with_few_429s() {
    let live = Live::start(SandboxOptions {
        generate: 5_000,
        rate: Some(10.0),
        burst: Some(10),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson");
    let ran = run(export(&live).arg("--output").arg(&output).arg("--json"));
    let requests = live.api_requests();
    let throttled = requests.iter().filter(|r| r.status == 429).count();
    eprintln!(
        "rate 10/s, burst 10, 5,000 users: exit {:?}, {} requests, {throttled} answered 429 \
         ({:.1}%), {:.1}s; stderr tail: {}",
        ran.code(),
        requests.len(),
        100.0 * throttled as f64 / requests.len().max(1) as f64,
        ran.elapsed.as_secs_f64(),
        ran.stderr.lines().last().unwrap_or_default()
    );
    ran.expect_code(0);
    assert!(
        read_text(&output) == expected_export(&live, |_| true),
        "every user, once"
    );
    assert!(
        throttled * 50 <= requests.len(),
        "{throttled} of {} requests were answered 429 (more than 2%)",
        requests.len()
    );
    assert!(
        requests.len() as u64 <= budget(5_000),
        "{} requests, more than 1.15 x 50 + 1",
        requests.len()
    );
    assert_eq!(ran.summary()["throttled"], throttled as u64);
}

/// Windows are planned for about one request per 100 users even on a small tenant, where the
/// same-millisecond cluster (half the users, up to 1,500) weighs most.
#[test]
fn the_walk_costs_little_more_than_one_request_per_100_users_on_a_small_clustered_tenant() {
    let mut over = Vec::new();
    for users in [2_000, 3_000, 4_000] {
        let live = Live::generated(users);
        let dir = tempfile::tempdir().unwrap();
        let (_, ran) = clean_export(&live, dir.path(), "users.ndjson", &["--json"]);
        let sent = live.api_requests().len() as u64;
        eprintln!(
            "{users} clustered users: {sent} requests, summary {}",
            ran.summary()
        );
        if sent > budget(users as u64) {
            over.push(format!(
                "{users} users: {sent} requests (budget {})",
                budget(users as u64)
            ));
        }
    }
    assert!(over.is_empty(), "over the budget: {over:?}");
}

// ---- 5. CSV -----------------------------------------------------------------------------------

/// The sample users by user_id.
fn samples() -> HashMap<String, User> {
    let text = std::fs::read_to_string(SAMPLES).expect("samples/users.ndjson");
    ndjson_users(&text)
        .into_iter()
        .map(|user| (user_id(&user).to_string(), user))
        .collect()
}

/// Cells of the rows (not the header) that a spreadsheet would run as a formula.
fn formula_cells(bytes: &[u8]) -> usize {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    reader
        .records()
        .map(|record| {
            let record = record.expect("a CSV record");
            record
                .iter()
                .filter(|cell| cell.starts_with(['=', '+', '-', '@', '\t', '\r']))
                .count()
        })
        .sum()
}

#[test]
fn csv_exports_in_both_metadata_modes_read_back_to_the_same_json() {
    let live = Live::start(SandboxOptions {
        seed: vec![SAMPLES.into()],
        ..Default::default()
    });
    let samples = samples();
    assert_eq!(samples.len(), 500);
    let dir = tempfile::tempdir().unwrap();
    for mode in ["json", "flatten"] {
        for escape in [false, true] {
            let name = format!("users-{mode}-{escape}.csv");
            let mut args = vec!["--csv-metadata", mode];
            if escape {
                args.push("--csv-escape-formulas");
            }
            let (bytes, _) = clean_export(&live, dir.path(), &name, &args);
            let decoded = decode_csv(&bytes, escape);
            assert_eq!(decoded.len(), 500, "{name}: a row per user");
            let mut seen = HashSet::new();
            for user in &decoded {
                let id = user_id(user);
                assert!(seen.insert(id.to_string()), "{name}: {id} twice");
                let sample = &samples[id];
                for meta in ["user_metadata", "app_metadata"] {
                    assert_eq!(
                        user.get(meta),
                        sample.get(meta),
                        "{name}: {id}'s {meta} changed"
                    );
                }
                assert_eq!(user, sample, "{name}: {id} changed");
            }
            let formulas = formula_cells(&bytes);
            if escape {
                assert_eq!(formulas, 0, "{name}: a formula-like cell was left as it is");
            } else if mode == "flatten" {
                assert!(
                    formulas > 0,
                    "{name}: the samples hold formula-like strings"
                );
            }
        }
    }
}

// ---- 6. incremental exports -------------------------------------------------------------------

#[test]
fn since_last_exports_only_the_users_updated_after_the_previous_run_started() {
    let live = Live::start(SandboxOptions {
        generate: 1_500,
        latency: Duration::from_millis(20),
        ..Default::default()
    });
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let dump = live.dump_lines();
    assert!(
        dump.values()
            .all(|line| parse(line)["updated_at"].as_str() < Some(now.as_str())),
        "every generated user was updated before now"
    );
    let mut ids: Vec<&String> = dump.keys().collect();
    ids.sort();
    let (patched, during) = (
        [ids[10].clone(), ids[700].clone(), ids[1400].clone()],
        ids[42].clone(),
    );
    let patch = |id: &str, n: u64| {
        let reply = live.block_on(live.tenant.patch(
            &format!("/users/{}", encode(id)),
            &json!({"user_metadata": {"nightly": n}}),
        ));
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    };

    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("nightly.ndjson");
    let state = dir.path().join("nightly.state");
    let nightly = || {
        let mut command = export(&live);
        command
            .arg("--output")
            .arg(&output)
            .arg("--state")
            .arg(&state)
            .args(["--since", "last", "--index-lag", "0", "--json"]);
        command
    };
    let exported_ids = || -> Vec<String> {
        ndjson_users(&read_text(&output))
            .iter()
            .map(|u| user_id(u).to_string())
            .collect()
    };

    // The first run has no mark: it exports everyone.
    let first = run(&mut nightly());
    first.expect_code(0);
    assert_eq!(first.summary()["users"], 1_500);
    assert!(
        read_text(&output) == expected_export(&live, |_| true),
        "everyone"
    );

    // Three users change between the runs; a fourth while the second run reads.
    for (n, id) in patched.iter().enumerate() {
        patch(id, n as u64);
    }
    let second = Running::spawn(&mut nightly());
    wait_until(
        Duration::from_secs(60),
        "the second run's checkpoint",
        || checkpoint(&state).is_some_and(|c| c["completed"] == false),
    );
    patch(&during, 99);
    let second = second.wait();
    second.expect_code(0);
    let mut got = exported_ids();
    got.retain(|id| *id != during);
    got.sort();
    let mut want = patched.to_vec();
    want.sort();
    assert_eq!(
        got, want,
        "the second run exports the users changed since the first"
    );
    let truth = live.dump_lines();
    for line in read_text(&output).split_inclusive('\n') {
        let id = line_key(line).1;
        if id != during {
            assert_eq!(line, truth[&id], "{id} as it is now");
        }
    }

    // The third run starts from the second's start: the user changed during the second run
    // comes again (a change never falls between two runs), the three others do not.
    let third = run(&mut nightly());
    third.expect_code(0);
    assert_eq!(exported_ids(), std::slice::from_ref(&during));
    assert_eq!(read_text(&output), truth[&during]);

    // Nothing changed since: nothing to export.
    let fourth = run(&mut nightly());
    fourth.expect_code(0);
    assert_eq!(fourth.summary()["users"], 0);
    assert_eq!(read_text(&output), "");
}

// ---- 7. selection and shape -------------------------------------------------------------------

/// The sample users plus generated ones: several connections and plans, windows past the cap.
fn mixed_tenant() -> Live {
    Live::start(SandboxOptions {
        seed: vec![SAMPLES.into()],
        generate: 2_500,
        ..Default::default()
    })
}

fn samples_tenant() -> Live {
    Live::start(SandboxOptions {
        seed: vec![SAMPLES.into()],
        ..Default::default()
    })
}

/// Every user in export order, each reshaped by `shape`, as NDJSON.
fn expected_shaped(live: &Live, shape: impl Fn(User) -> User) -> String {
    expected_export(live, |_| true)
        .lines()
        .map(|line| {
            let mut text = serde_json::to_string(&shape(parse(line))).unwrap();
            text.push('\n');
            text
        })
        .collect()
}

#[test]
fn a_query_exports_exactly_the_users_it_matches() {
    let live = mixed_tenant();
    let dir = tempfile::tempdir().unwrap();
    let query = ["--query", r#"app_metadata.plan:"pro""#];
    let (bytes, _) = clean_export(&live, dir.path(), "pro.ndjson", &query);
    let expected = expected_export(&live, |u| plan_is(u, "pro"));
    assert!(
        expected.lines().count() > 500,
        "the tenant has many pro users"
    );
    assert!(
        String::from_utf8(bytes).unwrap() == expected,
        "the pro users, and only them"
    );
}

#[test]
fn a_connection_exports_exactly_the_users_with_an_identity_in_it() {
    let live = mixed_tenant();
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _) = clean_export(
        &live,
        dir.path(),
        "legacy.ndjson",
        &["--connection", "legacy-db"],
    );
    let expected = expected_export(&live, |u| has_connection(u, "legacy-db"));
    assert!(expected.lines().count() > 300);
    assert!(
        String::from_utf8(bytes).unwrap() == expected,
        "the legacy-db users, and only them"
    );
}

#[test]
fn fields_keep_only_the_named_root_keys() {
    let live = samples_tenant();
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _) = clean_export(
        &live,
        dir.path(),
        "ids.ndjson",
        &["--fields", "user_id,email"],
    );
    let text = String::from_utf8(bytes).unwrap();
    for user in ndjson_users(&text) {
        let keys: Vec<&str> = user.keys().map(String::as_str).collect();
        assert!(
            keys == ["user_id", "email"] || keys == ["email", "user_id"] || keys == ["user_id"],
            "{keys:?}"
        );
    }
    let expected = expected_shaped(&live, |user| {
        user.into_iter()
            .filter(|(k, _)| k == "user_id" || k == "email")
            .collect()
    });
    assert_eq!(ndjson_users(&text), ndjson_users(&expected));
}

#[test]
fn exclude_fields_leave_out_only_the_named_root_keys() {
    let live = samples_tenant();
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _) = clean_export(
        &live,
        dir.path(),
        "x.ndjson",
        &["--exclude-fields", "identities"],
    );
    let expected = expected_shaped(&live, |user| {
        user.into_iter()
            .filter(|(k, _)| k != "identities")
            .collect()
    });
    assert!(
        String::from_utf8(bytes).unwrap() == expected,
        "each user without identities"
    );
}

#[test]
fn rename_changes_a_root_key_in_place() {
    let live = samples_tenant();
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _) = clean_export(
        &live,
        dir.path(),
        "r.ndjson",
        &["--rename", "app_metadata=metadata"],
    );
    let expected = expected_shaped(&live, |user| {
        user.into_iter()
            .map(|(k, v)| {
                if k == "app_metadata" {
                    ("metadata".into(), v)
                } else {
                    (k, v)
                }
            })
            .collect()
    });
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains(r#""metadata":{"#));
    assert!(
        text == expected,
        "app_metadata renamed to metadata, in its place"
    );
}

#[test]
fn a_user_list_exports_those_users_by_id_and_email_and_exit_3_names_the_unknown_one() {
    let live = Live::generated(1_500);
    let dump = live.dump_lines();
    let mut ids: Vec<&String> = dump.keys().collect();
    ids.sort();
    let email_of = |id: &str| parse(&dump[id])["email"].as_str().unwrap().to_string();
    let unknown = "auth0|ffffffffffffffffffffffff";
    let listed = [
        ids[3].clone(),
        email_of(ids[900]),
        unknown.to_string(),
        ids[1200].clone(),
        String::new(),
        "# a comment".to_string(),
        email_of(ids[17]),
    ];
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("users.txt");
    std::fs::write(&list, listed.join("\n") + "\n").unwrap();
    let output = dir.path().join("listed.ndjson");
    let ran = run(export(&live)
        .arg("--output")
        .arg(&output)
        .arg("--users")
        .arg(&list)
        .arg("--json"));
    ran.expect_code(3);
    assert!(
        ran.stderr.contains(unknown),
        "the unknown user is named:\n{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("not found"), "{}", ran.stderr);
    assert_eq!(ran.summary()["not_found"], 1);
    // In the list's order, each as the API returns it.
    let expected: String = [ids[3], ids[900], ids[1200], ids[17]]
        .iter()
        .map(|id| dump[*id].clone())
        .collect();
    assert_eq!(read_text(&output), expected);
}

#[test]
fn output_dash_writes_the_ndjson_to_stdout_and_nothing_to_disk() {
    let live = samples_tenant();
    let cwd = tempfile::tempdir().unwrap();
    let ran = run(export(&live)
        .args(["--output", "-", "--json"])
        .current_dir(cwd.path()));
    ran.expect_code(0);
    assert!(
        ran.stdout_text() == expected_export(&live, |_| true),
        "stdout holds exactly the export"
    );
    let summary = ran.stderr.lines().last().expect("the summary on stderr");
    let summary: Value = serde_json::from_str(summary).expect("the --json summary");
    assert_eq!(summary["users"], 500);
    let left: Vec<_> = std::fs::read_dir(cwd.path()).unwrap().collect();
    assert!(left.is_empty(), "no state or file written: {left:?}");
}

// ---- 8. safety and usage ----------------------------------------------------------------------

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn the_output_and_the_run_state_are_private_to_their_owner() {
    let live = samples_tenant();
    let dir = tempfile::tempdir().unwrap();
    for name in ["users.ndjson", "users.csv.gz"] {
        let args: &[&str] = if name.ends_with(".csv.gz") {
            &["--csv-metadata", "flatten"]
        } else {
            &[]
        };
        clean_export(&live, dir.path(), name, args);
        let output = dir.path().join(name);
        assert_eq!(mode(&output), 0o600, "{name}");
        let state = state_of(&output);
        assert_eq!(mode(&state), 0o700, "{}", state.display());
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&state).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            files.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
        files.sort();
        // The flattened CSV's first pass (user data) is gone once the CSV is written.
        assert_eq!(files, ["export.json", "lock"], "{name}");
    }
}

fn assert_secret_absent(secret: &str, ran: &Ran, dir: &Path) {
    assert!(!ran.stderr.contains(secret), "the secret is on stderr");
    assert!(
        !ran.stdout_text().contains(secret),
        "the secret is on stdout"
    );
    for file in files_under(dir) {
        let bytes = read(&file);
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret is in {}",
            file.display()
        );
    }
}

#[test]
fn the_client_secret_never_appears_in_output_logs_or_state() {
    let secret = "Sup3r-S3cret-Value-0123456789-abcdefghijklmnopqrstuvwxyz";
    let live = Live::start(SandboxOptions {
        seed: vec![SAMPLES.into()],
        client_secret: Some(secret.into()),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();

    // A successful run, with every log line on (-vv: trace).
    let ok = run(export(&live)
        .arg("--output")
        .arg(dir.path().join("ok.ndjson"))
        .args(["-vv", "--json"]));
    ok.expect_code(0);
    assert!(ok.stderr.contains(live.domain()), "the target is printed");
    assert!(
        ok.stderr.contains(live.client_id()),
        "the client id is printed"
    );
    assert_secret_absent(secret, &ok, dir.path());

    // A tenant that goes down: exit 1.
    let gate = Gate::start(&live);
    gate.go_down();
    let down = run(child::export(gate.domain(), live.client_id(), secret)
        .arg("--output")
        .arg(dir.path().join("down.ndjson"))
        .arg("-vv"));
    down.expect_code(1);
    assert_secret_absent(secret, &down, dir.path());

    // A secret the tenant refuses: exit 2, and the refused secret is not echoed either.
    let wrong = "Wr0ng-S3cret-Value-0123456789-abcdefghijklmnopqrstuvwxyz";
    let refused = run(child::export(live.domain(), live.client_id(), wrong)
        .arg("--output")
        .arg(dir.path().join("refused.ndjson"))
        .arg("-vv"));
    refused.expect_code(2);
    assert_secret_absent(wrong, &refused, dir.path());
    assert_secret_absent(secret, &refused, dir.path());
}

#[test]
fn a_plain_http_domain_that_is_not_loopback_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let ran = run(child::export("http://example.com", "id", "secret")
        .arg("--output")
        .arg(dir.path().join("users.ndjson")));
    ran.expect_code(2);
    assert!(ran.stderr.contains("loopback"), "{}", ran.stderr);
    assert!(ran.stderr.contains("https://"), "{}", ran.stderr);
    assert!(files_under(dir.path()).is_empty(), "nothing written");
}

#[test]
fn missing_credentials_are_refused_before_any_request() {
    let live = samples_tenant();
    let before = live.tenant.sandbox.requests().len();
    let dir = tempfile::tempdir().unwrap();
    let ran = run(child::binary()
        .arg("export")
        .args(["--domain", live.domain()])
        .arg("--output")
        .arg(dir.path().join("users.ndjson")));
    ran.expect_code(2);
    assert!(ran.stderr.contains("AUTH0_CLIENT_ID"), "{}", ran.stderr);
    let only_id = run(child::binary()
        .arg("export")
        .args(["--domain", live.domain(), "--client-id", live.client_id()])
        .arg("--output")
        .arg(dir.path().join("users.ndjson")));
    only_id.expect_code(2);
    assert!(
        only_id.stderr.contains("AUTH0_CLIENT_SECRET"),
        "{}",
        only_id.stderr
    );
    assert_eq!(
        live.tenant.sandbox.requests().len(),
        before,
        "no request reached the tenant"
    );
    assert!(files_under(dir.path()).is_empty(), "nothing written");
}

#[test]
fn a_wrong_client_secret_is_refused_with_exit_2_and_no_api_request() {
    let live = samples_tenant();
    let dir = tempfile::tempdir().unwrap();
    let ran = run(
        child::export(live.domain(), live.client_id(), "not-the-secret")
            .arg("--output")
            .arg(dir.path().join("users.ndjson")),
    );
    ran.expect_code(2);
    assert!(ran.stderr.contains("401"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("check the client id, the secret"),
        "{}",
        ran.stderr
    );
    assert!(
        live.api_requests().is_empty(),
        "no API request without a token"
    );
    assert!(!dir.path().join("users.ndjson").exists());
}

/// Issue 10, item 8: the state of another export is explained option by option, in words,
/// never as a dump of internal structs.
#[test]
fn an_unfinished_state_of_another_export_is_refused_with_exit_2_pointing_to_fresh() {
    let live = slow_tenant();
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson");
    let state = state_of(&output);
    let pro = ["--query", r#"app_metadata.plan:"pro""#];
    let free = ["--query", r#"app_metadata.plan:"free""#];
    let running = Running::spawn(export(&live).arg("--output").arg(&output).args(pro));
    wait_until(Duration::from_secs(60), "the checkpoint", || {
        checkpoint(&state).is_some()
    });
    running.interrupt();
    running.wait().expect_code(130);

    let before = live.api_requests().len();
    let other = run(export(&live).arg("--output").arg(&output).args(free));
    other.expect_code(2);
    assert!(
        other.stderr.contains(
            r#"`--query` changed from `app_metadata.plan:"pro"` to `app_metadata.plan:"free"`"#
        ),
        "{}",
        other.stderr
    );
    assert!(other.stderr.contains("--fresh"), "{}", other.stderr);
    for internal in ["Some(", "None", "File(", "Shape {", "fingerprint"] {
        assert!(!other.stderr.contains(internal), "{}", other.stderr);
    }
    assert_eq!(
        live.api_requests().len(),
        before,
        "refused before any request"
    );

    let fresh = run(export(&live)
        .arg("--output")
        .arg(&output)
        .args(free)
        .arg("--fresh"));
    fresh.expect_code(0);
    assert!(read_text(&output) == expected_export(&live, |u| plan_is(u, "free")));
}

// ---- 9. job files -----------------------------------------------------------------------------

#[test]
fn a_job_file_runs_the_export_like_the_flags() {
    let live = samples_tenant();
    let flags_dir = tempfile::tempdir().unwrap();
    let csv = [
        "--csv-metadata",
        "flatten",
        "--query",
        r#"app_metadata.plan:"pro""#,
    ];
    let (by_flags, _) = clean_export(&live, flags_dir.path(), "pro.csv", &csv);

    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "command = \"export\"\ndomain = \"{}\"\noutput = \"out/pro.csv\"\n\
             csv_metadata = \"flatten\"\nquery = 'app_metadata.plan:\"pro\"'\njson = true\n",
            live.domain()
        ),
    )
    .unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let ran = run(child::binary()
        .arg("run")
        .arg(&job)
        .env("AUTH0_CLIENT_ID", live.client_id())
        .env("AUTH0_CLIENT_SECRET", live.client_secret())
        .current_dir(elsewhere.path()));
    ran.expect_code(0);
    assert_eq!(ran.summary()["completed"], true);
    let output = dir.path().join("out/pro.csv");
    assert!(
        read(&output) == by_flags,
        "the job's CSV equals the flags' CSV"
    );
    assert!(
        files_under(elsewhere.path()).is_empty(),
        "paths follow the job file"
    );
}

#[test]
fn a_job_file_holding_a_client_secret_is_refused() {
    let live = samples_tenant();
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "command = \"export\"\ndomain = \"{}\"\noutput = \"users.ndjson\"\nclient_id = \"{}\"\n\
             client_secret = \"{}\"\n",
            live.domain(),
            live.client_id(),
            live.client_secret()
        ),
    )
    .unwrap();
    let ran = run(child::binary().arg("run").arg(&job));
    ran.expect_code(2);
    assert!(ran.stderr.contains("AUTH0_CLIENT_SECRET"), "{}", ran.stderr);
    assert!(
        !ran.stderr.contains(live.client_secret()),
        "the secret is not echoed"
    );
    assert!(
        live.tenant.sandbox.requests().len() == 1,
        "only the test's own token request"
    );
    assert!(!dir.path().join("users.ndjson").exists());
}

#[test]
fn the_example_jobs_run_against_a_sandbox() {
    let live = samples_tenant();
    let jobs = concat!(env!("CARGO_MANIFEST_DIR"), "/jobs");
    let dir = tempfile::tempdir().unwrap();
    for (job, output) in [
        ("full-export.toml", "full.ndjson.gz"),
        ("pro-users-csv.toml", "pro.csv"),
        ("nightly-incremental.toml", "nightly.ndjson.gz"),
    ] {
        let output = dir.path().join(output);
        let ran = run(child::binary()
            .arg("run")
            .arg(Path::new(jobs).join(job))
            .args(["--domain", live.domain(), "--quiet", "--json"])
            .arg("--output")
            .arg(&output)
            .arg("--state")
            .arg(dir.path().join(format!("{job}.state")))
            .env("AUTH0_CLIENT_ID", live.client_id())
            .env("AUTH0_CLIENT_SECRET", live.client_secret()));
        ran.expect_code(0);
        assert!(
            ran.summary()["users"].as_u64() > Some(0),
            "{job}: {}",
            ran.summary()
        );
        assert!(output.exists(), "{job}");
    }
    // The demo runs on its embedded sandbox (made smaller here).
    let demo = dir.path().join("demo.ndjson");
    let ran = run(child::binary()
        .arg("run")
        .arg(Path::new(jobs).join("demo.toml"))
        .args(["--sandbox-generate", "100", "--quiet", "--json"])
        .arg("--output")
        .arg(&demo));
    ran.expect_code(0);
    assert_eq!(ran.summary()["users"], 600);
}

// ---- clusters deeper than twice the cap -------------------------------------------------------

/// `n` database users created in one millisecond (a large bulk import), plus some spread out.
fn deep_cluster_tenant(n: usize, odd_ids: bool) -> Live {
    let live = Live::generated(300);
    let users = (0..n).map(|i| {
        // Ids like a bulk import's (24 hex digits), or with punctuation the split must reach.
        let local = if odd_ids && i % 7 == 0 { format!("x-{i:06}_~") } else { format!("{:024x}", i * 7919 + 13) };
        serde_json::json!({
            "created_at": "2022-02-22T22:22:22.222Z",
            "email": format!("bulk{i}@example.com"),
            "identities": [{"connection": "legacy-db", "user_id": local, "provider": "auth0", "isSocial": false}],
            "updated_at": "2022-02-22T22:22:22.222Z",
            "user_id": format!("auth0|{local}"),
            "app_metadata": {"batch": i / 100},
        })
        .as_object()
        .cloned()
        .expect("an object")
    });
    live.tenant.sandbox.insert_users(users);
    live
}

#[test]
fn a_cluster_deeper_than_twice_the_cap_is_split_by_user_id_prefix() {
    for odd_ids in [false, true] {
        let live = deep_cluster_tenant(2_600, odd_ids);
        let dir = tempfile::tempdir().unwrap();
        let (bytes, ran) = clean_export(&live, dir.path(), "users.ndjson", &["--json", "--quiet"]);
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(text, expected_export(&live, |_| true), "odd ids: {odd_ids}");
        assert_eq!(ran.summary()["users"], 2_900);
        let sent = live.api_requests().len() as u64;
        eprintln!("2,600 users in one millisecond (odd ids {odd_ids}): {sent} requests");
        // Punctuated ids cost a probe per character tried, never an unbounded walk.
        assert!(sent <= if odd_ids { 160 } else { 60 }, "{sent} requests");
    }
}

// ---- many windows in flight ------------------------------------------------------------------

/// Windows are planned independently and read many at once, so they complete in any order; the
/// output must still be the bytes of a walk that reads one request at a time, and the tenant's
/// own records in (`created_at`, `user_id`) order. The tenant is round-trip bound (20 ms per
/// request) and holds what makes planning hard: enough users to split by time, 1,500 users in
/// one millisecond and same-second bursts over the cap.
#[test]
fn an_export_with_many_windows_in_flight_writes_the_bytes_of_one_request_at_a_time() {
    let live = Live::start(SandboxOptions {
        generate: 12_000,
        latency: Duration::from_millis(20),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let (many, ran) = clean_export(
        &live,
        dir.path(),
        "many.ndjson",
        &["--json", "--quiet", "--concurrency", "32"],
    );
    let (one, one_ran) = clean_export(
        &live,
        dir.path(),
        "one.ndjson",
        &["--json", "--quiet", "--concurrency", "1"],
    );
    eprintln!(
        "12,000 users at 20 ms: 32 workers {:.1}s {}, 1 worker {:.1}s {}",
        ran.elapsed.as_secs_f64(),
        ran.summary(),
        one_ran.elapsed.as_secs_f64(),
        one_ran.summary()
    );
    assert!(many == one, "32 workers wrote other bytes than 1");
    assert!(
        String::from_utf8(many).unwrap() == expected_export(&live, |_| true),
        "the export is not the sandbox's records in order"
    );
    assert_eq!(ran.summary()["users"], 12_000);
    assert!(
        ran.summary()["requests"].as_u64().unwrap() <= budget(12_000),
        "{}",
        ran.summary()
    );
}

/// An export an older auth0-bulk started (a format 1 checkpoint: a cursor, no plan) resumes
/// from its cursor as the start of a new plan: the file ends as a clean run's, and only the
/// users after the cursor are asked for.
#[test]
fn an_export_started_before_plans_were_kept_resumes_from_its_format_1_checkpoint() {
    let live = Live::generated(3_000);
    let dir = tempfile::tempdir().unwrap();
    let (clean, _) = clean_export(&live, dir.path(), "clean.ndjson", &[]);
    let output = dir.path().join("users.ndjson");
    run(export(&live).arg("--output").arg(&output)).expect_code(0);
    let state = state_of(&output);
    let mut saved = checkpoint(&state).expect("a checkpoint");
    assert_eq!(saved["version"], "2");

    // What format 1 left after its first windows: the file up to a window's end in place as
    // `.partial`, and a cursor at the next instant.
    let text = String::from_utf8(clean.clone()).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut done = 1_234;
    while line_key(lines[done - 1]).0 == line_key(lines[done]).0 {
        done += 1;
    }
    let head: String = lines[..done].concat();
    std::fs::remove_file(&output).unwrap();
    std::fs::write(dir.path().join("users.ndjson.partial"), &head).unwrap();
    let c = saved.as_object_mut().unwrap();
    c.remove("walk");
    for (key, value) in [
        ("version", json!("1")),
        (
            "cursor",
            json!({"from": line_key(lines[done]).0, "inclusive": true}),
        ),
        ("bytes", json!(head.len())),
        ("users", json!(done)),
        ("windows", json!(2)),
        ("completed", json!(false)),
        ("written", json!(false)),
        ("last_completed_upper", Value::Null),
        ("last_output", Value::Null),
    ] {
        c.insert(key.into(), value);
    }
    std::fs::write(state.join("export.json"), saved.to_string()).unwrap();

    let before = live.api_requests().len() as u64;
    let ran = run(export(&live).arg("--output").arg(&output).arg("--json"));
    ran.expect_code(0);
    assert_eq!(ran.summary()["resumed"], true);
    assert!(
        read(&output) == clean,
        "the resumed file differs from a clean run's"
    );
    let sent = live.api_requests().len() as u64 - before;
    let left = (3_000 - done) as u64;
    assert!(
        sent <= budget(left) + 2,
        "{sent} requests for the last {left} users"
    );
    assert_eq!(checkpoint(&state).unwrap()["version"], "2");
}

// ---- 9. found by trying it as a new user (issue 10) -------------------------------------------

/// A sandbox tenant in a process of its own (`auth0-bulk sandbox`), as a rehearsal's real
/// tenant would be: killed when dropped.
struct SandboxProcess {
    child: std::process::Child,
    domain: String,
    client_id: String,
    client_secret: String,
}

impl SandboxProcess {
    fn start(generate: usize) -> SandboxProcess {
        use std::io::BufRead;
        let mut child = child::binary()
            .args(["sandbox", "--generate", &generate.to_string()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the sandbox starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let announced: Value = serde_json::from_str(&line).expect("one JSON line");
        let text = |key: &str| announced[key].as_str().unwrap().to_string();
        SandboxProcess {
            domain: text("domain"),
            client_id: text("client_id"),
            client_secret: text("client_secret"),
            child,
        }
    }

    /// `auth0-bulk run JOB` with this tenant in the environment, as a scheduler would run it.
    fn job(&self, job: &Path, extra: &[&str]) -> Ran {
        run(child::binary()
            .arg("run")
            .arg(job)
            .args(extra)
            .env("AUTH0_DOMAIN", &self.domain)
            .env("AUTH0_CLIENT_ID", &self.client_id)
            .env("AUTH0_CLIENT_SECRET", &self.client_secret))
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Issue 10, item 1, end to end: a nightly `--since last` job, a user patched, a rehearsal of
/// the same job file with `--domain sandbox`, then the real job again. The rehearsal writes its
/// own files; the job's state and last output are the same bytes after it, and the real run
/// still exports the patched user (the rehearsal did not move its mark).
#[test]
fn a_rehearsal_never_touches_the_real_jobs_state_or_output() {
    let tenant = SandboxProcess::start(300);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("nightly.toml");
    std::fs::write(
        &job,
        "command = \"export\"\nsince = \"last\"\noutput = \"exports/changed.ndjson.gz\"\n\
         state = \"state/nightly\"\n",
    )
    .unwrap();
    let output = dir.path().join("exports/changed.ndjson.gz");
    let state = dir.path().join("state/nightly/export.json");
    tenant.job(&job, &["-q"]).expect_code(0);
    let first = String::from_utf8(exports::gunzip(&read(&output))).unwrap();
    assert_eq!(first.lines().count(), 300, "the first run exports everyone");

    // A change after the first run, made through the tool itself.
    let patched = user_id(&parse(first.lines().next().unwrap())).to_string();
    let input = dir.path().join("patch.ndjson");
    std::fs::write(
        &input,
        json!({"user_id": patched, "user_metadata": {"rehearsed": true}}).to_string() + "\n",
    )
    .unwrap();
    run(
        child::import(&tenant.domain, &tenant.client_id, &tenant.client_secret)
            .arg("--input")
            .arg(&input)
            .args(["--mode", "update", "-q"]),
    )
    .expect_code(0);

    let (state_before, output_before) = (read(&state), read(&output));
    let rehearsal = tenant.job(&job, &["--domain", "sandbox", "--sandbox-generate", "20"]);
    rehearsal.expect_code(0);
    let own_output = dir.path().join("exports/changed.sandbox.ndjson.gz");
    let own_state = dir.path().join("state/nightly.sandbox");
    for path in [&own_output, &own_state] {
        assert!(path.exists(), "{} was written", path.display());
        assert!(
            rehearsal.stderr.contains(&path.display().to_string()),
            "the rehearsal names {} at the start:\n{}",
            path.display(),
            rehearsal.stderr
        );
    }
    assert!(
        rehearsal.stderr.contains("Rehearsal"),
        "{}",
        rehearsal.stderr
    );
    assert!(read(&state) == state_before, "the job's state is untouched");
    assert!(
        read(&output) == output_before,
        "the job's output is untouched"
    );

    tenant.job(&job, &["-q"]).expect_code(0);
    let second = String::from_utf8(exports::gunzip(&read(&output))).unwrap();
    let ids: Vec<String> = ndjson_users(&second)
        .iter()
        .map(|u| user_id(u).to_string())
        .collect();
    assert_eq!(
        ids,
        [patched],
        "the real run exports the change made before the rehearsal"
    );
}

/// Issue 10, item 1: a state recorded for one tenant is never read, written or advanced for
/// another (not even with --fresh): exit 2 naming both tenants, before any request.
#[test]
fn a_state_of_another_tenant_is_refused_naming_both_before_any_request() {
    let (a, b) = (Live::generated(50), Live::generated(60));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    run(export(&a)
        .arg("--output")
        .arg(dir.path().join("a.ndjson"))
        .arg("--state")
        .arg(&state)
        .args(["--since", "last", "-q"]))
    .expect_code(0);
    let saved = read(&state.join("export.json"));
    for extra in [&[][..], &["--fresh"][..]] {
        let ran = run(export(&b)
            .arg("--output")
            .arg(dir.path().join("b.ndjson"))
            .arg("--state")
            .arg(&state)
            .args(["--since", "last"])
            .args(extra));
        ran.expect_code(2);
        for domain in [a.domain(), b.domain()] {
            assert!(
                ran.stderr.contains(domain),
                "{domain} named:\n{}",
                ran.stderr
            );
        }
        assert!(
            b.api_requests().is_empty(),
            "nothing sent to the other tenant"
        );
        assert!(
            read(&state.join("export.json")) == saved,
            "the state is untouched"
        );
        assert!(!dir.path().join("b.ndjson").exists());
    }
}

/// Issue 10, item 2: an export of zero users is a valid file: a gzip stream `gzip -t` and our
/// importer accept, a CSV with its header; importing either reads 0 records, exit 0.
#[test]
fn an_export_of_zero_users_is_a_valid_file_that_imports_as_zero_records() {
    let live = Live::generated(30);
    let dir = tempfile::tempdir().unwrap();
    let nobody = ["--query", r#"email:"nobody@example.invalid""#];
    for (name, extra) in [
        ("empty.ndjson.gz", &[][..]),
        ("empty.csv", &[][..]),
        ("empty-flat.csv.gz", &["--csv-metadata", "flatten"][..]),
    ] {
        let (bytes, _) = clean_export(&live, dir.path(), name, &[&nobody[..], extra].concat());
        let text = if name.ends_with(".gz") {
            assert!(!bytes.is_empty(), "{name}: a gzip stream, not 0 bytes");
            String::from_utf8(exports::gunzip(&bytes)).unwrap()
        } else {
            String::from_utf8(bytes).unwrap()
        };
        if name.contains(".csv") {
            assert!(
                text.starts_with("user_id,email,"),
                "{name}: the header: {text:?}"
            );
            assert_eq!(text.lines().count(), 1, "{name}: only the header");
        } else {
            assert_eq!(text, "", "{name}");
        }
        let path = dir.path().join(name);
        if let Ok(status) = std::process::Command::new("gzip")
            .arg("-t")
            .arg(&path)
            .status()
            && name.ends_with(".gz")
        {
            assert!(status.success(), "gzip -t accepts {name}");
        }
        let ran = run(import(&live).arg("--input").arg(&path).arg("--json"));
        ran.expect_code(0);
        assert_eq!(ran.summary()["read"], 0, "{name}");
    }
}

fn import(live: &Live) -> std::process::Command {
    child::import(live.domain(), live.client_id(), live.client_secret())
}

/// Issue 10, item 3: dotted metadata paths are selected as Auth0's own export job takes them
/// (nested in NDJSON, one column each in CSV), and a name that is neither a user field nor a
/// metadata path is refused with a did-you-mean before any request, instead of an output
/// that silently lacks it.
#[test]
fn fields_take_metadata_paths_and_refuse_names_they_cannot_find() {
    let live = samples_tenant();
    let dir = tempfile::tempdir().unwrap();
    let fields = [
        "--fields",
        "user_id,app_metadata.plan,user_metadata.preferences.theme",
    ];
    let (bytes, _) = clean_export(&live, dir.path(), "paths.ndjson", &fields);
    let pick = |user: &User, root: &str, path: &[&str]| -> Option<Value> {
        let mut value = user.get(root)?;
        for key in path {
            value = value.get(key)?;
        }
        Some(value.clone())
    };
    let expected = expected_shaped(&live, |user| {
        let mut out = User::new();
        out.insert("user_id".into(), user["user_id"].clone());
        if let Some(theme) = pick(&user, "user_metadata", &["preferences", "theme"]) {
            out.insert(
                "user_metadata".into(),
                json!({"preferences": {"theme": theme}}),
            );
        }
        if let Some(plan) = pick(&user, "app_metadata", &["plan"]) {
            out.insert("app_metadata".into(), json!({"plan": plan}));
        }
        out
    });
    let got = ndjson_users(&String::from_utf8(bytes).unwrap());
    assert_eq!(got, ndjson_users(&expected));
    assert!(
        got.iter()
            .filter(|u| u.contains_key("app_metadata"))
            .count()
            > 100,
        "the plan is there"
    );

    let (bytes, _) = clean_export(&live, dir.path(), "paths.csv", &fields);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("user_id,app_metadata.plan,user_metadata.preferences.theme\n"));
    assert_eq!(
        decode_csv(text.as_bytes(), false),
        got,
        "the CSV reads back to the same"
    );

    let (bytes, _) = clean_export(
        &live,
        dir.path(),
        "minus.ndjson",
        &["--exclude-fields", "identities,app_metadata.plan"],
    );
    let expected = expected_shaped(&live, |mut user| {
        user.remove("identities");
        if let Some(Value::Object(app)) = user.get_mut("app_metadata") {
            app.shift_remove("plan");
        }
        user
    });
    assert_eq!(
        ndjson_users(&String::from_utf8(bytes).unwrap()),
        ndjson_users(&expected)
    );

    let before = live.api_requests().len();
    for (flag, list, words) in [
        ("--fields", "user_id,emial", "did you mean \"email\""),
        (
            "--fields",
            "user_id,app_metdata.plan",
            "did you mean \"app_metadata.plan\"",
        ),
        (
            "--exclude-fields",
            "identites",
            "did you mean \"identities\"",
        ),
        ("--fields", "user_metadata,user_metadata.a", "overlap"),
    ] {
        let ran = run(export(&live)
            .arg("--output")
            .arg(dir.path().join("typo.ndjson"))
            .args([flag, list]));
        ran.expect_code(2);
        assert!(ran.stderr.contains(words), "{list}: {}", ran.stderr);
    }
    assert_eq!(
        live.api_requests().len(),
        before,
        "nothing sent for a refused list"
    );
}

/// Issue 10, item 9: an existing file that no run of this job wrote is not replaced without
/// --overwrite; the file the job's own last run wrote is.
#[test]
fn an_existing_output_that_no_run_of_this_job_wrote_needs_overwrite() {
    let live = Live::generated(40);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson");
    std::fs::write(&output, "someone else's file\n").unwrap();
    let ran = run(export(&live).arg("--output").arg(&output));
    ran.expect_code(2);
    assert!(ran.stderr.contains("--overwrite"), "{}", ran.stderr);
    assert_eq!(read_text(&output), "someone else's file\n");
    assert!(live.api_requests().is_empty());
    run(export(&live)
        .arg("--output")
        .arg(&output)
        .arg("--overwrite"))
    .expect_code(0);
    // The job's own file: the next run replaces it without being asked.
    run(export(&live).arg("--output").arg(&output)).expect_code(0);
    assert_eq!(read_text(&output), expected_export(&live, |_| true));
    // Changed since (by another tool): no longer the job's file.
    std::fs::write(&output, "edited\n").unwrap();
    run(export(&live).arg("--output").arg(&output)).expect_code(2);
}

/// Issue 10, item 9: `{date}` and `{datetime}` in --output are filled in (UTC, file-name safe)
/// so nightly runs keep history; an unknown placeholder is refused with a did-you-mean.
#[test]
fn a_date_template_in_the_output_names_one_file_per_run() {
    let live = Live::generated(40);
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("users-{date}.ndjson");
    let before = chrono::Utc::now().format("%Y-%m-%d").to_string();
    run(export(&live).arg("--output").arg(&template)).expect_code(0);
    let after = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let written: Vec<PathBuf> = std::collections::BTreeSet::from([before, after])
        .iter()
        .map(|day| dir.path().join(format!("users-{day}.ndjson")))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(written.len(), 1, "one dated file");
    assert_eq!(read_text(&written[0]), expected_export(&live, |_| true));

    let stamped = dir.path().join("users-{datetime}.csv");
    run(export(&live).arg("--output").arg(&stamped)).expect_code(0);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with("Z.csv"))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(!names[0].contains(':'), "file-name safe: {}", names[0]);

    let ran = run(export(&live)
        .arg("--output")
        .arg(dir.path().join("users-{dat}.ndjson")));
    ran.expect_code(2);
    assert!(ran.stderr.contains("did you mean {date}"), "{}", ran.stderr);
}

/// Issue 10, item 9: a --format the output's name contradicts is refused before any request.
#[test]
fn a_format_that_contradicts_the_output_name_is_refused() {
    let live = Live::generated(10);
    let dir = tempfile::tempdir().unwrap();
    for (name, format) in [("users.ndjson", "csv"), ("users.csv.gz", "ndjson")] {
        let ran = run(export(&live)
            .arg("--output")
            .arg(dir.path().join(name))
            .args(["--format", format]));
        ran.expect_code(2);
        assert!(ran.stderr.contains("does not fit"), "{}", ran.stderr);
    }
    assert!(live.api_requests().is_empty());
}

/// Issue 10, item 10: `--output - | head` ends quietly with exit 0, as ripgrep does, rather
/// than with an error and a resume hint.
#[test]
fn stdout_into_a_closed_pipe_ends_quietly_with_exit_0() {
    use std::io::{BufRead, BufReader};
    let live = Live::generated(3_000);
    let mut child = export(&live)
        .args(["--output", "-", "-q"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone: the pipe is closed.
    assert!(first.starts_with('{'));
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
    assert!(!stderr.contains("resume"), "{stderr}");
}

/// Issue 10, item 1, for imports: a rehearsal of an import job on the embedded sandbox keeps
/// its ledger, rejects and plan apart, so it can never mark the real job's records as done or
/// replace its rejects; a real run pointed at a rehearsal's state is refused, naming both.
#[test]
fn an_import_rehearsal_keeps_its_ledger_and_rejects_apart_from_the_jobs() {
    let live = Live::generated(20);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("plans.ndjson");
    let records = [
        json!({"email": "new.one@example.com", "connection": "Username-Password-Authentication"}),
        json!({"email": "not an email", "connection": "Username-Password-Authentication"}),
    ];
    std::fs::write(
        &input,
        records
            .iter()
            .map(|r| r.to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    let rejects = dir.path().join("plans.ndjson.rejects.ndjson");
    let ledger = dir.path().join("plans.ndjson.state/ledger.ndjson");
    let real = || {
        let mut command = import(&live);
        command.arg("--input").arg(&input).args([
            "--match",
            "email",
            "--passwords",
            "random",
            "-q",
        ]);
        command
    };
    run(&mut real()).expect_code(3);
    let (rejects_before, ledger_before) = (read(&rejects), read(&ledger));

    let rehearsal = run(child::binary()
        .arg("import")
        .arg("--input")
        .arg(&input)
        .args([
            "--domain",
            "sandbox",
            "--match",
            "email",
            "--passwords",
            "random",
        ]));
    rehearsal.expect_code(3);
    assert!(
        rehearsal.stderr.contains("Rehearsal"),
        "{}",
        rehearsal.stderr
    );
    let own = dir.path().join("plans.sandbox.ndjson.rejects.ndjson");
    assert!(
        own.exists(),
        "the rehearsal's rejects: {}",
        rehearsal.stderr
    );
    assert!(dir.path().join("plans.sandbox.ndjson.state").is_dir());
    assert!(
        read(&rejects) == rejects_before,
        "the job's rejects are untouched"
    );
    assert!(
        read(&ledger) == ledger_before,
        "the job's ledger is untouched"
    );

    let pointed = run(real()
        .arg("--state")
        .arg(dir.path().join("plans.sandbox.ndjson.state")));
    pointed.expect_code(2);
    assert!(
        pointed.stderr.contains("embedded sandbox"),
        "{}",
        pointed.stderr
    );
    assert!(pointed.stderr.contains(live.domain()), "{}", pointed.stderr);
}
