//! The update side: the smallest PATCH that takes a found user to the record, what a PATCH
//! does (for the unchanged check and dry-run diffs), and the semantic comparison behind both
//! (key order ignored, numbers by exact value).

use serde_json::{Map, Value};

use super::change::Change;
use super::metadata::{merge_one_level, metadata_patch};
use super::{Invalid, MetadataStrategy, Planned, User, check_size, code, invalid};
use crate::rules::REFUSED_TOGETHER;

/// Checks a PATCH body before it is sent: the field pairs Auth0 refuses together (facts:
/// "PATCH") and the 1 MB limit (a `deep` or `replace` body carries parts of the user found,
/// so only the found user decides its size).
pub fn check_patch(body: &Value) -> Result<(), Invalid> {
    if let Some(map) = body.as_object() {
        for (a, b) in REFUSED_TOGETHER {
            if map.contains_key(*a) && map.contains_key(*b) {
                return Err(invalid(
                    code::CONFLICTING_FIELDS,
                    *a,
                    format!(
                        "Auth0 does not update {a} and {b} in one request, and this record \
                         changes both; import it in two passes, each with one of them"
                    ),
                ));
            }
        }
    }
    check_size(body, "the update body")
}

/// The PATCH body that makes `current` reflect the record under `strategy`, or None when
/// nothing would change (the record counts as unchanged and no request is sent).
pub fn update_body(current: &User, planned: &Planned, strategy: MetadataStrategy) -> Option<Value> {
    let mut body = Map::new();
    for (name, value) in &planned.profile {
        if !same_root(current.get(name), Some(value)) {
            body.insert(name.clone(), value.clone());
        }
    }
    let empty = Map::new();
    for (name, record) in [
        ("user_metadata", &planned.user_metadata),
        ("app_metadata", &planned.app_metadata),
    ] {
        let Some(record) = record else { continue };
        let now = current
            .get(name)
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        if let Some(patch) = metadata_patch(now, record, strategy) {
            body.insert(name.into(), Value::Object(patch));
        }
    }
    (!body.is_empty()).then_some(Value::Object(body))
}

/// What `current` would look like after applying `body` with Auth0's PATCH semantics
/// (one-level merge, null deletes, {} clears) — used for the unchanged check and dry-run diffs.
pub fn apply_patch(current: &User, body: &Value) -> User {
    let mut user = current.clone();
    let Some(body) = body.as_object() else {
        return user;
    };
    for (key, value) in body {
        match key.as_str() {
            "user_metadata" | "app_metadata" => {
                let Some(patch) = value.as_object() else {
                    continue;
                };
                let target = user
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !target.is_object() {
                    *target = Value::Object(Map::new());
                }
                if let Value::Object(target) = target {
                    merge_one_level(target, patch);
                }
            }
            // Steer side effects; not stored on the user (as the sandbox does).
            "connection" | "client_id" | "verify_email" | "verify_phone_number" | "password" => {}
            _ if value.is_null() => {
                user.shift_remove(key);
            }
            _ => {
                user.insert(key.clone(), value.clone());
            }
        }
    }
    user
}

/// What `body` changes on `current`, path by path (for dry-run plans and logs): [`diff`] of
/// the user before and after, and the password, which a user never shows, as a secret.
pub fn changes(current: &User, body: &Value) -> Vec<Change> {
    let mut out = diff(current, &apply_patch(current, body));
    if body.get("password").is_some_and(|p| !p.is_null()) {
        out.push(Change::Secret {
            path: "password".into(),
        });
    }
    out
}

