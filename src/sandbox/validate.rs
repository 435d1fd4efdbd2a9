//! Payload validation for create and update, as Auth0's request schemas and docs define it.
//!
//! The rules follow the spec's `CreateUserRequestContent` and `UpdateUserRequestContent`
//! (facts: "POST /api/v2/users", "PATCH /api/v2/users/{id}", "Metadata rules"); messages follow
//! the observed shape `Payload validation error: '...' on property X (...)`.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::error::ErrorReply;

/// What a body field may hold.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Bool,
    Object,
    Text {
        min: usize,
        max: Option<usize>,
        nullable: bool,
        format: Format,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Plain,
    Email,
    Phone,
    Uri,
    NoSpaces,
}

pub(super) const fn text(min: usize, max: usize, nullable: bool, format: Format) -> Kind {
    Kind::Text {
        min,
        max: if max == 0 { None } else { Some(max) },
        nullable,
        format,
    }
}

/// Spec: `CreateUserRequestContent` (additionalProperties: false, required: connection).
const CREATE_FIELDS: &[(&str, Kind, &str)] = &[
    (
        "email",
        text(0, 0, false, Format::Email),
        "The user's email.",
    ),
    (
        "phone_number",
        text(0, 0, false, Format::Phone),
        "The user's phone number (following the E.164 recommendation).",
    ),
    (
        "user_metadata",
        Kind::Object,
        "Data related to the user that does not affect the application's core functionality.",
    ),
    (
        "blocked",
        Kind::Bool,
        "Whether this user was blocked by an administrator (true) or not (false).",
    ),
    (
        "email_verified",
        Kind::Bool,
        "Whether this email address is verified (true) or unverified (false).",
    ),
    (
        "phone_verified",
        Kind::Bool,
        "Whether this phone number has been verified (true) or not (false).",
    ),
    (
        "app_metadata",
        Kind::Object,
        "Data related to the user that does affect the application's core functionality.",
    ),
    (
        "given_name",
        text(1, 150, false, Format::Plain),
        "The user's given name(s).",
    ),
    (
        "family_name",
        text(1, 150, false, Format::Plain),
        "The user's family name(s).",
    ),
    (
        "name",
        text(1, 300, false, Format::Plain),
        "The user's full name.",
    ),
    (
        "nickname",
        text(1, 300, false, Format::Plain),
        "The user's nickname.",
    ),
    (
        "picture",
        text(0, 0, false, Format::Uri),
        "A URI pointing to the user's picture.",
    ),
    (
        "user_id",
        text(0, 255, false, Format::NoSpaces),
        "The external user's id provided by the identity provider.",
    ),
    (
        "connection",
        text(1, 0, false, Format::Plain),
        "Name of the connection this user should be created in.",
    ),
    (
        "password",
        text(1, 0, false, Format::Plain),
        "Initial password for this user. Only valid for auth0 connection strategy.",
    ),
    (
        "verify_email",
        Kind::Bool,
        "Whether the user will receive a verification email after creation (true) or no email (false).",
    ),
    (
        "username",
        text(1, 128, false, Format::Plain),
        "The user's username. Only valid if the connection requires a username.",
    ),
];

