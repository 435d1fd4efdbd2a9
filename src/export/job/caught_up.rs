//! The users the catch-up pass wrote (see [`super`]): their copies in the job's file are left
//! out. Their `user_id`s are held in memory (about 100 bytes each; the users themselves are in
//! the output, not here) and, in a run state, appended to `caught-up.ndjson` (one JSON string
//! per line) and made durable before the checkpoint that counts them, so a resumed run reads
//! back exactly the users its output holds: the first `count` lines, where `count` is what the
//! checkpoint counts (a run killed between the two left more, which are cut off).

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use serde_json::value::RawValue;

use crate::api::Listed;
use crate::state::StateDir;
use crate::state::log::open_log;

/// The file name in the run state.
pub const FILE: &str = "caught-up.ndjson";

/// The user_ids the catch-up pass wrote, and where they are kept.
#[derive(Debug, Default)]
pub struct CaughtUp {
    ids: HashSet<String>,
    log: Option<(File, PathBuf)>,
}

impl CaughtUp {
    /// The set as the checkpoint counts it: the first `count` ids kept in `state` (the file
    /// cut to them), or an empty set without a state.
    pub fn open(state: Option<&StateDir>, count: u64) -> io::Result<CaughtUp> {
        let Some(state) = state else {
            return Ok(CaughtUp::default());
        };
        let path = state.file(FILE);
        let mut lines: Vec<Box<RawValue>> = Vec::new();
        let (file, _) = open_log(&path, "a user_id", |line| lines.push(line))?;
        if (lines.len() as u64) < count {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} holds {} users but the checkpoint counts {count}; the run state was \
                     changed outside this run (start over with --fresh)",
                    path.display(),
                    lines.len()
                ),
            ));
        }
        let mut ids = HashSet::new();
        let mut counted = 0u64;
        for line in lines.iter().take(count as usize) {
            let id: String = serde_json::from_str(line.get()).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: a line is not a user_id ({e})", path.display()),
                )
            })?;
            // Each line is as `record` wrote it: the JSON string and a `\n`.
            counted += line.get().len() as u64 + 1;
            ids.insert(id);
        }
        file.set_len(counted)?;
        Ok(CaughtUp {
            ids,
            log: Some((file, path)),
        })
    }

    /// Records a batch of users the catch-up wrote: on disk (durably) first, then in memory.
    pub fn record(&mut self, users: &[Listed]) -> io::Result<()> {
        if let Some((file, _)) = &mut self.log {
            let mut text = Vec::with_capacity(users.len() * 40);
            for user in users {
                serde_json::to_writer(&mut text, &user.user_id).map_err(io::Error::other)?;
                text.push(b'\n');
            }
            file.write_all(&text)?;
            file.sync_data()?;
        }
        self.ids
            .extend(users.iter().map(|user| user.user_id.clone()));
        Ok(())
    }

    /// Whether the catch-up wrote this user.
    pub fn contains(&self, user_id: &str) -> bool {
        self.ids.contains(user_id)
    }

    #[cfg(test)]
    fn len(&self) -> u64 {
        self.ids.len() as u64
    }

    /// Where the ids are kept, for messages.
    pub fn name(&self) -> String {
        self.log
            .as_ref()
            .map_or("the catch-up's user ids".into(), |(_, p)| {
                p.display().to_string()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(ids: &[&str]) -> Vec<Listed> {
        ids.iter()
            .map(|id| Listed::from_json(&format!("{{\"user_id\":{id:?}}}")).unwrap())
            .collect()
    }

    #[test]
    fn a_resumed_set_holds_what_the_checkpoint_counts_and_nothing_a_killed_run_added() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let mut set = CaughtUp::open(Some(&state), 0).unwrap();
        set.record(&users(&["auth0|a", "auth0|b\nodd"])).unwrap();
        // Written, but the run died before its checkpoint counted it.
        set.record(&users(&["auth0|c"])).unwrap();
        drop(set);

        let mut set = CaughtUp::open(Some(&state), 2).unwrap();
        assert!(set.contains("auth0|a") && set.contains("auth0|b\nodd"));
        assert!(!set.contains("auth0|c"));
        set.record(&users(&["auth0|d"])).unwrap();
        drop(set);
        let set = CaughtUp::open(Some(&state), 3).unwrap();
        assert_eq!(set.len(), 3);
        assert!(set.contains("auth0|d") && !set.contains("auth0|c"));

        let e = CaughtUp::open(Some(&state), 9).unwrap_err();
        assert!(e.to_string().contains("--fresh"), "{e}");
    }
}
