//! A sandbox tenant on a runtime of its own, for tests that drive the `auth0-bulk` binary as a
//! child process: the test thread blocks on the child while the runtime's workers serve it.
//!
//! Also [`Gate`], a proxy in front of a tenant that can go down (503 on every API request)
//! and come back up, to show a run that fails and then resumes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use auth0_bulk::sandbox::{RequestRecord, SandboxOptions};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::{Map, Value};
use tokio::runtime::Runtime;

use super::tenant::Tenant;

/// A running sandbox (with a client holding a token) and the runtime that serves it.
pub struct Live {
    // Dropped before the runtime that serves it.
    pub tenant: Tenant,
    runtime: Runtime,
}

impl Live {
    /// Starts a sandbox with `options` on a new multi-threaded runtime.
    pub fn start(options: SandboxOptions) -> Live {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the sandbox");
        let tenant = runtime.block_on(Tenant::start(options));
        Live { tenant, runtime }
    }

    /// A sandbox with `n` generated users (seed 1).
    pub fn generated(n: usize) -> Live {
        Live::start(SandboxOptions {
            generate: n,
            ..Default::default()
        })
    }

    /// Runs a future on the sandbox's runtime (for API calls through [`Tenant`]).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Starts a task on the sandbox's runtime (a proxy in front of it).
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(future)
    }

    pub fn domain(&self) -> &str {
        self.tenant.sandbox.domain()
    }

    pub fn client_id(&self) -> &str {
        self.tenant.sandbox.client_id()
    }

    pub fn client_secret(&self) -> &str {
        self.tenant.sandbox.client_secret()
    }

    /// The ground truth: user_id → the user's NDJSON line (with its `\n`), byte for byte as
    /// the sandbox dumps it.
    pub fn dump_lines(&self) -> HashMap<String, String> {
        let mut dump = Vec::new();
        self.tenant
            .sandbox
            .write_users(&mut dump)
            .expect("the dump writes to memory");
        let text = String::from_utf8(dump).expect("the dump is UTF-8");
        text.split_inclusive('\n')
            .map(|line| (line_key(line).1, line.to_string()))
            .collect()
    }

    /// The requests sent to the Management API (`/api/v2`), not to the token endpoint.
    pub fn api_requests(&self) -> Vec<RequestRecord> {
        self.tenant
            .sandbox
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with("/api/v2/"))
            .collect()
    }
}

/// An NDJSON user line's (`created_at`, `user_id`), read without building the whole user.
pub fn line_key(line: &str) -> (String, String) {
    #[derive(serde::Deserialize)]
    struct Key {
        created_at: String,
        user_id: String,
    }
    let key: Key = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("not a user with created_at and user_id ({e}): {line}"));
    (key.created_at, key.user_id)
}

/// A user's `user_id`.
pub fn user_id(user: &Map<String, Value>) -> &str {
    user.get("user_id")
        .and_then(Value::as_str)
        .expect("every user has a string user_id")
}

/// A proxy in front of a [`Live`] tenant that can go down: after [`Gate::go_down`] it answers
/// every API request with 503 (and `Retry-After: 0`, so that the client's retries do not make
/// the test slow) until [`Gate::heal`]. The token endpoint always works.
///
/// An export job's links lead through the gate too (the tenant's address in a job's answer is
/// replaced by the gate's), so that [`Gate::cut_next_file`] can break a download off halfway.
pub struct Gate {
    domain: String,
    inner: Arc<GateInner>,
    server: tokio::task::JoinHandle<()>,
}

struct GateInner {
    upstream: String,
    /// The gate's own address, for the links it hands out.
    domain: String,
    down: AtomicBool,
    refused: AtomicU64,
    /// The next export file is sent only halfway, then the connection is dropped.
    cut_file: AtomicBool,
    http: reqwest::Client,
}

