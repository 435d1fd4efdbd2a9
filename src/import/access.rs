//! Applies a record's access (roles, organization memberships with member roles, direct
//! permissions: [`plan::access`]) to its user, once the user is created or found.
//!
//! - **By name.** Role and organization ids differ between tenants: names are resolved in the
//!   target once per run ([`Names`]: every role listed once, organizations looked up by name
//!   as they come). A name the tenant lacks rejects the record before its user is touched
//!   (`unknown_role`, `unknown_organization`), unless `--create-missing` makes it: once per
//!   name across workers (a lock around the lookup and the create), and across crashes (a
//!   resumed run finds what an earlier one made; a 409 is looked up again).
//! - **Only what differs.** The user's current roles, memberships, member roles and direct
//!   permissions are read (not for a user this call just created: they have none), and only
//!   the difference is written: `merge` adds what is missing, `replace` also takes away what
//!   the record does not list. A re-run sends only reads.
//! - **Exactly once.** Every write is a set operation (giving a role twice is giving it once),
//!   so a run killed half-way through a user's writes reads again and finishes them; the
//!   ledger's outcome comes after the last write.
//! - **Undoable.** Before the first write to a user the import did not create, what the user
//!   had of each kind the record names (every membership with its member roles) is kept as an
//!   access image in the run's before-images ([`super::before`]), durable, once per record;
//!   `undo` imports it back with `--authz replace`.

// A record's rejection is its `Applied`, made once per record and moved on at once: boxing it
// would cost more than the size clippy warns of.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, OnceCell};

use crate::api::{ApiError, Change, Client, Permission, Role};

use super::apply::Applied;
use super::before::{BeforeImages, Origin};
use super::plan::access::{Access, Membership};

/// `--authz`: what happens to assignments the record does not list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Add what is missing; keep the rest.
    #[default]
    Merge,
    /// Also take away what the record does not list.
    Replace,
}

/// `--authz` and `--create-missing`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccessOptions {
    pub strategy: Strategy,
    pub create_roles: bool,
    pub create_organizations: bool,
}

/// The tenant's roles and organizations by name, resolved once per run.
#[derive(Default)]
pub struct Names {
    roles: OnceCell<Mutex<HashMap<String, String>>>,
    /// The tenant's APIs and their scopes, to check permissions against before a user is
    /// touched; `None` when the token may not list them (`read:resource_servers`): then the
    /// tenant's answer to the write says.
    apis: OnceCell<Option<HashMap<String, HashSet<String>>>>,
    organizations: Mutex<HashMap<String, Option<String>>>,
}

/// A record's names resolved to ids, or why one cannot be.
struct Resolved {
    roles: HashMap<String, String>,
    organizations: HashMap<String, String>,
}

/// Applies records' access with the run's options.
pub struct AccessApplier<'a> {
    pub client: &'a Client,
    pub options: AccessOptions,
    pub names: &'a Names,
    pub dry_run: bool,
}

/// Placeholder id of a role or organization a dry run would create.
const WOULD_CREATE: &str = "";

