//! Buckets: the 16-byte bucket header, inline buckets, and lookups.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::check::MAX_NESTING;
use super::clip::Clipped;
use super::cursor::{Cursor, Iter};
use super::db::Db;
use super::error::{BoltError, Result};
use super::page::{LeafElem, Page, PageKind};

/// Size of the bucket header stored at the start of a bucket value.
pub const BUCKET_HEADER_SIZE: usize = 16;

/// Where a bucket's B+tree starts.
#[derive(Debug, Clone, Copy)]
pub enum BucketRoot<'a> {
    /// The root page id of a bucket with pages of its own.
    Page(u64),
    /// The leaf page image embedded in the parent's leaf (an inline bucket).
    Inline(Page<'a>),
}

/// The decoded value of a bucket entry.
#[derive(Debug, Clone, Copy)]
pub struct BucketValue<'a> {
    /// The tree root.
    pub root: BucketRoot<'a>,
    /// The bucket's sequence number.
    pub sequence: u64,
}

impl<'a> BucketValue<'a> {
    /// Decodes a bucket value. `offset` is the absolute file offset of
    /// `value[0]`, used in messages and for the inline page's offsets.
    pub fn decode(name: &[u8], value: &'a [u8], offset: u64) -> Result<BucketValue<'a>> {
        let err = |what: String| BoltError::BucketValue {
            name: {
                // A key may be huge: the message names its first bytes.
                let name = Clipped::new(name);
                format!("{}{}", String::from_utf8_lossy(&name), name.suffix())
            },
            what,
            offset,
        };
        let (head, inline) = value.split_at_checked(BUCKET_HEADER_SIZE).ok_or_else(|| {
            err(format!(
                "value of {} bytes is shorter than a bucket header",
                value.len()
            ))
        })?;
        let root = u64::from_le_bytes(head[0..8].try_into().unwrap_or([0; 8]));
        let sequence = u64::from_le_bytes(head[8..16].try_into().unwrap_or([0; 8]));
        if root != 0 {
            return Ok(BucketValue {
                root: BucketRoot::Page(root),
                sequence,
            });
        }
        let page = Page::new(0, inline, offset.saturating_add(BUCKET_HEADER_SIZE as u64))
            .map_err(|_| err("inline bucket too short for a page header".into()))?;
        if page.kind() != PageKind::Leaf {
            return Err(err(format!(
                "inline bucket page has type {}, not leaf",
                page.kind().go_name()
            )));
        }
        page.check_element_table().map_err(|_| {
            err(format!(
                "inline bucket count {} does not fit in the value",
                page.count()
            ))
        })?;
        Ok(BucketValue {
            root: BucketRoot::Inline(page),
            sequence,
        })
    }
}

/// A bucket of a [`Db`]: a B+tree of keys, values and nested buckets.
///
/// Safe to walk on unverified input: every read is bounds-checked, a
/// cursor stops at cycles in the page graph, and nested buckets opened
/// from one [`Db::root`] are bounded: at most [`MAX_NESTING`] levels deep,
/// and no bucket's root may be the root of a bucket opened by another path
/// (a cycle back to an ancestor, or two buckets sharing a tree), so a
/// recursive walk of every nested bucket opens each bucket once and ends.
#[derive(Debug, Clone)]
pub struct Bucket<'a> {
    db: Db<'a>,
    root: BucketRoot<'a>,
    sequence: u64,
    /// Buckets above this one.
    depth: usize,
    /// Every bucket opened in this walk, by root, with who opened it.
    opened: Arc<Opened>,
}

/// Where a bucket's tree is: its root page, or the file offset of an inline
/// bucket's page image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum RootAt {
    Page(u64),
    Inline(u64),
}

impl RootAt {
    fn of(root: &BucketRoot<'_>) -> RootAt {
        match root {
            BucketRoot::Page(id) => RootAt::Page(*id),
            BucketRoot::Inline(p) => RootAt::Inline(p.offset()),
        }
    }
}

