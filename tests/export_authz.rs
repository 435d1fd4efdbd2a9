//! `export --include roles,organizations,permissions` (issue 14) end to end: the real binary
//! against an in-process sandbox whose `GET /__sandbox/users?with=authz` is the ground truth in
//! the export's shape. Each user's record must be the plain export's with the keys asked for
//! appended, in NDJSON and CSV; the role and organization reads must cost what the summary
//! says and stay within issue 14's bound; kills must change neither the file nor that cost by
//! more than the pages in flight; and a token or a list that cannot work is refused first.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use auth0_bulk::sandbox::SandboxOptions;
use serde_json::Value;

use crate::support::child::{Ran, Running, run, wait_until};
use crate::support::exports::{
    User, assert_consistent, checkpoint, clean_export, decode_csv, expected_export, export,
    ndjson_users, parse, read, read_text, state_of,
};
use crate::support::jobs::tenant_lacking;
use crate::support::kill::{kill_until_done, scaled};
use crate::support::live::{Live, user_id};

const ALL: &str = "roles,organizations,permissions";
const KEYS: [&str; 3] = ["roles", "organizations", "permissions"];

/// Roles or organizations the export reads at once (`authz::AT_ONCE`): what a kill can leave
/// in flight in the role and organization part.
const AT_ONCE: u64 = 8;

// ---- helpers ----------------------------------------------------------------------------------

/// The ground truth: user_id → the user with its `roles`, `organizations` and `permissions`.
fn evidence(live: &Live) -> BTreeMap<String, User> {
    live.block_on(live.tenant.evidence_users("?with=authz"))
        .into_iter()
        .map(|user| {
            let user = user.as_object().cloned().expect("a user object");
            (user_id(&user).to_string(), user)
        })
        .collect()
}

/// The keys of `keys` (the order `--include` writes them in) that `include` names.
fn keys_of(include: &str) -> Vec<&'static str> {
    KEYS.into_iter()
        .filter(|k| include.split(',').any(|p| p == *k))
        .collect()
}

/// What an export `--include include` must hold, byte for byte: each line of the plain export
/// (the sandbox's dump in export order) with the keys appended as the evidence has them.
fn expected_with(live: &Live, truth: &BTreeMap<String, User>, include: &str) -> String {
    let keys = keys_of(include);
    let mut out = String::new();
    for line in expected_export(live, |_| true).split_inclusive('\n') {
        let user = parse(line);
        let known = &truth[user_id(&user)];
        let body = line.trim_end().strip_suffix('}').expect("a JSON object");
        out.push_str(body);
        for key in &keys {
            out.push_str(&format!(",\"{key}\":{}", known[*key]));
        }
        out.push_str("}\n");
    }
    out
}

/// The role and organization requests the tenant answered (every status), by its route stats.
fn authz_requests(live: &Live) -> u64 {
    live.tenant
        .sandbox
        .stats()
        .requests
        .iter()
        .filter(|(route, _)| {
            route.starts_with("GET /api/v2/roles") || route.starts_with("GET /api/v2/organizations")
        })
        .map(|(_, by_status)| by_status.values().sum::<u64>())
        .sum()
}

/// The direct-permission reads the tenant answered (`GET /api/v2/users/{id}/permissions`).
fn permission_requests(live: &Live) -> u64 {
    live.api_requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/permissions"))
        .count() as u64
}

/// Issue 14's bound on the role and organization part: (roles + organizations + assignments /
/// 100) × 1.1 + 10, from the summary's counts.
fn bound(authz: &Value) -> f64 {
    let n = |key: &str| authz[key].as_u64().unwrap_or_else(|| panic!("authz.{key}")) as f64;
    (n("roles") + n("organizations") + n("assignments") / 100.0) * 1.1 + 10.0
}

/// Role assignments and organization memberships of the evidence: the summary's `assignments`.
fn assignments(truth: &BTreeMap<String, User>) -> u64 {
    truth
        .values()
        .map(|u| {
            let n = |key: &str| u[key].as_array().map_or(0, Vec::len) as u64;
            n("roles") + n("organizations")
        })
        .sum()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file in the state and the output's folder is the owner's alone (a file removed while
/// looked at is passed over).
#[cfg(unix)]
fn assert_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for path in crate::support::files_under(dir) {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o600,
            "{} is not private",
            path.display()
        );
    }
}

