//! Reading an import input: a file or stdin becomes numbered records, one at a time.
//!
//! [`open`] takes a path (`-` for stdin) and returns the format it read and an iterator of
//! [`Record`]s in input order. Records are read lazily and one at a time, so memory does not
//! depend on the size of the file: at most one record of [`ReadOptions::max_record_bytes`] is
//! held, plus fixed-size buffers. [`from_reader`] reads any reader the same way, with a name
//! standing for the file name.
//!
//! # Formats
//!
//! - **NDJSON** (this tool's export, Auth0's export job): one JSON object a line. Blank lines
//!   (only spaces, tabs and CR) are not records. CRLF line ends are accepted.
//! - **CSV** (this tool's export in both metadata modes, or any CSV with a header): the header
//!   and the cells follow [`crate::format::csv`]; [`CsvDecoder`] turns each row into a user.
//!   Blank lines are skipped, as the `csv` crate skips them.
//! - **JSON array** (Auth0's bulk-import files): `[ {...}, {...} ]`. The array is never loaded
//!   whole. A small scanner follows strings, escapes and bracket depth and cuts the text at each
//!   top-level `,`, so one bad element is its own error and the next element reads normally. An
//!   empty element (`,,`, or a `,` just before `]`) holds no user and is skipped, as a blank
//!   NDJSON line is.
//!
//! Whatever the format, gzip input is recognised by its first bytes (`1f 8b`), whatever the
//! name, and multi-member gzip files are read to the end. A UTF-8 byte order mark at the start
//! of the (decompressed) text is dropped.
//!
//! [`InputFormat::Auto`] decides by the file name (`.ndjson`, `.jsonl`, `.csv`, `.json`, each
//! with an optional `.gz`) and else by the first byte that is not blank: `[` is a JSON array,
//! `{` is NDJSON, anything else is CSV, and an input that is empty or blank is NDJSON (no
//! records). A `.json` name alone does not decide: Auth0's export job writes NDJSON into
//! `.json.gz` files, so a `.json` file whose first byte is `{` is read as NDJSON. But when that
//! `{` is alone on its line, the input is one pretty-printed JSON object, not NDJSON, and
//! `Auto` refuses it (an [`InputError`]) rather than reject every line of it.
//!
//! A format chosen without looking (by a `.csv` or `.ndjson`/`.jsonl` name, with or without
//! `.gz`, or by `--format csv|ndjson`) is checked against the first line that is not blank:
//! CSV whose first line starts with `{` (NDJSON) or `[` (a JSON array), and NDJSON whose first
//! line is a CSV header (text with no JSON bracket or key, comma-separated or one plain name)
//! are refused whole ([`InputError::Mismatch`]), naming what was found. The check is cautious:
//! a broken NDJSON line or a JSON array in an NDJSON file stays records the reader rejects, and
//! blank content is no records in every format.
//!
//! # Line numbers
//!
//! [`Record::line`] is the 1-based physical line (counted by `\n`) where the record starts:
//! the NDJSON line; the line of the first byte of a CSV row (a quoted cell may hold line
//! breaks, and the next row's number counts them; `csv`'s own `Position::line` does not count
//! the blank lines before a row, so the reader counts lines itself); the line of the first byte
//! of a JSON array element. Several elements of a JSON array written on one line share its line
//! number.
//!
//! # Errors
//!
//! A record that cannot be read is a [`Record`] whose result is a [`RecordError`], and the
//! records after it are read as usual. Its `code` is one of the [`code`] constants:
//!
//! | code | when |
//! |------|------|
//! | `invalid_json` | The text is not JSON (the message has serde's line and column, in the file's numbering), nests deeper than 127 levels ([`crate::rules::MAX_JSON_DEPTH`]), or the JSON array is cut short (see below). |
//! | `not_an_object` | The JSON is valid but not an object (`[1]`, `"x"`, `null`). |
//! | `invalid_utf8` | The record's bytes are not UTF-8. For a CSV row, `field` is the column. |
//! | `too_large` | The record is longer than `max_record_bytes`. The reader skips it without holding more than that many bytes of it. |
//! | `csv_row` | A CSV row has more or fewer cells than the header, a cell is not what its column needs (from [`CsvDecoder`]; `field` is the column), or a quoted cell is never closed. |
//! | `duplicate_key` | One JSON object has the same key twice (serde would keep the last one silently). `field` is the path of the key, such as `user_metadata.plan`; in a CSV cell, `field` is the column. |
//! | `read_error` | The input could not be read any further (a gzip stream cut short, a disk error). It is the last record; the reader stops there. |
//!
//! A JSON array that ends without its `]` ends with one `invalid_json` record: the element the
//! input ends inside of, or, when the last element is complete, an extra record at the last
//! line that says the array was not closed. An input that cannot be read at all is an
//! [`InputError`] from [`open`], before any record: a missing file, a `.gz` name on data that is
//! not gzip, a read error before the first record, content that contradicts its name or
//! `--format`, a CSV header that cannot be used, a JSON input that does not start with `[` or
//! holds nothing after it.
//!
//! [`RecordError::raw`] holds the record's text (its bytes as lossy UTF-8, at most
//! `max_record_bytes` of them) so a rejects file can keep it for fixing: the NDJSON line, the
//! JSON element, or the CSV row as it is in the file.
//!
//! Nothing here panics on any input: every byte sequence is either records or an error.

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;

use csv::{ByteRecord, StringRecord};
use flate2::read::MultiGzDecoder;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::format::csv::{CsvDecoder, CsvFieldError};
use crate::rules::MAX_JSON_DEPTH;

/// The default of [`ReadOptions::max_record_bytes`]: 10 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 10 * 1024 * 1024;

/// How errors name standard input.
const STDIN: &str = "standard input";

/// The stable codes of [`RecordError::code`], as they appear in rejects files.
pub mod code {
    /// Not JSON, too deeply nested, or a JSON array cut short.
    pub const INVALID_JSON: &str = "invalid_json";
    /// Valid JSON that is not an object.
    pub const NOT_AN_OBJECT: &str = "not_an_object";
    /// Bytes that are not UTF-8.
    pub const INVALID_UTF8: &str = "invalid_utf8";
    /// A record longer than `max_record_bytes`.
    pub const TOO_LARGE: &str = "too_large";
    /// A CSV row that does not fit the header, or a cell that does not fit its column.
    pub const CSV_ROW: &str = "csv_row";
    /// The same key twice in one JSON object.
    pub const DUPLICATE_KEY: &str = "duplicate_key";
    /// The input cannot be read past this point; the last record of the input.
    pub const READ_ERROR: &str = "read_error";
}

/// The input formats. `Auto` picks from the file name (`.ndjson`/`.jsonl`/`.json`/`.csv`, with
/// an optional `.gz`), else sniffs the first non-blank byte: `[` → Json, `{` → Ndjson,
/// otherwise Csv. A `.json` file that starts with `{` is NDJSON (Auth0's export job names its
/// NDJSON files `.json.gz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputFormat {
    #[default]
    Auto,
    Ndjson,
    Csv,
    Json,
}

impl InputFormat {
    /// The name used on the command line: `auto`, `ndjson`, `csv` or `json`.
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Auto => "auto",
            InputFormat::Ndjson => "ndjson",
            InputFormat::Csv => "csv",
            InputFormat::Json => "json",
        }
    }
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to read an input.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The format; `Auto` (the default) decides from the name and the first byte.
    pub format: InputFormat,
    /// For CSV: remove one leading `'` from each cell (see [`crate::format::csv`]).
    pub unescape_formulas: bool,
    /// The longest record, in bytes, without its line end. Longer records are `too_large`.
    /// Default [`DEFAULT_MAX_RECORD_BYTES`]; `0` also means the default.
    pub max_record_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> ReadOptions {
        ReadOptions {
            format: InputFormat::Auto,
            unescape_formulas: false,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

impl ReadOptions {
    fn cap(&self) -> usize {
        match self.max_record_bytes {
            0 => DEFAULT_MAX_RECORD_BYTES,
            cap => cap,
        }
    }
}

/// One input record: its 1-based line (for JSON arrays: the line where the element starts; for
/// CSV: the physical line where the row starts), and either the object or why it could not be
/// read.
#[derive(Debug)]
pub struct Record {
    pub line: u64,
    pub result: Result<Map<String, Value>, RecordError>,
}

/// Why a record cannot be read. `raw` keeps the record's original text (lossy UTF-8, capped at
/// `max_record_bytes`) so a rejects file can hold it for fixing.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    /// One of the [`code`] constants.
    pub code: &'static str,
    /// The field at fault: a CSV column, or the path of a duplicate key.
    pub field: Option<String>,
    /// What is wrong and what to do about it (it does not repeat `field`).
    pub message: String,
    /// The record's text, when there is one.
    pub raw: Option<String>,
}

impl RecordError {
    fn new(code: &'static str, message: impl Into<String>) -> RecordError {
        RecordError {
            code,
            field: None,
            message: message.into(),
            raw: None,
        }
    }

    fn with_field(mut self, field: impl Into<String>) -> RecordError {
        let field = field.into();
        if !field.is_empty() {
            self.field = Some(field);
        }
        self
    }

    fn with_raw(mut self, bytes: &[u8], cap: usize) -> RecordError {
        self.raw = Some(capped_text(bytes, cap));
        self
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{} (field `{field}`): {}", self.code, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

impl std::error::Error for RecordError {}

/// A whole input that cannot be read at all: reported before any record, so before any request.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file cannot be opened.
    #[error("cannot open {input}: {source}")]
    Open { input: String, source: io::Error },
    /// Reading failed before the first record (an I/O error, a broken gzip header).
    #[error("cannot read {input}: {source}")]
    Read { input: String, source: io::Error },
    /// The name ends in `.gz` but the bytes are not gzip.
    #[error(
        "{input} is named .gz but is not gzip data (it does not start with the bytes 1f 8b); \
         compress it, or rename it without .gz"
    )]
    NotGzip { input: String },
    /// The CSV header is missing or unusable (a repeated or empty column name, ...).
    #[error("{input}, line {line}: the CSV header cannot be used: {error}")]
    CsvHeader {
        input: String,
        line: u64,
        error: CsvFieldError,
    },
    /// A JSON-array input that is not an array, or holds nothing after its `[`.
    #[error("{input}, line {line}: {message}")]
    Json {
        input: String,
        line: u64,
        message: String,
    },
    /// The content is not the format its name or `--format` says (NDJSON in a `.csv`, CSV in
    /// a `.ndjson`): refused whole, rather than reject every record of it.
    #[error("--input {input}: the content looks like {found}, not {expected}; {fix}")]
    Mismatch {
        /// The path as given, or `-` for stdin.
        input: String,
        /// What the content looks like, and why (`NDJSON (line 1 is a JSON object)`).
        found: String,
        /// The format that was expected (`CSV`, `NDJSON`).
        expected: &'static str,
        /// What to do.
        fix: String,
    },
}

/// Opens PATH (`-` = stdin) and returns the format read (never `Auto`) and an iterator of
/// records, lazily, in input order, memory independent of the file size. Gzip is detected by
/// its magic bytes regardless of the name; multi-member gzip is read to the end.
pub fn open(
    path: &Path,
    options: &ReadOptions,
) -> Result<(InputFormat, Box<dyn Iterator<Item = Record> + Send>), InputError> {
    let input = if path == Path::new("-") {
        STDIN.to_owned()
    } else {
        path.display().to_string()
    };
    let raw: Box<dyn Read + Send> = if path == Path::new("-") {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).map_err(|source| InputError::Open {
            input: input.clone(),
            source,
        })?)
    };
    read_from(raw, input, NameHint::of(path), options)
}

/// As [`open`], from any reader: `name` stands for the file name (its extension decides the
/// format under [`InputFormat::Auto`], and errors show it). Gzip is still recognised by its
/// first bytes. The fuzz targets read their inputs through this, without a file.
pub fn from_reader(
    reader: impl Read + Send + 'static,
    name: &str,
    options: &ReadOptions,
) -> Result<(InputFormat, Box<dyn Iterator<Item = Record> + Send>), InputError> {
    let hint = NameHint::of(Path::new(name));
    read_from(Box::new(reader), name.to_owned(), hint, options)
}

