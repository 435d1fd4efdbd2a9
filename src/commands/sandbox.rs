//! `auth0-bulk sandbox`: runs the sandbox tenant as a process until SIGINT or SIGTERM.

use std::io::Write;

use anyhow::Context;

use crate::cli::SandboxArgs;
use crate::exit::{RunOutcome, UsageError};
use crate::sandbox::{Sandbox, SandboxError};
use crate::state::create_private;

pub async fn run(args: SandboxArgs) -> anyhow::Result<RunOutcome> {
    let sandbox = Sandbox::start(args.options()).await.map_err(|e| match e {
        SandboxError::Bind { .. } => anyhow::Error::new(e),
        other => anyhow::Error::new(UsageError(other.to_string())),
    })?;
    // The contract: exactly one JSON line on stdout, flushed, once listening.
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", sandbox.announcement()).context("cannot write to stdout")?;
        stdout.flush().context("cannot write to stdout")?;
    }
    let users = sandbox.user_count();
    tracing::info!(
        domain = sandbox.domain(),
        users,
        "Sandbox tenant is listening."
    );
    if args.self_check {
        self_check(&sandbox).await?;
    } else {
        super::signal::wait_for_signal().await;
    }
    tracing::info!("Sandbox tenant is stopping.");
    if let Some(path) = &args.dump {
        let mut file = create_private(path)
            .with_context(|| format!("cannot create dump file {}", path.display()))?;
        sandbox
            .write_users(&mut file)
            .with_context(|| format!("cannot write {}", path.display()))?;
        file.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
        tracing::info!(path = %path.display(), users = sandbox.user_count(), "Wrote the dump.");
    }
    sandbox.shutdown().await;
    Ok(RunOutcome::Success)
}

/// Talks to the sandbox as a client would and prints each answer.
async fn self_check(sandbox: &Sandbox) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let domain = sandbox.domain();
    let token: serde_json::Value = http
        .post(format!("{domain}/oauth/token"))
        .json(&serde_json::json!({
            "grant_type": "client_credentials",
            "client_id": sandbox.client_id(),
            "client_secret": sandbox.client_secret(),
            "audience": format!("{domain}/api/v2/"),
        }))
        .send()
        .await?
        .json()
        .await?;
    let bearer = token["access_token"]
        .as_str()
        .context("no access_token in the token reply")?;
    eprintln!(
        "POST /oauth/token -> token_type {}, expires_in {}",
        token["token_type"], token["expires_in"]
    );
    let calls = [
        "/api/v2/users?page=0&per_page=2&include_totals=true&search_engine=v3&fields=user_id,email,created_at",
        "/api/v2/users?q=app_metadata.plan%3A%22pro%22&page=0&per_page=0&include_totals=true&search_engine=v3",
        "/api/v2/users?page=10&per_page=100&search_engine=v3",
    ];
    for path in calls {
        show(&http, domain, bearer, path).await?;
    }
    if let Some(email) = sandbox
        .users()
        .iter()
        .find_map(|u| u.get("email")?.as_str().map(str::to_string))
    {
        let path = format!(
            "/api/v2/users-by-email?email={}&fields=user_id,email",
            urlencode(&email)
        );
        show(&http, domain, bearer, &path).await?;
    }
    eprintln!(
        "The sandbox tenant answers like Auth0. Run `auth0-bulk sandbox --help` for its options."
    );
    Ok(())
}

/// One GET of the self-check, printed with what the sandbox answered.
async fn show(
    http: &reqwest::Client,
    domain: &str,
    bearer: &str,
    path: &str,
) -> anyhow::Result<()> {
    let response = http
        .get(format!("{domain}{path}"))
        .bearer_auth(bearer)
        .send()
        .await?;
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await?;
    eprintln!("GET {path}\n  -> {status} {body}");
    Ok(())
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
