//! The protobuf messages of etcd's raft files, with gogo's wire behaviour.
//!
//! etcd 3.4–3.6 marshal these messages with gogo-protobuf generated code
//! (proto2 syntax). Its rules, which these hand-written `prost` structs
//! reproduce byte for byte:
//!
//! * fields go on the wire in ascending field-number order;
//! * `nullable=false` scalars and embedded messages are **always** written,
//!   even when zero (here: prost `required` fields);
//! * `bytes` fields and nullable embedded messages are written only when
//!   present (here: `Option`; `Some(vec![])` writes an empty field);
//! * repeated `uint64` fields are **unpacked**, one tag per element, and
//!   omitted when empty.
//!
//! Decoding accepts what gogo accepts: missing fields decode as zero or
//! `None`, unknown fields are skipped, and repeated `uint64` fields may be
//! packed or unpacked.
//!
//! The messages are grouped in modules named after the Go packages they come
//! from, because three of them are called `Snapshot`.

/// `walpb`: the WAL record container and the WAL snapshot marker.
pub mod walpb {
    /// `walpb.Record`: one WAL record (the bytes between a frame's length word
    /// and its padding).
    #[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
    pub struct Record {
        /// Record type: 1 metadata, 2 entry, 3 state, 4 crc, 5 snapshot
        /// (see `RecordType`).
        #[prost(int64, required, tag = "1")]
        pub r#type: i64,
        /// The running CRC-32C of the segment chain after this record's data.
        #[prost(uint32, required, tag = "2")]
        pub crc: u32,
        /// The payload, a marshalled message whose kind depends on `type`;
        /// `None` for CRC records.
        #[prost(bytes = "vec", optional, tag = "3")]
        pub data: Option<Vec<u8>>,
    }

    /// `walpb.Snapshot`: marks the raft snapshot a WAL position belongs to.
    #[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
    pub struct Snapshot {
        /// Raft index of the snapshot.
        #[prost(uint64, required, tag = "1")]
        pub index: u64,
        /// Raft term of the snapshot.
        #[prost(uint64, required, tag = "2")]
        pub term: u64,
        /// The membership at the snapshot (etcd 3.5+ only; 3.4 never writes
        /// it).
        #[prost(message, optional, tag = "3")]
        pub conf_state: Option<super::raftpb::ConfState>,
    }
}

/// `etcdserverpb`: the WAL metadata record's payload.
pub mod etcdserverpb {
    /// `etcdserverpb.Metadata`: which member and cluster a WAL belongs to.
    #[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
    pub struct Metadata {
        /// Member ID of the member owning the WAL (`NodeID`).
        #[prost(uint64, required, tag = "1")]
        pub node_id: u64,
        /// Cluster ID (`ClusterID`).
        #[prost(uint64, required, tag = "2")]
        pub cluster_id: u64,
    }
}

/// `raftpb`: raft log entries, configuration changes and snapshots.
pub mod raftpb {
    /// `raftpb.EntryType`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    // etcd's variant names, prefix and all.
    #[allow(clippy::enum_variant_names)]
    #[repr(i32)]
    pub enum EntryType {
        /// `EntryNormal`: a proposal.
        EntryNormal = 0,
        /// `EntryConfChange`: data is a [`ConfChange`].
        EntryConfChange = 1,
        /// `EntryConfChangeV2`: data is a `ConfChangeV2` (not modelled here).
        EntryConfChangeV2 = 2,
    }

    /// `raftpb.ConfChangeType`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    // etcd's variant names, prefix and all.
    #[allow(clippy::enum_variant_names)]
    #[repr(i32)]
    pub enum ConfChangeType {
        /// `ConfChangeAddNode`.
        ConfChangeAddNode = 0,
        /// `ConfChangeRemoveNode`.
        ConfChangeRemoveNode = 1,
        /// `ConfChangeUpdateNode`.
        ConfChangeUpdateNode = 2,
        /// `ConfChangeAddLearnerNode`.
        ConfChangeAddLearnerNode = 3,
    }

    /// `raftpb.Entry`: one raft log entry.
    #[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
    pub struct Entry {
        /// Entry type, an [`EntryType`] value.
        #[prost(enumeration = "EntryType", required, tag = "1")]
        pub r#type: i32,
        /// Raft term.
        #[prost(uint64, required, tag = "2")]
        pub term: u64,
        /// Raft index.
        #[prost(uint64, required, tag = "3")]
        pub index: u64,
        /// Payload; for [`EntryType::EntryConfChange`] a marshalled
        /// [`ConfChange`].
        #[prost(bytes = "vec", optional, tag = "4")]
        pub data: Option<Vec<u8>>,
    }

    /// `raftpb.ConfChange`: a single membership change.
    #[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
    pub struct ConfChange {
        /// Change ID (`ID`); 0 at restore (`Some(0)`), absent in 3.7's
        /// restore (`None`).
        #[prost(uint64, optional, tag = "1")]
        pub id: Option<u64>,
        /// Change type, a [`ConfChangeType`] value.
        #[prost(enumeration = "ConfChangeType", required, tag = "2")]
        pub r#type: i32,
        /// The member concerned (`NodeID`).
        #[prost(uint64, required, tag = "3")]
        pub node_id: u64,
        /// For etcd, the member's JSON.
        #[prost(bytes = "vec", optional, tag = "4")]
        pub context: Option<Vec<u8>>,
    }

