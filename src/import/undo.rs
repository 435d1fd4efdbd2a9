//! `auth0-bulk undo STATE`: puts back what an import changed, from its run state.
//!
//! Every update of the import kept a before-image ([`super::before`]) in
//! `STATE/before-images.ndjson` before its PATCH was sent. Undo imports those images through
//! the same pipeline as any import, in update mode, by user_id, with Auth0's merge
//! (`import --input STATE/before-images.ndjson --mode update --match user_id --metadata merge`
//! does the same by hand, for a user with one image). A user the import changed more than once
//! has several images, and only the earliest holds the values from before the import; so the
//! images go in descending record order (`STATE/undo/restore.ndjson`): the pipeline applies a
//! user's records in input order, and the earliest image is applied last, so each field ends
//! with the value of the earliest image that has it.
//!
//! Undo has a run state of its own, `STATE/undo/` (its ledger, its rejects, and the
//! before-images of its own updates), so it resumes after a crash and changes each user once.
//! A second undo finds every user as the first left it: all records unchanged, nothing sent but
//! lookups. A user deleted since the import is rejected (`not_found`). A new run of the import
//! on the same state removes `STATE/undo/` with the old images.
//!
//! Undo holds the import's state lock while it runs, so the import cannot run at the same time.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::access::AccessOptions;
use super::before;
use super::ledger::{Done, Outcome};
use super::plan::{Engine, MatchBy, MetadataStrategy, Mode, Passwords, PlanOptions};
use super::read::{InputFormat, ReadOptions};
use super::{ImportError, ImportSpec, ImportSummary};
use crate::api::Client;
use crate::exit::RunOutcome;
use crate::progress::Progress;
use crate::state::{StateDir, StateError, create_private, sync_dir};

/// Undo's run state, inside the import's.
pub const DIR: &str = "undo";
/// The before-images in the order undo applies them.
const RESTORE: &str = "restore.ndjson";

/// A validated undo.
#[derive(Debug, Clone)]
pub struct UndoSpec {
    /// The import's run state.
    pub state: PathBuf,
    pub dry_run: bool,
    /// `--plan FILE` with `--dry-run`.
    pub plan_file: Option<PathBuf>,
    pub concurrency: usize,
    pub domain: String,
}

/// Refuses, before any request, a STATE that is not an import's run state of this tenant.
pub fn check(spec: &UndoSpec) -> Result<(), ImportError> {
    let state = &spec.state;
    if !state.is_dir() {
        return Err(ImportError::Usage(format!(
            "{}: no such run state (give the --state directory of the import to undo; by \
             default INPUT.state beside its input)",
            state.display()
        )));
    }
    match super::resume::saved_tenant(state)? {
        None => Err(ImportError::Usage(format!(
            "{}: not an import's run state (it has no import.json)",
            state.display()
        ))),
        Some(tenant) => {
            crate::state::check_tenant(state, tenant.as_deref(), &spec.domain)?;
            Ok(())
        }
    }
}

/// Runs an undo: the before-images restored; returns the restore's summary and how it ended.
pub async fn run(
    spec: &UndoSpec,
    client: &Client,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<(ImportSummary, RunOutcome), ImportError> {
    check(spec)?;
    // The import's lock: it cannot run (or start over) while its undo does.
    let _import = StateDir::open(&spec.state)?;
    let undo_dir = spec.state.join(DIR);
    let images = spec.state.join(before::FILE);
    // A dry run writes nothing in the state: its restore file is a temporary one.
    let scratch;
    let restore = if spec.dry_run {
        scratch = tempfile::Builder::new()
            .prefix("auth0-bulk-undo")
            .tempdir()
            .map_err(|source| write_failed(&std::env::temp_dir(), source))?;
        scratch.path().join(RESTORE)
    } else {
        undo_dir.join(RESTORE)
    };
    // A resumed undo keeps the file its ledger counts records of.
    if spec.dry_run || !super::resume::unfinished(&undo_dir)? || !restore.exists() {
        if let Some(parent) = restore.parent() {
            // Private, as every state directory.
            drop(StateDir::open(parent)?);
        }
        write_restore(&images, &restore)?;
    }
    let import = ImportSpec {
        input: restore,
        read: ReadOptions {
            format: InputFormat::Ndjson,
            ..ReadOptions::default()
        },
        plan: PlanOptions {
            mode: Mode::Update,
            match_by: MatchBy::UserId,
            connection: None,
            passwords: Passwords::None,
            metadata: MetadataStrategy::Merge,
            engine: Engine::Api,
        },
        password_hashes: None,
        dry_run: spec.dry_run,
        plan_file: spec.plan_file.clone(),
        rejects: undo_dir.join("rejects.ndjson"),
        state: Some(undo_dir),
        fresh: false,
        concurrency: spec.concurrency,
        domain: spec.domain.clone(),
        job: None,
        tickets: None,
        access: AccessOptions::default(),
    };
    let (mut summary, outcome) = super::run(&import, client, progress, cancel).await?;
    summary.command = "undo";
    let created = created_users(&spec.state.join(super::resume::LEDGER))?;
    if created > 0 {
        tracing::warn!(
            "{created} users the import created are left in the tenant: undo does not delete              users yet (their ids are in {}).",
            spec.state.join(super::resume::LEDGER).display()
        );
    }
    Ok((summary, outcome))
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
    let out = out
        .into_inner()
        .map_err(|e| write_failed(&temp, e.into_error()))?;
    out.sync_all().map_err(|e| write_failed(&temp, e))?;
    std::fs::rename(&temp, restore).map_err(|e| write_failed(restore, e))?;
    if let Some(dir) = restore.parent() {
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

/// Calls `each` with every whole line of the log `file` (at `path`) and its offset; a torn
/// last line (a crash mid-write) is left out, as the run that wrote it left it out. A line
/// `each` refuses says the state is damaged.
fn whole_lines(
    path: &Path,
    file: &std::fs::File,
    mut each: impl FnMut(&[u8], u64) -> Result<(), String>,
) -> Result<(), ImportError> {
    let mut reader = BufReader::new(file);
    let (mut at, mut line) = (0u64, Vec::new());
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| unreadable(path, e))?;
        if n == 0 || !line.ends_with(b"\n") {
            return Ok(());
        }
        each(&line, at).map_err(|message| corrupt(path, message))?;
        at += n as u64;
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
    }
}
