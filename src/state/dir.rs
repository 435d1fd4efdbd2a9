//! The state directory and its files: created private (0700, files 0600) and locked for the
//! life of a run; small, versioned JSON files replaced atomically (write a temp file, fsync,
//! rename, fsync the directory), and read back with a message that says which version wrote a
//! file this build cannot read. The private-file helpers (0600) serve every file that holds
//! users' data, in the state or not: outputs, ledgers, rejects, plans, the sandbox's dump.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StateError;

/// An open, locked state directory.
#[derive(Debug)]
pub struct StateDir {
    path: PathBuf,
    // Held for the life of the run: the lock is released when the file is closed.
    _lock: File,
}

impl StateDir {
    /// Creates (mode 0700) and locks the directory. A second process gets [`StateError::Locked`].
    pub fn open(path: &Path) -> Result<StateDir, StateError> {
        let io = |source| StateError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(path).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        let mut options = private_options();
        options.read(true).write(true).create(true).truncate(false);
        let lock = open_private(&options, &path.join("lock")).map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StateError::Locked(path.to_path_buf()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        remove_leftovers(path).map_err(io)?;
        Ok(StateDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Reads a JSON state file whose `"version"` is `version`; `None` when it does not exist.
    /// A file of another format version is [`StateError::Version`]; any other file that does
    /// not read is [`StateError::Corrupt`].
    pub fn load<T: DeserializeOwned>(
        &self,
        name: &str,
        version: &'static str,
    ) -> Result<Option<T>, StateError> {
        peek(&self.path, name, version)
    }

    /// Replaces a JSON state file atomically.
    pub fn save<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StateError> {
        let path = self.file(name);
        let io = |source| StateError::Io {
            path: path.clone(),
            source,
        };
        let mut text = serde_json::to_vec_pretty(value).expect("state serializes");
        text.push(b'\n');
        write_atomic(&path, &text).map_err(io)
    }

    /// Removes a state file if it exists.
    pub fn remove(&self, name: &str) -> Result<(), StateError> {
        let path = self.file(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Io { path, source }),
        }
    }
}

/// Reads a JSON state file of `dir` as [`StateDir::load`] does, without creating or locking
/// anything: what a run checks before it sends its first request (or touches the state).
pub fn peek<T: DeserializeOwned>(
    dir: &Path,
    name: &str,
    version: &'static str,
) -> Result<Option<T>, StateError> {
    let path = dir.join(name);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StateError::Io { path, source }),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        let found = match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(object)) => match object.get("version") {
                Some(serde_json::Value::String(v)) if v == version => None,
                Some(serde_json::Value::String(v)) => Some(v.clone()),
                Some(other) => Some(other.to_string()),
                // State files have had a version from the first release on.
                None => Some("none".to_string()),
            },
            _ => None,
        };
        match found {
            Some(found) => {
                let by = match (found.parse::<u64>(), version.parse::<u64>()) {
                    (Ok(f), Ok(v)) if f > v => "it was written by a newer auth0-bulk",
                    (Ok(_), Ok(_)) => "it was written by an older auth0-bulk",
                    _ => "it was not written by this auth0-bulk",
                };
                StateError::Version {
                    path,
                    found,
                    expected: version,
                    by,
                }
            }
            None => StateError::Corrupt {
                path,
                message: e.to_string(),
            },
        }
    })
}

/// Open options for a file only its owner can read (mode 0600). Open with [`open_private`]:
/// the mode applies only to a file the open creates.
pub fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Opens `path` with `options` (from [`private_options`]) and makes a file that already existed
/// with a looser mode private too: a rejects or plan file left readable by all by something
/// else must not go on holding users' data for all to read.
pub fn open_private(options: &OpenOptions, path: &Path) -> std::io::Result<File> {
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if file.metadata()?.permissions().mode() & 0o077 != 0 {
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(file)
}

/// Opens `path` with `options` (as [`open_private`]), a file a ledger vouches for `vouched`
/// bytes of, positioned there. A file shorter than that was cut outside a run: `InvalidData`,
/// and the file is left as it is.
pub fn open_vouched(options: &OpenOptions, path: &Path, vouched: u64) -> std::io::Result<File> {
    let mut file = open_private(options, path)?;
    let on_disk = file.metadata()?.len();
    if on_disk < vouched {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} holds {on_disk} bytes, but the ledger vouches for {vouched}: it was cut \
                 outside a run",
                path.display()
            ),
        ));
    }
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(vouched))?;
    Ok(file)
}

