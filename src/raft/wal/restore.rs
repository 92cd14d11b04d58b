//! The WAL that `snapshot restore` writes, and the segment file it goes in.

use std::io::Write;
use std::path::Path;

use super::{SEGMENT_SIZE_BYTES, WalEncoder, WalPayload};
use crate::raft::Flavour;
use crate::raft::error::RaftError;
use crate::raft::{
    ConfChange, ConfChangeKind, ConfState, Entry, EntryKind, HardState, WalMetadata, WalSnapshot,
};

/// A member as the restored WAL records it: its ID and the context of its
/// `ConfChangeAddNode` entry (the member JSON, built by the caller).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WalMember {
    /// Member ID.
    pub id: u64,
    /// The `ConfChange` context: the member's JSON, e.g.
    /// `{"id":10276657743932975437,"peerURLs":["http://localhost:2380"],"name":"default"}`.
    pub context: Vec<u8>,
}

/// The records `snapshot restore` writes into the new WAL, in order.
///
/// `members` must be non-empty and in strictly ascending numeric ID order,
/// and `node_id` (the member restored as `--name`) must be one of them.
/// With N members:
///
/// 1. a CRC record;
/// 2. `Metadata{node_id, cluster_id}`;
/// 3. `walpb.Snapshot{index: 0, term: 0}`;
/// 4. for each member i = 1..N, an `EntryConfChange` entry at term 1,
///    index i, carrying `ConfChange{id: 0, ConfChangeAddNode, node_id,
///    context}` (3.7 leaves the zero `id` out);
/// 5. `HardState{term: 1, vote: <smallest ID>, commit: N}`;
/// 6. `walpb.Snapshot{index: N, term: 1}`, with
///    `ConfState{voters: all IDs}` from [`Flavour::V35`] on (3.7 leaves
///    its `auto_leave: false` out).
///
/// ```
/// use etcdsnap::internal::raft::Flavour;
/// use etcdsnap::raft::wal::WalPayload;
/// use etcdsnap::internal::raft::{WalMember, restore_payloads};
///
/// let members = [WalMember { id: 1, context: b"{}".to_vec() }];
/// let recs = restore_payloads(1, 99, &members, Flavour::V34)?;
/// assert_eq!(recs.len(), 6);
/// assert_eq!(recs[0], WalPayload::Crc);
/// # Ok::<(), etcdsnap::raft::RaftError>(())
/// ```
pub fn restore_payloads(
    node_id: u64,
    cluster_id: u64,
    members: &[WalMember],
    flavour: Flavour,
) -> Result<Vec<WalPayload>, RaftError> {
    crate::raft::check_ascending_ids(members.iter().map(|m| m.id))?;
    let first = members
        .first()
        .ok_or_else(|| RaftError::InvalidMembers("no members".into()))?;
    if !members.iter().any(|m| m.id == node_id) {
        return Err(RaftError::InvalidMembers(format!(
            "local member {node_id:x} is not in the member list"
        )));
    }
    let n = members.len() as u64;

    let mut out = Vec::with_capacity(members.len() + 5);
    out.push(WalPayload::Crc);
    out.push(WalPayload::Metadata(WalMetadata {
        node_id,
        cluster_id,
    }));
    out.push(WalPayload::Snapshot(WalSnapshot::new(0, 0, None)));
    for (index, m) in (1u64..).zip(members) {
        let cc = ConfChange {
            id: flavour.writes_zero_fields().then_some(0),
            kind: ConfChangeKind::AddNode,
            node_id: m.id,
            context: Some(m.context.clone()),
        };
        out.push(WalPayload::Entry(Entry {
            term: 1,
            index,
            kind: EntryKind::ConfChange,
            data: Some(cc.to_bytes()),
        }));
    }
    out.push(WalPayload::State(HardState {
        term: 1,
        vote: first.id,
        commit: n,
    }));
    let conf_state = match flavour {
        Flavour::V34 => None,
        _ => Some(ConfState {
            voters: members.iter().map(|m| m.id).collect(),
            auto_leave: flavour.auto_leave(),
            ..Default::default()
        }),
    };
    out.push(WalPayload::Snapshot(WalSnapshot::new(n, 1, conf_state)));
    Ok(out)
}

