//! The parser of v3 queries: tokens to the tree of [`Node`]s, with every rule Auth0 documents
//! (and the stricter choice, said beside it, where the sources are silent).

use chrono::{NaiveDate, NaiveTime};

use super::lex::{Lexer, RangeEnd, RangeTok, Tok, Token, column};
use super::{Clause, DateRange, Node, NumberTerm, Pattern, QueryError, Scalar, Target, Test};

/// Parses `src` into its tree; an empty or all-whitespace query is the match-all [`Node::All`].
pub(super) fn tree(src: &str) -> Result<Node, QueryError> {
    let tokens = Lexer::new(src).tokens()?;
    if tokens.is_empty() {
        return Ok(Node::All);
    }
    let mut parser = Parser {
        src,
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
    Ok(root)
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
pub(crate) const MAX_DEPTH: usize = 64;

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
