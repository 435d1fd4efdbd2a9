//! The sandbox tenant: a local, faithful implementation of the Management API v2 users subset.
//!
//! It serves the tests (started in-process on `127.0.0.1:0`), the demo, and users who rehearse
//! a job before running it on production. Every behaviour that mirrors Auth0 names the rule of
//! `AUTH0-FACTS.md` (or the OpenAPI spec) it follows; where both are silent it is stricter.
//!
//! ```no_run
//! # async fn demo() -> Result<(), auth0_bulk::sandbox::SandboxError> {
//! use auth0_bulk::sandbox::{Sandbox, SandboxOptions};
//! let sandbox = Sandbox::start(SandboxOptions { generate: 100, ..Default::default() }).await?;
//! println!("{}", sandbox.domain());
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```

mod authz;
mod connections;
mod credentials;
pub mod error;
mod export_users;
pub mod generate;
mod generate_authz;
mod import_users;
mod index;
mod jobs;
mod organizations;
mod paging;
mod profile;
pub mod query;
mod ratelimit;
mod roles;
mod routes;
mod server;
mod store;
mod tickets;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use ratelimit::{Group, GroupLimit};
pub use store::{User, connection_id};

use ratelimit::{Limits, TokenBucket};
use store::Store;

/// The bucket of a sandbox started without `rate`: requests per second, and its size.
///
/// Facts ("Rate limits"): every response carries the `x-ratelimit-*` headers, so a tenant with
/// no limit to rehearse still sends them, from a bucket no single client meets: a test or a
/// benchmark on one machine sends far fewer than 10,000 requests a second. (Auth0's largest
/// plan allows 50 at once and 16/s.) A client that learns the limit from the headers (`--rate
/// auto`) then sees a full bucket on every answer, so it never waits.
pub const DEFAULT_RATE: f64 = 10_000.0;
pub const DEFAULT_BURST: u32 = 10_000;

/// Facts ("Token"): every scope a Management API token of the sandbox can carry, and what it
/// carries unless [`SandboxOptions::scopes`] says fewer.
pub const SCOPES: &[&str] = &[
    "read:users",
    "create:users",
    "update:users",
    "update:users_app_metadata",
    "delete:users",
    "read:connections",
    "create:user_tickets",
    // The spec's `security` of the roles, resource-server and organization operations.
    "read:roles",
    "create:roles",
    "update:roles",
    "read:role_members",
    "create:role_members",
    "delete:role_members",
    "read:resource_servers",
    "create:resource_servers",
    "read:organizations",
    "read:organizations_summary",
    "create:organizations",
    "read:organization_members",
    "create:organization_members",
    "delete:organization_members",
    "read:organization_member_roles",
    "create:organization_member_roles",
    "delete:organization_member_roles",
];

/// Facts ("Bulk import jobs"): about 400k users an hour with 2 jobs, so about 55 users a
/// second for each job.
pub const DEFAULT_JOB_RATE: f64 = 55.0;

