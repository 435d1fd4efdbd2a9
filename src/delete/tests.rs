//! The engine against an in-process sandbox: who is deleted, what the before-images hold,
//! and how a run that died between an image and its outcome is finished.

use std::path::Path;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::api::{User, client_for};
use crate::sandbox::{Sandbox, SandboxOptions};

async fn tenant(n: usize) -> Sandbox {
    Sandbox::start(SandboxOptions {
        generate: n,
        ..Default::default()
    })
    .await
    .expect("a sandbox")
}

fn id(user: &User) -> String {
    user["user_id"].as_str().expect("a user_id").to_string()
}

fn keys(keys: &[&str]) -> impl Stream<Item = std::io::Result<Record>> + use<> {
    let records: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            Ok(Record {
                line: i as u64 + 1,
                key: key.to_string(),
            })
        })
        .collect();
    futures::stream::iter(records)
}

fn options(dry_run: bool) -> DeleteOptions {
    DeleteOptions {
        domain: "test".into(),
        job: JobOptions::new().with("--users", "list"),
        dry_run,
        plan: None,
        fresh: false,
    }
}

async fn run(sandbox: &Sandbox, list: &[&str], state: &Path, dry_run: bool) -> DeleteSummary {
    let client = client_for(sandbox);
    let progress = Progress::new(true, "users");
    let (summary, outcome) = delete_users(
        &client,
        keys(list),
        state,
        &options(dry_run),
        &progress,
        &CancellationToken::new(),
    )
    .await
    .expect("the deletion runs");
    assert!(summary.completed);
    assert_eq!(
        outcome == RunOutcome::Rejected,
        summary.rejected > 0,
        "{summary:?}"
    );
    summary
}

fn images(state: &Path) -> Vec<User> {
    std::fs::read_to_string(state.join(images::FILE))
        .expect("the before-images")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a user a line"))
        .collect()
}

#[tokio::test]
async fn listed_users_are_deleted_after_their_images_and_every_record_is_counted() {
    let sandbox = tenant(8).await;
    let users = sandbox.users();
    let email = users[3]["email"].as_str().unwrap().to_string();
    let (a, b, c) = (id(&users[0]), id(&users[1]), id(&users[2]));
    let list = [&a, &b, email.as_str(), "auth0|nobody", &c, &a];
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");

    let dry = run(&sandbox, &list, &state, true).await;
    assert_eq!((dry.deleted, dry.not_found, dry.duplicates), (4, 1, 1));
    assert!(dry.dry_run && dry.before_images.is_none());
    assert_eq!(sandbox.user_count(), 8, "a dry run deletes nothing");
    assert!(!state.exists(), "nor writes any state");

    let done = run(&sandbox, &list, &state, false).await;
    assert_eq!((done.read, done.deleted, done.skipped), (6, 4, 2));
    assert_eq!((done.not_found, done.duplicates, done.rejected), (1, 1, 0));
    assert_eq!(sandbox.user_count(), 4);
    // Each image is the user as the tenant held it, once, in list order.
    let in_list_order = [0, 1, 3, 2].map(|i| users[i].clone());
    assert_eq!(images(&state), in_list_order);
    let left: Vec<String> = sandbox.users().iter().map(id).collect();
    assert_eq!(left, users[4..].iter().map(id).collect::<Vec<_>>());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.join(images::FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Run again: they are gone, and the images are kept as they were.
    let again = run(&sandbox, &list, &state, false).await;
    assert_eq!(
        (again.deleted, again.not_found, again.duplicates),
        (0, 6, 0)
    );
    assert!(!again.resumed);
    assert_eq!(images(&state).len(), 4);
}

#[tokio::test]
async fn an_email_of_several_users_is_rejected_not_guessed() {
    let sandbox = tenant(2).await;
    let mut twin = sandbox.users()[0].clone();
    twin.insert("user_id".into(), Value::from("google-oauth2|twin"));
    sandbox.insert_users([twin]);
    let email = sandbox.users()[0]["email"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let summary = run(&sandbox, &[&email], dir.path(), false).await;
    assert_eq!((summary.rejected, summary.deleted), (1, 0));
    assert_eq!(sandbox.user_count(), 3);
    assert!(images(dir.path()).is_empty());
}

#[tokio::test]
async fn images_a_dead_run_left_without_outcome_are_not_written_twice() {
    let sandbox = tenant(6).await;
    let users = sandbox.users();
    let ids: Vec<String> = users.iter().map(id).collect();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    // A first deletion, finished.
    run(&sandbox, &[&ids[0]], state, false).await;
    // A run that then wrote the images of users 1 and 2 and deleted user 1, and died before
    // its ledger said so.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(state.join(images::FILE))
        .unwrap();
    for user in &users[1..3] {
        use std::io::Write;
        writeln!(file, "{}", serde_json::to_string(user).unwrap()).unwrap();
    }
    drop(file);
    let client = client_for(&sandbox);
    assert_eq!(
        client.delete_user(&ids[1]).await.unwrap(),
        crate::api::Removal::Deleted
    );

    let email = users[1]["email"].as_str().unwrap();
    let summary = run(&sandbox, &[email, &ids[2], &ids[3]], state, false).await;
    assert_eq!((summary.deleted, summary.not_found), (3, 0), "{summary:?}");
    assert_eq!(images(state), users[..4].to_vec(), "each image once");
    assert_eq!(sandbox.user_count(), 2);
}

#[tokio::test]
async fn another_job_in_an_unfinished_state_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path()).unwrap();
    let mine = options(false);
    resume::begin(&state, &mine).unwrap();
    drop(state);
    assert!(
        check_state(dir.path(), &mine).unwrap(),
        "the same job resumes"
    );
    let other = DeleteOptions {
        job: JobOptions::new().with("--users", "other"),
        ..options(false)
    };
    let error = check_state(dir.path(), &other).unwrap_err();
    assert!(error.to_string().contains("`--users` changed"), "{error}");
    let fresh = DeleteOptions {
        fresh: true,
        ..other.clone()
    };
    assert!(!check_state(dir.path(), &fresh).unwrap());
    let elsewhere = DeleteOptions {
        domain: "other".into(),
        ..fresh
    };
    assert!(matches!(
        check_state(dir.path(), &elsewhere),
        Err(DeleteError::State(StateError::OtherTenant { .. }))
    ));
}