/// Who opened a bucket: its parent's root (none for the first bucket) and
/// its name there.
type Opener = (Option<RootAt>, Vec<u8>);

/// The buckets opened from one root bucket, by root.
#[derive(Debug, Default)]
struct Opened {
    by_root: Mutex<HashMap<RootAt, Opener>>,
}

impl Opened {
    /// Records that `parent` opened `name` at `root`; false when `root` was
    /// opened by another parent or under another name.
    fn claim(&self, root: RootAt, parent: Option<RootAt>, name: &[u8]) -> bool {
        let mut map = self.by_root.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&root) {
            Some((p, n)) => *p == parent && n == name,
            None => {
                map.insert(root, (parent, name.to_vec()));
                true
            }
        }
    }
}

impl<'a> Bucket<'a> {
    pub(crate) fn from_root_page(db: Db<'a>, root: u64, sequence: u64) -> Bucket<'a> {
        Bucket::from_value(
            db,
            BucketValue {
                root: BucketRoot::Page(root),
                sequence,
            },
        )
    }

    /// A bucket from a decoded bucket value; buckets nested in it are
    /// bounded from here (see [`Bucket`]).
    pub(crate) fn from_value(db: Db<'a>, value: BucketValue<'a>) -> Bucket<'a> {
        let opened = Arc::new(Opened::default());
        opened.claim(RootAt::of(&value.root), None, b"");
        Bucket {
            db,
            root: value.root,
            sequence: value.sequence,
            depth: 0,
            opened,
        }
    }

    /// The database this bucket belongs to.
    pub fn db(&self) -> Db<'a> {
        self.db
    }

    /// The tree root.
    pub(crate) fn root(&self) -> BucketRoot<'a> {
        self.root
    }

    /// The bucket's sequence number.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// A cursor over the bucket's direct entries.
    pub fn cursor(&self) -> Cursor<'a> {
        Cursor::new(self.db, self.root)
    }

    /// Iterates the bucket's direct entries in key order (nested buckets
    /// appear as entries whose [`LeafElem::is_bucket`] is true). The
    /// iterator ends after the first error.
    pub fn iter(&self) -> Iter<'a> {
        Iter::new(self.cursor())
    }

    /// The entry with exactly this key, if any.
    pub fn entry(&self, key: &[u8]) -> Result<Option<LeafElem<'a>>> {
        let mut c = self.cursor();
        Ok(c.seek(key)?.filter(|e| e.key == key))
    }

    /// The value stored under `key`; `None` when absent or a nested bucket.
    pub fn get(&self, key: &[u8]) -> Result<Option<&'a [u8]>> {
        Ok(self.entry(key)?.filter(|e| !e.is_bucket()).map(|e| e.value))
    }

    /// The nested bucket named `name`, if there is one.
    ///
    /// An error when it would be nested deeper than [`MAX_NESTING`] levels,
    /// or when its root is the root of a bucket opened by another path from
    /// the same root bucket (a cycle, or a shared subtree), so that walking
    /// every nested bucket of a damaged file ends.
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Bucket<'a>>> {
        let Some(e) = self.entry(name)?.filter(|e| e.is_bucket()) else {
            return Ok(None);
        };
        let offset = value_offset(self.db, e.value);
        let shown = || String::from_utf8_lossy(name).into_owned();
        if self.depth >= MAX_NESTING {
            return Err(BoltError::BucketValue {
                name: shown(),
                what: format!("buckets nested deeper than {MAX_NESTING} levels"),
                offset,
            });
        }
        let v = BucketValue::decode(name, e.value, offset)?;
        let at = RootAt::of(&v.root);
        if !self.opened.claim(at, Some(RootAt::of(&self.root)), name) {
            let root = match at {
                RootAt::Page(id) => format!("root page {id}"),
                RootAt::Inline(off) => format!("inline page at byte offset {off}"),
            };
            return Err(BoltError::BucketValue {
                name: shown(),
                what: format!(
                    "its {root} is already the root of another bucket (a cycle or a shared subtree in the bucket tree)"
                ),
                offset,
            });
        }
        Ok(Some(Bucket {
            db: self.db,
            root: v.root,
            sequence: v.sequence,
            depth: self.depth + 1,
            opened: Arc::clone(&self.opened),
        }))
    }
}

