//! The CSV shape of a user: which columns a user becomes and how a value fits in a cell.
//!
//! A CSV file is a header line, then one row per user. A user is a JSON object as
//! `GET /api/v2/users` returns it. Export writes users with [`CsvShape::encode`]; import reads
//! them back with [`CsvDecoder`]. A file this tool writes reads back to exactly the users that
//! were written: the same keys, the same values, the same number text.
//!
//! # Cells
//!
//! One rule covers every cell in every column:
//!
//! - An **empty cell** means the key is absent.
//! - A **string** is written as it is, unless it is empty or its text would itself parse as JSON.
//!   Such a string is written JSON-encoded, with its quotes: the string `42` becomes the cell
//!   `"42"`, and the empty string becomes the cell `""`. "Would parse" follows the JSON grammar
//!   exactly. JSON whitespace (space, tab, CR, LF) is allowed around the value, so `42`, ` 7`,
//!   `7 `, `true`, `null`, `[1]`, `{}` and `"x"` all parse. `007`, `+1`, `1.`, `NaN`, `True`
//!   and `[1` do not, so they are written as they are.
//! - **Any other value** (number, boolean, null, array, object) is written as compact JSON.
//!   A number keeps its exact text: `18446744073709551615`, `1e-7` and `-0.0` come back
//!   unchanged.
//!
//! Reading a cell does the reverse. An empty cell is absent. Text that parses as JSON becomes
//! that value. Any other text becomes that text as a string. Ordinary strings such as
//! `alice@example.com`, `+64418059262` or `2024-01-01T00:00:00.000Z` stay readable in a
//! spreadsheet, and the round trip is still exact. (In the file, the CSV writer quotes cells
//! that need it. The cell `"42"` is stored as `"""42"""`. Newlines, CR, commas and quotes
//! inside strings are safe.)
//!
//! # Columns
//!
//! The profile columns, in this order: `user_id`, `email`, `email_verified`, `username`,
//! `phone_number`, `phone_verified`, `name`, `given_name`, `family_name`, `nickname`, `picture`,
//! `blocked`, `created_at`, `updated_at`, `last_login`, `last_ip`, `logins_count`,
//! `last_password_reset`, `multifactor`, `multifactor_last_modified`, `identities`,
//! `user_metadata`, `app_metadata` ([`PROFILE_COLUMNS`]). The last column is `extra`. It holds
//! a JSON object with every other top-level key of the user, in the user's order. It is empty
//! when the user has no other key.
//!
//! `user_metadata` and `app_metadata` must be JSON objects, and `identities` must be a JSON
//! array. Auth0 always sends them that way. A user that breaks this rule is an error on export
//! and on import.
//!
//! ## Metadata mode `json` (the default)
//!
//! Every profile column holds its value as a cell, then `extra` follows. `user_metadata` and
//! `app_metadata` are each one JSON cell.
//!
//! ## Metadata mode `flatten`
//!
//! Each metadata object is spread over dotted **leaf columns**, one per path:
//! `user_metadata.preferences.timezone`, `app_metadata.plan`, and so on. The rest is as in
//! `json` mode.
//!
//! - A **leaf** is what sits at the end of a path. The encoder follows objects down and stops at
//!   an empty object (`{}`), at any array (as JSON, never spread), and at any scalar, null
//!   included. `{"a": {"b": 1, "c": {}}, "d": [1]}` gives `user_metadata.a.b` = `1`,
//!   `user_metadata.a.c` = `{}` and `user_metadata.d` = `[1]`.
//! - The columns are `user_metadata`, then every `user_metadata.*` leaf column, then
//!   `app_metadata`, then every `app_metadata.*` leaf column, in the place the two objects have in
//!   the profile column list. Leaf columns are sorted by path, segment by segment, so a parent
//!   comes before its children (`a`, `a.b`, `a-b`).
//! - **The empty-metadata rule.** The `user_metadata` column (resp. `app_metadata`) holds `{}`
//!   when the user's object is present and empty. Otherwise the column is empty. So:
//!   - absent object: the `user_metadata` cell and all its leaf cells are empty;
//!   - `{}`: the `user_metadata` cell is `{}` and all its leaf cells are empty;
//!   - an object with keys: the `user_metadata` cell is empty, and the user's leaf cells are
//!     filled (an empty object below the top level is a leaf, so such an object always has at
//!     least one leaf). Leaf columns of paths this user lacks are empty.
//! - The leaf columns are the union over all users. The exporter first runs
//!   [`LeafColumns::collect`] over every user, then builds the shape with [`CsvShape::flatten`].
//! - A metadata key that contains `.` cannot become a column name without ambiguity. Auth0
//!   forbids such keys anyway. Collecting or encoding such a user is an error that names the key;
//!   export that data in `json` mode.
//!
//! ## Selected fields
//!
//! When the export names its fields (for example `user_id,email,app_metadata`), the columns are
//! exactly those fields in that order, and there is no `extra` column. In `flatten` mode a
//! selected `user_metadata` or `app_metadata` expands in place to its whole column plus its leaf
//! columns. A selected metadata path (`user_metadata.country`, as Auth0's own export job takes
//! it) is one column in either mode, holding whatever sits at that path as a cell. Other keys
//! of the user are not exported. A field list must not be empty, must not repeat a field, and
//! must not select a path inside another selected field. A field must not be empty, contain `.`
//! (except as such a path), be `extra`, or start with a byte
//! order mark (U+FEFF: a CSV reader drops it from the start of a file, so a first column named
//! that way would read back under another name).
//!
//! # Formula escaping (off unless asked for)
//!
//! Spreadsheets run a cell that starts with `=`, `+`, `-` or `@` as a formula. When escaping is
//! on, any cell whose text starts with `=`, `+`, `-`, `@`, tab, CR or `'` gets one `'` in front.
//! A negative number `-5` becomes `'-5`. `'` is on the list so the escape can be undone: reading
//! with unescaping on removes exactly one leading `'` from any cell that starts with one. A cell
//! that is just `'` reads as the empty string, so only a truly empty cell means absent. A file
//! written with escaping must be read with unescaping, and a file written without it must be
//! read without it. The header is never escaped. (Auth0's own export job puts `'` in front of
//! every string. Unescaping reads those files too, but a string of Auth0's whose text is JSON,
//! such as `'42`, comes back as the JSON value.)
//!
//! # Reading
//!
//! [`CsvDecoder`] reads files written in either mode. It also reads CSV files that people made,
//! with any header:
//!
//! - A plain header name is a top-level key, and its cells follow the cell rule.
//! - `user_metadata` and `app_metadata` hold a JSON object. `identities` holds a JSON array.
//!   `extra` holds a JSON object whose keys are added to the top level.
//! - `user_metadata.x.y` (or `app_metadata.…`) puts its value at that path. Objects are
//!   created on the way. Only these two prefixes may contain `.` in a header name.
//! - The header must not have empty or repeated names. A UTF-8 byte order mark at the start of
//!   the file is dropped by the `csv` reader.
//! - A dotted name has at most [`MAX_PATH_SEGMENTS`] segments after its prefix, so a row never
//!   builds a user deeper than JSON readers take ([`crate::rules::MAX_JSON_DEPTH`]). A longer
//!   path would nest objects without bound (and overflow the stack of whatever walks them).
//!
//! A row is refused with a [`CsvFieldError`] that names the column at fault when:
//! - the row has more or fewer cells than the header has columns (read with
//!   `csv::ReaderBuilder::flexible(true)` so this check, not the reader, reports it);
//! - a JSON column holds something else, or no valid JSON at all;
//! - a metadata object is given both as a JSON cell and in dotted columns in the same row;
//! - two dotted columns of the same row both have a value and one path is a prefix of the
//!   other (`user_metadata.a` and `user_metadata.a.b`);
//! - `extra` has a key that the header also has a column for.
//!
//! **Key order of a decoded user.** Keys come in header order. A plain column's key goes where
//! its column is. A metadata object goes at its first column that has a value, and its nested
//! keys follow their columns (sorted, for files written in `flatten` mode). The keys from `extra`
//! come last, in the order they have in the cell. Compare users as JSON values: `serde_json::Map`
//! equality ignores key order.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use csv::StringRecord;
use serde_json::{Map, Value};

use crate::rules::MAX_JSON_DEPTH;

use super::raw::{self, RawUser};

/// The profile columns, in the order they are written. `user_metadata` and `app_metadata` are
/// spread over leaf columns in [`MetadataMode::Flatten`].
pub const PROFILE_COLUMNS: [&str; 23] = [
    "user_id",
    "email",
    "email_verified",
    "username",
    "phone_number",
    "phone_verified",
    "name",
    "given_name",
    "family_name",
    "nickname",
    "picture",
    "blocked",
    "created_at",
    "updated_at",
    "last_login",
    "last_ip",
    "logins_count",
    "last_password_reset",
    "multifactor",
    "multifactor_last_modified",
    "identities",
    "user_metadata",
    "app_metadata",
];

/// The most segments a dotted metadata column may have after `user_metadata.` or
/// `app_metadata.`: with the user (level 1) and the metadata object (level 2), a path of n
/// segments nests n + 1 levels, and a record nests at most [`MAX_JSON_DEPTH`] levels.
pub const MAX_PATH_SEGMENTS: usize = MAX_JSON_DEPTH - 1;

/// The last column of a full export: a JSON object with every top-level key that has no
/// profile column.
pub const EXTRA_COLUMN: &str = "extra";

/// The first characters that make a spreadsheet run a cell (plus `'`, so escaping is reversible).
const FORMULA_STARTS: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\''];

/// How `user_metadata` and `app_metadata` are written: one JSON cell each, or one column per leaf.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MetadataMode {
    /// One JSON cell per metadata object. Needs no pass over the users first.
    #[default]
    Json,
    /// One dotted column per leaf. The columns come from [`LeafColumns::collect`].
    Flatten,
}

