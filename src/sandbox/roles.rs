//! Roles, permissions and resource servers: `/roles…`, `/users/{id}/roles`,
//! `/users/{id}/permissions` and `/resource-servers` (facts: "Roles, permissions,
//! organizations"; the spec's operations of those paths).
//!
//! Lock order, here as everywhere: the user store first, then the authorization data.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

use super::authz::{Authz, Change, PermissionName};
use super::error::ErrorReply;
use super::paging::{Offset, Paging, Rules, checkpoint_body};
use super::routes::{ApiResult, Params, Shared, read_body, require_scope, require_scopes};
use super::validate::type_name;

const OFFSET_PARAMS: &[&str] = &["per_page", "page", "include_totals"];
const CHECKPOINT_PARAMS: &[&str] = &["per_page", "page", "include_totals", "from", "take"];

/// Spec: `per_page` defaults to 50 on these lists; offset paging only.
pub(super) const OFFSET_ONLY: Rules = Rules {
    checkpoint: false,
    default: 50,
    max_page: None,
    cap: false,
};

/// The spec's 403 for `get_role_user` and `get_user_roles`: "expected all of: read:users,
/// read:roles", or the finer `read:role_members` alone.
const READ_ROLE_MEMBERS: &[&[&str]] = &[&["read:users", "read:roles"], &["read:role_members"]];

// ---------------------------------------------------------------------------------------------
// Bodies

fn payload(reason: &str, field: &str) -> ErrorReply {
    ErrorReply::invalid_body(format!(
        "Payload validation error: '{reason}' on property {field}."
    ))
}

/// Spec: a JSON object; with `closed` (additionalProperties false) only the `allowed` keys;
/// every `required` key present.
pub(super) fn object(
    body: Value,
    allowed: &[&str],
    required: &[&str],
    closed: bool,
) -> Result<Map<String, Value>, ErrorReply> {
    let Value::Object(map) = body else {
        return Err(ErrorReply::invalid_body(format!(
            "Payload validation error: 'Expected type object but found type {}'.",
            type_name(&body)
        )));
    };
    if closed {
        let unknown: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !allowed.contains(k))
            .collect();
        if !unknown.is_empty() {
            return Err(ErrorReply::invalid_body(format!(
                "Payload validation error: 'Additional properties not allowed: {}'.",
                unknown.join(",")
            )));
        }
    }
    if let Some(absent) = required.iter().find(|k| !map.contains_key(**k)) {
        return Err(ErrorReply::invalid_body(format!(
            "Payload validation error: 'Missing required property: {absent}'."
        )));
    }
    Ok(map)
}

/// The request body as an object (see [`object`]).
pub(super) async fn body_object(
    headers: &HeaderMap,
    body: Body,
    allowed: &[&str],
    required: &[&str],
    closed: bool,
) -> Result<Map<String, Value>, ErrorReply> {
    object(read_body(headers, body).await?, allowed, required, closed)
}

/// Spec: `key` is an array of at least one item.
fn items<'a>(map: &'a Map<String, Value>, key: &str) -> Result<&'a [Value], ErrorReply> {
    match map.get(key) {
        Some(Value::Array(items)) if items.is_empty() => {
            Err(payload("Array is too short (0), minimum 1", key))
        }
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(payload(
            &format!("Expected type array but found type {}", type_name(other)),
            key,
        )),
        None => Err(payload("Missing required property", key)),
    }
}

