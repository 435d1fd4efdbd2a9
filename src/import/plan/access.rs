//! A record's access: the `roles`, `organizations` and `permissions` an export with
//! `--include` writes, checked and taken out of the record before its profile is planned.
//!
//! Each key is optional: absent, the record says nothing of that kind and the user's stays as
//! it is; present (even empty), it is what the user should have (`--authz merge` adds what is
//! missing, `replace` also takes away the rest). Names, not ids: ids differ between tenants.
//! The entity limits are checked here, before anything is sent (facts, "Roles, permissions,
//! organizations": 50 roles per user, 1,000 direct permissions per user, 50 roles per
//! organization member).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{Invalid, code, invalid};
use crate::api::Permission;

/// Facts: roles per user.
pub const MAX_ROLES: usize = 50;
/// Facts: direct permissions per user.
pub const MAX_PERMISSIONS: usize = 1000;
/// Facts: roles per organization member.
pub const MAX_MEMBER_ROLES: usize = 50;

/// What a record says its user's access should be (each list sorted, without repeats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub roles: Option<Vec<String>>,
    pub organizations: Option<Vec<Membership>>,
    pub permissions: Option<Vec<Permission>>,
    /// Where each name first stands in the record, for a rejection's `field`: the lists above
    /// are sorted, so their indexes are not the record's.
    pub fields: Fields,
}

/// Role name → `roles[i]` or `organizations[j].roles[k]`; organization name →
/// `organizations[j].name`: the record's own indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    pub roles: BTreeMap<String, String>,
    pub organizations: BTreeMap<String, String>,
    /// (API identifier, permission name) → `permissions[i]`.
    pub permissions: BTreeMap<(String, String), String>,
}

impl Fields {
    /// The places of the names in a record's raw `roles` and `organizations` (the tenant-wide
    /// roles first, as a role's field names them first).
    fn of(
        roles: Option<&Value>,
        organizations: Option<&Value>,
        permissions: Option<&Value>,
    ) -> Fields {
        let mut fields = Fields::default();
        let listed = |value: Option<&Value>| -> Vec<(usize, String)> {
            let items = value
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| Some((i, v.as_str()?.to_string())))
                .collect()
        };
        for (i, name) in listed(roles) {
            fields.roles.entry(name).or_insert(format!("roles[{i}]"));
        }
        let orgs = organizations.and_then(Value::as_array);
        for (j, org) in orgs.into_iter().flatten().enumerate() {
            if let Some(name) = org.get("name").and_then(Value::as_str) {
                let at = format!("organizations[{j}].name");
                fields.organizations.entry(name.to_string()).or_insert(at);
            }
            for (k, name) in listed(org.get("roles")) {
                let at = format!("organizations[{j}].roles[{k}]");
                fields.roles.entry(name).or_insert(at);
            }
        }
        let perms = permissions.and_then(Value::as_array);
        for (i, p) in perms.into_iter().flatten().enumerate() {
            let text = |key: &str| p.get(key).and_then(Value::as_str).map(str::to_string);
            if let (Some(api), Some(name)) =
                (text("resource_server_identifier"), text("permission_name"))
            {
                fields
                    .permissions
                    .entry((api, name))
                    .or_insert(format!("permissions[{i}]"));
            }
        }
        fields
    }

    /// Where a permission stands in the record: `permissions[i]`.
    pub fn permission(&self, p: &Permission) -> Option<String> {
        let key = (
            p.resource_server_identifier.clone(),
            p.permission_name.clone(),
        );
        self.permissions.get(&key).cloned()
    }
}

/// An organization the user is a member of, with the member's roles in it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Membership {
    pub name: String,
    pub roles: Vec<String>,
}