/// A cell or header that cannot be written or read. The importer adds the line number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvFieldError {
    /// The header name of the column at fault. Empty when the fault is the row as a whole (too
    /// many cells) or a header column without a name.
    pub column: String,
    /// What is wrong, and what to do about it.
    pub message: String,
}

impl CsvFieldError {
    fn new(column: impl Into<String>, message: impl Into<String>) -> CsvFieldError {
        CsvFieldError {
            column: column.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for CsvFieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.column.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "column `{}`: {}", self.column, self.message)
        }
    }
}

impl std::error::Error for CsvFieldError {}

/// Writes one value as a cell text (no CSV quoting: `csv::Writer` adds that).
///
/// A string is written as it is, unless it is empty or would parse as JSON; then it is written
/// JSON-encoded. Any other value is written as compact JSON.
pub fn encode_cell(value: &Value) -> String {
    match value {
        Value::String(text) if !text.is_empty() && !parses_as_json(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Reads one cell text: `None` when it is empty (the key is absent), the JSON value when it
/// parses as JSON, else the text as a string.
pub fn decode_cell(cell: &str) -> Option<Value> {
    if cell.is_empty() {
        return None;
    }
    Some(serde_json::from_str(cell).unwrap_or_else(|_| Value::String(cell.to_owned())))
}

/// The exact test [`decode_cell`] applies, so encoding and decoding can never disagree.
fn parses_as_json(text: &str) -> bool {
    // Most cells are emails, names and timestamps: the first character after JSON whitespace
    // rules out all but numbers and literals, and a number holds nothing but number characters,
    // so a timestamp is ruled out without a parse (and the error it would allocate).
    const JSON_SPACE: [char; 4] = [' ', '\t', '\n', '\r'];
    let value = text.trim_start_matches(JSON_SPACE);
    match value.as_bytes().first() {
        Some(b'{' | b'[' | b'"') => {}
        Some(b't' | b'f' | b'n') => {
            return matches!(
                value.trim_end_matches(JSON_SPACE),
                "true" | "false" | "null"
            );
        }
        Some(b'-' | b'0'..=b'9') => {
            let number = |b: &u8| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E');
            let json_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
            if !value.as_bytes().iter().all(|b| number(b) || json_space(b)) {
                return false;
            }
        }
        _ => return false,
    }
    serde_json::from_str::<Value>(text).is_ok()
}

/// [`encode_cell`] of a value given as its JSON text, appended to `cell`.
fn encode_raw_cell(raw: &str, cell: &mut String) {
    match raw.as_bytes().first() {
        Some(b'"') => {
            let owned: String;
            let text = match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
                // A string of valid JSON without a backslash is its text between the quotes.
                Some(text) if !text.contains('\\') => text,
                // An escape in the string: it has to be unescaped into a copy.
                _ => {
                    owned = serde_json::from_str(raw).expect("a parsed page holds valid JSON");
                    &owned
                }
            };
            if !text.is_empty() && !parses_as_json(text) {
                cell.push_str(text);
            } else {
                cell.push_str(&Value::String(text.to_owned()).to_string());
            }
        }
        _ => raw::write_compact(raw, cell),
    }
}

/// Puts one `'` in front of a cell that a spreadsheet could run as a formula.
fn escape_formula(cell: &mut String) {
    if cell.starts_with(FORMULA_STARTS) {
        cell.insert(0, '\'');
    }
}

/// Reads a cell, first undoing [`escape_formula`] when asked to.
fn read_cell(raw: &str, unescape_formulas: bool) -> Option<Value> {
    if unescape_formulas && let Some(rest) = raw.strip_prefix('\'') {
        if rest.is_empty() {
            return Some(Value::String(String::new()));
        }
        return decode_cell(rest);
    }
    decode_cell(raw)
}

/// One of the two metadata objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Meta {
    User,
    App,
}

impl Meta {
    const ALL: [Meta; 2] = [Meta::User, Meta::App];

    fn key(self) -> &'static str {
        match self {
            Meta::User => "user_metadata",
            Meta::App => "app_metadata",
        }
    }

    fn from_key(key: &str) -> Option<Meta> {
        Meta::ALL.into_iter().find(|meta| meta.key() == key)
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The header name of a leaf column.
    fn column(self, path: &[String]) -> String {
        format!("{}.{}", self.key(), path.join("."))
    }
}

/// The JSON type a top-level key or column must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Object,
    Array,
}

impl Kind {
    /// The kind Auth0 always sends for a top-level key, if the key has one.
    fn of_key(key: &str) -> Option<Kind> {
        match key {
            "user_metadata" | "app_metadata" => Some(Kind::Object),
            "identities" => Some(Kind::Array),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Object => "a JSON object",
            Kind::Array => "a JSON array",
        }
    }

    fn matches(self, value: &Value) -> bool {
        match self {
            Kind::Object => value.is_object(),
            Kind::Array => value.is_array(),
        }
    }

    /// Checks a value; the error message says what was found instead.
    fn check(self, value: &Value) -> Result<(), String> {
        if self.matches(value) {
            Ok(())
        } else {
            Err(format!(
                "must hold {}, found {}",
                self.name(),
                describe_value(value)
            ))
        }
    }
}

/// What kind of JSON value this is, for messages (`a string`, `an object`, ...).
pub fn describe_value(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks the kind of a top-level key that has one (metadata objects, identities).
fn check_key_kind(key: &str, value: &Value) -> Result<(), CsvFieldError> {
    match Kind::of_key(key) {
        Some(kind) => kind
            .check(value)
            .map_err(|message| CsvFieldError::new(key, message)),
        None => Ok(()),
    }
}

/// The user's metadata object, if present; an error if it is not an object.
fn metadata_object(
    user: &Map<String, Value>,
    meta: Meta,
) -> Result<Option<&Map<String, Value>>, CsvFieldError> {
    match user.get(meta.key()) {
        None => Ok(None),
        Some(Value::Object(object)) => Ok(Some(object)),
        Some(other) => Err(CsvFieldError::new(
            meta.key(),
            format!(
                "must hold a JSON object, found {}; Auth0 always sends an object, so fix the record",
                describe_value(other)
            ),
        )),
    }
}

/// Calls `visit` with the path and value of every leaf of a non-empty metadata object: an empty
/// object, an array or a scalar. Fails on a key that contains `.`.
fn for_each_leaf<'a, F>(
    meta: Meta,
    object: &'a Map<String, Value>,
    path: &mut Vec<String>,
    visit: &mut F,
) -> Result<(), CsvFieldError>
where
    F: FnMut(&[String], &'a Value) -> Result<(), CsvFieldError>,
{
    for (key, value) in object {
        if key.contains('.') {
            let place = if path.is_empty() {
                "at the top level".to_owned()
            } else {
                format!("under `{}`", meta.column(path))
            };
            return Err(CsvFieldError::new(
                meta.key(),
                format!(
                    "key {key:?} {place} contains `.`, so it cannot become a dotted column \
                     (Auth0 forbids `.` in metadata keys); rename the key or export with \
                     `--csv-metadata json`"
                ),
            ));
        }
        path.push(key.clone());
        match value {
            Value::Object(inner) if !inner.is_empty() => for_each_leaf(meta, inner, path, visit)?,
            leaf => visit(path, leaf)?,
        }
        path.pop();
    }
    Ok(())
}

/// The leaf columns of a flatten export: the union of the metadata leaf paths of all users.
///
/// Run [`LeafColumns::collect`] over every user before building the shape with
/// [`CsvShape::flatten`], because the header is written first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeafColumns {
    /// Leaf paths per metadata object (indexed by `Meta::index`), sorted segment by segment.
    paths: [BTreeSet<Vec<String>>; 2],
}

impl LeafColumns {
    /// Adds the leaf paths of one user. On error (a metadata key with `.`, or metadata that is
    /// not an object) nothing of this user is added.
    pub fn collect(&mut self, user: &Map<String, Value>) -> Result<(), CsvFieldError> {
        let mut found: Vec<(Meta, Vec<String>)> = Vec::new();
        for meta in Meta::ALL {
            if let Some(object) = metadata_object(user, meta)? {
                let known = &self.paths[meta.index()];
                for_each_leaf(meta, object, &mut Vec::new(), &mut |path, _| {
                    if !known.contains(path) {
                        found.push((meta, path.to_vec()));
                    }
                    Ok(())
                })?;
            }
        }
        for (meta, path) in found {
            self.paths[meta.index()].insert(path);
        }
        Ok(())
    }

    /// How many leaf columns there are, both objects together.
    pub fn len(&self) -> usize {
        self.paths.iter().map(BTreeSet::len).sum()
    }

    /// Whether no user had a metadata leaf.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What an exported column holds.
#[derive(Clone, Debug)]
enum EncodeColumn {
    /// A top-level key, written with [`encode_cell`].
    Key(String),
    /// Flatten mode: `{}` when the metadata object is present and empty, else empty.
    EmptyMetadata(Meta),
    /// Flatten mode: one metadata leaf; filled through `CsvShape::leaves`.
    Leaf,
    /// Every top-level key that is not a profile column, as one JSON object.
    Extra,
    /// A selected path inside a metadata object (`user_metadata.country`), written with
    /// [`encode_cell`] whatever it holds, in either metadata mode.
    Path(Meta, Vec<String>),
}

/// The columns of an export, and how a user becomes a row of cells.
#[derive(Clone, Debug)]
pub struct CsvShape {
    mode: MetadataMode,
    header: Vec<String>,
    columns: Vec<EncodeColumn>,
    /// Flatten mode, per flattened metadata object: the column index of each leaf path.
    leaves: [Option<HashMap<Vec<String>, usize>>; 2],
}

impl CsvShape {
    /// The shape of metadata mode `json`: the profile columns and `extra`, or exactly the
    /// selected fields.
    pub fn json(fields: Option<&[String]>) -> Result<CsvShape, CsvFieldError> {
        let mut shape = CsvShape::empty(MetadataMode::Json);
        for field in selected_fields(fields)? {
            let column = match metadata_path(field) {
                Some((meta, path)) => EncodeColumn::Path(meta, path),
                None => EncodeColumn::Key(field.to_owned()),
            };
            shape.push(field.to_owned(), column);
        }
        if fields.is_none() {
            shape.push(EXTRA_COLUMN.to_owned(), EncodeColumn::Extra);
        }
        Ok(shape)
    }

