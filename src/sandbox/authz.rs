//! The tenant's authorization data: resource servers (APIs) and their scopes, roles and their
//! permissions, organizations and their members, and what each user holds.
//!
//! Facts ("Roles, permissions, organizations"): roles carry permissions, which are scopes of a
//! resource server; a user holds roles and direct permissions tenant-wide, and in each
//! organization they belong to, roles of that membership. Role and organization ids differ
//! between tenants (they are random here too, so a client that carries ids across tenants is
//! caught), which is why the evidence names them.
//!
//! Memory: a generated tenant may hold a million users, so an assignment is an index, not a
//! string: a role is a `u16` (at most 1,000 roles), a permission a pair of `u16` indexes. A
//! user id is one `Arc<str>`, shared by the user's entry, every role that lists them and every
//! organization they belong to. Users without any grant have no entry at all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::error::ErrorReply;

/// Facts ("Roles…", entity limits): 1,000 roles per tenant.
pub(crate) const MAX_ROLES: usize = 1_000;
/// Facts ("Roles…", entity limits): 50 roles per user.
pub(crate) const MAX_USER_ROLES: usize = 50;
/// Facts ("Roles…", entity limits): 1,000 direct permissions per user.
pub(crate) const MAX_USER_PERMISSIONS: usize = 1_000;
/// Facts ("Roles…", entity limits): 100k members per organization.
pub(crate) const MAX_MEMBERS: usize = 100_000;
/// Facts ("Roles…", entity limits): 50 roles per organization member.
pub(crate) const MAX_MEMBER_ROLES: usize = 50;

/// The `errorCode` of an entity limit. Facts and spec give none; the sandbox names it so that
/// a client can tell a limit from a malformed request.
pub(crate) const LIMIT_CODE: &str = "too_many_entities";

pub(crate) type RoleIx = u16;
pub(crate) type OrgIx = u32;

/// Whether a request adds grants (POST) or removes them (DELETE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Add,
    Remove,
}

/// A permission: a scope of a resource server, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Perm {
    server: u16,
    scope: u16,
}

/// Spec (`ResourceServer`): an API of the tenant.
pub(crate) struct ResourceServer {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) identifier: String,
    /// Scope values and descriptions, in the order given.
    pub(crate) scopes: Vec<(String, Option<String>)>,
}

/// Spec (`Role`).
pub(crate) struct Role {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    permissions: BTreeSet<Perm>,
    /// The users holding the role tenant-wide, in user_id order.
    users: BTreeSet<Arc<str>>,
}

/// Spec (`Organization`).
pub(crate) struct Org {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) display_name: Option<String>,
    pub(crate) metadata: Option<Map<String, Value>>,
    pub(crate) branding: Option<Value>,
    /// Members in user_id order, each with the roles of the membership (sorted indexes).
    members: BTreeMap<Arc<str>, Box<[RoleIx]>>,
}

/// A member as listed: the user id and the member roles as `{id, name}`.
pub(crate) type Member = (Arc<str>, Vec<Value>);

/// What one user holds; every list sorted, without repeats.
#[derive(Default)]
struct Grants {
    roles: Box<[RoleIx]>,
    permissions: Box<[Perm]>,
    orgs: Box<[OrgIx]>,
}

impl Grants {
    fn is_empty(&self) -> bool {
        self.roles.is_empty() && self.permissions.is_empty() && self.orgs.is_empty()
    }
}

/// Adds `items` to a sorted set; how many were new.
fn add_sorted<T: Ord + Copy>(set: &mut Box<[T]>, items: &[T]) -> usize {
    let mut all = std::mem::take(set).into_vec();
    let before = all.len();
    all.extend_from_slice(items);
    all.sort_unstable();
    all.dedup();
    let added = all.len() - before;
    *set = all.into_boxed_slice();
    added
}

/// Removes `items` from a sorted set.
fn remove_sorted<T: Ord + Copy>(set: &mut Box<[T]>, items: &[T]) {
    let kept: Vec<T> = set.iter().copied().filter(|x| !items.contains(x)).collect();
    *set = kept.into_boxed_slice();
}

/// How many of `items` a sorted set lacks (items without repeats).
fn missing<T: Ord>(set: &[T], items: &[T]) -> usize {
    items
        .iter()
        .filter(|x| set.binary_search(x).is_err())
        .count()
}

