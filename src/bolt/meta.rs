//! The meta pages (pages 0 and 1): magic, version, page size, root bucket,
//! freelist, high-water mark, transaction id and FNV-1a checksum.

use super::page::PAGE_HEADER_SIZE;

/// bbolt's magic number.
pub const MAGIC: u32 = 0xED0C_DAED;
/// The only file format version bbolt has ever written.
pub const VERSION: u32 = 2;
/// `meta.freelist` value meaning "no freelist page" (NoFreelistSync).
pub const NO_FREELIST: u64 = u64::MAX;
/// Size of the meta body that follows the page header.
pub const META_SIZE: usize = 64;
/// Bytes of the meta body covered by the checksum.
const CHECKSUMMED: usize = 56;

/// Why a meta page was rejected.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[cfg_attr(test, derive(PartialEq, Eq))]
#[non_exhaustive]
pub enum MetaError {
    /// The file ends before the meta body.
    #[error("missing (file ends before the meta)")]
    Missing,
    /// Wrong magic number.
    #[error("invalid magic {0:#010x}")]
    Magic(u32),
    /// Wrong format version.
    #[error("version mismatch: {0}")]
    Version(u32),
    /// The stored checksum does not match the content.
    #[error("checksum error: stored {stored:#018x}, computed {computed:#018x}")]
    Checksum {
        /// Checksum in the file.
        stored: u64,
        /// Checksum of the content.
        computed: u64,
    },
}

/// A decoded meta page body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Magic number (valid: `0xED0CDAED`).
    pub magic: u32,
    /// Format version (valid: 2, the only one bbolt has written).
    pub version: u32,
    /// Page size in bytes.
    pub page_size: u32,
    /// Flags; bbolt ignores them.
    pub flags: u32,
    /// Page id of the root bucket's root page.
    pub root: u64,
    /// Sequence of the root bucket.
    pub sequence: u64,
    /// Page id of the freelist, or `u64::MAX` when it is not synced.
    pub freelist: u64,
    /// High-water mark: the first page id never allocated.
    pub pgid: u64,
    /// Id of the transaction that wrote this meta.
    pub txid: u64,
    /// FNV-1a-64 of the first 56 bytes of the body.
    pub checksum: u64,
}

/// 64-bit FNV-1a, the checksum bbolt uses for meta pages.
///
/// ```
/// assert_eq!(etcdsnap::internal::bolt::fnv1a64(b""), 0xcbf29ce484222325);
/// ```
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn u32_at(b: &[u8; META_SIZE], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8; META_SIZE], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

impl Meta {
    /// Decodes the meta body of the page that starts at `page[0]`, without
    /// validating it. `None` when `page` is too short to hold it.
    pub(crate) fn decode_page(page: &[u8]) -> Option<Meta> {
        let body: &[u8; META_SIZE] = page
            .get(PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + META_SIZE)?
            .try_into()
            .ok()?;
        Some(Meta::decode(body))
    }

    /// Decodes a 64-byte meta body without validating it.
    pub(crate) fn decode(b: &[u8; META_SIZE]) -> Meta {
        Meta {
            magic: u32_at(b, 0),
            version: u32_at(b, 4),
            page_size: u32_at(b, 8),
            flags: u32_at(b, 12),
            root: u64_at(b, 16),
            sequence: u64_at(b, 24),
            freelist: u64_at(b, 32),
            pgid: u64_at(b, 40),
            txid: u64_at(b, 48),
            checksum: u64_at(b, 56),
        }
    }

    /// Encodes the body; the checksum written is `self.checksum` as is.
    pub(crate) fn encode(&self) -> [u8; META_SIZE] {
        let mut b = [0u8; META_SIZE];
        b[0..4].copy_from_slice(&self.magic.to_le_bytes());
        b[4..8].copy_from_slice(&self.version.to_le_bytes());
        b[8..12].copy_from_slice(&self.page_size.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.root.to_le_bytes());
        b[24..32].copy_from_slice(&self.sequence.to_le_bytes());
        b[32..40].copy_from_slice(&self.freelist.to_le_bytes());
        b[40..48].copy_from_slice(&self.pgid.to_le_bytes());
        b[48..56].copy_from_slice(&self.txid.to_le_bytes());
        b[56..64].copy_from_slice(&self.checksum.to_le_bytes());
        b
    }

    /// The checksum this meta's content should carry.
    pub(crate) fn compute_checksum(&self) -> u64 {
        fnv1a64(&self.encode()[..CHECKSUMMED])
    }

    /// Validates magic, version and checksum as Go bbolt (v1.3.7 and later)
    /// does: a stored checksum of 0 is not accepted.
    pub(crate) fn validate(&self) -> Result<(), MetaError> {
        if self.magic != MAGIC {
            return Err(MetaError::Magic(self.magic));
        }
        if self.version != VERSION {
            return Err(MetaError::Version(self.version));
        }
        let computed = self.compute_checksum();
        if computed != self.checksum {
            return Err(MetaError::Checksum {
                stored: self.checksum,
                computed,
            });
        }
        Ok(())
    }

    /// Whether the freelist is stored in a page (false for NoFreelistSync).
    pub(crate) fn has_synced_freelist(&self) -> bool {
        self.freelist != NO_FREELIST
    }

    /// A full meta page image of `page_size` bytes for page `id`, with a
    /// fresh checksum.
    pub(crate) fn page_image(&self, id: u64, page_size: usize) -> Vec<u8> {
        let mut m = *self;
        m.checksum = m.compute_checksum();
        let mut page = vec![0u8; page_size.max(PAGE_HEADER_SIZE + META_SIZE)];
        page[0..8].copy_from_slice(&id.to_le_bytes());
        page[8..10].copy_from_slice(&super::page::FLAG_META.to_le_bytes());
        page[PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + META_SIZE].copy_from_slice(&m.encode());
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Meta {
        Meta {
            magic: MAGIC,
            version: VERSION,
            page_size: 4096,
            flags: 0,
            root: 3,
            sequence: 0,
            freelist: NO_FREELIST,
            pgid: 5,
            txid: 9,
            checksum: 0,
        }
    }

    #[test]
    fn page_image_round_trips_and_validates() {
        let img = sample().page_image(1, 4096);
        let m = Meta::decode_page(&img).expect("meta");
        assert_eq!(m.validate(), Ok(()));
        assert_eq!(m.root, 3);
        assert_eq!(&img[8..10], &[0x04, 0x00]);
    }

    #[test]
    fn rejects_zero_checksum_bad_magic_and_version() {
        let m = sample();
        assert!(matches!(m.validate(), Err(MetaError::Checksum { .. })));
        let mut bad = sample();
        bad.magic = 1;
        assert_eq!(bad.validate(), Err(MetaError::Magic(1)));
        let mut v = sample();
        v.version = 1;
        assert_eq!(v.validate(), Err(MetaError::Version(1)));
    }
}
