//! Export: every selected user, with metadata, to NDJSON or CSV; rate-limited and resumable.
//!
//! The pipeline: [`walk`] reads the tenant in `created_at` windows past the 1,000 cap (or
//! `list` fetches the users `--users` names), [`encode`] turns each batch into bytes, [`sink`]
//! writes them durably, and the [`checkpoint`] in the run state records how far the output is
//! good; `output` is the tail every batch shares and the steps that finish the file. A resumed
//! run truncates the output to the checkpoint and goes on from its cursor, so its file is
//! byte-identical to a clean run's.

pub mod checkpoint;
pub mod encode;
mod list;
mod output;
pub mod sink;
pub mod walk;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiError, Client};
use crate::exit::RunOutcome;
use crate::progress::Progress;
use crate::state::{StateDir, StateError};

use checkpoint::Checkpoint;
use encode::Encoder;
use output::{Batches, WalkOutput};
use walk::{Walk, WalkError};

/// Where the export goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout,
    File(PathBuf),
}

impl Output {
    /// The output as messages and the summary name it: its path, or `-` for stdout.
    pub fn name(&self) -> String {
        match self {
            Output::Stdout => "-".into(),
            Output::File(path) => path.display().to_string(),
        }
    }
}

/// `--since`: users updated at or after a time, or after the last completed run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    At(String),
    Last,
}

/// A validated export.
#[derive(Debug, Clone)]
pub struct ExportSpec {
    pub query: Option<String>,
    pub connection: Option<String>,
    pub since: Option<Since>,
    pub users_file: Option<PathBuf>,
    pub encoder: Encoder,
    pub gzip: bool,
    /// The deflate level (1 to 9) of a gzipped output: `--gzip-level`.
    pub gzip_level: u32,
    /// The file this run writes (the template filled in by [`checkpoint::prepare`]), or stdout.
    pub output: Output,
    /// `--output` as given, with any `{date}`/`{datetime}` placeholder: what the state belongs to.
    pub template: Output,
    pub state: Option<PathBuf>,
    pub fresh: bool,
    pub concurrency: usize,
    /// How far back `--since last` reaches before the previous run's start, so a change the
    /// search index had not yet seen then is never lost between two runs.
    pub index_lag: Duration,
    /// The tenant (`sandbox` for the embedded one): a state belongs to one tenant.
    pub domain: String,
}

/// What the export did, for the closing summary (`--json` prints it as one object).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportSummary {
    pub command: &'static str,
    pub users: u64,
    pub not_found: u64,
    pub requests: u64,
    pub throttled: u64,
    pub retries: u64,
    pub windows: u64,
    pub elapsed_seconds: f64,
    pub resumed: bool,
    pub output: String,
    pub state: Option<String>,
    pub completed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Walk(#[from] WalkError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot write {path}")]
    Output {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read the user list {path}")]
    UsersFile {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

/// Runs an export. Returns the summary and how the run ended.
pub async fn run(
    spec: &ExportSpec,
    client: &Client,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<(ExportSummary, RunOutcome), ExportError> {
    let started = Instant::now();
    let state = spec.state.as_deref().map(StateDir::open).transpose()?;
    let state = state.as_ref();
    let (mut checkpoint, resumed) = checkpoint::begin(state, spec)?;
    if resumed {
        tracing::info!(
            users = checkpoint.users,
            "Resuming the export from its checkpoint."
        );
    }
    let walk_output = WalkOutput::of(spec, state)?;
    // A run that died after every batch was written has only the finishing steps left.
    let walk_done = resumed && checkpoint.written;
    let mut sink = walk_output.open(spec, state, &mut checkpoint, resumed, walk_done)?;
    let outcome = match sink.as_mut() {
        Some(sink) if !walk_done => {
            let mut out = Batches {
                encoder: spec.encoder.walk_encoder(),
                sink,
                checkpoint: &mut checkpoint,
                state,
                progress,
            };
            match &spec.users_file {
                Some(list) => list::export(spec, client, list, &mut out, cancel).await,
                None => export_walk(spec, client, &mut out, cancel).await,
            }
        }
        _ => Ok(()),
    };
    let mut summary = ExportSummary::of(spec, client, &checkpoint, started, resumed);
    match outcome {
        Ok(()) => {}
        Err(ExportError::Walk(WalkError::Api(ApiError::Cancelled))) => {
            return Ok((summary, RunOutcome::Interrupted));
        }
        Err(e) => return Err(e),
    }
    walk_output.finish(spec, state, &mut checkpoint, sink)?;
    summary.completed = true;
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    let exit = if checkpoint.not_found > 0 {
        RunOutcome::Rejected
    } else {
        RunOutcome::Success
    };
    Ok((summary, exit))
}

impl ExportSummary {
    /// The summary of a run so far, not yet completed.
    fn of(
        spec: &ExportSpec,
        client: &Client,
        checkpoint: &Checkpoint,
        started: Instant,
        resumed: bool,
    ) -> ExportSummary {
        let counts = client.metrics();
        ExportSummary {
            command: "export",
            users: checkpoint.users,
            not_found: checkpoint.not_found,
            requests: counts.requests,
            throttled: counts.throttled,
            retries: counts.retries,
            windows: checkpoint.windows,
            elapsed_seconds: started.elapsed().as_secs_f64(),
            resumed,
            output: spec.output.name(),
            state: spec.state.as_ref().map(|p| p.display().to_string()),
            completed: false,
        }
    }
}

/// The tenant's users in `created_at` windows (see [`walk`]), from the checkpoint's cursor on.
async fn export_walk(
    spec: &ExportSpec,
    client: &Client,
    out: &mut Batches<'_>,
    cancel: &CancellationToken,
) -> Result<(), ExportError> {
    let walk = Walk {
        client,
        upper: out.checkpoint.upper.clone(),
        fields: spec.encoder.request_fields(),
        concurrency: spec.concurrency,
        query: build_query(spec, out.checkpoint.since.as_deref()),
    };
    out.progress.set_done(out.checkpoint.users);
    let mut first = true;
    while let Some(cursor) = out.checkpoint.cursor.clone() {
        if cancel.is_cancelled() {
            return Err(WalkError::Api(ApiError::Cancelled).into());
        }
        let batch = walk.next(&cursor).await?;
        if first {
            // The first window of a run counts every user still to come: the bar's total.
            out.progress
                .set_total(out.checkpoint.users + batch.remaining);
            first = false;
        }
        let count = batch.users.len() as u64;
        out.write(&batch.users, count, |checkpoint| {
            checkpoint.windows += batch.windows;
            checkpoint.cursor = batch.next;
        })?;
    }
    Ok(())
}

/// The user's selection as one v3 query.
fn build_query(spec: &ExportSpec, since: Option<&str>) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(q) = spec.query.as_deref().filter(|q| !q.trim().is_empty()) {
        parts.push(format!("({q})"));
    }
    if let Some(connection) = &spec.connection {
        parts.push(format!(
            "identities.connection:\"{}\"",
            connection.replace('"', "\\\"")
        ));
    }
    if let Some(since) = since {
        parts.push(format!("updated_at:[{since} TO *]"));
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join(" AND "))
    }
}