/// A permission as the API names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PermissionName {
    pub(crate) resource_server_identifier: String,
    pub(crate) permission_name: String,
}

/// Facts ("Errors"): 404s of this module.
pub(crate) fn role_not_found() -> ErrorReply {
    ErrorReply::new(
        StatusCode::NOT_FOUND,
        "inexistent_role",
        "The role does not exist.",
    )
}

pub(crate) fn org_not_found() -> ErrorReply {
    ErrorReply::new(
        StatusCode::NOT_FOUND,
        "inexistent_organization",
        "The organization does not exist.",
    )
}

fn conflict(message: impl Into<String>) -> ErrorReply {
    ErrorReply::new(StatusCode::CONFLICT, "conflict", message)
}

fn limit(message: String) -> ErrorReply {
    ErrorReply::new(StatusCode::BAD_REQUEST, LIMIT_CODE, message)
}

/// The tenant's roles, resource servers and organizations, and every user's grants.
#[derive(Default)]
pub(crate) struct Authz {
    servers: Vec<ResourceServer>,
    server_by_identifier: HashMap<String, u16>,
    roles: Vec<Role>,
    role_by_id: HashMap<String, RoleIx>,
    role_by_name: BTreeMap<String, RoleIx>,
    orgs: Vec<Org>,
    org_by_id: HashMap<String, OrgIx>,
    org_by_name: BTreeMap<String, OrgIx>,
    users: HashMap<Arc<str>, Grants>,
}

impl Authz {
    // ---- resource servers ---------------------------------------------------------------

    /// Every resource server, in identifier order.
    pub(crate) fn servers(&self) -> Vec<&ResourceServer> {
        let mut list: Vec<&ResourceServer> = self.servers.iter().collect();
        list.sort_by(|a, b| a.identifier.cmp(&b.identifier));
        list
    }

    /// Spec (`post_resource-servers`): 409 for an identifier already taken.
    pub(crate) fn create_server(
        &mut self,
        identifier: &str,
        name: Option<&str>,
        scopes: Vec<(String, Option<String>)>,
    ) -> Result<&ResourceServer, ErrorReply> {
        if self.server_by_identifier.contains_key(identifier) {
            return Err(conflict(
                "A resource server with the same identifier already exists.",
            ));
        }
        let ix = self.push_server(identifier, name.unwrap_or(identifier));
        let server = &mut self.servers[usize::from(ix)];
        for (value, description) in scopes {
            if !server.scopes.iter().any(|(v, _)| *v == value) {
                server.scopes.push((value, description));
            }
        }
        Ok(&self.servers[usize::from(ix)])
    }

    fn push_server(&mut self, identifier: &str, name: &str) -> u16 {
        let ix = self.servers.len() as u16;
        self.servers.push(ResourceServer {
            id: super::profile::random_hex_id(),
            name: name.to_string(),
            identifier: identifier.to_string(),
            scopes: Vec::new(),
        });
        self.server_by_identifier.insert(identifier.to_string(), ix);
        ix
    }

    /// The resource server of that identifier, created (with `name`) when missing.
    pub(crate) fn ensure_server(&mut self, identifier: &str, name: &str) -> u16 {
        match self.server_by_identifier.get(identifier) {
            Some(&ix) => ix,
            None => self.push_server(identifier, name),
        }
    }

    /// The permission of that name, creating its resource server and scope when missing
    /// (seed files and generated tenants: "created as needed").
    pub(crate) fn ensure_permission(&mut self, identifier: &str, name: &str) -> Perm {
        let server = self.ensure_server(identifier, identifier);
        let scopes = &mut self.servers[usize::from(server)].scopes;
        let scope = match scopes.iter().position(|(v, _)| v == name) {
            Some(at) => at,
            None => {
                scopes.push((name.to_string(), None));
                scopes.len() - 1
            }
        };
        Perm {
            server,
            scope: scope as u16,
        }
    }

