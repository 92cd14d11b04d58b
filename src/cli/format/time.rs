//! UTC timestamps, RFC 3339 (`2024-01-01T00:00:00Z`), for listings.

use std::time::SystemTime;

use etcdsnap::internal::go::time::{rfc3339_utc, unix_secs};

/// Formats `t` as `YYYY-MM-DDTHH:MM:SSZ` (whole seconds, rounded down).
pub fn utc(t: SystemTime) -> String {
    rfc3339_utc(unix_secs(t))
}
