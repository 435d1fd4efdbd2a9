//! Auth0's user search query language (search engine v3): parses `q` and matches users.
//!
//! The sandbox answers `GET /api/v2/users?q=...&search_engine=v3` the way Auth0 does, so this
//! module implements the subset of Lucene syntax that Auth0 documents for user search v3:
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
//! millisecond instants (and canonical strings for a string-compare fast path). [`Query::matches`]
//! runs against up to a million users per request and allocates nothing on the common paths.

use std::ops::Bound;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde_json::{Map, Number, Value};

/// A parsed v3 query.
#[derive(Debug, Clone)]
pub struct Query {
    root: Node,
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
        let tokens = Lexer::new(q).tokens()?;
        if tokens.is_empty() {
            return Ok(Query::all());
        }
        let mut parser = Parser {
            src: q,
            tokens,
            next: 0,
            depth: 0,
        };
        let root = parser.sequence(Ctx::Top)?;
        if let Some(tok) = parser.peek() {
            // `sequence` stops only at the end or at a `)`; at the top level that `)` is unopened.
            return Err(QueryError::new(format!(
                "unexpected ')' at column {}: no '(' is open",
                parser.col(tok.at)
            )));
        }
        Ok(Query { root })
    }

    /// The match-all query.
    pub fn all() -> Query {
        Query { root: Node::All }
    }

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

    /// True when the query is nothing but one `created_at` range, so a user found through
    /// [`Query::created_at_range`] on a canonical `created_at` index needs no further test.
    pub fn is_created_at_range_only(&self) -> bool {
        matches!(&self.root, Node::Clause(Clause { target: Target::Path(path), test: Test::DateIn(_) })
            if path.len() == 1 && path[0] == "created_at")
    }
}

impl QueryError {
    fn new(message: String) -> QueryError {
        QueryError { message }
    }
}

/// Formats a chrono UTC time in Auth0's canonical form `2025-04-17T02:44:22.723Z`.
pub fn canonical_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

// ---------------------------------------------------------------------------------------------
// The parsed form
// ---------------------------------------------------------------------------------------------

/// A node of the boolean query tree.
#[derive(Debug, Clone)]
enum Node {
    All,
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Clause(Clause),
}

/// One `field:value` test.
#[derive(Debug, Clone)]
struct Clause {
    target: Target,
    test: Test,
}

/// Where a clause looks in the user object.
#[derive(Debug, Clone)]
enum Target {
    /// A dotted path, already split; arrays on the way are searched through.
    Path(Vec<String>),
    /// `email.domain`, derived from `email` (the part after the last `@`).
    EmailDomain,
}

/// What a clause checks on the values it finds.
#[derive(Debug, Clone)]
enum Test {
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
struct Scalar {
    text: String,
    number: Option<NumberTerm>,
    boolean: Option<bool>,
}

/// A numeric query value: exact integer when it is one, else a float.
#[derive(Debug, Clone, Copy)]
struct NumberTerm {
    int: Option<i128>,
    float: f64,
}

/// A `*` pattern split at its stars: `prefix*middle*...*suffix` (prefix/suffix may be empty).
#[derive(Debug, Clone)]
struct Pattern {
    prefix: String,
    middles: Vec<String>,
    suffix: String,
    /// Compare case-insensitively; the literals are already lower-cased.
    fold: bool,
}

/// An inclusive millisecond span, with canonical strings for a string-compare fast path.
#[derive(Debug, Clone)]
struct DateRange {
    lo: Option<i64>,
    hi: Option<i64>,
    /// Canonical strings of `lo` / `hi`, present only when every existing bound has one.
    fast: Option<(Option<String>, Option<String>)>,
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
    fn new(lo: Option<i64>, hi: Option<i64>) -> DateRange {
        let fast = match (lo.map(canonical_ms), hi.map(canonical_ms)) {
            (Some(None), _) | (_, Some(None)) => None,
            (l, h) => Some((l.flatten(), h.flatten())),
        };
        DateRange { lo, hi, fast }
    }

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

/// True for strings shaped exactly like `2025-04-17T02:44:22.723Z`.
fn is_canonical(s: &str) -> bool {
    const SHAPE: &[u8; 24] = b"dddd-dd-ddTdd:dd:dd.dddZ";
    s.len() == 24
        && s.bytes().zip(SHAPE).all(|(c, &want)| match want {
            b'd' => c.is_ascii_digit(),
            _ => c == want,
        })
}

/// The canonical string for a millisecond instant, when it has the canonical shape (years
/// 0000 to 9999; outside them string comparison would not follow time order).
fn canonical_ms(ms: i64) -> Option<String> {
    DateTime::from_timestamp_millis(ms)
        .map(canonical_time)
        .filter(|s| is_canonical(s))
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

// ---------------------------------------------------------------------------------------------
// Fields
// ---------------------------------------------------------------------------------------------

/// How a field's values are indexed, which decides the tests allowed on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Docs: `created_at`, `updated_at`, `last_login` are "date time".
    Date,
    /// Docs: `logins_count` is "integer".
    Integer,
    /// Docs: `email_verified`, `phone_verified`, `blocked` are booleans.
    Boolean,
    /// Facts/Docs: `email`, `name`, `given_name`, `family_name`, `nickname` are case-insensitive.
    Folded,
    /// `app_metadata.*` / `user_metadata.*`: exact, case-sensitive, no ranges or wildcards.
    Metadata,
    /// Any other path (`user_id`, `identities.connection`, `email.domain`, ...): case-sensitive.
    Text,
}

/// A field named in the query, resolved once.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    kind: Kind,
    target: Target,
}

impl Field {
    fn new(name: String) -> Field {
        let kind = match name.as_str() {
            "created_at" | "updated_at" | "last_login" => Kind::Date,
            "logins_count" => Kind::Integer,
            "email_verified" | "phone_verified" | "blocked" => Kind::Boolean,
            "email" | "name" | "given_name" | "family_name" | "nickname" => Kind::Folded,
            n if is_metadata(n) => Kind::Metadata,
            _ => Kind::Text,
        };
        // Docs: `email.domain` is "the domain part of the user's email". Docs: only the five
        // normalized fields are case-insensitive and "all other fields" are case-sensitive, so
        // the derived domain is compared case-sensitively (database emails are stored
        // lower-cased anyway, Facts).
        let target = if name == "email.domain" {
            Target::EmailDomain
        } else {
            Target::Path(name.split('.').map(str::to_string).collect())
        };
        Field { name, kind, target }
    }

