//! `auth0-bulk delete`: flags → the list of users (a `--users` file, or a `--query`'s matches
//! collected by an export walk) → the deletion engine ([`crate::delete`]) → the summary.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use futures::Stream;

use crate::api::Client;
use crate::cli::DeleteArgs;
use crate::delete::{self, DeleteError, DeleteOptions, DeleteSummary, Record};
use crate::exit::{RunOutcome, UsageError};
use crate::export::encode::{Encoder, Shape};
use crate::export::{self, Engine, ExportSpec, Output, checkpoint};
use crate::progress::Progress;
use crate::query::Query;
use crate::report::Witness;
use crate::state::beside;
use crate::state::resume::JobOptions;
use crate::{terminal, warnings};

use super::common;
use super::signal::Interrupt;

/// The `--query` matches, in the state: one `{"user_id": ...}` a line.
const MATCHES: &str = "matches.ndjson";
/// The export state of the walk that collects them.
const MATCHES_STATE: &str = "matches.state";

/// Where the users to delete come from.
enum Source {
    /// A list file: user_ids or emails.
    List(PathBuf),
    /// The matches of a query, collected first.
    Query(String),
}

pub async fn run(
    args: DeleteArgs,
    interrupt: &Interrupt,
    witness: Witness,
) -> anyhow::Result<RunOutcome> {
    // Everything that can be checked offline is checked before the first request.
    if !args.dry_run && !args.yes {
        return Err(UsageError(
            "deleting users cannot be undone in Auth0: look first with --dry-run, then pass \
             --yes to delete (each user's before-image is kept in STATE/deleted.ndjson)"
                .into(),
        )
        .into());
    }
    let source = match (&args.users, &args.query) {
        (Some(list), _) => {
            if !list.is_file() {
                return Err(UsageError(format!("--users {}: no such file", list.display())).into());
            }
            Source::List(list.clone())
        }
        (None, Some(q)) => {
            // Auth0 would refuse it with a 400 on the first page; the column is in the text.
            Query::parse(q).map_err(|e| UsageError(format!("--query: {e} (in `{q}`)")))?;
            Source::Query(q.clone())
        }
        (None, None) => unreachable!("clap requires --users or --query"),
    };
    let rehearsal = common::is_embedded_sandbox(&args.target);
    let state = match (&args.run.state, &source) {
        (Some(dir), _) => dir.clone(),
        (None, Source::List(list)) => beside(list, ".state"),
        // A dry run keeps no state: its matches go to a temporary folder.
        (None, Source::Query(_)) if args.dry_run => PathBuf::new(),
        (None, Source::Query(_)) => {
            return Err(UsageError(
                "--query needs --state DIR: where the matching user_ids, the before-images of \
                 the deleted users and the ledger are kept (a re-run with the same --state \
                 resumes)"
                    .into(),
            )
            .into());
        }
    };
    let state = if rehearsal {
        common::rehearsal_path(&state)
    } else {
        state
    };
    if !args.dry_run {
        common::check_dir_path("--state", &state)?;
    }
    // A rehearsal writes a plan of its own, beside the job's.
    let plan = args.plan.as_deref().map(|plan| match rehearsal {
        true => common::rehearsal_path(plan),
        false => plan.to_path_buf(),
    });
    if let Some(plan) = &plan {
        if args
            .users
            .as_deref()
            .is_some_and(|list| same_file(list, plan))
        {
            return Err(UsageError(
                "--plan must be a file of its own, not the --users list".into(),
            )
            .into());
        }
        common::check_file_path("--plan", plan)?;
        // Before any request: a file that cannot be written is bad configuration. The engine
        // appends, so the file starts empty.
        crate::state::create_private(plan)
            .map_err(|e| UsageError(format!("--plan {}: cannot write it: {e}", plan.display())))?;
    }
    let resolved = common::resolve_target(&args.target, &args.embedded).await?;
    let options = DeleteOptions {
        domain: resolved.domain.clone(),
        job: JobOptions::new()
            .with_optional(
                "--users",
                args.users
                    .as_deref()
                    .map(|p| p.to_string_lossy())
                    .as_deref(),
            )
            .with_optional("--query", args.query.as_deref()),
        dry_run: args.dry_run,
        plan,
        // The embedded tenant lives only as long as this run: there is nothing to resume.
        fresh: args.run.fresh || rehearsal,
    };
    let resumes = match args.dry_run {
        true => false,
        false => delete::check_state(&state, &options).map_err(failure)?,
    };
    let cancel = interrupt.arm();
    let client = common::client(&resolved, &args.pace, &cancel)?;
    witness.client(&client, &resolved.domain);
    common::reach(&client, Some(state.as_path()).filter(|_| !args.dry_run)).await?;
    check_scopes(&client, "delete", args.dry_run).await?;
    let collected = match &source {
        Source::List(_) => None,
        Source::Query(q) => {
            let dir = match args.dry_run {
                true => Some(tempfile::tempdir().map_err(anyhow::Error::from)?),
                false => None,
            };
            let at = dir.as_ref().map_or(state.as_path(), |d| d.path());
            let matches = at.join(MATCHES);
            // A resumed deletion goes on with the list it collected: collecting again would
            // miss the users already deleted, and the ledger counts positions in the list.
            if !resumes {
                let spec = collect_spec(q, at, &resolved.domain)?;
                let progress = Progress::new(args.summary.quiet, "matches");
                terminal::say("Collecting the users that match the query...");
                let result = export::run(&spec, &client, &progress, &cancel).await;
                progress.finish();
                let (summary, outcome) = result.map_err(super::export::failure)?;
                if outcome == RunOutcome::Interrupted {
                    terminal::say("Interrupted while collecting the matches; nothing was deleted.");
                    return Ok(RunOutcome::Interrupted);
                }
                terminal::say(format!("{} users match the query.", summary.users));
            }
            Some((matches, dir))
        }
    };
    let (list, kind) = match (&source, &collected) {
        (Source::List(list), _) => (list.clone(), Kind::Keys),
        (_, Some((matches, _))) => (matches.clone(), Kind::Matches),
        (Source::Query(_), None) => unreachable!("a query's matches are collected"),
    };
    let progress = Progress::new(args.summary.quiet, "users");
    progress.set_total(count_lines(&list)?);
    let verb = if args.dry_run {
        "Looking up the users to delete (dry run: nothing is deleted)"
    } else {
        "Deleting users"
    };
    terminal::say(format!("{verb} from {}", resolved.target.display()));
    let result = delete::delete_users(
        &client,
        records(&list, kind)?,
        &state,
        &options,
        &progress,
        &cancel,
    )
    .await;
    progress.finish();
    let (summary, outcome) = result.map_err(failure)?;
    witness.summary(&summary);
    common::print_summary(&summary_lines(&summary), &summary, args.summary.json, false)?;
    drop(collected);
    drop(resolved);
    Ok(outcome)
}

