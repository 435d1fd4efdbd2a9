//! `export --include roles,organizations,permissions`: each user's roles, organization
//! memberships (with the member's roles) and direct permissions, added to the user's record.
//!
//! - **Cost follows roles and organizations, not users** (facts, "Roles, permissions,
//!   organizations"). Before any user is written, [`Store::gather`] lists the roles and reads
//!   each role's members, and lists the organizations and reads each one's members with their
//!   roles (`fields=user_id,roles`), 100 at a time with checkpoint paging: about
//!   `roles + organizations + assignments / 100` requests. Direct permissions can only be read
//!   one user at a time (`GET /users/{id}/permissions`): one request per user, made as each
//!   batch is written ([`Store::fetch_permissions`]).
//! - **On disk, not in memory.** The assignments go to an indexed SQLite table in the run
//!   state (`authz.sqlite`, 0600; the system's temporary directory without a state), and each
//!   batch of users is joined to it by `user_id` as it is written ([`Store::enrich`]). A
//!   million users' roles cost the page cache, not the heap.
//! - **Resumable.** Each role's and organization's next page is kept with what it gave, in one
//!   transaction: a resumed run goes on from there, and a page read twice adds nothing twice.
//!   Users whose permissions were read are kept too.
//! - **Names, sorted.** Role and organization ids differ between tenants, so a record holds
//!   names: `roles: ["admin", …]`, `organizations: [{"name", "roles": […]}, …]`,
//!   `permissions: [{"resource_server_identifier", "permission_name"}, …]`, each sorted, and
//!   present (maybe empty) on every user when asked for, so an import can tell "none" from
//!   "not exported".
//! - Memberships are read as the tenant's index has them, before the users: a role given while
//!   the export runs may be missing (see the README on eventual consistency).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::api::{ApiError, Checkpoint, Client, Listed, Permission};
use crate::state::StateDir;

/// The store's file in the run state.
pub const FILE: &str = "authz.sqlite";

/// The root keys `--include` may add.
pub const KEYS: [&str; 3] = ["roles", "organizations", "permissions"];

/// Roles or organizations read at once (each reads its pages one after another).
const AT_ONCE: usize = 8;

/// What `--include` adds to each user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Include {
    pub roles: bool,
    pub organizations: bool,
    pub permissions: bool,
}

impl Include {
    pub fn any(&self) -> bool {
        self.roles || self.organizations || self.permissions
    }

    /// The root keys added, in the order they are written.
    pub fn keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if self.roles {
            keys.push("roles");
        }
        if self.organizations {
            keys.push("organizations");
        }
        if self.permissions {
            keys.push("permissions");
        }
        keys
    }

    /// The scopes the reads need (spec: each call's security entries).
    pub fn scopes(&self) -> Vec<&'static str> {
        let mut scopes = Vec::new();
        if self.roles {
            scopes.extend(["read:roles", "read:users", "read:role_members"]);
        }
        if self.organizations {
            scopes.extend([
                "read:organizations",
                "read:organization_members",
                "read:organization_member_roles",
            ]);
        }
        if self.permissions && !scopes.contains(&"read:users") {
            scopes.push("read:users");
        }
        scopes
    }
}

impl FromStr for Include {
    type Err = String;

    fn from_str(s: &str) -> Result<Include, String> {
        let mut include = Include::default();
        for part in s.split(',').map(str::trim) {
            match part {
                "roles" => include.roles = true,
                "organizations" => include.organizations = true,
                "permissions" => include.permissions = true,
                "" => return Err("an empty name in the list".into()),
                other => {
                    return Err(format!(
                        "`{other}` is not one of roles, organizations, permissions"
                    ));
                }
            }
        }
        Ok(include)
    }
}

impl fmt::Display for Include {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.keys().join(","))
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    #[error("the assignments store {path}: {source}")]
    Store {
        path: String,
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// What the summary says of `--include`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuthzReport {
    pub include: String,
    pub roles: u64,
    pub organizations: u64,
    /// Role assignments and organization memberships read.
    pub assignments: u64,
    /// Requests the role and organization reads made, every run of the export together (give
    /// or take those in flight when a run was killed).
    pub requests: u64,
    /// Users whose direct permissions were read, one request each.
    pub permission_requests: u64,
}

/// One assignment as the table keeps it: user, kind, and two names (the role or organization,
/// and the member role or permission).
type Row = (String, i64, String, String);

