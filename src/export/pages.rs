//! The pages of the walk's windows read ahead of the output, kept on disk until their window
//! is written: in the run state (so a resumed run re-uses them and asks only for what is
//! missing), or in a temporary folder when the run has no state (so memory stays bounded
//! however far the walk reads ahead).
//!
//! A window's pages are one file, `walk-<window>.pages`, private (0600), that its pages are
//! appended to as they arrive: a record per page, `page <n> <total> <users> <bytes>\n` and then
//! per user `<user_id bytes> <created_at bytes or -> <json bytes>\n`, its `user_id`, its
//! `created_at` and its JSON text as the tenant sent it. One file a window, not a file a page,
//! and the keys kept beside the text: creating and removing a file per page, and reading each
//! user's keys again, were most of an export's CPU. A record cut short (a kill in the middle of
//! an append) and what follows it read as missing: those pages are asked for again.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;

use crate::api::Listed;
use crate::state::StateDir;
use crate::state::dir::{open_private, private_options, write_atomic};

/// What a window's page file is called: `walk-<window>.pages`.
const PREFIX: &str = "walk-";
const SUFFIX: &str = ".pages";

/// The folder the walk keeps its pages in.
pub struct Pages {
    dir: PathBuf,
    /// The pages kept, by window, with the byte where each record starts: a page not kept is
    /// missing without a read, and one kept is read without a scan.
    kept: Mutex<HashMap<u64, HashMap<u32, u64>>>,
    /// Appends are whole records, one at a time.
    append: Mutex<()>,
    // Without a state, a folder of our own, removed with it.
    _scratch: Option<tempfile::TempDir>,
}

/// A page file that cannot be written or listed.
#[derive(Debug, thiserror::Error)]
#[error("cannot keep a page of users in {}", path.display())]
pub struct PageError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl Pages {
    /// The run state's folder (with the pages a killed run kept), or a new temporary one
    /// (private, like the state).
    pub fn open(state: Option<&StateDir>) -> Result<Pages, PageError> {
        let (dir, scratch) = match state {
            Some(state) => (state.path().to_path_buf(), None),
            None => {
                let scratch = tempfile::tempdir().map_err(|source| PageError {
                    path: std::env::temp_dir(),
                    source,
                })?;
                (scratch.path().to_path_buf(), Some(scratch))
            }
        };
        let pages = Pages {
            dir,
            kept: Mutex::new(HashMap::new()),
            append: Mutex::new(()),
            _scratch: scratch,
        };
        pages.index()?;
        Ok(pages)
    }

    fn path(&self, window: u64) -> PathBuf {
        self.dir.join(format!("{PREFIX}{window}{SUFFIX}"))
    }

    fn io(&self, path: &Path) -> impl Fn(std::io::Error) -> PageError {
        let path = path.to_path_buf();
        move |source| PageError {
            path: path.clone(),
            source,
        }
    }

