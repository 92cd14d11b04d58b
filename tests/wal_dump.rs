//! `etcdsnap wal dump` reads the WAL and `.snap` files the real tools write.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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

/// A data dir whose WAL is the golden 3-member segment passed through `edit`
/// (which gets the segment's bytes and the offsets of its records).
fn golden_with(mut edit: impl FnMut(&mut Vec<u8>, &[u64])) -> tempfile::TempDir {
    let golden = fixtures::testdata("golden").join("v35-three-members");
    let tmp = tempfile::tempdir().expect("tempdir");
    let wal = tmp.path().join("member/wal");
    std::fs::create_dir_all(&wal).expect("mkdir");
    for e in std::fs::read_dir(&golden).expect("golden") {
        let p = e.expect("entry").path();
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        if let Some(seg) = name.strip_suffix(".prefix") {
            let mut bytes = std::fs::read(&p).expect("read");
            let offsets: Vec<u64> = etcdsnap::raft::wal::decode_segment(&bytes)
                .expect("golden decodes")
                .iter()
                .map(|r| r.offset)
                .collect();
            edit(&mut bytes, &offsets);
            std::fs::write(wal.join(seg), bytes).expect("write");
        }
    }
    tmp
}

fn dump_raw(dir: &Path, json: bool) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_etcdsnap"));
    if json {
        c.args(["-w", "json"]);
    }
    c.args(["wal", "dump"]).arg(dir).output().expect("run")
}

#[test]
fn a_torn_tail_prints_every_record_before_it_and_where_it_stopped() {
    let full = dump(golden_with(|_, _| {}).path());
    let n = full["segments"][0]["records"]
        .as_array()
        .expect("records")
        .len();
    // The last record cut in the middle, as a crash leaves it; then its
    // body zero-filled (a sector that never reached the disk).
    let cut = golden_with(|b, offs| {
        let last = *offs.last().expect("records") as usize;
        b.truncate(last + 12);
    });
    let zeroed = golden_with(|b, offs| {
        let last = *offs.last().expect("records") as usize;
        let end = b.len();
        b[last + 8..end].fill(0);
        b.resize(64_000_000, 0);
    });
    for (what, dir, err) in [
        ("cut", &cut, "truncated frame"),
        ("zeroed", &zeroed, "torn write"),
    ] {
        let o = dump_raw(dir.path(), true);
        assert!(
            o.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: Value = serde_json::from_slice(&o.stdout).expect("json");
        let seg = &v["segments"][0];
        let recs = seg["records"].as_array().expect("records");
        assert_eq!(recs.len(), n - 1, "{what}");
        assert_eq!(
            recs[..],
            full["segments"][0]["records"].as_array().expect("full")[..n - 1]
        );
        let stopped = &seg["stopped"];
        assert_eq!(stopped["tornTail"], true, "{what}: {stopped}");
        assert_eq!(
            stopped["offset"],
            full["segments"][0]["records"][n - 1]["offset"],
            "{what}: stops where the last record starts"
        );
        assert!(
            stopped["error"].as_str().expect("error").contains(err),
            "{what}: {stopped}"
        );
        // The text form says the same.
        let o = dump_raw(dir.path(), false);
        assert!(o.status.success(), "{what}");
        let text = String::from_utf8_lossy(&o.stdout);
        let last = text.lines().last().expect("lines");
        assert!(
            last.starts_with(&format!("{} records, then stopped at offset", n - 1))
                && last.contains(err),
            "{what}: {last}"
        );
    }
}

#[test]
fn a_corrupt_record_before_the_end_fails_after_printing_what_precedes_it() {
    let dir = golden_with(|b, offs| {
        // Flip a byte inside the third record's payload: a CRC mismatch
        // with valid records after it is corruption, not a torn tail.
        let at = offs[2] as usize + 12;
        b[at] ^= 0x01;
    });
    let o = dump_raw(dir.path(), false);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        text.lines().filter(|l| l.starts_with('@')).count(),
        2,
        "{text}"
    );
    assert!(text.contains("stopped at offset"), "{text}");
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("Error: "));
}