/// A diff for --dry-run: changed root fields and changed metadata paths with their old and
/// new values, e.g. `name`, `app_metadata.plan`, `user_metadata.address.city`. Root fields
/// come first in the users' order, then `app_metadata`, then `user_metadata`; a path stops
/// where a value stops being an object on either side. Empty exactly when the two users are
/// the same under this module's comparison.
pub fn diff(current: &User, after: &User) -> Vec<Change> {
    let mut out = Vec::new();
    let keys = current
        .keys()
        .chain(after.keys().filter(|k| !current.contains_key(*k)));
    for key in keys {
        if is_metadata(key) {
            continue;
        }
        if !same_root(current.get(key), after.get(key)) {
            let value = |user: &User| user.get(key).filter(|v| !v.is_null()).cloned();
            out.push(Change::Value {
                path: key.clone(),
                old: value(current),
                new: value(after),
            });
        }
    }
    let empty = Map::new();
    for name in ["app_metadata", "user_metadata"] {
        let a = current
            .get(name)
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let b = after.get(name).and_then(Value::as_object).unwrap_or(&empty);
        diff_objects(name, a, b, &mut out);
    }
    out
}

pub(super) fn is_metadata(key: &str) -> bool {
    matches!(key, "user_metadata" | "app_metadata")
}

pub(super) fn diff_objects(
    path: &str,
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    out: &mut Vec<Change>,
) {
    let keys = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k)));
    for key in keys {
        let here = format!("{path}.{key}");
        match (a.get(key), b.get(key)) {
            (Some(Value::Object(x)), Some(Value::Object(y))) => diff_objects(&here, x, y, out),
            (Some(x), Some(y)) if same(x, y) => {}
            (old, new) => out.push(Change::Value {
                path: here,
                old: old.cloned(),
                new: new.cloned(),
            }),
        }
    }
}

/// Root fields: `null` and absent are the same (a PATCH `null` removes the field).
pub(super) fn same_root(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a.filter(|v| !v.is_null()), b.filter(|v| !v.is_null())) {
        (None, None) => true,
        (Some(x), Some(y)) => same(x, y),
        _ => false,
    }
}

/// Semantic JSON equality: object key order does not matter, numbers compare by exact decimal
/// value (`1` = `1.0` = `1e0`), everything else as is.
pub(super) fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.to_string(), y.to_string());
            x == y
                || match (decimal(&x), decimal(&y)) {
                    (Some(x), Some(y)) => x == y,
                    _ => false,
                }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// A JSON number's exact value as (negative, significant digits, power of ten); zero is