/// Spec: `key` is a non-empty array of non-empty strings (ids); repeats are read once.
pub(super) fn id_list(map: &Map<String, Value>, key: &str) -> Result<Vec<String>, ErrorReply> {
    let mut ids = Vec::new();
    for item in items(map, key)? {
        match item {
            Value::String(s) if !s.is_empty() => ids.push(s.clone()),
            Value::String(_) => {
                return Err(payload("String is too short (0 chars), minimum 1", key));
            }
            other => {
                return Err(payload(
                    &format!("Expected type string but found type {}", type_name(other)),
                    key,
                ));
            }
        }
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Spec (`PermissionRequestPayload`, additionalProperties false): `key` is a non-empty array
/// of `{resource_server_identifier, permission_name}`.
pub(super) fn permission_list(
    map: &Map<String, Value>,
    key: &str,
) -> Result<Vec<PermissionName>, ErrorReply> {
    const FIELDS: [&str; 2] = ["resource_server_identifier", "permission_name"];
    let mut list = Vec::new();
    for item in items(map, key)? {
        let item = object(item.clone(), &FIELDS, &FIELDS, true)?;
        let text = |field: &str| match &item[field] {
            Value::String(s) => Ok(s.clone()),
            other => Err(payload(
                &format!("Expected type string but found type {}", type_name(other)),
                field,
            )),
        };
        list.push(PermissionName {
            resource_server_identifier: text(FIELDS[0])?,
            permission_name: text(FIELDS[1])?,
        });
    }
    Ok(list)
}

/// An optional string field.
pub(super) fn optional_text<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    min: usize,
    max: usize,
) -> Result<Option<&'a str>, ErrorReply> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => {
            let len = s.chars().count();
            if len < min {
                return Err(payload(
                    &format!("String is too short ({len} chars), minimum {min}"),
                    key,
                ));
            }
            if len > max {
                return Err(payload(
                    &format!("String is too long ({len} chars), maximum {max}"),
                    key,
                ));
            }
            Ok(Some(s))
        }
        Some(other) => Err(payload(
            &format!("Expected type string but found type {}", type_name(other)),
            key,
        )),
    }
}

/// One page of a list already in order, offset-paged.
pub(super) fn offset_page(offset: &Offset, key: &str, all: Vec<Value>) -> Value {
    let total = all.len();
    let page = all
        .into_iter()
        .skip(offset.skip())
        .take(offset.per_page)
        .collect();
    offset.body(key, page, total)
}

/// 404 unless the user exists (facts: "The user does not exist.", `inexistent_user`).
pub(super) fn user_must_exist(state: &Shared, user_id: &str) -> Result<(), ErrorReply> {
    let store = state.store.lock().expect("store lock");
    if store.contains(user_id) {
        Ok(())
    } else {
        Err(ErrorReply::user_not_found())
    }
}

// ---------------------------------------------------------------------------------------------
// /roles

/// Spec (`get_roles`): `name_filter` (a case-insensitive part of the name), offset paging with
/// 50 by default; `{start, limit, total, roles}` with `include_totals`. Needs `read:roles`.
pub(super) async fn list(AxState(state): AxState<Shared>, RawQuery(raw): RawQuery) -> ApiResult {
    require_scope(&state, &["read:roles"])?;
    let params = Params::parse(raw, &["per_page", "page", "include_totals", "name_filter"])?;
    let Paging::Offset(offset) = Paging::parse(&params, &OFFSET_ONLY)? else {
        unreachable!("offset only")
    };
    let authz = state.authz.lock().expect("authz lock");
    let roles = authz
        .roles(params.get("name_filter"))
        .into_iter()
        .map(|r| role_summary(&authz, &r.id))
        .collect();
    Ok(axum::Json(offset_page(&offset, "roles", roles)).into_response())
}

fn role_summary(authz: &Authz, id: &str) -> Value {
    authz
        .role(id)
        .map(|(ix, _)| authz.role_json(ix))
        .unwrap_or_default()
}

/// Spec (`post_roles`): `{name, description?}` (no other key); 200 with the role; 409 for a
/// name taken; facts: at most 1,000 roles. Needs `create:roles`.
pub(super) async fn create(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    require_scope(&state, &["create:roles"])?;
    let body = body_object(&headers, body, &["name", "description"], &["name"], true).await?;
    // Stricter than the schema: a role needs a name of at least one character.
    let name = optional_text(&body, "name", 1, usize::MAX)?.unwrap_or_default();
    let description = optional_text(&body, "description", 0, usize::MAX)?;
    let mut authz = state.authz.lock().expect("authz lock");
    let ix = authz.create_role(name, description)?;
    Ok(axum::Json(authz.role_json(ix)).into_response())
}

/// Spec (`get_roles_by_id`): the role, or 404. Needs `read:roles`.
pub(super) async fn get(AxState(state): AxState<Shared>, Path(id): Path<String>) -> ApiResult {
    require_scope(&state, &["read:roles"])?;
    let authz = state.authz.lock().expect("authz lock");
    let (ix, _) = authz.role(&id)?;
    Ok(axum::Json(authz.role_json(ix)).into_response())
}

