//! The before-images file (`deleted.ndjson` in the run state): every user a deletion removes,
//! one JSON object a line, exactly as the tenant returned it (the shape `export` writes and
//! `import` reads back), made durable before the user is deleted.
//!
//! The file is only ever appended to, by every run that uses the state (a new run, or one with
//! `--fresh`, adds to it and never truncates it): a before-image is the only copy left of a
//! deleted user. What a crash can leave, and how it is read back:
//!
//! - A torn last line (the run died while writing it): its user was never deleted, since a
//!   delete waits for its image to be durable. The line is cut off on open.
//! - Whole lines past the length the [ledger](super::ledger) vouches for: images of the chunk
//!   the run was in, whose outcome the ledger never got. Their users may or may not be gone.
//!   [`BeforeImages::open`] returns them as [`Pending`]: a resumed run deletes those users
//!   without writing their image again, and counts a user it no longer finds as deleted.
//!   They are at most one chunk's worth, so reading them costs constant memory.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use crate::state::log::whole_lines;
use crate::state::{open_vouched, private_options};

/// The file's name in the run state.
pub const FILE: &str = "deleted.ndjson";

/// The open before-images file, positioned at its end.
#[derive(Debug)]
pub struct BeforeImages {
    path: PathBuf,
    file: File,
    len: u64,
}

/// Users whose image an earlier run wrote but whose outcome it never recorded: by user_id,
/// with the email (lower-cased), so a list line that names them by email finds them too.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pending(Vec<(String, Option<String>)>);

impl Pending {
    /// The pending user a list key names (a user_id, or an email in any case).
    pub fn find(&self, key: &str) -> Option<&str> {
        let lower = key.to_lowercase();
        self.0
            .iter()
            .find(|(id, email)| id == key || email.as_deref() == Some(lower.as_str()))
            .map(|(id, _)| id.as_str())
    }

    /// Removes the pending user with this user_id: settled by this run.
    pub fn take(&mut self, user_id: &str) -> Option<String> {
        let at = self.0.iter().position(|(id, _)| id == user_id)?;
        Some(self.0.swap_remove(at).0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl BeforeImages {
    /// Opens (creating it 0600) the file at `path`, cuts off a torn last line, and reads the
    /// images past `vouched` (the length the ledger's last entry recorded). A file shorter than
    /// `vouched`, or a whole line past it that is not a user, was changed outside a run:
    /// `InvalidData`, and the file is left as it is.
    pub fn open(path: &Path, vouched: u64) -> std::io::Result<(BeforeImages, Pending)> {
        let options = private_options()
            .read(true)
            .append(true)
            .create(true)
            .clone();
        let file = open_vouched(&options, path, vouched)?;
        let on_disk = file.metadata()?.len();
        let mut pending = Pending::default();
        let mut number = 0;
        let len = vouched
            + whole_lines(BufReader::new(&file), |line| {
                number += 1;
                let keys = keys(line).ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "{}: line {number} after byte {vouched} is not a user with a \
                             user_id",
                            path.display()
                        ),
                    )
                })?;
                pending.0.push(keys);
                Ok(())
            })?;
        if len < on_disk {
            file.set_len(len)?;
            file.sync_data()?;
        }
        Ok((
            BeforeImages {
                path: path.to_path_buf(),
                file,
                len,
            },
            pending,
        ))
    }

    /// The file's length: every image in it is whole and durable.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line per user (each its JSON text, without the newline) and returns once
    /// they are durable. A write that fails is cut off again, so no torn line is followed by
    /// more; none of those users may then be deleted.
    pub fn append<'a>(&mut self, users: impl IntoIterator<Item = &'a str>) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        for user in users {
            bytes.extend_from_slice(user.as_bytes());
            bytes.push(b'\n');
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let written = self
            .file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }
}

/// A before-image's user_id and lower-cased email.
fn keys(line: &[u8]) -> Option<(String, Option<String>)> {
    #[derive(serde::Deserialize)]
    struct Keys {
        user_id: String,
        #[serde(default)]
        email: Option<serde_json::Value>,
    }
    let keys: Keys = serde_json::from_slice(line).ok()?;
    let email = keys
        .email
        .as_ref()
        .and_then(serde_json::Value::as_str)
        .map(str::to_lowercase);
    Some((keys.user_id, email))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_past_the_vouched_length_are_pending_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let (mut images, pending) = BeforeImages::open(&path, 0).unwrap();
        assert!(pending.is_empty() && images.is_empty());
        images
            .append([r#"{"user_id":"auth0|1","email":"A@x.io"}"#])
            .unwrap();
        let vouched = images.len();
        images
            .append([
                r#"{"user_id":"auth0|2","email":"B@x.io"}"#,
                r#"{"user_id":"auth0|3"}"#,
            ])
            .unwrap();
        let whole = images.len();
        drop(images);
        // A crash mid-write.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(br#"{"user_id":"auth0|4","#).unwrap();
        drop(file);

        let (images, pending) = BeforeImages::open(&path, vouched).unwrap();
        assert_eq!(images.len(), whole, "the torn line is cut off");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        assert_eq!(pending.len(), 2);
        assert_eq!(pending.find("auth0|3"), Some("auth0|3"));
        assert_eq!(
            pending.find("b@X.io"),
            Some("auth0|2"),
            "by email, in any case"
        );
        assert_eq!(pending.find("auth0|1"), None, "vouched for: not pending");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_file_shorter_than_the_ledger_says_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        std::fs::write(&path, "{\"user_id\":\"a\"}\n").unwrap();
        let error = BeforeImages::open(&path, 100).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        std::fs::write(&path, "{\"user_id\":\"a\"}\nnot json\n").unwrap();
        let error = BeforeImages::open(&path, 0).unwrap_err();
        assert!(error.to_string().contains("line 2 after byte 0"), "{error}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"user_id\":\"a\"}\nnot json\n"
        );
    }
}
