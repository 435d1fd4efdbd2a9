//! `auth0-bulk completions SHELL`: a completion script for the shell, generated from the same
//! clap definition the parser uses, so it knows every command, flag and value the tool does.

use crate::cli::CompletionsArgs;
use crate::exit::RunOutcome;

/// Prints the script on stdout.
pub fn run(args: &CompletionsArgs) -> anyhow::Result<RunOutcome> {
    let mut command = crate::command();
    let name = command.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, name, &mut script);
    super::print(&script)
}
