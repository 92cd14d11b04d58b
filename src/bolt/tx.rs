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
use super::page::{LEAF_FLAG_BUCKET, Page, PageKind};

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
/// assert_eq!((db.hwm(), db.meta().txid), (4, 1));
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
    if db.hwm() > db.file_pages() {
        // A truncated file: new pages would be allocated beyond a hole.
        return Err(BoltError::PageBeyondEof {
            id: db.hwm().saturating_sub(1),
            pages: db.file_pages(),
        });
    }
    let mut p = Planner {
        db,
        ps: db.page_size() as usize,
        fill: opts.fill,
        next: db.hwm(),
        pages: Vec::new(),
        freed: Vec::new(),
    };
    let root = p.rewrite_root(db.meta().root, changes)?;
    let old = *db.meta();
    let mut meta = old;
    meta.root = root;
    meta.txid = old.txid.wrapping_add(1);
    if old.has_synced_freelist() {
        let mut ids = match freelist::read(&db)? {
            Some(fl) => {
                let span = old.freelist..=old.freelist.saturating_add(u64::from(fl.overflow));
                p.freed.extend(span);
                fl.ids
            }
            None => Vec::new(),
        };
        ids.append(&mut p.freed);
        ids.sort_unstable();
        ids.dedup();
        let n = freelist::pages_for(ids.len(), p.ps) as u64;
        let id = p.alloc(n);
        let img = freelist::encode(id, &ids, p.ps);
        p.pages.push((id, img));
        meta.freelist = id;
    } else {
        meta.freelist = NO_FREELIST;
    }
    meta.pgid = p.next;
    meta.checksum = meta.compute_checksum();
    Ok(WritePlan {
        page_size: p.ps,
        pages: p.pages,
        meta,
        meta_slot: meta.txid % 2,
        old_len_pages: db.file_pages(),
    })
}

/// What became of a node after its changes were applied.
enum Outcome<'a> {
    /// Untouched: the parent keeps its element.
    Unchanged,
    /// Replaced by these nodes (none if it became empty), as branch items.
    Replaced(Vec<Item<'a>>),
}

struct Planner<'a> {
    db: Db<'a>,
    ps: usize,
    fill: f64,
    next: u64,
    pages: Vec<(u64, Vec<u8>)>,
    freed: Vec<u64>,
}

fn incompatible(key: &[u8]) -> BoltError {
    BoltError::BucketValue {
        name: String::from_utf8_lossy(key).into_owned(),
        what: "incompatible value: a bucket and a plain value cannot replace each other".into(),
        offset: 0,
    }
}

impl<'a> Planner<'a> {
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
    /// the header) after `changes`.
    fn rewrite_bucket(
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
