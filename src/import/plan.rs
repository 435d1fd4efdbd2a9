//! Record planning: one input record becomes what to send, and a found user becomes a patch.
//!
//! Pure: no I/O, no async. [`plan`] validates and normalizes one record into a [`Planned`]
//! (the key that finds the user, the `POST /api/v2/users` body, the profile fields and the
//! metadata objects); [`update_body`] turns a found user and a plan into the smallest
//! `PATCH /api/v2/users/{id}` body, or `None` when nothing would change; [`apply_patch`] and
//! [`diff`] show what a patch does. The checks mirror the sandbox's `validate.rs`, which mirrors
//! Auth0, so a record that passes here is not refused for its shape by the tenant.
//!
//! # Metadata strategies
//!
//! With the user's `user_metadata` being
//! `{"theme": "dark", "address": {"city": "Paris", "zip": "75001"}, "tags": ["a"]}` and the
//! record's `{"address": {"city": "Lyon"}, "tags": null}`:
//!
//! - **merge** (Auth0's own PATCH): top-level keys are merged, a nested object is replaced
//!   whole, `null` deletes a key, `{}` clears the object. The result is
//!   `{"theme": "dark", "address": {"city": "Lyon"}}` (`zip` is gone with the old `address`).
//!   Sent: `{"user_metadata": {"address": {"city": "Lyon"}, "tags": null}}`.
//! - **deep**: nested objects are merged too (arrays and scalars are replaced, `null` deletes
//!   the key at any depth, `{}` changes nothing). The result is
//!   `{"theme": "dark", "address": {"city": "Lyon", "zip": "75001"}}`. Sent: each changed
//!   top-level key whole, as Auth0 replaces nested objects:
//!   `{"user_metadata": {"address": {"city": "Lyon", "zip": "75001"}, "tags": null}}`.
//! - **replace**: the object becomes exactly the record's (top-level `null`s left out). The
//!   result is `{"address": {"city": "Lyon"}}`. Sent:
//!   `{"user_metadata": {"address": {"city": "Lyon"}, "theme": null, "tags": null}}`; a record
//!   whose object is `{}` sends `{}`, which clears it.
//!
//! Under every strategy a metadata object the record does not carry is left alone, and only
//! what changes is sent (keys whose value is already the user's are left out of the body, which
//! under Auth0's one-level merge gives the same result). A record that would change nothing
//! sends no request at all.
//!
//! # Decisions
//!
//! - **Read-only fields** of `GET /api/v2/users` (`created_at`, `updated_at`, `identities`,
//!   `logins_count`, `last_login`, `last_ip`, `multifactor`, `multifactor_last_modified`,
//!   `last_password_reset`) are dropped, never sent. `user_id`, `connection` and
//!   `verify_email` go into a create body only, never into an update. `_error` (a rejects-file
//!   entry) is ignored. Any other unknown root field is `unknown_field`, so a typo does not
//!   vanish.
//! - **`user_id`**: facts ("POST /users") say Auth0 prefixes a given id with `auth0|`, so
//!   `auth0|abc` is sent as `abc` (sending it whole makes `auth0|auth0|abc`). An id without a
//!   `|` (Auth0 bulk-import files) is sent as it is and known to the tenant as `auth0|<id>`. An
//!   id of another provider (`google-oauth2|123`) cannot become a database user's id without
//!   changing it: stripping the provider could collide across providers, keeping it would give
//!   `auth0|google-oauth2|123`. So creating such a record is refused (`invalid_field`, or
//!   `read_only_connection` when its connection is the provider's); updating it by that id
//!   works. A digits-only JSON number is taken as the id's text (a plain CSV cell `12345`).
//! - **Only database users can be created**: a record whose `identities[0]` is social or
//!   enterprise (`provider` other than `auth0`, or `isSocial`) and whose connection is that
//!   identity's is `read_only_connection` in create and upsert (those users arrive by logging
//!   in). Passwordless connections count as read-only too (stricter than Auth0; the sandbox
//!   creates only database users).
//! - **Upsert needs what create needs** (connection, email, a creatable id): whether the user
//!   exists is known only later, and a record that can be neither updated nor created is
//!   better refused before any request. **Except a password**: only a create needs one, and a
//!   record for an existing user usually carries none (exports have no passwords). A missing
//!   password is kept in [`Planned::create_refused`] and rejects the record only when the
//!   lookup finds no user to update; a password that is there but weak or not a string is the
//!   record's fault whatever the lookup finds, and is refused at once.
//! - **Matching** (`--match`): `auto` (the default) finds each record by its `user_id` when it
//!   has one, else by its email (within its connection); `user_id` or `email` forces one.
//!   Either key keeps a resumed run exactly-once: the ledger marks a create as started before
//!   it is sent, and after a crash the record's own key (immediately consistent by id and by
//!   email) finds the user it may have created. **Forcing user_id needs a user_id in every
//!   mode**, create included: without one Auth0 picks the id, and a resumed run could not
//!   find the user it created.
//! - **Email**: required to create (a database connection needs one). Lower-cased unless the
//!   record is known to live in a non-database connection (facts: database connections store
//!   emails lower-cased; `users-by-email` is an exact match), so `Planned::key` for email
//!   matching keeps the case only for such users.
//! - **`verify_email: false`** is added to every create body unless the record sets it, so a
//!   migration does not email every user (spec: it overrides `email_verified`).
//! - **Passwords** are only ever set on create. Updating one is not idempotent (hashes are
//!   never returned, so an unchanged password cannot be recognised) and PATCH refuses it with
//!   `email` or `email_verified`. `--password-field NAME` takes the field out of the record in
//!   every mode and checks it against Auth0's "good" policy (8 characters, three of lower,
//!   upper, digit, special); a connection with a stricter policy can still refuse it. A
//!   `password` field that `--password-field` does not name is `unknown_field`.
//! - **`null`** for a nullable profile field (`name`, `given_name`, `phone_number`, ...)
//!   deletes it on update and is left out of a create body; a boolean field or a metadata
//!   object cannot be `null` (`invalid_field`; `{}` clears metadata). Top-level `null`s in
//!   a record's metadata are left out of a create body (for `deep`, at any depth), so a
//!   created user looks as an update of an empty user would.
//! - **Comparison** is semantic: object key order does not matter; numbers compare by exact
//!   decimal value (`1`, `1.0` and `10e-1` are equal, though the arbitrary-precision text
//!   differs), so number formatting alone never causes a write that would repeat on every
//!   run; a root field that is `null` equals an absent one; an absent metadata object equals
//!   `{}`.
//! - **Picture** must be an absolute `http` or `https` URL (stricter than the server's
//!   strict-uri, which takes any scheme with a host).
//! - **Size**: the create body, and the patch the record would send under `merge`, must each
//!   be at most 1 MiB serialized (facts: "Every request body is limited to 1 MB"). `deep` and
//!   `replace` bodies depend on the user found; [`check_patch`] checks those.

use std::fmt;
use std::sync::LazyLock;

use rand::Rng;
use rand::seq::SliceRandom;
use regex::Regex;
use serde_json::{Map, Value};

/// A user object, or an input record, as JSON.
pub type User = Map<String, Value>;

/// What an import does with each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
    Upsert,
}

/// How a record finds its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchBy {
    /// Per record: by `user_id` when it has one, else by email (the default). A [`Planned`]
    /// holds the one chosen, never `Auto`.
    Auto,
    UserId,
    Email,
}

impl MatchBy {
    /// The key a record is matched by: the one forced, or under `Auto` its `user_id` when it
    /// has one, else its email.
    pub fn for_record(self, has_user_id: bool) -> MatchBy {
        match self {
            MatchBy::Auto if has_user_id => MatchBy::UserId,
            MatchBy::Auto => MatchBy::Email,
            forced => forced,
        }
    }

    /// The name on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            MatchBy::Auto => "auto",
            MatchBy::UserId => "user_id",
            MatchBy::Email => "email",
        }
    }
}

/// How a record's metadata is applied to a user's (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataStrategy {
    Merge,
    Deep,
    Replace,
}

/// Where created users' passwords come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Passwords {
    None,
    Random,
    /// The name of the input field that holds the password.
    Field(String),
}

/// The options that decide how records are planned.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub mode: Mode,
    pub match_by: MatchBy,
    pub connection: Option<String>,
    pub passwords: Passwords,
    pub metadata: MetadataStrategy,
}

/// A record ready to apply.
///
/// `Debug` is written by hand: it shows the create body with its password redacted.
#[derive(Clone, PartialEq)]
pub struct Planned {
    /// The key that finds the user: the user_id as the tenant knows it (with its `auth0|`
    /// prefix) or the email (lower-cased unless the user lives in a non-database connection).
    pub key: String,
    /// What `key` is: `UserId` or `Email`, never `Auto`.
    pub match_by: MatchBy,
    /// The connection the user lives in (for creates, and to pick among users-by-email results).
    pub connection: Option<String>,
    /// The `POST /api/v2/users` body (None when the mode cannot create, or when
    /// `create_refused` says why not). Holds a password when one is needed and available.
    pub create: Option<Value>,
    /// Upsert only: why the record cannot be created (it has no password), which matters only
    /// if the lookup finds no user; an existing user is updated without one.
    pub create_refused: Option<Invalid>,
    /// The profile fields an update sets (root fields other than metadata, e.g. name,
    /// given_name, blocked, email_verified, picture, phone_number), after dropping read-only
    /// and create-only fields. A `null` deletes the field.
    pub profile: Map<String, Value>,
    /// The metadata objects the record carries (absent = the record says nothing about it).
    pub user_metadata: Option<Map<String, Value>>,
    pub app_metadata: Option<Map<String, Value>>,
}

impl fmt::Debug for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A password must never reach a log line through `{:?}`.
        let create = self.create.as_ref().map(|body| {
            let mut body = body.clone();
            if let Some(password) = body.get_mut("password") {
                *password = Value::String("<redacted>".into());
            }
            body
        });
        f.debug_struct("Planned")
            .field("key", &self.key)
            .field("match_by", &self.match_by)
            .field("connection", &self.connection)
            .field("create", &create)
            .field("create_refused", &self.create_refused)
            .field("profile", &self.profile)
            .field("user_metadata", &self.user_metadata)
            .field("app_metadata", &self.app_metadata)
            .finish()
    }
}

/// Why a record is rejected before any request: a stable machine code, the field, and a
/// message a person can act on. Messages never hold a password.
///
/// Codes: `unknown_field`, `unsupported_field`, `invalid_field`, `ambiguous_field`,
/// `reserved_metadata_key`, `invalid_metadata_key`, `missing_field`, `missing_password`,
/// `weak_password`, `too_large`, `read_only_connection`, `conflicting_fields`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub code: &'static str,
    pub field: Option<String>,
    pub message: String,
}

/// The stable codes of [`Invalid::code`].
pub mod code {
    pub const UNKNOWN_FIELD: &str = "unknown_field";
    pub const UNSUPPORTED_FIELD: &str = "unsupported_field";
    pub const INVALID_FIELD: &str = "invalid_field";
    pub const AMBIGUOUS_FIELD: &str = "ambiguous_field";
    pub const RESERVED_METADATA_KEY: &str = "reserved_metadata_key";
    pub const INVALID_METADATA_KEY: &str = "invalid_metadata_key";
    pub const MISSING_FIELD: &str = "missing_field";
    pub const MISSING_PASSWORD: &str = "missing_password";
    pub const WEAK_PASSWORD: &str = "weak_password";
    pub const TOO_LARGE: &str = "too_large";
    pub const READ_ONLY_CONNECTION: &str = "read_only_connection";
    pub const CONFLICTING_FIELDS: &str = "conflicting_fields";
}

fn invalid(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        code,
        field: Some(field.into()),
        message: message.into(),
    }
}

/// Facts ("Metadata rules"): every request body is limited to 1 MB (the sandbox: 1024 * 1024
/// bytes of body).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What a profile field may hold.
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Text {
        min: usize,
        max: Option<usize>,
        format: Format,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Plain,
    Email,
    Phone,
    Url,
}