// ---- 1. NDJSON: the plain export with the evidence's keys ---------------------------------------

#[test]
fn an_ndjson_export_with_include_is_the_plain_export_with_the_evidence_keys_appended() {
    let live = Live::generated(3_000);
    let truth = evidence(&live);
    assert_eq!(truth.len(), 3_000);
    // The tenant holds every kind of grant the export must carry.
    let some = |f: &dyn Fn(&User) -> bool| truth.values().filter(|u| f(u)).count();
    let non_empty = |u: &User, key: &str| u[key].as_array().is_some_and(|a| !a.is_empty());
    assert!(some(&|u| non_empty(u, "roles")) > 2_000);
    assert!(some(&|u| non_empty(u, "permissions")) > 50);
    assert!(
        some(&|u| {
            u["organizations"]
                .as_array()
                .is_some_and(|orgs| orgs.iter().any(|o| o["roles"] != Value::Array(vec![])))
        }) > 50,
        "some members hold member roles"
    );
    assert!(some(&|u| u["organizations"].as_array().is_some_and(|o| o.len() > 1)) > 5);

    let dir = tempfile::tempdir().unwrap();
    for include in [ALL, "roles", "permissions,organizations"] {
        let name = format!("users-{}.ndjson", include.replace(',', "-"));
        let (bytes, ran) =
            clean_export(&live, dir.path(), &name, &["--include", include, "--json"]);
        let text = String::from_utf8(bytes).unwrap();
        let expected = expected_with(&live, &truth, include);
        if text != expected {
            let (got, want): (Vec<_>, Vec<_>) =
                (text.lines().collect(), expected.lines().collect());
            let at = got.iter().zip(&want).position(|(g, w)| g != w);
            panic!(
                "--include {include}: {} lines, {} expected; first difference at line {at:?}:\n\
                 got  {:?}\nwant {:?}",
                got.len(),
                want.len(),
                at.map(|i| got[i]),
                at.map(|i| want[i])
            );
        }
        let authz = &ran.summary()["authz"];
        eprintln!("--include {include}: {authz}");
        assert_eq!(authz["include"], include_in_order(include));
        assert_eq!(
            authz["roles"],
            if include.contains("roles") { 36 } else { 0 }
        );
        let orgs = if include.contains("organizations") {
            5
        } else {
            0
        };
        assert_eq!(authz["organizations"], orgs);
        if include == ALL {
            assert_eq!(authz["assignments"], assignments(&truth));
        }
    }
    // A plain export adds nothing and says nothing of --include.
    let (plain, ran) = clean_export(&live, dir.path(), "plain.ndjson", &["--json"]);
    assert!(plain == expected_export(&live, |_| true).into_bytes());
    assert!(ran.summary().get("authz").is_none());
}

/// `--include permissions,roles` as the summary names it: the keys in their written order.
fn include_in_order(include: &str) -> String {
    keys_of(include).join(",")
}

// ---- 2. CSV -------------------------------------------------------------------------------------

/// A CSV export's users read back must be the plain users with the evidence's three keys.
fn assert_csv_holds_the_evidence(what: &str, decoded: &[User], live: &Live) {
    let truth = evidence(live);
    let plain: BTreeMap<String, User> = ndjson_users(&expected_export(live, |_| true))
        .into_iter()
        .map(|u| (user_id(&u).to_string(), u))
        .collect();
    assert_eq!(decoded.len(), truth.len(), "{what}: a row per user");
    for user in decoded {
        let id = user_id(user);
        let mut rest = user.clone();
        for key in KEYS {
            let value = rest.remove(key);
            assert_eq!(
                value.as_ref(),
                Some(&truth[id][key]),
                "{what}: {id}'s {key}"
            );
        }
        assert_eq!(&rest, &plain[id], "{what}: {id} changed");
    }
}

