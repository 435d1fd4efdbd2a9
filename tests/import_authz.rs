//! `import` of records' `roles`, `organizations` and `permissions` (issue 14, "Import") end to
//! end: a tenant exported `--include roles,organizations,permissions` imports into an empty
//! one with the same access for every user, across kills and through jobs; `--authz replace`
//! takes away exactly the extras; bad names and limits are rejected before the user is
//! touched; `--create-missing` creates each name once. The ground truth is the sandbox's
//! evidence (`GET /__sandbox/users?with=authz`), compared by email (helpers in
//! `support/authz.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use auth0_bulk::sandbox::SandboxOptions;
use serde_json::{Value, json};

use crate::support::authz::{
    INCLUDE_ALL, assert_same_access, copy_apis, evidence, organization_names, role_names,
    writes_sent,
};
use crate::support::child::{Ran, run};
use crate::support::exports::export;
use crate::support::imports::{
    DB, LedgerView, assert_adds_up, beside, count, empty_tenant, import, read_ndjson, read_text,
    write_ndjson,
};
use crate::support::jobs::{Ended, assert_ends_as_clean, rejects_by_line, requests_of};
use crate::support::kill::{kill_until_done, scaled};
use crate::support::live::Live;

/// Users of the tenant-to-tenant test: well under a minute in a debug build; the issue's
/// 20,000 under `AUTH0_BULK_LONG=1`.
const ROUND_TRIP_USERS: usize = 2_000;

const CREATE_MISSING: [&str; 2] = ["--create-missing", "roles,organizations"];
const UPSERT: [&str; 4] = ["--mode", "upsert", "--passwords", "random"];

// ---- helpers ----------------------------------------------------------------------------------

/// Exports `source` with all three access keys to `dir/users.ndjson`.
fn export_with_access(source: &Live, dir: &Path) -> PathBuf {
    let output = dir.join("users.ndjson");
    run(export(source)
        .arg("--output")
        .arg(&output)
        .args(["--include", INCLUDE_ALL, "--quiet"]))
    .expect_code(0);
    output
}

/// `import --input INPUT ARGS --json --quiet` to its end.
fn import_file(live: &Live, input: &Path, args: &[&str]) -> Ran {
    run(import(live)
        .arg("--input")
        .arg(input)
        .args(args)
        .args(["--json", "--quiet"]))
}

/// An empty tenant with `source`'s APIs.
fn target_for(source: &Live, options: SandboxOptions) -> Live {
    let target = Live::start(options);
    copy_apis(source, &target);
    target
}

/// Asserts each role and organization name is in the tenant once.
fn assert_no_duplicate_names(live: &Live) {
    for (what, mut names) in [
        ("roles", role_names(live)),
        ("organizations", organization_names(live)),
    ] {
        let all = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all, "a name twice among the {what}: {names:?}");
    }
}

// ---- 1. tenant to tenant ----------------------------------------------------------------------

#[test]
fn a_tenant_exported_with_its_access_imports_into_an_empty_one_with_the_same_access() {
    let n = scaled(ROUND_TRIP_USERS, 20_000);
    let source = Live::generated(n);
    let dir = tempfile::tempdir().unwrap();
    let input = export_with_access(&source, dir.path());

    let target = target_for(&source, SandboxOptions::default());
    let mut args = UPSERT.to_vec();
    args.extend(CREATE_MISSING);
    let ran = import_file(&target, &input, &args);
    let summary = ran.summary();
    eprintln!(
        "{n} users with their access exported and imported: {summary}, {:.1}s",
        ran.elapsed.as_secs_f64()
    );
    ran.expect_code(0);
    assert_eq!(count(&summary, "created"), n as u64, "{summary}");
    assert_eq!(count(&summary, "rejected"), 0, "{summary}");
    assert_adds_up(&summary);

    let want = evidence(&source);
    assert!(
        want.values().filter(|a| a["organizations"] != json!([])).count() > n / 20,
        "the source has memberships to carry"
    );
    assert_same_access(
        &evidence(&target),
        &want,
        "the target's access against the source's",
    );
    assert_no_duplicate_names(&target);
}
