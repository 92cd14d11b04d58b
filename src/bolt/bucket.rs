//! Buckets: the 16-byte bucket header, inline buckets, and lookups.

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
            name: String::from_utf8_lossy(name).into_owned(),
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
#[derive(Debug, Clone, Copy)]
pub struct Bucket<'a> {
    db: Db<'a>,
    root: BucketRoot<'a>,
    sequence: u64,
}

impl<'a> Bucket<'a> {
    pub(crate) fn from_root_page(db: Db<'a>, root: u64, sequence: u64) -> Bucket<'a> {
        Bucket {
            db,
            root: BucketRoot::Page(root),
            sequence,
        }
    }

    /// A bucket from a decoded bucket value.
    pub fn from_value(db: Db<'a>, value: BucketValue<'a>) -> Bucket<'a> {
        Bucket {
            db,
            root: value.root,
            sequence: value.sequence,
        }
    }

    /// The database this bucket belongs to.
    pub fn db(&self) -> Db<'a> {
        self.db
    }

    /// The tree root.
    pub fn root(&self) -> BucketRoot<'a> {
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
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Bucket<'a>>> {
        let Some(e) = self.entry(name)?.filter(|e| e.is_bucket()) else {
            return Ok(None);
        };
        let offset = value_offset(self.db, e.value);
        let v = BucketValue::decode(name, e.value, offset)?;
        Ok(Some(Bucket::from_value(self.db, v)))
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