/// Spec (`get_role_user`): the role's users (`RoleUser`: user_id, email, name, picture) in
/// user_id order; checkpoint paging (`from`, `take` ≤ 100, 50 by default → `{users, next?}`)
/// or offset paging (`per_page` 50 by default) capped at the first 1,000. 404 for an unknown
/// role. Needs read:users and read:roles, or read:role_members.
pub(super) async fn users(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    require_scopes(&state, READ_ROLE_MEMBERS)?;
    let params = Params::parse(raw, CHECKPOINT_PARAMS)?;
    let paging = Paging::parse(&params, &WITH_CHECKPOINT)?;
    let store = state.store.lock().expect("store lock");
    let authz = state.authz.lock().expect("authz lock");
    let (ix, _) = authz.role(&id)?;
    let summary = |user_id: &str| {
        let user = store.get(user_id).unwrap_or_default();
        let mut out = Map::new();
        out.insert("user_id".into(), user_id.into());
        for key in ["email", "picture", "name"] {
            if let Some(v) = user.get(key).filter(|v| v.is_string()) {
                out.insert(key.into(), v.clone());
            }
        }
        Value::Object(out)
    };
    let body = match paging {
        Paging::Checkpoint { from, take } => {
            let (_, ids) = authz.role_users(ix, from.as_deref(), 0, take + 1);
            let next = ids.get(take).map(|id| id.to_string());
            let page = ids.iter().take(take).map(|id| summary(id)).collect();
            checkpoint_body("users", page, next.as_deref())
        }
        Paging::Offset(offset) => {
            let (total, ids) = authz.role_users(ix, None, offset.skip(), offset.per_page);
            offset.body("users", ids.iter().map(|id| summary(id)).collect(), total)
        }
    };
    Ok(axum::Json(body).into_response())
}

/// Spec: lists of role users and organization members take checkpoint paging too, and offset
/// paging stops at the first 1,000.
pub(super) const WITH_CHECKPOINT: Rules = Rules {
    checkpoint: true,
    default: 50,
    max_page: None,
    cap: true,
};

/// Spec (`post_role_users`): `{users: [user_id, ...]}`; 200. 404 for an unknown role or user
/// (nothing is assigned then); facts: at most 50 roles per user, holding it already is fine.
/// Needs `update:roles` or `create:role_members`.
pub(super) async fn assign_users(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    require_scope(&state, &["update:roles", "create:role_members"])?;
    let body = body_object(&headers, body, &["users"], &["users"], true).await?;
    let users = id_list(&body, "users")?;
    let store = state.store.lock().expect("store lock");
    let mut authz = state.authz.lock().expect("authz lock");
    let (ix, _) = authz.role(&id)?;
    if !users.iter().all(|u| store.contains(u)) {
        return Err(ErrorReply::user_not_found());
    }
    // Every user is checked before any is changed.
    for user in &users {
        authz.check_assign_roles(user, &[ix])?;
    }
    for user in &users {
        authz.assign_roles(user, &[ix])?;
    }
    Ok(StatusCode::OK.into_response())
}

/// Spec (`get_role_permission`): the role's permissions (`PermissionsResponsePayload`) by
/// identifier then name, offset-paged. Needs `read:roles`.
pub(super) async fn permissions(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    require_scope(&state, &["read:roles"])?;
    let offset = offset_params(raw)?;
    let authz = state.authz.lock().expect("authz lock");
    let (ix, _) = authz.role(&id)?;
    let all = authz.role_permissions(ix);
    Ok(axum::Json(offset_page(&offset, "permissions", all)).into_response())
}

/// The offset paging of a list that takes nothing else.
pub(super) fn offset_params(raw: Option<String>) -> Result<Offset, ErrorReply> {
    let params = Params::parse(raw, OFFSET_PARAMS)?;
    match Paging::parse(&params, &OFFSET_ONLY)? {
        Paging::Offset(offset) => Ok(offset),
        Paging::Checkpoint { .. } => unreachable!("offset only"),
    }
}

/// Spec (`post_role_permission_assignment`): `{permissions: [...]}`; 201. Facts: each must name
/// an existing resource server and one of its scopes, else 400. Needs `update:roles`.
pub(super) async fn add_permissions(
    state: AxState<Shared>,
    id: Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    change_permissions(state, id, headers, body, Change::Add).await
}

