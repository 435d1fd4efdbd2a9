//! What the job engine's tests share (`import --engine job`, create and upsert): inputs with
//! and without password hashes and the users they should make, a tenant and command for jobs,
//! the jobs journal as a test reads it, and [`Watch`], a proxy that sees the job requests.
//!
//! Where a test must see what the client sends the job endpoints (the size of each users file,
//! when a job was made and when the client learnt it ended), the binary talks to a [`Watch`]: a
//! proxy in front of the sandbox that records the job requests and can hold the answer to a
//! job's creation (the tenant has made the job; the client has not learnt its id), which is
//! the window the jobs journal exists for.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth0_bulk::import::job::chunk::derived_user_id;
use auth0_bulk::sandbox::SandboxOptions;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::response::Response;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use super::child::{Ran, Running, run};
use super::exports::User;
use super::files_under;
use super::imports::{
    DB, LedgerView, assert_adds_up, assert_same_users, beside, connection_of, count, import,
    read_ndjson, read_text, tenant_users, without_times, write_ndjson,
};
use super::live::{Live, own_audience, pass_on};

/// The sandbox's second database connection (password policy "fair").
pub const LEGACY: &str = "legacy-db";
/// The jobs endpoint, as the sandbox's request log and stats name it.
pub const JOBS_POST: &str = "POST /api/v2/jobs/users-imports";

// ---- inputs -----------------------------------------------------------------------------------

/// `n` create records over the two database connections (a third in `legacy-db`), each with
/// names and nested metadata of varied size; every fourth names its `user_id`, the others get
/// one derived from their connection and email. Every 23rd (from the 8th) has an email that is
/// not one: rejected before any job. `tag` keeps emails apart between tests.
pub fn records(n: usize, tag: &str) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let connection = if i % 3 == 0 { LEGACY } else { DB };
            let email = if is_bad(i) {
                format!("{tag}-{i}-at-example.com")
            } else {
                format!("{tag}.{i}@example.com")
            };
            let plan = ["free", "pro", "team"][i % 3];
            let mut record = json!({
                "email": email,
                "connection": connection,
                "email_verified": i % 2 == 0,
                "given_name": format!("Given{i}"),
                "family_name": format!("Family{tag}"),
                "user_metadata": {
                    "plan": plan,
                    "n": i,
                    "bio": "lorem ipsum ".repeat(i % 7),
                    "prefs": {"theme": "dark", "langs": ["en", "fr"]},
                },
                "app_metadata": {"tier": i % 5, "tags": ["migrated", tag]},
            });
            if i % 4 == 1 {
                record["user_id"] = json!(format!("{tag}{i:05}"));
            }
            record
        })
        .collect()
}

/// Whether record `i` of the crash test brings a password hash.
pub fn has_hash(i: usize) -> bool {
    i.is_multiple_of(2)
}

/// The password a legacy store held for record `i`.
pub fn legacy_password(i: usize) -> String {
    format!("Legacy-{i}-secret!")
}

/// A `custom_password_hash`: SHA-256 over a salt (its prefix) and the password, in hex.
pub fn sha256_hash(password: &str, i: usize) -> Value {
    use sha2::Digest as _;
    let salt = format!("s{i:07}");
    let digest = sha2::Sha256::digest(format!("{salt}{password}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    json!({
        "algorithm": "sha256",
        "hash": {"value": hex, "encoding": "hex"},
        "salt": {"value": salt, "encoding": "utf8", "position": "prefix"},
    })
}

pub fn is_bad(i: usize) -> bool {
    i % 23 == 7
}

/// The records [`records`] makes that are good.
pub fn good(n: usize) -> u64 {
    (0..n).filter(|i| !is_bad(*i)).count() as u64
}

/// The user_id the tenant gives a record: its own (`auth0|` prefixed), else the derived one.
pub fn expected_id(record: &Value) -> String {
    match record["user_id"].as_str() {
        Some(id) => format!("auth0|{id}"),
        None => format!(
            "auth0|{}",
            derived_user_id(
                record["connection"].as_str().unwrap(),
                record["email"].as_str().unwrap()
            )
        ),
    }
}

