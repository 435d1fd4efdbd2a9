//! Upserts and updates through the job engine (`import --engine job --mode upsert|update`) end
//! to end: users the tenant holds are patched one at a time, the ones it lacks are created
//! once through import jobs (with their password hashes), across kills, in a dry run, and
//! with a token that may not patch (helpers in `support/jobs.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use auth0_bulk::sandbox::SandboxOptions;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use crate::support::child::{Ran, run};
use crate::support::exports::User;
use crate::support::files_under;
use crate::support::imports::{
    DB, assert_adds_up, assert_same_users, beside, count, object, read_ndjson, tenant_users,
};
use crate::support::jobs::*;
use crate::support::live::Live;

const UPSERT: [&str; 2] = ["--mode", "upsert"];
const PATCH: &str = "PATCH /api/v2/users/{id}";

// ---- the tenant before, and what the upsert should make of it ---------------------------------

/// How record `i`'s user stands in the tenant before the import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Before {
    Missing,
    /// There, as the record says: the record changes nothing.
    Same,
    /// There, with other names and metadata.
    Differs,
}

/// Half the users are there, half of those as their record says. Records with a `user_id`
/// ([`records`]: `i % 4 == 1`) are matched by it, the others by email, so each kind has
/// users missing, the same and different. A bad record's user never is.
fn before(i: usize) -> Before {
    if is_bad(i) {
        return Before::Missing;
    }
    match i % 8 {
        1 | 3 => Before::Same,
        5 | 7 => Before::Differs,
        _ => Before::Missing,
    }
}

/// Whether record `i` brings its password as a hash: every other one (all of them missing),
/// and some whose user is there, the same (`i % 8 == 3`) or not (`i % 8 == 5`).
fn brings_hash(i: usize) -> bool {
    has_hash(i) || i % 8 == 3 || i % 8 == 5
}

/// [`records`] with the hashes [`brings_hash`] says.
fn upsert_records(n: usize, tag: &str) -> Vec<Value> {
    records(n, tag)
        .into_iter()
        .enumerate()
        .map(|(i, mut record)| {
            if brings_hash(i) {
                record["custom_password_hash"] = sha256_hash(&legacy_password(i), i);
            }
            record
        })
        .collect()
}

/// The metadata a user that differs from its record holds, besides other names.
fn old_metadata(i: usize) -> (Value, Value) {
    (
        json!({"plan": "legacy", "kept": true, "prefs": {"theme": "light", "font": "serif"}}),
        json!({"tier": 99, "legacy_id": i}),
    )
}

/// Record `i`'s user as the tenant holds it before the import ([`before`]), if it does.
fn user_before(i: usize, record: &Value) -> Option<User> {
    let state = before(i);
    if state == Before::Missing {
        return None;
    }
    let id = expected_id(record);
    let local = id.strip_prefix("auth0|").unwrap();
    let mut user = json!({
        "user_id": id,
        "email": record["email"],
        "email_verified": record["email_verified"],
        "given_name": record["given_name"],
        "family_name": record["family_name"],
        "name": format!("Given{i} Family"),
        "nickname": format!("user{i}"),
        "user_metadata": record["user_metadata"],
        "app_metadata": record["app_metadata"],
        "identities": [{"connection": record["connection"], "user_id": local,
                        "provider": "auth0", "isSocial": false}],
        "created_at": "2024-01-02T03:04:05.000Z",
        "updated_at": "2024-01-02T03:04:05.000Z",
    });
    if state == Before::Differs {
        let (user_metadata, app_metadata) = old_metadata(i);
        user["given_name"] = json!(format!("Old{i}"));
        user["user_metadata"] = user_metadata;
        user["app_metadata"] = app_metadata;
    }
    Some(object(user))
}

/// A tenant (jobs at `job_rate` users a second, every API answer after `latency`) holding the
/// users [`before`] says are there.
fn seeded(records: &[Value], job_rate: f64, latency: Duration) -> Live {
    let live = Live::start(SandboxOptions {
        job_rate,
        latency,
        ..Default::default()
    });
    let users = records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| user_before(i, r));
    live.tenant.sandbox.insert_users(users);
    live
}

