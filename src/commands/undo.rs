//! `auth0-bulk undo STATE`: flags → a validated [`UndoSpec`] → the restores (or re-creations)
//! and the deletion of created users → the summary and its outcome.

use crate::cli::UndoArgs;
use crate::exit::{RunOutcome, UsageError};
use crate::import::tickets::TicketSpec;
use crate::import::undo::{self, CreatesUndone, UndoError, UndoSpec, UndoSummary, Undoes};

use super::common;
use super::import::{failure, summary_lines};
use super::signal::Interrupt;
use crate::report::Witness;
use crate::warnings;

pub async fn run(
    args: UndoArgs,
    interrupt: &Interrupt,
    witness: Witness,
) -> anyhow::Result<RunOutcome> {
    if common::is_embedded_sandbox(&args.target) {
        // Its tenant lives as long as this run: the import's users are not in it.
        return Err(UsageError(
            "undo needs the tenant the import or delete changed; the embedded sandbox \
             (--domain sandbox) is a new one each run"
                .into(),
        )
        .into());
    }
    if let Some(plan) = &args.plan {
        common::check_file_path("--plan", plan)?;
    }
    if let Some(tickets) = &args.tickets {
        common::check_file_path("--tickets", tickets)?;
    }
    let resolved = common::resolve_target(&args.target, &args.embedded).await?;
    let spec = UndoSpec {
        state: args.state.clone(),
        dry_run: args.dry_run,
        plan_file: args.plan.clone(),
        concurrency: args
            .pace
            .concurrency
            .unwrap_or(crate::net::workers::CEILING),
        domain: resolved.domain.clone(),
        quiet: args.summary.quiet,
        tickets: args.tickets.clone().map(|file| TicketSpec {
            file,
            ttl_sec: crate::cli::TICKET_TTL,
        }),
    };
    // A state that is not an import's or a deletion's, or is another tenant's, before any
    // request.
    let undoes = undo::check(&spec).map_err(failure)?;
    let created = match undoes {
        Undoes::Import => undo::created_count(&spec).map_err(failure)?,
        Undoes::Delete => 0,
    };
    let cancel = interrupt.arm();
    let client = common::client(&resolved, &args.pace, &cancel)?;
    witness.client(&client, &resolved.domain);
    if created > 0 {
        // Checked before anything is restored: the deletions come last.
        super::delete::check_scopes(&client, "undo", args.dry_run).await?;
    }
    let verb = if args.dry_run {
        "Planning an undo (dry run: nothing is written)"
    } else {
        "Undoing"
    };
    let what = match undoes {
        Undoes::Import => "the import",
        Undoes::Delete => "the deletion",
    };
    crate::terminal::say(format!(
        "{verb}: {what} whose state is {}, on {}",
        args.state.display(),
        resolved.target.display()
    ));
    let (summary, outcome) = undo::run(&spec, &client, &cancel)
        .await
        .map_err(|e| match e {
            UndoError::Import(e) => failure(e),
            UndoError::Delete(e) => super::delete::failure(e),
        })?;
    witness.summary(&summary);
    common::print_summary(&lines(&summary), &summary, args.summary.json, false)?;
    drop(resolved);
    Ok(outcome)
}

/// The closing summary in words: the importer's, then what became of created users, or what
/// re-created users lack.
fn lines(summary: &UndoSummary) -> Vec<String> {
    let mut lines = summary_lines(&summary.restore);
    if let Some(creates) = &summary.creates {
        lines.extend(creates_lines(creates, summary.restore.dry_run));
    }
    if summary.undoes == Undoes::Delete && summary.restore.created > 0 && !summary.restore.dry_run {
        let tickets = match &summary.restore.tickets {
            Some(_) => "they have password-change tickets (--tickets)",
            None => {
                "send them password-change tickets with --tickets FILE on this undo, or have \
                 them reset their passwords"
            }
        };
        lines.push(format!(
            "The {} users created again have random passwords (a password cannot come back): \
             {tickets}.",
            summary.restore.created
        ));
    }
    lines
}

fn creates_lines(creates: &CreatesUndone, dry_run: bool) -> Vec<String> {
    let would = if dry_run { "would be " } else { "" };
    let mut line = format!(
        "The import created {} users: {} {would}deleted, {} skipped (not found: already \
         deleted), {} rejected.",
        creates.read, creates.deleted, creates.not_found, creates.rejected
    );
    if let Some(images) = &creates.before_images {
        line.push_str(&format!(" Their before-images are in {images}."));
    }
    if let Some(rejects) = creates.rejects.as_ref().filter(|_| creates.rejected > 0) {
        line.push_str(&format!(
            " The users not deleted are in {rejects}, with why."
        ));
    }
    if !creates.completed {
        line.push_str(" Interrupted; run the same undo again to resume.");
    }
    let mut lines = vec![line];
    lines.extend(warnings::problem_lines(
        "Not deleted",
        &creates.rejects_by_code,
        &creates.unlogged_rejects,
        &creates.unlogged_skips,
        "see the rejects file",
    ));
    lines
}
