//! Whether a saved state is this run's. A state is bound to one tenant: a run for another
//! (or for the embedded sandbox) never reads, writes or advances it, so a rehearsal can never
//! move a real job's marks.

use std::path::Path;

use super::StateError;

/// What a state records as its tenant for the embedded sandbox (`--domain sandbox`).
pub const EMBEDDED_SANDBOX: &str = "sandbox";

/// Refuses a state recorded for another tenant than `this`: it is never read, written or
/// advanced by this run (`--fresh` included, which would overwrite it).
pub fn check_tenant(dir: &Path, saved: Option<&str>, this: &str) -> Result<(), StateError> {
    match saved {
        Some(saved) if saved != this => Err(StateError::OtherTenant {
            path: dir.to_path_buf(),
            saved: saved.to_string(),
            this: this.to_string(),
        }),
        _ => Ok(()),
    }
}

/// The tenant a fingerprint line (`domain=… …`) of an older state names.
pub fn tenant_of_fingerprint(fingerprint: &str) -> Option<String> {
    let rest = fingerprint.strip_prefix("domain=")?;
    Some(rest.split(' ').next()?.to_string())
}
