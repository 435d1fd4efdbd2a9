//! The security guarantees, each shown end to end against the binary run as a child process:
//!
//! - no client secret or access token in any byte the tool produces (stdout, stderr at every
//!   log level, output, state, rejects, plan), on success and on every failure path;
//! - every file the tool creates is `0600` and every state directory `0700`, also after a kill;
//! - plain `http://` only for loopback, TLS certificates verified, redirects never followed.
//!
//! The README's "Security" section points at these tests by name.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth0_bulk::sandbox::SandboxOptions;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::support::child::{self, Ran, Running, run};
use crate::support::files_under;
use crate::support::live::{Gate, Live, user_id};

/// The client secret of every tenant here: long and distinctive, so that any slice of it is
/// found wherever it lands. Only characters that JSON and form encoding leave as they are.
const SECRET: &str = "cs-LEAKCANARY-9f3Kq7Zt2Wm8Xv4Hn6Rb1Jp5Yd0Gc3Ls7Ue2Ta8";
/// A client secret the tenant refuses.
const WRONG_SECRET: &str = "cs-WRONGCANARY-4Tg8Lq1Zr6Wn3Xm9Hb5Kv2Jd7Yc0Pf4Ns8Ea";
/// A static token the tenant does not know.
const WRONG_TOKEN: &str = "tk-WRONGTOKEN-7Rd2Mv5Xq8Lw1Zk4Hs9Jb6Nc3Yf0Pg7Tt2Ue5";
/// The sandbox's default database connection.
const DB: &str = "Username-Password-Authentication";

/// Every verbosity a user can ask for: each prints a different set of lines.
const LEVELS: [&[&str]; 6] = [&["-q"], &[], &["-v"], &["-vv"], &["-vvv"], &["--json"]];

// ---- the leak check ---------------------------------------------------------------------------

/// Something the tool produced: a stream of one run or a file it left.
struct Haystack {
    name: String,
    bytes: Vec<u8>,
}

/// A value that must never appear, with what it is.
struct Secret {
    what: String,
    value: String,
}

impl Secret {
    fn new(what: impl Into<String>, value: impl Into<String>) -> Secret {
        let value = value.into();
        assert!(value.len() >= 24, "a secret too short to slice: {value:?}");
        Secret {
            what: what.into(),
            value,
        }
    }

    /// The whole value, and its first and last 12 characters (a truncated or wrapped copy).
    fn needles(&self) -> [(&'static str, &str); 3] {
        let v = self.value.as_str();
        [
            ("whole", v),
            ("first 12 characters", &v[..12]),
            ("last 12 characters", &v[v.len() - 12..]),
        ]
    }
}

/// Everything a test's runs produced, collected right after each run (a later run may
/// rewrite a file).
#[derive(Default)]
struct Evidence {
    haystacks: Vec<Haystack>,
}

impl Evidence {
    /// The run's stdout and stderr.
    fn streams(&mut self, run: &str, ran: &Ran) {
        self.haystacks.push(Haystack {
            name: format!("{run}: stdout"),
            bytes: ran.stdout.clone(),
        });
        self.haystacks.push(Haystack {
            name: format!("{run}: stderr"),
            bytes: ran.stderr.clone().into_bytes(),
        });
    }

    /// Every file under `dir`, recursively: output, `.partial`, state, rejects, plan.
    fn files(&mut self, run: &str, dir: &Path) {
        for path in files_under(dir) {
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            self.haystacks.push(Haystack {
                name: format!("{run}: {}", path.display()),
                bytes,
            });
        }
    }

    /// Both, for a run that worked in `dir`.
    fn run(&mut self, run: &str, ran: &Ran, dir: &Path) {
        self.streams(run, ran);
        self.files(run, dir);
    }

