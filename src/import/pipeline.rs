//! The pipeline every import runs, whatever applies its records: the input read on its own
//! thread, each record prepared in input order, applied concurrently, and its outcome written.
//!
//! - **Memory stays flat.** The reader is blocking I/O: it runs on its own thread and feeds a
//!   bounded channel, so at most a few records per worker are held whatever the input's size.
//! - **Work in flight follows the budget.** Up to `buffer` records are taken in at once (64, or
//!   `--concurrency`), but a record is applied only while it holds a permit of the client's
//!   [`Workers`], whose goal follows the tenant's rate × round trip; the requests records make
//!   share the client's budgets. A record takes its permit only once its turn has come (below),
//!   so a record waiting for another never holds one, and the ledger's `started` mark of a
//!   create is written only under a permit: a crash leaves at most the goal's worth of creates
//!   for a resumed run to look up, not every record taken in.
//! - **Per-user input order.** Records for one user (the same [`Planned::key`]) are applied in
//!   input order: each waits for the one before it, while records for other users go on. A
//!   record handed to the job engine ([`Step::Handed`]) counts as done once the engine has
//!   written its outcome, so the user's next record finds the user the job made.
//! - **Stopping.** Cancellation, or a fatal error from applying or writing an outcome, stops
//!   taking new records; the ones in flight finish and are written. A record that says the
//!   input broke off is the reader's last, and ends the run once the rest are done.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::apply::Applied;
use super::outcomes::Outcomes;
use super::plan::Planned;
use super::prepare::{Prepare, Prepared};
use super::read::Record;
use super::{Apply, Step};
use crate::api::ApiError;
use crate::net::workers::Workers;

/// Why a run stopped before its input's end, if it did (cancellation aside).
#[derive(Default)]
pub(super) struct Stopped {
    /// Applying a record, or writing its outcome, failed for the whole run.
    pub fatal: Option<ApiError>,
    /// Why the input broke off, when it did (its last record says so).
    pub input_cut: Option<String>,
}

/// Runs every record through `prepare`, `applier` and `outcomes`: up to `buffer` taken in at
/// once, applied while they hold one of `workers`' permits.
pub(super) async fn run(
    records: Box<dyn Iterator<Item = Record> + Send>,
    mut prepare: Prepare<'_>,
    applier: &impl Apply,
    outcomes: &Outcomes<'_>,
    (buffer, workers): (usize, &Workers),
    cancel: &CancellationToken,
) -> Stopped {
    let buffer = buffer.max(1);
    let chains = Chains::default();
    let stopped = Mutex::new(Stopped::default());
    let (tx, rx) = tokio::sync::mpsc::channel::<Record>(buffer * 4 + 16);
    let reader = std::thread::spawn(move || {
        for record in records {
            if tx.blocking_send(record).is_err() {
                break;
            }
        }
    });
    let work = stream_from(rx)
        .take_while(|_| {
            let stop = cancel.is_cancelled() || stopped.lock().expect("stop lock").fatal.is_some();
            async move { !stop }
        })
        .enumerate()
        .map(|(index, record)| {
            // Records are keyed by their position: the same on every run, unlike lines.
            let ordinal = index as u64 + 1;
            // Decide everything that depends on input order here, synchronously, in order.
            let prepared = prepare.next(ordinal, &record);
            let turn = match &prepared {
                Prepared::Apply(planned, _) => Some(chains.join(&planned.key)),
                _ => None,
            };
            let (chains, stopped) = (&chains, &stopped);
            async move {
                let finished = match prepared {
                    Prepared::Cut(message) => {
                        // The reader's last record: nothing follows it, so nothing to stop.
                        let mut stopped = stopped.lock().expect("stop lock");
                        stopped.input_cut.get_or_insert(message);
                        return;
                    }
                    Prepared::Done(outcome) => {
                        outcomes.done_earlier(outcome);
                        return;
                    }
                    Prepared::Reject(applied, original) => {
                        outcomes.finish(ordinal, &record, &applied, original)
                    }
                    Prepared::Apply(planned, was_in_flight) => {
                        let turn = turn.expect("apply records take a turn");
                        let applying = Applying {
                            ordinal,
                            record: &record,
                            planned: &planned,
                            was_in_flight,
                        };
                        match apply_in_turn(applier, chains, workers, turn, applying).await {
                            Ok(Some(applied)) => {
                                let original = record.result.as_ref().ok().cloned();
                                outcomes.finish(
                                    ordinal,
                                    &record,
                                    &applied,
                                    original.map(Value::Object),
                                )
                            }
                            // The job engine wrote it.
                            Ok(None) => Ok(()),
                            Err(e) => Err(e),
                        }
                    }
                };
                if let Err(error) = finished {
                    stopped
                        .lock()
                        .expect("stop lock")
                        .fatal
                        .get_or_insert(error);
                }
            }
        })
        .buffer_unordered(buffer)
        .collect::<()>();
    work.await;
    drop(reader);
    stopped.into_inner().expect("stop lock")
}

/// A planned record, as [`Apply::apply`] takes it.
struct Applying<'a> {
    ordinal: u64,
    record: &'a Record,
    planned: &'a Planned,
    was_in_flight: bool,
}

/// Applies a record once the record before it for the same user is done, holding a worker
/// permit while it does (taken after its turn has come: see the module docs). A record handed
/// to the job engine lets its permit go and waits for its outcome, which the engine writes
/// (`None`), so the user's next record sees what the job did.
async fn apply_in_turn(
    applier: &impl Apply,
    chains: &Chains,
    workers: &Workers,
    turn: Turn,
    record: Applying<'_>,
) -> Result<Option<Applied>, ApiError> {
    if let Some(mut previous) = turn.previous {
        let _ = previous.wait_for(|done| *done).await;
    }
    let permit = workers.acquire().await;
    let step = applier
        .apply(
            record.ordinal,
            record.record,
            record.planned,
            record.was_in_flight,
        )
        .await;
    drop(permit);
    let result = match step {
        Ok(Step::Applied(applied)) => Ok(Some(applied)),
        // The engine stopped before the record's job ended: it says why.
        Ok(Step::Handed(written)) => written
            .await
            .map(|()| None)
            .map_err(|_| ApiError::Cancelled),
        Err(e) => Err(e),
    };
    let _ = turn.done.send(true);
    chains.leave(&record.planned.key);
    result
}

/// The last record taken for each user, so the next one can wait for it.
#[derive(Default)]
struct Chains(Mutex<HashMap<String, watch::Receiver<bool>>>);

/// A record's place in its user's chain.
struct Turn {
    /// Done when the record before it for the same user is.
    previous: Option<watch::Receiver<bool>>,
    /// Tells the record after it that this one is done.
    done: watch::Sender<bool>,
}

impl Chains {
    /// Puts a record for `key` at the end of its user's chain.
    fn join(&self, key: &str) -> Turn {
        let (done, done_rx) = watch::channel(false);
        let previous = self
            .0
            .lock()
            .expect("chain lock")
            .insert(key.to_owned(), done_rx);
        Turn { previous, done }
    }

    /// Forgets a user whose last record is done, so the map holds only users in flight.
    fn leave(&self, key: &str) {
        let mut chains = self.0.lock().expect("chain lock");
        if chains.get(key).is_some_and(|rx| *rx.borrow()) {
            chains.remove(key);
        }
    }
}

/// A `Stream` over an mpsc receiver.
pub(super) fn stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
