//! Deterministic synthetic users for `auth0-bulk sandbox --generate N --gen-seed S`.
//!
//! [`generate`] yields users shaped exactly as `GET /api/v2/users` returns them: the same
//! root keys in the same order as Auth0 (`created_at`, `email`, `email_verified`,
//! `family_name`, `given_name`, `identities`, `name`, `nickname`, `picture`, `updated_at`,
//! `user_id`, `user_metadata`, `app_metadata`, `last_ip`, `last_login`, `logins_count`),
//! keys a user lacks left out. Every user lives in one of the two database connections of
//! [`GENERATED_CONNECTIONS`] (about 85% / 15%).
//!
//! The output depends only on `(count, seed)`: never on the clock, the platform, or hash
//! order. All randomness is drawn as raw `u64`s from `ChaCha8Rng::seed_from_u64(seed)` and
//! reduced by our own arithmetic, never through `rand`'s distributions, so the users stay
//! the same for as long as `rand_chacha`/`rand_core` keep that stream (they promise value
//! stability within a release series). A test pins a few users of seed 1.
//!
//! # What the users look like
//!
//! - `user_id` is `auth0|` plus 24 lowercase hex digits laid out like a Mongo ObjectId, as
//!   Auth0's are: 8 digits of the creation second, 10 of a per-seed "machine" value and 6 of
//!   a counter. Machine and counter come from the user's index, so ids are unique by
//!   construction. `identities[0]` is `{connection, user_id: <the 24 hex>, provider: "auth0",
//!   isSocial: false}`.
//! - Emails are lower-case ASCII, built from romanised names and ending in the user's index
//!   (`elodie.lefevre1234@example.org`), hence unique across the whole tenant. Display names
//!   are international (accents, Cyrillic, Greek, Arabic, Hebrew, CJK, Devanagari).
//! - About 45% have `given_name`/`family_name` and a full `name`; the rest have Auth0's
//!   defaults (`name` = email). `nickname` is the email's local part; `picture` is a
//!   Gravatar-style URL (its hash is random, not the email's MD5).
//! - About 85% have logged in (`last_ip`, `last_login`, `logins_count`); the others lack
//!   all three.
//! - Metadata: 68% have both objects, 14% only `app_metadata`, 10% only `user_metadata`, 8%
//!   neither. `app_metadata.plan` is `free` (62%), `pro` (28%) or `enterprise` (10%), with
//!   `roles` (array of strings), `flags`, and for paid plans `groups` and `billing`;
//!   `legacy-db` users carry `app_metadata.legacy`. `user_metadata` has `locale`, `theme`,
//!   nested `preferences` (four levels), and usually `addresses`, an array of objects with a
//!   `city` (Paris is common, so `user_metadata.addresses.city:Paris` finds a few percent).
//!   Keys never contain `.` or `$`, and `app_metadata` never uses a reserved name.
//!
//! # Times
//!
//! `created_at` lies in 2019-01-01T00:00:00.000Z..=2025-12-31T23:59:59.999Z, `updated_at`
//! in `created_at..=2026-06-30T23:59:59.999Z`, and `last_login` in
//! `created_at..=updated_at`; all written `YYYY-MM-DDTHH:MM:SS.mmmZ`.
//!
//! # Clusters
//!
//! Real tenants have many users with the same `created_at`, which breaks any pager that
//! splits by creation time. With `n = count`:
//!
//! 1. **One same-millisecond group** (a bulk import): `min(n / 2, 1500)` users share one
//!    exact millisecond (no group when that is below 2). So every `n >= 3000` has exactly
//!    one group of 1,500, and `n = 300` has one of 150.
//! 2. **Same-second bursts**:
//!    - `n >= 10_000`: `b = min(3 + n / 200_000, 8)` bursts (3 at 25,000, 8 at 1,000,000).
//!      Each has a size drawn uniformly from `1000..=min(4000, 3 * n / (10 * b))` and all its
//!      users are created within one whole second. Each member takes one of 12 "hot"
//!      milliseconds of that second with probability 60%, otherwise any millisecond of it,
//!      so many share a millisecond (dozens to a few hundred) but none comes near 1,500.
//!    - `1_000 <= n < 10_000`: one burst of `n / 10` users, built the same way.
//!    - `n < 1_000`: no burst.
//! 3. **Everyone else** is created at a uniformly random millisecond of the range. Each
//!    cluster owns its second: a spread user who would land in it is moved one second later
//!    (repeatedly if need be). So the group's second holds exactly its members, all in one
//!    millisecond, and each burst's second holds exactly that burst.
//!
//! Cluster instants are uniformly random in the range, in distinct seconds. Each cluster's
//! members are consecutive users of the iterator (as a bulk import creates them), with the
//! clusters in random order at random positions among the spread users.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

/// The two database connections generated users live in.
pub const GENERATED_CONNECTIONS: [&str; 2] = ["Username-Password-Authentication", "legacy-db"];

/// 2019-01-01T00:00:00.000Z: the earliest `created_at`.
const CREATED_FROM_MS: i64 = 1_546_300_800_000;
/// 2025-12-31T23:59:59.999Z: the latest `created_at`.
const CREATED_TO_MS: i64 = 1_767_225_599_999;
/// 2026-06-30T23:59:59.999Z: the latest `updated_at` and `last_login`.
const UPDATED_TO_MS: i64 = 1_782_863_999_999;
const DAY_MS: i64 = 86_400_000;

