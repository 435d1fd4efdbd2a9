//! Append-only NDJSON logs in the run state (the import ledger, the jobs journal, the
//! deletion ledger and its before-images): read back
//! entry by entry, a torn last line (a crash mid-write) dropped, a damaged whole line refused;
//! and appended to by an [`Appender`] with group commit (the ledger, the before-images).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::de::DeserializeOwned;

use super::{open_private, private_options};

/// Reads every entry of the log at `path` (none when it does not exist) into `each`, then
/// opens it (`0600`) for appending after its last whole line; returns the file and that length.
/// A whole line that is not a `T` was damaged outside a run: `InvalidData` naming the line and
/// `what` the entries are, rather than forget what follows it.
pub fn open_log<T: DeserializeOwned>(
    path: &Path,
    what: &str,
    mut each: impl FnMut(T),
) -> std::io::Result<(File, u64)> {
    let mut good_len = 0u64;
    if let Ok(file) = File::open(path) {
        let mut number = 0;
        good_len = whole_lines(BufReader::new(file), |line| {
            number += 1;
            let entry = serde_json::from_slice::<T>(line).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("line {number} is not {what} ({e})"),
                )
            })?;
            each(entry);
            Ok(())
        })?;
    }
    let file = open_private(private_options().create(true).append(true), path)?;
    // Drop a torn tail so new entries start on a fresh line.
    file.set_len(good_len)?;
    Ok((file, good_len))
}

/// Hands each whole line `reader` holds (with its `\n`) to `each`, stopping at a torn last
/// line (no `\n`: a crash mid-write); returns the length of the whole lines. An error of
/// `each` stops the reading and is returned.
pub fn whole_lines(
    mut reader: impl BufRead,
    mut each: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    let mut good_len = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || !line.ends_with(b"\n") {
            return Ok(good_len);
        }
        each(&line)?;
        good_len += n as u64;
    }
}

/// A request to an [`Appender`]'s writer: bytes to append, and who waits for them to be durable.
type Job = (
    Vec<u8>,
    Option<tokio::sync::oneshot::Sender<std::io::Result<()>>>,
);

/// Appends entries to an open log on a thread of its own, with group commit: each group of
/// pending entries is written and fsynced once, then its waiters are answered. A group that
/// fails (a full disk) is cut off the file again, so a torn entry is never followed by more.
pub struct Appender {
    tx: Option<std::sync::mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Appender {
    /// Starts the writer of `file` (as [`open_log`] returns it, `len` its good length);
    /// `failed` is logged when a group cannot be written.
    pub fn start(
        file: File,
        len: u64,
        name: &str,
        failed: &'static str,
    ) -> std::io::Result<Appender> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || write_loop(file, len, rx, failed))?;
        Ok(Appender {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Appends `bytes` (whole lines) with the next group; does not wait.
    pub fn append(&self, bytes: Vec<u8>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send((bytes, None));
        }
    }

    /// Appends `bytes` (nothing, to wait for what was sent before) and returns once they
    /// are on disk.
    pub async fn durable(&self, bytes: Vec<u8>) -> std::io::Result<()> {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        if let Some(tx) = &self.tx {
            let _ = tx.send((bytes, Some(done_tx)));
        }
        done_rx
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("the log writer stopped")))
    }

    /// Flushes everything and stops the writer.
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes each group of pending entries, fsyncs once, then answers the waiters. A group that
/// fails is cut off the file again (`len` is the length of the good entries).
fn write_loop(mut file: File, mut len: u64, rx: std::sync::mpsc::Receiver<Job>, failed: &str) {
    use std::io::Write;
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while let Ok(more) = rx.try_recv() {
            group.push(more);
        }
        let mut result = Ok(());
        for (bytes, _) in &group {
            if let Err(e) = file.write_all(bytes) {
                result = Err(e);
                break;
            }
        }
        if result.is_ok() {
            result = file.sync_data();
        }
        match &result {
            Ok(()) => {
                len += group
                    .iter()
                    .map(|(bytes, _)| bytes.len() as u64)
                    .sum::<u64>()
            }
            Err(_) => {
                let _ = file.set_len(len);
            }
        }
        for (_, waiter) in group {
            if let Some(waiter) = waiter {
                let answer = match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
                };
                let _ = waiter.send(answer);
            }
        }
        if let Err(error) = result {
            tracing::error!(%error, "{failed}");
        }
    }
}
