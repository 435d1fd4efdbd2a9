//! The walk over a tenant's users past the 1,000-result cap: a plan of `created_at` windows
//! that are read independently, many at once, and written in `created_at` order.
//!
//! Auth0 never pages past the first 1,000 results of a query (facts: "The 1000 cap"), so the
//! walk reads `created_at` ranges sorted ascending, each at most 1,000 users deep. A chain of
//! windows where each one's start depends on the last one's end keeps about one window's pages
//! in flight, and at a real tenant's round trip (100–500 ms) that is a small share of the rate
//! limit (Little's law: the limit times the round trip must be in flight). So the walk plans
//! ranges that do not depend on each other:
//!
//! 1. The plan starts as one [`Window::Range`]: `[cursor TO upper}` (upper = the job's start,
//!    fixed for the whole run). Planning a range reads its first page (sorted `created_at:1`,
//!    100 users), which says how many users the range holds.
//! 2. At most 1,000: the range is a [`Window::Pages`] window, and that first page is already
//!    its first page of data; the others are read one after another.
//! 3. A first page that is one instant throughout starts a cluster (a bulk import): the instant
//!    becomes a [`Window::Instant`] and the range after it (`{t TO upper}`) is planned again.
//! 4. More than [`SPLIT_ABOVE`] users: the range is split into about `total / TARGET` ranges
//!    (at most [`FANOUT`]) of equal time span between its first user and its latest (one
//!    request sorted `created_at:-1` finds it, so years nobody signed up in are not split
//!    into many empty ranges; for the walk's first range it goes beside the first page). Each is planned the same way, independently.
//! 5. More than 1,000 but few, or a part of a split holding over twice its share (a dense
//!    cluster, which more splits by time would reach only through many nearly empty parts):
//!    page 9 gives the 1,000th user. Everything created strictly before
//!    its instant is among the first 1,000, so the range's first pages up to that instant are
//!    a [`Window::Pages`] window with a `cut` (read until a page reaches the cut), and the rest
//!    (`[cut TO upper}`) is planned again. When page 9 is one instant throughout (a cluster
//!    reaches that deep), the cut is at the cluster, which becomes an instant window.
//! 6. An instant window reads `[t TO t]` by `user_id`: whole up to 1,000; from both ends of the
//!    `user_id` order up to 2,000; past that split by `user_id` prefix, checked to add up. It is
//!    kept once read whole (not page by page), and its pages go at once within the permits:
//!    a cluster is on the walk's longest path.
//!
//! The driver (`export_walk`) keeps windows of the plan's first stretch in flight, as many as
//! the run's workers allow, and every request holds a worker permit; a range window's pages are
//! read one after another. Each page is kept in [`Pages`] (the run state) as it arrives, and the
//! plan is in the checkpoint, so a resumed run asks again only for what was in flight.
//!
//! Every window is sorted by (`created_at`, `user_id`) and windows are written in plan order,
//! so the output is the same bytes on every run, whatever order the API gives users that share
//! an instant and whatever order windows complete in. A window whose pages do not add up is
//! read again ([`WalkError::Unstable`] after three tries).

use std::cmp::Ordering;
use std::sync::atomic::{self, AtomicU64, AtomicUsize};

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, Client, ListQuery, Listed, UsersPage};

use super::pages::{PageError, Pages};

/// Users per page: the API's maximum.
pub const PER_PAGE: u32 = 100;
/// The deepest a query can page (facts: "The 1000 cap").
pub const CAP: u64 = 1000;
/// The page that holds the 1,000th user.
const LAST_PAGE: u32 = (CAP / PER_PAGE as u64) as u32 - 1;
/// The users a range split by time aims to give each part: below the cap by a margin, so a
/// part rarely needs a cut, and near it, so its last page is rarely a small one.
const TARGET: u64 = 900;
/// The most parts one split makes: the plan (saved in every checkpoint) stays small, at one
/// wasted first page per 64 parts.
pub const FANOUT: u64 = 64;
/// Ranges over this many users are split by time; smaller ones over the cap are cut at their
/// 1,000th user, and so is a part of a split that holds over twice its share: a dense cluster
/// (thousands of users in one second), which splits by time would isolate only after many
/// nearly empty parts that cost a request each, where a cut costs one probe per 1,000 users
/// wherever they are. Cuts depend on each other, splits do not, so past a few cuts' worth (a
/// chain of at most four, two round trips each), splits: below that, the latest-user probe and
/// the parts' short last pages cost more than the cuts' probes.
pub const SPLIT_ABOVE: u64 = 4 * CAP;