    fn clause(&self, test: Test) -> Node {
        Node::Clause(Clause {
            target: self.target.clone(),
            test,
        })
    }
}

fn is_metadata(name: &str) -> bool {
    ["app_metadata", "user_metadata"].iter().any(|root| {
        name.strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    })
}

// ---------------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------------

/// A token and the byte offset where it starts.
#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    at: usize,
}

#[derive(Debug, Clone)]
enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Not,
    /// `-` in front of a clause.
    Minus,
    /// `+` in front of a clause (Lucene's "required"); refused by the parser.
    Plus,
    /// `!` in front of a clause (Lucene's alternative NOT); refused by the parser.
    Bang,
    /// `name:`; `name` is unescaped.
    Field(String),
    /// An unquoted value, split at its unescaped `*` (one piece when there is no wildcard).
    Word {
        pieces: Vec<String>,
        raw: String,
    },
    /// A double-quoted value, unescaped.
    Quoted(String),
    Range(RangeTok),
}

/// `[lo TO hi}` and friends, bounds still as text.
#[derive(Debug, Clone)]
struct RangeTok {
    lo: RangeEnd,
    hi: RangeEnd,
    lo_inclusive: bool,
    hi_inclusive: bool,
}

#[derive(Debug, Clone)]
enum RangeEnd {
    /// `*`: the range is open at this end.
    Open,
    Value {
        text: String,
        at: usize,
    },
}

