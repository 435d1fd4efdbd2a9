//! The sandbox's rate limit: a token bucket per tenant, as Auth0 runs it.
//!
//! Facts ("Rate limits"): a token bucket; every response carries `x-ratelimit-limit` (bucket
//! size), `x-ratelimit-remaining` and `x-ratelimit-reset` (UNIX epoch seconds, when the bucket
//! is full again). Auth0 documents no `Retry-After`; the sandbox sends it only when asked.

use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The answer to one request's call on the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// `x-ratelimit-limit`: the bucket size.
    pub limit: u32,
    /// `x-ratelimit-remaining`: whole tokens left after this request.
    pub remaining: u32,
    /// `x-ratelimit-reset`: the epoch second at which the bucket is full again.
    pub reset: u64,
    /// Whole seconds until a request would succeed (for the optional `Retry-After`).
    pub retry_after: u64,
}

/// A token bucket that refills continuously at `rate` per second up to `burst`.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// A full bucket. `rate` must be positive and `burst` at least 1.
    pub fn new(rate: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes one token if there is one.
    pub fn take(&self) -> Decision {
        self.decide(false)
    }

    /// Empties the bucket, as another client taking every token does, and refuses the request.
    pub fn drain(&self) -> Decision {
        self.decide(true)
    }

    fn decide(&self, drain: bool) -> Decision {
        let mut state = self.state.lock().expect("bucket lock");
        let now = Instant::now();
        let (tokens, last) = *state;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst);
        let tokens = if drain { 0.0 } else { tokens };
        let allowed = tokens >= 1.0;
        let tokens = if allowed { tokens - 1.0 } else { tokens };
        *state = (tokens, now);
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let until_full = (self.burst - tokens) / self.rate;
        let until_one = ((1.0 - tokens) / self.rate).max(0.0);
        Decision {
            allowed,
            limit: self.burst as u32,
            remaining: tokens.floor() as u32,
            // Rounded up: at that second the bucket holds at least one token for sure.
            reset: (epoch + until_full).ceil() as u64,
            retry_after: until_one.ceil().max(1.0) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_allows_its_burst_then_refuses() {
        let bucket = TokenBucket::new(1.0, 5);
        let decisions: Vec<Decision> = (0..6).map(|_| bucket.take()).collect();
        assert!(decisions[..5].iter().all(|d| d.allowed));
        assert_eq!(decisions[0].remaining, 4);
        assert_eq!(decisions[4].remaining, 0);
        assert!(!decisions[5].allowed);
        assert_eq!(decisions[5].limit, 5);
    }

    #[test]
    fn a_drained_bucket_refuses_and_refills_from_empty() {
        let bucket = TokenBucket::new(10.0, 5);
        let drained = bucket.drain();
        assert!(!drained.allowed);
        assert_eq!((drained.limit, drained.remaining), (5, 0));
        // Empty now: a take right after is refused too, until a token has refilled.
        assert!(!bucket.take().allowed);
        std::thread::sleep(std::time::Duration::from_millis(150));
        assert!(bucket.take().allowed);
    }

    #[test]
    fn reset_is_an_epoch_second_in_the_near_future() {
        let bucket = TokenBucket::new(5.0, 5);
        for _ in 0..5 {
            bucket.take();
        }
        let d = bucket.take();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(!d.allowed);
        assert!(
            d.reset > now && d.reset <= now + 2,
            "reset {} now {now}",
            d.reset
        );
        assert_eq!(d.retry_after, 1);
    }
}