/// Creates (or truncates) a private file (see [`open_private`]), buffered, and the folders it
/// is in if they are missing: for users' data written outside the state, such as the
/// sandbox's `--dump` or a dry run's `--plan`.
pub fn create_private(path: &Path) -> std::io::Result<BufWriter<File>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let file = open_private(
        private_options().write(true).create(true).truncate(true),
        path,
    )?;
    Ok(BufWriter::new(file))
}

/// The file beside `path` whose name is `path`'s plus `suffix`: `users.ndjson` + `.state` →
/// `users.ndjson.state`. Every file a run keeps next to its input or output is named so.
pub fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Writes `bytes` to `path` atomically: temp file beside it (0600), fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// What [`write_atomic`]'s temporary files are called, until renamed into place.
const TEMP_PREFIX: &str = ".auth0-bulk-tmp-";

/// Removes the temporary files of [`write_atomic`] that a killed run left in a state (a
/// page file of a large instant can be megabytes). Only the lock's holder calls it, so none is
/// in use; the prefix is this tool's own, so a user's file in the folder is never touched.
fn remove_leftovers(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            match fs::remove_file(entry.path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Makes a rename in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_open_of_the_same_state_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateDir::open(&dir.path().join("s")).unwrap();
        let second = StateDir::open(&dir.path().join("s"));
        assert!(matches!(second, Err(StateError::Locked(_))), "{second:?}");
        drop(first);
        assert!(StateDir::open(&dir.path().join("s")).is_ok());
    }

    #[test]
    fn a_temporary_file_a_killed_run_left_is_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        drop(StateDir::open(&path).unwrap());
        // A kill between writing a replacement and renaming it into place.
        std::fs::write(path.join(format!("{TEMP_PREFIX}a1b2c3")), b"half a file").unwrap();
        std::fs::write(path.join(".tmp-users-own"), b"not ours").unwrap();
        let state = StateDir::open(&path).unwrap();
        state
            .save("export.json", &serde_json::json!({"version": "2"}))
            .unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".tmp-users-own", "export.json", "lock"]);
    }

    #[test]
    fn state_files_round_trip_privately() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(&dir.path().join("s")).unwrap();
        state.save("x.json", &serde_json::json!({"a": 1})).unwrap();
        let back: Option<serde_json::Value> = state.load("x.json", "1").unwrap();
        assert_eq!(back, Some(serde_json::json!({"a": 1})));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(state.file("x.json"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600);
            let mode = fs::metadata(state.path()).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
        }
        fs::write(state.file("bad.json"), "{not json").unwrap();
        assert!(matches!(
            state.load::<serde_json::Value>("bad.json", "1"),
            Err(StateError::Corrupt { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_created_file_is_private_even_when_it_was_readable_by_all() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.ndjson");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let mut file = create_private(&path).unwrap();
        file.write_all(b"new").unwrap();
        drop(file);
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_state_file_of_another_format_version_says_which() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(tag = "version")]
        enum Saved {
            #[serde(rename = "2")]
            V2 { done: u64 },
        }
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(&dir.path().join("s")).unwrap();
        let load = |text: &str| {
            fs::write(state.file("x.json"), text).unwrap();
            state.load::<Saved>("x.json", "2")
        };
        assert!(matches!(
            load(r#"{"version":"2","done":3}"#),
            Ok(Some(Saved::V2 { done: 3 }))
        ));
        let newer = load(r#"{"version":"3","done":3,"more":[]}"#).unwrap_err();
        assert!(newer.to_string().contains("format version 3"), "{newer}");
        assert!(newer.to_string().contains("newer auth0-bulk"), "{newer}");
        let older = load(r#"{"version":"1","count":3}"#).unwrap_err();
        assert!(older.to_string().contains("older auth0-bulk"), "{older}");
        assert!(matches!(
            load(r#"{"done":3}"#),
            Err(StateError::Version { .. })
        ));
        // The right version, damaged: that is not a version problem.
        assert!(matches!(
            load(r#"{"version":"2"}"#),
            Err(StateError::Corrupt { .. })
        ));
        assert!(matches!(
            load(r#"{"version":"2","do"#),
            Err(StateError::Corrupt { .. })
        ));
    }
}
