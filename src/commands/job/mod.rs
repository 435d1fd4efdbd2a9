//! `auth0-bulk run JOB.toml`: a job file is the command line written down. Each key is a long
//! option of the command; the file is turned into arguments and parsed by the same parser, so
//! a job file and a command line can never mean different things. `lib::run` expands the job
//! before dispatch.
//!
//! The file is read with the place of every key, so each mistake names its line
//! (``jobs/x.toml:4: unknown key `ouput`: did you mean `output`?``): a key that is no option of
//! the command, a value of the wrong TOML type, a value the command's parser refuses. A TOML
//! syntax error names line and column. The source line is never echoed: it may hold a secret.
//! Which keys exist and what each takes is read from the clap definition (`keys.rs`); options
//! around the job file on the command line override its keys (`args.rs`).

mod args;
mod keys;

use std::collections::BTreeMap;
use std::path::Path;

use clap::error::{ContextKind, ContextValue};
use clap::{CommandFactory, Parser};
use toml::de::{DeTable, DeValue};

use crate::cli::{Cli, Command};
use crate::exit::UsageError;

pub use keys::document;

/// The command to run: a job file (`run JOB.toml`) becomes the command it writes down, parsed
/// from its argv by the same parser; any other command is itself. This happens before dispatch,
/// so no command runs another.
pub fn expand(command: Command) -> Result<Command, UsageError> {
    let Command::Run(args) = command else {
        return Ok(command);
    };
    let cli = Cli::command();
    let split = args::split(&args.job_and_options, &keys::every_option(&cli))?;
    let job = job_argv(&cli, &split.job, &split.overrides, &split.named)?;
    let parsed = Cli::try_parse_from(&job.argv).map_err(|e| job.refused(&e))?;
    Ok(parsed.command)
}

/// A job file as the argument list it stands for.
#[derive(Debug)]
pub struct JobArgv {
    pub argv: Vec<String>,
    /// The job file, as the user named it.
    file: String,
    /// Where each option the file gave was written: long name → line.
    lines: BTreeMap<String, usize>,
}

impl JobArgv {
    /// The parser's refusal of the expanded command line, at the line of the key at fault when
    /// the file gave it (the parser's own usage line is left out: it is not the job's).
    fn refused(&self, error: &clap::Error) -> UsageError {
        let rendered = error.render().to_string();
        let body = rendered
            .lines()
            .filter(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
            .collect::<Vec<_>>()
            .join("\n");
        let body = body.trim();
        let body = body.strip_prefix("error: ").unwrap_or(body);
        let line = match error.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(arg)) => {
                let long = arg.trim_start_matches('-');
                let long = long.split([' ', '=']).next().unwrap_or(long);
                self.lines.get(long)
            }
            _ => None,
        };
        match line {
            Some(line) => UsageError(format!("{}:{line}: {body}", self.file)),
            None => UsageError(format!("job file {}: {body}", self.file)),
        }
    }
}