/// The same-millisecond group never has more members than this.
const SAME_MS_MAX: usize = 1500;
/// From this count on, several large same-second bursts.
const BURSTS_FROM: usize = 10_000;
/// From this count on (and below [`BURSTS_FROM`]), one small same-second burst.
const SMALL_BURST_FROM: usize = 1000;
const BURST_MIN: usize = 1000;
const BURST_MAX: usize = 4000;
const MAX_BURSTS: usize = 8;
/// Milliseconds of a burst's second that many of its members share.
const HOT_MS: usize = 12;

/// Deterministic synthetic users: the same (count, seed) always gives the same users, byte for byte,
/// independent of the clock. An iterator so a million users never sit in a Vec twice.
///
/// See the module documentation for their shape, time ranges and the exact cluster rule.
pub fn generate(count: usize, seed: u64) -> impl Iterator<Item = Map<String, Value>> {
    Generator::new(count, seed)
}

/// When the members of one run of consecutive users were created.
#[derive(Debug, Clone, Copy)]
enum Clump {
    /// Uniformly random over the whole range, outside every cluster's second.
    Spread,
    /// All in this one millisecond.
    SameMs(i64),
    /// All in the second starting at `second_ms`; many in one of the `hot` milliseconds.
    Burst { second_ms: i64, hot: [u16; HOT_MS] },
}

/// Users `previous end..end` are created as `clump` says.
#[derive(Debug)]
struct Segment {
    end: usize,
    clump: Clump,
}

/// The random source: raw `u64`s from ChaCha8, reduced by multiply-shift (Lemire), so that
/// the output never depends on how `rand` implements its distributions.
pub(crate) struct Dice(pub(crate) ChaCha8Rng);

impl Dice {
    /// Uniform in `0..n` (`n > 0`); the bias is at most `n / 2^64`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.0.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// True with probability `per_mille / 1000`.
    pub(crate) fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// An index into `weights`, chosen with probability proportional to its weight.
    pub(crate) fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut roll = self.below(u64::from(total)) as u32;
        for (i, &w) in weights.iter().enumerate() {
            if roll < w {
                return i;
            }
            roll -= w;
        }
        unreachable!("roll is below the total weight")
    }
}

struct Generator {
    dice: Dice,
    count: usize,
    next: usize,
    segments: Vec<Segment>,
    segment: usize,
    /// Seconds (as epoch ms) that belong to a cluster; spread users stay out of them.
    reserved_seconds: Vec<i64>,
    /// This seed's starting point of the ObjectId machine + counter sequence; user `i` gets
    /// `oid_base + i` (wrapping).
    oid_base: u64,
}

impl Generator {
    fn new(count: usize, seed: u64) -> Self {
        let mut dice = Dice(ChaCha8Rng::seed_from_u64(seed));
        let oid_base = dice.0.next_u64();

        let mut sizes = Vec::new();
        let same_ms = (count / 2).min(SAME_MS_MAX);
        if same_ms >= 2 {
            sizes.push(same_ms);
        }
        let bursts_at = sizes.len();
        if count >= BURSTS_FROM {
            let bursts = (3 + count / 200_000).min(MAX_BURSTS);
            let largest = BURST_MAX.min(3 * count / (10 * bursts));
            for _ in 0..bursts {
                sizes.push(dice.between(BURST_MIN as i64, largest as i64) as usize);
            }
        } else if count >= SMALL_BURST_FROM {
            sizes.push(count / 10);
        }

        // One second per cluster, all distinct, far enough from the end of the range that a
        // spread user moved out of them stays inside it.
        let mut reserved_seconds: Vec<i64> = Vec::with_capacity(sizes.len());
        while reserved_seconds.len() < sizes.len() {
            let ms = dice.between(CREATED_FROM_MS, CREATED_TO_MS - 60_000);
            let second = ms - ms.rem_euclid(1000);
            if !reserved_seconds.contains(&second) {
                reserved_seconds.push(second);
            }
        }
        let mut clumps: Vec<(usize, Clump)> = Vec::with_capacity(sizes.len());
        for (i, (&size, &second)) in sizes.iter().zip(&reserved_seconds).enumerate() {
            let clump = if i < bursts_at {
                Clump::SameMs(second + dice.below(1000) as i64)
            } else {
                let mut hot = [0u16; HOT_MS];
                for h in &mut hot {
                    *h = dice.below(1000) as u16;
                }
                Clump::Burst {
                    second_ms: second,
                    hot,
                }
            };
            clumps.push((size, clump));
        }
        // Clusters in random order (Fisher-Yates), each after a random share of the spread users.
        for i in (1..clumps.len()).rev() {
            clumps.swap(i, dice.below(i as u64 + 1) as usize);
        }
        let spread = count - clumps.iter().map(|(size, _)| size).sum::<usize>();
        let mut cuts: Vec<usize> = (0..clumps.len())
            .map(|_| dice.below(spread as u64 + 1) as usize)
            .collect();
        cuts.sort_unstable();
        let mut segments = Vec::with_capacity(2 * clumps.len() + 1);
        let (mut end, mut spread_before) = (0, 0);
        for (&cut, &(size, clump)) in cuts.iter().zip(&clumps) {
            end += cut - spread_before;
            spread_before = cut;
            segments.push(Segment {
                end,
                clump: Clump::Spread,
            });
            end += size;
            segments.push(Segment { end, clump });
        }
        segments.push(Segment {
            end: count,
            clump: Clump::Spread,
        });

        Generator {
            dice,
            count,
            next: 0,
            segments,
            segment: 0,
            reserved_seconds,
            oid_base,
        }
    }