/// Spec (`delete_role_permission_assignment`): 200. Needs `update:roles`.
pub(super) async fn remove_permissions(
    state: AxState<Shared>,
    id: Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    change_permissions(state, id, headers, body, Change::Remove).await
}

async fn change_permissions(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
    change: Change,
) -> ApiResult {
    require_scope(&state, &["update:roles"])?;
    let body = body_object(&headers, body, &["permissions"], &["permissions"], true).await?;
    let list = permission_list(&body, "permissions")?;
    let mut authz = state.authz.lock().expect("authz lock");
    let (ix, _) = authz.role(&id)?;
    let perms = authz.permissions(&list)?;
    authz.change_role_permissions(ix, &perms, change);
    let status = match change {
        Change::Add => StatusCode::CREATED,
        Change::Remove => StatusCode::OK,
    };
    Ok(status.into_response())
}

// ---------------------------------------------------------------------------------------------
// /users/{id}/roles and /users/{id}/permissions

/// Spec (`get_user_roles`): the user's roles (`Role`) by name, offset-paged; 404 for an
/// unknown user. Needs read:users and read:roles, or read:role_members.
pub(super) async fn user_roles(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    require_scopes(&state, READ_ROLE_MEMBERS)?;
    let offset = offset_params(raw)?;
    user_must_exist(&state, &id)?;
    let authz = state.authz.lock().expect("authz lock");
    let all = authz
        .user_roles(&id)
        .into_iter()
        .map(|ix| authz.role_json(ix))
        .collect();
    Ok(axum::Json(offset_page(&offset, "roles", all)).into_response())
}

/// Reads `{roles: [role_id, ...]}` (spec: `AssignUserRolesRequestContent`,
/// `DeleteUserRolesRequestContent`) for a user that exists.
async fn user_and_roles(
    state: &Shared,
    id: &str,
    headers: HeaderMap,
    body: Body,
) -> Result<Vec<String>, ErrorReply> {
    let body = body_object(&headers, body, &["roles"], &["roles"], true).await?;
    let roles = id_list(&body, "roles")?;
    user_must_exist(state, id)?;
    Ok(roles)
}