/// The argument list a job file stands for, with `overrides` (whose options are `named`)
/// replacing the file's options. `cli` is the command line's definition.
pub fn job_argv(
    cli: &clap::Command,
    job: &Path,
    overrides: &[String],
    named: &[String],
) -> Result<JobArgv, UsageError> {
    let file = job.display().to_string();
    let text = std::fs::read_to_string(job)
        .map_err(|e| UsageError(format!("cannot read job file {file}: {e}")))?;
    let table = DeTable::parse(&text).map_err(|e| match e.span() {
        Some(span) => {
            let (line, column) = place(&text, span.start);
            UsageError(format!("{file}:{line}:{column}: {}", e.message().trim()))
        }
        None => UsageError(format!("job file {file}: {}", e.message().trim())),
    })?;
    let table = table.get_ref();
    let at = |offset: usize, message: String| {
        UsageError(format!("{file}:{}: {message}", place(&text, offset).0))
    };

    let Some((command_key, command)) = table.iter().find(|(k, _)| k.get_ref() == "command") else {
        return Err(UsageError(format!(
            "job file {file}: needs `command = \"export\"` (or another command)"
        )));
    };
    let names: Vec<&str> = keys::commands(cli).map(clap::Command::get_name).collect();
    let name = match command.get_ref() {
        DeValue::String(name) if names.contains(&name.as_ref()) => name.to_string(),
        DeValue::String(name) if name == "run" => {
            return Err(at(
                command_key.span().start,
                "a job cannot run another job".into(),
            ));
        }
        DeValue::String(name) => {
            let hint = crate::suggest::closest(name, names.iter().copied())
                .map(|s| format!("did you mean `{s}`? "))
                .unwrap_or_default();
            return Err(at(
                command_key.span().start,
                format!(
                    "unknown command `{name}`: {hint}a job runs one of {}",
                    names.join(", ")
                ),
            ));
        }
        other => {
            return Err(at(
                command_key.span().start,
                format!(
                    "`command` takes the name of a command (\"export\"), not {}",
                    kind(other)
                ),
            ));
        }
    };
    let sub = keys::commands(cli)
        .find(|c| c.get_name() == name)
        .expect("a name listed above");
    let keys = keys::keys(sub);
    let base = job
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));

    let mut argv = vec!["auth0-bulk".to_string(), name.clone()];
    let mut lines = BTreeMap::new();
    for (key, value) in table {
        let written = key.get_ref().as_ref();
        if written == "command" {
            continue;
        }
        let offset = key.span().start;
        let flag = written.replace('_', "-");
        if keys::SECRETS.contains(&flag.as_str()) {
            return Err(at(
                offset,
                format!(
                    "`{written}` is a secret and is never read from job files; set \
                     AUTH0_CLIENT_SECRET or AUTH0_TOKEN in the environment"
                ),
            ));
        }
        let Some(spec) = keys.iter().find(|k| k.long == flag) else {
            let hint = crate::suggest::closest(&flag, keys.iter().map(|k| k.long.as_str()))
                .and_then(|long| keys.iter().find(|k| k.long == long))
                .map(|k| format!("did you mean `{}`? ", k.spelled(written)))
                .unwrap_or_default();
            return Err(at(
                offset,
                format!(
                    "unknown key `{written}`: {hint}the keys for `{name}` are the long \
                     options of `auth0-bulk {name} --help` (listed in `auth0-bulk run --help`)"
                ),
            ));
        };
        if named.contains(&flag) {
            continue;
        }
        let occurrences = occurrences(spec, value.get_ref()).map_err(|not| {
            at(
                offset,
                format!("`{written}` takes {}, not {not}", spec.wants()),
            )
        })?;
        lines.insert(flag.clone(), place(&text, offset).0);
        for value in occurrences {
            argv.push(format!("--{flag}"));
            if let Some(value) = value {
                let relative = spec.path && value != "-" && Path::new(&value).is_relative();
                argv.push(if relative {
                    base.join(&value).to_string_lossy().into_owned()
                } else {
                    value
                });
            }
        }
    }
    argv.extend(overrides.iter().cloned());
    Ok(JobArgv { argv, file, lines })
}

