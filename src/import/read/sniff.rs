//! Telling the format before reading: the name's hint, the first bytes that are not blank,
//! and whether the content contradicts the format its name or `--format` chose.

use std::io::{self, Read};
use std::path::Path;

use serde_json::{Map, Value};

use super::InputFormat;

pub(super) const BOM: &[u8] = b"\xEF\xBB\xBF";
/// How much leading blank text `open` reads to find the first byte that is not blank.
pub(super) const SNIFF_LIMIT: usize = 64 * 1024;

/// JSON whitespace: what a blank line or the space between JSON tokens is made of.
pub(super) fn is_blank(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NamedFormat {
    Ndjson,
    Csv,
    /// `.json`: a JSON array, or NDJSON from Auth0's export job.
    Json,
    Unknown,
}

/// What the file name says.
pub(super) struct NameHint {
    pub(super) gzip: bool,
    pub(super) format: NamedFormat,
}

impl NameHint {
    pub(super) fn of(path: &Path) -> NameHint {
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

/// Reads the start of the text: up to the end of the second line that is not blank (after a
/// BOM), the end of the input, or [`SNIFF_LIMIT`] bytes. That line decides the format under
/// `Auto` and is checked against a format chosen by name ([`Content`]).
pub(super) fn read_prefix(reader: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut prefix = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let body = if prefix.starts_with(BOM) {
            &prefix[BOM.len()..]
        } else {
            &prefix[..]
        };
        let settled = prefix.len() >= BOM.len() || !BOM.starts_with(&prefix);
        // Two lines that are not blank, whole: the first decides, the second tells a CSV
        // header from a broken first NDJSON record (see `Content::of`).
        let line_read = whole_lines(body) >= 2;
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

/// How many lines that are not blank `body` holds whole (ended by `\n`).
fn whole_lines(body: &[u8]) -> usize {
    let Some(last) = body.iter().rposition(|byte| *byte == b'\n') else {
        return 0;
    };
    body[..last]
        .split(|byte| *byte == b'\n')
        .filter(|line| line.iter().any(|byte| !is_blank(*byte)))
        .count()
}

/// The line of the text's first `{` when nothing else is on that line: the start of one JSON
/// object spread over many lines (pretty-printed), which NDJSON would read as one broken record
/// a line. No NDJSON record is a lone `{`. `None` when the prefix does not reach the line's end.
pub(super) fn spread_object(prefix: &[u8]) -> Option<u64> {
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
pub(super) enum Content {
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
    pub(super) const SHOWN: usize = 60;

    pub(super) fn of(prefix: &[u8]) -> Content {
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
                // A JSON object on the next line: NDJSON whose first record is broken (the
                // reader rejects that line), not a CSV header over rows. A lone word with no
                // line after it is too little to call CSV either.
                Some(header) if !looks_like_csv(header, &rest[text.len()..]) => Content::Other,
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

/// Whether a line that reads as a header (`header`) is one, given what follows it (`rest`):
/// CSV when the next line that is not blank is not a JSON object, or, with no next line, when
/// the header has more than one column.
fn looks_like_csv(header: &str, rest: &[u8]) -> bool {
    match rest.iter().find(|byte| !is_blank(**byte)) {
        Some(next) => *next != b'{',
        None => header.contains(','),
    }
}

/// The line as a CSV header, when it reads as one: UTF-8 text that is not JSON, holds none of
/// JSON's brackets and no `":` (a JSON key), and is either comma-separated or one plain column
/// name. Cautious on purpose: a broken NDJSON line must stay a record the reader rejects, not
/// turn the whole file into "CSV".
pub(super) fn csv_header(line: &[u8]) -> Option<&str> {
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
pub(super) struct Mismatch {
    pub(super) looks: String,
    pub(super) format: &'static str,
}

/// The mismatch between a format chosen by name or `--format` (CSV or NDJSON) and the content,
/// if there is one. Blank content is no records in either format, never a mismatch.
pub(super) fn content_mismatch(format: InputFormat, content: &Content) -> Option<Mismatch> {
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

/// The format to read: the one chosen (`--format`), else the name's, else the first byte that
/// is not blank decides (see the module docs of `read`).
pub(super) fn decide(chosen: InputFormat, named: NamedFormat, first: Option<u8>) -> InputFormat {
    match (chosen, named) {
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
    }
}
