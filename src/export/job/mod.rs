//! `export --engine job`: the whole tenant (or one `--connection`) through one Auth0
//! bulk-export job instead of thousands of list pages, written through the same encoders, sink
//! and checkpoint as the API export (see the [export module](super)).
//!
//! A run goes through four stages, each recorded in the checkpoint (`job` in `export.json`)
//! before the next begins, so a killed run picks up where it stopped:
//!
//! 1. **Running.** The job is created (`format: "json"`, the profile fields the output needs:
//!    [`job_fields`]) and its id saved at once; a resumed run polls that job instead of making
//!    another. A job the tenant no longer knows (Auth0 forgets jobs after 24 h) is made again,
//!    as nothing of it is in the output yet; one that failed is forgotten, and the error says to
//!    run again. (A run killed between the tenant's answer and the checkpoint leaves a job
//!    nobody reads: it changes nothing, and the tenant purges it.)
//! 2. **Catching up.** The job reads the tenant at its own pace, so a user changed while it
//!    ran may be in its file as it was before. Once it completes, an API pass (the export
//!    walk, `updated_at` at or after the job's creation less [`CATCH_UP_REACH_BACK`]) writes
//!    every user changed since then to the output first, and records their `user_id`s
//!    ([`caught_up`]). The walk resumes as an API export does, from the plan in the checkpoint.
//! 3. **Reading.** The job's file is streamed (fresh link in hand, see `file.rs`): gunzipped as
//!    it arrives, cut into lines, and written in batches through the encoder; a user the
//!    catch-up wrote is left out (its copy there is the newer one). The checkpoint counts the
//!    lines done. The file of a job never changes, so a transfer that breaks off, a link that
//!    expired (facts: 60 s; each fetch of the job gives a fresh one) or a resumed run fetches
//!    the file again and passes over the lines done: every user is written exactly once.
//! 4. **Read.** Every line is done; the output is finished as any export's (renamed into
//!    place; a flattened CSV's second pass).
//!
//! So the output holds the same users as an API export of the tenant, each once and as the
//! API shows it at the end of the run, but in another order: the catch-up's users first (by
//! `created_at`), then the file's in the file's order. Two differences no pass can see: a user
//! deleted while the job ran is in its file, and so in the output (an API export that read
//! the user's page before the delete keeps it too); and a root attribute outside the profile
//! fields the job names (an identity provider's own, say `locale`) is in an API export only.
//!
//! **Memory.** One batch of the file (at most 500 users or about 1 MiB) and
//! the line being cut are held at a time, whatever the tenant's size. The catch-up holds one
//! window of pages, as an API export does, and the `user_id`s of the users it wrote (about
//! 100 bytes each): a tenant's changes during one job, not its size. The ids are kept on disk
//! too, in the run state, for a resumed run.

pub mod caught_up;
mod file;
mod lines;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::api::{ApiError, Client, ExportJob, Job, ListQuery};
use crate::format::csv::PROFILE_COLUMNS;

use super::checkpoint::{self, Checkpoint};
use super::encode::Shape;
use super::output::Batches;
use super::walk::{self, Cursor, WalkError};
use super::{ExportError, ExportSpec, build_query};

use caught_up::CaughtUp;

/// How far before the job's creation the catch-up pass reaches back. Auth0 does not say which
/// view of the users a job reads; its search is eventually consistent (facts, "GET
/// /api/v2/users"), and if the job reads that view, a change made shortly before the job was
/// created may be missing from its file. Five minutes cover the lag with room to spare, as
/// `--index-lag`'s default does for `--since last`; they cost only the users changed in those
/// minutes, read twice.
pub const CATCH_UP_REACH_BACK: Duration = Duration::from_secs(300);

/// What `--engine job` needs to know before it starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobSettings {
    /// `--connection`'s id (facts: a job names its connection by id).
    pub connection_id: Option<String>,
}

