//! The import ledger: an append-only NDJSON file in the run state that records each input
//! record's outcome, so a resumed run skips what is done and never creates a user twice.
//!
//! Entries, one JSON object a line:
//! Records are numbered by their position in the input (1-based), which is the same on every
//! run; a JSON array on one line gives many records the same line, so lines cannot be keys.
//!
//! - `{"record":12,"started":true}`: a create for record 12 is about to be sent. It is durable
//!   before the request leaves, so a run that dies with the create in flight knows, on resume,
//!   to look the user up before sending again.
//! - `{"record":12,"outcome":"created","user_id":"auth0|..."}`: the record is done. For
//!   rejected records `rejects` holds the length of the rejects file after its entry was
//!   written, so a resumed run truncates the rejects file to what the ledger vouches for and a
//!   record is never listed twice.
//!
//! Outcome entries are written by one thread that fsyncs each group of pending entries; a
//! crash can lose the last few outcomes, which only means those records are looked at again.
//! A crash can also leave a torn last line (no newline), which is dropped on open; a group that
//! fails to write (a full disk) is cut off again, so a torn entry is never followed by more. A
//! whole line that does not read was damaged outside a run: opening such a ledger fails with
//! `InvalidData` rather than forget what follows it.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::apply::TicketFor;

use crate::state::log::{Appender, open_log};

/// What became of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    Skipped,
    Rejected,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    record: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    started: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rejects: Option<u64>,
    /// A created user who gets a password-change ticket (`--tickets`), and their email.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    ticket: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
}

/// What an earlier run left in the ledger.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Records (by position) with an outcome.
    pub done: Done,
    /// Records whose create was sent but whose outcome is unknown.
    pub in_flight: HashSet<u64>,
    /// The rejects file's good length.
    pub rejects_len: u64,
}

impl Recovered {
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.done.count(outcome)
    }
}

/// The records an earlier run finished, each with its outcome: one byte a record, in pages of
/// [`Done::PAGE`] records by position. A resumed run of a million records holds about 1 MiB
/// here where a map from position to outcome held about 32; a page is only made for records
/// that are there, so a stray position costs one page.
#[derive(Debug, Default)]
pub struct Done {
    pages: HashMap<u64, Box<[u8]>>,
    len: u64,
}

impl Done {
    /// Records a page holds.
    pub const PAGE: u64 = 4096;
    const OUTCOMES: [Outcome; 5] = [
        Outcome::Created,
        Outcome::Updated,
        Outcome::Unchanged,
        Outcome::Skipped,
        Outcome::Rejected,
    ];

    /// The outcome of `record`, if it has one.
    pub fn get(&self, record: u64) -> Option<Outcome> {
        let byte = *self
            .pages
            .get(&(record / Self::PAGE))?
            .get((record % Self::PAGE) as usize)?;
        Self::OUTCOMES
            .get(usize::from(byte).checked_sub(1)?)
            .copied()
    }

    /// Sets the outcome of `record` (a later entry for it wins).
    pub fn insert(&mut self, record: u64, outcome: Outcome) {
        let page = self
            .pages
            .entry(record / Self::PAGE)
            .or_insert_with(|| vec![0; Self::PAGE as usize].into_boxed_slice());
        let byte = &mut page[(record % Self::PAGE) as usize];
        if *byte == 0 {
            self.len += 1;
        }
        let index = Self::OUTCOMES.iter().position(|o| *o == outcome);
        *byte = index.expect("every outcome is listed") as u8 + 1;
    }

    /// How many records have an outcome.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many records have `outcome`.
    pub fn count(&self, outcome: Outcome) -> u64 {
        let byte = Self::OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .expect("listed") as u8
            + 1;
        self.pages
            .values()
            .map(|page| page.iter().filter(|b| **b == byte).count() as u64)
            .sum()
    }
}

/// A user who gets a password-change ticket, as the ledger names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketDue {
    pub record: u64,
    pub user_id: String,
    pub email: Option<String>,
}