/// The option's occurrences a value stands for: `None` for a bare flag, the text of a value
/// otherwise; or what kind of value it wrongly is.
fn occurrences(spec: &keys::Key, value: &DeValue<'_>) -> Result<Vec<Option<String>>, &'static str> {
    use keys::Takes;
    match (spec.takes, value) {
        (Takes::Switch | Takes::Count, DeValue::Boolean(on)) => {
            Ok(if *on { vec![None] } else { vec![] })
        }
        (Takes::Count, DeValue::Integer(_)) => {
            let times = scalar(value)
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or("a negative number")?;
            Ok(vec![None; times])
        }
        (Takes::One, DeValue::Array(_)) => Err("a list"),
        (Takes::Many, DeValue::Array(items)) => items
            .iter()
            .map(|item| match item.get_ref() {
                DeValue::Array(_) => Err("a list of lists"),
                DeValue::Table(_) => Err("a list of tables"),
                DeValue::Boolean(_) => Err("a list of true or false"),
                scalar_item => Ok(scalar(scalar_item)),
            })
            .collect(),
        (Takes::One | Takes::Many, _) => scalar(value)
            .map(|text| vec![Some(text)])
            .ok_or(kind(value)),
        (_, other) => Err(kind(other)),
    }
}

/// The text a string, number or date stands for on the command line (`8`, `2024-01-31`).
fn scalar(value: &DeValue<'_>) -> Option<String> {
    match value {
        DeValue::String(text) => Some(text.to_string()),
        DeValue::Integer(n) => Some(
            i64::from_str_radix(n.as_str(), n.radix())
                .map_or_else(|_| n.to_string(), |n| n.to_string()),
        ),
        DeValue::Float(x) => Some(
            x.as_str()
                .replace('_', "")
                .parse::<f64>()
                .map_or_else(|_| x.to_string(), |x| x.to_string()),
        ),
        DeValue::Datetime(when) => Some(when.to_string()),
        DeValue::Boolean(_) | DeValue::Array(_) | DeValue::Table(_) => None,
    }
}

/// A TOML value's kind, for a message: "a string", "a list".
fn kind(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) | DeValue::Float(_) => "a number",
        DeValue::Boolean(_) => "true or false",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

/// The line and column (both from 1) of a byte offset in `text`.
fn place(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    /// `run PATH WORDS...` as the arguments it expands to.
    fn job_words(path: &Path, words: &[&str]) -> Result<Vec<String>, UsageError> {
        let cli = Cli::command();
        let mut line = vec![path.display().to_string()];
        line.extend(words.iter().map(|w| w.to_string()));
        let split = args::split(&line, &keys::every_option(&cli))?;
        Ok(job_argv(&cli, &split.job, &split.overrides, &split.named)?.argv)
    }

    fn run(line: Vec<String>) -> Command {
        Command::Run(crate::cli::RunArgs {
            job_and_options: line,
        })
    }

    /// The word after `flag` in `argv`: its value.
    fn value_of<'a>(argv: &'a [String], flag: &str) -> &'a str {
        let at = argv.iter().position(|a| a == flag).expect(flag);
        &argv[at + 1]
    }

    /// The message a job's text is refused with.
    fn refusal(text: &str) -> String {
        let (_dir, path) = job(text);
        let e = expand(run(vec![path.display().to_string()])).unwrap_err();
        e.0.replace(&path.display().to_string(), "job.toml")
    }

    #[test]
    fn keys_become_options_and_paths_follow_the_job_file() {
        let (dir, path) = job(
            "command = \"export\"\noutput = \"out/users.ndjson\"\nfresh = true\nquiet = false\nrename = [\"a=b\", \"c=d\"]\nconcurrency = 8\n",
        );
        let argv = job_words(&path, &[]).unwrap();
        let out = dir
            .path()
            .join("out/users.ndjson")
            .to_string_lossy()
            .into_owned();
        assert_eq!(
            argv,
            [
                "auth0-bulk",
                "export",
                "--concurrency",
                "8",
                "--fresh",
                "--output",
                &out,
                "--rename",
                "a=b",
                "--rename",
                "c=d"
            ]
        );
    }

    #[test]
    fn secrets_in_job_files_are_refused() {
        let (_dir, path) = job("command = \"export\"\nclient_secret = \"s3cr3t\"\n");
        let e = job_words(&path, &[]).unwrap_err();
        assert!(e.0.contains("never read from job files") && !e.0.contains("s3cr3t"));
        assert!(e.0.contains("job.toml:2:"), "{e}");
    }

    #[test]
    fn a_job_becomes_its_command_and_cannot_run_another_job() {
        let (_dir, path) = job("command = \"export\"\noutput = \"users.ndjson\"\n");
        let line = vec![path.display().to_string()];
        assert!(matches!(expand(run(line)), Ok(Command::Export(_))));
        assert_eq!(
            refusal("# a job\ncommand = \"run\"\n"),
            "job.toml:2: a job cannot run another job"
        );
    }

    #[test]
    fn the_password_hash_file_follows_the_job_file_and_the_engine_is_a_value() {
        let (dir, path) = job(
            "command = \"import\"\ninput = \"users.ndjson\"\nengine = \"job\"\npassword_hashes = \"hashes.ndjson\"\ntickets = \"t.ndjson\"\n",
        );
        let argv = job_words(&path, &[]).unwrap();
        let beside = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        assert_eq!(
            value_of(&argv, "--password-hashes"),
            beside("hashes.ndjson")
        );
        assert_eq!(
            value_of(&argv, "--tickets"),
            beside("t.ndjson"),
            "every path option, read from clap"
        );
        assert_eq!(value_of(&argv, "--engine"), "job");
        let Ok(Command::Import(args)) = expand(run(vec![path.display().to_string()])) else {
            panic!("an import")
        };
        assert_eq!(args.jobs.engine, crate::cli::EngineFlag::Job);
        assert_eq!(
            args.password_hashes.as_deref(),
            Some(std::path::Path::new(&beside("hashes.ndjson")))
        );
    }

    #[test]
    fn command_line_options_override_the_file_before_or_after_it() {
        let (_dir, path) = job("command = \"export\"\nconcurrency = 8\nquiet = true\n");
        let argv = job_words(&path, &["--concurrency", "2"]).unwrap();
        assert_eq!(
            argv,
            ["auth0-bulk", "export", "--quiet", "--concurrency", "2"]
        );
        let file = path.display().to_string();
        let cli = Cli::command();
        let line: Vec<String> = ["-q", "--concurrency=2", &file, "-o", "x.ndjson"]
            .iter()
            .map(|w| w.to_string())
            .collect();
        let split = args::split(&line, &keys::every_option(&cli)).unwrap();
        let argv = job_argv(&cli, &split.job, &split.overrides, &split.named)
            .unwrap()
            .argv;
        assert_eq!(
            argv,
            [
                "auth0-bulk",
                "export",
                "-q",
                "--concurrency=2",
                "-o",
                "x.ndjson"
            ],
            "`-q` replaces the file's `quiet`: given twice, clap would refuse it"
        );
    }

    #[test]
    fn an_unknown_key_names_its_line_and_the_key_it_resembles() {
        assert_eq!(
            refusal("command = \"export\"\n\n# where\nouput = \"users.ndjson\"\n"),
            "job.toml:4: unknown key `ouput`: did you mean `output`? the keys for `export` \
             are the long options of `auth0-bulk export --help` (listed in `auth0-bulk run --help`)"
        );
        let e = refusal("command = \"export\"\noutput = \"u.ndjson\"\ncsv-metadta = \"json\"\n");
        assert!(
            e.starts_with("job.toml:3: unknown key `csv-metadta`: did you mean `csv-metadata`?"),
            "{e}"
        );
        let e = refusal("command = \"export\"\ncsv_metadta = \"json\"\n");
        assert!(
            e.contains("did you mean `csv_metadata`?"),
            "the user's spelling: {e}"
        );
        let e = refusal("command = \"exprot\"\n");
        assert!(
            e.starts_with("job.toml:1: unknown command `exprot`: did you mean `export`?"),
            "{e}"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_says_which_type_the_key_takes() {
        let e = refusal("command = \"export\"\noutput = \"u.ndjson\"\nfresh = \"yes\"\n");
        assert_eq!(e, "job.toml:3: `fresh` takes true or false, not a string");
        let e = refusal("command = \"export\"\noutput = [\"a.ndjson\", \"b.ndjson\"]\n");
        assert_eq!(e, "job.toml:2: `output` takes one value (PATH), not a list");
        let e = refusal("command = \"export\"\noutput = true\n");
        assert_eq!(
            e,
            "job.toml:2: `output` takes one value (PATH), not true or false"
        );
        let e = refusal("command = \"export\"\noutput = \"u\"\nrename = [[\"a=b\"]]\n");
        assert!(e.starts_with("job.toml:3: `rename` takes a value or a list of values (FROM=TO), not a list of lists"), "{e}");
        let e = refusal("command = 3\n");
        assert!(
            e.starts_with("job.toml:1: `command` takes the name of a command"),
            "{e}"
        );
    }

    #[test]
    fn numbers_and_dates_may_be_written_bare() {
        let (_dir, path) = job(
            "command = \"export\"\noutput = \"u.ndjson\"\nconcurrency = 0x10\nsince = 2024-01-31\nindex_lag = 1_000\n",
        );
        let argv = job_words(&path, &[]).unwrap();
        assert_eq!(value_of(&argv, "--concurrency"), "16");
        assert_eq!(value_of(&argv, "--since"), "2024-01-31");
        assert_eq!(value_of(&argv, "--index-lag"), "1000");
        assert!(expand(run(vec![path.display().to_string()])).is_ok());
    }

    #[test]
    fn a_value_the_parser_refuses_names_the_line_of_its_key() {
        let e = refusal("command = \"export\"\noutput = \"u.ndjson\"\n\ncsv_metadata = \"flat\"\n");
        assert!(
            e.starts_with("job.toml:4: invalid value 'flat' for '--csv-metadata"),
            "{e}"
        );
        assert!(!e.contains("Usage:"), "{e}");
        let e = refusal("command = \"export\"\n");
        assert!(
            e.starts_with("job file job.toml: the following required argument"),
            "{e}"
        );
    }

    #[test]
    fn every_example_job_expands_to_its_command() {
        let jobs = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs");
        let mut seen = 0;
        for entry in std::fs::read_dir(&jobs).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let expanded = expand(run(vec![path.display().to_string()]));
                assert!(
                    matches!(expanded, Ok(Command::Export(_) | Command::Import(_))),
                    "{}: {expanded:?}",
                    path.display()
                );
                seen += 1;
            }
        }
        assert!(seen >= 5, "the jobs folder holds the examples");
    }

    #[test]
    fn a_toml_syntax_error_names_line_and_column_and_never_echoes_the_line() {
        let e = refusal("command = \"export\"\noutput = \"u.ndjson\nclient_id = 'x'\n");
        assert!(e.starts_with("job.toml:2:"), "{e}");
        let e = refusal("command = \"export\"\nquery = 's3cr3t\n");
        assert!(e.starts_with("job.toml:2:"), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
        let e = refusal("command = \"export\"\noutput = \"a\"\noutput = \"b\"\n");
        assert!(e.starts_with("job.toml:3:"), "a key given twice: {e}");
    }
}
