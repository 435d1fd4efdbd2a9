//! Export: every selected user, with metadata, to NDJSON or CSV; rate-limited and resumable.
//!
//! The pipeline: [`walk`] plans the tenant as `created_at` windows past the 1,000 cap and
//! reads many at once (or `list` fetches the users `--users` names), [`pages`] keeps the pages
//! read ahead of the output, [`encode`] turns each window into bytes, [`sink`] writes them
//! durably, in `created_at` order, and the [`checkpoint`] in the run state records how far the
//! output is good and the windows still planned; `output` is the tail every batch shares and the
//! steps that finish the file. A resumed run truncates the output to the checkpoint, re-uses the
//! pages kept and reads only the rest of the plan, so its file is byte-identical to a clean
//! run's.
//!
//! [`job`] is the other way in (`--engine job`): one Auth0 bulk-export job, a catch-up walk for
//! the users changed while it ran, then the job's file streamed through the same encoder,
//! sink and checkpoint.

pub mod authz;
pub mod checkpoint;
pub mod encode;
pub mod job;
pub mod list;
mod output;
pub mod pages;
pub mod sink;
pub mod walk;

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{self, AtomicU64, AtomicUsize};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiError, Client};
use crate::exit::RunOutcome;
use crate::net::pace::BudgetReport;
use crate::progress::Progress;
use crate::state::{StateDir, StateError};

use checkpoint::Checkpoint;
use encode::Encoder;
use output::{Batches, WalkOutput};
use pages::Pages;
use walk::{Plan, Walk, WalkError, Window};

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

/// How the users are read (`--engine`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Engine {
    /// List pages of `GET /api/v2/users`, in `created_at` windows ([`walk`]).
    #[default]
    Api,
    /// One bulk-export job and a catch-up walk ([`job`]).
    Job(job::JobSettings),
}

