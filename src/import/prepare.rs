//! What each record needs before the tenant, decided in input order: done in an earlier run,
//! rejected now (unreadable, invalid, a duplicate in create mode), or to apply.
//!
//! Everything here depends on the records before it (a duplicate is the second record for a
//! user; a resumed run's done records still claim their user), so the pipeline calls it
//! synchronously, one record at a time, in input order, before any concurrency.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use serde_json::Value;

use super::apply::Applied;
use super::ledger::{Outcome, Recovered};
use super::plan::{self, Mode, PlanOptions, Planned};
use super::read::{self, Record};

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
    /// record's line, by a hash of the user's key.
    first_line: HashMap<u64, u64>,
}

impl<'a> Prepare<'a> {
    pub fn new(options: &'a PlanOptions, recovered: &'a Recovered) -> Prepare<'a> {
        Prepare {
            options,
            recovered,
            first_line: HashMap::new(),
        }
    }

    /// Decides record `ordinal` (its 1-based position in the input).
    pub fn next(&mut self, ordinal: u64, record: &Record) -> Prepared {
        if let Err(e) = &record.result
            && e.code == read::code::READ_ERROR
        {
            return Prepared::Cut(e.message.clone());
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
        let mut hasher = DefaultHasher::new();
        planned.key.hash(&mut hasher);
        let hash = hasher.finish();
        if let Some(outcome) = done {
            self.first_line.entry(hash).or_insert(line);
            return Some(Prepared::Done(outcome));
        }
        if let Some(first) = self.first_line.get(&hash) {
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
        self.first_line.insert(hash, line);
        None
    }
}
