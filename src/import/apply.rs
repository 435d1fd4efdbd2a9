//! Applies planned records one user at a time through the Management API ([`PerUser`], the
//! import's one [`Apply`](super::Apply) today): look the user up, then create, patch, or leave
//! it, and say what happened ([`Applied`], shared by every way of applying). Dry runs stop
//! before any write.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::api::{ApiError, Client, User};

use super::Step;
use super::access::AccessApplier;
use super::before::{BeforeImages, Origin, image as before_image};
use super::ledger::{Ledger, Outcome};
use super::plan::{self, Change, Invalid, MatchBy, MetadataStrategy, Mode, Planned};
use super::read::Record;

/// What applying a record came to.
#[derive(Debug, Clone)]
pub struct Applied {
    pub outcome: Outcome,
    pub user_id: Option<String>,
    /// Why, for skipped and rejected records: a stable code, a message, and the HTTP status.
    pub reason: Option<Reason>,
    /// What an update changes, path by path with old and new values (for dry-run plans and
    /// logs).
    pub changes: Vec<Change>,
    /// What a (dry-run) create would make, for plans and logs (boxed: most records have none).
    pub new_user: Option<Box<NewUser>>,
    /// A created user who has no password anyone knows (a random one, or none through a job)
    /// and gets a password-change ticket (`--tickets`).
    pub ticket: Option<TicketFor>,
}

/// A user a create makes, as a dry-run plan shows it (beside its user_id, when known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: Option<String>,
    pub connection: String,
}

impl NewUser {
    /// The user a planned record would create, and its user_id when the record gives one.
    pub fn of(planned: &Planned) -> (NewUser, Option<String>) {
        let body = planned.create.as_ref();
        let text = |name: &str| {
            body.and_then(|b| b.get(name))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let new_user = NewUser {
            email: text("email"),
            connection: text("connection").unwrap_or_default(),
        };
        // Facts ("POST /users"): a database user's id is `auth0|` plus the id given.
        (new_user, text("user_id").map(|id| format!("auth0|{id}")))
    }
}

/// Who a password-change ticket is for, beside the user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFor {
    pub email: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Reason {
    pub code: String,
    pub message: String,
    pub status: Option<u16>,
    /// The field at fault, when one is (a column, a key's path such as `user_metadata.plan`).
    pub field: Option<String>,
}

impl Applied {
    pub(super) fn done(outcome: Outcome, user_id: Option<String>, changes: Vec<Change>) -> Applied {
        Applied {
            outcome,
            user_id,
            reason: None,
            changes,
            new_user: None,
            ticket: None,
        }
    }

    pub fn rejected(code: &str, message: impl Into<String>, status: Option<u16>) -> Applied {
        let reason = Reason {
            code: code.to_string(),
            message: message.into(),
            status,
            field: None,
        };
        Applied {
            outcome: Outcome::Rejected,
            user_id: None,
            reason: Some(reason),
            changes: Vec::new(),
            new_user: None,
            ticket: None,
        }
    }

    /// Names the field at fault in a rejection.
    pub fn with_field(mut self, field: Option<String>) -> Applied {
        if let Some(reason) = &mut self.reason {
            reason.field = field;
        }
        self
    }

    pub(super) fn skipped(
        user_id: Option<String>,
        code: &str,
        message: impl Into<String>,
    ) -> Applied {
        let reason = Reason {
            code: code.to_string(),
            message: message.into(),
            status: None,
            field: None,
        };
        Applied {
            outcome: Outcome::Skipped,
            user_id,
            reason: Some(reason),
            changes: Vec::new(),
            new_user: None,
            ticket: None,
        }
    }
}

/// Applies each record with its own requests: a lookup, then a create or a patch.
pub struct PerUser<'a> {
    pub client: &'a Client,
    pub ledger: Option<&'a Ledger>,
    pub mode: Mode,
    pub metadata: MetadataStrategy,
    pub dry_run: bool,
    /// Created users with a random password get a ticket (`--tickets`).
    pub tickets: bool,
    /// Records' roles, organizations and permissions (`None` only where no record can have
    /// any: tests).
    pub access: Option<&'a AccessApplier<'a>>,
    /// Where each update's before-image is kept before its PATCH is sent (`None` in a dry run
    /// and without a run state).
    pub before: Option<&'a BeforeImages>,
}

/// How close a found user's `created_at` must be to our first attempt to count as ours: the
/// tenant's clock and ours may disagree a little.
const CLOCK_SLACK: Duration = Duration::from_secs(120);
/// How often a deep merge is recomputed when the user changed under it.
const DEEP_ATTEMPTS: u32 = 3;

