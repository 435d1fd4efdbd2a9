//! `auth0-bulk undo STATE`: puts back what an import or a deletion changed, from its run state.
//!
//! **An import.** Every update of the import kept a before-image ([`super::before`]) in
//! `STATE/before-images.ndjson` before its PATCH was sent. Undo imports those images through
//! the same pipeline as any import, in update mode, by user_id, with Auth0's merge
//! (`import --input STATE/before-images.ndjson --mode update --match user_id --metadata merge`
//! does the same by hand, for a user with one image). A user the import changed more than once
//! has several images, and only the earliest holds the values from before the import; so the
//! images go in descending record order (`STATE/undo/restore.ndjson`): the pipeline applies a
//! user's records in input order, and the earliest image is applied last, so each field ends
//! with the value of the earliest image that has it. Access images go in the same file and run,
//! with `--authz replace` (only when there is one: `replace` needs scopes of its own), so each
//! user's roles, memberships and direct permissions become the earliest image's. Then the users the import created (the
//! import's ledger names them) are deleted through the deletion engine ([`crate::delete`]),
//! in the ledger's order, with a run state of its own, `STATE/undo/creates/` (and their
//! before-images in its `deleted.ndjson`, should the undo itself be undone by hand).
//!
//! **A deletion** (`auth0-bulk delete`, whose state holds `delete.json` and the deleted users'
//! before-images, `deleted.ndjson`): undo creates those users again through the importer, in
//! create mode, with their user_ids and random passwords (a password cannot come back: the API
//! never returns one), from a copy of the images' whole lines, `STATE/undo/recreate.ndjson`.
//!
//! Undo has a run state of its own, `STATE/undo/` (its ledger, its rejects, and the
//! before-images of its own updates), so it resumes after a crash and changes each user once.
//! A second undo finds every user as the first left it: restores unchanged, creates skipped
//! (`already_exists`), the deletions' users not found; nothing sent but lookups. A user deleted
//! since the import is rejected (`not_found`). A new run of the import on the same state
//! removes `STATE/undo/` with the old images.
//!
//! Undo holds the lock of the state it undoes while it runs, so the import or deletion cannot
//! run at the same time.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::access::{AccessOptions, Strategy};
use super::before;
use super::ledger::{self, Done, Outcome};
use super::plan::{Engine, MatchBy, MetadataStrategy, Mode, Passwords, PlanOptions};
use super::read::{InputFormat, ReadOptions};
use super::tickets::TicketSpec;
use super::{ImportError, ImportSpec, ImportSummary};
use crate::api::Client;
use crate::delete::{self, DeleteError, DeleteOptions, DeleteSummary, Record};
use crate::exit::RunOutcome;
use crate::progress::Progress;
use crate::state::resume::JobOptions;
use crate::state::{StateDir, StateError, create_private, sync_dir};
use crate::warnings::ByCode;

/// Undo's run state, inside the import's.
pub const DIR: &str = "undo";
/// The before-images in the order undo applies them.
const RESTORE: &str = "restore.ndjson";
/// The deletion of the users the import created: its run state, inside undo's.
pub const CREATES: &str = "creates";
/// A deletion's before-images, the whole lines of them, that undo creates again.
const RECREATE: &str = "recreate.ndjson";

/// A validated undo.
#[derive(Debug, Clone)]
pub struct UndoSpec {
    /// The run state of the import or deletion to undo.
    pub state: PathBuf,
    pub dry_run: bool,
    /// `--plan FILE` with `--dry-run`.
    pub plan_file: Option<PathBuf>,
    pub concurrency: usize,
    pub domain: String,
    /// No progress bars.
    pub quiet: bool,
    /// `--tickets`: the users a deletion's undo creates again get password-change tickets.
    pub tickets: Option<TicketSpec>,
}

/// What a run state is the state of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Undoes {
    Import,
    Delete,
}

/// What an undo did (`--json` prints it as one object): the importer's summary of the
/// restores (of an import) or the re-creations (of a deletion), where `read` is the sum of the
/// outcomes; and, for an import that created users, their deletion.
#[derive(Debug, Clone, Serialize)]
pub struct UndoSummary {
    pub undoes: Undoes,
    #[serde(flatten)]
    pub restore: ImportSummary,
    /// The users the import created, deleted (absent when it created none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creates: Option<CreatesUndone>,
}

