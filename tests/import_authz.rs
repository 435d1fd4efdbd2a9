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
    INCLUDE_ALL, KEYS, assert_same_access, copy_apis, evidence, organization_names, role_names,
    writes_sent,
};
use crate::support::child::run;
use crate::support::exports::export;
use crate::support::imports::{
    DB, LedgerView, assert_adds_up, beside, count, empty_tenant, import, import_file,
    import_progress, ledger_bytes, read_ndjson, write_ndjson,
};
use crate::support::jobs::{
    COUNTS_AFTER_KILLS, Ended, assert_ends_as_clean, rejects_by_line, requests_of,
};
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
        want.values()
            .filter(|a| a["organizations"] != json!([]))
            .count()
            > n / 20,
        "the source has memberships to carry"
    );
    assert_same_access(
        &evidence(&target),
        &want,
        "the target's access against the source's",
    );
    assert_no_duplicate_names(&target);
}

// ---- 2. kills, and a re-run that sends no write -----------------------------------------------

/// Latency of the kill test's tenants: an import of a few hundred users with their access
/// lasts a couple of seconds, so kills land among a user's access writes.
const KILL_LATENCY: Duration = Duration::from_millis(20);

/// `dir/NAME/users.ndjson`, a copy of `input` (its state and rejects beside it).
fn copy_input(input: &Path, dir: &Path, name: &str) -> PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir(&folder).unwrap();
    let path = folder.join("users.ndjson");
    std::fs::copy(input, &path).unwrap();
    path
}

/// Successful `POST path` requests the tenant answered.
fn made(live: &Live, route: &str) -> u64 {
    live.tenant
        .sandbox
        .stats()
        .requests
        .get(route)
        .map_or(0, |by| {
            by.iter()
                .filter(|(status, _)| (200..300).contains(*status))
                .map(|(_, n)| n)
                .sum()
        })
}