    /// Finds the pages a killed run kept; a file's damaged tail is cut off, so appends after
    /// it are read.
    fn index(&self) -> Result<(), PageError> {
        let io = self.io(&self.dir);
        let mut kept = lock(&self.kept);
        for entry in std::fs::read_dir(&self.dir).map_err(&io)? {
            let entry = entry.map_err(&io)?;
            let Some(window) = window_of(Path::new(&entry.file_name())) else {
                continue;
            };
            let path = entry.path();
            let file = File::open(&path).map_err(self.io(&path))?;
            let mut reader = BufReader::new(file);
            let mut at = 0u64;
            let pages = kept.entry(window).or_default();
            while let Some((page, _, _, bytes, header)) = read_header(&mut reader) {
                let mut skipped = 0u64;
                let whole = std::io::copy(&mut (&mut reader).take(bytes), &mut std::io::sink())
                    .map(|n| {
                        skipped = n;
                        n == bytes
                    })
                    .unwrap_or(false);
                if !whole {
                    break;
                }
                pages.insert(page, at);
                at += header + skipped;
            }
            let length = std::fs::metadata(&path).map_err(self.io(&path))?.len();
            if length > at {
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(at))
                    .map_err(self.io(&path))?;
            }
        }
        Ok(())
    }

    /// Keeps one page of a window (its answer's total and users).
    pub fn save(
        &self,
        window: u64,
        page: u32,
        total: u64,
        users: &[Listed],
    ) -> Result<(), PageError> {
        let record = record(page, total, users);
        let path = self.path(window);
        let _one_at_a_time = lock(&self.append);
        let mut file = open_private(private_options().create(true).append(true), &path)
            .map_err(self.io(&path))?;
        let at = file.metadata().map_err(self.io(&path))?.len();
        // Not fsynced: a page is a copy of the tenant's answer, not a record of what the run
        // did; one lost to a power cut reads as missing and is asked for again.
        file.write_all(&record).map_err(self.io(&path))?;
        lock(&self.kept).entry(window).or_default().insert(page, at);
        Ok(())
    }

    /// Keeps `users` as the window's only page (page 0, their count as its total), replacing
    /// the file atomically: an instant read whole, whose pages kept as they arrived are no
    /// longer needed and would double the disk it takes.
    pub fn replace(&self, window: u64, users: &[Listed]) -> Result<(), PageError> {
        let path = self.path(window);
        let _one_at_a_time = lock(&self.append);
        write_atomic(&path, &record(0, users.len() as u64, users)).map_err(self.io(&path))?;
        lock(&self.kept).insert(window, HashMap::from([(0, 0)]));
        Ok(())
    }

    /// A page kept before, if it is there and whole.
    pub fn load(&self, window: u64, page: u32) -> Option<(u64, Vec<Listed>)> {
        let at = *lock(&self.kept).get(&window)?.get(&page)?;
        let mut file = File::open(self.path(window)).ok()?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(at)).ok()?;
        let mut reader = BufReader::new(file);
        let (found, total, count, bytes, _) = read_header(&mut reader)?;
        if found != page {
            return None;
        }
        // Sized ahead (a damaged header's length is not trusted past a few pages' worth).
        let mut body = Vec::with_capacity(usize::try_from(bytes).ok()?.min(1 << 24));
        (&mut reader).take(bytes).read_to_end(&mut body).ok()?;
        if body.len() as u64 != bytes {
            return None;
        }
        let users = read_users(body.into(), count)?;
        Some((total, users))
    }

    /// Every page of a window, read from its file in one go, each user's text a slice of it:
    /// a file opened, read and copied a page was about a tenth of an export's CPU.
    pub fn load_window(&self, window: u64) -> HashMap<u32, (u64, Vec<Listed>)> {
        let mut pages = HashMap::new();
        let Some(kept) = lock(&self.kept).get(&window).cloned() else {
            return pages;
        };
        let Ok(file) = std::fs::read(self.path(window)) else {
            return pages;
        };
        let file = Bytes::from(file);
        for (page, at) in kept {
            match usize::try_from(at)
                .ok()
                .and_then(|at| parse_record(&file, at))
            {
                Some((found, total, users)) if found == page => {
                    pages.insert(page, (total, users));
                }
                _ => {}
            }
        }
        pages
    }

    /// Forgets every page of a window (written, or to be read again).
    pub fn remove(&self, window: u64) -> Result<(), PageError> {
        lock(&self.kept).remove(&window);
        let path = self.path(window);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(PageError { path, source }),
        }
    }

    /// Forgets the pages of every window not in `keep`: those of windows a killed run had
    /// planned but not yet recorded, or had written but not yet cleaned up.
    pub fn keep_only(&self, keep: &HashSet<u64>) -> Result<(), PageError> {
        let windows: Vec<u64> = lock(&self.kept).keys().copied().collect();
        for window in windows.into_iter().filter(|w| !keep.contains(w)) {
            self.remove(window)?;
        }
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update is one insert or remove: the state is consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// One page as a record of its window's file (see the module docs).
fn record(page: u32, total: u64, users: &[Listed]) -> Vec<u8> {
    let mut body = Vec::with_capacity(users.iter().map(|u| u.json_bytes().len() + 64).sum());
    for user in users {
        // Three lengths a user: `write!` would cost more than copying the user.
        let created = user.created_at.as_deref();
        push_number(&mut body, user.user_id.len());
        body.push(b' ');
        match created {
            Some(created) => push_number(&mut body, created.len()),
            None => body.push(b'-'),
        }
        body.push(b' ');
        push_number(&mut body, user.json_bytes().len());
        body.push(b'\n');
        body.extend_from_slice(user.user_id.as_bytes());
        body.extend_from_slice(created.unwrap_or_default().as_bytes());
        body.extend_from_slice(user.json_bytes());
    }
    let mut record = format!("page {page} {total} {} {}\n", users.len(), body.len()).into_bytes();
    record.extend_from_slice(&body);
    record
}

/// Appends `n` in decimal.
fn push_number(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// A record's header: (page, total, users, body bytes, header bytes); `None` at the end or
/// when it is not one.
fn read_header(reader: &mut impl BufRead) -> Option<(u32, u64, usize, u64, u64)> {
    let mut line = String::new();
    let read = reader.read_line(&mut line).ok()?;
    let fields = line.strip_suffix('\n')?.strip_prefix("page ")?;
    let mut fields = fields.split(' ');
    let mut next = || fields.next();
    let page = next()?.parse().ok()?;
    let total = next()?.parse().ok()?;
    let count = next()?.parse().ok()?;
    let bytes = next()?.parse().ok()?;
    Some((page, total, count, bytes, read as u64))
}

/// The record that starts at byte `at` of a window's file: (page, total, users).
fn parse_record(file: &Bytes, at: usize) -> Option<(u32, u64, Vec<Listed>)> {
    let mut rest = file.get(at..)?;
    let (page, total, count, bytes, header) = read_header(&mut rest)?;
    let start = at + usize::try_from(header).ok()?;
    let end = start.checked_add(usize::try_from(bytes).ok()?)?;
    (end <= file.len()).then_some(())?;
    let users = read_users(file.slice(start..end), count)?;
    Some((page, total, users))
}

/// The users of a record's body, each text a slice of it.
fn read_users(body: Bytes, count: usize) -> Option<Vec<Listed>> {
    let mut users = Vec::with_capacity(count);
    let mut at = 0;
    for _ in 0..count {
        let end = at + memchr::memchr(b'\n', &body[at..])?;
        let line = std::str::from_utf8(&body[at..end]).ok()?;
        at = end + 1;
        let mut lengths = line.split(' ');
        let id_len: usize = lengths.next()?.parse().ok()?;
        let created_len: Option<usize> = match lengths.next()? {
            "-" => None,
            n => Some(n.parse().ok()?),
        };
        let json_len: usize = lengths.next()?.parse().ok()?;
        let mut take = |n: usize| -> Option<Bytes> {
            let end = at.checked_add(n).filter(|end| *end <= body.len())?;
            let bytes = body.slice(at..end);
            at = end;
            Some(bytes)
        };
        let text = |bytes: Bytes| String::from_utf8(bytes.to_vec()).ok();
        let user_id = text(take(id_len)?)?;
        let created_at = match created_len {
            Some(n) => Some(text(take(n)?)?),
            None => None,
        };
        let json = take(json_len)?;
        users.push(Listed::from_parts(user_id, created_at, json)?);
    }
    (at == body.len()).then_some(users)
}

/// The window a page file belongs to, from its name.
fn window_of(name: &Path) -> Option<u64> {
    name.to_str()?
        .strip_prefix(PREFIX)?
        .strip_suffix(SUFFIX)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> Listed {
        Listed::from_json(&format!(
            r#"{{"created_at":"2020-01-01T00:00:00.000Z","user_id":"{id}","x":[1, 2],"s":"a\nb é"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn pages_round_trip_as_sent_and_are_forgotten_by_window() {
        let pages = Pages::open(None).unwrap();
        let users = vec![user("a"), user("b")];
        let no_date = Listed::from_json(r#"{"user_id":"c"}"#).unwrap();
        pages.save(3, 0, 250, &users).unwrap();
        pages.save(3, 1, 250, &users[..1]).unwrap();
        pages.save(4, 0, 2, std::slice::from_ref(&no_date)).unwrap();
        assert_eq!(pages.load(3, 0), Some((250, users.clone())));
        assert_eq!(pages.load(3, 1).unwrap().1, users[..1]);
        assert_eq!(pages.load(3, 2), None);
        assert_eq!(pages.load(4, 0), Some((2, vec![no_date])));
        pages.remove(3).unwrap();
        assert_eq!(pages.load(3, 0), None);
        assert!(pages.load(4, 0).is_some());
        pages.keep_only(&HashSet::from([5])).unwrap();
        assert_eq!(pages.load(4, 0), None);
    }

    #[test]
    fn a_reopened_folder_finds_whole_pages_and_cuts_a_torn_one() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let users = vec![user("a"), user("b")];
        {
            let pages = Pages::open(Some(&state)).unwrap();
            pages.save(7, 0, 300, &users).unwrap();
            pages.save(7, 1, 300, &users).unwrap();
        }
        // A kill in the middle of page 2's append.
        let path = dir.path().join("walk-7.pages");
        let whole = std::fs::read(&path).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(b"page 2 300 2 999\n12 24 5");
        std::fs::write(&path, &torn).unwrap();
        let pages = Pages::open(Some(&state)).unwrap();
        assert_eq!(pages.load(7, 1), Some((300, users.clone())));
        assert_eq!(pages.load(7, 2), None);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            whole,
            "the torn tail is cut off"
        );
        pages.save(7, 2, 300, &users).unwrap();
        assert_eq!(pages.load(7, 2), Some((300, users.clone())));
        // An instant read whole replaces the pages it was read from.
        pages.replace(7, &users).unwrap();
        assert_eq!(pages.load(7, 0), Some((2, users.clone())));
        assert_eq!(pages.load(7, 1), None);
        let reopened = Pages::open(Some(&state)).unwrap();
        assert_eq!(reopened.load(7, 0), Some((2, users)));
        assert_eq!(reopened.load(7, 2), None);
        assert_eq!(window_of(Path::new("walk-12.pages")), Some(12));
        assert_eq!(window_of(Path::new("export.json")), None);
    }
}
