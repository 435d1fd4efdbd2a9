//! The bulk-import job engine (`import --engine job`): planned creates are cut into users
//! files ([`chunk`]) and sent as Auth0 import jobs, at most two at a time, polled until they
//! end; each record's outcome is read from the job's error list ([`report`]).
//!
//! Reading, planning, the ledger and the rejects file are the per-user path's (see the
//! [import module](super)); what differs is how creates reach the tenant:
//!
//! - **In input order, in chunks.** Records are prepared one by one as always; a planned
//!   create joins its connection's open chunk, and a chunk that is full is handed to the job
//!   runner. The runner keeps at most `max_jobs` jobs going (facts, "Bulk import jobs": two per
//!   tenant; a 429 for a third, from another process, is waited out). The reader waits while
//!   the runner is full, so memory holds a few chunks whatever the input's size.
//! - **Exactly once across crashes.** Before a chunk is sent, the jobs [`journal`] records its
//!   members and the time; once accepted, the job's id. A resumed run gathers a chunk it sent
//!   from the input again: with a job id it polls that job instead of sending anything; without
//!   one (the acceptance was lost) it sends the chunk again, and every user in it carries a
//!   known `user_id`, so users the lost job made come back as conflicts that a lookup by id
//!   shows are ours (created after the chunk was first sent). A chunk is forgotten only once
//!   its members' outcomes are synced in the ledger.
//! - **No lookups first.** A create is sent as it is; the job says which users existed
//!   (`DUPLICATED_USER`), and only those are looked up, to tell ours from somebody else's.
//! - **Dry run**: chunks are cut and shown (count, size, connection), nothing is sent.

pub mod chunk;
pub(super) mod handoff;
pub mod journal;
pub mod report;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::access::AccessApplier;
use super::apply::{Applied, NewUser, TicketFor, created_since};
use super::ledger::{Ledger, Outcome};
use super::outcomes::Outcomes;
use super::pipeline::{Stopped, stream_from};
use super::plan::Planned;
use super::prepare::{Prepare, Prepared};
use super::read::Record;
use crate::api::{ApiError, Client, Connection, ImportJob, Job};

use chunk::{Chunk, Chunker, Member};
use journal::{Journal, Pending};
use report::Verdict;

/// Settings of the job engine.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// The largest users file sent ([`chunk::MAX_CHUNK_BYTES`] or less).
    pub chunk_bytes: usize,
    /// Jobs kept going at once (facts: a tenant runs two import jobs at a time).
    pub max_jobs: usize,
}

impl Default for JobSettings {
    fn default() -> JobSettings {
        JobSettings {
            chunk_bytes: chunk::MAX_CHUNK_BYTES,
            max_jobs: 2,
        }
    }
}

/// The scopes the job engine's calls need: connections to find the job's connection id, jobs
/// to create and poll (spec: `create:users`), and users to settle conflicts.
pub const SCOPES: [&str; 3] = ["read:connections", "create:users", "read:users"];
/// The scope upserts need beside [`SCOPES`], to patch the users found.
pub const UPDATE_SCOPE: &str = "update:users";

/// How long a resumed run waits between tries when the tenant already runs two import jobs.
const JOB_SLOT_WAIT: Duration = Duration::from_secs(5);

/// What the engine shares between chunks.
pub(super) struct Engine<'a> {
    pub client: &'a Client,
    pub journal: Option<&'a Journal>,
    pub ledger: Option<&'a Ledger>,
    pub outcomes: &'a Outcomes<'a>,
    pub settings: &'a JobSettings,
    pub dry_run: bool,
    /// Created users without a hash get a password-change ticket (`--tickets`).
    pub tickets: bool,
    pub cancel: &'a CancellationToken,
    /// Connections by name, as the tenant lists them (`None`: it has none of that name).
    pub connections: Connections,
    /// Records handed over by the per-user pipeline ([`handoff`]), waiting for their job.
    pub waiting: handoff::Waiting,
    /// Records' roles, organizations and permissions, given to the users their job made.
    pub access: Option<&'a AccessApplier<'a>>,
}

/// The tenant's connections by name, looked up once each (`None`: no such connection).
#[derive(Default)]
pub(super) struct Connections(tokio::sync::Mutex<HashMap<String, Option<Connection>>>);

/// A chunk an earlier run sent, and its members (with their users' JSON) as they come by again.
type Gathering = (Pending, Vec<(Member, Vec<u8>)>);

/// A chunk for the runner: new, or one an earlier run sent.
enum Dispatch {
    New(Chunk),
    Resumed(Chunk, Pending),
}

