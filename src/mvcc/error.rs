//! Errors of the MVCC layer.

use crate::bolt::BoltError;

/// Why an MVCC query could not be answered.
///
/// The two revision errors carry etcd's own wording, which people grep for.
#[derive(Debug, thiserror::Error)]
#[cfg_attr(test, derive(PartialEq, Eq))]
#[non_exhaustive]
pub enum MvccError {
    /// The revision asked for is below the compacted revision.
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted {
        /// The revision asked for.
        requested: i64,
        /// The compacted revision in effect.
        compacted: i64,
    },
    /// The revision asked for is beyond the current revision.
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision {
        /// The revision asked for.
        requested: i64,
        /// The current revision.
        current: i64,
    },
    /// A range request without a key (etcd's `ErrGRPCEmptyKey`).
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    /// The bbolt structure could not be read.
    #[error("{0}")]
    Bolt(#[from] BoltError),
    /// An entry of the `key` bucket is not what etcd writes there.
    #[error("key bucket: entry {rev_key} (byte offset {offset}): {what}")]
    BadEntry {
        /// The revision key, hex.
        rev_key: String,
        /// Absolute file offset of the entry's value (0 when unknown).
        offset: u64,
        /// What is wrong with it.
        what: String,
    },
    /// A record of another bucket (meta, members, lease) does not decode.
    #[error("{bucket} bucket: entry {key}: {what}")]
    BadRecord {
        /// The bucket.
        bucket: &'static str,
        /// The entry's key, printable.
        key: String,
        /// What is wrong with it.
        what: String,
    },
}

pub(crate) use crate::go::hex::encode as hex;
