//! `--full-every` as a cron expression: the five fields of crontab(5)
//! (minute, hour, day of month, month, day of week), read in UTC, with
//! Vixie cron's rules (the cron of most Linux systems):
//!
//! * each field a comma list of `*`, `N` or `N-M`, each optionally
//!   followed by `/STEP`; `N/STEP` runs from N to the field's end;
//! * months `jan`..`dec` and days `sun`..`sat` by name (any case); day of
//!   week 0 or 7 is Sunday;
//! * when both day fields are restricted (neither starts with `*`), a day
//!   matches if EITHER matches; otherwise both must (`0 0 1 * mon` runs on
//!   the 1st and on every Monday);
//! * `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily`
//!   (`@midnight`), `@hourly`.
//!
//! A small parser of our own: the crates that do this pull in several
//! procedural macros, or want a seconds field.

use std::time::SystemTime;

use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDate, TimeZone, Timelike, Utc};

/// The days searched for the next match: past eight years every
/// expression that matches at all has matched (a 29 February on a given
/// weekday repeats within 28 years, but such a day alone never needs
/// both day fields to agree: they are ORed).
const SEARCH_DAYS: i64 = 366 * 8 + 2;

/// A parsed five-field cron expression, evaluated in UTC.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use etcdsnap::agent::CronSchedule;
/// let s = CronSchedule::parse("30 */6 * * *").unwrap();
/// // 2026-01-01T00:00:00Z
/// let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
/// assert_eq!(s.next_after(t), Some(t + Duration::from_secs(30 * 60)));
/// ```
#[derive(Debug, Clone)]
pub struct CronSchedule {
    text: String,
    minutes: u64,
    hours: u32,
    /// Bits 1..=31.
    days: u32,
    /// Bits 1..=12.
    months: u16,
    /// Bits 0..=6 (Sunday is 0).
    weekdays: u8,
    /// Whether the day-of-month field starts with `*`.
    days_star: bool,
    /// Whether the day-of-week field starts with `*`.
    weekdays_star: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// One field's bounds and names (names number from `lo`).
struct Field {
    what: &'static str,
    lo: u32,
    hi: u32,
    names: &'static [&'static str],
}

impl Field {
    fn value(&self, text: &str) -> Result<u32, String> {
        let lower = text.to_ascii_lowercase();
        if let Some(i) = self.names.iter().position(|n| *n == lower) {
            return Ok(self.lo + i as u32);
        }
        let v: u32 = text
            .parse()
            .map_err(|_| format!("{}: {text:?} is not a number", self.what))?;
        if v < self.lo || v > self.hi {
            return Err(format!(
                "{}: {v} is outside {}-{}",
                self.what, self.lo, self.hi
            ));
        }
        Ok(v)
    }

    /// The set of values `text` names, as bits.
    fn parse(&self, text: &str) -> Result<u64, String> {
        let mut bits = 0u64;
        for item in text.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => {
                    let step: u32 = s
                        .parse()
                        .map_err(|_| format!("{}: step {s:?} is not a number", self.what))?;
                    if step == 0 || step > self.hi {
                        return Err(format!("{}: step {step} is out of range", self.what));
                    }
                    (r, step)
                }
                None => (item, 1),
            };
            let (from, to) = if range == "*" {
                (self.lo, self.hi)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.value(a)?, self.value(b)?);
                if a > b {
                    return Err(format!("{}: range {range:?} runs backwards", self.what));
                }
                (a, b)
            } else if range.is_empty() {
                return Err(format!("{}: empty item in {text:?}", self.what));
            } else {
                let a = self.value(range)?;
                // `N/STEP`: from N to the end.
                (a, if item.contains('/') { self.hi } else { a })
            };
            let mut v = from;
            while v <= to {
                bits |= 1 << v;
                v += step;
            }
        }
        Ok(bits)
    }
}

