//! How the sandbox builds a database user's profile: one path for `POST /api/v2/users` and the
//! bulk-import job, so that a user a job created cannot be told from one the API created.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{Map, Value, json};

use super::query::canonical_time;
use super::store::User;

/// The profile fields a new database user takes from its input as given (after validation).
const COPIED: &[&str] = &["user_metadata", "app_metadata", "blocked", "username"];

/// A new database user of `connection`: `user_id` `auth0|<local_id>`, `email` lower-cased,
/// `created_at` = `updated_at` = now, and the defaults the facts list.
pub(super) fn new_database_user(
    connection: &str,
    local_id: &str,
    email: &str,
    input: &Map<String, Value>,
) -> User {
    // Facts ("POST /users"): database connections store emails lower-cased; a given user_id
    // is prefixed with `auth0|` too.
    let email = email.to_lowercase();
    let user_id = format!("auth0|{local_id}");
    let now = canonical_time(Utc::now());
    let mut user = Map::new();
    let local_part = email.split('@').next().unwrap_or_default().to_string();
    user.insert("created_at".into(), now.clone().into());
    user.insert("email".into(), email.clone().into());
    user.insert(
        "email_verified".into(),
        input.get("email_verified").cloned().unwrap_or(false.into()),
    );
    for key in ["family_name", "given_name"] {
        if let Some(v) = input.get(key) {
            user.insert(key.into(), v.clone());
        }
    }
    // Facts: `identities[0]` is `{connection, user_id: <unprefixed>, provider: "auth0",
    // isSocial: false}`.
    user.insert(
        "identities".into(),
        json!([{
            "connection": connection,
            "user_id": local_id,
            "provider": "auth0",
            "isSocial": false,
        }]),
    );
    // Facts: `name` defaults to the email, `nickname` to its local part, `picture` to Gravatar.
    user.insert(
        "name".into(),
        input
            .get("name")
            .cloned()
            .unwrap_or_else(|| email.clone().into()),
    );
    user.insert(
        "nickname".into(),
        input
            .get("nickname")
            .cloned()
            .unwrap_or(local_part.clone().into()),
    );
    if let Some(phone) = input.get("phone_number") {
        user.insert("phone_number".into(), phone.clone());
        user.insert(
            "phone_verified".into(),
            input.get("phone_verified").cloned().unwrap_or(false.into()),
        );
    }
    user.insert(
        "picture".into(),
        input
            .get("picture")
            .cloned()
            .unwrap_or_else(|| gravatar(&email, &local_part).into()),
    );
    user.insert("updated_at".into(), now.into());
    user.insert("user_id".into(), user_id.into());
    for key in COPIED {
        if let Some(v) = input.get(*key) {
            user.insert((*key).into(), v.clone());
        }
    }
    user
}

/// A database user id: 24 lower-case hex digits, like Auth0's.
pub(super) fn random_hex_id() -> String {
    let bytes: [u8; 12] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Facts: `picture` defaults to a Gravatar URL of the email.
fn gravatar(email: &str, local_part: &str) -> String {
    let digest = md5::compute(email.trim().to_lowercase().as_bytes());
    let initials: String = local_part
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(2)
        .collect();
    let initials = if initials.is_empty() {
        "us".to_string()
    } else {
        initials.to_lowercase()
    };
    format!(
        "https://s.gravatar.com/avatar/{digest:x}?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2F{initials}.png"
    )
}

/// Now, in Auth0's millisecond format, and later than `previous`.
pub(super) fn next_timestamp(previous: Option<&str>) -> String {
    // Compare at the precision that is stored: milliseconds.
    let now = Utc::now();
    let now = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
    let previous = previous
        .and_then(|p| DateTime::parse_from_rfc3339(p).ok())
        .map(|p| p.with_timezone(&Utc));
    match previous {
        Some(p) if p >= now => canonical_time(p + chrono::Duration::milliseconds(1)),
        _ => canonical_time(now),
    }
}
