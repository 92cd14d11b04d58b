//! The writer: a copy-on-write transaction, planned in memory against a
//! read-only image and then written to a copy of that image.
//!
//! Changes are described as a tree ([`BucketChanges`]). Planning rewrites
//! only the pages on the paths to changed keys, as a Go bbolt transaction
//! would: every rewritten node gets new pages allocated at the high-water
//! mark (so no page reachable from either existing meta is touched), nodes
//! are split by Go's rule, small buckets without nested buckets are stored
//! inline, and a new meta (txid + 1, fresh checksum) goes to page
//! `(txid + 1) % 2`. A synced freelist is rewritten with the freed pages; a
//! NoFreelistSync file stays that way.
//!
//! Because planning only reads the image and produces page images, the same
//! [`WritePlan`] can be applied to several identical copies (one per member
//! of a restored cluster).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::bucket::{BUCKET_HEADER_SIZE, BucketRoot, BucketValue, value_offset};
use super::db::Db;
use super::error::{BoltError, Result};
use super::freelist;
use super::meta::{MAGIC, Meta, NO_FREELIST, VERSION};
use super::node::{self, Item, inline_image, node_size, page_image, split};
use super::page::{ELEMENT_SIZE, LEAF_FLAG_BUCKET, PAGE_HEADER_SIZE, Page, PageKind};

/// Go's default fill percent for splits.
pub const DEFAULT_FILL: f64 = 0.5;

/// A change to one key of a bucket.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Set the key to this value (it must not be a nested bucket).
    Put(Vec<u8>),
    /// Remove the key if present (it must not be a nested bucket).
    Delete,
    /// Create the nested bucket if missing, then apply these changes to it.
    Bucket(BucketChanges),
    /// Remove the nested bucket and everything in it, if present.
    DeleteBucket,
}

/// Changes to one bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketChanges {
    /// Remove every existing entry first (nested buckets included).
    pub clear: bool,
    /// Changes by key, applied in key order.
    pub keys: BTreeMap<Vec<u8>, Change>,
}

impl BucketChanges {
    /// No changes.
    pub fn new() -> BucketChanges {
        BucketChanges::default()
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.keys.insert(key.into(), Change::Put(value.into()));
        self
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.keys.insert(key.into(), Change::Delete);
        self
    }

    /// The changes for nested bucket `name` (created if missing).
    pub fn bucket(&mut self, name: impl Into<Vec<u8>>) -> &mut BucketChanges {
        let e = self
            .keys
            .entry(name.into())
            .or_insert_with(|| Change::Bucket(BucketChanges::new()));
        if !matches!(e, Change::Bucket(_)) {
            *e = Change::Bucket(BucketChanges::new());
        }
        match e {
            Change::Bucket(b) => b,
            // Just made sure it is a bucket change.
            _ => unreachable!("bucket change"),
        }
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        !self.clear && self.keys.is_empty()
    }
}

/// Writer settings.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// Fill percent for splits (Go: 0.1 to 1.0, default 0.5).
    pub fill: f64,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { fill: DEFAULT_FILL }
    }
}

/// The result of planning: page images to write and the new meta.
#[derive(Debug, Clone)]
pub struct WritePlan {
    page_size: usize,
    pages: Vec<(u64, Vec<u8>)>,
    meta: Meta,
    meta_slot: u64,
    old_len_pages: u64,
}

impl WritePlan {
    /// The meta the plan commits.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Ids of the data pages written (first page of each span).
    pub fn page_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.pages.iter().map(|(id, _)| *id)
    }

    /// Length the file must have after the commit.
    pub fn file_len(&self) -> u64 {
        self.meta
            .pgid
            .max(self.old_len_pages)
            .saturating_mul(self.page_size as u64)
    }

    /// Writes the plan into `file`, which must hold a byte-identical copy of
    /// the image it was planned against: data pages, `fdatasync`, meta page,
    /// `fdatasync` (Go's commit order).
    pub fn commit(&self, file: &File) -> io::Result<()> {
        let want = self.file_len();
        if file.metadata()?.len() < want {
            file.set_len(want)?;
        }
        for (id, img) in &self.pages {
            file.write_all_at(img, id * self.page_size as u64)?;
        }
        file.sync_data()?;
        let meta = self.meta.page_image(self.meta_slot, self.page_size);
        file.write_all_at(&meta, self.meta_slot * self.page_size as u64)?;
        file.sync_data()
    }

    /// Applies the plan to an in-memory copy of the image.
    pub fn apply_to(&self, image: &mut Vec<u8>) {
        let want = self.file_len() as usize;
        if image.len() < want {
            image.resize(want, 0);
        }
        let ps = self.page_size;
        for (id, img) in &self.pages {
            let at = *id as usize * ps;
            image[at..at + img.len()].copy_from_slice(img);
        }
        let meta = self.meta.page_image(self.meta_slot, ps);
        let at = self.meta_slot as usize * ps;
        image[at..at + ps].copy_from_slice(&meta);
    }
}