#[test]
fn csv_exports_carry_the_three_lists_as_json_cells_that_read_back_equal() {
    let live = Live::generated(2_000);
    let dir = tempfile::tempdir().unwrap();

    // `--csv-metadata json`: the lists are JSON in the `extra` column.
    let (bytes, _) = clean_export(&live, dir.path(), "users.csv", &["--include", ALL]);
    let header = csv_header(&bytes);
    assert_eq!(header.last().map(String::as_str), Some("extra"));
    assert!(!KEYS.iter().any(|k| header.iter().any(|h| h == k)));
    assert_csv_holds_the_evidence("json", &decode_csv(&bytes, false), &live);

    // `--csv-metadata flatten` spreads the metadata objects only: the three lists stay JSON in
    // `extra` (a list of objects has no lossless leaf columns), so they read back whole.
    let (bytes, _) = clean_export(
        &live,
        dir.path(),
        "flat.csv",
        &["--include", ALL, "--csv-metadata", "flatten"],
    );
    let header = csv_header(&bytes);
    assert_eq!(header.last().map(String::as_str), Some("extra"));
    for key in KEYS {
        assert!(
            !header
                .iter()
                .any(|h| h == key || h.starts_with(&format!("{key}."))),
            "flatten: a column of {key}"
        );
    }
    assert_csv_holds_the_evidence("flatten", &decode_csv(&bytes, false), &live);
}

fn csv_header(bytes: &[u8]) -> Vec<String> {
    let mut reader = csv::Reader::from_reader(bytes);
    reader
        .headers()
        .expect("a CSV header")
        .iter()
        .map(str::to_string)
        .collect()
}

/// Each CSV row as column → cell.
fn csv_rows(bytes: &[u8]) -> Vec<BTreeMap<String, String>> {
    let header = csv_header(bytes);
    let mut reader = csv::Reader::from_reader(bytes);
    reader
        .records()
        .map(|row| {
            let row = row.expect("a CSV row");
            header
                .iter()
                .cloned()
                .zip(row.iter().map(str::to_string))
                .collect()
        })
        .collect()
}

#[test]
fn a_list_named_in_fields_is_its_own_json_column_and_never_asked_of_the_tenant() {
    let live = Live::generated(1_500);
    let truth = evidence(&live);
    let dir = tempfile::tempdir().unwrap();
    for mode in ["json", "flatten"] {
        live.tenant.sandbox.reset_stats();
        let name = format!("fields-{mode}.csv");
        let args = [
            "--include",
            "roles,organizations",
            "--fields",
            "user_id,email,roles,organizations",
            "--csv-metadata",
            mode,
        ];
        let (bytes, _) = clean_export(&live, dir.path(), &name, &args);
        assert_eq!(
            csv_header(&bytes),
            ["user_id", "email", "roles", "organizations"],
            "{mode}"
        );
        let rows = csv_rows(&bytes);
        assert_eq!(rows.len(), truth.len(), "{mode}");
        for row in rows {
            let known = &truth[&row["user_id"]];
            assert_eq!(row["email"], known["email"].as_str().unwrap_or(""));
            for key in ["roles", "organizations"] {
                let cell: Value = serde_json::from_str(&row[key])
                    .unwrap_or_else(|e| panic!("{mode}: {key} cell {:?} ({e})", row[key]));
                assert_eq!(cell, known[key], "{mode}: {}'s {key}", row["user_id"]);
            }
        }
        // The lists are the tool's to add: the user pages ask for the fields named, not them.
        let pages: Vec<_> = live
            .api_requests()
            .into_iter()
            .filter(|r| r.path == "/api/v2/users")
            .collect();
        assert!(!pages.is_empty());
        let mut with_email = 0;
        for page in pages {
            let query = page.query.unwrap_or_default();
            let fields: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
                .filter(|(k, _)| k == "fields")
                .flat_map(|(_, v)| v.split(',').map(str::to_string).collect::<Vec<_>>())
                .collect();
            assert!(
                !fields.is_empty(),
                "{mode}: every page names its fields: {query}"
            );
            with_email += usize::from(fields.iter().any(|f| f == "email"));
            for key in KEYS {
                assert!(
                    !fields.iter().any(|f| f == key),
                    "{mode}: {key} asked in {query}"
                );
            }
        }
        assert!(with_email > 0, "{mode}: no page asked for the email");
    }
    // Named without --include, the column would be empty: refused, saying what to add.
    live.tenant.sandbox.reset_stats();
    let output = dir.path().join("refused.csv");
    let ran = run(export(&live).arg("--output").arg(&output).args([
        "--include",
        "roles",
        "--fields",
        "user_id,organizations",
    ]));
    assert_eq!(ran.code(), Some(2), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("--include organizations"),
        "{}",
        ran.stderr
    );
    assert!(live.api_requests().is_empty());
}

