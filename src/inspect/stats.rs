//! `stats`: where the space of a snapshot goes.
//!
//! One structural walk of the file (the same parallel walk `snapshot
//! status` does, so the file is checked on the way) feeds every entry of the
//! `key` bucket to a visitor that sorts its bytes into live versions (the
//! newest change of a key, when not a deletion), history (older versions a
//! compaction would remove) and tombstones, per group. Pages nothing refers
//! to are free: what a defragmentation gives back.
//!
//! Memory: one 48-byte record per distinct user key (a 128-bit fingerprint
//! of the key, the size and file offset of its newest entry, its group and
//! revision count), about 50-100 bytes a key with the hash table's slack;
//! never the keys or values themselves, which stay in the map.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::group::{GroupBy, group_of, prefix_len};
use crate::bolt::check::{CheckOptions, WalkStats};
use crate::bolt::{Db, LeafElem, Visitor};
use crate::etcd::buckets;
use crate::etcd::kv::KeyValueRef;
use crate::mvcc::fp::{Fp, FpMap, fingerprint};
use crate::mvcc::{Entry, MvccError};
use crate::snapshot::{Snapshot, SnapshotError};

/// Bytes of one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupStats {
    /// Keys whose newest change is a put.
    pub live_keys: u64,
    /// Bytes of those newest versions.
    pub live_bytes: u64,
    /// Older versions still in the file.
    pub history_versions: u64,
    /// Their bytes.
    pub history_bytes: u64,
    /// Deletion markers.
    pub tombstones: u64,
    /// Their bytes.
    pub tombstone_bytes: u64,
}

impl GroupStats {
    /// All bytes of the group.
    pub fn total_bytes(&self) -> u64 {
        self.live_bytes + self.history_bytes + self.tombstone_bytes
    }

    fn add(&mut self, o: &GroupStats) {
        self.live_keys += o.live_keys;
        self.live_bytes += o.live_bytes;
        self.history_versions += o.history_versions;
        self.history_bytes += o.history_bytes;
        self.tombstones += o.tombstones;
        self.tombstone_bytes += o.tombstone_bytes;
    }
}

/// One key in a top-N list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStat {
    /// The user key.
    pub key: Vec<u8>,
    /// Its group.
    pub group: String,
    /// Bytes of its newest entry.
    pub size: u64,
    /// Entries of it in the file (puts and deletions).
    pub revisions: u64,
    /// Whether it exists at the current revision.
    pub live: bool,
}

/// Where the space goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// How keys were grouped.
    pub by: GroupBy,
    /// Database size (high-water mark times page size).
    pub db_size: u64,
    /// Page size.
    pub page_size: u32,
    /// Page counts from the walk (free pages included).
    pub pages: WalkStats,
    /// Main revision of the newest entry (0 when none).
    pub last_revision: i64,
    /// Everything in the `key` bucket.
    pub total: GroupStats,
    /// Per group, largest first.
    pub groups: Vec<(String, GroupStats)>,
    /// Live keys with the largest newest version.
    pub largest: Vec<KeyStat>,
    /// Keys with the most entries in the file.
    pub most_revisions: Vec<KeyStat>,
    /// Entries of the `key` bucket that do not decode (not counted above).
    pub bad_entries: u64,
    /// Bytes of every other bucket's keys and values.
    pub other_buckets_bytes: u64,
}

impl Stats {
    /// Bytes of free pages: what a defragmentation gives back.
    pub fn free_bytes(&self) -> u64 {
        self.pages.free_pages * u64::from(self.page_size)
    }
}

/// Why stats could not be computed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// The file could not be opened or failed the structural check.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A bucket could not be read.
    #[error(transparent)]
    Mvcc(#[from] MvccError),
}

/// Computes [`Stats`] for a snapshot, with `top` keys in each top list.
pub fn stats(snap: &Snapshot, by: GroupBy, top: usize) -> Result<Stats, StatsError> {
    let db = snap.db()?;
    // The structural walk `snapshot status` makes (a file that changed while
    // read is an error whatever the walk found), feeding the stats visitor.
    let (_, v, pages) = crate::snapshot::walk_checked(
        snap.file(),
        StatsVisitor::new(db, by),
        CheckOptions::default().threads,
    )?;
    Ok(v.finish(pages, top))
}