#[tokio::test]
async fn a_resumed_run_lists_each_rejected_line_once_and_counts_the_earlier_runs_rejects() {
    let sandbox = tenant(150).await;
    let users = sandbox.users();
    let mut twin = users[0].clone();
    twin.insert("user_id".into(), Value::from("google-oauth2|twin"));
    sandbox.insert_users([twin]);
    let email = users[0]["email"].as_str().unwrap().to_string();
    let mut list: Vec<String> = users[1..].iter().map(id).collect();
    // Rejected at lines 50 (the first chunk) and 120 (the second).
    list.insert(49, email.clone());
    list.insert(119, email.clone());
    let list: Vec<&str> = list.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let first = run(&sandbox, &list, state, false).await;
    assert_eq!(first.rejected, 2);
    let written = std::fs::read_to_string(state.join(rejects::FILE)).unwrap();

    // As if the run had died after the second chunk's rejects were durable, before its ledger
    // line: the checkpoint unfinished, the ledger without that line.
    resume::begin(&StateDir::open(state).unwrap(), &options(false)).unwrap();
    let ledger = std::fs::read_to_string(state.join(ledger::FILE)).unwrap();
    let kept: Vec<&str> = ledger.lines().take(2).collect();
    std::fs::write(state.join(ledger::FILE), kept.join("\n") + "\n").unwrap();

    let resumed = run(&sandbox, &list, state, false).await;
    assert!(resumed.resumed);
    assert_eq!(resumed.read, list.len() as u64);
    assert_eq!(resumed.rejected, 2);
    let ambiguous = resumed.rejects_by_code.get("ambiguous_email").unwrap();
    assert_eq!((ambiguous.count, ambiguous.example.line), (2, 50));
    assert_eq!(
        std::fs::read_to_string(state.join(rejects::FILE)).unwrap(),
        written,
        "each rejected line once"
    );
    assert_eq!(
        written.matches(&format!("\n{email}\n")).count(),
        2,
        "{written}"
    );
    assert!(
        written.starts_with("# line 50: ambiguous_email: "),
        "{written}"
    );
    assert_eq!(sandbox.user_count(), 2, "the twins are left");
}