impl AccessApplier<'_> {
    /// Resolves the record's names before its user is touched: `Err(applied)` rejects it.
    pub async fn check(&self, access: &Access) -> Result<Result<(), Applied>, ApiError> {
        self.resolve(access).await.map(|r| r.map(|_| ()))
    }

    async fn resolve(&self, access: &Access) -> Result<Result<Resolved, Applied>, ApiError> {
        let mut roles = HashMap::new();
        let known = self
            .names
            .roles
            .get_or_try_init(|| async {
                let all = self.client.roles().await?;
                Ok::<_, ApiError>(Mutex::new(
                    all.into_iter().map(|r| (r.name, r.id)).collect(),
                ))
            })
            .await?;
        for name in access.role_names() {
            let mut known = known.lock().await;
            let id = match known.get(name) {
                Some(id) => id.clone(),
                None if !self.options.create_roles => {
                    return Ok(Err(Applied::rejected(
                        "unknown_role",
                        format!(
                            "the tenant has no role named {name:?}; create it, or pass \
                             --create-missing roles"
                        ),
                        None,
                    )
                    .with_field(Some(role_field(access, name)))));
                }
                None if self.dry_run => WOULD_CREATE.to_string(),
                None => {
                    let id = match self.client.create_role(name).await {
                        Ok(role) => role.id,
                        // Made by an earlier run, or another process, since the list.
                        Err(ApiError::Status { status: 409, .. }) => {
                            match self.client.role_by_name(name).await? {
                                Some(role) => role.id,
                                None => return Err(gone("role", name)),
                            }
                        }
                        Err(e) => {
                            return reject_or_fatal(e, Some(&role_field(access, name)));
                        }
                    };
                    tracing::info!("Created the role {name:?}.");
                    known.insert(name.to_string(), id.clone());
                    id
                }
            };
            roles.insert(name.to_string(), id);
        }
        if let Some(rejected) = self.unknown_permission(access).await? {
            return Ok(Err(rejected));
        }
        let mut organizations = HashMap::new();
        for membership in access.organizations.iter().flatten() {
            let name = membership.name.as_str();
            let mut known = self.names.organizations.lock().await;
            let found = match known.get(name) {
                Some(found) => found.clone(),
                None => {
                    let found = self.client.organization_by_name(name).await?.map(|o| o.id);
                    known.insert(name.to_string(), found.clone());
                    found
                }
            };
            let id = match found {
                Some(id) => id,
                None if !self.options.create_organizations => {
                    return Ok(Err(Applied::rejected(
                        "unknown_organization",
                        format!(
                            "the tenant has no organization named {name:?}; create it, or pass \
                             --create-missing organizations"
                        ),
                        None,
                    )
                    .with_field(Some(org_field(access, name)))));
                }
                None if self.dry_run => WOULD_CREATE.to_string(),
                None => {
                    let id = match self.client.create_organization(name).await {
                        Ok(org) => org.id,
                        Err(ApiError::Status { status: 409, .. }) => {
                            match self.client.organization_by_name(name).await? {
                                Some(org) => org.id,
                                None => return Err(gone("organization", name)),
                            }
                        }
                        Err(e) => {
                            return reject_or_fatal(e, Some(&org_field(access, name)));
                        }
                    };
                    tracing::info!("Created the organization {name:?}.");
                    known.insert(name.to_string(), Some(id.clone()));
                    id
                }
            };
            organizations.insert(name.to_string(), id);
        }
        Ok(Ok(Resolved {
            roles,
            organizations,
        }))
    }

    /// The rejection of a record whose permission names an API or scope the tenant lacks
    /// (facts: a permission is an existing resource server's scope), when the APIs can be
    /// listed.
    async fn unknown_permission(&self, access: &Access) -> Result<Option<Applied>, ApiError> {
        let Some(wanted) = &access.permissions else {
            return Ok(None);
        };
        let apis = self
            .names
            .apis
            .get_or_try_init(|| async {
                match self.client.resource_servers().await {
                    Ok(all) => Ok(Some(
                        all.into_iter()
                            .map(|api| {
                                let scopes = api.scopes.into_iter().map(|s| s.value).collect();
                                (api.identifier, scopes)
                            })
                            .collect(),
                    )),
                    Err(ApiError::Status { status: 403, .. }) => {
                        tracing::info!(
                            "The token may not list the tenant's APIs (read:resource_servers): \
                             permissions are checked by the tenant when they are given, after \
                             the user is created or updated."
                        );
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            })
            .await?;
        let Some(apis) = apis else {
            return Ok(None);
        };
        for p in wanted {
            let at = access
                .fields
                .permission(p)
                .unwrap_or_else(|| "permissions".into());
            let (field, message) = match apis.get(&p.resource_server_identifier) {
                None => (
                    format!("{at}.resource_server_identifier"),
                    format!(
                        "the tenant has no API with the identifier {:?}; create it (with its \
                         scopes) first: APIs are configuration, which an import does not make",
                        p.resource_server_identifier
                    ),
                ),
                Some(scopes) if !scopes.contains(&p.permission_name) => (
                    format!("{at}.permission_name"),
                    format!(
                        "the API {:?} has no permission {:?}; add it to the API's permissions \
                         first",
                        p.resource_server_identifier, p.permission_name
                    ),
                ),
                Some(_) => continue,
            };
            let rejected = Applied::rejected("unknown_permission", message, None);
            return Ok(Some(rejected.with_field(Some(field))));
        }
        Ok(None)
    }

    /// Brings `user_id`'s access to what `access` says; `fresh` when the user was created by
    /// this very call (it has nothing yet). Returns the changes (`roles +admin`, …), or the
    /// record's rejection when the tenant refuses a write. With `keep`, the user's access as it
    /// was (of the kinds the record names) is kept there, durable, before the first write.
    pub async fn apply(
        &self,
        user_id: Option<&str>,
        access: &Access,
        fresh: bool,
        keep: Option<(&BeforeImages, Origin)>,
    ) -> Result<Result<Vec<String>, Applied>, ApiError> {
        let resolved = match self.resolve(access).await? {
            Ok(resolved) => resolved,
            Err(rejected) => return Ok(Err(rejected)),
        };
        let now = match (user_id, fresh) {
            (Some(user_id), false) => self.current(user_id, access).await?,
            _ => Current::default(),
        };
        let plan = self.diff(access, &now);
        if self.dry_run || plan.is_empty() {
            return Ok(Ok(plan.changes()));
        }
        let user_id = user_id.expect("a user to write to");
        if let Some((before, origin)) = keep.filter(|_| !fresh) {
            let image = self.image(user_id, access, &now).await?;
            before
                .keep_access(origin, user_id, image)
                .await
                .map_err(|e| ApiError::Local {
                    what: format!("the before-images file {}", before.path().display()),
                    message: e.to_string(),
                })?;
        }
        match self.write(user_id, &plan, &resolved, &now).await {
            Ok(()) => Ok(Ok(plan.changes())),
            Err(e) => reject_or_fatal(e, None).map(|r| r.map(|()| Vec::new())),
        }
    }

    /// What the user has of the kinds the record names.
    async fn current(&self, user_id: &str, access: &Access) -> Result<Current, ApiError> {
        let mut now = Current::default();
        if access.roles.is_some() {
            now.roles = by_name(self.client.user_roles(user_id).await?);
        }
        if let Some(wanted) = &access.organizations {
            for org in self.client.user_organizations(user_id).await? {
                // Member roles matter for the organizations the record keeps.
                let roles = if wanted.iter().any(|m| m.name == org.name) {
                    by_name(self.client.member_roles(&org.id, user_id).await?)
                } else {
                    BTreeMap::new()
                };
                now.organizations.insert(org.name.clone(), (org.id, roles));
            }
        }
        if access.permissions.is_some() {
            now.permissions = self
                .client
                .user_permissions(user_id)
                .await?
                .into_iter()
                .collect();
        }
        Ok(now)
    }

    /// The access image: what the user has now of each kind the record names, in the
    /// record's shape, which an import with `--authz replace` brings back exactly. Every
    /// membership is listed with the member's roles (those of the organizations the record
    /// does not name are read here: the image must not lose them).
    async fn image(
        &self,
        user_id: &str,
        access: &Access,
        now: &Current,
    ) -> Result<Map<String, Value>, ApiError> {
        let mut image = Map::new();
        if access.roles.is_some() {
            image.insert("roles".into(), json!(now.roles.keys().collect::<Vec<_>>()));
        }
        if let Some(wanted) = &access.organizations {
            let mut memberships = Vec::new();
            for (name, (id, roles)) in &now.organizations {
                let roles: Vec<String> = if wanted.iter().any(|m| &m.name == name) {
                    roles.keys().cloned().collect()
                } else {
                    by_name(self.client.member_roles(id, user_id).await?)
                        .into_keys()
                        .collect()
                };
                memberships.push(json!({"name": name, "roles": roles}));
            }
            image.insert("organizations".into(), Value::Array(memberships));
        }
        if access.permissions.is_some() {
            image.insert("permissions".into(), json!(now.permissions));
        }
        Ok(image)
    }

    fn diff(&self, access: &Access, now: &Current) -> Plan {
        let replace = self.options.strategy == Strategy::Replace;
        let mut plan = Plan::default();
        if let Some(wanted) = &access.roles {
            plan.add_roles = missing(wanted, &now.roles);
            if replace {
                plan.remove_roles = extra(&now.roles, wanted);
            }
        }
        if let Some(wanted) = &access.organizations {
            for Membership { name, roles } in wanted {
                let none = BTreeMap::new();
                let (joined, had) = match now.organizations.get(name) {
                    Some((_, had)) => (false, had),
                    None => (true, &none),
                };
                let add = missing(roles, had);
                let remove = if replace {
                    extra(had, roles)
                } else {
                    Vec::new()
                };
                if joined || !add.is_empty() || !remove.is_empty() {
                    plan.organizations.insert(
                        name.clone(),
                        OrgChange {
                            join: joined,
                            add,
                            remove,
                        },
                    );
                }
            }
            if replace {
                for name in now.organizations.keys() {
                    if !wanted.iter().any(|m| &m.name == name) {
                        plan.leave.push(name.clone());
                    }
                }
            }
        }
        if let Some(wanted) = &access.permissions {
            let wanted: BTreeSet<Permission> = wanted.iter().cloned().collect();
            plan.add_permissions = wanted.difference(&now.permissions).cloned().collect();
            if replace {
                plan.remove_permissions = now.permissions.difference(&wanted).cloned().collect();
            }
        }
        plan
    }

    async fn write(
        &self,
        user_id: &str,
        plan: &Plan,
        resolved: &Resolved,
        now: &Current,
    ) -> Result<(), ApiError> {
        let client = self.client;
        let ids = |names: &[String]| -> Vec<String> {
            names
                .iter()
                .filter_map(|n| resolved.roles.get(n).cloned())
                .collect()
        };
        if !plan.add_roles.is_empty() {
            client
                .user_roles_change(Change::Add, user_id, &ids(&plan.add_roles))
                .await?;
        }
        if !plan.remove_roles.is_empty() {
            // Roles the user has: their ids come from the user's own list.
            let ids: Vec<String> = plan
                .remove_roles
                .iter()
                .map(|n| now.roles[n].clone())
                .collect();
            client
                .user_roles_change(Change::Remove, user_id, &ids)
                .await?;
        }
        let user = [user_id.to_string()];
        for (name, change) in &plan.organizations {
            let org = &resolved.organizations[name];
            if change.join {
                client
                    .organization_members_change(Change::Add, org, &user)
                    .await?;
            }
            if !change.add.is_empty() {
                client
                    .member_roles_change(Change::Add, org, user_id, &ids(&change.add))
                    .await?;
            }
            if !change.remove.is_empty() {
                let had = &now.organizations[name].1;
                let ids: Vec<String> = change.remove.iter().map(|n| had[n].clone()).collect();
                client
                    .member_roles_change(Change::Remove, org, user_id, &ids)
                    .await?;
            }
        }
        for name in &plan.leave {
            let (org, _) = &now.organizations[name];
            client
                .organization_members_change(Change::Remove, org, &user)
                .await?;
        }
        if !plan.add_permissions.is_empty() {
            client
                .user_permissions_change(Change::Add, user_id, &plan.add_permissions)
                .await?;
        }
        if !plan.remove_permissions.is_empty() {
            client
                .user_permissions_change(Change::Remove, user_id, &plan.remove_permissions)
                .await?;
        }
        Ok(())
    }
}

/// What a user has now, of the kinds a record names (roles by name, with their ids).
#[derive(Default)]
struct Current {
    roles: BTreeMap<String, String>,
    /// By name: the organization's id and the member's roles in it.
    organizations: BTreeMap<String, (String, BTreeMap<String, String>)>,
    permissions: BTreeSet<Permission>,
}

/// The writes that bring a user to a record's access.
#[derive(Default)]
struct Plan {
    add_roles: Vec<String>,
    remove_roles: Vec<String>,
    organizations: BTreeMap<String, OrgChange>,
    leave: Vec<String>,
    add_permissions: Vec<Permission>,
    remove_permissions: Vec<Permission>,
}

struct OrgChange {
    join: bool,
    add: Vec<String>,
    remove: Vec<String>,
}

impl Plan {
    fn is_empty(&self) -> bool {
        self.add_roles.is_empty()
            && self.remove_roles.is_empty()
            && self.organizations.is_empty()
            && self.leave.is_empty()
            && self.add_permissions.is_empty()
            && self.remove_permissions.is_empty()
    }

    /// The changes as plans and logs show them.
    fn changes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let list = |sign: char, names: &[String]| -> String {
            names
                .iter()
                .map(|n| format!("{sign}{n}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        if !self.add_roles.is_empty() || !self.remove_roles.is_empty() {
            let both = [list('+', &self.add_roles), list('-', &self.remove_roles)];
            out.push(format!("roles {}", join_nonempty(&both)));
        }
        for (name, change) in &self.organizations {
            if change.join {
                out.push(format!("organizations +{name}"));
            }
            if !change.add.is_empty() || !change.remove.is_empty() {
                let both = [list('+', &change.add), list('-', &change.remove)];
                out.push(format!(
                    "organizations.{name}.roles {}",
                    join_nonempty(&both)
                ));
            }
        }
        for name in &self.leave {
            out.push(format!("organizations -{name}"));
        }
        let perm =
            |p: &Permission| format!("{}:{}", p.resource_server_identifier, p.permission_name);
        if !self.add_permissions.is_empty() || !self.remove_permissions.is_empty() {
            let add: Vec<String> = self.add_permissions.iter().map(perm).collect();
            let remove: Vec<String> = self.remove_permissions.iter().map(perm).collect();
            let both = [list('+', &add), list('-', &remove)];
            out.push(format!("permissions {}", join_nonempty(&both)));
        }
        out
    }
}

fn join_nonempty(parts: &[String]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(" ")
}

fn by_name(roles: Vec<Role>) -> BTreeMap<String, String> {
    roles.into_iter().map(|r| (r.name, r.id)).collect()
}

/// The names `wanted` has that the user lacks.
fn missing(wanted: &[String], had: &BTreeMap<String, String>) -> Vec<String> {
    wanted
        .iter()
        .filter(|n| !had.contains_key(*n))
        .cloned()
        .collect()
}

/// The names the user has that `wanted` lacks.
fn extra(had: &BTreeMap<String, String>, wanted: &[String]) -> Vec<String> {
    had.keys()
        .filter(|n| !wanted.contains(n))
        .cloned()
        .collect()
}

/// The field of a role name in the record, with the record's own indexes: `roles[i]` or
/// `organizations[j].roles[k]`.
fn role_field(access: &Access, name: &str) -> String {
    access
        .fields
        .roles
        .get(name)
        .cloned()
        .unwrap_or_else(|| "roles".into())
}

/// The field of an organization's name in the record: `organizations[j].name`.
fn org_field(access: &Access, name: &str) -> String {
    access
        .fields
        .organizations
        .get(name)
        .cloned()
        .unwrap_or_else(|| "organizations".into())
}

/// A 4xx rejects the record (naming `field`); anything else ends the run.
fn reject_or_fatal<T>(
    error: ApiError,
    field: Option<&str>,
) -> Result<Result<T, Applied>, ApiError> {
    match error {
        ApiError::Status {
            status,
            error_code,
            message,
            ..
        } if (400..500).contains(&status) && status != 401 && status != 429 => {
            let code = if error_code.is_empty() {
                format!("http_{status}")
            } else {
                error_code
            };
            let applied = Applied::rejected(
                &code,
                format!("the tenant refused a change of the user's access: {message}"),
                Some(status),
            )
            .with_field(field.map(str::to_string));
            Ok(Err(applied))
        }
        other => Err(other),
    }
}

/// A name the tenant said exists (409) and then could not find.
fn gone(kind: &str, name: &str) -> ApiError {
    ApiError::Local {
        what: format!("the {kind} {name:?}"),
        message: "the tenant said it exists, then could not find it".into(),
    }
}