/// A deletion needs read:users and delete:users (a dry run only the first): a token without
/// them is told before anything is deleted (exit 2). `command` is what deletes (`delete`, or
/// `undo` for the users an import created).
pub(super) async fn check_scopes(
    client: &Client,
    command: &str,
    dry_run: bool,
) -> anyhow::Result<()> {
    let (flag, needed): (String, &[&str]) = match dry_run {
        true => (format!("{command} --dry-run"), &["read:users"]),
        false => (command.to_string(), &["read:users", "delete:users"]),
    };
    match client
        .lacks_scopes(&flag, needed)
        .await
        .map_err(common::api_failure)?
    {
        Some(problem) => Err(UsageError(problem).into()),
        None => Ok(()),
    }
}

/// The export that collects a query's matches into `dir`: only their user_ids (the walk
/// asks for `user_id,created_at` alone), resumable in `dir/matches.state`, started over.
fn collect_spec(query: &str, dir: &Path, domain: &str) -> anyhow::Result<ExportSpec> {
    let output = Output::File(dir.join(MATCHES));
    let mut spec = ExportSpec {
        engine: Engine::Api,
        query: Some(query.to_string()),
        connection: None,
        since: None,
        users_file: None,
        encoder: Encoder::ndjson(Shape {
            include: Some(vec!["user_id".into()]),
            exclude: Vec::new(),
            rename: Vec::new(),
        }),
        gzip: false,
        gzip_level: export::sink::DEFAULT_GZIP_LEVEL,
        output: output.clone(),
        template: output,
        state: Some(dir.join(MATCHES_STATE)),
        fresh: true,
        index_lag: Duration::ZERO,
        domain: domain.to_string(),
        include: Default::default(),
    };
    checkpoint::prepare(&mut spec, true, Utc::now()).map_err(super::export::failure)?;
    Ok(spec)
}

