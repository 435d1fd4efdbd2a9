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
//!   entry) and `_before` (a before-image's origin) are ignored. Any other unknown root field is `unknown_field`, so a typo does not
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
//! - **Password hashes** (`password_hash`, `custom_password_hash`, or a hash merged in from
//!   `--password-hashes`) are checked by [`crate::hashes`] (`invalid_password_hash`, naming the
//!   field's path) and kept in [`Planned::hash`], never in a Management API body: Auth0 takes a
//!   hash only through its bulk-import job, and only when the job creates the user. So a hash
//!   is planned only with [`Engine::Job`] in create and upsert mode, where it stands in for the
//!   password (no `missing_password`, no random one). With [`Engine::Api`] a record with a hash
//!   that could be created is `needs_job_engine`; in update mode a hash is `unsupported_field`
//!   whatever the engine (stricter than a job with `upsert`, which may replace a
//!   `custom_password_hash` of a user who never signed in: a hash is only taken where the job
//!   creates the user). Never is a hash dropped silently (an upsert through jobs that finds
//!   the user warns, naming the line, that its hash was not applied). A record with both a hash and a
//!   clear-text password (`--password-field`) is `conflicting_fields`. A root hash field that
//!   is `null` is no hash.
//! - **Size**: the create body, and the patch the record would send under `merge`, must each
//!   be at most 1 MiB serialized (facts: "Every request body is limited to 1 MB"). `deep` and
//!   `replace` bodies depend on the user found; [`check_patch`] checks those.
//!
//! # Layout
//!
//! This file holds the types and [`plan`], which reads as the order of its checks; the
//! checks and the update side have a file each: `fields` (root and profile fields, the
//! `user_id`), `metadata` (metadata objects and the strategies' merges), `password` (the
//! create password), `hash` (a password hash: where it may go) and `patch` ([`update_body`], [`apply_patch`], [`diff`] and the semantic
//! comparison).

pub mod access;
mod change;
mod fields;
mod hash;
mod metadata;
mod password;
mod patch;
#[cfg(test)]
mod testing;

use std::fmt;

use serde_json::{Map, Value};

use fields::{check_root_fields, connection_field, profile_fields, user_id_of, verify_email_field};
use hash::{hash_applies, take_hash};
use metadata::{intended, metadata_objects};
use password::creation_password;

pub use change::Change;
pub use password::random_password;
pub use patch::{apply_patch, changes, check_patch, diff, update_body};

/// A user object, or an input record, as JSON.
pub use crate::api::User;
pub use crate::hashes::PasswordHash;

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

/// How planned records reach the tenant (`--engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// The Management API, one user at a time: lookups, creates and patches.
    #[default]
    Api,
    /// Auth0's bulk-import job (`POST /api/v2/jobs/users-imports`): the only way to create
    /// users with a password hash.
    Job,
}

impl Engine {
    /// The name on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Api => "api",
            Engine::Job => "job",
        }
    }
}

/// The options that decide how records are planned.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub mode: Mode,
    pub match_by: MatchBy,
    pub connection: Option<String>,
    pub passwords: Passwords,
    pub metadata: MetadataStrategy,
    /// Where records go: with [`Engine::Api`] a record with a password hash cannot be created.
    pub engine: Engine,
}

/// A record ready to apply.
///
/// `Debug` is written by hand: it shows the create body with its password redacted, and the
/// hash's field and algorithm only.
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
    /// `create_refused` says why not). Holds a password when one is needed and available; never
    /// a hash (a record with [`Planned::hash`] has no password here).
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
    /// The password hash the user is created with, only ever by a bulk-import job (create or
    /// upsert with [`Engine::Job`]; see the module docs).
    pub hash: Option<PasswordHash>,
    /// The user's roles, organizations and direct permissions, when the record names them
    /// ([`access`]).
    pub access: Option<access::Access>,
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
            // The field and the algorithm, never the value (PasswordHash's own Debug).
            .field("hash", &self.hash)
            .field("access", &self.access)
            .finish()
    }
}