    fn created_ms(&mut self, clump: Clump) -> i64 {
        match clump {
            Clump::SameMs(ms) => ms,
            Clump::Burst { second_ms, hot } => {
                if self.dice.chance(600) {
                    second_ms + i64::from(self.dice.pick(&hot))
                } else {
                    second_ms + self.dice.below(1000) as i64
                }
            }
            Clump::Spread => {
                let mut ms = self.dice.between(CREATED_FROM_MS, CREATED_TO_MS);
                while self.reserved_seconds.contains(&(ms - ms.rem_euclid(1000))) {
                    ms += 1000;
                }
                ms
            }
        }
    }

    fn user(&mut self, index: usize, clump: Clump) -> Map<String, Value> {
        let created = self.created_ms(clump);
        let dice = &mut self.dice;
        let legacy = dice.chance(150);
        let connection = GENERATED_CONNECTIONS[usize::from(legacy)];
        let locale = &LOCALES[dice.weighted(&LOCALE_WEIGHTS)];
        let (given, given_ascii) = dice.pick(locale.given);
        let (family, family_ascii) = dice.pick(locale.family);

        let mut email = String::with_capacity(48);
        let n = index + 1;
        let _ = match dice.below(6) {
            0 => write!(email, "{given_ascii}.{family_ascii}{n}"),
            1 => write!(email, "{given_ascii}{family_ascii}{n}"),
            2 => write!(email, "{}{family_ascii}{n}", &given_ascii[..1]),
            3 => write!(email, "{given_ascii}_{family_ascii}{n}"),
            4 => write!(email, "{family_ascii}.{given_ascii}{n}"),
            _ => write!(email, "{given_ascii}{n}"),
        };
        let nickname = email.clone();
        email.push('@');
        email.push_str(dice.pick(&DOMAINS));
        // Names given at sign-up, or Auth0's defaults (name = email).
        let has_names = dice.chance(450);
        let name = if !has_names {
            email.clone()
        } else if locale.family_first {
            format!("{family}{}{given}", locale.separator)
        } else {
            format!("{given} {family}")
        };
        let initials: [u8; 2] = if has_names {
            [given_ascii.as_bytes()[0], family_ascii.as_bytes()[0]]
        } else {
            let b = nickname.as_bytes();
            [b[0], b[1]]
        };

        // Logins, and so updated_at.
        let logged_in = dice.chance(if legacy { 650 } else { 880 });
        let (updated, last_login) = if logged_in {
            let mut last_login = dice.between(created, UPDATED_TO_MS);
            if dice.chance(200) {
                // Signed in soon after sign-up, then never again.
                last_login = dice.between(created, (created + 30 * DAY_MS).min(UPDATED_TO_MS));
            }
            let mut updated = (last_login + dice.below(1500) as i64).min(UPDATED_TO_MS);
            if dice.chance(100) {
                // A later profile change without a login.
                updated = dice.between(updated, UPDATED_TO_MS);
            }
            (updated, Some(last_login))
        } else if dice.chance(600) {
            (created, None)
        } else {
            (dice.between(created, UPDATED_TO_MS), None)
        };

        let mut user = Map::with_capacity(16);
        user.insert("created_at".into(), timestamp(created));
        user.insert("email".into(), Value::String(email));
        user.insert("email_verified".into(), Value::Bool(dice.chance(750)));
        if has_names {
            user.insert("family_name".into(), family.into());
            user.insert("given_name".into(), given.into());
        }

        let user_id = database_user_id(created, self.oid_base.wrapping_add(index as u64));
        let mut identity = Map::with_capacity(4);
        identity.insert("connection".into(), connection.into());
        identity.insert("user_id".into(), user_id["auth0|".len()..].into());
        identity.insert("provider".into(), "auth0".into());
        identity.insert("isSocial".into(), Value::Bool(false));
        user.insert(
            "identities".into(),
            Value::Array(vec![Value::Object(identity)]),
        );

        user.insert("name".into(), Value::String(name));
        user.insert("nickname".into(), Value::String(nickname));
        let mut picture = String::with_capacity(120);
        picture.push_str("https://s.gravatar.com/avatar/");
        push_hex(&mut picture, dice.0.next_u64(), 16);
        push_hex(&mut picture, dice.0.next_u64(), 16);
        picture.push_str("?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2F");
        picture.push(char::from(initials[0]));
        picture.push(char::from(initials[1]));
        picture.push_str(".png");
        user.insert("picture".into(), Value::String(picture));
        user.insert("updated_at".into(), timestamp(updated));
        user.insert("user_id".into(), Value::String(user_id));

        // 68% both, 14% app only, 10% user only, 8% neither.
        let kind = dice.below(100);
        if kind < 78 {
            let um = user_metadata(dice, locale, given);
            user.insert("user_metadata".into(), Value::Object(um));
        }
        if kind < 68 || (78..92).contains(&kind) {
            let am = app_metadata(dice, legacy);
            user.insert("app_metadata".into(), Value::Object(am));
        }
        if let Some(last_login) = last_login {
            user.insert("last_ip".into(), Value::String(ip(dice)));
            user.insert("last_login".into(), timestamp(last_login));
            let logins = if dice.chance(800) {
                1 + dice.below(30)
            } else {
                30 + dice.below(5000)
            };
            user.insert("logins_count".into(), logins.into());
        }
        user
    }
}