impl Gate {
    /// A healthy gate in front of `live`.
    pub fn start(live: &Live) -> Gate {
        let listener = live.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"));
        let listener = listener.expect("the gate binds");
        let addr = listener.local_addr().expect("the gate's address");
        let domain = format!("http://{addr}");
        let inner = Arc::new(GateInner {
            upstream: live.domain().to_string(),
            domain: domain.clone(),
            down: AtomicBool::new(false),
            refused: AtomicU64::new(0),
            cut_file: AtomicBool::new(false),
            http: reqwest::Client::new(),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(inner.clone());
        let server = live.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Gate {
            domain,
            inner,
            server,
        }
    }

    /// The domain to give the export: `http://127.0.0.1:PORT` of the proxy.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// From now on every API request is answered 503.
    pub fn go_down(&self) {
        self.inner.down.store(true, Ordering::SeqCst);
    }

    /// From now on every request goes through.
    pub fn heal(&self) {
        self.inner.down.store(false, Ordering::SeqCst);
    }

    /// The next export file is sent only halfway (its full length announced), then the
    /// connection is dropped: a transfer that breaks off.
    pub fn cut_next_file(&self) {
        self.inner.cut_file.store(true, Ordering::SeqCst);
    }

    /// API requests answered 503 so far.
    pub fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::SeqCst)
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A token request's body with the sandbox's own API as the audience: a client in front of a
/// proxy names the proxy's.
pub fn own_audience(bytes: &[u8], upstream: &str) -> Vec<u8> {
    let mut form: Map<String, Value> =
        serde_json::from_slice(bytes).expect("the token request is JSON");
    form.insert(
        "audience".into(),
        Value::String(format!("{upstream}/api/v2/")),
    );
    serde_json::to_vec(&form).expect("JSON")
}

/// Sends a request a proxy took in on to `upstream` (its headers but the host and length);
/// `Err` is the 502 to answer when the upstream cannot be reached.
pub async fn pass_on(
    http: &reqwest::Client,
    upstream: &str,
    parts: &axum::http::request::Parts,
    path_and_query: &str,
    bytes: Vec<u8>,
) -> Result<reqwest::Response, Response> {
    let mut request = http.request(parts.method.clone(), format!("{upstream}{path_and_query}"));
    for (name, value) in &parts.headers {
        if !matches!(name.as_str(), "host" | "content-length") {
            request = request.header(name, value);
        }
    }
    request.body(bytes).send().await.map_err(|_| {
        Response::builder()
            .status(502)
            .body(Body::empty())
            .expect("a static response")
    })
}

async fn forward(State(gate): State<Arc<GateInner>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    if path.starts_with("/api/v2/") && gate.down.load(Ordering::SeqCst) {
        gate.refused.fetch_add(1, Ordering::SeqCst);
        return Response::builder()
            .status(503)
            .header("content-type", "application/json")
            .header("retry-after", "0")
            .body(Body::from(
                r#"{"statusCode":503,"error":"Service Unavailable","message":"The tenant is down (test gate).","errorCode":"service_unavailable"}"#,
            ))
            .expect("a static response");
    }
    let mut bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("the request body reads")
        .to_vec();
    if path == "/oauth/token" {
        bytes = own_audience(&bytes, &gate.upstream);
    }
    let answer = match pass_on(&gate.http, &gate.upstream, &parts, &path_and_query, bytes).await {
        Ok(answer) => answer,
        Err(failed) => return failed,
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !matches!(name.as_str(), "content-length" | "transfer-encoding") {
            response = response.header(name, value);
        }
    }
    let mut body = answer.bytes().await.unwrap_or_default();
    if path.starts_with("/api/v2/jobs/") {
        // An export job's link leads through the gate.
        let text = String::from_utf8_lossy(&body).replace(&gate.upstream, &gate.domain);
        body = text.into_bytes().into();
    }
    if path.starts_with("/user-exports/") && gate.cut_file.swap(false, Ordering::SeqCst) {
        use futures::StreamExt;
        let half: Result<bytes::Bytes, std::io::Error> = Ok(body.slice(..body.len() / 2));
        // The half goes out before the connection drops.
        let cut = futures::stream::once(async {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            Err(std::io::Error::other("the gate cut the file off"))
        });
        let pieces = futures::stream::iter([half]).chain(cut);
        return response
            .header("content-length", body.len())
            .body(Body::from_stream(pieces))
            .unwrap_or_else(|_| Response::new(Body::empty()));
    }
    response
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}
