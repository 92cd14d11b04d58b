//! Which snapshots of a time series to keep: the newest N, and the newest
//! of each of the last H hours, D days and W ISO weeks that have one (the
//! rule restic and borg use). A pure function of the times, so the backup
//! repository can apply it to its own records.

use std::time::SystemTime;

use chrono::{DateTime, Datelike, Timelike, Utc};

/// How many snapshots to keep, by rule; a snapshot is kept if any rule
/// keeps it.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use etcdsnap::{KeepReason, RetentionPolicy};
///
/// let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// // One snapshot every 6 hours for 3 days, newest first.
/// let times: Vec<_> = (0..12).map(|i| t0 - Duration::from_secs(6 * 3600 * i)).collect();
/// let policy = RetentionPolicy::last(2).with_daily(3);
/// let keep = policy.apply(&times);
/// assert_eq!(keep[0], vec![KeepReason::Last, KeepReason::Daily]);
/// assert_eq!(keep[1], vec![KeepReason::Last]);
/// assert_eq!(keep.iter().filter(|r| !r.is_empty()).count(), 4);
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct RetentionPolicy {
    /// The newest N.
    pub keep_last: usize,
    /// The newest of each of the last H hours that have one.
    pub keep_hourly: usize,
    /// The newest of each of the last D days (UTC) that have one.
    pub keep_daily: usize,
    /// The newest of each of the last W ISO weeks that have one.
    pub keep_weekly: usize,
}

/// The period a time falls in (year, hour/day/week of it, hour).
type Bucket = fn(&DateTime<Utc>) -> (i32, u32, u32);

/// Why a snapshot is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum KeepReason {
    /// Among the newest `keep_last`.
    Last,
    /// The newest of its hour.
    Hourly,
    /// The newest of its day.
    Daily,
    /// The newest of its ISO week.
    Weekly,
    /// The newest snapshot that verifies: never deleted, whatever the rules.
    NewestSound,
}

impl KeepReason {
    /// A short name (`last`, `hourly`, `daily`, `weekly`, `newest sound`).
    pub fn name(self) -> &'static str {
        match self {
            KeepReason::Last => "last",
            KeepReason::Hourly => "hourly",
            KeepReason::Daily => "daily",
            KeepReason::Weekly => "weekly",
            KeepReason::NewestSound => "newest sound",
        }
    }
}

impl RetentionPolicy {
    /// Keeps the newest `n` (and nothing else until other rules are added).
    pub fn last(n: usize) -> RetentionPolicy {
        RetentionPolicy {
            keep_last: n,
            ..RetentionPolicy::default()
        }
    }

    /// Keeps the newest `n` (besides what the other rules keep).
    pub fn with_last(mut self, n: usize) -> RetentionPolicy {
        self.keep_last = n;
        self
    }

    /// Also keeps the newest of each of the last `h` hours.
    pub fn with_hourly(mut self, h: usize) -> RetentionPolicy {
        self.keep_hourly = h;
        self
    }

    /// Also keeps the newest of each of the last `d` days.
    pub fn with_daily(mut self, d: usize) -> RetentionPolicy {
        self.keep_daily = d;
        self
    }

    /// Also keeps the newest of each of the last `w` ISO weeks.
    pub fn with_weekly(mut self, w: usize) -> RetentionPolicy {
        self.keep_weekly = w;
        self
    }

    /// Whether no rule keeps anything.
    pub fn is_empty(&self) -> bool {
        self.keep_last == 0
            && self.keep_hourly == 0
            && self.keep_daily == 0
            && self.keep_weekly == 0
    }

    /// For each time (in any order), why it is kept: empty means delete.
    /// Of several snapshots with the same time, the first given counts as
    /// the newer.
    pub fn apply(&self, times: &[SystemTime]) -> Vec<Vec<KeepReason>> {
        // Hours, days and weeks are UTC's.
        let times: Vec<DateTime<Utc>> = times.iter().map(|&t| DateTime::from(t)).collect();
        let mut order: Vec<usize> = (0..times.len()).collect();
        // Newest first; stable, so equal times keep their given order.
        order.sort_by(|&a, &b| times[b].cmp(&times[a]));
        let mut out = vec![Vec::new(); times.len()];
        for &i in order.iter().take(self.keep_last) {
            out[i].push(KeepReason::Last);
        }
        let rules: [(usize, KeepReason, Bucket); 3] = [
            (self.keep_hourly, KeepReason::Hourly, |t| {
                (t.year(), t.ordinal(), t.hour())
            }),
            (self.keep_daily, KeepReason::Daily, |t| {
                (t.year(), t.ordinal(), 0)
            }),
            (self.keep_weekly, KeepReason::Weekly, |t| {
                let w = t.iso_week();
                (w.year(), w.week(), 0)
            }),
        ];
        for (count, reason, bucket) in rules {
            let mut last = None;
            let mut kept = 0;
            for &i in &order {
                if kept >= count {
                    break;
                }
                let b = bucket(&times[i]);
                if last != Some(b) {
                    last = Some(b);
                    out[i].push(reason);
                    kept += 1;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(s: &str) -> SystemTime {
        super::super::timestamp::parse(s).expect(s).into()
    }

    #[test]
    fn buckets_keep_the_newest_of_each() {
        let times: Vec<_> = [
            "20250106T120000Z", // Monday, week 2
            "20250106T110000Z",
            "20250106T103000Z",
            "20250106T100000Z",
            "20250105T230000Z", // Sunday, week 1
            "20250104T230000Z",
            "20241230T000000Z", // Monday of ISO week 1 of 2025
            "20241229T235959Z", // ISO week 52 of 2024
        ]
        .iter()
        .map(|s| at(s))
        .collect();
        let p = RetentionPolicy {
            keep_last: 1,
            keep_hourly: 3,
            keep_daily: 2,
            keep_weekly: 3,
        };
        let k = p.apply(&times);
        use KeepReason::*;
        assert_eq!(k[0], vec![Last, Hourly, Daily, Weekly]);
        assert_eq!(k[1], vec![Hourly]);
        assert_eq!(k[2], vec![Hourly]); // 10:30 is the newest of hour 10
        assert_eq!(k[3], Vec::<KeepReason>::new());
        assert_eq!(k[4], vec![Daily, Weekly]);
        assert_eq!(k[5], Vec::<KeepReason>::new());
        assert_eq!(k[6], Vec::<KeepReason>::new()); // same ISO week as 5 Jan
        assert_eq!(k[7], vec![Weekly]);
    }

    #[test]
    fn order_of_input_does_not_matter() {
        let t0 = at("20250101T000000Z");
        let times: Vec<_> = (0..50)
            .map(|i| t0 + Duration::from_secs(37 * 60 * i))
            .collect();
        let p = RetentionPolicy {
            keep_last: 3,
            keep_hourly: 5,
            keep_daily: 1,
            ..Default::default()
        };
        let a = p.apply(&times);
        let mut rev = times.clone();
        rev.reverse();
        let mut b = p.apply(&rev);
        b.reverse();
        assert_eq!(a, b);
        assert!(!a[49].is_empty(), "the newest is kept");
        assert!(a[0].is_empty(), "the oldest is not");
        assert!(
            RetentionPolicy::default()
                .apply(&times)
                .iter()
                .all(Vec::is_empty)
        );
    }
}
