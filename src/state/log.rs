//! Append-only NDJSON logs in the run state (the import ledger, the jobs journal): read back
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
        let mut reader = BufReader::new(file);
        let mut line = Vec::new();
        for number in 1.. {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || !line.ends_with(b"\n") {
                break;
            }
            let entry = serde_json::from_slice::<T>(&line).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("line {number} is not {what} ({e})"),
                )
            })?;
            good_len += n as u64;
            each(entry);
        }
    }
    let file = open_private(private_options().create(true).append(true), path)?;
    // Drop a torn tail so new entries start on a fresh line.
    file.set_len(good_len)?;
    Ok((file, good_len))
}