    /// The shape of metadata mode `flatten`: as [`CsvShape::json`], with each metadata column
    /// followed by the leaf columns collected in `leaf_columns`.
    pub fn flatten(
        fields: Option<&[String]>,
        leaf_columns: &LeafColumns,
    ) -> Result<CsvShape, CsvFieldError> {
        let mut shape = CsvShape::empty(MetadataMode::Flatten);
        for field in selected_fields(fields)? {
            if let Some((meta, path)) = metadata_path(field) {
                shape.push(field.to_owned(), EncodeColumn::Path(meta, path));
                continue;
            }
            let Some(meta) = Meta::from_key(field) else {
                shape.push(field.to_owned(), EncodeColumn::Key(field.to_owned()));
                continue;
            };
            shape.push(field.to_owned(), EncodeColumn::EmptyMetadata(meta));
            let mut index = HashMap::new();
            for path in &leaf_columns.paths[meta.index()] {
                index.insert(path.clone(), shape.columns.len());
                shape.push(meta.column(path), EncodeColumn::Leaf);
            }
            shape.leaves[meta.index()] = Some(index);
        }
        if fields.is_none() {
            shape.push(EXTRA_COLUMN.to_owned(), EncodeColumn::Extra);
        }
        Ok(shape)
    }

    fn empty(mode: MetadataMode) -> CsvShape {
        CsvShape {
            mode,
            header: Vec::new(),
            columns: Vec::new(),
            leaves: [None, None],
        }
    }

    fn push(&mut self, name: String, column: EncodeColumn) {
        self.header.push(name);
        self.columns.push(column);
    }

    /// The metadata mode this shape was built for.
    pub fn mode(&self) -> MetadataMode {
        self.mode
    }

