//! Where each record's outcome is written, whichever way it was applied: the rejects file,
//! the ledger, the log and the dry-run plan file, the summary and the progress bar.
//!
//! The log gets a warning line for the first few rejects of each code (and an info line for
//! the first few skips), not thousands: the summary counts every one by code, and says how many
//! were not logged ([`crate::warnings`]).
//!
//! The order matters: a rejected record's entry is durable in the rejects file before the
//! ledger counts it (the ledger keeps the file's length after it, so a resumed run never
//! lists a record twice), and the summary counts a record only once everything about it is
//! written.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::apply::{Applied, NewUser};
use super::ledger::{Ledger, Outcome};
use super::plan::Passwords;
use super::read::Record;
use super::rejects::{self, Rejects};
use super::reorder::InOrder;
use super::summary::ImportSummary;
use super::{ImportError, ImportSpec};
use crate::api::ApiError;
use crate::progress::Progress;
use crate::state::create_private;
use crate::warnings::Warnings;

/// Everything a finished record is written to.
pub(super) struct Outcomes<'a> {
    rejects: Rejects,
    rejects_path: &'a Path,
    passwords: &'a Passwords,
    plan_file: Option<Mutex<std::io::BufWriter<std::fs::File>>>,
    ledger: Option<&'a Ledger>,
    summary: Mutex<ImportSummary>,
    progress: &'a Progress,
    dry_run: bool,
    /// A dry run's plan lines (log and `--plan`), put back in input order.
    in_order: Option<Mutex<InOrder<(u64, Applied)>>>,
    /// Which rejects and skips get a log line.
    rejected: Warnings,
    skipped: Warnings,
    /// Which other per-record warnings get a log line (see [`Outcomes::note`]).
    notes: Warnings,
}

/// The most plan lines a dry run holds back for the records before them: far more than the
/// records in flight ([`crate::net::workers::CEILING`], or a job window).
const IN_ORDER_LIMIT: usize = 65_536;

impl<'a> Outcomes<'a> {
    /// Opens the rejects file (cut back to `rejects_at` when resuming) and the plan file.
    pub fn open(
        spec: &'a ImportSpec,
        ledger: Option<&'a Ledger>,
        rejects_at: Option<u64>,
        mut summary: ImportSummary,
        progress: &'a Progress,
    ) -> Result<Outcomes<'a>, ImportError> {
        let write_failed = |path: &Path| {
            let path = path.display().to_string();
            move |source| ImportError::Write { path, source }
        };
        // A resumed run's summary counts the earlier runs' rejects by code too.
        if let Some(len) = rejects_at.filter(|_| !spec.dry_run) {
            summary.rejects_by_code =
                rejects::codes(&spec.rejects, len).map_err(write_failed(&spec.rejects))?;
        }
        let rejects = Rejects::open(&spec.rejects, rejects_at, spec.dry_run)
            .map_err(write_failed(&spec.rejects))?;
        let plan_file = match &spec.plan_file {
            Some(path) => Some(Mutex::new(
                create_private(path).map_err(write_failed(path))?,
            )),
            None => None,
        };
        Ok(Outcomes {
            rejects,
            rejects_path: &spec.rejects,
            passwords: &spec.plan.passwords,
            plan_file,
            ledger,
            summary: Mutex::new(summary),
            progress,
            dry_run: spec.dry_run,
            in_order: spec
                .dry_run
                .then(|| Mutex::new(InOrder::new(IN_ORDER_LIMIT))),
            rejected: Warnings::default(),
            skipped: Warnings::default(),
            notes: Warnings::default(),
        })
    }

    /// Counts a per-record warning of `code` that is neither a reject nor a skip (a hash an
    /// existing user cannot take); true when it is among the first few of its code, to be
    /// logged. The summary says how many more there were.
    pub fn note(&self, code: &str) -> bool {
        self.notes.log(code)
    }

    /// Counts a record an earlier run finished.
    pub fn done_earlier(&self, outcome: Outcome) {
        self.summary.lock().expect("summary lock").add(outcome);
        self.progress.inc_earlier(1);
    }

    /// Writes what became of record `ordinal`; `original` is the object it was read as, for
    /// the rejects file. `Err` (the rejects file cannot be written) ends the run.
    pub fn finish(
        &self,
        ordinal: u64,
        record: &Record,
        applied: &Applied,
        original: Option<Value>,
    ) -> Result<(), ApiError> {
        let rejects_len = if applied.outcome == Outcome::Rejected {
            let reason = applied.reason.as_ref().expect("rejections carry a reason");
            let entry = rejects::entry(original, record, reason, self.passwords);
            let len = self
                .rejects
                .write(&entry)
                .map_err(|source| ApiError::Local {
                    what: format!("the rejects file {}", self.rejects_path.display()),
                    message: source.to_string(),
                })?;
            Some(len)
        } else {
            None
        };
        if let Some(ledger) = self.ledger
            && !self.dry_run
        {
            ledger.done_with_ticket(
                ordinal,
                applied.outcome,
                applied.user_id.as_deref(),
                rejects_len,
                applied.ticket.as_ref(),
            );
        }
        match &self.in_order {
            Some(in_order) => {
                let ready = in_order
                    .lock()
                    .expect("order lock")
                    .push(ordinal, (record.line, applied.clone()));
                self.report_all(ready);
            }
            None => self.report(record.line, applied),
        }
        let mut summary = self.summary.lock().expect("summary lock");
        summary.add(applied.outcome);
        if let Some(reason) = &applied.reason
            && applied.outcome == Outcome::Rejected
        {
            summary
                .rejects_by_code
                .add(&reason.code, record.line, &reason.message);
        }
        drop(summary);
        self.progress.inc(1);
        Ok(())
    }

    fn report_all(&self, ready: Vec<(u64, Applied)>) {
        for (line, applied) in ready {
            self.report(line, &applied);
        }
    }

    /// Reports one record, in input order in a dry run; a reject or skip is logged only for
    /// the first few records of its code.
    fn report(&self, line: u64, applied: &Applied) {
        let logged = match &applied.reason {
            Some(reason) if applied.outcome == Outcome::Rejected => self.rejected.log(&reason.code),
            Some(reason) => self.skipped.log(&reason.code),
            None => true,
        };
        report(line, applied, self.plan_file.as_ref(), self.dry_run, logged);
    }

    /// Flushes the plan file; returns the summary so far.
    pub fn close(self) -> ImportSummary {
        if let Some(in_order) = &self.in_order {
            let left = in_order.lock().expect("order lock").drain();
            self.report_all(left);
        }
        if let Some(plan_file) = self.plan_file {
            let _ = plan_file.into_inner().expect("plan lock").flush();
        }
        let mut summary = self.summary.into_inner().expect("summary lock");
        summary.unlogged_rejects = self.rejected.unlogged();
        summary.unlogged_skips = self.skipped.unlogged();
        summary.unlogged_notes = self.notes.unlogged();
        summary
    }
}

