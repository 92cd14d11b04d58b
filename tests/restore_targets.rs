//! Which layout a restore writes for snapshots made by each etcd release,
//! and what the live binaries make of it:
//!
//! * `auto` (the default) follows the snapshot's storage version;
//! * an explicit target older than the data's storage version is refused
//!   (the message names both), leaving nothing behind;
//! * `--force` writes it anyway with the storage version migrated down,
//!   and etcd 3.5.1 / 3.4.23 boot from the result and serve the keys of
//!   the 3.6/3.7 snapshot.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::Command;

use etcdsnap::{DataDir, Snapshot};
use support::etcd::ClusterSpec;
use support::tools::EtcdVersion;
use support::{fixtures, require_tool, tools};

fn etcdsnap(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
        .args(args)
        .output()
        .expect("run etcdsnap")
}

fn summary(fixture: &str, dir: &Path, extra: &[&str]) -> serde_json::Value {
    let f = fixtures::snapshot(fixture);
    let mut args = vec![
        "-w",
        "json",
        "snapshot",
        "restore",
        f.to_str().expect("utf-8"),
        "--data-dir",
        dir.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    let out = etcdsnap(&args);
    assert!(
        out.status.success(),
        "{fixture} {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn auto_picks_the_release_of_the_data() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (fixture, want, storage) in [
        ("small-v34.db", "3.5", serde_json::Value::Null),
        ("small-v35.db", "3.5", serde_json::Value::Null),
        ("small-v36.db", "3.6", "3.6.0".into()),
        ("small-v37.db", "3.7", "3.7.0".into()),
    ] {
        let s = summary(fixture, &tmp.path().join(fixture), &[]);
        assert_eq!(s["targetVersion"], want, "{fixture}");
        assert_eq!(s["targetVersionFrom"], "auto");
        assert_eq!(s["storageVersion"], storage, "{fixture}");
        assert_eq!(s["storageVersionMigrated"], false);
        // An explicit version wins.
        let s = summary(
            fixture,
            &tmp.path().join(format!("{fixture}-37")),
            &["--target-version", "3.7"],
        );
        assert_eq!(s["targetVersion"], "3.7");
        assert_eq!(s["targetVersionFrom"], "flag");
    }
}

#[test]
fn an_older_target_than_the_data_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (fixture, target, storage) in [
        ("small-v36.db", "3.4", "3.6.0"),
        ("small-v36.db", "3.5", "3.6.0"),
        ("small-v37.db", "3.5", "3.7.0"),
        ("small-v37.db", "3.6", "3.7.0"),
    ] {
        let d = tmp.path().join(format!("{fixture}-{target}"));
        let f = fixtures::snapshot(fixture);
        let out = etcdsnap(&[
            "snapshot",
            "restore",
            f.to_str().expect("utf-8"),
            "--data-dir",
            d.to_str().expect("utf-8"),
            "--target-version",
            target,
        ]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with(&format!(
                "Error: the snapshot's storage version {storage} is newer than target version {target}\n"
            )),
            "{err}"
        );
        assert!(err.contains("--force"), "{err}");
        assert!(!d.exists(), "{fixture} {target}: something was written");

        let s = summary(fixture, &d, &["--target-version", target, "--force"]);
        assert_eq!(s["storageVersionMigrated"], true);
        let restored = Snapshot::open(DataDir::new(&d).db_path()).expect("open restored db");
        let want = (target == "3.6").then(|| "3.6.0".to_string());
        assert_eq!(
            restored.storage_version().expect("read"),
            want,
            "{fixture} {target}"
        );
    }
}

/// etcd 3.5.1 and 3.4.23 boot from forced restores of 3.6/3.7 snapshots
/// and serve their keys.
#[test]
fn forced_restores_of_new_snapshots_boot_old_etcd() {
    for (version, target, fixture) in [
        (EtcdVersion::V35, "3.5", "small-v37.db"),
        (EtcdVersion::V35, "3.5", "small-v36.db"),
        (EtcdVersion::V34, "3.4", "small-v36.db"),
    ] {
        let bins = require_tool!(tools::etcd_suite(version));
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path().join("m1.etcd");
        let spec = ClusterSpec::new(&bins, 1).data_dir(0, &d);
        let ic = spec.initial_cluster();
        let peer = spec.members[0].peer_url();
        let token = spec.token.clone();
        summary(
            fixture,
            &d,
            &[
                "--target-version",
                target,
                "--force",
                "--name",
                "m1",
                "--initial-cluster",
                &ic,
                "--initial-advertise-peer-urls",
                &peer,
                "--initial-cluster-token",
                &token,
            ],
        );
        let cluster = spec.start();
        let ctl = cluster.ctl();
        assert_eq!(
            ctl.get("name").as_deref(),
            Some(&b"jormun_new"[..]),
            "{fixture} on {version:?}"
        );
        ctl.put("written-after", "1");
        assert_eq!(ctl.get("written-after").as_deref(), Some(&b"1"[..]));
    }
}