/// The job's part of the checkpoint. Fields are named for what they count, so the file reads
/// as the run's story: `{"id": "job_…", "stage": "reading", "caught_up": 12, "lines": 30500,
/// "replaced": 9, …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRun {
    /// The export job's id, saved as soon as the tenant accepted it.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// When the tenant made the job (or, if it did not say, when it was asked to).
    pub created_at: String,
    pub stage: Stage,
    /// The users the tenant listed when the job was made: the progress bar's total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<u64>,
    /// Users the catch-up pass wrote (their ids in [`caught_up::FILE`]).
    #[serde(default)]
    pub caught_up: u64,
    /// Lines of the job's file done: written, or left out as caught up.
    #[serde(default)]
    pub lines: u64,
    /// Of those lines, the users left out because the catch-up wrote them.
    #[serde(default)]
    pub replaced: u64,
}

/// Where a job export is (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Running,
    CatchingUp,
    Reading,
    Read,
}

/// What the summary says of the job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobReport {
    pub id: String,
    /// Users read again by the catch-up pass.
    pub caught_up: u64,
    /// Of the job file's users, those the catch-up's copy replaced.
    pub replaced: u64,
}

impl JobReport {
    pub fn of(run: &JobRun) -> JobReport {
        JobReport {
            id: run.id.clone(),
            caught_up: run.caught_up,
            replaced: run.replaced,
        }
    }
}

/// Why a job export stopped, beyond what any export meets (the API, the output, the state).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("export job {id} failed: {details}; run the same command again to start a new job")]
    Failed { id: String, details: String },
    #[error(
        "export job {id} is no longer known to the tenant (Auth0 forgets a job 24 h after it \
         was made), and part of the export is already written from it; run again with --fresh \
         to start over with a new job"
    )]
    Gone { id: String },
    #[error("export job {id} completed without a link to its file (no `location`)")]
    NoLink { id: String },
    /// The link or the file is at fault, and no other try would mend it.
    #[error("export job {id}'s file: {message}")]
    File { id: String, message: String },
    #[error(
        "export job {id}'s file could not be read, {tries} tries in a row (each with a fresh \
         link); last: {last}; run the same command again to resume"
    )]
    Download {
        id: String,
        tries: u32,
        last: String,
    },
    #[error("export job {id}'s file, line {line}: {message}")]
    Line {
        id: String,
        line: u64,
        message: String,
    },
    #[error(
        "export job {id}'s file has {found} lines, but an earlier run read {done} of it: the \
         file changed; start over with --fresh"
    )]
    Shorter { id: String, found: u64, done: u64 },
}

/// What the job engine needs of the tenant before anything is written: with `--connection`,
/// the connection's id, which needs `read:connections` (a token without it is refused here,
/// exit 2, rather than by the tenant halfway).
pub async fn prepare(
    client: &Client,
    connection: Option<&str>,
) -> Result<JobSettings, ExportError> {
    let Some(name) = connection else {
        return Ok(JobSettings::default());
    };
    if let Some(scopes) = client.scopes().await.map_err(api)?
        && !scopes.iter().any(|s| s == "read:connections")
    {
        return Err(ExportError::Usage(format!(
            "--connection {name} with --engine job needs the read:connections scope (a job \
             names its connection by id); grant it to the application in the Auth0 dashboard \
             (APIs > Auth0 Management API > Machine to Machine Applications), or export every \
             user without --connection"
        )));
    }
    match client.connection_by_name(name).await.map_err(api)? {
        Some(found) => Ok(JobSettings {
            connection_id: Some(found.id),
        }),
        None => Err(ExportError::Usage(format!(
            "--connection {name}: the tenant has no connection of that name"
        ))),
    }
}

/// The profile fields the job's file must carry for the output `shape`: every profile field
/// (Auth0's job exports a predefined few without `fields`), or the roots `--fields` selects,
/// less the roots `--exclude-fields` names; `user_id` always, to match the catch-up's users.
pub fn job_fields(shape: &Shape) -> Vec<&'static str> {
    fn root(field: &str) -> &str {
        field.split('.').next().unwrap_or_default()
    }
    PROFILE_COLUMNS
        .iter()
        .copied()
        .filter(|field| {
            *field == "user_id"
                || match &shape.include {
                    Some(include) => include.iter().any(|f| root(f) == *field),
                    // A metadata path leaves the rest of its object in: the job asks for it.
                    None => !shape.exclude.iter().any(|f| f == field),
                }
        })
        .collect()
}

