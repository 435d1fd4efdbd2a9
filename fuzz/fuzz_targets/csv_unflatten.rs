//! CSV metadata un-flattening: `CsvDecoder` never panics, and users round-trip through a CSV file.
//!
//! Two kinds of input, chosen by the fuzzer:
//!
//! - **Decode**: a header (profile columns, `extra`, dotted `user_metadata.…` /
//!   `app_metadata.…` paths, any text) and rows of cells (any text, JSON, `'`-escaped, empty)
//!   go straight to `CsvDecoder::new` and `CsvDecoder::decode`. A row that decodes gives a user
//!   that the `json` shape writes and the decoder reads back unchanged.
//! - **Round trip**: users built from the input (profile keys, metadata objects, identities,
//!   other keys, numbers with any text, strings that look like JSON or formulas) are written as
//!   the exporter writes them (`LeafColumns::collect`, `CsvShape::json` or `CsvShape::flatten`,
//!   with or without formula escaping and a field selection, through `csv::Writer`) and read
//!   back through `csv::Reader` and `CsvDecoder`. The users read back equal the users written
//!   (restricted to the selected fields), as `src/format/csv.rs` promises.
//!
//! Both properties are checked only for users that nest at most [`MAX_DEPTH`] levels: JSON
//! deeper than serde_json's 128-level limit cannot be read back from a cell, and no user read
//! from Auth0 (or from an import file) is that deep, since the same limit applies there.

#![no_main]

use auth0_bulk::format::csv::{
    CsvDecoder, CsvShape, EXTRA_COLUMN, LeafColumns, PROFILE_COLUMNS, encode_cell,
};
use csv::StringRecord;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value};

/// The deepest user (counting the user object as one level) the properties are checked on.
const MAX_DEPTH: usize = 100;

/// Strings that mean something to the cell rule, the formula escape or CSV.
const TRICKY: [&str; 30] = [
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
    "user_metadata.a",
];

#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    /// An integer part, optional fraction digits and exponent: any JSON number text.
    Number(i64, Option<u16>, Option<i16>),
    Float(f64),
    Str(Text),
    Array(Vec<Json>),
    Object(Vec<(Text, Json)>),
}

#[derive(Arbitrary, Debug)]
enum Text {
    Tricky(u8),
    Any(String),
}

impl Text {
    fn text(&self) -> String {
        match self {
            Text::Tricky(i) => TRICKY[usize::from(*i) % TRICKY.len()].to_owned(),
            Text::Any(s) => s.clone(),
        }
    }
}

impl Json {
    fn value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(int, frac, exp) => {
                let mut text = int.to_string();
                if let Some(frac) = frac {
                    text.push_str(&format!(".{frac:03}"));
                }
                if let Some(exp) = exp {
                    text.push_str(&format!("e{exp}"));
                }
                serde_json::from_str::<Number>(&text).map_or(Value::Null, Value::Number)
            }
            Json::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Json::Str(t) => Value::String(t.text()),
            Json::Array(items) => Value::Array(items.iter().map(Json::value).collect()),
            Json::Object(entries) => Value::Object(object(entries)),
        }
    }
}

fn object(entries: &[(Text, Json)]) -> Map<String, Value> {
    entries.iter().map(|(k, v)| (k.text(), v.value())).collect()
}

/// A top-level key or a header name.
#[derive(Arbitrary, Debug)]
enum Name {
    Profile(u8),
    Extra,
    /// `user_metadata.` (or `app_metadata.` when true) and a dotted path.
    Dotted(bool, Vec<Text>),
    Any(Text),
}

