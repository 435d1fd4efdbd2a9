//! Import: create, update or upsert users with metadata from NDJSON, CSV or JSON arrays.
//!
//! The pipeline: [`read`] turns the input into numbered records, [`plan`] validates each and
//! decides what to send, [`apply`] looks the user up and writes, and the [`ledger`] records
//! every outcome so a resumed run picks up where the last one stopped. Every record read ends
//! as created, updated, unchanged, skipped (with why) or rejected (with why, in the rejects
//! file, which `import` reads back as it is).

pub mod apply;
pub mod ledger;
pub mod plan;
pub mod read;

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::api::{ApiError, Client};
use crate::exit::Exit;
use crate::progress::Progress;
use crate::state::{StateDir, StateError, open_private, private_options};

use apply::{Applied, Context};
use ledger::{Ledger, Outcome};
use plan::{Mode, PlanOptions, Planned};
use read::{ReadOptions, Record};

/// A validated import.
#[derive(Debug, Clone)]
pub struct ImportSpec {
    pub input: PathBuf,
    pub read: ReadOptions,
    pub plan: PlanOptions,
    pub dry_run: bool,
    pub plan_file: Option<PathBuf>,
    pub rejects: PathBuf,
    pub state: Option<PathBuf>,
    pub fresh: bool,
    pub concurrency: usize,
    pub domain: String,
}

/// What the import did; `read` always equals the sum of the outcomes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportSummary {
    pub command: &'static str,
    pub dry_run: bool,
    pub read: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub rejected: u64,
    pub requests: u64,
    pub throttled: u64,
    pub retries: u64,
    pub elapsed_seconds: f64,
    pub resumed: bool,
    pub rejects: String,
    pub completed: bool,
}