/// The good records whose user [`before`] puts in state `state`.
fn good_where(records: &[Value], state: Before) -> Vec<(usize, &Value)> {
    records
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_bad(*i) && before(*i) == state)
        .collect()
}

/// Merges `patch`'s top-level keys into the object `into` (Auth0's PATCH of metadata).
fn merged(into: &Value, patch: &Value) -> Value {
    let mut out: Map<String, Value> = into.as_object().cloned().unwrap_or_default();
    for (key, value) in patch.as_object().unwrap() {
        out.insert(key.clone(), value.clone());
    }
    Value::Object(out)
}

/// What the tenant must hold after an upsert of `records` with `--metadata merge` (the
/// default), in [`tenant_as_expected`]'s terms: every good record's user as the record says,
/// the metadata of a user that differed merged into what it had.
fn expected_after_merge(records: &[Value]) -> BTreeMap<String, User> {
    let mut expected = expected_users(records);
    for (i, record) in good_where(records, Before::Differs) {
        let (user_metadata, app_metadata) = old_metadata(i);
        let user = expected.get_mut(&expected_id(record)).unwrap();
        user.insert(
            "user_metadata".into(),
            merged(&user_metadata, &record["user_metadata"]),
        );
        user.insert(
            "app_metadata".into(),
            merged(&app_metadata, &record["app_metadata"]),
        );
    }
    expected
}

/// `import --engine job --passwords random --mode upsert ARGS --json` on `domain`.
fn upsert(live: &Live, domain: &str, input: &Path, args: &[&str]) -> Ran {
    let mut all = UPSERT.to_vec();
    all.extend_from_slice(args);
    run(&mut job_import(live, domain, input, &all))
}

/// The emails of `records`.
fn emails<'a>(records: impl IntoIterator<Item = &'a Value>) -> BTreeSet<String> {
    records
        .into_iter()
        .map(|r| r["email"].as_str().unwrap().to_string())
        .collect()
}

/// The counts of `summary` an upsert decides: read, created, updated, unchanged, skipped,
/// rejected.
fn outcomes(summary: &Value) -> [u64; 6] {
    [
        "read",
        "created",
        "updated",
        "unchanged",
        "skipped",
        "rejected",
    ]
    .map(|k| count(summary, k))
}

/// The counts a clean upsert of `n` [`upsert_records`] comes to, in [`outcomes`]' order.
fn upsert_counts(records: &[Value]) -> [u64; 6] {
    let n = records.len() as u64;
    let of = |state| good_where(records, state).len() as u64;
    [
        n,
        of(Before::Missing),
        of(Before::Differs),
        of(Before::Same),
        0,
        n - good(records.len()),
    ]
}

// ---- 1. a mixed upsert -------------------------------------------------------------------------

