//! The sandbox's user search: matches users against a parsed v3 [`Query`] (the language itself,
//! lexer and parser, is `crate::query`, shared with the CLI).
//!
//! [`Query::matches`] runs against up to a million users per request and allocates nothing on
//! the common paths; [`Query::created_at_ms`] and [`Query::narrowing`] let the store narrow a
//! search to a slice of its `(created_at, user_id)` indexes, and say when that slice is the
//! exact answer. The rules each test follows are named beside it (*Facts*:
//! `AUTH0-FACTS.md`; *Docs*: auth0.com's user search pages), as in `crate::query`.

use std::ops::Bound;

use chrono::DateTime;
use serde_json::{Map, Number, Value};

use crate::query::{
    Clause, DateRange, Node, NumberTerm, Pattern, Scalar, Target, Test, canonical_ms, is_canonical,
};
pub use crate::query::{Query, QueryError, canonical_time};

impl Query {
    /// True when `user` (a user object exactly as the API returns it) matches.
    pub fn matches(&self, user: &Map<String, Value>) -> bool {
        self.root.matches(user)
    }

    /// A necessary condition on `created_at` implied by the query, for index narrowing:
    /// Some(range) only when every matching user must have created_at inside the range
    /// (e.g. the query is a top-level AND that contains a created_at range clause).
    /// None when no such bound follows. Bounds are canonical UTC strings
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` so they compare lexicographically with stored values.
    ///
    /// The range is always well-formed for `BTreeMap::range` (lower <= upper, never two equal
    /// excluded bounds): a query whose created_at bounds cannot all hold gives the empty range
    /// `(Included(x), Excluded(x))`.
    pub fn created_at_range(&self) -> Option<(Bound<String>, Bound<String>)> {
        self.root.created_at_span().map(MsSpan::to_bounds)
    }

    /// The same necessary condition as [`Query::created_at_range`], as an inclusive span of
    /// UNIX milliseconds (`None` ends are open), for an index keyed by instants. A span whose
    /// start is after its end holds nothing.
    pub fn created_at_ms(&self) -> Option<(Option<i64>, Option<i64>)> {
        self.root.created_at_span().map(|span| (span.lo, span.hi))
    }

    /// What else an index can narrow a search by, read from the query's top-level AND.
    pub fn narrowing(&self) -> Narrowing {
        let mut narrowing = Narrowing {
            connection: None,
            user_id_prefix: None,
            exact: true,
        };
        self.root.narrow(&mut narrowing);
        narrowing
    }
}

/// Conditions every match of a query must meet, beyond its `created_at` span, in the forms a
/// store indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Narrowing {
    /// `identities.connection:"X"`: every match has the text `X` among the values at
    /// `identities.connection` (see [`text_leaves`]). Only for a value that matches nothing
    /// but text (not a number or boolean term).
    pub connection: Option<String>,
    /// `user_id:P*`: every match has a text `user_id` starting with `P` (case-sensitive).
    pub user_id_prefix: Option<String>,
    /// True when the query is nothing but these and `created_at` ranges, ANDed: a user that
    /// meets them all (and the span) matches, with no further test.
    pub exact: bool,
}

impl Node {
    fn narrow(&self, into: &mut Narrowing) {
        match self {
            Node::All => {}
            Node::And(nodes) => nodes.iter().for_each(|n| n.narrow(into)),
            Node::Clause(Clause {
                target: Target::Path(path),
                test,
            }) => {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                match (path.as_slice(), test) {
                    (["created_at"], Test::DateIn(_)) => {}
                    (["identities", "connection"], Test::Equals(scalar))
                        if scalar.number.is_none()
                            && scalar.boolean.is_none()
                            && into.connection.is_none() =>
                    {
                        into.connection = Some(scalar.text.clone());
                    }
                    (["user_id"], Test::Wildcard(pattern))
                        if !pattern.fold
                            && pattern.middles.is_empty()
                            && pattern.suffix.is_empty()
                            && into.user_id_prefix.is_none() =>
                    {
                        into.user_id_prefix = Some(pattern.prefix.clone());
                    }
                    _ => into.exact = false,
                }
            }
            _ => into.exact = false,
        }
    }
}

/// Every text value a query clause on `path` tests in `value` (the value of the path's first
/// key), following the matcher's rules: arrays are searched through at any level, and only
/// strings count (a text term matches a string by exact text). `identities.connection` of a
/// user linked to two accounts gives both connections.
pub fn text_leaves<'a>(value: &'a Value, path: &[&str], out: &mut Vec<&'a str>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| text_leaves(item, path, out)),
        Value::Object(map) => {
            if let Some((key, rest)) = path.split_first()
                && let Some(v) = map.get(*key)
            {
                text_leaves(v, rest, out);
            }
        }
        Value::String(s) if path.is_empty() => out.push(s),
        _ => {}
    }
}

/// The inclusive millisecond span a created_at condition allows; `None` ends are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MsSpan {
    lo: Option<i64>,
    hi: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// Matching
// ---------------------------------------------------------------------------------------------

impl Node {
    fn matches(&self, user: &Map<String, Value>) -> bool {
        match self {
            Node::All => true,
            Node::And(nodes) => nodes.iter().all(|n| n.matches(user)),
            Node::Or(nodes) => nodes.iter().any(|n| n.matches(user)),
            Node::Not(node) => !node.matches(user),
            Node::Clause(clause) => clause.matches(user),
        }
    }

    /// The created_at span every matching user must fall in, if the query implies one.
    fn created_at_span(&self) -> Option<MsSpan> {
        match self {
            Node::Clause(Clause {
                target: Target::Path(path),
                test: Test::DateIn(range),
            }) if path.len() == 1 && path[0] == "created_at" => Some(MsSpan {
                lo: range.lo,
                hi: range.hi,
            }),
            // Every branch of an AND must hold, so any bounded branch bounds the whole.
            Node::And(nodes) => nodes
                .iter()
                .filter_map(Node::created_at_span)
                .reduce(MsSpan::intersect),
            // An OR is bounded only when every branch is; then by the hull of the branches.
            Node::Or(nodes) => nodes
                .iter()
                .map(Node::created_at_span)
                .reduce(|a, b| Some(a?.hull(b?)))
                .flatten(),
            _ => None,
        }
    }
}

impl Clause {
    fn matches(&self, user: &Map<String, Value>) -> bool {
        match &self.target {
            Target::EmailDomain => {
                let domain = match user.get("email") {
                    Some(Value::String(email)) => email_domain(email),
                    _ => None,
                };
                domain.is_some_and(|d| matches!(self.test, Test::Exists) || self.test.on_str(d))
            }
            Target::Path(path) => {
                let Some((first, rest)) = path.split_first() else {
                    return false;
                };
                let Some(value) = user.get(first.as_str()) else {
                    return false;
                };
                if matches!(self.test, Test::Exists) {
                    exists_at(value, rest)
                } else {
                    any_leaf(value, rest, &|leaf| self.test.on_scalar(leaf))
                }
            }
        }
    }
}

/// The domain of an email address: what follows the last `@`.
fn email_domain(email: &str) -> Option<&str> {
    email
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .filter(|d| !d.is_empty())
}

/// True when `test` holds for some scalar reached by following `path` from `value`.
/// Arrays are searched through at any level. Docs: "to search fields in objects nested arrays,
/// use the path to the field and ignore the array level".
fn any_leaf(value: &Value, path: &[String], test: &impl Fn(&Value) -> bool) -> bool {
    match value {
        Value::Array(items) => items.iter().any(|item| any_leaf(item, path, test)),
        Value::Object(map) => match path.split_first() {
            Some((key, rest)) => map
                .get(key.as_str())
                .is_some_and(|v| any_leaf(v, rest, test)),
            // A path that ends on an object names no scalar, so no value can equal it.
            None => false,
        },
        // Facts: nulls are not indexed, so they never match.
        Value::Null => false,
        scalar => path.is_empty() && test(scalar),
    }
}

/// `_exists_`: true when a non-null scalar is indexed at or below `path`.
/// Facts/Docs: empty arrays, empty objects and nulls are not indexed, so they do not "exist";
/// an object or array counts only through the scalars inside it.
fn exists_at(value: &Value, path: &[String]) -> bool {
    match value {
        Value::Array(items) => items.iter().any(|item| exists_at(item, path)),
        Value::Object(map) => match path.split_first() {
            Some((key, rest)) => map.get(key.as_str()).is_some_and(|v| exists_at(v, rest)),
            None => map.values().any(|v| exists_at(v, &[])),
        },
        Value::Null => false,
        _ => path.is_empty(),
    }
}

impl Test {
    /// Applies the test to one JSON scalar (never null, array or object).
    fn on_scalar(&self, value: &Value) -> bool {
        match (self, value) {
            (Test::Equals(scalar), _) => scalar.matches(value),
            (Test::IntIn { lo, hi }, Value::Number(n)) => int_in(n, *lo, *hi),
            (_, Value::String(s)) => self.on_str(s),
            _ => false,
        }
    }

    /// Applies the test to a string value.
    fn on_str(&self, s: &str) -> bool {
        match self {
            Test::Exists => true,
            Test::Equals(scalar) => scalar.text == s,
            Test::FoldedEquals(lower) => folded_eq(s, lower),
            Test::Wildcard(pattern) => pattern.matches(s),
            Test::DateIn(range) => range.contains(s),
            Test::IntIn { .. } => false,
        }
    }
}

impl Scalar {
    /// Docs: metadata values may be booleans, numbers ("integer or double") or text, so a
    /// value matches by type: `true`/`false` match JSON booleans, a numeric term matches a JSON
    /// number of equal value, and every term also matches the string it spells (exact,
    /// case-sensitive; Facts: all but the five normalized fields are case-sensitive).
    fn matches(&self, value: &Value) -> bool {
        match value {
            Value::String(s) => *s == self.text,
            Value::Number(n) => self.number.is_some_and(|q| q.matches(n)),
            Value::Bool(b) => self.boolean == Some(*b),
            _ => false,
        }
    }
}

impl NumberTerm {
    fn matches(self, n: &Number) -> bool {
        if let Some(q) = self.int {
            if let Some(i) = n.as_i64() {
                return i128::from(i) == q;
            }
            if let Some(u) = n.as_u64() {
                return i128::from(u) == q;
            }
        }
        n.as_f64() == Some(self.float)
    }
}

/// True when the JSON number is an integer value inside `[lo, hi]`.
fn int_in(n: &Number, lo: i128, hi: i128) -> bool {
    if let Some(i) = n.as_i64() {
        return (lo..=hi).contains(&i128::from(i));
    }
    if let Some(u) = n.as_u64() {
        return (lo..=hi).contains(&i128::from(u));
    }
    // A float such as 5.0 (arbitrary_precision keeps its text); the bounds are integers.
    n.as_f64().is_some_and(|f| f >= lo as f64 && f <= hi as f64)
}

/// Case-insensitive equality of `s` with an already lower-cased `lower`, without allocating
/// for ASCII values.
fn folded_eq(s: &str, lower: &str) -> bool {
    if s.is_ascii() {
        s.eq_ignore_ascii_case(lower)
    } else {
        s.to_lowercase() == lower
    }
}

impl Pattern {
    fn matches(&self, s: &str) -> bool {
        if !self.fold {
            return self.matches_bytes(s.as_bytes(), |a, b| a == b);
        }
        if s.is_ascii() {
            return self.matches_bytes(s.as_bytes(), |a, b| a.to_ascii_lowercase() == b);
        }
        self.matches_bytes(s.to_lowercase().as_bytes(), |a, b| a == b)
    }

    /// Matches on bytes: the literals are whole UTF-8 strings, so byte matches align with
    /// characters. `eq(value_byte, pattern_byte)`.
    fn matches_bytes(&self, hay: &[u8], eq: impl Fn(u8, u8) -> bool + Copy) -> bool {
        let (prefix, suffix) = (self.prefix.as_bytes(), self.suffix.as_bytes());
        if hay.len() < prefix.len() + suffix.len()
            || !bytes_eq(&hay[..prefix.len()], prefix, eq)
            || !bytes_eq(&hay[hay.len() - suffix.len()..], suffix, eq)
        {
            return false;
        }
        let mut rest = &hay[prefix.len()..hay.len() - suffix.len()];
        for middle in &self.middles {
            match find(rest, middle.as_bytes(), eq) {
                Some(at) => rest = &rest[at + middle.len()..],
                None => return false,
            }
        }
        true
    }
}

fn bytes_eq(a: &[u8], b: &[u8], eq: impl Fn(u8, u8) -> bool) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| eq(x, y))
}

/// The first position of `needle` in `hay` (leftmost match is enough for `*` patterns).
fn find(hay: &[u8], needle: &[u8], eq: impl Fn(u8, u8) -> bool + Copy) -> Option<usize> {
    (0..=hay.len().checked_sub(needle.len())?)
        .find(|&i| bytes_eq(&hay[i..i + needle.len()], needle, eq))
}

impl DateRange {
    /// True when the stored timestamp `s` lies in the span. Brief: compare as instants with
    /// millisecond precision; stored values are parsed, but values already in the canonical
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` form are compared as strings, which orders them the same way.
    fn contains(&self, s: &str) -> bool {
        if let Some((lo, hi)) = &self.fast
            && is_canonical(s)
        {
            return lo.as_deref().is_none_or(|lo| s >= lo)
                && hi.as_deref().is_none_or(|hi| s <= hi);
        }
        match DateTime::parse_from_rfc3339(s) {
            Ok(t) => {
                let ms = t.timestamp_millis();
                self.lo.is_none_or(|lo| ms >= lo) && self.hi.is_none_or(|hi| ms <= hi)
            }
            Err(_) => false,
        }
    }
}

