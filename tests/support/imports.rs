//! What the import tests share: inputs, the tenant's users compared without what a tenant sets
//! itself, summaries that add up, and the import ledger as a test reads it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use auth0_bulk::sandbox::SandboxOptions;
use auth0_bulk::sandbox::generate::generate;
use serde_json::{Value, json};

use super::child::{Ran, run};
use super::exports::User;
use super::live::{Live, user_id};

/// The sandbox's default database connection (password policy "good").
pub const DB: &str = "Username-Password-Authentication";

/// `auth0-bulk import --domain <the sandbox>` with its credentials in the environment.
pub fn import(live: &Live) -> Command {
    super::child::import(live.domain(), live.client_id(), live.client_secret())
}

/// `import --input INPUT ARGS --json --quiet` to its end; state and rejects in their default
/// places beside the input.
pub fn import_file(live: &Live, input: &Path, args: &[&str]) -> Ran {
    run(import(live)
        .arg("--input")
        .arg(input)
        .args(args)
        .args(["--json", "--quiet"]))
}

/// The size of the import ledger in `state` (0 before there is one).
pub fn ledger_bytes(state: &Path) -> u64 {
    std::fs::metadata(state.join("ledger.ndjson")).map_or(0, |m| m.len())
}

/// An import's progress for the kill loop (`kill::kill_until_done`): its ledger's size in
/// `state` against a clean run's `clean_ledger` bytes (cheap to read every millisecond), at most
/// 0.999 until the run state says the import completed.
pub fn import_progress(state: &Path, clean_ledger: u64) -> f64 {
    let completed = std::fs::read_to_string(state.join("import.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .is_some_and(|c| c["completed"] == true);
    if completed {
        1.0
    } else {
        (ledger_bytes(state) as f64 / clean_ledger.max(1) as f64).min(0.999)
    }
}

/// An empty tenant (the sandbox's connections, no users).
pub fn empty_tenant() -> Live {
    Live::start(SandboxOptions::default())
}

/// A tenant that answers every API request after `ms` milliseconds, holding `users`.
pub fn slow_tenant(ms: u64, users: &[User]) -> Live {
    let live = Live::start(SandboxOptions {
        latency: Duration::from_millis(ms),
        ..Default::default()
    });
    live.tenant.sandbox.insert_users(users.iter().cloned());
    live
}

pub fn object(value: Value) -> User {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// `n` generated users (deterministic for a seed), as the API returns them.
pub fn generated(n: usize, seed: u64) -> Vec<User> {
    generate(n, seed).collect()
}

pub fn write_ndjson<T: serde::Serialize>(path: &Path, records: &[T]) {
    let mut text = String::new();
    for record in records {
        text.push_str(&serde_json::to_string(record).expect("JSON"));
        text.push('\n');
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

pub fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The objects of an NDJSON file.
pub fn read_ndjson(path: &Path) -> Vec<User> {
    read_text(path)
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"))
        })
        .collect()
}

/// `users.ndjson` + `.state` → `users.ndjson.state` (the importer's defaults).
pub fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().expect("a file name").to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// The tenant's users (the ground truth) by user_id.
pub fn tenant_users(live: &Live) -> BTreeMap<String, User> {
    live.tenant
        .sandbox
        .users()
        .into_iter()
        .map(|user| (user_id(&user).to_string(), user))
        .collect()
}

/// The connection of a user's first identity.
pub fn connection_of(user: &User) -> Option<&str> {
    user.get("identities")?.get(0)?.get("connection")?.as_str()
}

/// What a migration must carry over: every field the Management API lets one set, the user_id,
/// and the connection the user lives in.
pub fn settable(user: &User) -> User {
    const FIELDS: [&str; 11] = [
        "user_id",
        "email",
        "email_verified",
        "name",
        "given_name",
        "family_name",
        "nickname",
        "picture",
        "blocked",
        "user_metadata",
        "app_metadata",
    ];
    let mut out: User = FIELDS
        .iter()
        .filter_map(|field| Some((field.to_string(), user.get(*field)?.clone())))
        .collect();
    out.insert("connection".into(), json!(connection_of(user)));
    out
}

pub fn settable_by_id<'a>(users: impl IntoIterator<Item = &'a User>) -> BTreeMap<String, User> {
    users
        .into_iter()
        .map(|user| (user_id(user).to_string(), settable(user)))
        .collect()
}

/// A user without the timestamps a tenant sets itself.
pub fn without_times(user: &User) -> User {
    let mut user = user.clone();
    user.shift_remove("created_at");
    user.shift_remove("updated_at");
    user
}

/// Asserts that two sets of users are the same, naming the first ones that differ.
pub fn assert_same_users(got: &BTreeMap<String, User>, want: &BTreeMap<String, User>, what: &str) {
    let missing: Vec<&String> = want.keys().filter(|id| !got.contains_key(*id)).collect();
    let extra: Vec<&String> = got.keys().filter(|id| !want.contains_key(*id)).collect();
    let differ: Vec<String> = want
        .iter()
        .filter_map(|(id, user)| {
            let other = got.get(id)?;
            (other != user).then(|| {
                format!(
                    "{id}:\n   got  {}\n   want {}",
                    Value::Object(other.clone()),
                    Value::Object(user.clone())
                )
            })
        })
        .take(3)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && differ.is_empty(),
        "{what}: {} missing (first {:?}), {} extra (first {:?}), differing:\n{}",
        missing.len(),
        missing.iter().take(3).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(3).collect::<Vec<_>>(),
        differ.join("\n")
    );
}

pub fn count(summary: &Value, key: &str) -> u64 {
    summary[key]
        .as_u64()
        .unwrap_or_else(|| panic!("the summary has no count {key}: {summary}"))
}

/// Every record read ends as exactly one outcome.
pub fn assert_adds_up(summary: &Value) {
    let outcomes: u64 = ["created", "updated", "unchanged", "skipped", "rejected"]
        .iter()
        .map(|key| count(summary, key))
        .sum();
    assert_eq!(
        count(summary, "read"),
        outcomes,
        "read is the sum of the outcomes: {summary}"
    );
}

/// What the import ledger in a state directory says (a torn last line, as a kill leaves it, is
/// left out, as the importer does).
#[derive(Debug, Default)]
pub struct LedgerView {
    /// Record (its position in the input) → every outcome written for it.
    pub outcomes: BTreeMap<u64, Vec<String>>,
    /// Records whose create was marked as sent.
    pub started: BTreeSet<u64>,
}

impl LedgerView {
    pub fn read(state: &Path) -> LedgerView {
        let mut view = LedgerView::default();
        let Ok(text) = std::fs::read_to_string(state.join("ledger.ndjson")) else {
            return view;
        };
        for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            let Ok(entry) = serde_json::from_str::<Value>(line) else {
                break;
            };
            let record = entry["record"]
                .as_u64()
                .expect("every entry names its record");
            if entry["started"] == true {
                view.started.insert(record);
            }
            if let Some(outcome) = entry["outcome"].as_str() {
                view.outcomes
                    .entry(record)
                    .or_default()
                    .push(outcome.to_string());
            }
        }
        view
    }

    pub fn done(&self) -> u64 {
        self.outcomes.len() as u64
    }

    /// Creates sent whose outcome is not recorded: in flight when the process died.
    pub fn in_flight(&self) -> usize {
        self.started
            .iter()
            .filter(|r| !self.outcomes.contains_key(r))
            .count()
    }

    /// Outcome → how many records.
    pub fn tally(&self) -> BTreeMap<String, u64> {
        let mut tally = BTreeMap::new();
        for outcomes in self.outcomes.values() {
            for outcome in outcomes {
                *tally.entry(outcome.clone()).or_default() += 1;
            }
        }
        tally
    }
}

