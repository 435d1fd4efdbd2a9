//! The subcommands: each turns its flags into a run of the library and names its [`RunOutcome`].

mod common;
mod delete;
mod export;
mod import;
pub mod job;
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
            let files = report::files(&args.run, &args.target, &output)?;
            report::reported(files, |witness| export::run(*args, &interrupt, witness)).await
        }
        Command::Import(args) => {
            let own = [
                ("--input", Some(args.input.as_path())),
                ("--rejects", args.rejects.as_deref()),
                ("--plan", args.plan.as_deref()),
                ("--tickets", args.tickets.as_deref()),
            ];
            let files = report::files(&args.run, &args.target, &own)?;
            report::reported(files, |witness| import::run(*args, &interrupt, witness)).await
        }
        Command::Delete(args) => delete::run(*args, &interrupt).await,
        Command::Undo(args) => undo::run(*args, &interrupt).await,
        // `lib::run` expands every job first, and `job::expand` refuses one that names `run`.
        Command::Run(args) => Err(UsageError(format!(
            "job file {}: a job cannot run another job",
            args.job.display()
        ))
        .into()),
    }
}
