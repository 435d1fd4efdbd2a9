//! One chunk of a deletion, in three steps: look every user up (many at once), write the
//! before-images of those found and make them durable (one fsync), then delete them (many at
//! once). Each record ends deleted, skipped (`not_found`, `duplicate`) or rejected (returned,
//! for the [rejects file](super::rejects)). Skips and rejects are logged for the first few
//! records of each code ([`Logged`]); the summary counts them all.

use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use crate::api::{ApiError, Client, Removal, User};
use crate::export::list::users_named;

use super::DeleteError;
use super::images::{BeforeImages, Pending};
use super::ledger::Tally;
use super::rejects::Rejected;
use crate::warnings::Warnings;

/// Which skips and rejects of a run get a log line: the first few of each code.
#[derive(Debug, Default)]
pub struct Logged {
    pub skipped: Warnings,
    pub rejected: Warnings,
}

/// What a chunk did: its counts, the lines it rejected, and in a dry run its plan lines (the
/// shape of `import --plan`), in list order.
#[derive(Debug, Default)]
pub(super) struct Done {
    pub tally: Tally,
    pub rejected: Vec<Rejected>,
    pub plan: Vec<Value>,
    /// A dry run: `plan` is kept.
    planning: bool,
}

impl Done {
    fn plan(&mut self, line: Value) {
        if self.planning {
            self.plan.push(line);
        }
    }

    fn skip(&mut self, logged: &Logged, record: &Record, code: &str, why: String) {
        match code {
            "duplicate" => self.tally.duplicates += 1,
            _ => self.tally.not_found += 1,
        }
        if logged.skipped.log(code) {
            tracing::info!(
                "Line {}: skipped {} ({code}): {why}",
                record.line,
                record.key
            );
        }
        self.plan(json!({
            "line": record.line, "action": "skipped", "user_id": record.key,
            "reason": {"code": code, "message": why},
        }));
    }

    fn reject(&mut self, logged: &Logged, record: &Record, code: &'static str, message: String) {
        self.tally.rejected += 1;
        if logged.rejected.log(code) {
            tracing::warn!("Line {}: rejected ({code}): {message}", record.line);
        }
        self.plan(json!({
            "line": record.line, "action": "rejected", "user_id": record.key,
            "reason": {"code": code, "message": message},
        }));
        self.rejected.push(Rejected {
            line: record.line,
            key: record.key.clone(),
            code,
            message,
        });
    }
}

/// One user to delete: its position in the list and its key (a user_id or an email).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub line: u64,
    pub key: String,
}

/// What the lookup of a record found.
enum Looked {
    /// One user, as the tenant returned it.
    User {
        id: String,
        user: User,
    },
    /// No user now, but an earlier run wrote this one's image and may have deleted it.
    Gone(String),
    Missing,
    /// An email several users share: which one is meant is not for this tool to guess.
    Ambiguous(Vec<String>),
    /// The tenant refused the lookup of this record (a malformed id).
    Refused(String),
}

