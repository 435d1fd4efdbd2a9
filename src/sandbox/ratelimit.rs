//! The sandbox's rate limits: token buckets per tenant and per endpoint group, as Auth0 runs
//! them.
//!
//! Facts ("Rate limits"): a token bucket per tenant and per endpoint group; every response
//! carries `x-ratelimit-limit` (bucket size), `x-ratelimit-remaining` and `x-ratelimit-reset`
//! (UNIX epoch seconds, when the bucket is full again). Auth0 documents no `Retry-After`; the
//! sandbox sends it only when asked.
//!
//! [`Limits`] holds one shared bucket (`--rate`/`--burst`: every group takes its tokens from
//! it) and, for each group given its own limit (`--rate-group users-write=3/20`), that group's
//! bucket, which its requests use instead of the shared one.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// An endpoint group of the Management API, named as Auth0's per-group 429 messages name it
/// (facts, "Rate limits": `Global per second users_write group limit has been reached`), with
/// dashes on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Group {
    /// Reads of users: `GET /users`, `/users/{id}`, `/users-by-email`, and other user reads.
    UsersRead,
    /// Writes of users: `POST`, `PATCH`, `PUT` and `DELETE` under `/users`.
    UsersWrite,
    /// Everything else under `/api/v2`.
    Other,
}

impl Group {
    pub const ALL: [Group; 3] = [Group::UsersRead, Group::UsersWrite, Group::Other];

    /// The command-line name: `users-read`, `users-write`, `other`.
    pub fn name(self) -> &'static str {
        match self {
            Group::UsersRead => "users-read",
            Group::UsersWrite => "users-write",
            Group::Other => "other",
        }
    }

    /// The name in Auth0's 429 message: `users_read`.
    pub fn message_name(self) -> &'static str {
        match self {
            Group::UsersRead => "users_read",
            Group::UsersWrite => "users_write",
            Group::Other => "other",
        }
    }

    /// The group of an API request, from its method and its path (with or without the
    /// `/api/v2` prefix). The token endpoint is in none: it is not limited by these buckets.
    ///
    /// Facts ("Rate limits") name the users read and write groups and no group of roles or
    /// organizations. So every path under `/users` counts as a users request, its sub-resources
    /// too (`GET /users/{id}/roles` reads, `POST /users/{id}/roles` and `/permissions` write:
    /// they change the user's access, and an import assigning roles user by user then meets
    /// the write limit as it would), while `/roles`, `/resource-servers` and `/organizations`
    /// (`POST /roles/{id}/users` and organization members included) fall to `Other`.
    pub fn of(method: &str, path: &str) -> Group {
        let path = path.strip_prefix("/api/v2").unwrap_or(path);
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        if !matches!(first, "users" | "users-by-email") {
            return Group::Other;
        }
        match method {
            "GET" | "HEAD" | "OPTIONS" => Group::UsersRead,
            _ => Group::UsersWrite,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Group {
    type Err = String;

    fn from_str(s: &str) -> Result<Group, String> {
        Group::ALL
            .into_iter()
            .find(|g| g.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Group::ALL.iter().map(|g| g.name()).collect();
                format!(
                    "unknown endpoint group '{s}'; the groups are {}",
                    names.join(", ")
                )
            })
    }
}

/// One group's own limit: `GROUP=RATE/BURST` on the command line (`users-read=8/40`: 8 per
/// second, a bucket of 40). Without `/BURST` the bucket holds one second of the rate, as
/// `--burst` defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupLimit {
    pub group: Group,
    /// Tokens per second.
    pub rate: f64,
    /// The bucket size.
    pub burst: u32,
}

impl FromStr for GroupLimit {
    type Err = String;

    fn from_str(s: &str) -> Result<GroupLimit, String> {
        let shape = "expected GROUP=RATE/BURST, e.g. users-write=3/20";
        let (group, limit) = s.split_once('=').ok_or_else(|| format!("'{s}': {shape}"))?;
        let group: Group = group.trim().parse()?;
        let (rate, burst) = match limit.split_once('/') {
            Some((rate, burst)) => (rate, Some(burst)),
            None => (limit, None),
        };
        let rate: f64 = rate
            .trim()
            .parse()
            .ok()
            .filter(|r: &f64| r.is_finite() && *r > 0.0)
            .ok_or_else(|| format!("'{s}': the rate must be a positive number; {shape}"))?;
        let burst = match burst {
            None => rate.ceil() as u32,
            Some(burst) => burst
                .trim()
                .parse()
                .ok()
                .filter(|b: &u32| *b >= 1)
                .ok_or_else(|| {
                    format!("'{s}': the burst must be a whole number of at least 1; {shape}")
                })?,
        };
        Ok(GroupLimit { group, rate, burst })
    }
}

impl fmt::Display for GroupLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}/{}", self.group, self.rate, self.burst)
    }
}

/// The answer to one request's call on the buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    /// The group whose own bucket answered; `None` for the shared bucket. It decides the 429
    /// message.
    pub group: Option<Group>,
}

