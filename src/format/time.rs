//! UTC timestamps, RFC 3339 (`2024-01-01T00:00:00Z`), for listings.

/// Days since 1970-01-01 to a civil date (proleptic Gregorian), after
/// Howard Hinnant's `civil_from_days`.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats nanoseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
///
/// ```
/// use etcdsnap::format::time::utc;
/// assert_eq!(utc(0), "1970-01-01T00:00:00Z");
/// assert_eq!(utc(1_704_067_200_999_999_999), "2024-01-01T00:00:00Z");
/// assert_eq!(utc(951_782_400_000_000_000), "2000-02-29T00:00:00Z");
/// assert_eq!(utc(-1_000_000_000), "1969-12-31T23:59:59Z");
/// ```
pub fn utc(time_ns: i64) -> String {
    let secs = time_ns.div_euclid(1_000_000_000);
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}