#[test]
fn an_import_with_access_killed_at_seeded_points_ends_as_a_clean_run_and_a_rerun_only_reads() {
    let seed = 0xacce_5500_u64;
    let n = scaled(400, 3_000);
    let source = Live::generated(n);
    let dir = tempfile::tempdir().unwrap();
    let exported = export_with_access(&source, dir.path());
    let want = evidence(&source);
    let slow = || SandboxOptions {
        latency: KILL_LATENCY,
        ..Default::default()
    };
    let mut args = UPSERT.to_vec();
    args.extend(CREATE_MISSING);
    args.extend(["--quiet", "--json"]);
    let command = |live: &Live, input: &Path| {
        let mut command = import(live);
        command.arg("--input").arg(input).args(&args);
        command
    };

    let clean_target = target_for(&source, slow());
    let clean_input = copy_input(&exported, dir.path(), "clean");
    let clean = run(&mut command(&clean_target, &clean_input));
    clean.expect_code(0);
    let clean_summary = clean.summary();
    let clean_ledger = ledger_bytes(&beside(&clean_input, ".state"));

    let target = target_for(&source, slow());
    let input = copy_input(&exported, dir.path(), "killed");
    let state = beside(&input, ".state");
    let progress = || import_progress(&state, clean_ledger);
    // Users a kill left with part of their access: created, some writes done, some not.
    let mut partial = 0;
    let after_kill = |_| {
        let ledger = LedgerView::read(&state);
        let twice = ledger.outcomes.values().filter(|o| o.len() > 1).count();
        assert_eq!(twice, 0, "records with two outcomes after a kill");
        partial += evidence(&target)
            .iter()
            .filter(|(email, got)| {
                let empty = KEYS.iter().all(|k| got[*k] == json!([]));
                !empty && want.get(*email) != Some(*got)
            })
            .count();
    };
    let killed = kill_until_done(
        seed,
        scaled(8, 40),
        clean.elapsed,
        || command(&target, &input),
        progress,
        after_kill,
    );
    eprintln!(
        "{n} users, clean run {:.2}s ({clean_summary}); seed {seed:#x}: {}; {partial} users \
         left with part of their access at the kills",
        clean.elapsed.as_secs_f64(),
        killed.describe(),
    );
    assert!(killed.mid_run >= 5, "at least five kills landed mid-run");
    assert!(killed.mid_progress >= 1, "a kill came after part was done");
    assert!(partial >= 1, "a kill came among a user's access writes");

    // The target is the clean run's (and the source's); the ledger has one outcome a record;
    // the counts are a clean run's, `updated` and `unchanged` together (a user whose outcome a
    // kill lost may find its access written already).
    assert_same_access(&evidence(&target), &want, "the killed import's target");
    assert_same_access(&evidence(&clean_target), &want, "the clean import's target");
    match &killed.last {
        Some(last) => {
            assert_ends_as_clean(
                &Ended::of(&target, &input, &last.summary()),
                &Ended::of(&clean_target, &clean_input, &clean_summary),
                n,
                &COUNTS_AFTER_KILLS,
            );
        }
        None => eprintln!("the last kill came after the import completed"),
    }
    let ledger = LedgerView::read(&state);
    assert_eq!(ledger.done(), n as u64);
    assert!(ledger.outcomes.values().all(|o| o.len() == 1));

    // Each role and organization was created once: the tenant's names, each once, are the
    // clean run's, and as many creates succeeded as there are names.
    assert_no_duplicate_names(&target);
    let (roles, orgs) = (role_names(&target), organization_names(&target));
    assert_eq!(sorted(roles.clone()), sorted(role_names(&clean_target)));
    assert_eq!(
        sorted(orgs.clone()),
        sorted(organization_names(&clean_target))
    );
    assert_eq!(made(&target, "POST /api/v2/roles"), roles.len() as u64);
    assert_eq!(
        made(&target, "POST /api/v2/organizations"),
        orgs.len() as u64
    );

    // The finished import again: its state says it completed, so it is a new import, which
    // finds every user with the access its record says, and sends only reads.
    target.tenant.sandbox.reset_stats();
    let again = run(&mut command(&target, &input));
    again.expect_code(0);
    let summary = again.summary();
    assert_eq!(summary["resumed"], false, "{summary}");
    assert_eq!(count(&summary, "unchanged"), n as u64, "{summary}");
    assert_eq!(writes_sent(&target), Vec::<String>::new(), "only reads");
    assert_same_access(&evidence(&target), &want, "the target after the re-run");
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

// ---- 3. --authz replace and merge, and their dry run ------------------------------------------

const API: &str = "https://api.test/";

fn perms(names: &[&str]) -> Value {
    let list: Vec<Value> = names
        .iter()
        .map(|p| json!({"resource_server_identifier": API, "permission_name": p}))
        .collect();
    Value::Array(list)
}

/// A user of the replace tests, `auth0|NAME`, holding `access` (the seed file's keys).
fn seeded_user(name: &str, access: Value) -> Value {
    let mut user = json!({
        "user_id": format!("auth0|{name}"),
        "email": format!("{name}@example.com"),
        "name": name,
        "picture": "https://example.com/p.png",
        "identities": [{"connection": DB, "user_id": name, "provider": "auth0", "isSocial": false}],
        "created_at": "2024-01-01T00:00:00.000Z",
        "updated_at": "2024-01-01T00:00:00.000Z",
    });
    for (key, value) in access.as_object().unwrap() {
        user[key] = value.clone();
    }
    user
}

/// The replace tests' users: `(name, what they hold before, their record's access)`.
/// - `both` has extra roles, memberships, member roles and permissions, and lacks some;
/// - `extras` only has extras;
/// - `same` holds exactly what its record says;
/// - `partial`'s record names only its roles (none): its memberships and permissions are left
///   alone even by `replace`.
fn replace_cases() -> Vec<(&'static str, Value, Value)> {
    vec![
        (
            "both",
            json!({"roles": ["Extra", "Reader"],
                   "organizations": [{"name": "acme", "roles": ["Extra", "Reader"]},
                                     {"name": "globex", "roles": []}],
                   "permissions": perms(&["delete", "read"])}),
            json!({"roles": ["Reader", "Writer"],
                   "organizations": [{"name": "acme", "roles": ["Reader", "Writer"]},
                                     {"name": "initech", "roles": ["Writer"]}],
                   "permissions": perms(&["read", "write"])}),
        ),
        (
            "extras",
            json!({"roles": ["Extra", "Reader"],
                   "organizations": [{"name": "acme", "roles": ["Reader"]},
                                     {"name": "globex", "roles": ["Extra"]}],
                   "permissions": perms(&["delete", "read"])}),
            json!({"roles": ["Reader"],
                   "organizations": [{"name": "acme", "roles": ["Reader"]}],
                   "permissions": perms(&["read"])}),
        ),
        (
            "same",
            json!({"roles": ["Writer"], "organizations": [{"name": "acme", "roles": []}],
                   "permissions": []}),
            json!({"roles": ["Writer"], "organizations": [{"name": "acme", "roles": []}],
                   "permissions": []}),
        ),
        (
            "partial",
            json!({"roles": ["Extra"], "organizations": [{"name": "globex", "roles": ["Extra"]}],
                   "permissions": perms(&["delete"])}),
            json!({"roles": []}),
        ),
    ]
}

/// A tenant seeded with [`replace_cases`]' users as they are before, and a user (not in the
/// records) who holds every role, organization and permission the records name, so that each
/// exists; and the records in `dir/users.ndjson`.
fn replace_setup(dir: &Path) -> (Live, PathBuf) {
    let holder = seeded_user(
        "holder",
        json!({"roles": ["Extra", "Reader", "Writer"],
               "organizations": [{"name": "acme"}, {"name": "globex"}, {"name": "initech"}],
               "permissions": perms(&["delete", "read", "write"])}),
    );
    let mut users = vec![holder];
    let mut records = Vec::new();
    for (name, before, record) in replace_cases() {
        users.push(seeded_user(name, before));
        let mut record = record;
        record["user_id"] = json!(format!("auth0|{name}"));
        record["email"] = json!(format!("{name}@example.com"));
        records.push(record);
    }
    let seed = dir.join("seed.ndjson");
    write_ndjson(&seed, &users);
    let live = Live::start(SandboxOptions {
        seed: vec![seed],
        ..Default::default()
    });
    let input = dir.join("users.ndjson");
    write_ndjson(&input, &records);
    (live, input)
}

/// The evidence's shape of `access`: all three keys (empty where absent).
fn full(access: Value) -> Value {
    let mut out = json!({"roles": [], "organizations": [], "permissions": []});
    for (key, value) in access.as_object().unwrap() {
        out[key] = value.clone();
    }
    out
}

/// What `--authz replace` leaves each user with: the record's keys, the rest as before.
fn after_replace() -> BTreeMap<String, Value> {
    replace_cases()
        .into_iter()
        .map(|(name, before, record)| {
            let mut want = full(before);
            for (key, value) in record.as_object().unwrap() {
                want[key] = value.clone();
            }
            (format!("{name}@example.com"), want)
        })
        .collect()
}

/// What `--authz merge` leaves each user with: only `both` lacked something.
fn after_merge() -> BTreeMap<String, Value> {
    let mut want: BTreeMap<String, Value> = replace_cases()
        .into_iter()
        .map(|(name, before, _)| (format!("{name}@example.com"), full(before)))
        .collect();
    want.insert(
        "both@example.com".into(),
        json!({"roles": ["Extra", "Reader", "Writer"],
               "organizations": [{"name": "acme", "roles": ["Extra", "Reader", "Writer"]},
                                 {"name": "globex", "roles": []},
                                 {"name": "initech", "roles": ["Writer"]}],
               "permissions": perms(&["delete", "read", "write"])}),
    );
    want
}

/// The evidence without the holder.
fn users_of_records(live: &Live) -> BTreeMap<String, Value> {
    let mut got = evidence(live);
    got.remove("holder@example.com")
        .expect("the holder is there");
    got
}

const UPDATE: [&str; 2] = ["--mode", "update"];

#[test]
fn authz_replace_takes_away_exactly_the_extras_and_adds_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (live, input) = replace_setup(dir.path());
    let holder = evidence(&live)["holder@example.com"].clone();
    let mut args = UPDATE.to_vec();
    args.extend(["--authz", "replace"]);
    let ran = import_file(&live, &input, &args);
    ran.expect_code(0);
    let summary = ran.summary();
    assert_eq!(
        (count(&summary, "updated"), count(&summary, "unchanged")),
        (3, 1),
        "{summary}"
    );
    assert_same_access(&users_of_records(&live), &after_replace(), "after replace");
    assert_eq!(
        evidence(&live)["holder@example.com"],
        holder,
        "a user without a record is left alone"
    );

    // Run again: each user has what its record says, so only reads go out.
    live.tenant.sandbox.reset_stats();
    let again = import_file(&live, &input, &args);
    again.expect_code(0);
    assert_eq!(count(&again.summary(), "unchanged"), 4);
    assert_eq!(writes_sent(&live), Vec::<String>::new(), "only reads");
}

