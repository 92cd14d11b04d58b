//! Point-in-time apply: a snapshot plus the changes recorded after it
//! ([`ChangeSegment`]s) written out as the snapshot etcd would have held at
//! a later revision, without booting etcd.
//!
//! The new file is the source laid out densely (as [`rewrite`](super::rewrite)
//! lays it out) with:
//!
//! * **`key`**: every recorded revision up to the target appended after the
//!   source's entries exactly as etcd's `storeTxnWrite` writes them: the
//!   revision key `main '_' sub`, the sub-revision being the event's
//!   position in its revision (the order the watch delivered them, which
//!   is the order etcd applied a transaction's operations); a put's
//!   `mvccpb.KeyValue` as the watch gave it (create revision, version,
//!   lease); a delete as a tombstone, the key with etcd's `t` mark and a
//!   `KeyValue` holding only the user key (`kvstore_txn.go` `delete`).
//! * **compaction**: the newest [`CompactionRecord`] learnt at or before the
//!   target (`seen_at_revision <= R`), if it is above the source's
//!   compacted revision, applied as etcd applies it (compactions compose:
//!   two in a row keep what the later one alone keeps) over the source's
//!   entries and the appended ones, and recorded in `meta`
//!   (`scheduledCompactRev` = `finishedCompactRev`) as `snapshot compact`
//!   records it.
//! * **`lease`**: the leases alive at the target. A lease grant or a
//!   revocation of a lease with no key makes no revision, so the recorder
//!   knows leases only at segment ends ([`LeaseRecord::alive_at_end`]) and
//!   from the puts that attach keys to them. The rule: at a segment's last
//!   revision, the leases alive when it was sealed; inside a segment, the
//!   leases alive at both of its ends (at its start: the end of the
//!   previous segment, or the source's `lease` bucket); and in every case
//!   each lease a key live at the target is attached to (its revocation
//!   would have deleted the key, so it was alive then) — a restored etcd
//!   never finds a key whose lease is missing (it would keep such a key
//!   forever). A lease granted and left unused inside the segment, or one
//!   that lost its last key before the target and died before the
//!   segment's end, is left out: it held no key at the target. A lease's
//!   record is the source's when it had one (with its checkpointed
//!   remaining TTL), else the recorded granted TTL.
//! * every other bucket (`meta`'s consistent index and term, members,
//!   auth, alarms, cluster version) as in the source: `snapshot restore`
//!   rewrites membership and the raft position anyway.
//!
//! The changes are checked before anything is written: the chain must
//! start right after the source's revision with no hole or overlap, every
//! segment's revisions must increase inside its range, every event must be
//! what etcd's watch delivers (a put with a consistent create revision and
//! version, a delete with nothing but the key, each key once per revision,
//! versions following the previous recorded change of the key).
//!
//! Memory holds the changes up to the target and one small record per key
//! they touch; the source is streamed as [`rewrite`](super::rewrite)
//! streams it.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::SystemTime;
//! use etcdsnap::etcd::change::*;
//! use etcdsnap::etcd::KeyValue;
//! use etcdsnap::{ApplyOptions, Location, PointInTime, Snapshot, TargetVersion, apply_changes};
//!
//! let src = Snapshot::open("testdata/snapshots/small-v35.db")?; // at revision 4
//! let put = |key: &str, value: &str| KeyEvent {
//!     kind: EventKind::Put,
//!     kv: KeyValue { key: key.into(), create_revision: 5, mod_revision: 5, version: 1,
//!                    value: value.into(), lease: 0 },
//! };
//! let seg = ChangeSegment {
//!     first: 5, last: 5,
//!     revisions: vec![RevisionChanges { revision: 5, events: vec![put("new", "v")],
//!                                       observed: SystemTime::now() }],
//!     leases: vec![], compactions: vec![], sealed: SystemTime::now(),
//! };
//! let dir = tempfile::tempdir()?;
//! let out = Location::parse(dir.path().join("at5.db").to_str().unwrap())?;
//! let opts = ApplyOptions::new(PointInTime::Revision(5)).with_target(TargetVersion::V3_5);
//! let done = apply_changes(&src, &[seg], &out, &opts)?;
//! assert_eq!((done.base_revision, done.revision, done.events), (4, 5, 1));
//! assert_eq!(done.status.revision, 5);
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{Seek, Write};
#[cfg(feature = "repo")]
use std::path::Path;
use std::time::SystemTime;

use prost::Message as _;

use super::{RewriteError, checked_source, load_edited, open_store, publish, temp_file};
use crate::bolt::{Bucket, LeafElem, Loader, MAX_KEY_SIZE, MAX_VALUE_SIZE};
use crate::etcd::change::{
    ChangeSegment, EventKind, KeyEvent, LeaseRecord, before_first_change, chain_range,
};
use crate::etcd::fp::{Fp, FpMap, fingerprint};
use crate::etcd::kv::{KeyValue, KeyValueRef, Lease};
use crate::etcd::revision::{self, Revision, TOMBSTONE_MARK};
use crate::etcd::{Status, TargetVersion};
use crate::location::Location;
use crate::mvcc::{Compaction, MvccError};
use crate::snapshot::Snapshot;

