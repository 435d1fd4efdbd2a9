//! Export: every selected user, with metadata, to NDJSON or CSV; rate-limited and resumable.
//!
//! The pipeline: [`walk`] reads the tenant in `created_at` windows past the 1,000 cap,
//! [`encode`] turns each batch into bytes, [`sink`] writes them durably, and the checkpoint in
//! the run state records how far the output is good. A resumed run truncates the output to the
//! checkpoint and goes on from its cursor, so its file is byte-identical to a clean run's.

pub mod checkpoint;
pub mod encode;
pub mod sink;
pub mod walk;

use std::io::BufRead;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiError, Client, Listed, User};
use crate::exit::Exit;
use crate::progress::Progress;
use crate::state::{StateDir, StateError};

use checkpoint::{Checkpoint, Options, Saved, Written};
use encode::Encoder;
use sink::Sink;
use walk::{Cursor, Walk, WalkError};

/// Where the export goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout,
    File(PathBuf),
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
) -> Result<(ExportSummary, Exit), ExportError> {
    let started = Instant::now();
    let state = match &spec.state {
        Some(path) => Some(StateDir::open(path)?),
        None => None,
    };
    // Read for its tenant even with --fresh: a state of another tenant is never overwritten.
    let saved = match &state {
        Some(state) => checkpoint::load(state, spec)?,
        None => None,
    };
    let saved = saved.filter(|_| !spec.fresh);
    let previous_upper = saved.as_ref().and_then(|c| c.last_completed_upper.clone());
    let last_output = saved.as_ref().and_then(|c| c.last_output.clone());
    let resume = match saved {
        Some(c) if !c.completed => {
            if let Some(state) = &state {
                checkpoint::check_same_export(&c, spec, state.path())?;
            }
            Some(c)
        }
        _ => None,
    };
    let resumed = resume.is_some();
    let mut checkpoint = match resume {
        Some(c) => c,
        None => Checkpoint {
            fingerprint: checkpoint::fingerprint(spec),
            domain: Some(spec.domain.clone()),
            options: Some(Options::of(spec)),
            output_path: match &spec.output {
                Output::File(path) => Some(path.clone()),
                Output::Stdout => None,
            },
            upper: walk::canonical(Utc::now()),
            since: since_mark(spec, previous_upper.as_deref())?,
            cursor: Some(Cursor::start()),
            lines_done: 0,
            bytes: 0,
            users: 0,
            not_found: 0,
            windows: 0,
            completed: false,
            written: false,
            last_completed_upper: previous_upper,
            last_output,
        },
    };
    if resumed {
        tracing::info!(
            users = checkpoint.users,
            "Resuming the export from its checkpoint."
        );
    }

    // A flattened CSV is walked to NDJSON in the state first (see `encode::flatten`).
    let scratch;
    let walk_output = if spec.encoder.needs_second_pass() {
        let dir = match &state {
            Some(state) => state.path().to_path_buf(),
            None => {
                scratch = tempfile::tempdir().map_err(|source| ExportError::Output {
                    path: "a temporary folder".into(),
                    source,
                })?;
                scratch.path().to_path_buf()
            }
        };
        Output::File(dir.join("flatten.ndjson"))
    } else {
        spec.output.clone()
    };
    let walk_gzip = spec.gzip && !spec.encoder.needs_second_pass();
    // A run that died after its output was renamed into place has nothing left to write.
    let walk_done = resumed && checkpoint.written;
    let renamed = match &walk_output {
        Output::File(path) => walk_done && !sink::partial_path(path).exists() && path.exists(),
        Output::Stdout => false,
    };
    let mut sink = match &walk_output {
        _ if renamed => None,
        Output::Stdout => Some(Sink::stdout(walk_gzip)),
        // Nothing was sent yet: an output that cannot be opened (or no longer matches its
        // checkpoint) is the user's to fix, and running again alone would not help.
        Output::File(path) => Some(
            Sink::file(
                path.as_path(),
                walk_gzip,
                resumed.then_some(checkpoint.bytes),
            )
            .map_err(|e| {
                ExportError::Usage(format!(
                    "cannot write {}: {e}",
                    sink::partial_path(path.as_path()).display()
                ))
            })?,
        ),
    };
    let output_name = match &spec.output {
        Output::Stdout => "-".to_string(),
        Output::File(p) => p.display().to_string(),
    };
    let write_err = |source| ExportError::Output {
        path: output_name.clone(),
        source,
    };
    let save = |checkpoint: &Checkpoint| -> Result<(), ExportError> {
        if let Some(state) = &state {
            state.save(checkpoint::CHECKPOINT, &Saved::V1(checkpoint.clone()))?;
        }
        Ok(())
    };
    if !resumed && let Some(sink) = sink.as_mut() {
        sink.write_batch(&spec.encoder.walk_encoder().header())
            .map_err(write_err)?;
        checkpoint.bytes = sink.bytes();
        save(&checkpoint)?;
    }

    let query = build_query(spec, checkpoint.since.as_deref());
    let outcome = if walk_done {
        Ok(())
    } else if let Some(list) = &spec.users_file {
        let sink = sink
            .as_mut()
            .expect("a walk that is not done has its output open");
        export_list(
            spec,
            client,
            list,
            &mut checkpoint,
            sink,
            progress,
            cancel,
            &save,
        )
        .await
    } else {
        let sink = sink
            .as_mut()
            .expect("a walk that is not done has its output open");
        export_walk(
            spec,
            client,
            query,
            &mut checkpoint,
            sink,
            progress,
            cancel,
            &save,
        )
        .await
    };
    let counts = client.metrics();
    let mut summary = ExportSummary {
        command: "export",
        users: checkpoint.users,
        not_found: checkpoint.not_found,
        requests: counts.requests,
        throttled: counts.throttled,
        retries: counts.retries,
        windows: checkpoint.windows,
        elapsed_seconds: started.elapsed().as_secs_f64(),
        resumed,
        output: output_name.clone(),
        state: spec.state.as_ref().map(|p| p.display().to_string()),
        completed: false,
    };
    match outcome {
        Ok(()) => {}
        Err(ExportError::Walk(WalkError::Api(ApiError::Cancelled))) => {
            return Ok((summary, Exit::Interrupted));
        }
        Err(e) => return Err(e),
    }
    if !checkpoint.written {
        checkpoint.written = true;
        save(&checkpoint)?;
    }
    if let Some(sink) = sink {
        sink.finish().map_err(write_err)?;
    }
    let mut first_pass = None;
    if let (
        Encoder {
            shape,
            format: encode::Format::CsvFlatten { escape_formulas },
        },
        Output::File(pass1),
    ) = (&spec.encoder, &walk_output)
    {
        let mut out = match &spec.output {
            Output::Stdout => Sink::stdout(spec.gzip),
            Output::File(path) => Sink::file(path, spec.gzip, None).map_err(write_err)?,
        };
        let mut write = |bytes: &[u8]| out.write_batch(bytes);
        encode::flatten(pass1, shape, *escape_formulas, &mut write).map_err(ExportError::Usage)?;
        out.finish().map_err(write_err)?;
        first_pass = Some(pass1);
    }
    checkpoint.completed = true;
    checkpoint.cursor = None;
    checkpoint.last_completed_upper = Some(checkpoint.upper.clone());
    if let Output::File(path) = &spec.output {
        checkpoint.last_output = Written::of(path);
    }
    save(&checkpoint)?;
    // The first pass holds user data: keep it no longer than needed (and only once the
    // checkpoint no longer needs it for a resume).
    if let Some(pass1) = first_pass {
        let _ = std::fs::remove_file(pass1);
    }
    summary.completed = true;
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    let exit = if checkpoint.not_found > 0 {
        Exit::Rejected
    } else {
        Exit::Success
    };
    Ok((summary, exit))
}