    /// Facts ("Roles…"): a permission names an existing resource server and one of its
    /// scopes; otherwise 400 (stricter than silence: the whole request is refused).
    pub(crate) fn permission(&self, p: &PermissionName) -> Result<Perm, ErrorReply> {
        let Some(&server) = self.server_by_identifier.get(&p.resource_server_identifier) else {
            return Err(ErrorReply::invalid_body(format!(
                "Resource server with identifier {} does not exist.",
                p.resource_server_identifier
            )));
        };
        let scopes = &self.servers[usize::from(server)].scopes;
        match scopes.iter().position(|(v, _)| *v == p.permission_name) {
            Some(scope) => Ok(Perm {
                server,
                scope: scope as u16,
            }),
            None => Err(ErrorReply::invalid_body(format!(
                "Permission {} does not exist on resource server {}.",
                p.permission_name, p.resource_server_identifier
            ))),
        }
    }

    pub(crate) fn permissions(&self, list: &[PermissionName]) -> Result<Vec<Perm>, ErrorReply> {
        let mut perms = list
            .iter()
            .map(|p| self.permission(p))
            .collect::<Result<Vec<_>, _>>()?;
        perms.sort_unstable();
        perms.dedup();
        Ok(perms)
    }

    /// Spec (`PermissionsResponsePayload`): a permission with its server's name and the scope's
    /// description.
    fn permission_json(&self, perm: Perm) -> Map<String, Value> {
        let server = &self.servers[usize::from(perm.server)];
        let (value, description) = &server.scopes[usize::from(perm.scope)];
        let mut map = Map::new();
        map.insert(
            "resource_server_identifier".into(),
            server.identifier.clone().into(),
        );
        map.insert("permission_name".into(), value.clone().into());
        map.insert("resource_server_name".into(), server.name.clone().into());
        if let Some(description) = description {
            map.insert("description".into(), description.clone().into());
        }
        map
    }

    fn permission_name(&self, perm: Perm) -> PermissionName {
        let server = &self.servers[usize::from(perm.server)];
        PermissionName {
            resource_server_identifier: server.identifier.clone(),
            permission_name: server.scopes[usize::from(perm.scope)].0.clone(),
        }
    }

    /// Permissions in the order every answer lists them: by identifier, then name.
    fn sorted(&self, perms: impl Iterator<Item = Perm>) -> Vec<Perm> {
        let mut perms: Vec<Perm> = perms.collect();
        perms.sort_by_cached_key(|p| self.permission_name(*p));
        perms.dedup();
        perms
    }

    // ---- roles -----------------------------------------------------------------------------

    /// Roles in name order, those whose name contains `filter` (case-insensitive) when given.
    pub(crate) fn roles(&self, filter: Option<&str>) -> Vec<&Role> {
        let filter = filter.map(str::to_lowercase);
        self.role_by_name
            .values()
            .map(|&ix| &self.roles[usize::from(ix)])
            .filter(|r| {
                filter
                    .as_deref()
                    .is_none_or(|f| r.name.to_lowercase().contains(f))
            })
            .collect()
    }

    pub(crate) fn role(&self, id: &str) -> Result<(RoleIx, &Role), ErrorReply> {
        let ix = *self.role_by_id.get(id).ok_or_else(role_not_found)?;
        Ok((ix, &self.roles[usize::from(ix)]))
    }

    pub(crate) fn role_by_name(&self, name: &str) -> Option<RoleIx> {
        self.role_by_name.get(name).copied()
    }

    /// Spec (`post_roles`): 409 "The role already exists." for a name taken; facts: at most
    /// 1,000 roles per tenant.
    pub(crate) fn create_role(
        &mut self,
        name: &str,
        description: Option<&str>,
    ) -> Result<RoleIx, ErrorReply> {
        if self.role_by_name.contains_key(name) {
            return Err(conflict("The role already exists."));
        }
        if self.roles.len() >= MAX_ROLES {
            return Err(limit(format!(
                "A tenant can have at most {MAX_ROLES} roles; delete one before creating another."
            )));
        }
        let ix = self.roles.len() as RoleIx;
        let id = format!("rol_{}", super::random_token(16));
        self.roles.push(Role {
            id: id.clone(),
            name: name.to_string(),
            description: description.map(str::to_string),
            permissions: BTreeSet::new(),
            users: BTreeSet::new(),
        });
        self.role_by_id.insert(id, ix);
        self.role_by_name.insert(name.to_string(), ix);
        Ok(ix)
    }

