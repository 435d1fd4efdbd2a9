//! The benchmark runner: auth0-bulk against a sandbox tenant in its own process, written up as BENCHMARKS.md.
//!
//! `cargo bench --bench scenarios -- --quick` runs every scenario at a size that finishes in
//! about forty minutes on two cores, most of it waiting on rate limits (the at-limit rows at
//! real round trips about twenty, the per-group upsert about eleven); `-- --full` runs the sizes
//! the goals are stated for (a million users: well over an hour); `-- --smoke` runs them tiny,
//! to show the runner works (CI). `--only at-limit,memory` picks scenarios and keeps the other
//! sections of the report it rewrites (each section names the run it comes from), so
//! `--full --only memory,overhead` adds the million-user column to a quick report. `--rates 2,16`
//! keeps the at-limit rows of those limits only; `--out FILE` writes elsewhere.
//!
//! The sandbox and the tool are separate processes, so the tool's CPU time and peak RSS come
//! from the operating system's accounting of its own process (`wait4`), and request counts from
//! the sandbox's log (`GET /__sandbox/stats`). Nothing here fails on a slow machine: it reports.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_auth0-bulk");

/// How big the runs are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Size {
    Smoke,
    Quick,
    Full,
}

impl Size {
    /// A count of users or records; the smoke run takes a twentieth of the quick one.
    fn n(self, quick: usize, full: usize) -> usize {
        match self {
            Size::Smoke => (quick / 20).max(1),
            Size::Quick => quick,
            Size::Full => full,
        }
    }
}

/// The scenarios, in the report's order.
const SCENARIOS: [&str; 9] = [
    "at-limit",
    "per-group",
    "overhead",
    "memory",
    "authz",
    "resume",
    "naive",
    "jobs",
    "migration",
];

fn main() {
    let mut size = Size::Quick;
    let mut out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    let mut only: Vec<String> = SCENARIOS.iter().map(|s| s.to_string()).collect();
    let mut rates: Vec<u32> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--smoke" => size = Size::Smoke,
            "--quick" => size = Size::Quick,
            "--full" => size = Size::Full,
            "--rates" => {
                rates = args
                    .next()
                    .expect("--rates needs a list")
                    .split(',')
                    .map(|r| r.parse().expect("--rates takes whole numbers: 2,16"))
                    .collect();
            }
            "--out" => out = PathBuf::from(args.next().expect("--out needs a path")),
            "--only" => {
                only = args
                    .next()
                    .expect("--only needs a list")
                    .split(',')
                    .map(str::to_string)
                    .collect();
                for name in &only {
                    assert!(
                        SCENARIOS.contains(&name.as_str()),
                        "unknown scenario {name}; known: {}",
                        SCENARIOS.join(", ")
                    );
                }
            }
            // `cargo bench` passes `--bench`; a filter is not used here.
            "--bench" => {}
            other if other.starts_with('-') => {
                eprintln!(
                    "usage: cargo bench --bench scenarios -- [--smoke|--quick|--full] [--only {}] [--rates 2,16] [--out FILE]",
                    SCENARIOS.join(",")
                );
                std::process::exit(2);
            }
            _ => {}
        }
    }
    // BENCH_WORK lets two runs (say a quick at-limit run and a full memory run) go side by side.
    let work = std::env::var_os("BENCH_WORK")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("create target/bench");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let bench = Bench {
        size,
        rates: rates.clone(),
        exports: Default::default(),
        work,
        runtime,
        http: reqwest::Client::new(),
    };
    let started = Instant::now();
    let mut command = command_line(size, &only);
    if !rates.is_empty() {
        let list: Vec<String> = rates.iter().map(u32::to_string).collect();
        let _ = write!(command, " --rates {}", list.join(","));
    }
    let mut sections = Vec::new();
    for name in &only {
        eprintln!("== {name}");
        let section_started = Instant::now();
        let section = match name.as_str() {
            "at-limit" => bench.at_limit(),
            "per-group" => bench.per_group(),
            "overhead" => bench.overhead(),
            "memory" => bench.memory(),
            "authz" => bench.authz(),
            "resume" => bench.resume(),
            "naive" => bench.naive(),
            "jobs" => bench.jobs(),
            "migration" => bench.migration(),
            _ => unreachable!("checked above"),
        };
        sections.push(section.render(&provenance(&command, section_started.elapsed())));
    }
    // A run of some scenarios keeps the other sections of the report it rewrites.
    let earlier = if only.len() < SCENARIOS.len() {
        std::fs::read_to_string(&out).ok()
    } else {
        None
    };
    let sections = merge(earlier.as_deref(), sections);
    std::fs::write(&out, report(&sections)).expect("write the report");
    eprintln!(
        "Wrote {} in {:.0} s.",
        out.display(),
        started.elapsed().as_secs_f64()
    );
}

struct Bench {
    size: Size,
    /// `--rates`: the at-limit rows of these limits only (all when empty).
    rates: Vec<u32>,
    /// Unlimited exports of this run, by users generated and output file name: the overhead
    /// and memory sections measure the same command, and a million-user export takes minutes.
    exports: std::cell::RefCell<Vec<(usize, String, Measured)>>,
    work: PathBuf,
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
}

// ---- Processes ------------------------------------------------------------------------------

/// A sandbox tenant in its own process.
struct Tenant {
    child: Option<Child>,
    started: Instant,
    domain: String,
    client_id: String,
    client_secret: String,
}

/// A user of the tenant, as much of it as an input file needs to find it again.
#[derive(Debug, Clone)]
struct Sampled {
    user_id: String,
    email: String,
    connection: String,
}

/// What the operating system accounted to one run of the tool.
#[derive(Debug, Clone, Default)]
struct Measured {
    elapsed: f64,
    cpu: f64,
    max_rss_mib: f64,
    /// Exit code, or 128 + signal.
    code: i32,
    summary: Value,
}

/// Requests the sandbox answered, from its log.
#[derive(Debug, Clone, Default)]
struct Counts {
    /// API requests (the token endpoint aside).
    api: u64,
    /// API requests answered 429.
    throttled: u64,
    /// API requests by route and status, as the sandbox reports them.
    routes: Value,
    /// API requests by endpoint group (`users-read`, `users-write`, `other`).
    groups: BTreeMap<String, Group>,
    /// Where `groups` came from: the sandbox's own per-group counts, or the routes.
    groups_source: &'static str,
    users: u64,
    created: u64,
}

/// The requests of one endpoint group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Group {
    requests: u64,
    throttled: u64,
}

impl Group {
    fn useful(self) -> u64 {
        self.requests - self.throttled
    }
}

impl Counts {
    fn useful(&self) -> u64 {
        self.api - self.throttled
    }

    fn route(&self, route: &str) -> u64 {
        self.routes[route]
            .as_object()
            .map(|statuses| statuses.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0)
    }

    fn group(&self, name: &str) -> Group {
        self.groups.get(name).copied().unwrap_or_default()
    }

    fn since(&self, before: &Counts) -> Counts {
        let groups = self
            .groups
            .iter()
            .map(|(name, after)| {
                let before = before.group(name);
                let group = Group {
                    requests: after.requests - before.requests,
                    throttled: after.throttled - before.throttled,
                };
                (name.clone(), group)
            })
            .collect();
        Counts {
            api: self.api - before.api,
            throttled: self.throttled - before.throttled,
            routes: self.routes.clone(),
            groups,
            groups_source: self.groups_source,
            users: self.users,
            created: self.created - before.created,
        }
    }
}

/// Requests the sandbox answered on the role and organization routes (`GET /api/v2/roles…`,
/// `GET /api/v2/organizations…`): the cost of `export --include roles,organizations`.
fn authz_routes(counts: &Counts) -> u64 {
    counts
        .routes
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(route, _)| {
            route.starts_with("GET /api/v2/roles") || route.starts_with("GET /api/v2/organizations")
        })
        .map(|(route, _)| counts.route(route))
        .sum()
}

/// The endpoint group of a route as the sandbox names routes (`GET /api/v2/users/{id}`), the
/// way Auth0 groups its limits (AUTH0-FACTS, "Rate limits"): reads of users, writes of users,
/// and the rest.
fn group_of(route: &str) -> &'static str {
    let (method, path) = route.split_once(' ').unwrap_or(("", route));
    if !path.starts_with("/api/v2/users") {
        return "other";
    }
    match method {
        "GET" | "HEAD" => "users-read",
        _ => "users-write",
    }
}

/// The sandbox's own per-group counts, when its stats carry them: they say which bucket a
/// request really used. Read defensively (a map of group to `{requests, throttled}`, where
/// `requests` may also be a map of status to count), since the field is newer than the runner;
/// `None` when absent or unreadable, and the routes decide.
fn sandbox_groups(stats: &Value) -> Option<BTreeMap<String, Group>> {
    let groups = ["groups", "rate_groups", "by_group"]
        .iter()
        .find_map(|key| stats.get(*key)?.as_object())?;
    let total = |value: &Value| -> Option<u64> {
        match value {
            Value::Number(n) => n.as_u64(),
            Value::Object(map) => Some(map.values().filter_map(Value::as_u64).sum()),
            _ => None,
        }
    };
    let mut out = BTreeMap::new();
    for (name, counts) in groups {
        let requests = ["requests", "total"]
            .iter()
            .find_map(|key| total(counts.get(*key)?))?;
        let throttled = ["throttled", "429"]
            .iter()
            .find_map(|key| counts.get(*key)?.as_u64())
            .or_else(|| counts.get("requests")?.get("429")?.as_u64())
            .unwrap_or(0);
        out.insert(
            name.replace('_', "-"),
            Group {
                requests,
                throttled,
            },
        );
    }
    Some(out)
}

impl Bench {
    fn dir(&self, name: &str) -> PathBuf {
        let dir = self.work.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a work folder");
        dir
    }