/// Spec: `UpdateUserRequestContent`. The spec allows additional properties, but Auth0 refuses
/// read-only fields as additional properties (facts: "PATCH", [O]); the sandbox refuses every
/// key outside the list (stricter).
const UPDATE_FIELDS: &[(&str, Kind, &str)] = &[
    (
        "blocked",
        Kind::Bool,
        "Whether this user was blocked by an administrator (true) or not (false).",
    ),
    (
        "email_verified",
        Kind::Bool,
        "Whether this email address is verified (true) or unverified (false).",
    ),
    (
        "email",
        text(0, 0, true, Format::Email),
        "Email address of this user.",
    ),
    (
        "phone_number",
        text(0, 0, true, Format::Phone),
        "The user's phone number (following the E.164 recommendation).",
    ),
    (
        "phone_verified",
        Kind::Bool,
        "Whether this phone number has been verified (true) or not (false).",
    ),
    (
        "user_metadata",
        Kind::Object,
        "User metadata to which this user has read/write access.",
    ),
    (
        "app_metadata",
        Kind::Object,
        "User metadata to which this user has read-only access.",
    ),
    (
        "given_name",
        text(1, 150, true, Format::Plain),
        "Given name/first name/forename of this user.",
    ),
    (
        "family_name",
        text(1, 150, true, Format::Plain),
        "Family name/last name/surname of this user.",
    ),
    (
        "name",
        text(1, 300, true, Format::Plain),
        "Name of this user.",
    ),
    (
        "nickname",
        text(1, 300, true, Format::Plain),
        "Preferred nickname or alias of this user.",
    ),
    (
        "picture",
        text(0, 0, true, Format::Uri),
        "URL to picture, photo, or avatar of this user.",
    ),
    (
        "verify_email",
        Kind::Bool,
        "Whether this user will receive a verification email after creation (true) or no email (false).",
    ),
    (
        "verify_phone_number",
        Kind::Bool,
        "Whether this user will receive a text after changing the phone number (true) or no text (false).",
    ),
    (
        "password",
        text(1, 0, true, Format::Plain),
        "New password for this user. Only valid for database connections.",
    ),
    (
        "connection",
        text(1, 0, false, Format::Plain),
        "Name of the connection to target for this user update.",
    ),
    (
        "client_id",
        text(1, 0, false, Format::Plain),
        "Auth0 client ID. Only valid when updating email address.",
    ),
    (
        "username",
        text(1, 128, true, Format::Plain),
        "The user's username. Only valid if the connection requires a username.",
    ),
];

use crate::rules::{EMAIL_PATTERN, PHONE_PATTERN, REFUSED_TOGETHER, RESERVED_APP_METADATA};

static EMAIL: LazyLock<Regex> = LazyLock::new(|| Regex::new(EMAIL_PATTERN).expect("valid regex"));
static PHONE: LazyLock<Regex> = LazyLock::new(|| Regex::new(PHONE_PATTERN).expect("valid regex"));

fn payload_error(reason: &str, field: &str, description: &str) -> ErrorReply {
    ErrorReply::invalid_body(format!(
        "Payload validation error: '{reason}' on property {field} ({description})."
    ))
}

pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks `body` against a field table: no unknown keys, types, lengths and formats.
fn check_fields(
    body: &Map<String, Value>,
    fields: &[(&str, Kind, &str)],
) -> Result<(), ErrorReply> {
    let unknown: Vec<&str> = body
        .keys()
        .map(String::as_str)
        .filter(|k| !fields.iter().any(|(name, _, _)| name == k))
        .collect();
    if !unknown.is_empty() {
        // Facts: read-only and unknown keys are "Additional properties not allowed".
        return Err(ErrorReply::invalid_body(format!(
            "Payload validation error: 'Additional properties not allowed: {}'.",
            unknown.join(",")
        )));
    }
    for (name, kind, description) in fields {
        let Some(value) = body.get(*name) else {
            continue;
        };
        if let Err(problem) = check_value(*kind, value) {
            return Err(payload_error(&problem.reason, name, description));
        }
    }
    Ok(())
}

/// Why a value does not fit its field: the reason in Auth0's words, and the code the
/// bulk-import job's error list gives it (facts, "Bulk import jobs"; Auth0's list of job error
/// codes: `INVALID_TYPE`, `MIN_LENGTH`, `MAX_LENGTH`, `FORMAT`, `PATTERN`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    pub code: &'static str,
    pub reason: String,
}

