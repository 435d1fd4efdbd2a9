//! The deletion's rejects file (`rejects.txt` in the run state): every rejected list line, as
//! a `#` comment saying why followed by the key, in the list format `delete --users` reads
//! back once fixed:
//!
//! ```text
//! # line 12: ambiguous_email: ann@example.com is the email of 2 users (auth0|1, auth0|2); list the user_id to delete instead
//! ann@example.com
//! ```
//!
//! As the import's rejects file: a chunk's entries are durable (fsynced) before the ledger
//! counts the chunk, and the ledger keeps the file's length after them; a resumed run cuts the
//! file back to that length (what a run killed between the two wrote is written again), a new
//! run starts it empty. So a rejected line is listed exactly once.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::state::{open_vouched, private_options};
use crate::warnings::ByCode;

/// The file's name in the run state.
pub const FILE: &str = "rejects.txt";

/// A rejected list line: its position, its key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub line: u64,
    pub key: String,
    pub code: &'static str,
    pub message: String,
}

/// The open rejects file, positioned at its end.
#[derive(Debug)]
pub struct Rejects {
    path: PathBuf,
    file: std::fs::File,
    len: u64,
}

impl Rejects {
    /// Opens (creating it 0600) the file at `path`, cut to `at` bytes: the length the ledger
    /// vouches for (0 for a new run).
    pub fn open(path: &Path, at: u64) -> std::io::Result<Rejects> {
        let options = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .clone();
        let file = open_vouched(&options, path, at)?;
        file.set_len(at)?;
        Ok(Rejects {
            path: path.to_path_buf(),
            file,
            len: at,
        })
    }

    /// Appends a chunk's rejected lines and returns once they are durable.
    pub fn append(&mut self, rejected: &[Rejected]) -> std::io::Result<()> {
        if rejected.is_empty() {
            return Ok(());
        }
        let text: String = rejected.iter().map(entry).collect();
        self.file.write_all(text.as_bytes())?;
        self.file.sync_data()?;
        self.len += text.len() as u64;
        Ok(())
    }

    /// The file's length: what the ledger vouches for once the chunk is recorded.
    pub fn bytes(&self) -> u64 {
        self.len
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// One entry: the comment saying why (on one line), then the key.
fn entry(rejected: &Rejected) -> String {
    let message = rejected.message.replace(['\n', '\r'], " ");
    format!(
        "# line {}: {}: {message}\n{}\n",
        rejected.line, rejected.code, rejected.key
    )
}

/// The codes of the first `len` bytes of the file at `path` (what the runs before a resumed
/// one rejected, as the ledger vouches for it), for the summary.
pub fn codes(path: &Path, len: u64) -> std::io::Result<ByCode> {
    ByCode::of_file(path, len, |line| {
        let mut parts = line.strip_prefix("# line ")?.splitn(3, ": ");
        let at = parts
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_default();
        let code = parts.next().unwrap_or("unknown").to_string();
        Some((code, at, parts.next().unwrap_or_default().to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(line: u64, key: &str, code: &'static str) -> Rejected {
        Rejected {
            line,
            key: key.into(),
            code,
            message: format!("why {line}\nsecond line"),
        }
    }

    #[test]
    fn entries_read_back_as_a_list_and_as_codes_and_a_resume_cuts_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let mut rejects = Rejects::open(&path, 0).unwrap();
        rejects
            .append(&[
                rejected(3, "ann@example.com", "ambiguous_email"),
                rejected(9, "auth0|x", "delete_refused"),
            ])
            .unwrap();
        let vouched = rejects.bytes();
        rejects
            .append(&[rejected(12, "bob@example.com", "ambiguous_email")])
            .unwrap();
        drop(rejects);

        let text = std::fs::read_to_string(&path).unwrap();
        let keys: Vec<&str> = text
            .lines()
            .filter_map(crate::export::list::key_of)
            .collect();
        assert_eq!(keys, ["ann@example.com", "auth0|x", "bob@example.com"]);
        assert!(text.starts_with("# line 3: ambiguous_email: why 3 second line\n"));

        let by_code = codes(&path, vouched).unwrap();
        assert_eq!(by_code.total(), 2);
        let ambiguous = by_code.get("ambiguous_email").unwrap();
        assert_eq!((ambiguous.count, ambiguous.example.line), (1, 3));

        // A resumed run: what the ledger does not vouch for is written again.
        let rejects = Rejects::open(&path, vouched).unwrap();
        assert_eq!(rejects.bytes(), vouched);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), vouched);
        assert!(Rejects::open(&path, vouched + 1).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
