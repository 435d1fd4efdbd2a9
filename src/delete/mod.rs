//! Delete: remove users by user_id or email, each one's before-image made durable first;
//! rate-limited and resumable. [`delete_users`] is the engine: `auth0-bulk delete` runs it on
//! a `--users` list or on a `--query`'s matches, and anything else that must remove users (an
//! undo removing the users an import created) calls it with a stream of keys.
//!
//! One user through a deletion, a chunk of [`CHUNK`] users at a time ([`chunk`]): its key is
//! looked up (`GET /users/{id}`, or `users-by-email` for a key with an `@` and no `|`, both
//! immediately consistent); the user, as the tenant returned it, is appended to the
//! before-images file ([`images`], `deleted.ndjson`) and fsynced; only then is it deleted
//! (`DELETE /users/{id}`); the chunk's outcomes go to the [`ledger`] in one line. The
//! [checkpoint](resume) (`delete.json`) binds the state to its tenant and job.
//!
//! # The contract of [`delete_users`]
//!
//! - **`keys`**: `(position, key)` pairs, the key a user_id or an email, the position
//!   increasing (a list's 1-based line number). A resumed run is given the same stream and
//!   skips the positions the ledger has done. It is read a chunk at a time, never collected.
//! - **`state`**: a directory of the deletion's own (created 0700, locked for the run: a
//!   second run on it gets [`StateError::Locked`]). It holds `delete.json`, `ledger.ndjson`,
//!   `deleted.ndjson` and `rejects.txt` ([`rejects`]), 0600. Not touched by a dry run.
//! - **`options`**: the tenant ([`DeleteOptions::domain`]) and the options that name the job
//!   ([`DeleteOptions::job`]): an unfinished state of another tenant or job is refused (see
//!   [`check_state`], which a caller can run offline first); `fresh` starts a new ledger.
//! - **The client**: its rate budget, workers and retries, as export and import use them; the
//!   token needs `read:users` and `delete:users` (the caller checks, with
//!   [`Client::lacks_scopes`]).
//! - **It returns** the [`DeleteSummary`] and the [`RunOutcome`]: `Success`, `Rejected` (some
//!   records were rejected), or `Interrupted` (`cancel` fired: the state is saved, call again
//!   to resume). An error that stops the run (the tenant down past the retry budget, a file
//!   that cannot be written) leaves the state resumable too.
//! - **It guarantees** that no user is deleted before its before-image is durable; that across
//!   kills and resumes every user it deleted has exactly one before-image (the file is never
//!   truncated but for a torn last line); and that `read = deleted + not_found + duplicates +
//!   rejected`. A user the list names twice is deleted once (the second is a `duplicate`).
//!
//! The before-images file is what `auth0-bulk import --mode create` reads: it brings the users
//! back with their user_ids and metadata, but not their passwords (the API never returns a
//! hash), nor what the tenant itself sets (`created_at`, `updated_at`, `logins_count`, ...).

mod chunk;
pub mod images;
pub mod ledger;
pub mod rejects;
pub mod resume;

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::{Stream, StreamExt, TryStreamExt};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiError, Client};
use crate::exit::RunOutcome;
use crate::net::pace::BudgetReport;
use crate::progress::Progress;
use crate::state::resume::{JobOptions, OtherJob};
use crate::state::{StateDir, StateError, open_private, private_options};
use crate::warnings::ByCode;

pub use chunk::Record;
pub use images::BeforeImages;
pub use ledger::Tally;
pub use resume::check_state;

/// Records looked up, imaged and deleted at a time: the before-images of a chunk share one
/// fsync, its outcomes one ledger line, and at most a chunk is redone after a crash.
pub const CHUNK: usize = 100;

/// A deletion's settings.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// The tenant (`sandbox` for the embedded one): a state belongs to one tenant.
    pub domain: String,
    /// What names the job (`--users FILE`, `--query Q`): an unfinished state is resumed only
    /// by the same.
    pub job: JobOptions,
    /// Look every user up and log who would be deleted; write and delete nothing.
    pub dry_run: bool,
    /// With `dry_run`: append the plan to this file, one NDJSON line per record in list
    /// order, in the shape of `import --plan` (`{"line", "action": "would_delete", "user_id",
    /// "email", "connection"}`; a skip or rejection `"skipped"`/`"rejected"` with `"reason":
    /// {"code", "message"}`). The file is created 0600 if it does not exist.
    pub plan: Option<PathBuf>,
    /// Start a new ledger even if the state holds an unfinished deletion (the before-images
    /// are kept).
    pub fresh: bool,
}

