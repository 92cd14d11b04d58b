//! Opening a repository, and what it holds: snapshot IDs and summaries.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::backend::{Backend, LockGuard, keys};
use super::codec::hex;
use super::config::{Config, MAX_CONFIG};
use super::crypto::{Crypto, MasterKey};
use super::error::{RepoError, Result};
use super::index::{Index, Open, SyncReport};
use super::local::LocalBackend;
use super::manifest::Manifest;
use crate::location::LocationOptions;

/// A snapshot's ID: the hash of its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SnapshotId(pub [u8; 32]);

impl SnapshotId {
    /// The first 8 hex digits, as `backup ls` shows it.
    pub fn short(&self) -> String {
        hex(self.0.get(..4).unwrap_or_default())
    }
}

impl std::fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

/// One stored snapshot, as `backup ls` lists it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SnapshotInfo {
    /// Its ID.
    pub id: SnapshotId,
    /// When it was pushed (or the time the push was given, see
    /// [`PushOptions::with_time`](super::PushOptions::with_time)).
    pub time: SystemTime,
    /// The revision an etcd started on it is at (what its response
    /// headers say, and what a chain of recorded changes follows): the
    /// `key` bucket's newest entry (what `snapshot status` reports), 1 for
    /// a store that never changed, raised to a compaction that removed
    /// the newest entries. 1 if it could not be read.
    pub revision: i64,
    /// Length of the original file, trailer included.
    pub size: u64,
    /// bbolt page size of its database.
    pub page_size: u32,
    /// Number of chunks.
    pub chunks: u64,
    /// SHA-256 of the whole original file (what `backup cat` reproduces).
    pub sha256: [u8; 32],
    /// Whether the file ends in etcd's SHA-256 trailer.
    pub has_trailer: bool,
    /// Bytes this push added to the repository.
    pub new_bytes: u64,
    /// Where it was pushed from.
    pub source: String,
}

impl SnapshotInfo {
    pub(crate) fn from_manifest(id: [u8; 32], m: &Manifest) -> SnapshotInfo {
        SnapshotInfo {
            id: SnapshotId(id),
            time: super::deltas::from_ns(m.time_ns).unwrap_or(UNIX_EPOCH),
            revision: m.etcd_revision(),
            size: m.size,
            page_size: m.page_size,
            chunks: m.chunk_count,
            sha256: m.sha256_file,
            has_trailer: m.has_trailer,
            new_bytes: m.new_bytes,
            source: m.source.clone(),
        }
    }
}

/// A backup repository: packs of deduplicated chunks, chunk lists and
/// snapshot manifests in a directory or object storage, with a redb index
/// beside them.
///
/// Every call blocks the calling thread until done; on a repository in
/// object storage that includes its requests, which may also be made
/// from async code (see [blocking calls and async code](crate#blocking-calls-and-async-code)).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use etcdsnap::repo::{PushOptions, Repository};
/// let dir = tempfile::tempdir()?;
/// let repo = Repository::init_dir(dir.path().join("backups"), None)?;
/// let pushed = repo.push("testdata/snapshots/k8s-v35.db".as_ref(), &PushOptions::default())?;
/// let again = repo.push("testdata/snapshots/k8s-v35.db".as_ref(), &PushOptions::default())?;
/// assert!(again.info.new_bytes < pushed.info.new_bytes / 10);
/// let mut bytes = Vec::new();
/// repo.cat(&pushed.info.id.to_string(), &mut bytes)?;
/// assert_eq!(bytes, std::fs::read("testdata/snapshots/k8s-v35.db")?);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Repository {
    pub(crate) backend: Box<dyn Backend>,
    pub(crate) crypto: Crypto,
    pub(crate) config: Config,
    /// Told what a command waits for while the lock is held elsewhere.
    pub(crate) lock_notice: super::lock::Notice,
    /// Pack trailers read so far, for every snapshot reassembled.
    pub(crate) trailers: super::trailers::Trailers,
}

impl Repository {
    /// Creates a repository in `backend`, encrypted with `key` if given.
    /// Refuses a location that already holds a repository. (Object
    /// storage's way in; a directory is prepared by `init_dir` first.)
    #[cfg(feature = "remote")]
    pub(crate) fn init(backend: Box<dyn Backend>, key: Option<&MasterKey>) -> Result<Repository> {
        refuse_repository(backend.as_ref())?;
        Repository::create(backend, key)
    }

