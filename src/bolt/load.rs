//! The bulk loader: writes a whole new bbolt file from buckets whose
//! entries arrive in key order, streaming, bottom-up.
//!
//! The layout is the one Go bbolt gives a fresh file filled by appending
//! keys in order (what `etcdutl defrag` and `bbolt compact` do), minus the
//! free pages their intermediate commits leave behind:
//!
//! * leaves are cut by Go's split rule (`node.splitTwo`/`splitIndex`) at
//!   the bucket's fill percent; a page is written as soon as the rule can
//!   no longer move its cut, so only a page or so of entries per tree level
//!   is held in memory, whatever the size of the bucket;
//! * branch levels are built the same way over the pages written below
//!   them (the separator is each child's first key, as Go writes it);
//! * a bucket whose entries fit in a quarter page and hold no nested bucket
//!   is stored inline in its parent's value, as Go's `inlineable` decides;
//! * pages are numbered from 2 in the order they are written, the freelist
//!   (empty, or none for a NoFreelistSync file) goes last, and both metas
//!   (the newest at page 0, as a `Tx.WriteTo` copy has them) are written
//!   at the end with fresh checksums.
//!
//! A file can also be written strictly in order, for an output that cannot
//! seek (an upload, a compressor, a running hash): a
//! [dry run](Loader::dry_run) fed the same entries works out the layout
//! without writing anything, and [`Loader::in_order`] then writes the metas
//! it planned first and every other page after them, refusing to finish if
//! the entries did not lay out as planned.
//!
//! Nothing here knows about etcd.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use etcdsnap::bolt::Db;
//! use etcdsnap::internal::bolt::{LoadOptions, Loader};
//!
//! let mut l = Loader::new(std::io::Cursor::new(Vec::new()), LoadOptions::default())?;
//! l.begin_bucket(b"fruit", 0)?;
//! l.put(b"apple", b"red")?;
//! l.put(b"banana", b"yellow")?;
//! l.end_bucket()?;
//! let (out, summary) = l.finish()?;
//! let img = out.into_inner();
//! assert_eq!(img.len() as u64, summary.pages * 4096);
//! let db = Db::open(&img)?;
//! assert!(etcdsnap::bolt::check(db).is_ok());
//! let fruit = db.root().bucket(b"fruit")?.expect("bucket");
//! assert_eq!(fruit.get(b"banana")?, Some(&b"yellow"[..]));
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};

use super::bucket::BUCKET_HEADER_SIZE;
use super::freelist;
use super::meta::{MAGIC, Meta, NO_FREELIST, VERSION};
use super::node::{Item, inline_image, node_size, page_image, pages_for, split};
use super::page::{ELEMENT_SIZE, LEAF_FLAG_BUCKET, PAGE_HEADER_SIZE};

/// Longest key Go's `Bucket.Put` accepts (`MaxKeySize`).
pub const MAX_KEY_SIZE: usize = 32768;
/// Longest value Go's `Bucket.Put` accepts (`MaxValueSize`).
pub const MAX_VALUE_SIZE: usize = (1 << 31) - 2;
/// Most elements a page can count (Go panics "inode overflow" at 0xFFFF).
const MAX_ELEMENTS: usize = 0xFFFE;
/// Fewest keys Go keeps on each side of a split.
const MIN_KEYS: usize = 2;

/// How the loader lays out the file.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Page size (a power of two from 512 bytes to 16 MiB).
    pub page_size: u32,
    /// Fill percent of every bucket below the root (Go: 0.1 to 1.0; etcd's
    /// defrag uses 0.9, `bbolt compact` 1.0).
    pub fill: f64,
    /// Fill percent of the root bucket (Go's default, 0.5, since neither
    /// etcd nor `bbolt compact` sets another on it).
    pub root_fill: f64,
    /// Write an (empty) freelist page; `false` writes a NoFreelistSync file
    /// (`meta.freelist` = none), as etcd on Linux does.
    pub freelist: bool,
    /// Transaction id of the meta at page 0 (at least 1; page 1 gets one
    /// less, as in a `Tx.WriteTo` copy).
    pub txid: u64,
    /// Sequence of the root bucket.
    pub root_sequence: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            page_size: 4096,
            fill: 0.9,
            root_fill: super::tx::DEFAULT_FILL,
            freelist: true,
            txid: 1,
            root_sequence: 0,
        }
    }
}

impl LoadOptions {
    /// Page size (a power of two from 512 bytes to 16 MiB).
    pub fn with_page_size(mut self, bytes: u32) -> Self {
        self.page_size = bytes;
        self
    }

