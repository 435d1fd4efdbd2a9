//! Auth0's user search query language (search engine v3): parses `q` into a [`Query`].
//!
//! Shared by both ends of `GET /api/v2/users?q=...`: the CLI parses a `--query` before any
//! request, so a bad one is refused with the column in the user's own text, and the sandbox
//! parses every `q` it is sent and matches users against the result (its matcher is
//! `sandbox::query`; this module knows nothing of users). `lex` cuts the text into tokens,
//! `parse` builds the tree and refuses what Auth0 would not take.
//!
//! It implements the subset of Lucene syntax that Auth0 documents for user search v3:
//! `field:value`, quoted values, `field:(a OR b)` groups, `AND` / `OR` / `NOT` / `-`, parentheses,
//! `_exists_:field`, ranges on dates and `logins_count`, and `*` wildcards.
//!
//! Sources, named in the comments beside each rule:
//! - *Facts*: the shared Auth0 facts sheet (`AUTH0-FACTS.md`), section "GET /api/v2/users".
//! - *Docs*: auth0.com "User Search Query Syntax" (v3), "User Search" (v3, its example queries) and
//!   "Migrate from Search v2 to v3"; where the user-search pages are silent, the v3 *logs*
//!   search page ("Logs Search Query Syntax"), which describes the same engine generation.
//! - *Spec*: the OpenAPI document, whose `q` parameter links to the Lucene 2.9.4 query syntax.
//!
//! Where all of them are silent the parser takes the stricter road: it rejects the query with a
//! [`QueryError`] rather than guess at a meaning that could differ from Auth0's, and a comment
//! says so, so a query the sandbox accepts is one whose meaning those sources settle.
//!
//! Everything that can be worked out once is worked out in [`Query::parse`]: values are
//! lower-cased for the case-insensitive fields, dotted paths are split, date bounds become
//! millisecond instants (and canonical strings for a string-compare fast path), so that the
//! matcher allocates nothing on the common paths.

// Without the sandbox (`--no-default-features`) only the syntax check is used: the tree the
// parser builds is walked by the sandbox's matcher alone.
#![cfg_attr(not(feature = "sandbox"), allow(dead_code))]

mod lex;
mod parse;

use chrono::{DateTime, Utc};

#[cfg(test)]
pub(crate) use parse::MAX_DEPTH;

/// A parsed v3 query.
#[derive(Debug, Clone)]
pub struct Query {
    pub(crate) root: Node,
}

/// Why a `q` string was refused. The message goes into a 400 body, so it says what is wrong and
/// where (1-based character column in the query).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    pub message: String,
}

impl Query {
    /// Parses `q`. An empty or all-whitespace string is the match-all query.
    pub fn parse(q: &str) -> Result<Query, QueryError> {
        Ok(Query {
            root: parse::tree(q)?,
        })
    }

    /// The match-all query.
    pub fn all() -> Query {
        Query { root: Node::All }
    }
}

impl QueryError {
    pub(crate) fn new(message: String) -> QueryError {
        QueryError { message }
    }
}

/// Formats a chrono UTC time in Auth0's canonical form `2025-04-17T02:44:22.723Z`.
pub fn canonical_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

// ---------------------------------------------------------------------------------------------
// The parsed form: what the sandbox's matcher reads
// ---------------------------------------------------------------------------------------------

/// A node of the boolean query tree.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    All,
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Clause(Clause),
}

/// One `field:value` test.
#[derive(Debug, Clone)]
pub(crate) struct Clause {
    pub(crate) target: Target,
    pub(crate) test: Test,
}

/// Where a clause looks in the user object.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A dotted path, already split; arrays on the way are searched through.
    Path(Vec<String>),
    /// `email.domain`, derived from `email` (the part after the last `@`).
    EmailDomain,
}

/// What a clause checks on the values it finds.
#[derive(Debug, Clone)]
pub(crate) enum Test {
    /// `_exists_:field`: some non-null scalar is indexed under the path.
    Exists,
    /// Whole-value equality, by type: strings by text, numbers by value, booleans by value.
    Equals(Scalar),
    /// Whole-value, case-insensitive string equality; holds the lower-cased query value.
    FoldedEquals(String),
    /// A `*` pattern over a string value.
    Wildcard(Pattern),
    /// A date-time inside an inclusive millisecond span.
    DateIn(DateRange),
    /// An integer inside an inclusive range.
    IntIn { lo: i128, hi: i128 },
}