    /// Starts `auth0-bulk sandbox` with `args` and waits for its announcement.
    fn tenant(&self, args: &[String]) -> Tenant {
        let log = File::create(self.work.join("sandbox.log")).expect("sandbox log");
        let mut child = Command::new(BIN)
            .arg("sandbox")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start the sandbox");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("read the sandbox's announcement");
        let announced: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!(
                "the sandbox did not announce itself ({e}): {line:?}; see target/bench/sandbox.log"
            )
        });
        let text = |key: &str| announced[key].as_str().expect("announced").to_string();
        Tenant {
            domain: text("domain"),
            client_id: text("client_id"),
            client_secret: text("client_secret"),
            child: Some(child),
            started: Instant::now(),
        }
    }

    fn get(&self, tenant: &Tenant, path: &str) -> reqwest::Response {
        let url = format!("{}{path}", tenant.domain);
        self.runtime
            .block_on(self.http.get(&url).send())
            .and_then(reqwest::Response::error_for_status)
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    fn counts(&self, tenant: &Tenant) -> Counts {
        let response = self.get(tenant, "/__sandbox/stats");
        let stats: Value = self.runtime.block_on(response.json()).expect("stats JSON");
        let mut counts = Counts {
            routes: stats["requests"].clone(),
            users: stats["users"].as_u64().unwrap_or(0),
            created: stats["writes"]["created"].as_u64().unwrap_or(0),
            ..Counts::default()
        };
        for (route, statuses) in stats["requests"].as_object().into_iter().flatten() {
            if route.contains("/oauth/token") {
                continue;
            }
            let group = counts
                .groups
                .entry(group_of(route).to_string())
                .or_default();
            for (status, n) in statuses.as_object().into_iter().flatten() {
                let n = n.as_u64().unwrap_or(0);
                counts.api += n;
                group.requests += n;
                if status == "429" {
                    counts.throttled += n;
                    group.throttled += n;
                }
            }
        }
        counts.groups_source = "the sandbox's routes";
        if let Some(groups) = sandbox_groups(&stats) {
            counts.groups = groups;
            counts.groups_source = "the sandbox's groups";
        }
        counts
    }

    /// Every `step`th user_id of the tenant, at most `take` of them.
    fn user_ids(&self, tenant: &Tenant, step: usize, take: usize) -> Vec<String> {
        self.sample_users(tenant, step, take)
            .into_iter()
            .map(|u| u.user_id)
            .collect()
    }

    /// Every `step`th user of the tenant, at most `take` of them, read as a stream.
    ///
    /// The runner keeps its own memory small on purpose: a child started by fork or
    /// posix_spawn inherits its parent's peak RSS in `ru_maxrss` until it execs, so a runner
    /// that once held 100,000 users would show up in every later measurement.
    fn sample_users(&self, tenant: &Tenant, step: usize, take: usize) -> Vec<Sampled> {
        #[derive(serde::Deserialize)]
        struct Identity {
            connection: String,
        }
        #[derive(serde::Deserialize)]
        struct User {
            user_id: String,
            email: Option<String>,
            #[serde(default)]
            identities: Vec<Identity>,
        }
        let mut response = self.get(tenant, "/__sandbox/users");
        let mut users = Vec::new();
        let mut buffer: Vec<u8> = Vec::new();
        let mut index = 0usize;
        while users.len() < take {
            let Some(chunk) = self.runtime.block_on(response.chunk()).expect("users") else {
                break;
            };
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                if index.is_multiple_of(step) && users.len() < take {
                    let user: User = serde_json::from_slice(&line).expect("a user");
                    users.push(Sampled {
                        user_id: user.user_id,
                        email: user.email.unwrap_or_default(),
                        connection: user
                            .identities
                            .into_iter()
                            .next()
                            .map_or_else(String::new, |i| i.connection),
                    });
                }
                index += 1;
            }
        }
        users
    }

    /// The tool's command line for `command` against `tenant`, state and summary in `dir`.
    fn tool(&self, tenant: &Tenant, command: &str, dir: &Path, args: &[String]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg(command)
            .args(["--json", "--quiet", "--state"])
            .arg(dir.join("state"))
            .args(args)
            .env("AUTH0_DOMAIN", &tenant.domain)
            .env("AUTH0_CLIENT_ID", &tenant.client_id)
            .env("AUTH0_CLIENT_SECRET", &tenant.client_secret)
            .env_remove("AUTH0_TOKEN")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(File::create(dir.join("summary.json")).expect("summary file"))
            .stderr(File::create(dir.join("stderr.log")).expect("stderr file"));
        cmd
    }
}

impl Tenant {
    /// Stops the sandbox and takes its accounting: how much of the machine it used.
    fn stop(mut self) -> Measured {
        let child = self.child.take().expect("running");
        signal(child.id(), libc::SIGTERM);
        reap(child, self.started)
    }
}

impl Bench {
    /// Runs `auth0-bulk export -o output` to its end.
    fn export(&self, tenant: &Tenant, dir: &Path, output: &Path) -> Measured {
        measure(
            self.tool(tenant, "export", dir, &["-o".into(), path_arg(output)]),
            dir,
        )
    }

    /// Runs `auth0-bulk import` with `args` to its end.
    fn import(&self, tenant: &Tenant, dir: &Path, args: &[String]) -> Measured {
        measure(self.tool(tenant, "import", dir, args), dir)
    }
}

impl Drop for Tenant {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), libc::SIGTERM);
            let _ = child.wait();
        }
    }
}

fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with a pid this process started and has not reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// Runs `cmd` to its end and takes the kernel's accounting of that one process.
fn measure(mut cmd: Command, dir: &Path) -> Measured {
    let start = Instant::now();
    let child = cmd.spawn().expect("start auth0-bulk");
    let mut measured = reap(child, start);
    let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap_or_default();
    measured.summary = serde_json::from_str(summary.trim()).unwrap_or(Value::Null);
    measured
}

/// Waits for `child` with wait4(2): the exit status plus its own CPU time and peak RSS.
fn reap(child: Child, start: Instant) -> Measured {
    match wait(child, start, 0) {
        Ok(measured) => measured,
        Err(_) => unreachable!("a blocking wait4 returns the child"),
    }
}

/// wait4(2) on `child` with `flags`: its accounting once it has ended, else the child back
/// (only with `WNOHANG`).
fn wait(child: Child, start: Instant, flags: libc::c_int) -> Result<Measured, Child> {
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our child and `Child` never waits for it after it is reaped here.
    let reaped = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
    if reaped == 0 {
        return Err(child);
    }
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    let elapsed = start.elapsed().as_secs_f64();
    std::mem::forget(child);
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Ok(Measured {
        elapsed,
        cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        // Linux reports ru_maxrss in KiB.
        max_rss_mib: usage.ru_maxrss as f64 / 1024.0,
        code,
        summary: Value::Null,
    })
}

/// Of a few runs of one command, the one with the highest peak RSS.
fn highest_peak(runs: Vec<Measured>) -> Measured {
    runs.into_iter()
        .max_by(|a, b| a.max_rss_mib.total_cmp(&b.max_rss_mib))
        .expect("at least one run")
}

/// What a watcher wants after a look at a running tool.
enum Look {
    Continue,
    Kill,
}

/// Starts `cmd` and calls `look` with the seconds since its start every `every` while it
/// runs; SIGKILLs it when `look` says so. Ends with the kernel's accounting of the process,
/// whether it ended by itself or was killed.
fn watch(mut cmd: Command, every: Duration, mut look: impl FnMut(f64) -> Look) -> Measured {
    let start = Instant::now();
    let mut child = cmd.spawn().expect("start auth0-bulk");
    loop {
        child = match wait(child, start, libc::WNOHANG) {
            Ok(ended) => return ended,
            Err(running) => running,
        };
        if let Look::Kill = look(start.elapsed().as_secs_f64()) {
            signal(child.id(), libc::SIGKILL);
            return reap(child, start);
        }
        std::thread::sleep(every);
    }
}

/// Starts `cmd`, waits until `ready` says so (checked every 20 ms), then SIGKILLs it. A run
/// that ends first is reported as it ended.
fn kill_when(cmd: Command, mut ready: impl FnMut() -> bool) -> Measured {
    watch(cmd, Duration::from_millis(20), |_| {
        if ready() { Look::Kill } else { Look::Continue }
    })
}

// ---- Inputs ---------------------------------------------------------------------------------

/// `n` users to create, as NDJSON (or CSV with JSON metadata cells), optionally gzipped.
fn write_creates(path: &Path, n: usize, csv: bool, gzip: bool) {
    let file = File::create(path).expect("create the input");
    let mut out: Box<dyn Write> = if gzip {
        Box::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::fast(),
        ))
    } else {
        Box::new(std::io::BufWriter::new(file))
    };
    if csv {
        writeln!(out, "user_id,email,connection,user_metadata,app_metadata").unwrap();
    }
    for i in 0..n {
        let user_id = format!("auth0|bench{i:019}");
        let email = format!("bench.user{i}@example.com");
        let user_metadata = json!({
            "locale": "en-GB",
            "preferences": {"theme": if i % 2 == 0 { "dark" } else { "light" }, "newsletter": i % 3 == 0},
        });
        let app_metadata = json!({"plan": "free", "roles": ["reader"], "account": {"id": i}});
        if csv {
            let mut row = csv::Writer::from_writer(Vec::new());
            row.write_record([
                user_id.as_str(),
                &email,
                "Username-Password-Authentication",
                &user_metadata.to_string(),
                &app_metadata.to_string(),
            ])
            .unwrap();
            out.write_all(&row.into_inner().unwrap()).unwrap();
        } else {
            let record = json!({
                "user_id": user_id,
                "email": email,
                "connection": "Username-Password-Authentication",
                "user_metadata": user_metadata,
                "app_metadata": app_metadata,
            });
            writeln!(out, "{record}").unwrap();
        }
    }
    out.flush().unwrap();
}

/// One legacy record, and the email and password of a good one.
type LegacyRow = (Value, Option<(String, String)>);

/// What [`write_legacy`] wrote: each good user's email and password, and how many are bad.
struct Legacy {
    good: Vec<(String, String)>,
    bad: usize,
}

/// A legacy store's export: `n` records with password hashes (bcrypt, PBKDF2, salted
/// SHA-256 in turn), one in fifty bad. Hashed on every core: bcrypt at cost 10 is slow on
/// purpose.
fn write_legacy(path: &Path, n: usize) -> Legacy {
    use base64::Engine as _;
    use sha2::Digest as _;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let record = |i: usize| -> LegacyRow {
        let email = format!("legacy.user{i}@example.com");
        let password = format!("Legacy-{i}-pass!");
        let salt = format!("salt{:012}", i * 7919);
        let hash = match i % 3 {
            0 => json!({"password_hash": bcrypt::hash(&password, 10).expect("bcrypt")}),
            1 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                    password.as_bytes(),
                    salt.as_bytes(),
                    10_000,
                    &mut out,
                );
                let phc = format!(
                    "$pbkdf2-sha256$i=10000,l=32${}${}",
                    b64.encode(salt.as_bytes()),
                    b64.encode(out)
                );
                json!({"custom_password_hash": {"algorithm": "pbkdf2", "hash": {"value": phc, "encoding": "utf8"}}})
            }
            _ => {
                let digest = sha2::Sha256::digest(format!("{salt}{password}").as_bytes());
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                json!({"custom_password_hash": {
                    "algorithm": "sha256",
                    "hash": {"value": hex, "encoding": "hex"},
                    "salt": {"value": salt, "encoding": "utf8", "position": "prefix"},
                }})
            }
        };
        let mut user = json!({
            "email": email,
            "connection": "Username-Password-Authentication",
            "given_name": format!("Legacy {i}"),
            "user_metadata": {"legacy_id": i},
        });
        for (key, value) in hash.as_object().expect("an object") {
            user[key] = value.clone();
        }
        if i % 50 == 25 {
            match (i / 50) % 4 {
                0 if user.get("custom_password_hash").is_some() => {
                    user["custom_password_hash"]["algorithm"] = json!("sha257");
                }
                0 | 1 => user["email"] = json!("not-an-email"),
                2 => {
                    user.as_object_mut().expect("an object").remove("email");
                }
                _ => {
                    user.as_object_mut()
                        .expect("an object")
                        .remove("password_hash");
                    user["custom_password_hash"] = json!({
                        "algorithm": "sha256",
                        "hash": {"value": "abcd", "encoding": "hex"},
                    });
                }
            }
            return (user, None);
        }
        (user, Some((email, password)))
    };
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let made: Vec<Vec<LegacyRow>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| scope.spawn(move || (w..n).step_by(workers).map(record).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("hashing"))
            .collect()
    });
    let mut rows: Vec<(usize, LegacyRow)> = made
        .into_iter()
        .enumerate()
        .flat_map(|(w, rows)| {
            rows.into_iter()
                .enumerate()
                .map(move |(k, r)| (w + k * workers, r))
        })
        .collect();
    rows.sort_by_key(|(i, _)| *i);
    let mut out = std::io::BufWriter::new(File::create(path).expect("create the input"));
    let mut legacy = Legacy {
        good: Vec::new(),
        bad: 0,
    };
    for (_, (user, good)) in rows {
        writeln!(out, "{user}").unwrap();
        match good {
            Some(good) => legacy.good.push(good),
            None => legacy.bad += 1,
        }
    }
    out.flush().unwrap();
    legacy
}

