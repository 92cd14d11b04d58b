//! Restores of made-up cases, compared with what the real tools write for
//! the same arguments at test time: etcdutl 3.5.1 for the default target,
//! etcdctl 3.4.23 for `--target-version 3.4`. WAL and `.snap` files must be
//! byte-identical, files and modes the same, every bucket of the db the same
//! in Go bbolt's own reading, and our db must check clean with Go.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use etcdsnap::DataDir;
use std::path::{Path, PathBuf};
use std::process::Command;

use etcdsnap::bolt::{Bucket, Db};
use etcdsnap::internal::bolt::tx::{self, BucketChanges, WriteOptions};
use sha2::Digest;
use support::tools::{EtcdBins, EtcdVersion};
use support::{corrupt, fixtures, oracles, snapmaker, tools};

fn ours(snapshot: &Path, data_dir: &Path, target: &str, args: &[String]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
        .args(["snapshot", "restore"])
        .arg(snapshot)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--target-version", target])
        .args(args)
        .output()
        .expect("run etcdsnap");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Relative path → (is dir, mode, content) for every entry under `root`.
fn listing(root: &Path) -> Vec<(String, bool, u32, Option<Vec<u8>>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let p = root.join(&rel);
        let md = std::fs::metadata(&p).expect("stat");
        let content = if md.is_file() && rel.file_name().is_some_and(|n| n != "db") {
            Some(std::fs::read(&p).expect("read"))
        } else {
            None
        };
        if md.is_dir() {
            for e in std::fs::read_dir(&p).expect("read_dir") {
                stack.push(rel.join(e.expect("entry").file_name()));
            }
        }
        out.push((
            rel.display().to_string(),
            md.is_dir(),
            md.permissions().mode() & 0o777,
            content,
        ));
    }
    out.sort();
    out
}

fn compare(bins: &EtcdBins, snapshot: &Path, target: &str, args: &[String], case: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let theirs_dir = tmp.path().join("theirs");
    let ours_dir = tmp.path().join("ours");
    let mut their_args: Vec<&str> = vec!["--data-dir", theirs_dir.to_str().expect("utf-8")];
    their_args.extend(args.iter().map(String::as_str));
    let theirs = oracles::run_restore(bins, snapshot, &their_args);
    let (code, err) = ours(snapshot, &ours_dir, target, args);
    if !theirs.success() {
        let their_err = theirs
            .stderr
            .lines()
            .find(|l| l.starts_with("Error: "))
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            code,
            theirs.code().unwrap_or(-1),
            "{case}: exit code; ours said {err}"
        );
        assert_eq!(err.trim_end(), their_err, "{case}: error text");
        assert!(
            !ours_dir.exists(),
            "{case}: a failed restore left {ours_dir:?}"
        );
        return;
    }
    assert_eq!(code, 0, "{case}: {err}");
    assert_eq!(
        listing(&ours_dir),
        listing(&theirs_dir),
        "{case}: files, modes, WAL and .snap bytes"
    );
    let our_db = DataDir::new(&ours_dir).db_path();
    let check = oracles::run_boltcheck("check", &our_db);
    assert_eq!(check.stdout.trim(), "OK", "{case}: {}", check.stderr);
    let a = oracles::run_boltcheck("dump", &our_db);
    let b = oracles::run_boltcheck("dump", &DataDir::new(&theirs_dir).db_path());
    assert!(a.success() && b.success());
    assert_eq!(a.stdout, b.stdout, "{case}: bucket contents");
}

fn cluster_args(n: usize, local: usize, token: &str) -> Vec<String> {
    let ic: Vec<String> = (1..=n)
        .map(|i| format!("m{i}=http://127.0.0.{i}:{}", 23800 + i))
        .collect();
    vec![
        "--name".into(),
        format!("m{local}"),
        "--initial-cluster".into(),
        ic.join(","),
        "--initial-advertise-peer-urls".into(),
        format!("http://127.0.0.{local}:{}", 23800 + local),
        "--initial-cluster-token".into(),
        token.into(),
    ]
}