#[allow(clippy::too_many_arguments)]
async fn export_walk(
    spec: &ExportSpec,
    client: &Client,
    query: Option<String>,
    checkpoint: &mut Checkpoint,
    sink: &mut Sink,
    progress: &Progress,
    cancel: &CancellationToken,
    save: &(dyn Fn(&Checkpoint) -> Result<(), ExportError> + Sync),
) -> Result<(), ExportError> {
    let encoder = spec.encoder.walk_encoder();
    let walk = Walk {
        client,
        upper: checkpoint.upper.clone(),
        fields: spec.encoder.request_fields(),
        concurrency: spec.concurrency,
        query: query.clone(),
    };
    progress.set_done(checkpoint.users);
    let mut first = true;
    while let Some(cursor) = checkpoint.cursor.clone() {
        if cancel.is_cancelled() {
            return Err(WalkError::Api(ApiError::Cancelled).into());
        }
        let batch = walk.next(&cursor).await?;
        if first {
            // The first window of a run counts every user still to come: the bar's total.
            progress.set_total(checkpoint.users + batch.remaining);
            first = false;
        }
        let bytes = encoder.encode(&batch.users).map_err(ExportError::Usage)?;
        sink.write_batch(&bytes)
            .map_err(|source| ExportError::Output {
                path: sink.name(),
                source,
            })?;
        checkpoint.bytes = sink.bytes();
        checkpoint.users += batch.users.len() as u64;
        checkpoint.windows += batch.windows;
        checkpoint.cursor = batch.next;
        save(checkpoint)?;
        progress.inc(batch.users.len() as u64);
    }
    Ok(())
}