    /// Fails unless some collected file's name ends with each of `suffixes`: the check did
    /// look where a leak would be.
    fn expect_files(&self, suffixes: &[&str]) {
        for suffix in suffixes {
            assert!(
                self.haystacks.iter().any(|h| h.name.ends_with(suffix)),
                "no collected file ends with {suffix:?}; collected:\n{}",
                self.haystacks
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

/// Fails, naming every stream or file and byte offset, when any slice of any secret appears in
/// any haystack.
fn assert_no_secrets(haystacks: &[Haystack], secrets: &[Secret]) {
    let mut leaks = Vec::new();
    for haystack in haystacks {
        for secret in secrets {
            for (part, needle) in secret.needles() {
                let needle = needle.as_bytes();
                let mut offset = 0;
                while let Some(at) = find(&haystack.bytes[offset..], needle) {
                    let at = offset + at;
                    let from = at.saturating_sub(40);
                    let to = (at + needle.len() + 40).min(haystack.bytes.len());
                    leaks.push(format!(
                        "{} ({part}) in {} at byte {at}: …{}…",
                        secret.what,
                        haystack.name,
                        String::from_utf8_lossy(&haystack.bytes[from..to]).escape_debug()
                    ));
                    offset = at + needle.len();
                }
            }
        }
    }
    let bytes: usize = haystacks.iter().map(|h| h.bytes.len()).sum();
    assert!(
        leaks.is_empty(),
        "{} leak(s) of {} secret(s) in {} streams and files:\n{}",
        leaks.len(),
        secrets.len(),
        haystacks.len(),
        leaks.join("\n")
    );
    eprintln!(
        "no slice of {} secrets in {} streams and files ({bytes} bytes)",
        secrets.len(),
        haystacks.len()
    );
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The client secret and every access token the tenant issued (to the tool or the test).
fn secrets_of(live: &Live) -> Vec<Secret> {
    let mut secrets = vec![Secret::new("the client secret", live.client_secret())];
    for (i, token) in live.tenant.sandbox.issued_tokens().into_iter().enumerate() {
        secrets.push(Secret::new(format!("issued access token #{i}"), token));
    }
    secrets.push(Secret::new("the refused client secret", WRONG_SECRET));
    secrets.push(Secret::new("the refused static token", WRONG_TOKEN));
    secrets
}

#[test]
fn the_secret_check_names_the_stream_and_offset_of_every_leak() {
    let haystacks = [
        Haystack {
            name: "run: stderr".into(),
            bytes: format!("DEBUG token={SECRET}\n").into_bytes(),
        },
        Haystack {
            name: "run: users.ndjson.state/export.json".into(),
            bytes: format!("{{\"t\":\"{}\"}}", &SECRET[20..]).into_bytes(),
        },
        Haystack {
            name: "run: stdout".into(),
            bytes: b"nothing here".to_vec(),
        },
    ];
    let failed = std::panic::catch_unwind(|| {
        assert_no_secrets(&haystacks, &[Secret::new("the client secret", SECRET)]);
    })
    .expect_err("the check fails on a leak");
    let message = failed
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(
        message.contains("the client secret (whole) in run: stderr at byte 12"),
        "{message}"
    );
    assert!(
        message.contains("(last 12 characters) in run: users.ndjson.state/export.json"),
        "{message}"
    );
    assert!(!message.contains("run: stdout"), "{message}");
}

// ---- tenants and inputs -----------------------------------------------------------------------

/// A tenant of `users` generated users whose client secret is [`SECRET`].
fn tenant(users: usize, latency_ms: u64) -> Live {
    Live::start(SandboxOptions {
        generate: users,
        client_secret: Some(SECRET.into()),
        latency: Duration::from_millis(latency_ms),
        ..Default::default()
    })
}

fn level_name(level: &[&str]) -> String {
    if level.is_empty() {
        "default".into()
    } else {
        level.join(" ")
    }
}

/// Import records for `live`: updates of existing database users, new users, and records
/// that are rejected (bad JSON, a bad email, an unknown field). Each record carries what a
/// create needs, as upsert asks.
fn import_input(live: &Live, path: &Path, updates: usize, creates: usize) {
    let mut lines = Vec::new();
    let users = live.tenant.sandbox.users();
    let database_users = users
        .iter()
        .filter(|u| u["identities"][0]["connection"] == DB && u["email"].is_string());
    for (i, user) in database_users.take(updates).enumerate() {
        lines.push(
            json!({"user_id": user_id(user), "email": user["email"], "connection": DB, "user_metadata": {"security_check": i}})
                .to_string(),
        );
    }
    assert_eq!(lines.len(), updates, "enough database users to update");
    for i in 0..creates {
        lines.push(
            json!({"user_id": format!("auth0|sec-new-{i}"), "email": format!("sec-new-{i}@example.com"), "connection": DB})
                .to_string(),
        );
    }
    lines.push(r#"{"user_id": "auth0|sec-bad-json", "email": "#.to_string());
    lines.push(
        json!({"user_id": "auth0|sec-bad-email", "email": "not-an-email", "connection": DB})
            .to_string(),
    );
    lines.push(
        json!({"user_id": "auth0|sec-bad-field", "email": "bad-field@example.com", "connection": DB, "favourite_colour": "blue"})
            .to_string(),
    );
    std::fs::write(path, lines.join("\n") + "\n").expect("the input is written");
}

/// A fresh folder for one run, under the test's temporary folder.
fn folder(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name.replace(' ', "_"));
    std::fs::create_dir_all(&dir).expect("a run folder");
    dir
}

// ---- 1. secrets -------------------------------------------------------------------------------

#[test]
fn no_secret_or_token_in_anything_a_successful_export_produces_at_any_log_level() {
    let live = tenant(300, 0);
    let root = tempfile::tempdir().unwrap();
    let mut evidence = Evidence::default();
    for level in LEVELS {
        let name = format!("export {}", level_name(level));
        let dir = folder(root.path(), &name);
        let ran = run(
            child::export(live.domain(), live.client_id(), live.client_secret())
                .arg("--output")
                .arg(dir.join("users.ndjson"))
                .args(level),
        );
        ran.expect_code(0);
        evidence.run(&name, &ran, &dir);
        if level.contains(&"-v") || level.contains(&"-vv") {
            assert!(ran.stderr.contains("DEBUG"), "{name} logs at debug level");
        }
        if level.contains(&"-vvv") {
            assert!(ran.stderr.contains("TRACE"), "{name} logs at trace level");
        }
    }
    let dir = folder(root.path(), "export flatten csv");
    let ran = run(
        child::export(live.domain(), live.client_id(), live.client_secret())
            .arg("--output")
            .arg(dir.join("users.csv.gz"))
            .args(["--csv-metadata", "flatten", "-vv", "--json"]),
    );
    ran.expect_code(0);
    evidence.run("export flatten csv -vv", &ran, &dir);
    let dir = folder(root.path(), "export stdout");
    let ran = run(
        child::export(live.domain(), live.client_id(), live.client_secret())
            .args(["--output", "-", "-vv", "--json"])
            .current_dir(&dir),
    );
    ran.expect_code(0);
    assert!(ran.stdout.len() > 10_000, "the users are on stdout");
    evidence.run("export to stdout -vv", &ran, &dir);

    evidence.expect_files(&["users.ndjson", "users.csv.gz", "export.json", "lock"]);
    let secrets = secrets_of(&live);
    assert!(
        secrets.len() >= 2 + 8 + 2,
        "a token for each run was issued"
    );
    assert_no_secrets(&evidence.haystacks, &secrets);
}

#[test]
fn no_secret_or_token_in_anything_an_import_produces_in_any_mode_or_dry_run() {
    let live = tenant(300, 0);
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("records.ndjson");
    import_input(&live, &input, 20, 20);
    let mut evidence = Evidence::default();
    let mut import = |name: &str, args: &[&str], code: i32| {
        let dir = folder(root.path(), name);
        let ran = run(
            child::import(live.domain(), live.client_id(), live.client_secret())
                .arg("--input")
                .arg(&input)
                .arg("--state")
                .arg(dir.join("import.state"))
                .arg("--rejects")
                .arg(dir.join("rejects.ndjson"))
                .args(["--passwords", "random"])
                .args(args),
        );
        ran.expect_code(code);
        evidence.run(name, &ran, &dir);
        (ran, dir)
    };
    // Every mode, then every log level (upsert creates, updates and rejects).
    for mode in ["create", "update"] {
        import(&format!("import {mode}"), &["--mode", mode, "-vv"], 3);
    }
    for level in LEVELS {
        let name = format!("import upsert {}", level_name(level));
        import(&name, &[&["--mode", "upsert"][..], level].concat(), 3);
    }
    for level in LEVELS {
        let name = format!("dry run {}", level_name(level));
        let dir = folder(root.path(), &name);
        let plan = dir.join("plan.ndjson");
        let plan = plan.to_str().expect("a UTF-8 path");
        let (ran, _) = import(
            &name,
            &[
                &["--mode", "upsert", "--dry-run", "--plan", plan][..],
                level,
            ]
            .concat(),
            3,
        );
        if level != ["-q"] {
            assert!(ran.stderr.contains("dry run"), "{}", ran.stderr);
        }
    }

    evidence.expect_files(&[
        "rejects.ndjson",
        "plan.ndjson",
        "ledger.ndjson",
        "import.json",
    ]);
    assert_no_secrets(&evidence.haystacks, &secrets_of(&live));
}

#[test]
fn no_secret_or_token_in_anything_a_failed_run_produces() {
    let live = tenant(300, 0);
    let gate = Gate::start(&live);
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("records.ndjson");
    import_input(&live, &input, 10, 10);
    // The sandbox checks the audience: named by another host name, it answers 403.
    let by_name = live.domain().replace("127.0.0.1", "localhost");
    let mut evidence = Evidence::default();
    let mut failed = |name: String, command: &mut Command, code: i32, says: &str| {
        let dir = folder(root.path(), &name);
        let ran = run(command.current_dir(&dir));
        ran.expect_code(code);
        assert!(
            ran.stderr.contains(says),
            "{name} says {says:?}: {}",
            ran.stderr
        );
        evidence.run(&name, &ran, &dir);
    };
    for level in LEVELS {
        let level_name = level_name(level);
        let output = ["--output", "users.ndjson"];
        let records = [
            "--input",
            input.to_str().unwrap(),
            "--mode",
            "upsert",
            "--passwords",
            "random",
        ];
        failed(
            format!("export, wrong secret (401), {level_name}"),
            child::export(live.domain(), live.client_id(), WRONG_SECRET)
                .args(output)
                .args(level),
            2,
            "401",
        );
        failed(
            format!("import, wrong secret (401), {level_name}"),
            child::import(live.domain(), live.client_id(), WRONG_SECRET)
                .args(records)
                .args(["--rejects", "rejects.ndjson", "--state", "import.state"])
                .args(level),
            2,
            "401",
        );
        failed(
            format!("export, audience refused (403), {level_name}"),
            child::export(&by_name, live.client_id(), live.client_secret())
                .args(output)
                .args(level),
            2,
            "403",
        );
        failed(
            format!("export, wrong static token, {level_name}"),
            child::binary()
                .args(["export", "--domain", live.domain(), "--token", WRONG_TOKEN])
                .args(output)
                .args(level),
            2,
            "401",
        );
        // Past the retry budget (the gate answers 503 with Retry-After: 0, so it is quick).
        gate.go_down();
        failed(
            format!("export, tenant down, {level_name}"),
            child::export(gate.domain(), live.client_id(), live.client_secret())
                .args(output)
                .args(level),
            1,
            "503",
        );
        failed(
            format!("import, tenant down, {level_name}"),
            child::import(gate.domain(), live.client_id(), live.client_secret())
                .args(records)
                .args(["--rejects", "rejects.ndjson", "--state", "import.state"])
                .args(level),
            1,
            "503",
        );
        gate.heal();
    }
    assert!(gate.refused() > 0, "the gate was down for some requests");
    evidence.expect_files(&["export.json", "import.json", "lock"]);
    assert_no_secrets(&evidence.haystacks, &secrets_of(&live));
}

#[test]
fn no_secret_or_token_in_what_a_killed_or_interrupted_run_leaves_and_its_resume() {
    let root = tempfile::tempdir().unwrap();
    let mut evidence = Evidence::default();

    // An export killed (SIGKILL) with part of its users saved, then resumed. Several windows
    // of users, so that the first checkpoint comes well before the end (with one window the
    // run could finish before the kill).
    let slow = tenant(3_000, 60);
    let dir = folder(root.path(), "killed export");
    let output = dir.join("users.ndjson");
    let command = || {
        let mut command = child::export(slow.domain(), slow.client_id(), slow.client_secret());
        command
            .arg("--output")
            .arg(&output)
            .args(["--concurrency", "1", "-vv"]);
        command
    };
    let running = Running::spawn(&mut command());
    wait_until("a checkpoint with users", || {
        checkpoint_users(&dir.join("users.ndjson.state")) > 0
    });
    let killed = running.kill();
    assert!(dir.join("users.ndjson.partial").exists(), "killed mid-run");
    evidence.run("killed export", &killed, &dir);
    assert_private(&dir, &[dir.join("users.ndjson.state")]);
    let resumed = run(&mut command());
    resumed.expect_code(0);
    assert!(resumed.stderr.contains("Resuming"), "{}", resumed.stderr);
    evidence.run("resumed export", &resumed, &dir);

    // An import interrupted (SIGINT: exit 130, ledger saved), then resumed.
    let dir = folder(root.path(), "interrupted import");
    let input = dir.join("records.ndjson");
    import_input(&slow, &input, 15, 15);
    let state = dir.join("records.ndjson.state");
    let command = || {
        let mut command = child::import(slow.domain(), slow.client_id(), slow.client_secret());
        command.arg("--input").arg(&input).args([
            "--mode",
            "upsert",
            "--passwords",
            "random",
            "--concurrency",
            "2",
            "-vv",
        ]);
        command
    };
    let running = Running::spawn(&mut command());
    wait_until("outcomes in the ledger", || ledger_outcomes(&state) >= 4);
    running.interrupt();
    let interrupted = running.wait();
    interrupted.expect_code(130);
    evidence.run("interrupted import", &interrupted, &dir);
    assert_private(&dir, std::slice::from_ref(&state));
    let resumed = run(&mut command());
    resumed.expect_code(3);
    evidence.run("resumed import", &resumed, &dir);

    evidence.expect_files(&[".partial", "export.json", "ledger.ndjson", "rejects.ndjson"]);
    assert_no_secrets(&evidence.haystacks, &secrets_of(&slow));
}

#[test]
fn a_static_token_never_appears_in_anything_the_tool_produces() {
    let live = tenant(300, 0);
    // A token the test asks for itself, given to the tool with --token.
    let reply = live.block_on(live.tenant.token_request(&live.tenant.credentials()));
    let token = reply.body["access_token"]
        .as_str()
        .expect("a token")
        .to_string();
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("records.ndjson");
    import_input(&live, &input, 10, 10);
    let mut evidence = Evidence::default();
    for level in LEVELS {
        let name = format!("export --token {}", level_name(level));
        let dir = folder(root.path(), &name);
        let ran = run(child::binary()
            .args(["export", "--domain", live.domain(), "--token", &token])
            .arg("--output")
            .arg(dir.join("users.ndjson"))
            .args(level));
        ran.expect_code(0);
        // `-q` prints nothing but errors: the notice is there at every other level.
        if level != ["-q"] {
            assert!(ran.stderr.contains("a ready token"), "{}", ran.stderr);
        }
        evidence.run(&name, &ran, &dir);
    }
    let dir = folder(root.path(), "import --token");
    let ran = run(child::binary()
        .args(["import", "--domain", live.domain(), "--input"])
        .arg(&input)
        .arg("--state")
        .arg(dir.join("import.state"))
        .arg("--rejects")
        .arg(dir.join("rejects.ndjson"))
        .args([
            "--token",
            &token,
            "--mode",
            "upsert",
            "--passwords",
            "random",
        ])
        .args(["-vv", "--json"]));
    ran.expect_code(3);
    evidence.run("import --token -vv", &ran, &dir);

    evidence.expect_files(&["users.ndjson", "rejects.ndjson", "ledger.ndjson"]);
    let mut secrets = secrets_of(&live);
    secrets.push(Secret::new("the static token", token));
    assert_eq!(
        live.tenant.sandbox.issued_tokens().len(),
        2,
        "the tool asked for no token of its own (the test's two are all)"
    );
    assert_no_secrets(&evidence.haystacks, &secrets);
}

// ---- 1b. password hashes ----------------------------------------------------------------------

/// `n` random bytes, as hex: distinctive enough to be found wherever a copy lands.
fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

fn random_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|_| rand::random::<u8>()).collect()
}

/// PHC's B64 (standard alphabet, no padding).
fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

/// Records with password hashes of every algorithm (some breaking Auth0's rules, one that
/// cannot be read), and a separate hash file for records without one: the values, salts and
/// keys in them are the secrets (the format around them, such as `$argon2id$v=19$`, is not).
struct Hashed {
    records: Vec<String>,
    plain: Vec<String>,
    hash_file: Vec<String>,
    secrets: Vec<Secret>,
}

fn hashed_records() -> Hashed {
    let mut secrets = Vec::new();
    let mut secret = |what: &str, value: String| {
        secrets.push(Secret::new(what, value.clone()));
        value
    };
    let record = |id: &str, field: &str, hash: Value| {
        let mut record = json!({"user_id": format!("auth0|{id}"), "email": format!("{id}@example.com"), "connection": DB});
        record[field] = hash;
        record.to_string()
    };
    let bcrypt_tail: String = (0..53)
        .map(|_| {
            let alphabet = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            alphabet[rand::random_range(0..alphabet.len())] as char
        })
        .collect();
    let bcrypt = format!("$2b$10${}", secret("a bcrypt hash", bcrypt_tail));
    let argon2 = format!(
        "$argon2id$v=19$m=65536,t=2,p=1${}${}",
        secret("an argon2 salt", b64(&random_bytes(24))),
        secret("an argon2 hash", b64(&random_bytes(32)))
    );
    let pbkdf2 = format!(
        "$pbkdf2-sha256$i=100000,l=32${}${}",
        secret("a pbkdf2 salt", b64(&random_bytes(24))),
        secret("a pbkdf2 hash", b64(&random_bytes(32)))
    );
    let ldap = {
        use base64::Engine as _;
        let stored = base64::engine::general_purpose::STANDARD.encode(random_bytes(64 + 16));
        format!("{{SSHA512}}{}", secret("an LDAP hash", stored))
    };
    let records = vec![
        record(
            "sec-hash-sha256",
            "custom_password_hash",
            json!({"algorithm": "sha256",
            "hash": {"value": secret("a sha256 hash", random_hex(32)), "encoding": "hex"},
            "salt": {"value": secret("a sha256 salt", format!("salt-{}", random_hex(16))), "position": "prefix"}}),
        ),
        record(
            "sec-hash-hmac",
            "custom_password_hash",
            json!({"algorithm": "hmac",
            "hash": {"value": secret("an hmac hash", random_hex(64)), "encoding": "hex", "digest": "sha512",
                     "key": {"value": secret("an hmac key", format!("key-{}", random_hex(16)))}},
            "salt": {"value": secret("an hmac salt", random_hex(16)), "encoding": "hex", "position": "suffix"}}),
        ),
        record(
            "sec-hash-scrypt",
            "custom_password_hash",
            json!({"algorithm": "scrypt",
            "hash": {"value": secret("a scrypt hash", random_hex(32)), "encoding": "hex"},
            "salt": {"value": secret("a scrypt salt", random_hex(16)), "encoding": "hex"}, "keylen": 32, "cost": 4096}),
        ),
        record("sec-hash-bcrypt", "password_hash", json!(bcrypt)),
        record(
            "sec-hash-argon2",
            "custom_password_hash",
            json!({"algorithm": "argon2", "hash": {"value": argon2}}),
        ),
        record(
            "sec-hash-pbkdf2",
            "custom_password_hash",
            json!({"algorithm": "pbkdf2", "hash": {"value": pbkdf2, "encoding": "utf8"}}),
        ),
        record(
            "sec-hash-ldap",
            "custom_password_hash",
            json!({"algorithm": "ldap", "hash": {"value": ldap}}),
        ),
        // Breaking the rules: a salt in an unknown encoding, a value that is not hex.
        record(
            "sec-hash-bad-salt",
            "custom_password_hash",
            json!({"algorithm": "md5",
            "hash": {"value": secret("an md5 hash", random_hex(16)), "encoding": "hex"},
            "salt": {"value": secret("a salt refused", random_hex(16)), "encoding": "ebcdic"}}),
        ),
        record(
            "sec-hash-not-hex",
            "custom_password_hash",
            json!({"algorithm": "sha1",
            "hash": {"value": secret("a value refused", format!("not-hex-{}", random_hex(16))), "encoding": "hex"}}),
        ),
        // A line that cannot be read, with a hash in it.
        format!(
            r#"{{"user_id": "auth0|sec-hash-raw", "custom_password_hash": {{"algorithm": "md5", "hash": {{"value": "{}""#,
            secret("the hash of an unreadable line", random_hex(16))
        ),
    ];
    let plain: Vec<String> = (0..6)
        .map(|i| json!({"user_id": format!("auth0|sec-file-{i}"), "email": format!("sec-file-{i}@example.com"), "connection": DB}).to_string())
        .collect();
    let hash_file = (0..6)
        .map(|i| {
            let key = if i % 2 == 0 {
                json!({"user_id": format!("sec-file-{i}")})
            } else {
                json!({"email": format!("SEC-FILE-{i}@example.com")})
            };
            let mut line = key;
            line["custom_password_hash"] = json!({"algorithm": "sha512",
                "hash": {"value": secret("a hash from the file", random_hex(64)), "encoding": "hex"},
                "salt": {"value": secret("a salt from the file", random_hex(16)), "encoding": "hex"}});
            line.to_string()
        })
        .collect();
    Hashed {
        records,
        plain,
        hash_file,
        secrets,
    }
}

#[test]
fn no_password_hash_in_anything_an_import_with_hashes_produces() {
    let live = tenant(50, 0);
    let root = tempfile::tempdir().unwrap();
    let hashed = hashed_records();
    let input = root.path().join("hashed.ndjson");
    std::fs::write(&input, hashed.records.join("\n") + "\n").unwrap();
    let plain = root.path().join("plain.ndjson");
    std::fs::write(&plain, hashed.plain.join("\n") + "\n").unwrap();
    let hash_file = root.path().join("hashes.ndjson");
    std::fs::write(&hash_file, hashed.hash_file.join("\n") + "\n").unwrap();
    let hash_file = hash_file.to_str().expect("a UTF-8 path");
    let mut evidence = Evidence::default();
    let mut import = |name: &str, input: &Path, args: &[&str], code: i32| {
        let dir = folder(root.path(), name);
        let plan = dir.join("plan.ndjson");
        let dry = args.contains(&"--dry-run");
        let ran = run(
            child::import(live.domain(), live.client_id(), live.client_secret())
                .arg("--input")
                .arg(input)
                .arg("--state")
                .arg(dir.join("import.state"))
                .arg("--rejects")
                .arg(dir.join("rejects.ndjson"))
                .args(["--passwords", "random"])
                .args(if dry {
                    vec!["--plan", plan.to_str().expect("a UTF-8 path")]
                } else {
                    vec![]
                })
                .args(args),
        );
        ran.expect_code(code);
        evidence.run(name, &ran, &dir);
        (ran, dir)
    };
    // The API engine refuses every hash that would be created, and says how to import it.
    let (ran, dir) = import("hashes api create", &input, &["--mode", "create", "-vv"], 3);
    assert!(ran.stderr.contains("needs_job_engine"), "{}", ran.stderr);
    let rejects = std::fs::read_to_string(dir.join("rejects.ndjson")).unwrap();
    assert_eq!(
        rejects.lines().count(),
        hashed.records.len(),
        "every hashed record is rejected"
    );
    for line in rejects.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        let error = &entry["_error"];
        if error["code"] == "invalid_json" {
            assert_eq!(error["raw_omitted"], true, "{entry}");
        } else {
            assert_eq!(error["hash_removed"], true, "{entry}");
            assert!(
                error["message"]
                    .as_str()
                    .unwrap()
                    .contains("--password-hashes"),
                "{entry}"
            );
        }
    }
    assert!(live.tenant.sandbox.users().iter().all(|u| {
        !u["user_id"]
            .as_str()
            .unwrap_or_default()
            .contains("sec-hash")
    }));
    for level in LEVELS {
        let name = format!("hashes api upsert {}", level_name(level));
        import(
            &name,
            &input,
            &[&["--mode", "upsert"][..], level].concat(),
            3,
        );
    }
    import("hashes update", &input, &["--mode", "update", "-vv"], 3);
    // A dry run of the job engine plans the good hashes and refuses the bad ones.
    for level in [&["-vv"][..], &["--json"]] {
        let name = format!("hashes job dry run {}", level_name(level));
        let (ran, dir) = import(
            &name,
            &input,
            &[&["--dry-run", "--engine", "job"][..], level].concat(),
            3,
        );
        let plan = std::fs::read_to_string(dir.join("plan.ndjson")).unwrap();
        assert_eq!(plan.matches("\"would_create\"").count(), 7, "{plan}");
        assert!(
            ran.stderr.contains("invalid_password_hash"),
            "{}",
            ran.stderr
        );
    }
    // Hashes from their own file.
    let (_, dir) = import(
        "hash file job dry run",
        &plain,
        &[
            "--dry-run",
            "--engine",
            "job",
            "--password-hashes",
            hash_file,
            "-vv",
        ],
        0,
    );
    let plan = std::fs::read_to_string(dir.join("plan.ndjson")).unwrap();
    assert_eq!(plan.matches("\"would_create\"").count(), 6, "{plan}");
    // A hash file with a bad line: exit 2, naming the line and the field, nothing sent.
    let bad_file = root.path().join("bad-hashes.ndjson");
    let mut lines = hashed.hash_file.clone();
    let mut bad: Value = serde_json::from_str(&lines[2]).unwrap();
    bad["custom_password_hash"]["salt"]["position"] = "middle".into();
    lines[2] = bad.to_string();
    std::fs::write(&bad_file, lines.join("\n") + "\n").unwrap();
    let (ran, dir) = import(
        "bad hash file",
        &plain,
        &[
            "--engine",
            "job",
            "--dry-run",
            "--password-hashes",
            bad_file.to_str().unwrap(),
            "-vv",
        ],
        2,
    );
    assert!(
        ran.stderr
            .contains("line 3, field custom_password_hash.salt.position"),
        "{}",
        ran.stderr
    );
    assert!(!dir.join("plan.ndjson").exists(), "nothing is planned");
    // The job engine creates the good records with their hashes: nothing it writes (its
    // journal included) holds one, nor does what it makes of the job's error list.
    let (ran, _) = import("job engine", &input, &["--engine", "job", "-vv"], 3);
    assert!(
        ran.stderr.contains("invalid_password_hash"),
        "{}",
        ran.stderr
    );
    import(
        "hash file job",
        &plain,
        &["--engine", "job", "--password-hashes", hash_file, "-vv"],
        0,
    );

    evidence.expect_files(&[
        "rejects.ndjson",
        "plan.ndjson",
        "ledger.ndjson",
        "import.json",
        "jobs.ndjson",
    ]);
    let mut secrets = secrets_of(&live);
    secrets.extend(hashed.secrets);
    assert_no_secrets(&evidence.haystacks, &secrets);
}

// ---- 2. file modes ----------------------------------------------------------------------------

/// Every directory under `dir`, recursively, `dir` included.
fn dirs_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for entry in std::fs::read_dir(dir).expect("a directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            out.extend(dirs_under(&path));
        }
    }
    out
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every file under `dir` that the tool wrote is 0600, and each state directory (with every
/// directory inside it) is 0700. Files the test wrote (`records.ndjson`) are left out.
fn assert_private(dir: &Path, states: &[PathBuf]) {
    let mut wrong = Vec::new();
    for file in files_under(dir) {
        if file.file_name().is_some_and(|n| n == "records.ndjson") {
            continue;
        }
        if mode(&file) != 0o600 {
            wrong.push(format!("{:o} {}", mode(&file), file.display()));
        }
    }
    for state in states {
        for d in dirs_under(state) {
            if mode(&d) != 0o700 {
                wrong.push(format!("{:o} {}/", mode(&d), d.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "not private (files 600, state directories 700):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_file_the_tool_creates_is_0600_and_every_state_directory_0700() {
    let live = tenant(300, 0);
    let root = tempfile::tempdir().unwrap();
    let export = |dir: &Path, name: &str, args: &[&str]| {
        run(
            child::export(live.domain(), live.client_id(), live.client_secret())
                .arg("--output")
                .arg(dir.join(name))
                .args(args)
                .arg("-q"),
        )
        .expect_code(0);
    };

    // Exports in each shape, with their default state beside them.
    let dir = folder(root.path(), "exports");
    for (name, args) in [
        ("users.ndjson", &[][..]),
        ("users.ndjson.gz", &[][..]),
        ("users.csv", &["--csv-metadata", "json"][..]),
        ("users-flat.csv", &["--csv-metadata", "flatten"][..]),
    ] {
        export(&dir, name, args);
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    let states: Vec<PathBuf> = [
        "users.ndjson",
        "users.ndjson.gz",
        "users.csv",
        "users-flat.csv",
    ]
    .iter()
    .map(|n| dir.join(format!("{n}.state")))
    .collect();
    assert_private(&dir, &states);

    // A --state that does not exist yet, several levels deep: each level is made 0700.
    let dir = folder(root.path(), "deep state");
    let deep = dir.join("a/b/state");
    export(&dir, "users.ndjson", &["--state", deep.to_str().unwrap()]);
    let state = dir.join("a");
    assert_private(&dir, std::slice::from_ref(&state));
    assert!(dir.join("a/b/state/export.json").exists());

    // Files and a state directory that already exist, readable by all: the run tightens them.
    let dir = folder(root.path(), "loose");
    let input = dir.join("records.ndjson");
    import_input(&live, &input, 5, 5);
    let loose_state = dir.join("import.state");
    let export_state = dir.join("users.ndjson.state");
    std::fs::create_dir(&loose_state).unwrap();
    std::fs::create_dir(&export_state).unwrap();
    for path in [
        dir.join("rejects.ndjson"),
        dir.join("plan.ndjson"),
        dir.join("users.ndjson"),
        dir.join("users.ndjson.partial"),
        loose_state.join("lock"),
        loose_state.join("ledger.ndjson"),
        export_state.join("lock"),
    ] {
        std::fs::write(&path, "").unwrap();
    }
    set_modes(&dir, 0o644, 0o755);
    // No run of this job wrote users.ndjson: replacing it takes --overwrite.
    export(&dir, "users.ndjson", &["--overwrite"]);
    let import = |args: &[&str]| {
        run(
            child::import(live.domain(), live.client_id(), live.client_secret())
                .arg("--input")
                .arg(&input)
                .current_dir(&dir)
                .args(["--mode", "upsert", "--passwords", "random", "-q"])
                .args(args),
        )
        .expect_code(3);
    };
    import(&["--dry-run", "--plan", "plan.ndjson"]);
    import(&["--state", "import.state", "--rejects", "rejects.ndjson"]);
    assert_private(&dir, &[loose_state, export_state]);

    // An import with its defaults: rejects and state beside the input.
    let dir = folder(root.path(), "import defaults");
    let input = dir.join("records.ndjson");
    import_input(&live, &input, 5, 5);
    run(
        child::import(live.domain(), live.client_id(), live.client_secret())
            .arg("--input")
            .arg(&input)
            .args(["--mode", "upsert", "--passwords", "random", "-q"]),
    )
    .expect_code(3);
    assert!(dir.join("records.ndjson.rejects.ndjson").exists());
    assert_private(&dir, &[dir.join("records.ndjson.state")]);

    // A flattened CSV export killed in its first pass: the scratch NDJSON in the state, the
    // checkpoint and the lock are all private. Several windows, so that the kill comes before
    // the first pass ends.
    let slow = tenant(3_000, 60);
    let dir = folder(root.path(), "killed flatten");
    let state = dir.join("users.csv.state");
    let running = Running::spawn(
        child::export(slow.domain(), slow.client_id(), slow.client_secret())
            .arg("--output")
            .arg(dir.join("users.csv"))
            .args(["--csv-metadata", "flatten", "--concurrency", "1", "-q"]),
    );
    wait_until("a checkpoint with users", || checkpoint_users(&state) > 0);
    let killed = running.kill();
    let left: Vec<String> = files_under(&dir)
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.iter().any(|n| n == "flatten.ndjson.partial"),
        "killed in the first pass: {left:?}"
    );
    assert_private(&dir, &[state]);
    // What it left holds no secret either.
    let mut evidence = Evidence::default();
    evidence.run("killed flatten", &killed, &dir);
    assert_no_secrets(&evidence.haystacks, &secrets_of(&slow));
}

/// Sets every file under `dir` to `files` and every directory inside it to `dirs`.
fn set_modes(dir: &Path, files: u32, dirs: u32) {
    use std::os::unix::fs::PermissionsExt;
    for file in files_under(dir) {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(files)).unwrap();
    }
    for d in dirs_under(dir).into_iter().skip(1) {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(dirs)).unwrap();
    }
}

/// Users counted by the export checkpoint in `state` (0 when there is none yet).
fn checkpoint_users(state: &Path) -> u64 {
    std::fs::read_to_string(state.join("export.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|c| c["users"].as_u64())
        .unwrap_or(0)
}

/// Outcome entries in the import ledger in `state`.
fn ledger_outcomes(state: &Path) -> usize {
    std::fs::read_to_string(state.join("ledger.ndjson"))
        .map(|text| text.matches("\"outcome\"").count())
        .unwrap_or(0)
}

/// Polls until `ready`, failing the test after 60 s.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

// ---- 3. transport -----------------------------------------------------------------------------

/// A runtime for the test's own servers.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// This machine's address on its default route (not loopback), if it has one. Connecting a
/// UDP socket sends nothing.
fn non_loopback_address() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// A TCP listener that counts connections and closes them at once.
struct Listener {
    addr: SocketAddr,
    connections: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
}

impl Listener {
    fn start(ip: IpAddr) -> Listener {
        let listener = std::net::TcpListener::bind((ip, 0)).expect("the listener binds");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, done) = (connections.clone(), stop.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok(_) => {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Listener {
            addr,
            connections,
            stop,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn plain_http_is_refused_before_any_request_unless_the_host_is_loopback() {
    let live = tenant(300, 0);
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("records.ndjson");
    import_input(&live, &input, 3, 3);
    let mut domains = vec!["http://example.com".to_string()];
    // A listener on this machine's own non-loopback address: if the tool sent anything in
    // clear text, it would arrive here.
    let listener = non_loopback_address().map(Listener::start);
    match &listener {
        Some(l) => domains.push(format!("http://{}", l.addr)),
        None => eprintln!("no non-loopback address here; checking http://example.com only"),
    }
    let mut evidence = Evidence::default();
    for domain in &domains {
        let dir = folder(root.path(), &domain.replace([':', '/', '.'], "_"));
        let runs = [
            run(
                child::export(domain, live.client_id(), live.client_secret())
                    .args(["--output", "users.ndjson", "-vv"])
                    .current_dir(&dir),
            ),
            run(child::binary()
                .args([
                    "import",
                    "--domain",
                    domain,
                    "--token",
                    WRONG_TOKEN,
                    "--input",
                ])
                .arg(&input)
                .args(["--passwords", "random", "-vv"])
                .current_dir(&dir)),
        ];
        for ran in runs {
            ran.expect_code(2);
            assert!(
                ran.stderr
                    .contains("plain http:// is allowed only for loopback"),
                "{}",
                ran.stderr
            );
            evidence.run(domain, &ran, &dir);
        }
        assert!(files_under(&dir).is_empty(), "{domain}: nothing written");
    }
    if let Some(listener) = &listener {
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            listener.connections.load(Ordering::SeqCst),
            0,
            "nothing reached {}",
            listener.addr
        );
    }
    assert!(live.api_requests().is_empty(), "no request anywhere");
    assert_no_secrets(&evidence.haystacks, &secrets_of(&live));

    // Loopback by name works (through a gate, which names the sandbox's own audience).
    let gate = Gate::start(&live);
    let by_name = gate.domain().replace("127.0.0.1", "localhost");
    let dir = folder(root.path(), "localhost");
    run(
        child::export(&by_name, live.client_id(), live.client_secret())
            .arg("--output")
            .arg(dir.join("users.ndjson"))
            .arg("-q"),
    )
    .expect_code(0);
    assert!(dir.join("users.ndjson").exists());
}

/// A TLS server on 127.0.0.1 with a self-signed certificate made for this test (for
/// `localhost` and `127.0.0.1`), counting what gets through.
struct TlsServer {
    addr: SocketAddr,
    certificate: CertificateDer<'static>,
    stats: Arc<Mutex<TlsStats>>,
}

#[derive(Debug, Default)]
struct TlsStats {
    connections: u32,
    handshakes: u32,
    /// Connections that sent bytes after the handshake (an HTTP request).
    requests: u32,
    /// Why the handshakes that failed failed.
    failures: Vec<String>,
}

impl TlsServer {
    async fn start() -> TlsServer {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
                .expect("a self-signed certificate");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .expect("the certificate fits the key");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(Mutex::new(TlsStats::default()));
        let counted = stats.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                counted.lock().unwrap().connections += 1;
                let (acceptor, stats) = (acceptor.clone(), counted.clone());
                tokio::spawn(async move {
                    match acceptor.accept(tcp).await {
                        Ok(mut tls) => {
                            stats.lock().unwrap().handshakes += 1;
                            let mut buf = [0u8; 1024];
                            if tls.read(&mut buf).await.is_ok_and(|n| n > 0) {
                                stats.lock().unwrap().requests += 1;
                                let _ = tls
                                    .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                    .await;
                            }
                        }
                        Err(e) => stats.lock().unwrap().failures.push(e.to_string()),
                    }
                });
            }
        });
        TlsServer {
            addr,
            certificate: cert.der().clone(),
            stats,
        }
    }

    /// A client that trusts the certificate completes a handshake and a request: the server
    /// works, so a refusal by the tool is about trust.
    async fn check_with_a_trusting_client(&self) {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.certificate.clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector
            .connect(name, tcp)
            .await
            .expect("a client that trusts the certificate connects");
        tls.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        assert!(answer.starts_with(b"HTTP/1.1 500"), "the control answer");
    }
}

#[test]
fn an_untrusted_tls_certificate_is_refused_before_any_http_request() {
    let rt = runtime();
    let server = rt.block_on(TlsServer::start());
    rt.block_on(server.check_with_a_trusting_client());
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("records.ndjson");
    std::fs::write(&input, "{\"user_id\":\"auth0|x\",\"name\":\"x\"}\n").unwrap();
    let by_address = format!("https://{}", server.addr);
    let by_name = format!("https://localhost:{}", server.addr.port());
    let mut evidence = Evidence::default();
    let runs: [(&str, Command); 2] = [
        ("export, client credentials, https://127.0.0.1", {
            let mut c = child::export(&by_address, "a-client-id", SECRET);
            c.args(["--output", "users.ndjson", "-vv"]);
            c
        }),
        ("import, static token, https://localhost", {
            let mut c = child::binary();
            c.args(["import", "--domain", &by_name, "--token", WRONG_TOKEN])
                .arg("--input")
                .arg(&input)
                .args(["--mode", "update", "-vv"]);
            c
        }),
    ];
    for (name, mut command) in runs {
        let dir = folder(root.path(), name);
        let ran = run(command.current_dir(&dir));
        ran.expect_code(2);
        assert!(
            ran.stderr.contains("TLS certificate is not trusted"),
            "{name}: {}",
            ran.stderr
        );
        assert!(ran.elapsed < Duration::from_secs(20), "{name}: no retries");
        evidence.run(name, &ran, &dir);
    }
    let stats = server.stats.lock().unwrap();
    eprintln!("{stats:?}");
    assert_eq!(
        stats.handshakes, 1,
        "only the control run's handshake completed"
    );
    assert_eq!(stats.requests, 1, "only the control run sent a request");
    assert!(stats.connections >= 3, "the tool did connect: {stats:?}");
    assert!(
        stats.failures.iter().any(|f| f.contains("alert")),
        "the tool refused the certificate during the handshake: {stats:?}"
    );
    assert_no_secrets(
        &evidence.haystacks,
        &[
            Secret::new("the client secret", SECRET),
            Secret::new("the static token", WRONG_TOKEN),
        ],
    );
}

/// A request as a test server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    authorization: Option<String>,
    body: String,
}

/// What the redirecting tenant does: answer the token request with a redirect, or issue a
/// token and redirect every API request.
#[derive(Clone, Copy, Debug)]
enum Redirecting {
    Token(u16),
    Api(u16),
}

/// The token the redirecting tenant issues.
const ISSUED: &str = "at-REDIRECTCANARY-2Kx9Qm4Wz7Lr1Vt6Hn3Jb8Yc5Pd0Gs";

struct RedirectState {
    mode: Mutex<Redirecting>,
    elsewhere: String,
    seen: Mutex<Vec<Seen>>,
}

async fn record(seen: &Mutex<Vec<Seen>>, request: Request) -> (String, String) {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        uri: path_and_query.clone(),
        authorization: parts
            .headers
            .get("authorization")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    (parts.uri.path().to_string(), path_and_query)
}

async fn redirecting(State(state): State<Arc<RedirectState>>, request: Request) -> Response {
    let (path, path_and_query) = record(&state.seen, request).await;
    let mode = *state.mode.lock().unwrap();
    let status = match mode {
        Redirecting::Api(_) if path == "/oauth/token" => {
            return Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(
                    json!({"access_token": ISSUED, "expires_in": 86400, "token_type": "Bearer"})
                        .to_string(),
                ))
                .unwrap();
        }
        Redirecting::Token(status) | Redirecting::Api(status) => status,
    };
    Response::builder()
        .status(status)
        .header("location", format!("{}{path_and_query}", state.elsewhere))
        .body(Body::empty())
        .unwrap()
}

async fn elsewhere(State(seen): State<Arc<Mutex<Vec<Seen>>>>, request: Request) -> Response {
    record(&seen, request).await;
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"access_token": "elsewhere-token-0000000000000", "expires_in": 86400, "total": 0, "users": []})
                .to_string(),
        ))
        .unwrap()
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[test]
fn a_redirect_is_reported_and_never_followed_so_no_credential_reaches_another_host() {
    let rt = runtime();
    let seen_elsewhere = Arc::new(Mutex::new(Vec::new()));
    let other = rt.block_on(serve(
        axum::Router::new()
            .fallback(elsewhere)
            .with_state(seen_elsewhere.clone()),
    ));
    let state = Arc::new(RedirectState {
        mode: Mutex::new(Redirecting::Token(307)),
        elsewhere: other.clone(),
        seen: Mutex::new(Vec::new()),
    });
    let tenant = rt.block_on(serve(
        axum::Router::new()
            .fallback(redirecting)
            .with_state(state.clone()),
    ));
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("records.ndjson");
    std::fs::write(&input, "{\"user_id\":\"auth0|x\",\"name\":\"x\"}\n").unwrap();
    let mut evidence = Evidence::default();
    for status in [301, 302, 303, 307, 308] {
        let cases: [(Redirecting, &str, Command); 3] = [
            (Redirecting::Token(status), "export, token endpoint", {
                let mut c = child::export(&tenant, "a-client-id", SECRET);
                c.args(["--output", "users.ndjson", "--concurrency", "1", "-vv"]);
                c
            }),
            (Redirecting::Api(status), "export, users endpoint", {
                let mut c = child::export(&tenant, "a-client-id", SECRET);
                c.args(["--output", "users.ndjson", "--concurrency", "1", "-vv"]);
                c
            }),
            (
                Redirecting::Api(status),
                "import with --token, user lookup",
                {
                    let mut c = child::binary();
                    c.args(["import", "--domain", &tenant, "--token", WRONG_TOKEN])
                        .arg("--input")
                        .arg(&input)
                        .args(["--mode", "update", "--concurrency", "1", "-vv"]);
                    c
                },
            ),
        ];
        for (mode, what, mut command) in cases {
            let name = format!("{what}, {status}");
            *state.mode.lock().unwrap() = mode;
            state.seen.lock().unwrap().clear();
            let dir = folder(root.path(), &name.replace(',', ""));
            let ran = run(command.current_dir(&dir));
            ran.expect_code(2);
            assert!(
                ran.stderr
                    .contains(&format!("answered {status}, a redirect to {other}/")),
                "{name}: the redirect is reported with where it pointed: {}",
                ran.stderr
            );
            assert!(
                ran.stderr.contains("never follows redirects"),
                "{name}: {}",
                ran.stderr
            );
            evidence.run(&name, &ran, &dir);
            // The tenant itself got the credentials, once: a redirect is not retried.
            let seen = state.seen.lock().unwrap().clone();
            let redirected: Vec<&Seen> = seen
                .iter()
                .filter(|s| match mode {
                    Redirecting::Token(_) => s.uri == "/oauth/token",
                    Redirecting::Api(_) => s.uri.starts_with("/api/v2/"),
                })
                .collect();
            assert_eq!(redirected.len(), 1, "{name}: asked once: {seen:?}");
            match mode {
                Redirecting::Token(_) => assert!(
                    redirected[0].method == "POST" && redirected[0].body.contains(SECRET),
                    "{name}: the control: the tenant got the secret"
                ),
                Redirecting::Api(_) => assert!(
                    redirected[0]
                        .authorization
                        .as_deref()
                        .is_some_and(|a| a.starts_with("Bearer ")),
                    "{name}: the control: the tenant got the token"
                ),
            }
        }
    }
    let seen = seen_elsewhere.lock().unwrap();
    assert!(
        seen.is_empty(),
        "the other host received requests: {:#?}",
        *seen
    );
    assert_no_secrets(
        &evidence.haystacks,
        &[
            Secret::new("the client secret", SECRET),
            Secret::new("the issued token", ISSUED),
            Secret::new("the static token", WRONG_TOKEN),
        ],
    );
}
