//! What a run tells people (issue 15): rejects counted by code with a few warning lines, not
//! thousands; `--quiet` silent on success; colour as `--color` and `NO_COLOR` say.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::child::{Running, binary, run, wait_until};
use crate::support::exports::export;
use crate::support::imports::{
    DB, beside, empty_tenant, generated, import, ledger_bytes, slow_tenant, write_ndjson,
};
use crate::support::live::Live;

/// `n` users as an export writes them (no password), all in the database connection.
fn exported_users(n: usize) -> Vec<Value> {
    generated(n, 15)
        .into_iter()
        .map(|mut user| {
            user.insert(
                "identities".into(),
                json!([{"connection": DB, "provider": "auth0", "isSocial": false}]),
            );
            Value::Object(user)
        })
        .collect()
}

/// The lines of stderr the tool logged as warnings.
fn warning_lines(stderr: &str) -> usize {
    stderr.lines().filter(|l| l.contains("WARN")).count()
}

#[test]
fn three_thousand_users_without_passwords_log_a_few_lines_and_count_missing_password() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("users.ndjson");
    write_ndjson(&input, &exported_users(3_000));
    let live = empty_tenant();
    let ran = run(import(&live)
        .arg("--input")
        .arg(&input)
        .args(["--mode", "create", "--json"]));
    ran.expect_code(3);
    let lines = ran.stderr.lines().count();
    assert!(lines < 30, "{lines} lines on stderr:\n{}", ran.stderr);
    assert_eq!(warning_lines(&ran.stderr), 5, "{}", ran.stderr);
    let summary = ran.summary();
    assert_eq!(summary["rejected"], 3_000);
    let missing = &summary["rejects_by_code"]["missing_password"];
    assert_eq!(missing["count"], 3_000, "{summary}");
    assert_eq!(missing["example"]["line"], 1, "{summary}");
    assert!(
        missing["example"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--passwords random")),
        "{summary}"
    );
    assert_eq!(
        summary["rejects_by_code"].as_object().unwrap().len(),
        1,
        "{summary}"
    );
    for said in [
        "Rejected 3,000: missing_password 3,000 (line 1: ",
        "missing_password: … and 2,995 more like this (see the rejects file).",
    ] {
        assert!(ran.stderr.contains(said), "{said:?} in:\n{}", ran.stderr);
    }
    // Every one of them is in the rejects file, logged or not.
    let rejects = std::fs::read_to_string(beside(&input, ".rejects.ndjson")).unwrap();
    assert_eq!(rejects.lines().count(), 3_000);
}

#[test]
fn quiet_prints_nothing_on_a_successful_export_and_import() {
    let source = Live::generated(300);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson");
    let ran = run(export(&source).arg("--output").arg(&output).arg("--quiet"));
    ran.expect_code(0);
    assert_eq!((ran.stderr.as_str(), ran.stdout_text().as_str()), ("", ""));

    let target = empty_tenant();
    let ran = run(import(&target).arg("--input").arg(&output).args([
        "--mode",
        "create",
        "--passwords",
        "random",
        "--quiet",
    ]));
    ran.expect_code(0);
    assert_eq!((ran.stderr.as_str(), ran.stdout_text().as_str()), ("", ""));
    assert_eq!(target.tenant.sandbox.users().len(), 300);

    // --json is asked for: it alone is printed.
    let ran = run(export(&source)
        .arg("--output")
        .arg(dir.path().join("again.ndjson"))
        .args(["--quiet", "--json"]));
    ran.expect_code(0);
    assert_eq!(ran.stderr, "");
    assert_eq!(ran.summary()["users"], 300);
}

#[test]
fn color_always_colours_the_log_and_never_or_no_color_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("users.ndjson");
    write_ndjson(&input, &exported_users(3));
    let live = empty_tenant();
    let escape = "\u{1b}[";
    let with = |args: &[&str], no_color: Option<&str>| {
        let mut command = import(&live);
        command
            .arg("--input")
            .arg(&input)
            .args(["--mode", "create", "--fresh"])
            .args(args);
        match no_color {
            Some(value) => command.env("NO_COLOR", value),
            None => command.env_remove("NO_COLOR"),
        };
        let ran = run(&mut command);
        ran.expect_code(3);
        assert_eq!(warning_lines(&ran.stderr), 3, "{}", ran.stderr);
        ran.stderr
    };
    assert!(with(&["--color", "always"], None).contains(escape));
    // The flag is the user's word for this run: it beats the environment.
    assert!(with(&["--color=always"], Some("1")).contains(escape));
    assert!(!with(&["--color", "never"], None).contains(escape));
    assert!(!with(&[], Some("1")).contains(escape));

    // clap's own errors follow the flag too.
    let refused = |args: &[&str], no_color: Option<&str>| {
        let mut command = binary();
        command.args(args);
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        let ran = run(&mut command);
        ran.expect_code(2);
        ran.stderr
    };
    assert!(refused(&["--color", "always", "import", "--bogus"], None).contains(escape));
    assert!(!refused(&["import", "--bogus", "--color", "never"], None).contains(escape));
    assert!(!refused(&["import", "--bogus"], Some("1")).contains(escape));
}

#[test]
fn a_resumed_import_counts_the_earlier_runs_rejects_by_code() {
    // Every third record has no valid email; the rest are good. A slow tenant leaves time to
    // kill the run once part of the ledger is written.
    let records: Vec<Value> = (0..300)
        .map(|i| {
            let email = if i % 3 == 0 {
                format!("not-an-email-{i}")
            } else {
                format!("user{i}@example.com")
            };
            json!({"email": email, "connection": DB, "pw": format!("Pw-{i}-long-enough!x")})
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("users.ndjson");
    write_ndjson(&input, &records);
    let live = slow_tenant(30, &[]);
    let command = || {
        let mut command = import(&live);
        command.arg("--input").arg(&input).args([
            "--mode",
            "create",
            "--password-field",
            "pw",
            "--concurrency",
            "2",
            "--json",
        ]);
        command
    };
    let state = beside(&input, ".state");
    let running = Running::spawn(&mut command());
    wait_until(Duration::from_secs(60), "part of the ledger", || {
        ledger_bytes(&state) > 2_000
    });
    running.kill();
    let rejects = beside(&input, ".rejects.ndjson");
    let before = std::fs::read_to_string(&rejects).unwrap_or_default();
    assert!(!before.is_empty(), "the first run rejected some records");

    let ran = run(&mut command());
    ran.expect_code(3);
    let summary = ran.summary();
    assert_eq!(summary["resumed"], true, "{summary}");
    assert_eq!(summary["rejected"], 100, "{summary}");
    let invalid = &summary["rejects_by_code"]["invalid_field"];
    assert_eq!(invalid["count"], 100, "{summary}");
    assert_eq!(invalid["example"]["line"], 1, "{summary}");
    assert!(
        ran.stderr
            .contains("Rejected 100: invalid_field 100 (line 1: ")
    );
    assert_eq!(live.tenant.sandbox.users().len(), 200);
}
