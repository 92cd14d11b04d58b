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
use std::io::BufRead;
use std::path::Path;

use super::error::RestoreError;
use super::source::check_streamed;
use crate::progress::{Phase, Progress};
use crate::snapshot::SnapshotFile;
use crate::snapshot::stream::{StreamError, stream_into};

/// A snapshot read from a stream ([`RestoreSource::Reader`](crate::RestoreSource::Reader)).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use etcdsnap::{RestoreOptions, SnapshotReader, restore};
/// let bytes = std::fs::read("testdata/snapshots/small-v35.db")?;
/// let dir = tempfile::tempdir()?;
/// let opts = RestoreOptions::default().with_data_dir(dir.path().join("m1.etcd"));
/// let mut body = &bytes[..];
/// let source = SnapshotReader::new(&mut body, "an in-memory copy");
/// let summary = restore(source, &opts, &|_| {})?;
/// assert!(summary.hash_verified);
/// # Ok(()) }
/// ```
#[non_exhaustive]
pub struct SnapshotReader<'a> {
    /// Yields the snapshot file's bytes from the start, trailer included
    /// (wrap a plain `Read` in a `BufReader`; the restore reads it in
    /// 1 MiB requests).
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

    /// Its length, for progress reports.
    pub fn with_len(mut self, len: u64) -> Self {
        self.len = Some(len);
        self
    }

    /// The SHA-256 the body (without the trailer) must have.
    pub fn with_body_sha256(mut self, digest: [u8; 32]) -> Self {
        self.body_sha256 = Some(digest);
        self
    }
}

/// Reads the whole stream into `dst` (the first member's empty, staged
/// db, at offset 0), hashing as it goes, and checks it there
/// ([`check_streamed`]). Returns the db, opened as the snapshot named by
/// the reader, and whether a digest (trailer or the source's own) was
/// verified.
pub(crate) fn receive(
    src: SnapshotReader<'_>,
    dst: &File,
    dst_path: &Path,
    skip_hash_check: bool,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(SnapshotFile, bool), RestoreError> {
    let SnapshotReader {
        mut reader,
        name,
        len,
        body_sha256,
    } = src;
    let streamed = stream_into(&mut reader, dst, true, &|done| {
        progress(Progress::new(Phase::Copy, done, len.unwrap_or(done)));
    })
    .map_err(|e| match e {
        StreamError::Read(source) => RestoreError::Read {
            name: name.clone(),
            source,
        },
        StreamError::Write(e) => RestoreError::io("write", dst_path)(e),
        StreamError::Sync(e) => RestoreError::io("fsync", dst_path)(e),
    })?;
    check_streamed(
        &streamed,
        body_sha256,
        &name,
        dst,
        dst_path,
        skip_hash_check,
    )
}