/// The point a snapshot is brought to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointInTime {
    /// This revision (`--to-revision R`).
    Revision(i64),
    /// The newest revision recorded as observed at or before this time
    /// (`--to-time T`; see [`resolve_time`]).
    Time(SystemTime),
}

/// What [`apply_changes`] brings the snapshot to, and by whose rules.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ApplyOptions {
    /// The revision or time to stop at.
    pub to: PointInTime,
    /// The release whose rules decide the source's current and compacted
    /// revisions and the status reported for the result.
    pub target: TargetVersion,
}

impl ApplyOptions {
    /// Bring the snapshot to `to`, by 3.5's rules.
    pub fn new(to: PointInTime) -> ApplyOptions {
        ApplyOptions {
            to,
            target: TargetVersion::V3_5,
        }
    }

    /// The release whose rules decide the revisions and the status reported.
    pub fn with_target(mut self, target: TargetVersion) -> Self {
        self.target = target;
        self
    }
}

/// What an apply wrote.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ApplySummary {
    /// Where the result was published.
    pub location: String,
    /// Length of the source file (trailer included).
    pub size_before: u64,
    /// Length of the result (with its SHA-256 trailer).
    pub size_after: u64,
    /// The source's revision.
    pub base_revision: i64,
    /// The revision the result is at (the one asked for, or the one a
    /// time resolved to).
    pub revision: i64,
    /// Revisions appended to the `key` bucket.
    pub revisions: u64,
    /// Key events appended (before the compaction, if any, dropped some).
    pub events: u64,
    /// The revision compacted at, if a recorded compaction was applied.
    pub compacted: Option<i64>,
    /// Entries of the `key` bucket (the source's and the appended ones)
    /// the compaction removed.
    pub removed: u64,
    /// Leases in the result's `lease` bucket.
    pub leases: u64,
    /// `snapshot status` of the result.
    pub status: Status,
}

/// Why recorded changes cannot be applied.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeError {
    /// The target is older than the snapshot the changes start from.
    #[error(
        "revision {requested} is below the base snapshot's revision {base} (restore from an older full snapshot)"
    )]
    BelowBase {
        /// The revision asked for.
        requested: i64,
        /// The source snapshot's revision.
        base: i64,
    },
    /// The target is beyond what was recorded.
    #[error("revision {requested} is beyond the last recorded revision {last}")]
    BeyondLast {
        /// The revision asked for.
        requested: i64,
        /// The last revision the chain covers.
        last: i64,
    },
    /// A segment starts after the revision that follows the previous one
    /// (or the snapshot): the revisions between were not recorded.
    #[error(
        "recorded changes have a hole: segment {segment} starts at revision {first}, revisions from {expected} are missing"
    )]
    Hole {
        /// The segment's position in the chain (from 0).
        segment: usize,
        /// Its first revision.
        first: i64,
        /// The revision it should start at.
        expected: i64,
    },
    /// A segment starts at or before a revision already covered.
    #[error(
        "recorded changes overlap: segment {segment} starts at revision {first}, but the chain already covers the revisions before {expected}"
    )]
    Overlap {
        /// The segment's position in the chain (from 0).
        segment: usize,
        /// Its first revision.
        first: i64,
        /// The revision it should start at.
        expected: i64,
    },
    /// A segment holds something etcd's watch cannot have delivered.
    #[error("segment {segment} (revisions {first} to {last}): {what}")]
    Inconsistent {
        /// The segment's position in the chain (from 0).
        segment: usize,
        /// Its first revision.
        first: i64,
        /// Its last revision.
        last: i64,
        /// What is wrong.
        what: String,
    },
}

/// What the chain says of a key after a revision, for the checks.
#[derive(Clone, Copy)]
enum Known {
    /// Live, with this create revision and version.
    Put { create: i64, version: i64 },
    /// Deleted.
    Gone,
}

