//! The root fields a record may have: the profile fields with their types, lengths and
//! formats (as the server checks them), the create-only, read-only and unsupported ones, and
//! the `user_id`. A field not known here is `unknown_field`, with the closest known name.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::{Invalid, Passwords, PlanOptions, User, code, invalid};
use crate::rules::{EMAIL_PATTERN, PHONE_PATTERN};

/// What a profile field may hold.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Bool,
    Text {
        min: usize,
        max: Option<usize>,
        format: Format,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Plain,
    Email,
    Phone,
    Url,
}

pub(super) const fn text(min: usize, max: usize, format: Format) -> Kind {
    Kind::Text {
        min,
        max: if max == 0 { None } else { Some(max) },
        format,
    }
}

/// Spec: the fields both `CreateUserRequestContent` and `UpdateUserRequestContent` take, with
/// their types, lengths and formats. On update the text fields may be `null`.
pub(super) const PROFILE_FIELDS: &[(&str, Kind)] = &[
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
pub(super) const CREATE_ONLY_FIELDS: &[&str] = &["user_id", "connection", "verify_email"];

/// Spec: the fields of `GetUserResponseContent` that no request body takes (facts: "Read-only
/// profile fields ... are refused").
pub(super) const READ_ONLY_FIELDS: &[&str] = &[
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

/// Auth0 bulk-import fields that the Management API does not take, and this tool does not
/// either (password hashes it does: [`crate::hashes::FIELDS`], planned in `hash.rs`).
pub(super) const UNSUPPORTED_FIELDS: &[(&str, &str)] = &[(
    "mfa_factors",
    "MFA enrollments cannot be sent through the Management API; only Auth0's bulk import \
         job (POST /api/v2/jobs/users-imports) takes them",
)];

/// The same pattern as the sandbox's (validate.rs), so both agree on every address.
pub(super) static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(EMAIL_PATTERN).expect("valid regex"));
/// Spec: `phone_number` pattern.
pub(super) static PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(PHONE_PATTERN).expect("valid regex"));

/// Rejects unsupported and unknown root fields, naming all of them.
pub(super) fn check_root_fields(fields: &User, options: &PlanOptions) -> Result<(), Invalid> {
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
                "unsupported field{} {}: {why}. Remove {}, or use Auth0's bulk import job for \
                 this file",
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
pub(super) fn shown(name: &str) -> String {
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

pub(super) fn known_fields() -> Vec<&'static str> {
    PROFILE_FIELDS
        .iter()
        .map(|(name, _)| *name)
        .chain(CREATE_ONLY_FIELDS.iter().copied())
        .chain(["user_metadata", "app_metadata"])
        .chain(crate::hashes::FIELDS)
        .collect()
}

pub(super) fn is_known(name: &str) -> bool {
    PROFILE_FIELDS.iter().any(|(n, _)| *n == name)
        || CREATE_ONLY_FIELDS.contains(&name)
        || READ_ONLY_FIELDS.contains(&name)
        || matches!(name, "user_metadata" | "app_metadata" | "metadata")
        || crate::hashes::FIELDS.contains(&name)
}

/// The known field closest to a typo (at most two edits away), if any.
pub(super) fn suggestion(name: &str) -> Option<&'static str> {
    let known = known_fields()
        .into_iter()
        .chain(READ_ONLY_FIELDS.iter().copied());
    crate::suggest::closest(name, known)
}

/// A short description of a value for messages (strings are quoted and cut short).
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {}", quoted(s)),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

pub(super) fn quoted(s: &str) -> String {
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
pub(super) fn check_profile_field(name: &str, kind: Kind, value: &Value) -> Result<(), Invalid> {
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
pub(super) fn user_id_of(fields: &User) -> Result<Option<String>, Invalid> {
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

/// The profile fields of a record, each checked.
pub(super) fn profile_fields(fields: &User) -> Result<Map<String, Value>, Invalid> {
    let mut profile = Map::new();
    for (name, value) in fields {
        if let Some((_, kind)) = PROFILE_FIELDS.iter().find(|(n, _)| n == name) {
            check_profile_field(name, *kind, value)?;
            profile.insert(name.clone(), value.clone());
        }
    }
    Ok(profile)
}

/// The record's `connection`, checked: a name, or absent.
pub(super) fn connection_field(fields: &User) -> Result<Option<String>, Invalid> {
    match fields.get("connection") {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(other) => Err(invalid(
            code::INVALID_FIELD,
            "connection",
            format!(
                "`connection` must be the name of a connection, not {}",
                describe(other)
            ),
        )),
    }
}

/// The record's `verify_email`, checked: true, false, or absent.
pub(super) fn verify_email_field(fields: &User) -> Result<Option<bool>, Invalid> {
    match fields.get("verify_email") {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(invalid(
            code::INVALID_FIELD,
            "verify_email",
            format!(
                "`verify_email` must be true or false, not {}",
                describe(other)
            ),
        )),
    }
}
