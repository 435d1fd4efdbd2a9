//! The retry rules: what one attempt's outcome means, and how long to wait before the next try.
//!
//! Everything here is pure. The caller owns the loop: it classifies each attempt with
//! [`classify`], lets the shared throttle see every response (a 429 pauses all workers there),
//! and sleeps [`Backoff::delay`] (or the server's [`retry_after`]) before retrying one request.
//! Facts ("Rate limits"): the official SDKs retry 408, 429 and 5xx; they honour `Retry-After`,
//! else `x-ratelimit-reset`, else 1 s x 2^n capped at 60 s, with jitter.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header::RETRY_AFTER;

/// What one attempt's outcome asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 2xx: done.
    Success,
    /// 429: the shared throttle pauses every worker; retry the same request after it.
    Throttled,
    /// 408, 500, 502, 503, 504 or a transport failure: retry this request after [`Backoff::delay`].
    Transient,
    /// 401: the token expired or was revoked; refresh it once, then retry.
    Unauthorized,
    /// Any other answer: retrying will not help; report the record.
    Permanent,
}

/// Classifies one attempt. `status` is `None` for a transport failure (connect error, timeout,
/// dropped connection, truncated body).
///
/// Choices beyond the brief, noted here: 5xx codes not named (507, 520..=524 from proxies, ...)
/// are server trouble and count as [`Class::Transient`], except 501 and 505, which no retry can
/// fix. 1xx and 3xx are not answers the Management API gives, so they are [`Class::Permanent`].
pub fn classify(status: Option<u16>) -> Class {
    match status {
        None => Class::Transient,
        Some(200..=299) => Class::Success,
        Some(429) => Class::Throttled,
        Some(401) => Class::Unauthorized,
        Some(408) => Class::Transient,
        Some(501 | 505) => Class::Permanent,
        Some(500..=599) => Class::Transient,
        Some(_) => Class::Permanent,
    }
}

/// Whether a 429's body is the bulk-import job limit rather than the rate limit: facts ("Bulk
/// import jobs"), a third active import job is refused with `There are 2 active import users
/// jobs, please wait until some of them are finished and try again`. Waiting for a job to
/// finish is the caller's business; the request budget has nothing to do with it.
pub fn is_job_limit(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|body| {
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("active import users jobs"))
    })
}

/// Exponential backoff with full jitter for transient failures of one request.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The ceiling of the first retry's delay.
    pub base: Duration,
    /// No delay is longer than this.
    pub cap: Duration,
    /// Attempts in all, the first one included; the caller gives up after this many.
    pub max_attempts: u32,
}

impl Default for Backoff {
    /// 1 s doubling up to 60 s, as the official SDKs do; 8 attempts reach the cap and give a
    /// request about two minutes of expected waiting before it is reported.
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            max_attempts: 8,
        }
    }
}

/// The shortest delay [`Backoff::delay`] returns (unless `cap` is shorter): full jitter can draw
/// zero, and retrying a failing server at once helps nobody.
pub const MIN_DELAY: Duration = Duration::from_millis(50);

impl Backoff {
    /// The delay before retry number `attempt` (1-based; 0 is taken as 1), with full jitter:
    /// `max(MIN_DELAY, min(cap, base * 2^(attempt-1)) * jitter01)`, and never above `cap`.
    ///
    /// `jitter01` is a uniform draw from [0, 1) made by the caller (`rand::random()`), so tests
    /// are deterministic. Values outside [0, 1] are clamped; NaN counts as 1, the cautious end.
    pub fn delay(&self, attempt: u32, jitter01: f64) -> Duration {
        let doublings = attempt.max(1) - 1;
        let ceiling = self
            .base
            .checked_mul(1u32.checked_shl(doublings).unwrap_or(u32::MAX))
            .unwrap_or(Duration::MAX)
            .min(self.cap);
        let jitter = if jitter01.is_nan() {
            1.0
        } else {
            jitter01.clamp(0.0, 1.0)
        };
        ceiling.mul_f64(jitter).max(MIN_DELAY).min(self.cap)
    }

