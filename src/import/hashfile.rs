//! `--password-hashes FILE`: password hashes kept apart from the records (a legacy system's
//! export, often), merged into each record by its user's key, without holding the file in
//! memory.
//!
//! The file is NDJSON, one user a line: `{"user_id": …}` or `{"email": …}` with its
//! `custom_password_hash` or (bcrypt) `password_hash`. A record finds its line by its
//! `user_id` as the record gives it, with or without `auth0|` (`auth0|x` and `x` are one user),
//! and by its email, in any case. A record that both keys find on two different lines is
//! refused: two hashes for one user is a mistake to fix, not to guess at.
//!
//! # The index
//!
//! [`HashFile::build`] reads the file once, before any request, and refuses it whole at the
//! first bad line ([`HashFileError`]: not JSON, no key, both keys, no hash, a hash that breaks
//! Auth0's rules, a user on two lines), naming the file, the line and the field; the command
//! ends with exit 2 and nothing sent. Each good line becomes a 32-byte entry: a digest of its
//! key, where the line is in the file, its number and its length. The hashes themselves stay
//! in the file; the index holds nothing secret.
//!
//! Memory stays flat whatever the file's size: entries are sorted [`RUN`] at a time in memory
//! (2 MiB) and written out as sorted runs, then merged [`FAN_IN`] runs at a time until one
//! sorted file remains (an external merge sort). A user on two lines shows as two entries with
//! one digest, side by side, and the lines are read back to compare their keys (the digest is
//! only where to look: two users whose digests collide stay two users). A lookup is a binary
//! search with positioned reads (about 20 for a million lines, which the kernel's page cache
//! mostly answers), then the line is read back, its key compared and its hash checked again.
//! Measured (release build, bcrypt lines): a test process that indexes 100,000 lines peaks at
//! 11 MiB resident, and one that then indexes 1,000,000 still does; the million index in
//! 2.8 s, and a lookup takes about 15 µs.
//!
//! The files are anonymous (unlinked as they are made, 0600), in the run state directory when
//! it exists, else in the system's temporary directory: a crash leaves nothing behind, and a
//! resumed run builds the index again. The digest is keyed per run, so no file can be made to
//! put every key in one place.

use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::plan::User;
use super::seen::{anonymous, read_at, write_at};
use crate::hashes::{HashField, PasswordHash};

/// Entries sorted in memory at once (2 MiB of them).
const RUN: usize = 1 << 16;
/// Sorted runs merged at once; each is read through a buffer of [`CHUNK`] entries.
const FAN_IN: usize = 16;
/// Entries read at once from a run while merging (8 KiB).
const CHUNK: usize = 256;
/// The bytes of one entry: digest, offset, line number, length; little-endian `u64`s.
const ENTRY: u64 = 32;
/// The longest line the file may have. A hash line is well under a KiB.
const MAX_LINE: usize = 64 * 1024;

/// Why the hash file cannot be used: the first bad line (or the file itself). Never holds any
/// part of a hash.
#[derive(Debug, thiserror::Error)]
pub enum HashFileError {
    #[error("--password-hashes {path}: cannot read it: {source}")]
    Io { path: String, source: io::Error },
    #[error(
        "--password-hashes {path}, line {line}{}: {message}",
        field.as_deref().map(|f| format!(", field {f}")).unwrap_or_default()
    )]
    Line {
        path: String,
        line: u64,
        field: Option<String>,
        message: String,
    },
}

/// A hash the file gives for a record.
#[derive(Debug)]
pub(super) enum Found {
    None,
    /// The hash, and the file's line it is on.
    Hash(PasswordHash, u64),
    /// The record's user_id and its email find two different lines.
    Conflict {
        by_user_id: u64,
        by_email: u64,
    },
}

/// The hash file and its index (see the module docs).
pub(super) struct HashFile {
    path: PathBuf,
    file: File,
    index: File,
    entries: u64,
    hasher: RandomState,
}

/// One line's place in the file, under the digest of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    digest: u64,
    offset: u64,
    line: u64,
    len: u64,
}

impl Entry {
    fn encode(&self, out: &mut Vec<u8>) {
        for n in [self.digest, self.offset, self.line, self.len] {
            out.extend_from_slice(&n.to_le_bytes());
        }
    }

