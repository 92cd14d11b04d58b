//! Errors of the backup repository.

use std::path::PathBuf;

use crate::etcd::version::UnknownVersion;
use crate::restore::RestoreError;
use crate::snapshot::{SnapshotError, VerifyProblem};

/// Why a repository operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
    /// A file system (or object store) operation failed.
    #[error("{op} {}: {}", path.display(), crate::go::errno::text(source))]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what (a path in the repository, or the snapshot).
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The directory is not a repository (no `config`).
    #[error("{}: not an etcdsnap backup repository (run `etcdsnap backup init` first)", .0.display())]
    NotARepository(PathBuf),
    /// `init` on a directory that already holds a repository or other files.
    #[error("{}: {reason}", path.display())]
    InitRefused {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Stored bytes do not decode or do not match their name or checksum.
    #[error("{what}: {reason}")]
    Damaged {
        /// The object (pack, list, manifest, index entry...).
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The index could not be opened or read; it can be rebuilt from the packs.
    #[error("index {}: {reason} (run `etcdsnap backup rebuild-index` to rebuild it from the packs)", path.display())]
    Index {
        /// The index file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A chunk a snapshot needs is in no pack.
    #[error(
        "chunk {chunk} is missing from the repository (`etcdsnap backup check` tells whether the index is damaged; `etcdsnap backup rebuild-index` repairs a damaged index)"
    )]
    MissingChunk {
        /// The chunk ID (hex).
        chunk: String,
    },
    /// No snapshot has this ID (or unique ID prefix).
    #[error("no snapshot {0} in the repository")]
    NoSuchSnapshot(String),
    /// An ID prefix names several snapshots.
    #[error("snapshot ID prefix {0} is ambiguous")]
    AmbiguousId(String),
    /// The repository is encrypted and no key was given.
    #[error("this repository is encrypted: its key is needed")]
    KeyNeeded,
    /// A key was given for a repository that is not encrypted.
    #[error("this repository is not encrypted: it takes no key")]
    NotEncrypted,
    /// The key given is not the repository's.
    #[error("the key given is not this repository's key")]
    WrongKey,
    /// Generating a key or nonce, or encrypting, failed.
    #[error("{0}")]
    Key(String),
    /// The snapshot to push was refused.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The snapshot's SHA-256 trailer does not match its body.
    #[error("{}: SHA-256 trailer does not match the body (expected {stored}, got {computed})", path.display())]
    TrailerMismatch {
        /// The snapshot.
        path: PathBuf,
        /// Trailer (hex).
        stored: String,
        /// Body digest (hex).
        computed: String,
    },
    /// The snapshot to push fails `snapshot verify`'s checks (its bbolt
    /// structure or its etcd records): nothing is stored.
    #[error("{}: the snapshot is not sound, not pushed: {}", path.display(), joined(problems))]
    Unsound {
        /// The snapshot.
        path: PathBuf,
        /// What verify found, most fundamental first.
        problems: Vec<VerifyProblem>,
    },
    /// The snapshot's storage version names a release etcdsnap does not
    /// know, so there are no rules to check it by.
    #[error("{}: the snapshot's storage version {} is newer than any target version etcdsnap knows", path.display(), source.0)]
    TargetVersion {
        /// The snapshot.
        path: PathBuf,
        /// The version it records.
        source: UnknownVersion,
    },
    /// A snapshot without a trailer and no `--skip-hash-check`.
    #[error("{}: snapshot missing hash but --skip-hash-check=false", .0.display())]
    MissingHash(PathBuf),
    /// A reconstructed snapshot does not hash to what was recorded at push.
    #[error(
        "snapshot {id}: reconstructed bytes have SHA-256 {computed}, the manifest records {recorded}"
    )]
    Reconstruction {
        /// The snapshot ID.
        id: String,
        /// Recorded digest (hex).
        recorded: String,
        /// Computed digest (hex).
        computed: String,
    },
    /// Another process holds the repository lock.
    #[error("{}: {reason}", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as far as known.
        reason: String,
    },
    /// A segment of recorded changes that would give a stored range other
    /// contents: the same name holding a different segment, an overlap
    /// with a stored segment, or a range at or below its base's revision.
    #[error("{0}")]
    Conflict(String),
    /// No snapshot and its recorded changes reach the revision or time
    /// asked for.
    #[error("{0}")]
    PointNotRecorded(String),
    /// Applying recorded changes to a snapshot failed.
    #[error(transparent)]
    Rewrite(#[from] crate::rewrite::RewriteError),
    /// Bad options (IDs, revisions...).
    #[error("{0}")]
    Usage(String),
    /// A prune or forget given both snapshot IDs and retention rules, or
    /// neither.
    #[error("give snapshot IDs, or at least one retention rule (not both)")]
    PruneSelection,
    /// Reading a snapshot from a location (URL, compressed file) failed.
    #[error(transparent)]
    Location(#[from] crate::location::LocationError),
    /// Taking the snapshot from a live etcd failed.
    #[cfg(feature = "save")]
    #[error(transparent)]
    Save(#[from] crate::save::SaveError),
    /// A restore from the repository failed.
    #[error(transparent)]
    Restore(#[from] RestoreError),
}

/// Verify's problem lines on one line, as `snapshot save` joins them.
fn joined(problems: &[VerifyProblem]) -> String {
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    lines.join("; ")
}

/// Result of repository operations.
pub type Result<T> = std::result::Result<T, RepoError>;

impl RepoError {
    /// An I/O error builder for `map_err`.
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> RepoError {
        let path = path.into();
        move |source| RepoError::Io { op, path, source }
    }

    /// A damaged-object error.
    pub(crate) fn damaged(what: impl Into<String>, reason: impl Into<String>) -> RepoError {
        RepoError::Damaged {
            what: what.into(),
            reason: reason.into(),
        }
    }
}
