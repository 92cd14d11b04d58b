//! Why the membership flags were rejected, in etcd's words.

use super::initial_cluster::{MAX_INITIAL_CLUSTER_LEN, MAX_MEMBERS};
use super::peer_url::UrlError;
use crate::etcd::TargetVersion;
use crate::go::quote::quote;

/// Why the cluster flags were rejected. Except for the limit variants, the
/// texts are etcd's.
#[derive(Debug, thiserror::Error)]
#[cfg_attr(test, derive(PartialEq, Eq))]
#[non_exhaustive]
pub enum ClusterError {
    /// A peer URL was rejected.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// `--initial-cluster` exceeds [`MAX_INITIAL_CLUSTER_LEN`].
    #[error("--initial-cluster is {len} bytes long; at most {max} bytes are accepted", max = MAX_INITIAL_CLUSTER_LEN)]
    TooLong {
        /// Length in bytes.
        len: usize,
    },
    /// `--initial-cluster` names more than [`MAX_MEMBERS`] members.
    #[error("--initial-cluster names more than {max} members", max = MAX_MEMBERS)]
    TooManyMembers,
    /// `--name` is not a member of `--initial-cluster`.
    #[error("couldn't find local name {} in the initial cluster configuration", quote(.name.as_bytes(), .version.go_release()))]
    NameNotFound {
        /// The `--name` given.
        name: String,
        /// Whose quoting the message uses.
        version: TargetVersion,
    },
    /// Some of the member's `--initial-cluster` URLs are not advertised.
    #[error(
        "--initial-cluster has {missing} but missing from --initial-advertise-peer-urls={advertised} ({detail})"
    )]
    MissingFromAdvertised {
        /// `name=url` items, comma-separated.
        missing: String,
        /// The advertised URLs, sorted, comma-separated.
        advertised: String,
        /// Why the lists did not match.
        detail: String,
    },
    /// Some advertised URLs are not in the member's `--initial-cluster` URLs.
    #[error(
        "--initial-advertise-peer-urls has {extra} but missing from --initial-cluster={cluster}"
    )]
    MissingFromInitialCluster {
        /// The extra URLs, comma-separated.
        extra: String,
        /// `name=url` for the *advertised* URLs (etcd prints those here).
        cluster: String,
    },
    /// The URL sets agree but the lists still do not match (duplicates, or
    /// resolution failed).
    #[error("failed to resolve {advertised} to match --initial-cluster={cluster} ({detail})")]
    ResolveMismatch {
        /// The advertised URLs, sorted, comma-separated.
        advertised: String,
        /// `name=url` for the advertised URLs.
        cluster: String,
        /// Why the lists did not match.
        detail: String,
    },
    /// A URL appears twice in `--initial-cluster`; holds the whole map as
    /// `name=url,...` sorted.
    #[error("initial cluster {0} has duplicate url")]
    DuplicateUrl(String),
    /// `--initial-cluster` is empty (only reachable through the library).
    #[error("initial cluster unset and no discovery URL found")]
    Unset,
    /// Two members hash to the same ID; holds Go's `%v` of the member.
    #[error("member exists with identical ID {0}")]
    DuplicateId(String),
    /// A member hashes to ID 0.
    #[error("cannot use 0 as member id")]
    ZeroId,
}
