//! What every job command shares: resolving the target (or the embedded sandbox), the pace,
//! and the closing summary.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiError, Client};
use crate::cli::{EmbeddedArgs, PaceArgs, TargetArgs};
use crate::exit::UsageError;
use crate::net::throttle::Throttle;
use crate::net::workers::{self, Workers};
use crate::state::EMBEDDED_SANDBOX;
use crate::target::{Credentials, Target, TargetError, parse_domain};

/// A resolved target, with the embedded sandbox kept alive for the run when there is one.
pub struct Resolved {
    pub target: Target,
    pub domain: String,
    /// Held only to keep the embedded tenant serving for the run.
    pub _embedded: Option<Embedded>,
}

/// Turns the target flags into a validated target. Bad configuration is a [`UsageError`]
/// (exit 2), found before any request.
pub async fn resolve_target(
    args: &TargetArgs,
    embedded_args: &EmbeddedArgs,
) -> anyhow::Result<Resolved> {
    let Some(domain) = args
        .domain
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    else {
        return Err(UsageError(
            "no tenant given: pass --domain (or set AUTH0_DOMAIN), or --domain sandbox to \
             rehearse on an embedded sandbox tenant"
                .into(),
        )
        .into());
    };
    if domain == EMBEDDED_SANDBOX {
        return embedded(embedded_args).await;
    }
    if !embedded_args.sandbox_seed.is_empty() || embedded_args.sandbox_generate > 0 {
        return Err(UsageError(
            "--sandbox-seed and --sandbox-generate need --domain sandbox".into(),
        )
        .into());
    }
    let base = parse_domain(domain).map_err(usage)?;
    let credentials = match (&args.token, &args.client_id, &args.client_secret) {
        (Some(token), _, _) if !token.is_empty() => {
            Credentials::Token(SecretString::from(token.clone()))
        }
        (_, Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
            Credentials::Client {
                client_id: id.clone(),
                client_secret: SecretString::from(secret.clone()),
            }
        }
        (_, Some(_), None) => {
            return Err(UsageError(
                "--client-id needs a secret: set AUTH0_CLIENT_SECRET (or pass --client-secret)"
                    .into(),
            )
            .into());
        }
        _ => {
            return Err(UsageError(
                "no credentials: set AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET (a machine-to-machine \
                 application authorized for the Management API), or AUTH0_TOKEN"
                    .into(),
            )
            .into());
        }
    };
    Ok(Resolved {
        domain: base.as_str().trim_end_matches('/').to_string(),
        target: Target { base, credentials },
        _embedded: None,
    })
}

/// The embedded sandbox tenant, started for this run and kept alive by the [`Resolved`].
#[cfg(feature = "sandbox")]
async fn embedded(args: &EmbeddedArgs) -> anyhow::Result<Resolved> {
    use crate::sandbox::{Sandbox, SandboxOptions};
    let options = SandboxOptions {
        seed: args.sandbox_seed.clone(),
        generate: args.sandbox_generate,
        request_log: false,
        ..Default::default()
    };
    let sandbox = Sandbox::start(options)
        .await
        .map_err(|e| UsageError(format!("cannot start the embedded sandbox: {e}")))?;
    tracing::info!(
        domain = sandbox.domain(),
        "Running on an embedded sandbox tenant."
    );
    let target = Target {
        base: parse_domain(sandbox.domain()).map_err(usage)?,
        credentials: Credentials::Client {
            client_id: sandbox.client_id().to_string(),
            client_secret: SecretString::from(sandbox.client_secret().to_string()),
        },
    };
    Ok(Resolved {
        target,
        domain: EMBEDDED_SANDBOX.into(),
        _embedded: Some(sandbox),
    })
}

/// A build without the `sandbox` feature has no tenant to embed.
#[cfg(not(feature = "sandbox"))]
async fn embedded(_: &EmbeddedArgs) -> anyhow::Result<Resolved> {
    Err(UsageError(
        "--domain sandbox: this auth0-bulk was built without the embedded sandbox (cargo \
         feature `sandbox`); point --domain at a tenant, or build with default features"
            .into(),
    )
    .into())
}

/// What keeps the embedded sandbox alive; nothing can be one in a build without it.
#[cfg(feature = "sandbox")]
pub type Embedded = crate::sandbox::Sandbox;
#[cfg(not(feature = "sandbox"))]
pub enum Embedded {}

/// A tenant that cannot be: bad usage, found before any request.
fn usage(error: TargetError) -> UsageError {
    UsageError(error.to_string())
}

/// True when the run goes to the embedded sandbox (`--domain sandbox`): a rehearsal.
pub fn is_embedded_sandbox(args: &TargetArgs) -> bool {
    args.domain.as_deref().map(str::trim) == Some(EMBEDDED_SANDBOX)
}

/// The rehearsal's own file beside a job's: `exports/users.ndjson.gz` →
/// `exports/users.sandbox.ndjson.gz`, `state/nightly` → `state/nightly.sandbox`. The marker goes
/// before the extensions, so the format is still read from the name.
pub fn rehearsal_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (stem, extensions) = match name.find('.').filter(|&i| i > 0) {
        Some(i) => name.split_at(i),
        None => (name.as_str(), ""),
    };
    path.with_file_name(format!("{stem}.{EMBEDDED_SANDBOX}{extensions}"))
}

