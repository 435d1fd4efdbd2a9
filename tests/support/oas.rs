//! Checks JSON bodies against Auth0's own Management API OpenAPI schemas.
//!
//! The schemas come from `tests/oas/users-subset.json`, a verbatim subset of Auth0's
//! OpenAPI 3.1 document (see `tests/oas/SOURCE.md`). OpenAPI 3.1 schemas are JSON Schema
//! draft 2020-12, so they are validated with the `jsonschema` crate in that draft, with
//! format assertions on (`date-time`, `email`, ...) and unknown formats such as Auth0's
//! `strict-uri` ignored. Nothing is ever fetched over the network.
//!
//! `$ref`s such as `#/components/schemas/UserIdentitySchema` are resolved by compiling a
//! root document that holds the schema to check plus the spec's `components`: for a named
//! schema `{"$ref": "#/components/schemas/X", "components": {...}}`, for a response the
//! response schema itself with `"components"` added beside its keywords. Unknown keywords
//! (`components`, `description`, `default`) are ignored by draft 2020-12, and the JSON
//! Pointer fragments resolve inside that root. Each validator is compiled once and cached.
//!
//! Numbers: the crate enables serde_json's `arbitrary_precision`, so a number is kept as
//! its source text. jsonschema must then be built with its `arbitrary-precision` feature,
//! which makes `type: integer` and the numeric keywords read that text exactly (without it
//! 0.33 panics on an integer-typed `1e400`, and 0.60 calls it "not an integer").

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::{Map, Value};

/// Where the spec subset lives, for messages.
const SPEC_FILE: &str = "tests/oas/users-subset.json";

/// The spec subset, parsed once.
static SPEC: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../oas/users-subset.json"))
        .unwrap_or_else(|err| panic!("{SPEC_FILE} is not valid JSON: {err}"))
});

/// Compiled validators, keyed by the JSON Pointer (into the spec) of the schema they check.
static VALIDATORS: LazyLock<Mutex<HashMap<String, Arc<Validator>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Longest rendering of one violation line, and of the offending body in a panic message.
const MAX_LINE: usize = 400;
const MAX_BODY: usize = 16 * 1024;

/// Validates a response body against the schema the spec gives for (method, path template, status),
/// e.g. ("GET", "/users", 200). Panics with a readable message listing every violation (instance path + reason)
/// and the offending JSON if it does not match, or if the spec has no JSON schema for that response.
///
/// `path` may also be a concrete request path (`/users/auth0%7C123`): it is matched against
/// the spec's templates segment by segment, a literal template winning over a `{param}`.
pub fn assert_response_matches(method: &str, path: &str, status: u16, body: &serde_json::Value) {
    let (label, pointer) = response_schema(method, path, status);
    let violations = violations_at(&pointer, body);
    assert!(
        violations.is_empty(),
        "{}",
        report(&label, &pointer, &violations, body)
    );
}

/// Same check, returning the violations instead of panicking (for negative tests).
///
/// It still panics if the spec has no JSON schema for that response: a negative test must
/// not pass just because it named the wrong endpoint.
pub fn response_violations(
    method: &str,
    path: &str,
    status: u16,
    body: &serde_json::Value,
) -> Vec<String> {
    let (_, pointer) = response_schema(method, path, status);
    violations_at(&pointer, body)
}

/// Validates a value against a named component schema, e.g. "CreateUserRequestContent".
///
/// Panics if the spec subset has no such schema.
pub fn schema_violations(schema_name: &str, value: &serde_json::Value) -> Vec<String> {
    let schemas = components_schemas();
    if !schemas.contains_key(schema_name) {
        let known: Vec<&str> = schemas.keys().map(String::as_str).collect();
        panic!(
            "{SPEC_FILE} has no component schema {schema_name:?}; it has: {}",
            known.join(", ")
        );
    }
    let pointer = format!("/components/schemas/{}", escape_pointer(schema_name));
    violations_at(&pointer, value)
}

