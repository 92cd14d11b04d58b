//! Pages: the 16-byte header, page types, and the branch and leaf elements.
//!
//! A [`Page`] is a bounds-checked view of one logical page (its header page
//! plus any overflow pages), or of an inline bucket's page image. Every
//! element accessor checks its offsets against that span before slicing.

use super::error::{BoltError, Result};

/// Size of the page header.
pub const PAGE_HEADER_SIZE: usize = 16;
/// Size of a branch or leaf element header.
pub const ELEMENT_SIZE: usize = 16;
/// Page flag: branch page.
pub const FLAG_BRANCH: u16 = 0x01;
/// Page flag: leaf page.
pub const FLAG_LEAF: u16 = 0x02;
/// Page flag: meta page.
pub const FLAG_META: u16 = 0x04;
/// Page flag: freelist page.
pub const FLAG_FREELIST: u16 = 0x10;
/// Leaf element flag: the value is a nested bucket.
pub const LEAF_FLAG_BUCKET: u32 = 0x01;

/// The type of a page, decided the strict way (bbolt v1.3.7 and later):
/// the flags must be exactly one of the four values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    /// Interior node of a B+tree.
    Branch,
    /// Leaf node of a B+tree.
    Leaf,
    /// Meta page.
    Meta,
    /// Freelist page.
    Freelist,
    /// Anything else (zeroed pages, garbage).
    Unknown(u16),
}

impl PageKind {
    /// The kind for a header's flags.
    pub(crate) fn from_flags(flags: u16) -> PageKind {
        match flags {
            FLAG_BRANCH => PageKind::Branch,
            FLAG_LEAF => PageKind::Leaf,
            FLAG_META => PageKind::Meta,
            FLAG_FREELIST => PageKind::Freelist,
            other => PageKind::Unknown(other),
        }
    }

    /// The name Go's bbolt prints for this type (`unknown<xx>` for others).
    pub(crate) fn go_name(self) -> String {
        match self {
            PageKind::Branch => "branch".into(),
            PageKind::Leaf => "leaf".into(),
            PageKind::Meta => "meta".into(),
            PageKind::Freelist => "freelist".into(),
            PageKind::Unknown(f) => format!("unknown<{f:02x}>"),
        }
    }
}

/// The decoded 16-byte page header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageHeader {
    /// The id the page claims to have.
    pub id: u64,
    /// Type flags.
    pub flags: u16,
    /// Number of elements (or freelist ids, with the 0xFFFF escape).
    pub count: u16,
    /// Number of additional contiguous pages.
    pub overflow: u32,
}

impl PageHeader {
    /// Decodes a header from the first 16 bytes of `b`.
    pub fn decode(b: &[u8]) -> Option<PageHeader> {
        Some(PageHeader {
            id: u64::from_le_bytes(b.get(0..8)?.try_into().ok()?),
            flags: u16::from_le_bytes(b.get(8..10)?.try_into().ok()?),
            count: u16::from_le_bytes(b.get(10..12)?.try_into().ok()?),
            overflow: u32::from_le_bytes(b.get(12..16)?.try_into().ok()?),
        })
    }

    /// Encodes the header.
    pub fn encode(&self) -> [u8; PAGE_HEADER_SIZE] {
        let mut b = [0u8; PAGE_HEADER_SIZE];
        b[0..8].copy_from_slice(&self.id.to_le_bytes());
        b[8..10].copy_from_slice(&self.flags.to_le_bytes());
        b[10..12].copy_from_slice(&self.count.to_le_bytes());
        b[12..16].copy_from_slice(&self.overflow.to_le_bytes());
        b
    }

    /// The page's kind.
    pub fn kind(&self) -> PageKind {
        PageKind::from_flags(self.flags)
    }
}

/// One element of a branch page: a separator key and a child page id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BranchElem<'a> {
    /// Lower bound of the child's keys.
    pub key: &'a [u8],
    /// The child page id.
    pub child: u64,
}

/// One element of a leaf page.
#[derive(Debug, Clone, Copy)]
pub struct LeafElem<'a> {
    /// Element flags (bit 0x01: the value is a bucket, see
    /// [`is_bucket`](Self::is_bucket)).
    pub flags: u32,
    /// The key.
    pub key: &'a [u8],
    /// The value (for a bucket: its header and maybe an inline page).
    pub value: &'a [u8],
}

impl LeafElem<'_> {
    /// Whether the value is a nested bucket.
    pub fn is_bucket(&self) -> bool {
        self.flags & LEAF_FLAG_BUCKET != 0
    }
}

/// A bounds-checked view of one logical page.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    id: u64,
    header: PageHeader,
    data: &'a [u8],
    offset: u64,
}