/// How a sandbox behaves. `Default` is a quiet, unlimited, fault-free tenant on `127.0.0.1:0`.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// NDJSON files of users as the API returns them, loaded in order.
    pub seed: Vec<PathBuf>,
    /// How many synthetic users to generate (after the seed files).
    pub generate: usize,
    /// The seed of the synthetic users.
    pub gen_seed: u64,
    /// Requests per second of the token bucket; `None` means [`DEFAULT_RATE`], a bucket
    /// generous enough never to be met by one client, whose headers are still sent.
    pub rate: Option<f64>,
    /// The bucket size (defaults to the rate, rounded up).
    pub burst: Option<u32>,
    /// Endpoint groups with a bucket of their own (each group at most once): their requests
    /// take tokens from it instead of the shared bucket of `rate`/`burst`, and their 429 says
    /// which group's limit was reached.
    pub rate_groups: Vec<GroupLimit>,
    /// The chance (0.0..=1.0) that an API request outside a burst starts a burst of faults.
    pub fault_rate: f64,
    /// How many API requests in a row one fault takes (1: independent faults). A burst keeps
    /// its kind: a run of 503s, of dropped connections, ...
    pub fault_burst: u32,
    /// The seed of the fault sequence (faults, bursts, latency spikes), so a faulty run can be
    /// replayed.
    pub fault_seed: u64,
    /// Delay added to every API request.
    pub latency: Duration,
    /// The share (0.0..=1.0) of API requests that are held [`SandboxOptions::latency_spike`]
    /// longer, on top of `latency`.
    pub latency_spike_rate: f64,
    pub latency_spike: Duration,
    /// 429 storms: every `storm_every` from the start, for `storm_for`, another client drains
    /// the rate-limit bucket and every API request gets a 429. Zero: no storms. Needs `rate`.
    pub storm_every: Duration,
    pub storm_for: Duration,
    /// How long a write takes to reach list/search results.
    pub search_lag: Duration,
    /// Lifetime of an access token.
    pub token_ttl: Duration,
    /// Also send `Retry-After` on 429 (Auth0 does not document it).
    pub retry_after: bool,
    /// Fixed credentials; random ones are made when `None`.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Keep a log of every request (method, path, status) for tests to inspect.
    pub request_log: bool,
    /// The scopes every access token carries (space-separated in `scope`); `None` means all
    /// of [`SCOPES`]. Each must be one of [`SCOPES`]. An endpoint answers 403
    /// `insufficient_scope` when none of the scopes it accepts is there.
    pub scopes: Option<Vec<String>>,
    /// How many users per second each bulk-import job processes.
    pub job_rate: f64,
    /// Facts ("Bulk import jobs"): a job running longer than this fails (2 h).
    pub job_timeout: Duration,
    /// Facts ("Bulk import jobs"): a job's data is purged this long after it was created
    /// (24 h); then `GET /api/v2/jobs/{id}` answers 404.
    pub job_purge_after: Duration,
    /// Jobs start held: they stay `pending` (or keep their progress) until
    /// [`Sandbox::release_jobs`]. For tests that must see a job before it runs.
    pub hold_jobs: bool,
    /// Facts ("Bulk export jobs"): how long an export's `location` link works (60 s); each
    /// fetch of the job gives a fresh one.
    pub export_link_ttl: Duration,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: Vec::new(),
            generate: 0,
            gen_seed: 1,
            rate: None,
            burst: None,
            rate_groups: Vec::new(),
            fault_rate: 0.0,
            fault_burst: 1,
            fault_seed: 1,
            latency: Duration::ZERO,
            latency_spike_rate: 0.0,
            latency_spike: Duration::ZERO,
            storm_every: Duration::ZERO,
            storm_for: Duration::ZERO,
            search_lag: Duration::ZERO,
            // Facts ("Token"): `expires_in: 86400`.
            token_ttl: Duration::from_secs(86_400),
            retry_after: false,
            client_id: None,
            client_secret: None,
            request_log: true,
            scopes: None,
            job_rate: DEFAULT_JOB_RATE,
            job_timeout: Duration::from_secs(2 * 3600),
            job_purge_after: Duration::from_secs(86_400),
            hold_jobs: false,
            export_link_ttl: Duration::from_secs(60),
        }
    }
}

/// Why a sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read seed file {path}: {source}")]
    SeedIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("seed file {path}, line {line}: {message}")]
    SeedRecord {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("invalid sandbox option: {0}")]
    Option(String),
}

/// One request the sandbox answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    pub method: String,
    /// The path without its query string.
    pub path: String,
    pub query: Option<String>,
    /// The status sent; 0 when the connection was dropped without an answer.
    pub status: u16,
    /// The injected fault, if any: `500`, `502`, `503`, `drop`, `truncate`, or `storm` (a 429
    /// of a storm).
    pub fault: Option<&'static str>,
}

/// Counters a benchmark or script reads over HTTP (`GET /__sandbox/stats`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Requests by route template (`GET /api/v2/users/{id}`) and status.
    pub requests: BTreeMap<String, BTreeMap<u16, u64>>,
    pub total_requests: u64,
    pub throttled: u64,
    /// Requests answered with an injected fault (storm 429s included).
    pub faults: u64,
    /// Requests held a latency spike longer.
    pub latency_spikes: u64,
    pub writes: Writes,
    /// API requests and their 429s by endpoint group.
    pub groups: GroupStats,
}

/// API requests by endpoint group (every group listed, zeros included).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct GroupStats {
    pub users_read: GroupCounts,
    pub users_write: GroupCounts,
    pub other: GroupCounts,
}

