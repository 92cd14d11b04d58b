//! A read-only bbolt database over a byte slice: meta selection and page
//! access.

use super::bucket::Bucket;
use super::error::{BoltError, Result};
use super::meta::{Meta, MetaError};
use super::page::{Page, PageHeader, PageKind};

/// Smallest page size accepted.
pub const MIN_PAGE_SIZE: u32 = 512;
/// Largest page size accepted (the largest Go probes for meta 1).
pub const MAX_PAGE_SIZE: u32 = 16 << 20;

/// A bbolt database image, read without copying.
///
/// `Db` is a small `Copy` value: it borrows the bytes and records the page
/// size and the active meta. Every page access is bounds-checked against the
/// length of the bytes (never against what the meta claims).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let bytes = std::fs::read("testdata/snapshots/small-v35.member.db")?;
/// let db = etcdsnap::bolt::Db::open(&bytes)?;
/// assert_eq!(db.page_size(), 4096);
/// let key = db.root().bucket(b"key")?.expect("etcd has a key bucket");
/// let mut n = 0;
/// for entry in key.iter() {
///     entry?;
///     n += 1;
/// }
/// assert_eq!(n, 5);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Db<'a> {
    data: &'a [u8],
    page_size: u32,
    meta: Meta,
    active: u8,
    metas: [std::result::Result<Meta, MetaError>; 2],
}

impl<'a> Db<'a> {
    /// Opens the image in `data` (without any snapshot trailer).
    ///
    /// Follows Go bbolt v1.3.7+: the page size comes from meta 0 when it is
    /// valid, otherwise from the first valid meta found at 1 KiB << i; meta
    /// 1 is read at that page size; then the valid meta with the higher
    /// txid wins (meta 0 on a tie), falling back to the other. Like Go, the
    /// page size the active meta declares is not used to read the file: a
    /// meta that disagrees is reported by the check
    /// ([`ProblemKind::MetaPageSize`](super::check::ProblemKind::MetaPageSize)).
    pub fn open(data: &'a [u8]) -> Result<Db<'a>> {
        let len = data.len() as u64;
        let meta0 = read_meta(data, 0);
        let (page_size, from) = match meta0 {
            Ok(m) => (m.page_size, 0),
            Err(e0) => probe_meta1(data).ok_or(match e0 {
                MetaError::Missing => BoltError::TooSmall { len },
                _ => BoltError::NoValidMeta {
                    meta0: e0,
                    meta1: probe_error(data),
                },
            })?,
        };
        if !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(BoltError::PageSize {
                size: page_size,
                offset: from,
            });
        }
        if len < 2 * u64::from(page_size) {
            return Err(BoltError::FileSizeTooSmall { len, page_size });
        }
        let meta1 = read_meta(data, page_size as usize);
        let metas = [meta0, meta1];
        let (active, meta) = choose(&metas).ok_or(BoltError::NoValidMeta {
            meta0: meta0.err().unwrap_or(MetaError::Missing),
            meta1: meta1.err().unwrap_or(MetaError::Missing),
        })?;
        Ok(Db {
            data,
            page_size,
            meta,
            active,
            metas,
        })
    }

    /// The bytes of the image.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The page size.
    pub fn page_size(&self) -> u32 {
        self.page_size
    }

    /// The active meta.
    pub(crate) fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Which meta page (0 or 1) is active.
    pub(crate) fn active_meta_page(&self) -> u8 {
        self.active
    }

    /// Both meta pages as decoded and validated.
    pub(crate) fn metas(&self) -> &[std::result::Result<Meta, MetaError>; 2] {
        &self.metas
    }

    /// The high-water mark of the active meta.
    pub fn hwm(&self) -> u64 {
        self.meta.pgid
    }

    /// `hwm * page_size`: the size etcd reports and the length of a snapshot
    /// body (saturating on absurd metas).
    pub fn size(&self) -> u64 {
        self.meta.pgid.saturating_mul(u64::from(self.page_size))
    }

    /// Number of whole pages the bytes hold.
    pub(crate) fn file_pages(&self) -> u64 {
        self.data.len() as u64 / u64::from(self.page_size)
    }

