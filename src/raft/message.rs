//! The messages of etcd's raft files as this crate's API gives them: plain
//! structs and enums, converted from and to the wire messages (the private
//! `proto` module, gogo's wire behaviour) inside the crate.
//!
//! Fields whose absence etcd writes differently from their zero value stay
//! `Option`s, so that decoding and encoding again gives the same bytes:
//! `bytes` fields (`None` writes no field, `Some(vec![])` an empty one),
//! [`ConfChange::id`] and [`ConfState::auto_leave`] (gogo writes them
//! when zero, etcd 3.7 leaves them out).

use crate::raft::proto::{etcdserverpb, raftpb, walpb};

/// The kind of a raft log entry (`raftpb.EntryType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryKind {
    /// `EntryNormal`: a proposal.
    Normal,
    /// `EntryConfChange`: the data is a [`ConfChange`].
    ConfChange,
    /// `EntryConfChangeV2`: the data is a `ConfChangeV2` (not decoded).
    ConfChangeV2,
    /// A type number etcd does not define, kept as read.
    Other(i32),
}

impl EntryKind {
    /// The kind for a `raftpb.EntryType` number.
    ///
    /// ```
    /// use etcdsnap::raft::EntryKind;
    /// assert_eq!(EntryKind::from_code(1), EntryKind::ConfChange);
    /// assert_eq!(EntryKind::from_code(9), EntryKind::Other(9));
    /// ```
    pub fn from_code(code: i32) -> EntryKind {
        match code {
            0 => EntryKind::Normal,
            1 => EntryKind::ConfChange,
            2 => EntryKind::ConfChangeV2,
            n => EntryKind::Other(n),
        }
    }

    /// The `raftpb.EntryType` number written on the wire.
    pub fn code(self) -> i32 {
        match self {
            EntryKind::Normal => 0,
            EntryKind::ConfChange => 1,
            EntryKind::ConfChangeV2 => 2,
            EntryKind::Other(n) => n,
        }
    }

    /// etcd's name of a known kind (`EntryNormal`, `EntryConfChange`,
    /// `EntryConfChangeV2`); `None` for [`EntryKind::Other`].
    pub fn name(self) -> Option<&'static str> {
        match self {
            EntryKind::Normal => Some("EntryNormal"),
            EntryKind::ConfChange => Some("EntryConfChange"),
            EntryKind::ConfChangeV2 => Some("EntryConfChangeV2"),
            EntryKind::Other(_) => None,
        }
    }
}

/// One raft log entry (`raftpb.Entry`).
///
/// ```
/// use etcdsnap::raft::{Entry, EntryKind};
///
/// let e = Entry { term: 1, index: 5, kind: EntryKind::Normal, data: Some(b"put".to_vec()) };
/// assert_eq!(e.data.as_deref(), Some(&b"put"[..]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Raft term.
    pub term: u64,
    /// Raft index.
    pub index: u64,
    /// What the data holds.
    pub kind: EntryKind,
    /// The payload; for [`EntryKind::ConfChange`] a marshalled
    /// [`ConfChange`]. `None` is no field on the wire, as etcd writes an
    /// entry without data.
    pub data: Option<Vec<u8>>,
}

impl Entry {
    pub(crate) fn from_proto(e: raftpb::Entry) -> Entry {
        Entry {
            term: e.term,
            index: e.index,
            kind: EntryKind::from_code(e.r#type),
            data: e.data,
        }
    }

    pub(crate) fn to_proto(&self) -> raftpb::Entry {
        raftpb::Entry {
            r#type: self.kind.code(),
            term: self.term,
            index: self.index,
            data: self.data.clone(),
        }
    }
}

/// The kind of a membership change (`raftpb.ConfChangeType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfChangeKind {
    /// `ConfChangeAddNode`: a voting member joins.
    AddNode,
    /// `ConfChangeRemoveNode`: a member leaves.
    RemoveNode,
    /// `ConfChangeUpdateNode`: a member's attributes change.
    UpdateNode,
    /// `ConfChangeAddLearnerNode`: a learner joins.
    AddLearnerNode,
    /// A type number etcd does not define, kept as read.
    Other(i32),
}

