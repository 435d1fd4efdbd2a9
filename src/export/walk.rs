//! The walk over a tenant's users past the 1,000-result cap, in `created_at` windows.
//!
//! Auth0 never pages past the first 1,000 results of a query (facts: "The 1000 cap"), so the
//! walk asks for `created_at` windows sorted ascending, each at most 1,000 users deep:
//!
//! 1. Window `[from TO upper}` (upper = the job's start, fixed for the whole run): fetch its
//!    first page; it says how many users the window holds.
//! 2. At most 1,000: fetch the other pages (concurrently) and the window is done.
//! 3. More: fetch up to the 1,000th user. Everything created strictly before that user's
//!    instant is complete (the sort puts all of it first); emit it, and the next window starts
//!    at that instant, inclusive.
//! 4. When all 1,000 share one instant (a bulk import does that), export the instant on its
//!    own: `[t TO t]`, split further by `user_id` prefix while a slice holds more than 1,000,
//!    and check that the slices add up to the instant's total. The next window starts just
//!    after the instant.
//!
//! Every batch is sorted by (`created_at`, `user_id`), so the output is the same bytes on
//! every run, whatever order the API gives users that share an instant.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, Client, ListQuery, Listed};

/// Users per page: the API's maximum.
pub const PER_PAGE: u32 = 100;
/// The deepest a query can page (facts: "The 1000 cap").
pub const CAP: u64 = 1000;
/// The page that holds the 1,000th user.
const LAST_PAGE: u32 = (CAP / PER_PAGE as u64) as u32 - 1;

/// Where the walk goes on from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The lower `created_at` bound of the next window; `None` for the very beginning.
    pub from: Option<String>,
    /// Whether `from` itself is still to be exported.
    pub inclusive: bool,
}

impl Cursor {
    pub fn start() -> Cursor {
        Cursor {
            from: None,
            inclusive: true,
        }
    }
}

/// One step of the walk: users to write, in order, and where to go on (`None` when done).
#[derive(Debug)]
pub struct Batch {
    pub users: Vec<Listed>,
    pub next: Option<Cursor>,
    /// The requests this batch took (for the windows count in the summary).
    pub windows: u64,
    /// How many users the window starting at the cursor held (for progress).
    pub remaining: u64,
}

/// A walk that cannot finish whole.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(
        "cannot export every user created at {instant}: the tenant reports {expected} but the \
         user_id slices hold {found}; some user ids use characters the split does not reach"
    )]
    Incomplete {
        instant: String,
        expected: u64,
        found: u64,
    },
    #[error(
        "the tenant's answers changed while a window was read ({detail}); retried {attempts} times"
    )]
    Unstable { detail: String, attempts: u32 },
    #[error("a user has no valid created_at: {0}")]
    BadUser(String),
}

/// The walk's fixed parameters.
pub struct Walk<'a> {
    pub client: &'a Client,
    /// The user's own query, if any (`q`, v3 syntax).
    pub query: Option<String>,
    /// The exclusive upper bound on `created_at`: the job's start.
    pub upper: String,
    /// `fields` to request (always holding `user_id` and `created_at`).
    pub fields: Option<(String, bool)>,
    /// Pages fetched at once within a window.
    pub concurrency: usize,
}

/// Pages of a window already read: its total, its first page, and maybe one more page.
struct Known {
    total: u64,
    first: Vec<Listed>,
    page: Option<(u32, Vec<Listed>)>,
}

/// How much of a query to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Depth {
    /// As far as the cap allows.
    Cap,
    /// Everything when it fits under the cap; only the first page otherwise.
    UnlessOverCap,
}

/// How often a window is read again when its pages disagree with its total.
const STABILITY_ATTEMPTS: u32 = 3;