/// Where the walk goes on from: the start of the first window not yet written.
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

/// A `created_at` range: from `from` (or the beginning), up to `to` exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub from: Option<String>,
    pub inclusive: bool,
    pub to: String,
}

impl Range {
    /// From a cursor up to the job's start.
    pub fn after(cursor: &Cursor, upper: &str) -> Range {
        Range {
            from: cursor.from.clone(),
            inclusive: cursor.inclusive || cursor.from.is_none(),
            to: upper.to_string(),
        }
    }

    /// The range as a v3 query term.
    fn term(&self) -> String {
        let open = if self.inclusive { '[' } else { '{' };
        let from = self.from.as_deref().unwrap_or("*");
        format!("created_at:{open}{from} TO {}}}", self.to)
    }

    fn start(&self) -> Cursor {
        Cursor {
            from: self.from.clone(),
            inclusive: self.inclusive,
        }
    }

    /// The same end, from `at`.
    fn from(&self, at: &str, inclusive: bool) -> Range {
        Range {
            from: Some(at.to_string()),
            inclusive,
            to: self.to.clone(),
        }
    }
}

/// One window of the plan. Its `id` names its pages in [`Pages`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Window {
    /// A range not yet planned: its first page decides what it becomes. `share`: the users
    /// the split that made it expected it to hold, if a split made it.
    Range {
        id: u64,
        range: Range,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        share: Option<u64>,
    },
    /// Up to 1,000 users of `range`, read page by page (sorted `created_at:1`). With a `cut`,
    /// only the users created before it, from the pages up to the first that reaches it.
    Pages {
        id: u64,
        range: Range,
        cut: Option<String>,
    },
    /// Every user created at one instant (a cluster), read by `user_id`.
    Instant { id: u64, at: String },
}

impl Window {
    pub fn id(&self) -> u64 {
        match self {
            Window::Range { id, .. } | Window::Pages { id, .. } | Window::Instant { id, .. } => *id,
        }
    }

    /// Where the window starts: the walk's cursor while it is the first one not written.
    pub fn start(&self) -> Cursor {
        match self {
            Window::Range { range, .. } | Window::Pages { range, .. } => range.start(),
            Window::Instant { at, .. } => Cursor {
                from: Some(at.clone()),
                inclusive: true,
            },
        }
    }
}

/// A window written, as `--report` lists it: its `created_at` bounds (`from`, inclusive or not,
/// up to `to` exclusive; an instant is `from` = `to`, both inclusive) and the users it held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Walked {
    /// `pages` (up to 1,000 users read page by page) or `instant` (one instant read whole).
    pub kind: &'static str,
    pub from: Option<String>,
    pub inclusive: bool,
    pub to: String,
    pub users: u64,
}

impl Window {
    /// The window as written with `users` users.
    pub fn walked(&self, users: u64) -> Walked {
        let (kind, from, inclusive, to) = match self {
            Window::Range { range, .. } => ("range", &range.from, range.inclusive, &range.to),
            Window::Pages { range, cut, .. } => (
                "pages",
                &range.from,
                range.inclusive,
                cut.as_ref().unwrap_or(&range.to),
            ),
            Window::Instant { at, .. } => {
                return Walked {
                    kind: "instant",
                    from: Some(at.clone()),
                    inclusive: true,
                    to: at.clone(),
                    users,
                };
            }
        };
        Walked {
            kind,
            from: from.clone(),
            inclusive,
            to: to.clone(),
            users,
        }
    }
}

/// The windows not yet written, in `created_at` order: what the checkpoint keeps of the walk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub windows: Vec<Window>,
    /// The id the next window planned gets.
    pub next_id: u64,
    /// How many users the whole run exports, as its first window counted (for progress).
    #[serde(default)]
    pub expected: Option<u64>,
}

impl Plan {
    /// A plan of one range from `cursor` on: a new run, or one resumed from a checkpoint
    /// written before plans were kept (format 1).
    pub fn from_cursor(cursor: &Cursor, upper: &str) -> Plan {
        Plan {
            windows: vec![Window::Range {
                id: 0,
                range: Range::after(cursor, upper),
                share: None,
            }],
            next_id: 1,
            expected: None,
        }
    }
}

