//! The deletion's checkpoint (`delete.json` in the run state): the tenant, the options that
//! name the job, and whether it finished. As for export and import: a state of another tenant
//! is refused whatever the flags; an unfinished state of another job is refused with what
//! changed; an unfinished state of this job resumes; a finished one (or `--fresh`) starts a new
//! ledger. The before-images file is kept either way (see [`super::images`]).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{DeleteError, DeleteOptions};
use crate::state::StateDir;
use crate::state::resume::{self, JobOptions};

/// The checkpoint's name in the run state.
pub const FILE: &str = "delete.json";
/// The format version of [`Saved`] this build writes.
const FORMAT: &str = "1";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "version")]
enum Saved {
    #[serde(rename = "1")]
    V1 {
        domain: String,
        options: JobOptions,
        completed: bool,
    },
}

/// Before anything is sent or created: whether a run with `options` resumes the deletion in
/// `dir` (`false`: it starts a new one). Refuses, offline, a state of another tenant, an
/// unfinished deletion with other options (unless `--fresh`), and a damaged checkpoint.
pub fn check_state(dir: &Path, options: &DeleteOptions) -> Result<bool, DeleteError> {
    let saved = match crate::state::peek::<Saved>(dir, FILE, FORMAT) {
        Ok(saved) => saved,
        // --fresh is the way out of a damaged checkpoint (the before-images are kept).
        Err(_) if options.fresh => None,
        Err(e) => return Err(e.into()),
    };
    let Some(Saved::V1 {
        domain,
        options: saved,
        completed,
    }) = saved
    else {
        return Ok(false);
    };
    crate::state::check_tenant(dir, Some(&domain), &options.domain)?;
    if completed || options.fresh {
        return Ok(false);
    }
    resume::check_same_job(dir, "delete", saved.changes(&options.job))?;
    Ok(true)
}

/// The tenant of the deletion whose state is `dir`, offline (`None`: `dir` holds no
/// deletion's checkpoint). For `auth0-bulk undo` of a deletion.
pub fn saved_tenant(dir: &Path) -> Result<Option<String>, crate::state::StateError> {
    let saved = crate::state::peek::<Saved>(dir, FILE, FORMAT)?;
    Ok(saved.map(|Saved::V1 { domain, .. }| domain))
}

/// Marks the deletion in the (locked) state unfinished, once its ledger is ready: from here on
/// a run with the same options resumes it.
pub(super) fn begin(state: &StateDir, options: &DeleteOptions) -> Result<(), DeleteError> {
    save(state, options, false)
}

/// Marks the deletion finished: the next run with this state starts a new one.
pub(super) fn finish(state: &StateDir, options: &DeleteOptions) -> Result<(), DeleteError> {
    save(state, options, true)
}

fn save(state: &StateDir, options: &DeleteOptions, completed: bool) -> Result<(), DeleteError> {
    let saved = Saved::V1 {
        domain: options.domain.clone(),
        options: options.job.clone(),
        completed,
    };
    Ok(state.save(FILE, &saved)?)
}
