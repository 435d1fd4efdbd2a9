//! The command line: every subcommand, flag and its help text.

#[cfg(feature = "sandbox")]
use std::net::SocketAddr;
use std::path::PathBuf;
#[cfg(feature = "sandbox")]
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::export::Since;
use crate::net::throttle::Rate;
#[cfg(feature = "sandbox")]
use crate::sandbox::{GroupLimit, SandboxOptions};

mod headings;
mod parse;
mod values;

pub use parse::parse;

pub use values::{
    AuthzFlag, CreateMissing, CsvMetadata, EngineFlag, InputFormatFlag, MatchFlag, MetadataFlag,
    ModeFlag, OutputFormat, PasswordsFlag,
};

/// Move Auth0 users and their metadata in bulk: rate-limited, resumable export and import.
///
/// Every command runs against a tenant's Management API. `auth0-bulk sandbox` starts a local
/// tenant that behaves like Auth0, for tests and for rehearsing a job before production.
#[derive(Debug, Parser)]
#[command(name = "auth0-bulk", version, about, long_about)]
#[command(
    after_help = "Exit codes: 0 done, 1 fatal error (re-run to resume), 2 bad usage or \
configuration, 3 done with rejected records, 130 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// More log output on stderr (-v: debug, -vv: trace; -vvv adds the HTTP libraries'). RUST_LOG
    /// overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Colour on stderr: `auto` (on a terminal, unless NO_COLOR is set), `always` or `never`.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = clap::ColorChoice::Auto)]
    pub color: clap::ColorChoice,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a local sandbox tenant: the Management API users subset, faithful to Auth0.
    ///
    /// Prints one JSON line on stdout once it listens:
    /// {"domain":"http://127.0.0.1:PORT","client_id":"...","client_secret":"..."}
    /// and serves until SIGINT or SIGTERM. Logs go to stderr.
    #[cfg(feature = "sandbox")]
    #[command(override_usage = "auth0-bulk sandbox [OPTIONS]")]
    Sandbox(Box<SandboxArgs>),

    /// Export users with their metadata to NDJSON or CSV, past the 1,000-result cap.
    ///
    /// Reads the tenant in created_at windows at its rate limit, retries 429s and transient
    /// failures, and checkpoints after every batch: run the same command again after a crash or
    /// Ctrl-C and it resumes, producing the same bytes as a clean run. --engine job reads a
    /// whole large tenant through one Auth0 bulk-export job instead.
    ///
    /// Examples:
    ///   auth0-bulk export --domain acme.eu.auth0.com --output users.ndjson.gz
    ///   auth0-bulk export --engine job --output all-users.ndjson.gz
    ///   auth0-bulk export --query 'app_metadata.plan:"pro"' --output pro.csv --csv-metadata flatten
    ///   auth0-bulk export --since last --output nightly.ndjson --state /var/lib/auth0-bulk/nightly
    #[command(verbatim_doc_comment)]
    #[command(override_usage = "auth0-bulk export --output PATH [OPTIONS]")]
    Export(Box<ExportArgs>),

    /// Import users with metadata from NDJSON, CSV or a JSON array: create, update or upsert.
    ///
    /// Every record ends as created, updated, unchanged, skipped (with why) or rejected (with
    /// why, in the rejects file, which import reads back as it is once fixed). A ledger in the
    /// run state records each outcome: run the same command again after a crash and it resumes
    /// without creating anyone twice. --dry-run shows what would change and writes nothing.
    ///
    /// Examples:
    ///   auth0-bulk import --input users.ndjson.gz --mode create --passwords random
    ///   auth0-bulk import --input plans.csv --mode update --match email --dry-run
    ///   auth0-bulk import --input users.rejects.ndjson --mode upsert --metadata deep
    #[command(verbatim_doc_comment)]
    #[command(override_usage = "auth0-bulk import --input PATH [OPTIONS]")]
    Import(Box<ImportArgs>),

    /// Delete users in bulk, each one's before-image kept first: rate-limited and resumable.
    ///
    /// Every user is looked up and appended, exactly as the tenant returns it, to the
    /// before-images file STATE/deleted.ndjson (0600, made durable) before it is deleted, so a
    /// deletion can be taken back: `auth0-bulk undo STATE` (or `auth0-bulk import --input
    /// STATE/deleted.ndjson --mode create --passwords random`) brings the users back with
    /// their user_ids and metadata. Not
    /// their passwords: the API never returns them, so restored users set a new one (see
    /// import --tickets). The file is only ever appended to, by every run with this state. A
    /// ledger in the state records each chunk of users: run the same command again after a
    /// crash or Ctrl-C and it resumes, deleting no one twice and keeping one image per user.
    ///
    /// --state defaults to FILE.state beside --users; --query needs --state. A real deletion
    /// needs --yes; look first with --dry-run, which deletes and writes nothing. The token
    /// needs the scopes read:users and delete:users. To block users rather than delete them,
    /// import {"user_id": ..., "blocked": true} records with --mode update.
    ///
    /// Examples:
    ///   auth0-bulk delete --users leavers.txt --dry-run
    ///   auth0-bulk delete --users leavers.txt --yes
    ///   auth0-bulk delete --query 'app_metadata.plan:"trial"' --state trial-purge --yes
    #[command(verbatim_doc_comment)]
    #[command(
        override_usage = "auth0-bulk delete (--users FILE | --query Q --state DIR) (--dry-run | --yes) [OPTIONS]"
    )]
    Delete(Box<DeleteArgs>),

    /// Undo an import or a delete, from its run state: restore what it changed, delete whom it
    /// created, create again whom it deleted.
    ///
    /// An import: every update keeps, before it is sent, the user's previous values of exactly
    /// the fields and metadata keys it changes (STATE/before-images.ndjson). Undo restores them
    /// through the importer (update mode, by user_id, merge metadata), then deletes the users
    /// the import created (their ids are in its ledger; needs read:users and delete:users,
    /// checked first), each one's before-image kept in STATE/undo/creates/deleted.ndjson.
    /// Not restored: passwords, roles, organizations and permissions; a boolean field the user
    /// lacked comes back as false. The restores by hand:
    ///   auth0-bulk import --input STATE/before-images.ndjson --mode update --match user_id --metadata merge
    ///
    /// A delete (its --state, holding deleted.ndjson): undo creates the deleted users again
    /// with their user_ids and metadata, with random passwords: a password cannot come back
    /// (--tickets FILE writes password-change tickets for them).
    ///
    /// Resumable and exactly once (undo's own run state is STATE/undo/): a second undo changes,
    /// deletes and creates nothing.
    ///
    /// Examples:
    ///   auth0-bulk undo plans.csv.state --dry-run
    ///   auth0-bulk undo plans.csv.state --json
    ///   auth0-bulk undo leavers.txt.state --tickets tickets.ndjson
    #[command(verbatim_doc_comment)]
    Undo(Box<UndoArgs>),

    /// Run a job file (TOML) that states a command and its options.
    ///
    /// Keys are the command's long options with `-` or `_` (`output = "users.ndjson"`,
    /// `csv_metadata = "flatten"`, `rename = ["app_metadata=metadata"]`, `fresh = true`), plus
    /// `command = "export"`. Secrets are never read from job files: set AUTH0_CLIENT_SECRET or
    /// AUTH0_TOKEN. Relative paths are relative to the job file. Options given before or after
    /// the job file override it: `auth0-bulk run jobs/nightly.toml --fresh`. `--help` lists the
    /// keys of every command.
    #[command(override_usage = "auth0-bulk run [OPTIONS] JOB.toml [OPTIONS]")]
    Run(RunArgs),

    /// Print a shell completion script: bash, zsh, fish, powershell or elvish.
    ///
    /// Examples:
    ///   auth0-bulk completions bash > ~/.local/share/bash-completion/completions/auth0-bulk
    ///   auth0-bulk completions zsh > ~/.zfunc/_auth0-bulk     # with fpath+=(~/.zfunc)
    ///   auth0-bulk completions fish > ~/.config/fish/completions/auth0-bulk.fish
    #[command(verbatim_doc_comment)]
    Completions(CompletionsArgs),

    /// Print a manual page (roff) on stdout: the tool's, or one command's.
    ///
    /// `auth0-bulk man` is auth0-bulk(1), with every command listed; `auth0-bulk man export`
    /// is auth0-bulk-export(1), with all of its options. Nothing is written but stdout.
    ///
    /// Examples:
    ///   auth0-bulk man | man -l -
    ///   for c in "" export import run; do auth0-bulk man $c > "auth0-bulk${c:+-$c}.1"; done
    #[command(verbatim_doc_comment)]
    Man(ManArgs),
}