impl MsSpan {
    fn intersect(self, other: MsSpan) -> MsSpan {
        MsSpan {
            lo: max_opt(self.lo, other.lo, i64::max),
            hi: max_opt(self.hi, other.hi, i64::min),
        }
    }

    fn hull(self, other: MsSpan) -> MsSpan {
        MsSpan {
            lo: self.lo.zip(other.lo).map(|(a, b)| a.min(b)),
            hi: self.hi.zip(other.hi).map(|(a, b)| a.max(b)),
        }
    }

    /// Canonical string bounds, well-formed for `BTreeMap::range`.
    fn to_bounds(self) -> (Bound<String>, Bound<String>) {
        const FIRST: &str = "0000-01-01T00:00:00.000Z";
        const LAST: &str = "9999-12-31T23:59:59.999Z";
        let empty = || {
            (
                Bound::Included(FIRST.to_string()),
                Bound::Excluded(FIRST.to_string()),
            )
        };
        if let (Some(lo), Some(hi)) = (self.lo, self.hi)
            && lo > hi
        {
            return empty();
        }
        let lower = match self.lo {
            None => Bound::Unbounded,
            Some(ms) => match canonical_ms(ms) {
                Some(s) => Bound::Included(s),
                // Before year 0 nothing is excluded; after year 9999 nothing can match.
                None if ms < 0 => Bound::Unbounded,
                None => return (Bound::Excluded(LAST.to_string()), Bound::Unbounded),
            },
        };
        let upper = match self.hi {
            None => Bound::Unbounded,
            Some(ms) => match canonical_ms(ms) {
                Some(s) => Bound::Included(s),
                None if ms < 0 => return empty(),
                None => Bound::Unbounded,
            },
        };
        (lower, upper)
    }
}

