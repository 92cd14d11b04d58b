//! `time.Unix(secs, 0).UTC().Format(time.RFC3339)`: how Go (and so
//! Kubernetes and etcd) print a time in seconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Whole seconds from the Unix epoch to `t`, rounded down (so negative,
/// and rounded away from zero, before it): what Go's `Time.Unix` gives.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use etcdsnap::internal::go::time::unix_secs;
/// assert_eq!(unix_secs(UNIX_EPOCH + Duration::from_millis(1500)), 1);
/// assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_millis(500)), -1);
/// ```
pub fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let whole = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            (-whole).saturating_sub(i64::from(d.subsec_nanos() > 0))
        }
    }
}

/// Go's `time.Unix(secs, nanos)` (`nanos` below one second); `None` where
/// `SystemTime` cannot hold it.
pub fn from_unix(secs: i64, nanos: u32) -> Option<SystemTime> {
    let whole = Duration::from_secs(secs.unsigned_abs());
    let at = if secs >= 0 {
        UNIX_EPOCH.checked_add(whole)
    } else {
        UNIX_EPOCH.checked_sub(whole)
    };
    at?.checked_add(Duration::from_nanos(u64::from(nanos.min(999_999_999))))
}

/// `secs` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`, for any `i64`.
///
/// ```
/// use etcdsnap::internal::go::time::rfc3339_utc;
/// assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
/// assert_eq!(rfc3339_utc(1714558830), "2024-05-01T10:20:30Z");
/// assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59Z");
/// ```
pub fn rfc3339_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days (proleptic Gregorian), in i128 so
    // that no input overflows.
    let z = i128::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
