//! `etcdsnap snapshot status` against the real etcdutl 3.5.1: byte-identical
//! output in every format, on every fixture (golden files recorded from
//! etcdutl by `testdata/status/generate.sh`) and, live, on the fixtures and
//! on freshly made snapshots; and the 3.6 key-count rule against a running
//! etcd's own count of live keys.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::Command;

use support::{fixtures, oracles, require_tool, snapmaker, tools};

const FORMATS: [&str; 4] = ["simple", "table", "json", "fields"];

fn ours(file: &Path, format: &str, extra: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
        .args(["snapshot", "status"])
        .arg(file)
        .args(["-w", format])
        .args(extra)
        .output()
        .expect("run etcdsnap");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn all_fixtures() -> Vec<&'static str> {
    fixtures::SAVED_SNAPSHOTS
        .iter()
        .chain(fixtures::SAVED_SNAPSHOTS_35_ONLY.iter())
        .chain(fixtures::MEMBER_DBS.iter())
        .copied()
        .collect()
}

#[test]
fn matches_etcdutl_goldens_in_every_format() {
    for name in all_fixtures() {
        for format in FORMATS {
            let golden =
                std::fs::read_to_string(fixtures::testdata(&format!("status/{name}.{format}")))
                    .expect("golden");
            let (ok, out, err) = ours(&fixtures::snapshot(name), format, &[]);
            assert!(ok, "{name} -w {format}: {err}");
            assert_eq!(out, golden, "{name} -w {format}");
        }
    }
}

#[test]
fn matches_live_etcdutl_on_fixtures() {
    require_tool!(tools::etcdutl35());
    for name in all_fixtures() {
        for format in FORMATS {
            let theirs = oracles::run_etcdutl_status(&fixtures::snapshot(name), format);
            assert!(theirs.success(), "etcdutl: {}", theirs.stderr);
            let (ok, out, err) = ours(&fixtures::snapshot(name), format, &[]);
            assert!(ok, "{name}: {err}");
            assert_eq!(out, theirs.stdout, "{name} -w {format}");
        }
    }
}

/// Keys and values of many shapes: nested-looking paths, binary bytes,
/// empty values, values that need overflow pages, deletes and a compaction.
fn load_varied(l: &mut snapmaker::Loader) {
    let mut kvs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for i in 0..3000u32 {
        let key = format!("/registry/pods/ns{}/pod-{i}", i % 13).into_bytes();
        let len = [0usize, 1, 37, 700, 3000, 9000][(i % 6) as usize];
        let value: Vec<u8> = (0..len).map(|j| (i as usize * 31 + j * 7) as u8).collect();
        kvs.push((key, value));
    }
    kvs.push((vec![0, 1, 2, 255], b"binary key".to_vec()));
    kvs.push((b"big".to_vec(), vec![b'x'; 300_000]));
    l.put_all(kvs.iter().map(|(k, v)| (k.as_slice(), v.as_slice())));
    for i in (0..3000u32).step_by(7) {
        l.delete(format!("/registry/pods/ns{}/pod-{i}", i % 13).as_bytes());
    }
    l.flush();
    l.compact(true);
    for i in (0..3000u32).step_by(5) {
        l.put(
            format!("/registry/pods/ns{}/pod-{i}", i % 13).as_bytes(),
            b"v2",
        );
    }
    l.flush();
}

fn made_snapshot_matches(version: tools::EtcdVersion) {
    let bins = require_tool!(tools::etcd_suite(version));
    let etcdutl = require_tool!(tools::etcdutl35());
    let _ = etcdutl;
    let dir = tempfile::tempdir().expect("tempdir");
    let snap = dir.path().join("made.db");
    snapmaker::SnapshotMaker::new(&bins)
        .work_dir(dir.path())
        .make(&snap, load_varied);
    for format in FORMATS {
        let theirs = oracles::run_etcdutl_status(&snap, format);
        assert!(theirs.success(), "etcdutl: {}", theirs.stderr);
        let (ok, out, err) = ours(&snap, format, &[]);
        assert!(ok, "{err}");
        assert_eq!(out, theirs.stdout, "-w {format}");
    }
}

#[test]
fn matches_live_etcdutl_on_a_fresh_3_5_snapshot() {
    made_snapshot_matches(tools::EtcdVersion::V35);
}

#[test]
fn matches_live_etcdutl_on_a_fresh_3_4_snapshot() {
    made_snapshot_matches(tools::EtcdVersion::V34);
}

/// etcd 3.6 counts live keys; a running etcd counts them too.
#[test]
fn target_3_6_counts_the_live_keys_etcd_serves() {
    let bins = require_tool!(tools::etcd_suite(tools::EtcdVersion::V35));
    let dir = tempfile::tempdir().expect("tempdir");
    let snap = dir.path().join("made.db");
    let mut live = 0u64;
    snapmaker::SnapshotMaker::new(&bins)
        .work_dir(dir.path())
        .make(&snap, |l| {
            load_varied(l);
            let r = l.call(
                "/v3/kv/range",
                r#"{"key":"AA==","range_end":"AA==","count_only":true}"#,
            );
            live = r["count"]
                .as_str()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
        });
    assert!(live > 2000, "etcd counted {live} keys");
    let (ok, out, err) = ours(&snap, "json", &["--target-version", "3.6"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["totalKey"].as_u64(), Some(live), "{out}");
    assert_eq!(
        v["version"].as_str(),
        Some(""),
        "a 3.5 db has no storageVersion"
    );
    let (_, table, _) = ours(&snap, "table", &["--target-version", "3.6"]);
    assert!(table.contains("| VERSION |"), "{table}");
}

#[test]
fn missing_file_and_bad_arguments_exit_like_etcdutl() {
    let bin = env!("CARGO_BIN_EXE_etcdsnap");
    let out = Command::new(bin)
        .args(["snapshot", "status", "no/such/file.db"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error: stat no/such/file.db: no such file or directory\n"
    );
    let out = Command::new(bin)
        .args(["snapshot", "status"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(128));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error: snapshot status requires exactly one argument\n"
    );
    let small = fixtures::snapshot("small-v35.db");
    for (w, msg) in [
        (
            "protobuf",
            "Error: protobuf not supported as output format\n",
        ),
        ("yaml", "Error: unsupported output format\n"),
    ] {
        let out = Command::new(bin)
            .args(["snapshot", "status"])
            .arg(&small)
            .args(["-w", w])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(4));
        assert_eq!(String::from_utf8_lossy(&out.stderr), msg);
    }
}
