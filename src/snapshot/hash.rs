//! The SHA-256 trailer: streaming verification.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use sha2::{Digest, Sha256};

use super::file::SnapshotFile;

/// Bytes read per `pread` while hashing: small enough that the buffer stays
/// in the L2 cache between the kernel's copy and the hash, and below
/// malloc's mmap threshold so it is not a fresh mapping (both cost a third
/// of the throughput with a 4 MiB buffer).
const CHUNK: usize = 96 << 10;
/// Bytes hashed between progress reports.
const REPORT_EVERY: u64 = 64 << 20;

/// Outcome of the trailer check.
#[derive(Debug, Clone)]
pub enum HashCheck {
    /// The trailer matches the SHA-256 of the body.
    Verified([u8; 32]),
    /// The trailer does not match.
    Mismatch {
        /// Digest stored in the file.
        stored: [u8; 32],
        /// Digest of the body.
        computed: [u8; 32],
    },
    /// The file has no trailer (a raw `member/snap/db` copy, or truncated).
    Missing,
    /// Not checked (`--skip-hash-check`).
    Skipped,
}

impl HashCheck {
    /// Compares a stored digest with a computed one.
    pub(crate) fn compare(stored: [u8; 32], computed: [u8; 32]) -> HashCheck {
        if stored == computed {
            HashCheck::Verified(computed)
        } else {
            HashCheck::Mismatch { stored, computed }
        }
    }

    /// Whether this outcome lets the snapshot be used.
    pub fn is_ok(&self) -> bool {
        matches!(self, HashCheck::Verified(_) | HashCheck::Skipped)
    }
}

/// Lower-case hex of a digest.
pub fn hex(d: &[u8]) -> String {
    crate::go::hex::encode(d)
}

/// SHA-256 of the body of `file`: the digest computed when it was streamed
/// in, if there is one, else read with [`sha256_prefix`].
pub fn body_sha256(file: &SnapshotFile, progress: &dyn Fn(u64)) -> io::Result<[u8; 32]> {
    match file.body_digest() {
        Some(d) => {
            progress(file.body_len());
            Ok(d)
        }
        None => sha256_prefix(file.file(), file.body_len(), progress),
    }
}

/// SHA-256 of the first `len` bytes of `file`, read sequentially with
/// `pread` (no memory map, so the resident set stays at one buffer).
/// `progress` is told the number of bytes hashed so far.
pub fn sha256_prefix(file: &File, len: u64, progress: &dyn Fn(u64)) -> io::Result<[u8; 32]> {
    sha256_split(file, len, len, progress).map(|(_, whole)| whole)
}

/// SHA-256 of the first `split` bytes of `file` and of its first `len`
/// bytes, in one read (a body and the whole file with its trailer); when
/// `split` is not below `len` both are the digest of `len` bytes.
pub fn sha256_split(
    file: &File,
    split: u64,
    len: u64,
    progress: &dyn Fn(u64),
) -> io::Result<([u8; 32], [u8; 32])> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK)).max(1)];
    let mut off = 0u64;
    let mut first = None;
    while off < len {
        if off == split {
            first = Some(h.clone().finalize().into());
        }
        // Stop a read at `split`, to take the digest there.
        let end = if off < split { split.min(len) } else { len };
        let want = usize::try_from(end - off)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let chunk = buf.get_mut(..want).unwrap_or_default();
        file.read_exact_at(chunk, off)?;
        h.update(&*chunk);
        let before = off;
        off += want as u64;
        if off / REPORT_EVERY != before / REPORT_EVERY || off == len {
            progress(off);
        }
    }
    let whole: [u8; 32] = h.finalize().into();
    Ok((first.unwrap_or(whole), whole))
}