/// Runs the stages of a job export from where the checkpoint says (see the module doc).
/// `link` is passed from the poll that saw the job complete to the read, which fetches a
/// fresh one when it has expired meanwhile.
pub(super) async fn export(
    spec: &ExportSpec,
    settings: &JobSettings,
    client: &Client,
    out: &mut Batches<'_>,
    cancel: &CancellationToken,
) -> Result<(), ExportError> {
    let mut link = None;
    loop {
        let Some(run) = out.checkpoint.job.clone() else {
            create(spec, settings, client, out).await?;
            continue;
        };
        match run.stage {
            Stage::Running => match client.wait_for_job(&run.id, polled).await.map_err(api)? {
                Some(job) if job.status == "completed" => {
                    link = job.location;
                    catch_up_from(out.checkpoint, &run)?;
                    checkpoint::save(out.state, out.checkpoint)?;
                    tracing::info!(
                        "Export job {} completed; reading the users changed since {} through \
                         the API (the catch-up pass).",
                        run.id,
                        out.checkpoint.since.as_deref().unwrap_or_default()
                    );
                }
                Some(job) => {
                    // Forgotten, so the next run makes a new job rather than poll this one.
                    out.checkpoint.job = None;
                    checkpoint::save(out.state, out.checkpoint)?;
                    return Err(JobError::Failed {
                        id: run.id,
                        details: job
                            .status_details
                            .unwrap_or_else(|| format!("its status is {}", job.status)),
                    }
                    .into());
                }
                None => {
                    tracing::warn!(
                        "Export job {} is unknown to the tenant (purged?); making a new one.",
                        run.id
                    );
                    out.checkpoint.job = None;
                }
            },
            Stage::CatchingUp => {
                let caught = CaughtUp::open(out.state, out.checkpoint.users)
                    .map_err(|e| state_file(out, e))?;
                out.caught_up = Some(caught);
                // The catch-up's windows are not listed in a report: the job's file is most of the run.
                super::export_walk(spec, client, out, &mut Vec::new(), cancel).await?;
                let users = out.checkpoint.users;
                let job = out.checkpoint.job.as_mut().expect("a job export has a job");
                job.caught_up = users;
                job.stage = Stage::Reading;
                checkpoint::save(out.state, out.checkpoint)?;
            }
            Stage::Reading => {
                let caught = match out.caught_up.take() {
                    Some(caught) => caught,
                    None => {
                        CaughtUp::open(out.state, run.caught_up).map_err(|e| state_file(out, e))?
                    }
                };
                tracing::info!(
                    "Reading export job {}'s file ({} users already written).",
                    run.id,
                    out.checkpoint.users
                );
                if let Some(expected) = run.expected {
                    out.progress.set_total(expected.max(out.checkpoint.users));
                }
                out.progress.set_done(out.checkpoint.users);
                file::read(client, out, &caught, link.take(), cancel).await?;
                let job = out.checkpoint.job.as_mut().expect("a job export has a job");
                job.stage = Stage::Read;
                checkpoint::save(out.state, out.checkpoint)?;
            }
            Stage::Read => return Ok(()),
        }
    }
}

/// Creates the job and saves its id before anything else happens.
async fn create(
    spec: &ExportSpec,
    settings: &JobSettings,
    client: &Client,
    out: &mut Batches<'_>,
) -> Result<(), ExportError> {
    // The users the tenant lists now (one request): the progress bar's total.
    let count = ListQuery {
        q: build_query(spec, None),
        per_page: 1,
        fields: Some(("user_id".into(), true)),
        ..ListQuery::default()
    };
    let expected = client.list_users(&count).await.map_err(api)?.total;
    out.progress.set_total(expected);
    let fields = job_fields(&spec.encoder.shape);
    let asked = Utc::now();
    let job: Job = client
        .create_export_job(&ExportJob {
            connection_id: settings.connection_id.as_deref(),
            fields: &fields,
        })
        .await
        .map_err(api)?;
    let created_at = job
        .created_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(asked, |t| t.with_timezone(&Utc));
    out.checkpoint.job = Some(JobRun {
        id: job.id.clone(),
        connection_id: settings.connection_id.clone(),
        created_at: walk::canonical(created_at),
        stage: Stage::Running,
        expected: Some(expected),
        caught_up: 0,
        lines: 0,
        replaced: 0,
    });
    checkpoint::save(out.state, out.checkpoint)?;
    tracing::info!(
        "Export job {} made for {} users ({} fields each); waiting for it.",
        job.id,
        expected,
        fields.len()
    );
    Ok(())
}