// ---- 3. request cost ----------------------------------------------------------------------------

#[test]
fn roles_and_organizations_cost_about_one_request_per_100_members_and_permissions_one_per_user() {
    let users = 3_000u64;
    let live = Live::generated(users as usize);
    let truth = evidence(&live);
    let dir = tempfile::tempdir().unwrap();

    live.tenant.sandbox.reset_stats();
    let (_, ran) = clean_export(
        &live,
        dir.path(),
        "ro.ndjson",
        &["--include", "roles,organizations", "--json"],
    );
    let authz = ran.summary()["authz"].clone();
    let seen = authz_requests(&live);
    eprintln!("--include roles,organizations: {authz}; the sandbox saw {seen} role/org requests");
    assert_eq!(authz["assignments"], assignments(&truth));
    assert_eq!(
        authz["requests"], seen,
        "the summary counts what the tenant saw"
    );
    assert!(
        (seen as f64) <= bound(&authz),
        "{seen} requests, bound {:.1}",
        bound(&authz)
    );
    assert_eq!(authz["permission_requests"], 0);
    assert_eq!(permission_requests(&live), 0);
    let lines = ran.stdout_text();
    assert!(!lines.contains("permissions"), "{lines}");

    live.tenant.sandbox.reset_stats();
    let (_, ran) = clean_export(
        &live,
        dir.path(),
        "all.ndjson",
        &["--include", ALL, "--json"],
    );
    let authz = ran.summary()["authz"].clone();
    eprintln!("--include {ALL}: {authz}");
    assert_eq!(authz["requests"], authz_requests(&live));
    assert_eq!(authz["permission_requests"], users);
    assert_eq!(
        permission_requests(&live),
        users,
        "one read per user, no more"
    );

    // The words say the cost too.
    live.tenant.sandbox.reset_stats();
    let output = dir.path().join("words.ndjson");
    let ran = export_including(&live, &output, ALL);
    ran.expect_code(0);
    assert!(
        ran.stderr.contains("36 roles and 5 organizations")
            && ran
                .stderr
                .contains(&format!("one user at a time ({users} requests)")),
        "{}",
        ran.stderr
    );
}

// ---- 4. resume ----------------------------------------------------------------------------------

/// A tenant slow enough that the role and organization part lasts a few hundred milliseconds.
fn slow_authz_tenant(users: usize) -> Live {
    Live::start(SandboxOptions {
        generate: users,
        latency: Duration::from_millis(10),
        ..Default::default()
    })
}

#[test]
fn an_export_killed_while_reading_roles_goes_on_from_the_pages_it_kept() {
    let users = 3_000;
    let live = slow_authz_tenant(users);
    let clean_dir = tempfile::tempdir().unwrap();
    live.tenant.sandbox.reset_stats();
    let args = ["--include", "roles,organizations", "--json"];
    let (clean, _) = clean_export(&live, clean_dir.path(), "users.ndjson", &args);
    let clean_requests = authz_requests(&live);

    live.tenant.sandbox.reset_stats();
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson");
    let state = state_of(&output);
    // Killed halfway through the role and organization part of the first run.
    let first = Running::spawn(export(&live).arg("--output").arg(&output).args(args));
    wait_until(Duration::from_secs(60), "half the role reads", || {
        authz_requests(&live) >= clean_requests / 2
    });
    first.kill();
    let before = authz_requests(&live);
    assert!(before < clean_requests, "killed before the reads were over");
    assert!(
        state.join("authz.sqlite").exists(),
        "the store of the pages read is kept"
    );
    let ran = run(export(&live).arg("--output").arg(&output).args(args));
    ran.expect_code(0);
    let again = authz_requests(&live) - before;
    eprintln!(
        "clean {clean_requests} role/org requests; killed after {before}; the run again sent \
         {again}; its summary: {}",
        ran.summary()["authz"]
    );
    assert!(read(&output) == clean);
    // The summary counts both runs; the pages in flight at the kill may be counted though the
    // tenant never answered them, or answered though the kill came before they were counted.
    let counted = ran.summary()["authz"]["requests"].as_u64().unwrap();
    assert!(
        counted.abs_diff(before + again) <= AT_ONCE,
        "the summary counts {counted} of the {} role/org requests sent",
        before + again
    );
    assert!(
        before + again <= clean_requests + AT_ONCE,
        "{before} before the kill and {again} after it: a resume reads again only the pages \
         in flight (at most {AT_ONCE}), not all {clean_requests}"
    );
}

