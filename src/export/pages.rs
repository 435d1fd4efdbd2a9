//! The pages of the walk's windows read ahead of the output, kept as files until their window
//! is written: in the run state (so a resumed run re-uses them and asks only for what is
//! missing), or in a temporary folder when the run has no state (so memory stays bounded
//! however far the walk reads ahead).
//!
//! A page is one file, `walk-<window>-<page>.json`, holding the total its answer gave and the
//! users as the tenant sent them: `{"total":N,"users":[…]}`. Files are renamed into place and
//! are private (0600, as `tempfile` creates them), so a file that is there is whole; one that
//! does not read is treated as missing and asked for again.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::api::Listed;
use crate::state::StateDir;

/// What a page file starts with.
const PREFIX: &str = "walk-";

/// The folder the walk keeps its pages in.
pub struct Pages {
    dir: PathBuf,
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
    /// The run state's folder, or a new temporary one (private, like the state).
    pub fn open(state: Option<&StateDir>) -> Result<Pages, PageError> {
        match state {
            Some(state) => Ok(Pages {
                dir: state.path().to_path_buf(),
                _scratch: None,
            }),
            None => {
                let scratch = tempfile::tempdir().map_err(|source| PageError {
                    path: std::env::temp_dir(),
                    source,
                })?;
                Ok(Pages {
                    dir: scratch.path().to_path_buf(),
                    _scratch: Some(scratch),
                })
            }
        }
    }

    fn path(&self, window: u64, page: u32) -> PathBuf {
        self.dir.join(format!("{PREFIX}{window}-{page}.json"))
    }

    /// Keeps one page of a window (its answer's total and users).
    pub fn save(
        &self,
        window: u64,
        page: u32,
        total: u64,
        users: &[Listed],
    ) -> Result<(), PageError> {
        let path = self.path(window, page);
        let size: usize = users.iter().map(|u| u.json().len() + 1).sum();
        let mut text = String::with_capacity(size + 48);
        text.push_str(&format!("{{\"total\":{total},\"users\":["));
        for (i, user) in users.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(user.json());
        }
        text.push_str("]}\n");
        replace(&self.dir, &path, text.as_bytes()).map_err(|source| PageError { path, source })
    }

    /// A page kept before, if it is there and whole.
    pub fn load(&self, window: u64, page: u32) -> Option<(u64, Vec<Listed>)> {
        #[derive(serde::Deserialize)]
        struct Page<'a> {
            total: u64,
            #[serde(borrow)]
            users: Vec<&'a serde_json::value::RawValue>,
        }
        let text = std::fs::read_to_string(self.path(window, page)).ok()?;
        let page: Page = serde_json::from_str(&text).ok()?;
        let users = page
            .users
            .into_iter()
            .map(|raw| Listed::from_json(raw.get()))
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        Some((page.total, users))
    }

    /// Forgets every page of a window (written, or to be read again).
    pub fn remove(&self, window: u64) -> Result<(), PageError> {
        self.remove_where(|id| id == window)
    }

    /// Forgets the pages of every window not in `keep`: those of windows a killed run had
    /// planned but not yet recorded, or had written but not yet cleaned up.
    pub fn keep_only(&self, keep: &HashSet<u64>) -> Result<(), PageError> {
        self.remove_where(|id| !keep.contains(&id))
    }

    fn remove_where(&self, forget: impl Fn(u64) -> bool) -> Result<(), PageError> {
        let io = |source| PageError {
            path: self.dir.clone(),
            source,
        };
        for entry in std::fs::read_dir(&self.dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            let Some(id) = window_of(Path::new(&name)) else {
                continue;
            };
            if forget(id) {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(PageError {
                            path: entry.path(),
                            source,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// Writes a page file atomically (a private temp file renamed into place) but without the
/// fsyncs of [`crate::state::write_atomic`]: a page is a copy of the tenant's answer, not a record of
/// what the run did, so one lost to a power cut is asked for again (a damaged one does not
/// read, and reads as missing), while two fsyncs a page would hold up every window in flight.
fn replace(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut temp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The window a page file belongs to, from its name.
fn window_of(name: &Path) -> Option<u64> {
    let name = name.to_str()?.strip_prefix(PREFIX)?.strip_suffix(".json")?;
    let (window, page) = name.split_once('-')?;
    page.parse::<u32>().ok()?;
    window.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> Listed {
        Listed::from_json(&format!(
            r#"{{"created_at":"2020-01-01T00:00:00.000Z","user_id":"{id}","x":[1, 2]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn pages_round_trip_as_sent_and_are_forgotten_by_window() {
        let pages = Pages::open(None).unwrap();
        let users = vec![user("a"), user("b")];
        pages.save(3, 0, 250, &users).unwrap();
        pages.save(3, 1, 250, &users[..1]).unwrap();
        pages.save(4, 0, 2, &users).unwrap();
        assert_eq!(pages.load(3, 0), Some((250, users.clone())));
        assert_eq!(pages.load(3, 1).unwrap().1, users[..1]);
        assert_eq!(pages.load(3, 2), None);
        pages.remove(3).unwrap();
        assert_eq!(pages.load(3, 0), None);
        assert!(pages.load(4, 0).is_some());
        pages.keep_only(&HashSet::from([5])).unwrap();
        assert_eq!(pages.load(4, 0), None);
    }

    #[test]
    fn a_damaged_page_reads_as_missing() {
        let pages = Pages::open(None).unwrap();
        std::fs::write(pages.path(1, 0), "{\"total\":3,\"users\":[").unwrap();
        assert_eq!(pages.load(1, 0), None);
        assert_eq!(window_of(Path::new("walk-12-3.json")), Some(12));
        assert_eq!(window_of(Path::new("export.json")), None);
    }
}