    /// Fill percent of every bucket below the root.
    pub fn with_fill(mut self, fill: f64) -> Self {
        self.fill = fill;
        self
    }

    /// Fill percent of the root bucket.
    pub fn with_root_fill(mut self, fill: f64) -> Self {
        self.root_fill = fill;
        self
    }

    /// Write an (empty) freelist page, or none (NoFreelistSync).
    pub fn with_freelist(mut self, freelist: bool) -> Self {
        self.freelist = freelist;
        self
    }

    /// Transaction id of the meta at page 0.
    pub fn with_txid(mut self, txid: u64) -> Self {
        self.txid = txid;
        self
    }

    /// Sequence of the root bucket.
    pub fn with_root_sequence(mut self, sequence: u64) -> Self {
        self.root_sequence = sequence;
        self
    }
}

/// Why a bulk load failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Writing the output failed.
    #[error("write the database: {0}")]
    Io(#[from] io::Error),
    /// The page size is not one bbolt can have written.
    #[error("unsupported page size {0} (a power of two from 512 to 16 MiB is expected)")]
    PageSize(u32),
    /// A key is not greater than the previous key of its bucket.
    #[error(
        "key {key} is not after the previous key {previous} of bucket {bucket} (keys must be given in strictly increasing order)"
    )]
    Order {
        /// The bucket (names from the top, `/`-separated, hex where not printable).
        bucket: String,
        /// The previous key.
        previous: String,
        /// The key given.
        key: String,
    },
    /// An empty key (bbolt's `ErrKeyRequired`).
    #[error("key required (empty key in bucket {bucket})")]
    EmptyKey {
        /// The bucket.
        bucket: String,
    },
    /// A key longer than bbolt accepts (`ErrKeyTooLarge`).
    #[error("key too large ({len} bytes in bucket {bucket}; at most 32768)")]
    KeyTooLarge {
        /// The bucket.
        bucket: String,
        /// Its length.
        len: usize,
    },
    /// A value longer than bbolt accepts (`ErrValueTooLarge`).
    #[error("value too large ({len} bytes in bucket {bucket})")]
    ValueTooLarge {
        /// The bucket.
        bucket: String,
        /// Its length.
        len: usize,
    },
    /// A plain value at the top level, where bbolt keeps only buckets.
    #[error("only buckets may be stored at the top level (key {key})")]
    RootValue {
        /// The key given.
        key: String,
    },
    /// `end_bucket` with no bucket open, or `finish` with buckets open.
    #[error("unbalanced buckets: {0}")]
    Unbalanced(&'static str),
    /// An in-order load (one that writes strictly in order, for an output
    /// it cannot seek in) laid its entries out differently from its dry
    /// run: it was not given the same entries.
    #[error(
        "the entries were not the ones planned (planned {planned_pages} pages with the root at page {planned_root}, got {pages} with the root at {root})"
    )]
    NotAsPlanned {
        /// Pages the dry run counted.
        planned_pages: u64,
        /// The root page it planned.
        planned_root: u64,
        /// Pages written.
        pages: u64,
        /// The root page written.
        root: u64,
    },
    /// So many tiny entries that one page would count 0xFFFF or more.
    #[error("{count} elements in one page of bucket {bucket} (bbolt counts at most 65534)")]
    TooManyElements {
        /// The bucket.
        bucket: String,
        /// Elements the page would hold.
        count: usize,
    },
}

/// What a finished load wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSummary {
    /// Pages in the file (its high-water mark): the file is this many
    /// pages long.
    pub pages: u64,
    /// The root bucket's root page.
    pub root: u64,
    /// Buckets written (the root bucket not counted).
    pub buckets: u64,
    /// Of those, stored inline in their parent.
    pub inline_buckets: u64,
    /// Plain key/value pairs written.
    pub keys: u64,
    /// The meta written at page 0.
    pub meta: Meta,
}

/// One level of a bucket's tree under construction: the entries (or child
/// separators) not yet written, and where Go's split would cut them.
#[derive(Debug)]
struct Level<'a> {
    items: Vec<Item<'a>>,
    /// Serialized size of `items` as one node (header included).
    total: usize,
    /// Header plus the sizes of `items[..scanned]`, none of which is a cut.
    prefix: usize,
    scanned: usize,
    /// Where Go's `splitIndex` breaks, once found.
    cut: Option<usize>,
}

fn item_size(i: &Item<'_>) -> usize {
    ELEMENT_SIZE + i.key.len() + i.value.len()
}

impl Default for Level<'_> {
    fn default() -> Self {
        Level {
            items: Vec::new(),
            total: PAGE_HEADER_SIZE,
            prefix: PAGE_HEADER_SIZE,
            scanned: 0,
            cut: None,
        }
    }
}

