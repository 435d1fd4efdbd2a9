//! How much work a run keeps in flight: enough for the tenant's limit at its round trip.
//!
//! By Little's law a budget of R requests/s at a round trip of L seconds needs about R × L
//! requests in flight; fewer and the run is bound by latency, not by the limit. Every unit of
//! work that makes requests one after another (an import record, an export window's page)
//! holds one [`WorkerPermit`] while it runs, so the work in flight follows [`Workers::goal`].
//!
//! The goal is [`goal_for`] the budgets the client has learnt ([`Load`]: one per throttle, a
//! learnt rate and its smoothed round trip): Σ rate × round trip × [`SAFETY`] + 1, clamped to
//! [1, [`CEILING`]]. The client hands the loads over after every answer ([`Workers::size`]), so
//! the goal grows as soon as the first answers tell the rate (an Auto throttle bounds it from
//! `x-ratelimit-limit` and `-reset` at the first answer) and follows later changes both ways.
//! Until then it is [`INITIAL`]. `--concurrency N` fixes the goal at N.
//!
//! A learnt rate is a lower bound of the server's, learnt from what the run spent: while the
//! work in flight is too little to spend the budget, the rate learnt is what it spent, and the
//! goal sized from it stays too low. So while every learning budget's bucket is at least half
//! full ([`Load::spare`]), every answer adds one to the goal (TCP's slow start: the work in flight
//! about doubles each round trip) until the tokens run low; the rate learnt as they do then
//! sizes the goal.
//!
//! Why the smoothed round trip and not the floor: a unit holds its permit for a whole round
//! trip whatever the shortest one was, so the mean is what Little's law wants. Why a safety
//! factor and the + 1: a unit also spends time between requests (the ledger, the next record's
//! turn), and a throttle that waits a little for a token should not idle the budget.
//!
//! Shrinking while permits are held: the slots freed at once are retired, and as many held
//! permits as the goal still owes are retired when they come back, so no new permit is handed
//! out until fewer than the goal are held. tokio's semaphore keeps the waiters in FIFO order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The most work in flight, whatever the rate and round trip say.
pub const CEILING: usize = 64;
/// The goal before anything is learnt.
pub const INITIAL: usize = 4;
/// Work in flight beyond what rate × round trip asks for (see the module docs).
pub const SAFETY: f64 = 1.25;

/// One budget the client has learnt: a throttle's rate and the round trip its requests take.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// What the budget covers (an endpoint group, or `all`).
    pub name: String,
    /// Requests per second the budget allows.
    pub rate: f64,
    /// The smoothed round trip of its requests.
    pub rtt: Duration,
    /// The server's bucket is at least half full: the budget is not spent, so the rate learnt
    /// (a lower bound, from what was spent) may be far below the server's.
    pub spare: bool,
}

/// What the goal is now, and why (for logs and the summary).
#[derive(Debug, Clone, PartialEq)]
pub struct Sizing {
    pub goal: usize,
    /// `--concurrency N`: the goal is N whatever is learnt.
    pub fixed: bool,
    /// The loads the goal was sized for (empty until one is learnt, or when fixed).
    pub loads: Vec<Load>,
}

/// The goal for these loads: Σ rate × round trip × [`SAFETY`] + 1 in [1, [`CEILING`]], or
/// [`INITIAL`] when nothing is learnt yet. (Before [`Workers::size`] adds its probing.)
pub fn goal_for(loads: &[Load]) -> usize {
    let in_flight: f64 = loads
        .iter()
        .filter(|load| load.rate.is_finite() && load.rate > 0.0)
        .map(|load| load.rate * load.rtt.as_secs_f64())
        .sum();
    if in_flight <= 0.0 {
        return INITIAL;
    }
    let goal = (in_flight * SAFETY + 1.0).round();
    (goal.min(CEILING as f64) as usize).clamp(1, CEILING)
}

/// The shared pool of worker slots (one per run; cheap to call from many tasks).
#[derive(Debug)]
pub struct Workers {
    fixed: Option<usize>,
    slots: Arc<Semaphore>,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    goal: usize,
    /// Held permits to retire when they come back (the goal shrank below what is held).
    owed: usize,
    loads: Vec<Load>,
    /// The goal last logged.
    logged: usize,
}

/// One unit of work in flight; dropping it frees the slot (or retires it, after a shrink).
#[derive(Debug)]
pub struct WorkerPermit {
    permit: Option<OwnedSemaphorePermit>,
    inner: Arc<Mutex<Inner>>,
}