impl Walk<'_> {
    /// The next batch after `cursor`.
    pub async fn next(&self, cursor: &Cursor) -> Result<Batch, WalkError> {
        let lower = match &cursor.from {
            None => "*".to_string(),
            Some(from) => from.clone(),
        };
        let open = if cursor.inclusive || cursor.from.is_none() {
            '['
        } else {
            '{'
        };
        let range = format!("created_at:{open}{lower} TO {}}}", self.upper);
        let (total, mut users) = self
            .read_window(&range, None, Depth::UnlessOverCap, None)
            .await?;
        tracing::debug!(%range, total, "Window read.");
        if total <= CAP {
            sort_users(&mut users)?;
            return Ok(Batch {
                users,
                next: None,
                windows: 1,
                remaining: total,
            });
        }
        // A first page that is one instant throughout may start a cluster deeper than the cap
        // (a bulk import): read the instant on its own rather than nine more pages of it.
        sort_users(&mut users)?;
        let first = users.first().map(created_at).transpose()?.flatten();
        let last = users.last().map(created_at).transpose()?.flatten();
        if let (Some(first), Some(last)) = (first, last)
            && first == last
            && users.len() as u32 == PER_PAGE
        {
            let (users, windows) = self.read_instant(&first).await?;
            let next = Some(Cursor {
                from: Some(first),
                inclusive: false,
            });
            return Ok(Batch {
                users,
                next,
                windows: windows + 1,
                remaining: total,
            });
        }
        // The 1,000th user: when its whole page is one instant, a cluster reaches that deep.
        // Read on from page 1 only until the cluster starts (all before it is complete) and
        // read the instant whole, instead of the pages in between.
        let probe = self.list_page(&range, None, LAST_PAGE).await?.users;
        if let Some(t) = single_instant(&probe)? {
            return self.read_up_to_cluster(&range, users, t, total).await;
        }
        let known = Known {
            total,
            first: users,
            page: Some((LAST_PAGE, probe)),
        };
        let (_, mut users) = self
            .read_window(&range, None, Depth::Cap, Some(known))
            .await?;
        sort_users(&mut users)?;
        let last = users
            .last()
            .map(created_at)
            .transpose()?
            .flatten()
            .ok_or_else(|| WalkError::BadUser("the window's last user has no created_at".into()))?;
        let complete: Vec<Listed> = users
            .into_iter()
            .filter(|u| created_at(u).ok().flatten().as_deref() < Some(last.as_str()))
            .collect();
        tracing::debug!(emitted = complete.len(), %last, "Window cut at the last instant.");
        if !complete.is_empty() {
            return Ok(Batch {
                users: complete,
                next: Some(Cursor {
                    from: Some(last),
                    inclusive: true,
                }),
                windows: 1,
                remaining: total,
            });
        }
        // All of the first 1,000 share one instant: export that instant on its own.
        let (users, windows) = self.read_instant(&last).await?;
        Ok(Batch {
            users,
            next: Some(Cursor {
                from: Some(last),
                inclusive: false,
            }),
            windows: windows + 1,
            remaining: total,
        })
    }

    /// A window whose 1,000th user is in a cluster at instant `t`: the pages from `first`
    /// (page 0) on until the cluster starts, then the instant read whole.
    async fn read_up_to_cluster(
        &self,
        range: &str,
        first: Vec<Listed>,
        t: String,
        total: u64,
    ) -> Result<Batch, WalkError> {
        let reaches = |page: &[Listed]| {
            page.iter()
                .any(|u| created_at(u).ok().flatten().as_deref() == Some(t.as_str()))
        };
        let mut batch: Vec<Listed> = Vec::new();
        let mut page_users = first;
        let mut page = 0;
        let mut windows = 2;
        loop {
            let found = reaches(&page_users);
            batch.extend(
                page_users
                    .into_iter()
                    .filter(|u| created_at(u).ok().flatten().as_deref() < Some(t.as_str())),
            );
            page += 1;
            if found || page >= LAST_PAGE {
                break;
            }
            page_users = self.list_page(range, None, page).await?.users;
            windows += 1;
        }
        let (instant, instant_windows) = self.read_instant(&t).await?;
        batch.extend(instant);
        sort_users(&mut batch)?;
        let next = Some(Cursor {
            from: Some(t),
            inclusive: false,
        });
        Ok(Batch {
            users: batch,
            next,
            windows: windows + instant_windows,
            remaining: total,
        })
    }

    /// Reads every user of one exact instant, splitting by user_id prefix past the cap.
    async fn read_instant(&self, instant: &str) -> Result<(Vec<Listed>, u64), WalkError> {
        let range = format!("created_at:[{instant} TO {instant}]");
        let (total, first) = self
            .read_window(&range, Some("user_id:1"), Depth::UnlessOverCap, None)
            .await?;
        if total <= CAP {
            let mut users = first;
            sort_by_user_id(&mut users);
            return Ok((users, 1));
        }
        if total <= 2 * CAP {
            // Up to twice the cap: the first 1,000 by user_id ascending and the rest from the
            // other end, descending. user_ids are unique, so the two orders meet exactly.
            if let Some(users) = self.read_both_ends(&range, total, first.clone()).await? {
                let pages = total.div_ceil(u64::from(PER_PAGE));
                return Ok((users, pages));
            }
        }
        let mut users = Vec::new();
        let mut windows = 1;
        let found = self
            .read_prefix(&range, "", total, &first, &mut users, &mut windows)
            .await?;
        if found != total {
            return Err(WalkError::Incomplete {
                instant: instant.to_string(),
                expected: total,
                found,
            });
        }
        sort_by_user_id(&mut users);
        Ok((users, windows))
    }

    /// Reads a slice of up to 2,000 users from both ends of the user_id order. `None` when the
    /// two ends do not add up to `total` (the slice changed while it was read).
    async fn read_both_ends(
        &self,
        range: &str,
        total: u64,
        first: Vec<Listed>,
    ) -> Result<Option<Vec<Listed>>, WalkError> {
        let ascending = (1..(CAP / u64::from(PER_PAGE)) as u32).map(|p| (p, "user_id:1"));
        let descending_pages = (total - CAP).div_ceil(u64::from(PER_PAGE)) as u32;
        let descending = (0..descending_pages).map(|p| (p, "user_id:-1"));
        let pages: Vec<Vec<Listed>> = futures::stream::iter(ascending.chain(descending))
            .map(|(page, sort)| async move {
                self.list_page(range, Some(sort), page)
                    .await
                    .map(|p| p.users)
            })
            .buffered(self.concurrency.max(1))
            .try_collect()
            .await?;
        let mut users = first;
        users.extend(pages.into_iter().flatten());
        sort_by_user_id(&mut users);
        users.dedup_by(|a, b| user_id(a) == user_id(b));
        Ok((users.len() as u64 == total).then_some(users))
    }

    /// Reads the users of `range` whose user_id starts with `prefix` (holding `total`), given a
    /// sample of them; returns how many it found.
    fn read_prefix<'b>(
        &'b self,
        range: &'b str,
        prefix: &'b str,
        total: u64,
        sample: &'b [Listed],
        out: &'b mut Vec<Listed>,
        windows: &'b mut u64,
    ) -> futures::future::BoxFuture<'b, Result<u64, WalkError>> {
        Box::pin(async move {
            // Every id in the slice lies between the smallest (the sample's first, sorted
            // ascending) and the largest (one request), so their common prefix is everyone's:
            // split after it rather than one character at a time (`auth0|` for a bulk import).
            let q = format!("{range} AND user_id:{}*", escape_term(prefix));
            let q = if prefix.is_empty() {
                range.to_string()
            } else {
                q
            };
            let largest = self.largest_user_id(&q).await?;
            *windows += 1;
            let smallest = sample.first().map(user_id).unwrap_or_default();
            let common = common_prefix([smallest, largest.as_str()].into_iter());
            let prefix: &str = if common.len() > prefix.len() {
                &common
            } else {
                prefix
            };
            // The next characters seen in the sample first, then digits and letters (ids are
            // mostly hex or alphanumeric), then punctuation, until the slices add up.
            let mut seen: Vec<char> = sample
                .iter()
                .filter_map(|u| user_id(u).strip_prefix(prefix)?.chars().next())
                .collect();
            seen.sort_unstable();
            seen.dedup();
            let likely = ('0'..='9').chain('a'..='z').chain('A'..='Z');
            let punctuation = (0x21u8..=0x7e)
                .map(char::from)
                .filter(|c| !c.is_ascii_alphanumeric());
            let mut candidates: Vec<char> = seen.clone();
            candidates.extend(likely.chain(punctuation).filter(|c| !seen.contains(c)));
            let mut found = 0u64;
            // A user_id equal to the prefix itself is not matched by `prefix*` children.
            if !prefix.is_empty() {
                found += sample.iter().filter(|u| user_id(u) == prefix).count() as u64;
                out.extend(sample.iter().filter(|u| user_id(u) == prefix).cloned());
            }
            for c in candidates {
                if found >= total {
                    break;
                }
                let child = format!("{prefix}{c}");
                let q = format!("{range} AND user_id:{}*", escape_term(&child));
                let (child_total, child_users) = self
                    .read_window(&q, Some("user_id:1"), Depth::UnlessOverCap, None)
                    .await?;
                *windows += 1;
                if child_total == 0 {
                    continue;
                }
                if child_total <= CAP {
                    found += child_users.len() as u64;
                    out.extend(child_users);
                } else {
                    found += self
                        .read_prefix(range, &child, child_total, &child_users, out, windows)
                        .await?;
                }
            }
            Ok(found)
        })
    }

    /// One page of `range` (with the user's query), sorted by created_at unless told.
    async fn list_page(
        &self,
        range: &str,
        sort: Option<&str>,
        page: u32,
    ) -> Result<crate::api::UsersPage, WalkError> {
        let query = ListQuery {
            q: Some(self.with_query(range)),
            sort: Some(sort.unwrap_or("created_at:1").to_string()),
            page,
            per_page: PER_PAGE,
            fields: self.fields.clone(),
        };
        Ok(self.client.list_users(&query).await?)
    }

    /// `range` combined with the user's own query.
    fn with_query(&self, range: &str) -> String {
        match &self.query {
            Some(user_query) => format!("({user_query}) AND {range}"),
            None => range.to_string(),
        }
    }

    /// The largest user_id matching `range` (with the user's query).
    async fn largest_user_id(&self, range: &str) -> Result<String, WalkError> {
        let q = self.with_query(range);
        let query = ListQuery {
            q: Some(q),
            sort: Some("user_id:-1".into()),
            page: 0,
            per_page: 1,
            fields: Some(("user_id".into(), true)),
        };
        let page = self.client.list_users(&query).await?;
        Ok(page
            .users
            .first()
            .map(user_id)
            .unwrap_or_default()
            .to_string())
    }

    /// Reads up to 1,000 users of a query: the first page, then the others concurrently.
    /// Returns the query's total and the users read, checked against each other.
    async fn read_window(
        &self,
        range: &str,
        sort: Option<&str>,
        depth: Depth,
        mut known: Option<Known>,
    ) -> Result<(u64, Vec<Listed>), WalkError> {
        let q = self.with_query(range);
        let sort = sort.unwrap_or("created_at:1").to_string();
        let list = |page: u32| {
            let query = ListQuery {
                q: Some(q.clone()),
                sort: Some(sort.clone()),
                page,
                per_page: PER_PAGE,
                fields: self.fields.clone(),
            };
            async move { self.client.list_users(&query).await }
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Pages the caller already read are used once, never on a re-read.
            let known = known.take();
            let (total, mut users, skip) = match known {
                Some(Known { total, first, page }) => {
                    let skip = page.as_ref().map(|(n, _)| *n);
                    let mut users = first;
                    users.extend(page.into_iter().flat_map(|(_, users)| users));
                    (total, users, skip)
                }
                None => {
                    let page = list(0).await?;
                    (page.total, page.users, None)
                }
            };
            let wanted = match depth {
                Depth::UnlessOverCap if total > CAP => users.len() as u64,
                _ => total.min(CAP),
            };
            let pages = wanted.div_ceil(u64::from(PER_PAGE)) as u32;
            let rest: Vec<Vec<Listed>> =
                futures::stream::iter((1..pages).filter(|p| Some(*p) != skip))
                    .map(|page| async move { list(page).await.map(|p| p.users) })
                    .buffered(self.concurrency.max(1))
                    .try_collect()
                    .await?;
            users.extend(rest.into_iter().flatten());
            if users.len() as u64 == wanted {
                return Ok((total, users));
            }
            // Users were deleted (or search caught up) between pages: read the window again
            // rather than risk a user missed between two pages.
            let detail = format!("{q}: total {total}, pages held {}", users.len());
            if attempt >= STABILITY_ATTEMPTS {
                return Err(WalkError::Unstable {
                    detail,
                    attempts: attempt,
                });
            }
            tracing::warn!(%detail, "A window changed while it was read; reading it again.");
        }
    }
}