    /// The role of that name, created when missing (seed files, generated tenants).
    pub(crate) fn ensure_role(&mut self, name: &str) -> Result<RoleIx, ErrorReply> {
        match self.role_by_name(name) {
            Some(ix) => Ok(ix),
            None => self.create_role(name, None),
        }
    }

    /// Spec (`Role`): `{id, name, description}`.
    pub(crate) fn role_json(&self, ix: RoleIx) -> Value {
        let role = &self.roles[usize::from(ix)];
        let mut value = json!({"id": role.id, "name": role.name});
        if let Some(description) = &role.description {
            value["description"] = description.clone().into();
        }
        value
    }

    /// Spec (`OrganizationMemberRole`): `{id, name}`.
    fn member_role_json(&self, ix: RoleIx) -> Value {
        let role = &self.roles[usize::from(ix)];
        json!({"id": role.id, "name": role.name})
    }

    pub(crate) fn role_ids(&self, ids: &[String]) -> Result<Vec<RoleIx>, ErrorReply> {
        let mut roles = ids
            .iter()
            .map(|id| self.role(id).map(|(ix, _)| ix))
            .collect::<Result<Vec<_>, _>>()?;
        roles.sort_unstable();
        roles.dedup();
        Ok(roles)
    }

    /// A role's permissions, sorted, as the API shows them.
    pub(crate) fn role_permissions(&self, ix: RoleIx) -> Vec<Value> {
        let role = &self.roles[usize::from(ix)];
        self.sorted(role.permissions.iter().copied())
            .into_iter()
            .map(|p| Value::Object(self.permission_json(p)))
            .collect()
    }

    /// Adds or removes role permissions (no limit: the facts give none).
    pub(crate) fn change_role_permissions(&mut self, ix: RoleIx, perms: &[Perm], change: Change) {
        let role = &mut self.roles[usize::from(ix)];
        for perm in perms {
            match change {
                Change::Add => role.permissions.insert(*perm),
                Change::Remove => role.permissions.remove(perm),
            };
        }
    }

    /// The users holding a role: `(count, the ids from `from` on, at most `take`)`.
    pub(crate) fn role_users(
        &self,
        ix: RoleIx,
        from: Option<&str>,
        skip: usize,
        take: usize,
    ) -> (usize, Vec<Arc<str>>) {
        let users = &self.roles[usize::from(ix)].users;
        let page = match from {
            Some(from) => users
                .range::<str, _>((std::ops::Bound::Included(from), std::ops::Bound::Unbounded))
                .skip(skip)
                .take(take)
                .cloned()
                .collect(),
            None => users.iter().skip(skip).take(take).cloned().collect(),
        };
        (users.len(), page)
    }

    // ---- users -----------------------------------------------------------------------------

    /// The shared id of a user, made once.
    fn key(&mut self, user_id: &str) -> Arc<str> {
        match self.users.get_key_value(user_id) {
            Some((key, _)) => key.clone(),
            None => {
                let key: Arc<str> = Arc::from(user_id);
                self.users.insert(key.clone(), Grants::default());
                key
            }
        }
    }

    fn drop_if_empty(&mut self, user_id: &str) {
        if self.users.get(user_id).is_some_and(Grants::is_empty) {
            self.users.remove(user_id);
        }
    }

    pub(crate) fn user_roles(&self, user_id: &str) -> Vec<RoleIx> {
        let mut roles: Vec<RoleIx> = self
            .users
            .get(user_id)
            .map(|g| g.roles.to_vec())
            .unwrap_or_default();
        roles.sort_by(|a, b| {
            self.roles[usize::from(*a)]
                .name
                .cmp(&self.roles[usize::from(*b)].name)
        });
        roles
    }

    /// Facts ("Roles…"): at most 50 roles per user; assigning a role the user holds is fine.
    pub(crate) fn check_assign_roles(
        &self,
        user_id: &str,
        roles: &[RoleIx],
    ) -> Result<(), ErrorReply> {
        let held = self.users.get(user_id).map(|g| &*g.roles).unwrap_or(&[]);
        let total = held.len() + missing(held, roles);
        if total > MAX_USER_ROLES {
            return Err(limit(format!(
                "A user can have at most {MAX_USER_ROLES} roles; the user {user_id} would have {total}."
            )));
        }
        Ok(())
    }

