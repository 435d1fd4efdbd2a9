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
    Reject(Box<Applied>, Option<Value>),
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
        let done = self.recovered.done.get(ordinal);
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
                return Prepared::Reject(Box::new(rejected), None);
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
                return Prepared::Reject(Box::new(rejected), original);
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
                Box::new(Applied::rejected(
                    "duplicate_record",
                    format!(
                        "the same user ({}) as line {first}: create mode takes each user once",
                        planned.key
                    ),
                    None,
                )),
                original,
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::import::plan::{MatchBy, MetadataStrategy, Passwords};

    fn create() -> PlanOptions {
        PlanOptions {
            mode: Mode::Create,
            match_by: MatchBy::Auto,
            connection: None,
            passwords: Passwords::Random,
            metadata: MetadataStrategy::Merge,
        }
    }

    /// Record `ordinal` for user `user`, on line `ordinal + 1` (as under a CSV header).
    fn record(ordinal: u64, user: u64) -> Record {
        let object = json!({
            "user_id": format!("auth0|u{user}"),
            "email": format!("u{user}@example.com"),
            "connection": "Username-Password-Authentication",
        });
        let Value::Object(object) = object else {
            unreachable!()
        };
        Record {
            line: ordinal + 1,
            result: Ok(object),
        }
    }

    /// What became of a record, in a word (and the duplicate's message).
    fn verdict(prepared: &Prepared) -> String {
        match prepared {
            Prepared::Cut(message) => format!("cut: {message}"),
            Prepared::Done(_) => "done".into(),
            Prepared::Reject(applied, _) => {
                let reason = applied.reason.as_ref().expect("a reason");
                format!("{}: {}", reason.code, reason.message)
            }
            Prepared::Apply(..) => "apply".into(),
        }
    }

    /// Prepares `users` (one a record, in order) as a run that finds `recovered`.
    fn prepare_all(users: &[u64], recovered: &Recovered) -> Vec<String> {
        let options = create();
        let dir = tempfile::tempdir().unwrap();
        // A small first table, so that a test's thousands of users grow it several times.
        let mut seen = Seen::sized(Some(dir.path()), 256);
        let mut prepare = Prepare::new(&options, recovered, &mut seen);
        (1..)
            .zip(users)
            .map(|(ordinal, &user)| verdict(&prepare.next(ordinal, &record(ordinal, user))))
            .collect()
    }

    #[test]
    fn a_duplicate_far_from_its_first_record_is_rejected_naming_that_line() {
        // Thousands of users between a record and its duplicate: the set has grown several
        // times since the first one claimed its user.
        let distinct = 10_000;
        let mut users: Vec<u64> = (0..distinct).collect();
        users.extend([0, 7_000, distinct - 1]);
        let verdicts = prepare_all(&users, &Recovered::default());
        let n = distinct as usize;
        assert!(verdicts[..n].iter().all(|v| v == "apply"));
        assert_eq!(
            verdicts[n..],
            [
                "duplicate_record: the same user (auth0|u0) as line 2: create mode takes each \
                 user once",
                "duplicate_record: the same user (auth0|u7000) as line 7002: create mode \
                 takes each user once",
                "duplicate_record: the same user (auth0|u9999) as line 10001: create mode \
                 takes each user once",
            ]
        );
    }

    #[test]
    fn records_done_in_an_earlier_run_still_claim_their_user() {
        // Users 0, 1, 2, then a second record for each of them.
        let users = [0, 1, 2, 0, 1, 2];
        let clean = prepare_all(&users, &Recovered::default());
        // The earlier run finished records 1 and 3 (users 0 and 2), and the duplicate of user 0.
        let mut recovered = Recovered::default();
        recovered.done.insert(1, Outcome::Created);
        recovered.done.insert(3, Outcome::Created);
        recovered.done.insert(4, Outcome::Rejected);
        let resumed = prepare_all(&users, &recovered);
        assert_eq!(resumed[..4], ["done", "apply", "done", "done"]);
        assert_eq!(resumed[4..], clean[4..], "as in a clean run");
        assert!(
            resumed[5].contains("(auth0|u2) as line 4"),
            "{}",
            resumed[5]
        );
    }
}