/// Checks a chain of segments recorded after a snapshot at `base`: each
/// starts where the previous one (or the snapshot) ended, and holds what
/// etcd's watch delivers (see the module documentation). On a snapshot
/// of a store that never changed (revision 1) the chain may also start
/// at revision 1, which holds no event (earlier builds recorded such
/// chains). Returns the last revision the chain covers (`base` for
/// an empty chain).
///
/// ```
/// use std::time::SystemTime;
/// use etcdsnap::etcd::change::ChangeSegment;
/// use etcdsnap::{ChangeError, check_chain};
/// let seg = |first, last| ChangeSegment { first, last, revisions: vec![], leases: vec![],
///     compactions: vec![], sealed: SystemTime::UNIX_EPOCH };
/// assert_eq!(check_chain(4, &[seg(5, 9), seg(10, 12)]), Ok(12));
/// assert!(matches!(check_chain(4, &[seg(5, 9), seg(11, 12)]), Err(ChangeError::Hole { .. })));
/// assert!(matches!(check_chain(4, &[seg(4, 9)]), Err(ChangeError::Overlap { .. })));
/// ```
pub fn check_chain(base: i64, segments: &[ChangeSegment]) -> Result<i64, ChangeError> {
    let mut known: FpMap<Known> = FpMap::default();
    let mut expected = base.saturating_add(1);
    for (i, seg) in segments.iter().enumerate() {
        // On a store that never changed, a chain may start at revision
        // 1, which holds no event (see `chain_range`).
        let (first, last) = chain_range(base, seg.first, seg.last);
        if first > expected {
            return Err(ChangeError::Hole {
                segment: i,
                first: seg.first,
                expected,
            });
        }
        if first < expected {
            return Err(ChangeError::Overlap {
                segment: i,
                first: seg.first,
                expected,
            });
        }
        check_segment(i, seg, &mut known)?;
        expected = last.saturating_add(1);
    }
    Ok(expected.saturating_sub(1))
}

/// One segment's own checks, and its events against what the chain said
/// of their keys before (`known`, updated).
fn check_segment(
    index: usize,
    seg: &ChangeSegment,
    known: &mut FpMap<Known>,
) -> Result<(), ChangeError> {
    let bad = |what: String| ChangeError::Inconsistent {
        segment: index,
        first: seg.first,
        last: seg.last,
        what,
    };
    if seg.last < seg.first.saturating_sub(1) {
        return Err(bad("its last revision is before its first".into()));
    }
    let leases: HashSet<i64> = seg.leases.iter().map(|l| l.id).collect();
    for l in &seg.leases {
        if l.ttl < 0 {
            return Err(bad(format!(
                "lease {:x} has a negative TTL {}",
                l.id, l.ttl
            )));
        }
    }
    for c in &seg.compactions {
        if c.revision < 1 || c.revision > c.seen_at_revision {
            return Err(bad(format!(
                "compaction at revision {} learnt at revision {} (a compaction is at a positive revision no later than the cluster's)",
                c.revision, c.seen_at_revision
            )));
        }
    }
    let mut prev = seg.first.saturating_sub(1);
    for rc in &seg.revisions {
        let rev = rc.revision;
        if rev <= prev {
            return Err(bad(format!(
                "revision {rev} follows revision {prev} (revisions must increase)"
            )));
        }
        if rev > seg.last {
            return Err(bad(format!("revision {rev} is beyond the segment")));
        }
        if let Some(why) = before_first_change(rev) {
            return Err(bad(why));
        }
        if rc.events.is_empty() {
            return Err(bad(format!("revision {rev} has no event")));
        }
        let mut seen: HashSet<&[u8]> = HashSet::with_capacity(rc.events.len());
        for (sub, ev) in rc.events.iter().enumerate() {
            let kv = &ev.kv;
            let at = || format!("revision {rev} event {sub} (key {:?})", shown(&kv.key));
            check_event(rev, ev).map_err(|what| bad(format!("{}: {what}", at())))?;
            if !seen.insert(&kv.key) {
                return Err(bad(format!(
                    "{}: the key changes twice in one revision",
                    at()
                )));
            }
            if ev.kind == EventKind::Put && kv.lease != 0 && !leases.contains(&kv.lease) {
                return Err(bad(format!(
                    "{}: attaches lease {:x}, which the segment does not record",
                    at(),
                    kv.lease
                )));
            }
            let fp = Fp(fingerprint(&kv.key));
            let before = known.get(&fp).copied();
            let after = follows(before, ev).map_err(|what| bad(format!("{}: {what}", at())))?;
            known.insert(fp, after);
        }
        prev = rev;
    }
    Ok(())
}

/// What a single event must hold, whatever came before it.
fn check_event(rev: i64, ev: &KeyEvent) -> Result<(), String> {
    let kv = &ev.kv;
    if kv.mod_revision != rev {
        return Err(format!(
            "mod revision {} in revision {rev}",
            kv.mod_revision
        ));
    }
    if kv.key.is_empty() {
        return Err("empty key".into());
    }
    if kv.key.len() > MAX_KEY_SIZE {
        return Err(format!(
            "key of {} bytes (etcd keeps at most {MAX_KEY_SIZE})",
            kv.key.len()
        ));
    }
    match ev.kind {
        EventKind::Put => {
            if kv.value.len() > MAX_VALUE_SIZE {
                return Err(format!("value of {} bytes", kv.value.len()));
            }
            if kv.version < 1 || kv.create_revision < 1 || kv.create_revision > rev {
                return Err(format!(
                    "a put with create revision {} and version {}",
                    kv.create_revision, kv.version
                ));
            }
            if (kv.version == 1) != (kv.create_revision == rev) {
                return Err(format!(
                    "a put with version {} created at revision {} (version 1 exactly when created by this revision)",
                    kv.version, kv.create_revision
                ));
            }
        }
        EventKind::Delete => {
            if kv.create_revision != 0 || kv.version != 0 || kv.lease != 0 || !kv.value.is_empty() {
                return Err("a delete carrying more than the key and its revision".into());
            }
        }
    }
    Ok(())
}