impl super::Apply for PerUser<'_> {
    async fn apply(
        &self,
        ordinal: u64,
        record: &Record,
        planned: &Planned,
        was_in_flight: bool,
    ) -> Result<Step, ApiError> {
        if let Some(rejected) = self.check_access(planned).await? {
            return Ok(Step::Applied(rejected));
        }
        let origin = Origin {
            record: ordinal,
            line: record.line,
        };
        let mut applied = apply(self, origin, planned, was_in_flight).await?;
        if self.tickets && applied.outcome == Outcome::Created && !self.dry_run {
            applied.ticket = Some(TicketFor {
                email: planned
                    .profile
                    .get("email")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            });
        }
        let applied = self
            .with_access(origin, planned, applied, was_in_flight)
            .await?;
        Ok(Step::Applied(applied))
    }
}

impl PerUser<'_> {
    /// Resolves a record's role and organization names before its user is touched: the
    /// record's rejection when one is unknown.
    pub(super) async fn check_access(
        &self,
        planned: &Planned,
    ) -> Result<Option<Applied>, ApiError> {
        match (self.access, &planned.access) {
            (Some(applier), Some(access)) => Ok(applier.check(access).await?.err()),
            _ => Ok(None),
        }
    }

    /// Brings the user's access to what the record says, once the user is created or found
    /// (a user skipped as somebody else's, or a rejected record, is left alone). Changes make
    /// an unchanged user updated.
    pub(super) async fn with_access(
        &self,
        origin: Origin,
        planned: &Planned,
        mut applied: Applied,
        was_in_flight: bool,
    ) -> Result<Applied, ApiError> {
        let (Some(applier), Some(access)) = (self.access, &planned.access) else {
            return Ok(applied);
        };
        if !matches!(
            applied.outcome,
            Outcome::Created | Outcome::Updated | Outcome::Unchanged
        ) {
            return Ok(applied);
        }
        // A user this call made has nothing yet; one an earlier run made may have some.
        let fresh = applied.outcome == Outcome::Created && !was_in_flight;
        // What a user the import did not create had is kept for undo (undo deletes the others).
        let keep = self
            .before
            .filter(|_| applied.outcome != Outcome::Created)
            .map(|before| (before, origin));
        match applier
            .apply(applied.user_id.as_deref(), access, fresh, keep)
            .await?
        {
            Ok(changes) => {
                if !changes.is_empty() && applied.outcome == Outcome::Unchanged {
                    applied.outcome = Outcome::Updated;
                }
                applied
                    .changes
                    .extend(changes.into_iter().map(Change::access));
                Ok(applied)
            }
            Err(rejected) => Ok(Applied {
                user_id: applied.user_id,
                ..rejected
            }),
        }
    }
}

/// Applies one record (see [`super::Apply::apply`]).
async fn apply(
    ctx: &PerUser<'_>,
    origin: Origin,
    planned: &Planned,
    was_in_flight: bool,
) -> Result<Applied, ApiError> {
    match decide(ctx, origin, planned, was_in_flight).await? {
        Decision::Done(applied) => Ok(applied),
        Decision::Create => create(ctx, origin.record, planned).await,
    }
}

/// What a record comes to before anything is written: its outcome, or a create to send.
pub(super) enum Decision {
    Done(Applied),
    /// No such user, and the record can make one.
    Create,
}

