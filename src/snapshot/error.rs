//! Errors of the snapshot layer.

use std::path::PathBuf;

use crate::bolt::BoltError;
use crate::bolt::check::Problem;
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
    #[error("snapshot file integrity check failed. {count} errors found.\n{}", integrity_lines(problems, *omitted))]
    Integrity {
        /// Number of problems.
        count: u64,
        /// The problems kept (at most [`MAX_PROBLEMS`](crate::bolt::check::MAX_PROBLEMS)).
        problems: Vec<Problem>,
        /// Problems found beyond those kept.
        omitted: u64,
    },
    /// The file changed (shrank, grew or was rewritten) while it was read,
    /// so nothing read from it can be trusted.
    #[error("{}: the file changed while it was being read ({was} bytes when opened, {} now): another process wrote to it or truncated it", path.display(), now.map_or_else(|| "unknown".to_owned(), |n| n.to_string()))]
    Changed {
        /// The path.
        path: PathBuf,
        /// Its length when opened.
        was: u64,
        /// Its length now, if it can still be read.
        now: Option<u64>,
    },
    /// The database is sound but not an etcd database status can describe.
    #[error(transparent)]
    Status(#[from] StatusError),
    /// `auto` was asked for and the snapshot's storage version names a
    /// release newer than any whose rules this crate knows.
    #[error("{}: the snapshot's storage version {} is newer than any target version etcdsnap knows", path.display(), source.0)]
    UnknownStorageVersion {
        /// The path.
        path: PathBuf,
        /// The storage version it records.
        source: crate::etcd::version::UnknownVersion,
    },
}

/// One line per problem, then how many more there were.
fn integrity_lines(problems: &[Problem], omitted: u64) -> String {
    let mut lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    if omitted > 0 {
        lines.push(format!("... and {omitted} more"));
    }
    lines.join("\n")
}
