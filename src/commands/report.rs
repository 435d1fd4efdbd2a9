//! `--report`: the files a run was asked for, checked before anything is sent, and written
//! however the run ends (see [`crate::report`]).

use std::path::{Path, PathBuf};

use crate::cli::{RunStateArgs, SummaryArgs, TargetArgs};
use crate::exit::{RunOutcome, UsageError};
use crate::report::{Files, Witness};

use super::common;

/// The report files of `--report`, refused (exit 2, before any request) unless each is a
/// `.html` or `.json` file the run can write, and none is one of the run's own files
/// (`others`: a flag and its path). A rehearsal writes its own, beside the job's.
pub fn files(
    summary: &SummaryArgs,
    run: &RunStateArgs,
    target: &TargetArgs,
    others: &[(&str, Option<&Path>)],
) -> Result<Files, UsageError> {
    files_of(&summary.report, run.state.as_deref(), target, others)
}

/// [`files`] of the `--report` paths of a command without [`RunStateArgs`] (`undo`), whose
/// state is `state`.
pub fn files_of(
    report: &[PathBuf],
    state: Option<&Path>,
    target: &TargetArgs,
    others: &[(&str, Option<&Path>)],
) -> Result<Files, UsageError> {
    let files = Files::of(report).map_err(|e| UsageError(e.to_string()))?;
    for path in files.paths() {
        let taken = others
            .iter()
            .copied()
            .chain([("--state", state)])
            .find(|(_, other)| *other == Some(path));
        if let Some((flag, _)) = taken {
            return Err(UsageError(format!(
                "--report {}: that is the {flag} file; name a report file of its own",
                path.display()
            )));
        }
    }
    let files = if common::is_embedded_sandbox(target) {
        files.renamed(common::rehearsal_path)
    } else {
        files
    };
    for path in files.paths() {
        common::check_file_path("--report", path)?;
    }
    Ok(files)
}

/// Runs `body` with a [`Witness`], then writes the report of how it ended to `files`.
pub async fn reported<F>(
    files: Files,
    body: impl FnOnce(Witness) -> F,
) -> anyhow::Result<RunOutcome>
where
    F: Future<Output = anyhow::Result<RunOutcome>>,
{
    let witness = Witness::default();
    let result = body(witness.clone()).await;
    finish(&files, &witness, result)
}

/// Writes the report of a run that ended with `result` (if the run made its client and, when
/// it failed, sent at least one API request), then
/// hands the result on. A report that cannot be written fails a run that had not failed; a
/// run that had failed keeps its own error, and the report's is logged.
fn finish(
    files: &Files,
    witness: &Witness,
    result: anyhow::Result<RunOutcome>,
) -> anyhow::Result<RunOutcome> {
    if files.is_empty() {
        return result;
    }
    let ended = match &result {
        Ok(outcome) => Ok(*outcome),
        Err(error) => Err(format!("{error:#}")),
    };
    let Some(report) = witness.report(ended) else {
        return result;
    };
    // A run refused before its first API request (credentials, a locked state) did nothing to
    // report, and leaves nothing behind: it says why on stderr.
    if result.is_err() && report.totals.requests == 0 {
        return result;
    }
    match files.write(&report) {
        Ok(()) => result,
        Err(error) if result.is_ok() => Err(error.into()),
        Err(error) => {
            tracing::warn!(%error, "Cannot write the report.");
            result
        }
    }
}
