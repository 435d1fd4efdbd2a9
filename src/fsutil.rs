//! File helpers that keep data private: output, state and dump files are created `0600`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::Path;

/// Creates (or truncates) a file readable and writable by its owner only.
pub fn create_private(path: &Path) -> io::Result<BufWriter<File>> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    // An existing file keeps its old mode through `open`; tighten it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(BufWriter::new(file))
}