#[test]
fn an_upsert_through_jobs_patches_the_users_found_and_creates_the_missing_ones_once_by_job() {
    let n = 320;
    let records = upsert_records(n, "mixed");
    let live = seeded(&records, 2_000.0, Duration::ZERO);
    let watch = Watch::start(&live);
    let (_dir, path) = input(&records);
    let ran = upsert(&live, watch.domain(), &path, &["--job-file-bytes", "20000"]);
    ran.expect_code(3);
    let summary = ran.summary();
    assert_adds_up(&summary);
    let want = upsert_counts(&records);
    assert_eq!(outcomes(&summary), want, "{summary}");
    let [_, created, updated, unchanged, _, rejected] = want;
    assert!(created > 100 && updated > 30 && unchanged > 30 && rejected > 5);

    // The users that differ, and only they, were patched, once each; no user was created
    // one at a time.
    let differs: BTreeSet<String> = good_where(&records, Before::Differs)
        .iter()
        .map(|(_, r)| expected_id(r))
        .collect();
    let patches = watch.patches();
    let patched: BTreeSet<String> = patches.iter().map(|(id, _, _)| id.clone()).collect();
    assert_eq!(
        patches.len() as u64,
        updated,
        "one PATCH per user that differs"
    );
    assert_eq!(patched, differs, "the users patched are those that differ");
    assert!(patches.iter().all(|(_, _, status)| *status == 200));
    let routes = routes(&live);
    assert_eq!(requests_of(&live, PATCH), updated, "{routes:?}");
    assert!(
        !routes.contains_key("POST /api/v2/users"),
        "no user created one at a time: {routes:?}"
    );
    let stats = live.tenant.sandbox.stats();
    assert_eq!(stats.writes.updated, updated);
    assert_eq!(stats.writes.created, created, "each new user written once");

    // The missing users, and only they, went to jobs, each once.
    let jobs = routes[JOBS_POST].get(&202).copied().unwrap_or(0);
    assert!(jobs >= 2, "the creates went in jobs: {routes:?}");
    let sent: Vec<String> = watch.accepted_emails().into_iter().flatten().collect();
    let unique: BTreeSet<String> = sent.iter().cloned().collect();
    assert_eq!(sent.len(), unique.len(), "no user sent in two jobs");
    let missing: Vec<(usize, &Value)> = good_where(&records, Before::Missing);
    assert_eq!(
        unique,
        emails(missing.iter().map(|(_, r)| *r)),
        "the users sent in jobs are the missing ones"
    );

    // The bad records, and only they, are in the rejects file with their line and reason.
    let rejects = rejects_by_line(&beside(&path, ".rejects.ndjson"));
    let bad_lines: Vec<u64> = (0..n)
        .filter(|i| is_bad(*i))
        .map(|i| i as u64 + 1)
        .collect();
    assert_eq!(rejects.keys().copied().collect::<Vec<_>>(), bad_lines);
    for (line, (code, message, field)) in &rejects {
        assert_eq!(
            (code.as_str(), field.as_deref()),
            ("invalid_field", Some("email")),
            "line {line}: {message}"
        );
        assert!(message.contains("not an email address"), "line {line}");
    }

    // The tenant: every good record's user, merged into what was there.
    assert_same_users(
        &tenant_as_expected(&live),
        &expected_after_merge(&records),
        "the tenant against the records merged into the users before",
    );

    // A new user who brought a hash signs in with the old password; one who was there keeps
    // what it had (here, no password): the hash is taken only when a job creates the user. It
    // is not sent anywhere, and not rejected: the record's other fields are applied.
    for (i, record) in &missing {
        let expected = brings_hash(*i);
        assert_eq!(
            signs_in(&live, record, &legacy_password(*i)),
            expected,
            "new record {i} (hash: {expected})"
        );
    }
    let hashed_there: Vec<(usize, &Value)> = records
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_bad(*i) && before(*i) != Before::Missing && brings_hash(*i))
        .collect();
    assert!(hashed_there.iter().any(|(i, _)| before(*i) == Before::Same));
    assert!(
        hashed_there
            .iter()
            .any(|(i, _)| before(*i) == Before::Differs)
    );
    for (i, record) in &hashed_there {
        assert!(
            !signs_in(&live, record, &legacy_password(*i)),
            "record {i}'s hash was not given to the user that was there"
        );
        assert!(
            !unique.contains(record["email"].as_str().unwrap()),
            "record {i} went to no job"
        );
    }
    // Not dropped silently: the run says so, naming the line of the first few, and counts
    // the rest in its summary.
    let said: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| l.contains("the user exists, so its `custom_password_hash` was not applied"))
        .collect();
    for line in &said {
        assert!(
            hashed_there
                .iter()
                .any(|(i, _)| line.contains(&format!("Line {}: ", i + 1))),
            "{line}"
        );
    }
    assert_eq!(said.len(), hashed_there.len().min(5), "{}", ran.stderr);
    if hashed_there.len() > 5 {
        let more = format!(
            "hash_not_applied: … and {} more like this",
            hashed_there.len() - 5
        );
        assert!(ran.stderr.contains(&more), "{more:?} in:\n{}", ran.stderr);
    }
    for (user, body, _) in &patches {
        let text = body.to_string();
        assert!(
            !text.contains("password") && !text.contains("\"hash\""),
            "no password or hash in the PATCH of {user}: {text}"
        );
    }
    let ledger = crate::support::imports::LedgerView::read(&beside(&path, ".state"));
    let tally = ledger.tally();
    assert_eq!(tally.get("created").copied(), Some(created));
    assert_eq!(tally.get("updated").copied(), Some(updated));
    assert_eq!(tally.get("unchanged").copied(), Some(unchanged));
}