/// Why a record is rejected before any request: a stable machine code, the field, and a
/// message a person can act on. Messages never hold a password.
///
/// Codes: `unknown_field`, `unsupported_field`, `invalid_field`, `ambiguous_field`,
/// `reserved_metadata_key`, `invalid_metadata_key`, `missing_field`, `missing_password`,
/// `weak_password`, `too_large`, `read_only_connection`, `conflicting_fields`,
/// `invalid_password_hash` (the field is the path at fault, e.g.
/// `custom_password_hash.salt.encoding`), `needs_job_engine` (a hash, with `--engine api`).
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
    /// A `password_hash` or `custom_password_hash` that breaks Auth0's rules.
    pub const INVALID_PASSWORD_HASH: &str = "invalid_password_hash";
    /// A record with a password hash to create through the Management API, which takes none.
    pub const NEEDS_JOB_ENGINE: &str = "needs_job_engine";
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

/// Validates and normalizes one record.
///
/// The checks run in a fixed order (root fields, the password hash, metadata, profile fields,
/// `user_id`, `connection`, `verify_email`, the match key, what a create needs, where the hash
/// may go, sizes) so a record with several faults is always refused for the same one.
pub fn plan(record: &User, options: &PlanOptions) -> Result<Planned, Invalid> {
    let mut fields = record.clone();
    // A rejects-file entry fed back as it is: `_error` says why it was refused last time.
    fields.shift_remove("_error");
    // A before-image (`undo`, or an import of `before-images.ndjson`): `_before` names the
    // record whose update it undoes.
    fields.shift_remove("_before");
    let password = match &options.passwords {
        Passwords::Field(name) => fields.shift_remove(name),
        _ => None,
    };
    let access = access::take_access(&mut fields)?;
    check_root_fields(&fields, options)?;
    let hash = take_hash(&mut fields, password.as_ref(), options)?;
    let (user_metadata, app_metadata) = metadata_objects(&fields)?;
    let mut profile = profile_fields(&fields)?;
    let user_id = user_id_of(&fields)?;
    let connection_field = connection_field(&fields)?;
    let verify_email = verify_email_field(&fields)?;
    let home = Home::of(&fields, connection_field, user_id.as_deref(), options);

    // Facts: database connections store emails lower-cased; others keep what the provider sent.
    let external = home.read_only.is_some() || home.foreign_provider.is_some();
    if !external && let Some(Value::String(email)) = profile.get_mut("email") {
        *email = email.to_lowercase();
    }
    let email = profile
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_string);
    let match_by = options.match_by.for_record(user_id.is_some());
    let key = match_key(match_by, email.as_deref(), user_id.as_deref(), options)?;

    let mut create_refused = None;
    let create = if options.mode == Mode::Update {
        if let Some(hash) = &hash {
            hash_applies(hash, options)?;
        }
        None
    } else {
        let connection = home.creatable(email.is_some())?;
        let password = match &hash {
            // The hash is the user's password: the job creates the user with it.
            Some(hash) => hash_applies(hash, options).map(|()| None),
            None => creation_password(password, &options.passwords, connection, options.engine)
                .map(Some),
        };
        match password {
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
        connection: home.connection,
        create,
        create_refused,
        profile,
        user_metadata,
        app_metadata,
        hash,
        access,
    })
}