/// `auth0-bulk undo STATE` against `live`.
fn undo(live: &Live, state: &Path) -> crate::support::child::Ran {
    run(crate::support::child::binary()
        .arg("undo")
        .arg(state)
        .args(["--domain", live.domain(), "--json", "--quiet"])
        .env("AUTH0_CLIENT_ID", live.client_id())
        .env("AUTH0_CLIENT_SECRET", live.client_secret()))
}

/// An undo gives every user back exactly the roles, memberships (with member roles) and
/// direct permissions it had before the import, for `replace` (which took some away) and
/// `merge` (which only added); an undo run again sends only reads.
#[test]
fn an_undo_gives_back_exactly_the_access_an_import_changed() {
    for strategy in ["replace", "merge"] {
        let dir = tempfile::tempdir().unwrap();
        let (live, input) = replace_setup(dir.path());
        let before = evidence(&live);
        let mut args = UPDATE.to_vec();
        args.extend(["--authz", strategy]);
        import_file(&live, &input, &args).expect_code(0);
        assert_ne!(
            evidence(&live),
            before,
            "{strategy}: the import changed access"
        );

        let state = beside(&input, ".state");
        let images = std::fs::read_to_string(state.join("before-images.ndjson")).unwrap();
        let access_images = images
            .lines()
            .filter(|l| l.contains("\"access\":true"))
            .count();
        let changed = if strategy == "replace" { 3 } else { 1 };
        assert_eq!(
            access_images, changed,
            "{strategy}: one access image per changed user\n{images}"
        );

        let undone = undo(&live, &state);
        undone.expect_code(0);
        assert_same_access(
            &evidence(&live),
            &before,
            &format!("{strategy}: after the undo"),
        );

        live.tenant.sandbox.reset_stats();
        undo(&live, &state).expect_code(0);
        assert_eq!(
            writes_sent(&live),
            Vec::<String>::new(),
            "{strategy}: undo again only reads"
        );
        assert_same_access(
            &evidence(&live),
            &before,
            &format!("{strategy}: after a second undo"),
        );
    }
}