    fn decode(bytes: &[u8]) -> Entry {
        let n = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        Entry {
            digest: n(0),
            offset: n(1),
            line: n(2),
            len: n(3),
        }
    }
}

/// A user's key as the index holds it: the kind, then the text.
fn user_id_key(id: &str) -> Vec<u8> {
    let local = id.strip_prefix("auth0|").unwrap_or(id);
    [b"u:", local.as_bytes()].concat()
}

fn email_key(email: &str) -> Vec<u8> {
    [b"e:", email.to_lowercase().as_bytes()].concat()
}

/// A user_id as a record or a line gives it: a string, or a digits-only number (a CSV cell).
fn user_id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) if n.to_string().bytes().all(|b| b.is_ascii_digit()) => {
            Some(n.to_string())
        }
        _ => None,
    }
}

/// One line of the file, read and checked.
struct Line {
    key: Vec<u8>,
    hash: PasswordHash,
}

/// Reads one line's text: its key and its hash, or what is wrong (the field, the message).
fn parse_line(text: &[u8]) -> Result<Line, (Option<String>, String)> {
    let text = std::str::from_utf8(text).map_err(|_| (None, "is not UTF-8".to_string()))?;
    // The syntax error says where, never what: serde's messages for a value of the wrong
    // type quote it, so the object is checked by hand below.
    let value: Value = serde_json::from_str(text).map_err(|e| {
        (
            None,
            format!("is not JSON ({e}); each line is one JSON object"),
        )
    })?;
    if let Some(path) = super::read::duplicate_key(text) {
        return Err((
            Some(path),
            "appears twice in the line's object; keep one".into(),
        ));
    }
    let Value::Object(mut object) = value else {
        return Err((
            None,
            "is not a JSON object; each line is {\"user_id\" or \"email\": ..., \
             \"custom_password_hash\" or \"password_hash\": ...}"
                .into(),
        ));
    };
    let key = line_key(&object)?;
    object.shift_remove("user_id");
    object.shift_remove("email");
    if let Some(other) = object.keys().find(|k| HashField::from_name(k).is_none()) {
        let name = if other.len() <= 40 && other.bytes().all(|b| b.is_ascii_graphic()) {
            format!("`{other}`")
        } else {
            "a key".into()
        };
        return Err((
            None,
            format!(
                "has {name}, which a hash line does not take: a line holds the user's user_id \
                 or email, and custom_password_hash or password_hash"
            ),
        ));
    }
    let hash = PasswordHash::take(&mut object)
        .map_err(|e| (Some(e.field), e.message))?
        .ok_or((
            None,
            "has no custom_password_hash or password_hash; give the user's hash, or leave the \
             line out"
                .to_string(),
        ))?;
    Ok(Line { key, hash })
}

/// The line's key: its user_id or its email, exactly one of them.
fn line_key(object: &Map<String, Value>) -> Result<Vec<u8>, (Option<String>, String)> {
    match (object.get("user_id"), object.get("email")) {
        (Some(_), Some(_)) => Err((
            None,
            "has both a user_id and an email; name the user by one of them (a record is found \
             by either)"
                .into(),
        )),
        (Some(id), None) => user_id_text(id).map(|id| user_id_key(&id)).ok_or((
            Some("user_id".into()),
            "must be the user's id, a non-empty string".into(),
        )),
        (None, Some(Value::String(email))) if !email.is_empty() => Ok(email_key(email)),
        (None, Some(_)) => Err((
            Some("email".into()),
            "must be the user's email address, a non-empty string".into(),
        )),
        (None, None) => Err((
            None,
            "names no user; give its \"user_id\" or its \"email\"".into(),
        )),
    }
}

impl HashFile {
    /// Reads and checks the whole file, and builds its index in `dir` (the run state, when it
    /// exists; else the system's temporary directory).
    pub fn build(path: &Path, dir: Option<&Path>) -> Result<HashFile, HashFileError> {
        HashFile::build_sized(path, dir, RUN, FAN_IN)
    }