/// What the tenant must hold for the good records, by user_id: the fields a record sets and
/// its connection.
pub fn expected_users(records: &[Value]) -> BTreeMap<String, User> {
    records
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_bad(*i))
        .map(|(_, record)| {
            let mut user = Map::new();
            for field in [
                "email",
                "email_verified",
                "given_name",
                "family_name",
                "user_metadata",
                "app_metadata",
            ] {
                user.insert(field.into(), record[field].clone());
            }
            user.insert("connection".into(), record["connection"].clone());
            (expected_id(record), user)
        })
        .collect()
}

/// The tenant's users reduced to what [`expected_users`] holds.
pub fn tenant_as_expected(live: &Live) -> BTreeMap<String, User> {
    tenant_users(live)
        .into_iter()
        .map(|(id, user)| {
            let mut out: User = [
                "email",
                "email_verified",
                "given_name",
                "family_name",
                "user_metadata",
                "app_metadata",
            ]
            .iter()
            .filter_map(|f| Some((f.to_string(), user.get(*f)?.clone())))
            .collect();
            out.insert("connection".into(), json!(connection_of(&user)));
            (id, out)
        })
        .collect()
}

/// A sandbox whose jobs run at `job_rate` users a second.
pub fn tenant(job_rate: f64) -> Live {
    Live::start(SandboxOptions {
        job_rate,
        ..Default::default()
    })
}

/// A temporary folder with `records` in `users.ndjson`.
pub fn input(records: &[Value]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.ndjson");
    write_ndjson(&path, records);
    (dir, path)
}

/// `import --input INPUT --engine job --passwords random ARGS --json` against `domain` (the
/// sandbox's, or a [`Watch`]'s in front of it), state and rejects beside the input.
pub fn job_import(live: &Live, domain: &str, input: &Path, args: &[&str]) -> Command {
    let mut command = crate::support::child::import(domain, live.client_id(), live.client_secret());
    command
        .arg("--input")
        .arg(input)
        .args(["--engine", "job", "--passwords", "random"])
        .args(args)
        .arg("--json");
    command
}

/// The API requests the tenant answered, as `METHOD /route` (ids collapsed) → status → count.
pub fn routes(live: &Live) -> BTreeMap<String, BTreeMap<u16, u64>> {
    live.tenant.sandbox.stats().requests
}

/// How many requests of `route` the tenant answered (any status).
pub fn requests_of(live: &Live, route: &str) -> u64 {
    routes(live).get(route).map_or(0, |by| by.values().sum())
}

/// The rejects file's entries by line: (`code`, `message`, `field`).
pub fn rejects_by_line(path: &Path) -> BTreeMap<u64, (String, String, Option<String>)> {
    read_ndjson(path)
        .into_iter()
        .map(|entry| {
            let error = &entry["_error"];
            (
                error["line"].as_u64().expect("a line"),
                (
                    error["code"].as_str().unwrap().to_string(),
                    error["message"].as_str().unwrap().to_string(),
                    error["field"].as_str().map(str::to_string),
                ),
            )
        })
        .collect()
}

/// The lines of a file, sorted (order aside, two files with the same lines compare equal).
pub fn sorted_lines(path: &Path) -> Vec<String> {
    let mut lines: Vec<String> = read_text(path).lines().map(str::to_string).collect();
    lines.sort();
    lines
}

// ---- the jobs journal, as a test reads it -----------------------------------------------------

/// A chunk the journal names that is not done: whether its job's id was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub job: Option<String>,
}

/// The chunks the jobs journal in `state` names that are not done (a torn last line left out).
pub fn open_chunks(state: &Path) -> BTreeMap<u64, Open> {
    let mut open = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(state.join("jobs.ndjson")) else {
        return open;
    };
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        let entry: Value = serde_json::from_str(line).expect("a journal entry");
        let chunk = entry["chunk"].as_u64().expect("a chunk number");
        if entry["done"] == true {
            open.remove(&chunk);
        } else if entry.get("records").is_some() {
            open.insert(chunk, Open { job: None });
        } else if let Some(job) = entry["job"].as_str() {
            open.insert(
                chunk,
                Open {
                    job: Some(job.to_string()),
                },
            );
        }
    }
    open
}