impl Engine<'_> {
    /// The tenant's connection of that name, looked up once per run.
    pub async fn connection(&self, name: &str) -> Result<Option<Connection>, ApiError> {
        let mut known = self.connections.0.lock().await;
        if let Some(found) = known.get(name) {
            return Ok(found.clone());
        }
        let found = self.client.connection_by_name(name).await?;
        known.insert(name.to_string(), found.clone());
        Ok(found)
    }
}

/// Runs every record through `prepare` and the job engine; `pending` are the chunks an
/// earlier run sent and did not finish, `next_chunk` the number of the next new one.
pub(super) async fn run(
    records: Box<dyn Iterator<Item = Record> + Send>,
    mut prepare: Prepare<'_>,
    engine: &Engine<'_>,
    recovered: journal::Recovered,
) -> Stopped {
    let stopped = Mutex::new(Stopped::default());
    let stop = |error: ApiError| {
        stopped
            .lock()
            .expect("stop lock")
            .fatal
            .get_or_insert(error);
    };
    let halted =
        || engine.cancel.is_cancelled() || stopped.lock().expect("stop lock").fatal.is_some();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Record>(1024);
    let reader = std::thread::spawn(move || {
        for record in records {
            if tx.blocking_send(record).is_err() {
                break;
            }
        }
    });
    let (chunks_tx, chunks_rx) = tokio::sync::mpsc::channel::<Dispatch>(1);

    let producer = async {
        let mut chunker = Chunker::new(engine.settings.chunk_bytes, recovered.next_chunk);
        // Chunks an earlier run sent, gathered again as their records come by.
        let mut resumed: BTreeMap<u64, Gathering> = recovered
            .pending
            .into_iter()
            .map(|(number, pending)| (number, (pending, Vec::new())))
            .collect();
        let mut ordinal = 0u64;
        while let Some(record) = rx.recv().await {
            if halted() {
                break;
            }
            ordinal += 1;
            let finished = match prepare.next(ordinal, &record) {
                Prepared::Cut(message) => {
                    stopped
                        .lock()
                        .expect("stop lock")
                        .input_cut
                        .get_or_insert(message);
                    break;
                }
                Prepared::Done(outcome) => {
                    engine.outcomes.done_earlier(outcome);
                    Ok(())
                }
                Prepared::Reject(applied, original) => {
                    engine.outcomes.finish(ordinal, &record, &applied, original)
                }
                Prepared::Apply(planned, _) => match check_access(engine, &planned).await {
                    Err(error) => Err(error),
                    Ok(Some(rejected)) => reject(engine, ordinal, &record, &rejected),
                    Ok(None) => match member(ordinal, &record, &planned) {
                        Err(applied) => reject(engine, ordinal, &record, &applied),
                        Ok((member, user, connection)) => {
                            match resumed.values_mut().find(|(p, _)| p.contains(ordinal)) {
                                Some((_, members)) => {
                                    members.push((member, user));
                                    Ok(())
                                }
                                None => match chunker.refuses(&user) {
                                    Some(invalid) => {
                                        let applied =
                                            Applied::rejected(invalid.code, invalid.message, None);
                                        engine.finish(&member, &applied)
                                    }
                                    None => {
                                        if let Some(sealed) =
                                            chunker.add(&connection, member, &user)
                                        {
                                            let _ = chunks_tx.send(Dispatch::New(sealed)).await;
                                        }
                                        Ok(())
                                    }
                                },
                            }
                        }
                    },
                },
            };
            if let Err(error) = finished {
                stop(error);
                break;
            }
            // A resumed chunk whose last record has come by is whole again.
            while let Some(entry) = resumed.first_entry()
                && entry.get().0.last() <= ordinal
            {
                let number = *entry.key();
                let (pending, members) = entry.remove();
                let chunk = chunk::rebuild(number, "", members);
                let _ = chunks_tx.send(Dispatch::Resumed(chunk, pending)).await;
            }
        }
        if !halted() && stopped.lock().expect("stop lock").input_cut.is_none() {
            for (number, (pending, members)) in resumed {
                let chunk = chunk::rebuild(number, "", members);
                let _ = chunks_tx.send(Dispatch::Resumed(chunk, pending)).await;
            }
            for sealed in chunker.finish() {
                let _ = chunks_tx.send(Dispatch::New(sealed)).await;
            }
        }
        drop(chunks_tx);
    };

    let runner = engine.run_jobs(chunks_rx, &halted, &stop);
    futures::join!(producer, runner);
    drop(reader);
    stopped.into_inner().expect("stop lock")
}