/// Combines two optional bounds with `pick`, an open (`None`) bound giving way to the other.
fn max_opt(a: Option<i64>, b: Option<i64>, pick: fn(i64, i64) -> i64) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(pick(x, y)),
        (x, y) => x.or(y),
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::MAX_DEPTH;
    use serde_json::json;
    use std::collections::BTreeMap;
    use std::ops::RangeBounds;

    fn obj(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    /// A user as the API returns it, with metadata shaped to exercise every path rule.
    fn jane() -> Map<String, Value> {
        obj(json!({
            "user_id": "auth0|5457edea1b8f22891a000004",
            "email": "Jane.Doe@ExampleCo.com",
            "email_verified": true,
            "name": "Jane Smith",
            "given_name": "Jane",
            "family_name": "Smith",
            "nickname": "janie",
            "username": "JaneD",
            "created_at": "2024-01-31T23:59:59.999Z",
            "updated_at": "2024-02-01T00:00:00.000Z",
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
                "Plan": "Full"
            }
        }))
    }

    fn parse(q: &str) -> Query {
        Query::parse(q).unwrap_or_else(|e| panic!("query {q:?} should parse: {e}"))
    }

    /// Asserts each `(query, expected)` against `user`.
    fn check(user: &Map<String, Value>, cases: &[(&str, bool)]) {
        for (q, expected) in cases {
            assert_eq!(parse(q).matches(user), *expected, "query {q:?}");
        }
    }

    use crate::query::tests::{check_errors, error};

    fn range(q: &str) -> Option<(Bound<String>, Bound<String>)> {
        parse(q).created_at_range()
    }

    fn inc(s: &str) -> Bound<String> {
        Bound::Included(s.to_string())
    }

    // --- the match-all query --------------------------------------------------------------

    #[test]
    fn empty_and_blank_queries_match_everyone() {
        for q in ["", "   ", "\t\n"] {
            let query = parse(q);
            assert!(query.matches(&jane()), "{q:?}");
            assert!(query.matches(&Map::new()), "{q:?}");
            assert_eq!(query.created_at_range(), None);
        }
        assert!(Query::all().matches(&Map::new()));
        assert_eq!(Query::all().created_at_range(), None);
    }

    // --- values: whole-value matching, quoting, escapes -----------------------------------

    #[test]
    fn field_values_match_the_whole_value_not_tokens() {
        check(
            &jane(),
            &[
                ("name:\"jane smith\"", true),
                ("name:jane", false),
                ("name:smith", false),
                ("user_id:auth0", false),
                ("user_id:\"auth0|5457edea1b8f22891a000004\"", true),
                ("user_id:auth0|5457edea1b8f22891a000004", true),
                (
                    "identities.connection:\"Username-Password-Authentication\"",
                    true,
                ),
                (
                    "identities.connection:Username-Password-Authentication",
                    true,
                ),
                ("identities.connection:Username", false),
            ],
        );
    }

    #[test]
    fn quoted_values_unescape_quotes_and_backslashes() {
        let user = obj(json!({"name": "Jane \"JJ\" Smith", "nickname": "back\\slash"}));
        check(
            &user,
            &[
                (r#"name:"jane \"jj\" smith""#, true),
                (r#"name:"jane""#, false),
                (r#"nickname:"back\\slash""#, true),
                (r#"nickname:back\\slash"#, true),
            ],
        );
    }

    #[test]
    fn backslash_escapes_make_special_characters_literal() {
        // Docs: escape the space character, e.g. name:John\ Doe.
        let user = obj(json!({"name": "John Doe", "nickname": "a*b", "username": "what?"}));
        check(
            &user,
            &[
                (r"name:John\ Doe", true),
                (r"name:john\ doe", true),
                (r"nickname:a\*b", true),
                (r"nickname:a\*c", false),
                (r"username:what\?", true),
            ],
        );
    }

    #[test]
    fn quoted_values_never_contain_wildcards() {
        let user = obj(json!({"name": "jan*", "nickname": "janie"}));
        check(
            &user,
            &[("name:\"jan*\"", true), ("nickname:\"jan*\"", false)],
        );
    }

    // --- case rules ------------------------------------------------------------------------

    #[test]
    fn normalized_profile_fields_match_case_insensitively() {
        check(
            &jane(),
            &[
                ("email:\"jane.doe@exampleco.com\"", true),
                ("email:JANE.DOE@EXAMPLECO.COM", true),
                ("name:\"JANE SMITH\"", true),
                ("given_name:jANE", true),
                ("family_name:SMITH", true),
                ("nickname:JANIE", true),
                ("email:jane.doe@exampleco.org", false),
            ],
        );
    }

    #[test]
    fn other_fields_match_case_sensitively() {
        check(
            &jane(),
            &[
                ("username:JaneD", true),
                ("username:janed", false),
                ("user_id:AUTH0|5457edea1b8f22891a000004", false),
                ("identities.provider:auth0", true),
                ("identities.provider:Auth0", false),
                ("app_metadata.plan:full", true),
                ("app_metadata.plan:Full", false),
                ("app_metadata.plan:FULL", false),
                ("user_metadata.Plan:Full", true),
                ("user_metadata.Plan:full", false),
                ("user_metadata.plan:Full", false),
            ],
        );
    }

    #[test]
    fn case_folding_covers_non_ascii_names() {
        let user = obj(json!({"name": "Émile Zoë", "nickname": "ÉMILE"}));
        check(
            &user,
            &[
                ("name:\"émile zoë\"", true),
                ("name:\"ÉMILE ZOË\"", true),
                ("nickname:émile", true),
                ("name:émile*", true),
                ("name:*ZOË", true),
                ("name:\"emile zoe\"", false),
            ],
        );
    }

    #[test]
    fn email_domain_is_derived_from_the_email() {
        let user = obj(json!({"email": "jane@exampleco.com"}));
        check(
            &user,
            &[
                ("email.domain:\"exampleco.com\"", true),
                ("email.domain:exampleco.com", true),
                ("email.domain:example.com", false),
                ("email.domain:exam*", true),
                ("_exists_:email.domain", true),
                // Docs: only the five normalized fields are case-insensitive.
                ("email.domain:ExampleCo.com", false),
            ],
        );
        assert!(!parse("_exists_:email.domain").matches(&obj(json!({"name": "x"}))));
        assert!(!parse("email.domain:x").matches(&obj(json!({"email": "no-at-sign"}))));
    }

    // --- metadata and other dotted paths -----------------------------------------------------

    #[test]
    fn metadata_is_searched_by_dotted_path() {
        check(
            &jane(),
            &[
                ("app_metadata.plan:\"full\"", true),
                ("app_metadata.subscription.plan:\"gold\"", true),
                ("app_metadata.subscription.plan:full", false),
                ("app_metadata.subscription:gold", false),
                ("app_metadata.missing.plan:gold", false),
                ("app_metadata.plan.deeper:full", false),
                ("user_metadata.plan:full", false),
            ],
        );
    }

    #[test]
    fn metadata_paths_search_through_arrays_of_objects_and_scalars() {
        check(
            &jane(),
            &[
                ("user_metadata.addresses.city:Paris", true),
                ("user_metadata.addresses.city:\"Lyon\"", true),
                ("user_metadata.addresses.city:Marseille", false),
                ("user_metadata.addresses.city:paris", false),
                ("user_metadata.addresses.zip:75001", true),
                ("user_metadata.addresses.tags:old", true),
                ("app_metadata.roles:admin", true),
                ("app_metadata.roles:\"editor\"", true),
                ("app_metadata.roles:viewer", false),
                ("user_metadata.matrix:c", true),
                ("user_metadata.matrix:d", false),
            ],
        );
    }

    #[test]
    fn non_metadata_paths_search_through_arrays_too() {
        let user = obj(json!({"identities": [
            {"connection": "google-oauth2", "provider": "google-oauth2", "isSocial": true},
            {"connection": "Username-Password-Authentication", "provider": "auth0"}
        ]}));
        check(
            &user,
            &[
                ("identities.connection:\"google-oauth2\"", true),
                (
                    "identities.connection:\"Username-Password-Authentication\"",
                    true,
                ),
                ("identities.provider:auth0", true),
                ("identities.isSocial:true", true),
                ("identities.connection:github", false),
            ],
        );
    }

    #[test]
    fn values_match_by_type() {
        check(
            &jane(),
            &[
                // Numbers: equal value, written any JSON way, quoted or not.
                ("app_metadata.tier:3", true),
                ("app_metadata.tier:3.0", true),
                ("app_metadata.tier:\"3\"", true),
                ("app_metadata.tier:3e0", true),
                ("app_metadata.tier:4", false),
                ("app_metadata.ratio:2.5", true),
                ("app_metadata.ratio:2.50", true),
                ("app_metadata.ratio:2", false),
                // A numeric term also matches the string it spells.
                ("app_metadata.code:42", true),
                ("app_metadata.code:42.0", false),
                // Booleans match JSON booleans; other words do not.
                ("app_metadata.beta:true", true),
                ("app_metadata.beta:false", false),
                ("app_metadata.beta:True", false),
                ("app_metadata.beta:1", false),
                ("identities.isSocial:false", true),
                // Strings are not numbers or booleans.
                ("app_metadata.plan:0", false),
            ],
        );
        let strings = obj(json!({"app_metadata": {"flag": "true", "n": "7"}}));
        check(
            &strings,
            &[
                ("app_metadata.flag:true", true),
                ("app_metadata.flag:false", false),
                ("app_metadata.n:7", true),
                ("app_metadata.n:7.0", false),
            ],
        );
    }

    #[test]
    fn large_integers_compare_exactly() {
        let user = obj(json!({"app_metadata": {"id": 9007199254740993_u64}}));
        check(
            &user,
            &[
                ("app_metadata.id:9007199254740993", true),
                ("app_metadata.id:9007199254740992", false),
            ],
        );
    }

    #[test]
    fn empty_arrays_empty_objects_and_nulls_are_not_indexed() {
        check(
            &jane(),
            &[
                ("_exists_:app_metadata.plan", true),
                ("_exists_:app_metadata.roles", true),
                ("_exists_:app_metadata.subscription", true),
                ("_exists_:app_metadata.subscription.plan", true),
                ("_exists_:user_metadata.addresses.city", true),
                ("_exists_:user_metadata.addresses.zip", true),
                ("_exists_:app_metadata", true),
                ("_exists_:app_metadata.empty_list", false),
                ("_exists_:app_metadata.empty_obj", false),
                ("_exists_:app_metadata.nothing", false),
                ("_exists_:app_metadata.nulls", false),
                ("_exists_:app_metadata.null_obj", false),
                ("_exists_:app_metadata.null_obj.a", false),
                ("_exists_:app_metadata.missing", false),
                ("NOT _exists_:app_metadata.nothing", true),
                ("app_metadata.nothing:null", false),
                ("app_metadata.empty_list:\"[]\"", false),
            ],
        );
    }

    #[test]
    fn exists_works_on_profile_fields() {
        let user = obj(json!({"email": "", "logins_count": 0, "last_login": null}));
        check(
            &user,
            &[
                ("_exists_:email", true),
                ("_exists_:logins_count", true),
                ("_exists_:last_login", false),
                ("_exists_:name", false),
                ("_exists_:\"logins_count\"", true),
            ],
        );
    }

    // --- booleans, integers ------------------------------------------------------------------

    #[test]
    fn boolean_fields_take_true_or_false() {
        check(
            &jane(),
            &[
                ("email_verified:true", true),
                ("email_verified:false", false),
                ("blocked:false", true),
                ("blocked:true", false),
                ("phone_verified:false", false),
            ],
        );
        check_errors(&[
            ("email_verified:yes", "expected true or false"),
            ("blocked:TRUE", "expected true or false"),
            ("blocked:tru*", "wildcards work on text fields only"),
        ]);
    }

    #[test]
    fn logins_count_matches_exact_integers_and_ranges() {
        check(
            &jane(),
            &[
                ("logins_count:5", true),
                ("logins_count:4", false),
                ("logins_count:[5 TO 5]", true),
                ("logins_count:{5 TO 6]", false),
                ("logins_count:{4 TO 6}", true),
                ("logins_count:[1 TO 5}", false),
                ("logins_count:[1 TO 5]", true),
                ("logins_count:[5 TO *]", true),
                ("logins_count:{5 TO *]", false),
                ("logins_count:{4 TO *]", true),
                ("logins_count:[* TO 4]", false),
                ("logins_count:[* TO 5]", true),
                ("logins_count:[* TO *]", true),
                ("logins_count:[-3 TO 5]", true),
                ("logins_count:[9 TO 1]", false),
            ],
        );
        let float = obj(json!({"logins_count": 5.0}));
        check(
            &float,
            &[("logins_count:5", true), ("logins_count:{4 TO 5]", true)],
        );
        let none = obj(json!({"name": "x"}));
        check(
            &none,
            &[("logins_count:[* TO *]", false), ("logins_count:0", false)],
        );
        check_errors(&[
            ("logins_count:five", "expected an integer"),
            ("logins_count:5.5", "expected an integer"),
            (
                "logins_count:[1 TO five]",
                "'five' at column 20 is not a valid bound",
            ),
            ("logins_count:5*", "wildcards work on text fields only"),
        ]);
    }

    // --- dates --------------------------------------------------------------------------------

    /// Jane was created at the last millisecond of 2024-01-31, so every boundary rule shows.
    const LAST_MS_CASES: &[(&str, bool)] = &[
        // Date-only bounds: an inclusive upper bound covers the whole day.
        ("created_at:[* TO 2024-01-31]", true),
        ("created_at:[2024-01-31 TO 2024-01-31]", true),
        ("created_at:[2024-01-31 TO *]", true),
        // An exclusive upper date-only bound means that day's midnight.
        ("created_at:[* TO 2024-01-31}", false),
        ("created_at:[* TO 2024-02-01}", true),
        // An exclusive lower date-only bound starts after the whole day.
        ("created_at:{2024-01-31 TO *]", false),
        ("created_at:{2024-01-30 TO *]", true),
        ("created_at:{2024-01-30 TO 2024-02-01}", true),
        // Timestamps are instants, compared to the millisecond.
        ("created_at:[2024-01-31T23:59:59.999Z TO *]", true),
        ("created_at:{2024-01-31T23:59:59.999Z TO *]", false),
        ("created_at:{2024-01-31T23:59:59.998Z TO *]", true),
        ("created_at:[* TO 2024-01-31T23:59:59.999Z]", true),
        ("created_at:[* TO 2024-01-31T23:59:59.999Z}", false),
        ("created_at:[* TO 2024-01-31T23:59:59.998Z]", false),
        (
            "created_at:[2024-01-31T23:59:59.999Z TO 2024-01-31T23:59:59.999Z]",
            true,
        ),
        // Without milliseconds or seconds the missing parts are zero.
        ("created_at:[2024-01-31T23:59:59Z TO *]", true),
        ("created_at:[* TO 2024-01-31T23:59:59Z]", false),
        ("created_at:[* TO 2024-01-31T23:59Z]", false),
        ("created_at:[2024-01-31T23:59 TO *]", true),
        // Extra fraction digits are truncated to the millisecond.
        ("created_at:[2024-01-31T23:59:59.9999Z TO *]", true),
        ("created_at:{2024-01-31T23:59:59.9989Z TO *]", true),
        // Offsets move the instant; no zone means UTC.
        ("created_at:[2024-02-01T00:59:59.999+01:00 TO *]", true),
        ("created_at:[2024-02-01T01:00:00+01:00 TO *]", false),
        ("created_at:[* TO 2024-01-31T22:59:59.999-01:00]", true),
        ("created_at:[* TO 2024-01-31T22:59:59.999-01:00}", false),
        ("created_at:[* TO 2024-01-31T23:59:59.999]", true),
        // Month bounds cover the whole month (Docs: last_login:{2017-11 TO 2017-12]).
        ("created_at:[2024-01 TO 2024-01]", true),
        ("created_at:{2023-12 TO 2024-01]", true),
        ("created_at:{2024-01 TO *]", false),
        ("created_at:[* TO 2024-01}", false),
        ("created_at:[2024-02 TO *]", false),
        // Quoted bounds are fine.
        ("created_at:[\"2024-01-31\" TO \"2024-01-31\"]", true),
        // A date term means its own span.
        ("created_at:2024-01-31", true),
        ("created_at:\"2024-01-31T23:59:59.999Z\"", true),
        ("created_at:\"2024-01-31T23:59:59.998Z\"", false),
        ("created_at:2024-02-01", false),
        ("created_at:2024-01", true),
    ];

    #[test]
    fn date_ranges_respect_millisecond_edges() {
        check(&jane(), LAST_MS_CASES);
    }

    #[test]
    fn stored_timestamps_are_parsed_not_assumed_canonical() {
        for stored in [
            "2024-01-31T23:59:59.999+00:00",
            "2024-02-01T00:59:59.999+01:00",
            "2024-01-31T23:59:59.999123Z",
            "2024-01-31T23:59:59.9994Z",
        ] {
            let user = obj(json!({"created_at": stored}));
            for (q, expected) in LAST_MS_CASES {
                assert_eq!(parse(q).matches(&user), *expected, "{q:?} against {stored}");
            }
        }
    }

    #[test]
    fn midnight_is_the_first_millisecond_of_its_day() {
        // Jane's updated_at is exactly 2024-02-01T00:00:00.000Z.
        check(
            &jane(),
            &[
                ("updated_at:{2024-01-31 TO *]", true),
                ("updated_at:[* TO 2024-01-31]", false),
                ("updated_at:[* TO 2024-02-01}", false),
                ("updated_at:[2024-02-01 TO 2024-02-01]", true),
                (
                    "updated_at:[2024-02-01T00:00:00Z TO 2024-02-01T00:00:00Z]",
                    true,
                ),
                ("updated_at:{2024-02-01T00:00:00Z TO *]", false),
                ("updated_at:2024-02-01", true),
            ],
        );
    }

    #[test]
    fn users_without_a_usable_date_do_not_match_date_ranges() {
        for user in [
            json!({}),
            json!({"last_login": null}),
            json!({"last_login": ""}),
            json!({"last_login": "yesterday"}),
            json!({"last_login": 1706745599999_i64}),
        ] {
            let user = obj(user);
            for q in [
                "last_login:[* TO *]",
                "last_login:[2000-01-01 TO *]",
                "last_login:2024-01-31",
            ] {
                assert!(!parse(q).matches(&user), "{q:?} against {user:?}");
            }
            assert!(parse("NOT last_login:[* TO *]").matches(&user));
        }
    }

    // --- ranges --------------------------------------------------------------------------------

    // --- wildcards ---------------------------------------------------------------------------

    #[test]
    fn prefix_wildcards_take_any_length() {
        check(
            &jane(),
            &[
                ("name:j*", true),
                ("name:J*", true),
                ("name:jane*", true),
                ("name:\"jane smith\"", true),
                ("name:jane\\ s*", true),
                ("name:john*", false),
                ("user_id:auth0*", true),
                ("user_id:auth0|*", true),
                ("user_id:AUTH0*", false),
                ("identities.connection:Username*", true),
                ("email:jane.doe@*", true),
            ],
        );
    }

    #[test]
    fn suffix_and_infix_wildcards_need_three_literal_characters() {
        check(
            &jane(),
            &[
                ("name:*smith", true),
                ("name:*ith", true),
                ("name:*SMITH", true),
                ("name:*jane", false),
                ("name:*ane*", true),
                ("name:*e\\ S*", true),
                ("name:jane*smith", true),
                ("name:jan*ith", true),
                ("name:jan*e\\ s*ith", true),
                ("name:jan*mit*ith", false),
                ("name:jan*ith*ith", false),
                ("name:jane*jones", false),
                ("nickname:jan*nie", false),
                ("name:*mith*", true),
                ("email:*@exampleco.com", true),
                ("user_id:*000004", true),
                ("user_id:*000005", false),
            ],
        );
        check_errors(&[
            ("name:*sa", "('sa' is shorter)"),
            ("name:*ab*", "('ab' is shorter)"),
            ("name:*a", "('a' is shorter)"),
            ("name:ja*smith", "('ja' is shorter)"),
            ("name:jane*sm", "('sm' is shorter)"),
            ("nickname:jan*ie", "('ie' is shorter)"),
            ("name:*", "use _exists_:field"),
            (
                "name:jane smith*",
                "the term smith* at column 11 has no field",
            ),
            ("name:**", "use _exists_:field"),
        ]);
        // `**` collapses to one star.
        check(&jane(), &[("name:jane**", true), ("name:**smith", true)]);
    }

    #[test]
    fn wildcard_does_not_let_prefix_and_suffix_overlap() {
        let user = obj(json!({"nickname": "abcab"}));
        check(
            &user,
            &[
                ("nickname:abc*cab", false),
                ("nickname:abc*", true),
                ("nickname:*cab", true),
            ],
        );
    }

    #[test]
    fn question_mark_wildcard_is_refused() {
        check_errors(&[
            ("name:jan?", "the '?' wildcard at column 9 is not supported"),
            ("name:(a OR b?c)", "the '?' wildcard at column 13"),
        ]);
        assert!(parse(r"name:jan\?").matches(&obj(json!({"name": "JAN?"}))));
        assert!(parse("name:\"jan?\"").matches(&obj(json!({"name": "jan?"}))));
    }

    // --- boolean operators ---------------------------------------------------------------------

    #[test]
    fn and_or_not_combine_clauses() {
        check(
            &jane(),
            &[
                ("name:\"jane smith\" AND email_verified:true", true),
                ("name:\"jane smith\" AND email_verified:false", false),
                ("name:nobody OR email_verified:true", true),
                ("name:nobody OR email_verified:false", false),
                ("NOT name:nobody", true),
                ("NOT name:\"jane smith\"", false),
                ("NOT NOT name:\"jane smith\"", true),
                ("name:j* AND nickname:janie AND logins_count:5", true),
                ("name:x OR nickname:y OR logins_count:5", true),
                ("name:x OR nickname:y OR logins_count:6", false),
            ],
        );
    }

    #[test]
    fn minus_prefix_negates_a_clause() {
        check(
            &jane(),
            &[
                ("-name:nobody", true),
                ("-name:\"jane smith\"", false),
                ("-app_metadata.roles:admin AND name:j*", false),
                ("name:j* AND -app_metadata.roles:viewer", true),
                ("name:x OR -app_metadata.roles:viewer", true),
                ("-(name:x OR nickname:janie)", false),
                (
                    "identities.connection:Username-Password-Authentication",
                    true,
                ),
            ],
        );
    }

    #[test]
    fn clauses_side_by_side_mean_or() {
        check(
            &jane(),
            &[
                ("name:nobody email:jane.doe@exampleco.com", true),
                ("name:nobody nickname:nobody", false),
                ("name:nobody nickname:nobody logins_count:5", true),
                ("(name:x nickname:janie) AND logins_count:5", true),
            ],
        );
    }

    #[test]
    fn not_binds_tighter_than_and_or() {
        check(
            &jane(),
            &[
                ("NOT name:nobody AND email_verified:true", true),
                ("NOT name:nobody AND email_verified:false", false),
                ("NOT name:\"jane smith\" OR logins_count:5", true),
                ("NOT (name:\"jane smith\" OR logins_count:6)", false),
                ("name:x AND NOT logins_count:5", false),
            ],
        );
    }

    #[test]
    fn parentheses_nest() {
        check(
            &jane(),
            &[
                (
                    "(name:x OR name:j*) AND (logins_count:5 AND NOT blocked:true)",
                    true,
                ),
                (
                    "((name:x OR (nickname:janie AND blocked:true)) OR logins_count:6)",
                    false,
                ),
                ("(((logins_count:5)))", true),
                (
                    "name:x OR (email_verified:true AND (app_metadata.roles:admin OR name:y))",
                    true,
                ),
            ],
        );
    }

    #[test]
    fn mixing_and_with_or_needs_parentheses() {
        check_errors(&[
            (
                "name:a AND name:b OR name:c",
                "AND (column 8) and OR (column 19) are mixed without parentheses",
            ),
            (
                "name:a OR name:b AND name:c",
                "AND (column 18) and OR (column 8) are mixed",
            ),
            (
                "name:a name:b AND name:c",
                "the clause at column 8 follows the previous one without AND or OR",
            ),
            (
                "(name:a AND name:b OR name:c)",
                "are mixed without parentheses",
            ),
            ("name:(a AND b OR c)", "are mixed without parentheses"),
        ]);
        assert!(parse("(name:a AND name:b) OR logins_count:5").matches(&jane()));
        assert!(!parse("name:a AND (name:b OR logins_count:5)").matches(&jane()));
    }

    #[test]
    fn documented_example_queries_mean_what_the_docs_say() {
        // Docs: "Search for all users that have never logged in".
        let never = parse("(NOT _exists_:logins_count OR logins_count:0)");
        assert!(never.matches(&obj(json!({"name": "a"}))));
        assert!(never.matches(&obj(json!({"logins_count": 0}))));
        assert!(!never.matches(&obj(json!({"logins_count": 3}))));
        // Docs: "Search for users without verified email".
        let unverified = parse("email_verified:false OR NOT _exists_:email_verified");
        assert!(unverified.matches(&obj(json!({"email_verified": false}))));
        assert!(unverified.matches(&obj(json!({"email": "a@b.c"}))));
        assert!(!unverified.matches(&obj(json!({"email_verified": true}))));
        // Docs: "Search for all users whose last login was in December 2017".
        for q in [
            "last_login:{2017-11 TO 2017-12]",
            "last_login:[2017-12-01 TO 2017-12-31]",
        ] {
            let december = parse(q);
            for (at, expected) in [
                ("2017-11-30T23:59:59.999Z", false),
                ("2017-12-01T00:00:00.000Z", true),
                ("2017-12-31T23:59:59.999Z", true),
                ("2018-01-01T00:00:00.000Z", false),
            ] {
                let user = obj(json!({"last_login": at}));
                assert_eq!(december.matches(&user), expected, "{q} at {at}");
            }
        }
        // Docs: the remaining examples parse.
        for q in [
            "name:*john*",
            "name:\"jane\"",
            "name:john*",
            "name:jane*smith",
            "email:(\"john@exampleco.com\" OR \"jane@exampleco.com\")",
            "user_metadata.full_name:\"John Smith\"",
            "identities.connection:\"google-oauth2\"",
            "last_login:[* TO 2017-12-31]",
            "logins_count:[100 TO 200]",
            "logins_count:[100 TO *]",
            "logins_count:{100 TO 200}",
            "logins_count:[100 TO 200}",
            "email.domain:\"exampleco.com\"",
            "updated_at:{2018-01-15 TO *]",
            "last_login:[* TO 2017-12]",
            "app_metadata.subscription.plan:\"gold\"",
            "user_metadata.addresses.city:\"Paris\"",
        ] {
            parse(q);
        }
    }

    #[test]
    fn lowercase_operators_are_terms() {
        check_errors(&[
            ("name:a and name:b", "the term and at column 8 has no field"),
            ("name:a and name:b", "operators must be written in capitals"),
            ("name:a or name:b", "the term or at column 8"),
            ("not name:b", "the term not at column 1"),
        ]);
        // Inside a value group a lowercase word is just another value (OR-ed in).
        let user = obj(json!({"nickname": "and"}));
        check(
            &user,
            &[("nickname:(x and)", true), ("nickname:(x y)", false)],
        );
    }

    #[test]
    fn field_groups_apply_the_field_to_each_value() {
        check(
            &jane(),
            &[
                (
                    "email:(\"john@exampleco.com\" OR \"jane.doe@exampleco.com\")",
                    true,
                ),
                (
                    "email:(\"john@exampleco.com\" OR \"mary@exampleco.com\")",
                    false,
                ),
                ("name:(NOT nobody)", true),
                ("name:(-nobody)", true),
                ("app_metadata.roles:(admin AND editor)", true),
                ("app_metadata.roles:(admin AND viewer)", false),
                ("app_metadata.roles:(viewer OR (admin AND editor))", true),
                ("name:(j* OR x)", true),
                ("logins_count:([1 TO 2] OR [5 TO 9])", true),
                ("logins_count:([1 TO 2] OR 4)", false),
                ("created_at:(2024-01-30 OR 2024-01-31)", true),
            ],
        );
    }

    // --- syntax errors ---------------------------------------------------------------------------

    #[test]
    fn deep_nesting_is_refused_instead_of_overflowing_the_stack() {
        let nested = |n: usize| format!("{}name:x{}", "(".repeat(n), ")".repeat(n));
        assert!(!parse(&nested(MAX_DEPTH)).matches(&jane()));
        let message = error(&nested(MAX_DEPTH + 1));
        assert!(
            message.contains("more than 64 levels deep (column 65)"),
            "{message}"
        );
        assert!(error(&nested(100_000)).contains("levels deep"));
        assert!(error(&format!("{}name:x", "NOT ".repeat(100_000))).contains("levels deep"));
        assert!(error(&format!("{}name:x", "-".repeat(100_000))).contains("levels deep"));
    }

    #[test]
    fn quoted_phone_numbers_and_timestamps_are_values() {
        let user = obj(json!({
            "phone_number": "+15551234",
            "last_ip": "2001:db8::1",
            "created_at": "2024-01-31T23:59:59.999Z"
        }));
        check(
            &user,
            &[
                ("phone_number:\"+15551234\"", true),
                ("phone_number:\\+15551234", true),
                ("last_ip:\"2001:db8::1\"", true),
                ("created_at:\"2024-01-31T23:59:59.999Z\"", true),
            ],
        );
    }

    // --- created_at_range ------------------------------------------------------------------------

    #[test]
    fn created_at_range_narrows_a_top_level_and() {
        assert_eq!(
            range("created_at:[2024-01-01 TO 2024-01-31] AND app_metadata.plan:x"),
            Some((
                inc("2024-01-01T00:00:00.000Z"),
                inc("2024-01-31T23:59:59.999Z")
            ))
        );
        assert_eq!(
            range("app_metadata.plan:x AND (name:y AND created_at:[2024-01-01 TO *])"),
            Some((inc("2024-01-01T00:00:00.000Z"), Bound::Unbounded))
        );
        assert_eq!(
            range("created_at:[2024-01-01 TO 2024-03-01} AND created_at:{2024-01-15 TO *]"),
            Some((
                inc("2024-01-16T00:00:00.000Z"),
                inc("2024-02-29T23:59:59.999Z")
            ))
        );
        assert_eq!(
            range("created_at:[2024-01-01 TO *] AND NOT created_at:[2024-02-01 TO *]"),
            Some((inc("2024-01-01T00:00:00.000Z"), Bound::Unbounded))
        );
    }

    #[test]
    fn created_at_range_normalises_exclusive_bounds_to_inclusive_milliseconds() {
        assert_eq!(
            range("created_at:{2024-01-01T00:00:00.000Z TO 2024-02-01T00:00:00.000Z}"),
            Some((
                inc("2024-01-01T00:00:00.001Z"),
                inc("2024-01-31T23:59:59.999Z")
            ))
        );
        assert_eq!(
            range("created_at:[* TO 2024-01-01T12:00:00+02:00]"),
            Some((Bound::Unbounded, inc("2024-01-01T10:00:00.000Z")))
        );
        assert_eq!(
            range("created_at:[* TO *]"),
            Some((Bound::Unbounded, Bound::Unbounded))
        );
        assert_eq!(
            range("created_at:2024-02"),
            Some((
                inc("2024-02-01T00:00:00.000Z"),
                inc("2024-02-29T23:59:59.999Z")
            ))
        );
    }

    #[test]
    fn created_at_range_is_none_when_a_branch_is_unbounded() {
        for q in [
            "created_at:[2024-01-01 TO 2024-01-31] OR app_metadata.plan:x",
            "created_at:[2024-01-01 TO 2024-01-31] name:x",
            "NOT created_at:[2024-01-01 TO 2024-01-31]",
            "-created_at:[2024-01-01 TO 2024-01-31]",
            "updated_at:[2024-01-01 TO 2024-01-31]",
            "last_login:[2024-01-01 TO *] AND logins_count:[1 TO 5]",
            "_exists_:created_at",
            "app_metadata.created_at:x",
            "name:x",
        ] {
            assert_eq!(range(q), None, "{q}");
        }
    }

    #[test]
    fn created_at_range_of_an_or_is_the_hull_of_its_branches() {
        assert_eq!(
            range("created_at:[2024-03-01 TO 2024-03-31] OR created_at:[2024-01-01 TO 2024-01-31]"),
            Some((
                inc("2024-01-01T00:00:00.000Z"),
                inc("2024-03-31T23:59:59.999Z")
            ))
        );
        assert_eq!(
            range("created_at:([2024-03-01 TO *] OR 2024-01-05)"),
            Some((inc("2024-01-05T00:00:00.000Z"), Bound::Unbounded))
        );
    }

    #[test]
    fn created_at_range_is_safe_for_btreemap_when_unsatisfiable() {
        let index: BTreeMap<String, u32> = [("2024-01-15T00:00:00.000Z".to_string(), 1)]
            .into_iter()
            .collect();
        for q in [
            "created_at:[2024-02-01 TO 2024-01-01]",
            "created_at:[2024-02-01 TO *] AND created_at:[* TO 2024-01-01]",
            "created_at:{2024-01-01T00:00:00.000Z TO 2024-01-01T00:00:00.001Z}",
            "created_at:[* TO 0000-01-01}",
            "created_at:{9999-12-31 TO *]",
        ] {
            let bounds = range(q).unwrap_or_else(|| panic!("{q}: expected a range"));
            assert_eq!(index.range(bounds).count(), 0, "{q}");
        }
    }

    #[test]
    fn created_at_range_never_excludes_a_matching_user() {
        let queries = [
            "created_at:[2024-01-01 TO 2024-01-31] AND logins_count:5",
            "created_at:{2024-01-30 TO 2024-02-01} AND name:j*",
            "created_at:[2024-01-31T23:59:59.999Z TO *] AND NOT blocked:true",
            "(created_at:2024-01 OR created_at:2023-05) AND email_verified:true",
            "created_at:[* TO 2024-01-31] AND (name:x OR name:j*)",
        ];
        let stamps = [
            "2024-01-31T23:59:59.999Z",
            "2024-01-31T00:00:00.000Z",
            "2024-02-01T00:00:00.000Z",
            "2023-05-17T12:00:00.000Z",
        ];
        for q in queries {
            let query = parse(q);
            let (lower, upper) = query.created_at_range().expect("bounded");
            for stamp in stamps {
                let mut user = jane();
                user.insert("created_at".into(), json!(stamp));
                if query.matches(&user) {
                    let s = stamp.to_string();
                    assert!(
                        (lower.as_ref(), upper.as_ref()).contains(&&s),
                        "{q} excludes {stamp}"
                    );
                }
            }
        }
    }

    // --- canonical time --------------------------------------------------------------------------
}