    /// Assigns roles (sorted, without repeats), within the limit of [`Authz::check_assign_roles`].
    pub(crate) fn assign_roles(
        &mut self,
        user_id: &str,
        roles: &[RoleIx],
    ) -> Result<(), ErrorReply> {
        self.check_assign_roles(user_id, roles)?;
        let key = self.key(user_id);
        for &ix in roles {
            self.roles[usize::from(ix)].users.insert(key.clone());
        }
        let grants = self.users.get_mut(user_id).expect("made by key");
        add_sorted(&mut grants.roles, roles);
        Ok(())
    }

    pub(crate) fn unassign_roles(&mut self, user_id: &str, roles: &[RoleIx]) {
        let Some(grants) = self.users.get_mut(user_id) else {
            return;
        };
        remove_sorted(&mut grants.roles, roles);
        for &ix in roles {
            self.roles[usize::from(ix)].users.remove(user_id);
        }
        self.drop_if_empty(user_id);
    }

    /// Facts ("Roles…"): at most 1,000 direct permissions per user.
    pub(crate) fn grant_permissions(
        &mut self,
        user_id: &str,
        perms: &[Perm],
    ) -> Result<(), ErrorReply> {
        let held = self
            .users
            .get(user_id)
            .map(|g| &*g.permissions)
            .unwrap_or(&[]);
        let total = held.len() + missing(held, perms);
        if total > MAX_USER_PERMISSIONS {
            return Err(limit(format!(
                "A user can have at most {MAX_USER_PERMISSIONS} direct permissions; the user {user_id} would have {total}."
            )));
        }
        self.key(user_id);
        let grants = self.users.get_mut(user_id).expect("made by key");
        add_sorted(&mut grants.permissions, perms);
        Ok(())
    }

    pub(crate) fn revoke_permissions(&mut self, user_id: &str, perms: &[Perm]) {
        if let Some(grants) = self.users.get_mut(user_id) {
            remove_sorted(&mut grants.permissions, perms);
        }
        self.drop_if_empty(user_id);
    }

    /// Spec (`UserPermissionSchema`) and Auth0's answers: every permission the user has, direct
    /// or through a role, each once with its `sources`: `{source_id: "", source_name: "",
    /// source_type: "DIRECT"}` for a direct grant, `{source_id: <role id>, source_name: <role
    /// name>, source_type: "ROLE"}` for each role that grants it.
    pub(crate) fn user_permissions(&self, user_id: &str) -> Vec<Value> {
        let Some(grants) = self.users.get(user_id) else {
            return Vec::new();
        };
        let mut sources: BTreeMap<Perm, Vec<Value>> = BTreeMap::new();
        for &perm in grants.permissions.iter() {
            sources
                .entry(perm)
                .or_default()
                .push(json!({"source_id": "", "source_name": "", "source_type": "DIRECT"}));
        }
        for &ix in grants.roles.iter() {
            let role = &self.roles[usize::from(ix)];
            for &perm in &role.permissions {
                sources.entry(perm).or_default().push(
                    json!({"source_id": role.id, "source_name": role.name, "source_type": "ROLE"}),
                );
            }
        }
        self.sorted(sources.keys().copied())
            .into_iter()
            .map(|perm| {
                let mut map = self.permission_json(perm);
                map.insert("sources".into(), Value::Array(sources[&perm].clone()));
                Value::Object(map)
            })
            .collect()
    }

    /// The organizations a user belongs to, in name order.
    pub(crate) fn user_orgs(&self, user_id: &str) -> Vec<&Org> {
        let mut orgs: Vec<&Org> = self
            .users
            .get(user_id)
            .map(|g| g.orgs.iter().map(|&ix| &self.orgs[ix as usize]).collect())
            .unwrap_or_default();
        orgs.sort_by(|a, b| a.name.cmp(&b.name));
        orgs
    }

    /// Forgets a deleted user: roles, permissions, memberships and member roles.
    pub(crate) fn forget_user(&mut self, user_id: &str) {
        let Some(grants) = self.users.remove(user_id) else {
            return;
        };
        for &ix in grants.roles.iter() {
            self.roles[usize::from(ix)].users.remove(user_id);
        }
        for &ix in grants.orgs.iter() {
            self.orgs[ix as usize].members.remove(user_id);
        }
    }

    // ---- organizations ---------------------------------------------------------------------

