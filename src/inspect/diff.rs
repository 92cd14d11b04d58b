//! What changed between two snapshots: keys added, removed and changed
//! between the state of OLD at one revision and NEW at another.
//!
//! Both `key` buckets are streamed in their own order, revision order, side
//! by side: an entry (revision key and `KeyValue` bytes) present in both is
//! history the two files share; every other entry names a user key that may
//! differ. This is complete: if a key's state differs, the newest entry of
//! it in one file is missing from the other, or the other has a newer one
//! for it, and either is an entry the files do not share. Then each file is
//! scanned once more for just those keys' newest entries, which are
//! compared.
//!
//! For two backups of one cluster (the usual case) the candidates are the
//! keys written between them, so memory follows the size of the change, not
//! of the files. Snapshots of unrelated clusters share no history and every
//! key becomes a candidate. The join runs on all cores, split at the same
//! revision boundaries as the scans.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::bolt::Bucket;
use crate::etcd::kv::KeyValueRef;
use crate::etcd::revision::Revision;
use crate::mvcc::scan::ChunkState;
use crate::mvcc::{Entry, MvccError, Store};

/// How a key differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    /// Only in NEW.
    Added,
    /// Only in OLD.
    Removed,
    /// In both, with a different value or lease.
    Changed,
}

/// One key that differs, with the two versions (views into the files:
/// their scalar fields and lengths are free to read; reading their bytes
/// faults the file's pages in again).
#[derive(Debug, Clone)]
pub struct Change<'o, 'n> {
    /// The user key.
    pub key: Vec<u8>,
    /// What happened.
    pub kind: ChangeKind,
    /// The version in OLD.
    pub old: Option<KeyValueRef<'o>>,
    /// The version in NEW.
    pub new: Option<KeyValueRef<'n>>,
}

/// The difference of two snapshots.
#[derive(Debug, Clone, Default)]
pub struct Diff<'o, 'n> {
    /// The revision OLD was read at.
    pub old_revision: i64,
    /// The revision NEW was read at.
    pub new_revision: i64,
    /// Keys that differ, in key order.
    pub changes: Vec<Change<'o, 'n>>,
    /// Keys written again with the same value and lease (a new revision,
    /// nothing else changed): not in `changes`.
    pub rewritten: u64,
    /// Keys the join named as candidates (how much had to be compared).
    pub candidates: u64,
}

impl Diff<'_, '_> {
    /// How many changes of `kind`.
    pub fn count(&self, kind: ChangeKind) -> usize {
        self.changes.iter().filter(|c| c.kind == kind).count()
    }
}

/// Compares OLD at `old_rev` with NEW at `new_rev` (0: current revision).
pub fn diff<'o, 'n>(
    old: &Store<'o>,
    new: &Store<'n>,
    old_rev: i64,
    new_rev: i64,
) -> Result<Diff<'o, 'n>, MvccError> {
    let old_rev = old.revisions().resolve(old_rev)?;
    let new_rev = new.revisions().resolve(new_rev)?;
    let candidates = join(old, new, old_rev, new_rev)?;
    let mut d = Diff {
        old_revision: old_rev,
        new_revision: new_rev,
        candidates: candidates.len() as u64,
        ..Diff::default()
    };
    if candidates.is_empty() {
        return Ok(d);
    }
    let set: HashSet<&[u8]> = candidates.iter().map(Vec::as_slice).collect();
    let a = newest_of(old, &set, old_rev)?;
    let b = newest_of(new, &set, new_rev)?;
    let mut keys: Vec<&Vec<u8>> = candidates.iter().collect();
    keys.sort();
    for k in keys {
        let o = a.get(k.as_slice()).filter(|e| !e.0.tombstone);
        let n = b.get(k.as_slice()).filter(|e| !e.0.tombstone);
        let kind = match (o, n) {
            (None, None) => continue,
            (None, Some(_)) => ChangeKind::Added,
            (Some(_), None) => ChangeKind::Removed,
            (Some((x, dx)), Some((y, dy))) => {
                let (x, y) = (x.kv, y.kv);
                if dx == dy && x.value.len() == y.value.len() && x.lease == y.lease {
                    if x.mod_revision != y.mod_revision {
                        d.rewritten += 1;
                    }
                    continue;
                }
                ChangeKind::Changed
            }
        };
        d.changes.push(Change {
            key: k.clone(),
            kind,
            old: o.map(|e| e.0.kv),
            new: n.map(|e| e.0.kv),
        });
    }
    Ok(d)
}

/// Candidate key -> its newest entry and the SHA-256 of its value.
type Seen<'k, 'a> = HashMap<&'k [u8], (Entry<'a>, [u8; 32])>;

/// The newest entry up to `rev` of each key in `keys`, keyed by the
/// candidate's own copy of the key, with the SHA-256 of its value taken
/// while the scan has the page at hand: comparing digests afterwards reads
/// nothing from the file again, so the resident set stays small.
fn newest_of<'k, 'a>(
    store: &Store<'a>,
    keys: &HashSet<&'k [u8]>,
    rev: i64,
) -> Result<Seen<'k, 'a>, MvccError> {
    struct Found<'k, 'a>(Seen<'k, 'a>);
    impl ChunkState for Found<'_, '_> {}
    let parts = store.scan(
        rev,
        false,
        || Found(HashMap::new()),
        |s, r| {
            if let Some(&k) = keys.get(r.key) {
                let e = r.decode()?;
                s.0.insert(k, (e, Sha256::digest(e.kv.value).into()));
            }
            Ok(())
        },
    )?;
    store.quiet();
    let mut all = HashMap::new();
    for p in parts {
        all.extend(p.0);
    }
    Ok(all)
}

