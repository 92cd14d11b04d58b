//! The compatibility matrix of the README, cell by cell: snapshots made by
//! etcd 3.4, 3.5, 3.6 and 3.7 (`small-vNN.db`) restored for targets 3.4,
//! 3.5, 3.6 and 3.7.
//!
//! * Targets 3.4 and 3.5, live: the same restore by `etcdctl 3.4.23` /
//!   `etcdutl 3.5.1` writes the same WAL and `.snap` bytes, the same files
//!   and modes and the same bucket contents (Go bbolt's reading) as ours,
//!   except the storage version our forced restore of 3.6/3.7 data migrates
//!   down (the old tools leave it); then etcd 3.4.23 / 3.5.1 boots ours.
//! * Targets 3.6 and 3.7, recorded: the WAL and `.snap` (which depend only
//!   on the flags) are byte-identical to what etcdutl 3.6.14 / 3.7.1 wrote
//!   for the same flags (`golden/v36-defaults`, `v37-defaults`), whatever
//!   release made the snapshot.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use etcdsnap::DataDir;
use support::etcd::ClusterSpec;
use support::tools::{EtcdBins, EtcdVersion};
use support::{fixtures, oracles, require_tool, tools};

const SOURCES: [&str; 4] = [
    "small-v34.db",
    "small-v35.db",
    "small-v36.db",
    "small-v37.db",
];
const WAL: &str = "0000000000000000-0000000000000000.wal";
const SNAP: &str = "0000000000000001-0000000000000001.snap";
/// `meta` / `storageVersion`, hex, as boltcheck dumps them.
const STORAGE_VERSION_ROW: &str = "6d657461 73746f7261676556657273696f6e ";

fn ours(snapshot: &Path, dir: &Path, args: &[String]) {
    let out = Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
        .args(["snapshot", "restore"])
        .arg(snapshot)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run etcdsnap");
    assert!(
        out.status.success(),
        "etcdsnap {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Files under `root` with modes and contents (the WAL by its records).
fn listing(root: &Path) -> Vec<(String, u32, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            let md = std::fs::symlink_metadata(&p).expect("lstat");
            let rel = p.strip_prefix(root).expect("inside").display().to_string();
            let content = if md.is_dir() {
                stack.push(p.clone());
                None
            } else if rel.ends_with(".snap") || rel.ends_with(".wal") {
                Some(std::fs::read(&p).expect("read"))
            } else {
                None
            };
            out.push((rel, md.permissions().mode() & 0o777, content));
        }
    }
    out.sort();
    out
}

fn dump(db: &Path, drop_storage_version: bool) -> Vec<String> {
    let d = oracles::run_boltcheck("dump", db);
    assert!(d.success(), "{}", d.stderr);
    d.stdout
        .lines()
        .filter(|l| !(drop_storage_version && l.starts_with(STORAGE_VERSION_ROW)))
        .map(str::to_owned)
        .collect()
}

fn live_cell(bins: &EtcdBins, target: &str, source: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let snapshot = fixtures::snapshot(source);
    let newer = source.contains("v36") || source.contains("v37");
    let spec = ClusterSpec::new(bins, 1).data_dir(0, &tmp.path().join("ours"));
    let mut args: Vec<String> = vec![
        "--name".into(),
        "m1".into(),
        "--initial-cluster".into(),
        spec.initial_cluster(),
        "--initial-advertise-peer-urls".into(),
        spec.members[0].peer_url(),
        "--initial-cluster-token".into(),
        spec.token.clone(),
    ];
    let theirs_dir = tmp.path().join("theirs");
    let mut targs = args.clone();
    targs.extend([
        "--data-dir".into(),
        theirs_dir.to_string_lossy().into_owned(),
    ]);
    let targs: Vec<&str> = targs.iter().map(String::as_str).collect();
    let theirs = oracles::run_restore(bins, &snapshot, &targs);
    assert!(theirs.success(), "{source} -> {target}: {theirs}");

    args.extend(["--target-version".into(), target.into()]);
    if newer {
        args.push("--force".into());
    }
    let ours_dir = tmp.path().join("ours");
    ours(&snapshot, &ours_dir, &args);

    assert_eq!(
        listing(&ours_dir),
        listing(&theirs_dir),
        "{source} -> {target}: files, modes, WAL and .snap"
    );
    // Byte for byte the old tools leave a 3.6/3.7 storage version in place;
    // the forced restore migrates it down (3.4/3.5 read no such key).
    assert_eq!(
        dump(&DataDir::new(&ours_dir).db_path(), newer),
        dump(&DataDir::new(&theirs_dir).db_path(), newer),
        "{source} -> {target}: bucket contents"
    );
    let cluster = spec.start();
    let ctl = cluster.ctl();
    assert!(
        ctl.get("name").is_some(),
        "{source} -> {target}: key served"
    );
    ctl.put("k", "v");
}

#[test]
fn targets_3_4_and_3_5_match_the_live_tools_and_boot() {
    require_tool!(tools::boltcheck());
    for (version, target) in [(EtcdVersion::V34, "3.4"), (EtcdVersion::V35, "3.5")] {
        let bins = require_tool!(tools::etcd_suite(version));
        for source in SOURCES {
            live_cell(&bins, target, source);
        }
    }
}

#[test]
fn targets_3_6_and_3_7_match_the_recorded_raft_files_from_every_source() {
    for (target, golden) in [("3.6", "v36-defaults"), ("3.7", "v37-defaults")] {
        let g = fixtures::testdata("golden").join(golden);
        let prefix = std::fs::read(g.join(format!("{WAL}.prefix"))).expect("golden WAL");
        let snap = std::fs::read(g.join(SNAP)).expect("golden .snap");
        for source in SOURCES {
            let tmp = tempfile::tempdir().expect("tempdir");
            let d = tmp.path().join("d");
            let mut args = vec!["--target-version".to_string(), target.into()];
            if target == "3.6" && source.contains("v37") {
                args.push("--force".into());
            }
            ours(&fixtures::snapshot(source), &d, &args);
            let layout = DataDir::new(&d);
            let wal = std::fs::read(layout.wal_dir().join(WAL)).expect("WAL");
            assert_eq!(
                &wal[..prefix.len()],
                &prefix[..],
                "{source} -> {target}: WAL"
            );
            assert!(support::files::all_zero(&wal[prefix.len()..]));
            let ours_snap = std::fs::read(layout.snap_dir().join(SNAP)).expect(".snap");
            assert_eq!(ours_snap, snap, "{source} -> {target}: .snap");
        }
    }
}