    /// A new repository in `backend`, once the refusals are passed.
    fn create(backend: Box<dyn Backend>, key: Option<&MasterKey>) -> Result<Repository> {
        let here = PathBuf::from(backend.location());
        let config = Config::new(key)?;
        let crypto = config.crypto(key)?;
        let index = Index::open(&backend.index_dir(), Open::Create, &crypto)?;
        drop(index);
        backend
            .write(keys::CONFIG, &config.encode())
            .map_err(RepoError::io("write", here.join(keys::CONFIG)))?;
        Ok(Repository {
            backend,
            crypto,
            config,
            lock_notice: super::lock::Notice::default(),
            trailers: super::trailers::Trailers::default(),
        })
    }

    /// Creates a repository in a local directory (created if missing; an
    /// existing one must be empty), encrypted with `key` if given.
    pub fn init_dir(dir: impl AsRef<Path>, key: Option<&MasterKey>) -> Result<Repository> {
        let dir = dir.as_ref();
        refuse_dir(dir)?;
        let local = LocalBackend::new(dir);
        refuse_repository(&local)?;
        local
            .create_layout()
            .map_err(RepoError::io("create", dir))?;
        Repository::create(Box::new(local), key)
    }

    /// [`init_at`](Self::init_at) of a repository encrypted with a new
    /// random key, written to `key_file` (which must not exist, mode
    /// 0600). The key file is made only after the location passed every
    /// check that refuses an init, and removed again if the init fails
    /// after all: a refused init leaves no key behind that opens nothing.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use etcdsnap::repo::Repository;
    /// let dir = tempfile::tempdir()?;
    /// let (repo, key) = (dir.path().join("repo"), dir.path().join("repo.key"));
    /// assert!(Repository::init_at_with_new_key(repo.to_str().unwrap(), &key)?.is_encrypted());
    /// let again = dir.path().join("again.key");
    /// assert!(Repository::init_at_with_new_key(repo.to_str().unwrap(), &again).is_err());
    /// assert!(!again.exists());
    /// # Ok(()) }
    /// ```
    pub fn init_at_with_new_key(location: &str, key_file: &Path) -> Result<Repository> {
        let (backend, dir): (Box<dyn Backend>, Option<PathBuf>) =
            match at(location, &LocationOptions::default())? {
                At::Dir(d) => {
                    refuse_dir(&d)?;
                    (Box::new(LocalBackend::new(&d)), Some(d))
                }
                #[cfg(feature = "remote")]
                At::Remote(b) => (b, None),
            };
        refuse_repository(backend.as_ref())?;
        let key = MasterKey::generate(key_file)?;
        let made = dir
            .map_or(Ok(()), |d| {
                LocalBackend::new(&d)
                    .create_layout()
                    .map_err(RepoError::io("create", d))
            })
            .and_then(|()| Repository::create(backend, Some(&key)));
        if made.is_err() {
            let _ = std::fs::remove_file(key_file);
        }
        made
    }