/// Looks the user a record points at up (but for a first try at a create in create mode,
/// where a 409 says the user exists at no cost for the common case), and decides: create,
/// patch (done here, with `ctx`'s merge strategy, its before-image kept first), or leave it.
pub(super) async fn decide(
    ctx: &PerUser<'_>,
    origin: Origin,
    planned: &Planned,
    was_in_flight: bool,
) -> Result<Decision, ApiError> {
    let done = |applied| Ok(Decision::Done(applied));
    if ctx.mode == Mode::Create && !was_in_flight && !ctx.dry_run {
        return Ok(Decision::Create);
    }
    let found = find(ctx, planned).await;
    let (current, elsewhere) = match found {
        Ok(Lookup::Found(user)) => (Some(user), Vec::new()),
        Ok(Lookup::Missing { elsewhere }) => (None, elsewhere),
        Err(Found::Ambiguous(n)) => {
            return done(Applied::rejected(
                "ambiguous_email",
                format!(
                    "{n} users have the email {}; name the connection (--connection or a \
                     `connection` field) or match by user_id",
                    planned.key
                ),
                None,
            ));
        }
        Err(Found::Api(e)) => return fatal_or_reject(e).map(Decision::Done),
    };
    match (ctx.mode, current) {
        (Mode::Create | Mode::Upsert, Some(user)) if was_in_flight => {
            // Our create from an interrupted run reached the tenant before the process died.
            done(Applied::done(
                Outcome::Created,
                Some(id_of(&user)),
                Vec::new(),
            ))
        }
        (Mode::Create, Some(user)) => done(Applied::skipped(
            Some(id_of(&user)),
            "already_exists",
            format!(
                "the user {} already exists in the tenant (create mode never changes an existing user; use --mode upsert)",
                id_of(&user)
            ),
        )),
        (Mode::Update, None) => done(Applied::rejected(
            "not_found",
            not_found(planned, &elsewhere),
            Some(404),
        )),
        (Mode::Upsert, None) if planned.create_refused.is_some() => {
            let refused = planned.create_refused.clone().expect("checked");
            done(cannot_create(planned, &elsewhere, refused))
        }
        (Mode::Create | Mode::Upsert, None) => Ok(Decision::Create),
        (Mode::Update | Mode::Upsert, Some(user)) => {
            update(ctx, origin, planned, user).await.map(Decision::Done)
        }
    }
}

enum Found {
    Ambiguous(usize),
    Api(ApiError),
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq)]
enum Lookup {
    Found(User),
    /// No user; `elsewhere` names the other connections that hold a user with the email, when
    /// the record was matched by email within its connection.
    Missing {
        elsewhere: Vec<String>,
    },
}

/// The user a record points at, by user_id or by email (within its connection, if known).
async fn find(ctx: &PerUser<'_>, planned: &Planned) -> Result<Lookup, Found> {
    match planned.match_by {
        MatchBy::Email => {
            // Facts ("users-by-email"): every connection's users with the email, so the ones
            // outside the record's connection can be named when it holds none.
            let users = ctx
                .client
                .users_by_email(&planned.key)
                .await
                .map_err(Found::Api)?;
            pick(users, planned.connection.as_deref()).map_err(Found::Ambiguous)
        }
        MatchBy::UserId | MatchBy::Auto => match ctx.client.get_user(&planned.key).await {
            Ok(Some(user)) => Ok(Lookup::Found(user)),
            Ok(None) => Ok(Lookup::Missing {
                elsewhere: Vec::new(),
            }),
            Err(e) => Err(Found::Api(e)),
        },
    }
}

/// Picks the user of `connection` (any, when none is known) among users-by-email results;
/// `Err(n)` when `n` users qualify. When none does, names the connections the others are in.
fn pick(users: Vec<User>, connection: Option<&str>) -> Result<Lookup, usize> {
    let (mut mine, others): (Vec<User>, Vec<User>) = users.into_iter().partition(|user| {
        connection.is_none_or(|connection| connections(user).any(|c| c == connection))
    });
    match mine.len() {
        0 => {
            let mut elsewhere: Vec<String> = others
                .iter()
                .flat_map(|user| connections(user).map(str::to_string).collect::<Vec<_>>())
                .collect();
            elsewhere.sort();
            elsewhere.dedup();
            Ok(Lookup::Missing { elsewhere })
        }
        1 => Ok(Lookup::Found(mine.pop().expect("one"))),
        n => Err(n),
    }
}

/// The connections a user has identities in.
fn connections(user: &User) -> impl Iterator<Item = &str> {
    user.get("identities")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|identity| identity.get("connection").and_then(Value::as_str))
}

/// Why a record found no user: its key, the connection it was looked for in, and where users
/// with its email are instead (another connection's user is another user).
fn not_found(planned: &Planned, elsewhere: &[String]) -> String {
    let key = format!("{} {}", planned.match_by.name(), planned.key);
    match (planned.match_by, planned.connection.as_deref()) {
        (MatchBy::Email, Some(connection)) if !elsewhere.is_empty() => format!(
            "no user with the email {} in {connection}; it exists in {} (a user of another \
             connection is another user: to change that one, name its connection with \
             --connection or the record's `connection`)",
            planned.key,
            elsewhere.join(", ")
        ),
        (MatchBy::Email, Some(connection)) => {
            format!("no user matches {key} in connection {connection}")
        }
        _ => format!("no user matches {key} in the tenant"),
    }
}

