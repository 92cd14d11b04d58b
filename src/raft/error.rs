//! The error type of the raft files layer.

use std::path::PathBuf;

/// Everything that can go wrong while encoding, decoding, reading or writing
/// WAL segments, `.snap` files and the v2 store JSON.
///
/// Decoding errors name the byte offset (from the start of the segment or of
/// the `.snap` file) of the frame or field at fault; errors raised while
/// working on a file are wrapped in [`RaftError::InFile`], which names it.
///
/// ```
/// use etcdsnap::raft::RaftError;
///
/// let err = RaftError::SnapCrcMismatch { stored: 1, computed: 2 };
/// assert!(err.to_string().starts_with("snap: crc mismatch"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RaftError {
    /// A WAL frame (length word, record or padding) runs past the end of the
    /// data: a truncated segment.
    #[error(
        "wal: truncated frame at offset {offset}: need {needed} bytes, only {available} present"
    )]
    WalTruncated {
        /// Offset of the frame's length word.
        offset: u64,
        /// Bytes the frame needs from `offset` on.
        needed: u64,
        /// Bytes present from `offset` on.
        available: u64,
    },

    /// A length word announces a record at or above the 10 MiB limit etcd
    /// enforces (`maxWALEntrySizeLimit`, padding included).
    #[error(
        "wal: record at offset {offset} too large: {len} bytes plus {pad} padding (limit {limit})"
    )]
    WalRecordTooLarge {
        /// Offset of the frame's length word.
        offset: u64,
        /// Record length announced by the length word.
        len: u64,
        /// Padding announced by the length word.
        pad: u64,
        /// The limit, `10 * 1024 * 1024`.
        limit: u64,
    },

    /// A record's stored CRC does not match the running CRC-32C chain.
    #[error(
        "wal: crc mismatch at offset {offset}: record stores {stored:#010x}, chain gives {computed:#010x}"
    )]
    WalCrcMismatch {
        /// Offset of the frame's length word.
        offset: u64,
        /// CRC stored in the record.
        stored: u32,
        /// CRC computed from the chain.
        computed: u32,
    },

    /// A record failed to unmarshal or to CRC-check and one of its 512-byte
    /// sectors is all zero: etcd treats this as a torn write
    /// (`io.ErrUnexpectedEOF`) when it is in the last segment.
    #[error(
        "wal: torn write at offset {offset} (record fails to decode or CRC-check and holds an all-zero sector)"
    )]
    WalTornWrite {
        /// Offset of the frame's length word.
        offset: u64,
    },

    /// A WAL record or its payload is not valid protobuf for its type.
    #[error("wal: cannot decode {what} at offset {offset}: {source}")]
    WalDecode {
        /// Offset of the frame's length word.
        offset: u64,
        /// The protobuf message that failed, e.g. `walpb.Record`.
        what: &'static str,
        /// The protobuf error.
        source: prost::DecodeError,
    },

    /// A WAL record has a type etcd does not know (valid: 1 to 5).
    #[error("wal: unexpected block type {rec_type} at offset {offset}")]
    WalUnknownRecordType {
        /// Offset of the frame's length word.
        offset: u64,
        /// The type found.
        rec_type: i64,
    },

    /// The encoder was given a record at or above the 10 MiB limit, which no
    /// etcd reader would accept.
    #[error("wal: refusing to write a {len}-byte record (limit {limit})")]
    WalRecordTooLargeToWrite {
        /// Encoded record length.
        len: u64,
        /// The limit, `10 * 1024 * 1024` minus the frame's padding.
        limit: u64,
    },

    /// The WAL bytes to write do not fit in one segment.
    #[error("wal: {len} bytes do not fit in a {limit}-byte segment")]
    WalSegmentOverflow {
        /// Bytes to write.
        len: u64,
        /// The segment size.
        limit: u64,
    },

    /// The `.snap` file, or the data inside it, is empty or has a zero CRC
    /// (etcd's `snap: empty snapshot`).
    #[error("snap: empty snapshot")]
    SnapEmpty,

    /// The `.snap` file's CRC does not match its data (etcd's
    /// `snap: crc mismatch`).
    #[error("snap: crc mismatch: stored {stored:#010x}, data gives {computed:#010x}")]
    SnapCrcMismatch {
        /// CRC stored in the file.
        stored: u32,
        /// CRC-32C of the data.
        computed: u32,
    },

    /// The `.snap` file or the snapshot inside it is not valid protobuf.
    #[error("snap: cannot decode {what}: {source}")]
    SnapDecode {
        /// The protobuf message that failed, e.g. `snappb.Snapshot`.
        what: &'static str,
        /// The protobuf error.
        source: prost::DecodeError,
    },

    /// The member list given to a restore builder is unusable (empty, not in
    /// strictly ascending ID order, a member without peer URLs).
    #[error("invalid member list: {0}")]
    InvalidMembers(String),

    /// Reading a WAL segment failed in the operating system (not in the
    /// data).
    #[error(
        "wal: read error at offset {offset}: {}",
        crate::go::errno::text(source)
    )]
    WalRead {
        /// Offset of the frame being read.
        offset: u64,
        /// The underlying error.
        source: std::io::Error,
    },

    /// An I/O operation failed.
    #[error("{op} {}: {}", path.display(), crate::go::errno::text(source))]
    Io {
        /// What was being done, e.g. `create`.
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A decoding error in a named file.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file that was being decoded.
        path: PathBuf,
        /// What went wrong in it.
        source: Box<RaftError>,
    },
}

impl RaftError {
    /// Wraps `self` in [`RaftError::InFile`] naming `path`.
    ///
    /// ```
    /// use etcdsnap::raft::RaftError;
    ///
    /// let err = RaftError::SnapEmpty.in_file("member/snap/x.snap");
    /// assert_eq!(err.to_string(), "member/snap/x.snap: snap: empty snapshot");
    /// ```
    pub fn in_file(self, path: impl Into<PathBuf>) -> RaftError {
        RaftError::InFile {
            path: path.into(),
            source: Box::new(self),
        }
    }

    pub(crate) fn io(op: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        RaftError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}
