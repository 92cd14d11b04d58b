//! The one way the MVCC layer reads the `key` bucket: a scan in revision
//! order, split into subtrees that run on several threads.
//!
//! The bucket is ordered by revision, not by user key, so every query that
//! names user keys reads the bucket once. What makes that cheap: each entry
//! is looked at in place (a [`KeyValueRef`] borrowed from the map, no copy),
//! entries above the revision asked for are never read (the scan stops at
//! the first larger revision), the subtrees run on all cores, and pages
//! already read are dropped from the process's map as the scan goes, so the
//! resident set stays flat whatever the size of the file.
//!
//! A scan may also go newest-first by subtree: a point lookup stops as soon
//! as it has found its key in some subtree and every newer subtree is done,
//! since nothing older can change the answer.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::error::{MvccError, hex};
use crate::bolt::bucket::value_offset;
use crate::bolt::cursor::Cursor;
use crate::bolt::page::PageKind;
use crate::bolt::{Bucket, BucketRoot, Db, LeafElem};
use crate::etcd::kv::KeyValueRef;
use crate::etcd::revision::{self, Revision};

/// Size of a leaf element header in bbolt.
pub const ELEMENT_HEADER: u64 = 16;
/// Subtrees a scan aims for, per thread (so that threads finishing early
/// find more work).
pub(crate) const CHUNKS_PER_THREAD: usize = 8;
/// Bytes of entries between two releases of the map.
const RELEASE_EVERY: u64 = 32 << 20;

/// One entry of the `key` bucket, decoded in place.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(test, derive(PartialEq, Eq))]
pub struct Entry<'a> {
    /// The revision of the change.
    pub rev: Revision,
    /// Whether the change is a deletion (the revision key ends in `t`).
    pub tombstone: bool,
    /// The stored `mvccpb.KeyValue` (a tombstone's holds only the key).
    pub kv: KeyValueRef<'a>,
    /// Bytes the entry takes in its leaf page: the 16-byte element header,
    /// the revision key and the encoded `KeyValue`.
    pub size: u64,
    /// Absolute file offset of the encoded `KeyValue` (0 if unknown).
    pub offset: u64,
}

impl<'a> Entry<'a> {
    /// Decodes one leaf element of the `key` bucket.
    pub(crate) fn decode(db: Db<'a>, e: &LeafElem<'a>) -> Result<Entry<'a>, MvccError> {
        let offset = value_offset(db, e.value);
        let bad = |what: String| MvccError::BadEntry {
            rev_key: hex(e.key),
            offset,
            what,
        };
        if e.is_bucket() {
            return Err(bad("a nested bucket where a revision belongs".into()));
        }
        let r = revision::parse(e.key).map_err(|err| bad(err.to_string()))?;
        let kv = KeyValueRef::parse(e.value)
            .ok_or_else(|| bad("value does not decode as mvccpb.KeyValue".into()))?;
        Ok(Entry {
            rev: r.rev,
            tombstone: r.tombstone,
            kv,
            size: ELEMENT_HEADER + e.key.len() as u64 + e.value.len() as u64,
            offset,
        })
    }
}

/// An entry of the `key` bucket as a scan meets it: the element and its
/// user key, read without decoding the rest of the `KeyValue` (most entries
/// of a scan are not the ones asked for).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Raw<'a> {
    db: Db<'a>,
    elem: LeafElem<'a>,
    /// The user key.
    pub key: &'a [u8],
}

impl<'a> Raw<'a> {
    fn new(db: Db<'a>, elem: LeafElem<'a>) -> Result<Raw<'a>, MvccError> {
        // etcd writes the key first (field 1, wire type 2); anything else
        // goes through the full decoder.
        let key = match fast_key(elem.value) {
            Some(k) => k,
            None => Entry::decode(db, &elem)?.kv.key,
        };
        Ok(Raw { db, elem, key })
    }

    /// The bucket element as stored: revision key and encoded `KeyValue`.
    pub fn elem(&self) -> &LeafElem<'a> {
        &self.elem
    }

    /// The whole entry, checked. Its key must be the one the scan matched
    /// on: a value with a second key field (the last one wins in etcd's
    /// decoder) is refused rather than answered under the first.
    pub fn decode(&self) -> Result<Entry<'a>, MvccError> {
        let e = Entry::decode(self.db, &self.elem)?;
        if e.kv.key != self.key {
            return Err(MvccError::BadEntry {
                rev_key: hex(self.elem.key),
                offset: e.offset,
                what: "the value holds more than one key".into(),
            });
        }
        Ok(e)
    }
}