/// The files under `dir` (the input aside) that hold something like a password hash: a
/// bcrypt or PHC string, a salt of [`write_legacy`]'s, or a SHA-256 in hex.
fn leaked_hashes(dir: &Path) -> Vec<String> {
    let patterns =
        regex::Regex::new(r"\$2[aby]\$|\$pbkdf2|salt[0-9]{12}|[0-9a-f]{64}").expect("regex");
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read a folder").flatten() {
                stack.push(entry.path());
            }
        } else if path.file_name().is_some_and(|n| n != "legacy.ndjson") {
            let bytes = std::fs::read(&path).unwrap_or_default();
            if patterns.is_match(&String::from_utf8_lossy(&bytes)) {
                found.push(
                    path.strip_prefix(dir)
                        .unwrap_or(&path)
                        .display()
                        .to_string(),
                );
            }
        }
    }
    found
}

/// A backfill: `app_metadata.plan` for each of `users`, matched by user_id.
fn write_backfill(path: &Path, user_ids: &[String]) {
    let mut out = std::io::BufWriter::new(File::create(path).expect("create the input"));
    for user_id in user_ids {
        let record = json!({"user_id": user_id, "app_metadata": {"plan": "enterprise"}});
        writeln!(out, "{record}").unwrap();
    }
    out.flush().unwrap();
}

/// A backfill matched by email: a key of `app_metadata` for each of `users`, so each record
/// is one lookup (`users-by-email`) and one PATCH.
fn write_backfill_by_email(path: &Path, users: &[Sampled]) {
    let mut out = std::io::BufWriter::new(File::create(path).expect("create the input"));
    for user in users {
        let record = json!({
            "email": user.email,
            "connection": user.connection,
            "app_metadata": {"bench": "backfill"},
        });
        writeln!(out, "{record}").unwrap();
    }
    out.flush().unwrap();
}

/// What an upsert record does to the tenant.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Upsert {
    /// A new email: a lookup that finds no one, then a POST.
    New,
    /// An existing user with a new `app_metadata` key: a lookup, then a PATCH.
    Changed,
    /// An existing user as it is: a lookup, and nothing to send.
    Unchanged,
}

