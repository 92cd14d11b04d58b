//! Keys and values of the `meta` bucket.

use super::revision::{self, Revision};

/// Raft index of the last applied entry (BE8).
pub(crate) const CONSISTENT_INDEX: &[u8] = b"consistent_index";
/// Raft term of the last applied entry (BE8, etcd 3.5+).
pub(crate) const TERM: &[u8] = b"term";
/// JSON of the raft ConfState (etcd 3.5+).
pub(crate) const CONF_STATE: &[u8] = b"confState";
/// Revision a compaction was scheduled at (17-byte revision).
pub(crate) const SCHEDULED_COMPACT_REV: &[u8] = b"scheduledCompactRev";
/// Revision the last finished compaction was at (17-byte revision).
pub(crate) const FINISHED_COMPACT_REV: &[u8] = b"finishedCompactRev";
/// Storage schema version, ASCII `major.minor.patch` (etcd 3.6+).
pub(crate) const STORAGE_VERSION: &[u8] = b"storageVersion";

/// Decodes an 8-byte big-endian unsigned value (consistent_index, term).
pub(crate) fn decode_u64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

/// Decodes a compaction revision value (a 17-byte revision key).
pub(crate) fn decode_compact_rev(v: &[u8]) -> Option<Revision> {
    revision::parse(v)
        .ok()
        .filter(|r| !r.tombstone)
        .map(|r| r.rev)
}

/// Parses a `storageVersion` value as semver `major.minor.patch` and prints
/// it back the way etcd 3.6's status does; `None` if it does not parse.
///
/// ```
/// assert_eq!(etcdsnap::etcd::meta::storage_version(b"3.6.0").as_deref(), Some("3.6.0"));
/// assert_eq!(etcdsnap::etcd::meta::storage_version(b"junk"), None);
/// ```
pub fn storage_version(v: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(v).ok()?;
    let mut parts = s.split('.');
    let nums: Vec<u64> = parts
        .by_ref()
        .take(3)
        .map(|p| p.parse::<u64>().ok())
        .collect::<Option<_>>()?;
    if nums.len() != 3 || parts.next().is_some() {
        return None;
    }
    Some(format!("{}.{}.{}", nums[0], nums[1], nums[2]))
}