impl Iterator for Generator {
    type Item = Map<String, Value>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.count {
            return None;
        }
        while self.segments[self.segment].end <= self.next {
            self.segment += 1;
        }
        let index = self.next;
        self.next += 1;
        Some(self.user(index, self.segments[self.segment].clump))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.count - self.next;
        (left, Some(left))
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, as Auth0 writes its timestamps.
fn timestamp(ms: i64) -> Value {
    let at = DateTime::from_timestamp_millis(ms).expect("generated times lie in 2019..2027");
    Value::String(at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// `auth0|` and 24 hex digits laid out like a Mongo ObjectId: 4 bytes of creation second,
/// then 5 bytes of "machine" (`sequence >> 24`) and 3 of counter (`sequence & 0xffffff`).
/// The last 16 digits are `sequence` itself, so distinct sequences give distinct ids.
fn database_user_id(created_ms: i64, sequence: u64) -> String {
    let mut id = String::with_capacity(30);
    id.push_str("auth0|");
    push_hex(&mut id, (created_ms / 1000) as u64, 8);
    push_hex(&mut id, sequence, 16);
    id
}

/// Append the low `digits` hex digits of `value`, lower-case, zero-padded.
fn push_hex(out: &mut String, value: u64, digits: u32) {
    for shift in (0..digits).rev() {
        let nibble = (value >> (4 * shift)) & 0xf;
        out.push(char::from(b"0123456789abcdef"[nibble as usize]));
    }
}

/// An address from the documentation ranges (RFC 5737, RFC 3849).
fn ip(dice: &mut Dice) -> String {
    if dice.chance(200) {
        format!(
            "2001:db8:{:x}:{:x}::{:x}",
            dice.below(0x10000),
            dice.below(0x10000),
            1 + dice.below(0xffff)
        )
    } else {
        let net = dice.pick(&["192.0.2", "198.51.100", "203.0.113"]);
        format!("{net}.{}", 1 + dice.below(254))
    }
}

fn app_metadata(dice: &mut Dice, legacy: bool) -> Map<String, Value> {
    let mut am = Map::with_capacity(7);
    let plan = ["free", "pro", "enterprise"][dice.weighted(&[62, 28, 10])];
    let roles: &[&str] = match plan {
        "free" => &["viewer"],
        "pro" => &["editor", "viewer", "billing"],
        _ => &["admin", "editor", "viewer", "billing", "auditor", "support"],
    };
    am.insert("plan".into(), plan.into());
    let wanted = 1 + dice.below(roles.len().min(3) as u64) as usize;
    am.insert("roles".into(), Value::Array(sample(dice, roles, wanted)));
    let paid = plan != "free";
    if paid {
        let wanted = dice.below(3) as usize;
        am.insert("groups".into(), Value::Array(sample(dice, &GROUPS, wanted)));
    }
    let mut flags = Map::with_capacity(2);
    flags.insert("beta_features".into(), Value::Bool(dice.chance(200)));
    flags.insert(
        "mfa_enforced".into(),
        Value::Bool(plan == "enterprise" || dice.chance(100)),
    );
    am.insert("flags".into(), Value::Object(flags));
    if paid {
        let mut billing = Map::with_capacity(3);
        let seats = if plan == "enterprise" {
            10 + dice.below(990)
        } else {
            1 + dice.below(9)
        };
        billing.insert("seats".into(), seats.into());
        billing.insert(
            "currency".into(),
            dice.pick(&["USD", "EUR", "GBP", "JPY"]).into(),
        );
        billing.insert("annual".into(), Value::Bool(dice.chance(400)));
        am.insert("billing".into(), Value::Object(billing));
    }
    if legacy {
        let mut old = Map::with_capacity(3);
        old.insert(
            "source_system".into(),
            dice.pick(&["oldcrm", "forum-v2", "shop-export"]).into(),
        );
        old.insert("legacy_id".into(), (1 + dice.below(5_000_000)).into());
        old.insert("password_migrated".into(), Value::Bool(dice.chance(600)));
        am.insert("legacy".into(), Value::Object(old));
    }
    am
}

/// `wanted` distinct items of `items`, in their listed order.
fn sample(dice: &mut Dice, items: &[&str], wanted: usize) -> Vec<Value> {
    let mut out = Vec::with_capacity(wanted);
    let mut left = wanted;
    for (i, item) in items.iter().enumerate() {
        // Selection sampling: take this item with probability left / remaining.
        if left > 0 && dice.below((items.len() - i) as u64) < left as u64 {
            out.push(Value::from(*item));
            left -= 1;
        }
    }
    out
}

fn user_metadata(dice: &mut Dice, locale: &Locale, given: &str) -> Map<String, Value> {
    let mut um = Map::with_capacity(7);
    um.insert("locale".into(), locale.tag.into());
    um.insert("theme".into(), dice.pick(&THEMES).into());

    let mut push = Map::with_capacity(2);
    push.insert("enabled".into(), Value::Bool(dice.chance(500)));
    if dice.chance(300) {
        let mut quiet = Map::with_capacity(2);
        quiet.insert("start".into(), "22:00".into());
        quiet.insert("end".into(), "07:00".into());
        push.insert("quiet_hours".into(), Value::Object(quiet));
    }
    let mut notifications = Map::with_capacity(3);
    notifications.insert("email".into(), Value::Bool(dice.chance(700)));
    notifications.insert("sms".into(), Value::Bool(dice.chance(150)));
    notifications.insert("push".into(), Value::Object(push));
    let mut preferences = Map::with_capacity(3);
    preferences.insert("timezone".into(), locale.timezone.into());
    preferences.insert("newsletter".into(), Value::Bool(dice.chance(400)));
    preferences.insert("notifications".into(), Value::Object(notifications));
    um.insert("preferences".into(), Value::Object(preferences));

    if dice.chance(700) {
        let n = [1, 1, 1, 2, 2, 3][dice.below(6) as usize];
        let mut addresses = Vec::with_capacity(n);
        for _ in 0..n {
            // Most addresses are in the user's own country; some anywhere.
            let home = if dice.chance(850) {
                locale
            } else {
                &LOCALES[dice.below(LOCALES.len() as u64) as usize]
            };
            let mut address = Map::with_capacity(4);
            address.insert(
                "label".into(),
                dice.pick(&["home", "work", "billing", "shipping"]).into(),
            );
            address.insert("city".into(), dice.pick(home.cities).into());
            address.insert(
                "postal_code".into(),
                Value::String(format!("{:05}", dice.below(100_000))),
            );
            address.insert("country".into(), home.country.into());
            addresses.push(Value::Object(address));
        }
        um.insert("addresses".into(), Value::Array(addresses));
    }
    if dice.chance(250) {
        um.insert(
            "favorite color".into(),
            dice.pick(&["blue", "vert", "赤", "أزرق", "כחול", "#ff8800"])
                .into(),
        );
    }
    if dice.chance(300) {
        um.insert("opt-in".into(), Value::Bool(dice.chance(500)));
    }
    if dice.chance(50) {
        let emoji = dice.pick(&["🦊", "🌸", "🚀", "☕", "🎧", "🇫🇷", "👩🏽‍💻"]);
        um.insert(
            "display_name".into(),
            Value::String(format!("{given} {emoji}")),
        );
    }
    um
}

const THEMES: [&str; 4] = ["light", "dark", "system", "high-contrast"];
const GROUPS: [&str; 7] = [
    "engineering",
    "sales",
    "marketing",
    "support",
    "finance",
    "research",
    "équipe-nord",
];
const DOMAINS: [&str; 10] = [
    "example.com",
    "example.com",
    "example.com",
    "example.com",
    "example.org",
    "example.org",
    "example.net",
    "example.net",
    "mail.example",
    "acme.example",
];

/// Where a user comes from: names (display, romanised for the email) and cities.
struct Locale {
    tag: &'static str,
    country: &'static str,
    timezone: &'static str,
    given: &'static [(&'static str, &'static str)],
    family: &'static [(&'static str, &'static str)],
    /// Written "Family Given" (with `separator` between) rather than "Given Family".
    family_first: bool,
    separator: &'static str,
    cities: &'static [&'static str],
}

const LOCALE_WEIGHTS: [u32; 16] = [24, 8, 12, 8, 5, 5, 3, 3, 3, 4, 3, 5, 5, 4, 3, 2];
const LOCALES: [Locale; 16] = [
    Locale {
        tag: "en-US",
        country: "US",
        timezone: "America/New_York",
        given: &[
            ("Emily", "emily"),
            ("James", "james"),
            ("Olivia", "olivia"),
            ("Liam", "liam"),
            ("Mary-Jane", "maryjane"),
            ("Noah", "noah"),
        ],
        family: &[
            ("Johnson", "johnson"),
            ("O'Brien", "obrien"),
            ("Smith", "smith"),
            ("García", "garcia"),
            ("Walker", "walker"),
        ],
        family_first: false,
        separator: " ",
        cities: &[
            "Seattle", "Austin", "Boston", "New York", "Chicago", "Paris",
        ],
    },
    Locale {
        tag: "en-GB",
        country: "GB",
        timezone: "Europe/London",
        given: &[
            ("Oliver", "oliver"),
            ("Amelia", "amelia"),
            ("Siobhán", "siobhan"),
            ("Harry", "harry"),
        ],
        family: &[
            ("Taylor", "taylor"),
            ("Davies", "davies"),
            ("Ffrench-Mullen", "ffrenchmullen"),
        ],
        family_first: false,
        separator: " ",
        cities: &["London", "Manchester", "Edinburgh", "Cardiff"],
    },
    Locale {
        tag: "fr-FR",
        country: "FR",
        timezone: "Europe/Paris",
        given: &[
            ("Élodie", "elodie"),
            ("François", "francois"),
            ("Zoé", "zoe"),
            ("Léa", "lea"),
            ("Jérôme", "jerome"),
            ("Anaïs", "anais"),
        ],
        family: &[
            ("Lefèvre", "lefevre"),
            ("Dubois", "dubois"),
            ("Moreau", "moreau"),
            ("Bérenger", "berenger"),
        ],
        family_first: false,
        separator: " ",
        cities: &["Paris", "Paris", "Paris", "Lyon", "Marseille", "Toulouse"],
    },
    Locale {
        tag: "de-DE",
        country: "DE",
        timezone: "Europe/Berlin",
        given: &[
            ("Jürgen", "juergen"),
            ("Björn", "bjoern"),
            ("Lena", "lena"),
            ("Maximilian", "maximilian"),
        ],
        family: &[
            ("Müller", "mueller"),
            ("Schröder", "schroeder"),
            ("Weiß", "weiss"),
            ("Hoffmann", "hoffmann"),
        ],
        family_first: false,
        separator: " ",
        cities: &["Berlin", "München", "Köln", "Hamburg"],
    },
    Locale {
        tag: "es-ES",
        country: "ES",
        timezone: "Europe/Madrid",
        given: &[("José", "jose"), ("María", "maria"), ("Iñaki", "inaki")],
        family: &[
            ("Núñez", "nunez"),
            ("Fernández", "fernandez"),
            ("Peña", "pena"),
        ],
        family_first: false,
        separator: " ",
        cities: &["Madrid", "Barcelona", "A Coruña", "Sevilla"],
    },
    Locale {
        tag: "pt-BR",
        country: "BR",
        timezone: "America/Sao_Paulo",
        given: &[
            ("João", "joao"),
            ("Conceição", "conceicao"),
            ("Letícia", "leticia"),
        ],
        family: &[
            ("Gonçalves", "goncalves"),
            ("Araújo", "araujo"),
            ("Silva", "silva"),
        ],
        family_first: false,
        separator: " ",
        cities: &["São Paulo", "Rio de Janeiro", "Florianópolis"],
    },
    Locale {
        tag: "pl-PL",
        country: "PL",
        timezone: "Europe/Warsaw",
        given: &[
            ("Łukasz", "lukasz"),
            ("Zofia", "zofia"),
            ("Małgorzata", "malgorzata"),
        ],
        family: &[
            ("Wójcik", "wojcik"),
            ("Żółkiewski", "zolkiewski"),
            ("Nowak", "nowak"),
        ],
        family_first: false,
        separator: " ",
        cities: &["Kraków", "Warszawa", "Łódź", "Gdańsk"],
    },
    Locale {
        tag: "tr-TR",
        country: "TR",
        timezone: "Europe/Istanbul",
        given: &[("İsmail", "ismail"), ("Şule", "sule"), ("Ayşe", "ayse")],
        family: &[
            ("Yılmaz", "yilmaz"),
            ("Çelik", "celik"),
            ("Öztürk", "ozturk"),
        ],
        family_first: false,
        separator: " ",
        cities: &["İstanbul", "Ankara", "İzmir"],
    },
    Locale {
        tag: "ru-RU",
        country: "RU",
        timezone: "Europe/Moscow",
        given: &[("Дмитрий", "dmitry"), ("Анна", "anna"), ("Ольга", "olga")],
        family: &[
            ("Иванов", "ivanov"),
            ("Смирнова", "smirnova"),
            ("Кузнецов", "kuznetsov"),
        ],
        family_first: false,
        separator: " ",
        cities: &["Москва", "Санкт-Петербург", "Paris"],
    },
    Locale {
        tag: "ar-EG",
        country: "EG",
        timezone: "Africa/Cairo",
        given: &[("محمد", "mohamed"), ("فاطمة", "fatma"), ("مريم", "mariam")],
        family: &[("العلي", "alali"), ("حسن", "hassan"), ("منصور", "mansour")],
        family_first: false,
        separator: " ",
        cities: &["القاهرة", "الإسكندرية", "Cairo"],
    },
    Locale {
        tag: "he-IL",
        country: "IL",
        timezone: "Asia/Jerusalem",
        given: &[("נועה", "noa"), ("דוד", "david"), ("תמר", "tamar")],
        family: &[("כהן", "cohen"), ("לוי", "levi"), ("מזרחי", "mizrahi")],
        family_first: false,
        separator: " ",
        cities: &["תל אביב", "ירושלים", "Haifa"],
    },
    Locale {
        tag: "hi-IN",
        country: "IN",
        timezone: "Asia/Kolkata",
        given: &[("प्रिया", "priya"), ("Aarav", "aarav"), ("Ananya", "ananya")],
        family: &[("शर्मा", "sharma"), ("Patel", "patel"), ("Iyer", "iyer")],
        family_first: false,
        separator: " ",
        cities: &["Bengaluru", "मुंबई", "Pune"],
    },
    Locale {
        tag: "ja-JP",
        country: "JP",
        timezone: "Asia/Tokyo",
        given: &[
            ("美咲", "misaki"),
            ("翔太", "shota"),
            ("陽菜", "hina"),
            ("さくら", "sakura"),
        ],
        family: &[("佐藤", "sato"), ("鈴木", "suzuki"), ("高橋", "takahashi")],
        family_first: true,
        separator: " ",
        cities: &["東京", "大阪", "Kyoto"],
    },
    Locale {
        tag: "zh-CN",
        country: "CN",
        timezone: "Asia/Shanghai",
        given: &[("伟", "wei"), ("芳", "fang"), ("秀英", "xiuying")],
        family: &[("王", "wang"), ("李", "li"), ("张", "zhang")],
        family_first: true,
        separator: "",
        cities: &["北京", "上海", "深圳"],
    },
    Locale {
        tag: "ko-KR",
        country: "KR",
        timezone: "Asia/Seoul",
        given: &[("민준", "minjun"), ("서연", "seoyeon"), ("지호", "jiho")],
        family: &[("김", "kim"), ("이", "lee"), ("박", "park")],
        family_first: true,
        separator: "",
        cities: &["서울", "부산"],
    },
    Locale {
        tag: "vi-VN",
        country: "VN",
        timezone: "Asia/Ho_Chi_Minh",
        given: &[("Hương", "huong"), ("Minh", "minh"), ("Thảo", "thao")],
        family: &[("Nguyễn", "nguyen"), ("Trần", "tran"), ("Phạm", "pham")],
        family_first: true,
        separator: " ",
        cities: &["Hà Nội", "Đà Nẵng", "Paris"],
    },
];

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::OnceLock;

    use super::*;

    const ROOT_KEYS: [&str; 16] = [
        "created_at",
        "email",
        "email_verified",
        "family_name",
        "given_name",
        "identities",
        "name",
        "nickname",
        "picture",
        "updated_at",
        "user_id",
        "user_metadata",
        "app_metadata",
        "last_ip",
        "last_login",
        "logins_count",
    ];

    use crate::rules::RESERVED_APP_METADATA;

    /// 25,000 users with seed 42, generated once for all the tests that read them.
    fn tenant() -> &'static [Map<String, Value>] {
        static USERS: OnceLock<Vec<Map<String, Value>>> = OnceLock::new();
        USERS.get_or_init(|| generate(25_000, 42).collect())
    }

