//! Continuous backup of a cluster that never changed (issue 22): an empty etcd 3.5.1 is at
//! revision 1 (revision 1 holds no key event; the first put is revision 2). The agent's first
//! full snapshot is listed at revision 1, its chain starts at 2, and `backup cat --to-revision
//! R` answers `get "" --prefix` and `snapshot hashkv --rev R` as the live cluster did at every
//! R from 1 on (the snapshot used to be listed at 0, the chain started at 1, and every point
//! restore was refused as an overlap). A chain an earlier build stored that way (base manifest
//! at 0, first segment from 1) lists and restores the same, and the agent resumes it.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::cli::s;
use support::etcd::{EtcdCluster, Etcdctl};

use super::agent::{Agent, bins, cat_at, chains, full_event, init_repo, kvs};
use super::agent_probe::{file_hashkv, live_hashkv};

/// What the live cluster answered at its current revision: `get "" --prefix`'s kvs and
/// `endpoint hashkv --rev R`, by revision.
type Live = BTreeMap<i64, (Value, (i64, i64))>;

fn seen(ctl: &Etcdctl, live: &mut Live) -> i64 {
    let v = ctl.json(&["get", "", "--prefix"]);
    let r = v["header"]["revision"].as_i64().unwrap();
    live.insert(r, (kvs(&v), live_hashkv(ctl, r)));
    r
}

/// Puts, an overwrite, a delete and a delete of a missing key (no revision): the live
/// answers at each revision.
fn workload(ctl: &Etcdctl, live: &mut Live, tag: &str) -> i64 {
    ctl.put(&format!("{tag}a"), "1");
    seen(ctl, live);
    ctl.put(&format!("{tag}b"), "2");
    seen(ctl, live);
    ctl.put(&format!("{tag}a"), "3");
    seen(ctl, live);
    ctl.ok(&["del", &format!("{tag}b")]);
    seen(ctl, live);
    ctl.ok(&["del", &format!("{tag}none-such")]);
    ctl.put(&format!("{tag}c"), "4");
    seen(ctl, live)
}

