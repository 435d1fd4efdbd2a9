//! Bad input, end to end: every file of `tests/corpus/` (its README says what is wrong with each
//! and what must happen) imported by the real binary into an in-process sandbox, inputs too big
//! to commit, and mutated sample lines. Whatever the input, nothing panics: a record that cannot
//! be used lands in the rejects file with its line and reason while the good records around it
//! are applied, and an input that cannot be read at all is refused with exit 2 before any
//! request.
//!
//! The mutation tests run a bounded number of cases; `AUTH0_BULK_LONG=1` scales them up:
//! `AUTH0_BULK_LONG=1 cargo test --release --locked --test integration badinput`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use auth0_bulk::import::plan::{
    self, Engine, MatchBy, MetadataStrategy, Mode, Passwords, PlanOptions,
};
use auth0_bulk::import::read::{self, DEFAULT_MAX_RECORD_BYTES, InputFormat, ReadOptions};
use auth0_bulk::sandbox::SandboxOptions;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use crate::support::child::{self, Ran, run};
use crate::support::live::{Live, user_id};

type User = Map<String, Value>;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/users.ndjson");
const SAMPLES_CSV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/users-flatten.csv");
const DB: &str = "Username-Password-Authentication";

/// True for the long run (`AUTH0_BULK_LONG=1`).
fn long_run() -> bool {
    std::env::var("AUTH0_BULK_LONG").is_ok_and(|value| value == "1")
}

// ---- the corpus and what must happen to each file ---------------------------------------------