/// Options of `auth0-bulk run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The job file, with options of its command before or after it, which override the
    /// file's keys: `run --fresh jobs/x.toml` and `run jobs/x.toml --fresh` are the same.
    #[arg(
        value_name = "JOB.toml",
        required = true,
        num_args = 1..,
        allow_hyphen_values = true
    )]
    pub job_and_options: Vec<String>,
}

/// Options of `auth0-bulk completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Options of `auth0-bulk man`.
#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// The command whose page to print (`export`); without it, the tool's own page.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

/// Which tenant to talk to, and how to authenticate.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// The tenant: a host such as acme.eu.auth0.com or a full URL (http:// only for loopback
    /// addresses). `sandbox` runs the job on an embedded sandbox tenant (see --sandbox-seed).
    #[arg(long, env = "AUTH0_DOMAIN", value_name = "DOMAIN")]
    #[arg(help_heading = headings::TARGET)]
    pub domain: Option<String>,

    /// Client id of a machine-to-machine application authorized for the Management API.
    #[arg(long, env = "AUTH0_CLIENT_ID", value_name = "ID")]
    #[arg(help_heading = headings::TARGET)]
    pub client_id: Option<String>,

    /// Its client secret (prefer the environment variable: command lines are visible to others).
    #[arg(
        long,
        env = "AUTH0_CLIENT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    #[arg(help_heading = headings::TARGET)]
    pub client_secret: Option<String>,

    /// A ready Management API token, instead of client credentials.
    #[arg(
        long,
        env = "AUTH0_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    #[arg(help_heading = headings::TARGET)]
    pub token: Option<String>,
}

