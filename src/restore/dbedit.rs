//! The database edits a restore makes, per target version (see
//! `docs`: etcd-restore §3.1-3.5):
//!
//! * 3.4: `meta/consistent_index` = N; buckets `lease`, `key` and `meta`
//!   created if missing. Membership is left as it was (etcd 3.4's own
//!   behaviour: its members live in the v2 store of the `.snap`).
//! * 3.5 and 3.6: `members` and `members_removed` emptied; each new member
//!   written to `members/<hex id>` as its JSON; `cluster` created if
//!   missing; `meta/consistent_index` = N and `meta/term` = 1.
//! * a forced restore into an older release: `meta/storageVersion`
//!   migrated down (removed, or rewritten), see `restore::target`.
//! * `--bump-revision B --mark-compacted`: one `key` entry at
//!   `(latest main + B, 0)` with an empty value, and
//!   `meta/scheduledCompactRev` set to that revision.

use crate::bolt::Db;
use crate::bolt::tx::BucketChanges;
use crate::etcd::member::Member;
use crate::etcd::revision::Revision;
use crate::etcd::{TargetVersion, buckets, ids, meta};

use super::error::{FlagsError, RestoreError};

/// The edits for a restore of `members` (sorted by ID), with the bump
/// entry at `bump` (see [`bump_revision`]) if one was asked for.
pub fn changes(
    target: TargetVersion,
    members: &[Member],
    bump: Option<Revision>,
    storage_edit: Option<&Option<Vec<u8>>>,
) -> BucketChanges {
    let n = members.len() as u64;
    let mut root = BucketChanges::new();
    match storage_edit {
        Some(Some(v)) => {
            root.bucket(buckets::META)
                .put(meta::STORAGE_VERSION, v.clone());
        }
        Some(None) => {
            root.bucket(buckets::META).delete(meta::STORAGE_VERSION);
        }
        None => {}
    }
    match target {
        TargetVersion::V3_4 => {
            root.bucket(buckets::LEASE);
            root.bucket(buckets::KEY);
        }
        _ => {
            let m = root.bucket(buckets::MEMBERS);
            m.clear = true;
            for member in members {
                m.put(ids::format_id(member.id), member.to_json(target));
            }
            root.bucket(buckets::MEMBERS_REMOVED).clear = true;
            root.bucket(buckets::CLUSTER);
            root.bucket(buckets::META)
                .put(meta::TERM, 1u64.to_be_bytes().to_vec());
        }
    }
    root.bucket(buckets::META)
        .put(meta::CONSISTENT_INDEX, n.to_be_bytes().to_vec());
    if let Some(rev) = bump {
        root.bucket(buckets::KEY)
            .put(rev.encode().to_vec(), Vec::new());
        root.bucket(buckets::META)
            .put(meta::SCHEDULED_COMPACT_REV, rev.encode().to_vec());
    }
    root
}

/// `(latest main + by, 0)` where latest is the last key of `key` in `db`
/// (etcdutl's rule). `db` is the snapshot as it came: a compaction on the
/// way may remove the newest entry (a tombstone), and the bump must still
/// land above every revision the snapshot ever had, or etcd would boot at
/// the compacted revision and ignore the mark.
pub fn bump_revision(db: Db<'_>, by: u64) -> Result<Revision, RestoreError> {
    let latest = match db.root().bucket(buckets::KEY)? {
        Some(b) => match b.cursor().last()? {
            Some(e) => Revision::main_of(e.key).unwrap_or(0),
            None => 0,
        },
        None => 0,
    };
    let main = i64::try_from(by)
        .ok()
        .and_then(|b| latest.checked_add(b))
        .ok_or_else(|| RestoreError::from(FlagsError::BumpOverflow { by, latest }))?;
    Ok(Revision { main, sub: 0 })
}
