//! Reading the job's file into the output: a link (the one the completing poll gave, else a
//! fresh one), the body streamed through [`GzLines`], each line a user written in batches
//! through the export's encoder and sink, with the lines done counted in the checkpoint.
//!
//! What can go wrong, and what is done:
//! - the link expired or is refused (4xx; S3 answers 403 `AccessDenied`): fetch the job again
//!   for a fresh link and start over;
//! - the file's host is unavailable (5xx) or the transfer breaks off (a dropped connection, a
//!   stalled read, gzip cut short): the same, after a pause;
//! - either, [`MAX_TRIES`] times in a row without a line done in between: the run stops
//!   (exit 1), and running it again resumes;
//! - a link that is not https (unless loopback), a redirect, a certificate the trust store
//!   refuses, a line that is not a user: the run stops, as no try can mend it.
//!
//! Each start over passes over the lines the checkpoint counts as done: the job's file never
//! changes, so the same lines come back in the same order.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::api::{ApiError, Client, DownloadError, Link, Listed};

use super::super::ExportError;
use super::super::output::Batches;
use super::caught_up::CaughtUp;
use super::lines::{GzLines, LinesError};
use super::{JobError, JobRun, api};

/// The most users of the file written as one batch (one gzip member, one checkpoint).
pub const BATCH_USERS: usize = 500;
/// The most bytes of users' JSON in one batch.
const BATCH_BYTES: usize = 1024 * 1024;

/// Tries of the file in a row without a line done in between before the run gives up: with
/// the pauses below, about a minute of a host that keeps failing.
const MAX_TRIES: u32 = 8;
/// The pause before another try after the host failed: doubled each time, from the first, up
/// to the longest.
const PAUSE_FIRST: Duration = Duration::from_millis(500);
const PAUSE_CAP: Duration = Duration::from_secs(30);

/// Writes the job's file to the output from the line the checkpoint counts on.
pub(super) async fn read(
    client: &Client,
    out: &mut Batches<'_>,
    caught: &CaughtUp,
    mut link: Option<String>,
    cancel: &CancellationToken,
) -> Result<(), ExportError> {
    let id = job(out).id.clone();
    let mut tries = 0u32;
    loop {
        let text = match link.take() {
            Some(text) => text,
            None => fresh_link(client, &id).await?,
        };
        let link = Link::parse(&text).map_err(|e| JobError::File {
            id: id.clone(),
            message: e.to_string(),
        })?;
        let before = job(out).lines;
        let failure = match attempt(client, &link, out, caught, cancel).await {
            Ok(()) => return Ok(()),
            Err(Attempt::Stop(e)) => return Err(e),
            Err(Attempt::Fatal(message)) => return Err(JobError::File { id, message }.into()),
            Err(Attempt::Again(failure)) => failure,
        };
        if job(out).lines > before {
            tries = 0;
        }
        tries += 1;
        if tries >= MAX_TRIES {
            return Err(JobError::Download {
                id,
                tries,
                last: failure.to_string(),
            }
            .into());
        }
        let done = job(out).lines;
        if matches!(failure, Failure::Download(DownloadError::Refused { .. })) {
            tracing::info!(
                "{failure}; fetching a fresh link to the job's file ({done} lines of it done)."
            );
        } else {
            let pause = (PAUSE_FIRST * 2u32.pow(tries - 1)).min(PAUSE_CAP);
            tracing::warn!(
                "{failure}; trying again in {pause:?} with a fresh link ({done} lines of the \
                 file done)."
            );
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = cancel.cancelled() => return Err(api(ApiError::Cancelled)),
            }
        }
    }
}

/// A fresh link to the completed job's file (facts: each fetch of the job gives one).
async fn fresh_link(client: &Client, id: &str) -> Result<String, ExportError> {
    let gone = || JobError::Gone { id: id.to_string() };
    let job = client.get_job(id).await.map_err(api)?.ok_or_else(gone)?;
    job.location
        .ok_or_else(|| JobError::NoLink { id: id.to_string() }.into())
}

/// Why one try of the file ended early.
enum Attempt {
    /// Another try, with a fresh link, may do better.
    Again(Failure),
    /// Nothing will: the run stops.
    Stop(ExportError),
    /// Nothing will, and the file is at fault: the run stops, naming the job.
    Fatal(String),
}

/// What went wrong in a try worth another.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Download(DownloadError),
    #[error("the job's file broke off: {0}")]
    Lines(LinesError),
}