// ---- the watch: a proxy that sees the job requests --------------------------------------------

/// What the watch saw, in the order the tenant's answers came back.
#[derive(Debug, Clone)]
pub enum Seen {
    /// `POST /api/v2/jobs/users-imports`: the users file and the answer.
    Submitted {
        connection_id: String,
        file: Vec<u8>,
        status: u16,
        job: Option<String>,
    },
    /// `GET /api/v2/jobs/{id}` answered with this job status (or the HTTP status, for a 404).
    Polled { job: String, status: String },
    /// `PATCH /api/v2/users/{id}`: the user_id, the body and the answer's status.
    Patched {
        user: String,
        body: Value,
        status: u16,
    },
}

/// A proxy in front of a [`Live`] tenant that records the job requests and, once armed, holds
/// the tenant's answer to the next job creation until [`Watch::release`].
pub struct Watch {
    domain: String,
    inner: Arc<WatchInner>,
    server: tokio::task::JoinHandle<()>,
}

struct WatchInner {
    upstream: String,
    http: reqwest::Client,
    seen: Mutex<Vec<Seen>>,
    /// Armed: the next accepted job's answer is held. Held: that job's id.
    hold: Mutex<(bool, Option<String>)>,
    /// How many more accepted jobs' answers are lost (a 502 instead).
    lose: Mutex<usize>,
    released: tokio::sync::watch::Sender<bool>,
}

impl Watch {
    pub fn start(live: &Live) -> Watch {
        let inner = Arc::new(WatchInner {
            upstream: live.domain().to_string(),
            http: reqwest::Client::new(),
            seen: Mutex::new(Vec::new()),
            hold: Mutex::new((false, None)),
            lose: Mutex::new(0),
            released: tokio::sync::watch::Sender::new(true),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(inner.clone());
        let (domain, server) = live.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("the watch binds");
            let addr = listener.local_addr().expect("the watch's address");
            let server = tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            (format!("http://{addr}"), server)
        });
        Watch {
            domain,
            inner,
            server,
        }
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }

    /// The users files of the jobs the tenant accepted, with their connection ids.
    pub fn accepted_files(&self) -> Vec<(String, Vec<u8>)> {
        self.seen()
            .into_iter()
            .filter_map(|seen| match seen {
                Seen::Submitted {
                    connection_id,
                    file,
                    status: 202,
                    ..
                } => Some((connection_id, file)),
                _ => None,
            })
            .collect()
    }

    /// The emails in each users file the tenant accepted, in the order sent.
    pub fn accepted_emails(&self) -> Vec<BTreeSet<String>> {
        self.accepted_files()
            .iter()
            .map(|(_, file)| {
                serde_json::from_slice::<Vec<Map<String, Value>>>(file)
                    .expect("a users file is a JSON array of users")
                    .iter()
                    .map(|u| u["email"].as_str().unwrap().to_string())
                    .collect()
            })
            .collect()
    }

