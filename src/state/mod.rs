//! The run state: what a job keeps between runs so that a resumed run takes up where the
//! last one stopped, and never mistakes another job's state for its own.
//!
//! - [`dir`]: the private, locked directory and its atomically replaced, versioned files.
//! - [`log`]: append-only NDJSON logs (the import ledger, the jobs journal), read back safely.
//! - [`resume`]: whether a saved state is this run's: the same tenant (never crossed, not even
//!   by `--fresh`), and, for an unfinished run, the same job, with what changed in words.
//!
//! Each command keeps its own files in the state (`export.json`; `import.json` and its ledger).

pub mod dir;
pub mod log;
pub mod resume;

use std::path::PathBuf;

pub use dir::{
    StateDir, beside, create_private, open_private, open_vouched, peek, private_options, sync_dir,
    write_atomic,
};
pub use resume::{EMBEDDED_SANDBOX, check_tenant, tenant_of_fingerprint};

/// What can go wrong with the state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot use the state directory {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "another run holds the state directory {0} (a second run of the same job would corrupt \
         it); wait for it to finish, or use another --state"
    )]
    Locked(PathBuf),
    #[error(
        "the state file {path} is unreadable ({message}); it may be from another version of \
         auth0-bulk or damaged. Start over with --fresh"
    )]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "the state in {path} belongs to {}, but this run is for {}. A state is bound to its \
         tenant and is never used for another; pass another --state (or, to start over for \
         {}, remove {path})",
        tenant_name(saved),
        tenant_name(this),
        tenant_name(this)
    )]
    OtherTenant {
        path: PathBuf,
        saved: String,
        this: String,
    },
    #[error(
        "the state file {path} is in format version {found}, but this auth0-bulk reads version \
         {expected}: {by}. Finish that run with the auth0-bulk that started it, or start over \
         with --fresh"
    )]
    Version {
        path: PathBuf,
        found: String,
        expected: &'static str,
        by: &'static str,
    },
}

/// How a tenant is named in messages: its URL, or the embedded sandbox.
fn tenant_name(domain: &str) -> String {
    if domain == EMBEDDED_SANDBOX {
        "the embedded sandbox tenant (--domain sandbox)".into()
    } else {
        domain.to_string()
    }
}
