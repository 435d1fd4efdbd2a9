//! The import's run state: a checkpoint that names the import and its tenant, and the
//! [`ledger`] a resumed run picks up from.
//!
//! The checkpoint (`import.json`) holds a fingerprint of the options that decide the result
//! (input, format, mode, matching, connection, metadata, passwords) and the tenant. On open:
//! a state of another tenant is refused whatever the flags (so a rehearsal never marks a real
//! import's records as done, nor the reverse); an unfinished state of another import is
//! refused with what to do; an unfinished state of this import resumes; a finished one (or
//! `--fresh`) starts over with an empty ledger, no before-images and no undo state. The
//! checkpoint is marked complete only when every record has an outcome. The before-images
//! ([`super::before`]) sit beside the ledger.

use serde::{Deserialize, Serialize};

use super::access::Strategy;
use super::before::{self, BeforeImages};
use super::job::journal::{self, Journal};
use super::ledger::{self, Ledger};
use super::plan::{Engine, MatchBy, Passwords};
use super::{ImportError, ImportSpec};
use crate::state::resume::{self, JobOptions};
use crate::state::{StateDir, StateError};

const CHECKPOINT: &str = "import.json";
/// The format version of [`Saved`] this build writes.
const FORMAT: &str = "1";
pub(super) const LEDGER: &str = "ledger.ndjson";
/// The job engine's journal of chunks sent (see [`super::job::journal`]).
const JOURNAL: &str = "jobs.ndjson";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "version")]
enum Saved {
    #[serde(rename = "1")]
    V1 {
        fingerprint: String,
        completed: bool,
        /// The tenant this state belongs to (older states name it in `fingerprint` only).
        #[serde(default)]
        domain: Option<String>,
        /// The options one by one, to say what changed (older states have only `fingerprint`).
        #[serde(default)]
        options: Option<JobOptions>,
    },
}

impl Saved {
    fn tenant(&self) -> Option<String> {
        let Saved::V1 {
            fingerprint,
            domain,
            ..
        } = self;
        domain
            .clone()
            .or_else(|| crate::state::tenant_of_fingerprint(fingerprint))
    }
}

/// Before anything is sent or created: refuses a run state that belongs to another tenant, so
/// a rehearsal can never mark a real import's records as done (nor the reverse).
pub fn check_state(spec: &ImportSpec) -> Result<(), ImportError> {
    let Some(dir) = spec.state.as_ref().filter(|_| !spec.dry_run) else {
        return Ok(());
    };
    let saved = match crate::state::peek::<Saved>(dir, CHECKPOINT, FORMAT) {
        Ok(saved) => saved,
        // --fresh is the way out of a damaged state; without it, the run says what is wrong.
        Err(_) if spec.fresh => None,
        Err(e) => return Err(e.into()),
    };
    crate::state::check_tenant(
        dir,
        saved.as_ref().and_then(Saved::tenant).as_deref(),
        &spec.domain,
    )?;
    // The tickets file is the tickets stage's cursor: one an earlier import left would make
    // this one skip as many users.
    let resumes = matches!(
        saved,
        Some(Saved::V1 {
            completed: false,
            ..
        })
    ) && !spec.fresh;
    if let Some(tickets) = &spec.tickets
        && !resumes
        && std::fs::metadata(&tickets.file).is_ok_and(|m| m.len() > 0)
    {
        return Err(ImportError::Usage(format!(
            "--tickets {}: the file holds tickets of an earlier import; mail or move them, then \
             name a new file (a resumed import goes on with its own file)",
            tickets.file.display()
        )));
    }
    Ok(())
}

/// The tenant of the import whose run state is `dir`: `None` when `dir` holds no import's
/// checkpoint, `Some(None)` for an old state that does not say.
pub(super) fn saved_tenant(dir: &std::path::Path) -> Result<Option<Option<String>>, StateError> {
    let saved = crate::state::peek::<Saved>(dir, CHECKPOINT, FORMAT)?;
    Ok(saved.map(|saved| saved.tenant()))
}

/// Whether `dir` holds an import that has not finished (a resumed run goes on with it).
pub(super) fn unfinished(dir: &std::path::Path) -> Result<bool, StateError> {
    let saved = crate::state::peek::<Saved>(dir, CHECKPOINT, FORMAT)?;
    Ok(matches!(
        saved,
        Some(Saved::V1 {
            completed: false,
            ..
        })
    ))
}