#[test]
fn authz_merge_on_the_same_tenant_only_adds() {
    let dir = tempfile::tempdir().unwrap();
    let (live, input) = replace_setup(dir.path());
    let ran = import_file(&live, &input, &UPDATE);
    ran.expect_code(0);
    let summary = ran.summary();
    assert_eq!(
        (count(&summary, "updated"), count(&summary, "unchanged")),
        (1, 3),
        "{summary}"
    );
    assert_same_access(&users_of_records(&live), &after_merge(), "after merge");
    assert!(
        writes_sent(&live).iter().all(|w| w.starts_with("POST ")),
        "merge only adds: {:?}",
        writes_sent(&live)
    );
}

#[test]
fn an_authz_replace_dry_run_plans_each_role_organization_and_permission_change_and_only_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (live, input) = replace_setup(dir.path());
    let before = evidence(&live);
    let plan = dir.path().join("plan.ndjson");
    let mut args = UPDATE.to_vec();
    args.extend(["--authz", "replace", "--dry-run", "--plan"]);
    let ran = run(import(&live)
        .arg("--input")
        .arg(&input)
        .args(&args)
        .arg(&plan)
        .arg("--json"));
    ran.expect_code(0);
    assert_eq!(ran.summary()["dry_run"], true);
    let p = |name: &str| format!("{API}:{name}");
    let want: BTreeMap<u64, (&str, Vec<String>)> = BTreeMap::from([
        (
            1,
            (
                "would_update",
                vec![
                    "roles +Writer -Extra".to_string(),
                    "organizations.acme.roles +Writer -Extra".into(),
                    "organizations +initech".into(),
                    "organizations.initech.roles +Writer".into(),
                    "organizations -globex".into(),
                    format!("permissions +{} -{}", p("write"), p("delete")),
                ],
            ),
        ),
        (
            2,
            (
                "would_update",
                vec![
                    "roles -Extra".to_string(),
                    "organizations -globex".into(),
                    format!("permissions -{}", p("delete")),
                ],
            ),
        ),
        (3, ("unchanged", vec![])),
        (4, ("would_update", vec!["roles -Extra".to_string()])),
    ]);
    let got: BTreeMap<u64, (String, Vec<String>)> = read_ndjson(&plan)
        .into_iter()
        .map(|entry| {
            let changes = entry.get("changes").map_or(Vec::new(), |c| {
                c.as_array()
                    .unwrap()
                    .iter()
                    .map(|c| {
                        format!(
                            "{} {}",
                            c["path"].as_str().unwrap(),
                            c["change"].as_str().unwrap()
                        )
                    })
                    .collect()
            });
            (
                entry["line"].as_u64().unwrap(),
                (entry["action"].as_str().unwrap().to_string(), changes),
            )
        })
        .collect();
    let got: BTreeMap<u64, (&str, Vec<String>)> = got
        .iter()
        .map(|(l, (a, c))| (*l, (a.as_str(), c.clone())))
        .collect();
    assert_eq!(got, want, "the plan");
    // The log says the same, line by line.
    assert!(
        ran.stderr
            .contains("Line 2: would update auth0|extras: roles -Extra, organizations -globex"),
        "{}",
        ran.stderr
    );
    assert_eq!(writes_sent(&live), Vec::<String>::new(), "only reads");
    assert_eq!(evidence(&live), before, "nothing changed");
}

