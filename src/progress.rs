//! Progress for people: a bar with count, total, rate and ETA on a terminal; plain periodic log
//! lines with the same figures elsewhere (CI, cron, pipes); nothing with `--quiet`.
//!
//! - **Totals.** An export knows how many users it will write (set once counted). An import of
//!   a regular file counts the file's bytes as the reader takes them in
//!   ([`Progress::count_input`]): the bar shows the bytes read of the file's size (compressed
//!   bytes for a `.gz`), which needs no first pass over the file.
//! - **Rates that mean something.** Work an earlier run did (a resumed export's users, an
//!   import's records found in the ledger) moves the bar but is not speed: the rate, and the
//!   ETA drawn from it, count only this run's work ([`Count`], a pure type with the time passed
//!   in). Rates have thousands separators (`1,662/s`).
//! - **The bar stays whole.** Log lines are written around it ([`crate::terminal`]).

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{BinaryBytes, HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is logged when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// How often the bar's figures are recomputed (it redraws on its own tick).
const SHOW_EVERY: Duration = Duration::from_millis(100);
/// A rate needs this much of the run behind it to mean anything.
const RATE_AFTER: Duration = Duration::from_millis(500);

pub struct Progress {
    bar: Option<ProgressBar>,
    /// Log lines instead of a bar (stderr is not a terminal).
    plain: bool,
    meter: Mutex<Meter>,
    noun: &'static str,
}

/// What the progress has counted so far.
struct Meter {
    started: Instant,
    units: Count,
    /// An import's input: bytes read of the file's size.
    input: Option<(Arc<AtomicU64>, Count)>,
    shown: Instant,
    logged: Instant,
}

/// Work done against a total, this run's apart from an earlier run's: the rate and the ETA
/// count only this run's. Pure: the time is passed in.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Count {
    pub done: u64,
    /// Of `done`, what earlier runs did.
    pub earlier: u64,
    pub total: Option<u64>,
}

impl Count {
    /// Moves on to `done`, `earlier` of it being an earlier run's work.
    pub fn advance(&mut self, by: u64, earlier: bool) {
        self.done += by;
        if earlier {
            self.earlier += by;
        }
    }

    /// This run's work per second, once `elapsed` is long enough to say.
    pub fn rate(&self, elapsed: Duration) -> Option<f64> {
        (elapsed >= RATE_AFTER).then(|| (self.done - self.earlier) as f64 / elapsed.as_secs_f64())
    }

    /// The time left at this run's rate, when there is a total and a rate.
    pub fn eta(&self, elapsed: Duration) -> Option<Duration> {
        let left = self.total?.saturating_sub(self.done);
        let rate = self.rate(elapsed).filter(|r| *r > 0.0)?;
        Duration::try_from_secs_f64(left as f64 / rate).ok()
    }
}

