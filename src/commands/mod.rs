//! The subcommands: each turns its flags into a run of the library and names its [`RunOutcome`].

mod common;
mod completions;
mod export;
mod import;
pub mod job;
mod man;
#[cfg(feature = "sandbox")]
mod sandbox;
pub mod signal;

use crate::cli::Command;
use crate::exit::{RunOutcome, UsageError};

pub use signal::Interrupt;

/// Runs one command. A job file is expanded by [`job::expand`] before it gets here.
pub async fn dispatch(command: Command, interrupt: Interrupt) -> anyhow::Result<RunOutcome> {
    match command {
        #[cfg(feature = "sandbox")]
        Command::Sandbox(args) => sandbox::run(*args).await,
        Command::Export(args) => export::run(*args, &interrupt).await,
        Command::Import(args) => import::run(*args, &interrupt).await,
        Command::Completions(args) => completions::run(&args),
        Command::Man(args) => man::run(&args),
        // `lib::run` expands every job first, and `job::expand` refuses one that names `run`.
        Command::Run(_) => Err(UsageError("a job cannot run another job".into()).into()),
    }
}

/// Writes generated text to stdout; a reader that stops early (`| head`) is not an error.
fn print(bytes: &[u8]) -> anyhow::Result<RunOutcome> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(RunOutcome::Success),
    }
}
