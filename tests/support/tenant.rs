//! A sandbox tenant started in-process for a test, with a small JSON client around it.

use std::time::Duration;

use auth0_bulk::sandbox::{Sandbox, SandboxOptions};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// A response reduced to what tests assert on.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A running sandbox plus a client holding a valid token.
pub struct Tenant {
    pub sandbox: Sandbox,
    pub http: reqwest::Client,
    pub token: String,
}

impl Tenant {
    /// Starts a sandbox with `options` (listening on 127.0.0.1:0) and fetches a token.
    pub async fn start(options: SandboxOptions) -> Tenant {
        let sandbox = Sandbox::start(options).await.expect("sandbox starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let mut tenant = Tenant {
            sandbox,
            http,
            token: String::new(),
        };
        let reply = tenant.token_request(&tenant.credentials()).await;
        assert_eq!(reply.status, 200, "token: {:?}", reply.body);
        tenant.token = reply.body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string();
        tenant
    }

    /// A sandbox with `n` generated users and default options.
    pub async fn generated(n: usize) -> Tenant {
        Tenant::start(SandboxOptions {
            generate: n,
            ..Default::default()
        })
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.sandbox.domain(), path)
    }

    /// The client-credentials body for this sandbox.
    pub fn credentials(&self) -> Value {
        json!({
            "grant_type": "client_credentials",
            "client_id": self.sandbox.client_id(),
            "client_secret": self.sandbox.client_secret(),
            "audience": format!("{}/api/v2/", self.sandbox.domain()),
        })
    }

    pub async fn token_request(&self, body: &Value) -> Reply {
        reply(
            self.http
                .post(self.url("/oauth/token"))
                .json(body)
                .send()
                .await
                .expect("send"),
        )
        .await
    }

    /// GET an API path (`/users?...`) with the token.
    pub async fn get(&self, path_and_query: &str) -> Reply {
        let request = self.http.get(self.url(&format!("/api/v2{path_and_query}")));
        reply(request.bearer_auth(&self.token).send().await.expect("send")).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        let request = self
            .http
            .post(self.url(&format!("/api/v2{path}")))
            .json(body);
        reply(request.bearer_auth(&self.token).send().await.expect("send")).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        let request = self
            .http
            .patch(self.url(&format!("/api/v2{path}")))
            .json(body);
        reply(request.bearer_auth(&self.token).send().await.expect("send")).await
    }

    /// DELETE an API path with a JSON body (`/users/{id}/roles {roles}`).
    pub async fn delete_json(&self, path: &str, body: &Value) -> Reply {
        let request = self
            .http
            .delete(self.url(&format!("/api/v2{path}")))
            .json(body);
        reply(request.bearer_auth(&self.token).send().await.expect("send")).await
    }

    /// `GET /__sandbox/users[?with=authz]`: every user, by user_id, as parsed lines.
    pub async fn evidence_users(&self, query: &str) -> Vec<Value> {
        let url = self.url(&format!("/__sandbox/users{query}"));
        let response = self.http.get(url).send().await.expect("send");
        assert_eq!(response.status(), 200, "GET /__sandbox/users{query}");
        let text = response.text().await.expect("the evidence reads");
        text.lines()
            .map(|l| serde_json::from_str(l).expect("an evidence line is JSON"))
            .collect()
    }

    pub async fn delete(&self, path: &str) -> Reply {
        let request = self.http.delete(self.url(&format!("/api/v2{path}")));
        reply(request.bearer_auth(&self.token).send().await.expect("send")).await
    }
}

/// Reads a response; an empty body becomes `Value::Null`.
pub async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// Percent-encodes a path segment (user ids hold `|`).
pub fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
