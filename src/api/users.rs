//! The users calls of the Management API, and what they return: a [`User`] map, or for list
//! pages a [`Listed`] user kept as the JSON text the tenant sent.

use bytes::Bytes;
use reqwest::Method;
use serde_json::{Map, Value};

use super::client::Body;
use super::{ApiError, Client, decode, scan};

/// A user object exactly as the API returns it. The one name for it in the crate's API layer.
pub type User = Map<String, Value>;

/// One page of `GET /api/v2/users` with `include_totals=true`.
#[derive(Debug)]
pub struct UsersPage {
    pub total: u64,
    pub users: Vec<Listed>,
}

/// A user from a list page, kept as the JSON text the tenant sent. The export walk orders
/// users by `user_id` and `created_at` alone, and NDJSON writes the text as it came, so a map
/// is built only when a format needs one: parsing and re-serializing every user was most of
/// the export's CPU time. The text is a slice of the page's body (shared, not copied), so a
/// page held in memory costs its body once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listed {
    pub user_id: String,
    /// `created_at` as sent, when it is a string.
    pub created_at: Option<String>,
    /// UTF-8: every constructor takes it from a `str` or checks it.
    json: Bytes,
}

impl Listed {
    /// Reads the two keys out of one user's JSON object text.
    pub fn from_json(json: &str) -> Result<Listed, String> {
        #[derive(serde::Deserialize)]
        struct Keys {
            #[serde(default)]
            user_id: Option<Value>,
            #[serde(default)]
            created_at: Option<Value>,
        }
        if !json.trim_start().starts_with('{') {
            return Err("a user is not an object".into());
        }
        let keys: Keys = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let text = |v: Option<Value>| match v {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        Ok(Listed {
            user_id: text(keys.user_id).unwrap_or_default(),
            created_at: text(keys.created_at),
            json: Bytes::copy_from_slice(json.as_bytes()),
        })
    }

    /// A user kept before (its keys read then): no need to read them again. `None` when
    /// `json` is not UTF-8.
    pub fn from_parts(user_id: String, created_at: Option<String>, json: Bytes) -> Option<Listed> {
        std::str::from_utf8(&json).ok()?;
        Some(Listed {
            user_id,
            created_at,
            json,
        })
    }

    /// A user already held as a map.
    pub fn from_user(user: &User) -> Listed {
        let json = serde_json::to_string(user).expect("a JSON map always serializes");
        let text = |key: &str| user.get(key).and_then(Value::as_str).map(str::to_string);
        Listed {
            user_id: text("user_id").unwrap_or_default(),
            created_at: text("created_at"),
            json: json.into(),
        }
    }

    /// The user's JSON text as the tenant sent it.
    pub fn json(&self) -> &str {
        std::str::from_utf8(&self.json).expect("a listed user's text is UTF-8")
    }

    /// The user's JSON text as bytes (without the UTF-8 check of [`Listed::json`]).
    pub fn json_bytes(&self) -> &[u8] {
        &self.json
    }

    /// The user as a map.
    pub fn user(&self) -> Result<User, String> {
        serde_json::from_slice(&self.json).map_err(|e| format!("user {}: {e}", self.user_id))
    }
}

/// What [`Client::delete_user`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The tenant answered 204: the user is gone now.
    Deleted,
    /// The tenant answered 404: there was no such user (count it as skipped, `not_found`).
    AlreadyGone,
}

/// A list/search request.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub q: Option<String>,
    pub sort: Option<String>,
    pub page: u32,
    pub per_page: u32,
    /// `fields` and `include_fields`.
    pub fields: Option<(String, bool)>,
}

