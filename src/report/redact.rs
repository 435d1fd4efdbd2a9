//! What ran, as a report shows it: the command line and the tool's environment variables,
//! with every secret replaced by `***`.
//!
//! Three layers, so that a secret given any way never reaches the file: the values of
//! `--client-secret` and `--token` (as `--flag VALUE` or `--flag=VALUE`) are replaced; the
//! environment variables the tool reads are listed with `AUTH0_CLIENT_SECRET` and
//! `AUTH0_TOKEN` as `***`; and the value of any `AUTH0_*` variable whose name says it is a
//! secret (`SECRET`, `TOKEN`, `KEY`, `PASSWORD`) is replaced wherever it appears in what the
//! report shows (a secret pasted as another flag's value, an error message).

use std::collections::BTreeMap;
use std::ffi::OsString;

/// How a secret is shown.
pub const MASK: &str = "***";

/// The flags whose value is a secret.
const SECRET_FLAGS: &[&str] = &["--client-secret", "--token"];

/// The environment variables the tool reads, in the order a report lists them, and whether
/// each is a secret.
const VARIABLES: &[(&str, bool)] = &[
    ("AUTH0_DOMAIN", false),
    ("AUTH0_CLIENT_ID", false),
    ("AUTH0_CLIENT_SECRET", true),
    ("AUTH0_TOKEN", true),
];

/// The secrets a run was given, to replace wherever they would be shown.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// The secrets in `args` (the values of the secret flags) and in `env`.
    pub fn new(args: &[String], env: &[(String, String)]) -> Redactor {
        let mut secrets: Vec<String> = env
            .iter()
            .filter(|(name, _)| is_secret_variable(name))
            .map(|(_, value)| value.clone())
            .collect();
        let mut next_is_secret = false;
        for arg in args {
            if next_is_secret {
                secrets.push(arg.clone());
            }
            next_is_secret = SECRET_FLAGS.contains(&arg.as_str());
            if let Some((flag, value)) = arg.split_once('=')
                && SECRET_FLAGS.contains(&flag)
            {
                secrets.push(value.to_string());
            }
        }
        // Longest first, so a secret that contains another is replaced whole.
        secrets.retain(|s| !s.is_empty());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// The process's own command line and environment.
    pub fn of_process() -> (Redactor, Vec<String>, Vec<(String, String)>) {
        let args: Vec<String> = std::env::args_os().map(lossy).collect();
        let env: Vec<(String, String)> = std::env::vars_os()
            .map(|(name, value)| (lossy(name), lossy(value)))
            .filter(|(name, _)| name.starts_with("AUTH0_"))
            .collect();
        (Redactor::new(&args, &env), args, env)
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn scrub(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_string(), |text, secret| text.replace(secret, MASK))
    }

    /// The command line to show: the program by its file name, the secret flags' values
    /// masked, any other secret scrubbed.
    pub fn command(&self, args: &[String]) -> Vec<String> {
        let mut shown = Vec::with_capacity(args.len());
        let mut next_is_secret = false;
        for (i, arg) in args.iter().enumerate() {
            let text = if i == 0 {
                std::path::Path::new(arg)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| arg.clone())
            } else if next_is_secret {
                MASK.to_string()
            } else {
                match arg.split_once('=') {
                    Some((flag, _)) if SECRET_FLAGS.contains(&flag) => format!("{flag}={MASK}"),
                    _ => arg.clone(),
                }
            };
            next_is_secret = i > 0 && SECRET_FLAGS.contains(&arg.as_str());
            shown.push(self.scrub(&text));
        }
        shown
    }

    /// The environment variables the tool reads that are set: the secret ones as [`MASK`].
    pub fn environment(&self, env: &[(String, String)]) -> BTreeMap<String, String> {
        VARIABLES
            .iter()
            .filter_map(|(name, secret)| {
                let (_, value) = env.iter().find(|(n, _)| n == name)?;
                let shown = if *secret {
                    MASK.to_string()
                } else {
                    self.scrub(value)
                };
                Some((name.to_string(), shown))
            })
            .collect()
    }
}

/// Whether an `AUTH0_*` variable's name says it holds a secret.
fn is_secret_variable(name: &str) -> bool {
    name.starts_with("AUTH0_")
        && ["SECRET", "TOKEN", "KEY", "PASSWORD"]
            .iter()
            .any(|word| name.contains(word))
}

fn lossy(text: OsString) -> String {
    text.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_secret_survives_in_the_command_line_or_the_environment() {
        let args = strings(&[
            "/usr/local/bin/auth0-bulk",
            "export",
            "--client-secret",
            "s3cr3t-flag",
            "--token=t0ken-flag",
            "--domain",
            "acme.eu.auth0.com",
            "--query",
            "email:s3cr3t-env",
        ]);
        let env = vec![
            ("AUTH0_DOMAIN".to_string(), "acme.eu.auth0.com".to_string()),
            ("AUTH0_CLIENT_SECRET".to_string(), "s3cr3t-env".to_string()),
            ("AUTH0_TOKEN".to_string(), "t0ken-env".to_string()),
        ];
        let redactor = Redactor::new(&args, &env);
        assert_eq!(
            redactor.command(&args),
            strings(&[
                "auth0-bulk",
                "export",
                "--client-secret",
                "***",
                "--token=***",
                "--domain",
                "acme.eu.auth0.com",
                "--query",
                "email:***",
            ])
        );
        let shown = redactor.environment(&env);
        assert_eq!(shown["AUTH0_DOMAIN"], "acme.eu.auth0.com");
        assert_eq!(shown["AUTH0_CLIENT_SECRET"], "***");
        assert_eq!(shown["AUTH0_TOKEN"], "***");
        assert!(!shown.contains_key("AUTH0_CLIENT_ID"), "only what is set");
        assert_eq!(
            redactor.scrub("refused s3cr3t-flag and t0ken-env"),
            "refused *** and ***"
        );
    }
}