impl GroupStats {
    pub fn get(&self, group: Group) -> &GroupCounts {
        match group {
            Group::UsersRead => &self.users_read,
            Group::UsersWrite => &self.users_write,
            Group::Other => &self.other,
        }
    }

    fn get_mut(&mut self, group: Group) -> &mut GroupCounts {
        match group {
            Group::UsersRead => &mut self.users_read,
            Group::UsersWrite => &mut self.users_write,
            Group::Other => &mut self.other,
        }
    }
}

/// One endpoint group's requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GroupCounts {
    pub requests: u64,
    /// Answered 429 (storms included).
    pub throttled: u64,
}

/// Writes that changed the tenant.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Writes {
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
}

/// Shared state behind every handler.
pub(crate) struct State {
    pub(crate) store: Mutex<Store>,
    /// Roles, permissions, resource servers and organizations. Locked after `store` when both
    /// are needed.
    pub(crate) authz: Mutex<authz::Authz>,
    pub(crate) tokens: Mutex<HashMap<String, Instant>>,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) domain: String,
    pub(crate) options: SandboxOptions,
    pub(crate) limits: Limits,
    pub(crate) faults: Mutex<server::FaultDice>,
    pub(crate) spikes: Mutex<ChaCha8Rng>,
    pub(crate) started: Instant,
    pub(crate) stats: Mutex<Stats>,
    pub(crate) log: Mutex<Vec<RequestRecord>>,
    /// The scopes every token carries.
    pub(crate) scopes: Vec<String>,
    pub(crate) jobs: Mutex<jobs::Jobs>,
    /// True while jobs are held (see [`SandboxOptions::hold_jobs`]).
    pub(crate) job_gate: tokio::sync::watch::Sender<bool>,
    pub(crate) tickets: Mutex<Vec<tickets::Ticket>>,
    /// Fires when the sandbox stops, so that running jobs stop too.
    pub(crate) cancel: CancellationToken,
}

impl State {
    fn record(&self, route: &str, record: RequestRecord) {
        {
            let mut stats = self.stats.lock().expect("stats lock");
            stats.total_requests += 1;
            *stats
                .requests
                .entry(route.to_string())
                .or_default()
                .entry(record.status)
                .or_default() += 1;
            if record.status == 429 {
                stats.throttled += 1;
            }
            if record.path.starts_with("/api/v2/") {
                let group = stats
                    .groups
                    .get_mut(Group::of(&record.method, &record.path));
                group.requests += 1;
                if record.status == 429 {
                    group.throttled += 1;
                }
            }
            if record.fault.is_some() {
                stats.faults += 1;
            }
        }
        if self.options.request_log {
            self.log.lock().expect("log lock").push(record);
        }
    }
}