/// Asserts the Auth0 error shape
/// `{"statusCode": N, "error": "<HTTP reason phrase>", "message": "<non-empty>", "errorCode": error_code}`,
/// with no other keys. The reason phrases are Node.js's (`http.STATUS_CODES`), as Auth0 sends.
pub fn assert_error_body(body: &serde_json::Value, status: u16, error_code: &str) {
    let mut problems = Vec::new();
    match body.as_object() {
        None => problems.push("the body is not a JSON object".to_owned()),
        Some(object) => {
            let reason = reason_phrase(status).unwrap_or_else(|| {
                panic!("assert_error_body: no reason phrase known for {status}")
            });
            let status_ok = matches!(object.get("statusCode"),
                Some(Value::Number(n)) if n.as_u64() == Some(u64::from(status)));
            let error_ok = object.get("error").and_then(Value::as_str) == Some(reason);
            let message_ok = object
                .get("message")
                .and_then(Value::as_str)
                .is_some_and(|m| !m.trim().is_empty());
            let code_ok = object.get("errorCode").and_then(Value::as_str) == Some(error_code);
            for (ok, key, expected) in [
                (status_ok, "statusCode", status.to_string()),
                (error_ok, "error", format!("{reason:?}")),
                (message_ok, "message", "a non-empty string".to_owned()),
                (code_ok, "errorCode", format!("{error_code:?}")),
            ] {
                if !ok {
                    let got = object
                        .get(key)
                        .map_or("nothing".to_owned(), Value::to_string);
                    problems.push(format!("{key}: expected {expected}, got {got}"));
                }
            }
            let extra: Vec<&str> = object
                .keys()
                .map(String::as_str)
                .filter(|k| !["statusCode", "error", "message", "errorCode"].contains(k))
                .collect();
            if !extra.is_empty() {
                problems.push(format!("unexpected keys: {}", extra.join(", ")));
            }
        }
    }
    if !problems.is_empty() {
        let mut msg = format!("not an Auth0 error body for {status} / {error_code}:\n");
        for (i, p) in problems.iter().enumerate() {
            let _ = writeln!(msg, "  {}. {p}", i + 1);
        }
        let _ = write!(msg, "body:\n{}", pretty(body));
        panic!("{msg}");
    }
}

/// The reason phrase Node.js (and so Auth0) puts in `error` for an error status.
fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => return None,
    })
}

fn components_schemas() -> &'static Map<String, Value> {
    SPEC.pointer("/components/schemas")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("{SPEC_FILE} has no components/schemas"))
}

/// Finds the JSON schema of a response: a readable label and its JSON Pointer in the spec.
fn response_schema(method: &str, path: &str, status: u16) -> (String, String) {
    let paths = SPEC
        .get("paths")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("{SPEC_FILE} has no paths"));
    let template = match_template(paths, path).unwrap_or_else(|| {
        let known: Vec<&str> = paths.keys().map(String::as_str).collect();
        panic!(
            "{SPEC_FILE} has no path matching {path:?}; it has: {}",
            known.join(", ")
        )
    });
    let method = method.to_ascii_lowercase();
    let label = format!("{} {template} {status}", method.to_ascii_uppercase());
    let operation = paths[template].get(&method).unwrap_or_else(|| {
        panic!(
            "{SPEC_FILE}: {template} has no {} operation",
            method.to_ascii_uppercase()
        )
    });
    let pointer = format!(
        "/paths/{}/{method}/responses/{status}/content/application~1json/schema",
        escape_pointer(template)
    );
    if SPEC.pointer(&pointer).is_none() {
        let with_schema: Vec<&str> = operation
            .get("responses")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(_, r)| r.pointer("/content/application~1json/schema").is_some())
            .map(|(code, _)| code.as_str())
            .collect();
        panic!(
            "{SPEC_FILE} gives no JSON schema for {label} (statuses with one: {})",
            if with_schema.is_empty() {
                "none".to_owned()
            } else {
                with_schema.join(", ")
            }
        );
    }
    (label, pointer)
}

/// Matches a path template exactly, or a concrete path segment by segment.
fn match_template<'a>(paths: &'a Map<String, Value>, path: &str) -> Option<&'a str> {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    if let Some((key, _)) = paths.get_key_value(path) {
        return Some(key);
    }
    let wanted: Vec<&str> = path.split('/').collect();
    let mut best: Option<(&str, usize)> = None;
    for template in paths.keys() {
        let segments: Vec<&str> = template.split('/').collect();
        if segments.len() != wanted.len() {
            continue;
        }
        let mut literals = 0;
        let fits = segments.iter().zip(&wanted).all(|(t, w)| {
            if t.starts_with('{') && t.ends_with('}') {
                !w.is_empty()
            } else {
                literals += 1;
                t == w
            }
        });
        if fits && best.is_none_or(|(_, n)| literals > n) {
            best = Some((template, literals));
        }
    }
    best.map(|(template, _)| template)
}