impl ConfChangeKind {
    /// The kind for a `raftpb.ConfChangeType` number.
    ///
    /// ```
    /// use etcdsnap::raft::ConfChangeKind;
    /// assert_eq!(ConfChangeKind::from_code(3), ConfChangeKind::AddLearnerNode);
    /// assert_eq!(ConfChangeKind::from_code(-1).name(), None);
    /// ```
    pub fn from_code(code: i32) -> ConfChangeKind {
        match code {
            0 => ConfChangeKind::AddNode,
            1 => ConfChangeKind::RemoveNode,
            2 => ConfChangeKind::UpdateNode,
            3 => ConfChangeKind::AddLearnerNode,
            n => ConfChangeKind::Other(n),
        }
    }

    /// The `raftpb.ConfChangeType` number written on the wire.
    pub fn code(self) -> i32 {
        match self {
            ConfChangeKind::AddNode => 0,
            ConfChangeKind::RemoveNode => 1,
            ConfChangeKind::UpdateNode => 2,
            ConfChangeKind::AddLearnerNode => 3,
            ConfChangeKind::Other(n) => n,
        }
    }

    /// etcd's name of a known kind (`ConfChangeAddNode`, ...); `None` for
    /// [`ConfChangeKind::Other`].
    pub fn name(self) -> Option<&'static str> {
        match self {
            ConfChangeKind::AddNode => Some("ConfChangeAddNode"),
            ConfChangeKind::RemoveNode => Some("ConfChangeRemoveNode"),
            ConfChangeKind::UpdateNode => Some("ConfChangeUpdateNode"),
            ConfChangeKind::AddLearnerNode => Some("ConfChangeAddLearnerNode"),
            ConfChangeKind::Other(_) => None,
        }
    }
}

/// A single membership change (`raftpb.ConfChange`), the data of an
/// [`EntryKind::ConfChange`] entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfChange {
    /// Change ID; etcd's restore writes `Some(0)` (gogo, 3.4 to 3.6) or
    /// leaves it out (`None`, 3.7).
    pub id: Option<u64>,
    /// What changes.
    pub kind: ConfChangeKind,
    /// The member concerned.
    pub node_id: u64,
    /// For etcd, the member's JSON.
    pub context: Option<Vec<u8>>,
}

impl ConfChange {
    /// The marshalled change, as an entry's data carries it.
    ///
    /// ```
    /// use etcdsnap::raft::{ConfChange, ConfChangeKind};
    ///
    /// // gogo (3.4-3.6) writes ID=0; 3.7 leaves it out.
    /// let gogo = ConfChange { id: Some(0), kind: ConfChangeKind::AddNode, node_id: 7, context: None };
    /// assert_eq!(gogo.to_bytes(), [0x08, 0, 0x10, 0, 0x18, 7]);
    /// let v37 = ConfChange { id: None, ..gogo };
    /// assert_eq!(v37.to_bytes(), [0x10, 0, 0x18, 7]);
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(&self.to_proto())
    }

    pub(crate) fn from_proto(c: raftpb::ConfChange) -> ConfChange {
        ConfChange {
            id: c.id,
            kind: ConfChangeKind::from_code(c.r#type),
            node_id: c.node_id,
            context: c.context,
        }
    }

    pub(crate) fn to_proto(&self) -> raftpb::ConfChange {
        raftpb::ConfChange {
            id: self.id,
            r#type: self.kind.code(),
            node_id: self.node_id,
            context: self.context.clone(),
        }
    }
}

/// The persistent raft state (`raftpb.HardState`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    /// Current term.
    pub term: u64,
    /// Member voted for in the current term.
    pub vote: u64,
    /// Commit index.
    pub commit: u64,
}

impl HardState {
    pub(crate) fn from_proto(h: raftpb::HardState) -> HardState {
        HardState {
            term: h.term,
            vote: h.vote,
            commit: h.commit,
        }
    }

    pub(crate) fn to_proto(self) -> raftpb::HardState {
        raftpb::HardState {
            term: self.term,
            vote: self.vote,
            commit: self.commit,
        }
    }
}