/// The deletion of the users an import created: `read = deleted + skipped + rejected`, and
/// `skipped = not_found` (users already gone: deleted by an earlier undo, or by someone else).
#[derive(Debug, Clone, Serialize)]
pub struct CreatesUndone {
    pub read: u64,
    /// Deleted (with `dry_run`: would be deleted).
    pub deleted: u64,
    pub skipped: u64,
    pub not_found: u64,
    pub rejected: u64,
    pub rejects_by_code: ByCode,
    /// Skips and rejects whose line was not logged, by code.
    #[serde(skip)]
    pub unlogged_rejects: BTreeMap<String, u64>,
    #[serde(skip)]
    pub unlogged_skips: BTreeMap<String, u64>,
    pub resumed: bool,
    /// Their before-images (none for a dry run).
    pub before_images: Option<String>,
    /// The users that could not be deleted, each after a `#` line saying why (none for a dry
    /// run).
    pub rejects: Option<String>,
    pub state: Option<String>,
    pub completed: bool,
}

impl From<&DeleteSummary> for CreatesUndone {
    fn from(summary: &DeleteSummary) -> CreatesUndone {
        CreatesUndone {
            read: summary.read,
            deleted: summary.deleted,
            skipped: summary.skipped,
            not_found: summary.not_found,
            rejected: summary.rejected,
            rejects_by_code: summary.rejects_by_code.clone(),
            unlogged_rejects: summary.unlogged_rejects.clone(),
            unlogged_skips: summary.unlogged_skips.clone(),
            resumed: summary.resumed,
            before_images: summary.before_images.clone(),
            rejects: summary.rejects.clone(),
            state: summary.state.clone(),
            completed: summary.completed,
        }
    }
}

/// What stops an undo: the importer's errors (the restores, the re-creations) or the deletion
/// engine's (the users an import created).
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Delete(#[from] DeleteError),
}

impl From<StateError> for UndoError {
    fn from(error: StateError) -> UndoError {
        UndoError::Import(error.into())
    }
}

/// Refuses, before any request, a STATE that is not an import's or a deletion's run state of
/// this tenant; says which it is.
pub fn check(spec: &UndoSpec) -> Result<Undoes, ImportError> {
    let state = &spec.state;
    if !state.is_dir() {
        return Err(ImportError::Usage(format!(
            "{}: no such run state (give the --state directory of the import or delete to \
             undo; by default INPUT.state or FILE.state beside its input)",
            state.display()
        )));
    }
    let (undoes, tenant) = match super::resume::saved_tenant(state)? {
        Some(tenant) => (Undoes::Import, tenant),
        None => match delete::resume::saved_tenant(state)? {
            Some(domain) => (Undoes::Delete, Some(domain)),
            None => {
                return Err(ImportError::Usage(format!(
                    "{}: not the run state of an import or a delete (it has no import.json \
                     nor delete.json)",
                    state.display()
                )));
            }
        },
    };
    crate::state::check_tenant(state, tenant.as_deref(), &spec.domain)?;
    if undoes == Undoes::Import && spec.tickets.is_some() {
        return Err(ImportError::Usage(
            "--tickets is for the undo of a delete (the users it creates again); an import's \
             undo creates nobody"
                .into(),
        ));
    }
    Ok(undoes)
}

/// How many users the import whose state is `spec.state` created: what its undo deletes (a
/// record redone after a crash counts once; a torn last line is left out, as the importer
/// does). Only for an import's state (a deletion's has a ledger of another shape).
pub fn created_count(spec: &UndoSpec) -> Result<u64, ImportError> {
    created_users(&spec.state.join(super::resume::LEDGER))
}

/// Runs an undo; returns its summary and how it ended.
pub async fn run(
    spec: &UndoSpec,
    client: &Client,
    cancel: &CancellationToken,
) -> Result<(UndoSummary, RunOutcome), UndoError> {
    let undoes = check(spec)?;
    let started = std::time::Instant::now();
    // The undone run's lock: it cannot run (or start over) while its undo does.
    let _undone = StateDir::open(&spec.state)?;
    let progress = Progress::new(spec.quiet, "records");
    let result = match undoes {
        Undoes::Import => restore(spec, client, &progress, cancel).await,
        Undoes::Delete => recreate(spec, client, &progress, cancel).await,
    };
    progress.finish();
    let (mut restore, mut outcome) = result?;
    restore.command = "undo";
    let mut creates = None;
    if undoes == Undoes::Import && outcome != RunOutcome::Interrupted {
        let total = created_count(spec)?;
        if total > 0 {
            let progress = Progress::new(spec.quiet, "users");
            progress.set_total(total);
            let result = remove_created(spec, client, &progress, cancel).await;
            progress.finish();
            let (deleted, deleting) = result?;
            creates = Some(CreatesUndone::from(&deleted));
            outcome = worse(outcome, deleting);
        }
    }
    // The whole undo's requests and time, both parts'.
    restore.add_run(client.metrics(), client.pace().report(), started.elapsed());
    let summary = UndoSummary {
        undoes,
        restore,
        creates,
    };
    Ok((summary, outcome))
}

