//! `--report FILE.html|FILE.json`: the page parses, holds nothing fetched and no secret, and its
//! figures (the summary's, the timeline's sums, one chart point per second) are the run's.

use std::path::Path;
use std::time::Duration;

use auth0_bulk::sandbox::SandboxOptions;
use serde_json::{Value, json};

use crate::support::child::{self, run};
use crate::support::exports::export;
use crate::support::imports::{generated, import, write_ndjson};
use crate::support::live::Live;

/// A tenant that throttles and fails: a bucket of 20 at 40 requests/s, a 429 storm every
/// 0.4 s for 0.12 s, 15% of API requests failing (5xx or dropped), and 40 ms a request so that
/// a few thousand users take a few seconds. (Storms a second apart let a loaded machine's
/// export, whose few dozen requests come in bursts between retry back-offs, miss them all.)
fn throttling_and_failing(users: usize) -> SandboxOptions {
    SandboxOptions {
        generate: users,
        gen_seed: 15,
        rate: Some(40.0),
        burst: Some(20),
        storm_every: Duration::from_millis(400),
        storm_for: Duration::from_millis(120),
        fault_rate: 0.15,
        fault_seed: 0x0e90_0001,
        latency: Duration::from_millis(40),
        ..Default::default()
    }
}

/// The report page, parsed: it must be well-formed, self-contained and free of `secret`.
struct Page {
    text: String,
}

impl Page {
    fn read(path: &Path, secret: &str) -> Page {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        assert!(
            text.starts_with("<!DOCTYPE html>"),
            "an HTML page: {}",
            &text[..80]
        );
        assert!(!text.contains(secret), "the client secret is in the page");
        let page = Page { text };
        let document = page.document();
        for node in document.descendants().filter(|n| n.is_element()) {
            let name = node.tag_name().name();
            assert!(
                !matches!(
                    name,
                    "script" | "link" | "img" | "iframe" | "object" | "embed"
                ),
                "<{name}> in a self-contained page"
            );
            for attribute in node.attributes() {
                let attr = attribute.name();
                assert!(
                    !matches!(attr, "src" | "href" | "xmlns") && !attr.starts_with("on"),
                    "<{name} {attr}=...> refers to something outside the page or runs code"
                );
            }
            if name == "style" {
                let css = node.text().unwrap_or_default();
                assert!(!css.contains("url(") && !css.contains("@import"), "{css}");
            }
        }
        page
    }

    fn document(&self) -> roxmltree::Document<'_> {
        let options = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        };
        roxmltree::Document::parse_with_options(&self.text, options)
            .unwrap_or_else(|e| panic!("the page is not well-formed: {e}"))
    }

    /// The attribute `attr` of the element with id `id`.
    fn attr(&self, id: &str, attr: &str) -> String {
        let document = self.document();
        let node = document
            .descendants()
            .find(|n| n.attribute("id") == Some(id))
            .unwrap_or_else(|| panic!("no element #{id} in the page"));
        node.attribute(attr)
            .unwrap_or_else(|| panic!("#{id} has no {attr}"))
            .to_string()
    }

    /// The `data-value` of `#id`, as JSON.
    fn value(&self, id: &str) -> Value {
        let raw = self.attr(id, "data-value");
        serde_json::from_str(&raw).unwrap_or(Value::String(raw))
    }

    fn number(&self, id: &str) -> u64 {
        self.attr(id, "data-value")
            .parse()
            .unwrap_or_else(|e| panic!("#{id}: {e}"))
    }

    /// The counts a chart line shows, and how many points it draws.
    fn line(&self, id: &str) -> (Vec<u64>, usize) {
        let values: Vec<u64> = self
            .attr(id, "data-values")
            .split_whitespace()
            .map(|v| v.parse().expect("a count"))
            .collect();
        let points = self.attr(id, "points");
        let pairs = points.split_whitespace().count();
        assert!(
            points.split_whitespace().all(|p| p.split(',').count() == 2),
            "{id}: x,y pairs"
        );
        (values, pairs)
    }
}

