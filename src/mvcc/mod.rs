//! The snapshot as a multi-version key-value store: the view etcd's MVCC
//! layer gives of the `key` bucket, read straight from the file.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use etcdsnap::Snapshot;
//! use etcdsnap::mvcc::{RangeRequest, Store, prefix_end};
//!
//! let snap = Snapshot::open("testdata/snapshots/small-v35.db")?;
//! let store = Store::open(&snap)?;
//! assert_eq!(store.revisions().current, 4);
//! let kv = store.get(b"name", 0)?.expect("name is set");
//! assert_eq!((kv.value, kv.mod_revision), (&b"jormun_new"[..], 4));
//! assert!(store.get(b"foo", 0)?.is_none()); // deleted at revision 3
//! assert_eq!(store.get(b"foo", 2)?.map(|kv| kv.value), Some(&b"bar"[..]));
//! let all = store.range(&RangeRequest::key(b"\0").with_range_end(b"\0"))?;
//! assert_eq!(all.count, 2);
//! let history = store.history(b"foo")?;
//! assert_eq!(history.len(), 2); // the put and the deletion
//! // etcd's KV history hash (`etcdctl endpoint hashkv --rev 4`)
//! assert_eq!(store.hash_kv(4)?.hash, 2905696941);
//! # Ok(()) }
//! ```
//!
//! # Cost
//!
//! The `key` bucket is ordered by revision, not by user key, and the file
//! has no other index. Rather than build one (etcd's in-memory B-tree costs
//! it seconds and a few hundred bytes per key when it boots), every query is
//! one scan of the bucket in revision order, on all cores, that
//! looks at each entry in place and stops at the revision asked for. Memory
//! is what the answer holds: a point lookup keeps one entry; a range keeps
//! one entry per key in the range (a `&[u8]` key and a 48-byte view, both
//! borrowed from the map); a count keeps the same per key counted. Nothing
//! is allocated per entry read, and pages already read are dropped from the
//! process's map as the scan goes (with [`Store::open`]), so the resident
//! set does not grow with the file.

mod cluster;
mod compact;
mod error;
pub(crate) use crate::etcd::fp;
pub(crate) mod gosort;
mod hashkv;
mod range;
mod revisions;
pub(crate) mod scan;

pub use cluster::{ClusterInfo, LeaseInfo};
pub use compact::Compaction;
pub use error::MvccError;
pub use hashkv::{HashKv, HashKvError};
pub use range::{RangeRequest, RangeResponse, SortOrder, SortTarget, prefix_end};
pub use revisions::Revisions;
pub use scan::Entry;

use crate::bolt::{Bucket, Db};
use crate::etcd::TargetVersion;
use crate::etcd::buckets;
use crate::etcd::kv::KeyValueRef;
use crate::etcd::revision::Revision;
use crate::mmap::Mapped;
use crate::snapshot::{Snapshot, SnapshotError};
use fp::{Fp, FpMap};
use scan::{Chunk, ChunkState, Raw, ScanSpec};

/// A read-only MVCC view of a snapshot's `key` bucket.
pub struct Store<'a> {
    db: Db<'a>,
    key: Option<Bucket<'a>>,
    map: Option<&'a Mapped>,
    threads: usize,
    rules: TargetVersion,
    revs: Revisions,
    chunks: Vec<Chunk<'a>>,
}

impl std::fmt::Debug for Store<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("revisions", &self.revs)
            .field("threads", &self.threads)
            .field("rules", &self.rules)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The file is not a readable snapshot.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The database inside cannot be read as etcd's.
    #[error(transparent)]
    Mvcc(#[from] MvccError),
}

impl<'a> Store<'a> {
    /// The store of a snapshot file, with etcd 3.5's rules. Pages read are
    /// dropped from the map as queries go.
    pub fn open(snap: &'a Snapshot) -> Result<Store<'a>, OpenError> {
        let db = snap.db()?;
        Ok(Store::from_db(db)?.releasing(snap.file().map()))
    }

    /// This store, dropping the pages it reads from `map` (the map its
    /// database lives in) as queries go.
    pub(crate) fn releasing(mut self, map: &'a Mapped) -> Store<'a> {
        self.map = Some(map);
        self
    }

    /// The store of a bbolt database already open (etcd 3.5's rules).
    pub(crate) fn from_db(db: Db<'a>) -> Result<Store<'a>, MvccError> {
        let key = db.root().bucket(buckets::KEY)?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let last = match &key {
            Some(b) => b.cursor().last()?.and_then(|e| Revision::main_of(e.key)),
            None => None,
        };
        let (finished, scheduled) = cluster::compact_revs(db)?;
        let rules = TargetVersion::V3_5;
        let chunks = match &key {
            Some(b) => scan::chunks(db, b, threads * scan::CHUNKS_PER_THREAD)?,
            None => Vec::new(),
        };
        Ok(Store {
            db,
            key,
            map: None,
            threads,
            rules,
            revs: Revisions::decide(last, finished, scheduled, rules),
            chunks,
        })
    }

    /// Reproduces the behaviour of another etcd release (how an interrupted
    /// compaction is resumed, which Go sort orders equal keys).
    pub fn with_rules(mut self, rules: TargetVersion) -> Store<'a> {
        self.rules = rules;
        self.revs = Revisions::decide(
            self.revs.last_entry,
            self.revs.finished_compact,
            self.revs.scheduled_compact,
            rules,
        );
        self
    }

    /// Uses `n` threads (at least 1) for scans.
    pub fn with_threads(mut self, n: usize) -> Store<'a> {
        self.threads = n.max(1);
        self
    }

    /// The database.
    pub fn db(&self) -> Db<'a> {
        self.db
    }

