//! A snapshot file and what can be done with it: open, verify, status.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use etcdsnap::Snapshot;
//! use etcdsnap::TargetVersion;
//!
//! let snap = Snapshot::open("testdata/snapshots/small-v35.db")?;
//! let status = snap.status(TargetVersion::V3_5)?;
//! assert_eq!((status.hash, status.revision, status.total_key), (3190482412, 4, 11));
//!
//! let report = snap.verify(&Default::default());
//! assert!(report.is_ok(), "{:?}", report.problems());
//! # Ok(()) }
//! ```

pub(crate) mod copy;
pub(crate) mod error;
pub(crate) mod file;
pub(crate) mod hash;
pub(crate) mod stream;
pub(crate) mod verify;

use std::path::Path;

pub use error::SnapshotError;
pub use file::{SnapshotFile, has_trailer};
pub use hash::HashCheck;
pub use verify::{DbInfo, VerifyOptions, VerifyProblem, VerifyReport, VerifyWarning};

use crate::bolt::check::{self, WalkOptions, WalkStats};
use crate::bolt::{Db, Visitor};
use crate::etcd::version::{TargetChoice, UnknownVersion};
use crate::etcd::{Status, StatusVisitor, TargetVersion};
use crate::progress::Progress;

/// An etcd snapshot (`etcdctl snapshot save` output, with a SHA-256
/// trailer) or a raw `member/snap/db` copy.
#[derive(Debug)]
pub struct Snapshot {
    file: SnapshotFile,
}

impl Snapshot {
    /// Opens and maps the file. Only regular files are accepted (a
    /// directory, FIFO or `/dev/zero` is refused at once); a shared lock is
    /// taken, so a db that a running etcd holds is refused rather than read
    /// while it changes.
    pub fn open(path: impl AsRef<Path>) -> Result<Snapshot, SnapshotError> {
        Ok(Snapshot {
            file: SnapshotFile::open(path)?,
        })
    }

    /// A snapshot over an already open file (see [`SnapshotFile::from_file`]).
    pub(crate) fn from_file(file: SnapshotFile) -> Snapshot {
        Snapshot { file }
    }

    /// The path it was opened with (for a snapshot read from a location,
    /// the location).
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Length of the file in bytes, trailer included.
    pub fn file_len(&self) -> u64 {
        self.file.len()
    }

    /// Length of the bbolt image: the file without its trailer.
    pub fn body_len(&self) -> u64 {
        self.file.body_len()
    }

    /// The SHA-256 digest stored in the trailer, when the file has one
    /// (its length is 32 more than a multiple of 512, etcd's rule).
    pub fn trailer(&self) -> Option<[u8; 32]> {
        self.file.trailer()
    }

    /// The mapped file underneath (for readers inside the crate that release
    /// pages, and for the backup repository, which pushes it).
    pub(crate) fn file(&self) -> &SnapshotFile {
        &self.file
    }

