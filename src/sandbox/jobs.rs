//! Bulk jobs: `POST /api/v2/jobs/users-imports` takes a file of users and answers at once
//! (202); a background task per job then works through the file at
//! [`SandboxOptions::job_rate`](super::SandboxOptions::job_rate) users a second, while
//! `GET /api/v2/jobs/{id}` shows its progress and `GET /api/v2/jobs/{id}/errors` the records
//! it refused. `POST /api/v2/jobs/users-exports` reads the tenant's users at the same pace and
//! leaves a gzipped file behind a short-lived link (see [`download`]).
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
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::error::ErrorReply;
use super::export_users::{self, ExportField, FileFormat, MAX_CSV_FIELDS};
use super::import_users::{self, Outcome, Seen};
use super::query::canonical_time;
use super::routes::{ApiResult, Shared, read_body, require_scope};
use super::store::{User, connections_of};
use super::validate::type_name;
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

/// What a job does, with what only that kind has.
pub(crate) enum Kind {
    Import {
        upsert: bool,
        /// `/errors`' entries: `{user, errors}` for each refused record.
        errors: Vec<Value>,
    },
    Export {
        format: FileFormat,
        limit: Option<u64>,
        fields: Option<Vec<ExportField>>,
        /// The gzipped file, once written.
        file: Option<Arc<Vec<u8>>>,
    },
}

/// One job.
pub(crate) struct Job {
    id: String,
    /// The connection's id and name; an export of every user has none.
    connection_id: Option<String>,
    connection: Option<String>,
    external_id: Option<String>,
    created_at: String,
    created: Instant,
    status: Status,
    /// Users processed so far, and how many there are.
    done: usize,
    total: usize,
    summary: Option<Summary>,
    status_details: Option<String>,
    kind: Kind,
}

impl Job {
    /// Spec (`GetJobResponseContent`, `CreateImportUsersResponseContent`,
    /// `CreateExportUsersResponseContent`) and facts: the job as the API shows it; `location`
    /// is a completed export's link.
    fn json(&self, rate: f64, location: Option<String>) -> Value {
        let kind = match self.kind {
            Kind::Import { .. } => "users_import",
            Kind::Export { .. } => "users_export",
        };
        let mut job = json!({
            "type": kind,
            "status": self.status.name(),
            "id": self.id,
        });
        if let Some(id) = &self.connection_id {
            job["connection_id"] = id.clone().into();
        }
        if let Some(name) = &self.connection {
            job["connection"] = name.clone().into();
        }
        job["created_at"] = self.created_at.clone().into();
        if let Some(external_id) = &self.external_id {
            job["external_id"] = external_id.clone().into();
        }
        if let Kind::Export {
            format,
            limit,
            fields,
            ..
        } = &self.kind
        {
            job["format"] = format.name().into();
            if let Some(limit) = limit {
                job["limit"] = (*limit).into();
            }
            if let Some(fields) = fields {
                job["fields"] = fields
                    .iter()
                    .map(|f| {
                        let mut field = json!({"name": f.name});
                        if let Some(export_as) = &f.export_as {
                            field["export_as"] = export_as.clone().into();
                        }
                        field
                    })
                    .collect();
            }
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
        if let Some(location) = location {
            job["location"] = location.into();
        }
        if let Some(details) = &self.status_details {
            job["status_details"] = details.clone().into();
        }
        job
    }

    fn errors_mut(&mut self) -> Option<&mut Vec<Value>> {
        match &mut self.kind {
            Kind::Import { errors, .. } => Some(errors),
            Kind::Export { .. } => None,
        }
    }
}

/// A link to an export's file, as `GET /api/v2/jobs/{id}` hands them out.
struct Link {
    job: String,
    expires: Instant,
}

/// Every job the tenant still remembers.
#[derive(Default)]
pub(crate) struct Jobs {
    map: HashMap<String, Job>,
    /// Export links by their secret token.
    links: HashMap<String, Link>,
}

impl Jobs {
    /// Forgets the jobs created `after` ago or longer (facts: job data is purged after 24 h),
    /// and the links that expired or lead to a purged job.
    fn purge(&mut self, after: Duration) {
        self.map.retain(|_, job| job.created.elapsed() < after);
        let now = Instant::now();
        let map = &self.map;
        self.links
            .retain(|_, link| link.expires > now && map.contains_key(&link.job));
    }