/// The tenant's buckets: the shared one and the groups' own.
#[derive(Debug)]
pub struct Limits {
    shared: TokenBucket,
    own: [Option<TokenBucket>; 3],
}

impl Limits {
    /// `groups` must name each group at most once (the last one wins otherwise).
    pub fn new(shared: TokenBucket, groups: &[GroupLimit]) -> Limits {
        let mut own: [Option<TokenBucket>; 3] = Default::default();
        for limit in groups {
            own[limit.group.index()] = Some(TokenBucket::new(limit.rate, limit.burst));
        }
        Limits { shared, own }
    }

    /// Takes a token for a request of `group` from the bucket it uses.
    pub fn take(&self, group: Group) -> Verdict {
        self.decide(group, TokenBucket::take)
    }

    /// Empties the bucket a request of `group` uses (a 429 storm) and refuses the request.
    pub fn drain(&self, group: Group) -> Verdict {
        self.decide(group, TokenBucket::drain)
    }

    fn decide(&self, group: Group, call: fn(&TokenBucket) -> Decision) -> Verdict {
        match &self.own[group.index()] {
            Some(bucket) => Verdict {
                decision: call(bucket),
                group: Some(group),
            },
            None => Verdict {
                decision: call(&self.shared),
                group: None,
            },
        }
    }
}

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
    fn requests_fall_into_auth0s_endpoint_groups() {
        for (method, path, group) in [
            ("GET", "/api/v2/users", Group::UsersRead),
            ("GET", "/api/v2/users/auth0%7C1", Group::UsersRead),
            ("GET", "/users-by-email", Group::UsersRead),
            ("GET", "/api/v2/users/auth0%7C1/roles", Group::UsersRead),
            ("POST", "/api/v2/users", Group::UsersWrite),
            ("PATCH", "/users/auth0%7C1", Group::UsersWrite),
            ("DELETE", "/api/v2/users/auth0%7C1", Group::UsersWrite),
            ("GET", "/api/v2/clients", Group::Other),
            ("POST", "/api/v2/jobs/users-imports", Group::Other),
            ("GET", "/api/v2/usersx", Group::Other),
            ("POST", "/api/v2/users/auth0%7C1/roles", Group::UsersWrite),
            (
                "DELETE",
                "/api/v2/users/auth0%7C1/permissions",
                Group::UsersWrite,
            ),
            ("GET", "/api/v2/roles/rol_1/users", Group::Other),
            ("POST", "/api/v2/roles/rol_1/users", Group::Other),
            ("POST", "/api/v2/organizations/org_1/members", Group::Other),
        ] {
            assert_eq!(Group::of(method, path), group, "{method} {path}");
        }
    }

    #[test]
    fn a_group_limit_reads_group_rate_and_burst() {
        let limit: GroupLimit = "users-write=3/20".parse().unwrap();
        assert_eq!(
            limit,
            GroupLimit {
                group: Group::UsersWrite,
                rate: 3.0,
                burst: 20
            }
        );
        let limit: GroupLimit = "users-read=8.5".parse().unwrap();
        assert_eq!((limit.rate, limit.burst), (8.5, 9));
        for (bad, says) in [
            (
                "users_read=8/40",
                "the groups are users-read, users-write, other",
            ),
            ("reads=8/40", "unknown endpoint group 'reads'"),
            ("users-read", "expected GROUP=RATE/BURST"),
            ("users-read=0/40", "the rate must be a positive number"),
            ("users-read=x/40", "the rate must be a positive number"),
            ("users-read=8/0", "the burst must be a whole number"),
            ("users-read=8/4.5", "the burst must be a whole number"),
        ] {
            let message = bad.parse::<GroupLimit>().unwrap_err();
            assert!(message.contains(says), "{bad}: {message}");
        }
    }

    #[test]
    fn a_group_with_its_own_bucket_leaves_the_shared_one_alone() {
        let limits = Limits::new(
            TokenBucket::new(1.0, 3),
            &["users-write=1/2".parse().unwrap()],
        );
        let write: Vec<Verdict> = (0..3).map(|_| limits.take(Group::UsersWrite)).collect();
        assert!(write[..2].iter().all(|v| v.decision.allowed));
        assert!(!write[2].decision.allowed);
        assert_eq!(write[2].group, Some(Group::UsersWrite));
        assert_eq!(write[2].decision.limit, 2);
        // Reads and other requests still share the full bucket of 3.
        let read = limits.take(Group::UsersRead);
        assert_eq!((read.decision.allowed, read.group), (true, None));
        assert_eq!((read.decision.limit, read.decision.remaining), (3, 2));
        assert_eq!(limits.take(Group::Other).decision.remaining, 1);
        // A storm drains the bucket the request would use.
        assert_eq!(limits.drain(Group::Other).group, None);
        assert!(!limits.take(Group::UsersRead).decision.allowed);
    }

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