/// A rejection the run must write: the line, `_error.code`, `_error.field` (when the error is
/// about one field), and words the message must hold.
type Reject = (u64, &'static str, Option<&'static str>, &'static str);

/// A value a created user must have: user_id (without `auth0|`), JSON pointer, JSON text.
type Kept = (&'static str, &'static str, &'static str);

enum Outcome {
    /// Read to the end (exit 0, or 3 with rejects): `read` records, these users created (ids
    /// without `auth0|`), these records rejected, these values kept exactly.
    Read {
        read: u64,
        created: &'static [&'static str],
        rejects: &'static [Reject],
        kept: &'static [Kept],
    },
    /// Refused whole, with exit 2 and nothing sent or written; stderr holds these words.
    Refused(&'static str),
    /// Breaks off mid-way: exit 1 after creating `created` users; stderr holds `says`.
    Cut { created: u64, says: &'static str },
}

struct Case {
    file: &'static str,
    /// Options beyond `--mode`, `--passwords random`, `--rejects`, `--state`.
    args: &'static [&'static str],
    outcome: Outcome,
}

const fn read_case(
    file: &'static str,
    read: u64,
    created: &'static [&'static str],
    rejects: &'static [Reject],
    kept: &'static [Kept],
) -> Case {
    Case {
        file,
        args: &[],
        outcome: Outcome::Read {
            read,
            created,
            rejects,
            kept,
        },
    }
}

const fn refused(file: &'static str, args: &'static [&'static str], says: &'static str) -> Case {
    Case {
        file,
        args,
        outcome: Outcome::Refused(says),
    }
}

/// Every corpus file at least once (`every_corpus_file_has_a_case_and_a_readme_row`).
const CASES: &[Case] = &[
    // ---- NDJSON
    read_case(
        "ndjson-broken-json.ndjson",
        7,
        &["bi-bj-1", "bi-bj-3", "bi-bj-8"],
        &[
            (
                2,
                "invalid_json",
                None,
                "line 2, column 69): EOF while parsing",
            ),
            (4, "invalid_json", None, "trailing comma"),
            (5, "invalid_json", None, "key must be a string"),
            (6, "invalid_json", None, "trailing characters"),
        ],
        &[],
    ),
    read_case(
        "ndjson-invalid-utf8.ndjson",
        6,
        &["bi-u8-1", "bi-u8-3", "bi-u8-6"],
        &[
            (2, "invalid_utf8", None, "byte 0xf6 at line 2, column 117"),
            (4, "invalid_utf8", None, "byte 0xc3 at line 4"),
            (5, "invalid_utf8", None, "byte 0xff at line 5, column 1"),
        ],
        &[],
    ),
    read_case(
        "ndjson-bom.ndjson",
        2,
        &["bi-bom-1", "bi-bom-2"],
        &[],
        &[("bi-bom-1", "/email", "\"bi-bom-1@example.com\"")],
    ),
    read_case(
        "ndjson-bom-mid-file.ndjson",
        3,
        &["bi-bomm-1", "bi-bomm-3"],
        &[(2, "invalid_json", None, "byte order mark")],
        &[],
    ),
    read_case(
        "ndjson-crlf.ndjson",
        3,
        &["bi-crlf-1", "bi-crlf-2", "bi-crlf-3"],
        &[],
        &[("bi-crlf-3", "/name", "\"Ada Lovelace\"")],
    ),
    read_case(
        "ndjson-blank-lines.ndjson",
        4,
        &["bi-bl-1", "bi-bl-2", "bi-bl-3"],
        &[(9, "invalid_json", None, "line 9, column 2")],
        &[],
    ),
    read_case(
        "ndjson-not-objects.ndjson",
        8,
        &["bi-no-1", "bi-no-8"],
        &[
            (2, "not_an_object", None, "an array"),
            (3, "not_an_object", None, "a string"),
            (4, "not_an_object", None, "a number"),
            (5, "not_an_object", None, "null"),
            (6, "not_an_object", None, "a boolean"),
            (7, "not_an_object", None, "an array"),
        ],
        &[],
    ),
    read_case(
        "ndjson-wrong-types.ndjson",
        12,
        &["bi-wt-1", "bi-wt-12"],
        &[
            (2, "invalid_field", Some("email"), "number 12345"),
            (
                3,
                "invalid_field",
                Some("app_metadata"),
                "must be an object",
            ),
            (
                4,
                "invalid_field",
                Some("blocked"),
                "true or false, not the string \"yes\"",
            ),
            (5, "invalid_field", Some("user_metadata"), "not an array"),
            (
                6,
                "invalid_field",
                Some("email_verified"),
                "not the number 1",
            ),
            (7, "invalid_field", Some("name"), "not an object"),
            (8, "invalid_field", Some("connection"), "not the number 7"),
            (9, "invalid_field", Some("user_id"), "not the boolean true"),
            (
                10,
                "invalid_field",
                Some("phone_number"),
                "must be a string",
            ),
            (
                11,
                "invalid_field",
                Some("user_metadata"),
                "not null; {} clears it",
            ),
        ],
        &[],
    ),
    read_case(
        "ndjson-reserved-keys.ndjson",
        8,
        &["bi-rk-1", "bi-rk-7"],
        &[
            (
                2,
                "reserved_metadata_key",
                Some("app_metadata.clientID"),
                "reserves",
            ),
            (
                3,
                "reserved_metadata_key",
                Some("app_metadata.__tenant"),
                "reserves",
            ),
            (
                4,
                "reserved_metadata_key",
                Some("app_metadata.blocked"),
                "reserves",
            ),
            (
                5,
                "invalid_metadata_key",
                Some("user_metadata.a.b"),
                "contains \".\"",
            ),
            (
                6,
                "invalid_metadata_key",
                Some("app_metadata.prefs.$set"),
                "contains \"$\"",
            ),
            (8, "ambiguous_field", Some("metadata"), "keep only one"),
        ],
        // The reserved names are app_metadata's only.
        &[(
            "bi-rk-7",
            "/user_metadata",
            "{\"blocked\":true,\"email\":\"x\"}",
        )],
    ),
    read_case(
        "ndjson-deep-nesting.ndjson",
        4,
        &["bi-dn-1", "bi-dn-4"],
        &[
            (2, "invalid_json", None, "more than 127 levels"),
            (3, "invalid_json", None, "more than 127 levels"),
        ],
        &[],
    ),
    read_case(
        "ndjson-huge-numbers.ndjson",
        7,
        &[
            "bi-hn-1",
            "bi-hn-2",
            "bi-hn-3",
            "bi-hn-4",
            "12345678901234567890123",
        ],
        &[
            (5, "invalid_json", None, "invalid number"),
            (6, "invalid_json", None, "expected value"),
        ],
        &[
            (
                "bi-hn-1",
                "/user_metadata",
                "{\"big\":123456789012345678901234567890,\"neg\":-98765432109876543210987654321}",
            ),
            (
                "bi-hn-2",
                "/user_metadata",
                "{\"huge\":1e+400,\"tiny\":1e-400,\"exact\":0.1000000000000000000000000001}",
            ),
            ("bi-hn-4", "/app_metadata/n", "1e+99999999999999999999"),
        ],
    ),
    read_case(
        "ndjson-duplicate-keys.ndjson",
        5,
        &["bi-dk-1", "bi-dk-5"],
        &[
            (2, "duplicate_key", Some("email"), "`email` appears twice"),
            (
                3,
                "duplicate_key",
                Some("user_metadata.plan"),
                "`plan` appears twice",
            ),
            (
                4,
                "duplicate_key",
                Some("app_metadata.roles[0].id"),
                "`id` appears twice",
            ),
        ],
        &[],
    ),
    // ---- CSV
    read_case(
        "csv-ragged-rows.csv",
        7,
        &["bi-cr-1", "bi-cr-4", "bi-cr-7"],
        &[
            (
                3,
                "csv_row",
                Some("connection"),
                "the row ends before this column",
            ),
            (4, "csv_row", None, "4 cells, more than the 3 columns"),
            (
                6,
                "csv_row",
                Some("email"),
                "the row ends before this column",
            ),
            (7, "csv_row", None, "5 cells, more than the 3 columns"),
        ],
        &[],
    ),
    refused(
        "csv-duplicate-headers.csv",
        &[],
        "column `email`: appears twice",
    ),
    read_case("csv-header-only.csv", 0, &[], &[], &[]),
    read_case(
        "csv-unterminated-quote.csv",
        2,
        &["bi-cq-1"],
        &[(3, "csv_row", None, "never closed")],
        &[],
    ),
    read_case(
        "csv-invalid-utf8-cell.csv",
        3,
        &["bi-cu-1", "bi-cu-3"],
        &[(3, "invalid_utf8", Some("name"), "not valid UTF-8")],
        &[],
    ),
    read_case(
        "csv-metadata-conflict.csv",
        3,
        &["bi-cm-1", "bi-cm-2"],
        &[(4, "csv_row", Some("user_metadata.a.b"), "parent path")],
        &[
            ("bi-cm-1", "/user_metadata", "{\"a\":1}"),
            ("bi-cm-2", "/user_metadata", "{\"a\":{\"b\":2}}"),
        ],
    ),
    read_case(
        "csv-bom-crlf.csv",
        2,
        &["bi-cb-1", "bi-cb-2"],
        &[],
        &[
            ("bi-cb-1", "/name", "\"Ada\""),
            ("bi-cb-2", "/name", "\"Grace\\r\\nHopper\""),
        ],
    ),
    read_case(
        "csv-wrong-types.csv",
        6,
        &["bi-ct-1", "bi-ct-6"],
        &[
            (
                3,
                "invalid_field",
                Some("blocked"),
                "not the string \"yes\"",
            ),
            (
                4,
                "invalid_field",
                Some("email_verified"),
                "not the number 1",
            ),
            (5, "csv_row", Some("user_metadata"), "found an array"),
            (6, "csv_row", Some("user_metadata"), "is not valid JSON"),
        ],
        &[
            ("bi-ct-1", "/blocked", "false"),
            ("bi-ct-1", "/app_metadata", "{\"plan\":\"pro\"}"),
        ],
    ),
    read_case(
        "csv-reserved-keys.csv",
        3,
        &["bi-ck-1"],
        &[
            (
                3,
                "reserved_metadata_key",
                Some("app_metadata.clientID"),
                "reserves",
            ),
            (
                4,
                "invalid_metadata_key",
                Some("user_metadata.$set"),
                "contains \"$\"",
            ),
        ],
        &[],
    ),
    refused("csv-too-deep-column.csv", &[], "has 200 segments"),
    read_case(
        "csv-deep-nesting.csv",
        3,
        &["bi-cn-1", "bi-cn-3"],
        &[(
            3,
            "invalid_field",
            Some("user_metadata"),
            "more than 127 levels",
        )],
        &[],
    ),
    refused("empty.csv", &[], "the input is empty"),
    // ---- JSON arrays
    read_case(
        "json-truncated-array.json",
        3,
        &["bi-ja-1", "bi-ja-2"],
        &[(
            4,
            "invalid_json",
            None,
            "the input ends inside this element",
        )],
        &[],
    ),
    read_case(
        "json-unclosed-array.json",
        3,
        &["bi-jc-1", "bi-jc-2"],
        &[(
            4,
            "invalid_json",
            None,
            "without the `]` that closes the array",
        )],
        &[],
    ),
    read_case(
        "json-array-of-non-objects.json",
        6,
        &["bi-jn-4", "bi-jn-6"],
        &[
            (2, "not_an_object", None, "a number"),
            (3, "not_an_object", None, "a string"),
            (4, "not_an_object", None, "null"),
            (6, "not_an_object", None, "an array"),
        ],
        &[],
    ),
    read_case(
        "json-broken-element.json",
        3,
        &["bi-je-1", "bi-je-3"],
        &[(3, "invalid_json", None, "expected `,` or `}`")],
        &[],
    ),
    refused("json-top-level-object.json", &[], "pretty-printed"),
    refused(
        "json-top-level-object.json",
        &["--format", "json"],
        "starts with `{`, not `[`",
    ),
    refused("empty.json", &[], "the input is empty"),
    // ---- gzip
    read_case(
        "gzip-valid.ndjson.gz",
        3,
        &["bi-gz-1", "bi-gz-2", "bi-gz-3"],
        &[],
        &[],
    ),
    refused(
        "gzip-not-gzip.ndjson.gz",
        &[],
        "is named .gz but is not gzip",
    ),
    refused(
        "gzip-header-only.ndjson.gz",
        &[],
        "the gzip data is cut short or damaged",
    ),
    Case {
        file: "gzip-truncated.ndjson.gz",
        args: &[],
        outcome: Outcome::Cut {
            created: 259,
            says: "cannot be read past line 260",
        },
    },
    // ---- empty and blank
    read_case("empty.ndjson", 0, &[], &[], &[]),
    read_case("blank.ndjson", 0, &[], &[], &[]),
];

// ---- helpers ----------------------------------------------------------------------------------

/// `import --input INPUT --mode MODE --passwords random --json --quiet`, with the rejects file
/// and the run state in `work` under names that start with `tag`.
fn import(live: &Live, input: &Path, mode: &str, args: &[&str], work: &Path, tag: &str) -> Ran {
    run(
        child::import(live.domain(), live.client_id(), live.client_secret())
            .arg("--input")
            .arg(input)
            .args(["--mode", mode, "--passwords", "random", "--json", "--quiet"])
            .arg("--rejects")
            .arg(rejects_of(work, tag))
            .arg("--state")
            .arg(work.join(format!("{tag}.state")))
            .args(args),
    )
}

fn rejects_of(work: &Path, tag: &str) -> PathBuf {
    work.join(format!("{tag}.rejects.ndjson"))
}

/// Fails unless the run ended with `code` on its own terms: no panic, no signal.
fn assert_ended(ran: &Ran, code: i32, what: &str) {
    assert!(
        !ran.stderr.contains("panicked at") && !ran.stderr.contains("overflowed its stack"),
        "{what}: the binary panicked:\n{}",
        ran.stderr
    );
    assert_eq!(
        ran.code(),
        Some(code),
        "{what}: expected exit {code}; stderr:\n{}\nstdout:\n{}",
        ran.stderr,
        ran.stdout_text()
    );
}

fn count(summary: &Value, key: &str) -> u64 {
    summary[key]
        .as_u64()
        .unwrap_or_else(|| panic!("the summary has no count {key}: {summary}"))
}

/// Every record read ends as exactly one outcome.
fn assert_adds_up(summary: &Value, what: &str) {
    let outcomes: u64 = ["created", "updated", "unchanged", "skipped", "rejected"]
        .iter()
        .map(|key| count(summary, key))
        .sum();
    assert_eq!(
        count(summary, "read"),
        outcomes,
        "{what}: read is the sum of the outcomes: {summary}"
    );
}

fn user_ids(live: &Live) -> BTreeSet<String> {
    live.tenant
        .sandbox
        .users()
        .iter()
        .map(|user| user_id(user).to_string())
        .collect()
}

/// One rejects-file entry.
struct Entry {
    /// `_error`.
    error: Value,
    /// The rest: the record, or `_raw` (the text that could not be read as one). `None` when
    /// the line nests too deep to read back (a record from CSV cells, refused for its depth).
    rest: Option<User>,
    /// The length of the line.
    len: usize,
}

impl Entry {
    fn line(&self) -> u64 {
        self.error["line"].as_u64().expect("_error.line")
    }

    /// `(line, code, field)`.
    fn key(&self) -> (u64, String, Option<String>) {
        (
            self.line(),
            self.error["code"]
                .as_str()
                .expect("_error.code")
                .to_string(),
            self.error["field"].as_str().map(str::to_string),
        )
    }
}

/// The entries of a rejects file, in file order.
fn read_rejects(path: &Path) -> Vec<Entry> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .map(|line| match serde_json::from_str::<User>(line) {
            Ok(mut entry) => Entry {
                error: entry.shift_remove("_error").expect("an _error"),
                rest: Some(entry),
                len: line.len(),
            },
            Err(e) if e.to_string().contains("recursion limit") => {
                // `_error` is the entry's last key.
                let at = line.rfind(",\"_error\":").expect("an _error") + 10;
                Entry {
                    error: serde_json::from_str(&line[at..line.len() - 1]).expect("_error"),
                    rest: None,
                    len: line.len(),
                }
            }
            Err(e) => panic!("a rejects entry is not a JSON object ({e}): {line}"),
        })
        .collect()
}

/// `(line, code, field)` of each entry, sorted by line.
fn reject_keys(entries: &[Entry]) -> Vec<(u64, String, Option<String>)> {
    let mut keys: Vec<_> = entries.iter().map(Entry::key).collect();
    keys.sort();
    keys
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the directory reads") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            out.extend(files_under(&path));
        }
        out.push(path);
    }
    out
}