    fn active_imports(&self) -> usize {
        self.map
            .values()
            .filter(|j| j.status.active() && matches!(j.kind, Kind::Import { .. }))
            .count()
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
    let job = new_job(
        Some(connection_id),
        Some(connection),
        form.external_id,
        Kind::Import {
            upsert,
            errors: Vec::new(),
        },
    );
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
        let body = job.json(state.options.job_rate, None);
        jobs.map.insert(job.id.clone(), job);
        body
    };
    let id = body["id"].as_str().unwrap_or_default().to_string();
    tokio::spawn(run_import(state.clone(), id, users));
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

/// A new pending job with a fresh id (`job_` + 16 alphanumerics, as Auth0's).
fn new_job(
    connection_id: Option<String>,
    connection: Option<String>,
    external_id: Option<String>,
    kind: Kind,
) -> Job {
    Job {
        id: format!("job_{}", random_token(16)),
        connection_id,
        connection,
        external_id,
        created_at: canonical_time(Utc::now()),
        created: Instant::now(),
        status: Status::Pending,
        done: 0,
        total: 0,
        summary: None,
        status_details: None,
        kind,
    }
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
    let mut jobs = jobs(&state);
    let job = jobs.map.get(&id).ok_or_else(job_not_found)?;
    // Facts ("Bulk export jobs"): each fetch of a completed export gives a fresh link.
    let location = match &job.kind {
        Kind::Export {
            format,
            file: Some(_),
            ..
        } if job.status == Status::Completed => {
            let token = random_token(32);
            let ttl = state.options.export_link_ttl;
            let location = format!(
                "{}/user-exports/{id}/users.{}.gz?X-Amz-Expires={}&X-Amz-Signature={token}",
                state.domain,
                format.name(),
                ttl.as_secs()
            );
            Some((token, location))
        }
        _ => None,
    };
    let body = job.json(
        state.options.job_rate,
        location.as_ref().map(|(_, l)| l.clone()),
    );
    if let Some((token, _)) = location {
        jobs.links.insert(
            token,
            Link {
                job: id,
                expires: Instant::now() + state.options.export_link_ttl,
            },
        );
    }
    Ok(axum::Json(body).into_response())
}

/// Spec (`get_errors`) and facts: 200 with `[{user, errors: [{code, message, path}]}]`, or 204
/// when there are none (so far); needs `create:users` or `read:users`.
pub(super) async fn get_errors(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
) -> ApiResult {
    require_scope(&state, &["create:users", "read:users"])?;
    let mut jobs = jobs(&state);
    let job = jobs.map.get_mut(&id).ok_or_else(job_not_found)?;
    match job.errors_mut() {
        Some(errors) if !errors.is_empty() => Ok(axum::Json(&*errors).into_response()),
        _ => Ok(StatusCode::NO_CONTENT.into_response()),
    }
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

/// How a paced walk over a job's users ended.
enum Paced {
    /// Every user was processed.
    Done,
    /// The job ran past `job_timeout`.
    TimedOut,
    /// The job was purged, or the sandbox stopped: nothing more to record.
    Gone,
}

/// Walks `total` users at `job_rate` a second: the first at once, then each in its turn,
/// calling `step` with every batch whose turn has come and recording the progress. A job
/// held meanwhile waits; one running past `job_timeout` stops.
async fn pace(
    state: &State,
    id: &str,
    total: usize,
    mut step: impl FnMut(Range<usize>) -> Vec<Value>,
) -> Paced {
    let rate = state.options.job_rate;
    let started = Instant::now();
    let deadline = started + state.options.job_timeout;
    let mut done = 0;
    while done < total {
        if !released(state).await {
            return Paced::Gone;
        }
        let now = Instant::now();
        if now >= deadline {
            return Paced::TimedOut;
        }
        let due = ((now - started).as_secs_f64() * rate) as usize + 1;
        let batch = done..due.min(total);
        done = batch.end;
        let mut errors = step(batch);
        let recorded = with_job(state, id, |job| {
            job.done = done;
            if let Some(kept) = job.errors_mut() {
                kept.append(&mut errors);
            }
        });
        if recorded.is_none() {
            return Paced::Gone;
        }
        if done < total {
            // Until the next user's turn, or the deadline.
            let next = started + Duration::from_secs_f64(done as f64 / rate);
            tokio::select! {
                _ = tokio::time::sleep_until(next.min(deadline)) => {}
                _ = state.cancel.cancelled() => return Paced::Gone,
            }
        }
    }
    Paced::Done
}

/// Facts: a job running over 2 h fails, with the summary of what it did.
fn timed_out(state: &State, id: &str, summary: Option<Summary>) {
    with_job(state, id, |job| {
        job.status = Status::Failed;
        job.summary = summary;
        job.status_details = Some(format!(
            "The job ran longer than {} seconds and was stopped.",
            state.options.job_timeout.as_secs()
        ));
    });
}

/// One import job from `pending` to its end.
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
        let upsert = matches!(job.kind, Kind::Import { upsert: true, .. });
        (job.connection.clone().unwrap_or_default(), upsert)
    }) else {
        return;
    };
    let mut summary = Summary {
        total: users.len() as u64,
        ..Summary::default()
    };
    let mut seen = Seen::default();
    let step = |batch: Range<usize>| {
        let before = summary;
        let mut errors = Vec::new();
        {
            let mut store = state.store.lock().expect("store lock");
            let Some(connection) = store.connection(&connection_name).cloned() else {
                return errors;
            };
            for record in &users[batch] {
                let outcome = import_users::apply(
                    &mut store,
                    &connection_name,
                    &connection,
                    upsert,
                    record,
                    &mut seen,
                );
                match outcome {
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
        let mut stats = state.stats.lock().expect("stats lock");
        stats.writes.created += summary.inserted - before.inserted;
        stats.writes.updated += summary.updated - before.updated;
        errors
    };
    match pace(&state, &id, users.len(), step).await {
        Paced::Done => {
            with_job(&state, &id, |job| {
                job.status = Status::Completed;
                job.summary = Some(summary);
            });
        }
        Paced::TimedOut => timed_out(&state, &id, Some(summary)),
        Paced::Gone => {}
    }
}

// ---------------------------------------------------------------------------------------------
// POST /api/v2/jobs/users-exports, and the file's link

/// Spec (`CreateExportUsersRequestContent`, additionalProperties false): the body's keys.
const EXPORT_KEYS: &[&str] = &["connection_id", "format", "limit", "fields"];

fn export_field(index: usize, value: &Value) -> Result<ExportField, ErrorReply> {
    let at = |reason: String| {
        ErrorReply::invalid_body(format!(
            "Payload validation error: '{reason}' on property fields[{index}]."
        ))
    };
    let Value::Object(field) = value else {
        return Err(at(format!(
            "Expected type object but found type {}",
            type_name(value)
        )));
    };
    if let Some(key) = field
        .keys()
        .find(|k| !matches!(k.as_str(), "name" | "export_as"))
    {
        return Err(at(format!("Additional properties not allowed: {key}")));
    }
    let text = |key: &str, required: bool| -> Result<Option<String>, ErrorReply> {
        match field.get(key) {
            None if required => Err(at(format!("Missing required property: {key}"))),
            None => Ok(None),
            Some(Value::String(s)) if s.chars().count() > 100 => Err(at(format!(
                "String is too long ({} chars), maximum 100",
                s.chars().count()
            ))),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(at(format!(
                "Expected type string but found type {}",
                type_name(other)
            ))),
        }
    };
    Ok(ExportField {
        name: text("name", true)?.unwrap_or_default(),
        export_as: text("export_as", false)?,
    })
}

/// Spec (`post_users-exports`) and facts ("Bulk export jobs"): `{connection_id?, format,
/// limit?, fields?}` and no other key, as JSON or a form; needs `read:users`; 200 with the
/// pending job. `format` defaults to `csv` (Auth0's documented default); a CSV export names
/// at most 30 fields; an unknown connection is 400 "The connection does not exist.". Export
/// jobs have no limit of active jobs (the facts give one for imports only).
pub(super) async fn create_export(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    require_scope(&state, &["read:users"])?;
    let Value::Object(body) = read_body(&headers, body).await? else {
        return Err(ErrorReply::invalid_body(
            "Payload validation error: 'Expected type object but found type array'.",
        ));
    };
    if let Some(key) = body.keys().find(|k| !EXPORT_KEYS.contains(&k.as_str())) {
        return Err(ErrorReply::invalid_body(format!(
            "Payload validation error: 'Additional properties not allowed: {key}'."
        )));
    }
    let format = match body.get("format") {
        None => FileFormat::Csv,
        Some(Value::String(f)) if f == "json" => FileFormat::Json,
        Some(Value::String(f)) if f == "csv" => FileFormat::Csv,
        Some(other) => {
            return Err(ErrorReply::invalid_body(format!(
                "Payload validation error: 'No enum match for: {other}' on property format (Format of the file. Must be `json` or `csv`.)."
            )));
        }
    };
    let limit = match body.get("limit") {
        None => None,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n >= 1) => n.as_u64(),
        // A form sends it as text.
        Some(Value::String(s)) if s.parse::<u64>().is_ok_and(|n| n >= 1) => s.parse().ok(),
        Some(other) => {
            return Err(ErrorReply::invalid_body(format!(
                "Payload validation error: 'Expected an integer of at least 1 but found {other}' on property limit."
            )));
        }
    };
    let fields = match body.get("fields") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| export_field(i, v))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(other) => {
            return Err(ErrorReply::invalid_body(format!(
                "Payload validation error: 'Expected type array but found type {}' on property fields.",
                type_name(other)
            )));
        }
    };
    if format == FileFormat::Csv && fields.as_ref().is_some_and(|f| f.len() > MAX_CSV_FIELDS) {
        return Err(ErrorReply::invalid_body(format!(
            "Payload validation error: a CSV export holds at most {MAX_CSV_FIELDS} fields; use the json format for more."
        )));
    }
    let connection = match body.get("connection_id") {
        None => None,
        Some(Value::String(id)) if is_connection_id(id) => {
            let store = state.store.lock().expect("store lock");
            let (name, _) = store.connection_by_id(id).ok_or_else(|| {
                ErrorReply::new(
                    StatusCode::BAD_REQUEST,
                    "inexistent_connection",
                    "The connection does not exist.",
                )
            })?;
            Some((id.clone(), name.to_string()))
        }
        Some(_) => {
            return Err(ErrorReply::invalid_body(format!(
                "Payload validation error: 'String does not match pattern {CONNECTION_ID_PATTERN}' on property connection_id."
            )));
        }
    };
    let (connection_id, connection) = connection.unzip();
    let job = new_job(
        connection_id,
        connection,
        None,
        Kind::Export {
            format,
            limit,
            fields,
            file: None,
        },
    );
    let body = job.json(state.options.job_rate, None);
    let id = job.id.clone();
    jobs(&state).map.insert(id.clone(), job);
    tokio::spawn(run_export(state.clone(), id));
    Ok(axum::Json(body).into_response())
}