/// What is known of one user key so far.
#[derive(Debug, Clone, Copy)]
struct KeyState {
    /// File offset of the newest entry's value.
    offset: u64,
    /// Bytes of the newest entry.
    size: u32,
    /// Entries seen.
    revisions: u32,
    /// Group index (in the owning visitor's table).
    group: u32,
    /// Whether the newest entry is a put (counted live).
    live: bool,
    /// When the first entry this visitor saw of the key was a deletion of
    /// something it never saw (the put is in an earlier part of the walk):
    /// the deletion's bytes and the group it was put in for now, moved to
    /// the deleted value's group when the parts are merged.
    orphan: Option<(u32, u32)>,
}

struct StatsVisitor<'a> {
    db: Db<'a>,
    by: GroupBy,
    keys: FpMap<KeyState>,
    /// Keys of later parts of the walk, each part sorted by fingerprint,
    /// in walk order (merged once, at the end, without a global map).
    runs: Vec<Vec<(Fp, KeyState)>>,
    names: Vec<Vec<u8>>,
    index: HashMap<Vec<u8>, u32>,
    groups: Vec<GroupStats>,
    bad: u64,
    last_revision: i64,
    other: u64,
}

impl<'a> StatsVisitor<'a> {
    fn new(db: Db<'a>, by: GroupBy) -> StatsVisitor<'a> {
        StatsVisitor {
            db,
            by,
            keys: FpMap::default(),
            runs: Vec::new(),
            names: Vec::new(),
            index: HashMap::new(),
            groups: Vec::new(),
            bad: 0,
            last_revision: 0,
            other: 0,
        }
    }

    /// The index of the group named `name` (bytes: a prefix of a key, or
    /// the text of a computed name), added if new.
    fn intern(&mut self, name: &[u8]) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_vec());
        self.index.insert(name.to_vec(), i);
        self.groups.push(GroupStats::default());
        i
    }

    /// The group of an entry, without allocating when the group is a
    /// prefix of the key.
    fn group_index(&mut self, key: &[u8], value: &[u8]) -> u32 {
        match prefix_len(key, self.by).and_then(|n| key.get(..n)) {
            Some(p) => self.intern(p),
            None => {
                let name = group_of(key, value, self.by);
                self.intern(name.as_bytes())
            }
        }
    }

    fn group_mut(&mut self, g: u32) -> &mut GroupStats {
        if self.groups.len() <= g as usize {
            self.groups.resize(g as usize + 1, GroupStats::default());
        }
        &mut self.groups[g as usize]
    }

    /// The newest put of a key (in group `g`, `size` bytes) is superseded.
    fn demote(&mut self, g: u32, size: u64) {
        let s = self.group_mut(g);
        s.live_keys = s.live_keys.saturating_sub(1);
        s.live_bytes = s.live_bytes.saturating_sub(size);
        s.history_versions += 1;
        s.history_bytes += size;
    }

    fn key_entry(&mut self, e: &LeafElem<'a>) {
        let entry = match Entry::decode(self.db, e) {
            Ok(x) => x,
            Err(_) => {
                self.bad += 1;
                return;
            }
        };
        self.last_revision = entry.rev.main;
        let fp = Fp(fingerprint(entry.kv.key));
        let prev = self.keys.get(&fp).copied();
        // A deletion keeps the group of what it deletes.
        let group = match (entry.tombstone, prev, self.by) {
            (true, Some(p), _)
            | (_, Some(p), GroupBy::Resource | GroupBy::Namespace | GroupBy::Prefix { .. }) => {
                p.group
            }
            _ => self.group_index(entry.kv.key, entry.kv.value),
        };
        if let Some(p) = prev
            && p.live
        {
            self.demote(p.group, u64::from(p.size));
        }
        let size = entry.size;
        let s = self.group_mut(group);
        if entry.tombstone {
            s.tombstones += 1;
            s.tombstone_bytes += size;
        } else {
            s.live_keys += 1;
            s.live_bytes += size;
        }
        let size32 = u32::try_from(size).unwrap_or(u32::MAX);
        let orphan = match prev {
            Some(p) => p.orphan,
            None if entry.tombstone => Some((group, size32)),
            None => None,
        };
        self.keys.insert(
            fp,
            KeyState {
                offset: entry.offset,
                size: size32,
                revisions: prev.map_or(0, |p| p.revisions).saturating_add(1),
                group,
                live: !entry.tombstone,
                orphan,
            },
        );
    }

    /// Joins this visitor's keys and the later parts' runs in walk order:
    /// a key seen in several parts has its earlier newest version demoted
    /// to history, and a deletion that began a part is moved to the group
    /// of what it deleted. Returns the top `top` live keys by size and keys
    /// by revisions, best first.
    fn merge_runs(&mut self, top: usize) -> (Vec<KeyState>, Vec<KeyState>) {
        let mut own: Vec<(Fp, KeyState)> = std::mem::take(&mut self.keys).into_iter().collect();
        own.sort_unstable_by_key(|(fp, _)| fp.0);
        let mut runs = vec![own];
        runs.append(&mut self.runs);
        let mut heap: BinaryHeap<Reverse<([u64; 2], usize, usize)>> = runs
            .iter()
            .enumerate()
            .filter_map(|(r, run)| run.first().map(|(fp, _)| Reverse((fp.0, r, 0))))
            .collect();
        let mut largest = TopN::new(top);
        let mut most = TopN::new(top);
        let mut cur: Option<([u64; 2], KeyState)> = None;
        let done = |k: KeyState, largest: &mut TopN, most: &mut TopN| {
            if k.live {
                largest.offer((Reverse(k.size), k.offset), k);
            }
            most.offer((Reverse(k.revisions), k.offset), k);
        };
        while let Some(Reverse((fp, r, i))) = heap.pop() {
            let Some(&(_, mut k)) = runs.get(r).and_then(|run| run.get(i)) else {
                continue;
            };
            if let Some((nfp, _)) = runs.get(r).and_then(|run| run.get(i + 1)) {
                heap.push(Reverse((nfp.0, r, i + 1)));
            }
            match cur.take() {
                Some((cfp, c)) if cfp == fp => {
                    if c.live {
                        self.demote(c.group, u64::from(c.size));
                    }
                    if let Some((g, size)) = k.orphan.take()
                        && g != c.group
                    {
                        let size = u64::from(size);
                        let from = self.group_mut(g);
                        from.tombstones = from.tombstones.saturating_sub(1);
                        from.tombstone_bytes = from.tombstone_bytes.saturating_sub(size);
                        let to = self.group_mut(c.group);
                        to.tombstones += 1;
                        to.tombstone_bytes += size;
                    }
                    k.revisions = k.revisions.saturating_add(c.revisions);
                    k.orphan = c.orphan;
                }
                Some((_, c)) => done(c, &mut largest, &mut most),
                None => {}
            }
            cur = Some((fp, k));
        }
        if let Some((_, c)) = cur {
            done(c, &mut largest, &mut most);
        }
        (largest.into_best_first(), most.into_best_first())
    }

    fn finish(mut self, pages: WalkStats, top: usize) -> Stats {
        let (largest, most) = self.merge_runs(top);
        let mut total = GroupStats::default();
        let mut groups: Vec<(String, GroupStats)> = self
            .names
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .zip(self.groups.iter().copied())
            .filter(|(_, g)| *g != GroupStats::default())
            .collect();
        for (_, g) in &groups {
            total.add(g);
        }
        groups.sort_by(|a, b| {
            b.1.total_bytes()
                .cmp(&a.1.total_bytes())
                .then(a.0.cmp(&b.0))
        });
        let stat = |k: &KeyState| -> Option<KeyStat> {
            let kv = kv_at(self.db, k.offset, k.size, k.live)?;
            Some(KeyStat {
                key: kv.key.to_vec(),
                group: self
                    .names
                    .get(k.group as usize)
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .unwrap_or_default(),
                size: u64::from(k.size),
                revisions: u64::from(k.revisions),
                live: k.live,
            })
        };
        let largest = largest.iter().filter_map(stat).collect();
        let most_revisions = most.iter().filter_map(stat).collect();
        Stats {
            by: self.by,
            db_size: self.db.size(),
            page_size: self.db.page_size(),
            pages,
            last_revision: self.last_revision,
            total,
            groups,
            largest,
            most_revisions,
            bad_entries: self.bad,
            other_buckets_bytes: self.other,
        }
    }
}

