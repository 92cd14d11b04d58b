//! Data dirs as people have them: a dedicated (empty) volume mounted at the
//! data dir, a symlink to an empty directory, an empty directory with its
//! own mode, and `--wal-dir` inside the data dir being created. Each
//! restore is followed by a boot of etcd 3.5.1 from the result; the layout
//! and modes are compared with what etcdutl 3.5.1 does with the same
//! flags; a failed restore leaves the target as it was.
//!
//! The tmpfs test mounts and unmounts its own tmpfs (the test machines run
//! as root); where mounting is not permitted it skips locally and fails
//! under CI=true.

use crate::support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use support::etcd::ClusterSpec;
use support::tools::{EtcdBins, EtcdVersion};
use support::{fixtures, require_tool, tools};

const TOKEN: &str = "etcdsnap-datadirs";

fn etcdsnap(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
        .args(args)
        .output()
        .expect("run etcdsnap")
}

/// A tmpfs mounted for the test, unmounted (by path) when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0750")])
            .arg("tmpfs")
            .arg(path)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mounting a tmpfs is not permitted here: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

fn is_mount_point(p: &Path) -> bool {
    let parent = p.parent().expect("parent");
    std::fs::metadata(p).expect("stat").dev() != std::fs::metadata(parent).expect("stat").dev()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777
}