// ---- 4. bad input -----------------------------------------------------------------------------

/// A record for a new user `NAME@example.com` in the default connection, with `access`.
fn new_record(name: &str, access: Value) -> Value {
    let mut record = json!({"email": format!("{name}@example.com"), "connection": DB});
    for (key, value) in access.as_object().unwrap() {
        record[key] = value.clone();
    }
    record
}

/// Fifty-one role names.
fn too_many_roles() -> Value {
    json!((0..51).map(|i| format!("Role {i:02}")).collect::<Vec<_>>())
}

#[test]
fn unknown_names_and_limits_reject_the_record_before_its_user_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let (live, _) = replace_setup(dir.path());
    let records = [
        new_record("good", json!({"roles": ["Reader"]})),
        // Names are listed as the record lists them, not sorted.
        new_record("badrole", json!({"roles": ["Reader", "Nope"]})),
        new_record(
            "badorg",
            json!({"organizations": [{"name": "nope-org"}, {"name": "acme"}]}),
        ),
        new_record("toomany", json!({"roles": too_many_roles()})),
        new_record(
            "badapi",
            json!({"permissions": [{"resource_server_identifier": "https://unknown.test/",
                                    "permission_name": "read"}]}),
        ),
        new_record("plain", json!({})),
        new_record(
            "badmember",
            json!({"organizations": [{"name": "acme", "roles": ["Writer", "Nope"]}]}),
        ),
    ];
    let input = dir.path().join("bad.ndjson");
    write_ndjson(&input, &records);
    let ran = import_file(&live, &input, &["--passwords", "random"]);
    ran.expect_code(3);
    let summary = ran.summary();
    eprintln!("{summary}");
    let rejects = rejects_by_line(&beside(&input, ".rejects.ndjson"));
    let field = |line: u64| rejects[&line].2.as_deref().map(str::to_string);
    let code = |line: u64| rejects[&line].0.clone();
    assert_eq!(
        rejects.keys().copied().collect::<Vec<_>>(),
        [2, 3, 4, 5, 7],
        "{rejects:?}"
    );
    assert_eq!(
        (code(2), field(2)),
        ("unknown_role".into(), Some("roles[1]".into())),
        "{:?}",
        rejects[&2]
    );
    assert!(rejects[&2].1.contains("\"Nope\""), "{:?}", rejects[&2]);
    assert_eq!(
        (code(3), field(3)),
        (
            "unknown_organization".into(),
            Some("organizations[0].name".into())
        ),
        "{:?}",
        rejects[&3]
    );
    assert_eq!(
        (code(4), field(4)),
        ("invalid_field".into(), Some("roles".into())),
        "{:?}",
        rejects[&4]
    );
    assert_eq!(
        (code(5), field(5)),
        (
            "unknown_permission".into(),
            Some("permissions[0].resource_server_identifier".into())
        ),
        "{:?}",
        rejects[&5]
    );
    assert!(
        rejects[&5].1.contains("\"https://unknown.test/\""),
        "the message names the API: {:?}",
        rejects[&5]
    );
    assert_eq!(
        (code(7), field(7)),
        (
            "unknown_role".into(),
            Some("organizations[0].roles[1]".into())
        ),
        "{:?}",
        rejects[&7]
    );
    let got = evidence(&live);
    // The tenant's APIs are listed first, so an unknown one is found before the user is made.
    for name in ["badrole", "badorg", "toomany", "badapi", "badmember"] {
        assert!(
            !got.contains_key(&format!("{name}@example.com")),
            "{name}'s user was not created"
        );
    }
    assert_eq!(got["good@example.com"]["roles"], json!(["Reader"]));
    assert!(got.contains_key("plain@example.com"));

    // A user that exists is not touched either: no patch of its profile.
    let found = dir.path().join("found.ndjson");
    write_ndjson(
        &found,
        &[
            json!({"user_id": "auth0|same", "email": "same@example.com", "connection": DB,
                 "name": "Another Name", "roles": ["Nope"]}),
        ],
    );
    live.tenant.sandbox.reset_stats();
    let ran = import_file(
        &live,
        &found,
        &["--mode", "upsert", "--passwords", "random"],
    );
    ran.expect_code(3);
    assert_eq!(
        rejects_by_line(&beside(&found, ".rejects.ndjson"))[&1].0,
        "unknown_role"
    );
    assert_eq!(writes_sent(&live), Vec::<String>::new(), "nothing written");
}

