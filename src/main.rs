//! The `auth0-bulk` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::FromArgMatches;

fn main() -> ExitCode {
    let parsed = auth0_bulk::command()
        .try_get_matches()
        .and_then(|matches| auth0_bulk::cli::Cli::from_arg_matches(&matches));
    match parsed {
        Ok(cli) => auth0_bulk::run(cli),
        Err(error) => {
            // Help and version go to stdout, a refused command line to stderr, as clap does.
            let _ = error.print();
            auth0_bulk::exit::for_clap(&error)
        }
    }
}
