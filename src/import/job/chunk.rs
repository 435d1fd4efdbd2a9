//! Chunks: the users files of import jobs, one connection each, under the job's size limit,
//! and the user object each planned record becomes in them.
//!
//! Pure: no I/O. The [`Chunker`] keeps one open chunk per connection; a user that would take
//! a chunk past its limit seals it and opens the next, so chunks are cut at the same records
//! on every run of the same input (a resumed run rebuilds a chunk it sent from its members).

use std::collections::HashMap;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::import::plan::{Invalid, Planned, code};
use crate::import::read::Record;

/// Facts ("Bulk import jobs"): a users file is at most 512,000 bytes.
pub const MAX_CHUNK_BYTES: usize = 512_000;

/// The fields a user in an import job's file may have (facts: "Bulk import jobs", the user
/// schema).
const JOB_FIELDS: &[&str] = &[
    "email",
    "email_verified",
    "user_id",
    "given_name",
    "family_name",
    "name",
    "nickname",
    "picture",
    "blocked",
    "username",
    "app_metadata",
    "user_metadata",
    "mfa_factors",
    "password_hash",
    "custom_password_hash",
];

/// One record in a chunk.
#[derive(Debug)]
pub struct Member {
    /// The record's position in the input (the ledger's key).
    pub ordinal: u64,
    /// Its line in the input, for messages and the rejects file.
    pub line: u64,
    /// The record as read, as compact JSON, for the rejects file: a chunk's members wait for
    /// their job, and text holds a few times less memory than the parsed object.
    pub original: Box<str>,
    /// The user's id as the tenant knows it (`auth0|…`).
    pub user_id: String,
    pub email: Option<String>,
    /// The record's hash values, salts and keys: taken out of any message the tenant sends
    /// back about this user. Held in memory only.
    pub secrets: Vec<String>,
    /// The record's roles, organizations and permissions, given once the job made the user.
    pub access: Option<Box<crate::import::plan::access::Access>>,
}

impl Member {
    /// The record as the outcome stages take it (its object is [`Member::original`]).
    pub fn record(&self) -> Record {
        Record {
            line: self.line,
            result: Ok(serde_json::Map::new()),
        }
    }

    /// The record's object as read.
    pub fn original(&self) -> Option<Value> {
        serde_json::from_str(&self.original).ok()
    }
}

/// A users file for one import job.
#[derive(Debug)]
pub struct Chunk {
    /// Numbered from 1 in the order chunks are sealed; the jobs journal's key.
    pub number: u64,
    pub connection: String,
    pub members: Vec<Member>,
    /// The JSON array sent as the job's `users` file.
    pub body: Vec<u8>,
}

impl Chunk {
    fn open(number: u64, connection: &str) -> Chunk {
        Chunk {
            number,
            connection: connection.to_string(),
            members: Vec::new(),
            body: b"[".to_vec(),
        }
    }

    /// The file's size with `user` added (and the closing bracket).
    fn size_with(&self, user: &[u8]) -> usize {
        let comma = usize::from(!self.members.is_empty());
        self.body.len() + comma + user.len() + 1
    }

    fn push(&mut self, member: Member, user: &[u8]) {
        if !self.members.is_empty() {
            self.body.push(b',');
        }
        self.body.extend_from_slice(user);
        self.members.push(member);
    }

    fn seal(mut self) -> Chunk {
        self.body.push(b']');
        self
    }

    /// The members' ordinals as ranges of consecutive ones, for the jobs journal.
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        ranges(self.members.iter().map(|m| m.ordinal))
    }
}

/// Ordinals (ascending) as `(first, last)` runs of consecutive ones.
pub fn ranges(ordinals: impl IntoIterator<Item = u64>) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for ordinal in ordinals {
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == ordinal => *last = ordinal,
            _ => ranges.push((ordinal, ordinal)),
        }
    }
    ranges
}

/// Cuts planned users into chunks, one open chunk per connection.
pub struct Chunker {
    limit: usize,
    next: u64,
    open: HashMap<String, Chunk>,
}

impl Chunker {
    /// Chunks of at most `limit` bytes, numbered from `first`.
    pub fn new(limit: usize, first: u64) -> Chunker {
        Chunker {
            limit,
            next: first,
            open: HashMap::new(),
        }
    }