impl<'a> Level<'a> {
    fn reset(&mut self) {
        self.total = node_size(&self.items);
        self.prefix = PAGE_HEADER_SIZE;
        self.scanned = 0;
        self.cut = None;
    }

    fn push(&mut self, item: Item<'a>) {
        self.total += item_size(&item);
        self.items.push(item);
    }

    /// The first part Go's split would cut off `items` whatever comes
    /// after them, if it is decided yet.
    ///
    /// Go cuts a node only when it has more than four items and is at least
    /// a page, at the first index i >= 2 whose element would take the
    /// running size past the threshold, and only if two items remain after
    /// it. Every one of these stays true as items are appended, and the
    /// index depends only on the items before it, so once they hold the
    /// cut is final.
    fn decided_cut(&mut self, page_size: usize, threshold: usize) -> Option<usize> {
        let n = self.items.len();
        if self.cut.is_none() {
            while self.scanned + MIN_KEYS < n {
                let i = self.scanned;
                let el = item_size(&self.items[i]);
                if i >= MIN_KEYS && self.prefix + el > threshold {
                    self.cut = Some(i);
                    break;
                }
                self.prefix += el;
                self.scanned += 1;
            }
        }
        let c = self.cut?;
        (n > 2 * MIN_KEYS && self.total >= page_size && c + MIN_KEYS < n).then_some(c)
    }
}

/// How the loader puts pages into its output.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Pages from offset 2 pages on, the metas last (seeking back).
    Seek,
    /// Nothing written: only the layout is worked out.
    DryRun,
    /// The metas of the plan first, then every page in order; no seek.
    InOrder(Meta),
}

/// A bucket being written.
#[derive(Debug)]
struct Frame<'a> {
    name: Vec<u8>,
    sequence: u64,
    fill: f64,
    last: Option<Cow<'a, [u8]>>,
    /// Whether the bucket may still be stored inline (all its entries are
    /// in `levels[0]` then, nothing written yet).
    inline: bool,
    levels: Vec<Level<'a>>,
}

/// The bulk loader (see the module documentation).
///
/// Entries are given bucket by bucket: [`begin_bucket`](Loader::begin_bucket)
/// opens a bucket inside the current one (at the top level: a top-level
/// bucket), [`put`](Loader::put) adds a key/value pair to the current
/// bucket, [`end_bucket`](Loader::end_bucket) closes it. In each bucket,
/// keys (bucket names included) must come in strictly increasing byte
/// order. [`finish`](Loader::finish) writes the freelist and the metas and
/// hands back the output, which then holds exactly the database.
///
/// Keys and values may be borrowed for `'a` (from a memory map, say): the
/// loader keeps the few entries of its pending pages without copying them.
pub struct Loader<'a, W: Write + Seek> {
    out: BufWriter<W>,
    opts: LoadOptions,
    ps: usize,
    next: u64,
    stack: Vec<Frame<'a>>,
    buckets: u64,
    inline_buckets: u64,
    keys: u64,
    mode: Mode,
    /// Told the bytes written so far after each page.
    progress: Option<Box<dyn FnMut(u64) + 'a>>,
}

impl<W: Write + Seek> std::fmt::Debug for Loader<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("opts", &self.opts)
            .field("next_page", &self.next)
            .field("depth", &self.stack.len())
            .field("mode", &self.mode)
            .finish()
    }
}

/// A key or bucket path as messages show it.
fn shown(k: &[u8]) -> String {
    if !k.is_empty() && k.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        String::from_utf8_lossy(k).into_owned()
    } else {
        format!("0x{}", crate::go::hex::encode(k))
    }
}

