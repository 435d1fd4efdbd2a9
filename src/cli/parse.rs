//! Parsing the command line with the colour it asks for: clap's own help and errors follow
//! `--color` too, so the flag is looked for before clap parses (and renders) anything.

use std::ffi::OsString;

use clap::{ColorChoice, FromArgMatches};

use super::{Cli, Command};

/// Parses the process's arguments; clap's help and errors are coloured as `--color` says.
pub fn parse() -> Result<Cli, clap::Error> {
    parse_from(std::env::args_os())
}

/// [`parse`] from given arguments (the first is the program name).
pub fn parse_from(args: impl IntoIterator<Item = impl Into<OsString>>) -> Result<Cli, clap::Error> {
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut command = crate::command().color(color_asked(&args));
    let matches = command.try_get_matches_from_mut(&args)?;
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))
}

/// The `--color` value among `args` (the last one given wins, as clap takes it), `auto` when
/// there is none or it is not one clap takes (clap then says so). Nothing after `--` counts.
fn color_asked(args: &[OsString]) -> ColorChoice {
    let mut asked = ColorChoice::Auto;
    let mut words = args.iter().map(|a| a.to_str().unwrap_or_default());
    while let Some(word) = words.next() {
        let value = match word {
            "--" => break,
            "--color" => words.next().unwrap_or_default(),
            other => match other.strip_prefix("--color=") {
                Some(value) => value,
                None => continue,
            },
        };
        asked = match value {
            "always" => ColorChoice::Always,
            "never" => ColorChoice::Never,
            _ => ColorChoice::Auto,
        };
    }
    asked
}

impl Command {
    /// Whether the command was given `--quiet` (commands without the flag never are).
    pub fn quiet(&self) -> bool {
        match self {
            Command::Export(args) => args.summary.quiet,
            Command::Import(args) => args.summary.quiet,
            Command::Delete(args) => args.summary.quiet,
            Command::Undo(args) => args.summary.quiet,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(args: &[&str]) -> ColorChoice {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        color_asked(&args)
    }

    #[test]
    fn the_color_flag_is_found_before_clap_renders_anything() {
        assert_eq!(asked(&["a", "export"]), ColorChoice::Auto);
        assert_eq!(asked(&["a", "--color", "never", "x"]), ColorChoice::Never);
        assert_eq!(asked(&["a", "x", "--color=always"]), ColorChoice::Always);
        assert_eq!(
            asked(&["a", "--color=never", "--color", "always"]),
            ColorChoice::Always
        );
        assert_eq!(asked(&["a", "--", "--color=never"]), ColorChoice::Auto);
        let cli = parse_from(["auth0-bulk", "--color", "never", "import", "-i", "u", "-q"])
            .expect("parses");
        assert_eq!(cli.color, ColorChoice::Never);
        assert!(cli.command.quiet());
    }
}