/// The key of a `KeyValue` that starts with it.
fn fast_key(v: &[u8]) -> Option<&[u8]> {
    let rest = v.strip_prefix(&[0x0a])?;
    let mut len = 0usize;
    for (i, &b) in rest.iter().enumerate().take(5) {
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let start = i + 1;
            return rest.get(start..start.checked_add(len)?);
        }
    }
    None
}

/// A subtree of the bucket and the smallest main revision it can hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chunk<'a> {
    root: BucketRoot<'a>,
    first_main: Option<i64>,
}

impl Chunk<'_> {
    /// The smallest main revision the chunk can hold, when known.
    pub(crate) fn first_main(&self) -> Option<i64> {
        self.first_main
    }
}

/// What a scan's per-chunk state reports to a newest-first scan.
pub(crate) trait ChunkState: Send {
    /// Whether this chunk holds what the scan looks for, so that older
    /// chunks need not be read.
    fn found(&self) -> bool {
        false
    }
}

/// How to scan.
#[derive(Clone, Copy)]
pub(crate) struct ScanSpec<'r> {
    /// Largest main revision to read (inclusive).
    pub max_main: i64,
    /// Read chunks newest first and skip those older than a chunk whose
    /// state is [`ChunkState::found`].
    pub newest_first: bool,
    /// Threads to use.
    pub threads: usize,
    /// Drops walked pages from the map (see `Mapped::release`).
    pub release: Option<&'r (dyn Fn() + Sync)>,
}

/// Splits the bucket into subtrees, in revision order.
pub(crate) fn chunks<'a>(
    db: Db<'a>,
    bucket: &Bucket<'a>,
    want: usize,
) -> Result<Vec<Chunk<'a>>, MvccError> {
    let root = bucket.root();
    let mut frontier = vec![Chunk {
        root,
        first_main: None,
    }];
    let mut levels = 0;
    while frontier.len() < want && levels < 4 {
        let mut next = Vec::new();
        let mut expanded = false;
        for c in &frontier {
            let BucketRoot::Page(id) = c.root else {
                next.push(*c);
                continue;
            };
            let page = db.node_page(id)?;
            page.check_element_table()?;
            if page.kind() != PageKind::Branch {
                next.push(*c);
                continue;
            }
            expanded = true;
            for i in 0..page.count() {
                let b = page.branch(i)?;
                next.push(Chunk {
                    root: BucketRoot::Page(b.child),
                    first_main: Revision::main_of(b.key),
                });
            }
        }
        frontier = next;
        levels += 1;
        if !expanded {
            break;
        }
    }
    Ok(frontier)
}

