//! Errors of the location layer: always one line, always naming the
//! location (URL or path) and the cause. The error the cause was read
//! from (the object store's, the OS's) is kept as the source.

use crate::snapshot::SnapshotError;

/// The underlying error of a [`LocationError`]: an [`object_store::Error`]
/// or a [`std::io::Error`] (downcast to tell which).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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
        /// The store's complaint, on one line.
        cause: String,
        /// The store's error.
        #[source]
        source: Option<BoxError>,
    },
    /// The object, its bucket, or the file does not exist.
    #[error("{location}: {what}")]
    NotFound {
        /// The location.
        location: String,
        /// `not found`, or `bucket not found` when the store says so.
        what: &'static str,
        /// The store's or the OS's error, when there was one.
        #[source]
        source: Option<BoxError>,
    },
    /// The store refused the request: the credentials are valid but do
    /// not allow it (HTTP 403, or the store's `PermissionDenied`; a bad
    /// signature is reported as 403 by S3 too), or a local file's
    /// permissions forbid it.
    #[error("{location}: {op}: {cause}")]
    PermissionDenied {
        /// The location.
        location: String,
        /// What was being done (`download`, `upload`, `list`, `delete`...).
        op: &'static str,
        /// Why it failed, on one line.
        cause: String,
        /// The store's or the OS's error.
        #[source]
        source: Option<BoxError>,
    },
    /// The store did not accept the credentials (HTTP 401, or the
    /// store's `Unauthenticated`).
    #[error("{location}: {op}: {cause}")]
    Unauthenticated {
        /// The location.
        location: String,
        /// What was being done.
        op: &'static str,
        /// Why it failed, on one line.
        cause: String,
        /// The store's error.
        #[source]
        source: Option<BoxError>,
    },
    /// A request to the object store failed (missing bucket, network,
    /// server error), or a local file operation failed.
    #[error("{location}: {op}: {cause}")]
    Transfer {
        /// The location.
        location: String,
        /// What was being done (`download`, `upload`, `list`, `delete`...).
        op: &'static str,
        /// Why it failed, on one line.
        cause: String,
        /// The store's or the OS's error, when there was one.
        #[source]
        source: Option<BoxError>,
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
        /// The decoder's error.
        #[source]
        source: Option<BoxError>,
    },
    /// The snapshot read from the location could not be opened.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// Whether a failure was a refusal of the credentials or of the access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 403 / `PermissionDenied` / `EACCES`.
    Denied,
    /// 401 / `Unauthenticated`.
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    Unauthenticated,
}

impl LocationError {
    /// A failure without an underlying error.
    pub(crate) fn transfer(
        location: &str,
        op: &'static str,
        cause: impl std::fmt::Display,
    ) -> LocationError {
        LocationError::failed(location, op, one_line(&cause.to_string()), None, None)
    }

    /// A failure whose text was already made, with the error it came from;
    /// `refusal` picks the variant.
    pub(crate) fn failed(
        location: &str,
        op: &'static str,
        cause: String,
        refusal: Option<Refusal>,
        source: Option<BoxError>,
    ) -> LocationError {
        let location = location.to_string();
        match refusal {
            Some(Refusal::Denied) => LocationError::PermissionDenied {
                location,
                op,
                cause,
                source,
            },
            Some(Refusal::Unauthenticated) => LocationError::Unauthenticated {
                location,
                op,
                cause,
                source,
            },
            None => LocationError::Transfer {
                location,
                op,
                cause,
                source,
            },
        }
    }

    /// A failed request to the object store: a missing object or bucket
    /// is [`LocationError::NotFound`], a refusal its own variant, the rest
    /// [`LocationError::Transfer`]; the text is [`super::store::cause`]'s.
    #[cfg(feature = "remote")]
    pub(crate) fn store(location: &str, op: &'static str, e: object_store::Error) -> LocationError {
        let text = super::store::cause(&e);
        if matches!(e, object_store::Error::NotFound { .. }) {
            return LocationError::not_found_because(location, &text, Some(Box::new(e)));
        }
        let refusal = super::store::refusal(&e, &text);
        LocationError::failed(location, op, text, refusal, Some(Box::new(e)))
    }

    /// Not found; `cause` (the store's text) tells a missing bucket
    /// from a missing object.
    #[cfg(feature = "remote")]
    pub(crate) fn not_found(location: &str, cause: &str) -> LocationError {
        LocationError::not_found_because(location, cause, None)
    }

    /// [`LocationError::not_found`] keeping the error it came from.
    pub(crate) fn not_found_because(
        location: &str,
        cause: &str,
        source: Option<BoxError>,
    ) -> LocationError {
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
            source,
        }
    }

    /// A failed local file operation; `EACCES`/`EPERM` is
    /// [`LocationError::PermissionDenied`].
    pub(crate) fn io(location: &str, op: &'static str, e: std::io::Error) -> LocationError {
        let text = one_line(&crate::go::errno::text(&e));
        let refusal = (e.kind() == std::io::ErrorKind::PermissionDenied).then_some(Refusal::Denied);
        LocationError::failed(location, op, text, refusal, Some(Box::new(e)))
    }

    /// Whether the store or the OS refused access (HTTP 403, `EACCES`):
    /// other credentials or permissions may succeed.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, LocationError::PermissionDenied { .. })
    }

    /// Whether the store rejected the credentials (HTTP 401).
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self, LocationError::Unauthenticated { .. })
    }
}

/// Folds a multi-line message onto one line.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
