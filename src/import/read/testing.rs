//! What the reader's unit tests share: inputs written to temp files, and records taken apart.

use std::io::Write;
use std::path::PathBuf;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::*;

pub(super) const MIB: usize = 1024 * 1024;

pub(super) fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write the input");
    path
}

pub(super) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

pub(super) fn options(format: InputFormat) -> ReadOptions {
    ReadOptions {
        format,
        ..ReadOptions::default()
    }
}

pub(super) fn read_path(path: &Path, options: &ReadOptions) -> (InputFormat, Vec<Record>) {
    let (format, records) = open(path, options).expect("the input opens");
    (format, records.collect())
}

/// Reads bytes from a file of that name; the records as (line, result).
pub(super) fn read_named(
    name: &str,
    bytes: &[u8],
    options: &ReadOptions,
) -> (InputFormat, Vec<Record>) {
    let dir = tempfile::tempdir().expect("temp dir");
    read_path(&write(&dir, name, bytes), options)
}

pub(super) fn read(name: &str, bytes: &[u8]) -> Vec<Record> {
    read_named(name, bytes, &ReadOptions::default()).1
}

pub(super) fn open_error(name: &str, bytes: &[u8], options: &ReadOptions) -> InputError {
    let dir = tempfile::tempdir().expect("temp dir");
    match open(&write(&dir, name, bytes), options) {
        Ok((format, _)) => panic!("{name} opened as {format}"),
        Err(error) => error,
    }
}

pub(super) fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(object) => object,
        other => panic!("not an object: {other}"),
    }
}

/// (line, the object) for a good record; panics on an error.
pub(super) fn ok(record: &Record) -> (u64, &Map<String, Value>) {
    match &record.result {
        Ok(object) => (record.line, object),
        Err(error) => panic!("line {}: {error}", record.line),
    }
}

/// (line, the error) for a bad record; panics on a good one.
pub(super) fn err(record: &Record) -> (u64, &RecordError) {
    match &record.result {
        Err(error) => (record.line, error),
        Ok(object) => panic!("line {} read: {object:?}", record.line),
    }
}

pub(super) fn lines(records: &[Record]) -> Vec<u64> {
    records.iter().map(|record| record.line).collect()
}

pub(super) fn source(bytes: Vec<u8>) -> Source {
    Box::new(Cursor::new(bytes))
}

/// A file of one line of `size` bytes (an object with one long string), then `{"b":1}`.
pub(super) fn giant_line(size: usize, line_end: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(size + 32);
    bytes.extend_from_slice(b"{\"a\":\"");
    bytes.resize(size - 2, b'x');
    bytes.extend_from_slice(b"\"}");
    bytes.extend_from_slice(line_end);
    bytes.extend_from_slice(b"{\"b\":1}\n");
    bytes
}
