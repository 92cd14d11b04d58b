//! The raft files of a member data dir: WAL segments and `.snap` files.
//!
//! A restored etcd member needs, besides its bbolt database, a raft log and a
//! raft snapshot that agree with it:
//!
//! * `member/wal/0000000000000000-0000000000000000.wal`, a 64,000,000-byte
//!   WAL segment holding a CRC record, the WAL metadata (member and cluster
//!   ID), one `ConfChangeAddNode` entry per member, the hard state and a
//!   snapshot marker at index N (the number of members), then zeros;
//! * `member/snap/0000000000000001-<N>.snap`, the raft snapshot at term 1,
//!   index N, whose data is the v2 store JSON listing the members.
//!
//! This layer reads both without trusting their bytes; the writers that
//! produce them exactly as `etcdctl 3.4` / `etcdutl 3.5`/`3.6` `snapshot
//! restore` do are the crate's own (restore uses them):
//!
//! * [`Entry`], [`HardState`], [`ConfState`], [`ConfChange`],
//!   [`WalMetadata`], [`WalSnapshot`], [`RaftSnapshot`]: the messages the
//!   files hold (the protobuf wire forms, with gogo's behaviour, stay
//!   inside the crate);
//! * [`wal`]: frame decoder, streaming reader, CRC chain and segment names;
//! * [`snap`]: the `.snap` container;
//! * [`RaftError`]: the layer's error type.
//!
//! ```
//! use etcdsnap::raft::snap::read_snap_file;
//! use etcdsnap::raft::wal::{WalPayload, decode_segment};
//!
//! // What `etcdutl 3.5 snapshot restore` wrote for one member.
//! let dir = std::path::Path::new("testdata/golden/v35-defaults");
//! let snap = read_snap_file(&dir.join("0000000000000001-0000000000000001.snap"))?;
//! assert_eq!((snap.term, snap.index), (1, 1));
//! let wal = std::fs::read(dir.join("0000000000000000-0000000000000000.wal.prefix"))?;
//! let records = decode_segment(&wal)?;
//! assert!(matches!(records[0].payload, WalPayload::Crc));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
pub(crate) mod flavour;
mod message;
// The raw prost messages are not API: the readers and writers convert them
// from and to the types of `message`, so that an embedder never builds on
// etcd's wire structs.
mod proto;
pub mod snap;
pub(crate) mod v2store;
pub mod wal;

pub use error::RaftError;
pub(crate) use flavour::Flavour;
pub use message::{
    ConfChange, ConfChangeKind, ConfState, Entry, EntryKind, HardState, RaftSnapshot, WalMetadata,
    WalSnapshot,
};

/// Checks that member IDs are non-empty and distinct.
pub(crate) fn check_distinct_ids(ids: impl IntoIterator<Item = u64>) -> Result<(), RaftError> {
    let mut sorted: Vec<u64> = ids.into_iter().collect();
    sorted.sort_unstable();
    check_ascending_ids(sorted)
}

/// Checks that member IDs are non-empty and strictly ascending, the order
/// restore writes them in.
pub(crate) fn check_ascending_ids(ids: impl IntoIterator<Item = u64>) -> Result<(), RaftError> {
    let mut prev: Option<u64> = None;
    for id in ids {
        if let Some(p) = prev
            && p >= id
        {
            return Err(RaftError::InvalidMembers(format!(
                "member IDs not in strictly ascending order: {p:x} then {id:x}"
            )));
        }
        prev = Some(id);
    }
    match prev {
        Some(_) => Ok(()),
        None => Err(RaftError::InvalidMembers("no members".into())),
    }
}
