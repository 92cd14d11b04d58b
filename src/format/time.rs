//! UTC timestamps, RFC 3339 (`2024-01-01T00:00:00Z`), for listings.

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
    crate::go::time::rfc3339_utc(time_ns.div_euclid(1_000_000_000))
}