impl Access {
    /// Every role name the record uses: its own and its memberships'.
    pub fn role_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .roles
            .iter()
            .flatten()
            .map(String::as_str)
            .chain(
                self.organizations
                    .iter()
                    .flatten()
                    .flat_map(|m| m.roles.iter().map(String::as_str)),
            )
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// Takes the access keys out of `fields`: `None` when the record has none.
pub(super) fn take_access(fields: &mut Map<String, Value>) -> Result<Option<Access>, Invalid> {
    let roles = fields.shift_remove("roles");
    let organizations = fields.shift_remove("organizations");
    let permissions = fields.shift_remove("permissions");
    if roles.is_none() && organizations.is_none() && permissions.is_none() {
        return Ok(None);
    }
    let fields = Fields::of(roles.as_ref(), organizations.as_ref(), permissions.as_ref());
    let roles = roles.map(|v| names(&v, "roles", MAX_ROLES)).transpose()?;
    let organizations = organizations.map(|v| memberships(&v)).transpose()?;
    let permissions = permissions.map(|v| permission_list(&v)).transpose()?;
    Ok(Some(Access {
        roles,
        organizations,
        permissions,
        fields,
    }))
}

/// A list of names (roles), sorted without repeats, at most `max`.
fn names(value: &Value, field: &str, max: usize) -> Result<Vec<String>, Invalid> {
    let Value::Array(items) = value else {
        return Err(invalid(
            code::INVALID_FIELD,
            field,
            format!("`{field}` must be a list of names, such as [\"admin\", \"editor\"]"),
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(name) if !name.trim().is_empty() => out.push(name.clone()),
            _ => {
                return Err(invalid(
                    code::INVALID_FIELD,
                    format!("{field}[{i}]"),
                    format!("`{field}[{i}]` must be a role's name (a non-empty string)"),
                ));
            }
        }
    }
    out.sort();
    out.dedup();
    if out.len() > max {
        return Err(invalid(
            code::INVALID_FIELD,
            field,
            format!(
                "`{field}` names {} roles; Auth0 allows at most {max} (entity limits)",
                out.len()
            ),
        ));
    }
    Ok(out)
}

fn memberships(value: &Value) -> Result<Vec<Membership>, Invalid> {
    let field = "organizations";
    let Value::Array(items) = value else {
        return Err(invalid(
            code::INVALID_FIELD,
            field,
            "`organizations` must be a list of {\"name\": …, \"roles\": […]} objects",
        ));
    };
    let mut out: Vec<Membership> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let Value::Object(object) = item else {
            return Err(invalid(
                code::INVALID_FIELD,
                at.clone(),
                format!("`{at}` must be an object with the organization's `name`"),
            ));
        };
        if let Some(other) = object
            .keys()
            .find(|k| !matches!(k.as_str(), "name" | "roles"))
        {
            return Err(invalid(
                code::UNKNOWN_FIELD,
                format!("{at}.{other}"),
                format!("`{at}` has `{other}`; a membership has only `name` and `roles`"),
            ));
        }
        let name = match object.get("name") {
            Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
            _ => {
                return Err(invalid(
                    code::INVALID_FIELD,
                    format!("{at}.name"),
                    format!("`{at}.name` must be the organization's name (a non-empty string)"),
                ));
            }
        };
        let roles = match object.get("roles") {
            None | Some(Value::Null) => Vec::new(),
            Some(roles) => names(roles, &format!("{at}.roles"), MAX_MEMBER_ROLES)?,
        };
        if out.iter().any(|m| m.name == name) {
            return Err(invalid(
                code::INVALID_FIELD,
                format!("{at}.name"),
                format!("the organization {name} is listed twice in `organizations`"),
            ));
        }
        out.push(Membership { name, roles });
    }
    out.sort();
    Ok(out)
}

fn permission_list(value: &Value) -> Result<Vec<Permission>, Invalid> {
    let field = "permissions";
    let Value::Array(items) = value else {
        return Err(invalid(
            code::INVALID_FIELD,
            field,
            "`permissions` must be a list of {\"resource_server_identifier\": …, \
             \"permission_name\": …} objects",
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let text = |key: &str| -> Result<String, Invalid> {
            match item.get(key) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                _ => Err(invalid(
                    code::INVALID_FIELD,
                    format!("{at}.{key}"),
                    format!("`{at}.{key}` must be a non-empty string"),
                )),
            }
        };
        if !item.is_object() {
            return Err(invalid(
                code::INVALID_FIELD,
                at.clone(),
                format!(
                    "`{at}` must be an object with `resource_server_identifier` and \
                     `permission_name`"
                ),
            ));
        }
        out.push(Permission {
            resource_server_identifier: text("resource_server_identifier")?,
            permission_name: text("permission_name")?,
        });
    }
    out.sort();
    out.dedup();
    if out.len() > MAX_PERMISSIONS {
        return Err(invalid(
            code::INVALID_FIELD,
            field,
            format!(
                "`permissions` lists {} direct permissions; Auth0 allows at most \
                 {MAX_PERMISSIONS} (entity limits)",
                out.len()
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn take(value: Value) -> Result<Option<Access>, Invalid> {
        let Value::Object(mut fields) = value else {
            unreachable!()
        };
        take_access(&mut fields)
    }

    #[test]
    fn the_three_keys_are_taken_sorted_and_without_repeats() {
        let access = take(json!({
            "email": "a@x",
            "roles": ["b", "a", "b"],
            "organizations": [{"name": "zz", "roles": ["v", "u"]}, {"name": "aa"}],
            "permissions": [
                {"resource_server_identifier": "https://b", "permission_name": "x"},
                {"resource_server_identifier": "https://a", "permission_name": "y"},
            ],
        }))
        .unwrap()
        .unwrap();
        assert_eq!(
            access.roles.as_deref(),
            Some(&["a".to_string(), "b".into()][..])
        );
        let orgs = access.organizations.as_ref().unwrap();
        assert_eq!(orgs[0].name, "aa");
        assert_eq!(orgs[1].roles, ["u", "v"]);
        assert_eq!(
            access.permissions.as_ref().unwrap()[0].resource_server_identifier,
            "https://a"
        );
        assert_eq!(access.role_names(), ["a", "b", "u", "v"]);
        assert_eq!(take(json!({"email": "a@x"})).unwrap(), None);
        let empty = take(json!({"roles": []})).unwrap().unwrap();
        assert_eq!(empty.roles, Some(vec![]));
        assert_eq!(empty.organizations, None);
    }

    #[test]
    fn names_keep_the_record_s_own_places_for_a_rejection_s_field() {
        let access = take(json!({
            "roles": ["Reader", "Nope"],
            "organizations": [
                {"name": "zz", "roles": ["Writer", "Other"]},
                {"name": "aa", "roles": ["Nope"]},
            ],
        }))
        .unwrap()
        .unwrap();
        let f = &access.fields;
        assert_eq!(f.roles["Nope"], "roles[1]", "the tenant-wide place first");
        assert_eq!(f.roles["Reader"], "roles[0]");
        assert_eq!(f.roles["Other"], "organizations[0].roles[1]");
        assert_eq!(f.organizations["zz"], "organizations[0].name");
        assert_eq!(f.organizations["aa"], "organizations[1].name");
    }

    #[test]
    fn bad_shapes_and_limits_name_the_field() {
        let cases = [
            (json!({"roles": "admin"}), "roles"),
            (json!({"roles": ["a", 3]}), "roles[1]"),
            (
                json!({"organizations": [{"roles": []}]}),
                "organizations[0].name",
            ),
            (
                json!({"organizations": [{"name": "a", "id": "x"}]}),
                "organizations[0].id",
            ),
            (
                json!({"organizations": [{"name": "a"}, {"name": "a"}]}),
                "organizations[1].name",
            ),
            (
                json!({"permissions": [{"resource_server_identifier": "x"}]}),
                "permissions[0].permission_name",
            ),
            (
                json!({"roles": (0..51).map(|i| format!("r{i}")).collect::<Vec<_>>()}),
                "roles",
            ),
            (
                json!({"organizations": [{"name": "o", "roles": (0..51).map(|i| format!("r{i}")).collect::<Vec<_>>()}]}),
                "organizations[0].roles",
            ),
        ];
        for (value, field) in cases {
            let e = take(value.clone()).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{value}: {}", e.message);
        }
    }
}
