//! The raft files layer against the WAL and `.snap` files written by real
//! `etcdctl 3.4.23 snapshot restore`, `etcdutl 3.5.1 snapshot restore` and
//! (recorded) `etcdutl 3.6.14` / `3.7.1 snapshot restore`
//! (`testdata/golden/<case>/`). 3.6 and 3.7 create the v2 store members in
//! Go map order: every distinct `.snap` of 40 runs is kept
//! (`NAME.snap`, `NAME.snap.variant-N`), and ours must be one of them.
//!
//! Member IDs, cluster ID and member JSON are computed here from each case's
//! `args`, independently of the library (which will get its own module for
//! that later).

use std::path::{Path, PathBuf};

use etcdsnap::internal::go::{GoRelease, json as gojson};
use etcdsnap::internal::raft::{
    Flavour, StoreMember, WalMember, encode_snap, restore_snapshot, restore_wal_prefix,
    write_segment_file,
};
use etcdsnap::raft::snap::{decode_snap, snap_file_name};
use etcdsnap::raft::wal::{WalPayload, decode_segment, segment_file_name};
use etcdsnap::raft::{
    ConfChange, ConfChangeKind, ConfState, Entry, EntryKind, HardState, WalMetadata, WalSnapshot,
};
use sha1::{Digest, Sha1};

const CASES: [&str; 12] = [
    "v34-defaults",
    "v34-three-members",
    "v34-escaping",
    "v35-defaults",
    "v35-three-members",
    "v35-escaping",
    "v36-defaults",
    "v36-three-members",
    "v36-escaping",
    "v37-defaults",
    "v37-three-members",
    "v37-escaping",
];

fn case_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/golden")
        .join(case)
}

/// One member of the restored cluster, as the test computes it.
#[derive(Debug)]
struct Member {
    id: u64,
    name: String,
    /// Canonical, sorted.
    peer_urls: Vec<String>,
}

impl Member {
    /// The member JSON of etcd's `membership.Member` (compact, Go escaping).
    fn json(&self) -> Vec<u8> {
        let mut s = format!("{{\"id\":{},\"peerURLs\":[", self.id);
        for (i, u) in self.peer_urls.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            gojson::write_str(&mut s, u.as_bytes(), GoRelease::GO1_16);
        }
        s.push(']');
        if !self.name.is_empty() {
            s.push_str(",\"name\":");
            gojson::write_str(&mut s, self.name.as_bytes(), GoRelease::GO1_16);
        }
        s.push('}');
        s.into_bytes()
    }
}

/// What a golden case restores.
#[derive(Debug)]
struct Case {
    flavour: Flavour,
    local_id: u64,
    cluster_id: u64,
    /// Sorted by ascending numeric ID.
    members: Vec<Member>,
    /// Member IDs in `--initial-cluster` order.
    initial_order: Vec<u64>,
    dir: PathBuf,
}

fn be8(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().unwrap())
}

/// Go `url.Parse(...).String()` for the URLs in the cases: lower-cased
/// scheme, the rest unchanged.
fn canonical_url(u: &str) -> String {
    let (scheme, rest) = u.split_once("://").expect("url with scheme");
    format!("{}://{}", scheme.to_ascii_lowercase(), rest)
}