// ---- the checks, one per kind of outcome ------------------------------------------------------

/// Create, then update on the same tenant, then re-import the rejects file as it is.
fn check_read(
    live: &Live,
    input: &Path,
    args: &[&str],
    read: u64,
    created: &[&str],
    rejects: &[Reject],
    kept: &[Kept],
) {
    let what = input.file_name().expect("a name").to_string_lossy();
    let work = tempfile::tempdir().expect("a temp dir");
    let exit = if rejects.is_empty() { 0 } else { 3 };
    let before = user_ids(live);

    // Create: the good records are applied, each bad one is in the rejects file.
    let ran = import(live, input, "create", args, work.path(), "create");
    assert_ended(&ran, exit, &format!("{what} (create)"));
    let summary = ran.summary();
    assert_adds_up(&summary, &what);
    assert_eq!(
        [read, created.len() as u64, rejects.len() as u64],
        ["read", "created", "rejected"].map(|key| count(&summary, key)),
        "{what}: read, created, rejected: {summary}"
    );
    let new: BTreeSet<String> = user_ids(live).difference(&before).cloned().collect();
    let want: BTreeSet<String> = created.iter().map(|id| format!("auth0|{id}")).collect();
    assert_eq!(new, want, "{what}: the users created");
    let users = live.tenant.sandbox.users();
    for (id, pointer, text) in kept {
        let user = users
            .iter()
            .find(|user| user_id(user) == format!("auth0|{id}"))
            .unwrap_or_else(|| panic!("{what}: no user {id}"));
        let value = Value::Object(user.clone());
        let found = value.pointer(pointer).map(Value::to_string);
        assert_eq!(found.as_deref(), Some(*text), "{what}: {id} {pointer}");
    }
    let entries = read_rejects(&rejects_of(work.path(), "create"));
    let mut expected: Vec<Reject> = rejects.to_vec();
    expected.sort_by_key(|reject| reject.0);
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by_key(|entry| entry.line());
    assert_eq!(
        sorted.len(),
        expected.len(),
        "{what}: one entry per bad record"
    );
    for (entry, (line, code, field, says)) in sorted.iter().zip(&expected) {
        let error = &entry.error;
        let context = format!("{what}, line {line}: {error}");
        assert_eq!(error["line"], *line, "{context}");
        assert_eq!(error["code"], *code, "{context}");
        assert_eq!(error["field"].as_str(), *field, "{context}");
        let message = error["message"].as_str().expect("_error.message");
        assert!(
            message.contains(says),
            "{context}: the message says {says:?}"
        );
        if let Some(field) = field {
            assert!(
                message.contains(field),
                "{context}: the message names the field"
            );
        }
        // What there is to fix: the record, or the text that could not be read as one. Only
        // the note that a JSON array was never closed stands for no record.
        if !message.contains("without the `]`") {
            assert!(
                entry.rest.as_ref().is_none_or(|rest| !rest.is_empty()),
                "{context}: the entry keeps the record or its text"
            );
        }
    }

    // Update: the users just created are unchanged; the same records are rejected.
    if read > 0 {
        let ran = import(live, input, "update", args, work.path(), "update");
        assert_ended(&ran, exit, &format!("{what} (update)"));
        let summary = ran.summary();
        assert_adds_up(&summary, &what);
        assert_eq!(
            [read, created.len() as u64, rejects.len() as u64],
            ["read", "unchanged", "rejected"].map(|key| count(&summary, key)),
            "{what} (update): read, unchanged, rejected: {summary}"
        );
        assert_eq!(
            reject_keys(&read_rejects(&rejects_of(work.path(), "update"))),
            reject_keys(&entries),
            "{what}: update rejects the same records"
        );
    }

    // The rejects file, imported as it is: each record is refused again, the same way.
    if !entries.is_empty() {
        let again = rejects_of(work.path(), "create");
        let ran = import(live, &again, "create", &[], work.path(), "again");
        assert_ended(&ran, 3, &format!("{what} (rejects re-imported)"));
        let summary = ran.summary();
        assert_adds_up(&summary, &what);
        assert_eq!(
            count(&summary, "rejected"),
            entries.len() as u64,
            "{summary}"
        );
        let mut second = read_rejects(&rejects_of(work.path(), "again"));
        second.sort_by_key(Entry::line);
        for (index, (first, second)) in entries.iter().zip(&second).enumerate() {
            let (code, field) = match &first.rest {
                _ if first.len > DEFAULT_MAX_RECORD_BYTES => ("too_large", None),
                // Written, but deeper than a reader takes: refused for its depth again.
                None => ("invalid_json", None),
                // The text of a record that could not be read: it says to replace the line.
                Some(rest) if rest.contains_key("_raw") => ("unknown_field", Some("_raw")),
                // The note that a JSON array was never closed holds no user.
                Some(rest) if rest.is_empty() => ("missing_field", Some("user_id")),
                Some(_) => (
                    first.error["code"].as_str().expect("code"),
                    first.error["field"].as_str(),
                ),
            };
            let error = &second.error;
            let context = format!("{what}, rejects line {}: {error}", index + 1);
            assert_eq!(second.line(), index as u64 + 1, "{context}");
            assert_eq!(
                (error["code"].as_str(), error["field"].as_str()),
                (Some(code), field),
                "{context}"
            );
        }
    }
}

