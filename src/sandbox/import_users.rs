//! One record of a bulk-import job's file: checked against Auth0's import schema, then created
//! in the job's connection (or, with `upsert`, matched by email and updated).
//!
//! Facts ("Bulk import jobs"): the schema's fields, `email` required; a bad record does not
//! fail the job but becomes an entry of `/errors` (`{user, errors: [{code, message, path}]}`),
//! with the hash values masked; a user already in the connection is `DUPLICATED_USER` unless
//! `upsert`; a user twice in one file is an error; `upsert` replaces the metadata objects
//! wholesale and sets `email_verified` false unless the file sets it; a hash is taken only
//! when the job creates the user.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::credentials::Credential;
use super::profile::{new_database_user, next_timestamp, random_hex_id};
use super::store::{Connection, Store, User};
use super::validate::{Format, Kind, check_metadata, check_value, text, type_name};

/// What a record may hold (facts' user schema, from Auth0's "Bulk User Import Database Schema
/// and Examples"). The docs give no lengths; the sandbox applies those of `POST /users`
/// (stricter), and `user_id` must not be empty or hold spaces, as there.
const FIELDS: &[(&str, Kind)] = &[
    ("email", text(0, 0, false, Format::Email)),
    ("email_verified", Kind::Bool),
    ("user_id", text(1, 255, false, Format::NoSpaces)),
    ("username", text(1, 128, false, Format::Plain)),
    ("given_name", text(1, 150, false, Format::Plain)),
    ("family_name", text(1, 150, false, Format::Plain)),
    ("name", text(1, 300, false, Format::Plain)),
    ("nickname", text(1, 300, false, Format::Plain)),
    ("picture", text(0, 0, false, Format::Uri)),
    ("blocked", Kind::Bool),
    ("app_metadata", Kind::Object),
    ("user_metadata", Kind::Object),
    ("password_hash", text(0, 0, false, Format::Plain)),
    ("custom_password_hash", Kind::Object),
];

/// Facts: `mfa_factors` is an array (its enrollments are not modelled; it is checked, not kept).
const MFA_FACTORS: &str = "mfa_factors";

/// Fields an upsert sets on an existing user when the file has them.
const UPSERTED: &[&str] = &[
    "given_name",
    "family_name",
    "name",
    "nickname",
    "picture",
    "blocked",
    "username",
];

/// Shown in place of a hash value in `/errors` (facts: `"*****"`).
const MASK: &str = "*****";

/// One error of a record, as `/errors` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RecordError {
    pub code: &'static str,
    pub message: String,
    pub path: Option<String>,
}

impl RecordError {
    fn at(code: &'static str, message: impl Into<String>, path: &str) -> RecordError {
        RecordError {
            code,
            message: message.into(),
            path: Some(path.to_string()),
        }
    }

    pub(super) fn json(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(path) = &self.path {
            error["path"] = path.clone().into();
        }
        error
    }
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    Inserted,
    Updated,
    Failed(Vec<RecordError>),
}

/// The identifiers already met in one file, for its duplicates.
#[derive(Default)]
pub(super) struct Seen {
    emails: HashSet<String>,
    user_ids: HashSet<String>,
    usernames: HashSet<String>,
}

