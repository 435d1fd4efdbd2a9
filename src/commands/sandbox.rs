//! `auth0-bulk sandbox`: runs the sandbox tenant as a process until SIGINT or SIGTERM.

use std::io::Write;

use anyhow::Context;

use crate::cli::SandboxArgs;
use crate::exit::{Exit, UsageError};
use crate::fsutil;
use crate::sandbox::{Sandbox, SandboxError};

pub async fn run(args: SandboxArgs) -> anyhow::Result<Exit> {
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
    let users = sandbox.users().len();
    tracing::info!(
        domain = sandbox.domain(),
        users,
        "Sandbox tenant is listening."
    );
    wait_for_signal().await;
    tracing::info!("Sandbox tenant is stopping.");
    if let Some(path) = &args.dump {
        let mut file = fsutil::create_private(path)
            .with_context(|| format!("cannot create dump file {}", path.display()))?;
        sandbox
            .write_users(&mut file)
            .with_context(|| format!("cannot write {}", path.display()))?;
        file.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
        tracing::info!(path = %path.display(), users = sandbox.users().len(), "Wrote the dump.");
    }
    sandbox.shutdown().await;
    Ok(Exit::Success)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