    /// Why a user (its job JSON) fits in no chunk, if it does not.
    pub fn refuses(&self, user: &[u8]) -> Option<Invalid> {
        // "[" + user + "]"
        (user.len() + 2 > self.limit).then(|| Invalid {
            code: code::TOO_LARGE,
            field: None,
            message: format!(
                "the user takes {} bytes in an import job's file, more than the {} a file may \
                 hold",
                user.len(),
                self.limit
            ),
        })
    }

    /// Adds a user (its job JSON, which [`Chunker::refuses`] let through) to its connection's
    /// chunk; returns the chunk it sealed to make room, if it did.
    pub fn add(&mut self, connection: &str, member: Member, user: &[u8]) -> Option<Chunk> {
        debug_assert!(self.refuses(user).is_none());
        let sealed = match self.open.get(connection) {
            Some(chunk) if chunk.size_with(user) > self.limit => {
                self.open.remove(connection).map(Chunk::seal)
            }
            _ => None,
        };
        let next = &mut self.next;
        let chunk = self.open.entry(connection.to_string()).or_insert_with(|| {
            *next += 1;
            Chunk::open(*next - 1, connection)
        });
        chunk.push(member, user);
        sealed
    }

    /// Seals every open chunk, in the order they were opened.
    pub fn finish(mut self) -> Vec<Chunk> {
        self.flush()
    }

    /// Seals every open chunk, in the order they were opened, and goes on with new ones.
    pub fn flush(&mut self) -> Vec<Chunk> {
        let mut chunks: Vec<Chunk> = self.open.drain().map(|(_, c)| c.seal()).collect();
        chunks.sort_by_key(|c| c.number);
        chunks
    }

    /// The number the next chunk will get.
    pub fn next_number(&self) -> u64 {
        self.next
    }
}

/// A rebuilt chunk: the members of a chunk an earlier run sent, gathered again from the input.
pub fn rebuild(number: u64, connection: &str, users: Vec<(Member, Vec<u8>)>) -> Chunk {
    let mut chunk = Chunk::open(number, connection);
    for (member, user) in users {
        chunk.push(member, &user);
    }
    chunk.seal()
}

/// The user object a planned record becomes in an import job's file, and its user id as the
/// tenant will know it.
///
/// It is the record's `POST /api/v2/users` body without what a job does not take (the
/// connection is the job's; a job takes no clear-text password nor `verify_email`, and
/// sends no email), with the record's hash, and always with a `user_id`: the record's own,
/// or one derived from the connection and email ([`derived_user_id`]). With a known id a
/// chunk sent again (its acceptance lost in a crash) meets its own users as conflicts, and a
/// lookup by id tells them apart from users that were there before.
pub fn job_user(
    planned: &Planned,
    hash: Option<(&str, &Value)>,
) -> Result<(Map<String, Value>, String), Invalid> {
    let Some(Value::Object(body)) = &planned.create else {
        return Err(Invalid {
            code: code::INVALID_FIELD,
            field: None,
            message: "the record cannot be created".into(),
        });
    };
    let connection = planned.connection.as_deref().unwrap_or_default();
    let mut user = Map::new();
    for (key, value) in body {
        match key.as_str() {
            "connection" | "password" | "verify_email" => {}
            key if JOB_FIELDS.contains(&key) => {
                user.insert(key.to_string(), value.clone());
            }
            other => {
                return Err(Invalid {
                    code: code::UNSUPPORTED_FIELD,
                    field: Some(other.to_string()),
                    message: format!(
                        "Auth0's import job does not take `{other}` (its user schema has no such \
                         field); leave it out, or import this record with --engine api"
                    ),
                });
            }
        }
    }
    if let Some((field, value)) = hash {
        user.insert(field.to_string(), value.clone());
    }
    let id = match user.get("user_id").and_then(Value::as_str) {
        Some(id) => id.to_string(),
        None => {
            let email = user
                .get("email")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let id = derived_user_id(connection, email);
            user.insert("user_id".into(), Value::String(id.clone()));
            id
        }
    };
    // Facts ("Bulk import jobs"): the job prefixes every id with `auth0|`, one that has a `|`
    // too (the plan sends `auth0|auth0|x` as `auth0|x`, which comes back whole).
    Ok((user, format!("auth0|{id}")))
}