/// `(false, "0", 0)`. None for text that is not a JSON number or an exponent out of range.
pub(super) fn decimal(text: &str) -> Option<(bool, String, i64)> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some((false, "0".into(), 0));
    }
    let trimmed = digits.trim_end_matches('0');
    let exponent = exponent
        .checked_sub(i64::try_from(frac.len()).ok()?)?
        .checked_add(i64::try_from(digits.len() - trimmed.len()).ok()?)?;
    Some((negative, trimmed.to_string(), exponent))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::import::plan::testing::*;
    use crate::import::plan::*;

    // ---------------------------------------------------------------------------------------
    // update_body, apply_patch, diff

    fn paths(changes: &[Change]) -> Vec<&str> {
        changes.iter().map(Change::path).collect()
    }

    fn doc_current() -> User {
        user(json!({
            "user_id": "auth0|abc", "name": "Old",
            "user_metadata": {"theme": "dark", "address": {"city": "Paris", "zip": "75001"}, "tags": ["a"]},
            "app_metadata": {"plan": "free"}
        }))
    }

    fn doc_planned() -> Planned {
        planned(
            json!({"user_id": "auth0|abc",
                   "user_metadata": {"address": {"city": "Lyon"}, "tags": null}}),
            &update_opts(),
        )
    }

    #[test]
    fn the_documented_strategy_examples_hold() {
        // (strategy, body, resulting user_metadata) — the module docs quote these.
        let cases = [
            (
                MetadataStrategy::Merge,
                json!({"user_metadata": {"address": {"city": "Lyon"}, "tags": null}}),
                json!({"theme": "dark", "address": {"city": "Lyon"}}),
            ),
            (
                MetadataStrategy::Deep,
                json!({"user_metadata": {"address": {"city": "Lyon", "zip": "75001"}, "tags": null}}),
                json!({"theme": "dark", "address": {"city": "Lyon", "zip": "75001"}}),
            ),
            (
                MetadataStrategy::Replace,
                json!({"user_metadata": {"address": {"city": "Lyon"}, "theme": null, "tags": null}}),
                json!({"address": {"city": "Lyon"}}),
            ),
        ];
        for (strategy, body, result) in cases {
            let got = update_body(&doc_current(), &doc_planned(), strategy).unwrap();
            // Byte for byte, in the order the module docs show.
            assert_eq!(got.to_string(), body.to_string(), "{strategy:?}");
            let after = apply_patch(&doc_current(), &got);
            assert!(
                same(&after["user_metadata"], &result),
                "{strategy:?}: {}",
                after["user_metadata"]
            );
            assert_eq!(
                after["app_metadata"],
                json!({"plan": "free"}),
                "not carried, left alone"
            );
            assert!(
                update_body(&after, &doc_planned(), strategy).is_none(),
                "{strategy:?} twice"
            );
        }
    }

    #[test]
    fn empty_metadata_clears_under_merge_and_replace_only() {
        let p = planned(
            json!({"user_id": "abc", "user_metadata": {}}),
            &update_opts(),
        );
        let current = doc_current();
        for (strategy, body) in [
            (MetadataStrategy::Merge, Some(json!({"user_metadata": {}}))),
            (
                MetadataStrategy::Replace,
                Some(json!({"user_metadata": {}})),
            ),
            (MetadataStrategy::Deep, None),
        ] {
            assert_eq!(update_body(&current, &p, strategy), body, "{strategy:?}");
        }
        // Nothing to clear: unchanged.
        let bare = user(json!({"user_id": "auth0|abc"}));
        for strategy in [MetadataStrategy::Merge, MetadataStrategy::Replace] {
            assert_eq!(update_body(&bare, &p, strategy), None);
        }
    }

    #[test]
    fn profile_fields_are_sent_only_when_they_differ() {
        let current = user(
            json!({"user_id": "auth0|abc", "name": "Ann", "blocked": false,
                                  "email": "ann@example.com", "app_metadata": {"plan": "free", "n": 1}}),
        );
        // (record, expected body)
        let cases = [
            (json!({"name": "Ann"}), None),
            (json!({"name": "Anne"}), Some(json!({"name": "Anne"}))),
            (json!({"email": "ANN@example.com"}), None),
            (
                json!({"blocked": true, "name": "Ann"}),
                Some(json!({"blocked": true})),
            ),
            (json!({"given_name": null}), None),
            (json!({"name": null}), Some(json!({"name": null}))),
            (
                json!({"picture": "https://example.com/p.png"}),
                Some(json!({"picture": "https://example.com/p.png"})),
            ),
            // The backfill re-run: same value, and a number written another way.
            (json!({"app_metadata": {"plan": "free"}}), None),
            (json!({"app_metadata": {"n": 1.0}}), None),
            (json!({"app_metadata": {"n": 10e-1}}), None),
            (json!({"app_metadata": {"gone": null}}), None),
            (
                json!({"app_metadata": {"plan": "pro"}}),
                Some(json!({"app_metadata": {"plan": "pro"}})),
            ),
            (
                json!({"app_metadata": {"plan": "free", "n": 2}}),
                Some(json!({"app_metadata": {"n": 2}})),
            ),
        ];
        for (record, expected) in cases {
            let mut r = user(record.clone());
            r.insert("user_id".into(), "abc".into());
            let p = planned(Value::Object(r), &update_opts());
            let body = update_body(&current, &p, MetadataStrategy::Merge);
            assert_eq!(body, expected, "{record}");
            if let Some(body) = body {
                assert!(!diff(&current, &apply_patch(&current, &body)).is_empty());
            }
        }
    }

    #[test]
    fn apply_patch_follows_auth0_semantics() {
        let current = user(json!({
            "user_id": "auth0|abc", "name": "Ann", "nickname": "ann",
            "user_metadata": {"a": 1, "nested": {"x": 1, "y": 2}},
            "app_metadata": {"plan": "free"}
        }));
        // (body, expected user)
        let cases = [
            // Spec example: top-level keys merged.
            (
                json!({"user_metadata": {"addresses": {"work_address": "100 Industrial Way"}}}),
                json!({"user_id": "auth0|abc", "name": "Ann", "nickname": "ann",
                    "user_metadata": {"a": 1, "nested": {"x": 1, "y": 2},
                                      "addresses": {"work_address": "100 Industrial Way"}},
                    "app_metadata": {"plan": "free"}}),
            ),
            // One level only: a nested object is replaced whole.
            (
                json!({"user_metadata": {"nested": {"x": 9}}}),
                json!({"user_id": "auth0|abc", "name": "Ann", "nickname": "ann",
                    "user_metadata": {"a": 1, "nested": {"x": 9}}, "app_metadata": {"plan": "free"}}),
            ),
            // null deletes a key; {} clears.
            (
                json!({"user_metadata": {"a": null}, "app_metadata": {}}),
                json!({"user_id": "auth0|abc", "name": "Ann", "nickname": "ann",
                    "user_metadata": {"nested": {"x": 1, "y": 2}}, "app_metadata": {}}),
            ),
            // Root fields are replaced; null removes; steering fields are not stored.
            (
                json!({"name": "Anne", "nickname": null, "connection": "db", "verify_email": false}),
                json!({"user_id": "auth0|abc", "name": "Anne",
                    "user_metadata": {"a": 1, "nested": {"x": 1, "y": 2}}, "app_metadata": {"plan": "free"}}),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                Value::Object(apply_patch(&current, &body)),
                expected,
                "{body}"
            );
        }
        // A metadata object the user lacks is created by a merge.
        let bare = user(json!({"user_id": "auth0|abc"}));
        let after = apply_patch(&bare, &json!({"app_metadata": {"plan": "pro", "x": null}}));
        assert_eq!(
            Value::Object(after),
            json!({"user_id": "auth0|abc", "app_metadata": {"plan": "pro"}})
        );
    }

    #[test]
    fn diff_names_changed_fields_and_metadata_paths() {
        let current = user(json!({
            "user_id": "auth0|abc", "name": "Ann", "blocked": false,
            "user_metadata": {"address": {"city": "Paris", "zip": "75001"}, "tags": ["a"], "n": 1},
            "app_metadata": {"plan": "free", "keep": true}
        }));
        let after = user(json!({
            "user_id": "auth0|abc", "name": "Anne", "blocked": false, "given_name": "A",
            "user_metadata": {"address": {"city": "Lyon", "zip": "75001"}, "tags": ["a", "b"], "n": 1.0, "new": {}},
            "app_metadata": {"plan": "pro", "keep": true}
        }));
        assert_eq!(
            paths(&diff(&current, &after)),
            [
                "name",
                "given_name",
                "app_metadata.plan",
                "user_metadata.address.city",
                "user_metadata.tags",
                "user_metadata.new"
            ]
        );
        assert!(diff(&current, &current).is_empty());
        // Absent metadata is the same as {}; a root null is the same as absent.
        let a = user(json!({"user_id": "x", "name": null}));
        let b = user(json!({"user_id": "x", "user_metadata": {}}));
        assert!(diff(&a, &b).is_empty());
        // A value that stops being an object ends the path there.
        let a = user(json!({"user_metadata": {"a": {"b": 1}}}));
        let b = user(json!({"user_metadata": {"a": 5}}));
        assert_eq!(paths(&diff(&a, &b)), ["user_metadata.a"]);
    }

    #[test]
    fn numbers_compare_by_value() {
        let equal = [
            ("1", "1.0"),
            ("1", "1e0"),
            ("100", "1E2"),
            ("0.5", "5e-1"),
            ("0", "-0.0"),
            ("-2.50", "-2.5"),
        ];
        let different = [
            ("1", "-1"),
            ("1", "10"),
            ("0.1", "0.10000000000000001"),
            ("1e400", "1e401"),
        ];
        let n = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        for (a, b) in equal {
            assert!(same(&n(a), &n(b)), "{a} = {b}");
        }
        for (a, b) in different {
            assert!(!same(&n(a), &n(b)), "{a} != {b}");
        }
    }

    #[test]
    fn check_patch_refuses_what_auth0_refuses() {
        check_patch(&json!({"name": "x", "email": "a@example.com"})).unwrap();
        let e = check_patch(&json!({"username": "ann", "email": "a@example.com"})).unwrap_err();
        assert_eq!(e.code, "conflicting_fields");
        let big = json!({"user_metadata": {"x": "y".repeat(BODY_LIMIT)}});
        assert_eq!(check_patch(&big).unwrap_err().code, "too_large");
    }

    #[test]
    fn a_created_user_looks_like_an_update_of_an_empty_user() {
        let metadata = json!({"a": null, "b": {"c": null, "d": [null]}, "e": {}});
        for strategy in [
            MetadataStrategy::Merge,
            MetadataStrategy::Deep,
            MetadataStrategy::Replace,
        ] {
            let mut o = create_opts();
            o.metadata = strategy;
            let p = planned(
                json!({"user_id": "abc", "email": "a@example.com", "connection": "db", "user_metadata": metadata}),
                &o,
            );
            let created = user(json!({"user_id": "auth0|abc", "email": "a@example.com",
                                      "user_metadata": p.create.as_ref().unwrap()["user_metadata"]}));
            let empty = user(json!({"user_id": "auth0|abc", "email": "a@example.com"}));
            let updated = match update_body(&empty, &p, strategy) {
                Some(body) => apply_patch(&empty, &body),
                None => empty,
            };
            assert!(diff(&created, &updated).is_empty(), "{strategy:?}");
        }
    }

    // ---------------------------------------------------------------------------------------
    // Property: the body takes the user to the strategy's result, and is None exactly when
    // that result is the user as it is.

    /// Auth0's PATCH merge, written independently of the module.
    fn reference(
        current: Option<&Value>,
        record: &Map<String, Value>,
        strategy: MetadataStrategy,
    ) -> Value {
        fn deep(base: &Map<String, Value>, patch: &Map<String, Value>) -> Map<String, Value> {
            let mut out = base.clone();
            for (k, v) in patch {
                if v.is_null() {
                    out.shift_remove(k);
                } else if let Some(p) = v.as_object() {
                    let b = out
                        .get(k)
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    out.insert(k.clone(), Value::Object(deep(&b, p)));
                } else {
                    out.insert(k.clone(), v.clone());
                }
            }
            out
        }
        let current = current
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let result = match strategy {
            MetadataStrategy::Merge if record.is_empty() => Map::new(),
            MetadataStrategy::Merge => {
                let mut out = current;
                for (k, v) in record {
                    if v.is_null() {
                        out.shift_remove(k);
                    } else {
                        out.insert(k.clone(), v.clone());
                    }
                }
                out
            }
            MetadataStrategy::Deep => deep(&current, record),
            MetadataStrategy::Replace => record
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        Value::Object(result)
    }

    /// Users compared as this module means them: root nulls and empty metadata are absent.
    fn normal(u: &User) -> Value {
        Value::Object(
            u.iter()
                .filter(|(k, v)| {
                    let empty_metadata = is_metadata(k) && v.as_object().is_some_and(Map::is_empty);
                    !v.is_null() && !empty_metadata
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0i64..3).prop_map(|n| json!(n)),
            Just(serde_json::from_str::<Value>("1.0").unwrap()),
            "[xy]".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[abc]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn json_object() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::btree_map("[abcd]", json_value(), 0..5)
            .prop_map(|m| m.into_iter().collect())
    }

    fn name() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(None),
            Just(Some(Value::Null)),
            Just(Some(json!("x"))),
            Just(Some(json!("y")))
        ]
    }

    fn strategy() -> impl Strategy<Value = MetadataStrategy> {
        prop_oneof![
            Just(MetadataStrategy::Merge),
            Just(MetadataStrategy::Deep),
            Just(MetadataStrategy::Replace)
        ]
    }

    /// Numbers rewritten with a fraction (`1` becomes `1.0`): the same values, other text.
    fn reworded(value: &Value) -> Value {
        match value {
            Value::Number(n) if !n.to_string().contains('.') => {
                serde_json::from_str(&format!("{n}.0")).unwrap()
            }
            Value::Array(items) => Value::Array(items.iter().map(reworded).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), reworded(v))).collect())
            }
            other => other.clone(),
        }
    }

    /// A record's metadata object made from the user's, so that unchanged and nearly
    /// unchanged records are common: per current key (in order) 0 drops it, 1 keeps it, 2 keeps
    /// half of a nested object, 3 sets it to null, 4 keeps it with numbers reworded, 5 keeps it
    /// and adds a null for a key the user lacks; then the extra keys are laid over.
    fn derived(
        current: Option<&Map<String, Value>>,
        how: &[u8],
        extra: &Map<String, Value>,
    ) -> Map<String, Value> {
        let mut out = Map::new();
        for ((key, value), how) in current.into_iter().flatten().zip(how.iter().cycle()) {
            let value = match (how, value) {
                (0, _) => continue,
                (2, Value::Object(inner)) => Value::Object(
                    inner
                        .iter()
                        .take(inner.len() / 2)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ),
                (3, _) => Value::Null,
                (5, v) => {
                    // A null for a key the user lacks changes nothing.
                    out.insert(format!("{key}_absent"), Value::Null);
                    v.clone()
                }
                (4, v) => reworded(v),
                (_, v) => v.clone(),
            };
            out.insert(key.clone(), value);
        }
        for (key, value) in extra {
            out.insert(key.clone(), value.clone());
        }
        out
    }

    fn derivation() -> impl Strategy<Value = Option<(Vec<u8>, Map<String, Value>)>> {
        proptest::option::of((
            prop::collection::vec(0u8..6, 1..6),
            prop_oneof![
                2 => Just(Map::new()),
                1 => prop::collection::btree_map("[abcd]", json_value(), 0..3)
                    .prop_map(|m| m.into_iter().collect()),
            ],
        ))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn update_body_reaches_the_strategys_result(
            current_meta in (proptest::option::of(json_object()), proptest::option::of(json_object())),
            record_meta in (derivation(), derivation()),
            current_name in name(),
            record_name in name(),
            strategy in strategy(),
        ) {
            let mut current = user(json!({"user_id": "auth0|abc"}));
            let mut record = user(json!({"user_id": "auth0|abc"}));
            if let Some(n) = current_name.filter(|n| !n.is_null()) { current.insert("name".into(), n); }
            if let Some(n) = record_name { record.insert("name".into(), n); }
            for (field, c, r) in [("user_metadata", &current_meta.0, &record_meta.0), ("app_metadata", &current_meta.1, &record_meta.1)] {
                if let Some(c) = c { current.insert(field.into(), Value::Object(c.clone())); }
                if let Some((how, extra)) = r {
                    record.insert(field.into(), Value::Object(derived(c.as_ref(), how, extra)));
                }
            }
            let mut o = update_opts();
            o.metadata = strategy;
            let p = plan(&record, &o).unwrap();

            let mut expected = current.clone();
            match record.get("name") {
                Some(Value::Null) => { expected.shift_remove("name"); }
                Some(n) => { expected.insert("name".into(), n.clone()); }
                None => {}
            }
            for field in ["user_metadata", "app_metadata"] {
                if let Some(Value::Object(r)) = record.get(field) {
                    expected.insert(field.into(), reference(current.get(field), r, strategy));
                }
            }
            let unchanged = same(&normal(&expected), &normal(&current));
            match update_body(&current, &p, strategy) {
                None => prop_assert!(unchanged, "None, but {:?} != {:?}", expected, current),
                Some(body) => {
                    prop_assert!(!unchanged, "sent {} for no change", body);
                    let after = apply_patch(&current, &body);
                    prop_assert!(same(&normal(&after), &normal(&expected)), "{} gave {:?}, wanted {:?}", body, after, expected);
                    prop_assert!(!diff(&current, &after).is_empty());
                    prop_assert!(diff(&after, &expected).is_empty());
                    // What Auth0 takes: metadata patches are objects, `{}` only to clear.
                    for field in ["user_metadata", "app_metadata"] {
                        if let Some(m) = body.get(field) {
                            let m = m.as_object().unwrap();
                            prop_assert!(!m.is_empty() || normal(&expected).get(field).is_none());
                        }
                    }
                    check_patch(&body).unwrap();
                }
            }
        }
    }
}