/// The report's run against the `--json` summary: every scalar field of the summary is shown
/// with its value, the timeline's sums equal its counts, and the chart has one point per
/// second begun (`floor(elapsed) + 1`, the clock starting when the client is made).
fn assert_report_is_the_run(page: &Page, json: &Value, summary: &Value) {
    for (key, value) in summary.as_object().expect("a summary object") {
        if value.is_object() || value.is_array() {
            continue;
        }
        let shown = page.value(&format!("summary-{key}"));
        let want = match value {
            Value::String(s) => Value::String(s.clone()),
            other => other.clone(),
        };
        assert_eq!(shown, want, "summary field {key}");
    }
    for (total, field) in [
        ("totals-requests", "requests"),
        ("totals-throttled", "throttled"),
        ("totals-retries", "retries"),
    ] {
        assert_eq!(
            page.number(total),
            summary[field].as_u64().unwrap(),
            "{total} = the summary's {field}"
        );
    }
    let elapsed: f64 = page.attr("elapsed", "data-value").parse().unwrap();
    assert!(
        elapsed >= summary["elapsed_seconds"].as_f64().unwrap(),
        "the report's clock starts before the summary's and ends after it"
    );
    let seconds = elapsed.floor() as usize + 1;
    assert_eq!(page.attr("timeline", "data-seconds-per-point"), "1");
    assert_eq!(
        page.attr("timeline", "data-points"),
        seconds.to_string(),
        "one point per second begun of {elapsed} s"
    );
    for (line, field) in [
        ("series-requests", Some("requests")),
        ("series-throttled", Some("throttled")),
        ("series-retries", Some("retries")),
        ("series-faults", None),
    ] {
        let (values, points) = page.line(line);
        assert_eq!(points, seconds, "{line}: one point per second");
        assert_eq!(values.len(), seconds, "{line}: one count per second");
        if let Some(field) = field {
            assert_eq!(
                values.iter().sum::<u64>(),
                summary[field].as_u64().unwrap(),
                "{line} adds up to the summary's {field}"
            );
        }
    }
    // The JSON report is the same data: the summary object itself, the same timeline.
    assert_eq!(
        &json["summary"], summary,
        "the JSON report embeds the summary"
    );
    assert_eq!(json["format"], 1);
    assert_eq!(
        json["timeline"]["requests"].as_array().unwrap().len(),
        seconds
    );
    assert_eq!(json["elapsed_seconds"].as_f64().unwrap(), elapsed);
    for field in ["requests", "throttled", "retries", "faults", "ok"] {
        assert_eq!(
            json["totals"][field].as_u64().unwrap(),
            page.number(&format!("totals-{field}")),
            "totals.{field}"
        );
    }
}

/// `import --input INPUT --passwords random --report REPORT --json --quiet` to its end.
fn import_reported(live: &Live, input: &Path, report: &Path) -> child::Ran {
    run(import(live)
        .arg("--input")
        .arg(input)
        .args(["--passwords", "random", "--report"])
        .arg(report)
        .args(["--json", "--quiet"]))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the JSON report");
    serde_json::from_str(&text).expect("the JSON report parses")
}

fn assert_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{} is private", path.display());
}

