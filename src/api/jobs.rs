//! The calls of Auth0's bulk jobs: connections (a job names its connection by id), import jobs
//! and their per-user errors, export jobs, and the state of either while it runs.

use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::Body;
use super::{ApiError, Client, decode, encode_segment};

/// A connection, as `GET /api/v2/connections` lists it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Connection {
    pub id: String,
    pub name: String,
    /// `auth0` for a database connection, the only kind an import job takes.
    pub strategy: String,
}

/// A job, as `POST /api/v2/jobs/users-imports` (or `users-exports`) and `GET /api/v2/jobs/{id}`
/// describe it.
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    pub id: String,
    /// `pending`, `processing`, `completed` or `failed`.
    pub status: String,
    /// When the tenant made the job (spec: optional).
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub summary: Option<JobSummary>,
    #[serde(default)]
    pub time_left_seconds: Option<u64>,
    #[serde(default)]
    pub percentage_done: Option<u64>,
    /// A completed export's file: a link that works for a short while (facts: 60 s), and is a
    /// secret while it does. Each fetch of the job gives a fresh one.
    #[serde(default)]
    pub location: Option<String>,
    /// Why a job failed, in the tenant's words.
    #[serde(default)]
    pub status_details: Option<String>,
}

impl Job {
    /// Whether the job has ended (completed or failed).
    pub fn ended(&self) -> bool {
        matches!(self.status.as_str(), "completed" | "failed")
    }
}

/// What a completed import job did, in counts (facts: a job reports counts, not user ids).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub struct JobSummary {
    #[serde(default)]
    pub failed: u64,
    #[serde(default)]
    pub updated: u64,
    #[serde(default)]
    pub inserted: u64,
    #[serde(default)]
    pub total: u64,
}

/// One user a job could not take: the user as sent (hash values shown as `*****`) and why.
#[derive(Debug, Clone, Deserialize)]
pub struct JobUserError {
    pub user: Value,
    pub errors: Vec<JobErrorDetail>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JobErrorDetail {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub path: Option<String>,
}

/// An export job to submit: always `format: "json"` (NDJSON, gzipped), the one format that
/// carries objects and arrays whole.
pub struct ExportJob<'a> {
    /// Only the users of this connection; `None`: every user of the tenant.
    pub connection_id: Option<&'a str>,
    /// The profile fields each line carries (facts: without `fields`, a predefined set).
    pub fields: &'a [&'a str],
}

/// The first and the longest pause between two polls of a job: a job of a few users ends in a
/// second, one of a million in tens of minutes, and a poll every 10 s at most costs nothing
/// next to the rate limit.
const POLL_FIRST: Duration = Duration::from_millis(500);
const POLL_CAP: Duration = Duration::from_secs(10);

/// An import job to submit.
pub struct ImportJob<'a> {
    pub connection_id: &'a str,
    /// The users file: a JSON array, at most 512,000 bytes.
    pub users: &'a Bytes,
    pub upsert: bool,
    pub external_id: Option<&'a str>,
}

impl Client {
    /// `GET /api/v2/connections?name=…`: the connection of that name, if there is one.
    pub async fn connection_by_name(&self, name: &str) -> Result<Option<Connection>, ApiError> {
        let query = [
            ("name", name.to_string()),
            ("fields", "id,name,strategy".to_string()),
        ];
        let (_, bytes) = self
            .send(Method::GET, "/connections", &query, Body::None)
            .await?;
        let found: Vec<Connection> = decode(&bytes, "GET /api/v2/connections")?;
        Ok(found.into_iter().find(|c| c.name == name))
    }

    /// `POST /api/v2/jobs/users-imports`. Facts ("Bulk import jobs"): the completion email is
    /// on by default, and a migration must not send one, so it is always turned off here.
    /// A third job while two are active is `ApiError::Status` 429 (see
    /// [`crate::net::retry::is_job_limit`]), for the caller to wait out. The flag says an
    /// earlier attempt failed in transit: it may have made a job of its own.
    pub async fn create_import_job(&self, job: &ImportJob<'_>) -> Result<(Job, bool), ApiError> {
        let mut fields = vec![
            ("connection_id", job.connection_id.to_string()),
            ("upsert", job.upsert.to_string()),
            ("send_completion_email", "false".to_string()),
        ];
        if let Some(external_id) = job.external_id {
            fields.push(("external_id", external_id.to_string()));
        }
        let body = Body::Multipart {
            fields: &fields,
            file: ("users", "users.json", job.users),
        };
        let (_, bytes, retried) = self
            .send_retried(Method::POST, "/jobs/users-imports", &[], body)
            .await?;
        Ok((decode(&bytes, "POST /api/v2/jobs/users-imports")?, retried))
    }

    /// `POST /api/v2/jobs/users-exports`. Not idempotent: an attempt that failed in transit
    /// may have made a job of its own, which is left to the tenant (an export job changes
    /// nothing, and the tenant purges it after 24 h).
    pub async fn create_export_job(&self, job: &ExportJob<'_>) -> Result<Job, ApiError> {
        let fields: Vec<Value> = job.fields.iter().map(|f| json!({"name": f})).collect();
        let mut body = json!({"format": "json", "fields": fields});
        if let Some(id) = job.connection_id {
            body["connection_id"] = id.into();
        }
        let (_, bytes) = self
            .send(Method::POST, "/jobs/users-exports", &[], Body::Json(&body))
            .await?;
        decode(&bytes, "POST /api/v2/jobs/users-exports")
    }

    /// Polls `GET /api/v2/jobs/{id}` until the job ends (completed or failed): after the job's
    /// own estimate when it gives one (`time_left_seconds`, between `POLL_FIRST` and
    /// `POLL_CAP`, so a wrong estimate costs little), else after a pause that doubles from
    /// the first to the cap. `seen` hears every answer (for progress). `None` once the job is
    /// unknown or purged; `ApiError::Cancelled` when the run is interrupted meanwhile.
    pub async fn wait_for_job(
        &self,
        id: &str,
        mut seen: impl FnMut(&Job),
    ) -> Result<Option<Job>, ApiError> {
        let mut pause = POLL_FIRST;
        loop {
            let Some(job) = self.get_job(id).await? else {
                return Ok(None);
            };
            seen(&job);
            if job.ended() {
                return Ok(Some(job));
            }
            let wait = match job.time_left_seconds {
                Some(left) => Duration::from_secs(left).clamp(POLL_FIRST, POLL_CAP),
                None => pause,
            };
            self.sleep(wait).await?;
            pause = (pause * 2).min(POLL_CAP);
        }
    }

    /// `GET /api/v2/jobs/{id}`; `None` once the job is unknown or purged (404).
    pub async fn get_job(&self, id: &str) -> Result<Option<Job>, ApiError> {
        let path = format!("/jobs/{}", encode_segment(id));
        match self.send(Method::GET, &path, &[], Body::None).await {
            Ok((_, bytes)) => decode(&bytes, "GET /api/v2/jobs/{id}").map(Some),
            Err(ApiError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /api/v2/jobs/{id}/errors`: the users the job could not take (none: 204).
    pub async fn job_errors(&self, id: &str) -> Result<Vec<JobUserError>, ApiError> {
        let path = format!("/jobs/{}/errors", encode_segment(id));
        let (status, bytes) = self.send(Method::GET, &path, &[], Body::None).await?;
        if status == 204 || bytes.is_empty() {
            return Ok(Vec::new());
        }
        decode(&bytes, "GET /api/v2/jobs/{id}/errors")
    }
}
