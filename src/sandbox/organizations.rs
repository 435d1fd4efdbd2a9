//! Organizations: `/organizations…` and `/users/{id}/organizations` (facts: "Roles,
//! permissions, organizations"; the spec's operations of those paths).
//!
//! Lock order, here as everywhere: the user store first, then the authorization data.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Map, Value};

use super::authz::{Authz, Change};
use super::error::ErrorReply;
use super::paging::{Paging, Rules, checkpoint_body};
use super::roles::{
    WITH_CHECKPOINT, body_object, id_list, offset_page, optional_text, user_must_exist,
};
use super::routes::{ApiResult, Params, Shared, require_scope};
use super::validate::type_name;

/// Spec: `page` of the organization lists is at most 1000; both kinds of paging; offset paging
/// capped at the first 1,000 ("Checkpoint pagination must be used if you need to retrieve more
/// than 1000").
const ORG_PAGING: Rules = Rules {
    max_page: Some(1000),
    ..WITH_CHECKPOINT
};

/// Spec: `page` at most 1000, offset paging only.
const ORG_OFFSET: Rules = Rules {
    checkpoint: false,
    default: 50,
    max_page: Some(1000),
    cap: false,
};

/// Spec (`get_organizations`): checkpoint paging (`from`, `take` ≤ 100, 50 by default →
/// `{organizations, next?}`) or offset paging (50 by default, first 1,000 only); in name
/// order. `sort` takes only `name:1` (the order the sandbox keeps; stricter than the spec,
/// which also offers display_name and created_at). Needs `read:organizations` or
/// `read:organizations_summary`.
pub(super) async fn list(AxState(state): AxState<Shared>, RawQuery(raw): RawQuery) -> ApiResult {
    require_scope(
        &state,
        &["read:organizations", "read:organizations_summary"],
    )?;
    let params = Params::parse(
        raw,
        &["page", "per_page", "include_totals", "from", "take", "sort"],
    )?;
    if let Some(sort) = params.get("sort").filter(|s| *s != "name:1") {
        return Err(ErrorReply::invalid_query(format!(
            "Sorting organizations by {sort} is not supported by the sandbox; use name:1 or leave sort out."
        )));
    }
    let paging = Paging::parse(&params, &ORG_PAGING)?;
    let authz = state.authz.lock().expect("authz lock");
    let body = match paging {
        Paging::Checkpoint { from, take } => {
            let mut orgs: Vec<&super::authz::Org> = match &from {
                Some(from) => authz.orgs_from(from).take(take + 1).collect(),
                None => authz.orgs().take(take + 1).collect(),
            };
            let next = (orgs.len() > take).then(|| orgs[take].name.clone());
            orgs.truncate(take);
            let page = orgs.into_iter().map(Authz::org_json).collect();
            checkpoint_body("organizations", page, next.as_deref())
        }
        Paging::Offset(offset) => {
            let all = authz.orgs().map(Authz::org_json).collect();
            offset_page(&offset, "organizations", all)
        }
    };
    Ok(axum::Json(body).into_response())
}

/// Spec (`CreateOrganizationRequestContent`): `name` (required, 1..50, the format
/// `organization-name`: docs, "lowercase alphabetical characters, numbers, underscores and
/// dashes; can start with a number"), `display_name` (1..255), `metadata` (≤ 25 keys, string
/// or null values ≤ 255), `branding` (an object, kept as given). `enabled_connections` and
/// `token_quota` are refused as not modelled (stricter than silence). 201 with the
/// organization; 409 for a name taken. Needs `create:organizations`.
pub(super) async fn create(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    require_scope(&state, &["create:organizations"])?;
    let body = body_object(
        &headers,
        body,
        &["name", "display_name", "metadata", "branding"],
        &["name"],
        true,
    )
    .await?;
    let name = optional_text(&body, "name", 1, 50)?.unwrap_or_default();
    check_org_name(name)?;
    let display_name = optional_text(&body, "display_name", 1, 255)?;
    let metadata = match body.get("metadata") {
        None => None,
        Some(Value::Object(map)) => Some(check_metadata(map)?),
        Some(other) => return Err(type_error("object", other, "metadata")),
    };
    let branding = match body.get("branding") {
        None => None,
        Some(value @ Value::Object(_)) => Some(value.clone()),
        Some(other) => return Err(type_error("object", other, "branding")),
    };
    let mut authz = state.authz.lock().expect("authz lock");
    let ix = authz.create_org(name, display_name, metadata, branding)?;
    let (_, org) = authz.org_at(ix);
    Ok((StatusCode::CREATED, axum::Json(Authz::org_json(org))).into_response())
}

