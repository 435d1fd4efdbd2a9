//! The benchmark runner: auth0-bulk against a sandbox tenant in its own process, written up as BENCHMARKS.md.
//!
//! `cargo bench --bench scenarios -- --quick` runs every scenario at a size that finishes in
//! under ten minutes on two cores; `-- --full` runs the sizes the goals are stated for (about an
//! hour); `-- --smoke` runs them tiny, to show the runner works (CI). `--only at-limit,memory`
//! picks scenarios, `--out FILE` writes elsewhere.
//!
//! The sandbox and the tool are separate processes, so the tool's CPU time and peak RSS come
//! from the operating system's accounting of its own process (`wait4`), and request counts from
//! the sandbox's log (`GET /__sandbox/stats`). Nothing here fails on a slow machine: it reports.

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

const SCENARIOS: [&str; 5] = ["at-limit", "overhead", "memory", "resume", "naive"];

fn main() {
    let mut size = Size::Quick;
    let mut out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    let mut only: Vec<String> = SCENARIOS.iter().map(|s| s.to_string()).collect();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--smoke" => size = Size::Smoke,
            "--quick" => size = Size::Quick,
            "--full" => size = Size::Full,
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
                    "usage: cargo bench --bench scenarios -- [--smoke|--quick|--full] [--only {}] [--out FILE]",
                    SCENARIOS.join(",")
                );
                std::process::exit(2);
            }
            _ => {}
        }
    }
    let work = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("create target/bench");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let bench = Bench {
        size,
        work,
        runtime,
        http: reqwest::Client::new(),
    };
    let started = Instant::now();
    let mut sections = Vec::new();
    for name in &only {
        eprintln!("== {name}");
        let section = match name.as_str() {
            "at-limit" => bench.at_limit(),
            "overhead" => bench.overhead(),
            "memory" => bench.memory(),
            "resume" => bench.resume(),
            "naive" => bench.naive(),
            _ => unreachable!("checked above"),
        };
        sections.push(section);
    }
    let report = report(size, &only, &sections, started.elapsed());
    std::fs::write(&out, report).expect("write the report");
    eprintln!(
        "Wrote {} in {:.0} s.",
        out.display(),
        started.elapsed().as_secs_f64()
    );
}

struct Bench {
    size: Size,
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
    users: u64,
    created: u64,
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

    fn since(&self, before: &Counts) -> Counts {
        Counts {
            api: self.api - before.api,
            throttled: self.throttled - before.throttled,
            routes: self.routes.clone(),
            users: self.users,
            created: self.created - before.created,
        }
    }
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
            for (status, n) in statuses.as_object().into_iter().flatten() {
                let n = n.as_u64().unwrap_or(0);
                counts.api += n;
                if status == "429" {
                    counts.throttled += n;
                }
            }
        }
        counts
    }

    /// Every `step`th user_id of the tenant, at most `take` of them, read as a stream.
    ///
    /// The runner keeps its own memory small on purpose: a child started by fork or
    /// posix_spawn inherits its parent's peak RSS in `ru_maxrss` until it execs, so a runner
    /// that once held 100,000 users would show up in every later measurement.
    fn user_ids(&self, tenant: &Tenant, step: usize, take: usize) -> Vec<String> {
        #[derive(serde::Deserialize)]
        struct Id {
            user_id: String,
        }
        let mut response = self.get(tenant, "/__sandbox/users");
        let mut ids = Vec::new();
        let mut buffer: Vec<u8> = Vec::new();
        let mut index = 0usize;
        while ids.len() < take {
            let Some(chunk) = self.runtime.block_on(response.chunk()).expect("users") else {
                break;
            };
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                if index.is_multiple_of(step) && ids.len() < take {
                    let id: Id = serde_json::from_slice(&line).expect("a user");
                    ids.push(id.user_id);
                }
                index += 1;
            }
        }
        ids
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
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our child and `Child` never waits for it after this.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    let elapsed = start.elapsed().as_secs_f64();
    std::mem::forget(child);
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Measured {
        elapsed,
        cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        // Linux reports ru_maxrss in KiB.
        max_rss_mib: usage.ru_maxrss as f64 / 1024.0,
        code,
        summary: Value::Null,
    }
}

