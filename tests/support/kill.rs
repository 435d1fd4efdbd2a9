//! Crash tests' machinery: kill a real `auth0-bulk` process with SIGKILL at seeded points and run
//! the same command again until it finishes; and the switch to the long versions.
//!
//! A kill point is drawn from a seeded RNG, in one of two ways:
//! - **by progress**: once the run's own state (checkpoint, ledger) shows a drawn share of the
//!   job done, plus a few random milliseconds, so kills land between a checkpoint and the next
//!   write as well as right after one;
//! - **by time** (one point in three): a random moment after the start, which also lands in
//!   the start-up, the token request, the resume itself (truncating the output, reading the
//!   ledger) and the rename at the end.
//!
//! Each point takes a random share of what is left of the job, about an even share of it per
//! kill still to come, so the points spread over the whole job. The seed fixes the plan; where a
//! kill lands within a run still depends on the machine's timing, so every run prints its seed
//! and what it did.

use std::process::Command;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::child::{Ran, Running, run};

/// `AUTH0_BULK_LONG=1` runs the long versions: hundreds of kill points and bigger data.
pub fn long() -> bool {
    std::env::var("AUTH0_BULK_LONG").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `ci` in CI, `long` under `AUTH0_BULK_LONG=1`.
pub fn scaled<T>(ci: T, long: T) -> T {
    if self::long() { long } else { ci }
}

/// One kill point, as planned.
#[derive(Debug, Clone, Copy)]
pub enum Point {
    /// Once the job's progress (0..=1) reaches this share.
    Progress(f64),
    /// This long after the start.
    After(Duration),
}

/// What a kill loop did.
#[derive(Debug)]
pub struct Killed {
    /// The points, in order, with the progress seen right after each kill.
    pub points: Vec<(Point, f64)>,
    /// Kills that hit a running process (the rest found it finished).
    pub mid_run: usize,
    /// Kills after which part, not all, of the job was saved.
    pub mid_progress: usize,
    /// Every run started, the last one included.
    pub runs: usize,
    /// The run that completed; `None` when a kill came after the job had completed (its state
    /// says so), just before the process ended.
    pub last: Option<Ran>,
}

impl Killed {
    /// One line for `--nocapture` runs.
    pub fn describe(&self) -> String {
        let by_progress = self
            .points
            .iter()
            .filter(|(p, _)| matches!(p, Point::Progress(_)))
            .count();
        format!(
            "{} kill points ({} by progress, {} by time), {} mid-run, {} with part of the job \
             saved; {} runs",
            self.points.len(),
            by_progress,
            self.points.len() - by_progress,
            self.mid_run,
            self.mid_progress,
            self.runs
        )
    }
}

/// Runs `command()` again and again, killing it with SIGKILL at `kills` points drawn from
/// `seed`, then once more to its end, which must be exit 0 (a run that ends by itself before its
/// kill point also ends the loop, and must be exit 0 too; so does a kill after which the state
/// says the job is complete: running it again would be a new job).
///
/// `progress()` reads the job's progress from its state on disk: at most 0.999 until the job
/// is complete, then 1. `lasts` is how long a clean run took, to place the points by time;
/// `after_kill(progress)` checks the state a kill left behind (a consistent checkpoint, no
/// record done twice, ...).
pub fn kill_until_done(
    seed: u64,
    kills: usize,
    lasts: Duration,
    mut command: impl FnMut() -> Command,
    progress: impl Fn() -> f64,
    mut after_kill: impl FnMut(f64),
) -> Killed {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut points = Vec::with_capacity(kills);
    let (mut mid_run, mut mid_progress, mut runs) = (0, 0, 0);
    for index in 0..kills {
        let done = progress().clamp(0.0, 1.0);
        // About an even share of the rest for each kill still to come.
        let share = rng.random_range(0.0..2.0 / (kills - index + 1) as f64);
        let target = done + (1.0 - done) * share;
        // A share the job reaches only by completing (progress stops short of 1 until then)
        // is taken by time instead: a kill that waits for the end would mostly find it over.
        let point = if rng.random_ratio(1, 3) || target >= 0.999 {
            Point::After(lasts.mul_f64((1.0 - done) * share))
        } else {
            Point::Progress(target)
        };
        let settle = Duration::from_micros(rng.random_range(0..5_000));
        let mut running = Running::spawn(&mut command());
        runs += 1;
        let started = Instant::now();
        let finished = loop {
            if !running.is_running() {
                break true;
            }
            let due = match point {
                Point::After(delay) => started.elapsed() >= delay,
                Point::Progress(target) => progress() >= target,
            };
            if due {
                if matches!(point, Point::Progress(_)) {
                    std::thread::sleep(settle);
                }
                break false;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        if finished {
            let last = running.wait();
            last.expect_code(0);
            let seen = progress();
            points.push((point, seen));
            eprintln!("kill point {index} ({point:?}): the run finished first");
            return Killed {
                points,
                mid_run,
                mid_progress,
                runs,
                last: Some(last),
            };
        }
        let hit = running.is_running();
        let ran = running.kill();
        if hit {
            mid_run += 1;
        } else {
            // It ended between the last look and the kill: it must have ended well.
            ran.expect_code(0);
        }
        let seen = progress();
        mid_progress += usize::from(seen > 0.0 && seen < 1.0);
        points.push((point, seen));
        after_kill(seen);
        if !hit || seen >= 1.0 {
            return Killed {
                points,
                mid_run,
                mid_progress,
                runs,
                last: (!hit).then_some(ran),
            };
        }
    }
    let last = run(&mut command());
    runs += 1;
    last.expect_code(0);
    Killed {
        points,
        mid_run,
        mid_progress,
        runs,
        last: Some(last),
    }
}
