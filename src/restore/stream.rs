//! Restoring from a snapshot that is not a local file: a reader yields the
//! file's bytes (a download, a backup repository reconstructing pages), and
//! the restore writes them straight into the first member's staged db,
//! hashing as they pass, instead of needing a local copy first.
//!
//! What a reader is checked against:
//! * etcd's SHA-256 trailer at the end of the stream, as for a file (and
//!   `--skip-hash-check` as for a file);
//! * the SHA-256 the source itself vouches for, when it knows one (a
//!   repository records it at push time): always checked, and it stands in
//!   for a missing trailer.
//!
//! After that the staged db is checked (structure, etcd records) and edited
//! exactly as when restoring from a file; nothing is published unless every
//! check passed.

use std::fs::File;
use std::io::{self, BufRead};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc::{channel, sync_channel};

use sha2::{Digest, Sha256};

use super::error::RestoreError;
use crate::progress::{Phase, Progress};
use crate::snapshot::file::{TRAILER_LEN, has_trailer};

/// Bytes handed to the writer thread at a time.
const BLOCK: usize = 4 << 20;
/// Bytes written between `fdatasync`s (as the file copy path does).
const SYNC_EVERY: u64 = 64 << 20;

/// A snapshot read from a stream, for [`restore_from_reader`](crate::restore_from_reader).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use etcdsnap::{RestoreOptions, SnapshotReader, restore_from_reader};
/// let bytes = std::fs::read("testdata/snapshots/small-v35.db")?;
/// let dir = tempfile::tempdir()?;
/// let mut opts = RestoreOptions::new("(stream)");
/// opts.data_dir = Some(dir.path().join("m1.etcd"));
/// let mut body = &bytes[..];
/// let source = SnapshotReader::new(&mut body, "an in-memory copy");
/// let summary = restore_from_reader(&opts, source, &|_| {})?;
/// assert!(summary.hash_verified);
/// # Ok(()) }
/// ```
#[non_exhaustive]
pub struct SnapshotReader<'a> {
    /// Yields the snapshot file's bytes from the start, trailer included
    /// (wrap a plain `Read` in a `BufReader`; the restore writes straight
    /// from the reader's buffer).
    pub reader: &'a mut dyn BufRead,
    /// Names the source in errors (a URL, `REPO snapshot ID`).
    pub name: String,
    /// Its length, when known (for progress reports).
    pub len: Option<u64>,
    /// The SHA-256 the body (the bbolt image, without the trailer) must
    /// have, when the source knows it.
    pub body_sha256: Option<[u8; 32]>,
}

impl std::fmt::Debug for SnapshotReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotReader")
            .field("name", &self.name)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<'a> SnapshotReader<'a> {
    /// A reader named `name`, of unknown length, with no digest of its own.
    pub fn new(reader: &'a mut dyn BufRead, name: impl Into<String>) -> SnapshotReader<'a> {
        SnapshotReader {
            reader,
            name: name.into(),
            len: None,
            body_sha256: None,
        }
    }
}

/// Reads the whole stream into `dst` (at offset 0), keeping etcd's trailer
/// out of it, and checks the digests. Returns whether a digest (trailer or
/// the source's own) was verified.
pub(crate) fn receive(
    src: SnapshotReader<'_>,
    dst: &File,
    dst_path: &Path,
    skip_hash_check: bool,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<bool, RestoreError> {
    let SnapshotReader {
        reader,
        name,
        len,
        body_sha256,
    } = src;
    let read_err = |source: io::Error| RestoreError::Read {
        name: name.clone(),
        source,
    };
    let write_err = RestoreError::io;
    let mut h = Sha256::new();
    // The last 32 bytes seen are not hashed yet: they may be the trailer.
    let mut held: Vec<u8> = Vec::with_capacity(TRAILER_LEN);
    let mut total = 0u64;
    // A writer thread writes (and flushes) full blocks while this one
    // reads and hashes the next: writing into the page cache costs as much
    // as hashing, and the two overlap on two cores. Blocks are recycled.
    let written = std::thread::scope(|s| -> Result<(), RestoreError> {
        let (to_writer, blocks) = sync_channel::<(u64, Vec<u8>)>(2);
        let (pool_tx, pool) = channel::<Vec<u8>>();
        let writer = s.spawn(move || -> Result<(), RestoreError> {
            let mut synced = 0u64;
            for (off, block) in blocks {
                dst.write_all_at(&block, off)
                    .map_err(write_err("write", dst_path))?;
                let end = off + block.len() as u64;
                if end - synced >= SYNC_EVERY {
                    dst.sync_data().map_err(write_err("fsync", dst_path))?;
                    synced = end;
                }
                let _ = pool_tx.send(block);
            }
            Ok(())
        });
        let mut block: Vec<u8> = Vec::with_capacity(BLOCK);
        let mut block_at = 0u64;
        let read = loop {
            let got = match reader.fill_buf() {
                Ok([]) => break Ok(()),
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(read_err(e)),
            };
            let n = got.len();
            block.extend_from_slice(got);
            total += n as u64;
            // Hash everything but the newest 32 bytes.
            if n >= TRAILER_LEN {
                let (now, later) = got.split_at(n - TRAILER_LEN);
                h.update(&held);
                h.update(now);
                held.clear();
                held.extend_from_slice(later);
            } else {
                held.extend_from_slice(got);
                let keep_from = held.len().saturating_sub(TRAILER_LEN);
                h.update(held.get(..keep_from).unwrap_or_default());
                held.drain(..keep_from);
            }
            reader.consume(n);
            if block.len() >= BLOCK {
                let next = pool
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(BLOCK));
                let full = std::mem::replace(&mut block, next);
                let len = full.len() as u64;
                if to_writer.send((block_at, full)).is_err() {
                    break Ok(()); // the writer failed: its error is below
                }
                block_at += len;
                block.clear();
            }
            progress(Progress::new(Phase::Copy, total, len.unwrap_or(total)));
        };
        if read.is_ok() && !block.is_empty() {
            let _ = to_writer.send((block_at, block));
        }
        drop(to_writer);
        let wrote = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        read.and(wrote)
    });
    written?;
    let trailer: Option<[u8; 32]> = if has_trailer(total) {
        held.as_slice().try_into().ok()
    } else {
        h.update(&held);
        None
    };
    let computed: [u8; 32] = h.finalize().into();
    if let Some(expected) = body_sha256
        && expected != computed
    {
        return Err(RestoreError::SourceHashMismatch {
            name,
            expected,
            computed,
        });
    }
    match trailer {
        Some(stored) => {
            if !skip_hash_check && stored != computed {
                return Err(RestoreError::HashMismatch { stored, computed });
            }
            dst.set_len(total - TRAILER_LEN as u64)
                .map_err(write_err("truncate", dst_path))?;
        }
        None if body_sha256.is_none() && !skip_hash_check => return Err(RestoreError::MissingHash),
        None => {}
    }
    dst.sync_data().map_err(write_err("fsync", dst_path))?;
    Ok(body_sha256.is_some() || (trailer.is_some() && !skip_hash_check))
}