/// An open run state (none for a dry run or without `--state`): the ledger to write, and what
/// an earlier run left in it.
pub(super) struct RunState {
    dir: Option<StateDir>,
    fingerprint: String,
    options: JobOptions,
    domain: String,
    pub ledger: Option<Ledger>,
    pub recovered: ledger::Recovered,
    /// Where updates keep their before-images ([`super::before`]).
    pub before: Option<BeforeImages>,
    /// The job engine's journal (opened for `--engine job` runs only).
    pub journal: Option<Journal>,
    pub jobs: journal::Recovered,
    pub resumed: bool,
}

impl RunState {
    /// Opens the state, decides whether this run resumes, marks it unfinished and opens the
    /// ledger.
    pub fn open(spec: &ImportSpec) -> Result<RunState, ImportError> {
        let dir = match (&spec.state, spec.dry_run) {
            (Some(path), false) => Some(StateDir::open(path)?),
            _ => None,
        };
        let mut state = RunState {
            dir,
            fingerprint: fingerprint(spec),
            options: options(spec),
            domain: spec.domain.clone(),
            ledger: None,
            recovered: ledger::Recovered::default(),
            before: None,
            journal: None,
            jobs: journal::Recovered {
                next_chunk: 1,
                ..journal::Recovered::default()
            },
            resumed: false,
        };
        let Some(dir) = &state.dir else {
            return Ok(state);
        };
        state.resumed = state.claim(dir, spec.fresh)?;
        let path = dir.file(LEDGER);
        let (ledger, recovered) = Ledger::open(&path).map_err(|e| open_failed(&path, e))?;
        if spec.job.is_some() {
            let path = dir.file(JOURNAL);
            let (journal, jobs) = Journal::open(&path).map_err(|e| open_failed(&path, e))?;
            if state.resumed && !jobs.pending.is_empty() {
                tracing::info!(
                    chunks = jobs.pending.len(),
                    "Resuming the import jobs an earlier run sent."
                );
            }
            state.journal = Some(journal);
            state.jobs = jobs;
        }
        if state.resumed {
            tracing::info!(
                done = recovered.done.len(),
                in_flight = recovered.in_flight.len(),
                "Resuming the import from its ledger."
            );
        }
        let path = dir.file(before::FILE);
        state.before = Some(BeforeImages::open(&path).map_err(|e| open_failed(&path, e))?);
        state.ledger = Some(ledger);
        state.recovered = recovered;
        Ok(state)
    }

    /// Checks the saved checkpoint and saves this run's, unfinished; true when this run
    /// resumes an earlier one (else its ledger is removed).
    fn claim(&self, dir: &StateDir, fresh: bool) -> Result<bool, ImportError> {
        // Read for its tenant even with --fresh: a state of another tenant is never overwritten.
        let saved = match dir.load::<Saved>(CHECKPOINT, FORMAT) {
            Ok(saved) => saved,
            Err(_) if fresh => None,
            Err(e) => return Err(e.into()),
        };
        crate::state::check_tenant(
            dir.path(),
            saved.as_ref().and_then(Saved::tenant).as_deref(),
            &self.domain,
        )?;
        let resumed = match saved.filter(|_| !fresh) {
            Some(Saved::V1 {
                fingerprint,
                options,
                completed: false,
                ..
            }) => {
                let changes = resume::changes(
                    options.as_ref(),
                    &fingerprint,
                    &self.options,
                    &self.fingerprint,
                );
                resume::check_same_job(dir.path(), "import", changes)
                    .map_err(|e| ImportError::Usage(e.to_string()))?;
                true
            }
            _ => {
                dir.remove(LEDGER)?;
                dir.remove(JOURNAL)?;
                // A new run: what `undo` puts back is this run's, and an undo of the last one
                // has nothing left to do.
                dir.remove(before::FILE)?;
                remove_undo(dir)?;
                false
            }
        };
        self.save(dir, false)?;
        Ok(resumed)
    }

