//! `auth0-bulk import`: flags → a validated [`ImportSpec`] → the import → the summary and its outcome.

use indicatif::HumanCount;
use std::path::{Path, PathBuf};

use crate::cli::{EngineFlag, ImportArgs, PasswordsFlag};
use crate::exit::{RunOutcome, UsageError};
use crate::import::access::AccessOptions;
use crate::import::job::JobSettings;
use crate::import::plan::{Engine, Mode, Passwords, PlanOptions};
use crate::import::read::ReadOptions;
use crate::import::tickets::TicketSpec;
use crate::import::{self, ImportError, ImportSpec, ImportSummary};
use crate::progress::Progress;
use crate::state::beside;
use crate::terminal;
use crate::warnings;

use super::common;
use super::signal::Interrupt;
use crate::report::Witness;

/// The files a run writes, named from the flags (and beside the input by default).
struct Files {
    state: Option<PathBuf>,
    rejects: PathBuf,
    plan: Option<PathBuf>,
    tickets: Option<PathBuf>,
}

/// Runs `import`, telling `witness` what its report shows (`--report`).
pub async fn run(
    args: ImportArgs,
    interrupt: &Interrupt,
    witness: Witness,
) -> anyhow::Result<RunOutcome> {
    // Everything that can be checked offline is checked before the first request.
    let stdin = args.input.as_os_str() == "-";
    if !stdin && let Some(problem) = input_problem(&args.input) {
        return Err(UsageError(format!("--input {}: {problem}", args.input.display())).into());
    }
    job_engine_problem(&args).map_err(UsageError)?;
    let rehearsal = common::is_embedded_sandbox(&args.target);
    let files = files(&args, stdin, rehearsal)?;
    let plan = plan_options(&args);
    check_hashes(&args, &plan)?;
    let resolved = common::resolve_target(&args.target, &args.embedded).await?;
    let cancel = interrupt.arm();
    let client = common::client(&resolved, &args.pace, &cancel)?;
    witness.client(&client, &resolved.domain);
    let spec = ImportSpec {
        input: args.input.clone(),
        read: ReadOptions {
            format: args.format.into(),
            unescape_formulas: args.csv_escape_formulas,
            ..ReadOptions::default()
        },
        plan,
        password_hashes: args.password_hashes.clone(),
        dry_run: args.dry_run,
        plan_file: files.plan,
        rejects: files.rejects,
        state: files.state,
        // The embedded tenant lives only as long as this run: there is nothing to resume.
        fresh: args.run.fresh || rehearsal,
        // Records taken in; the client's workers bound those applied.
        concurrency: args
            .pace
            .concurrency
            .unwrap_or(crate::net::workers::CEILING),
        domain: resolved.domain.clone(),
        job: job_settings(&args),
        tickets: files.tickets.map(|file| TicketSpec {
            file,
            ttl_sec: args.ticket_ttl,
        }),
        access: AccessOptions {
            strategy: args.authz.into(),
            create_roles: args.create_missing.is_some_and(|c| c.roles),
            create_organizations: args.create_missing.is_some_and(|c| c.organizations),
        },
    };
    // A rehearsal's tickets point at a tenant that lived as long as its run.
    if rehearsal && let Some(tickets) = &spec.tickets {
        let _ = std::fs::remove_file(&tickets.file);
    }
    import::check_state(&spec).map_err(failure)?;
    if rehearsal {
        terminal::say(rehearsal_notice(&spec));
    }
    let verb = if args.dry_run {
        "Planning an import (dry run: nothing is written)"
    } else {
        "Importing"
    };
    terminal::say(format!(
        "{verb} from {} into {}",
        args.input.display(),
        resolved.target.display()
    ));
    let progress = Progress::new(args.summary.quiet, "records");
    let result = import::run(&spec, &client, &progress, &cancel).await;
    progress.finish();
    let (summary, outcome) = result.map_err(failure)?;
    witness.summary(&summary);
    common::print_summary(&summary_lines(&summary), &summary, args.summary.json, false)?;
    drop(resolved);
    Ok(outcome)
}

/// How records are planned: the typed flags, mapped to the library's options.
fn plan_options(args: &ImportArgs) -> PlanOptions {
    PlanOptions {
        mode: args.mode.into(),
        match_by: args.match_by.into(),
        connection: args.connection.clone(),
        passwords: match (args.passwords, &args.password_field) {
            (Some(PasswordsFlag::Random), _) => Passwords::Random,
            (None, Some(field)) => Passwords::Field(field.clone()),
            (None, None) => Passwords::None,
        },
        metadata: args.metadata.into(),
        engine: args.jobs.engine.into(),
    }
}

