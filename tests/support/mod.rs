//! Helpers shared by the integration tests.

pub mod authz;
pub mod child;
pub mod exports;
pub mod imports;
pub mod jobs;
pub mod kill;
pub mod live;
pub mod oas;
pub mod tenant;

use std::path::{Path, PathBuf};

/// Every file under `dir`, recursively, sorted (none when `dir` does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}
