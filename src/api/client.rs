//! The Management API client: its token, and the send loop every request goes through
//! (throttle, retry with backoff, token renewal; see the module docs of [`crate::api`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::ApiError;
use super::timeline::{Event, Timeline};
use crate::net::pace::{Group, Pace};
use crate::net::retry::{self, Backoff, Class};
use crate::net::throttle::Throttle;
use crate::net::workers::Workers;
use crate::target::{Credentials, Target};

/// Counters for the summary, and the same second by second for `--report` ([`Timeline`]).
#[derive(Debug, Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub retries: AtomicU64,
    pub timeline: Arc<Timeline>,
}

/// A snapshot of [`Metrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub requests: u64,
    pub throttled: u64,
    pub retries: u64,
}

impl Metrics {
    /// A request goes out, to an endpoint group of the Management API (`None`: a file).
    pub(super) fn sent(&self, group: Option<Group>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.timeline.record(Event::Sent(group));
    }

    /// A 429 of the rate limit came back.
    fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        self.timeline.record(Event::Throttled);
    }

    /// A request failed in transit or with a 5xx; `retried`: it will go again.
    pub(super) fn fault(&self, retried: bool) {
        self.timeline.record(Event::Fault);
        if retried {
            self.retries.fetch_add(1, Ordering::Relaxed);
            self.timeline.record(Event::Retry);
        }
    }

    /// A 2xx answer came back.
    pub(super) fn ok(&self) {
        self.timeline.record(Event::Ok);
    }

    pub fn counts(&self) -> Counts {
        Counts {
            requests: self.requests.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }
}

struct Token {
    value: SecretString,
    renew_at: Option<Instant>,
    /// The scopes the token response listed (`None`: a ready token, whose scopes are unknown).
    scopes: Option<Vec<String>>,
}

/// A request's body.
#[derive(Clone, Copy)]
pub(super) enum Body<'a> {
    None,
    Json(&'a Value),
    /// `multipart/form-data`: text fields, then one file part (field name, file name, bytes).
    /// Rebuilt for every attempt (a form is consumed when sent); the bytes are shared, not
    /// copied.
    Multipart {
        fields: &'a [(&'a str, String)],
        file: (&'a str, &'a str, &'a bytes::Bytes),
    },
}

impl Body<'_> {
    fn apply(self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Body::None => request,
            Body::Json(value) => request.json(value),
            Body::Multipart { fields, file } => {
                let mut form = reqwest::multipart::Form::new();
                for (name, value) in fields {
                    form = form.text(name.to_string(), value.clone());
                }
                let (name, file_name, bytes) = file;
                let part =
                    reqwest::multipart::Part::stream_with_length(bytes.clone(), bytes.len() as u64)
                        .file_name(file_name.to_string())
                        .mime_str("application/json")
                        .expect("a static MIME type parses");
                request.multipart(form.part(name.to_string(), part))
            }
        }
    }
}

/// How many 429s in a row one request tolerates before the job gives up (resumable).
const MAX_THROTTLED_IN_A_ROW: u32 = 200;

/// How many times one request renews the token after a 401 before the credentials count as
/// refused. Once is not enough: the token a retry picks up may be one another worker got a
/// while ago, and it can expire too while the request waits (a 429 pause, a slow answer).
const MAX_RENEWALS: u32 = 3;

/// The Management API client. Cheap to share behind an `Arc`.
pub struct Client {
    http: reqwest::Client,
    /// For files behind links the tenant hands out (see [`super::download`]): no token, no
    /// decoding, no limit on the whole transfer (only on each read).
    pub(super) files: reqwest::Client,
    target: Target,
    pace: Pace,
    workers: Workers,
    backoff: Backoff,
    token: tokio::sync::Mutex<Option<Token>>,
    pub(super) metrics: Metrics,
    cancel: CancellationToken,
    /// The tenant has answered at least once (any status): from then on a connection that
    /// fails is transient, not a wrong domain.
    answered: AtomicBool,
}