/// The candidate keys of one range of revisions.
type Candidates = Result<HashSet<Vec<u8>>, MvccError>;

/// Streams both `key` buckets in revision order, in parallel ranges, and
/// returns the user keys of every entry up to the read revisions that the
/// two files do not share.
fn join(
    old: &Store<'_>,
    new: &Store<'_>,
    old_rev: i64,
    new_rev: i64,
) -> Result<Vec<Vec<u8>>, MvccError> {
    let (ob, nb) = (old.key_bucket(), new.key_bucket());
    let mut bounds: Vec<i64> = new.part_starts();
    bounds.retain(|&b| b > 0);
    bounds.sort_unstable();
    bounds.dedup();
    let mut ranges: Vec<(Option<i64>, Option<i64>)> = Vec::with_capacity(bounds.len() + 1);
    let mut lo = None;
    for b in bounds {
        ranges.push((lo, Some(b)));
        lo = Some(b);
    }
    ranges.push((lo, None));
    let next = AtomicUsize::new(0);
    let steps = AtomicUsize::new(0);
    let out: Mutex<Vec<(usize, Candidates)>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(ranges.len())
        .max(1);
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(lo, hi)) = ranges.get(i) else {
                break;
            };
            let r = join_range(
                old,
                new,
                ob.clone(),
                nb.clone(),
                (lo, hi),
                (old_rev, new_rev),
                &steps,
            );
            if let Ok(mut o) = out.lock() {
                o.push((i, r));
            }
        }
    };
    if threads == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(work);
            }
        });
    }
    let mut parts = out.into_inner().unwrap_or_default();
    parts.sort_by_key(|p| p.0);
    let mut all: HashSet<Vec<u8>> = HashSet::new();
    for (_, r) in parts {
        all.extend(r?);
    }
    Ok(all.into_iter().collect())
}

/// A cursor over one bucket limited to `[lo, hi)` main revisions and to
/// main revisions up to `max`.
struct Side<'a> {
    store_db: crate::bolt::Db<'a>,
    cursor: Option<crate::bolt::Cursor<'a>>,
    cur: Option<crate::bolt::LeafElem<'a>>,
    hi: Option<i64>,
    max: i64,
}

impl<'a> Side<'a> {
    fn new(
        store: &Store<'a>,
        b: Option<Bucket<'a>>,
        lo: Option<i64>,
        hi: Option<i64>,
        max: i64,
    ) -> Result<Side<'a>, MvccError> {
        let mut s = Side {
            store_db: store.db(),
            cursor: b.map(|b| b.cursor()),
            cur: None,
            hi,
            max,
        };
        if let Some(c) = s.cursor.as_mut() {
            s.cur = match lo {
                Some(m) => c.seek(&Revision { main: m, sub: 0 }.encode())?,
                None => c.first()?,
            };
        }
        s.clip()?;
        Ok(s)
    }

    /// Ends the side at the first entry past its range. An entry whose
    /// key is no revision is an error (the decoder says what and where),
    /// not the end of the side: that would leave the rest uncompared.
    fn clip(&mut self) -> Result<(), MvccError> {
        if let Some(e) = self.cur {
            let m = match Revision::main_of(e.key) {
                Some(m) => m,
                None => Entry::decode(self.store_db, &e)?.rev.main,
            };
            if m > self.max || self.hi.is_some_and(|h| m >= h) {
                self.cur = None;
            }
        }
        Ok(())
    }

    fn advance(&mut self) -> Result<(), MvccError> {
        if let Some(c) = self.cursor.as_mut() {
            self.cur = c.next()?;
        }
        self.clip()
    }

    fn user_key(&self, e: &crate::bolt::LeafElem<'a>) -> Result<Vec<u8>, MvccError> {
        Ok(Entry::decode(self.store_db, e)?.kv.key.to_vec())
    }
}

fn join_range<'o, 'n>(
    old: &Store<'o>,
    new: &Store<'n>,
    ob: Option<Bucket<'o>>,
    nb: Option<Bucket<'n>>,
    (lo, hi): (Option<i64>, Option<i64>),
    (old_rev, new_rev): (i64, i64),
    steps: &AtomicUsize,
) -> Result<HashSet<Vec<u8>>, MvccError> {
    let mut a = Side::new(old, ob, lo, hi, old_rev)?;
    let mut b = Side::new(new, nb, lo, hi, new_rev)?;
    let mut cands = HashSet::new();
    loop {
        // Keep the resident set flat: every 8192 steps of all ranges
        // together (about 20 MB of both files), drop the pages read.
        if steps.fetch_add(1, Ordering::Relaxed) % 8192 == 8191 {
            old.release();
            new.release();
        }
        match (a.cur, b.cur) {
            (None, None) => break,
            (Some(x), None) => {
                cands.insert(a.user_key(&x)?);
                a.advance()?;
            }
            (None, Some(y)) => {
                cands.insert(b.user_key(&y)?);
                b.advance()?;
            }
            (Some(x), Some(y)) => match x.key.cmp(y.key) {
                std::cmp::Ordering::Less => {
                    cands.insert(a.user_key(&x)?);
                    a.advance()?;
                }
                std::cmp::Ordering::Greater => {
                    cands.insert(b.user_key(&y)?);
                    b.advance()?;
                }
                std::cmp::Ordering::Equal => {
                    if x.value != y.value {
                        cands.insert(a.user_key(&x)?);
                        cands.insert(b.user_key(&y)?);
                    }
                    a.advance()?;
                    b.advance()?;
                }
            },
        }
    }
    Ok(cands)
}