/// The key's state after `ev`, refused when it does not follow the
/// previous recorded change (`None`: none recorded, the snapshot holds
/// whatever it was).
fn follows(before: Option<Known>, ev: &KeyEvent) -> Result<Known, String> {
    let kv = &ev.kv;
    match (ev.kind, before) {
        (EventKind::Delete, Some(Known::Gone)) => Err("deletes a key already deleted".into()),
        (EventKind::Delete, _) => Ok(Known::Gone),
        (EventKind::Put, Some(Known::Put { create, version }))
            if kv.create_revision != create || Some(kv.version) != version.checked_add(1) =>
        {
            Err(format!(
                "a put with create revision {} and version {} after one with {create} and {version}",
                kv.create_revision, kv.version
            ))
        }
        (EventKind::Put, Some(Known::Gone)) if kv.version != 1 => Err(format!(
            "a put with version {} of a deleted key",
            kv.version
        )),
        (EventKind::Put, _) => Ok(Known::Put {
            create: kv.create_revision,
            version: kv.version,
        }),
    }
}

/// A key as messages show it.
fn shown(k: &[u8]) -> String {
    String::from_utf8_lossy(k).into_owned()
}

/// The revision a restore `--to-time t` brings a snapshot at `base` to:
/// the newest revision of the chain observed at or before `t` (or covered
/// by a segment sealed by then), `base` when none was.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use etcdsnap::etcd::change::ChangeSegment;
/// let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
/// let seg = ChangeSegment { first: 5, last: 9, revisions: vec![], leases: vec![],
///     compactions: vec![], sealed: t0 };
/// assert_eq!(etcdsnap::resolve_time(4, &[seg.clone()], t0), 9);
/// assert_eq!(etcdsnap::resolve_time(4, &[seg], t0 - Duration::from_secs(1)), 4);
/// ```
pub fn resolve_time(base: i64, segments: &[ChangeSegment], t: SystemTime) -> i64 {
    let mut rev = base;
    for seg in segments {
        if seg.sealed <= t {
            rev = rev.max(seg.last);
        }
        for rc in &seg.revisions {
            if rc.observed <= t {
                rev = rev.max(rc.revision);
            }
        }
    }
    rev
}

/// Writes `src` brought to `opts.to` by the recorded `segments` (which
/// must start right after `src`'s revision) to `out`, densely packed with
/// a SHA-256 trailer; see the module documentation. A failed or killed
/// apply leaves `out` as it was.
pub fn apply_changes(
    src: &Snapshot,
    segments: &[ChangeSegment],
    out: &Location,
    opts: &ApplyOptions,
) -> Result<ApplySummary, RewriteError> {
    let mut prepared = prepare_apply(src, segments, opts)?;
    let tmp: File = temp_file(out)?;
    let (body_len, removed) = prepared.write(&tmp)?;
    let (location, size_after, status) = publish(&tmp, body_len, out, opts.target)?;
    Ok(prepared.summary(location, size_after, removed, status))
}

/// An apply checked and planned, nothing written yet: every refusal of
/// [`apply_changes`] (a damaged source, a chain with holes, a point out of
/// reach) happens before one exists.
pub(crate) struct PreparedApply<'s> {
    src: &'s Snapshot,
    #[cfg(feature = "repo")]
    target: TargetVersion,
    base: i64,
    to: i64,
    compaction: Option<Compaction>,
    applying: Applying<'s>,
}

