//! `etcdsnap wal dump` reads the WAL and `.snap` files the real tools write.

mod support;

use etcdsnap::DataDir;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{fixtures, oracles, require_tool, tools};

fn dump(dir: &Path) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
        .args(["-w", "json", "wal", "dump"])
        .arg(dir)
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("json")
}

fn check_restore_shape(v: &Value, members: usize) {
    let recs = v["segments"][0]["records"].as_array().expect("records");
    let kinds: Vec<&str> = recs
        .iter()
        .filter_map(|r| r["record"]["type"].as_str())
        .collect();
    let mut want = vec!["crc", "metadata", "snapshot"];
    want.extend(std::iter::repeat_n("entry", members));
    want.extend(["state", "snapshot"]);
    assert_eq!(kinds, want);
    let voters = v["snapshot"]["confState"]["voters"]
        .as_array()
        .expect("voters")
        .clone();
    let added: Vec<Value> = recs
        .iter()
        .filter_map(|r| {
            r["record"]["confChange"]["nodeID"]
                .as_str()
                .map(Value::from)
        })
        .collect();
    assert_eq!(
        added, voters,
        "ConfChanges add exactly the .snap's voters, in order"
    );
    let state = &recs[3 + members]["record"];
    assert_eq!(state["commit"].as_u64(), Some(members as u64));
    assert_eq!(state["vote"], voters[0]);
    assert_eq!(v["snapshot"]["index"].as_u64(), Some(members as u64));
}

#[test]
fn reads_the_golden_wal_and_snap_files() {
    for case in ["v34-three-members", "v35-three-members", "v35-defaults"] {
        let golden = fixtures::testdata("golden").join(case);
        let tmp = tempfile::tempdir().expect("tempdir");
        let layout = DataDir::new(tmp.path());
        std::fs::create_dir_all(layout.wal_dir()).expect("mkdir");
        std::fs::create_dir_all(layout.snap_dir()).expect("mkdir");
        for e in std::fs::read_dir(&golden).expect("golden") {
            let p = e.expect("entry").path();
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            if let Some(wal) = name.strip_suffix(".prefix") {
                let mut bytes = std::fs::read(&p).expect("read");
                bytes.resize(64_000_000, 0);
                std::fs::write(layout.wal_dir().join(wal), bytes).expect("write");
            } else if name.ends_with(".snap") {
                std::fs::copy(&p, layout.snap_dir().join(&name)).expect("copy");
            }
        }
        let members = if case.ends_with("three-members") {
            3
        } else {
            1
        };
        check_restore_shape(&dump(tmp.path()), members);
    }
}

#[test]
fn reads_what_etcdutl_writes() {
    let bins = require_tool!(tools::etcd_suite(tools::EtcdVersion::V35));
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path().join("d");
    let ic = "a=http://127.0.0.1:2380,b=http://127.0.0.2:2380,c=http://127.0.0.3:2380,d=http://127.0.0.4:2380";
    let o = oracles::run_restore(
        &bins,
        &fixtures::snapshot("small-v35.db"),
        &[
            "--data-dir",
            d.to_str().expect("utf-8"),
            "--name",
            "c",
            "--initial-cluster",
            ic,
            "--initial-advertise-peer-urls",
            "http://127.0.0.3:2380",
        ],
    );
    o.expect_success("etcdutl restore");
    let v = dump(&d);
    check_restore_shape(&v, 4);
    // The WAL dir alone works too.
    let w = dump(&DataDir::new(&d).wal_dir());
    assert_eq!(w["segments"], v["segments"]);
}
