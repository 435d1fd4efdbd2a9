//! JSON-array records: a scanner follows strings, escapes and bracket depth and cuts the text
//! at each top-level `,`, so the array is never loaded whole and one bad element is its own
//! error.

use std::io::{self, BufRead};

use super::capture::{Capture, fill};
use super::json::{Origin, parse_object};
use super::sniff::is_blank;
use super::{InputError, Record, RecordError, Source, code, read_error};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ArrayState {
    /// Before an element: just after `[` or after a `,`.
    Element,
    /// After the closing `]`: only blank text may follow.
    Closed,
    Done,
}

/// How an element's text ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ElementEnd {
    Comma,
    Close,
    /// The input ended; `inside` when inside a string or brackets.
    Eof {
        inside: bool,
    },
}

/// The elements of a JSON array, cut at top-level commas by a scanner that follows strings,
/// escapes and bracket depth.
pub(super) struct JsonArrayRecords {
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
    pub(super) fn open(
        source: Source,
        cap: usize,
        input: &str,
    ) -> Result<JsonArrayRecords, InputError> {
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
    pub(super) fn advance(&mut self, n: usize) {
        self.source.consume(n);
        self.column += n as u64;
    }

    /// Skips blank text; returns the next byte without consuming it, `None` at the end.
    pub(super) fn skip_blank(&mut self) -> io::Result<Option<u8>> {
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
    pub(super) fn scan_element(&mut self) -> io::Result<ElementEnd> {
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

    pub(super) fn element(&mut self) -> Option<Record> {
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
    pub(super) fn closed(&mut self) -> Option<Record> {
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
pub(super) fn show_byte(byte: u8) -> String {
    if byte.is_ascii_graphic() {
        format!("`{}`", byte as char)
    } else {
        format!("the byte 0x{byte:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::read::testing::*;
    use crate::import::read::*;
    use serde_json::json;

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
}