/// Both modes: exit 2 with `says` on stderr, no API request, no file written.
fn check_refused(live: &Live, input: &Path, args: &[&str], says: &str) {
    let what = input.display().to_string();
    for mode in ["create", "update"] {
        let work = tempfile::tempdir().expect("a temp dir");
        let before = live.api_requests().len();
        let ran = import(live, input, mode, args, work.path(), mode);
        assert_ended(&ran, 2, &format!("{what} {args:?} ({mode})"));
        assert!(
            ran.stderr.contains(says),
            "{what} {args:?}: stderr says {says:?}:\n{}",
            ran.stderr
        );
        assert!(ran.stdout.is_empty(), "{what}: no summary");
        assert_eq!(
            live.api_requests().len(),
            before,
            "{what}: no request reached the API"
        );
        assert_eq!(files_under(work.path()), Vec::<PathBuf>::new(), "{what}");
    }
}

/// Exit 1 after the records before the break; the same command resumes and sends nothing
/// for them.
fn check_cut(live: &Live, input: &Path, created: u64, says: &str) {
    let what = input.display().to_string();
    let work = tempfile::tempdir().expect("a temp dir");
    let before = user_ids(live).len();
    let ran = import(live, input, "create", &[], work.path(), "cut");
    assert_ended(&ran, 1, &what);
    for words in [says, "the same command", "complete copy"] {
        assert!(
            ran.stderr.contains(words),
            "{what}: {words:?}:\n{}",
            ran.stderr
        );
    }
    assert_eq!(
        user_ids(live).len() as u64 - before as u64,
        created,
        "{what}"
    );

    let requests = live.api_requests().len();
    let again = import(live, input, "create", &[], work.path(), "cut");
    assert_ended(&again, 1, &format!("{what} (again)"));
    assert_eq!(
        user_ids(live).len() as u64 - before as u64,
        created,
        "{what}"
    );
    assert_eq!(
        live.api_requests().len(),
        requests,
        "{what}: the resumed run sends nothing for the records it already applied"
    );
}

