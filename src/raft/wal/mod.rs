//! WAL segments: framing, CRC chaining, encoding, decoding, and the record
//! sequence a snapshot restore writes.
//!
//! A segment is a sequence of frames, each starting at an 8-byte aligned
//! offset: an 8-byte little-endian length word (low 56 bits: length `L` of the
//! marshalled `walpb.Record`; top byte
//! `0x80 | P` when `P = (8 - L % 8) % 8` padding bytes follow, else 0), the `L`
//! record bytes, then `P` zero bytes. A zero length word (the preallocated
//! zero tail) or the end of the data ends the segment.
//!
//! Every record except CRC records stores the running CRC-32C of all record
//! payloads since the chain started (the encoder keeps it); a CRC record
//! stores the running value and lets a reader resynchronise with it.
//!
//! * [`WalDecoder`] / [`decode_segment`] read frames, bounds-checked and
//!   CRC-verified; [`WalReader`] streams them from a file;
//! * the encoder and the record sequence `snapshot restore` writes (in a
//!   preallocated segment file) are the crate's own.

mod decoder;
pub(crate) mod encoder;
mod reader;
pub(crate) mod restore;

#[cfg(test)]
mod proptests;

pub use decoder::{
    Resync, WalDecoder, WalRecord, decode_segment, find_records_after, read_segment_file,
};
pub(crate) use encoder::WalEncoder;
pub use reader::WalReader;
pub(crate) use restore::{WalMember, restore_wal_prefix, write_segment_file};

use crate::raft::{Entry, HardState, WalMetadata, WalSnapshot};

/// Size of a WAL segment file: 64,000,000 bytes (decimal, not 64 MiB).
pub const SEGMENT_SIZE_BYTES: u64 = 64 * 1000 * 1000;

/// etcd's `maxWALEntrySizeLimit`: a frame whose record plus padding reaches
/// 10 MiB is rejected by the reader.
pub const MAX_RECORD_SIZE_BYTES: u64 = 10 * 1024 * 1024;

/// Size of a frame's length word.
pub const FRAME_HEADER_BYTES: usize = 8;

/// The type of a WAL record (`walpb.Record.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordType {
    /// 1: payload is a [`WalMetadata`] (`etcdserverpb.Metadata`).
    Metadata,
    /// 2: payload is an [`Entry`] (`raftpb.Entry`).
    Entry,
    /// 3: payload is a [`HardState`] (`raftpb.HardState`).
    State,
    /// 4: no payload; the record carries the running CRC.
    Crc,
    /// 5: payload is a [`WalSnapshot`] (`walpb.Snapshot`).
    Snapshot,
}

impl RecordType {
    /// The numeric value written in `walpb.Record.type`.
    ///
    /// ```
    /// use etcdsnap::raft::wal::RecordType;
    /// assert_eq!(RecordType::Crc.code(), 4);
    /// ```
    pub fn code(self) -> i64 {
        match self {
            RecordType::Metadata => 1,
            RecordType::Entry => 2,
            RecordType::State => 3,
            RecordType::Crc => 4,
            RecordType::Snapshot => 5,
        }
    }

    /// The record type for a numeric `walpb.Record.type`, if etcd knows it.
    ///
    /// ```
    /// use etcdsnap::raft::wal::RecordType;
    /// assert_eq!(RecordType::from_code(5), Some(RecordType::Snapshot));
    /// assert_eq!(RecordType::from_code(0), None);
    /// ```
    pub fn from_code(code: i64) -> Option<RecordType> {
        match code {
            1 => Some(RecordType::Metadata),
            2 => Some(RecordType::Entry),
            3 => Some(RecordType::State),
            4 => Some(RecordType::Crc),
            5 => Some(RecordType::Snapshot),
            _ => None,
        }
    }
}

/// The typed payload of a WAL record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalPayload {
    /// A CRC record (no payload; its CRC field carries the running CRC).
    Crc,
    /// A metadata record.
    Metadata(WalMetadata),
    /// A raft log entry.
    Entry(Entry),
    /// A raft hard state.
    State(HardState),
    /// A WAL snapshot marker.
    Snapshot(WalSnapshot),
}

impl WalPayload {
    /// The record type this payload is written with.
    ///
    /// ```
    /// use etcdsnap::raft::wal::{RecordType, WalPayload};
    /// assert_eq!(WalPayload::Crc.record_type(), RecordType::Crc);
    /// ```
    pub fn record_type(&self) -> RecordType {
        match self {
            WalPayload::Crc => RecordType::Crc,
            WalPayload::Metadata(_) => RecordType::Metadata,
            WalPayload::Entry(_) => RecordType::Entry,
            WalPayload::State(_) => RecordType::State,
            WalPayload::Snapshot(_) => RecordType::Snapshot,
        }
    }

    /// The marshalled payload, as the record's data field holds it (and
    /// its CRC covers); `None` for a CRC record, which has no data.
    ///
    /// ```
    /// use etcdsnap::raft::WalMetadata;
    /// use etcdsnap::raft::wal::WalPayload;
    ///
    /// let md = WalPayload::Metadata(WalMetadata { node_id: 1, cluster_id: 2 });
    /// assert_eq!(md.to_bytes(), Some(vec![0x08, 0x01, 0x10, 0x02]));
    /// assert_eq!(WalPayload::Crc.to_bytes(), None);
    /// ```
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        use prost::Message;
        match self {
            WalPayload::Crc => None,
            WalPayload::Metadata(m) => Some(m.to_proto().encode_to_vec()),
            WalPayload::Entry(e) => Some(e.to_proto().encode_to_vec()),
            WalPayload::State(s) => Some(s.to_proto().encode_to_vec()),
            WalPayload::Snapshot(s) => Some(s.to_proto().encode_to_vec()),
        }
    }
}

/// The name of a WAL segment file: `%016x-%016x.wal` of its sequence number
/// and the raft index of its first entry.
///
/// ```
/// use etcdsnap::raft::wal::segment_file_name;
/// assert_eq!(segment_file_name(0, 0), "0000000000000000-0000000000000000.wal");
/// assert_eq!(segment_file_name(1, 0xab), "0000000000000001-00000000000000ab.wal");
/// ```
pub fn segment_file_name(seq: u64, index: u64) -> String {
    format!("{seq:016x}-{index:016x}.wal")
}

/// The sequence number and first raft index a segment file's name holds
/// (`%016x-%016x.wal`, the reverse of [`segment_file_name`]); `None` for a
/// name etcd would not take for a segment (it ignores those).
///
/// ```
/// use etcdsnap::raft::wal::parse_segment_file_name;
/// assert_eq!(parse_segment_file_name("0000000000000002-0000000000000085.wal"), Some((2, 0x85)));
/// assert_eq!(parse_segment_file_name("0.tmp"), None);
/// ```
pub fn parse_segment_file_name(name: &str) -> Option<(u64, u64)> {
    let (seq, index) = name.strip_suffix(".wal")?.split_once('-')?;
    let hex = |s: &str| {
        (s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(s, 16).ok())
            .flatten()
    };
    Some((hex(seq)?, hex(index)?))
}

/// The padding after a record of `len` bytes: `(8 - len % 8) % 8`.
fn padding_for(len: u64) -> u64 {
    (8 - len % 8) % 8
}
