//! Errors of the snapshot layer.

use std::path::PathBuf;

use crate::bolt::BoltError;
use crate::etcd::StatusError;

/// Why a snapshot could not be opened, checked or reported on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The file could not be opened or read.
    #[error("{op} {}: {}", path.display(), crate::go::errno::text(source))]
    Io {
        /// What was being done (`open`, `stat`, `read`).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not a regular file (a directory, FIFO, device...).
    #[error("{}: is a {kind}, not a snapshot file", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// Another process holds an exclusive lock (a running etcd).
    #[error("{}: locked by another process", path.display())]
    Locked {
        /// The path.
        path: PathBuf,
    },
    /// The bytes are not a bbolt database.
    #[error("{}: {source}", path.display())]
    Bolt {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        source: BoltError,
    },
    /// The file is shorter than the database its meta describes.
    #[error("{}: truncated: the database needs {needed} bytes but the file has {have}", path.display())]
    Truncated {
        /// The path.
        path: PathBuf,
        /// `hwm * page size`.
        needed: u64,
        /// Bytes in the file (without a trailer).
        have: u64,
    },
    /// The structural check found problems (etcdutl's wording).
    #[error("snapshot file integrity check failed. {count} errors found.\n{}", lines.join("\n"))]
    Integrity {
        /// Number of problems.
        count: u64,
        /// One line per problem (possibly fewer than `count`).
        lines: Vec<String>,
    },
    /// The database is sound but not an etcd database status can describe.
    #[error(transparent)]
    Status(#[from] StatusError),
}