/// The reading behind [`open`] and [`from_reader`]: gzip, the BOM, the format, the records.
fn read_from(
    mut raw: Box<dyn Read + Send>,
    input: String,
    name: NameHint,
    options: &ReadOptions,
) -> Result<(InputFormat, Box<dyn Iterator<Item = Record> + Send>), InputError> {
    let read_failed = |source: io::Error| InputError::Read {
        input: input.clone(),
        source,
    };
    let mut magic = Vec::with_capacity(2);
    (&mut raw)
        .take(2)
        .read_to_end(&mut magic)
        .map_err(read_failed)?;
    let gzip = magic == [0x1f, 0x8b];
    let raw: Box<dyn Read + Send> = Box::new(Cursor::new(magic).chain(raw));
    let mut text: Box<dyn Read + Send> = if gzip {
        Box::new(MultiGzDecoder::new(BufReader::new(raw)))
    } else if name.gzip {
        return Err(InputError::NotGzip {
            input: input.clone(),
        });
    } else {
        raw
    };

    // Read far enough to drop a BOM and see the first byte that is not blank.
    let mut prefix = read_prefix(&mut text).map_err(|source| {
        if gzip {
            let hint = format!("{source} (the gzip data is cut short or damaged)");
            read_failed(io::Error::new(source.kind(), hint))
        } else {
            read_failed(source)
        }
    })?;
    if prefix.starts_with(BOM) {
        prefix.drain(..BOM.len());
    }
    let first = prefix.iter().copied().find(|byte| !is_blank(*byte));
    let spread = spread_object(&prefix);
    let content = Content::of(&prefix);
    let source: Source = Box::new(BufReader::with_capacity(
        READ_BUFFER,
        Cursor::new(prefix).chain(text),
    ));

    let format = match (options.format, name.format) {
        (InputFormat::Auto, NamedFormat::Ndjson) => InputFormat::Ndjson,
        (InputFormat::Auto, NamedFormat::Csv) => InputFormat::Csv,
        (InputFormat::Auto, NamedFormat::Json) => match first {
            Some(b'{') => InputFormat::Ndjson,
            _ => InputFormat::Json,
        },
        (InputFormat::Auto, NamedFormat::Unknown) => match first {
            Some(b'[') => InputFormat::Json,
            Some(b'{') | None => InputFormat::Ndjson,
            Some(_) => InputFormat::Csv,
        },
        (explicit, _) => explicit,
    };
    // The name or `--format` chose the format without looking: check that the content agrees.
    let chosen_by = if options.format != InputFormat::Auto {
        Some(format!("--format {}", options.format))
    } else if matches!(name.format, NamedFormat::Ndjson | NamedFormat::Csv) {
        Some("its name".to_owned())
    } else {
        None
    };
    if let Some(chosen_by) = chosen_by
        && let Some(found) = content_mismatch(format, &content)
    {
        let fix = if options.format == InputFormat::Auto {
            format!("rename it or pass --format {}", found.format)
        } else {
            format!(
                "pass --format {} instead of {chosen_by}, or check that this is the right file",
                found.format
            )
        };
        return Err(InputError::Mismatch {
            input: if input == STDIN {
                "-".to_owned()
            } else {
                input
            },
            found: found.looks,
            expected: match format {
                InputFormat::Csv => "CSV",
                _ => "NDJSON",
            },
            fix,
        });
    }
    if let (InputFormat::Auto, InputFormat::Ndjson, Some(line)) = (options.format, format, spread) {
        return Err(InputError::Json {
            input,
            line,
            message: "the line holds only `{`: the input is one JSON object spread over many \
                      lines (pretty-printed), not NDJSON, which has one whole user object on each \
                      line. Write one user a line (`jq -c`), or give a JSON array of users \
                      (`[{...}, {...}]`; if the users sit in an object such as \
                      `{\"users\": [...]}`, take the array out of it)"
                .to_owned(),
        });
    }
    let cap = options.cap();
    let records: Box<dyn Iterator<Item = Record> + Send> = match format {
        InputFormat::Ndjson | InputFormat::Auto => Box::new(NdjsonRecords::new(source, cap)),
        InputFormat::Csv => Box::new(CsvRecords::open(
            source,
            cap,
            options.unescape_formulas,
            &input,
        )?),
        InputFormat::Json => Box::new(JsonArrayRecords::open(source, cap, &input)?),
    };
    Ok((format, records))
}

// ---- Opening: name hints, BOM, the first bytes ----

/// The decoded text, buffered.
type Source = Box<dyn BufRead + Send>;

const BOM: &[u8] = b"\xEF\xBB\xBF";
/// The read buffer; records longer than this are gathered across reads.
const READ_BUFFER: usize = 64 * 1024;
/// How much leading blank text `open` reads to find the first byte that is not blank.
const SNIFF_LIMIT: usize = 64 * 1024;

/// JSON whitespace: what a blank line or the space between JSON tokens is made of.
fn is_blank(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NamedFormat {
    Ndjson,
    Csv,
    /// `.json`: a JSON array, or NDJSON from Auth0's export job.
    Json,
    Unknown,
}

/// What the file name says.
struct NameHint {
    gzip: bool,
    format: NamedFormat,
}

impl NameHint {
    fn of(path: &Path) -> NameHint {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let (gzip, name) = match name.strip_suffix(".gz") {
            Some(inner) => (true, inner),
            None => (false, name.as_str()),
        };
        let format = if name.ends_with(".ndjson") || name.ends_with(".jsonl") {
            NamedFormat::Ndjson
        } else if name.ends_with(".csv") {
            NamedFormat::Csv
        } else if name.ends_with(".json") {
            NamedFormat::Json
        } else {
            NamedFormat::Unknown
        };
        NameHint { gzip, format }
    }
}

/// Reads the start of the text: up to the end of the first line that is not blank (after a
/// BOM), the end of the input, or [`SNIFF_LIMIT`] bytes. That line decides the format under
/// `Auto` and is checked against a format chosen by name ([`Content`]).
fn read_prefix(reader: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut prefix = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let body = if prefix.starts_with(BOM) {
            &prefix[BOM.len()..]
        } else {
            &prefix[..]
        };
        let settled = prefix.len() >= BOM.len() || !BOM.starts_with(&prefix);
        let line_read = body
            .iter()
            .position(|byte| !is_blank(*byte))
            .is_some_and(|start| body[start..].contains(&b'\n'));
        if (settled && line_read) || prefix.len() >= SNIFF_LIMIT {
            return Ok(prefix);
        }
        match reader.read(&mut chunk) {
            Ok(0) => return Ok(prefix),
            Ok(n) => prefix.extend_from_slice(&chunk[..n]),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

/// The line of the text's first `{` when nothing else is on that line: the start of one JSON
/// object spread over many lines (pretty-printed), which NDJSON would read as one broken record
/// a line. No NDJSON record is a lone `{`. `None` when the prefix does not reach the line's end.
fn spread_object(prefix: &[u8]) -> Option<u64> {
    let start = prefix.iter().position(|byte| !is_blank(*byte))?;
    if prefix[start] != b'{' {
        return None;
    }
    let rest = &prefix[start + 1..];
    let end = rest.iter().position(|byte| *byte == b'\n')?;
    let lone = rest[..end].iter().all(|byte| is_blank(*byte));
    lone.then(|| {
        1 + prefix[..start]
            .iter()
            .filter(|byte| **byte == b'\n')
            .count() as u64
    })
}

/// What the start of the text looks like: enough to tell NDJSON from CSV from a JSON array,
/// so a file whose name (or `--format`) says one and whose content is another is refused whole.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Content {
    /// Nothing but blanks: no records in any format.
    Blank,
    /// Line `line` starts with `{`; `whole` when that line is one whole JSON object.
    Object { line: u64, whole: bool },
    /// Line `line` starts with `[`.
    Array { line: u64 },
    /// Line `line` reads as a CSV header and not as JSON (`text` is the line, cut short).
    CsvHeader { line: u64, text: String },
    /// Anything else (a broken JSON line, binary): the reader's per-record errors say more.
    Other,
}

impl Content {
    /// The longest header shown in a message, in characters.
    const SHOWN: usize = 60;

    fn of(prefix: &[u8]) -> Content {
        let Some(start) = prefix.iter().position(|byte| !is_blank(*byte)) else {
            return Content::Blank;
        };
        let line = 1 + prefix[..start]
            .iter()
            .filter(|byte| **byte == b'\n')
            .count() as u64;
        let rest = &prefix[start..];
        let text = match rest.iter().position(|byte| *byte == b'\n') {
            Some(end) => &rest[..end],
            None => rest,
        };
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        match text[0] {
            b'{' => Content::Object {
                line,
                whole: serde_json::from_slice::<Map<String, Value>>(text).is_ok(),
            },
            b'[' => Content::Array { line },
            _ => match csv_header(text) {
                Some(header) => {
                    let mut shown: String = header.chars().take(Self::SHOWN).collect();
                    if header.chars().count() > Self::SHOWN {
                        shown.push_str("...");
                    }
                    Content::CsvHeader { line, text: shown }
                }
                None => Content::Other,
            },
        }
    }
}

/// The line as a CSV header, when it reads as one: UTF-8 text that is not JSON, holds none of
/// JSON's brackets and no `":` (a JSON key), and is either comma-separated or one plain column
/// name. Cautious on purpose: a broken NDJSON line must stay a record the reader rejects, not
/// turn the whole file into "CSV".
fn csv_header(line: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(line).ok()?;
    let json_like = text.contains(['{', '}', '[', ']'])
        || text.contains("\":")
        || text.chars().any(|c| c.is_control() && c != '\t')
        || serde_json::from_str::<Value>(text).is_ok();
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '$' | ' ');
    let header = text.contains(',') || text.chars().all(plain);
    (!json_like && header).then_some(text)
}

/// Why content is not the format chosen for it: what it looks like, and the `--format` to read
/// it with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mismatch {
    looks: String,
    format: &'static str,
}

/// The mismatch between a format chosen by name or `--format` (CSV or NDJSON) and the content,
/// if there is one. Blank content is no records in either format, never a mismatch.
fn content_mismatch(format: InputFormat, content: &Content) -> Option<Mismatch> {
    let (looks, format) = match (format, content) {
        (InputFormat::Csv, Content::Object { line, whole: true }) => {
            (format!("NDJSON (line {line} is a JSON object)"), "ndjson")
        }
        (InputFormat::Csv, Content::Object { line, whole: false }) => {
            (format!("JSON (line {line} starts with `{{`)"), "ndjson")
        }
        (InputFormat::Csv, Content::Array { line }) => (
            format!("a JSON array (line {line} starts with `[`)"),
            "json",
        ),
        (InputFormat::Ndjson, Content::CsvHeader { line, text }) => (
            format!("CSV (line {line} is the header `{text}`, not a JSON object)"),
            "csv",
        ),
        _ => return None,
    };
    Some(Mismatch { looks, format })
}

