//! etcd's KV history hash: what `etcdctl endpoint hashkv --rev R` answers
//! from a live member and `etcdutl hashkv FILE --rev R` (3.6, 3.7) prints
//! for a db file. It is how one proves that a backup holds the same history
//! as the cluster up to a revision.
//!
//! The hash (etcd's `HashByRev`, `server/storage/mvcc/hash.go` and
//! `kvstore.go`) is a CRC-32C, seeded with the bucket name `key`, over the
//! key and value bytes of the `key` bucket's entries, in bucket order, up to
//! the hashed revision `R`. Entries at or below the compaction revision `C`
//! count only if they are in etcd's `keep` set: `kvindex.Keep(R)`, which
//! holds, for every key alive at `R`, the revision of its newest change at
//! or before `R`. So an old revision counts only while it is still the
//! newest one of a live key at `R`; an overwritten, deleted or
//! compacted-away one does not, whether or not the compaction has removed
//! it from the file yet (that is what makes members that compacted at
//! different moments agree). When `keep` is empty (no key alive at `R`),
//! etcd hashes every entry at or below `C`. etcd 3.6 (and 3.5.16+) also
//! leave out a tombstone at exactly `C`, which 3.5.15 and older compactions
//! delete and newer ones keep.
//!
//! # Cost
//!
//! etcd builds the whole in-memory index to get `keep`. Here only the part
//! of `keep` that matters is built: entries at or below `C` are, once a
//! compaction has finished, one per key alive at `C`, so the keys alive at
//! `C` are collected from them (a fingerprint and a revision each), then
//! one parallel scan of the entries above `C` hashes them and marks the
//! keys that changed again. Memory is proportional to the keys alive at the
//! compaction, not to the history; a store never compacted needs none.
//!
//! # Limits
//!
//! The bucket is taken to be in revision order, as etcd writes it (a file
//! that is not cannot be opened by etcd: its index restore panics). A key
//! deleted and put again in one revision would be counted as alive by this
//! reading where etcd's index does not; etcd refuses such a transaction
//! (`duplicate key given in txn request`), so no etcd writes it.

use std::sync::atomic::{AtomicBool, Ordering};

use super::error::{MvccError, hex};
use super::fp::{self, Fp, FpMap};
use super::scan::{ChunkState, Entry};
use super::{Revisions, Store};
use crate::bolt::LeafElem;
use crate::etcd::TargetVersion;
use crate::etcd::buckets;
use crate::etcd::revision::{self, RevKey, Revision};

/// The KV history hash of a store at a revision, with the fields
/// `etcdutl hashkv` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HashKv {
    /// CRC-32C (Castagnoli) over `key` and the entries hashed.
    pub hash: u32,
    /// The revision hashed up to (the current one when 0 was asked for).
    pub hash_revision: i64,
    /// The compaction revision in effect, -1 when the store was never
    /// compacted (etcd's `compactMainRev`).
    pub compact_revision: i64,
}

/// Why a hash could not be computed. The revision errors carry etcd's own
/// wording (`mvcc.ErrCompacted`, `mvcc.ErrFutureRev`), as `etcdutl hashkv`
/// prints it; a live member's answer adds `etcdserver: ` in front.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashKvError {
    /// The revision asked for has been compacted (below the compaction
    /// revision; under the 3.4 and 3.5 rules, at it too).
    #[error("mvcc: required revision has been compacted")]
    Compacted {
        /// The revision asked for.
        requested: i64,
        /// The compaction revision.
        compacted: i64,
    },
    /// The revision asked for is beyond the current revision.
    #[error("mvcc: required revision is a future revision")]
    FutureRevision {
        /// The revision asked for.
        requested: i64,
        /// The current revision.
        current: i64,
    },
    /// The `key` bucket could not be read.
    #[error(transparent)]
    Mvcc(#[from] MvccError),
}

impl From<crate::bolt::BoltError> for HashKvError {
    fn from(e: crate::bolt::BoltError) -> Self {
        HashKvError::Mvcc(e.into())
    }
}

/// The compaction revision etcd's store holds after opening the file:
/// the finished compaction, or a scheduled one it resumes; -1 for none.
fn compact_revision(revs: &Revisions) -> i64 {
    // `compacted` is the finished compaction (0 when none) or a resumed
    // scheduled one, which is newer.
    match revs.finished_compact {
        Some(finished) => finished.max(revs.compacted),
        None if revs.compacted > 0 => revs.compacted,
        None => -1,
    }
}

/// Whether a request for `rev` fails as compacted, by `rules`: 3.4 and 3.5
/// (up to 3.5.9) refuse the compaction revision itself, 3.6 allows it.
fn is_compacted(rev: i64, compact: i64, rules: TargetVersion) -> bool {
    if rules >= TargetVersion::V3_6 {
        rev < compact
    } else {
        rev <= compact
    }
}

/// A key alive at the compaction revision: the revision of its newest
/// change, and whether a later change (up to the hashed revision) was seen.
struct Candidate {
    rev: Revision,
    changed: AtomicBool,
}