impl ImportSummary {
    fn add(&mut self, outcome: Outcome) {
        self.read += 1;
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Skipped => self.skipped += 1,
            Outcome::Rejected => self.rejected += 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Input(#[from] read::InputError),
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
    match crate::state::peek::<Saved>(dir, CHECKPOINT, FORMAT) {
        Ok(saved) => Ok(crate::state::check_tenant(
            dir,
            saved.and_then(|s| s.tenant()).as_deref(),
            &spec.domain,
        )?),
        // --fresh is the way out of a damaged state; without it, the run says what is wrong.
        Err(_) if spec.fresh => Ok(()),
        Err(e) => Err(e.into()),
    }
}

const CHECKPOINT: &str = "import.json";
/// The format version of [`Saved`] this build writes.
const FORMAT: &str = "1";
const LEDGER: &str = "ledger.ndjson";

/// Runs an import; returns the summary and how the run ended.
pub async fn run(
    spec: &ImportSpec,
    client: &Client,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<(ImportSummary, Exit), ImportError> {
    let started = Instant::now();
    // An unreadable input is found before any request.
    let (_format, records) = read::open(&spec.input, &spec.read)?;
    // Then a tenant that cannot be reached (or refuses the credentials), before the first
    // file is written; an existing state is read first, offline (`commands::common::reach`).
    if spec.dry_run || !spec.state.as_deref().is_some_and(std::path::Path::exists) {
        client.reach().await?;
    }
    let state = match (&spec.state, spec.dry_run) {
        (Some(path), false) => Some(StateDir::open(path)?),
        _ => None,
    };
    let fingerprint = fingerprint(spec);
    let mut resumed = false;
    if let Some(state) = &state {
        // Read for its tenant even with --fresh: a state of another tenant is never overwritten.
        let saved = match state.load::<Saved>(CHECKPOINT, FORMAT) {
            Ok(saved) => saved,
            Err(_) if spec.fresh => None,
            Err(e) => return Err(e.into()),
        };
        crate::state::check_tenant(
            state.path(),
            saved.as_ref().and_then(Saved::tenant).as_deref(),
            &spec.domain,
        )?;
        let saved = saved.filter(|_| !spec.fresh);
        match saved {
            Some(Saved::V1 {
                fingerprint: saved,
                completed: false,
                ..
            }) if saved != fingerprint => {
                return Err(ImportError::Usage(format!(
                    "the state in {} belongs to a different import:\n  saved:   {saved}\n  this run: {fingerprint}\n\
                     Run the same command to resume it, --fresh to start over, or pass another --state",
                    state.path().display()
                )));
            }
            Some(Saved::V1 {
                completed: false, ..
            }) => resumed = true,
            _ => {
                state.remove(LEDGER)?;
            }
        }
        state.save(
            CHECKPOINT,
            &Saved::V1 {
                fingerprint: fingerprint.clone(),
                completed: false,
                domain: Some(spec.domain.clone()),
            },
        )?;
    }
    let (ledger, recovered) = match &state {
        Some(state) => {
            let path = state.file(LEDGER);
            let (ledger, recovered) = Ledger::open(&path).map_err(|source| {
                if source.kind() == std::io::ErrorKind::InvalidData {
                    ImportError::State(StateError::Corrupt {
                        path: path.clone(),
                        message: source.to_string(),
                    })
                } else {
                    ImportError::Write {
                        path: path.display().to_string(),
                        source,
                    }
                }
            })?;
            (Some(ledger), recovered)
        }
        None => (None, ledger::Recovered::default()),
    };
    if resumed {
        tracing::info!(
            done = recovered.done.len(),
            in_flight = recovered.in_flight.len(),
            "Resuming the import from its ledger."
        );
    }
    let rejects = Rejects::open(
        &spec.rejects,
        if resumed {
            Some(recovered.rejects_len)
        } else {
            None
        },
        spec.dry_run,
    )
    .map_err(|source| ImportError::Write {
        path: spec.rejects.display().to_string(),
        source,
    })?;
    let plan_out = match &spec.plan_file {
        Some(path) => Some(Mutex::new(
            open_private(
                private_options().write(true).create(true).truncate(true),
                path,
            )
            .map(std::io::BufWriter::new)
            .map_err(|source| ImportError::Write {
                path: path.display().to_string(),
                source,
            })?,
        )),
        None => None,
    };

    let summary = Arc::new(Mutex::new(ImportSummary {
        command: "import",
        dry_run: spec.dry_run,
        resumed,
        rejects: spec.rejects.display().to_string(),
        ..Default::default()
    }));
    let ctx = Context {
        client,
        ledger: ledger.as_ref(),
        mode: spec.plan.mode,
        metadata: spec.plan.metadata,
        dry_run: spec.dry_run,
    };
    // Records for one user run in input order: each waits for the one before it.
    let chains: Mutex<HashMap<String, tokio::sync::watch::Receiver<bool>>> =
        Mutex::new(HashMap::new());
    // In create mode, a second record for a user is a duplicate of the first.
    let mut first_line: HashMap<u64, u64> = HashMap::new();
    let fatal: Mutex<Option<ApiError>> = Mutex::new(None);
    // Why the input broke off, when it did (its last record says so).
    let input_cut: Mutex<Option<String>> = Mutex::new(None);

    // The reader is blocking I/O: it runs on its own thread and feeds a bounded channel, which
    // keeps memory flat whatever the input's size.
    let (tx, rx) = tokio::sync::mpsc::channel::<Record>(spec.concurrency * 4 + 16);
    let reader = std::thread::spawn(move || {
        for record in records {
            if tx.blocking_send(record).is_err() {
                break;
            }
        }
    });
    let stream = tokio_stream_from(rx);
    let work = stream
        .take_while(|_| {
            let stop = cancel.is_cancelled() || fatal.lock().expect("fatal lock").is_some();
            async move { !stop }
        })
        .enumerate()
        .map(|(index, record)| {
            let line = record.line;
            // Records are keyed by their position: the same on every run, unlike lines.
            let ordinal = index as u64 + 1;
            // Decide everything that depends on input order here, synchronously, in order.
            let prepared = prepare(ordinal, &record, spec, &recovered, &mut first_line);
            let wait = match &prepared {
                Prepared::Apply(planned, _) => {
                    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
                    let previous = chains
                        .lock()
                        .expect("chain lock")
                        .insert(planned.key.clone(), done_rx);
                    Some((planned.key.clone(), previous, done_tx))
                }
                _ => None,
            };
            let (ctx, summary, rejects, plan_out, chains, fatal, ledger, input_cut) = (
                &ctx, &summary, &rejects, &plan_out, &chains, &fatal, &ledger, &input_cut,
            );
            async move {
                let applied = match prepared {
                    Prepared::Cut(message) => {
                        // The reader's last record: nothing follows it, so nothing to stop.
                        input_cut.lock().expect("cut lock").get_or_insert(message);
                        return;
                    }
                    Prepared::Done(outcome) => {
                        summary.lock().expect("summary lock").add(outcome);
                        progress.inc(1);
                        return;
                    }
                    Prepared::Reject(applied, original) => Some((applied, original)),
                    Prepared::Apply(planned, was_in_flight) => {
                        let (key, previous, done_tx) = wait.expect("apply records wait");
                        if let Some(mut previous) = previous {
                            let _ = previous.wait_for(|done| *done).await;
                        }
                        let result = apply::apply(ctx, ordinal, &planned, was_in_flight).await;
                        let _ = done_tx.send(true);
                        let mut chains = chains.lock().expect("chain lock");
                        if chains.get(&key).is_some_and(|rx| *rx.borrow()) {
                            chains.remove(&key);
                        }
                        drop(chains);
                        match result {
                            Ok(applied) => Some((
                                applied,
                                record.result.as_ref().ok().cloned().map(Value::Object),
                            )),
                            Err(error) => {
                                fatal.lock().expect("fatal lock").get_or_insert(error);
                                None
                            }
                        }
                    }
                };
                let Some((applied, original)) = applied else {
                    return;
                };
                let rejects_len = if applied.outcome == Outcome::Rejected {
                    let reason = applied.reason.clone().expect("rejections carry a reason");
                    let mut entry = reject_entry(original, &record, line, &reason);
                    // A password never reaches a file: the entry keeps the record without it, and
                    // the text of an unreadable record (which may hold one) is left out.
                    if let plan::Passwords::Field(field) = &spec.plan.passwords
                        && let Some(object) = entry.as_object_mut()
                    {
                        if object.shift_remove(field).is_some() {
                            entry["_error"]["password_removed"] = true.into();
                        } else if object.shift_remove("_raw").is_some() {
                            entry["_error"]["raw_omitted"] = true.into();
                        }
                    }
                    match rejects.write(&entry) {
                        Ok(len) => Some(len),
                        Err(source) => {
                            fatal
                                .lock()
                                .expect("fatal lock")
                                .get_or_insert(ApiError::Local {
                                    what: format!("the rejects file {}", spec.rejects.display()),
                                    message: source.to_string(),
                                });
                            return;
                        }
                    }
                } else {
                    None
                };
                if let Some(ledger) = ledger
                    && !ctx.dry_run
                {
                    ledger.done(
                        ordinal,
                        applied.outcome,
                        applied.user_id.as_deref(),
                        rejects_len,
                    );
                }
                report(line, &applied, plan_out.as_ref(), ctx.dry_run);
                summary.lock().expect("summary lock").add(applied.outcome);
                progress.inc(1);
            }
        })
        .buffer_unordered(spec.concurrency.max(1))
        .collect::<()>();
    work.await;
    drop(reader);

    let counts = client.metrics();
    let mut summary = summary.lock().expect("summary lock").clone();
    summary.requests = counts.requests;
    summary.throttled = counts.throttled;
    summary.retries = counts.retries;
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    if let Some(plan_out) = plan_out {
        let _ = plan_out.into_inner().expect("plan lock").flush();
    }
    if let Some(ledger) = ledger {
        ledger.close();
    }
    if let Some(error) = fatal.into_inner().expect("fatal lock") {
        return match error {
            ApiError::Cancelled => Ok((summary, Exit::Interrupted)),
            other => Err(ImportError::Api(other)),
        };
    }
    if cancel.is_cancelled() {
        return Ok((summary, Exit::Interrupted));
    }
    if let Some(message) = input_cut.into_inner().expect("cut lock") {
        return Err(ImportError::InputCut {
            input: spec.input.display().to_string(),
            message,
        });
    }
    if let Some(state) = &state {
        state.save(
            CHECKPOINT,
            &Saved::V1 {
                fingerprint,
                completed: true,
                domain: Some(spec.domain.clone()),
            },
        )?;
    }
    summary.completed = true;
    let exit = if summary.rejected > 0 {
        Exit::Rejected
    } else {
        Exit::Success
    };
    Ok((summary, exit))
}

/// A record, ready for the tenant or already decided.
enum Prepared {
    /// The input broke off: the run stops (resumable) rather than count it against a record.
    Cut(String),
    /// Done in an earlier run.
    Done(Outcome),
    /// Refused before any request; the original object when there was one.
    Reject(Applied, Option<Value>),
    /// To apply; true when an earlier run's create for it was in flight.
    Apply(Box<Planned>, bool),
}

fn prepare(
    ordinal: u64,
    record: &Record,
    spec: &ImportSpec,
    recovered: &ledger::Recovered,
    first_line: &mut HashMap<u64, u64>,
) -> Prepared {
    if let Err(e) = &record.result
        && e.code == read::code::READ_ERROR
    {
        return Prepared::Cut(e.message.clone());
    }
    let done = recovered.done.get(&ordinal).copied();
    let object = match (&record.result, done) {
        (_, Some(outcome)) if spec.plan.mode != Mode::Create => return Prepared::Done(outcome),
        (Ok(object), _) => object,
        (Err(_), Some(outcome)) => return Prepared::Done(outcome),
        (Err(e), None) => {
            let message = match &e.field {
                Some(field) => format!("field {field}: {}", e.message),
                None => e.message.clone(),
            };
            let rejected = Applied::rejected(e.code, message, None).with_field(e.field.clone());
            return Prepared::Reject(rejected, None);
        }
    };
    let original = Some(Value::Object(object.clone()));
    let planned = match plan::plan(object, &spec.plan) {
        Ok(planned) => planned,
        Err(_) if done.is_some() => return Prepared::Done(done.expect("checked")),
        Err(invalid) => {
            let message = match &invalid.field {
                Some(field) if !invalid.message.contains(field.as_str()) => {
                    format!("field {field}: {}", invalid.message)
                }
                _ => invalid.message.clone(),
            };
            let rejected = Applied::rejected(invalid.code, message, None).with_field(invalid.field);
            return Prepared::Reject(rejected, original);
        }
    };
    if spec.plan.mode == Mode::Create {
        // Records done in an earlier run still claim their user, so a later duplicate is
        // rejected exactly as in a clean run.
        let mut hasher = DefaultHasher::new();
        planned.key.hash(&mut hasher);
        let hash = hasher.finish();
        if let Some(outcome) = done {
            first_line.entry(hash).or_insert(record.line);
            return Prepared::Done(outcome);
        }
        if let Some(first) = first_line.get(&hash) {
            return Prepared::Reject(
                Applied::rejected(
                    "duplicate_record",
                    format!(
                        "the same user ({}) as line {first}: create mode takes each user once",
                        planned.key
                    ),
                    None,
                ),
                original,
            );
        }
        first_line.insert(hash, record.line);
    }
    if let Some(outcome) = done {
        return Prepared::Done(outcome);
    }
    Prepared::Apply(Box::new(planned), recovered.in_flight.contains(&ordinal))
}

/// One rejects-file entry: the original record plus `_error` (`_raw` holds the text of a
/// record that could not be read as an object).
fn reject_entry(
    original: Option<Value>,
    record: &Record,
    line: u64,
    reason: &apply::Reason,
) -> Value {
    let mut entry = match original {
        Some(Value::Object(map)) => map,
        _ => {
            let mut map = Map::new();
            if let Err(e) = &record.result
                && let Some(raw) = &e.raw
            {
                map.insert("_raw".into(), raw.clone().into());
            }
            map
        }
    };
    entry.insert("_error".into(), apply::error_object(line, reason));
    Value::Object(entry)
}

/// Logs what happened to a record (and writes the dry-run plan line).
fn report(
    line: u64,
    applied: &Applied,
    plan_out: Option<&Mutex<std::io::BufWriter<std::fs::File>>>,
    dry_run: bool,
) {
    let action = match (applied.outcome, dry_run) {
        (Outcome::Created, true) => "would create",
        (Outcome::Updated, true) => "would update",
        (Outcome::Created, false) => "created",
        (Outcome::Updated, false) => "updated",
        (Outcome::Unchanged, _) => "unchanged",
        (Outcome::Skipped, _) => "skipped",
        (Outcome::Rejected, _) => "rejected",
    };
    let user = applied.user_id.as_deref().unwrap_or("-");
    match &applied.reason {
        Some(reason) if applied.outcome == Outcome::Rejected => {
            tracing::warn!(
                "Line {line}: rejected ({}): {}",
                reason.code,
                reason.message
            );
        }
        Some(reason) => tracing::info!(
            "Line {line}: skipped {user} ({}): {}",
            reason.code,
            reason.message
        ),
        None if dry_run => {
            let changes = if applied.changes.is_empty() {
                String::new()
            } else {
                format!(": {}", applied.changes.join(", "))
            };
            tracing::info!("Line {line}: {action} {user}{changes}");
        }
        None => tracing::debug!("Line {line}: {action} {user}"),
    }
    if let Some(out) = plan_out {
        let mut entry =
            json!({"line": line, "action": action.replace(' ', "_"), "user_id": applied.user_id});
        if !applied.changes.is_empty() {
            entry["changes"] = json!(applied.changes);
        }
        if let Some(reason) = &applied.reason {
            entry["reason"] = json!({"code": reason.code, "message": reason.message});
        }
        let mut out = out.lock().expect("plan lock");
        let _ = serde_json::to_writer(&mut *out, &entry);
        let _ = out.write_all(b"\n");
    }
}

/// The rejects file: NDJSON, private, each entry durable before the ledger counts it.
struct Rejects {
    file: Option<Mutex<(std::fs::File, u64)>>,
}

impl Rejects {
    fn open(path: &Path, resume_at: Option<u64>, dry_run: bool) -> std::io::Result<Rejects> {
        if dry_run {
            return Ok(Rejects { file: None });
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = open_private(
            private_options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
            path,
        )?;
        let len = resume_at.unwrap_or(0);
        file.set_len(len)?;
        use std::io::Seek;
        let mut file = file;
        file.seek(std::io::SeekFrom::Start(len))?;
        Ok(Rejects {
            file: Some(Mutex::new((file, len))),
        })
    }

    /// Appends an entry; returns the file's new length.
    fn write(&self, entry: &Value) -> std::io::Result<u64> {
        let Some(file) = &self.file else { return Ok(0) };
        let mut bytes = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        let mut guard = file.lock().expect("rejects lock");
        guard.0.write_all(&bytes)?;
        guard.0.sync_data()?;
        guard.1 += bytes.len() as u64;
        Ok(guard.1)
    }
}

/// A `Stream` over an mpsc receiver.
fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
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
            plan::Passwords::None => "none".to_string(),
            plan::Passwords::Random => "random".to_string(),
            plan::Passwords::Field(f) => format!("field:{f}"),
        }
    )
}