/// Characters that end an unquoted word.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '{' | '}' | '"' | ':')
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Self {
        Lexer { src, pos: 0 }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn col(&self, at: usize) -> usize {
        column(self.src, at)
    }

    fn tokens(mut self) -> Result<Vec<Token>, QueryError> {
        let mut out = Vec::new();
        loop {
            self.skip_ws();
            let at = self.pos;
            let Some(c) = self.peek() else { return Ok(out) };
            let kind = match c {
                '(' | ')' | '-' | '+' | '!' => {
                    self.bump();
                    match c {
                        '(' => Tok::LParen,
                        ')' => Tok::RParen,
                        '-' => Tok::Minus,
                        '+' => Tok::Plus,
                        _ => Tok::Bang,
                    }
                }
                '"' => Tok::Quoted(self.quoted()?),
                '[' | '{' => Tok::Range(self.range()?),
                ']' | '}' => {
                    return Err(QueryError::new(format!(
                        "unexpected '{c}' at column {}: no range is open",
                        self.col(at)
                    )));
                }
                ':' => {
                    return Err(QueryError::new(format!(
                        "':' at column {} has no field name before it",
                        self.col(at)
                    )));
                }
                _ => self.word()?,
            };
            out.push(Token { kind, at });
        }
    }

    /// A double-quoted value; `\"` and `\\` (any `\x`) are escapes.
    fn quoted(&mut self) -> Result<String, QueryError> {
        let open = self.pos;
        self.bump();
        let mut text = String::new();
        loop {
            match self.bump() {
                Some('"') => return Ok(text),
                Some('\\') => match self.bump() {
                    Some(c) => text.push(c),
                    None => break,
                },
                Some(c) => text.push(c),
                None => break,
            }
        }
        Err(QueryError::new(format!(
            "unterminated quoted value: the '\"' at column {} is never closed",
            self.col(open)
        )))
    }

    /// An unquoted word: an operator, a `field:` or a value.
    fn word(&mut self) -> Result<Tok, QueryError> {
        let start = self.pos;
        let mut pieces = vec![String::new()];
        while let Some(c) = self.peek() {
            if ends_word(c) {
                break;
            }
            let at = self.pos;
            self.bump();
            match c {
                // Docs: escape special characters, e.g. `name:John\ Doe` for a space.
                '\\' => match self.bump() {
                    Some(escaped) => pieces.last_mut().expect("one piece").push(escaped),
                    None => {
                        return Err(QueryError::new(format!(
                            "the '\\' at column {} escapes nothing: the query ends after it",
                            self.col(at)
                        )));
                    }
                },
                '*' => pieces.push(String::new()),
                // Docs (v3 logs search): "The question mark character (?), is currently not
                // supported". The user-search page is silent, so the stricter reading applies.
                '?' => {
                    return Err(QueryError::new(format!(
                        "the '?' wildcard at column {} is not supported by search engine v3; \
                         use '*', or escape it as '\\?' to search for a literal '?'",
                        self.col(at)
                    )));
                }
                // Lucene boosts, fuzzy/proximity searches and regular expressions: not in
                // Auth0's v3 documentation, so refused (stricter).
                '^' | '~' => {
                    let what = if c == '^' {
                        "boosts ('^')"
                    } else {
                        "fuzzy searches ('~')"
                    };
                    return Err(QueryError::new(format!(
                        "{what} are not supported (column {}); escape the character with '\\' \
                         or quote the value",
                        self.col(at)
                    )));
                }
                '/' if at == start => {
                    return Err(QueryError::new(format!(
                        "regular expressions ('/.../') are not supported (column {}); quote the \
                         value to search for a literal '/'",
                        self.col(at)
                    )));
                }
                _ => pieces.last_mut().expect("one piece").push(c),
            }
        }
        let raw = &self.src[start..self.pos];
        if self.peek() == Some(':') {
            self.bump();
            return self.field(start, raw, pieces);
        }
        // Lucene's `&&` / `||` spellings are not in Auth0's docs: refused (stricter).
        if raw == "&&" || raw == "||" {
            let op = if raw == "&&" { "AND" } else { "OR" };
            return Err(QueryError::new(format!(
                "'{raw}' at column {} is not supported: write {op}",
                self.col(start)
            )));
        }
        // Facts/Docs: operators are AND, OR, NOT in capitals; `and` is an ordinary term.
        Ok(match raw {
            "AND" => Tok::And,
            "OR" => Tok::Or,
            "NOT" => Tok::Not,
            _ => Tok::Word {
                pieces,
                raw: raw.to_string(),
            },
        })
    }

    /// Validates the name of a `field:`.
    fn field(&self, start: usize, raw: &str, pieces: Vec<String>) -> Result<Tok, QueryError> {
        let col = self.col(start);
        if pieces.len() > 1 {
            return Err(QueryError::new(format!(
                "wildcards in field names are not supported (field '{raw}' at column {col})"
            )));
        }
        let name = pieces.into_iter().next().expect("one piece");
        if name.split('.').any(str::is_empty) {
            return Err(QueryError::new(format!(
                "field name '{raw}' at column {col} has an empty path segment"
            )));
        }
        Ok(Tok::Field(name))
    }

    /// A range `[lo TO hi]`; either bracket may be `{`/`}` for an exclusive end.
    fn range(&mut self) -> Result<RangeTok, QueryError> {
        let open = self.pos;
        let lo_inclusive = self.bump() == Some('[');
        let unterminated = |lexer: &Self| {
            QueryError::new(format!(
                "unterminated range: the range opened at column {} has no closing ']' or '}}'",
                lexer.col(open)
            ))
        };
        self.skip_ws();
        let lo = self.range_end()?.ok_or_else(|| {
            QueryError::new(format!(
                "the range opened at column {} is missing its lower bound (use '*' for none)",
                self.col(open)
            ))
        })?;
        self.skip_ws();
        let to_at = self.pos;
        let to = self.range_run();
        if to != "TO" {
            if self.peek().is_none() && to.is_empty() {
                return Err(unterminated(self));
            }
            let found = if to.is_empty() {
                "nothing".to_string()
            } else {
                format!("'{to}'")
            };
            let hint = if to.eq_ignore_ascii_case("TO") {
                " (it must be in capitals)"
            } else {
                ""
            };
            return Err(QueryError::new(format!(
                "expected 'TO' between the range bounds at column {}, found {found}{hint}",
                self.col(to_at)
            )));
        }
        self.skip_ws();
        let hi = self.range_end()?.ok_or_else(|| {
            if self.peek().is_none() {
                unterminated(self)
            } else {
                QueryError::new(format!(
                    "the range opened at column {} is missing its upper bound (use '*' for none)",
                    self.col(open)
                ))
            }
        })?;
        self.skip_ws();
        let close_at = self.pos;
        let hi_inclusive = match self.bump() {
            Some(']') => true,
            Some('}') => false,
            None => return Err(unterminated(self)),
            Some(c) => {
                return Err(QueryError::new(format!(
                    "expected ']' or '}}' to close the range opened at column {}, found '{c}' \
                     at column {}",
                    self.col(open),
                    self.col(close_at)
                )));
            }
        };
        Ok(RangeTok {
            lo,
            hi,
            lo_inclusive,
            hi_inclusive,
        })
    }

    /// One range bound: `*`, a quoted value or a run of characters; `None` when absent.
    fn range_end(&mut self) -> Result<Option<RangeEnd>, QueryError> {
        let at = self.pos;
        if self.peek() == Some('"') {
            let text = self.quoted()?;
            return Ok(Some(RangeEnd::Value { text, at }));
        }
        let text = self.range_run();
        Ok(match text {
            "" => None,
            "*" => Some(RangeEnd::Open),
            _ => Some(RangeEnd::Value {
                text: text.to_string(),
                at,
            }),
        })
    }

    /// Characters up to whitespace or a closing bracket (inside ranges ':' and '+' are data).
    fn range_run(&mut self) -> &'a str {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| !c.is_whitespace() && !matches!(c, ']' | '}'))
        {
            self.bump();
        }
        &self.src[start..self.pos]
    }
}

/// The 1-based character column of byte offset `at`.
fn column(src: &str, at: usize) -> usize {
    src[..at].chars().count() + 1
}

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

/// Whether clauses are free-standing or values inside `field:( ... )`.
#[derive(Clone, Copy)]
enum Ctx<'f> {
    Top,
    Group(&'f Field),
}

