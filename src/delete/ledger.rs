//! The deletion ledger (`ledger.ndjson` in the run state): one line per chunk of the list,
//! written and fsynced once every user of the chunk has its outcome.
//!
//! `{"through":1200,"images":40213,"rejects":180,"deleted":98,"not_found":1,"duplicates":0,"rejected":1}`
//! says: every record up to list position 1200 is done, with these counts for the chunk, the
//! before-images file is good up to byte 40213 and the [rejects file](super::rejects) holds
//! 180 bytes. A run starts with a line of its own
//! (`through` 0, or where a resumed run was) that vouches for the images earlier runs left.
//!
//! A chunk's outcome is one line, so a crash leaves it whole or torn, never half: a torn last
//! line is dropped on open (its chunk is redone, and its images are [pending]), a damaged
//! whole line is refused (`InvalidData`) rather than forget what follows it. Reading it back is
//! [`open_log`], as for the import ledger.
//!
//! [pending]: super::images::Pending

use std::fs::File;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::state::log::open_log;

/// The file's name in the run state.
pub const FILE: &str = "ledger.ndjson";

/// How many records ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub deleted: u64,
    /// Skipped: no such user in the tenant.
    pub not_found: u64,
    /// Skipped: the same user again, earlier in the list.
    pub duplicates: u64,
    pub rejected: u64,
}

impl Tally {
    /// Records counted.
    pub fn read(&self) -> u64 {
        self.deleted + self.not_found + self.duplicates + self.rejected
    }

    pub fn add(&mut self, other: &Tally) {
        self.deleted += other.deleted;
        self.not_found += other.not_found;
        self.duplicates += other.duplicates;
        self.rejected += other.rejected;
    }
}

/// One line of the ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The list position of the chunk's last record.
    pub through: u64,
    /// The before-images file's length once the chunk's images were written.
    pub images: u64,
    /// The rejects file's length once the chunk's rejects were written (a ledger of an
    /// earlier version has none: 0).
    #[serde(default)]
    pub rejects: u64,
    /// The chunk's counts. (Not `#[serde(flatten)]`: with serde_json's `arbitrary_precision`
    /// a flattened number does not read back.)
    pub deleted: u64,
    pub not_found: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

impl Entry {
    /// The entry for the records up to `through`, with the images file at `images` bytes and
    /// the rejects file at `rejects`.
    pub fn new(through: u64, images: u64, rejects: u64, tally: &Tally) -> Entry {
        Entry {
            through,
            images,
            rejects,
            deleted: tally.deleted,
            not_found: tally.not_found,
            duplicates: tally.duplicates,
            rejected: tally.rejected,
        }
    }

    pub fn tally(&self) -> Tally {
        Tally {
            deleted: self.deleted,
            not_found: self.not_found,
            duplicates: self.duplicates,
            rejected: self.rejected,
        }
    }
}

/// What the ledger says of the runs before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The last record done.
    pub through: u64,
    /// The before-images file's vouched-for length.
    pub images: u64,
    /// The rejects file's vouched-for length.
    pub rejects: u64,
    /// Every chunk's counts, added up.
    pub tally: Tally,
    /// Entries read (none: a new ledger).
    pub entries: u64,
}

/// The open ledger.
#[derive(Debug)]
pub struct Ledger {
    file: File,
}

impl Ledger {
    /// Reads the ledger at `path` (a torn last line dropped) and opens it for appending.
    pub fn open(path: &Path) -> std::io::Result<(Ledger, Recovered)> {
        let mut recovered = Recovered::default();
        let (file, _) = open_log(path, "a deletion ledger entry", |entry: Entry| {
            recovered.through = recovered.through.max(entry.through);
            recovered.images = recovered.images.max(entry.images);
            recovered.rejects = recovered.rejects.max(entry.rejects);
            recovered.tally.add(&entry.tally());
            recovered.entries += 1;
        })?;
        Ok((Ledger { file }, recovered))
    }

    /// Replaces the ledger at `path` with one entry, atomically: the start of a new run,
    /// vouching for `images` bytes of before-images that runs before it left (and for no
    /// rejects: a new run lists its own).
    pub fn restart(path: &Path, images: u64) -> std::io::Result<(Ledger, Recovered)> {
        let entry = Entry {
            images,
            ..Entry::default()
        };
        let mut line = serde_json::to_vec(&entry).expect("entries serialize");
        line.push(b'\n');
        crate::state::write_atomic(path, &line)?;
        Ledger::open(path)
    }

    /// Appends an entry and returns once it is durable.
    pub fn record(&mut self, entry: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).expect("entries serialize");
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_add_up_and_a_torn_chunk_is_redone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let (mut ledger, recovered) = Ledger::open(&path).unwrap();
        assert_eq!(recovered, Recovered::default());
        let chunk = |through, images, deleted| {
            let tally = Tally {
                deleted,
                not_found: 1,
                ..Tally::default()
            };
            Entry::new(through, images, 0, &tally)
        };
        ledger.record(&chunk(100, 5_000, 99)).unwrap();
        ledger.record(&chunk(200, 9_000, 98)).unwrap();
        drop(ledger);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"{\"through\":300,\"ima").unwrap();
        drop(file);
        let (_, recovered) = Ledger::open(&path).unwrap();
        assert_eq!(recovered.through, 200);
        assert_eq!(recovered.images, 9_000);
        assert_eq!(recovered.tally.deleted, 197);
        assert_eq!(recovered.tally.read(), 199);
        assert!(
            std::fs::read_to_string(&path).unwrap().ends_with("}\n"),
            "the torn line is cut off"
        );
    }
}
