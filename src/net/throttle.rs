//! One request budget: paces all workers to one of the tenant's buckets; a 429 pauses them all.
//!
//! Facts ("Rate limits"): Auth0 runs a token bucket per tenant (and endpoint group). Every response
//! carries `x-ratelimit-limit` (the bucket size B), `x-ratelimit-remaining` (whole tokens left
//! after this request) and `x-ratelimit-reset` (UNIX epoch second at which the bucket is full).
//! `Retry-After` is not documented but honoured when present.
//!
//! Three policies ([`Rate`]):
//! - `Auto` mirrors the server's bucket on this side. The level (tokens the server holds, less
//!   requests already sent but not yet answered) is re-read from `x-ratelimit-remaining` on every
//!   response and refilled between responses at the learnt rate. The learnt rate is a *lower
//!   bound* of the server's refill rate R, so the mirror never runs ahead of the server for long;
//!   what it under-counts comes back as soon as a response shows more tokens than expected.
//! - `PerSecond(n)` paces with governor (GCRA) at `n`/s and a small burst. governor reads time
//!   through tokio's clock and we wait with `tokio::time`, so paused-clock tests work (governor's
//!   own `until_ready` would sleep on real time).
//! - `Unlimited` never waits except for a 429 pause.
//!
//! In every policy a 429 sets one pause that all workers honour before taking a permit:
//! `Retry-After` if sent; else (Auto, rate known) until the mirror holds a token again; else
//! until `x-ratelimit-reset`; else 1 s. A pause is capped at [`MAX_PAUSE`].
//!
//! Use: call [`Throttle::acquire`] before every attempt (retries too) and [`Throttle::observe`]
//! once for every answer to such an attempt (also 429s, 4xx and 5xx), and for nothing else: the
//! token endpoint has its own limits. An attempt that never gets an answer (transport failure)
//! is forgotten after a few seconds. One throttle serves one bucket: Auth0 keeps one per
//! endpoint group (users read, users write, ...) on some tenants and one for all on others;
//! [`crate::net::pace`] finds out which and gives each bucket its own throttle.

use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use http::HeaderMap;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::retry::retry_after;

/// How fast to send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Learn the tenant's limit from the `x-ratelimit-*` headers.
    Auto,
    /// A fixed number of requests per second. Not finite and positive: `+inf` is
    /// [`Rate::Unlimited`], anything else (0, negative, NaN) falls back to [`Rate::Auto`].
    PerSecond(f64),
    /// No pacing; only 429 pauses.
    Unlimited,
}

/// What the throttle believes now, for the summary and logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThrottleSnapshot {
    /// The refill rate learnt in `Auto` (requests per second), a lower bound of the server's.
    pub learned_rate: Option<f64>,
    /// The bucket size from `x-ratelimit-limit`.
    pub limit: Option<u32>,
    /// 429 responses seen.
    pub throttled: u64,
    /// Wall time during which all workers were held by a 429 pause.
    pub paused_total: Duration,
    /// The smoothed round trip of its requests (acquire to answer).
    pub rtt: Option<Duration>,
    /// The rate it expects to pace at, to size the work in flight: the fixed rate; in `Auto`
    /// the learnt rate, and until requests have been counted against the server's tokens at
    /// least a fifth of the bucket per second (see [`BURST_HINT`]); `None` when unlimited or
    /// nothing is known.
    pub pacing: Option<f64>,
    /// Requests sent and not yet answered.
    pub in_flight: usize,
    /// `x-ratelimit-remaining` of the last answer that had it.
    pub remaining: Option<u64>,
}

/// The longest single pause, whatever `Retry-After` or `x-ratelimit-reset` say, so a server
/// (or a skewed clock) saying "in an hour" cannot stall the job.
pub const MAX_PAUSE: Duration = Duration::from_secs(60);
/// The pause after a 429 that tells nothing more.
const DEFAULT_PAUSE: Duration = Duration::from_secs(1);
/// How far back the rate estimator looks.
const HORIZON: Duration = Duration::from_secs(60);
/// The shortest window a rate bound is computed over.
const MIN_WINDOW: Duration = Duration::from_secs(1);
/// Consumption overrules a higher reset bound once it has watched this long.
const TRUST_CONSUMPTION_AFTER: Duration = Duration::from_secs(10);
/// Window starts are kept at most this often.
const ANCHOR_SPACING: Duration = Duration::from_millis(250);
/// A request with no response after this long (and 4 smoothed round trips) is taken as lost.
const LOST_AFTER: Duration = Duration::from_secs(3);
/// The shortest round trip is taken over this long.
const RTT_FLOOR_WINDOW: Duration = Duration::from_secs(10);
/// The learnt rate is multiplied by this on every 429.
const CUT_ON_429: f64 = 0.95;
/// The reserve (tokens kept unused in the mirror) grows by this on every 429 ...
const RESERVE_STEP: f64 = 0.25;
/// ... up to this share of the bucket.
const RESERVE_MAX_SHARE: f64 = 0.2;
/// Requests sent before an answer tells the bucket size: no plan's bucket holds fewer
/// (AUTH0-FACTS "Rate limits": the Free plan's burst of 2 is the smallest), and a second
/// request sent beside the first saves a round trip at the start of a run with work to spare.
const PROBES: usize = 2;
/// The rate used before any bound is known.
const FALLBACK_RATE: f64 = 1.0;
/// Until consumption tells the rate, the bucket size over this many seconds is taken as a
/// rate hint for sizing the work in flight (never for pacing): the first answers' reset bound
/// is weak while the bucket is full, and every Auth0 plan refills its bucket in 1 to 5 s
/// (AUTH0-FACTS "Rate limits": burst 2 at 2/s, 40 at 500/min, 20 at 200/min, 50 at 16/s, 10
/// at 2/s).
pub const BURST_HINT: Duration = Duration::from_secs(5);

/// governor's time source: tokio's clock, so that a paused test clock paces governor too.
#[derive(Debug, Clone, Copy)]
struct TokioClock {
    origin: Instant,
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.origin.elapsed())
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>;

enum Policy {
    Auto,
    Fixed {
        limiter: Box<Limiter>,
        clock: TokioClock,
    },
    Unlimited,
}