/// Logs what happened to a record (a reject or skip only when `logged`: see the module docs),
/// and writes the dry-run plan line.
fn report(
    line: u64,
    applied: &Applied,
    plan_file: Option<&Mutex<std::io::BufWriter<std::fs::File>>>,
    dry_run: bool,
    logged: bool,
) {
    let action = match (applied.outcome, dry_run) {
        (Outcome::Created, true) => "would create",
        (Outcome::Updated, true) => "would update",
        (Outcome::Created, false) => "created",
        (Outcome::Updated, false) => "updated",
        (Outcome::Unchanged, _) => "unchanged",
        (Outcome::Skipped, _) => "skipped",
        (Outcome::Rejected, _) => "rejected",
    };
    let user = applied.user_id.as_deref().unwrap_or("-");
    match &applied.reason {
        Some(_) if !logged => {}
        Some(reason) if applied.outcome == Outcome::Rejected => {
            tracing::warn!(
                "Line {line}: rejected ({}): {}",
                reason.code,
                reason.message
            );
        }
        Some(reason) => tracing::info!(
            "Line {line}: skipped {user} ({}): {}",
            reason.code,
            reason.message
        ),
        None if dry_run => {
            let what: Vec<String> = match &applied.new_user {
                Some(new) => new_user_words(new),
                None => applied.changes.iter().map(ToString::to_string).collect(),
            };
            let what = if what.is_empty() {
                String::new()
            } else {
                format!(": {}", what.join(", "))
            };
            tracing::info!("Line {line}: {action} {user}{what}");
        }
        None => tracing::debug!("Line {line}: {action} {user}"),
    }
    if let Some(out) = plan_file {
        let mut entry =
            json!({"line": line, "action": action.replace(' ', "_"), "user_id": applied.user_id});
        if !applied.changes.is_empty() {
            entry["changes"] = json!(applied.changes);
        }
        if let Some(new) = &applied.new_user {
            entry["email"] = json!(new.email);
            entry["connection"] = json!(new.connection);
        }
        if let Some(reason) = &applied.reason {
            entry["reason"] = json!({"code": reason.code, "message": reason.message});
        }
        let mut out = out.lock().expect("plan lock");
        let _ = serde_json::to_writer(&mut *out, &entry);
        let _ = out.write_all(b"\n");
    }
}

/// A user a create would make, in words: `email "ann@example.com"`, `connection db`.
fn new_user_words(new: &NewUser) -> Vec<String> {
    let email = new.email.as_deref().map(|email| format!("email {email:?}"));
    email
        .into_iter()
        .chain([format!("connection {}", new.connection)])
        .collect()
}