/// Sets the checkpoint up for the catch-up walk: users updated since the job's creation less
/// [`CATCH_UP_REACH_BACK`], created before now (the walk's upper bound).
fn catch_up_from(checkpoint: &mut Checkpoint, run: &JobRun) -> Result<(), ExportError> {
    let created = DateTime::parse_from_rfc3339(&run.created_at)
        .map_err(|e| {
            ExportError::Usage(format!(
                "the run state's job {} has a bad created_at {:?} ({e}); start over with --fresh",
                run.id, run.created_at
            ))
        })?
        .with_timezone(&Utc);
    let reach = chrono::Duration::from_std(CATCH_UP_REACH_BACK).expect("a few minutes");
    checkpoint.since = Some(walk::canonical(created - reach));
    checkpoint.upper = walk::canonical(Utc::now());
    checkpoint.cursor = Some(Cursor::start());
    checkpoint.walk = None;
    if let Some(job) = checkpoint.job.as_mut() {
        job.stage = Stage::CatchingUp;
    }
    Ok(())
}

/// Every answer of a poll, for the log.
fn polled(job: &Job) {
    match job.percentage_done {
        Some(done) => tracing::debug!("Export job {} is {} ({done}% done).", job.id, job.status),
        None => tracing::debug!("Export job {} is {}.", job.id, job.status),
    }
}

/// An API error as the export reports it (so an interrupted wait ends the run as interrupted).
fn api(error: ApiError) -> ExportError {
    ExportError::Walk(WalkError::Api(error))
}

fn state_file(out: &Batches<'_>, source: std::io::Error) -> ExportError {
    ExportError::Output {
        path: out.state.map_or("the run state".into(), |s| {
            s.file(caught_up::FILE).display().to_string()
        }),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_asks_for_every_profile_field_the_output_keeps_and_always_the_user_id() {
        assert_eq!(job_fields(&Shape::default()), PROFILE_COLUMNS.to_vec());
        let include = Shape {
            include: Some(vec!["email".into(), "app_metadata.plan".into()]),
            ..Shape::default()
        };
        assert_eq!(job_fields(&include), ["user_id", "email", "app_metadata"]);
        let exclude = Shape {
            exclude: vec![
                "user_id".into(),
                "identities".into(),
                "user_metadata.secret".into(),
            ],
            ..Shape::default()
        };
        let fields = job_fields(&exclude);
        assert!(fields.contains(&"user_id") && fields.contains(&"user_metadata"));
        assert!(!fields.contains(&"identities"));
        assert_eq!(fields.len(), PROFILE_COLUMNS.len() - 1);
    }

    #[test]
    fn the_catch_up_reaches_back_before_the_job_and_walks_from_the_start() {
        let run = JobRun {
            id: "job_1".into(),
            connection_id: None,
            created_at: "2025-04-17T02:44:22.723Z".into(),
            stage: Stage::Running,
            expected: None,
            caught_up: 0,
            lines: 0,
            replaced: 0,
        };
        let text = r#"{"fingerprint":"f","upper":"2025-01-01T00:00:00.000Z","since":null,"cursor":null,"lines_done":0,"bytes":0,"users":0,"not_found":0,"windows":0,"completed":false,"last_completed_upper":null}"#;
        let mut checkpoint: Checkpoint = serde_json::from_str(text).unwrap();
        checkpoint.job = Some(run.clone());
        catch_up_from(&mut checkpoint, &run).unwrap();
        assert_eq!(
            checkpoint.since.as_deref(),
            Some("2025-04-17T02:39:22.723Z")
        );
        assert_eq!(checkpoint.cursor, Some(Cursor::start()));
        assert!(checkpoint.upper.as_str() > "2025-04-17");
        assert_eq!(checkpoint.job.unwrap().stage, Stage::CatchingUp);
    }
}
