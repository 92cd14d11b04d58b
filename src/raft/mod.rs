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
//! This layer knows how to write both exactly as `etcdctl 3.4` / `etcdutl
//! 3.5`/`3.6` `snapshot restore` do, and how to read them back without
//! trusting their bytes:
//!
//! * [`Entry`], [`HardState`], [`ConfState`], [`ConfChange`],
//!   [`WalMetadata`], [`WalSnapshot`], [`RaftSnapshot`]: the messages the
//!   files hold (the protobuf wire forms, with gogo's behaviour, stay
//!   inside the crate);
//! * [`wal`]: frame encoder and decoder, CRC chain, the restore record
//!   sequence and the segment file;
//! * [`snap`]: the `.snap` container;
//! * [`v2store`]: the v2 store JSON;
//! * [`RaftError`]: the layer's error type.
//!
//! Computing member IDs, member JSON and canonical URLs is the caller's job;
//! this layer takes them as inputs.
//!
//! ```
//! use etcdsnap::raft::Flavour;
//! use etcdsnap::raft::snap::{encode_snap, restore_snapshot};
//! use etcdsnap::raft::v2store::StoreMember;
//! use etcdsnap::raft::wal::{WalMember, restore_wal_prefix};
//!
//! let id = 0x8e9e05c52164694d_u64;
//! let json = format!(r#"{{"id":{id},"peerURLs":["http://localhost:2380"],"name":"default"}}"#);
//! let wal = restore_wal_prefix(id, 0xcdf818194e3a8c32, &[WalMember { id, context: json.into_bytes() }], Flavour::V35)?;
//! let snap = encode_snap(&restore_snapshot(
//!     &[StoreMember { id, peer_urls: vec!["http://localhost:2380".into()] }],
//!     Flavour::V35,
//! )?);
//! assert_eq!((wal.len(), snap.len()), (288, 6490));
//! # Ok::<(), etcdsnap::raft::RaftError>(())
//! ```

mod error;
mod message;
// The raw prost messages are not API: the readers and writers convert them
// from and to the types of `message`, so that an embedder never builds on
// etcd's wire structs.
mod proto;
pub mod snap;
pub mod v2store;
pub mod wal;

pub use error::RaftError;
pub use message::{
    ConfChange, ConfChangeKind, ConfState, Entry, EntryKind, HardState, RaftSnapshot, WalMetadata,
    WalSnapshot,
};

/// Which etcd release's `snapshot restore` output to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Flavour {
    /// `etcdctl 3.4 snapshot restore`: the final WAL snapshot record has no
    /// `ConfState`.
    V34,
    /// `etcdutl 3.5 snapshot restore`: the final WAL snapshot record carries
    /// `ConfState{voters}`.
    V35,
    /// `etcdutl 3.6 snapshot restore`: as 3.5, the v2 store statistics
    /// count one failed get, and members are created in the order given
    /// (etcd 3.6 iterates a Go map: any rotation of `--initial-cluster`).
    V36,
    /// `etcdutl 3.7 snapshot restore`: as 3.6, marshalled with
    /// google.golang.org/protobuf, which writes only the fields etcd sets:
    /// `ConfChange.ID` and `ConfState.auto_leave` (zero at restore) are
    /// left out.
    V37,
}

impl Flavour {
    /// Whether etcd of this flavour writes `ConfChange.ID` and
    /// `ConfState.auto_leave` when they are zero (gogo-protobuf, 3.4 to
    /// 3.6).
    pub fn writes_zero_fields(self) -> bool {
        !matches!(self, Flavour::V37)
    }

    /// `ConfState.auto_leave` as etcd of this flavour writes it at restore.
    pub fn auto_leave(self) -> Option<bool> {
        self.writes_zero_fields().then_some(false)
    }

    /// Whether members may come in any order (3.6+ fill the v2 store from
    /// a Go map); 3.4 and 3.5 create them in ascending ID order.
    pub fn any_member_order(self) -> bool {
        matches!(self, Flavour::V36 | Flavour::V37)
    }
}

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
