//! The backup repository on a series of snapshots made by a real etcd 3.5.1
//! under churn (writes, rewrites, deletes, a compaction, a defrag in the
//! middle): every pushed snapshot comes back byte for byte, restores to
//! exactly what `snapshot restore` of the file writes, and a restored
//! member boots; consecutive pushes store only what changed; prune keeps
//! exactly what the retention rules keep and garbage collection removes
//! exactly the pages no kept snapshot uses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use support::cli::{BIN, ok, run, s};
use support::etcd::ClusterSpec;
use support::files;
use support::snapmaker::{Loader, SnapshotMaker};
use support::tools::{self, EtcdBins, EtcdVersion};

fn key(i: usize) -> Vec<u8> {
    format!("/registry/configmaps/ns{}/cm-{i}", i % 13).into_bytes()
}

fn value(i: usize, generation: usize) -> Vec<u8> {
    // Compressible like real objects, different per generation.
    format!(
        "{{\"kind\":\"ConfigMap\",\"gen\":{generation},\"i\":{i},\"data\":\"{}\"}}",
        "x".repeat(200 + i % 300)
    )
    .into_bytes()
}

/// The snapshot files of the series, made once per test run.
struct Series {
    files: Vec<PathBuf>,
}

fn series(bins: &EtcdBins) -> &'static Series {
    static SERIES: OnceLock<Series> = OnceLock::new();
    SERIES.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("backup-series");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let maker = SnapshotMaker::new(bins).work_dir(&dir.join("etcd"));
        let mut cluster = maker.start();
        let mut l = Loader::new(cluster.endpoint());
        let n = 12_000;
        let mut files = Vec::new();
        for step in 0..7 {
            match step {
                0 => (0..n).for_each(|i| l.put(&key(i), &value(i, 0))),
                // 1% rewritten.
                1 => (0..n)
                    .step_by(100)
                    .for_each(|i| l.put(&key(i), &value(i, 1))),
                // 5% rewritten, 2% deleted, new keys.
                2 => {
                    (0..n)
                        .step_by(20)
                        .for_each(|i| l.put(&key(i), &value(i, 2)));
                    (1..n).step_by(50).for_each(|i| l.delete(&key(i)));
                    (n..n + 500).for_each(|i| l.put(&key(i), &value(i, 2)));
                }
                // A compaction (frees the old revisions' pages).
                3 => {
                    (0..n)
                        .step_by(33)
                        .for_each(|i| l.put(&key(i), &value(i, 3)));
                    l.compact(true);
                }
                // A defrag: every page moves.
                4 => {
                    l.flush();
                    cluster.ctl().ok(&["defrag"]);
                }
                // More churn after the defrag.
                _ => (0..n)
                    .step_by(97)
                    .for_each(|i| l.put(&key(i), &value(i, step))),
            }
            l.flush();
            let f = dir.join(format!("snap{step}.db"));
            cluster
                .ctl()
                .timeout(Duration::from_secs(120))
                .snapshot_save(&f)
                .expect_success("etcdctl snapshot save");
            files.push(f);
        }
        cluster.stop();
        Series { files }
    })
}

fn ls(repo: &Path) -> Vec<Value> {
    let v: Value =
        serde_json::from_str(&ok(&["backup", "ls", s(repo), "-w", "json"])).expect("json");
    v.as_array().expect("array").clone()
}