    /// `raftpb.HardState`: the persistent raft state.
    #[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
    pub struct HardState {
        /// Current term.
        #[prost(uint64, required, tag = "1")]
        pub term: u64,
        /// Member voted for in the current term.
        #[prost(uint64, required, tag = "2")]
        pub vote: u64,
        /// Commit index.
        #[prost(uint64, required, tag = "3")]
        pub commit: u64,
    }

    /// `raftpb.ConfState`: the membership configuration.
    #[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
    pub struct ConfState {
        /// Voting members.
        #[prost(uint64, repeated, packed = "false", tag = "1")]
        pub voters: Vec<u64>,
        /// Learners.
        #[prost(uint64, repeated, packed = "false", tag = "2")]
        pub learners: Vec<u64>,
        /// Voters of the outgoing configuration during a joint change.
        #[prost(uint64, repeated, packed = "false", tag = "3")]
        pub voters_outgoing: Vec<u64>,
        /// Learners to be added when leaving a joint configuration.
        #[prost(uint64, repeated, packed = "false", tag = "4")]
        pub learners_next: Vec<u64>,
        /// Whether a joint configuration is left automatically; gogo
        /// always writes it (`Some(false)` at restore), 3.7 does not set it
        /// at restore (`None`).
        #[prost(bool, optional, tag = "5")]
        pub auto_leave: Option<bool>,
    }

    /// `raftpb.SnapshotMetadata`.
    #[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
    pub struct SnapshotMetadata {
        /// Membership at the snapshot (always written).
        #[prost(message, required, tag = "1")]
        pub conf_state: ConfState,
        /// Raft index of the snapshot.
        #[prost(uint64, required, tag = "2")]
        pub index: u64,
        /// Raft term of the snapshot.
        #[prost(uint64, required, tag = "3")]
        pub term: u64,
    }

    /// `raftpb.Snapshot`: what a `.snap` file carries (inside
    /// [`snappb::Snapshot`](super::snappb::Snapshot)).
    #[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
    pub struct Snapshot {
        /// Application state; for etcd the v2 store JSON.
        #[prost(bytes = "vec", optional, tag = "1")]
        pub data: Option<Vec<u8>>,
        /// Index, term and membership (always written).
        #[prost(message, required, tag = "2")]
        pub metadata: SnapshotMetadata,
    }
}

/// `snappb`: the `.snap` file container.
pub mod snappb {
    /// `snappb.Snapshot`: the whole content of a `.snap` file.
    #[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
    pub struct Snapshot {
        /// CRC-32C of `data`.
        #[prost(uint32, required, tag = "1")]
        pub crc: u32,
        /// A marshalled [`raftpb::Snapshot`](super::raftpb::Snapshot).
        #[prost(bytes = "vec", optional, tag = "2")]
        pub data: Option<Vec<u8>>,
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn zero_required_fields_are_written() {
        // term=0, vote=0, commit=0 still go on the wire.
        let hs = raftpb::HardState {
            term: 0,
            vote: 0,
            commit: 0,
        };
        assert_eq!(hs.encode_to_vec(), [0x08, 0, 0x10, 0, 0x18, 0]);
        // A CRC record: type 4, crc 0, no data.
        let rec = walpb::Record {
            r#type: 4,
            crc: 0,
            data: None,
        };
        assert_eq!(rec.encode_to_vec(), [0x08, 0x04, 0x10, 0x00]);
        let snap = walpb::Snapshot {
            index: 0,
            term: 0,
            conf_state: None,
        };
        assert_eq!(snap.encode_to_vec(), [0x08, 0x00, 0x10, 0x00]);
        let md = etcdserverpb::Metadata {
            node_id: 1,
            cluster_id: 2,
        };
        assert_eq!(md.encode_to_vec(), [0x08, 0x01, 0x10, 0x02]);
    }

    #[test]
    fn fields_follow_their_numbers() {
        let e = raftpb::Entry {
            r#type: raftpb::EntryType::EntryConfChange as i32,
            term: 1,
            index: 1,
            data: None,
        };
        // Type (#1), Term (#2), Index (#3).
        assert_eq!(e.encode_to_vec(), [0x08, 0x01, 0x10, 0x01, 0x18, 0x01]);
    }

    #[test]
    fn optional_zero_fields_follow_the_flavour() {
        // gogo (3.4-3.6) writes ID=0; 3.7 leaves it out.
        let gogo = raftpb::ConfChange {
            id: Some(0),
            r#type: 0,
            node_id: 7,
            context: None,
        };
        assert_eq!(gogo.encode_to_vec(), [0x08, 0, 0x10, 0, 0x18, 7]);
        let v37 = raftpb::ConfChange { id: None, ..gogo };
        assert_eq!(v37.encode_to_vec(), [0x10, 0, 0x18, 7]);
        // Unpacked voters, then auto_leave=false as gogo writes it.
        let cs = raftpb::ConfState {
            voters: vec![1, 2],
            auto_leave: Some(false),
            ..Default::default()
        };
        assert_eq!(cs.encode_to_vec(), [0x08, 1, 0x08, 2, 0x28, 0]);
        // etcd 3.7 leaves auto_leave out.
        let cs = raftpb::ConfState {
            auto_leave: None,
            ..cs
        };
        assert_eq!(cs.encode_to_vec(), [0x08, 1, 0x08, 2]);
    }
}