#[test]
fn an_export_with_include_killed_at_seeded_points_ends_as_a_clean_run() {
    let users = scaled(3_000, 20_000);
    let live = slow_authz_tenant(users);
    let clean_dir = tempfile::tempdir().unwrap();
    live.tenant.sandbox.reset_stats();
    let args = ["--include", ALL, "--json"];
    let (clean, clean_run) = clean_export(&live, clean_dir.path(), "users.ndjson", &args);
    let clean_authz = clean_run.summary()["authz"].clone();
    let clean_requests = authz_requests(&live);
    assert!(clean == expected_with(&live, &evidence(&live), ALL).into_bytes());

    live.tenant.sandbox.reset_stats();
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson");
    let state = state_of(&output);
    // The role and organization part is the first half of the job, the users the second.
    let progress = || match checkpoint(&state) {
        Some(c) if c["completed"] == true => 1.0,
        Some(c) if c["users"].as_u64().unwrap_or(0) > 0 => {
            0.5 + (c["users"].as_u64().unwrap_or(0) as f64 / users as f64 / 2.0).min(0.499)
        }
        _ => (authz_requests(&live) as f64 / clean_requests as f64 / 2.0).min(0.5),
    };
    let mut stores_seen = 0;
    let killed = kill_until_done(
        0x5eed_a0a0,
        scaled(6, 40),
        clean_run.elapsed,
        || {
            let mut command = export(&live);
            command.arg("--output").arg(&output).args(args);
            command
        },
        progress,
        |_| {
            assert_consistent(&output, &clean);
            // The store and its journal as a kill leaves them: private like the rest.
            stores_seen += usize::from(state.join("authz.sqlite").exists());
            #[cfg(unix)]
            assert_private(dir.path());
        },
    );
    let sent = authz_requests(&live);
    eprintln!(
        "{users} users, clean run {:.2}s and {clean_requests} role/org requests; {}; {sent} \
         role/org requests in all; the store seen after {stores_seen} kills; last run {}",
        clean_run.elapsed.as_secs_f64(),
        killed.describe(),
        killed
            .last
            .as_ref()
            .map_or("killed after it completed".into(), |r| r.summary()["authz"]
                .to_string())
    );
    assert!(read(&output) == clean, "after the kills the file differs");
    assert!(killed.mid_run * 2 >= killed.points.len());
    assert!(killed.mid_progress >= 1);
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let file = state.join(format!("authz.sqlite{suffix}"));
        assert!(!file.exists(), "{} left after completion", file.display());
    }
    #[cfg(unix)]
    {
        assert_eq!(mode(&output), 0o600);
        assert_private(&state);
    }
    if let Some(last) = &killed.last {
        let counted = last.summary()["authz"]["requests"].as_u64().unwrap();
        let lost = killed.mid_run as u64 * AT_ONCE;
        assert!(
            counted.abs_diff(sent) <= lost,
            "the summary counts {counted} of the {sent} role/org requests sent over {} kills",
            killed.mid_run
        );
    }
    let allowed = bound(&clean_authz) + (killed.mid_run as u64 * AT_ONCE) as f64;
    assert!(
        sent as f64 <= allowed,
        "{sent} role/org requests over {} kills: more than the bound plus the pages in flight \
         ({allowed:.0})",
        killed.mid_run
    );
}

/// While an export reads roles the store's files (the database and its WAL journal) are
/// private from their creation on.
#[cfg(unix)]
#[test]
fn the_store_and_its_journal_are_private_while_the_export_runs() {
    let live = slow_authz_tenant(2_000);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("users.ndjson");
    let state = state_of(&output);
    let running = Running::spawn(
        export(&live)
            .arg("--output")
            .arg(&output)
            .args(["--include", "roles,organizations"]),
    );
    let wal = state.join("authz.sqlite-wal");
    wait_until(Duration::from_secs(60), "the store's journal", || {
        wal.exists() && authz_requests(&live) > 5
    });
    for suffix in ["", "-wal", "-shm"] {
        let file = state.join(format!("authz.sqlite{suffix}"));
        if let Ok(meta) = std::fs::metadata(&file) {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                meta.permissions().mode() & 0o777,
                0o600,
                "{}",
                file.display()
            );
        }
    }
    running.wait().expect_code(0);
    assert!(!state.join("authz.sqlite").exists());
}