    /// The emails of the users sent in more than one accepted job.
    pub fn sent_twice(&self) -> BTreeSet<String> {
        let mut all = BTreeMap::<String, usize>::new();
        for email in self.accepted_emails().into_iter().flatten() {
            *all.entry(email).or_default() += 1;
        }
        all.into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(e, _)| e)
            .collect()
    }

    /// The PATCHes of users the tenant answered: (user_id, body, status).
    pub fn patches(&self) -> Vec<(String, Value, u16)> {
        self.seen()
            .into_iter()
            .filter_map(|seen| match seen {
                Seen::Patched { user, body, status } => Some((user, body, status)),
                _ => None,
            })
            .collect()
    }

    /// The most jobs the client had going at once: accepted, and not yet seen ended by a poll.
    pub fn most_jobs_at_once(&self) -> usize {
        let mut active = BTreeSet::new();
        let mut most = 0;
        for seen in self.seen() {
            match seen {
                Seen::Submitted {
                    job: Some(job),
                    status: 202,
                    ..
                } => {
                    active.insert(job);
                }
                Seen::Polled { job, status } if status != "pending" && status != "processing" => {
                    active.remove(&job);
                }
                _ => {}
            }
            most = most.max(active.len());
        }
        most
    }

    /// The answers to the next `n` jobs the tenant accepts are lost: the client gets a 502.
    pub fn lose(&self, n: usize) {
        *self.inner.lose.lock().unwrap() = n;
    }

    /// From now on, the answer to the next job the tenant accepts is held.
    pub fn arm(&self) {
        self.inner.released.send_replace(false);
        *self.inner.hold.lock().unwrap() = (true, None);
    }

    /// The job whose answer is held, if one is.
    pub fn held(&self) -> Option<String> {
        self.inner.hold.lock().unwrap().1.clone()
    }

    /// Lets a held answer go (to a client that may be gone) and disarms.
    pub fn release(&self) {
        *self.inner.hold.lock().unwrap() = (false, None);
        self.inner.released.send_replace(true);
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.release();
        self.server.abort();
    }
}

/// The `users` file and `connection_id` of a job request's multipart form.
async fn form_of(content_type: &str, body: &[u8]) -> (Vec<u8>, String) {
    let request = Request::builder()
        .header("content-type", content_type)
        .body(Body::from(body.to_vec()))
        .expect("a request");
    let mut form = Multipart::from_request(request, &())
        .await
        .expect("a multipart form");
    let (mut file, mut connection) = (Vec::new(), String::new());
    while let Some(field) = form.next_field().await.expect("a form part") {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field.bytes().await.expect("the part's bytes").to_vec();
        match name.as_str() {
            "users" => file = bytes,
            "connection_id" => connection = String::from_utf8(bytes).expect("text"),
            _ => {}
        }
    }
    (file, connection)
}