/// A query value prepared for typed comparison with JSON scalars.
#[derive(Debug, Clone)]
pub(crate) struct Scalar {
    pub(crate) text: String,
    pub(crate) number: Option<NumberTerm>,
    pub(crate) boolean: Option<bool>,
}

/// A numeric query value: exact integer when it is one, else a float.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NumberTerm {
    pub(crate) int: Option<i128>,
    pub(crate) float: f64,
}

/// A `*` pattern split at its stars: `prefix*middle*...*suffix` (prefix/suffix may be empty).
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub(crate) prefix: String,
    pub(crate) middles: Vec<String>,
    pub(crate) suffix: String,
    /// Compare case-insensitively; the literals are already lower-cased.
    pub(crate) fold: bool,
}

/// An inclusive millisecond span, with canonical strings for a string-compare fast path.
#[derive(Debug, Clone)]
pub(crate) struct DateRange {
    pub(crate) lo: Option<i64>,
    pub(crate) hi: Option<i64>,
    /// Canonical strings of `lo` / `hi`, present only when every existing bound has one.
    pub(crate) fast: Option<(Option<String>, Option<String>)>,
}

impl DateRange {
    pub(crate) fn new(lo: Option<i64>, hi: Option<i64>) -> DateRange {
        let fast = match (lo.map(canonical_ms), hi.map(canonical_ms)) {
            (Some(None), _) | (_, Some(None)) => None,
            (l, h) => Some((l.flatten(), h.flatten())),
        };
        DateRange { lo, hi, fast }
    }
}

/// True for strings shaped exactly like `2025-04-17T02:44:22.723Z`.
pub(crate) fn is_canonical(s: &str) -> bool {
    const SHAPE: &[u8; 24] = b"dddd-dd-ddTdd:dd:dd.dddZ";
    s.len() == 24
        && s.bytes().zip(SHAPE).all(|(c, &want)| match want {
            b'd' => c.is_ascii_digit(),
            _ => c == want,
        })
}