/// The embedded sandbox tenant of `--domain sandbox`: what it starts with. Apart from
/// [`TargetArgs`] so that `--help` shows them under Rehearsal, last.
#[derive(Debug, Clone, Args)]
pub struct EmbeddedArgs {
    /// With --domain sandbox: seed the embedded tenant from this NDJSON file (repeatable).
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = headings::REHEARSAL)]
    pub sandbox_seed: Vec<PathBuf>,

    /// With --domain sandbox: also generate N synthetic users.
    #[arg(long, value_name = "N", default_value_t = 0)]
    #[arg(help_heading = headings::REHEARSAL)]
    pub sandbox_generate: usize,
}

/// How fast to go.
#[derive(Debug, Clone, Args)]
pub struct PaceArgs {
    /// Requests per second: `auto` learns the tenant's limit from its x-ratelimit-* headers,
    /// for each endpoint group that has a bucket of its own (users read, users write); a number
    /// is one budget of N/s for the whole run. All workers share a budget; a 429 pauses them.
    #[arg(long, default_value = "auto", value_name = "auto|N", value_parser = values::parse_rate)]
    #[arg(help_heading = headings::RATE)]
    pub rate: Rate,

    /// Work in flight at once (import records, export pages). Default: as much as the
    /// tenant's limit needs at its measured round trip, up to 64.
    #[arg(long, value_name = "N")]
    #[arg(help_heading = headings::RATE)]
    pub concurrency: Option<usize>,
}

/// How `import --engine job` sends its creates.
#[derive(Debug, Clone, Args)]
pub struct JobArgs {
    /// How creates reach the tenant. `api`: one request per user (lookups, creates, patches).
    /// `job`: creates go through Auth0's bulk-import jobs, the only way to bring password
    /// hashes (`password_hash`, `custom_password_hash`), and far faster than the users write
    /// limit. In create mode nothing is looked up (the job reports users that exist); in upsert
    /// mode each user is looked up and patched one at a time, and only missing ones go to jobs;
    /// update mode never creates, so it goes one user at a time either way. Jobs need the
    /// scopes read:connections, create:users and read:users (and update:users to upsert); users
    /// without a hash are created without a password (`--passwords random`).
    #[arg(long, value_enum, default_value_t = EngineFlag::Api)]
    #[arg(help_heading = headings::IMPORT)]
    pub engine: EngineFlag,

    /// The largest users file of one import job, in bytes (Auth0 takes at most 512000).
    #[arg(long, value_name = "BYTES", default_value_t = 512_000,
          value_parser = clap::value_parser!(u64).range(1024..=512_000))]
    #[arg(help_heading = headings::IMPORT)]
    pub job_file_bytes: u64,

    /// Import jobs kept going at once (Auth0 runs at most 2 per tenant).
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(1..=2))]
    #[arg(help_heading = headings::IMPORT)]
    pub jobs: u64,
}

/// Where the run state lives.
#[derive(Debug, Clone, Args)]
pub struct RunStateArgs {
    /// The run state directory (checkpoint or ledger, lock). Default: OUTPUT.state (export),
    /// INPUT.state (import) or FILE.state (delete --users) beside the file.
    #[arg(long, value_name = "DIR")]
    #[arg(help_heading = headings::STATE)]
    pub state: Option<PathBuf>,

    /// Ignore a saved checkpoint and start over.
    #[arg(long)]
    #[arg(help_heading = headings::STATE)]
    pub fresh: bool,
}

/// How the run reports: on stderr, as a JSON summary, as a report file.
#[derive(Debug, Clone, Args)]
pub struct SummaryArgs {
    /// Nothing on stderr but errors: no progress, notices, warnings or summary lines (`--json`
    /// still prints its summary).
    #[arg(long, short)]
    #[arg(help_heading = headings::OUTPUT)]
    pub quiet: bool,