const fn text(min: usize, max: usize, format: Format) -> Kind {
    Kind::Text {
        min,
        max: if max == 0 { None } else { Some(max) },
        format,
    }
}

/// Spec: the fields both `CreateUserRequestContent` and `UpdateUserRequestContent` take, with
/// their types, lengths and formats. On update the text fields may be `null`.
const PROFILE_FIELDS: &[(&str, Kind)] = &[
    ("email", text(0, 0, Format::Email)),
    ("email_verified", Kind::Bool),
    ("username", text(1, 128, Format::Plain)),
    ("phone_number", text(0, 0, Format::Phone)),
    ("phone_verified", Kind::Bool),
    ("given_name", text(1, 150, Format::Plain)),
    ("family_name", text(1, 150, Format::Plain)),
    ("name", text(1, 300, Format::Plain)),
    ("nickname", text(1, 300, Format::Plain)),
    ("picture", text(0, 0, Format::Url)),
    ("blocked", Kind::Bool),
];

/// Spec: `CreateUserRequestContent` fields that are not profile fields (`password` is handled
/// by [`Passwords`]).
const CREATE_ONLY_FIELDS: &[&str] = &["user_id", "connection", "verify_email"];

/// Spec: the fields of `GetUserResponseContent` that no request body takes (facts: "Read-only
/// profile fields ... are refused").
const READ_ONLY_FIELDS: &[&str] = &[
    "created_at",
    "updated_at",
    "identities",
    "logins_count",
    "last_login",
    "last_ip",
    "multifactor",
    "multifactor_last_modified",
    "last_password_reset",
];

/// Auth0 bulk-import fields that the Management API does not take.
const UNSUPPORTED_FIELDS: &[(&str, &str)] = &[
    (
        "password_hash",
        "password hashes cannot be sent through the Management API; only Auth0's bulk import \
         job (POST /api/v2/jobs/users-imports) takes them",
    ),
    (
        "custom_password_hash",
        "custom password hashes cannot be sent through the Management API; only Auth0's bulk \
         import job (POST /api/v2/jobs/users-imports) takes them",
    ),
    (
        "mfa_factors",
        "MFA enrollments cannot be sent through the Management API; only Auth0's bulk import \
         job (POST /api/v2/jobs/users-imports) takes them",
    ),
];

use crate::rules::{
    EMAIL_PATTERN, MAX_JSON_DEPTH, PHONE_PATTERN, REFUSED_TOGETHER, RESERVED_APP_METADATA,
};

/// The same pattern as the sandbox's (validate.rs), so both agree on every address.
static EMAIL: LazyLock<Regex> = LazyLock::new(|| Regex::new(EMAIL_PATTERN).expect("valid regex"));
/// Spec: `phone_number` pattern.
static PHONE: LazyLock<Regex> = LazyLock::new(|| Regex::new(PHONE_PATTERN).expect("valid regex"));

/// Validates and normalizes one record.
pub fn plan(record: &User, options: &PlanOptions) -> Result<Planned, Invalid> {
    let mut fields = record.clone();
    // A rejects-file entry fed back as it is: `_error` says why it was refused last time.
    fields.shift_remove("_error");
    let password = match &options.passwords {
        Passwords::Field(name) => fields.shift_remove(name),
        _ => None,
    };
    check_root_fields(&fields, options)?;

    // Facts ("Metadata rules"): Management API v1 and custom database scripts named app
    // metadata `metadata`.
    let mapped = fields.contains_key("metadata");
    if mapped && fields.contains_key("app_metadata") {
        return Err(invalid(
            code::AMBIGUOUS_FIELD,
            "metadata",
            "the record has both `metadata` (app metadata, as Management API v1 and custom \
             database scripts named it) and `app_metadata`; keep only one of them",
        ));
    }
    let user_metadata = metadata_object(&fields, "user_metadata", "user_metadata")?;
    let app_metadata = if mapped {
        metadata_object(&fields, "metadata", "app_metadata")?
    } else {
        metadata_object(&fields, "app_metadata", "app_metadata")?
    };

    let mut profile = Map::new();
    for (name, value) in &fields {
        if let Some((_, kind)) = PROFILE_FIELDS.iter().find(|(n, _)| n == name) {
            check_profile_field(name, *kind, value)?;
            profile.insert(name.clone(), value.clone());
        }
    }
    let user_id = user_id_of(&fields)?;
    let connection_field = match fields.get("connection") {
        None => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(other) => {
            return Err(invalid(
                code::INVALID_FIELD,
                "connection",
                format!(
                    "`connection` must be the name of a connection, not {}",
                    describe(other)
                ),
            ));
        }
    };
    let verify_email = match fields.get("verify_email") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            return Err(invalid(
                code::INVALID_FIELD,
                "verify_email",
                format!(
                    "`verify_email` must be true or false, not {}",
                    describe(other)
                ),
            ));
        }
    };

    // The connection: the record's own, else its first identity's (an export), else the
    // command line's.
    let identity = fields
        .get("identities")
        .and_then(Value::as_array)
        .and_then(|ids| ids.first())
        .and_then(Value::as_object);
    let identity_connection = identity
        .and_then(|i| i.get("connection"))
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty());
    let connection = connection_field
        .or_else(|| identity_connection.map(str::to_string))
        .or_else(|| options.connection.clone().filter(|c| !c.is_empty()));
    // Social and enterprise identities: their users arrive by logging in, not through the API.
    let external_identity = identity.filter(|i| {
        i.get("provider")
            .and_then(Value::as_str)
            .is_some_and(|p| p != "auth0")
            || i.get("isSocial") == Some(&Value::Bool(true))
    });
    let read_only = external_identity.is_some()
        && connection.is_some()
        && connection.as_deref() == identity_connection;
    let foreign_provider = user_id
        .as_deref()
        .and_then(|id| id.split_once('|'))
        .map(|(provider, _)| provider)
        .filter(|provider| *provider != "auth0");

    // Facts: database connections store emails lower-cased; others keep what the provider sent.
    let external = read_only || foreign_provider.is_some();
    if !external && let Some(Value::String(email)) = profile.get_mut("email") {
        *email = email.to_lowercase();
    }
    let email = profile
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_string);

    let match_by = options.match_by.for_record(user_id.is_some());
    let key = match match_by {
        MatchBy::Email => email.clone().ok_or_else(|| {
            if options.match_by == MatchBy::Auto {
                // The first key auto looks for is the one named.
                invalid(
                    code::MISSING_FIELD,
                    "user_id",
                    "the record has neither a `user_id` nor an `email`, so nothing can find its \
                     user (--match auto takes the user_id when there is one, else the email)",
                )
            } else {
                invalid(
                    code::MISSING_FIELD,
                    "email",
                    "matching by email (--match email) needs an `email` in every record",
                )
            }
        })?,
        MatchBy::UserId | MatchBy::Auto => match &user_id {
            // Facts ("POST /users"): a database user's id is `auth0|` plus the id given.
            Some(id) if id.contains('|') => id.clone(),
            Some(id) => format!("auth0|{id}"),
            None => {
                let hint = if options.mode == Mode::Update {
                    "add the user_id, or match by email (--match auto or --match email)"
                } else {
                    "without one Auth0 picks the id, and a re-run could not find the user it \
                     created; add the user_id, or match by email (--match auto, the default, \
                     does for records without a user_id)"
                };
                return Err(invalid(
                    code::MISSING_FIELD,
                    "user_id",
                    format!("matching by user_id (--match user_id) needs a `user_id`: {hint}"),
                ));
            }
        },
    };

    let mut create_refused = None;
    let create = if options.mode == Mode::Update {
        None
    } else {
        let Some(connection) = connection.as_deref() else {
            return Err(invalid(
                code::MISSING_FIELD,
                "connection",
                "creating a user needs a connection: pass --connection NAME, or give the record \
                 a `connection` field",
            ));
        };
        if read_only {
            let provider = external_identity
                .and_then(|i| i.get("provider"))
                .and_then(Value::as_str)
                .unwrap_or("social or enterprise");
            return Err(invalid(
                code::READ_ONLY_CONNECTION,
                "connection",
                format!(
                    "the user lives in connection {connection} (provider {provider}), where users \
                     arrive by logging in and cannot be created through the API; import it with \
                     --mode update, or leave it out"
                ),
            ));
        }
        if let Some(provider) = foreign_provider {
            return Err(invalid(
                code::INVALID_FIELD,
                "user_id",
                format!(
                    "the user_id is an id of provider `{provider}`, but a user created through \
                     the API (in connection {connection}) gets the id auth0|<user_id>: remove the \
                     user_id to let Auth0 pick one, or give it without the `{provider}|` prefix"
                ),
            ));
        }
        if email.is_none() {
            return Err(invalid(
                code::MISSING_FIELD,
                "email",
                format!("creating a user in database connection {connection} needs an `email`"),
            ));
        }
        match creation_password(password, &options.passwords, connection) {
            Ok(password) => Some(create_body(CreateParts {
                profile: &profile,
                user_id: user_id.as_deref(),
                connection,
                user_metadata: user_metadata.as_ref(),
                app_metadata: app_metadata.as_ref(),
                strategy: options.metadata,
                password,
                verify_email: verify_email.unwrap_or(false),
            })),
            // Only a create needs a password, and whether an upsert creates is known after
            // the lookup: an existing user is updated without one.
            Err(missing)
                if options.mode == Mode::Upsert && missing.code == code::MISSING_PASSWORD =>
            {
                create_refused = Some(missing);
                None
            }
            Err(refused) => return Err(refused),
        }
    };

    if let Some(body) = &create {
        check_size(body, "the create body")?;
    }
    // The patch this record sends under `merge` at most: its profile and metadata as given.
    let mut patch = profile.clone();
    if let Some(m) = &user_metadata {
        patch.insert("user_metadata".into(), Value::Object(m.clone()));
    }
    if let Some(m) = &app_metadata {
        patch.insert("app_metadata".into(), Value::Object(m.clone()));
    }
    check_size(&Value::Object(patch), "the update body")?;

    Ok(Planned {
        key,
        match_by,
        connection,
        create,
        create_refused,
        profile,
        user_metadata,
        app_metadata,
    })
}

/// Rejects unsupported and unknown root fields, naming all of them.
fn check_root_fields(fields: &User, options: &PlanOptions) -> Result<(), Invalid> {
    let unsupported: Vec<&str> = UNSUPPORTED_FIELDS
        .iter()
        .filter(|(name, _)| fields.contains_key(*name))
        .map(|(name, _)| *name)
        .collect();
    if let Some(first) = unsupported.first() {
        let why = UNSUPPORTED_FIELDS
            .iter()
            .find(|(name, _)| name == first)
            .map(|(_, why)| *why)
            .unwrap_or_default();
        return Err(invalid(
            code::UNSUPPORTED_FIELD,
            *first,
            format!(
                "unsupported field{} {}: {why}. Remove {} and create the users with \
                 --passwords random (they then set their own through a password reset), or use \
                 Auth0's bulk import job for this file",
                if unsupported.len() > 1 { "s" } else { "" },
                unsupported.join(", "),
                if unsupported.len() > 1 { "them" } else { "it" },
            ),
        ));
    }
    if fields.contains_key("_raw") {
        return Err(invalid(
            code::UNKNOWN_FIELD,
            "_raw",
            "this rejects-file entry holds the raw text of a record that could not be read: \
             replace the whole line with the corrected record",
        ));
    }
    let unknown: Vec<&String> = fields.keys().filter(|k| !is_known(k)).collect();
    let Some(first) = unknown.first() else {
        return Ok(());
    };
    if first.as_str() == "password" && unknown.len() == 1 {
        let how = match &options.passwords {
            Passwords::Field(name) => format!("the password field is `{name}` (--password-field)"),
            _ => "passwords are read from the input only with --password-field password".into(),
        };
        return Err(invalid(
            code::UNKNOWN_FIELD,
            "password",
            format!("the record has a `password` field, but {how}"),
        ));
    }
    let named: Vec<String> = unknown
        .iter()
        .map(|name| match suggestion(name) {
            Some(known) => format!("{} (did you mean {known}?)", shown(name)),
            None => shown(name),
        })
        .collect();
    Err(invalid(
        code::UNKNOWN_FIELD,
        first.as_str(),
        format!(
            "unknown field{} {}: a user's fields are {}; rename or remove {} (custom data \
             belongs in user_metadata or app_metadata)",
            if unknown.len() > 1 { "s" } else { "" },
            named.join(", "),
            known_fields().join(", "),
            if unknown.len() > 1 { "them" } else { "it" },
        ),
    ))
}

