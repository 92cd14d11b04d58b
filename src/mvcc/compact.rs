//! etcd's compaction, decided on a snapshot: which entries of the `key`
//! bucket a compaction at revision R keeps.
//!
//! etcd 3.4 and 3.5 (`treeIndex.Compact`, `keyIndex.compact`, then
//! `scheduleCompaction`) keep, for each user key, the newest revision at or
//! below R unless it is a tombstone, and every revision above R; every
//! other entry with a main revision up to R is deleted from the bucket.
//! That newest revision is found here with one pass over the entries up to
//! R in revision order, remembering per key (by a 128-bit fingerprint,
//! so the map never reads keys back from the file) the position of its
//! newest entry; the positions kept are then a bitmap over those entries,
//! which [`Compaction::keeps`] answers for the pass that writes the file.

use super::fp::{Fp, FpMap, fingerprint};
use super::scan::Entry;
use super::{MvccError, Store};
use crate::etcd::revision::Revision;

/// Bytes of entries between two releases of the map.
const RELEASE_EVERY: u64 = 32 << 20;

/// A compaction decided on a store: the revision and what it keeps.
#[derive(Debug, Clone)]
pub struct Compaction {
    revision: i64,
    /// One bit per entry with a main revision up to `revision`, in bucket
    /// order: whether it is kept.
    keep: Vec<u64>,
    entries: u64,
    kept: u64,
}

impl Compaction {
    /// The revision compacted at.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Entries of the `key` bucket up to the revision.
    pub fn entries_up_to(&self) -> u64 {
        self.entries
    }

    /// Of those, how many are kept.
    pub fn kept_up_to(&self) -> u64 {
        self.kept
    }

    /// Whether the entry at position `index` of the `key` bucket (counted
    /// from 0 in key order) is kept: every entry after those up to the
    /// revision is.
    pub fn keeps(&self, index: u64) -> bool {
        if index >= self.entries {
            return true;
        }
        let (w, b) = ((index / 64) as usize, index % 64);
        self.keep.get(w).is_some_and(|word| word & (1 << b) != 0)
    }

    /// The value etcd writes to `meta/scheduledCompactRev` and
    /// `meta/finishedCompactRev` for it.
    pub fn meta_value(&self) -> [u8; 17] {
        Revision {
            main: self.revision,
            sub: 0,
        }
        .encode()
    }
}

impl Store<'_> {
    /// Decides a compaction at `revision` (0: the current revision), as
    /// etcd's `Compact` would: refused with etcd's words when the revision
    /// is not above the compacted one, or beyond the current one.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let snap = etcdsnap::Snapshot::open("testdata/snapshots/small-v35.db")?;
    /// let store = etcdsnap::mvcc::Store::open(&snap)?;
    /// let c = store.compaction(0)?;
    /// assert_eq!(c.revision(), 4);
    /// assert!(store.compaction(5).is_err());
    /// # Ok(()) }
    /// ```
    pub fn compaction(&self, revision: i64) -> Result<Compaction, MvccError> {
        let revs = self.revisions();
        let rev = if revision == 0 {
            revs.current
        } else {
            revision
        };
        if rev > revs.current {
            return Err(MvccError::FutureRevision {
                requested: rev,
                current: revs.current,
            });
        }
        // etcd: `rev <= compactMainRev` is ErrCompacted (its compactMainRev
        // starts at -1, so on a never-compacted store only rev < 0 is).
        let compacted = if revs.compacted == 0 && revs.finished_compact.is_none() {
            -1
        } else {
            revs.compacted
        };
        if rev <= compacted || rev < 0 {
            return Err(MvccError::Compacted {
                requested: rev,
                compacted: revs.compacted,
            });
        }
        self.compaction_unchecked(rev)
    }

    /// What a compaction at `rev` keeps of this store's entries, with no
    /// check of `rev` against the current and compacted revisions: the
    /// point-in-time apply decides a compaction at a revision beyond the
    /// store's (over the store and the changes appended to it), and one
    /// at or below the store's compacted revision re-decides nothing that
    /// the store's own compaction did not already (compactions compose).
    pub(crate) fn compaction_unchecked(&self, rev: i64) -> Result<Compaction, MvccError> {
        let mut newest: FpMap<u64> = FpMap::default();
        let mut entries = 0u64;
        let mut bytes = 0u64;
        if let Some(bucket) = self.key_bucket() {
            let db = self.db();
            for e in bucket.iter() {
                let e = e?;
                if Revision::main_of(e.key).is_some_and(|m| m > rev) {
                    break;
                }
                let entry = Entry::decode(db, &e)?;
                if entry.rev.main > rev {
                    break;
                }
                newest.insert(
                    Fp(fingerprint(entry.kv.key)),
                    entries << 1 | u64::from(entry.tombstone),
                );
                entries += 1;
                bytes += entry.size;
                if bytes >= RELEASE_EVERY {
                    bytes = 0;
                    self.release();
                }
            }
        }
        self.release();
        let mut keep = vec![0u64; entries.div_ceil(64) as usize];
        let mut kept = 0;
        for v in newest.into_values() {
            if v & 1 == 0 {
                let i = v >> 1;
                if let Some(w) = keep.get_mut((i / 64) as usize) {
                    *w |= 1 << (i % 64);
                    kept += 1;
                }
            }
        }
        Ok(Compaction {
            revision: rev,
            keep,
            entries,
            kept,
        })
    }
}