    /// Print the closing summary as one JSON object on stdout (on stderr when the data goes
    /// to stdout).
    #[arg(long)]
    #[arg(help_heading = headings::OUTPUT)]
    pub json: bool,

    /// Write a report of the run when it ends (also when it fails or is interrupted): FILE.html
    /// is one self-contained page (what ran, the summary, rejects by code, requests and 429s
    /// per second, windows walked), FILE.json the same data for machines. Repeatable: one of
    /// each.
    #[arg(long, value_name = "FILE.html|FILE.json")]
    #[arg(help_heading = headings::OUTPUT)]
    pub report: Vec<PathBuf>,
}

/// Options of `auth0-bulk undo`.
#[derive(Debug, Clone, Args)]
pub struct UndoArgs {
    /// The run state directory of the import or delete to undo (its --state; by default
    /// INPUT.state or FILE.state beside its input).
    #[arg(value_name = "STATE")]
    pub state: PathBuf,

    #[command(flatten)]
    pub target: TargetArgs,

    #[command(flatten)]
    pub summary: SummaryArgs,

    /// Undo of a delete: write a password-change ticket for each user created again to FILE
    /// (NDJSON, as `import --tickets`; valid for 5 days). Needs create:user_tickets.
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = headings::OUTPUT)]
    pub tickets: Option<PathBuf>,

    #[command(flatten)]
    pub pace: PaceArgs,

    /// Send no write: print what each user would get back (path old → new) and the totals.
    #[arg(long)]
    #[arg(help_heading = headings::REHEARSAL)]
    pub dry_run: bool,

    /// With --dry-run: also write the plan as NDJSON to FILE (the shape of `import --plan`):
    /// the restores, then the users the import created as "would_delete" lines (as `delete
    /// --plan`, their "line" the place in the import's ledger).
    #[arg(long, value_name = "FILE", requires = "dry_run")]
    #[arg(help_heading = headings::REHEARSAL)]
    pub plan: Option<PathBuf>,

    #[command(flatten)]
    pub embedded: EmbeddedArgs,
}

/// How long a password-change ticket stays valid unless `--ticket-ttl` says (5 days).
pub const TICKET_TTL: u64 = 432_000;