/// Runs every case whose file name starts with one of `prefixes`, on one tenant.
fn check_cases(prefixes: &[&str]) {
    let live = Live::start(SandboxOptions::default());
    let mut ran = 0;
    for case in CASES
        .iter()
        .filter(|case| prefixes.iter().any(|prefix| case.file.starts_with(prefix)))
    {
        let input = Path::new(CORPUS).join(case.file);
        match &case.outcome {
            Outcome::Read {
                read,
                created,
                rejects,
                kept,
            } => check_read(&live, &input, case.args, *read, created, rejects, kept),
            Outcome::Refused(says) => check_refused(&live, &input, case.args, says),
            Outcome::Cut { created, says } => check_cut(&live, &input, *created, says),
        }
        ran += 1;
    }
    assert!(ran > 0, "no case for {prefixes:?}");
}

// ---- the corpus -------------------------------------------------------------------------------

#[test]
fn every_corpus_file_has_a_case_and_a_readme_row() {
    let readme = std::fs::read_to_string(Path::new(CORPUS).join("README.md"))
        .expect("tests/corpus/README.md");
    let files: BTreeSet<String> = std::fs::read_dir(CORPUS)
        .expect("tests/corpus")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name != "README.md")
        .collect();
    let cased: BTreeSet<String> = CASES.iter().map(|case| case.file.to_string()).collect();
    assert_eq!(files, cased, "every file has a case and every case a file");
    for file in &files {
        assert!(
            readme.contains(&format!("`{file}`")),
            "{file} has a row in tests/corpus/README.md"
        );
    }
}

