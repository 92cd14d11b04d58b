//! Failed restores exit non-zero with a message and leave nothing behind;
//! an occupied data dir is left exactly as it was.

use crate::support;

use etcdsnap::DataDir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::corrupt::{self, Body, Expect};
use support::fixtures::{self, names_in};

fn restore(snapshot: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
        .args(["snapshot", "restore"])
        .arg(snapshot)
        .args(args)
        .output()
        .expect("run etcdsnap")
}

/// Every path under `dir` with its content (files) or nothing (dirs), and
/// its mode and modification time.
fn snapshot_of(dir: &Path) -> BTreeMap<PathBuf, (Option<Vec<u8>>, u32, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p).expect("stat");
        let content = if md.is_file() {
            Some(std::fs::read(&p).expect("read"))
        } else {
            None
        };
        if md.is_dir() {
            for e in std::fs::read_dir(&p).expect("read_dir") {
                stack.push(e.expect("entry").path());
            }
        }
        out.insert(
            p,
            (
                content,
                md.mode(),
                md.mtime_nsec() + md.mtime() * 1_000_000_000,
            ),
        );
    }
    out
}

fn assert_failed_cleanly(o: &Output, what: &str, code: i32) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{what}: {err}");
    assert!(
        err.starts_with("Error: ") && err.trim().len() > 8,
        "{what}: {err}"
    );
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(o.stdout.is_empty(), "{what}: stdout must stay empty");
}