impl<'a, W: Write + Seek> Loader<'a, W> {
    /// Starts a file in `out` (written from its current start: page 0 at
    /// offset 0).
    pub fn new(out: W, opts: LoadOptions) -> Result<Loader<'a, W>, LoadError> {
        Loader::start(out, opts, Mode::Seek)
    }

    /// Starts the file `plan` describes (the summary of a
    /// [dry run](Loader::dry_run) given the same options and then the same
    /// entries), written strictly in order: its two metas at once, then
    /// every page as it is cut. `out` is never asked to seek, so it may be
    /// an upload or a running hash behind a [`Seek`] that only reports its
    /// position. [`finish`](Loader::finish) refuses
    /// ([`LoadError::NotAsPlanned`]) if the entries laid out differently;
    /// what was written is then not the planned file and must be dropped.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use etcdsnap::bolt::LoadError;
    /// use etcdsnap::internal::bolt::{LoadOptions, Loader};
    /// use std::io::{Seek, Write};
    ///
    /// fn fill<W: Write + Seek>(l: &mut Loader<'_, W>) -> Result<(), LoadError> {
    ///     l.begin_bucket(&b"b"[..], 0)?;
    ///     for i in 0..1000u32 {
    ///         l.put(format!("key{i:05}").into_bytes(), vec![7u8; 100])?;
    ///     }
    ///     l.end_bucket()
    /// }
    /// let mut dry = Loader::dry_run(LoadOptions::default())?;
    /// fill(&mut dry)?;
    /// let (_, plan) = dry.finish()?;
    /// let mut l = Loader::in_order(std::io::Cursor::new(Vec::new()), LoadOptions::default(), &plan)?;
    /// fill(&mut l)?;
    /// let (out, done) = l.finish()?;
    /// assert_eq!(done, plan);
    /// let img = out.into_inner();
    /// assert!(etcdsnap::bolt::check(etcdsnap::bolt::Db::open(&img)?).is_ok());
    /// # Ok(()) }
    /// ```
    pub fn in_order(
        out: W,
        opts: LoadOptions,
        plan: &LoadSummary,
    ) -> Result<Loader<'a, W>, LoadError> {
        Loader::start(out, opts, Mode::InOrder(plan.meta))
    }

    fn start(out: W, opts: LoadOptions, mode: Mode) -> Result<Loader<'a, W>, LoadError> {
        let ps = opts.page_size;
        if !(super::db::MIN_PAGE_SIZE..=super::db::MAX_PAGE_SIZE).contains(&ps)
            || !ps.is_power_of_two()
        {
            return Err(LoadError::PageSize(ps));
        }
        let ps = ps as usize;
        let mut out = BufWriter::with_capacity((1 << 20).max(ps), out);
        match mode {
            Mode::Seek => {
                out.seek(SeekFrom::Start(2 * ps as u64))?;
            }
            Mode::DryRun => {}
            Mode::InOrder(meta) => {
                let mut older = meta;
                older.txid = meta.txid.saturating_sub(1);
                out.write_all(&meta.page_image(0, ps))?;
                out.write_all(&older.page_image(1, ps))?;
            }
        }
        let root = Frame {
            name: Vec::new(),
            sequence: opts.root_sequence,
            fill: opts.root_fill,
            last: None,
            inline: false,
            levels: vec![Level::default()],
        };
        Ok(Loader {
            out,
            opts,
            ps,
            next: 2,
            stack: vec![root],
            buckets: 0,
            inline_buckets: 0,
            keys: 0,
            mode,
            progress: None,
        })
    }

    /// Calls `f` with the number of bytes written so far after each page
    /// (for progress reports, or to drop pages of a source map already
    /// read).
    pub fn on_progress(&mut self, f: impl FnMut(u64) + 'a) {
        self.progress = Some(Box::new(f));
    }

    fn path(&self) -> String {
        let names: Vec<String> = self.stack.iter().skip(1).map(|f| shown(&f.name)).collect();
        if names.is_empty() {
            "(root)".into()
        } else {
            names.join("/")
        }
    }

    fn top(&mut self) -> &mut Frame<'a> {
        let n = self.stack.len();
        // The root frame is never popped (end_bucket refuses it).
        &mut self.stack[n - 1]
    }

    /// Checks `key` comes next in the current bucket, records it and
    /// hands it back.
    fn order(&mut self, key: Cow<'a, [u8]>) -> Result<Cow<'a, [u8]>, LoadError> {
        if key.is_empty() {
            return Err(LoadError::EmptyKey {
                bucket: self.path(),
            });
        }
        if key.len() > MAX_KEY_SIZE {
            return Err(LoadError::KeyTooLarge {
                bucket: self.path(),
                len: key.len(),
            });
        }
        let prev = self.top().last.clone();
        if let Some(prev) = prev
            && prev.as_ref() >= key.as_ref()
        {
            return Err(LoadError::Order {
                bucket: self.path(),
                previous: shown(&prev),
                key: shown(&key),
            });
        }
        self.top().last = Some(key.clone());
        Ok(key)
    }

    /// Adds `key` → `value` to the current bucket.
    pub fn put(
        &mut self,
        key: impl Into<Cow<'a, [u8]>>,
        value: impl Into<Cow<'a, [u8]>>,
    ) -> Result<(), LoadError> {
        let (key, value) = (key.into(), value.into());
        if self.stack.len() == 1 {
            return Err(LoadError::RootValue { key: shown(&key) });
        }
        if value.len() > MAX_VALUE_SIZE {
            return Err(LoadError::ValueTooLarge {
                bucket: self.path(),
                len: value.len(),
            });
        }
        let key = self.order(key)?;
        self.keys += 1;
        self.add(Item::leaf(0, key, value))
    }

    /// Opens bucket `name` inside the current bucket, with `sequence` (what
    /// `NextSequence` continues from; etcd leaves it 0).
    pub fn begin_bucket(
        &mut self,
        name: impl Into<Cow<'a, [u8]>>,
        sequence: u64,
    ) -> Result<(), LoadError> {
        let name = self.order(name.into())?;
        let fill = self.opts.fill;
        // A bucket holding a bucket is never inline.
        let parent = self.top();
        if parent.inline {
            parent.inline = false;
        }
        self.stack.push(Frame {
            name: name.into_owned(),
            sequence,
            fill,
            last: None,
            inline: true,
            levels: vec![Level::default()],
        });
        Ok(())
    }

    /// Closes the current bucket: writes what is left of its tree and adds
    /// its entry to the parent.
    pub fn end_bucket(&mut self) -> Result<(), LoadError> {
        if self.stack.len() < 2 {
            return Err(LoadError::Unbalanced("end_bucket with no bucket open"));
        }
        let Some(frame) = self.stack.pop() else {
            return Err(LoadError::Unbalanced("end_bucket with no bucket open"));
        };
        let name = frame.name.clone();
        let sequence = frame.sequence;
        let mut value = Vec::with_capacity(BUCKET_HEADER_SIZE);
        if frame.inline {
            value.extend_from_slice(&0u64.to_le_bytes());
            value.extend_from_slice(&sequence.to_le_bytes());
            value.extend_from_slice(&inline_image(&frame.levels[0].items));
            self.inline_buckets += 1;
        } else {
            let root = self.finish_tree(frame)?;
            value.extend_from_slice(&root.to_le_bytes());
            value.extend_from_slice(&sequence.to_le_bytes());
        }
        self.buckets += 1;
        self.add(Item::leaf(
            LEAF_FLAG_BUCKET,
            Cow::Owned(name),
            Cow::Owned(value),
        ))
    }

    /// Adds a leaf item to the current bucket.
    fn add(&mut self, item: Item<'a>) -> Result<(), LoadError> {
        let quarter = self.ps / 4;
        let is_bucket = item.flags & LEAF_FLAG_BUCKET != 0;
        let f = self.top();
        f.levels[0].push(item);
        if f.inline && (is_bucket || f.levels[0].total > quarter) {
            f.inline = false;
        }
        if f.inline {
            return Ok(());
        }
        self.settle(0)
    }

    /// Writes every page of level `level` (and above) of the current bucket
    /// whose cut is decided.
    fn settle(&mut self, mut level: usize) -> Result<(), LoadError> {
        let ps = self.ps;
        loop {
            let depth = self.stack.len() - 1;
            let f = &mut self.stack[depth];
            let threshold = (ps as f64 * f.fill.clamp(0.1, 1.0)) as usize;
            let Some(lv) = f.levels.get_mut(level) else {
                return Ok(());
            };
            let Some(c) = lv.decided_cut(ps, threshold) else {
                if level + 1 < f.levels.len() {
                    level += 1;
                    continue;
                }
                return Ok(());
            };
            let part: Vec<Item<'a>> = lv.items.drain(..c).collect();
            lv.reset();
            let sep = self.write_node(level == 0, &part)?;
            let f = &mut self.stack[depth];
            if f.levels.len() == level + 1 {
                f.levels.push(Level::default());
            }
            f.levels[level + 1].push(sep);
            // The rest of this level may hold another decided cut (large
            // values), and the level above may now have one.
        }
    }

    /// Writes one node at the next free page; its separator for the parent.
    fn write_node(&mut self, leaf: bool, items: &[Item<'a>]) -> Result<Item<'a>, LoadError> {
        if items.len() > MAX_ELEMENTS {
            return Err(LoadError::TooManyElements {
                bucket: self.path(),
                count: items.len(),
            });
        }
        let id = self.next;
        if !matches!(self.mode, Mode::DryRun) {
            let img = page_image(id, leaf, items, self.ps);
            self.out.write_all(&img)?;
        }
        self.next += pages_for(items, self.ps);
        if let Some(f) = self.progress.as_mut() {
            f(self.next * self.ps as u64);
        }
        let first = items.first().map(|i| i.key.clone()).unwrap_or_default();
        Ok(Item::branch(first, id))
    }

    /// Writes the rest of `frame`'s tree, bottom-up; its root page.
    fn finish_tree(&mut self, frame: Frame<'a>) -> Result<u64, LoadError> {
        // The frame's pending levels are finished from the stack, where
        // `settle` works on them.
        self.stack.push(frame);
        let depth = self.stack.len() - 1;
        let mut level = 0;
        let root = loop {
            let f = &mut self.stack[depth];
            let fill = f.fill;
            let items = std::mem::take(&mut f.levels[level].items);
            f.levels[level].reset();
            let higher = level + 1 < f.levels.len();
            let mut parts = split(items, self.ps, fill);
            parts.retain(|p| !p.is_empty());
            if !higher && parts.len() <= 1 {
                let part = parts.pop().unwrap_or_default();
                break self.write_node(level == 0, &part)?.child;
            }
            for part in parts {
                let sep = self.write_node(level == 0, &part)?;
                let f = &mut self.stack[depth];
                if f.levels.len() == level + 1 {
                    f.levels.push(Level::default());
                }
                f.levels[level + 1].push(sep);
                self.settle(level + 1)?;
            }
            level += 1;
        };
        self.stack.pop();
        Ok(root)
    }

    /// Writes the root bucket's tree, the freelist and both metas; returns
    /// the output (positioned at the end of the file) and what was written.
    pub fn finish(mut self) -> Result<(W, LoadSummary), LoadError> {
        if self.stack.len() != 1 {
            return Err(LoadError::Unbalanced("finish with a bucket still open"));
        }
        let Some(root_frame) = self.stack.pop() else {
            return Err(LoadError::Unbalanced("finish with no root bucket"));
        };
        // finish_tree works on the top of the stack; the root frame goes
        // back there for it.
        let root = self.finish_tree(root_frame)?;
        let freelist = if self.opts.freelist {
            let id = self.next;
            let img = freelist::encode(id, &[], self.ps);
            if !matches!(self.mode, Mode::DryRun) {
                self.out.write_all(&img)?;
            }
            self.next += (img.len() / self.ps) as u64;
            id
        } else {
            NO_FREELIST
        };
        let txid = self.opts.txid.max(1);
        let mut meta = Meta {
            magic: MAGIC,
            version: VERSION,
            page_size: self.opts.page_size,
            flags: 0,
            root,
            sequence: self.opts.root_sequence,
            freelist,
            pgid: self.next,
            txid,
            checksum: 0,
        };
        meta.checksum = meta.compute_checksum();
        match self.mode {
            Mode::Seek => {
                let mut older = meta;
                older.txid = txid - 1;
                self.out.seek(SeekFrom::Start(0))?;
                self.out.write_all(&meta.page_image(0, self.ps))?;
                self.out.write_all(&older.page_image(1, self.ps))?;
                self.out.seek(SeekFrom::Start(self.next * self.ps as u64))?;
            }
            Mode::DryRun => {}
            Mode::InOrder(planned) => {
                if planned != meta {
                    return Err(LoadError::NotAsPlanned {
                        planned_pages: planned.pgid,
                        planned_root: planned.root,
                        pages: meta.pgid,
                        root: meta.root,
                    });
                }
            }
        }
        self.out.flush()?;
        let summary = LoadSummary {
            pages: self.next,
            root,
            buckets: self.buckets,
            inline_buckets: self.inline_buckets,
            keys: self.keys,
            meta,
        };
        let out = self.out.into_inner().map_err(|e| e.into_error())?;
        Ok((out, summary))
    }
}

impl<'a> Loader<'a, io::Empty> {
    /// A loader that writes nothing: given the entries a real load will
    /// get, its [`finish`](Loader::finish) summary says where every page
    /// goes, which [`Loader::in_order`] needs to write the metas first.
    /// It builds no page images, so it costs a walk of the entries.
    pub fn dry_run(opts: LoadOptions) -> Result<Loader<'a, io::Empty>, LoadError> {
        Loader::start(io::empty(), opts, Mode::DryRun)
    }
}

/// Copies every entry of `bucket` (nested buckets included, with their
/// sequences) into the loader's current bucket.
pub fn copy_bucket<'a, W: Write + Seek>(
    loader: &mut Loader<'a, W>,
    bucket: &super::Bucket<'a>,
) -> Result<(), CopyError> {
    copy_bucket_showing(loader, bucket, |_| {})
}