/// Checks one value against what its field may hold: type, length, format.
pub(super) fn check_value(kind: Kind, value: &Value) -> Result<(), Problem> {
    let expected = match kind {
        Kind::Bool => "boolean",
        Kind::Object => "object",
        Kind::Text { .. } => "string",
    };
    let ok_type = matches!(
        (kind, value),
        (Kind::Bool, Value::Bool(_))
            | (Kind::Object, Value::Object(_))
            | (Kind::Text { .. }, Value::String(_))
            | (Kind::Text { nullable: true, .. }, Value::Null)
    );
    if !ok_type {
        return Err(Problem {
            code: "INVALID_TYPE",
            reason: format!(
                "Expected type {expected} but found type {}",
                type_name(value)
            ),
        });
    }
    if let (
        Kind::Text {
            min, max, format, ..
        },
        Value::String(s),
    ) = (kind, value)
    {
        let len = s.chars().count();
        if len < min {
            return Err(Problem {
                code: "MIN_LENGTH",
                reason: format!("String is too short ({len} chars), minimum {min}"),
            });
        }
        if let Some(max) = max
            && len > max
        {
            return Err(Problem {
                code: "MAX_LENGTH",
                reason: format!("String is too long ({len} chars), maximum {max}"),
            });
        }
        check_format(s, format)?;
    }
    Ok(())
}

fn check_format(s: &str, format: Format) -> Result<(), Problem> {
    let ok = match format {
        Format::Plain => true,
        Format::Email => EMAIL.is_match(s),
        Format::Phone => PHONE.is_match(s),
        Format::Uri => url::Url::parse(s).is_ok_and(|u| u.has_host()),
        Format::NoSpaces => !s.chars().any(char::is_whitespace),
    };
    if ok {
        return Ok(());
    }
    let (code, reason) = match format {
        Format::Phone => (
            "PATTERN",
            format!("String does not match pattern ^\\+[0-9]{{1,15}}$: {s}"),
        ),
        Format::NoSpaces => (
            "PATTERN",
            format!("String does not match pattern ^\\S*$: {s}"),
        ),
        Format::Email => (
            "FORMAT",
            format!("Object didn't pass validation for format email: {s}"),
        ),
        _ => (
            "FORMAT",
            format!("Object didn't pass validation for format strict-uri: {s}"),
        ),
    };
    Err(Problem { code, reason })
}

/// Facts ("Metadata rules"): keys must not contain `.` or `$` (checked at every depth: the
/// store behind metadata refuses them anywhere, so the stricter reading), and `app_metadata`
/// must not use the reserved names at its top level.
pub fn check_metadata(field: &str, metadata: &Map<String, Value>) -> Result<(), ErrorReply> {
    fn walk(field: &str, path: &str, value: &Value) -> Result<(), ErrorReply> {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    let here = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    if key.contains('.') || key.contains('$') {
                        return Err(ErrorReply::invalid_body(format!(
                            "Payload validation error: 'Invalid key \"{key}\" at {field}.{here}: \
                             metadata keys must not contain \".\" or \"$\"' on property {field}."
                        )));
                    }
                    walk(field, &here, inner)?;
                }
                Ok(())
            }
            Value::Array(items) => items.iter().try_for_each(|item| walk(field, path, item)),
            _ => Ok(()),
        }
    }
    if field == "app_metadata"
        && let Some(key) = metadata
            .keys()
            .find(|k| RESERVED_APP_METADATA.contains(&k.as_str()))
    {
        return Err(ErrorReply::invalid_body(format!(
            "Payload validation error: '\"{key}\" is a reserved name and cannot be used in \
             app_metadata' on property app_metadata."
        )));
    }
    walk(field, "", &Value::Object(metadata.clone()))
}

fn check_all_metadata(body: &Map<String, Value>) -> Result<(), ErrorReply> {
    for field in ["user_metadata", "app_metadata"] {
        if let Some(Value::Object(m)) = body.get(field) {
            check_metadata(field, m)?;
        }
    }
    Ok(())
}

/// Validates a create body's shape (connection rules are checked against the store later).
pub fn create_body(body: &Value) -> Result<&Map<String, Value>, ErrorReply> {
    let Value::Object(map) = body else {
        return Err(ErrorReply::invalid_body(format!(
            "Payload validation error: 'Expected type object but found type {}'.",
            type_name(body)
        )));
    };
    check_fields(map, CREATE_FIELDS)?;
    if !map.contains_key("connection") {
        return Err(ErrorReply::invalid_body(
            "Payload validation error: 'Missing required property: connection'.",
        ));
    }
    check_all_metadata(map)?;
    Ok(map)
}

