//! What else an etcd backend records beside the keys: members, leases and
//! the raft position, read from their buckets.

use prost::Message;

use super::error::MvccError;
use crate::bolt::Db;
use crate::etcd::buckets;
use crate::etcd::checks::printable_key;
use crate::etcd::ids;
use crate::etcd::kv::Lease;
use crate::etcd::member::Member;
use crate::etcd::meta;

/// The cluster as the `members`, `members_removed` and `meta` buckets
/// record it.
#[derive(Debug, Clone, Default)]
pub struct ClusterInfo {
    /// Members, by ascending ID.
    pub members: Vec<Member>,
    /// IDs of removed members, ascending.
    pub removed: Vec<u64>,
    /// The cluster ID etcd derives from the member IDs at bootstrap. The
    /// file does not store it: this is computed from the current members,
    /// which is right unless membership changed since the cluster began.
    pub cluster_id: u64,
    /// The member whose ID goes into response headers: the only member, or
    /// the one with the lowest ID (the file does not say which member it
    /// came from).
    pub member_id: u64,
    /// `meta/term` (etcd 3.5+), 0 when absent.
    pub raft_term: u64,
    /// `meta/consistent_index`, 0 when absent.
    pub consistent_index: u64,
}

/// A lease as the `lease` bucket records it.
#[derive(Debug, Clone)]
pub struct LeaseInfo {
    /// The lease ID.
    pub id: i64,
    /// Granted TTL, seconds.
    pub ttl: i64,
    /// Remaining TTL when checkpointed, seconds (0 when not).
    pub remaining_ttl: i64,
}

/// Reads members, removed members and the raft position.
pub(crate) fn cluster_info(db: Db<'_>) -> Result<ClusterInfo, MvccError> {
    let root = db.root();
    let mut info = ClusterInfo::default();
    if let Some(b) = root.bucket(buckets::MEMBERS)? {
        for e in b.iter() {
            let e = e?;
            let mut m = Member::from_json(e.value).map_err(|err| MvccError::BadRecord {
                bucket: "members",
                key: printable_key(e.key),
                what: err.to_string(),
            })?;
            if m.id == 0 {
                // etcd keys the record by the hex ID as well.
                m.id = std::str::from_utf8(e.key)
                    .ok()
                    .and_then(ids::parse_id)
                    .unwrap_or(0);
            }
            info.members.push(m);
        }
    }
    info.members.sort_by_key(|m| m.id);
    if let Some(b) = root.bucket(buckets::MEMBERS_REMOVED)? {
        for e in b.iter() {
            let e = e?;
            if let Some(id) = std::str::from_utf8(e.key).ok().and_then(ids::parse_id) {
                info.removed.push(id);
            }
        }
    }
    info.removed.sort_unstable();
    let member_ids: Vec<u64> = info.members.iter().map(|m| m.id).collect();
    if !member_ids.is_empty() {
        info.cluster_id = ids::cluster_id(&member_ids);
        info.member_id = member_ids.iter().copied().min().unwrap_or(0);
    }
    if let Some(b) = root.bucket(buckets::META)? {
        info.raft_term = b.get(meta::TERM)?.and_then(meta::decode_u64).unwrap_or(0);
        info.consistent_index = b
            .get(meta::CONSISTENT_INDEX)?
            .and_then(meta::decode_u64)
            .unwrap_or(0);
    }
    Ok(info)
}

/// Reads the `lease` bucket, by ascending ID.
pub(crate) fn leases(db: Db<'_>) -> Result<Vec<LeaseInfo>, MvccError> {
    let mut out = Vec::new();
    let Some(b) = db.root().bucket(buckets::LEASE)? else {
        return Ok(out);
    };
    for e in b.iter() {
        let e = e?;
        let l = Lease::decode(e.value).map_err(|err| MvccError::BadRecord {
            bucket: "lease",
            key: printable_key(e.key),
            what: err.to_string(),
        })?;
        out.push(LeaseInfo {
            id: l.id,
            ttl: l.ttl,
            remaining_ttl: l.remaining_ttl,
        });
    }
    out.sort_by_key(|l| l.id);
    Ok(out)
}

/// Reads the compaction revisions of the `meta` bucket.
pub(crate) fn compact_revs(db: Db<'_>) -> Result<(Option<i64>, Option<i64>), MvccError> {
    let Some(b) = db.root().bucket(buckets::META)? else {
        return Ok((None, None));
    };
    let read = |name: &[u8]| -> Result<Option<i64>, MvccError> {
        match b.get(name)? {
            None => Ok(None),
            Some(v) => meta::decode_compact_rev(v)
                .map(|r| Some(r.main))
                .ok_or_else(|| MvccError::BadRecord {
                    bucket: "meta",
                    key: String::from_utf8_lossy(name).into_owned(),
                    what: format!("{} bytes are not a revision", v.len()),
                }),
        }
    };
    Ok((
        read(meta::FINISHED_COMPACT_REV)?,
        read(meta::SCHEDULED_COMPACT_REV)?,
    ))
}