/// Checks `src` and the chain and plans the apply (see [`apply_changes`]).
pub(crate) fn prepare_apply<'s>(
    src: &'s Snapshot,
    segments: &'s [ChangeSegment],
    opts: &ApplyOptions,
) -> Result<PreparedApply<'s>, RewriteError> {
    checked_source(src)?;
    let store = open_store(src)?.with_rules(opts.target);
    let revs = store.revisions();
    let base = revs.current;
    let last = check_chain(base, segments)?;
    let to = match opts.to {
        PointInTime::Revision(r) => r,
        PointInTime::Time(t) => resolve_time(base, segments, t),
    };
    if to < base {
        return Err(ChangeError::BelowBase {
            requested: to,
            base,
        }
        .into());
    }
    if to > last {
        return Err(ChangeError::BeyondLast {
            requested: to,
            last,
        }
        .into());
    }
    // The newest compaction learnt by then; one at or below the source's
    // compacted revision was refused by etcd (or changes nothing).
    let compacted_before = if revs.compacted == 0 && revs.finished_compact.is_none() {
        0
    } else {
        revs.compacted
    };
    let compact_at = segments
        .iter()
        .flat_map(|s| &s.compactions)
        .filter(|c| c.seen_at_revision <= to)
        .map(|c| c.revision)
        .max()
        .filter(|&c| c > compacted_before);
    let compaction = match compact_at {
        Some(c) => Some(store.compaction_unchecked(c)?),
        None => None,
    };
    let base_leases = store.leases()?;
    drop(store);
    let applying = Applying::plan(base, to, segments, compact_at, &base_leases);
    Ok(PreparedApply {
        src,
        #[cfg(feature = "repo")]
        target: opts.target,
        base,
        to,
        compaction,
        applying,
    })
}

impl PreparedApply<'_> {
    /// Writes the result's body (no trailer) into `out` from its start;
    /// its length and the `key` entries the compaction removed.
    fn write(&mut self, out: &File) -> Result<(u64, u64), RewriteError> {
        let file = self.src.file();
        let db = self.src.db()?;
        load_edited(
            file,
            db,
            out,
            self.compaction.as_ref(),
            Some(&mut self.applying),
            &|_| {},
        )
    }

    /// Writes the result's body (no trailer) into `out`, an empty file
    /// named `shown` in messages, from its start, checks it as
    /// [`apply_changes`] checks its result, and cuts `out` to the body's
    /// length: for a restore that applies straight into a member's db.
    /// The body's length and the summary (`location` is `shown`,
    /// `size_after` the body's length).
    #[cfg(feature = "repo")]
    pub(crate) fn write_into(
        mut self,
        out: &File,
        shown: &std::path::Path,
    ) -> Result<(u64, ApplySummary), RewriteError> {
        let (body_len, removed) = self.write(out)?;
        out.set_len(body_len)
            .map_err(super::io_err("truncate", shown))?;
        let status = super::checked_status(out, shown, self.target)?;
        let location = shown.display().to_string();
        Ok((body_len, self.summary(location, body_len, removed, status)))
    }

    /// Whether the apply is made in place ([`commit_in_place`](Self::commit_in_place)):
    /// no compaction to apply, so the source's entries stay as they are.
    #[cfg(feature = "repo")]
    pub(crate) fn in_place(&self) -> bool {
        self.compaction.is_none()
    }

    /// Applies the changes to the source's own file, `out` (named `shown`
    /// in messages), as one copy-on-write bbolt transaction: the new
    /// revisions are appended after the `key` bucket's last entry (its
    /// last leaf and the branches above it rewritten, the new leaves
    /// written as they are made), the `lease` bucket edited, and a new
    /// meta written last, each step synced as bbolt commits. Nothing of
    /// the source's body is read but the pages on those paths (and, when
    /// the lease plan needs them, its `key` entries). The file's new
    /// length. Only when [`in_place`](Self::in_place).
    #[cfg(feature = "repo")]
    pub(crate) fn commit_in_place(
        &mut self,
        out: &File,
        shown: &Path,
    ) -> Result<u64, RewriteError> {
        use crate::bolt::tx::{self, Append, AppendError, BucketChanges, WriteOptions};
        use crate::etcd::buckets;
        let db = self.src.db()?;
        let root = db.root();
        let key = root.bucket(buckets::KEY)?;
        if self.applying.tracks_source_leases() {
            self.applying.track_source_leases(key.as_ref())?;
        }
        let lease = root.bucket(buckets::LEASE)?;
        let mut changes = BucketChanges::new();
        let edits = changes.bucket(buckets::LEASE);
        match self.applying.lease_ids() {
            Some(keyed) => {
                let mut written = 0u64;
                if let Some(b) = &lease {
                    for e in b.iter() {
                        let e = e?;
                        let gone =
                            <[u8; 8]>::try_from(e.key).map_or(true, |k| !keyed.contains_key(&k));
                        if gone {
                            edits.delete(e.key.to_vec());
                        }
                    }
                }
                for (k, id) in &keyed {
                    let held = match &lease {
                        Some(b) => b.get(k)?.is_some(),
                        None => false,
                    };
                    if !held {
                        edits.put(k.to_vec(), self.applying.new_lease(*id));
                    }
                    written += 1;
                }
                self.applying.leases_written = written;
            }
            None => {
                self.applying.leases_written =
                    lease.as_ref().map_or(0, |b| b.iter().count() as u64);
            }
        }
        let mut entries = self.applying.entries();
        let plan = tx::plan_appending(
            db,
            &changes,
            WriteOptions::default(),
            Append {
                bucket: buckets::KEY,
                entries: &mut entries,
                out,
            },
        )
        .map_err(|e| match e {
            AppendError::Bolt(e) => RewriteError::from(e),
            AppendError::Io(e) => super::io_err("write", shown)(e),
        })?;
        plan.commit(out).map_err(super::io_err("write", shown))?;
        Ok(plan.file_len())
    }

    /// [`commit_in_place`](Self::commit_in_place) into `file` (named
    /// `shown`), then the result checked and published at `out` with its
    /// SHA-256 trailer, as [`apply_changes`] publishes.
    #[cfg(feature = "repo")]
    pub(crate) fn publish_in_place(
        mut self,
        file: &File,
        shown: &Path,
        out: &Location,
    ) -> Result<ApplySummary, RewriteError> {
        let len = self.commit_in_place(file, shown)?;
        let (location, size_after, status) = publish(file, len, out, self.target)?;
        Ok(self.summary(location, size_after, 0, status))
    }

    /// What was applied to a result of `size_after` bytes shown as
    /// `location`, once the result's status is known.
    #[cfg(feature = "repo")]
    pub(crate) fn applied(
        &self,
        location: String,
        size_after: u64,
    ) -> impl FnOnce(Status) -> ApplySummary + use<> {
        // The status is replaced by the result's; nothing is compacted in
        // place (a compaction to apply takes the dense rewrite).
        let placeholder = Status {
            hash: 0,
            revision: 0,
            total_key: 0,
            total_size: 0,
            version: None,
            target: self.target,
        };
        let summary = ApplySummary {
            compacted: None,
            ..self.summary(location, size_after, 0, placeholder)
        };
        move |status| ApplySummary { status, ..summary }
    }

    fn summary(
        &self,
        location: String,
        size_after: u64,
        removed: u64,
        status: Status,
    ) -> ApplySummary {
        ApplySummary {
            location,
            size_before: self.src.file_len(),
            size_after,
            base_revision: self.base,
            revision: self.to,
            revisions: self.applying.revisions,
            events: self.applying.events.len() as u64,
            compacted: self.compaction.as_ref().map(Compaction::revision),
            removed,
            leases: self.applying.leases_written,
            status,
        }
    }
}