/// A key as a message shows it: as it is when it is a plain name, else quoted with escapes,
/// so that an empty key, spaces or invisible characters can be seen (`""`, `"a\u{feff}"`).
fn shown(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '$' | '@'));
    if plain {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

fn known_fields() -> Vec<&'static str> {
    PROFILE_FIELDS
        .iter()
        .map(|(name, _)| *name)
        .chain(CREATE_ONLY_FIELDS.iter().copied())
        .chain(["user_metadata", "app_metadata"])
        .collect()
}

fn is_known(name: &str) -> bool {
    PROFILE_FIELDS.iter().any(|(n, _)| *n == name)
        || CREATE_ONLY_FIELDS.contains(&name)
        || READ_ONLY_FIELDS.contains(&name)
        || matches!(name, "user_metadata" | "app_metadata" | "metadata")
}

/// The known field closest to a typo (at most two edits away), if any.
fn suggestion(name: &str) -> Option<&'static str> {
    let known = known_fields()
        .into_iter()
        .chain(READ_ONLY_FIELDS.iter().copied());
    crate::suggest::closest(name, known)
}

/// A short description of a value for messages (strings are quoted and cut short).
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {}", quoted(s)),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn quoted(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut:?}...")
    }
}

/// Spec: types, lengths and formats of the profile fields (the same checks as validate.rs;
/// lengths in characters).
fn check_profile_field(name: &str, kind: Kind, value: &Value) -> Result<(), Invalid> {
    let bad = |message: String| Err(invalid(code::INVALID_FIELD, name, message));
    match (kind, value) {
        (Kind::Bool, Value::Bool(_)) => Ok(()),
        (Kind::Bool, other) => bad(format!(
            "`{name}` must be true or false, not {}",
            describe(other)
        )),
        // Spec (UpdateUserRequestContent): text fields may be null, which deletes them.
        (Kind::Text { .. }, Value::Null) => Ok(()),
        (Kind::Text { min, max, format }, Value::String(s)) => {
            let len = s.chars().count();
            if len < min {
                return bad(format!("`{name}` must not be empty"));
            }
            if let Some(max) = max
                && len > max
            {
                return bad(format!(
                    "`{name}` is too long: {len} characters, at most {max}"
                ));
            }
            let ok = match format {
                Format::Plain => true,
                Format::Email => EMAIL.is_match(s),
                Format::Phone => PHONE.is_match(s),
                Format::Url => url::Url::parse(s).is_ok_and(|u| {
                    matches!(u.scheme(), "http" | "https")
                        && u.host_str().is_some_and(|h| !h.is_empty())
                }),
            };
            if ok {
                return Ok(());
            }
            bad(match format {
                Format::Email => format!("`{name}` is not an email address: {}", quoted(s)),
                Format::Phone => format!(
                    "`{name}` must be + and 1 to 15 digits, without spaces (E.164, e.g. \
                     +14155550123), not {}",
                    quoted(s)
                ),
                _ => format!(
                    "`{name}` must be an absolute http(s) URL, not {}",
                    quoted(s)
                ),
            })
        }
        (Kind::Text { .. }, other) => bad(format!(
            "`{name}` must be a string, not {}",
            describe(other)
        )),
    }
}

/// The record's user_id, checked (spec: at most 255 characters, no whitespace).
fn user_id_of(fields: &User) -> Result<Option<String>, Invalid> {
    let bad = |message: String| Err(invalid(code::INVALID_FIELD, "user_id", message));
    let id = match fields.get("user_id") {
        None => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        // A plain CSV cell `12345` reads as a number: the id is its text.
        Some(Value::Number(n)) if n.to_string().bytes().all(|b| b.is_ascii_digit()) => {
            n.to_string()
        }
        Some(other) => {
            return bad(format!(
                "`user_id` must be a string, not {}",
                describe(other)
            ));
        }
    };
    let local = id.strip_prefix("auth0|").unwrap_or(&id);
    if local.is_empty() {
        return bad("`user_id` must not be empty".into());
    }
    if id.chars().any(char::is_whitespace) {
        return bad(format!(
            "`user_id` must not contain whitespace: {}",
            quoted(&id)
        ));
    }
    let len = local.chars().count();
    if len > 255 {
        return bad(format!(
            "`user_id` is too long: {len} characters without the auth0| prefix, at most 255"
        ));
    }
    Ok(Some(id))
}

/// A metadata object of the record, checked (facts: "Metadata rules"). `source` is the
/// record's field, `field` the one it is sent as.
fn metadata_object(
    fields: &User,
    source: &str,
    field: &str,
) -> Result<Option<Map<String, Value>>, Invalid> {
    let mapped = if source == field {
        String::new()
    } else {
        format!(" (the record's `{source}`, sent as {field})")
    };
    let object = match fields.get(source) {
        None => return Ok(None),
        Some(Value::Object(object)) => object,
        Some(other) => {
            return Err(invalid(
                code::INVALID_FIELD,
                source,
                format!(
                    "`{source}` must be an object{mapped}, not {}; {{}} clears it",
                    describe(other)
                ),
            ));
        }
    };
    if deeper_than(&Value::Object(object.clone()), MAX_JSON_DEPTH - 1) {
        return Err(invalid(
            code::INVALID_FIELD,
            source,
            format!(
                "`{source}`{mapped} nests more than {MAX_JSON_DEPTH} levels of objects and \
                 arrays, counting the user as one: JSON readers (this tool's export among them) \
                 cannot read such a user back; make the deepest part flatter"
            ),
        ));
    }
    if field == "app_metadata"
        && let Some(key) = object
            .keys()
            .find(|k| RESERVED_APP_METADATA.contains(&k.as_str()))
    {
        return Err(invalid(
            code::RESERVED_METADATA_KEY,
            format!("app_metadata.{key}"),
            format!(
                "app_metadata.{key}{mapped} uses a name Auth0 reserves in app_metadata ({}); \
                 rename the key or move it to user_metadata",
                RESERVED_APP_METADATA.join(", ")
            ),
        ));
    }
    check_metadata_keys(field, object).map_err(|(path, key)| {
        let bad = if key.contains('.') { "." } else { "$" };
        invalid(
            code::INVALID_METADATA_KEY,
            path.clone(),
            format!(
                "metadata key {key:?} at {path}{mapped} contains \"{bad}\": Auth0 refuses \
                 keys with \".\" or \"$\" at any depth; rename it"
            ),
        )
    })?;
    Ok(Some(object.clone()))
}

/// Whether `value` nests more than `levels` levels of objects and arrays (a scalar is none).
/// The walk goes at most `levels` deep, so the stack stays small whatever the value.
fn deeper_than(value: &Value, levels: usize) -> bool {
    let mut children: Box<dyn Iterator<Item = &Value>> = match value {
        Value::Object(map) => Box::new(map.values()),
        Value::Array(items) => Box::new(items.iter()),
        _ => return false,
    };
    levels == 0 || children.any(|child| deeper_than(child, levels - 1))
}

/// Facts ("Metadata rules"): keys must not contain `.` or `$`, checked at every depth and
/// inside arrays (as the sandbox does). The error is the key's path and the key.
fn check_metadata_keys(path: &str, object: &Map<String, Value>) -> Result<(), (String, String)> {
    fn walk(path: &str, value: &Value) -> Result<(), (String, String)> {
        match value {
            Value::Object(map) => check_metadata_keys(path, map),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, item)| walk(&format!("{path}[{i}]"), item)),
            _ => Ok(()),
        }
    }
    for (key, value) in object {
        let here = format!("{path}.{key}");
        if key.contains('.') || key.contains('$') {
            return Err((here, key.clone()));
        }
        walk(&here, value)?;
    }
    Ok(())
}

/// The password a create sends: random, or the record's field (checked, never echoed).
fn creation_password(
    field_value: Option<Value>,
    passwords: &Passwords,
    connection: &str,
) -> Result<String, Invalid> {
    match passwords {
        Passwords::Random => Ok(random_password()),
        Passwords::None => Err(invalid(
            code::MISSING_PASSWORD,
            "password",
            format!(
                "creating a user in database connection {connection} needs a password, and \
                 exports carry none: pass --passwords random (each created user gets a strong \
                 random password and sets their own through a password reset), or \
                 --password-field NAME to read it from the input"
            ),
        )),
        Passwords::Field(name) => match field_value {
            Some(Value::String(p)) if !p.is_empty() => {
                if meets_good_policy(&p) {
                    Ok(p)
                } else {
                    Err(invalid(
                        code::WEAK_PASSWORD,
                        name.clone(),
                        format!(
                            "the password in `{name}` is too weak for Auth0's \"good\" policy: \
                             it needs at least 8 characters and three of lower case, upper \
                             case, digits and special characters; fix it, or use --passwords \
                             random"
                        ),
                    ))
                }
            }
            None | Some(Value::Null) | Some(Value::String(_)) => Err(invalid(
                code::MISSING_PASSWORD,
                name.clone(),
                format!(
                    "the record has no password in `{name}` (--password-field), and creating \
                     a user in database connection {connection} needs one; add it, or use \
                     --passwords random"
                ),
            )),
            Some(other) => Err(invalid(
                code::INVALID_FIELD,
                name.clone(),
                format!(
                    "the password field `{name}` must hold a string, not {}",
                    match other {
                        Value::Number(_) => "a number",
                        Value::Bool(_) => "a boolean",
                        Value::Array(_) => "an array",
                        _ => "an object",
                    }
                ),
            )),
        },
    }
}

/// Auth0's "good" policy (store.rs `PasswordPolicy::Good`): at least 8 characters with three
/// of lower case, upper case, digits and special characters.
fn meets_good_policy(password: &str) -> bool {
    let classes = [
        password.chars().any(char::is_lowercase),
        password.chars().any(char::is_uppercase),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    password.chars().count() >= 8 && classes.iter().filter(|x| **x).count() >= 3
}

struct CreateParts<'a> {
    profile: &'a Map<String, Value>,
    user_id: Option<&'a str>,
    connection: &'a str,
    user_metadata: Option<&'a Map<String, Value>>,
    app_metadata: Option<&'a Map<String, Value>>,
    strategy: MetadataStrategy,
    password: String,
    verify_email: bool,
}

/// Spec: `CreateUserRequestContent` takes only its own fields (additionalProperties: false).
fn create_body(parts: CreateParts<'_>) -> Value {
    let mut body = Map::new();
    body.insert("connection".into(), parts.connection.into());
    for (name, value) in parts.profile {
        // Spec: create fields are not nullable; a null means "none", so it is left out.
        if !value.is_null() {
            body.insert(name.clone(), value.clone());
        }
    }
    if let Some(id) = parts.user_id {
        // Facts: Auth0 prefixes the id with `auth0|` again (the `auth0|auth0|` trap).
        let local = id.strip_prefix("auth0|").unwrap_or(id);
        body.insert("user_id".into(), local.into());
    }
    let empty = Map::new();
    for (name, object) in [
        ("user_metadata", parts.user_metadata),
        ("app_metadata", parts.app_metadata),
    ] {
        if let Some(object) = object {
            let created = intended(&empty, object, parts.strategy);
            body.insert(name.into(), Value::Object(created));
        }
    }
    body.insert("password".into(), parts.password.into());
    // Spec: `verify_email` overrides `email_verified`; false keeps a migration from emailing
    // every user.
    body.insert("verify_email".into(), parts.verify_email.into());
    Value::Object(body)
}