/// How two neighbouring clauses are joined.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Join {
    And,
    Or,
    /// Nothing between them. Spec: `q` is "Lucene query string syntax" (linking the Lucene
    /// 2.9.4 syntax page), where "the OR operator is the default conjunction operator"; the
    /// Auth0 docs name no other default, so two clauses side by side mean OR.
    Implicit,
}

/// A clause of a sequence: the node, whether it starts with NOT/-, and where it starts.
struct Item {
    node: Node,
    negated: bool,
    at: usize,
}

/// How deep parentheses and NOTs may nest.
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    next: usize,
    /// Current nesting of parentheses and NOTs.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn bump(&mut self) -> Option<Token> {
        let tok = self.tokens.get(self.next).cloned();
        self.next += 1;
        tok
    }

    fn col(&self, at: usize) -> usize {
        column(self.src, at)
    }

    /// Clauses joined by operators, up to the end of the query or a `)`.
    ///
    /// Docs: the examples `email_verified:false OR NOT _exists_:email_verified` ("users without
    /// verified email") and `(NOT _exists_:logins_count OR logins_count:0)` ("never logged
    /// in") only mean what they say when NOT negates just the clause after it and OR/AND are
    /// plain boolean operators, so that is how they are evaluated.
    ///
    /// Two combinations are refused because Lucene's classic parser gives them a meaning that
    /// differs from the boolean reading, and Auth0's docs do not say which one applies
    /// (stricter):
    /// - AND mixed with OR (or with side-by-side clauses) at one level: Lucene's classic parser
    ///   reads `a AND b OR c` as "a and b" and `a OR b AND c` as "b and c", not by precedence;
    /// - a negated clause joined without an operator: Lucene reads `a -b` as "a and not b",
    ///   while side-by-side clauses otherwise mean OR.
    fn sequence(&mut self, ctx: Ctx<'_>) -> Result<Node, QueryError> {
        let mut items = vec![self.unary(ctx, None)?];
        let mut joins: Vec<(Join, usize)> = Vec::new();
        while let Some(tok) = self.peek() {
            let at = tok.at;
            let join = match tok.kind {
                Tok::RParen => break,
                Tok::And => Join::And,
                Tok::Or => Join::Or,
                _ => Join::Implicit,
            };
            if join != Join::Implicit {
                self.bump();
            }
            let after = match join {
                Join::And => Some(("AND", at)),
                Join::Or => Some(("OR", at)),
                Join::Implicit => None,
            };
            items.push(self.unary(ctx, after)?);
            joins.push((join, at));
        }
        self.check_joins(&items, &joins)?;
        let mut nodes: Vec<Node> = items.into_iter().map(|item| item.node).collect();
        Ok(match nodes.len() {
            1 => nodes.pop().expect("one node"),
            _ if joins.iter().all(|(join, _)| *join == Join::And) => Node::And(nodes),
            _ => Node::Or(nodes),
        })
    }

    /// Refuses the ambiguous mixes described on [`Parser::sequence`].
    fn check_joins(&self, items: &[Item], joins: &[(Join, usize)]) -> Result<(), QueryError> {
        let first =
            |want: fn(Join) -> bool| joins.iter().find(|(j, _)| want(*j)).map(|(_, at)| *at);
        if let (Some(and), Some(or)) = (first(|j| j == Join::And), first(|j| j == Join::Or)) {
            return Err(QueryError::new(format!(
                "AND (column {}) and OR (column {}) are mixed without parentheses; Lucene \
                 does not give AND precedence over OR and Auth0 documents no precedence, so \
                 group the clauses explicitly, e.g. (a AND b) OR c",
                self.col(and),
                self.col(or)
            )));
        }
        if let (Some(and), Some(side)) = (first(|j| j == Join::And), first(|j| j == Join::Implicit))
        {
            return Err(QueryError::new(format!(
                "the clause at column {} follows the previous one without AND or OR (which \
                 means OR) in a group that also uses AND (column {}); write the operator and \
                 add parentheses",
                self.col(side),
                self.col(and)
            )));
        }
        for (i, (join, _)) in joins.iter().enumerate() {
            let (left, right) = (&items[i], &items[i + 1]);
            if *join == Join::Implicit && (left.negated || right.negated) {
                let negated = if right.negated { right } else { left };
                return Err(QueryError::new(format!(
                    "the negated clause at column {} is joined to its neighbour without AND \
                     or OR; Lucene reads 'a -b' as 'a AND NOT b', so write AND NOT or OR NOT \
                     explicitly",
                    self.col(negated.at)
                )));
            }
        }
        Ok(())
    }

    /// `NOT clause`, `-clause` or a plain clause. `after` names the operator just consumed,
    /// for the message when no clause follows it.
    fn unary(&mut self, ctx: Ctx<'_>, after: Option<(&str, usize)>) -> Result<Item, QueryError> {
        let Some(tok) = self.peek() else {
            return Err(self.missing_clause(after));
        };
        let at = tok.at;
        match tok.kind {
            // Facts: NOT (in capitals). Spec (Lucene syntax): `-` prohibits the clause after it,
            // which is NOT.
            Tok::Not | Tok::Minus => {
                let op = if matches!(tok.kind, Tok::Not) {
                    "NOT"
                } else {
                    "-"
                };
                self.bump();
                let inner = self.nested(at, |p| p.unary(ctx, Some((op, at))))?;
                Ok(Item {
                    node: Node::Not(Box::new(inner.node)),
                    negated: true,
                    at,
                })
            }
            // Lucene's `+` (required) has no plain boolean meaning next to OR, and Auth0's docs
            // only name AND, OR and NOT: refused (stricter).
            Tok::Plus => Err(QueryError::new(format!(
                "'+' at column {} is not supported: join required clauses with AND (to search \
                 for a value starting with '+', quote it)",
                self.col(at)
            ))),
            Tok::Bang => Err(QueryError::new(format!(
                "'!' at column {} is not supported: use NOT",
                self.col(at)
            ))),
            _ => Ok(Item {
                node: self.primary(ctx, after)?,
                negated: false,
                at,
            }),
        }
    }

    /// Runs `parse` one nesting level deeper. Not an Auth0 rule: a guard that keeps this
    /// recursive parser (and the matcher) far from the stack limit on hostile input.
    fn nested<T>(
        &mut self,
        at: usize,
        parse: impl FnOnce(&mut Self) -> Result<T, QueryError>,
    ) -> Result<T, QueryError> {
        if self.depth == MAX_DEPTH {
            return Err(QueryError::new(format!(
                "the query nests parentheses or NOT more than {MAX_DEPTH} levels deep (column {})",
                self.col(at)
            )));
        }
        self.depth += 1;
        let result = parse(self);
        self.depth -= 1;
        result
    }

    fn missing_clause(&self, after: Option<(&str, usize)>) -> QueryError {
        let what = match after {
            Some((op, at)) => format!(
                "{op} at column {} is not followed by a clause",
                self.col(at)
            ),
            None => "the query ends where a clause was expected".to_string(),
        };
        QueryError { message: what }
    }

    /// A parenthesised group, a `field:value` clause, or (inside a field group) a value.
    fn primary(&mut self, ctx: Ctx<'_>, after: Option<(&str, usize)>) -> Result<Node, QueryError> {
        let tok = self.bump().ok_or_else(|| self.missing_clause(after))?;
        let at = tok.at;
        match tok.kind {
            Tok::LParen => self.group(ctx, at),
            Tok::RParen => Err(match after {
                Some(_) => self.missing_clause(after),
                None => QueryError::new(format!(
                    "unexpected ')' at column {}: no clause before it",
                    self.col(at)
                )),
            }),
            Tok::And | Tok::Or => {
                let op = if matches!(tok.kind, Tok::And) {
                    "AND"
                } else {
                    "OR"
                };
                Err(match after {
                    Some(_) => self.missing_clause(after),
                    None => QueryError::new(format!(
                        "{op} at column {} has no clause before it",
                        self.col(at)
                    )),
                })
            }
            Tok::Field(name) => match ctx {
                Ctx::Top => self.field_value(name, at),
                Ctx::Group(field) => Err(QueryError::new(format!(
                    "field '{name}' at column {} is inside the value group of '{}'; a \
                     group holds values only, e.g. name:(jane OR john)",
                    self.col(at),
                    field.name
                ))),
            },
            Tok::Word { pieces, raw } => match ctx {
                Ctx::Group(field) => self.word_clause(field, pieces, &raw, at),
                Ctx::Top => Err(self.bare_term(&raw, at)),
            },
            Tok::Quoted(text) => match ctx {
                Ctx::Group(field) => self.quoted_clause(field, text, at),
                Ctx::Top => Err(self.bare_term(&format!("\"{text}\""), at)),
            },
            Tok::Range(range) => match ctx {
                Ctx::Group(field) => self.range_clause(field, range, at),
                Ctx::Top => Err(QueryError::new(format!(
                    "the range at column {} has no field, e.g. logins_count:[1 TO 5]",
                    self.col(at)
                ))),
            },
            Tok::Not | Tok::Minus | Tok::Plus | Tok::Bang => {
                unreachable!("unary handles prefix operators")
            }
        }
    }

    /// Docs: "A term without a field name will not match text in the user metadata fields",
    /// but nowhere say which fields it does search; refused (stricter).
    fn bare_term(&self, text: &str, at: usize) -> QueryError {
        let hint = if ["and", "or", "not"].contains(&text.to_ascii_lowercase().as_str()) {
            " (operators must be written in capitals: AND, OR, NOT)"
        } else {
            ""
        };
        QueryError::new(format!(
            "the term {text} at column {} has no field; write field:value, e.g. \
             email:\"jane@example.com\"{hint}",
            self.col(at)
        ))
    }

    /// `( ... )` after its `(` at `open`.
    fn group(&mut self, ctx: Ctx<'_>, open: usize) -> Result<Node, QueryError> {
        match self.peek() {
            Some(Token {
                kind: Tok::RParen, ..
            }) => {
                return Err(QueryError::new(format!(
                    "empty parentheses at column {}",
                    self.col(open)
                )));
            }
            None => return Err(self.unclosed(open)),
            Some(_) => {}
        }
        let node = self.nested(open, |p| p.sequence(ctx))?;
        match self.bump() {
            Some(Token {
                kind: Tok::RParen, ..
            }) => Ok(node),
            _ => Err(self.unclosed(open)),
        }
    }

    fn unclosed(&self, open: usize) -> QueryError {
        QueryError::new(format!(
            "the '(' at column {} is never closed",
            self.col(open)
        ))
    }

    /// What follows `name:`.
    fn field_value(&mut self, name: String, at: usize) -> Result<Node, QueryError> {
        // Facts: `_exists_:field`.
        if name == "_exists_" {
            return self.exists(at);
        }
        // Docs (v3 examples) replace v2's `_missing_:f` with `NOT _exists_:f`.
        if name == "_missing_" {
            return Err(QueryError::new(format!(
                "_missing_ (column {}) is not supported by search engine v3; use NOT \
                 _exists_:field",
                self.col(at)
            )));
        }
        let field = Field::new(name);
        let no_value = |p: &Self| {
            QueryError::new(format!(
                "field '{}' at column {} has no value",
                field.name,
                p.col(at)
            ))
        };
        let Some(tok) = self.bump() else {
            return Err(no_value(self));
        };
        let value_at = tok.at;
        match tok.kind {
            Tok::LParen => self.group(Ctx::Group(&field), value_at),
            Tok::Word { pieces, raw } => self.word_clause(&field, pieces, &raw, value_at),
            Tok::Quoted(text) => self.quoted_clause(&field, text, value_at),
            Tok::Range(range) => self.range_clause(&field, range, value_at),
            Tok::Field(_) => Err(QueryError::new(format!(
                "unexpected ':' in the value of '{}' at column {}; quote values that contain \
                 ':'",
                field.name,
                self.col(value_at)
            ))),
            // Lucene needs a value's leading '-' or '+' escaped or quoted.
            Tok::Minus | Tok::Plus | Tok::Bang => Err(QueryError::new(format!(
                "the value of '{}' at column {} starts with an operator character; quote \
                 it, e.g. {}:\"-5\"",
                field.name,
                self.col(value_at),
                field.name
            ))),
            Tok::RParen | Tok::And | Tok::Or | Tok::Not => Err(no_value(self)),
        }
    }

    /// `_exists_:field`, after the `_exists_:`.
    fn exists(&mut self, at: usize) -> Result<Node, QueryError> {
        let name = match self.bump() {
            Some(Token {
                kind: Tok::Word { mut pieces, .. },
                ..
            }) if pieces.len() == 1 => pieces.pop().expect("one piece"),
            Some(Token {
                kind: Tok::Quoted(text),
                ..
            }) => text,
            _ => {
                return Err(QueryError::new(format!(
                    "_exists_ at column {} needs one field name, e.g. _exists_:app_metadata.plan",
                    self.col(at)
                )));
            }
        };
        if name.is_empty() || name.split('.').any(str::is_empty) {
            return Err(QueryError::new(format!(
                "_exists_ at column {} names an invalid field '{name}'",
                self.col(at)
            )));
        }
        Ok(Field::new(name).clause(Test::Exists))
    }

    /// An unquoted value for `field`: a plain term or a `*` pattern.
    fn word_clause(
        &self,
        field: &Field,
        pieces: Vec<String>,
        raw: &str,
        at: usize,
    ) -> Result<Node, QueryError> {
        if pieces.len() == 1 {
            let text = pieces.into_iter().next().expect("one piece");
            return self.term_clause(field, text, at);
        }
        let refuse = |why: &str| {
            QueryError::new(format!(
                "wildcard '{raw}' at column {} is not allowed on '{}': {why}",
                self.col(at),
                field.name
            ))
        };
        match field.kind {
            // Facts/Docs: "Range and wildcard searches are not available on user metadata".
            Kind::Metadata => Err(refuse("metadata fields have no wildcard search")),
            // Not documented for non-text fields; refused (stricter).
            Kind::Date | Kind::Integer | Kind::Boolean => Err(refuse(
                "wildcards work on text fields only (use a range for dates and logins_count)",
            )),
            Kind::Folded | Kind::Text => {
                let pattern = wildcard_pattern(pieces, field.kind == Kind::Folded)
                    .map_err(|why| refuse(&why))?;
                Ok(field.clause(Test::Wildcard(pattern)))
            }
        }
    }

    /// A quoted value: never a wildcard. Docs: "To find exact matches, use double quotes".
    fn quoted_clause(&self, field: &Field, text: String, at: usize) -> Result<Node, QueryError> {
        if text.is_empty() {
            // An empty phrase searches for nothing in Lucene; refused (stricter).
            return Err(QueryError::new(format!(
                "empty quoted value for '{}' at column {}",
                field.name,
                self.col(at)
            )));
        }
        self.term_clause(field, text, at)
    }

    /// A whole-value term. Docs (v2 to v3 migration): "fields match the whole value that is
    /// provided and are not tokenized", e.g. `user_id:auth0` does not match `auth0|12345`.
    fn term_clause(&self, field: &Field, text: String, at: usize) -> Result<Node, QueryError> {
        let refuse = |expected: &str| {
            QueryError::new(format!(
                "'{text}' at column {} is not a valid value for '{}': expected {expected}",
                self.col(at),
                field.name
            ))
        };
        let test = match field.kind {
            // A date term means its own span, like `[d TO d]`: a day for `2024-01-31`, one
            // millisecond for a full timestamp.
            Kind::Date => {
                let span = parse_date(&text).ok_or_else(|| refuse(DATE_FORMS))?;
                Test::DateIn(DateRange::new(Some(span.first), Some(span.last)))
            }
            Kind::Integer => {
                let n: i64 = text.parse().map_err(|_| refuse("an integer"))?;
                Test::IntIn {
                    lo: n.into(),
                    hi: n.into(),
                }
            }
            // Not documented beyond "boolean"; anything but true/false is refused (stricter).
            Kind::Boolean => match text.as_str() {
                "true" | "false" => Test::Equals(Scalar::new(text)),
                _ => return Err(refuse("true or false")),
            },
            Kind::Folded => Test::FoldedEquals(text.to_lowercase()),
            Kind::Metadata | Kind::Text => Test::Equals(Scalar::new(text)),
        };
        Ok(field.clause(test))
    }

    /// `field:[lo TO hi]`.
    fn range_clause(&self, field: &Field, range: RangeTok, at: usize) -> Result<Node, QueryError> {
        match field.kind {
            Kind::Date => {
                let lo = self.date_end(field, &range.lo, Side::Lower(range.lo_inclusive))?;
                let hi = self.date_end(field, &range.hi, Side::Upper(range.hi_inclusive))?;
                Ok(field.clause(Test::DateIn(DateRange::new(lo, hi))))
            }
            Kind::Integer => {
                let lo = self
                    .int_end(field, &range.lo)?
                    .map(|n| if range.lo_inclusive { n } else { n + 1 });
                let hi = self
                    .int_end(field, &range.hi)?
                    .map(|n| if range.hi_inclusive { n } else { n - 1 });
                Ok(field.clause(Test::IntIn {
                    lo: lo.unwrap_or(i128::MIN),
                    hi: hi.unwrap_or(i128::MAX),
                }))
            }
            // Facts: ranges on created_at, updated_at, last_login, logins_count; Facts/Docs: none
            // on metadata. Other fields are not documented, so refused (stricter).
            _ => Err(QueryError::new(format!(
                "range on '{}' at column {} is not supported: ranges work on created_at, \
                 updated_at, last_login and logins_count only",
                field.name,
                self.col(at)
            ))),
        }
    }

    /// One end of a date range as an inclusive millisecond bound (`None` when open).
    ///
    /// Brief, matching the docs' examples (`last_login:[* TO 2017-12-31]` is "logged in before
    /// 2018", `last_login:{2017-11 TO 2017-12]` is "last login in December 2017"): a date
    /// without a time covers its whole day (or month). An inclusive upper bound reaches the
    /// end of it and an exclusive lower bound starts after it; the other two start at its
    /// first millisecond. A timestamp is a single instant (missing seconds and milliseconds
    /// are zero, Docs: v3 logs search's date conversion table).
    fn date_end(
        &self,
        field: &Field,
        end: &RangeEnd,
        side: Side,
    ) -> Result<Option<i64>, QueryError> {
        let RangeEnd::Value { text, at } = end else {
            return Ok(None);
        };
        let span = parse_date(text).ok_or_else(|| {
            QueryError::new(format!(
                "'{text}' at column {} is not a valid date for '{}': expected {DATE_FORMS}",
                self.col(*at),
                field.name
            ))
        })?;
        Ok(Some(match side {
            Side::Lower(true) => span.first,
            Side::Lower(false) => span.last + 1,
            Side::Upper(true) => span.last,
            Side::Upper(false) => span.first - 1,
        }))
    }

    fn int_end(&self, field: &Field, end: &RangeEnd) -> Result<Option<i128>, QueryError> {
        let RangeEnd::Value { text, at } = end else {
            return Ok(None);
        };
        let n: i64 = text.parse().map_err(|_| {
            QueryError::new(format!(
                "'{text}' at column {} is not a valid bound for '{}': expected an integer or '*'",
                self.col(*at),
                field.name
            ))
        })?;
        Ok(Some(n.into()))
    }
}