/// `user` as a record with `edits`: root fields set, metadata keys set inside the user's own
/// metadata objects.
pub fn changed(user: &User, edits: Value) -> Value {
    let mut record = user.clone();
    for (key, value) in object(edits) {
        match (key.as_str(), value) {
            ("user_metadata" | "app_metadata", Value::Object(keys)) => {
                let meta = record
                    .entry(key.clone())
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .expect("metadata is an object");
                meta.extend(keys);
            }
            (_, value) => {
                record.insert(key, value);
            }
        }
    }
    Value::Object(record)
}

/// The records of an export of `users`.
pub fn as_records(users: &[User]) -> Vec<Value> {
    users.iter().cloned().map(Value::Object).collect()
}

/// What a user re-created from its before-image cannot have as it was: the times the tenant
/// sets (`created_at`, `updated_at`, `last_password_reset`: a new password is set) and the
/// sign-in history, which the API lets no one write (`last_login`, `last_ip`, `logins_count`).
pub const CHANGED_BY_RECREATION: [&str; 6] = [
    "created_at",
    "updated_at",
    "last_password_reset",
    "last_login",
    "last_ip",
    "logins_count",
];

/// `users` without the fields [`CHANGED_BY_RECREATION`].
pub fn comparable(users: BTreeMap<String, User>) -> BTreeMap<String, User> {
    users
        .into_iter()
        .map(|(id, mut user)| {
            for field in CHANGED_BY_RECREATION {
                user.shift_remove(field);
            }
            (id, user)
        })
        .collect()
}