/// The image Go's `bolt.Open` writes for a new file: two metas (txid 0 and
/// 1), an empty freelist at page 2 and an empty root leaf at page 3.
/// `page_size` is clamped to the sizes a reader accepts (a power of two
/// from 512 bytes to 16 MiB is expected).
///
/// ```
/// let img = etcdsnap::internal::bolt::tx::new_image(4096);
/// let db = etcdsnap::bolt::Db::open(&img).unwrap();
/// assert_eq!((db.hwm(), etcdsnap::internal::bolt::meta(&db).txid), (4, 1));
/// ```
pub fn new_image(page_size: usize) -> Vec<u8> {
    let page_size = page_size.clamp(
        super::db::MIN_PAGE_SIZE as usize,
        super::db::MAX_PAGE_SIZE as usize,
    );
    let mut img = vec![0u8; 4 * page_size];
    for txid in 0..2u64 {
        let m = Meta {
            magic: MAGIC,
            version: VERSION,
            page_size: page_size as u32,
            flags: 0,
            root: 3,
            sequence: 0,
            freelist: 2,
            pgid: 4,
            txid,
            checksum: 0,
        };
        let p = m.page_image(txid, page_size);
        let at = txid as usize * page_size;
        img[at..at + page_size].copy_from_slice(&p);
    }
    let fl = freelist::encode(2, &[], page_size);
    img[2 * page_size..3 * page_size].copy_from_slice(&fl[..page_size]);
    let leaf = page_image(3, true, &[], page_size);
    img[3 * page_size..4 * page_size].copy_from_slice(&leaf);
    img
}

/// Plans applying `changes` to the root bucket of `db` (whose keys are the
/// top-level buckets).
pub fn plan(db: Db<'_>, changes: &BucketChanges, opts: WriteOptions) -> Result<WritePlan> {
    plan_with(db, changes, opts, None).0
}

/// Entries appended after every key of one top-level bucket (see
/// [`plan_appending`]).
pub(crate) struct Append<'p> {
    /// The top-level bucket (created if missing).
    pub bucket: &'p [u8],
    /// Its new entries, keys strictly increasing and above its last key.
    pub entries: &'p mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>,
    /// The file the plan is committed to: the new leaves are written there
    /// while they are planned, so they are never all in memory at once.
    pub out: &'p File,
}