fn check_size(body: &Value, what: &str) -> Result<(), Invalid> {
    let size = serde_json::to_vec(body)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if size > BODY_LIMIT {
        return Err(Invalid {
            code: code::TOO_LARGE,
            field: None,
            message: format!(
                "{what} would be {size} bytes, and Auth0 takes at most {BODY_LIMIT} bytes (1 MB) \
                 per request: make the record's metadata smaller"
            ),
        });
    }
    Ok(())
}

/// Checks a PATCH body before it is sent: the field pairs Auth0 refuses together (facts:
/// "PATCH") and the 1 MB limit (a `deep` or `replace` body carries parts of the user found,
/// so only the found user decides its size).
pub fn check_patch(body: &Value) -> Result<(), Invalid> {
    if let Some(map) = body.as_object() {
        for (a, b) in REFUSED_TOGETHER {
            if map.contains_key(*a) && map.contains_key(*b) {
                return Err(invalid(
                    code::CONFLICTING_FIELDS,
                    *a,
                    format!(
                        "Auth0 does not update {a} and {b} in one request, and this record \
                         changes both; import it in two passes, each with one of them"
                    ),
                ));
            }
        }
    }
    check_size(body, "the update body")
}

/// The PATCH body that makes `current` reflect the record under `strategy`, or None when
/// nothing would change (the record counts as unchanged and no request is sent).
pub fn update_body(current: &User, planned: &Planned, strategy: MetadataStrategy) -> Option<Value> {
    let mut body = Map::new();
    for (name, value) in &planned.profile {
        if !same_root(current.get(name), Some(value)) {
            body.insert(name.clone(), value.clone());
        }
    }
    let empty = Map::new();
    for (name, record) in [
        ("user_metadata", &planned.user_metadata),
        ("app_metadata", &planned.app_metadata),
    ] {
        let Some(record) = record else { continue };
        let now = current
            .get(name)
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        if let Some(patch) = metadata_patch(now, record, strategy) {
            body.insert(name.into(), Value::Object(patch));
        }
    }
    (!body.is_empty()).then_some(Value::Object(body))
}

/// What a metadata object becomes under `strategy` (the module docs' examples).
fn intended(
    current: &Map<String, Value>,
    record: &Map<String, Value>,
    strategy: MetadataStrategy,
) -> Map<String, Value> {
    match strategy {
        MetadataStrategy::Merge => {
            let mut patched = current.clone();
            merge_one_level(&mut patched, record);
            patched
        }
        MetadataStrategy::Deep => deep_merge(current, record),
        MetadataStrategy::Replace => record
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// The smallest one-level patch that takes `current` to the strategy's result, or None.
fn metadata_patch(
    current: &Map<String, Value>,
    record: &Map<String, Value>,
    strategy: MetadataStrategy,
) -> Option<Map<String, Value>> {
    match strategy {
        MetadataStrategy::Merge => {
            // Auth0's own semantics, so the record's keys only (never a computed `{}`: keys a
            // concurrent writer adds survive).
            if record.is_empty() {
                return (!current.is_empty()).then(Map::new);
            }
            let patch: Map<String, Value> = record
                .iter()
                .filter(|(k, v)| match v {
                    Value::Null => current.contains_key(*k),
                    v => !current.get(*k).is_some_and(|c| same(c, v)),
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (!patch.is_empty()).then_some(patch)
        }
        MetadataStrategy::Deep => one_level_patch(current, &deep_merge(current, record)),
        MetadataStrategy::Replace => {
            let target = intended(current, record, strategy);
            if target.is_empty() {
                // `{}` clears the object in one go.
                return (!current.is_empty()).then(Map::new);
            }
            one_level_patch(current, &target)
        }
    }
}

/// Under Auth0's one-level merge: each top-level key whose value changes (sent whole), and
/// `null` for each key to remove.
fn one_level_patch(
    current: &Map<String, Value>,
    target: &Map<String, Value>,
) -> Option<Map<String, Value>> {
    let mut patch = Map::new();
    for (key, value) in target {
        if !current.get(key).is_some_and(|c| same(c, value)) {
            patch.insert(key.clone(), value.clone());
        }
    }
    for key in current.keys() {
        if !target.contains_key(key) {
            patch.insert(key.clone(), Value::Null);
        }
    }
    (!patch.is_empty()).then_some(patch)
}

/// Deep merge: objects merge recursively, arrays and scalars replace, `null` removes the key.
fn deep_merge(base: &Map<String, Value>, patch: &Map<String, Value>) -> Map<String, Value> {
    let mut out = base.clone();
    for (key, value) in patch {
        match value {
            Value::Null => {
                out.shift_remove(key);
            }
            Value::Object(inner) => {
                let merged = match out.get(key) {
                    Some(Value::Object(existing)) => deep_merge(existing, inner),
                    _ => deep_merge(&Map::new(), inner),
                };
                out.insert(key.clone(), Value::Object(merged));
            }
            other => {
                out.insert(key.clone(), other.clone());
            }
        }
    }
    out
}

/// Facts ("PATCH"): one-level merge; `null` deletes a key; `{}` clears the object.
fn merge_one_level(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    if patch.is_empty() {
        target.clear();
        return;
    }
    for (key, value) in patch {
        if value.is_null() {
            target.shift_remove(key);
        } else {
            target.insert(key.clone(), value.clone());
        }
    }
}

/// What `current` would look like after applying `body` with Auth0's PATCH semantics
/// (one-level merge, null deletes, {} clears) — used for the unchanged check and dry-run diffs.
pub fn apply_patch(current: &User, body: &Value) -> User {
    let mut user = current.clone();
    let Some(body) = body.as_object() else {
        return user;
    };
    for (key, value) in body {
        match key.as_str() {
            "user_metadata" | "app_metadata" => {
                let Some(patch) = value.as_object() else {
                    continue;
                };
                let target = user
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !target.is_object() {
                    *target = Value::Object(Map::new());
                }
                if let Value::Object(target) = target {
                    merge_one_level(target, patch);
                }
            }
            // Steer side effects; not stored on the user (as the sandbox does).
            "connection" | "client_id" | "verify_email" | "verify_phone_number" | "password" => {}
            _ if value.is_null() => {
                user.shift_remove(key);
            }
            _ => {
                user.insert(key.clone(), value.clone());
            }
        }
    }
    user
}

/// A human diff for --dry-run: changed root fields and changed metadata keys (dotted paths),
/// e.g. ["name", "app_metadata.plan", "user_metadata.address.city"]. Root fields come first in
/// the users' order, then `app_metadata`, then `user_metadata`; a path stops where a value
/// stops being an object on either side. Empty exactly when the two users are the same under
/// this module's comparison.
pub fn diff(current: &User, after: &User) -> Vec<String> {
    let mut out = Vec::new();
    let keys = current
        .keys()
        .chain(after.keys().filter(|k| !current.contains_key(*k)));
    for key in keys {
        if is_metadata(key) {
            continue;
        }
        if !same_root(current.get(key), after.get(key)) {
            out.push(key.clone());
        }
    }
    let empty = Map::new();
    for name in ["app_metadata", "user_metadata"] {
        let a = current
            .get(name)
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let b = after.get(name).and_then(Value::as_object).unwrap_or(&empty);
        diff_objects(name, a, b, &mut out);
    }
    out
}

fn is_metadata(key: &str) -> bool {
    matches!(key, "user_metadata" | "app_metadata")
}

fn diff_objects(path: &str, a: &Map<String, Value>, b: &Map<String, Value>, out: &mut Vec<String>) {
    let keys = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k)));
    for key in keys {
        let here = format!("{path}.{key}");
        match (a.get(key), b.get(key)) {
            (Some(Value::Object(x)), Some(Value::Object(y))) => diff_objects(&here, x, y, out),
            (Some(x), Some(y)) if same(x, y) => {}
            _ => out.push(here),
        }
    }
}

/// Root fields: `null` and absent are the same (a PATCH `null` removes the field).
fn same_root(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a.filter(|v| !v.is_null()), b.filter(|v| !v.is_null())) {
        (None, None) => true,
        (Some(x), Some(y)) => same(x, y),
        _ => false,
    }
}

/// Semantic JSON equality: object key order does not matter, numbers compare by exact decimal
/// value (`1` = `1.0` = `1e0`), everything else as is.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.to_string(), y.to_string());
            x == y
                || match (decimal(&x), decimal(&y)) {
                    (Some(x), Some(y)) => x == y,
                    _ => false,
                }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// A JSON number's exact value as (negative, significant digits, power of ten); zero is
/// `(false, "0", 0)`. None for text that is not a JSON number or an exponent out of range.
fn decimal(text: &str) -> Option<(bool, String, i64)> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some((false, "0".into(), 0));
    }
    let trimmed = digits.trim_end_matches('0');
    let exponent = exponent
        .checked_sub(i64::try_from(frac.len()).ok()?)?
        .checked_add(i64::try_from(digits.len() - trimmed.len()).ok()?)?;
    Some((negative, trimmed.to_string(), exponent))
}