#[test]
fn fifty_one_roles_are_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let live = empty_tenant();
    let input = dir.path().join("users.ndjson");
    write_ndjson(
        &input,
        &[new_record("many", json!({"roles": too_many_roles()}))],
    );
    let ran = import_file(&live, &input, &["--passwords", "random"]);
    ran.expect_code(3);
    let rejects = rejects_by_line(&beside(&input, ".rejects.ndjson"));
    assert_eq!(rejects[&1].0, "invalid_field");
    assert_eq!(rejects[&1].2.as_deref(), Some("roles"));
    assert!(rejects[&1].1.contains("51"), "{:?}", rejects[&1]);
    assert_eq!(live.api_requests(), Vec::new(), "no request");
}

#[test]
fn create_missing_accepts_only_roles_and_organizations() {
    let dir = tempfile::tempdir().unwrap();
    let live = empty_tenant();
    let input = dir.path().join("users.ndjson");
    write_ndjson(&input, &[new_record("one", json!({"roles": ["Admin"]}))]);
    let ran = import_file(
        &live,
        &input,
        &["--passwords", "random", "--create-missing", "groups"],
    );
    ran.expect_code(2);
    assert!(ran.stderr.contains("groups"), "{}", ran.stderr);
    assert_eq!(live.api_requests(), Vec::new(), "no request");
    assert!(!beside(&input, ".state").exists(), "no state");
}

