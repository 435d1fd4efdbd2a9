//! How much work a run keeps in flight: enough for the tenant's limit at its round trip.
//!
//! By Little's law a budget of R requests/s at a round trip of L seconds needs about R × L
//! requests in flight; fewer and the run is bound by latency, not by the limit. Every unit of
//! work that makes requests one after another (an import record, an export window's page)
//! holds one [`WorkerPermit`] while it runs, so the work in flight follows [`Workers::goal`].
//! `--concurrency N` fixes the goal at N.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The most work in flight, whatever the rate and round trip say.
pub const CEILING: usize = 64;
/// The goal before anything is learnt.
pub const INITIAL: usize = 4;

/// The shared pool of worker slots (one per run; cheap to call from many tasks).
#[derive(Debug)]
pub struct Workers {
    fixed: Option<usize>,
    slots: Arc<Semaphore>,
}

/// One unit of work in flight; dropping it frees the slot.
#[derive(Debug)]
pub struct WorkerPermit {
    _permit: OwnedSemaphorePermit,
}

impl Workers {
    /// `fixed`: `--concurrency N`, or `None` to size by rate and round trip.
    pub fn new(fixed: Option<usize>) -> Workers {
        let goal = fixed.unwrap_or(INITIAL).clamp(1, CEILING);
        Workers {
            fixed,
            slots: Arc::new(Semaphore::new(goal)),
        }
    }

    /// How many units of work may be in flight now.
    pub fn goal(&self) -> usize {
        self.fixed.unwrap_or(INITIAL).clamp(1, CEILING)
    }

    /// Waits for a free slot.
    pub async fn acquire(&self) -> WorkerPermit {
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .expect("the worker semaphore is never closed");
        WorkerPermit { _permit: permit }
    }
}
