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
//!
//! # Applying
//!
//! Reading, planning, ordering, the ledger and the rejects file are shared by every way of
//! applying records; only [`Apply`] differs. Today's one implementation is
//! [`apply::PerUser`]: a lookup, then a create or a patch, per record, through the Management
//! API. The bulk-import job engine is meant to be a second one: it would queue each planned
//! record into a job and resolve the record's future when the job's report names it. Its
//! contract is the same as today's: `Err` only for what ends the run, a [`ledger`] start mark
//! before anything that could create a user, and the same [`apply::Applied`] for the record.
//! (The pipeline applies a record while it holds one of the client's worker permits, whose
//! number follows the tenant's rate × round trip, and takes in at most `concurrency` records,
//! so a job engine will want a window sized for a job rather than for workers.)

pub mod apply;
mod hashfile;
pub mod job;
pub mod ledger;
mod outcomes;
mod pipeline;
pub mod plan;
mod prepare;
pub mod read;
mod rejects;
mod resume;
mod seen;
mod summary;
pub mod tickets;

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
    /// [`Applied`].
    fn apply(
        &self,
        ordinal: u64,
        planned: &Planned,
        was_in_flight: bool,
    ) -> impl Future<Output = Result<Applied, ApiError>> + Send;
}

/// What the job engine needs of the tenant before anything is sent: a token with the engine's
/// scopes, and the `--connection` named, if any, as a database connection. Each failure is a
/// usage error (exit 2).
async fn check_job_engine(spec: &ImportSpec, client: &Client) -> Result<(), ImportError> {
    // The flags that do not go with it were refused before (`commands::import`).
    debug_assert!(spec.plan.mode == plan::Mode::Create);
    if let Some(scopes) = client.scopes().await? {
        let missing: Vec<&str> = job::SCOPES
            .iter()
            .copied()
            .filter(|needed| !scopes.iter().any(|s| s == needed))
            .collect();
        if !missing.is_empty() {
            return Err(ImportError::Usage(format!(
                "--engine job needs the scopes {} on the Management API; the token lacks {}: \
                 grant them to the application in the Auth0 dashboard (APIs > Auth0 Management \
                 API > Machine to Machine Applications)",
                job::SCOPES.join(", "),
                missing.join(", ")
            )));
        }
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

/// `--tickets` asks the tenant for tickets once every record is done: a token that may not is
/// found before anything is sent, not after the whole import (a usage error, exit 2).
async fn check_tickets_scope(spec: &ImportSpec, client: &Client) -> Result<(), ImportError> {
    if spec.tickets.is_none() {
        return Ok(());
    }
    if let Some(scopes) = client.scopes().await?
        && !scopes.iter().any(|s| s == tickets::SCOPE)
    {
        return Err(ImportError::Usage(format!(
            "--tickets needs the scope {scope} on the Management API; the token lacks \
             {scope}: grant it to the application in the Auth0 dashboard (APIs > Auth0 \
             Management API > Machine to Machine Applications)",
            scope = tickets::SCOPE
        )));
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
    let (_format, records) = read::open(&spec.input, &spec.read)?;
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
    if spec.job.is_some() {
        check_job_engine(spec, client).await?;
    }
    check_tickets_scope(spec, client).await?;
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
    let stopped = match &spec.job {
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
            };
            let sent = std::mem::take(&mut state.jobs);
            job::run(records, prepare, &engine, sent).await
        }
        None => {
            let applier = apply::PerUser {
                client,
                ledger,
                mode: spec.plan.mode,
                metadata: spec.plan.metadata,
                dry_run: spec.dry_run,
                tickets: spec.tickets.is_some() && spec.plan.passwords == plan::Passwords::Random,
            };
            let in_flight = (spec.concurrency, client.workers());
            pipeline::run(records, prepare, &applier, &outcomes, in_flight, cancel).await
        }
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
