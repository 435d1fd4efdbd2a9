//! How output reaches the terminal: which logs show (`-v`, `--quiet`, `RUST_LOG`), whether stderr
//! is coloured (`--color`, `NO_COLOR`), and a log writer that never breaks the progress bar.
//!
//! - **Levels.** This tool's logs at info by default, debug with `-v`, trace with `-vv`; the
//!   libraries underneath (reqwest, hyper, h2, rustls, tower) show only their errors until
//!   `-vvv`, which shows everything at trace. `--quiet` shows errors only. `RUST_LOG`, when
//!   set, replaces all of this.
//! - **Colour.** `--color always|never` decides; `auto` colours a terminal unless `NO_COLOR`
//!   is set to anything but the empty string (<https://no-color.org>). The same choice reaches
//!   clap's own help and errors ([`crate::cli::parse`]).
//! - **One stderr.** While a progress bar is drawn, a log line is written with the bar lifted
//!   (indicatif's `suspend`) and the bar redrawn below it, so lines never land inside the bar.
//!   Lines the commands print themselves (notices, the summary) go through [`say`], which also
//!   keeps `--quiet` quiet.

use std::ffi::OsStr;
use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::ColorChoice;
use indicatif::ProgressBar;

/// `--quiet`: nothing on stderr but errors.
static QUIET: AtomicBool = AtomicBool::new(false);
/// The progress bar on screen, if one is: log lines are written around it.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// How a run's output is to look, from the global flags and the command's `--quiet`.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub verbose: u8,
    pub quiet: bool,
    pub color: ColorChoice,
}

/// Sets up logging on stderr for the run (once a process; later calls only update `--quiet`).
pub fn init(settings: Settings) {
    QUIET.store(settings.quiet, Ordering::Relaxed);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(directives(settings)));
    let ansi = colour(
        settings.color,
        std::env::var_os("NO_COLOR").as_deref(),
        std::io::stderr().is_terminal(),
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| BarSafeStderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

/// Whether `--quiet` was given: no progress, notices or summary lines, errors only.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Prints a line for people on stderr (a notice, a summary line), unless `--quiet`; around the
/// progress bar when one is drawn.
pub fn say(line: impl Display) {
    if !quiet() {
        let _ = BarSafeStderr.write_all(format!("{line}\n").as_bytes());
    }
}

/// The `EnvFilter` directives for `-v` counts and `--quiet` (when `RUST_LOG` is not set).
fn directives(settings: Settings) -> &'static str {
    match (settings.verbose, settings.quiet) {
        (0, true) => "error",
        (0, false) => "auth0_bulk=info,error",
        (1, _) => "auth0_bulk=debug,error",
        (2, _) => "auth0_bulk=trace,error",
        _ => "trace",
    }
}

/// Whether stderr is coloured: the flag when it says `always` or `never`; on `auto`, only a
/// terminal, and not when `NO_COLOR` holds a value (an empty one does not count).
pub fn colour(choice: ColorChoice, no_color: Option<&OsStr>, terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => terminal && no_color.is_none_or(OsStr::is_empty),
    }
}

/// Registers the bar now on screen (`None` once it is cleared).
pub(crate) fn set_bar(bar: Option<ProgressBar>) {
    *BAR.lock().expect("bar lock") = bar;
}

/// Stderr, written with the progress bar lifted while one is drawn.
struct BarSafeStderr;

impl Write for BarSafeStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = BAR.lock().expect("bar lock").clone();
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(verbose: u8, quiet: bool) -> Settings {
        Settings {
            verbose,
            quiet,
            color: ColorChoice::Auto,
        }
    }

    #[test]
    fn the_http_libraries_log_only_from_three_v_and_quiet_leaves_errors() {
        assert_eq!(directives(settings(0, true)), "error");
        assert_eq!(directives(settings(0, false)), "auth0_bulk=info,error");
        assert_eq!(directives(settings(1, false)), "auth0_bulk=debug,error");
        assert_eq!(directives(settings(2, true)), "auth0_bulk=trace,error");
        assert_eq!(directives(settings(3, false)), "trace");
    }

    #[test]
    fn no_color_turns_colour_off_on_a_terminal_unless_the_flag_says_always() {
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        assert!(colour(ColorChoice::Auto, None, true));
        assert!(colour(ColorChoice::Auto, empty, true));
        assert!(!colour(ColorChoice::Auto, set, true));
        assert!(!colour(ColorChoice::Auto, None, false));
        assert!(colour(ColorChoice::Always, set, false));
        assert!(!colour(ColorChoice::Never, None, true));
    }
}