fn load_case(case: &str) -> Case {
    let dir = case_dir(case);
    let args = std::fs::read_to_string(dir.join("args")).unwrap();
    let mut lines = args.lines().skip(1).filter(|l| !l.is_empty());
    let mut name = "default".to_string();
    let mut initial_cluster = "default=http://localhost:2380".to_string();
    let mut token = "etcd-cluster".to_string();
    while let Some(flag) = lines.next() {
        match flag {
            "--skip-hash-check" => {}
            "--name" => name = lines.next().unwrap().to_string(),
            "--initial-cluster" => initial_cluster = lines.next().unwrap().to_string(),
            "--initial-cluster-token" => token = lines.next().unwrap().to_string(),
            "--initial-advertise-peer-urls" => {
                lines.next().unwrap();
            }
            other => panic!("{case}: unexpected argument {other}"),
        }
    }

    // name -> URLs, in order of first appearance.
    let mut by_name: Vec<(String, Vec<String>)> = Vec::new();
    for entry in initial_cluster.split(',') {
        let (n, u) = entry.split_once('=').unwrap();
        let u = canonical_url(u);
        match by_name.iter_mut().find(|(m, _)| m == n) {
            Some((_, urls)) => urls.push(u),
            None => by_name.push((n.to_string(), vec![u])),
        }
    }
    let mut members: Vec<Member> = by_name
        .into_iter()
        .map(|(name, mut peer_urls)| {
            peer_urls.sort();
            let mut h = Sha1::new();
            for u in &peer_urls {
                h.update(u.as_bytes());
            }
            h.update(token.as_bytes());
            Member {
                id: be8(&h.finalize()),
                name,
                peer_urls,
            }
        })
        .collect();
    let initial_order: Vec<u64> = members.iter().map(|m| m.id).collect();
    members.sort_by_key(|m| m.id);
    let mut h = Sha1::new();
    for m in &members {
        h.update(m.id.to_be_bytes());
    }
    let cluster_id = be8(&h.finalize());
    let local_id = members.iter().find(|m| m.name == name).unwrap().id;
    let flavour = match &case[..3] {
        "v34" => Flavour::V34,
        "v35" => Flavour::V35,
        "v36" => Flavour::V36,
        "v37" => Flavour::V37,
        other => panic!("unknown flavour {other}"),
    };
    Case {
        flavour,
        local_id,
        cluster_id,
        members,
        initial_order,
        dir,
    }
}

/// The single file in the case dir with this suffix: (name, bytes).
fn golden_file(case: &Case, suffix: &str) -> (String, Vec<u8>) {
    let mut found = std::fs::read_dir(&case.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(suffix));
    let name = found
        .next()
        .unwrap_or_else(|| panic!("no {suffix} in {:?}", case.dir));
    assert!(found.next().is_none());
    let bytes = std::fs::read(case.dir.join(&name)).unwrap();
    (name, bytes)
}

fn wal_members(case: &Case) -> Vec<WalMember> {
    case.members
        .iter()
        .map(|m| WalMember {
            id: m.id,
            context: m.json(),
        })
        .collect()
}

/// The recorded `.snap` variants of a case (one for 3.4/3.5).
fn snap_variants(case: &Case) -> Vec<Vec<u8>> {
    let mut names: Vec<String> = std::fs::read_dir(&case.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".snap") || n.contains(".snap.variant-"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|n| std::fs::read(case.dir.join(n)).unwrap())
        .collect()
}

/// The members in the order the case's etcd creates them: ascending IDs
/// (3.4, 3.5), `--initial-cluster` order (3.6, 3.7: one of the recorded
/// rotations).
fn store_members(case: &Case) -> Vec<StoreMember> {
    let order: Vec<u64> = match case.flavour {
        Flavour::V34 | Flavour::V35 => case.members.iter().map(|m| m.id).collect(),
        _ => case.initial_order.clone(),
    };
    order
        .iter()
        .map(|id| case.members.iter().find(|m| m.id == *id).unwrap())
        .map(|m| StoreMember {
            id: m.id,
            peer_urls: m.peer_urls.clone(),
        })
        .collect()
}