/// Why an append could not be planned.
#[cfg(any(feature = "repo", test))]
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppendError {
    /// The image or the entries.
    #[error(transparent)]
    Bolt(#[from] BoltError),
    /// Writing a new leaf to the file.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// [`plan`] of `changes` plus `append.entries` added after the last key of
/// the top-level bucket `append.bucket`, a copy-on-write transaction
/// that rewrites only that bucket's rightmost path (its last leaf and the
/// branches above it) and lays the new entries out in full leaves, as the
/// bulk loader does. The new leaves are written into `append.out` (at
/// pages past the high-water mark, which no meta reaches until the plan
/// is committed) as they are planned: the plan is to be committed to that
/// file only.
#[cfg(any(feature = "repo", test))]
pub(crate) fn plan_appending(
    db: Db<'_>,
    changes: &BucketChanges,
    opts: WriteOptions,
    append: Append<'_>,
) -> std::result::Result<WritePlan, AppendError> {
    let mut changes = changes.clone();
    changes.bucket(append.bucket);
    let (planned, failed) = plan_with(db, &changes, opts, Some(append));
    if let Some(e) = failed {
        return Err(AppendError::Io(e));
    }
    Ok(planned?)
}

/// The plan, and the write of a new leaf that failed, if one did.
fn plan_with(
    db: Db<'_>,
    changes: &BucketChanges,
    opts: WriteOptions,
    append: Option<Append<'_>>,
) -> (Result<WritePlan>, Option<io::Error>) {
    let mut p = Planner {
        db,
        ps: db.page_size() as usize,
        fill: opts.fill,
        next: db.hwm(),
        pages: Vec::new(),
        freed: Vec::new(),
        nest: 0,
        append,
        failed: None,
    };
    let planned = p.plan(changes);
    (planned, p.failed.take())
}

impl Planner<'_, '_> {
    fn plan(&mut self, changes: &BucketChanges) -> Result<WritePlan> {
        let db = self.db;
        if db.hwm() > db.file_pages() {
            // A truncated file: new pages would be allocated beyond a hole.
            return Err(BoltError::PageBeyondEof {
                id: db.hwm().saturating_sub(1),
                pages: db.file_pages(),
            });
        }
        let root = self.rewrite_root(db.meta().root, changes)?;
        if let Some(a) = &self.append {
            return Err(BoltError::BucketValue {
                name: String::from_utf8_lossy(a.bucket).into_owned(),
                what: "the bucket to append to was not reached".into(),
                offset: 0,
            });
        }
        let old = *db.meta();
        let mut meta = old;
        meta.root = root;
        meta.txid = old.txid.wrapping_add(1);
        if old.has_synced_freelist() {
            let mut ids = match freelist::read(&db)? {
                Some(fl) => {
                    let span = old.freelist..=old.freelist.saturating_add(u64::from(fl.overflow));
                    self.freed.extend(span);
                    fl.ids
                }
                None => Vec::new(),
            };
            ids.append(&mut self.freed);
            ids.sort_unstable();
            ids.dedup();
            let n = freelist::pages_for(ids.len(), self.ps) as u64;
            let id = self.alloc(n);
            let img = freelist::encode(id, &ids, self.ps);
            self.pages.push((id, img));
            meta.freelist = id;
        } else {
            meta.freelist = NO_FREELIST;
        }
        meta.pgid = self.next;
        meta.checksum = meta.compute_checksum();
        Ok(WritePlan {
            page_size: self.ps,
            pages: std::mem::take(&mut self.pages),
            meta,
            meta_slot: meta.txid % 2,
            old_len_pages: db.file_pages(),
        })
    }
}

/// What became of a node after its changes were applied.
enum Outcome<'a> {
    /// Untouched: the parent keeps its element.
    Unchanged,
    /// Replaced by these nodes (none if it became empty), as branch items.
    Replaced(Vec<Item<'a>>),
}

struct Planner<'a, 'p> {
    db: Db<'a>,
    ps: usize,
    fill: f64,
    next: u64,
    pages: Vec<(u64, Vec<u8>)>,
    freed: Vec<u64>,
    /// How many nested buckets deep the bucket being rewritten is (0: a
    /// top-level bucket).
    nest: usize,
    /// The append still to be made.
    append: Option<Append<'p>>,
    /// Why writing a new leaf failed.
    failed: Option<io::Error>,
}

fn incompatible(key: &[u8]) -> BoltError {
    BoltError::BucketValue {
        name: String::from_utf8_lossy(key).into_owned(),
        what: "incompatible value: a bucket and a plain value cannot replace each other".into(),
        offset: 0,
    }
}

impl<'a> Planner<'a, '_> {
    fn alloc(&mut self, pages: u64) -> u64 {
        let id = self.next;
        self.next = self.next.saturating_add(pages);
        id
    }

    /// Reads branch or leaf page `id` at tree depth `depth` for rewriting
    /// and frees its span (the new version goes to new pages).
    fn take_node(&mut self, id: u64, depth: usize) -> Result<Page<'a>> {
        if depth > super::cursor::MAX_DEPTH {
            return Err(BoltError::TooDeep {
                id,
                limit: super::cursor::MAX_DEPTH,
            });
        }
        let page = self.db.node_page(id)?;
        page.check_element_table()?;
        self.free_span(&page);
        Ok(page)
    }

    fn free_span(&mut self, page: &Page<'_>) {
        let id = page.id();
        let end = id.saturating_add(u64::from(page.header().overflow));
        self.freed.extend(id..=end);
    }

    /// Writes `items` as one or more nodes; returns them as branch items.
    fn write_nodes(&mut self, leaf: bool, items: Vec<Item<'a>>) -> Vec<Item<'a>> {
        let mut out = Vec::new();
        for part in split(items, self.ps, self.fill) {
            let Some(first) = part.first().map(|i| i.key.clone()) else {
                continue;
            };
            let id = self.alloc(node::pages_for(&part, self.ps));
            self.pages.push((id, page_image(id, leaf, &part, self.ps)));
            out.push(Item::branch(first, id));
        }
        out
    }

    /// Builds branch levels over `children` until one root remains.
    fn build_root(&mut self, mut children: Vec<Item<'a>>) -> u64 {
        loop {
            match children.as_slice() {
                [] => {
                    let id = self.alloc(1);
                    self.pages.push((id, page_image(id, true, &[], self.ps)));
                    return id;
                }
                [one] => return one.child,
                _ => children = self.write_nodes(false, children),
            }
        }
    }

    fn rewrite_root(&mut self, root: u64, changes: &BucketChanges) -> Result<u64> {
        if changes.is_empty() {
            return Ok(root);
        }
        if let Some((k, _)) = changes
            .keys
            .iter()
            .find(|(_, c)| matches!(c, Change::Put(_) | Change::Delete))
        {
            return Err(BoltError::BucketValue {
                name: String::from_utf8_lossy(k).into_owned(),
                what: "only buckets may be stored at the top level".into(),
                offset: 0,
            });
        }
        let items = if changes.clear {
            self.free_tree(root)?;
            let fresh = self.merge(Vec::new(), changes)?;
            self.write_nodes(true, fresh)
        } else {
            match self.apply(root, &changes.keys)? {
                Outcome::Unchanged => return Ok(root),
                Outcome::Replaced(items) => items,
            }
        };
        Ok(self.build_root(items))
    }

    /// Applies sorted changes to the subtree at `id`.
    fn apply(&mut self, id: u64, changes: &BTreeMap<Vec<u8>, Change>) -> Result<Outcome<'a>> {
        self.apply_range(id, changes, None, None, 0)
    }

    fn apply_range(
        &mut self,
        id: u64,
        changes: &BTreeMap<Vec<u8>, Change>,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
        depth: usize,
    ) -> Result<Outcome<'a>> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let lower = lo.map_or(Unbounded, Included);
        let upper = hi.map_or(Unbounded, Excluded);
        let mut in_range = changes.range::<[u8], _>((lower, upper)).peekable();
        if in_range.peek().is_none() {
            return Ok(Outcome::Unchanged);
        }
        let page = self.take_node(id, depth)?;
        if page.kind() == PageKind::Leaf {
            let mut items = Vec::with_capacity(page.count());
            for i in 0..page.count() {
                let e = page.leaf(i)?;
                items.push(Item::leaf(
                    e.flags,
                    Cow::Borrowed(e.key),
                    Cow::Borrowed(e.value),
                ));
            }
            let sub: BucketChanges = BucketChanges {
                clear: false,
                keys: in_range.map(|(k, c)| (k.clone(), c.clone())).collect(),
            };
            let merged = self.merge(items, &sub)?;
            return Ok(Outcome::Replaced(self.write_nodes(true, merged)));
        }
        let n = page.count();
        let mut elems = Vec::with_capacity(n);
        for i in 0..n {
            elems.push(page.branch(i)?);
        }
        let mut out: Vec<Item<'a>> = Vec::with_capacity(n);
        for (i, e) in elems.iter().enumerate() {
            // Child i takes keys from its separator (or from the parent's
            // lower bound for the first child) up to the next separator.
            let c_lo = if i == 0 { lo } else { Some(e.key) };
            let c_hi = elems.get(i + 1).map(|n| n.key).or(hi);
            match self.apply_range(e.child, changes, c_lo, c_hi, depth + 1)? {
                Outcome::Unchanged => out.push(Item::branch(Cow::Borrowed(e.key), e.child)),
                Outcome::Replaced(items) => out.extend(items),
            }
        }
        if out.is_empty() {
            return Ok(Outcome::Replaced(Vec::new()));
        }
        Ok(Outcome::Replaced(self.write_nodes(false, out)))
    }

    /// Merges sorted changes into the sorted leaf items of one node.
    fn merge(&mut self, items: Vec<Item<'a>>, changes: &BucketChanges) -> Result<Vec<Item<'a>>> {
        let mut map: BTreeMap<Cow<'a, [u8]>, Item<'a>> =
            items.into_iter().map(|i| (i.key.clone(), i)).collect();
        for (k, c) in &changes.keys {
            let existing = map.get(k.as_slice());
            let is_bucket = existing.map(|i| i.flags & LEAF_FLAG_BUCKET != 0);
            match c {
                Change::Put(v) => {
                    if is_bucket == Some(true) {
                        return Err(incompatible(k));
                    }
                    map.insert(
                        Cow::Owned(k.clone()),
                        Item::leaf(0, Cow::Owned(k.clone()), Cow::Owned(v.clone())),
                    );
                }
                Change::Delete => {
                    if is_bucket == Some(true) {
                        return Err(incompatible(k));
                    }
                    map.remove(k.as_slice());
                }
                Change::DeleteBucket => {
                    if is_bucket == Some(false) {
                        return Err(incompatible(k));
                    }
                    if let Some(old) = map.remove(k.as_slice()) {
                        self.free_bucket_value(k, &old.value)?;
                    }
                }
                Change::Bucket(sub) => {
                    if is_bucket == Some(false) {
                        return Err(incompatible(k));
                    }
                    let old = map.get(k.as_slice()).map(|i| i.value.clone());
                    let value = self.rewrite_bucket(k, old.as_deref(), sub)?;
                    map.insert(
                        Cow::Owned(k.clone()),
                        Item::leaf(LEAF_FLAG_BUCKET, Cow::Owned(k.clone()), value),
                    );
                }
            }
        }
        Ok(map.into_values().collect())
    }

    /// The new value of a nested bucket (header plus inline page, or just
    /// the header) after `changes` (and the append, for its bucket).
    fn rewrite_bucket(
        &mut self,
        name: &[u8],
        old: Option<&[u8]>,
        changes: &BucketChanges,
    ) -> Result<Cow<'a, [u8]>> {
        let appending = self.nest == 0 && self.append.as_ref().is_some_and(|a| a.bucket == name);
        if appending {
            if changes.clear || !changes.keys.is_empty() {
                return Err(BoltError::BucketValue {
                    name: String::from_utf8_lossy(name).into_owned(),
                    what: "a bucket appended to takes no other change".into(),
                    offset: 0,
                });
            }
            let decoded = match old {
                Some(v) => Some(BucketValue::decode(name, v, value_offset(self.db, v))?),
                None => None,
            };
            let sequence = decoded.as_ref().map_or(0, |d| d.sequence);
            let root = self.append_tree(name, decoded.map(|d| d.root))?;
            return Ok(Cow::Owned(bucket_header(root, sequence)));
        }
        self.nest += 1;
        let value = self.rewrite_nested(name, old, changes);
        self.nest -= 1;
        value
    }

    /// Appends the planned entries to the bucket `name` whose tree is at
    /// `root` (none: a new bucket): its last leaf's items and the entries
    /// are laid out in full leaves, written to the file at once, and the
    /// branches on the rightmost path are rebuilt over them. The new root.
    fn append_tree(&mut self, name: &[u8], root: Option<BucketRoot<'_>>) -> Result<u64> {
        let bad = |what: &str| BoltError::BucketValue {
            name: String::from_utf8_lossy(name).into_owned(),
            what: what.into(),
            offset: 0,
        };
        let Some(append) = self.append.take() else {
            return Err(bad("nothing to append"));
        };
        // The branches of the rightmost path (top first), without their
        // last child, and the items of the last leaf.
        let mut spine: Vec<Vec<Item<'a>>> = Vec::new();
        let mut prefix: Vec<Item<'a>> = Vec::new();
        match root {
            None => {}
            Some(BucketRoot::Inline(page)) => {
                for i in 0..page.count() {
                    let e = page.leaf(i)?;
                    prefix.push(Item::leaf(
                        e.flags,
                        Cow::Owned(e.key.to_vec()),
                        Cow::Owned(e.value.to_vec()),
                    ));
                }
            }
            Some(BucketRoot::Page(mut id)) => {
                let mut depth = 0;
                loop {
                    let page = self.take_node(id, depth)?;
                    let n = page.count();
                    if page.kind() == PageKind::Leaf {
                        for i in 0..n {
                            let e = page.leaf(i)?;
                            prefix.push(Item::leaf(
                                e.flags,
                                Cow::Borrowed(e.key),
                                Cow::Borrowed(e.value),
                            ));
                        }
                        break;
                    }
                    let last = n
                        .checked_sub(1)
                        .ok_or(BoltError::EmptyBranch { id })
                        .and_then(|l| page.branch(l))?;
                    let mut items = Vec::with_capacity(n);
                    for i in 0..n.saturating_sub(1) {
                        let e = page.branch(i)?;
                        items.push(Item::branch(Cow::Borrowed(e.key), e.child));
                    }
                    spine.push(items);
                    id = last.child;
                    depth += 1;
                }
            }
        }
        let mut leaves = LeafPacker {
            out: append.out,
            ps: self.ps,
            node: Vec::new(),
            size: PAGE_HEADER_SIZE,
            branches: Vec::new(),
            buf: Vec::new(),
            buf_at: 0,
        };
        let mut last: Option<Vec<u8>> = prefix.last().map(|i| i.key.to_vec());
        let mut written = Ok(());
        for item in prefix {
            if written.is_ok() {
                written = leaves.push(item, |n| self.alloc(n));
            }
        }
        for (k, v) in append.entries {
            if written.is_err() {
                break;
            }
            if last.as_deref().is_some_and(|l| k.as_slice() <= l) {
                return Err(bad(
                    "appended keys must increase and follow the bucket's last key",
                ));
            }
            last = Some(k.clone());
            written = leaves.push(Item::leaf(0, Cow::Owned(k), Cow::Owned(v)), |n| {
                self.alloc(n)
            });
        }
        let mut children = match written.and_then(|()| leaves.finish(|n| self.alloc(n))) {
            Ok(branches) => branches,
            Err(e) => {
                self.failed = Some(e);
                return Err(bad("writing a new leaf failed"));
            }
        };
        while let Some(mut items) = spine.pop() {
            items.append(&mut children);
            children = self.write_nodes(false, items);
        }
        Ok(self.build_root(children))
    }

    /// [`rewrite_bucket`](Self::rewrite_bucket) of a bucket not appended to.
    fn rewrite_nested(
        &mut self,
        name: &[u8],
        old: Option<&[u8]>,
        changes: &BucketChanges,
    ) -> Result<Cow<'a, [u8]>> {
        let decoded = match old {
            Some(v) => Some(BucketValue::decode(name, v, value_offset(self.db, v))?),
            None => None,
        };
        if changes.is_empty()
            && let Some(v) = old
        {
            return Ok(Cow::Owned(v.to_vec()));
        }
        let sequence = decoded.map_or(0, |d| d.sequence);
        let mut base: Vec<Item<'a>> = Vec::new();
        let mut root_page = None;
        match decoded.map(|d| d.root) {
            None => {}
            Some(BucketRoot::Inline(page)) if !changes.clear => {
                for i in 0..page.count() {
                    let e = page.leaf(i)?;
                    base.push(Item::leaf(
                        e.flags,
                        Cow::Owned(e.key.to_vec()),
                        Cow::Owned(e.value.to_vec()),
                    ));
                }
            }
            Some(BucketRoot::Inline(_)) => {}
            Some(BucketRoot::Page(id)) => {
                if changes.clear {
                    self.free_tree(id)?;
                } else {
                    root_page = Some(id);
                }
            }
        }
        let items = match root_page {
            Some(id) => match self.apply(id, &changes.keys)? {
                Outcome::Unchanged => return Ok(Cow::Owned(bucket_header(id, sequence))),
                Outcome::Replaced(items) => {
                    // A paged bucket that shrank to one small leaf stays
                    // paged; Go re-inlines it on its next write.
                    return Ok(Cow::Owned(bucket_header(self.build_root(items), sequence)));
                }
            },
            None => self.merge(base, changes)?,
        };
        if inlinable(&items, self.ps) {
            let mut v = bucket_header(0, sequence);
            v.extend_from_slice(&inline_image(&items));
            return Ok(Cow::Owned(v));
        }
        let nodes = self.write_nodes(true, items);
        Ok(Cow::Owned(bucket_header(self.build_root(nodes), sequence)))
    }

    fn free_bucket_value(&mut self, name: &[u8], value: &[u8]) -> Result<()> {
        let v = BucketValue::decode(name, value, 0)?;
        match v.root {
            BucketRoot::Page(id) => self.free_tree(id),
            BucketRoot::Inline(_) => Ok(()),
        }
    }

    /// Frees every page of the tree at `root`, nested buckets included.
    fn free_tree(&mut self, root: u64) -> Result<()> {
        let mut stack = vec![(root, 0usize)];
        let mut budget = self.db.hwm();
        while let Some((id, depth)) = stack.pop() {
            budget = budget.checked_sub(1).ok_or(BoltError::Revisited { id })?;
            let page = self.take_node(id, depth)?;
            for i in 0..page.count() {
                if page.kind() == PageKind::Branch {
                    stack.push((page.branch(i)?.child, depth + 1));
                    continue;
                }
                let e = page.leaf(i)?;
                if e.is_bucket()
                    && let BucketRoot::Page(child) = BucketValue::decode(e.key, e.value, 0)?.root
                {
                    stack.push((child, 0));
                }
            }
        }
        Ok(())
    }
}

