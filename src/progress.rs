//! Progress for people: a bar with count, total and ETA on a terminal; plain periodic log
//! lines elsewhere (CI, cron, pipes); nothing with `--quiet`.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is logged when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);

pub struct Progress {
    bar: Option<ProgressBar>,
    plain: Option<Mutex<Plain>>,
    noun: &'static str,
}

struct Plain {
    done: u64,
    total: Option<u64>,
    started: Instant,
    last: Instant,
}

impl Progress {
    /// A reporter for `noun` ("users", "records").
    pub fn new(quiet: bool, noun: &'static str) -> Progress {
        if quiet {
            return Progress {
                bar: None,
                plain: None,
                noun,
            };
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} {human_pos}/{human_len} {msg} [{wide_bar}] {per_sec} ETA {eta}",
            )
            .expect("static template")
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(noun);
            bar.enable_steady_tick(Duration::from_millis(200));
            return Progress {
                bar: Some(bar),
                plain: None,
                noun,
            };
        }
        let now = Instant::now();
        let plain = Plain {
            done: 0,
            total: None,
            started: now,
            last: now,
        };
        Progress {
            bar: None,
            plain: Some(Mutex::new(plain)),
            noun,
        }
    }

    pub fn set_total(&self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
        if let Some(plain) = &self.plain {
            plain.lock().expect("progress lock").total = Some(total);
        }
    }

    /// Sets how many are already done (a resumed run).
    pub fn set_done(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
        if let Some(plain) = &self.plain {
            plain.lock().expect("progress lock").done = done;
        }
    }

    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
        if let Some(plain) = &self.plain {
            let mut p = plain.lock().expect("progress lock");
            p.done += n;
            if p.last.elapsed() >= LOG_EVERY {
                p.last = Instant::now();
                let rate = p.done as f64 / p.started.elapsed().as_secs_f64().max(0.001);
                match p.total {
                    Some(total) => tracing::info!(
                        done = p.done,
                        total,
                        per_second = format!("{rate:.0}"),
                        "Progress: {} of {total} {}.",
                        p.done,
                        self.noun
                    ),
                    None => tracing::info!(done = p.done, "Progress: {} {}.", p.done, self.noun),
                }
            }
        }
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