/// One scan part's share of the hash: CRC-32C and length of what it
/// hashed, and its newest entry (revision, tombstone).
#[derive(Default)]
struct Part {
    crc: u32,
    len: u64,
    newest: Option<(Revision, bool)>,
}
impl ChunkState for Part {}

/// Parses an entry's revision key; a key that is not one is a damaged
/// entry (etcd itself would crash on it).
fn rev_key(db: crate::bolt::Db<'_>, e: &LeafElem<'_>) -> Result<RevKey, MvccError> {
    revision::parse(e.key).map_err(|err| MvccError::BadEntry {
        rev_key: hex(e.key),
        offset: crate::bolt::bucket::value_offset(db, e.value),
        what: err.to_string(),
    })
}

impl<'a> Store<'a> {
    /// The KV history hash up to revision `rev` (0: the current revision),
    /// as etcd of the store's [rules](Store::with_rules) computes it:
    /// `etcdutl hashkv` (3.6, 3.7) on this file, or
    /// `etcdctl endpoint hashkv --rev` asked of a member holding the same
    /// data. A negative `rev` is hashed as etcd does (nothing but the
    /// seed).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use etcdsnap::{Snapshot, TargetVersion};
    /// use etcdsnap::mvcc::Store;
    ///
    /// let snap = Snapshot::open("testdata/snapshots/small-v35.db")?;
    /// let store = Store::open(&snap)?.with_rules(TargetVersion::V3_6);
    /// let h = store.hash_kv(0)?; // etcdutl 3.6.14 hashkv: 2905696941, 4, -1
    /// assert_eq!((h.hash, h.hash_revision, h.compact_revision), (2905696941, 4, -1));
    /// # Ok(()) }
    /// ```
    pub fn hash_kv(&self, rev: i64) -> Result<HashKv, HashKvError> {
        let revs = self.revisions();
        let compact = compact_revision(&revs);
        if rev > 0 && is_compacted(rev, compact, self.rules()) {
            return Err(HashKvError::Compacted {
                requested: rev,
                compacted: compact,
            });
        }
        if rev > 0 && rev > revs.current {
            return Err(HashKvError::FutureRevision {
                requested: rev,
                current: revs.current,
            });
        }
        let rev = if rev == 0 { revs.current } else { rev };
        let hash = match self.key_bucket() {
            Some(_) => self.hash_entries(rev, compact)?,
            None => crc32c::crc32c(buckets::KEY),
        };
        self.release();
        Ok(HashKv {
            hash,
            hash_revision: rev,
            compact_revision: compact,
        })
    }

    /// The hash over the `key` bucket (which exists) up to `rev`, with the
    /// compaction at `compact`.
    fn hash_entries(&self, rev: i64, compact: i64) -> Result<u32, HashKvError> {
        // etcd's bounds, with Go's wrapping arithmetic.
        let upper = Revision {
            main: rev.wrapping_add(1),
            sub: 0,
        };
        let lower = Revision {
            main: compact.wrapping_add(1),
            sub: 0,
        };
        let (alive, below) = self.alive_below(lower, rev)?;
        let parts = self.hash_above(lower, upper, rev, &alive)?;
        // `keep` restricted to revisions below `lower`: keys alive at the
        // compaction that did not change again up to `rev`.
        let mut kept: Vec<Revision> = alive
            .into_values()
            .filter(|c| !c.changed.load(Ordering::Relaxed))
            .map(|c| c.rev)
            .collect();
        kept.sort_unstable();
        let keep_empty = below > 0 && kept.is_empty() && !self.any_alive(rev, &parts)?;
        let mut crc = self.hash_below(lower, upper, compact, &kept, keep_empty)?;
        for p in &parts {
            crc = crc32c::crc32c_combine(crc, p.crc, usize::try_from(p.len).unwrap_or(usize::MAX));
        }
        Ok(crc)
    }

    /// The keys alive after the entries below `lower` (those changed at or
    /// before `rev`), with the revision of their newest change; and how many
    /// entries lie below `lower`.
    fn alive_below(
        &self,
        lower: Revision,
        rev: i64,
    ) -> Result<(FpMap<Candidate>, u64), HashKvError> {
        let mut alive: FpMap<Candidate> = FpMap::default();
        let mut below = 0u64;
        let db = self.db();
        self.walk_from_start(|e, rk| {
            if rk.rev >= lower {
                return Ok(false);
            }
            below += 1;
            // etcd's `keep` walks revisions whose main part is at most `rev`.
            if rk.rev.main <= rev {
                let fp = Fp(fp::fingerprint(Entry::decode(db, e)?.kv.key));
                if rk.tombstone {
                    alive.remove(&fp);
                } else {
                    alive.insert(
                        fp,
                        Candidate {
                            rev: rk.rev,
                            changed: AtomicBool::new(false),
                        },
                    );
                }
            }
            Ok(true)
        })?;
        Ok((alive, below))
    }