    /// Whether a request that has now failed `attempts` times may be tried again.
    pub fn allows_retry(&self, attempts: u32) -> bool {
        attempts < self.max_attempts
    }
}

/// The server's wait from a `Retry-After` header, capped at `cap`: delta-seconds (`"3"`; a
/// decimal such as `"1.5"` is accepted too) or an HTTP-date (IMF-fixdate, RFC 850 or asctime,
/// as RFC 9110 asks recipients to accept). A date in the past gives zero. `None` when the header
/// is absent or unreadable.
pub fn retry_after(headers: &HeaderMap, cap: Duration) -> Option<Duration> {
    retry_after_at(headers, cap, SystemTime::now())
}

/// [`retry_after`] with the clock injected, for HTTP-dates.
fn retry_after_at(headers: &HeaderMap, cap: Duration, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let seconds: f64 = value.parse().ok()?;
        return Some(Duration::try_from_secs_f64(seconds).map_or(cap, |d| d.min(cap)));
    }
    let at = UNIX_EPOCH + Duration::from_secs(parse_http_date(value)?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO).min(cap))
}

/// Seconds since the UNIX epoch of an HTTP-date in any of RFC 9110's three forms:
/// `Sun, 06 Nov 1994 08:49:37 GMT`, `Sunday, 06-Nov-94 08:49:37 GMT`, `Sun Nov  6 08:49:37 1994`.
fn parse_http_date(value: &str) -> Option<u64> {
    let words: Vec<&str> = value.split_whitespace().collect();
    let (day, month, year, time) = match words.as_slice() {
        // IMF-fixdate.
        [_, day, month, year, time, "GMT"] => (*day, *month, year.parse().ok()?, *time),
        // RFC 850: two-digit year, read as 1970..=2069.
        [_, date, time, "GMT"] => {
            let mut parts = date.split('-');
            let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
            let year: i64 = year.parse().ok()?;
            let year = if year < 70 { 2000 + year } else { 1900 + year };
            (day, month, year, *time)
        }
        // asctime.
        [_, month, day, time, year] => (*day, *month, year.parse().ok()?, *time),
        _ => return None,
    };
    let day: i64 = day.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == month)? as i64
        + 1;
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s;
    u64::try_from(seconds).ok()
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn the_import_job_limit_is_told_apart_from_the_rate_limit() {
        let jobs = br#"{"statusCode":429,"error":"Too Many Requests","message":"There are 2 active import users jobs, please wait until some of them are finished and try again","errorCode":"too_many_requests"}"#;
        let rate = br#"{"statusCode":429,"error":"Too Many Requests","message":"Global limit has been reached","errorCode":"too_many_requests"}"#;
        assert!(is_job_limit(jobs));
        assert!(!is_job_limit(rate));
        assert!(!is_job_limit(b"not json"));
    }

    #[test]
    fn classify_sorts_every_status_the_way_the_retry_loop_needs() {
        let table: &[(Option<u16>, Class)] = &[
            (None, Class::Transient),
            (Some(200), Class::Success),
            (Some(201), Class::Success),
            (Some(204), Class::Success),
            (Some(429), Class::Throttled),
            (Some(408), Class::Transient),
            (Some(500), Class::Transient),
            (Some(502), Class::Transient),
            (Some(503), Class::Transient),
            (Some(504), Class::Transient),
            (Some(401), Class::Unauthorized),
            (Some(400), Class::Permanent),
            (Some(403), Class::Permanent),
            (Some(404), Class::Permanent),
            (Some(409), Class::Permanent),
            (Some(422), Class::Permanent),
            (Some(501), Class::Permanent),
            (Some(505), Class::Permanent),
            (Some(302), Class::Permanent),
        ];
        for (status, want) in table {
            assert_eq!(classify(*status), *want, "status {status:?}");
        }
    }

    #[test]
    fn default_backoff_is_the_sdk_schedule() {
        let b = Backoff::default();
        assert_eq!(b.base, Duration::from_secs(1));
        assert_eq!(b.cap, Duration::from_secs(60));
        assert_eq!(b.max_attempts, 8);
        assert!(b.allows_retry(7));
        assert!(!b.allows_retry(8));
    }

    #[test]
    fn backoff_ceiling_doubles_per_attempt_until_the_cap() {
        let b = Backoff::default();
        let near_one = 1.0 - f64::EPSILON;
        let ceilings: Vec<u64> = (1..=9)
            .map(|a| b.delay(a, near_one).as_secs_f64().round() as u64)
            .collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(
            b.delay(0, 1.0),
            b.delay(1, 1.0),
            "attempt 0 counts as the first retry"
        );
    }

    #[test]
    fn backoff_never_exceeds_the_cap_nor_overflows_for_huge_attempts() {
        let b = Backoff::default();
        for attempt in [1, 5, 6, 7, 31, 32, 33, 64, u32::MAX] {
            for jitter in [0.0, 0.3, 0.999_999, 1.0, 7.0, f64::NAN, f64::INFINITY] {
                let d = b.delay(attempt, jitter);
                assert!(d <= b.cap, "attempt {attempt} jitter {jitter}: {d:?}");
                assert!(d >= MIN_DELAY);
            }
        }
    }

    #[test]
    fn zero_jitter_still_waits_the_minimum_delay() {
        let b = Backoff::default();
        assert_eq!(b.delay(1, 0.0), MIN_DELAY);
        assert_eq!(b.delay(6, -1.0), MIN_DELAY);
        let tiny = Backoff {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(10),
            max_attempts: 3,
        };
        assert_eq!(
            tiny.delay(1, 0.0),
            Duration::from_millis(10),
            "a cap below the minimum wins"
        );
    }

    #[test]
    fn full_jitter_scales_the_ceiling_linearly() {
        let b = Backoff::default();
        assert_eq!(b.delay(3, 0.5), Duration::from_secs(2));
        assert_eq!(b.delay(2, 0.25), Duration::from_millis(500));
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn retry_after_reads_delta_seconds_and_caps_them() {
        let cap = Duration::from_secs(120);
        assert_eq!(
            retry_after(&headers("3"), cap),
            Some(Duration::from_secs(3))
        );
        assert_eq!(retry_after(&headers(" 0 "), cap), Some(Duration::ZERO));
        assert_eq!(
            retry_after(&headers("1.5"), cap),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(retry_after(&headers("3600"), cap), Some(cap));
        assert_eq!(
            retry_after(&headers("99999999999999999999999"), cap),
            Some(cap)
        );
        assert_eq!(retry_after(&HeaderMap::new(), cap), None);
        assert_eq!(retry_after(&headers("-1"), cap), None);
        assert_eq!(retry_after(&headers("soon"), cap), None);
        assert_eq!(retry_after(&headers("1.2.3"), cap), None);
    }

    #[test]
    fn retry_after_reads_all_three_http_date_forms() {
        // 1994-11-06T08:49:37Z, RFC 9110's example.
        let at = UNIX_EPOCH + Duration::from_secs(784_111_777);
        let now = at - Duration::from_secs(5);
        let cap = Duration::from_secs(120);
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                retry_after_at(&headers(form), cap, now),
                Some(Duration::from_secs(5)),
                "{form}"
            );
        }
    }

    #[test]
    fn retry_after_date_in_the_past_is_zero_and_far_future_is_capped() {
        let at = UNIX_EPOCH + Duration::from_secs(784_111_777);
        let cap = Duration::from_secs(60);
        let h = headers("Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            retry_after_at(&h, cap, at + Duration::from_secs(10)),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after_at(&h, cap, at - Duration::from_secs(3600)),
            Some(cap)
        );
        assert_eq!(
            retry_after_at(&headers("Sun, 32 Nov 1994 08:49:37 GMT"), cap, at),
            None
        );
        assert_eq!(
            retry_after_at(&headers("Sun, 06 Foo 1994 08:49:37 GMT"), cap, at),
            None
        );
    }

    #[test]
    fn civil_dates_match_known_epoch_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
    }
}
