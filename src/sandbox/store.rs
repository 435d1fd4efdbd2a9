//! The sandbox tenant's user store: the truth, its email indexes, and the lagging search view.
//!
//! Facts ("GET /api/v2/users"): search is eventually consistent, while reads by id and by email
//! are immediately consistent. So the store keeps two views: `users` (the truth, read by id and
//! email) and `search` (what list/search sees), which receives every write only after
//! `search_lag`.
//!
//! The search view is indexed for a million users: an order-statistic index on
//! (`created_at`, `user_id`), for everyone and per connection (`index.rs`), answers the
//! queries an export sends in O(log N + page) (see [`Store::search`]). Writes keep it current
//! one user at a time; a sandbox loading its users builds it once ([`Store::put_all`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::credentials::Credential;
use super::index::{Entry, OrderIndex};
use super::query::{Query, canonical_time, text_leaves};

/// A user object exactly as the API returns it.
pub type User = Map<String, Value>;

/// A user as the store keeps it: its JSON text, parsed again when read. A generated user costs
/// about 19 KB as a map but about 1.5 KB as text, which is what lets a million-user tenant (the
/// memory benchmarks) fit in a few gigabytes. Writes are rare next to reads of whole pages, and
/// a page of 100 users parses in well under a millisecond.
///
/// Beside the text it keeps what the search view's indexes are keyed by, worked out once.
pub struct Stored {
    json: Box<str>,
    /// The store's key: the `user_id` text (empty when the user has none).
    id: Box<str>,
    /// The `created_at` instant in UNIX milliseconds, if it has a parseable one.
    created_ms: Option<i64>,
    /// The texts at `identities.connection`, each once, for the per-connection indexes.
    connections: Box<[Box<str>]>,
    /// True when `user_id` is a text equal to `id`: then a `user_id:P*` test is a byte-prefix
    /// test of `id`.
    text_id: bool,
    /// True when `id` is its own lower case: then the byte order of ids (the index's) is also
    /// the order of a `user_id` sort, which compares lower case.
    folded_id: bool,
}

