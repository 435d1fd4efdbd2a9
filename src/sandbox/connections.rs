//! `GET /api/v2/connections`: the tenant's connections with their ids, which a bulk-import
//! job needs (facts, "Connections": the job takes the connection's id, not its name).

use axum::extract::{RawQuery, State as AxState};
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

use super::error::ErrorReply;
use super::routes::{ApiResult, Params, Shared, require_scope};
use super::store::Connection;

/// Spec: the query parameters of `get_connections`.
const PARAMS: &[&str] = &[
    "per_page",
    "page",
    "include_totals",
    "from",
    "take",
    "strategy",
    "name",
    "fields",
    "include_fields",
];

/// Spec: `ConnectionStrategyEnum`, the values `strategy` may take.
const STRATEGIES: &[&str] = &[
    "ad",
    "adfs",
    "amazon",
    "apple",
    "dropbox",
    "bitbucket",
    "auth0-oidc",
    "auth0",
    "baidu",
    "bitly",
    "box",
    "custom",
    "daccount",
    "dwolla",
    "email",
    "evernote-sandbox",
    "evernote",
    "exact",
    "facebook",
    "fitbit",
    "github",
    "google-apps",
    "google-oauth2",
    "instagram",
    "ip",
    "line",
    "linkedin",
    "oauth1",
    "oauth2",
    "office365",
    "oidc",
    "okta",
    "paypal",
    "paypal-sandbox",
    "pingfederate",
    "planningcenter",
    "salesforce-community",
    "salesforce-sandbox",
    "salesforce",
    "samlp",
    "sharepoint",
    "shopify",
    "shop",
    "sms",
    "soundcloud",
    "thirtysevensignals",
    "twitter",
    "untappd",
    "vkontakte",
    "waad",
    "weibo",
    "windowslive",
    "wordpress",
    "yahoo",
    "yandex",
    "auth0-adldap",
];

/// Spec (`get_connections`): filters `name` and `strategy` (repeatable), `fields` and
/// `include_fields`; offset paging (`page`, `per_page` 1..=100 defaulting to 100,
/// `include_totals` → `{start, limit, total, connections}`) or checkpoint paging (`from`,
/// `take` 1..=100 defaulting to 50 → `{connections, next?}`); otherwise a bare array. Needs
/// `read:connections`. Connections come in name order.
pub(super) async fn list(AxState(state): AxState<Shared>, RawQuery(raw): RawQuery) -> ApiResult {
    require_scope(&state, &["read:connections"])?;
    let params = Params::parse_repeatable(raw, PARAMS, &["strategy"])?;
    for strategy in params.all("strategy") {
        if !STRATEGIES.contains(&strategy.as_str()) {
            return Err(ErrorReply::invalid_query(format!(
                "Query validation error: 'No enum match for: \"{strategy}\"' on property strategy."
            )));
        }
    }
    let page = params.integer("page", 0, None)?;
    let per_page = params.integer("per_page", 1, Some(100))?;
    let take = params.integer("take", 1, Some(100))?;
    let include_totals = params.boolean("include_totals")?.unwrap_or(false);
    let checkpoint = params.has("from") || take.is_some();
    if checkpoint && (page.is_some() || per_page.is_some()) {
        // Stricter than silence: the spec offers two kinds of paging, not a mix of them.
        return Err(ErrorReply::invalid_query(
            "Use either checkpoint paging (from, take) or offset paging (page, per_page), not both.",
        ));
    }
    let projection = params.projection()?;
    let list: Vec<Map<String, Value>> = {
        let store = state.store.lock().expect("store lock");
        store
            .connections()
            .filter(|(name, _)| params.get("name").is_none_or(|n| n == *name))
            .filter(|(_, c)| {
                let wanted = params.all("strategy");
                wanted.is_empty() || wanted.contains(&c.strategy_name)
            })
            .map(|(name, c)| connection_json(name, c))
            .collect()
    };
    let shown = |items: &[Map<String, Value>]| -> Vec<Value> {
        items.iter().map(|c| projection.apply(c)).collect()
    };
    if checkpoint {
        let start = match params.get("from") {
            None => 0,
            Some(from) => list
                .iter()
                .position(|c| c.get("id").and_then(Value::as_str) == Some(from))
                .ok_or_else(|| {
                    // Stricter than silence: a checkpoint the sandbox never gave is refused.
                    ErrorReply::invalid_query(format!(
                        "Query validation error: 'from' is not a checkpoint of this list: {from}."
                    ))
                })?,
        };
        let take = take.unwrap_or(50) as usize;
        let end = (start + take).min(list.len());
        let mut body = json!({ "connections": shown(&list[start..end]) });
        // Spec: `next` is there while more pages remain (include_totals does not apply).
        if let Some(next) = list.get(end).and_then(|c| c.get("id")) {
            body["next"] = next.clone();
        }
        return Ok(axum::Json(body).into_response());
    }
    let (page, per_page) = (page.unwrap_or(0) as usize, per_page.unwrap_or(100) as usize);
    let start = page.saturating_mul(per_page).min(list.len());
    let end = start.saturating_add(per_page).min(list.len());
    let items = shown(&list[start..end]);
    if include_totals {
        return Ok(axum::Json(json!({
            "start": page * per_page,
            "limit": per_page,
            "total": list.len(),
            "connections": items,
        }))
        .into_response());
    }
    Ok(axum::Json(items).into_response())
}

/// Spec (`ConnectionForList`, additionalProperties false): what the sandbox knows of a
/// connection. `options` needs `read:connections_options`, which the sandbox does not grant.
fn connection_json(name: &str, connection: &Connection) -> Map<String, Value> {
    let value = json!({
        "id": connection.id,
        "name": name,
        "strategy": connection.strategy_name,
        "is_domain_connection": false,
        "realms": [name],
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