impl Name {
    fn text(&self) -> String {
        match self {
            Name::Profile(i) => PROFILE_COLUMNS[usize::from(*i) % PROFILE_COLUMNS.len()].to_owned(),
            Name::Extra => EXTRA_COLUMN.to_owned(),
            Name::Dotted(app, path) => {
                let meta = if *app {
                    "app_metadata"
                } else {
                    "user_metadata"
                };
                let path: Vec<String> = path.iter().map(Text::text).collect();
                format!("{meta}.{}", path.join("."))
            }
            Name::Any(t) => t.text(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Cell {
    Empty,
    Text(Text),
    Json(Json),
    /// A formula-escaped cell: `'` and the rest.
    Quoted(Box<Cell>),
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(t) => t.text(),
            Cell::Json(j) => encode_cell(&j.value()),
            Cell::Quoted(inner) => format!("'{}", inner.text()),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct UserInput {
    profile: Vec<(Name, Json)>,
    user_metadata: Option<Vec<(Text, Json)>>,
    app_metadata: Option<Vec<(Text, Json)>>,
    identities: Option<Vec<Json>>,
}

impl UserInput {
    fn user(&self) -> Map<String, Value> {
        let mut user: Map<String, Value> = self
            .profile
            .iter()
            .map(|(name, value)| (name.text(), value.value()))
            .collect();
        if let Some(m) = &self.user_metadata {
            user.insert("user_metadata".into(), Value::Object(object(m)));
        }
        if let Some(m) = &self.app_metadata {
            user.insert("app_metadata".into(), Value::Object(object(m)));
        }
        if let Some(ids) = &self.identities {
            user.insert(
                "identities".into(),
                Value::Array(ids.iter().map(Json::value).collect()),
            );
        }
        user
    }
}

#[derive(Arbitrary, Debug)]
enum Input {
    Decode {
        header: Vec<Name>,
        rows: Vec<Vec<Cell>>,
        /// Keep each row's own length instead of fitting it to the header.
        ragged: bool,
        unescape: bool,
    },
    RoundTrip {
        users: Vec<UserInput>,
        flatten: bool,
        escape: bool,
        fields: Option<Vec<Name>>,
    },
}

/// How many levels a value nests; a scalar is one.
fn depth(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn user_depth(user: &Map<String, Value>) -> usize {
    1 + user.values().map(depth).max().unwrap_or(0)
}

/// Writes users with a shape as the exporter does; None when the shape refuses one.
fn write(shape: &CsvShape, users: &[Map<String, Value>], escape: bool) -> Option<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(shape.header()).expect("in memory");
    for user in users {
        let cells = shape.encode(user, escape).ok()?;
        writer.write_record(&cells).expect("in memory");
    }
    Some(writer.into_inner().expect("in memory"))
}

/// Reads a file back as the importer's `csv` reader settings do.
fn read(bytes: &[u8], unescape: bool) -> Vec<Map<String, Value>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header = reader.headers().expect("a header was written").clone();
    let decoder = CsvDecoder::new(&header, unescape)
        .unwrap_or_else(|e| panic!("a written header {header:?} is refused: {e}"));
    reader
        .records()
        .map(|row| {
            let row = row.expect("a written row reads");
            decoder
                .decode(&row)
                .unwrap_or_else(|e| panic!("a written row {row:?} is refused: {e}"))
        })
        .collect()
}

fn round_trip(
    users: &[Map<String, Value>],
    flatten: bool,
    escape: bool,
    fields: Option<&[String]>,
) {
    if users.iter().any(|user| user_depth(user) > MAX_DEPTH) {
        return;
    }
    let shape = if flatten {
        let mut leaves = LeafColumns::default();
        for user in users {
            if leaves.collect(user).is_err() {
                return;
            }
        }
        CsvShape::flatten(fields, &leaves)
    } else {
        CsvShape::json(fields)
    };
    let Ok(shape) = shape else { return };
    let Some(bytes) = write(&shape, users, escape) else {
        return;
    };
    let expected: Vec<Map<String, Value>> = match fields {
        None => users.to_vec(),
        Some(fields) => users
            .iter()
            .map(|user| {
                user.iter()
                    .filter(|(key, _)| fields.contains(key))
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect()
            })
            .collect(),
    };
    let read_back = read(&bytes, escape);
    assert_eq!(
        read_back,
        expected,
        "users do not round-trip through\n{}",
        String::from_utf8_lossy(&bytes)
    );
}

fuzz_target!(|input: Input| {
    match input {
        Input::Decode {
            header,
            rows,
            ragged,
            unescape,
        } => {
            let header = StringRecord::from(header.iter().map(Name::text).collect::<Vec<_>>());
            let Ok(decoder) = CsvDecoder::new(&header, unescape) else {
                return;
            };
            let mut users = Vec::new();
            for row in rows {
                let mut cells: Vec<String> = row.iter().map(Cell::text).collect();
                if !ragged {
                    cells.resize(header.len(), String::new());
                }
                if let Ok(user) = decoder.decode(&StringRecord::from(cells)) {
                    users.push(user);
                }
            }
            // What the decoder makes, the exporter can write and the decoder read again.
            round_trip(&users, false, false, None);
        }
        Input::RoundTrip {
            users,
            flatten,
            escape,
            fields,
        } => {
            let users: Vec<Map<String, Value>> = users.iter().map(UserInput::user).collect();
            let fields: Option<Vec<String>> =
                fields.map(|names| names.iter().map(Name::text).collect());
            round_trip(&users, flatten, escape, fields.as_deref());
        }
    }
});