    /// Opens the repository in `backend`; an encrypted one needs its key.
    pub(crate) fn open(backend: Box<dyn Backend>, key: Option<&MasterKey>) -> Result<Repository> {
        // What killed commands left in tmp/ (spooled packs, sealed segments,
        // staged objects), in a local repository or this machine's cache.
        super::local::remove_stale_tmp(&backend.index_dir().join("tmp"));
        let here = PathBuf::from(backend.location());
        let bytes = match backend.read(keys::CONFIG, MAX_CONFIG as u64) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RepoError::NotARepository(here));
            }
            Err(e) => return Err(RepoError::io("read", here.join(keys::CONFIG))(e)),
        };
        let config = Config::decode(&bytes)
            .map_err(|e| RepoError::damaged(here.join(keys::CONFIG).display().to_string(), e))?;
        let crypto = config.crypto(key)?;
        Ok(Repository {
            backend,
            crypto,
            config,
            lock_notice: super::lock::Notice::default(),
            trailers: super::trailers::Trailers::default(),
        })
    }

    /// Opens the repository in a local directory; an encrypted one needs
    /// its key.
    pub fn open_dir(dir: impl AsRef<Path>, key: Option<&MasterKey>) -> Result<Repository> {
        Repository::open(Box::new(LocalBackend::new(dir.as_ref())), key)
    }

    /// Opens the repository at `location` (an encrypted one needs its
    /// key): a directory, a
    /// `file://` URL, or a prefix in object storage (`s3://bucket/prefix`,
    /// `gs://...`, `az://...`, configured from the environment as every
    /// location is; the index is then cached on this machine).
    pub fn open_at(location: &str, key: Option<&MasterKey>) -> Result<Repository> {
        Repository::open_at_with(location, key, &LocationOptions::default())
    }

    /// [`open_at`](Self::open_at) with the settings a location would be
    /// read with: for object storage, the retries, timeouts and store
    /// settings of `opts`. A read of a pack, list, manifest or any other
    /// object that is never rewritten, whose response breaks or goes
    /// silent for [`read_timeout`](LocationOptions::read_timeout), goes on
    /// from the byte it reached with a ranged request for the same version
    /// of the object, up to [`retries`](LocationOptions::retries) times in
    /// a row that bring no byte (waiting 0.1 s, doubling up to 1 s); then
    /// the error names the object and the byte.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use etcdsnap::LocationOptions;
    /// use etcdsnap::repo::Repository;
    /// let dir = tempfile::tempdir()?;
    /// let at = dir.path().join("repo");
    /// Repository::init_dir(&at, None)?;
    /// let opts = LocationOptions::default().with_retries(5);
    /// let repo = Repository::open_at_with(at.to_str().unwrap(), None, &opts)?;
    /// assert!(repo.snapshots()?.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn open_at_with(
        location: &str,
        key: Option<&MasterKey>,
        opts: &LocationOptions,
    ) -> Result<Repository> {
        match at(location, opts)? {
            At::Dir(d) => Repository::open_dir(d, key),
            #[cfg(feature = "remote")]
            At::Remote(b) => Repository::open(b, key),
        }
    }

    /// Creates a repository at `location`, as [`open_at`](Self::open_at)
    /// reads it, encrypted with `key` if given; a prefix in object storage
    /// must not hold a repository.
    pub fn init_at(location: &str, key: Option<&MasterKey>) -> Result<Repository> {
        Repository::init_at_with(location, key, &LocationOptions::default())
    }

    /// [`init_at`](Self::init_at) with the settings a location would be
    /// written with (see [`open_at_with`](Self::open_at_with)).
    pub fn init_at_with(
        location: &str,
        key: Option<&MasterKey>,
        opts: &LocationOptions,
    ) -> Result<Repository> {
        match at(location, opts)? {
            At::Dir(d) => Repository::init_dir(d, key),
            #[cfg(feature = "remote")]
            At::Remote(b) => Repository::init(b, key),
        }
    }

    /// The repository's location.
    pub fn location(&self) -> String {
        self.backend.location()
    }

    /// Whether blobs are encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.crypto.is_encrypted()
    }

    /// The repository's random ID.
    pub fn repository_id(&self) -> &str {
        &self.config.id
    }

    pub(crate) fn path_of(&self, key: &str) -> PathBuf {
        PathBuf::from(self.backend.location()).join(key)
    }

    /// Opens the index and brings it up to date with the objects.
    pub(crate) fn index(&self, mode: Open) -> Result<(Index, SyncReport)> {
        let dir = self.backend.index_dir();
        let mode = if self.backend.index_is_cache() && !dir.join(super::index::INDEX_FILE).exists()
        {
            Open::Create
        } else {
            mode
        };
        let ix = Index::open(&dir, mode, &self.crypto)?;
        let report = ix.sync(self.backend.as_ref(), &self.crypto)?;
        Ok((ix, report))
    }

    /// Takes the repository lock (shared for pushes and reads, exclusive
    /// for prune), waiting for a shared one and saying why (see
    /// [`on_lock_wait`](Self::on_lock_wait)).
    pub(crate) fn lock(&self, exclusive: bool) -> Result<Box<dyn LockGuard>> {
        let taken = if exclusive {
            self.backend.lock(true, false)
        } else {
            self.backend
                .lock_waiting(false, &|m: &str| self.lock_notice.tell(m))
        };
        taken.map_err(|e| RepoError::Locked {
            path: self.path_of("lock"),
            reason: e.to_string(),
        })
    }

    /// Every snapshot, oldest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        let _lock = self.lock(false)?;
        let (ix, _) = self.index(Open::Checked)?;
        let mut v: Vec<SnapshotInfo> = ix
            .snapshots()?
            .iter()
            .map(|(id, m)| SnapshotInfo::from_manifest(*id, m))
            .collect();
        v.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
        Ok(v)
    }

    /// The snapshot whose ID starts with `prefix` (hex, at least 4 digits).
    pub(crate) fn find_in(
        snaps: &[([u8; 32], Manifest)],
        prefix: &str,
    ) -> Result<([u8; 32], Manifest)> {
        let p = prefix.to_ascii_lowercase();
        if p.len() < 4 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RepoError::Usage(format!(
                "snapshot ID {prefix:?}: give at least 4 hex digits of an ID from `backup ls`"
            )));
        }
        let mut found = snaps.iter().filter(|(id, _)| hex(id).starts_with(&p));
        match (found.next(), found.next()) {
            (Some(one), None) => Ok(one.clone()),
            (Some(_), Some(_)) => Err(RepoError::AmbiguousId(prefix.into())),
            (None, _) => Err(RepoError::NoSuchSnapshot(prefix.into())),
        }
    }

    /// The snapshot whose ID starts with `prefix`.
    pub fn find(&self, prefix: &str) -> Result<SnapshotInfo> {
        let _lock = self.lock(false)?;
        let (ix, _) = self.index(Open::Checked)?;
        let (id, m) = Repository::find_in(&ix.snapshots()?, prefix)?;
        Ok(SnapshotInfo::from_manifest(id, &m))
    }

    /// Makes the index again from the packs, lists and manifests alone.
    /// Returns what could not be read (damaged objects are left out).
    pub fn rebuild_index(&self) -> Result<Vec<(String, String)>> {
        let _lock = self.lock(false)?;
        let dir = self.backend.index_dir();
        Index::remove(&dir)?;
        let ix = Index::open(&dir, Open::Create, &self.crypto)?;
        let report = ix.sync(self.backend.as_ref(), &self.crypto)?;
        Ok(report.damaged)
    }
}