fn type_error(expected: &str, found: &Value, field: &str) -> ErrorReply {
    ErrorReply::invalid_body(format!(
        "Payload validation error: 'Expected type {expected} but found type {}' on property {field}.",
        type_name(found)
    ))
}

/// Docs ("Create organizations"): lowercase letters, digits, `_` and `-`, 1..50 characters.
pub(crate) fn check_org_name(name: &str) -> Result<(), ErrorReply> {
    let ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok && (1..=50).contains(&name.len()) {
        return Ok(());
    }
    Err(ErrorReply::invalid_body(format!(
        "Payload validation error: 'Object didn't pass validation for format organization-name: {name}' on property name (The name of this organization. Lowercase letters, numbers, '_' and '-' only, 1 to 50 characters)."
    )))
}

/// Spec (`OrganizationMetadata`): at most 25 keys, each value a string (≤ 255) or null.
fn check_metadata(map: &Map<String, Value>) -> Result<Map<String, Value>, ErrorReply> {
    if map.len() > 25 {
        return Err(ErrorReply::invalid_body(format!(
            "Payload validation error: 'Too many properties defined ({}), maximum 25' on property metadata.",
            map.len()
        )));
    }
    for (key, value) in map {
        match value {
            Value::Null => {}
            Value::String(s) if s.chars().count() <= 255 => {}
            Value::String(s) => {
                return Err(ErrorReply::invalid_body(format!(
                    "Payload validation error: 'String is too long ({} chars), maximum 255' on property metadata.{key}.",
                    s.chars().count()
                )));
            }
            other => return Err(type_error("string", other, &format!("metadata.{key}"))),
        }
    }
    Ok(map.clone())
}

/// Spec (`get_name_by_name`): the organization of that name, or 404. Needs
/// `read:organizations`.
pub(super) async fn by_name(
    AxState(state): AxState<Shared>,
    Path(name): Path<String>,
) -> ApiResult {
    require_scope(&state, &["read:organizations"])?;
    let authz = state.authz.lock().expect("authz lock");
    let org = authz
        .org_by_name(&name)
        .ok_or_else(super::authz::org_not_found)?;
    Ok(axum::Json(Authz::org_json(org)).into_response())
}

/// Spec (`get_organizations_by_id`): the organization, or 404. Needs `read:organizations` or
/// `read:organizations_summary`.
pub(super) async fn get(AxState(state): AxState<Shared>, Path(id): Path<String>) -> ApiResult {
    require_scope(
        &state,
        &["read:organizations", "read:organizations_summary"],
    )?;
    let authz = state.authz.lock().expect("authz lock");
    let (_, org) = authz.org(&id)?;
    Ok(axum::Json(Authz::org_json(org)).into_response())
}

/// Spec (`get_organization_members`, `OrganizationMember`): members in user_id order with
/// `user_id`, `email`, `picture`, `name`; `roles` (`[{id, name}]`) only when `fields` names it
/// (facts: then the token needs `read:organization_member_roles`). Checkpoint paging (`from`,
/// `take` ≤ 100, 50 by default → `{members, next?}`) or offset paging (first 1,000 only).
/// Needs `read:organization_members`.
pub(super) async fn members(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    require_scope(&state, &["read:organization_members"])?;
    let params = Params::parse(
        raw,
        &[
            "page",
            "per_page",
            "include_totals",
            "from",
            "take",
            "fields",
            "include_fields",
        ],
    )?;
    let projection = params.projection()?;
    let with_roles = projection.names("roles");
    if with_roles {
        require_scope(&state, &["read:organization_member_roles"])?;
    }
    let paging = Paging::parse(&params, &ORG_PAGING)?;
    let store = state.store.lock().expect("store lock");
    let authz = state.authz.lock().expect("authz lock");
    let (ix, _) = authz.org(&id)?;
    let member = |(user_id, roles): &super::authz::Member| {
        let user = store.get(user_id).unwrap_or_default();
        let mut out = Map::new();
        out.insert("user_id".into(), user_id.to_string().into());
        for key in ["email", "picture", "name"] {
            if let Some(v) = user.get(key).filter(|v| v.is_string()) {
                out.insert(key.into(), v.clone());
            }
        }
        if with_roles {
            out.insert("roles".into(), Value::Array(roles.clone()));
        }
        projection.apply(&out)
    };
    let body = match paging {
        Paging::Checkpoint { from, take } => {
            let (_, list) = authz.members(ix, from.as_deref(), 0, take + 1);
            let next = list.get(take).map(|(id, _)| id.to_string());
            let page = list.iter().take(take).map(member).collect();
            checkpoint_body("members", page, next.as_deref())
        }
        Paging::Offset(offset) => {
            let (total, list) = authz.members(ix, None, offset.skip(), offset.per_page);
            offset.body("members", list.iter().map(member).collect(), total)
        }
    };
    Ok(axum::Json(body).into_response())
}