/// RFC 6901 escaping of one reference token.
fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The cached validator for the schema at `pointer` in the spec.
fn validator(pointer: &str) -> Arc<Validator> {
    let mut cache = VALIDATORS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(v) = cache.get(pointer) {
        return Arc::clone(v);
    }
    let schema = SPEC
        .pointer(pointer)
        .unwrap_or_else(|| panic!("{SPEC_FILE} has nothing at #{pointer}"));
    let mut root = if pointer.starts_with("/components/") {
        // By reference, so that violations name the component schema.
        let mut root = Map::new();
        root.insert("$ref".to_owned(), Value::String(format!("#{pointer}")));
        root
    } else {
        match schema {
            Value::Object(object) if !object.contains_key("components") => object.clone(),
            _ => panic!("{SPEC_FILE}: #{pointer} is not a schema object this helper can host"),
        }
    };
    let mut components = Map::new();
    components.insert(
        "schemas".to_owned(),
        Value::Object(components_schemas().clone()),
    );
    root.insert("components".to_owned(), Value::Object(components));
    let compiled = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .should_ignore_unknown_formats(true)
        .build(&Value::Object(root))
        .unwrap_or_else(|err| panic!("{SPEC_FILE}: cannot compile #{pointer}: {err}"));
    let compiled = Arc::new(compiled);
    cache.insert(pointer.to_owned(), Arc::clone(&compiled));
    compiled
}

fn violations_at(pointer: &str, value: &Value) -> Vec<String> {
    let validator = validator(pointer);
    validator
        .iter_errors(value)
        .map(|error| {
            let mut out = String::new();
            render(&error, pointer, 0, &mut out);
            out
        })
        .collect()
}

/// One violation as `instance path: reason  [schema location in the spec]`, with the
/// alternatives of a failed `oneOf`/`anyOf` listed below it, indented. `root` is the spec
/// pointer of the compiled root, for keyword locations that are not inside a component.
fn render(error: &ValidationError<'_>, root: &str, depth: usize, out: &mut String) {
    let path = error.instance_path().as_str();
    let path = if path.is_empty() { "(root)" } else { path };
    // Objects and arrays are masked: the whole body is printed once, at the end.
    let reason = match error.instance().as_ref() {
        Value::Object(_) | Value::Array(_) => error.masked_with("the value").to_string(),
        _ => error.to_string(),
    };
    let keyword = error.schema_path().as_str();
    let keyword = if keyword.starts_with("/components/") {
        format!("#{keyword}")
    } else {
        format!("#{root}{keyword}")
    };
    let line = format!("{path}: {reason}  [{keyword}]");
    out.push_str(&truncate(&line, MAX_LINE));
    let alternatives = match error.kind() {
        ValidationErrorKind::OneOfNotValid { context }
        | ValidationErrorKind::OneOfMultipleValid { context }
        | ValidationErrorKind::AnyOf { context } => context.as_slice(),
        _ => &[],
    };
    let indent = "    ".repeat(depth + 1);
    for (i, branch) in alternatives.iter().enumerate() {
        let _ = write!(
            out,
            "\n{indent}alternative {} of {}:",
            i + 1,
            alternatives.len()
        );
        if branch.is_empty() {
            out.push_str(" matches");
        }
        for nested in branch {
            let _ = write!(out, "\n{indent}  ");
            render(nested, root, depth + 1, out);
        }
    }
}

fn report(label: &str, pointer: &str, violations: &[String], body: &Value) -> String {
    let mut msg = format!(
        "{label}: the body does not match Auth0's schema ({SPEC_FILE} #{pointer}), \
         {} violation(s):\n",
        violations.len()
    );
    for (i, v) in violations.iter().enumerate() {
        let _ = writeln!(msg, "  {}. {v}", i + 1);
    }
    let _ = write!(msg, "body:\n{}", truncate(&pretty(body), MAX_BODY));
    msg
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &text[..end], text.len() - end)
}