/// Where UNIX epoch time comes from (the header math needs it).
enum Epoch {
    System,
    /// Epoch seconds `at_epoch` at tokio instant `at`; moves with tokio's (paused) clock.
    #[cfg(test)]
    Anchored {
        at: Instant,
        at_epoch: f64,
    },
}

impl Epoch {
    /// Epoch seconds at tokio instant `t` (not far from now).
    fn at(&self, t: Instant) -> f64 {
        match self {
            Epoch::System => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64();
                let now_instant = Instant::now();
                if t <= now_instant {
                    now - (now_instant - t).as_secs_f64()
                } else {
                    now + (t - now_instant).as_secs_f64()
                }
            }
            #[cfg(test)]
            Epoch::Anchored { at, at_epoch } => {
                if t >= *at {
                    at_epoch + (t - *at).as_secs_f64()
                } else {
                    at_epoch - (*at - t).as_secs_f64()
                }
            }
        }
    }
}

/// One budget shared by every worker (wrap in `Arc`). Cheap to call from many tasks.
pub struct Throttle {
    policy: Policy,
    /// The rate of a `Fixed` policy.
    fixed_rate: Option<f64>,
    epoch: Epoch,
    state: Mutex<State>,
    /// Wakes waiting workers when a response changed what they wait for.
    wake: Notify,
}

impl fmt::Debug for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let policy = match self.policy {
            Policy::Auto => "auto",
            Policy::Fixed { .. } => "per-second",
            Policy::Unlimited => "unlimited",
        };
        f.debug_struct("Throttle")
            .field("policy", &policy)
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

/// A possible start of a rate-estimation window: one earlier response.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    /// When its request was sent: no later than the server counted it.
    sent: Instant,
    /// The most tokens the server can have held right after it.
    tokens_max: f64,
    /// `consumed` counted up to and including it.
    consumed: u64,
    /// Requests unanswered right after it: the most that the server may have counted before it
    /// although their answers came later.
    unanswered: usize,
    /// Those of them sent before it: the ones the server most likely counted before it (for
    /// the sizing estimate, not the bound).
    older_unanswered: usize,
}

#[derive(Debug)]
struct State {
    /// `x-ratelimit-limit`, the bucket size.
    limit: Option<u32>,
    /// Responses came without rate headers: Auto cannot mirror anything and lets requests go.
    headerless: bool,
    /// The learnt refill rate (a lower bound of the server's), requests per second.
    rate: Option<f64>,
    /// An estimate of the refill rate for sizing the work in flight, never for pacing: the
    /// consumption bound over windows less the shortest round trip (see `learn`).
    sizing_rate: f64,
    /// The best lower bound from `x-ratelimit-reset`; dropped for good after a 429 it caused.
    reset_bound: f64,
    reset_trusted: bool,
    /// Where `rate` comes from.
    source: Source,
    /// The mirror: tokens the server holds less requests sent and not answered, at `level_at`.
    level: f64,
    level_at: Instant,
    /// Tokens the mirror keeps unused; grows after 429s.
    reserve: f64,
    /// Send times of requests not yet answered, oldest first (see `match_request`).
    pending: VecDeque<Instant>,
    /// Smoothed round trip.
    rtt: Option<Duration>,
    /// `x-ratelimit-remaining` of the last answer that had it.
    remaining: Option<u64>,
    /// Recent round trips, increasing (a sliding-window minimum): (answered at, round trip).
    rtt_floor: VecDeque<(Instant, Duration)>,
    /// Responses that took a token (every answer but a 429).
    consumed: u64,
    /// Recent token-taking responses (a few seconds' worth): when they arrived, and the
    /// `x-ratelimit-remaining` they carried.
    recent: VecDeque<(Instant, f64)>,
    anchors: VecDeque<Anchor>,
    paused_until: Option<Instant>,
    throttled: u64,
    paused_total: Duration,
}

/// Where the learnt rate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Nothing learnt yet: [`FALLBACK_RATE`].
    Fallback,
    /// `x-ratelimit-reset`, which trusts the two clocks to agree.
    Reset,
    /// Requests counted against the server's `x-ratelimit-remaining` (no clocks involved).
    Consumption,
}

impl Throttle {
    /// A throttle for `rate`.
    pub fn new(rate: Rate) -> Throttle {
        Throttle::with_epoch(rate, Epoch::System)
    }

    fn with_epoch(rate: Rate, epoch: Epoch) -> Throttle {
        let policy = match rate {
            Rate::Unlimited => Policy::Unlimited,
            Rate::PerSecond(n) if n == f64::INFINITY => Policy::Unlimited,
            Rate::PerSecond(n) if n.is_finite() && n > 0.0 => {
                let clock = TokioClock {
                    origin: Instant::now(),
                };
                let limiter = RateLimiter::direct_with_clock(fixed_quota(n), clock);
                Policy::Fixed {
                    limiter: Box::new(limiter),
                    clock,
                }
            }
            Rate::Auto | Rate::PerSecond(_) => Policy::Auto,
        };
        let now = Instant::now();
        let fixed_rate = match (&policy, rate) {
            (Policy::Fixed { .. }, Rate::PerSecond(n)) => Some(n),
            _ => None,
        };
        Throttle {
            policy,
            fixed_rate,
            epoch,
            state: Mutex::new(State {
                limit: None,
                headerless: false,
                rate: None,
                sizing_rate: 0.0,
                reset_bound: 0.0,
                reset_trusted: true,
                source: Source::Fallback,
                level: 0.0,
                level_at: now,
                reserve: 0.0,
                pending: VecDeque::new(),
                rtt: None,
                remaining: None,
                rtt_floor: VecDeque::new(),
                consumed: 0,
                recent: VecDeque::new(),
                anchors: VecDeque::new(),
                paused_until: None,
                throttled: 0,
                paused_total: Duration::ZERO,
            }),
            wake: Notify::new(),
        }
    }

