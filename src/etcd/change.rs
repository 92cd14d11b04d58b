//! Recorded changes to etcd's key space: what continuous backup keeps
//! between two full snapshots, and what a point-in-time restore applies to
//! the older one.
//!
//! A watch reports every revision's key events in order (`mvccpb.Event`),
//! but not what else a restore needs: the leases the keys are attached to
//! (a lease grant makes no revision) and the compactions the cluster ran.
//! A [`ChangeSegment`] holds both for a contiguous revision range. The
//! recorder (the agent) fills it from a watch and lease queries; the
//! repository stores it sealed; the rewrite layer applies a chain of them
//! to a snapshot, writing the new revisions into the `key` bucket exactly
//! as etcd would have.

use std::time::SystemTime;

use super::KeyValue;

/// Whether a key event wrote a value or deleted the key
/// (`mvccpb.Event_EventType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A put: the key now holds `kv.value`.
    Put,
    /// A delete (`DeleteRange`, a transaction's delete, or a lease's
    /// revocation or expiry deleting the keys attached to it).
    Delete,
}

/// One key event as a watch delivers it.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyEvent {
    /// Put or delete.
    pub kind: EventKind,
    /// For a put, the key's new record: create revision, mod revision (the
    /// event's revision), version, value and lease, as etcd writes it to the
    /// `key` bucket. For a delete, what etcd's watch gives: the key and the
    /// delete's revision as `mod_revision`, every other field zero.
    pub kv: KeyValue,
}

/// Every key event of one main revision, in sub-revision order (the order
/// the watch delivered them: a transaction's operations in the order etcd
/// applied them).
#[derive(Clone, Debug, PartialEq)]
pub struct RevisionChanges {
    /// The main revision; every event's `kv.mod_revision` equals it.
    pub revision: i64,
    /// The events, sub-revision 0 first; never empty.
    pub events: Vec<KeyEvent>,
    /// When the recorder received this revision from the watch: the upper
    /// bound a restore `--to-time T` compares with T.
    pub observed: SystemTime,
}

/// A lease the recorder saw, as etcd keeps it in the `lease` bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The lease ID.
    pub id: i64,
    /// The TTL it was granted with, in seconds (`LeaseTimeToLive`'s
    /// `grantedTTL`); 0 when the lease was gone before the recorder could
    /// ask.
    pub ttl: i64,
    /// Whether it was alive when the segment was sealed (at
    /// [`ChangeSegment::last`]).
    pub alive_at_end: bool,
}

/// A compaction the cluster ran, as the recorder learnt of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactionRecord {
    /// The compaction revision (`etcdctl compact R`'s R).
    pub revision: i64,
    /// The cluster's revision when the recorder learnt of it. A compaction
    /// makes no revision of its own; a restore at a revision at or above
    /// this one applies it (records the compaction, drops what it drops).
    pub seen_at_revision: i64,
}

/// Everything recorded over one contiguous revision range.
///
/// Segments of one chain follow each other with no hole and no overlap:
/// the first starts at its full snapshot's revision + 1, each next one at
/// the previous `last + 1`. A revision of the range missing from
/// `revisions` made no key change the watch reported (etcd bumps the
/// revision only for key changes, so this happens only for revisions
/// beyond the watched prefix, which the recorder watches whole: none).
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeSegment {
    /// The first revision the segment covers.
    pub first: i64,
    /// The last revision it covers (at least `first - 1`: an empty
    /// segment records leases and compactions over a quiet period).
    pub last: i64,
    /// The revisions in `first..=last` that changed keys, strictly
    /// increasing.
    pub revisions: Vec<RevisionChanges>,
    /// Every lease alive when the segment was sealed, and every lease a
    /// put in `revisions` attached a key to, alive at the end or not.
    pub leases: Vec<LeaseRecord>,
    /// The compactions learnt of while recording the segment, in order.
    pub compactions: Vec<CompactionRecord>,
    /// When the segment was sealed: the cluster was at `last` (or beyond)
    /// then.
    pub sealed: SystemTime,
}

/// The revision of etcd's first key change: a new store is at revision
/// 1, and every change takes the next one. Revision 1 never holds an
/// event.
pub(crate) const FIRST_CHANGE_REVISION: i64 = 2;

/// Why a recorded revision with events cannot be one etcd made: it comes
/// before [`FIRST_CHANGE_REVISION`] (the stored segments' check and the
/// chain's check word it the same).
pub(crate) fn before_first_change(revision: i64) -> Option<String> {
    (revision < FIRST_CHANGE_REVISION).then(|| {
        format!(
            "revision {revision} has events (etcd's first change is revision {FIRST_CHANGE_REVISION})"
        )
    })
}

/// The revision range a segment stored as `first..=last` on a full
/// snapshot at revision `base` stands for in its chain: itself, except on
/// a snapshot of a store that never changed (revision 1), where a range
/// from revision 1 stands for the same range from 2 (an empty one at 0,
/// for an empty one at 1). Earlier etcdsnap builds listed such a snapshot
/// at revision 0 (its `key` bucket's newest entry, none, as `snapshot
/// status` reports) and their agent watched from revision 1; revision 1
/// holds no event (the checks refuse one there), so such a chain is the
/// one a watch from revision 2 records.
pub(crate) fn chain_range(base: i64, first: i64, last: i64) -> (i64, i64) {
    if base == FIRST_CHANGE_REVISION - 1 && first < FIRST_CHANGE_REVISION {
        (
            first.max(FIRST_CHANGE_REVISION),
            last.max(FIRST_CHANGE_REVISION - 1),
        )
    } else {
        (first, last)
    }
}

#[cfg(test)]
mod tests {
    use super::chain_range;

    #[test]
    fn on_an_empty_store_a_range_from_1_stands_for_one_from_2() {
        assert_eq!(chain_range(7, 8, 9), (8, 9));
        assert_eq!(chain_range(7, 1, 9), (1, 9));
        assert_eq!(chain_range(1, 1, 9), (2, 9));
        assert_eq!(chain_range(1, 1, 1), (2, 1));
        assert_eq!(chain_range(1, 1, 0), (2, 1));
        assert_eq!(chain_range(1, 2, 9), (2, 9));
        assert_eq!(chain_range(1, 2, 1), (2, 1));
        assert_eq!(chain_range(0, 1, 9), (1, 9));
    }
}