impl Stored {
    pub(super) fn new(id: &str, user: &User) -> Stored {
        let json = serde_json::to_string(user).expect("a JSON map always serializes");
        let mut connections = Vec::new();
        if let Some(identities) = user.get("identities") {
            text_leaves(identities, &["connection"], &mut connections);
        }
        connections.sort_unstable();
        connections.dedup();
        let text_id = user.get("user_id").and_then(Value::as_str) == Some(id);
        Stored {
            json: json.into_boxed_str(),
            id: id.into(),
            created_ms: created_ms(user),
            connections: connections.into_iter().map(Box::from).collect(),
            text_id,
            folded_id: id.to_lowercase() == id,
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

    /// The store's key: the user's `user_id`.
    pub fn id(&self) -> &str {
        &self.id
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
    /// Facts ("Connections"): `con_` + 16 alphanumerics; derived from the name, so that a
    /// test (or a client rehearsing against the sandbox) can rely on it.
    pub id: String,
    pub strategy: Strategy,
    /// The spec's `strategy` (`ConnectionStrategyEnum`): `auth0` for a database connection.
    pub strategy_name: String,
    pub requires_username: bool,
}

impl Connection {
    fn new(name: &str, strategy: Strategy, strategy_name: &str) -> Connection {
        Connection {
            id: connection_id(name),
            strategy,
            strategy_name: strategy_name.to_string(),
            requires_username: false,
        }
    }

    pub fn is_database(&self) -> bool {
        matches!(self.strategy, Strategy::Database { .. })
    }
}

/// The id of the connection named `name`: `con_` and 16 letters and digits drawn from the MD5
/// of the name, the same on every sandbox.
pub fn connection_id(name: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let digest = md5::compute(name.as_bytes());
    let tail: String = digest
        .0
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    format!("con_{tail}")
}

/// The connections every sandbox has: the default database connection, a second database
/// connection, and one social and one enterprise connection for realistic exports.
fn default_connections() -> BTreeMap<String, Connection> {
    let good = Strategy::Database {
        policy: PasswordPolicy::Good,
    };
    let fair = Strategy::Database {
        policy: PasswordPolicy::Fair,
    };
    let list = [
        ("Username-Password-Authentication", good, "auth0"),
        ("legacy-db", fair, "auth0"),
        ("google-oauth2", Strategy::External, "google-oauth2"),
        ("acme-saml", Strategy::External, "samlp"),
    ];
    list.into_iter()
        .map(|(name, strategy, strategy_name)| {
            (
                name.to_string(),
                Connection::new(name, strategy, strategy_name),
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

/// One page of search results: the users as stored, so the caller can send their JSON text
/// as it is (and parse it, if it must, after letting go of the store).
pub struct Page {
    pub users: Vec<Arc<Stored>>,
    pub total: usize,
}

struct Pending {
    due: Instant,
    user_id: String,
    user: Option<Arc<Stored>>,
}

/// What list/search sees, indexed for the searches an export sends (see [`Store::search`]).
#[derive(Default)]
struct SearchView {
    users: BTreeMap<String, Arc<Stored>>,
    /// Every user with a `created_at`, by (`created_at`, `user_id`).
    created: OrderIndex,
    /// The same, one index per connection a user has an identity in.
    by_connection: HashMap<Box<str>, OrderIndex>,
    /// Users whose `user_id` is not the text of their key: while there is one, `user_id`
    /// prefixes are tested and `user_id` orders sorted, not read from the index.
    odd_ids: usize,
    /// Users whose `user_id` has upper case: while there is one, `user_id` orders are sorted
    /// (they compare lower case), not read from the index.
    cased_ids: usize,
}

impl SearchView {
    /// The view of `users`, built in O(N log N).
    fn build(users: &BTreeMap<String, Arc<Stored>>) -> SearchView {
        let mut view = SearchView {
            users: users.clone(),
            ..SearchView::default()
        };
        let mut created = Vec::new();
        let mut by_connection: HashMap<Box<str>, Vec<Entry>> = HashMap::new();
        for user in users.values() {
            view.odd_ids += usize::from(!user.text_id);
            view.cased_ids += usize::from(!user.folded_id);
            let Some(ms) = user.created_ms else {
                continue;
            };
            let entry = Entry {
                ms,
                user: user.clone(),
            };
            for connection in &user.connections {
                by_connection
                    .entry(connection.clone())
                    .or_default()
                    .push(entry.clone());
            }
            created.push(entry);
        }
        let sorted = |mut entries: Vec<Entry>| {
            // Ids are unique, so the order is total.
            entries.sort_unstable_by(|a, b| a.ms.cmp(&b.ms).then_with(|| a.id().cmp(b.id())));
            OrderIndex::from_sorted(entries)
        };
        view.created = sorted(created);
        view.by_connection = by_connection
            .into_iter()
            .map(|(connection, entries)| (connection, sorted(entries)))
            .collect();
        view
    }

    fn put(&mut self, user_id: &str, user: Option<Arc<Stored>>) {
        if let Some(old) = self.users.remove(user_id) {
            self.unindex(&old);
        }
        if let Some(user) = user {
            self.index(&user);
            self.users.insert(user_id.to_string(), user);
        }
    }

    fn index(&mut self, user: &Arc<Stored>) {
        self.odd_ids += usize::from(!user.text_id);
        self.cased_ids += usize::from(!user.folded_id);
        let Some(ms) = user.created_ms else {
            return;
        };
        let entry = || Entry {
            ms,
            user: user.clone(),
        };
        self.created.insert(entry());
        for connection in &user.connections {
            match self.by_connection.get_mut(connection) {
                Some(index) => index.insert(entry()),
                None => {
                    let mut index = OrderIndex::default();
                    index.insert(entry());
                    self.by_connection.insert(connection.clone(), index);
                }
            }
        }
    }

    fn unindex(&mut self, user: &Stored) {
        self.odd_ids -= usize::from(!user.text_id);
        self.cased_ids -= usize::from(!user.folded_id);
        let Some(ms) = user.created_ms else {
            return;
        };
        self.created.remove(ms, &user.id);
        for connection in &user.connections {
            if let Some(index) = self.by_connection.get_mut(connection) {
                index.remove(ms, &user.id);
            }
        }
    }
}

/// A user's `created_at` in UNIX milliseconds, if it has a parseable one. Milliseconds, as
/// Auth0 stores them and as the query's date bounds are; the same instant the canonical text
/// `YYYY-MM-DDTHH:MM:SS.mmmZ` names.
fn created_ms(user: &User) -> Option<i64> {
    let raw = user.get("created_at")?.as_str()?;
    let parsed = DateTime::parse_from_rfc3339(raw).ok()?;
    Some(parsed.timestamp_millis())
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
    /// Each user's credential, by user_id: kept beside the users, so that no response, dump
    /// or evidence route can ever carry it.
    credentials: HashMap<String, Credential>,
    /// Inside [`Store::put_all`]: writes skip the search view, which is rebuilt after.
    loading: bool,
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
            credentials: HashMap::new(),
            loading: false,
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
        // An identity's `provider` is its connection's strategy (`auth0`, `google-oauth2`,
        // `samlp`, ...); without one the sandbox calls it `custom`.
        let strategy_name = provider.unwrap_or("custom");
        self.connections.insert(
            name.to_string(),
            Connection::new(name, strategy, strategy_name),
        );
    }

    /// Every connection, by name.
    pub fn connections(&self) -> impl Iterator<Item = (&str, &Connection)> {
        self.connections.iter().map(|(n, c)| (n.as_str(), c))
    }

    /// The connection whose id is `id`, with its name.
    pub fn connection_by_id(&self, id: &str) -> Option<(&str, &Connection)> {
        self.connections().find(|(_, c)| c.id == id)
    }

    /// The credential a user signs in with, if any (never part of the user's JSON).
    pub fn credential(&self, user_id: &str) -> Option<&Credential> {
        self.credentials.get(user_id)
    }

    /// Sets (or replaces) a user's credential.
    pub fn set_credential(&mut self, user_id: &str, credential: Credential) {
        self.credentials.insert(user_id.to_string(), credential);
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
        let stored = Arc::new(Stored::new(&user_id, &user));
        self.users.insert(user_id.clone(), stored.clone());
        self.publish(user_id, Some(stored));
        user
    }

    /// Inserts or replaces many users at once, as [`Store::put`] of each in turn would, but
    /// builds the search view's indexes once at the end (sorting, rather than a million
    /// inserts at random places): how a sandbox loads its seed files and generated users.
    /// Writes still waiting for the search lag are applied first.
    pub fn put_all(&mut self, users: impl IntoIterator<Item = User>) {
        self.pending.iter_mut().for_each(|p| p.due = Instant::now());
        self.catch_up();
        // Not published one by one: the view is rebuilt from the truth below.
        self.loading = true;
        for user in users {
            self.put(user);
        }
        self.loading = false;
        self.search = SearchView::build(&self.users);
    }

    /// Removes a user; true when there was one.
    pub fn delete(&mut self, user_id: &str) -> bool {
        let existed = self.unindex(user_id);
        if existed {
            self.users.remove(user_id);
            self.credentials.remove(user_id);
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
        if self.loading {
            return;
        }
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
    ///
    /// A search with a `created_at` span (or sorted by `created_at`) reads the users of that
    /// span from the `(created_at, user_id)` index, or from one connection's index when the
    /// query names the connection. When the query is nothing but the span, the connection and
    /// (inside one instant) a `user_id` prefix, the index answers it exactly: the total is a
    /// difference of two ranks and the page a slice, O(log N + page), for each order an export
    /// uses (`created_at` either way, `user_id` either way inside one instant). Any other
    /// query still tests each user of the span, as any other order still sorts them.
    pub fn search(&mut self, query: &Query, sort: &Sort, offset: usize, limit: usize) -> Page {
        self.catch_up();
        let view = &self.search;
        let span = query.created_at_ms();
        if sort.field == "created_at" || span.is_some() {
            return view.search_created(query, span.unwrap_or((None, None)), sort, offset, limit);
        }
        if matches!(query.root, crate::query::Node::All) && sort == &Sort::default() {
            // Everyone, by user_id: the page straight from the map (offsets stop at 1,000).
            let users = view.users.values().skip(offset).take(limit);
            return Page {
                users: users.cloned().collect(),
                total: view.users.len(),
            };
        }
        let candidates = view.users.values();
        // Without a span, the user_id order of the map is the ascending order.
        let presorted = sort == &Sort::default();
        search_candidates(query, candidates, true, presorted, sort, offset, limit)
    }
}

impl SearchView {
    /// [`Store::search`] for a query with a `created_at` span `lo..=hi` (ms, open when `None`).
    fn search_created(
        &self,
        query: &Query,
        (lo, hi): (Option<i64>, Option<i64>),
        sort: &Sort,
        offset: usize,
        limit: usize,
    ) -> Page {
        let narrowing = query.narrowing();
        let empty = OrderIndex::default();
        let index = match &narrowing.connection {
            // No user has an identity there: nothing can match.
            Some(connection) => self
                .by_connection
                .get(connection.as_str())
                .unwrap_or(&empty),
            None => &self.created,
        };
        let mut start = index.rank(|e| lo.is_some_and(|lo| e.ms < lo));
        let mut end = index.rank(|e| hi.is_none_or(|hi| e.ms <= hi)).max(start);
        // One instant throughout: its users are in user_id order, the order a user_id sort
        // gives too when every id is its own lower case.
        let instant = match (
            index.get(start),
            end.checked_sub(1).and_then(|p| index.get(p)),
        ) {
            (Some(first), Some(last)) if start < end && first.ms == last.ms => Some(first.ms),
            _ => None,
        };
        let ids_in_order = instant.is_some() && self.odd_ids == 0 && self.cased_ids == 0;
        let mut exact = narrowing.exact;
        if let Some(prefix) = &narrowing.user_id_prefix {
            match instant.filter(|_| self.odd_ids == 0) {
                // The ids starting with the prefix are one run of the instant's ids.
                Some(t) => {
                    let before = |e: &Entry| e.ms < t || (e.ms == t && e.id() < prefix.as_str());
                    start = index.rank(before);
                    end = index
                        .rank(|e| before(e) || (e.ms == t && e.id().starts_with(prefix.as_str())))
                        .max(start);
                }
                None => exact = false,
            }
        }
        let by_id = sort.field == "user_id" && ids_in_order;
        if !exact {
            let candidates = index.range(start, end).map(|e| &e.user);
            let presorted = (sort.field == "created_at" || by_id) && !sort.descending;
            return search_candidates(query, candidates, true, presorted, sort, offset, limit);
        }
        let total = end - start;
        let users: Vec<Arc<Stored>> = if sort.field == "created_at" && sort.descending {
            newest_first(index, start, end, offset, limit)
        } else if sort.field == "created_at" || by_id {
            let (from, to) = if sort.descending {
                (
                    end.saturating_sub(offset + limit).max(start),
                    end.saturating_sub(offset).max(start),
                )
            } else {
                (start + offset.min(total), (start + offset + limit).min(end))
            };
            let mut page: Vec<Arc<Stored>> =
                index.range(from, to).map(|e| e.user.clone()).collect();
            if sort.descending {
                page.reverse();
            }
            page
        } else {
            // Another order: every user of the span matches, sort them all.
            let candidates = index.range(start, end).map(|e| &e.user);
            return search_candidates(query, candidates, false, false, sort, offset, limit);
        };
        Page { users, total }
    }
}

/// The page of `created_at` descending (ties by user_id ascending, as every sort breaks them)
/// among index positions `start..end`: from the instant that holds the `offset`-th newest
/// user, each instant's users in index order, instant after instant towards the oldest. Each
/// instant costs one rank, so a page costs O(instants on it x log N).
fn newest_first(
    index: &OrderIndex,
    start: usize,
    end: usize,
    offset: usize,
    limit: usize,
) -> Vec<Arc<Stored>> {
    let mut users = Vec::with_capacity(limit);
    if offset >= end - start {
        return users;
    }
    let rank_of = |t: i64| index.rank(|e| e.ms < t).max(start);
    // The offset-th newest sits at ascending position end - 1 - offset; its instant's users
    // from `first` to `last` (exclusive) follow those of every newer instant.
    let t = index.get(end - 1 - offset).expect("inside the index").ms;
    let mut last = index.rank(|e| e.ms <= t).min(end);
    let mut first = rank_of(t);
    let mut skip = offset - (end - last);
    while users.len() < limit {
        let take = (last - first - skip).min(limit - users.len());
        users.extend(
            index
                .range(first + skip, first + skip + take)
                .map(|e| e.user.clone()),
        );
        skip = 0;
        if first == start {
            break;
        }
        last = first;
        let t = index.get(first - 1).expect("inside the index").ms;
        first = rank_of(t);
    }
    users
}

/// Tests (when `test`) each candidate and returns the page of the matches in `sort` order.
/// `presorted`: the candidates already come in that order, so only the page is kept, however
/// many match; otherwise every match is sorted.
fn search_candidates<'a>(
    query: &Query,
    candidates: impl Iterator<Item = &'a Arc<Stored>>,
    test: bool,
    presorted: bool,
    sort: &Sort,
    offset: usize,
    limit: usize,
) -> Page {
    // Users are parsed only when the query must test them or the order needs them.
    let mut matching = candidates.filter_map(|stored| {
        if !test {
            return Some((stored, None));
        }
        let user = stored.user();
        query.matches(&user).then_some((stored, Some(user)))
    });
    if presorted {
        let mut users = Vec::with_capacity(limit);
        let mut total = 0;
        for (stored, _) in matching.by_ref() {
            if total >= offset && users.len() < limit {
                users.push(stored.clone());
            }
            total += 1;
        }
        return Page { users, total };
    }
    let mut matches: Vec<(Option<SortKey>, &Arc<Stored>)> = matching
        .map(|(stored, user)| {
            let user = user.unwrap_or_else(|| stored.user());
            (sort_key(&user, &sort.field), stored)
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
        // The store's key is the user_id text (empty without one), as `user_id_of` reads it.
        by_key.then_with(|| a.id().cmp(b.id()))
    });
    let total = matches.len();
    let users = matches
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(_, stored)| stored.clone())
        .collect();
    Page { users, total }
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use serde_json::json;

    fn user_id_of(user: &User) -> &str {
        user.get("user_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The answer without indexes: every user tested, sorted by the key then user_id. Without a
    /// span the default order is the byte order of ids (the map's), and with a span or a
    /// created_at sort only users with a created_at take part, as the search has always done.
    fn brute(
        store: &Store,
        query: &Query,
        sort: &Sort,
        offset: usize,
        limit: usize,
    ) -> (usize, Vec<String>) {
        let by_created = sort.field == "created_at" || query.created_at_ms().is_some();
        let mut users: Vec<User> = store
            .all()
            .filter(|s| !by_created || s.created_ms.is_some())
            .map(Stored::user)
            .filter(|u| query.matches(u))
            .collect();
        if by_created || sort != &Sort::default() {
            let keyed: Vec<Option<SortKey>> =
                users.iter().map(|u| sort_key(u, &sort.field)).collect();
            let mut order: Vec<usize> = (0..users.len()).collect();
            order.sort_by(|&a, &b| {
                let by_key = match (&keyed[a], &keyed[b]) {
                    (None, None) => std::cmp::Ordering::Equal,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (Some(x), Some(y)) if sort.descending => y.cmp(x),
                    (Some(x), Some(y)) => x.cmp(y),
                };
                by_key.then_with(|| user_id_of(&users[a]).cmp(user_id_of(&users[b])))
            });
            users = order.into_iter().map(|i| users[i].clone()).collect();
        }
        let ids = users.iter().skip(offset).take(limit);
        (
            users.len(),
            ids.map(|u| user_id_of(u).to_string()).collect(),
        )
    }

    /// A few instants, so that many users share one (a bulk import) and ranges cut through.
    const INSTANTS: [&str; 6] = [
        "2020-01-01T00:00:00.000Z",
        "2020-01-01T00:00:00.001Z",
        "2021-06-15T12:30:00.500Z",
        "2021-06-15T12:30:01.000Z",
        "2022-02-02T02:02:02.002Z",
        "2023-12-31T23:59:59.999Z",
    ];

    fn random_user(rng: &mut ChaCha8Rng, n: usize, cased: bool) -> User {
        let hex = "0123456789abcdef";
        let mut id: String = (0..4)
            .map(|_| hex.as_bytes()[rng.random_range(0..16)] as char)
            .collect();
        if cased && rng.random_bool(0.2) {
            id = id.to_uppercase();
        }
        let created = match rng.random_range(0..20) {
            0 => None,
            // The same instants written another way: parsed, not compared as text.
            1 => Some("2021-06-15T14:30:00.5+02:00".to_string()),
            2 => Some("2020-01-01T00:00:00Z".to_string()),
            _ => Some(INSTANTS[rng.random_range(0..INSTANTS.len())].to_string()),
        };
        let connections: Vec<&str> = match rng.random_range(0..10) {
            0 => vec![],
            1 => vec!["A", "B"],
            2 => vec!["C"],
            3..=5 => vec!["B"],
            _ => vec!["A"],
        };
        let mut user = json!({
            "user_id": format!("auth0|{id}{n}"),
            "identities": connections.iter().map(|c| json!({"connection": c})).collect::<Vec<_>>(),
            "updated_at": INSTANTS[rng.random_range(0..INSTANTS.len())],
            "app_metadata": {"plan": if rng.random_bool(0.3) { "pro" } else { "free" }},
        });
        if let Some(created) = created {
            user["created_at"] = created.into();
        }
        user.as_object().cloned().expect("an object")
    }

    fn random_query(rng: &mut ChaCha8Rng) -> String {
        let bound = |rng: &mut ChaCha8Rng| match rng.random_range(0..8) {
            0 => "*".to_string(),
            1 => "2021-06-15".to_string(),
            _ => INSTANTS[rng.random_range(0..INSTANTS.len())].to_string(),
        };
        let range = if rng.random_bool(0.3) {
            let t = INSTANTS[rng.random_range(0..INSTANTS.len())];
            format!("created_at:[{t} TO {t}]")
        } else {
            let (a, b) = (bound(rng), bound(rng));
            let open = if rng.random_bool(0.5) { '[' } else { '{' };
            let close = if rng.random_bool(0.5) { ']' } else { '}' };
            format!("created_at:{open}{a} TO {b}{close}")
        };
        let mut parts = vec![range];
        if rng.random_bool(0.3) {
            let c = ["A", "B", "C", "Z"][rng.random_range(0..4)];
            parts.push(format!("identities.connection:\"{c}\""));
        }
        if rng.random_bool(0.3) {
            let prefix = ["auth0\\|", "auth0\\|a", "auth0\\|3f", "x"][rng.random_range(0..4)];
            parts.push(format!("user_id:{prefix}*"));
        }
        if rng.random_bool(0.2) {
            parts.push("app_metadata.plan:\"pro\"".into());
        }
        if rng.random_bool(0.1) {
            parts.push("_exists_:created_at".into());
        }
        let q = parts.join(" AND ");
        match rng.random_range(0..4) {
            // The exporter's shape: the user's query in parentheses, ANDed with the range.
            0 if parts.len() > 1 => format!("({}) AND {}", parts[1..].join(" AND "), parts[0]),
            1 => String::new(),
            _ => q,
        }
    }

    #[test]
    fn indexed_search_answers_as_a_test_of_every_user_does() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let sorts = [
            ("created_at", false),
            ("created_at", true),
            ("user_id", false),
            ("user_id", true),
            ("updated_at", false),
        ];
        for round in 0..3 {
            // Upper-case ids in the last round: then user_id orders cannot come from the index.
            let cased = round == 2;
            let mut store = Store::new(Duration::ZERO);
            let initial: Vec<User> = (0..250).map(|i| random_user(&mut rng, i, cased)).collect();
            let mut n = initial.len();
            // Loaded in bulk (as a sandbox starts) or one by one (as the API writes).
            if round == 1 {
                store.put_all(initial);
            } else {
                initial.into_iter().for_each(|user| {
                    store.put(user);
                });
            }
            for step in 0..150 {
                // Writes between searches: new users, changed ones, deletions.
                for _ in 0..3 {
                    match rng.random_range(0..3) {
                        0 => {
                            store.put(random_user(&mut rng, n, cased));
                            n += 1;
                        }
                        1 => {
                            let id = format!("{}", rng.random_range(0..n));
                            let victim = store
                                .all()
                                .find(|s| s.id().ends_with(&id))
                                .map(|s| s.id().to_string());
                            if let Some(victim) = victim {
                                store.delete(&victim);
                            }
                        }
                        _ => {
                            let Some(mut user) = store
                                .all()
                                .nth(rng.random_range(0..store.len()))
                                .map(Stored::user)
                            else {
                                continue;
                            };
                            let fresh = random_user(&mut rng, n, cased);
                            for key in ["created_at", "identities"] {
                                match fresh.get(key) {
                                    Some(v) => user.insert(key.into(), v.clone()),
                                    None => user.shift_remove(key),
                                };
                            }
                            store.put(user);
                        }
                    }
                }
                let q = random_query(&mut rng);
                let query = Query::parse(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
                let (field, descending) = sorts[rng.random_range(0..sorts.len())];
                let sort = Sort {
                    field: field.into(),
                    descending,
                };
                let limit = [1, 3, 100][rng.random_range(0..3)];
                let offset = rng.random_range(0..store.len() / 2);
                let offset = if step % 2 == 0 { offset % 7 } else { offset };
                let got = store.search(&query, &sort, offset, limit);
                let want = brute(&store, &query, &sort, offset, limit);
                let ids: Vec<String> = got.users.iter().map(|u| u.id().to_string()).collect();
                assert_eq!(
                    (got.total, ids),
                    want,
                    "round {round} step {step}: q={q} sort={sort:?} offset={offset} limit={limit}"
                );
            }
        }
    }

    #[test]
    fn a_write_reaches_the_index_only_after_the_search_lag() {
        let mut store = Store::new(Duration::from_secs(3600));
        let user = json!({"user_id": "auth0|a", "created_at": INSTANTS[0], "identities": [{"connection": "A"}]});
        store.put(user.as_object().cloned().unwrap());
        let query = Query::parse(&format!("created_at:[{} TO *]", INSTANTS[0])).unwrap();
        let page = store.search(&query, &Sort::default(), 0, 10);
        assert_eq!((page.total, page.users.len()), (0, 0), "still lagging");
        store.set_search_lag(Duration::ZERO);
        for pending in &mut store.pending {
            pending.due = Instant::now();
        }
        let page = store.search(&query, &Sort::default(), 0, 10);
        assert_eq!(page.total, 1);
    }
}
