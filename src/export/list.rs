//! `--users FILE`: each line a user_id or an email, fetched directly rather than searched, so
//! the export sees every change at once (the search index lags). Blank lines and `#` comments
//! are skipped; a user the tenant does not hold is a warning with its line (the first five; a
//! last line says how many more), and counts towards the exit code.

use std::io::BufRead;
use std::path::Path;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiError, Client, Listed, User};
use crate::warnings::{Warnings, unlogged_lines};

use super::ExportError;
use super::output::Batches;
use super::walk::WalkError;

/// Lines read, fetched and written at a time: only one chunk of the list is in memory.
const CHUNK: usize = 100;

/// Exports the users `list` names, from the checkpoint's `lines_done` on.
pub(super) async fn export(
    client: &Client,
    list: &Path,
    out: &mut Batches<'_>,
    cancel: &CancellationToken,
) -> Result<(), ExportError> {
    let read_err = |source| ExportError::UsersFile {
        path: list.display().to_string(),
        source,
    };
    let file = std::fs::File::open(list).map_err(read_err)?;
    // The list streams: a first pass counts the lines for the progress bar.
    let total = std::io::BufReader::new(file).lines().count() as u64;
    out.progress.set_total(total);
    out.progress.set_done(out.checkpoint.lines_done);
    let start = out.checkpoint.lines_done as usize;
    let file = std::fs::File::open(list).map_err(read_err)?;
    let mut lines = std::io::BufReader::new(file).lines().skip(start);
    // A list of thousands of stale ids logs a few, not thousands, of lines.
    let warnings = Warnings::default();
    for index in 0.. {
        let chunk: Vec<String> = lines
            .by_ref()
            .take(CHUNK)
            .collect::<Result<_, _>>()
            .map_err(read_err)?;
        if chunk.is_empty() {
            break;
        }
        if cancel.is_cancelled() {
            return Err(WalkError::Api(ApiError::Cancelled).into());
        }
        let found = fetch(client, &chunk, start + index * CHUNK + 1, &warnings).await?;
        let missing = found.iter().filter(|u| u.is_empty()).count() as u64;
        let users: Vec<Listed> = found
            .into_iter()
            .flatten()
            .map(|user| Listed::from_user(&user))
            .collect();
        let lines = chunk.len() as u64;
        out.write(&users, lines, |checkpoint| {
            checkpoint.not_found += missing;
            checkpoint.lines_done += lines;
        })
        .await?;
    }
    for line in unlogged_lines(&warnings.unlogged(), "the summary counts them all") {
        tracing::warn!("{line}");
    }
    Ok(())
}

/// The users each line of a chunk names (its first line numbered `first_line`), in the list's
/// order: none for a line that names no user in the tenant. Blank and `#` lines give no entry.
async fn fetch(
    client: &Client,
    chunk: &[String],
    first_line: usize,
    warnings: &Warnings,
) -> Result<Vec<Vec<User>>, ExportError> {
    let found = futures::stream::iter(chunk.iter().enumerate())
        .map(|(offset, line)| async move {
            let Some(key) = key_of(line) else {
                return Ok(None);
            };
            // Every request holds a worker permit, as the walk's do.
            let _permit = client.workers().acquire().await;
            let users = users_named(client, key).await?;
            if users.is_empty() && warnings.log("not_found") {
                tracing::warn!(
                    line = first_line + offset,
                    user = key,
                    "No such user in the tenant; skipped."
                );
            }
            Ok::<_, ApiError>(Some(users))
        })
        .buffered(client.workers().goal())
        .filter_map(|r| async move { r.transpose() })
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(WalkError::from)?;
    Ok(found)
}

/// The user a line of a users list names (its user_id or email, trimmed); `None` for a blank
/// line or a `#` comment. `delete --users` reads its list by the same rule.
pub fn key_of(line: &str) -> Option<&str> {
    let key = line.trim();
    (!key.is_empty() && !key.starts_with('#')).then_some(key)
}

/// The users a key names: the user with that user_id, or every user with that email (a key
/// with an `@` and no `|`), ordered by user_id; none when the tenant holds none. Both reads
/// are immediately consistent (facts, "users-by-email").
pub async fn users_named(client: &Client, key: &str) -> Result<Vec<User>, ApiError> {
    if key.contains('@') && !key.contains('|') {
        let mut users = client.users_by_email(key).await?;
        users.sort_by(|a, b| {
            a.get("user_id")
                .map(|v| v.to_string())
                .cmp(&b.get("user_id").map(|v| v.to_string()))
        });
        Ok(users)
    } else {
        Ok(client.get_user(key).await?.into_iter().collect())
    }
}