/// A strong random password that satisfies Auth0's "good" and "fair" policies (≥ 16 chars,
/// lower, upper, digit, special), and "excellent" too (no character three times in a row).
///
/// 24 characters from 90 (about 155 bits), drawn with `rand::rng()`: a ChaCha generator
/// seeded from the operating system, fit for secrets.
pub fn random_password() -> String {
    const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const DIGITS: &[u8] = b"0123456789";
    const SPECIAL: &[u8] = b"!#$%&()*+,-./:;<=>?@[]^_{}~";
    const LENGTH: usize = 24;
    let all: Vec<u8> = [LOWER, UPPER, DIGITS, SPECIAL].concat();
    let mut rng = rand::rng();
    loop {
        let mut chars: Vec<u8> = [LOWER, UPPER, DIGITS, SPECIAL]
            .iter()
            .map(|set| set[rng.random_range(0..set.len())])
            .collect();
        while chars.len() < LENGTH {
            chars.push(all[rng.random_range(0..all.len())]);
        }
        chars.shuffle(&mut rng);
        if chars.windows(3).all(|w| !(w[0] == w[1] && w[1] == w[2])) {
            return chars.into_iter().map(char::from).collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn user(value: Value) -> User {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn options(mode: Mode, match_by: MatchBy) -> PlanOptions {
        PlanOptions {
            mode,
            match_by,
            connection: None,
            passwords: Passwords::Random,
            metadata: MetadataStrategy::Merge,
        }
    }

    fn create_opts() -> PlanOptions {
        options(Mode::Create, MatchBy::UserId)
    }

    fn update_opts() -> PlanOptions {
        options(Mode::Update, MatchBy::UserId)
    }

    fn planned(record: Value, options: &PlanOptions) -> Planned {
        plan(&user(record.clone()), options)
            .unwrap_or_else(|e| panic!("{record} was refused: {e:?}"))
    }

    fn refused(record: Value, options: &PlanOptions) -> Invalid {
        match plan(&user(record.clone()), options) {
            Ok(p) => panic!("{record} was accepted: {p:?}"),
            Err(e) => e,
        }
    }

    /// A user exactly as `GET /api/v2/users` (and this tool's export) has it.
    fn exported() -> Value {
        json!({
            "created_at": "2021-03-04T05:06:07.890Z",
            "email": "Elodie.Lefevre12@Example.org",
            "email_verified": true,
            "family_name": "Lefèvre",
            "given_name": "Élodie",
            "identities": [{"connection": "legacy-db", "user_id": "5f1a2b3c4d5e6f7a8b9c0d1e",
                            "provider": "auth0", "isSocial": false}],
            "name": "Élodie Lefèvre",
            "nickname": "elodie.lefevre12",
            "picture": "https://s.gravatar.com/avatar/0f?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2Fel.png",
            "updated_at": "2024-05-06T07:08:09.123Z",
            "user_id": "auth0|5f1a2b3c4d5e6f7a8b9c0d1e",
            "user_metadata": {"locale": "fr", "preferences": {"theme": {"dark": true}}},
            "app_metadata": {"plan": "pro", "roles": ["admin"]},
            "last_ip": "203.0.113.7",
            "last_login": "2024-05-06T07:08:09.123Z",
            "logins_count": 12,
            "multifactor": ["guardian"],
            "multifactor_last_modified": "2024-01-01T00:00:00.000Z",
            "last_password_reset": "2023-01-01T00:00:00.000Z"
        })
    }

    // ---------------------------------------------------------------------------------------
    // plan: input shapes

    #[test]
    fn an_exported_user_becomes_a_create_body_without_read_only_fields() {
        let p = planned(exported(), &create_opts());
        assert_eq!(p.key, "auth0|5f1a2b3c4d5e6f7a8b9c0d1e");
        assert_eq!(p.connection.as_deref(), Some("legacy-db"));
        let mut body = user(p.create.clone().unwrap());
        let password = body.shift_remove("password").unwrap();
        assert!(meets_good_policy(password.as_str().unwrap()));
        assert_eq!(
            Value::Object(body),
            json!({
                "connection": "legacy-db",
                "email": "elodie.lefevre12@example.org",
                "email_verified": true,
                "family_name": "Lefèvre",
                "given_name": "Élodie",
                "name": "Élodie Lefèvre",
                "nickname": "elodie.lefevre12",
                "picture": "https://s.gravatar.com/avatar/0f?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2Fel.png",
                "user_id": "5f1a2b3c4d5e6f7a8b9c0d1e",
                "user_metadata": {"locale": "fr", "preferences": {"theme": {"dark": true}}},
                "app_metadata": {"plan": "pro", "roles": ["admin"]},
                "verify_email": false
            })
        );
        assert_eq!(
            p.profile.keys().collect::<Vec<_>>(),
            [
                "email",
                "email_verified",
                "family_name",
                "given_name",
                "name",
                "nickname",
                "picture"
            ]
        );
        assert_eq!(p.profile["email"], "elodie.lefevre12@example.org");
    }

    #[test]
    fn create_bodies_hold_only_fields_create_user_request_content_allows() {
        // validate.rs CREATE_FIELDS.
        let allowed = [
            "email",
            "phone_number",
            "user_metadata",
            "blocked",
            "email_verified",
            "phone_verified",
            "app_metadata",
            "given_name",
            "family_name",
            "name",
            "nickname",
            "picture",
            "user_id",
            "connection",
            "password",
            "verify_email",
            "username",
        ];
        let record = json!({
            "user_id": "auth0|abc", "email": "a@example.com", "email_verified": false,
            "username": "alice", "phone_number": "+14155550123", "phone_verified": true,
            "given_name": "A", "family_name": "B", "name": "A B", "nickname": "ab",
            "picture": "http://example.com/a.png", "blocked": false, "connection": "db",
            "verify_email": true, "user_metadata": {}, "app_metadata": {},
            "created_at": "x", "updated_at": "x", "identities": [], "logins_count": 1,
            "last_login": "x", "last_ip": "x", "multifactor": [], "last_password_reset": "x",
            "multifactor_last_modified": "x", "_error": {"line": 3, "code": "x"}
        });
        let p = planned(record, &create_opts());
        let body = p.create.unwrap();
        for key in body.as_object().unwrap().keys() {
            assert!(
                allowed.contains(&key.as_str()),
                "{key} is not a create field"
            );
        }
        assert_eq!(
            body["verify_email"], true,
            "the record's own verify_email wins"
        );
        assert_eq!(body.as_object().unwrap().len(), allowed.len());
        for key in [
            "user_id",
            "connection",
            "verify_email",
            "password",
            "created_at",
        ] {
            assert!(!p.profile.contains_key(key), "{key} is not a profile field");
        }
    }

    #[test]
    fn a_bulk_import_record_without_user_id_creates_when_matching_by_email() {
        let record = json!({
            "email": "John.Doe@Example.com", "email_verified": false, "given_name": "John",
            "family_name": "Doe", "name": "John Doe", "nickname": "johnny", "blocked": false,
            "picture": "https://example.com/j.png", "user_metadata": {"hobby": "chess"},
            "app_metadata": {"plan": "free"}
        });
        let mut o = options(Mode::Create, MatchBy::Email);
        o.connection = Some("Username-Password-Authentication".into());
        let p = planned(record, &o);
        assert_eq!(p.key, "john.doe@example.com");
        let body = p.create.unwrap();
        assert_eq!(body["connection"], "Username-Password-Authentication");
        assert_eq!(body["email"], "john.doe@example.com");
        assert!(body.get("user_id").is_none());
    }

    #[test]
    fn bulk_import_only_fields_are_unsupported_with_a_reason() {
        for field in ["password_hash", "custom_password_hash", "mfa_factors"] {
            let e = refused(
                json!({"user_id": "abc", "email": "a@example.com", field: {"x": 1}}),
                &create_opts(),
            );
            assert_eq!(e.code, "unsupported_field");
            assert_eq!(e.field.as_deref(), Some(field));
            assert!(e.message.contains("Management API"), "{}", e.message);
            assert!(e.message.contains("--passwords random"), "{}", e.message);
        }
    }

    #[test]
    fn unknown_fields_are_named_with_a_suggestion() {
        let e = refused(
            json!({"user_id": "abc", "emial": "a@example.com", "favourite": 1}),
            &update_opts(),
        );
        assert_eq!(e.code, "unknown_field");
        assert_eq!(e.field.as_deref(), Some("emial"));
        assert!(
            e.message.contains("emial (did you mean email?)"),
            "{}",
            e.message
        );
        assert!(e.message.contains("favourite"), "{}", e.message);
        let e = refused(json!({"user_id": "abc", "Given_Name": "x"}), &update_opts());
        assert!(
            e.message.contains("did you mean given_name?"),
            "{}",
            e.message
        );
    }

    #[test]
    fn an_empty_or_invisible_unknown_field_is_shown_quoted() {
        // Found by the bad-input mutation test: a root key `""` read "unknown field :".
        let e = refused(json!({"user_id": "abc", "": 1}), &update_opts());
        assert_eq!((e.code, e.field.as_deref()), ("unknown_field", Some("")));
        assert!(
            e.message.starts_with("unknown field \"\": "),
            "{}",
            e.message
        );
        let e = refused(
            json!({"user_id": "abc", "na me\u{feff}": 1}),
            &update_opts(),
        );
        assert!(e.message.contains("\"na me\\u{feff}\""), "{}", e.message);
        assert_eq!(shown("favourite_colour"), "favourite_colour");
    }

    #[test]
    fn error_is_ignored_and_raw_asks_for_the_fixed_record() {
        let p = planned(
            json!({"user_id": "abc", "name": "A", "_error": {"code": "x"}}),
            &update_opts(),
        );
        assert_eq!(p.profile, user(json!({"name": "A"})));
        let e = refused(
            json!({"_raw": "{broken", "_error": {"code": "invalid_json"}}),
            &update_opts(),
        );
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("unknown_field", Some("_raw"))
        );
    }

    #[test]
    fn v1_metadata_is_mapped_to_app_metadata() {
        let p = planned(
            json!({"user_id": "abc", "metadata": {"plan": "pro"}}),
            &update_opts(),
        );
        assert_eq!(p.app_metadata, Some(user(json!({"plan": "pro"}))));
        assert_eq!(p.user_metadata, None);
        let p = planned(
            json!({"user_id": "abc", "email": "a@example.com", "connection": "db", "metadata": {"plan": "pro"}}),
            &create_opts(),
        );
        assert_eq!(p.create.unwrap()["app_metadata"], json!({"plan": "pro"}));

        let e = refused(
            json!({"user_id": "abc", "metadata": {"a": 1}, "app_metadata": {"b": 2}}),
            &update_opts(),
        );
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("ambiguous_field", Some("metadata"))
        );
        // Mapped metadata follows app_metadata's rules.
        let e = refused(
            json!({"user_id": "abc", "metadata": {"email": "x"}}),
            &update_opts(),
        );
        assert_eq!(e.code, "reserved_metadata_key");
        assert!(e.message.contains("`metadata`"), "{}", e.message);
    }

    /// `levels` nested objects with `1` inside: `{"n":{"n":1}}` for 2.
    fn nested(levels: usize) -> Value {
        (0..levels).fold(json!(1), |inner, _| json!({ "n": inner }))
    }

    #[test]
    fn metadata_deeper_than_a_reader_takes_is_refused_before_sending() {
        // The user is level 1 and the metadata object level 2: the deepest that reads back.
        let fits = nested(MAX_JSON_DEPTH - 1);
        let record = json!({"user_id": "abc", "user_metadata": fits.clone()});
        planned(record.clone(), &update_opts());
        let text = serde_json::to_string(&record).expect("JSON");
        serde_json::from_str::<Value>(&text).expect("a reader takes it");

        // One level more (as a deep CSV cell under a dotted column can build) is refused and
        // named, in every mode, also under `metadata`.
        for (field, mode) in [
            ("user_metadata", Mode::Update),
            ("app_metadata", Mode::Create),
            ("metadata", Mode::Upsert),
        ] {
            let record = json!({"user_id": "abc", "email": "a@example.com", "connection": "db",
                                field: nested(MAX_JSON_DEPTH)});
            let e = refused(record, &options(mode, MatchBy::UserId));
            assert_eq!((e.code, e.field.as_deref()), ("invalid_field", Some(field)));
            assert!(e.message.contains("127 levels"), "{}", e.message);
        }
        // Arrays count as levels too.
        let arrays = (0..MAX_JSON_DEPTH).fold(json!(1), |inner, _| json!([inner]));
        let e = refused(
            json!({"user_id": "abc", "user_metadata": {"a": arrays}}),
            &update_opts(),
        );
        assert_eq!(e.code, "invalid_field");
    }

    #[test]
    fn deeper_than_counts_containers_and_stops_at_its_limit() {
        assert!(!deeper_than(&json!(1), 0));
        assert!(deeper_than(&json!({}), 0));
        assert!(!deeper_than(&json!({}), 1));
        assert!(!deeper_than(&json!([[1], {"a": {}}]), 3));
        assert!(deeper_than(&json!([[1], {"a": {}}]), 2));
        assert!(!deeper_than(&nested(5), 5));
        assert!(deeper_than(&nested(6), 5));
    }

    // ---------------------------------------------------------------------------------------
    // plan: connection, user_id, matching

    #[test]
    fn the_connection_comes_from_the_record_then_its_identity_then_the_option() {
        let identity = json!([{"connection": "from-identity", "provider": "auth0"}]);
        let cases = [
            // (record's connection, identities, option, expected)
            (
                Some("from-field"),
                Some(identity.clone()),
                Some("from-option"),
                Some("from-field"),
            ),
            (
                None,
                Some(identity.clone()),
                Some("from-option"),
                Some("from-identity"),
            ),
            (None, None, Some("from-option"), Some("from-option")),
            (
                None,
                Some(json!([])),
                Some("from-option"),
                Some("from-option"),
            ),
            (None, None, None, None),
        ];
        for (field, identities, option, expected) in cases {
            let mut record = user(json!({"user_id": "abc", "email": "a@example.com"}));
            if let Some(c) = field {
                record.insert("connection".into(), c.into());
            }
            if let Some(i) = &identities {
                record.insert("identities".into(), i.clone());
            }
            for mode in [Mode::Create, Mode::Update, Mode::Upsert] {
                let mut o = options(mode, MatchBy::UserId);
                o.connection = option.map(str::to_string);
                let result = plan(&record, &o);
                match (expected, mode) {
                    (None, Mode::Create | Mode::Upsert) => {
                        let e = result.unwrap_err();
                        assert_eq!(
                            (e.code, e.field.as_deref()),
                            ("missing_field", Some("connection"))
                        );
                        assert!(e.message.contains("--connection"), "{}", e.message);
                    }
                    _ => {
                        let p = result.unwrap();
                        assert_eq!(p.connection.as_deref(), expected, "{record:?} {mode:?}");
                        if let Some(body) = p.create {
                            assert_eq!(body["connection"], expected.unwrap());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_user_id_is_sent_without_its_auth0_prefix_and_keyed_with_it() {
        // (record's user_id, sent on create, key)
        let cases = [
            (json!("auth0|abc"), "abc", "auth0|abc"),
            (json!("abc"), "abc", "auth0|abc"),
            // Someone already fell into the trap: the id stays what the tenant knows.
            (json!("auth0|auth0|abc"), "auth0|abc", "auth0|auth0|abc"),
            (json!(12345), "12345", "auth0|12345"),
        ];
        for (id, sent, key) in cases {
            let record = json!({"user_id": id, "email": "a@example.com", "connection": "db"});
            for mode in [Mode::Create, Mode::Upsert] {
                let p = planned(record.clone(), &options(mode, MatchBy::UserId));
                assert_eq!(p.create.unwrap()["user_id"], sent, "{record}");
                assert_eq!(p.key, key, "{record}");
            }
            assert_eq!(planned(record.clone(), &update_opts()).key, key);
        }
    }

    #[test]
    fn another_providers_user_id_is_refused_for_create_and_kept_for_update() {
        let record =
            json!({"user_id": "google-oauth2|1234", "email": "A@Gmail.com", "connection": "db"});
        for mode in [Mode::Create, Mode::Upsert] {
            let e = refused(record.clone(), &options(mode, MatchBy::UserId));
            assert_eq!(
                (e.code, e.field.as_deref()),
                ("invalid_field", Some("user_id"))
            );
            assert!(e.message.contains("google-oauth2"), "{}", e.message);
        }
        let p = planned(record, &update_opts());
        assert_eq!(p.key, "google-oauth2|1234");
        assert!(p.create.is_none());
        // Not a database user: the email keeps its case (users-by-email is exact).
        assert_eq!(p.profile["email"], "A@Gmail.com");
    }

    #[test]
    fn users_of_social_or_enterprise_connections_cannot_be_created() {
        let record = json!({
            "user_id": "google-oauth2|1234", "email": "A@Gmail.com",
            "identities": [{"connection": "google-oauth2", "user_id": "1234",
                            "provider": "google-oauth2", "isSocial": true}]
        });
        for mode in [Mode::Create, Mode::Upsert] {
            let mut o = options(mode, MatchBy::Email);
            o.connection = Some("Username-Password-Authentication".into());
            let e = refused(record.clone(), &o);
            assert_eq!(e.code, "read_only_connection");
            assert!(e.message.contains("--mode update"), "{}", e.message);
        }
        let p = planned(record, &options(Mode::Update, MatchBy::Email));
        assert_eq!(p.key, "A@Gmail.com");
        assert_eq!(p.connection.as_deref(), Some("google-oauth2"));
    }

    #[test]
    fn matching_needs_its_key() {
        let cases = [
            (
                Mode::Create,
                MatchBy::Email,
                json!({"user_id": "abc", "connection": "db"}),
                "email",
            ),
            (
                Mode::Update,
                MatchBy::Email,
                json!({"user_id": "abc"}),
                "email",
            ),
            (
                Mode::Upsert,
                MatchBy::Email,
                json!({"user_id": "abc", "email": null}),
                "email",
            ),
            (
                Mode::Update,
                MatchBy::UserId,
                json!({"email": "a@example.com"}),
                "user_id",
            ),
            (
                Mode::Upsert,
                MatchBy::UserId,
                json!({"email": "a@example.com", "connection": "db"}),
                "user_id",
            ),
            (
                Mode::Create,
                MatchBy::UserId,
                json!({"email": "a@example.com", "connection": "db"}),
                "user_id",
            ),
        ];
        for (mode, match_by, record, field) in cases {
            let e = refused(record.clone(), &options(mode, match_by));
            assert_eq!(
                (e.code, e.field.as_deref()),
                ("missing_field", Some(field)),
                "{record}"
            );
        }
        // Creating needs an email even when matching by user_id.
        let e = refused(
            json!({"user_id": "abc", "connection": "db"}),
            &create_opts(),
        );
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("missing_field", Some("email"))
        );
        // Updating by user_id does not.
        planned(json!({"user_id": "abc", "name": "A"}), &update_opts());
    }

    #[test]
    fn auto_matching_takes_the_user_id_when_there_is_one_else_the_email() {
        let mut o = options(Mode::Create, MatchBy::Auto);
        o.connection = Some("db".into());
        let by_id = planned(json!({"user_id": "abc", "email": "A@example.com"}), &o);
        assert_eq!(
            (by_id.match_by, by_id.key.as_str()),
            (MatchBy::UserId, "auth0|abc")
        );
        let by_email = planned(json!({"email": "A@example.com"}), &o);
        assert_eq!(
            (by_email.match_by, by_email.key.as_str()),
            (MatchBy::Email, "a@example.com")
        );
        assert!(by_email.create.unwrap().get("user_id").is_none());
        for mode in [Mode::Update, Mode::Upsert] {
            o.mode = mode;
            assert_eq!(
                planned(json!({"email": "a@example.com"}), &o).match_by,
                MatchBy::Email
            );
            assert_eq!(
                planned(json!({"user_id": "abc", "email": "a@example.com"}), &o).match_by,
                MatchBy::UserId
            );
        }
        // Neither key: nothing can find the user.
        let e = refused(
            json!({"name": "Nobody"}),
            &options(Mode::Update, MatchBy::Auto),
        );
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("missing_field", Some("user_id"))
        );
        assert!(
            e.message.contains("neither a `user_id` nor an `email`"),
            "{}",
            e.message
        );
        // A forced key is taken for every record.
        assert_eq!(MatchBy::UserId.for_record(false), MatchBy::UserId);
        assert_eq!(MatchBy::Email.for_record(true), MatchBy::Email);
        assert_eq!(MatchBy::Auto.for_record(true), MatchBy::UserId);
        assert_eq!(MatchBy::Auto.for_record(false), MatchBy::Email);
    }

    #[test]
    fn emails_are_lower_cased_for_database_users() {
        let p = planned(
            json!({"email": "MiXeD@Example.COM", "identities": [{"connection": "db", "provider": "auth0"}]}),
            &options(Mode::Update, MatchBy::Email),
        );
        assert_eq!(p.key, "mixed@example.com");
        assert_eq!(p.profile["email"], "mixed@example.com");
    }

    // ---------------------------------------------------------------------------------------
    // plan: field validation

    #[test]
    fn profile_fields_are_checked_as_the_server_checks_them() {
        let long = |n: usize| "é".repeat(n);
        // (field, value, accepted)
        let cases = [
            ("email", json!("a@example.com"), true),
            ("email", json!("a@b"), false),
            ("email", json!("a b@example.com"), false),
            ("email", json!("not-an-email"), false),
            ("email", json!(42), false),
            ("email_verified", json!(true), true),
            ("email_verified", json!("true"), false),
            ("email_verified", json!(null), false),
            ("blocked", json!(1), false),
            ("phone_verified", json!(false), true),
            ("phone_number", json!("+14155550123"), true),
            ("phone_number", json!("+1234567890123456"), false),
            ("phone_number", json!("0044 20 1234"), false),
            ("phone_number", json!(null), true),
            ("given_name", json!(long(150)), true),
            ("given_name", json!(long(151)), false),
            ("given_name", json!(""), false),
            ("family_name", json!(long(151)), false),
            ("name", json!(long(300)), true),
            ("name", json!(long(301)), false),
            ("nickname", json!(long(301)), false),
            ("nickname", json!(["x"]), false),
            ("username", json!(long(128)), true),
            ("username", json!(long(129)), false),
            ("picture", json!("https://cdn.example.com/a.png"), true),
            ("picture", json!("http://example.com"), true),
            ("picture", json!("ftp://example.com/a.png"), false),
            ("picture", json!("/avatars/a.png"), false),
            ("picture", json!("mailto:a@example.com"), false),
            ("picture", json!(null), true),
        ];
        for (field, value, accepted) in cases {
            let mut record = user(json!({"user_id": "abc"}));
            record.insert(field.into(), value.clone());
            match plan(&record, &update_opts()) {
                Ok(_) => assert!(accepted, "{field} = {value} was accepted"),
                Err(e) => {
                    assert!(!accepted, "{field} = {value} was refused: {}", e.message);
                    assert_eq!((e.code, e.field.as_deref()), ("invalid_field", Some(field)));
                    assert!(e.message.contains(field), "{}", e.message);
                }
            }
        }
    }

    #[test]
    fn create_only_fields_are_checked() {
        let cases = [
            json!({"user_id": "a b"}),
            json!({"user_id": ""}),
            json!({"user_id": "auth0|"}),
            json!({"user_id": "x".repeat(256)}),
            json!({"user_id": -3}),
            json!({"user_id": 1.5}),
            json!({"user_id": null}),
            json!({"user_id": "abc", "connection": ""}),
            json!({"user_id": "abc", "connection": 3}),
            json!({"user_id": "abc", "verify_email": "no"}),
        ];
        for record in cases {
            let e = refused(record.clone(), &update_opts());
            assert_eq!(e.code, "invalid_field", "{record}");
        }
        planned(
            json!({"user_id": format!("auth0|{}", "x".repeat(255))}),
            &update_opts(),
        );
    }

    #[test]
    fn metadata_must_be_objects_with_clean_keys() {
        // (record, code, field)
        let cases = [
            (
                json!({"user_metadata": "x"}),
                "invalid_field",
                "user_metadata",
            ),
            (
                json!({"app_metadata": null}),
                "invalid_field",
                "app_metadata",
            ),
            (
                json!({"app_metadata": [1]}),
                "invalid_field",
                "app_metadata",
            ),
            (
                json!({"user_metadata": {"a.b": 1}}),
                "invalid_metadata_key",
                "user_metadata.a.b",
            ),
            (
                json!({"user_metadata": {"a": {"b": {"$c": 1}}}}),
                "invalid_metadata_key",
                "user_metadata.a.b.$c",
            ),
            (
                json!({"app_metadata": {"list": [{"ok": 1}, {"x.y": 2}]}}),
                "invalid_metadata_key",
                "app_metadata.list[1].x.y",
            ),
            (
                json!({"app_metadata": {"user_id": "x"}}),
                "reserved_metadata_key",
                "app_metadata.user_id",
            ),
            (
                json!({"app_metadata": {"loginsCount": 1}}),
                "reserved_metadata_key",
                "app_metadata.loginsCount",
            ),
        ];
        for (record, code, field) in cases {
            let mut record = user(record);
            record.insert("user_id".into(), "abc".into());
            let e = refused(Value::Object(record), &update_opts());
            assert_eq!(
                (e.code, e.field.as_deref()),
                (code, Some(field)),
                "{}",
                e.message
            );
        }
        // Reserved names are fine in user_metadata, and nested in app_metadata.
        planned(
            json!({"user_id": "abc", "user_metadata": {"email": 1}, "app_metadata": {"a": {"email": 1}}}),
            &update_opts(),
        );
    }

    #[test]
    fn bodies_over_one_megabyte_are_too_large() {
        let big = |n: usize| {
            json!({"user_id": "abc", "email": "a@example.com", "connection": "db",
                                    "user_metadata": {"blob": "x".repeat(n)}})
        };
        let e = refused(big(BODY_LIMIT), &create_opts());
        assert_eq!(e.code, "too_large");
        assert!(e.message.contains("1048576"), "{}", e.message);
        let e = refused(big(BODY_LIMIT), &update_opts());
        assert_eq!(e.code, "too_large");
        // Just under: the whole body, password included, fits.
        let p = planned(big(BODY_LIMIT - 300), &create_opts());
        assert!(serde_json::to_vec(&p.create.unwrap()).unwrap().len() <= BODY_LIMIT);
    }

    #[test]
    fn nulls_delete_on_update_and_are_left_out_of_a_create() {
        let p = planned(
            json!({"user_id": "abc", "email": "a@example.com", "connection": "db",
                   "given_name": null, "user_metadata": {"a": null, "b": {"c": null}}}),
            &create_opts(),
        );
        assert_eq!(p.profile.get("given_name"), Some(&Value::Null));
        let body = p.create.unwrap();
        assert!(body.get("given_name").is_none());
        assert_eq!(body["user_metadata"], json!({"b": {"c": null}}));
        let mut o = create_opts();
        o.metadata = MetadataStrategy::Deep;
        let body = planned(
            json!({"user_id": "abc", "email": "a@example.com", "connection": "db",
                   "user_metadata": {"a": null, "b": {"c": null, "d": 1}}}),
            &o,
        )
        .create
        .unwrap();
        assert_eq!(body["user_metadata"], json!({"b": {"d": 1}}));
    }

    // ---------------------------------------------------------------------------------------
    // plan: passwords

    const GOOD: &str = "Corr3ct-Horse";

    #[test]
    fn passwords_come_from_the_chosen_source() {
        let record =
            json!({"user_id": "abc", "email": "a@example.com", "connection": "db", "pw": GOOD});
        let mut o = create_opts();
        o.passwords = Passwords::Field("pw".into());
        let p = planned(record.clone(), &o);
        assert_eq!(p.create.as_ref().unwrap()["password"], GOOD);
        assert!(!p.profile.contains_key("pw"));
        // Update mode: the field is taken out and never sent.
        o.mode = Mode::Update;
        let p = planned(record.clone(), &o);
        assert!(p.create.is_none() && !p.profile.contains_key("pw"));
        let p = update_body(
            &user(json!({"user_id": "auth0|abc"})),
            &p,
            MetadataStrategy::Merge,
        );
        assert!(!p.unwrap().to_string().contains(GOOD));

        o.mode = Mode::Create;
        o.passwords = Passwords::Random;
        let record = json!({"user_id": "abc", "email": "a@example.com", "connection": "db"});
        let a = planned(record.clone(), &o).create.unwrap()["password"].clone();
        let b = planned(record, &o).create.unwrap()["password"].clone();
        assert_ne!(a, b, "each user gets their own");
    }

    #[test]
    fn missing_and_weak_passwords_are_refused_without_showing_them() {
        let base = json!({"user_id": "abc", "email": "a@example.com", "connection": "db"});
        let with = |pw: Value| {
            let mut r = user(base.clone());
            r.insert("pw".into(), pw);
            Value::Object(r)
        };
        let field = Passwords::Field("pw".into());
        // (passwords, record, mode, code)
        let cases = [
            (
                Passwords::None,
                base.clone(),
                Mode::Create,
                "missing_password",
            ),
            // Upsert: only a create needs one, known after the lookup.
            (Passwords::None, base.clone(), Mode::Upsert, "deferred"),
            (
                field.clone(),
                base.clone(),
                Mode::Create,
                "missing_password",
            ),
            (
                field.clone(),
                with(json!("")),
                Mode::Create,
                "missing_password",
            ),
            (field.clone(), with(json!(null)), Mode::Upsert, "deferred"),
            (field.clone(), base.clone(), Mode::Upsert, "deferred"),
            // A password that is there but weak is the record's fault whatever the lookup finds.
            (
                field.clone(),
                with(json!("short1A")),
                Mode::Upsert,
                "weak_password",
            ),
            (
                field.clone(),
                with(json!(12345678)),
                Mode::Create,
                "invalid_field",
            ),
            (
                field.clone(),
                with(json!("short1A")),
                Mode::Create,
                "weak_password",
            ),
            (
                field.clone(),
                with(json!("alllowercase")),
                Mode::Create,
                "weak_password",
            ),
            (
                field.clone(),
                with(json!("lower+digits123")),
                Mode::Upsert,
                "ok",
            ),
        ];
        for (passwords, record, mode, code) in cases {
            let mut o = options(mode, MatchBy::UserId);
            o.passwords = passwords.clone();
            match plan(&user(record.clone()), &o) {
                Ok(p) if code == "deferred" => {
                    let refused = p.create_refused.expect("why it cannot be created");
                    assert_eq!(refused.code, "missing_password", "{record}");
                    assert!(p.create.is_none(), "{record}");
                }
                Ok(p) => {
                    assert_eq!(code, "ok", "{record}");
                    assert!(p.create_refused.is_none() && p.create.is_some());
                }
                Err(e) => {
                    assert_eq!(e.code, code, "{record}: {}", e.message);
                    if let Some(pw) = record.get("pw").and_then(Value::as_str)
                        && !pw.is_empty()
                    {
                        assert!(!e.message.contains(pw), "{}", e.message);
                    }
                    if passwords == Passwords::None {
                        assert!(e.message.contains("--passwords random"), "{}", e.message);
                        assert!(e.message.contains("--password-field"), "{}", e.message);
                    }
                }
            }
        }
        // Updates never need one.
        let mut o = update_opts();
        o.passwords = Passwords::None;
        planned(base, &o);
    }

    #[test]
    fn a_password_field_not_named_by_password_field_is_refused() {
        let record = json!({"user_id": "abc", "email": "a@example.com", "connection": "db", "password": GOOD});
        for passwords in [
            Passwords::None,
            Passwords::Random,
            Passwords::Field("pw".into()),
        ] {
            let mut o = create_opts();
            o.passwords = passwords;
            let e = refused(record.clone(), &o);
            assert_eq!(
                (e.code, e.field.as_deref()),
                ("unknown_field", Some("password"))
            );
            assert!(!e.message.contains(GOOD));
        }
        let mut o = create_opts();
        o.passwords = Passwords::Field("password".into());
        assert_eq!(planned(record, &o).create.unwrap()["password"], GOOD);
    }

    #[test]
    fn debug_never_shows_a_password() {
        let mut o = create_opts();
        o.passwords = Passwords::Field("pw".into());
        let p = planned(
            json!({"user_id": "abc", "email": "a@example.com", "connection": "db", "pw": GOOD}),
            &o,
        );
        let shown = format!("{p:?} {p:#?}");
        assert!(!shown.contains(GOOD), "{shown}");
        assert!(shown.contains("<redacted>") && shown.contains("auth0|abc"));
        o.passwords = Passwords::Random;
        let p = planned(
            json!({"user_id": "abc", "email": "a@example.com", "connection": "db"}),
            &o,
        );
        let password = p.create.as_ref().unwrap()["password"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(!format!("{p:?}").contains(&password));
    }

    #[test]
    fn random_passwords_meet_every_policy() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let p = random_password();
            assert!(p.chars().count() >= 16, "{p}");
            assert!(p.chars().any(|c| c.is_ascii_lowercase()), "{p}");
            assert!(p.chars().any(|c| c.is_ascii_uppercase()), "{p}");
            assert!(p.chars().any(|c| c.is_ascii_digit()), "{p}");
            assert!(p.chars().any(|c| !c.is_alphanumeric()), "{p}");
            assert!(p.is_ascii() && !p.contains(char::is_whitespace), "{p}");
            assert!(meets_good_policy(&p));
            // "Excellent": no character three times in a row.
            let c: Vec<char> = p.chars().collect();
            assert!(c.windows(3).all(|w| !(w[0] == w[1] && w[1] == w[2])), "{p}");
            assert!(seen.insert(p));
        }
    }

    // ---------------------------------------------------------------------------------------
    // update_body, apply_patch, diff

    fn doc_current() -> User {
        user(json!({
            "user_id": "auth0|abc", "name": "Old",
            "user_metadata": {"theme": "dark", "address": {"city": "Paris", "zip": "75001"}, "tags": ["a"]},
            "app_metadata": {"plan": "free"}
        }))
    }

    fn doc_planned() -> Planned {
        planned(
            json!({"user_id": "auth0|abc",
                   "user_metadata": {"address": {"city": "Lyon"}, "tags": null}}),
            &update_opts(),
        )
    }

    #[test]
    fn the_documented_strategy_examples_hold() {
        // (strategy, body, resulting user_metadata) — the module docs quote these.
        let cases = [
            (
                MetadataStrategy::Merge,
                json!({"user_metadata": {"address": {"city": "Lyon"}, "tags": null}}),
                json!({"theme": "dark", "address": {"city": "Lyon"}}),
            ),
            (
                MetadataStrategy::Deep,
                json!({"user_metadata": {"address": {"city": "Lyon", "zip": "75001"}, "tags": null}}),
                json!({"theme": "dark", "address": {"city": "Lyon", "zip": "75001"}}),
            ),
            (
                MetadataStrategy::Replace,
                json!({"user_metadata": {"address": {"city": "Lyon"}, "theme": null, "tags": null}}),
                json!({"address": {"city": "Lyon"}}),
            ),
        ];
        for (strategy, body, result) in cases {
            let got = update_body(&doc_current(), &doc_planned(), strategy).unwrap();
            // Byte for byte, in the order the module docs show.
            assert_eq!(got.to_string(), body.to_string(), "{strategy:?}");
            let after = apply_patch(&doc_current(), &got);
            assert!(
                same(&after["user_metadata"], &result),
                "{strategy:?}: {}",
                after["user_metadata"]
            );
            assert_eq!(
                after["app_metadata"],
                json!({"plan": "free"}),
                "not carried, left alone"
            );
            assert!(
                update_body(&after, &doc_planned(), strategy).is_none(),
                "{strategy:?} twice"
            );
        }
    }

    #[test]
    fn empty_metadata_clears_under_merge_and_replace_only() {
        let p = planned(
            json!({"user_id": "abc", "user_metadata": {}}),
            &update_opts(),
        );
        let current = doc_current();
        for (strategy, body) in [
            (MetadataStrategy::Merge, Some(json!({"user_metadata": {}}))),
            (
                MetadataStrategy::Replace,
                Some(json!({"user_metadata": {}})),
            ),
            (MetadataStrategy::Deep, None),
        ] {
            assert_eq!(update_body(&current, &p, strategy), body, "{strategy:?}");
        }
        // Nothing to clear: unchanged.
        let bare = user(json!({"user_id": "auth0|abc"}));
        for strategy in [MetadataStrategy::Merge, MetadataStrategy::Replace] {
            assert_eq!(update_body(&bare, &p, strategy), None);
        }
    }

    #[test]
    fn profile_fields_are_sent_only_when_they_differ() {
        let current = user(
            json!({"user_id": "auth0|abc", "name": "Ann", "blocked": false,
                                  "email": "ann@example.com", "app_metadata": {"plan": "free", "n": 1}}),
        );
        // (record, expected body)
        let cases = [
            (json!({"name": "Ann"}), None),
            (json!({"name": "Anne"}), Some(json!({"name": "Anne"}))),
            (json!({"email": "ANN@example.com"}), None),
            (
                json!({"blocked": true, "name": "Ann"}),
                Some(json!({"blocked": true})),
            ),
            (json!({"given_name": null}), None),
            (json!({"name": null}), Some(json!({"name": null}))),
            (
                json!({"picture": "https://example.com/p.png"}),
                Some(json!({"picture": "https://example.com/p.png"})),
            ),
            // The backfill re-run: same value, and a number written another way.
            (json!({"app_metadata": {"plan": "free"}}), None),
            (json!({"app_metadata": {"n": 1.0}}), None),
            (json!({"app_metadata": {"n": 10e-1}}), None),
            (json!({"app_metadata": {"gone": null}}), None),
            (
                json!({"app_metadata": {"plan": "pro"}}),
                Some(json!({"app_metadata": {"plan": "pro"}})),
            ),
            (
                json!({"app_metadata": {"plan": "free", "n": 2}}),
                Some(json!({"app_metadata": {"n": 2}})),
            ),
        ];
        for (record, expected) in cases {
            let mut r = user(record.clone());
            r.insert("user_id".into(), "abc".into());
            let p = planned(Value::Object(r), &update_opts());
            let body = update_body(&current, &p, MetadataStrategy::Merge);
            assert_eq!(body, expected, "{record}");
            if let Some(body) = body {
                assert!(!diff(&current, &apply_patch(&current, &body)).is_empty());
            }
        }
    }

    #[test]
    fn apply_patch_follows_auth0_semantics() {
        let current = user(json!({
            "user_id": "auth0|abc", "name": "Ann", "nickname": "ann",
            "user_metadata": {"a": 1, "nested": {"x": 1, "y": 2}},
            "app_metadata": {"plan": "free"}
        }));
        // (body, expected user)
        let cases = [
            // Spec example: top-level keys merged.
            (
                json!({"user_metadata": {"addresses": {"work_address": "100 Industrial Way"}}}),
                json!({"user_id": "auth0|abc", "name": "Ann", "nickname": "ann",
                    "user_metadata": {"a": 1, "nested": {"x": 1, "y": 2},
                                      "addresses": {"work_address": "100 Industrial Way"}},
                    "app_metadata": {"plan": "free"}}),
            ),
            // One level only: a nested object is replaced whole.
            (
                json!({"user_metadata": {"nested": {"x": 9}}}),
                json!({"user_id": "auth0|abc", "name": "Ann", "nickname": "ann",
                    "user_metadata": {"a": 1, "nested": {"x": 9}}, "app_metadata": {"plan": "free"}}),
            ),
            // null deletes a key; {} clears.
            (
                json!({"user_metadata": {"a": null}, "app_metadata": {}}),
                json!({"user_id": "auth0|abc", "name": "Ann", "nickname": "ann",
                    "user_metadata": {"nested": {"x": 1, "y": 2}}, "app_metadata": {}}),
            ),
            // Root fields are replaced; null removes; steering fields are not stored.
            (
                json!({"name": "Anne", "nickname": null, "connection": "db", "verify_email": false}),
                json!({"user_id": "auth0|abc", "name": "Anne",
                    "user_metadata": {"a": 1, "nested": {"x": 1, "y": 2}}, "app_metadata": {"plan": "free"}}),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                Value::Object(apply_patch(&current, &body)),
                expected,
                "{body}"
            );
        }
        // A metadata object the user lacks is created by a merge.
        let bare = user(json!({"user_id": "auth0|abc"}));
        let after = apply_patch(&bare, &json!({"app_metadata": {"plan": "pro", "x": null}}));
        assert_eq!(
            Value::Object(after),
            json!({"user_id": "auth0|abc", "app_metadata": {"plan": "pro"}})
        );
    }

    #[test]
    fn diff_names_changed_fields_and_metadata_paths() {
        let current = user(json!({
            "user_id": "auth0|abc", "name": "Ann", "blocked": false,
            "user_metadata": {"address": {"city": "Paris", "zip": "75001"}, "tags": ["a"], "n": 1},
            "app_metadata": {"plan": "free", "keep": true}
        }));
        let after = user(json!({
            "user_id": "auth0|abc", "name": "Anne", "blocked": false, "given_name": "A",
            "user_metadata": {"address": {"city": "Lyon", "zip": "75001"}, "tags": ["a", "b"], "n": 1.0, "new": {}},
            "app_metadata": {"plan": "pro", "keep": true}
        }));
        assert_eq!(
            diff(&current, &after),
            [
                "name",
                "given_name",
                "app_metadata.plan",
                "user_metadata.address.city",
                "user_metadata.tags",
                "user_metadata.new"
            ]
        );
        assert!(diff(&current, &current).is_empty());
        // Absent metadata is the same as {}; a root null is the same as absent.
        let a = user(json!({"user_id": "x", "name": null}));
        let b = user(json!({"user_id": "x", "user_metadata": {}}));
        assert!(diff(&a, &b).is_empty());
        // A value that stops being an object ends the path there.
        let a = user(json!({"user_metadata": {"a": {"b": 1}}}));
        let b = user(json!({"user_metadata": {"a": 5}}));
        assert_eq!(diff(&a, &b), ["user_metadata.a"]);
    }

    #[test]
    fn numbers_compare_by_value() {
        let equal = [
            ("1", "1.0"),
            ("1", "1e0"),
            ("100", "1E2"),
            ("0.5", "5e-1"),
            ("0", "-0.0"),
            ("-2.50", "-2.5"),
        ];
        let different = [
            ("1", "-1"),
            ("1", "10"),
            ("0.1", "0.10000000000000001"),
            ("1e400", "1e401"),
        ];
        let n = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        for (a, b) in equal {
            assert!(same(&n(a), &n(b)), "{a} = {b}");
        }
        for (a, b) in different {
            assert!(!same(&n(a), &n(b)), "{a} != {b}");
        }
    }

    #[test]
    fn check_patch_refuses_what_auth0_refuses() {
        check_patch(&json!({"name": "x", "email": "a@example.com"})).unwrap();
        let e = check_patch(&json!({"username": "ann", "email": "a@example.com"})).unwrap_err();
        assert_eq!(e.code, "conflicting_fields");
        let big = json!({"user_metadata": {"x": "y".repeat(BODY_LIMIT)}});
        assert_eq!(check_patch(&big).unwrap_err().code, "too_large");
    }

    #[test]
    fn a_created_user_looks_like_an_update_of_an_empty_user() {
        let metadata = json!({"a": null, "b": {"c": null, "d": [null]}, "e": {}});
        for strategy in [
            MetadataStrategy::Merge,
            MetadataStrategy::Deep,
            MetadataStrategy::Replace,
        ] {
            let mut o = create_opts();
            o.metadata = strategy;
            let p = planned(
                json!({"user_id": "abc", "email": "a@example.com", "connection": "db", "user_metadata": metadata}),
                &o,
            );
            let created = user(json!({"user_id": "auth0|abc", "email": "a@example.com",
                                      "user_metadata": p.create.as_ref().unwrap()["user_metadata"]}));
            let empty = user(json!({"user_id": "auth0|abc", "email": "a@example.com"}));
            let updated = match update_body(&empty, &p, strategy) {
                Some(body) => apply_patch(&empty, &body),
                None => empty,
            };
            assert!(diff(&created, &updated).is_empty(), "{strategy:?}");
        }
    }

    // ---------------------------------------------------------------------------------------
    // Property: the body takes the user to the strategy's result, and is None exactly when
    // that result is the user as it is.

    /// Auth0's PATCH merge, written independently of the module.
    fn reference(
        current: Option<&Value>,
        record: &Map<String, Value>,
        strategy: MetadataStrategy,
    ) -> Value {
        fn deep(base: &Map<String, Value>, patch: &Map<String, Value>) -> Map<String, Value> {
            let mut out = base.clone();
            for (k, v) in patch {
                if v.is_null() {
                    out.shift_remove(k);
                } else if let Some(p) = v.as_object() {
                    let b = out
                        .get(k)
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    out.insert(k.clone(), Value::Object(deep(&b, p)));
                } else {
                    out.insert(k.clone(), v.clone());
                }
            }
            out
        }
        let current = current
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let result = match strategy {
            MetadataStrategy::Merge if record.is_empty() => Map::new(),
            MetadataStrategy::Merge => {
                let mut out = current;
                for (k, v) in record {
                    if v.is_null() {
                        out.shift_remove(k);
                    } else {
                        out.insert(k.clone(), v.clone());
                    }
                }
                out
            }
            MetadataStrategy::Deep => deep(&current, record),
            MetadataStrategy::Replace => record
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        Value::Object(result)
    }

    /// Users compared as this module means them: root nulls and empty metadata are absent.
    fn normal(u: &User) -> Value {
        Value::Object(
            u.iter()
                .filter(|(k, v)| {
                    let empty_metadata = is_metadata(k) && v.as_object().is_some_and(Map::is_empty);
                    !v.is_null() && !empty_metadata
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0i64..3).prop_map(|n| json!(n)),
            Just(serde_json::from_str::<Value>("1.0").unwrap()),
            "[xy]".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[abc]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn json_object() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::btree_map("[abcd]", json_value(), 0..5)
            .prop_map(|m| m.into_iter().collect())
    }

    fn name() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(None),
            Just(Some(Value::Null)),
            Just(Some(json!("x"))),
            Just(Some(json!("y")))
        ]
    }

    fn strategy() -> impl Strategy<Value = MetadataStrategy> {
        prop_oneof![
            Just(MetadataStrategy::Merge),
            Just(MetadataStrategy::Deep),
            Just(MetadataStrategy::Replace)
        ]
    }

    /// Numbers rewritten with a fraction (`1` becomes `1.0`): the same values, other text.
    fn reworded(value: &Value) -> Value {
        match value {
            Value::Number(n) if !n.to_string().contains('.') => {
                serde_json::from_str(&format!("{n}.0")).unwrap()
            }
            Value::Array(items) => Value::Array(items.iter().map(reworded).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), reworded(v))).collect())
            }
            other => other.clone(),
        }
    }

    /// A record's metadata object made from the user's, so that unchanged and nearly
    /// unchanged records are common: per current key (in order) 0 drops it, 1 keeps it, 2 keeps
    /// half of a nested object, 3 sets it to null, 4 keeps it with numbers reworded, 5 keeps it
    /// and adds a null for a key the user lacks; then the extra keys are laid over.
    fn derived(
        current: Option<&Map<String, Value>>,
        how: &[u8],
        extra: &Map<String, Value>,
    ) -> Map<String, Value> {
        let mut out = Map::new();
        for ((key, value), how) in current.into_iter().flatten().zip(how.iter().cycle()) {
            let value = match (how, value) {
                (0, _) => continue,
                (2, Value::Object(inner)) => Value::Object(
                    inner
                        .iter()
                        .take(inner.len() / 2)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ),
                (3, _) => Value::Null,
                (5, v) => {
                    // A null for a key the user lacks changes nothing.
                    out.insert(format!("{key}_absent"), Value::Null);
                    v.clone()
                }
                (4, v) => reworded(v),
                (_, v) => v.clone(),
            };
            out.insert(key.clone(), value);
        }
        for (key, value) in extra {
            out.insert(key.clone(), value.clone());
        }
        out
    }

    fn derivation() -> impl Strategy<Value = Option<(Vec<u8>, Map<String, Value>)>> {
        proptest::option::of((
            prop::collection::vec(0u8..6, 1..6),
            prop_oneof![
                2 => Just(Map::new()),
                1 => prop::collection::btree_map("[abcd]", json_value(), 0..3)
                    .prop_map(|m| m.into_iter().collect()),
            ],
        ))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn update_body_reaches_the_strategys_result(
            current_meta in (proptest::option::of(json_object()), proptest::option::of(json_object())),
            record_meta in (derivation(), derivation()),
            current_name in name(),
            record_name in name(),
            strategy in strategy(),
        ) {
            let mut current = user(json!({"user_id": "auth0|abc"}));
            let mut record = user(json!({"user_id": "auth0|abc"}));
            if let Some(n) = current_name.filter(|n| !n.is_null()) { current.insert("name".into(), n); }
            if let Some(n) = record_name { record.insert("name".into(), n); }
            for (field, c, r) in [("user_metadata", &current_meta.0, &record_meta.0), ("app_metadata", &current_meta.1, &record_meta.1)] {
                if let Some(c) = c { current.insert(field.into(), Value::Object(c.clone())); }
                if let Some((how, extra)) = r {
                    record.insert(field.into(), Value::Object(derived(c.as_ref(), how, extra)));
                }
            }
            let mut o = update_opts();
            o.metadata = strategy;
            let p = plan(&record, &o).unwrap();

            let mut expected = current.clone();
            match record.get("name") {
                Some(Value::Null) => { expected.shift_remove("name"); }
                Some(n) => { expected.insert("name".into(), n.clone()); }
                None => {}
            }
            for field in ["user_metadata", "app_metadata"] {
                if let Some(Value::Object(r)) = record.get(field) {
                    expected.insert(field.into(), reference(current.get(field), r, strategy));
                }
            }
            let unchanged = same(&normal(&expected), &normal(&current));
            match update_body(&current, &p, strategy) {
                None => prop_assert!(unchanged, "None, but {:?} != {:?}", expected, current),
                Some(body) => {
                    prop_assert!(!unchanged, "sent {} for no change", body);
                    let after = apply_patch(&current, &body);
                    prop_assert!(same(&normal(&after), &normal(&expected)), "{} gave {:?}, wanted {:?}", body, after, expected);
                    prop_assert!(!diff(&current, &after).is_empty());
                    prop_assert!(diff(&after, &expected).is_empty());
                    // What Auth0 takes: metadata patches are objects, `{}` only to clear.
                    for field in ["user_metadata", "app_metadata"] {
                        if let Some(m) = body.get(field) {
                            let m = m.as_object().unwrap();
                            prop_assert!(!m.is_empty() || normal(&expected).get(field).is_none());
                        }
                    }
                    check_patch(&body).unwrap();
                }
            }
        }
    }
}
