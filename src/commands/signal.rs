//! SIGINT and SIGTERM: the first asks the run to stop cleanly, a second to stop now.
//!
//! A job command arms the [`Interrupt`] once its flags are checked: from then on the first
//! signal cancels the run's token (the stage finishes its batch, saves, and reports
//! [`RunOutcome::Interrupted`](crate::exit::RunOutcome)), and a second one resolves
//! [`Interrupt::forced`], on which `lib::run` stops waiting for the command and returns the
//! interrupted code. Nothing here ends the process.

use tokio_util::sync::CancellationToken;

/// The run's two stop requests; cheap to clone, shared by `lib::run` and the command.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    /// Cancelled on the first signal: finish the current batch and save.
    cancel: CancellationToken,
    /// Cancelled on the second signal: stop waiting.
    forced: CancellationToken,
}

impl Interrupt {
    /// Starts listening for signals; returns the token the first one cancels. Before this, a
    /// signal ends the process as it would any program (nothing has been written yet).
    pub fn arm(&self) -> CancellationToken {
        let this = self.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::warn!(
                "Interrupted: finishing the current batch and saving the checkpoint (again to quit now)."
            );
            this.cancel.cancel();
            wait_for_signal().await;
            this.forced.cancel();
        });
        self.cancel.clone()
    }

    /// Resolves on the second signal.
    pub async fn forced(&self) {
        self.forced.cancelled().await
    }
}

/// Resolves on the next SIGINT (Ctrl-C) or SIGTERM.
pub async fn wait_for_signal() {
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
