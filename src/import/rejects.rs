//! The rejects file: every rejected record, as it was read plus an `_error` object saying why,
//! in NDJSON that `import` reads back as it is once fixed.
//!
//! Each entry is durable (fsynced) before the ledger counts its record, and the ledger keeps
//! the file's length after it; a resumed run cuts the file back to that length, so a record is
//! never listed twice. A password never reaches the file, nor does a password hash.

use std::io::{Seek, Write};
use std::path::Path;
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::apply::{Reason, error_object};
use super::plan::Passwords;
use super::read::Record;
use crate::hashes;
use crate::state::{open_private, private_options};
use crate::warnings::ByCode;

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

/// The codes of the first `len` bytes of the rejects file at `path` (what an earlier run of a
/// resumed import rejected, as the ledger vouches for it), for the summary. An entry whose
/// `_error` cannot be read counts as `unknown`.
pub(super) fn codes(path: &Path, len: u64) -> std::io::Result<ByCode> {
    ByCode::of_file(path, len, |line| {
        if line.trim().is_empty() {
            return None;
        }
        let entry: Value = serde_json::from_str(line).unwrap_or_default();
        let error = &entry["_error"];
        let text = |key: &str, default: &str| error[key].as_str().unwrap_or(default).to_string();
        let at = error["line"].as_u64().unwrap_or_default();
        Some((text("code", "unknown"), at, text("message", "")))
    })
}

/// One rejects-file entry: the original record plus `_error` (`_raw` holds the text of a
/// record that could not be read as an object). A password never reaches a file: the entry
/// keeps the record without it, and the text of an unreadable record (which may hold one) is
/// left out. Nor does a password hash (`password_hash`, `custom_password_hash`): the entry
/// keeps the record without it, says so in `_error` (`hash_removed`, and the message says how
/// to give it back: `--password-hashes`), and leaves out the text of an unreadable record that
/// may spell one.
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
    let removed: Vec<&str> = hashes::FIELDS
        .into_iter()
        .filter(|field| entry.get(*field).is_some_and(|v| !v.is_null()))
        .collect();
    for field in &removed {
        entry.shift_remove(*field);
    }
    if !removed.is_empty() {
        let error = &mut entry["_error"];
        error["hash_removed"] = true.into();
        let message = format!(
            "{} (the record's `{}` is left out of this file, as a credential: to import the \
             record with it, give it with --password-hashes FILE, one {{\"user_id\" or \
             \"email\": ..., \"custom_password_hash\" or \"password_hash\": ...}} a line)",
            error["message"].as_str().unwrap_or_default(),
            removed.join("` and `"),
        );
        error["message"] = message.into();
    }
    if entry
        .get("_raw")
        .and_then(Value::as_str)
        .is_some_and(may_hold_hash)
    {
        entry.shift_remove("_raw");
        entry["_error"]["raw_omitted"] = true.into();
    }
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

/// Whether the text of an unreadable record may hold a password hash: it names a hash field,
/// or has a `\u00XX` escape of an ASCII character, which could spell one.
fn may_hold_hash(raw: &str) -> bool {
    raw.contains("password_hash")
        || raw.match_indices("\\u00").any(|(at, _)| {
            raw.as_bytes()
                .get(at + 4)
                .is_some_and(|b| (b'0'..=b'7').contains(b))
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::import::apply::Applied;
    use crate::import::read::RecordError;

    const SALT: &str = "SALTVALUE-never-in-a-file";

    fn reason() -> Reason {
        Applied::rejected("needs_job_engine", "run with --engine job", None)
            .reason
            .expect("a reason")
    }

    #[test]
    fn a_hash_never_reaches_the_rejects_file_and_the_entry_says_how_to_give_it_back() {
        let original = json!({"user_id": "abc", "email": "a@example.com",
            "custom_password_hash": {"algorithm": "md5", "hash": {"value": "00", "encoding": "hex"},
                                     "salt": {"value": SALT}}});
        let record = Record {
            line: 7,
            result: Ok(Map::new()),
        };
        let made = entry(Some(original), &record, &reason(), &Passwords::Random);
        assert!(!made.to_string().contains(SALT), "{made}");
        assert_eq!(
            made.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["user_id", "email", "_error"]
        );
        assert_eq!(made["_error"]["hash_removed"], true);
        let message = made["_error"]["message"].as_str().unwrap();
        assert!(message.starts_with("run with --engine job ("), "{message}");
        assert!(
            message.contains("`custom_password_hash` is left out"),
            "{message}"
        );
        assert!(message.contains("--password-hashes FILE"), "{message}");
        // A record whose hash field is null keeps it: there is nothing to hide.
        let original = json!({"user_id": "abc", "password_hash": null});
        let made = entry(Some(original), &record, &reason(), &Passwords::Random);
        assert_eq!(made["password_hash"], Value::Null);
        assert!(made["_error"].get("hash_removed").is_none());
    }

    #[test]
    fn the_text_of_an_unreadable_record_that_may_spell_a_hash_is_left_out() {
        let unreadable = |raw: &str| Record {
            line: 3,
            result: Err(RecordError {
                code: "invalid_json",
                field: None,
                message: "not JSON".into(),
                raw: Some(raw.into()),
            }),
        };
        for raw in [
            format!(r#"{{"user_id": "x", "password_hash": "{SALT}", "#),
            format!(r#"{{"user_id": "x", "custom_\u0070assword_hash": {{"v": "{SALT}"}}"#),
        ] {
            let made = entry(None, &unreadable(&raw), &reason(), &Passwords::Random);
            assert!(!made.to_string().contains(SALT), "{made}");
            assert_eq!(made["_error"]["raw_omitted"], true);
        }
        // Other text is kept for fixing, escapes of other characters too.
        let raw = r#"{"user_id": "x", "name": "\u00e9l\u00e8ne", "#;
        let made = entry(None, &unreadable(raw), &reason(), &Passwords::Random);
        assert_eq!(made["_raw"], raw);
    }
}