impl From<DownloadError> for Attempt {
    fn from(error: DownloadError) -> Attempt {
        // A refused link has expired (or was never good): a fresh one may not be.
        if error.is_transient() || matches!(error, DownloadError::Refused { .. }) {
            Attempt::Again(Failure::Download(error))
        } else {
            Attempt::Fatal(error.to_string())
        }
    }
}

impl From<LinesError> for Attempt {
    fn from(error: LinesError) -> Attempt {
        match error {
            // A body cut short or garbled in transit; another download may be whole.
            LinesError::Gzip(_) => Attempt::Again(Failure::Lines(error)),
            LinesError::TooLong { .. } => Attempt::Fatal(error.to_string()),
        }
    }
}

impl From<ExportError> for Attempt {
    fn from(error: ExportError) -> Attempt {
        Attempt::Stop(error)
    }
}

/// One try: the whole file, from the first line not done.
async fn attempt(
    client: &Client,
    link: &Link,
    out: &mut Batches<'_>,
    caught: &CaughtUp,
    cancel: &CancellationToken,
) -> Result<(), Attempt> {
    let mut download = client.download(link).await?;
    let done = job(out).lines;
    let mut batch = Batch::default();
    // Lines are taken as the gzip gives them; a full batch is written between two pieces (so
    // a batch may pass its size by one piece's lines).
    let take = |batch: &mut Batch, out: &Batches<'_>, number: u64, line: &[u8]| {
        if number > done {
            batch.take(number, line, caught, job(out))?;
        }
        Ok::<(), Attempt>(())
    };
    let mut cut = GzLines::default();
    loop {
        let piece = tokio::select! {
            piece = download.chunk() => piece?,
            _ = cancel.cancelled() => return Err(Attempt::Stop(api(ApiError::Cancelled))),
        };
        match piece {
            Some(piece) => cut.feed(&piece, &mut |n, l| take(&mut batch, out, n, l))?,
            None => break,
        }
        if batch.full() {
            batch.write(out).await?;
        }
    }
    let found = cut.finish(&mut |n, l| take(&mut batch, out, n, l))?;
    if found < done {
        let id = job(out).id.clone();
        return Err(Attempt::Stop(JobError::Shorter { id, found, done }.into()));
    }
    // The rest, and the lines left out since the last batch.
    batch.write(out).await?;
    Ok(())
}

/// Users of the file waiting to be written, and the lines they stand for.
#[derive(Default)]
struct Batch {
    users: Vec<Listed>,
    bytes: usize,
    /// The last line taken (done once the batch is written).
    last: Option<u64>,
    /// Lines taken that the catch-up's copy replaces.
    replaced: u64,
}

impl Batch {
    /// Takes line `number` of the file: a user to write, or one the catch-up wrote already.
    fn take(
        &mut self,
        number: u64,
        line: &[u8],
        caught: &CaughtUp,
        run: &JobRun,
    ) -> Result<(), ExportError> {
        self.last = Some(number);
        let bad = |message: String| JobError::Line {
            id: run.id.clone(),
            line: number,
            message,
        };
        let text = std::str::from_utf8(line)
            .map_err(|e| bad(format!("not UTF-8 ({e})")))?
            .trim_end_matches('\r');
        if text.trim().is_empty() {
            return Ok(());
        }
        let user = Listed::from_json(text).map_err(|e| bad(format!("not a user ({e})")))?;
        if caught.contains(&user.user_id) {
            self.replaced += 1;
        } else {
            self.bytes += text.len();
            self.users.push(user);
        }
        Ok(())
    }

    fn full(&self) -> bool {
        self.users.len() >= BATCH_USERS || self.bytes >= BATCH_BYTES
    }

    /// Writes the batch and counts its lines done, in one checkpoint; then starts a new one.
    async fn write(&mut self, out: &mut Batches<'_>) -> Result<(), ExportError> {
        let Some(last) = self.last else {
            return Ok(());
        };
        let replaced = self.replaced;
        out.write(&self.users, self.users.len() as u64, |checkpoint| {
            let job = checkpoint.job.as_mut().expect("a job export has a job");
            job.lines = last;
            job.replaced += replaced;
        })
        .await?;
        *self = Batch::default();
        Ok(())
    }
}

fn job<'a>(out: &'a Batches<'_>) -> &'a JobRun {
    out.checkpoint.job.as_ref().expect("a job export has a job")
}