/// One recorded event to append.
struct Pending<'s> {
    rev: Revision,
    ev: &'s KeyEvent,
    /// Whether the compaction keeps it.
    keep: bool,
}

/// How the `lease` bucket is written.
enum LeasePlan {
    /// As in the source (the target is the source's revision).
    Copy,
    /// Rebuilt (see the module documentation).
    Rebuild {
        /// Alive by the segments' records, or attached to a key the
        /// changes left live at the target.
        alive: BTreeSet<i64>,
        /// The source's leases not in `alive`: alive at the target too if
        /// a key of the source still attached to one is untouched by then.
        candidates: HashSet<i64>,
        /// While the source's `key` bucket is copied: its keys (live at
        /// the latest entry read) attached to a candidate.
        tracked: FpMap<i64>,
        /// Every key the changes up to the target touch.
        touched: FpMap<()>,
        /// The newest record of each lease (one with a TTL preferred).
        records: HashMap<i64, LeaseRecord>,
    },
}

/// A planned apply: what to append and how to rebuild the leases, and
/// (while the file is written) what the source's entries tell about them.
pub(super) struct Applying<'s> {
    events: Vec<Pending<'s>>,
    revisions: u64,
    /// Keys changed at or below the compaction revision: the source's
    /// entry a compaction would keep for such a key is superseded.
    superseded: FpMap<()>,
    leases: LeasePlan,
    leases_written: u64,
}