    /// As [`HashFile::build`], sorting `run` entries at a time and merging `fan_in` runs at a
    /// time (tests make both small, to sort in many runs and merge in several passes).
    fn build_sized(
        path: &Path,
        dir: Option<&Path>,
        run: usize,
        fan_in: usize,
    ) -> Result<HashFile, HashFileError> {
        let shown = path.display().to_string();
        let io_error = |source: io::Error| HashFileError::Io {
            path: shown.clone(),
            source,
        };
        let bad = |line: u64, field: Option<String>, message: String| HashFileError::Line {
            path: shown.clone(),
            line,
            field,
            message,
        };
        let file = File::open(path).map_err(io_error)?;
        if !file.metadata().map_err(io_error)?.is_file() {
            return Err(io_error(io::Error::other(
                "not a regular file (its lines are read back by their position while the \
                 import runs)",
            )));
        }
        let hasher = RandomState::new();
        let mut sorter = Sorter::new(dir, run, fan_in);
        let mut reader = BufReader::new(&file);
        let mut buffer = Vec::new();
        let (mut offset, mut number) = (0u64, 0u64);
        loop {
            buffer.clear();
            let read = (&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut buffer)
                .map_err(io_error)?;
            if read == 0 {
                break;
            }
            number += 1;
            let start = offset;
            offset += read as u64;
            if number == 1 && buffer.starts_with(&[0x1f, 0x8b]) {
                return Err(bad(
                    1,
                    None,
                    "the file is gzip; give it uncompressed (its lines are read back by their \
                     position)"
                        .into(),
                ));
            }
            if read > MAX_LINE && !buffer.ends_with(b"\n") {
                return Err(bad(
                    number,
                    None,
                    format!("is longer than {MAX_LINE} bytes; is this the hash file?"),
                ));
            }
            let (skip, text) = trimmed(&buffer, number == 1);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let parsed =
                parse_line(text).map_err(|(field, message)| bad(number, field, message))?;
            sorter
                .push(Entry {
                    digest: hasher.hash_one(&parsed.key),
                    offset: start + skip as u64,
                    line: number,
                    len: text.len() as u64,
                })
                .map_err(io_error)?;
        }
        let (index, entries) = sorter.finish().map_err(io_error)?;
        let hashes = HashFile {
            path: path.to_path_buf(),
            file,
            index,
            entries,
            hasher,
        };
        if let Some((first, second, key)) = hashes.first_duplicate().map_err(io_error)? {
            let who = String::from_utf8_lossy(&key[2..]).into_owned();
            let kind = if key.starts_with(b"u:") {
                "user_id"
            } else {
                "email"
            };
            return Err(bad(
                second,
                Some(kind.into()),
                format!(
                    "the user with {kind} {who} also has line {first}; give each user one hash \
                     (one line)"
                ),
            ));
        }
        tracing::info!(
            hashes = hashes.len(),
            file = %hashes.path.display(),
            "Indexed the password hashes."
        );
        Ok(hashes)
    }

    /// How many hashes the file holds.
    pub fn len(&self) -> u64 {
        self.entries
    }

    /// Where the file is, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The hash the file gives for `record`, by its user_id, then by its email. `Err` when the
    /// file or the index cannot be read, or the file changed since it was indexed.
    pub fn find(&self, record: &User) -> io::Result<Found> {
        let by_user_id = match record.get("user_id").and_then(user_id_text) {
            Some(id) => self.lookup(&user_id_key(&id))?,
            None => None,
        };
        let by_email = match record.get("email").and_then(Value::as_str) {
            Some(email) if !email.is_empty() => self.lookup(&email_key(email))?,
            _ => None,
        };
        Ok(match (by_user_id, by_email) {
            (Some((a, _)), Some((b, _))) if a != b => Found::Conflict {
                by_user_id: a,
                by_email: b,
            },
            (Some((line, hash)), _) | (None, Some((line, hash))) => Found::Hash(hash, line),
            (None, None) => Found::None,
        })
    }

