//! `stats`: where the space of a snapshot goes.
//!
//! One structural walk of the file (the same parallel walk `snapshot
//! status` does, so the file is checked on the way) feeds every entry of the
//! `key` bucket to a visitor that sorts its bytes into live versions (the
//! newest change of a key, when not a deletion), history (older versions a
//! compaction would remove) and tombstones, per group. Pages nothing refers
//! to are free: what a defragmentation gives back.
//!
//! Memory: one record per distinct user key (a 128-bit fingerprint of the
//! key, the size and file offset of its newest entry, its group and
//! revision count; never the keys or values themselves, which stay in the
//! map), but only up to 131,072 keys per walking thread: past that a
//! visitor sorts its records into an unnamed temporary file and starts
//! again, and the end merges the sorted runs in walk order, reading each
//! through a small buffer. So memory stays flat however many keys the file
//! holds; disk use is 46 bytes a key while the command runs.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};

use super::group::{GroupBy, group_of, prefix_len};
use crate::bolt::check::{WalkOptions, WalkStats};
use crate::bolt::{Db, LeafElem, Visitor};
use crate::etcd::buckets;
use crate::etcd::fp::{Fp, FpMap, fingerprint};
use crate::etcd::kv::KeyValueRef;
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
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(PartialEq, Eq))]
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
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(PartialEq, Eq))]
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
    /// The key records written to a temporary file could not be read back.
    #[error("reading back the key records spilled to a temporary file: {0}")]
    Spill(#[source] io::Error),
}

/// Computes [`Stats`] for a snapshot, with `top` keys in each top list.
pub fn stats(snap: &Snapshot, by: GroupBy, top: usize) -> Result<Stats, StatsError> {
    stats_spilling_at(snap, by, top, SPILL_KEYS)
}

/// Keys a visitor holds in memory before it writes them to a temporary
/// file (about 60 bytes each in the table).
const SPILL_KEYS: usize = 1 << 17;
/// A finished part of the walk with fewer keys than this stays in memory.
const KEEP_SMALL_RUN: usize = 4096;