/// A running sandbox tenant.
pub struct Sandbox {
    state: Arc<State>,
    addr: SocketAddr,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Sandbox {
    /// Binds, loads the users and starts serving in the background.
    pub async fn start(options: SandboxOptions) -> Result<Sandbox, SandboxError> {
        if !(0.0..=1.0).contains(&options.fault_rate) {
            return Err(SandboxError::Option(format!(
                "--fault-rate must be between 0 and 1, got {}",
                options.fault_rate
            )));
        }
        if let Some(rate) = options.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(SandboxError::Option(format!(
                "--rate must be positive, got {rate}"
            )));
        }
        for (index, limit) in options.rate_groups.iter().enumerate() {
            if !(limit.rate.is_finite() && limit.rate > 0.0) || limit.burst == 0 {
                return Err(SandboxError::Option(format!(
                    "--rate-group {limit}: the rate must be positive and the burst at least 1"
                )));
            }
            if options.rate_groups[..index]
                .iter()
                .any(|l| l.group == limit.group)
            {
                return Err(SandboxError::Option(format!(
                    "--rate-group names {} twice; give each group one limit",
                    limit.group
                )));
            }
        }
        if options.fault_burst == 0 {
            return Err(SandboxError::Option(
                "--fault-burst must be at least 1".into(),
            ));
        }
        if !(0.0..=1.0).contains(&options.latency_spike_rate) {
            return Err(SandboxError::Option(format!(
                "--latency-spike-rate must be between 0 and 1, got {}",
                options.latency_spike_rate
            )));
        }
        if !options.storm_every.is_zero() {
            if options.rate.is_none() && options.rate_groups.is_empty() {
                return Err(SandboxError::Option(
                    "--storm-every needs --rate or --rate-group: a storm drains a rate-limit bucket"
                        .into(),
                ));
            }
            if options.storm_for.is_zero() || options.storm_for >= options.storm_every {
                return Err(SandboxError::Option(format!(
                    "--storm-for must be more than 0 and less than --storm-every ({:?}), got {:?}",
                    options.storm_every, options.storm_for
                )));
            }
        }
        if !(options.job_rate.is_finite() && options.job_rate > 0.0) {
            return Err(SandboxError::Option(format!(
                "--job-rate must be a positive number of users per second, got {}",
                options.job_rate
            )));
        }
        let scopes: Vec<String> = match &options.scopes {
            None => SCOPES.iter().map(|s| s.to_string()).collect(),
            Some(scopes) => {
                if let Some(unknown) = scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
                    return Err(SandboxError::Option(format!(
                        "--scopes: unknown scope '{unknown}'; the sandbox knows {}",
                        SCOPES.join(" ")
                    )));
                }
                scopes.clone()
            }
        };
        let mut store = Store::new(Duration::ZERO);
        let mut authz = authz::Authz::default();
        for path in &options.seed {
            load_seed(&mut store, &mut authz, path)?;
        }
        // A generated tenant has roles, permissions and organizations too (generate_authz.rs),
        // drawn beside the users without changing them.
        let mut grants = (options.generate > 0)
            .then(|| generate_authz::AuthzGenerator::new(options.gen_seed, &mut authz));
        // One thread: a generator thread handing maps over made startup three times costlier
        // in CPU (each map freed on another thread than the one that built it).
        store.put_all(
            generate::generate(options.generate, options.gen_seed).inspect(|user| {
                if let (Some(grants), Some(Value::String(id))) = (&mut grants, user.get("user_id"))
                {
                    grants.assign(&mut authz, id);
                }
            }),
        );
        // The lag applies to writes through the API, not to the initial data.
        store.set_search_lag(options.search_lag);

        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|source| SandboxError::Bind {
                addr: options.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
            addr: options.listen,
            source,
        })?;
        let shared = match options.rate {
            Some(rate) => TokenBucket::new(rate, options.burst.unwrap_or(rate.ceil() as u32)),
            None => TokenBucket::new(DEFAULT_RATE, DEFAULT_BURST),
        };
        let limits = Limits::new(shared, &options.rate_groups);
        let cancel = CancellationToken::new();
        let state = Arc::new(State {
            store: Mutex::new(store),
            authz: Mutex::new(authz),
            tokens: Mutex::new(HashMap::new()),
            client_id: options
                .client_id
                .clone()
                .unwrap_or_else(|| random_token(32)),
            client_secret: options
                .client_secret
                .clone()
                .unwrap_or_else(|| random_token(64)),
            domain: format!("http://{addr}"),
            limits,
            faults: Mutex::new(server::FaultDice::new(
                options.fault_seed,
                options.fault_rate,
                options.fault_burst,
            )),
            spikes: Mutex::new(server::spike_rng(options.fault_seed)),
            started: Instant::now(),
            stats: Mutex::new(Stats::default()),
            log: Mutex::new(Vec::new()),
            scopes,
            jobs: Mutex::new(jobs::Jobs::default()),
            job_gate: tokio::sync::watch::Sender::new(options.hold_jobs),
            tickets: Mutex::new(Vec::new()),
            cancel: cancel.clone(),
            options,
        });
        let app = routes::router(state.clone());
        let task = tokio::spawn(server::serve(listener, app, state.clone(), cancel.clone()));
        Ok(Sandbox {
            state,
            addr,
            cancel,
            task: Some(task),
        })
    }

    /// The base URL to use as the tenant's domain: `http://127.0.0.1:PORT`.
    pub fn domain(&self) -> &str {
        &self.state.domain
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn client_id(&self) -> &str {
        &self.state.client_id
    }

    pub fn client_secret(&self) -> &str {
        &self.state.client_secret
    }

    /// The one line `auth0-bulk sandbox` prints: `{"domain","client_id","client_secret"}`.
    pub fn announcement(&self) -> serde_json::Value {
        serde_json::json!({
            "domain": self.domain(),
            "client_id": self.client_id(),
            "client_secret": self.client_secret(),
        })
    }

    /// Every request answered so far (when `request_log` is on).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.log.lock().expect("log lock").clone()
    }

    /// Every access token issued so far, expired ones included, so that a test can look for
    /// them where they must never appear (logs, output, state).
    pub fn issued_tokens(&self) -> Vec<String> {
        let mut tokens: Vec<String> = self
            .state
            .tokens
            .lock()
            .expect("token lock")
            .keys()
            .cloned()
            .collect();
        tokens.sort();
        tokens
    }

    /// Forgets the request log and the counters.
    pub fn reset_stats(&self) {
        self.state.log.lock().expect("log lock").clear();
        *self.state.stats.lock().expect("stats lock") = Stats::default();
    }

    pub fn stats(&self) -> Stats {
        self.state.stats.lock().expect("stats lock").clone()
    }

    /// How many users the tenant holds.
    pub fn user_count(&self) -> usize {
        self.state.store.lock().expect("store lock").len()
    }

    /// Every user, sorted by user_id: the ground truth.
    pub fn users(&self) -> Vec<User> {
        let store = self.state.store.lock().expect("store lock");
        store.all().map(|u| u.user()).collect()
    }

    /// Writes every user as NDJSON, sorted by user_id.
    pub fn write_users(&self, out: &mut dyn Write) -> std::io::Result<()> {
        write_users(&self.state, out)
    }

    /// Adds or replaces users directly, as if they had always been there.
    pub fn insert_users(&self, users: impl IntoIterator<Item = User>) {
        let mut store = self.state.store.lock().expect("store lock");
        for user in users {
            store.put(user);
        }
    }

    /// Holds every job where it is: a pending job stays pending, a processing one stops between
    /// two users, until [`Sandbox::release_jobs`].
    pub fn hold_jobs(&self) {
        self.state.job_gate.send_replace(true);
    }

    /// Lets held jobs run on.
    pub fn release_jobs(&self) {
        self.state.job_gate.send_replace(false);
    }

    /// Password-change tickets issued so far, by user_id (the ticket URLs are secrets and
    /// are not given out).
    pub fn ticket_counts(&self) -> BTreeMap<String, usize> {
        tickets::counts(&self.state)
    }

    /// Stops serving and waits for the server task to end.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

