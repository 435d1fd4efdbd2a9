//! The subcommands: each turns its flags into a run of the library and an exit code.

mod common;
mod export;
mod import;
mod job;
mod sandbox;

use crate::cli::Command;
use crate::exit::Exit;

pub fn dispatch(
    command: Command,
) -> futures::future::LocalBoxFuture<'static, anyhow::Result<Exit>> {
    Box::pin(async move {
        match command {
            Command::Sandbox(args) => sandbox::run(args).await,
            Command::Export(args) => export::run(*args).await,
            Command::Import(args) => import::run(*args).await,
            Command::Run(args) => job::run(args).await,
        }
    })
}