/// Checks a record against the schema: every problem, not just the first.
fn check(record: &Map<String, Value>, connection: &Connection) -> Vec<RecordError> {
    let mut errors = Vec::new();
    let unknown: Vec<&str> = record
        .keys()
        .map(String::as_str)
        .filter(|k| *k != MFA_FACTORS && !FIELDS.iter().any(|(name, _)| name == k))
        .collect();
    if !unknown.is_empty() {
        // Facts: the schema has no other properties. Auth0's list of job error codes has none
        // named for this; `NOT_PASSED` (the record did not pass the schema) is the closest.
        errors.push(RecordError {
            code: "NOT_PASSED",
            message: format!("Additional properties not allowed: {}", unknown.join(",")),
            path: None,
        });
    }
    if !record.contains_key("email") {
        errors.push(RecordError::at(
            "OBJECT_REQUIRED",
            "Missing required property: email",
            "email",
        ));
    }
    for (name, kind) in FIELDS {
        let Some(value) = record.get(*name) else {
            continue;
        };
        if let Err(problem) = check_value(*kind, value) {
            errors.push(RecordError::at(problem.code, problem.reason, name));
        }
    }
    if let Some(factors) = record.get(MFA_FACTORS)
        && !factors.is_array()
    {
        let message = format!("Expected type array but found type {}", type_name(factors));
        errors.push(RecordError::at("INVALID_TYPE", message, MFA_FACTORS));
    }
    for field in ["user_metadata", "app_metadata"] {
        if let Some(Value::Object(metadata)) = record.get(field)
            && let Err(e) = check_metadata(field, metadata)
        {
            errors.push(RecordError::at("NOT_PASSED", e.message, field));
        }
    }
    if record.contains_key("username") && !connection.requires_username {
        // As `POST /users` answers for such a connection.
        errors.push(RecordError::at(
            "NOT_PASSED",
            "Cannot set username for connection without requires_username",
            "username",
        ));
    }
    // Facts: the hash's shape follows Auth0's per-algorithm rules, checked by the same code
    // the import engine checks records with.
    if errors.is_empty()
        && let Err(e) = crate::hashes::check(
            record.get("password_hash"),
            record.get("custom_password_hash"),
        )
    {
        errors.push(RecordError::at("FORMAT", e.message, &e.field));
    }
    errors
}

/// Validates `record` and writes it to `store` in `connection` (named `connection_name`).
pub(super) fn apply(
    store: &mut Store,
    connection_name: &str,
    connection: &Connection,
    upsert: bool,
    record: &Map<String, Value>,
    seen: &mut Seen,
) -> Outcome {
    let errors = check(record, connection);
    if !errors.is_empty() {
        return Outcome::Failed(errors);
    }
    let text = |key: &str| record.get(key).and_then(Value::as_str);
    // Facts: database connections store emails lower-cased; present, as checked.
    let email = text("email").unwrap_or_default().to_lowercase();
    let given_id = text("user_id").map(str::to_string);
    // Facts: a user twice in one file is an error (Auth0's wording names the field).
    let duplicate = if !seen.emails.insert(email.clone()) {
        Some("email")
    } else if given_id
        .as_ref()
        .is_some_and(|id| !seen.user_ids.insert(id.clone()))
    {
        Some("user_id")
    } else if text("username").is_some_and(|u| !seen.usernames.insert(u.to_lowercase())) {
        Some("username")
    } else {
        None
    };
    if let Some(field) = duplicate {
        return Outcome::Failed(vec![RecordError {
            code: "DUPLICATED_USER",
            message: format!("A user with this {field} was already provided."),
            path: None,
        }]);
    }
    let by_email = store
        .email_owner(connection_name, &email)
        .map(str::to_string);
    let by_id = given_id
        .as_ref()
        .map(|id| format!("auth0|{id}"))
        .filter(|id| store.contains(id));
    if by_email.is_some() || by_id.is_some() {
        if !upsert {
            return Outcome::Failed(vec![RecordError {
                code: "DUPLICATED_USER",
                message: "The user already exist and upsert parameter is false".into(),
                path: None,
            }]);
        }
        // Facts: upsert matches existing users by email.
        let Some(existing) = by_email else {
            return Outcome::Failed(vec![RecordError::at(
                "CONFLICT",
                "A user with this user_id already exists with another email.",
                "user_id",
            )]);
        };
        if by_id.as_ref().is_some_and(|id| *id != existing) {
            return Outcome::Failed(vec![RecordError::at(
                "CONFLICT",
                "The user_id belongs to another user than the email.",
                "user_id",
            )]);
        }
        let Some(user) = store.get(&existing) else {
            return Outcome::Failed(vec![RecordError {
                code: "CONFLICT",
                message: "The user changed while the job ran.".into(),
                path: None,
            }]);
        };
        store.put(upserted(user, record));
        return Outcome::Updated;
    }
    let local_id = given_id.unwrap_or_else(random_hex_id);
    let user = new_database_user(connection_name, &local_id, &email, record);
    let user = store.put(user);
    if record.contains_key("password_hash") || record.contains_key("custom_password_hash") {
        let user_id = user
            .get("user_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        store.set_credential(
            user_id,
            Credential::Hash {
                password_hash: record.get("password_hash").cloned(),
                custom_password_hash: record.get("custom_password_hash").cloned(),
            },
        );
    }
    Outcome::Inserted
}