/// One export job: the users of its connection (or all), in user_id order, up to its limit,
/// read at `job_rate`, then written to a gzipped file.
async fn run_export(state: Arc<State>, id: String) {
    if !released(&state).await {
        return;
    }
    let Some((connection, limit)) = with_job(&state, &id, |job| {
        let limit = match job.kind {
            Kind::Export { limit, .. } => limit,
            Kind::Import { .. } => None,
        };
        (job.connection.clone(), limit)
    }) else {
        return;
    };
    // The users as they are when the job starts (reads by id are immediate, so the truth,
    // not the lagging search view).
    let users: Vec<User> = {
        let store = state.store.lock().expect("store lock");
        store
            .all()
            .map(|stored| stored.user())
            .filter(|user| {
                connection
                    .as_ref()
                    .is_none_or(|c| connections_of(user).contains(c))
            })
            .take(limit.map_or(usize::MAX, |l| l as usize))
            .collect()
    };
    if with_job(&state, &id, |job| {
        job.status = Status::Processing;
        job.total = users.len();
    })
    .is_none()
    {
        return;
    }
    match pace(&state, &id, users.len(), |_| Vec::new()).await {
        Paced::Done => {}
        Paced::TimedOut => return timed_out(&state, &id, None),
        Paced::Gone => return,
    }
    let Some((format, fields)) = with_job(&state, &id, |job| match &job.kind {
        Kind::Export { format, fields, .. } => Some((*format, fields.clone())),
        Kind::Import { .. } => None,
    })
    .flatten() else {
        return;
    };
    let written = export_users::write_file(&users, format, fields.as_deref());
    with_job(&state, &id, |job| match written {
        Ok(bytes) => {
            if let Kind::Export { file, .. } = &mut job.kind {
                *file = Some(Arc::new(bytes));
            }
            job.status = Status::Completed;
        }
        Err(e) => {
            job.status = Status::Failed;
            job.status_details = Some(format!("The export file could not be written: {e}"));
        }
    });
}

/// An answer as S3 gives for a link past its time or to nothing: 403 with an XML body.
fn access_denied(message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>"
    );
    let mut response = (StatusCode::FORBIDDEN, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    response
}

/// `GET /user-exports/{job}/{file}?X-Amz-Expires=..&X-Amz-Signature=<token>`: an export's file,
/// for as long as its link lives (`export_link_ttl`, facts: 60 s), without a bearer token, as
/// a pre-signed S3 URL is; after that, or for a link never given, 403 `AccessDenied` as S3
/// answers.
pub(super) async fn download(
    AxState(state): AxState<Shared>,
    Path((job_id, _file)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let token = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "X-Amz-Signature")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let jobs = jobs(&state);
    // Purging dropped the expired links: what is left is live.
    let Some(link) = jobs.links.get(&token).filter(|l| l.job == job_id) else {
        return access_denied("Request has expired");
    };
    let file = jobs.map.get(&link.job).and_then(|job| match &job.kind {
        Kind::Export { file, .. } => file.clone(),
        Kind::Import { .. } => None,
    });
    drop(jobs);
    match file {
        Some(bytes) => {
            let mut response = Body::from(bytes.to_vec()).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/gzip"),
            );
            response
        }
        None => access_denied("Access Denied"),
    }
}