/// Options of `auth0-bulk import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// The records: a file (`.gz` is read transparently) or `-` for stdin.
    #[arg(long, short, value_name = "PATH")]
    #[arg(help_heading = headings::SELECTION)]
    pub input: PathBuf,

    /// Input format: `auto` (from the name, else the first byte), `ndjson`, `csv`, or `json`
    /// (a JSON array, the format of Auth0's bulk-import files).
    #[arg(long, value_enum, default_value_t = InputFormatFlag::Auto)]
    #[arg(help_heading = headings::SELECTION)]
    pub format: InputFormatFlag,

    /// How a record finds its user: `auto` by its `user_id` when it has one, else by its email;
    /// `user_id` or `email` (within the record's connection) for every record.
    #[arg(long = "match", value_enum, default_value_t = MatchFlag::Auto, value_name = "KEY")]
    #[arg(help_heading = headings::SELECTION)]
    pub match_by: MatchFlag,

    /// Remove the leading ' that `export --csv-escape-formulas` put before formula-like cells.
    #[arg(long)]
    #[arg(help_heading = headings::SELECTION)]
    pub csv_escape_formulas: bool,

    /// Where rejected records go (NDJSON: the record plus `_error`). Default: INPUT.rejects.ndjson
    /// beside the input.
    #[arg(long, value_name = "PATH")]
    #[arg(help_heading = headings::OUTPUT)]
    pub rejects: Option<PathBuf>,

    #[command(flatten)]
    pub summary: SummaryArgs,

    #[command(flatten)]
    pub pace: PaceArgs,

    #[command(flatten)]
    pub run: RunStateArgs,

    /// `create` adds new users and never touches existing ones (they are skipped); `update`
    /// changes existing users only (unknown ones are rejected); `upsert` does both.
    #[arg(long, value_enum, default_value_t = ModeFlag::Create)]
    #[arg(help_heading = headings::IMPORT)]
    pub mode: ModeFlag,

    /// The connection for creates, unless a record names one (`connection`, or
    /// `identities[0].connection` in an export).
    #[arg(long, value_name = "NAME")]
    #[arg(help_heading = headings::IMPORT)]
    pub connection: Option<String>,

    /// `random`: give each created user a strong random password that meets the connection's
    /// policy (never logged or stored; users set their own through a password reset).
    #[arg(
        long,
        value_enum,
        value_name = "random",
        conflicts_with = "password_field"
    )]
    #[arg(help_heading = headings::IMPORT)]
    pub passwords: Option<PasswordsFlag>,

    /// Take each created user's password from this input field.
    #[arg(long, value_name = "NAME")]
    #[arg(help_heading = headings::IMPORT)]
    pub password_field: Option<String>,

    /// Once every record is done, give each created user without a password anyone knows
    /// (`--passwords random`, or no hash through `--engine job`) a password-change ticket,
    /// written to FILE (0600) as `{"user_id", "email", "ticket"}` lines for your own mailer.
    /// Once per user across crashes; ticket URLs are secrets and are never logged.
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = headings::IMPORT)]
    pub tickets: Option<PathBuf>,

    /// How long each ticket stays valid, in seconds.
    #[arg(long, value_name = "SECS", requires = "tickets", default_value_t = TICKET_TTL,
          value_parser = clap::value_parser!(u64).range(1..))]
    #[arg(help_heading = headings::IMPORT)]
    pub ticket_ttl: u64,

    /// Password hashes to create the users with, apart from the records: NDJSON, one
    /// {"user_id": ...} or {"email": ...} a line with the user's `custom_password_hash` (or
    /// bcrypt `password_hash`). Merged into the record with that user_id (`auth0|x` and `x` are
    /// one user) or email (in any case). Checked and indexed on disk before anything is sent;
    /// a bad line stops the run (exit 2). Needs --engine job, in create or upsert mode: a hash
    /// is taken only when the job creates the user.
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = headings::IMPORT)]
    pub password_hashes: Option<PathBuf>,

    /// `merge`: Auth0's PATCH (top-level keys merged, nested objects replaced); `deep`: nested
    /// objects merged too; `replace`: each metadata object the record carries becomes exactly
    /// the record's (keys it lacks are removed).
    #[arg(long, value_enum, default_value_t = MetadataFlag::Merge)]
    #[arg(help_heading = headings::IMPORT)]
    pub metadata: MetadataFlag,

    /// What a record's `roles`, `organizations` (with the member's roles) and `permissions`
    /// (direct ones) do, as `export --include` writes them: `merge` adds what the user lacks;
    /// `replace` also takes away what the record does not list. A key the record lacks leaves
    /// that kind alone. Roles and organizations are matched by name; the user's current ones
    /// are read first, and only the difference is written.
    #[arg(long, value_enum, default_value_t = AuthzFlag::Merge)]
    #[arg(help_heading = headings::IMPORT)]
    pub authz: AuthzFlag,

    /// Create the roles and organizations records name that the tenant lacks (`roles`,
    /// `organizations`, or both, comma-separated), once each. Without it such a record is
    /// rejected (`unknown_role`, `unknown_organization`) before its user is touched.
    #[arg(long, value_name = "LIST")]
    #[arg(help_heading = headings::IMPORT)]
    pub create_missing: Option<CreateMissing>,

    #[command(flatten)]
    pub jobs: JobArgs,

    /// Send no write: print what each record would do, in input order (create, with email and
    /// connection; update, with each changed field and metadata path old → new; unchanged;
    /// reject with the reason) and the totals.
    #[arg(long)]
    #[arg(help_heading = headings::REHEARSAL)]
    pub dry_run: bool,

    /// With --dry-run: also write the plan as NDJSON to FILE, one line per record in input
    /// order: {"line", "action" (would_create, would_update, unchanged, skipped, rejected),
    /// "user_id"}; a create adds "email" and "connection"; an update adds "changes":
    /// [{"path": "app_metadata.plan", "old": "free", "new": "pro"}, ...] ("old" left out when
    /// the path was absent; a deletion has "new": null and "deleted": true; a password shows
    /// only "changed": true; roles and organizations a "change" such as "+admin -viewer"); a
    /// skip or rejection adds "reason": {"code", "message"}.
    #[arg(long, value_name = "FILE", requires = "dry_run")]
    #[arg(help_heading = headings::REHEARSAL)]
    pub plan: Option<PathBuf>,

    #[command(flatten)]
    pub embedded: EmbeddedArgs,
}