    fn text<'a>(user: &'a Map<String, Value>, key: &str) -> &'a str {
        user[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} is a string"))
    }

    fn lines(count: usize, seed: u64) -> Vec<String> {
        generate(count, seed)
            .map(|u| serde_json::to_string(&u).unwrap())
            .collect()
    }

    /// How many users were created in each millisecond.
    fn per_millisecond(users: &[Map<String, Value>]) -> HashMap<&str, usize> {
        let mut counts = HashMap::new();
        for user in users {
            *counts.entry(text(user, "created_at")).or_default() += 1;
        }
        counts
    }

    #[test]
    fn same_seed_gives_the_same_users_byte_for_byte() {
        assert_eq!(lines(3_000, 7), lines(3_000, 7));
    }

    #[test]
    fn seed_1_still_gives_the_same_first_users() {
        let pinned: Vec<String> = generate(3, 1)
            .map(|u| {
                let field = |key| text(&u, key).to_owned();
                [field("user_id"), field("created_at"), field("email")].join(" ")
            })
            .collect();
        assert_eq!(
            pinned,
            [
                "auth0|5d39a7a267094cea8ca40db1 2019-07-25T12:59:14.818Z jgarcia1@example.com",
                "auth0|6572161a67094cea8ca40db2 2023-12-07T18:59:38.442Z lee.minjun2@example.org",
                "auth0|62f3888867094cea8ca40db3 2022-08-10T10:29:28.337Z maria_fernandez3@example.net",
            ],
            "the generator's output changed: if on purpose, update these lines"
        );
    }

    #[test]
    fn another_seed_gives_other_users() {
        let (a, b) = (lines(500, 7), lines(500, 8));
        assert!(a.iter().zip(&b).all(|(x, y)| x != y));
    }

    #[test]
    fn yields_exactly_count_users() {
        for count in [0, 1, 2, 3, 4, 299, 300, 999, 1_000, 2_999, 3_000, 10_000] {
            let iter = generate(count, 3);
            assert_eq!(iter.size_hint(), (count, Some(count)));
            assert_eq!(iter.count(), count, "count {count}");
        }
    }

    #[test]
    fn time_anchors_match_their_dates() {
        let ms = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
        assert_eq!(CREATED_FROM_MS, ms("2019-01-01T00:00:00.000Z"));
        assert_eq!(CREATED_TO_MS, ms("2025-12-31T23:59:59.999Z"));
        assert_eq!(UPDATED_TO_MS, ms("2026-06-30T23:59:59.999Z"));
    }

    #[test]
    fn root_keys_come_in_auth0_order() {
        for user in tenant() {
            let keys: Vec<&str> = user.keys().map(String::as_str).collect();
            let expected: Vec<&str> = ROOT_KEYS
                .into_iter()
                .filter(|k| user.contains_key(*k))
                .collect();
            assert_eq!(keys, expected);
            for k in [
                "created_at",
                "email",
                "email_verified",
                "identities",
                "name",
            ] {
                assert!(user.contains_key(k), "{k} missing");
            }
            for k in ["nickname", "picture", "updated_at", "user_id"] {
                assert!(user.contains_key(k), "{k} missing");
            }
        }
    }

    #[test]
    fn user_ids_are_unique_database_ids_matching_the_identity() {
        let mut seen = HashSet::new();
        for user in tenant() {
            let id = text(user, "user_id");
            let hex = id.strip_prefix("auth0|").expect("auth0| prefix");
            assert!(
                hex.len() == 24
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{id}"
            );
            let identities = user["identities"].as_array().unwrap();
            assert_eq!(identities.len(), 1);
            let identity = identities[0].as_object().unwrap();
            let keys: Vec<&str> = identity.keys().map(String::as_str).collect();
            assert_eq!(keys, ["connection", "user_id", "provider", "isSocial"]);
            assert_eq!(identity["user_id"], hex);
            assert_eq!(identity["provider"], "auth0");
            assert_eq!(identity["isSocial"], false);
            assert!(GENERATED_CONNECTIONS.contains(&identity["connection"].as_str().unwrap()));
            assert!(seen.insert(id), "duplicate user_id {id}");
        }
    }

    #[test]
    fn emails_are_lower_case_and_unique_per_connection_and_overall() {
        let mut per_connection = HashSet::new();
        let mut overall = HashSet::new();
        for user in tenant() {
            let email = text(user, "email");
            assert_eq!(email, email.to_lowercase());
            assert!(email.is_ascii() && email.contains('@'), "{email}");
            assert_eq!(text(user, "nickname"), email.split('@').next().unwrap());
            let connection = user["identities"][0]["connection"].as_str().unwrap();
            assert!(
                per_connection.insert((connection, email)),
                "duplicate {email} in {connection}"
            );
            assert!(overall.insert(email), "duplicate {email}");
        }
    }

    #[test]
    fn one_group_of_1500_shares_a_millisecond_at_3000_and_25000() {
        let small: Vec<_> = generate(3_000, 42).collect();
        for users in [&small[..], tenant()] {
            let counts = per_millisecond(users);
            let big: Vec<usize> = counts.values().copied().filter(|&n| n > 500).collect();
            assert_eq!(big, [1500], "one same-millisecond group of exactly 1,500");
        }
    }

    #[test]
    fn small_tenants_have_a_same_millisecond_group_of_half() {
        for (count, group) in [(300, 150), (1_000, 500), (2_999, 1_499), (4, 2)] {
            let users: Vec<_> = generate(count, 9).collect();
            let largest = per_millisecond(&users).into_values().max().unwrap();
            assert_eq!(largest, group, "count {count}");
        }
    }

    #[test]
    fn bursts_fill_single_seconds_at_25000() {
        let mut per_second: HashMap<&str, Vec<&str>> = HashMap::new();
        for user in tenant() {
            let created = text(user, "created_at");
            per_second.entry(&created[..19]).or_default().push(created);
        }
        let mut bursts = 0;
        for stamps in per_second.values().filter(|s| s.len() >= 1000) {
            let mut per_ms: HashMap<&str, usize> = HashMap::new();
            for s in stamps {
                *per_ms.entry(s).or_default() += 1;
            }
            if per_ms.len() == 1 {
                continue; // The same-millisecond group.
            }
            bursts += 1;
            assert!((1000..=4000).contains(&stamps.len()), "{}", stamps.len());
            assert!(per_ms.len() > 100, "a burst spreads over many milliseconds");
            assert!(
                *per_ms.values().max().unwrap() >= 20,
                "many share a millisecond"
            );
        }
        assert_eq!(bursts, 3, "3 + 25_000 / 200_000 bursts");
    }

    #[test]
    fn timestamps_are_canonical_and_ordered() {
        fn canonical(s: &str) -> bool {
            let b = s.as_bytes();
            b.len() == 24
                && b.iter().enumerate().all(|(i, &c)| match i {
                    4 | 7 => c == b'-',
                    10 => c == b'T',
                    13 | 16 => c == b':',
                    19 => c == b'.',
                    23 => c == b'Z',
                    _ => c.is_ascii_digit(),
                })
        }
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
        for user in tenant() {
            let created = text(user, "created_at");
            let updated = text(user, "updated_at");
            assert!(
                canonical(created) && canonical(updated),
                "{created} {updated}"
            );
            let (c, u) = (at(created), at(updated));
            assert!((CREATED_FROM_MS..=CREATED_TO_MS).contains(&c), "{created}");
            assert!((c..=UPDATED_TO_MS).contains(&u), "{created} {updated}");
            if let Some(login) = user.get("last_login") {
                let login = login.as_str().unwrap();
                assert!(canonical(login));
                assert!((c..=u).contains(&at(login)), "{created} {login} {updated}");
                assert!(user["logins_count"].as_u64().unwrap() >= 1);
                assert!(user.contains_key("last_ip"));
            } else {
                assert!(!user.contains_key("logins_count") && !user.contains_key("last_ip"));
            }
        }
    }

    #[test]
    fn metadata_keys_are_allowed() {
        fn check(value: &Value, path: &str) {
            match value {
                Value::Object(map) => {
                    for (k, v) in map {
                        assert!(!k.contains('.') && !k.contains('$'), "{path}.{k}");
                        check(v, &format!("{path}.{k}"));
                    }
                }
                Value::Array(items) => items.iter().for_each(|v| check(v, path)),
                _ => {}
            }
        }
        for user in tenant() {
            for key in ["user_metadata", "app_metadata"] {
                if let Some(metadata) = user.get(key) {
                    assert!(metadata.is_object());
                    check(metadata, key);
                }
            }
            if let Some(Value::Object(am)) = user.get("app_metadata") {
                for k in am.keys() {
                    assert!(!RESERVED_APP_METADATA.contains(&k.as_str()), "{k}");
                }
            }
        }
    }

    #[test]
    fn metadata_queries_find_realistic_subsets() {
        let users = tenant();
        let share = |pred: &dyn Fn(&Map<String, Value>) -> bool| {
            users.iter().filter(|u| pred(u)).count() as f64 / users.len() as f64
        };
        let pro = share(&|u| u.get("app_metadata").is_some_and(|am| am["plan"] == "pro"));
        let paris = share(&|u| {
            u.get("user_metadata")
                .and_then(|um| um.get("addresses"))
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|addr| addr["city"] == "Paris"))
        });
        let legacy = share(&|u| u["identities"][0]["connection"] == "legacy-db");
        let neither =
            share(&|u| !u.contains_key("user_metadata") && !u.contains_key("app_metadata"));
        let only_app =
            share(&|u| !u.contains_key("user_metadata") && u.contains_key("app_metadata"));
        let only_user =
            share(&|u| u.contains_key("user_metadata") && !u.contains_key("app_metadata"));
        assert!((0.15..0.30).contains(&pro), "pro {pro}");
        assert!((0.01..0.10).contains(&paris), "Paris {paris}");
        assert!((0.12..0.18).contains(&legacy), "legacy-db {legacy}");
        for s in [neither, only_app, only_user] {
            assert!((0.05..0.20).contains(&s), "{s}");
        }
        assert!(users.iter().any(|u| !text(u, "name").is_ascii()));
    }
}