impl<'s> Applying<'s> {
    /// Plans the apply of a checked chain up to `to` on a snapshot at
    /// `base` holding `base_leases`, compacted at `compact_at` if given.
    fn plan(
        base: i64,
        to: i64,
        segments: &'s [ChangeSegment],
        compact_at: Option<i64>,
        base_leases: &[crate::mvcc::LeaseInfo],
    ) -> Applying<'s> {
        let mut events = Vec::new();
        let mut revisions = 0u64;
        for rc in segments.iter().flat_map(|s| &s.revisions) {
            if rc.revision > to {
                break;
            }
            revisions += 1;
            for (sub, ev) in rc.events.iter().enumerate() {
                events.push(Pending {
                    rev: Revision {
                        main: rc.revision,
                        sub: sub as i64,
                    },
                    ev,
                    keep: true,
                });
            }
        }
        // etcd's compaction over the appended entries: per key, only the
        // newest change at or below the revision, and only if a put.
        let mut superseded: FpMap<()> = FpMap::default();
        if let Some(c) = compact_at {
            let mut newest: FpMap<usize> = FpMap::default();
            for (i, p) in events.iter().enumerate() {
                if p.rev.main > c {
                    break;
                }
                newest.insert(Fp(fingerprint(&p.ev.kv.key)), i);
            }
            for (i, p) in events.iter_mut().enumerate() {
                if p.rev.main > c {
                    break;
                }
                let fp = Fp(fingerprint(&p.ev.kv.key));
                p.keep = newest.get(&fp) == Some(&i) && p.ev.kind == EventKind::Put;
                superseded.insert(fp, ());
            }
        }
        let leases = if to == base {
            LeasePlan::Copy
        } else {
            plan_leases(to, segments, &events, base_leases)
        };
        Applying {
            events,
            revisions,
            superseded,
            leases,
            leases_written: 0,
        }
    }

    /// Writes the `key` bucket: the source's entries (`src`) through the
    /// compaction, then the changes; the entries the compaction removed.
    pub(super) fn write_key<'a, W: Write + Seek>(
        &mut self,
        loader: &mut Loader<'a, W>,
        src: Option<&Bucket<'a>>,
        compaction: Option<&Compaction>,
    ) -> Result<u64, RewriteError> {
        let mut removed = 0;
        if let Some(src) = src {
            let superseded = &self.superseded;
            let mut tracker = match &mut self.leases {
                LeasePlan::Rebuild {
                    candidates,
                    tracked,
                    ..
                } if !candidates.is_empty() => Some((&*candidates, tracked)),
                _ => None,
            };
            removed = super::copy_compacted(loader, src, compaction, &mut (), |index, e| {
                let kept_by_compaction = compaction.is_some_and(|c| c.keeps(index))
                    && compaction.is_some_and(|c| index < c.entries_up_to());
                let watch_superseded = kept_by_compaction && !superseded.is_empty();
                if tracker.is_none() && !watch_superseded {
                    return Ok(true);
                }
                let (kv, fp) = decode_fp(e)?;
                if let Some((candidates, tracked)) = tracker.as_mut() {
                    track(candidates, tracked, e, &kv, fp);
                }
                Ok(!(watch_superseded && superseded.contains_key(&fp)))
            })?;
        }
        for p in &self.events {
            if !p.keep {
                removed += 1;
                continue;
            }
            let (key, value) = p.entry();
            loader.put(key, value)?;
        }
        Ok(removed)
    }

    /// The `key` entries of the changes to append, in revision order
    /// (those the compaction keeps).
    #[cfg(feature = "repo")]
    fn entries(&self) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
        self.events.iter().filter(|p| p.keep).map(Pending::entry)
    }

    /// While the source's `key` bucket is read: whether its leases are to
    /// be tracked (see [`LeasePlan::Rebuild`]).
    #[cfg(feature = "repo")]
    fn tracks_source_leases(&self) -> bool {
        matches!(&self.leases, LeasePlan::Rebuild { candidates, .. } if !candidates.is_empty())
    }

    /// Reads the source's `key` bucket for the leases its keys hold (what
    /// [`write_key`](Self::write_key) learns while it copies the bucket),
    /// when the lease plan needs it.
    #[cfg(feature = "repo")]
    fn track_source_leases(&mut self, src: Option<&Bucket<'_>>) -> Result<(), RewriteError> {
        let LeasePlan::Rebuild {
            candidates,
            tracked,
            ..
        } = &mut self.leases
        else {
            return Ok(());
        };
        if candidates.is_empty() {
            return Ok(());
        }
        for e in src.into_iter().flat_map(Bucket::iter) {
            let e = e?;
            let (kv, fp) = decode_fp(&e)?;
            track(candidates, tracked, &e, &kv, fp);
        }
        Ok(())
    }

    /// The `lease` bucket's new entries by key, each with the lease's ID
    /// (`None`: the source's bucket as it is).
    fn lease_ids(&self) -> Option<BTreeMap<[u8; 8], i64>> {
        let LeasePlan::Rebuild {
            alive,
            tracked,
            touched,
            ..
        } = &self.leases
        else {
            return None;
        };
        let mut ids: BTreeSet<i64> = alive.clone();
        for (fp, id) in tracked {
            if !touched.contains_key(fp) {
                ids.insert(*id);
            }
        }
        // etcd keys the bucket by the ID's 8 big-endian bytes.
        Some(ids.into_iter().map(|id| (id.to_be_bytes(), id)).collect())
    }

    /// The record of lease `id` for one the source does not hold.
    fn new_lease(&self, id: i64) -> Vec<u8> {
        let ttl = match &self.leases {
            LeasePlan::Rebuild { records, .. } => records.get(&id).map_or(0, |r| r.ttl),
            LeasePlan::Copy => 0,
        };
        Lease {
            id,
            ttl,
            remaining_ttl: 0,
        }
        .encode_to_vec()
    }

    /// Writes the `lease` bucket (`src`: the source's).
    pub(super) fn write_lease<'a, W: Write + Seek>(
        &mut self,
        loader: &mut Loader<'a, W>,
        src: Option<&Bucket<'a>>,
    ) -> Result<(), RewriteError> {
        let Some(keyed) = self.lease_ids() else {
            if let Some(src) = src {
                crate::bolt::copy_bucket(loader, src).map_err(super::from_copy)?;
                self.leases_written = src.iter().count() as u64;
            }
            return Ok(());
        };
        for (k, id) in keyed {
            let from_src = match src {
                Some(b) => b.get(&k)?,
                None => None,
            };
            match from_src {
                Some(v) => loader.put(k.to_vec(), v)?,
                None => loader.put(k.to_vec(), self.new_lease(id))?,
            }
            self.leases_written += 1;
        }
        Ok(())
    }
}