    /// Organizations in name order.
    pub(crate) fn orgs(&self) -> impl Iterator<Item = &Org> {
        self.org_by_name.values().map(|&ix| &self.orgs[ix as usize])
    }

    /// Organizations from the one named `from` on (name order).
    pub(crate) fn orgs_from<'a>(&'a self, from: &'a str) -> impl Iterator<Item = &'a Org> {
        self.org_by_name
            .range::<str, _>((std::ops::Bound::Included(from), std::ops::Bound::Unbounded))
            .map(|(_, &ix)| &self.orgs[ix as usize])
    }

    pub(crate) fn org(&self, id: &str) -> Result<(OrgIx, &Org), ErrorReply> {
        let ix = *self.org_by_id.get(id).ok_or_else(org_not_found)?;
        Ok((ix, &self.orgs[ix as usize]))
    }

    pub(crate) fn org_at(&self, ix: OrgIx) -> (OrgIx, &Org) {
        (ix, &self.orgs[ix as usize])
    }

    pub(crate) fn org_by_name(&self, name: &str) -> Option<&Org> {
        self.org_by_name
            .get(name)
            .map(|&ix| &self.orgs[ix as usize])
    }

    /// Spec (`post_organizations`): 409 "An organization with this name already exists.".
    pub(crate) fn create_org(
        &mut self,
        name: &str,
        display_name: Option<&str>,
        metadata: Option<Map<String, Value>>,
        branding: Option<Value>,
    ) -> Result<OrgIx, ErrorReply> {
        if self.org_by_name.contains_key(name) {
            return Err(conflict("An organization with this name already exists."));
        }
        let ix = self.orgs.len() as OrgIx;
        let id = format!("org_{}", super::random_token(16));
        self.orgs.push(Org {
            id: id.clone(),
            name: name.to_string(),
            display_name: display_name.map(str::to_string),
            metadata,
            branding,
            members: BTreeMap::new(),
        });
        self.org_by_id.insert(id, ix);
        self.org_by_name.insert(name.to_string(), ix);
        Ok(ix)
    }

    /// The organization of that name, created when missing (seed files, generated tenants).
    pub(crate) fn ensure_org(&mut self, name: &str) -> OrgIx {
        self.ensure_org_displayed(name, None)
    }

    /// As [`Authz::ensure_org`], a new organization taking `display_name`.
    pub(crate) fn ensure_org_displayed(&mut self, name: &str, display_name: Option<&str>) -> OrgIx {
        match self.org_by_name.get(name) {
            Some(&ix) => ix,
            None => self
                .create_org(name, display_name, None, None)
                .expect("a new name does not conflict"),
        }
    }

    /// Spec (`Organization`).
    pub(crate) fn org_json(org: &Org) -> Value {
        let mut value = json!({"id": org.id, "name": org.name});
        if let Some(display_name) = &org.display_name {
            value["display_name"] = display_name.clone().into();
        }
        if let Some(branding) = &org.branding {
            value["branding"] = branding.clone();
        }
        if let Some(metadata) = &org.metadata {
            value["metadata"] = Value::Object(metadata.clone());
        }
        value
    }

    /// Facts ("Roles…"): at most 100k members per organization; adding a member again is fine.
    pub(crate) fn add_members(&mut self, org: OrgIx, users: &[String]) -> Result<(), ErrorReply> {
        let members = &self.orgs[org as usize].members;
        let new = users
            .iter()
            .filter(|u| !members.contains_key(u.as_str()))
            .count();
        if members.len() + new > MAX_MEMBERS {
            return Err(limit(format!(
                "An organization can have at most {MAX_MEMBERS} members; this one would have {}.",
                members.len() + new
            )));
        }
        for user in users {
            let key = self.key(user);
            self.orgs[org as usize]
                .members
                .entry(key)
                .or_insert_with(|| Box::new([]));
            let grants = self.users.get_mut(user.as_str()).expect("made by key");
            add_sorted(&mut grants.orgs, &[org]);
        }
        Ok(())
    }

    /// Removes members (with their member roles); users who are not members are passed over.
    pub(crate) fn remove_members(&mut self, org: OrgIx, users: &[String]) {
        for user in users {
            self.orgs[org as usize].members.remove(user.as_str());
            if let Some(grants) = self.users.get_mut(user.as_str()) {
                remove_sorted(&mut grants.orgs, &[org]);
            }
            self.drop_if_empty(user);
        }
    }

