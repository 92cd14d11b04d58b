//! Retention rules: which of a series of timed snapshots to keep, as
//! `--keep-last/--keep-hourly/--keep-daily/--keep-weekly` say. Shared by
//! every command that prunes (the backup repository's `backup prune`, and
//! a prune over snapshot files).

/// How many snapshots to keep, by rule. A snapshot is kept if any rule
/// keeps it; the newest is always kept.
///
/// * `last`: the N newest;
/// * `hourly`/`daily`/`weekly`: the newest snapshot of each of the N most
///   recent hours/days/weeks (UTC; weeks start on Monday) that have one.
///
/// ```
/// use etcdsnap::KeepRules;
/// let hour = 3600;
/// // Six snapshots, two per hour, oldest first.
/// let times = [0, 1800, hour, hour + 1800, 2 * hour, 2 * hour + 1800];
/// let mut rules = KeepRules::default();
/// rules.last = 1;
/// rules.hourly = 2;
/// let keep = rules.apply(&times);
/// let kept: Vec<usize> = (0..6).filter(|&i| !keep[i].is_empty()).collect();
/// // The newest (last, hourly), and the newest of the hour before (hourly).
/// assert_eq!(kept, vec![3, 5]);
/// assert_eq!(keep[5], vec!["last", "hourly"]);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeepRules {
    /// Keep the N newest.
    pub last: u32,
    /// Keep the newest of each of the N most recent hours.
    pub hourly: u32,
    /// Keep the newest of each of the N most recent days.
    pub daily: u32,
    /// Keep the newest of each of the N most recent weeks.
    pub weekly: u32,
}

/// Monday-based week number of a Unix time (1970-01-01 was a Thursday).
fn week(secs: i64) -> i64 {
    (secs.div_euclid(86_400) + 3).div_euclid(7)
}

impl KeepRules {
    /// Whether no rule is set (which would keep only the newest).
    pub fn is_empty(&self) -> bool {
        self.last == 0 && self.hourly == 0 && self.daily == 0 && self.weekly == 0
    }

    /// For snapshots taken at `times` (Unix seconds, any order), the rules
    /// that keep each one, in the order last, hourly, daily, weekly,
    /// newest; an empty list means it may be removed.
    pub fn apply(&self, times: &[i64]) -> Vec<Vec<&'static str>> {
        let mut order: Vec<usize> = (0..times.len()).collect();
        // Newest first; ties broken by position, so the result is stable.
        order.sort_by(|&a, &b| {
            let ta = times.get(a).copied().unwrap_or(0);
            let tb = times.get(b).copied().unwrap_or(0);
            tb.cmp(&ta).then(b.cmp(&a))
        });
        let mut reasons: Vec<Vec<&'static str>> = vec![Vec::new(); times.len()];
        type Bucket = fn(i64) -> i64;
        let buckets: [(&'static str, u32, Bucket); 3] = [
            ("hourly", self.hourly, |t| t.div_euclid(3600)),
            ("daily", self.daily, |t| t.div_euclid(86_400)),
            ("weekly", self.weekly, week),
        ];
        for (rank, &i) in order.iter().enumerate() {
            if rank < self.last as usize
                && let Some(r) = reasons.get_mut(i)
            {
                r.push("last");
            }
        }
        for (name, n, bucket) in buckets {
            let mut last_bucket = None;
            let mut kept = 0u32;
            for &i in &order {
                if kept >= n {
                    break;
                }
                let b = bucket(times.get(i).copied().unwrap_or(0));
                if last_bucket != Some(b) {
                    last_bucket = Some(b);
                    kept += 1;
                    if let Some(r) = reasons.get_mut(i) {
                        r.push(name);
                    }
                }
            }
        }
        if let Some(r) = order.first().and_then(|&i| reasons.get_mut(i))
            && r.is_empty()
        {
            r.push("newest");
        }
        reasons
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;
    const D: i64 = 86_400;

    fn kept(rules: KeepRules, times: &[i64]) -> Vec<i64> {
        let r = rules.apply(times);
        let mut v: Vec<i64> = times
            .iter()
            .zip(&r)
            .filter(|(_, r)| !r.is_empty())
            .map(|(t, _)| *t)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn rules() {
        // Hourly snapshots over three days, starting Monday 2024-01-01.
        let monday = 1_704_067_200;
        let times: Vec<i64> = (0..72).map(|h| monday + h * H + 60).collect();
        let last3 = KeepRules {
            last: 3,
            ..KeepRules::default()
        };
        assert_eq!(kept(last3, &times), times[69..].to_vec());
        let daily = KeepRules {
            daily: 2,
            ..KeepRules::default()
        };
        // The newest of day 3 and of day 2.
        assert_eq!(kept(daily, &times), vec![times[47], times[71]]);
        let weekly = KeepRules {
            weekly: 4,
            ..KeepRules::default()
        };
        assert_eq!(kept(weekly, &times), vec![times[71]]);
        let hourly = KeepRules {
            hourly: 5,
            daily: 3,
            ..KeepRules::default()
        };
        let mut want = times[67..].to_vec();
        want.insert(0, times[47]);
        want.insert(0, times[23]);
        assert_eq!(kept(hourly, &times), want);
        // No rule keeps only the newest.
        assert_eq!(kept(KeepRules::default(), &times), vec![times[71]]);
        assert_eq!(week(monday), week(monday + 6 * D + 23 * H));
        assert_ne!(week(monday), week(monday - 1));
        assert!(KeepRules::default().apply(&[]).is_empty());
    }
}