#[test]
fn ndjson_corpus_files_end_as_documented() {
    check_cases(&["ndjson-", "empty.ndjson", "blank."]);
}

#[test]
fn csv_corpus_files_end_as_documented() {
    check_cases(&["csv-", "empty.csv"]);
}

#[test]
fn json_array_corpus_files_end_as_documented() {
    check_cases(&["json-", "empty.json"]);
}

#[test]
fn gzip_corpus_files_end_as_documented() {
    check_cases(&["gzip-"]);
}

#[test]
fn a_missing_file_or_a_directory_is_refused_with_exit_2_before_any_request() {
    let live = Live::start(SandboxOptions::default());
    let dir = tempfile::tempdir().expect("a temp dir");
    check_refused(
        &live,
        &dir.path().join("missing.ndjson"),
        &[],
        "no such file",
    );
    let folder = dir.path().join("users.ndjson");
    std::fs::create_dir(&folder).expect("a directory");
    check_refused(&live, &folder, &[], "is a directory");
}

// ---- inputs too big to commit -----------------------------------------------------------------

fn record(id: &str, user_metadata: Value) -> String {
    json!({"user_id": id, "email": format!("{id}@example.com"), "connection": DB,
           "user_metadata": user_metadata})
    .to_string()
}

#[test]
fn lines_of_megabytes_are_rejected_by_line_and_their_neighbours_imported() {
    let live = Live::start(SandboxOptions::default());
    let dir = tempfile::tempdir().expect("a temp dir");
    let blob = |bytes: usize| json!({ "blob": "x".repeat(bytes) });
    // Over Auth0's 1 MB body (the planner), over the reader's 10 MiB record limit, and a large
    // record that fits.
    let ndjson = dir.path().join("long-lines.ndjson");
    let lines = [
        record("bi-ll-1", json!({})),
        record("bi-ll-2", blob(1_500_000)),
        record("bi-ll-3", blob(DEFAULT_MAX_RECORD_BYTES + 1)),
        record("bi-ll-4", blob(900_000)),
        record("bi-ll-5", json!({})),
    ];
    std::fs::write(&ndjson, lines.join("\n") + "\n").expect("write");
    check_read(
        &live,
        &ndjson,
        &[],
        5,
        &["bi-ll-1", "bi-ll-4", "bi-ll-5"],
        &[
            (
                2,
                "too_large",
                None,
                "at most 1048576 bytes (1 MB) per request",
            ),
            (
                3,
                "too_large",
                None,
                "more than the limit of 10485760 bytes",
            ),
        ],
        &[],
    );

    // A CSV cell of megabytes, in a row between good ones.
    let csv = dir.path().join("long-cell.csv");
    let text = format!(
        "user_id,email,connection,name\n\
         bi-lc-1,bi-lc-1@example.com,{DB},Ada\n\
         bi-lc-2,bi-lc-2@example.com,{DB},{}\n\
         bi-lc-3,bi-lc-3@example.com,{DB},Grace\n",
        "y".repeat(DEFAULT_MAX_RECORD_BYTES)
    );
    std::fs::write(&csv, text).expect("write");
    check_read(
        &live,
        &csv,
        &[],
        3,
        &["bi-lc-1", "bi-lc-3"],
        &[(3, "too_large", None, "more than the limit")],
        &[],
    );
}

