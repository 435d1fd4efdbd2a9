//! Exit codes: the one place that decides how the process ends.
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | finished; every record applied, skipped or unchanged |
//! | 1    | fatal error (tenant down past the retry budget, I/O failure); the run can resume |
//! | 2    | bad usage or configuration (flags, files, refused credentials, a tenant never reached), found before anything is written |
//! | 3    | finished, but some records were rejected (see the rejects file) |
//! | 130  | interrupted (Ctrl-C or SIGTERM) after saving the checkpoint |

use std::process::ExitCode;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success,
    Fatal,
    Usage,
    Rejected,
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Fatal => 1,
            Exit::Usage => 2,
            Exit::Rejected => 3,
            Exit::Interrupted => 130,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

/// Bad usage or configuration: a clear message and exit code 2, before anything is written.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Maps a failed run to its exit code: usage errors anywhere in the chain are 2, and so is a
/// damaged run state or one of another tenant (running again cannot help; starting over is the user's call); all else 1.
pub fn for_error(error: &anyhow::Error) -> Exit {
    let usage = error.chain().any(|e| {
        e.is::<UsageError>()
            || matches!(
                e.downcast_ref::<crate::state::StateError>(),
                Some(
                    crate::state::StateError::Corrupt { .. }
                        | crate::state::StateError::Version { .. }
                        | crate::state::StateError::OtherTenant { .. }
                )
            )
    });
    if usage { Exit::Usage } else { Exit::Fatal }
}
