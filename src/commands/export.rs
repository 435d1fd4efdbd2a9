//! `auth0-bulk export`: flags → a validated [`ExportSpec`] → the export → the summary and its outcome.

use indicatif::HumanCount;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;

use crate::cli::{CsvMetadata, EngineFlag, ExportArgs, OutputFormat};
use crate::exit::{RunOutcome, UsageError};
use crate::export::encode::{Encoder, Shape};
use crate::export::{
    self, Engine, ExportError, ExportSpec, ExportSummary, Output, Since, checkpoint, job,
};
use crate::format::fields;
use crate::progress::Progress;
use crate::query::Query;
use crate::terminal;

use super::common;
use super::signal::Interrupt;
use crate::report::Witness;

/// Runs `export`, telling `witness` what its report shows (`--report`).
pub async fn run(
    args: ExportArgs,
    interrupt: &Interrupt,
    witness: Witness,
) -> anyhow::Result<RunOutcome> {
    // Everything that can be checked offline is checked before the first request.
    let name = args.output.to_string_lossy().to_lowercase();
    let gzip = name.ends_with(".gz");
    if !gzip && args.gzip_level.is_some() {
        // A level that compresses nothing is a sign the output was meant to be `.gz`.
        return Err(UsageError(format!(
            "--gzip-level applies to a gzipped output, and {:?} does not end in .gz; name the \
             output for it (users.ndjson.gz) or drop --gzip-level",
            args.output
        ))
        .into());
    }
    let encoder = encoder(&args, &name)?;
    job_engine_problem(&args).map_err(UsageError)?;
    if let Some(q) = &args.query {
        // Auth0 would refuse it with a 400 on the first page; the column is in the user's text.
        Query::parse(q).map_err(|e| UsageError(format!("--query: {e} (in `{q}`)")))?;
    }
    let since = args.since.clone();
    // A rehearsal on the embedded sandbox writes files of its own, beside the job's, so it can
    // never replace the job's output or move its --since last mark.
    let rehearsal = common::is_embedded_sandbox(&args.target);
    let template = match args.output.as_os_str() {
        o if o == "-" => Output::Stdout,
        _ if rehearsal => Output::File(common::rehearsal_path(&args.output)),
        _ => Output::File(args.output.clone()),
    };
    if since == Some(Since::Last) && args.run.state.is_none() && template == Output::Stdout {
        return Err(UsageError("--since last needs a run state: pass --state DIR".into()).into());
    }
    let state = match (&args.run.state, &template) {
        (Some(dir), _) if rehearsal => Some(common::rehearsal_path(dir)),
        (Some(dir), _) => Some(dir.clone()),
        (None, Output::File(path)) => Some(default_state(path)),
        (None, Output::Stdout) => None,
    };
    if let Some(users) = &args.users
        && !users.is_file()
    {
        return Err(UsageError(format!("--users {}: no such file", users.display())).into());
    }
    if let Output::File(path) = &template {
        common::check_file_path("--output", path)?;
    }
    if let Some(dir) = &state {
        common::check_dir_path("--state", dir)?;
    }
    let resolved = common::resolve_target(&args.target, &args.embedded).await?;
    let mut spec = ExportSpec {
        // The job's settings need the tenant: filled in once it is reached.
        engine: match args.engine {
            EngineFlag::Api => Engine::Api,
            EngineFlag::Job => Engine::Job(job::JobSettings::default()),
        },
        query: args.query.clone(),
        connection: args.connection.clone(),
        since,
        users_file: args.users.clone(),
        encoder,
        gzip,
        gzip_level: args
            .gzip_level
            .unwrap_or(crate::export::sink::DEFAULT_GZIP_LEVEL),
        output: template.clone(),
        template,
        state,
        // The embedded tenant lives only as long as this run: there is nothing to resume.
        fresh: args.run.fresh || rehearsal,
        index_lag: Duration::from_secs(args.index_lag),
        domain: resolved.domain.clone(),
        include: args.include.unwrap_or_default(),
    };
    checkpoint::prepare(&mut spec, args.overwrite, Utc::now()).map_err(failure)?;
    if rehearsal {
        terminal::say(format!(
            "Rehearsal on an embedded sandbox tenant: writing {} (state in {}); the job's own \
             output and state are not touched.",
            spec.output.name(),
            spec.state
                .as_ref()
                .map_or("no state".into(), |p| p.display().to_string())
        ));
    }
    let cancel = interrupt.arm();
    let client = common::client(&resolved, &args.pace, &cancel)?;
    witness.client(&client, &resolved.domain);
    terminal::say(format!(
        "Exporting from {} to {}",
        resolved.target.display(),
        spec.output.name()
    ));
    common::reach(&client, spec.state.as_deref()).await?;
    check_include_scopes(&spec, &client).await?;
    if let Engine::Job(settings) = &mut spec.engine {
        *settings = job::prepare(&client, spec.connection.as_deref())
            .await
            .map_err(failure)?;
    }
    let progress = Progress::new(args.summary.quiet, "users");
    let result = export::run(&spec, &client, &progress, &cancel).await;
    progress.finish();
    let (mut summary, outcome) = match result {
        Ok(done) => done,
        // `| head` closed the pipe: the reader has what it wanted, as with ripgrep.
        Err(ExportError::Output { source, .. })
            if spec.output == Output::Stdout && source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            return Ok(RunOutcome::Success);
        }
        Err(e) => return Err(failure(e)),
    };
    witness.summary(&summary);
    if spec.engine == Engine::Api && spec.users_file.is_none() {
        witness.windows(std::mem::take(&mut summary.walked));
    }
    common::print_summary(
        &summary_lines(&summary),
        &summary,
        args.summary.json,
        spec.output == Output::Stdout,
    )?;
    drop(resolved);
    Ok(outcome)
}