/// Which end of a range a bound is, and whether it is inclusive.
#[derive(Clone, Copy)]
enum Side {
    Lower(bool),
    Upper(bool),
}

impl Scalar {
    fn new(text: String) -> Scalar {
        let boolean = match text.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        };
        let number = parse_number(&text);
        Scalar {
            text,
            number,
            boolean,
        }
    }
}

/// A query term read as a JSON-style number (`-12`, `3.5`, `1e3`); `inf`, `0x10` and the like
/// are not numbers.
fn parse_number(text: &str) -> Option<NumberTerm> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match digits.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['+', '-']).unwrap_or(e))),
        None => (digits, None),
    };
    let (int_part, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int_part) || !frac.is_none_or(all_digits) || !exponent.is_none_or(all_digits) {
        return None;
    }
    let float: f64 = text.parse().ok()?;
    let int = if frac.is_none() && exponent.is_none() {
        text.parse().ok()
    } else {
        None
    };
    Some(NumberTerm { int, float })
}

/// Builds a `*` pattern from the pieces between stars, enforcing Auth0's rule.
///
/// Docs (v2 to v3 migration): "Wildcards can be used for prefix matching, for example
/// `name:j*`. For other uses of wildcards (e.g. suffix matching), literals must have 3
/// characters or more. For example, `name:*usa` is allowed, but `name:*sa` is not", and
/// `name:*ab*` is listed as not supported. So a single trailing `*` takes any prefix of at
/// least one character; every other pattern needs each literal part to be 3+ characters.
fn wildcard_pattern(pieces: Vec<String>, fold: bool) -> Result<Pattern, String> {
    let starts_with_star = pieces.first().is_some_and(String::is_empty);
    let ends_with_star = pieces.last().is_some_and(String::is_empty);
    let mut literals: Vec<String> = pieces
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|p| if fold { p.to_lowercase() } else { p })
        .collect();
    if literals.is_empty() {
        // A lone `*` is Lucene's "field has any value"; Auth0 documents `_exists_` for that.
        return Err(
            "a pattern needs literal characters; use _exists_:field to find any value".into(),
        );
    }
    let prefix_search = !starts_with_star && ends_with_star && literals.len() == 1;
    if !prefix_search && let Some(short) = literals.iter().find(|l| l.chars().count() < 3) {
        return Err(format!(
            "except in a plain prefix search such as j*, every literal part of a wildcard needs \
             at least 3 characters ('{short}' is shorter)"
        ));
    }
    let prefix = if starts_with_star {
        String::new()
    } else {
        literals.remove(0)
    };
    let suffix = match literals.pop() {
        Some(last) if !ends_with_star => last,
        Some(last) => {
            literals.push(last);
            String::new()
        }
        None => String::new(),
    };
    Ok(Pattern {
        prefix,
        middles: literals,
        suffix,
        fold,
    })
}

