//! Password-change tickets (`--tickets FILE`): once every record has its outcome, each user
//! the run created without a password anyone knows (a random one, or none through a job) gets
//! a ticket, written to FILE as `{"user_id", "email", "ticket"}` lines for the user's own
//! mailer.
//!
//! - **Once per user in FILE, across crashes.** The users come from the import ledger, in its
//!   order (the ledger is no longer written to by then, so every read gives the same order);
//!   FILE's complete lines are the cursor: a resumed run skips as many users as FILE has lines
//!   (a torn last line is cut off first) and goes on from there. Lines are written in that
//!   order and synced one by one.
//! - **What a crash can cost.** Auth0 lists no tickets, so a ticket the tenant made whose line
//!   was never written cannot be found again: the resumed run asks for another, and the first
//!   expires unused. At most [`IN_FLIGHT`] users can be asked for twice that way.
//! - **Secrets.** A ticket URL lets whoever holds it set the password: FILE is created `0600`,
//!   and a URL is never logged nor kept anywhere else. A user the tenant no longer knows gets a
//!   line with `"ticket": null` and the reason, so the cursor stays true.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use futures::StreamExt;
use secrecy::ExposeSecret;
use serde_json::json;

use super::ImportError;
use super::ledger::{TicketDue, tickets_due};
use crate::api::{ApiError, Client};
use crate::state::{open_private, private_options};

/// The scope `POST /api/v2/tickets/password-change` needs (spec), checked before the import.
pub const SCOPE: &str = "create:user_tickets";

/// Ticket requests in flight at once.
pub const IN_FLIGHT: usize = 4;

/// Facts ("Other bulk needs"): a ticket lives 432,000 s (5 days) unless told otherwise.
pub const DEFAULT_TTL_SEC: u64 = 432_000;

/// `--tickets FILE --ticket-ttl SECS`.
#[derive(Debug, Clone)]
pub struct TicketSpec {
    pub file: PathBuf,
    pub ttl_sec: u64,
}

/// What the tickets stage did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TicketCounts {
    /// Lines written by this run.
    pub written: u64,
    /// Lines in FILE in all (this run's and earlier runs').
    pub total: u64,
    /// Users the tenant made no ticket for (their lines say why).
    pub failed: u64,
}

/// Gives every user the ledger names a ticket, after those FILE already holds.
pub async fn issue(
    client: &Client,
    ledger: &Path,
    spec: &TicketSpec,
) -> Result<TicketCounts, ImportError> {
    let write_failed = |source| ImportError::Write {
        path: spec.file.display().to_string(),
        source,
    };
    let (mut file, done) = open(&spec.file).map_err(write_failed)?;
    let due = tickets_due(ledger).map_err(|source| ImportError::Write {
        path: ledger.display().to_string(),
        source,
    })?;
    let mut counts = TicketCounts {
        total: done,
        ..TicketCounts::default()
    };
    let mut asked = futures::stream::iter(due.skip(done as usize))
        .map(|due| async move {
            let due = due?;
            let answer = client
                .password_change_ticket(&due.user_id, spec.ttl_sec)
                .await;
            Ok::<_, std::io::Error>((due, answer))
        })
        .buffered(IN_FLIGHT);
    while let Some(next) = asked.next().await {
        let (due, answer) = next.map_err(|source| ImportError::Write {
            path: ledger.display().to_string(),
            source,
        })?;
        let line = match answer {
            Ok(ticket) => line(&due, Some(ticket.expose_secret()), None),
            Err(ApiError::Status {
                status: 404,
                message,
                ..
            }) => {
                counts.failed += 1;
                line(&due, None, Some(&message))
            }
            Err(e) => return Err(ImportError::Api(e)),
        };
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(write_failed)?;
        counts.written += 1;
        counts.total += 1;
    }
    Ok(counts)
}

fn line(due: &TicketDue, ticket: Option<&str>, error: Option<&str>) -> String {
    let mut entry = json!({"user_id": due.user_id, "email": due.email, "ticket": ticket});
    if let Some(error) = error {
        entry["error"] = error.into();
    }
    let mut line = entry.to_string();
    line.push('\n');
    line
}

/// Opens FILE (`0600`) for appending after its complete lines; returns it and how many there
/// are.
fn open(path: &Path) -> std::io::Result<(File, u64)> {
    let mut file = open_private(private_options().read(true).write(true).create(true), path)?;
    let (mut lines, mut good) = (0u64, 0u64);
    {
        let mut reader = BufReader::new(&file);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || !line.ends_with(b"\n") {
                break;
            }
            lines += 1;
            good += n as u64;
        }
    }
    file.set_len(good)?;
    file.seek(SeekFrom::Start(good))?;
    Ok((file, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_cut_and_complete_lines_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tickets.ndjson");
        std::fs::write(&path, "{\"user_id\":\"a\"}\n{\"user_id\":\"b\"}\n{\"user_").unwrap();
        let (mut file, lines) = open(&path).unwrap();
        assert_eq!(lines, 2);
        file.write_all(b"{\"user_id\":\"c\"}\n").unwrap();
        drop(file);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"user_id\":\"a\"}\n{\"user_id\":\"b\"}\n{\"user_id\":\"c\"}\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