    /// The members of an organization: `(count, from `from` on, at most `take`)`, each with its
    /// member roles.
    pub(crate) fn members(
        &self,
        org: OrgIx,
        from: Option<&str>,
        skip: usize,
        take: usize,
    ) -> (usize, Vec<Member>) {
        let members = &self.orgs[org as usize].members;
        let range = match from {
            Some(from) => members
                .range::<str, _>((std::ops::Bound::Included(from), std::ops::Bound::Unbounded)),
            None => members.range::<str, _>(..),
        };
        let page = range
            .skip(skip)
            .take(take)
            .map(|(id, roles)| {
                let roles = self.by_name(roles).into_iter();
                (
                    id.clone(),
                    roles.map(|ix| self.member_role_json(ix)).collect(),
                )
            })
            .collect();
        (members.len(), page)
    }

    /// The member roles of a user in an organization, in name order; 404 for a non-member
    /// (stricter than silence: the spec lists 404 for an unknown user).
    pub(crate) fn member_roles(
        &self,
        org: OrgIx,
        user_id: &str,
    ) -> Result<Vec<RoleIx>, ErrorReply> {
        let roles = self.orgs[org as usize]
            .members
            .get(user_id)
            .ok_or_else(not_a_member)?;
        Ok(self.by_name(roles))
    }

    /// Adds or removes member roles; 404 for a user who is not a member. Spec
    /// (`post_organization_member_roles`): 409 "No more roles can be assigned to this
    /// organization member." past the facts' 50 roles per member.
    pub(crate) fn change_member_roles(
        &mut self,
        org: OrgIx,
        user_id: &str,
        roles: &[RoleIx],
        change: Change,
    ) -> Result<(), ErrorReply> {
        let held = self.orgs[org as usize]
            .members
            .get_mut(user_id)
            .ok_or_else(not_a_member)?;
        match change {
            Change::Add if held.len() + missing(held, roles) > MAX_MEMBER_ROLES => {
                Err(ErrorReply::new(
                    StatusCode::CONFLICT,
                    LIMIT_CODE,
                    "No more roles can be assigned to this organization member.",
                ))
            }
            Change::Add => {
                add_sorted(held, roles);
                Ok(())
            }
            Change::Remove => {
                remove_sorted(held, roles);
                Ok(())
            }
        }
    }

    fn by_name(&self, roles: &[RoleIx]) -> Vec<RoleIx> {
        let mut roles = roles.to_vec();
        roles.sort_by(|a, b| {
            self.roles[usize::from(*a)]
                .name
                .cmp(&self.roles[usize::from(*b)].name)
        });
        roles
    }

    // ---- evidence --------------------------------------------------------------------------

    /// What `GET /__sandbox/users?with=authz` adds to a user, the shape an export writes:
    /// `roles` (names, sorted), `organizations` (`[{name, roles}]` by name, roles sorted) and
    /// `permissions` (direct ones only, by identifier then name).
    pub(crate) fn evidence(&self, user_id: &str) -> [(&'static str, Value); 3] {
        let grants = self.users.get(user_id);
        let names = |roles: &[RoleIx]| -> Vec<String> {
            let mut names: Vec<String> = roles
                .iter()
                .map(|&ix| self.roles[usize::from(ix)].name.clone())
                .collect();
            names.sort();
            names
        };
        let roles = grants.map(|g| names(&g.roles)).unwrap_or_default();
        let orgs: Vec<Value> = self
            .user_orgs(user_id)
            .into_iter()
            .map(|org| {
                let roles = org
                    .members
                    .get(user_id)
                    .map(|r| names(r))
                    .unwrap_or_default();
                json!({"name": org.name, "roles": roles})
            })
            .collect();
        let permissions: Vec<Value> = grants
            .map(|g| self.sorted(g.permissions.iter().copied()))
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                let p = self.permission_name(p);
                json!({
                    "resource_server_identifier": p.resource_server_identifier,
                    "permission_name": p.permission_name,
                })
            })
            .collect();
        [
            ("roles", json!(roles)),
            ("organizations", Value::Array(orgs)),
            ("permissions", Value::Array(permissions)),
        ]
    }
}

