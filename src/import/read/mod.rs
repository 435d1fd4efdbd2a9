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
//!   and the cells follow [`crate::format::csv`]; [`CsvDecoder`](crate::format::csv::CsvDecoder) turns each row into a user.
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
//! | `csv_row` | A CSV row has more or fewer cells than the header, a cell is not what its column needs (from [`CsvDecoder`](crate::format::csv::CsvDecoder); `field` is the column), or a quoted cell is never closed. |
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
//!
//! # Layout
//!
//! This file holds what callers see ([`open`], [`Record`], the errors) and the opening: gzip,
//! the BOM, the format. Then one file per concern: `sniff` (the name's hint and the first
//! bytes), `ndjson`, `csv` and `json_array` (one record iterator per format), and what they
//! share: `capture` (a record's bytes, bounded), `json` (a record's text to an object) and
//! `dupkey` (a key one object holds twice).

mod capture;
mod csv;
mod dupkey;
mod json;
mod json_array;
mod ndjson;
mod sniff;
#[cfg(test)]
mod testing;

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::read::MultiGzDecoder;
use serde_json::{Map, Value};

use crate::format::csv::CsvFieldError;

use capture::capped_text;
use csv::CsvRecords;
use json_array::JsonArrayRecords;
use ndjson::NdjsonRecords;
use sniff::{
    BOM, Content, NameHint, NamedFormat, content_mismatch, decide, is_blank, read_prefix,
    spread_object,
};

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
    open_counting(path, options, None)
}

/// As [`open`], adding every byte read from the file (before any decompression) to `counted`
/// when given: how far into the file the reader is, for the progress bar.
pub fn open_counting(
    path: &Path,
    options: &ReadOptions,
    counted: Option<Arc<AtomicU64>>,
) -> Result<(InputFormat, Box<dyn Iterator<Item = Record> + Send>), InputError> {
    let input = if path == Path::new("-") {
        STDIN.to_owned()
    } else {
        path.display().to_string()
    };
    let raw: Box<dyn Read + Send> = if path == Path::new("-") {
        Box::new(io::stdin())
    } else {
        let file = File::open(path).map_err(|source| InputError::Open {
            input: input.clone(),
            source,
        })?;
        match counted {
            Some(counted) => Box::new(Counting {
                inner: file,
                counted,
            }),
            None => Box::new(file),
        }
    };
    read_from(raw, input, NameHint::of(path), options)
}

/// A reader that adds the bytes it reads to a shared counter.
struct Counting<R> {
    inner: R,
    counted: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counted.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The path of a key that one object in the JSON `text` holds twice (serde would keep the
/// last value silently), for other JSON the import reads (`--password-hashes`).
pub(crate) fn duplicate_key(text: &str) -> Option<String> {
    dupkey::find_duplicate_key(text).map(|found| found.path)
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

    let format = decide(options.format, name.format, first);
    check_agrees(&input, options.format, name.format, format, &content)?;
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

/// Refuses content that contradicts the format its name or `--format` chose without looking.
fn check_agrees(
    input: &str,
    chosen: InputFormat,
    named: NamedFormat,
    format: InputFormat,
    content: &Content,
) -> Result<(), InputError> {
    let chosen_by = if chosen != InputFormat::Auto {
        Some(format!("--format {}", chosen))
    } else if matches!(named, NamedFormat::Ndjson | NamedFormat::Csv) {
        Some("its name".to_owned())
    } else {
        None
    };
    if let Some(chosen_by) = chosen_by
        && let Some(found) = content_mismatch(format, content)
    {
        let fix = if chosen == InputFormat::Auto {
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
                input.to_owned()
            },
            found: found.looks,
            expected: match format {
                InputFormat::Csv => "CSV",
                _ => "NDJSON",
            },
            fix,
        });
    }
    Ok(())
}

/// The decoded text, buffered.
type Source = Box<dyn BufRead + Send>;

/// The read buffer; records longer than this are gathered across reads.
const READ_BUFFER: usize = 64 * 1024;

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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use ::csv::ByteRecord;
    use proptest::prelude::*;
    use serde_json::json;

    use super::csv::{CsvSplitter, parse_row};
    use super::sniff::SNIFF_LIMIT;
    use super::testing::*;
    use super::*;

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
        let cases: [(&[u8], Content); 14] = [
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
                b"email\r\na@example.com\n",
                Content::CsvHeader {
                    line: 1,
                    text: "email".into(),
                },
            ),
            // One word and nothing after it: too little to call CSV.
            (b"s2c", Content::Other),
            // Broken NDJSON lines and JSON values stay records the reader rejects.
            (b"\"user_id\": \"a\", \"email\": \"b\"}\n", Content::Other),
            (b"42\n", Content::Other),
            // A first line cut to a word, over JSON records: a broken record, not a header
            // (found by the long mutation run).
            (b"s2c\n{\"a\":1}\n", Content::Other),
            (b"s2c\r\n\n  {\"a\":1}\n", Content::Other),
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
            let mut reader = ::csv::ReaderBuilder::new()
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
