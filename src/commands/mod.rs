//! The subcommands: each turns its flags into a run of the library and names its [`RunOutcome`].

mod common;
mod completions;
mod delete;
mod export;
mod import;
pub mod job;
mod man;
mod report;
#[cfg(feature = "sandbox")]
mod sandbox;
pub mod signal;
mod undo;

use crate::cli::Command;
use crate::exit::{RunOutcome, UsageError};

pub use signal::Interrupt;

/// Runs one command. A job file is expanded by [`job::expand`] before it gets here.
pub async fn dispatch(command: Command, interrupt: Interrupt) -> anyhow::Result<RunOutcome> {
    match command {
        #[cfg(feature = "sandbox")]
        Command::Sandbox(args) => sandbox::run(*args).await,
        Command::Export(args) => {
            let output = [("--output", Some(args.output.as_path()))];
            let files = report::files(&args.summary, &args.run, &args.target, &output)?;
            report::reported(files, |witness| export::run(*args, &interrupt, witness)).await
        }
        Command::Import(args) => {
            let own = [
                ("--input", Some(args.input.as_path())),
                ("--rejects", args.rejects.as_deref()),
                ("--plan", args.plan.as_deref()),
                ("--tickets", args.tickets.as_deref()),
            ];
            let files = report::files(&args.summary, &args.run, &args.target, &own)?;
            report::reported(files, |witness| import::run(*args, &interrupt, witness)).await
        }
        Command::Delete(args) => {
            let own = [
                ("--users", args.users.as_deref()),
                ("--plan", args.plan.as_deref()),
            ];
            let files = report::files(&args.summary, &args.run, &args.target, &own)?;
            report::reported(files, |witness| delete::run(*args, &interrupt, witness)).await
        }
        Command::Undo(args) => {
            let files =
                report::files_of(&args.summary.report, Some(&args.state), &args.target, &[])?;
            report::reported(files, |witness| undo::run(*args, &interrupt, witness)).await
        }
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