impl Progress {
    /// A reporter for `noun` ("users", "records").
    pub fn new(quiet: bool, noun: &'static str) -> Progress {
        let now = Instant::now();
        let meter = Mutex::new(Meter {
            started: now,
            units: Count::default(),
            input: None,
            shown: now,
            logged: now,
        });
        let terminal = std::io::stderr().is_terminal();
        let bar = (!quiet && terminal).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(style(false));
            bar.set_message(noun);
            bar.enable_steady_tick(Duration::from_millis(200));
            crate::terminal::set_bar(Some(bar.clone()));
            bar
        });
        Progress {
            bar,
            plain: !quiet && !terminal,
            meter,
            noun,
        }
    }

    pub fn set_total(&self, total: u64) {
        let mut meter = self.meter.lock().expect("progress lock");
        meter.units.total = Some(total);
        if let Some(bar) = &self.bar
            && meter.input.is_none()
        {
            bar.set_style(style(true));
            bar.set_length(total);
        }
    }

    /// Sets how many an earlier run did (a resumed run): they move the bar, not the rate.
    pub fn set_done(&self, done: u64) {
        let mut meter = self.meter.lock().expect("progress lock");
        let fresh = meter.units.done - meter.units.earlier;
        meter.units.earlier = done;
        meter.units.done = done + fresh;
        self.show(&mut meter, true);
    }

    /// Counts the bytes of an input of `total` bytes as they are read: the reader adds to the
    /// counter returned, and the bar shows bytes read of `total`.
    pub fn count_input(&self, total: u64) -> Arc<AtomicU64> {
        let read = Arc::new(AtomicU64::new(0));
        let count = Count {
            total: Some(total),
            ..Count::default()
        };
        self.meter.lock().expect("progress lock").input = Some((read.clone(), count));
        if let Some(bar) = &self.bar {
            bar.set_style(style(true));
            bar.set_length(total);
        }
        read
    }

    /// Counts `n` done by this run.
    pub fn inc(&self, n: u64) {
        self.advance(n, false);
    }

    /// Counts `n` an earlier run did (records a resumed import finds in its ledger).
    pub fn inc_earlier(&self, n: u64) {
        self.advance(n, true);
    }

    fn advance(&self, n: u64, earlier: bool) {
        let mut meter = self.meter.lock().expect("progress lock");
        meter.units.advance(n, earlier);
        if let Some((read, count)) = &mut meter.input {
            // The bytes read since the last record go to the kind of work this record was:
            // the reader runs a little ahead, so this is close, not exact, at the boundary.
            let at = read.load(Ordering::Relaxed).max(count.done);
            count.advance(at - count.done, earlier);
        }
        self.show(&mut meter, false);
    }

    /// Shows the figures: on the bar every [`SHOW_EVERY`] (or `now`), in a log line every
    /// [`LOG_EVERY`].
    fn show(&self, meter: &mut Meter, now: bool) {
        let at = Instant::now();
        if let Some(bar) = &self.bar
            && (now || at - meter.shown >= SHOW_EVERY)
        {
            meter.shown = at;
            let position = match &meter.input {
                Some((_, count)) => count.done,
                None => meter.units.done,
            };
            bar.set_position(position);
            bar.set_message(figures(meter, at - meter.started, self.noun));
        }
        if self.plain && at - meter.logged >= LOG_EVERY {
            meter.logged = at;
            let elapsed = at - meter.started;
            tracing::info!(
                done = meter.units.done,
                total = meter.units.total,
                per_second = meter.units.rate(elapsed).map(|r| r.round() as u64),
                "Progress: {}.",
                figures(meter, elapsed, self.noun)
            );
        }
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            crate::terminal::set_bar(None);
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The bar: a spinner and the figures, with the bar itself once there is a total.
fn style(with_total: bool) -> ProgressStyle {
    let template = if with_total {
        "{spinner} [{wide_bar}] {msg}"
    } else {
        "{spinner} {msg}"
    };
    ProgressStyle::with_template(template)
        .expect("static template")
        .progress_chars("=> ")
}

/// "1,234 of 5,000 users, 1,662/s, ETA 3s" or, reading a file, "1,234 records, 4.1 MiB of
/// 10.0 MiB (41%), 1,662/s, ETA 3s".
fn figures(meter: &Meter, elapsed: Duration, noun: &str) -> String {
    let units = &meter.units;
    let mut text = HumanCount(units.done).to_string();
    let by_bytes = meter.input.as_ref().map(|(_, count)| count);
    match (by_bytes, units.total) {
        (Some(bytes), _) => {
            let total = bytes.total.unwrap_or_default();
            let _ = write!(
                text,
                " {noun}, {} of {} ({}%)",
                BinaryBytes(bytes.done),
                BinaryBytes(total),
                percent(bytes.done, total)
            );
        }
        (None, Some(total)) => {
            let _ = write!(
                text,
                " of {} {noun} ({}%)",
                HumanCount(total),
                percent(units.done, total)
            );
        }
        (None, None) => {
            let _ = write!(text, " {noun}");
        }
    }
    if let Some(rate) = units.rate(elapsed) {
        let _ = write!(text, ", {}", rate_text(rate));
    }
    if let Some(eta) = by_bytes.unwrap_or(units).eta(elapsed) {
        let _ = write!(text, ", ETA {}", duration_text(eta));
    }
    text
}

fn percent(done: u64, total: u64) -> u64 {
    (done.min(total) * 100).checked_div(total).unwrap_or(100)
}

/// `1,662/s`, or `3.2/s` below 10.
pub fn rate_text(rate: f64) -> String {
    if rate < 10.0 {
        format!("{rate:.1}/s")
    } else {
        format!("{}/s", HumanCount(rate.round() as u64))
    }
}

/// `12s`, `3m 12s`, `1h 02m`.
pub fn duration_text(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h {:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_runs_earlier_work_moves_the_count_but_not_the_rate_or_eta() {
        let mut count = Count {
            total: Some(10_000),
            ..Count::default()
        };
        // The earlier run did 9,000; this one did 100 in 10 seconds.
        count.advance(9_000, true);
        count.advance(100, false);
        let elapsed = Duration::from_secs(10);
        assert_eq!(count.done, 9_100);
        assert_eq!(count.rate(elapsed), Some(10.0));
        assert_eq!(count.eta(elapsed), Some(Duration::from_secs(90)));
        // Too early to say.
        assert_eq!(count.rate(Duration::from_millis(100)), None);
        // Nothing of this run's yet: no rate to draw an ETA from.
        let resumed = Count {
            done: 9_000,
            earlier: 9_000,
            total: Some(10_000),
        };
        assert_eq!(resumed.eta(elapsed), None);
    }

    #[test]
    fn rates_and_durations_read_as_people_write_them() {
        assert_eq!(rate_text(1_662.4), "1,662/s");
        assert_eq!(rate_text(1_234_567.0), "1,234,567/s");
        assert_eq!(rate_text(3.24), "3.2/s");
        assert_eq!(duration_text(Duration::from_secs(12)), "12s");
        assert_eq!(duration_text(Duration::from_secs(192)), "3m 12s");
        assert_eq!(duration_text(Duration::from_secs(3_720)), "1h 02m");
    }

    #[test]
    fn the_figures_say_bytes_of_the_file_when_an_import_counts_its_input() {
        let started = Instant::now();
        let read = Arc::new(AtomicU64::new(0));
        let mut meter = Meter {
            started,
            units: Count::default(),
            input: Some((
                read,
                Count {
                    done: 4 * 1024 * 1024,
                    earlier: 0,
                    total: Some(8 * 1024 * 1024),
                },
            )),
            shown: started,
            logged: started,
        };
        meter.units.advance(2_000, false);
        let text = figures(&meter, Duration::from_secs(2), "records");
        assert_eq!(
            text,
            "2,000 records, 4.00 MiB of 8.00 MiB (50%), 1,000/s, ETA 2s"
        );
        meter.input = None;
        meter.units.total = Some(4_000);
        assert_eq!(
            figures(&meter, Duration::from_secs(2), "users"),
            "2,000 of 4,000 users (50%), 1,000/s, ETA 2s"
        );
    }
}