/// `backup ls -w json`'s entry of the only snapshot.
fn only_listed(repo: &Path) -> Value {
    let out = support::cli::ok(&["backup", "ls", s(repo), "-w", "json"]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let all = v.as_array().expect("array");
    assert_eq!(all.len(), 1, "{v}");
    all[0].clone()
}

/// Every revision of `live`: `backup cat --to-revision R` read by `etcdsnap get` and by
/// `snapshot hashkv --rev R` answers as the live cluster did.
fn every_revision_restores(repo: &Path, dir: &Path, live: &Live) {
    for (r, (want, hash)) in live {
        let file = cat_at(repo, dir, *r);
        let out = support::cli::ok(&["get", s(&file), "", "--prefix", "-w", "json"]);
        let got: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(&kvs(&got), want, "get at revision {r}");
        assert_eq!(got["header"]["revision"].as_i64(), Some(*r));
        assert_eq!(&file_hashkv(&file, *r), hash, "hashkv at revision {r}");
        std::fs::remove_file(&file).unwrap();
    }
}

/// The only snapshot is listed at revision 1 and restorable from 1 to `last`, `backup check`
/// finds no hole or overlap, and every revision of `live` restores as the cluster answered.
fn restorable_from_1(repo: &Path, dir: &Path, live: &Live, last: i64) -> Value {
    let listed = only_listed(repo);
    assert_eq!(listed["revision"], 1, "{listed}");
    assert_eq!(listed["restorable"]["fromRevision"], 1, "{listed}");
    assert_eq!(listed["restorable"]["toRevision"], last, "{listed}");
    let o = support::cli::ok(&["backup", "check", s(repo)]);
    assert!(!o.contains("overlap") && !o.contains("hole"), "{o}");
    every_revision_restores(repo, dir, live);
    listed
}

#[test]
fn an_agent_started_on_an_empty_cluster_restores_every_revision() {
    let Some(bins) = bins() else { return };
    let cluster = EtcdCluster::single(&bins);
    let ctl = cluster.ctl();
    let mut live = Live::new();
    assert_eq!(seen(&ctl, &mut live), 1, "a new etcd is at revision 1");
    let dir = tempfile::tempdir().unwrap();
    let repo = init_repo(dir.path());
    let mut agent = Agent::start(
        &repo,
        cluster.endpoint(),
        &["--delta-every", "300ms"],
        &dir.path().join("agent.log"),
    );
    let full = agent.wait_for("a full snapshot", Duration::from_secs(60), full_event);
    assert_eq!(full["revision"], 1, "the empty cluster's snapshot: {full}");
    let last = workload(&ctl, &mut live, "");
    agent.wait_for("the last revision stored", Duration::from_secs(30), |e| {
        e["event"] == "segment" && e["last"].as_i64() >= Some(last)
    });
    assert_eq!(agent.signal(libc::SIGTERM).code(), Some(0));

    let chains = chains(&repo);
    assert_eq!(chains.len(), 1, "one full snapshot");
    let (snap, segs) = &chains[0];
    assert_eq!(snap.revision, 1);
    assert_eq!(segs[0].first, 2, "the chain starts at etcd's first change");
    restorable_from_1(&repo, dir.path(), &live, last);
}

/// A chain as an earlier build stored it: the full snapshot's manifest says revision 0 (its
/// `key` bucket's newest entry, none) and the first segment starts at 1 (here after an empty
/// one at 0, as a quiet seal would have stored). It lists from revision 1, `check` finds no
/// hole or overlap, every revision restores as the live cluster answered, and the agent
/// resumes it where it ended.
#[test]
fn a_chain_stored_from_revision_1_on_a_snapshot_listed_at_0_restores_and_resumes() {
    let Some(bins) = bins() else { return };
    let cluster = EtcdCluster::single(&bins);
    let ctl = cluster.ctl();
    let mut live = Live::new();
    seen(&ctl, &mut live);
    let dir = tempfile::tempdir().unwrap();
    let repo = init_repo(dir.path());
    let log = dir.path().join("agent.log");
    let mut agent = Agent::start(&repo, cluster.endpoint(), &["--delta-every", "300ms"], &log);
    agent.wait_for("a full snapshot", Duration::from_secs(60), full_event);
    let last = workload(&ctl, &mut live, "");
    agent.wait_for("the last revision stored", Duration::from_secs(30), |e| {
        e["event"] == "segment" && e["last"].as_i64() >= Some(last)
    });
    assert_eq!(agent.signal(libc::SIGTERM).code(), Some(0));
    let (snap, mut segs) = chains(&repo).pop().unwrap();

    // The manifest as an earlier build wrote it (revision 0: bytes 16..24 of the plain
    // encoding), under the ID its new contents hash to, and the chain from revision 1.
    let old_id = hex(&snap.id.0);
    let manifest = repo.join("snapshots").join(&old_id);
    let mut m = std::fs::read(&manifest).unwrap();
    assert_eq!(
        &m[16..24],
        &1i64.to_le_bytes(),
        "the manifest records revision 1"
    );
    m[16..24].copy_from_slice(&0i64.to_le_bytes());
    let new_id = hex(blake3::hash(&m).as_bytes());
    std::fs::write(repo.join("snapshots").join(&new_id), &m).unwrap();
    std::fs::rename(
        repo.join("known").join(&old_id),
        repo.join("known").join(&new_id),
    )
    .unwrap();
    std::fs::remove_file(&manifest).unwrap();
    std::fs::remove_dir_all(repo.join("deltas").join(&old_id)).unwrap();
    support::cli::ok(&["backup", "rebuild-index", s(&repo)]);
    assert_eq!(segs[0].first, 2);
    segs[0].first = 1;
    let quiet = etcdsnap::etcd::change::ChangeSegment {
        first: 1,
        last: 0,
        revisions: vec![],
        leases: vec![],
        compactions: vec![],
        sealed: segs[0].sealed - Duration::from_millis(1),
    };
    {
        let r = etcdsnap::repo::Repository::open_dir(&repo, None).unwrap();
        let base = r.find(&new_id).unwrap().id;
        for seg in std::iter::once(&quiet).chain(&segs) {
            r.put_changes(&base, seg).unwrap();
        }
    }
    let listed = restorable_from_1(&repo, dir.path(), &live, last);
    assert_eq!(listed["id"], new_id.as_str());

    // The agent resumes the chain after its last revision.
    let mut agent = Agent::start(&repo, cluster.endpoint(), &["--delta-every", "300ms"], &log);
    agent.wait_for("the resume", Duration::from_secs(60), |e| {
        e["event"] == "resumed"
    });
    let last = workload(&ctl, &mut live, "more/");
    agent.wait_for("the last revision stored", Duration::from_secs(30), |e| {
        e["event"] == "segment" && e["last"].as_i64() >= Some(last)
    });
    assert_eq!(agent.signal(libc::SIGTERM).code(), Some(0));
    let listed = only_listed(&repo);
    assert_eq!(listed["restorable"]["fromRevision"], 1, "{listed}");
    assert_eq!(listed["restorable"]["toRevision"], last, "{listed}");
    assert_eq!(
        listed["restorable"]["gaps"],
        serde_json::json!([]),
        "{listed}"
    );
    every_revision_restores(&repo, dir.path(), &live);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