/// The user id [`Client::reach`] looks up with a ready token: a cheap read that needs no
/// user to exist (an unknown id is a 404, which proves the tenant answers just as well).
const REACH_PROBE_ID: &str = "auth0|auth0-bulk-reachability-check";

impl Client {
    /// A client paced from `throttle`: shared by every endpoint group, which split off it as
    /// they prove buckets of their own if it learns the tenant's limit (see [`Pace`]).
    pub fn new(target: Target, throttle: Arc<Throttle>, cancel: CancellationToken) -> Client {
        let http = reqwest::Client::builder()
            .user_agent(concat!("auth0-bulk/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            // Each connection keeps a read buffer grown to its largest answer (a page of users
            // takes it to a few hundred KiB): connections left over from a moment of more work
            // in flight would hold theirs for the pool's default 90 s, and a long export's
            // memory would grow with its busiest moment. A connection idle for 5 s is not
            // needed at the pace of the run; opening one again costs a handshake.
            .pool_idle_timeout(Duration::from_secs(5))
            // The Management API does not redirect; following one could carry the token to
            // another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client builds with static settings");
        let files = reqwest::Client::builder()
            .user_agent(concat!("auth0-bulk/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            // A file of a million users takes minutes to stream: a whole-request limit would
            // cut it, a read that stalls this long is a broken transfer.
            .read_timeout(Duration::from_secs(60))
            .pool_idle_timeout(Duration::from_secs(5))
            // A pre-signed link does not redirect; one that does leads to a host never checked.
            .redirect(reqwest::redirect::Policy::none())
            // The file is gzip itself: the caller decompresses it as it streams.
            .no_gzip()
            .build()
            .expect("the HTTP client builds with static settings");
        Client {
            http,
            files,
            target,
            pace: Pace::shared(throttle),
            workers: Workers::new(None),
            backoff: Backoff::default(),
            token: tokio::sync::Mutex::new(None),
            metrics: Metrics::default(),
            cancel,
            answered: AtomicBool::new(false),
        }
    }

    /// Makes first contact with the tenant, so that a run finds a tenant it cannot reach
    /// ([`ApiError::Unreachable`]) or credentials it refuses before it creates any file. With
    /// client credentials the token request is that contact (the run needs the token anyway,
    /// so nothing more is sent); with a ready token, one lookup of a user that does not exist.
    /// Any answer of the API proves the tenant is there: a 403 or 404 is for the run to meet.
    pub async fn reach(&self) -> Result<(), ApiError> {
        match &self.target.credentials {
            Credentials::Client { .. } => self.bearer().await.map(drop),
            Credentials::Token(_) => match self.get_user(REACH_PROBE_ID).await {
                Ok(_) | Err(ApiError::Status { .. }) => Ok(()),
                Err(e) => Err(e),
            },
        }
    }

    /// The error for a transport failure that ends the call at once, if it does: an untrusted
    /// certificate always; a connection that could not be made, until the tenant has answered.
    fn fatal_transport(&self, what: &str, error: &reqwest::Error) -> Option<ApiError> {
        if refused_certificate(error) {
            return Some(ApiError::Certificate {
                what: what.to_string(),
                detail: describe(error),
            });
        }
        let answered = self.answered.load(Ordering::Relaxed);
        unreachable(error.is_connect(), answered).then(|| ApiError::Unreachable {
            base: self.target.base.as_str().trim_end_matches('/').to_string(),
            detail: describe(error),
        })
    }

    /// Sets the retry schedule for transient failures.
    pub fn with_backoff(mut self, backoff: Backoff) -> Client {
        self.backoff = backoff;
        self
    }

    /// Sets how much work the run keeps in flight (`--concurrency`, or sized by rate).
    pub fn with_workers(mut self, workers: Workers) -> Client {
        self.workers = workers;
        self
    }

    /// The run's worker slots: hold one per unit of work that sends requests.
    pub fn workers(&self) -> &Workers {
        &self.workers
    }

    pub fn metrics(&self) -> Counts {
        self.metrics.counts()
    }

    /// The run's requests second by second, since this client was made (shared: a report
    /// reads it after the client is gone).
    pub fn timeline(&self) -> Arc<Timeline> {
        self.metrics.timeline.clone()
    }

    /// The run's request budgets (one per bucket the tenant keeps): for the summary and logs,
    /// [`Pace::snapshot`] is all of them as one.
    pub fn pace(&self) -> &Pace {
        &self.pace
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.target.base.as_str().trim_end_matches('/'))
    }

    /// A valid token, requested or renewed when needed.
    async fn bearer(&self) -> Result<SecretString, ApiError> {
        let mut slot = self.token.lock().await;
        if let Some(token) = slot.as_ref()
            && token.renew_at.is_none_or(|at| Instant::now() < at)
        {
            return Ok(token.value.clone());
        }
        let token = match &self.target.credentials {
            Credentials::Token(value) => Token {
                value: value.clone(),
                renew_at: None,
                scopes: None,
            },
            Credentials::Client {
                client_id,
                client_secret,
            } => self.request_token(client_id, client_secret).await?,
        };
        let value = token.value.clone();
        *slot = Some(token);
        Ok(value)
    }

    /// The scopes of the run's token, as its token response listed them; `None` when the run
    /// was given a ready token (`--token`), whose scopes only the tenant knows.
    pub async fn scopes(&self) -> Result<Option<Vec<String>>, ApiError> {
        self.bearer().await?;
        Ok(self
            .token
            .lock()
            .await
            .as_ref()
            .and_then(|token| token.scopes.clone()))
    }

    /// Why `flag` cannot run with the run's token: the scopes of `needed` it lacks, in words
    /// (`None` when it has them all, or when its scopes are unknown: `--token`).
    pub async fn lacks_scopes(
        &self,
        flag: &str,
        needed: &[&str],
    ) -> Result<Option<String>, ApiError> {
        let Some(scopes) = self.scopes().await? else {
            return Ok(None);
        };
        let missing: Vec<&str> = needed
            .iter()
            .copied()
            .filter(|n| !scopes.iter().any(|s| s == n))
            .collect();
        if missing.is_empty() {
            return Ok(None);
        }
        let (noun, them) = if needed.len() == 1 {
            ("scope", "it")
        } else {
            ("scopes", "them")
        };
        Ok(Some(format!(
            "{flag} needs the {noun} {} on the Management API; the token lacks {}: grant {them} \
             to the application in the Auth0 dashboard (APIs > Auth0 Management API > Machine to \
             Machine Applications)",
            needed.join(", "),
            missing.join(", ")
        )))
    }

    /// Forgets the current token so the next call gets a new one.
    async fn invalidate(&self) {
        let mut slot = self.token.lock().await;
        if matches!(self.target.credentials, Credentials::Client { .. }) {
            *slot = None;
        }
    }

    async fn request_token(
        &self,
        client_id: &str,
        secret: &SecretString,
    ) -> Result<Token, ApiError> {
        let body = json!({
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret.expose_secret(),
            "audience": self.target.audience(),
        });
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .http
                .post(self.url("/oauth/token"))
                .json(&body)
                .send()
                .await;
            let failure = match sent {
                Ok(response) if response.status().is_redirection() => {
                    return Err(redirect("POST /oauth/token", &response));
                }
                Ok(response) => {
                    self.answered.store(true, Ordering::Relaxed);
                    let status = response.status();
                    let bytes = response.bytes().await;
                    match (status, bytes) {
                        (s, Ok(bytes)) if s.is_success() => {
                            return parse_token(&bytes);
                        }
                        (s, Ok(bytes))
                            if s.is_client_error() && s != StatusCode::TOO_MANY_REQUESTS =>
                        {
                            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                            let reason = body["error_description"]
                                .as_str()
                                .or(body["error"].as_str())
                                .unwrap_or("refused");
                            return Err(ApiError::Auth(format!(
                                "POST /oauth/token answered {}: {reason} (check the client id, the \
                                 secret and that the application is authorized for the Management API)",
                                s.as_u16()
                            )));
                        }
                        (s, Ok(_)) => format!("POST /oauth/token answered {}", s.as_u16()),
                        (_, Err(e)) => format!("POST /oauth/token: {e}"),
                    }
                }
                Err(e) => match self.fatal_transport("POST /oauth/token", &e) {
                    Some(fatal) => return Err(fatal),
                    None => format!("POST /oauth/token: {}", describe(&e)),
                },
            };
            let retried = attempt < self.backoff.max_attempts;
            self.metrics.fault(retried);
            if !retried {
                return Err(ApiError::Exhausted {
                    what: "POST /oauth/token".into(),
                    attempts: attempt,
                    last: failure,
                });
            }
            tracing::warn!(attempt, error = %failure, "Token request failed; retrying.");
            let delay = self.backoff.delay(attempt, jitter());
            self.sleep(delay).await?;
        }
    }

    /// Waits `delay`, unless the run is interrupted first.
    pub(super) async fn sleep(&self, delay: Duration) -> Result<(), ApiError> {
        tokio::select! {
            _ = tokio::time::sleep(delay) => Ok(()),
            _ = self.cancel.cancelled() => Err(ApiError::Cancelled),
        }
    }

    /// Sends one API request with the throttle, retries and token renewal around it. Returns
    /// the status and body of a 2xx answer, or the error answer the caller must handle.
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<(u16, bytes::Bytes), ApiError> {
        let (status, bytes, _) = self.send_retried(method, path, query, body).await?;
        Ok((status, bytes))
    }

    /// [`Client::send`], also saying whether an earlier attempt failed in transit (it may have
    /// reached the tenant: what a request that is not idempotent must know).
    pub(super) async fn send_retried(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<(u16, bytes::Bytes, bool), ApiError> {
        let what = format!("{method} {path}");
        let group = Group::of(&method, path);
        let mut transient = 0u32;
        let mut throttled = 0u32;
        let mut renewals = 0u32;
        loop {
            if self.cancel.is_cancelled() {
                return Err(ApiError::Cancelled);
            }
            // The token first: a refused one ends the call before it holds a place in the
            // shared budget (one that is never answered counts as in flight for seconds,
            // and holds every other worker back).
            let token = self.bearer().await?;
            let ticket = tokio::select! {
                ticket = self.pace.acquire(group) => ticket,
                _ = self.cancel.cancelled() => return Err(ApiError::Cancelled),
            };
            let mut request = self
                .http
                .request(method.clone(), self.url(&format!("/api/v2{path}")))
                .bearer_auth(token.expose_secret());
            if !query.is_empty() {
                request = request.query(query);
            }
            request = body.apply(request);
            self.metrics.sent(Some(group));
            let outcome = match request.send().await {
                Ok(response) => {
                    self.answered.store(true, Ordering::Relaxed);
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    if status == 429 {
                        // A 429 that is not the rate limit (a tenant's two import jobs are
                        // running) is the caller's to wait out, and says nothing of the budget.
                        let bytes = response.bytes().await.unwrap_or_default();
                        if retry::is_job_limit(&bytes) {
                            self.pace.observe(ticket, 200, &headers);
                            return Err(error_answer(&what, status, &bytes, transient > 0));
                        }
                        self.pace.observe(ticket, status, &headers);
                        self.workers.size(self.pace.loads());
                        Ok((status, headers, bytes))
                    } else {
                        self.pace.observe(ticket, status, &headers);
                        // What was learnt may change how much work the run keeps in flight.
                        self.workers.size(self.pace.loads());
                        if response.status().is_redirection() {
                            return Err(redirect(&what, &response));
                        }
                        match response.bytes().await {
                            Ok(bytes) => Ok((status, headers, bytes)),
                            Err(e) => {
                                Err(format!("{what}: the answer broke off: {}", describe(&e)))
                            }
                        }
                    }
                }
                Err(e) => match self.fatal_transport(&what, &e) {
                    Some(fatal) => return Err(fatal),
                    None => Err(format!("{what}: {}", describe(&e))),
                },
            };
            let (class, last, retry_after) = match &outcome {
                Ok((status, headers, _)) => (
                    retry::classify(Some(*status)),
                    format!("{what} answered {status}"),
                    retry::retry_after(headers, self.backoff.cap),
                ),
                Err(message) => (retry::classify(None), message.clone(), None),
            };
            match class {
                Class::Success => {
                    self.metrics.ok();
                    let (status, _, bytes) = outcome.expect("success has an answer");
                    return Ok((status, bytes, transient > 0));
                }
                Class::Throttled => {
                    // The throttle has paused every worker; this request simply goes again.
                    self.metrics.throttled();
                    throttled += 1;
                    if throttled >= MAX_THROTTLED_IN_A_ROW {
                        return Err(ApiError::Exhausted {
                            what,
                            attempts: throttled,
                            last,
                        });
                    }
                }
                Class::Transient => {
                    transient += 1;
                    let retried = transient < self.backoff.max_attempts;
                    self.metrics.fault(retried);
                    if !retried {
                        return Err(ApiError::Exhausted {
                            what,
                            attempts: transient,
                            last,
                        });
                    }
                    let delay =
                        retry_after.unwrap_or_else(|| self.backoff.delay(transient, jitter()));
                    tracing::debug!(attempt = transient, ?delay, error = %last, "Transient failure; retrying.");
                    self.sleep(delay).await?;
                }
                Class::Unauthorized if renewals < MAX_RENEWALS => {
                    // The token expired or was revoked: renew it.
                    renewals += 1;
                    self.invalidate().await;
                }
                Class::Unauthorized | Class::Permanent => {
                    let (status, _, bytes) = outcome.expect("an error status has an answer");
                    return Err(error_answer(&what, status, &bytes, transient > 0));
                }
            }
        }
    }
}

/// The error for an answer the caller must handle: a 401 past the renewals is refused
/// credentials; anything else keeps the API's status, `errorCode` and message.
fn error_answer(what: &str, status: u16, bytes: &[u8], retried: bool) -> ApiError {
    let body: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let error_code = body["errorCode"].as_str().unwrap_or("").to_string();
    let message = body["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(bytes).chars().take(300).collect());
    if status == 401 {
        return ApiError::Auth(format!("{what} answered 401: {message}"));
    }
    ApiError::Status {
        status,
        error_code,
        message,
        retried,
    }
}

/// Whether a transport failure means the tenant cannot be reached at all, which no retry
/// fixes: the connection could not be made (the name did not resolve, it was refused or timed
/// out, the TLS handshake failed) and the tenant has never answered this client. After an
/// answer, the same failure is a tenant in trouble and is retried; a connection that broke
/// after it was made (dropped, a body cut short) is retried either way.
fn unreachable(connect_failed: bool, answered_before: bool) -> bool {
    connect_failed && !answered_before
}

/// A uniform draw in [0, 1) for backoff jitter.
fn jitter() -> f64 {
    rand::rng().random()
}

fn parse_token(bytes: &[u8]) -> Result<Token, ApiError> {
    let body: Value = serde_json::from_slice(bytes).map_err(|e| ApiError::Decode {
        what: "POST /oauth/token".into(),
        message: e.to_string(),
    })?;
    let value = body["access_token"]
        .as_str()
        .ok_or_else(|| ApiError::Decode {
            what: "POST /oauth/token".into(),
            message: "no access_token".into(),
        })?;
    // Renew at 90% of the lifetime, and at least a minute before it ends.
    let renew_at = body["expires_in"].as_u64().map(|secs| {
        let life = Duration::from_secs(secs);
        let early = (life / 10).max(Duration::from_secs(60)).min(life / 2);
        Instant::now() + life - early
    });
    let scopes = body["scope"]
        .as_str()
        .map(|scope| scope.split_whitespace().map(str::to_string).collect());
    Ok(Token {
        value: SecretString::from(value.to_string()),
        renew_at,
        scopes,
    })
}

/// The error for a redirect answer, naming where it pointed (the client does not go there).
fn redirect(what: &str, response: &reqwest::Response) -> ApiError {
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|l| {
            String::from_utf8_lossy(l.as_bytes())
                .chars()
                .take(200)
                .collect()
        })
        .unwrap_or_else(|| "nowhere (no Location header)".to_string());
    ApiError::Redirect {
        what: what.to_string(),
        status: response.status().as_u16(),
        location,
    }
}

/// Whether the TLS handshake failed because the server's certificate was refused (unknown
/// issuer, wrong name, expired, ...). rustls reports it inside nested `io::Error`s, which hide
/// their inner error from `source()`, so each one is opened too.
pub(super) fn refused_certificate(error: &reqwest::Error) -> bool {
    fn refused(e: &(dyn std::error::Error + 'static)) -> bool {
        if matches!(
            e.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidCertificate(_))
        ) {
            return true;
        }
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref);
        inner.is_some_and(|inner| refused(inner)) || e.source().is_some_and(refused)
    }
    refused(error)
}

/// A transport error in words, without the URL's query (which could be long) or any header.
pub(super) fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the answer broke off"
    } else {
        "the request failed"
    };
    let mut source = std::error::Error::source(error);
    let mut detail = String::new();
    while let Some(inner) = source {
        detail = inner.to_string();
        source = inner.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({detail})")
    }
}