impl<'a> Page<'a> {
    /// Wraps `data` (the page's whole span, header included) as page `id`;
    /// `offset` is the absolute file offset of `data[0]` (for messages).
    /// Fails when `data` cannot hold a header.
    pub fn new(id: u64, data: &'a [u8], offset: u64) -> Result<Page<'a>> {
        let header = PageHeader::decode(data).ok_or(BoltError::Element {
            id,
            index: 0,
            what: format!(
                "page span of {} bytes cannot hold a page header",
                data.len()
            ),
            offset,
        })?;
        Ok(Page {
            id,
            header,
            data,
            offset,
        })
    }

    /// The id this page was read as (0 for inline pages).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The decoded header.
    pub fn header(&self) -> PageHeader {
        self.header
    }

    /// The page type.
    pub fn kind(&self) -> PageKind {
        self.header.kind()
    }

    /// The element count from the header.
    pub fn count(&self) -> usize {
        usize::from(self.header.count)
    }

    /// The whole span, header included.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Absolute file offset of the page header.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Checks that the element table (`count` 16-byte headers) fits in the
    /// span. Element accessors check this too; callers that iterate use it
    /// to fail once with a clear message.
    pub(crate) fn check_element_table(&self) -> Result<()> {
        let need = self
            .count()
            .checked_mul(ELEMENT_SIZE)
            .and_then(|n| n.checked_add(PAGE_HEADER_SIZE));
        match need {
            Some(n) if n <= self.data.len() => Ok(()),
            _ => Err(BoltError::Element {
                id: self.id,
                index: self.count(),
                what: format!(
                    "count {} does not fit in a page span of {} bytes",
                    self.count(),
                    self.data.len()
                ),
                offset: self.offset,
            }),
        }
    }

    fn elem_header(&self, index: usize) -> Result<(usize, &'a [u8; ELEMENT_SIZE])> {
        let start = index
            .checked_mul(ELEMENT_SIZE)
            .and_then(|n| n.checked_add(PAGE_HEADER_SIZE));
        let header = start.and_then(|s| {
            let end = s.checked_add(ELEMENT_SIZE)?;
            self.data.get(s..end)?.try_into().ok().map(|h| (s, h))
        });
        header.ok_or_else(|| BoltError::Element {
            id: self.id,
            index,
            what: "element header runs past the end of the page".into(),
            offset: self.offset,
        })
    }

    fn elem_err(&self, index: usize, start: usize, what: String) -> BoltError {
        BoltError::Element {
            id: self.id,
            index,
            what,
            offset: self.offset.saturating_add(start as u64),
        }
    }

    /// Element `index` of a branch page.
    pub fn branch(&self, index: usize) -> Result<BranchElem<'a>> {
        let (start, h) = self.elem_header(index)?;
        let pos = le_u32(&h[0..4]);
        let ksize = le_u32(&h[4..8]);
        let child = u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
        let key = self.slice_at(start, pos, ksize).ok_or_else(|| {
            self.elem_err(
                index,
                start,
                format!("key (pos {pos}, ksize {ksize}) runs past the end of the page"),
            )
        })?;
        Ok(BranchElem { key, child })
    }

    /// Element `index` of a leaf page.
    pub fn leaf(&self, index: usize) -> Result<LeafElem<'a>> {
        let (start, h) = self.elem_header(index)?;
        let flags = le_u32(&h[0..4]);
        let pos = le_u32(&h[4..8]);
        let ksize = le_u32(&h[8..12]);
        let vsize = le_u32(&h[12..16]);
        let both = self.slice_at(start, pos, ksize.saturating_add(vsize));
        let kv = match both {
            Some(kv) if ksize.checked_add(vsize).is_some() => kv,
            _ => {
                return Err(self.elem_err(
                    index,
                    start,
                    format!(
                        "key/value (pos {pos}, ksize {ksize}, vsize {vsize}) runs past the end of the page"
                    ),
                ));
            }
        };
        let (key, value) = kv.split_at(ksize as usize);
        Ok(LeafElem { flags, key, value })
    }

    /// `len` bytes at `elem_start + pos`, if they lie inside the span.
    fn slice_at(&self, elem_start: usize, pos: u32, len: u32) -> Option<&'a [u8]> {
        let s = elem_start.checked_add(usize::try_from(pos).ok()?)?;
        let e = s.checked_add(usize::try_from(len).ok()?)?;
        self.data.get(s..e)
    }
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    u32::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf_page(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut p = PageHeader {
            id: 7,
            flags: FLAG_LEAF,
            count: entries.len() as u16,
            overflow: 0,
        }
        .encode()
        .to_vec();
        let mut data = Vec::new();
        let base = PAGE_HEADER_SIZE + ELEMENT_SIZE * entries.len();
        for (i, (k, v)) in entries.iter().enumerate() {
            let pos = base + data.len() - (PAGE_HEADER_SIZE + ELEMENT_SIZE * i);
            p.extend_from_slice(&0u32.to_le_bytes());
            p.extend_from_slice(&(pos as u32).to_le_bytes());
            p.extend_from_slice(&(k.len() as u32).to_le_bytes());
            p.extend_from_slice(&(v.len() as u32).to_le_bytes());
            data.extend_from_slice(k);
            data.extend_from_slice(v);
        }
        p.extend_from_slice(&data);
        p
    }

    #[test]
    fn reads_leaf_elements() {
        let img = leaf_page(&[(b"a", b"1"), (b"bb", b"")]);
        let p = Page::new(7, &img, 0).expect("page");
        assert_eq!(p.kind(), PageKind::Leaf);
        p.check_element_table().expect("table");
        let e = p.leaf(1).expect("elem");
        assert_eq!((e.key, e.value), (&b"bb"[..], &b""[..]));
        assert!(p.leaf(2).is_err());
    }

    #[test]
    fn rejects_elements_outside_the_span() {
        let mut img = leaf_page(&[(b"a", b"1")]);
        // vsize = u32::MAX
        img[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
        let p = Page::new(7, &img, 4096).expect("page");
        let err = p.leaf(0).expect_err("must fail");
        assert!(err.to_string().contains("runs past the end"), "{err}");
        // pos = u32::MAX with ksize = u32::MAX must not overflow
        img[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        img[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
        let p = Page::new(7, &img, 0).expect("page");
        assert!(p.leaf(0).is_err());
    }

    #[test]
    fn count_that_does_not_fit_is_reported() {
        let mut img = leaf_page(&[(b"a", b"1")]);
        img[10..12].copy_from_slice(&0xffffu16.to_le_bytes());
        let p = Page::new(7, &img, 0).expect("page");
        assert!(p.check_element_table().is_err());
    }
}