/// The importer, in update mode, on the import's before-images.
async fn restore(
    spec: &UndoSpec,
    client: &Client,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<(ImportSummary, RunOutcome), ImportError> {
    let images = spec.state.join(before::FILE);
    let plan = PlanOptions {
        mode: Mode::Update,
        match_by: MatchBy::UserId,
        connection: None,
        passwords: Passwords::None,
        metadata: MetadataStrategy::Merge,
        engine: Engine::Api,
    };
    // An access image lists all the user had of its kinds: `replace` brings exactly that back.
    let holds_access = before::holds_access(&images).map_err(|e| unreadable(&images, e))?;
    let access = AccessOptions {
        strategy: match holds_access {
            true => Strategy::Replace,
            false => Strategy::Merge,
        },
        ..AccessOptions::default()
    };
    import_through(
        spec,
        (plan, access),
        RESTORE,
        |input| write_restore(&images, input),
        client,
        progress,
        cancel,
    )
    .await
}

/// The importer, in create mode with random passwords, on a deletion's before-images: the
/// users come back with their user_ids (those still there are skipped, `already_exists`).
async fn recreate(
    spec: &UndoSpec,
    client: &Client,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<(ImportSummary, RunOutcome), ImportError> {
    let images = spec.state.join(delete::images::FILE);
    let plan = PlanOptions {
        mode: Mode::Create,
        match_by: MatchBy::UserId,
        connection: None,
        passwords: Passwords::Random,
        metadata: MetadataStrategy::Merge,
        engine: Engine::Api,
    };
    import_through(
        spec,
        (plan, AccessOptions::default()),
        RECREATE,
        |input| copy_whole_lines(&images, input),
        client,
        progress,
        cancel,
    )
    .await
}

/// An import of undo's own, in `STATE/undo/` (resumable, exactly once), of the file `name`
/// there that `write` makes (anew unless a resumed undo counts records of it), with these
/// plan and access options.
async fn import_through(
    spec: &UndoSpec,
    (plan, access): (PlanOptions, AccessOptions),
    name: &str,
    write: impl FnOnce(&Path) -> Result<(), ImportError>,
    client: &Client,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<(ImportSummary, RunOutcome), ImportError> {
    let undo_dir = spec.state.join(DIR);
    // A dry run writes nothing in the state: its input is a temporary file.
    let scratch;
    let input = if spec.dry_run {
        scratch = tempfile::Builder::new()
            .prefix("auth0-bulk-undo")
            .tempdir()
            .map_err(|source| write_failed(&std::env::temp_dir(), source))?;
        scratch.path().join(name)
    } else {
        undo_dir.join(name)
    };
    // A resumed undo keeps the file its ledger counts records of.
    if spec.dry_run || !super::resume::unfinished(&undo_dir)? || !input.exists() {
        if let Some(parent) = input.parent() {
            // Private, as every state directory.
            drop(StateDir::open(parent)?);
        }
        write(&input)?;
    }
    let import = ImportSpec {
        input,
        read: ReadOptions {
            format: InputFormat::Ndjson,
            ..ReadOptions::default()
        },
        plan,
        password_hashes: None,
        dry_run: spec.dry_run,
        plan_file: spec.plan_file.clone(),
        rejects: undo_dir.join("rejects.ndjson"),
        state: Some(undo_dir),
        fresh: false,
        concurrency: spec.concurrency,
        domain: spec.domain.clone(),
        job: None,
        tickets: spec.tickets.clone(),
        access,
    };
    super::run(&import, client, progress, cancel).await
}

/// The deletion engine on the users the import created, in the ledger's order (each one's
/// position is its place in that order, the same on every run of the undo: the import's
/// ledger no longer changes, the undo holding its lock).
async fn remove_created(
    spec: &UndoSpec,
    client: &Client,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<(DeleteSummary, RunOutcome), DeleteError> {
    let ledger = spec.state.join(super::resume::LEDGER);
    let created = ledger::created_users(&ledger).map_err(DeleteError::Input)?;
    let keys = created.zip(1u64..).map(|(user, position)| {
        user.map(|user| Record {
            line: position,
            key: user.user_id,
        })
    });
    let options = DeleteOptions {
        domain: spec.domain.clone(),
        job: JobOptions::new().with("undo", "the users the import created"),
        dry_run: spec.dry_run,
        // After the restores' plan lines, which the importer wrote to the file first.
        plan: spec.plan_file.clone(),
        fresh: false,
    };
    let state = spec.state.join(DIR).join(CREATES);
    delete::delete_users(
        client,
        futures::stream::iter(keys),
        &state,
        &options,
        progress,
        cancel,
    )
    .await
}

/// The worse of two outcomes: interrupted, then rejected, then success.
fn worse(a: RunOutcome, b: RunOutcome) -> RunOutcome {
    let rank = |o: RunOutcome| match o {
        RunOutcome::Success => 0,
        RunOutcome::Rejected => 1,
        RunOutcome::Interrupted => 2,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// How many records of the import's ledger at `path` created their user (a record redone
/// after a crash counts once; a torn last line is left out, as the importer does).
fn created_users(path: &Path) -> Result<u64, ImportError> {
    #[derive(serde::Deserialize)]
    struct Entry {
        record: u64,
        outcome: Option<Outcome>,
    }
    let mut done = Done::default();
    if let Some(file) = open_existing(path)? {
        whole_lines(path, &file, |line, _| {
            let entry: Entry = serde_json::from_slice(line).map_err(|e| e.to_string())?;
            if let Some(outcome) = entry.outcome {
                done.insert(entry.record, outcome);
            }
            Ok(())
        })?;
    }
    Ok(done.count(Outcome::Created))
}

/// Copies the whole lines of `images` (a deletion's before-images: a torn last line is an
/// image whose user was not deleted) to `to`, atomically.
fn copy_whole_lines(images: &Path, to: &Path) -> Result<(), ImportError> {
    let temp = to.with_extension("ndjson.partial");
    let mut out = create_private(&temp).map_err(|e| write_failed(&temp, e))?;
    let mut failed = None;
    if let Some(file) = open_existing(images)? {
        whole_lines(images, &file, |line, _| {
            if let Err(e) = out.write_all(line) {
                failed.get_or_insert(e);
            }
            Ok(())
        })?;
    }
    if let Some(e) = failed {
        return Err(write_failed(&temp, e));
    }
    finish_file(out, &temp, to)
}

/// Writes the before-images at `images` (none when the file does not exist: the import
/// updated nobody) to `restore` in descending record order, atomically. Holds an entry's
/// place (24 bytes) per image, not the images.
fn write_restore(images: &Path, restore: &Path) -> Result<(), ImportError> {
    let mut places: Vec<(u64, u64, usize)> = Vec::new();
    let mut file = open_existing(images)?;
    if let Some(file) = &file {
        whole_lines(images, file, |line, at| {
            let origin = before::origin_of(line)
                .map_err(|e| format!("the line at byte {at} is not a before-image ({e})"))?;
            places.push((origin.record, at, line.len()));
            Ok(())
        })?;
    }
    places.sort_unstable_by_key(|place| std::cmp::Reverse(place.0));
    let temp = restore.with_extension("ndjson.partial");
    let mut out = create_private(&temp).map_err(|e| write_failed(&temp, e))?;
    let mut entry = Vec::new();
    for (_, offset, len) in places {
        let file = file.as_mut().expect("places come from the file");
        entry.resize(len, 0);
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(&mut entry))
            .map_err(|e| unreadable(images, e))?;
        out.write_all(&entry).map_err(|e| write_failed(&temp, e))?;
    }
    finish_file(out, &temp, restore)
}

/// Makes the file written at `temp` durable as `to`.
fn finish_file(
    out: std::io::BufWriter<std::fs::File>,
    temp: &Path,
    to: &Path,
) -> Result<(), ImportError> {
    let out = out
        .into_inner()
        .map_err(|e| write_failed(temp, e.into_error()))?;
    out.sync_all().map_err(|e| write_failed(temp, e))?;
    std::fs::rename(temp, to).map_err(|e| write_failed(to, e))?;
    if let Some(dir) = to.parent() {
        sync_dir(dir).map_err(|e| write_failed(dir, e))?;
    }
    Ok(())
}

/// The file at `path`, or `None` when there is none.
fn open_existing(path: &Path) -> Result<Option<std::fs::File>, ImportError> {
    match std::fs::File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(unreadable(path, source)),
    }
}

/// Calls `each` with every whole line of the log `file` (at `path`) and its offset, through
/// [`crate::state::log::whole_lines`]: a torn last line (a crash mid-write) is left out, as
/// the run that wrote it left it out. A line `each` refuses says the state is damaged.
fn whole_lines(
    path: &Path,
    file: &std::fs::File,
    mut each: impl FnMut(&[u8], u64) -> Result<(), String>,
) -> Result<(), ImportError> {
    let mut at = 0u64;
    let mut refused = None;
    let read = crate::state::log::whole_lines(BufReader::new(file), |line| {
        if let Err(message) = each(line, at) {
            refused = Some(message);
            return Err(std::io::Error::other("a line refused"));
        }
        at += line.len() as u64;
        Ok(())
    });
    match (read, refused) {
        (Ok(_), _) => Ok(()),
        (Err(_), Some(message)) => Err(corrupt(path, message)),
        (Err(e), None) => Err(unreadable(path, e)),
    }
}

fn write_failed(path: &Path, source: std::io::Error) -> ImportError {
    ImportError::Write {
        path: path.display().to_string(),
        source,
    }
}

fn unreadable(path: &Path, source: std::io::Error) -> ImportError {
    ImportError::State(StateError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn corrupt(path: &Path, message: String) -> ImportError {
    ImportError::State(StateError::Corrupt {
        path: path.to_path_buf(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restore_file_holds_the_images_latest_record_first() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join(before::FILE);
        // As concurrent updates append them: not in record order; a torn last line.
        std::fs::write(
            &images,
            "{\"_before\":{\"record\":3,\"line\":3},\"user_id\":\"auth0|a\",\"name\":\"A3\"}\n\
             {\"_before\":{\"record\":1,\"line\":1},\"user_id\":\"auth0|a\",\"name\":\"A1\"}\n\
             {\"_before\":{\"record\":2,\"line\":2},\"user_id\":\"auth0|b\",\"name\":\"B2\"}\n\
             {\"_before\":{\"rec",
        )
        .unwrap();
        let restore = dir.path().join(RESTORE);
        write_restore(&images, &restore).unwrap();
        let names: Vec<String> = std::fs::read_to_string(&restore)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["name"].to_string())
            .collect();
        assert_eq!(names, ["\"A3\"", "\"B2\"", "\"A1\""]);
        // No images at all: an empty file, nothing to restore.
        write_restore(&dir.path().join("none.ndjson"), &restore).unwrap();
        assert_eq!(std::fs::read(&restore).unwrap(), b"");
    }

    #[test]
    fn the_users_an_import_created_are_counted_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("ledger.ndjson");
        assert_eq!(created_users(&ledger).unwrap(), 0, "no ledger, no users");
        std::fs::write(
            &ledger,
            "{\"record\":1,\"started\":true}\n\
             {\"record\":1,\"outcome\":\"created\",\"user_id\":\"auth0|a\"}\n\
             {\"record\":2,\"outcome\":\"updated\",\"user_id\":\"auth0|b\"}\n\
             {\"record\":1,\"outcome\":\"created\",\"user_id\":\"auth0|a\"}\n\
             {\"record\":3,\"outcome\":\"created\",\"user_id\":\"auth0|c\"}\n\
             {\"record\":4,\"outc",
        )
        .unwrap();
        assert_eq!(created_users(&ledger).unwrap(), 2);
        // What undo deletes: the same users, in the ledger's order, each once.
        let ids: Vec<String> = ledger::created_users(&ledger)
            .unwrap()
            .map(|user| user.unwrap().user_id)
            .collect();
        assert_eq!(ids, ["auth0|a", "auth0|c"]);
    }

    #[test]
    fn a_deletions_images_are_copied_but_for_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("deleted.ndjson");
        std::fs::write(
            &images,
            "{\"user_id\":\"auth0|a\"}\n{\"user_id\":\"auth0|b\"}\n{\"us",
        )
        .unwrap();
        let copy = dir.path().join(RECREATE);
        copy_whole_lines(&images, &copy).unwrap();
        assert_eq!(
            std::fs::read_to_string(&copy).unwrap(),
            "{\"user_id\":\"auth0|a\"}\n{\"user_id\":\"auth0|b\"}\n"
        );
    }
}