#[test]
fn an_export_report_through_429s_and_faults_shows_the_summary_and_one_point_per_second() {
    let live = Live::start(throttling_and_failing(3_000));
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson");
    let (html, json_path) = (dir.path().join("r.html"), dir.path().join("r.json"));
    // The secret as a flag this time: the command line must show it as ***.
    let ran = run(child::binary()
        .arg("export")
        .args(["--domain", live.domain(), "--client-id", live.client_id()])
        .args(["--client-secret", live.client_secret()])
        .arg("--output")
        .arg(&output)
        .arg("--report")
        .arg(&html)
        .arg("--report")
        .arg(&json_path)
        .args(["--concurrency", "4", "--json", "--quiet"]));
    ran.expect_code(0);
    let summary = ran.summary();
    assert_eq!(summary["users"], 3_000);
    assert!(
        summary["throttled"].as_u64().unwrap() > 0,
        "429s: {summary}"
    );
    assert!(
        summary["retries"].as_u64().unwrap() > 0,
        "faults: {summary}"
    );

    let page = Page::read(&html, live.client_secret());
    let json = read_json(&json_path);
    assert!(!json.to_string().contains(live.client_secret()));
    assert_report_is_the_run(&page, &json, &summary);
    assert!(page.number("totals-faults") > 0, "the faults are charted");
    assert_eq!(page.attr("outcome", "data-value"), "completed");
    let command = &json["command"];
    assert_eq!(command[0], "auth0-bulk");
    assert!(
        command.as_array().unwrap().iter().any(|a| a == "***"),
        "the secret shown as ***: {command}"
    );
    assert_eq!(json["target"], live.domain());
    let by_group = json["requests_by_group"].as_object().unwrap();
    assert_eq!(
        by_group.values().map(|v| v.as_u64().unwrap()).sum::<u64>(),
        summary["requests"].as_u64().unwrap(),
        "every request to an endpoint group: {by_group:?}"
    );
    assert_eq!(
        page.number("totals-users-read"),
        by_group["users-read"].as_u64().unwrap()
    );
    // Every window this run walked, adding up to its users.
    assert_eq!(
        page.attr("windows", "data-count"),
        summary["windows"].to_string()
    );
    assert_eq!(
        page.attr("windows", "data-users"),
        summary["users"].to_string()
    );
    assert_eq!(
        json["windows"].as_array().unwrap().len() as u64,
        summary["windows"].as_u64().unwrap()
    );
    assert_private(&html);
    assert_private(&json_path);
}