/// Deletes the users of `records` (see the module docs); `images` is `None` for a dry run,
/// which looks up and logs only. `pending` (what an earlier run left unrecorded) loses the
/// users this chunk settles.
pub(super) async fn run(
    client: &Client,
    records: &[Record],
    pending: &mut Pending,
    images: Option<&mut BeforeImages>,
    logged: &Logged,
) -> Result<Done, DeleteError> {
    let goal = client.workers().goal();
    let looked: Vec<Looked> = futures::stream::iter(records)
        .map(|record| lookup(client, &record.key, pending))
        .buffered(goal)
        .try_collect()
        .await?;
    let dry_run = images.is_none();
    let mut done = Done {
        planning: dry_run,
        ..Done::default()
    };
    let mut seen = HashSet::new();
    // The users to delete, with whether their image is still to be written.
    let mut doomed: Vec<(&Record, String, Option<String>)> = Vec::new();
    for (record, looked) in records.iter().zip(looked) {
        let line = record.line;
        match looked {
            // (The guard notes the user as seen: the first time, the next arms handle it.)
            Looked::User { id, .. } | Looked::Gone(id) if !seen.insert(id.clone()) => {
                done.skip(logged, record, "duplicate", format!("{id} listed before"));
            }
            Looked::User { id, user } => {
                let image = match pending.take(&id) {
                    Some(_) => None,
                    None => Some(serde_json::to_string(&user).expect("a JSON map serializes")),
                };
                if dry_run {
                    done.tally.deleted += 1;
                    let (email, connection) = describe(&user);
                    let parts: Vec<&str> = [email, connection].into_iter().flatten().collect();
                    match parts.is_empty() {
                        true => tracing::info!("Line {line}: would delete {id}"),
                        false => {
                            tracing::info!("Line {line}: would delete {id} ({})", parts.join(", "))
                        }
                    }
                    done.plan(json!({
                        "line": line, "action": "would_delete", "user_id": id,
                        "email": email, "connection": connection,
                    }));
                } else {
                    doomed.push((record, id, image));
                }
            }
            Looked::Gone(id) => {
                pending.take(&id);
                done.tally.deleted += 1;
                tracing::debug!("Line {line}: deleted {id} (by the run before)");
            }
            Looked::Missing => done.skip(
                logged,
                record,
                "not_found",
                "no such user in the tenant".into(),
            ),
            Looked::Ambiguous(ids) => {
                let message = format!(
                    "{} is the email of {} users ({}); list the user_id to delete instead",
                    record.key,
                    ids.len(),
                    ids.join(", ")
                );
                done.reject(logged, record, "ambiguous_email", message);
            }
            Looked::Refused(message) => done.reject(logged, record, "lookup_refused", message),
        }
    }
    let Some(images) = images else {
        return Ok(done);
    };
    // No user of the chunk is deleted before every image of it is durable.
    images
        .append(doomed.iter().filter_map(|(_, _, image)| image.as_deref()))
        .map_err(|source| DeleteError::File {
            path: images.path().to_path_buf(),
            source,
        })?;
    let removed: Vec<Result<Removal, String>> = futures::stream::iter(&doomed)
        .map(|(_, id, _)| async move {
            let _permit = client.workers().acquire().await;
            per_record(client.delete_user(id).await)
        })
        .buffered(goal)
        .try_collect()
        .await?;
    for ((record, id, _), removed) in doomed.iter().zip(removed) {
        let line = record.line;
        match removed {
            Ok(Removal::Deleted) => {
                done.tally.deleted += 1;
                tracing::debug!("Line {line}: deleted {id}");
            }
            // Gone between the lookup and the delete: someone else's doing.
            Ok(Removal::AlreadyGone) => {
                done.skip(logged, record, "not_found", "deleted meanwhile".into())
            }
            Err(message) => {
                done.reject(logged, record, "delete_refused", format!("{id}: {message}"));
            }
        }
    }
    Ok(done)
}

/// Looks a record's key up, holding a worker permit for the request.
async fn lookup(client: &Client, key: &str, pending: &Pending) -> Result<Looked, ApiError> {
    let _permit = client.workers().acquire().await;
    let users = match per_record(users_named(client, key).await)? {
        Ok(users) => users,
        Err(message) => return Ok(Looked::Refused(message)),
    };
    let id_of = |user: &User| {
        user.get("user_id")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Ok(match <[User; 1]>::try_from(users) {
        Ok([user]) => Looked::User {
            id: id_of(&user),
            user,
        },
        Err(users) if users.is_empty() => match pending.find(key) {
            Some(id) => Looked::Gone(id.to_string()),
            None => Looked::Missing,
        },
        Err(users) => Looked::Ambiguous(users.iter().map(id_of).collect()),
    })
}

/// A call's answer, with a refusal that concerns this record alone (a 4xx other than 401,
/// 403 and 429) as its message; any other error stops the run.
fn per_record<T>(answer: Result<T, ApiError>) -> Result<Result<T, String>, ApiError> {
    match answer {
        Ok(value) => Ok(Ok(value)),
        Err(ApiError::Status {
            status,
            error_code,
            message,
            ..
        }) if (400..500).contains(&status) && !matches!(status, 401 | 403 | 429) => {
            Ok(Err(format!("{status} {error_code}: {message}")))
        }
        Err(e) => Err(e),
    }
}

/// The email and connection of a user, for the dry run's lines.
fn describe(user: &User) -> (Option<&str>, Option<&str>) {
    let email = user.get("email").and_then(Value::as_str);
    let connection = user
        .get("identities")
        .and_then(|i| i.get(0))
        .and_then(|i| i.get("connection"))
        .and_then(Value::as_str);
    (email, connection)
}