    /// The line for `key` and its hash, if the file has one.
    fn lookup(&self, key: &[u8]) -> io::Result<Option<(u64, PasswordHash)>> {
        let digest = self.hasher.hash_one(key);
        // The first entry whose digest is not below `digest`.
        let (mut low, mut high) = (0, self.entries);
        while low < high {
            let middle = low + (high - low) / 2;
            if self.entry(middle)?.digest < digest {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        let mut at = low;
        while at < self.entries {
            let entry = self.entry(at)?;
            if entry.digest != digest {
                break;
            }
            let line = self.line(&entry)?;
            if line.key == key {
                return Ok(Some((entry.line, line.hash)));
            }
            at += 1;
        }
        Ok(None)
    }

    fn entry(&self, at: u64) -> io::Result<Entry> {
        let mut bytes = [0u8; ENTRY as usize];
        read_at(&self.index, &mut bytes, at * ENTRY)?;
        Ok(Entry::decode(&bytes))
    }

    /// The line an entry points at, read back and checked again.
    fn line(&self, entry: &Entry) -> io::Result<Line> {
        let mut text = vec![0u8; entry.len as usize];
        read_at(&self.file, &mut text, entry.offset)?;
        parse_line(&text).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "line {} changed since the import started; give the file as it was, and \
                     run again",
                    entry.line
                ),
            )
        })
    }

    /// The first two lines of one user, in the sorted index: (its first line, the other, the
    /// key).
    fn first_duplicate(&self) -> io::Result<Option<(u64, u64, Vec<u8>)>> {
        let mut chunk = vec![0u8; CHUNK * ENTRY as usize];
        // The entries of the digest at hand (almost always one).
        let mut group: Vec<Entry> = Vec::new();
        let mut at = 0;
        while at < self.entries {
            let n = (CHUNK as u64).min(self.entries - at);
            let bytes = &mut chunk[..(n * ENTRY) as usize];
            read_at(&self.index, bytes, at * ENTRY)?;
            for entry in bytes.chunks_exact(ENTRY as usize).map(Entry::decode) {
                if group.first().is_some_and(|g| g.digest != entry.digest) {
                    group.clear();
                }
                if !group.is_empty() {
                    let key = self.line(&entry)?.key;
                    for earlier in &group {
                        if self.line(earlier)?.key == key {
                            let (first, second) = if earlier.line < entry.line {
                                (earlier.line, entry.line)
                            } else {
                                (entry.line, earlier.line)
                            };
                            return Ok(Some((first, second, key)));
                        }
                    }
                }
                group.push(entry);
            }
            at += n;
        }
        Ok(None)
    }
}

/// The line without its end (`\n`, `\r\n`) and, on the first line, a UTF-8 byte order mark:
/// how many bytes were cut from the front, and the text.
fn trimmed(buffer: &[u8], first: bool) -> (usize, &[u8]) {
    let mut text = buffer;
    let mut skip = 0;
    if first && let Some(rest) = text.strip_prefix(b"\xef\xbb\xbf") {
        text = rest;
        skip = 3;
    }
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    (skip, text)
}

/// An external merge sort of entries: runs of [`RUN`] sorted in memory, merged [`FAN_IN`] at
/// a time into one sorted file.
struct Sorter<'a> {
    dir: Option<&'a Path>,
    run: usize,
    fan_in: usize,
    pending: Vec<Entry>,
    /// The file the runs are in, and each run's first entry and length.
    runs: Option<File>,
    spans: Vec<(u64, u64)>,
    written: u64,
}