/// Options of `auth0-bulk delete`.
#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("selection").args(["users", "query"]).required(true))]
pub struct DeleteArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// The users to delete: a file with one user_id or email per line, as `export --users`
    /// reads it (blank lines and # comments skipped). An email that several users share is
    /// rejected: list their user_ids instead.
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = headings::SELECTION)]
    pub users: Option<PathBuf>,

    /// Delete every user matching this query (Auth0 search v3 / Lucene syntax), past the
    /// 1,000-result cap: the matches are first collected into STATE/matches.ndjson by an
    /// export's walk, then deleted from that list, so deleting never disturbs the paging.
    /// Needs --state (but for a --dry-run).
    #[arg(long, value_name = "Q")]
    #[arg(help_heading = headings::SELECTION)]
    pub query: Option<String>,

    #[command(flatten)]
    pub summary: SummaryArgs,

    #[command(flatten)]
    pub pace: PaceArgs,

    #[command(flatten)]
    pub run: RunStateArgs,

    /// Look every user up and log who would be deleted (user_id, email, connection); delete
    /// nothing, write no state and no before-images.
    #[arg(long)]
    #[arg(help_heading = headings::REHEARSAL)]
    pub dry_run: bool,

    /// Really delete. Required unless --dry-run: Auth0 cannot undo a deletion (the
    /// before-images can bring the users back, without their passwords).
    #[arg(long)]
    #[arg(help_heading = headings::REHEARSAL)]
    pub yes: bool,

    /// With --dry-run: also write the plan as NDJSON to FILE, one line per listed user in list
    /// order, in the shape of `import --plan`: {"line", "action": "would_delete", "user_id",
    /// "email", "connection"}; a skip or rejection has "action" "skipped" or "rejected" and
    /// "reason": {"code", "message"}.
    #[arg(long, value_name = "FILE", requires = "dry_run")]
    #[arg(help_heading = headings::REHEARSAL)]
    pub plan: Option<PathBuf>,

    #[command(flatten)]
    pub embedded: EmbeddedArgs,
}

/// Options of `auth0-bulk export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Only users matching this query (Auth0 search v3 / Lucene syntax).
    #[arg(long, value_name = "Q")]
    #[arg(help_heading = headings::SELECTION)]
    pub query: Option<String>,

    /// Only users with an identity in this connection.
    #[arg(long, value_name = "NAME")]
    #[arg(help_heading = headings::SELECTION)]
    pub connection: Option<String>,

    /// Only these users: a file with one user_id or email per line (fetched by id or email,
    /// which Auth0 answers immediately consistent).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["query", "connection", "since"])]
    #[arg(help_heading = headings::SELECTION)]
    pub users: Option<PathBuf>,

    /// Only users updated at or after TIME (2024-01-31 or an ISO timestamp); `last`: since the
    /// last completed run with the same state (less --index-lag), for nightly incremental runs.
    #[arg(long, value_name = "TIME|last", value_parser = values::parse_since)]
    #[arg(help_heading = headings::SELECTION)]
    pub since: Option<Since>,

    /// With --since last: seconds to reach back before the previous run's start, so a change
    /// the search index had not yet seen then falls into this run.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    #[arg(help_heading = headings::SELECTION)]
    pub index_lag: u64,

    /// How users are read. `api`: pages of GET /api/v2/users in created_at windows, every
    /// selection (--query, --since, --users). `job`: one Auth0 bulk-export job of every user
    /// (or one --connection's), for full exports of large tenants: one job and one download
    /// instead of thousands of list pages. Users changed while the job ran are read again
    /// through the API, so the output holds the same users as an `api` export, in another
    /// order. The job has no query or updated_at filter: no --query, --since or --users. It
    /// needs read:users (and read:connections with --connection).
    #[arg(long, value_enum, default_value_t = EngineFlag::Api)]
    #[arg(help_heading = headings::SELECTION)]
    pub engine: EngineFlag,

    /// Where to write: a file (`.gz` is gzipped), or `-` for stdout. `{date}` and `{datetime}`
    /// are filled in with the run's start in UTC (users-{date}.ndjson.gz), so nightly runs keep
    /// one file each. An existing file is replaced only if this job's last run wrote it.
    #[arg(long, short, value_name = "PATH")]
    #[arg(help_heading = headings::OUTPUT)]
    pub output: PathBuf,

    /// Replace an existing --output file that no run of this job wrote.
    #[arg(long)]
    #[arg(help_heading = headings::OUTPUT)]
    pub overwrite: bool,

    /// Output format; default from the extension (`.csv`, `.csv.gz`), else ndjson. It must fit
    /// the output's extension when it has one.
    #[arg(long, value_enum)]
    #[arg(help_heading = headings::OUTPUT)]
    pub format: Option<OutputFormat>,

    /// The gzip level of a `.gz` output: 1 (fastest, the default) to 9 (smallest). Level 1
    /// writes users' JSON at about 22% of its size; level 6 at about 14%, for four times the CPU.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=9), value_name = "1-9")]
    #[arg(help_heading = headings::OUTPUT)]
    pub gzip_level: Option<u32>,

    /// CSV metadata columns: `json` (each metadata object as one JSON cell, lossless) or
    /// `flatten` (one column per leaf, `user_metadata.hobby`, cells keep their JSON type).
    #[arg(long, value_enum, default_value_t = CsvMetadata::Json)]
    #[arg(help_heading = headings::OUTPUT)]
    pub csv_metadata: CsvMetadata,

    /// Prefix CSV cells that start with = + - @ (or ') with a ' against CSV injection, as
    /// Auth0's own exports do; `import --csv-escape-formulas` undoes it.
    #[arg(long)]
    #[arg(help_heading = headings::OUTPUT)]
    pub csv_escape_formulas: bool,

    /// Add each user's access, by name (ids differ between tenants): any of `roles`,
    /// `organizations` (each with the member's roles in it) and `permissions` (direct ones),
    /// comma-separated. Roles and organizations are read per role and per organization before
    /// the users, 100 members a request: about roles + organizations + assignments/100
    /// requests, whatever the number of users. Direct permissions can only be read one user at
    /// a time: one more request per user, which at 10 requests/s is over a day for a million
    /// users. In CSV the lists are JSON in the `extra` column (or their own columns when named
    /// in --fields).
    #[arg(long, value_name = "LIST")]
    #[arg(help_heading = headings::OUTPUT)]
    pub include: Option<crate::export::authz::Include>,

    /// Only these fields, comma-separated: root fields Auth0 returns, or paths in metadata
    /// (user_id,email,app_metadata.plan). A path stays nested in NDJSON and is one CSV column.
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    #[arg(help_heading = headings::OUTPUT)]
    pub fields: Vec<String>,

    /// Leave these fields out, comma-separated: root fields or metadata paths.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "A,B",
        conflicts_with = "fields"
    )]
    #[arg(help_heading = headings::OUTPUT)]
    pub exclude_fields: Vec<String>,

    /// Rename a root field on output, e.g. app_metadata=metadata (repeatable).
    #[arg(long, value_name = "FROM=TO", value_parser = values::parse_rename)]
    #[arg(help_heading = headings::OUTPUT)]
    pub rename: Vec<(String, String)>,

    #[command(flatten)]
    pub summary: SummaryArgs,

    #[command(flatten)]
    pub pace: PaceArgs,

    #[command(flatten)]
    pub run: RunStateArgs,

    #[command(flatten)]
    pub embedded: EmbeddedArgs,
}

