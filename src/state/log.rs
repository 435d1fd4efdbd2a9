//! Append-only NDJSON logs in the run state (the import ledger, the jobs journal, the deletion
//! ledger and its before-images): read back
//! entry by entry, a torn last line (a crash mid-write) dropped, a damaged whole line refused.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::de::DeserializeOwned;

use super::{open_private, private_options};

/// Reads every entry of the log at `path` (none when it does not exist) into `each`, then
/// opens it (`0600`) for appending after its last whole line; returns the file and that length.
/// A whole line that is not a `T` was damaged outside a run: `InvalidData` naming the line and
/// `what` the entries are, rather than forget what follows it.
pub fn open_log<T: DeserializeOwned>(
    path: &Path,
    what: &str,
    mut each: impl FnMut(T),
) -> std::io::Result<(File, u64)> {
    let mut good_len = 0u64;
    if let Ok(file) = File::open(path) {
        let mut number = 0;
        good_len = whole_lines(BufReader::new(file), |line| {
            number += 1;
            let entry = serde_json::from_slice::<T>(line).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("line {number} is not {what} ({e})"),
                )
            })?;
            each(entry);
            Ok(())
        })?;
    }
    let file = open_private(private_options().create(true).append(true), path)?;
    // Drop a torn tail so new entries start on a fresh line.
    file.set_len(good_len)?;
    Ok((file, good_len))
}

/// Hands each whole line `reader` holds (with its `\n`) to `each`, stopping at a torn last
/// line (no `\n`: a crash mid-write); returns the length of the whole lines. An error of
/// `each` stops the reading and is returned.
pub fn whole_lines(
    mut reader: impl BufRead,
    mut each: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    let mut good_len = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || !line.ends_with(b"\n") {
            return Ok(good_len);
        }
        each(&line)?;
        good_len += n as u64;
    }
}