/// `--include` reads roles and organizations with scopes of their own: a token without them is
/// told before any user is read (exit 2), not after the first 403.
async fn check_include_scopes(
    spec: &ExportSpec,
    client: &crate::api::Client,
) -> anyhow::Result<()> {
    if !spec.include.any() {
        return Ok(());
    }
    let flag = format!("--include {}", spec.include);
    match client
        .lacks_scopes(&flag, &spec.include.scopes())
        .await
        .map_err(common::api_failure)?
    {
        Some(problem) => Err(UsageError(problem).into()),
        None => Ok(()),
    }
}

/// What `--engine job` cannot do with the other flags, said before anything is sent.
fn job_engine_problem(args: &ExportArgs) -> Result<(), String> {
    if args.engine != EngineFlag::Job {
        return Ok(());
    }
    let why = "Auth0's export job takes no query and no updated_at filter: it exports every \
               user, or one --connection's";
    if args.query.is_some() {
        return Err(format!(
            "--query with --engine job: {why}; export with --engine api (the default) to select \
             users by query"
        ));
    }
    if args.since.is_some() {
        return Err(format!(
            "--since with --engine job: {why}; export with --engine api (the default) for the \
             users changed since a time"
        ));
    }
    if args.users.is_some() {
        return Err(format!(
            "--users with --engine job: {why}; export with --engine api (the default) to fetch \
             listed users"
        ));
    }
    Ok(())
}

/// The closing summary in words.
fn summary_lines(summary: &ExportSummary) -> Vec<String> {
    let mut lines = Vec::new();
    if summary.completed {
        lines.push(format!(
            "Exported {} users to {} in {:.1}s: {} requests, {} windows, {} throttled (429), {} retries{}.",
            HumanCount(summary.users), summary.output, summary.elapsed_seconds,
            HumanCount(summary.requests), HumanCount(summary.windows),
            HumanCount(summary.throttled), HumanCount(summary.retries),
            if summary.resumed { ", resumed from a checkpoint" } else { "" }
        ));
        if let Some(job) = &summary.job {
            lines.push(format!(
                "Export job {}: {} users changed while it ran were read again through the API \
                 (the catch-up pass); {} of its file's copies were left out for them.",
                job.id, job.caught_up, job.replaced
            ));
        }
        if let Some(authz) = &summary.authz {
            let mut line = format!(
                "--include {}: {} roles and {} organizations with {} assignments read in {} \
                 requests",
                authz.include, authz.roles, authz.organizations, authz.assignments, authz.requests
            );
            if authz.include.contains("permissions") {
                line.push_str(&format!(
                    "; direct permissions read one user at a time ({} requests)",
                    authz.permission_requests
                ));
            }
            lines.push(line + ".");
        }
        lines.extend(common::budgets_line(&summary.budgets));
        if summary.not_found > 0 {
            lines.push(format!(
                "{} listed users were not found in the tenant (see the warnings above).",
                summary.not_found
            ));
        }
    } else {
        lines.push(format!(
            "Interrupted after {} users; the checkpoint is saved. Run the same command again to resume.",
            summary.users
        ));
    }
    lines
}