/// The instant a full page of users shares, if they all share one.
fn single_instant(users: &[Listed]) -> Result<Option<String>, WalkError> {
    if users.len() as u32 != PER_PAGE {
        return Ok(None);
    }
    let first = created_at(&users[0])?;
    for user in &users[1..] {
        if created_at(user)? != first {
            return Ok(None);
        }
    }
    Ok(first)
}

/// The longest prefix all the strings share.
fn common_prefix<'s>(mut ids: impl Iterator<Item = &'s str>) -> String {
    let Some(first) = ids.next() else {
        return String::new();
    };
    let mut len = first.len();
    for id in ids {
        len = first
            .bytes()
            .zip(id.bytes())
            .take(len)
            .take_while(|(a, b)| a == b)
            .count();
    }
    // Back off to a character boundary.
    while !first.is_char_boundary(len) {
        len -= 1;
    }
    first[..len].to_string()
}

fn user_id(user: &Listed) -> &str {
    &user.user_id
}

/// A user's `created_at` in canonical form (`YYYY-MM-DDTHH:MM:SS.mmmZ`).
fn created_at(user: &Listed) -> Result<Option<String>, WalkError> {
    let Some(raw) = user.created_at.as_deref() else {
        return Ok(None);
    };
    let parsed = DateTime::parse_from_rfc3339(raw)
        .map_err(|e| WalkError::BadUser(format!("{}: created_at {raw:?}: {e}", user_id(user))))?;
    Ok(Some(canonical(parsed.with_timezone(&Utc))))
}