// ---- mutated sample lines ---------------------------------------------------------------------

static SAMPLE_LINES: LazyLock<Vec<String>> = LazyLock::new(|| {
    std::fs::read_to_string(SAMPLES)
        .expect("samples/users.ndjson")
        .lines()
        .map(str::to_string)
        .collect()
});

/// What a mutation inserts: the bytes that matter to JSON, CSV, UTF-8 and line splitting.
const INSERTS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\\",
    b"\0",
    b"\xff",
    b"\xc3",
    b"\n",
    b"\r\n",
    b"\xEF\xBB\xBF",
    b"1e400",
    b"123456789012345678901234567890",
    b"\"a\":1,\"a\":2,",
    b"{\"user_metadata\":",
];

/// One change to a file's bytes; positions are taken modulo the length at the time.
#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(usize, u8),
    Truncate(usize),
    Insert(usize, usize),
    Delete(usize, usize),
    DuplicateLine(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        4 => (any::<usize>(), 0..INSERTS.len()).prop_map(|(at, what)| Mutation::Insert(at, what)),
        2 => (any::<usize>(), 1usize..40).prop_map(|(at, n)| Mutation::Delete(at, n)),
        1 => any::<usize>().prop_map(Mutation::DuplicateLine),
    ]
}

fn random_mutation(rng: &mut ChaCha8Rng) -> Mutation {
    let at = rng.random::<u64>() as usize;
    match rng.random_range(0..5) {
        0 => Mutation::FlipBit(at, rng.random_range(0..8)),
        1 => Mutation::Truncate(at),
        2 => Mutation::Insert(at, rng.random_range(0..INSERTS.len())),
        3 => Mutation::Delete(at, rng.random_range(1..40)),
        _ => Mutation::DuplicateLine(at),
    }
}

fn mutate(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let len = bytes.len();
    match *mutation {
        Mutation::FlipBit(at, bit) if len > 0 => bytes[at % len] ^= 1 << bit,
        Mutation::Truncate(at) => bytes.truncate(at % (len + 1)),
        Mutation::Insert(at, what) => {
            let at = at % (len + 1);
            bytes.splice(at..at, INSERTS[what].iter().copied());
        }
        Mutation::Delete(at, n) if len > 0 => {
            let at = at % len;
            bytes.drain(at..(at + n).min(len));
        }
        Mutation::DuplicateLine(at) => {
            let starts: Vec<usize> = std::iter::once(0)
                .chain(
                    bytes
                        .iter()
                        .enumerate()
                        .filter(|(_, byte)| **byte == b'\n')
                        .map(|(index, _)| index + 1),
                )
                .filter(|start| *start < len)
                .collect();
            if starts.is_empty() {
                return;
            }
            let start = starts[at % starts.len()];
            let end = bytes[start..]
                .iter()
                .position(|byte| *byte == b'\n')
                .map_or(len, |newline| start + newline + 1);
            let mut line = bytes[start..end].to_vec();
            if line.last() != Some(&b'\n') {
                line.insert(0, b'\n');
            }
            bytes.splice(end..end, line);
        }
        _ => {}
    }
}

/// The NDJSON file of the sample lines picked, mutated.
fn mutated_file(picks: &[usize], mutations: &[Mutation]) -> Vec<u8> {
    let lines = &*SAMPLE_LINES;
    let mut bytes: Vec<u8> = picks
        .iter()
        .flat_map(|pick| format!("{}\n", lines[pick % lines.len()]).into_bytes())
        .collect();
    for mutation in mutations {
        mutate(&mut bytes, mutation);
    }
    bytes
}

/// The lines the NDJSON reader must return a record for: every line that is not blank (the
/// reader's rule), after a leading byte order mark. `None` for gzip magic, which is read as
/// gzip whatever the name.
fn record_lines(bytes: &[u8]) -> Option<Vec<u64>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return None;
    }
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let blank = |line: &[u8]| line.iter().all(|byte| b" \t\r".contains(byte));
    Some(
        text.split(|byte| *byte == b'\n')
            .enumerate()
            .filter(|(_, line)| !blank(line))
            .map(|(index, _)| index as u64 + 1)
            .collect(),
    )
}

const READ_CODES: &[&str] = &[
    "invalid_json",
    "not_an_object",
    "invalid_utf8",
    "too_large",
    "csv_row",
    "duplicate_key",
    "read_error",
];

fn plan_options() -> Vec<PlanOptions> {
    let options = |mode, match_by, metadata| PlanOptions {
        mode,
        match_by,
        connection: Some(DB.into()),
        passwords: Passwords::Random,
        metadata,
        engine: Engine::Api,
    };
    vec![
        options(Mode::Create, MatchBy::UserId, MetadataStrategy::Merge),
        options(Mode::Update, MatchBy::Email, MetadataStrategy::Deep),
        options(Mode::Upsert, MatchBy::UserId, MetadataStrategy::Replace),
    ]
}