    /// The bbolt database inside (the trailer, if any, excluded).
    pub fn db(&self) -> Result<Db<'_>, SnapshotError> {
        self.file.db()
    }

    /// The snapshot's `meta/storageVersion` as etcd reads it (semver
    /// `major.minor.patch`, re-printed), `None` when absent or not a
    /// version (etcd then takes the data for 3.5's). etcd 3.6 and later
    /// write it; [`TargetChoice::Auto`](crate::TargetChoice::Auto) follows it.
    ///
    /// ```
    /// let snap = etcdsnap::Snapshot::open("testdata/snapshots/small-v36.db")?;
    /// assert_eq!(snap.storage_version()?.as_deref(), Some("3.6.0"));
    /// let snap = etcdsnap::Snapshot::open("testdata/snapshots/small-v35.db")?;
    /// assert_eq!(snap.storage_version()?, None);
    /// # Ok::<(), etcdsnap::SnapshotError>(())
    /// ```
    pub fn storage_version(&self) -> Result<Option<String>, SnapshotError> {
        self.file.storage_version()
    }

    /// The release whose rules `choice` names for this snapshot:
    /// [`TargetChoice::Auto`] follows its [storage
    /// version](Snapshot::storage_version) (3.5's rules when it records
    /// none), an exact version is taken as it is. `Err` when the snapshot
    /// records a release newer than any this crate knows.
    ///
    /// ```
    /// use etcdsnap::{Snapshot, TargetChoice, TargetVersion};
    /// let snap = Snapshot::open("testdata/snapshots/small-v36.db")?;
    /// assert_eq!(snap.resolve_target(TargetChoice::Auto), Ok(TargetVersion::V3_6));
    /// assert_eq!(snap.resolve_target(TargetVersion::V3_5), Ok(TargetVersion::V3_5));
    /// # Ok::<(), etcdsnap::SnapshotError>(())
    /// ```
    pub fn resolve_target(
        &self,
        choice: impl Into<TargetChoice>,
    ) -> Result<TargetVersion, UnknownVersion> {
        self.file.resolve_target(choice.into())
    }

    /// `etcdutl snapshot status`: the structural check, then the hash,
    /// revision, key count and size by the rules of `target` (a
    /// [`TargetVersion`], or [`TargetChoice::Auto`] for the snapshot's
    /// own, see [`resolve_target`](Snapshot::resolve_target)).
    pub fn status(&self, target: impl Into<TargetChoice>) -> Result<Status, SnapshotError> {
        let target =
            self.resolve_target(target)
                .map_err(|source| SnapshotError::UnknownStorageVersion {
                    path: self.file.path().to_path_buf(),
                    source,
                })?;
        // Start reading the whole file in the background: the walk goes in
        // key order, which is not file order, and would otherwise wait for
        // each page in turn on a cold page cache.
        self.file.map().advise(memmap2::Advice::WillNeed);
        let threads = WalkOptions::default().threads;
        let (db, visitor, _) = walk_checked(&self.file, StatusVisitor::new(target), threads)?;
        Ok(visitor.finish(db.size())?)
    }

    /// Verifies the trailer, the metas, the structure and the etcd schema.
    pub fn verify(&self, opts: &VerifyOptions) -> VerifyReport {
        verify::verify(&self.file, opts, &|_| {})
    }

    /// [`verify`](Snapshot::verify), reporting how much of the file has been
    /// hashed (the part of a verify that reads every byte) to `progress`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// let snap = etcdsnap::Snapshot::open("testdata/snapshots/k8s-v35.db")?;
    /// let hashed = AtomicU64::new(0);
    /// let report = snap.verify_with_progress(&Default::default(), &|p| {
    ///     hashed.store(p.done, Ordering::Relaxed);
    /// });
    /// assert!(report.is_ok());
    /// assert_eq!(hashed.load(Ordering::Relaxed), snap.file_len() - 32);
    /// # Ok(()) }
    /// ```
    pub fn verify_with_progress(
        &self,
        opts: &VerifyOptions,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> VerifyReport {
        verify::verify(&self.file, opts, progress)
    }
}

/// Opens the body as bbolt (refusing a file shorter than its database) and
/// walks it with `visitor`, releasing walked pages of the map as it goes.
/// Structural problems are an error, worded as etcdutl words them; a file
/// that changed while it was read is an error whatever the walk found.
pub(crate) fn walk_checked<V: Visitor>(
    file: &SnapshotFile,
    visitor: V,
    threads: usize,
) -> Result<(Db<'_>, V, WalkStats), SnapshotError> {
    let walked = walk_unchanged(file, visitor, threads);
    match file.changed() {
        Some(e) => Err(e),
        None => walked,
    }
}

fn walk_unchanged<V: Visitor>(
    file: &SnapshotFile,
    visitor: V,
    threads: usize,
) -> Result<(Db<'_>, V, WalkStats), SnapshotError> {
    let db = file.db()?;
    if db.size() > file.body_len() {
        return Err(SnapshotError::Truncated {
            path: file.path().to_path_buf(),
            needed: db.size(),
            have: file.body_len(),
        });
    }
    let release = || file.map().release();
    let opts = WalkOptions::default()
        .with_threads(threads)
        .with_release(&release);
    let (report, visitor) = check::walk(db, visitor, &opts);
    if !report.is_ok() {
        return Err(SnapshotError::Integrity {
            count: report.problem_count(),
            problems: report.problems,
            omitted: report.omitted,
        });
    }
    Ok((db, visitor, report.stats))
}