/// Lays leaf items out in full pages (a node is cut before the item that
/// would take it past a page; an item larger than a page gets a node of
/// its own, with overflow pages) and writes each page to the file as it is
/// made, consecutive pages in one write.
struct LeafPacker<'f, 'a> {
    out: &'f File,
    ps: usize,
    node: Vec<Item<'a>>,
    size: usize,
    /// A branch item per leaf written.
    branches: Vec<Item<'a>>,
    buf: Vec<u8>,
    buf_at: u64,
}

/// Bytes of consecutive pages gathered into one write.
const APPEND_WRITE: usize = 4 << 20;

impl<'a> LeafPacker<'_, 'a> {
    fn push(&mut self, item: Item<'a>, alloc: impl FnOnce(u64) -> u64) -> io::Result<()> {
        let size = ELEMENT_SIZE + item.key.len() + item.value.len();
        if !self.node.is_empty() && self.size + size > self.ps {
            self.flush_node(alloc)?;
        }
        self.size += size;
        self.node.push(item);
        Ok(())
    }

    fn flush_node(&mut self, alloc: impl FnOnce(u64) -> u64) -> io::Result<()> {
        let Some(first) = self.node.first().map(|i| i.key.to_vec()) else {
            return Ok(());
        };
        let id = alloc(node::pages_for(&self.node, self.ps));
        let img = page_image(id, true, &self.node, self.ps);
        let at = id.saturating_mul(self.ps as u64);
        if !self.buf.is_empty() && self.buf_at.saturating_add(self.buf.len() as u64) != at {
            self.write_buf()?;
        }
        if self.buf.is_empty() {
            self.buf_at = at;
        }
        self.buf.extend_from_slice(&img);
        if self.buf.len() >= APPEND_WRITE {
            self.write_buf()?;
        }
        self.branches.push(Item::branch(Cow::Owned(first), id));
        self.node.clear();
        self.size = PAGE_HEADER_SIZE;
        Ok(())
    }

    fn write_buf(&mut self) -> io::Result<()> {
        self.out.write_all_at(&self.buf, self.buf_at)?;
        self.buf.clear();
        Ok(())
    }

    /// Writes the last leaf; the branch items of every leaf written.
    fn finish(mut self, alloc: impl FnOnce(u64) -> u64) -> io::Result<Vec<Item<'a>>> {
        self.flush_node(alloc)?;
        self.write_buf()?;
        Ok(self.branches)
    }
}

