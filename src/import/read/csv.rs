//! CSV records: rows split by a small splitter that counts physical lines (a quoted cell may
//! hold line breaks), each row turned into a user by [`CsvDecoder`].

use std::io::{self, BufRead, Read};

use ::csv::{ByteRecord, StringRecord};
use serde_json::{Map, Value};

use super::capture::{Capture, fill};
use super::dupkey::find_duplicate_key;
use super::{InputError, READ_BUFFER, Record, RecordError, Source, code, read_error};
use crate::format::csv::{CsvDecoder, CsvFieldError};

/// Where the CSV splitter is inside a row; the same rules as the `csv` crate's defaults
/// (`,` delimiter, `"` quotes doubled inside quoted cells, CR, LF or CRLF ending a row).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CsvState {
    FieldStart,
    Unquoted,
    Quoted,
    /// A `"` inside a quoted cell: the end of the quotes, or the first of a doubled `""`.
    QuoteInQuoted,
}

/// One row as it is in the file (in the splitter's capture).
#[derive(Debug)]
pub(super) struct RawRow {
    line: u64,
    /// The input ended inside a quoted cell: the rest of the file became this row.
    unclosed_quote: bool,
}

/// Cuts CSV text into rows without the `csv` crate, so that a row over the cap is skipped
/// without being held, and so each row's first line is known.
pub(super) struct CsvSplitter {
    source: Source,
    /// The line of the next byte.
    line: u64,
    pub(super) capture: Capture,
}

impl CsvSplitter {
    pub(super) fn new(source: Source, cap: usize) -> CsvSplitter {
        CsvSplitter {
            source,
            line: 1,
            capture: Capture::new(cap),
        }
    }

    /// Reads the next row into the capture (without its line end). `None` at the end.
    pub(super) fn next_row(&mut self) -> io::Result<Option<RawRow>> {
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
pub(super) fn parse_row(bytes: &[u8]) -> ByteRecord {
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
pub(super) struct CsvRecords {
    splitter: CsvSplitter,
    decoder: CsvDecoder,
    header: Vec<String>,
    cap: usize,
    unescape_formulas: bool,
    done: bool,
    /// False when a column may hold password hashes: a row that cannot be read then keeps no
    /// text (`RecordError::raw`), so no hash reaches the rejects file.
    keeps_raw: bool,
}

impl CsvRecords {
    /// Reads and checks the header.
    pub(super) fn open(
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
            keeps_raw: !header.iter().any(|name| name.contains("password_hash")),
            header: header.iter().map(str::to_owned).collect(),
            cap,
            unescape_formulas,
            done: false,
        })
    }

    pub(super) fn decode(&self, row: &RawRow) -> Result<Map<String, Value>, RecordError> {
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
        let mut result = self.decode(&row);
        if let Err(error) = &mut result
            && !self.keeps_raw
            && error.raw.take().is_some()
        {
            error.message.push_str(
                " (the row's text is not kept in the rejects file: the input has password hash \
                 columns)",
            );
        }
        Some(Record {
            line: row.line,
            result,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::csv::{CsvShape, MetadataMode};
    use crate::import::read::testing::*;
    use crate::import::read::*;
    use serde_json::json;

    #[test]
    fn a_row_that_cannot_be_read_keeps_no_text_when_a_column_may_hold_a_hash() {
        let text = "email,password_hash\na@x,$2b$SECRET,extra\n";
        let records = read("users.csv", text.as_bytes());
        let (_, error) = err(&records[0]);
        assert_eq!(error.raw, None);
        assert!(
            error.message.contains("password hash columns"),
            "{}",
            error.message
        );
        // Without such a column the row's text is kept for fixing.
        let records = read("users.csv", b"email,name\na@x,Ann,extra\n");
        assert_eq!(err(&records[0]).1.raw.as_deref(), Some("a@x,Ann,extra"));
    }

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
            let mut writer = ::csv::Writer::from_writer(Vec::new());
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
}
