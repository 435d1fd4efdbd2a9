//! `--report FILE.html|FILE.json`: what a run did, written when it ends, for people (one
//! self-contained HTML page) and for machines (the same data as JSON).
//!
//! | file | holds |
//! |------|-------|
//! | `mod.rs` | the [`Report`] (the JSON file's shape), the [`Files`] asked for, the [`Witness`] a command fills in as it runs, and the atomic 0600 write |
//! | `redact.rs` | the command line and environment, secrets as `***` |
//! | `html.rs` | the page: what ran, the summary's figures, rejects by code, windows walked |
//! | `chart.rs` | the inline SVG chart, one point per second of the run |
//!
//! A report is written on every end of a run that made its client: completed, with rejects,
//! interrupted (Ctrl-C) or failed (what happened until then, and the error). A run refused
//! before its client (bad usage) writes none: nothing ran. A second Ctrl-C abandons the run
//! at once, its report too. A resumed run reports its own run only (its timeline, the
//! windows it wrote), and says it resumed.

mod chart;
mod html;
pub mod redact;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::api::Timeline;
use crate::api::timeline::{Point, Snapshot};
use crate::exit::RunOutcome;
use crate::export::walk::Walked;
use crate::net::pace::Group;

use redact::Redactor;

/// The version of the JSON report's shape.
pub const FORMAT: u32 = 1;

/// A report, as the JSON file holds it (and the page shows it).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format: u32,
    /// `auth0-bulk VERSION`.
    pub tool: String,
    /// The command line, secrets as `***`.
    pub command: Vec<String>,
    /// The tool's environment variables that were set, secrets as `***`.
    pub environment: BTreeMap<String, String>,
    /// The tenant (`sandbox` for the embedded one).
    pub target: String,
    /// When the run's client was made (its first request followed), and when the report was
    /// written.
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub elapsed_seconds: f64,
    pub outcome: Outcome,
    /// Why a failed run stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The run went on from a checkpoint or ledger left by an earlier run.
    pub resumed: bool,
    /// The `--json` summary, as it printed it (`null` for a run that failed before it had one).
    pub summary: Value,
    /// The timeline's sums: the same counts as the summary's `requests`, `throttled` and
    /// `retries`, and the 2xx answers and transient failures.
    pub totals: Point,
    /// The requests to each endpoint group of the Management API (the rest of `requests`
    /// fetched files the tenant linked to).
    pub requests_by_group: BTreeMap<&'static str, u64>,
    pub timeline: Series,
    /// An export's `created_at` windows, in the order written (only this run's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows: Option<Vec<Walked>>,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    /// Completed, with records rejected (or listed users not found).
    Rejected,
    Interrupted,
    Failed,
}

impl Outcome {
    fn of(outcome: RunOutcome) -> Outcome {
        match outcome {
            RunOutcome::Success => Outcome::Completed,
            RunOutcome::Rejected => Outcome::Rejected,
            RunOutcome::Interrupted => Outcome::Interrupted,
        }
    }

    /// In words, for the page.
    pub fn words(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Rejected => "completed, with records rejected",
            Outcome::Interrupted => "interrupted; the state is saved",
            Outcome::Failed => "failed",
        }
    }
}

/// The timeline in columns: point `i` counts the seconds from `i * seconds_per_point`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// 1, unless the run was longer than [`crate::api::timeline::MAX_POINTS`] seconds.
    pub seconds_per_point: u64,
    pub requests: Vec<u32>,
    pub ok: Vec<u32>,
    pub throttled: Vec<u32>,
    pub retries: Vec<u32>,
    pub faults: Vec<u32>,
    /// `requests` by endpoint group (`users-read`, `users-write`, `other`).
    pub requests_by_group: BTreeMap<&'static str, Vec<u32>>,
}

impl Series {
    fn of(snapshot: &Snapshot) -> Series {
        let column = |f: fn(&Point) -> u32| snapshot.points.iter().map(f).collect();
        Series {
            seconds_per_point: snapshot.seconds_per_point,
            requests: column(|p| p.requests),
            ok: column(|p| p.ok),
            throttled: column(|p| p.throttled),
            retries: column(|p| p.retries),
            faults: column(|p| p.faults),
            requests_by_group: Group::ALL
                .iter()
                .map(|g| {
                    let values = snapshot
                        .points
                        .iter()
                        .map(|p| p.groups[g.index()])
                        .collect();
                    (g.name(), values)
                })
                .collect(),
        }
    }
}

/// Why a report cannot be asked for, or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "--report {0}: name a .html file (a page to read) or a .json file (the same data for \
         machines)"
    )]
    Kind(String),
    #[error("cannot write the report {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// What a report file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Html,
    Json,
}

/// The report files a run was asked for (`--report`, repeatable).
#[derive(Debug, Clone, Default)]
pub struct Files {
    files: Vec<(PathBuf, Kind)>,
}