/// What a deletion did, for the closing summary (`--json` prints it as one object).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeleteSummary {
    pub command: &'static str,
    pub dry_run: bool,
    /// Records (list lines that name a user) taken in: deleted + skipped + rejected.
    pub read: u64,
    /// Deleted (with `dry_run`: would be deleted).
    pub deleted: u64,
    /// Skipped: not_found + duplicates.
    pub skipped: u64,
    pub not_found: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// The rejected lines by code, each with its first example; earlier runs' too, so the
    /// counts add up to `rejected`.
    pub rejects_by_code: ByCode,
    /// This run's rejects and skips whose line was not logged, by code.
    #[serde(skip)]
    pub unlogged_rejects: BTreeMap<String, u64>,
    #[serde(skip)]
    pub unlogged_skips: BTreeMap<String, u64>,
    pub requests: u64,
    pub throttled: u64,
    pub retries: u64,
    pub budgets: Vec<BudgetReport>,
    pub elapsed_seconds: f64,
    pub resumed: bool,
    /// The before-images file (none for a dry run).
    pub before_images: Option<String>,
    /// The rejects file: the rejected lines, each after a `#` line saying why, in the list
    /// format `--users` reads (none for a dry run).
    pub rejects: Option<String>,
    pub state: Option<String>,
    pub completed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    OtherJob(#[from] OtherJob),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("cannot read the users to delete")]
    Input(#[source] std::io::Error),
    #[error("cannot use {path}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The run state of a deletion that deletes (not a dry run).
struct Open {
    dir: StateDir,
    ledger: ledger::Ledger,
    images: BeforeImages,
    pending: images::Pending,
    rejects: rejects::Rejects,
}

/// Deletes the users `keys` name; see the module docs for the contract.
pub async fn delete_users(
    client: &Client,
    keys: impl Stream<Item = std::io::Result<Record>>,
    state: &Path,
    options: &DeleteOptions,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<(DeleteSummary, RunOutcome), DeleteError> {
    let started = Instant::now();
    let (mut open, recovered, resumed) = match options.dry_run {
        true => (None, ledger::Recovered::default(), false),
        false => {
            let (open, recovered, resumed) = open(state, options)?;
            (Some(open), recovered, resumed)
        }
    };
    if resumed {
        tracing::info!(
            done = recovered.tally.read(),
            "Resuming the deletion from its ledger."
        );
    }
    let mut tally = recovered.tally;
    let mut rejects_by_code =
        match &open {
            Some(open) if resumed => rejects::codes(open.rejects.path(), recovered.rejects)
                .map_err(|source| DeleteError::File {
                    path: open.rejects.path().to_path_buf(),
                    source,
                })?,
            _ => ByCode::default(),
        };
    let logged = chunk::Logged::default();
    let mut plan = match (&options.plan, options.dry_run) {
        (Some(path), true) => Some(open_plan(path)?),
        _ => None,
    };
    progress.set_done(tally.read());
    let through = recovered.through;
    let chunks = keys
        .try_filter(move |record| std::future::ready(record.line > through))
        .chunks(CHUNK);
    let mut chunks = std::pin::pin!(chunks);
    let mut pending = images::Pending::default();
    let completed = loop {
        if cancel.is_cancelled() {
            break false;
        }
        let Some(chunk) = chunks.next().await else {
            break true;
        };
        let records: Vec<Record> = chunk
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(DeleteError::Input)?;
        let last = records.last().map_or(through, |r| r.line);
        let (pending, images) = match &mut open {
            Some(o) => (&mut o.pending, Some(&mut o.images)),
            None => (&mut pending, None),
        };
        let done = match chunk::run(client, &records, pending, images, &logged).await {
            Ok(done) => done,
            Err(DeleteError::Api(ApiError::Cancelled)) => break false,
            Err(e) => return Err(e),
        };
        for rejected in &done.rejected {
            rejects_by_code.add(rejected.code, rejected.line, &rejected.message);
        }
        if let Some((path, out)) = &mut plan {
            write_plan(out, &done.plan).map_err(|source| DeleteError::File {
                path: path.clone(),
                source,
            })?;
        }
        if let Some(open) = &mut open {
            // The chunk's rejects are durable before the ledger counts them.
            open.rejects
                .append(&done.rejected)
                .map_err(|source| DeleteError::File {
                    path: open.rejects.path().to_path_buf(),
                    source,
                })?;
            let entry =
                ledger::Entry::new(last, open.images.len(), open.rejects.bytes(), &done.tally);
            open.ledger
                .record(&entry)
                .map_err(|source| DeleteError::File {
                    path: state.join(ledger::FILE),
                    source,
                })?;
        }
        tally.add(&done.tally);
        progress.inc(records.len() as u64);
    };
    if completed && let Some(open) = &open {
        resume::finish(&open.dir, options)?;
    }
    if let Some((path, out)) = plan {
        out.into_inner()
            .map_err(std::io::IntoInnerError::into_error)
            .map_err(|source| DeleteError::File { path, source })?;
    }
    let counts = client.metrics();
    let summary = DeleteSummary {
        command: "delete",
        dry_run: options.dry_run,
        read: tally.read(),
        deleted: tally.deleted,
        skipped: tally.not_found + tally.duplicates,
        not_found: tally.not_found,
        duplicates: tally.duplicates,
        rejected: tally.rejected,
        rejects_by_code,
        unlogged_rejects: logged.rejected.unlogged(),
        unlogged_skips: logged.skipped.unlogged(),
        requests: counts.requests,
        throttled: counts.throttled,
        retries: counts.retries,
        budgets: client.pace().report(),
        elapsed_seconds: started.elapsed().as_secs_f64(),
        resumed,
        before_images: open.as_ref().map(|o| o.images.path().display().to_string()),
        rejects: open
            .as_ref()
            .map(|o| o.rejects.path().display().to_string()),
        state: open.as_ref().map(|_| state.display().to_string()),
        completed,
    };
    let outcome = match (completed, tally.rejected) {
        (false, _) => RunOutcome::Interrupted,
        (true, 0) => RunOutcome::Success,
        (true, _) => RunOutcome::Rejected,
    };
    Ok((summary, outcome))
}

/// Opens the dry run's plan file for appending (creating it 0600).
fn open_plan(path: &Path) -> Result<(PathBuf, BufWriter<std::fs::File>), DeleteError> {
    let file =
        open_private(private_options().append(true).create(true), path).map_err(|source| {
            DeleteError::File {
                path: path.to_path_buf(),
                source,
            }
        })?;
    Ok((path.to_path_buf(), BufWriter::new(file)))
}

fn write_plan(out: &mut impl Write, lines: &[serde_json::Value]) -> std::io::Result<()> {
    for line in lines {
        serde_json::to_writer(&mut *out, line)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Opens and claims the state: the ledger (a new one unless the run resumes, vouching for the
/// before-images earlier runs left) and the before-images file with what is pending in it.
fn open(
    state: &Path,
    options: &DeleteOptions,
) -> Result<(Open, ledger::Recovered, bool), DeleteError> {
    let dir = StateDir::open(state)?;
    let resumed = check_state(dir.path(), options)?;
    let file_error = |path: PathBuf| move |source| DeleteError::File { path, source };
    let ledger_path = dir.file(ledger::FILE);
    let images_path = dir.file(images::FILE);
    let (mut ledger, mut recovered) =
        ledger::Ledger::open(&ledger_path).map_err(file_error(ledger_path.clone()))?;
    if recovered.entries == 0 {
        // Images with no ledger at all were put there by hand: vouched for, never pending.
        recovered.images = std::fs::metadata(&images_path).map_or(0, |m| m.len());
    }
    if !resumed {
        // A new run keeps what is pending from an unfinished one: vouched only as far as before.
        (ledger, recovered) = ledger::Ledger::restart(&ledger_path, recovered.images)
            .map_err(file_error(ledger_path))?;
    }
    let (images, pending) =
        BeforeImages::open(&images_path, recovered.images).map_err(file_error(images_path))?;
    // A new run's ledger vouches for no rejects: it starts the file empty.
    let rejects_path = dir.file(rejects::FILE);
    let rejects = rejects::Rejects::open(&rejects_path, recovered.rejects)
        .map_err(file_error(rejects_path))?;
    // Only now: a run killed before this line finds the state as it was, and starts over.
    resume::begin(&dir, options)?;
    if !pending.is_empty() {
        tracing::info!(
            users = pending.len(),
            "Before-images without an outcome: those users are deleted without a second image."
        );
    }
    let open = Open {
        dir,
        ledger,
        images,
        pending,
        rejects,
    };
    Ok((open, recovered, resumed))
}

#[cfg(all(test, feature = "sandbox"))]
mod tests;