pub(crate) fn write_users(state: &State, out: &mut dyn Write) -> std::io::Result<()> {
    let store = state.store.lock().expect("store lock");
    for user in store.all() {
        out.write_all(user.json().as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Writes every user as NDJSON, sorted by user_id, each with its `roles`, `organizations` and
/// direct `permissions` (see `Authz::evidence`).
pub(crate) fn write_users_with_authz(state: &State, out: &mut dyn Write) -> std::io::Result<()> {
    let store = state.store.lock().expect("store lock");
    let authz = state.authz.lock().expect("authz lock");
    for stored in store.all() {
        let mut user = stored.user();
        for (key, value) in authz.evidence(stored.id()) {
            user.insert(key.into(), value);
        }
        serde_json::to_writer(&mut *out, &user)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Loads users from NDJSON exactly as the API returns them, and the grants a user may carry
/// (`roles`, `organizations`, `permissions`: see `Authz::seed`).
fn load_seed(
    store: &mut Store,
    authz: &mut authz::Authz,
    path: &PathBuf,
) -> Result<(), SandboxError> {
    let file = std::fs::File::open(path).map_err(|source| SandboxError::SeedIo {
        path: path.clone(),
        source,
    })?;
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| SandboxError::SeedIo {
            path: path.clone(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let record = |message: String| SandboxError::SeedRecord {
            path: path.clone(),
            line: index + 1,
            message,
        };
        let mut user: User = serde_json::from_str(&line).map_err(|e| record(e.to_string()))?;
        let user_id = match user.get("user_id") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            _ => {
                return Err(record(
                    "a seeded user needs a non-empty string `user_id`".into(),
                ));
            }
        };
        authz.seed(&user_id, &mut user).map_err(record)?;
        store.put(user);
    }
    Ok(())
}

/// A random alphanumeric string for credentials and tokens.
pub(crate) fn random_token(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
