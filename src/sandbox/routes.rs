//! The sandbox's HTTP routes: the token endpoint, the users API and the `/__sandbox` evidence.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use serde_json::{Map, Value, json};

use super::credentials::Credential;
use super::error::ErrorReply;
use super::profile::{new_database_user, next_timestamp, random_hex_id};
use super::query::Query;
use super::ratelimit::{Decision, Group, Verdict};
use super::store::{Sort, Strategy, User, connections_of, identities};
use super::{State, connections, jobs, organizations, random_token, roles, tickets, validate};

pub(super) type Shared = Arc<State>;
pub(super) type ApiResult = Result<Response, ErrorReply>;

/// Facts ("Metadata rules"): every request body is limited to 1 MB.
pub(super) const BODY_LIMIT: usize = 1024 * 1024;

/// The token endpoint sits outside the gate: Auth0 limits it separately (Authentication API
/// limits), which the sandbox does not model, so it is never rate-limited here.
pub(crate) fn router(state: Shared) -> Router {
    let api = Router::new()
        .route("/users", get(list_users).post(create_user))
        .route("/users-by-email", get(users_by_email))
        .route(
            "/users/{id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/connections", get(connections::list))
        .route("/jobs/users-imports", post(jobs::create_import))
        .route("/jobs/users-exports", post(jobs::create_export))
        .route("/jobs/{id}", get(jobs::get_job))
        .route("/jobs/{id}/errors", get(jobs::get_errors))
        .route("/tickets/password-change", post(tickets::password_change))
        .route("/roles", get(roles::list).post(roles::create))
        .route("/roles/{id}", get(roles::get))
        .route(
            "/roles/{id}/users",
            get(roles::users).post(roles::assign_users),
        )
        .route(
            "/roles/{id}/permissions",
            get(roles::permissions)
                .post(roles::add_permissions)
                .delete(roles::remove_permissions),
        )
        .route(
            "/users/{id}/roles",
            get(roles::user_roles)
                .post(roles::assign_user_roles)
                .delete(roles::remove_user_roles),
        )
        .route(
            "/users/{id}/permissions",
            get(roles::user_permissions)
                .post(roles::grant_user_permissions)
                .delete(roles::revoke_user_permissions),
        )
        .route("/users/{id}/organizations", get(organizations::of_user))
        .route(
            "/resource-servers",
            get(roles::list_servers).post(roles::create_server),
        )
        .route(
            "/organizations",
            get(organizations::list).post(organizations::create),
        )
        .route("/organizations/name/{name}", get(organizations::by_name))
        .route("/organizations/{id}", get(organizations::get))
        .route(
            "/organizations/{id}/members",
            get(organizations::members)
                .post(organizations::add_members)
                .delete(organizations::remove_members),
        )
        .route(
            "/organizations/{id}/members/{user_id}/roles",
            get(organizations::member_roles)
                .post(organizations::assign_member_roles)
                .delete(organizations::remove_member_roles),
        )
        .fallback(|| async { ErrorReply::new(StatusCode::NOT_FOUND, "not_found", "Not Found") })
        .layer(middleware::from_fn_with_state(state.clone(), api_gate));
    Router::new()
        .route("/oauth/token", post(token))
        .nest("/api/v2", api)
        // An export's file, behind a pre-signed link as S3 serves it: no token, no limit.
        .route("/user-exports/{job}/{file}", get(jobs::download))
        .route("/__sandbox/users", get(evidence_users))
        .route("/__sandbox/stats", get(evidence_stats))
        .route("/__sandbox/stats/reset", post(evidence_reset))
        .route("/__sandbox/login", post(evidence_login))
        .route("/__sandbox/tickets", get(tickets::evidence))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

// ---------------------------------------------------------------------------------------------
// The gate every /api/v2 request passes: latency, rate limit, bearer token.

async fn api_gate(AxState(state): AxState<Shared>, request: Request, next: Next) -> Response {
    if !state.options.latency.is_zero() {
        tokio::time::sleep(state.options.latency).await;
    }
    let group = Group::of(request.method().as_str(), request.uri().path());
    let verdict = state.limits.take(group);
    let mut response = if !verdict.decision.allowed {
        too_many_requests(verdict).into_response()
    } else if let Err(e) = authorize(&state, request.headers()) {
        e.into_response()
    } else {
        next.run(request).await
    };
    rate_headers(&state, &mut response, verdict.decision);
    response
}

/// Facts ("Rate limits"): the global 429 body from the shared bucket, the per-group one
/// (`Global per second users_write group limit has been reached`) from a group's own.
fn too_many_requests(verdict: Verdict) -> ErrorReply {
    match verdict.group {
        Some(group) => ErrorReply::group_too_many_requests(group),
        None => ErrorReply::too_many_requests(),
    }
}

/// Facts ("Rate limits"): every response carries the three headers, of the bucket the request
/// used; `Retry-After` only when asked (Auth0 does not document it).
fn rate_headers(state: &State, response: &mut Response, d: Decision) {
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", d.limit.into());
    headers.insert("x-ratelimit-remaining", d.remaining.into());
    headers.insert("x-ratelimit-reset", d.reset.into());
    if !d.allowed && state.options.retry_after {
        headers.insert(header::RETRY_AFTER, d.retry_after.into());
    }
}

/// The answer to an API request of `group` during a 429 storm: the bucket the request would
/// use is emptied (another client took every token), and the request gets Auth0's exact 429
/// body and headers (facts: "Rate limits").
pub(crate) fn storm_response(state: &State, group: Group) -> Response {
    let verdict = state.limits.drain(group);
    let mut response = too_many_requests(verdict).into_response();
    rate_headers(state, &mut response, verdict.decision);
    response
}

/// Facts ("Token"): every /api/v2 call needs a valid, unexpired bearer token.
fn authorize(state: &State, headers: &HeaderMap) -> Result<(), ErrorReply> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ErrorReply::missing_token());
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(ErrorReply::invalid_token)?;
    let tokens = state.tokens.lock().expect("token lock");
    match tokens.get(token) {
        Some(expiry) if *expiry > Instant::now() => Ok(()),
        _ => Err(ErrorReply::invalid_token()),
    }
}

