//! TEMPORARY STUB: replaced by the record readers.
use serde_json::{Map, Value};
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputFormat { #[default] Auto, Ndjson, Csv, Json }
#[derive(Debug, Clone, Default)]
pub struct ReadOptions { pub format: InputFormat, pub unescape_formulas: bool, pub max_record_bytes: usize }
#[derive(Debug)]
pub struct Record { pub line: u64, pub result: Result<Map<String, Value>, RecordError> }
#[derive(Debug, Clone, PartialEq)]
pub struct RecordError { pub code: &'static str, pub field: Option<String>, pub message: String, pub raw: Option<String> }
#[derive(Debug, thiserror::Error)]
pub enum InputError { #[error("cannot read {0}")] Io(String) }
pub fn open(path: &std::path::Path, _options: &ReadOptions) -> Result<(InputFormat, Box<dyn Iterator<Item = Record> + Send>), InputError> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).map_err(|e| InputError::Io(e.to_string()))?;
    let lines: Vec<String> = std::io::BufReader::new(file).lines().map_while(Result::ok).collect();
    let records = lines.into_iter().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, l)| Record {
        line: i as u64 + 1,
        result: serde_json::from_str(&l).map_err(|e| RecordError { code: "invalid_json", field: None, message: e.to_string(), raw: Some(l.clone()) }),
    });
    Ok((InputFormat::Ndjson, Box::new(records)))
}