impl Drop for WorkerPermit {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        // Under the lock, so a resize sees either the slot free or the debt paid.
        let mut inner = lock(&self.inner);
        if inner.owed > 0 {
            inner.owed -= 1;
            permit.forget();
        } else {
            drop(permit);
        }
    }
}

impl Workers {
    /// `fixed`: `--concurrency N`, or `None` to size by rate and round trip.
    pub fn new(fixed: Option<usize>) -> Workers {
        let fixed = fixed.map(|n| n.clamp(1, CEILING));
        let goal = fixed.unwrap_or(INITIAL);
        Workers {
            fixed,
            slots: Arc::new(Semaphore::new(goal)),
            inner: Arc::new(Mutex::new(Inner {
                goal,
                owed: 0,
                loads: Vec::new(),
                logged: goal,
            })),
        }
    }

    /// How many units of work may be in flight now.
    pub fn goal(&self) -> usize {
        lock(&self.inner).goal
    }

    /// The goal and what it was sized for.
    pub fn sizing(&self) -> Sizing {
        let inner = lock(&self.inner);
        Sizing {
            goal: inner.goal,
            fixed: self.fixed.is_some(),
            loads: inner.loads.clone(),
        }
    }

    /// Waits for a free slot.
    pub async fn acquire(&self) -> WorkerPermit {
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .expect("the worker semaphore is never closed");
        WorkerPermit {
            permit: Some(permit),
            inner: Arc::clone(&self.inner),
        }
    }

    /// Sizes the goal for what the client has learnt (ignored under `--concurrency`).
    pub fn size(&self, loads: Vec<Load>) {
        if self.fixed.is_some() {
            return;
        }
        let mut inner = lock(&self.inner);
        let before = inner.goal;
        let mut goal = goal_for(&loads);
        if !loads.is_empty() && loads.iter().all(|load| load.spare) {
            // Probing: one more for each answer that shows the buckets unspent (TCP's slow
            // start: about twice the work per round trip), until the server's tokens run low
            // and the rate learnt while they do sizes the goal again. Not while one budget is
            // spent: the work then waits for that one, and more of it would only wait too.
            goal = goal.max((before + 1).min(CEILING));
        }
        inner.loads = loads;
        if goal == before {
            return;
        }
        self.resize(&mut inner, goal);
        // Logged when it moved by a fifth (at least 2) since last logged: probing moves it by
        // one an answer.
        if goal.abs_diff(inner.logged) >= (inner.logged / 5).max(2) {
            inner.logged = goal;
            tracing::debug!(
                goal,
                loads = ?inner.loads,
                "Work in flight resized for the learnt rate and round trip."
            );
        }
    }

    /// Moves the goal to `goal`, growing the slots or retiring them (see the module docs).
    fn resize(&self, inner: &mut Inner, goal: usize) {
        if goal > inner.goal {
            let grow = goal - inner.goal;
            // Permits still owed come back as they are: cancel that debt first.
            let forgiven = grow.min(inner.owed);
            inner.owed -= forgiven;
            self.slots.add_permits(grow - forgiven);
        } else {
            let shrink = inner.goal - goal;
            let retired = self.slots.forget_permits(shrink);
            inner.owed += shrink - retired;
        }
        inner.goal = goal;
    }
}