/// The canonical string for a millisecond instant, when it has the canonical shape (years
/// 0000 to 9999; outside them string comparison would not follow time order).
pub(crate) fn canonical_ms(ms: i64) -> Option<String> {
    DateTime::from_timestamp_millis(ms)
        .map(canonical_time)
        .filter(|s| is_canonical(s))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn error(q: &str) -> String {
        match Query::parse(q) {
            Ok(parsed) => panic!("query {q:?} should be refused, parsed as {parsed:?}"),
            Err(e) => e.message,
        }
    }

    /// Asserts each `(query, fragment)`: the query is refused with a message containing it.
    pub(crate) fn check_errors(cases: &[(&str, &str)]) {
        for (q, fragment) in cases {
            let message = error(q);
            assert!(
                message.contains(fragment),
                "query {q:?}: {message:?} lacks {fragment:?}"
            );
        }
    }

    #[test]
    fn query_can_be_shared_between_request_threads() {
        fn assert_send_sync<T: Send + Sync + Clone + std::fmt::Debug>() {}
        assert_send_sync::<Query>();
        assert_send_sync::<QueryError>();
    }

    #[test]
    fn metadata_refuses_wildcards_and_ranges() {
        check_errors(&[
            (
                "app_metadata.plan:fu*",
                "metadata fields have no wildcard search",
            ),
            (
                "user_metadata.addresses.city:*aris",
                "metadata fields have no wildcard search",
            ),
            (
                "app_metadata.tier:[1 TO 5]",
                "range on 'app_metadata.tier' at column 19",
            ),
            (
                "user_metadata.n:{1 TO *]",
                "ranges work on created_at, updated_at",
            ),
            (
                "app_metadata:(a* OR b)",
                "metadata fields have no wildcard search",
            ),
        ]);
    }

    #[test]
    fn malformed_dates_are_refused() {
        check_errors(&[
            (
                "created_at:[2024-13-01 TO *]",
                "'2024-13-01' at column 13 is not a valid date",
            ),
            (
                "created_at:[2024-02-30 TO *]",
                "is not a valid date for 'created_at'",
            ),
            ("created_at:[2024 TO *]", "expected YYYY-MM, YYYY-MM-DD"),
            ("created_at:[* TO 2024-01-01t00:00Z]", "is not a valid date"),
            ("created_at:[* TO 2024-01-01T00:00z]", "is not a valid date"),
            ("created_at:[24-01-01 TO *]", "is not a valid date"),
            ("created_at:[2024-01-01T25:00Z TO *]", "is not a valid date"),
            (
                "created_at:[2024-01-01T10:00:00+1:00 TO *]",
                "is not a valid date",
            ),
            (
                "created_at:[2024-01-01T10:00:00.Z TO *]",
                "is not a valid date",
            ),
            (
                "created_at:[\"2024-01-01 10:00\" TO *]",
                "is not a valid date",
            ),
            (
                "last_login:yesterday",
                "is not a valid value for 'last_login'",
            ),
            ("updated_at:2024*", "wildcards work on text fields only"),
        ]);
    }

    #[test]
    fn ranges_are_limited_to_dates_and_logins_count() {
        check_errors(&[
            (
                "name:[a TO b]",
                "range on 'name' at column 6 is not supported",
            ),
            (
                "user_id:{a TO *]",
                "ranges work on created_at, updated_at, last_login and logins_count only",
            ),
            ("email:([a TO b] OR x)", "range on 'email' at column 8"),
        ]);
    }

    #[test]
    fn range_syntax_errors_name_the_problem_and_column() {
        check_errors(&[
            (
                "logins_count:[1 to 5]",
                "expected 'TO' between the range bounds at column 17, found 'to' (it must be in capitals)",
            ),
            (
                "logins_count:[1 5]",
                "expected 'TO' between the range bounds at column 17, found '5'",
            ),
            (
                "logins_count:[1 TO]",
                "the range opened at column 14 is missing its upper bound",
            ),
            (
                "logins_count:[ TO 5]",
                "expected 'TO' between the range bounds at column 19, found '5'",
            ),
            (
                "logins_count:[]",
                "the range opened at column 14 is missing its lower bound",
            ),
            (
                "logins_count:[1 TO 5",
                "unterminated range: the range opened at column 14",
            ),
            (
                "logins_count:[1 TO",
                "unterminated range: the range opened at column 14",
            ),
            (
                "logins_count:[1",
                "unterminated range: the range opened at column 14",
            ),
            (
                "logins_count:[1 TO 5 6]",
                "expected ']' or '}' to close the range opened at column 14, found '6' at column 22",
            ),
            ("[1 TO 2]", "the range at column 1 has no field"),
            (
                "logins_count:1]",
                "unexpected ']' at column 15: no range is open",
            ),
        ]);
    }

    #[test]
    fn negated_clause_without_operator_is_refused() {
        check_errors(&[
            (
                "name:a -name:b",
                "the negated clause at column 8 is joined to its neighbour without AND or OR",
            ),
            ("name:a NOT name:b", "the negated clause at column 8"),
            ("-name:a name:b", "the negated clause at column 1"),
        ]);
    }

    #[test]
    fn syntax_errors_name_the_problem_and_column() {
        check_errors(&[
            ("(name:x", "the '(' at column 1 is never closed"),
            (
                "name:x AND (nickname:y OR (blocked:true)",
                "the '(' at column 12 is never closed",
            ),
            ("name:x)", "unexpected ')' at column 7: no '(' is open"),
            ("name:x (", "the '(' at column 8 is never closed"),
            ("name:(", "the '(' at column 6 is never closed"),
            ("name:(a OR", "OR at column 9 is not followed by a clause"),
            (")", "unexpected ')' at column 1: no clause before it"),
            (
                "name:\"abc",
                "unterminated quoted value: the '\"' at column 6 is never closed",
            ),
            ("name:\"abc\\\"", "the '\"' at column 6 is never closed"),
            ("name:x AND", "AND at column 8 is not followed by a clause"),
            ("name:x OR", "OR at column 8 is not followed by a clause"),
            (
                "name:x OR OR name:y",
                "OR at column 8 is not followed by a clause",
            ),
            (
                "(name:x AND)",
                "AND at column 9 is not followed by a clause",
            ),
            ("AND name:x", "AND at column 1 has no clause before it"),
            ("OR name:x", "OR at column 1 has no clause before it"),
            ("NOT", "NOT at column 1 is not followed by a clause"),
            (
                "name:x AND NOT",
                "NOT at column 12 is not followed by a clause",
            ),
            ("-", "- at column 1 is not followed by a clause"),
            ("name:", "field 'name' at column 1 has no value"),
            ("name:   ", "field 'name' at column 1 has no value"),
            ("name: AND x:y", "field 'name' at column 1 has no value"),
            ("(name:)", "field 'name' at column 2 has no value"),
            ("()", "empty parentheses at column 1"),
            ("name:()", "empty parentheses at column 6"),
            ("jane", "the term jane at column 1 has no field"),
            (
                "name:x \"jane\"",
                "the term \"jane\" at column 8 has no field",
            ),
            (":x", "':' at column 1 has no field name before it"),
            (
                "name:a:b",
                "unexpected ':' in the value of 'name' at column 6; quote values",
            ),
            ("name:\"\"", "empty quoted value for 'name' at column 6"),
            ("name:x\\", "the '\\' at column 7 escapes nothing"),
            ("name:x^2", "boosts ('^') are not supported (column 7)"),
            (
                "name:jhn~",
                "fuzzy searches ('~') are not supported (column 9)",
            ),
            (
                "name:/jo.*/",
                "regular expressions ('/.../') are not supported (column 6)",
            ),
            ("+name:x", "'+' at column 1 is not supported"),
            ("!name:x", "'!' at column 1 is not supported: use NOT"),
            (
                "name:x && email:y",
                "'&&' at column 8 is not supported: write AND",
            ),
            (
                "name:x || email:y",
                "'||' at column 8 is not supported: write OR",
            ),
            (
                "name:-x",
                "the value of 'name' at column 6 starts with an operator character",
            ),
            (
                "phone_number:+15551234",
                "starts with an operator character; quote it",
            ),
            (
                "name:(email:x)",
                "field 'email' at column 7 is inside the value group of 'name'",
            ),
            (
                "user_*:x",
                "wildcards in field names are not supported (field 'user_*' at column 1)",
            ),
            (
                "app_metadata..plan:x",
                "field name 'app_metadata..plan' at column 1 has an empty path segment",
            ),
            (
                "_missing_:name",
                "_missing_ (column 1) is not supported by search engine v3",
            ),
            ("_exists_:", "_exists_ at column 1 needs one field name"),
            (
                "_exists_:(name)",
                "_exists_ at column 1 needs one field name",
            ),
            ("_exists_:app*", "_exists_ at column 1 needs one field name"),
            ("*:*", "wildcards in field names are not supported"),
            ("*", "the term * at column 1 has no field"),
        ]);
    }

    #[test]
    fn error_columns_count_characters_not_bytes() {
        check_errors(&[
            (
                "name:\"ééé\" AND",
                "AND at column 12 is not followed by a clause",
            ),
            ("name:ééé)", "unexpected ')' at column 9"),
        ]);
    }

    #[test]
    fn canonical_time_has_milliseconds_and_z() {
        let t = DateTime::parse_from_rfc3339("2025-04-17T04:44:22.7239+02:00")
            .unwrap()
            .to_utc();
        assert_eq!(canonical_time(t), "2025-04-17T02:44:22.723Z");
        let whole = DateTime::from_timestamp(0, 0).unwrap();
        assert_eq!(canonical_time(whole), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn canonical_shape_check_accepts_only_the_exact_form() {
        assert!(is_canonical("2025-04-17T02:44:22.723Z"));
        for s in [
            "2025-04-17T02:44:22.72Z",
            "2025-04-17T02:44:22.723+00:00",
            "2025-04-17 02:44:22.723Z",
            "+10000-01-01T00:00:00.000Z",
            "2025-04-17T02:44:22.7230Z",
        ] {
            assert!(!is_canonical(s), "{s}");
        }
    }
}