    /// The root bucket (whose keys are the top-level buckets).
    pub fn root(&self) -> Bucket<'a> {
        Bucket::from_root_page(*self, self.meta.root, self.meta.sequence)
    }

    /// Page `id` with its overflow span, checked the strict way: below the
    /// high-water mark, inside the file, header id equal to `id`.
    pub(crate) fn page(&self, id: u64) -> Result<Page<'a>> {
        let hwm = self.hwm();
        if id >= hwm {
            return Err(BoltError::OutOfBounds { id, hwm });
        }
        let page = self.raw_page(id)?;
        let found = page.header().id;
        if found != id {
            return Err(BoltError::PageIdMismatch {
                id,
                found,
                offset: page.offset(),
            });
        }
        let end = id.checked_add(u64::from(page.header().overflow));
        if end.is_none_or(|e| e >= hwm) {
            return Err(BoltError::OutOfBounds {
                id: end.unwrap_or(u64::MAX),
                hwm,
            });
        }
        Ok(page)
    }

    /// Page `id` with its overflow span, checked only against the file
    /// length (for tools that inspect damaged files).
    pub(crate) fn raw_page(&self, id: u64) -> Result<Page<'a>> {
        let pages = self.file_pages();
        let ps = u64::from(self.page_size);
        let beyond = BoltError::PageBeyondEof { id, pages };
        if id >= pages {
            return Err(beyond);
        }
        let start = id * ps; // id < pages, so this is < data.len()
        let first = self
            .data
            .get(start as usize..(start + ps) as usize)
            .ok_or(beyond.clone())?;
        let header = PageHeader::decode(first).ok_or(beyond.clone())?;
        let span = u64::from(header.overflow)
            .checked_add(1)
            .and_then(|n| n.checked_mul(ps));
        let bytes = span
            .and_then(|s| start.checked_add(s))
            .and_then(|end| self.data.get(start as usize..usize::try_from(end).ok()?));
        let bytes = bytes.ok_or(BoltError::OverflowBeyondEof {
            id,
            overflow: header.overflow,
            pages,
        })?;
        Page::new(id, bytes, start)
    }

    /// Page `id`, required to be a branch or a leaf.
    pub(crate) fn node_page(&self, id: u64) -> Result<Page<'a>> {
        let p = self.page(id)?;
        match p.kind() {
            PageKind::Branch | PageKind::Leaf => Ok(p),
            other => Err(BoltError::PageType {
                id,
                found: other.go_name(),
                expected: "branch or leaf",
                offset: p.offset(),
            }),
        }
    }
}

fn read_meta(data: &[u8], offset: usize) -> std::result::Result<Meta, MetaError> {
    let m = data
        .get(offset..)
        .and_then(Meta::decode_page)
        .ok_or(MetaError::Missing)?;
    m.validate().map(|()| m)
}

/// Go's fallback when meta 0 is invalid: the first valid meta at 1 KiB << i
/// (i up to 14, while more than 1 KiB of the file follows) gives the page
/// size it declares, and where it was found.
fn probe_meta1(data: &[u8]) -> Option<(u32, u64)> {
    (0..15u32)
        .map(|i| 1024usize << i)
        .take_while(|&off| off.saturating_add(1024) < data.len())
        .find_map(|off| read_meta(data, off).ok().map(|m| (m.page_size, off as u64)))
}

fn probe_error(data: &[u8]) -> MetaError {
    // Report what is at 4 KiB, the usual place of meta 1.
    read_meta(data, 4096).err().unwrap_or(MetaError::Missing)
}

fn choose(metas: &[std::result::Result<Meta, MetaError>; 2]) -> Option<(u8, Meta)> {
    match (metas[0], metas[1]) {
        (Ok(a), Ok(b)) => Some(if b.txid > a.txid { (1, b) } else { (0, a) }),
        (Ok(a), Err(_)) => Some((0, a)),
        (Err(_), Ok(b)) => Some((1, b)),
        (Err(_), Err(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bolt::check::{ProblemKind, check};
    use crate::bolt::tx::new_image;

    /// Rewrites meta page `page` of a 4 KiB-page image with `f` and a fresh
    /// checksum.
    fn edit_meta(img: &mut [u8], page: usize, f: impl FnOnce(&mut Meta)) {
        let at = page * 4096;
        let mut m = Meta::decode_page(&img[at..]).expect("meta");
        f(&mut m);
        img[at..at + 4096].copy_from_slice(&m.page_image(page as u64, 4096));
    }

    #[test]
    fn a_newer_meta_declaring_another_page_size_is_used_with_meta_0s_size() {
        let mut img = new_image(4096);
        edit_meta(&mut img, 1, |m| {
            m.page_size = 8192;
            m.txid = 5;
        });
        let db = Db::open(&img).expect("Go opens it, so do we");
        assert_eq!((db.page_size(), db.active_meta_page()), (4096, 1));
        let report = check(db);
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert_eq!(
            report.problems[0].kind,
            ProblemKind::MetaPageSize {
                declared: 8192,
                used: 4096,
                txid: 5
            }
        );
        assert!(report.problems[0].to_string().starts_with(
            "page 1: the meta page in use (txid 5) declares page size 8192, but bbolt reads the file with page size 4096"
        ));
    }

    #[test]
    fn without_meta_0_the_first_valid_meta_found_gives_the_page_size() {
        let mut img = new_image(4096);
        img[16] ^= 0xff; // meta 0's magic
        let db = Db::open(&img).expect("open from meta 1");
        assert_eq!((db.page_size(), db.active_meta_page()), (4096, 1));
        // Go takes the size the meta declares, not where it was found.
        edit_meta(&mut img, 1, |m| m.page_size = 1 << 30);
        let err = Db::open(&img).expect_err("2^30 is no page size");
        assert_eq!(
            err.to_string(),
            "unsupported page size 1073741824 in the meta page at byte offset 4096 (a power of two from 512 to 16 MiB is expected)"
        );
    }
}
