//! The run's requests second by second (sent, by endpoint group; answered 2xx, 429, retried,
//! failed in transit or with a 5xx), for `--report`'s charts.
//!
//! The clock starts when the [`Client`](super::Client) is made, before its first request;
//! an event is counted in the second it happened, as `elapsed.as_secs()`. A report written at
//! `elapsed` shows one point for every second begun, `elapsed.as_secs() + 1` of them (the
//! seconds without requests too), so a chart's points are the run's seconds.
//!
//! Memory is one small [`Point`] (32 bytes) per second of run. A run longer than
//! [`MAX_POINTS`] seconds (about 28 hours) merges its points in pairs and from then on counts
//! two seconds a point (then four, ...): the timeline never holds more than `MAX_POINTS`
//! points (3.2 MB), and its totals stay exact.
//!
//! One short mutex guards it: a request costs two or three uncontended locks of a few
//! nanoseconds, against a round trip of milliseconds.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::net::pace::Group;

/// How many points a timeline holds at most before it merges them in pairs.
pub const MAX_POINTS: usize = 100_000;

/// What happened to a request, as the timeline counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A request went out (the same count as the summary's `requests`), to an endpoint
    /// group of the Management API (`None`: a file behind a link the tenant handed out).
    Sent(Option<Group>),
    /// A 2xx answer.
    Ok,
    /// A 429 of the rate limit (the summary's `throttled`).
    Throttled,
    /// A request sent again after a transient failure (the summary's `retries`).
    Retry,
    /// A transient failure: a 5xx, a timeout, a dropped connection or a broken answer.
    Fault,
}

/// The counts of one point of the timeline (one second, or more once merged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Point {
    pub requests: u32,
    pub ok: u32,
    pub throttled: u32,
    pub retries: u32,
    pub faults: u32,
    /// `requests` by endpoint group, in the order of [`Group::ALL`].
    #[serde(skip)]
    pub groups: [u32; 3],
}

impl Point {
    fn add(&mut self, event: Event) {
        if let Event::Sent(Some(group)) = event {
            let count = &mut self.groups[group.index()];
            *count = count.saturating_add(1);
        }
        let count = match event {
            Event::Sent(_) => &mut self.requests,
            Event::Ok => &mut self.ok,
            Event::Throttled => &mut self.throttled,
            Event::Retry => &mut self.retries,
            Event::Fault => &mut self.faults,
        };
        *count = count.saturating_add(1);
    }

    fn merge(self, other: Point) -> Point {
        Point {
            requests: self.requests.saturating_add(other.requests),
            ok: self.ok.saturating_add(other.ok),
            throttled: self.throttled.saturating_add(other.throttled),
            retries: self.retries.saturating_add(other.retries),
            faults: self.faults.saturating_add(other.faults),
            groups: std::array::from_fn(|i| self.groups[i].saturating_add(other.groups[i])),
        }
    }
}

/// The timeline a client records into.
#[derive(Debug)]
pub struct Timeline {
    started: Instant,
    started_at: DateTime<Utc>,
    points: Mutex<Points>,
}

#[derive(Debug, Clone)]
struct Points {
    /// Seconds per point: 1, until a long run merges them.
    width: u64,
    points: Vec<Point>,
}

impl Points {
    fn add(&mut self, second: u64, event: Event) {
        self.slot(second).add(event);
    }

    /// The point that counts `second`, with a point for every second before it.
    fn slot(&mut self, second: u64) -> &mut Point {
        while second / self.width >= MAX_POINTS as u64 {
            self.halve();
        }
        let at = (second / self.width) as usize;
        if self.points.len() <= at {
            self.points.resize(at + 1, Point::default());
        }
        &mut self.points[at]
    }

    /// Merges the points in pairs: each then counts twice the seconds.
    fn halve(&mut self) {
        self.points = self
            .points
            .chunks(2)
            .map(|pair| pair.iter().fold(Point::default(), |a, b| a.merge(*b)))
            .collect();
        self.width *= 2;
    }
}