/// The membership configuration (`raftpb.ConfState`). Raft has grown it
/// before (joint consensus), so it is built from [`Default`]:
///
/// ```
/// use etcdsnap::raft::ConfState;
///
/// let mut cs = ConfState::default();
/// cs.voters = vec![1, 2];
/// cs.auto_leave = Some(false); // as gogo writes it; etcd 3.7 leaves it out
/// assert!(cs.learners.is_empty());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfState {
    /// Voting members.
    pub voters: Vec<u64>,
    /// Learners.
    pub learners: Vec<u64>,
    /// Voters of the outgoing configuration during a joint change.
    pub voters_outgoing: Vec<u64>,
    /// Learners to be added when leaving a joint configuration.
    pub learners_next: Vec<u64>,
    /// Whether a joint configuration is left automatically: `Some(false)`
    /// where gogo writes the zero value (3.4 to 3.6), `None` where it is
    /// not on the wire (3.7's restore).
    pub auto_leave: Option<bool>,
}

impl ConfState {
    pub(crate) fn from_proto(c: raftpb::ConfState) -> ConfState {
        ConfState {
            voters: c.voters,
            learners: c.learners,
            voters_outgoing: c.voters_outgoing,
            learners_next: c.learners_next,
            auto_leave: c.auto_leave,
        }
    }

    pub(crate) fn to_proto(&self) -> raftpb::ConfState {
        raftpb::ConfState {
            voters: self.voters.clone(),
            learners: self.learners.clone(),
            voters_outgoing: self.voters_outgoing.clone(),
            learners_next: self.learners_next.clone(),
            auto_leave: self.auto_leave,
        }
    }
}

/// Which member and cluster a WAL belongs to (`etcdserverpb.Metadata`, the
/// WAL metadata record).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalMetadata {
    /// ID of the member owning the WAL.
    pub node_id: u64,
    /// Cluster ID.
    pub cluster_id: u64,
}

impl WalMetadata {
    pub(crate) fn from_proto(m: etcdserverpb::Metadata) -> WalMetadata {
        WalMetadata {
            node_id: m.node_id,
            cluster_id: m.cluster_id,
        }
    }

    pub(crate) fn to_proto(self) -> etcdserverpb::Metadata {
        etcdserverpb::Metadata {
            node_id: self.node_id,
            cluster_id: self.cluster_id,
        }
    }
}

/// A WAL snapshot marker (`walpb.Snapshot`): the raft snapshot a WAL
/// position belongs to. etcd 3.5 added its membership, so it is built with
/// [`new`](Self::new) or from [`Default`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalSnapshot {
    /// Raft index of the snapshot.
    pub index: u64,
    /// Raft term of the snapshot.
    pub term: u64,
    /// The membership at the snapshot (etcd 3.5+ only; 3.4 never writes
    /// it).
    pub conf_state: Option<ConfState>,
}

impl WalSnapshot {
    /// A marker at `index` and `term` with membership `conf_state`.
    pub fn new(index: u64, term: u64, conf_state: Option<ConfState>) -> WalSnapshot {
        WalSnapshot {
            index,
            term,
            conf_state,
        }
    }

    pub(crate) fn from_proto(s: walpb::Snapshot) -> WalSnapshot {
        WalSnapshot {
            index: s.index,
            term: s.term,
            conf_state: s.conf_state.map(ConfState::from_proto),
        }
    }

    pub(crate) fn to_proto(&self) -> walpb::Snapshot {
        walpb::Snapshot {
            index: self.index,
            term: self.term,
            conf_state: self.conf_state.as_ref().map(ConfState::to_proto),
        }
    }
}

/// A raft snapshot (`raftpb.Snapshot`), what a `.snap` file holds: its
/// metadata (index, term, membership) and the application state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftSnapshot {
    /// Raft index of the snapshot.
    pub index: u64,
    /// Raft term of the snapshot.
    pub term: u64,
    /// Membership at the snapshot.
    pub conf_state: ConfState,
    /// Application state; for etcd the v2 store JSON.
    pub data: Option<Vec<u8>>,
}

impl RaftSnapshot {
    pub(crate) fn from_proto(s: raftpb::Snapshot) -> RaftSnapshot {
        RaftSnapshot {
            index: s.metadata.index,
            term: s.metadata.term,
            conf_state: ConfState::from_proto(s.metadata.conf_state),
            data: s.data,
        }
    }

    pub(crate) fn to_proto(&self) -> raftpb::Snapshot {
        raftpb::Snapshot {
            data: self.data.clone(),
            metadata: raftpb::SnapshotMetadata {
                conf_state: self.conf_state.to_proto(),
                index: self.index,
                term: self.term,
            },
        }
    }
}