/// Refuses an init where a repository is.
fn refuse_repository(backend: &dyn Backend) -> Result<()> {
    let here = PathBuf::from(backend.location());
    match backend.read(keys::CONFIG, MAX_CONFIG as u64) {
        Ok(_) => Err(RepoError::InitRefused {
            path: here,
            reason: "already holds a repository".into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RepoError::io("read", here.join(keys::CONFIG))(e)),
    }
}

/// Refuses an init in a directory that holds other files.
fn refuse_dir(dir: &Path) -> Result<()> {
    if let Ok(mut entries) = std::fs::read_dir(dir)
        && entries.next().is_some()
        && !dir.join(keys::CONFIG).exists()
    {
        return Err(RepoError::InitRefused {
            path: dir.to_path_buf(),
            reason: "exists and is not empty".into(),
        });
    }
    Ok(())
}

/// A repository location, parsed.
enum At {
    Dir(PathBuf),
    #[cfg(feature = "remote")]
    Remote(Box<dyn Backend>),
}

/// `location` parsed with `opts` (which reach a store's client and reads).
fn at(location: &str, opts: &LocationOptions) -> Result<At> {
    use crate::location::parse::Target;
    if !location.contains("://") {
        return Ok(At::Dir(PathBuf::from(location)));
    }
    let loc = crate::location::Location::parse_with(location, opts)?;
    Ok(match loc.target() {
        Target::Local(p) => At::Dir(p.clone()),
        #[cfg(feature = "remote")]
        Target::Remote(r) => {
            let b = super::remote::ObjectBackend::new(r.clone(), location, opts.retries)
                .map_err(RepoError::io("create", "the index cache directory"))?;
            At::Remote(Box::new(b))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_by_prefix() {
        let m = crate::repo::manifest::sample();
        let mut a = [0u8; 32];
        a[0] = 0xab;
        a[1] = 0xcd;
        let mut b = a;
        b[2] = 0x01;
        let snaps = vec![(a, m.clone()), (b, m)];
        assert_eq!(
            Repository::find_in(&snaps, "abcd0100").map(|x| x.0).ok(),
            Some(b)
        );
        assert_eq!(
            Repository::find_in(&snaps, "ABCD0000").map(|x| x.0).ok(),
            Some(a)
        );
        assert!(matches!(
            Repository::find_in(&snaps, "abcd"),
            Err(RepoError::AmbiguousId(_))
        ));
        assert!(matches!(
            Repository::find_in(&snaps, "ffff"),
            Err(RepoError::NoSuchSnapshot(_))
        ));
        assert!(matches!(
            Repository::find_in(&snaps, "ab"),
            Err(RepoError::Usage(_))
        ));
        assert!(matches!(
            Repository::find_in(&snaps, "abcx"),
            Err(RepoError::Usage(_))
        ));
    }
}
