//! Where a repository keeps its objects: a small trait, so that object
//! storage can sit beside the local directory.
//!
//! Objects are immutable and named by their hash (packs, lists, manifests),
//! plus one `config`. A backend must make a written object appear whole or
//! not at all (a temporary name and a rename, or a single PUT), which is
//! what makes an interrupted or concurrent push harmless. Locks: pushes
//! hold the repository lock shared, prune and garbage collection hold it
//! exclusively. The redb index is a local file (in the repository for a
//! local directory).

use std::io;
use std::path::PathBuf;

/// Object storage for a repository.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// The repository's location, for messages.
    fn location(&self) -> String;

    /// Reads a whole object of at most `max` bytes; a longer one is an
    /// error (`InvalidData`), so that a damaged or foreign object never
    /// sizes an allocation beyond what its kind can hold.
    fn read(&self, key: &str, max: u64) -> io::Result<Vec<u8>>;

    /// Fills `buf` with the bytes at `offset` of an object (running past
    /// its end is an error).
    fn read_at(&self, key: &str, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Stores an object atomically and durably, replacing one of the same
    /// name (names are hashes of contents, so a replacement is identical).
    fn write(&self, key: &str, data: &[u8]) -> io::Result<()>;

    /// The local file holding an object, if the backend keeps objects as
    /// files (lets readers map packs instead of copying them).
    fn local_path(&self, key: &str) -> Option<std::path::PathBuf> {
        let _ = key;
        None
    }

    /// The objects whose keys start with `prefix`, with their sizes.
    fn list(&self, prefix: &str) -> io::Result<Vec<(String, u64)>>;

    /// Removes an object (absent is not an error).
    fn remove(&self, key: &str) -> io::Result<()>;

    /// The directory that holds the local index (`index.redb`).
    fn index_dir(&self) -> PathBuf;

    /// Whether the index is only this machine's cache of a repository kept
    /// elsewhere (object storage): then a missing one is made again from
    /// the objects instead of being an error.
    fn index_is_cache(&self) -> bool {
        false
    }

    /// Takes the repository lock: `exclusive` for prune and garbage
    /// collection, shared for pushes. Waits when `wait` is set, otherwise
    /// fails at once with [`io::ErrorKind::WouldBlock`] if it is held. The
    /// lock is released when the guard is dropped.
    fn lock(&self, exclusive: bool, wait: bool) -> io::Result<Box<dyn LockGuard>>;
}

/// A held repository lock.
pub trait LockGuard: Send + std::fmt::Debug {}

impl LockGuard for std::fs::File {}

/// Object keys.
pub(crate) mod keys {
    use super::super::codec::hex;

    pub(crate) const CONFIG: &str = "config";
    pub(crate) const PACKS: &str = "packs/";
    pub(crate) const LISTS: &str = "lists/";
    pub(crate) const SNAPSHOTS: &str = "snapshots/";

    /// `packs/ab/abcd...` (fanned out by the first byte).
    pub(crate) fn pack(name: &[u8; 32]) -> String {
        let h = hex(name);
        format!("{PACKS}{}/{h}", h.get(..2).unwrap_or("00"))
    }
    pub(crate) fn list(id: &[u8; 32]) -> String {
        format!("{LISTS}{}", hex(id))
    }
    pub(crate) fn snapshot(id: &[u8; 32]) -> String {
        format!("{SNAPSHOTS}{}", hex(id))
    }

    /// Whether `key` is one a backend may store: `/`-separated parts,
    /// none empty, `.` or `..`, each of `[A-Za-z0-9_-]` only (so that it
    /// is a safe relative path, and the same key in every backend).
    pub(crate) fn valid(key: &str) -> bool {
        !key.is_empty()
            && key.split('/').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    }

    /// The hash a key under `prefix` names, if it is well formed.
    pub(crate) fn parse(prefix: &str, key: &str) -> Option<[u8; 32]> {
        let rest = key.strip_prefix(prefix)?;
        let name = if prefix == PACKS {
            let (dir, name) = rest.split_once('/')?;
            if name.get(..2) != Some(dir) {
                return None;
            }
            name
        } else {
            rest
        };
        super::super::codec::parse_hex32(name)
    }
}