// ---- 5. scopes, bad lists, the job engine -------------------------------------------------------

/// `export --output OUTPUT --include INCLUDE` run to its end.
fn export_including(live: &Live, output: &Path, include: &str) -> Ran {
    run(export(live)
        .arg("--output")
        .arg(output)
        .args(["--include", include]))
}

#[test]
fn a_token_without_a_scope_include_needs_is_refused_with_exit_2_naming_it_before_any_user() {
    for (missing, include) in [
        ("read:roles", "roles"),
        ("read:role_members", ALL),
        ("read:organization_members", "organizations"),
        (
            "read:organization_member_roles",
            "organizations,permissions",
        ),
    ] {
        let live = tenant_lacking(
            missing,
            SandboxOptions {
                generate: 200,
                ..Default::default()
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("users.ndjson");
        let ran = export_including(&live, &output, include);
        assert_eq!(ran.code(), Some(2), "{missing}: {}", ran.stderr);
        assert!(
            ran.stderr.contains(missing) && ran.stderr.contains("--include"),
            "{missing}: {}",
            ran.stderr
        );
        let users_read = live
            .api_requests()
            .iter()
            .filter(|r| r.path.starts_with("/api/v2/users") || r.path.starts_with("/api/v2/roles"))
            .count();
        assert_eq!(users_read, 0, "{missing}: requests before the refusal");
        assert!(!output.exists());
        assert!(
            !dir.path().join("users.ndjson.partial").exists(),
            "{missing}: no user written"
        );
    }
    // Direct permissions need read:users only.
    let live = tenant_lacking(
        "read:roles",
        SandboxOptions {
            generate: 200,
            ..Default::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _) = clean_export(&live, dir.path(), "p.ndjson", &["--include", "permissions"]);
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(text, expected_with(&live, &evidence(&live), "permissions"));
}

#[test]
fn an_include_list_with_a_bad_name_is_refused_with_exit_2_before_any_request() {
    let live = Live::generated(50);
    let dir = tempfile::tempdir().unwrap();
    for (list, says) in [
        (
            "roles,groups",
            "`groups` is not one of roles, organizations, permissions",
        ),
        ("roles,", "empty"),
    ] {
        let output = dir.path().join("users.ndjson");
        let ran = export_including(&live, &output, list);
        assert_eq!(ran.code(), Some(2), "{list}: {}", ran.stderr);
        assert!(
            ran.stderr.contains("--include") && ran.stderr.contains(says),
            "{list}: {}",
            ran.stderr
        );
        assert!(live.api_requests().is_empty(), "{list}: a request was sent");
        assert!(!output.exists());
    }
}

#[test]
fn include_permissions_through_the_job_engine_equals_the_api_engines_output() {
    let live = Live::start(SandboxOptions {
        generate: 600,
        job_rate: 100_000.0,
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let by_id = |text: &str| -> BTreeMap<String, User> {
        ndjson_users(text)
            .into_iter()
            .map(|u| (user_id(&u).to_string(), u))
            .collect()
    };
    for include in ["permissions", ALL] {
        let args = ["--include", include, "--json"];
        let (api, _) = clean_export(&live, dir.path(), "api.ndjson", &args);
        let output = dir.path().join("job.ndjson");
        let ran = run(export(&live)
            .arg("--output")
            .arg(&output)
            .args(args)
            .args(["--engine", "job"]));
        ran.expect_code(0);
        let summary = ran.summary();
        assert!(summary.get("job").is_some(), "{summary}");
        let (api, job) = (
            by_id(&String::from_utf8(api).unwrap()),
            by_id(&read_text(&output)),
        );
        assert_eq!(job.len(), 600, "{include}");
        let truth = evidence(&live);
        for (id, user) in &job {
            for key in keys_of(include) {
                assert_eq!(user[key], truth[id][key], "{include}: {id}'s {key}");
            }
        }
        assert!(
            job == api,
            "{include}: the job engine's users differ from the API's"
        );
        assert_eq!(
            summary["authz"]["permission_requests"], 600,
            "{include}: {summary}"
        );
    }
}
