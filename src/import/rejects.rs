//! The rejects file: every rejected record, as it was read plus an `_error` object saying why,
//! in NDJSON that `import` reads back as it is once fixed.
//!
//! Each entry is durable (fsynced) before the ledger counts its record, and the ledger keeps
//! the file's length after it; a resumed run cuts the file back to that length, so a record is
//! never listed twice. A password never reaches the file.

use std::io::{Seek, Write};
use std::path::Path;
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::apply::{Reason, error_object};
use super::plan::Passwords;
use super::read::Record;
use crate::state::{open_private, private_options};

/// The open rejects file (nothing is written in a dry run).
pub(super) struct Rejects {
    file: Option<Mutex<(std::fs::File, u64)>>,
}

impl Rejects {
    /// Opens the file, empty, or cut to `resume_at` bytes when a run resumes.
    pub fn open(path: &Path, resume_at: Option<u64>, dry_run: bool) -> std::io::Result<Rejects> {
        if dry_run {
            return Ok(Rejects { file: None });
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = open_private(
            private_options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
            path,
        )?;
        let len = resume_at.unwrap_or(0);
        file.set_len(len)?;
        file.seek(std::io::SeekFrom::Start(len))?;
        Ok(Rejects {
            file: Some(Mutex::new((file, len))),
        })
    }

    /// Appends an entry; returns the file's new length.
    pub fn write(&self, entry: &Value) -> std::io::Result<u64> {
        let Some(file) = &self.file else { return Ok(0) };
        let mut bytes = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        let mut guard = file.lock().expect("rejects lock");
        guard.0.write_all(&bytes)?;
        guard.0.sync_data()?;
        guard.1 += bytes.len() as u64;
        Ok(guard.1)
    }
}

/// One rejects-file entry: the original record plus `_error` (`_raw` holds the text of a
/// record that could not be read as an object). A password never reaches a file: the entry
/// keeps the record without it, and the text of an unreadable record (which may hold one) is
/// left out.
pub(super) fn entry(
    original: Option<Value>,
    record: &Record,
    reason: &Reason,
    passwords: &Passwords,
) -> Value {
    let mut entry = match original {
        Some(Value::Object(map)) => map,
        _ => {
            let mut map = Map::new();
            if let Err(e) = &record.result
                && let Some(raw) = &e.raw
            {
                map.insert("_raw".into(), raw.clone().into());
            }
            map
        }
    };
    entry.insert("_error".into(), error_object(record.line, reason));
    let mut entry = Value::Object(entry);
    if let Passwords::Field(field) = passwords
        && let Some(object) = entry.as_object_mut()
    {
        if object.shift_remove(field).is_some() {
            entry["_error"]["password_removed"] = true.into();
        } else if object.shift_remove("_raw").is_some() {
            entry["_error"]["raw_omitted"] = true.into();
        }
    }
    entry
}