/// An upsert by email of `new` new users and `changed` + `unchanged` of `existing` (taken in
/// order), the kinds interleaved evenly so the mix of reads and writes is the same all
/// through the run. New users are `bench.{tag}{i}@example.com`.
fn write_upsert(
    path: &Path,
    tag: &str,
    existing: &[Sampled],
    [new, changed, unchanged]: [usize; 3],
) -> usize {
    let mut out = std::io::BufWriter::new(File::create(path).expect("create the input"));
    let total = new + changed + unchanged;
    let kinds = [
        (Upsert::New, new),
        (Upsert::Changed, changed),
        (Upsert::Unchanged, unchanged),
    ];
    let mut done = [0usize; 3];
    let mut existing = existing.iter();
    for i in 0..total {
        // The kind furthest behind its even share so far goes next.
        let (k, _) = kinds
            .iter()
            .enumerate()
            .filter(|(k, (_, n))| done[*k] < *n)
            .map(|(k, (_, n))| {
                (
                    k,
                    (i + 1) as f64 * *n as f64 / total as f64 - done[k] as f64,
                )
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .expect("a kind with records left");
        done[k] += 1;
        let record = match kinds[k].0 {
            Upsert::New => json!({
                "email": format!("bench.{tag}{i}@example.com"),
                "connection": "Username-Password-Authentication",
                "app_metadata": {"bench": tag},
            }),
            kind => {
                let user = existing.next().expect("enough existing users sampled");
                let mut record = json!({"email": user.email, "connection": user.connection});
                if kind == Upsert::Changed {
                    record["app_metadata"] = json!({"bench": tag});
                }
                record
            }
        };
        writeln!(out, "{record}").unwrap();
    }
    out.flush().unwrap();
    total
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

/// Waits until a bucket that a job drained has filled again, so the next job on the tenant
/// starts as a fresh one would.
fn refill(rate: u32, burst: u32) {
    std::thread::sleep(Duration::from_secs_f64(
        f64::from(burst) / f64::from(rate) + 1.0,
    ));
}

// ---- Scenario 1: at the limit ---------------------------------------------------------------

/// The rates of the zero-latency rows with the burst Auth0 gives the plan that has it
/// (AUTH0-FACTS, "Limits by plan"): Free 2/s burst 2; 10/s with the burst 10 of an Enterprise
/// non-production tenant; 50/s with the burst 50 of Enterprise production.
const LIMITS: [(u32, u32); 3] = [(2, 2), (10, 10), (50, 50)];

/// The rates of the rows with a real round trip (AUTH0-FACTS, "Limits by plan"): Free 2/s
/// burst 2; Enterprise production 16/s burst 50; and 50/s burst 50.
const LATENCY_LIMITS: [(u32, u32); 3] = [(2, 2), (16, 50), (50, 50)];

/// Round trips a real tenant answers in (100–500 ms): the sandbox's `--latency`.
const LATENCIES: [u64; 2] = [200, 500];

/// Each job at a round trip is sized to send about this many seconds' worth of requests at
/// the limit: long enough that the start and the end are a small share, short enough that
/// the section stays under twenty minutes.
const SECONDS_AT_LIMIT: usize = 30;

struct AtLimitRow {
    job: String,
    rate: u32,
    burst: u32,
    latency: u64,
    work: String,
    run: Measured,
    counts: Counts,
    users: Option<u64>,
}

impl Bench {
    fn at_limit(&self) -> Section {
        let mut rows = Vec::new();
        let picked = |rate: &u32| self.rates.is_empty() || self.rates.contains(rate);
        for (rate, burst) in LIMITS.into_iter().filter(|(r, _)| picked(r)) {
            self.at_limit_without_latency(rate, burst, &mut rows);
        }
        // The smoke run shows the rows with a round trip work, at one limit, in seconds.
        let (latencies, limits): (&[u64], &[(u32, u32)]) = match self.size {
            Size::Smoke => (&LATENCIES[..1], &LATENCY_LIMITS[2..]),
            _ => (&LATENCIES, &LATENCY_LIMITS),
        };
        for &latency in latencies {
            for &(rate, burst) in limits.iter().filter(|(r, _)| picked(r)) {
                self.at_limit_with_latency(rate, burst, latency, &mut rows);
            }
        }
        let mut table = Table::new(&[
            "job",
            "limit (burst)",
            "latency ms",
            "work",
            "exit",
            "elapsed s",
            "API requests",
            "429s",
            "useful req/s",
            "÷ limit",
            "÷ ceiling",
            "429 share",
            "req / 100 users",
            "goals",
        ]);
        for row in &rows {
            let useful = row.counts.useful() as f64;
            let per_second = useful / row.run.elapsed;
            let of_limit = per_second / row.rate as f64;
            // The most any client could have had: the bucket's burst plus its refill.
            let ceiling = row.burst as f64 + row.rate as f64 * row.run.elapsed;
            let of_ceiling = useful / ceiling;
            let share = row.counts.throttled as f64 / row.counts.api.max(1) as f64;
            let per_100 = row.users.map(|u| 100.0 * row.counts.api as f64 / u as f64);
            let mut missed = Vec::new();
            if of_limit < 0.95 {
                missed.push("rate < 0.95");
            }
            if share > 0.01 {
                missed.push("429 > 1%");
            }
            if per_100.is_some_and(|p| p > 1.15) {
                missed.push("requests > 1.15/100");
            }
            if row.run.code != 0 {
                missed.push("exit ≠ 0");
            }
            table.row(vec![
                row.job.clone(),
                format!("{}/s ({})", row.rate, row.burst),
                row.latency.to_string(),
                row.work.clone(),
                row.run.code.to_string(),
                format!("{:.1}", row.run.elapsed),
                row.counts.api.to_string(),
                row.counts.throttled.to_string(),
                format!("{per_second:.2}"),
                format!("{of_limit:.3}"),
                format!("{of_ceiling:.3}"),
                format!("{:.2}%", share * 100.0),
                per_100.map_or("–".into(), |p| format!("{p:.3}")),
                verdict(&missed),
            ]);
        }
        Section {
            key: "at-limit",
            title: "At the limit".into(),
            intro: format!(
                "The tool runs with default flags: `--rate auto` (it is not told the limit and \
                 paces itself from the `x-ratelimit-*` headers) and no `--concurrency` (it \
                 sizes the work in flight itself). The sandbox enforces one token bucket with \
                 the given rate and burst for every API request, and adds `latency ms` to each \
                 answer, as a real tenant's round trip (100–500 ms) would. *Useful* requests are \
                 API requests not answered 429 (the token request aside). `÷ limit` is useful \
                 req/s over the rate (goal ≥ 0.95); since a run also spends the initial burst, \
                 `÷ ceiling` divides by what the bucket could give at most in that time \
                 (burst + rate × elapsed). Elapsed time includes the process start and the \
                 token request. The rows with a round trip are sized to about {SECONDS_AT_LIMIT} s \
                 of requests at the limit, and their four jobs run on one tenant, one after the \
                 other, each once the bucket has filled again: the export; a backfill matched by \
                 email (`--mode update --match email`: a lookup and a PATCH per record); creates \
                 (`--mode create`); an upsert by email (`--mode upsert --match email`) of half \
                 existing users (a lookup and a PATCH) and half new ones (a lookup and a POST). \
                 Creates give every user a random password."
            ),
            table,
        }
    }

    /// The zero-latency rows: an export, a backfill by user_id on the same tenant, and
    /// creates into an empty tenant.
    fn at_limit_without_latency(&self, rate: u32, burst: u32, rows: &mut Vec<AtLimitRow>) {
        let limit = strings(&["--rate", &rate.to_string(), "--burst", &burst.to_string()]);
        // Export.
        let users = match rate {
            2 => self.size.n(10_000, 20_000),
            10 => self.size.n(20_000, 50_000),
            _ => self.size.n(50_000, 50_000),
        };
        let mut args = limit.clone();
        args.extend(strings(&["--generate", &users.to_string()]));
        let tenant = self.tenant(&args);
        let dir = self.dir(&format!("at-limit-export-{rate}"));
        let output = dir.join("users.ndjson");
        let run = self.export(&tenant, &dir, &output);
        let counts = self.counts(&tenant);
        eprintln!("  export at {rate}/s: {:.1} s", run.elapsed);
        rows.push(AtLimitRow {
            job: "export".into(),
            rate,
            burst,
            latency: 0,
            work: format!("{users} users"),
            run,
            counts,
            users: Some(users as u64),
        });
        // A backfill on the same tenant: one lookup and one PATCH per record.
        let records = rate as usize * self.size.n(15, 250);
        let targets = self.user_ids(&tenant, 7, records);
        let dir = self.dir(&format!("at-limit-backfill-{rate}"));
        let input = dir.join("backfill.ndjson");
        write_backfill(&input, &targets);
        refill(rate, burst);
        let before = self.counts(&tenant);
        let run = self.import(
            &tenant,
            &dir,
            &strings(&["-i", &path_arg(&input), "--mode", "update"]),
        );
        let counts = self.counts(&tenant).since(&before);
        eprintln!("  backfill at {rate}/s: {:.1} s", run.elapsed);
        rows.push(AtLimitRow {
            job: "import: backfill (update)".into(),
            rate,
            burst,
            latency: 0,
            work: format!("{} records", targets.len()),
            run,
            counts,
            users: None,
        });
        drop(tenant);
        // Creates into an empty tenant.
        let creates = rate as usize
            * match rate {
                2 => self.size.n(20, 1000),
                10 => self.size.n(30, 300),
                _ => self.size.n(30, 100),
            };
        let tenant = self.tenant(&limit);
        let dir = self.dir(&format!("at-limit-create-{rate}"));
        let input = dir.join("creates.ndjson");
        write_creates(&input, creates, false, false);
        let run = self.import(
            &tenant,
            &dir,
            &strings(&["-i", &path_arg(&input), "--passwords", "random"]),
        );
        let counts = self.counts(&tenant);
        eprintln!("  create at {rate}/s: {:.1} s", run.elapsed);
        rows.push(AtLimitRow {
            job: "import: create".into(),
            rate,
            burst,
            latency: 0,
            work: format!("{creates} records"),
            run,
            counts,
            users: None,
        });
    }

    /// The rows at a real round trip: export, backfill by email, create and upsert by email,
    /// one after the other on one tenant, each sized to [`SECONDS_AT_LIMIT`] at the limit.
    fn at_limit_with_latency(
        &self,
        rate: u32,
        burst: u32,
        latency: u64,
        rows: &mut Vec<AtLimitRow>,
    ) {
        let requests = rate as usize * SECONDS_AT_LIMIT;
        // An export sends about one request per 100 users; the imports by email two per
        // record (lookup, then write) and the creates one.
        let users = self.size.n(requests * 100, requests * 100);
        let pairs = self.size.n(requests / 2, requests / 2).max(2);
        let creates = self.size.n(requests, requests);
        let tenant = self.tenant(&strings(&[
            "--rate",
            &rate.to_string(),
            "--burst",
            &burst.to_string(),
            "--latency",
            &latency.to_string(),
            "--generate",
            &users.to_string(),
        ]));
        let name = |job: &str| format!("at-limit-{job}-{rate}-{latency}ms");
        let mut row = |job: &str, work: String, run: Measured, counts: Counts| {
            eprintln!("  {job} at {rate}/s, {latency} ms: {:.1} s", run.elapsed);
            rows.push(AtLimitRow {
                job: job.into(),
                rate,
                burst,
                latency,
                users: (job == "export").then_some(users as u64),
                work,
                run,
                counts,
            });
        };
        let dir = self.dir(&name("export"));
        let run = self.export(&tenant, &dir, &dir.join("users.ndjson"));
        row(
            "export",
            format!("{users} users"),
            run,
            self.counts(&tenant),
        );
        // Existing users for the backfill and for the upsert's existing half, none twice.
        let sampled = self.sample_users(&tenant, 7, pairs + pairs / 2);
        let (backfill, existing) = sampled.split_at(pairs.min(sampled.len()));
        let mut job = |job: &str, dir: &Path, args: &[String], work: String| {
            refill(rate, burst);
            let before = self.counts(&tenant);
            let run = self.import(&tenant, dir, args);
            row(job, work, run, self.counts(&tenant).since(&before));
        };
        let dir = self.dir(&name("backfill-email"));
        let input = dir.join("backfill.ndjson");
        write_backfill_by_email(&input, backfill);
        job(
            "import: backfill by email (update)",
            &dir,
            &strings(&[
                "-i",
                &path_arg(&input),
                "--mode",
                "update",
                "--match",
                "email",
            ]),
            format!("{} records", backfill.len()),
        );
        let dir = self.dir(&name("create"));
        let input = dir.join("creates.ndjson");
        write_creates(&input, creates, false, false);
        job(
            "import: create",
            &dir,
            &strings(&["-i", &path_arg(&input), "--passwords", "random"]),
            format!("{creates} records"),
        );
        let dir = self.dir(&name("upsert"));
        let input = dir.join("upsert.ndjson");
        let new = pairs - existing.len();
        let records = write_upsert(&input, "upsert", existing, [new, existing.len(), 0]);
        job(
            "import: upsert by email",
            &dir,
            &strings(&[
                "-i",
                &path_arg(&input),
                "--mode",
                "upsert",
                "--match",
                "email",
                "--passwords",
                "random",
            ]),
            format!("{records} records ({new} new)"),
        );
    }

    // ---- Scenario: per endpoint group --------------------------------------------------------

    /// An upsert by email against a tenant with one bucket per endpoint group: lookups spend
    /// the reads' budget, creates and patches the writes'. `--rate auto` must learn and spend
    /// both at once.
    fn per_group(&self) -> Section {
        let title = "Per endpoint group".to_string();
        // Auth0's Essentials plan (AUTH0-FACTS, "Limits by plan"): read users burst 40 at
        // 500/min (8/s), write users burst 20 at 200/min (3/s), each its own bucket.
        let groups = [("users-read", 8u32, 40u32), ("users-write", 3, 20)];
        let latency = 200;
        let mut args: Vec<String> = groups
            .iter()
            .flat_map(|(g, rate, burst)| ["--rate-group".into(), format!("{g}={rate}/{burst}")])
            .collect();
        let help = shell(BIN, &["sandbox", "--help"]);
        if !help.contains("--rate-group") {
            let mut table = Table::new(&["group", "limit (burst)", "goal"]);
            for (group, rate, burst) in groups {
                table.row(vec![
                    group.into(),
                    format!("{rate}/s ({burst})"),
                    "not run".into(),
                ]);
            }
            return Section {
                key: "per-group",
                title,
                intro: format!(
                    "Not run: this build's sandbox has no `--rate-group` flag (`auth0-bulk \
                     sandbox {}` needs it).",
                    args.join(" ")
                ),
                table,
            };
        }
        // Every record is one lookup; a share of them also write. The share is the ratio of
        // the two limits, so that both budgets can be spent together: at 8 lookups/s and
        // 3 writes/s, 3 records in 8 write (half of them creates, half patches), the
        // other 5 are unchanged. With more writes the writes' limit would hold the reads
        // back (with fewer, the reads' limit the writes), and no client could meet both goals.
        let records = match self.size {
            Size::Smoke => 160,
            _ => 5_000,
        };
        let (read_rate, write_rate) = (groups[0].1 as usize, groups[1].1 as usize);
        let writes = records * write_rate / read_rate;
        let new = writes / 2;
        let changed = writes - new;
        let unchanged = records - writes;
        args.extend(strings(&[
            "--latency",
            &latency.to_string(),
            "--generate",
            &(changed + unchanged).to_string(),
        ]));
        let tenant = self.tenant(&args);
        let existing = self.sample_users(&tenant, 1, changed + unchanged);
        let dir = self.dir("per-group-upsert");
        let input = dir.join("upsert.ndjson");
        write_upsert(&input, "group", &existing, [new, changed, unchanged]);
        let command = self.tool(
            &tenant,
            "import",
            &dir,
            &strings(&[
                "-i",
                &path_arg(&input),
                "--mode",
                "upsert",
                "--match",
                "email",
                "--passwords",
                "random",
            ]),
        );
        // The sandbox's counts twice a second: when each group made its last request.
        let mut samples: Vec<(f64, Counts)> = Vec::new();
        let mut run = watch(command, Duration::from_millis(500), |t| {
            samples.push((t, self.counts(&tenant)));
            Look::Continue
        });
        let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap_or_default();
        run.summary = serde_json::from_str(summary.trim()).unwrap_or(Value::Null);
        let end = self.counts(&tenant);
        samples.push((run.elapsed, end.clone()));
        eprintln!("  upsert of {records} records: {:.1} s", run.elapsed);
        let mut table = Table::new(&[
            "group",
            "limit (burst)",
            "API requests",
            "429s",
            "busy s",
            "useful req/s while busy",
            "÷ limit",
            "÷ ceiling",
            "useful req/s over the run",
            "429 share",
            "goals",
        ]);
        for (group, rate, burst) in groups {
            let counts = end.group(group);
            let busy = busy_until(&samples, group);
            let per_second = counts.useful() as f64 / busy;
            let of_limit = per_second / f64::from(rate);
            let ceiling = f64::from(burst) + f64::from(rate) * busy;
            let share = counts.throttled as f64 / counts.requests.max(1) as f64;
            let mut missed = Vec::new();
            if of_limit < 0.9 {
                missed.push("rate < 0.9");
            }
            if share > 0.01 {
                missed.push("429 > 1%");
            }
            if run.code != 0 {
                missed.push("exit ≠ 0");
            }
            table.row(vec![
                group.into(),
                format!("{rate}/s ({burst})"),
                counts.requests.to_string(),
                counts.throttled.to_string(),
                format!("{busy:.1}"),
                format!("{per_second:.2}"),
                format!("{of_limit:.3}"),
                format!("{:.3}", counts.useful() as f64 / ceiling),
                format!("{:.2}", counts.useful() as f64 / run.elapsed),
                format!("{:.2}%", share * 100.0),
                verdict(&missed),
            ]);
        }
        let outcome = |key: &str| run.summary[key].as_u64().unwrap_or(0);
        Section {
            key: "per-group",
            title,
            intro: format!(
                "The sandbox keeps one token bucket per endpoint group (`{}`) and answers in \
                 {latency} ms. The tool runs with default flags (`--rate auto`, no \
                 `--concurrency`): an upsert by email (`--mode upsert --match email`) of \
                 {records} records, {new} new users, {changed} existing users with a change and \
                 {unchanged} existing users as they are, evenly mixed. Each record is a lookup \
                 (`users-read`); new users are then created and changed ones patched \
                 (`users-write`). That is 3 writes in 8 records, the ratio of the two limits, \
                 so both budgets can be spent at once. The run: exit {}, {:.1} s, {} created, \
                 {} updated, {} unchanged, {} rejected. Each group's rate is its useful requests \
                 over the time it was busy: from the tool's start to the group's last request \
                 (seen in the sandbox's counts, read every 0.5 s). Both groups have work from \
                 the start, and a group that is done early is idle for want of work, not of \
                 budget, so this is the rate at which it spent its budget; the rate over the \
                 whole run is shown too. Goal: ≥ 0.9 of each limit, ≤ 1% 429s. Group counts \
                 come from {}.",
                args[..4].join(" "),
                run.code,
                run.elapsed,
                outcome("created"),
                outcome("updated"),
                outcome("unchanged"),
                outcome("rejected"),
                end.groups_source,
            ),
            table,
        }
    }

    // ---- Scenario: creates through import jobs -------------------------------------------

    /// Creates one user at a time against the users write limit, then through bulk-import
    /// jobs against the same tenant's limits: how many times faster the jobs are.
    fn jobs(&self) -> Section {
        let title = "Creates through import jobs".to_string();
        // Facts ("Limits by plan"): Essentials writes users at 200/min, a bucket of 20, and
        // reads them at 500/min, a bucket of 40. The job rate is the sandbox's default, from
        // the ~400k users/hour with two jobs Auth0's users report ("Bulk import jobs").
        let limits = [
            "--rate-group",
            "users-write=3.333/20",
            "--rate-group",
            "users-read=8.333/40",
            "--latency",
            "200",
        ];
        let per_user = self.size.n(600, 2_000);
        let by_job = self.size.n(20_000, 100_000);
        let mut table = Table::new(&[
            "engine",
            "creates",
            "exit",
            "elapsed s",
            "creates/s",
            "API requests",
            "429s",
            "CPU s",
            "peak RSS MiB",
        ]);
        let mut rates = Vec::new();
        for (engine, records) in [("api", per_user), ("job", by_job)] {
            let tenant = self.tenant(&strings(&limits));
            let dir = self.dir(&format!("jobs-{engine}"));
            let input = dir.join("creates.ndjson");
            write_creates(&input, records, false, false);
            let run = self.import(
                &tenant,
                &dir,
                &strings(&[
                    "-i",
                    &path_arg(&input),
                    "--engine",
                    engine,
                    "--passwords",
                    "random",
                ]),
            );
            let counts = self.counts(&tenant);
            let created = run.summary["created"].as_u64().unwrap_or(0);
            let rate = created as f64 / run.elapsed;
            eprintln!("  {engine}: {created} creates in {:.1} s", run.elapsed);
            rates.push(rate);
            table.row(vec![
                format!("`--engine {engine}`"),
                created.to_string(),
                run.code.to_string(),
                format!("{:.1}", run.elapsed),
                format!("{rate:.1}"),
                counts.api.to_string(),
                counts.throttled.to_string(),
                format!("{:.1}", run.cpu),
                format!("{:.1}", run.max_rss_mib),
            ]);
            drop(tenant.stop());
        }
        let ratio = rates[1] / rates[0].max(f64::MIN_POSITIVE);
        let goal = if ratio >= 10.0 { "met" } else { "**missed**" };
        Section {
            key: "jobs",
            title,
            intro: format!(
                "Two fresh sandboxes with Essentials' user limits (`{}`: writes 200/min, a \
                 bucket of 20; reads 500/min, a bucket of 40), answering in 200 ms, and \
                 import jobs at the sandbox's default speed (55 users/s a job, Auth0's reported \
                 ~400k users/hour with two jobs). The same generated creates (`--passwords \
                 random`), {per_user} one user at a time (`--engine api`), {by_job} through \
                 jobs (`--engine job`, two at a time, files up to 512,000 bytes). Jobs create \
                 **{ratio:.1}×** as fast (goal ≥ 10×: {goal}).",
                limits[..4].join(" "),
            ),
            table,
        }
    }

    /// A legacy store's users with their password hashes into an empty tenant through jobs:
    /// every good user created once and able to sign in with their old password.
    fn migration(&self) -> Section {
        let title = "A legacy-store migration with password hashes".to_string();
        let records = self.size.n(20_000, 20_000);
        let dir = self.dir("migration");
        let input = dir.join("legacy.ndjson");
        eprintln!("  hashing {records} passwords");
        let started = Instant::now();
        let legacy = write_legacy(&input, records);
        let hashing = started.elapsed().as_secs_f64();
        let tenant = self.tenant(&strings(&["--latency", "200"]));
        let run = self.import(
            &tenant,
            &dir,
            &strings(&["-i", &path_arg(&input), "--engine", "job"]),
        );
        let counts = self.counts(&tenant);
        eprintln!("  import: {:.1} s; signing in", run.elapsed);
        // Every good user signs in with the password their hash was made from.
        use futures::StreamExt;
        let signed_in = self.runtime.block_on(async {
            futures::stream::iter(legacy.good.iter())
                .map(|(email, password)| {
                    let url = format!("{}/__sandbox/login", tenant.domain);
                    let body = json!({
                        "email": email,
                        "connection": "Username-Password-Authentication",
                        "password": password,
                    });
                    let http = &self.http;
                    async move {
                        let answer: Value = http
                            .post(url)
                            .json(&body)
                            .send()
                            .await
                            .expect("login")
                            .json()
                            .await
                            .expect("login JSON");
                        answer["ok"] == true
                    }
                })
                .buffer_unordered(4)
                .filter(|ok| futures::future::ready(*ok))
                .count()
                .await
        });
        let users = self.sample_users(&tenant, 1, usize::MAX);
        let unique: std::collections::BTreeSet<&str> =
            users.iter().map(|u| u.email.as_str()).collect();
        let rejects = std::fs::read_to_string(input.with_extension("ndjson.rejects.ndjson"))
            .unwrap_or_default();
        let rejected_lines: Vec<Value> = rejects
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let with_line_and_reason = rejected_lines
            .iter()
            .filter(|r| r["_error"]["line"].is_u64() && r["_error"]["message"].is_string())
            .count();
        // No hash, salt or hash-like string in anything the run wrote.
        let leaks = leaked_hashes(&dir);
        let outcome = |key: &str| run.summary[key].as_u64().unwrap_or(0);
        let good = legacy.good.len();
        let mut missed = Vec::new();
        if outcome("created") != good as u64 || users.len() != good || unique.len() != good {
            missed.push("not every good user created once");
        }
        if signed_in != good {
            missed.push("not every good user signs in");
        }
        if rejected_lines.len() != legacy.bad || with_line_and_reason != legacy.bad {
            missed.push("rejects ≠ bad records");
        }
        if !leaks.is_empty() {
            missed.push("a hash in the output");
        }
        let mut table = Table::new(&[
            "records",
            "bad",
            "exit",
            "import s",
            "created",
            "users in tenant (distinct emails)",
            "sign in with old password",
            "rejected (with line and reason)",
            "API requests",
            "files with a hash",
            "goals",
        ]);
        table.row(vec![
            records.to_string(),
            legacy.bad.to_string(),
            run.code.to_string(),
            format!("{:.1}", run.elapsed),
            outcome("created").to_string(),
            format!("{} ({})", users.len(), unique.len()),
            format!("{signed_in} of {good}"),
            format!("{} ({with_line_and_reason})", rejected_lines.len()),
            counts.api.to_string(),
            if leaks.is_empty() {
                "none".into()
            } else {
                leaks.join(", ")
            },
            verdict(&missed),
        ]);
        drop(tenant.stop());
        Section {
            key: "migration",
            title,
            intro: format!(
                "{records} legacy records, a third each with a bcrypt `password_hash` (cost 10), \
                 a PBKDF2-SHA256 PHC string (10,000 rounds) and a salted SHA-256 (hex, salt \
                 prefix) as `custom_password_hash`, and one in fifty bad (an unknown \
                 algorithm, a hash of the wrong length, an email that is not one, no email), \
                 imported into an empty sandbox answering in 200 ms with `--engine job` \
                 (hashing them took {hashing:.0} s, outside the import). Then every good user \
                 signs in with their original password (`POST /__sandbox/login`, which \
                 verifies the stored hash), and everything the run wrote (stdout, stderr, \
                 rejects, state) is searched for a hash, a PHC string or a salt."
            ),
            table,
        }
    }

    // ---- Scenario 2: overhead ---------------------------------------------------------------

    fn overhead(&self) -> Section {
        let mut table = Table::new(&[
            "job",
            "work",
            "exit",
            "elapsed s",
            "throughput",
            "tool CPU s",
            "CPU s per unit",
            "goal",
        ]);
        let mut sandbox_cpu = Vec::new();
        let users = self.size.n(100_000, 1_000_000);
        let tenant = self.tenant(&strings(&["--generate", &users.to_string()]));
        for (job, name, file) in [
            ("export (NDJSON)", "overhead-export", "users.ndjson"),
            (
                "export (NDJSON, gzip)",
                "overhead-export-gz",
                "users.ndjson.gz",
            ),
            ("export (CSV)", "overhead-export-csv", "users.csv"),
            (
                "export (CSV, gzip)",
                "overhead-export-csv-gz",
                "users.csv.gz",
            ),
        ] {
            let dir = self.dir(name);
            let run = self.export(&tenant, &dir, &dir.join(file));
            self.exports
                .borrow_mut()
                .push((users, file.to_string(), run.clone()));
            // The output is not needed, and four of a million users would fill a small disk.
            let _ = std::fs::remove_dir_all(&dir);
            eprintln!("  {job} {users}: {:.1} s", run.elapsed);
            let per_100k = run.cpu / users as f64 * 100_000.0;
            table.row(vec![
                job.into(),
                format!("{users} users"),
                run.code.to_string(),
                format!("{:.1}", run.elapsed),
                format!("{:.0} users/s", users as f64 / run.elapsed),
                format!("{:.2}", run.cpu),
                format!("{per_100k:.2} per 100k users"),
                verdict(&if per_100k > 1.0 {
                    vec!["> 1 s"]
                } else {
                    vec![]
                }),
            ]);
        }
        // A backfill of every user (lookup + PATCH each), then creates into an empty tenant.
        let records = self.size.n(10_000, 100_000);
        let targets = self.user_ids(&tenant, 1, records);
        let dir = self.dir("overhead-backfill");
        let input = dir.join("backfill.ndjson");
        write_backfill(&input, &targets);
        let run = self.import(
            &tenant,
            &dir,
            &strings(&["-i", &path_arg(&input), "--mode", "update"]),
        );
        sandbox_cpu.push(("four exports and the backfill", tenant.stop()));
        eprintln!("  backfill {records}: {:.1} s", run.elapsed);
        table.row(import_row("import: backfill (update)", records, &run));
        let tenant = self.tenant(&[]);
        let dir = self.dir("overhead-create");
        let input = dir.join("creates.ndjson");
        write_creates(&input, records, false, false);
        let run = self.import(
            &tenant,
            &dir,
            &strings(&["-i", &path_arg(&input), "--passwords", "random"]),
        );
        eprintln!("  create {records}: {:.1} s", run.elapsed);
        table.row(import_row("import: create", records, &run));
        sandbox_cpu.push(("create", tenant.stop()));
        let sandbox = sandbox_cpu
            .iter()
            .map(|(jobs, m)| format!("{:.1} s during the {jobs} runs", m.cpu))
            .collect::<Vec<_>>()
            .join(", ");
        Section {
            key: "overhead",
            title: "Overhead".into(),
            intro: format!(
                "No rate limit; the sandbox runs on the same two cores, so elapsed time and \
                 throughput are bounded by the sandbox as much as by the tool (the sandbox's own \
                 CPU time: {sandbox}). The tool's own CPU time (user + system, from wait4) is \
                 the overhead: goal ≤ 1 s per 100,000 users exported. Every job runs with \
                 default flags."
            ),
            table,
        }
    }
}

fn import_row(job: &str, records: usize, run: &Measured) -> Vec<String> {
    let per_10k = run.cpu / records as f64 * 10_000.0;
    vec![
        job.into(),
        format!("{records} records"),
        run.code.to_string(),
        format!("{:.1}", run.elapsed),
        format!("{:.0} records/s", records as f64 / run.elapsed),
        format!("{:.2}", run.cpu),
        format!("{per_10k:.2} per 10k records"),
        "(reported)".into(),
    ]
}

/// When `group` made its last request: the first sample that shows its final count (an upper
/// bound, at most one sampling interval late). Never zero, so a rate can be taken.
fn busy_until(samples: &[(f64, Counts)], group: &str) -> f64 {
    let last = samples.last().map_or(0, |(_, c)| c.group(group).requests);
    samples
        .iter()
        .find(|(_, c)| c.group(group).requests >= last)
        .map_or(0.0, |(t, _)| *t)
        .max(0.001)
}

// ---- Resume allowances ----------------------------------------------------------------------

/// The round trip of the export resume rows' tenant, in milliseconds.
const RESUME_LATENCY: u64 = 200;

/// How many requests a resumed run may repeat, and what says so.
struct Allowance {
    pages: u64,
    source: &'static str,
}

impl Allowance {
    fn describe(&self, unit: &str) -> String {
        let plural = if self.pages == 1 { "" } else { "s" };
        format!("{} {unit}{plural} ({})", self.pages, self.source)
    }
}

/// The export windows open at a kill, from the checkpoint the killed run left (`export.json`
/// in its state): the windows its plan lists as not yet written (`walk.windows`), each of which
/// may have had a page in flight. (Its top-level `windows` counts those written.) A checkpoint
/// of format 1 walks one window at a time, so one.
fn windows_open(state: &Path) -> Allowance {
    let one = |source| Allowance { pages: 1, source };
    let Ok(text) = std::fs::read_to_string(state.join("export.json")) else {
        return one("no checkpoint");
    };
    let Ok(saved) = serde_json::from_str::<Value>(&text) else {
        return one("checkpoint unreadable");
    };
    if saved["version"] == "1" {
        return one("checkpoint v1: one window at a time");
    }
    match saved["walk"]["windows"].as_array() {
        Some(windows) => Allowance {
            pages: (windows.len() as u64).max(1),
            source: "windows open in the checkpoint",
        },
        None => one("checkpoint lists no windows open"),
    }
}

/// Whether the checkpoint at `path` says its run completed: a kill that comes that late
/// measures a new run, not a resume.
fn completed(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .is_some_and(|saved| saved["completed"] == true)
}

/// The creates in flight at a kill: records the import ledger (`ledger.ndjson` in the run
/// state) marks started and gives no outcome. Each is looked up again on resume.
fn creates_in_flight(state: &Path) -> Allowance {
    let Ok(text) = std::fs::read_to_string(state.join("ledger.ndjson")) else {
        return Allowance {
            pages: 0,
            source: "no ledger",
        };
    };
    let mut started = std::collections::BTreeSet::new();
    // A torn last line (no newline) is what the ledger itself ignores.
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        let Ok(entry) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let record = entry["record"].as_u64().unwrap_or(0);
        if entry["started"] == true {
            started.insert(record);
        }
        if !entry["outcome"].is_null() {
            started.remove(&record);
        }
    }
    Allowance {
        pages: started.len() as u64,
        source: "started, no outcome, in the ledger",
    }
}

// ---- Scenario 3: memory ---------------------------------------------------------------------

impl Bench {
    fn memory(&self) -> Section {
        let sizes: Vec<usize> = match self.size {
            Size::Smoke => vec![1_000, 2_000],
            Size::Quick => vec![10_000, 100_000],
            Size::Full => vec![10_000, 100_000, 1_000_000],
        };
        let formats = [
            ("NDJSON", "users.ndjson", false, false),
            ("NDJSON gzip", "users.ndjson.gz", false, true),
            ("CSV", "users.csv", true, false),
            ("CSV gzip", "users.csv.gz", true, true),
        ];
        // (job, format) → peak RSS MiB per size.
        let mut results: Vec<(String, String, Vec<Measured>)> = Vec::new();
        let mut export: Vec<Vec<Measured>> = vec![Vec::new(); formats.len()];
        let mut reused = 0;
        for &users in &sizes {
            let earlier: Vec<Option<Measured>> = formats
                .iter()
                .map(|(_, file, ..)| {
                    let exports = self.exports.borrow();
                    let found = exports.iter().find(|(n, f, _)| *n == users && f == file);
                    found.map(|(.., run)| run.clone())
                })
                .collect();
            let tenant = earlier
                .iter()
                .any(Option::is_none)
                .then(|| self.tenant(&strings(&["--generate", &users.to_string()])));
            // Below the largest size an export runs three times and keeps its highest peak: a
            // short run meets fewer windows than a long one, so one run's peak is a few MiB
            // lower or higher from run to run, and the flatness check compares peaks.
            let tries = if Some(&users) == sizes.last() { 1 } else { 3 };
            let tenant = tenant.or_else(|| {
                (tries > 1).then(|| self.tenant(&strings(&["--generate", &users.to_string()])))
            });
            for (i, (name, file, _, _)) in formats.iter().enumerate() {
                let mut runs: Vec<Measured> = Vec::new();
                if let Some(run) = &earlier[i] {
                    reused += 1;
                    runs.push(run.clone());
                }
                while runs.len() < tries {
                    let tenant = tenant
                        .as_ref()
                        .expect("a tenant is started for what is missing");
                    let dir = self.dir(&format!("memory-export-{users}-{i}"));
                    runs.push(self.export(tenant, &dir, &dir.join(file)));
                    let _ = std::fs::remove_dir_all(&dir);
                }
                let run = highest_peak(runs);
                eprintln!(
                    "  export {name} {users}: {:.1} s, {:.1} MiB",
                    run.elapsed, run.max_rss_mib
                );
                export[i].push(run);
            }
        }
        for (i, (name, ..)) in formats.iter().enumerate() {
            results.push(("export".into(), name.to_string(), export[i].clone()));
        }
        // Imports: creates into an empty tenant. The CSV carries the metadata as JSON cells.
        let import_formats: Vec<usize> = vec![0, 3];
        for &i in &import_formats {
            let (name, file, csv, gzip) = formats[i];
            let mut runs = Vec::new();
            // A million creates take minutes; one format at that size shows the import's
            // memory, the other stops at 100,000.
            for &records in sizes.iter().filter(|&&n| i == 0 || n <= 100_000) {
                let tenant = self.tenant(&[]);
                let dir = self.dir(&format!("memory-import-{records}-{i}"));
                let input = dir.join(file);
                write_creates(&input, records, csv, gzip);
                let run = self.import(
                    &tenant,
                    &dir,
                    &strings(&["-i", &path_arg(&input), "--passwords", "random"]),
                );
                eprintln!(
                    "  import {name} {records}: {:.1} s, {:.1} MiB",
                    run.elapsed, run.max_rss_mib
                );
                let _ = std::fs::remove_dir_all(&dir);
                runs.push(run);
            }
            results.push(("import: create".into(), name.to_string(), runs));
        }
        let mut headers = vec!["job".to_string(), "format".to_string()];
        for &n in &sizes {
            headers.push(format!("peak RSS MiB at {}", thousands(n)));
        }
        headers.push("exit codes".into());
        headers.push("goals".into());
        let mut table = Table::new(&headers.iter().map(String::as_str).collect::<Vec<_>>());
        for (job, format, runs) in &results {
            let mut row = vec![job.clone(), format.clone()];
            row.extend(runs.iter().map(|r| format!("{:.1}", r.max_rss_mib)));
            row.extend((runs.len()..sizes.len()).map(|_| "–".to_string()));
            row.push(
                runs.iter()
                    .map(|r| r.code.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            let mut missed = Vec::new();
            let last = runs.last().map_or(0.0, |r| r.max_rss_mib);
            if last > 64.0 {
                missed.push("> 64 MiB");
            }
            if runs.len() >= 2 {
                let (big, small) = (
                    runs[runs.len() - 1].max_rss_mib,
                    runs[runs.len() - 2].max_rss_mib,
                );
                if big > small * 1.10 {
                    missed.push("not flat (> +10%)");
                }
            }
            if runs.iter().any(|r| r.code != 0) {
                missed.push("exit ≠ 0");
            }
            row.push(verdict(&missed));
            table.row(row);
        }
        Section {
            key: "memory",
            title: "Memory".into(),
            intro: format!(
                "Peak resident set size of the tool's process (ru_maxrss from wait4), \
                 unlimited rate. Goal: flat, ≤ 64 MiB at 1M users, and the largest size \
                 within 10% of the one before it. Below the largest size each export runs three \
                 times and shows its highest peak (one short run's peak varies by a few MiB). \
                 The quick mode stops at 100,000; the full one imports a million records in \
                 NDJSON only.{} The runner's own peak RSS in \
                 this run: {:.1} MiB (a forked child counts its parent's resident memory at the \
                 fork in `ru_maxrss`, so the runner keeps little resident while it starts the \
                 tool).",
                if reused > 0 {
                    format!(
                        " {reused} of the exports are the overhead section's runs of this run \
                         (the same command on a tenant of the same size and seed), not run twice."
                    )
                } else {
                    String::new()
                },
                own_peak_rss_mib()
            ),
            table,
        }
    }

    /// `export --include` (issue 14, must-show 2): the peak RSS of an export that adds each
    /// user's roles and organizations against the same export without it, and the role and
    /// organization reads' cost against (roles + organizations + assignments / 100) × 1.1 + 10.
    fn authz(&self) -> Section {
        let users = self.size.n(20_000, 20_000);
        // Each peak is the highest of a few runs: one run's peak varies by a few MiB.
        let tries = if self.size == Size::Smoke { 1 } else { 3 };
        let tenant = self.tenant(&strings(&["--generate", &users.to_string()]));
        let mut table = Table::new(&[
            "export",
            "exit",
            "elapsed s",
            "peak RSS MiB",
            "role/org requests (summary)",
            "role/org requests (sandbox)",
            "bound",
            "permission requests",
        ]);
        let mut peaks = Vec::new();
        let mut costs = Vec::new();
        for (name, include) in [
            ("without `--include`", None),
            (
                "`--include roles,organizations`",
                Some("roles,organizations"),
            ),
            (
                "`--include roles,organizations,permissions`",
                Some("roles,organizations,permissions"),
            ),
        ] {
            let mut runs = Vec::new();
            let mut seen = 0;
            for _ in 0..tries {
                let dir = self.dir("authz-export");
                let mut args = vec!["-o".to_string(), path_arg(&dir.join("users.ndjson"))];
                if let Some(include) = include {
                    args.extend(strings(&["--include", include]));
                }
                let before = authz_routes(&self.counts(&tenant));
                let run = measure(self.tool(&tenant, "export", &dir, &args), &dir);
                seen = authz_routes(&self.counts(&tenant)) - before;
                let _ = std::fs::remove_dir_all(&dir);
                runs.push(run);
            }
            let run = highest_peak(runs);
            eprintln!(
                "  export {name} {users}: {:.1} s, {:.1} MiB",
                run.elapsed, run.max_rss_mib
            );
            let authz = &run.summary["authz"];
            let count = |key: &str| authz[key].as_u64().unwrap_or(0);
            let bound = (count("roles") + count("organizations")) as f64 * 1.1
                + count("assignments") as f64 / 100.0 * 1.1
                + 10.0;
            let cell = |n: u64| {
                if include.is_some() {
                    n.to_string()
                } else {
                    "–".into()
                }
            };
            table.row(vec![
                name.into(),
                run.code.to_string(),
                format!("{:.1}", run.elapsed),
                format!("{:.1}", run.max_rss_mib),
                cell(count("requests")),
                cell(seen),
                if include.is_some() {
                    format!("{bound:.1}")
                } else {
                    "–".into()
                },
                cell(count("permission_requests")),
            ]);
            peaks.push(run.max_rss_mib);
            if include.is_some() {
                costs.push((count("requests"), seen, bound, count("assignments")));
            }
        }
        drop(tenant.stop());
        let ratio = peaks[1] / peaks[0].max(f64::MIN_POSITIVE);
        let with_permissions = peaks[2] / peaks[0].max(f64::MIN_POSITIVE);
        let rss_goal = verdict(&if ratio > 1.10 { vec!["> +10%"] } else { vec![] });
        let cost_goal = verdict(&if costs
            .iter()
            .any(|(said, seen, bound, _)| said != seen || *seen as f64 > *bound)
        {
            vec!["over the bound or not what the sandbox saw"]
        } else {
            vec![]
        });
        Section {
            key: "authz",
            title: "Roles, organizations and permissions in the export".into(),
            intro: format!(
                "A sandbox of {users} generated users (36 roles, 5 organizations, {} role \
                 assignments and memberships), default limits, no latency; the same export \
                 without and with `--include`. Each peak RSS (ru_maxrss from wait4) is the \
                 highest of {tries} runs. With `--include roles,organizations` the peak is \
                 **{ratio:.2}×** the plain export's (goal within 10%: {rss_goal}); with \
                 permissions too, {with_permissions:.2}× (one request per user, as `--help` \
                 says). The role and organization reads cost at most (roles + organizations + \
                 assignments / 100) × 1.1 + 10 requests, and the summary says what the sandbox \
                 counted on the `/roles…` and `/organizations…` routes: {cost_goal}.",
                costs.first().map_or(0, |c| c.3),
            ),
            table,
        }
    }

    // ---- Scenario 4: resume cost ------------------------------------------------------------

    fn resume(&self) -> Section {
        let mut table = Table::new(&[
            "job",
            "work",
            "killed at",
            "clean run requests",
            "killed + resumed requests",
            "repeated",
            "allowance",
            "final exit",
            "goal",
        ]);
        // Export: paced at 20/s so that halfway is a moment, not a blur, with a real round
        // trip so that many windows are in flight at the kill.
        let users = self.size.n(20_000, 50_000);
        let limit = strings(&[
            "--rate",
            "20",
            "--burst",
            "20",
            "--latency",
            &RESUME_LATENCY.to_string(),
            "--generate",
            &users.to_string(),
        ]);
        let clean = {
            let tenant = self.tenant(&limit);
            let dir = self.dir("resume-export-clean");
            let run = self.export(&tenant, &dir, &dir.join("u.ndjson"));
            assert_eq!(run.code, 0, "clean export failed: see {}", dir.display());
            self.counts(&tenant).useful()
        };
        let clean_output = self.work.join("resume-export-clean/u.ndjson");
        // Kill points that do not fall on window boundaries on purpose.
        for (k, fraction) in [0.17, 0.43, 0.58, 0.81].into_iter().enumerate() {
            let tenant = self.tenant(&limit);
            let dir = self.dir(&format!("resume-export-{k}"));
            let output = dir.join("u.ndjson");
            let point = (clean as f64 * fraction) as u64;
            let killed = kill_when(
                self.tool(&tenant, "export", &dir, &["-o".into(), path_arg(&output)]),
                || self.counts(&tenant).useful() >= point,
            );
            let at = self.counts(&tenant).useful();
            let late = completed(&dir.join("state/export.json"));
            let allowance = windows_open(&dir.join("state"));
            let resumed = self.export(&tenant, &dir, &output);
            let total = self.counts(&tenant).useful();
            let repeated = total as i64 - clean as i64;
            let same = std::fs::read(&output).ok() == std::fs::read(&clean_output).ok();
            eprintln!("  export killed at {at}: {repeated} repeated");
            let mut missed = Vec::new();
            if late {
                missed.push("killed after the run completed: no resume to measure");
            } else if repeated > allowance.pages as i64 {
                missed.push("more than a page per window open");
            }
            if resumed.code != 0 || !same {
                missed.push("output differs from a clean run");
            }
            table.row(vec![
                "export".into(),
                format!("{users} users"),
                format!("request {at} (exit {})", killed.code),
                clean.to_string(),
                total.to_string(),
                repeated.to_string(),
                allowance.describe("page"),
                format!(
                    "{}{}",
                    resumed.code,
                    if same {
                        ", output = clean run's"
                    } else {
                        ", output differs"
                    }
                ),
                verdict(&missed),
            ]);
        }
        // Import: creates at 50/s, killed at two points.
        let records = self.size.n(1_000, 5_000);
        let limit = strings(&["--rate", "50", "--burst", "50"]);
        for (k, fraction) in [0.31, 0.67].into_iter().enumerate() {
            let tenant = self.tenant(&limit);
            let dir = self.dir(&format!("resume-create-{k}"));
            let input = dir.join("creates.ndjson");
            write_creates(&input, records, false, false);
            let args = strings(&["-i", &path_arg(&input), "--passwords", "random"]);
            let point = (records as f64 * fraction) as u64;
            let killed = kill_when(self.tool(&tenant, "import", &dir, &args), || {
                self.counts(&tenant).created >= point
            });
            let at = self.counts(&tenant);
            let late = completed(&dir.join("state/import.json"));
            let allowance = creates_in_flight(&dir.join("state"));
            let resumed = self.import(&tenant, &dir, &args);
            let end = self.counts(&tenant);
            // A clean run sends one POST per record.
            let repeated = end.useful() as i64 - records as i64;
            eprintln!("  import killed at {}: {repeated} repeated", at.created);
            let mut missed = Vec::new();
            if late {
                missed.push("killed after the run completed: no resume to measure");
            } else if repeated > allowance.pages as i64 {
                missed.push("more than the in-flight records");
            }
            if resumed.code != 0 || end.users != records as u64 {
                missed.push("tenant differs from a clean run");
            }
            table.row(vec![
                "import: create".into(),
                format!("{records} records"),
                format!("{} users created (exit {})", at.created, killed.code),
                records.to_string(),
                format!(
                    "{} ({} POST, {} GET)",
                    end.useful(),
                    end.route("POST /api/v2/users"),
                    end.route("GET /api/v2/users/{id}")
                ),
                repeated.to_string(),
                allowance.describe("record"),
                format!("{}, {} users", resumed.code, end.users),
                verdict(&missed),
            ]);
        }
        Section {
            key: "resume",
            title: "Resume cost".into(),
            intro: format!(
                "The job is SIGKILLed once a share of a clean run's requests have been \
                 answered (each row a fresh tenant and a different point), then run again \
                 with the same command and default flags. *Repeated* = useful requests of both \
                 runs less those of a clean run. The export's tenant answers in \
                 {RESUME_LATENCY} ms, so that it keeps several windows in flight. Goal: at most \
                 one page per export window open at the kill (the windows the checkpoint's plan \
                 lists as not yet written, `walk.windows` in the run state: each may have had a \
                 page in flight), at most one request per record in flight for an import \
                 (creates the ledger marks started without an outcome: each is looked up again)."
            ),
            table,
        }
    }

    // ---- Scenario 5: against a naive client -------------------------------------------------

    fn naive(&self) -> Section {
        let mut table = Table::new(&[
            "job",
            "limit (burst)",
            "tenant",
            "client",
            "users or records done",
            "elapsed s",
            "429s",
            "naive ÷ tool (elapsed)",
        ]);
        let rate = 10u32;
        let latency = 50;
        for users in [self.size.n(1_000, 1_000), self.size.n(5_000, 20_000)] {
            let args = strings(&[
                "--rate",
                &rate.to_string(),
                "--burst",
                &rate.to_string(),
                "--latency",
                &latency.to_string(),
                "--generate",
                &users.to_string(),
            ]);
            let tenant = self.tenant(&args);
            let dir = self.dir(&format!("naive-export-{users}"));
            let tool = self.export(&tenant, &dir, &dir.join("u.ndjson"));
            let tool_counts = self.counts(&tenant);
            drop(tenant);
            let tenant = self.tenant(&args);
            let (naive_elapsed, naive_users) = self
                .runtime
                .block_on(naive_export(&self.http, &tenant, rate));
            let naive_counts = self.counts(&tenant);
            eprintln!(
                "  export {users}: tool {:.1} s, naive {naive_elapsed:.1} s ({naive_users} users)",
                tool.elapsed
            );
            let done = |n: u64| {
                if n as usize == users {
                    format!("{n}")
                } else {
                    format!("{n} (of {users}: stopped at the 1,000 cap)")
                }
            };
            table.row(vec![
                "export".into(),
                format!("{rate}/s ({rate})"),
                format!("{users} users"),
                "auth0-bulk".into(),
                done(tool.summary["users"].as_u64().unwrap_or(0)),
                format!("{:.1}", tool.elapsed),
                tool_counts.throttled.to_string(),
                String::new(),
            ]);
            table.row(vec![
                "export".into(),
                format!("{rate}/s ({rate})"),
                format!("{users} users"),
                "naive loop".into(),
                done(naive_users),
                format!("{naive_elapsed:.1}"),
                naive_counts.throttled.to_string(),
                format!("{:.2}", naive_elapsed / tool.elapsed),
            ]);
        }
        let records = self.size.n(300, 1_000);
        let args = strings(&[
            "--rate",
            &rate.to_string(),
            "--burst",
            &rate.to_string(),
            "--latency",
            &latency.to_string(),
        ]);
        let tenant = self.tenant(&args);
        let dir = self.dir("naive-create");
        let input = dir.join("creates.ndjson");
        write_creates(&input, records, false, false);
        let tool = self.import(
            &tenant,
            &dir,
            &strings(&["-i", &path_arg(&input), "--passwords", "random"]),
        );
        let tool_counts = self.counts(&tenant);
        drop(tenant);
        let tenant = self.tenant(&args);
        let naive_elapsed = self
            .runtime
            .block_on(naive_create(&self.http, &tenant, &input, rate));
        let naive_counts = self.counts(&tenant);
        eprintln!(
            "  create {records}: tool {:.1} s, naive {naive_elapsed:.1} s",
            tool.elapsed
        );
        table.row(vec![
            "import: create".into(),
            format!("{rate}/s ({rate})"),
            "empty".into(),
            "auth0-bulk".into(),
            tool_counts.created.to_string(),
            format!("{:.1}", tool.elapsed),
            tool_counts.throttled.to_string(),
            String::new(),
        ]);
        table.row(vec![
            "import: create".into(),
            format!("{rate}/s ({rate})"),
            "empty".into(),
            "naive loop".into(),
            naive_counts.created.to_string(),
            format!("{naive_elapsed:.1}"),
            naive_counts.throttled.to_string(),
            format!("{:.2}", naive_elapsed / tool.elapsed),
        ]);
        Section {
            key: "naive",
            title: "Against a naive client".into(),
            intro: format!(
                "The baseline is the loop many people write by hand: one request at a time, \
                 a fixed sleep of 1/limit seconds after each (here {} ms), and on a 429 a fixed \
                 1 s sleep before trying again. Exports page with `page`/`per_page=100`; imports \
                 POST one user at a time. The sandbox adds {latency} ms to every answer, as a \
                 real tenant's round trip would. Both use the same limit; the naive client is told \
                 it, auth0-bulk runs with `--rate auto`.",
                1000 / rate
            ),
            table,
        }
    }
}

/// A hand-written export: page after page with a fixed sleep.
async fn naive_export(http: &reqwest::Client, tenant: &Tenant, rate: u32) -> (f64, u64) {
    let start = Instant::now();
    let token = naive_token(http, tenant).await;
    let sleep = Duration::from_millis(1000 / rate as u64);
    let mut users = 0u64;
    let mut page = 0;
    loop {
        let url = format!("{}/api/v2/users?page={page}&per_page=100", tenant.domain);
        let response = http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("naive GET");
        let status = response.status().as_u16();
        if status == 429 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        if status != 200 {
            // Page 10 and beyond: "You can only page through the first 1000 records".
            break;
        }
        let batch: Vec<Value> = response.json().await.expect("a page");
        if batch.is_empty() {
            break;
        }
        users += batch.len() as u64;
        page += 1;
        tokio::time::sleep(sleep).await;
    }
    (start.elapsed().as_secs_f64(), users)
}

/// A hand-written import: one POST at a time with a fixed sleep.
async fn naive_create(http: &reqwest::Client, tenant: &Tenant, input: &Path, rate: u32) -> f64 {
    let start = Instant::now();
    let token = naive_token(http, tenant).await;
    let sleep = Duration::from_millis(1000 / rate as u64);
    let text = std::fs::read_to_string(input).expect("input");
    for (i, line) in text.lines().enumerate() {
        let mut user: Value = serde_json::from_str(line).expect("a record");
        user["password"] = format!("Bench-Passw0rd-{i}!").into();
        user["user_id"] = user["user_id"]
            .as_str()
            .and_then(|id| id.strip_prefix("auth0|"))
            .unwrap_or_default()
            .into();
        loop {
            let response = http
                .post(format!("{}/api/v2/users", tenant.domain))
                .bearer_auth(&token)
                .json(&user)
                .send()
                .await
                .expect("naive POST");
            if response.status().as_u16() == 429 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            break;
        }
        tokio::time::sleep(sleep).await;
    }
    start.elapsed().as_secs_f64()
}

async fn naive_token(http: &reqwest::Client, tenant: &Tenant) -> String {
    let body = json!({
        "grant_type": "client_credentials",
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
        "audience": format!("{}/api/v2/", tenant.domain),
    });
    let reply: Value = http
        .post(format!("{}/oauth/token", tenant.domain))
        .json(&body)
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token JSON");
    reply["access_token"].as_str().expect("a token").to_string()
}

// ---- The report -----------------------------------------------------------------------------

struct Section {
    /// The scenario's name on the command line, which also marks its place in the report.
    key: &'static str,
    title: String,
    intro: String,
    table: Table,
}

/// A section as the report holds it: everything under its heading, the line that says which
/// run it comes from included.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rendered {
    key: String,
    title: String,
    body: String,
}

impl Section {
    fn render(&self, run: &str) -> Rendered {
        Rendered {
            key: self.key.to_string(),
            title: self.title.clone(),
            body: format!("{run}\n\n{}\n\n{}", self.intro, self.table.markdown()),
        }
    }
}

struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    fn markdown(&self) -> String {
        let mut out = String::new();
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        out.push_str(&line(&self.headers));
        out.push_str(&line(&vec!["---".to_string(); self.headers.len()]));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

fn verdict(missed: &[&str]) -> String {
    if missed.is_empty() {
        "met".into()
    } else {
        format!("**missed**: {}", missed.join(", "))
    }
}

fn thousands(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// The command line of this run, as the report shows it.
fn command_line(size: Size, only: &[String]) -> String {
    let mode = match size {
        Size::Smoke => "--smoke",
        Size::Quick => "--quick",
        Size::Full => "--full",
    };
    let mut command = format!("cargo bench --bench scenarios -- {mode}");
    if only.len() < SCENARIOS.len() {
        let _ = write!(command, " --only {}", only.join(","));
    }
    command
}

/// The line under a section's heading that says which run its numbers come from.
fn provenance(command: &str, took: Duration) -> String {
    // The report itself is left out: a run with --only rewrites it before the next one starts.
    let changes = shell(
        "git",
        &[
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            ":!BENCHMARKS.md",
        ],
    );
    format!(
        "*From `{command}` on {}, commit {}{}; this section took {:.0} s.*",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        shell("git", &["rev-parse", "--short", "HEAD"]),
        if changes.is_empty() {
            ""
        } else {
            " with uncommitted changes"
        },
        took.as_secs_f64()
    )
}

/// The report's sections after this run: with `--only`, the sections of an earlier report
/// that this run did not redo are kept as they were (each names its own run), so the quick
/// rows and the full run's million-user column can come from separate runs.
fn merge(earlier: Option<&str>, fresh: Vec<Rendered>) -> Vec<Rendered> {
    let mut sections = earlier.map(parse_report).unwrap_or_default();
    sections.retain(|old| !fresh.iter().any(|new| new.key == old.key));
    sections.extend(fresh);
    sections.sort_by_key(|s| SCENARIOS.iter().position(|k| *k == s.key));
    sections
}

/// The sections of a report this runner wrote: marked by `<!-- scenario: KEY -->`, or, in a
/// report from before the marks, known by their titles, with the old report's one run line
/// (date, mode, commit) put under each.
fn parse_report(text: &str) -> Vec<Rendered> {
    const MARK: &str = "<!-- scenario: ";
    let heading = |chunk: &str| -> Option<(String, String)> {
        let (line, body) = chunk.split_once('\n').unwrap_or((chunk, ""));
        let title = line.strip_prefix("## ")?;
        // "1. At the limit": the number is the section's place in this report only.
        let title = title
            .split_once(". ")
            .filter(|(n, _)| n.chars().all(|c| c.is_ascii_digit()))
            .map_or(title, |(_, t)| t);
        Some((title.to_string(), body.trim().to_string()))
    };
    if text.contains(MARK) {
        return text
            .split(MARK)
            .skip(1)
            .filter_map(|chunk| {
                let (key, rest) = chunk.split_once(" -->")?;
                let (title, body) = heading(rest.trim_start())?;
                Some(Rendered {
                    key: key.to_string(),
                    title,
                    body,
                })
            })
            .collect();
    }
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("- {name}: ")))
            .unwrap_or("unknown")
            .to_string()
    };
    let mode = field("Mode");
    let mode = mode.split(',').next().unwrap_or("").trim_matches('`');
    let run = format!(
        "*From `cargo bench --bench scenarios -- {mode}` on {}, commit {} (a run of the \
         runner before sections named their runs).*",
        field("Date"),
        field("Commit")
    );
    let titles = [
        ("At the limit", "at-limit"),
        ("Per endpoint group", "per-group"),
        ("Overhead", "overhead"),
        ("Memory", "memory"),
        ("Resume cost", "resume"),
        ("Against a naive client", "naive"),
    ];
    text.split("\n## ")
        .skip(1)
        .filter_map(|chunk| {
            let (title, body) = heading(&format!("## {chunk}"))?;
            let key = titles.iter().find(|(t, _)| *t == title)?.1;
            Some(Rendered {
                key: key.to_string(),
                title,
                body: format!("{run}\n\n{body}"),
            })
        })
        .collect()
}

fn report(sections: &[Rendered]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Written by the benchmark runner (`benches/scenarios.rs`); every number below comes \
         from a run of it, and each section names its run (a run with `--only` redoes its \
         sections and keeps the others). Reproduce all of it with:\n\n```sh\n{}\n```\n",
        command_line(Size::Quick, SCENARIOS.map(String::from).as_slice())
    );
    let _ = writeln!(out, "- Machine: {}", machine());
    let _ = writeln!(
        out,
        "- Tool: {} (release profile)\n",
        shell(BIN, &["--version"])
    );
    let _ = writeln!(
        out,
        "The sandbox tenant (`auth0-bulk sandbox`) runs as its own process on the same machine; \
         the tool's CPU time and peak RSS are the kernel's accounting of the tool's process \
         alone (`wait4`), request counts are the sandbox's (`GET /__sandbox/stats`). Exit codes: \
         0 done, 3 done with rejected records, 137 killed.\n"
    );
    for (i, section) in sections.iter().enumerate() {
        let _ = writeln!(
            out,
            "<!-- scenario: {} -->\n## {}. {}\n\n{}\n",
            section.key,
            i + 1,
            section.title,
            section.body.trim_end()
        );
    }
    out
}

fn own_peak_rss_mib() -> f64 {
    // SAFETY: a zeroed rusage is a valid value for getrusage to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches(" kB").parse::<f64>().ok())
        .map_or("unknown memory".into(), |kb| {
            format!("{:.0} GiB", kb / 1024.0 / 1024.0)
        });
    format!(
        "{model}, {cores} cores, {memory}, {} {}",
        shell("uname", &["-sr"]),
        shell("rustc", &["--version"])
    )
}

fn shell(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
