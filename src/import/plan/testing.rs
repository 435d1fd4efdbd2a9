//! What the planner's unit tests share: options, and records planned or refused.

use serde_json::{Value, json};

use super::*;

pub(super) fn user(value: Value) -> User {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

pub(super) fn options(mode: Mode, match_by: MatchBy) -> PlanOptions {
    PlanOptions {
        mode,
        match_by,
        connection: None,
        passwords: Passwords::Random,
        metadata: MetadataStrategy::Merge,
        engine: Engine::Api,
    }
}

pub(super) fn create_opts() -> PlanOptions {
    options(Mode::Create, MatchBy::UserId)
}

pub(super) fn update_opts() -> PlanOptions {
    options(Mode::Update, MatchBy::UserId)
}

pub(super) fn planned(record: Value, options: &PlanOptions) -> Planned {
    plan(&user(record.clone()), options).unwrap_or_else(|e| panic!("{record} was refused: {e:?}"))
}

pub(super) fn refused(record: Value, options: &PlanOptions) -> Invalid {
    match plan(&user(record.clone()), options) {
        Ok(p) => panic!("{record} was accepted: {p:?}"),
        Err(e) => e,
    }
}

/// A user exactly as `GET /api/v2/users` (and this tool's export) has it.
pub(super) fn exported() -> Value {
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
