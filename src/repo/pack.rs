//! Pack files: immutable bundles of stored chunks, named by the BLAKE3 hash
//! of their bytes, written once and never changed.
//!
//! ```text
//! "ESNPACK1"                          8-byte magic
//! chunk blobs, back to back           as the chunk codec stored them
//! trailer                             one 49-byte entry per chunk (sealed
//!                                     in an encrypted repository):
//!                                     id[32] offset u64 stored_len u32
//!                                     raw_len u32 codec u8
//! footer (48 bytes)                   trailer_len u32, entry count u32,
//!                                     BLAKE3 of the trailer bytes [32],
//!                                     "ESNPEND1"
//! ```
//!
//! The trailer makes a pack self-describing: the index can be rebuilt from
//! the packs alone, and the footer's checksum lets `backup check` find a
//! damaged trailer without reading the chunks.

use std::io::Write;

use super::codec::{Dec, DecodeError, Enc, hex};
use super::crypto::Crypto;
use super::error::{RepoError, Result};
use crate::atomic_file::PartFile;

/// Leading magic of a pack.
pub(crate) const PACK_MAGIC: &[u8; 8] = b"ESNPACK1";
/// Magic at the very end of a pack.
pub(crate) const FOOTER_MAGIC: &[u8; 8] = b"ESNPEND1";
/// Length of the footer.
pub(crate) const FOOTER_LEN: usize = 48;
/// Length of one trailer entry.
pub(crate) const ENTRY_LEN: usize = 49;
/// A pack is closed once its chunks reach this size.
pub(crate) const TARGET_PACK_BYTES: usize = 32 << 20;
/// Associated data of a sealed trailer.
const TRAILER_AAD: &[u8] = b"pack trailer";

/// Where one chunk is in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PackEntry {
    /// The chunk ID.
    pub id: [u8; 32],
    /// Offset of the stored blob in the pack.
    pub offset: u64,
    /// Length of the stored blob.
    pub stored_len: u32,
    /// Length of the chunk's content.
    pub raw_len: u32,
    /// How it is stored (`chunk::CODEC_*`).
    pub codec: u8,
}

impl PackEntry {
    pub(crate) fn encode_into(&self, e: &mut Enc) {
        e.bytes(&self.id)
            .u64(self.offset)
            .u32(self.stored_len)
            .u32(self.raw_len)
            .u8(self.codec);
    }

    pub(crate) fn decode_from(d: &mut Dec<'_>) -> std::result::Result<PackEntry, DecodeError> {
        Ok(PackEntry {
            id: d.array("chunk id")?,
            offset: d.u64("offset")?,
            stored_len: d.u32("stored length")?,
            raw_len: d.u32("raw length")?,
            codec: d.u8("codec")?,
        })
    }
}

/// A finished pack, ready to be stored.
#[derive(Debug)]
pub(crate) struct Pack {
    /// BLAKE3 of its bytes: its name.
    pub name: [u8; 32],
    /// The whole file (empty when it was spooled to `file`).
    pub bytes: Vec<u8>,
    /// Its chunks, by offset.
    pub entries: Vec<PackEntry>,
    /// The temporary file holding it, and its length, when spooled
    /// ([`PackBuilder::spooled`]).
    pub file: Option<(PartFile, u64)>,
}

impl Pack {
    /// Its length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.file
            .as_ref()
            .map_or(self.bytes.len() as u64, |(_, len)| *len)
    }
}

/// Bytes a spooled pack gathers before writing them to its file.
const SPOOL_PIECE: usize = 1 << 20;

/// Where a spooled pack goes: a temporary file written a piece at a time
/// and hashed as it goes.
#[derive(Debug)]
struct Spool {
    part: PartFile,
    written: u64,
    hasher: blake3::Hasher,
    /// The first write that failed (reported by `finish`).
    error: Option<std::io::Error>,
}

/// Collects stored chunks into a pack.
#[derive(Debug)]
pub(crate) struct PackBuilder {
    /// The pack so far, or (spooled) what is not written to the file yet.
    buf: Vec<u8>,
    entries: Vec<PackEntry>,
    spool: Option<Spool>,
}

impl Default for PackBuilder {
    fn default() -> Self {
        PackBuilder::new()
    }
}

impl PackBuilder {
    pub(crate) fn new() -> PackBuilder {
        PackBuilder::reusing(Vec::with_capacity(TARGET_PACK_BYTES + (1 << 20)))
    }

    /// A builder filling `buf` (a finished pack's, cleared) again.
    pub(crate) fn reusing(mut buf: Vec<u8>) -> PackBuilder {
        buf.clear();
        buf.extend_from_slice(PACK_MAGIC);
        PackBuilder {
            buf,
            entries: Vec::new(),
            spool: None,
        }
    }

