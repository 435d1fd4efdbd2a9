//! The sandbox tenant's user store: the truth, its email indexes, and the lagging search view.
//!
//! Facts ("GET /api/v2/users"): search is eventually consistent, while reads by id and by email
//! are immediately consistent. So the store keeps two views: `users` (the truth, read by id and
//! email) and `search` (what list/search sees), which receives every write only after
//! `search_lag`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::query::{Query, canonical_time};

/// A user object exactly as the API returns it.
pub type User = Map<String, Value>;

/// A user as the store keeps it: its JSON text, parsed again when read. A generated user costs
/// about 19 KB as a map but about 1.5 KB as text, which is what lets a million-user tenant (the
/// memory benchmarks) fit in a few gigabytes. Writes are rare next to reads of whole pages, and
/// a page of 100 users parses in well under a millisecond.
pub struct Stored {
    json: Box<str>,
    /// The canonical `created_at`, for the search view's index.
    created: Option<String>,
}

impl Stored {
    fn new(user: &User) -> Stored {
        let json = serde_json::to_string(user).expect("a JSON map always serializes");
        Stored {
            json: json.into_boxed_str(),
            created: created_key(user),
        }
    }

    /// The user as a map.
    pub fn user(&self) -> User {
        serde_json::from_str(&self.json).expect("the store holds only JSON it wrote")
    }

    /// The user as JSON text, exactly as the API returns it.
    pub fn json(&self) -> &str {
        &self.json
    }
}

/// How a connection stores users, which decides what create accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// A database connection (`provider: auth0`): users can be created with a password.
    Database { policy: PasswordPolicy },
    /// Social or enterprise: users arrive by logging in, not through `POST /users`.
    External,
}

/// Auth0's password strength policies (auth0.com/docs, "Password Strength in Auth0 Database
/// Connections"). The sandbox applies them on create and on password change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordPolicy {
    /// At least 8 characters with lower case, upper case and digits.
    Fair,
    /// At least 8 characters with three of: lower case, upper case, digits, special characters.
    Good,
}

impl PasswordPolicy {
    /// True when `password` satisfies the policy.
    pub fn accepts(self, password: &str) -> bool {
        let long_enough = password.chars().count() >= 8;
        let lower = password.chars().any(|c| c.is_lowercase());
        let upper = password.chars().any(|c| c.is_uppercase());
        let digit = password.chars().any(|c| c.is_ascii_digit());
        let special = password.chars().any(|c| !c.is_alphanumeric());
        match self {
            PasswordPolicy::Fair => long_enough && lower && upper && digit,
            PasswordPolicy::Good => {
                long_enough
                    && [lower, upper, digit, special]
                        .iter()
                        .filter(|x| **x)
                        .count()
                        >= 3
            }
        }
    }
}

/// A connection of the tenant.
#[derive(Debug, Clone)]
pub struct Connection {
    pub strategy: Strategy,
    pub requires_username: bool,
}

impl Connection {
    pub fn is_database(&self) -> bool {
        matches!(self.strategy, Strategy::Database { .. })
    }
}

/// The connections every sandbox has: the default database connection, a second database
/// connection, and one social and one enterprise connection for realistic exports.
fn default_connections() -> BTreeMap<String, Connection> {
    let list = [
        (
            "Username-Password-Authentication",
            Strategy::Database {
                policy: PasswordPolicy::Good,
            },
        ),
        (
            "legacy-db",
            Strategy::Database {
                policy: PasswordPolicy::Fair,
            },
        ),
        ("google-oauth2", Strategy::External),
        ("acme-saml", Strategy::External),
    ];
    list.into_iter()
        .map(|(name, strategy)| {
            (
                name.to_string(),
                Connection {
                    strategy,
                    requires_username: false,
                },
            )
        })
        .collect()
}

/// How list results are ordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub field: String,
    pub descending: bool,
}

impl Default for Sort {
    /// Auth0 does not document the order without `sort`; the sandbox uses `user_id`, which is
    /// stable (the task's rule: the sort key, then `user_id`).
    fn default() -> Self {
        Sort {
            field: "user_id".into(),
            descending: false,
        }
    }
}

/// One page of search results.
pub struct Page {
    pub users: Vec<User>,
    pub total: usize,
}

struct Pending {
    due: Instant,
    user_id: String,
    user: Option<Arc<Stored>>,
}

/// What list/search sees.
#[derive(Default)]
struct SearchView {
    users: BTreeMap<String, Arc<Stored>>,
    /// Canonical `created_at` → user_id → user, for range narrowing and created_at order.
    by_created: BTreeMap<String, BTreeMap<String, Arc<Stored>>>,
}