/// What planning a range gave: the windows that take its place, in order, and the range's
/// total.
#[derive(Debug)]
pub struct Planned {
    pub windows: Vec<Window>,
    pub total: u64,
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
    #[error(transparent)]
    Pages(#[from] PageError),
}

/// The walk's fixed parameters, and where it keeps pages.
pub struct Walk<'a> {
    pub client: &'a Client,
    /// The user's own query, if any (`q`, v3 syntax).
    pub query: Option<String>,
    /// The exclusive upper bound on `created_at`: the job's start.
    pub upper: String,
    /// `fields` to request (always holding `user_id` and `created_at`).
    pub fields: Option<(String, bool)>,
    /// Where pages wait until their window is written.
    pub pages: &'a Pages,
    /// The id the next window planned gets.
    pub next_id: AtomicU64,
    /// How many pages of one window may be in flight at once (see [`Walk::read`]); the
    /// driver sets it as the plan shrinks.
    pub fan: AtomicUsize,
}

/// How often a window is read again when its pages disagree with its total.
const STABILITY_ATTEMPTS: u32 = 3;

impl Walk<'_> {
    fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, atomic::Ordering::Relaxed)
    }

    /// A new range to plan.
    fn range(&self, range: Range, share: Option<u64>) -> Window {
        Window::Range {
            id: self.new_id(),
            range,
            share,
        }
    }

    /// The id the next window planned will get (for the checkpoint).
    pub fn next_id(&self) -> u64 {
        self.next_id.load(atomic::Ordering::Relaxed)
    }

    /// Plans a range (see the module docs): the windows that take its place. `share`: what
    /// the split that made it expected it to hold.
    ///
    /// Its first page is kept under the range's `id` as it arrives, and a window it becomes
    /// keeps that id (the pages read for a range that is split or cut at an instant are left
    /// for the caller to remove once the plan that replaces it is saved): a run killed while
    /// a range is planned asks again only for the request in flight.
    pub async fn plan(
        &self,
        id: u64,
        range: &Range,
        share: Option<u64>,
    ) -> Result<Planned, WalkError> {
        let term = range.term();
        let mut attempt = 0;
        loop {
            attempt += 1;
            // The walk's first range (from the beginning) asks for its latest user beside its
            // first page: the two go out together as the throttle's two probes, and a large
            // export splits a round trip sooner. A small one (up to 4,000 users) wastes that
            // one request.
            let mut latest = None;
            let first = match self.pages.load(id, 0) {
                Some((total, users)) => UsersPage { total, users },
                None => {
                    let first = if range.from.is_none() && attempt == 1 {
                        let (first, last) = futures::try_join!(
                            self.list(&term, "created_at:1", 0),
                            self.latest(&term)
                        )?;
                        latest = Some(last);
                        first
                    } else {
                        self.list(&term, "created_at:1", 0).await?
                    };
                    self.pages.save(id, 0, first.total, &first.users)?;
                    first
                }
            };
            let total = first.total;
            if total <= CAP {
                // The first page is the window's first page: kept, not asked for again.
                let window = Window::Pages {
                    id,
                    range: range.clone(),
                    cut: None,
                };
                return Ok(Planned {
                    windows: vec![window],
                    total,
                });
            }
            let planned = if let Some(t) = single_instant(&first.users)? {
                // A cluster at the start: the instant on its own, then what follows it.
                Some(vec![
                    Window::Instant {
                        id: self.new_id(),
                        at: t.clone(),
                    },
                    self.range(range.from(&t, false), None),
                ])
            } else if total > SPLIT_ABOVE && share.is_none_or(|share| total <= 2 * share) {
                self.split(range, &first.users, total, latest).await?
            } else {
                self.cut(id, range, &first.users).await?
            };
            if let Some(windows) = planned {
                return Ok(Planned { windows, total });
            }
            // A page came back short of what the total promised: the range changed under us.
            let detail = format!("{term}: total {total}, but a later page was short");
            if attempt >= STABILITY_ATTEMPTS {
                return Err(WalkError::Unstable {
                    detail,
                    attempts: attempt,
                });
            }
            tracing::warn!(%detail, "A range changed while it was planned; planning it again.");
            self.pages.remove(id)?;
        }
    }

    /// Splits a range of many users into parts of equal time span between its first user (of
    /// `first`, its first page) and its latest (`latest`, when already asked for).
    async fn split(
        &self,
        range: &Range,
        first: &[Listed],
        total: u64,
        latest: Option<Option<String>>,
    ) -> Result<Option<Vec<Window>>, WalkError> {
        let Some(earliest) = first.first().map(created_at).transpose()?.flatten() else {
            return Ok(None);
        };
        let latest = match latest {
            Some(asked) => asked,
            None => self.latest(&range.term()).await?,
        };
        let Some(latest) = latest else {
            return Ok(None);
        };
        let (a, z) = (millis(&earliest)?, millis(&latest)?);
        // Milliseconds [a, z]: never more parts than milliseconds.
        let span = u64::try_from(z - a + 1).unwrap_or(1).max(1);
        let parts = total.div_ceil(TARGET).clamp(2, FANOUT).min(span);
        if parts < 2 {
            // One millisecond holds them all.
            return Ok(Some(vec![
                Window::Instant {
                    id: self.new_id(),
                    at: earliest.clone(),
                },
                self.range(range.from(&earliest, false), None),
            ]));
        }
        let mut bounds: Vec<String> = (1..parts)
            .map(|i| a + i64::try_from(span * i / parts).unwrap_or(i64::MAX / 2))
            .map(from_millis)
            .collect();
        bounds.dedup();
        let share = total / parts;
        let mut windows = Vec::with_capacity(bounds.len() + 1);
        let mut lower = range.clone();
        for bound in bounds {
            let part = Range {
                to: bound.clone(),
                ..lower.clone()
            };
            windows.push(self.range(part, Some(share)));
            lower = range.from(&bound, true);
        }
        windows.push(self.range(lower, Some(share)));
        tracing::debug!(range = %range.term(), total, parts = windows.len(), "Range split by time.");
        Ok(Some(windows))
    }

    /// Cuts a range of a few thousand users at its 1,000th user's instant (see the module
    /// docs). `None` when page 9 is short: the range changed since its first page.
    async fn cut(
        &self,
        id: u64,
        range: &Range,
        first: &[Listed],
    ) -> Result<Option<Vec<Window>>, WalkError> {
        let term = range.term();
        // Kept when a run killed after it (and before the plan was saved) planned this range.
        let probe = match self.pages.load(id, LAST_PAGE) {
            Some((total, users)) => UsersPage { total, users },
            None => self.list(&term, "created_at:1", LAST_PAGE).await?,
        };
        if probe.users.len() < PER_PAGE as usize || first.len() < PER_PAGE as usize {
            return Ok(None);
        }
        if let Some(t) = single_instant(&probe.users)? {
            // A cluster reaches the 1,000th user: the pages until it starts, the instant whole
            // (rather than nine pages of it), then what follows it.
            return Ok(Some(vec![
                Window::Pages {
                    id,
                    range: range.clone(),
                    cut: Some(t.clone()),
                },
                Window::Instant {
                    id: self.new_id(),
                    at: t.clone(),
                },
                self.range(range.from(&t, false), None),
            ]));
        }
        let mut last = None;
        for user in &probe.users {
            last = last.max(created_at(user)?);
        }
        let last =
            last.ok_or_else(|| WalkError::BadUser("the 1,000th user has no created_at".into()))?;
        self.pages.save(id, LAST_PAGE, probe.total, &probe.users)?;
        tracing::debug!(range = %term, %last, "Range cut at its 1,000th user.");
        Ok(Some(vec![
            Window::Pages {
                id,
                range: range.clone(),
                cut: Some(last.clone()),
            },
            self.range(range.from(&last, true), None),
        ]))
    }

    /// The `created_at` of the latest user of a range; `None` when it holds none (any more).
    async fn latest(&self, term: &str) -> Result<Option<String>, WalkError> {
        let query = ListQuery {
            q: Some(self.with_query(term)),
            sort: Some("created_at:-1".into()),
            page: 0,
            per_page: 1,
            fields: Some(("user_id,created_at".into(), true)),
        };
        let page = self.send(&query).await?;
        Ok(page.users.first().map(created_at).transpose()?.flatten())
    }

    /// Reads what a planned window still misses into [`Pages`]: its pages (skipping those
    /// kept), up to [`Walk::fan`] at once, or the instant whole.
    ///
    /// The fan is 1 while the plan holds over twice as many windows as the run has workers:
    /// each window then has one page in flight, and a kill repeats at most one page per window.
    /// Near the end of the walk the fan widens, so the last windows' pages (independent once
    /// the first page gave the total) go at once and those windows take a round trip or two
    /// rather than ten; the workers still bound the pages in flight, so a kill repeats no more
    /// pages than the plan has windows.
    pub async fn read(&self, window: &Window) -> Result<(), WalkError> {
        match window {
            Window::Range { .. } => Ok(()),
            Window::Pages { id, range, cut } => self.read_pages(*id, range, cut.as_deref()).await,
            Window::Instant { id, at } => {
                if self.pages.load(*id, 0).is_some() {
                    return Ok(());
                }
                let (users, _) = self.read_instant(*id, at).await?;
                self.pages.replace(*id, &users)?;
                Ok(())
            }
        }
    }

    async fn read_pages(&self, id: u64, range: &Range, cut: Option<&str>) -> Result<(), WalkError> {
        let term = range.term();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (total, first) = self.page(id, &term, 0).await?;
            // The pages the window needs: up to its total, or (with a cut) up to the page
            // that reaches the cut, at most the cap's last.
            let last = match cut {
                None if total > CAP => LAST_PAGE,
                None => (total.div_ceil(u64::from(PER_PAGE)).max(1) - 1) as u32,
                Some(_) => LAST_PAGE,
            };
            let mut check = PageCheck {
                term: &term,
                cut,
                total,
                held: 0,
            };
            let mut problem = match check.next(0, first)? {
                Step::More => None,
                Step::Done => {
                    return Ok(());
                }
                Step::Problem(detail) => Some(detail),
            };
            if problem.is_none() {
                let term = &term;
                let mut next = 1;
                let mut rest = futures::stream::FuturesOrdered::new();
                // In page order, as many at once as the fan allows now; leaving the loop early
                // drops the requests still in flight.
                // A window cut at a cluster (page 9 one instant throughout, not kept) ends
                // where the cluster starts, which may be any page: read ahead, it would ask for
                // pages past it.
                let at_cluster = cut.is_some() && self.pages.load(id, LAST_PAGE).is_none();
                loop {
                    let fan = if at_cluster {
                        1
                    } else {
                        self.fan.load(atomic::Ordering::Relaxed).max(1)
                    };
                    while next <= last && rest.len() < fan {
                        let page = next;
                        rest.push_back(async move {
                            self.page(id, term, page)
                                .await
                                .map(|(_, users)| (page, users))
                        });
                        next += 1;
                    }
                    let Some(answer) = rest.next().await else {
                        break;
                    };
                    let (page, users) = answer?;
                    match check.next(page, users)? {
                        Step::More => {}
                        Step::Done => return Ok(()),
                        Step::Problem(detail) => {
                            problem = Some(detail);
                            break;
                        }
                    }
                }
            }
            let detail = problem
                .unwrap_or_else(|| format!("{term}: total {total}, pages held {}", check.held));
            // Users were deleted (or search caught up) between pages: read the window again
            // rather than risk a user missed between two pages.
            if attempt >= STABILITY_ATTEMPTS {
                return Err(WalkError::Unstable {
                    detail,
                    attempts: attempt,
                });
            }
            tracing::warn!(%detail, "A window changed while it was read; reading it again.");
            self.pages.remove(id)?;
        }
    }

    /// One page of a window: kept in [`Pages`], or read (and kept) now.
    async fn page(&self, id: u64, term: &str, page: u32) -> Result<(u64, Vec<Listed>), WalkError> {
        let answer = self.kept(id, page, term, "created_at:1", page).await?;
        Ok((answer.total, answer.users))
    }

    /// Page `page` of `term` sorted by `sort`: kept in slot `slot` of window `id`, or read (and
    /// kept there) now.
    async fn kept(
        &self,
        id: u64,
        slot: u32,
        term: &str,
        sort: &str,
        page: u32,
    ) -> Result<UsersPage, WalkError> {
        if let Some((total, users)) = self.pages.load(id, slot) {
            return Ok(UsersPage { total, users });
        }
        let answer = self.list(term, sort, page).await?;
        self.pages.save(id, slot, answer.total, &answer.users)?;
        Ok(answer)
    }

    /// A read window's users, sorted by (`created_at`, `user_id`), from its kept pages.
    pub fn users(&self, window: &Window) -> Result<Vec<Listed>, WalkError> {
        let missing = |page: u32| {
            WalkError::Pages(PageError {
                path: format!("window {} page {page}", window.id()).into(),
                source: std::io::ErrorKind::NotFound.into(),
            })
        };
        let mut users = Vec::new();
        let mut kept = self.pages.load_window(window.id());
        let mut take = |page: u32| kept.remove(&page).ok_or_else(|| missing(page));
        match window {
            Window::Range { .. } => {}
            Window::Instant { .. } => {
                users = take(0)?.1;
            }
            Window::Pages { cut, .. } => {
                for page in 0..=LAST_PAGE {
                    let (total, held) = take(page)?;
                    let last = match cut {
                        None => u64::from(page + 1) * u64::from(PER_PAGE) >= total,
                        Some(cut) => reaches(&held, cut)?,
                    };
                    users.extend(held);
                    if last {
                        break;
                    }
                }
                if let Some(cut) = cut {
                    let mut before = Vec::with_capacity(users.len());
                    for user in users {
                        if created_at(&user)?.as_deref() < Some(cut.as_str()) {
                            before.push(user);
                        }
                    }
                    users = before;
                }
            }
        }
        sort_users(&mut users)?;
        Ok(users)
    }

    /// Reads every user of one exact instant, splitting by user_id prefix past the cap.
    async fn read_instant(&self, id: u64, instant: &str) -> Result<(Vec<Listed>, u64), WalkError> {
        let range = format!("created_at:[{instant} TO {instant}]");
        let ascending = InstantPages {
            window: id,
            first_slot: ASCENDING_SLOTS,
        };
        let (total, first) = self
            .read_window(&range, "user_id:1", Some(ascending))
            .await?;
        if total <= CAP {
            let mut users = first;
            sort_by_user_id(&mut users);
            return Ok((users, 1));
        }
        if total <= 2 * CAP {
            // Up to twice the cap: the first 1,000 by user_id ascending and the rest from the
            // other end, descending. user_ids are unique, so the two orders meet exactly.
            if let Some(users) = self
                .read_both_ends(id, &range, total, first.clone())
                .await?
            {
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
        id: u64,
        range: &str,
        total: u64,
        first: Vec<Listed>,
    ) -> Result<Option<Vec<Listed>>, WalkError> {
        let slots = |first_slot| {
            Some(InstantPages {
                window: id,
                first_slot,
            })
        };
        let ascending = (1..(CAP / u64::from(PER_PAGE)) as u32)
            .map(|p| (p, "user_id:1", slots(ASCENDING_SLOTS)));
        let descending_pages = (total - CAP).div_ceil(u64::from(PER_PAGE)) as u32;
        let descending = (0..descending_pages).map(|p| (p, "user_id:-1", slots(DESCENDING_SLOTS)));
        let pages: Vec<Vec<Listed>> = futures::stream::iter(ascending.chain(descending))
            .map(|(page, sort, keep)| async move {
                self.kept_list(keep, range, sort, page)
                    .await
                    .map(|p| p.users)
            })
            // A cluster sits on the walk's longest path: its pages go at once, within the
            // permits, each kept as it arrives.
            .buffered(self.client.workers().goal())
            .try_collect()
            .await?;
        let mut users = first;
        users.extend(pages.into_iter().flatten());
        sort_by_user_id(&mut users);
        users.dedup_by(|a, b| user_id(a) == user_id(b));
        if users.len() as u64 != total {
            // The slice changed while it was read: its pages are read again.
            self.pages.remove(id)?;
            return Ok(None);
        }
        Ok(Some(users))
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
                // Not kept: an instant of over 2,000 users is read again whole after a kill.
                let (child_total, child_users) = self.read_window(&q, "user_id:1", None).await?;
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

    /// One page of an instant's query: kept in its window's slot when `keep` says so (see
    /// [`Walk::kept`]), else only read.
    async fn kept_list(
        &self,
        keep: Option<InstantPages>,
        term: &str,
        sort: &str,
        page: u32,
    ) -> Result<UsersPage, WalkError> {
        match keep {
            Some(keep) => {
                self.kept(keep.window, keep.first_slot + page, term, sort, page)
                    .await
            }
            None => self.list(term, sort, page).await,
        }
    }

    /// One page of `term` (with the user's query).
    async fn list(&self, term: &str, sort: &str, page: u32) -> Result<UsersPage, WalkError> {
        let query = ListQuery {
            q: Some(self.with_query(term)),
            sort: Some(sort.to_string()),
            page,
            per_page: PER_PAGE,
            fields: self.fields.clone(),
        };
        self.send(&query).await
    }

    /// Sends one list request holding a worker permit: the run's workers bound what is in
    /// flight, whichever window asks.
    async fn send(&self, query: &ListQuery) -> Result<UsersPage, WalkError> {
        let _permit = self.client.workers().acquire().await;
        Ok(self.client.list_users(query).await?)
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
        let page = self.send(&query).await?;
        Ok(page
            .users
            .first()
            .map(user_id)
            .unwrap_or_default()
            .to_string())
    }

    /// Reads up to 1,000 users of a query sorted by `sort` (for an instant): all of them
    /// when they fit under the cap, only the first page otherwise. Returns the query's total and
    /// the users read, checked against each other.
    ///
    /// `keep`: the instant window (and the first of its page slots) to keep its pages in as
    /// they arrive, so that a run killed in the middle of a large instant asks again only for
    /// the pages in flight (see [`InstantPages`]).
    async fn read_window(
        &self,
        term: &str,
        sort: &str,
        keep: Option<InstantPages>,
    ) -> Result<(u64, Vec<Listed>), WalkError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let first = self.kept_list(keep, term, sort, 0).await?;
            let total = first.total;
            let mut users = first.users;
            if total > CAP {
                return Ok((total, users));
            }
            let pages = total.div_ceil(u64::from(PER_PAGE)) as u32;
            // At once, within the permits, as in `read_both_ends`: instants are read whole.
            let rest: Vec<Vec<Listed>> = futures::stream::iter(1..pages)
                .map(|page| async move {
                    self.kept_list(keep, term, sort, page)
                        .await
                        .map(|p| p.users)
                })
                .buffered(self.client.workers().goal())
                .try_collect()
                .await?;
            users.extend(rest.into_iter().flatten());
            if users.len() as u64 == total {
                return Ok((total, users));
            }
            // Users were deleted (or search caught up) between pages: read the window again
            // rather than risk a user missed between two pages.
            if let Some(keep) = keep {
                self.pages.remove(keep.window)?;
            }
            let detail = format!("{term}: total {total}, pages held {}", users.len());
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

/// Where an instant window keeps the pages of its queries as they arrive, beside its whole
/// (sorted) users, which are its page 0 once read: the pages of the instant in `user_id`
/// order from slot [`ASCENDING_SLOTS`], those read from the other end from
/// [`DESCENDING_SLOTS`]. An instant's pages are numbered by its own queries, which are the
/// same in a resumed run, so a slot always holds the same page.
#[derive(Debug, Clone, Copy)]
struct InstantPages {
    window: u64,
    first_slot: u32,
}

/// The first slot of an instant's pages in `user_id` order (see [`InstantPages`]).
const ASCENDING_SLOTS: u32 = 1_000;
/// The first slot of an instant's pages in descending `user_id` order.
const DESCENDING_SLOTS: u32 = 2_000;

/// What a window's next page (in order) says.
enum Step {
    /// Read on.
    More,
    /// The window is whole.
    Done,
    /// The pages do not add up (the window changed while it was read).
    Problem(String),
}

/// Checks a window's pages in order: they add up to its total, or reach its cut.
struct PageCheck<'a> {
    term: &'a str,
    cut: Option<&'a str>,
    /// The total the window's first page gave.
    total: u64,
    /// Users on the pages checked so far.
    held: u64,
}

impl PageCheck<'_> {
    fn next(&mut self, page: u32, users: Vec<Listed>) -> Result<Step, WalkError> {
        let (term, total) = (self.term, self.total);
        self.held += users.len() as u64;
        Ok(match self.cut {
            None if total > CAP => Step::Problem(format!("{term}: total {total}, over the cap")),
            None if u64::from(page + 1) * u64::from(PER_PAGE) >= total => {
                if self.held == total {
                    Step::Done
                } else {
                    Step::Problem(format!("{term}: total {total}, pages held {}", self.held))
                }
            }
            None => Step::More,
            Some(cut) => {
                if reaches(&users, cut)? {
                    Step::Done
                } else if users.len() < PER_PAGE as usize || page == LAST_PAGE {
                    Step::Problem(format!(
                        "{term}: page {page} held {} users, none created at {cut} or later",
                        users.len()
                    ))
                } else {
                    Step::More
                }
            }
        })
    }
}

/// Whether a page (sorted by `created_at`) reaches `cut`: holds a user created at it or later.
fn reaches(users: &[Listed], cut: &str) -> Result<bool, WalkError> {
    for user in users {
        if created_at(user)?.as_deref() >= Some(cut) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Milliseconds since the epoch of a canonical timestamp.
fn millis(at: &str) -> Result<i64, WalkError> {
    DateTime::parse_from_rfc3339(at)
        .map(|t| t.timestamp_millis())
        .map_err(|e| WalkError::BadUser(format!("created_at {at:?}: {e}")))
}

/// The canonical timestamp of milliseconds since the epoch.
fn from_millis(ms: i64) -> String {
    canonical(DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default())
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
    if is_canonical(raw) {
        // As Auth0 sends it: no parse, which was a tenth of an export's CPU.
        return Ok(Some(raw.to_string()));
    }
    let parsed = DateTime::parse_from_rfc3339(raw)
        .map_err(|e| WalkError::BadUser(format!("{}: created_at {raw:?}: {e}", user_id(user))))?;
    Ok(Some(canonical(parsed.with_timezone(&Utc))))
}

/// Whether `raw` is already a valid time in canonical form: the shape of
/// `YYYY-MM-DDTHH:MM:SS.mmmZ` ([`crate::query::is_canonical`]), a month 01-12, a day within
/// its month, an hour below 24, minutes and seconds below 60. Any other form goes to chrono.
fn is_canonical(raw: &str) -> bool {
    if !crate::query::is_canonical(raw) {
        return false;
    }
    let b = raw.as_bytes();
    let two = |at: usize| u32::from(b[at] - b'0') * 10 + u32::from(b[at + 1] - b'0');
    let (year, month, day) = (two(0) * 100 + two(2), two(5), two(8));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    (1..=12).contains(&month)
        && (1..=days).contains(&day)
        && two(11) < 24
        && two(14) < 60
        && two(17) < 60
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
    let mut keyed: Vec<(String, usize)> = Vec::with_capacity(users.len());
    for (i, u) in users.iter().enumerate() {
        let created = created_at(u)?
            .ok_or_else(|| WalkError::BadUser(format!("{} has no created_at", user_id(u))))?;
        keyed.push((created, i));
    }
    keyed.sort_by(|(a, i), (b, j)| {
        a.cmp(b)
            .then_with(|| user_id(&users[*i]).cmp(user_id(&users[*j])))
    });
    let order: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
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
    fn canonical_timestamps_are_taken_as_sent_and_others_parsed() {
        let user = |at: &str| {
            Listed::from_json(&format!(r#"{{"user_id":"u","created_at":"{at}"}}"#)).unwrap()
        };
        let at = |raw: &str| created_at(&user(raw)).map(Option::unwrap);
        assert!(is_canonical("2020-02-29T23:59:59.999Z"));
        assert!(is_canonical("2000-02-29T00:00:00.000Z"));
        assert_eq!(
            at("2020-02-29T23:59:59.999Z").unwrap(),
            "2020-02-29T23:59:59.999Z"
        );
        // Other forms of the same instant come out canonical.
        assert_eq!(
            at("2020-03-01T01:00:00+01:00").unwrap(),
            "2020-03-01T00:00:00.000Z"
        );
        assert_eq!(
            at("2020-03-01T00:00:00.5Z").unwrap(),
            "2020-03-01T00:00:00.500Z"
        );
        // Canonical in shape, not a time: refused, as chrono refuses it.
        for bad in [
            "2020-13-01T00:00:00.000Z",
            "2020-04-31T00:00:00.000Z",
            "2021-02-30T00:00:00.000Z",
            "2021-02-29T00:00:00.000Z",
            "1900-02-29T00:00:00.000Z",
            "2020-01-01T24:00:00.000Z",
            "2020-01-01T00:60:00.000Z",
        ] {
            assert!(!is_canonical(bad), "{bad}");
            assert!(at(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn apply_order_permutes() {
        let mut v = vec!["a", "b", "c"];
        apply_order(&mut v, &[2, 0, 1]);
        assert_eq!(v, ["c", "a", "b"]);
    }
}
