//! The `auth0-bulk` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = auth0_bulk::cli::Cli::parse();
    auth0_bulk::run(cli)
}