#[test]
fn records_without_access_keys_send_no_access_request() {
    let dir = tempfile::tempdir().unwrap();
    let live = empty_tenant();
    let input = dir.path().join("users.ndjson");
    let records: Vec<Value> = (0..20)
        .map(|i| new_record(&format!("plain{i}"), json!({})))
        .collect();
    write_ndjson(&input, &records);
    let ran = import_file(
        &live,
        &input,
        &["--passwords", "random", "--authz", "replace"],
    );
    ran.expect_code(0);
    assert_eq!(count(&ran.summary(), "created"), 20);
    let routes: BTreeMap<String, u64> = live
        .tenant
        .sandbox
        .stats()
        .requests
        .into_iter()
        .filter(|(route, _)| route.contains("/api/v2/"))
        .map(|(route, by)| (route, by.values().sum()))
        .collect();
    assert_eq!(
        routes,
        BTreeMap::from([("POST /api/v2/users".to_string(), 20)]),
        "one create a record, as before"
    );
    for access in evidence(&live).values() {
        assert_eq!(
            access,
            &json!({"roles": [], "organizations": [], "permissions": []})
        );
    }
}

// ---- 5. the job engine ------------------------------------------------------------------------

#[test]
fn access_through_the_job_engine_gives_the_target_the_api_engine_gives() {
    let n = 300;
    let source = Live::generated(n);
    let dir = tempfile::tempdir().unwrap();
    let exported = export_with_access(&source, dir.path());
    let fast_jobs = || SandboxOptions {
        job_rate: 2_000.0,
        ..Default::default()
    };
    let mut args = vec!["--passwords", "random"];
    args.extend(CREATE_MISSING);

    let api = target_for(&source, fast_jobs());
    let api_input = copy_input(&exported, dir.path(), "api");
    import_file(&api, &api_input, &args).expect_code(0);

    let jobs = target_for(&source, fast_jobs());
    let jobs_input = copy_input(&exported, dir.path(), "jobs");
    let mut job_args = args.clone();
    job_args.extend(["--engine", "job"]);
    let ran = import_file(&jobs, &jobs_input, &job_args);
    ran.expect_code(0);
    let summary = ran.summary();
    eprintln!("{n} users through jobs: {summary}");
    assert_eq!(count(&summary, "created"), n as u64, "{summary}");
    assert!(
        requests_of(&jobs, "POST /api/v2/jobs/users-imports") >= 1,
        "the users came by job"
    );
    assert_eq!(
        requests_of(&jobs, "POST /api/v2/users"),
        0,
        "no user by API"
    );

    let want = evidence(&source);
    assert_same_access(&evidence(&api), &want, "the API engine's target");
    assert_same_access(&evidence(&jobs), &want, "the job engine's target");
    assert_no_duplicate_names(&jobs);
}

// ---- 6. --create-missing under concurrency ----------------------------------------------------