/// A user id for a record that has none: 24 hex digits (the shape of the ids Auth0 gives
/// database users) from a digest of the connection and the (lower-cased) email, so the same
/// record gets the same id on every run.
pub fn derived_user_id(connection: &str, email: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"auth0-bulk user_id\0")
        .chain_update(connection.as_bytes())
        .chain_update(b"\0")
        .chain_update(email.to_lowercase().as_bytes())
        .finalize();
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(ordinal: u64) -> Member {
        Member {
            ordinal,
            line: ordinal,
            original: "{}".into(),
            user_id: format!("auth0|u{ordinal}"),
            email: None,
            secrets: Vec::new(),
            access: None,
        }
    }

    #[test]
    fn chunks_stay_under_the_limit_and_are_valid_json_arrays() {
        let mut chunker = Chunker::new(100, 1);
        let mut sealed = Vec::new();
        for ordinal in 1..=20 {
            let user = format!("{{\"user_id\":\"u{ordinal:04}\"}}");
            let connection = if ordinal % 3 == 0 { "b" } else { "a" };
            assert!(chunker.refuses(user.as_bytes()).is_none());
            if let Some(chunk) = chunker.add(connection, member(ordinal), user.as_bytes()) {
                sealed.push(chunk);
            }
        }
        sealed.extend(chunker.finish());
        let mut seen = Vec::new();
        for chunk in &sealed {
            assert!(chunk.body.len() <= 100, "{}", chunk.body.len());
            let users: Vec<Value> = serde_json::from_slice(&chunk.body).unwrap();
            assert_eq!(users.len(), chunk.members.len());
            seen.extend(chunk.members.iter().map(|m| m.ordinal));
        }
        seen.sort_unstable();
        assert_eq!(seen, (1..=20).collect::<Vec<_>>(), "every record once");
        let numbers: Vec<u64> = sealed.iter().map(|c| c.number).collect();
        let mut sorted = numbers.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), numbers.len(), "numbers are unique");
    }

    #[test]
    fn a_user_larger_than_a_file_is_refused_not_sent() {
        let chunker = Chunker::new(10, 1);
        let invalid = chunker.refuses(b"{\"email\":\"x\"}").expect("too large");
        assert_eq!(invalid.code, code::TOO_LARGE);
        assert!(chunker.refuses(b"{}").is_none());
    }

    #[test]
    fn ordinals_compress_into_runs() {
        assert_eq!(ranges([1, 2, 3, 5, 7, 8]), vec![(1, 3), (5, 5), (7, 8)]);
        assert!(ranges([]).is_empty());
    }

    #[test]
    fn every_id_is_known_with_the_prefix_the_job_adds_even_one_that_has_it_already() {
        use crate::import::plan::{
            Engine, MatchBy, MetadataStrategy, Mode, Passwords, PlanOptions, plan,
        };
        let options = PlanOptions {
            mode: Mode::Create,
            match_by: MatchBy::Auto,
            connection: None,
            passwords: Passwords::Random,
            metadata: MetadataStrategy::Merge,
            engine: Engine::Job,
        };
        for (id, sent, known) in [
            ("abc", "abc", "auth0|abc"),
            ("auth0|abc", "abc", "auth0|abc"),
            ("auth0|auth0|abc", "auth0|abc", "auth0|auth0|abc"),
        ] {
            let record = serde_json::json!({
                "user_id": id,
                "email": "a@example.com",
                "connection": "Username-Password-Authentication",
            });
            let Value::Object(record) = record else {
                unreachable!()
            };
            let planned = plan(&record, &options).expect("planned");
            let (user, known_as) = job_user(&planned, None).expect("a job user");
            assert_eq!(
                (user["user_id"].as_str(), known_as.as_str()),
                (Some(sent), known)
            );
            assert_eq!(known_as, planned.key, "the planner's key for {id}");
        }
    }

    #[test]
    fn a_derived_user_id_is_stable_and_ignores_the_emails_case() {
        let id = derived_user_id("Username-Password-Authentication", "Ann@Example.com");
        assert_eq!(id.len(), 24);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            id,
            derived_user_id("Username-Password-Authentication", "ann@example.com")
        );
        assert_ne!(id, derived_user_id("legacy-db", "ann@example.com"));
    }
}