    /// Hashes the entries from `lower` up to `upper` on all cores, one part
    /// per scan chunk, marking the `alive` keys they change.
    fn hash_above(
        &self,
        lower: Revision,
        upper: Revision,
        rev: i64,
        alive: &FpMap<Candidate>,
    ) -> Result<Vec<Part>, HashKvError> {
        let db = self.db();
        let parts = self.scan(upper.main.max(rev), false, Part::default, |p, r| {
            let e = r.elem();
            let rk = rev_key(db, e)?;
            if rk.rev < lower || rk.rev >= upper {
                return Ok(());
            }
            p.crc = crc32c::crc32c_append(p.crc, e.key);
            p.crc = crc32c::crc32c_append(p.crc, e.value);
            p.len += (e.key.len() + e.value.len()) as u64;
            if rk.rev.main <= rev {
                if !alive.is_empty()
                    && let Some(c) = alive.get(&Fp(fp::fingerprint(r.key)))
                {
                    c.changed.store(true, Ordering::Relaxed);
                }
                p.newest = Some((rk.rev, rk.tombstone));
            }
            Ok(())
        })?;
        Ok(parts)
    }

    /// Whether any key is alive at `rev`, when no key alive at the
    /// compaction stayed unchanged: then only keys written after it can
    /// make etcd's `keep` non-empty. The newest change being a put shows
    /// one at once; otherwise every key's last change is looked at.
    fn any_alive(&self, rev: i64, parts: &[Part]) -> Result<bool, HashKvError> {
        match parts.iter().rev().find_map(|p| p.newest) {
            None => return Ok(false),
            Some((_, false)) => return Ok(true),
            Some((_, true)) => {}
        }
        let db = self.db();
        let mut last: FpMap<bool> = FpMap::default();
        self.walk_from_start(|e, rk| {
            if rk.rev.main > rev {
                return Ok(false);
            }
            let key = Entry::decode(db, e)?.kv.key;
            last.insert(Fp(fp::fingerprint(key)), !rk.tombstone);
            Ok(true)
        })?;
        Ok(last.values().any(|&put| put))
    }

    /// The CRC-32C of the seed `key` and the entries below `lower` that
    /// etcd hashes: those in `kept`, or all when `keep` is empty.
    fn hash_below(
        &self,
        lower: Revision,
        upper: Revision,
        compact: i64,
        kept: &[Revision],
        keep_empty: bool,
    ) -> Result<u32, HashKvError> {
        let mut crc = crc32c::crc32c(buckets::KEY);
        let skip_compacted_tombstone = self.rules() >= TargetVersion::V3_6;
        self.walk_from_start(|e, rk| {
            if rk.rev >= lower {
                return Ok(false);
            }
            let hashed = rk.rev < upper
                && (keep_empty || kept.binary_search(&rk.rev).is_ok())
                && !(skip_compacted_tombstone && rk.tombstone && rk.rev.main == compact);
            if hashed {
                crc = crc32c::crc32c_append(crc, e.key);
                crc = crc32c::crc32c_append(crc, e.value);
            }
            Ok(true)
        })?;
        Ok(crc)
    }

    /// Reads the `key` bucket in order from its first entry, handing `f`
    /// each element with its revision key, until `f` says to stop.
    fn walk_from_start<F>(&self, mut f: F) -> Result<(), HashKvError>
    where
        F: FnMut(&LeafElem<'a>, RevKey) -> Result<bool, HashKvError>,
    {
        let Some(bucket) = self.key_bucket() else {
            return Ok(());
        };
        let db = self.db();
        let mut cursor = bucket.cursor();
        let mut elem = cursor.first()?;
        while let Some(e) = elem {
            if !f(&e, rev_key(db, &e)?)? {
                break;
            }
            elem = cursor.next()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_revision_follows_etcds_store() {
        let r = Revisions::decide(Some(10), None, None, TargetVersion::V3_6);
        assert_eq!(compact_revision(&r), -1);
        let r = Revisions::decide(Some(10), Some(4), None, TargetVersion::V3_6);
        assert_eq!(compact_revision(&r), 4);
        let r = Revisions::decide(Some(10), Some(4), Some(7), TargetVersion::V3_5);
        assert_eq!(compact_revision(&r), 7);
        let r = Revisions::decide(Some(10), None, Some(7), TargetVersion::V3_5);
        assert_eq!(compact_revision(&r), 7);
        // 3.5 does not resume a compaction beyond the current revision.
        let r = Revisions::decide(Some(5), Some(4), Some(7), TargetVersion::V3_5);
        assert_eq!(compact_revision(&r), 4);
    }

    #[test]
    fn the_compaction_revision_itself_is_refused_before_3_6() {
        assert!(is_compacted(7, 7, TargetVersion::V3_5));
        assert!(is_compacted(7, 7, TargetVersion::V3_4));
        assert!(!is_compacted(7, 7, TargetVersion::V3_6));
        assert!(is_compacted(6, 7, TargetVersion::V3_7));
        assert!(!is_compacted(8, 7, TargetVersion::V3_5));
    }
}
