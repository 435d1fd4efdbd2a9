//! Auth0-shaped error responses for the sandbox tenant.
//!
//! Facts ("Errors"): every 4xx/5xx body is
//! `{"statusCode": N, "error": "<HTTP reason>", "message": "...", "errorCode": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ratelimit::Group;

/// The exact message of the 1000-result cap (facts: "The 1000 cap").
pub const INVALID_PAGING_MESSAGE: &str = "You can only page through the first 1000 records. \
See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation";

/// An error the Management API answers with.
#[derive(Debug, Clone)]
pub struct ErrorReply {
    pub status: StatusCode,
    pub message: String,
    pub error_code: &'static str,
}

impl ErrorReply {
    pub fn new(status: StatusCode, error_code: &'static str, message: impl Into<String>) -> Self {
        ErrorReply {
            status,
            message: message.into(),
            error_code,
        }
    }

    /// 400 `invalid_body`, for payload validation failures.
    pub fn invalid_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_body", message)
    }

    /// 400 `invalid_query_string`, for bad query parameters.
    pub fn invalid_query(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query_string", message)
    }

    /// Facts ("The 1000 cap"): the exact 400 `invalid_paging` body.
    pub fn invalid_paging() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_paging",
            INVALID_PAGING_MESSAGE,
        )
    }

    /// Facts ("GET /users/{id}"): unknown id is 404 `inexistent_user`.
    pub fn user_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "inexistent_user",
            "The user does not exist.",
        )
    }

    /// Facts ("POST /users"): duplicate user is 409 `auth0_idp_error`.
    pub fn user_exists() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "auth0_idp_error",
            "The user already exists.",
        )
    }

    /// Facts ("Token"): a bad or expired token on the Management API.
    pub fn invalid_token() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_token", "Invalid token")
    }

    /// Facts ("Token"): no bearer token at all.
    pub fn missing_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Missing authentication",
        )
    }

    /// Facts ("Rate limits"): the exact 429 body.
    pub fn too_many_requests() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Global limit has been reached",
        )
    }

    /// Facts ("Rate limits"): the per-group variant of the 429 body, for a group that has its
    /// own bucket (`Global per second users_write group limit has been reached`).
    pub fn group_too_many_requests(group: Group) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!(
                "Global per second {} group limit has been reached",
                group.message_name()
            ),
        )
    }

    /// Facts ("Metadata rules"): every request body is limited to 1 MB.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("Payload content length greater than maximum allowed: {limit}"),
        )
    }

    /// A server-side failure (fault injection).
    pub fn server(status: StatusCode) -> Self {
        let message = match status.as_u16() {
            502 => "Bad gateway: the upstream service did not answer",
            503 => "Service temporarily unavailable, try again later",
            _ => "Internal server error",
        };
        Self::new(status, "internal_error", message)
    }

    /// The Auth0 error body as JSON.
    pub fn body(&self) -> serde_json::Value {
        json!({
            "statusCode": self.status.as_u16(),
            "error": self.status.canonical_reason().unwrap_or("Error"),
            "message": self.message,
            "errorCode": self.error_code,
        })
    }
}

impl IntoResponse for ErrorReply {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}