// ---- 2. the same user twice --------------------------------------------------------------------

#[test]
fn a_user_twice_in_the_input_is_created_by_a_job_then_patched_by_its_second_record() {
    let records = vec![
        json!({"email": "twice@example.com", "connection": DB, "given_name": "First",
               "user_metadata": {"plan": "free", "first": true}}),
        json!({"user_id": "twice-id", "email": "twice.id@example.com", "connection": LEGACY,
               "app_metadata": {"tier": 1, "from": "first"}}),
        json!({"email": "other@example.com", "connection": DB}),
        json!({"email": "twice@example.com", "connection": DB, "family_name": "Second",
               "user_metadata": {"plan": "pro", "second": true}}),
        json!({"user_id": "twice-id", "email": "twice.id@example.com", "connection": LEGACY,
               "app_metadata": {"tier": 2}}),
    ];
    let live = tenant(2_000.0);
    let watch = Watch::start(&live);
    let (_dir, path) = input(&records);
    let ran = upsert(&live, watch.domain(), &path, &[]);
    ran.expect_code(0);
    let summary = ran.summary();
    assert_adds_up(&summary);
    assert_eq!(outcomes(&summary), [5, 3, 2, 0, 0, 0], "{summary}");

    // Each user went to a job once, and its second record patched the user the job made.
    let sent: Vec<String> = watch.accepted_emails().into_iter().flatten().collect();
    assert_eq!(sent.len(), 3, "{sent:?}");
    let patched: Vec<String> = watch.patches().into_iter().map(|(id, ..)| id).collect();
    let by_email = expected_id(&records[0]);
    assert_eq!(
        patched.iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([&by_email, &"auth0|twice-id".to_string()]),
        "{patched:?}"
    );
    assert_eq!(live.tenant.sandbox.stats().writes.created, 3);
    let users = tenant_users(&live);
    assert_eq!(users.len(), 3);
    let first = &users[&by_email];
    assert_eq!(first["given_name"], "First");
    assert_eq!(first["family_name"], "Second");
    assert_eq!(
        first["user_metadata"],
        json!({"plan": "pro", "first": true, "second": true})
    );
    assert_eq!(
        users["auth0|twice-id"]["app_metadata"],
        json!({"tier": 2, "from": "first"})
    );
    // The ledger: created, then updated, for each user.
    let ledger = crate::support::imports::LedgerView::read(&beside(&path, ".state"));
    let by_record: Vec<&str> = (1..=5).map(|r| ledger.outcomes[&r][0].as_str()).collect();
    assert_eq!(
        by_record,
        ["created", "created", "created", "updated", "updated"]
    );
}

// ---- 3. deep merges through jobs as through the API ---------------------------------------------

