//! Bulk-import jobs: `POST /api/v2/jobs/users-imports` takes a file of users and answers at
//! once (202); a background task per job then works through the file at
//! [`SandboxOptions::job_rate`](super::SandboxOptions::job_rate) users a second, while
//! `GET /api/v2/jobs/{id}` shows its progress and `GET /api/v2/jobs/{id}/errors` the records
//! it refused.
//!
//! A job's life (facts, "Bulk import jobs"): `pending` → `processing` (`percentage_done`,
//! `time_left_seconds`) → `completed` with `summary {failed, updated, inserted, total}`; or
//! `failed`: a file that is not a JSON array of users fails without a summary (its `/errors`
//! answers 204), and a job still running after `job_timeout` (2 h) fails with the summary of
//! what it did. Its data is purged `job_purge_after` (24 h) after it was created; then every
//! job endpoint answers 404. At most 2 import jobs are active (pending or processing) at once.
//!
//! Rate limits: facts ("Bulk import jobs"), the job endpoints count against the tenant's rate
//! limits. Auth0 names no endpoint group for them, so they are in the sandbox's `other` group
//! (`Group::of`): the shared bucket, unless `--rate-group other=...` gives them their own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::error::ErrorReply;
use super::import_users::{self, Outcome, Seen};
use super::query::canonical_time;
use super::routes::{ApiResult, Shared, require_scope};
use super::{State, random_token};

/// Facts ("Bulk import jobs"): the users file is at most 512,000 bytes.
pub const MAX_IMPORT_FILE: usize = 512_000;

/// Facts ("Bulk import jobs"): at most 2 import jobs active per tenant.
const MAX_ACTIVE_IMPORTS: usize = 2;

/// The longest text part of the form other than the file. Auth0 names no limit; the sandbox
/// refuses more than this (stricter): every value it takes is a short string.
const MAX_TEXT_PART: usize = 64 * 1024;

/// Spec (`CreateImportUsersRequestContent`): `connection_id` matches `^con_[A-Za-z0-9]{16}$`.
const CONNECTION_ID_PATTERN: &str = "^con_[A-Za-z0-9]{16}$";

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Pending,
    Processing,
    Completed,
    Failed,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Processing => "processing",
            Status::Completed => "completed",
            Status::Failed => "failed",
        }
    }

    fn active(self) -> bool {
        matches!(self, Status::Pending | Status::Processing)
    }
}

/// Spec (`GetJobSummary`): the counts of a finished job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    pub failed: u64,
    pub updated: u64,
    pub inserted: u64,
    pub total: u64,
}

/// One import job.
pub(crate) struct Job {
    id: String,
    connection_id: String,
    connection: String,
    external_id: Option<String>,
    upsert: bool,
    created_at: String,
    created: Instant,
    status: Status,
    /// Records processed so far, and how many the file holds.
    done: usize,
    total: usize,
    summary: Option<Summary>,
    status_details: Option<String>,
    /// `/errors`' entries: `{user, errors}` for each refused record.
    errors: Vec<Value>,
}

impl Job {
    /// Spec (`GetJobResponseContent`) and facts: the job as `GET /api/v2/jobs/{id}` shows it.
    fn json(&self, rate: f64) -> Value {
        let mut job = json!({
            "type": "users_import",
            "status": self.status.name(),
            "id": self.id,
            "connection_id": self.connection_id,
            "connection": self.connection,
            "created_at": self.created_at,
        });
        if let Some(external_id) = &self.external_id {
            job["external_id"] = external_id.clone().into();
        }
        if self.status == Status::Processing {
            let percentage = (self.done * 100).checked_div(self.total).unwrap_or(0);
            let left = (self.total - self.done) as f64 / rate;
            job["percentage_done"] = percentage.into();
            job["time_left_seconds"] = (left.ceil() as u64).into();
        }
        if let Some(summary) = self.summary {
            job["summary"] = json!({
                "failed": summary.failed,
                "updated": summary.updated,
                "inserted": summary.inserted,
                "total": summary.total,
            });
        }
        if let Some(details) = &self.status_details {
            job["status_details"] = details.clone().into();
        }
        job
    }
}

/// Every job the tenant still remembers.
#[derive(Default)]
pub(crate) struct Jobs {
    map: HashMap<String, Job>,
}

