//! The lexer of v3 queries: text to tokens, each with the byte offset where it starts, so
//! that every error can name its 1-based character column in the query as written.

use super::QueryError;

/// A token and the byte offset where it starts.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) kind: Tok,
    pub(super) at: usize,
}

#[derive(Debug, Clone)]
pub(super) enum Tok {
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
pub(super) struct RangeTok {
    pub(super) lo: RangeEnd,
    pub(super) hi: RangeEnd,
    pub(super) lo_inclusive: bool,
    pub(super) hi_inclusive: bool,
}

#[derive(Debug, Clone)]
pub(super) enum RangeEnd {
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

pub(super) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(src: &'a str) -> Self {
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

    pub(super) fn tokens(mut self) -> Result<Vec<Token>, QueryError> {
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
pub(super) fn column(src: &str, at: usize) -> usize {
    src[..at].chars().count() + 1
}