/// Auth0's timestamp form, which compares correctly as text.
pub fn canonical(t: DateTime<Utc>) -> String {
    // Written out by hand: `format` parses its pattern on every call, and the walk calls this
    // for every user several times.
    use chrono::{Datelike, Timelike};
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.timestamp_subsec_millis()
    )
}

fn sort_users(users: &mut [Listed]) -> Result<(), WalkError> {
    let mut keyed: Vec<(String, String, usize)> = Vec::with_capacity(users.len());
    for (i, u) in users.iter().enumerate() {
        let created = created_at(u)?
            .ok_or_else(|| WalkError::BadUser(format!("{} has no created_at", user_id(u))))?;
        keyed.push((created, user_id(u).to_string(), i));
    }
    keyed.sort();
    let order: Vec<usize> = keyed.into_iter().map(|(_, _, i)| i).collect();
    apply_order(users, &order);
    Ok(())
}

fn sort_by_user_id(users: &mut [Listed]) {
    users.sort_by(|a, b| user_id(a).cmp(user_id(b)).then(Ordering::Equal));
}

/// Reorders `items` so that position k holds the item that was at `order[k]`.
fn apply_order<T: Default>(items: &mut [T], order: &[usize]) {
    let mut taken: Vec<T> = items.iter_mut().map(std::mem::take).collect();
    for (slot, &from) in items.iter_mut().zip(order) {
        *slot = std::mem::take(&mut taken[from]);
    }
}

/// Escapes a term for the Lucene query syntax (backslash before every special character).
pub fn escape_term(term: &str) -> String {
    let mut out = String::with_capacity(term.len() + 8);
    for c in term.chars() {
        if "+-&|!(){}[]^\"~*?:\\/ ".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_term_escapes_lucene_specials() {
        assert_eq!(escape_term("auth0|5c3a"), "auth0\\|5c3a");
        assert_eq!(
            escape_term("samlp|acme-saml|a b"),
            "samlp\\|acme\\-saml\\|a\\ b"
        );
    }

    #[test]
    fn apply_order_permutes() {
        let mut v = vec!["a", "b", "c"];
        apply_order(&mut v, &[2, 0, 1]);
        assert_eq!(v, ["c", "a", "b"]);
    }
}