/// The users who get tickets, in the ledger's order (the same on every read of a ledger no
/// run writes to any more), each record once. Streams the file: a bit per record is held.
pub fn tickets_due(
    path: &Path,
) -> std::io::Result<impl Iterator<Item = std::io::Result<TicketDue>>> {
    each_record_once(path, |entry| match (entry.ticket, entry.user_id) {
        (true, Some(user_id)) => Some(TicketDue {
            record: entry.record,
            user_id,
            email: entry.email,
        }),
        _ => None,
    })
}

/// A user the import created, as the ledger names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedUser {
    pub record: u64,
    pub user_id: String,
}

/// The users the import created, in the ledger's order (the same on every read of a ledger no
/// run writes to any more), each record once: what an undo deletes. Streams the file.
pub fn created_users(
    path: &Path,
) -> std::io::Result<impl Iterator<Item = std::io::Result<CreatedUser>>> {
    each_record_once(path, |entry| match (entry.outcome, entry.user_id) {
        (Some(Outcome::Created), Some(user_id)) => Some(CreatedUser {
            record: entry.record,
            user_id,
        }),
        _ => None,
    })
}

/// What `pick` takes from the whole lines of the ledger at `path`, in order, for the first
/// entry of each record it takes one from (a record redone after a crash lost its entry is
/// listed once; a torn last line is left out). A bit per record is held.
fn each_record_once<T>(
    path: &Path,
    mut pick: impl FnMut(Entry) -> Option<T>,
) -> std::io::Result<impl Iterator<Item = std::io::Result<T>>> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut seen: HashMap<u64, Box<[u64]>> = HashMap::new();
    let mut line = Vec::new();
    Ok(std::iter::from_fn(move || {
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => return None,
                Ok(_) if !line.ends_with(b"\n") => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(e)),
            }
            let entry = match serde_json::from_slice::<Entry>(&line) {
                Ok(entry) => entry,
                Err(e) => {
                    return Some(Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        e.to_string(),
                    )));
                }
            };
            let record = entry.record;
            let Some(picked) = pick(entry) else {
                continue;
            };
            let page = seen
                .entry(record / 4096)
                .or_insert_with(|| vec![0; 64].into_boxed_slice());
            let bit = record % 4096;
            let (word, mask) = ((bit / 64) as usize, 1u64 << (bit % 64));
            if page[word] & mask != 0 {
                continue;
            }
            page[word] |= mask;
            return Some(Ok(picked));
        }
    }))
}

/// The open ledger.
pub struct Ledger {
    path: PathBuf,
    writer: Appender,
}

