//! Per-record problems, counted by code and logged without flooding: the first few records of
//! each code get their warning line, the rest are counted, and the summary says how many more
//! there were and where they are (the rejects file).
//!
//! [`ByCode`] is what a summary keeps (every run of a resumed job included): a count per code
//! with the first example, in `--json` as `{"<code>": {"count": N, "example": {"line": L,
//! "message": "..."}}}`. [`Warnings`] decides which records of a run get a line.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Read};
use std::path::Path;
use std::sync::Mutex;

use indicatif::HumanCount;
use serde::Serialize;

/// The records of one code whose warning is logged, per run; the rest are counted.
pub const LOGGED_PER_CODE: u64 = 5;

/// Problems by code, each with a count and its first example.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct ByCode(BTreeMap<String, CodeCount>);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodeCount {
    pub count: u64,
    /// The first record of the code seen (the lowest line, once a resumed run adds its own).
    pub example: Example,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Example {
    pub line: u64,
    pub message: String,
}

impl ByCode {
    /// Counts one record of `code`, at `line`, saying `message`.
    pub fn add(&mut self, code: &str, line: u64, message: &str) {
        match self.0.get_mut(code) {
            Some(entry) => {
                entry.count += 1;
                if line < entry.example.line {
                    entry.example = Example {
                        line,
                        message: message.to_owned(),
                    };
                }
            }
            None => {
                let example = Example {
                    line,
                    message: message.to_owned(),
                };
                self.0
                    .insert(code.to_owned(), CodeCount { count: 1, example });
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().map(|c| c.count).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, code: &str) -> Option<&CodeCount> {
        self.0.get(code)
    }

    /// In words, most frequent first: `Rejected 3,000: missing_password 3,000 (line 1: the
    /// record has no password).` `None` when there is nothing.
    pub fn line(&self, what: &str) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let mut codes: Vec<(&String, &CodeCount)> = self.0.iter().collect();
        codes.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
        let parts: Vec<String> = codes
            .into_iter()
            .map(|(code, c)| {
                format!(
                    "{code} {} (line {}: {})",
                    HumanCount(c.count),
                    c.example.line,
                    c.example.message
                )
            })
            .collect();
        Some(format!(
            "{what} {}: {}.",
            HumanCount(self.total()),
            parts.join("; ")
        ))
    }

    /// The entries of the first `len` bytes of the rejects file at `path` (what the runs
    /// before a resumed one rejected, as its ledger vouches for it), by code; none when there
    /// is no file. `entry` reads a line's code, line and message (`None`: a line that is no
    /// entry).
    pub fn of_file(
        path: &Path,
        len: u64,
        entry: impl Fn(&str) -> Option<(String, u64, String)>,
    ) -> std::io::Result<ByCode> {
        let mut by_code = ByCode::default();
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(by_code),
            Err(e) => return Err(e),
        };
        for line in std::io::BufReader::new(file.take(len)).lines() {
            if let Some((code, at, message)) = entry(&line?) {
                by_code.add(&code, at, &message);
            }
        }
        Ok(by_code)
    }
}

/// Which records of a run get a warning line: the first [`LOGGED_PER_CODE`] of each code.
#[derive(Debug, Default)]
pub struct Warnings(Mutex<HashMap<String, u64>>);

impl Warnings {
    /// Counts a record of `code`; true when its warning is to be logged.
    pub fn log(&self, code: &str) -> bool {
        let mut seen = self.0.lock().expect("warnings lock");
        let n = match seen.get_mut(code) {
            Some(n) => n,
            None => seen.entry(code.to_owned()).or_default(),
        };
        *n += 1;
        *n <= LOGGED_PER_CODE
    }

    /// The codes with records not logged, and how many, by code.
    pub fn unlogged(&self) -> BTreeMap<String, u64> {
        self.0
            .lock()
            .expect("warnings lock")
            .iter()
            .filter(|(_, n)| **n > LOGGED_PER_CODE)
            .map(|(code, n)| (code.clone(), n - LOGGED_PER_CODE))
            .collect()
    }
}

/// A summary's lines for a run's problems: `what` (`Rejected`) by code, then the rejects and
/// the skips whose warning was left out of the log (`see`: where the rejects are).
pub fn problem_lines(
    what: &str,
    by_code: &ByCode,
    unlogged_rejects: &BTreeMap<String, u64>,
    unlogged_skips: &BTreeMap<String, u64>,
    see: &str,
) -> Vec<String> {
    let mut lines: Vec<String> = by_code.line(what).into_iter().collect();
    lines.extend(unlogged_lines(unlogged_rejects, see));
    lines.extend(unlogged_lines(unlogged_skips, "skipped; not logged"));
    lines
}

/// The summary's lines for warnings left out of the log: `missing_password: … and 2,995 more
/// like this (see the rejects file).`
pub fn unlogged_lines(unlogged: &BTreeMap<String, u64>, see: &str) -> Vec<String> {
    unlogged
        .iter()
        .map(|(code, n)| format!("{code}: … and {} more like this ({see}).", HumanCount(*n)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_five_of_each_code_are_logged_and_the_rest_counted() {
        let warnings = Warnings::default();
        let logged = (0..3_000)
            .filter(|_| warnings.log("missing_password"))
            .count();
        assert_eq!(logged, 5);
        assert!(warnings.log("invalid_email"));
        assert_eq!(
            warnings.unlogged(),
            BTreeMap::from([("missing_password".to_string(), 2_995)])
        );
        assert_eq!(
            unlogged_lines(&warnings.unlogged(), "see the rejects file"),
            ["missing_password: … and 2,995 more like this (see the rejects file)."]
        );
    }

    #[test]
    fn codes_are_counted_with_their_first_example_most_frequent_first() {
        let mut by_code = ByCode::default();
        by_code.add("invalid_email", 9, "not an email");
        by_code.add("missing_password", 4, "no password");
        by_code.add("missing_password", 2, "no password either");
        by_code.add("missing_password", 7, "no password");
        assert_eq!(by_code.total(), 4);
        let missing = by_code.get("missing_password").unwrap();
        assert_eq!((missing.count, missing.example.line), (3, 2));
        assert_eq!(
            by_code.line("Rejected").unwrap(),
            "Rejected 4: missing_password 3 (line 2: no password either); invalid_email 1 \
             (line 9: not an email)."
        );
        assert_eq!(
            serde_json::to_value(&by_code).unwrap()["invalid_email"],
            serde_json::json!({"count": 1, "example": {"line": 9, "message": "not an email"}})
        );
        assert_eq!(ByCode::default().line("Rejected"), None);
    }
}