    /// Waits until this worker may send one request (counts it against the budget).
    pub async fn acquire(&self) {
        loop {
            // Created before looking at the state, so no wake-up in between is missed.
            let notified = self.wake.notified();
            let now = Instant::now();
            let wait = {
                let mut state = self.lock();
                state.expire_lost(now);
                match state.paused_until {
                    Some(until) if until > now => Some(until),
                    _ => match &self.policy {
                        Policy::Unlimited => {
                            state.pending.push_back(now);
                            None
                        }
                        Policy::Fixed { limiter, clock } => match limiter.check() {
                            Ok(()) => {
                                state.pending.push_back(now);
                                None
                            }
                            Err(not_until) => Some(
                                now + not_until
                                    .wait_time_from(clock.now())
                                    .max(Duration::from_micros(1)),
                            ),
                        },
                        Policy::Auto => state.take_auto(now),
                    },
                }
            };
            let Some(until) = wait else { return };
            // A response may change what we wait for: look again after each one.
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = notified => {}
            }
        }
    }

    /// Learns from a response: its status and headers (`x-ratelimit-limit`/`-remaining`/`-reset`,
    /// `retry-after`). A 429 pauses every worker (shared state) until the server will take
    /// requests again.
    pub fn observe(&self, status: u16, headers: &HeaderMap) {
        self.read(status, headers, true);
    }

    /// [`Throttle::observe`]; `matched` when the answer is to one of this throttle's requests.
    fn read(&self, status: u16, headers: &HeaderMap, matched: bool) {
        let now = Instant::now();
        let seen = Seen {
            status,
            limit: header_number(headers, "x-ratelimit-limit")
                .and_then(|v| u32::try_from(v).ok())
                .filter(|v| *v > 0),
            remaining: header_number(headers, "x-ratelimit-remaining"),
            reset: header_number(headers, "x-ratelimit-reset"),
            retry_after: retry_after(headers, MAX_PAUSE),
        };
        {
            let mut state = self.lock();
            state.expire_lost(now);
            let sent = if matched {
                let sent = state.match_request(now);
                state.learn_rtt(now, now - sent);
                sent
            } else {
                now
            };
            if seen.remaining.is_some() {
                state.remaining = seen.remaining;
            }
            if let Some(limit) = seen.limit {
                if state.limit.is_some_and(|old| old != limit) {
                    // Another bucket (endpoint group or plan change): start learning again.
                    state.anchors.clear();
                }
                state.limit = Some(limit);
                state.headerless = false;
            } else if state.limit.is_none() {
                state.headerless = true;
            }
            let auto = matches!(self.policy, Policy::Auto);
            if auto {
                state.learn(&seen, now, sent, &self.epoch);
            }
            if status == 429 {
                state.throttled += 1;
                let pause = match seen.retry_after {
                    Some(wait) => wait,
                    // Until the mirror holds a permit again, once there is a rate to go by.
                    None if auto && state.source != Source::Fallback && state.limit.is_some() => {
                        state.time_to_gate(now)
                    }
                    // Else until the bucket is full again (1 s if the server did not say).
                    None => seen
                        .reset
                        .map(|reset| reset as f64 - self.epoch.at(now))
                        .filter(|secs| *secs > 0.0)
                        .map_or(DEFAULT_PAUSE, |secs| {
                            Duration::try_from_secs_f64(secs).unwrap_or(MAX_PAUSE)
                        }),
                };
                state.pause(now, now + pause.min(MAX_PAUSE));
            }
        }
        self.wake.notify_waiters();
    }

    /// What the throttle believes now.
    pub fn snapshot(&self) -> ThrottleSnapshot {
        let state = self.lock();
        let pacing = match &self.policy {
            Policy::Unlimited => None,
            Policy::Fixed { .. } => self.fixed_rate,
            Policy::Auto if state.source == Source::Consumption => {
                state.rate.map(|rate| rate.max(state.sizing_rate))
            }
            Policy::Auto => {
                let hint = state
                    .limit
                    .map(|limit| f64::from(limit) / BURST_HINT.as_secs_f64());
                match (state.rate, hint) {
                    (Some(rate), Some(hint)) => Some(rate.max(hint)),
                    (rate, hint) => rate.or(hint),
                }
            }
        };
        ThrottleSnapshot {
            learned_rate: state.rate,
            limit: state.limit,
            throttled: state.throttled,
            paused_total: state.paused_total,
            rtt: state.rtt,
            pacing,
            in_flight: state.pending.len(),
            remaining: state.remaining,
        }
    }

    /// Whether it learns the server's budget (`Auto`), and so may be told to share it or not.
    pub fn learns(&self) -> bool {
        matches!(self.policy, Policy::Auto)
    }

    /// Forgets one request sent through this throttle whose answer another throttle reads (its
    /// endpoint group turned out to have a bucket of its own while it was in flight).
    pub fn forget_one(&self) {
        let now = Instant::now();
        {
            let mut state = self.lock();
            state.match_request(now);
            // Its token is the other bucket's: the mirror's level did not pay for this one.
            if state.limit.is_some() {
                state.level += 1.0;
            }
        }
        self.wake.notify_waiters();
    }

    /// Learns from an answer to a request another throttle sent (see [`Throttle::forget_one`]):
    /// the bucket's size, tokens and a 429 pause, but no round trip.
    pub fn adopt(&self, status: u16, headers: &HeaderMap) {
        self.read(status, headers, false);
    }

    /// Forgets the learnt rate (not the bucket size, the tokens or a pause): the answers it was
    /// learnt from turned out to mix two buckets.
    pub fn relearn(&self) {
        let mut state = self.lock();
        state.rate = None;
        state.reset_bound = 0.0;
        state.source = Source::Fallback;
        state.anchors.clear();
        state.recent.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is a few stores.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `n` per second with a burst of about a tenth of a second's worth (at least 1, at most 10).
fn fixed_quota(n: f64) -> Quota {
    let period = Duration::try_from_secs_f64(1.0 / n)
        .unwrap_or(Duration::from_secs(86_400))
        .max(Duration::from_nanos(1));
    let burst = (n / 10.0).floor().clamp(1.0, 10.0) as u32;
    Quota::with_period(period)
        .expect("period is positive")
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

/// What one response said.
struct Seen {
    status: u16,
    limit: Option<u32>,
    remaining: Option<u64>,
    reset: Option<u64>,
    retry_after: Option<Duration>,
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

impl State {
    /// How long an unanswered request is waited for before it is taken as lost.
    fn lost_after(&self) -> Duration {
        self.rtt.map_or(LOST_AFTER, |rtt| LOST_AFTER.max(rtt * 4))
    }

    /// Takes the request this answer belongs to off the unanswered list and returns when it
    /// was sent. Answers carry no request id, so it is the latest request sent at least the
    /// shortest recent round trip ago. (Taking the oldest instead would leave the entry of a
    /// request that never gets an answer behind the front for ever.)
    fn match_request(&mut self, now: Instant) -> Instant {
        let floor = self
            .rtt_floor
            .front()
            .map_or(Duration::ZERO, |(_, rtt)| *rtt);
        let latest_possible = now.checked_sub(floor).unwrap_or(now);
        // Sent times are increasing: find the last one not after `latest_possible`.
        let index = self
            .pending
            .partition_point(|sent| *sent <= latest_possible);
        let index = index.saturating_sub(1);
        self.pending.remove(index).unwrap_or(now)
    }

    /// Forgets requests that will never be answered (the caller saw a transport failure).
    fn expire_lost(&mut self, now: Instant) {
        let lost_after = self.lost_after();
        while self
            .pending
            .front()
            .is_some_and(|sent| now.saturating_duration_since(*sent) > lost_after)
        {
            self.pending.pop_front();
        }
    }

    fn learn_rtt(&mut self, now: Instant, sample: Duration) {
        self.rtt = Some(match self.rtt {
            None => sample,
            Some(rtt) => rtt.mul_f64(0.9) + sample.mul_f64(0.1),
        });
        while self.rtt_floor.back().is_some_and(|(_, rtt)| *rtt >= sample) {
            self.rtt_floor.pop_back();
        }
        self.rtt_floor.push_back((now, sample));
        while self
            .rtt_floor
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > RTT_FLOOR_WINDOW)
        {
            self.rtt_floor.pop_front();
        }
    }

    /// Tokens the server will have refilled by the time a request sent now reaches it, beyond
    /// what the mirror counts: the mirror dates each answer at its arrival, so the way back of
    /// the last answer plus the way out of the next request go uncounted. Together they are
    /// about one round trip; the shortest recent one is taken.
    fn lead(&self) -> f64 {
        let (Some(rate), Some(limit)) = (self.rate, self.limit) else {
            return 0.0;
        };
        let rtt = self
            .rtt_floor
            .front()
            .map_or(0.0, |(_, rtt)| rtt.as_secs_f64());
        (rate * rtt).min(f64::from(limit) / 2.0)
    }

    /// Auto: one permit if the mirror holds one, else when to look again (a response may come
    /// first).
    fn take_auto(&mut self, now: Instant) -> Option<Instant> {
        if self.limit.is_none() {
            if self.headerless || self.pending.len() < PROBES {
                // The first requests are probes: their answers tell the bucket size.
                self.pending.push_back(now);
                return None;
            }
            let oldest = self.pending.front().copied().unwrap_or(now);
            let deadline = (oldest + self.lost_after()).max(now + Duration::from_millis(1));
            return Some(deadline);
        }
        self.refill(now);
        if self.level + self.lead() >= 1.0 + self.reserve {
            self.level -= 1.0;
            self.pending.push_back(now);
            return None;
        }
        Some(now + self.time_to_gate(now))
    }

    /// How long until the mirror holds a permit at the current rate.
    fn time_to_gate(&mut self, now: Instant) -> Duration {
        self.refill(now);
        let missing = 1.0 + self.reserve - self.level - self.lead();
        let rate = self.rate.unwrap_or(FALLBACK_RATE);
        Duration::try_from_secs_f64((missing / rate).max(0.001))
            .unwrap_or(MAX_PAUSE)
            .min(MAX_PAUSE)
    }

    /// Brings the mirror to `now`: refilled at the learnt rate, never above what a full bucket
    /// minus the unanswered requests allows.
    fn refill(&mut self, now: Instant) {
        let Some(limit) = self.limit else { return };
        let elapsed = now.saturating_duration_since(self.level_at).as_secs_f64();
        let ceiling = f64::from(limit) - self.pending.len() as f64;
        self.level = (self.level + self.rate.unwrap_or(FALLBACK_RATE) * elapsed).min(ceiling);
        self.level_at = now;
    }

    /// Auto: corrects the mirror from a response and refines the rate.
    ///
    /// Long on purpose: its steps (the mirror, the consumption bound, the reset bound, the
    /// choice between them, the 429 correction, the anchors) read the same snapshot of this
    /// answer (`remaining`, `overtaken`, `tokens_max`, `unanswered`), and each is commented
    /// where it starts; split, they would pass that snapshot around and hide the order.
    fn learn(&mut self, seen: &Seen, now: Instant, sent: Instant, epoch: &Epoch) {
        let (Some(limit), Some(remaining)) = (self.limit, seen.remaining) else {
            return;
        };
        let limit = f64::from(limit);
        let throttled = seen.status == 429;
        let remaining = (remaining as f64).min(limit);
        // Answers that arrived after this request left may stand for requests the server
        // counted after this one (answers overtake each other): this answer's count of remaining
        // tokens does not show them yet. All of them are taken off for the rate bound, which
        // must stay a bound; for the mirror only those that showed fewer tokens, the sign of a
        // request counted after this one (else a burst's last answer would look empty).
        let arrived_since_sent = self.recent.iter().filter(|(t, _)| *t > sent);
        let overtaken = arrived_since_sent.clone().count() as f64;
        let overtaken_lower = arrived_since_sent.filter(|(_, r)| *r < remaining).count() as f64;
        if !throttled {
            self.consumed += 1;
            self.recent.push_back((now, remaining));
        }
        let keep = self.lost_after();
        while self
            .recent
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > keep)
        {
            self.recent.pop_front();
        }
        // The server held between `remaining` and `remaining + 1` tokens after this request,
        // and never more than `limit - 1` after one it let through.
        let tokens_max = if throttled {
            remaining + 1.0
        } else {
            (remaining + 1.0).min(limit - 1.0).max(remaining)
        };
        let unanswered = self.pending.len();

        // The mirror, as of now: the server's tokens less the requests it has not answered and
        // those it may have counted after this one. What refilled since is left out (cautious).
        self.level = remaining - unanswered as f64 - overtaken_lower;
        self.level_at = now;

        // Rate bound from consumption: between an earlier answer A and this one E, the server
        // refilled at least (tokens taken + tokens after E - tokens after A), in at most the time
        // from A's sending to now. Answers that overtook A or E are taken off the count; refill
        // lost to a full bucket only makes the bound lower.
        //
        // The same refill over the window less the shortest recent round trip estimates the
        // rate for sizing the work in flight: the server counted A after A's way out and E
        // before E's way back, about one round trip in all; and of the requests unanswered at
        // A, only those sent before A are taken off (the bound takes all of them off, about a
        // round trip's worth of requests), and so on for the answers that overtook E. At a round trip of 500 ms a bound
        // over a 2 s window is only three quarters of the rate, and work sized from it would
        // keep the run below the limit for its first ten seconds or more.
        let floor = self
            .rtt_floor
            .front()
            .map_or(Duration::ZERO, |(_, rtt)| *rtt);
        let mut best: f64 = 0.0;
        let mut estimate: f64 = 0.0;
        let mut longest = Duration::ZERO;
        for anchor in &self.anchors {
            let window = now.saturating_duration_since(anchor.sent);
            if window >= MIN_WINDOW {
                let taken =
                    (self.consumed - anchor.consumed) as f64 - anchor.unanswered as f64 - overtaken;
                let refilled = taken + remaining - anchor.tokens_max;
                best = best.max(refilled / window.as_secs_f64());
                // Requests sent after the anchor and answered after it were counted after it,
                // and of the answers that overtook this one only those that showed fewer tokens
                // stand for requests counted after it.
                let likely = refilled
                    + (anchor.unanswered - anchor.older_unanswered) as f64
                    + (overtaken - overtaken_lower);
                estimate = estimate.max(likely / (window - floor.min(window / 2)).as_secs_f64());
                longest = longest.max(window);
            }
        }
        // Rate bound from x-ratelimit-reset: the bucket is full at `reset` at the latest, so
        // (limit - tokens) / rate <= reset - (server time) <= reset - (send time). It needs the
        // two clocks to agree, so it only starts the run, until consumption gives a bound.
        if self.source != Source::Consumption
            && self.reset_trusted
            && let Some(reset) = seen.reset
        {
            let until_full = reset as f64 - epoch.at(sent);
            if until_full > 0.0 && limit - tokens_max > 0.0 {
                self.reset_bound = self.reset_bound.max((limit - tokens_max) / until_full);
            }
        }
        let current = self.rate.unwrap_or(0.0);
        if self.source == Source::Consumption {
            self.rate = Some(current.max(best));
        } else if best > 0.0 && (best >= 0.9 * current || longest >= TRUST_CONSUMPTION_AFTER) {
            // Consumption now says about as much as the reset bound, or has watched long
            // enough to overrule it (a skewed clock inflates the reset bound).
            self.rate = Some(best);
            self.source = Source::Consumption;
        } else if self.reset_trusted && self.reset_bound > 0.0 {
            self.rate = Some(current.max(self.reset_bound));
            self.source = Source::Reset;
        } else if self.rate.is_none() {
            // No bound yet (x-ratelimit-reset absent, or behind our clock): start slowly; the
            // mirror still sends whatever the server reports, and the bounds catch up.
            self.rate = Some(FALLBACK_RATE);
        }

        // After a 429 the work is sized by the (cut) bound alone.
        self.sizing_rate = if throttled { 0.0 } else { estimate };
        if throttled {
            // Something in the mirror ran ahead of the server: another client on the tenant, a
            // lower limit than before, or a skewed clock behind the reset bound. Be more careful.
            if self.source == Source::Reset {
                self.reset_trusted = false;
                self.source = Source::Fallback;
                self.rate = Some(best.max(FALLBACK_RATE));
            } else {
                self.rate = self.rate.map(|rate| rate * CUT_ON_429);
            }
            self.reserve = (self.reserve + RESERVE_STEP).min(limit * RESERVE_MAX_SHARE);
            self.anchors.clear();
        }

        if self
            .anchors
            .back()
            .is_none_or(|last| sent.saturating_duration_since(last.sent) >= ANCHOR_SPACING)
        {
            let older_unanswered = self.pending.iter().filter(|t| **t < sent).count();
            self.anchors.push_back(Anchor {
                sent,
                tokens_max,
                consumed: self.consumed,
                unanswered,
                older_unanswered,
            });
        }
        while self
            .anchors
            .front()
            .is_some_and(|a| now.saturating_duration_since(a.sent) > HORIZON)
        {
            self.anchors.pop_front();
        }
    }

    /// Holds every worker until `until` (extends, never shortens, a running pause).
    fn pause(&mut self, now: Instant, until: Instant) {
        let from = match self.paused_until {
            Some(current) if current > now => current,
            _ => now,
        };
        if until > from {
            self.paused_total += until - from;
            self.paused_until = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use http::HeaderValue;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// An arbitrary epoch second; scenarios add a fraction so reset rounding is exercised.
    const EPOCH_SECOND: f64 = 1_750_000_000.0;

    fn test_throttle(rate: Rate, epoch_at_start: f64) -> Throttle {
        Throttle::with_epoch(
            rate,
            Epoch::Anchored {
                at: Instant::now(),
                at_epoch: epoch_at_start,
            },
        )
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn rate_headers(limit: u32, remaining: u32, reset: u64) -> HeaderMap {
        headers(&[
            ("x-ratelimit-limit", limit.to_string()),
            ("x-ratelimit-remaining", remaining.to_string()),
            ("x-ratelimit-reset", reset.to_string()),
        ])
    }

    // -----------------------------------------------------------------------------------------
    // The simulation: a fake server bucket and N workers on tokio's paused clock.

    /// The server side: the sandbox's token bucket (capacity B, refill R/s), on tokio's clock.
    struct Bucket {
        burst: f64,
        rate: f64,
        tokens: f64,
        last: Instant,
        origin: Instant,
        epoch_at_start: f64,
        retry_after: bool,
    }

    impl Bucket {
        fn new(burst: u32, rate: f64, epoch_at_start: f64, retry_after: bool) -> Bucket {
            let now = Instant::now();
            Bucket {
                burst: f64::from(burst),
                rate,
                tokens: f64::from(burst),
                last: now,
                origin: now,
                epoch_at_start,
                retry_after,
            }
        }

        /// One request: 200 or 429, with the exact headers Auth0 (and the sandbox) send.
        fn take(&mut self) -> (u16, HeaderMap) {
            let now = Instant::now();
            self.tokens =
                (self.tokens + (now - self.last).as_secs_f64() * self.rate).min(self.burst);
            self.last = now;
            let allowed = self.tokens >= 1.0;
            if allowed {
                self.tokens -= 1.0;
            }
            let epoch = self.epoch_at_start + (now - self.origin).as_secs_f64();
            // Rounded up: the epoch second at which the bucket is full again.
            let reset = (epoch + (self.burst - self.tokens) / self.rate).ceil() as u64;
            let mut map = rate_headers(self.burst as u32, self.tokens.floor() as u32, reset);
            if !allowed && self.retry_after {
                let wait = ((1.0 - self.tokens) / self.rate).ceil().max(1.0) as u64;
                map.insert(RETRY_AFTER_NAME, wait.into());
            }
            (if allowed { 200 } else { 429 }, map)
        }
    }

    const RETRY_AFTER_NAME: http::HeaderName = http::header::RETRY_AFTER;

    #[derive(Debug, Clone, Copy)]
    struct Scenario {
        burst: u32,
        rate: f64,
        workers: usize,
        /// Time from acquire to the server's decision, and from there to the answer.
        latency_out: Duration,
        latency_back: Duration,
        /// Each leg's latency gets up to this much more, drawn per request (seeded).
        jitter: Duration,
        retry_after: bool,
        /// Another client on the same tenant, taking this many requests per second.
        others: f64,
        /// The fractional second of the epoch when the run starts.
        epoch_fraction: f64,
        /// How far the client's clock is ahead of the server's, in seconds.
        skew: f64,
        /// Every this many requests a worker's answer is lost (the server did count it).
        lose_every: Option<u32>,
        seconds: u64,
    }

    impl Scenario {
        fn plan(burst: u32, rate: f64, workers: usize) -> Scenario {
            Scenario {
                burst,
                rate,
                workers,
                latency_out: Duration::ZERO,
                latency_back: Duration::ZERO,
                jitter: Duration::ZERO,
                retry_after: false,
                others: 0.0,
                epoch_fraction: 0.37,
                skew: 0.0,
                lose_every: None,
                seconds: 120,
            }
        }

        /// Requests per second the workers could send if the throttle never held them.
        fn reachable(&self) -> f64 {
            let round_trip = (self.latency_out + self.latency_back + self.jitter * 2).as_secs_f64();
            if round_trip > 0.0 {
                self.workers as f64 / round_trip
            } else {
                f64::INFINITY
            }
        }
    }

    #[derive(Debug)]
    struct Outcome {
        ok: u64,
        throttled: u64,
        snapshot: ThrottleSnapshot,
    }

    impl Outcome {
        /// Useful requests per second over what was possible. When the workers can outrun R,
        /// that is R, and the first burst (the B requests a full bucket grants at once) is not
        /// counted: `(ok - B) / (R * T)`. When one request per worker in flight cannot reach R,
        /// it is the workers' own pace and every answer counts: the throttle must not get in
        /// the way.
        fn ratio(&self, s: &Scenario) -> f64 {
            let seconds = s.seconds as f64;
            if s.reachable() >= s.rate {
                (self.ok as f64 - f64::from(s.burst)) / (s.rate * seconds)
            } else {
                self.ok as f64 / (s.reachable() * seconds)
            }
        }

        fn throttled_share(&self) -> f64 {
            self.throttled as f64 / (self.ok + self.throttled) as f64
        }
    }

    /// N workers share one Auto throttle against one bucket, on tokio's paused clock. Each
    /// loops acquire -> (latency) -> the server decides -> (latency) -> observe.
    async fn simulate(s: Scenario) -> Outcome {
        let epoch = EPOCH_SECOND + s.epoch_fraction;
        let throttle = Arc::new(test_throttle(Rate::Auto, epoch + s.skew));
        let bucket = Arc::new(Mutex::new(Bucket::new(
            s.burst,
            s.rate,
            epoch,
            s.retry_after,
        )));
        let ok = Arc::new(AtomicU64::new(0));
        let throttled = Arc::new(AtomicU64::new(0));
        let end = Instant::now() + Duration::from_secs(s.seconds);
        let mut tasks = Vec::new();
        if s.others > 0.0 {
            let bucket = bucket.clone();
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / s.others));
                while tick.tick().await < end {
                    let _ = bucket.lock().unwrap().take();
                }
            }));
        }
        for worker in 0..s.workers {
            let (throttle, bucket) = (throttle.clone(), bucket.clone());
            let (ok, throttled) = (ok.clone(), throttled.clone());
            let mut rng = StdRng::seed_from_u64(worker as u64);
            tasks.push(tokio::spawn(async move {
                let mut leg = |base: Duration| base + s.jitter.mul_f64(rng.random::<f64>());
                let mut sent = 0u32;
                loop {
                    throttle.acquire().await;
                    sent += 1;
                    tokio::time::sleep(leg(s.latency_out)).await;
                    if Instant::now() >= end {
                        break;
                    }
                    let (status, headers) = bucket.lock().unwrap().take();
                    if status == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        throttled.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(leg(s.latency_back)).await;
                    if s.lose_every.is_some_and(|n| sent.is_multiple_of(n)) {
                        // A transport failure: the caller has nothing to observe.
                        continue;
                    }
                    throttle.observe(status, &headers);
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        Outcome {
            ok: ok.load(Ordering::Relaxed),
            throttled: throttled.load(Ordering::Relaxed),
            snapshot: throttle.snapshot(),
        }
    }

    /// The benchmark plans, (B, R/s): Free, 10/10, 20/10, 50/50, Enterprise, non-production.
    const PLANS: [(u32, f64); 6] = [
        (2, 2.0),
        (10, 10.0),
        (20, 10.0),
        (50, 50.0),
        (50, 16.0),
        (10, 2.0),
    ];

    /// Runs every plan (B >= `min_burst`) at concurrency 1, 4 and 16 through `adjust`, 120
    /// simulated seconds each; returns the runs below 0.95 of what was possible (less what
    /// another client takes) or above `max_429` of 429s.
    async fn run_matrix(
        min_burst: u32,
        max_429: f64,
        adjust: impl Fn(Scenario) -> Scenario,
    ) -> Vec<String> {
        let mut failures = Vec::new();
        for (burst, rate) in PLANS.into_iter().filter(|(b, _)| *b >= min_burst) {
            for workers in [1, 4, 16] {
                let s = adjust(Scenario::plan(burst, rate, workers));
                let o = simulate(s).await;
                let needed = 0.95 * (1.0 - s.others / s.rate);
                let line = format!(
                    "B={burst:>2} R={rate:>2} c={workers:>2} out={:?} back={:?} jitter={:?} \
                     retry-after={} others={}/s skew={}s lose={:?}: ratio {:.3}{}, \
                     429 {:.2}% ({} of {}), learned {:.2}, paused {:.1?}",
                    s.latency_out,
                    s.latency_back,
                    s.jitter,
                    s.retry_after,
                    s.others,
                    s.skew,
                    s.lose_every,
                    o.ratio(&s),
                    if s.reachable() < s.rate {
                        " (of the workers' pace)"
                    } else {
                        ""
                    },
                    100.0 * o.throttled_share(),
                    o.throttled,
                    o.ok + o.throttled,
                    o.snapshot.learned_rate.unwrap_or(0.0),
                    o.snapshot.paused_total,
                );
                eprintln!("{line}");
                if o.ratio(&s) < needed
                    || o.throttled_share() > max_429
                    || o.snapshot.limit != Some(burst)
                {
                    failures.push(line);
                }
            }
        }
        failures
    }

    fn round_trip(out: u64, back: u64) -> impl Fn(Scenario) -> Scenario {
        move |s| Scenario {
            latency_out: Duration::from_millis(out),
            latency_back: Duration::from_millis(back),
            ..s
        }
    }

    #[tokio::test(start_paused = true)]
    async fn auto_keeps_95_percent_of_the_rate_and_under_1_percent_429s_at_zero_latency() {
        let failures = run_matrix(0, 0.01, |s| s).await;
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[tokio::test(start_paused = true)]
    async fn auto_keeps_95_percent_of_the_rate_and_under_1_percent_429s_at_100ms_latency() {
        let failures = run_matrix(0, 0.01, round_trip(50, 50)).await;
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[tokio::test(start_paused = true)]
    async fn auto_keeps_the_targets_when_the_server_decides_after_all_the_latency() {
        // The sandbox sleeps its latency before it takes the token.
        let failures = run_matrix(0, 0.01, |s| Scenario {
            epoch_fraction: 0.99,
            ..round_trip(100, 0)(s)
        })
        .await;
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[tokio::test(start_paused = true)]
    async fn auto_keeps_the_targets_when_answers_overtake_each_other_and_carry_retry_after() {
        let failures = run_matrix(0, 0.01, |s| Scenario {
            jitter: Duration::from_millis(80),
            retry_after: true,
            epoch_fraction: 0.0,
            ..round_trip(20, 20)(s)
        })
        .await;
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[tokio::test(start_paused = true)]
    async fn auto_keeps_the_targets_when_the_client_clock_is_2s_ahead_or_behind() {
        // x-ratelimit-reset is an epoch second: a skewed clock must not inflate the rate.
        for skew in [2.0, -2.0] {
            let failures = run_matrix(0, 0.01, |s| Scenario {
                skew,
                ..round_trip(20, 20)(s)
            })
            .await;
            assert!(failures.is_empty(), "{failures:#?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn auto_keeps_the_targets_when_2_percent_of_answers_are_lost() {
        let failures = run_matrix(0, 0.01, |s| Scenario {
            lose_every: Some(50),
            ..round_trip(20, 20)(s)
        })
        .await;
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[tokio::test(start_paused = true)]
    async fn auto_shares_a_tenant_with_another_client_with_few_429s() {
        // Another client takes a fifth of the rate; its requests are invisible to us until the
        // next answer. With B = 2 there is no room for that: the other client's requests take
        // the very token ours was waiting for (about 6 % 429s), so the Free plan is left out,
        // and the bar is 2 % (about 1 % is seen at B = 10, R = 2).
        let failures = run_matrix(10, 0.02, |s| Scenario {
            others: s.rate / 5.0,
            ..round_trip(20, 20)(s)
        })
        .await;
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[tokio::test(start_paused = true)]
    async fn auto_learns_the_limit_and_a_rate_just_below_the_servers() {
        for (burst, rate) in PLANS {
            let o = simulate(Scenario::plan(burst, rate, 4)).await;
            let learned = o.snapshot.learned_rate.unwrap();
            assert_eq!(o.snapshot.limit, Some(burst));
            assert!(
                learned > 0.97 * rate && learned < 1.01 * rate,
                "B={burst} R={rate}: learned {learned}"
            );
            assert_eq!(o.snapshot.throttled, o.throttled);
        }
    }

    /// At a round trip of 500 ms the strict bound learnt in a few seconds is well below the
    /// server's rate (its windows count a round trip the server did not refill in); the rate
    /// the work in flight is sized by is not, and it is not above the server's either.
    #[tokio::test(start_paused = true)]
    async fn the_rate_for_sizing_is_near_the_servers_early_in_a_run_at_a_long_round_trip() {
        let s = Scenario {
            latency_out: Duration::from_millis(250),
            latency_back: Duration::from_millis(250),
            seconds: 4,
            ..Scenario::plan(50, 50.0, 40)
        };
        let o = simulate(s).await;
        let learned = o.snapshot.learned_rate.unwrap();
        let pacing = o.snapshot.pacing.unwrap();
        assert!(learned < 45.0, "the bound is still low: {learned}");
        assert!(
            pacing > learned && (45.0..=51.0).contains(&pacing),
            "sizing by {pacing} (bound {learned})"
        );
    }

    // -----------------------------------------------------------------------------------------
    // Pauses, probes and fixed rates.

    /// Starts `n` tasks that each acquire once; returns when each got through, from now.
    fn acquirers(throttle: &Arc<Throttle>, n: usize) -> Vec<tokio::task::JoinHandle<Duration>> {
        let start = Instant::now();
        (0..n)
            .map(|_| {
                let throttle = throttle.clone();
                tokio::spawn(async move {
                    throttle.acquire().await;
                    start.elapsed()
                })
            })
            .collect()
    }

    async fn times(tasks: Vec<tokio::task::JoinHandle<Duration>>) -> Vec<Duration> {
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.unwrap());
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_with_retry_after_pauses_every_worker_for_that_long() {
        for rate in [Rate::Unlimited, Rate::PerSecond(100.0), Rate::Auto] {
            let throttle = Arc::new(test_throttle(rate, EPOCH_SECOND));
            throttle.acquire().await;
            let mut h = rate_headers(10, 0, EPOCH_SECOND as u64 + 5);
            h.insert(RETRY_AFTER_NAME, "2".parse().unwrap());
            throttle.observe(429, &h);
            let waited = times(acquirers(&throttle, 4)).await;
            assert!(
                waited.iter().all(|w| *w >= Duration::from_secs(2)),
                "{rate:?}: {waited:?}"
            );
            let snapshot = throttle.snapshot();
            assert_eq!(snapshot.throttled, 1);
            assert_eq!(snapshot.paused_total, Duration::from_secs(2));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_without_retry_after_pauses_until_the_reset_second() {
        let throttle = Arc::new(test_throttle(Rate::Unlimited, EPOCH_SECOND + 0.25));
        throttle.observe(429, &rate_headers(2, 0, EPOCH_SECOND as u64 + 3));
        let waited = times(acquirers(&throttle, 3)).await;
        for w in waited {
            assert_eq!(w, Duration::from_millis(2750));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_that_says_nothing_pauses_one_second() {
        let throttle = Arc::new(test_throttle(Rate::Unlimited, EPOCH_SECOND));
        throttle.observe(429, &HeaderMap::new());
        assert_eq!(
            times(acquirers(&throttle, 2)).await,
            [Duration::from_secs(1); 2]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_is_capped_whatever_the_server_says() {
        let throttle = Arc::new(test_throttle(Rate::Unlimited, EPOCH_SECOND));
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER_NAME, "3600".parse().unwrap());
        throttle.observe(429, &h);
        assert_eq!(times(acquirers(&throttle, 1)).await, [MAX_PAUSE]);
        assert_eq!(throttle.snapshot().paused_total, MAX_PAUSE);
    }

    #[tokio::test(start_paused = true)]
    async fn overlapping_pauses_are_counted_once() {
        let throttle = test_throttle(Rate::Unlimited, EPOCH_SECOND);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER_NAME, "2".parse().unwrap());
        throttle.observe(429, &h);
        tokio::time::advance(Duration::from_secs(1)).await;
        throttle.observe(429, &h);
        let snapshot = throttle.snapshot();
        assert_eq!(snapshot.paused_total, Duration::from_secs(3));
        assert_eq!(snapshot.throttled, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn auto_sends_two_probes_then_uses_the_whole_initial_burst() {
        let throttle = Arc::new(test_throttle(Rate::Auto, EPOCH_SECOND));
        throttle.acquire().await;
        throttle.acquire().await;
        let waiting = acquirers(&throttle, 7);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            waiting.iter().all(|t| !t.is_finished()),
            "nobody may pass before the probes' answer tells the bucket size"
        );
        // A probe's answer: a full bucket of 10 less the two probes. The mirror also holds one
        // back for the other probe, still unanswered (the server may not have counted it):
        // seven go at once.
        throttle.observe(200, &rate_headers(10, 8, EPOCH_SECOND as u64 + 1));
        let waited = times(waiting).await;
        assert!(
            waited.iter().all(|w| *w == Duration::from_millis(100)),
            "{waited:?}"
        );
        assert_eq!(throttle.snapshot().limit, Some(10));
    }

    #[tokio::test(start_paused = true)]
    async fn auto_waits_when_the_server_reports_no_tokens_left() {
        let throttle = Arc::new(test_throttle(Rate::Auto, EPOCH_SECOND));
        throttle.acquire().await;
        // Empty after this request; full again (10 tokens) 5 s on: at least 2/s.
        throttle.observe(200, &rate_headers(10, 0, EPOCH_SECOND as u64 + 5));
        let waited = times(acquirers(&throttle, 1)).await;
        assert!(
            waited[0] >= Duration::from_millis(400) && waited[0] <= Duration::from_millis(600),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn auto_does_not_stall_when_the_probe_never_gets_an_answer() {
        let throttle = Arc::new(test_throttle(Rate::Auto, EPOCH_SECOND));
        throttle.acquire().await; // Its transport fails: no observe.
        let waited = times(acquirers(&throttle, 1)).await;
        assert!(
            waited[0] <= LOST_AFTER + Duration::from_millis(10),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn auto_lets_requests_through_when_the_server_sends_no_rate_headers() {
        let throttle = Arc::new(test_throttle(Rate::Auto, EPOCH_SECOND));
        throttle.acquire().await;
        throttle.observe(200, &HeaderMap::new());
        assert_eq!(times(acquirers(&throttle, 20)).await, [Duration::ZERO; 20]);
        let snapshot = throttle.snapshot();
        assert_eq!(
            (snapshot.learned_rate, snapshot.limit, snapshot.pacing),
            (None, None, None)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn per_second_paces_exactly_at_the_given_rate() {
        // 10/s has a burst of 1: 101 permits take 10 s.
        let throttle = test_throttle(Rate::PerSecond(10.0), EPOCH_SECOND);
        let start = Instant::now();
        for _ in 0..101 {
            throttle.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        // 50/s has a burst of 5: 105 permits take 2 s, shared by 8 workers.
        let throttle = Arc::new(test_throttle(Rate::PerSecond(50.0), EPOCH_SECOND));
        let start = Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let throttle = throttle.clone();
                tokio::spawn(async move {
                    for _ in 0..(if i < 1 { 14 } else { 13 }) {
                        throttle.acquire().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_never_waits_without_a_429() {
        let throttle = Arc::new(test_throttle(Rate::Unlimited, EPOCH_SECOND));
        assert_eq!(
            times(acquirers(&throttle, 100)).await,
            vec![Duration::ZERO; 100]
        );
    }

    #[test]
    fn odd_fixed_rates_fall_back_to_a_sensible_policy() {
        let policy = |rate| format!("{:?}", Throttle::new(rate));
        assert!(policy(Rate::PerSecond(f64::INFINITY)).contains("unlimited"));
        assert!(policy(Rate::PerSecond(0.0)).contains("auto"));
        assert!(policy(Rate::PerSecond(-3.0)).contains("auto"));
        assert!(policy(Rate::PerSecond(f64::NAN)).contains("auto"));
        assert!(policy(Rate::PerSecond(0.01)).contains("per-second"));
        assert!(policy(Rate::PerSecond(1e-300)).contains("per-second"));
        assert!(policy(Rate::PerSecond(1e300)).contains("per-second"));
    }

    #[test]
    fn the_throttle_can_be_shared_between_tasks() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Throttle>();
    }
}