/// What `--engine job` cannot do with the other flags, said before anything is sent.
fn job_engine_problem(args: &ImportArgs) -> Result<(), String> {
    if args.jobs.engine != EngineFlag::Job {
        return Ok(());
    }
    if args.password_field.is_some() {
        return Err(
            "--password-field with --engine job: Auth0's import job takes no clear-text \
             password, only hashes (`password_hash`, `custom_password_hash`). Import records \
             with clear-text passwords with --engine api, or create users without one \
             (--passwords random) and send them password-change tickets"
                .into(),
        );
    }
    Ok(())
}

/// The engine and the password hash file, before anything is sent: a hash goes only to a job
/// that creates users, so a hash file anywhere else would only have its records refused.
fn check_hashes(args: &ImportArgs, plan: &PlanOptions) -> Result<(), UsageError> {
    let Some(path) = &args.password_hashes else {
        return Ok(());
    };
    let flag = format!("--password-hashes {}", path.display());
    if plan.mode == Mode::Update {
        return Err(UsageError(format!(
            "{flag}: a password hash is taken only when Auth0's bulk-import job creates the \
             user, and --mode update never creates; import the hashes with --mode create and \
             --engine job"
        )));
    }
    if plan.engine == Engine::Api {
        return Err(UsageError(format!(
            "{flag}: only Auth0's bulk-import job creates users with a password hash; add \
             --engine job"
        )));
    }
    if let Some(problem) = input_problem(path) {
        return Err(UsageError(format!("{flag}: {problem}")));
    }
    if path == &args.input {
        return Err(UsageError(format!(
            "{flag}: that is the input file; give the hashes in a file of their own"
        )));
    }
    Ok(())
}

/// The job engine's settings, when `--engine job`.
fn job_settings(args: &ImportArgs) -> Option<JobSettings> {
    (args.jobs.engine == EngineFlag::Job).then_some(JobSettings {
        chunk_bytes: args.jobs.job_file_bytes as usize,
        max_jobs: args.jobs.jobs as usize,
    })
}

/// The state, rejects and plan files, checked before anything is sent.
fn files(args: &ImportArgs, stdin: bool, rehearsal: bool) -> Result<Files, UsageError> {
    let state = match (&args.run.state, stdin) {
        (Some(dir), _) => Some(dir.clone()),
        (None, false) => Some(beside(&args.input, ".state")),
        (None, true) => None,
    };
    let rejects = match (&args.rejects, stdin) {
        (Some(path), _) => path.clone(),
        (None, false) => beside(&args.input, ".rejects.ndjson"),
        (None, true) => PathBuf::from("stdin.rejects.ndjson"),
    };
    let mut files = Files {
        state,
        rejects,
        plan: args.plan.clone(),
        tickets: args.tickets.clone(),
    };
    // A rehearsal on the embedded sandbox keeps files of its own, beside the job's: it can never
    // mark the job's records as done in its ledger, nor replace its rejects or plan.
    if rehearsal {
        files = Files {
            state: files.state.as_deref().map(common::rehearsal_path),
            rejects: common::rehearsal_path(&files.rejects),
            plan: files.plan.as_deref().map(common::rehearsal_path),
            tickets: files.tickets.as_deref().map(common::rehearsal_path),
        };
    }
    if files.rejects == args.input {
        return Err(UsageError("--rejects must not be the input file".into()));
    }
    if let Some(tickets) = &files.tickets {
        if *tickets == args.input || *tickets == files.rejects {
            return Err(UsageError(
                "--tickets must be a file of its own (not the input, nor the rejects file)".into(),
            ));
        }
        // The ledger says who gets a ticket, and the file how far the tickets got.
        if files.state.is_none() {
            return Err(UsageError(
                "--tickets needs a run state: with the input on stdin, name one with --state DIR"
                    .into(),
            ));
        }
        if !args.dry_run {
            common::check_file_path("--tickets", tickets)?;
        }
    }
    if !args.dry_run {
        common::check_file_path("--rejects", &files.rejects)?;
        if let Some(dir) = &files.state {
            common::check_dir_path("--state", dir)?;
        }
    }
    if let Some(plan) = &files.plan {
        common::check_file_path("--plan", plan)?;
    }
    Ok(files)
}