/// Facts ("Token"): a token without any of the scopes an endpoint accepts gets 403
/// `insufficient_scope`, `Insufficient scope, expected any of: read:users`. The sandbox's
/// tokens all carry the scopes of `SandboxOptions::scopes`, so the check reads those.
pub(super) fn require_scope(state: &State, any_of: &[&str]) -> Result<(), ErrorReply> {
    if any_of.iter().any(|s| state.scopes.iter().any(|g| g == s)) {
        return Ok(());
    }
    Err(ErrorReply::new(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        format!("Insufficient scope, expected any of: {}", any_of.join(",")),
    ))
}

/// As [`require_scope`] for an endpoint whose scopes come in sets: the token needs every scope
/// of at least one set. Spec: `get_role_user` and `get_user_roles` answer "expected all of:
/// read:users, read:roles", and take the finer `read:role_members` alone too.
pub(super) fn require_scopes(state: &State, any_of: &[&[&str]]) -> Result<(), ErrorReply> {
    let held = |set: &&[&str]| set.iter().all(|s| state.scopes.iter().any(|g| g == s));
    if any_of.iter().any(held) {
        return Ok(());
    }
    let sets: Vec<String> = any_of.iter().map(|set| set.join(",")).collect();
    Err(ErrorReply::new(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        format!("Insufficient scope, expected all of: {}", sets.join(" or ")),
    ))
}

// ---------------------------------------------------------------------------------------------
// POST /oauth/token

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// Facts ("Token"): client credentials as JSON or form; the audience is the API with a trailing
/// slash; bad credentials are 401 `access_denied`.
async fn token(AxState(state): AxState<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = if is_form(&headers) {
        url::form_urlencoded::parse(&body).into_owned().collect()
    } else {
        match serde_json::from_slice::<Map<String, Value>>(&body) {
            Ok(map) => map
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
                .collect(),
            Err(_) => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "The request body must be JSON or application/x-www-form-urlencoded.",
                );
            }
        }
    };
    let field = |name: &str| form.get(name).map(String::as_str);
    match field("grant_type") {
        Some("client_credentials") => {}
        Some(other) => {
            return oauth_error(
                StatusCode::FORBIDDEN,
                "unsupported_grant_type",
                &format!("Unsupported grant type: {other}"),
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: grant_type",
            );
        }
    }
    if field("client_id") != Some(state.client_id.as_str())
        || field("client_secret") != Some(state.client_secret.as_str())
    {
        return oauth_error(StatusCode::UNAUTHORIZED, "access_denied", "Unauthorized");
    }
    if !field("audience").is_some_and(|given| is_own_api(&state, given)) {
        let given = field("audience").unwrap_or("");
        let audience = api_identifier(&state);
        return oauth_error(
            StatusCode::FORBIDDEN,
            "access_denied",
            &format!("Service not enabled within domain: {given} (expected {audience})"),
        );
    }
    let access_token = random_token(48);
    let ttl = state.options.token_ttl;
    state
        .tokens
        .lock()
        .expect("token lock")
        .insert(access_token.clone(), Instant::now() + ttl);
    axum::Json(json!({
        "access_token": access_token,
        "expires_in": ttl.as_secs(),
        "scope": state.scopes.join(" "),
        "token_type": "Bearer",
    }))
    .into_response()
}

