//! The calls of roles, direct permissions and organizations (RBAC and Organizations): what a
//! user's access is made of besides the profile, read in bulk per role and per organization,
//! and changed per user.
//!
//! Role and organization ids differ between tenants, so they travel by **name** (facts,
//! "Roles, permissions, organizations"); these calls take and give ids, and callers map names.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::client::Body;
use super::{ApiError, Client, decode, encode_segment};

/// The most a checkpoint page (`from`/`take`) or a numbered page (`per_page`) holds (spec).
pub const PAGE: usize = 100;

/// A role (`GET /api/v2/roles`), or an organization member's role.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Role {
    pub id: String,
    pub name: String,
}

/// An organization (`GET /api/v2/organizations`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Organization {
    pub id: String,
    pub name: String,
}

/// A permission: an API (resource server) and one of its scopes.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission {
    pub resource_server_identifier: String,
    pub permission_name: String,
}

/// An API (resource server) and the scopes (permissions) it defines.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ResourceServer {
    pub identifier: String,
    #[serde(default)]
    pub scopes: Vec<ResourceServerScope>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ResourceServerScope {
    pub value: String,
}

/// An organization's member, with its roles in the organization when asked for.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    #[serde(default)]
    pub roles: Vec<Role>,
}

/// Whether a write adds (`POST`) or takes away (`DELETE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Add,
    Remove,
}

impl Change {
    fn method(self) -> Method {
        match self {
            Change::Add => Method::POST,
            Change::Remove => Method::DELETE,
        }
    }
}