#[test]
fn a_series_under_churn_round_trips_restores_and_boots() {
    let bins = support::require_tool!(tools::etcd_suite(EtcdVersion::V35));
    let series = series(&bins);
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    ok(&["backup", "init", s(&repo)]);

    let mut pushed = Vec::new();
    for f in &series.files {
        let v: Value = serde_json::from_str(&ok(&["backup", "push", s(&repo), s(f), "-w", "json"]))
            .expect("json");
        pushed.push(v);
    }
    // The same file again stores (almost) nothing.
    let again: Value = serde_json::from_str(&ok(&[
        "backup",
        "push",
        s(&repo),
        s(&series.files[6]),
        "-w",
        "json",
    ]))
    .expect("json");
    assert_eq!(again["newChunks"], 0, "{again}");
    assert!(again["newBytes"].as_u64().expect("n") < 1000, "{again}");

    for (i, v) in pushed.iter().enumerate() {
        let size = v["size"].as_u64().expect("size");
        let new = v["newBytes"].as_u64().expect("new");
        let bytes = std::fs::read(&series.files[i]).expect("read");
        assert_eq!(size, bytes.len() as u64);
        eprintln!(
            "snap{i}: {size} bytes, {} of {} pages new, {new} bytes stored, list delta {}",
            v["newChunks"], v["chunks"], v["deltaList"]
        );
        // The 1%-rewrite push shares almost every page with the first.
        if i == 1 {
            assert!(new * 10 < size, "snap1 stored {new} of {size}");
            assert_eq!(v["deltaList"], true);
        }
    }

    // ls lists each push with its revision.
    let listed = ls(&repo);
    assert_eq!(listed.len(), 8);
    for (l, p) in listed.iter().zip(&pushed) {
        assert_eq!(l["id"], p["id"]);
        assert_eq!(l["revision"], p["revision"]);
        assert!(l["revision"].as_i64().expect("rev") > 1);
    }

    // cat: the exact bytes of every snapshot.
    for (i, p) in pushed.iter().enumerate() {
        let id = p["id"].as_str().expect("id");
        let o = Command::new(BIN)
            .args(["backup", "cat", s(&repo), &id[..10]])
            .output()
            .expect("cat");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(
            o.stdout == std::fs::read(&series.files[i]).expect("read"),
            "cat of snap{i} differs from the file"
        );
    }
    let chk = ok(&["backup", "check", s(&repo), "--read-data"]);
    assert!(chk.contains("no errors were found"), "{chk}");

    // restore: byte for byte what `snapshot restore` of the file writes,
    // for each snapshot; then boot the restored member of the last one.
    let spec = ClusterSpec::new(&bins, 1);
    let member: Vec<String> = vec![
        "--name".into(),
        spec.members[0].name.clone(),
        "--initial-cluster".into(),
        spec.initial_cluster(),
        "--initial-advertise-peer-urls".into(),
        spec.members[0].peer_url(),
        "--initial-cluster-token".into(),
        spec.token.clone(),
    ];
    let flags: Vec<&str> = member.iter().map(String::as_str).collect();
    let mut last = None;
    for (i, p) in pushed.iter().enumerate() {
        let id = p["id"].as_str().expect("id");
        let from_repo = work.path().join(format!("repo{i}.etcd"));
        let from_file = work.path().join(format!("file{i}.etcd"));
        let mut a = vec![
            "backup",
            "restore",
            s(&repo),
            id,
            "--data-dir",
            s(&from_repo),
        ];
        a.extend(&flags);
        ok(&a);
        let mut b = vec![
            "snapshot",
            "restore",
            s(&series.files[i]),
            "--data-dir",
            s(&from_file),
        ];
        b.extend(&flags);
        ok(&b);
        let (t1, t2) = (files::contents(&from_repo), files::contents(&from_file));
        assert_eq!(
            t1.keys().collect::<Vec<_>>(),
            t2.keys().collect::<Vec<_>>(),
            "snap{i}"
        );
        for (k, v) in &t1 {
            assert!(v == &t2[k], "snap{i}: {k} differs");
        }
        last = Some(from_repo);
    }
    let dir = last.expect("restored");
    let cluster = spec.data_dir(0, &dir).start();
    let got = cluster
        .ctl()
        .get(std::str::from_utf8(&key(97)).expect("utf-8"));
    assert_eq!(got, Some(value(97, 6)));
    let gone = cluster
        .ctl()
        .get(std::str::from_utf8(&key(51)).expect("utf-8"));
    assert_eq!(gone, None, "deleted in step 2");
    cluster.ctl().put("/after/restore", "yes");
}

/// Distinct 4 KiB chunks (BLAKE3, as the repository names them) of files.
fn chunks_of(files: &[&Path]) -> HashSet<[u8; 32]> {
    let mut set = HashSet::new();
    for f in files {
        for c in std::fs::read(f).expect("read").chunks(4096) {
            set.insert(*blake3::hash(c).as_bytes());
        }
    }
    set
}

