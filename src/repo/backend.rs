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
//!
//! For tests only: when the environment variable
//! `ETCDSNAP_TEST_CRASH_AFTER` holds a number N, the process sends itself
//! SIGKILL right after the N-th object written
//! or removed or index transaction committed, counted over the whole
//! process (see [`crash_point`]). The crash tests run every writing command
//! with N = 1, 2, ... to stop it after each durable step in turn. It is read
//! in this one place and has no other effect.

use std::io;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts durable steps for `ETCDSNAP_TEST_CRASH_AFTER` (see the module
/// documentation); aborts the process after the step it names. Called by
/// the backends after each write and removal, and by the index after each
/// commit.
pub(crate) fn crash_point() {
    static AFTER: OnceLock<Option<u64>> = OnceLock::new();
    static DONE: AtomicU64 = AtomicU64::new(0);
    let after = AFTER.get_or_init(|| {
        std::env::var("ETCDSNAP_TEST_CRASH_AFTER")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(n) = after
        && DONE.fetch_add(1, Ordering::SeqCst).saturating_add(1) == *n
    {
        // SIGKILL itself: nothing runs after this (abort would be the
        // same, but may leave a core file).
        let _ = signal_hook::low_level::raise(signal_hook::consts::SIGKILL);
        std::process::abort();
    }
}

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

    /// Stores the bytes of the local file `tmp` as object `key`, as
    /// [`write`](Self::write) stores bytes: for an object made a piece at
    /// a time that is not to be held in memory whole (a pack). `tmp` is a
    /// complete file in `tmp/` under [`index_dir`](Self::index_dir); a
    /// backend that keeps objects as files may move it into place (the
    /// caller removes it if it is still there).
    fn write_file(&self, key: &str, tmp: &std::path::Path) -> io::Result<()> {
        self.write(key, &std::fs::read(tmp)?)
    }

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

    /// Takes the repository lock as [`lock`](Self::lock) does with `wait`,
    /// telling `notice` (at once, then every minute while it waits) what it
    /// waits for: who holds the lock and until when. The default waits
    /// without a word.
    fn lock_waiting(
        &self,
        exclusive: bool,
        notice: &dyn Fn(&str),
    ) -> io::Result<Box<dyn LockGuard>> {
        let _ = notice;
        self.lock(exclusive, true)
    }

    /// Removes the locks of holders that are gone (`all`: every lock, also
    /// those of running commands) and says what it removed and what is
    /// still held. The default has nothing to remove.
    fn unlock(&self, all: bool) -> io::Result<UnlockReport> {
        let _ = all;
        Ok(UnlockReport::default())
    }
}

/// What [`Repository::unlock`](super::Repository::unlock) did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct UnlockReport {
    /// The locks removed, each described (name, holder, age).
    pub removed: Vec<String>,
    /// The locks still held by running commands, described likewise.
    pub held: Vec<String>,
    /// Why there is nothing a removal could do (a local repository, whose
    /// lock the kernel releases when its holder ends).
    pub note: Option<String>,
}

impl UnlockReport {
    /// A report with only a note.
    pub(crate) fn noted(note: impl Into<String>, held: Vec<String>) -> UnlockReport {
        UnlockReport {
            removed: Vec::new(),
            held,
            note: Some(note.into()),
        }
    }
}

/// How often a waiting lock taker says again what it waits for.
pub(crate) const NOTICE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// How long ago, in whole seconds, as `1h2m3s`.
pub(crate) fn ago(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
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