fn lock(inner: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    // Every update is a few stores: the state is consistent even if a holder panicked.
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn load(rate: f64, rtt_ms: u64) -> Load {
        Load {
            name: "all".into(),
            rate,
            rtt: Duration::from_millis(rtt_ms),
            spare: false,
        }
    }

    #[test]
    fn the_goal_follows_rate_times_round_trip() {
        assert_eq!(goal_for(&[]), INITIAL, "nothing learnt yet");
        assert_eq!(goal_for(&[load(50.0, 200)]), 14); // 10 × 1.25 + 1
        assert_eq!(goal_for(&[load(16.0, 500)]), 11); // 8 × 1.25 + 1
        assert_eq!(goal_for(&[load(16.0, 200)]), 5);
        assert_eq!(goal_for(&[load(2.0, 200)]), 2);
        assert_eq!(goal_for(&[load(2.0, 10)]), 1);
        assert_eq!(goal_for(&[load(1000.0, 500)]), CEILING);
        // Separate budgets add up: reads 8/s and writes 3/s at 500 ms.
        assert_eq!(goal_for(&[load(8.0, 500), load(3.0, 500)]), 8);
        assert_eq!(goal_for(&[load(f64::NAN, 500)]), INITIAL);
    }

    #[tokio::test(start_paused = true)]
    async fn the_goal_grows_and_shrinks_as_rates_are_learnt() {
        let workers = Workers::new(None);
        assert_eq!(workers.goal(), INITIAL);
        workers.size(vec![load(50.0, 200)]);
        assert_eq!(workers.goal(), 14);
        let held: Vec<_> = futures::future::join_all((0..14).map(|_| workers.acquire())).await;
        assert_eq!(held.len(), 14);
        workers.size(vec![load(2.0, 200)]);
        let sizing = workers.sizing();
        assert_eq!(sizing.goal, 2);
        assert_eq!(sizing.loads, [load(2.0, 200)]);
        assert!(!sizing.fixed);
    }

    #[test]
    fn an_unspent_bucket_grows_the_goal_one_answer_at_a_time_until_its_tokens_run_low() {
        let workers = Workers::new(None);
        let spare = Load {
            spare: true,
            ..load(10.0, 200)
        };
        workers.size(vec![spare.clone()]);
        assert_eq!(
            workers.goal(),
            5,
            "the rate learnt says 4; probing adds one"
        );
        for _ in 0..100 {
            workers.size(vec![spare.clone()]);
        }
        assert_eq!(workers.goal(), CEILING);
        workers.size(vec![load(50.0, 200)]);
        assert_eq!(
            workers.goal(),
            14,
            "the rate learnt while the tokens ran low"
        );
        let fixed = Workers::new(Some(3));
        fixed.size(vec![spare]);
        assert_eq!(fixed.goal(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn the_override_holds_whatever_is_learnt() {
        let workers = Workers::new(Some(3));
        workers.size(vec![load(50.0, 200)]);
        assert_eq!(workers.goal(), 3);
        assert!(workers.sizing().fixed);
        assert_eq!(Workers::new(Some(1000)).goal(), CEILING);
        assert_eq!(Workers::new(Some(0)).goal(), 1);
    }

    /// Runs `units` tasks that each hold a permit for 100 ms; returns the most held at once.
    async fn most_held(workers: &Arc<Workers>, units: usize) -> usize {
        let held = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..units)
            .map(|_| {
                let (workers, held, most) = (workers.clone(), held.clone(), most.clone());
                tokio::spawn(async move {
                    let _permit = workers.acquire().await;
                    let now = held.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    held.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        most.load(Ordering::SeqCst)
    }

    #[tokio::test(start_paused = true)]
    async fn no_more_permits_than_the_goal_once_it_shrank_while_they_were_held() {
        let workers = Arc::new(Workers::new(None));
        workers.size(vec![load(50.0, 200)]);
        let held: Vec<_> = futures::future::join_all((0..14).map(|_| workers.acquire())).await;
        workers.size(vec![load(16.0, 200)]); // 5
        // While 14 are still held, nobody gets one.
        let waiting = {
            let workers = workers.clone();
            tokio::spawn(async move { workers.acquire().await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished());
        // 10 come back: 4 held, below the goal of 5 at last.
        let mut held = held;
        held.truncate(4);
        let extra = waiting.await.unwrap();
        drop(extra);
        drop(held);
        assert_eq!(most_held(&workers, 40).await, 5);
        // And it grows back while the debt is being paid.
        let held: Vec<_> = futures::future::join_all((0..5).map(|_| workers.acquire())).await;
        workers.size(vec![load(2.0, 200)]); // 2: owes 3
        workers.size(vec![load(16.0, 500)]); // 11: forgives 3, adds 6
        drop(held);
        assert_eq!(most_held(&workers, 40).await, 11);
    }

    #[tokio::test(start_paused = true)]
    async fn a_grown_goal_wakes_the_waiting_units() {
        let workers = Arc::new(Workers::new(None));
        let held: Vec<_> = futures::future::join_all((0..INITIAL).map(|_| workers.acquire())).await;
        let waiting: Vec<_> = (0..6)
            .map(|_| {
                let workers = workers.clone();
                tokio::spawn(async move { workers.acquire().await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(1)).await;
        workers.size(vec![load(50.0, 200)]); // 14: room for 10 more
        for task in waiting {
            drop(task.await.unwrap());
        }
        drop(held);
    }
}