/// [`copy_bucket`], showing `seen` each entry of `bucket` itself (not
/// those of nested buckets) before it is copied.
pub(crate) fn copy_bucket_showing<'a, W: Write + Seek>(
    loader: &mut Loader<'a, W>,
    bucket: &super::Bucket<'a>,
    mut seen: impl FnMut(&super::LeafElem<'a>),
) -> Result<(), CopyError> {
    for e in bucket.iter() {
        let e = e?;
        seen(&e);
        if e.is_bucket() {
            let sub = bucket
                .bucket(e.key)?
                .ok_or_else(|| super::BoltError::BucketValue {
                    name: shown(e.key),
                    what: "bucket entry that does not open as a bucket".into(),
                    offset: 0,
                })?;
            loader.begin_bucket(e.key, sub.sequence())?;
            copy_bucket(loader, &sub)?;
            loader.end_bucket()?;
        } else {
            loader.put(e.key, e.value)?;
        }
    }
    Ok(())
}

/// Why copying a database into a loader failed: reading the source, or
/// writing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// The source could not be read.
    #[error(transparent)]
    Read(#[from] super::BoltError),
    /// The loader refused an entry or could not write.
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// Copies the whole of `db` (every top-level bucket, the root bucket's
/// sequence) into a new file in `out`, densely packed; the loader's
/// options say how (`root_sequence` is taken from `db`).
pub fn copy_db<W: Write + Seek>(
    db: super::Db<'_>,
    out: W,
    mut opts: LoadOptions,
) -> Result<(W, LoadSummary), CopyError> {
    opts.root_sequence = db.meta().sequence;
    let mut loader = Loader::new(out, opts)?;
    for e in db.root().iter() {
        let e = e?;
        if !e.is_bucket() {
            return Err(LoadError::RootValue { key: shown(e.key) }.into());
        }
        let sub = db
            .root()
            .bucket(e.key)?
            .ok_or_else(|| super::BoltError::BucketValue {
                name: shown(e.key),
                what: "bucket entry that does not open as a bucket".into(),
                offset: 0,
            })?;
        loader.begin_bucket(e.key, sub.sequence())?;
        copy_bucket(&mut loader, &sub)?;
        loader.end_bucket()?;
    }
    Ok(loader.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bolt::{Db, check};
    use std::io::Cursor;

    type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

    fn load(buckets: &[(&[u8], Pairs)], opts: LoadOptions) -> Vec<u8> {
        let mut l = Loader::new(Cursor::new(Vec::new()), opts).expect("loader");
        for (name, kvs) in buckets {
            l.begin_bucket(*name, 7).expect("begin");
            for (k, v) in kvs {
                l.put(k.as_slice(), v.as_slice()).expect("put");
            }
            l.end_bucket().expect("end");
        }
        let (out, s) = l.finish().expect("finish");
        let img = out.into_inner();
        assert_eq!(img.len() as u64, s.pages * u64::from(opts.page_size));
        img
    }

    fn kvs(n: usize, vlen: usize) -> Pairs {
        (0..n)
            .map(|i| (format!("key{i:08}").into_bytes(), vec![b'v'; vlen + i % 7]))
            .collect()
    }

    /// The same layout Go's split gives all the entries at once: the
    /// streaming cut never differs from cutting the whole list.
    #[test]
    fn leaves_are_cut_as_one_go_split_cuts_them() {
        for (n, vlen) in [(1000, 10), (300, 200), (50, 3000), (20, 9000), (5000, 1)] {
            let data = kvs(n, vlen);
            let img = load(&[(b"b", data.clone())], LoadOptions::default());
            let db = Db::open(&img).expect("open");
            assert!(check(db).is_ok(), "{:?}", check(db).problems);
            let b = db.root().bucket(b"b").expect("b").expect("some");
            assert_eq!(b.sequence(), 7);
            let got: Vec<(Vec<u8>, Vec<u8>)> = b
                .iter()
                .map(|e| e.map(|e| (e.key.to_vec(), e.value.to_vec())))
                .collect::<Result<_, _>>()
                .expect("iter");
            assert_eq!(got, data);
            // Leaf sizes: what split() of the whole list gives.
            let items: Vec<Item<'_>> = data
                .iter()
                .map(|(k, v)| Item::leaf(0, Cow::Borrowed(&k[..]), Cow::Borrowed(&v[..])))
                .collect();
            let want: Vec<usize> = split(items, 4096, 0.9).iter().map(Vec::len).collect();
            let mut leaves = Vec::new();
            let mut id = 2;
            while id < db.hwm() {
                let p = db.page(id).expect("page");
                if p.kind() == crate::bolt::PageKind::Leaf && p.count() > 0 {
                    let first = p.leaf(0).expect("leaf");
                    if !first.is_bucket() {
                        leaves.push(p.count());
                    }
                }
                id += 1 + u64::from(p.header().overflow);
            }
            assert_eq!(leaves, want, "n={n} vlen={vlen}");
        }
    }

    /// A dry run then an in-order load write byte for byte what a seeking
    /// load writes; other entries than the planned ones are refused.
    #[test]
    fn in_order_after_a_dry_run_writes_the_same_file() {
        let buckets: Vec<(&[u8], Pairs)> = vec![
            (b"a", kvs(3, 5)),
            (b"key", kvs(3000, 120)),
            (b"meta", kvs(20, 9000)),
        ];
        for freelist in [true, false] {
            let opts = LoadOptions {
                freelist,
                txid: 41,
                ..LoadOptions::default()
            };
            let want = load(&buckets, opts);
            fn fill<'a, W: Write + Seek>(
                l: &mut Loader<'a, W>,
                buckets: &'a [(&'a [u8], Pairs)],
                extra: bool,
            ) -> Result<(), LoadError> {
                for (name, kvs) in buckets {
                    l.begin_bucket(*name, 7)?;
                    for (k, v) in kvs {
                        l.put(k.as_slice(), v.as_slice())?;
                    }
                    if extra && *name == b"key" {
                        l.put(&b"zzz"[..], vec![1u8; 5000])?;
                    }
                    l.end_bucket()?;
                }
                Ok(())
            }
            let mut dry = Loader::dry_run(opts).expect("dry");
            fill(&mut dry, &buckets, false).expect("fill dry");
            let (_, plan) = dry.finish().expect("plan");
            let mut l = Loader::in_order(Cursor::new(Vec::new()), opts, &plan).expect("l");
            fill(&mut l, &buckets, false).expect("fill");
            let (out, done) = l.finish().expect("finish");
            assert_eq!(done, plan);
            assert!(out.into_inner() == want, "freelist {freelist}");

            let mut l = Loader::in_order(Cursor::new(Vec::new()), opts, &plan).expect("l");
            fill(&mut l, &buckets, true).expect("fill");
            assert!(matches!(l.finish(), Err(LoadError::NotAsPlanned { .. })));
        }
    }

    #[test]
    fn small_buckets_are_inline_and_big_ones_are_not() {
        let img = load(
            &[(b"a", kvs(3, 5)), (b"b", kvs(200, 5)), (b"c", Vec::new())],
            LoadOptions {
                freelist: false,
                txid: 9,
                ..LoadOptions::default()
            },
        );
        let db = Db::open(&img).expect("open");
        assert!(check(db).is_ok());
        assert_eq!(db.meta().freelist, NO_FREELIST);
        assert_eq!((db.meta().txid, db.active_meta_page()), (9, 0));
        let root = db.root();
        let inline = |n: &[u8]| {
            matches!(
                root.bucket(n).expect("b").expect("some").root(),
                crate::bolt::BucketRoot::Inline(_)
            )
        };
        assert!(inline(b"a") && inline(b"c") && !inline(b"b"));
    }

    #[test]
    fn nested_buckets_and_refusals() {
        let mut l = Loader::new(Cursor::new(Vec::new()), LoadOptions::default()).expect("l");
        assert!(matches!(
            l.put(&b"x"[..], &b"y"[..]),
            Err(LoadError::RootValue { .. })
        ));
        l.begin_bucket(&b"outer"[..], 0).expect("outer");
        l.put(&b"a"[..], &b"1"[..]).expect("a");
        l.begin_bucket(&b"inner"[..], 3).expect("inner");
        l.put(&b"z"[..], &b"2"[..]).expect("z");
        l.end_bucket().expect("end inner");
        assert!(matches!(
            l.put(&b"b"[..], &b"1"[..]),
            Err(LoadError::Order { .. })
        ));
        assert!(matches!(
            l.put(&b""[..], &b"1"[..]),
            Err(LoadError::EmptyKey { .. })
        ));
        l.end_bucket().expect("end outer");
        assert!(matches!(l.end_bucket(), Err(LoadError::Unbalanced(_))));
        let (out, s) = l.finish().expect("finish");
        assert_eq!((s.buckets, s.inline_buckets, s.keys), (2, 1, 2));
        let img = out.into_inner();
        let db = Db::open(&img).expect("open");
        assert!(check(db).is_ok());
        let outer = db.root().bucket(b"outer").expect("o").expect("o");
        // A bucket holding a bucket has pages of its own.
        assert!(matches!(outer.root(), crate::bolt::BucketRoot::Page(_)));
        let inner = outer.bucket(b"inner").expect("i").expect("i");
        assert_eq!(
            (inner.sequence(), inner.get(b"z").expect("z")),
            (3, Some(&b"2"[..]))
        );
    }
}