/// `fill_buf`, retried when interrupted.
fn fill(source: &mut Source) -> io::Result<&[u8]> {
    loop {
        match source.fill_buf() {
            Ok(_) => break,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    source.fill_buf()
}

// ---- Shared: bounded capture, JSON records, duplicate keys ----

/// The bytes of one record, kept up to a limit: memory stays bounded whatever the record's size,
/// while `total` still counts every byte.
struct Capture {
    bytes: Vec<u8>,
    total: u64,
    last: Option<u8>,
    /// The most bytes kept: the record cap plus one, so "over the cap" is visible (and NDJSON's
    /// trailing CR fits).
    keep: usize,
}

impl Capture {
    fn new(cap: usize) -> Capture {
        Capture {
            bytes: Vec::new(),
            total: 0,
            last: None,
            keep: cap.saturating_add(1),
        }
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.total = 0;
        self.last = None;
    }

    fn push(&mut self, slice: &[u8]) {
        let Some(&last) = slice.last() else { return };
        self.last = Some(last);
        self.total += slice.len() as u64;
        let take = slice.len().min(self.keep - self.bytes.len());
        if take == 0 {
            return;
        }
        if self.bytes.capacity() - self.bytes.len() < take {
            // Grow by doubling, but never past `keep`: the cap bounds the allocation too.
            let want = (self.bytes.len() + take)
                .max(self.bytes.capacity().saturating_mul(2))
                .min(self.keep);
            self.bytes.reserve_exact(want - self.bytes.len());
        }
        self.bytes.extend_from_slice(&slice[..take]);
    }

    /// Drops one trailing CR from the record (the CR of a CRLF line end).
    fn strip_cr(&mut self) {
        if self.last == Some(b'\r') {
            if self.bytes.len() as u64 == self.total {
                self.bytes.pop();
            }
            self.total -= 1;
            self.last = self.bytes.last().copied();
        }
    }

    fn over(&self, cap: usize) -> bool {
        self.total > cap as u64
    }

    fn too_large(&self, cap: usize) -> RecordError {
        RecordError::new(
            code::TOO_LARGE,
            format!(
                "the record has {} bytes, more than the limit of {cap} bytes \
                 (max_record_bytes); it was skipped: shorten it or split it",
                self.total
            ),
        )
        .with_raw(&self.bytes, cap)
    }
}

/// Lossy UTF-8 of at most `cap` bytes, cut at a character boundary at or below `cap` bytes.
fn capped_text(bytes: &[u8], cap: usize) -> String {
    let mut text = String::from_utf8_lossy(&bytes[..bytes.len().min(cap)]).into_owned();
    if text.len() > cap {
        let mut end = cap;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Where a record's text starts in the input, to give positions in the file's numbering.
#[derive(Clone, Copy, Debug)]
struct Origin {
    line: u64,
    column: u64,
}

impl Origin {
    /// The file position of a position inside the record (both 1-based).
    fn at(self, line: u64, column: u64) -> (u64, u64) {
        if line <= 1 {
            (self.line, self.column + column.saturating_sub(1))
        } else {
            (self.line + line - 1, column)
        }
    }

    /// The file position of a byte offset inside the record.
    fn at_offset(self, bytes: &[u8], offset: usize) -> (u64, u64) {
        let before = &bytes[..offset.min(bytes.len())];
        let line = 1 + before.iter().filter(|byte| **byte == b'\n').count() as u64;
        let column = match before.iter().rposition(|byte| *byte == b'\n') {
            Some(newline) => offset - newline,
            None => offset + 1,
        };
        self.at(line, column as u64)
    }
}

/// Parses one JSON record (an NDJSON line or an array element) into an object.
fn parse_object(
    bytes: &[u8],
    origin: Origin,
    cap: usize,
) -> Result<Map<String, Value>, RecordError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => {
            let offset = error.valid_up_to();
            let (line, column) = origin.at_offset(bytes, offset);
            return Err(RecordError::new(
                code::INVALID_UTF8,
                format!(
                    "the text is not valid UTF-8 (byte 0x{:02x} at line {line}, column {column}); \
                     save the file as UTF-8",
                    bytes[offset]
                ),
            )
            .with_raw(bytes, cap));
        }
    };
    if text.starts_with('\u{feff}') {
        // Only the start of the input may have one (it is dropped there): here it is usually
        // the mark of a second file joined onto the first.
        return Err(RecordError::new(
            code::INVALID_JSON,
            "the record starts with a byte order mark (bytes EF BB BF), which only the start \
             of a file may have (were two files joined into one?); remove it",
        )
        .with_raw(bytes, cap));
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(error) => {
            return Err(
                RecordError::new(code::INVALID_JSON, json_error_message(&error, origin))
                    .with_raw(bytes, cap),
            );
        }
    };
    let object = match value {
        Value::Object(object) => object,
        other => {
            return Err(RecordError::new(
                code::NOT_AN_OBJECT,
                format!(
                    "the record is {}, not a JSON object; each record must be one object (a user)",
                    describe(&other)
                ),
            )
            .with_raw(bytes, cap));
        }
    };
    if let Some(duplicate) = find_duplicate_key(text) {
        return Err(RecordError::new(code::DUPLICATE_KEY, duplicate.message())
            .with_field(duplicate.path)
            .with_raw(bytes, cap));
    }
    Ok(object)
}

/// serde's message, with its position moved into the file's numbering.
fn json_error_message(error: &serde_json::Error, origin: Origin) -> String {
    let full = error.to_string();
    if error.line() == 0 {
        return format!("not valid JSON: {full}");
    }
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let reason = full.strip_suffix(&suffix).unwrap_or(&full);
    let (line, column) = origin.at(error.line() as u64, error.column() as u64);
    let hint = if reason.starts_with("recursion limit exceeded") {
        format!(
            " (the record nests more than {MAX_JSON_DEPTH} levels of objects and arrays deep, \
             counting the record itself)"
        )
    } else {
        String::new()
    };
    format!("not valid JSON (line {line}, column {column}): {reason}{hint}")
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A key found twice in one object.
#[derive(Debug, PartialEq, Eq)]
struct DuplicateKey {
    /// The key's path from the top, such as `user_metadata.plan` or `identities[0].provider`.
    path: String,
    key: String,
}

impl DuplicateKey {
    fn message(&self) -> String {
        format!(
            "the key `{}` appears twice in the same object; JSON readers disagree on which value \
             wins, so keep only one",
            self.key
        )
    }
}

/// The first key that appears twice in one object anywhere in `text`, when `text` is JSON.
/// (serde_json keeps the last value of a repeated key without a word.)
fn find_duplicate_key(text: &str) -> Option<DuplicateKey> {
    let mut walk = DuplicateWalk {
        path: Vec::new(),
        found: None,
    };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    // An error is either the duplicate itself or JSON that does not parse: neither is more.
    let _ = WalkSeed(&mut walk).deserialize(&mut deserializer);
    walk.found
}

enum Segment {
    Key(String),
    Index(usize),
}

struct DuplicateWalk {
    path: Vec<Segment>,
    found: Option<DuplicateKey>,
}

impl DuplicateWalk {
    fn path_to(&self, key: &str) -> String {
        let mut path = String::new();
        for segment in &self.path {
            match segment {
                Segment::Key(name) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(name);
                }
                Segment::Index(index) => path.push_str(&format!("[{index}]")),
            }
        }
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        path
    }
}

/// Visits a JSON value without keeping it, checking each object's keys. Depth is bounded by
/// serde_json's recursion limit.
struct WalkSeed<'w>(&'w mut DuplicateWalk);

impl<'de> DeserializeSeed<'de> for WalkSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for WalkSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        Ok(())
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let walk = self.0;
        let mut index = 0;
        loop {
            walk.path.push(Segment::Index(index));
            let more = seq.next_element_seed(WalkSeed(&mut *walk))?;
            walk.path.pop();
            if more.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    // With `arbitrary_precision`, serde_json hands a number over as a one-key map; it passes
    // through here harmlessly.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let walk = self.0;
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                walk.found = Some(DuplicateKey {
                    path: walk.path_to(&key),
                    key,
                });
                return Err(de::Error::custom("duplicate key"));
            }
            seen.insert(key.clone());
            walk.path.push(Segment::Key(key));
            map.next_value_seed(WalkSeed(&mut *walk))?;
            walk.path.pop();
        }
        Ok(())
    }
}

/// The record that ends an input that failed mid-way.
fn read_error(line: u64, error: &io::Error) -> Record {
    Record {
        line,
        result: Err(RecordError::new(
            code::READ_ERROR,
            format!(
                "the input cannot be read past line {line}: {error}; nothing after this point \
                 was read (is a .gz file cut short?)"
            ),
        )),
    }
}

// ---- NDJSON ----

/// NDJSON records: one object a line.
struct NdjsonRecords {
    source: Source,
    /// Lines read so far.
    line: u64,
    capture: Capture,
    cap: usize,
    done: bool,
}

impl NdjsonRecords {
    fn new(source: Source, cap: usize) -> NdjsonRecords {
        NdjsonRecords {
            source,
            line: 0,
            capture: Capture::new(cap),
            cap,
            done: false,
        }
    }

    /// Reads one line (without `\n`) into the capture. `None` at the end of the input, else
    /// whether the line is blank.
    fn read_line(&mut self) -> io::Result<Option<bool>> {
        self.capture.clear();
        let mut blank = true;
        let mut any = false;
        loop {
            let chunk = fill(&mut self.source)?;
            if chunk.is_empty() {
                return Ok(any.then_some(blank));
            }
            any = true;
            let newline = chunk.iter().position(|byte| *byte == b'\n');
            let part = &chunk[..newline.unwrap_or(chunk.len())];
            blank &= part.iter().all(|byte| is_blank(*byte));
            self.capture.push(part);
            let used = part.len() + usize::from(newline.is_some());
            self.source.consume(used);
            if newline.is_some() {
                return Ok(Some(blank));
            }
        }
    }
}

impl Iterator for NdjsonRecords {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        while !self.done {
            let line = self.line + 1;
            let blank = match self.read_line() {
                Ok(Some(blank)) => blank,
                Ok(None) => break,
                Err(error) => {
                    self.done = true;
                    return Some(read_error(line, &error));
                }
            };
            self.line = line;
            if blank {
                continue;
            }
            self.capture.strip_cr();
            let result = if self.capture.over(self.cap) {
                Err(self.capture.too_large(self.cap))
            } else {
                parse_object(&self.capture.bytes, Origin { line, column: 1 }, self.cap)
            };
            return Some(Record { line, result });
        }
        self.done = true;
        None
    }
}

// ---- CSV ----

/// Where the CSV splitter is inside a row; the same rules as the `csv` crate's defaults
/// (`,` delimiter, `"` quotes doubled inside quoted cells, CR, LF or CRLF ending a row).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CsvState {
    FieldStart,
    Unquoted,
    Quoted,
    /// A `"` inside a quoted cell: the end of the quotes, or the first of a doubled `""`.
    QuoteInQuoted,
}

/// One row as it is in the file (in the splitter's capture).
#[derive(Debug)]
struct RawRow {
    line: u64,
    /// The input ended inside a quoted cell: the rest of the file became this row.
    unclosed_quote: bool,
}

/// Cuts CSV text into rows without the `csv` crate, so that a row over the cap is skipped
/// without being held, and so each row's first line is known.
struct CsvSplitter {
    source: Source,
    /// The line of the next byte.
    line: u64,
    capture: Capture,
}

impl CsvSplitter {
    fn new(source: Source, cap: usize) -> CsvSplitter {
        CsvSplitter {
            source,
            line: 1,
            capture: Capture::new(cap),
        }
    }

    /// Reads the next row into the capture (without its line end). `None` at the end.
    fn next_row(&mut self) -> io::Result<Option<RawRow>> {
        self.capture.clear();
        let mut start = None;
        let mut state = CsvState::FieldStart;
        loop {
            let chunk = fill(&mut self.source)?;
            if chunk.is_empty() {
                return Ok(start.map(|line| RawRow {
                    line,
                    unclosed_quote: matches!(state, CsvState::Quoted),
                }));
            }
            let mut index = 0;
            if start.is_none() {
                // Line ends between rows: blank lines, which `csv` skips too.
                while index < chunk.len() && matches!(chunk[index], b'\r' | b'\n') {
                    if chunk[index] == b'\n' {
                        self.line += 1;
                    }
                    index += 1;
                }
                if index == chunk.len() {
                    self.source.consume(index);
                    continue;
                }
                start = Some(self.line);
            }
            let from = index;
            let mut ended = false;
            while index < chunk.len() {
                let byte = chunk[index];
                state = match (state, byte) {
                    (CsvState::Quoted, b'"') => CsvState::QuoteInQuoted,
                    (CsvState::Quoted, _) => CsvState::Quoted,
                    (_, b'\r' | b'\n') => {
                        ended = true;
                        break;
                    }
                    (CsvState::FieldStart | CsvState::QuoteInQuoted, b'"') => CsvState::Quoted,
                    (_, b',') => CsvState::FieldStart,
                    _ => CsvState::Unquoted,
                };
                if byte == b'\n' {
                    self.line += 1;
                }
                index += 1;
            }
            self.capture.push(&chunk[from..index]);
            // The line end stays in the buffer: the next call skips it with the blank lines.
            self.source.consume(index);
            if ended {
                return Ok(start.map(|line| RawRow {
                    line,
                    unclosed_quote: false,
                }));
            }
        }
    }
}

/// The cells of one row, read by the `csv` crate (flexible: the decoder checks the count).
fn parse_row(bytes: &[u8]) -> ByteRecord {
    // `csv` drops a BOM at the start of its input; a blank line first (which `csv` skips)
    // keeps a BOM that starts a row.
    let input = (&b"\n"[..]).chain(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity((bytes.len() + 2).clamp(64, READ_BUFFER))
        .from_reader(input);
    let mut record = ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => record,
        // Not reached: a row holds at least one byte that is not a line end.
        Ok(false) | Err(_) => ByteRecord::from(vec![""]),
    }
}

