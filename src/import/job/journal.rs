//! The jobs journal: an append-only NDJSON file in the run state that records each chunk
//! before it is sent and its job once accepted, so a resumed run polls the jobs it started
//! instead of sending them again.
//!
//! Entries, one JSON object a line, each on disk (fsynced) before the step it vouches for:
//!
//! - `{"chunk":3,"connection_id":"con_…","records":[[120,1119],[1121,1200]],"sent_at":"…"}`:
//!   chunk 3 (these records, by input position) is about to be sent. A run that dies before
//!   the job's id is known sends the chunk again on resume: every user in it has a known
//!   `user_id`, so a user the lost job created meets the second job as a conflict, and a
//!   lookup by id with `created_at` after `sent_at` (less the clocks' slack) shows it is ours.
//! - `{"chunk":3,"job":"job_…"}`: the tenant accepted the chunk as that job (`"retried":true`
//!   when an earlier attempt of that request failed in transit, and may have made a job too).
//! - `{"chunk":3,"done":true}`: every member's outcome is in the import ledger (written after
//!   the ledger is synced), so a resumed run can forget the chunk.
//!
//! A torn last line (a crash mid-write) is dropped on open; a whole line that does not read is
//! a damaged state and is refused (`InvalidData`), as the ledger does. Nothing here holds a
//! user's data, let alone a password or a hash: only positions, ids and times.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::state::log::open_log;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    chunk: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connection_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    records: Option<Vec<(u64, u64)>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sent_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    job: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    retried: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    done: bool,
}

/// A chunk an earlier run sent and did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub connection_id: String,
    /// Its records, as runs of consecutive input positions.
    pub records: Vec<(u64, u64)>,
    pub sent_at: DateTime<Utc>,
    /// The job it became, when the tenant's answer was recorded.
    pub job: Option<String>,
    /// How many times it was sent (a `sent` entry each).
    pub sends: u32,
    /// The request that made `job` was retried after a failure in transit.
    pub retried: bool,
}

impl Pending {
    /// Whether another job than `job` may have been made from this chunk: its users found in
    /// the tenant may be ours.
    pub fn maybe_sent_twice(&self) -> bool {
        self.sends > 1 || self.retried || self.job.is_none()
    }
}

impl Pending {
    pub fn contains(&self, ordinal: u64) -> bool {
        self.records
            .iter()
            .any(|(first, last)| (*first..=*last).contains(&ordinal))
    }

    /// Its last record's position.
    pub fn last(&self) -> u64 {
        self.records.last().map_or(0, |(_, last)| *last)
    }
}

/// What an earlier run left in the journal.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Chunks sent and not done, by number.
    pub pending: BTreeMap<u64, Pending>,
    /// The number the next new chunk gets.
    pub next_chunk: u64,
}

/// The open journal.
pub struct Journal {
    file: Mutex<File>,
}

impl Journal {
    /// Reads what an earlier run recorded and opens the journal for appending.
    pub fn open(path: &Path) -> std::io::Result<(Journal, Recovered)> {
        let mut recovered = Recovered {
            next_chunk: 1,
            ..Recovered::default()
        };
        let (file, _) = open_log(path, "a jobs journal entry", |entry| recovered.read(entry))?;
        Ok((
            Journal {
                file: Mutex::new(file),
            },
            recovered,
        ))
    }