#[test]
fn an_interrupted_export_reports_what_it_did_and_its_resumed_run_reports_only_its_own() {
    let live = Live::start(SandboxOptions {
        generate: 3_000,
        latency: Duration::from_millis(100),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson");
    let state = crate::support::exports::state_of(&output);
    let report = dir.path().join("reports/nightly.json");
    let command = || {
        let mut command = export(&live);
        command
            .arg("--output")
            .arg(&output)
            .arg("--report")
            .arg(&report)
            .args(["--concurrency", "1", "--json", "--quiet"]);
        command
    };
    let running = child::Running::spawn(&mut command());
    child::wait_until(Duration::from_secs(60), "the first saved users", || {
        crate::support::exports::checkpoint(&state).is_some_and(|c| c["users"].as_u64() > Some(0))
    });
    running.interrupt();
    let interrupted = running.wait();
    interrupted.expect_code(130);
    let first = read_json(&report);
    assert_eq!(first["outcome"], "interrupted");
    assert_eq!(first["summary"], interrupted.summary());
    assert_eq!(first["summary"]["completed"], false);
    let done_before = first["summary"]["users"].as_u64().unwrap();
    assert!(done_before > 0 && done_before < 3_000, "{done_before}");
    let walked = |report: &Value| -> u64 {
        report["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["users"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(walked(&first), done_before, "the windows it wrote");

    let rerun = run(&mut command());
    rerun.expect_code(0);
    let second = read_json(&report);
    assert_eq!(second["outcome"], "completed");
    assert_eq!(second["resumed"], true);
    assert_eq!(second["summary"], rerun.summary());
    assert_eq!(
        walked(&second),
        3_000 - done_before,
        "the resumed run lists only the windows it wrote"
    );
    assert_eq!(
        second["totals"]["requests"], second["summary"]["requests"],
        "its own requests"
    );
}

#[test]
fn an_import_report_shows_its_counts_and_rejects_and_never_the_secret() {
    let live = Live::start(SandboxOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("users.ndjson");
    let mut records: Vec<Value> = generated(300, 21).into_iter().map(Value::Object).collect();
    for i in 0..5 {
        // A misspelt field: rejected (unknown_field) before any request.
        records.push(json!({"email": format!("typo{i}@example.com"), "emial": "x"}));
    }
    write_ndjson(&input, &records);
    let html = dir.path().join("import.html");
    let ran = import_reported(&live, &input, &html);
    ran.expect_code(3);
    let summary = ran.summary();
    assert_eq!(summary["rejected"], 5);
    let page = Page::read(&html, live.client_secret());
    assert_eq!(page.attr("outcome", "data-value"), "rejected");
    assert_eq!(
        page.number("summary-created"),
        summary["created"].as_u64().unwrap()
    );
    assert_eq!(page.number("summary-rejected"), 5);
    let elapsed: f64 = page.attr("elapsed", "data-value").parse().unwrap();
    assert_eq!(
        page.attr("timeline", "data-points"),
        (elapsed.floor() as usize + 1).to_string()
    );
    assert_eq!(
        page.number("totals-requests"),
        summary["requests"].as_u64().unwrap()
    );
    // The secret came from the environment: listed, masked.
    assert!(page.text.contains("AUTH0_CLIENT_SECRET=***"));
    assert_private(&html);
}

#[test]
fn a_report_that_is_neither_html_nor_json_is_refused_before_any_request() {
    let live = Live::start(SandboxOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let before = live.tenant.sandbox.requests().len();
    let ran = run(export(&live)
        .arg("--output")
        .arg(dir.path().join("users.ndjson"))
        .arg("--report")
        .arg(dir.path().join("report.txt")));
    ran.expect_code(2);
    assert!(ran.stderr.contains("--report"), "{}", ran.stderr);
    assert!(ran.stderr.contains(".html"), "{}", ran.stderr);
    assert_eq!(live.tenant.sandbox.requests().len(), before, "nothing sent");
    assert!(
        crate::support::files_under(dir.path()).is_empty(),
        "nothing written"
    );
    // Nor may a report replace the run's own output.
    let output = dir.path().join("users.json");
    let ran = run(export(&live)
        .arg("--output")
        .arg(&output)
        .arg("--report")
        .arg(&output));
    ran.expect_code(2);
    assert!(
        ran.stderr.contains("that is the --output file"),
        "{}",
        ran.stderr
    );
    assert_eq!(live.tenant.sandbox.requests().len(), before, "nothing sent");
}

#[test]
fn a_run_that_fails_after_its_first_requests_reports_what_it_did_and_why_it_stopped() {
    let live = Live::start(SandboxOptions::default());
    let dir = tempfile::tempdir().unwrap();
    // A gzip file cut short after 259 whole records: they are applied, then the run stops.
    let input = dir.path().join("cut.ndjson.gz");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/gzip-truncated.ndjson.gz"),
        &input,
    )
    .unwrap();
    let report = dir.path().join("failed.json");
    let ran = import_reported(&live, &input, &report);
    ran.expect_code(1);
    let json = read_json(&report);
    assert_eq!(json["outcome"], "failed");
    let error = json["error"].as_str().expect("the error that stopped it");
    assert!(error.contains("cannot be read past line 260"), "{error}");
    assert_eq!(json["summary"], Value::Null, "no summary: the run stopped");
    let sent = json["totals"]["requests"].as_u64().unwrap();
    assert!(sent >= 259, "the creates before the cut: {sent}");
    let charted: u64 = json["timeline"]["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(charted, sent);
}

#[test]
fn an_undo_reports_what_it_did_as_its_json_summary_says() {
    let live = Live::start(SandboxOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("users.ndjson");
    let records: Vec<Value> = generated(40, 22).into_iter().map(Value::Object).collect();
    write_ndjson(&input, &records);
    import_reported(&live, &input, &dir.path().join("import.json")).expect_code(0);
    let state = dir.path().join("users.ndjson.state");
    let report = dir.path().join("undo.json");
    let ran = run(child::binary()
        .arg("undo")
        .arg(&state)
        .args(["--domain", live.domain(), "--json", "--quiet", "--report"])
        .arg(&report)
        .env("AUTH0_CLIENT_ID", live.client_id())
        .env("AUTH0_CLIENT_SECRET", live.client_secret()));
    ran.expect_code(0);
    let summary = ran.summary();
    assert_eq!(summary["command"], "undo");
    assert_eq!(summary["creates"]["deleted"], 40, "{summary}");
    let json = read_json(&report);
    assert_eq!(json["outcome"], "completed");
    assert_eq!(json["summary"], summary);
    assert_eq!(json["totals"]["requests"], summary["requests"]);
    assert_private(&report);
}
