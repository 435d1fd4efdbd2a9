//! auth0-bulk: move Auth0 users and their metadata in bulk.
//!
//! The library does the work; `main.rs` only parses the command line and calls [`run`].
//! Folders follow the pipeline: `sandbox` is the local tenant every test runs against; `query`
//! is the search language both the CLI and the sandbox read.

pub mod api;
pub mod cli;
pub mod exit;
pub mod export;
pub mod format;
pub mod import;
pub mod net;
pub mod progress;
pub mod query;
pub mod rules;
pub mod sandbox;
pub mod state;
pub mod suggest;
pub mod target;

mod commands;

use std::io::IsTerminal;
use std::process::ExitCode;

use exit::Exit;

/// Runs a parsed command line and decides the exit code.
pub fn run(cli: cli::Cli) -> ExitCode {
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return Exit::Fatal.into();
        }
    };
    match runtime.block_on(commands::dispatch(cli.command)) {
        Ok(exit) => exit.into(),
        Err(error) => {
            eprintln!("error: {error:#}");
            exit::for_error(&error).into()
        }
    }
}

/// Logs go to stderr; `-v` raises the level, `RUST_LOG` overrides it.
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
