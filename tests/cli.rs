//! The binary's contracts: `auth0-bulk sandbox` announces itself in one JSON line, serves, and
//! dumps its users on SIGTERM; `--help` teaches.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

fn binary() -> Command {
    Command::new(crate::support::child::path())
}

#[test]
fn sandbox_prints_one_json_line_serves_and_dumps_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump.ndjson");
    let mut child = binary()
        .args([
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--generate",
            "40",
            "--dump",
        ])
        .arg(&dump)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let announced: Value = serde_json::from_str(&line).expect("one JSON line");
    let keys: Vec<&String> = announced.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["domain", "client_id", "client_secret"]);
    let domain = announced["domain"].as_str().unwrap().to_string();
    assert!(domain.starts_with("http://127.0.0.1:"));

    // It answers: the evidence route lists the generated users.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let users = runtime.block_on(async {
        reqwest::get(format!("{domain}/__sandbox/users"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert_eq!(users.lines().count(), 40);

    // SIGTERM: it stops and writes the dump, private to its owner.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(rest, "", "nothing but the one line on stdout");
    let dumped = std::fs::read_to_string(&dump).unwrap();
    assert_eq!(dumped, users, "the dump is the ground truth");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dump).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[test]
fn sandbox_refuses_bad_options_with_exit_code_2() {
    let out = binary()
        .args(["sandbox", "--fault-rate", "1.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fault-rate"));
    let out = binary()
        .args(["sandbox", "--seed", "/nonexistent/users.ndjson"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/users.ndjson"));
    assert!(out.stdout.is_empty());
}

#[test]
fn help_lists_the_commands_and_exit_codes() {
    let out = binary().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("sandbox"));
    assert!(help.contains("Exit codes"));
    let out = binary().args(["sandbox", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--generate",
        "--rate",
        "--burst",
        "--fault-rate",
        "--fault-burst",
        "--latency-spike-rate",
        "--latency-spike",
        "--storm-every",
        "--storm-for",
        "--search-lag",
        "--token-ttl",
        "--retry-after",
        "--dump",
        "--seed",
        "--job-rate",
        "--job-timeout",
        "--job-purge-after",
        "--scopes",
        "--export-link-ttl",
    ] {
        assert!(help.contains(flag), "{flag} missing from sandbox --help");
    }
}

/// Issue 10, item 7: a `--query` Auth0 would refuse is refused before any request, with exit 2
/// and the column counted in the user's own text (not in the query the export builds around
/// it with `--connection` and `--since`), and nothing is written.
#[test]
fn a_bad_query_is_refused_before_any_request_with_the_column_in_the_users_own_text() {
    let live = crate::support::live::Live::generated(10);
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"app_metadata.plan:"pro"#,
            r#"the '"' at column 19 is never closed"#,
        ),
        (
            "logins_count:[1 TO five]",
            "'five' at column 20 is not a valid bound",
        ),
        (
            "email:a AND name:b OR name:c",
            "AND (column 9) and OR (column 20)",
        ),
    ];
    for (query, says) in cases {
        let ran = crate::support::child::run(
            crate::support::child::export(live.domain(), live.client_id(), live.client_secret())
                .arg("--output")
                .arg(dir.path().join("users.ndjson"))
                .args([
                    "--query",
                    query,
                    "--connection",
                    "Username-Password-Authentication",
                ])
                .args(["--since", "2024-01-01"]),
        );
        ran.expect_code(2);
        assert!(ran.stderr.contains("--query"), "{query}: {}", ran.stderr);
        assert!(
            ran.stderr.contains(says),
            "{query}: {says:?}\n{}",
            ran.stderr
        );
        assert!(
            !ran.stderr.contains("run the same command again"),
            "{query}: not called resumable:\n{}",
            ran.stderr
        );
    }
    assert!(
        live.tenant.sandbox.requests().len() == 1,
        "only the test's own token request reached the tenant"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

/// `--help` groups each command's options under the same headings, in the same order, in
/// every command: where it goes, which users, what comes out, how fast, where it resumes, what
/// an import does, how to rehearse. Only the tool's own options stay under "Options".
#[test]
fn help_groups_options_under_headings_in_one_order() {
    let order = [
        "Target:",
        "Selection:",
        "Output and format:",
        "Rate and retries:",
        "State and resume:",
        "Import behaviour:",
        "Rehearsal:",
    ];
    for (command, absent) in [
        ("import", &[][..]),
        ("export", &["Import behaviour:"][..]),
        ("delete", &["Import behaviour:"][..]),
        (
            "undo",
            &["Selection:", "State and resume:", "Import behaviour:"][..],
        ),
    ] {
        for help in ["--help", "-h"] {
            let out = binary().args([command, help]).output().unwrap();
            assert!(out.status.success());
            let text = String::from_utf8_lossy(&out.stdout);
            let shown: Vec<&str> = text
                .lines()
                .filter(|l| l.ends_with(':') && order.contains(l))
                .collect();
            let expected: Vec<&str> = order
                .iter()
                .copied()
                .filter(|h| !absent.contains(h))
                .collect();
            assert_eq!(shown, expected, "{command} {help}\n{text}");

            let options: Vec<&str> = text
                .lines()
                .skip_while(|l| *l != "Options:")
                .skip(1)
                .take_while(|l| !order.contains(l))
                .filter_map(|l| {
                    l.trim_start()
                        .strip_prefix("--")
                        .or_else(|| l.trim_start().split_once(", --").map(|(_, long)| long))
                })
                .filter_map(|l| l.split([' ', '.']).next())
                .collect();
            assert_eq!(
                options,
                ["verbose", "color", "help"],
                "{command} {help}: options without a heading\n{text}"
            );
        }
    }
}

/// After a refused command line, the usage line names what is required (the input or the
/// output), never a secret: credentials belong in the environment.
#[test]
fn the_usage_line_after_an_error_never_presents_a_secret_as_required() {
    for (args, usage) in [
        (
            &["import"][..],
            "Usage: auth0-bulk import --input PATH [OPTIONS]",
        ),
        (
            &["import", "--input", "u.csv", "--bogus"][..],
            "Usage: auth0-bulk import --input PATH [OPTIONS]",
        ),
        (
            &["export", "--bogus"][..],
            "Usage: auth0-bulk export --output PATH [OPTIONS]",
        ),
        (
            &["run"][..],
            "Usage: auth0-bulk run [OPTIONS] JOB.toml [OPTIONS]",
        ),
    ] {
        let out = crate::support::child::binary().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stderr
            .lines()
            .find(|l| l.starts_with("Usage:"))
            .unwrap_or_else(|| panic!("{args:?}: no usage line\n{stderr}"));
        assert_eq!(line, usage, "{args:?}");
        for secret in ["--client-secret", "--token", "SECRET", "TOKEN"] {
            assert!(!stderr.contains(secret), "{args:?}: {secret}\n{stderr}");
        }
    }
}

/// Completions and manual pages are generated from the parser's own definition.
#[test]
fn completions_and_man_pages_come_from_the_command_line_definition() {
    let out = binary().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    let bash = String::from_utf8_lossy(&out.stdout);
    // clap_complete spells the function's `-` as `__`.
    assert!(bash.starts_with("_auth0__bulk() {"), "{bash}");
    assert!(bash.contains("complete -F _auth0__bulk"), "{bash}");
    for known in [
        "export",
        "import",
        "run",
        "completions",
        "man",
        "--csv-metadata",
        "--dry-run",
    ] {
        assert!(
            bash.contains(known),
            "{known} missing from the bash completions"
        );
    }
    for (shell, first) in [
        ("zsh", "#compdef auth0-bulk"),
        ("fish", "complete -c auth0-bulk"),
        ("powershell", "using namespace System.Management.Automation"),
        ("elvish", "use builtin;"),
    ] {
        let out = binary().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(first), "{shell}:\n{script}");
    }

    let roff = |args: &[&str]| {
        let out = binary().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let page = roff(&["man"]);
    // The title macro comes first (after clap_mangen's two-line quote preamble), then NAME.
    let first_macro = page
        .lines()
        .find(|l| l.starts_with(".TH") || l.starts_with(".SH"));
    assert_eq!(first_macro, Some(".TH auth0-bulk 1  \"auth0-bulk 0.1.0\" "));
    for command in ["export", "import", "run"] {
        assert!(
            page.contains(&format!("auth0\\-bulk\\-{command}(1)")),
            "{command}"
        );
    }
    let export = roff(&["man", "export"]);
    assert!(
        export
            .lines()
            .any(|l| l.starts_with(".TH auth0-bulk-export 1")),
        "{export}"
    );
    assert!(export.contains("\\-\\-csv\\-metadata") && export.contains("OUTPUT AND FORMAT"));
    let out = binary().args(["man", "exprot"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `export`?"));
}