/// The Management API's identifier: facts ("Token"), `https://{domain}/api/v2/`, with its
/// trailing slash. The sandbox's domain is its loopback address.
fn api_identifier(state: &State) -> String {
    let host = state.domain.trim_start_matches("http://");
    format!("https://{host}/api/v2/")
}

/// Whether a token request's `audience` names this tenant's API: Auth0's identifier (what the
/// official SDKs send, built from the domain they are given), or the same with `http://`, the
/// scheme the sandbox is reached by. Stricter than silence: no other host, path or spelling.
fn is_own_api(state: &State, audience: &str) -> bool {
    audience == api_identifier(state) || audience == format!("{}/api/v2/", state.domain)
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

// ---------------------------------------------------------------------------------------------
// Query strings

/// Query parameters, checked against the list an endpoint accepts (stricter than silence:
/// unknown or repeated parameters are refused).
pub(super) struct Params(BTreeMap<String, Vec<String>>);

impl Params {
    pub(super) fn parse(raw: Option<String>, allowed: &[&str]) -> Result<Params, ErrorReply> {
        Params::parse_repeatable(raw, allowed, &[])
    }

    /// As [`Params::parse`], but the keys of `repeatable` may come more than once (an
    /// OpenAPI `style: form, explode: true` array, such as `strategy=auth0&strategy=samlp`).
    pub(super) fn parse_repeatable(
        raw: Option<String>,
        allowed: &[&str],
        repeatable: &[&str],
    ) -> Result<Params, ErrorReply> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            if !allowed.contains(&key.as_ref()) {
                return Err(ErrorReply::invalid_query(format!(
                    "Query validation error: 'Additional properties not allowed: {key}'."
                )));
            }
            let values = map.entry(key.to_string()).or_default();
            if !values.is_empty() && !repeatable.contains(&key.as_ref()) {
                return Err(ErrorReply::invalid_query(format!(
                    "Query validation error: 'Expected type string but found type array' on property {key}."
                )));
            }
            values.push(value.into_owned());
        }
        Ok(Params(map))
    }

    /// The value of `key` (the first, for a repeatable key).
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.first()).map(String::as_str)
    }

    /// Every value of a repeatable `key`, in the order given.
    pub(super) fn all(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or_default()
    }

    /// True when the query names `key`.
    pub(super) fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    pub(super) fn integer(
        &self,
        key: &str,
        min: i64,
        max: Option<i64>,
    ) -> Result<Option<i64>, ErrorReply> {
        let Some(raw) = self.get(key) else {
            return Ok(None);
        };
        let value: i64 = raw.parse().map_err(|_| {
            ErrorReply::invalid_query(format!(
                "Query validation error: 'Expected type integer but found type string' on property {key}."
            ))
        })?;
        if value < min {
            return Err(ErrorReply::invalid_query(format!(
                "Query validation error: 'Value {value} is less than minimum {min}' on property {key}."
            )));
        }
        if let Some(max) = max
            && value > max
        {
            return Err(ErrorReply::invalid_query(format!(
                "Query validation error: 'Value {value} is greater than maximum {max}' on property {key}."
            )));
        }
        Ok(Some(value))
    }

    pub(super) fn boolean(&self, key: &str) -> Result<Option<bool>, ErrorReply> {
        match self.get(key) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(ErrorReply::invalid_query(format!(
                "Query validation error: 'Expected type boolean but found type string' on property {key}."
            ))),
        }
    }

    /// `fields` + `include_fields` (spec: a comma list; include_fields defaults to true).
    pub(super) fn projection(&self) -> Result<Projection, ErrorReply> {
        let include = self.boolean("include_fields")?.unwrap_or(true);
        let fields: Vec<String> = self
            .get("fields")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect();
        Ok(Projection { fields, include })
    }
}