/// A planned record as a chunk member: the member, its user object's JSON, its connection;
/// or the rejection of a record the job cannot take.
#[allow(clippy::result_large_err)]
fn member(
    ordinal: u64,
    record: &Record,
    planned: &Planned,
) -> Result<(Member, Vec<u8>, String), Applied> {
    let hash = planned.hash.as_ref().map(|h| (h.name(), h.value()));
    let (user, user_id) = chunk::job_user(planned, hash).map_err(|invalid| {
        Applied::rejected(invalid.code, invalid.message, None).with_field(invalid.field)
    })?;
    let bytes = serde_json::to_vec(&user).expect("a user serializes");
    let email = user
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_string);
    let connection = planned.connection.clone().unwrap_or_default();
    let original = match &record.result {
        Ok(object) => serde_json::to_string(object).expect("an object serializes"),
        Err(_) => "{}".to_string(),
    };
    let member = Member {
        ordinal,
        line: record.line,
        original: original.into_boxed_str(),
        user_id,
        email,
        secrets: secrets_of(&user),
        access: planned.access.clone().map(Box::new),
    };
    Ok((member, bytes, connection))
}

/// The strings of a user's hash fields (values, salts, keys), to keep out of messages.
fn secrets_of(user: &serde_json::Map<String, Value>) -> Vec<String> {
    fn strings(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Object(map) => map.values().for_each(|v| strings(v, out)),
            Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for field in ["password_hash", "custom_password_hash"] {
        if let Some(value) = user.get(field) {
            strings(value, &mut out);
        }
    }
    out
}

/// Resolves a record's role and organization names before it joins a chunk: its rejection
/// when one is unknown.
async fn check_access(engine: &Engine<'_>, planned: &Planned) -> Result<Option<Applied>, ApiError> {
    match (engine.access, &planned.access) {
        (Some(applier), Some(access)) => Ok(applier.check(access).await?.err()),
        _ => Ok(None),
    }
}

/// Writes a record's rejection.
fn reject(
    engine: &Engine<'_>,
    ordinal: u64,
    record: &Record,
    applied: &Applied,
) -> Result<(), ApiError> {
    let original = record.result.as_ref().ok().cloned().map(Value::Object);
    engine.outcomes.finish(ordinal, record, applied, original)
}

impl Engine<'_> {
    /// Runs the chunks sent on `chunks`, at most `max_jobs` at a time, until the channel
    /// closes; after `halted`, the rest are not sent. A fatal error goes to `stop`.
    async fn run_jobs(
        &self,
        chunks: tokio::sync::mpsc::Receiver<Dispatch>,
        halted: &impl Fn() -> bool,
        stop: &impl Fn(ApiError),
    ) {
        stream_from(chunks)
            .map(|dispatch| async move {
                if halted() {
                    return Ok(());
                }
                self.run_chunk(dispatch).await
            })
            .buffer_unordered(self.settings.max_jobs.max(1))
            .for_each(|result| {
                if let Err(error) = result {
                    stop(error);
                }
                async {}
            })
            .await;
    }

    /// Takes one chunk to its end: sent (or found again), polled, its members' outcomes
    /// written, and forgotten by the journal. `Err` only for what ends the run.
    async fn run_chunk(&self, dispatch: Dispatch) -> Result<(), ApiError> {
        let (chunk, pending) = match dispatch {
            Dispatch::New(chunk) => (chunk, None),
            Dispatch::Resumed(chunk, pending) => (chunk, Some(pending)),
        };
        if chunk.members.is_empty() {
            // Every member's outcome made it to the ledger before the run stopped.
            return self.forget(chunk.number).await;
        }
        if self.dry_run {
            tracing::info!(
                "Would send chunk {}: {} users, {} bytes, to connection {}.",
                chunk.number,
                chunk.members.len(),
                chunk.body.len(),
                chunk.connection
            );
            for member in &chunk.members {
                let applied = Applied {
                    new_user: Some(Box::new(NewUser {
                        email: member.email.clone(),
                        connection: chunk.connection.clone(),
                    })),
                    ..Applied::done(Outcome::Created, Some(member.user_id.clone()), Vec::new())
                };
                self.finish(member, &applied)?;
            }
            return Ok(());
        }
        // `twice`: another job may have been made from this chunk (a send whose answer was
        // lost, a request retried in transit), so users found in the tenant may be ours.
        let (connection_id, sent_at, mut job_id, mut sends, mut twice) = match pending {
            Some(pending) => {
                let twice = pending.maybe_sent_twice();
                (
                    pending.connection_id,
                    pending.sent_at,
                    pending.job,
                    pending.sends,
                    twice,
                )
            }
            None => {
                let connection = match self.connection(&chunk.connection).await? {
                    Some(c) if c.strategy == "auth0" => c,
                    found => return self.refuse_connection(&chunk, found.is_some()),
                };
                (connection.id, Utc::now(), None, 0, false)
            }
        };
        let body = bytes::Bytes::from(chunk.body);
        let job = loop {
            let id = match job_id.take() {
                Some(id) => id,
                None => {
                    // On disk before it leaves: a crash from here on sends it again.
                    if let Some(journal) = self.journal {
                        let ranges =
                            super::job::chunk::ranges(chunk.members.iter().map(|m| m.ordinal));
                        journal
                            .sent(chunk.number, &connection_id, ranges, sent_at)
                            .map_err(|e| local("the jobs journal", &e))?;
                    }
                    sends += 1;
                    twice |= sends > 1;
                    match self.submit(&connection_id, &body).await? {
                        Ok((job, retried)) => {
                            twice |= retried;
                            if let Some(journal) = self.journal {
                                journal
                                    .accepted(chunk.number, &job.id, retried)
                                    .map_err(|e| local("the jobs journal", &e))?;
                            }
                            tracing::info!(
                                "Chunk {} ({} users, {} bytes) is import job {}.",
                                chunk.number,
                                chunk.members.len(),
                                body.len(),
                                job.id
                            );
                            job.id
                        }
                        Err(refused) => {
                            for member in &chunk.members {
                                self.finish(member, &refused)?;
                            }
                            return self.forget(chunk.number).await;
                        }
                    }
                }
            };
            match self.client.wait_for_job(&id, |_| {}).await? {
                Some(job) => break job,
                None => {
                    // Purged or unknown: send the chunk again; what the first job made
                    // comes back as conflicts that are ours.
                    tracing::warn!(
                        "Import job {id} of chunk {} is unknown to the tenant (purged?); sending \
                         the chunk again.",
                        chunk.number
                    );
                }
            }
        };
        let verdicts = if job.status == "completed" {
            let errors = self.client.job_errors(&job.id).await?;
            let (verdicts, unmatched) = report::verdicts(&chunk.members, &errors);
            if unmatched > 0 {
                tracing::warn!(
                    "Import job {} reported {unmatched} errors for users that are not in its \
                     chunk; they are ignored.",
                    job.id
                );
            }
            if let Some(summary) = job.summary {
                tracing::info!(
                    "Import job {} completed: {} inserted, {} updated, {} failed of {}.",
                    job.id,
                    summary.inserted,
                    summary.updated,
                    summary.failed,
                    summary.total
                );
            }
            verdicts
        } else {
            // A failed job may have created some users (one that ran too long): each member
            // is looked up.
            tracing::warn!(
                "Import job {} of chunk {} failed; looking its users up.",
                job.id,
                chunk.number
            );
            let message = format!("the import job {} failed", job.id);
            vec![Verdict::Conflict { message }; chunk.members.len()]
        };
        let failed = job.status != "completed";
        let settled = futures::stream::iter(chunk.members.iter().zip(verdicts))
            .map(|(member, verdict)| async move {
                let applied = self.settle(member, verdict, sent_at, failed, twice).await?;
                Ok::<_, ApiError>((member, applied))
            })
            .buffered(8)
            .collect::<Vec<_>>()
            .await;
        for result in settled {
            let (member, applied) = result?;
            self.finish(member, &applied)?;
        }
        self.forget(chunk.number).await
    }

    /// Sends a chunk as a job, waiting while the tenant runs two already. `Ok(Err(applied))`
    /// when the tenant refuses the chunk itself (every member is rejected with that).
    async fn submit(
        &self,
        connection_id: &str,
        body: &bytes::Bytes,
    ) -> Result<Result<(Job, bool), Applied>, ApiError> {
        let job = ImportJob {
            connection_id,
            users: body,
            upsert: false,
            external_id: None,
        };
        let mut waited = false;
        loop {
            match self.client.create_import_job(&job).await {
                Ok(made) => return Ok(Ok(made)),
                Err(ApiError::Status { status: 429, .. }) => {
                    if !waited {
                        tracing::info!(
                            "The tenant runs two import jobs already; waiting for one to end."
                        );
                        waited = true;
                    }
                    self.sleep(JOB_SLOT_WAIT).await?;
                }
                Err(ApiError::Status {
                    status,
                    error_code,
                    message,
                    ..
                }) if status != 403 => {
                    let code = if error_code.is_empty() {
                        format!("http_{status}")
                    } else {
                        error_code
                    };
                    let message = format!("the tenant refused the import job: {message}");
                    return Ok(Err(Applied::rejected(&code, message, Some(status))));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A member's outcome from its verdict. A conflict is somebody else's user unless another
    /// job may have been made from the chunk (`twice`): then a lookup by id tells, ours when
    /// made since the chunk was first sent. Every member of a failed job is looked up (a job
    /// that ran too long may have made some).
    async fn settle(
        &self,
        member: &Member,
        verdict: Verdict,
        sent_at: DateTime<Utc>,
        failed: bool,
        twice: bool,
    ) -> Result<Applied, ApiError> {
        let id = Some(member.user_id.clone());
        let message = match verdict {
            Verdict::Created => {
                let created = Applied::done(Outcome::Created, id, Vec::new());
                return self.with_access(member, created, !(twice || failed)).await;
            }
            Verdict::Rejected {
                code,
                message,
                field,
            } => return Ok(Applied::rejected(&code, message, None).with_field(field)),
            Verdict::Conflict { message } => message,
        };
        let exists = || {
            Applied::skipped(
                None,
                "already_exists",
                format!(
                    "the tenant already has this user, or a user with this email in the \
                     connection; create mode never changes an existing user ({message})"
                ),
            )
        };
        if !twice && !failed {
            return Ok(exists());
        }
        match self.client.get_user(&member.user_id).await? {
            Some(user) if created_since(&user, sent_at) => {
                let created = Applied::done(Outcome::Created, id, Vec::new());
                self.with_access(member, created, false).await
            }
            Some(_) => Ok(exists()),
            None if !failed => Ok(exists()),
            None => Ok(Applied::rejected(
                "job_failed",
                format!("{message}; the user was not created: import it again"),
                None,
            )),
        }
    }

    /// Gives a user the job made the record's access; `fresh` when no earlier job or run can
    /// have given it any.
    async fn with_access(
        &self,
        member: &Member,
        mut applied: Applied,
        fresh: bool,
    ) -> Result<Applied, ApiError> {
        let (Some(applier), Some(access)) = (self.access, &member.access) else {
            return Ok(applied);
        };
        match applier
            // Users a job made: undo deletes them, so no access image.
            .apply(applied.user_id.as_deref(), access, fresh, None)
            .await?
        {
            Ok(changes) => {
                let changes = changes.into_iter().map(crate::import::plan::Change::access);
                applied.changes.extend(changes);
                Ok(applied)
            }
            Err(rejected) => Ok(Applied {
                user_id: applied.user_id,
                ..rejected
            }),
        }
    }

    /// The rejection of every member of a chunk whose connection cannot take a job.
    fn refuse_connection(&self, chunk: &Chunk, exists: bool) -> Result<(), ApiError> {
        let applied = if exists {
            Applied::rejected(
                "read_only_connection",
                format!(
                    "the connection {} is not a database connection; Auth0's import job \
                     creates database users only",
                    chunk.connection
                ),
                None,
            )
        } else {
            Applied::rejected(
                "unknown_connection",
                format!("the tenant has no connection named {}", chunk.connection),
                None,
            )
        }
        .with_field(Some("connection".into()));
        for member in &chunk.members {
            self.finish(member, &applied)?;
        }
        Ok(())
    }

    fn finish(&self, member: &Member, applied: &Applied) -> Result<(), ApiError> {
        let mut applied = applied.clone();
        // A user the job made without a hash has no password at all.
        if self.tickets
            && !self.dry_run
            && applied.outcome == Outcome::Created
            && member.secrets.is_empty()
        {
            applied.ticket = Some(TicketFor {
                email: member.email.clone(),
            });
        }
        self.outcomes.finish(
            member.ordinal,
            &member.record(),
            &applied,
            member.original(),
        )?;
        self.waiting.written(member.ordinal);
        Ok(())
    }

    /// Forgets a chunk whose members' outcomes are all written: once the ledger has them on
    /// disk, the journal marks it done.
    async fn forget(&self, number: u64) -> Result<(), ApiError> {
        if let Some(ledger) = self.ledger {
            ledger
                .sync()
                .await
                .map_err(|e| local("the import ledger", &e))?;
        }
        if let Some(journal) = self.journal {
            journal
                .done(number)
                .map_err(|e| local("the jobs journal", &e))?;
        }
        Ok(())
    }

    async fn sleep(&self, pause: Duration) -> Result<(), ApiError> {
        tokio::select! {
            _ = tokio::time::sleep(pause) => Ok(()),
            _ = self.cancel.cancelled() => Err(ApiError::Cancelled),
        }
    }
}

fn local(what: &str, error: &std::io::Error) -> ApiError {
    ApiError::Local {
        what: what.to_string(),
        message: error.to_string(),
    }
}