fn bucket_header(root: u64, sequence: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(BUCKET_HEADER_SIZE);
    v.extend_from_slice(&root.to_le_bytes());
    v.extend_from_slice(&sequence.to_le_bytes());
    v
}

/// Go's rule: a bucket is stored inline when its items fit in a quarter
/// page (header included) and none of them is a nested bucket.
fn inlinable(items: &[Item<'_>], page_size: usize) -> bool {
    items.iter().all(|i| i.flags & LEAF_FLAG_BUCKET == 0) && node_size(items) <= page_size / 4
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::bolt::check;

    fn key(i: usize) -> Vec<u8> {
        format!("k{i:08}").into_bytes()
    }

    fn value(i: usize) -> Vec<u8> {
        vec![(i % 251) as u8; 100 + (i * 37) % 1500]
    }

    /// A db with `n` entries in bucket `b` (and a bucket `a` with one),
    /// written by the planner in one transaction; synced freelist or not.
    fn base(n: usize, synced: bool) -> Vec<u8> {
        let mut img = new_image(4096);
        if !synced {
            // NoFreelistSync: the meta's freelist field says so.
            let mut db_meta = *Db::open(&img).unwrap().meta();
            for slot in 0..2u64 {
                db_meta.txid = slot;
                db_meta.freelist = NO_FREELIST;
                db_meta.checksum = db_meta.compute_checksum();
                let p = db_meta.page_image(slot, 4096);
                img[slot as usize * 4096..(slot as usize + 1) * 4096].copy_from_slice(&p);
            }
        }
        let mut c = BucketChanges::new();
        c.bucket(b"a".to_vec()).put(b"x".to_vec(), b"y".to_vec());
        let b = c.bucket(b"b".to_vec());
        for i in 0..n {
            b.put(key(i), value(i));
        }
        let plan = plan(Db::open(&img).unwrap(), &c, WriteOptions::default()).unwrap();
        plan.apply_to(&mut img);
        img
    }

    /// Appends entries `from..to` to bucket `b` of `img` (with a change to
    /// bucket `a`), through a file; the file's bytes.
    fn append(img: &[u8], from: usize, to: usize) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        std::fs::write(&path, img).unwrap();
        let f = File::options().read(true).write(true).open(&path).unwrap();
        let mut c = BucketChanges::new();
        c.bucket(b"a".to_vec()).put(b"z".to_vec(), b"w".to_vec());
        let mut entries = (from..to).map(|i| (key(i), value(i)));
        let plan = plan_appending(
            Db::open(img).unwrap(),
            &c,
            WriteOptions::default(),
            Append {
                bucket: b"b",
                entries: &mut entries,
                out: &f,
            },
        )
        .unwrap();
        plan.commit(&f).unwrap();
        let out = std::fs::read(&path).unwrap();
        assert_eq!(out.len() as u64, plan.file_len());
        out
    }

    fn entries(img: &[u8], bucket: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let db = Db::open(img).unwrap();
        let b = db.root().bucket(bucket).unwrap().unwrap();
        b.iter()
            .map(|e| {
                let e = e.unwrap();
                (e.key.to_vec(), e.value.to_vec())
            })
            .collect()
    }

    #[test]
    fn appends_after_the_last_key() {
        for synced in [true, false] {
            // Empty, inline, one leaf, several levels of branches.
            for n in [0, 3, 20, 3000] {
                let img = base(n, synced);
                for more in [0, 1, 7, 5000] {
                    let out = append(&img, n, n + more);
                    let db = Db::open(&out).unwrap();
                    let report = check(db);
                    assert!(
                        report.is_ok(),
                        "n {n} more {more} synced {synced}: {report:?}"
                    );
                    let want: Vec<_> = (0..n + more).map(|i| (key(i), value(i))).collect();
                    assert_eq!(entries(&out, b"b"), want, "n {n} more {more}");
                    assert_eq!(entries(&out, b"a").len(), 2);
                    // Every page the old tree kept is where it was.
                    assert_eq!(db.meta().txid, Db::open(&img).unwrap().meta().txid + 1);
                }
            }
        }
    }

    #[test]
    fn refuses_keys_out_of_order() {
        let img = base(50, true);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        std::fs::write(&path, &img).unwrap();
        let f = File::options().read(true).write(true).open(&path).unwrap();
        for bad in [
            vec![(key(49), value(0))],
            vec![(key(60), value(0)), (key(55), value(0))],
        ] {
            let mut it = bad.into_iter();
            let r = plan_appending(
                Db::open(&img).unwrap(),
                &BucketChanges::new(),
                WriteOptions::default(),
                Append {
                    bucket: b"b",
                    entries: &mut it,
                    out: &f,
                },
            );
            assert!(matches!(r, Err(AppendError::Bolt(_))));
        }
    }
}
