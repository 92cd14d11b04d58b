//! `.snap` files: the raft snapshot etcd keeps in `member/snap/`.
//!
//! A `.snap` file is one `snappb.Snapshot{crc, data}` message where `data` is
//! a marshalled `raftpb.Snapshot` (a [`RaftSnapshot`]) and `crc` its
//! CRC-32C. Its name is
//! `%016x-%016x.snap` of the snapshot's term and index.

use std::io::Write;
use std::path::Path;

use prost::Message;

use crate::raft::error::RaftError;
use crate::raft::proto::{raftpb, snappb};
use crate::raft::v2store::{StoreMember, store_json};
use crate::raft::{ConfState, Flavour, RaftSnapshot};

/// The name of a `.snap` file: `%016x-%016x.snap` of term and index.
///
/// ```
/// use etcdsnap::raft::snap::snap_file_name;
/// assert_eq!(snap_file_name(1, 3), "0000000000000001-0000000000000003.snap");
/// ```
pub fn snap_file_name(term: u64, index: u64) -> String {
    format!("{term:016x}-{index:016x}.snap")
}

/// The bytes of the `.snap` file holding `snapshot`.
///
/// ```
/// use etcdsnap::raft::RaftSnapshot;
/// use etcdsnap::raft::snap::decode_snap;
/// use etcdsnap::internal::raft::encode_snap;
///
/// let snap = RaftSnapshot { data: Some(b"{}".to_vec()), ..Default::default() };
/// assert_eq!(decode_snap(&encode_snap(&snap))?, snap);
/// # Ok::<(), etcdsnap::raft::RaftError>(())
/// ```
pub(crate) fn encode_snap(snapshot: &RaftSnapshot) -> Vec<u8> {
    let data = snapshot.to_proto().encode_to_vec();
    snappb::Snapshot {
        crc: crc32c::crc32c(&data),
        data: Some(data),
    }
    .encode_to_vec()
}

/// Decodes the bytes of a `.snap` file, as etcd's `snap.Read` does: an empty
/// file, empty data or a zero CRC is [`RaftError::SnapEmpty`]; a CRC that
/// does not match the data is [`RaftError::SnapCrcMismatch`].
///
/// ```
/// use etcdsnap::raft::RaftError;
/// use etcdsnap::raft::snap::decode_snap;
///
/// assert!(matches!(decode_snap(&[]), Err(RaftError::SnapEmpty)));
/// // crc 1, data "x": the CRC does not match.
/// assert!(matches!(decode_snap(&[0x08, 1, 0x12, 1, b'x']), Err(RaftError::SnapCrcMismatch { .. })));
/// ```
pub fn decode_snap(bytes: &[u8]) -> Result<RaftSnapshot, RaftError> {
    if bytes.is_empty() {
        return Err(RaftError::SnapEmpty);
    }
    let outer = snappb::Snapshot::decode(bytes).map_err(|source| RaftError::SnapDecode {
        what: "snappb.Snapshot",
        source,
    })?;
    let data = outer.data.as_deref().unwrap_or(&[]);
    if data.is_empty() || outer.crc == 0 {
        return Err(RaftError::SnapEmpty);
    }
    let computed = crc32c::crc32c(data);
    if computed != outer.crc {
        return Err(RaftError::SnapCrcMismatch {
            stored: outer.crc,
            computed,
        });
    }
    raftpb::Snapshot::decode(data)
        .map(RaftSnapshot::from_proto)
        .map_err(|source| RaftError::SnapDecode {
            what: "raftpb.Snapshot",
            source,
        })
}

/// The raft snapshot `snapshot restore` writes: data = the v2 store JSON of
/// [`store_json`], index = number of members, term = 1, and
/// `ConfState{voters: all member IDs}` in ascending ID order (every
/// flavour; 3.7 leaves `auto_leave: false` out).
///
/// `members` are in creation order, with [`store_json`]'s rules.
///
/// ```
/// use etcdsnap::internal::raft::Flavour;
/// use etcdsnap::raft::snap::snap_file_name;
/// use etcdsnap::internal::raft::restore_snapshot;
/// use etcdsnap::internal::raft::StoreMember;
///
/// let members = [StoreMember { id: 7, peer_urls: vec!["http://127.0.0.1:2380".into()] }];
/// let snap = restore_snapshot(&members, Flavour::V34)?;
/// assert_eq!(snap.conf_state.voters, [7]);
/// let name = snap_file_name(snap.term, snap.index);
/// assert_eq!(name, "0000000000000001-0000000000000001.snap");
/// # Ok::<(), etcdsnap::raft::RaftError>(())
/// ```
pub(crate) fn restore_snapshot(
    members: &[StoreMember],
    flavour: Flavour,
) -> Result<RaftSnapshot, RaftError> {
    let json = store_json(members, flavour)?;
    let mut voters: Vec<u64> = members.iter().map(|m| m.id).collect();
    voters.sort_unstable();
    Ok(RaftSnapshot {
        index: members.len() as u64,
        term: 1,
        conf_state: ConfState {
            voters,
            auto_leave: flavour.auto_leave(),
            ..Default::default()
        },
        data: Some(json.into_bytes()),
    })
}