#[test]
fn a_deep_upsert_through_jobs_leaves_the_tenant_as_a_deep_upsert_through_the_api() {
    let n = 160;
    // Without hashes (the API engine takes none) and each with its user_id (Auth0 picks the
    // id of a user created one at a time without one).
    let records: Vec<Value> = records(n, "deep")
        .into_iter()
        .enumerate()
        .map(|(i, mut record)| {
            record["user_id"] = json!(format!("deep{i:05}"));
            if i % 5 == 0 {
                // Deleted deep down, and a nested key changed.
                record["user_metadata"]["prefs"] = json!({"theme": null, "font": "mono"});
            }
            record
        })
        .collect();
    let through = |engine: &str| -> (Live, Value) {
        let live = seeded(&records, 2_000.0, Duration::ZERO);
        let (_dir, path) = input(&records);
        let ran = run(crate::support::imports::import(&live)
            .arg("--input")
            .arg(&path)
            .args(["--engine", engine, "--passwords", "random", "--json"])
            .args(UPSERT)
            .args(["--metadata", "deep", "--job-file-bytes", "10000"]));
        ran.expect_code(3);
        (live, ran.summary())
    };
    let (jobs, jobs_summary) = through("job");
    let (api, api_summary) = through("api");
    assert_eq!(outcomes(&jobs_summary), outcomes(&api_summary));
    assert!(count(&jobs_summary, "created") > 0 && count(&jobs_summary, "updated") > 0);
    assert!(requests_of(&jobs, JOBS_POST) > 0);
    assert_eq!(requests_of(&jobs, "POST /api/v2/users"), 0);
    assert!(requests_of(&api, "POST /api/v2/users") > 0);
    // Both engines' deep merge keep the keys the record does not name, at any depth.
    let users = tenant_users(&jobs);
    let (i, record) = good_where(&records, Before::Differs)[0];
    let user = &users[&expected_id(record)];
    assert_eq!(user["user_metadata"]["kept"], true, "record {i}");
    assert!(user["user_metadata"]["prefs"]["font"].is_string());

    assert_same_users(
        &users_without_times(&jobs),
        &users_without_times(&api),
        "the tenant after --engine job against --engine api",
    );
}

// ---- 4. kills ----------------------------------------------------------------------------------

