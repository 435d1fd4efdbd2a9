//! `auth0-bulk export` end to end: the binary, run as a child process, against a sandbox tenant
//! served in-process. Each test names the behaviour it protects; the numbers that matter
//! (requests, 429s) are printed for `--nocapture` runs.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use auth0_bulk::format::csv::CsvDecoder;
use auth0_bulk::sandbox::SandboxOptions;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use crate::support::child::{self, Ran, Running, run};
use crate::support::live::{Gate, Live, line_key, user_id};
use crate::support::tenant::encode;

type User = Map<String, Value>;

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/users.ndjson");

// ---- helpers ----------------------------------------------------------------------------------

/// `auth0-bulk export --domain <the sandbox>` with its credentials in the environment.
fn export(live: &Live) -> Command {
    child::export(live.domain(), live.client_id(), live.client_secret())
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn read_text(path: &Path) -> String {
    String::from_utf8(read(path)).expect("the export is UTF-8")
}

fn parse(line: &str) -> User {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON user ({e}): {line}"))
}

fn ndjson_users(text: &str) -> Vec<User> {
    text.lines().map(parse).collect()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("the output is gzip");
    out
}

/// The export's order: `created_at`, then `user_id`.
fn order_key(user: &User) -> (String, String) {
    let created = user["created_at"].as_str().expect("created_at").to_string();
    (created, user_id(user).to_string())
}

/// What an export of the users that `keep` selects must hold, byte for byte: their dump
/// lines in (`created_at`, `user_id`) order.
fn expected_export(live: &Live, keep: impl Fn(&User) -> bool) -> String {
    let mut selected: Vec<((String, String), String)> = live
        .dump_lines()
        .into_values()
        .filter_map(|line| {
            let user = parse(&line);
            keep(&user).then(|| (order_key(&user), line))
        })
        .collect();
    selected.sort();
    selected.into_iter().map(|(_, line)| line).collect()
}

/// The run state beside an output (the default `--state`).
fn state_of(output: &Path) -> PathBuf {
    let mut name = output.file_name().expect("a file name").to_os_string();
    name.push(".state");
    output.with_file_name(name)
}

/// The saved checkpoint, if any.
fn checkpoint(state: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(state.join("export.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Waits until `ready` holds (polling), failing the test after `limit`.
fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn has_connection(user: &User, connection: &str) -> bool {
    user.get("identities")
        .and_then(Value::as_array)
        .is_some_and(|ids| ids.iter().any(|i| i["connection"] == connection))
}

fn plan_is(user: &User, plan: &str) -> bool {
    user.get("app_metadata")
        .is_some_and(|am| am.get("plan") == Some(&Value::from(plan)))
}

/// A clean export of `live` to `dir/name` with `args`: its bytes.
fn clean_export(live: &Live, dir: &Path, name: &str, args: &[&str]) -> (Vec<u8>, Ran) {
    let output = dir.join(name);
    let ran = run(export(live).arg("--output").arg(&output).args(args));
    ran.expect_code(0);
    (read(&output), ran)
}

/// The request budget for `users`: 1.15 x ceil(users / 100).
fn budget(users: u64) -> u64 {
    (1.15 * users.div_ceil(100) as f64).floor() as u64
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
    assert_eq!(summary["requests"], sent, "the summary counts every request");
    assert!(
        sent <= budget,
        "{sent} requests for 25,000 users, more than 1.15 x 250"
    );
}
