//! A snapshot file on disk: regular-file check, shared lock, memory map and
//! the SHA-256 trailer `etcdctl snapshot save` appends.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::error::SnapshotError;
use crate::bolt::Db;
use crate::mmap::Mapped;

/// Length of the SHA-256 trailer.
pub const TRAILER_LEN: usize = 32;

/// etcd's rule for "this file ends in a SHA-256 trailer": a bbolt image is a
/// whole number of pages, so its length is never 32 modulo 512.
///
/// ```
/// assert!(etcdsnap::has_trailer(20480 + 32));
/// assert!(!etcdsnap::has_trailer(20480));
/// ```
pub fn has_trailer(len: u64) -> bool {
    len % 512 == TRAILER_LEN as u64
}

/// An open, mapped snapshot file.
#[derive(Debug)]
pub struct SnapshotFile {
    path: PathBuf,
    file: File,
    len: u64,
    /// Modification time when opened (nanoseconds since the epoch).
    mtime: Option<i128>,
    map: Mapped,
    /// SHA-256 of the body, when it was computed as the bytes arrived (a
    /// snapshot streamed from a location): verify and restore then compare
    /// the trailer with it instead of reading the file again.
    body_digest: Option<[u8; 32]>,
}

fn mtime_of(m: &std::fs::Metadata) -> Option<i128> {
    use std::os::unix::fs::MetadataExt;
    Some(i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()))
}

fn kind_of(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "directory"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

impl SnapshotFile {
    /// Opens and maps `path`. Only regular files are accepted (a directory,
    /// FIFO or `/dev/zero` is refused at once); a shared lock is taken so a
    /// running etcd's db is refused rather than read while it changes.
    pub fn open(path: impl AsRef<Path>) -> Result<SnapshotFile, SnapshotError> {
        let path = path.as_ref().to_path_buf();
        let io = |op, source| SnapshotError::Io {
            op,
            path: path.clone(),
            source,
        };
        let meta = std::fs::metadata(&path).map_err(|e| io("stat", e))?;
        if !meta.is_file() {
            return Err(SnapshotError::NotRegular {
                path,
                kind: kind_of(meta.file_type()),
            });
        }
        let file = File::open(&path).map_err(|e| io("open", e))?;
        SnapshotFile::from_file(file, path)
    }

    /// Takes an open regular file (say an unnamed temporary file a download
    /// was written into), shown as `name` in reports and errors. The same
    /// shared lock is taken as by [`open`](Self::open).
    pub fn from_file(file: File, name: impl Into<PathBuf>) -> Result<SnapshotFile, SnapshotError> {
        let path = name.into();
        let io = |op, source| SnapshotError::Io {
            op,
            path: path.clone(),
            source,
        };
        match file.try_lock_shared() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(SnapshotError::Locked { path }),
            Err(std::fs::TryLockError::Error(e)) => return Err(io("lock", e)),
        }
        let meta = file.metadata().map_err(|e| io("stat", e))?;
        let len = meta.len();
        let map = Mapped::new(&file, len).map_err(|e| io("mmap", e))?;
        Ok(SnapshotFile {
            path,
            file,
            len,
            mtime: mtime_of(&meta),
            map,
            body_digest: None,
        })
    }

    /// Whether the file changed since it was opened: a read of the map hit
    /// a part that was cut off (those bytes read as zeros), or its length or
    /// modification time is not what it was. Everything read from a changed
    /// file is suspect.
    pub fn changed(&self) -> Option<SnapshotError> {
        let now = self.file.metadata().ok();
        let now_len = now.as_ref().map(std::fs::Metadata::len);
        let moved = now
            .as_ref()
            .is_none_or(|m| m.len() != self.len || mtime_of(m) != self.mtime);
        (self.map.faulted() || moved).then(|| SnapshotError::Changed {
            path: self.path.clone(),
            was: self.len,
            now: now_len,
        })
    }

    /// Records the SHA-256 of the body, computed while the bytes were
    /// written (see [`stream_into`](super::stream::stream_into)); it must
    /// be the digest of exactly [`body`](Self::body).
    pub fn with_body_digest(mut self, digest: [u8; 32]) -> SnapshotFile {
        self.body_digest = Some(digest);
        self
    }

    /// The SHA-256 of the body, if it is already known.
    pub fn body_digest(&self) -> Option<[u8; 32]> {
        self.body_digest
    }

    /// The path it was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Length of the file in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        self.map.bytes()
    }

    /// The stored SHA-256 digest, when the length says there is one.
    pub fn trailer(&self) -> Option<[u8; 32]> {
        if !has_trailer(self.len) {
            return None;
        }
        let b = self.bytes();
        b.get(b.len().saturating_sub(TRAILER_LEN)..)?
            .try_into()
            .ok()
    }

    /// The bbolt image: the file without its trailer, if it has one.
    pub fn body(&self) -> &[u8] {
        let b = self.bytes();
        if has_trailer(self.len) {
            b.get(..b.len().saturating_sub(TRAILER_LEN)).unwrap_or(&[])
        } else {
            b
        }
    }

    /// Length of [`body`](Self::body).
    pub fn body_len(&self) -> u64 {
        self.body().len() as u64
    }

    /// The bbolt database in the body.
    pub fn db(&self) -> Result<Db<'_>, SnapshotError> {
        Db::open(self.body()).map_err(|source| SnapshotError::Bolt {
            path: self.path.clone(),
            source,
        })
    }

    /// `meta/storageVersion`, parsed as etcd parses it (see
    /// [`Snapshot::storage_version`](super::Snapshot::storage_version)).
    pub fn storage_version(&self) -> Result<Option<String>, SnapshotError> {
        use crate::etcd::{buckets, meta};
        let bolt = |source| SnapshotError::Bolt {
            path: self.path.clone(),
            source,
        };
        let db = self.db()?;
        let Some(m) = db.root().bucket(buckets::META).map_err(bolt)? else {
            return Ok(None);
        };
        Ok(m.get(meta::STORAGE_VERSION)
            .map_err(bolt)?
            .and_then(meta::storage_version))
    }

    /// The release `choice` names for this file: `auto` follows its
    /// storage version (3.5's rules when it has none, or when its meta
    /// bucket cannot be read: the walk that follows says what is wrong).
    pub fn resolve_target(
        &self,
        choice: crate::etcd::version::TargetChoice,
    ) -> Result<crate::etcd::TargetVersion, crate::etcd::version::UnknownVersion> {
        let storage = if choice.is_auto() {
            self.storage_version().ok().flatten()
        } else {
            None
        };
        choice.resolve(storage.as_deref())
    }

    pub(crate) fn map(&self) -> &Mapped {
        &self.map
    }
}
