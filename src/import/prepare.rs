//! What each record needs before the tenant, decided in input order: done in an earlier run,
//! rejected now (unreadable, invalid, a duplicate in create mode), or to apply.
//!
//! Everything here depends on the records before it (a duplicate is the second record for a
//! user; a resumed run's done records still claim their user), so the pipeline calls it
//! synchronously, one record at a time, in input order, before any concurrency.
//!
//! The users claimed so far are kept on disk ([`Seen`]), so memory stays flat whatever the
//! input's size. Should that fail (a full disk), the record at hand and every one after it is
//! [`Prepared::Cut`]: nothing more is applied, and the run ends with the error the set holds.

use serde_json::Value;

use super::apply::Applied;
use super::ledger::{Outcome, Recovered};
use super::plan::{self, Mode, PlanOptions, Planned};
use super::read::{self, Record};
use super::seen::Seen;

/// A record, ready for the tenant or already decided.
pub(super) enum Prepared {
    /// The input broke off: the run stops (resumable) rather than count it against a record.
    Cut(String),
    /// Done in an earlier run.
    Done(Outcome),
    /// Refused before any request; the original object when there was one.
    Reject(Applied, Option<Value>),
    /// To apply; true when an earlier run's create for it was in flight.
    Apply(Box<Planned>, bool),
}

/// The in-order decisions, with what they remember of the records before.
pub(super) struct Prepare<'a> {
    options: &'a PlanOptions,
    recovered: &'a Recovered,
    /// In create mode, a second record for a user is a duplicate of the first: the first
    /// record's line, by the user's key (the key itself, so two users are never confused).
    seen: &'a mut Seen,
}

impl<'a> Prepare<'a> {
    pub fn new(
        options: &'a PlanOptions,
        recovered: &'a Recovered,
        seen: &'a mut Seen,
    ) -> Prepare<'a> {
        Prepare {
            options,
            recovered,
            seen,
        }
    }

    /// Decides record `ordinal` (its 1-based position in the input).
    pub fn next(&mut self, ordinal: u64, record: &Record) -> Prepared {
        if let Err(e) = &record.result
            && e.code == read::code::READ_ERROR
        {
            return Prepared::Cut(e.message.clone());
        }
        if self.seen.has_failed() {
            return Prepared::Cut(self.seen.place());
        }
        let done = self.recovered.done.get(&ordinal).copied();
        let object = match (&record.result, done) {
            (_, Some(outcome)) if self.options.mode != Mode::Create => {
                return Prepared::Done(outcome);
            }
            (Ok(object), _) => object,
            (Err(_), Some(outcome)) => return Prepared::Done(outcome),
            (Err(e), None) => {
                let message = match &e.field {
                    Some(field) => format!("field {field}: {}", e.message),
                    None => e.message.clone(),
                };
                let rejected = Applied::rejected(e.code, message, None).with_field(e.field.clone());
                return Prepared::Reject(rejected, None);
            }
        };
        let original = Some(Value::Object(object.clone()));
        let planned = match plan::plan(object, self.options) {
            Ok(planned) => planned,
            Err(_) if done.is_some() => return Prepared::Done(done.expect("checked")),
            Err(invalid) => {
                let message = match &invalid.field {
                    Some(field) if !invalid.message.contains(field.as_str()) => {
                        format!("field {field}: {}", invalid.message)
                    }
                    _ => invalid.message.clone(),
                };
                let rejected =
                    Applied::rejected(invalid.code, message, None).with_field(invalid.field);
                return Prepared::Reject(rejected, original);
            }
        };
        if self.options.mode == Mode::Create {
            if let Some(prepared) = self.claim(&planned, record.line, done, original) {
                return prepared;
            }
        } else if let Some(outcome) = done {
            return Prepared::Done(outcome);
        }
        Prepared::Apply(
            Box::new(planned),
            self.recovered.in_flight.contains(&ordinal),
        )
    }

    /// Create mode: the first record for a user claims it, a later one is a duplicate.
    /// Records done in an earlier run still claim their user, so a later duplicate is
    /// rejected exactly as in a clean run. `None` when the record is to be applied.
    fn claim(
        &mut self,
        planned: &Planned,
        line: u64,
        done: Option<Outcome>,
        original: Option<Value>,
    ) -> Option<Prepared> {
        let first = match self.seen.claim(&planned.key, line) {
            Ok(first) => first,
            // The set holds the error for the run's end; nothing is applied from here on.
            Err(_) => return Some(Prepared::Cut(self.seen.place())),
        };
        if let Some(outcome) = done {
            return Some(Prepared::Done(outcome));
        }
        if let Some(first) = first {
            return Some(Prepared::Reject(
                Applied::rejected(
                    "duplicate_record",
                    format!(
                        "the same user ({}) as line {first}: create mode takes each user once",
                        planned.key
                    ),
                    None,
                ),
                original,
            ));
        }
        None
    }
}