/// Absolute file offset of a slice borrowed from the db's bytes (0 if it
/// is not).
pub(crate) fn value_offset(db: Db<'_>, s: &[u8]) -> u64 {
    let base = db.data().as_ptr() as usize;
    let p = s.as_ptr() as usize;
    if p >= base && p <= base.saturating_add(db.data().len()) {
        (p - base) as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bolt::tx::{self, BucketChanges, WriteOptions};

    /// Every bucket below `b`, depth first; the first error ends the walk.
    fn walk_all(b: &Bucket<'_>, seen: &mut usize) -> Result<()> {
        for e in b.iter() {
            let e = e?;
            if e.is_bucket() {
                *seen += 1;
                assert!(*seen < 1000, "the walk does not end");
                let child = b.bucket(e.key)?.expect("a bucket entry opens");
                walk_all(&child, seen)?;
            }
        }
        Ok(())
    }

    /// `a` (paged) holding paged buckets `b` and `c`.
    fn image() -> Vec<u8> {
        let mut img = tx::new_image(4096);
        let mut ch = BucketChanges::new();
        let a = ch.bucket(b"a".to_vec());
        for name in [&b"b"[..], b"c"] {
            let nested = a.bucket(name.to_vec());
            for i in 0..200u32 {
                nested.put(format!("key-{i:05}").into_bytes(), vec![1u8; 40]);
            }
        }
        let db = Db::open(&img).expect("open");
        tx::plan(db, &ch, WriteOptions::default())
            .expect("plan")
            .apply_to(&mut img);
        img
    }

    /// Sets the root page of bucket `a/name` to `root`.
    fn set_root(img: &mut [u8], name: &[u8], root: u64) {
        let db = Db::open(img).expect("open");
        let a = db.root().bucket(b"a").expect("read").expect("a");
        let e = a.entry(name).expect("read").expect("entry");
        let at = value_offset(db, e.value) as usize;
        img[at..at + 8].copy_from_slice(&root.to_le_bytes());
    }

    fn root_of(db: Db<'_>, path: &[&[u8]]) -> u64 {
        let mut b = db.root();
        for p in path {
            b = b.bucket(p).expect("read").expect("bucket");
        }
        match b.root() {
            BucketRoot::Page(id) => id,
            BucketRoot::Inline(_) => panic!("inline"),
        }
    }

    #[test]
    fn a_sound_tree_walks_and_buckets_reopen() {
        let img = image();
        let db = Db::open(&img).expect("open");
        let mut seen = 0;
        walk_all(&db.root(), &mut seen).expect("walk");
        assert_eq!(seen, 3);
        let a = db.root().bucket(b"a").expect("a").expect("a");
        assert!(a.bucket(b"b").expect("once").is_some());
        assert!(a.bucket(b"b").expect("twice").is_some());
    }

    #[test]
    fn a_nested_bucket_rooted_at_an_ancestor_ends_the_walk() {
        let mut img = image();
        let a_root = root_of(Db::open(&img).expect("open"), &[b"a"]);
        set_root(&mut img, b"b", a_root);
        let db = Db::open(&img).expect("open");
        let mut seen = 0;
        let err = walk_all(&db.root(), &mut seen).expect_err("a cycle");
        assert!(
            err.to_string().contains(&format!(
                "its root page {a_root} is already the root of another bucket"
            )),
            "{err}"
        );
    }

    #[test]
    fn two_buckets_sharing_a_tree_are_refused() {
        let mut img = image();
        let b_root = root_of(Db::open(&img).expect("open"), &[b"a", b"b"]);
        set_root(&mut img, b"c", b_root);
        let db = Db::open(&img).expect("open");
        let a = db.root().bucket(b"a").expect("a").expect("a");
        assert!(a.bucket(b"b").expect("b").is_some());
        assert!(a.bucket(b"c").is_err());
    }
}
