//! `POST /api/v2/tickets/password-change`: a link a user opens to set a password, which is what a
//! migrated user without a usable hash needs. The sandbox keeps each ticket it issues so that a
//! test can count them (`GET /__sandbox/tickets`), never showing the links: they are secrets.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::error::ErrorReply;
use super::routes::{ApiResult, Shared, read_body, require_scope};
use super::store::identities;
use super::validate::{Format, Kind, check_value, text, type_name};
use super::{State, random_token};

/// Spec (`ChangePasswordTicketRequestContent`): `ttl_sec` unset or 0 means 432000 s (5 days).
const DEFAULT_TTL: u64 = 432_000;

/// Spec (`ChangePasswordTicketRequestContent`, additionalProperties false): the body's keys.
/// `ttl_sec` (an integer >= 0) is checked on its own.
const FIELDS: &[(&str, Kind)] = &[
    ("result_url", text(0, 0, false, Format::Uri)),
    ("user_id", text(1, 0, false, Format::Plain)),
    ("client_id", text(1, 0, false, Format::Plain)),
    ("organization_id", text(1, 0, false, Format::Plain)),
    ("connection_id", text(1, 0, false, Format::Plain)),
    ("email", text(0, 0, false, Format::Email)),
    ("mark_email_as_verified", Kind::Bool),
    ("includeEmailInRedirect", Kind::Bool),
    ("identity", Kind::Object),
];

/// One issued ticket.
pub(crate) struct Ticket {
    user_id: String,
    /// The URL, a secret: kept only so that the sandbox could one day honour it.
    #[allow(dead_code)]
    url: String,
    #[allow(dead_code)]
    ttl: Duration,
    #[allow(dead_code)]
    mark_email_as_verified: bool,
}

fn payload(reason: &str, field: &str) -> ErrorReply {
    ErrorReply::invalid_body(format!(
        "Payload validation error: '{reason}' on property {field}."
    ))
}

/// A form body's values arrive as strings: the booleans and `ttl_sec` are read back as the
/// JSON types the schema gives them.
fn typed(mut body: Map<String, Value>, form: bool) -> Map<String, Value> {
    if !form {
        return body;
    }
    for (key, value) in body.iter_mut() {
        let Value::String(s) = value else { continue };
        match key.as_str() {
            "mark_email_as_verified" | "includeEmailInRedirect" => match s.as_str() {
                "true" => *value = Value::Bool(true),
                "false" => *value = Value::Bool(false),
                _ => {}
            },
            "ttl_sec" => {
                if let Ok(n) = s.parse::<u64>() {
                    *value = n.into();
                }
            }
            _ => {}
        }
    }
    body
}

/// Spec and facts ("Other bulk needs"): `user_id` (or `connection_id` with `email`), `ttl_sec`
/// (default 432000), `mark_email_as_verified`, `result_url`; 201 `{ticket}`; an unknown user is
/// 404 `inexistent_user`. Needs `create:user_tickets`.
pub(super) async fn password_change(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    require_scope(&state, &["create:user_tickets"])?;
    let form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body = match read_body(&headers, body).await? {
        Value::Object(map) => typed(map, form),
        other => {
            return Err(ErrorReply::invalid_body(format!(
                "Payload validation error: 'Expected type object but found type {}'.",
                type_name(&other)
            )));
        }
    };
    let unknown: Vec<&str> = body
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "ttl_sec" && !FIELDS.iter().any(|(name, _)| name == k))
        .collect();
    if !unknown.is_empty() {
        return Err(ErrorReply::invalid_body(format!(
            "Payload validation error: 'Additional properties not allowed: {}'.",
            unknown.join(",")
        )));
    }
    for (name, kind) in FIELDS {
        if let Some(value) = body.get(*name)
            && let Err(problem) = check_value(*kind, value)
        {
            return Err(payload(&problem.reason, name));
        }
    }
    let ttl = match body.get("ttl_sec") {
        None => DEFAULT_TTL,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => DEFAULT_TTL,
            Some(n) => n,
            None => {
                return Err(payload(
                    &format!("Value {n} is not an integer of at least 0"),
                    "ttl_sec",
                ));
            }
        },
        Some(other) => {
            return Err(payload(
                &format!("Expected type integer but found type {}", type_name(other)),
                "ttl_sec",
            ));
        }
    };
    let text = |key: &str| body.get(key).and_then(Value::as_str);
    let user_id = {
        let store = state.store.lock().expect("store lock");
        let user_id = match (text("user_id"), text("connection_id"), text("email")) {
            (Some(user_id), None, None) => user_id.to_string(),
            (None, Some(connection_id), Some(email)) => {
                // Spec: "The connection with id {connection_id} does not exist." (400).
                let (name, _) = store.connection_by_id(connection_id).ok_or_else(|| {
                    ErrorReply::invalid_body(format!(
                        "The connection with id {connection_id} does not exist."
                    ))
                })?;
                store
                    .email_owner(name, email)
                    .ok_or_else(ErrorReply::user_not_found)?
                    .to_string()
            }
            // Spec: user_id, or connection_id with email; not both, not neither (stricter
            // than the schema, which cannot say it).
            _ => {
                return Err(ErrorReply::invalid_body(
                    "Payload validation error: give either user_id, or connection_id with email.",
                ));
            }
        };
        let user = store.get(&user_id).ok_or_else(ErrorReply::user_not_found)?;
        if !user.get("email").is_some_and(Value::is_string) {
            return Err(ErrorReply::invalid_body(
                "The user does not have an email address.",
            ));
        }
        // Spec: "The user's main connection does not support this operation." A password
        // belongs to a database identity; the main identity is the first.
        let main = identities(&user)
            .next()
            .and_then(|i| i.get("connection").and_then(Value::as_str))
            .and_then(|c| store.connection(c));
        if !main.is_some_and(|c| c.is_database()) {
            return Err(ErrorReply::invalid_body(
                "The user's main connection does not support this operation.",
            ));
        }
        user_id
    };
    let host = state.domain.trim_start_matches("http://");
    let url = format!("https://{host}/lo/reset?ticket={}#", random_token(32));
    state.tickets.lock().expect("tickets lock").push(Ticket {
        user_id,
        url: url.clone(),
        ttl: Duration::from_secs(ttl),
        mark_email_as_verified: body
            .get("mark_email_as_verified")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    });
    Ok((StatusCode::CREATED, axum::Json(json!({ "ticket": url }))).into_response())
}

/// Tickets issued so far, by user_id.
pub(crate) fn counts(state: &State) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for ticket in state.tickets.lock().expect("tickets lock").iter() {
        *counts.entry(ticket.user_id.clone()).or_insert(0) += 1;
    }
    counts
}

/// `GET /__sandbox/tickets`: `{"<user_id>": <tickets issued>}`, without the URLs.
pub(super) async fn evidence(AxState(state): AxState<Shared>) -> Response {
    axum::Json(counts(&state)).into_response()
}