    /// The header row: one name per column.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// One row of cells for `user`, in header order, ready for `csv::Writer::write_record`.
    ///
    /// Fails when a metadata object is not an object or `identities` is not an array. In flatten
    /// mode it also fails when a metadata key contains `.` or a leaf has no column (the user was
    /// not passed to [`LeafColumns::collect`]).
    pub fn encode(
        &self,
        user: &Map<String, Value>,
        escape_formulas: bool,
    ) -> Result<Vec<String>, CsvFieldError> {
        let mut cells = vec![String::new(); self.columns.len()];
        for (cell, column) in cells.iter_mut().zip(&self.columns) {
            match column {
                EncodeColumn::Key(key) => {
                    if let Some(value) = user.get(key) {
                        check_key_kind(key, value)?;
                        *cell = encode_cell(value);
                    }
                }
                EncodeColumn::EmptyMetadata(meta) => {
                    if metadata_object(user, *meta)?.is_some_and(Map::is_empty) {
                        *cell = "{}".to_owned();
                    }
                }
                EncodeColumn::Leaf => {}
                EncodeColumn::Path(meta, path) => {
                    let mut value = metadata_object(user, *meta)?.map(|o| o.get(&path[0]));
                    for key in &path[1..] {
                        value = value.map(|v| v.and_then(|v| v.get(key)));
                    }
                    if let Some(Some(value)) = value {
                        *cell = encode_cell(value);
                    }
                }
                EncodeColumn::Extra => {
                    let extra: Map<String, Value> = user
                        .iter()
                        .filter(|(key, _)| !PROFILE_COLUMNS.contains(&key.as_str()))
                        .map(|(key, value)| (key.clone(), value.clone()))
                        .collect();
                    if !extra.is_empty() {
                        *cell = Value::Object(extra).to_string();
                    }
                }
            }
        }
        for meta in Meta::ALL {
            let Some(index) = &self.leaves[meta.index()] else {
                continue;
            };
            let Some(object) = metadata_object(user, meta)? else {
                continue;
            };
            for_each_leaf(meta, object, &mut Vec::new(), &mut |path, value| {
                let Some(&column) = index.get(path) else {
                    return Err(CsvFieldError::new(
                        meta.column(path),
                        "this user has a value here but the header has no such column; \
                         run LeafColumns::collect over every user before building the shape",
                    ));
                };
                cells[column] = encode_cell(value);
                Ok(())
            })?;
        }
        if escape_formulas {
            cells.iter_mut().for_each(escape_formula);
        }
        Ok(cells)
    }
}

impl CsvShape {
    /// [`CsvShape::encode`] of a user given as its JSON text, into `cells` (reused from row to
    /// row, so a row allocates nothing once the cells have grown): the same cells, without
    /// building the user's map. Only for a shape of top-level keys (`json` mode, no metadata
    /// path); returns false, with `cells` undefined, when the shape or the user needs the map
    /// (then [`CsvShape::encode`] does the work, and names any error).
    pub fn encode_json_text(
        &self,
        json: &str,
        escape_formulas: bool,
        cells: &mut Vec<String>,
    ) -> bool {
        let keys_only = self
            .columns
            .iter()
            .all(|c| matches!(c, EncodeColumn::Key(_) | EncodeColumn::Extra));
        if !keys_only {
            return false;
        }
        let Some(user) = RawUser::parse(json) else {
            return false;
        };
        cells.resize_with(self.columns.len(), String::new);
        for (cell, column) in cells.iter_mut().zip(&self.columns) {
            cell.clear();
            match column {
                EncodeColumn::Key(key) => {
                    let Some(value) = user.get(key) else {
                        continue;
                    };
                    let text = value;
                    let fits = match Kind::of_key(key) {
                        Some(Kind::Object) => text.starts_with('{'),
                        Some(Kind::Array) => text.starts_with('['),
                        None => true,
                    };
                    if !fits {
                        return false;
                    }
                    encode_raw_cell(text, cell);
                }
                EncodeColumn::Extra => {
                    for (key, value) in user
                        .iter()
                        .filter(|(key, _)| !PROFILE_COLUMNS.contains(key))
                    {
                        // A key read without a copy holds no escape, and valid JSON holds no raw
                        // control character: serde_json writes it between quotes as it is.
                        cell.push(if cell.is_empty() { '{' } else { ',' });
                        cell.push('"');
                        cell.push_str(key);
                        cell.push_str("\":");
                        raw::write_compact(value, cell);
                    }
                    if !cell.is_empty() {
                        cell.push('}');
                    }
                }
                _ => unreachable!("only key columns reach here"),
            }
        }
        if escape_formulas {
            cells.iter_mut().for_each(escape_formula);
        }
        true
    }
}

/// The fields to export: the profile columns, or a validated selection.
fn selected_fields(fields: Option<&[String]>) -> Result<Vec<&str>, CsvFieldError> {
    let Some(fields) = fields else {
        return Ok(PROFILE_COLUMNS.to_vec());
    };
    if fields.is_empty() {
        return Err(CsvFieldError::new(
            "",
            "the field list is empty; name at least one field, or select none to export all",
        ));
    }
    let mut seen = BTreeSet::new();
    for field in fields {
        let problem = if field.is_empty() {
            Some("a selected field has no name")
        } else if field == EXTRA_COLUMN {
            Some("`extra` is the column of all other keys and cannot be selected")
        } else if field.contains('.') && metadata_path(field).is_none() {
            Some(
                "a selected field with `.` must be a path in user_metadata or app_metadata \
                 (user_metadata.country), with a name between every two dots",
            )
        } else if field.starts_with('\u{feff}') {
            Some(
                "a selected field cannot start with a byte order mark (U+FEFF): CSV readers drop \
                 it from the start of a file, so the column would read back under another name; \
                 remove it",
            )
        } else if !seen.insert(field.as_str()) {
            Some("this field is selected twice")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(CsvFieldError::new(field.clone(), problem));
        }
    }
    // A column inside another selected one would repeat its data (and, flattened, its
    // leaf columns): refuse the overlap rather than write one value twice.
    for field in fields {
        if let Some(outer) = fields.iter().find(|other| {
            *other != field
                && field
                    .strip_prefix(other.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        }) {
            return Err(CsvFieldError::new(
                field.clone(),
                format!("this field lies inside {outer:?}, which is selected too; keep one"),
            ));
        }
    }
    Ok(fields.iter().map(String::as_str).collect())
}

/// `user_metadata.a.b` → the object and the path below it; `None` for any other name (a
/// top-level key, or a dotted name that is not a whole metadata path).
fn metadata_path(field: &str) -> Option<(Meta, Vec<String>)> {
    let (root, rest) = field.split_once('.')?;
    let meta = Meta::from_key(root)?;
    let path: Vec<String> = rest.split('.').map(str::to_owned).collect();
    let fits = path.len() <= MAX_PATH_SEGMENTS && path.iter().all(|s| !s.is_empty());
    fits.then_some((meta, path))
}

/// What an imported column holds.
#[derive(Clone, Debug)]
enum DecodeColumn {
    /// A top-level key; a cell follows [`decode_cell`] (and must be JSON for `identities`).
    Key(String),
    /// A whole metadata object as JSON.
    Whole(Meta),
    /// One value at a path inside a metadata object.
    Leaf(Meta, Vec<String>),
    /// A JSON object whose keys go to the top level.
    Extra,
}

/// Reads rows of a CSV file back into users. It is built from the file's header.
#[derive(Clone, Debug)]
pub struct CsvDecoder {
    names: Vec<String>,
    columns: Vec<DecodeColumn>,
    /// Top-level keys the header has a column for (`extra` must not repeat them).
    column_keys: BTreeSet<String>,
    unescape_formulas: bool,
}

/// The cells one row gives a metadata object.
#[derive(Default)]
struct MetadataCells {
    /// The whole object from the JSON column, with the column index.
    whole: Option<(usize, Map<String, Value>)>,
    /// Leaf values with their column index, in header order.
    leaves: Vec<(usize, Value)>,
}

impl CsvDecoder {
    /// Checks the header: every name present and unique, and dotted names only under
    /// `user_metadata.` and `app_metadata.`.
    pub fn new(
        header: &StringRecord,
        unescape_formulas: bool,
    ) -> Result<CsvDecoder, CsvFieldError> {
        let mut first_seen: HashMap<&str, usize> = HashMap::new();
        let mut columns = Vec::with_capacity(header.len());
        let mut column_keys = BTreeSet::new();
        for (index, name) in header.iter().enumerate() {
            let number = index + 1;
            if name.is_empty() {
                return Err(CsvFieldError::new(
                    "",
                    format!("column {number} of the header has no name; name every column"),
                ));
            }
            if let Some(first) = first_seen.insert(name, number) {
                return Err(CsvFieldError::new(
                    name,
                    format!(
                        "appears twice in the header (columns {first} and {number}); remove or \
                         rename one"
                    ),
                ));
            }
            let column = if name == EXTRA_COLUMN {
                DecodeColumn::Extra
            } else if let Some(meta) = Meta::from_key(name) {
                DecodeColumn::Whole(meta)
            } else if let Some((meta, path)) = Meta::ALL.into_iter().find_map(|meta| {
                let path = name.strip_prefix(meta.key())?.strip_prefix('.')?;
                Some((meta, path))
            }) {
                let segments = path.split('.').count();
                if segments > MAX_PATH_SEGMENTS {
                    return Err(CsvFieldError::new(
                        preview(name),
                        format!(
                            "has {segments} segments after `{}.`, more than the \
                             {MAX_PATH_SEGMENTS} that fit in a user nested at most \
                             {MAX_JSON_DEPTH} levels deep (deeper JSON cannot be read back); \
                             shorten the path, or give the deep part as JSON in the cell",
                            meta.key()
                        ),
                    ));
                }
                DecodeColumn::Leaf(meta, path.split('.').map(str::to_owned).collect())
            } else if name.contains('.') {
                return Err(CsvFieldError::new(
                    name,
                    "only `user_metadata.…` and `app_metadata.…` columns may contain `.`; \
                     rename the column",
                ));
            } else {
                DecodeColumn::Key(name.to_owned())
            };
            match &column {
                DecodeColumn::Key(key) => {
                    column_keys.insert(key.clone());
                }
                DecodeColumn::Whole(meta) | DecodeColumn::Leaf(meta, _) => {
                    column_keys.insert(meta.key().to_owned());
                }
                DecodeColumn::Extra => {}
            }
            columns.push(column);
        }
        Ok(CsvDecoder {
            names: header.iter().map(str::to_owned).collect(),
            columns,
            column_keys,
            unescape_formulas,
        })
    }

    /// Reads one row into a user (see the module doc for the key order).
    pub fn decode(&self, row: &StringRecord) -> Result<Map<String, Value>, CsvFieldError> {
        let expected = self.columns.len();
        if row.len() < expected {
            return Err(CsvFieldError::new(
                self.names[row.len()].clone(),
                format!(
                    "the row ends before this column: it has {} cells, the header has {expected} \
                     columns",
                    row.len()
                ),
            ));
        }
        if row.len() > expected {
            return Err(CsvFieldError::new(
                "",
                format!(
                    "the row has {} cells, more than the {expected} columns of the header",
                    row.len()
                ),
            ));
        }

        let mut user = Map::new();
        let mut metadata: [MetadataCells; 2] = Default::default();
        let mut extra = None;
        for (index, (column, raw)) in self.columns.iter().zip(row.iter()).enumerate() {
            let name = &self.names[index];
            match column {
                DecodeColumn::Key(key) => {
                    let Some(value) = self.cell(name, raw, Kind::of_key(key))? else {
                        continue;
                    };
                    user.insert(key.clone(), value);
                }
                DecodeColumn::Whole(meta) => {
                    let Some(object) = self.object_cell(name, raw)? else {
                        continue;
                    };
                    metadata[meta.index()].whole = Some((index, object));
                    // Keeps the object's place among the keys; filled in below.
                    user.entry(meta.key()).or_insert(Value::Null);
                }
                DecodeColumn::Leaf(meta, _) => {
                    let Some(value) = self.cell(name, raw, None)? else {
                        continue;
                    };
                    metadata[meta.index()].leaves.push((index, value));
                    user.entry(meta.key()).or_insert(Value::Null);
                }
                DecodeColumn::Extra => extra = self.object_cell(name, raw)?,
            }
        }

        for (meta, cells) in Meta::ALL.into_iter().zip(metadata) {
            let object = match cells {
                MetadataCells {
                    whole: Some((whole, _)),
                    leaves,
                } if !leaves.is_empty() => {
                    return Err(CsvFieldError::new(
                        self.names[leaves[0].0].clone(),
                        format!(
                            "has a value, and so does column `{}` in the same row; give the object \
                             either as JSON in `{}` or in dotted columns, not both",
                            self.names[whole],
                            meta.key()
                        ),
                    ));
                }
                MetadataCells {
                    whole: Some((_, object)),
                    ..
                } => object,
                MetadataCells {
                    whole: None,
                    leaves,
                } if !leaves.is_empty() => self.build_metadata(leaves)?,
                MetadataCells { .. } => continue,
            };
            user.insert(meta.key().to_owned(), Value::Object(object));
        }

        for (key, value) in extra.into_iter().flatten() {
            if self.column_keys.contains(&key) {
                return Err(CsvFieldError::new(
                    EXTRA_COLUMN,
                    format!("has key {key:?}, which also has its own column; give it in one place"),
                ));
            }
            if let Some(kind) = Kind::of_key(&key) {
                kind.check(&value).map_err(|message| {
                    CsvFieldError::new(EXTRA_COLUMN, format!("key {key:?} {message}"))
                })?;
            }
            user.insert(key, value);
        }
        Ok(user)
    }

    /// Reads one cell; a column that needs a JSON value of some kind gets a precise error.
    fn cell(
        &self,
        name: &str,
        raw: &str,
        kind: Option<Kind>,
    ) -> Result<Option<Value>, CsvFieldError> {
        let Some(value) = read_cell(raw, self.unescape_formulas) else {
            return Ok(None);
        };
        let Some(kind) = kind else {
            return Ok(Some(value));
        };
        if kind.matches(&value) {
            return Ok(Some(value));
        }
        // Say whether the text was JSON of another kind, or no JSON at all.
        let text = match raw.strip_prefix('\'') {
            Some(rest) if self.unescape_formulas => rest,
            _ => raw,
        };
        let message = match serde_json::from_str::<Value>(text) {
            Ok(json) => kind.check(&json).err().unwrap_or_default(),
            Err(error) => format!(
                "must hold {}, but `{}` is not valid JSON ({error})",
                kind.name(),
                preview(text)
            ),
        };
        Err(CsvFieldError::new(name, message))
    }

    /// Reads a cell of a column that holds a JSON object.
    fn object_cell(
        &self,
        name: &str,
        raw: &str,
    ) -> Result<Option<Map<String, Value>>, CsvFieldError> {
        match self.cell(name, raw, Some(Kind::Object))? {
            None => Ok(None),
            Some(Value::Object(object)) => Ok(Some(object)),
            Some(_) => unreachable!("`cell` checked that the value is an object"),
        }
    }

    /// Builds a metadata object from the leaf cells of one row.
    fn build_metadata(
        &self,
        leaves: Vec<(usize, Value)>,
    ) -> Result<Map<String, Value>, CsvFieldError> {
        let path_of = |index: usize| -> &[String] {
            match &self.columns[index] {
                DecodeColumn::Leaf(_, path) => path,
                _ => unreachable!("only leaf columns are collected as leaves"),
            }
        };
        let filled: HashMap<&[String], usize> = leaves
            .iter()
            .map(|&(index, _)| (path_of(index), index))
            .collect();
        for &(index, _) in &leaves {
            let path = path_of(index);
            if let Some(&parent) = (1..path.len()).find_map(|len| filled.get(&path[..len])) {
                return Err(CsvFieldError::new(
                    self.names[index].clone(),
                    format!(
                        "has a value, and so does column `{}` in the same row, which is a \
                         parent path; leave one of them empty",
                        self.names[parent]
                    ),
                ));
            }
        }
        let mut root = Map::new();
        for (index, value) in leaves {
            let path = path_of(index);
            let (last, parents) = path.split_last().expect("a leaf path has a segment");
            let mut object = &mut root;
            for segment in parents {
                object = object
                    .entry(segment.clone())
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                    .expect("no leaf sits on a parent path (checked above)");
            }
            object.insert(last.clone(), value);
        }
        Ok(root)
    }
}

/// The start of a long cell, for error messages.
fn preview(text: &str) -> String {
    const LIMIT: usize = 40;
    match text.char_indices().nth(LIMIT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    fn json(text: &str) -> Value {
        serde_json::from_str(text).expect("test JSON parses")
    }

    fn object(text: &str) -> Map<String, Value> {
        match json(text) {
            Value::Object(object) => object,
            other => panic!("not an object: {other}"),
        }
    }

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    fn record(cells: &[&str]) -> StringRecord {
        StringRecord::from(cells.to_vec())
    }

    /// The shape of a set of users in one mode, collecting leaf columns first in flatten mode.
    fn shape_for(
        users: &[Map<String, Value>],
        mode: MetadataMode,
        fields: Option<&[String]>,
    ) -> CsvShape {
        match mode {
            MetadataMode::Json => CsvShape::json(fields).expect("valid fields"),
            MetadataMode::Flatten => {
                let mut leaf_columns = LeafColumns::default();
                for user in users {
                    leaf_columns.collect(user).expect("collectable user");
                }
                CsvShape::flatten(fields, &leaf_columns).expect("valid fields")
            }
        }
    }

    /// Writes the users through `csv::Writer`, as the exporter does.
    fn write_csv(users: &[Map<String, Value>], shape: &CsvShape, escape: bool) -> Vec<u8> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(shape.header()).expect("header");
        for user in users {
            let cells = shape.encode(user, escape).expect("encodable user");
            if escape {
                for cell in &cells {
                    assert!(
                        !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                        "unescaped formula cell {cell:?}"
                    );
                }
            }
            writer.write_record(&cells).expect("row");
        }
        writer.into_inner().expect("flush")
    }

    /// Reads a CSV file through `csv::Reader`, as the importer does.
    fn read_csv(bytes: &[u8], unescape: bool) -> Result<Vec<Map<String, Value>>, CsvFieldError> {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
        let decoder = CsvDecoder::new(reader.headers().expect("header"), unescape)?;
        reader
            .records()
            .map(|row| decoder.decode(&row.expect("row")))
            .collect()
    }

    fn round_trip(
        users: &[Map<String, Value>],
        mode: MetadataMode,
        fields: Option<&[String]>,
        escape: bool,
    ) -> Vec<Map<String, Value>> {
        let shape = shape_for(users, mode, fields);
        read_csv(&write_csv(users, &shape, escape), escape).expect("decodable file")
    }

    fn restrict(user: &Map<String, Value>, fields: &[String]) -> Map<String, Value> {
        user.iter()
            .filter(|(key, _)| fields.contains(key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    // ---- Cells ----

    #[test]
    fn a_user_whose_text_a_map_would_change_is_left_to_the_map() {
        let shape = CsvShape::json(None).unwrap();
        let mut cells = Vec::new();
        // A key twice, an escaped key, metadata of the wrong kind: `encode` decides (and names
        // the error).
        for text in [
            r#"{"email":"a@x","email":"b@x"}"#,
            r#"{"em\u0061il":"a@x"}"#,
            r#"{"user_metadata":[1]}"#,
            r#"{"identities":{}}"#,
        ] {
            assert!(!shape.encode_json_text(text, false, &mut cells), "{text}");
        }
        let path = CsvShape::json(Some(&strings(&["user_metadata.plan"]))).unwrap();
        assert!(!path.encode_json_text(r#"{"user_metadata":{"plan":1}}"#, false, &mut cells));
        assert!(shape.encode_json_text(r#"{"email":"a@x","x":{"b": 1}}"#, false, &mut cells));
        assert_eq!(cells[1], "a@x");
        assert_eq!(cells.last().unwrap(), r#"{"x":{"b":1}}"#);
    }

    #[test]
    fn plain_strings_are_written_as_they_are() {
        for text in [
            "alice@example.com",
            "+64418059262",
            "007",
            "1.",
            ".5",
            "NaN",
            "Infinity",
            "True",
            "tru",
            "[1",
            "{\"a\":",
            "'42'",
            "\u{a0}7",
            "2024-01-01T00:00:00.000Z",
            "line\nbreak, \"quoted\"",
            "अनन्या 🎉",
        ] {
            assert_eq!(encode_cell(&Value::String(text.into())), text);
            assert_eq!(decode_cell(text), Some(Value::String(text.into())));
        }
    }

    #[test]
    fn strings_that_parse_as_json_are_written_json_encoded() {
        for (text, cell) in [
            ("", r#""""#),
            ("42", r#""42""#),
            ("-5", r#""-5""#),
            ("1e-7", r#""1e-7""#),
            ("true", r#""true""#),
            ("null", r#""null""#),
            ("[1]", r#""[1]""#),
            ("{}", r#""{}""#),
            (r#""x""#, r#""\"x\"""#),
            (" 7", r#"" 7""#),
            ("7 ", r#""7 ""#),
            ("\t1\r\n", r#""\t1\r\n""#),
            (" [ ] ", r#"" [ ] ""#),
        ] {
            let value = Value::String(text.into());
            assert_eq!(encode_cell(&value), cell, "string {text:?}");
            assert_eq!(decode_cell(cell), Some(value), "cell {cell:?}");
        }
    }

    #[test]
    fn other_values_are_compact_json_with_exact_number_text() {
        for text in [
            "9007199254740993",
            "18446744073709551615",
            "123456789012345678901234567890",
            "1e-7",
            "-0.0",
            "-5",
            "5e-324",
            "1.7976931348623157e+308",
            "1e+400",
            "true",
            "false",
            "null",
            "[]",
            "{}",
            r#"[1,"a",{"b":null}]"#,
            r#"{"a":{"b":[1.50,{}]},"c":"d"}"#,
        ] {
            let value = json(text);
            assert_eq!(encode_cell(&value), text);
            assert_eq!(decode_cell(text), Some(value));
        }
        assert_eq!(
            encode_cell(&json("{ \"a\" : [ 1 , 2 ] }")),
            r#"{"a":[1,2]}"#
        );
    }

    #[test]
    fn empty_cell_is_absent_and_json_around_whitespace_is_json() {
        assert_eq!(decode_cell(""), None);
        assert_eq!(decode_cell(" 7"), Some(json("7")));
        assert_eq!(decode_cell("\ttrue\n"), Some(json("true")));
        assert_eq!(decode_cell("1 2"), Some(Value::String("1 2".into())));
    }

    #[test]
    fn number_text_survives_a_round_trip_through_a_cell() {
        for text in ["9007199254740993", "18446744073709551615", "1e-7", "-0.0"] {
            let Some(Value::Number(number)) = decode_cell(&encode_cell(&json(text))) else {
                panic!("{text} did not come back as a number");
            };
            assert_eq!(number.to_string(), text);
        }
    }

    #[test]
    fn map_equality_ignores_key_order() {
        // The round-trip tests rely on this: decoding may reorder keys.
        assert_eq!(
            object(r#"{"a":1,"b":{"c":2,"d":3}}"#),
            object(r#"{"b":{"d":3,"c":2},"a":1}"#)
        );
        assert_ne!(object(r#"{"a":1.0}"#), object(r#"{"a":1.00}"#));
    }

    // ---- Formula escaping ----

    #[test]
    fn formula_escaping_prefixes_one_quote_and_unescaping_removes_it() {
        for (cell, escaped) in [
            ("=1+1", "'=1+1"),
            ("+1", "'+1"),
            ("-5", "'-5"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'x", "''x"),
            ("'", "''"),
            ("plain", "plain"),
            ("\"-5\"", "\"-5\""),
            (" =1", " =1"),
            ("", ""),
        ] {
            let mut text = cell.to_owned();
            escape_formula(&mut text);
            assert_eq!(text, escaped, "escaping {cell:?}");
            assert_eq!(
                read_cell(&text, true),
                decode_cell(cell),
                "reading {text:?}"
            );
        }
    }

    #[test]
    fn escaping_is_off_unless_asked_for() {
        let user = object(r#"{"user_id":"=cmd","logins_count":-5}"#);
        let shape = CsvShape::json(Some(&strings(&["user_id", "logins_count"]))).unwrap();
        assert_eq!(shape.encode(&user, false).unwrap(), ["=cmd", "-5"]);
        assert_eq!(shape.encode(&user, true).unwrap(), ["'=cmd", "'-5"]);
    }

    #[test]
    fn unescaping_removes_exactly_one_quote() {
        assert_eq!(read_cell("''x", true), Some(Value::String("'x".into())));
        assert_eq!(read_cell("'-5", true), Some(json("-5")));
        assert_eq!(read_cell("'", true), Some(Value::String(String::new())));
        assert_eq!(read_cell("'-5", false), Some(Value::String("'-5".into())));
        assert_eq!(read_cell("", true), None);
    }

    // ---- Columns: json mode ----

    #[test]
    fn json_header_is_the_profile_columns_then_extra() {
        let shape = CsvShape::json(None).unwrap();
        let mut expected = strings(&PROFILE_COLUMNS);
        expected.push("extra".into());
        assert_eq!(shape.header(), expected);
        assert_eq!(shape.mode(), MetadataMode::Json);
    }

    #[test]
    fn json_mode_writes_metadata_and_other_keys_as_json_cells() {
        let user = object(
            r#"{"zeta":1,"user_id":"auth0|1","logins_count":3,"email_verified":true,
                "user_metadata":{"b":{"c":[1]},"a":"x"},"app_metadata":{},
                "identities":[{"provider":"auth0"}],"custom":{"k":"v"}}"#,
        );
        let shape = CsvShape::json(None).unwrap();
        let cells = shape.encode(&user, false).unwrap();
        let cell = |name: &str| &cells[shape.header().iter().position(|h| h == name).unwrap()];
        assert_eq!(cell("user_id"), "auth0|1");
        assert_eq!(cell("logins_count"), "3");
        assert_eq!(cell("email_verified"), "true");
        assert_eq!(cell("email"), "");
        assert_eq!(cell("user_metadata"), r#"{"b":{"c":[1]},"a":"x"}"#);
        assert_eq!(cell("app_metadata"), "{}");
        assert_eq!(cell("identities"), r#"[{"provider":"auth0"}]"#);
        assert_eq!(cell("extra"), r#"{"zeta":1,"custom":{"k":"v"}}"#);
    }

    #[test]
    fn extra_is_empty_when_every_key_has_a_column() {
        let shape = CsvShape::json(None).unwrap();
        let cells = shape.encode(&object(r#"{"user_id":"u"}"#), false).unwrap();
        assert_eq!(cells.last().unwrap(), "");
    }

    #[test]
    fn a_top_level_key_named_extra_round_trips() {
        let user = object(r#"{"user_id":"u","extra":{"x":1}}"#);
        for mode in [MetadataMode::Json, MetadataMode::Flatten] {
            assert_eq!(
                round_trip(std::slice::from_ref(&user), mode, None, false),
                std::slice::from_ref(&user)
            );
        }
    }

    #[test]
    fn metadata_that_is_not_an_object_is_refused() {
        let user = object(r#"{"user_id":"u","user_metadata":"text"}"#);
        let error = CsvShape::json(None)
            .unwrap()
            .encode(&user, false)
            .unwrap_err();
        assert_eq!(error.column, "user_metadata");
        assert!(error.message.contains("found a string"), "{error}");
        let error = LeafColumns::default().collect(&user).unwrap_err();
        assert_eq!(error.column, "user_metadata");
        let shape = CsvShape::flatten(None, &LeafColumns::default()).unwrap();
        assert_eq!(
            shape.encode(&user, false).unwrap_err().column,
            "user_metadata"
        );
    }

    #[test]
    fn identities_that_are_not_an_array_are_refused() {
        let user = object(r#"{"identities":{"provider":"auth0"}}"#);
        let error = CsvShape::json(None)
            .unwrap()
            .encode(&user, false)
            .unwrap_err();
        assert_eq!(error.column, "identities");
        assert_eq!(error.message, "must hold a JSON array, found an object");
    }

    // ---- Columns: flatten mode ----

    fn flatten_shape(users: &[Map<String, Value>]) -> CsvShape {
        shape_for(users, MetadataMode::Flatten, None)
    }

    #[test]
    fn flatten_header_puts_sorted_leaf_columns_after_each_metadata_column() {
        let users = [
            object(
                r#"{"app_metadata":{"plan":"pro","flags":{"beta":true}},"user_metadata":{"z":1}}"#,
            ),
            object(r#"{"user_metadata":{"a-b":1,"a":{"b":2,"c":{}},"é":null,"":3}}"#),
        ];
        let shape = flatten_shape(&users);
        let header = shape.header();
        let start = PROFILE_COLUMNS.len() - 2;
        assert_eq!(header[..start], PROFILE_COLUMNS[..start]);
        assert_eq!(
            header[start..],
            strings(&[
                "user_metadata",
                "user_metadata.",
                "user_metadata.a.b",
                "user_metadata.a.c",
                "user_metadata.a-b",
                "user_metadata.z",
                "user_metadata.é",
                "app_metadata",
                "app_metadata.flags.beta",
                "app_metadata.plan",
                "extra",
            ])
        );
        assert_eq!(shape.mode(), MetadataMode::Flatten);
    }

    #[test]
    fn flatten_leaves_are_empty_objects_arrays_and_scalars() {
        let user = object(
            r#"{"user_metadata":{"a":{"b":1,"c":{}},"d":[1,{"e":2}],"f":null,"g":"42","h":[]}}"#,
        );
        let shape = flatten_shape(std::slice::from_ref(&user));
        let cells = shape.encode(&user, false).unwrap();
        let row: Vec<(&str, &str)> = shape
            .header()
            .iter()
            .zip(&cells)
            .filter(|(name, _)| name.starts_with("user_metadata"))
            .map(|(name, cell)| (name.as_str(), cell.as_str()))
            .collect();
        assert_eq!(
            row,
            [
                ("user_metadata", ""),
                ("user_metadata.a.b", "1"),
                ("user_metadata.a.c", "{}"),
                ("user_metadata.d", r#"[1,{"e":2}]"#),
                ("user_metadata.f", "null"),
                ("user_metadata.g", r#""42""#),
                ("user_metadata.h", "[]"),
            ]
        );
    }

    #[test]
    fn flatten_empty_metadata_rule_keeps_absent_empty_and_filled_apart() {
        let absent = object(r#"{"user_id":"absent"}"#);
        let empty = object(r#"{"user_id":"empty","user_metadata":{}}"#);
        let filled = object(r#"{"user_id":"filled","user_metadata":{"a":1}}"#);
        let users = [absent, empty, filled];
        let shape = flatten_shape(&users);
        let column = |name: &str| shape.header().iter().position(|h| h == name).unwrap();
        let (whole, leaf) = (column("user_metadata"), column("user_metadata.a"));
        let cells: Vec<(String, String)> = users
            .iter()
            .map(|user| {
                let row = shape.encode(user, false).unwrap();
                (row[whole].clone(), row[leaf].clone())
            })
            .collect();
        assert_eq!(
            cells,
            [
                (String::new(), String::new()),
                ("{}".to_owned(), String::new()),
                (String::new(), "1".to_owned()),
            ]
        );
        assert_eq!(
            round_trip(&users, MetadataMode::Flatten, None, false),
            users
        );
    }

    #[test]
    fn flatten_refuses_a_metadata_key_with_a_dot_and_names_it() {
        let user = object(r#"{"app_metadata":{"billing":{"plan.v2":1}}}"#);
        let error = LeafColumns::default().collect(&user).unwrap_err();
        assert_eq!(error.column, "app_metadata");
        assert!(
            error
                .message
                .contains(r#"key "plan.v2" under `app_metadata.billing`"#),
            "{error}"
        );
        let shape = flatten_shape(&[]);
        assert_eq!(shape.encode(&user, false).unwrap_err(), error);
        // Json mode has no such limit.
        assert_eq!(
            round_trip(std::slice::from_ref(&user), MetadataMode::Json, None, false),
            [user]
        );
    }

    #[test]
    fn collect_adds_nothing_from_a_user_it_refuses() {
        let mut leaf_columns = LeafColumns::default();
        let user = object(r#"{"user_metadata":{"a":1},"app_metadata":{"b.c":1}}"#);
        assert!(leaf_columns.collect(&user).is_err());
        assert!(leaf_columns.is_empty());
        leaf_columns
            .collect(&object(r#"{"user_metadata":{"a":1,"b":{"c":2}}}"#))
            .unwrap();
        assert_eq!(leaf_columns.len(), 2);
    }

    #[test]
    fn flatten_encode_refuses_a_leaf_that_was_not_collected() {
        let shape = flatten_shape(&[object(r#"{"user_metadata":{"a":1}}"#)]);
        let error = shape
            .encode(&object(r#"{"user_metadata":{"b":{"c":1}}}"#), false)
            .unwrap_err();
        assert_eq!(error.column, "user_metadata.b.c");
        assert!(error.message.contains("LeafColumns::collect"), "{error}");
    }

    // ---- Selected fields ----

    #[test]
    fn selected_fields_are_exactly_the_columns_without_extra() {
        let fields = strings(&["email", "app_metadata", "user_id", "custom"]);
        assert_eq!(CsvShape::json(Some(&fields)).unwrap().header(), fields);
        let users = [object(
            r#"{"app_metadata":{"plan":"pro","x":{"y":[]}},"user_metadata":{"a":1}}"#,
        )];
        let shape = shape_for(&users, MetadataMode::Flatten, Some(&fields));
        assert_eq!(
            shape.header(),
            strings(&[
                "email",
                "app_metadata",
                "app_metadata.plan",
                "app_metadata.x.y",
                "user_id",
                "custom"
            ])
        );
    }

    #[test]
    fn selected_fields_read_back_as_the_user_restricted_to_them() {
        let user = object(
            r#"{"user_id":"u","email":"e@x","custom":5,"user_metadata":{"a":{}},"app_metadata":{}}"#,
        );
        for fields in [
            strings(&["app_metadata", "custom"]),
            strings(&["user_metadata", "user_id"]),
        ] {
            for mode in [MetadataMode::Json, MetadataMode::Flatten] {
                assert_eq!(
                    round_trip(std::slice::from_ref(&user), mode, Some(&fields), true),
                    [restrict(&user, &fields)]
                );
            }
        }
    }

    #[test]
    fn invalid_field_selections_are_refused() {
        for (fields, column, words) in [
            (vec![], "", "empty"),
            (vec!["user_id", "email", "user_id"], "user_id", "twice"),
            (vec!["extra"], "extra", "cannot be selected"),
            (vec!["email.domain"], "email.domain", "must be a path"),
            (
                vec!["user_metadata..plan"],
                "user_metadata..plan",
                "must be a path",
            ),
            (
                vec!["user_metadata", "user_metadata.plan"],
                "user_metadata.plan",
                "lies inside",
            ),
            (vec!["user_id", ""], "", "no name"),
        ] {
            let fields = strings(&fields);
            for error in [
                CsvShape::json(Some(&fields)).unwrap_err(),
                CsvShape::flatten(Some(&fields), &LeafColumns::default()).unwrap_err(),
            ] {
                assert_eq!(error.column, column);
                assert!(error.message.contains(words), "{error}");
            }
        }
    }

    #[test]
    fn a_selected_metadata_path_is_one_column_that_reads_back_in_place() {
        let user = object(
            r#"{"user_id": "auth0|1", "user_metadata": {"country": "NZ", "address": {"city": "Akl"}}, "app_metadata": {"plan": "pro", "limits": {"seats": 5}}}"#,
        );
        let fields = strings(&[
            "user_id",
            "user_metadata.country",
            "app_metadata.limits",
            "app_metadata.missing",
        ]);
        for mode in [MetadataMode::Json, MetadataMode::Flatten] {
            let shape = shape_for(std::slice::from_ref(&user), mode, Some(&fields));
            assert_eq!(shape.header(), &fields[..]);
            assert_eq!(
                shape.encode(&user, false).unwrap(),
                ["auth0|1", "NZ", r#"{"seats":5}"#, ""]
            );
            assert_eq!(
                Value::Object(
                    round_trip(std::slice::from_ref(&user), mode, Some(&fields), false).remove(0)
                ),
                json(
                    r#"{"user_id": "auth0|1", "user_metadata": {"country": "NZ"}, "app_metadata": {"limits": {"seats": 5}}}"#
                )
            );
        }
    }

    #[test]
    fn a_selected_field_starting_with_a_byte_order_mark_is_refused() {
        // Found by the csv_unflatten fuzz target: `--fields "\u{feff}x"` wrote a header that
        // read back as `x`, because the reader drops a byte order mark at the start of a file.
        let users = [object(r#"{"\ufeffx": 1}"#)];
        let written = write_csv(&users, &CsvShape::json(None).expect("shape"), false);
        assert_eq!(read_csv(&written, false).expect("readable"), users);
        let read_back = read_csv("\u{feff}x\n1\n".as_bytes(), false).expect("readable");
        assert_eq!(read_back, [object(r#"{"x": 1}"#)]);

        let fields = strings(&["\u{feff}x"]);
        for error in [
            CsvShape::json(Some(&fields)).unwrap_err(),
            CsvShape::flatten(Some(&fields), &LeafColumns::default()).unwrap_err(),
        ] {
            assert_eq!(error.column, "\u{feff}x");
            assert!(error.message.contains("byte order mark"), "{error}");
        }
    }

    // ---- Decoding: header ----

    #[test]
    fn header_validation_refuses_duplicate_empty_and_stray_dotted_names() {
        let error = CsvDecoder::new(&record(&["user_id", "email", "user_id"]), false).unwrap_err();
        assert_eq!(
            error,
            CsvFieldError::new(
                "user_id",
                "appears twice in the header (columns 1 and 3); remove or rename one"
            )
        );
        let error = CsvDecoder::new(&record(&["user_id", ""]), false).unwrap_err();
        assert_eq!(
            error.to_string(),
            "column 2 of the header has no name; name every column"
        );
        let error = CsvDecoder::new(&record(&["address.city"]), false).unwrap_err();
        assert_eq!(error.column, "address.city");
        // `metadata.x` is not a metadata prefix, and a bare prefix without a dot is a plain key.
        assert!(CsvDecoder::new(&record(&["metadata.x"]), false).is_err());
        assert!(CsvDecoder::new(&record(&["user_metadatax"]), false).is_ok());
    }

    #[test]
    fn every_shape_header_is_a_valid_decoder_header() {
        let users = [object(
            r#"{"user_metadata":{"a":{"b":1}},"app_metadata":{"":2}}"#,
        )];
        for mode in [MetadataMode::Json, MetadataMode::Flatten] {
            let shape = shape_for(&users, mode, None);
            CsvDecoder::new(&StringRecord::from(shape.header().to_vec()), false).unwrap();
        }
    }

    #[test]
    fn byte_order_mark_before_the_header_is_ignored() {
        let file = "\u{feff}user_id,email\nu1,a@example.com\n";
        assert_eq!(
            read_csv(file.as_bytes(), false).unwrap(),
            [object(r#"{"user_id":"u1","email":"a@example.com"}"#)]
        );
    }

    // ---- Decoding: rows ----

    fn decode_one(header: &[&str], row: &[&str]) -> Result<Map<String, Value>, CsvFieldError> {
        CsvDecoder::new(&record(header), false)?.decode(&record(row))
    }

    #[test]
    fn a_human_made_csv_builds_nested_metadata() {
        let user = decode_one(
            &[
                "Email",
                "user_metadata.address.city",
                "user_metadata.address.zip",
                "app_metadata.plan",
                "logins_count",
                "note",
            ],
            &[
                "a@example.com",
                "Paris",
                "\"75001\"",
                "pro",
                "12",
                "hello, world",
            ],
        )
        .unwrap();
        assert_eq!(
            user,
            object(
                r#"{"Email":"a@example.com","user_metadata":{"address":{"city":"Paris","zip":"75001"}},
                    "app_metadata":{"plan":"pro"},"logins_count":12,"note":"hello, world"}"#
            )
        );
    }

    #[test]
    fn decoded_keys_follow_the_header_with_extra_keys_last() {
        let user = decode_one(
            &[
                "extra",
                "app_metadata.b",
                "user_id",
                "app_metadata.a",
                "user_metadata",
            ],
            &[r#"{"z":1,"y":2}"#, "1", "u", "2", r#"{"k":3}"#],
        )
        .unwrap();
        let keys: Vec<&String> = user.keys().collect();
        assert_eq!(keys, ["app_metadata", "user_id", "user_metadata", "z", "y"]);
        let nested: Vec<&String> = user["app_metadata"].as_object().unwrap().keys().collect();
        assert_eq!(nested, ["b", "a"]);
    }

    #[test]
    fn rows_with_the_wrong_number_of_cells_are_refused() {
        let error = decode_one(&["user_id", "email", "name"], &["u"]).unwrap_err();
        assert_eq!(error.column, "email");
        assert_eq!(
            error.message,
            "the row ends before this column: it has 1 cells, the header has 3 columns"
        );
        let error = decode_one(&["user_id"], &["u", "x"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the row has 2 cells, more than the 1 columns of the header"
        );
        // Through the csv reader, with `flexible(true)`.
        let error = read_csv(b"user_id,email\nu1\n", false).unwrap_err();
        assert_eq!(error.column, "email");
    }

    #[test]
    fn json_columns_refuse_other_values_precisely() {
        let error = decode_one(&["user_metadata"], &["[1]"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "column `user_metadata`: must hold a JSON object, found an array"
        );
        let error = decode_one(&["app_metadata"], &[r#"{"plan": pro}"#]).unwrap_err();
        assert_eq!(error.column, "app_metadata");
        assert!(
            error
                .message
                .starts_with(r#"must hold a JSON object, but `{"plan": pro}` is not valid JSON ("#),
            "{error}"
        );
        let error = decode_one(&["extra"], &["\"x\""]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "column `extra`: must hold a JSON object, found a string"
        );
        let error = decode_one(&["identities"], &["{}"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "column `identities`: must hold a JSON array, found an object"
        );
        let error = decode_one(&["extra"], &[r#"{"user_metadata":5}"#]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "column `extra`: key \"user_metadata\" must hold a JSON object, found a number"
        );
    }

    #[test]
    fn long_invalid_json_is_shortened_in_the_message() {
        let cell = format!("{{{}", "x".repeat(100));
        let error = decode_one(&["user_metadata"], &[&cell]).unwrap_err();
        assert!(
            error.message.contains(&format!("`{{{}…`", "x".repeat(39))),
            "{error}"
        );
    }

    #[test]
    fn dotted_columns_conflicting_with_the_json_column_are_refused() {
        let error = decode_one(
            &["user_metadata", "user_metadata.a", "user_metadata.b"],
            &[r#"{"c":1}"#, "", "2"],
        )
        .unwrap_err();
        assert_eq!(error.column, "user_metadata.b");
        assert!(
            error.message.contains("so does column `user_metadata`"),
            "{error}"
        );
        // Either one alone is fine, per row.
        let decoder =
            CsvDecoder::new(&record(&["user_metadata", "user_metadata.b"]), false).unwrap();
        assert_eq!(
            decoder.decode(&record(&["{}", ""])).unwrap(),
            object(r#"{"user_metadata":{}}"#)
        );
        assert_eq!(
            decoder.decode(&record(&["", "2"])).unwrap(),
            object(r#"{"user_metadata":{"b":2}}"#)
        );
        assert_eq!(decoder.decode(&record(&["", ""])).unwrap(), Map::new());
    }

    #[test]
    fn a_dotted_column_deeper_than_a_record_may_nest_is_refused_in_the_header() {
        let path = |segments: usize| vec!["n"; segments].join(".");
        let fits = format!("user_metadata.{}", path(MAX_PATH_SEGMENTS));
        let user = decode_one(&["email", &fits], &["a@x", "1"]).expect("the deepest path fits");
        // The user, as its JSON text, is exactly as deep as a reader takes.
        let text = serde_json::to_string(&user).expect("JSON");
        serde_json::from_str::<Value>(&text).expect("reads back");
        let deeper = format!("{{\"x\":{text}}}");
        assert!(
            serde_json::from_str::<Value>(&deeper).is_err(),
            "one more level is refused"
        );

        // Long enough to overflow the stack of a recursive walk if it were built.
        for segments in [MAX_PATH_SEGMENTS + 1, 100_000] {
            let name = format!("app_metadata.{}", path(segments));
            let error = CsvDecoder::new(&StringRecord::from(vec!["email", name.as_str()]), false)
                .expect_err("too deep");
            assert!(error.message.contains(&segments.to_string()), "{error}");
            assert!(error.column.starts_with("app_metadata.n.n"), "{error}");
            assert!(error.column.len() < 100, "the name is shortened: {error}");
        }
    }

    #[test]
    fn dotted_columns_on_a_parent_path_are_refused() {
        let header = ["user_metadata.a.b", "user_metadata.a"];
        let error = decode_one(&header, &["1", r#"{"c":2}"#]).unwrap_err();
        assert_eq!(error.column, "user_metadata.a.b");
        assert!(
            error.message.contains("so does column `user_metadata.a`"),
            "{error}"
        );
        assert_eq!(
            decode_one(&header, &["1", ""]).unwrap(),
            object(r#"{"user_metadata":{"a":{"b":1}}}"#)
        );
    }

    #[test]
    fn extra_keys_that_have_a_column_are_refused() {
        let error = decode_one(&["email", "extra"], &["", r#"{"email":"x"}"#]).unwrap_err();
        assert_eq!(error.column, "extra");
        assert!(error.message.contains("\"email\""), "{error}");
        let error = decode_one(
            &["app_metadata.plan", "extra"],
            &["", r#"{"app_metadata":{}}"#],
        )
        .unwrap_err();
        assert_eq!(error.column, "extra");
        assert_eq!(
            decode_one(
                &["user_id", "extra"],
                &["u", r#"{"email":"x","app_metadata":{}}"#]
            )
            .unwrap(),
            object(r#"{"user_id":"u","email":"x","app_metadata":{}}"#)
        );
    }

    #[test]
    fn error_display_names_the_column() {
        let error = CsvFieldError::new("email", "bad");
        assert_eq!(error.to_string(), "column `email`: bad");
        assert_eq!(CsvFieldError::new("", "bad").to_string(), "bad");
    }

    // ---- Through csv::Writer and csv::Reader ----

    #[test]
    fn awkward_strings_survive_the_csv_writer_and_reader() {
        let user = object(
            r#"{"user_id":"a,b","name":"line1\nline2\r\nline3\rend","nickname":"say \"hi\"",
                "given_name":"  padded  ","family_name":"\"","picture":"🎉 ü ß \u0000 \u001f",
                "username":"'","email":"=HYPERLINK(\"x\")","last_ip":"-","user_metadata":{"":""}}"#,
        );
        for mode in [MetadataMode::Json, MetadataMode::Flatten] {
            for escape in [false, true] {
                assert_eq!(
                    round_trip(std::slice::from_ref(&user), mode, None, escape),
                    std::slice::from_ref(&user)
                );
            }
        }
    }

    #[test]
    fn a_user_with_no_keys_round_trips() {
        let users = [Map::new(), object(r#"{"user_id":"u"}"#)];
        for mode in [MetadataMode::Json, MetadataMode::Flatten] {
            assert_eq!(round_trip(&users, mode, None, false), users);
            let fields = strings(&["email"]);
            assert_eq!(
                round_trip(&users, mode, Some(&fields), false),
                [Map::new(), Map::new()]
            );
        }
    }

    fn sample_users() -> Vec<Map<String, Value>> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/users.ndjson");
        let text = std::fs::read_to_string(path).expect("samples/users.ndjson is readable");
        text.lines()
            .map(|line| serde_json::from_str(line).expect("a sample user parses"))
            .collect()
    }

    #[test]
    fn sample_users_round_trip_in_both_modes_with_and_without_escaping() {
        let users = sample_users();
        assert_eq!(users.len(), 500);
        for mode in [MetadataMode::Json, MetadataMode::Flatten] {
            for escape in [false, true] {
                let decoded = round_trip(&users, mode, None, escape);
                assert_eq!(decoded.len(), users.len());
                for (original, decoded) in users.iter().zip(&decoded) {
                    assert_eq!(
                        decoded, original,
                        "{mode:?}, escape {escape}, user {}",
                        original["user_id"]
                    );
                }
            }
        }
    }

    #[test]
    fn sample_users_round_trip_with_selected_fields() {
        let users = sample_users();
        let fields = strings(&[
            "app_metadata",
            "user_id",
            "email",
            "logins_count",
            "user_metadata",
        ]);
        for mode in [MetadataMode::Json, MetadataMode::Flatten] {
            let decoded = round_trip(&users, mode, Some(&fields), true);
            let expected: Vec<_> = users.iter().map(|user| restrict(user, &fields)).collect();
            assert_eq!(decoded, expected, "{mode:?}");
        }
    }

    // ---- Property tests ----

    /// JSON numbers as text: big integers, exponents, negative zero, and f64 values.
    fn number() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| f.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
            "-?(0|[1-9][0-9]{0,30})(\\.[0-9]{1,20})?([eE][-+]?[0-9]{1,3})?",
            prop::sample::select(vec![
                "9007199254740993",
                "18446744073709551615",
                "-9223372036854775809",
                "1e-7",
                "-0.0",
                "-0",
                "1E+5",
                "5e-324",
            ])
            .prop_map(str::to_owned),
        ]
        .prop_map(|text| serde_json::from_str(&text).expect("generated number text is JSON"))
    }

    /// Strings that look like JSON, numbers or formulas, awkward CSV text, and anything at all.
    fn string() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "",
                " ",
                "42",
                " 7",
                "7 ",
                "-5",
                "+5",
                "007",
                "true",
                "null",
                "[1]",
                "{}",
                "\"x\"",
                "'",
                "''",
                "'42",
                "=1+1",
                "@x",
                "\tx",
                "\rx",
                "\n",
                "\r\n",
                "a,b",
                "\"",
                "\u{feff}x",
                "NaN",
                "1e400",
                "{\"a\":1}",
                "-",
            ])
            .prop_map(str::to_owned),
            number().prop_map(|n| n.to_string()),
            "[ \t\r\n]{0,2}(true|false|null|\\[\\]|\\{\\}|\"x\"|-?[0-9]{1,3})[ \t\r\n]{0,2}",
            "[=+\\-@\t\r'][ -~]{0,6}",
            "[ -~]{0,12}",
            any::<String>(),
        ]
    }

    /// Metadata keys: unicode, spaces, dashes, emoji, `$`, the empty key; never `.`.
    fn metadata_key() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 _\\-é$🎉\"',]{0,6}"
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            number(),
            string().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((metadata_key(), inner), 0..4)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    fn metadata() -> impl Strategy<Value = Value> {
        prop::collection::vec((metadata_key(), json_value()), 0..5)
            .prop_map(|entries| Value::Object(entries.into_iter().collect()))
    }

    /// A top-level key without a column (dots allowed: they travel inside `extra`).
    fn other_key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("extra".to_owned()),
            "[a-zA-Z_.🎉 -]{1,8}".prop_filter("not a profile column", |key| {
                !PROFILE_COLUMNS.contains(&key.as_str())
            }),
        ]
    }

    fn user() -> impl Strategy<Value = Map<String, Value>> {
        let plain: Vec<&str> = PROFILE_COLUMNS
            .into_iter()
            .filter(|key| Kind::of_key(key).is_none())
            .collect();
        let profile_value = prop_oneof![3 => string().prop_map(Value::String), 1 => json_value()];
        (
            prop::collection::vec(
                (
                    prop::sample::select(plain).prop_map(str::to_owned),
                    profile_value,
                ),
                0..8,
            ),
            prop::option::of(metadata()),
            prop::option::of(metadata()),
            prop::option::of(prop::collection::vec(json_value(), 0..3).prop_map(Value::Array)),
            prop::collection::vec((other_key(), json_value()), 0..3),
        )
            .prop_map(
                |(profile, user_metadata, app_metadata, identities, others)| {
                    let mut entries = profile;
                    entries.extend(user_metadata.map(|value| ("user_metadata".to_owned(), value)));
                    entries.extend(app_metadata.map(|value| ("app_metadata".to_owned(), value)));
                    entries.extend(identities.map(|value| ("identities".to_owned(), value)));
                    entries.extend(others);
                    entries
                },
            )
            .prop_shuffle()
            .prop_map(|entries| entries.into_iter().collect())
    }

    fn restrict_to(user: &Map<String, Value>, fields: Option<&[String]>) -> Map<String, Value> {
        fields.map_or_else(|| user.clone(), |fields| restrict(user, fields))
    }

    fn mode() -> impl Strategy<Value = MetadataMode> {
        prop_oneof![Just(MetadataMode::Json), Just(MetadataMode::Flatten)]
    }

    proptest! {
        #[test]
        fn any_cell_round_trips(value in json_value()) {
            prop_assert_eq!(decode_cell(&encode_cell(&value)), Some(value.clone()));
            let mut cell = encode_cell(&value);
            escape_formula(&mut cell);
            prop_assert_eq!(read_cell(&cell, true), Some(value));
        }

        #[test]
        fn the_quick_json_test_agrees_with_a_parse(text in string()) {
            prop_assert_eq!(parses_as_json(&text), serde_json::from_str::<Value>(&text).is_ok());
        }

        #[test]
        fn a_user_read_from_its_text_gets_the_cells_of_its_map(
            user in user(),
            fields in prop::option::of(
                prop::sample::subsequence(PROFILE_COLUMNS.to_vec(), 1..=PROFILE_COLUMNS.len())
            ),
            escape in any::<bool>(),
            pretty in any::<bool>(),
        ) {
            let fields = fields.map(|f| strings(&f));
            let shape = CsvShape::json(fields.as_deref()).unwrap();
            let expected = shape.encode(&restrict_to(&user, fields.as_deref()), escape).unwrap();
            // Pretty text is not compact: its JSON cells come from a parse.
            let text = if pretty {
                serde_json::to_string_pretty(&user).unwrap()
            } else {
                serde_json::to_string(&user).unwrap()
            };
            let mut cells = vec!["left over".to_owned(); 3];
            prop_assert!(shape.encode_json_text(&text, escape, &mut cells));
            prop_assert_eq!(cells, expected);
        }

        #[test]
        fn any_users_round_trip_through_a_csv_file(
            users in prop::collection::vec(user(), 1..5),
            mode in mode(),
            escape in any::<bool>(),
        ) {
            prop_assert_eq!(round_trip(&users, mode, None, escape), users);
        }

        #[test]
        fn any_users_round_trip_with_selected_fields(
            users in prop::collection::vec(user(), 1..4),
            fields in prop::sample::subsequence(PROFILE_COLUMNS.to_vec(), 1..=PROFILE_COLUMNS.len())
                .prop_shuffle(),
            mode in mode(),
            escape in any::<bool>(),
        ) {
            let fields = strings(&fields);
            let expected: Vec<_> = users.iter().map(|user| restrict(user, &fields)).collect();
            prop_assert_eq!(round_trip(&users, mode, Some(&fields), escape), expected);
        }
    }
}