/// Assignment kinds, as the table keeps them (their order is the record's key order).
const ROLE: i64 = 0;
const MEMBER: i64 = 1;
const MEMBER_ROLE: i64 = 2;
const PERMISSION: i64 = 3;

/// The assignments store (see the module docs).
pub struct Store {
    db: Mutex<Connection>,
    path: PathBuf,
    include: Include,
    /// The client's request count last added to the store's `requests` (see [`Store::spent`]).
    counted: AtomicU64,
    /// Kept alive while the store is open, when there is no run state.
    _temp: Option<tempfile::TempDir>,
}

impl Store {
    /// Opens the store in the run state (a new one unless `resumed`), or in a temporary
    /// directory without one.
    pub fn open(
        state: Option<&StateDir>,
        resumed: bool,
        include: Include,
    ) -> Result<Store, AuthzError> {
        let (path, temp) = match state {
            Some(state) => (state.file(FILE), None),
            None => {
                let temp = tempfile::tempdir().map_err(|e| store_error(Path::new(FILE), io(e)))?;
                (temp.path().join(FILE), Some(temp))
            }
        };
        if !resumed {
            remove(&path);
        }
        // Created private: SQLite gives its journal files the database file's mode.
        crate::state::open_private(
            crate::state::private_options()
                .read(true)
                .write(true)
                .create(true),
            &path,
        )
        .map_err(|e| store_error(&path, io(e)))?;
        let db = Connection::open(&path).map_err(|e| store_error(&path, e))?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA cache_size = -256; -- 256 KiB: lookups by user_id touch a few pages each
             CREATE TABLE IF NOT EXISTS source (
                 kind INTEGER NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL,
                 next TEXT, done INTEGER NOT NULL DEFAULT 0,
                 PRIMARY KEY (kind, id)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS assignment (
                 user_id TEXT NOT NULL, kind INTEGER NOT NULL, a TEXT NOT NULL, b TEXT NOT NULL,
                 PRIMARY KEY (user_id, kind, a, b)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS fetched (user_id TEXT PRIMARY KEY) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)
                 WITHOUT ROWID;",
        )
        .map_err(|e| store_error(&path, e))?;
        Ok(Store {
            db: Mutex::new(db),
            path,
            include,
            counted: AtomicU64::new(0),
            _temp: temp,
        })
    }

    /// Removes the store a run left in `state`, if any.
    pub fn discard(state: Option<&StateDir>) {
        if let Some(state) = state {
            remove(&state.file(FILE));
        }
    }

    /// Removes a finished export's store.
    pub fn remove(self) {
        let path = self.path.clone();
        drop(self);
        remove(&path);
    }

    fn failed(&self, e: rusqlite::Error) -> AuthzError {
        store_error(&self.path, e)
    }

    /// Runs `f` on the database, in a transaction.
    fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, AuthzError> {
        let mut db = self.db.lock().expect("store lock");
        let tx = db.transaction().map_err(|e| self.failed(e))?;
        let out = f(&tx).map_err(|e| self.failed(e))?;
        tx.commit().map_err(|e| self.failed(e))?;
        Ok(out)
    }

