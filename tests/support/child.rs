//! Runs the `auth0-bulk` binary as a child process: hermetic (no `AUTH0_*` or `RUST_LOG` from
//! the caller's environment), with its output captured and a deadline so a hung run fails the
//! test instead of hanging it.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any one run may take before the test gives up on it.
pub const DEADLINE: Duration = Duration::from_secs(180);

/// The binary's path: `AUTH0_BULK_BIN` when set, else cargo's. Where several work trees share
/// one target directory, cargo's `auth0-bulk` is whichever tree built last, so a test run can
/// point at a copy of its own.
pub fn path() -> std::ffi::OsString {
    std::env::var_os("AUTH0_BULK_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_auth0-bulk").into())
}

/// The binary with a clean environment.
pub fn binary() -> Command {
    let mut command = Command::new(path());
    for name in [
        "AUTH0_DOMAIN",
        "AUTH0_CLIENT_ID",
        "AUTH0_CLIENT_SECRET",
        "AUTH0_TOKEN",
        "RUST_LOG",
    ] {
        command.env_remove(name);
    }
    command.stdin(Stdio::null());
    command
}

/// `auth0-bulk export --domain DOMAIN` with the client credentials in the environment.
pub fn export(domain: &str, client_id: &str, client_secret: &str) -> Command {
    let mut command = binary();
    command
        .arg("export")
        .args(["--domain", domain])
        .env("AUTH0_CLIENT_ID", client_id)
        .env("AUTH0_CLIENT_SECRET", client_secret);
    command
}

/// `auth0-bulk import --domain DOMAIN` with the client credentials in the environment.
pub fn import(domain: &str, client_id: &str, client_secret: &str) -> Command {
    let mut command = binary();
    command
        .arg("import")
        .args(["--domain", domain])
        .env("AUTH0_CLIENT_ID", client_id)
        .env("AUTH0_CLIENT_SECRET", client_secret);
    command
}

/// A finished run.
#[derive(Debug)]
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Ran {
    /// The exit code; `None` when a signal ended the process.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The `--json` summary: the last line of stdout.
    pub fn summary(&self) -> Value {
        let text = self.stdout_text();
        let line = text.lines().last().unwrap_or_else(|| {
            panic!("no summary on stdout; stderr:\n{}", self.stderr);
        });
        serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("the summary {line:?} is not JSON ({e})"))
    }

    /// Panics with the run's stderr unless it exited with `code`.
    pub fn expect_code(&self, code: i32) -> &Ran {
        assert_eq!(
            self.code(),
            Some(code),
            "expected exit {code}; stderr:\n{}\nstdout:\n{}",
            self.stderr,
            truncated(&self.stdout_text())
        );
        self
    }
}

fn truncated(text: &str) -> String {
    if text.len() <= 2000 {
        return text.to_string();
    }
    let mut end = 2000;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &text[..end], text.len() - end)
}

/// Runs `command` to its end.
pub fn run(command: &mut Command) -> Ran {
    Running::spawn(command).wait()
}

/// A child still running, with its output being collected.
pub struct Running {
    child: Child,
    started: Instant,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Running {
    pub fn spawn(command: &mut Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the auth0-bulk binary starts");
        let mut out = child.stdout.take().expect("piped stdout");
        let mut err = child.stderr.take().expect("piped stderr");
        let stdout = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = out.read_to_end(&mut bytes);
            bytes
        });
        let stderr = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = err.read_to_end(&mut bytes);
            bytes
        });
        Running {
            child,
            started: Instant::now(),
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("the child can be polled")
            .is_none()
    }

    /// Waits for the end (killing the child past [`DEADLINE`], which fails the test).
    pub fn wait(mut self) -> Ran {
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be polled") {
                return self.collect(status);
            }
            if self.started.elapsed() > DEADLINE {
                let _ = self.child.kill();
                let status = self.child.wait().expect("the killed child is reaped");
                let ran = self.collect(status);
                panic!(
                    "auth0-bulk ran past {DEADLINE:?} and was killed; stderr:\n{}",
                    ran.stderr
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL (on unix, `Child::kill` sends SIGKILL), then collects what it wrote.
    pub fn kill(mut self) -> Ran {
        let _ = self.child.kill();
        let status = self.child.wait().expect("the killed child is reaped");
        self.collect(status)
    }

    /// Sends SIGINT, as Ctrl-C does.
    pub fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill -INT failed");
    }

    fn collect(&mut self, status: ExitStatus) -> Ran {
        let stdout = self
            .stdout
            .take()
            .map(|h| h.join().expect("stdout reader"))
            .unwrap_or_default();
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().expect("stderr reader"))
            .unwrap_or_default();
        Ran {
            status,
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            elapsed: self.started.elapsed(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A test that panics mid-run must not leave the child behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits until `ready` holds (polling), failing the test after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}