/// Restores `small-v35.db` as the single member of `spec` into `data_dir`
/// (plus `extra` flags), boots etcd 3.5.1 on it and checks it serves the
/// snapshot's keys and accepts a write.
fn restore_and_boot(bins: &EtcdBins, data_dir: &Path, extra: &[&str], wal_dir: Option<&Path>) {
    let mut spec = ClusterSpec::new(bins, 1).token(TOKEN).data_dir(0, data_dir);
    if let Some(w) = wal_dir {
        spec = spec.arg(format!("--wal-dir={}", w.display()));
    }
    let ic = spec.initial_cluster();
    let peer = spec.members[0].peer_url();
    let snap = fixtures::snapshot("small-v35.db");
    let mut args: Vec<String> = vec![
        "snapshot".into(),
        "restore".into(),
        snap.to_string_lossy().into_owned(),
        "--data-dir".into(),
        data_dir.to_string_lossy().into_owned(),
        "--name".into(),
        "m1".into(),
        "--initial-cluster".into(),
        ic,
        "--initial-advertise-peer-urls".into(),
        peer,
        "--initial-cluster-token".into(),
        TOKEN.into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = etcdsnap(&argv);
    assert!(
        out.status.success(),
        "restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cluster = spec.start();
    let ctl = cluster.ctl();
    assert_eq!(ctl.get("name").as_deref(), Some(&b"jormun_new"[..]));
    ctl.put("after-restore", "yes");
    assert_eq!(ctl.get("after-restore").as_deref(), Some(&b"yes"[..]));
}

#[test]
fn restores_onto_a_tmpfs_mount_point_keeps_it_and_boots() {
    let bins = require_tool!(tools::etcd_suite(EtcdVersion::V35));
    let tmp = tempfile::tempdir().expect("tempdir");
    let mnt = tmp.path().join("var-lib-etcd");
    // etcd preallocates a second 64 MB WAL segment when it starts.
    let fs = require_tool!(Tmpfs::mount(&mnt, "256m"));
    assert!(is_mount_point(&mnt));
    let before = mode(&mnt);
    assert_eq!(before, 0o750);

    // A failed restore (a hash mismatch) leaves the volume as it was.
    let mut bad = fixtures::read_snapshot("small-v35.db");
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    let bad_path = tmp.path().join("bad.db");
    std::fs::write(&bad_path, &bad).expect("write");
    let out = etcdsnap(&[
        "snapshot",
        "restore",
        &bad_path.to_string_lossy(),
        "--data-dir",
        &mnt.to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        fixtures::names_in(&mnt).is_empty(),
        "{:?}",
        fixtures::names_in(&mnt)
    );

    restore_and_boot(&bins, &mnt, &[], None);
    assert!(is_mount_point(&mnt), "the mount point was replaced");
    assert_eq!(mode(&mnt), before, "the mount point's mode changed");
    assert_eq!(fixtures::names_in(&mnt), ["member"]);
    drop(fs);
}

#[test]
fn a_full_tmpfs_fails_cleanly_and_stays_empty() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mnt = tmp.path().join("small-volume");
    // Too small for the k8s fixture's 10 MB db.
    let _fs = require_tool!(Tmpfs::mount(&mnt, "4m"));
    let out = etcdsnap(&[
        "snapshot",
        "restore",
        &fixtures::snapshot("k8s-v35.db").to_string_lossy(),
        "--data-dir",
        &mnt.to_string_lossy(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no space left on device"), "{err}");
    assert!(
        fixtures::names_in(&mnt).is_empty(),
        "{:?}",
        fixtures::names_in(&mnt)
    );
    assert!(is_mount_point(&mnt));
}

#[test]
fn restores_through_a_symlink_to_an_empty_dir_and_boots() {
    let bins = require_tool!(tools::etcd_suite(EtcdVersion::V35));
    let tmp = tempfile::tempdir().expect("tempdir");
    let real = tmp.path().join("disk");
    std::fs::create_dir(&real).expect("mkdir");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let link = tmp.path().join("etcd-data");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    restore_and_boot(&bins, &link, &[], None);
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("lstat")
            .file_type()
            .is_symlink(),
        "the symlink was replaced"
    );
    assert_eq!(fixtures::names_in(&real), ["member"]);
    assert_eq!(mode(&real), 0o755);
}

/// What a command leaves: relative paths with modes, sorted.
fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let p = e.expect("entry").path();
            let md = std::fs::symlink_metadata(&p).expect("lstat");
            let rel = p.strip_prefix(root).expect("inside").display().to_string();
            out.push(format!("{:o} {rel}", md.permissions().mode() & 0o7777));
            if md.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = vec![format!("{:o} .", mode(root))];
    walk(root, root, &mut out);
    out.sort();
    out
}

/// `--wal-dir` inside the data dir being created, and an existing empty
/// data dir with its own mode: the same files, dirs and modes as etcdutl
/// 3.5.1 leaves; then etcd 3.5.1 boots from ours.
#[test]
fn wal_dir_inside_and_existing_dir_modes_match_etcdutl() {
    let bins = require_tool!(tools::etcd_suite(EtcdVersion::V35));
    let etcdutl = require_tool!(tools::etcdutl35());
    let tmp = tempfile::tempdir().expect("tempdir");
    let snap = fixtures::snapshot("small-v35.db");
    for (case, wal) in [
        ("wal-in-data-dir", Some("wal")),
        ("wal-in-member", Some("member/wal")),
        ("existing-0751", None),
    ] {
        let mut trees = Vec::new();
        for who in ["theirs", "ours"] {
            let d = tmp.path().join(format!("{case}-{who}"));
            if wal.is_none() {
                std::fs::create_dir(&d).expect("mkdir");
                std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o751))
                    .expect("chmod");
            }
            let mut args: Vec<String> = vec![
                "snapshot".into(),
                "restore".into(),
                snap.to_string_lossy().into_owned(),
                "--data-dir".into(),
                d.to_string_lossy().into_owned(),
            ];
            if let Some(w) = wal {
                args.push("--wal-dir".into());
                args.push(d.join(w).to_string_lossy().into_owned());
            }
            let out = if who == "theirs" {
                let mut c = Command::new(&etcdutl);
                tools::etcd_child_env(&mut c);
                c.args(&args).output().expect("etcdutl")
            } else {
                Command::new(env!("CARGO_BIN_EXE_etcdsnap"))
                    .args(&args)
                    .output()
                    .expect("etcdsnap")
            };
            assert!(
                out.status.success(),
                "{case} {who}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            trees.push(tree(&d));
        }
        assert_eq!(trees[0], trees[1], "{case}: etcdutl vs etcdsnap");
    }
    // etcd boots from a data dir whose WAL is in <data-dir>/wal.
    let d = tmp.path().join("boot");
    restore_and_boot(
        &bins,
        &d,
        &["--wal-dir", &d.join("wal").to_string_lossy()],
        Some(&d.join("wal")),
    );
}