impl SearchView {
    fn put(&mut self, user_id: &str, user: Option<Arc<Stored>>) {
        if let Some(old) = self.users.remove(user_id)
            && let Some(key) = &old.created
            && let Some(ids) = self.by_created.get_mut(key)
        {
            ids.remove(user_id);
            if ids.is_empty() {
                self.by_created.remove(key);
            }
        }
        if let Some(user) = user {
            if let Some(key) = &user.created {
                self.by_created
                    .entry(key.clone())
                    .or_default()
                    .insert(user_id.to_string(), user.clone());
            }
            self.users.insert(user_id.to_string(), user);
        }
    }
}

/// The canonical form of a user's `created_at`, if it has a parseable one.
fn created_key(user: &User) -> Option<String> {
    let raw = user.get("created_at")?.as_str()?;
    let parsed = DateTime::parse_from_rfc3339(raw).ok()?;
    Some(canonical_time(parsed.with_timezone(&Utc)))
}

/// The tenant's users.
pub struct Store {
    users: BTreeMap<String, Arc<Stored>>,
    /// Exact email → user_ids, across connections (`users-by-email`).
    by_email: HashMap<String, BTreeSet<String>>,
    /// (connection, lower-cased email) → user_id, for the 409 on create.
    by_connection_email: HashMap<(String, String), String>,
    search: SearchView,
    pending: VecDeque<Pending>,
    search_lag: Duration,
    connections: BTreeMap<String, Connection>,
}

impl Store {
    pub fn new(search_lag: Duration) -> Self {
        Store {
            users: BTreeMap::new(),
            by_email: HashMap::new(),
            by_connection_email: HashMap::new(),
            search: SearchView::default(),
            pending: VecDeque::new(),
            search_lag,
            connections: default_connections(),
        }
    }

