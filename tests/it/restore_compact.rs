//! `snapshot restore --compact[=R] --defrag` against real etcd 3.5.1.
//!
//! The k8s fixture (which has history) is restored plainly and compacted
//! on the way; etcd booted on the compacted data dir must serve what etcd
//! booted on the plain one serves after its own `etcdctl compact R
//! --physical`, at every revision from R to the latest, and refuse reads
//! below R as compacted. The compacted member db is smaller and passes
//! bbolt's own check. With `--bump-revision --mark-compacted` and
//! `--all-members` the three members boot and serve the same data; a
//! snapshot whose last change is a deletion (which the compaction removes)
//! is still bumped above its latest revision.

use crate::support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::etcd::{ClusterSpec, EtcdCluster, Etcdctl};
use support::tools::{EtcdBins, EtcdVersion};
use support::{cli, fixtures, oracles, require_tool, tools};

const TOKEN: &str = "etcdsnap-restore-compact";
/// The k8s fixture's latest revision.
const LATEST: i64 = 570;

/// A one-member etcd booted on `snapshot` restored by etcdsnap with
/// `extra` flags (the member db checked by bbolt before etcd opens and
/// locks it); the restore's JSON summary and the member db's length as
/// restored.
fn restore_and_boot(bins: &EtcdBins, snapshot: &Path, extra: &[&str]) -> (EtcdCluster, Value, u64) {
    let spec = ClusterSpec::new(bins, 1).token(TOKEN);
    let m = &spec.members[0];
    let ic = spec.initial_cluster();
    let peer = m.peer_url();
    let name = m.name.clone();
    let data_dir = m.data_dir.clone();
    let mut args = vec![
        "-w",
        "json",
        "snapshot",
        "restore",
        cli::s(snapshot),
        "--data-dir",
        cli::s(&data_dir),
        "--name",
        &name,
        "--initial-cluster",
        &ic,
        "--initial-advertise-peer-urls",
        &peer,
        "--initial-cluster-token",
        TOKEN,
    ];
    args.extend(extra);
    let summary: Value = serde_json::from_str(&cli::ok(&args)).expect("summary JSON");
    let db = data_dir.join("member/snap/db");
    assert_boltcheck_ok(&db);
    let restored = len(&db);
    (spec.start(), summary, restored)
}

fn get_at(ctl: &Etcdctl, rev: i64) -> Value {
    let v = ctl.json(&["get", "", "--prefix", "--rev", &rev.to_string()]);
    v.get("kvs").cloned().unwrap_or(Value::Array(Vec::new()))
}

fn revision(ctl: &Etcdctl) -> i64 {
    ctl.json(&["get", "no-such-key"])["header"]["revision"]
        .as_i64()
        .expect("revision")
}

#[track_caller]
fn assert_compacted_at(ctl: &Etcdctl, rev: i64) {
    let out = ctl.run(&["get", "", "--prefix", "--rev", &rev.to_string()]);
    assert!(
        !out.success() && out.stderr.contains("required revision has been compacted"),
        "get at {rev}: {}{}",
        out.stdout,
        out.stderr
    );
}

#[track_caller]
/// `endpoint hashkv` at the latest revision: the hash and the compact
/// revision etcd reports.
fn hashkv(ctl: &Etcdctl) -> (Value, Value) {
    let v = ctl.json(&["endpoint", "hashkv"]);
    let hk = &v[0]["HashKV"];
    assert!(
        hk["hash"].is_u64() && hk["compact_revision"].is_i64(),
        "{v}"
    );
    (hk["hash"].clone(), hk["compact_revision"].clone())
}

fn assert_boltcheck_ok(db: &Path) {
    let check = oracles::run_boltcheck("check", db);
    assert!(
        check.success() && check.stdout.contains("OK"),
        "boltcheck {}: {}{}",
        db.display(),
        check.stdout,
        check.stderr
    );
}

fn len(p: &Path) -> u64 {
    std::fs::metadata(p).expect("stat").len()
}

