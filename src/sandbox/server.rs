//! The sandbox's accept loop: serves the router over HTTP/1.1, injects faults, keeps the log.
//!
//! A hand-written loop (rather than `axum::serve`) because a "dropped connection" fault must
//! close the socket before any response byte is written, which only the connection owner can do.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use rand::Rng;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::error::ApiError;
use super::{RequestRecord, State};

/// A fault injected in place of (or on top of) the real answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// An error status; the request is not applied.
    Status(u16),
    /// The request is applied, then the connection closes without an answer.
    Drop,
    /// The request is applied, then the body stops halfway and the connection closes.
    Truncate,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Status(500) => "500",
            Fault::Status(502) => "502",
            Fault::Status(_) => "503",
            Fault::Drop => "drop",
            Fault::Truncate => "truncate",
        }
    }
}

/// The error that makes hyper close a connection without answering.
#[derive(Debug, thiserror::Error)]
#[error("sandbox fault: connection dropped")]
struct Dropped;

impl State {
    /// Draws the fault for one API request, if any, from the seeded sequence.
    fn roll_fault(&self) -> Option<Fault> {
        if self.options.fault_rate <= 0.0 {
            return None;
        }
        let mut rng = self.faults.lock().expect("fault lock");
        if rng.random::<f64>() >= self.options.fault_rate {
            return None;
        }
        Some(match rng.random_range(0..5) {
            0 => Fault::Status(500),
            1 => Fault::Status(502),
            2 => Fault::Status(503),
            3 => Fault::Drop,
            _ => Fault::Truncate,
        })
    }
}

/// Serves until `cancel` fires.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    state: Arc<State>,
    cancel: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "Sandbox could not accept a connection.");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (app, state, cancel) = (app.clone(), state.clone(), cancel.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                handle(app.clone(), state.clone(), request)
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = cancel.cancelled() => {}
            }
        });
    }
}

async fn handle(
    app: Router,
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Dropped> {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let observed = !path.starts_with("/__sandbox");
    let fault = if path.starts_with("/api/v2/") {
        state.roll_fault()
    } else {
        None
    };
    let request = request.map(Body::new);
    let route = route_template(&method, &path);
    let record = |status: u16, fault: Option<Fault>| {
        if observed {
            let record = RequestRecord {
                method: method.clone(),
                path: path.clone(),
                query: query.clone(),
                status,
                fault: fault.map(Fault::name),
            };
            state.record(&route, record);
        }
    };
    let run = |request| async {
        app.clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|e| match e {})
    };
    match fault {
        None => {
            let response = run(request).await;
            record(response.status().as_u16(), None);
            Ok(response)
        }
        Some(f @ Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            record(code, Some(f));
            Ok(ApiError::server(status).into_response())
        }
        Some(f @ Fault::Drop) => {
            let _ = run(request).await;
            record(0, Some(f));
            Err(Dropped)
        }
        Some(f @ Fault::Truncate) => {
            let response = run(request).await;
            let (mut parts, body) = response.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            record(parts.status.as_u16(), Some(f));
            parts
                .headers
                .insert(header::CONTENT_LENGTH, bytes.len().into());
            let half = bytes.slice(..bytes.len() / 2);
            // The first half goes out and is flushed; only then does the body fail, so the
            // client sees a status and headers followed by a short body.
            let first = futures::stream::iter([Ok::<_, std::io::Error>(Frame::data(half))]);
            let failure = futures::stream::once(async {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                Err(std::io::Error::other("sandbox fault: body truncated"))
            });
            let frames = futures::StreamExt::chain(first, failure);
            let body = Body::new(StreamBody::new(frames));
            Ok(Response::from_parts(parts, body))
        }
    }
}

/// The route a request hit, with ids replaced by a placeholder: `GET /api/v2/users/{id}`.
fn route_template(method: &str, path: &str) -> String {
    let template = if path.starts_with("/api/v2/users/") {
        "/api/v2/users/{id}"
    } else {
        path
    };
    format!("{method} {template}")
}