#[test]
fn an_upsert_through_jobs_killed_at_seeded_points_patches_and_creates_each_user_once() {
    let seed = 0x0b5e_4700_u64;
    let n = 300;
    let records = upsert_records(n, "ucrash");
    // Jobs slow enough to be killed in, answers slow enough for patches to be.
    let (rate, latency) = (CRASH_JOB_RATE, Duration::from_millis(15));
    let args = ["--quiet", "--job-file-bytes", "8000"];

    let clean_live = seeded(&records, rate, latency);
    let (_clean_dir, clean_input) = input(&records);
    let clean = upsert(&clean_live, clean_live.domain(), &clean_input, &args);
    clean.expect_code(3);
    let clean_summary = clean.summary();
    assert_eq!(outcomes(&clean_summary), upsert_counts(&records));

    let live = seeded(&records, rate, latency);
    let watch = Watch::start(&live);
    let (_dir, path) = input(&records);
    let state = beside(&path, ".state");
    let mut all = UPSERT.to_vec();
    all.extend_from_slice(&args);
    let command = || job_import(&live, watch.domain(), &path, &all);
    let patches = || live.tenant.sandbox.stats().writes.updated;
    let killer = Killer {
        watch: &watch,
        state: &state,
        records: n,
        lasts: clean.elapsed,
        code: 3,
        patches: &patches,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let plan = [
        Kill::Patching,
        Kill::Accepting,
        Kill::Polling,
        Kill::Accepting,
        Kill::Progress,
        Kill::Polling,
        Kill::Time,
        Kill::Accepting,
    ];
    let killings = killer.kill_at(&plan, &mut rng, command);
    let last = killings.finished.unwrap_or_else(|| run(&mut command()));
    last.expect_code(3);
    let landed = &killings.landed;
    eprintln!(
        "seed {seed:#x}: kills {landed:?}; {} jobs accepted (clean run: {}); {} PATCHes \
         (clean run: {}); last run {}",
        watch.accepted_files().len(),
        requests_of(&clean_live, JOBS_POST),
        patches(),
        clean_live.tenant.sandbox.stats().writes.updated,
        last.stdout_text().trim()
    );
    assert!(landed.len() >= 5, "at least five kills landed: {landed:?}");
    for kind in [Kill::Accepting, Kill::Polling, Kill::Patching] {
        assert!(landed.contains(&kind), "a {kind:?} kill landed: {landed:?}");
    }
    assert!(
        !watch.sent_twice().is_empty(),
        "the chunk whose job's answer was held was sent again"
    );

    // A patch whose outcome a kill lost finds its user patched already: unchanged. So
    // `updated` and `unchanged` are a clean run's together, and each user that differs is
    // patched once all the same.
    let summary = last.summary();
    assert_ends_as_clean(
        &Ended::of(&live, &path, &summary),
        &Ended::of(&clean_live, &clean_input, &clean_summary),
        n,
        &COUNTS_AFTER_KILLS,
    );
    let lost = count(&clean_summary, "updated") - count(&summary, "updated");
    eprintln!("{lost} patches' outcomes lost to kills, counted unchanged");
    let created = good_where(&records, Before::Missing).len() as u64;
    let writes = live.tenant.sandbox.stats().writes;
    assert_eq!(
        (writes.created, writes.updated),
        (created, count(&clean_summary, "updated")),
        "each new user was created once, each user that differs patched once"
    );
    assert_same_users(
        &tenant_as_expected(&live),
        &expected_after_merge(&records),
        "the tenant against the records merged into the users before",
    );
    for (i, record) in good_where(&records, Before::Missing) {
        assert_eq!(
            signs_in(&live, record, &legacy_password(i)),
            brings_hash(i),
            "record {i} signs in with its old password exactly when it brought a hash"
        );
    }

    // The finished import run again: the state says it completed, so this is a new import,
    // which finds every user as its record says.
    let users = tenant_users(&live);
    live.tenant.sandbox.reset_stats();
    let again = run(&mut command());
    again.expect_code(3);
    let summary = again.summary();
    assert_eq!(summary["resumed"], false, "{summary}");
    assert_eq!(
        outcomes(&summary),
        [n as u64, 0, 0, good(n), 0, n as u64 - good(n)],
        "{summary}"
    );
    assert_eq!(tenant_users(&live), users, "the tenant is as it was");
    let stats = live.tenant.sandbox.stats();
    assert_eq!((stats.writes.created, stats.writes.updated), (0, 0));
    let routes = routes(&live);
    assert!(!routes.contains_key(JOBS_POST), "no job: {routes:?}");
    assert!(
        routes
            .keys()
            .all(|route| route.starts_with("GET ") || route == "POST /oauth/token"),
        "only lookups: {routes:?}"
    );
}

// ---- 5. dry run --------------------------------------------------------------------------------

#[test]
fn an_upsert_dry_run_through_jobs_shows_its_chunks_and_sends_nothing_but_lookups() {
    let n = 200;
    let records = upsert_records(n, "udry");
    let live = seeded(&records, 2_000.0, Duration::ZERO);
    let before_users = tenant_users(&live);
    let (dir, path) = input(&records);
    let files = files_under(dir.path());
    let ran = upsert(
        &live,
        live.domain(),
        &path,
        &["--dry-run", "--job-file-bytes", "6000"],
    );
    ran.expect_code(3);
    let summary = ran.summary();
    assert_eq!(summary["dry_run"], true);
    assert_adds_up(&summary);
    assert_eq!(outcomes(&summary), upsert_counts(&records), "{summary}");

    // "Would send chunk 3: 17 users, 5873 bytes, to connection legacy-db."
    let shown: Vec<(u64, u64)> = ran
        .stderr
        .lines()
        .filter_map(|line| {
            let rest = line.split("Would send chunk ").nth(1)?;
            let words: Vec<&str> = rest.split_whitespace().collect();
            Some((words[1].parse().unwrap(), words[3].parse().unwrap()))
        })
        .collect();
    assert!(shown.len() >= 2, "the chunks are shown:\n{}", ran.stderr);
    assert!(shown.iter().all(|(_, bytes)| *bytes <= 6000), "{shown:?}");
    assert_eq!(
        shown.iter().map(|(users, _)| users).sum::<u64>(),
        good_where(&records, Before::Missing).len() as u64,
        "the chunks hold the missing users"
    );

    for request in live.api_requests() {
        assert_eq!(request.method, "GET", "only lookups: {request:?}");
    }
    assert!(!routes(&live).contains_key(JOBS_POST));
    let stats = live.tenant.sandbox.stats();
    assert_eq!((stats.writes.created, stats.writes.updated), (0, 0));
    assert_eq!(tenant_users(&live), before_users, "the tenant is untouched");
    assert_eq!(files_under(dir.path()), files, "a dry run writes no file");
}

// ---- 6. scopes ---------------------------------------------------------------------------------

#[test]
fn an_upsert_through_jobs_needs_update_users_before_any_write_and_a_create_does_not() {
    let live = tenant_without("update:users");
    let records = records(30, "uscope");
    let (dir, path) = input(&records);
    assert_refused(
        &live,
        dir.path(),
        &[
            "--engine",
            "job",
            "--passwords",
            "random",
            "--mode",
            "upsert",
        ],
        "the token lacks update:users",
    );
    assert!(!routes(&live).contains_key(JOBS_POST));
    assert_eq!(live.tenant.sandbox.user_count(), 0);

    // Creates through jobs patch nothing: the same token will do.
    let ran = run(&mut job_import(&live, live.domain(), &path, &["--quiet"]));
    ran.expect_code(3);
    assert_eq!(count(&ran.summary(), "created"), good(records.len()));
    assert_eq!(live.tenant.sandbox.user_count() as u64, good(records.len()));
}

// ---- 7. update mode ----------------------------------------------------------------------------

#[test]
fn an_update_with_the_job_engine_patches_one_user_at_a_time_and_sends_no_job() {
    let n = 120;
    // No hashes: an update never creates, so it takes none.
    let records = records(n, "uupdate");
    let live = seeded(&records, 2_000.0, Duration::ZERO);
    let (_dir, path) = input(&records);
    let ran = run(crate::support::imports::import(&live)
        .arg("--input")
        .arg(&path)
        .args(["--engine", "job", "--mode", "update", "--json"]));
    ran.expect_code(3);
    let summary = ran.summary();
    assert_adds_up(&summary);
    let of = |state| good_where(&records, state).len() as u64;
    let missing = of(Before::Missing);
    let bad = n as u64 - good(n);
    assert_eq!(
        outcomes(&summary),
        [
            n as u64,
            0,
            of(Before::Differs),
            of(Before::Same),
            0,
            missing + bad
        ],
        "{summary}"
    );
    let routes = routes(&live);
    assert!(!routes.contains_key(JOBS_POST), "no job: {routes:?}");
    assert!(!routes.contains_key("POST /api/v2/users"), "{routes:?}");
    assert_eq!(requests_of(&live, PATCH), of(Before::Differs));
    assert_eq!(live.tenant.sandbox.stats().writes.created, 0);

    // Each missing user is rejected as not found, by line.
    let rejects = rejects_by_line(&beside(&path, ".rejects.ndjson"));
    for (i, record) in good_where(&records, Before::Missing) {
        let (code, message, _) = &rejects[&(i as u64 + 1)];
        assert_eq!(code, "not_found", "record {i}: {message}");
        let key = match record.get("user_id") {
            Some(id) => format!("user_id auth0|{}", id.as_str().unwrap()),
            None => format!("email {}", record["email"].as_str().unwrap()),
        };
        assert!(message.contains(&key), "record {i}: {message}");
    }
    assert_eq!(rejects.len() as u64, missing + bad);
    let entries = read_ndjson(&beside(&path, ".rejects.ndjson"));
    assert_eq!(entries.len(), rejects.len());
    // The users found are as the records say, merged; the others were not made.
    let mut expected = expected_after_merge(&records);
    for (_, record) in good_where(&records, Before::Missing) {
        expected.remove(&expected_id(record));
    }
    assert_same_users(
        &tenant_as_expected(&live),
        &expected,
        "the tenant after the update",
    );
}