#[test]
fn many_records_naming_the_same_missing_role_at_once_create_it_once() {
    let n = 200;
    let dir = tempfile::tempdir().unwrap();
    // Answers slow enough that many records are in flight at once.
    let live = Live::start(SandboxOptions {
        latency: Duration::from_millis(10),
        ..Default::default()
    });
    let access = json!({"roles": ["Shared Role"],
                        "organizations": [{"name": "shared-org", "roles": ["Member Role"]}]});
    let records: Vec<Value> = (0..n)
        .map(|i| new_record(&format!("same{i}"), access.clone()))
        .collect();
    let input = dir.path().join("users.ndjson");
    write_ndjson(&input, &records);
    let mut args = vec!["--passwords", "random"];
    args.extend(CREATE_MISSING);
    let ran = import_file(&live, &input, &args);
    ran.expect_code(0);
    assert_eq!(count(&ran.summary(), "created"), n as u64);
    assert_eq!(
        (
            requests_of(&live, "POST /api/v2/roles"),
            requests_of(&live, "POST /api/v2/organizations")
        ),
        (2, 1),
        "each missing name created once (two roles, one organization)"
    );
    assert_eq!(sorted(role_names(&live)), ["Member Role", "Shared Role"]);
    assert_eq!(organization_names(&live), ["shared-org"]);
    let want = json!({"roles": ["Shared Role"],
                      "organizations": [{"name": "shared-org", "roles": ["Member Role"]}],
                      "permissions": []});
    for (email, got) in evidence(&live) {
        assert_eq!(got, want, "{email}");
    }
}

/// An `--authz replace` of every user's access, killed at seeded points, then undone: every
/// user ends with exactly the access it had before the import. Each user's access image is
/// kept once, before its first write, so no kill leaves a user whose image holds part of the
/// import's changes.
#[test]
fn an_access_replace_killed_at_seeded_points_is_undone_exactly() {
    let seed = 0x0add_u64;
    let n = scaled(300, 2_000);
    let live = Live::start(SandboxOptions {
        generate: n,
        latency: KILL_LATENCY,
        ..Default::default()
    });
    let before = evidence(&live);
    let role = role_names(&live)[0].clone();
    let records: Vec<Value> = crate::support::imports::tenant_users(&live)
        .keys()
        .map(|id| json!({"user_id": id, "roles": [role], "organizations": [], "permissions": []}))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("users.ndjson");
    write_ndjson(&input, &records);
    let state = beside(&input, ".state");
    let command = || {
        let mut command = import(&live);
        command.arg("--input").arg(&input).args([
            "--mode", "update", "--match", "user_id", "--authz", "replace", "--quiet", "--json",
        ]);
        command
    };
    let progress = || {
        let completed = std::fs::read_to_string(state.join("import.json"))
            .is_ok_and(|t| t.contains("\"completed\":true") || t.contains("\"completed\": true"));
        match completed {
            true => 1.0,
            false => (LedgerView::read(&state).done() as f64 / n as f64).min(0.999),
        }
    };
    let killed = kill_until_done(
        seed,
        scaled(8, 20),
        KILL_LATENCY * (n as u32) / 4,
        command,
        progress,
        |_| {},
    );
    eprintln!(
        "{n} users, access replaced; seed {seed:#x}: {}",
        killed.describe()
    );
    assert!(
        killed.mid_run >= 3,
        "kills landed mid-run: {}",
        killed.describe()
    );
    let replaced = json!({"roles": [role], "organizations": [], "permissions": []});
    assert!(
        evidence(&live).values().all(|access| *access == replaced),
        "the import gave every user the record's access"
    );

    // One access image a record, whatever the kills.
    let images = std::fs::read_to_string(state.join("before-images.ndjson")).unwrap();
    let mut imaged = std::collections::BTreeSet::new();
    for line in images.lines() {
        let image: Value = serde_json::from_str(line).unwrap();
        if image["_before"]["access"] == true {
            let record = image["_before"]["record"].as_u64().unwrap();
            assert!(
                imaged.insert(record),
                "record {record} has two access images"
            );
        }
    }
    let changed = before
        .values()
        .filter(|access| **access != replaced)
        .count();
    assert_eq!(
        imaged.len(),
        changed,
        "an access image for each user changed"
    );

    undo(&live, &state).expect_code(0);
    assert_same_access(&evidence(&live), &before, "after the undo");
}