/// The existing `user` updated by an upsert record: plain fields replaced when given, the
/// metadata objects replaced whole when given, `email_verified` the file's or false.
fn upserted(mut user: User, record: &Map<String, Value>) -> User {
    for key in UPSERTED.iter().chain(&["user_metadata", "app_metadata"]) {
        if let Some(value) = record.get(*key) {
            user.insert((*key).to_string(), value.clone());
        }
    }
    let verified = record
        .get("email_verified")
        .cloned()
        .unwrap_or(Value::Bool(false));
    user.insert("email_verified".into(), verified);
    let updated_at = next_timestamp(user.get("updated_at").and_then(Value::as_str));
    user.insert("updated_at".into(), updated_at.into());
    user
}

/// The record as `/errors` shows it: as sent, but every hash value (`password_hash`, and the
/// `value`s and `key` of `custom_password_hash`) replaced by `"*****"`; a
/// `custom_password_hash` that is not an object is masked whole.
pub(super) fn masked(record: &Map<String, Value>) -> Value {
    let mut user = record.clone();
    if let Some(hash) = user.get_mut("password_hash") {
        *hash = MASK.into();
    }
    if let Some(custom) = user.get_mut("custom_password_hash") {
        match custom {
            Value::Object(custom) => {
                for (part, key) in [("hash", "value"), ("hash", "key"), ("salt", "value")] {
                    match custom.get_mut(part) {
                        Some(Value::Object(inner)) => {
                            if let Some(v) = inner.get_mut(key) {
                                *v = MASK.into();
                            }
                        }
                        Some(other) => *other = MASK.into(),
                        None => {}
                    }
                }
            }
            other => *other = MASK.into(),
        }
    }
    Value::Object(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("an object")
    }

    #[test]
    fn masking_hides_every_hash_value_and_keeps_the_rest() {
        let shown = masked(&record(json!({
            "email": "a@example.com",
            "password_hash": "$2b$10$abcdefghijklmnopqrstuv",
            "custom_password_hash": {
                "algorithm": "hmac",
                "hash": {"value": "c2VjcmV0", "encoding": "base64", "digest": "sha256", "key": {"value": "k"}},
                "salt": {"value": "pepper", "position": "prefix"},
            },
        })));
        assert_eq!(shown["password_hash"], MASK);
        assert_eq!(shown["custom_password_hash"]["hash"]["value"], MASK);
        assert_eq!(shown["custom_password_hash"]["hash"]["key"], MASK);
        assert_eq!(shown["custom_password_hash"]["salt"]["value"], MASK);
        assert_eq!(shown["custom_password_hash"]["hash"]["digest"], "sha256");
        assert_eq!(shown["custom_password_hash"]["salt"]["position"], "prefix");
        assert_eq!(shown["email"], "a@example.com");
        let text = shown.to_string();
        for secret in ["abcdefghij", "c2VjcmV0", "pepper"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let odd = masked(&record(
            json!({"email": "a@example.com", "custom_password_hash": "x"}),
        ));
        assert_eq!(odd["custom_password_hash"], MASK);
    }

    #[test]
    fn a_record_gets_every_schema_error_with_its_path() {
        let store = Store::new(std::time::Duration::ZERO);
        let (_, connection) = store
            .connections()
            .find(|(n, _)| *n == "Username-Password-Authentication")
            .expect("default connection");
        let errors = check(
            &record(json!({"email_verified": "yes", "given_name": "", "shoe_size": 9})),
            connection,
        );
        let codes: Vec<(&str, Option<&str>)> =
            errors.iter().map(|e| (e.code, e.path.as_deref())).collect();
        assert_eq!(
            codes,
            [
                ("NOT_PASSED", None),
                ("OBJECT_REQUIRED", Some("email")),
                ("INVALID_TYPE", Some("email_verified")),
                ("MIN_LENGTH", Some("given_name")),
            ]
        );
    }
}