/// The key that finds the record's user under `match_by` (never `Auto`), or why it has none.
fn match_key(
    match_by: MatchBy,
    email: Option<&str>,
    user_id: Option<&str>,
    options: &PlanOptions,
) -> Result<String, Invalid> {
    match match_by {
        MatchBy::Email => email.map(str::to_string).ok_or_else(|| {
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
        }),
        MatchBy::UserId | MatchBy::Auto => match user_id {
            // Facts ("POST /users"): a database user's id is `auth0|` plus the id given.
            Some(id) if id.contains('|') => Ok(id.to_string()),
            Some(id) => Ok(format!("auth0|{id}")),
            None => {
                let hint = if options.mode == Mode::Update {
                    "add the user_id, or match by email (--match auto or --match email)"
                } else {
                    "without one Auth0 picks the id, and a re-run could not find the user it \
                     created; add the user_id, or match by email (--match auto, the default, \
                     does for records without a user_id)"
                };
                Err(invalid(
                    code::MISSING_FIELD,
                    "user_id",
                    format!("matching by user_id (--match user_id) needs a `user_id`: {hint}"),
                ))
            }
        },
    }
}

/// Where the record's user lives, as far as the record says.
struct Home<'a> {
    /// The record's own connection, else its first identity's (an export), else the command
    /// line's.
    connection: Option<String>,
    /// The provider, when the user is of a social or enterprise identity in that identity's
    /// connection: such users arrive by logging in, not through the API.
    read_only: Option<&'a str>,
    /// The provider of a `user_id` of another provider than `auth0`.
    foreign_provider: Option<&'a str>,
}

impl<'a> Home<'a> {
    fn of(
        fields: &'a User,
        connection_field: Option<String>,
        user_id: Option<&'a str>,
        options: &PlanOptions,
    ) -> Home<'a> {
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
        let read_only = (external_identity.is_some()
            && connection.is_some()
            && connection.as_deref() == identity_connection)
            .then(|| {
                external_identity
                    .and_then(|i| i.get("provider"))
                    .and_then(Value::as_str)
                    .unwrap_or("social or enterprise")
            });
        let foreign_provider = user_id
            .and_then(|id| id.split_once('|'))
            .map(|(provider, _)| provider)
            .filter(|provider| *provider != "auth0");
        Home {
            connection,
            read_only,
            foreign_provider,
        }
    }

    /// The connection a create goes to, or why the record cannot be created (a password
    /// aside: see [`creation_password`]).
    fn creatable(&self, has_email: bool) -> Result<&str, Invalid> {
        let Some(connection) = self.connection.as_deref() else {
            return Err(invalid(
                code::MISSING_FIELD,
                "connection",
                "creating a user needs a connection: pass --connection NAME, or give the record \
                 a `connection` field",
            ));
        };
        if let Some(provider) = self.read_only {
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
        if let Some(provider) = self.foreign_provider {
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
        if !has_email {
            return Err(invalid(
                code::MISSING_FIELD,
                "email",
                format!("creating a user in database connection {connection} needs an `email`"),
            ));
        }
        Ok(connection)
    }
}

struct CreateParts<'a> {
    profile: &'a Map<String, Value>,
    user_id: Option<&'a str>,
    connection: &'a str,
    user_metadata: Option<&'a Map<String, Value>>,
    app_metadata: Option<&'a Map<String, Value>>,
    strategy: MetadataStrategy,
    /// None when the user is created with a password hash (by a job).
    password: Option<String>,
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
    if let Some(password) = parts.password {
        body.insert("password".into(), password.into());
    }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::fields::shown;
    use super::metadata::deeper_than;
    use super::password::meets_good_policy;
    use super::testing::*;
    use super::*;
    use crate::rules::MAX_JSON_DEPTH;

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
        let e = refused(
            json!({"user_id": "abc", "email": "a@example.com", "mfa_factors": [{"x": 1}]}),
            &create_opts(),
        );
        assert_eq!(e.code, "unsupported_field");
        assert_eq!(e.field.as_deref(), Some("mfa_factors"));
        assert!(e.message.contains("Management API"), "{}", e.message);
        // Password hashes are checked, and planned for a job (see hash.rs).
        let e = refused(
            json!({"user_id": "abc", "email": "a@example.com", "custom_password_hash": {"x": 1}}),
            &create_opts(),
        );
        assert_eq!(e.code, "invalid_password_hash");
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
}