/// Starts `cmd`, waits until `ready` says so (checked every 20 ms), then SIGKILLs it. A run
/// that ends first is reported as it ended.
fn kill_when(mut cmd: Command, mut ready: impl FnMut() -> bool) -> Measured {
    let start = Instant::now();
    let mut child = cmd.spawn().expect("start auth0-bulk");
    while !ready() {
        if let Ok(Some(status)) = child.try_wait() {
            return Measured {
                elapsed: start.elapsed().as_secs_f64(),
                code: status.code().unwrap_or(-1),
                ..Measured::default()
            };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(child.id(), libc::SIGKILL);
    reap(child, start)
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

/// A backfill: `app_metadata.plan` for each of `users`, matched by user_id.
fn write_backfill(path: &Path, user_ids: &[String]) {
    let mut out = std::io::BufWriter::new(File::create(path).expect("create the input"));
    for user_id in user_ids {
        let record = json!({"user_id": user_id, "app_metadata": {"plan": "enterprise"}});
        writeln!(out, "{record}").unwrap();
    }
    out.flush().unwrap();
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

// ---- Scenario 1: at the limit ---------------------------------------------------------------

/// The rates of the scenario with the burst Auth0 gives the plan that has it (AUTH0-FACTS,
/// "Limits by plan"): Free 2/s burst 2; 10/s with the burst 10 of an Enterprise
/// non-production tenant; 50/s with the burst 50 of Enterprise production.
const LIMITS: [(u32, u32); 3] = [(2, 2), (10, 10), (50, 50)];

struct AtLimitRow {
    job: String,
    rate: u32,
    burst: u32,
    work: String,
    run: Measured,
    counts: Counts,
    users: Option<u64>,
}

impl Bench {
    fn at_limit(&self) -> Section {
        let mut rows = Vec::new();
        for (rate, burst) in LIMITS {
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
            // Another job: it starts once the export's drained bucket has filled again.
            std::thread::sleep(Duration::from_secs_f64(
                f64::from(burst) / f64::from(rate) + 1.0,
            ));
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
                work: format!("{creates} records"),
                run,
                counts,
                users: None,
            });
        }
        let mut table = Table::new(&[
            "job",
            "limit (burst)",
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
            title: "1. At the limit".into(),
            intro: "The tool runs with `--rate auto` (the default): it is not told the limit and \
                    paces itself from the `x-ratelimit-*` headers. The sandbox enforces a token \
                    bucket with the given rate and burst. *Useful* requests are API requests \
                    not answered 429 (the token request aside). `÷ limit` is useful req/s over \
                    the rate (goal ≥ 0.95); since a run also spends the initial burst, \
                    `÷ ceiling` divides by what the bucket could give at most in that time \
                    (burst + rate × elapsed). Elapsed time includes the process start and the \
                    token request. The create imports give every user a random password."
                .into(),
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
            ("export (CSV, gzip)", "overhead-export-csv", "users.csv.gz"),
        ] {
            let dir = self.dir(name);
            let run = self.export(&tenant, &dir, &dir.join(file));
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
        sandbox_cpu.push(("two exports and the backfill", tenant.stop()));
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
            title: "2. Overhead".into(),
            intro: format!(
                "No rate limit; the sandbox runs on the same two cores, so elapsed time and \
                 throughput are bounded by the sandbox as much as by the tool (the sandbox's own \
                 CPU time: {sandbox}). The tool's own CPU time (user + system, from wait4) is \
                 the overhead: goal ≤ 1 s per 100,000 users exported. Imports use the default \
                 concurrency (4)."
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
        for &users in &sizes {
            let tenant = self.tenant(&strings(&["--generate", &users.to_string()]));
            for (i, (name, file, _, _)) in formats.iter().enumerate() {
                let dir = self.dir(&format!("memory-export-{users}-{i}"));
                let run = self.export(&tenant, &dir, &dir.join(file));
                eprintln!(
                    "  export {name} {users}: {:.1} s, {:.1} MiB",
                    run.elapsed, run.max_rss_mib
                );
                let _ = std::fs::remove_dir_all(&dir);
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
            for &records in &sizes {
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
            title: "3. Memory".into(),
            intro: "Peak resident set size of the tool's process (ru_maxrss from wait4), \
                    unlimited rate. Goal: flat, ≤ 64 MiB at 1M users, and the largest size \
                    within 10% of the one before it. The quick mode stops at 100,000."
                .into(),
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
        // Export: paced at 20/s so that halfway is a moment, not a blur.
        let users = self.size.n(20_000, 50_000);
        let limit = strings(&[
            "--rate",
            "20",
            "--burst",
            "20",
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
            let resumed = self.export(&tenant, &dir, &output);
            let total = self.counts(&tenant).useful();
            let repeated = total as i64 - clean as i64;
            let same = std::fs::read(&output).ok() == std::fs::read(&clean_output).ok();
            eprintln!("  export killed at {at}: {repeated} repeated");
            let mut missed = Vec::new();
            if repeated > 1 {
                missed.push("more than a page");
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
                "1 page".into(),
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
            let resumed = self.import(&tenant, &dir, &args);
            let end = self.counts(&tenant);
            // A clean run sends one POST per record.
            let repeated = end.useful() as i64 - records as i64;
            let concurrency = 4;
            eprintln!("  import killed at {}: {repeated} repeated", at.created);
            let mut missed = Vec::new();
            if repeated > concurrency {
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
                format!("{concurrency} in flight"),
                format!("{}, {} users", resumed.code, end.users),
                verdict(&missed),
            ]);
        }
        Section {
            title: "4. Resume cost".into(),
            intro: "The job is SIGKILLed once a share of a clean run's requests have been \
                    answered (each row a fresh tenant and a different point), then run again \
                    with the same command. *Repeated* = useful requests \
                    of both runs less those of a clean run. Goal: at most one page for an export, \
                    at most the records in flight (the concurrency) for an import."
                .into(),
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
            title: "5. Against a naive client".into(),
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
    title: String,
    intro: String,
    table: Table,
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

fn report(size: Size, only: &[String], sections: &[Section], took: Duration) -> String {
    let mut out = String::new();
    let mode = match size {
        Size::Smoke => "--smoke",
        Size::Quick => "--quick",
        Size::Full => "--full",
    };
    let mut command = format!("cargo bench --bench scenarios -- {mode}");
    if only.len() < SCENARIOS.len() {
        let _ = write!(command, " --only {}", only.join(","));
    }
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Written by the benchmark runner (`benches/scenarios.rs`); every number below comes \
         from the run described here. Reproduce with:\n\n```sh\n{command}\n```\n"
    );
    let _ = writeln!(
        out,
        "- Date: {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    let _ = writeln!(out, "- Mode: `{mode}`, {:.0} s in all", took.as_secs_f64());
    let _ = writeln!(out, "- Machine: {}", machine());
    let _ = writeln!(
        out,
        "- Commit: {}",
        shell("git", &["rev-parse", "--short", "HEAD"])
    );
    let _ = writeln!(
        out,
        "- Tool: {} (release profile)",
        shell(BIN, &["--version"])
    );
    let _ = writeln!(
        out,
        "- The runner's own peak RSS: {:.1} MiB (for reference: a forked child counts its \
         parent's resident memory at the fork in `ru_maxrss`, so the runner keeps little \
         resident while it starts the tool)\n",
        own_peak_rss_mib()
    );
    let _ = writeln!(
        out,
        "The sandbox tenant (`auth0-bulk sandbox`) runs as its own process on the same machine; \
         the tool's CPU time and peak RSS are the kernel's accounting of the tool's process \
         alone (`wait4`), request counts are the sandbox's (`GET /__sandbox/stats`). Exit codes: \
         0 done, 3 done with rejected records, 137 killed.\n"
    );
    for section in sections {
        let _ = writeln!(
            out,
            "## {}\n\n{}\n\n{}",
            section.title,
            section.intro,
            section.table.markdown()
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
