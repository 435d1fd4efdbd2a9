//! Job files through the binary: a mistake names its key and line and stops the run (exit 2)
//! before any request; options go before or after the job file; the shipped backfill job
//! rehearses on the shipped samples.

use std::path::Path;

use crate::support::child::{self, run};
use crate::support::live::Live;

/// A job file `job.toml` in a fresh folder.
fn job(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// `auth0-bulk run WORDS...` with the tenant's client credentials in the environment, as a
/// scheduler would run a job.
fn run_job(live: &Live, words: &[&std::ffi::OsStr]) -> child::Ran {
    run(child::binary()
        .arg("run")
        .args(words)
        .env("AUTH0_CLIENT_ID", live.client_id())
        .env("AUTH0_CLIENT_SECRET", live.client_secret()))
}

#[test]
fn a_job_file_typo_is_refused_with_its_key_and_line_before_any_request() {
    let live = Live::generated(10);
    let (dir, path) = job(&format!(
        "command = \"export\"\ndomain = \"{}\"\n\n# where the users go\nouput = \"users.ndjson\"\n",
        live.domain()
    ));
    let ran = run_job(&live, &[path.as_os_str()]);
    ran.expect_code(2);
    let said = format!(
        "{}:5: unknown key `ouput`: did you mean `output`?",
        path.display()
    );
    assert!(ran.stderr.contains(&said), "{said}\n{}", ran.stderr);
    assert_eq!(
        live.tenant.sandbox.requests().len(),
        1,
        "only the test's own token request reached the tenant"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing written"
    );
}

#[test]
fn a_value_of_the_wrong_type_or_a_syntax_error_is_refused_with_its_line() {
    for (text, says) in [
        (
            "command = \"export\"\noutput = \"u.ndjson\"\nfresh = \"yes\"\n",
            ":3: `fresh` takes true or false, not a string",
        ),
        (
            "command = \"export\"\noutput = [\"a.ndjson\", \"b.ndjson\"]\n",
            ":2: `output` takes one value (PATH), not a list",
        ),
        (
            "command = \"import\"\ninput = \"u.csv\"\nmode = \"upsrt\"\n",
            ":3: invalid value 'upsrt' for '--mode <MODE>'",
        ),
        ("command = \"export\"\noutput = \"u.ndjson\n", ":2:19: "),
    ] {
        let (_dir, path) = job(text);
        let ran = run(child::binary().arg("run").arg(&path));
        ran.expect_code(2);
        let says = format!("{}{says}", path.display());
        assert!(ran.stderr.contains(&says), "{says}\n{}", ran.stderr);
    }
}

#[test]
fn options_may_come_before_or_after_the_job_file() {
    let live = Live::generated(30);
    let (dir, path) = job(&format!(
        "command = \"export\"\ndomain = \"{}\"\noutput = \"users.ndjson\"\nconcurrency = 8\n",
        live.domain()
    ));
    let output = dir.path().join("users.ndjson");
    let with = |words: &[&std::ffi::OsStr]| {
        let ran = run_job(&live, words);
        ran.expect_code(0);
        ran.summary()
    };
    let job = path.as_os_str();
    let first = with(&[job, "--quiet".as_ref(), "--json".as_ref()]);
    assert_eq!(first["users"], 30);
    let again = with(&[
        "--fresh".as_ref(),
        "--concurrency".as_ref(),
        "2".as_ref(),
        "-q".as_ref(),
        job,
        "--json".as_ref(),
    ]);
    assert_eq!(again["users"], 30, "{again}");
    assert_eq!(
        again["resumed"], false,
        "--fresh before the job file counted"
    );
    assert_eq!(
        std::fs::read_to_string(&output).unwrap().lines().count(),
        30
    );
}

#[test]
fn the_backfill_job_rehearses_on_the_shipped_sample_plans() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let ran = run(child::binary()
        .current_dir(root)
        .args(["run", "jobs/backfill-plan.toml", "--domain", "sandbox"])
        .args([
            "--sandbox-seed",
            "samples/users.ndjson",
            "--json",
            "--quiet",
        ])
        .arg("--state")
        .arg(dir.path().join("state"))
        .arg("--rejects")
        .arg(dir.path().join("rejects.ndjson")));
    // As the job file's comment says: two rows name no user of the connection.
    ran.expect_code(3);
    let summary = ran.summary();
    assert_eq!(
        (
            &summary["read"],
            &summary["updated"],
            &summary["unchanged"],
            &summary["rejected"]
        ),
        (&10.into(), &5.into(), &3.into(), &2.into()),
        "{summary}"
    );
}
