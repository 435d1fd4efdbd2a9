//! `auth0-bulk run JOB.toml`: a job file is the command line written down. Each key is a long
//! option of the command; the file is turned into arguments and parsed by the same parser, so
//! a job file and a command line can never mean different things. `lib::run` expands the job
//! before dispatch.

use std::path::Path;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::exit::UsageError;

/// Options that hold paths: relative ones are taken from the job file's folder.
const PATH_KEYS: &[&str] = &[
    "output",
    "state",
    "users",
    "sandbox-seed",
    "input",
    "rejects",
    "plan",
    "password-hashes",
    "report",
];
/// Options a job file must not hold: secrets live in the environment, never in files in git.
const SECRET_KEYS: &[&str] = &["client-secret", "token"];

/// The command to run: a job file (`run JOB.toml`) becomes the command it writes down, parsed
/// from its argv by the same parser; any other command is itself. This happens before dispatch,
/// so no command runs another.
pub fn expand(command: Command) -> Result<Command, UsageError> {
    let Command::Run(args) = command else {
        return Ok(command);
    };
    let argv = job_argv(&args.job, &args.overrides)?;
    let cli = Cli::try_parse_from(&argv).map_err(|e| {
        let rendered = e.render().to_string();
        UsageError(format!(
            "job file {}: {}",
            args.job.display(),
            rendered.trim()
        ))
    })?;
    if matches!(cli.command, Command::Run(_)) {
        return Err(UsageError(format!(
            "job file {}: a job cannot run another job",
            args.job.display()
        )));
    }
    Ok(cli.command)
}

/// The argument list a job file stands for, with `overrides` replacing the file's options.
pub fn job_argv(job: &Path, overrides: &[String]) -> Result<Vec<String>, UsageError> {
    let text = std::fs::read_to_string(job)
        .map_err(|e| UsageError(format!("cannot read job file {}: {e}", job.display())))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| UsageError(format!("job file {}: {e}", job.display())))?;
    let base = job
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let overridden: Vec<String> = overrides
        .iter()
        .filter_map(|a| a.strip_prefix("--"))
        .map(|a| a.split('=').next().unwrap_or(a).to_string())
        .collect();
    let mut argv = vec!["auth0-bulk".to_string()];
    let command = match table.get("command") {
        Some(toml::Value::String(c)) => c.clone(),
        _ => {
            return Err(UsageError(format!(
                "job file {}: needs `command = \"export\"` (or another command)",
                job.display()
            )));
        }
    };
    argv.push(command);
    for (key, value) in &table {
        if key == "command" {
            continue;
        }
        let flag = key.replace('_', "-");
        if SECRET_KEYS.contains(&flag.as_str()) {
            return Err(UsageError(format!(
                "job file {}: `{key}` is a secret and is never read from job files; set \
                 AUTH0_CLIENT_SECRET or AUTH0_TOKEN in the environment",
                job.display()
            )));
        }
        if overridden.contains(&flag) {
            continue;
        }
        let values: Vec<&toml::Value> = match value {
            toml::Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for value in values {
            let text = match value {
                toml::Value::Boolean(true) => {
                    argv.push(format!("--{flag}"));
                    continue;
                }
                toml::Value::Boolean(false) => continue,
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => {
                    return Err(UsageError(format!(
                        "job file {}: `{key}` must be a string, number, boolean or list, not {}",
                        job.display(),
                        other.type_str()
                    )));
                }
            };
            let text = if PATH_KEYS.contains(&flag.as_str())
                && text != "-"
                && Path::new(&text).is_relative()
            {
                base.join(&text).to_string_lossy().into_owned()
            } else {
                text
            };
            argv.push(format!("--{flag}"));
            argv.push(text);
        }
    }
    argv.extend(overrides.iter().cloned());
    Ok(argv)
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

    #[test]
    fn keys_become_options_and_paths_follow_the_job_file() {
        let (dir, path) = job(
            "command = \"export\"\noutput = \"out/users.ndjson\"\nfresh = true\nquiet = false\nrename = [\"a=b\", \"c=d\"]\nconcurrency = 8\n",
        );
        let argv = job_argv(&path, &[]).unwrap();
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
        let e = job_argv(&path, &[]).unwrap_err();
        assert!(e.0.contains("never read from job files") && !e.0.contains("s3cr3t"));
    }

    #[test]
    fn a_job_becomes_its_command_and_cannot_run_another_job() {
        let (_dir, path) = job("command = \"export\"\noutput = \"users.ndjson\"\n");
        let run = |path: &Path, overrides: Vec<String>| {
            Command::Run(crate::cli::RunArgs {
                job: path.to_path_buf(),
                overrides,
            })
        };
        assert!(matches!(expand(run(&path, vec![])), Ok(Command::Export(_))));
        // The job is positional: a job file can only name it through the overrides.
        let (_dir, nested) = job("command = \"run\"\n");
        let other = path.to_string_lossy().into_owned();
        let e = expand(run(&nested, vec![other])).unwrap_err();
        assert!(e.0.contains("a job cannot run another job"), "{e}");
    }

    #[test]
    fn the_password_hash_file_follows_the_job_file_and_the_engine_is_a_value() {
        let (dir, path) = job(
            "command = \"import\"\ninput = \"users.ndjson\"\nengine = \"job\"\npassword_hashes = \"hashes.ndjson\"\n",
        );
        let argv = job_argv(&path, &[]).unwrap();
        let hashes = dir
            .path()
            .join("hashes.ndjson")
            .to_string_lossy()
            .into_owned();
        let at = argv.iter().position(|a| a == "--password-hashes").unwrap();
        assert_eq!(argv[at + 1], hashes);
        let at = argv.iter().position(|a| a == "--engine").unwrap();
        assert_eq!(argv[at + 1], "job");
        let Ok(Command::Import(args)) = expand(Command::Run(crate::cli::RunArgs {
            job: path,
            overrides: vec![],
        })) else {
            panic!("an import")
        };
        assert_eq!(args.jobs.engine, crate::cli::EngineFlag::Job);
        assert_eq!(
            args.password_hashes.as_deref(),
            Some(std::path::Path::new(&hashes))
        );
    }

    #[test]
    fn command_line_options_override_the_file() {
        let (_dir, path) = job("command = \"export\"\nconcurrency = 8\n");
        let argv = job_argv(&path, &["--concurrency".into(), "2".into()]).unwrap();
        assert_eq!(argv, ["auth0-bulk", "export", "--concurrency", "2"]);
    }
}