    /// The release whose rules apply.
    pub(crate) fn rules(&self) -> TargetVersion {
        self.rules
    }

    /// Current and compacted revision.
    pub fn revisions(&self) -> Revisions {
        self.revs
    }

    /// Members, cluster ID and raft position.
    pub fn cluster(&self) -> Result<ClusterInfo, MvccError> {
        cluster::cluster_info(self.db)
    }

    /// Leases.
    pub fn leases(&self) -> Result<Vec<LeaseInfo>, MvccError> {
        cluster::leases(self.db)
    }

    /// Scans every entry with a main revision up to `max_main` (in
    /// revision order within each part; parts run in parallel), with one
    /// state per part, returned in revision order.
    pub(crate) fn scan<S, I, V>(
        &self,
        max_main: i64,
        newest_first: bool,
        init: I,
        visit: V,
    ) -> Result<Vec<S>, MvccError>
    where
        S: ChunkState,
        I: Fn() -> S + Sync,
        V: Fn(&mut S, &Raw<'a>) -> Result<(), MvccError> + Sync,
    {
        let map = self.map;
        if let Some(m) = map {
            m.advise(memmap2::Advice::Normal);
        }
        let release = move || {
            if let Some(m) = map {
                m.release();
            }
        };
        let spec = ScanSpec {
            max_main,
            newest_first,
            threads: self.threads,
            release: Some(&release),
        };
        scan::scan(self.db, &self.chunks, spec, init, visit)
    }

    /// The main revisions where the scan's parts start (ascending; the
    /// first part starts at the beginning), for splitting other work the
    /// same way.
    pub(crate) fn part_starts(&self) -> Vec<i64> {
        self.chunks.iter().filter_map(|c| c.first_main()).collect()
    }

    /// After a scan: drops the pages read from the map and stops the kernel
    /// from mapping neighbouring pages on each fault, so that reading the
    /// scattered entries of an answer costs a page each, not sixteen.
    pub(crate) fn quiet(&self) {
        if let Some(m) = self.map {
            m.release();
            m.advise(memmap2::Advice::Random);
        }
    }

    /// Drops the pages read so far from the process's map (when the store
    /// was opened from a snapshot file), for readers other than [`scan`].
    pub(crate) fn release(&self) {
        if let Some(m) = self.map {
            m.release();
        }
    }

    /// The `key` bucket, if the file has one.
    pub(crate) fn key_bucket(&self) -> Option<Bucket<'a>> {
        self.key.clone()
    }

