//! The subcommands: each turns its flags into a run of the library and an exit code.

mod sandbox;

use crate::cli::Command;
use crate::exit::Exit;

pub async fn dispatch(command: Command) -> anyhow::Result<Exit> {
    match command {
        Command::Sandbox(args) => sandbox::run(args).await,
    }
}