#[test]
fn compact_and_defrag_on_restore_serve_what_etcd_compaction_serves() {
    let bins = require_tool!(tools::etcd_suite(EtcdVersion::V35));
    require_tool!(tools::boltcheck());
    let snapshot = fixtures::snapshot("k8s-v35.db");
    let (plain, _, plain_len) = restore_and_boot(&bins, &snapshot, &[]);

    let pctl = plain.ctl();
    let want = pctl.all_kvs();
    assert!(want.as_array().is_some_and(|a| a.len() > 100), "{want}");

    // At the latest revision: the same data, nothing below it.
    let (latest, summary, latest_len) =
        restore_and_boot(&bins, &snapshot, &["--compact", "--defrag"]);
    assert_eq!(
        summary["compactRevision"].as_i64(),
        Some(LATEST),
        "{summary}"
    );
    let lctl = latest.ctl();
    assert_eq!(lctl.all_kvs(), want);
    assert_eq!(revision(&lctl), LATEST);
    assert_eq!(get_at(&lctl, LATEST), want);
    assert_compacted_at(&lctl, LATEST - 1);
    assert!(
        latest_len < plain_len,
        "compacted {} >= plain {plain_len}",
        latest_len
    );

    // At an older revision, against etcd's own compaction of the plain
    // restore (Go integer syntax: 0x1f4 is 500).
    let r = 500;
    let (older, summary, older_len) = restore_and_boot(&bins, &snapshot, &["--compact=0x1f4"]);
    assert_eq!(summary["compactRevision"].as_i64(), Some(r), "{summary}");
    pctl.ok(&["compact", &r.to_string(), "--physical"]);
    let octl = older.ctl();
    // A version the compaction wrongly dropped shows at the compaction
    // revision itself and stays missing until its key is written again, so
    // the revisions right after it and a stride to the latest are asked;
    // a version wrongly kept below it is never served, but etcd's hash of
    // the key space covers it. (`compact.rs` asks every revision of its
    // own snapshots with the same compaction code.)
    let revs = (r..r + 5).chain((r + 5..LATEST).step_by(7)).chain([LATEST]);
    for rev in revs {
        assert_eq!(get_at(&octl, rev), get_at(&pctl, rev), "get at {rev}");
    }
    assert_eq!(hashkv(&octl), hashkv(&pctl));
    assert_compacted_at(&octl, r - 1);
    assert_compacted_at(&pctl, r - 1);
    // --compact alone lays the db out densely too.
    assert!(older_len < plain_len);
    assert!(latest_len <= older_len);
    // Both take writes.
    octl.put("after-restore", "v");
    assert_eq!(revision(&octl), LATEST + 1);
}

#[test]
fn defrag_alone_keeps_every_revision() {
    let bins = require_tool!(tools::etcd_suite(EtcdVersion::V35));
    require_tool!(tools::boltcheck());
    let snapshot = fixtures::snapshot("k8s-v35.db");
    let (plain, _, plain_len) = restore_and_boot(&bins, &snapshot, &[]);

    let (dense, summary, dense_len) = restore_and_boot(&bins, &snapshot, &["--defrag"]);

    assert_eq!(summary["compactRevision"], Value::Null, "{summary}");
    let (pctl, dctl) = (plain.ctl(), dense.ctl());
    for rev in [100, 300, 500, LATEST] {
        assert_eq!(get_at(&dctl, rev), get_at(&pctl, rev), "get at {rev}");
    }
    assert!(dense_len < plain_len);
}

#[test]
fn compact_with_bump_and_mark_boots_all_members() {
    let bins = require_tool!(tools::etcd_suite(EtcdVersion::V35));
    require_tool!(tools::boltcheck());
    let snapshot = fixtures::snapshot("k8s-v35.db");
    let (plain, _, _) = restore_and_boot(&bins, &snapshot, &[]);
    let want = plain.ctl().all_kvs();
    drop(plain);

    let spec = ClusterSpec::new(&bins, 3).token(TOKEN);
    let out = spec.dir.join("restored");
    std::fs::create_dir(&out).expect("mkdir");
    let ic = spec.initial_cluster();
    let json = cli::ok(&[
        "-w",
        "json",
        "snapshot",
        "restore",
        cli::s(&snapshot),
        "--initial-cluster",
        &ic,
        "--initial-cluster-token",
        TOKEN,
        "--all-members",
        "--out-dir",
        cli::s(&out),
        "--compact",
        "--defrag",
        "--bump-revision",
        "1000",
        "--mark-compacted",
    ]);
    let summary: Value = serde_json::from_str(&json).expect("summary JSON");
    assert_eq!(summary["compactRevision"].as_i64(), Some(LATEST));
    assert_eq!(summary["bumpedToRevision"].as_i64(), Some(LATEST + 1000));
    let names: Vec<String> = spec.members.iter().map(|m| m.name.clone()).collect();
    let dbs: Vec<PathBuf> = names
        .iter()
        .map(|n| out.join(format!("{n}.etcd/member/snap/db")))
        .collect();
    for db in &dbs {
        assert_boltcheck_ok(db);
    }
    let mut spec = spec;
    for (i, n) in names.iter().enumerate() {
        spec = spec.data_dir(i, &out.join(format!("{n}.etcd")));
    }
    let cluster = spec.start();
    let c = cluster.ctl();
    let health = c.run(&["endpoint", "health", "--cluster"]);
    assert!(health.success(), "{}{}", health.stdout, health.stderr);
    assert!(revision(&c) >= LATEST + 1000, "revision {}", revision(&c));
    assert_compacted_at(&c, LATEST + 999);
    assert_compacted_at(&c, LATEST);
    for i in 0..3 {
        assert_eq!(cluster.ctl_member(i).all_kvs(), want, "member {i}");
    }
    c.put("after-bump", "v");
    assert!(revision(&c) > LATEST + 1000);
}

