//! The command line: every subcommand, flag and its help text.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::sandbox::SandboxOptions;

/// Move Auth0 users and their metadata in bulk: rate-limited, resumable export and import.
///
/// Every command runs against a tenant's Management API. `auth0-bulk sandbox` starts a local
/// tenant that behaves like Auth0, for tests and for rehearsing a job before production.
#[derive(Debug, Parser)]
#[command(name = "auth0-bulk", version, about, long_about)]
#[command(
    after_help = "Exit codes: 0 done, 1 fatal error (re-run to resume), 2 bad usage or \
configuration, 3 done with rejected records, 130 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// More log output on stderr (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a local sandbox tenant: the Management API users subset, faithful to Auth0.
    ///
    /// Prints one JSON line on stdout once it listens:
    /// {"domain":"http://127.0.0.1:PORT","client_id":"...","client_secret":"..."}
    /// and serves until SIGINT or SIGTERM. Logs go to stderr.
    Sandbox(SandboxArgs),
}

/// Options of `auth0-bulk sandbox`.
#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Load users from an NDJSON file as the API returns them (repeatable).
    #[arg(long, value_name = "FILE")]
    pub seed: Vec<PathBuf>,

    /// Generate N deterministic synthetic users (with the real world's created_at clusters).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub generate: usize,

    /// Seed of the generated users.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub gen_seed: u64,

    /// Rate limit in requests per second (a token bucket like Auth0's); off when not given.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,

    /// Bucket size of the rate limit (default: the rate, rounded up).
    #[arg(long, value_name = "B", requires = "rate")]
    pub burst: Option<u32>,

    /// Share of API requests (0..1) that fail: 500/502/503, a dropped connection or a
    /// truncated body. Dropped and truncated requests were applied before they failed.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub fault_rate: f64,

    /// Seed of the fault sequence, to replay a faulty run.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub fault_seed: u64,

    /// Delay added to every API request, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency: u64,

    /// Writes reach list/search results only after this many milliseconds (reads by id and
    /// by email stay immediate, as in Auth0).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub search_lag: u64,

    /// Lifetime of access tokens in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 86_400)]
    pub token_ttl: u64,

    /// Also send Retry-After on 429 (Auth0 does not document it).
    #[arg(long)]
    pub retry_after: bool,

    /// Write every user as NDJSON to FILE on exit.
    #[arg(long, value_name = "FILE")]
    pub dump: Option<PathBuf>,

    /// Start, talk to the tenant as a client would (token, list, search, lookup), print what it
    /// answered on stderr, and exit.
    #[arg(long)]
    pub self_check: bool,
}

impl SandboxArgs {
    /// The library options these flags describe.
    pub fn options(&self) -> SandboxOptions {
        SandboxOptions {
            listen: self.listen,
            seed: self.seed.clone(),
            generate: self.generate,
            gen_seed: self.gen_seed,
            rate: self.rate,
            burst: self.burst,
            fault_rate: self.fault_rate,
            fault_seed: self.fault_seed,
            latency: Duration::from_millis(self.latency),
            search_lag: Duration::from_millis(self.search_lag),
            token_ttl: Duration::from_secs(self.token_ttl),
            retry_after: self.retry_after,
            client_id: None,
            client_secret: None,
            // A long-running process keeps counters, not an ever-growing log.
            request_log: false,
        }
    }
}
