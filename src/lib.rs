//! auth0-bulk: move Auth0 users and their metadata in bulk.
//!
//! The library does the work; `main.rs` parses the command line and calls [`run`], which
//! expands a job file, runs the command and lets [`exit`] choose the code.
//!
//! | module | holds |
//! |--------|-------|
//! | [`cli`] | the flags, parsed into typed values |
//! | `commands` | one file per subcommand: flags → a validated spec → a stage → an [`exit::RunOutcome`] |
//! | [`exit`] | the exit codes, and the only mapping to them |
//! | [`target`] | the tenant: its URL and credentials, validated |
//! | [`api`] | the Management API client: token, send loop, users calls |
//! | [`net`] | the network policy: the rate budgets (per endpoint group), the work in flight, the retry rules |
//! | [`export`] | walk → encode → sink, with a checkpoint |
//! | [`import`] | read → plan → apply, with a ledger |
//! | [`delete`] | look up → before-image → delete, with a ledger |
//! | [`state`] | the run state directory the checkpoint and ledger live in |
//! | [`format`](mod@format), [`query`], [`rules`] | the CSV shape and field names, the search language, Auth0's limits |
//! | [`sandbox`] | the local tenant every test (and a rehearsal) runs against |
//! | [`hashes`] | password hashes for the bulk-import job: checked, and verified in the sandbox |
//! | [`progress`], [`suggest`] | progress output, did-you-mean |
//! | [`warnings`] | per-record problems counted by code, and logged a few of each code, not thousands |
//! | [`terminal`] | log levels, colour, `--quiet`, and log lines that never break the progress bar |
//! | [`report`] | `--report FILE.html\|FILE.json`: what a run did, with its requests second by second |
//!
//! One user through an **export**: [`api::Client::list_users`] returns it in a page as an
//! [`api::Listed`] (the JSON text the tenant sent, with its `user_id` and `created_at`);
//! [`export::walk`] places it in a `created_at` window; [`export::encode`] turns the batch into
//! NDJSON lines or CSV rows; [`export::sink`] writes the batch durably, and only then does the
//! checkpoint count it.
//!
//! One record through an **import**: [`import::read`] yields it as a numbered record;
//! [`import::plan`] validates it into what to send; [`import::apply`] looks the user up through
//! [`api::Client`] and creates, patches or leaves it (an [`api::User`] comes back); the
//! [`import::ledger`] records the outcome before the next run could repeat it, and a rejected
//! record goes to the rejects file with its reason.

pub mod api;
pub mod cli;
pub mod delete;
pub mod exit;
pub mod export;
pub mod format;
pub mod hashes;
pub mod import;
pub mod memory;
pub mod net;
pub mod progress;
pub mod query;
pub mod report;
pub mod rules;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod state;
pub mod suggest;
pub mod target;
pub mod terminal;
pub mod warnings;

mod commands;

use std::process::ExitCode;

use anyhow::Context;

use cli::Command;
use exit::RunOutcome;

/// The command line as the binary parses it: the clap definition of [`cli::Cli`], with the help
/// that is built from the definition itself (`run --help` lists every command's job-file keys).
/// Completions and man pages are generated from it too.
pub fn command() -> clap::Command {
    commands::job::document(<cli::Cli as clap::CommandFactory>::command())
}

/// Runs a parsed command line; [`exit::code`] turns how it ended into the exit code.
pub fn run(cli: cli::Cli) -> ExitCode {
    let command = commands::job::expand(cli.command);
    // After the expansion: a job file may say `quiet = true`.
    terminal::init(terminal::Settings {
        verbose: cli.verbose,
        quiet: command.as_ref().is_ok_and(Command::quiet),
        color: cli.color,
    });
    let result = command.map_err(anyhow::Error::from).and_then(execute);
    if let Err(error) = &result {
        eprintln!("error: {error:#}");
    }
    exit::code(&result)
}

/// Runs one command (never `run JOB.toml`: that is expanded first) on a runtime of its own.
fn execute(command: Command) -> anyhow::Result<RunOutcome> {
    memory::few_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let interrupt = commands::Interrupt::default();
    let mut command = Box::pin(commands::dispatch(command, interrupt.clone()));
    let finished = runtime.block_on(async {
        tokio::select! {
            result = &mut command => Some(result),
            () = interrupt.forced() => None,
        }
    });
    match finished {
        Some(result) => result,
        None => {
            // A second signal: the user wants out now, not after the batch. The command is
            // abandoned where it stands, as a crash would leave it (its files are crash-safe),
            // rather than dropped: its clean-up is exactly what the user declined to wait for.
            std::mem::forget(command);
            runtime.shutdown_background();
            Ok(RunOutcome::Interrupted)
        }
    }
}
