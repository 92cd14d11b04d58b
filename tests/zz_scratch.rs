mod support;
#[test]
#[ignore]
fn write_corpus_to_tmp() {
    let d = std::path::Path::new(&std::env::var("CORPUS_OUT").unwrap()).to_path_buf();
    support::corrupt::write_corpus(&d);
}

#[test]
#[ignore]
fn write_big_wal() {
    use etcdsnap::raft::proto::{etcdserverpb, raftpb};
    use etcdsnap::raft::wal::{WalEncoder, WalPayload};
    let d = std::path::PathBuf::from(std::env::var("WAL_OUT").unwrap());
    std::fs::create_dir_all(d.join("member/wal")).unwrap();
    let mut enc = WalEncoder::new(0);
    enc.push(&WalPayload::Crc).unwrap();
    enc.push(&WalPayload::Metadata(etcdserverpb::Metadata {
        node_id: 1,
        cluster_id: 2,
    }))
    .unwrap();
    let mut i = 0;
    while enc.as_bytes().len() < 60_000_000 {
        i += 1;
        enc.push(&WalPayload::Entry(raftpb::Entry {
            r#type: 0,
            term: 1,
            index: i,
            data: Some(vec![0x61; 1000]),
        }))
        .unwrap();
    }
    let mut b = enc.into_bytes();
    b.resize(64_000_000, 0);
    std::fs::write(
        d.join("member/wal/0000000000000000-0000000000000000.wal"),
        b,
    )
    .unwrap();
}

#[test]
#[ignore]
fn make_synced_fixture() {
    use support::{snapmaker, tools};
    let bins = tools::etcd_suite(tools::EtcdVersion::V35).unwrap();
    let out = std::path::PathBuf::from(std::env::var("FIXTURE_OUT").unwrap());
    let rep = snapmaker::SnapshotMaker::new(&bins).make(&out, |l| {
        let big: Vec<u8> = (0..12_000u32)
            .map(|i| b'a' + (i * 7919 % 26) as u8)
            .collect();
        l.put(b"/registry/configmaps/kube-system/big", &big);
        for i in 0..20 {
            l.put(
                format!("/registry/pods/default/pod-{i:02}").as_bytes(),
                format!("pod {i}").as_bytes(),
            );
        }
        let lease = l.grant_lease(3600);
        l.put_lease(b"/registry/leases/kube-node-lease/n1", b"held", lease);
        l.delete(b"/registry/pods/default/pod-03");
        l.flush();
    });
    eprintln!("{rep:?}");
}