impl Authz {
    /// Takes a seeded user's `roles: ["name", ...]`, `organizations: [{name, roles?: ["name",
    /// ...]}]` and `permissions: [{resource_server_identifier, permission_name}]` out of the
    /// user and grants them, creating the roles, organizations, resource servers and scopes
    /// they name. A message when their shape is wrong.
    pub(crate) fn seed(
        &mut self,
        user_id: &str,
        user: &mut Map<String, Value>,
    ) -> Result<(), String> {
        let names = |value: &Value, what: &str| -> Result<Vec<String>, String> {
            let list = value
                .as_array()
                .ok_or_else(|| format!("`{what}` must be an array of role names"))?;
            list.iter()
                .map(|v| {
                    v.as_str()
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .ok_or_else(|| format!("`{what}` must hold non-empty role names"))
                })
                .collect()
        };
        let shown = |e: ErrorReply| e.message;
        if let Some(value) = user.shift_remove("roles") {
            let mut roles = Vec::new();
            for name in names(&value, "roles")? {
                roles.push(self.ensure_role(&name).map_err(shown)?);
            }
            self.assign_roles(user_id, &roles).map_err(shown)?;
        }
        if let Some(value) = user.shift_remove("permissions") {
            let list = value.as_array().ok_or(
                "`permissions` must be an array of {resource_server_identifier, permission_name}",
            )?;
            let mut perms = Vec::new();
            for item in list {
                let text = |key: &str| {
                    item.get(key)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| format!("each of `permissions` needs a string `{key}`"))
                };
                let identifier = text("resource_server_identifier")?;
                perms.push(self.ensure_permission(identifier, text("permission_name")?));
            }
            self.grant_permissions(user_id, &perms).map_err(shown)?;
        }
        if let Some(value) = user.shift_remove("organizations") {
            let list = value
                .as_array()
                .ok_or("`organizations` must be an array of {name, roles}")?;
            for item in list {
                let name = item
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or("each of `organizations` needs a string `name`")?;
                super::organizations::check_org_name(name).map_err(shown)?;
                let org = self.ensure_org(name);
                self.add_members(org, &[user_id.to_string()])
                    .map_err(shown)?;
                if let Some(roles) = item.get("roles") {
                    let mut ixs = Vec::new();
                    for name in names(roles, "organizations[].roles")? {
                        ixs.push(self.ensure_role(&name).map_err(shown)?);
                    }
                    self.change_member_roles(org, user_id, &ixs, Change::Add)
                        .map_err(shown)?;
                }
            }
        }
        Ok(())
    }
}

fn not_a_member() -> ErrorReply {
    ErrorReply::new(
        StatusCode::NOT_FOUND,
        "inexistent_user",
        "The user is not a member of the organization.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assigning_a_held_role_again_is_fine_and_not_counted_twice() {
        let mut authz = Authz::default();
        let roles: Vec<RoleIx> = (0..MAX_USER_ROLES)
            .map(|i| authz.create_role(&format!("r{i:02}"), None).unwrap())
            .collect();
        authz.assign_roles("auth0|a", &roles).unwrap();
        authz.assign_roles("auth0|a", &roles[..3]).unwrap();
        let extra = authz.create_role("extra", None).unwrap();
        let refused = authz.assign_roles("auth0|a", &[extra]).unwrap_err();
        assert_eq!(
            (refused.status.as_u16(), refused.error_code),
            (400, LIMIT_CODE)
        );
        assert_eq!(authz.user_roles("auth0|a").len(), MAX_USER_ROLES);
    }

    #[test]
    fn forgetting_a_user_leaves_no_trace_in_roles_or_organizations() {
        let mut authz = Authz::default();
        let role = authz.create_role("admin", None).unwrap();
        let org = authz.ensure_org("acme");
        authz.assign_roles("auth0|a", &[role]).unwrap();
        authz.add_members(org, &["auth0|a".into()]).unwrap();
        authz
            .change_member_roles(org, "auth0|a", &[role], Change::Add)
            .unwrap();
        authz.forget_user("auth0|a");
        assert_eq!(authz.role_users(role, None, 0, 10).0, 0);
        assert_eq!(authz.members(org, None, 0, 10).0, 0);
        assert!(authz.users.is_empty());
    }
}
