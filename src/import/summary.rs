//! What an import did, counted as records finish: `read` always equals the sum of the
//! outcomes, whichever run of a resumed import decided them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::ledger::Outcome;
use crate::api::Counts;
use crate::exit::RunOutcome;
use crate::net::pace::BudgetReport;
use crate::warnings::ByCode;

/// What the import did; `read` always equals the sum of the outcomes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportSummary {
    pub command: &'static str,
    pub dry_run: bool,
    pub read: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub rejected: u64,
    /// The rejected records by code, each with its first example; earlier runs' too, so the
    /// counts add up to `rejected`.
    pub rejects_by_code: ByCode,
    /// This run's rejects and skips whose warning was not logged, by code (the summary says
    /// how many).
    #[serde(skip)]
    pub unlogged_rejects: BTreeMap<String, u64>,
    #[serde(skip)]
    pub unlogged_skips: BTreeMap<String, u64>,
    /// Other per-record warnings not logged, by code (`hash_not_applied`).
    #[serde(skip)]
    pub unlogged_notes: BTreeMap<String, u64>,
    pub requests: u64,
    pub throttled: u64,
    pub retries: u64,
    /// The tenant's rate-limit buckets as the run learnt them (one per endpoint group that
    /// has its own, else one for all).
    pub budgets: Vec<BudgetReport>,
    pub elapsed_seconds: f64,
    pub resumed: bool,
    pub rejects: String,
    /// `--tickets`: what the tickets stage did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tickets: Option<super::tickets::TicketCounts>,
    pub completed: bool,
}

impl ImportSummary {
    pub(super) fn new(dry_run: bool, resumed: bool, rejects: String) -> ImportSummary {
        ImportSummary {
            command: "import",
            dry_run,
            resumed,
            rejects,
            ..Default::default()
        }
    }

    pub(super) fn add(&mut self, outcome: Outcome) {
        self.read += 1;
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Skipped => self.skipped += 1,
            Outcome::Rejected => self.rejected += 1,
        }
    }

    /// Adds the client's request counts and budgets, and the run's duration.
    pub(super) fn add_run(
        &mut self,
        counts: Counts,
        budgets: Vec<BudgetReport>,
        elapsed: Duration,
    ) {
        self.budgets = budgets;
        self.requests = counts.requests;
        self.throttled = counts.throttled;
        self.retries = counts.retries;
        self.elapsed_seconds = elapsed.as_secs_f64();
    }

    /// Marks a run that gave every record an outcome; says how it ended.
    pub(super) fn complete(&mut self) -> RunOutcome {
        self.completed = true;
        if self.rejected > 0 {
            RunOutcome::Rejected
        } else {
            RunOutcome::Success
        }
    }
}
