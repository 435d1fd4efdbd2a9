//! The sandbox's accept loop: serves the router over HTTP/1.1, injects faults, keeps the log.
//!
//! A hand-written loop (rather than `axum::serve`) because a "dropped connection" fault must
//! close the socket before any response byte is written, which only the connection owner can do.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::error::ErrorReply;
use super::ratelimit::Group;
use super::{RequestRecord, State, routes};

/// A fault injected in place of (or on top of) the real answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
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

/// The seeded fault sequence: each API request outside a burst starts one with chance `rate`;
/// a burst fails `burst` requests in a row with the same fault, as a struggling backend does
/// (a run of 503s, a load balancer dropping connections for a moment).
pub(crate) struct FaultDice {
    rng: ChaCha8Rng,
    rate: f64,
    burst: u32,
    /// The fault of the burst under way and how many requests it still takes.
    ongoing: Option<(Fault, u32)>,
}

impl FaultDice {
    pub(crate) fn new(seed: u64, rate: f64, burst: u32) -> FaultDice {
        FaultDice {
            // The same stream as before bursts existed: a seed replays the same faults.
            rng: ChaCha8Rng::seed_from_u64(seed),
            rate,
            burst: burst.max(1),
            ongoing: None,
        }
    }

    /// The fault for the next API request, if any.
    pub(crate) fn roll(&mut self) -> Option<Fault> {
        if let Some((fault, left)) = self.ongoing.take() {
            if left > 1 {
                self.ongoing = Some((fault, left - 1));
            }
            return Some(fault);
        }
        if self.rate <= 0.0 || self.rng.random::<f64>() >= self.rate {
            return None;
        }
        let fault = match self.rng.random_range(0..5) {
            0 => Fault::Status(500),
            1 => Fault::Status(502),
            2 => Fault::Status(503),
            3 => Fault::Drop,
            _ => Fault::Truncate,
        };
        if self.burst > 1 {
            self.ongoing = Some((fault, self.burst - 1));
        }
        Some(fault)
    }
}

/// The latency spikes' own stream of the fault seed, so turning spikes on leaves the fault
/// sequence as it was.
pub(crate) fn spike_rng(seed: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1);
    rng
}

/// Whether `elapsed` (since the sandbox started) falls in a 429 storm: storm `k` (k >= 1)
/// runs from `k * every` for `length`.
pub(crate) fn in_storm(elapsed: Duration, every: Duration, length: Duration) -> bool {
    if every.is_zero() || elapsed < every {
        return false;
    }
    let into = elapsed.as_nanos() % every.as_nanos();
    into < length.as_nanos()
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
        self.faults.lock().expect("fault lock").roll()
    }

    /// Draws whether one API request is held a latency spike longer.
    fn roll_spike(&self) -> Option<Duration> {
        let options = &self.options;
        if options.latency_spike_rate <= 0.0 || options.latency_spike.is_zero() {
            return None;
        }
        let draw: f64 = self.spikes.lock().expect("spike lock").random();
        (draw < options.latency_spike_rate).then_some(options.latency_spike)
    }

    fn in_storm(&self) -> bool {
        in_storm(
            self.started.elapsed(),
            self.options.storm_every,
            self.options.storm_for,
        )
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
    let api = path.starts_with("/api/v2/");
    if api && let Some(spike) = state.roll_spike() {
        state.stats.lock().expect("stats lock").latency_spikes += 1;
        tokio::time::sleep(spike).await;
    }
    // Facts ("Rate limits"): a storm is another client on the tenant emptying the bucket the
    // request would use (its group's own, else the shared one); every request then finds it
    // empty and gets Auth0's 429 with its headers.
    if api && state.in_storm() {
        let response = routes::storm_response(&state, Group::of(&method, &path));
        if observed {
            let record = RequestRecord {
                method: method.clone(),
                path: path.clone(),
                query: query.clone(),
                status: response.status().as_u16(),
                fault: Some("storm"),
            };
            state.record(&route_template(&method, &path), record);
        }
        return Ok(response);
    }
    let fault = if api { state.roll_fault() } else { None };
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
            Ok(ErrorReply::server(status).into_response())
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
                tokio::time::sleep(Duration::from_millis(20)).await;
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
    } else if let Some(rest) = path.strip_prefix("/api/v2/jobs/")
        && !matches!(rest, "users-imports" | "users-exports")
    {
        if rest.ends_with("/errors") {
            "/api/v2/jobs/{id}/errors"
        } else {
            "/api/v2/jobs/{id}"
        }
    } else {
        path
    };
    format!("{method} {template}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_come_in_bursts_of_one_kind() {
        let mut dice = FaultDice::new(7, 0.1, 4);
        let rolls: Vec<Option<Fault>> = (0..2_000).map(|_| dice.roll()).collect();
        let mut runs = Vec::new();
        let mut index = 0;
        while index < rolls.len() {
            let Some(fault) = rolls[index] else {
                index += 1;
                continue;
            };
            let length = rolls[index..]
                .iter()
                .take_while(|r| **r == Some(fault))
                .count();
            runs.push(length);
            index += length;
        }
        assert!(runs.len() >= 20, "{} bursts", runs.len());
        // Two bursts may touch (one starts right after the other ends): runs are multiples.
        assert!(runs.iter().all(|n| n % 4 == 0), "{runs:?}");
        assert!(runs.contains(&4));
    }

    #[test]
    fn a_seed_replays_the_same_faults_and_burst_one_is_the_old_sequence() {
        let draw = |burst| {
            let mut dice = FaultDice::new(11, 0.2, burst);
            (0..500).map(|_| dice.roll()).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        // Bursts of one: independent coin flips, as before bursts existed.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut old = Vec::new();
        for _ in 0..500 {
            old.push(if rng.random::<f64>() >= 0.2 {
                None
            } else {
                Some(match rng.random_range(0..5) {
                    0 => Fault::Status(500),
                    1 => Fault::Status(502),
                    2 => Fault::Status(503),
                    3 => Fault::Drop,
                    _ => Fault::Truncate,
                })
            });
        }
        assert_eq!(draw(1), old);
    }

    #[test]
    fn storms_start_every_period_and_last_their_length() {
        let (every, length) = (Duration::from_secs(5), Duration::from_secs(2));
        let at = |ms| in_storm(Duration::from_millis(ms), every, length);
        assert!(!at(0) && !at(4_999), "no storm before the first period");
        assert!(at(5_000) && at(6_999));
        assert!(!at(7_000) && !at(9_999));
        assert!(at(10_000) && at(11_500));
        assert!(!in_storm(Duration::from_secs(60), Duration::ZERO, length));
    }
}