pub(super) struct Projection {
    fields: Vec<String>,
    include: bool,
}

impl Projection {
    /// True when the projection asks for `field` by name (`fields` lists it, included).
    pub(super) fn names(&self, field: &str) -> bool {
        self.include && self.fields.iter().any(|f| f == field)
    }

    pub(super) fn apply(&self, user: &User) -> Value {
        if self.fields.is_empty() {
            return Value::Object(user.clone());
        }
        let keep = |k: &String| self.fields.contains(k) == self.include;
        Value::Object(
            user.iter()
                .filter(|(k, _)| keep(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// GET /api/v2/users

const LIST_PARAMS: &[&str] = &[
    "page",
    "per_page",
    "include_totals",
    "sort",
    "connection",
    "fields",
    "include_fields",
    "q",
    "search_engine",
    "primary_order",
];

/// Fields the sandbox sorts by. Facts: sorting by metadata is not supported.
const SORTABLE: &[&str] = &[
    "user_id",
    "created_at",
    "updated_at",
    "last_login",
    "logins_count",
    "email",
    "name",
    "nickname",
    "given_name",
    "family_name",
    "username",
    "phone_number",
    "blocked",
    "email_verified",
];

async fn list_users(AxState(state): AxState<Shared>, RawQuery(raw): RawQuery) -> ApiResult {
    require_scope(&state, &["read:users"])?;
    let params = Params::parse(raw, LIST_PARAMS)?;
    match params.get("search_engine") {
        None | Some("v3") => {}
        // Spec lists v1 and v2, but both are retired on today's tenants (stricter).
        Some(engine @ ("v1" | "v2")) => {
            return Err(ErrorReply::invalid_query(format!(
                "The search engine {engine} is no longer available for this tenant; use search_engine=v3."
            )));
        }
        Some(other) => {
            return Err(ErrorReply::invalid_query(format!(
                "Query validation error: 'No enum match for: \"{other}\"' on property search_engine (The version of the search engine)."
            )));
        }
    }
    if params.get("connection").is_some() {
        // Spec: `connection` only applies to search_engine=v1.
        return Err(ErrorReply::invalid_query(
            "The connection parameter only applies to search_engine=v1; with v3 use \
             q=identities.connection:\"NAME\".",
        ));
    }
    params.boolean("primary_order")?;
    let page = params.integer("page", 0, None)?;
    let per_page = params.integer("per_page", 0, Some(100))?;
    let include_totals = params.boolean("include_totals")?.unwrap_or(false);
    // Facts: without `page`, at most 50 users come back.
    let (page, per_page) = match page {
        Some(page) => (page, per_page.unwrap_or(50)),
        None => (0, per_page.unwrap_or(50).min(50)),
    };
    // Facts ("The 1000 cap"): whatever the real number of matches.
    if (page + 1) * per_page > 1000 {
        return Err(ErrorReply::invalid_paging());
    }
    let sort = parse_sort(params.get("sort"))?;
    let query = Query::parse(params.get("q").unwrap_or(""))
        .map_err(|e| ErrorReply::invalid_query(format!("Query validation error: {e}")))?;
    let projection = params.projection()?;
    let (offset, limit) = ((page * per_page) as usize, per_page as usize);
    let result = state
        .store
        .lock()
        .expect("store lock")
        .search(&query, &sort, offset, limit);
    // Outside the store's lock: the users' JSON text goes out as stored, parsed only when
    // `fields` picks some of it.
    let users: Vec<String> = result
        .users
        .iter()
        .map(|stored| {
            if projection.fields.is_empty() {
                stored.json().to_string()
            } else {
                projection.apply(&stored.user()).to_string()
            }
        })
        .collect();
    let array = format!("[{}]", users.join(","));
    let body = if include_totals {
        // Spec/facts: `{start, limit, length, total, users}`, `start = page * limit`.
        format!(
            r#"{{"start":{offset},"limit":{limit},"length":{},"total":{},"users":{array}}}"#,
            users.len(),
            result.total
        )
    } else {
        array
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

fn parse_sort(raw: Option<&str>) -> Result<Sort, ErrorReply> {
    let Some(raw) = raw else {
        return Ok(Sort::default());
    };
    let invalid = || {
        ErrorReply::invalid_query(format!(
            "Query validation error: 'String does not match pattern ^(([a-zA-Z0-9_\\.]+))\\:(1|-1)$: {raw}' on property sort."
        ))
    };
    let (field, order) = raw.rsplit_once(':').ok_or_else(invalid)?;
    let descending = match order {
        "1" => false,
        "-1" => true,
        _ => return Err(invalid()),
    };
    if !SORTABLE.contains(&field) {
        return Err(ErrorReply::invalid_query(format!(
            "Sorting by {field} is not supported; sort by one of: {}.",
            SORTABLE.join(", ")
        )));
    }
    Ok(Sort {
        field: field.to_string(),
        descending,
    })
}

// ---------------------------------------------------------------------------------------------
// GET /api/v2/users-by-email, GET/DELETE /api/v2/users/{id}

/// Facts ("users-by-email"): an array, exact match, every connection.
async fn users_by_email(AxState(state): AxState<Shared>, RawQuery(raw): RawQuery) -> ApiResult {
    require_scope(&state, &["read:users"])?;
    let params = Params::parse(raw, &["email", "fields", "include_fields"])?;
    let Some(email) = params.get("email").filter(|e| !e.is_empty()) else {
        return Err(ErrorReply::invalid_query(
            "Query validation error: 'Missing required property: email'.",
        ));
    };
    let projection = params.projection()?;
    let users = state.store.lock().expect("store lock").by_email(email);
    let body: Vec<Value> = users.iter().map(|u| projection.apply(u)).collect();
    Ok(axum::Json(body).into_response())
}

async fn get_user(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    require_scope(&state, &["read:users"])?;
    let params = Params::parse(raw, &["fields", "include_fields"])?;
    let projection = params.projection()?;
    let user = state
        .store
        .lock()
        .expect("store lock")
        .get(&id)
        .ok_or_else(ErrorReply::user_not_found)?;
    Ok(axum::Json(projection.apply(&user)).into_response())
}

/// Facts ("DELETE"): 204, also for an id that does not exist.
async fn delete_user(AxState(state): AxState<Shared>, Path(id): Path<String>) -> ApiResult {
    require_scope(&state, &["delete:users"])?;
    let mut store = state.store.lock().expect("store lock");
    if store.delete(&id) {
        // The user's roles, direct permissions and memberships go with them.
        state.authz.lock().expect("authz lock").forget_user(&id);
        drop(store);
        state.stats.lock().expect("stats lock").writes.deleted += 1;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------------------------------------
// Bodies

/// Reads a JSON (or form) body of at most 1 MB.
pub(super) async fn read_body(headers: &HeaderMap, body: Body) -> Result<Value, ErrorReply> {
    let limited = http_body_util::Limited::new(body, BODY_LIMIT);
    let bytes = match limited.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Err(ErrorReply::payload_too_large(BODY_LIMIT)),
    };
    if is_form(headers) {
        // Spec: create and update also accept form bodies; every value arrives as a string.
        let map: Map<String, Value> = url::form_urlencoded::parse(&bytes)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        return Ok(Value::Object(map));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ErrorReply::invalid_body(format!("Payload validation error: 'Invalid JSON: {e}'."))
    })
}

// ---------------------------------------------------------------------------------------------
// POST /api/v2/users

async fn create_user(AxState(state): AxState<Shared>, headers: HeaderMap, body: Body) -> ApiResult {
    require_scope(&state, &["create:users"])?;
    let body = read_body(&headers, body).await?;
    let input = validate::create_body(&body)?;
    let text = |key: &str| input.get(key).and_then(Value::as_str);
    let connection_name = text("connection").unwrap_or_default();
    let mut store = state.store.lock().expect("store lock");
    let connection = store.connection(connection_name).cloned().ok_or_else(|| {
        ErrorReply::new(
            StatusCode::BAD_REQUEST,
            "inexistent_connection",
            "The connection does not exist.",
        )
    })?;
    let Strategy::Database { policy } = connection.strategy else {
        // Stricter than silence: social and enterprise users arrive by logging in.
        return Err(ErrorReply::new(
            StatusCode::BAD_REQUEST,
            "operation_not_supported",
            format!(
                "Connection {connection_name} does not accept new users through the API; only database connections do."
            ),
        ));
    };
    if input.contains_key("username") && !connection.requires_username {
        return Err(ErrorReply::invalid_body(
            "Cannot set username for connection without requires_username",
        ));
    }
    let Some(email) = text("email") else {
        return Err(ErrorReply::invalid_body(
            "Payload validation error: 'Missing required property: email'.",
        ));
    };
    // Facts ("POST /users"): a database connection needs a password that meets its policy.
    let Some(password) = text("password") else {
        return Err(ErrorReply::invalid_body(
            "Payload validation error: 'Missing required property: password'.",
        ));
    };
    if !policy.accepts(password) {
        return Err(ErrorReply::invalid_body(
            "PasswordStrengthError: Password is too weak",
        ));
    }
    // Facts: database connections store emails lower-cased.
    let email = email.to_lowercase();
    // Facts: a given user_id is prefixed with `auth0|` too (the `auth0|auth0|` trap).
    let local_id = text("user_id")
        .map(str::to_string)
        .unwrap_or_else(random_hex_id);
    let user_id = format!("auth0|{local_id}");
    // Facts: 409 for an existing user_id or an existing email in the connection.
    if store.contains(&user_id) || store.email_owner(connection_name, &email).is_some() {
        return Err(ErrorReply::user_exists());
    }
    let user = new_database_user(connection_name, &local_id, &email, input);
    // The password itself is never kept: a salted digest, for `/__sandbox/login`.
    store.set_credential(&user_id, Credential::from_password(password));
    let user = store.put(user);
    drop(store);
    state.stats.lock().expect("stats lock").writes.created += 1;
    Ok((StatusCode::CREATED, axum::Json(&user)).into_response())
}

// ---------------------------------------------------------------------------------------------
// PATCH /api/v2/users/{id}

async fn update_user(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    require_scope(&state, &["update:users", "update:users_app_metadata"])?;
    let body = read_body(&headers, body).await?;
    let input = validate::update_body(&body)?;
    let mut store = state.store.lock().expect("store lock");
    let current = store.get(&id).ok_or_else(ErrorReply::user_not_found)?;
    let mut user: User = current;
    let connections = connections_of(&user);
    if let Some(Value::String(target)) = input.get("connection")
        && !connections.contains(target)
    {
        return Err(ErrorReply::invalid_body(format!(
            "The user has no identity in connection {target}."
        )));
    }
    let database = identities(&user)
        .filter_map(|i| i.get("connection").and_then(Value::as_str))
        .find_map(|c| store.connection(c).filter(|c| c.is_database()).cloned());
    let mut new_password = None;
    for (key, value) in input {
        match key.as_str() {
            "user_metadata" | "app_metadata" => {
                let patch = value.as_object().expect("validated as object");
                merge_metadata(&mut user, key, patch);
            }
            "password" => {
                let Some(Strategy::Database { policy }) = database.as_ref().map(|c| c.strategy)
                else {
                    return Err(ErrorReply::invalid_body(
                        "Cannot change the password of a user without a database identity.",
                    ));
                };
                if let Some(password) = value.as_str() {
                    if !policy.accepts(password) {
                        return Err(ErrorReply::invalid_body(
                            "PasswordStrengthError: Password is too weak",
                        ));
                    }
                    new_password = Some(password.to_string());
                }
            }
            "username" if !database.as_ref().is_some_and(|c| c.requires_username) => {
                return Err(ErrorReply::invalid_body(
                    "Cannot set username for connection without requires_username",
                ));
            }
            // Accepted but not stored: they steer side effects the sandbox does not have.
            "connection" | "client_id" | "verify_email" | "verify_phone_number" => {}
            "email" if value.is_string() => {
                let email = value.as_str().unwrap_or_default();
                let email = if database.is_some() {
                    email.to_lowercase()
                } else {
                    email.to_string()
                };
                for connection in &connections {
                    if store
                        .email_owner(connection, &email)
                        .is_some_and(|owner| owner != id)
                    {
                        return Err(ErrorReply::user_exists());
                    }
                }
                user.insert(key.clone(), email.into());
            }
            _ if value.is_null() => {
                user.shift_remove(key);
            }
            _ => {
                user.insert(key.clone(), value.clone());
            }
        }
    }
    // Every write moves updated_at, strictly forward even within one millisecond.
    let updated_at = next_timestamp(user.get("updated_at").and_then(Value::as_str));
    user.insert("updated_at".into(), updated_at.into());
    let user = store.put(user);
    if let Some(password) = new_password {
        store.set_credential(&id, Credential::from_password(&password));
    }
    drop(store);
    state.stats.lock().expect("stats lock").writes.updated += 1;
    Ok(axum::Json(&user).into_response())
}

/// Facts ("PATCH"): metadata merges one level deep; a `null` deletes a key; `{}` clears it.
pub(crate) fn merge_metadata(user: &mut User, field: &str, patch: &Map<String, Value>) {
    if patch.is_empty() {
        user.insert(field.to_string(), Value::Object(Map::new()));
        return;
    }
    let target = user
        .entry(field.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target = target.as_object_mut().expect("just made an object");
    for (key, value) in patch {
        if value.is_null() {
            // `shift_remove` keeps the order of the other keys (preserve_order).
            target.shift_remove(key);
        } else {
            target.insert(key.clone(), value.clone());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// /__sandbox: evidence for scripts and benchmarks (no token, never limited or faulted)

/// `GET /__sandbox/users`: every user as NDJSON, by user_id; with `with=authz`, each with its
/// `roles`, `organizations` and direct `permissions` too.
async fn evidence_users(AxState(state): AxState<Shared>, RawQuery(raw): RawQuery) -> Response {
    let with_authz = match Params::parse(raw, &["with"]) {
        Ok(params) => match params.get("with") {
            None => false,
            Some("authz") => true,
            Some(other) => {
                return ErrorReply::invalid_query(format!(
                    "with={other}: the sandbox knows only with=authz"
                ))
                .into_response();
            }
        },
        Err(e) => return e.into_response(),
    };
    let mut out = Vec::new();
    let written = if with_authz {
        super::write_users_with_authz(&state, &mut out)
    } else {
        super::write_users(&state, &mut out)
    };
    if let Err(e) = written {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    let mut response = out.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

async fn evidence_stats(AxState(state): AxState<Shared>) -> Response {
    let stats = state.stats.lock().expect("stats lock").clone();
    let users = state.store.lock().expect("store lock").len();
    let mut body = serde_json::to_value(stats).unwrap_or_default();
    body["users"] = users.into();
    axum::Json(body).into_response()
}

/// `POST /__sandbox/login {email, connection, password}` → `{"ok": bool}`: whether the user
/// of that email in that database connection would sign in with that password. Not an Auth0
/// endpoint: the evidence that a password (or an imported hash) reached the tenant. A blocked
/// user does not sign in (stricter than silence), nor one without a credential.
async fn evidence_login(AxState(state): AxState<Shared>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Login {
        email: String,
        connection: String,
        password: String,
    }
    let login: Login = match serde_json::from_slice(&body) {
        Ok(login) => login,
        Err(e) => {
            return ErrorReply::invalid_body(format!(
                "Expected {{\"email\", \"connection\", \"password\"}}: {e}"
            ))
            .into_response();
        }
    };
    // The credential is cloned out: a slow hash (bcrypt, scrypt) is verified without holding
    // the store.
    let credential = {
        let store = state.store.lock().expect("store lock");
        store
            .email_owner(&login.connection, &login.email)
            .and_then(|id| {
                let user = store.get(id)?;
                let blocked = user.get("blocked").and_then(Value::as_bool) == Some(true);
                (!blocked).then(|| store.credential(id).cloned())?
            })
    };
    let ok = match credential {
        Some(credential) => tokio::task::spawn_blocking(move || credential.verify(&login.password))
            .await
            .unwrap_or(false),
        None => false,
    };
    axum::Json(json!({ "ok": ok })).into_response()
}

async fn evidence_reset(AxState(state): AxState<Shared>) -> StatusCode {
    state.log.lock().expect("log lock").clear();
    *state.stats.lock().expect("stats lock") = Default::default();
    StatusCode::NO_CONTENT
}