/// Spec (`post_members`): `{members: [user_id, ...]}`; 204. 404 for an unknown organization or
/// user (docs: "the user must already exist"); facts: at most 100k members, a member added
/// again is fine. Needs `create:organization_members`.
pub(super) async fn add_members(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    require_scope(&state, &["create:organization_members"])?;
    // Spec: additionalProperties true on this body.
    let body = body_object(&headers, body, &[], &["members"], false).await?;
    let users = id_list(&body, "members")?;
    let store = state.store.lock().expect("store lock");
    let mut authz = state.authz.lock().expect("authz lock");
    let (ix, _) = authz.org(&id)?;
    if !users.iter().all(|u| store.contains(u)) {
        return Err(ErrorReply::user_not_found());
    }
    authz.add_members(ix, &users)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Spec (`delete_members`): `{members: [user_id, ...]}`; 204, their member roles go too;
/// non-members are passed over. Needs `delete:organization_members`.
pub(super) async fn remove_members(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    require_scope(&state, &["delete:organization_members"])?;
    let body = body_object(&headers, body, &[], &["members"], false).await?;
    let users = id_list(&body, "members")?;
    let mut authz = state.authz.lock().expect("authz lock");
    let (ix, _) = authz.org(&id)?;
    authz.remove_members(ix, &users);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Spec (`get_organization_member_roles`): the member's roles (`Role`) by name, offset-paged;
/// 404 for an unknown organization or a user who is not a member. Needs
/// `read:organization_member_roles`.
pub(super) async fn member_roles(
    AxState(state): AxState<Shared>,
    Path((id, user_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    require_scope(&state, &["read:organization_member_roles"])?;
    let params = Params::parse(raw, &["page", "per_page", "include_totals"])?;
    let Paging::Offset(offset) = Paging::parse(&params, &ORG_OFFSET)? else {
        unreachable!("offset only")
    };
    user_must_exist(&state, &user_id)?;
    let authz = state.authz.lock().expect("authz lock");
    let (ix, _) = authz.org(&id)?;
    let all = authz
        .member_roles(ix, &user_id)?
        .into_iter()
        .map(|r| authz.role_json(r))
        .collect();
    Ok(axum::Json(offset_page(&offset, "roles", all)).into_response())
}

/// Spec (`post_organization_member_roles`): 204; 404 for an unknown organization, member or
/// role; 409 "No more roles can be assigned to this organization member." past the facts' 50
/// roles per member; a role held already is fine. Needs `create:organization_member_roles`.
pub(super) async fn assign_member_roles(
    state: AxState<Shared>,
    ids: Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    change_member_roles(state, ids, headers, body, Change::Add).await
}

/// Spec (`delete_organization_member_roles`): 204; roles the member lacks are passed over.
/// Needs `delete:organization_member_roles`.
pub(super) async fn remove_member_roles(
    state: AxState<Shared>,
    ids: Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    change_member_roles(state, ids, headers, body, Change::Remove).await
}

/// Reads `{roles: [role_id, ...]}` (spec: `AssignOrganizationMemberRolesRequestContent`,
/// `DeleteOrganizationMemberRolesRequestContent`, additionalProperties false) and applies it.
async fn change_member_roles(
    AxState(state): AxState<Shared>,
    Path((id, user_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
    change: Change,
) -> ApiResult {
    let scope = match change {
        Change::Add => "create:organization_member_roles",
        Change::Remove => "delete:organization_member_roles",
    };
    require_scope(&state, &[scope])?;
    let body = body_object(&headers, body, &["roles"], &["roles"], true).await?;
    let roles = id_list(&body, "roles")?;
    let mut authz = state.authz.lock().expect("authz lock");
    let (ix, _) = authz.org(&id)?;
    let roles = authz.role_ids(&roles)?;
    authz.change_member_roles(ix, &user_id, &roles, change)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Spec (`get_user_organizations`): the user's organizations (`Organization`) by name,
/// offset-paged (`page` ≤ 1000); 404 for an unknown user. Needs `read:organizations`.
pub(super) async fn of_user(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    require_scope(&state, &["read:organizations"])?;
    let params = Params::parse(raw, &["page", "per_page", "include_totals"])?;
    let Paging::Offset(offset) = Paging::parse(&params, &ORG_OFFSET)? else {
        unreachable!("offset only")
    };
    user_must_exist(&state, &id)?;
    let authz = state.authz.lock().expect("authz lock");
    let all = authz
        .user_orgs(&id)
        .into_iter()
        .map(Authz::org_json)
        .collect();
    Ok(axum::Json(offset_page(&offset, "organizations", all)).into_response())
}
