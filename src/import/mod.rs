//! Import: create, update or upsert users with metadata from NDJSON, CSV or JSON arrays.
//!
//! Every record read ends as created, updated, unchanged, skipped (with why) or rejected (with
//! why, in the rejects file, which `import` reads back as it is). The stages, in the order
//! data flows through them:
//!
//! - [`read`]: the input (a file or stdin, maybe gzip) becomes numbered records, lazily.
//! - `hashfile`: with `--password-hashes`, the hash file is checked and indexed on disk
//!   before any request (a bad line ends the run before anything is sent).
//! - `prepare`: in input order, each record is found done by an earlier run, rejected at once
//!   (unreadable, invalid as [`plan`] checks it, a duplicate in create mode), or planned; a
//!   hash from the hash file is merged into its record first.
//! - `pipeline`: records are applied concurrently within the client's one budget, in input
//!   order per user.
//! - [`apply`]: a planned record reaches the tenant (see *Applying* below).
//! - `outcomes`: each outcome goes to the rejects file (`rejects`), the [`ledger`], the log and
//!   dry-run plan file, and the summary (`summary`), in that order.
//! - `resume`: the run state (a checkpoint naming the import and its tenant, and the ledger)
//!   so a resumed run picks up where the last one stopped, exactly once.
//! - [`before`]: each update's before-image, kept in the run state before its PATCH is sent;
//!   [`undo`] puts them back through this same pipeline.
//!
//! # Applying
//!
//! Reading, planning, ordering, the ledger and the rejects file are shared by every way of
//! applying records; only [`Apply`] differs:
//!
//! - [`apply::PerUser`]: a lookup, then a create or a patch, per record, through the
//!   Management API (`--engine api`, and update mode whatever the engine).
//! - [`job`] in create mode: records are cut into chunks in input order and sent as Auth0's
//!   bulk-import jobs, with no lookups; it has its own loop, since nothing is applied per user.
//! - `job::handoff` in upsert mode: an [`Apply`] that looks each record up and patches the
//!   users found as [`apply::PerUser`] does, and hands the missing ones to the job engine
//!   ([`Step::Handed`]); the engine writes their outcomes when their job ends. The pipeline
//!   takes in a window sized for chunks to fill, and a handed record waits without a worker
//!   permit.
//!
//! The contract is the same for all: `Err` only for what ends the run, a mark on disk (the
//! [`ledger`]'s `started`, or the jobs journal) before anything that could create a user, and
//! one outcome per record.

pub mod access;
pub mod apply;
pub mod before;
mod hashfile;
pub mod job;
pub mod ledger;
mod outcomes;
mod pipeline;
pub mod plan;
mod prepare;
pub mod read;
mod rejects;
mod reorder;
mod resume;
mod seen;
mod summary;
pub mod tickets;
pub mod undo;

use std::future::Future;
use std::path::PathBuf;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::api::{ApiError, Client};
use crate::exit::RunOutcome;
use crate::progress::Progress;
use crate::state::StateError;

use apply::Applied;
use plan::{PlanOptions, Planned};
use read::ReadOptions;

pub use resume::check_state;
pub use summary::ImportSummary;