#[test]
fn prune_keeps_what_the_rules_keep_and_collects_the_rest() {
    let bins = support::require_tool!(tools::etcd_suite(EtcdVersion::V35));
    let series = series(&bins);
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    ok(&["backup", "init", s(&repo)]);

    // Eight snapshots at known times: Monday 2024-01-01 00:10 onwards.
    let monday = 1_704_067_200u64;
    let at = |h: u64, m: u64| monday + h * 3600 + m * 60;
    let times = [
        at(0, 10),
        at(0, 40),
        at(1, 10),
        at(13, 0),
        at(24 + 9, 0),
        at(24 + 9, 30),
        at(48 + 10, 0),
        at(48 + 10, 20),
    ];
    let files: Vec<PathBuf> = (0..8)
        .map(|i| {
            let src = &series.files[i % series.files.len()];
            let dst = work.path().join(format!("at{i}.db"));
            std::fs::copy(src, &dst).expect("copy");
            let f = std::fs::File::options()
                .write(true)
                .open(&dst)
                .expect("open");
            f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(times[i]))
                .expect("mtime");
            dst
        })
        .collect();
    for f in &files {
        ok(&["backup", "push", s(&repo), s(f), "--time-from-file"]);
    }
    let before = ls(&repo);
    assert_eq!(before.len(), 8);
    assert_eq!(before[0]["time"], "2024-01-01T00:10:00Z");

    // last 2 -> #7 #6; hourly 3 -> #7 #5 #3; daily 2 -> #7 #5.
    let rules = [
        "--keep-last",
        "2",
        "--keep-hourly",
        "3",
        "--keep-daily",
        "2",
    ];
    let mut dry = vec!["backup", "prune", s(&repo), "--dry-run", "-w", "json"];
    dry.extend(rules);
    let plan: Value = serde_json::from_str(&ok(&dry)).expect("json");
    assert_eq!(plan["removed"].as_array().expect("removed").len(), 4);
    assert_eq!(ls(&repo).len(), 8, "a dry run removes nothing");

    let mut real = vec!["backup", "prune", s(&repo), "-w", "json"];
    real.extend(rules);
    let done: Value = serde_json::from_str(&ok(&real)).expect("json");
    let kept_times: Vec<String> = ls(&repo)
        .iter()
        .map(|v| v["time"].as_str().expect("time").to_string())
        .collect();
    assert_eq!(
        kept_times,
        [
            "2024-01-01T13:00:00Z",
            "2024-01-02T09:30:00Z",
            "2024-01-03T10:00:00Z",
            "2024-01-03T10:20:00Z"
        ]
    );
    let reasons: Vec<&Value> = done["kept"]
        .as_array()
        .expect("kept")
        .iter()
        .map(|k| &k["reasons"])
        .collect();
    assert_eq!(reasons[3], &serde_json::json!(["last", "hourly", "daily"]));

    // Exactly the pages of the kept snapshots remain.
    let kept: Vec<&Path> = [3, 5, 6, 7].iter().map(|&i| files[i].as_path()).collect();
    let want = chunks_of(&kept);
    let chk: Value = serde_json::from_str(&ok(&[
        "backup",
        "check",
        s(&repo),
        "--read-data",
        "-w",
        "json",
    ]))
    .expect("json");
    assert_eq!(chk["ok"], true, "{chk}");
    assert_eq!(chk["chunks"].as_u64(), Some(want.len() as u64), "{chk}");
    assert!(
        chunks_of(&files.iter().map(PathBuf::as_path).collect::<Vec<_>>()).len() > want.len(),
        "the removed snapshots had pages of their own"
    );
    for (v, i) in ls(&repo).iter().zip([3, 5, 6, 7]) {
        let o = Command::new(BIN)
            .args(["backup", "cat", s(&repo), v["id"].as_str().expect("id")])
            .output()
            .expect("cat");
        assert!(o.stdout == std::fs::read(&files[i]).expect("read"), "#{i}");
    }
    // A push after the prune still deduplicates against what is left.
    let v: Value = serde_json::from_str(&ok(&[
        "backup",
        "push",
        s(&repo),
        s(&files[7]),
        "-w",
        "json",
    ]))
    .expect("json");
    assert_eq!(v["newChunks"], 0);
}

#[test]
fn push_from_a_live_endpoint_stores_what_etcdctl_saves() {
    let bins = support::require_tool!(tools::etcd_suite(EtcdVersion::V35));
    let cluster = SnapshotMaker::new(&bins).start();
    let mut l = Loader::new(cluster.endpoint());
    (0..2000).for_each(|i| l.put(&key(i), &value(i, 0)));
    l.flush();
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    ok(&["backup", "init", s(&repo)]);
    let v: Value = serde_json::from_str(&ok(&[
        "--endpoints",
        cluster.endpoint(),
        "backup",
        "push",
        s(&repo),
        "--from-endpoint",
        "-w",
        "json",
    ]))
    .expect("json");
    assert_eq!(v["source"].as_str(), Some(cluster.endpoint()), "{v}");
    // ENDPOINT given to the flag itself.
    ok(&[
        "backup",
        "push",
        s(&repo),
        "--from-endpoint",
        cluster.endpoint(),
    ]);
    let saved = work.path().join("etcdctl.db");
    cluster
        .ctl()
        .snapshot_save(&saved)
        .expect_success("etcdctl snapshot save");
    let o = Command::new(BIN)
        .args(["backup", "cat", s(&repo), v["id"].as_str().expect("id")])
        .output()
        .expect("cat");
    assert!(o.status.success());
    assert!(
        o.stdout == std::fs::read(&saved).expect("read"),
        "the pushed snapshot differs from etcdctl's"
    );
    assert_eq!(
        std::fs::read_dir(repo.join("tmp")).expect("tmp").count(),
        0,
        "temporary snapshot left behind"
    );
    // An endpoint nobody listens on: a clear error, nothing stored.
    let port = support::ports::free_port();
    let o = run(&[
        "--dial-timeout",
        "1s",
        "backup",
        "push",
        s(&repo),
        "--from-endpoint",
        &format!("127.0.0.1:{port}"),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&port.to_string()), "{err}");
    assert_eq!(ls(&repo).len(), 2);
    assert_eq!(std::fs::read_dir(repo.join("tmp")).expect("tmp").count(), 0);
}