/// How the list's lines name users.
#[derive(Clone, Copy)]
enum Kind {
    /// A user_id or an email a line (`--users`).
    Keys,
    /// `{"user_id": ...}` a line (collected matches).
    Matches,
}

/// The list's users, by line, streamed (the list is never held in memory).
fn records(list: &Path, kind: Kind) -> anyhow::Result<impl Stream<Item = std::io::Result<Record>>> {
    let file = std::fs::File::open(list)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", list.display())))?;
    let lines = std::io::BufReader::new(file).lines().zip(1u64..);
    let records = lines.filter_map(move |(line, number)| {
        let record = |key: &str| Record {
            line: number,
            key: key.to_string(),
        };
        match (line, kind) {
            (Err(e), _) => Some(Err(e)),
            (Ok(line), Kind::Keys) => crate::export::list::key_of(&line).map(record).map(Ok),
            (Ok(line), Kind::Matches) => Some(match_id(&line).map(|id| record(&id))),
        }
    });
    Ok(futures::stream::iter(records))
}

/// The user_id of a collected match.
fn match_id(line: &str) -> std::io::Result<String> {
    #[derive(serde::Deserialize)]
    struct Match {
        user_id: String,
    }
    serde_json::from_str::<Match>(line)
        .map(|m| m.user_id)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Whether two paths name one file (as written, when either does not exist).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Lines in the list, for the progress bar's total.
fn count_lines(list: &Path) -> anyhow::Result<u64> {
    let file = std::fs::File::open(list)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", list.display())))?;
    Ok(std::io::BufReader::new(file).lines().count() as u64)
}

/// The closing summary in words.
fn summary_lines(summary: &DeleteSummary) -> Vec<String> {
    let would = if summary.dry_run { "would be " } else { "" };
    let counts = crate::api::Counts {
        requests: summary.requests,
        throttled: summary.throttled,
        retries: summary.retries,
    };
    let mut lines = vec![format!(
        "Read {} users: {} {would}deleted, {} skipped ({} not found, {} listed twice), {} \
         rejected ({}).",
        indicatif::HumanCount(summary.read),
        indicatif::HumanCount(summary.deleted),
        indicatif::HumanCount(summary.skipped),
        indicatif::HumanCount(summary.not_found),
        indicatif::HumanCount(summary.duplicates),
        indicatif::HumanCount(summary.rejected),
        common::costs_text(counts, summary.elapsed_seconds, summary.resumed),
    )];
    lines.extend(common::budgets_line(&summary.budgets));
    let see = match &summary.rejects {
        Some(_) => "see the rejects file",
        None => "a dry run writes no rejects file",
    };
    lines.extend(warnings::problem_lines(
        "Rejected",
        &summary.rejects_by_code,
        &summary.unlogged_rejects,
        &summary.unlogged_skips,
        see,
    ));
    if let Some(rejects) = summary.rejects.as_ref().filter(|_| summary.rejected > 0) {
        lines.push(format!(
            "Rejected lines are in {rejects}, each after a # line saying why; fix them and pass \
             that file to --users."
        ));
    }
    if let Some(images) = &summary.before_images {
        lines.push(format!(
            "Before-images of the deleted users are in {images}; to bring them back with their \
             ids (not their passwords, which the API never returns): auth0-bulk undo {}",
            summary.state.as_deref().unwrap_or("STATE")
        ));
    }
    if !summary.completed {
        lines
            .push("Interrupted; the ledger is saved. Run the same command again to resume.".into());
    }
    lines
}

/// How a deletion error ends the run: what re-running alone cannot fix is configuration.
pub(super) fn failure(error: DeleteError) -> anyhow::Error {
    match error {
        // The state itself is the problem (locked, damaged, another tenant's).
        DeleteError::State(e) => e.into(),
        DeleteError::OtherJob(e) => UsageError(e.to_string()).into(),
        DeleteError::Api(e) => common::api_failure(e),
        e => anyhow::Error::new(e)
            .context("the deletion stopped; run the same command again to resume"),
    }
}