// ---------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------

/// The date forms accepted in queries, for messages.
const DATE_FORMS: &str = "YYYY-MM, YYYY-MM-DD or an ISO-8601 timestamp such as \
                          2024-01-31T12:00:00.000Z (offsets like +02:00 allowed)";

/// The inclusive millisecond span a date literal denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DateSpan {
    first: i64,
    last: i64,
}

/// Parses a query date.
///
/// - `YYYY-MM`: the whole month (Docs: `last_login:{2017-11 TO 2017-12]`, `[* TO 2017-12]`).
/// - `YYYY-MM-DD`: the whole day (Facts: "Dates may be `2024-01-01`").
/// - `YYYY-MM-DDTHH:MM[:SS[.fraction]]` with `Z`, an offset `±HH:MM`, or nothing (UTC): one
///   instant, truncated to the millisecond (Docs, v3 logs search: `2018-12-18T12:22` is
///   `2018-12-18T12:22:00.000Z`).
///
/// A bare year is not documented and is refused (stricter), as are lower-case `t`/`z` and
/// a space instead of `T`.
fn parse_date(text: &str) -> Option<DateSpan> {
    let b = text.as_bytes();
    let year = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let month_start = NaiveDate::from_ymd_opt(year as i32, month, 1)?;
    if b.len() == 7 {
        let next = month_start.checked_add_months(chrono::Months::new(1))?;
        return Some(DateSpan {
            first: midnight_ms(month_start),
            last: midnight_ms(next) - 1,
        });
    }
    if b.get(7) != Some(&b'-') {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year as i32, month, digits(b, 8, 2)?)?;
    if b.len() == 10 {
        let first = midnight_ms(date);
        return Some(DateSpan {
            first,
            last: first + 86_400_000 - 1,
        });
    }
    if b.get(10) != Some(&b'T') || b.get(13) != Some(&b':') {
        return None;
    }
    let (hour, minute) = (digits(b, 11, 2)?, digits(b, 14, 2)?);
    let (mut second, mut nanos, mut i) = (0, 0, 16);
    if b.get(i) == Some(&b':') {
        second = digits(b, 17, 2)?;
        i = 19;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            i = start;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            let count = i - start;
            if !(1..=9).contains(&count) {
                return None;
            }
            nanos = digits(b, start, count)? * 10u32.pow(9 - count as u32);
        }
    }
    let offset_secs = parse_offset(&b[i..])?;
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    let ms = date.and_time(time).and_utc().timestamp_millis() - offset_secs * 1000;
    Some(DateSpan {
        first: ms,
        last: ms,
    })
}