    fn meta(&self, key: &str) -> Result<Option<String>, AuthzError> {
        let db = self.db.lock().expect("store lock");
        db.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.failed(e))
    }

    /// Reads every role's members and every organization's members (as `--include` asks),
    /// from where an earlier run stopped.
    pub async fn gather(
        &self,
        client: &Client,
        cancel: &CancellationToken,
    ) -> Result<(), AuthzError> {
        self.counted
            .store(client.metrics().requests, Ordering::Relaxed);
        let result = self.gather_all(client, cancel).await;
        let spent = self.spent(client);
        self.write(|tx| add_to(tx, "requests", spent))?;
        result
    }

    /// The requests sent since the last call: added to the store's count in the transaction
    /// that keeps what they gave, so a run killed halfway still counts what it kept (the
    /// requests in flight at the kill are counted or not, as they were sent before or after
    /// the last page kept).
    fn spent(&self, client: &Client) -> u64 {
        let now = client.metrics().requests;
        now.saturating_sub(self.counted.fetch_max(now, Ordering::Relaxed))
    }

    async fn gather_all(
        &self,
        client: &Client,
        cancel: &CancellationToken,
    ) -> Result<(), AuthzError> {
        if self.include.roles && self.meta("roles_listed")?.is_none() {
            let roles = cancellable(cancel, client.roles()).await?;
            let spent = self.spent(client);
            self.write(|tx| {
                add_to(tx, "requests", spent)?;
                for role in &roles {
                    tx.execute(
                        "INSERT OR IGNORE INTO source (kind, id, name) VALUES (?1, ?2, ?3)",
                        params![ROLE, role.id, role.name],
                    )?;
                }
                set(tx, "roles_listed", "1")
            })?;
        }
        if self.include.organizations {
            let mut from = self.meta("organizations_next")?;
            while self.meta("organizations_listed")?.is_none() {
                let page = cancellable(cancel, client.organizations(from.as_deref())).await?;
                let spent = self.spent(client);
                self.write(|tx| {
                    add_to(tx, "requests", spent)?;
                    for org in &page.items {
                        tx.execute(
                            "INSERT OR IGNORE INTO source (kind, id, name) VALUES (?1, ?2, ?3)",
                            params![MEMBER, org.id, org.name],
                        )?;
                    }
                    match &page.next {
                        Some(next) => set(tx, "organizations_next", next),
                        None => set(tx, "organizations_listed", "1"),
                    }
                })?;
                from = page.next;
            }
        }
        let pending: Vec<(i64, String, String, Option<String>)> = {
            let db = self.db.lock().expect("store lock");
            let mut select = db
                .prepare("SELECT kind, id, name, next FROM source WHERE done = 0 ORDER BY kind, id")
                .map_err(|e| self.failed(e))?;
            select
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .and_then(|rows| rows.collect())
                .map_err(|e| self.failed(e))?
        };
        let mut sources = futures::stream::iter(pending)
            .map(|(kind, id, name, next)| self.read_source(client, cancel, kind, id, name, next))
            .buffer_unordered(AT_ONCE);
        while let Some(done) = sources.next().await {
            done?;
        }
        Ok(())
    }

    /// Reads one role's or organization's members, page after page from `next`.
    async fn read_source(
        &self,
        client: &Client,
        cancel: &CancellationToken,
        kind: i64,
        id: String,
        name: String,
        mut next: Option<String>,
    ) -> Result<(), AuthzError> {
        loop {
            let (rows, after): (Vec<Row>, Option<String>) = if kind == ROLE {
                let page: Checkpoint<String> =
                    cancellable(cancel, client.role_users(&id, next.as_deref())).await?;
                let rows = page
                    .items
                    .into_iter()
                    .map(|user| (user, ROLE, name.clone(), String::new()))
                    .collect();
                (rows, page.next)
            } else {
                let page =
                    cancellable(cancel, client.organization_members(&id, next.as_deref())).await?;
                let mut rows = Vec::new();
                for member in page.items {
                    for role in &member.roles {
                        rows.push((
                            member.user_id.clone(),
                            MEMBER_ROLE,
                            name.clone(),
                            role.name.clone(),
                        ));
                    }
                    rows.push((member.user_id, MEMBER, name.clone(), String::new()));
                }
                (rows, page.next)
            };
            let spent = self.spent(client);
            self.write(|tx| {
                add_to(tx, "requests", spent)?;
                for (user, kind, a, b) in &rows {
                    tx.execute(
                        "INSERT OR IGNORE INTO assignment (user_id, kind, a, b) VALUES (?1, ?2, ?3, ?4)",
                        params![user, kind, a, b],
                    )?;
                }
                tx.execute(
                    "UPDATE source SET next = ?3, done = ?4 WHERE kind = ?1 AND id = ?2",
                    params![kind, id, after, after.is_none()],
                )?;
                Ok(())
            })?;
            match after {
                Some(after) => next = Some(after),
                None => return Ok(()),
            }
        }
    }

    /// Whether the users' direct permissions are read (`--include permissions`).
    pub fn reads_permissions(&self) -> bool {
        self.include.permissions
    }

    /// Reads the direct permissions of the users not read yet (one request each), with as many
    /// in flight as the client's workers.
    pub async fn fetch_permissions(
        &self,
        client: &Client,
        users: &[Listed],
        cancel: &CancellationToken,
    ) -> Result<(), AuthzError> {
        if !self.include.permissions {
            return Ok(());
        }
        let todo: Vec<&str> = {
            let db = self.db.lock().expect("store lock");
            let mut known = db
                .prepare_cached("SELECT 1 FROM fetched WHERE user_id = ?1")
                .map_err(|e| self.failed(e))?;
            let mut todo = Vec::new();
            for user in users {
                let seen = known
                    .exists([user.user_id.as_str()])
                    .map_err(|e| self.failed(e))?;
                if !seen {
                    todo.push(user.user_id.as_str());
                }
            }
            todo
        };
        let at_once = client.workers().goal().max(1);
        let mut reads = futures::stream::iter(todo)
            .map(|user_id| async move {
                let found = match cancellable(cancel, client.user_permissions(user_id)).await {
                    Ok(found) => found,
                    // Deleted since it was listed: it has none.
                    Err(ApiError::Status { status: 404, .. }) => Vec::new(),
                    Err(e) => return Err(AuthzError::Api(e)),
                };
                Ok((user_id, found))
            })
            .buffer_unordered(at_once);
        while let Some(read) = reads.next().await {
            let (user_id, found): (&str, Vec<Permission>) = read?;
            self.write(|tx| {
                for p in &found {
                    tx.execute(
                        "INSERT OR IGNORE INTO assignment (user_id, kind, a, b) VALUES (?1, ?2, ?3, ?4)",
                        params![user_id, PERMISSION, p.resource_server_identifier, p.permission_name],
                    )?;
                }
                tx.execute("INSERT OR IGNORE INTO fetched (user_id) VALUES (?1)", [user_id])?;
                add_to(tx, "permission_requests", 1)
            })?;
        }
        Ok(())
    }

    /// The users with what `--include` adds to each, as the tenant's text with the keys
    /// appended.
    pub fn enrich(&self, users: &[Listed]) -> Result<Vec<Listed>, AuthzError> {
        let db = self.db.lock().expect("store lock");
        let mut select = db
            .prepare_cached(
                "SELECT kind, a, b FROM assignment WHERE user_id = ?1 ORDER BY kind, a, b",
            )
            .map_err(|e| self.failed(e))?;
        let mut out = Vec::with_capacity(users.len());
        for user in users {
            let rows: Vec<(i64, String, String)> = select
                .query_map([user.user_id.as_str()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .and_then(|rows| rows.collect())
                .map_err(|e| self.failed(e))?;
            let added = self.added(rows);
            out.push(append_keys(user, &added));
        }
        Ok(out)
    }

    /// The keys `--include` adds, from a user's rows (sorted by kind, then names).
    fn added(&self, rows: Vec<(i64, String, String)>) -> Vec<(&'static str, Value)> {
        let mut roles = Vec::new();
        let mut organizations: Vec<(String, Vec<String>)> = Vec::new();
        let mut permissions = Vec::new();
        for (kind, a, b) in rows {
            match kind {
                ROLE => roles.push(Value::String(a)),
                MEMBER => organizations.push((a, Vec::new())),
                MEMBER_ROLE => {
                    // After the memberships (kind order): each finds its organization.
                    match organizations.iter_mut().find(|(name, _)| *name == a) {
                        Some((_, roles)) => roles.push(b),
                        None => organizations.push((a, vec![b])),
                    }
                }
                PERMISSION => permissions.push(json!({
                    "resource_server_identifier": a,
                    "permission_name": b,
                })),
                _ => {}
            }
        }
        let mut added = Vec::new();
        if self.include.roles {
            added.push(("roles", Value::Array(roles)));
        }
        if self.include.organizations {
            organizations.sort();
            let organizations = organizations
                .into_iter()
                .map(|(name, mut roles)| {
                    roles.sort();
                    json!({"name": name, "roles": roles})
                })
                .collect();
            added.push(("organizations", Value::Array(organizations)));
        }
        if self.include.permissions {
            added.push(("permissions", Value::Array(permissions)));
        }
        added
    }

    /// What the summary says.
    pub fn report(&self) -> Result<AuthzReport, AuthzError> {
        let db = self.db.lock().expect("store lock");
        let count = |sql: &str| -> Result<u64, AuthzError> {
            db.query_row(sql, [], |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
                .map_err(|e| self.failed(e))
        };
        let meta = |key: &str| -> Result<u64, AuthzError> {
            db.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .map(|v| v.and_then(|v| v.parse().ok()).unwrap_or(0))
            .map_err(|e| self.failed(e))
        };
        Ok(AuthzReport {
            include: self.include.to_string(),
            roles: count(&format!("SELECT COUNT(*) FROM source WHERE kind = {ROLE}"))?,
            organizations: count(&format!(
                "SELECT COUNT(*) FROM source WHERE kind = {MEMBER}"
            ))?,
            assignments: count(&format!(
                "SELECT COUNT(*) FROM assignment WHERE kind IN ({ROLE}, {MEMBER})"
            ))?,
            requests: meta("requests")?,
            permission_requests: meta("permission_requests")?,
        })
    }
}

/// The user's text with `added` appended as root keys (the tenant's text is kept as it is).
fn append_keys(user: &Listed, added: &[(&str, Value)]) -> Listed {
    let json = user.json();
    let body = json.trim_end();
    let body = body.strip_suffix('}').unwrap_or(body).trim_end();
    let mut text = String::with_capacity(json.len() + 64);
    text.push_str(body);
    let mut empty = body.ends_with('{');
    for (key, value) in added {
        if !empty {
            text.push(',');
        }
        empty = false;
        text.push_str(&json!(key).to_string());
        text.push(':');
        text.push_str(&value.to_string());
    }
    text.push('}');
    Listed::from_json(&text).expect("a user with keys appended is still a user")
}

fn set(tx: &rusqlite::Transaction<'_>, key: &str, value: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

fn add_to(tx: &rusqlite::Transaction<'_>, key: &str, n: u64) -> rusqlite::Result<()> {
    let now: Option<String> = tx
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?;
    let total = now.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + n;
    set(tx, key, &total.to_string())
}

async fn cancellable<T>(
    cancel: &CancellationToken,
    call: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    tokio::select! {
        _ = cancel.cancelled() => Err(ApiError::Cancelled),
        done = call => done,
    }
}

fn remove(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

fn io(e: std::io::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

fn store_error(path: &Path, source: rusqlite::Error) -> AuthzError {
    AuthzError::Store {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_lists_parse_and_name_a_bad_part() {
        let all: Include = "roles,organizations,permissions".parse().unwrap();
        assert!(all.roles && all.organizations && all.permissions);
        assert_eq!(all.to_string(), "roles,organizations,permissions");
        let some: Include = "permissions, roles".parse().unwrap();
        assert_eq!(some.keys(), ["roles", "permissions"]);
        assert!(
            "roles,groups"
                .parse::<Include>()
                .unwrap_err()
                .contains("`groups`")
        );
        assert!("roles,".parse::<Include>().is_err());
    }

    #[test]
    fn keys_are_appended_to_the_tenants_text() {
        let user = Listed::from_json(r#"{"user_id":"auth0|1","email":"a@x"} "#).unwrap();
        let added = [("roles", json!(["a", "b"])), ("organizations", json!([]))];
        let out = append_keys(&user, &added);
        assert_eq!(
            out.json(),
            r#"{"user_id":"auth0|1","email":"a@x","roles":["a","b"],"organizations":[]}"#
        );
        assert_eq!(out.user_id, "auth0|1");
    }

    #[test]
    fn a_users_rows_become_sorted_names() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let include: Include = "roles,organizations,permissions".parse().unwrap();
        let store = Store::open(Some(&state), false, include).unwrap();
        store
            .write(|tx| {
                for (user, kind, a, b) in [
                    ("u1", ROLE, "zeta", ""),
                    ("u1", ROLE, "alpha", ""),
                    ("u1", MEMBER, "org-b", ""),
                    ("u1", MEMBER_ROLE, "org-b", "viewer"),
                    ("u1", MEMBER_ROLE, "org-b", "admin"),
                    ("u1", MEMBER, "org-a", ""),
                    ("u1", PERMISSION, "https://api", "write:x"),
                    ("u1", PERMISSION, "https://api", "read:x"),
                    ("u2", ROLE, "other", ""),
                ] {
                    tx.execute(
                        "INSERT OR IGNORE INTO assignment VALUES (?1, ?2, ?3, ?4)",
                        params![user, kind, a, b],
                    )?;
                }
                Ok(())
            })
            .unwrap();
        let users = [
            Listed::from_json(r#"{"user_id":"u1"}"#).unwrap(),
            Listed::from_json(r#"{"user_id":"u3"}"#).unwrap(),
        ];
        let out = store.enrich(&users).unwrap();
        let first: Value = serde_json::from_str(out[0].json()).unwrap();
        assert_eq!(
            first,
            json!({
                "user_id": "u1",
                "roles": ["alpha", "zeta"],
                "organizations": [
                    {"name": "org-a", "roles": []},
                    {"name": "org-b", "roles": ["admin", "viewer"]},
                ],
                "permissions": [
                    {"resource_server_identifier": "https://api", "permission_name": "read:x"},
                    {"resource_server_identifier": "https://api", "permission_name": "write:x"},
                ],
            })
        );
        let second: Value = serde_json::from_str(out[1].json()).unwrap();
        assert_eq!(
            second,
            json!({"user_id": "u3", "roles": [], "organizations": [], "permissions": []})
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(state.file(FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