/// The same database with another page size, and a fresh SHA-256 trailer.
fn with_page_size(src: &[u8], page_size: usize) -> Vec<u8> {
    fn copy(b: Bucket<'_>, ch: &mut BucketChanges) {
        for e in b.iter() {
            let e = e.expect("entry");
            if e.is_bucket() {
                let sub = b.bucket(e.key).expect("bucket").expect("exists");
                copy(sub, ch.bucket(e.key.to_vec()));
            } else {
                ch.put(e.key.to_vec(), e.value.to_vec());
            }
        }
    }
    let db = Db::open(corrupt::strip_trailer(src)).expect("open");
    let mut ch = BucketChanges::new();
    copy(db.root(), &mut ch);
    let mut img = tx::new_image(page_size);
    let plan = tx::plan(
        Db::open(&img).expect("new"),
        &ch,
        WriteOptions { fill: 0.9 },
    )
    .expect("plan");
    plan.apply_to(&mut img);
    let digest = sha2::Sha256::digest(&img);
    img.extend_from_slice(&digest);
    img
}

/// Go's bbolt, etcd 3.5.1 and etcd 3.4.23, or `None` (the test is skipped
/// locally; under CI a missing tool fails it).
fn tools_or_skip() -> Option<(EtcdBins, EtcdBins)> {
    tools::require(tools::boltcheck())?;
    let b35 = tools::require(tools::etcd_suite(EtcdVersion::V35))?;
    let b34 = tools::require(tools::etcd_suite(EtcdVersion::V34))?;
    Some((b35, b34))
}

#[test]
fn five_members_empty_token_and_unix_urls() {
    let Some((b35, b34)) = tools_or_skip() else {
        return;
    };
    for (bins, target, snap) in [(&b35, "3.5", "k8s-v35.db"), (&b34, "3.4", "k8s-v34.db")] {
        let s = fixtures::snapshot(snap);
        compare(
            bins,
            &s,
            target,
            &cluster_args(5, 3, "five"),
            &format!("{target} five members"),
        );
        compare(
            bins,
            &s,
            target,
            &cluster_args(3, 1, ""),
            &format!("{target} empty token"),
        );
        let unix = vec![
            "--initial-cluster".into(),
            "default=unix://127.0.0.1:2380".into(),
            "--initial-advertise-peer-urls".into(),
            "unix://127.0.0.1:2380".into(),
        ];
        compare(bins, &s, target, &unix, &format!("{target} unix URL"));
        let unix_path = vec![
            "--initial-cluster".into(),
            "default=unix:///tmp/etcd.sock".into(),
            "--initial-advertise-peer-urls".into(),
            "unix:///tmp/etcd.sock".into(),
        ];
        compare(
            bins,
            &s,
            target,
            &unix_path,
            &format!("{target} unix socket path"),
        );
    }
}

#[test]
fn sixteen_and_sixty_four_kib_pages() {
    let Some((b35, b34)) = tools_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    for ps in [16384usize, 65536] {
        for (bins, target, snap) in [(&b35, "3.5", "k8s-v35.db"), (&b34, "3.4", "k8s-v34.db")] {
            let img = with_page_size(&fixtures::read_snapshot(snap), ps);
            let path = tmp.path().join(format!("{snap}.{ps}"));
            std::fs::write(&path, &img).expect("write");
            assert!(corrupt::trailer_ok(&img));
            compare(
                bins,
                &path,
                target,
                &cluster_args(3, 2, "pages"),
                &format!("{target} page size {ps}"),
            );
        }
    }
}

#[test]
fn large_overflow_values() {
    let Some((b35, b34)) = tools_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let snap = tmp.path().join("big-values.db");
    snapmaker::SnapshotMaker::new(&b35)
        .ops_per_txn(1)
        .work_dir(tmp.path())
        .make(&snap, |l| {
            for i in 0..4u8 {
                let v: Vec<u8> = (0..1_400_000usize)
                    .map(|j| (j as u8).wrapping_mul(i + 3))
                    .collect();
                l.put(format!("big/{i}").as_bytes(), &v);
                l.flush();
            }
            l.put(b"small", b"s");
        });
    compare(
        &b35,
        &snap,
        "3.5",
        &cluster_args(3, 3, "big"),
        "3.5 large values",
    );
    compare(
        &b34,
        &snap,
        "3.4",
        &cluster_args(3, 3, "big"),
        "3.4 large values",
    );
}