    /// The newest change of `key` at revision `rev` (0 for the current
    /// one): `None` when the key did not exist then or had been deleted.
    pub fn get(&self, key: &[u8], rev: i64) -> Result<Option<KeyValueRef<'a>>, MvccError> {
        let rev = self.revs.resolve(rev)?;
        Ok(self
            .newest(key, rev)?
            .filter(|e| !e.tombstone)
            .map(|e| e.kv))
    }

    /// The newest entry of `key` up to `rev` (a tombstone included).
    fn newest(&self, key: &[u8], rev: i64) -> Result<Option<Entry<'a>>, MvccError> {
        if self.key.is_none() {
            return Ok(None);
        }
        let states = self.scan(
            rev,
            true,
            || Newest(None),
            |s, r| {
                if same_key(r.key, key) {
                    s.0 = Some(r.decode()?);
                }
                Ok(())
            },
        )?;
        self.quiet();
        Ok(states.into_iter().rev().find_map(|s| s.0))
    }

    /// A range request, answered as etcd answers it.
    pub fn range(&self, req: &RangeRequest<'_>) -> Result<RangeResponse<'a>, MvccError> {
        if req.key.is_empty() {
            return Err(MvccError::EmptyKey);
        }
        let rev = self.revs.resolve(req.revision)?;
        let kvs: Vec<KeyValueRef<'a>> = if req.is_single_key() {
            self.newest(req.key, rev)?
                .filter(|e| !e.tombstone)
                .map(|e| e.kv)
                .into_iter()
                .collect()
        } else if self.key.is_none() {
            Vec::new()
        } else {
            // Keyed by fingerprint, so growing the map never reads keys
            // back from pages the scan has already let go of.
            let states = self.scan(
                rev,
                false,
                || Latest(FpMap::default()),
                |s, r| {
                    if req.contains(r.key) {
                        s.0.insert(Fp(fp::fingerprint(r.key)), r.decode()?);
                    }
                    Ok(())
                },
            )?;
            let mut merged: FpMap<Entry<'a>> = FpMap::default();
            for s in states {
                if merged.is_empty() {
                    merged = s.0;
                } else {
                    merged.extend(s.0);
                }
            }
            let mut live: Vec<KeyValueRef<'a>> = merged
                .into_values()
                .filter(|e| !e.tombstone)
                .map(|e| e.kv)
                .collect();
            self.quiet();
            if req.count_only {
                return Ok(range::finish(req, live, self.revs.current, self.rules));
            }
            live.sort_unstable_by(|a, b| a.key.cmp(b.key));
            live
        };
        Ok(range::finish(req, kvs, self.revs.current, self.rules))
    }

    /// Every change of `key` still in the file, oldest first: puts and
    /// deletions (tombstones), whatever the compaction revision.
    pub fn history(&self, key: &[u8]) -> Result<Vec<Entry<'a>>, MvccError> {
        if self.key.is_none() {
            return Ok(Vec::new());
        }
        let states = self.scan(
            i64::MAX,
            false,
            || All(Vec::new()),
            |s, r| {
                if r.key == key {
                    s.0.push(r.decode()?);
                }
                Ok(())
            },
        )?;
        self.quiet();
        Ok(states.into_iter().flat_map(|s| s.0).collect())
    }
}

/// Key equality from the last byte: keys of one store share long prefixes
/// (`/registry/pods/<ns>/`) and differ at the end.
fn same_key(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().rev().zip(b.iter().rev()).all(|(x, y)| x == y)
}

struct Newest<'a>(Option<Entry<'a>>);
impl ChunkState for Newest<'_> {
    fn found(&self) -> bool {
        self.0.is_some()
    }
}

struct Latest<'a>(FpMap<Entry<'a>>);
impl ChunkState for Latest<'_> {}

struct All<'a>(Vec<Entry<'a>>);
impl ChunkState for All<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Snapshot {
        Snapshot::open(format!(
            "{}/testdata/snapshots/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture")
    }

    #[test]
    fn members_leases_and_revisions_of_the_k8s_fixture() {
        let snap = fixture("k8s-v35.db");
        let store = Store::open(&snap).expect("store");
        let info = store.cluster().expect("members");
        assert_eq!(info.members.len(), 1);
        assert_eq!(info.member_id, info.members[0].id);
        assert_eq!(
            info.cluster_id,
            crate::etcd::ids::cluster_id(&[info.member_id])
        );
        assert_eq!(info.raft_term, 2);
        let leases = store.leases().expect("leases");
        assert_eq!(leases.len(), 1);
        assert_eq!(leases[0].ttl, 3600);
        // The 20 keys on that lease show it.
        let all = store
            .range(&RangeRequest::key(b"\0").with_range_end(b"\0"))
            .expect("range");
        let leased = all.kvs.iter().filter(|kv| kv.lease == leases[0].id).count();
        assert_eq!(leased, 20);
        let r = store.revisions();
        assert_eq!((r.current, r.last_entry), (570, Some(570)));
        assert!(r.compacted > 1 && r.compacted == r.finished_compact.unwrap_or(0));
        assert!(matches!(
            store.get(b"x", r.compacted - 1),
            Err(MvccError::Compacted { .. })
        ));
        assert!(matches!(
            store.get(b"x", 571),
            Err(MvccError::FutureRevision { .. })
        ));
        assert_eq!(
            store.range(&RangeRequest::key(b"")),
            Err(MvccError::EmptyKey)
        );
    }

    #[test]
    fn one_thread_and_many_agree() {
        let snap = fixture("k8s-v34.db");
        let req = RangeRequest::key(b"/registry/").with_range_end(b"/registry0");
        let one = Store::open(&snap)
            .expect("store")
            .with_threads(1)
            .range(&req)
            .expect("range");
        let many = Store::open(&snap)
            .expect("store")
            .with_threads(7)
            .range(&req)
            .expect("range");
        assert_eq!(one, many);
        assert!(one.count > 4000);
        for key in [&b"/registry/pods/ns1/obj-0000001"[..], b"/nope"] {
            let a = Store::open(&snap)
                .expect("store")
                .with_threads(1)
                .history(key)
                .expect("h");
            let b = Store::open(&snap)
                .expect("store")
                .with_threads(5)
                .history(key)
                .expect("h");
            assert_eq!(a, b);
        }
    }
}