/// Options of `auth0-bulk sandbox`.
#[cfg(feature = "sandbox")]
#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("limit").args(["rate", "rate_group"]).multiple(true))]
pub struct SandboxArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Load users from an NDJSON file as the API returns them (repeatable).
    #[arg(long, value_name = "FILE")]
    pub seed: Vec<PathBuf>,

    /// Generate N deterministic synthetic users (with the real world's created_at clusters).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub generate: usize,

    /// Seed of the generated users.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub gen_seed: u64,

    /// Rate limit in requests per second (a token bucket like Auth0's). When not given, a
    /// bucket of 10,000 at 10,000/s that no client meets; its x-ratelimit-* headers are sent.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,

    /// Bucket size of the rate limit (default: the rate, rounded up).
    #[arg(long, value_name = "B", requires = "rate")]
    pub burst: Option<u32>,

    /// Give an endpoint group its own bucket, as Auth0 does (repeatable): its requests take
    /// tokens from it instead of the --rate bucket, its responses carry that bucket's
    /// x-ratelimit-* headers, and its 429 names the group. Groups: users-read (GET users,
    /// users/{id}, users-by-email), users-write (POST/PATCH/DELETE users), other (the rest of
    /// /api/v2). E.g. Auth0 Essentials: --rate-group users-read=8.33/40 --rate-group
    /// users-write=3.33/20. Without /BURST the bucket holds one second of the rate.
    #[arg(long, value_name = "GROUP=RATE/BURST", value_parser = parse_group_limit)]
    pub rate_group: Vec<GroupLimit>,

    /// Share of API requests (0..1) that fail: 500/502/503, a dropped connection or a
    /// truncated body. Dropped and truncated requests were applied before they failed.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub fault_rate: f64,

    /// Faults come in bursts: each fails N API requests in a row with the same fault (with
    /// --fault-rate P, a request outside a burst starts one with chance P).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub fault_burst: u32,

    /// Seed of the fault sequence (faults, bursts, latency spikes), to replay a faulty run.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub fault_seed: u64,

    /// Delay added to every API request, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency: u64,

    /// Share of API requests (0..1) held --latency-spike milliseconds longer.
    #[arg(
        long,
        value_name = "P",
        default_value_t = 0.0,
        requires = "latency_spike"
    )]
    pub latency_spike_rate: f64,

    /// The extra delay of a latency spike, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub latency_spike: Option<u64>,

    /// 429 storms: every SECS seconds (from the start), another client empties the rate-limit
    /// buckets for --storm-for seconds and every API request gets a 429. Needs --rate or
    /// --rate-group.
    #[arg(long, value_name = "SECS", requires = "limit")]
    pub storm_every: Option<f64>,

    /// How long each 429 storm lasts, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub storm_for: f64,

    /// Writes reach list/search results only after this many milliseconds (reads by id and
    /// by email stay immediate, as in Auth0).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub search_lag: u64,

    /// Lifetime of access tokens in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 86_400)]
    pub token_ttl: u64,

    /// Also send Retry-After on 429 (Auth0 does not document it).
    #[arg(long)]
    pub retry_after: bool,

    /// Users per second each bulk-import job (POST /api/v2/jobs/users-imports) processes.
    /// The default is about what Auth0 users report: 400k users an hour with 2 jobs.
    #[arg(long, value_name = "USERS/S", default_value_t = crate::sandbox::DEFAULT_JOB_RATE)]
    pub job_rate: f64,

    /// A bulk-import job still running after this many seconds fails, as Auth0's do after 2 h.
    #[arg(long, value_name = "SECS", default_value_t = 7_200)]
    pub job_timeout: u64,

    /// Jobs are forgotten (then 404) this many seconds after they were created, as Auth0
    /// purges job data after 24 h.
    #[arg(long, value_name = "SECS", default_value_t = 86_400)]
    pub job_purge_after: u64,

    /// How long the link to a finished export job's file works, in seconds (Auth0's: 60).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub export_link_ttl: u64,

    /// The scopes every access token carries, space-separated (default: all of them: the
    /// users scopes read:users create:users update:users update:users_app_metadata
    /// delete:users, read:connections, create:user_tickets, and those of roles, resource
    /// servers and organizations, e.g. read:roles create:role_members read:organizations
    /// read:organization_member_roles). An endpoint answers 403 insufficient_scope when none
    /// of the scopes it accepts is there.
    #[arg(long, value_name = "\"SCOPE ...\"")]
    pub scopes: Option<String>,

    /// Write every user as NDJSON to FILE on exit.
    #[arg(long, value_name = "FILE")]
    pub dump: Option<PathBuf>,

    /// Start, talk to the tenant as a client would (token, list, search, lookup), print what it
    /// answered on stderr, and exit.
    #[arg(long)]
    pub self_check: bool,
}