/// A validated export.
#[derive(Debug, Clone)]
pub struct ExportSpec {
    pub engine: Engine,
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
    /// How far back `--since last` reaches before the previous run's start, so a change the
    /// search index had not yet seen then is never lost between two runs.
    pub index_lag: Duration,
    /// The tenant (`sandbox` for the embedded one): a state belongs to one tenant.
    pub domain: String,
    /// `--include`: roles, organizations, direct permissions added to each user ([`authz`]).
    pub include: authz::Include,
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
    /// The tenant's rate-limit buckets as the run learnt them.
    pub budgets: Vec<BudgetReport>,
    /// The walk's windows written: ranges of up to 1,000 users and instants read whole (a
    /// resumed run counts those of the runs before it too).
    pub windows: u64,
    pub elapsed_seconds: f64,
    pub resumed: bool,
    pub output: String,
    pub state: Option<String>,
    pub completed: bool,
    /// `--engine job`: the job, and what the catch-up pass did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<job::JobReport>,
    /// `--include`: what the role, organization and permission reads found and cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authz: Option<authz::AuthzReport>,
    /// The windows this run wrote, in order, for `--report` (not in `--json`: thousands of
    /// them in a large export).
    #[serde(skip)]
    pub walked: Vec<walk::Walked>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Walk(#[from] WalkError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Job(#[from] job::JobError),
    #[error(transparent)]
    Authz(#[from] authz::AuthzError),
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
    // The output is opened (and a new run's first checkpoint saved) before the role reads, so
    // that a run killed in them is resumed, and its store with it, not started over.
    let mut sink = walk_output.open(spec, state, &mut checkpoint, resumed, walk_done)?;
    // Once every batch is written the store is gone (see below): its counts are in the
    // checkpoint.
    let store = match spec.include.any() && !walk_done {
        true => Some(authz::Store::open(state, resumed, spec.include)?),
        false => {
            // A run killed as it removed the store may have left it.
            authz::Store::discard(state);
            None
        }
    };
    if let Some(store) = &store {
        tracing::info!(
            "Reading the members of every role and organization ({}) before the users.",
            spec.include
        );
        match store.gather(client, cancel).await {
            // What the reads held is free: handed back before the users' peak begins.
            Ok(()) => crate::memory::give_back(),
            Err(authz::AuthzError::Api(ApiError::Cancelled)) => {
                let summary = ExportSummary::of(spec, client, &checkpoint, started, resumed);
                return Ok((summary, RunOutcome::Interrupted));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut walked = Vec::new();
    let outcome = match sink.as_mut() {
        Some(sink) if !walk_done => {
            let mut out = Batches {
                encoder: spec.encoder.walk_encoder(),
                sink,
                checkpoint: &mut checkpoint,
                state,
                progress,
                caught_up: None,
                authz: store.as_ref().map(|store| output::Authz {
                    store,
                    client,
                    cancel,
                }),
            };
            match (&spec.users_file, &spec.engine) {
                (Some(list), _) => list::export(client, list, &mut out, cancel).await,
                (None, Engine::Job(settings)) => {
                    job::export(spec, settings, client, &mut out, cancel).await
                }
                (None, Engine::Api) => {
                    export_walk(spec, client, &mut out, &mut walked, cancel).await
                }
            }
        }
        _ => Ok(()),
    };
    let mut summary = ExportSummary::of(spec, client, &checkpoint, started, resumed);
    summary.walked = walked;
    summary.authz = match &store {
        Some(store) => Some(store.report()?),
        None => checkpoint.authz.clone(),
    };
    match outcome {
        Ok(()) => {}
        Err(ExportError::Walk(WalkError::Api(ApiError::Cancelled)))
        | Err(ExportError::Authz(authz::AuthzError::Api(ApiError::Cancelled))) => {
            return Ok((summary, RunOutcome::Interrupted));
        }
        Err(e) => return Err(e),
    }
    if let Some(store) = store {
        // Every user is written: the store (user data) goes before the checkpoint can say
        // complete, so no kill leaves it behind a completed run. Its counts stay in the
        // checkpoint for a run resumed from here.
        checkpoint.authz = summary.authz.clone();
        checkpoint.written = true;
        checkpoint::save(state, &checkpoint)?;
        store.remove();
    }
    walk_output.finish(spec, state, &mut checkpoint, sink)?;
    if let (Engine::Job(_), Some(state)) = (&spec.engine, state) {
        // Only once the checkpoint says complete: until then a resume reads it back.
        state.remove(job::caught_up::FILE)?;
    }
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
            budgets: client.pace().report(),
            windows: checkpoint.windows,
            elapsed_seconds: started.elapsed().as_secs_f64(),
            resumed,
            output: spec.output.name(),
            state: spec.state.as_ref().map(|p| p.display().to_string()),
            completed: false,
            job: checkpoint.job.as_ref().map(job::JobReport::of),
            authz: None,
            walked: Vec::new(),
        }
    }
}

/// Windows planned or read ahead of the first one not written, per unit of the workers' goal:
/// enough that a slow window at the front (an instant cluster, read page after page) does not
/// idle the workers, and few enough that pages waiting on disk stay a small share of the job.
const AHEAD_PER_WORKER: usize = 4;

/// Windows written between two hand-backs of free memory ([`crate::memory::give_back`]).
const GIVE_BACK_EVERY: u64 = 16;

/// What a window's work gave.
enum Done {
    /// A range planned: the windows that take its place, and the range's total.
    Planned(walk::Planned),
    /// Every page of the window is kept.
    Read,
}

/// The tenant's users in `created_at` windows (see [`walk`]), from the checkpoint's plan (or
/// cursor) on. Windows are planned and read many at once, up to the workers' goal, and written
/// in plan order as the first one not written completes; the checkpoint keeps the plan, so a
/// resumed run re-uses the pages kept and asks only for the rest.
async fn export_walk(
    spec: &ExportSpec,
    client: &Client,
    out: &mut Batches<'_>,
    walked: &mut Vec<walk::Walked>,
    cancel: &CancellationToken,
) -> Result<(), ExportError> {
    let Some(cursor) = out.checkpoint.cursor.clone() else {
        return Ok(());
    };
    let upper = out.checkpoint.upper.clone();
    let saved = out.checkpoint.walk.take();
    let pages = Pages::open(out.state).map_err(WalkError::from)?;
    // Pages of windows the plan no longer holds (planned but not recorded, or written but not
    // removed, when a run was killed) are never used; a new plan (a new run, `--fresh`, or a
    // format 1 checkpoint) uses none at all, since its ids start again at 0.
    let keep: HashSet<u64> = saved
        .iter()
        .flat_map(|plan| plan.windows.iter().map(Window::id))
        .collect();
    pages.keep_only(&keep).map_err(WalkError::from)?;
    let plan = saved.unwrap_or_else(|| Plan::from_cursor(&cursor, &upper));
    let walk = Walk {
        client,
        upper,
        fields: spec.encoder.request_fields(),
        query: build_query(spec, out.checkpoint.since.as_deref()),
        pages: &pages,
        next_id: AtomicU64::new(plan.next_id),
        fan: AtomicUsize::new(1),
    };
    let mut expected = plan.expected;
    out.progress.set_done(out.checkpoint.users);
    if let Some(expected) = expected {
        out.progress.set_total(expected);
    }
    let mut windows: VecDeque<Window> = plan.windows.into();
    let mut busy: HashSet<u64> = HashSet::new();
    let mut read: HashSet<u64> = HashSet::new();
    let mut work = FuturesUnordered::new();
    loop {
        // Write every window read at the front, in order: one at a time, so that what is held
        // for a write (its users, their text, the encoded batch) stays one window's worth.
        // (Four at once saved a little CPU, but the peak of a long run grew with them.)
        while let Some(front) = windows.front().filter(|w| read.contains(&w.id())) {
            let users = walk.users(front)?;
            let written = front.walked(users.len() as u64);
            let id = front.id();
            windows.pop_front();
            read.remove(&id);
            let rest = (!windows.is_empty()).then(|| snapshot(&windows, &walk, expected));
            let next = windows.front().map(Window::start);
            out.write(&users, users.len() as u64, |checkpoint| {
                checkpoint.windows += 1;
                checkpoint.cursor = next;
                checkpoint.walk = rest;
            })
            .await?;
            walked.push(written);
            // Only once the checkpoint no longer holds the window: a kill before this line
            // leaves pages the next run removes.
            pages.remove(id).map_err(WalkError::from)?;
            if out.checkpoint.windows.is_multiple_of(GIVE_BACK_EVERY) {
                crate::memory::give_back();
            }
        }
        if windows.is_empty() {
            return Ok(());
        }
        let goal = client.workers().goal();
        // One page in flight per window while the plan holds over twice as many windows as
        // workers; near the end the workers go to the last windows' pages (see `Walk::read`).
        // Either way no more requests are in flight than the workers' goal.
        walk.fan.store(
            (2 * goal).div_ceil(windows.len()).max(1),
            atomic::Ordering::Relaxed,
        );
        for window in windows.iter().take(goal * AHEAD_PER_WORKER) {
            // A few more windows than permits: one that is between two requests (keeping a
            // page, sorting) leaves its permit to another.
            if work.len() > goal {
                break;
            }
            if !read.contains(&window.id()) && busy.insert(window.id()) {
                work.push(advance(&walk, window.clone()));
            }
        }
        let (id, done) = tokio::select! {
            _ = cancel.cancelled() => return Err(WalkError::Api(ApiError::Cancelled).into()),
            Some(done) = work.next() => done,
        };
        busy.remove(&id);
        match done? {
            Done::Read => {
                read.insert(id);
            }
            Done::Planned(planned) => {
                let at = windows
                    .iter()
                    .position(|w| w.id() == id)
                    .expect("a window planned is in the plan");
                if at == 0 && expected.is_none() {
                    // The run's first range counts every user still to come: the bar's total.
                    let total = out.checkpoint.users + planned.total;
                    expected = Some(total);
                    out.progress.set_total(total);
                }
                let kept = planned.windows.iter().any(|w| w.id() == id);
                windows.remove(at);
                for (offset, window) in planned.windows.into_iter().enumerate() {
                    windows.insert(at + offset, window);
                }
                // The plan that names the new windows is saved before any of them is read.
                out.checkpoint.walk = Some(snapshot(&windows, &walk, expected));
                checkpoint::save(out.state, out.checkpoint)?;
                if !kept {
                    // A range split or cut at an instant: its first page served only to plan.
                    pages.remove(id).map_err(WalkError::from)?;
                }
            }
        }
    }
}

/// Plans a range, or reads a window's missing pages.
async fn advance(walk: &Walk<'_>, window: Window) -> (u64, Result<Done, WalkError>) {
    let done = match &window {
        Window::Range { id, range, share } => {
            walk.plan(*id, range, *share).await.map(Done::Planned)
        }
        _ => walk.read(&window).await.map(|()| Done::Read),
    };
    (window.id(), done)
}

/// The plan as the checkpoint keeps it.
fn snapshot(windows: &VecDeque<Window>, walk: &Walk<'_>, expected: Option<u64>) -> Plan {
    Plan {
        windows: windows.iter().cloned().collect(),
        next_id: walk.next_id(),
        expected,
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