/// Where a rehearsal writes instead of the job's own files.
fn rehearsal_notice(spec: &ImportSpec) -> String {
    format!(
        "Rehearsal on an embedded sandbox tenant: rejects go to {}{}{}; the job's own \
         state and files are not touched.",
        spec.rejects.display(),
        spec.state
            .as_ref()
            .map(|p| format!(", state to {}", p.display()))
            .unwrap_or_default(),
        spec.plan_file
            .as_ref()
            .map(|p| format!(", the plan to {}", p.display()))
            .unwrap_or_default(),
    )
}

/// The closing summary in words.
pub(super) fn summary_lines(summary: &ImportSummary) -> Vec<String> {
    let would = if summary.dry_run { "would be " } else { "" };
    let counts = crate::api::Counts {
        requests: summary.requests,
        throttled: summary.throttled,
        retries: summary.retries,
    };
    let mut lines = vec![format!(
        "Read {} records: {} {would}created, {} {would}updated, {} unchanged, {} skipped, {} \
         rejected ({}).",
        HumanCount(summary.read),
        HumanCount(summary.created),
        HumanCount(summary.updated),
        HumanCount(summary.unchanged),
        HumanCount(summary.skipped),
        HumanCount(summary.rejected),
        common::costs_text(counts, summary.elapsed_seconds, summary.resumed),
    )];
    lines.extend(common::budgets_line(&summary.budgets));
    let see = if summary.dry_run {
        "a dry run writes no rejects file; --plan FILE lists every record"
    } else {
        "see the rejects file"
    };
    lines.extend(warnings::problem_lines(
        "Rejected",
        &summary.rejects_by_code,
        &summary.unlogged_rejects,
        &summary.unlogged_skips,
        see,
    ));
    lines.extend(warnings::unlogged_lines(
        &summary.unlogged_notes,
        "warned; not logged",
    ));
    if summary.rejected > 0 && !summary.dry_run {
        lines.push(format!(
            "Rejected records are in {} with the reason in `_error`; fix them and import that file.",
            summary.rejects
        ));
    }
    if let Some(tickets) = &summary.tickets {
        let failed = if tickets.failed > 0 {
            format!(
                "; {} users the tenant no longer knows have `\"ticket\": null` and the reason",
                tickets.failed
            )
        } else {
            String::new()
        };
        lines.push(format!(
            "Password-change tickets: {} written by this run, {} in the tickets file{failed}.",
            tickets.written, tickets.total
        ));
    }
    if !summary.completed {
        lines
            .push("Interrupted; the ledger is saved. Run the same command again to resume.".into());
    }
    lines
}

/// How an import error ends the run: what re-running alone cannot fix is configuration.
pub(super) fn failure(error: ImportError) -> anyhow::Error {
    match error {
        ImportError::Usage(message) => UsageError(message).into(),
        // The state itself is the problem (locked, unreadable): re-running alone cannot help.
        ImportError::State(e) => e.into(),
        ImportError::Input(e) => UsageError(e.to_string()).into(),
        // A bad line of the hash file, found before any request.
        ImportError::HashFile(e) => UsageError(e.to_string()).into(),
        ImportError::Api(e) => common::api_failure(e),
        e @ ImportError::InputCut { .. } => anyhow::Error::new(e).context(
            "the import stopped where its input breaks off; the records before that point \
             were applied. Replace the input with a complete copy and run the same command \
             again: it resumes after them",
        ),
        e => anyhow::Error::new(e)
            .context("the import stopped; run the same command again to resume"),
    }
}

/// Why PATH cannot be the input, if it cannot: it must be a regular file.
fn input_problem(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => None,
        Ok(meta) if meta.is_dir() => Some("is a directory; give the file to import".into()),
        // The state and rejects files go beside the input, which needs a real file.
        Ok(_) => Some(
            "is not a regular file (a pipe or a device); to read a stream, pipe it in with \
             --input -"
                .into(),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("no such file".into()),
        Err(e) => Some(format!("cannot read it: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_that_is_not_a_file_is_named_for_what_it_is() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("users.ndjson");
        std::fs::write(&file, "").expect("write");
        assert_eq!(input_problem(&file), None);
        let problem = |path: &Path| input_problem(path).expect("a problem");
        assert!(problem(dir.path()).contains("is a directory"));
        assert!(problem(&dir.path().join("missing.ndjson")).contains("no such file"));
        #[cfg(unix)]
        assert!(problem(Path::new("/dev/null")).contains("not a regular file"));
    }
}