impl Ledger {
    /// Reads what an earlier run recorded (a torn last line is ignored) and opens the ledger
    /// for appending. A damaged ledger (a whole line that is not an entry) is `InvalidData`.
    pub fn open(path: &Path) -> std::io::Result<(Ledger, Recovered)> {
        let mut recovered = Recovered::default();
        let (file, good_len) = open_log(path, "a ledger entry", |entry: Entry| {
            if entry.started {
                recovered.in_flight.insert(entry.record);
            }
            if let Some(outcome) = entry.outcome {
                recovered.in_flight.remove(&entry.record);
                recovered.done.insert(entry.record, outcome);
            }
            if let Some(len) = entry.rejects {
                recovered.rejects_len = recovered.rejects_len.max(len);
            }
        })?;
        let writer = Appender::start(
            file,
            good_len,
            "ledger",
            "Cannot write the import ledger; outcomes since the last entry will be redone on resume.",
        )?;
        Ok((
            Ledger {
                path: path.to_path_buf(),
                writer,
            },
            recovered,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn bytes(entry: &Entry) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(entry).expect("entries serialize");
        bytes.push(b'\n');
        bytes
    }

    /// Marks a create as about to be sent; returns once that is on disk.
    pub async fn started(&self, record: u64) -> std::io::Result<()> {
        let entry = Entry {
            record,
            started: true,
            outcome: None,
            user_id: None,
            rejects: None,
            ticket: false,
            email: None,
        };
        self.writer.durable(Self::bytes(&entry)).await
    }

    /// Returns once every entry sent before is on disk.
    pub async fn sync(&self) -> std::io::Result<()> {
        self.writer.durable(Vec::new()).await
    }

    /// Records an outcome (made durable with the next group).
    pub fn done(&self, record: u64, outcome: Outcome, user_id: Option<&str>, rejects: Option<u64>) {
        self.done_with_ticket(record, outcome, user_id, rejects, None);
    }

    /// Records an outcome, and that the user gets a ticket (for whom: `ticket`).
    pub fn done_with_ticket(
        &self,
        record: u64,
        outcome: Outcome,
        user_id: Option<&str>,
        rejects: Option<u64>,
        ticket: Option<&TicketFor>,
    ) {
        let entry = Entry {
            record,
            started: false,
            outcome: Some(outcome),
            user_id: user_id.map(str::to_string),
            rejects,
            ticket: ticket.is_some(),
            email: ticket.and_then(|t| t.email.clone()),
        };
        self.writer.append(Self::bytes(&entry));
    }

    /// Flushes everything and stops the writer.
    pub fn close(self) {
        self.writer.close();
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[tokio::test]
    async fn outcomes_and_in_flight_creates_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.ndjson");
        let (ledger, recovered) = Ledger::open(&path).unwrap();
        assert!(recovered.done.is_empty());
        ledger.started(1).await.unwrap();
        ledger.done(1, Outcome::Created, Some("auth0|1"), None);
        ledger.started(2).await.unwrap();
        ledger.done(3, Outcome::Rejected, None, Some(120));
        ledger.close();
        // A torn last line, as a crash mid-write leaves it.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"{\"record\":4,\"outc").unwrap();
        drop(file);
        let (ledger, recovered) = Ledger::open(&path).unwrap();
        assert_eq!(recovered.done.get(1), Some(Outcome::Created));
        assert_eq!(recovered.done.get(3), Some(Outcome::Rejected));
        assert_eq!(recovered.done.get(2), None);
        assert_eq!(recovered.done.len(), 2);
        assert!(recovered.in_flight.contains(&2) && !recovered.in_flight.contains(&1));
        assert_eq!(recovered.rejects_len, 120);
        ledger.done(2, Outcome::Created, Some("auth0|2"), None);
        ledger.close();
        let (_, recovered) = Ledger::open(&path).unwrap();
        assert!(recovered.in_flight.is_empty());
        assert_eq!(recovered.count(Outcome::Created), 2);
    }

    #[test]
    fn done_records_keep_their_outcome_across_pages_and_a_later_entry_wins() {
        let mut done = Done::default();
        assert!(done.is_empty() && done.get(0).is_none());
        let far = 1_000_000_007;
        for (record, outcome) in [
            (1, Outcome::Created),
            (Done::PAGE - 1, Outcome::Updated),
            (Done::PAGE, Outcome::Unchanged),
            (far, Outcome::Skipped),
            (0, Outcome::Rejected),
            (1, Outcome::Rejected),
        ] {
            done.insert(record, outcome);
        }
        assert_eq!(done.len(), 5, "record 1 counts once");
        assert_eq!(done.get(1), Some(Outcome::Rejected));
        assert_eq!(done.get(Done::PAGE - 1), Some(Outcome::Updated));
        assert_eq!(done.get(Done::PAGE), Some(Outcome::Unchanged));
        assert_eq!(done.get(far), Some(Outcome::Skipped));
        assert_eq!(done.get(far - 1), None);
        assert_eq!(done.get(2), None);
        assert_eq!(done.count(Outcome::Rejected), 2);
        assert_eq!(done.count(Outcome::Created), 0);
        assert_eq!(done.pages.len(), 3, "a page only where records are");
    }

    #[test]
    fn a_damaged_line_before_the_end_is_refused_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.ndjson");
        std::fs::write(
            &path,
            "{\"record\":1,\"outcome\":\"created\"}\n#garbage#\n{\"record\":2,\"outcome\":\"created\"}\n",
        )
        .unwrap();
        let error = Ledger::open(&path)
            .err()
            .expect("a damaged ledger is refused");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("line 2"), "{error}");
        // Left as it was, for the user to look at.
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("#garbage#")
        );
    }
}