/// The `n` best states by a key (smaller is better), kept in a bounded
/// max-heap so that choosing them costs no memory per key.
struct TopN {
    n: usize,
    heap: BinaryHeap<((Reverse<u32>, u64), Slot)>,
}

/// A [`KeyState`] as a heap payload (ordered by its offset, which is
/// unique).
#[derive(Debug, Clone, Copy)]
struct Slot(KeyState);
impl PartialEq for Slot {
    fn eq(&self, o: &Self) -> bool {
        self.0.offset == o.0.offset
    }
}
impl Eq for Slot {}
impl PartialOrd for Slot {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Slot {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.offset.cmp(&o.0.offset)
    }
}

impl TopN {
    fn new(n: usize) -> TopN {
        TopN {
            n,
            heap: BinaryHeap::new(),
        }
    }

    fn offer(&mut self, key: (Reverse<u32>, u64), k: KeyState) {
        if self.n == 0 {
            return;
        }
        if self.heap.len() < self.n {
            self.heap.push((key, Slot(k)));
        } else if self.heap.peek().is_some_and(|(worst, _)| key < *worst) {
            self.heap.pop();
            self.heap.push((key, Slot(k)));
        }
    }

    fn into_best_first(self) -> Vec<KeyState> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|(_, s)| s.0)
            .collect()
    }
}

