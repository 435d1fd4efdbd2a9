//! `auth0-bulk man [COMMAND]`: a manual page in roff, generated from the same clap definition
//! the parser uses. The tool's page (auth0-bulk(1)) lists the commands; each command has its
//! own page (auth0-bulk-export(1)) with all of its options, as git's commands do. Pages go to
//! stdout only: where they are installed is the user's (or the packager's) choice.

use crate::cli::ManArgs;
use crate::exit::{RunOutcome, UsageError};

/// Prints the page on stdout.
pub fn run(args: &ManArgs) -> anyhow::Result<RunOutcome> {
    let mut command = crate::command().disable_help_subcommand(true);
    // Built, each command is named as its page is: `auth0-bulk-export`.
    command.build();
    let page = match &args.command {
        None => command,
        Some(name) => command.find_subcommand(name).cloned().ok_or_else(|| {
            let names: Vec<&str> = command.get_subcommands().map(|c| c.get_name()).collect();
            let hint = crate::suggest::closest(name, names.iter().copied())
                .map(|s| format!("did you mean `{s}`? "))
                .unwrap_or_default();
            UsageError(format!(
                "no command `{name}`: {hint}the commands are {}",
                names.join(", ")
            ))
        })?,
    };
    let mut roff = Vec::new();
    // Every page is this version's (a command has no version of its own to show).
    clap_mangen::Man::new(page)
        .source(format!("auth0-bulk {}", env!("CARGO_PKG_VERSION")))
        .render(&mut roff)?;
    super::print(&roff)
}
