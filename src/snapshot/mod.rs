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
pub(crate) mod verify;

use std::path::Path;

pub use error::SnapshotError;
pub use file::{SnapshotFile, has_trailer};
pub use hash::HashCheck;
pub use verify::{DbInfo, VerifyOptions, VerifyProblem, VerifyReport, VerifyWarning};

use crate::bolt::check::{self, CheckOptions};
use crate::bolt::{Db, Visitor};
use crate::etcd::{Status, StatusVisitor, TargetVersion};

/// An etcd snapshot (`etcdctl snapshot save` output, with a SHA-256
/// trailer) or a raw `member/snap/db` copy.
#[derive(Debug)]
pub struct Snapshot {
    file: SnapshotFile,
}

impl Snapshot {
    /// Opens and maps the file. See [`SnapshotFile::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Snapshot, SnapshotError> {
        Ok(Snapshot {
            file: SnapshotFile::open(path)?,
        })
    }

    /// The underlying file.
    pub fn file(&self) -> &SnapshotFile {
        &self.file
    }

    /// The bbolt database inside (the trailer, if any, excluded).
    pub fn db(&self) -> Result<Db<'_>, SnapshotError> {
        self.file.db()
    }

    /// `etcdutl snapshot status`: the structural check, then the hash,
    /// revision, key count and size by the rules of `target`.
    pub fn status(&self, target: TargetVersion) -> Result<Status, SnapshotError> {
        // Start reading the whole file in the background: the walk goes in
        // key order, which is not file order, and would otherwise wait for
        // each page in turn on a cold page cache.
        self.file.map().advise(memmap2::Advice::WillNeed);
        let threads = CheckOptions::default().threads;
        let (db, visitor) = walk_checked(&self.file, StatusVisitor::new(target), threads)?;
        Ok(visitor.finish(db.size())?)
    }

    /// Verifies the trailer, the metas, the structure and the etcd schema.
    pub fn verify(&self, opts: &VerifyOptions) -> VerifyReport {
        verify::verify(&self.file, opts)
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
) -> Result<(Db<'_>, V), SnapshotError> {
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
) -> Result<(Db<'_>, V), SnapshotError> {
    let db = file.db()?;
    if db.size() > file.body_len() {
        return Err(SnapshotError::Truncated {
            path: file.path().to_path_buf(),
            needed: db.size(),
            have: file.body_len(),
        });
    }
    let release = || file.map().release();
    let opts = CheckOptions {
        threads,
        release: Some(&release),
        ..CheckOptions::default()
    };
    let (report, visitor) = check::walk(db, visitor, &opts);
    if !report.is_ok() {
        return Err(SnapshotError::Integrity {
            count: report.problem_count(),
            problems: report.problems,
            omitted: report.omitted,
        });
    }
    Ok((db, visitor))
}