    /// The state directory, when this run keeps one.
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_ref().map(StateDir::path)
    }

    /// The ledger's file, when this run keeps one.
    pub fn ledger_path(&self) -> Option<std::path::PathBuf> {
        self.dir.as_ref().map(|dir| dir.file(LEDGER))
    }

    /// Where a resumed run's rejects file is cut back to: the length the ledger vouches for.
    pub fn rejects_resume_at(&self) -> Option<u64> {
        self.resumed.then_some(self.recovered.rejects_len)
    }

    /// Flushes and closes the ledger (outcomes are written by its own thread) and the
    /// before-images.
    pub fn close_ledger(&mut self) {
        if let Some(ledger) = self.ledger.take() {
            ledger.close();
        }
        if let Some(before) = self.before.take() {
            before.close();
        }
    }

    /// Marks the import complete: the next run with this state starts over.
    pub fn complete(&self) -> Result<(), ImportError> {
        match &self.dir {
            Some(dir) => self.save(dir, true),
            None => Ok(()),
        }
    }

    fn save(&self, dir: &StateDir, completed: bool) -> Result<(), ImportError> {
        dir.save(
            CHECKPOINT,
            &Saved::V1 {
                fingerprint: self.fingerprint.clone(),
                completed,
                domain: Some(self.domain.clone()),
                options: Some(self.options.clone()),
            },
        )?;
        Ok(())
    }
}

/// Removes the state an `undo` of the previous run kept ([`super::undo::DIR`]).
fn remove_undo(dir: &StateDir) -> Result<(), StateError> {
    let path = dir.file(super::undo::DIR);
    match std::fs::remove_dir_all(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StateError::Io { path, source }),
    }
}

/// A ledger or journal that cannot be opened: damaged (the state is the problem), or not
/// writable.
fn open_failed(path: &std::path::Path, source: std::io::Error) -> ImportError {
    if source.kind() == std::io::ErrorKind::InvalidData {
        ImportError::State(StateError::Corrupt {
            path: path.to_path_buf(),
            message: source.to_string(),
        })
    } else {
        ImportError::Write {
            path: path.display().to_string(),
            source,
        }
    }
}

/// The options that decide an import's result, one by one, as the user spells them.
fn options(spec: &ImportSpec) -> JobOptions {
    JobOptions::new()
        .with("--input", spec.input.display().to_string())
        .with("--format", format!("{:?}", spec.read.format).to_lowercase())
        .with("--mode", format!("{:?}", spec.plan.mode).to_lowercase())
        .with("--match", match_name(&spec.plan.match_by))
        .with_optional("--connection", spec.plan.connection.as_deref())
        .with(
            "--metadata",
            format!("{:?}", spec.plan.metadata).to_lowercase(),
        )
        .with(
            "--passwords / --password-field",
            match &spec.plan.passwords {
                Passwords::None => "(none)".to_string(),
                Passwords::Random => "random".to_string(),
                Passwords::Field(f) => format!("--password-field {f}"),
            },
        )
        // Newer options read `(none)` when unset, so a state saved before them still resumes.
        .with_optional(
            "--engine",
            (spec.plan.engine == Engine::Job).then_some(Engine::Job.name()),
        )
        .with_optional(
            "--password-hashes",
            spec.password_hashes
                .as_ref()
                .map(|path| path.display().to_string())
                .as_deref(),
        )
        // Who gets a ticket is written in the ledger as records finish, and the file is the
        // tickets stage's cursor: a run begun without tickets cannot give them to the users
        // it made, and another file would start the cursor over.
        .with_optional(
            "--tickets",
            spec.tickets
                .as_ref()
                .map(|t| t.file.display().to_string())
                .as_deref(),
        )
        .with_optional(
            "--authz",
            (spec.access.strategy == Strategy::Replace).then_some("replace"),
        )
        .with_optional("--create-missing", create_missing(spec).as_deref())
}

/// `--create-missing` as the user spells it, when given.
fn create_missing(spec: &ImportSpec) -> Option<String> {
    let kinds: Vec<&str> = [
        ("roles", spec.access.create_roles),
        ("organizations", spec.access.create_organizations),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(name, _)| *name)
    .collect();
    (!kinds.is_empty()).then(|| kinds.join(","))
}

/// `--match` as the user spells it.
fn match_name(by: &MatchBy) -> String {
    match by {
        MatchBy::Auto => "auto",
        MatchBy::UserId => "user_id",
        MatchBy::Email => "email",
    }
    .to_string()
}

/// The options that decide an import's result, as a readable line.
fn fingerprint(spec: &ImportSpec) -> String {
    format!(
        "domain={} input={:?} format={:?} mode={:?} match={:?} connection={:?} metadata={:?} passwords={}",
        spec.domain,
        spec.input,
        spec.read.format,
        spec.plan.mode,
        spec.plan.match_by,
        spec.plan.connection,
        spec.plan.metadata,
        match &spec.plan.passwords {
            Passwords::None => "none".to_string(),
            Passwords::Random => "random".to_string(),
            Passwords::Field(f) => format!("field:{f}"),
        }
    )
}