async fn forward(State(watch): State<Arc<WatchInner>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    let mut bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("the request body reads")
        .to_vec();
    if path == "/oauth/token" {
        bytes = own_audience(&bytes, &watch.upstream);
    }
    let submitted = if path == "/api/v2/jobs/users-imports" {
        let content_type = parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Some(form_of(&content_type, &bytes).await)
    } else {
        None
    };
    let patched = (parts.method == axum::http::Method::PATCH)
        .then(|| path.strip_prefix("/api/v2/users/"))
        .flatten()
        .map(|user| {
            let user = percent_encoding::percent_decode_str(user)
                .decode_utf8()
                .expect("a user_id is UTF-8")
                .into_owned();
            let body: Value = serde_json::from_slice(&bytes).expect("a PATCH body is JSON");
            (user, body)
        });
    let answer = match pass_on(&watch.http, &watch.upstream, &parts, &path_and_query, bytes).await {
        Ok(answer) => answer,
        Err(failed) => return failed,
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let body = answer.bytes().await.unwrap_or_default();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut hold = false;
    let mut lost = false;
    if let Some((file, connection_id)) = submitted {
        let job = json["id"].as_str().map(str::to_string);
        if status.as_u16() == 202 {
            let mut lose = watch.lose.lock().unwrap();
            lost = *lose > 0;
            *lose = lose.saturating_sub(1);
        }
        {
            let mut armed = watch.hold.lock().unwrap();
            if armed.0 && status.as_u16() == 202 {
                *armed = (false, job.clone());
                hold = true;
            }
        }
        watch.seen.lock().unwrap().push(Seen::Submitted {
            connection_id,
            file,
            status: status.as_u16(),
            job,
        });
    } else if let Some((user, body)) = patched {
        watch.seen.lock().unwrap().push(Seen::Patched {
            user,
            body,
            status: status.as_u16(),
        });
    } else if let Some(job) = path.strip_prefix("/api/v2/jobs/")
        && !job.contains('/')
        && parts.method == axum::http::Method::GET
    {
        let status = json["status"]
            .as_str()
            .map_or_else(|| status.as_u16().to_string(), str::to_string);
        let job = percent_encoding::percent_decode_str(job)
            .decode_utf8()
            .expect("a job id is UTF-8");
        watch.seen.lock().unwrap().push(Seen::Polled {
            job: job.into_owned(),
            status,
        });
    }
    if hold {
        // The tenant made the job; the client learns nothing until the test releases it.
        let mut released = watch.released.subscribe();
        let _ = released.wait_for(|released| *released).await;
    }
    if lost {
        // The tenant made the job; its answer never reaches the client.
        return Response::builder()
            .status(502)
            .header("content-type", "application/json")
            .body(Body::from(
                r#"{"statusCode":502,"error":"Bad Gateway","message":"The answer was lost (test watch).","errorCode":"bad_gateway"}"#,
            ))
            .expect("a static response");
    }
    let mut response = Response::builder().status(status);
    for (name, value) in &headers {
        if !matches!(name.as_str(), "content-length" | "transfer-encoding") {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// Whether `password` signs `record`'s user in (the sandbox's `/__sandbox/login`, which checks
/// a password or a hash brought by an import job).
pub fn signs_in(live: &Live, record: &Value, password: &str) -> bool {
    let body = json!({
        "email": record["email"],
        "connection": record["connection"],
        "password": password,
    });
    let url = format!("{}/__sandbox/login", live.domain());
    let http = &live.tenant.http;
    live.block_on(async {
        let answer: Value = http
            .post(url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["ok"] == true
    })
}

/// A tenant whose tokens carry every scope but `missing`.
pub fn tenant_without(missing: &str) -> Live {
    tenant_lacking(missing, SandboxOptions::default())
}

/// A tenant started with `options` whose tokens carry every scope but `missing`.
pub fn tenant_lacking(missing: &str, options: SandboxOptions) -> Live {
    Live::start(SandboxOptions {
        scopes: Some(
            auth0_bulk::sandbox::SCOPES
                .iter()
                .filter(|s| **s != missing)
                .map(|s| s.to_string())
                .collect(),
        ),
        ..options
    })
}

/// Runs `import --input users.ndjson ARGS` on `live` and checks it is refused with exit 2 and
/// a message holding `says`, before any write: no file in `dir` changed, nothing sent but
/// reads.
pub fn assert_refused(live: &Live, dir: &Path, args: &[&str], says: &str) {
    let before: Vec<(PathBuf, Vec<u8>)> = files_under(dir)
        .into_iter()
        .map(|f| (f.clone(), std::fs::read(&f).unwrap()))
        .collect();
    let ran = run(import(live)
        .arg("--input")
        .arg(dir.join("users.ndjson"))
        .args(args));
    assert_eq!(ran.code(), Some(2), "{args:?}: {}", ran.stderr);
    assert!(
        ran.stderr.contains(says),
        "{args:?} says {says:?}: {}",
        ran.stderr
    );
    let after: Vec<(PathBuf, Vec<u8>)> = files_under(dir)
        .into_iter()
        .map(|f| (f.clone(), std::fs::read(&f).unwrap()))
        .collect();
    assert!(after == before, "{args:?}: a file was written or changed");
    for request in live.api_requests() {
        assert_eq!(request.method, "GET", "{args:?}: only reads: {request:?}");
    }
}

// ---- kills at the job engine's points ---------------------------------------------------------

/// Users a second each job processes in the crash tests: a chunk of about 25 takes a few
/// polls, so kills find jobs running.
pub const CRASH_JOB_RATE: f64 = 150.0;

/// Where a kill lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    /// Right after the tenant made a job, before the client heard of it: the watch holds the
    /// tenant's answer, so the journal has the chunk as sent and no job id.
    Accepting,
    /// While a job whose id the journal recorded is running (a random moment into it).
    Polling,
    /// Once the ledger holds a share of the records and the tenant has answered a PATCH of
    /// this run's, a few milliseconds later: among per-user patches (upserts).
    Patching,
    /// Once the ledger holds a share of the records, a few milliseconds later.
    Progress,
    /// A random moment after the start.
    Time,
}

/// `kills` kill points: every third while a job's creation is answered, the others drawn
/// from `drawn`.
pub fn kill_plan(kills: usize, drawn: &[Kill], rng: &mut ChaCha8Rng) -> Vec<Kill> {
    (0..kills)
        .map(|index| {
            if index % 3 == 0 {
                Kill::Accepting
            } else {
                drawn[rng.random_range(0..drawn.len())]
            }
        })
        .collect()
}

/// What it takes to kill a job-engine import at [`Kill`] points: its watch, state and size.
pub struct Killer<'a> {
    pub watch: &'a Watch,
    pub state: &'a Path,
    /// Records in the input.
    pub records: usize,
    /// How long a clean run took, to place kills by time.
    pub lasts: Duration,
    /// The exit code of a run that ends by itself.
    pub code: i32,
    /// The PATCHes the tenant has answered so far, for [`Kill::Patching`].
    pub patches: &'a dyn Fn() -> u64,
}

/// What the kills came to.
pub struct Killings {
    /// The kills that hit a running import.
    pub landed: Vec<Kill>,
    /// The jobs whose creation's answer the client never got.
    pub held_jobs: Vec<String>,
    /// The run that ended by itself before its kill, if one did.
    pub finished: Option<Ran>,
}

impl Killer<'_> {
    /// The share of the records the ledger has an outcome for.
    pub fn progress(&self) -> f64 {
        LedgerView::read(self.state).done() as f64 / self.records as f64
    }

    /// Runs `command()` and kills it at each point of `plan` in turn (at a seeded share of
    /// what is left), until a run ends by itself; checks after each kill that the journal
    /// holds a held job's chunk without its id, and that no record has two outcomes.
    pub fn kill_at(
        &self,
        plan: &[Kill],
        rng: &mut ChaCha8Rng,
        command: impl Fn() -> Command,
    ) -> Killings {
        let watch = self.watch;
        let mut killings = Killings {
            landed: Vec::new(),
            held_jobs: Vec::new(),
            finished: None,
        };
        for (index, kind) in plan.iter().copied().enumerate() {
            let done = self.progress();
            // About an even share of what is left for each kill still to come.
            let share = rng.random_range(0.0..2.0 / (plan.len() - index + 1) as f64);
            let target = done + (1.0 - done) * share;
            let delay = self.lasts.mul_f64((1.0 - done) * share);
            let settle = Duration::from_millis(rng.random_range(0..5));
            let into_job = Duration::from_millis(rng.random_range(0..300));
            let patched = (self.patches)();
            let mut running = Running::spawn(&mut command());
            let started = Instant::now();
            let mut armed = false;
            let mut job_seen: Option<Instant> = None;
            let due = loop {
                if !running.is_running() {
                    break false;
                }
                let reached = self.progress() >= target;
                match kind {
                    Kill::Accepting => {
                        if reached && !armed {
                            watch.arm();
                            armed = true;
                        }
                        if armed && watch.held().is_some() {
                            break true;
                        }
                    }
                    Kill::Polling => {
                        if job_seen.is_none()
                            && reached
                            && open_chunks(self.state).values().any(|c| c.job.is_some())
                        {
                            job_seen = Some(Instant::now());
                        }
                        if job_seen.is_some_and(|t| t.elapsed() >= into_job) {
                            break true;
                        }
                    }
                    Kill::Patching => {
                        if reached && (self.patches)() > patched {
                            std::thread::sleep(settle);
                            break true;
                        }
                    }
                    Kill::Progress => {
                        if reached {
                            std::thread::sleep(settle);
                            break true;
                        }
                    }
                    Kill::Time => {
                        if started.elapsed() >= delay {
                            break true;
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            if !due {
                watch.release();
                eprintln!("kill {index} ({kind:?}): the run finished first");
                killings.finished = Some(running.wait());
                break;
            }
            let hit = running.is_running();
            let ran = running.kill();
            let held = watch.held();
            watch.release();
            if !hit {
                ran.expect_code(self.code);
                killings.finished = Some(ran);
                break;
            }
            let open = open_chunks(self.state);
            if kind == Kill::Accepting {
                let job = held.expect("a job's answer was held when the kill came");
                assert!(
                    open.values().any(|c| c.job.is_none()),
                    "kill {index}: the journal has a chunk sent without its job: {open:?}"
                );
                assert!(
                    !open
                        .values()
                        .any(|c| c.job.as_deref() == Some(job.as_str())),
                    "kill {index}: the held job {job} is not in the journal"
                );
                killings.held_jobs.push(job);
            }
            let ledger = LedgerView::read(self.state);
            let twice = ledger.outcomes.values().filter(|o| o.len() > 1).count();
            assert_eq!(twice, 0, "kill {index}: records with two outcomes");
            eprintln!(
                "kill {index} ({kind:?}, target {target:.2}): {} records done, open chunks {open:?}",
                ledger.done()
            );
            killings.landed.push(kind);
        }
        killings
    }
}

/// The tenant's users by user_id, without the timestamps the tenant sets.
pub fn users_without_times(live: &Live) -> BTreeMap<String, User> {
    tenant_users(live)
        .iter()
        .map(|(id, u)| (id.clone(), without_times(u)))
        .collect()
}

/// An import run to its end, as [`assert_ends_as_clean`] compares two.
pub struct Ended<'a> {
    pub live: &'a Live,
    /// Its input (the state and rejects file are beside it).
    pub input: &'a Path,
    pub summary: &'a Value,
}

impl<'a> Ended<'a> {
    pub fn of(live: &'a Live, input: &'a Path, summary: &'a Value) -> Ended<'a> {
        Ended {
            live,
            input,
            summary,
        }
    }
}

/// The summary's counts [`assert_ends_as_clean`] compares after kills: a write whose outcome a
/// kill lost finds its user written already, so `updated` and `unchanged` only together.
pub const COUNTS_AFTER_KILLS: [&[&str]; 5] = [
    &["read"],
    &["created"],
    &["updated", "unchanged"],
    &["skipped"],
    &["rejected"],
];

/// Checks an import killed and resumed against a clean run of the same input: an outcome for
/// each of the `n` records in the ledger, once; the summary's and the ledger's counts, each
/// group of `counts` added up (a patch whose outcome a kill lost finds its user patched
/// already, so `updated` and `unchanged` can only be compared together); the rejects file's
/// lines (in any order); the tenant's users, timestamps aside.
pub fn assert_ends_as_clean(killed: &Ended, clean: &Ended, n: usize, counts: &[&[&str]]) {
    let ledger = LedgerView::read(&beside(killed.input, ".state"));
    assert_eq!(
        ledger.outcomes.keys().copied().collect::<Vec<u64>>(),
        (1..=n as u64).collect::<Vec<u64>>(),
        "the ledger has an outcome for every record"
    );
    assert!(ledger.outcomes.values().all(|o| o.len() == 1));
    let clean_ledger = LedgerView::read(&beside(clean.input, ".state"));
    let (tally, clean_tally) = (ledger.tally(), clean_ledger.tally());
    let of = |tally: &BTreeMap<String, u64>, group: &[&str]| -> u64 {
        group.iter().filter_map(|key| tally.get(*key)).sum()
    };
    assert_adds_up(killed.summary);
    assert_eq!(killed.summary["resumed"], true);
    for group in counts {
        let sum = |summary: &Value| -> u64 { group.iter().map(|key| count(summary, key)).sum() };
        assert_eq!(
            sum(killed.summary),
            sum(clean.summary),
            "{group:?}: the last run's summary against a clean run's"
        );
        if *group != ["read"] {
            assert_eq!(
                of(&tally, group),
                of(&clean_tally, group),
                "{group:?}: the ledger against a clean run's ({tally:?}, {clean_tally:?})"
            );
        }
    }
    // The rejects file: a clean run's lines, none twice, none missing.
    assert_eq!(
        sorted_lines(&beside(killed.input, ".rejects.ndjson")),
        sorted_lines(&beside(clean.input, ".rejects.ndjson")),
        "the rejects file against a clean run's"
    );
    // The tenant: a clean run's users.
    assert_same_users(
        &users_without_times(killed.live),
        &users_without_times(clean.live),
        "the killed import's tenant against a clean run's",
    );
}