impl Jobs {
    /// Forgets the jobs created `after` ago or longer (facts: job data is purged after 24 h).
    fn purge(&mut self, after: Duration) {
        self.map.retain(|_, job| job.created.elapsed() < after);
    }

    fn active_imports(&self) -> usize {
        self.map.values().filter(|j| j.status.active()).count()
    }
}

/// Locks the job table with the purged jobs gone.
fn jobs(state: &State) -> std::sync::MutexGuard<'_, Jobs> {
    let mut jobs = state.jobs.lock().expect("jobs lock");
    jobs.purge(state.options.job_purge_after);
    jobs
}

/// Spec: an unknown (or purged) job is 404; the sandbox uses Auth0's error shape with
/// `inexistent_job`, in the fashion of `inexistent_user`.
fn job_not_found() -> ErrorReply {
    ErrorReply::new(
        StatusCode::NOT_FOUND,
        "inexistent_job",
        "The job does not exist.",
    )
}

// ---------------------------------------------------------------------------------------------
// POST /api/v2/jobs/users-imports

/// The form of an import request, as read.
#[derive(Default)]
struct ImportForm {
    users: Option<Vec<u8>>,
    connection_id: Option<String>,
    upsert: Option<String>,
    external_id: Option<String>,
    send_completion_email: Option<String>,
}

fn invalid_multipart() -> ErrorReply {
    ErrorReply::invalid_body("Payload validation error: 'Invalid multipart payload format'.")
}

/// Reads one part whole, refusing it past `limit` bytes with `too_large`.
async fn read_part(
    mut field: Field<'_>,
    limit: usize,
    too_large: fn() -> ErrorReply,
) -> Result<Vec<u8>, ErrorReply> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|_| invalid_multipart())? {
        if bytes.len() + chunk.len() > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Facts ("Bulk import jobs"): the exact 413 of a file over 512,000 bytes.
fn file_too_large() -> ErrorReply {
    ErrorReply::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("Payload content length greater than maximum allowed: {MAX_IMPORT_FILE}."),
    )
}

fn part_too_large() -> ErrorReply {
    ErrorReply::invalid_body(format!(
        "Payload validation error: a form field is longer than {MAX_TEXT_PART} bytes."
    ))
}

async fn read_form(mut multipart: Multipart) -> Result<ImportForm, ErrorReply> {
    let mut form = ImportForm::default();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|_| invalid_multipart())?
    {
        let name = field.name().unwrap_or_default().to_string();
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).map_err(|_| invalid_multipart());
        let slot = match name.as_str() {
            "users" => {
                let bytes = read_part(field, MAX_IMPORT_FILE, file_too_large).await?;
                if form.users.replace(bytes).is_some() {
                    return Err(repeated(&name));
                }
                continue;
            }
            "connection_id" => &mut form.connection_id,
            "upsert" => &mut form.upsert,
            "external_id" => &mut form.external_id,
            "send_completion_email" => &mut form.send_completion_email,
            // Spec: additionalProperties true; other parts are read and ignored.
            _ => {
                read_part(field, MAX_TEXT_PART, part_too_large).await?;
                continue;
            }
        };
        let value = text(read_part(field, MAX_TEXT_PART, part_too_large).await?)?;
        if slot.replace(value).is_some() {
            return Err(repeated(&name));
        }
    }
    Ok(form)
}

/// Stricter than silence: a part given twice is refused rather than one of them picked.
fn repeated(name: &str) -> ErrorReply {
    ErrorReply::invalid_body(format!(
        "Payload validation error: 'Expected type string but found type array' on property {name}."
    ))
}

/// A form boolean: `true` or `false` (the spec's type), else a payload error.
fn form_bool(value: Option<&str>, name: &str, default: bool) -> Result<bool, ErrorReply> {
    match value {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(ErrorReply::invalid_body(format!(
            "Payload validation error: 'Expected type boolean but found type string' on property {name}."
        ))),
    }
}