/// An upsert record that found no user and cannot be created (it has no password).
fn cannot_create(planned: &Planned, elsewhere: &[String], refused: Invalid) -> Applied {
    Applied::rejected(
        refused.code,
        format!(
            "{}, so the record would create one: {}",
            not_found(planned, elsewhere),
            refused.message
        ),
        None,
    )
    .with_field(refused.field)
}

async fn create(ctx: &PerUser<'_>, record: u64, planned: &Planned) -> Result<Applied, ApiError> {
    if let Some(refused) = &planned.create_refused {
        return Ok(cannot_create(planned, &[], refused.clone()));
    }
    let Some(body) = &planned.create else {
        return Ok(Applied::rejected(
            "cannot_create",
            "the record cannot be created: it names no connection",
            None,
        ));
    };
    if ctx.dry_run {
        let (new_user, user_id) = NewUser::of(planned);
        return Ok(Applied {
            new_user: Some(Box::new(new_user)),
            ..Applied::done(Outcome::Created, user_id, Vec::new())
        });
    }
    if let Some(ledger) = ctx.ledger {
        // Without the mark a crash could create the user twice: the create is not sent.
        ledger.started(record).await.map_err(|e| ApiError::Local {
            what: format!("the import ledger {}", ledger.path().display()),
            message: e.to_string(),
        })?;
    }
    let sent_at = Utc::now();
    match ctx.client.create_user(body).await {
        Ok(user) => Ok(Applied::done(
            Outcome::Created,
            Some(id_of(&user)),
            Vec::new(),
        )),
        Err(ApiError::Status {
            status: 409,
            message,
            retried,
            ..
        }) => {
            // A create whose answer was lost (dropped connection, truncated body) is retried and
            // meets its own user: that user is ours if it appeared after we first sent. Without
            // a lost attempt, a 409 means the user was there before.
            match find(ctx, planned).await {
                Ok(Lookup::Found(user)) if retried && created_since(&user, sent_at) => Ok(
                    Applied::done(Outcome::Created, Some(id_of(&user)), Vec::new()),
                ),
                Ok(Lookup::Found(user)) => Ok(Applied::skipped(
                    Some(id_of(&user)),
                    "already_exists",
                    format!("the user {} already exists in the tenant", id_of(&user)),
                )),
                _ => Ok(Applied::rejected(
                    "conflict",
                    format!("the tenant refused the create: {message}"),
                    Some(409),
                )),
            }
        }
        Err(e) => fatal_or_reject(e),
    }
}

async fn update(
    ctx: &PerUser<'_>,
    origin: Origin,
    planned: &Planned,
    mut current: User,
) -> Result<Applied, ApiError> {
    for attempt in 1..=DEEP_ATTEMPTS {
        let user_id = id_of(&current);
        let Some(body) = plan::update_body(&current, planned, ctx.metadata) else {
            return Ok(Applied::done(Outcome::Unchanged, Some(user_id), Vec::new()));
        };
        // Pairs Auth0 refuses in one PATCH, and bodies over 1 MB, are the record's fault.
        if let Err(invalid) = plan::check_patch(&body) {
            return Ok(
                Applied::rejected(invalid.code, invalid.message, None).with_field(invalid.field)
            );
        }
        let changes = plan::changes(&current, &body);
        if ctx.dry_run {
            return Ok(Applied::done(Outcome::Updated, Some(user_id), changes));
        }
        // What the PATCH replaces: the user as last read.
        let mut basis = None;
        if ctx.metadata == MetadataStrategy::Deep {
            // Auth0 has no conditional update: read again just before writing, and start over
            // if someone changed the user since the merge was computed.
            let fresh = match ctx.client.get_user(&user_id).await {
                Ok(Some(fresh)) => fresh,
                Ok(None) => {
                    return Ok(Applied::rejected(
                        "not_found",
                        format!("the user {user_id} was deleted during the import"),
                        Some(404),
                    ));
                }
                Err(e) => return fatal_or_reject(e),
            };
            if fresh.get("updated_at") != current.get("updated_at") && attempt < DEEP_ATTEMPTS {
                current = fresh;
                continue;
            }
            basis = Some(fresh);
        }
        if let Some(before) = ctx.before {
            // Durable before the PATCH leaves: a crash between the two finds it on resume.
            let image = before_image(basis.as_ref().unwrap_or(&current), &body);
            before
                .keep(origin, &user_id, image)
                .await
                .map_err(|e| ApiError::Local {
                    what: format!("the before-images file {}", before.path().display()),
                    message: e.to_string(),
                })?;
        }
        return match ctx.client.update_user(&user_id, &body).await {
            Ok(_) => Ok(Applied::done(Outcome::Updated, Some(user_id), changes)),
            Err(e) => fatal_or_reject(e),
        };
    }
    unreachable!("the loop returns on its last attempt")
}

