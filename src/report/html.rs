//! The report as one self-contained HTML page: inline CSS and SVG, no script, nothing fetched
//! (no link, image, font or stylesheet from elsewhere), so it opens the same offline, attached
//! to a ticket or years later.
//!
//! Every string from the run (the command line, the tenant, messages, user data in reject
//! examples) goes through [`escape`]. The markup is also well-formed XML (every element
//! closed, no named entity but XML's own), so any XML parser reads it, which is how the
//! tests read it.
//!
//! Figures sit in elements with stable ids and their raw value in `data-value`: the summary's
//! fields as `summary-FIELD` (`summary-requests`), the timeline's sums as `totals-FIELD`,
//! rejects by code as rows `data-code="CODE"` of `#rejects`, the windows as rows of `#windows`.

use std::fmt::Write;

use indicatif::HumanCount;
use serde_json::Value;

use super::{Report, chart};

/// The page's style: the system's fonts, nothing loaded.
const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em; color: #1f2937; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #e5e7eb; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { text-align: left; padding: 0.2em 0.8em 0.2em 0; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
table.grid th, table.grid td { border-bottom: 1px solid #f3f4f6; }
code { font-size: 0.9em; word-break: break-all; }
.outcome-completed { color: #15803d; } .outcome-rejected { color: #b45309; }
.outcome-interrupted { color: #b45309; } .outcome-failed { color: #b91c1c; }
svg { width: 100%; height: auto; background: #fafafa; }
svg .grid { stroke: #e5e7eb; stroke-width: 1; } svg .label { font-size: 11px; fill: #6b7280; }
polyline { fill: none; stroke-width: 1.5; stroke-linejoin: round; }
.requests { stroke: #2563eb; color: #2563eb; } .throttled { stroke: #dc2626; color: #dc2626; }
.retries { stroke: #d97706; color: #d97706; } .faults { stroke: #7c3aed; color: #7c3aed; }
.key { font-weight: 600; margin-right: 1em; }
.none { color: #9ca3af; }
";

/// `text` safe in HTML text and in a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole page.
pub fn page(report: &Report) -> String {
    let command = report.summary["command"]
        .as_str()
        .or(report.command.get(1).map(String::as_str))
        .unwrap_or("run");
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>");
    out.push_str(r#"<meta name="viewport" content="width=device-width, initial-scale=1"/>"#);
    let _ = write!(
        out,
        "<title>auth0-bulk {} report: {}</title><style>{STYLE}</style></head><body>",
        escape(command),
        escape(&report.target)
    );
    let _ = write!(
        out,
        r#"<h1>auth0-bulk {} <span id="outcome" class="outcome-{}" data-value="{}">{}</span></h1>"#,
        escape(command),
        outcome_name(report),
        outcome_name(report),
        escape(report.outcome.words())
    );
    what_ran(&mut out, report);
    counts(&mut out, report);
    rejects(&mut out, report);
    timeline(&mut out, report);
    budgets(&mut out, report);
    windows(&mut out, report);
    out.push_str("</body></html>\n");
    out
}

fn outcome_name(report: &Report) -> String {
    serde_json::to_value(report.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The command line, the environment, the tenant, the times, how it ended.
fn what_ran(out: &mut String, report: &Report) {
    out.push_str("<h2>What ran</h2><table id=\"run\">");
    let command = report
        .command
        .iter()
        .map(|arg| shell_word(arg))
        .collect::<Vec<_>>()
        .join(" ");
    row(out, "Command", "command", None, &code(&command));
    if !report.environment.is_empty() {
        let env = report
            .environment
            .iter()
            .map(|(name, value)| code(&format!("{name}={}", shell_word(value))))
            .collect::<Vec<_>>()
            .join("<br/>");
        row(out, "Environment", "environment", None, &env);
    }
    row(out, "Tenant", "target", None, &escape(&report.target));
    for (label, id, at) in [
        ("Started", "started-at", &report.started_at),
        ("Ended", "ended-at", &report.ended_at),
    ] {
        let shown = at.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string();
        row(out, label, id, Some(&at.to_rfc3339()), &escape(&shown));
    }
    row(
        out,
        "Duration",
        "elapsed",
        Some(&report.elapsed_seconds.to_string()),
        &format!("{:.1} s", report.elapsed_seconds),
    );
    let resumed = if report.resumed {
        "yes: this run went on from the state an earlier run left; it reports its own work"
    } else {
        "no"
    };
    row(
        out,
        "Resumed",
        "resumed",
        Some(&report.resumed.to_string()),
        resumed,
    );
    if let Some(error) = &report.error {
        row(out, "Stopped by", "error", None, &escape(error));
    }
    out.push_str("</table>");
}

/// The summary's fields, as `--json` printed them; lists and objects other than those with a
/// section of their own are shown nested.
fn counts(out: &mut String, report: &Report) {
    out.push_str("<h2>Summary</h2>");
    let Some(fields) = report.summary.as_object() else {
        out.push_str(r#"<p class="none">The run stopped before it had a summary.</p>"#);
        return;
    };
    out.push_str(r#"<table id="summary" class="grid">"#);
    for (key, value) in fields {
        if matches!(key.as_str(), "rejects_by_code" | "budgets") {
            continue;
        }
        let raw = match value {
            Value::Array(_) | Value::Object(_) => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
        row(
            out,
            key,
            &format!("summary-{key}"),
            raw.as_deref(),
            &value_html(value),
        );
    }
    out.push_str("</table>");
}

/// `rejects_by_code`, when the summary has it: each code's count and its example.
fn rejects(out: &mut String, report: &Report) {
    let Some(codes) = report
        .summary
        .get("rejects_by_code")
        .and_then(Value::as_object)
    else {
        return;
    };
    out.push_str("<h2>Rejects by code</h2>");
    if codes.is_empty() {
        out.push_str(r#"<p class="none" id="rejects">No record was rejected.</p>"#);
        return;
    }
    out.push_str(
        r#"<table id="rejects" class="grid"><tr><th>code</th><th>records</th><th>example</th></tr>"#,
    );
    for (code, entry) in codes {
        let count = entry.get("count").unwrap_or(&Value::Null);
        let example = match entry.get("example") {
            Some(Value::Object(example)) => {
                let line = example.get("line").map(value_text);
                let message = example.get("message").map(value_text).unwrap_or_default();
                let rest: serde_json::Map<String, Value> = example
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "line" | "message"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let mut text = match line {
                    Some(line) => format!("line {}: {}", escape(&line), escape(&message)),
                    None => escape(&message),
                };
                if !rest.is_empty() {
                    text.push_str(&value_html(&Value::Object(rest)));
                }
                text
            }
            Some(other) => value_html(other),
            None => String::new(),
        };
        let _ = write!(
            out,
            r#"<tr data-code="{}"><td><code>{}</code></td><td class="n" data-value="{}">{}</td><td>{example}</td></tr>"#,
            escape(code),
            escape(code),
            escape(&value_text(count)),
            value_html(count)
        );
    }
    out.push_str("</table>");
}

/// The chart and the timeline's sums.
fn timeline(out: &mut String, report: &Report) {
    out.push_str("<h2>Requests over time</h2>");
    out.push_str(&chart::svg(&report.timeline));
    let totals = report.totals;
    let seconds = report.timeline.requests.len() as u64 * report.timeline.seconds_per_point;
    let peak = report.timeline.requests.iter().max().copied().unwrap_or(0);
    out.push_str(r#"<table id="totals" class="grid">"#);
    for (label, id, value) in [
        ("requests sent", "requests", totals.requests),
        ("answered 2xx", "ok", totals.ok),
        ("429 (rate limit)", "throttled", totals.throttled),
        (
            "retries after a transient failure",
            "retries",
            totals.retries,
        ),
        (
            "transient failures (5xx, timeouts, dropped)",
            "faults",
            totals.faults,
        ),
    ] {
        row(
            out,
            label,
            &format!("totals-{id}"),
            Some(&value.to_string()),
            &HumanCount(u64::from(value)).to_string(),
        );
    }
    for (group, requests) in &report.requests_by_group {
        row(
            out,
            &format!("requests to {group}"),
            &format!("totals-{group}"),
            Some(&requests.to_string()),
            &HumanCount(*requests).to_string(),
        );
    }
    let mean = f64::from(totals.requests) / report.elapsed_seconds.max(0.001);
    row(
        out,
        "mean rate",
        "rate-mean",
        Some(&format!("{mean:.2}")),
        &format!("{mean:.1}/s"),
    );
    let per = report.timeline.seconds_per_point;
    row(
        out,
        "busiest point",
        "rate-peak",
        Some(&peak.to_string()),
        &format!("{} requests in {per} s", HumanCount(u64::from(peak))),
    );
    row(
        out,
        "seconds charted",
        "seconds",
        Some(&seconds.to_string()),
        &seconds.to_string(),
    );
    out.push_str("</table>");
}

/// The rate-limit buckets the run learnt.
fn budgets(out: &mut String, report: &Report) {
    let Some(budgets) = report.summary.get("budgets") else {
        return;
    };
    out.push_str(r#"<h2>Rate limits learnt</h2><div id="budgets">"#);
    out.push_str(&value_html(budgets));
    out.push_str("</div>");
}

/// An export's `created_at` windows, in the order written.
fn windows(out: &mut String, report: &Report) {
    let Some(windows) = &report.windows else {
        return;
    };
    let users: u64 = windows.iter().map(|w| w.users).sum();
    let _ = write!(
        out,
        "<h2>Windows walked</h2><p>{} <code>created_at</code> windows written by this run, {} users.</p>",
        HumanCount(windows.len() as u64),
        HumanCount(users)
    );
    let _ = write!(
        out,
        r#"<table id="windows" class="grid" data-count="{}" data-users="{users}"><tr><th>#</th><th>kind</th><th>created_at</th><th>users</th></tr>"#,
        windows.len()
    );
    for (i, window) in windows.iter().enumerate() {
        let open = if window.inclusive { '[' } else { '{' };
        let range = if window.kind == "instant" {
            window.to.clone()
        } else {
            format!(
                "{open}{} TO {}}}",
                window.from.as_deref().unwrap_or("*"),
                window.to
            )
        };
        let _ = write!(
            out,
            r#"<tr><td class="n">{}</td><td>{}</td><td><code>{}</code></td><td class="n" data-value="{}">{}</td></tr>"#,
            i + 1,
            escape(window.kind),
            escape(&range),
            window.users,
            HumanCount(window.users)
        );
    }
    out.push_str("</table>");
}

/// One row of a two-column table: a label, and a cell with an id and its raw value.
fn row(out: &mut String, label: &str, id: &str, raw: Option<&str>, html: &str) {
    let data = raw
        .map(|raw| format!(r#" data-value="{}""#, escape(raw)))
        .unwrap_or_default();
    let _ = write!(
        out,
        r#"<tr><th>{}</th><td id="{}"{data}>{html}</td></tr>"#,
        escape(label),
        escape(id)
    );
}

fn code(text: &str) -> String {
    format!("<code>{}</code>", escape(text))
}

/// An argument as a shell would need it: quoted when it holds anything but plain characters.
fn shell_word(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%*".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// A JSON value as plain text: strings unquoted, integers with thousands separators.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}

/// Any JSON value as HTML: scalars as text, objects as nested tables, lists of objects as a
/// table with a column per key.
fn value_html(value: &Value) -> String {
    match value {
        Value::Null => r#"<span class="none">none</span>"#.into(),
        Value::Number(n) => match n.as_u64() {
            Some(n) => HumanCount(n).to_string(),
            None => escape(&n.to_string()),
        },
        Value::Bool(b) => b.to_string(),
        Value::String(s) => escape(s),
        Value::Array(items) if items.is_empty() => r#"<span class="none">none</span>"#.into(),
        Value::Array(items) if items.iter().all(Value::is_object) => {
            let mut keys: Vec<&String> = Vec::new();
            for item in items {
                for key in item.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
            }
            let mut out = String::from(r#"<table class="grid"><tr>"#);
            for key in &keys {
                let _ = write!(out, "<th>{}</th>", escape(key));
            }
            out.push_str("</tr>");
            for item in items {
                out.push_str("<tr>");
                for key in &keys {
                    let _ = write!(out, "<td>{}</td>", value_html(&item[key.as_str()]));
                }
                out.push_str("</tr>");
            }
            out.push_str("</table>");
            out
        }
        Value::Array(items) => items.iter().map(value_html).collect::<Vec<_>>().join(", "),
        Value::Object(fields) => {
            let mut out = String::from(r#"<table class="grid">"#);
            for (key, value) in fields {
                let _ = write!(
                    out,
                    "<tr><th>{}</th><td>{}</td></tr>",
                    escape(key),
                    value_html(value)
                );
            }
            out.push_str("</table>");
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_is_escaped_for_text_and_attributes() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        let nested = value_html(&serde_json::json!({"<b>": ["<i>", {"k": "</td>"}]}));
        assert!(!nested.contains("<b>") && !nested.contains("<i>"));
        assert!(nested.contains("&lt;/td&gt;"));
    }

    /// A report of an import whose summary has `rejects_by_code`, with user data in it.
    fn import_report() -> Report {
        let summary = serde_json::json!({
            "command": "import", "read": 3002, "rejected": 3001, "requests": 4,
            "rejects_by_code": {
                "missing_password": {"count": 3000, "example": {"line": 1, "message": "no <password> & no --passwords"}},
                "unknown_field": {"count": 1, "example": {"line": 7, "message": "`emial`: did you mean `email`?"}}
            },
            "budgets": [{"groups": ["users-read"], "limit": 10, "refill_at_least": 2.5, "throttled": 0}]
        });
        Report {
            format: super::super::FORMAT,
            tool: "auth0-bulk test".into(),
            command: vec![
                "auth0-bulk".into(),
                "import".into(),
                "--input".into(),
                "a b.csv".into(),
            ],
            environment: Default::default(),
            target: "https://acme.eu.auth0.com".into(),
            started_at: chrono::DateTime::UNIX_EPOCH,
            ended_at: chrono::DateTime::UNIX_EPOCH,
            elapsed_seconds: 1.5,
            outcome: super::super::Outcome::Rejected,
            error: None,
            resumed: false,
            summary,
            totals: Default::default(),
            timeline: super::super::Series {
                seconds_per_point: 1,
                requests: vec![3, 1],
                ok: vec![3, 1],
                throttled: vec![0, 0],
                retries: vec![0, 0],
                faults: vec![0, 0],
                requests_by_group: Default::default(),
            },
            requests_by_group: Default::default(),
            windows: None,
        }
    }

    #[test]
    fn rejects_by_code_are_listed_with_their_count_and_example_escaped() {
        let page = page(&import_report());
        assert!(
            page.contains(r#"<tr data-code="missing_password">"#),
            "{page}"
        );
        assert!(page.contains(r#"data-value="3000">3,000</td>"#), "{page}");
        assert!(page.contains("line 1: no &lt;password&gt; &amp; no --passwords"));
        assert!(page.contains(r#"<tr data-code="unknown_field">"#));
        assert!(page.contains("<code>auth0-bulk import --input &#39;a b.csv&#39;</code>"));
        assert!(
            !page.contains("summary-rejects_by_code"),
            "a section of its own"
        );
        assert!(page.contains(r#"<div id="budgets">"#));
    }

    #[test]
    fn shell_words_are_quoted_only_when_they_need_it() {
        assert_eq!(shell_word("--output"), "--output");
        assert_eq!(shell_word("users.ndjson.gz"), "users.ndjson.gz");
        assert_eq!(shell_word("email:\"a b\""), "'email:\"a b\"'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
