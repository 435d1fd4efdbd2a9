//! One JSON record's text (an NDJSON line, an array element) becomes an object, or an error
//! whose positions are in the file's numbering.

use serde_json::{Map, Value};

use super::dupkey::find_duplicate_key;
use super::{RecordError, code};
use crate::rules::MAX_JSON_DEPTH;

/// Where a record's text starts in the input, to give positions in the file's numbering.
#[derive(Clone, Copy, Debug)]
pub(super) struct Origin {
    pub(super) line: u64,
    pub(super) column: u64,
}

impl Origin {
    /// The file position of a position inside the record (both 1-based).
    pub(super) fn at(self, line: u64, column: u64) -> (u64, u64) {
        if line <= 1 {
            (self.line, self.column + column.saturating_sub(1))
        } else {
            (self.line + line - 1, column)
        }
    }

    /// The file position of a byte offset inside the record.
    pub(super) fn at_offset(self, bytes: &[u8], offset: usize) -> (u64, u64) {
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
pub(super) fn parse_object(
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
pub(super) fn json_error_message(error: &serde_json::Error, origin: Origin) -> String {
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

pub(super) use crate::format::csv::describe_value as describe;