/// A validated import.
#[derive(Debug, Clone)]
pub struct ImportSpec {
    pub input: PathBuf,
    pub read: ReadOptions,
    pub plan: PlanOptions,
    /// `--password-hashes`: hashes merged into the records by user_id or email.
    pub password_hashes: Option<PathBuf>,
    pub dry_run: bool,
    pub plan_file: Option<PathBuf>,
    pub rejects: PathBuf,
    pub state: Option<PathBuf>,
    pub fresh: bool,
    /// The most records taken in at once ([`crate::net::workers::CEILING`], or
    /// `--concurrency`); the client's worker permits bound those applied.
    pub concurrency: usize,
    pub domain: String,
    /// `--engine job`: creates go through Auth0's bulk-import jobs ([`job`]); `None` applies
    /// records one user at a time.
    pub job: Option<job::JobSettings>,
    /// `--tickets`: created users without a known password get a password-change ticket.
    pub tickets: Option<tickets::TicketSpec>,
    /// `--authz` and `--create-missing`: how records' roles, organizations and permissions
    /// are applied.
    pub access: access::AccessOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Input(#[from] read::InputError),
    #[error(transparent)]
    HashFile(#[from] hashfile::HashFileError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot write {path}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    /// The input broke off mid-way (a `.gz` cut short, a disk error): the records before the
    /// break were applied and are in the ledger.
    #[error("{input}: {message}")]
    InputCut { input: String, message: String },
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("{0}")]
    Usage(String),
}

/// How planned records reach the tenant: the one stage that differs between engines (see
/// *Applying* above).
pub trait Apply: Sync {
    /// Applies record `ordinal` (its 1-based input position, the ledger's key);
    /// `was_in_flight` when an earlier run's create for it was sent with its outcome unknown.
    /// `Err` is fatal for the run (the tenant is down past the retry budget, the credentials
    /// were refused, the run was interrupted); everything about the record itself is an
    /// [`Applied`], or the job engine's to write ([`Step::Handed`]).
    fn apply(
        &self,
        ordinal: u64,
        record: &read::Record,
        planned: &Planned,
        was_in_flight: bool,
    ) -> impl Future<Output = Result<Step, ApiError>> + Send;
}

/// What [`Apply::apply`] made of a record.
pub enum Step {
    /// Its outcome, for the pipeline to write.
    Applied(Applied),
    /// Handed to the job engine, which writes the outcome once the record's job has ended and
    /// then sends `()`; the sender is dropped unsent when the engine stopped first.
    Handed(tokio::sync::oneshot::Receiver<()>),
}

/// What the job engine needs of the tenant before anything is sent: a token with the engine's
/// scopes, and the `--connection` named, if any, as a database connection. Each failure is a
/// usage error (exit 2).
async fn check_job_engine(spec: &ImportSpec, client: &Client) -> Result<(), ImportError> {
    let mut needed = job::SCOPES.to_vec();
    if spec.plan.mode == plan::Mode::Upsert {
        // Users found are patched one at a time.
        needed.push(job::UPDATE_SCOPE);
    }
    if let Some(problem) = client.lacks_scopes("--engine job", &needed).await? {
        return Err(ImportError::Usage(problem));
    }
    if let Some(name) = &spec.plan.connection {
        match client.connection_by_name(name).await? {
            Some(found) if found.strategy == "auth0" => {}
            Some(found) => {
                return Err(ImportError::Usage(format!(
                    "--connection {name}: a {} connection; Auth0's import job creates users \
                     in database connections only",
                    found.strategy
                )));
            }
            None => {
                return Err(ImportError::Usage(format!(
                    "--connection {name}: the tenant has no connection of that name"
                )));
            }
        }
    }
    Ok(())
}

/// The job engine's settings when it has users to create: `--engine job` in create or upsert
/// mode (update mode never creates, so its records go one user at a time).
fn job_engine(spec: &ImportSpec) -> Option<&job::JobSettings> {
    spec.job
        .as_ref()
        .filter(|_| spec.plan.mode != plan::Mode::Update)
}

/// `--tickets` asks the tenant for tickets once every record is done: a token that may not is
/// found before anything is sent, not after the whole import (a usage error, exit 2).
async fn check_tickets_scope(spec: &ImportSpec, client: &Client) -> Result<(), ImportError> {
    if spec.tickets.is_none() {
        return Ok(());
    }
    match client.lacks_scopes("--tickets", &[tickets::SCOPE]).await? {
        Some(problem) => Err(ImportError::Usage(problem)),
        None => Ok(()),
    }
}

/// `--create-missing` creates roles and organizations, and `--authz replace` takes access away:
/// a token that may not is found before anything is sent (exit 2). (Giving access needs other
/// scopes too, but only records that carry access use them, which no flag says in advance: a
/// token without them gets those records rejected with the tenant's `insufficient_scope`.)
async fn check_access_scopes(spec: &ImportSpec, client: &Client) -> Result<(), ImportError> {
    let checks: [(&str, bool, &[&str]); 3] = [
        (
            "--create-missing roles",
            spec.access.create_roles,
            &["read:roles", "create:roles"],
        ),
        (
            "--create-missing organizations",
            spec.access.create_organizations,
            &["read:organizations", "create:organizations"],
        ),
        (
            "--authz replace",
            spec.access.strategy == access::Strategy::Replace,
            &[
                "delete:role_members",
                "delete:organization_members",
                "delete:organization_member_roles",
            ],
        ),
    ];
    for (flag, asked, needed) in checks {
        if asked && let Some(problem) = client.lacks_scopes(flag, needed).await? {
            return Err(ImportError::Usage(problem));
        }
    }
    Ok(())
}

/// Runs an import; returns the summary and how the run ended.
pub async fn run(
    spec: &ImportSpec,
    client: &Client,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<(ImportSummary, RunOutcome), ImportError> {
    let started = Instant::now();
    // An unreadable input is found before any request.
    // A regular file's size is the progress bar's total: its bytes are counted as read.
    let counted = std::fs::metadata(&spec.input)
        .ok()
        .filter(|meta| meta.is_file() && spec.input.as_os_str() != "-")
        .map(|meta| progress.count_input(meta.len()));
    let (_format, records) = read::open_counting(&spec.input, &spec.read, counted)?;
    // So is a bad line of the hash file. The index goes in the run state when it exists (a
    // dry run, which writes nothing there, and a first run use the temporary directory).
    let hashes = match &spec.password_hashes {
        Some(path) => {
            let dir = spec
                .state
                .as_deref()
                .filter(|dir| !spec.dry_run && dir.is_dir());
            Some(hashfile::HashFile::build(path, dir)?)
        }
        None => None,
    };
    // Then a tenant that cannot be reached (or refuses the credentials), before the first
    // file is written; an existing state is read first, offline (`commands::common::reach`).
    if spec.dry_run || !spec.state.as_deref().is_some_and(std::path::Path::exists) {
        client.reach().await?;
    }
    if job_engine(spec).is_some() {
        check_job_engine(spec, client).await?;
    }
    check_tickets_scope(spec, client).await?;
    check_access_scopes(spec, client).await?;
    let mut state = resume::RunState::open(spec)?;
    let summary = ImportSummary::new(
        spec.dry_run,
        state.resumed,
        spec.rejects.display().to_string(),
    );
    let ledger = state.ledger.as_ref();
    let outcomes =
        outcomes::Outcomes::open(spec, ledger, state.rejects_resume_at(), summary, progress)?;
    // Kept in the run state when there is one (the system's temporary directory otherwise).
    let mut seen = seen::Seen::new(state.dir());
    let prepare =
        prepare::Prepare::new(&spec.plan, &state.recovered, &mut seen).with_hashes(hashes.as_ref());
    let names = access::Names::default();
    let access_applier = access::AccessApplier {
        client,
        options: spec.access,
        names: &names,
        dry_run: spec.dry_run,
    };
    let per_user = apply::PerUser {
        client,
        ledger,
        mode: spec.plan.mode,
        metadata: spec.plan.metadata,
        dry_run: spec.dry_run,
        tickets: spec.tickets.is_some() && spec.plan.passwords == plan::Passwords::Random,
        access: Some(&access_applier),
        before: state.before.as_ref(),
    };
    let in_flight = (spec.concurrency, client.workers());
    let stopped = match job_engine(spec) {
        Some(settings) => {
            let engine = job::Engine {
                client,
                journal: state.journal.as_ref(),
                ledger,
                outcomes: &outcomes,
                settings,
                dry_run: spec.dry_run,
                tickets: spec.tickets.is_some(),
                cancel,
                connections: Default::default(),
                waiting: Default::default(),
                access: Some(&access_applier),
            };
            let sent = std::mem::take(&mut state.jobs);
            if spec.plan.mode == plan::Mode::Create {
                job::run(records, prepare, &engine, sent).await
            } else {
                // Upserts: lookups and patches per user, creates through jobs.
                let (handoff, jobs) =
                    job::handoff::start(per_user, &engine, sent, &state.recovered.done);
                let window = (in_flight.0.max(job::handoff::WINDOW), in_flight.1);
                let pipeline = async {
                    let stopped =
                        pipeline::run(records, prepare, &handoff, &outcomes, window, cancel).await;
                    // The jobs' task ends once nothing more can be handed over.
                    drop(handoff);
                    stopped
                };
                let (mut stopped, fatal) = futures::join!(pipeline, jobs);
                // Records waiting for jobs stop with `Cancelled` when the engine fails: the
                // engine's error says why.
                if fatal.is_some() {
                    stopped.fatal = fatal;
                }
                stopped
            }
        }
        None => pipeline::run(records, prepare, &per_user, &outcomes, in_flight, cancel).await,
    };

    let mut summary = outcomes.close();
    state.close_ledger();
    let finish = |summary: &mut ImportSummary| {
        summary.add_run(client.metrics(), client.pace().report(), started.elapsed());
    };
    finish(&mut summary);
    if let Some(error) = stopped.fatal {
        return match error {
            ApiError::Cancelled => Ok((summary, RunOutcome::Interrupted)),
            other => Err(ImportError::Api(other)),
        };
    }
    if cancel.is_cancelled() {
        return Ok((summary, RunOutcome::Interrupted));
    }
    // The users seen could not be kept: the records before were applied, the rest are not.
    if let Some(source) = seen.take_error() {
        return Err(ImportError::Write {
            path: seen.place(),
            source,
        });
    }
    if let Some(message) = stopped.input_cut {
        return Err(ImportError::InputCut {
            input: spec.input.display().to_string(),
            message,
        });
    }
    if let (Some(wanted), Some(ledger)) = (&spec.tickets, state.ledger_path()) {
        match tickets::issue(client, &ledger, wanted).await {
            Ok(counts) => {
                summary.tickets = Some(counts);
                finish(&mut summary);
            }
            Err(ImportError::Api(ApiError::Cancelled)) => {
                return Ok((summary, RunOutcome::Interrupted));
            }
            Err(e) => return Err(e),
        }
    }
    state.complete()?;
    let exit = summary.complete();
    Ok((summary, exit))
}