/// How users are written: the fields (`--fields`, `--exclude-fields`, `--rename`) and the
/// format (`--format` or the output's `name`, `--csv-metadata`, `--csv-escape-formulas`).
fn encoder(args: &ExportArgs, name: &str) -> Result<Encoder, UsageError> {
    let shape = shape(args)?;
    match output_format(name, args.format)? {
        OutputFormat::Ndjson => Ok(Encoder::ndjson(shape)),
        OutputFormat::Csv => {
            let flatten = match args.csv_metadata {
                CsvMetadata::Json => false,
                CsvMetadata::Flatten => true,
            };
            Encoder::csv(shape, flatten, args.csv_escape_formulas)
                .map_err(|e| UsageError(format!("--fields: {e}")))
        }
    }
}

/// How an export error ends the run: what re-running alone cannot fix is configuration.
pub(super) fn failure(error: ExportError) -> anyhow::Error {
    match error {
        ExportError::Usage(message) => UsageError(message).into(),
        // The state itself is the problem (locked, unreadable): re-running alone cannot help.
        ExportError::State(e) => e.into(),
        ExportError::Walk(crate::export::walk::WalkError::Api(e)) => common::api_failure(e),
        ExportError::Authz(crate::export::authz::AuthzError::Api(e)) => common::api_failure(e),
        // Each says what to do: run again, or start over with --fresh.
        ExportError::Job(e) => e.into(),
        e => anyhow::Error::new(e)
            .context("the export stopped; run the same command again to resume"),
    }
}

/// The format: `--format`, else the name's extension (`.csv`, `.csv.gz`), else NDJSON. A
/// `--format` that the name contradicts is refused: a `users.ndjson` holding CSV fools the
/// next reader.
fn output_format(name: &str, format: Option<OutputFormat>) -> Result<OutputFormat, UsageError> {
    let base = name.strip_suffix(".gz").unwrap_or(name);
    let named = if base.ends_with(".csv") {
        Some(OutputFormat::Csv)
    } else if [".ndjson", ".jsonl", ".json"]
        .iter()
        .any(|e| base.ends_with(e))
    {
        Some(OutputFormat::Ndjson)
    } else {
        None
    };
    match (format, named) {
        (Some(f), Some(n)) if f != n => {
            let (f, n) = (f.name(), n.name());
            Err(UsageError(format!(
                "--format {f} does not fit the output's name {name:?}, which says {n}; name the \
                 file for its format (users.{f}) or drop --format"
            )))
        }
        (Some(f), _) => Ok(f),
        (None, Some(n)) => Ok(n),
        (None, None) => Ok(OutputFormat::Ndjson),
    }
}

fn shape(args: &ExportArgs) -> Result<Shape, UsageError> {
    let clean = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty())
            .collect()
    };
    let rename = args.rename.clone();
    let include = clean(&args.fields);
    let exclude = clean(&args.exclude_fields);
    // A name the tool cannot find would otherwise drop its column in silence. The keys
    // `--include` adds are the tool's, not the tenant's: named, they are columns of their own.
    let asked = args.include.unwrap_or_default();
    let mut tenant_fields = Vec::with_capacity(include.len());
    for name in &include {
        match crate::export::authz::KEYS.iter().find(|k| *k == name) {
            Some(key) if asked.keys().contains(key) => {}
            Some(key) => {
                return Err(UsageError(format!(
                    "--fields names {key}, which the tool adds only with --include {key}: add \
                     --include {key}, or leave {key} out of --fields"
                )));
            }
            None => tenant_fields.push(name.clone()),
        }
    }
    if !include.is_empty() {
        fields::check_selection("--fields", &tenant_fields).map_err(UsageError)?;
    }
    fields::check_selection("--exclude-fields", &exclude).map_err(UsageError)?;
    Ok(Shape {
        include: if include.is_empty() {
            None
        } else {
            Some(include)
        },
        exclude,
        rename,
    })
}

/// `exports/users.ndjson` → `exports/users.ndjson.state`.
pub fn default_state(output: &Path) -> PathBuf {
    crate::state::beside(output, ".state")
}
