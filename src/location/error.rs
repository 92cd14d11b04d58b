//! Errors of the location layer: always one line, always naming the
//! location (URL or path) and the cause.

use crate::snapshot::SnapshotError;

/// Why a location could not be parsed, read, written, listed or pruned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocationError {
    /// The text is not a location this crate understands.
    #[error("{text}: {reason}")]
    Parse {
        /// The text as given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The object store could not be set up (bad configuration in the
    /// environment, say an unparsable `AWS_ENDPOINT`).
    #[error("{location}: {cause}")]
    Config {
        /// The location.
        location: String,
        /// The store's complaint.
        cause: String,
    },
    /// The object, its bucket, or the file does not exist.
    #[error("{location}: {what}")]
    NotFound {
        /// The location.
        location: String,
        /// `not found`, or `bucket not found` when the store says so.
        what: &'static str,
    },
    /// A request to the object store failed (credentials, missing bucket,
    /// network, server error), or a local file operation failed.
    #[error("{location}: {op}: {cause}")]
    Transfer {
        /// The location.
        location: String,
        /// What was being done (`download`, `upload`, `list`, `delete`...).
        op: &'static str,
        /// Why it failed, on one line.
        cause: String,
    },
    /// The bytes do not decompress (`.zst`, `.gz`).
    #[error("{location}: {format} decompression failed: {cause}")]
    Decompress {
        /// The location.
        location: String,
        /// `zstd` or `gzip`.
        format: &'static str,
        /// The decoder's complaint.
        cause: String,
    },
    /// The snapshot read from the location could not be opened.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

impl LocationError {
    pub(crate) fn transfer(
        location: &str,
        op: &'static str,
        cause: impl std::fmt::Display,
    ) -> LocationError {
        LocationError::Transfer {
            location: location.to_string(),
            op,
            cause: one_line(&cause.to_string()),
        }
    }

    /// Not found; `cause` (the store's text) tells a missing bucket
    /// from a missing object.
    pub(crate) fn not_found(location: &str, cause: &str) -> LocationError {
        let bucket = ["NoSuchBucket", "ContainerNotFound", "bucket does not exist"]
            .iter()
            .any(|m| cause.contains(m));
        LocationError::NotFound {
            location: location.to_string(),
            what: if bucket {
                "bucket not found"
            } else {
                "not found"
            },
        }
    }

    pub(crate) fn io(location: &str, op: &'static str, e: &std::io::Error) -> LocationError {
        LocationError::transfer(location, op, crate::go::errno::text(e))
    }
}

/// Folds a multi-line message onto one line.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