impl Pending<'_> {
    /// Its `key` bucket entry, as etcd's `storeTxnWrite` writes it.
    fn entry(&self) -> (Vec<u8>, Vec<u8>) {
        let kv = &self.ev.kv;
        let rk = self.rev.encode();
        match self.ev.kind {
            EventKind::Put => (rk.to_vec(), kv.encode_to_vec()),
            EventKind::Delete => {
                let mut k = rk.to_vec();
                k.push(TOMBSTONE_MARK);
                let v = KeyValue {
                    key: kv.key.clone(),
                    ..KeyValue::default()
                };
                (k, v.encode_to_vec())
            }
        }
    }
}

/// A source `key` entry seen while the leases are tracked: a live key
/// attached to a candidate lease is tracked, any other change of the key
/// ends its tracking.
fn track(
    candidates: &HashSet<i64>,
    tracked: &mut FpMap<i64>,
    e: &LeafElem<'_>,
    kv: &KeyValueRef<'_>,
    fp: Fp,
) {
    if !revision::is_tombstone(e.key) && candidates.contains(&kv.lease) {
        tracked.insert(fp, kv.lease);
    } else if !tracked.is_empty() {
        tracked.remove(&fp);
    }
}

/// [`decode`], with the fingerprint of the entry's user key.
fn decode_fp<'a>(e: &LeafElem<'a>) -> Result<(KeyValueRef<'a>, Fp), RewriteError> {
    let kv = decode(e)?;
    let fp = Fp(fingerprint(kv.key));
    Ok((kv, fp))
}

/// A `key` bucket entry's `KeyValue`, refused as the readers refuse it.
fn decode<'a>(e: &LeafElem<'a>) -> Result<KeyValueRef<'a>, RewriteError> {
    KeyValueRef::parse(e.value).ok_or_else(|| {
        MvccError::BadEntry {
            rev_key: crate::go::hex::encode(e.key),
            offset: 0,
            what: "value does not decode as mvccpb.KeyValue".into(),
        }
        .into()
    })
}

/// The lease plan for a target `to` above the source (see the module
/// documentation for the rule).
fn plan_leases(
    to: i64,
    segments: &[ChangeSegment],
    events: &[Pending<'_>],
    base_leases: &[crate::mvcc::LeaseInfo],
) -> LeasePlan {
    let base_ids: BTreeSet<i64> = base_leases.iter().map(|l| l.id).collect();
    let at = segments
        .iter()
        .position(|s| s.last >= to)
        .unwrap_or(segments.len().saturating_sub(1));
    let alive_at_end = |s: &ChangeSegment| -> BTreeSet<i64> {
        s.leases
            .iter()
            .filter(|l| l.alive_at_end)
            .map(|l| l.id)
            .collect()
    };
    let mut alive = match segments.get(at) {
        Some(seg) => {
            let end = alive_at_end(seg);
            if seg.last == to {
                end
            } else {
                let start = match at.checked_sub(1).and_then(|p| segments.get(p)) {
                    Some(prev) => alive_at_end(prev),
                    None => base_ids.clone(),
                };
                start.intersection(&end).copied().collect()
            }
        }
        None => base_ids.clone(),
    };
    // The leases of the keys the changes leave live at the target.
    let mut latest: FpMap<i64> = FpMap::default();
    for p in events {
        let lease = match p.ev.kind {
            EventKind::Put => p.ev.kv.lease,
            EventKind::Delete => 0,
        };
        latest.insert(Fp(fingerprint(&p.ev.kv.key)), lease);
    }
    alive.extend(latest.values().copied().filter(|&l| l != 0));
    let touched: FpMap<()> = latest.into_keys().map(|k| (k, ())).collect();
    let candidates: HashSet<i64> = base_ids.difference(&alive).copied().collect();
    let mut records: HashMap<i64, LeaseRecord> = HashMap::new();
    for seg in segments.get(..=at).unwrap_or_default() {
        for l in &seg.leases {
            let keep_old = records.get(&l.id).is_some_and(|o| o.ttl > 0 && l.ttl == 0);
            if !keep_old {
                records.insert(l.id, *l);
            }
        }
    }
    LeasePlan::Rebuild {
        alive,
        candidates,
        tracked: FpMap::default(),
        touched,
        records,
    }
}