    fn write(&self, entry: &Entry) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(entry).expect("entries serialize");
        bytes.push(b'\n');
        let mut file = self.file.lock().expect("journal lock");
        file.write_all(&bytes)?;
        file.sync_data()
    }

    /// Records that chunk `number` is about to be sent.
    pub fn sent(
        &self,
        number: u64,
        connection_id: &str,
        records: Vec<(u64, u64)>,
        sent_at: DateTime<Utc>,
    ) -> std::io::Result<()> {
        self.write(&Entry {
            chunk: number,
            connection_id: Some(connection_id.to_string()),
            records: Some(records),
            sent_at: Some(sent_at),
            job: None,
            retried: false,
            done: false,
        })
    }

    /// Records the job chunk `number` became (`retried`: its request was sent more than once).
    pub fn accepted(&self, number: u64, job: &str, retried: bool) -> std::io::Result<()> {
        self.write(&Entry {
            chunk: number,
            connection_id: None,
            records: None,
            sent_at: None,
            job: Some(job.to_string()),
            retried,
            done: false,
        })
    }

    /// Records that every member of chunk `number` has its outcome in the (synced) ledger.
    pub fn done(&self, number: u64) -> std::io::Result<()> {
        self.write(&Entry {
            chunk: number,
            connection_id: None,
            records: None,
            sent_at: None,
            job: None,
            retried: false,
            done: true,
        })
    }
}

impl Recovered {
    fn read(&mut self, entry: Entry) {
        self.next_chunk = self.next_chunk.max(entry.chunk + 1);
        if entry.done {
            self.pending.remove(&entry.chunk);
            return;
        }
        if let (Some(connection_id), Some(records), Some(sent_at)) =
            (entry.connection_id, entry.records, entry.sent_at)
        {
            // A chunk sent again keeps its first time: users the first job made are ours.
            let earlier = self.pending.remove(&entry.chunk);
            self.pending.insert(
                entry.chunk,
                Pending {
                    connection_id,
                    records,
                    sent_at: earlier.as_ref().map_or(sent_at, |p| p.sent_at.min(sent_at)),
                    sends: earlier.as_ref().map_or(0, |p| p.sends) + 1,
                    // A new send makes a new job: the one recorded before is not it.
                    job: None,
                    retried: false,
                },
            );
        }
        if let Some(job) = entry.job
            && let Some(pending) = self.pending.get_mut(&entry.chunk)
        {
            pending.job = Some(job);
            pending.retried = entry.retried;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_accepted_and_done_chunks_read_back_as_a_resumed_run_needs_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.ndjson");
        let t1 = DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
            .unwrap()
            .to_utc();
        let t2 = DateTime::parse_from_rfc3339("2026-12-03T11:00:00Z")
            .unwrap()
            .to_utc();
        let (journal, recovered) = Journal::open(&path).unwrap();
        assert!(recovered.pending.is_empty());
        assert_eq!(recovered.next_chunk, 1);
        journal.sent(1, "con_a", vec![(1, 10)], t1).unwrap();
        journal.accepted(1, "job_1", false).unwrap();
        journal
            .sent(2, "con_a", vec![(11, 12), (14, 20)], t1)
            .unwrap();
        journal.sent(3, "con_b", vec![(13, 13)], t1).unwrap();
        journal.accepted(3, "job_3", true).unwrap();
        journal.done(1).unwrap();
        // Chunk 2 sent again later: it keeps its first time.
        journal
            .sent(2, "con_a", vec![(11, 12), (14, 20)], t2)
            .unwrap();
        drop(journal);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"{\"chunk\":4,\"conn").unwrap();
        drop(file);

        let (_, recovered) = Journal::open(&path).unwrap();
        assert_eq!(recovered.next_chunk, 4);
        assert_eq!(
            recovered.pending.keys().copied().collect::<Vec<_>>(),
            [2, 3]
        );
        let two = &recovered.pending[&2];
        assert_eq!((two.sent_at, two.job.as_deref(), two.sends), (t1, None, 2));
        assert!(two.maybe_sent_twice());
        assert!(two.contains(12) && !two.contains(13) && two.contains(14));
        assert_eq!(two.last(), 20);
        let three = &recovered.pending[&3];
        assert_eq!(three.job.as_deref(), Some("job_3"));
        assert!(three.maybe_sent_twice(), "its request was retried");
    }

    #[test]
    fn a_damaged_line_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.ndjson");
        std::fs::write(&path, "#garbage#\n{\"chunk\":1,\"done\":true}\n").unwrap();
        let error = Journal::open(&path).err().expect("refused");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    }
}