/// Writes `bytes` (from [`encode_snap`]) to `path` as etcd does: create or
/// truncate with mode 0666 (before the umask), write, sync to disk.
pub(crate) fn write_snap_file(path: &Path, bytes: &[u8]) -> Result<(), RaftError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o666);
    }
    let mut file = opts
        .open(path)
        .map_err(|e| RaftError::io("create", path, e))?;
    file.write_all(bytes)
        .map_err(|e| RaftError::io("write", path, e))?;
    file.sync_all()
        .map_err(|e| RaftError::io("sync", path, e))?;
    Ok(())
}

/// Reads and decodes a `.snap` file with [`decode_snap`]; errors name the
/// file.
///
/// ```
/// use etcdsnap::raft::snap::read_snap_file;
///
/// // What `etcdutl 3.5 snapshot restore` wrote for one member.
/// let path = "testdata/golden/v35-defaults/0000000000000001-0000000000000001.snap";
/// let snap = read_snap_file(std::path::Path::new(path))?;
/// assert_eq!((snap.term, snap.index, snap.conf_state.voters.len()), (1, 1, 1));
/// # Ok::<(), etcdsnap::raft::RaftError>(())
/// ```
pub fn read_snap_file(path: &Path) -> Result<RaftSnapshot, RaftError> {
    let bytes = std::fs::read(path).map_err(|e| RaftError::io("read", path, e))?;
    decode_snap(&bytes).map_err(|e| e.in_file(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        encode_snap(&RaftSnapshot {
            index: 2,
            term: 1,
            conf_state: ConfState {
                voters: vec![1, 2],
                auto_leave: Some(false),
                ..Default::default()
            },
            data: Some(b"{\"a\":1}".to_vec()),
        })
    }

    #[test]
    fn corrupt_snaps_are_errors() {
        let good = sample();
        assert!(decode_snap(&good).is_ok());
        // Every truncation fails (decode error, empty or crc mismatch).
        for cut in 0..good.len() {
            assert!(decode_snap(&good[..cut]).is_err(), "cut {cut}");
        }
        // Every single-bit flip of the data part fails.
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert!(decode_snap(&bad).is_err(), "flip {i}");
        }
    }

    #[test]
    fn empty_data_or_zero_crc_is_empty() {
        let zero_crc = snappb::Snapshot {
            crc: 0,
            data: Some(b"x".to_vec()),
        }
        .encode_to_vec();
        assert!(matches!(decode_snap(&zero_crc), Err(RaftError::SnapEmpty)));
        let no_data = snappb::Snapshot { crc: 5, data: None }.encode_to_vec();
        assert!(matches!(decode_snap(&no_data), Err(RaftError::SnapEmpty)));
    }

    #[test]
    fn garbage_is_a_decode_error() {
        assert!(matches!(
            decode_snap(&[0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Err(RaftError::SnapDecode {
                what: "snappb.Snapshot",
                ..
            })
        ));
        // Valid container, CRC right, contents not a raftpb.Snapshot.
        let data = vec![0x0a, 0x7f];
        let bytes = snappb::Snapshot {
            crc: crc32c::crc32c(&data),
            data: Some(data),
        }
        .encode_to_vec();
        assert!(matches!(
            decode_snap(&bytes),
            Err(RaftError::SnapDecode {
                what: "raftpb.Snapshot",
                ..
            })
        ));
    }

    #[test]
    fn read_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.snap");
        write_snap_file(&path, b"").unwrap();
        let err = read_snap_file(&path).unwrap_err();
        assert!(
            err.to_string().contains("x.snap: snap: empty snapshot"),
            "{err}"
        );
    }
}