/// CSV records, decoded by [`CsvDecoder`] from the header.
struct CsvRecords {
    splitter: CsvSplitter,
    decoder: CsvDecoder,
    header: Vec<String>,
    cap: usize,
    unescape_formulas: bool,
    done: bool,
}

impl CsvRecords {
    /// Reads and checks the header.
    fn open(
        source: Source,
        cap: usize,
        unescape_formulas: bool,
        input: &str,
    ) -> Result<CsvRecords, InputError> {
        let mut splitter = CsvSplitter::new(source, cap);
        let header_error = |line: u64, message: String| InputError::CsvHeader {
            input: input.to_owned(),
            line,
            error: CsvFieldError {
                column: String::new(),
                message,
            },
        };
        let row = match splitter.next_row() {
            Ok(Some(row)) => row,
            Ok(None) => {
                return Err(header_error(
                    1,
                    "the input is empty; a CSV file starts with a header line that names its \
                     columns"
                        .to_owned(),
                ));
            }
            Err(source) => {
                return Err(InputError::Read {
                    input: input.to_owned(),
                    source,
                });
            }
        };
        if splitter.capture.over(cap) {
            return Err(header_error(
                row.line,
                format!(
                    "the header line is longer than {cap} bytes (max_record_bytes); is this a \
                     CSV file?"
                ),
            ));
        }
        if row.unclosed_quote {
            return Err(header_error(
                row.line,
                "a quoted column name is never closed; close the quote".to_owned(),
            ));
        }
        let header = StringRecord::from_byte_record(parse_row(&splitter.capture.bytes)).map_err(
            |error| {
                let column = error.utf8_error().field() + 1;
                header_error(
                    row.line,
                    format!(
                        "column {column} of the header is not valid UTF-8; save the file as UTF-8"
                    ),
                )
            },
        )?;
        let decoder =
            CsvDecoder::new(&header, unescape_formulas).map_err(|error| InputError::CsvHeader {
                input: input.to_owned(),
                line: row.line,
                error,
            })?;
        Ok(CsvRecords {
            splitter,
            decoder,
            header: header.iter().map(str::to_owned).collect(),
            cap,
            unescape_formulas,
            done: false,
        })
    }

    fn decode(&self, row: &RawRow) -> Result<Map<String, Value>, RecordError> {
        let bytes = &self.splitter.capture.bytes;
        let cap = self.cap;
        if self.splitter.capture.over(cap) {
            return Err(self.splitter.capture.too_large(cap));
        }
        if row.unclosed_quote {
            return Err(RecordError::new(
                code::CSV_ROW,
                format!(
                    "a quoted cell on this row is never closed, so the rest of the input (to line \
                     {}) was read as this row; close the quote",
                    self.splitter.line
                ),
            )
            .with_raw(bytes, cap));
        }
        let cells = StringRecord::from_byte_record(parse_row(bytes)).map_err(|error| {
            let index = error.utf8_error().field();
            let column = self.header.get(index).cloned().unwrap_or_default();
            RecordError::new(
                code::INVALID_UTF8,
                format!(
                    "cell {} is not valid UTF-8; save the file as UTF-8",
                    index + 1
                ),
            )
            .with_field(column)
            .with_raw(bytes, cap)
        })?;
        let user = self.decoder.decode(&cells).map_err(|error| {
            RecordError::new(code::CSV_ROW, error.message)
                .with_field(error.column)
                .with_raw(bytes, cap)
        })?;
        // A JSON cell with a repeated key would lose one value silently, as in NDJSON.
        for (index, cell) in cells.iter().enumerate() {
            let cell = match cell.strip_prefix('\'') {
                Some(rest) if self.unescape_formulas => rest,
                _ => cell,
            };
            if !cell.trim_start().starts_with(['{', '[']) {
                continue;
            }
            if let Some(duplicate) = find_duplicate_key(cell) {
                let column = self.header.get(index).cloned().unwrap_or_default();
                return Err(RecordError::new(
                    code::DUPLICATE_KEY,
                    format!(
                        "{} (at `{}` in the cell)",
                        duplicate.message(),
                        duplicate.path
                    ),
                )
                .with_field(column)
                .with_raw(bytes, cap));
            }
        }
        Ok(user)
    }
}

impl Iterator for CsvRecords {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.done {
            return None;
        }
        let row = match self.splitter.next_row() {
            Ok(Some(row)) => row,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(error) => {
                self.done = true;
                return Some(read_error(self.splitter.line, &error));
            }
        };
        Some(Record {
            line: row.line,
            result: self.decode(&row),
        })
    }
}

// ---- JSON arrays ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ArrayState {
    /// Before an element: just after `[` or after a `,`.
    Element,
    /// After the closing `]`: only blank text may follow.
    Closed,
    Done,
}

/// How an element's text ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ElementEnd {
    Comma,
    Close,
    /// The input ended; `inside` when inside a string or brackets.
    Eof {
        inside: bool,
    },
}

/// The elements of a JSON array, cut at top-level commas by a scanner that follows strings,
/// escapes and bracket depth.
struct JsonArrayRecords {
    source: Source,
    /// The position of the next byte (1-based, columns in bytes as serde counts them).
    line: u64,
    column: u64,
    capture: Capture,
    cap: usize,
    state: ArrayState,
    /// A record to hand out after the current one (the array was not closed).
    pending: Option<Record>,
}

impl JsonArrayRecords {
    /// Reads up to the first element: the input must start with `[` and go on past it.
    fn open(source: Source, cap: usize, input: &str) -> Result<JsonArrayRecords, InputError> {
        let mut records = JsonArrayRecords {
            source,
            line: 1,
            column: 1,
            capture: Capture::new(cap),
            cap,
            state: ArrayState::Element,
            pending: None,
        };
        let failed = |line: u64, message: String| InputError::Json {
            input: input.to_owned(),
            line,
            message,
        };
        let read_failed = |source: io::Error| InputError::Read {
            input: input.to_owned(),
            source,
        };
        match records.skip_blank().map_err(read_failed)? {
            Some(b'[') => records.advance(1),
            Some(byte) => {
                return Err(failed(
                    records.line,
                    format!(
                        "the input starts with {}, not `[`: a JSON-array input (Auth0's \
                         bulk-import format) is one array of user objects; for one object a \
                         line, use --format ndjson",
                        show_byte(byte)
                    ),
                ));
            }
            None => {
                return Err(failed(
                    records.line,
                    "the input is empty; a JSON-array input starts with `[`".to_owned(),
                ));
            }
        }
        if records.skip_blank().map_err(read_failed)?.is_none() {
            return Err(failed(
                records.line,
                "the input ends just after its `[`: the array holds nothing and is never closed; \
                 the file is probably truncated"
                    .to_owned(),
            ));
        }
        Ok(records)
    }

    /// Consumes `n` bytes that hold no line end.
    fn advance(&mut self, n: usize) {
        self.source.consume(n);
        self.column += n as u64;
    }

    /// Skips blank text; returns the next byte without consuming it, `None` at the end.
    fn skip_blank(&mut self) -> io::Result<Option<u8>> {
        loop {
            let chunk = fill(&mut self.source)?;
            if chunk.is_empty() {
                return Ok(None);
            }
            let mut index = 0;
            while index < chunk.len() && is_blank(chunk[index]) {
                if chunk[index] == b'\n' {
                    self.line += 1;
                    self.column = 1;
                } else {
                    self.column += 1;
                }
                index += 1;
            }
            let next = chunk.get(index).copied();
            self.source.consume(index);
            if next.is_some() {
                return Ok(next);
            }
        }
    }

    /// Reads one element's text into the capture, and the `,` or `]` after it.
    fn scan_element(&mut self) -> io::Result<ElementEnd> {
        self.capture.clear();
        let mut depth: u64 = 0;
        let mut in_string = false;
        let mut escaped = false;
        loop {
            let chunk = fill(&mut self.source)?;
            if chunk.is_empty() {
                return Ok(ElementEnd::Eof {
                    inside: in_string || depth > 0,
                });
            }
            let mut end = None;
            let mut index = 0;
            while index < chunk.len() {
                let byte = chunk[index];
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if byte == b'\\' {
                        escaped = true;
                    } else if byte == b'"' {
                        in_string = false;
                    }
                } else {
                    match byte {
                        b'"' => in_string = true,
                        b'[' | b'{' => depth += 1,
                        b']' | b'}' if depth > 0 => depth -= 1,
                        b',' if depth == 0 => end = Some(ElementEnd::Comma),
                        b']' => end = Some(ElementEnd::Close),
                        _ => {}
                    }
                }
                if byte == b'\n' {
                    self.line += 1;
                    self.column = 1;
                } else {
                    self.column += 1;
                }
                if end.is_some() {
                    break;
                }
                index += 1;
            }
            self.capture.push(&chunk[..index]);
            match end {
                Some(end) => {
                    self.source.consume(index + 1);
                    return Ok(end);
                }
                None => self.source.consume(index),
            }
        }
    }

    fn element(&mut self) -> Option<Record> {
        let next = match self.skip_blank() {
            Ok(next) => next,
            Err(error) => {
                self.state = ArrayState::Done;
                return Some(read_error(self.line, &error));
            }
        };
        let line = self.line;
        match next {
            None => {
                // Only reached after a `,`: `open` checked that something follows `[`.
                self.state = ArrayState::Done;
                return Some(Record {
                    line,
                    result: Err(RecordError::new(
                        code::INVALID_JSON,
                        format!(
                            "the input ends after a `,` at line {line} without the `]` that closes \
                             the array; the file is probably truncated, so users may be missing"
                        ),
                    )),
                });
            }
            Some(b']') => {
                // `[]`, or a `,` just before `]`: nothing to read.
                self.advance(1);
                self.state = ArrayState::Closed;
                return None;
            }
            Some(b',') => {
                // An empty element (`,,` or `[,`): no user in it.
                self.advance(1);
                self.state = ArrayState::Element;
                return None;
            }
            Some(_) => {}
        }
        let origin = Origin {
            line,
            column: self.column,
        };
        let end = match self.scan_element() {
            Ok(end) => end,
            Err(error) => {
                self.state = ArrayState::Done;
                return Some(read_error(self.line, &error));
            }
        };
        self.state = match end {
            ElementEnd::Comma => ArrayState::Element,
            ElementEnd::Close => ArrayState::Closed,
            ElementEnd::Eof { .. } => ArrayState::Done,
        };
        while self
            .capture
            .bytes
            .last()
            .is_some_and(|byte| is_blank(*byte))
        {
            self.capture.bytes.pop();
        }
        let cap = self.cap;
        let result = if self.capture.over(cap) {
            Err(self.capture.too_large(cap))
        } else if end == (ElementEnd::Eof { inside: true }) {
            Err(RecordError::new(
                code::INVALID_JSON,
                format!(
                    "the input ends inside this element (at line {}): a quote or bracket opened \
                     here is never closed, or the file is truncated",
                    self.line
                ),
            )
            .with_raw(&self.capture.bytes, cap))
        } else {
            parse_object(&self.capture.bytes, origin, cap)
        };
        if end == (ElementEnd::Eof { inside: false }) {
            self.pending = Some(Record {
                line: self.line,
                result: Err(RecordError::new(
                    code::INVALID_JSON,
                    format!(
                        "the input ends at line {} without the `]` that closes the array; the \
                         file is probably truncated, so users may be missing",
                        self.line
                    ),
                )),
            });
        }
        Some(Record { line, result })
    }

    /// After `]`: anything but blank text is an error.
    fn closed(&mut self) -> Option<Record> {
        self.state = ArrayState::Done;
        match self.skip_blank() {
            Ok(None) => None,
            Ok(Some(byte)) => Some(Record {
                line: self.line,
                result: Err(RecordError::new(
                    code::INVALID_JSON,
                    format!(
                        "unexpected {} after the `]` that closes the array (line {}, column {}); \
                         a JSON-array input holds one array: remove the text or merge the arrays",
                        show_byte(byte),
                        self.line,
                        self.column
                    ),
                )),
            }),
            Err(error) => Some(read_error(self.line, &error)),
        }
    }
}

impl Iterator for JsonArrayRecords {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if let Some(record) = self.pending.take() {
            return Some(record);
        }
        loop {
            match self.state {
                ArrayState::Done => return None,
                ArrayState::Closed => return self.closed(),
                ArrayState::Element => {
                    if let Some(record) = self.element() {
                        return Some(record);
                    }
                }
            }
        }
    }
}

