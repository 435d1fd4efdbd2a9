//! The `auth0-bulk` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    match auth0_bulk::cli::parse() {
        Ok(cli) => auth0_bulk::run(cli),
        Err(error) => {
            // Help and version go to stdout, a refused command line to stderr, as clap does.
            let _ = error.print();
            auth0_bulk::exit::for_clap(&error)
        }
    }
}