/// Facts and spec ("Bulk import jobs", `post_users-imports`): a multipart form with `users` (a
/// file of at most 512,000 bytes, else 413), `connection_id` (the id of a database
/// connection), `upsert` (false), `external_id`, `send_completion_email` (true). Needs
/// `create:users`. Checked in this order, each with the spec's own 400 message: the form, the
/// file's size, `users` present and not empty, `connection_id` present and of the pattern, the
/// connection known (400, as the spec lists "The connection does not exist." among the 400s),
/// a database connection (400 `operation_not_supported`); then at most 2 active jobs (429).
/// The file is not parsed here: one that cannot be is still accepted, and its job fails.
pub(super) async fn create_import(
    AxState(state): AxState<Shared>,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult {
    require_scope(&state, &["create:users"])?;
    let form = read_form(multipart.map_err(|_| invalid_multipart())?).await?;
    let Some(users) = form.users else {
        return Err(ErrorReply::invalid_body(
            "Must provide 'users' file as multipart part.",
        ));
    };
    if users.is_empty() {
        return Err(ErrorReply::invalid_body("Users file must not be empty."));
    }
    let Some(connection_id) = form.connection_id else {
        return Err(ErrorReply::invalid_body(
            "Must provide 'connection_id' as multipart part.",
        ));
    };
    if !is_connection_id(&connection_id) {
        return Err(ErrorReply::invalid_body(format!(
            "Payload validation error: 'String does not match pattern {CONNECTION_ID_PATTERN}' on property connection_id."
        )));
    }
    let upsert = form_bool(form.upsert.as_deref(), "upsert", false)?;
    // Facts: defaults to true. The sandbox sends no email either way.
    form_bool(
        form.send_completion_email.as_deref(),
        "send_completion_email",
        true,
    )?;
    let connection = {
        let store = state.store.lock().expect("store lock");
        let (name, connection) = store.connection_by_id(&connection_id).ok_or_else(|| {
            ErrorReply::new(
                StatusCode::BAD_REQUEST,
                "inexistent_connection",
                "The connection does not exist.",
            )
        })?;
        if !connection.is_database() {
            // Facts: only database connections accept it (400 `operation_not_supported`);
            // the message is the spec's.
            return Err(ErrorReply::new(
                StatusCode::BAD_REQUEST,
                "operation_not_supported",
                "Connection must be a database connection.",
            ));
        }
        name.to_string()
    };
    let job = Job {
        id: format!("job_{}", random_token(16)),
        connection_id,
        connection,
        external_id: form.external_id,
        upsert,
        created_at: canonical_time(Utc::now()),
        created: Instant::now(),
        status: Status::Pending,
        done: 0,
        total: 0,
        summary: None,
        status_details: None,
        errors: Vec::new(),
    };
    let body = {
        let mut jobs = jobs(&state);
        if jobs.active_imports() >= MAX_ACTIVE_IMPORTS {
            // Facts: the exact 429 text.
            return Err(ErrorReply::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "There are 2 active import users jobs, please wait until some of them are finished and try again",
            ));
        }
        let body = job.json(state.options.job_rate);
        jobs.map.insert(job.id.clone(), job);
        body
    };
    let id = body["id"].as_str().unwrap_or_default().to_string();
    tokio::spawn(run_import(state.clone(), id, users));
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

fn is_connection_id(id: &str) -> bool {
    id.strip_prefix("con_")
        .is_some_and(|tail| tail.len() == 16 && tail.bytes().all(|b| b.is_ascii_alphanumeric()))
}

// ---------------------------------------------------------------------------------------------
// GET /api/v2/jobs/{id}, GET /api/v2/jobs/{id}/errors

/// Spec (`get_jobs_by_id`): the job; needs `create:users` or `read:users`.
pub(super) async fn get_job(AxState(state): AxState<Shared>, Path(id): Path<String>) -> ApiResult {
    require_scope(&state, &["create:users", "read:users"])?;
    let jobs = jobs(&state);
    let job = jobs.map.get(&id).ok_or_else(job_not_found)?;
    Ok(axum::Json(job.json(state.options.job_rate)).into_response())
}

/// Spec (`get_errors`) and facts: 200 with `[{user, errors: [{code, message, path}]}]`, or 204
/// when there are none (so far); needs `create:users` or `read:users`.
pub(super) async fn get_errors(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
) -> ApiResult {
    require_scope(&state, &["create:users", "read:users"])?;
    let jobs = jobs(&state);
    let job = jobs.map.get(&id).ok_or_else(job_not_found)?;
    if job.errors.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(axum::Json(&job.errors).into_response())
}

// ---------------------------------------------------------------------------------------------
// The job's work

/// Waits while jobs are held; false when the sandbox stops meanwhile.
async fn released(state: &State) -> bool {
    let mut gate = state.job_gate.subscribe();
    tokio::select! {
        result = gate.wait_for(|held| !*held) => result.is_ok(),
        _ = state.cancel.cancelled() => false,
    }
}

/// Runs `f` on the job if the tenant still remembers it; `None` once it was purged.
fn with_job<T>(state: &State, id: &str, f: impl FnOnce(&mut Job) -> T) -> Option<T> {
    jobs(state).map.get_mut(id).map(f)
}

/// Facts: a file that is not a JSON array fails the job, without a summary. So does an
/// array that holds anything but objects (stricter than silence: it is not a file of users).
fn parse_users(bytes: &[u8]) -> Result<Vec<Map<String, Value>>, String> {
    let values: Vec<Value> = serde_json::from_slice(bytes).map_err(|_| {
        "Failed to parse users file JSON when importing users. Make sure it is a valid JSON array of users."
            .to_string()
    })?;
    values
        .into_iter()
        .enumerate()
        .map(|(index, value)| match value {
            Value::Object(user) => Ok(user),
            other => Err(format!(
                "The users file must be a JSON array of user objects; item {index} is a {}.",
                super::validate::type_name(&other)
            )),
        })
        .collect()
}

/// One job from `pending` to its end, at `job_rate` users a second.
async fn run_import(state: Arc<State>, id: String, file: Vec<u8>) {
    if !released(&state).await {
        return;
    }
    let users = match parse_users(&file) {
        Ok(users) => users,
        Err(details) => {
            with_job(&state, &id, |job| {
                job.status = Status::Failed;
                job.status_details = Some(details);
            });
            return;
        }
    };
    drop(file);
    let Some((connection_name, upsert)) = with_job(&state, &id, |job| {
        job.status = Status::Processing;
        job.total = users.len();
        (job.connection.clone(), job.upsert)
    }) else {
        return;
    };
    let rate = state.options.job_rate;
    let started = Instant::now();
    let deadline = started + state.options.job_timeout;
    let mut summary = Summary {
        total: users.len() as u64,
        ..Summary::default()
    };
    let mut seen = Seen::default();
    let mut done = 0;
    while done < users.len() {
        if !released(&state).await {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            // Facts: jobs running over 2 h fail.
            with_job(&state, &id, |job| {
                job.status = Status::Failed;
                job.summary = Some(summary);
                job.status_details = Some(format!(
                    "The job ran longer than {} seconds and was stopped.",
                    state.options.job_timeout.as_secs()
                ));
            });
            return;
        }
        // Every user whose turn has come: the first at once, then one every 1/rate s.
        let due = ((now - started).as_secs_f64() * rate) as usize + 1;
        let batch = done..due.min(users.len());
        let mut errors = Vec::new();
        let before = summary;
        {
            let mut store = state.store.lock().expect("store lock");
            let Some((_, connection)) = store
                .connections()
                .find(|(name, _)| *name == connection_name)
                .map(|(n, c)| (n.to_string(), c.clone()))
            else {
                return;
            };
            for record in &users[batch.clone()] {
                match import_users::apply(
                    &mut store,
                    &connection_name,
                    &connection,
                    upsert,
                    record,
                    &mut seen,
                ) {
                    Outcome::Inserted => summary.inserted += 1,
                    Outcome::Updated => summary.updated += 1,
                    Outcome::Failed(record_errors) => {
                        summary.failed += 1;
                        errors.push(json!({
                            "user": import_users::masked(record),
                            "errors": record_errors.iter().map(|e| e.json()).collect::<Vec<_>>(),
                        }));
                    }
                }
            }
        }
        {
            let mut stats = state.stats.lock().expect("stats lock");
            stats.writes.created += summary.inserted - before.inserted;
            stats.writes.updated += summary.updated - before.updated;
        }
        done = batch.end;
        let progressed = with_job(&state, &id, |job| {
            job.done = done;
            job.errors.append(&mut errors);
        });
        if progressed.is_none() {
            return;
        }
        if done < users.len() {
            // Until the next user's turn, or the deadline.
            let next = started + Duration::from_secs_f64(done as f64 / rate);
            tokio::select! {
                _ = tokio::time::sleep_until(next.min(deadline)) => {}
                _ = state.cancel.cancelled() => return,
            }
        }
    }
    with_job(&state, &id, |job| {
        job.status = Status::Completed;
        job.summary = Some(summary);
    });
}