impl Client {
    /// `GET /api/v2/users` with `include_totals=true&search_engine=v3`.
    pub async fn list_users(&self, query: &ListQuery) -> Result<UsersPage, ApiError> {
        let mut params = vec![
            ("page", query.page.to_string()),
            ("per_page", query.per_page.to_string()),
            ("include_totals", "true".to_string()),
            ("search_engine", "v3".to_string()),
        ];
        if let Some(q) = &query.q {
            params.push(("q", q.clone()));
        }
        if let Some(sort) = &query.sort {
            params.push(("sort", sort.clone()));
        }
        if let Some((fields, include)) = &query.fields {
            params.push(("fields", fields.clone()));
            params.push(("include_fields", include.to_string()));
        }
        let (_, bytes) = self
            .send(Method::GET, "/users", &params, Body::None)
            .await?;
        let decode = |message: String| ApiError::Decode {
            what: "GET /api/v2/users".into(),
            message,
        };
        if let Some(page) = scan::page(&bytes) {
            let users = page
                .users
                .into_iter()
                .map(|user| Listed {
                    user_id: user.user_id.unwrap_or_default(),
                    created_at: user.created_at,
                    json: bytes.slice(user.text),
                })
                .collect();
            return Ok(UsersPage {
                total: page.total,
                users,
            });
        }
        // What the scan leaves (see `scan`): serde reads it, or says why it is not a page.
        #[derive(serde::Deserialize)]
        struct Page<'a> {
            total: Option<Value>,
            #[serde(borrow)]
            users: Option<Vec<&'a serde_json::value::RawValue>>,
        }
        let body: Page = serde_json::from_slice(&bytes).map_err(|e| decode(e.to_string()))?;
        let total = body
            .total
            .as_ref()
            .and_then(Value::as_u64)
            .ok_or_else(|| decode("no total".into()))?;
        let users = body
            .users
            .ok_or_else(|| decode("no users array".into()))?
            .into_iter()
            .map(|raw| Listed::from_json(raw.get()).map_err(decode))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(UsersPage { total, users })
    }

    /// `GET /api/v2/users/{id}`; `None` for 404.
    pub async fn get_user(&self, user_id: &str) -> Result<Option<User>, ApiError> {
        let path = format!("/users/{}", encode_segment(user_id));
        match self.send(Method::GET, &path, &[], Body::None).await {
            Ok((_, bytes)) => decode::<User>(&bytes, "GET /api/v2/users/{id}").map(Some),
            Err(ApiError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /api/v2/users-by-email` (immediately consistent).
    pub async fn users_by_email(&self, email: &str) -> Result<Vec<User>, ApiError> {
        let (_, bytes) = self
            .send(
                Method::GET,
                "/users-by-email",
                &[("email", email.to_string())],
                Body::None,
            )
            .await?;
        decode(&bytes, "GET /api/v2/users-by-email")
    }

    /// `POST /api/v2/users`.
    pub async fn create_user(&self, body: &Value) -> Result<User, ApiError> {
        let (_, bytes) = self
            .send(Method::POST, "/users", &[], Body::Json(body))
            .await?;
        decode::<User>(&bytes, "POST /api/v2/users")
    }

    /// `DELETE /api/v2/users/{id}` (scope `delete:users`, the users-write budget): 204 with an
    /// empty body. Auth0 answers 204 for an id it does not hold too (facts, "DELETE"), so
    /// [`Removal::AlreadyGone`] comes only from a tenant that says 404: a caller that must
    /// know whether the user was there looks it up first. Deleting is idempotent, so a request
    /// retried after a failure in transit is safe.
    pub async fn delete_user(&self, user_id: &str) -> Result<Removal, ApiError> {
        let path = format!("/users/{}", encode_segment(user_id));
        match self.send(Method::DELETE, &path, &[], Body::None).await {
            Ok(_) => Ok(Removal::Deleted),
            Err(ApiError::Status { status: 404, .. }) => Ok(Removal::AlreadyGone),
            Err(e) => Err(e),
        }
    }

    /// `PATCH /api/v2/users/{id}`.
    pub async fn update_user(&self, user_id: &str, body: &Value) -> Result<User, ApiError> {
        let path = format!("/users/{}", encode_segment(user_id));
        let (_, bytes) = self
            .send(Method::PATCH, &path, &[], Body::Json(body))
            .await?;
        decode::<User>(&bytes, "PATCH /api/v2/users/{id}")
    }
}

/// Percent-encodes a path segment: user ids hold `|` and other reserved characters.
pub fn encode_segment(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}