/// Validates an update body.
pub fn update_body(body: &Value) -> Result<&Map<String, Value>, ErrorReply> {
    let Value::Object(map) = body else {
        return Err(ErrorReply::invalid_body(format!(
            "Payload validation error: 'Expected type object but found type {}'.",
            type_name(body)
        )));
    };
    if map.is_empty() {
        // Spec: an update needs at least one property (stricter where the spec is silent).
        return Err(ErrorReply::invalid_body(
            "Payload validation error: 'Too few properties defined (0), minimum 1'.",
        ));
    }
    check_fields(map, UPDATE_FIELDS)?;
    for (a, b) in REFUSED_TOGETHER {
        if map.contains_key(*a) && map.contains_key(*b) {
            return Err(ErrorReply::invalid_body(format!(
                "Cannot update {a} and {b} simultaneously"
            )));
        }
    }
    check_all_metadata(map)?;
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn create_refuses_read_only_fields_as_additional_properties() {
        let e = create_body(&json!({"connection": "c", "logins_count": 3})).unwrap_err();
        assert_eq!(
            e.message,
            "Payload validation error: 'Additional properties not allowed: logins_count'."
        );
    }

    #[test]
    fn create_requires_connection() {
        let e = create_body(&json!({"email": "a@b.co"})).unwrap_err();
        assert!(e.message.contains("Missing required property: connection"));
    }

    #[test]
    fn create_checks_lengths_formats_and_types() {
        let e = create_body(&json!({"connection": ""})).unwrap_err();
        assert!(
            e.message
                .contains("String is too short (0 chars), minimum 1' on property connection")
        );
        let e = create_body(&json!({"connection": "c", "email": "nope"})).unwrap_err();
        assert!(e.message.contains("format email"));
        let e = create_body(&json!({"connection": "c", "phone_number": "0044"})).unwrap_err();
        assert!(e.message.contains("pattern"));
        let e = create_body(&json!({"connection": "c", "blocked": "yes"})).unwrap_err();
        assert!(
            e.message
                .contains("Expected type boolean but found type string' on property blocked")
        );
        let long = "x".repeat(151);
        let e = create_body(&json!({"connection": "c", "given_name": long})).unwrap_err();
        assert!(
            e.message
                .contains("String is too long (151 chars), maximum 150")
        );
        let e = create_body(&json!({"connection": "c", "user_id": "a b"})).unwrap_err();
        assert!(e.message.contains("user_id"));
        assert!(create_body(&json!({"connection": "c", "email": "ok@example.com"})).is_ok());
    }

    #[test]
    fn metadata_keys_with_dot_or_dollar_are_refused_at_any_depth() {
        let e = create_body(&json!({"connection": "c", "user_metadata": {"a": {"b.c": 1}}}))
            .unwrap_err();
        assert!(e.message.contains("b.c"));
        let e = update_body(&json!({"app_metadata": {"list": [{"$x": 1}]}})).unwrap_err();
        assert!(e.message.contains("$x"));
    }

    #[test]
    fn reserved_app_metadata_names_are_refused() {
        let e = update_body(&json!({"app_metadata": {"user_id": "x"}})).unwrap_err();
        assert!(e.message.contains("reserved"));
        // The same names are fine in user_metadata.
        assert!(update_body(&json!({"user_metadata": {"user_id": "x"}})).is_ok());
    }

    #[test]
    fn update_refuses_documented_combinations_and_read_only_fields() {
        for (a, b) in REFUSED_TOGETHER {
            let mut body = Map::new();
            let value = |k: &str| {
                if k == "email_verified" {
                    json!(true)
                } else {
                    json!("Val1dPass!x@e.co")
                }
            };
            body.insert(a.to_string(), value(a));
            body.insert(b.to_string(), value(b));
            let e = update_body(&Value::Object(body)).unwrap_err();
            assert!(
                e.message.contains("simultaneously"),
                "{a}+{b}: {}",
                e.message
            );
        }
        let e = update_body(&json!({"created_at": "2020-01-01T00:00:00.000Z"})).unwrap_err();
        assert!(
            e.message
                .contains("Additional properties not allowed: created_at")
        );
        assert!(update_body(&json!({})).is_err());
        assert!(update_body(&json!({"name": null})).is_ok());
    }
}