/// A byte for a message: the character when printable ASCII, else its hex value.
fn show_byte(byte: u8) -> String {
    if byte.is_ascii_graphic() {
        format!("`{}`", byte as char)
    } else {
        format!("the byte 0x{byte:02x}")
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::PathBuf;

    use flate2::Compression;
    use flate2::write::GzEncoder;
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::format::csv::{CsvShape, MetadataMode};

    const MIB: usize = 1024 * 1024;

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write the input");
        path
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(bytes).expect("gzip");
        encoder.finish().expect("gzip")
    }

    fn options(format: InputFormat) -> ReadOptions {
        ReadOptions {
            format,
            ..ReadOptions::default()
        }
    }

    fn read_path(path: &Path, options: &ReadOptions) -> (InputFormat, Vec<Record>) {
        let (format, records) = open(path, options).expect("the input opens");
        (format, records.collect())
    }

    /// Reads bytes from a file of that name; the records as (line, result).
    fn read_named(name: &str, bytes: &[u8], options: &ReadOptions) -> (InputFormat, Vec<Record>) {
        let dir = tempfile::tempdir().expect("temp dir");
        read_path(&write(&dir, name, bytes), options)
    }

    fn read(name: &str, bytes: &[u8]) -> Vec<Record> {
        read_named(name, bytes, &ReadOptions::default()).1
    }

    fn open_error(name: &str, bytes: &[u8], options: &ReadOptions) -> InputError {
        let dir = tempfile::tempdir().expect("temp dir");
        match open(&write(&dir, name, bytes), options) {
            Ok((format, _)) => panic!("{name} opened as {format}"),
            Err(error) => error,
        }
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(object) => object,
            other => panic!("not an object: {other}"),
        }
    }

    /// (line, the object) for a good record; panics on an error.
    fn ok(record: &Record) -> (u64, &Map<String, Value>) {
        match &record.result {
            Ok(object) => (record.line, object),
            Err(error) => panic!("line {}: {error}", record.line),
        }
    }

    /// (line, the error) for a bad record; panics on a good one.
    fn err(record: &Record) -> (u64, &RecordError) {
        match &record.result {
            Err(error) => (record.line, error),
            Ok(object) => panic!("line {} read: {object:?}", record.line),
        }
    }

    fn lines(records: &[Record]) -> Vec<u64> {
        records.iter().map(|record| record.line).collect()
    }

    fn source(bytes: Vec<u8>) -> Source {
        Box::new(Cursor::new(bytes))
    }

    // ---- NDJSON ----

    #[test]
    fn ndjson_reads_objects_with_their_lines_and_skips_blank_lines() {
        let records = read(
            "users.ndjson",
            b"{\"a\":1}\n\n   \n\t\r\n{\"b\":2}\n\n{\"c\":3}",
        );
        assert_eq!(lines(&records), [1, 5, 7]);
        assert_eq!(ok(&records[0]).1, &object(json!({"a": 1})));
        assert_eq!(ok(&records[1]).1, &object(json!({"b": 2})));
        assert_eq!(ok(&records[2]).1, &object(json!({"c": 3})));
    }

    #[test]
    fn ndjson_drops_a_bom_and_accepts_crlf() {
        let records = read(
            "u.ndjson",
            b"\xEF\xBB\xBF{\"a\":1}\r\n\r\n{\"b\":\"x\"}\r\n",
        );
        assert_eq!(lines(&records), [1, 3]);
        assert_eq!(ok(&records[0]).1, &object(json!({"a": 1})));
        assert_eq!(ok(&records[1]).1, &object(json!({"b": "x"})));
    }

    #[test]
    fn ndjson_broken_line_is_an_error_with_its_column_and_reading_goes_on() {
        let records = read("u.ndjson", b"{\"a\":1}\n{\"a\" 1}\n{\"b\":2}\n");
        assert_eq!(lines(&records), [1, 2, 3]);
        let (line, error) = err(&records[1]);
        assert_eq!(
            (line, error.code, error.field.as_deref()),
            (2, "invalid_json", None)
        );
        assert!(
            error.message.contains("line 2, column 6"),
            "{}",
            error.message
        );
        assert!(error.message.contains("expected `:`"), "{}", error.message);
        assert_eq!(error.raw.as_deref(), Some("{\"a\" 1}"));
        ok(&records[2]);
    }

    #[test]
    fn ndjson_value_that_is_not_an_object_is_not_an_object() {
        let records = read("u.ndjson", b"[1]\n\"x\"\nnull\n42\n");
        assert_eq!(lines(&records), [1, 2, 3, 4]);
        for record in &records {
            assert_eq!(err(record).1.code, "not_an_object");
        }
        assert!(err(&records[0]).1.message.contains("an array"));
    }

    #[test]
    fn ndjson_invalid_utf8_is_its_own_error() {
        let records = read("u.ndjson", b"{\"a\":\"\xff\xfe\"}\n{\"b\":1}\n");
        let (line, error) = err(&records[0]);
        assert_eq!((line, error.code), (1, "invalid_utf8"));
        assert!(error.message.contains("0xff"), "{}", error.message);
        assert!(error.message.contains("column 7"), "{}", error.message);
        assert_eq!(error.raw.as_deref(), Some("{\"a\":\"\u{fffd}\u{fffd}\"}"));
        assert_eq!(ok(&records[1]).0, 2);
    }

    #[test]
    fn ndjson_line_without_a_final_newline_is_read() {
        let records = read("u.ndjson", b"{\"a\":1}\n{\"b\":2}");
        assert_eq!(lines(&records), [1, 2]);
        ok(&records[1]);
    }

    #[test]
    fn ndjson_duplicate_keys_are_found_at_any_depth() {
        let records = read(
            "u.ndjson",
            concat!(
                "{\"email\":\"a@x\",\"email\":\"b@x\"}\n",
                "{\"user_metadata\":{\"plan\":1,\"x\":{},\"plan\":2}}\n",
                "{\"identities\":[{\"p\":1},{\"p\":1,\"p\":2}]}\n",
                "{\"a\":{\"k\":1},\"b\":{\"k\":1}}\n",
            )
            .as_bytes(),
        );
        let (line, error) = err(&records[0]);
        assert_eq!((line, error.code), (1, "duplicate_key"));
        assert_eq!(error.field.as_deref(), Some("email"));
        assert!(error.message.contains("`email` appears twice"));
        assert_eq!(
            err(&records[1]).1.field.as_deref(),
            Some("user_metadata.plan")
        );
        assert_eq!(err(&records[2]).1.field.as_deref(), Some("identities[1].p"));
        // The same key in two different objects is fine.
        ok(&records[3]);
    }

    #[test]
    fn huge_numbers_keep_their_text() {
        let text = "{\"n\":123456789012345678901234567890,\"f\":1e400,\"z\":-0.0,\"e\":1E+5}\n";
        let records = read("u.ndjson", text.as_bytes());
        let user = ok(&records[0]).1;
        assert_eq!(user["n"].to_string(), "123456789012345678901234567890");
        // serde_json writes every exponent as `e+`/`e-`; the digits stay as they were.
        assert_eq!(user["f"].to_string(), "1e+400");
        assert_eq!(user["z"].to_string(), "-0.0");
        assert_eq!(user["e"].to_string(), "1e+5");
    }

    fn deep(levels: usize) -> String {
        format!("{{\"a\":{}1{}}}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash_in_every_format() {
        let nested = deep(10_000);
        let ndjson = format!("{nested}\n{{\"ok\":1}}\n");
        let records = read("u.ndjson", ndjson.as_bytes());
        let error = err(&records[0]).1;
        assert_eq!(error.code, "invalid_json");
        assert!(error.message.contains("127 levels"), "{}", error.message);
        ok(&records[1]);

        let array = format!("[\n{nested},\n{{\"ok\":1}}]");
        let records = read("u.json", array.as_bytes());
        assert_eq!(err(&records[0]).1.code, "invalid_json");
        assert_eq!(ok(&records[1]).0, 3);

        // In CSV the cell does not parse as JSON, so it is a string; in a JSON column it is an
        // error.
        let csv = format!(
            "email,user_metadata\na@x,\"{}\"\n",
            deep(10_000).replace('"', "\"\"")
        );
        let records = read("u.csv", csv.as_bytes());
        let (_, error) = err(&records[0]);
        assert_eq!(error.code, "csv_row");
        assert_eq!(error.field.as_deref(), Some("user_metadata"));

        // 100 levels is fine.
        let records = read("u.ndjson", deep(100).as_bytes());
        ok(&records[0]);
    }

    #[test]
    fn the_depth_limit_is_max_json_depth_levels_counting_the_record() {
        // `deep(n)` is the record object plus n arrays.
        let records = read("u.ndjson", deep(MAX_JSON_DEPTH - 1).as_bytes());
        ok(&records[0]);
        let records = read("u.ndjson", deep(MAX_JSON_DEPTH).as_bytes());
        let error = err(&records[0]).1;
        assert_eq!(error.code, "invalid_json");
        assert!(
            error
                .message
                .contains(&format!("more than {MAX_JSON_DEPTH} levels")),
            "{}",
            error.message
        );
    }

    /// A file of one line of `size` bytes (an object with one long string), then `{"b":1}`.
    fn giant_line(size: usize, line_end: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(size + 32);
        bytes.extend_from_slice(b"{\"a\":\"");
        bytes.resize(size - 2, b'x');
        bytes.extend_from_slice(b"\"}");
        bytes.extend_from_slice(line_end);
        bytes.extend_from_slice(b"{\"b\":1}\n");
        bytes
    }

    #[test]
    fn ndjson_line_over_the_cap_is_skipped_and_memory_stays_under_the_cap() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write(&dir, "big.ndjson", &giant_line(20 * MIB, b"\n"));
        let file = File::open(&path).expect("open");
        let mut records = NdjsonRecords::new(Box::new(BufReader::new(file)), MIB);
        let first = records.next().expect("a record");
        let (line, error) = err(&first);
        assert_eq!((line, error.code), (1, "too_large"));
        assert!(
            error.message.contains(&(20 * MIB).to_string()),
            "{}",
            error.message
        );
        assert_eq!(error.raw.as_ref().map(String::len), Some(MIB));
        // By design: the capture never grows past the cap (plus one byte).
        assert!(records.capture.bytes.capacity() <= MIB + 1);
        let second = records.next().expect("the next line");
        assert_eq!(ok(&second).0, 2);
        assert!(records.next().is_none());

        // Through `open`, with the cap in the options.
        let options = ReadOptions {
            max_record_bytes: MIB,
            ..ReadOptions::default()
        };
        let (_, records) = read_path(&path, &options);
        assert_eq!(lines(&records), [1, 2]);
        assert_eq!(err(&records[0]).1.code, "too_large");
    }

    #[test]
    fn cap_counts_the_line_without_its_line_end() {
        let line = b"{\"a\":\"xx\"}"; // 10 bytes
        for end in [&b"\n"[..], b"\r\n"] {
            let mut bytes = line.to_vec();
            bytes.extend_from_slice(end);
            let mut records = NdjsonRecords::new(source(bytes.clone()), 10);
            ok(&records.next().expect("a record"));
            let mut records = NdjsonRecords::new(source(bytes), 9);
            assert_eq!(err(&records.next().expect("a record")).1.code, "too_large");
        }
    }

    #[test]
    fn zero_cap_means_the_default() {
        let options = ReadOptions {
            max_record_bytes: 0,
            ..ReadOptions::default()
        };
        assert_eq!(options.cap(), DEFAULT_MAX_RECORD_BYTES);
        let (_, records) = read_named("u.ndjson", b"{\"a\":1}\n", &options);
        ok(&records[0]);
    }

    // ---- CSV ----

    #[test]
    fn csv_reads_rows_with_physical_line_numbers() {
        let text = concat!(
            "email,name,user_metadata.plan\r\n",
            "a@x,Ann,gold\r\n",
            "\r\n",
            "b@x,\"Bob\nof two\nlines\",silver\n",
            "\n",
            "c@x,Cy,\"\"\"42\"\"\"\n",
            "d@x,Di,7",
        );
        let (format, records) = read_named("users.csv", text.as_bytes(), &ReadOptions::default());
        assert_eq!(format, InputFormat::Csv);
        assert_eq!(lines(&records), [2, 4, 8, 9]);
        assert_eq!(
            ok(&records[0]).1,
            &object(json!({"email": "a@x", "name": "Ann", "user_metadata": {"plan": "gold"}}))
        );
        assert_eq!(ok(&records[1]).1["name"], json!("Bob\nof two\nlines"));
        assert_eq!(ok(&records[2]).1["user_metadata"], json!({"plan": "42"}));
        assert_eq!(ok(&records[3]).1["user_metadata"], json!({"plan": 7}));
    }

    #[test]
    fn csv_lone_cr_ends_a_row_as_in_the_csv_crate() {
        let records = read("u.csv", b"email\ra@x\rb@x\n");
        assert_eq!(records.len(), 2);
        assert_eq!(ok(&records[1]).1["email"], json!("b@x"));
    }

    #[test]
    fn csv_drops_a_bom() {
        let records = read("u.csv", b"\xEF\xBB\xBFemail,name\na@x,Ann\n");
        assert_eq!(
            ok(&records[0]).1,
            &object(json!({"email": "a@x", "name": "Ann"}))
        );
    }

    #[test]
    fn csv_ragged_rows_are_errors_naming_the_column() {
        let records = read(
            "u.csv",
            b"email,name,nickname\na@x,Ann\nb@x,Bob,B,extra\nc@x,Cy,C\n",
        );
        assert_eq!(lines(&records), [2, 3, 4]);
        let (_, short) = err(&records[0]);
        assert_eq!(
            (short.code, short.field.as_deref()),
            ("csv_row", Some("nickname"))
        );
        assert_eq!(short.raw.as_deref(), Some("a@x,Ann"));
        let (_, long) = err(&records[1]);
        assert_eq!((long.code, long.field.as_deref()), ("csv_row", None));
        assert!(long.message.contains("4 cells"), "{}", long.message);
        ok(&records[2]);
    }

    #[test]
    fn csv_cell_that_does_not_fit_its_column_is_an_error() {
        let records = read(
            "u.csv",
            b"email,app_metadata\na@x,[1]\nb@x,\"{\"\"plan\"\":1}\"\n",
        );
        let (_, error) = err(&records[0]);
        assert_eq!(
            (error.code, error.field.as_deref()),
            ("csv_row", Some("app_metadata"))
        );
        assert_eq!(ok(&records[1]).1["app_metadata"], json!({"plan": 1}));
    }

    #[test]
    fn csv_header_problems_are_input_errors() {
        let csv = options(InputFormat::Csv);
        for (text, needle) in [
            (&b"email,name,email\na,b,c\n"[..], "twice"),
            (b"email,,name\n", "no name"),
            (b"email,address.city\n", "address.city"),
            (b"em\xffail,name\n", "UTF-8"),
            (b"\"email,name\n", "never closed"),
            (b"", "empty"),
            (b"\n\r\n", "empty"),
        ] {
            let error = open_error("u.csv", text, &csv);
            assert!(matches!(error, InputError::CsvHeader { .. }), "{error}");
            assert!(error.to_string().contains(needle), "{error}");
        }
        let error = open_error("u.csv", b"\n\nemail,email\n", &csv);
        assert!(error.to_string().contains("line 3"), "{error}");
        let options = ReadOptions {
            format: InputFormat::Csv,
            max_record_bytes: 8,
            ..ReadOptions::default()
        };
        let error = open_error("u.csv", b"email,name,nickname\n", &options);
        assert!(error.to_string().contains("longer than 8 bytes"), "{error}");
    }

    #[test]
    fn csv_invalid_utf8_in_a_row_is_an_error_for_that_row() {
        let records = read("u.csv", b"email,name\na@x,An\xffn\nb@x,Bob\n");
        let (line, error) = err(&records[0]);
        assert_eq!(
            (line, error.code, error.field.as_deref()),
            (2, "invalid_utf8", Some("name"))
        );
        assert_eq!(error.raw.as_deref(), Some("a@x,An\u{fffd}n"));
        assert_eq!(ok(&records[1]).0, 3);
    }

    #[test]
    fn csv_duplicate_key_in_a_json_cell_is_an_error() {
        let records = read(
            "u.csv",
            b"email,user_metadata\na@x,\"{\"\"a\"\":{\"\"b\"\":1,\"\"b\"\":2}}\"\n",
        );
        let (_, error) = err(&records[0]);
        assert_eq!(
            (error.code, error.field.as_deref()),
            ("duplicate_key", Some("user_metadata"))
        );
        assert!(error.message.contains("`a.b`"), "{}", error.message);
    }

    #[test]
    fn csv_row_over_the_cap_is_skipped_and_lines_after_it_stay_right() {
        // A 20 MB quoted cell full of line breaks, then a good row.
        let mut bytes = b"email,name\na@x,\"".to_vec();
        let cell: Vec<u8> = b"line\n".iter().copied().cycle().take(20 * MIB).collect();
        bytes.extend_from_slice(&cell);
        bytes.extend_from_slice(b"\"\nb@x,Bob\n");
        let breaks = cell.iter().filter(|byte| **byte == b'\n').count() as u64;

        let dir = tempfile::tempdir().expect("temp dir");
        let path = write(&dir, "big.csv", &bytes);
        let file = File::open(&path).expect("open");
        let mut records = CsvRecords::open(Box::new(BufReader::new(file)), MIB, false, "big.csv")
            .expect("header");
        let first = records.next().expect("a record");
        let (line, error) = err(&first);
        assert_eq!((line, error.code), (2, "too_large"));
        assert!(records.splitter.capture.bytes.capacity() <= MIB + 1);
        let next = records.next().expect("the next row");
        assert_eq!(
            ok(&next),
            (3 + breaks, &object(json!({"email": "b@x", "name": "Bob"})))
        );
        assert!(records.next().is_none());
    }

    #[test]
    fn csv_unclosed_quote_makes_the_rest_one_rejected_row() {
        let records = read("u.csv", b"email,name\na@x,Ann\nb@x,\"Bob\nc@x,Cy\n");
        assert_eq!(lines(&records), [2, 3]);
        let (_, error) = err(&records[1]);
        assert_eq!(error.code, "csv_row");
        assert!(error.message.contains("never closed"), "{}", error.message);
        assert_eq!(error.raw.as_deref(), Some("b@x,\"Bob\nc@x,Cy\n"));
    }

    #[test]
    fn csv_keeps_a_bom_that_starts_a_later_row() {
        let records = read("u.csv", b"name\n\xEF\xBB\xBFx\n");
        assert_eq!(ok(&records[0]).1["name"], json!("\u{feff}x"));
    }

    #[test]
    fn csv_unescapes_formulas_when_asked() {
        let text = b"email,logins_count\n'=a@x,'-5\n";
        let plain = read_named("u.csv", text, &ReadOptions::default()).1;
        assert_eq!(ok(&plain[0]).1["email"], json!("'=a@x"));
        let options = ReadOptions {
            unescape_formulas: true,
            ..ReadOptions::default()
        };
        let unescaped = read_named("u.csv", text, &options).1;
        assert_eq!(
            ok(&unescaped[0]).1,
            &object(json!({"email": "=a@x", "logins_count": -5}))
        );
    }

    #[test]
    fn csv_written_by_export_reads_back_in_both_metadata_modes() {
        let users: Vec<Map<String, Value>> = [
            json!({"user_id": "auth0|1", "email": "a@x", "name": "A, \"the\" first\nline",
                   "logins_count": 18446744073709551615u64,
                   "user_metadata": {"prefs": {"tz": "UTC"}, "n": "42"},
                   "app_metadata": {"plan": "gold"}, "custom": [1, 2]}),
            json!({"user_id": "auth0|2", "email": "b@x", "app_metadata": {}}),
        ]
        .into_iter()
        .map(object)
        .collect();
        for mode in [MetadataMode::Json, MetadataMode::Flatten] {
            let shape = match mode {
                MetadataMode::Json => CsvShape::json(None).expect("shape"),
                MetadataMode::Flatten => {
                    let mut leaves = crate::format::csv::LeafColumns::default();
                    for user in &users {
                        leaves.collect(user).expect("leaves");
                    }
                    CsvShape::flatten(None, &leaves).expect("shape")
                }
            };
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(shape.header()).expect("header");
            for user in &users {
                writer
                    .write_record(shape.encode(user, true).expect("row"))
                    .expect("row");
            }
            let bytes = writer.into_inner().expect("flush");
            let options = ReadOptions {
                unescape_formulas: true,
                ..ReadOptions::default()
            };
            let (_, records) = read_named("export.csv.gz", &gzip(&bytes), &options);
            let read: Vec<_> = records.iter().map(|record| ok(record).1.clone()).collect();
            assert_eq!(read, users, "{mode:?}");
            assert_eq!(lines(&records), [2, 4], "{mode:?}");
        }
    }

    // ---- JSON arrays ----

    #[test]
    fn json_array_elements_come_with_the_line_they_start_on() {
        let text =
            "\u{feff}[\n  {\"a\": 1},\n  {\n    \"b\": [1, \"],{\\\"\"]\n  }, {\"c\":\n3}\n]\n";
        let (format, records) = read_named("import.json", text.as_bytes(), &ReadOptions::default());
        assert_eq!(format, InputFormat::Json);
        assert_eq!(lines(&records), [2, 3, 5]);
        assert_eq!(ok(&records[1]).1["b"], json!([1, "],{\""]));
        assert_eq!(ok(&records[2]).1, &object(json!({"c": 3})));
    }

    #[test]
    fn json_array_bad_element_in_the_middle_is_an_error_and_the_rest_is_read() {
        let text = "[{\"a\":1},\n {\"a\": tru},\n 7,\n {\"a\":1,\"a\":2},\n {\"b\":2}]";
        let records = read("import.json", text.as_bytes());
        assert_eq!(lines(&records), [1, 2, 3, 4, 5]);
        let (_, broken) = err(&records[1]);
        assert_eq!(broken.code, "invalid_json");
        assert!(
            broken.message.contains("line 2, column 11"),
            "{}",
            broken.message
        );
        assert_eq!(broken.raw.as_deref(), Some("{\"a\": tru}"));
        assert_eq!(err(&records[2]).1.code, "not_an_object");
        assert_eq!(err(&records[3]).1.code, "duplicate_key");
        assert_eq!(ok(&records[4]).1, &object(json!({"b": 2})));
    }

    #[test]
    fn json_array_error_position_on_a_later_line_of_the_element() {
        let records = read("import.json", b"[\n{\n\"a\": 1,\n\"b\" 2\n}]");
        let (line, error) = err(&records[0]);
        assert_eq!(line, 2);
        assert!(
            error.message.contains("line 4, column 5"),
            "{}",
            error.message
        );
    }

    #[test]
    fn json_array_cut_after_a_complete_element_ends_with_a_truncation_error() {
        let records = read("import.json", b"[{\"a\":1},\n{\"b\":2}\n");
        assert_eq!(lines(&records), [1, 2, 3]);
        ok(&records[1]);
        let (_, error) = err(&records[2]);
        assert_eq!(error.code, "invalid_json");
        assert!(
            error.message.contains("without the `]`"),
            "{}",
            error.message
        );
        assert_eq!(error.raw, None);

        let records = read("import.json", b"[{\"a\":1},\n");
        assert_eq!(lines(&records), [1, 2]);
        assert!(err(&records[1]).1.message.contains("after a `,`"));
    }

    #[test]
    fn json_array_cut_inside_an_element_is_one_error_for_it() {
        let records = read("import.json", b"[{\"a\":1},\n{\"b\":\"half");
        assert_eq!(lines(&records), [1, 2]);
        let (_, error) = err(&records[1]);
        assert_eq!(error.code, "invalid_json");
        assert!(
            error.message.contains("ends inside this element"),
            "{}",
            error.message
        );
        assert_eq!(error.raw.as_deref(), Some("{\"b\":\"half"));
    }

    #[test]
    fn json_input_that_is_not_an_array_or_holds_nothing_is_an_input_error() {
        let json = options(InputFormat::Json);
        for (text, needle) in [
            (&b"{\"a\":1}"[..], "starts with `{`, not `[`"),
            (b"\n\n  x", "line 3"),
            (b"", "empty"),
            (b"   \n", "empty"),
            (b" [ \n ", "ends just after its `[`"),
            (b"\xff", "byte 0xff"),
        ] {
            let error = open_error("u.json", text, &json);
            assert!(matches!(error, InputError::Json { .. }), "{error}");
            assert!(error.to_string().contains(needle), "{error}");
        }
    }

    #[test]
    fn json_array_empty_and_empty_elements() {
        assert!(read("u.json", b"[]").is_empty());
        assert!(read("u.json", b" [ \n ] \n").is_empty());
        let records = read("u.json", b"[,{\"a\":1},,\n{\"b\":2},]");
        assert_eq!(lines(&records), [1, 2]);
        ok(&records[0]);
        ok(&records[1]);
    }

    #[test]
    fn json_array_text_after_the_closing_bracket_is_an_error() {
        let records = read("u.json", b"[{\"a\":1}]\n[{\"b\":2}]");
        assert_eq!(lines(&records), [1, 2]);
        let (_, error) = err(&records[1]);
        assert_eq!(error.code, "invalid_json");
        assert!(error.message.contains("after the `]`"), "{}", error.message);
    }

    #[test]
    fn json_array_element_over_the_cap_is_skipped_with_bounded_memory() {
        let mut bytes = b"[\n".to_vec();
        bytes.extend_from_slice(&giant_line(20 * MIB, b",\n")[..20 * MIB + 2]);
        bytes.extend_from_slice(b"{\"b\":1}]\n");
        let mut records = JsonArrayRecords::open(source(bytes), MIB, "big.json").expect("open");
        let first = records.next().expect("a record");
        assert_eq!((first.line, err(&first).1.code), (2, "too_large"));
        assert!(records.capture.bytes.capacity() <= MIB + 1);
        let second = records.next().expect("the next element");
        assert_eq!(ok(&second), (3, &object(json!({"b": 1}))));
        assert!(records.next().is_none());
    }

    #[test]
    fn json_array_invalid_utf8_element() {
        let records = read("u.json", b"[{\"a\":\"\xc3\"},\n{\"b\":1}]");
        assert_eq!(err(&records[0]).1.code, "invalid_utf8");
        assert_eq!(ok(&records[1]).0, 2);
    }

    // ---- gzip, formats, opening ----

    const NDJSON: &[u8] = b"{\"a\":1}\n{\"b\":2}\n";
    const CSV: &[u8] = b"email\na@x\nb@x\n";
    const JSON: &[u8] = b"[{\"a\":1},\n{\"b\":2}]";

    #[test]
    fn gzip_of_each_format_is_read_whatever_the_name() {
        for (plain, format) in [
            (NDJSON, InputFormat::Ndjson),
            (CSV, InputFormat::Csv),
            (JSON, InputFormat::Json),
        ] {
            let zipped = gzip(plain);
            let name = format!("users.{}.gz", format.name());
            let (found, records) = read_named(&name, &zipped, &ReadOptions::default());
            assert_eq!(found, format);
            assert_eq!(
                lines(&records),
                lines(&read(&name[..name.len() - 3], plain))
            );
            assert!(records.iter().all(|record| record.result.is_ok()));
            // No name: the magic bytes, then the first byte, decide.
            let (found, records) = read_named("upload", &zipped, &ReadOptions::default());
            assert_eq!((found, records.len()), (format, 2));
        }
    }

    #[test]
    fn multi_member_gzip_is_read_to_the_end() {
        let mut bytes = gzip(b"{\"a\":1}\n{\"b\":");
        bytes.extend(gzip(b"2}\n"));
        bytes.extend(gzip(b"{\"c\":3}\n"));
        let records = read("u.ndjson.gz", &bytes);
        assert_eq!(lines(&records), [1, 2, 3]);
        assert_eq!(ok(&records[1]).1, &object(json!({"b": 2})));
    }

    #[test]
    fn gz_name_on_data_that_is_not_gzip_is_an_input_error() {
        let error = open_error("u.ndjson.gz", NDJSON, &ReadOptions::default());
        assert!(matches!(error, InputError::NotGzip { .. }), "{error}");
        let error = open_error("u.ndjson.GZ", b"", &ReadOptions::default());
        assert!(matches!(error, InputError::NotGzip { .. }), "{error}");
    }

    #[test]
    fn gzip_cut_short_ends_with_a_read_error_after_the_records_before_it() {
        let mut text = Vec::new();
        for index in 0..2000 {
            writeln!(
                text,
                "{{\"n\":{index},\"pad\":\"{}\"}}",
                "y".repeat(index % 97)
            )
            .expect("line");
        }
        let zipped = gzip(&text);
        let cut = &zipped[..zipped.len() * 2 / 3];
        let records = read("u.ndjson.gz", cut);
        let last = records.last().expect("records");
        assert_eq!(err(last).1.code, "read_error");
        assert!(records.len() > 100);
        for (index, record) in records[..records.len() - 1].iter().enumerate() {
            assert_eq!(ok(record).0, index as u64 + 1);
        }
        // Cut inside the gzip header: nothing to read at all.
        let error = open_error("u.ndjson.gz", &zipped[..5], &ReadOptions::default());
        assert!(matches!(error, InputError::Read { .. }), "{error}");
        assert!(
            error.to_string().contains("gzip data is cut short"),
            "{error}"
        );
    }

    #[test]
    fn auto_decides_by_name_then_by_first_byte() {
        let auto = ReadOptions::default();
        // A partial BOM is text: CSV, whose header is then not UTF-8.
        let error = open_error("data", b"\xEF\xBB", &auto);
        assert!(matches!(error, InputError::CsvHeader { .. }), "{error}");
        let cases: [(&str, &[u8], InputFormat); 11] = [
            ("a.ndjson", b"[1]\n", InputFormat::Ndjson),
            ("a.JSONL", NDJSON, InputFormat::Ndjson),
            ("a.csv", b"x,{y}\n", InputFormat::Csv),
            ("a.json", JSON, InputFormat::Json),
            // Auth0's export job writes NDJSON into `.json.gz` files.
            ("tenant.json", NDJSON, InputFormat::Ndjson),
            ("a.json", b"", InputFormat::Json),
            ("data", b"\n\n  [{\"a\":1}]", InputFormat::Json),
            ("data", b"\xEF\xBB\xBF {\"a\":1}", InputFormat::Ndjson),
            ("data", CSV, InputFormat::Csv),
            ("data.txt", b"", InputFormat::Ndjson),
            ("data", b" \n\t\r\n", InputFormat::Ndjson),
        ];
        for (name, bytes, format) in cases {
            let dir = tempfile::tempdir().expect("temp dir");
            let result = open(&write(&dir, name, bytes), &auto);
            match result {
                Ok((found, _)) => assert_eq!(found, format, "{name}"),
                Err(error) => {
                    assert_eq!(format, InputFormat::Json, "{name}: {error}");
                    assert!(matches!(error, InputError::Json { .. }));
                }
            }
        }
        // The format given wins over the name.
        let (found, records) = read_named("a.csv", NDJSON, &options(InputFormat::Ndjson));
        assert_eq!((found, records.len()), (InputFormat::Ndjson, 2));
    }

    #[test]
    fn a_pretty_printed_object_is_refused_whole_not_rejected_line_by_line() {
        let auto = ReadOptions::default();
        let pretty = b"\xEF\xBB\xBF\n{\n  \"users\": [\n    {\"user_id\": \"a\"}\n  ]\n}\n";
        for name in ["users.json", "users.ndjson", "data", "users.json.gz"] {
            let bytes = if name.ends_with(".gz") {
                gzip(pretty)
            } else {
                pretty.to_vec()
            };
            let error = open_error(name, &bytes, &auto);
            match &error {
                InputError::Json { line, message, .. } => {
                    assert_eq!(*line, 2, "{name}: {error}");
                    assert!(message.contains("pretty-printed"), "{name}: {error}");
                }
                other => panic!("{name}: {other}"),
            }
        }
        // Asked for NDJSON, each line is a record of its own (and rejected).
        let (_, records) = read_named("users.json", pretty, &options(InputFormat::Ndjson));
        assert_eq!(lines(&records), [2, 3, 4, 5, 6]);
        // An NDJSON record starting the file, or a `{` followed by more on its line, reads.
        assert_eq!(read("users.json", b"{\"a\":1}\n{\"b\":2}\n").len(), 2);
        assert_eq!(read("users.ndjson", b"{ \"a\"\n}\n").len(), 2);
        assert_eq!(spread_object(b" \t{ \r\n"), Some(1));
        assert_eq!(spread_object(b"{"), None, "the line's end is not known");
        assert_eq!(spread_object(b"[\n"), None);
    }

    #[test]
    fn a_byte_order_mark_inside_the_input_is_named_in_the_rejection() {
        let mut bytes = b"\xEF\xBB\xBF{\"a\":1}\n".to_vec();
        bytes.extend_from_slice(b"\xEF\xBB\xBF{\"b\":2}\n{\"c\":3}\n");
        let records = read("u.ndjson", &bytes);
        assert_eq!(ok(&records[0]).0, 1, "the leading one is dropped");
        let (line, error) = err(&records[1]);
        assert_eq!((line, error.code), (2, "invalid_json"));
        assert!(error.message.contains("byte order mark"), "{error}");
        assert_eq!(ok(&records[2]).0, 3);
        let records = read("u.json", b"[{\"a\":1},\n\xEF\xBB\xBF{\"b\":2}]");
        assert!(err(&records[1]).1.message.contains("byte order mark"));
    }

    #[test]
    fn content_is_named_for_what_its_first_line_looks_like() {
        let cases: [(&[u8], Content); 11] = [
            (b"", Content::Blank),
            (b" \n\r\n", Content::Blank),
            (
                b"\n{\"a\":1}\n",
                Content::Object {
                    line: 2,
                    whole: true,
                },
            ),
            (
                b"{\"a\":1}\r\nmore",
                Content::Object {
                    line: 1,
                    whole: true,
                },
            ),
            (
                b"{\n  \"a\": 1\n}\n",
                Content::Object {
                    line: 1,
                    whole: false,
                },
            ),
            (b"[{\"a\":1}]", Content::Array { line: 1 }),
            (
                b"email,app_metadata.plan\na@example.com,pro\n",
                Content::CsvHeader {
                    line: 1,
                    text: "email,app_metadata.plan".into(),
                },
            ),
            (
                b"email\r\n",
                Content::CsvHeader {
                    line: 1,
                    text: "email".into(),
                },
            ),
            // Broken NDJSON lines and JSON values stay records the reader rejects.
            (b"\"user_id\": \"a\", \"email\": \"b\"}\n", Content::Other),
            (b"42\n", Content::Other),
            // Only ASCII names count as a one-column header.
            (b"\xc2\xb9", Content::Other),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                Content::of(bytes),
                want,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        let long = format!("{}\n", vec!["column"; 20].join(","));
        match Content::of(long.as_bytes()) {
            Content::CsvHeader { text, .. } => {
                assert!(text.ends_with("...") && text.chars().count() == Content::SHOWN + 3)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_format_chosen_by_name_that_the_content_contradicts_is_a_mismatch() {
        let object = Content::Object {
            line: 1,
            whole: true,
        };
        let header = Content::CsvHeader {
            line: 3,
            text: "email,name".into(),
        };
        let found = content_mismatch(InputFormat::Csv, &object).expect("NDJSON in a CSV");
        assert_eq!(
            (found.looks.as_str(), found.format),
            ("NDJSON (line 1 is a JSON object)", "ndjson")
        );
        let found =
            content_mismatch(InputFormat::Csv, &Content::Array { line: 2 }).expect("an array");
        assert_eq!(found.format, "json");
        let found = content_mismatch(InputFormat::Ndjson, &header).expect("CSV in NDJSON");
        assert_eq!(found.format, "csv");
        assert!(
            found.looks.contains("line 3 is the header `email,name`"),
            "{}",
            found.looks
        );
        for (format, content) in [
            (InputFormat::Csv, &header),
            (InputFormat::Ndjson, &object),
            (InputFormat::Csv, &Content::Blank),
            (InputFormat::Ndjson, &Content::Blank),
            (InputFormat::Ndjson, &Content::Other),
            // A JSON array in an NDJSON file reads as records the reader rejects, as before.
            (InputFormat::Ndjson, &Content::Array { line: 1 }),
        ] {
            assert_eq!(
                content_mismatch(format, content),
                None,
                "{format} {content:?}"
            );
        }
    }

    #[test]
    fn content_that_contradicts_its_name_or_format_is_refused_before_any_record() {
        let ndjson = b"{\"user_id\":\"a\",\"email\":\"a@example.com\"}\n";
        let csv = b"user_id,email\nauth0|1,a@example.com\n";
        let auto = ReadOptions::default();
        // (name, bytes, options, what the message says)
        let cases: [(&str, Vec<u8>, ReadOptions, &str); 6] = [
            (
                "users.csv",
                ndjson.to_vec(),
                auto.clone(),
                "looks like NDJSON (line 1 is a JSON object), not CSV; rename it or pass --format ndjson",
            ),
            (
                "users.csv.gz",
                gzip(ndjson),
                auto.clone(),
                "not CSV; rename it or pass --format ndjson",
            ),
            (
                "users.ndjson",
                csv.to_vec(),
                auto.clone(),
                "looks like CSV (line 1 is the header `user_id,email`, not a JSON object), not NDJSON; rename it or pass --format csv",
            ),
            (
                "users.ndjson.gz",
                gzip(csv),
                auto.clone(),
                "not NDJSON; rename it or pass --format csv",
            ),
            (
                "data",
                ndjson.to_vec(),
                options(InputFormat::Csv),
                "pass --format ndjson instead of --format csv",
            ),
            (
                "users.json",
                csv.to_vec(),
                options(InputFormat::Ndjson),
                "pass --format csv instead of --format ndjson",
            ),
        ];
        for (name, bytes, options, says) in cases {
            let error = open_error(name, &bytes, &options);
            assert!(
                matches!(error, InputError::Mismatch { .. }),
                "{name}: {error}"
            );
            let message = error.to_string();
            assert!(message.starts_with("--input "), "{message}");
            assert!(
                message.contains(name) && message.contains(says),
                "{name}: {message}"
            );
        }
        // What the content is, read as what it is.
        assert_eq!(read("users.csv", csv).len(), 1);
        assert_eq!(read("users.ndjson", ndjson).len(), 1);
        let (format, records) = read_named("users.csv", ndjson, &options(InputFormat::Ndjson));
        assert_eq!((format, records.len()), (InputFormat::Ndjson, 1));
        // Empty inputs of either kind: a CSV export's lone header, an empty gzip stream.
        assert!(read("users.csv", b"user_id,email\n").is_empty());
        assert!(read("users.csv.gz", &gzip(b"user_id,email\n")).is_empty());
        assert!(read("users.ndjson.gz", &gzip(b"")).is_empty());
        assert!(read("users.ndjson", b"\n").is_empty());
    }

    #[test]
    fn blank_input_is_no_records() {
        assert!(read("a.ndjson", b"").is_empty());
        assert!(read("data", b"\n \n").is_empty());
    }

    #[test]
    fn a_long_blank_start_still_reads() {
        let mut bytes = vec![b'\n'; SNIFF_LIMIT * 3];
        bytes.extend_from_slice(b"{\"a\":1}\n");
        let (format, records) = read_named("data", &bytes, &ReadOptions::default());
        // Past the sniff limit the first byte is unknown: NDJSON, which skips blank lines.
        assert_eq!(format, InputFormat::Ndjson);
        assert_eq!(ok(&records[0]).0, SNIFF_LIMIT as u64 * 3 + 1);
    }

    #[test]
    fn from_reader_reads_as_open_does_with_the_name_as_the_file_name() {
        let bytes = b"user_id,email\nauth0|1,a@example.com\n";
        let (format, records) = from_reader(
            Cursor::new(bytes.to_vec()),
            "users.csv",
            &ReadOptions::default(),
        )
        .expect("readable");
        let from_memory: Vec<Record> = records.collect();
        assert_eq!(format, InputFormat::Csv);
        let (_, from_file) = read_named("users.csv", bytes, &ReadOptions::default());
        assert_eq!(from_memory.len(), 1);
        assert_eq!(ok(&from_memory[0]), ok(&from_file[0]));
        let error = from_reader(
            Cursor::new(b"{}".to_vec()),
            "users.csv.gz",
            &options(InputFormat::Auto),
        )
        .err()
        .expect("not gzip");
        assert!(matches!(error, InputError::NotGzip { .. }), "{error}");
    }

    #[test]
    fn missing_file_is_an_input_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let error = open(&dir.path().join("nope.ndjson"), &ReadOptions::default())
            .err()
            .expect("an error");
        assert!(matches!(error, InputError::Open { .. }), "{error}");
        assert!(error.to_string().contains("nope.ndjson"), "{error}");
    }

    #[test]
    fn records_iterator_is_send() {
        fn send<T: Send>(_: &T) {}
        let dir = tempfile::tempdir().expect("temp dir");
        let (_, records) =
            open(&write(&dir, "a.ndjson", NDJSON), &ReadOptions::default()).expect("open");
        send(&records);
    }

    #[test]
    fn duplicate_walk_handles_numbers_and_paths() {
        assert_eq!(find_duplicate_key("{\"a\":1e999,\"b\":[1,2.5,-0]}"), None);
        assert_eq!(find_duplicate_key("not json"), None);
        let found = find_duplicate_key("[{},{\"x\":{\"y\":[{\"k\":1,\"k\":2}]}}]").expect("found");
        assert_eq!(found.path, "[1].x.y[0].k");
        assert_eq!(found.key, "k");
    }

    #[test]
    fn capped_text_never_exceeds_the_cap() {
        assert_eq!(capped_text(b"\xff\xff\xff", 4), "\u{fffd}");
        assert_eq!(capped_text("héllo".as_bytes(), 2), "h");
        assert_eq!(capped_text(b"abc", 10), "abc");
    }

    // ---- Properties ----

    /// One line of an NDJSON file.
    #[derive(Clone, Debug)]
    enum Line {
        Good(Map<String, Value>),
        Garbage(Vec<u8>),
        Blank(String),
    }

    fn json_leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "-?[1-9][0-9]{0,40}(\\.[0-9]{1,5})?(e[-+]?[0-9]{1,3})?"
                .prop_map(|text| serde_json::from_str(&text).expect("number")),
            any::<String>().prop_map(Value::String),
        ]
    }

    fn json_object() -> impl Strategy<Value = Map<String, Value>> {
        let value = json_leaf().prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..4)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        });
        prop::collection::vec((any::<String>(), value), 0..5)
            .prop_map(|entries| entries.into_iter().collect())
    }

    fn garbage() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            "[^\n]{1,40}".prop_map(String::into_bytes),
            "[{}\\[\\]\",: a1\\\\]{1,20}".prop_map(String::into_bytes),
            prop::collection::vec(
                any::<u8>().prop_filter("no LF", |byte| *byte != b'\n'),
                1..40
            ),
            json_object().prop_map(|object| {
                let mut text = serde_json::to_vec(&object).expect("json");
                text.pop();
                text
            }),
        ]
        .prop_filter("not blank, not a good object, no BOM", |bytes| {
            !bytes.iter().all(|byte| is_blank(*byte))
                && serde_json::from_slice::<Map<String, Value>>(bytes).is_err()
                && !bytes.starts_with(BOM)
        })
    }

    fn ndjson_line() -> impl Strategy<Value = Line> {
        prop_oneof![
            3 => json_object().prop_map(Line::Good),
            2 => garbage().prop_map(Line::Garbage),
            1 => "[ \t\r]{0,3}".prop_map(Line::Blank),
        ]
    }

    /// Random text made of the bytes that matter to the scanners and splitters.
    fn tricky_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            prop::collection::vec(
                prop::sample::select(b"[]{}\",:\\ \n\r\tab1'\xef\xbb\xbf\xff.".to_vec()),
                0..300
            ),
        ]
    }

    fn read_bytes(bytes: &[u8], options: &ReadOptions) -> Option<Vec<Record>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write(&dir, "input", bytes);
        open(&path, options)
            .ok()
            .map(|(_, records)| records.collect())
    }

    /// Splits with the splitter, then reads each row with `csv`.
    fn split_rows(bytes: &[u8]) -> Vec<ByteRecord> {
        let mut splitter = CsvSplitter::new(source(bytes.to_vec()), usize::MAX - 1);
        let mut rows = Vec::new();
        while let Some(_row) = splitter.next_row().expect("in memory") {
            rows.push(parse_row(&splitter.capture.bytes));
        }
        rows
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn ndjson_every_line_comes_back_with_its_number(
            file in prop::collection::vec((ndjson_line(), any::<bool>()), 0..30),
            final_newline in any::<bool>(),
        ) {
            let mut bytes = Vec::new();
            let mut expected = Vec::new();
            for (index, (line, crlf)) in file.iter().enumerate() {
                let number = index as u64 + 1;
                match line {
                    Line::Good(object) => {
                        bytes.extend(serde_json::to_vec(object).expect("json"));
                        expected.push((number, Some(object.clone())));
                    }
                    Line::Garbage(garbage) => {
                        bytes.extend_from_slice(garbage);
                        expected.push((number, None));
                    }
                    Line::Blank(blank) => bytes.extend_from_slice(blank.as_bytes()),
                }
                if index + 1 < file.len() || final_newline {
                    bytes.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
                }
            }
            // A first line that reads as a CSV header is refused whole (the content check).
            if let Content::CsvHeader { .. } = Content::of(&bytes) {
                let dir = tempfile::tempdir().expect("temp dir");
                let opened = open(&write(&dir, "input", &bytes), &options(InputFormat::Ndjson));
                let refused = matches!(opened, Err(InputError::Mismatch { .. }));
                prop_assert!(refused, "a CSV header first is refused whole");
                return Ok(());
            }
            let records = read_bytes(&bytes, &options(InputFormat::Ndjson)).expect("opens");
            prop_assert_eq!(records.len(), expected.len());
            for (record, (line, object)) in records.iter().zip(&expected) {
                prop_assert_eq!(record.line, *line);
                match object {
                    Some(object) => prop_assert_eq!(record.result.as_ref().ok(), Some(object)),
                    None => prop_assert!(record.result.is_err(), "line {} read", line),
                }
            }
        }

        #[test]
        fn json_array_elements_come_back_with_their_lines(
            elements in prop::collection::vec((json_object(), "[ \n\r\t]{0,3}", "[ \n]{0,2}"), 0..12),
            pretty in any::<bool>(),
        ) {
            let mut text = String::from("[");
            let mut expected = Vec::new();
            for (index, (object, before, after)) in elements.iter().enumerate() {
                text.push_str(before);
                let line = 1 + text.matches('\n').count() as u64;
                let body = if pretty {
                    serde_json::to_string_pretty(object)
                } else {
                    serde_json::to_string(object)
                };
                text.push_str(&body.expect("json"));
                text.push_str(after);
                if index + 1 < elements.len() {
                    text.push(',');
                }
                expected.push((line, object.clone()));
            }
            text.push(']');
            let records = read_bytes(text.as_bytes(), &options(InputFormat::Json)).expect("opens");
            let got: Vec<(u64, Map<String, Value>)> = records
                .into_iter()
                .map(|record| (record.line, record.result.expect("a good element")))
                .collect();
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn csv_splitter_agrees_with_the_csv_crate(bytes in prop::collection::vec(
            prop::sample::select(b"a,\"\r\n".to_vec()), 0..60)
        ) {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(&bytes[..]);
            let whole: Vec<ByteRecord> =
                reader.byte_records().collect::<Result<_, _>>().expect("in memory");
            prop_assert_eq!(split_rows(&bytes), whole);
        }

        #[test]
        fn no_input_makes_any_reader_panic(
            bytes in tricky_bytes(),
            zipped in any::<bool>(),
            cap in prop_oneof![Just(0usize), 1usize..64],
        ) {
            let bytes = if zipped { gzip(&bytes) } else { bytes };
            for format in [InputFormat::Auto, InputFormat::Ndjson, InputFormat::Csv, InputFormat::Json] {
                for unescape_formulas in [false, true] {
                    let options = ReadOptions { format, unescape_formulas, max_record_bytes: cap };
                    let Some(records) = read_bytes(&bytes, &options) else { continue };
                    let mut previous = 0;
                    for record in &records {
                        prop_assert!(record.line >= 1 && record.line >= previous);
                        previous = record.line;
                        if let Err(error) = &record.result
                            && let Some(raw) = &error.raw
                        {
                            prop_assert!(raw.len() <= options.cap());
                        }
                    }
                }
            }
        }
    }
}