/// Spec (`post_user_roles`): `{roles: [role_id, ...]}`; 204. 404 for an unknown user or role;
/// facts: at most 50 roles per user, a role held already is fine. Needs `update:users` or
/// `create:role_members`.
pub(super) async fn assign_user_roles(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    require_scope(&state, &["update:users", "create:role_members"])?;
    let roles = user_and_roles(&state, &id, headers, body).await?;
    let store = state.store.lock().expect("store lock");
    let mut authz = state.authz.lock().expect("authz lock");
    if !store.contains(&id) {
        return Err(ErrorReply::user_not_found());
    }
    let roles = authz.role_ids(&roles)?;
    authz.assign_roles(&id, &roles)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Spec (`delete_user_roles`): 204; roles the user does not hold are passed over, unknown
/// role ids are 404. Needs `update:users` or `delete:role_members`.
pub(super) async fn remove_user_roles(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    require_scope(&state, &["update:users", "delete:role_members"])?;
    let roles = user_and_roles(&state, &id, headers, body).await?;
    let mut authz = state.authz.lock().expect("authz lock");
    let roles = authz.role_ids(&roles)?;
    authz.unassign_roles(&id, &roles);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Spec (`get_permissions`, `UserPermissionSchema`): every permission of the user, direct or
/// through a role, each with its `sources` (`source_type` `DIRECT` or `ROLE`), by identifier
/// then name, offset-paged; 404 for an unknown user. Needs `read:users`.
pub(super) async fn user_permissions(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    require_scope(&state, &["read:users"])?;
    let offset = offset_params(raw)?;
    user_must_exist(&state, &id)?;
    let all = state
        .authz
        .lock()
        .expect("authz lock")
        .user_permissions(&id);
    Ok(axum::Json(offset_page(&offset, "permissions", all)).into_response())
}

/// Spec (`post_permissions`): `{permissions: [...]}`; 201. 400 for a permission that names no
/// existing resource server scope; facts: at most 1,000 direct permissions per user. Needs
/// `update:users`.
pub(super) async fn grant_user_permissions(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    require_scope(&state, &["update:users"])?;
    let body = body_object(&headers, body, &["permissions"], &["permissions"], true).await?;
    let list = permission_list(&body, "permissions")?;
    let store = state.store.lock().expect("store lock");
    if !store.contains(&id) {
        return Err(ErrorReply::user_not_found());
    }
    let mut authz = state.authz.lock().expect("authz lock");
    let perms = authz.permissions(&list)?;
    authz.grant_permissions(&id, &perms)?;
    Ok(StatusCode::CREATED.into_response())
}

/// Spec (`delete_permissions`): 204; permissions the user does not hold are passed over.
/// Needs `update:users`.
pub(super) async fn revoke_user_permissions(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    require_scope(&state, &["update:users"])?;
    let body = body_object(&headers, body, &["permissions"], &["permissions"], true).await?;
    let list = permission_list(&body, "permissions")?;
    user_must_exist(&state, &id)?;
    let mut authz = state.authz.lock().expect("authz lock");
    let perms = authz.permissions(&list)?;
    authz.revoke_permissions(&id, &perms);
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------------------------------------
// /resource-servers

/// Spec (`get_resource-servers`): `identifiers` (repeatable) filters; offset paging, 50 by
/// default; `{start, limit, total, resource_servers}` with `include_totals`. In identifier
/// order. The sandbox lists only the APIs created on it (not Auth0's own system API). Needs
/// `read:resource_servers`.
pub(super) async fn list_servers(
    AxState(state): AxState<Shared>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    require_scope(&state, &["read:resource_servers"])?;
    let params = Params::parse_repeatable(
        raw,
        &[
            "identifiers",
            "page",
            "per_page",
            "include_totals",
            "include_fields",
        ],
        &["identifiers"],
    )?;
    params.boolean("include_fields")?;
    let Paging::Offset(offset) = Paging::parse(&params, &OFFSET_ONLY)? else {
        unreachable!("offset only")
    };
    let wanted = params.all("identifiers");
    let authz = state.authz.lock().expect("authz lock");
    let all = authz
        .servers()
        .into_iter()
        .filter(|s| wanted.is_empty() || wanted.contains(&s.identifier))
        .map(server_json)
        .collect();
    Ok(axum::Json(offset_page(&offset, "resource_servers", all)).into_response())
}

fn server_json(server: &super::authz::ResourceServer) -> Value {
    let scopes: Vec<Value> = server
        .scopes
        .iter()
        .map(|(value, description)| match description {
            Some(d) => json!({"value": value, "description": d}),
            None => json!({"value": value}),
        })
        .collect();
    json!({
        "id": server.id,
        "name": server.name,
        "is_system": false,
        "identifier": server.identifier,
        "scopes": scopes,
    })
}

/// Spec (`CreateResourceServerRequestContent`): the sandbox keeps `identifier` (1..600 chars,
/// required, unique: 409), `name` (≤ 200, no `<` or `>`; the identifier when absent) and
/// `scopes` (`[{value 1..280, description? ≤ 500}]`); the spec's other keys are refused as
/// not modelled (stricter than silence). 201 with the resource server. Needs
/// `create:resource_servers`.
pub(super) async fn create_server(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    require_scope(&state, &["create:resource_servers"])?;
    let body = body_object(
        &headers,
        body,
        &["identifier", "name", "scopes"],
        &["identifier"],
        true,
    )
    .await?;
    let identifier = optional_text(&body, "identifier", 1, 600)?.unwrap_or_default();
    let name = optional_text(&body, "name", 1, 200)?;
    if name.is_some_and(|n| n.contains(['<', '>'])) {
        return Err(payload("String does not match pattern ^[^<>]+$", "name"));
    }
    let mut scopes = Vec::new();
    match body.get("scopes") {
        None => {}
        Some(Value::Array(list)) => {
            for scope in list {
                let scope = object(scope.clone(), &["value", "description"], &["value"], true)?;
                let value = optional_text(&scope, "value", 1, 280)?.unwrap_or_default();
                let description = optional_text(&scope, "description", 0, 500)?;
                scopes.push((value.to_string(), description.map(str::to_string)));
            }
        }
        Some(other) => {
            return Err(payload(
                &format!("Expected type array but found type {}", type_name(other)),
                "scopes",
            ));
        }
    }
    let mut authz = state.authz.lock().expect("authz lock");
    let server = authz.create_server(identifier, name, scopes)?;
    Ok((StatusCode::CREATED, axum::Json(server_json(server))).into_response())
}
