//! The freelist page (only present when the freelist is synced, i.e. the
//! file was not written with NoFreelistSync).

use super::db::Db;
use super::error::{BoltError, Result};
use super::page::{FLAG_FREELIST, PAGE_HEADER_SIZE, PageHeader, PageKind};

/// The `count` value that means "the real count is in the first u64".
const COUNT_ESCAPE: u16 = 0xFFFF;

/// A decoded freelist page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freelist {
    /// The freelist's page id.
    pub page: u64,
    /// Overflow pages of the freelist page.
    pub overflow: u32,
    /// The free page ids, as stored.
    pub ids: Vec<u64>,
}

/// Reads the freelist named by the active meta; `Ok(None)` for a file
/// written with NoFreelistSync.
pub fn read(db: &Db<'_>) -> Result<Option<Freelist>> {
    let id = db.meta().freelist;
    if !db.meta().has_synced_freelist() {
        return Ok(None);
    }
    let page = db.page(id)?;
    if page.kind() != PageKind::Freelist {
        return Err(BoltError::PageType {
            id,
            found: page.kind().go_name(),
            expected: "freelist",
            offset: page.offset(),
        });
    }
    let data = page.data();
    let err = |what: String| BoltError::Freelist { id, what };
    let (n, start) = if page.header().count == COUNT_ESCAPE {
        let raw = data
            .get(PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + 8)
            .ok_or_else(|| err("escaped count runs past the page".into()))?;
        let n = u64::from_le_bytes(raw.try_into().map_err(|_| err("short count".into()))?);
        (n, PAGE_HEADER_SIZE + 8)
    } else {
        (u64::from(page.header().count), PAGE_HEADER_SIZE)
    };
    let room = (data.len().saturating_sub(start) / 8) as u64;
    if n > room {
        return Err(err(format!(
            "{n} ids do not fit in a span of {} bytes",
            data.len()
        )));
    }
    // n <= room, which is bounded by the page span: no untrusted allocation.
    let ids = data
        .get(start..)
        .unwrap_or(&[])
        .as_chunks::<8>()
        .0
        .iter()
        .take(n as usize)
        .map(|c| u64::from_le_bytes(*c))
        .collect();
    Ok(Some(Freelist {
        page: id,
        overflow: page.header().overflow,
        ids,
    }))
}

/// Encodes a freelist page image for page `id` holding `ids` (sorted by the
/// caller), padded to whole pages of `page_size`, as Go writes it.
pub fn encode(id: u64, ids: &[u64], page_size: usize) -> Vec<u8> {
    let escaped = ids.len() >= usize::from(COUNT_ESCAPE);
    let body = 8 * (ids.len() + usize::from(escaped));
    let pages = (PAGE_HEADER_SIZE + body) / page_size + 1;
    let mut buf = vec![0u8; pages * page_size];
    let header = PageHeader {
        id,
        flags: FLAG_FREELIST,
        count: if escaped {
            COUNT_ESCAPE
        } else {
            ids.len() as u16
        },
        overflow: (pages - 1) as u32,
    };
    buf[..PAGE_HEADER_SIZE].copy_from_slice(&header.encode());
    let mut off = PAGE_HEADER_SIZE;
    if escaped {
        buf[off..off + 8].copy_from_slice(&(ids.len() as u64).to_le_bytes());
        off += 8;
    }
    for &i in ids {
        buf[off..off + 8].copy_from_slice(&i.to_le_bytes());
        off += 8;
    }
    buf
}

/// Number of pages [`encode`] uses for `n` ids.
pub fn pages_for(n: usize, page_size: usize) -> usize {
    let escaped = n >= usize::from(COUNT_ESCAPE);
    (PAGE_HEADER_SIZE + 8 * (n + usize::from(escaped))) / page_size + 1
}
