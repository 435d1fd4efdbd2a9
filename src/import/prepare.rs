//! What each record needs before the tenant, decided in input order: done in an earlier run,
//! rejected now (unreadable, invalid, a duplicate in create mode), or to apply.
//!
//! Everything here depends on the records before it (a duplicate is the second record for a
//! user; a resumed run's done records still claim their user), so the pipeline calls it
//! synchronously, one record at a time, in input order, before any concurrency.
//!
//! With `--password-hashes`, a record's hash is looked up in the file's index ([`HashFile`]) and
//! merged into the record before it is planned; the record as read (without it) is what a
//! rejects-file entry keeps.
//!
//! The users claimed so far are kept on disk ([`Seen`]), so memory stays flat whatever the
//! input's size. Should that fail (a full disk), the record at hand and every one after it is
//! [`Prepared::Cut`]: nothing more is applied, and the run ends with the error the set holds.

use serde_json::Value;

use super::apply::Applied;
use super::hashfile::{Found, HashFile};
use super::ledger::{Outcome, Recovered};
use super::plan::{self, Mode, PlanOptions, Planned, User, code};
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
    /// `--password-hashes`, indexed.
    hashes: Option<&'a HashFile>,
}

/// What the hash file does to a record.
enum Merge {
    /// No hash for it.
    Unchanged,
    /// The record with its hash.
    Merged(User),
    /// Refused: a code, the field, the message.
    Reject(&'static str, Option<String>, String),
    /// The file or its index cannot be read: the run stops.
    Cut(String),
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
            hashes: None,
        }
    }

    /// Merges each record's hash from `hashes` (`--password-hashes`) before it is planned.
    pub fn with_hashes(mut self, hashes: Option<&'a HashFile>) -> Prepare<'a> {
        self.hashes = hashes;
        self
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
        let merged;
        let object = match self.merge_hash(object) {
            Merge::Unchanged => object,
            Merge::Merged(with_hash) => {
                merged = with_hash;
                &merged
            }
            Merge::Cut(message) => return Prepared::Cut(message),
            Merge::Reject(..) if done.is_some() => return Prepared::Done(done.expect("checked")),
            Merge::Reject(code, field, message) => {
                let rejected = Applied::rejected(code, message, None).with_field(field);
                return Prepared::Reject(Box::new(rejected), original);
            }
        };
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

    /// The record with its hash from the hash file, when the file has one for it.
    fn merge_hash(&self, object: &User) -> Merge {
        let Some(hashes) = self.hashes else {
            return Merge::Unchanged;
        };
        let file = hashes.path().display();
        let (hash, line) = match hashes.find(object) {
            Ok(Found::None) => return Merge::Unchanged,
            Ok(Found::Hash(hash, line)) => (hash, line),
            Ok(Found::Conflict {
                by_user_id,
                by_email,
            }) => {
                return Merge::Reject(
                    code::CONFLICTING_FIELDS,
                    None,
                    format!(
                        "--password-hashes {file} has two hashes for this record: line \
                         {by_user_id} by its user_id and line {by_email} by its email; keep the \
                         user's one"
                    ),
                );
            }
            Err(e) => return Merge::Cut(format!("--password-hashes {file}: {e}")),
        };
        let own = crate::hashes::FIELDS
            .into_iter()
            .find(|field| object.get(*field).is_some_and(|v| !v.is_null()));
        if let Some(own) = own {
            return Merge::Reject(
                code::CONFLICTING_FIELDS,
                Some(own.into()),
                format!(
                    "the record has its own `{own}`, and line {line} of --password-hashes {file} \
                     has a hash for the same user: keep one of them"
                ),
            );
        }
        let mut merged = object.clone();
        merged.insert(hash.name().into(), hash.into_value());
        Merge::Merged(merged)
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
    use crate::import::plan::{Engine, MatchBy, MetadataStrategy, Passwords};

    fn create() -> PlanOptions {
        PlanOptions {
            mode: Mode::Create,
            match_by: MatchBy::Auto,
            connection: None,
            passwords: Passwords::Random,
            metadata: MetadataStrategy::Merge,
            engine: Engine::Api,
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

    #[test]
    fn a_hash_from_the_file_is_merged_before_planning_and_never_into_the_rejected_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hashes.ndjson");
        let hash = json!({"algorithm": "md5", "hash": {"value": "5f4dcc3b5aa765d61d8327deb882cf99", "encoding": "hex"}});
        let lines = [
            json!({"user_id": "u1", "custom_password_hash": hash}),
            json!({"email": "U2@Example.com", "custom_password_hash": hash}),
            json!({"email": "u3@example.com", "custom_password_hash": hash}),
            json!({"user_id": "auth0|u3", "custom_password_hash": hash}),
            json!({"user_id": "u4", "custom_password_hash": hash}),
        ];
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let hashes = HashFile::build(&path, None).unwrap();
        let mut options = create();
        options.engine = Engine::Job;
        let recovered = Recovered::default();
        let mut seen = Seen::new(Some(dir.path()));
        let mut prepare = Prepare::new(&options, &recovered, &mut seen).with_hashes(Some(&hashes));
        // By user_id, and by email.
        for user in [1, 2] {
            let Prepared::Apply(planned, _) = prepare.next(user, &record(user, user)) else {
                panic!("user {user} is to apply");
            };
            assert_eq!(planned.hash.as_ref().unwrap().value(), &hash);
            assert!(planned.create.as_ref().unwrap().get("password").is_none());
        }
        // Two lines for one user.
        let Prepared::Reject(applied, original) = prepare.next(3, &record(3, 3)) else {
            panic!("two hashes for one user");
        };
        let reason = applied.reason.unwrap();
        assert_eq!(reason.code, "conflicting_fields");
        assert!(
            reason
                .message
                .contains("line 4 by its user_id and line 3 by its email"),
            "{}",
            reason.message
        );
        assert!(original.unwrap().get("custom_password_hash").is_none());
        // A record with its own hash, and one in the file.
        let mut own = record(4, 4);
        if let Ok(object) = &mut own.result {
            object.insert("custom_password_hash".into(), hash.clone());
        }
        let Prepared::Reject(applied, _) = prepare.next(4, &own) else {
            panic!("two hashes for one user");
        };
        let reason = applied.reason.unwrap();
        assert_eq!(
            (reason.code.as_str(), reason.field.as_deref()),
            ("conflicting_fields", Some("custom_password_hash"))
        );
        assert!(
            reason.message.contains("line 5 of --password-hashes"),
            "{}",
            reason.message
        );
        // No hash for this one: a password as before.
        let Prepared::Apply(planned, _) = prepare.next(5, &record(5, 5)) else {
            panic!("user 5 is to apply");
        };
        assert!(planned.hash.is_none() && planned.create.unwrap().get("password").is_some());

        // The API engine refuses the merged hash; the rejected record is the one read.
        let options = create();
        let mut seen = Seen::new(Some(dir.path()));
        let mut prepare = Prepare::new(&options, &recovered, &mut seen).with_hashes(Some(&hashes));
        let Prepared::Reject(applied, original) = prepare.next(1, &record(1, 1)) else {
            panic!("needs the job engine");
        };
        assert_eq!(applied.reason.unwrap().code, "needs_job_engine");
        assert_eq!(
            original.unwrap(),
            Value::Object(record(1, 1).result.unwrap())
        );
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