impl<'a> Sorter<'a> {
    fn new(dir: Option<&'a Path>, run: usize, fan_in: usize) -> Sorter<'a> {
        assert!(run > 0 && fan_in > 1);
        Sorter {
            dir,
            run,
            fan_in,
            pending: Vec::new(),
            runs: None,
            spans: Vec::new(),
            written: 0,
        }
    }

    fn push(&mut self, entry: Entry) -> io::Result<()> {
        self.pending.push(entry);
        if self.pending.len() == self.run {
            self.flush()?;
        }
        Ok(())
    }

    /// Sorts the entries in memory and writes them out as one run.
    fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.pending.sort_unstable();
        if self.runs.is_none() {
            self.runs = Some(anonymous(self.dir)?);
        }
        let file = self.runs.as_ref().expect("made above");
        let mut bytes = Vec::with_capacity(self.pending.len() * ENTRY as usize);
        for entry in &self.pending {
            entry.encode(&mut bytes);
        }
        write_at(file, &bytes, self.written * ENTRY)?;
        self.spans.push((self.written, self.pending.len() as u64));
        self.written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// The one sorted file, and how many entries it holds.
    fn finish(mut self) -> io::Result<(File, u64)> {
        self.flush()?;
        let total = self.written;
        let Some(mut file) = self.runs.take() else {
            return Ok((anonymous(self.dir)?, 0));
        };
        let mut spans = std::mem::take(&mut self.spans);
        while spans.len() > 1 {
            let merged = anonymous(self.dir)?;
            let mut next = Vec::new();
            let mut at = 0;
            for group in spans.chunks(self.fan_in) {
                let len = merge(&file, group, &merged, at)?;
                next.push((at, len));
                at += len;
            }
            file = merged;
            spans = next;
        }
        Ok((file, total))
    }
}

/// Merges the sorted runs `spans` of `from` into `to` from entry `at` on; returns how many
/// entries it wrote.
fn merge(from: &File, spans: &[(u64, u64)], to: &File, at: u64) -> io::Result<u64> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    struct Cursor {
        next: u64,
        end: u64,
        buffer: Vec<Entry>,
        position: usize,
    }

    impl Cursor {
        /// The entry at hand, reading the next chunk when the buffer is used up.
        fn peek(&mut self, from: &File) -> io::Result<Option<Entry>> {
            if self.position == self.buffer.len() {
                if self.next == self.end {
                    return Ok(None);
                }
                let n = (CHUNK as u64).min(self.end - self.next);
                let mut bytes = vec![0u8; (n * ENTRY) as usize];
                read_at(from, &mut bytes, self.next * ENTRY)?;
                self.buffer = bytes
                    .chunks_exact(ENTRY as usize)
                    .map(Entry::decode)
                    .collect();
                self.position = 0;
                self.next += n;
            }
            Ok(Some(self.buffer[self.position]))
        }
    }

    let mut cursors: Vec<Cursor> = spans
        .iter()
        .map(|&(start, len)| Cursor {
            next: start,
            end: start + len,
            buffer: Vec::new(),
            position: 0,
        })
        .collect();
    let mut heap = BinaryHeap::new();
    for (i, cursor) in cursors.iter_mut().enumerate() {
        if let Some(entry) = cursor.peek(from)? {
            heap.push(Reverse((entry, i)));
        }
    }
    let mut out = Vec::with_capacity(CHUNK * ENTRY as usize);
    let mut written = 0u64;
    while let Some(Reverse((entry, i))) = heap.pop() {
        entry.encode(&mut out);
        if out.len() >= CHUNK * ENTRY as usize {
            write_at(to, &out, (at + written) * ENTRY)?;
            written += (out.len() as u64) / ENTRY;
            out.clear();
        }
        cursors[i].position += 1;
        if let Some(next) = cursors[i].peek(from)? {
            heap.push(Reverse((next, i)));
        }
    }
    write_at(to, &out, (at + written) * ENTRY)?;
    written += (out.len() as u64) / ENTRY;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SALT: &str = "SALTVALUE-of-the-hash-file";

    fn custom(n: u64) -> Value {
        json!({"algorithm": "sha256", "hash": {"value": format!("{n:064x}"), "encoding": "hex"},
               "salt": {"value": format!("{SALT}-{n}")}})
    }

    fn write(lines: &[String]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hashes.ndjson");
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        (dir, path)
    }

