//! `etcdsnap diff` against the test's own answer: each file's state at the
//! revision asked for, built from a plain iteration of its `key` bucket
//! (prost-decoded), compared key by key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use etcdsnap::Snapshot;
use etcdsnap::etcd::KeyValue;
use prost::Message;
use serde_json::Value;
use support::snapmaker::{Loader, SnapshotMaker};
use support::tools::{self, EtcdVersion};
use support::{fixtures, require_tool};

/// key -> (value, lease) at `rev` (0: the newest).
fn state(file: &Path, rev: i64) -> BTreeMap<Vec<u8>, (Vec<u8>, i64)> {
    let snap = Snapshot::open(file).expect("open");
    let db = snap.db().expect("db");
    let b = db.root().bucket(b"key").expect("read").expect("key bucket");
    let mut m = BTreeMap::new();
    for e in b.iter() {
        let e = e.expect("entry");
        let main = i64::from_be_bytes(e.key[..8].try_into().expect("8 bytes"));
        if rev > 0 && main > rev {
            break;
        }
        let kv = KeyValue::decode(e.value).expect("KeyValue");
        if e.key.len() == 18 {
            m.remove(&kv.key);
        } else {
            m.insert(kv.key, (kv.value, kv.lease));
        }
    }
    m
}

/// (kind, key) in key order, as the test computes them.
fn expected(old: &Path, old_rev: i64, new: &Path, new_rev: i64) -> Vec<(String, String)> {
    let (a, b) = (state(old, old_rev), state(new, new_rev));
    let mut keys: Vec<&Vec<u8>> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let kind = match (a.get(k), b.get(k)) {
                (None, Some(_)) => "added",
                (Some(_), None) => "removed",
                (Some(x), Some(y)) if x != y => "changed",
                _ => return None,
            };
            Some((kind.to_string(), String::from_utf8_lossy(k).into_owned()))
        })
        .collect()
}

fn ours(old: &Path, new: &Path, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
        .args(["-w", "json", "diff"])
        .arg(old)
        .arg(new)
        .args(extra)
        .output()
        .expect("run etcdsnap");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn listed(v: &Value) -> Vec<(String, String)> {
    v["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().expect("kind").to_string(),
                c["key"]
                    .as_str()
                    .expect("utf-8 keys in these tests")
                    .to_string(),
            )
        })
        .collect()
}

fn check(old: &Path, new: &Path, old_rev: i64, new_rev: i64) -> Value {
    let mut extra = Vec::new();
    let (ro, rn) = (old_rev.to_string(), new_rev.to_string());
    if old_rev > 0 {
        extra.extend(["--rev-old", ro.as_str()]);
    }
    if new_rev > 0 {
        extra.extend(["--rev-new", rn.as_str()]);
    }
    let v = ours(old, new, &extra);
    let want = expected(old, old_rev, new, new_rev);
    assert_eq!(
        listed(&v),
        want,
        "{} @{old_rev} -> {} @{new_rev}",
        old.display(),
        new.display()
    );
    let n = |k: &str| want.iter().filter(|(kind, _)| kind == k).count() as u64;
    assert_eq!(v["added"].as_u64(), Some(n("added")));
    assert_eq!(v["removed"].as_u64(), Some(n("removed")));
    assert_eq!(v["changed"].as_u64(), Some(n("changed")));
    v
}

#[test]
fn fixtures_against_themselves_and_each_other() {
    let k35 = fixtures::snapshot("k8s-v35.db");
    let k34 = fixtures::snapshot("k8s-v34.db");
    let v = check(&k35, &k35, 0, 0);
    assert!(listed(&v).is_empty());
    for (o, n) in [(300, 0), (0, 300), (100, 569), (285, 290)] {
        check(&k35, &k35, o, n);
    }
    // Unrelated histories: everything is compared, the answer still exact.
    check(&k35, &k34, 0, 0);
    check(
        &fixtures::snapshot("small-v35.db"),
        &fixtures::snapshot("small-v34.db"),
        2,
        0,
    );
    check(&fixtures::snapshot("small-v35.db"), &k35, 0, 0);
    // A raw member db against its saved twin.
    check(&fixtures::snapshot("k8s-v35.member.db"), &k35, 0, 0);
    // etcd's errors for revisions it cannot read.
    let out = Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
        .args(["diff", "--rev-old", "5"])
        .arg(&k35)
        .arg(&k35)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("required revision has been compacted"));
}

#[test]
fn two_backups_of_one_cluster() {
    let bins = require_tool!(tools::etcd_suite(EtcdVersion::V35));
    let dir = tempfile::tempdir().expect("tempdir");
    let (old, new) = (dir.path().join("old.db"), dir.path().join("new.db"));
    let mut cluster = SnapshotMaker::new(&bins).start();
    let mut l = Loader::new(cluster.endpoint());
    for i in 0..300 {
        l.put(
            format!("/registry/pods/ns{}/p{i}", i % 5).as_bytes(),
            format!("v{i}").as_bytes(),
        );
    }
    l.flush();
    for i in 0..50 {
        l.put(
            format!("/registry/pods/ns{}/p{i}", i % 5).as_bytes(),
            b"second",
        );
    }
    l.flush();
    cluster
        .ctl_member(0)
        .snapshot_save(&old)
        .expect_success("save old");
    let old_rev = l.revision();
    // Between the backups: changes, a rewrite with the same value, deletes,
    // a delete and re-create, new keys, a compaction past the old backup.
    for i in 40..60 {
        l.put(
            format!("/registry/pods/ns{}/p{i}", i % 5).as_bytes(),
            b"third",
        );
    }
    l.flush();
    l.put(b"/registry/pods/ns1/p1", b"second"); // same value again
    l.flush();
    l.delete_range(b"/registry/pods/ns4/", b"/registry/pods/ns40");
    l.put(b"/registry/pods/ns3/p3", b"gone soon");
    l.flush();
    l.delete(b"/registry/pods/ns3/p3");
    l.flush();
    l.put(b"/registry/pods/ns3/p8", b"second"); // the value it already has
    l.put(b"/registry/new/a", b"fresh");
    l.flush();
    l.delete(b"/registry/pods/ns2/p2");
    l.flush();
    l.put(b"/registry/pods/ns2/p2", b"reborn");
    l.flush();
    l.compact(true);
    l.put(b"/registry/new/b", b"after compaction");
    l.flush();
    cluster
        .ctl_member(0)
        .snapshot_save(&new)
        .expect_success("save new");
    cluster.stop();

    let v = check(&old, &new, 0, 0);
    assert_eq!(v["rewritten"].as_u64(), Some(2), "{v}"); // p1 and p8
    let n = v["changes"].as_array().map_or(0, Vec::len);
    assert!(n > 60 && n < 120, "{n}");
    // NEW was compacted past OLD's revision: reading it there is etcd's
    // error.
    let out = Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
        .args(["diff", "--rev-new", &old_rev.to_string()])
        .arg(&old)
        .arg(&new)
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("required revision has been compacted"));
    // OLD against itself at an older revision, and reversed.
    check(&old, &old, 2, 0);
    check(&new, &old, 0, 0);
    // The text output lists each change once and ends with the summary.
    let out = Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
        .arg("diff")
        .arg(&old)
        .arg(&new)
        .output()
        .expect("run");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(text.contains("+ /registry/new/a (5 B)"), "{text}");
    assert!(text.contains("- /registry/pods/ns4/p4 ("), "{text}");
    assert!(text.contains("~ /registry/pods/ns2/p2 ("), "{text}");
    assert!(text.lines().last().is_some_and(|l| l.contains(" added (")));
}
