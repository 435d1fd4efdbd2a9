//! Typed flag values: each flag is parsed once, by clap, into the type the library takes.
//!
//! A bad value is clap's error (exit 2) before anything runs. The enums here are the command
//! line's names; each maps to its library enum with an exhaustive match, so a new variant on
//! either side is a compile error, not a silent default.

use chrono::{NaiveDate, Utc};
use clap::ValueEnum;

use crate::export::Since;
use crate::export::walk::canonical;
use crate::import::plan::{Engine, MatchBy, MetadataStrategy, Mode};
use crate::import::read::InputFormat;
use crate::net::throttle::Rate;

/// `import --mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeFlag {
    Create,
    Update,
    Upsert,
}

impl From<ModeFlag> for Mode {
    fn from(flag: ModeFlag) -> Mode {
        match flag {
            ModeFlag::Create => Mode::Create,
            ModeFlag::Update => Mode::Update,
            ModeFlag::Upsert => Mode::Upsert,
        }
    }
}

/// `import --match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MatchFlag {
    Auto,
    #[value(name = "user_id")]
    UserId,
    Email,
}

impl From<MatchFlag> for MatchBy {
    fn from(flag: MatchFlag) -> MatchBy {
        match flag {
            MatchFlag::Auto => MatchBy::Auto,
            MatchFlag::UserId => MatchBy::UserId,
            MatchFlag::Email => MatchBy::Email,
        }
    }
}

/// `import --metadata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetadataFlag {
    Merge,
    Deep,
    Replace,
}

impl From<MetadataFlag> for MetadataStrategy {
    fn from(flag: MetadataFlag) -> MetadataStrategy {
        match flag {
            MetadataFlag::Merge => MetadataStrategy::Merge,
            MetadataFlag::Deep => MetadataStrategy::Deep,
            MetadataFlag::Replace => MetadataStrategy::Replace,
        }
    }
}

/// `import --engine` and `export --engine` (an export's job engine needs settings from the
/// tenant, so `commands::export` builds its engine itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineFlag {
    Api,
    Job,
}

impl From<EngineFlag> for Engine {
    fn from(flag: EngineFlag) -> Engine {
        match flag {
            EngineFlag::Api => Engine::Api,
            EngineFlag::Job => Engine::Job,
        }
    }
}

/// `import --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormatFlag {
    Auto,
    Ndjson,
    Csv,
    Json,
}

impl From<InputFormatFlag> for InputFormat {
    fn from(flag: InputFormatFlag) -> InputFormat {
        match flag {
            InputFormatFlag::Auto => InputFormat::Auto,
            InputFormatFlag::Ndjson => InputFormat::Ndjson,
            InputFormatFlag::Csv => InputFormat::Csv,
            InputFormatFlag::Json => InputFormat::Json,
        }
    }
}

/// `import --passwords`: the only generated kind so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PasswordsFlag {
    Random,
}

/// `export --format` (and the format read from the output's name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Ndjson,
    Csv,
}

impl OutputFormat {
    /// The name on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Ndjson => "ndjson",
            OutputFormat::Csv => "csv",
        }
    }
}

/// `export --csv-metadata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CsvMetadata {
    Json,
    Flatten,
}

/// `--rate auto|N` (and the undocumented `unlimited`, for tests).
pub fn parse_rate(raw: &str) -> Result<Rate, String> {
    match raw.trim() {
        "auto" => Ok(Rate::Auto),
        "unlimited" => Ok(Rate::Unlimited),
        n => match n.parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 => Ok(Rate::PerSecond(r)),
            _ => Err(format!(
                "--rate must be `auto` or a positive number of requests per second, not {n:?}"
            )),
        },
    }
}

/// `--since`: `last`, a date, or an ISO timestamp, as a canonical UTC timestamp.
pub fn parse_since(raw: &str) -> Result<Since, String> {
    let raw = raw.trim();
    if raw == "last" {
        return Ok(Since::Last);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(Since::At(canonical(t.with_timezone(&Utc))));
    }
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        let t = d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
        return Ok(Since::At(canonical(t)));
    }
    Err(format!(
        "--since {raw:?}: expected `last`, a date (2024-01-31) or an ISO timestamp (2024-01-31T12:00:00Z)"
    ))
}

/// `--rename FROM=TO`: a root field and its name on output, both trimmed and non-empty.
pub fn parse_rename(pair: &str) -> Result<(String, String), String> {
    let Some((from, to)) = pair.split_once('=') else {
        return Err(format!(
            "--rename {pair:?}: expected FROM=TO, e.g. app_metadata=metadata"
        ));
    };
    let (from, to) = (from.trim(), to.trim());
    if from.is_empty() || to.is_empty() {
        return Err(format!("--rename {pair:?}: both names are needed"));
    }
    Ok((from.to_string(), to.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_is_auto_or_a_positive_number() {
        assert_eq!(parse_rate("auto"), Ok(Rate::Auto));
        assert_eq!(parse_rate(" 7.5 "), Ok(Rate::PerSecond(7.5)));
        for bad in ["0", "-1", "NaN", "inf", "fast"] {
            assert!(parse_rate(bad).unwrap_err().contains("--rate"), "{bad}");
        }
    }

    #[test]
    fn since_takes_last_a_date_or_a_timestamp_in_utc() {
        assert_eq!(parse_since("last"), Ok(Since::Last));
        let Ok(Since::At(day)) = parse_since("2024-01-31") else {
            panic!("a date")
        };
        assert!(day.starts_with("2024-01-31T00:00:00"), "{day}");
        let Ok(Since::At(t)) = parse_since("2024-01-31T12:00:00+02:00") else {
            panic!("a timestamp")
        };
        assert!(t.starts_with("2024-01-31T10:00:00"), "{t}");
        assert!(
            parse_since("yesterday")
                .unwrap_err()
                .contains("expected `last`")
        );
    }

    #[test]
    fn a_rename_needs_both_names() {
        assert_eq!(
            parse_rename(" app_metadata = metadata "),
            Ok(("app_metadata".into(), "metadata".into()))
        );
        assert!(
            parse_rename("app_metadata")
                .unwrap_err()
                .contains("FROM=TO")
        );
        assert!(
            parse_rename("=metadata")
                .unwrap_err()
                .contains("both names")
        );
    }
}

/// `--authz`: what happens to the assignments a record does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthzFlag {
    Merge,
    Replace,
}

impl From<AuthzFlag> for crate::import::access::Strategy {
    fn from(flag: AuthzFlag) -> crate::import::access::Strategy {
        match flag {
            AuthzFlag::Merge => crate::import::access::Strategy::Merge,
            AuthzFlag::Replace => crate::import::access::Strategy::Replace,
        }
    }
}

/// `--create-missing`: the kinds a record may name that the import creates when the tenant
/// lacks them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreateMissing {
    pub roles: bool,
    pub organizations: bool,
}

impl std::str::FromStr for CreateMissing {
    type Err = String;

    fn from_str(s: &str) -> Result<CreateMissing, String> {
        let mut out = CreateMissing::default();
        for part in s.split(',').map(str::trim) {
            match part {
                "roles" => out.roles = true,
                "organizations" => out.organizations = true,
                "" => return Err("an empty name in the list".into()),
                other => {
                    return Err(format!(
                        "`{other}` is not one of roles, organizations (permissions name an \
                         API's scopes, which an import does not create)"
                    ));
                }
            }
        }
        Ok(out)
    }
}