/// The `KeyValue` of the entry of `size` bytes whose value starts at
/// `offset` (the element header and the 17- or 18-byte revision key make
/// up the rest of the size).
fn kv_at(db: Db<'_>, offset: u64, size: u32, live: bool) -> Option<KeyValueRef<'_>> {
    let rev_len: u64 = if live { 17 } else { 18 };
    let len = u64::from(size).checked_sub(crate::mvcc::scan::ELEMENT_HEADER + rev_len)?;
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    KeyValueRef::parse(db.data().get(start..end)?)
}

impl Visitor for StatsVisitor<'_> {
    fn fork(&self) -> Self {
        StatsVisitor::new(self.db, self.by)
    }

    fn merge(&mut self, later: Self) {
        // Group indices of `later` in this visitor's table.
        let map: Vec<u32> = later.names.iter().map(|n| self.intern(n)).collect();
        let remap = |g: u32| map.get(g as usize).copied().unwrap_or(g);
        for (g, s) in later.groups.iter().enumerate() {
            self.group_mut(remap(g as u32)).add(s);
        }
        let remap_run = |run: Vec<(Fp, KeyState)>| -> Vec<(Fp, KeyState)> {
            run.into_iter()
                .map(|(fp, mut k)| {
                    k.group = remap(k.group);
                    if let Some((g, size)) = k.orphan {
                        k.orphan = Some((remap(g), size));
                    }
                    (fp, k)
                })
                .collect()
        };
        let mut own: Vec<(Fp, KeyState)> = later.keys.into_iter().collect();
        own.sort_unstable_by_key(|(fp, _)| fp.0);
        self.runs.push(remap_run(own));
        for run in later.runs {
            self.runs.push(remap_run(run));
        }
        self.bad += later.bad;
        if later.last_revision != 0 {
            self.last_revision = later.last_revision;
        }
        self.other += later.other;
    }

    fn entry(&mut self, path: &[&[u8]], e: &LeafElem<'_>) {
        // SAFETY-free lifetime note: the walk hands out elements of the
        // same map `self.db` reads, so re-reading through `self.db` gives
        // them the visitor's lifetime.
        match path {
            [b] if *b == buckets::KEY => {
                let offset = crate::bolt::bucket::value_offset(self.db, e.value);
                if let Some(elem) = elem_at(self.db, e, offset) {
                    self.key_entry(&elem);
                } else {
                    self.bad += 1;
                }
            }
            [_] => self.other += (e.key.len() + e.value.len()) as u64,
            _ => {}
        }
    }
}

/// `e` re-borrowed from `db` (same bytes, the visitor's lifetime).
fn elem_at<'a>(db: Db<'a>, e: &LeafElem<'_>, value_offset: u64) -> Option<LeafElem<'a>> {
    let data = db.data();
    let v0 = usize::try_from(value_offset).ok()?;
    let k0 = v0.checked_sub(e.key.len())?;
    let key = data.get(k0..v0)?;
    let value = data.get(v0..v0.checked_add(e.value.len())?)?;
    (key.as_ptr() == e.key.as_ptr()).then_some(LeafElem {
        flags: e.flags,
        key,
        value,
    })
}
