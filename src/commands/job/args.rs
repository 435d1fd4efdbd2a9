//! The command line of `run`: options may come before or after the job file
//! (`run --fresh jobs/x.toml` and `run jobs/x.toml --fresh`). The job file is the first word
//! that is neither an option nor an option's value; which options take a value is read from
//! the clap definition of the job commands. Once clap has met the first of these words it takes
//! them all, so an option of the tool itself (`-v`) or `--help` among them would be lost: they
//! are refused with where to put them instead.

use std::path::PathBuf;

use super::keys::{Key, Takes};
use crate::exit::UsageError;

/// The words of `run`'s command line, sorted out.
#[derive(Debug, PartialEq, Eq)]
pub struct Split {
    pub job: PathBuf,
    /// Every other word, in order: the options that override the job file's.
    pub overrides: Vec<String>,
    /// The long names of the options among them (`-q` counts as `quiet`).
    pub named: Vec<String>,
}

/// Finds the job file among `words`; `options` are every option a job command has.
pub fn split(words: &[String], options: &[Key]) -> Result<Split, UsageError> {
    if let Some(help) = words.iter().find(|w| *w == "--help" || *w == "-h") {
        return Err(UsageError(format!(
            "`{help}` among a job's options: see `auth0-bulk run --help` (every command's job \
             keys) or `auth0-bulk COMMAND --help`"
        )));
    }
    let mut job = None;
    let mut overrides = Vec::new();
    let mut named = Vec::new();
    let mut words = words.iter();
    while let Some(word) = words.next() {
        let takes_value = if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, _)) => (name, true),
                None => (long, false),
            };
            let key = find(options, name).ok_or_else(|| unknown(&format!("--{name}"), options))?;
            named.push(key.long.clone());
            !inline && takes(key)
        } else if let Some(shorts) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            // A cluster (`-qv`) ends at the first short that takes a value (`-ousers.ndjson`).
            let mut takes_value = false;
            for (at, short) in shorts.char_indices() {
                let key = options
                    .iter()
                    .find(|k| k.short == Some(short))
                    .ok_or_else(|| unknown(&format!("-{short}"), options))?;
                named.push(key.long.clone());
                if takes(key) {
                    takes_value = at + short.len_utf8() == shorts.len();
                    break;
                }
            }
            takes_value
        } else if job.is_none() {
            job = Some(PathBuf::from(word));
            continue;
        } else {
            false
        };
        overrides.push(word.clone());
        if takes_value && let Some(value) = words.next() {
            overrides.push(value.clone());
        }
    }
    let job = job.ok_or_else(|| {
        UsageError("run needs a job file: auth0-bulk run [OPTIONS] JOB.toml [OPTIONS]".into())
    })?;
    Ok(Split {
        job,
        overrides,
        named,
    })
}

fn find<'a>(options: &'a [Key], name: &str) -> Option<&'a Key> {
    options.iter().find(|k| k.long == name)
}

fn takes(key: &Key) -> bool {
    matches!(key.takes, Takes::One | Takes::Many)
}

fn unknown(option: &str, options: &[Key]) -> UsageError {
    let cli = <crate::cli::Cli as clap::CommandFactory>::command();
    let outer = cli.get_arguments().any(|a| {
        a.get_long().map(|l| format!("--{l}")).as_deref() == Some(option)
            || a.get_short().map(|s| format!("-{s}")).as_deref() == Some(option)
    });
    if outer {
        return UsageError(format!(
            "`{option}` is an option of auth0-bulk itself, not of the job: give it before \
             `run` (`auth0-bulk {option} run JOB.toml`)"
        ));
    }
    let longs = options.iter().map(|k| format!("--{}", k.long));
    let hint = crate::suggest::closest(option, longs)
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    UsageError(format!(
        "unknown option `{option}` for a job{hint}: options around the job file are those of \
         its command"
    ))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn split_words(words: &[&str]) -> Result<Split, UsageError> {
        let options = super::super::keys::every_option(&crate::cli::Cli::command());
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        split(&words, &options)
    }

    #[test]
    fn the_job_file_is_found_before_between_and_after_options() {
        let before = split_words(&["--fresh", "--output", "-", "-q", "x.toml"]).unwrap();
        assert_eq!(before.job, PathBuf::from("x.toml"));
        assert_eq!(before.overrides, ["--fresh", "--output", "-", "-q"]);
        assert_eq!(before.named, ["fresh", "output", "quiet"]);
        let after = split_words(&["x.toml", "--concurrency=2", "-o", "out.ndjson"]).unwrap();
        assert_eq!(after.job, PathBuf::from("x.toml"));
        assert_eq!(after.overrides, ["--concurrency=2", "-o", "out.ndjson"]);
        assert_eq!(after.named, ["concurrency", "output"]);
        let around = split_words(&["--state", "s", "x.toml", "--fresh"]).unwrap();
        assert_eq!(around.job, PathBuf::from("x.toml"));
        assert_eq!(around.overrides, ["--state", "s", "--fresh"]);
    }

    #[test]
    fn an_unknown_option_or_no_job_file_is_a_usage_error() {
        let e = split_words(&["--frsh", "x.toml"]).unwrap_err();
        assert!(e.0.contains("`--frsh`") && e.0.contains("`--fresh`"), "{e}");
        let e = split_words(&["--fresh"]).unwrap_err();
        assert!(e.0.contains("needs a job file"), "{e}");
        let e = split_words(&["x.toml", "-v"]).unwrap_err();
        assert!(e.0.contains("`auth0-bulk -v run JOB.toml`"), "{e}");
        let e = split_words(&["x.toml", "--help"]).unwrap_err();
        assert!(e.0.contains("auth0-bulk run --help"), "{e}");
    }
}