impl CronSchedule {
    /// Parses five whitespace-separated fields, or one of the `@` names.
    pub fn parse(text: &str) -> Result<CronSchedule, String> {
        let expanded = match text.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            t if t.starts_with('@') => return Err(format!("unknown cron name {t:?}")),
            t => t,
        };
        let f: Vec<&str> = expanded.split_whitespace().collect();
        let [min, hour, dom, mon, dow] = f[..] else {
            return Err(format!(
                "a cron expression has 5 fields (minute hour day-of-month month day-of-week), {text:?} has {}",
                f.len()
            ));
        };
        let field = |what, lo, hi, names| Field {
            what,
            lo,
            hi,
            names,
        };
        let weekdays = field("day of week", 0, 7, &WEEKDAYS).parse(dow)?;
        Ok(CronSchedule {
            text: text.trim().to_string(),
            minutes: field("minute", 0, 59, &[]).parse(min)?,
            hours: field("hour", 0, 23, &[]).parse(hour)? as u32,
            days: field("day of month", 1, 31, &[]).parse(dom)? as u32,
            months: field("month", 1, 12, &MONTHS).parse(mon)? as u16,
            // 7 is Sunday too.
            weekdays: ((weekdays | (weekdays >> 7)) & 0x7f) as u8,
            days_star: dom.starts_with('*'),
            weekdays_star: dow.starts_with('*'),
        })
    }

    /// The expression as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        if self.months & (1 << d.month()) == 0 {
            return false;
        }
        let dom = self.days & (1 << d.day()) != 0;
        let dow = self.weekdays & (1 << d.weekday().num_days_from_sunday()) != 0;
        if self.days_star || self.weekdays_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first minute the expression names strictly after `t` (`None`:
    /// it names none in the next eight years, e.g. `0 0 30 2 *`).
    pub fn next_after(&self, t: SystemTime) -> Option<SystemTime> {
        let t: DateTime<Utc> = t.into();
        // The next whole minute after t.
        let start = t
            .with_second(0)?
            .with_nanosecond(0)?
            .checked_add_signed(ChronoDuration::minutes(1))?;
        let mut day = start.date_naive();
        for i in 0..SEARCH_DAYS {
            if self.day_matches(day) {
                let (h0, m0) = if i == 0 {
                    (start.hour(), start.minute())
                } else {
                    (0, 0)
                };
                for h in h0..24 {
                    if self.hours & (1 << h) == 0 {
                        continue;
                    }
                    let from = if h == h0 { m0 } else { 0 };
                    if let Some(m) = (from..60).find(|m| self.minutes & (1 << m) != 0) {
                        let at = day.and_hms_opt(h, m, 0)?;
                        return Some(Utc.from_utc_datetime(&at).into());
                    }
                }
            }
            day = day.succ_opt()?;
        }
        None
    }
}

impl std::fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SystemTime {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
            .into()
    }

    fn next(expr: &str, after: &str) -> Option<String> {
        let s = CronSchedule::parse(expr).expect("parse");
        s.next_after(at(after))
            .map(|t| DateTime::<Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }

    #[test]
    fn next_occurrences_follow_vixie_cron() {
        let cases = [
            // expr, after, next
            ("* * * * *", "2026-03-01T10:20:30Z", "2026-03-01T10:21:00Z"),
            ("* * * * *", "2026-03-01T10:20:00Z", "2026-03-01T10:21:00Z"),
            ("0 * * * *", "2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z"),
            (
                "30 */6 * * *",
                "2026-03-01T06:30:00Z",
                "2026-03-01T12:30:00Z",
            ),
            ("0 0 * * *", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z"),
            (
                "15 3 * * sun",
                "2026-03-01T03:15:00Z",
                "2026-03-08T03:15:00Z",
            ),
            ("15 3 * * 7", "2026-03-02T00:00:00Z", "2026-03-08T03:15:00Z"),
            ("0 12 1 * *", "2026-01-31T12:00:00Z", "2026-02-01T12:00:00Z"),
            // Both day fields restricted: either (1 March 2026 is a Sunday).
            (
                "0 0 13 * fri",
                "2026-03-01T00:00:00Z",
                "2026-03-06T00:00:00Z",
            ),
            (
                "0 0 13 * fri",
                "2026-03-06T00:00:00Z",
                "2026-03-13T00:00:00Z",
            ),
            // One starts with `*`: both (`*/2` days are odd days).
            (
                "0 0 */2 * mon",
                "2026-03-01T00:00:00Z",
                "2026-03-09T00:00:00Z",
            ),
            (
                "0 0 29 feb *",
                "2026-01-01T00:00:00Z",
                "2028-02-29T00:00:00Z",
            ),
            (
                "5-10/5,58 1 * JAN-mar *",
                "2026-03-31T01:58:00Z",
                "2027-01-01T01:05:00Z",
            ),
            (
                "0 22 * * 1-5",
                "2026-03-06T22:00:00Z",
                "2026-03-09T22:00:00Z",
            ),
            (
                "10/20 * * * *",
                "2026-03-01T10:31:00Z",
                "2026-03-01T10:50:00Z",
            ),
            ("@weekly", "2026-03-01T00:00:00Z", "2026-03-08T00:00:00Z"),
            ("@monthly", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"),
            ("@hourly", "2026-03-01T00:59:00Z", "2026-03-01T01:00:00Z"),
        ];
        for (expr, after, want) in cases {
            assert_eq!(
                next(expr, after).as_deref(),
                Some(want),
                "{expr} after {after}"
            );
        }
        assert_eq!(next("0 0 30 2 *", "2026-01-01T00:00:00Z"), None);
    }

    #[test]
    fn bad_expressions_are_refused_with_the_field_named() {
        for (expr, word) in [
            ("* * * *", "5 fields"),
            ("60 * * * *", "minute"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day of month"),
            ("* * * 13 *", "month"),
            ("* * * * 8", "day of week"),
            ("*/0 * * * *", "step"),
            ("5-1 * * * *", "backwards"),
            ("x * * * *", "minute"),
            ("1,,2 * * * *", "empty"),
            ("@often", "unknown"),
        ] {
            let e = CronSchedule::parse(expr).expect_err(expr);
            assert!(e.contains(word), "{expr}: {e}");
        }
    }
}
