//! `auth0-bulk undo STATE`: flags → a validated [`UndoSpec`] → the restore → the summary and its outcome.

use crate::cli::UndoArgs;
use crate::exit::{RunOutcome, UsageError};
use crate::import::undo::{self, UndoSpec};
use crate::progress::Progress;

use super::common;
use super::import::{failure, summary_lines};
use super::signal::Interrupt;

pub async fn run(args: UndoArgs, interrupt: &Interrupt) -> anyhow::Result<RunOutcome> {
    if common::is_embedded_sandbox(&args.target) {
        // Its tenant lives as long as this run: the import's users are not in it.
        return Err(UsageError(
            "undo needs the tenant the import changed; the embedded sandbox (--domain sandbox) \
             is a new one each run"
                .into(),
        )
        .into());
    }
    if let Some(plan) = &args.plan {
        common::check_file_path("--plan", plan)?;
    }
    let resolved = common::resolve_target(&args.target).await?;
    let spec = UndoSpec {
        state: args.state.clone(),
        dry_run: args.dry_run,
        plan_file: args.plan.clone(),
        concurrency: args
            .pace
            .concurrency
            .unwrap_or(crate::net::workers::CEILING),
        domain: resolved.domain.clone(),
    };
    // A state that is not an import's, or is another tenant's, before any request.
    undo::check(&spec).map_err(failure)?;
    let cancel = interrupt.arm();
    let client = common::client(&resolved, &args.pace, &cancel)?;
    let verb = if args.dry_run {
        "Planning an undo (dry run: nothing is written)"
    } else {
        "Undoing"
    };
    eprintln!(
        "{verb}: the import whose state is {}, on {}",
        args.state.display(),
        resolved.target.display()
    );
    let progress = Progress::new(args.quiet, "records");
    let result = undo::run(&spec, &client, &progress, &cancel).await;
    progress.finish();
    let (summary, outcome) = result.map_err(failure)?;
    common::print_summary(&summary_lines(&summary), &summary, args.json, false)?;
    drop(resolved);
    Ok(outcome)
}
