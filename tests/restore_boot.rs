//! Real etcd boots from what etcdsnap restores.
//!
//! Each test restores a snapshot into three data dirs with etcdsnap, starts
//! a three-member etcd cluster (3.5.1, or 3.4.23 for `--target-version 3.4`)
//! on loopback on them, and checks that it is healthy, lists the three
//! members, serves exactly the keys and values that the real tool's own
//! restore of the same snapshot serves, and accepts a write. Also with auth
//! enabled, and with `--bump-revision --mark-compacted`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::etcd::{ClusterSpec, EtcdCluster, Etcdctl};
use support::tools::{EtcdBins, EtcdVersion};
use support::{fixtures, oracles, require_tool, tools};

const TOKEN: &str = "etcdsnap-restored";

fn etcdsnap(args: &[&str], extra: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
        .args(args)
        .args(extra)
        .output()
        .expect("run etcdsnap");
    assert!(
        out.status.success(),
        "etcdsnap {args:?} {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How the three data dirs are made.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// One `--all-members` run.
    AllMembers,
    /// One run per member with `--name`.
    PerMember,
}

struct Restored {
    cluster: EtcdCluster,
    summary: Option<Value>,
}

fn restore_and_boot(
    bins: &EtcdBins,
    snapshot: &Path,
    target: &str,
    layout: Layout,
    extra: &[&str],
) -> Restored {
    let spec = ClusterSpec::new(bins, 3).token(TOKEN);
    let out = spec.dir.join("restored");
    std::fs::create_dir(&out).expect("mkdir");
    let ic = spec.initial_cluster();
    let mut common: Vec<String> = vec![
        "--initial-cluster".into(),
        ic.clone(),
        "--initial-cluster-token".into(),
        TOKEN.into(),
        "--target-version".into(),
        target.into(),
    ];
    common.extend(extra.iter().map(|s| s.to_string()));
    let snap = snapshot.to_string_lossy().into_owned();
    let mut summary = None;
    match layout {
        Layout::AllMembers => {
            let mut a = common.clone();
            a.extend([
                "--all-members".into(),
                "--out-dir".into(),
                out.to_string_lossy().into_owned(),
            ]);
            let json = etcdsnap(&["-w", "json", "snapshot", "restore", &snap], &a);
            summary = Some(serde_json::from_str(&json).expect("summary JSON"));
        }
        Layout::PerMember => {
            for m in &spec.members {
                let mut a = common.clone();
                a.extend([
                    "--name".into(),
                    m.name.clone(),
                    "--initial-advertise-peer-urls".into(),
                    m.peer_url(),
                    "--data-dir".into(),
                    out.join(format!("{}.etcd", m.name))
                        .to_string_lossy()
                        .into_owned(),
                ]);
                etcdsnap(&["snapshot", "restore", &snap], &a);
            }
        }
    }
    let names: Vec<String> = spec.members.iter().map(|m| m.name.clone()).collect();
    let mut spec = spec;
    for (i, n) in names.iter().enumerate() {
        spec = spec.data_dir(i, &out.join(format!("{n}.etcd")));
    }
    Restored {
        cluster: spec.start(),
        summary,
    }
}

/// What the real tool's restore of `snapshot` serves: a one-member cluster
/// restored by etcdutl 3.5.1 / etcdctl 3.4.23.
fn reference_kvs(bins: &EtcdBins, snapshot: &Path, user: Option<&str>) -> Value {
    let spec = ClusterSpec::new(bins, 1).token(TOKEN);
    let m = &spec.members[0];
    let dir = m.data_dir.to_string_lossy().into_owned();
    let peer = m.peer_url();
    let ic = spec.initial_cluster();
    let out = oracles::run_restore(
        bins,
        snapshot,
        &[
            "--data-dir",
            &dir,
            "--name",
            &m.name.clone(),
            "--initial-cluster",
            &ic,
            "--initial-advertise-peer-urls",
            &peer,
            "--initial-cluster-token",
            TOKEN,
            "--skip-hash-check",
        ],
    );
    out.expect_success("reference restore");
    let cluster = spec.start();
    ctl(&cluster, user).all_kvs()
}

fn ctl(cluster: &EtcdCluster, user: Option<&str>) -> Etcdctl {
    match user {
        Some(u) => cluster.ctl().user(u),
        None => cluster.ctl(),
    }
}

fn revision(ctl: &Etcdctl) -> i64 {
    let v = ctl.json(&["get", "nonexistent-key-for-the-header"]);
    v["header"]["revision"].as_i64().expect("revision")
}

fn check_cluster(r: &Restored, user: Option<&str>, want: &Value) {
    let c = ctl(&r.cluster, user);
    let members = c.json(&["member", "list"]);
    let list = members["members"].as_array().expect("members");
    assert_eq!(list.len(), 3, "{members}");
    let mut names: Vec<&str> = list.iter().filter_map(|m| m["name"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["m1", "m2", "m3"]);
    if let Some(s) = &r.summary {
        let mut ours: Vec<String> = s["members"]
            .as_array()
            .expect("members")
            .iter()
            .filter_map(|m| m["id"].as_str().map(str::to_owned))
            .collect();
        let mut theirs: Vec<String> = list
            .iter()
            .filter_map(|m| m["ID"].as_u64().map(|id| format!("{id:x}")))
            .collect();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "member IDs");
    }
    let health = c.run(&["endpoint", "health", "--cluster"]);
    assert!(
        health.success(),
        "health: {} {}",
        health.stdout,
        health.stderr
    );

    // Every member serves exactly the reference data.
    for i in 0..3 {
        let got = match user {
            Some(u) => r.cluster.ctl_member(i).user(u),
            None => r.cluster.ctl_member(i),
        }
        .all_kvs();
        assert_eq!(&got, want, "member {i} serves other data");
    }
    // And takes a write, visible on another member.
    c.put("etcdsnap/boot-test", "written after restore");
    let other = match user {
        Some(u) => r.cluster.ctl_member(2).user(u),
        None => r.cluster.ctl_member(2),
    };
    assert_eq!(
        other.get("etcdsnap/boot-test").as_deref(),
        Some(&b"written after restore"[..])
    );
}

fn boots(version: EtcdVersion, fixture: &str, target: &str, layout: Layout, user: Option<&str>) {
    let bins = require_tool!(tools::etcd_suite(version));
    let snapshot = fixtures::snapshot(fixture);
    let want = reference_kvs(&bins, &snapshot, user);
    assert!(want.as_array().is_some_and(|a| !a.is_empty()));
    let r = restore_and_boot(&bins, &snapshot, target, layout, &[]);
    check_cluster(&r, user, &want);
}

#[test]
fn etcd_3_5_boots_a_three_member_cluster() {
    boots(
        EtcdVersion::V35,
        "k8s-v35.db",
        "3.5",
        Layout::AllMembers,
        None,
    );
}

#[test]
fn etcd_3_4_boots_a_three_member_cluster() {
    boots(
        EtcdVersion::V34,
        "k8s-v34.db",
        "3.4",
        Layout::PerMember,
        None,
    );
}

#[test]
fn etcd_3_5_boots_with_auth_enabled() {
    boots(
        EtcdVersion::V35,
        "auth-v35.db",
        "3.5",
        Layout::PerMember,
        Some("root:rootpw"),
    );
}

#[test]
fn etcd_3_4_boots_with_auth_enabled() {
    boots(
        EtcdVersion::V34,
        "auth-v34.db",
        "3.4",
        Layout::AllMembers,
        Some("root:rootpw"),
    );
}

#[test]
fn bump_revision_jumps_and_old_revisions_are_compacted() {
    let bins = require_tool!(tools::etcd_suite(EtcdVersion::V35));
    let snapshot: PathBuf = fixtures::snapshot("k8s-v35.db");
    let want = reference_kvs(&bins, &snapshot, None);
    let before = want
        .as_array()
        .expect("kvs")
        .iter()
        .filter_map(|kv| kv["mod_revision"].as_i64())
        .max()
        .expect("a revision");
    let bump = 1_000_000;
    let r = restore_and_boot(
        &bins,
        &snapshot,
        "3.5",
        Layout::AllMembers,
        &["--bump-revision", "1000000", "--mark-compacted"],
    );
    let summary = r.summary.as_ref().expect("summary");
    assert_eq!(summary["bumpedToRevision"].as_i64(), Some(570 + bump));
    let c = r.cluster.ctl();
    assert!(
        revision(&c) >= before + bump,
        "revision {} after a bump of {bump} from {before}",
        revision(&c)
    );
    let old = c.run(&["get", "--rev", &before.to_string(), "", "--prefix"]);
    assert!(!old.success(), "reading revision {before} must fail");
    assert!(
        old.stderr.contains("compacted"),
        "old revision should read as compacted: {}",
        old.stderr
    );
    // The data itself is still all there.
    for i in 0..3 {
        assert_eq!(r.cluster.ctl_member(i).all_kvs(), want);
    }
    c.put("after-bump", "v");
    assert!(revision(&c) > before + bump);
}