    /// A builder that writes the pack to `part` as it fills, holding a
    /// piece of it at a time rather than the whole pack (a push of a
    /// large snapshot held two whole packs, 66 MB).
    pub(crate) fn spooled(part: PartFile) -> PackBuilder {
        // Room for the piece and the usual chunk past it (a larger one
        // grows it).
        let mut buf = Vec::with_capacity(SPOOL_PIECE + (64 << 10));
        buf.extend_from_slice(PACK_MAGIC);
        PackBuilder {
            buf,
            entries: Vec::new(),
            spool: Some(Spool {
                part,
                written: 0,
                hasher: blake3::Hasher::new(),
                error: None,
            }),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of the pack so far.
    fn len(&self) -> u64 {
        self.spool.as_ref().map_or(0, |s| s.written) + self.buf.len() as u64
    }

    /// Whether the pack should be closed.
    pub(crate) fn is_full(&self) -> bool {
        self.len() >= TARGET_PACK_BYTES as u64
    }

    /// Appends one stored chunk.
    pub(crate) fn add(&mut self, id: [u8; 32], stored: &[u8], raw_len: u32, codec: u8) {
        self.entries.push(PackEntry {
            id,
            offset: self.len(),
            stored_len: stored.len() as u32,
            raw_len,
            codec,
        });
        self.buf.extend_from_slice(stored);
        if self.buf.len() >= SPOOL_PIECE {
            self.spill();
        }
    }

    /// Writes what is gathered to the spool's file (nothing when not
    /// spooled).
    fn spill(&mut self) {
        let Some(s) = &mut self.spool else { return };
        if s.error.is_none() {
            s.hasher.update(&self.buf);
            if let Err(e) = s.part.file().write_all(&self.buf) {
                s.error = Some(e);
            }
        }
        s.written += self.buf.len() as u64;
        self.buf.clear();
    }

    /// Appends the trailer and footer, and names the pack.
    pub(crate) fn finish(mut self, crypto: &Crypto) -> Result<Pack> {
        let mut e = Enc::with_capacity(self.entries.len() * ENTRY_LEN);
        for entry in &self.entries {
            entry.encode_into(&mut e);
        }
        let trailer = crypto.seal(e.finish(), TRAILER_AAD)?;
        let check = blake3::hash(&trailer);
        self.buf.extend_from_slice(&trailer);
        let mut f = Enc::with_capacity(FOOTER_LEN);
        f.u32(trailer.len() as u32)
            .u32(self.entries.len() as u32)
            .bytes(check.as_bytes())
            .bytes(FOOTER_MAGIC);
        self.buf.extend_from_slice(&f.finish());
        self.spill();
        if let Some(s) = self.spool {
            if let Some(e) = s.error {
                return Err(RepoError::io("write", s.part.part())(e));
            }
            return Ok(Pack {
                name: *s.hasher.finalize().as_bytes(),
                bytes: Vec::new(),
                entries: self.entries,
                file: Some((s.part, s.written)),
            });
        }
        Ok(Pack {
            name: *blake3::hash(&self.buf).as_bytes(),
            bytes: self.buf,
            entries: self.entries,
            file: None,
        })
    }
}

/// What the footer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    /// Where the trailer starts (= end of the chunk blobs).
    pub trailer_start: u64,
    /// Length of the trailer.
    pub trailer_len: u32,
    /// Number of entries.
    pub count: u32,
    /// BLAKE3 of the trailer.
    pub check: [u8; 32],
}

/// Parses the last [`FOOTER_LEN`] bytes of a pack of `pack_len` bytes.
pub(crate) fn parse_footer(footer: &[u8], pack_len: u64, what: &str) -> Result<Footer> {
    let dmg = |e: DecodeError| RepoError::damaged(what.to_string(), format!("footer {e}"));
    let mut d = Dec::new(footer);
    let trailer_len = d.u32("trailer length").map_err(dmg)?;
    let count = d.u32("entry count").map_err(dmg)?;
    let check = d.array::<32>("trailer checksum").map_err(dmg)?;
    d.magic(FOOTER_MAGIC, "footer magic").map_err(dmg)?;
    d.finish("footer").map_err(dmg)?;
    let fixed = (PACK_MAGIC.len() + FOOTER_LEN) as u64;
    let trailer_start = pack_len
        .checked_sub(FOOTER_LEN as u64)
        .and_then(|n| n.checked_sub(u64::from(trailer_len)))
        .filter(|&s| s >= PACK_MAGIC.len() as u64 && pack_len >= fixed)
        .ok_or_else(|| {
            RepoError::damaged(
                what.to_string(),
                format!("trailer of {trailer_len} bytes does not fit a {pack_len}-byte pack"),
            )
        })?;
    Ok(Footer {
        trailer_start,
        trailer_len,
        count,
        check,
    })
}

/// Checks, opens and decodes a trailer. Every entry must lie inside the
/// chunk area, in order, without overlap.
pub(crate) fn decode_trailer(
    crypto: &Crypto,
    footer: &Footer,
    stored: &[u8],
    what: &str,
) -> Result<Vec<PackEntry>> {
    if stored.len() != footer.trailer_len as usize {
        return Err(RepoError::damaged(what.to_string(), "trailer length"));
    }
    if blake3::hash(stored).as_bytes() != &footer.check {
        return Err(RepoError::damaged(
            what.to_string(),
            "trailer does not match its checksum",
        ));
    }
    let name = || what.to_string();
    let plain = crypto.open(stored, TRAILER_AAD, &name)?;
    let want = (footer.count as usize).checked_mul(ENTRY_LEN);
    if want != Some(plain.len()) {
        return Err(RepoError::damaged(
            what.to_string(),
            format!(
                "trailer holds {} bytes, {} entries need {}",
                plain.len(),
                footer.count,
                want.map_or("too many".into(), |w| w.to_string())
            ),
        ));
    }
    let mut d = Dec::new(&plain);
    let mut entries = Vec::with_capacity(footer.count as usize);
    let mut next = PACK_MAGIC.len() as u64;
    for i in 0..footer.count {
        let e = PackEntry::decode_from(&mut d)
            .map_err(|e| RepoError::damaged(what.to_string(), format!("trailer {e}")))?;
        let end = e.offset.checked_add(u64::from(e.stored_len));
        let bad = if e.offset < next {
            Some("overlaps the previous chunk")
        } else if end.is_none_or(|end| end > footer.trailer_start) {
            Some("runs past the chunk area")
        } else if e.raw_len > super::chunk::MAX_CHUNK {
            Some("is too long")
        } else if e.codec > super::chunk::CODEC_ZSTD {
            Some("has an unknown codec")
        } else {
            None
        };
        if let Some(bad) = bad {
            return Err(RepoError::damaged(
                what.to_string(),
                format!("trailer entry {i} (chunk {}) {bad}", hex(&e.id)),
            ));
        }
        next = end.unwrap_or(u64::MAX);
        entries.push(e);
    }
    Ok(entries)
}

/// Decodes a whole pack held in memory (for checks and repacking).
pub(crate) fn decode_pack(crypto: &Crypto, bytes: &[u8], what: &str) -> Result<Vec<PackEntry>> {
    let len = bytes.len();
    if !bytes.starts_with(PACK_MAGIC) {
        return Err(RepoError::damaged(what.to_string(), "bad pack magic"));
    }
    let footer_bytes = bytes
        .get(len.saturating_sub(FOOTER_LEN)..)
        .filter(|f| f.len() == FOOTER_LEN)
        .ok_or_else(|| RepoError::damaged(what.to_string(), "too short for a pack"))?;
    let footer = parse_footer(footer_bytes, len as u64, what)?;
    let start = footer.trailer_start as usize;
    let trailer = bytes
        .get(start..start.saturating_add(footer.trailer_len as usize))
        .unwrap_or_default();
    decode_trailer(crypto, &footer, trailer, what)
}

/// The blob of `e` in a pack held in memory.
pub(crate) fn blob<'a>(bytes: &'a [u8], e: &PackEntry) -> Option<&'a [u8]> {
    let start = usize::try_from(e.offset).ok()?;
    bytes.get(start..start.checked_add(e.stored_len as usize)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(crypto: &Crypto) -> Pack {
        let mut b = PackBuilder::new();
        b.add([1; 32], b"first", 4096, 1);
        b.add([2; 32], b"second blob", 4096, 0);
        b.finish(crypto).expect("finish")
    }

    #[test]
    fn trailer_round_trip() {
        let c = Crypto::plain();
        let p = sample(&c);
        assert_eq!(p.name, *blake3::hash(&p.bytes).as_bytes());
        let entries = decode_pack(&c, &p.bytes, "pack").expect("decode");
        assert_eq!(entries, p.entries);
        assert_eq!(blob(&p.bytes, &entries[1]), Some(&b"second blob"[..]));
    }

    #[test]
    fn any_flip_in_trailer_or_footer_is_caught() {
        let c = Crypto::plain();
        let p = sample(&c);
        let chunks_end = 8 + 5 + 11;
        for i in chunks_end..p.bytes.len() {
            let mut bad = p.bytes.clone();
            bad[i] ^= 0x01;
            assert!(decode_pack(&c, &bad, "pack").is_err(), "flip at {i}");
        }
        for n in 0..p.bytes.len() {
            assert!(
                decode_pack(&c, &p.bytes[..n], "pack").is_err(),
                "cut at {n}"
            );
        }
    }
}
