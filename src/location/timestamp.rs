//! Snapshots named by time: the `{time}` placeholder of a destination is
//! replaced by the UTC time of the save, as `20250131T235959Z` (ISO 8601
//! basic format: sorts as text, no `:` that some tools dislike in names).

use std::time::SystemTime;

use chrono::{DateTime, NaiveDateTime, Utc};

/// The placeholder replaced by the time.
pub const TIME_PLACEHOLDER: &str = "{time}";
/// The time format put in its place.
const FORMAT: &str = "%Y%m%dT%H%M%SZ";
/// Length of a formatted time.
pub(crate) const LEN: usize = 16;

/// `text` with every `{time}` replaced by `now`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// assert_eq!(
///     etcdsnap::expand_time("s3://b/etcd/snap-{time}.db.zst", t),
///     "s3://b/etcd/snap-20231114T221320Z.db.zst"
/// );
/// ```
pub fn expand_time(text: &str, now: SystemTime) -> String {
    let now = DateTime::<Utc>::from(now);
    text.replace(TIME_PLACEHOLDER, &now.format(FORMAT).to_string())
}

/// The time in a name made from a template with one `{time}`: the name
/// must be the template's text before and after it, around a time.
pub(crate) fn time_in(name: &str, before: &str, after: &str) -> Option<DateTime<Utc>> {
    let stamp = name.strip_prefix(before)?.strip_suffix(after)?;
    parse(stamp)
}

/// Parses a formatted time.
pub(crate) fn parse(stamp: &str) -> Option<DateTime<Utc>> {
    if stamp.len() != LEN {
        return None;
    }
    NaiveDateTime::parse_from_str(stamp, FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let t = DateTime::from_timestamp(1_735_689_599, 0).expect("time");
        let name = expand_time("etcd/snap-{time}.db.gz", t.into());
        assert_eq!(name, "etcd/snap-20241231T235959Z.db.gz");
        assert_eq!(time_in(&name, "etcd/snap-", ".db.gz"), Some(t));
        assert_eq!(time_in(&name, "etcd/snap-", ".db"), None);
        assert_eq!(
            time_in("etcd/snap-latest.db.gz", "etcd/snap-", ".db.gz"),
            None
        );
        assert_eq!(parse("20241231T235959Z+"), None);
        assert_eq!(parse("20241331T235959Z"), None);
    }
}