/// Reads `bytes` as `format` and plans every record in every mode; returns how many records
/// there were. Panics (failing the property) on anything but a record or an error.
fn read_and_plan(bytes: &[u8], name: &str, format: InputFormat) -> Option<Vec<u64>> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write");
    let options = ReadOptions {
        format,
        ..ReadOptions::default()
    };
    let (_, records) = read::open(&path, &options).ok()?;
    let current: User = serde_json::from_str(&SAMPLE_LINES[0]).expect("a sample user");
    let mut lines = Vec::new();
    for record in records {
        assert!(
            record.line >= lines.last().copied().unwrap_or(1),
            "lines go forward"
        );
        lines.push(record.line);
        let object = match record.result {
            Ok(object) => object,
            Err(error) => {
                assert!(READ_CODES.contains(&error.code), "{error}");
                assert!(
                    !error.message.is_empty(),
                    "line {}: no message",
                    record.line
                );
                continue;
            }
        };
        for options in plan_options() {
            match plan::plan(&object, &options) {
                Ok(planned) => {
                    for strategy in [
                        MetadataStrategy::Merge,
                        MetadataStrategy::Deep,
                        MetadataStrategy::Replace,
                    ] {
                        if let Some(body) = plan::update_body(&current, &planned, strategy) {
                            let _ = plan::check_patch(&body);
                        }
                    }
                }
                Err(invalid) => {
                    assert!(!invalid.code.is_empty() && !invalid.message.is_empty());
                    // A field with no name (the key `""`) is shown quoted.
                    assert!(
                        invalid.field.as_deref() != Some("") || invalid.message.contains("\"\""),
                        "{invalid:?}"
                    );
                }
            }
        }
    }
    Some(lines)
}

fn mutation_cases() -> u32 {
    if long_run() { 5_000 } else { 64 }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: mutation_cases(),
        // Failing cases found here are kept beside this file and replayed first on every run.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/proptest-regressions/badinput.txt",
        ))),
        ..ProptestConfig::default()
    })]

    /// The reader and the planner, called directly (fast): any mutation of sample lines reads
    /// as one record per line that is not blank, each an object or an error with a known code,
    /// and every object plans to a request or a reason, in every mode.
    #[test]
    fn mutated_sample_lines_never_panic_and_every_line_is_accounted_for(
        picks in prop::collection::vec(any::<usize>(), 1..16),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let bytes = mutated_file(&picks, &mutations);
        let lines = read_and_plan(&bytes, "mutated.ndjson", InputFormat::Ndjson)
            .expect("NDJSON always opens");
        if let Some(expected) = record_lines(&bytes) {
            prop_assert_eq!(lines, expected);
        }
        // Auto may refuse the whole input (a lone `{`), but never panics.
        let _ = read_and_plan(&bytes, "mutated.ndjson", InputFormat::Auto);
        // The same lines as a JSON array, and a mutated CSV.
        let mut array = b"[".to_vec();
        array.extend(bytes.iter().map(|byte| if *byte == b'\n' { b',' } else { *byte }));
        array.push(b']');
        let _ = read_and_plan(&array, "mutated.json", InputFormat::Json);
        let mut csv = std::fs::read(SAMPLES_CSV).expect("samples/users-flatten.csv");
        for mutation in &mutations {
            mutate(&mut csv, mutation);
        }
        let _ = read_and_plan(&csv, "mutated.csv", InputFormat::Csv);
    }
}

/// A few mutated files through the real binary in `--dry-run`: it never panics, sends no
/// write, and its summary counts every line that is not blank.
#[test]
fn mutated_sample_files_through_the_binary_never_panic_and_count_every_line() {
    let runs = if long_run() { 100 } else { 3 };
    let live = Live::start(SandboxOptions::default());
    let dir = tempfile::tempdir().expect("a temp dir");
    for seed in 0..runs {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let picks: Vec<usize> = (0..rng.random_range(1..20))
            .map(|_| rng.random::<u64>() as usize)
            .collect();
        let mutations: Vec<Mutation> = (0..rng.random_range(1..8))
            .map(|_| random_mutation(&mut rng))
            .collect();
        let bytes = mutated_file(&picks, &mutations);
        let Some(lines) = record_lines(&bytes) else {
            continue;
        };
        let input = dir.path().join(format!("mutated-{seed}.ndjson"));
        std::fs::write(&input, &bytes).expect("write");
        let ran = run(
            child::import(live.domain(), live.client_id(), live.client_secret())
                .arg("--input")
                .arg(&input)
                .args(["--format", "ndjson", "--mode", "upsert", "--dry-run"])
                .args(["--passwords", "random", "--json", "--quiet"]),
        );
        let what = format!("seed {seed} ({mutations:?})");
        assert!(
            !ran.stderr.contains("panicked at"),
            "{what}:\n{}",
            ran.stderr
        );
        let exit = ran.code();
        assert!(
            matches!(exit, Some(0 | 3)),
            "{what}: exit {exit:?}:\n{}",
            ran.stderr
        );
        let summary = ran.summary();
        assert_adds_up(&summary, &what);
        assert_eq!(count(&summary, "read"), lines.len() as u64, "{what}");
    }
    let writes: Vec<_> = live
        .api_requests()
        .into_iter()
        .filter(|request| request.method != "GET")
        .collect();
    assert!(writes.is_empty(), "a dry run sends no write: {writes:?}");
}