/// A 4xx answer rejects the record; anything else ends the run.
fn fatal_or_reject(error: ApiError) -> Result<Applied, ApiError> {
    match error {
        ApiError::Status {
            status,
            error_code,
            message,
            ..
        } if (400..500).contains(&status) => {
            let code = if error_code.is_empty() {
                format!("http_{status}")
            } else {
                error_code
            };
            Ok(Applied::rejected(&code, message, Some(status)))
        }
        other => Err(other),
    }
}

pub(super) fn created_since(user: &User, sent_at: DateTime<Utc>) -> bool {
    let slack = chrono::Duration::from_std(CLOCK_SLACK).unwrap_or_default();
    user.get("created_at")
        .and_then(Value::as_str)
        .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
        .is_some_and(|c| c.with_timezone(&Utc) >= sent_at - slack)
}

fn id_of(user: &User) -> String {
    user.get("user_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The `_error` object of a rejects-file entry.
pub fn error_object(line: u64, reason: &Reason) -> Value {
    let mut error = json!({"line": line, "code": reason.code, "message": reason.message});
    if let Some(field) = &reason.field {
        error["field"] = field.as_str().into();
    }
    if let Some(status) = reason.status {
        error["status"] = status.into();
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, connections: &[&str]) -> User {
        let identities: Vec<Value> = connections
            .iter()
            .map(|c| json!({"connection": c, "provider": "auth0"}))
            .collect();
        match json!({"user_id": id, "identities": identities}) {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn users_by_email_results_give_the_connections_user_or_name_the_others() {
        let legacy = user("auth0|1", &["legacy-db"]);
        let other = user("auth0|2", &["other-db", "legacy-db"]);
        let mine = user("auth0|3", &["db"]);
        assert_eq!(
            pick(vec![legacy.clone(), mine.clone()], Some("db")),
            Ok(Lookup::Found(mine.clone()))
        );
        assert_eq!(
            pick(vec![legacy.clone(), other.clone()], Some("db")),
            Ok(Lookup::Missing {
                elsewhere: vec!["legacy-db".into(), "other-db".into()]
            })
        );
        assert_eq!(
            pick(Vec::new(), Some("db")),
            Ok(Lookup::Missing { elsewhere: vec![] })
        );
        // Without a connection every user qualifies.
        assert_eq!(pick(vec![legacy.clone(), mine], None), Err(2));
        assert_eq!(pick(vec![legacy.clone()], None), Ok(Lookup::Found(legacy)));
    }

    #[test]
    fn a_user_missing_from_its_connection_is_said_to_exist_in_another() {
        let options = plan::PlanOptions {
            mode: Mode::Update,
            match_by: MatchBy::Email,
            connection: Some("Username-Password-Authentication".into()),
            passwords: plan::Passwords::None,
            metadata: MetadataStrategy::Merge,
            engine: plan::Engine::Api,
        };
        let record = match json!({"email": "Ann@example.com"}) {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let planned = plan::plan(&record, &options).expect("planned");
        assert_eq!(
            not_found(&planned, &["legacy-db".into()]),
            "no user with the email ann@example.com in Username-Password-Authentication; it \
             exists in legacy-db (a user of another connection is another user: to change that \
             one, name its connection with --connection or the record's `connection`)"
        );
        assert_eq!(
            not_found(&planned, &[]),
            "no user matches email ann@example.com in connection Username-Password-Authentication"
        );
    }

    #[test]
    fn the_error_object_names_the_field_and_the_status_only_when_known() {
        let plain = Applied::rejected("csv_row", "the row has 4 cells", None);
        let error = error_object(3, plain.reason.as_ref().expect("a reason"));
        assert_eq!(
            error,
            json!({"line": 3, "code": "csv_row", "message": "the row has 4 cells"})
        );
        let named = Applied::rejected("invalid_field", "`blocked` must be true or false", None)
            .with_field(Some("blocked".into()));
        let error = error_object(7, named.reason.as_ref().expect("a reason"));
        assert_eq!(error["field"], "blocked");
        let refused = Applied::rejected("invalid_body", "Payload validation error", Some(400));
        let error = error_object(9, refused.reason.as_ref().expect("a reason"));
        assert_eq!(
            (error["status"].clone(), error.get("field")),
            (json!(400), None)
        );
    }
}