/// The bytes `snapshot restore` writes at the start of the WAL segment: the
/// frames of [`restore_payloads`], CRC chain starting at 0. The rest of the
/// segment is zeros (see [`write_segment_file`]).
///
/// ```
/// use etcdsnap::internal::raft::Flavour;
/// use etcdsnap::raft::wal::decode_segment;
/// use etcdsnap::internal::raft::{WalMember, restore_wal_prefix};
///
/// let members = [WalMember { id: 5, context: b"{}".to_vec() }];
/// let prefix = restore_wal_prefix(5, 6, &members, Flavour::V35)?;
/// assert_eq!(prefix.len() % 8, 0);
/// assert_eq!(decode_segment(&prefix)?.len(), 6);
/// # Ok::<(), etcdsnap::raft::RaftError>(())
/// ```
pub fn restore_wal_prefix(
    node_id: u64,
    cluster_id: u64,
    members: &[WalMember],
    flavour: Flavour,
) -> Result<Vec<u8>, RaftError> {
    let mut enc = WalEncoder::new(0);
    for p in restore_payloads(node_id, cluster_id, members, flavour)? {
        enc.push(&p)?;
    }
    Ok(enc.into_bytes())
}

/// Writes a new WAL segment file at `path`: creates it (mode 0600; fails if
/// it exists), extends it to [`SEGMENT_SIZE_BYTES`] (zero-filled; the file is
/// sparse where the filesystem allows, where etcd uses `fallocate`), writes
/// `prefix` at offset 0 and syncs it to disk.
///
/// Directory handling (etcd's `<dir>.tmp` + rename, syncing the parent) is
/// the caller's job.
///
/// ```
/// use etcdsnap::raft::wal::{SEGMENT_SIZE_BYTES, segment_file_name};
/// use etcdsnap::internal::raft::write_segment_file;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join(segment_file_name(0, 0));
/// write_segment_file(&path, &[1, 2, 3])?;
/// assert_eq!(std::fs::metadata(&path)?.len(), SEGMENT_SIZE_BYTES);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_segment_file(path: &Path, prefix: &[u8]) -> Result<(), RaftError> {
    let len = prefix.len() as u64;
    if len > SEGMENT_SIZE_BYTES {
        return Err(RaftError::WalSegmentOverflow {
            len,
            limit: SEGMENT_SIZE_BYTES,
        });
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts
        .open(path)
        .map_err(|e| RaftError::io("create", path, e))?;
    file.set_len(SEGMENT_SIZE_BYTES)
        .map_err(|e| RaftError::io("preallocate", path, e))?;
    file.write_all(prefix)
        .map_err(|e| RaftError::io("write", path, e))?;
    file.sync_all()
        .map_err(|e| RaftError::io("sync", path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: u64) -> WalMember {
        WalMember {
            id,
            context: format!("{{\"id\":{id}}}").into_bytes(),
        }
    }

    #[test]
    fn rejects_bad_member_lists() {
        assert!(matches!(
            restore_payloads(1, 1, &[], Flavour::V35),
            Err(RaftError::InvalidMembers(_))
        ));
        assert!(matches!(
            restore_payloads(2, 1, &[m(2), m(1)], Flavour::V35),
            Err(RaftError::InvalidMembers(_))
        ));
        assert!(matches!(
            restore_payloads(2, 1, &[m(2), m(2)], Flavour::V35),
            Err(RaftError::InvalidMembers(_))
        ));
        assert!(matches!(
            restore_payloads(3, 1, &[m(1), m(2)], Flavour::V35),
            Err(RaftError::InvalidMembers(_))
        ));
    }

    #[test]
    fn vote_is_the_smallest_id_and_flavours_differ_only_in_the_last_record() {
        let members = [m(3), m(10), m(20)];
        let v34 = restore_payloads(20, 1, &members, Flavour::V34).unwrap();
        let v35 = restore_payloads(20, 1, &members, Flavour::V35).unwrap();
        assert_eq!(v34.len(), 8);
        assert_eq!(v34[..7], v35[..7]);
        assert_eq!(
            v34[6],
            WalPayload::State(HardState {
                term: 1,
                vote: 3,
                commit: 3
            })
        );
        match &v35[7] {
            WalPayload::Snapshot(s) => {
                assert_eq!((s.index, s.term), (3, 1));
                assert_eq!(
                    s.conf_state.as_ref().map(|c| c.voters.clone()),
                    Some(vec![3, 10, 20])
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            restore_payloads(20, 1, &members, Flavour::V36).unwrap(),
            v35
        );
    }

    #[test]
    fn segment_file_has_prefix_zeros_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wal");
        write_segment_file(&path, &[7; 24]).unwrap();
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data.len() as u64, SEGMENT_SIZE_BYTES);
        assert!(data[..24].iter().all(|&b| b == 7));
        assert!(data[24..].iter().all(|&b| b == 0));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & !0o600, 0, "mode {mode:o}");
        }
        // Refuses to overwrite.
        assert!(matches!(
            write_segment_file(&path, &[]),
            Err(RaftError::Io { .. })
        ));
    }
}
