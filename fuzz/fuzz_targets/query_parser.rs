//! The sandbox's v3 Lucene query parser: any string parses or is refused, and never panics.
//!
//! The input is the `q` text (invalid UTF-8 becomes U+FFFD, as a percent-decoded query string
//! would). A query that parses is matched against a few fixed users, and what the docs of
//! `Query::created_at_range` and `Query::is_created_at_range_only` promise (the store relies
//! on both to answer from its `created_at` index) is checked:
//!
//! - the range is well-formed for `BTreeMap::range`, which panics otherwise;
//! - every user that matches has a `created_at` inside the range, as the store indexes it
//!   (canonical UTC text);
//! - for a query that is only a `created_at` range, a user matches exactly when its indexed
//!   `created_at` lies in the range.

#![no_main]

use std::collections::BTreeMap;
use std::ops::RangeBounds;
use std::sync::LazyLock;

use auth0_bulk::sandbox::query::{Query, canonical_time};
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// Users as the API returns them, with metadata that exercises every path rule, and
/// `created_at` values across the index's range.
static USERS: LazyLock<Vec<Map<String, Value>>> = LazyLock::new(|| {
    let big: Value = serde_json::from_str("18446744073709551616").expect("a number");
    let jane = json!({
        "user_id": "auth0|5457edea1b8f22891a000004",
        "email": "Jane.Doe@ExampleCo.com",
        "email_verified": true,
        "name": "Jane Smith",
        "given_name": "Jane",
        "family_name": "Smith",
        "nickname": "janie",
        "username": "JaneD",
        "phone_number": "+64418059262",
        "created_at": "2024-01-31T23:59:59.999Z",
        "updated_at": "2024-02-01T00:00:00.000Z",
        "last_login": "2024-02-01T00:00:00Z",
        "logins_count": 5,
        "blocked": false,
        "identities": [{
            "connection": "Username-Password-Authentication",
            "provider": "auth0",
            "user_id": "5457edea1b8f22891a000004",
            "isSocial": false
        }],
        "app_metadata": {
            "plan": "full",
            "roles": ["admin", "editor"],
            "tier": 3,
            "ratio": 2.5,
            "big": big,
            "beta": true,
            "code": "42",
            "subscription": {"plan": "gold"},
            "empty_list": [],
            "empty_obj": {},
            "nothing": null,
            "nulls": [null, []],
            "null_obj": {"a": null, "b": {}}
        },
        "user_metadata": {
            "addresses": [
                {"city": "Paris", "zip": 75001},
                {"city": "Lyon", "tags": ["home", "old"]}
            ],
            "matrix": [["a", "b"], ["c"]],
            "Plan": "Full",
            "é": "Ünïcode ß"
        }
    });
    let mut users = vec![object(jane)];
    for (id, created_at) in [
        ("auth0|1", json!("0001-01-01T00:00:00.000Z")),
        ("auth0|2", json!("9999-12-31T23:59:59.999Z")),
        ("auth0|3", json!("2024-02-01T01:00:00.000+01:00")),
        ("auth0|4", json!("1970-01-01T00:00:00Z")),
        ("auth0|5", json!("yesterday")),
        ("auth0|6", json!(1706745599999u64)),
        ("auth0|7", Value::Null),
    ] {
        users.push(object(json!({
            "user_id": id,
            "email": format!("user{id}@example.com"),
            "created_at": created_at,
            "logins_count": -1,
            "app_metadata": {"plan": "free"},
        })));
    }
    users.push(object(json!({"user_id": "auth0|8"})));
    users
});

/// The key the store indexes a user's `created_at` under (store.rs, `created_key`).
fn created_key(user: &Map<String, Value>) -> Option<String> {
    let raw = user.get("created_at")?.as_str()?;
    let parsed = DateTime::parse_from_rfc3339(raw).ok()?;
    Some(canonical_time(parsed.with_timezone(&Utc)))
}

fuzz_target!(|data: &[u8]| {
    let q = String::from_utf8_lossy(data);
    let Ok(query) = Query::parse(&q) else {
        return;
    };
    let range = query.created_at_range();
    if let Some(bounds) = &range {
        // Panics when the bounds are out of order or both excluded and equal.
        let _ = BTreeMap::<String, ()>::new().range(bounds.clone()).next();
    }
    let range_only = query.is_created_at_range_only();
    assert!(
        !range_only || range.is_some(),
        "a range-only query has a range"
    );
    for user in USERS.iter() {
        let matched = query.matches(user);
        let Some(bounds) = &range else { continue };
        let indexed = created_key(user).is_some_and(|key| bounds.contains(&key));
        if matched {
            assert!(
                indexed,
                "{q:?} matches {} outside its created_at range {bounds:?}",
                user["user_id"]
            );
        }
        if range_only {
            assert_eq!(
                matched, indexed,
                "{q:?} is only a created_at range {bounds:?}, but matching {} disagrees with it",
                user["user_id"]
            );
        }
    }
});