#[cfg(all(test, feature = "sandbox"))]
pub(crate) mod tests {
    use super::*;
    use crate::net::throttle::Rate;
    use crate::sandbox::{Sandbox, SandboxOptions};

    /// A client of `sandbox`, unpaced, that retries a transient failure once: for unit tests
    /// of the stages that call the API.
    pub(crate) fn client_for(sandbox: &Sandbox) -> Client {
        let target = Target {
            base: crate::target::parse_domain(sandbox.domain()).expect("a loopback URL"),
            credentials: Credentials::Client {
                client_id: sandbox.client_id().to_string(),
                client_secret: SecretString::from(sandbox.client_secret().to_string()),
            },
        };
        Client::new(
            target,
            Arc::new(Throttle::new(Rate::Unlimited)),
            CancellationToken::new(),
        )
        .with_backoff(Backoff {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(10),
            max_attempts: 2,
        })
    }

    #[test]
    fn only_a_connection_never_made_to_a_tenant_never_heard_is_unreachable() {
        assert!(unreachable(true, false));
        assert!(!unreachable(true, true), "after an answer: retried");
        assert!(!unreachable(false, false), "a dropped answer: retried");
        assert!(!unreachable(false, true));
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable_before_the_first_answer_and_retried_after_it() {
        let sandbox = Sandbox::start(SandboxOptions::default()).await.unwrap();
        let never_answered = client_for(&sandbox);
        let answered = client_for(&sandbox);
        answered.reach().await.expect("the sandbox answers");
        sandbox.shutdown().await;

        match never_answered.reach().await {
            Err(ApiError::Unreachable { base, detail }) => {
                assert!(base.starts_with("http://127.0.0.1:"), "{base}");
                assert!(detail.contains("could not connect"), "{detail}");
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
        assert_eq!(never_answered.metrics().retries, 0, "not retried");
        match answered.get_user("auth0|x").await {
            Err(ApiError::Exhausted { attempts: 2, .. }) => {}
            other => panic!("expected the retries of today, got {other:?}"),
        }
        assert_eq!(answered.metrics().retries, 1);
    }
}