#[cfg(feature = "sandbox")]
impl SandboxArgs {
    /// The library options these flags describe.
    pub fn options(&self) -> SandboxOptions {
        SandboxOptions {
            listen: self.listen,
            seed: self.seed.clone(),
            generate: self.generate,
            gen_seed: self.gen_seed,
            rate: self.rate,
            burst: self.burst,
            rate_groups: self.rate_group.clone(),
            fault_rate: self.fault_rate,
            fault_burst: self.fault_burst,
            fault_seed: self.fault_seed,
            latency: Duration::from_millis(self.latency),
            latency_spike_rate: self.latency_spike_rate,
            latency_spike: Duration::from_millis(self.latency_spike.unwrap_or(0)),
            storm_every: seconds(self.storm_every.unwrap_or(0.0)),
            storm_for: seconds(self.storm_for),
            search_lag: Duration::from_millis(self.search_lag),
            token_ttl: Duration::from_secs(self.token_ttl),
            retry_after: self.retry_after,
            client_id: None,
            client_secret: None,
            // A long-running process keeps counters, not an ever-growing log.
            request_log: false,
            scopes: self
                .scopes
                .as_ref()
                .map(|s| s.split_whitespace().map(str::to_string).collect()),
            job_rate: self.job_rate,
            job_timeout: Duration::from_secs(self.job_timeout),
            job_purge_after: Duration::from_secs(self.job_purge_after),
            hold_jobs: false,
            export_link_ttl: Duration::from_secs(self.export_link_ttl),
        }
    }
}

/// `--rate-group GROUP=RATE/BURST`; the message names the valid groups.
#[cfg(feature = "sandbox")]
fn parse_group_limit(raw: &str) -> Result<GroupLimit, String> {
    raw.parse()
}

/// Seconds from the command line; what is not a finite, non-negative number becomes zero
/// (refused by the sandbox's own checks where zero is not allowed).
#[cfg(feature = "sandbox")]
fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn flag_values_keep_their_documented_spelling() {
        use clap::Parser;
        let cli = super::Cli::try_parse_from([
            "auth0-bulk",
            "import",
            "--input",
            "users.csv",
            "--match",
            "user_id",
            "--mode",
            "upsert",
            "--passwords",
            "random",
        ])
        .expect("parses");
        let super::Command::Import(args) = cli.command else {
            panic!("an import")
        };
        assert_eq!(args.match_by, super::MatchFlag::UserId);
        assert_eq!(args.mode, super::ModeFlag::Upsert);
        assert_eq!(args.passwords, Some(super::PasswordsFlag::Random));
        assert!(
            super::Cli::try_parse_from(["auth0-bulk", "import", "-i", "u", "--match", "user-id"])
                .is_err()
        );
    }
}