/// `--users FILE`: each line a user_id or an email, fetched directly (immediately consistent).
#[allow(clippy::too_many_arguments)]
async fn export_list(
    spec: &ExportSpec,
    client: &Client,
    list: &PathBuf,
    checkpoint: &mut Checkpoint,
    sink: &mut Sink,
    progress: &Progress,
    cancel: &CancellationToken,
    save: &(dyn Fn(&Checkpoint) -> Result<(), ExportError> + Sync),
) -> Result<(), ExportError> {
    let encoder = spec.encoder.walk_encoder();
    let read_err = |source| ExportError::UsersFile {
        path: list.display().to_string(),
        source,
    };
    let file = std::fs::File::open(list).map_err(read_err)?;
    // The list streams: only one chunk of lines is in memory at a time. A first pass counts
    // the lines for the progress bar.
    let total = std::io::BufReader::new(file).lines().count() as u64;
    progress.set_total(total);
    progress.set_done(checkpoint.lines_done);
    const CHUNK: usize = 100;
    let start = checkpoint.lines_done as usize;
    let file = std::fs::File::open(list).map_err(read_err)?;
    let mut lines = std::io::BufReader::new(file).lines().skip(start);
    for index in 0.. {
        let chunk: Vec<String> = lines
            .by_ref()
            .take(CHUNK)
            .collect::<Result<_, _>>()
            .map_err(read_err)?;
        if chunk.is_empty() {
            break;
        }
        if cancel.is_cancelled() {
            return Err(WalkError::Api(ApiError::Cancelled).into());
        }
        let first_line = start + index * CHUNK + 1;
        let found: Vec<Vec<User>> = futures::stream::iter(chunk.iter().enumerate())
            .map(|(offset, line)| async move {
                let key = line.trim();
                let users = if key.is_empty() || key.starts_with('#') {
                    return Ok(None);
                } else if key.contains('@') && !key.contains('|') {
                    let mut users = client.users_by_email(key).await?;
                    users.sort_by(|a, b| {
                        a.get("user_id")
                            .map(|v| v.to_string())
                            .cmp(&b.get("user_id").map(|v| v.to_string()))
                    });
                    users
                } else {
                    client.get_user(key).await?.into_iter().collect()
                };
                if users.is_empty() {
                    tracing::warn!(
                        line = first_line + offset,
                        user = key,
                        "No such user in the tenant; skipped."
                    );
                }
                Ok::<_, ApiError>(Some(users))
            })
            .buffered(spec.concurrency.max(1))
            .filter_map(|r| async move { r.transpose() })
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(WalkError::from)?;
        let missing = found.iter().filter(|u| u.is_empty()).count() as u64;
        let users: Vec<Listed> = found
            .into_iter()
            .flatten()
            .map(|user| Listed::from_user(&user))
            .collect();
        let bytes = encoder.encode(&users).map_err(ExportError::Usage)?;
        sink.write_batch(&bytes)
            .map_err(|source| ExportError::Output {
                path: sink.name(),
                source,
            })?;
        checkpoint.bytes = sink.bytes();
        checkpoint.users += users.len() as u64;
        checkpoint.not_found += missing;
        checkpoint.lines_done += chunk.len() as u64;
        save(checkpoint)?;
        progress.inc(chunk.len() as u64);
    }
    Ok(())
}

/// The `--since` mark: a time given, or the last completed run's start less the index lag.
fn since_mark(
    spec: &ExportSpec,
    previous_upper: Option<&str>,
) -> Result<Option<String>, ExportError> {
    match &spec.since {
        None => Ok(None),
        Some(Since::At(t)) => Ok(Some(t.clone())),
        Some(Since::Last) => match previous_upper {
            None => {
                tracing::info!(
                    "No completed run in this state yet: --since last exports every user."
                );
                Ok(None)
            }
            Some(upper) => {
                let upper = DateTime::parse_from_rfc3339(upper)
                    .map_err(|e| ExportError::Usage(format!("bad mark in the state: {e}")))?
                    .with_timezone(&Utc);
                let lag = chrono::Duration::from_std(spec.index_lag).unwrap_or_default();
                Ok(Some(walk::canonical(upper - lag)))
            }
        },
    }
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