fn wal_size(case: &Case) -> usize {
    std::fs::read_to_string(case.dir.join("wal-size"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The records the golden WAL must hold, written out from the restore
/// algorithm (§4.6), not from the library's builder.
fn expected_wal(case: &Case) -> Vec<(WalPayload, Option<ConfChange>)> {
    let n = case.members.len() as u64;
    let mut out = vec![
        (WalPayload::Crc, None),
        (
            WalPayload::Metadata(WalMetadata {
                node_id: case.local_id,
                cluster_id: case.cluster_id,
            }),
            None,
        ),
        (WalPayload::Snapshot(WalSnapshot::new(0, 0, None)), None),
    ];
    // 3.7 (google.golang.org/protobuf) writes only the fields etcd sets.
    let gogo = !matches!(case.flavour, Flavour::V37);
    for (i, m) in case.members.iter().enumerate() {
        let cc = ConfChange {
            id: gogo.then_some(0),
            kind: ConfChangeKind::AddNode,
            node_id: m.id,
            context: Some(m.json()),
        };
        out.push((
            WalPayload::Entry(Entry {
                term: 1,
                index: i as u64 + 1,
                kind: EntryKind::ConfChange,
                data: Some(cc.to_bytes()),
            }),
            Some(cc),
        ));
    }
    out.push((
        WalPayload::State(HardState {
            term: 1,
            vote: case.members[0].id,
            commit: n,
        }),
        None,
    ));
    let voters: Vec<u64> = case.members.iter().map(|m| m.id).collect();
    out.push((
        WalPayload::Snapshot(WalSnapshot::new(
            n,
            1,
            match case.flavour {
                Flavour::V34 => None,
                _ => Some(conf_state(voters, gogo)),
            },
        )),
        None,
    ));
    out
}

/// `ConfState{voters}`, with `auto_leave: false` where gogo writes it.
fn conf_state(voters: Vec<u64>, gogo: bool) -> ConfState {
    let mut cs = ConfState::default();
    cs.voters = voters;
    cs.auto_leave = gogo.then_some(false);
    cs
}

#[test]
fn id_computation_matches_the_documented_vectors() {
    // etcd-restore.md §2.5, checked against real etcd.
    let c = load_case("v34-defaults");
    assert_eq!(c.members.len(), 1);
    assert_eq!(c.local_id, 0x8e9e05c52164694d);
    assert_eq!(c.cluster_id, 0xcdf818194e3a8c32);
    assert_eq!(
        c.members[0].json(),
        br#"{"id":10276657743932975437,"peerURLs":["http://localhost:2380"],"name":"default"}"#
    );
    // The escaping case has a 14-hex-digit ID that sorts first numerically.
    let c = load_case("v35-escaping");
    let hex: Vec<String> = c.members.iter().map(|m| format!("{:x}", m.id)).collect();
    assert_eq!(hex, ["77f31c211d10e0", "13b6beb6cc424afb"]);
}

#[test]
fn wal_prefix_matches_golden() {
    for case_name in CASES {
        let case = load_case(case_name);
        let (name, golden) = golden_file(&case, ".wal.prefix");
        assert_eq!(name, format!("{}.prefix", segment_file_name(0, 0)));
        let ours = restore_wal_prefix(
            case.local_id,
            case.cluster_id,
            &wal_members(&case),
            case.flavour,
        )
        .unwrap();
        assert_eq!(ours, golden, "{case_name}: WAL prefix differs");
    }
}

#[test]
fn snap_matches_golden() {
    for case_name in CASES {
        let case = load_case(case_name);
        let (name, _) = golden_file(&case, ".snap");
        let snap = restore_snapshot(&store_members(&case), case.flavour).unwrap();
        assert_eq!(snap_file_name(snap.term, snap.index), name, "{case_name}");
        let variants = snap_variants(&case);
        assert!(
            variants.contains(&encode_snap(&snap)),
            "{case_name}: .snap matches none of the {} recorded variants",
            variants.len()
        );
    }
}

/// 3.6/3.7 variants are the rotations of the `--initial-cluster` order, and
/// the ascending-ID order 3.4/3.5 write is not among them where it is not
/// such a rotation (`three-members`).
#[test]
fn snap_variants_are_rotations_of_the_initial_cluster() {
    for case_name in CASES
        .iter()
        .filter(|c| c.starts_with("v36") || c.starts_with("v37"))
    {
        let case = load_case(case_name);
        let variants = snap_variants(&case);
        let all = store_members(&case);
        let n = all.len();
        let rotations: Vec<Vec<u8>> = (0..n)
            .map(|r| {
                let mut m = all.clone();
                m.rotate_left(r);
                encode_snap(&restore_snapshot(&m, case.flavour).unwrap())
            })
            .collect();
        for v in &variants {
            assert!(
                rotations.contains(v),
                "{case_name}: a variant is no rotation"
            );
        }
        assert_eq!(variants.len(), n, "{case_name}: one variant per rotation");
        if case_name.ends_with("three-members") {
            let mut ascending = all.clone();
            ascending.sort_by_key(|m| m.id);
            let bytes = encode_snap(&restore_snapshot(&ascending, case.flavour).unwrap());
            assert!(
                !variants.contains(&bytes),
                "{case_name}: ascending order recorded"
            );
        }
        // The 3.4/3.5 flavours refuse a non-ascending order.
        if n > 1 && all.windows(2).any(|w| w[0].id > w[1].id) {
            assert!(restore_snapshot(&all, Flavour::V35).is_err());
        }
    }
}

#[test]
fn decoder_reads_golden_wal() {
    for case_name in CASES {
        let case = load_case(case_name);
        let (_, golden) = golden_file(&case, ".wal.prefix");
        let expected = expected_wal(&case);

        let mut full = golden.clone();
        full.resize(wal_size(&case), 0);
        for (what, bytes) in [("prefix", &golden), ("full segment", &full)] {
            let recs = decode_segment(bytes).unwrap_or_else(|e| panic!("{case_name} {what}: {e}"));
            let got: Vec<(WalPayload, Option<ConfChange>)> = recs
                .iter()
                .map(|r| (r.payload.clone(), r.conf_change.clone()))
                .collect();
            assert_eq!(got, expected, "{case_name} {what}");
            // Frames are contiguous, 8-byte aligned, and the first is at 0.
            assert_eq!(recs[0].offset, 0);
            assert!(recs.iter().all(|r| r.offset % 8 == 0));
            // Each record's CRC is the CRC-32C of all payloads so far.
            let mut all = Vec::new();
            for r in &recs[1..] {
                let data = r.payload.to_bytes().unwrap_or_default();
                all.extend_from_slice(&data);
                assert_eq!(
                    r.crc,
                    crc32c::crc32c(&all),
                    "{case_name} record at {}",
                    r.offset
                );
            }
        }
    }
}

#[test]
fn decoder_reads_golden_snap() {
    for case_name in CASES {
        let case = load_case(case_name);
        let (_, golden) = golden_file(&case, ".snap");
        let snap = decode_snap(&golden).unwrap_or_else(|e| panic!("{case_name}: {e}"));
        let n = case.members.len() as u64;
        assert_eq!(snap.index, n);
        assert_eq!(snap.term, 1);
        assert_eq!(
            snap.conf_state,
            conf_state(
                case.members.iter().map(|m| m.id).collect(),
                !matches!(case.flavour, Flavour::V37)
            )
        );
        let data = snap.data.expect("snapshot data");
        let v: serde_json::Value = serde_json::from_slice(&data).unwrap();
        assert_eq!(v["CurrentIndex"], n);
        assert_eq!(v["Stats"]["createSuccess"], n);
        for (k, sm) in store_members(&case).iter().enumerate() {
            let m = case.members.iter().find(|m| m.id == sm.id).unwrap();
            let key = format!("{:x}", m.id);
            let node = &v["Root"]["Children"]["0"]["Children"]["members"]["Children"][&key]["Children"]
                ["raftAttributes"];
            assert_eq!(node["CreatedIndex"], k as u64 + 1, "{case_name} {key}");
            let attrs: serde_json::Value =
                serde_json::from_str(node["Value"].as_str().unwrap()).unwrap();
            assert_eq!(
                attrs["peerURLs"],
                serde_json::json!(m.peer_urls),
                "{case_name} {key}"
            );
        }
        // The raw bytes are a JSON object followed by the metadata.
        assert!(data.starts_with(b"{\"Root\":"));
        assert!(data.ends_with(b",\"CurrentVersion\":2}"));
    }
}

#[test]
fn segment_file_matches_golden_layout() {
    let case = load_case("v35-three-members");
    let (_, golden) = golden_file(&case, ".wal.prefix");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(segment_file_name(0, 0));
    let prefix = restore_wal_prefix(
        case.local_id,
        case.cluster_id,
        &wal_members(&case),
        case.flavour,
    )
    .unwrap();
    write_segment_file(&path, &prefix).unwrap();
    let written = std::fs::read(&path).unwrap();
    assert_eq!(written.len(), wal_size(&case));
    assert_eq!(&written[..golden.len()], &golden[..]);
    assert!(crate::support::files::all_zero(&written[golden.len()..]));
}
