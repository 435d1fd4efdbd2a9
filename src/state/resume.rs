//! Whether a saved state is this run's, asked before anything is sent or written.
//!
//! - The tenant: a state is bound to one. A run for another (or for the embedded sandbox)
//!   never reads, writes or advances it, not even with `--fresh`, so a rehearsal can never move
//!   a real job's marks.
//! - The job: an unfinished run is resumed only by the same options. Each command names its
//!   options in a [`JobOptions`] (flag and value as text); [`changes`] compares the saved
//!   ones with this run's by flag, and [`check_same_job`] refuses with every change in words
//!   ("`--fields` changed from `a,b` to `a,b,c`"), so the user sees what to run instead.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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

/// A job's options that decide what it does, each under the flag the user knows it by, with
/// its value as text: what an unfinished run is compared by before it is resumed. Stored (if a
/// command stores it) as a list of `{"flag": …, "value": …}`, in the order it was built.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobOptions(Vec<NamedOption>);

/// One option of a [`JobOptions`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedOption {
    pub flag: String,
    pub value: String,
}

/// How an unset option reads in a message.
const NONE: &str = "(none)";

impl JobOptions {
    pub fn new() -> JobOptions {
        JobOptions::default()
    }

    /// Adds an option with its value as the user would write it.
    pub fn with(mut self, flag: &str, value: impl Into<String>) -> JobOptions {
        self.0.push(NamedOption {
            flag: flag.to_string(),
            value: value.into(),
        });
        self
    }

    /// Adds an option that may be unset (`(none)`).
    pub fn with_optional(self, flag: &str, value: Option<&str>) -> JobOptions {
        self.with(flag, value.unwrap_or(NONE))
    }

    /// Adds an option that takes a list, joined by commas (`(none)` when empty).
    pub fn with_list(self, flag: &str, values: &[String]) -> JobOptions {
        let text = if values.is_empty() {
            NONE.to_string()
        } else {
            values.join(",")
        };
        self.with(flag, text)
    }

    fn get(&self, flag: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|o| o.flag == flag)
            .map(|o| o.value.as_str())
    }

    /// One line per option whose value differs, compared by flag: "`--fields` changed from
    /// `a,b` to `a,b,c`". In this (the saved run's) order, then the flags only `now` has; a
    /// flag one side does not have reads `(none)` there.
    pub fn changes(&self, now: &JobOptions) -> Vec<String> {
        let only_now = now.0.iter().filter(|o| self.get(&o.flag).is_none());
        self.0
            .iter()
            .chain(only_now)
            .filter_map(|o| {
                let before = self.get(&o.flag).unwrap_or(NONE);
                let after = now.get(&o.flag).unwrap_or(NONE);
                (before != after)
                    .then(|| format!("`{}` changed from `{before}` to `{after}`", o.flag))
            })
            .collect()
    }
}

/// What changed between a saved, unfinished run and this one: option by option when the saved
/// run recorded them (`saved`), else, for a state written before they were, one line that
/// quotes the saved fingerprint if it is not this run's.
pub fn changes(
    saved: Option<&JobOptions>,
    saved_fingerprint: &str,
    now: &JobOptions,
    fingerprint: &str,
) -> Vec<String> {
    match saved {
        Some(before) => before.changes(now),
        None if saved_fingerprint != fingerprint => vec![format!(
            "it was started by an earlier auth0-bulk with other options (it names them only as: \
             {saved_fingerprint})"
        )],
        None => Vec::new(),
    }
}

/// An unfinished run in the state that is not this one.
#[derive(Debug, thiserror::Error)]
#[error(
    "the state in {} holds an unfinished {job} with other options:\n  {}\nRun the same command \
     as before to finish it, add --fresh to start over, or pass another --state",
    path.display(),
    changes.join("\n  ")
)]
pub struct OtherJob {
    pub path: PathBuf,
    /// The command: `export`, `import`.
    pub job: &'static str,
    pub changes: Vec<String>,
}

/// Refuses to resume the unfinished `job` saved in `dir` when anything changed (see
/// [`changes`]): it would mix two jobs' work in one output or ledger.
pub fn check_same_job(dir: &Path, job: &'static str, changes: Vec<String>) -> Result<(), OtherJob> {
    if changes.is_empty() {
        return Ok(());
    }
    Err(OtherJob {
        path: dir.to_path_buf(),
        job,
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_compared_by_flag_whatever_their_order() {
        let saved = JobOptions::new()
            .with("--format", "csv")
            .with_optional("--query", None)
            .with_list("--fields", &["a".into(), "b".into()]);
        let now = JobOptions::new()
            .with_list("--fields", &["a".into(), "b".into()])
            .with("--format", "csv")
            .with_optional("--query", Some("email:x"))
            .with("--match", "email");
        assert_eq!(
            saved.changes(&now),
            [
                "`--query` changed from `(none)` to `email:x`",
                "`--match` changed from `(none)` to `email`"
            ]
        );
        assert!(now.changes(&now).is_empty());
    }

    #[test]
    fn a_state_without_named_options_is_compared_by_its_fingerprint() {
        let now = JobOptions::new().with("--format", "csv");
        assert!(changes(None, "format=csv", &now, "format=csv").is_empty());
        let changed = changes(None, "format=ndjson", &now, "format=csv");
        assert_eq!(changed.len(), 1);
        assert!(changed[0].contains("format=ndjson"), "{changed:?}");
        let e = check_same_job(Path::new("s"), "import", changed).unwrap_err();
        let message = e.to_string();
        assert!(
            message.starts_with("the state in s holds an unfinished import with other options"),
            "{message}"
        );
        assert!(message.contains("--fresh"), "{message}");
        assert!(check_same_job(Path::new("s"), "import", Vec::new()).is_ok());
    }

    #[test]
    fn job_options_are_stored_as_a_readable_list() {
        let options = JobOptions::new().with("--match", "email");
        let text = serde_json::to_string(&options).unwrap();
        assert_eq!(text, r#"[{"flag":"--match","value":"email"}]"#);
        assert_eq!(serde_json::from_str::<JobOptions>(&text).unwrap(), options);
    }
}