#[test]
fn corrupted_snapshots_fail_and_leave_nothing() {
    let src = tempfile::tempdir().expect("tempdir");
    for v in corrupt::corpus() {
        let file = v.write_to(src.path());
        for skip in [false, true] {
            let out = tempfile::tempdir().expect("tempdir");
            let data = out.path().join("restored.etcd");
            let mut args = vec!["--data-dir", data.to_str().expect("utf-8")];
            if skip {
                args.push("--skip-hash-check");
            }
            let o = restore(&file, &args);
            let what = format!("{} (skip-hash-check={skip})", v.name);
            let must_pass = if skip {
                v.body == Body::Valid && v.expect != Expect::EtcdRecord
            } else {
                v.expect == Expect::Accept
            };
            if must_pass {
                assert!(
                    o.status.success(),
                    "{what}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                assert_eq!(names_in(out.path()), ["restored.etcd"], "{what}");
            } else {
                assert_failed_cleanly(&o, &what, 1);
                assert!(
                    names_in(out.path()).is_empty(),
                    "{what}: left {:?}",
                    names_in(out.path())
                );
                let err = String::from_utf8_lossy(&o.stderr);
                if !skip {
                    match v.expect {
                        Expect::MissingHash => assert!(
                            err.contains("snapshot missing hash but --skip-hash-check=false"),
                            "{what}: {err}"
                        ),
                        Expect::HashMismatch => {
                            assert!(err.contains("expected sha256 ["), "{what}: {err}")
                        }
                        Expect::EtcdRecord => {
                            assert!(err.contains("snapshot data check failed."), "{what}: {err}")
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

#[test]
fn bad_flags_fail_before_anything_is_written() {
    let snap = fixtures::snapshot("small-v35.db");
    let out = tempfile::tempdir().expect("tempdir");
    let d = out.path().join("d.etcd");
    let dd = d.to_str().expect("utf-8");
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["--data-dir", dd, "--bump-revision", "10"],
            128,
            "--mark-compacted required if --revision-bump > 0",
        ),
        (
            vec!["--data-dir", dd, "--mark-compacted"],
            128,
            "--mark-compacted required if --revision-bump > 0",
        ),
        (
            vec!["--data-dir", dd, "--name", "foo"],
            1,
            "couldn't find local name \"foo\" in the initial cluster configuration",
        ),
        (
            vec![
                "--data-dir",
                dd,
                "--initial-advertise-peer-urls",
                "http://127.0.0.1:9",
            ],
            1,
            "missing from --initial-advertise-peer-urls",
        ),
        (
            vec![
                "--data-dir",
                dd,
                "--name",
                "a",
                "--initial-cluster",
                "a=http://127.0.0.1:1,b=http://127.0.0.1:1",
                "--initial-advertise-peer-urls",
                "http://127.0.0.1:1",
            ],
            1,
            "has duplicate url",
        ),
        (
            vec![
                "--data-dir",
                dd,
                "--initial-cluster",
                "default=ftp://127.0.0.1:2380",
                "--initial-advertise-peer-urls",
                "ftp://127.0.0.1:2380",
            ],
            1,
            "URL scheme must be http, https, unix, or unixs",
        ),
        (
            vec!["--data-dir", dd, "--target-version", "3.9"],
            128,
            "unsupported target version",
        ),
        (vec!["--all-members"], 128, "--all-members needs --out-dir"),
        (
            vec![
                "--name",
                "../escape",
                "--initial-cluster",
                "../escape=http://127.0.0.1:2380",
                "--initial-advertise-peer-urls",
                "http://127.0.0.1:2380",
            ],
            128,
            "cannot name a data dir (pass --data-dir)",
        ),
    ];
    // Hostile sizes.
    let many: Vec<String> = (0..1001)
        .map(|i| format!("m{i}=http://127.0.0.{}:{}", i % 250 + 1, 2000 + i))
        .collect();
    let many = many.join(",");
    let long_url = format!("http://127.0.0.1:2380/{}", "x".repeat(5000));
    let long_cluster = format!("default={long_url}");
    let cases: Vec<(Vec<&str>, i32, &str)> = cases
        .into_iter()
        .chain([
            (
                vec![
                    "--data-dir",
                    dd,
                    "--name",
                    "m0",
                    "--initial-cluster",
                    many.as_str(),
                    "--initial-advertise-peer-urls",
                    "http://127.0.0.1:2000",
                ],
                1,
                "more than 1000 members",
            ),
            (
                vec![
                    "--data-dir",
                    dd,
                    "--initial-cluster",
                    long_cluster.as_str(),
                    "--initial-advertise-peer-urls",
                    long_url.as_str(),
                ],
                1,
                "at most 4096 bytes are accepted",
            ),
        ])
        .collect();
    for (args, code, needle) in cases {
        let o = restore(&snap, &args);
        assert_failed_cleanly(&o, &format!("{args:?}"), code);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(names_in(out.path()).is_empty(), "{args:?} left files");
    }
    assert!(!Path::new("../escape.etcd").exists());
}

#[test]
fn an_occupied_data_dir_is_left_exactly_as_it_was() {
    let snap = fixtures::snapshot("small-v35.db");
    for target in ["3.4", "3.5", "3.6"] {
        let out = tempfile::tempdir().expect("tempdir");
        let d = out.path().join("d.etcd");
        let layout = DataDir::new(&d);
        std::fs::create_dir_all(layout.snap_dir()).expect("mkdir");
        std::fs::write(layout.db_path(), b"precious").expect("write");
        std::fs::write(d.join("notes"), b"do not touch").expect("write");
        let before = snapshot_of(out.path());
        let o = restore(
            &snap,
            &[
                "--data-dir",
                d.to_str().expect("utf-8"),
                "--target-version",
                target,
            ],
        );
        assert_failed_cleanly(&o, target, 1);
        let err = String::from_utf8_lossy(&o.stderr);
        let want = if target == "3.4" {
            format!("data-dir {:?} exists", d.display().to_string())
        } else {
            format!(
                "data-dir {:?} not empty or could not be read",
                d.display().to_string()
            )
        };
        assert!(err.contains(&want), "{target}: {err}");
        assert_eq!(
            snapshot_of(out.path()),
            before,
            "{target}: the data dir changed"
        );
    }
}

#[test]
fn an_empty_data_dir_is_used_by_3_5_and_refused_by_3_4() {
    let snap = fixtures::snapshot("small-v35.db");
    for (target, ok) in [("3.4", false), ("3.5", true), ("3.6", true)] {
        let out = tempfile::tempdir().expect("tempdir");
        let d = out.path().join("d.etcd");
        std::fs::create_dir(&d).expect("mkdir");
        let o = restore(
            &snap,
            &[
                "--data-dir",
                d.to_str().expect("utf-8"),
                "--target-version",
                target,
            ],
        );
        assert_eq!(
            o.status.success(),
            ok,
            "{target}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(names_in(out.path()), ["d.etcd"], "{target}");
        assert_eq!(DataDir::new(&d).db_path().exists(), ok);
    }
}

#[test]
fn an_existing_wal_dir_or_missing_parent_is_refused() {
    let snap = fixtures::snapshot("small-v35.db");
    let out = tempfile::tempdir().expect("tempdir");
    let d = out.path().join("d.etcd");
    let w = out.path().join("wal");
    std::fs::create_dir(&w).expect("mkdir");
    let o = restore(
        &snap,
        &[
            "--data-dir",
            d.to_str().expect("utf-8"),
            "--wal-dir",
            w.to_str().expect("utf-8"),
        ],
    );
    assert_failed_cleanly(&o, "wal dir", 1);
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains(&format!("wal-dir {:?} exists", w.display().to_string()))
    );
    assert_eq!(names_in(out.path()), ["wal"]);

    let missing = out.path().join("no/such/parent/d.etcd");
    let o = restore(&snap, &["--data-dir", missing.to_str().expect("utf-8")]);
    assert_failed_cleanly(&o, "missing parent", 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));
    assert_eq!(names_in(out.path()), ["wal"]);
}

#[test]
fn an_external_wal_dir_gets_the_wal() {
    let snap = fixtures::snapshot("small-v35.db");
    let out = tempfile::tempdir().expect("tempdir");
    let d = out.path().join("d.etcd");
    let w = out.path().join("wal");
    let o = restore(
        &snap,
        &[
            "--data-dir",
            d.to_str().expect("utf-8"),
            "--wal-dir",
            w.to_str().expect("utf-8"),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(names_in(&w), ["0000000000000000-0000000000000000.wal"]);
    assert_eq!(names_in(DataDir::new(&d).member_dir()), ["snap"]);
    assert_eq!(names_in(out.path()), ["d.etcd", "wal"]);
}