/// The UTC offset suffix of a timestamp in seconds: empty or `Z` is 0, else `±HH:MM`.
fn parse_offset(b: &[u8]) -> Option<i64> {
    match b {
        [] | [b'Z'] => Some(0),
        [sign @ (b'+' | b'-'), ..] if b.len() == 6 && b[3] == b':' => {
            let (hours, minutes) = (digits(b, 1, 2)?, digits(b, 4, 2)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let secs = i64::from(hours * 3600 + minutes * 60);
            Some(if *sign == b'-' { -secs } else { secs })
        }
        _ => None,
    }
}

/// `len` ASCII digits at `at` as a number.
fn digits(b: &[u8], at: usize, len: usize) -> Option<u32> {
    let slice = b.get(at..at + len)?;
    slice.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn midnight_ms(date: NaiveDate) -> i64 {
    date.and_time(NaiveTime::MIN).and_utc().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;
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

    fn error(q: &str) -> String {
        match Query::parse(q) {
            Ok(parsed) => panic!("query {q:?} should be refused, parsed as {parsed:?}"),
            Err(e) => e.message,
        }
    }

    /// Asserts each `(query, expected)` against `user`.
    fn check(user: &Map<String, Value>, cases: &[(&str, bool)]) {
        for (q, expected) in cases {
            assert_eq!(parse(q).matches(user), *expected, "query {q:?}");
        }
    }

    /// Asserts each `(query, fragment)`: the query is refused with a message containing it.
    fn check_errors(cases: &[(&str, &str)]) {
        for (q, fragment) in cases {
            let message = error(q);
            assert!(
                message.contains(fragment),
                "query {q:?}: {message:?} lacks {fragment:?}"
            );
        }
    }

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

    #[test]
    fn query_can_be_shared_between_request_threads() {
        fn assert_send_sync<T: Send + Sync + Clone + std::fmt::Debug>() {}
        assert_send_sync::<Query>();
        assert_send_sync::<QueryError>();
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

    // --- ranges --------------------------------------------------------------------------------

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