/// The compaction removes a deletion that is the snapshot's last change;
/// the bump still starts from that change's revision, so etcd boots above
/// every revision the snapshot had and honours the mark.
#[test]
fn bump_counts_from_a_last_deletion_the_compaction_removes() {
    let bins = require_tool!(tools::etcd_suite(EtcdVersion::V35));
    require_tool!(tools::boltcheck());
    let source = EtcdCluster::single(&bins);
    let sctl = source.ctl();
    for i in 0..5 {
        sctl.put(&format!("k{i}"), &format!("v{i}"));
    }
    sctl.ok(&["del", "k4"]);
    let current = revision(&sctl);
    let dir = tempfile::tempdir().expect("tmp");
    let snapshot = dir.path().join("last-is-delete.db");
    source
        .ctl_member(0)
        .snapshot_save(&snapshot)
        .expect_success("snapshot save");
    drop(source);

    let (plain, _, _) = restore_and_boot(&bins, &snapshot, &[]);
    let want = plain.ctl().all_kvs();
    drop(plain);
    let (etcd, summary, _) = restore_and_boot(
        &bins,
        &snapshot,
        &["--compact", "--bump-revision", "10", "--mark-compacted"],
    );
    assert_eq!(summary["compactRevision"].as_i64(), Some(current));
    assert_eq!(summary["bumpedToRevision"].as_i64(), Some(current + 10));
    let c = etcd.ctl();
    assert_eq!(revision(&c), current + 10);
    assert_compacted_at(&c, current + 9);
    assert_eq!(c.all_kvs(), want);
}

/// A snapshot that is not a plain file arrives in the first member's db
/// and is read from there while the dense db is written beside it: the
/// result is the same bytes as from the plain file.
#[test]
fn compressed_source_gives_the_same_dense_db() {
    let snapshot = fixtures::snapshot("k8s-v35.db");
    let dir = tempfile::tempdir().expect("tmp");
    let gz = dir.path().join("k8s.db.gz");
    {
        use std::io::Write;
        let f = std::fs::File::create(&gz).expect("create");
        let mut enc = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        enc.write_all(&std::fs::read(&snapshot).expect("read"))
            .expect("gzip");
        enc.finish().expect("gzip");
    }
    let restore = |src: &Path, name: &str| {
        let d = dir.path().join(name);
        cli::ok(&[
            "snapshot",
            "restore",
            cli::s(src),
            "--data-dir",
            cli::s(&d),
            "--compact=550",
        ]);
        std::fs::read(d.join("member/snap/db")).expect("read db")
    };
    let from_file = restore(&snapshot, "plain");
    let from_gz = restore(&gz, "gz");
    assert!(from_file == from_gz, "the two dense dbs differ");
    assert!((from_file.len() as u64) < len(&snapshot));
    // Nothing but the data dir's own files is left.
    let mut names = fixtures::names_in(&dir.path().join("gz/member/snap"));
    names.sort();
    assert_eq!(names, ["0000000000000001-0000000000000001.snap", "db"]);
}

#[test]
fn refused_compactions_leave_nothing() {
    let snapshot = fixtures::snapshot("k8s-v35.db");
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().join("never");
    for (flag, code, words) in [
        ("--compact=-1", 128, "--compact must be a revision"),
        ("--compact=571", 1, "required revision is a future revision"),
        ("--compact=1", 1, "required revision has been compacted"),
        ("--compact=x", 1, "invalid argument"),
    ] {
        let (got, err) = cli::err(&[
            "snapshot",
            "restore",
            cli::s(&snapshot),
            "--data-dir",
            cli::s(&d),
            flag,
        ]);
        assert!(err.contains(words), "{flag}: {err}");
        if code == 128 {
            assert_eq!(got, Some(code), "{flag}: {err}");
        }
        assert!(!d.exists(), "{flag} left {}", d.display());
    }
}

/// `backup restore` takes the flags too, and writes the same member db
/// as `snapshot restore` of the file.
#[test]
fn backup_restore_compacts_the_same_way() {
    let snapshot = fixtures::snapshot("k8s-v35.db");
    let dir = tempfile::tempdir().expect("tmp");
    let repo = dir.path().join("repo");
    cli::ok(&["backup", "init", cli::s(&repo)]);
    cli::ok(&["backup", "push", cli::s(&repo), cli::s(&snapshot)]);
    let ls: Value =
        serde_json::from_str(&cli::ok(&["-w", "json", "backup", "ls", cli::s(&repo)])).expect("ls");
    let id = ls[0]["id"].as_str().expect("id").to_owned();
    let (from_repo, from_file) = (dir.path().join("repo.etcd"), dir.path().join("file.etcd"));
    let flags = [
        "--compact=550",
        "--defrag",
        "--bump-revision=7",
        "--mark-compacted",
    ];
    let mut a = vec![
        "backup",
        "restore",
        cli::s(&repo),
        &id,
        "--data-dir",
        cli::s(&from_repo),
    ];
    a.extend(flags);
    cli::ok(&a);
    let mut a = vec![
        "snapshot",
        "restore",
        cli::s(&snapshot),
        "--data-dir",
        cli::s(&from_file),
    ];
    a.extend(flags);
    cli::ok(&a);
    let db = |d: &Path| std::fs::read(d.join("member/snap/db")).expect("read db");
    assert!(db(&from_repo) == db(&from_file), "the member dbs differ");
    assert!((db(&from_file).len() as u64) < len(&snapshot));
}
