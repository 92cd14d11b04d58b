//! Snapshot manifests: what one push stored, named by the hash of their
//! encoding (the snapshot ID) and kept as objects under `snapshots/` (and
//! copied into the index).
//!
//! ```text
//! "ESNSNAP1" time_ns i64 revision i64 size u64 page_size u32
//! chunk_size u32 chunk_count u64 list[32] sha256_file[32]
//! sha256_body[32] flags u8 (bit 0: has an etcd SHA-256 trailer)
//! new_bytes u64 source_len u16 source (UTF-8)
//! ```

use super::chunk::{MAX_CHUNK, MIN_CHUNK};
use super::codec::{Dec, DecResult, Enc};
use super::list::MAX_CHUNKS;

/// Leading magic of a manifest.
pub(crate) const MANIFEST_MAGIC: &[u8; 8] = b"ESNSNAP1";
/// Longest source description kept.
pub(crate) const MAX_SOURCE: usize = 4096;

/// One stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// When it was pushed: nanoseconds since the Unix epoch (UTC).
    pub time_ns: i64,
    /// The revision an etcd started on it is at (0 if it could not be
    /// read; earlier builds recorded the `key` bucket's newest entry, 0
    /// for an empty one): see [`Manifest::etcd_revision`].
    pub revision: i64,
    /// Length of the original file.
    pub size: u64,
    /// bbolt page size of its database.
    pub page_size: u32,
    /// Chunk length (the last chunk may be shorter).
    pub chunk_size: u32,
    /// Number of chunks.
    pub chunk_count: u64,
    /// ID of its chunk list.
    pub list: [u8; 32],
    /// SHA-256 of the whole original file.
    pub sha256_file: [u8; 32],
    /// SHA-256 of the bbolt image (what etcd's trailer holds).
    pub sha256_body: [u8; 32],
    /// Whether the file ends in etcd's SHA-256 trailer.
    pub has_trailer: bool,
    /// Bytes this push added to the repository (packs and list).
    pub new_bytes: u64,
    /// Where it was pushed from.
    pub source: String,
}

/// Chunks in a file of `size` bytes cut every `chunk_size` bytes.
pub(crate) fn chunks_for(size: u64, chunk_size: u32) -> u64 {
    size.div_ceil(u64::from(chunk_size.max(1)))
}

impl Manifest {
    /// The revision the snapshot is at: the one recorded, at least 1 (an
    /// etcd store starts at revision 1). Earlier builds recorded the `key`
    /// bucket's newest entry, 0 for a store that never changed.
    pub(crate) fn etcd_revision(&self) -> i64 {
        self.revision.max(1)
    }

    /// The canonical encoding.
    pub(crate) fn encode(&self) -> Vec<u8> {
        // Cut a long source at a character boundary: decode requires UTF-8.
        let mut cut = self.source.len().min(MAX_SOURCE);
        while !self.source.is_char_boundary(cut) {
            cut -= 1;
        }
        let src = self.source.get(..cut).unwrap_or_default().as_bytes();
        let mut e = Enc::with_capacity(200 + src.len());
        e.bytes(MANIFEST_MAGIC)
            .i64(self.time_ns)
            .i64(self.revision)
            .u64(self.size)
            .u32(self.page_size)
            .u32(self.chunk_size)
            .u64(self.chunk_count)
            .bytes(&self.list)
            .bytes(&self.sha256_file)
            .bytes(&self.sha256_body)
            .u8(u8::from(self.has_trailer))
            .u64(self.new_bytes)
            .u16(src.len() as u16)
            .bytes(src);
        e.finish()
    }

    /// Decodes and validates a manifest.
    pub(crate) fn decode(b: &[u8]) -> DecResult<Manifest> {
        let mut d = Dec::new(b);
        d.magic(MANIFEST_MAGIC, "manifest magic")?;
        let m = Manifest {
            time_ns: d.i64("time")?,
            revision: d.i64("revision")?,
            size: d.u64("size")?,
            page_size: d.u32("page size")?,
            chunk_size: d.u32("chunk size")?,
            chunk_count: d.u64("chunk count")?,
            list: d.array("list id")?,
            sha256_file: d.array("file SHA-256")?,
            sha256_body: d.array("body SHA-256")?,
            has_trailer: match d.u8("flags")? {
                0 => false,
                1 => true,
                f => return d.err(format!("unknown flags {f:#x}")),
            },
            new_bytes: d.u64("new bytes")?,
            source: {
                let n = d.u16("source length")? as usize;
                if n > MAX_SOURCE {
                    return d.err("source too long");
                }
                match std::str::from_utf8(d.bytes(n, "source")?) {
                    Ok(s) => s.to_owned(),
                    Err(_) => return d.err("source is not UTF-8"),
                }
            },
        };
        d.finish("manifest")?;
        if !(MIN_CHUNK..=MAX_CHUNK).contains(&m.chunk_size) || !m.chunk_size.is_power_of_two() {
            return d.err(format!("chunk size {}", m.chunk_size));
        }
        if m.chunk_count > MAX_CHUNKS || m.chunk_count != chunks_for(m.size, m.chunk_size) {
            return d.err(format!(
                "{} chunks of {} bytes cannot make {} bytes",
                m.chunk_count, m.chunk_size, m.size
            ));
        }
        if m.has_trailer != crate::snapshot::has_trailer(m.size) {
            return d.err("trailer flag contradicts the size");
        }
        Ok(m)
    }
}

#[cfg(test)]
pub(crate) fn sample() -> Manifest {
    Manifest {
        time_ns: 1_700_000_000_123_456_789,
        revision: 42,
        size: 20480 + 32,
        page_size: 4096,
        chunk_size: 4096,
        chunk_count: 6,
        list: [3; 32],
        sha256_file: [4; 32],
        sha256_body: [5; 32],
        has_trailer: true,
        new_bytes: 1234,
        source: "/backups/snap.db".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_source_is_cut_at_a_character_boundary() {
        let mut m = sample();
        // "é" is two bytes: after one ASCII byte the byte limit falls inside one.
        m.source = format!("x{}", "é".repeat(MAX_SOURCE));
        let back = Manifest::decode(&m.encode()).expect("still UTF-8");
        assert!(back.source.len() <= MAX_SOURCE && back.source.len() > MAX_SOURCE - 2);
        assert!(m.source.starts_with(&back.source));
    }

    #[test]
    fn round_trip_and_validation() {
        let m = sample();
        assert_eq!(Manifest::decode(&m.encode()), Ok(m.clone()));
        let mut bad = m.clone();
        bad.chunk_count = 5;
        assert!(Manifest::decode(&bad.encode()).is_err());
        let mut bad = m.clone();
        bad.has_trailer = false;
        assert!(Manifest::decode(&bad.encode()).is_err());
        let mut enc = m.encode();
        enc.push(0);
        assert!(Manifest::decode(&enc).is_err());
    }
}
