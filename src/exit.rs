//! Exit codes: the one place that decides how the process ends.
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | finished; every record applied, skipped or unchanged |
//! | 1    | fatal error (tenant down past the retry budget, I/O failure); the run can resume |
//! | 2    | bad usage or configuration (flags, files, refused credentials, a tenant never reached), found before anything is written |
//! | 3    | finished, but some records were rejected (see the rejects file) |
//! | 130  | interrupted (Ctrl-C or SIGTERM) after saving the checkpoint |
//!
//! Commands and stages say what happened (a [`RunOutcome`], or an error such as [`UsageError`]);
//! only [`code`] and [`for_clap`] turn that into a number. (Named for the run, not `Outcome`:
//! that is a record's outcome in `import`.)

use std::process::ExitCode;

/// How a run ended when no error stopped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// Finished; every record applied, skipped or unchanged.
    Success,
    /// Finished, but some records were rejected (or listed users not found).
    Rejected,
    /// Stopped by a signal, its state saved (or, on a second signal, at once).
    Interrupted,
}

/// Bad usage or configuration: a clear message and exit code 2, before anything is written.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code of a command: its outcome, or the error that stopped it.
pub fn code(result: &anyhow::Result<RunOutcome>) -> ExitCode {
    ExitCode::from(number(result))
}

/// The exit code of a command line clap refused (2), or of `--help` and `--version` (0).
pub fn for_clap(error: &clap::Error) -> ExitCode {
    ExitCode::from(if error.use_stderr() { 2 } else { 0 })
}

fn number(result: &anyhow::Result<RunOutcome>) -> u8 {
    match result {
        Ok(RunOutcome::Success) => 0,
        Ok(RunOutcome::Rejected) => 3,
        Ok(RunOutcome::Interrupted) => 130,
        Err(error) if is_usage(error) => 2,
        Err(_) => 1,
    }
}

/// Usage errors anywhere in the chain are configuration, and so is a damaged run state or one
/// of another tenant (running again cannot help; starting over is the user's call).
fn is_usage(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        e.is::<UsageError>()
            || matches!(
                e.downcast_ref::<crate::state::StateError>(),
                Some(
                    crate::state::StateError::Corrupt { .. }
                        | crate::state::StateError::Version { .. }
                        | crate::state::StateError::OtherTenant { .. }
                )
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_errors_map_to_the_documented_codes() {
        assert_eq!(number(&Ok(RunOutcome::Success)), 0);
        assert_eq!(number(&Err(anyhow::anyhow!("tenant down"))), 1);
        let usage = anyhow::Error::new(UsageError("bad flag".into())).context("while starting");
        assert_eq!(number(&Err(usage)), 2);
        assert_eq!(number(&Ok(RunOutcome::Rejected)), 3);
        assert_eq!(number(&Ok(RunOutcome::Interrupted)), 130);
    }
}