/// Scans `chunks` with one `S` per chunk (made by `init`), feeding `visit`
/// every entry up to `spec.max_main`. Returns the states in
/// revision order; a chunk a newest-first scan skipped keeps its fresh
/// state. The first error (in revision order) wins.
pub(crate) fn scan<'a, S, I, V>(
    db: Db<'a>,
    chunks: &[Chunk<'a>],
    spec: ScanSpec<'_>,
    init: I,
    visit: V,
) -> Result<Vec<S>, MvccError>
where
    S: ChunkState,
    I: Fn() -> S + Sync,
    V: Fn(&mut S, &Raw<'a>) -> Result<(), MvccError> + Sync,
{
    let n = chunks.len();
    let order: Vec<usize> = if spec.newest_first {
        (0..n).rev().collect()
    } else {
        (0..n).collect()
    };
    let next = AtomicUsize::new(0);
    // 1 + the newest chunk that found what a newest-first scan looks for;
    // 0 while none has.
    let best = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let results: Mutex<Vec<(usize, Result<S, MvccError>)>> = Mutex::new(Vec::with_capacity(n));
    let work = || {
        let mut mine = Vec::new();
        loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let Some(&i) = order.get(k) else { break };
            let Some(chunk) = chunks.get(i) else { break };
            let mut state = init();
            let skip = chunk.first_main.is_some_and(|m| m > spec.max_main)
                || (spec.newest_first && older_than_found(&best, i));
            let r = if skip {
                Ok(())
            } else {
                scan_chunk(db, chunk, i, &spec, &best, &bytes, &mut state, &visit)
            };
            if spec.newest_first && state.found() {
                best.fetch_max(i.wrapping_add(1), Ordering::Relaxed);
            }
            mine.push((i, r.map(|()| state)));
        }
        if let Ok(mut all) = results.lock() {
            all.extend(mine);
        }
    };
    let threads = spec.threads.clamp(1, n.max(1));
    if threads == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(work);
            }
        });
    }
    let mut all = results.into_inner().unwrap_or_default();
    all.sort_by_key(|r| r.0);
    all.into_iter().map(|(_, r)| r).collect()
}

/// Whether a chunk newer than `i` has found what the scan looks for
/// (`best` holds 1 + the newest such chunk, 0 for none).
fn older_than_found(best: &AtomicUsize, i: usize) -> bool {
    i.saturating_add(1) < best.load(Ordering::Relaxed)
}

#[allow(clippy::too_many_arguments)]
fn scan_chunk<'a, S, V>(
    db: Db<'a>,
    chunk: &Chunk<'a>,
    index: usize,
    spec: &ScanSpec<'_>,
    best: &AtomicUsize,
    bytes: &AtomicU64,
    state: &mut S,
    visit: &V,
) -> Result<(), MvccError>
where
    V: Fn(&mut S, &Raw<'a>) -> Result<(), MvccError>,
{
    let mut cursor = Cursor::new(db, chunk.root);
    let mut elem = cursor.first()?;
    let mut local = 0u64;
    while let Some(e) = elem {
        // Cheap test first: the main revision is the first 8 bytes.
        if Revision::main_of(e.key).is_some_and(|m| m > spec.max_main) {
            break;
        }
        let raw = Raw::new(db, e)?;
        visit(state, &raw)?;
        local += ELEMENT_HEADER + (e.key.len() + e.value.len()) as u64;
        if local >= 1 << 20 {
            account(bytes, local, spec.release);
            local = 0;
            if spec.newest_first && older_than_found(best, index) {
                break;
            }
        }
        elem = cursor.next()?;
    }
    account(bytes, local, spec.release);
    Ok(())
}

fn account(bytes: &AtomicU64, n: u64, release: Option<&(dyn Fn() + Sync)>) {
    let before = bytes.fetch_add(n, Ordering::Relaxed);
    if let Some(r) = release
        && (before + n) / RELEASE_EVERY != before / RELEASE_EVERY
    {
        r();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_find_in_a_newer_chunk_skips_older_ones() {
        let best = AtomicUsize::new(0);
        assert!(!older_than_found(&best, 0));
        best.fetch_max(3 + 1, Ordering::Relaxed); // chunk 3 found it
        assert!(older_than_found(&best, 0) && older_than_found(&best, 2));
        assert!(!older_than_found(&best, 3) && !older_than_found(&best, 7));
    }

    #[test]
    fn fast_key_reads_the_leading_key_field() {
        assert_eq!(fast_key(b"\x0a\x03foo\x10\x02"), Some(&b"foo"[..]));
        assert_eq!(fast_key(b"\x10\x02\x0a\x03foo"), None);
        assert_eq!(fast_key(b"\x0a\x09foo"), None);
        assert_eq!(fast_key(b"\x0a\xff\xff\xff\xff\xff"), None);
    }
}