    /// Sets how long later writes take to reach the search view.
    pub fn set_search_lag(&mut self, lag: Duration) {
        self.search_lag = lag;
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn connection(&self, name: &str) -> Option<&Connection> {
        self.connections.get(name)
    }

    /// Registers a connection met in seeded data, with a strategy read from its provider.
    fn learn_connection(&mut self, name: &str, provider: Option<&str>) {
        if self.connections.contains_key(name) {
            return;
        }
        let strategy = match provider {
            Some("auth0") => Strategy::Database {
                policy: PasswordPolicy::Good,
            },
            _ => Strategy::External,
        };
        self.connections.insert(
            name.to_string(),
            Connection {
                strategy,
                requires_username: false,
            },
        );
    }

    pub fn get(&self, user_id: &str) -> Option<User> {
        self.users.get(user_id).map(|u| u.user())
    }

    /// True when a user with this id exists.
    pub fn contains(&self, user_id: &str) -> bool {
        self.users.contains_key(user_id)
    }

    /// Facts ("users-by-email"): exact match, every connection.
    pub fn by_email(&self, email: &str) -> Vec<User> {
        self.by_email
            .get(email)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| self.users.get(id).map(|u| u.user()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The user that already holds `email` in `connection`, if any.
    pub fn email_owner(&self, connection: &str, email: &str) -> Option<&str> {
        self.by_connection_email
            .get(&(connection.to_string(), email.to_lowercase()))
            .map(String::as_str)
    }

    /// Every user, sorted by user_id: the ground truth.
    pub fn all(&self) -> impl Iterator<Item = &Stored> {
        self.users.values().map(|u| &**u)
    }

    /// Inserts or replaces a user (seeding, create and update all come here); gives it back.
    pub fn put(&mut self, user: User) -> User {
        let user_id = user
            .get("user_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        for identity in identities(&user) {
            let provider = identity.get("provider").and_then(Value::as_str);
            if let Some(connection) = identity.get("connection").and_then(Value::as_str) {
                self.learn_connection(connection, provider);
            }
        }
        self.unindex(&user_id);
        if let Some(email) = user.get("email").and_then(Value::as_str) {
            self.by_email
                .entry(email.to_string())
                .or_default()
                .insert(user_id.clone());
            for connection in connections_of(&user) {
                self.by_connection_email
                    .insert((connection, email.to_lowercase()), user_id.clone());
            }
        }
        let stored = Arc::new(Stored::new(&user));
        self.users.insert(user_id.clone(), stored.clone());
        self.publish(user_id, Some(stored));
        user
    }

    /// Removes a user; true when there was one.
    pub fn delete(&mut self, user_id: &str) -> bool {
        let existed = self.unindex(user_id);
        if existed {
            self.users.remove(user_id);
            self.publish(user_id.to_string(), None);
        }
        existed
    }

    fn unindex(&mut self, user_id: &str) -> bool {
        let Some(old) = self.users.get(user_id).map(|u| u.user()) else {
            return false;
        };
        if let Some(email) = old.get("email").and_then(Value::as_str) {
            if let Some(ids) = self.by_email.get_mut(email) {
                ids.remove(user_id);
                if ids.is_empty() {
                    self.by_email.remove(email);
                }
            }
            for connection in connections_of(&old) {
                let key = (connection, email.to_lowercase());
                if self.by_connection_email.get(&key).map(String::as_str) == Some(user_id) {
                    self.by_connection_email.remove(&key);
                }
            }
        }
        true
    }

    /// Sends a write to the search view, now or after the lag.
    fn publish(&mut self, user_id: String, user: Option<Arc<Stored>>) {
        if self.search_lag.is_zero() {
            self.search.put(&user_id, user);
        } else {
            let due = Instant::now() + self.search_lag;
            self.pending.push_back(Pending { due, user_id, user });
        }
    }

    /// Applies the writes whose lag has passed.
    fn catch_up(&mut self) {
        let now = Instant::now();
        while self.pending.front().is_some_and(|p| p.due <= now) {
            let p = self.pending.pop_front().expect("front exists");
            self.search.put(&p.user_id, p.user);
        }
    }

    /// Runs a search over the (lagging) search view and returns one page.
    pub fn search(&mut self, query: &Query, sort: &Sort, offset: usize, limit: usize) -> Page {
        self.catch_up();
        let view = &self.search;
        let range = query.created_at_range();
        let by_created = sort.field == "created_at" || range.is_some();
        // A pure created_at range is fully answered by the index.
        let needs_test = !(by_created && query.is_created_at_range_only());
        let candidates: Box<dyn Iterator<Item = &Arc<Stored>>> = if by_created {
            let (lower, upper) = range.unwrap_or((Bound::Unbounded, Bound::Unbounded));
            Box::new(
                view.by_created
                    .range((lower, upper))
                    .flat_map(|(_, users)| users.values()),
            )
        } else {
            Box::new(view.users.values())
        };
        // Users are parsed only when the query must test them or the page needs them.
        let mut matching = candidates.filter_map(|stored| {
            if !needs_test {
                return Some((stored, None));
            }
            let user = stored.user();
            query.matches(&user).then_some((stored, Some(user)))
        });
        // Order by the sort key, then user_id. Two orders come straight from the indexes:
        // then only the page is kept, however many users match.
        let presorted = !sort.descending
            && ((sort.field == "user_id" && !by_created)
                || (sort.field == "created_at" && by_created));
        if presorted {
            let mut users = Vec::with_capacity(limit);
            let mut total = 0;
            for (stored, user) in matching.by_ref() {
                if total >= offset && users.len() < limit {
                    users.push(user.unwrap_or_else(|| stored.user()));
                }
                total += 1;
            }
            return Page { users, total };
        }
        let mut matches: Vec<(Option<SortKey>, User)> = matching
            .map(|(stored, user)| {
                let user = user.unwrap_or_else(|| stored.user());
                (sort_key(&user, &sort.field), user)
            })
            .collect();
        // Users without the sort field come last in both directions (Elasticsearch's default).
        matches.sort_by(|(ka, a), (kb, b)| {
            let by_key = match (ka, kb) {
                (None, None) => std::cmp::Ordering::Equal,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(_), None) => std::cmp::Ordering::Less,
                (Some(x), Some(y)) => {
                    let o = x.cmp(y);
                    if sort.descending { o.reverse() } else { o }
                }
            };
            by_key.then_with(|| user_id_of(a).cmp(user_id_of(b)))
        });
        let total = matches.len();
        let users = matches
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|(_, user)| user)
            .collect();
        Page { users, total }
    }
}

/// A comparable sort key: numbers compare numerically, dates by instant, strings as strings.
#[derive(PartialEq)]
enum SortKey {
    Number(f64),
    Text(String),
}

impl Eq for SortKey {}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SortKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (SortKey::Number(a), SortKey::Number(b)) => a.total_cmp(b),
            (SortKey::Text(a), SortKey::Text(b)) => a.cmp(b),
            (SortKey::Number(_), SortKey::Text(_)) => std::cmp::Ordering::Less,
            (SortKey::Text(_), SortKey::Number(_)) => std::cmp::Ordering::Greater,
        }
    }
}

fn sort_key(user: &User, field: &str) -> Option<SortKey> {
    match user.get(field)? {
        Value::Number(n) => n.as_f64().map(SortKey::Number),
        Value::String(s) if matches!(field, "created_at" | "updated_at" | "last_login") => {
            DateTime::parse_from_rfc3339(s)
                .map(|t| SortKey::Text(canonical_time(t.with_timezone(&Utc))))
                .ok()
        }
        Value::String(s) => Some(SortKey::Text(s.to_lowercase())),
        Value::Bool(b) => Some(SortKey::Number(f64::from(u8::from(*b)))),
        _ => None,
    }
}

pub fn user_id_of(user: &User) -> &str {
    user.get("user_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// A user's identities (empty when it has none).
pub fn identities(user: &User) -> impl Iterator<Item = &Map<String, Value>> {
    user.get("identities")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

/// The names of the connections a user has identities in.
pub fn connections_of(user: &User) -> Vec<String> {
    identities(user)
        .filter_map(|i| i.get("connection").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}
