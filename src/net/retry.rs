//! TEMPORARY STUB: replaced by the retry rules.
use std::time::Duration;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Success,
    Throttled,
    Transient,
    Unauthorized,
    Permanent,
}
pub fn classify(status: Option<u16>) -> Class {
    match status {
        None => Class::Transient,
        Some(200..=299) => Class::Success,
        Some(429) => Class::Throttled,
        Some(401) => Class::Unauthorized,
        Some(408 | 500 | 502 | 503 | 504) => Class::Transient,
        Some(_) => Class::Permanent,
    }
}
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    pub max_attempts: u32,
}
impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            max_attempts: 8,
        }
    }
}
impl Backoff {
    pub fn delay(&self, attempt: u32, jitter01: f64) -> Duration {
        self.base
            .saturating_mul(1 << attempt.min(16))
            .min(self.cap)
            .mul_f64(jitter01)
    }
}
pub fn retry_after(headers: &http::HeaderMap, cap: Duration) -> Option<Duration> {
    headers
        .get("retry-after")?
        .to_str()
        .ok()?
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s).min(cap))
}