/// [`stats`], spilling key records to disk past `spill_keys` per visitor.
pub(crate) fn stats_spilling_at(
    snap: &Snapshot,
    by: GroupBy,
    top: usize,
    spill_keys: usize,
) -> Result<Stats, StatsError> {
    let db = snap.db()?;
    // The structural walk `snapshot status` makes (a file that changed while
    // read is an error whatever the walk found), feeding the stats visitor.
    let mut visitor = StatsVisitor::new(db, by);
    visitor.spill_keys = spill_keys.max(1);
    let (_, v, pages) =
        crate::snapshot::walk_checked(snap.file(), visitor, WalkOptions::default().threads)?;
    v.finish(pages, top).map_err(StatsError::Spill)
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
    /// This visitor's earlier keys, spilled when `keys` grew past
    /// `spill_keys`, in walk order.
    spilled: Vec<Run>,
    spill_keys: usize,
    /// Keys of later parts of the walk, each run sorted by fingerprint,
    /// in walk order (merged once, at the end, without a global map).
    runs: Vec<Run>,
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
            spilled: Vec::new(),
            spill_keys: SPILL_KEYS,
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
        if self.keys.len() >= self.spill_keys {
            // What follows is a new run, as if a new part of the walk
            // began here: the merge joins keys across runs.
            let run = Run::sorted(std::mem::take(&mut self.keys));
            self.spilled.push(run.spill());
        }
    }

    /// Joins this visitor's keys and the later parts' runs in walk order:
    /// a key seen in several parts has its earlier newest version demoted
    /// to history, and a deletion that began a part is moved to the group
    /// of what it deleted. Returns the top `top` live keys by size and keys
    /// by revisions, best first.
    fn merge_runs(&mut self, top: usize) -> io::Result<(Vec<KeyState>, Vec<KeyState>)> {
        let own = Run::sorted(std::mem::take(&mut self.keys));
        let mut runs: Vec<Cursor> = std::mem::take(&mut self.spilled)
            .into_iter()
            .chain(std::iter::once(own))
            .chain(std::mem::take(&mut self.runs))
            .map(Cursor::new)
            .collect::<io::Result<_>>()?;
        // Equal fingerprints come out in walk order (the run index breaks
        // the tie).
        let mut heap: BinaryHeap<Reverse<([u64; 2], usize)>> = runs
            .iter()
            .enumerate()
            .filter_map(|(r, c)| c.head.map(|(fp, _)| Reverse((fp.0, r))))
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
        while let Some(Reverse((fp, r))) = heap.pop() {
            let Some(c) = runs.get_mut(r) else { continue };
            let Some((_, mut k)) = c.head else { continue };
            c.advance()?;
            if let Some((nfp, _)) = c.head {
                heap.push(Reverse((nfp.0, r)));
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
        Ok((largest.into_best_first(), most.into_best_first()))
    }

    fn finish(mut self, pages: WalkStats, top: usize) -> io::Result<Stats> {
        let (largest, most) = self.merge_runs(top)?;
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
        Ok(Stats {
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
        })
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
        let mut v = StatsVisitor::new(self.db, self.by);
        v.spill_keys = self.spill_keys;
        v
    }

    fn merge(&mut self, later: Self) {
        // Group indices of `later` in this visitor's table.
        let map: Vec<u32> = later.names.iter().map(|n| self.intern(n)).collect();
        for (g, s) in later.groups.iter().enumerate() {
            let g = map.get(g).copied().unwrap_or(g as u32);
            self.group_mut(g).add(s);
        }
        let own = Run::sorted(later.keys);
        let own = if own.len() >= KEEP_SMALL_RUN {
            own.spill()
        } else {
            own
        };
        for run in later
            .spilled
            .into_iter()
            .chain(std::iter::once(own))
            .chain(later.runs)
        {
            self.runs.push(run.remapped(&map));
        }
        self.bad += later.bad;
        if later.last_revision != 0 {
            self.last_revision = later.last_revision;
        }
        self.other += later.other;
    }

    fn range_done(&mut self) {
        // Finished parts wait for the earlier ones before they are merged:
        // on disk, not in memory, when they are big.
        if self.keys.len() >= KEEP_SMALL_RUN {
            let run = Run::sorted(std::mem::take(&mut self.keys));
            self.spilled.push(run.spill());
        }
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

/// One run of key records sorted by fingerprint: in memory, or written to
/// an unnamed temporary file. `groups` maps the group indices in the
/// records to the owning visitor's (records in a file are not rewritten
/// when their visitor is merged into another).
struct Run {
    data: RunData,
    groups: Option<Vec<u32>>,
}

enum RunData {
    Mem(Vec<(Fp, KeyState)>),
    File { file: File, len: usize },
}

/// Bytes of a key record in a temporary file.
const RECORD: usize = 46;

impl Run {
    fn sorted(keys: FpMap<KeyState>) -> Run {
        let mut v: Vec<(Fp, KeyState)> = keys.into_iter().collect();
        v.sort_unstable_by_key(|(fp, _)| fp.0);
        Run {
            data: RunData::Mem(v),
            groups: None,
        }
    }

    fn len(&self) -> usize {
        match &self.data {
            RunData::Mem(v) => v.len(),
            RunData::File { len, .. } => *len,
        }
    }

    /// The run written to a temporary file; kept in memory if that fails
    /// (a full temporary directory costs memory, not the answer).
    fn spill(self) -> Run {
        let RunData::Mem(v) = &self.data else {
            return self;
        };
        let written = (|| -> io::Result<File> {
            let mut w = BufWriter::with_capacity(64 << 10, tempfile::tempfile()?);
            for (fp, k) in v {
                w.write_all(&encode(fp, k))?;
            }
            let mut f = w.into_inner().map_err(io::IntoInnerError::into_error)?;
            io::Seek::rewind(&mut f)?;
            Ok(f)
        })();
        match written {
            Ok(file) => Run {
                data: RunData::File { file, len: v.len() },
                groups: self.groups,
            },
            Err(_) => self,
        }
    }

    /// The run with its group indices mapped through `map` (a merged
    /// visitor's indices into the one it is merged into).
    fn remapped(self, map: &[u32]) -> Run {
        let through = |g: u32| map.get(g as usize).copied().unwrap_or(g);
        match self.data {
            // Records in memory are remapped in place (so they never carry
            // a table).
            RunData::Mem(mut v) => {
                for (_, k) in &mut v {
                    k.group = through(k.group);
                    k.orphan = k.orphan.map(|(g, size)| (through(g), size));
                }
                Run {
                    data: RunData::Mem(v),
                    groups: None,
                }
            }
            data @ RunData::File { .. } => {
                let groups = match self.groups {
                    None => map.to_vec(),
                    Some(t) => t.iter().map(|&g| through(g)).collect(),
                };
                Run {
                    data,
                    groups: Some(groups),
                }
            }
        }
    }
}

fn lookup(table: &[u32], g: u32) -> u32 {
    table.get(g as usize).copied().unwrap_or(g)
}

fn encode(fp: &Fp, k: &KeyState) -> [u8; RECORD] {
    let mut b = [0u8; RECORD];
    let (og, os) = k.orphan.unwrap_or((0, 0));
    let parts: [&[u8]; 10] = [
        &fp.0[0].to_le_bytes(),
        &fp.0[1].to_le_bytes(),
        &k.offset.to_le_bytes(),
        &k.size.to_le_bytes(),
        &k.revisions.to_le_bytes(),
        &k.group.to_le_bytes(),
        &[u8::from(k.live)],
        &[u8::from(k.orphan.is_some())],
        &og.to_le_bytes(),
        &os.to_le_bytes(),
    ];
    let mut at = 0;
    for p in parts {
        if let Some(dst) = b.get_mut(at..at + p.len()) {
            dst.copy_from_slice(p);
        }
        at += p.len();
    }
    b
}

fn decode(b: &[u8; RECORD]) -> (Fp, KeyState) {
    let u64_at = |i: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(b.get(i..i + 8).unwrap_or(&[0; 8]));
        u64::from_le_bytes(x)
    };
    let u32_at = |i: usize| {
        let mut x = [0u8; 4];
        x.copy_from_slice(b.get(i..i + 4).unwrap_or(&[0; 4]));
        u32::from_le_bytes(x)
    };
    let flag = |i: usize| b.get(i).is_some_and(|&x| x != 0);
    (
        Fp([u64_at(0), u64_at(8)]),
        KeyState {
            offset: u64_at(16),
            size: u32_at(24),
            revisions: u32_at(28),
            group: u32_at(32),
            live: flag(36),
            orphan: flag(37).then(|| (u32_at(38), u32_at(42))),
        },
    )
}

/// Reads a run in order; `head` is the next record (group indices mapped).
struct Cursor {
    source: CursorSource,
    groups: Option<Vec<u32>>,
    head: Option<(Fp, KeyState)>,
}

enum CursorSource {
    Mem(std::vec::IntoIter<(Fp, KeyState)>),
    File { r: BufReader<File>, left: usize },
}

impl Cursor {
    fn new(run: Run) -> io::Result<Cursor> {
        let source = match run.data {
            RunData::Mem(v) => CursorSource::Mem(v.into_iter()),
            RunData::File { file, len } => CursorSource::File {
                r: BufReader::with_capacity(64 << 10, file),
                left: len,
            },
        };
        let mut c = Cursor {
            source,
            groups: run.groups,
            head: None,
        };
        c.advance()?;
        Ok(c)
    }

    fn advance(&mut self) -> io::Result<()> {
        let next = match &mut self.source {
            CursorSource::Mem(it) => it.next(),
            CursorSource::File { r, left } => {
                if *left == 0 {
                    None
                } else {
                    let mut b = [0u8; RECORD];
                    r.read_exact(&mut b)?;
                    *left -= 1;
                    Some(decode(&b))
                }
            }
        };
        self.head = next.map(|(fp, mut k)| {
            if let Some(t) = &self.groups {
                k.group = lookup(t, k.group);
                k.orphan = k.orphan.map(|(g, size)| (lookup(t, g), size));
            }
            (fp, k)
        });
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Spilling key records to temporary files, whenever it happens, gives
    /// exactly the stats of keeping them all in memory: keys met again in
    /// a later run are joined as across parts of the walk (history
    /// demoted, revisions summed, a deletion moved to what it deleted).
    #[test]
    fn spilled_runs_give_the_same_stats() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/snapshots");
        // Spilling every one or two keys writes a run file per key or two
        // (~25 s, mostly the kernel's, on the 10 MB fixtures): the small
        // fixtures take every spill point, the 10 MB ones the points that
        // still write hundreds of runs, whose keys' revisions are spread
        // over the walk, so that later runs meet keys again.
        for (name, spill_points) in [
            ("k8s-v35.db", &[7, 100][..]),
            ("k8s-v34.db", &[7, 100]),
            ("auth-v35.db", &[1, 2, 3, 7, 100]),
            ("small-v35.db", &[1, 2, 3, 7, 100]),
        ] {
            let snap = Snapshot::open(format!("{dir}/{name}")).expect("open");
            for by in [
                GroupBy::Resource,
                GroupBy::Namespace,
                GroupBy::Kind,
                GroupBy::Prefix { depth: 2 },
            ] {
                let whole = stats_spilling_at(&snap, by, 10, usize::MAX).expect("stats");
                assert!(whole.total.history_versions > 0 || name != "k8s-v35.db");
                for &at in spill_points {
                    let spilled = stats_spilling_at(&snap, by, 10, at).expect("stats");
                    assert!(spilled == whole, "{name} by {by:?}, spilling at {at}");
                }
            }
        }
    }

    #[test]
    fn records_round_trip() {
        let k = KeyState {
            offset: u64::MAX - 5,
            size: 123_456,
            revisions: 7,
            group: 99,
            live: true,
            orphan: Some((3, 4_000_000)),
        };
        let fp = Fp([1 << 63, 42]);
        let (fp2, k2) = decode(&encode(&fp, &k));
        assert_eq!(fp2.0, fp.0);
        assert_eq!(
            (
                k2.offset,
                k2.size,
                k2.revisions,
                k2.group,
                k2.live,
                k2.orphan
            ),
            (k.offset, k.size, k.revisions, k.group, k.live, k.orphan)
        );
        let none = KeyState {
            orphan: None,
            live: false,
            ..k
        };
        assert_eq!(decode(&encode(&fp, &none)).1.orphan, None);
    }
}
