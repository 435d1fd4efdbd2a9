//! NDJSON records: one object a line; blank lines are not records.

use std::io::{self, BufRead};

use super::capture::{Capture, fill};
use super::json::{Origin, parse_object};
use super::sniff::is_blank;
use super::{Record, Source, read_error};

/// NDJSON records: one object a line.
pub(super) struct NdjsonRecords {
    source: Source,
    /// Lines read so far.
    line: u64,
    capture: Capture,
    cap: usize,
    done: bool,
}

impl NdjsonRecords {
    pub(super) fn new(source: Source, cap: usize) -> NdjsonRecords {
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
    pub(super) fn read_line(&mut self) -> io::Result<Option<bool>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::read::testing::*;
    use crate::import::read::*;
    use crate::rules::MAX_JSON_DEPTH;
    use serde_json::json;

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
}