impl Default for Timeline {
    fn default() -> Timeline {
        Timeline {
            started: Instant::now(),
            started_at: Utc::now(),
            points: Mutex::new(Points {
                width: 1,
                points: Vec::new(),
            }),
        }
    }
}

/// The timeline as it stood at one moment: what a report shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// When the clock started (the client was made), in UTC.
    pub started_at: DateTime<Utc>,
    /// How long it had run when the snapshot was taken.
    pub elapsed: Duration,
    /// Seconds per point: 1 unless the run was longer than [`MAX_POINTS`] seconds.
    pub seconds_per_point: u64,
    /// One point per `seconds_per_point` begun: `elapsed / seconds_per_point + 1` (rounded
    /// down before adding 1).
    pub points: Vec<Point>,
}

impl Snapshot {
    /// The sums of every point: the run's totals.
    pub fn totals(&self) -> Point {
        self.points
            .iter()
            .fold(Point::default(), |a, b| a.merge(*b))
    }
}

impl Timeline {
    /// Counts `event` in the current second.
    pub fn record(&self, event: Event) {
        let second = self.started.elapsed().as_secs();
        self.lock().add(second, event);
    }

    /// The timeline now, with a point for every second begun.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot_at(self.started.elapsed())
    }

    fn snapshot_at(&self, elapsed: Duration) -> Snapshot {
        let mut points = self.lock().clone();
        // Up to the last second begun, where an event now would be counted.
        points.slot(elapsed.as_secs());
        Snapshot {
            started_at: self.started_at,
            elapsed,
            seconds_per_point: points.width,
            points: points.points,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Points> {
        // A panic while counting leaves counts, never a broken structure: go on with them.
        self.points.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_at(timeline: &Timeline, second: u64, event: Event) {
        timeline.lock().add(second, event);
    }

    #[test]
    fn a_snapshot_has_one_point_per_second_begun_quiet_seconds_included() {
        let timeline = Timeline::default();
        record_at(&timeline, 0, Event::Sent(Some(Group::UsersRead)));
        record_at(&timeline, 0, Event::Ok);
        record_at(&timeline, 2, Event::Sent(Some(Group::UsersWrite)));
        record_at(&timeline, 2, Event::Throttled);
        let snapshot = timeline.snapshot_at(Duration::from_millis(4_500));
        assert_eq!(snapshot.seconds_per_point, 1);
        assert_eq!(snapshot.points.len(), 5, "seconds 0 to 4");
        assert_eq!(snapshot.points[0].requests, 1);
        assert_eq!(snapshot.points[1], Point::default());
        assert_eq!(snapshot.points[2].throttled, 1);
        assert_eq!(snapshot.points[4], Point::default());
        let totals = snapshot.totals();
        assert_eq!((totals.requests, totals.ok, totals.throttled), (2, 1, 1));
        assert_eq!(totals.groups, [1, 1, 0], "by endpoint group");
        // A snapshot in the very first second still has its point.
        let early = Timeline::default().snapshot_at(Duration::from_millis(10));
        assert_eq!(early.points, vec![Point::default()]);
    }

    #[test]
    fn a_run_longer_than_the_cap_merges_points_in_pairs_and_keeps_its_totals() {
        let timeline = Timeline::default();
        for second in 0..MAX_POINTS as u64 {
            record_at(&timeline, second, Event::Sent(None));
        }
        assert_eq!(timeline.lock().width, 1);
        record_at(&timeline, MAX_POINTS as u64, Event::Retry);
        let snapshot = timeline.snapshot_at(Duration::from_secs(MAX_POINTS as u64));
        assert_eq!(snapshot.seconds_per_point, 2);
        assert_eq!(snapshot.points.len(), MAX_POINTS / 2 + 1);
        assert_eq!(snapshot.points[0].requests, 2);
        let totals = snapshot.totals();
        assert_eq!(totals.requests, MAX_POINTS as u32);
        assert_eq!(totals.retries, 1);
    }
}