/// One checkpoint page: its items and where the next starts (`None`: it was the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl Client {
    /// Every role of the tenant (facts: at most 1,000), a page of 100 at a time.
    pub async fn roles(&self) -> Result<Vec<Role>, ApiError> {
        self.all_pages("/roles", "roles", &[]).await
    }

    /// Every API of the tenant, with its scopes (`GET /api/v2/resource-servers`).
    pub async fn resource_servers(&self) -> Result<Vec<ResourceServer>, ApiError> {
        self.all_pages("/resource-servers", "resource_servers", &[])
            .await
    }

    /// The role named `name` (Auth0's `name_filter` matches in any case and in part: the
    /// exact name is picked from what it finds).
    pub async fn role_by_name(&self, name: &str) -> Result<Option<Role>, ApiError> {
        let found: Vec<Role> = self
            .all_pages("/roles", "roles", &[("name_filter", name.to_string())])
            .await?;
        Ok(found.into_iter().find(|r| r.name == name))
    }

    /// `POST /api/v2/roles`.
    pub async fn create_role(&self, name: &str) -> Result<Role, ApiError> {
        let body = json!({"name": name, "description": name});
        let (_, bytes) = self
            .send(Method::POST, "/roles", &[], Body::Json(&body))
            .await?;
        decode(&bytes, "POST /api/v2/roles")
    }

    /// One checkpoint page of a role's users (their ids), from `from`.
    pub async fn role_users(
        &self,
        role_id: &str,
        from: Option<&str>,
    ) -> Result<Checkpoint<String>, ApiError> {
        #[derive(Deserialize)]
        struct RoleUser {
            user_id: String,
        }
        let path = format!("/roles/{}/users", encode_segment(role_id));
        let page: Checkpoint<RoleUser> = self.checkpoint(&path, "users", from, &[]).await?;
        Ok(Checkpoint {
            items: page.items.into_iter().map(|u| u.user_id).collect(),
            next: page.next,
        })
    }

    /// One checkpoint page of the tenant's organizations, from `from`.
    pub async fn organizations(
        &self,
        from: Option<&str>,
    ) -> Result<Checkpoint<Organization>, ApiError> {
        self.checkpoint("/organizations", "organizations", from, &[])
            .await
    }

    /// The organization named `name` (`GET /api/v2/organizations/name/{name}`).
    pub async fn organization_by_name(&self, name: &str) -> Result<Option<Organization>, ApiError> {
        let path = format!("/organizations/name/{}", encode_segment(name));
        match self.send(Method::GET, &path, &[], Body::None).await {
            Ok((_, bytes)) => decode(&bytes, "GET /api/v2/organizations/name/{name}").map(Some),
            Err(ApiError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /api/v2/organizations`.
    pub async fn create_organization(&self, name: &str) -> Result<Organization, ApiError> {
        let body = json!({"name": name, "display_name": name});
        let (_, bytes) = self
            .send(Method::POST, "/organizations", &[], Body::Json(&body))
            .await?;
        decode(&bytes, "POST /api/v2/organizations")
    }

    /// One checkpoint page of an organization's members, from `from`, each with its roles in
    /// the organization (`fields=user_id,roles`, which needs `read:organization_member_roles`).
    pub async fn organization_members(
        &self,
        organization_id: &str,
        from: Option<&str>,
    ) -> Result<Checkpoint<Member>, ApiError> {
        let path = format!("/organizations/{}/members", encode_segment(organization_id));
        let fields = [
            ("fields", "user_id,roles".to_string()),
            ("include_fields", "true".to_string()),
        ];
        self.checkpoint(&path, "members", from, &fields).await
    }

    /// A user's roles (`GET /api/v2/users/{id}/roles`).
    pub async fn user_roles(&self, user_id: &str) -> Result<Vec<Role>, ApiError> {
        let path = format!("/users/{}/roles", encode_segment(user_id));
        self.all_pages(&path, "roles", &[]).await
    }

    /// A user's organizations (`GET /api/v2/users/{id}/organizations`).
    pub async fn user_organizations(&self, user_id: &str) -> Result<Vec<Organization>, ApiError> {
        let path = format!("/users/{}/organizations", encode_segment(user_id));
        self.all_pages(&path, "organizations", &[]).await
    }

    /// A member's roles in an organization.
    pub async fn member_roles(
        &self,
        organization_id: &str,
        user_id: &str,
    ) -> Result<Vec<Role>, ApiError> {
        let path = format!(
            "/organizations/{}/members/{}/roles",
            encode_segment(organization_id),
            encode_segment(user_id)
        );
        self.all_pages(&path, "roles", &[]).await
    }

    /// A user's **direct** permissions: those the tenant lists as coming from the user
    /// (`sources` naming `DIRECT`, or no `sources` at all), not those its roles give.
    pub async fn user_permissions(&self, user_id: &str) -> Result<Vec<Permission>, ApiError> {
        #[derive(Deserialize)]
        struct Listed {
            resource_server_identifier: String,
            permission_name: String,
            #[serde(default)]
            sources: Option<Value>,
        }
        let path = format!("/users/{}/permissions", encode_segment(user_id));
        let listed: Vec<Listed> = self.all_pages(&path, "permissions", &[]).await?;
        Ok(listed
            .into_iter()
            .filter(|p| is_direct(p.sources.as_ref()))
            .map(|p| Permission {
                resource_server_identifier: p.resource_server_identifier,
                permission_name: p.permission_name,
            })
            .collect())
    }

    /// Gives a user roles, or takes them away (`POST`/`DELETE /api/v2/users/{id}/roles`); roles
    /// it has stay, and giving one twice gives it once.
    pub async fn user_roles_change(
        &self,
        change: Change,
        user_id: &str,
        role_ids: &[String],
    ) -> Result<(), ApiError> {
        let path = format!("/users/{}/roles", encode_segment(user_id));
        self.write(change.method(), &path, &json!({"roles": role_ids}))
            .await
    }

    /// Gives a user direct permissions, or takes them away.
    pub async fn user_permissions_change(
        &self,
        change: Change,
        user_id: &str,
        permissions: &[Permission],
    ) -> Result<(), ApiError> {
        let path = format!("/users/{}/permissions", encode_segment(user_id));
        self.write(change.method(), &path, &json!({"permissions": permissions}))
            .await
    }

    /// Makes users members of an organization, or takes them out (and so their roles in it).
    pub async fn organization_members_change(
        &self,
        change: Change,
        organization_id: &str,
        user_ids: &[String],
    ) -> Result<(), ApiError> {
        let path = format!("/organizations/{}/members", encode_segment(organization_id));
        self.write(change.method(), &path, &json!({"members": user_ids}))
            .await
    }

    /// Gives a member roles in an organization, or takes them away.
    pub async fn member_roles_change(
        &self,
        change: Change,
        organization_id: &str,
        user_id: &str,
        role_ids: &[String],
    ) -> Result<(), ApiError> {
        let path = format!(
            "/organizations/{}/members/{}/roles",
            encode_segment(organization_id),
            encode_segment(user_id)
        );
        self.write(change.method(), &path, &json!({"roles": role_ids}))
            .await
    }

    /// A write whose answer carries nothing we need.
    async fn write(&self, method: Method, path: &str, body: &Value) -> Result<(), ApiError> {
        self.send(method, path, &[], Body::Json(body)).await?;
        Ok(())
    }

    /// Every item of a list, asked for a numbered page of [`PAGE`] at a time with totals
    /// (`{"<key>": [...], "total": n}`), until the total is reached or a page comes short.
    async fn all_pages<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
        extra: &[(&str, String)],
    ) -> Result<Vec<T>, ApiError> {
        let what = format!("GET /api/v2{path}");
        let mut all = Vec::new();
        for page in 0.. {
            let mut query = vec![
                ("page", page.to_string()),
                ("per_page", PAGE.to_string()),
                ("include_totals", "true".to_string()),
            ];
            query.extend(extra.iter().cloned());
            let (_, bytes) = self.send(Method::GET, path, &query, Body::None).await?;
            let (items, total) = offset_page::<T>(&bytes, key, &what)?;
            let short = items.len() < PAGE;
            all.extend(items);
            if short || total.is_some_and(|t| all.len() as u64 >= t) {
                break;
            }
        }
        Ok(all)
    }

    /// One checkpoint page (`from`, `take` = [`PAGE`]): `{"<key>": [...], "next": "..."}`.
    async fn checkpoint<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
        from: Option<&str>,
        extra: &[(&str, String)],
    ) -> Result<Checkpoint<T>, ApiError> {
        let what = format!("GET /api/v2{path}");
        let mut query = vec![("take", PAGE.to_string())];
        if let Some(from) = from {
            query.push(("from", from.to_string()));
        }
        query.extend(extra.iter().cloned());
        let (_, bytes) = self.send(Method::GET, path, &query, Body::None).await?;
        let mut object: serde_json::Map<String, Value> = decode(&bytes, &what)?;
        let items = match object.remove(key) {
            Some(items) => serde_json::from_value(items).map_err(|e| ApiError::Decode {
                what: what.clone(),
                message: e.to_string(),
            })?,
            None => Vec::new(),
        };
        let next = match object.remove("next") {
            Some(Value::String(next)) if !next.is_empty() => Some(next),
            _ => None,
        };
        Ok(Checkpoint { items, next })
    }
}

/// A page with totals (`{"<key>": [...], "total": n}`), or a bare array (a tenant that leaves
/// totals out).
fn offset_page<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    key: &str,
    what: &str,
) -> Result<(Vec<T>, Option<u64>), ApiError> {
    let value: Value = decode(bytes, what)?;
    let (items, total) = match value {
        Value::Array(items) => (Value::Array(items), None),
        Value::Object(mut object) => (
            object.remove(key).unwrap_or(Value::Array(Vec::new())),
            object.get("total").and_then(Value::as_u64),
        ),
        _ => (Value::Null, None),
    };
    let items = serde_json::from_value(items).map_err(|e| ApiError::Decode {
        what: what.to_string(),
        message: e.to_string(),
    })?;
    Ok((items, total))
}

/// Whether a listed permission is the user's own: its `sources` (when the tenant gives them)
/// name a `DIRECT` source.
fn is_direct(sources: Option<&Value>) -> bool {
    match sources {
        Some(Value::Array(sources)) => sources.iter().any(|s| {
            s.get("source_type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("direct"))
        }),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permission_is_direct_unless_its_sources_name_only_roles() {
        assert!(is_direct(None));
        assert!(is_direct(Some(&json!([{"source_type": "DIRECT"}]))));
        assert!(is_direct(Some(&json!([
            {"source_type": "ROLE", "source_id": "rol_1"},
            {"source_type": "DIRECT"}
        ]))));
        assert!(!is_direct(Some(&json!([{"source_type": "ROLE"}]))));
    }

    #[test]
    fn pages_with_totals_and_bare_arrays_both_read() {
        let (roles, total) = offset_page::<Role>(
            br#"{"roles":[{"id":"r1","name":"a"}],"total":3,"start":0,"limit":100}"#,
            "roles",
            "x",
        )
        .unwrap();
        assert_eq!((roles.len(), total), (1, Some(3)));
        let (roles, total) = offset_page::<Role>(
            br#"[{"id":"r1","name":"a","description":"d"}]"#,
            "roles",
            "x",
        )
        .unwrap();
        assert_eq!((roles[0].name.as_str(), total), ("a", None));
    }
}
