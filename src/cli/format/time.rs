//! UTC timestamps, RFC 3339 (`2024-01-01T00:00:00Z`), for listings.

/// Formats nanoseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc(time_ns: i64) -> String {
    etcdsnap::internal::go::time::rfc3339_utc(time_ns.div_euclid(1_000_000_000))
}
