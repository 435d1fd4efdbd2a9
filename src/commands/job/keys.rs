//! The keys a job file may hold, read from the clap definition: each is a long option of the
//! job's command, so a new flag is a new key with no line here, and `run --help` lists them from
//! the same definition the parser uses.

use std::path::PathBuf;

use clap::{Arg, ArgAction};

/// Subcommands a job file cannot name: `run` (a job cannot run a job) and the ones that only
/// print something about the tool.
const NOT_JOBS: &[&str] = &["run", "completions", "man", "help"];

/// Options a job file must not hold: secrets live in the environment, never in files in git.
pub const SECRETS: &[&str] = &["client-secret", "token"];

/// What value an option takes, which decides the TOML types its key accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// A flag: `true` or `false`.
    Switch,
    /// A flag given N times (`-vv`): a number, or `true` for once.
    Count,
    /// One value: a string, number or date.
    One,
    /// A repeatable option: one value or a list of them.
    Many,
}

/// One key of a job file.
#[derive(Debug, Clone)]
pub struct Key {
    /// The long option, with `-` (`csv-metadata`); the file may write `_`.
    pub long: String,
    pub short: Option<char>,
    pub takes: Takes,
    /// A path: a relative one is taken from the job file's folder.
    pub path: bool,
    /// What the value looks like, for messages and `run --help`: `PATH`, `create|update|upsert`.
    pub shape: String,
}

impl Key {
    fn of(arg: &Arg) -> Option<Key> {
        let long = arg.get_long()?;
        let takes = match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse => Takes::Switch,
            ArgAction::Count => Takes::Count,
            ArgAction::Append => Takes::Many,
            ArgAction::Set => Takes::One,
            // --help and --version: nothing a job runs.
            _ => return None,
        };
        let possible: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| v.get_name().to_string())
            .collect();
        let shape = match takes {
            Takes::Switch => "true|false".to_string(),
            Takes::Count => "N".to_string(),
            _ if !possible.is_empty() => possible.join("|"),
            _ => arg
                .get_value_names()
                .and_then(|names| names.first())
                .map_or_else(|| "VALUE".to_string(), ToString::to_string),
        };
        Some(Key {
            long: long.to_string(),
            short: arg.get_short(),
            takes,
            path: arg.get_value_parser().type_id() == std::any::TypeId::of::<PathBuf>(),
            shape,
        })
    }

    /// How the key is written in a job file, in the spelling the user chose (`_` or `-`).
    pub fn spelled(&self, like: &str) -> String {
        if like.contains('-') {
            self.long.clone()
        } else {
            self.long.replace('-', "_")
        }
    }

    /// What the key takes, for a message: `one value (PATH)`, `true or false`.
    pub fn wants(&self) -> String {
        match self.takes {
            Takes::Switch => "true or false".to_string(),
            Takes::Count => "a number (or true for once)".to_string(),
            Takes::One => format!("one value ({})", self.shape),
            Takes::Many => format!("a value or a list of values ({})", self.shape),
        }
    }
}

/// The commands a job file may name, as the top-level command defines them.
pub fn commands(cli: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cli.get_subcommands()
        .filter(|c| !NOT_JOBS.contains(&c.get_name()))
}

/// The keys of one command: its long options, but never a secret.
pub fn keys(command: &clap::Command) -> Vec<Key> {
    command
        .get_arguments()
        .filter_map(Key::of)
        .filter(|k| !SECRETS.contains(&k.long.as_str()))
        .collect()
}

/// The options any job command has, secrets included: what the command line of `run` may hold
/// before and after the job file.
pub fn every_option(cli: &clap::Command) -> Vec<Key> {
    let mut all: Vec<Key> = commands(cli)
        .flat_map(|c| c.get_arguments().filter_map(Key::of))
        .collect();
    all.sort_by(|a, b| a.long.cmp(&b.long));
    all.dedup_by(|a, b| a.long == b.long);
    all
}

/// `run --help`'s list of keys, command by command, and an example, built from `cli` itself.
pub fn document(cli: clap::Command) -> clap::Command {
    let mut text = String::from(
        "Keys: the long options of the command, with `_` or `-` (`csv_metadata`), and \
         `command`. A switch takes true or false (`fresh = true`); a repeatable option a list \
         (`rename = [\"a=b\", \"c=d\"]`); a number or date may be written bare \
         (`concurrency = 8`, `since = 2024-01-31`). Secrets (client_secret, token) are never \
         read from job files.\n",
    );
    for command in commands(&cli) {
        let keys: Vec<String> = keys(command)
            .iter()
            .map(|k| format!("{} = {}", k.spelled("_"), k.shape))
            .collect();
        text.push_str(&format!("\n`command = \"{}\"`:\n", command.get_name()));
        text.push_str(&wrap(&keys, 100));
    }
    text.push_str(
        "\nExample (jobs/nightly-incremental.toml):\n  command = \"export\"\n  since = \"last\"\n  \
         index_lag = 300\n  output = \"exports/changed-users-{date}.ndjson.gz\"\n  \
         state = \"state/nightly\"\n\n  auth0-bulk run jobs/nightly-incremental.toml --quiet --json\n  \
         auth0-bulk run --fresh jobs/nightly-incremental.toml\n",
    );
    cli.mut_subcommand("run", |run| run.after_long_help(text))
}

/// `items` joined by two spaces, in lines of at most `width`, indented by two.
fn wrap(items: &[String], width: usize) -> String {
    let mut out = String::new();
    let mut line = String::from(" ");
    for item in items {
        if line.len() + 2 + item.len() > width && line.trim() != "" {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(" ");
        }
        line.push_str(&format!(" {item};"));
    }
    if line.trim() != "" {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn export_keys() -> Vec<Key> {
        let cli = crate::cli::Cli::command();
        keys(cli.find_subcommand("export").unwrap())
    }

    #[test]
    fn keys_come_from_the_flags_with_what_each_takes() {
        let keys = export_keys();
        let key = |name: &str| keys.iter().find(|k| k.long == name).unwrap().clone();
        assert_eq!(key("fresh").takes, Takes::Switch);
        assert_eq!(key("rename").takes, Takes::Many);
        assert_eq!(key("concurrency").takes, Takes::One);
        assert!(key("output").path && key("state").path && !key("query").path);
        assert_eq!(key("csv-metadata").shape, "json|flatten");
        assert!(
            !keys
                .iter()
                .any(|k| SECRETS.contains(&k.long.as_str()) || k.long == "help"),
            "no secret and no --help"
        );
    }

    #[test]
    fn run_help_lists_every_command_with_its_keys() {
        let mut cli = document(crate::cli::Cli::command());
        let help = cli
            .find_subcommand_mut("run")
            .unwrap()
            .render_long_help()
            .to_string();
        for needle in [
            "`command = \"export\"`",
            "`command = \"import\"`",
            "csv_metadata = json|flatten",
            "fresh = true|false",
            "output = PATH",
            "Example",
        ] {
            assert!(help.contains(needle), "{needle} missing:\n{help}");
        }
        assert!(!help.contains("client_secret = "), "{help}");
        assert!(help.lines().all(|l| l.len() <= 100), "{help}");
    }
}