impl Files {
    /// Each path's kind, from its extension; any other extension is refused.
    pub fn of(paths: &[PathBuf]) -> Result<Files, ReportError> {
        let files = paths
            .iter()
            .map(|path| {
                let extension = path.extension().map(|e| e.to_string_lossy().to_lowercase());
                match extension.as_deref() {
                    Some("html") => Ok((path.clone(), Kind::Html)),
                    Some("json") => Ok((path.clone(), Kind::Json)),
                    _ => Err(ReportError::Kind(path.display().to_string())),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Files { files })
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(path, _)| path.as_path())
    }

    /// The same files under other names (a rehearsal's own, beside the job's).
    pub fn renamed(self, rename: impl Fn(&Path) -> PathBuf) -> Files {
        Files {
            files: self
                .files
                .into_iter()
                .map(|(path, kind)| (rename(&path), kind))
                .collect(),
        }
    }

    /// Writes every file of `report`: atomically (a temporary file renamed into place), 0600,
    /// its folder made if missing.
    pub fn write(&self, report: &Report) -> Result<(), ReportError> {
        for (path, kind) in &self.files {
            let text = match kind {
                Kind::Html => html::page(report),
                Kind::Json => {
                    let mut text =
                        serde_json::to_string_pretty(report).expect("a report encodes as JSON");
                    text.push('\n');
                    text
                }
            };
            let failed = |source| ReportError::Write {
                path: path.display().to_string(),
                source,
            };
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(failed)?;
            }
            crate::state::dir::write_atomic(path, text.as_bytes()).map_err(failed)?;
        }
        Ok(())
    }
}

/// What a command tells its report as it runs; whatever it had told when the run ends is
/// reported. A clone tells the same report (the command holds one, the caller another).
#[derive(Debug, Default, Clone)]
pub struct Witness {
    seen: Arc<Mutex<Seen>>,
}

#[derive(Debug, Default)]
struct Seen {
    target: Option<String>,
    timeline: Option<Arc<Timeline>>,
    summary: Option<Value>,
    windows: Option<Vec<Walked>>,
}

impl Witness {
    /// The run's client is made: its timeline is the run's, `target` its tenant.
    pub fn client(&self, client: &crate::api::Client, target: &str) {
        let mut seen = self.lock();
        seen.timeline = Some(client.timeline());
        seen.target = Some(target.to_string());
    }

    /// The closing summary, as `--json` prints it.
    pub fn summary<T: Serialize>(&self, summary: &T) {
        self.lock().summary = serde_json::to_value(summary).ok();
    }

    /// An export's windows written.
    pub fn windows(&self, windows: Vec<Walked>) {
        self.lock().windows = Some(windows);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The report of the run, ended as `ended` says (`Err`: the error that stopped it); `None`
    /// when the run never made its client.
    pub fn report(&self, ended: Result<RunOutcome, String>) -> Option<Report> {
        let seen = std::mem::take(&mut *self.lock());
        let timeline = seen.timeline?;
        let snapshot = timeline.snapshot();
        let (redactor, args, env) = Redactor::of_process();
        let (outcome, error) = match ended {
            Ok(outcome) => (Outcome::of(outcome), None),
            Err(error) => (Outcome::Failed, Some(redactor.scrub(&error))),
        };
        let summary = seen.summary.unwrap_or(Value::Null);
        let totals = snapshot.totals();
        let ended_at =
            snapshot.started_at + chrono::Duration::from_std(snapshot.elapsed).unwrap_or_default();
        Some(Report {
            format: FORMAT,
            tool: concat!("auth0-bulk ", env!("CARGO_PKG_VERSION")).to_string(),
            command: redactor.command(&args),
            environment: redactor.environment(&env),
            target: seen.target.unwrap_or_default(),
            started_at: snapshot.started_at,
            ended_at,
            elapsed_seconds: snapshot.elapsed.as_secs_f64(),
            outcome,
            error,
            resumed: summary["resumed"].as_bool().unwrap_or(false),
            requests_by_group: Group::ALL
                .iter()
                .map(|g| (g.name(), u64::from(totals.groups[g.index()])))
                .collect(),
            totals,
            timeline: Series::of(&snapshot),
            summary,
            windows: seen.windows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_html_or_json_by_its_name_and_nothing_else() {
        let kinds = |names: &[&str]| {
            Files::of(&names.iter().map(PathBuf::from).collect::<Vec<_>>())
                .map(|files| files.files.into_iter().map(|(_, k)| k).collect::<Vec<_>>())
        };
        assert_eq!(
            kinds(&["r.html", "R.JSON"]).unwrap(),
            vec![Kind::Html, Kind::Json]
        );
        for bad in ["r.htm", "r.txt", "report", "r.html.gz"] {
            let error = kinds(&[bad]).unwrap_err().to_string();
            assert!(error.contains(bad) && error.contains(".html"), "{error}");
        }
    }
}