    fn record(value: Value) -> User {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    fn found(hashes: &HashFile, value: Value) -> Option<(u64, Value)> {
        match hashes.find(&record(value)).unwrap() {
            Found::Hash(hash, line) => Some((line, hash.into_value())),
            Found::None => None,
            Found::Conflict { .. } => panic!("a conflict"),
        }
    }

    #[test]
    fn every_user_is_found_whatever_the_runs_and_the_passes() {
        let lines: Vec<String> = (0..300)
            .map(|i| {
                json!({"user_id": format!("u{i}"), "custom_password_hash": custom(i)}).to_string()
            })
            .collect();
        let (dir, path) = write(&lines);
        for (run, fan_in) in [(1, 2), (2, 2), (7, 3), (300, 2), (1000, 16)] {
            let hashes = HashFile::build_sized(&path, Some(dir.path()), run, fan_in).unwrap();
            assert_eq!(hashes.len(), 300);
            for i in 0..300 {
                assert_eq!(
                    found(&hashes, json!({"user_id": format!("auth0|u{i}")})),
                    Some((i + 1, custom(i))),
                    "run {run}, fan-in {fan_in}"
                );
            }
        }
        let (_dir, empty) = write(&[]);
        let hashes = HashFile::build(&empty, None).unwrap();
        assert_eq!(hashes.len(), 0);
        assert_eq!(found(&hashes, json!({"user_id": "u1"})), None);
    }

    #[test]
    fn records_find_their_hash_by_user_id_with_or_without_auth0_or_by_email_in_any_case() {
        let lines = vec![
            json!({"user_id": "auth0|abc", "custom_password_hash": custom(1)}).to_string(),
            json!({"user_id": "def", "custom_password_hash": custom(2)}).to_string(),
            String::new(),
            json!({"email": "Ann@Example.com", "password_hash": "$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K"}).to_string() + "\r",
            json!({"user_id": 12345, "custom_password_hash": custom(3)}).to_string(),
        ];
        let (dir, path) = write(&lines);
        let hashes = HashFile::build(&path, Some(dir.path())).unwrap();
        assert_eq!(hashes.len(), 4);
        assert_eq!(
            found(&hashes, json!({"user_id": "abc"})),
            Some((1, custom(1)))
        );
        assert_eq!(
            found(&hashes, json!({"user_id": "auth0|abc"})),
            Some((1, custom(1)))
        );
        assert_eq!(
            found(&hashes, json!({"user_id": "auth0|def"})),
            Some((2, custom(2)))
        );
        assert_eq!(
            found(&hashes, json!({"user_id": "12345"})),
            Some((5, custom(3)))
        );
        assert_eq!(
            found(&hashes, json!({"user_id": 12345})),
            Some((5, custom(3)))
        );
        let (line, value) = found(&hashes, json!({"email": "ann@EXAMPLE.com"})).unwrap();
        assert_eq!((line, value.is_string()), (4, true));
        // By user_id first; a record whose user_id has no line is found by its email.
        assert_eq!(
            found(
                &hashes,
                json!({"user_id": "zzz", "email": "ann@example.com"})
            )
            .map(|f| f.0),
            Some(4)
        );
        assert_eq!(
            found(&hashes, json!({"user_id": "google-oauth2|abc"})),
            None
        );
        assert_eq!(found(&hashes, json!({"email": "bob@example.com"})), None);
        assert_eq!(found(&hashes, json!({"name": "no key"})), None);
        // Two lines for one record: a conflict, naming both.
        match hashes
            .find(&record(
                json!({"user_id": "abc", "email": "ANN@example.com"}),
            ))
            .unwrap()
        {
            Found::Conflict {
                by_user_id,
                by_email,
            } => assert_eq!((by_user_id, by_email), (1, 4)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_bad_line_refuses_the_file_naming_line_and_field_and_no_hash() {
        let good = |id: &str| json!({"user_id": id, "custom_password_hash": custom(9)}).to_string();
        let mut bad_salt = custom(7);
        bad_salt["salt"]["encoding"] = "ebcdic".into();
        // (the bad line, the field, words of the message)
        let cases: Vec<(String, Option<&str>, &str)> = vec![
            ("{\"user_id\": \"x\", ".into(), None, "is not JSON"),
            ("[1, 2]".into(), None, "not a JSON object"),
            (json!(format!("{SALT}-as-a-string")).to_string(), None, "not a JSON object"),
            (json!({"custom_password_hash": custom(1)}).to_string(), None, "names no user"),
            (json!({"user_id": "x", "email": "x@example.com", "custom_password_hash": custom(1)}).to_string(), None, "both a user_id and an email"),
            (json!({"user_id": "", "custom_password_hash": custom(1)}).to_string(), Some("user_id"), "non-empty"),
            (json!({"email": 3, "custom_password_hash": custom(1)}).to_string(), Some("email"), "non-empty"),
            (json!({"user_id": "x"}).to_string(), None, "has no custom_password_hash"),
            (json!({"user_id": "x", "custom_password_hash": custom(1), "name": "X"}).to_string(), None, "`name`"),
            (json!({"user_id": "x", "custom_password_hash": bad_salt}).to_string(), Some("custom_password_hash.salt.encoding"), "not one of"),
            (json!({"user_id": "x", "password_hash": format!("{SALT}-not-bcrypt")}).to_string(), Some("password_hash"), "bcrypt"),
            (r#"{"user_id": "x", "user_id": "y", "password_hash": "h"}"#.into(), Some("user_id"), "twice"),
            // The same user as line 1, spelt the other way.
            (json!({"user_id": "auth0|u1", "custom_password_hash": custom(1)}).to_string(), Some("user_id"), "u1 also has line 1"),
        ];
        for (text, field, words) in cases {
            let lines = vec![good("u1"), good("u2"), text.clone(), good("u3")];
            let (dir, path) = write(&lines);
            let Err(e) = HashFile::build(&path, Some(dir.path())) else {
                panic!("{text} was taken");
            };
            let HashFileError::Line {
                line,
                field: ref found,
                ref message,
                ..
            } = e
            else {
                panic!("{e}")
            };
            assert_eq!((line, found.as_deref()), (3, field), "{text}: {message}");
            let shown = e.to_string();
            assert!(shown.contains(words), "{text}: {shown}");
            assert!(
                shown.starts_with(&format!("--password-hashes {}, line 3", path.display())),
                "{shown}"
            );
            assert!(!shown.contains(SALT), "{shown}");
        }
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("hashes.ndjson.gz");
        std::fs::write(&gz, [0x1f, 0x8b, 8, 0]).unwrap();
        let e = HashFile::build(&gz, None).err().unwrap().to_string();
        assert!(e.contains("gzip"), "{e}");
        let e = HashFile::build(&dir.path().join("missing"), None)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("cannot read it"), "{e}");
        let e = HashFile::build(dir.path(), None).err().unwrap().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn a_big_file_is_sorted_in_runs_and_merged_and_every_user_found() {
        // Runs of 64 merged 4 at a time: 79 runs, merged in four passes. The duplicate is far
        // from its first line.
        let (run, fan_in) = (64, 4);
        let users = 5_000u64;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hashes.ndjson");
        let mut text = String::new();
        for i in 0..users {
            text.push_str(&format!(
                "{{\"email\":\"user{i}@example.com\",\"password_hash\":\"$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K\"}}\n"
            ));
        }
        std::fs::write(&path, &text).unwrap();
        let hashes = HashFile::build_sized(&path, Some(dir.path()), run, fan_in).unwrap();
        assert_eq!(hashes.len(), users);
        for i in [0, 1, users / 3, users / 2, users - 1] {
            let (line, _) =
                found(&hashes, json!({"email": format!("USER{i}@example.com")})).unwrap();
            assert_eq!(line, i + 1);
        }
        assert_eq!(found(&hashes, json!({"email": "user@example.com"})), None);
        // Sorted throughout.
        let mut last = 0;
        for at in 0..users {
            let entry = hashes.entry(at).unwrap();
            assert!(entry.digest >= last);
            last = entry.digest;
        }
        text.push_str("{\"email\":\"user7@EXAMPLE.com\",\"password_hash\":\"$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K\"}\n");
        std::fs::write(&path, &text).unwrap();
        let e = HashFile::build_sized(&path, None, run, fan_in)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains(&format!("line {}", users + 1))
                && e.contains("user7@example.com also has line 8"),
            "{e}"
        );
    }

    #[test]
    fn a_file_changed_after_indexing_stops_the_lookup() {
        let lines = vec![json!({"user_id": "abc", "custom_password_hash": custom(1)}).to_string()];
        let (dir, path) = write(&lines);
        let hashes = HashFile::build(&path, None).unwrap();
        std::fs::write(&path, "x".repeat(lines[0].len() + 1)).unwrap();
        let e = hashes.find(&record(json!({"user_id": "abc"}))).unwrap_err();
        assert!(e.to_string().contains("line 1 changed"), "{e}");
        drop(dir);
    }
}