/// Refuses, before anything is sent, a file path the run could not write: an existing
/// directory, or a path below something that is not a directory. (Missing folders are created.)
pub fn check_file_path(flag: &str, path: &Path) -> Result<(), UsageError> {
    if path.is_dir() {
        return Err(UsageError(format!(
            "{flag} {}: that is a directory; name a file",
            path.display()
        )));
    }
    check_parent(flag, path)
}

/// The same for a directory the run creates (the run state): if it exists it must be one.
pub fn check_dir_path(flag: &str, path: &Path) -> Result<(), UsageError> {
    if path.exists() && !path.is_dir() {
        return Err(UsageError(format!(
            "{flag} {}: that is a file, not a directory; name another --state or remove it",
            path.display()
        )));
    }
    check_parent(flag, path)
}

/// The nearest existing folder above `path` must be a directory.
fn check_parent(flag: &str, path: &Path) -> Result<(), UsageError> {
    let mut above = path.parent();
    while let Some(dir) = above.filter(|d| !d.as_os_str().is_empty()) {
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) => {
                return Err(UsageError(format!(
                    "{flag} {}: {} is a file, not a directory",
                    path.display(),
                    dir.display()
                )));
            }
            Err(_) => above = dir.parent(),
        }
    }
    Ok(())
}

/// The client for a run, with the shared budget.
pub fn client(
    resolved: &Resolved,
    pace: &PaceArgs,
    cancel: &CancellationToken,
) -> anyhow::Result<Client> {
    if let Some(n) = pace.concurrency
        && (n == 0 || n > workers::CEILING)
    {
        return Err(UsageError(format!(
            "--concurrency must be between 1 and {}, not {n}",
            workers::CEILING
        ))
        .into());
    }
    let throttle = Arc::new(Throttle::new(pace.rate));
    Ok(
        Client::new(resolved.target.clone(), throttle, cancel.clone())
            .with_workers(Workers::new(pace.concurrency)),
    )
}

/// Makes first contact with the tenant ([`Client::reach`]) before a run that would create its
/// state: a tenant that cannot be reached, or refuses the credentials, then ends the run with
/// exit 2 and nothing written, so the corrected command starts clean. A state that exists
/// already is read first, offline, by the run (a damaged or locked one is refused before any
/// request); such a run meets the same errors at its first request, its state as it was.
pub async fn reach(client: &Client, state: Option<&Path>) -> anyhow::Result<()> {
    if state.is_some_and(Path::exists) {
        return Ok(());
    }
    client.reach().await.map_err(api_failure)
}

/// Maps an API error that ends a run to the right exit: refused credentials, a redirect, an
/// untrusted certificate and a tenant never reached are configuration.
pub fn api_failure(error: ApiError) -> anyhow::Error {
    match error {
        ApiError::Auth(message) => UsageError(message).into(),
        // Each means --domain does not name the tenant it should; a re-run cannot help.
        e @ (ApiError::Redirect { .. }
        | ApiError::Certificate { .. }
        | ApiError::Unreachable { .. }) => UsageError(e.to_string()).into(),
        other => anyhow::Error::new(other)
            .context("the run stopped; run the same command again to resume"),
    }
}

/// The rate limits a run learnt, in words: "Rate limits: users-read: bucket 40, refills at
/// least 8.2/s; users-write: ...". `None` when no request was answered.
pub fn budgets_line(budgets: &[crate::net::pace::BudgetReport]) -> Option<String> {
    let parts: Vec<String> = budgets
        .iter()
        .map(|budget| {
            let groups = if budget.groups.len() == 3 {
                "all requests".to_string()
            } else {
                budget.groups.join("+")
            };
            match (budget.limit, budget.refill_at_least) {
                (Some(limit), Some(rate)) => {
                    format!("{groups}: bucket {limit}, refills at least {rate:.1}/s")
                }
                (Some(limit), None) => format!("{groups}: bucket {limit}"),
                (None, _) => format!("{groups}: no x-ratelimit-* headers"),
            }
        })
        .collect();
    (!parts.is_empty()).then(|| format!("Rate limits: {}.", parts.join("; ")))
}

/// What a run cost, for its summary line: "12 requests, 0 throttled, 1 retries, 3.2s" and
/// ", resumed from the ledger" when it was.
pub fn costs_text(counts: crate::api::Counts, elapsed_seconds: f64, resumed: bool) -> String {
    format!(
        "{} requests, {} throttled, {} retries, {elapsed_seconds:.1}s{}",
        indicatif::HumanCount(counts.requests),
        indicatif::HumanCount(counts.throttled),
        indicatif::HumanCount(counts.retries),
        if resumed {
            ", resumed from the ledger"
        } else {
            ""
        }
    )
}

/// Prints a summary: human lines on stderr (not with `--quiet`), and with `--json` one JSON
/// object (asked for, so printed even with `--quiet`).
pub fn print_summary<T: serde::Serialize>(
    lines: &[String],
    summary: &T,
    json: bool,
    data_on_stdout: bool,
) -> anyhow::Result<()> {
    for line in lines {
        crate::terminal::say(line);
    }
    if json {
        let text = serde_json::to_string(summary).context("cannot encode the summary")?;
        if data_on_stdout {
            eprintln!("{text}")
        } else {
            println!("{text}")
        }
    }
    Ok(())
}
